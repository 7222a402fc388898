"""The quantities of the unified view in torch (INVENTORY §3.8): the same ID, arguments, keys
and errors as the reference layer.

``est:uv_quantities`` evaluates what 000 §1 "(General Update)" and §2 define for a direction
d at a gradient g and a symmetric curvature H: the model decrease, its split over the
eigenvectors of H, the H-norms and, for a stochastic direction d_b = A g_b = d + A xi_b, the
noise term N_b and the per-eigendirection noise. Stochastic quantities are expectations under
the Gaussian law xi_b ~ N(0, Sigma_b) (exact) and means over given draws of xi_b (Monte Carlo);
the document's printed closed forms are claims audited elsewhere, never used here.
Results have the dtype and device of ``g``.
"""

from __future__ import annotations

import math

import torch

from contract import Estimator
from contract.specs.estimators import (
    SPECS,
    SYM_RTOL,
    TORCH_UV_NOTE,
    check_losses,
    noise_inputs,
)
from torchimpl.estimators.registry import REGISTRY


def _finite(name: str, x: object, shape: tuple[int, ...] | None, like: torch.Tensor | None):
    """``x`` as a tensor of ``like``'s dtype and device (floats become 0-d tensors), checked."""
    if like is None and (not isinstance(x, torch.Tensor) or not x.is_floating_point()):
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    x = x if like is None else torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if shape is not None and tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _symmetric(name: str, M: object, like: torch.Tensor) -> torch.Tensor:
    """``(M + M^T)/2`` after checking ``max|M - M^T| <= rtol max|M|``, rtol = SYM_RTOL or 64
    machine epsilons of the dtype, whichever is larger (float64: SYM_RTOL, as the reference)."""
    n = like.shape[0]
    M = _finite(name, M, (n, n), like)
    rtol = max(SYM_RTOL, 64 * torch.finfo(M.dtype).eps)
    if bool((M - M.T).abs().max() > rtol * M.abs().max()):
        raise ValueError(f"{name} must be symmetric (relative asymmetry <= {rtol})")
    return 0.5 * (M + M.T)


def _eigh(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending eigenvalues and eigenvectors, each column's largest-magnitude entry positive
    (the first such entry on ties), so both layers return the same Q for distinct eigenvalues."""
    lam, Q = torch.linalg.eigh(H)
    pivot = Q[Q.abs().argmax(dim=0), torch.arange(Q.shape[1], device=Q.device)]
    return lam, Q * torch.where(pivot < 0, -1.0, 1.0).to(Q)


def _deterministic(g, d, H, Q, lam) -> dict[str, torch.Tensor]:
    """000 §1 "(General Update)": Delta_d, its split Delta_d^i and the H-norms (the table)."""
    g_hat, d_hat = Q.T @ g, Q.T @ d
    Delta_i = g_hat * d_hat + 0.5 * d_hat**2 * lam
    normH2 = d @ H @ d
    return {
        "Delta": -(g @ d + 0.5 * normH2),
        "lam": lam,
        "Q": Q,
        "g_hat": g_hat,
        "d_hat": d_hat,
        "Delta_i": Delta_i,
        "Delta_i_neg": -Delta_i,
        "normH2": normH2,
        "normH2_i": lam * d_hat**2,
    }


def _noise_exact(H, Q, A, Sigma_b) -> dict[str, torch.Tensor]:
    """d_xi = A xi_b has covariance A Sigma_b A^T; N_b = 1/2 E[d_xi^T H d_xi] = 1/2 tr(H Cov)
    (zero mean); E||d_xi_i||^2 = E[(e_i^T d_xi)^2] = e_i^T Cov e_i (000 §2 definitions)."""
    Sigma_dxi = A @ Sigma_b @ A.T
    return {
        "Sigma_dxi": Sigma_dxi,
        "N_b": 0.5 * torch.trace(H @ Sigma_dxi),
        "d_xi_i": torch.einsum("pi,pq,qi->i", Q, Sigma_dxi, Q),
    }


def _noise_mc(H, Q, A, xi) -> dict[str, torch.Tensor]:
    """The same expectations as means over draws xi[k] of xi_b, with standard errors
    std/sqrt(K); ``Sigma_dxi_mc`` is (1/K) sum_k d_k d_k^T (the mean of d_xi is known to be 0)."""
    D = xi @ A.T
    K = D.shape[0]
    half_quad = 0.5 * torch.einsum("kp,pq,kq->k", D, H, D)
    along = (D @ Q) ** 2
    return {
        "Sigma_dxi_mc": D.T @ D / K,
        "N_b_mc": half_quad.mean(),
        "N_b_mc_se": half_quad.std(correction=1) / math.sqrt(K),
        "d_xi_i_mc": along.mean(dim=0),
        "d_xi_i_mc_se": along.std(dim=0, correction=1) / math.sqrt(K),
    }


def _stochastic(H, Q, A, Sigma_b, xi) -> dict[str, torch.Tensor]:
    """The exact and Monte-Carlo noise quantities that the given inputs allow."""
    n = H.shape[0]
    if not noise_inputs(A is not None, Sigma_b is not None, xi is not None):
        return {}
    A = _finite("A", A, (n, n), H)
    out = {}
    if Sigma_b is not None:
        Sigma_b = _symmetric("Sigma_b", Sigma_b, H)
        floor = -max(SYM_RTOL, 64 * torch.finfo(H.dtype).eps) * Sigma_b.abs().max()
        if bool(torch.linalg.eigvalsh(Sigma_b)[0] < floor):
            raise ValueError("Sigma_b must be positive semi-definite (a covariance)")
        out.update(_noise_exact(H, Q, A, Sigma_b))
    if xi is not None:
        xi = _finite("xi", xi, None, H)
        if xi.ndim != 2 or xi.shape[0] < 2 or xi.shape[1] != n:
            raise ValueError(f"xi must have shape (K, n={n}) with K >= 2, got {tuple(xi.shape)}")
        out.update(_noise_mc(H, Q, A, xi))
    return out


def uv_quantities(g, d, H, *, f0=None, f1=None, A=None, Sigma_b=None, xi=None):
    # doc: contract.specs.estimators.SPECS['est:uv_quantities'] + TORCH_UV_NOTE
    g = _finite("g", g, None, None)
    if g.ndim != 1 or g.numel() == 0:
        raise ValueError(f"g must be a non-empty vector (n,), got shape {tuple(g.shape)}")
    d = _finite("d", d, tuple(g.shape), g)
    H = _symmetric("H", H, g)
    lam, Q = _eigh(H)
    out = _deterministic(g, d, H, Q, lam)
    check_losses(f0 is not None, f1 is not None)
    if f0 is not None:
        out["actual_decrease"] = _finite("f0", f0, (), g) - _finite("f1", f1, (), g)
    out.update(_stochastic(H, Q, A, Sigma_b, xi))
    return out


_SPEC = SPECS["est:uv_quantities"]
uv_quantities.__doc__ = _SPEC.doc + TORCH_UV_NOTE
REGISTRY.register(
    "est:uv_quantities",
    Estimator("est:uv_quantities", uv_quantities, _SPEC.options, uv_quantities.__doc__),
)
