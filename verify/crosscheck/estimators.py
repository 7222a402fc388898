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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor, spectral
from verify.strategies import SEEDS, build_curvature, curvature_cases, noise_cases, noise_inputs


def mirror(key: str, ref_entry: Any) -> Mirror | None:
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


INPUTS: dict[str, tuple[Callable[[str], st.SearchStrategy], Callable]] = {
    "est:uv_quantities": (_uv_cases, _uv_inputs),
    **{
        key: (lambda dtype, key=key: noise_cases(key), _noise_inputs(key))
        for key in ("est:grad_noise", "est:minibatch_moments", "est:fisher_batch")
    },
}
