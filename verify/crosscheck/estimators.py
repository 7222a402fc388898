"""Cross-check cases for estimators: identical arrays (and draws) into both layers.

Inputs are built with NumPy from a primitive case and passed to both layers, so random
probes, batch indices and labels are the same draws. Each output leaf is compared normwise
relative to ``max(||leaf||, S)`` where S is the natural magnitude of the outputs built from
the inputs (the squared scale of the gradients for second moments): a leaf that vanishes
exactly, such as the noise covariance at B = N without replacement, is held to an absolute
error of rtol * S rather than to a ratio of rounding errors.

Tolerances: `verify.crosscheck.tolerance.spectral` for ``est:uv_quantities`` (it works in
the eigenbasis of H: sensitivity to the eigenvalue gaps), the plain floor (1e-10 float64,
1e-4 float32) for the enumeration estimators.

The zeroth-order estimators ``est:zo_*`` take a loss callable, which each layer gets in its own
form: the same quadratic L(v) = 1/2 (v - x*)^T A (v - x*) + c written in NumPy (float64) and in
torch (the run's dtype), with the same probes. A difference quotient (L(a) - L(b))/D (D = h,
2h, 2 eps or h^2) magnifies rounding, so each quotient q_k is held to
max(floor |q|, B_k) with the written bound
B_k = C eps [n (|L|(a) + |L|(b)) + ||g(a)|| s(a) + ||g(b)|| s(b)] / D, C = 10,
where |L|(x) = 1/2 |x - x*|^T |A| |x - x*| + |c| bounds the rounding of the quadratic form and
s(x) = ||theta|| + ||x|| + ||x*|| that of the evaluation point (in float32 theta, x* and the
probes are rounded too); ``grad`` = mean_k q_k u_k is held to (1/K) sum_k B_k ||u_k||.
Float32 cases draw the steps in [1e-2, 1] (float64: [1e-6, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from reference.oracle import probe
from verify.crosscheck import est_conv, est_factors, est_landscape, est_models, est_stochastic
from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor, spectral
from verify.strategies import SEEDS, build_curvature, curvature_cases, noise_cases, noise_inputs


def mirror(key: str, ref_entry: Any) -> Mirror | None:
    if key in GROUP_MIRRORS:
        return GROUP_MIRRORS[key]
    if key in ZO_KINDS:
        return Mirror("estimator", lambda dtype: _zo_cases(key, dtype),
                      lambda r, t, c, d: _zo_run(key, r, t, c, d), ZO_NOTE)
    if key not in INPUTS:
        return None
    cases, build = INPUTS[key]
    return Mirror("estimator", cases, lambda r, t, c, d: run(build, r, t, c, d))


def run(
    build: Callable, ref_entry: Any, torch_entry: Any, case: Case, dtype: str
) -> tuple[float, float]:
    args, kwargs, scale, tol = build(case, dtype)
    expected = ref_entry(*args, **kwargs)
    got = torch_entry(
        *(_to_torch(a, dtype) for a in args), **{k: _to_torch(v, dtype) for k, v in kwargs.items()}
    )
    return relative_error(expected, got, atol=scale), tol


def _uv_cases(dtype: str) -> st.SearchStrategy:
    kinds = ("pd",) if dtype == "float32" else ("pd", "indefinite")
    return st.fixed_dictionaries(
        {
            "curvature": curvature_cases(
                log10_range=(-2.0, 2.0) if dtype == "float32" else (-4.0, 4.0), kinds=kinds
            ),
            "seed": SEEDS,
            "stochastic": st.booleans(),
            "draws": st.sampled_from([0, 2, 50]),
        }
    )


def _uv_inputs(case: Case, dtype: str):
    arrays = build_curvature(case["curvature"])
    H, g = arrays["H"], arrays["g"]
    n = len(g)
    rng = np.random.default_rng(case["seed"])
    kwargs: dict[str, Any] = {
        "f0": float(rng.standard_normal()),
        "f1": float(rng.standard_normal()),
    }
    if case["stochastic"]:
        M = rng.standard_normal((n, n))
        kwargs.update(A=rng.standard_normal((n, n)), Sigma_b=M @ M.T)
        if case["draws"]:
            kwargs["xi"] = rng.standard_normal((case["draws"], n))
    tol = spectral(H, dtype, eigenvectors=True)
    return (g, rng.standard_normal(n), H), kwargs, 1e-300, tol


def _noise_inputs(key: str):
    def build(case: Case, dtype: str):
        args, kwargs = noise_inputs(key, case)
        scale = max(float(np.abs(args[0]).max()), 1.0) ** 2
        return args, kwargs, scale, floor(dtype)

    return build


def _to_torch(value: Any, dtype: str) -> Any:
    if isinstance(value, np.ndarray):
        target = getattr(torch, dtype) if value.dtype.kind == "f" else torch.int64
        return torch.as_tensor(value, dtype=target)
    return value


# --- zeroth-order estimators ----------------------------------------------------------------

ZO_KINDS = ("est:zo_coord", "est:zo_direction", "est:zo_two_point", "est:zo_hvp_printed")
ZO_NOTE = "difference quotients: tol max(floor |q|, 10 eps (n |L| + ||g|| ||x||) / D)"
ZO_SAFETY = 10.0


def _zo_cases(key: str, dtype: str) -> st.SearchStrategy:
    lo = -2.0 if dtype == "float32" else -6.0
    return st.fixed_dictionaries(
        {
            "curvature": curvature_cases(n_max=6, log10_range=(-1.0, 1.0)),
            "seed": SEEDS,
            "step": st.floats(min_value=lo, max_value=0.0).map(lambda e: float(10.0**e)),
            "central": st.booleans(),
            "draws": st.sampled_from([0, 1, 3]),  # 0: one probe of shape (P,)
            "u_dist": st.sampled_from(["gaussian", "sphere", "sqrtP_sphere", "rademacher"]),
            "c": st.sampled_from([0.0, 1.0]),
        }
    )


def _zo_points(key: str, case: Case, theta, probes, step):
    """(a_k, b_k) per quotient and the denominator D of (L(a) - L(b))/D."""
    if key == "est:zo_coord":
        E = step * np.eye(len(theta))
        b = theta - E if case["central"] else np.broadcast_to(theta, E.shape)
        return theta + E, b, (2.0 * step if case["central"] else step)
    if key == "est:zo_direction":
        U = np.atleast_2d(probes[0])
        return theta + step * U, np.broadcast_to(theta, U.shape), step
    if key == "est:zo_two_point":
        Z = np.atleast_2d(probes[0])
        return theta + step * Z, theta - step * Z, 2.0 * step
    Z, U = np.atleast_2d(probes[0]), np.atleast_2d(probes[1])
    return theta + step * Z + step * U, theta + step * U, step**2


def _zo_run(key: str, ref_entry: Any, torch_entry: Any, case: Case, dtype: str):
    arrays = build_curvature(case["curvature"])
    A, n = arrays["H"], len(arrays["H"])
    rng = np.random.default_rng(case["seed"])
    x_star, theta, c, step = rng.standard_normal(n), rng.standard_normal(n), case["c"], case["step"]
    shape = (n,) if case["draws"] == 0 else (case["draws"], n)
    n_probes = {"est:zo_coord": 0, "est:zo_hvp_printed": 2}.get(key, 1)
    probes = [probe(case["u_dist"], shape, int(rng.integers(2**32))) for _ in range(n_probes)]
    options = {"est:zo_coord": {"h": step, "central": case["central"]},
               "est:zo_two_point": {"eps": step}}.get(key, {"h": step})

    def ref_loss(v):
        r = v - x_star
        return 0.5 * r @ A @ r + c

    t = getattr(torch, dtype)
    A_t, x_t = torch.as_tensor(A, dtype=t), torch.as_tensor(x_star, dtype=t)

    def torch_loss(v):
        r = v - x_t
        return 0.5 * (r @ (A_t @ r)) + c

    expected = ref_entry(ref_loss, theta, *probes, **options)
    got = torch_entry(torch_loss, torch.as_tensor(theta, dtype=t),
                      *(torch.as_tensor(p, dtype=t) for p in probes), **options)
    # the written bound B_k of each quotient (module docstring)
    a, b, D = _zo_points(key, case, theta, probes, step)
    absA, eps = np.abs(A), float(np.finfo(dtype).eps)

    def size(x):
        r = x - x_star
        loss_abs = 0.5 * np.einsum("ki,ij,kj->k", np.abs(r), absA, np.abs(r)) + abs(c)
        spread = np.linalg.norm(theta) + np.linalg.norm(x, axis=1) + np.linalg.norm(x_star)
        return n * loss_abs + np.linalg.norm(r @ A, axis=1) * spread

    B = ZO_SAFETY * eps * (size(a) + size(b)) / D
    tol = floor(dtype)
    atol = {"quotients": float(np.linalg.norm(B)) / tol, "value": float(np.linalg.norm(B)) / tol}
    if key == "est:zo_coord":
        atol["grad"] = atol["quotients"]
    elif "grad" in expected:
        U = np.atleast_2d(probes[0])
        atol["grad"] = float(np.mean(B * np.linalg.norm(U, axis=1))) / tol
    if set(expected) != set(got):
        return math.inf, tol
    error = max(relative_error(expected[k], got[k], atol=atol.get(k, 1e-300)) for k in expected)
    return error, tol


INPUTS: dict[str, tuple[Callable[[str], st.SearchStrategy], Callable]] = {
    "est:uv_quantities": (_uv_cases, _uv_inputs),
    **{
        key: (lambda dtype, key=key: noise_cases(key), _noise_inputs(key))
        for key in ("est:grad_noise", "est:minibatch_moments", "est:fisher_batch")
    },
}

# The estimator groups of INVENTORY §3.2-§3.8 keep their cross-checks in their own modules.
GROUP_MIRRORS: dict[str, Mirror] = {
    **est_factors.MIRRORS, **est_stochastic.MIRRORS, **est_models.MIRRORS, **est_conv.MIRRORS,
    **est_landscape.MIRRORS,
}
