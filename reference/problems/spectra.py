"""Eigenvalue spectra and rotations for synthetic quadratics (INVENTORY §1.2 ``prob:quad``).

A symmetric matrix is built as A = Q diag(lam) Q^T, the eigendecomposition the unified view
works in (000 §1 "(General Update)": H = Q diag(lambda_1, ..., lambda_n) Q^T). Every function
is deterministic given its ``numpy.random.Generator``, so a Hypothesis case that records the
seed rebuilds the same matrix.

``cond`` is always max |lam| / min |lam| over the nonzero eigenvalues, and ``L`` is the largest
|lam|; eigenvalues are returned sorted in descending order.
"""

from __future__ import annotations

import numpy as np

FAMILIES = ("two_point", "uniform", "geometric", "power_law", "psd_zeros", "indefinite")


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed n x n orthogonal matrix: QR of a Gaussian matrix, signs fixed by R."""
    _check_dim(n, "n", minimum=1)
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def symmetric(lam: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Q diag(lam) Q^T, symmetrised so that A == A.T exactly."""
    lam = np.asarray(lam, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    if lam.ndim != 1 or Q.shape != (lam.size, lam.size):
        raise ValueError(f"Q must have shape ({lam.size}, {lam.size}) for lam of shape {lam.shape}")
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


def spectrum(
    family: str,
    n: int,
    cond: float = 100.0,
    rng: np.random.Generator | None = None,
    *,
    L: float = 1.0,
    zeros: int | None = None,
    negatives: int | None = None,
) -> np.ndarray:
    """n eigenvalues of the named family, sorted descending, with max |lam| = L.

    - ``two_point``: ceil(n/2) entries equal L, the rest mu = L/cond ({mu, L});
    - ``uniform``: L and mu pinned, the other n-2 uniform on [mu, L];
    - ``geometric``: L * cond**(-i/(n-1)), so kappa = L/mu = cond exactly;
    - ``power_law``: L * (i+1)**(-p) with p = log(cond)/log(n): few large, many near 0;
    - ``psd_zeros``: ``zeros`` exact zeros (default: drawn from 1 to max(1, n-2), so that two
      eigenvalues stay nonzero and carry ``cond`` whenever n >= 3), the others geometric;
    - ``indefinite``: geometric magnitudes with ``negatives`` of them negated (default: 1 to
      n-1, drawn), chosen at random positions of the magnitude order.
    For n >= 2 the counts lie in [1, n-1]; n = 1 gives the single eigenvalue the family's
    special value (0, or -L). ``rng`` is needed by ``uniform`` and the drawn counts/positions.
    """
    if family not in FAMILIES:
        raise ValueError(f"Invalid spectrum family: {family!r}; allowed: {FAMILIES}")
    _check_dim(n, "n", minimum=1)
    if not (np.isfinite(cond) and cond >= 1.0):
        raise ValueError(f"Invalid condition number: {cond}; must be finite and >= 1")
    if not (np.isfinite(L) and L > 0.0):
        raise ValueError(f"Invalid largest eigenvalue L: {L}; must be finite and > 0")
    if rng is None and family in ("uniform", "psd_zeros", "indefinite"):
        raise ValueError(f"spectrum family {family!r} needs rng (a numpy Generator)")
    lam = _unit_spectrum(family, n, cond, rng, zeros, negatives)
    return L * np.sort(lam)[::-1]


def _unit_spectrum(family, n, cond, rng, zeros, negatives) -> np.ndarray:
    """The family's eigenvalues for L = 1, unsorted."""
    if family == "two_point":
        return np.where(np.arange(n) < (n + 1) // 2, 1.0, 1.0 / cond)
    if family == "uniform":
        inner = rng.uniform(1.0 / cond, 1.0, size=max(n - 2, 0))
        return np.concatenate([[1.0], inner, [1.0 / cond]])[:n]
    if family == "power_law":
        p = np.log(cond) / np.log(n) if n > 1 else 0.0
        return np.arange(1, n + 1, dtype=np.float64) ** (-p)
    if family == "psd_zeros":
        k = _count(zeros, "zeros", n, rng, drawn_max=n - 2)
        return np.concatenate([_geometric(n - k, cond), np.zeros(k)])
    if family == "indefinite":
        signs = np.ones(n)
        k = _count(negatives, "negatives", n, rng, drawn_max=n - 1)
        signs[rng.choice(n, size=k, replace=False)] = -1.0
        return signs * _geometric(n, cond)
    return _geometric(n, cond)


def _geometric(n: int, cond: float) -> np.ndarray:
    return cond ** (-np.linspace(0.0, 1.0, n)) if n > 1 else np.ones(n)


def _count(k: int | None, name: str, n: int, rng: np.random.Generator, drawn_max: int) -> int:
    """How many eigenvalues get the special value: given, or drawn from 1..drawn_max.

    The range is [1, n-1] (some, not all), or {1} when n = 1.
    """
    top = max(n - 1, 1)
    k = int(rng.integers(1, min(max(drawn_max, 1), top) + 1)) if k is None else k
    if not 1 <= k <= top:
        raise ValueError(f"Invalid {name}: {k}; must be in [1, max(n-1, 1)] = [1, {top}]")
    return k


def _check_dim(n: int, name: str, minimum: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"Invalid dimension {name}: {n!r}; must be an integer >= {minimum}")
