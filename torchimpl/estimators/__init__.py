"""Registry of torchimpl estimators: `get(id)`, `ids(pattern)`.

Importing a module registers its entries.
"""

from torchimpl.estimators import (
    curvature,  # noqa: F401
    factors,  # noqa: F401
    gradient_noise,  # noqa: F401
    im2col,  # noqa: F401
    landscape,  # noqa: F401
    matrix_diagnostics,  # noqa: F401
    spectra,  # noqa: F401
    stochastic,  # noqa: F401
    unified_view,  # noqa: F401
    zeroth_order,  # noqa: F401
)
from torchimpl.estimators.registry import REGISTRY

get = REGISTRY.get
ids = REGISTRY.ids

__all__ = ["REGISTRY", "get", "ids"]
