"""Registry of reference rules: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from reference.rules import (
    adaptive,  # noqa: F401
    first_order,  # noqa: F401
    meta,  # noqa: F401
    second_order,  # noqa: F401
    unified_view,  # noqa: F401
    zeroth_order,  # noqa: F401
)
from reference.rules.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
