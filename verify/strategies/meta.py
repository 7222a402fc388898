"""Hyperparameter strategies of the `rule:meta.*` family (see `verify.strategies.families`).

``inner`` and ``inner_hyper`` must agree: both read one `st.shared` draw of the inner rule
(key ``meta.inner``), so within one case ``inner_hyper`` holds exactly the inner rule's names.
The inner rules are the ones registered in both layers now: ``rule:uv.gd`` (L given),
``rule:uv.newton`` (user curvature: the cross-check's quadratic), and ``rule:fo.sgd`` /
``rule:fo.adam`` once they exist. Learning rates stay positive under every schedule:
T_max exceeds the cross-check's step count, so cosine and poly never reach 0.

Step sizes keep every per-step contraction 1 - (rate x curvature) away from 0 on the
float32 spectra ([0.1, 10]): a step that lands on the (decayed) fixed point leaves updates
that are pure rounding, whose float32-vs-float64 relative error means nothing. Hence Newton
alpha <= 0.3, uv.gd L >= 20, SGD alpha <= 0.05, schedule base <= 0.05, wd <= 0.05.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

import reference.rules
import torchimpl.rules
from verify.strategies import positive


def _both(rule_id: str) -> bool:
    return rule_id in reference.rules.REGISTRY and rule_id in torchimpl.rules.REGISTRY


_INNER_HYPER: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "rule:uv.gd": st.fixed_dictionaries({
        "alpha": st.floats(min_value=0.05, max_value=1.0),
        "L": positive(20.0, 100.0),
        "L_source": st.just("given"),
    }),
    "rule:uv.newton": st.fixed_dictionaries({
        "alpha": st.floats(min_value=0.05, max_value=0.3),
        "curv": st.just("user"),
        "damping": st.one_of(st.just(0.0), positive(1e-3, 1.0)),
    }),
    "rule:fo.sgd": st.fixed_dictionaries({"alpha": positive(1e-2, 5e-2)}),
    "rule:fo.adam": st.fixed_dictionaries({
        "alpha": positive(1e-2, 1e-1),
        "beta1": st.floats(min_value=0.0, max_value=0.95),
        "beta2": st.floats(min_value=0.5, max_value=0.999),
    }),
}
INNERS = tuple(k for k in _INNER_HYPER if _both(k))
_INNER = st.shared(st.sampled_from(INNERS), key="meta.inner")

HYPER: dict[str, st.SearchStrategy] = {
    "inner": _INNER,
    "inner_hyper": _INNER.flatmap(lambda inner: _INNER_HYPER[inner]),
    # lookahead (k, alpha, inner_state) and every_k (k)
    "k": st.integers(min_value=1, max_value=4),
    "alpha": st.floats(min_value=0.0, max_value=1.0),
    "inner_state": st.sampled_from(["keep", "reset"]),
    # weight_decay
    "wd": st.one_of(st.just(0.0), positive(1e-4, 0.05)),
    "convention": st.sampled_from(["coupled", "decoupled_lr", "decoupled_unscaled",
                                   "sassha_code"]),
    "eta": st.one_of(st.none(), positive(1e-3, 1.0)),
    "eta0": st.one_of(st.none(), positive(1e-2, 1.0)),
    # schedules
    "lr_name": st.just("alpha"),
    "schedule": st.sampled_from(["constant", "cosine", "step", "multistep", "plateau",
                                 "warmup_cosine", "inv_sqrt", "poly"]),
    "base": st.one_of(st.none(), st.floats(min_value=0.01, max_value=0.05)),
    "steps_per_epoch": st.integers(min_value=1, max_value=2),
    "T_max": st.integers(min_value=10, max_value=20),
    "T_max_mode": st.just("fixed"),
    "eta_min": st.sampled_from([0.0, 1e-3]),
    "step_size": st.integers(min_value=1, max_value=3),
    "gamma": st.floats(min_value=0.1, max_value=0.9),
    "milestones": st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=3,
                           unique=True).map(sorted),
    "milestones_preset": st.just("custom"),
    "factor": st.floats(min_value=0.1, max_value=0.9),
    "patience": st.integers(min_value=0, max_value=2),
    "threshold": st.sampled_from([1e-4, 0.0]),
    "cooldown": st.integers(min_value=0, max_value=1),
    "min_lr": st.sampled_from([0.0, 1e-3]),
    "warmup_steps": st.integers(min_value=1, max_value=3),
    "power": st.floats(min_value=0.5, max_value=2.0),
}
