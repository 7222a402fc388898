"""Cross-checks of the operator-level estimators (INVENTORY §3.1, §3.2, §3.4, §3.5, §3.8).

Both layers get identical NumPy-built inputs (matrices, probes, trajectories, draws); callables
(hvp, loss, grad, H_hat) are written once per layer over the same data, and H_hat's probes are
NumPy draws converted for torch. Each output leaf is compared normwise,
``||ref - torch|| / max(||ref||, S)``, against ``floor(dtype)`` (1e-10 / 1e-4), where S is the
natural magnitude of the leaf, written per estimator:

- sums of n <= 8 products (Hutchinson, GNB, precond_stats, sensitivity): S = the sum of the
  absolute terms; float32 rounding is then n eps32 S < 1e-4 S;
- differences of losses or gradients (fd_hvp, sharpness, reduction_ratio): S = B / floor with
  the written rounding bound B = 10 eps (sum of absolute terms) / D, D the denominator (h, or
  the predicted reduction), as for the zeroth-order quotients;
- iterative eigen-solvers (power iteration to full convergence: max_iter from the eigenvalue
  ratio r so that r^max_iter < 1e-18; Lanczos with m = P): `tolerance.spectral` of the iterated
  operator with eigenvectors (Davis-Kahan), eigenvalues held relative to ||H|| + |shift|; the
  SLQ density moves by that tolerance times (1 + 3 ||H|| / sigma) (the Gaussian kernel's
  Lipschitz constant relative to its height); the m < P regime is not cross-checked;
- the iteration spectrum: float64 runs the same correctly rounded operations (floor); float32
  is held to 10 sqrt(eps32) (T^2 + 4|D|)^(1/2), the displacement of a double root of
  r^2 - T r + D under a relative perturbation eps32 of its coefficients;
- histograms (precond_stats): a value within 10 eps S of an interior bin edge may change bin in
  the other layer: the count vectors may differ by 2 per such value;
- label_noise (integer outputs) is compared exactly; both dtypes pass the float64 draws;
  gen_gap draws logits on a 1/64 grid (exact in float32), so argmax ties are identical.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from reference.oracle import probe
from reference.problems.spectra import random_orthogonal, symmetric
from verify.crosscheck.compare import relative_error, to_numpy
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor, spectral
from verify.strategies import SEEDS, build_curvature, curvature_cases

SAFETY = 10.0


def _t(x: Any, dtype: str) -> Any:
    if isinstance(x, np.ndarray):
        target = getattr(torch, dtype) if x.dtype.kind == "f" else torch.int64
        return torch.as_tensor(x, dtype=target)
    return x


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def _errors(expected: dict, got: dict, scales: dict, tol: float) -> tuple[float, float]:
    """max over keys of the normwise error with each key's scale (default: tiny)."""
    got = to_numpy(got)
    if set(expected) != set(got):
        return math.inf, tol
    errs = [relative_error(expected[k], got[k], atol=scales.get(k, 1e-300)) for k in expected]
    return max(errs, default=0.0), tol


def _mirror(cases, run, note="", max_examples=None) -> Mirror:
    return Mirror("estimator", cases, run, note, max_examples)


def _matrix_cases(dtype: str) -> st.SearchStrategy:
    return curvature_cases(n_max=8, log10_range=(-2.0, 2.0), kinds=("pd", "indefinite"))


# --- Hutchinson ----------------------------------------------------------------------------


def _hutchinson_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "curvature": _matrix_cases(dtype), "seed": SEEDS, "K": st.sampled_from([1, 3, 8]),
        "dist": st.sampled_from(["rademacher", "gaussian"]), "callable": st.booleans(),
        "abs": st.sampled_from(["none", "abs_of_mean", "mean_of_abs"])})


def _operator(H: np.ndarray, case: Case, dtype: str) -> tuple[Any, dict]:
    """The torch form of H (a tensor, or a callable hvp with dim) and its extra kwargs."""
    H_t = _t(H, dtype)
    if case.get("callable"):
        return (lambda v: H_t @ v), {"dim": len(H)}
    return H_t, {}


def _hutchinson_run(key: str):
    def run(ref, tor, case, dtype):
        H = build_curvature(case["curvature"])["H"]
        Z = probe(case["dist"], (case["K"], len(H)), case["seed"])
        opts = {"abs": case["abs"]} if key == "est:hutchinson_diag" else {}
        H_t, extra = _operator(H, case, dtype)
        expected = ref(H, Z, **opts)
        got = tor(H_t, _t(Z, dtype), **opts, **extra)
        terms = np.abs(Z) * (np.abs(Z) @ np.abs(H).T)  # |z| ⊙ |H||z|: the absolute terms
        S = float(np.linalg.norm(terms.sum(axis=1) if key.endswith("trace") else terms))
        scales = {k: S for k in ("diag", "samples", "trace", "se")}
        return _errors(expected, got, scales, floor(dtype))

    return run


# --- finite-difference HVP -----------------------------------------------------------------


def _fd_cases(dtype: str) -> st.SearchStrategy:
    lo = -2.0 if dtype == "float32" else -6.0
    return st.fixed_dictionaries({
        "curvature": _matrix_cases(dtype), "seed": SEEDS, "central": st.booleans(),
        "h": st.floats(min_value=lo, max_value=1.0).map(lambda e: float(10.0**e))})


def _fd_run(ref, tor, case, dtype):
    H = build_curvature(case["curvature"])["H"]
    rng = np.random.default_rng(case["seed"])
    a, x, d = (rng.standard_normal(len(H)) for _ in range(3))
    H_t, a_t = _t(H, dtype), _t(a, dtype)
    expected = ref(lambda v: H @ (v - a), x, d, h=case["h"], central=case["central"])
    got = tor(lambda v: H_t @ (v - a_t), _t(x, dtype), _t(d, dtype), h=case["h"],
              central=case["central"])
    h = case["h"]
    size = np.abs(H).sum() * (np.abs(x).max() + h * np.abs(d).max() + np.abs(a).max())
    B = SAFETY * len(H) * _eps(dtype) * 2 * size / (2 * h if case["central"] else h)
    return _errors(expected, got, {"hvp": B / floor(dtype)}, floor(dtype))


# --- power iteration and Lanczos -----------------------------------------------------------


def _spectrum_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "n": st.integers(min_value=1, max_value=6), "seed": SEEDS,
        "r": st.floats(min_value=0.3, max_value=0.7), "shifted": st.booleans(),
        "top": st.integers(min_value=1, max_value=6), "callable": st.booleans(),
        "which": st.sampled_from(["LA", "SA", "LM"]), "n_v": st.integers(1, 2)})


def _spectrum(case: Case) -> tuple[np.ndarray, float, np.random.Generator]:
    """H with H + c I = Q diag(mu) Q^T, |mu_i| = r^i (signs random, positive when shifted)."""
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    mu = case["r"] ** np.arange(n)
    c = 1.5 if case["shifted"] else 0.0
    if not case["shifted"]:
        mu = mu * rng.choice([-1.0, 1.0], size=n)
    return symmetric(mu - c, random_orthogonal(n, rng)), c, rng


def _power_run(ref, tor, case, dtype):
    H, c, rng = _spectrum(case)
    n = len(H)
    top = min(case["top"], n)
    V0 = rng.standard_normal((top, n))
    max_iter = math.ceil(math.log(1e-18) / math.log(case["r"])) + 5
    opts = {"shift": c, "top_n": top, "tol": 0.0, "max_iter": max_iter}
    H_t, extra = _operator(H, case, dtype)
    expected = ref(H, V0, **opts)
    got = tor(H_t, _t(V0, dtype), **opts, **extra)
    tol = spectral(H + c * np.eye(n), dtype, eigenvectors=True)
    S = 1.0 + c  # ||H + cI|| = 1, |shift| = c
    return _errors(expected, got, {"eigenvalues": S, "residuals": S}, tol)


def _lanczos_run(ref, tor, case, dtype):
    case = {**case, "shifted": False}
    H, _, rng = _spectrum(case)
    n = len(H)
    V0 = rng.standard_normal((case["n_v"], n))
    opts = {"m": n, "k": min(case["top"], n), "which": case["which"], "n_v": case["n_v"]}
    H_t, extra = _operator(H, case, dtype)
    expected = ref(H, V0, **opts)
    got = tor(H_t, _t(V0, dtype), **opts, **extra)
    tol = spectral(H, dtype, eigenvectors=True)
    nodes = expected["nodes"]
    sigma = 0.01 * (float(np.ptp(nodes)) or float(np.abs(nodes).max()) or 1.0)
    lipschitz = 1.0 + 3.0 / sigma  # ||H|| = 1
    height = 1.0 / (sigma * math.sqrt(2 * math.pi))
    scales = {"eigenvalues": 1.0, "residuals": 1.0, "nodes": 1.0, "grid": 1.0 + 3 * sigma,
              "weights": 1.0, "density": height * lipschitz * math.sqrt(len(expected["grid"]))}
    return _errors(expected, got, scales, tol)


# --- sharpness -----------------------------------------------------------------------------


def _sharpness_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "curvature": curvature_cases(n_max=6, log10_range=(-1.0, 1.0), kinds=("pd",)),
        "seed": SEEDS, "K": st.sampled_from([1, 5, 20]), "pgd": st.sampled_from([0, 3]),
        "wd": st.sampled_from([0.0, 0.1])})


def _quadratic(A, a, c, dtype):
    """(loss, grad) of 1/2 (v - a)^T A (v - a) + c in NumPy and in torch."""
    A_t, a_t = _t(A, dtype), _t(a, dtype)
    ref = (lambda v: 0.5 * (v - a) @ A @ (v - a) + c, lambda v: A @ (v - a))
    tor = (lambda v: 0.5 * (v - a_t) @ (A_t @ (v - a_t)) + c, lambda v: A_t @ (v - a_t))
    return ref, tor


def _sharpness_run(ref, tor, case, dtype):
    A = build_curvature(case["curvature"])["H"]
    rng = np.random.default_rng(case["seed"])
    n = len(A)
    a, x = rng.standard_normal(n), rng.standard_normal(n)
    Z = rng.standard_normal((case["K"], n))
    (L, g), (L_t, g_t) = _quadratic(A, a, 1.0, dtype)
    opts = {"pgd_steps": case["pgd"], "weight_decay": case["wd"],
            "include_weight_decay_term": case["wd"] > 0}
    expected = ref(L, g, x, Z, H=A, **opts)
    got = tor(L_t, g_t, _t(x, dtype), _t(Z, dtype), H=_t(A, dtype), **opts)
    r = np.abs(x - a) + 0.1
    loss_abs = 0.5 * r @ np.abs(A) @ r + 1.0 + case["wd"] * (np.abs(x) + 0.1) @ (np.abs(x) + 0.1)
    B = SAFETY * n * _eps(dtype) * loss_abs / floor(dtype)
    scales = {k: B for k in ("loss", "delta_L_worst", "delta_L_avg", "delta_L_avg_se",
                             "delta_L_worst_pgd")}
    scales.update(lambda_max=np.abs(A).sum(), trace=np.abs(A).sum())
    return _errors(expected, got, scales, spectral(A, dtype))


# --- Hessian sensitivity and difference ----------------------------------------------------


def _diag_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "curvature": _matrix_cases(dtype), "seed": st.integers(0, 2**20),
        "mode": st.sampled_from(["exact_diag", "hutchinson_independent", "hutchinson_common"]),
        "which": st.sampled_from(["raw", "abs", "ema_D"]), "D_prev": st.booleans(),
        "N": st.integers(1, 4), "T": st.integers(2, 5), "batches": st.sampled_from(
            ["same", "different"]), "clip": st.booleans()})


def _H_hats(A: np.ndarray, dtype: str):
    """H_hat(x, (z_seed, batch_seed)) = z ⊙ ((A + diag(x ⊙ x) + diag(w_b)) z) in both layers;
    z = 1 for exact_diag; z and the batch shift w_b are NumPy draws."""
    n = len(A)

    def parts(seed):
        z_seed, b_seed = seed
        z = np.ones(n) if z_seed is None else probe("rademacher", (n,), z_seed)
        return z, 0.1 * probe("gaussian", (n,), b_seed)

    def ref(x, seed):
        z, w = parts(seed)
        return z * ((A + np.diag(x * x + w)) @ z)

    A_t = _t(A, dtype)

    def tor(x, seed):
        z, w = (_t(v, dtype) for v in parts(seed))
        return z * ((A_t + torch.diag(x * x + w)) @ z)

    return ref, tor


def _diag_scale(A, X):
    return float(np.abs(A).sum() + np.sum(X * X) + 1.0)


def _sensitivity_run(ref, tor, case, dtype):
    A = build_curvature(case["curvature"])["H"]
    rng = np.random.default_rng(case["seed"])
    n = len(A)
    x, delta, D_prev = rng.standard_normal(n), rng.standard_normal((case["N"], n)), rng.random(n)
    opts = {"H_hat_mode": case["mode"], "which": case["which"], "N": case["N"],
            "seed": case["seed"], "beta2": 0.9}
    if case["D_prev"]:
        opts["D_prev"] = D_prev
    H_ref, H_tor = _H_hats(A, dtype)
    expected = ref(H_ref, x, delta, **opts)
    got = tor(H_tor, _t(x, dtype), _t(delta, dtype), **{k: _t(v, dtype) for k, v in opts.items()})
    S = _diag_scale(A, x[None] + 0.1)
    scales = {k: S for k in ("sensitivity", "values", "reference_level")}
    return _errors(expected, got, scales, floor(dtype))


def _difference_run(ref, tor, case, dtype):
    A = build_curvature(case["curvature"])["H"]
    rng = np.random.default_rng(case["seed"])
    X = rng.standard_normal((case["T"], len(A)))
    opts = {"H_hat_mode": case["mode"], "which": case["which"], "batches": case["batches"],
            "sophia_clip_before_diff": case["clip"], "k": rng.integers(1, case["T"]).item(),
            "seed": case["seed"], "beta2": 0.9}
    H_ref, H_tor = _H_hats(A, dtype)
    expected = ref(H_ref, X, **opts)
    got = tor(H_tor, _t(X, dtype), **opts)
    S = _diag_scale(A, X)
    return _errors(expected, got, {"differences": S, "max": S}, floor(dtype))


# --- preconditioner statistics -------------------------------------------------------------


def _precond_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "T": st.integers(1, 4), "P": st.integers(1, 8),
        "power": st.sampled_from([0.5, 1.0]), "eps": st.sampled_from([0.0, 1e-3]),
        "bc": st.floats(0.1, 1.0), "bins": st.integers(1, 10), "with_x": st.booleans()})


def _precond_run(ref, tor, case, dtype):
    rng = np.random.default_rng(case["seed"])
    D = rng.random((case["T"], case["P"])) + 0.1
    opts = {"eta": 0.1, "power": case["power"], "eps": case["eps"],
            "bias_correction": case["bc"], "bins": case["bins"]}
    if case["with_x"]:
        opts["x"] = rng.standard_normal((case["T"] + 1, case["P"]))
    expected = ref(D, **opts)
    got = to_numpy(tor(_t(D, dtype), **{k: _t(v, dtype) for k, v in opts.items()}))
    tol = floor(dtype)
    denom, edges = expected["denominator"], expected["hist_edges"]
    near = np.abs(denom.reshape(-1, 1) - edges[1:-1]) <= SAFETY * _eps(dtype) * edges[-1]
    if set(got) != set(expected):
        return math.inf, tol
    counts = [np.round(out["hist_density"] * np.diff(out["hist_edges"]) * denom.size)
              for out in (expected, got)]
    if np.abs(counts[0] - counts[1]).sum() > 2 * near.sum():
        return math.inf, tol
    rest = {k: v for k, v in expected.items() if k != "hist_density"}
    got.pop("hist_density", None)
    return _errors(rest, got, {}, tol)


# --- iteration spectrum --------------------------------------------------------------------


def _iteration_cases(dtype: str) -> st.SearchStrategy:
    grid = st.lists(st.floats(0.0, 4.0), min_size=1, max_size=6)
    return st.fixed_dictionaries({"h": grid, "beta": st.lists(st.floats(0.0, 0.99), min_size=1,
                                                               max_size=6)})


def _iteration_run(ref, tor, case, dtype):
    h, beta = np.array(case["h"]), np.array(case["beta"])
    expected = ref(h, beta)
    got = tor(_t(h, dtype), _t(beta, dtype))
    if dtype == "float64":
        return _errors(expected, got, {}, floor(dtype))
    T_max = 1.0 + float(beta.max()) + float(h.max())
    B = SAFETY * math.sqrt(_eps(dtype) * (T_max**2 + 4 * T_max)) * math.sqrt(h.size * beta.size)
    return _errors(expected, got, {k: B / floor(dtype) for k in expected}, floor(dtype))


# --- reduction ratio -----------------------------------------------------------------------


def _reduction_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "curvature": curvature_cases(n_max=6, log10_range=(-1.0, 1.0), kinds=("pd",)),
        "seed": SEEDS, "model": st.sampled_from(["undamped", "damped"]),
        "lam": st.sampled_from([0.0, 0.5]), "callable": st.booleans()})


def _reduction_run(ref, tor, case, dtype):
    A = build_curvature(case["curvature"])["H"]
    rng = np.random.default_rng(case["seed"])
    n = len(A)
    a, x, p = (rng.standard_normal(n) for _ in range(3))
    g = A @ (x - a) + rng.standard_normal(n)  # not the exact gradient: ratio != 1
    (L, _), (L_t, _) = _quadratic(A, a, 0.0, dtype)
    opts = {"lam": case["lam"], "model": case["model"]}
    expected = ref(L, x, p, g, A, **opts)
    got = tor(L_t, _t(x, dtype), _t(p, dtype), _t(g, dtype), _operator(A, case, dtype)[0], **opts)
    r = np.abs(x - a) + np.abs(p)
    B_act = SAFETY * n * _eps(dtype) * (r @ np.abs(A) @ r)
    B_pred = SAFETY * n * _eps(dtype) * (np.abs(g) @ np.abs(p) + np.abs(p) @ np.abs(A) @ np.abs(p)
                                         + case["lam"] * p @ p)
    pred = abs(expected["predicted"]) or 1.0
    B_ratio = (B_act + abs(expected["ratio"]) * B_pred) / pred
    scales = {"actual": B_act, "predicted": B_pred, "ratio": B_ratio}
    return _errors(expected, got, {k: v / floor(dtype) for k, v in scales.items()}, floor(dtype))


# --- GNB, label noise, generalisation gap --------------------------------------------------


def _gnb_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "N": st.integers(1, 5), "C": st.integers(1, 3), "P": st.integers(1, 4),
        "B": st.integers(1, 3), "convention": st.sampled_from(["ext", "code"]),
        "mode": st.sampled_from(["exact", "draws"]),
        "sampling": st.sampled_from(["with_replacement", "without_replacement"])})


def _gnb_run(ref, tor, case, dtype):
    rng = np.random.default_rng(case["seed"])
    N, C, P = case["N"], case["C"], case["P"]
    B = case["B"] if case["sampling"] == "with_replacement" else min(case["B"], N)
    G, p = rng.standard_normal((N, C, P)), rng.dirichlet(np.ones(C), size=N)
    opts: dict[str, Any] = {"B": B, "convention": case["convention"], "mode": case["mode"]}
    if case["mode"] == "exact":
        opts["sampling"] = case["sampling"]
    else:
        opts.update(indices=rng.integers(0, N, (3, B)), y=rng.integers(0, C, (3, B)))
    expected = ref(G, p, **opts)
    got = tor(_t(G, dtype), _t(p, dtype), **{k: _t(v, dtype) for k, v in opts.items()})
    S = B * float(np.abs(G).max()) ** 2 * math.sqrt(P)
    return _errors(expected, got, {"h": S, "samples": S}, floor(dtype))


def _label_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "N": st.integers(1, 30), "C": st.integers(2, 6),
        "p": st.floats(0.0, 1.0), "model": st.sampled_from(["flip_to_other", "resample_uniform"])})


def _label_run(ref, tor, case, dtype):
    rng = np.random.default_rng(case["seed"])
    y, u = rng.integers(0, case["C"], case["N"]), rng.standard_normal((2, case["N"]))
    expected = ref(y, case["C"], case["p"], model=case["model"], draws=u)
    got = tor(torch.as_tensor(y), case["C"], case["p"], model=case["model"],
              draws=torch.as_tensor(u, dtype=torch.float64))
    return _errors(expected, got, {}, floor(dtype))


def _gap_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"seed": SEEDS, "N": st.integers(1, 8), "M": st.integers(1, 8),
                                  "C": st.integers(2, 5)})


def _gap_run(ref, tor, case, dtype):
    rng = np.random.default_rng(case["seed"])
    C = case["C"]

    def logits(N):
        return np.round(64 * rng.standard_normal((N, C))) / 64

    Z_tr, Z_va = logits(case["N"]), logits(case["M"])
    y_tr, y_va = rng.integers(0, C, case["N"]), rng.integers(0, C, case["M"])
    expected = ref(Z_tr, y_tr, Z_va, y_va)
    got = tor(*(_t(a, dtype) for a in (Z_tr, y_tr, Z_va, y_va)))
    S = float(np.abs(np.concatenate([Z_tr.ravel(), Z_va.ravel()])).max()) + math.log(C)
    scales = {k: S for k in ("L_train", "L_val", "delta_L")}
    return _errors(expected, got, scales, floor(dtype))


MIRRORS: dict[str, Mirror] = {
    "est:hutchinson_diag": _mirror(_hutchinson_cases, _hutchinson_run("est:hutchinson_diag")),
    "est:hutchinson_trace": _mirror(_hutchinson_cases, _hutchinson_run("est:hutchinson_trace")),
    "est:fd_hvp": _mirror(_fd_cases, _fd_run, "tol: 10 n eps sum|terms| / h"),
    "est:power_iteration": _mirror(_spectrum_cases, _power_run,
                                   "converged (r^max_iter < 1e-18); spectral tolerance"),
    "est:lanczos_slq": _mirror(_spectrum_cases, _lanczos_run, "m = P; spectral tolerance"),
    "est:sharpness": _mirror(_sharpness_cases, _sharpness_run, "loss differences: 10 n eps |L|"),
    "est:hessian_sensitivity": _mirror(_diag_cases, _sensitivity_run),
    "est:hessian_difference": _mirror(_diag_cases, _difference_run),
    "est:precond_stats": _mirror(_precond_cases, _precond_run, "histogram edge flips allowed"),
    "est:iteration_spectrum": _mirror(_iteration_cases, _iteration_run,
                                      "float32: 10 sqrt(eps (T^2 + 4|D|))"),
    "est:reduction_ratio": _mirror(_reduction_cases, _reduction_run),
    "est:gnb": _mirror(_gnb_cases, _gnb_run),
    "est:label_noise": _mirror(_label_cases, _label_run, "exact (integer outputs)"),
    "est:gen_gap": _mirror(_gap_cases, _gap_run),
}
