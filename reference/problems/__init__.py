"""Registry of reference problems: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from reference.problems import (
    classic,  # noqa: F401
    classification,  # noqa: F401
    convolutional,  # noqa: F401
    network,  # noqa: F401
    normalization,  # noqa: F401
    online,  # noqa: F401
    quadratic,  # noqa: F401
)
from reference.problems.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
