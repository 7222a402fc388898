"""Cross-check settings of `rule:meta.*` (see `verify.crosscheck.families`).

The wrappers add elementwise arithmetic to their inner rule, so the tolerance is the inner
rule's: the spectral bound of `verify.crosscheck.tolerance.spectral` when the inner rule is a
solve (``rule:uv.newton``), else the plain floor. One exception: lookahead's synchronising
update (1 - alpha)(phi - theta) + alpha u subtracts two stored iterates, so its relative error
is about eps ||theta||/||phi - theta||, and ||phi - theta|| is at least the per-step move, a
fraction r of ||theta|| bounded below from the inner step size and the smallest eigenvalue
(uv.gd: (alpha/L) lam_min; SGD: alpha lam_min; Newton: alpha; Adam: about alpha/10, its step
being ~alpha per coordinate on iterates of size ~1-10). Lookahead's tolerance is
max(inner tolerance, 30 eps/r) (r is a heuristic lower bound, hence the factor 30).
Up to 6 steps, so that lookahead
synchronises (k <= 4), every_k reuses its cache and the schedules move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from verify.crosscheck.families import Setting
from verify.crosscheck.tolerance import floor, spectral

SOLVES = ("rule:uv.newton",)


def _inner_tolerance(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    if hyper.get("inner") in SOLVES:
        damping = dict(hyper.get("inner_hyper") or {}).get("damping", 0.0)
        return spectral(H, dtype, damping=damping)
    return floor(dtype)


def _step_fraction(H: np.ndarray, hyper: Mapping[str, Any]) -> float:
    """A lower bound on ||theta_{t+1} - theta_t||/||theta_t|| of the inner rule (see above)."""
    inner, ih = hyper.get("inner"), dict(hyper.get("inner_hyper") or {})
    lam_min = float(np.linalg.eigvalsh(H).min())
    alpha = float(ih.get("alpha", 1.0))
    if inner == "rule:uv.gd":
        return alpha / float(ih["L"]) * lam_min
    if inner == "rule:fo.sgd":
        return alpha * lam_min
    if inner == "rule:fo.adam":
        return alpha / 10.0
    return alpha


def _lookahead_tolerance(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    fraction = min(_step_fraction(H, hyper), 1.0)
    cancellation = 30.0 * float(np.finfo(dtype).eps) / fraction if fraction > 0 else np.inf
    return max(_inner_tolerance(H, hyper, dtype), cancellation)


SETTINGS: dict[str, Setting] = {
    "rule:meta.lookahead": Setting(kinds=("pd",), max_steps=6, tolerance=_lookahead_tolerance,
                                   note="inner tolerance, or the synchronisation's cancellation"),
    # the printed fast step ([as_printed]) moves by the same inner steps: the same tolerance
    "rule:meta.lookahead[as_printed]": Setting(kinds=("pd",), max_steps=6,
                                               tolerance=_lookahead_tolerance,
                                               note="as rule:meta.lookahead"),
    "rule:meta.*": Setting(kinds=("pd",), max_steps=6, tolerance=_inner_tolerance,
                           note="tolerance of the inner rule (spectral for uv.newton)"),
}
