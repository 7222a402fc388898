"""Registry of reference rules: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from reference.rules import unified_view  # noqa: F401
from reference.rules.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
