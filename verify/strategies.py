"""Every Hypothesis strategy of the project lives here.

Strategies draw *primitive* cases (dimensions, seeds, exponents, step sizes) and a builder
turns a case into arrays with NumPy. Shrinking then acts on the primitives, so every failing
example prints as a short dictionary that rebuilds the same arrays anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from hypothesis import strategies as st

from reference.problems.spectra import random_orthogonal, symmetric

Case = Mapping[str, Any]

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def curvature_cases(
    n_max: int = 12,
    log10_range: tuple[float, float] = (-4.0, 4.0),
    kinds: tuple[str, ...] = ("pd",),
) -> st.SearchStrategy[dict[str, Any]]:
    """A symmetric matrix H = Q diag(lam) Q^T and a gradient g, as a primitive case.

    ``kind``: ``pd`` (lam log-uniform on 10**log10_range), ``psd`` (the same with one to n-1
    eigenvalues set exactly to 0: the PSD boundary), ``indefinite`` (some negated).
    ``rotated`` False gives Q = I (a separable problem).
    """
    return st.fixed_dictionaries(
        {
            "n": st.integers(min_value=1, max_value=n_max),
            "seed": SEEDS,
            "kind": st.sampled_from(kinds),
            "lo": st.just(log10_range[0]),
            "hi": st.just(log10_range[1]),
            "rotated": st.booleans(),
        }
    )


def build_curvature(case: Case) -> dict[str, np.ndarray]:
    """``{"H", "Q", "lam", "g"}`` from a `curvature_cases` case (lam ascending, like eigh)."""
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    lam = np.sort(10.0 ** rng.uniform(case["lo"], case["hi"], size=n))
    if case["kind"] == "psd" and n > 1:
        lam[: rng.integers(1, n)] = 0.0
    elif case["kind"] == "indefinite" and n > 1:
        lam[: rng.integers(1, n)] *= -1.0
        lam = np.sort(lam)
    Q = random_orthogonal(n, rng) if case["rotated"] else np.eye(n)
    return {"H": symmetric(lam, Q), "Q": Q, "lam": lam, "g": rng.standard_normal(n)}


def positive(lo: float, hi: float) -> st.SearchStrategy[float]:
    """A float in [lo, hi], lo > 0, drawn log-uniformly (shrinks toward lo)."""
    return st.floats(min_value=np.log10(lo), max_value=np.log10(hi)).map(lambda e: float(10.0**e))


def step_sizes() -> dict[str, st.SearchStrategy[float]]:
    """The default ranges of INVENTORY §4.1.A where a row gives none: alpha, eps, L factor."""
    return {
        "alpha": st.floats(min_value=1e-3, max_value=3.0),
        "eps": st.floats(min_value=1e-3, max_value=10.0),
        "L_factor": st.floats(min_value=1.0, max_value=10.0),
    }


# --- hyperparameters of the update rules -------------------------------------------------
# One superset per family; the cross-check keeps the names a rule declares in ``rule.hyper``.

_CURVED = {
    "curv": st.sampled_from(["user", "H"]),
    "damping": st.one_of(st.just(0.0), positive(1e-6, 1.0)),
    "singular": st.sampled_from(["raise", "pinv"]),
}

RULE_HYPER: dict[str, dict[str, st.SearchStrategy]] = {
    "rule:uv": {
        **_CURVED,
        "alpha": st.floats(min_value=1e-3, max_value=1.0),
        "eps": positive(1e-3, 10.0),
        "eta": positive(1e-3, 10.0),
        "L": positive(1e-2, 1e5),
        "L_source": st.sampled_from(["given", "lambda_max"]),
        "form": st.sampled_from(["matrix", "coordinates"]),
        "q": st.sampled_from([1, 2]),
        "A": st.sampled_from(["alpha_Hinv", "alpha_Hinvsqrt", "alpha_I"]),
    },
}


def rule_hyper(rule_id: str, declared: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Hyperparameters for ``rule_id``: the family's strategies restricted to ``declared``.

    A curvature given as ``diag(...)`` by default keeps its diagonal form (``diag(user)``).
    """
    family = rule_id.split(".")[0]
    pool = RULE_HYPER[family]
    drawn = {k: v for k, v in pool.items() if k in declared}
    if str(declared.get("curv", "")).startswith("diag("):
        drawn["curv"] = st.sampled_from(["diag(user)", "diag(H)"])
    return st.fixed_dictionaries(drawn)


# --- problems -------------------------------------------------------------------------
# Builder options of every registered problem, kept small (P <= ~150) so that dense
# Hessians and Fishers are cheap in both layers.

PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {}
