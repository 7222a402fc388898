"""The `rule:meta.*` update rules (INVENTORY §2.9) in the NumPy reference.

The wrappers and schedules are written once for both layers in `contract.wrappers` (they only
compose an inner rule with elementwise arithmetic and scalar schedules); this module binds them
to this layer's registry and tree helpers.
"""

from __future__ import annotations

import numpy as np

from contract.wrappers import Layer, register
from reference.rules.registry import REGISTRY
from reference.tree import check_finite, tree_map


def _copy(tree) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in tree.items()}


register(Layer(REGISTRY, tree_map, check_finite, _copy))
