"""Gradient noise, exact minibatch moments and batch Fisher matrices in torch (INVENTORY §3.1,
§3.2): the same IDs, arguments, options, keys and errors as the reference layer.

Conventions (INVENTORY §5 items 1, 2, 9, 10):

- ``G[n]`` is the gradient of the per-sample loss; the full-batch gradient is the mean
  ``g = (1/N) sum_n g_n`` and a minibatch gradient is the mean ``g_b = (1/B) sum_{n in b} g_n``.
- ``labels="data"``: ``G`` has shape (N, P), each sample at its data label.
  ``labels="model"``: ``G`` has shape (N, C, P), ``G[n, c]`` the gradient of sample n at label c,
  and ``p`` (N, C) the model's label probabilities; every drawn sample gets its own label
  ``y ~ p[n]``, independently (a sample drawn twice with replacement gets two labels).
  Data labels are the model law with one label of probability 1: one code path serves both.
- No random numbers are drawn here: Monte-Carlo mode takes the batch indices (and labels).
- Results have the dtype and device of ``G``; batch enumeration runs with itertools on the CPU.
"""

from __future__ import annotations

import itertools
import math

import torch

from contract import Estimator
from contract.specs.estimators import (
    MAX_BATCHES,
    P_SUM_TOL,
    SPECS,
    batch_count,
    check_draw_args,
    check_exact_draws,
    check_labels,
    check_p,
    ddof_option,
    moment_options,
)
from torchimpl.estimators.registry import REGISTRY


def _finite(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _label_law(G: object, p: object, labels: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G3, p)``: gradients (N, C, P) and label probabilities (N, C); data labels have C = 1."""
    check_labels(labels)
    G = _finite("G", G)
    check_p(labels, p is not None)
    if labels == "data":
        if G.ndim != 2 or 0 in G.shape:
            raise ValueError(f"G must have shape (N, P) with labels='data', got {tuple(G.shape)}")
        return G[:, None, :], G.new_ones(G.shape[0], 1)
    p = _finite("p", p).to(G)
    if G.ndim != 3 or 0 in G.shape or p.shape != G.shape[:2]:
        raise ValueError(
            "labels='model' needs G (N, C, P) and p (N, C); "
            f"got G {tuple(G.shape)}, p {tuple(p.shape)}"
        )
    if bool((p < 0).any()) or bool(((p.sum(dim=1) - 1.0).abs() > P_SUM_TOL).any()):
        raise ValueError(f"p must be non-negative with rows summing to 1 (within {P_SUM_TOL})")
    return G, p


def grad_noise(G, p=None, *, labels="data", ddof=0):
    # doc: contract.specs.estimators.SPECS['est:grad_noise']
    G3, p = _label_law(G, p, labels)
    ddof = ddof_option(ddof, G3.shape[0])
    g = torch.einsum("nc,ncp->p", p, G3) / G3.shape[0]
    xi = G3 - g
    Sigma = torch.einsum("ncp,ncq->pq", p[..., None] * xi, xi) / (G3.shape[0] - ddof)
    return {"g": g, "xi": xi.reshape(G.shape), "Sigma": Sigma}


def _batches(N: int, B: int, sampling: str, max_batches: int, like: torch.Tensor):
    """Every batch as counts (n_batches, N) with its probability: combinations without
    replacement (uniform), multisets with replacement (multinomial weight B!/prod k! / N^B)."""
    without = sampling == "without_replacement"
    count = batch_count(N, B, sampling, max_batches)
    combos = (itertools.combinations if without else itertools.combinations_with_replacement)(
        range(N), B
    )
    index = torch.tensor(list(itertools.chain.from_iterable(combos)), dtype=torch.long)
    rows = torch.arange(count).repeat_interleave(B)
    counts = torch.bincount(rows * N + index, minlength=count * N).reshape(count, N)
    counts = counts.to(like)
    if without:
        return counts, like.new_full((count,), 1.0 / count)
    log_w = math.lgamma(B + 1) - torch.lgamma(counts + 1).sum(dim=1) - B * math.log(N)
    return counts, log_w.exp()


def _exact_moments(G3, p, B, sampling, max_batches):
    """E[g_b] and second moments about the centres mean, 0 and g, by enumerating batches.

    Given the batch, labels are independent: E[g_b | b] = (1/B) sum_j m_{i_j} and
    Cov[g_b | b] = (1/B^2) sum_j V_{i_j}, with m_n, V_n the label mean and covariance of g_n.
    """
    counts, w = _batches(G3.shape[0], B, sampling, max_batches, G3)
    m = torch.einsum("nc,ncp->np", p, G3)
    D = G3 - m[:, None, :]
    label_cov = torch.einsum("n,nc,ncp,ncq->pq", w @ counts, p, D, D) / B**2
    M_b = counts @ m / B
    mean, g, root_w = w @ M_b, m.mean(dim=0), w.sqrt()

    def about(centre):
        R = root_w[:, None] * (M_b - centre)
        return R.T @ R + label_cov

    return {
        "mean": mean,
        "cov": about(mean),
        "second_moment": about(torch.zeros_like(mean)),
        "xi_cov": about(g),
        "g": g,
    }


def _integers(name: str, draws: object, device: torch.device) -> torch.Tensor:
    draws = torch.as_tensor(draws, device=device)
    if draws.is_floating_point() or draws.is_complex() or draws.dtype == torch.bool:
        raise TypeError(f"{name} must be integers, got dtype {draws.dtype}")
    return draws.long()


def _draws(indices, y, N: int, C: int, B: int, sampling: str, labels: str, device):
    """Validated batch indices (K, B) and labels (K, B) (zeros for data labels)."""
    check_draw_args(indices is not None, y is not None, labels)
    indices = _integers("indices", indices, device)
    y = torch.zeros_like(indices) if y is None else _integers("y", y, device)
    for name, draws, bound in (("indices", indices, N), ("y", y, C)):
        if draws.ndim != 2 or draws.shape[0] < 2 or draws.shape[1] != B:
            raise ValueError(
                f"{name} must have shape (K, B={B}) with K >= 2, got {tuple(draws.shape)}"
            )
        if bool((draws < 0).any()) or bool((draws >= bound).any()):
            raise ValueError(f"{name} must lie in [0, {bound})")
    if y.shape != indices.shape:
        raise ValueError(
            f"y must have the shape of indices {tuple(indices.shape)}, got {tuple(y.shape)}"
        )
    repeats = (indices.sort(dim=1).values.diff(dim=1) == 0).any()
    if sampling == "without_replacement" and bool(repeats):
        raise ValueError("indices repeat a sample in a batch, but sampling='without_replacement'")
    return indices, y


def _mc_moments(G3, p, B, sampling, labels, indices, y):
    """Monte-Carlo estimates from given draws with their standard errors std/sqrt(K), and g.

    ``cov`` is the sample covariance (1/(K - 1)); its standard error is the plug-in one, which
    ignores the centring on the sample mean (an O(1/K) effect).
    """
    indices, y = _draws(indices, y, *G3.shape[:2], B, sampling, labels, G3.device)
    g_b = G3[indices, y].mean(dim=1)
    g = torch.einsum("nc,ncp->p", p, G3) / G3.shape[0]
    K = g_b.shape[0]

    def outer(R):
        return R[:, :, None] * R[:, None, :]

    draws = {
        "mean": g_b,
        "cov": outer(g_b - g_b.mean(dim=0)) * (K / (K - 1)),
        "second_moment": outer(g_b),
        "xi_cov": outer(g_b - g),
    }
    estimates = {key: X.mean(dim=0) for key, X in draws.items()}
    errors = {f"{key}_se": X.std(dim=0, correction=1) / math.sqrt(K) for key, X in draws.items()}
    return {**estimates, **errors, "g": g}


def minibatch_moments(
    G,
    p=None,
    *,
    B,
    labels="data",
    sampling="without_replacement",
    mode="exact",
    max_batches=MAX_BATCHES,
    indices=None,
    y=None,
):
    # doc: contract.specs.estimators.SPECS['est:minibatch_moments']
    G3, p = _label_law(G, p, labels)
    B, max_batches = moment_options(G3.shape[0], B, sampling, mode, max_batches)
    if mode == "mc":
        return _mc_moments(G3, p, B, sampling, labels, indices, y)
    check_exact_draws(indices is not None, y is not None)
    return _exact_moments(G3, p, B, sampling, max_batches)


def fisher_batch(G, p=None, *, labels, B, sampling="without_replacement", max_batches=MAX_BATCHES):
    # doc: contract.specs.estimators.SPECS['est:fisher_batch']
    moments = minibatch_moments(
        G, p, B=B, labels=labels, sampling=sampling, mode="exact", max_batches=max_batches
    )
    return {"F_b" if labels == "model" else "F_tilde_b": moments["second_moment"]}


for _key, _fn in (
    ("est:grad_noise", grad_noise),
    ("est:minibatch_moments", minibatch_moments),
    ("est:fisher_batch", fisher_batch),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
