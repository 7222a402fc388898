"""The one spectral helper of the curvature-preconditioned rules (INVENTORY §2.1, common interface).

A curvature K (dense, symmetric) or its diagonal (a vector lam: the diagonal fast path, Q = I) is
turned into a `Spectrum` of K + damping I = Q diag(lam) Q^T by `eigh_sym`, which also applies
the ``singular`` policy. Every matrix function a rule needs is then `eigenbasis_map`:
Q phi(lam, Q^T v), with phi evaluated only on the directions the policy keeps.

Singular policy, with tol = n * machine epsilon and the threshold tol * max_i |lam_i|:

- ``"raise"``: a ``ValueError`` naming ``singular`` and lambda_min when some lam_i <= threshold
  (zero, negative, or zero up to rounding: an exact zero eigenvalue is computed as +-1e-16).
- ``"pinv"``: keep the directions with lam_i > threshold and set the function to 0 elsewhere.
  For PSD K and phi = 1/lam this is the Moore-Penrose pseudo-inverse; for an indefinite K it
  also drops the negative-curvature directions (unlike ``np.linalg.pinv``).

The inverse (power -1) of a K the policy keeps whole is a Cholesky solve (INVENTORY §2.1:
"Cholesky is used for solves when PD"); eigh remains the fallback and the singularity test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg

from contract.specs.unified_view import SINGULAR  # one definition for both layers


class Spectrum(NamedTuple):
    """K + damping I = Q diag(lam) Q^T; ``Q is None`` for a diagonal K (Q = I)."""

    lam: np.ndarray
    Q: np.ndarray | None
    kept: np.ndarray
    K: np.ndarray | None


def eigh_sym(
    K: np.ndarray, damping: float = 0.0, singular: str = "raise", name: str = "curvature"
) -> Spectrum:
    """The spectrum of K + damping I (K dense (n, n) or a diagonal (n,)), after the checks.

    K must be finite and symmetric up to a relative asymmetry sqrt(eps) (it is symmetrised
    before eigh); ``name`` says which curvature the messages are about.
    """
    K = np.asarray(K, dtype=np.float64)
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if K.ndim == 1:
        lam, Q, dense = K + damping, None, None
    else:
        dense = _symmetric(K, name) + damping * np.eye(len(K))
        lam, Q = np.linalg.eigh(dense)
    return Spectrum(lam, Q, _kept(lam, singular, damping, name), dense)


def _symmetric(K: np.ndarray, name: str) -> np.ndarray:
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square matrix or a vector, got shape {K.shape}")
    scale = np.max(np.abs(K), initial=0.0)
    asymmetry = np.max(np.abs(K - K.T), initial=0.0)
    if asymmetry > np.sqrt(np.finfo(np.float64).eps) * scale:
        raise ValueError(f"{name} is not symmetric: max |K - K^T| = {asymmetry:.3e}")
    return 0.5 * (K + K.T)


def _kept(lam: np.ndarray, singular: str, damping: float, name: str) -> np.ndarray:
    if singular not in SINGULAR:
        raise ValueError(f"Invalid singular: {singular!r} (must be one of {SINGULAR})")
    threshold = lam.size * np.finfo(lam.dtype).eps * np.max(np.abs(lam), initial=0.0)
    kept = lam > threshold
    if singular == "raise" and not np.all(kept):
        raise ValueError(
            f"{name} + {damping} I is singular or indefinite: lambda_min = {np.min(lam):.6e} "
            f"<= {threshold:.3e}; with singular='raise' it must be positive definite "
            "(use singular='pinv' or damping > 0)"
        )
    return kept


def eigenbasis_map(
    spec: Spectrum, v: np.ndarray, phi: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Q phi(lam, Q^T v) for v of shape (n,) or (n, k); phi is 0 on the dropped directions.

    phi sees the kept eigenvalues and 1.0 in place of the dropped ones, so it never divides by
    a dropped eigenvalue.
    """
    column = (slice(None),) + (None,) * (np.ndim(v) - 1)
    lam, kept = np.where(spec.kept, spec.lam, 1.0)[column], spec.kept[column]
    v_hat = v if spec.Q is None else spec.Q.T @ v
    d_hat = np.where(kept, phi(lam, v_hat), 0.0)
    return d_hat if spec.Q is None else spec.Q @ d_hat


def matrix_power_apply(spec: Spectrum, v: np.ndarray, power: float) -> np.ndarray:
    """(K + damping I)^power v, pseudo-inverse-like on the dropped directions (``pinv``)."""
    if power == -1 and spec.K is not None and np.all(spec.kept):
        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(spec.K), v)
        except np.linalg.LinAlgError:
            pass  # eigh says positive definite, Cholesky disagrees at rounding level
    return eigenbasis_map(spec, v, lambda lam, v_hat: lam**power * v_hat)


def lambda_max(K: np.ndarray, damping: float = 0.0, name: str = "curvature") -> float:
    """The largest eigenvalue of K + damping I (K dense or a diagonal)."""
    return float(np.max(eigh_sym(K, damping, "pinv", name).lam))
