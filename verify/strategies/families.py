"""The strategy pools of the rule families and problems added after the unified view.

Each family module defines ``HYPER`` (the superset of hyperparameter strategies of its rules:
the cross-check keeps the names a rule declares), may define ``HYPER_BY_ID`` (strategies of
one rule, overriding the family's) and ``PROBLEM_OPTIONS``.
"""

from __future__ import annotations

from verify.strategies import (
    adaptive,
    first_order,
    meta,
    problems,
    problems_conv,
    problems_norm,
    second_order,
    zeroth_order,
)

RULE_HYPER = {
    "rule:fo": {**first_order.HYPER, **adaptive.HYPER},
    "rule:zo": zeroth_order.HYPER,
    "rule:so": second_order.HYPER,
    "rule:meta": meta.HYPER,
}
# Per-ID strategies, for a name whose meaning differs between rules of one family.
RULE_HYPER_BY_ID = {**second_order.HYPER_BY_ID}
PROBLEM_OPTIONS = {
    **problems.PROBLEM_OPTIONS, **problems_conv.PROBLEM_OPTIONS, **problems_norm.PROBLEM_OPTIONS
}
