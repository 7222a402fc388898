"""The implementation layer: torch + torch.func, any dtype and device. Never imports
``reference``: it stands alone in a training job.

Registries: ``torchimpl.rules``, ``torchimpl.estimators``, ``torchimpl.problems``, each with
``get(id)`` and ``ids(pattern)``.
"""

from torchimpl import estimators, problems, rules

__all__ = ["estimators", "problems", "rules"]
