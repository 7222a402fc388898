"""The cross-check: reference and torch mirror of one ID, fed identical inputs, must agree.

For every ID a `Mirror` says how to draw cases (primitive dictionaries from
``verify.strategies``), how to run both layers on a case and measure their distance
(`verify.crosscheck.compare.relative_error`), and the tolerance:

- float64: rtol 1e-10 (INVENTORY §0.4 item 3), normwise per output leaf;
- float32: the torch layer runs in float32 and is compared against the float64 reference,
  so a discrepancy is attributed to the float32 run; the tolerance is the mirror's
  documented float32 bound (a multiple of float32's machine epsilon, times the condition
  number where a solve is involved).

Hypothesis searches the cases and shrinks a failure to a minimal case, which is printed as
a runnable command.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from verify.profiles import search

Case = Mapping[str, Any]
DTYPES = ("float64", "float32")
RTOL64 = 1e-10
EPS32 = 2.0**-23


@dataclass(frozen=True)
class Mirror:
    """How to cross-check one ID.

    ``run(ref_entry, torch_entry, case, dtype) -> (error, tolerance)``: the distance between
    the two layers on ``case`` and the tolerance that applies to this case and dtype.
    """

    kind: str
    cases: Callable[[str], st.SearchStrategy]
    run: Callable[[Any, Any, Case, str], tuple[float, float]]
    note: str = ""
    max_examples: int | None = None  # a cap for IDs whose every case is expensive


@dataclass
class CheckResult:
    id: str
    kind: str
    dtype: str
    passed: bool
    examples: int
    max_error: float
    tolerance: float
    seconds: float
    witness: Case | None = None
    message: str = ""
    note: str = ""

    def repro(self) -> str:
        base = f"python -m verify crosscheck --ids '{self.id}' --dtype {self.dtype}"
        if self.witness is None:
            return base
        return f"{base} --case '{json.dumps(self.witness, sort_keys=True)}'"


def check(
    key: str,
    mirror: Mirror,
    ref_entry: Any,
    torch_entry: Any,
    dtype: str = "float64",
    max_examples: int = 50,
    seed_value: int = 0,
    case: Case | None = None,
) -> CheckResult:
    """Search cases (or replay ``case``) and return the worst error and a minimal witness."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    seen: dict[str, Any] = {"n": 0, "worst": (0.0, 0.0, RTOL64), "failure": None}

    def one(c: Case) -> None:
        error, tol, why = _guarded(mirror, ref_entry, torch_entry, c, dtype)
        ratio = error / tol if tol > 0 else math.inf
        seen["n"] += 1
        if ratio >= seen["worst"][0]:
            seen["worst"] = (ratio, error, tol)
        if not error <= tol:  # also catches NaN
            seen["failure"] = (dict(c), error, tol)
            raise AssertionError(why or f"{key} [{dtype}]: error {error:.3e} > tolerance {tol:.3e}")

    start = time.perf_counter()
    message = ""
    try:
        if case is not None:
            one(case)
        else:
            budget = min(max_examples, mirror.max_examples or max_examples)
            search(mirror.cases(dtype), one, budget, seed_value, shrink=True)
    except AssertionError as failure:
        message = str(failure).splitlines()[0]
    failure = seen["failure"]
    _, worst_error, worst_tol = seen["worst"]
    return CheckResult(
        id=key,
        kind=mirror.kind,
        dtype=dtype,
        passed=failure is None,
        examples=seen["n"],
        max_error=failure[1] if failure else worst_error,
        tolerance=failure[2] if failure else worst_tol,
        seconds=time.perf_counter() - start,
        witness=failure[0] if failure else None,
        message=message,
        note=mirror.note,
    )


def _guarded(
    mirror: Mirror, ref_entry: Any, torch_entry: Any, case: Case, dtype: str
) -> tuple[float, float, str]:
    """(error, tolerance, why) of one case; an exception in the run is a failing case."""
    try:
        error, tol = mirror.run(ref_entry, torch_entry, case, dtype)
        return float(error), float(tol), ""
    except Exception as error:  # noqa: BLE001 - reported as a failing case, not a crash
        return math.inf, 0.0, f"{type(error).__name__}: {error}"
