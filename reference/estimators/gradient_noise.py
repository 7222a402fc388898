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
from numbers import Integral

import numpy as np
from scipy.special import gammaln

from contract import Estimator
from reference.estimators.registry import REGISTRY

LABELS = ("data", "model")
SAMPLINGS = ("with_replacement", "without_replacement")
MODES = ("exact", "mc")
P_SUM_TOL = 1e-6
MAX_BATCHES = 200_000


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Invalid {name}: {value!r}; allowed: {allowed}")


def _integer(name: str, value: object, lo: int, hi: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        raise ValueError(f"Invalid {name}: {value!r}; allowed: integer in [{lo}, {hi}]")
    return int(value)


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
    Sigma = np.einsum("nc,ncp,ncq->pq", p, xi, xi) / (G3.shape[0] - ddof)
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
    mean, g = w @ M_b, m.mean(axis=0)

    def about(centre):
        R = M_b - centre
        return np.einsum("b,bp,bq->pq", w, R, R) + label_cov

    return {
        "mean": mean,
        "cov": about(mean),
        "second_moment": about(0.0),
        "xi_mean": mean - g,
        "xi_cov": about(g),
    }


def _draw_indices(indices, y, G3, B, sampling) -> tuple[np.ndarray, np.ndarray]:
    """Validated batch indices (K, B) and labels (K, B) (zeros for data labels)."""
    if indices is None:
        raise ValueError("mode='mc' needs the batch index draws indices (K, B)")
    indices = np.asarray(indices)
    N, C = G3.shape[:2]
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
    if indices.ndim != 2 or indices.shape[0] < 2 or indices.shape[1] != B:
        raise ValueError(f"indices must have shape (K, B={B}) with K >= 2, got {indices.shape}")
    if np.any(indices < 0) or np.any(indices >= N):
        raise ValueError(f"indices must lie in [0, N={N})")
    if sampling == "without_replacement" and np.any(np.diff(np.sort(indices, axis=1)) == 0):
        raise ValueError("indices repeat a sample within a batch, but sampling='without_replacement'")
    if (y is None) != (C == 1 and p_is_data(G3)):
        raise ValueError("y (K, B) sampled labels are needed with labels='model', only then")
    y = np.zeros_like(indices) if y is None else np.asarray(y)
    if y.dtype.kind not in "iu" or y.shape != indices.shape or np.any((y < 0) | (y >= C)):
        raise ValueError(f"y must be integer labels in [0, C={C}) of shape {indices.shape}")
    return indices, y
