"""Gradient noise, exact minibatch moments and batch Fisher matrices (INVENTORY §3.1, §3.2).

Conventions (INVENTORY §5 items 1, 2, 9, 10):

- ``G[n]`` is the gradient of the per-sample loss; the full-batch gradient is the mean
  ``g = (1/N) sum_n g_n`` and a minibatch gradient is the mean ``g_b = (1/B) sum_{n in b} g_n``.
- ``labels="data"``: ``G`` has shape (N, P), each sample at its data label.
  ``labels="model"``: ``G`` has shape (N, C, P), ``G[n, c]`` the gradient of sample n at label c,
  and ``p`` (N, C) the model's label probabilities; every drawn sample gets its own label
  ``y ~ p[n]``, independently (a sample drawn twice with replacement gets two labels).
  Data labels are the model law with one label of probability 1: one code path serves both.
- No random numbers are drawn here: Monte-Carlo mode takes the batch indices (and labels).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import gammaln

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
from reference.estimators.registry import REGISTRY


def finite(name: str, x: object) -> np.ndarray:
    """``x`` as a float64 array, with a ValueError naming it when it holds NaN or inf."""
    array = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


def _label_law(G: object, p: object, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """``(G3, p)``: gradients (N, C, P) and label probabilities (N, C); data labels have C = 1."""
    check_labels(labels)
    G = finite("G", G)
    check_p(labels, p is not None)
    if labels == "data":
        if G.ndim != 2 or 0 in G.shape:
            raise ValueError(f"G must have shape (N, P) with labels='data', got {G.shape}")
        return G[:, None, :], np.ones((G.shape[0], 1))
    p = finite("p", p)
    if G.ndim != 3 or 0 in G.shape or p.shape != G.shape[:2]:
        raise ValueError(
            f"labels='model' needs G (N, C, P) and p (N, C); got G {G.shape}, p {p.shape}"
        )
    if np.any(p < 0) or np.any(np.abs(p.sum(axis=1) - 1.0) > P_SUM_TOL):
        raise ValueError(f"p must be non-negative with rows summing to 1 (within {P_SUM_TOL})")
    return G, p


def grad_noise(G, p=None, *, labels="data", ddof=0):
    # doc: contract.specs.estimators.SPECS['est:grad_noise']
    G3, p = _label_law(G, p, labels)
    ddof = ddof_option(ddof, G3.shape[0])
    g = np.einsum("nc,ncp->p", p, G3) / G3.shape[0]
    xi = G3 - g
    Sigma = np.einsum("nc,ncp,ncq->pq", p, xi, xi, optimize=True) / (G3.shape[0] - ddof)
    return {"g": g, "xi": xi.reshape(np.shape(G)), "Sigma": Sigma}


def _batches(N: int, B: int, sampling: str, max_batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Every batch as counts (n_batches, N) with its probability: combinations without
    replacement (uniform), multisets with replacement (multinomial weight B!/prod k! / N^B)."""
    without = sampling == "without_replacement"
    count = batch_count(N, B, sampling, max_batches)
    combos = (itertools.combinations if without else itertools.combinations_with_replacement)(
        range(N), B
    )
    index = np.fromiter(itertools.chain.from_iterable(combos), np.intp, count * B)
    rows = np.repeat(np.arange(count), B)
    counts = np.bincount(rows * N + index, minlength=count * N).reshape(count, N)
    log_w = gammaln(B + 1) - gammaln(counts + 1).sum(axis=1) - B * math.log(N)
    return counts, np.full(count, 1.0 / count) if without else np.exp(log_w)


def _exact_moments(G3, p, B, sampling, max_batches):
    """E[g_b] and second moments about the centres mean, 0 and g, by enumerating batches.

    Given the batch, labels are independent: E[g_b | b] = (1/B) sum_j m_{i_j} and
    Cov[g_b | b] = (1/B^2) sum_j V_{i_j}, with m_n, V_n the label mean and covariance of g_n.
    """
    counts, w = _batches(G3.shape[0], B, sampling, max_batches)
    m = np.einsum("nc,ncp->np", p, G3)
    D = G3 - m[:, None, :]
    label_cov = np.einsum("n,nc,ncp,ncq->pq", w @ counts, p, D, D, optimize=True) / B**2
    M_b = counts @ m / B
    mean, g, root_w = w @ M_b, m.mean(axis=0), np.sqrt(w)

    def about(centre):
        R = root_w[:, None] * (M_b - centre)
        return R.T @ R + label_cov

    return {
        "mean": mean,
        "cov": about(mean),
        "second_moment": about(0.0),
        "xi_cov": about(g),
        "g": g,
    }


def _draws(indices, y, N: int, C: int, B: int, sampling: str, labels: str):
    """Validated batch indices (K, B) and labels (K, B) (zeros for data labels)."""
    check_draw_args(indices is not None, y is not None, labels)
    indices = np.asarray(indices)
    y = np.zeros_like(indices) if y is None else np.asarray(y)
    for name, draws, bound in (("indices", indices, N), ("y", y, C)):
        if draws.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers, got dtype {draws.dtype}")
        if draws.ndim != 2 or draws.shape[0] < 2 or draws.shape[1] != B:
            raise ValueError(f"{name} must have shape (K, B={B}) with K >= 2, got {draws.shape}")
        if np.any(draws < 0) or np.any(draws >= bound):
            raise ValueError(f"{name} must lie in [0, {bound})")
    if y.shape != indices.shape:
        raise ValueError(f"y must have the shape of indices {indices.shape}, got {y.shape}")
    if sampling == "without_replacement" and np.any(np.diff(np.sort(indices, axis=1)) == 0):
        raise ValueError("indices repeat a sample in a batch, but sampling='without_replacement'")
    return indices, y


def _mc_moments(G3, p, B, sampling, labels, indices, y):
    """Monte-Carlo estimates from given draws with their standard errors std/sqrt(K), and g.

    ``cov`` is the sample covariance (1/(K - 1)); its standard error is the plug-in one, which
    ignores the centring on the sample mean (an O(1/K) effect).
    """
    indices, y = _draws(indices, y, *G3.shape[:2], B, sampling, labels)
    g_b = G3[indices, y].mean(axis=1)
    g = np.einsum("nc,ncp->p", p, G3) / G3.shape[0]
    K = g_b.shape[0]

    def outer(R):
        return R[:, :, None] * R[:, None, :]

    draws = {
        "mean": g_b,
        "cov": outer(g_b - g_b.mean(axis=0)) * (K / (K - 1)),
        "second_moment": outer(g_b),
        "xi_cov": outer(g_b - g),
    }
    estimates = {key: X.mean(axis=0) for key, X in draws.items()}
    errors = {f"{key}_se": X.std(axis=0, ddof=1) / math.sqrt(K) for key, X in draws.items()}
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
