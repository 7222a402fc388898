"""The strategy pools of the rule families and problems added after the unified view.

Each family module defines ``HYPER`` (the superset of hyperparameter strategies of its rules:
the cross-check keeps the names a rule declares) and may define ``PROBLEM_OPTIONS``.
"""

from __future__ import annotations

from verify.strategies import (
    adaptive,
    first_order,
    meta,
    problems,
    second_order,
    zeroth_order,
)

RULE_HYPER = {
    "rule:fo": {**first_order.HYPER, **adaptive.HYPER},
    "rule:zo": zeroth_order.HYPER,
    "rule:so": second_order.HYPER,
    "rule:meta": meta.HYPER,
}
PROBLEM_OPTIONS = problems.PROBLEM_OPTIONS
