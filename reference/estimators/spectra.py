"""Spectra and sharpness (INVENTORY §3.5): power iteration, Lanczos with stochastic Lanczos
quadrature, the four sharpness metrics of 004 §3 and the iteration spectrum of GD, heavy ball
and NAG. Operator inputs as in `reference.estimators.stochastic`; docs and option defaults in
`contract.specs.stochastic.SPECS`.

The Lanczos process is written here (not ``scipy.sparse.linalg.eigsh``) so that the tridiagonal
T of each start vector, which stochastic Lanczos quadrature needs, is the same computation in
both layers; the tests check the extreme Ritz values against ``eigsh`` on a LinearOperator.
"""

from __future__ import annotations

import math

import numpy as np

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
from reference.estimators.registry import REGISTRY
from reference.estimators.stochastic import (
    Operator,
    counted,
    draws,
    hutchinson_trace,
    sample_se,
    vector,
)

BREAKDOWN = 10.0  # Lanczos stops when beta <= BREAKDOWN * P * eps * ||T||


# --- power iteration -----------------------------------------------------------------------


def _deflate(v: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """v minus its projection on the rows of Q (classical Gram-Schmidt, twice)."""
    for _ in range(2):
        v = v - Q.T @ (Q @ v)
    return v


def _power_one(op, v, shift, Q, tol, max_iter):
    """One deflated power iteration: (v, iterations, converged)."""
    v = _deflate(v, Q)
    if not np.linalg.norm(v) > 0:
        raise ValueError("a start vector lies in the span of the eigenvectors found before it")
    v = v / np.linalg.norm(v)
    mu_old = None
    for it in range(1, max_iter + 1):
        w = _deflate(op(v) + shift * v, Q)
        mu, norm_w = float(v @ w), float(np.linalg.norm(w))
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
    op = Operator(H, dim, symmetric=True)
    top_n = count("top_n", top_n, high=op.n)
    V0 = draws("v0", v0, seed, "gaussian", top_n, op.n)
    if V0.shape[0] != top_n:
        raise ValueError(f"v0 must hold top_n={top_n} start vectors, got {V0.shape[0]}")
    Q, its, conv = np.zeros((0, op.n)), [], []
    for k in range(top_n):
        v, it, ok = _power_one(op, V0[k], shift, Q, tol, max_iter)
        Q, its, conv = np.vstack([Q, v]), its + [it], conv + [ok]
    HQ = op(Q)
    lam = np.einsum("kp,kp->k", Q, HQ)
    residuals = np.linalg.norm(HQ - lam[:, None] * Q, axis=1)
    return {"eigenvalues": lam, "eigenvectors": Q, "residuals": residuals,
            "iterations": np.array(its), "converged": np.array(conv), "n_hvp": op.calls}


# --- Lanczos and stochastic Lanczos quadrature ---------------------------------------------


def lanczos(op, v: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(alpha (j,), beta (j - 1,), beta_j) of j <= m Lanczos steps from v with full
    reorthogonalization; beta_j is the norm of the next residual (0 on breakdown or when the
    space is exhausted, j = P)."""
    Q, alpha, beta = [v / np.linalg.norm(v)], [], []
    for j in range(m):
        w = op(Q[j])
        alpha.append(float(Q[j] @ w))
        if j + 1 == op.n:
            return np.array(alpha), np.array(beta), 0.0
        w = _deflate(w, np.stack(Q))
        b = float(np.linalg.norm(w))
        size = max(np.abs(alpha).max(), max(beta, default=0.0))
        if b <= BREAKDOWN * op.n * np.finfo(np.float64).eps * size:
            return np.array(alpha), np.array(beta), 0.0
        if j + 1 == m:
            return np.array(alpha), np.array(beta), b
        beta.append(b)
        Q.append(w / b)
    raise AssertionError("unreachable")


def _ritz(alpha: np.ndarray, beta: np.ndarray):
    """Ritz values (ascending), first and last components of the Ritz vectors of T."""
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    theta, S = np.linalg.eigh(T)
    return theta, S[0], S[-1]


def _extreme(theta, last, b_m, k, which):
    order = {"LA": np.argsort(-theta, kind="stable"), "SA": np.argsort(theta, kind="stable"),
             "LM": np.argsort(-np.abs(theta), kind="stable")}[which][:k]
    return theta[order], np.abs(b_m * last[order])


def _density(nodes, weights, sigma, grid, n_grid):
    spread = float(nodes.max() - nodes.min())
    if sigma is None:
        sigma = 0.01 * (spread or float(np.abs(nodes).max()) or 1.0)
    if grid is None:
        grid = np.linspace(nodes.min() - 3 * sigma, nodes.max() + 3 * sigma, n_grid)
    grid = vector("grid", grid)
    kernel = np.exp(-0.5 * ((grid[:, None, None] - nodes) / sigma) ** 2)
    density = (kernel * weights).sum(axis=(1, 2)) / (len(nodes) * sigma * math.sqrt(2 * math.pi))
    return grid, density


def lanczos_slq(H, v0=None, *, m=30, k=1, which="LA", n_v=1, sigma=None, grid=None, n_grid=200,
                seed=None, dim=None):
    which, n_v = option("which", which, WHICH_EIG), count("n_v", n_v)
    n_grid = count("n_grid", n_grid)
    sigma = None if sigma is None else positive("sigma", sigma)
    op = Operator(H, dim, symmetric=True)
    m = min(count("m", m), op.n)
    k = count("k", k, high=m)
    V = draws("v0", v0, seed, "gaussian", n_v, op.n)
    nodes, weights, first_run = np.zeros((len(V), m)), np.zeros((len(V), m)), None
    for row, v in enumerate(V):
        if not np.linalg.norm(v) > 0:
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
    return (lambda v: loss(v) + 0.5 * wd * float(v @ v)), (lambda v: grad(v) + wd * v)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else np.zeros_like(v)  # g = 0 -> eps = 0 (INVENTORY §5 item 16)


def _pgd(L, dL, x, eps, rho, steps, L0, best):
    """The best of the first-order value ``best`` and n projected normalised ascent steps."""
    for _ in range(steps):
        eps = eps + rho * _unit(dL(x + eps))
        eps = eps * min(1.0, rho / max(float(np.linalg.norm(eps)), 1e-300))
        best = max(best, L(x + eps) - L0)
    return best


def _curvature(H, n, curvature, seed, n_probes):
    if curvature == "exact":
        M = Operator(H, n, symmetric=True).dense()
        return float(np.linalg.eigvalsh((M + M.T) / 2).max()), float(np.trace(M))
    if seed is None:
        raise ValueError("curvature='stochastic' needs a seed (power and Hutchinson probes)")
    lam = power_iteration(H, seed=seed + 1, dim=n)["eigenvalues"][0]
    return float(lam), float(hutchinson_trace(H, seed=seed + 2, n_probes=n_probes, dim=n)["trace"])


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
    f = counted("loss", loss)
    L, dL = _with_decay(f, counted("grad", grad), wd if with_wd else 0.0)
    Z = draws("z", z, seed, "gaussian", n_samples, x.size)
    L0 = float(L(x))
    eps = rho * _unit(dL(x))  # 004 §3: the first-order maximiser rho g/||g||
    avg = np.array([float(L(x + rho * _unit(zk))) - L0 for zk in Z])
    out = {"loss": L0, "delta_L_worst": float(L(x + eps)) - L0, "delta_L_avg": float(avg.mean()),
           "delta_L_avg_se": sample_se(avg), "protocol": protocol}
    if pgd_steps:
        worst = out["delta_L_worst"]
        out["delta_L_worst_pgd"] = float(_pgd(L, dL, x, eps, rho, pgd_steps, L0, worst))
    if H is not None:
        out["lambda_max"], out["trace"] = _curvature(H, x.size, curvature, seed, n_probes)
    out["n_evaluations"] = f.calls
    return out


# --- iteration spectrum --------------------------------------------------------------------


def _radius(T: np.ndarray, D: np.ndarray) -> np.ndarray:
    """The larger root modulus of r^2 - T r + D (real T, D)."""
    disc = T * T - 4.0 * D
    real_roots = (np.abs(T) + np.sqrt(np.maximum(disc, 0.0))) / 2.0
    return np.where(disc < 0, np.sqrt(np.abs(D)), real_roots)


def iteration_spectrum(step_lambda, momentum):
    h = vector("step_lambda", step_lambda)[:, None]
    beta = vector("momentum", momentum)[None, :]
    if np.any(beta < 0):
        raise ValueError("momentum must be >= 0")
    # rule:fo.heavy_ball thesis: [[1 + beta - h, -beta], [1, 0]]: trace 1 + beta - h, det beta
    heavy_ball = _radius(1.0 + beta - h, beta + 0.0 * h)
    # rule:fo.nesterov: r^2 - (1 + beta)(1 - h) r + beta (1 - h)
    nag = _radius((1.0 + beta) * (1.0 - h), beta * (1.0 - h))
    return {"gd": np.abs(1.0 - h[:, 0]), "heavy_ball": heavy_ball, "nag": nag}


for _key, _fn in (
    ("est:power_iteration", power_iteration),
    ("est:lanczos_slq", lanczos_slq),
    ("est:sharpness", sharpness),
    ("est:iteration_spectrum", iteration_spectrum),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
