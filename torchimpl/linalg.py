"""The one spectral helper of the curvature-preconditioned rules, in torch (any dtype, device).

The same definitions as the NumPy reference (INVENTORY §2.1, common interface): `eigh_sym`
gives the spectrum of K + damping I = Q diag(lam) Q^T (K dense, or a diagonal vector: the fast
path, Q = I) and applies the ``singular`` policy; `eigenbasis_map` computes Q phi(lam, Q^T v)
on the kept directions and 0 on the dropped ones.

Singular policy, with tol = n * machine epsilon of K's dtype and the threshold
tol * max_i |lam_i|: ``"raise"`` raises a ``ValueError`` naming ``singular`` and lambda_min when
some lam_i <= threshold; ``"pinv"`` keeps lam_i > threshold only (the Moore-Penrose
pseudo-inverse for PSD K; for indefinite K the negative-curvature directions are dropped too).
The inverse of a K kept whole is a Cholesky solve, with eigh as the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from contract.specs.unified_view import SINGULAR  # one definition for both layers


class Spectrum(NamedTuple):
    """K + damping I = Q diag(lam) Q^T; ``Q is None`` for a diagonal K (Q = I)."""

    lam: torch.Tensor
    Q: torch.Tensor | None
    kept: torch.Tensor
    K: torch.Tensor | None


def eigh_sym(
    K: torch.Tensor, damping: float = 0.0, singular: str = "raise", name: str = "curvature"
) -> Spectrum:
    """The spectrum of K + damping I (K dense (n, n) or a diagonal (n,)), after the checks.

    K must be finite and symmetric up to a relative asymmetry sqrt(eps) of its dtype (it is
    symmetrised before eigh); ``name`` says which curvature the messages are about.
    """
    if not bool(torch.isfinite(K).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if K.ndim == 1:
        lam, Q, dense = K + damping, None, None
    else:
        dense = _symmetric(K, name) + damping * torch.eye(len(K), dtype=K.dtype, device=K.device)
        lam, Q = torch.linalg.eigh(dense)
    return Spectrum(lam, Q, _kept(lam, singular, damping, name), dense)


def _symmetric(K: torch.Tensor, name: str) -> torch.Tensor:
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square matrix or a vector, got shape {tuple(K.shape)}")
    scale = float(K.abs().max()) if K.numel() else 0.0
    asymmetry = float((K - K.T).abs().max()) if K.numel() else 0.0
    if asymmetry > torch.finfo(K.dtype).eps ** 0.5 * scale:
        raise ValueError(f"{name} is not symmetric: max |K - K^T| = {asymmetry:.3e}")
    return 0.5 * (K + K.T)


def _kept(lam: torch.Tensor, singular: str, damping: float, name: str) -> torch.Tensor:
    if singular not in SINGULAR:
        raise ValueError(f"Invalid singular: {singular!r} (must be one of {SINGULAR})")
    scale = float(lam.abs().max()) if lam.numel() else 0.0
    threshold = lam.numel() * torch.finfo(lam.dtype).eps * scale
    kept = lam > threshold
    if singular == "raise" and not bool(kept.all()):
        raise ValueError(
            f"{name} + {damping} I is singular or indefinite: lambda_min = {float(lam.min()):.6e} "
            f"<= {threshold:.3e}; with singular='raise' it must be positive definite "
            "(use singular='pinv' or damping > 0)"
        )
    return kept


def eigenbasis_map(
    spec: Spectrum,
    v: torch.Tensor,
    phi: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Q phi(lam, Q^T v) for v of shape (n,) or (n, k); phi is 0 on the dropped directions.

    phi sees the kept eigenvalues and 1.0 in place of the dropped ones, so it never divides by
    a dropped eigenvalue.
    """
    column = (slice(None),) + (None,) * (v.ndim - 1)
    lam = torch.where(spec.kept, spec.lam, torch.ones_like(spec.lam))[column]
    kept = spec.kept[column]
    v_hat = v if spec.Q is None else spec.Q.T @ v
    d_hat = torch.where(kept, phi(lam, v_hat), torch.zeros_like(v_hat))
    return d_hat if spec.Q is None else spec.Q @ d_hat


def matrix_power_apply(spec: Spectrum, v: torch.Tensor, power: float) -> torch.Tensor:
    """(K + damping I)^power v, pseudo-inverse-like on the dropped directions (``pinv``)."""
    if power == -1 and spec.K is not None and bool(spec.kept.all()):
        factor, info = torch.linalg.cholesky_ex(spec.K)
        if int(info) == 0:
            columns = v if v.ndim == 2 else v[:, None]
            return torch.cholesky_solve(columns, factor).reshape(v.shape)
    return eigenbasis_map(spec, v, lambda lam, v_hat: lam**power * v_hat)


def lambda_max(K: torch.Tensor, damping: float = 0.0, name: str = "curvature") -> float:
    """The largest eigenvalue of K + damping I (K dense or a diagonal)."""
    return float(eigh_sym(K, damping, "pinv", name).lam.max())
