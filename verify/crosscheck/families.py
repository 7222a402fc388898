"""Cross-check settings of the rule families after the unified view (fo, zo, so, meta).

A `Setting` says on which quadratics (``verify.strategies.curvature_cases``) a rule is
cross-checked, for how many consecutive steps, and to which tolerance. Each family module
``verify.crosscheck.settings_<family>`` maps rule IDs (glob patterns allowed) to settings;
the first matching pattern wins, most specific patterns first.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from verify.crosscheck.tolerance import floor


def _floor(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    return floor(dtype)


@dataclass(frozen=True)
class Setting:
    """``tolerance(H, hyper, dtype) -> rtol``; the default is the plain floor (elementwise
    rules: 1e-10 in float64, 1e-4 for float32 against the float64 baseline)."""

    kinds: tuple[str, ...] = ("pd",)
    log10_range: tuple[float, float] = (-2.0, 2.0)
    log10_range32: tuple[float, float] = (-1.0, 1.0)
    n_max: int = 8
    n_min: int = 1
    max_steps: int = 5
    tolerance: Callable[[np.ndarray, Mapping[str, Any], str], float] = _floor
    note: str = ""
    max_examples: int | None = None


@cache
def _settings() -> dict[str, Setting]:
    """Every family's settings, merged once (imported lazily: they import this module)."""
    from verify.crosscheck import (
        settings_adaptive,
        settings_first_order,
        settings_meta,
        settings_second_order,
        settings_zeroth_order,
    )

    merged: dict[str, Setting] = {}
    modules = (settings_first_order, settings_adaptive, settings_zeroth_order,
               settings_second_order, settings_meta)
    for module in modules:
        merged.update(module.SETTINGS)
    return merged


def setting_for(rule_id: str) -> Setting | None:
    """The setting of ``rule_id``: exact key first, then the longest matching glob; None for
    families cross-checked by their own mirror (the unified view)."""
    settings = _settings()
    if rule_id in settings:
        return settings[rule_id]
    matches = [p for p in settings if fnmatch.fnmatchcase(rule_id, p)]
    return settings[max(matches, key=len)] if matches else None
