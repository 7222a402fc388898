"""Tolerances that follow from perturbation theory, shared by the rule and estimator mirrors.

Two backward-stable implementations of a solve or a matrix function of a symmetric K agree
to about ``n * kappa * eps`` in the relative sense (Weyl: eigenvalues move by ``eps ||K||``);
quantities built from individual eigenvectors move by ``eps ||K|| / gap`` (Davis-Kahan).
The project's float64 rtol 1e-10 (INVENTORY §0.4 item 3) is the floor; above it the bound is
``10 * n * s * eps`` with ``s`` that sensitivity, written once here.
"""

from __future__ import annotations

import numpy as np

from verify.crosscheck.engine import RTOL64

RTOL32 = 1e-4  # forward computations in float32: about 800 machine epsilons
FACTOR = 10.0


def spectral(
    K: np.ndarray,
    dtype: str,
    eigenvectors: bool = False,
    damping: float = 0.0,
    pinv: bool = False,
) -> float:
    """The tolerance for a result computed from the spectrum of symmetric ``K`` in ``dtype``."""
    lam = np.linalg.eigvalsh(K) + damping
    scale = float(np.abs(lam).max(initial=0.0))
    if scale == 0.0:
        return floor(dtype)
    kept = lam[lam > len(lam) * np.finfo(np.float64).eps * scale] if pinv else lam
    smallest = float(np.abs(kept).min(initial=scale))
    if eigenvectors and len(kept) > 1:
        gaps = np.abs(lam[:, None] - lam[None, :])[~np.eye(len(lam), dtype=bool)]
        smallest = min(smallest, float(gaps.min(initial=scale)))
    if smallest == 0.0:
        return np.inf  # a singular function of K: no agreement can be asked of either layer
    sensitivity = scale / smallest
    return max(floor(dtype), FACTOR * len(lam) * sensitivity * float(np.finfo(dtype).eps))


def floor(dtype: str) -> float:
    """The plain tolerance: rtol 1e-10 in float64, 1e-4 in float32."""
    return RTOL64 if dtype == "float64" else RTOL32
