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

from reference.problems.network import ACTIVATIONS, LOSSES, LSTSQ_DESIGNS
from reference.problems.spectra import FAMILIES, random_orthogonal, symmetric

Case = Mapping[str, Any]

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def curvature_cases(
    n_max: int = 12,
    n_min: int = 1,
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
            "n": st.integers(min_value=n_min, max_value=n_max),
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

RULE_HYPER: dict[str, dict[str, st.SearchStrategy]] = {  # completed by the family modules
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
    pool = {**RULE_HYPER[family], **RULE_HYPER_BY_ID.get(rule_id.split("[")[0], {})}
    drawn = {k: v for k, v in pool.items() if k in declared}
    if str(declared.get("curv", "")).startswith("diag("):
        drawn["curv"] = st.sampled_from(["diag(user)", "diag(H)"])
    return st.fixed_dictionaries(drawn)


# --- problems -------------------------------------------------------------------------
# Builder options of every registered problem, kept small (P <= ~150) so that dense
# Hessians and Fishers are cheap in both layers.


def _mlp_options() -> st.SearchStrategy[dict[str, Any]]:
    def for_loss(loss: str) -> st.SearchStrategy[dict[str, Any]]:
        outputs = st.just(1) if loss == "bce" else st.integers(min_value=2, max_value=3)
        hidden = st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=2)
        widths = st.tuples(st.integers(min_value=1, max_value=3), hidden, outputs)
        return st.fixed_dictionaries(
            {
                "n_samples": st.integers(min_value=1, max_value=8),
                "widths": widths.map(lambda w: [w[0], *w[1], w[2]]),
                "activation": st.sampled_from(ACTIVATIONS),
                "loss": st.just(loss),
                "bias": st.booleans(),
                "reduction": st.sampled_from(["mean", "sum"]),
                "l2": st.sampled_from([0.0, 0.1]),
            }
        )

    return st.sampled_from(LOSSES).flatmap(for_loss)


_SMALL_N = st.integers(min_value=1, max_value=8)
_DIM = st.integers(min_value=1, max_value=4)

PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "prob:quad": st.fixed_dictionaries(
        {
            "n": st.integers(min_value=1, max_value=8),
            "family": st.sampled_from(FAMILIES),
            "cond": positive(1.0, 1e4),
            "rotated": st.booleans(),
            "halved": st.booleans(),
        }
    ),
    "prob:quad_finite_sum": st.fixed_dictionaries(
        {
            "n_samples": st.sampled_from([4, 8, 12]),
            "dim": _DIM,
            "out_dim": st.sampled_from([1, 2]),
            "noise_like_hessian": st.booleans(),
        }
    ),
    "prob:quad_finite_sum[quadratics]": st.fixed_dictionaries(
        {"n_samples": _SMALL_N, "dim": _DIM, "family": st.sampled_from(FAMILIES)}
    ),
    "prob:quad_noisy": st.fixed_dictionaries(
        {
            "n": st.integers(min_value=1, max_value=6),
            "noise": st.sampled_from(["isotropic", "hessian"]),
            "bounded": st.sampled_from([None, 0.5]),
        }
    ),
    "prob:mlp": _mlp_options(),
    "prob:softmax": st.fixed_dictionaries(
        {
            "n_samples": _SMALL_N,
            "dim": _DIM,
            "classes": st.integers(min_value=2, max_value=4),
            "reduction": st.sampled_from(["mean", "sum"]),
            "l2": st.sampled_from([0.0, 0.1]),
        }
    ),
    "prob:lstsq": st.fixed_dictionaries(
        {
            # a rank-deficient design needs d >= 2, an ill-conditioned one N >= d
            "n_samples": st.integers(min_value=4, max_value=8),
            "dim": st.integers(min_value=2, max_value=4),
            "design": st.sampled_from(LSTSQ_DESIGNS),
        }
    ),
    "prob:logreg": st.fixed_dictionaries(
        {
            "n_samples": _SMALL_N,
            "dim": _DIM,
            "flip": st.sampled_from([0.0, 0.25]),
            "l2": st.sampled_from([0.0, 0.1]),
            "bias": st.booleans(),
        }
    ),
    # 3,466 parameters: dense Hessians on a handful of samples only.
    "prob:W1": st.fixed_dictionaries(
        {
            "n_samples": st.integers(min_value=1, max_value=3),
            "activation": st.sampled_from(["tanh", "relu"]),
        }
    ),
}


# --- gradient-noise estimators ---------------------------------------------------------
# Per-sample gradients G (N, P) with data labels, or G (N, C, P) with the model's label
# probabilities p (N, C); N small enough for exact enumeration of every batch.

_NOISE_EXTRA = {
    "est:grad_noise": {"ddof": st.sampled_from([0, 1])},
    "est:minibatch_moments": {
        "sampling": st.sampled_from(["with_replacement", "without_replacement"]),
        "mode": st.sampled_from(["exact", "mc"]),
    },
    "est:fisher_batch": {"sampling": st.sampled_from(["with_replacement", "without_replacement"])},
}


def noise_cases(key: str) -> st.SearchStrategy[dict[str, Any]]:
    """A primitive case for the gradient-noise estimator ``key``."""

    def with_size(N: int) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {
                "N": st.just(N),
                "B": st.integers(min_value=1, max_value=N),
                "P": st.integers(min_value=1, max_value=5),
                "C": st.integers(min_value=2, max_value=3),
                "labels": st.sampled_from(["data", "model"]),
                "seed": SEEDS,
                **_NOISE_EXTRA[key],
            }
        )

    return st.integers(min_value=2, max_value=6).flatmap(with_size)


def noise_inputs(key: str, case: Case) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` of the estimator ``key`` for a `noise_cases` case."""
    rng = np.random.default_rng(case["seed"])
    N, C, P, labels = case["N"], case["C"], case["P"], case["labels"]
    kwargs: dict[str, Any] = {"labels": labels}
    if labels == "data":
        args: tuple[Any, ...] = (rng.standard_normal((N, P)),)
    else:
        logits = rng.standard_normal((N, C))
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        args = (rng.standard_normal((N, C, P)), p)
    if key == "est:grad_noise":
        return args, {**kwargs, "ddof": case["ddof"]}
    kwargs.update(B=case["B"], sampling=case["sampling"])
    if case.get("mode") == "mc":
        kwargs.update(mode="mc", **_batch_draws(rng, case, args))
    return args, kwargs


def _batch_draws(rng: np.random.Generator, case: Case, args: tuple[Any, ...]) -> dict[str, Any]:
    """K = 20 batches (and their model labels) drawn under the case's sampling scheme."""
    N, B, K = case["N"], case["B"], 20
    replace = case["sampling"] == "with_replacement"
    indices = np.stack([rng.choice(N, size=B, replace=replace) for _ in range(K)])
    if case["labels"] == "data":
        return {"indices": indices}
    cumulative = np.cumsum(args[1][indices], axis=-1)
    y = (rng.random((K, B, 1)) > cumulative).sum(axis=-1)
    return {"indices": indices, "y": np.minimum(y, case["C"] - 1)}


# --- the family modules add their pools (one file per family, same conventions) ----------
from verify.strategies import families  # noqa: E402

RULE_HYPER.update(families.RULE_HYPER)
RULE_HYPER_BY_ID = families.RULE_HYPER_BY_ID
PROBLEM_OPTIONS.update(families.PROBLEM_OPTIONS)
