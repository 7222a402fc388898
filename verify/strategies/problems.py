"""Builder-option strategies of the problems added for the fo/zo/so families.

Small sizes (P <= ~40, a few dozen samples) keep the dense Hessians, Jacobians and Fishers of
the problem cross-check cheap in both layers.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_REDUCTION = st.sampled_from(["mean", "sum"])
_HIDDEN = st.lists(st.integers(min_value=1, max_value=3), min_size=0, max_size=1)

PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "prob:rosenbrock": st.fixed_dictionaries({"dim": st.integers(min_value=2, max_value=10)}),
    "prob:nls": st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["exp", "rosenbrock"]),
            "residual": st.sampled_from(["zero", "nonzero"]),
            "n_points": st.integers(min_value=2, max_value=30),
            "c": st.sampled_from([0.0, -1.0, 2.0]),
            "reduction": _REDUCTION,
        }
    ),
    "prob:online_convex": st.fixed_dictionaries(
        {
            "family": st.sampled_from(["reddi", "linear", "quadratic"]),
            "T": st.integers(min_value=1, max_value=30),
            "dim": st.integers(min_value=1, max_value=4),
            "R": st.sampled_from([0.5, 1.0, 3.0]),
            "C": st.sampled_from([2.5, 3.0, 10.0]),
        }
    ),
    "prob:saddle": st.integers(min_value=1, max_value=5).flatmap(
        lambda d: st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["simple", "random", "rotated", "nd"]),
                "dim": st.just(d),
                "n_neg": st.integers(min_value=1, max_value=d),
                "phi": st.floats(min_value=0.0, max_value=90.0),
            }
        )
    ),
    "prob:nesterov_worst": st.fixed_dictionaries(
        {
            "dim": st.integers(min_value=1, max_value=30),
            "L": st.sampled_from([0.5, 1.0, 10.0]),
        }
    ),
    "prob:smooth_nonconvex": st.fixed_dictionaries(
        {"kind": st.sampled_from(["log", "cos"]), "dim": st.integers(min_value=1, max_value=6)}
    ),
    "prob:smooth_nonconvex[mlp]": st.fixed_dictionaries(
        {
            "n_samples": st.integers(min_value=1, max_value=8),
            "widths": st.tuples(
                st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=4),
                st.integers(min_value=1, max_value=2),
            ).map(list),
            "activation": st.sampled_from(["tanh", "sigmoid"]),
            "reduction": _REDUCTION,
        }
    ),
    "prob:zo_test": st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["quadratic", "cubic", "quartic", "logistic"]),
            "dim": st.integers(min_value=1, max_value=5),
            "n_samples": st.integers(min_value=1, max_value=10),
        }
    ),
    "prob:double_well": st.fixed_dictionaries(
        {
            "dim": st.sampled_from([1, 2]),
            "a": st.sampled_from([0.5, 1.0, 2.0]),
            "b": st.sampled_from([1.0, 4.0, 16.0]),
            "n_samples": st.integers(min_value=1, max_value=6),
            "noise": st.sampled_from([0.0, 0.5]),
        }
    ),
    # a subset of the digits split and small hidden layers: P <= 64 * 3 + 3 * 10 + 13 = 235
    "prob:digits": st.fixed_dictionaries(
        {
            "n_samples": st.integers(min_value=1, max_value=6),
            "hidden": st.lists(st.integers(min_value=1, max_value=2), min_size=0, max_size=1),
            "activation": st.sampled_from(["tanh", "relu"]),
            "split": st.sampled_from(["train", "test"]),
            "reduction": _REDUCTION,
        }
    ),
    "prob:gmm_cls": st.fixed_dictionaries(
        {
            "n_samples": st.integers(min_value=2, max_value=12),
            "dim": st.integers(min_value=1, max_value=4),
            "classes": st.integers(min_value=2, max_value=4),
            "hidden": _HIDDEN,
            "label_noise": st.sampled_from([0.0, 0.3]),
            "reduction": _REDUCTION,
            "l2": st.sampled_from([0.0, 0.1]),
        }
    ),
}
