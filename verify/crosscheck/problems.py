"""Cross-check cases for problems: every quantity of the oracle interface, both layers.

A case is a problem ID's builder options (``verify.strategies.PROBLEM_OPTIONS``), a seed for
the instance and the point, and a batch. The torch twin is built from ``problem.spec()``.
Every quantity the reference defines is compared; one the reference does not define
(``NotImplementedError``) must be undefined in torch too.

Tolerance: `verify.crosscheck.tolerance.floor` (1e-10 float64; 1e-4 float32, about 800
machine epsilons): these are forward computations (no solves), whose rounding error grows
with depth and width, not with a condition number; the float64 reference is the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import Case, Mirror
from verify.crosscheck.tolerance import floor
from verify.strategies import PROBLEM_OPTIONS, SEEDS

EXPENSIVE = {"prob:W1": 2}  # the same FeedForward as prob:mlp, at 3,466 parameters

QUANTITIES: dict[str, Callable[[Any, Any, Any, Any], Any]] = {
    "loss": lambda p, x, b, v: p.loss(x, b),
    "grad": lambda p, x, b, v: p.grad(x, b),
    "per_sample_losses": lambda p, x, b, v: p.per_sample_losses(x, b),
    "per_sample_grads": lambda p, x, b, v: p.per_sample_grads(x, b),
    "hessian": lambda p, x, b, v: p.hessian(x, b),
    "hvp": lambda p, x, b, v: p.hvp(x, v, b),
    "jac_out": lambda p, x, b, v: p.jac_out(x, b),
    "out_hess": lambda p, x, b, v: p.out_hess(x, b),
    "ggn": lambda p, x, b, v: p.ggn(x, b),
    "fisher_true": lambda p, x, b, v: p.fisher_true(x, b),
    "fisher_emp": lambda p, x, b, v: p.fisher_emp(x, b),
    "layer_stats": lambda p, x, b, v: p.layer_stats(x, b),
}


def mirror(key: str, ref_entry: Any) -> Mirror | None:
    if key not in PROBLEM_OPTIONS:
        return None

    def cases(dtype: str) -> st.SearchStrategy:
        return st.fixed_dictionaries(
            {
                "options": PROBLEM_OPTIONS[key],
                "seed": SEEDS,
                "batch_fraction": st.sampled_from([None, 0.5]),
            }
        )

    cap = EXPENSIVE.get(key)
    note = f"at most {cap} case(s) per run: {cap and 'dense quantities over 3,466 parameters'}"
    return Mirror("problem", cases, run, note if cap else "", cap)


def build(ref_entry: Any, case: Case) -> tuple[Any, dict[str, np.ndarray], np.ndarray | None, dict]:
    """The reference instance, a point, a batch and a direction, from a case."""
    rng = np.random.default_rng(case["seed"])
    problem = ref_entry.make(rng, **case["options"])
    params = problem.init_params(rng)
    n = problem.num_samples()
    batch = None
    if case["batch_fraction"] is not None and n > 1:
        batch = np.sort(rng.choice(n, size=max(1, int(n * case["batch_fraction"])), replace=False))
    v = {k: rng.standard_normal(np.shape(a)) for k, a in params.items()}
    return problem, params, batch, v


def run(ref_entry: Any, torch_entry: Any, case: Case, dtype: str) -> tuple[float, float]:
    problem, params, batch, v = build(ref_entry, case)
    tdtype = getattr(torch, dtype)
    twin = torch_entry(**problem.spec(), dtype=tdtype)
    t_params, t_v = _to_torch(params, tdtype), _to_torch(v, tdtype)
    worst = 0.0
    for name, quantity in QUANTITIES.items():
        try:
            expected = quantity(problem, params, batch, v)
        except NotImplementedError:
            worst = max(worst, _undefined_in_torch(quantity, twin, t_params, batch, t_v, name))
            continue
        worst = max(worst, relative_error(expected, quantity(twin, t_params, batch, t_v)))
    return worst, floor(dtype)


def _undefined_in_torch(quantity, twin, params, batch, v, name: str) -> float:
    try:
        quantity(twin, params, batch, v)
    except NotImplementedError:
        return 0.0
    raise AssertionError(f"{name} is undefined in the reference but defined in torch")


def _to_torch(tree: dict[str, np.ndarray], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(a, dtype=dtype) for k, a in tree.items()}


__all__ = ["QUANTITIES", "build", "mirror", "run"]
