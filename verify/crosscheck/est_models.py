"""Cross-check cases for the model-level curvature estimators (INVENTORY §3.1-§3.3, §3.10).

A case draws a network problem from `PROBLEMS` with its builder options
(``verify.strategies.PROBLEM_OPTIONS``, ridge l2 set to 0: the torch engine has none;
BatchNorm in eval mode: train mode couples the samples and the torch ``as_model`` refuses
it), a seed
for the instance, the point and the draws, a batch, and the estimator's options. The reference
instance is built with NumPy; its torch twin from ``problem.spec()``. Monte-Carlo labels are
drawn once by the reference problem and given to both layers (``y_mc``), so both see the same
draws. An option the reference rejects (``ValueError``: e.g. exact label enumeration for a
Gaussian loss) must be rejected by torch with the same message.

Tolerance: `verify.crosscheck.tolerance.floor` (1e-10 float64, 1e-4 float32): forward and
backward passes, no solves. In float32 each leaf is compared relative to the larger of its
own norm and its norm at a nearby point (params + N(0, I)), as in the problem cross-check
(a Hessian or gradient small by cancellation carries the rounding of its terms), and the
tolerance is widened by the saturation factor S of ``verify.crosscheck.problems`` (tanh and
sigmoid derivatives formed from saturated outputs). est:timing compares structure only (the
keys, repeats, positive finite times, ratio 1 for the gradient): times are not reproducible.
est:state_bytes compares bytes per item of the layer's dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

import reference.problems
import torchimpl.problems
from contract.specs.curvature import (
    HVP_MODES,
    LABELS,
    METHODS,
    NORM_H_SOURCES,
    OPTIMIZERS,
    QUANTITIES,
    S_SCALES,
    SCALES,
)
from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import EPS32, Case, Mirror
from verify.crosscheck.problems import build, saturation
from verify.crosscheck.tolerance import floor
from verify.strategies import PROBLEM_OPTIONS, SEEDS

# Network problems the mirrors draw from (each with ``as_model`` in torch).
PROBLEMS = ("prob:mlp", "prob:softmax", "prob:cnn", "prob:normnet")
# est:oracle_counter: rules with a fixed number of oracle calls per step. Newton-CG is left
# out: its CG loop stops on a residual or curvature test that rounding decides on these
# problems (their Hessians are singular: softmax logits are shift-invariant), in float64 too
# (a softmax case with one sample gave counts 3 apart); tests/layers covers its counts.
FIXED_COST_RULES = ("rule:fo.sgd", "rule:fo.nesterov")
K_DRAWS = st.sampled_from([1, 3])

OPTIONS: dict[str, st.SearchStrategy] = {
    "est:per_sample_grads": st.fixed_dictionaries({"method": st.sampled_from(METHODS)}),
    "est:layer_stats": st.fixed_dictionaries({"token_flatten": st.booleans()}),
    "est:hessian": st.just({}),
    "est:hvp": st.fixed_dictionaries({"mode": st.sampled_from(HVP_MODES), "v": st.just(True)}),
    "est:ggn": st.fixed_dictionaries({"v": st.booleans()}),
    "est:fisher_true": st.fixed_dictionaries(
        {"mc_samples": st.sampled_from([None, 1, 3]), "scale": st.sampled_from(SCALES)}
    ),
    "est:fisher_emp": st.fixed_dictionaries(
        {"scale": st.sampled_from(SCALES), "diagonal": st.booleans()}
    ),
    "est:kfac_factors": st.fixed_dictionaries(
        {
            "labels": st.sampled_from(LABELS),
            "mc_samples": K_DRAWS,
            "s_scale": st.sampled_from(S_SCALES),
            "spatial_scaling": st.sampled_from([None, (0.5, 2.0)]),
            "token_flatten": st.booleans(),
        }
    ),
    "est:norm_factors": st.fixed_dictionaries(
        {"norm_h_source": st.sampled_from(NORM_H_SOURCES)}
    ),
    "est:oracle_counter": st.fixed_dictionaries(
        {"rule": st.sampled_from(FIXED_COST_RULES), "steps": st.integers(min_value=1, max_value=2)}
    ),
    "est:timing": st.fixed_dictionaries(
        {
            "quantities": st.lists(st.sampled_from(QUANTITIES[:4]), min_size=1, max_size=2,
                                   unique=True),
            "repeats": st.just(5),
            "warmup": st.integers(min_value=0, max_value=1),
        }
    ),
    "est:state_bytes": st.fixed_dictionaries(
        {"optimizer": st.sampled_from(sorted(OPTIMIZERS)), "state": st.booleans()}
    ),
}


def _problem_case(pid: str) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "id": st.just(pid),
            "options": PROBLEM_OPTIONS[pid],
            "seed": SEEDS,
            "batch_fraction": st.sampled_from([None, 0.5]),
        }
    )


def cases(key: str):
    def strategy(dtype: str) -> st.SearchStrategy:
        options = OPTIONS[key]
        return st.fixed_dictionaries(
            {"problem": st.sampled_from(PROBLEMS).flatmap(_problem_case), "estimator": options}
        )

    return strategy


def _instance(case: Case, dtype: str):
    """(reference problem, params, batch, v, torch twin, torch params, torch v)."""
    problem_case = dict(case["problem"])
    options = dict(problem_case["options"])
    if "l2" in options:
        options["l2"] = 0.0
    if "bn_mode" in options:
        options["bn_mode"] = "eval"
    problem_case["options"] = options
    problem, params, batch, v = build(reference.problems.get(problem_case["id"]), problem_case)
    tdtype = getattr(torch, dtype)
    twin = torchimpl.problems.get(problem_case["id"])(**problem.spec(), dtype=tdtype)
    return problem, params, batch, v, twin, _tensors(params, tdtype), _tensors(v, tdtype)


def _tensors(tree: dict, dtype: torch.dtype) -> dict:
    return {k: torch.as_tensor(a, dtype=dtype) for k, a in tree.items()}


def _labels_tensor(y: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(y, dtype=dtype if y.dtype.kind == "f" else torch.int64)


def _options(key: str, case: Case, problem, params, batch, v, t_v, dtype):
    """(reference options, torch options) from the case."""
    drawn = dict(case["estimator"])
    ref, tor = dict(drawn), dict(drawn)
    tdtype = getattr(torch, dtype)
    if "v" in drawn:
        ref["v"], tor["v"] = (v, t_v) if drawn["v"] else (None, None)
    if "state" in drawn:
        state = {"exp_avg": {k: np.ones(np.shape(a)) for k, a in params.items()}, "step": 3}
        ref["state"] = state if drawn["state"] else None
        tor["state"] = ({"exp_avg": _tensors(state["exp_avg"], tdtype), "step": 3}
                        if drawn["state"] else None)
    sampled = (drawn.get("labels") == "sampled" or
               (key == "est:fisher_true" and drawn.get("mc_samples")))
    if sampled:
        rng = np.random.default_rng(case["problem"]["seed"] + 2)
        y_mc = np.stack([problem.sample_labels(params, rng, batch)
                         for _ in range(drawn["mc_samples"])])
        ref["y_mc"], tor["y_mc"] = y_mc, _labels_tensor(y_mc, tdtype)
    if key == "est:timing":
        ref["quantities"] = tor["quantities"] = tuple(drawn["quantities"])
    return ref, tor


def _call(entry, *args, **options) -> tuple[Any, str | None]:
    try:
        return entry(*args, **options), None
    except (ValueError, TypeError) as error:
        return None, f"{type(error).__name__}: {error}"


def run(key: str):
    def check(ref_entry: Any, torch_entry: Any, case: Case, dtype: str) -> tuple[float, float]:
        problem, params, batch, v, twin, t_params, t_v = _instance(case, dtype)
        ref_options, torch_options = _options(key, case, problem, params, batch, v, t_v, dtype)
        expected, ref_error = _call(ref_entry, problem, params, batch, **ref_options)
        got, torch_error = _call(torch_entry, twin, t_params, batch, **torch_options)
        tol = floor(dtype)
        if ref_error is not None or torch_error is not None:
            return (0.0 if ref_error == torch_error else math.inf), tol
        if key == "est:timing":
            return _timing_gap(expected, got), tol
        if key == "est:state_bytes":
            return _state_gap(expected, got, dtype), tol
        if dtype == "float64":
            return relative_error(expected, got), tol
        shift = np.random.default_rng(case["problem"]["seed"] + 1)
        nearby = {k: a + shift.standard_normal(np.shape(a)) for k, a in params.items()}
        scale, _ = _call(ref_entry, problem, nearby, batch, **ref_options)
        tol = max(tol, 20 * EPS32 * saturation(problem, params, batch))
        return relative_error(expected, got, scale=_same_structure(scale, expected)), tol

    return check


def _same_structure(scale: Any, expected: Any) -> Any:
    """``scale`` where it has the structure of ``expected`` (else None: no scale)."""
    if relative_error(expected, scale, atol=math.inf) == math.inf:
        return None
    return scale


def _timing_gap(expected: dict, got: dict) -> float:
    """0 when both report the same quantities and repeats with positive finite times and a
    gradient ratio of 1, else inf."""
    def sound(out: dict) -> bool:
        times = list(out["seconds"].values())
        return (all(math.isfinite(t) and t > 0 for t in times) and out["ratio"]["grad"] == 1.0
                and set(out["seconds"]) == set(out["ratio"]))
    same = (set(expected) == set(got) and set(expected["seconds"]) == set(got["seconds"])
            and expected["repeats"] == got["repeats"])
    return 0.0 if same and sound(expected) and sound(got) else math.inf


def _state_gap(expected: dict, got: dict, dtype: str) -> float:
    """Element counts exactly; bytes per item of each layer's dtype."""
    def per_item(out: dict, itemsize: int) -> dict:
        return {k: (v / itemsize if k in ("bytes", "measured_bytes") else v)
                for k, v in out.items()}
    itemsize = np.dtype(dtype).itemsize
    return relative_error(per_item(expected, 8), per_item(got, itemsize))


NOTE = ("network problems " + ", ".join(PROBLEMS) + " with l2 = 0; shared Monte-Carlo label "
        "draws; float32 relative to the nearby-point scale, times the saturation factor")

MIRRORS: dict[str, Mirror] = {
    key: Mirror("estimator", cases(key), run(key), NOTE, 20 if key == "est:timing" else None)
    for key in OPTIONS
}
