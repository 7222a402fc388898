"""The structured fast path (DESIGN.md torchimpl/ "Structured fast paths"): per-sample
gradients, the diagonal empirical Fisher and its per-layer blocks from layer inputs and output
gradients (`stats.collect`), without per-sample gradients of the whole model. Parameters of
other modules fall back to the generic ``vmap(grad)`` route, restricted to them.

Scale: "mean" 1/B, "sum" 1 (``scale=None``: the batch loss's reduction), as in `autodiff`.
"""

from __future__ import annotations

import math

import torch

from torchimpl.curvature.autodiff import per_sample_grads, scale_factor
from torchimpl.curvature.model import ModelBatch
from torchimpl.curvature.stats import (
    Layer,
    collect,
    grads_from_stats,
    kind,
    layout,
    per_sample_weight_grads,
    records,
    split_augmented,
)
from torchimpl.tree import Tree


def per_sample_grads_fast(params: Tree, mb: ModelBatch) -> dict[str, torch.Tensor]:
    """g_n as name -> (B, *shape): from layer statistics where a layer is supported, by
    ``vmap(grad)`` over the remaining parameters otherwise (same values as `per_sample_grads`)."""
    out = {name: g for layer in collect(params, mb) for name, g in grads_from_stats(layer)}
    rest = [k for k in params if k not in out]
    if rest:
        out.update(per_sample_grads(params, mb, names=rest))
    return {k: out[k] for k in params}


def diag_ef(params: Tree, mb: ModelBatch, scale: str | None = None) -> dict[str, torch.Tensor]:
    """diag F_emp = scale sum_n g_n ⊙ g_n in parameter shapes (data labels).

    Linear (2-D inputs): (s^2)^T (h^2) and sum_n s_n^2 (bias), one matmul per layer; conv and
    token inputs: the per-sample layer gradient sum_t s_t h_bar_t^T (per group), squared; norm
    layers: the squares of sum_t s_t ⊙ x_hat_t and sum_t s_t; other parameters: ``vmap(grad)``.
    The scale enters as sqrt(scale) on the seed of the backward (s -> sqrt(scale) s).
    """
    factor = scale_factor(mb, mb.x.shape[0], scale)
    out: dict[str, torch.Tensor] = {}
    for r in records(params, mb, seed=math.sqrt(factor)):
        kind_ = kind(r.module)
        if kind_ == "linear" and r.h.dim() == 2:
            s2 = r.s.square()
            out[r.param("weight")] = s2.T @ r.h.square()  # (out, in)
            if r.module.bias is not None:
                out[r.param("bias")] = s2.sum(0)
        elif kind_ == "norm":
            layer = Layer(r.name, r.module, layout(r.module, r.h, r.a, r.s))
            out.update((name, g.square().sum(0)) for name, g in grads_from_stats(layer))
        else:
            G = per_sample_weight_grads(kind_, layout(r.module, r.h, r.a, r.s))
            out.update(split_augmented(r, G.square().sum(0)))
    rest = [k for k in params if k not in out]
    if rest:
        out.update({k: g.square().sum(0) * factor
                    for k, g in per_sample_grads(params, mb, names=rest).items()})
    return {k: out[k] for k in params}
