"""Line searches shared by the `rule:so.*` rules (INVENTORY §2.4): backtracking Armijo and a
strong-Wolfe search (bracketing + zoom, after Nocedal & Wright 2006, Alg. 3.5 and 3.6).

Both work on the one-dimensional restriction phi(a) = f(x + a d) of the loss along a direction
d with phi'(0) = g^T d < 0, given as Python callables returning floats, so the rules bind them
to ``oracle.loss`` and ``oracle.grad``. The search itself is scalar Python arithmetic, shared
by both layers (one definition): each layer evaluates phi in its own dtype and hands over
``float(...)`` values, so in float32 a decision that is a near-tie in float64 (an accept or
reject at the edge of a Wolfe condition) can go the other way. Everything is deterministic
(no random restarts).

Conventions (documented, tested):

- ``armijo``: a = a0, a0 rho, a0 rho^2, ... until phi(a) <= phi(0) + c1 a phi'(0), at most
  ``max_iter`` trials; if none is accepted the step is 0 (no move), never an increase.
- ``strong_wolfe``: trial steps a0, 2 a0, 4 a0, ... (at most ``max_iter``) until a bracket of
  an acceptable step is found, then ``zoom`` shrinks it with the minimiser of the cubic that
  interpolates phi and phi' at the bracket ends, safeguarded into the middle 80% of the
  bracket (bisection when the cubic has no minimiser there). A step is returned when it
  satisfies both strong-Wolfe conditions
  phi(a) <= phi(0) + c1 a phi'(0) and |phi'(a)| <= c2 |phi'(0)|.
  If ``max_iter`` evaluations pass without one, the evaluated step with the smallest phi that
  satisfies the sufficient-decrease condition is returned (``converged=False``), else 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

ARMIJO_MAX_ITER = 60
WOLFE_MAX_ITER = 30
WOLFE_EXPAND = 2.0
ZOOM_GUARD = 0.1


class Step(NamedTuple):
    """The accepted step ``alpha``, whether the conditions held, and the number of trials."""

    alpha: float
    converged: bool
    evaluations: int


def _descent(dphi0: float) -> None:
    if not math.isfinite(dphi0):
        raise ValueError(f"line search: phi'(0) = {dphi0} is not finite")
    if not dphi0 < 0:
        raise ValueError(
            f"line search: the direction is not a descent direction (g^T d = {dphi0:.6e} >= 0)"
        )


def armijo(
    phi: Callable[[float], float],
    phi0: float,
    dphi0: float,
    alpha0: float = 1.0,
    c1: float = 1e-4,
    rho: float = 0.5,
    max_iter: int = ARMIJO_MAX_ITER,
) -> Step:
    """Backtracking until sufficient decrease (N&W Alg. 3.1); 0 if no trial is accepted."""
    _descent(dphi0)
    alpha = alpha0
    for k in range(1, max_iter + 1):
        value = phi(alpha)
        if value <= phi0 + c1 * alpha * dphi0:  # NaN/inf is rejected
            return Step(alpha, True, k)
        alpha *= rho
    return Step(0.0, False, max_iter)


def cubic_minimizer(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float:
    """The minimiser of the cubic through (a, fa, da) and (b, fb, db) (N&W Eq. (3.59)),
    NaN when it has none (the rule then bisects)."""
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if not radicand >= 0 or a == b:
        return math.nan
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denominator = db - da + 2.0 * d2
    if denominator == 0:
        return math.nan
    return b - (b - a) * (db + d2 - d1) / denominator


def strong_wolfe(
    phi: Callable[[float], tuple[float, float]],
    phi0: float,
    dphi0: float,
    alpha0: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_iter: int = WOLFE_MAX_ITER,
) -> Step:
    """A step satisfying the strong-Wolfe conditions; ``phi(a) -> (phi(a), phi'(a))``."""
    _descent(dphi0)
    counter = {"n": 0, "best": (math.inf, 0.0)}

    def evaluate(alpha: float) -> tuple[float, float]:
        value, slope = phi(alpha)
        counter["n"] += 1
        if value <= phi0 + c1 * alpha * dphi0 and value < counter["best"][0]:
            counter["best"] = (value, alpha)
        return value, slope

    def fallback() -> Step:
        return Step(counter["best"][1], False, counter["n"])

    def zoom(lo, f_lo, d_lo, hi, f_hi, d_hi) -> Step:  # N&W Alg. 3.6
        while counter["n"] < max_iter:
            width = hi - lo
            alpha = cubic_minimizer(lo, f_lo, d_lo, hi, f_hi, d_hi)
            low, high = min(lo, hi), max(lo, hi)
            guard = ZOOM_GUARD * abs(width)
            if not low + guard <= alpha <= high - guard:
                alpha = lo + 0.5 * width
            if alpha in (lo, hi):  # the bracket has collapsed to rounding
                break
            value, slope = evaluate(alpha)
            if value > phi0 + c1 * alpha * dphi0 or value >= f_lo:
                hi, f_hi, d_hi = alpha, value, slope
                continue
            if abs(slope) <= -c2 * dphi0:
                return Step(alpha, True, counter["n"])
            if slope * width >= 0:
                hi, f_hi, d_hi = lo, f_lo, d_lo
            lo, f_lo, d_lo = alpha, value, slope
        return fallback()

    prev, f_prev, d_prev = 0.0, phi0, dphi0
    alpha = alpha0
    while counter["n"] < max_iter:  # N&W Alg. 3.5
        value, slope = evaluate(alpha)
        if not math.isfinite(value) or value > phi0 + c1 * alpha * dphi0 or (
            counter["n"] > 1 and value >= f_prev
        ):
            if not math.isfinite(value) or not math.isfinite(slope):
                value, slope = math.inf, math.nan  # bisect towards the finite end
            return zoom(prev, f_prev, d_prev, alpha, value, slope)
        if abs(slope) <= -c2 * dphi0:
            return Step(alpha, True, counter["n"])
        if slope >= 0:
            return zoom(alpha, value, slope, prev, f_prev, d_prev)
        prev, f_prev, d_prev = alpha, value, slope
        alpha = WOLFE_EXPAND * alpha
    return fallback()
