"""The definition layer: pure NumPy, float64, small problems, no autograd.

Registries: ``reference.rules``, ``reference.estimators``, ``reference.problems``, each with
``get(id)`` and ``ids(pattern)``.
"""

from reference import estimators, problems, rules

__all__ = ["estimators", "problems", "rules"]
