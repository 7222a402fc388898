"""Registry of reference problems: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from reference.problems import (
    network,  # noqa: F401
    quadratic,  # noqa: F401
)
from reference.problems.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
