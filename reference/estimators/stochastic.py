"""Operator-level stochastic estimators (INVENTORY §3.1, §3.2, §3.4, §3.5, §3.8): Hutchinson
diagonal and trace, finite-difference HVP, Hessian sensitivity and difference, preconditioner
statistics, reduction ratio, GNB, label noise and the generalisation gap.

Inputs are operators and arrays (`contract.specs.stochastic`): ``H`` a dense matrix or a callable
``hvp(v) -> H v``, loss and gradient callables on the flat vector, probes as arrays or drawn from
a seed by `reference.oracle.probe`. Docs and option defaults: `contract.specs.stochastic.SPECS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr

from contract import Estimator
from contract.specs.estimators import SYM_RTOL
from contract.specs.stochastic import (
    ABS_MODES,
    BATCHES,
    CONVENTIONS,
    DAMPING_MODELS,
    DISTS,
    GNB_MODES,
    H_HAT_MODES,
    NOISE_MODELS,
    SPECS,
    WHICH_H,
    corrupted_count,
    count,
    diag_seeds,
    difference_seeds,
    flag,
    needs_seed,
    nonneg,
    option,
    positive,
    start_dim,
    unit_interval,
)
from contract.specs.zeroth_order import check_seed
from reference.estimators.gradient_noise import finite, minibatch_moments
from reference.estimators.registry import REGISTRY
from reference.oracle import probe

# --- shared input helpers (also used by reference.estimators.spectra) ----------------------


def vector(name: str, x: Any, n: int | None = None) -> np.ndarray:
    v = finite(name, x)
    if v.ndim != 1 or v.size == 0 or (n is not None and v.size != n):
        want = f"({n},)" if n is not None else "(P,) with P >= 1"
        raise ValueError(f"{name} must have shape {want}, got {v.shape}")
    return v


class Operator:
    """``H`` as a map on rows with an HVP counter: a dense square matrix or a callable
    ``hvp(v) -> H v``. ``symmetric``: a matrix must be symmetric (within SYM_RTOL) and is
    symmetrised."""

    def __init__(self, H: Any, dim: Any = None, symmetric: bool = False) -> None:
        self.calls, self.fn, self.M = 0, None, None
        if callable(H):
            self.fn, self.n = H, start_dim(dim, None)
            return
        M = finite("H", H)
        if M.ndim != 2 or M.shape[0] != M.shape[1] or M.size == 0:
            raise ValueError(f"H must be a square matrix (P, P) or a callable, got {M.shape}")
        if symmetric:
            if np.linalg.norm(M - M.T) > SYM_RTOL * np.linalg.norm(M):
                raise ValueError(f"H must be symmetric (within rtol {SYM_RTOL})")
            M = (M + M.T) / 2
        self.M, self.n = M, start_dim(dim, M.shape[0])

    def __call__(self, V: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(V)
        self.calls += rows.shape[0]
        if self.M is not None:
            out = rows @ self.M.T
        else:
            out = np.stack([vector("hvp(v)", self.fn(v), self.n) for v in rows])
        return out[0] if V.ndim == 1 else out

    def dense(self) -> np.ndarray:
        """The matrix (a callable is materialised column by column: P HVPs)."""
        return self.M if self.M is not None else self(np.eye(self.n)).T


def draws(name: str, given: Any, seed: Any, dist: str, K: int, n: int) -> np.ndarray:
    """Probes (K', n): ``given`` (n,) or (K', n) as is, or K draws probe(dist, (K, n), seed)."""
    if (given is None) == (seed is None):
        raise ValueError(f"needs exactly one of {name} (probes) and seed")
    if seed is not None:
        return probe(dist, (K, n), check_seed(seed))
    Z = finite(name, given)
    if Z.ndim not in (1, 2) or Z.shape[-1] != n or Z.size == 0:
        raise ValueError(f"{name} must have shape ({n},) or (K, {n}) with K >= 1, got {Z.shape}")
    return np.atleast_2d(Z)


def counted(name: str, fn: Any) -> Callable:
    """``fn`` with a call counter ``.calls``; its values must be finite."""
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")

    def call(v):
        call.calls += 1
        return finite(f"{name}(v)", fn(v))

    call.calls = 0
    return call


def sample_se(samples: np.ndarray):
    """std (ddof 1) / sqrt(K) of the first axis; None when K = 1."""
    K = samples.shape[0]
    return None if K == 1 else samples.std(axis=0, ddof=1) / math.sqrt(K)


# --- Hutchinson ----------------------------------------------------------------------------


def _hutchinson(H, z, dist, n_probes, seed, dim):
    dist, n_probes = option("dist", dist, DISTS), count("n_probes", n_probes)
    op = Operator(H, dim)
    Z = draws("z", z, seed, dist, n_probes, op.n)
    return Z, op(Z), op


def hutchinson_diag(H, z=None, *, dist="rademacher", n_probes=1, abs="none", seed=None,
                    dim=None):
    mode = option("abs", abs, ABS_MODES)
    Z, HZ, op = _hutchinson(H, z, dist, n_probes, seed, dim)
    S = Z * HZ  # 003 §3.5: D = E[z ⊙ (H z)]
    diag = {"none": lambda: S.mean(axis=0), "abs_of_mean": lambda: np.abs(S.mean(axis=0)),
            "mean_of_abs": lambda: np.abs(S).mean(axis=0)}[mode]()
    return {"diag": diag, "samples": S, "n_hvp": op.calls}


def hutchinson_trace(H, z=None, *, dist="rademacher", n_probes=1, seed=None, dim=None):
    Z, HZ, op = _hutchinson(H, z, dist, n_probes, seed, dim)
    t = np.einsum("kp,kp->k", Z, HZ)
    return {"trace": t.mean(), "samples": t, "se": sample_se(t), "n_hvp": op.calls}


# --- finite-difference HVP -----------------------------------------------------------------


def fd_hvp(grad, x, d, *, h=1e-6, central=False):
    h, central = positive("h", h), flag("central", central)
    x, g = vector("x", x), counted("grad", grad)
    d = vector("d", d, x.size)
    # 003 §3.6: (grad f(x + h d) - grad f(x)) / h
    if central:
        Hd = (g(x + h * d) - g(x - h * d)) / (2.0 * h)
    else:
        Hd = (g(x + h * d) - g(x)) / h
    return {"hvp": Hd, "evaluations": g.calls}


# --- Hessian sensitivity and difference (004 §6.2) -----------------------------------------


def _transform(which: str, beta2: float) -> Callable:
    """H' from the estimate h and the previous EMA D (used by ema_D only)."""
    return {"raw": lambda h, D: h, "abs": lambda h, D: np.abs(h),
            "ema_D": lambda h, D: beta2 * D + (1.0 - beta2) * np.abs(h)}[which]


def _diag_options(H_hat, H_hat_mode, which, beta2, seed, batches="same"):
    if not callable(H_hat):
        raise TypeError(f"H_hat must be callable, got {type(H_hat).__name__}")
    mode, which = option("H_hat_mode", H_hat_mode, H_HAT_MODES), option("which", which, WHICH_H)
    beta2 = unit_interval("beta2", beta2)
    if seed is None and needs_seed(mode, batches):
        raise ValueError(f"H_hat_mode={mode!r}, batches={batches!r} needs a seed")
    return mode, _transform(which, beta2), None if seed is None else check_seed(seed)


def _D0(D_prev, n):
    return np.zeros(n) if D_prev is None else vector("D_prev", D_prev, n)


def hessian_sensitivity(H_hat, x, delta=None, *, rho=0.1, N=10, H_hat_mode="exact_diag",
                        which="raw", beta2=0.999, D_prev=None, seed=None):
    rho, N = nonneg("rho", rho), count("N", N)
    mode, transform, seed = _diag_options(H_hat, H_hat_mode, which, beta2, seed)
    x = vector("x", x)
    U = draws("delta", delta, None if delta is not None else seed, "gaussian", N, x.size)
    D0 = _D0(D_prev, x.size)
    seeds = diag_seeds(mode, seed, 2 * len(U))

    def Hp(point, s):
        return transform(vector("H_hat(x, seed)", H_hat(point, s), x.size), D0)

    base = Hp(x, seeds[0])
    steps = rho * U / np.linalg.norm(U, axis=1, keepdims=True)  # 004 Eq. (7)
    values = np.array([np.linalg.norm(Hp(x + e, s) - base)
                       for e, s in zip(steps, seeds[1:1 + len(U)], strict=True)])
    level = np.array([np.linalg.norm(Hp(x, s) - base) for s in seeds[1 + len(U):]])
    return {"sensitivity": values.max(), "values": values, "reference_level": level.max(),
            "n_evaluations": 1 + 2 * len(U)}


def _sophia_clip(gamma, clip_eps):
    return lambda h: np.maximum(gamma * h, clip_eps)


def hessian_difference(H_hat, trajectory, *, k=10, H_hat_mode="exact_diag", which="raw",
                       batches="same", sophia_clip_before_diff=False, gamma=0.01,
                       clip_eps=1e-12, beta2=0.999, D_prev=None, seed=None):
    batches = option("batches", batches, BATCHES)
    mode, transform, seed = _diag_options(H_hat, H_hat_mode, which, beta2, seed, batches)
    clip = flag("sophia_clip_before_diff", sophia_clip_before_diff)
    gamma, clip_eps = positive("gamma", gamma), nonneg("clip_eps", clip_eps)
    X = finite("trajectory", trajectory)
    if X.ndim != 2 or X.size == 0:
        raise ValueError(f"trajectory must have shape (T, P), got {X.shape}")
    k = count("k", k, high=X.shape[0] - 1)
    D, Hs = _D0(D_prev, X.shape[1]), []
    for x, s in zip(X, difference_seeds(mode, batches, seed, X.shape[0]), strict=True):
        D = transform(vector("H_hat(x, seed)", H_hat(x, s), X.shape[1]), D)
        Hs.append(_sophia_clip(gamma, clip_eps)(D) if clip else D)
    Hs = np.stack(Hs)
    diffs = np.linalg.norm(Hs[k:] - Hs[:-k], axis=1)  # 004 Eq. (8)
    return {"differences": diffs, "max": diffs.max(), "n_evaluations": X.shape[0]}


# --- preconditioner statistics (004 §6.1) --------------------------------------------------


def precond_stats(D, *, eta=1.0, power=1.0, eps=0.0, bias_correction=1.0, x=None, bins=50):
    eta, power, eps = nonneg("eta", eta), positive("power", power), nonneg("eps", eps)
    bc, bins = positive("bias_correction", bias_correction), count("bins", bins)
    D = np.atleast_2d(finite("D", D))
    if D.ndim != 2 or D.size == 0 or np.any(D < 0):
        raise ValueError(f"D must be non-negative with shape (P,) or (T, P), got {D.shape}")
    denom = (D / bc) ** power + eps
    if np.any(denom == 0):
        raise ValueError("the denominator (D / bias_correction)^power + eps has a zero entry")
    out = {"denominator": denom, "precond_step_size": eta * np.sqrt((denom**-2.0).sum(axis=1))}
    density, edges = np.histogram(denom, bins=bins, density=True)
    out.update(hist_density=density, hist_edges=edges)
    if x is not None:
        X = finite("x", x)
        if X.shape != (D.shape[0] + 1, D.shape[1]):
            raise ValueError(f"x must have shape (T + 1, P) = {(D.shape[0] + 1, D.shape[1])}")
        out["update_size"] = np.linalg.norm(np.diff(X, axis=0), axis=1)
    return out


# --- reduction ratio (003 §3.6) ------------------------------------------------------------


def reduction_ratio(loss, x, p, g, H, *, lam=0.0, model="undamped"):
    lam, model = nonneg("lam", lam), option("model", model, DAMPING_MODELS)
    x = vector("x", x)
    p, g = vector("p", p, x.size), vector("g", g, x.size)
    f, op = counted("loss", loss), Operator(H, x.size)
    actual = float(f(x + p) - f(x))
    predicted = float(g @ p + 0.5 * p @ op(p))
    if model == "damped":
        predicted += 0.5 * lam * float(p @ p)
    ratio = actual / predicted if predicted != 0 else 1.0
    return {"ratio": ratio, "actual": actual, "predicted": predicted}


# --- GNB -----------------------------------------------------------------------------------


def _index_draws(name: str, value: Any, B: int, bound: int, K: int | None) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] != B or a.shape[0] == 0 or (K is not None and a.shape[0] != K):
        raise ValueError(f"{name} must have shape (K, B={B}) with K >= 1, got {a.shape}")
    if np.any(a < 0) or np.any(a >= bound):
        raise ValueError(f"{name} must lie in [0, {bound})")
    return a


def gnb(G, p, *, B, convention="ext", mode="exact", sampling="without_replacement",
        max_batches=200_000, indices=None, y=None):
    convention, mode = option("convention", convention, CONVENTIONS), option(
        "mode", mode, GNB_MODES)
    B = count("B", B)
    scale = float(B) if convention == "ext" else 1.0
    if mode == "exact":
        if indices is not None or y is not None:
            raise ValueError("indices and y are draws for mode='draws'; mode='exact' takes none")
        moments = minibatch_moments(G, p, B=B, labels="model", sampling=sampling, mode="exact",
                                    max_batches=max_batches)
        return {"h": scale * np.diag(moments["second_moment"]).copy()}
    G = finite("G", G)
    if G.ndim != 3 or 0 in G.shape:
        raise ValueError(f"G must have shape (N, C, P), got {G.shape}")
    if indices is None or y is None:
        raise ValueError("mode='draws' needs indices (K, B) and sampled labels y (K, B)")
    idx = _index_draws("indices", indices, B, G.shape[0], None)
    y = _index_draws("y", y, B, G.shape[1], idx.shape[0])
    g_hat = G[idx, y].mean(axis=1)
    S = scale * g_hat * g_hat
    return {"h": S.mean(axis=0), "samples": S}


# --- label noise ---------------------------------------------------------------------------


def label_noise(labels, C, p, *, model="flip_to_other", draws=None, seed=None):
    model, p = option("model", model, NOISE_MODELS), unit_interval("p", p)
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty integer vector (N,), got {y.dtype} {y.shape}")
    C = count("C", C, low=2)
    if np.any(y < 0) or np.any(y >= C):
        raise ValueError(f"labels must lie in [0, C={C})")
    N = y.size
    if (draws is None) == (seed is None):
        raise ValueError("needs exactly one of draws (2, N) and seed")
    u = probe("gaussian", (2, N), check_seed(seed)) if seed is not None else finite("draws", draws)
    if u.shape != (2, N):
        raise ValueError(f"draws must have shape (2, N={N}), got {u.shape}")
    mask = np.zeros(N, dtype=bool)
    mask[np.argsort(u[0], kind="stable")[: corrupted_count(p, N)]] = True
    uniform = np.minimum(ndtr(u[1]), np.nextafter(1.0, 0.0))
    if model == "flip_to_other":
        new = (y + 1 + np.floor(uniform * (C - 1)).astype(y.dtype)) % C
    else:
        new = np.floor(uniform * C).astype(y.dtype)
    out = np.where(mask, new, y)
    changed = out != y
    return {"labels": out, "mask": mask, "changed": changed, "rate": float(changed.mean())}


# --- generalisation gap --------------------------------------------------------------------


def _ce_acc(name: str, logits: Any, y: Any) -> tuple[float, float]:
    Z = finite(name, logits)
    y = np.asarray(y)
    if Z.ndim != 2 or Z.shape[0] == 0 or y.shape != (Z.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"{name} (N, C) and its integer labels (N,) do not match")
    if np.any(y < 0) or np.any(y >= Z.shape[1]):
        raise ValueError(f"labels of {name} must lie in [0, {Z.shape[1]})")
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    return float(-log_p[rows, y].mean()), float((Z.argmax(axis=1) == y).mean())


def gen_gap(logits_train, y_train, logits_val, y_val):
    L_train, acc_train = _ce_acc("logits_train", logits_train, y_train)
    L_val, acc_val = _ce_acc("logits_val", logits_val, y_val)
    return {"L_train": L_train, "L_val": L_val, "delta_L": L_val - L_train,
            "acc_train": acc_train, "acc_val": acc_val, "delta_acc": acc_train - acc_val}


for _key, _fn in (
    ("est:hutchinson_diag", hutchinson_diag),
    ("est:hutchinson_trace", hutchinson_trace),
    ("est:fd_hvp", fd_hvp),
    ("est:hessian_sensitivity", hessian_sensitivity),
    ("est:hessian_difference", hessian_difference),
    ("est:precond_stats", precond_stats),
    ("est:reduction_ratio", reduction_ratio),
    ("est:gnb", gnb),
    ("est:label_noise", label_noise),
    ("est:gen_gap", gen_gap),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
