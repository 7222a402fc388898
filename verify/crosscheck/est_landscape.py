"""Cross-checks of the loss-landscape estimators `est:landscape*` (INVENTORY §3.8).

Each case is a primitive dictionary; NumPy builds the arrays and both layers get the same
inputs (the loss callables are the same quadratic written in NumPy and in torch). Every output
entry is held to a written absolute bound B (an array, entry by entry, or a number); a run's
error is ``tol * max |ref - torch| / B`` so that it passes exactly when every entry is within
its bound (``tol`` is `floor`, reported for scale). C = 10, eps the machine epsilon of the run's
dtype (float32 runs also round the inputs, which the bounds include):

- ``est:landscape``: what both layers define, the grid (``method="none"``; the torch layer has
  no griddata, see `contract.specs.landscape`): X, Y within C eps max|W| (linspace end points
  and steps); Z is None in both.
- ``est:landscape[pca]``: Weyl and Davis-Kahan for the SVD of the centred data, with
  ``delta = C (m + n) eps ||D||_F`` (the input rounding counts the mean too): singular values
  move by delta, component k by ``delta / gap_k`` (gap_k the distance of S_k to its
  neighbours, S_{n+1} = 0); variances, ratios and projections by the first-order propagation of
  those. The sign convention is compared whenever the reference's two largest |entries| of a
  component differ by more than twice its bound; a component whose sign is rounding-decided is
  compared up to sign (the layer tests check the convention itself).
- ``est:landscape[slice2d]`` and ``[slice1d]``: the evaluation of L(x) = (x - x0)^T A (x - x0)/2
  + g^T x + c at a point x is within ``C eps [P |r|^T |A| |r| + |g|^T |x| + |c| + |A r|^T (|x|
  + |x0|)]`` (r = x - x0; the last term is the rounding of the point itself); the 1-D slice adds
  ``|s| ||A r + g|| delta_v`` for the direction's error delta_v (C P eps for a given v, C P eps
  ||H|| / gap by Davis-Kahan for the top eigenvector of H) and compares lambda_max within C P eps
  ||H||; when the sign of v is rounding-decided, v and the losses are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from verify.crosscheck.compare import to_numpy
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor
from verify.strategies import SEEDS

C = 10.0


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def _t(x: np.ndarray, dtype: str) -> torch.Tensor:
    return torch.as_tensor(x, dtype=getattr(torch, dtype))


def _within(expected: Mapping[str, Any], got: Mapping[str, Any],
            bounds: Mapping[str, Any]) -> float:
    """max over the leaves named in ``bounds`` of max |ref - torch| / B (inf on a mismatch of
    keys, shapes or None-ness)."""
    got = to_numpy(got)
    if set(expected) != set(got):
        return math.inf
    worst = 0.0
    for key, B in bounds.items():
        ref, mir = expected[key], got[key]
        if ref is None or mir is None:
            worst = max(worst, 0.0 if ref is None and mir is None else math.inf)
            continue
        ref, mir = np.asarray(ref, dtype=np.float64), np.asarray(mir, dtype=np.float64)
        if ref.shape != mir.shape:
            return math.inf
        ratio = np.abs(ref - mir) / np.maximum(np.asarray(B, dtype=np.float64), 1e-300)
        worst = max(worst, float(np.max(ratio, initial=0.0)))
    return worst


def _result(ratio: float, dtype: str) -> tuple[float, float]:
    tol = floor(dtype)
    return tol * ratio, tol


def _sign_decided(v: np.ndarray, delta: float) -> bool:
    """Whether the largest-|.| entry of v is the same under any perturbation up to delta."""
    top = np.sort(np.abs(v))[::-1]
    return top.size == 1 or top[0] - top[1] > 2.0 * delta


# --- (a) the grid -----------------------------------------------------------------------------


def _grid_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({"seed": SEEDS, "E": st.integers(1, 12),
                                  "n_grid": st.integers(2, 30), "log_scale": st.floats(-3, 3)})


def _grid_run(ref_entry, torch_entry, case: Case, dtype: str) -> tuple[float, float]:
    rng = np.random.default_rng(case["seed"])
    W = 10.0 ** case["log_scale"] * rng.standard_normal((case["E"], 2))
    L = rng.standard_normal(case["E"])
    expected = ref_entry(W, L, n_grid=case["n_grid"], method="none")
    got = torch_entry(_t(W, dtype), _t(L, dtype), n_grid=case["n_grid"], method="none")
    B = C * _eps(dtype) * float(np.abs(W).max())
    return _result(_within(expected, got, {"X": B, "Y": B, "Z": None}), dtype)


# --- (a) the PCA ------------------------------------------------------------------------------


def _pca_cases(dtype: str) -> st.SearchStrategy:
    def with_k(case: dict) -> st.SearchStrategy:
        k = st.integers(1, min(case["m"] - 1, case["n"]))
        return st.fixed_dictionaries({**{key: st.just(v) for key, v in case.items()}, "k": k})

    return st.fixed_dictionaries({
        "seed": SEEDS, "m": st.integers(3, 12), "n": st.integers(1, 5),
        "decay": st.floats(1.5, 10.0), "offset": st.sampled_from([0.0, 1.0, 100.0]),
    }).flatmap(with_k)


def _pca_bounds(D: np.ndarray, k: int, dtype: str) -> tuple[dict, np.ndarray]:
    m, n = D.shape
    Dc = D - D.mean(axis=0)
    S = np.linalg.svd(Dc, compute_uv=False)
    S_ext = np.r_[np.inf, S, np.zeros(max(n - S.size, 0) + 1)]
    gaps = np.minimum(S_ext[:k] - S_ext[1:k + 1], S_ext[1:k + 1] - S_ext[2:k + 2])
    delta = C * (m + n) * _eps(dtype) * float(np.linalg.norm(D))
    d_comp = delta / np.maximum(gaps, 1e-300)
    var, total = S[:k] ** 2 / (m - 1), float(np.sum(S**2)) / (m - 1)
    d_var = (2.0 * S[:k] * delta + delta**2) / (m - 1)
    d_total = (2.0 * math.sqrt(total * (m - 1)) * delta + delta**2) / (m - 1)
    return {
        "components": np.repeat(d_comp[:, None], n, axis=1),
        "explained_variance": d_var,
        "explained_variance_ratio": d_var / total + var * d_total / total**2,
        "mean": C * _eps(dtype) * np.abs(D).max(axis=0),
        "projected": np.linalg.norm(Dc, axis=1)[:, None] * d_comp[None, :] + delta,
    }, d_comp


def _pca_run(ref_entry, torch_entry, case: Case, dtype: str) -> tuple[float, float]:
    rng = np.random.default_rng(case["seed"])
    m, n, k = case["m"], case["n"], case["k"]
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    D = (rng.standard_normal((m, n)) * case["decay"] ** -np.arange(n)) @ Q.T + case["offset"]
    expected = ref_entry(D, n_components=k)
    got = to_numpy(torch_entry(_t(D, dtype), n_components=k))
    bounds, d_comp = _pca_bounds(D, k, dtype)
    for row in range(k):
        if not _sign_decided(expected["components"][row], d_comp[row]):
            flip = np.sign(expected["components"][row] @ got["components"][row]) or 1.0
            got["components"][row] *= flip
            got["projected"][:, row] *= flip
    return _result(_within(expected, got, bounds), dtype)


# --- (b), (c): the slices of a quadratic ------------------------------------------------------


def _quadratic(rng: np.random.Generator, P: int, scale: float) -> dict[str, Any]:
    Q, _ = np.linalg.qr(rng.standard_normal((P, P)))
    lam = np.sort(rng.uniform(-1.0, 3.0, P))
    return {"A": (Q * lam) @ Q.T, "x0": scale * rng.standard_normal(P),
            "g": rng.standard_normal(P), "c": float(rng.normal())}


def _numpy_loss(q: Mapping[str, Any]):
    def loss(x: np.ndarray) -> Any:
        r = x - q["x0"]
        return 0.5 * np.sum((r @ q["A"]) * r, axis=-1) + x @ q["g"] + q["c"]

    return loss


def _torch_loss(q: Mapping[str, Any], dtype: str):
    A, x0, g = _t(q["A"], dtype), _t(q["x0"], dtype), _t(q["g"], dtype)

    def loss(x: torch.Tensor) -> torch.Tensor:
        r = x - x0
        return 0.5 * ((r @ A) * r).sum(-1) + x @ g + q["c"]

    return loss


def _evaluation_bound(q: Mapping[str, Any], X: np.ndarray, dtype: str) -> np.ndarray:
    """The rounding bound of L at each row of X (P columns), input rounding included."""
    R = X - q["x0"]
    P = X.shape[-1]
    form = P * np.sum((np.abs(R) @ np.abs(q["A"])) * np.abs(R), axis=-1)
    point = np.sum(np.abs(R @ q["A"] + q["g"]) * (np.abs(X) + np.abs(q["x0"])), axis=-1)
    return C * _eps(dtype) * (form + np.abs(X) @ np.abs(q["g"]) + abs(q["c"]) + point)


def _slice2d_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "n_out": st.integers(1, 3), "n_in": st.integers(1, 3),
        "rows": st.integers(1, 4), "cols": st.integers(1, 4), "batched": st.booleans(),
        "chunk": st.integers(1, 5), "log_scale": st.floats(-2, 2), "pick": st.integers(0, 99),
    })


def _slice2d_run(ref_entry, torch_entry, case: Case, dtype: str) -> tuple[float, float]:
    rng = np.random.default_rng(case["seed"])
    n_out, n_in, scale = case["n_out"], case["n_in"], 10.0 ** case["log_scale"]
    size, P = max(n_out * n_in, 2), max(n_out * n_in, 2) + n_out
    shape = (n_out, n_in) if n_out * n_in >= 2 else (2,)
    q = _quadratic(rng, P, scale)
    params = {"W1": scale * rng.standard_normal(shape), "b": scale * rng.standard_normal(n_out)}
    X = scale * rng.standard_normal((case["rows"], case["cols"]))
    Y = scale * rng.standard_normal(X.shape)
    i = case["pick"] % size
    index = None if size == 2 else (i, (i + 1 + case["pick"] // size) % size)
    if index is not None and index[0] == index[1]:
        index = (i, (i + 1) % size)
    opts = {"index": index, "batched": case["batched"], "chunk": case["chunk"]}

    def flat(loss):  # the loss of a params mapping, batched on W1 or not
        def of_params(p):
            W, b = p["W1"], p["b"]
            lead = W.shape[:W.ndim - len(shape)]
            w = W.reshape(*lead, size)
            bb = b + 0.0 * w[..., :1] if lead else b
            cat = torch.cat if isinstance(W, torch.Tensor) else np.concatenate
            return loss(cat([w, bb], -1))

        return of_params

    expected = ref_entry(flat(_numpy_loss(q)), params, "W1", X, Y, **opts)
    got = torch_entry(flat(_torch_loss(q, dtype)), {k: _t(v, dtype) for k, v in params.items()},
                      "W1", _t(X, dtype), _t(Y, dtype), **opts)
    w0 = params["W1"].reshape(-1)
    points = np.repeat(np.r_[w0, params["b"]][None, :], X.size, axis=0)
    a, b = (0, 1) if index is None else index
    points[:, a], points[:, b] = X.reshape(-1), Y.reshape(-1)
    grid = C * _eps(dtype) * np.maximum(np.abs(X), np.abs(Y))
    Z_bound = _evaluation_bound(q, points, dtype).reshape(X.shape)
    return _result(_within(expected, got, {"X": grid, "Y": grid, "Z": Z_bound}), dtype)


def _slice1d_cases(dtype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "seed": SEEDS, "P": st.integers(1, 6), "given": st.sampled_from(["v", "H"]),
        "lo": st.floats(-3.0, 0.0), "width": st.floats(0.1, 4.0), "n_points": st.integers(2, 9),
        "batched": st.booleans(), "chunk": st.integers(1, 5), "log_scale": st.floats(-2, 2),
    })


def _slice1d_run(ref_entry, torch_entry, case: Case, dtype: str) -> tuple[float, float]:
    rng = np.random.default_rng(case["seed"])
    P, scale, eps = case["P"], 10.0 ** case["log_scale"], _eps(dtype)
    q = _quadratic(rng, P, scale)
    x_star = scale * rng.standard_normal(P)
    lo, hi = case["lo"], case["lo"] + case["width"]
    opts = {"s_range": (lo, hi), "n_points": case["n_points"], "batched": case["batched"],
            "chunk": case["chunk"]}
    direction = {"v": rng.standard_normal(P)} if case["given"] == "v" else {"H": q["A"]}
    expected = ref_entry(_numpy_loss(q), x_star, **direction, **opts)
    got = torch_entry(_torch_loss(q, dtype), _t(x_star, dtype),
                      **{k: _t(v, dtype) for k, v in direction.items()}, **opts)
    lam = np.linalg.eigvalsh(q["A"])
    norm_H = float(np.abs(lam).max())
    if case["given"] == "v":
        d_v = C * P * eps
    else:
        gap = lam[-1] - lam[-2] if P > 1 else np.inf
        d_v = C * P * eps * (1.0 + norm_H / max(gap, 1e-300))
    s, v = expected["s"], expected["v"]
    X = x_star[None, :] + s[:, None] * v[None, :]
    slope = np.linalg.norm((X - q["x0"]) @ q["A"] + q["g"], axis=1)
    bounds = {"s": C * eps * max(abs(lo), abs(hi)), "lambda_max": C * P * eps * norm_H,
              "v": d_v, "loss": _evaluation_bound(q, X, dtype) + np.abs(s) * slope * d_v}
    if not _sign_decided(v, d_v):
        del bounds["v"], bounds["loss"]
    return _result(_within(expected, got, bounds), dtype)


NOTE_GRID = "grid only (torch has no griddata): C eps max|W|"
NOTE_PCA = "Weyl / Davis-Kahan on the SVD of the centred data"
NOTE_SLICE = "quadratic evaluation rounding (+ Davis-Kahan for v_1)"

MIRRORS: dict[str, Mirror] = {
    "est:landscape": Mirror("estimator", _grid_cases, _grid_run, NOTE_GRID),
    "est:landscape[pca]": Mirror("estimator", _pca_cases, _pca_run, NOTE_PCA),
    "est:landscape[slice2d]": Mirror("estimator", _slice2d_cases, _slice2d_run, NOTE_SLICE),
    "est:landscape[slice1d]": Mirror("estimator", _slice1d_cases, _slice1d_run, NOTE_SLICE),
}
