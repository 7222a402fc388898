"""Spectra and sharpness in torch (INVENTORY §3.5): power iteration, Lanczos with full
reorthogonalization and stochastic Lanczos quadrature, the sharpness metrics of 004 §3 and the
iteration spectrum; the same IDs, arguments, options, keys and errors as the reference layer.
Operator inputs as in `torchimpl.estimators.stochastic`; docs and option defaults in
`contract.specs.stochastic.SPECS`.
"""

from __future__ import annotations

import math

import torch

from contract import Estimator
from contract.specs.stochastic import (
    BN_MODES,
    CURVATURE,
    DATA,
    SPECS,
    WHICH_EIG,
    count,
    flag,
    nonneg,
    option,
    positive,
)
from contract.validate import real
from torchimpl.estimators.registry import REGISTRY
from torchimpl.estimators.stochastic import (
    Operator,
    counted,
    draws,
    hutchinson_trace,
    sample_se,
    vector,
)

BREAKDOWN = 10.0  # Lanczos stops when beta <= BREAKDOWN * P * eps * ||T||


def _like(H, v0):
    for x in (H, v0):
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x
    return None


# --- power iteration -----------------------------------------------------------------------


def _deflate(v: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """v minus its projection on the rows of Q (classical Gram-Schmidt, twice)."""
    for _ in range(2):
        v = v - Q.T @ (Q @ v)
    return v


def _power_one(op, v, shift, Q, tol, max_iter):
    """One deflated power iteration: (v, iterations, converged)."""
    v = _deflate(v, Q)
    if not float(torch.linalg.vector_norm(v)) > 0:
        raise ValueError("a start vector lies in the span of the eigenvectors found before it")
    v = v / torch.linalg.vector_norm(v)
    mu_old = None
    for it in range(1, max_iter + 1):
        w = _deflate(op(v) + shift * v, Q)
        mu, norm_w = float(v @ w), float(torch.linalg.vector_norm(w))
        if norm_w == 0.0:
            return v, it, True
        v = w / norm_w
        if tol > 0 and mu_old is not None and abs(mu - mu_old) <= tol * abs(mu):
            return v, it, True
        mu_old = mu
    return v, max_iter, False


def power_iteration(H, v0=None, *, shift=0.0, top_n=1, tol=1e-3, max_iter=100, seed=None,
                    dim=None):
    shift, tol, max_iter = real("shift", shift), nonneg("tol", tol), count("max_iter", max_iter)
    op = Operator(H, dim, symmetric=True, like=_like(H, v0))
    top_n = count("top_n", top_n, high=op.n)
    V0 = draws("v0", v0, seed, "gaussian", top_n, op.n, op.like)
    if V0.shape[0] != top_n:
        raise ValueError(f"v0 must hold top_n={top_n} start vectors, got {V0.shape[0]}")
    Q, its, conv = V0[:0], [], []
    for k in range(top_n):
        v, it, ok = _power_one(op, V0[k], shift, Q, tol, max_iter)
        Q, its, conv = torch.cat([Q, v[None]]), its + [it], conv + [ok]
    HQ = op(Q)
    lam = (Q * HQ).sum(dim=1)
    residuals = torch.linalg.vector_norm(HQ - lam[:, None] * Q, dim=1)
    return {"eigenvalues": lam, "eigenvectors": Q, "residuals": residuals,
            "iterations": torch.tensor(its), "converged": torch.tensor(conv), "n_hvp": op.calls}


# --- Lanczos and stochastic Lanczos quadrature ---------------------------------------------


def lanczos(op, v: torch.Tensor, m: int):
    """(alpha (j,), beta (j - 1,), beta_j) of j <= m Lanczos steps from v with full
    reorthogonalization; beta_j is the norm of the next residual (0 on breakdown or when the
    space is exhausted, j = P)."""
    Q, alpha, beta = [v / torch.linalg.vector_norm(v)], [], []
    eps = torch.finfo(v.dtype).eps
    for j in range(m):
        w = op(Q[j])
        alpha.append(Q[j] @ w)
        if j + 1 == op.n:
            return _steps(alpha, beta, v, 0.0)
        w = _deflate(w, torch.stack(Q))
        b = float(torch.linalg.vector_norm(w))
        size = max(max(abs(float(a)) for a in alpha), max(beta, default=0.0))
        if b <= BREAKDOWN * op.n * eps * size:
            return _steps(alpha, beta, v, 0.0)
        if j + 1 == m:
            return _steps(alpha, beta, v, b)
        beta.append(b)
        Q.append(w / b)
    raise AssertionError("unreachable")


def _steps(alpha, beta, v, b_next):
    return torch.stack(alpha), v.new_tensor(beta), b_next


def _ritz(alpha: torch.Tensor, beta: torch.Tensor):
    """Ritz values (ascending), first and last components of the Ritz vectors of T."""
    T = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    theta, S = torch.linalg.eigh(T)
    return theta, S[0], S[-1]


def _extreme(theta, last, b_m, k, which):
    key = {"LA": -theta, "SA": theta, "LM": -theta.abs()}[which]
    order = torch.argsort(key, stable=True)[:k]
    return theta[order], (b_m * last[order]).abs()


def _density(nodes, weights, sigma, grid, n_grid):
    spread = float(nodes.max() - nodes.min())
    if sigma is None:
        sigma = 0.01 * (spread or float(nodes.abs().max()) or 1.0)
    if grid is None:
        lo, hi = float(nodes.min()) - 3 * sigma, float(nodes.max()) + 3 * sigma
        grid = torch.linspace(lo, hi, n_grid, dtype=nodes.dtype, device=nodes.device)
    grid = vector("grid", grid, like=nodes)
    kernel = torch.exp(-0.5 * ((grid[:, None, None] - nodes) / sigma) ** 2)
    density = (kernel * weights).sum(dim=(1, 2)) / (len(nodes) * sigma * math.sqrt(2 * math.pi))
    return grid, density


def lanczos_slq(H, v0=None, *, m=30, k=1, which="LA", n_v=1, sigma=None, grid=None, n_grid=200,
                seed=None, dim=None):
    which, n_v = option("which", which, WHICH_EIG), count("n_v", n_v)
    n_grid = count("n_grid", n_grid)
    sigma = None if sigma is None else positive("sigma", sigma)
    op = Operator(H, dim, symmetric=True, like=_like(H, v0))
    m = min(count("m", m), op.n)
    k = count("k", k, high=m)
    V = draws("v0", v0, seed, "gaussian", n_v, op.n, op.like)
    nodes, weights, first_run = V.new_zeros(len(V), m), V.new_zeros(len(V), m), None
    for row, v in enumerate(V):
        if not float(torch.linalg.vector_norm(v)) > 0:
            raise ValueError("a Lanczos start vector is zero")
        alpha, beta, b_m = lanczos(op, v, m)
        theta, first, last = _ritz(alpha, beta)
        nodes[row, : len(theta)], weights[row, : len(theta)] = theta, first**2
        first_run = first_run or (theta, last, b_m)
    theta, last, b_m = first_run
    if len(theta) < k:
        raise ValueError(f"Lanczos found an invariant subspace of size {len(theta)} < k={k}")
    eigenvalues, residuals = _extreme(theta, last, b_m, k, which)
    grid, density = _density(nodes, weights, sigma, grid, n_grid)
    return {"eigenvalues": eigenvalues, "residuals": residuals, "nodes": nodes,
            "weights": weights, "grid": grid, "density": density, "n_hvp": op.calls}


# --- sharpness (004 §3) --------------------------------------------------------------------


def _with_decay(loss, grad, wd):
    """L + (wd/2)||v||^2 and its gradient."""
    return (lambda v: loss(v) + 0.5 * wd * (v @ v)), (lambda v: grad(v) + wd * v)


def _unit(v: torch.Tensor) -> torch.Tensor:
    n = float(torch.linalg.vector_norm(v))
    return v / n if n > 0 else torch.zeros_like(v)  # g = 0 -> eps = 0 (INVENTORY §5 item 16)


def _pgd(L, dL, x, eps, rho, steps, L0, best):
    """The best of the first-order value ``best`` and n projected normalised ascent steps."""
    for _ in range(steps):
        eps = eps + rho * _unit(dL(x + eps))
        eps = eps * min(1.0, rho / max(float(torch.linalg.vector_norm(eps)), 1e-300))
        best = max(best, float(L(x + eps)) - L0)
    return best


def _curvature(H, x, curvature, seed, n_probes):
    n = x.numel()
    if curvature == "exact":
        M = Operator(H, n, symmetric=True, like=x).dense()
        return float(torch.linalg.eigvalsh((M + M.T) / 2).max()), float(torch.trace(M))
    if seed is None:
        raise ValueError("curvature='stochastic' needs a seed (power and Hutchinson probes)")
    if callable(H):
        H_op = H
    else:
        H_op = torch.as_tensor(H).to(dtype=x.dtype, device=x.device)
    lam = power_iteration(H_op, seed=seed + 1, dim=n)["eigenvalues"][0]
    trace = hutchinson_trace(H_op, seed=seed + 2, n_probes=n_probes, dim=n)["trace"]
    return float(lam), float(trace)


def sharpness(loss, grad, x, z=None, *, rho=0.1, n_samples=100, seed=None, H=None,
              curvature="exact", n_probes=100, pgd_steps=0, weight_decay=0.0,
              include_weight_decay_term=False, data="full_train", bn_mode="eval"):
    rho, n_samples = positive("rho", rho), count("n_samples", n_samples)
    curvature, n_probes = option("curvature", curvature, CURVATURE), count("n_probes", n_probes)
    pgd_steps = count("pgd_steps", pgd_steps, low=0)
    wd, with_wd = nonneg("weight_decay", weight_decay), flag(
        "include_weight_decay_term", include_weight_decay_term)
    protocol = {"data": option("data", data, DATA), "bn_mode": option("bn_mode", bn_mode, BN_MODES),
                "include_weight_decay_term": with_wd}
    x = vector("x", x)
    f = counted("loss", loss, x)
    L, dL = _with_decay(f, counted("grad", grad, x), wd if with_wd else 0.0)
    Z = draws("z", z, seed, "gaussian", n_samples, x.numel(), x)
    L0 = float(L(x))
    eps = rho * _unit(dL(x))  # 004 §3: the first-order maximiser rho g/||g||
    avg = torch.stack([L(x + rho * _unit(zk)) - L0 for zk in Z])
    se = sample_se(avg)
    out = {"loss": L0, "delta_L_worst": float(L(x + eps)) - L0, "delta_L_avg": float(avg.mean()),
           "delta_L_avg_se": None if se is None else float(se), "protocol": protocol}
    if pgd_steps:
        out["delta_L_worst_pgd"] = _pgd(L, dL, x, eps, rho, pgd_steps, L0, out["delta_L_worst"])
    if H is not None:
        out["lambda_max"], out["trace"] = _curvature(H, x, curvature, seed, n_probes)
    out["n_evaluations"] = f.calls
    return out


# --- iteration spectrum --------------------------------------------------------------------


def _radius(T: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """The larger root modulus of r^2 - T r + D (real T, D)."""
    disc = T * T - 4.0 * D
    real_roots = (T.abs() + torch.clamp(disc, min=0.0).sqrt()) / 2.0
    return torch.where(disc < 0, D.abs().sqrt(), real_roots)


def iteration_spectrum(step_lambda, momentum):
    h = vector("step_lambda", step_lambda)[:, None]
    beta = vector("momentum", momentum, like=h)[None, :]
    if bool((beta < 0).any()):
        raise ValueError("momentum must be >= 0")
    # rule:fo.heavy_ball thesis: [[1 + beta - h, -beta], [1, 0]]: trace 1 + beta - h, det beta
    heavy_ball = _radius(1.0 + beta - h, beta + 0.0 * h)
    # rule:fo.nesterov: r^2 - (1 + beta)(1 - h) r + beta (1 - h)
    nag = _radius((1.0 + beta) * (1.0 - h), beta * (1.0 - h))
    return {"gd": (1.0 - h[:, 0]).abs(), "heavy_ball": heavy_ball, "nag": nag}


for _key, _fn in (
    ("est:power_iteration", power_iteration),
    ("est:lanczos_slq", lanczos_slq),
    ("est:sharpness", sharpness),
    ("est:iteration_spectrum", iteration_spectrum),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
