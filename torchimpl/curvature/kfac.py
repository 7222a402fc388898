"""Kronecker factors (INVENTORY est:kfac_factors, 002 §2.4.3, §3.1, §3.3) and the factors of
normalization layers (est:norm_factors, 002 Prop. 3.3.1 / A.0.1), from layer statistics.

Labels for s: "empirical" (the data's), "sampled" (K labels per input, given or drawn from a
generator, each weighted 1/K) or "exact_expectation" (every class weighted by p_theta(c|x):
ce and bce only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from torchimpl.curvature.autodiff import (
    fisher_true,
    label_support,
    mc_labels,
    per_sample_grads,
)
from torchimpl.curvature.model import ModelBatch
from torchimpl.curvature.stats import collect, kind
from torchimpl.tree import Tree

LABELS = ("empirical", "sampled", "exact_expectation")
S_SCALES = ("per_sample", "batch_mean", "sum")
NORM_H_SOURCES = ("pre_norm", "normalized")


def label_sets(
    params: Tree,
    mb: ModelBatch,
    labels: str = "empirical",
    mc_samples: int = 1,
    generator: torch.Generator | None = None,
    y_mc: torch.Tensor | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The label vectors s is taken at, each with per-sample weights (B,) summing to 1 over
    the list: the data labels; K draws (1/K each); or every class with weight p_theta(c|x_n)."""
    if labels not in LABELS:
        raise ValueError(f"Invalid labels: {labels!r}; allowed: {LABELS}")
    B = mb.x.shape[0]
    if labels == "empirical":
        return [(mb.y, mb.x.new_ones(B, dtype=_float(mb)))]
    if labels == "sampled":
        draws = mc_labels(params, mb, mc_samples, generator, y_mc)
        return [(y, mb.x.new_full((B,), 1.0 / mc_samples, dtype=_float(mb))) for y in draws]
    support, weights = label_support(params, mb)
    return list(zip(support, weights, strict=True))


def _float(mb: ModelBatch) -> torch.dtype:
    return next(mb.module.parameters()).dtype


def kfac_factors(
    params: Tree,
    mb: ModelBatch,
    labels: str = "empirical",
    mc_samples: int = 1,
    generator: torch.Generator | None = None,
    y_mc: torch.Tensor | None = None,
    s_scale: str = "per_sample",
    spatial_scaling: Sequence[float] | None = None,
    token_flatten: bool = False,
) -> dict[str, dict[str, torch.Tensor]]:
    """Module name -> {"H", "S", "H_D", "S_D"} for every Linear and Conv2d layer.

    H = a_H (1/B) sum_n sum_t h_bar_nt h_bar_nt^T and S = a_S (1/B) sum_n E_y sum_t s_nt s_nt^T
    (uncentred; 002 §2.4.3, §3.3), H_D, S_D their diagonals. Linear with 2-D inputs: one
    position, a_H = a_S = 1. Conv and token inputs: |T| positions, ``spatial_scaling``
    (a_H, a_S) default (1/|T|, 1/|T|) (the official code's 1/(B|T|) for both); conv factors
    are per group, (G, k, k). ``s_scale``: "per_sample" s_n (the above), "batch_mean" s_n/B
    (backward hooks on a mean loss: S times 1/B^2), "sum" (S times B: the sum over samples).
    ``token_flatten``: tokens of Linear inputs count as samples (the mean over B*T rows,
    whatever ``spatial_scaling``). Other layers have identity factors by convention
    (INVENTORY) and are not listed.
    """
    if s_scale not in S_SCALES:
        raise ValueError(f"Invalid s_scale: {s_scale!r}; allowed: {S_SCALES}")
    B = mb.x.shape[0]
    sets = label_sets(params, mb, labels, mc_samples, generator, y_mc)
    runs = [(collect(params, mb, y), w) for y, w in sets]
    c_s = {"per_sample": 1.0, "batch_mean": 1.0 / B**2, "sum": float(B)}[s_scale]
    out = {}
    for index, layer in enumerate(runs[0][0]):
        if kind(layer.module) not in ("linear", "conv"):
            continue
        h_bar = _positions(layer.stats["h_bar"])
        T = h_bar.shape[-2]
        tokens = kind(layer.module) == "linear" and layer.stats["h_bar"].dim() == 3
        spatial = kind(layer.module) == "conv" or (tokens and not token_flatten)
        a_H, a_S = spatial_scaling if spatial and spatial_scaling else (1.0 / T, 1.0 / T)
        H = torch.einsum("n...tk,n...tl->...kl", h_bar, h_bar) * (a_H / B)
        S = sum(torch.einsum("n,n...to,n...tp->...op", w, s, s)
                for w, s in ((w, _positions(run[index].stats["s"])) for run, w in runs))
        S = S * (a_S * c_s / B)
        out[layer.name] = {"H": H, "S": S, "H_D": torch.diagonal(H, dim1=-2, dim2=-1),
                           "S_D": torch.diagonal(S, dim1=-2, dim2=-1)}
    return out


def _positions(t: torch.Tensor) -> torch.Tensor:
    """Statistics with a position axis before the feature axis: (B, 1, k) for 2-D ones."""
    return t.unsqueeze(1) if t.dim() == 2 else t


def norm_factors(
    params: Tree, mb: ModelBatch, norm_h_source: str = "pre_norm"
) -> dict[str, dict[str, torch.Tensor]]:
    """Module name -> factors of every normalization layer with scale nu and shift beta.

    (a) 002 Prop. 3.3.1 as printed, with x over the positions T of every sample and the batch
    mean: H_nu = (1/(B|T|)) sum_{n,x} h_x h_x^T (C, C), h the pre-norm input ("pre_norm", the
    statement) or the normalized x_hat ("normalized", the proof's h); H_beta = 1 1^T, (1, 1)
    (the beta block is H_beta ⊗ S = S); S = (1/(B|T|)) sum_{n,x} s_x s_x^T. (b) The exact
    per-sample blocks over nu, beta and the nu-beta cross block, batch mean (1/B):
    empirical Fisher "EF_*" (data labels) and true Fisher "F_*". (d) The diagonals "*_D".
    """
    if norm_h_source not in NORM_H_SOURCES:
        raise ValueError(f"Invalid norm_h_source: {norm_h_source!r}; allowed: {NORM_H_SOURCES}")
    out = {}
    for layer in collect(params, mb):
        if kind(layer.module) != "norm":
            continue
        if layer.module.bias is None:
            raise ValueError(f"norm layer {layer.name!r} has no shift beta: est:norm_factors "
                             "needs both nu and beta")
        st = layer.stats
        h = st["h"] if norm_h_source == "pre_norm" else st["x_hat"]
        rows = h.shape[0] * h.shape[1]
        factors = {"H_nu": torch.einsum("ntc,ntd->cd", h, h) / rows,
                   "H_beta": h.new_ones(1, 1),
                   "S": torch.einsum("ntc,ntd->cd", st["s"], st["s"]) / rows}
        names = [layer.param("weight"), layer.param("bias")]
        g = per_sample_grads(params, mb, names=names)
        g_nu, g_beta = (g[n].reshape(g[n].shape[0], -1) for n in names)
        B = g_nu.shape[0]
        factors.update(_blocks("EF", g_nu.T @ g_nu / B, g_beta.T @ g_beta / B, g_nu.T @ g_beta / B))
        F = fisher_true(params, mb, scale="mean", names=names)
        C = g_nu.shape[1]
        factors.update(_blocks("F", F[:C, :C], F[C:, C:], F[:C, C:]))
        for key in ("H_nu", "S", "EF_nu", "EF_beta", "F_nu", "F_beta"):
            factors[f"{key}_D"] = torch.diagonal(factors[key])
        out[layer.name] = factors
    return out


def _blocks(prefix: str, nu, beta, cross) -> dict[str, torch.Tensor]:
    return {f"{prefix}_nu": nu, f"{prefix}_beta": beta, f"{prefix}_nu_beta": cross}
