"""Cross-check cases for problems: every quantity of the oracle interface, both layers.

A case is a problem ID's builder options (``verify.strategies.PROBLEM_OPTIONS``), a seed for
the instance and the point, and a batch. The torch twin is built from ``problem.spec()``.
Every quantity the reference defines is compared; one the reference does not define
(``NotImplementedError``) must be undefined in torch too.

Tolerance: `verify.crosscheck.tolerance.floor` (1e-10 float64; 1e-4 float32, about 800
machine epsilons): these are forward computations (no solves), whose rounding error grows
with depth and width, not with a condition number; the float64 reference is the baseline.
In float32 two effects are ill-conditioned by nature and accounted for. (1) A quantity that
is small by cancellation (a gradient near a critical point, a loss whose terms cancel) carries
float32 rounding of the size of its terms, not of itself: each leaf is compared relative to
the larger of its own norm and the typical size of its terms, namely its norm at a nearby
point (params + N(0, I)) and, for the loss and the gradient of a finite sum, the mean
magnitude of the per-sample terms (`term_scale`). (2) A saturated tanh or sigmoid unit.
Backpropagation forms the derivative from the unit's output h (1 - h^2, h (1 - h)), which
cancels: a rounding of h by eps|h| moves 1 - h^2 by 2 eps h^2, relative 2 eps h^2/(1 - h^2).
The float32 tolerance is max(floor, 20 eps S): ten roundings of that relative size, with
S = max over hidden units of h^2/(1 - h^2) (tanh) or max(h, 1 - h)/min(h, 1 - h) (sigmoid),
read from the reference layer statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import EPS32, Case, Mirror
from verify.crosscheck.tolerance import floor
from verify.strategies import PROBLEM_OPTIONS, SEEDS

# Workload-sized problems: at most this many cases, (cap, parameter count) for the note.
EXPENSIVE = {"prob:W1": (2, "3,466"), "prob:W8": (2, "4,794"), "prob:W2": (5, "<= 1,039")}

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

    if key not in EXPENSIVE:
        return Mirror("problem", cases, run)
    cap, size = EXPENSIVE[key]
    note = f"at most {cap} case(s) per run: dense quantities over {size} parameters"
    return Mirror("problem", cases, run, note, cap)


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
    shift = np.random.default_rng(case["seed"] + 1)  # one stream: independent leaf shifts
    nearby = {k: a + shift.standard_normal(np.shape(a)) for k, a in params.items()}
    worst = 0.0
    for name, quantity in QUANTITIES.items():
        try:
            expected = quantity(problem, params, batch, v)
        except NotImplementedError:
            worst = max(worst, _undefined_in_torch(quantity, twin, t_params, batch, t_v, name))
            continue
        scale = term_scale(name, quantity, problem, params, nearby, batch, v, dtype)
        worst = max(worst, relative_error(expected, quantity(twin, t_params, batch, t_v),
                                          scale=scale))
    if dtype == "float32":
        return worst, max(floor(dtype), 20 * EPS32 * saturation(problem, params, batch))
    return worst, floor(dtype)


def term_scale(name, quantity, problem, params, nearby, batch, v, dtype) -> Any:
    """The typical size of ``quantity``'s terms (float32 only; None in float64)."""
    if dtype != "float32":
        return None
    scale = quantity(problem, nearby, batch, v)
    try:
        if name == "loss":
            terms = np.abs(problem.per_sample_losses(params, batch))
            scale = max(abs(scale), float(np.mean(terms)))
        elif name == "grad":
            terms = np.mean(np.abs(problem.per_sample_grads(params, batch)), axis=0)
            leaves = np.split(terms, np.cumsum([np.size(a) for a in params.values()])[:-1])
            scale = {k: np.maximum(np.abs(scale[k]), t.reshape(np.shape(scale[k])))
                     for (k, t) in zip(params, leaves, strict=True)}
    except NotImplementedError:
        pass
    return scale


def saturation(problem: Any, params: dict[str, np.ndarray], batch: np.ndarray | None) -> float:
    """S >= 1 of the module docstring: how much a saturated tanh/sigmoid unit amplifies the
    rounding of its output in the derivatives below it (1 for other problems)."""
    activation = getattr(problem, "activation", None)
    if activation not in ("tanh", "sigmoid"):
        return 1.0
    try:
        stats = problem.layer_stats(params, batch)
    except NotImplementedError:
        return 1.0
    worst = 1.0
    for layer in stats[1:]:  # the inputs of layers 2.. are hidden-unit outputs
        if "h_bar" not in layer:  # a normalization layer: its input is a linear layer's output
            continue
        h = layer["h_bar"][..., :-1]
        h = np.abs(h) if activation == "tanh" else h
        with np.errstate(divide="ignore"):
            ratio = h**2 / (1 - h**2) if activation == "tanh" else (
                np.maximum(h, 1 - h) / np.minimum(h, 1 - h))
        worst = max(worst, float(np.max(ratio, initial=1.0)))
    return worst


def _undefined_in_torch(quantity, twin, params, batch, v, name: str) -> float:
    try:
        quantity(twin, params, batch, v)
    except NotImplementedError:
        return 0.0
    raise AssertionError(f"{name} is undefined in the reference but defined in torch")


def _to_torch(tree: dict[str, np.ndarray], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(a, dtype=dtype) for k, a in tree.items()}


__all__ = ["QUANTITIES", "build", "mirror", "run"]
