"""Registry of torchimpl problems: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from torchimpl.problems import (
    network,  # noqa: F401
    quadratic,  # noqa: F401
)
from torchimpl.problems.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
