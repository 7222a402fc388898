"""The scalar hyperparameter checks of `contract.validate` (shared by both layers).

For each check: the values it accepts and what it returns (type included: ``float`` for the
real-number checks, ``int`` for `integer`, the value itself for `choice` and `boolean`), and
for representative bad values the exception type and the exact message, which the layers'
tests match: a ``bool`` where a real is expected, NaN and infinities, negatives, both ends of
an interval under each closedness, wrong types for `integer`, `choice` and `boolean`, and the
wording options (``say_finite``, ``type_noun``, ``bound_noun``, ``require_str``,
``exact_type``, ``style="allowed"``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from contract import validate as V


def fails(exc: type[Exception], message: str, check, *args, **kwargs) -> None:
    """``check(*args, **kwargs)`` raises exactly ``exc`` with exactly ``message``."""
    with pytest.raises(exc) as info:
        check(*args, **kwargs)
    assert type(info.value) is exc
    assert str(info.value) == message


def returns(expected, check, *args, **kwargs) -> None:
    """``check`` returns ``expected``, of the same type (``1.0`` is not ``1``)."""
    got = check(*args, **kwargs)
    assert type(got) is type(expected), (got, expected)
    assert got == expected


def test_exports():
    assert sorted(V.__all__) == ["at_least", "at_most", "boolean", "choice", "greater_than",
                                 "in_interval", "integer", "nonnegative", "positive", "real",
                                 "unit"]


# --- real -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    (1, 1.0), (-2.5, -2.5), (0, 0.0), (np.float64(0.25), 0.25), (np.float32(0.5), 0.5),
    (np.int64(3), 3.0), (Fraction(1, 4), 0.25), (1e308, 1e308), (-1e-320, -1e-320),
])
def test_real_accepts_finite_reals_and_returns_float(value, expected):
    returns(expected, V.real, "a", value)


@pytest.mark.parametrize("value,type_name", [
    (True, "bool"), (False, "bool"), (np.True_, "bool"), ("1.0", "str"), (None, "NoneType"),
    (1j, "complex"), ([1.0], "list"), (np.array(1.0), "ndarray"),
])
def test_real_rejects_non_reals_with_type_error(value, type_name):
    fails(TypeError, f"a must be a real number, got {type_name}", V.real, "a", value)


@pytest.mark.parametrize("value,shown", [
    (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), (np.float64(np.nan), "nan"),
])
def test_real_rejects_non_finite_with_value_error(value, shown):
    fails(ValueError, f"Invalid a: {shown} (must be finite)", V.real, "a", value)


# --- greater_than, positive -------------------------------------------------------------------


def test_greater_than():
    returns(2.0, V.greater_than, "x", 2, 1)
    returns(1.5, V.greater_than, "x", 1.5, 1.25)
    fails(ValueError, "Invalid x: 1 (must be > 1)", V.greater_than, "x", 1, 1)
    fails(ValueError, "Invalid x: 0.5 (must be > 1)", V.greater_than, "x", 0.5, 1)
    fails(ValueError, "Invalid x: 0.5 (must be > 1.0)", V.greater_than, "x", 0.5, 1.0)
    # non-finite values fail on finiteness first, types on type first
    fails(ValueError, "Invalid x: inf (must be finite)", V.greater_than, "x", math.inf, 1)
    fails(ValueError, "Invalid x: nan (must be finite)", V.greater_than, "x", math.nan, 1)
    fails(TypeError, "x must be a real number, got bool", V.greater_than, "x", True, 0)


def test_greater_than_say_finite_gives_one_message():
    returns(3.0, V.greater_than, "x", 3, 1, say_finite=True)
    for value, shown in [(1, "1"), (-2.0, "-2.0"), (math.inf, "inf"), (math.nan, "nan"),
                         (-math.inf, "-inf")]:
        fails(ValueError, f"Invalid x: {shown} (must be finite and > 1)", V.greater_than, "x",
              value, 1, say_finite=True)
    fails(TypeError, "x must be a real number, got bool", V.greater_than, "x", True, 0,
          say_finite=True)
    fails(TypeError, "x must be a real number, got str", V.greater_than, "x", "2", 0,
          say_finite=True)


def test_positive():
    returns(1e-300, V.positive, "lr", 1e-300)
    returns(3.0, V.positive, "lr", 3)
    fails(ValueError, "Invalid lr: 0 (must be > 0)", V.positive, "lr", 0)
    fails(ValueError, "Invalid lr: 0.0 (must be > 0)", V.positive, "lr", 0.0)
    fails(ValueError, "Invalid lr: -0.5 (must be > 0)", V.positive, "lr", -0.5)
    fails(ValueError, "Invalid lr: inf (must be finite)", V.positive, "lr", math.inf)
    fails(ValueError, "Invalid lr: nan (must be finite)", V.positive, "lr", math.nan)
    fails(ValueError, "Invalid lr: inf (must be finite and > 0)", V.positive, "lr", math.inf,
          say_finite=True)
    fails(ValueError, "Invalid lr: -1 (must be finite and > 0)", V.positive, "lr", -1,
          say_finite=True)
    fails(TypeError, "lr must be a real number, got bool", V.positive, "lr", True)
    fails(TypeError, "lr must be a real number, got NoneType", V.positive, "lr", None)


# --- at_least, nonnegative, at_most -----------------------------------------------------------


def test_at_least_prints_the_bound_as_given():
    returns(0.0, V.at_least, "x", 0, 0)
    returns(2.0, V.at_least, "x", 2, 1.5)
    fails(ValueError, "Invalid x: -1e-09 (must be >= 0)", V.at_least, "x", -1e-9, 0)
    fails(ValueError, "Invalid x: -1e-09 (must be >= 0.0)", V.at_least, "x", -1e-9, 0.0)
    fails(ValueError, "Invalid x: 1.4 (must be >= 1.5)", V.at_least, "x", 1.4, 1.5)
    fails(ValueError, "Invalid x: -inf (must be finite)", V.at_least, "x", -math.inf, 0)
    fails(TypeError, "x must be a real number, got bool", V.at_least, "x", False, 0)


def test_nonnegative():
    returns(0.0, V.nonnegative, "wd", 0)
    returns(0.0, V.nonnegative, "wd", -0.0)
    returns(5.0, V.nonnegative, "wd", 5.0)
    fails(ValueError, "Invalid wd: -1 (must be >= 0)", V.nonnegative, "wd", -1)
    fails(ValueError, "Invalid wd: -1e-300 (must be >= 0)", V.nonnegative, "wd", -1e-300)
    fails(ValueError, "Invalid wd: inf (must be finite)", V.nonnegative, "wd", math.inf)
    fails(ValueError, "Invalid wd: nan (must be finite)", V.nonnegative, "wd", math.nan)
    fails(TypeError, "wd must be a real number, got bool", V.nonnegative, "wd", True)


def test_at_most():
    returns(0.0, V.at_most, "b", 0, 0)
    returns(-0.8, V.at_most, "b", -0.8, 0)
    fails(ValueError, "Invalid b: 0.1 (must be <= 0)", V.at_most, "b", 0.1, 0)
    fails(ValueError, "Invalid b: 3 (must be <= 2.5)", V.at_most, "b", 3, 2.5)
    fails(ValueError, "Invalid b: -inf (must be finite)", V.at_most, "b", -math.inf, 0)
    fails(TypeError, "b must be a real number, got str", V.at_most, "b", "0", 0)


# --- in_interval, unit ------------------------------------------------------------------------

#  closed     low end  high end  brackets
CLOSEDNESS = [
    ("left", True, False, "[0, 1)"),
    ("right", False, True, "(0, 1]"),
    ("both", True, True, "[0, 1]"),
    ("neither", False, False, "(0, 1)"),
]


@pytest.mark.parametrize("closed,has_low,has_high,shown", CLOSEDNESS)
def test_in_interval_each_closedness(closed, has_low, has_high, shown):
    returns(0.5, V.in_interval, "p", 0.5, 0, 1, closed=closed)
    for end, included in [(0, has_low), (1, has_high)]:
        if included:
            returns(float(end), V.in_interval, "p", end, 0, 1, closed=closed)
        else:
            fails(ValueError, f"Invalid p: {end} (must be in {shown})", V.in_interval, "p", end,
                  0, 1, closed=closed)
    for outside in (-0.1, 1.1):
        fails(ValueError, f"Invalid p: {outside} (must be in {shown})", V.in_interval, "p",
              outside, 0, 1, closed=closed)
    fails(ValueError, "Invalid p: nan (must be finite)", V.in_interval, "p", math.nan, 0, 1,
          closed=closed)
    fails(TypeError, "p must be a real number, got bool", V.in_interval, "p", True, 0, 1,
          closed=closed)


def test_in_interval_default_is_closed_left_and_bounds_print_as_given():
    returns(0.0, V.in_interval, "p", 0, 0, 1)
    fails(ValueError, "Invalid p: 1 (must be in [0, 1))", V.in_interval, "p", 1, 0, 1)
    fails(ValueError, "Invalid p: 2.0 (must be in [0.5, 1.5))", V.in_interval, "p", 2.0, 0.5,
          1.5)
    # an infinite bound is allowed; the value itself must still be finite
    returns(1e300, V.in_interval, "p", 1e300, 0, math.inf)
    fails(ValueError, "Invalid p: inf (must be finite)", V.in_interval, "p", math.inf, 0,
          math.inf, closed="both")


def test_unit():
    for ok in (0, 0.0, 0.5, 0.999999):
        returns(float(ok), V.unit, "beta", ok)
    fails(ValueError, "Invalid beta: 1 (must be in [0, 1))", V.unit, "beta", 1)
    fails(ValueError, "Invalid beta: 1.0 (must be in [0, 1))", V.unit, "beta", 1.0)
    fails(ValueError, "Invalid beta: -0.1 (must be in [0, 1))", V.unit, "beta", -0.1)
    fails(ValueError, "Invalid beta: inf (must be finite)", V.unit, "beta", math.inf)
    fails(ValueError, "Invalid beta: nan (must be finite)", V.unit, "beta", math.nan)
    fails(TypeError, "beta must be a real number, got bool", V.unit, "beta", False)
    fails(TypeError, "beta must be a real number, got str", V.unit, "beta", "0.9")


# --- boolean ----------------------------------------------------------------------------------


def test_boolean():
    assert V.boolean("flag", True) is True
    assert V.boolean("flag", False) is False
    for value, type_name in [(1, "int"), (0, "int"), ("True", "str"), (None, "NoneType"),
                             (np.True_, "bool"), (1.0, "float")]:
        fails(TypeError, f"flag must be a bool, got {type_name}", V.boolean, "flag", value)


# --- integer ----------------------------------------------------------------------------------


def test_integer_accepts_integers_in_range_and_returns_int():
    returns(3, V.integer, "k", 3, 1)
    returns(1, V.integer, "k", 1, 1)
    returns(10, V.integer, "k", 10, 1, 10)
    returns(3, V.integer, "k", np.int64(3), 1)
    returns(0, V.integer, "k", 0, 0)
    returns(-2, V.integer, "k", -2, -5)


def test_integer_type_errors():
    for value, type_name in [(1.5, "float"), (2.0, "float"), (True, "bool"), ("3", "str"),
                             (None, "NoneType"), (np.float64(2.0), "float64")]:
        fails(TypeError, f"k must be an integer, got {type_name}", V.integer, "k", value, 1)
    fails(TypeError, "k must be an int, got float", V.integer, "k", 1.5, 1, type_noun="int")
    fails(TypeError, "k must be an int, got bool", V.integer, "k", False, 0, type_noun="int")


def test_integer_range_errors_and_bound_noun():
    fails(ValueError, "Invalid k: 0 (must be >= 1)", V.integer, "k", 0, 1)
    fails(ValueError, "Invalid k: -3 (must be >= 0)", V.integer, "k", -3, 0)
    fails(ValueError, "Invalid k: 0 (must be an integer >= 1)", V.integer, "k", 0, 1,
          bound_noun=True)
    fails(ValueError, "Invalid k: 11 (must be in [1, 10])", V.integer, "k", 11, 1, 10)
    fails(ValueError, "Invalid k: 0 (must be in [1, 10])", V.integer, "k", 0, 1, 10)
    fails(ValueError, "Invalid k: 11 (must be an integer in [1, 10])", V.integer, "k", 11, 1,
          10, bound_noun=True)
    # the type check comes first: a float out of range is still a TypeError
    fails(TypeError, "k must be an integer, got float", V.integer, "k", -1.5, 1,
          bound_noun=True)


def test_integer_allowed_style_raises_value_error_for_every_failure():
    returns(4, V.integer, "n", 4, 1, style="allowed")
    for value, shown in [(0, "0"), (1.5, "1.5"), (True, "True"), ("3", "'3'"),
                         (None, "None")]:
        fails(ValueError, f"Invalid n: {shown}; allowed: integer in [1, inf]", V.integer, "n",
              value, 1, style="allowed")
    fails(ValueError, "Invalid n: 11; allowed: integer in [1, 10]", V.integer, "n", 11, 1, 10,
          style="allowed")


# --- choice -----------------------------------------------------------------------------------


def test_choice_accepts_allowed_values_and_returns_them():
    assert V.choice("mode", "a", ("a", "b")) == "a"
    assert V.choice("mode", "b", ["a", "b"]) == "b"
    assert V.choice("mode", None, (None, "a")) is None
    value = "".join(["a", "b"])  # equal, not identical
    assert V.choice("mode", value, ("ab",)) is value
    # == comparison: 1 is True and 1.0 is 1, unless exact_type
    returns(1, V.choice, "flag", 1, (True, False))
    returns(1.0, V.choice, "n", 1.0, (1, 2))
    returns(True, V.choice, "flag", True, (True, False), exact_type=True)
    returns(2, V.choice, "n", 2, (1, 2), exact_type=True)


def test_choice_errors():
    fails(ValueError, "Invalid mode: 'c' (must be one of ('a', 'b'))", V.choice, "mode", "c",
          ("a", "b"))
    fails(ValueError, "Invalid mode: 'c' (must be one of ['a', 'b'])", V.choice, "mode", "c",
          ["a", "b"])
    fails(ValueError, "Invalid mode: 1 (must be one of ('a', 'b'))", V.choice, "mode", 1,
          ("a", "b"))
    fails(ValueError, "Invalid mode: 'c'; allowed: ('a', 'b')", V.choice, "mode", "c",
          ("a", "b"), style="allowed")
    fails(TypeError, "mode must be a string, got int", V.choice, "mode", 1, ("a", "b"),
          require_str=True)
    fails(TypeError, "mode must be a string, got NoneType", V.choice, "mode", None, ("a",),
          require_str=True)
    fails(ValueError, "Invalid mode: 'c' (must be one of ('a', 'b'))", V.choice, "mode", "c",
          ("a", "b"), require_str=True)
    fails(ValueError, "Invalid flag: 1 (must be one of (True, False))", V.choice, "flag", 1,
          (True, False), exact_type=True)
    fails(ValueError, "Invalid n: 1.0 (must be one of (1, 2))", V.choice, "n", 1.0, (1, 2),
          exact_type=True)
