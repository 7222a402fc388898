"""Registry of torchimpl rules: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from torchimpl.rules import unified_view  # noqa: F401
from torchimpl.rules.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
