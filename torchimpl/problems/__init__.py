"""Registry of torchimpl problems: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from torchimpl.problems import (
    classic,  # noqa: F401
    classification,  # noqa: F401
    convolutional,  # noqa: F401
    network,  # noqa: F401
    normalization,  # noqa: F401
    online,  # noqa: F401
    quadratic,  # noqa: F401
)
from torchimpl.problems.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
