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
from functools import partial

import numpy as np
from scipy.special import gammaln

from contract import Estimator
from contract.validate import choice, integer
from reference.estimators.registry import REGISTRY

LABELS = ("data", "model")
SAMPLINGS = ("with_replacement", "without_replacement")
MODES = ("exact", "mc")
P_SUM_TOL = 1e-6
MAX_BATCHES = 200_000


_choice = partial(choice, style="allowed")  # "Invalid <name>: <value!r>; allowed: <...>"
_integer = partial(integer, style="allowed")  # every failure a ValueError


def _finite(name: str, x: object) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


def _label_law(G: object, p: object, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """``(G3, p)``: gradients (N, C, P) and label probabilities (N, C); data labels have C = 1."""
    _choice("labels", labels, LABELS)
    G = _finite("G", G)
    if labels == "data":
        if p is not None:
            raise ValueError("p is only used with labels='model'; got p with labels='data'")
        if G.ndim != 2 or 0 in G.shape:
            raise ValueError(f"G must have shape (N, P) with labels='data', got {G.shape}")
        return G[:, None, :], np.ones((G.shape[0], 1))
    if p is None:
        raise ValueError("labels='model' needs the label probabilities p (N, C)")
    p = _finite("p", p)
    if G.ndim != 3 or 0 in G.shape or p.shape != G.shape[:2]:
        raise ValueError(
            f"labels='model' needs G (N, C, P) and p (N, C); got G {G.shape}, p {p.shape}"
        )
    if np.any(p < 0) or np.any(np.abs(p.sum(axis=1) - 1.0) > P_SUM_TOL):
        raise ValueError(f"p must be non-negative with rows summing to 1 (within {P_SUM_TOL})")
    return G, p


def grad_noise(G, p=None, *, labels="data", ddof=0):
    """Gradient noise ``xi_n = g_n - g`` and its covariance (000 §2 "(General Update)").

    Returns ``g`` (P,), ``xi`` (shape of G) and ``Sigma`` (P, P) with the scaling
    ``1/(N - ddof)``: ``Sigma = (1/(N - ddof)) sum_n E_y[xi_n xi_n^T]``. Data labels give the
    sample covariance ``Sigma^data``; model labels give the covariance of the gradient of one
    sample drawn uniformly with its label drawn from ``p``, ``Sigma^model``, exact over labels
    (its mean ``g`` is the label expectation of the full-batch gradient).
    """
    G3, p = _label_law(G, p, labels)
    ddof = _integer("ddof", ddof, 0, G3.shape[0] - 1)
    g = np.einsum("nc,ncp->p", p, G3) / G3.shape[0]
    xi = G3 - g
    Sigma = np.einsum("nc,ncp,ncq->pq", p, xi, xi, optimize=True) / (G3.shape[0] - ddof)
    return {"g": g, "xi": xi.reshape(np.shape(G)), "Sigma": Sigma}


def _batches(N: int, B: int, sampling: str, max_batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Every batch as counts (n_batches, N) with its probability: combinations without
    replacement (uniform), multisets with replacement (multinomial weight B!/prod k! / N^B)."""
    without = sampling == "without_replacement"
    count = math.comb(N, B) if without else math.comb(N + B - 1, B)
    if count > max_batches:
        raise ValueError(
            f"exact enumeration of {count} batches (N={N}, B={B}, sampling={sampling!r}) "
            f"exceeds max_batches={max_batches}; raise max_batches or use mode='mc'"
        )
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
    if indices is None:
        raise ValueError("mode='mc' needs the batch index draws indices (K, B)")
    if (y is None) != (labels == "data"):
        raise ValueError("y, the sampled labels (K, B), goes with labels='model' and only with it")
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
    """Moments of the minibatch mean gradient g_b over batches of size B (and over labels).

    Returns ``mean`` E[g_b], ``cov`` Cov[g_b], ``second_moment`` E[g_b g_b^T], ``xi_cov``
    E[xi_b xi_b^T] (the document's Sigma_{xi_b}, 000 §2) of the noise ``xi_b = g_b - g`` and
    ``g``, the full-batch mean gradient (its label expectation for model labels).
    Scaling: g_b is a 1/B mean; expectations are exact probability-weighted sums.

    ``mode="exact"`` enumerates every batch (combinations without replacement, multisets with
    their multinomial weights with replacement) and raises when there are more than
    ``max_batches``. ``mode="mc"`` averages over given draws ``indices`` (K, B) (and, for model
    labels, ``y`` (K, B)) and adds the standard error ``<key>_se`` of every estimate.
    The default sampling is without replacement, as a shuffling data loader draws batches.
    """
    G3, p = _label_law(G, p, labels)
    _choice("sampling", sampling, SAMPLINGS)
    _choice("mode", mode, MODES)
    hi = G3.shape[0] if sampling == "without_replacement" else math.inf
    B = _integer(f"batch size B (N={G3.shape[0]}, sampling={sampling!r})", B, 1, hi)
    max_batches = _integer("max_batches", max_batches, 1)
    if mode == "mc":
        return _mc_moments(G3, p, B, sampling, labels, indices, y)
    if indices is not None or y is not None:
        raise ValueError("indices and y are draws for mode='mc'; mode='exact' takes none")
    return _exact_moments(G3, p, B, sampling, max_batches)


def fisher_batch(G, p=None, *, labels, B, sampling="without_replacement", max_batches=MAX_BATCHES):
    """Batch Fisher E[g_b g_b^T] over batches of size B and labels (000 §2, F_b paragraph).

    ``labels="model"`` returns ``F_b`` (labels sampled from the model); ``labels="data"``
    returns ``F_tilde_b`` (data labels). Scaling: g_b is the 1/B minibatch mean, so this is the
    second moment of a mean, not the per-sample Fisher (INVENTORY §5 item 2). Exact, by the
    enumeration of `minibatch_moments`; ``labels`` has no default (INVENTORY §5 item 2).
    """
    moments = minibatch_moments(
        G, p, B=B, labels=labels, sampling=sampling, mode="exact", max_batches=max_batches
    )
    return {"F_b" if labels == "model" else "F_tilde_b": moments["second_moment"]}


_SCHEME = {"sampling": "without_replacement", "max_batches": MAX_BATCHES}
for _estimator in (
    Estimator("est:grad_noise", grad_noise, {"labels": "data", "ddof": 0}, grad_noise.__doc__),
    Estimator(
        "est:minibatch_moments",
        minibatch_moments,
        {"labels": "data", "mode": "exact", **_SCHEME},
        minibatch_moments.__doc__,
    ),
    Estimator("est:fisher_batch", fisher_batch, _SCHEME, fisher_batch.__doc__),
):
    REGISTRY.register(_estimator.id, _estimator)
