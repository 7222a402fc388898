"""Scalar hyperparameter checks, written once for both layers (pure Python, stdlib only).

Every check takes the parameter's ``name`` and its ``value``, returns the value (a ``float``
for the real-number checks, an ``int`` for `integer`) and raises ``TypeError`` for a value of
the wrong type, ``ValueError`` for one out of range, with a message naming the parameter:

- ``TypeError``: ``"<name> must be a real number, got <type>"`` (``"... a bool ..."``,
  ``"... an int ..."``/``"... an integer ..."``, ``"... a string ..."``);
- ``ValueError``: ``"Invalid <name>: <value> (must be <requirement>)"``, e.g. ``(must be
  finite)``, ``(must be > 0)``, ``(must be in [0, 1))``, ``(must be one of (...))``.

The messages are part of the layers' contract (tests match them), so the few places whose
wording differs keep it through keyword options rather than a second copy of the check:
`integer`'s ``type_noun``/``bound_noun``, `positive`'s ``say_finite`` and the ``style="allowed"``
form ``"Invalid <name>: <value!r>; allowed: <...>"`` (every failure a ``ValueError``) of
`choice` and `integer` used by the gradient-noise estimators. Bounds are printed as given
(``at_least(..., 0)`` says ``>= 0``, ``at_least(..., 0.0)`` says ``>= 0.0``).

Array checks (finite arrays, shapes, probes) stay in the layers: they need NumPy or torch.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any

__all__ = [
    "at_least",
    "at_most",
    "boolean",
    "choice",
    "greater_than",
    "in_interval",
    "integer",
    "nonnegative",
    "positive",
    "real",
    "unit",
]

_BRACKETS = {"left": "[)", "right": "(]", "both": "[]", "neither": "()"}


def _invalid(name: str, value: Any, requirement: str) -> ValueError:
    return ValueError(f"Invalid {name}: {value} (must be {requirement})")


def _real_type(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def real(name: str, value: Any) -> float:
    """A finite real number (``bool`` is not one)."""
    _real_type(name, value)
    if not math.isfinite(value):
        raise _invalid(name, value, "finite")
    return float(value)


def greater_than(name: str, value: Any, low: Any, *, say_finite: bool = False) -> float:
    """A finite real > ``low``. ``say_finite``: one message for both failures,
    ``(must be finite and > <low>)``."""
    if say_finite:
        _real_type(name, value)
        if not (math.isfinite(value) and value > low):
            raise _invalid(name, value, f"finite and > {low}")
        return float(value)
    if not real(name, value) > low:
        raise _invalid(name, value, f"> {low}")
    return float(value)


def positive(name: str, value: Any, *, say_finite: bool = False) -> float:
    """A finite real > 0 (``say_finite``: see `greater_than`)."""
    return greater_than(name, value, 0, say_finite=say_finite)


def at_least(name: str, value: Any, low: Any) -> float:
    """A finite real >= ``low``."""
    if not real(name, value) >= low:
        raise _invalid(name, value, f">= {low}")
    return float(value)


def nonnegative(name: str, value: Any) -> float:
    """A finite real >= 0."""
    return at_least(name, value, 0)


def at_most(name: str, value: Any, high: Any) -> float:
    """A finite real <= ``high``."""
    if not real(name, value) <= high:
        raise _invalid(name, value, f"<= {high}")
    return float(value)


def in_interval(name: str, value: Any, low: Any, high: Any, closed: str = "left") -> float:
    """A finite real in the interval from ``low`` to ``high``; ``closed`` in {"left" ([low,
    high)), "right" ((low, high]), "both", "neither"} says which ends belong to it."""
    x = real(name, value)
    left, right = _BRACKETS[closed]
    above = x >= low if left == "[" else x > low
    below = x <= high if right == "]" else x < high
    if not (above and below):
        raise _invalid(name, value, f"in {left}{low}, {high}{right}")
    return x


def unit(name: str, value: Any) -> float:
    """A finite real in [0, 1) (a decay or momentum coefficient)."""
    return in_interval(name, value, 0, 1, closed="left")


def boolean(name: str, value: Any) -> bool:
    """A ``bool`` (not merely a truthy value)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def integer(name: str, value: Any, low: int, high: float = math.inf, *,
            type_noun: str = "integer", bound_noun: bool = False, style: str = "must") -> int:
    """An integer in [low, high] (``bool`` is not one).

    ``style="must"``: a non-integer raises ``TypeError("<name> must be an <type_noun>, got
    <type>")`` (``type_noun`` "integer" or "int"); one out of range ``ValueError`` with
    ``(must be >= <low>)``, or ``(must be an integer >= <low>)`` when ``bound_noun``
    (``in [<low>, <high>]`` when ``high`` is finite). ``style="allowed"``: every failure is
    ``ValueError("Invalid <name>: <value!r>; allowed: integer in [<low>, <high>]")``.
    """
    is_integer = not isinstance(value, bool) and isinstance(value, Integral)
    if style == "allowed":
        if not is_integer or not low <= value <= high:
            raise ValueError(f"Invalid {name}: {value!r}; allowed: integer in [{low}, {high}]")
        return int(value)
    if not is_integer:
        raise TypeError(f"{name} must be an {type_noun}, got {type(value).__name__}")
    if not low <= value <= high:
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise _invalid(name, value, f"an integer {bound}" if bound_noun else bound)
    return int(value)


def choice(name: str, value: Any, allowed: Collection[Any], *, exact_type: bool = False,
           require_str: bool = False, style: str = "must") -> Any:
    """One of ``allowed`` (compared with ``==``; ``exact_type``: of the same type too, so that
    ``True`` is not ``1`` and ``1.0`` is not ``1``). ``require_str``: a non-``str`` value raises
    ``TypeError("<name> must be a string, got <type>")`` first. Out of ``allowed``:
    ``ValueError("Invalid <name>: <value!r> (must be one of <allowed>)")``, or with
    ``style="allowed"`` ``ValueError("Invalid <name>: <value!r>; allowed: <allowed>")``.
    """
    if require_str and not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if exact_type:
        found = any(value == a and type(value) is type(a) for a in allowed)
    else:
        found = any(value is a or value == a for a in allowed)
    if not found:
        if style == "allowed":
            raise ValueError(f"Invalid {name}: {value!r}; allowed: {allowed}")
        raise ValueError(f"Invalid {name}: {value!r} (must be one of {allowed})")
    return value
