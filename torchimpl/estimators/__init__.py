"""Registry of torchimpl estimators: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from torchimpl.estimators import (
    gradient_noise,  # noqa: F401
    unified_view,  # noqa: F401
    zeroth_order,  # noqa: F401
)
from torchimpl.estimators.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
