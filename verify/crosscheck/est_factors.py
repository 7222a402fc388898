"""Cross-checks of the factor and matrix-diagnostic estimators (INVENTORY §3.3-§3.8).

Each case is a primitive dictionary; NumPy builds the arrays (and the noise draws Z) and both
layers get the same inputs. Outputs are flattened to ``path -> leaf`` and compared leaf by
leaf with `relative_error`; a leaf with a written absolute bound B is held to
``max(tol ||ref||, B)`` (passed as ``atol = B / tol``).

Tolerances (C = 10, eps the machine epsilon of the dtype, n the matrix size):

- min-max and the factor quantities built on it: input rounding moves mm(x) by at most
  2 eps max|x| / (max x - min x) per entry, so ``delta = C eps max|x| / range`` (absolute, on
  [0, 1] values); F = S' H' + lam moves by delta_H + delta_S, and G / F by that over min F;
- EMAs, bias correction, spatial averages, SNR sums, Fisher-diagonal decrements: sums of
  same-signed terms, the floor (1e-10 float64, 1e-4 float32);
- eigenvalues of a symmetric matrix: Weyl, ``C n eps`` normwise relative; eigenvectors:
  Davis-Kahan, ``C n eps ||M|| / gap``; eigenvalues of a non-symmetric matrix: ``C n eps
  ||M|| max_i kappa_i`` absolute with kappa_i the eigenvalue condition numbers (left and right
  eigenvectors); condition numbers and dense Newton decrements: `tolerance.spectral`;
- 2-D DFT: ``C (m + n) eps sqrt(mn)`` relative for F, times 2n for the line fractions;
- KL: ``C C_cls eps (max|z_p| + max|z_q| + log C_cls + 1)`` absolute (log-softmax rounding);
- agreement metrics: absolute bounds from the rounding of each |c_i - r_i| (see `_agreement`).

Discrete outputs (inertia counts, dominant-row fraction, Kaiser count, matching, Spearman
ranks, top-k overlap) are compared exactly whenever the reference's continuous inputs to the
decision are farther than the dtype's rounding bound from the decision boundary; a case that
is rounding-decided drops those leaves (and the leaves computed through them) from the
comparison. Float64 runs the same rule; its bound is so small that only ties present in exact
arithmetic are dropped (the repeated eigenvalue c of the control c I + c 11^T, whose
matching the definition leaves open).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.linalg
import torch
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor, spectral
from verify.strategies import SEEDS, build_curvature, curvature_cases

C = 10.0
Built = tuple[tuple, dict]
Bounds = tuple[float, dict[str, float], set[str]]


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def _to_torch(value: Any, dtype: str) -> Any:
    if isinstance(value, np.ndarray):
        target = getattr(torch, dtype) if value.dtype.kind == "f" else torch.int64
        return torch.as_tensor(value, dtype=target)
    if isinstance(value, Mapping):
        return {k: _to_torch(v, dtype) for k, v in value.items()}
    return value


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}/"))
        return out
    return {prefix.rstrip("/"): tree}


def compare(expected: Any, got: Any, tol: float, bounds: Mapping[str, float] | None = None,
            skip: set[str] | frozenset = frozenset()) -> float:
    """max over leaves (paths ``a/b/c``) of the relative error; ``bounds``: path -> absolute
    bound B (the leaf passes within max(tol ||ref||, B)); ``skip``: paths left out."""
    ref, mir = _flat(expected), _flat(got)
    if set(ref) != set(mir):
        return math.inf
    bounds = bounds or {}
    errors = [relative_error(ref[k], mir[k], atol=max(bounds.get(k, 0.0) / tol, 1e-300))
              for k in ref if k not in skip]
    return max(errors, default=0.0)


def _mirror(cases: Callable[[str], st.SearchStrategy], build: Callable[[Case, str], Built],
            bounds: Callable[[tuple, dict, Any, str], Bounds], note: str) -> Mirror:
    def run(ref_entry, torch_entry, case, dtype):
        args, kwargs = build(case, dtype)
        expected = ref_entry(*args, **kwargs)
        got = torch_entry(*(_to_torch(a, dtype) for a in args),
                          **{k: _to_torch(v, dtype) for k, v in kwargs.items()})
        tol, abs_bounds, skip = bounds(args, kwargs, expected, dtype)
        return compare(expected, got, tol, abs_bounds, skip), tol

    return Mirror("estimator", cases, run, note)


def _plain(args, kwargs, expected, dtype) -> Bounds:
    return floor(dtype), {}, set()


# --- min-max, EFIM, aggregation ------------------------------------------------------------


def _mm_delta(x: np.ndarray, dtype: str) -> float:
    """Absolute rounding bound of min-max normalized x (0 when x is constant)."""
    spread = float(np.max(x) - np.min(x))
    return 0.0 if spread == 0 else C * _eps(dtype) * float(np.abs(x).max()) / spread


def _factor(rng: np.random.Generator, n: int, case: Case) -> np.ndarray:
    """A positive factor vector: offset + U(0, 1), scaled, or exactly constant."""
    if case["constant"]:
        return np.full(n, 10.0 ** case["log_scale"])
    return 10.0 ** case["log_scale"] * (case["offset"] + rng.random(n))


FACTOR_CASE = {
    "seed": SEEDS,
    "log_scale": st.floats(-3.0, 3.0),
    "offset": st.sampled_from([0.0, 0.1, 10.0, 1000.0]),
    "constant": st.booleans(),
}


def _minmax_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        **FACTOR_CASE, "n": st.integers(1, 12), "degenerate": st.sampled_from(["ones", "zeros",
                                                                              "nan"]),
        "form": st.sampled_from(["vector", "matrix"]), "infinities": st.booleans(),
    })


def _minmax_build(case: Case, dtype: str) -> Built:
    x = _factor(np.random.default_rng(case["seed"]), case["n"], case)
    return (x,), {"degenerate": case["degenerate"], "form": case["form"]}


def _minmax_code_build(case: Case, dtype: str) -> Built:
    x = _factor(np.random.default_rng(case["seed"]), case["n"], case)
    if case["infinities"]:
        x = np.concatenate([x, [np.inf, -np.inf]])
    return (x,), {}


def _minmax_bounds(args, kwargs, expected, dtype) -> Bounds:
    x = np.where(np.isfinite(args[0]), args[0], 0.0)
    return floor(dtype), {"": math.sqrt(x.size) * _mm_delta(x, dtype)}, set()


def _efim_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        **FACTOR_CASE, "n_in": st.integers(1, 6), "n_out": st.integers(1, 6),
        "lam": st.sampled_from([1e-3, 1e-2, 1.0]), "with_G": st.booleans(),
        "minmax": st.sampled_from(["thesis", "code", "none"]),
        "degenerate": st.sampled_from(["ones", "zeros"]), "K": st.integers(1, 4),
        "order": st.sampled_from(["thesis", "code"]),
    })


def _efim_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    H, S = _factor(rng, case["n_in"], case), _factor(rng, case["n_out"], case)
    kwargs = {"lam": case["lam"], "minmax": case["minmax"], "degenerate": case["degenerate"]}
    G = rng.standard_normal((case["n_out"], case["n_in"])) if case["with_G"] else None
    return (H, S, G), kwargs


def _factor_bounds(vectors: list[np.ndarray], F: np.ndarray, case_minmax: str,
                   dtype: str) -> tuple[float, float]:
    """(tol of the F leaf, absolute bound of each normalized factor entry)."""
    if case_minmax == "none":
        delta = C * _eps(dtype) * max(float(np.abs(v).max()) for v in vectors)
    else:
        delta = max(_mm_delta(v, dtype) for v in vectors) + C * _eps(dtype)
    return max(floor(dtype), 2 * delta / float(np.min(np.abs(F)))), delta


def _efim_bounds(args, kwargs, expected, dtype) -> Bounds:
    H, S, _ = args
    tol, delta = _factor_bounds([H, S], expected["F"], kwargs["minmax"], dtype)
    bounds = {"H_prime": delta * math.sqrt(H.size), "S_prime": delta * math.sqrt(S.size)}
    return tol, bounds, set()


def _dist_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    H = np.stack([_factor(rng, case["n_in"], case) for _ in range(case["K"])])
    S = np.stack([_factor(rng, case["n_out"], case) for _ in range(case["K"])])
    return (H, S), {"lam": case["lam"], "order": case["order"], "minmax": case["minmax"],
                    "degenerate": case["degenerate"]}


def _dist_bounds(args, kwargs, expected, dtype) -> Bounds:
    H, S = args
    vectors = [*H, *S, H.mean(axis=0), S.mean(axis=0)]
    tol, delta = _factor_bounds(vectors, expected["F_SUM"], kwargs["minmax"], dtype)
    return tol, {"H_SUM": delta * math.sqrt(H.shape[1]), "S_SUM": delta * math.sqrt(S.shape[1])}, \
        set()


# --- EMA, bias correction, spatial averaging ------------------------------------------------

# Weights 0, 1 or in [1e-6, 1]: a weight like 1e-109 underflows to 0 in float32 arithmetic.
UNIT = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-6, 1.0))
EMA_WEIGHTS = {
    "est:ema": {"gamma": UNIT},
    "est:ema[code]": {"gamma": UNIT},
    "est:ema[fisheradaptune]": {"gammas": st.tuples(UNIT, UNIT)},
    "est:ema[sassha]": {"beta": UNIT},
    "est:ema[adam]": {"beta": UNIT},
}


def _ema_cases(key: str) -> Callable[[str], st.SearchStrategy]:
    def cases(dtype: str) -> st.SearchStrategy:
        return st.fixed_dictionaries({
            "seed": SEEDS, "T": st.integers(1, 6), "d": st.integers(1, 4), "k": st.integers(1, 3),
            "init": st.sampled_from(["zeros", "ones", "first_observation", "y0"]),
            "weights": st.fixed_dictionaries(EMA_WEIGHTS[key]),
        })

    return cases


def _ema_build(case: Case, dtype: str) -> Built:
    """Positive observations (factors are positive): the recursions add same-signed terms."""
    rng = np.random.default_rng(case["seed"])
    x = 0.1 + rng.random((case["T"], case["d"]))
    y0 = 0.1 + rng.random(case["d"]) if case["init"] == "y0" else None
    return (x, y0), {"init": case["init"], "k": case["k"], **case["weights"]}


def _bias_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "beta": st.floats(0.0, 0.999), "c": st.sampled_from(["steps", "refreshes"]),
        "t": st.integers(1, 50), "n": st.integers(1, 50),
    })


def _bias_build(case: Case, dtype: str) -> Built:
    x = np.random.default_rng(case["seed"]).standard_normal(5)
    return (x,), {"beta": case["beta"], "c": case["c"], "t": case["t"], "n": case["n"]}


def _spatial_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "shape": st.lists(st.integers(1, 3), min_size=1, max_size=4),
        "b": st.sampled_from([None, 1, "all"]), "input": st.sampled_from(["signed", "abs"]),
    })


def _spatial_build(case: Case, dtype: str) -> Built:
    D = np.random.default_rng(case["seed"]).standard_normal(tuple(case["shape"]))
    b = D.size if case["b"] == "all" else case["b"]
    return (D,), {"b": b, "input": case["input"]}


def _spatial_bounds(args, kwargs, expected, dtype) -> Bounds:
    """Block means of signed entries cancel: bound C b eps max|D| per entry."""
    D = args[0]
    return floor(dtype), {"": C * D.size * _eps(dtype) * float(np.abs(D).max())}, set()


# --- spectra ----------------------------------------------------------------------------------


def _weyl(n: int, dtype: str) -> float:
    return max(floor(dtype), C * n * _eps(dtype))


def _spectral_cases(dtype: str) -> st.SearchStrategy:
    lo_hi = (-2.0, 2.0) if dtype == "float32" else (-4.0, 4.0)
    kinds = ("pd", "psd", "indefinite")
    return st.fixed_dictionaries({"curvature": curvature_cases(n_max=8, log10_range=lo_hi,
                                                               kinds=kinds)})


def _pd_cases(dtype: str) -> st.SearchStrategy:
    lo_hi = (-2.0, 2.0) if dtype == "float32" else (-4.0, 4.0)
    return st.fixed_dictionaries({
        "curvature": curvature_cases(n_max=8, log10_range=lo_hi),
        "diagonal": st.booleans(),
    })


def _matrix_build(case: Case, dtype: str) -> Built:
    return (build_curvature(case["curvature"])["H"],), {}


def _near(values: np.ndarray, boundaries: list[float], delta: float) -> bool:
    return bool(any(np.any(np.abs(values - b) <= delta) for b in boundaries))


def _eig_bounds(args, kwargs, expected, dtype) -> Bounds:
    """Eigenvalues: Weyl; eigenvectors: Davis-Kahan, compared when every gap and every
    column's sign pivot is decided; counts: when no eigenvalue is within the eigenvalue bound
    of +-zero_tol (computed in either dtype's default band)."""
    lam, Q, n = expected["eigenvalues"], expected["eigenvectors"], args[0].shape[0]
    norm = float(np.abs(lam).max())
    tol = _weyl(n, dtype)
    delta = tol * norm
    skip: set[str] = set()
    gaps = np.diff(lam)
    vec_tol = C * n * _eps(dtype) * norm / float(gaps.min()) if n > 1 and gaps.min() > 0 else \
        (0.0 if n == 1 else math.inf)
    top2 = -np.sort(-np.abs(Q), axis=0)[:2] if n > 1 else np.ones((2, 1))
    pivots_decided = n == 1 or bool(np.all(top2[0] - top2[1] > 2 * vec_tol))
    if vec_tol >= 0.1 or not pivots_decided:
        skip.add("eigenvectors")
    tol = max(tol, vec_tol if "eigenvectors" not in skip else 0.0)
    band = [expected["zero_tol"], 10 * n * _eps(dtype) * norm]
    if _near(np.abs(lam), band, delta + abs(band[1] - band[0])):
        skip |= {"n_pos", "n_zero", "n_neg"}
    return tol, {"zero_tol": 2 * 10 * n * norm * (_eps(dtype) + _eps("float64"))}, skip


def _condition_bounds(args, kwargs, expected, dtype) -> Bounds:
    return spectral(args[0], dtype), {}, set()


def _newton_build(case: Case, dtype: str) -> Built:
    arrays = build_curvature(case["curvature"])
    if case["diagonal"]:
        return (arrays["g"], arrays["lam"]), {}
    return (arrays["g"], arrays["H"]), {}


def _newton_bounds(args, kwargs, expected, dtype) -> Bounds:
    g, F = args
    return (floor(dtype) if F.shape == g.shape else spectral(F, dtype)), {}, set()


# --- non-symmetric eigenvalues: Gershgorin, off-diagonal noise ---------------------------------


def _eig_abs_bound(M: np.ndarray, dtype: str) -> float:
    """C n eps ||M||_2 max_i kappa_i, kappa_i = ||x_i|| ||y_i|| / |y_i^H x_i| (1 if symmetric)."""
    n = M.shape[0]
    scale = C * n * _eps(dtype) * float(np.linalg.norm(M, 2))
    if np.array_equal(M, M.T):
        return scale
    _, left, right = scipy.linalg.eig(M, left=True, right=True)
    s = np.abs(np.sum(left.conj() * right, axis=0)) / (
        np.linalg.norm(left, axis=0) * np.linalg.norm(right, axis=0))
    return scale / float(max(s.min(), 1e-300))


def _gershgorin_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "n": st.integers(1, 8), "log_scale": st.floats(-2.0, 2.0),
        "kind": st.sampled_from(["symmetric", "nonsymmetric", "dominant"]),
    })


def _gershgorin_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    M = rng.standard_normal((n, n))
    if case["kind"] == "symmetric":
        M = M + M.T
    elif case["kind"] == "dominant":
        M = 0.1 * M + np.diag(1.0 + rng.random(n) * n)
    return (10.0 ** case["log_scale"] * M,), {}


def _match(expected_eig: np.ndarray, got_eig: np.ndarray) -> np.ndarray:
    return linear_sum_assignment(np.abs(expected_eig[:, None] - got_eig[None, :]))[1]


def _gershgorin_run(ref_entry, torch_entry, case: Case, dtype: str) -> tuple[float, float]:
    """Eigenvalues are compared as multisets (matched by minimum total distance), since the
    (real, imag) order of nearly equal real parts is decided by rounding."""
    (M,), _ = _gershgorin_build(case, dtype)
    expected = ref_entry(M)
    got = {k: v.detach().cpu().double().numpy() for k, v in
           torch_entry(_to_torch(M, dtype)).items()}
    eig_ref = expected["eig_real"] + 1j * expected["eig_imag"]
    order = _match(eig_ref, got["eig_real"] + 1j * got["eig_imag"])
    for key in ("eig_real", "eig_imag", "eig_dist"):
        got[key] = got[key][order]
    norm2 = float(np.linalg.norm(M, 2))
    eig_bound = _eig_abs_bound(M, dtype)
    a, R = np.abs(np.diag(M)), expected["radii"]
    row = C * M.shape[0] * _eps(dtype) * (a + R)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_sens = np.where(a > 0, (a + R) / a, 0.0)
    ratio_tol = C * M.shape[0] * _eps(dtype) * float(np.max(ratio_sens, initial=1.0))
    tol = max(floor(dtype), _weyl(M.shape[0], dtype), ratio_tol)
    skip = set() if np.all(np.abs(a - R) > row) else {"frac_dominant"}
    if np.any(a <= row):
        skip |= {"ratio_max", "ratio_median"}  # R_i/|a_ii| with a_ii at the rounding level
    bounds = {"eig_real": eig_bound * math.sqrt(M.shape[0]), "eig_imag": eig_bound * M.shape[0],
              "eig_dist": (eig_bound + row.max()) / norm2 * M.shape[0]}
    return compare(expected, got, tol, bounds, skip), tol


def _noise_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "n": st.integers(1, 7), "log_scale": st.floats(-1.0, 1.5),
        "sigma": st.sampled_from([1e-3, 1e-1]), "symmetrize": st.booleans(),
        "match": st.sampled_from(["sort", "hungarian"]), "controls": st.booleans(),
        "offdiag": st.sampled_from(["upper", "full"]), "given_M_hat": st.booleans(),
    })


def _spd(case: Case) -> tuple[np.ndarray, np.random.Generator]:
    """A symmetric PSD factor-like matrix (B B^T / n plus a diagonal), scaled."""
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    B = rng.standard_normal((n, n))
    A = B @ B.T / n + np.diag(rng.random(n))
    return 10.0 ** case["log_scale"] * 0.5 * (A + A.T), rng


def _noise_build(case: Case, dtype: str) -> Built:
    A, rng = _spd(case)
    Z = rng.standard_normal(A.shape)
    return (A, Z), {"sigma": case["sigma"], "symmetrize": case["symmetrize"],
                    "match": case["match"], "controls": case["controls"]}


def _displacement_skip(out: Mapping[str, Any], A: np.ndarray, match: str, dtype: str,
                       prefix: str) -> tuple[set[str], dict[str, float]]:
    """Leaves decided by rounding (see the module doc) and the absolute eigenvalue bounds."""
    lam_A = out["eig_A_real"] + 1j * out["eig_A_imag"]
    lam_M = out["eig_M_real"] + 1j * out["eig_M_imag"]
    dA, dM = _eig_abs_bound(A, dtype), _eig_abs_bound(out["M_hat"], dtype)
    delta = dA + dM
    dependent = {"displacement", "rel_displacement", "max_displacement", "match_index"}
    decided = not np.any(np.abs(lam_A.real - 1.0) <= dA)
    if match == "sort":
        for lam, d in ((lam_A, dA), (lam_M, dM)):
            decided &= bool(np.all(np.abs(np.diff(lam.real)) > 2 * d)) or lam.size == 1
    else:
        cost = np.abs(lam_A[:, None] - lam_M[None, :])
        nearest = np.argsort(cost, axis=1)
        best = cost[np.arange(cost.shape[0]), nearest[:, 0]]
        second = cost[np.arange(cost.shape[0]), nearest[:, 1]] if cost.shape[1] > 1 else best + 1
        decided &= len(set(nearest[:, 0])) == cost.shape[0] and bool(
            np.all(second - best > 2 * delta))
    skip = set() if decided else {prefix + k for k in dependent | {"n_kaiser"}}
    n = A.shape[0]
    bounds = {prefix + "eig_A_real": dA * n, prefix + "eig_A_imag": dA * n,
              prefix + "eig_M_real": dM * n, prefix + "eig_M_imag": dM * n,
              prefix + "displacement": delta * n, prefix + "max_displacement": delta}
    rel = out["rel_displacement"]
    if rel.size:
        bounds[prefix + "rel_displacement"] = delta * n / float(np.abs(lam_A.real).min(initial=1.0))
    return skip, bounds


def _noise_bounds(args, kwargs, expected, dtype) -> Bounds:
    A = args[0]
    skip, bounds = _displacement_skip(expected, A, kwargs["match"], dtype, "")
    for name, out in expected.get("controls", {}).items():
        s, b = _displacement_skip(out, out["M_hat"] - out["E"], kwargs["match"], dtype,
                                  f"controls/{name}/")
        skip |= s
        bounds.update(b)
    return _weyl(A.shape[0], dtype), bounds, skip


def _snr_build(case: Case, dtype: str) -> Built:
    A, rng = _spd(case)
    Z = rng.standard_normal(A.shape)
    options = {"offdiag": case["offdiag"]}
    if case["given_M_hat"]:
        return (A, A + case["sigma"] * Z), options
    return (A,), {**options, "Z": Z, "sigma": case["sigma"], "symmetrize": case["symmetrize"],
                  "controls": case["controls"]}


def _snr_bounds(args, kwargs, expected, dtype) -> Bounds:
    """SNR in dB: (10/ln 10) times the relative errors of the two sums, C n eps each."""
    n = args[0].shape[0]
    dB = 10.0 / math.log(10.0) * 2 * C * n * _eps(dtype)
    bounds = {path: dB for path in _flat(expected) if path.endswith("snr")}
    return max(floor(dtype), C * n * _eps(dtype)), bounds, set()


# --- DFT, agreement, KL -------------------------------------------------------------------------


def _fft_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "m": st.integers(1, 8), "n": st.integers(1, 8), "controls": st.booleans(),
    })


def _fft_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    m, n = case["m"], (case["m"] if case["controls"] else case["n"])
    return (rng.standard_normal((m, n)),), {"controls": case["controls"]}


def _fft_bounds(args, kwargs, expected, dtype) -> Bounds:
    """Real and imaginary parts are held to tol_F ||F||_F together (one may vanish exactly)."""
    m, n = args[0].shape
    tol_F = C * (m + n) * _eps(dtype) * math.sqrt(m * n)
    flat = _flat(expected)
    bounds = {}
    for path in flat:
        if path.endswith("F_real") or path.endswith("F_imag"):
            part = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
            size = math.hypot(np.linalg.norm(flat[part + "F_real"]),
                              np.linalg.norm(flat[part + "F_imag"]))
            bounds[path] = tol_F * size
    return max(floor(dtype), 2 * n * tol_F), bounds, set()


def _agreement_cases(dtype: str) -> st.SearchStrategy:
    kinds = st.sampled_from(["noisy", "scaled", "independent", "zero", "constant", "rounded"])
    return st.fixed_dictionaries({
        "seed": SEEDS, "P": st.integers(1, 30), "kinds": st.lists(kinds, min_size=1, max_size=3),
        "top_frac": st.sampled_from([0.1, 0.25, 1.0]), "rounded_r": st.booleans(),
    })


def _agreement_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    r = rng.random(case["P"]) + 0.01
    if case["rounded_r"]:
        r = np.round(r, 1) + 0.01
    make = {
        "noisy": lambda: r * (1 + 0.1 * rng.standard_normal(r.size)),
        "scaled": lambda: 3.0 * r,
        "independent": lambda: rng.random(r.size),
        "zero": lambda: np.zeros(r.size),
        "constant": lambda: np.full(r.size, 0.5),
        "rounded": lambda: np.round(rng.random(r.size), 1),
    }
    return (r, {f"{i}_{kind}": make[kind]() for i, kind in enumerate(case["kinds"])}), \
        {"top_frac": case["top_frac"]}


def _ranks_decided(x: np.ndarray, dtype: str) -> bool:
    """The order of x survives rounding to dtype: ties are exact ties (kept exactly) or gaps
    exceed 2 eps max|x|; float64 inputs are the layers' own, so always decided there."""
    if dtype == "float64":
        return True
    s = np.sort(x)
    gaps = np.diff(s)
    return bool(np.all((gaps == 0) | (gaps > 2 * _eps(dtype) * np.abs(s).max())))


def _top_decided(x: np.ndarray, k: int, dtype: str) -> bool:
    if dtype == "float64" or k >= x.size:
        return True
    s = np.sort(x)[::-1]
    return bool(s[k - 1] - s[k] > 2 * _eps(dtype) * np.abs(s).max())


def _weighted_median(r: np.ndarray, c: np.ndarray) -> float:
    used = c != 0
    if not np.any(used):
        return 0.0
    t, w = r[used] / c[used], np.abs(c[used])
    order = np.argsort(t, kind="stable")
    cum = np.cumsum(w[order])
    return float(t[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _agreement_bounds(args, kwargs, expected, dtype) -> Bounds:
    """|c_i - r_i| moves by eps (|c_i| + |r_i|): the L1 metrics by eps sum(|c| + |r|) over
    their denominators (times |alpha| for the rescaled one); cosine and Spearman by C P eps."""
    r, candidates = args
    P, eps = r.size, _eps(dtype)
    k = max(1, math.ceil(kwargs["top_frac"] * P))
    bounds, skip = {}, set()
    r_decided = _ranks_decided(r, dtype)
    for name, c in candidates.items():
        alpha = abs(_weighted_median(r, c))
        mass = np.abs(c).sum() + np.abs(r).sum()
        bounds[f"{name}/mae"] = C * eps * mass / P
        bounds[f"{name}/rel_l1"] = C * P * eps * mass / np.abs(r).sum()
        bounds[f"{name}/rel_l1_scaled"] = C * P * eps * (alpha * np.abs(c).sum() + np.abs(
            r).sum()) / np.abs(r).sum()
        bounds[f"{name}/cosine"] = C * P * eps
        bounds[f"{name}/spearman"] = C * P * eps
        if not (r_decided and _ranks_decided(c, dtype)):
            skip.add(f"{name}/spearman")
        if not (_top_decided(r, k, dtype) and _top_decided(c, k, dtype)):
            skip.add(f"{name}/top_k_overlap")
    return floor(dtype), bounds, skip


def _kl_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "N": st.integers(1, 5), "classes": st.integers(1, 6),
        "log_scale": st.floats(-1.0, 1.0), "kind": st.sampled_from(["independent", "near",
                                                                     "equal"]),
    })


def _kl_build(case: Case, dtype: str) -> Built:
    rng = np.random.default_rng(case["seed"])
    shape = (case["N"], case["classes"])
    zp = 10.0 ** case["log_scale"] * rng.standard_normal(shape)
    zq = {"independent": lambda: 10.0 ** case["log_scale"] * rng.standard_normal(shape),
          "near": lambda: zp + 1e-3 * rng.standard_normal(shape),
          "equal": lambda: zp.copy()}[case["kind"]]()
    return (zp, zq), {}


def _kl_bounds(args, kwargs, expected, dtype) -> Bounds:
    zp, zq = args
    classes = zp.shape[1]
    B = C * classes * _eps(dtype) * (np.abs(zp).max() + np.abs(zq).max() + math.log(classes) + 1)
    return floor(dtype), {"kl": B, "kl_per_input": B * math.sqrt(zp.shape[0])}, set()


# --- the mirrors --------------------------------------------------------------------------------

NOTE_MM = "min-max: C eps max|x|/range per entry; F: (delta_H + delta_S)/min F"
NOTE_SPEC = "Weyl C n eps (eigenvalues), Davis-Kahan (eigenvectors); counts when decided"
NOTE_NOISE = "eigenvalues: C n eps ||M|| max kappa_i; Kaiser count and matching when decided"

MIRRORS: dict[str, Mirror] = {
    "est:minmax": _mirror(_minmax_cases, _minmax_build, _minmax_bounds, NOTE_MM),
    "est:minmax[code]": _mirror(_minmax_cases, _minmax_code_build, _minmax_bounds, NOTE_MM),
    "est:efim": _mirror(_efim_cases, _efim_build, _efim_bounds, NOTE_MM),
    "est:dist_agg": _mirror(_efim_cases, _dist_build, _dist_bounds, NOTE_MM),
    **{key: _mirror(_ema_cases(key), _ema_build, _plain, "floor: same-signed recursion")
       for key in EMA_WEIGHTS},
    "est:bias_correction": _mirror(_bias_cases, _bias_build, _plain, "floor"),
    "est:spatial_avg": _mirror(_spatial_cases, _spatial_build, _spatial_bounds,
                               "block means: C b eps max|D|"),
    "est:eig_exact": _mirror(_spectral_cases, _matrix_build, _eig_bounds, NOTE_SPEC),
    "est:condition_number": _mirror(_pd_cases, _matrix_build, _condition_bounds,
                                    "tolerance.spectral (kappa)"),
    "est:gershgorin": Mirror("estimator", _gershgorin_cases, _gershgorin_run, NOTE_NOISE),
    "est:offdiag_noise": _mirror(_noise_cases, _noise_build, _noise_bounds, NOTE_NOISE),
    "est:snr": _mirror(_noise_cases, _snr_build, _snr_bounds, "sums: C n eps; SNR in dB"),
    "est:fft2": _mirror(_fft_cases, _fft_build, _fft_bounds, "C (m + n) eps sqrt(mn), x 2n"),
    "est:fisher_agreement": _mirror(_agreement_cases, _agreement_build, _agreement_bounds,
                                    "rounding of |c - r|; ranks when decided"),
    "est:newton_decrement": _mirror(_pd_cases, _newton_build, _newton_bounds,
                                    "floor (diagonal), tolerance.spectral (dense)"),
    "est:kl_outputs": _mirror(_kl_cases, _kl_build, _kl_bounds, "log-softmax rounding"),
}
