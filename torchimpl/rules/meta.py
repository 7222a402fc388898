"""The `rule:meta.*` update rules (INVENTORY §2.9) in torch, any dtype and device.

The wrappers and schedules are written once for both layers in `contract.wrappers` (they only
compose an inner rule with elementwise arithmetic and scalar schedules); this module binds them
to this layer's registry and tree helpers.
"""

from __future__ import annotations

import torch

from contract.wrappers import Layer, register
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import check_finite, tree_map


def _copy(tree) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tree.items()}


register(Layer(REGISTRY, tree_map, check_finite, _copy))
