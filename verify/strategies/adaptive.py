"""Hyperparameter strategies of the Adam-family `rule:fo.*` rules (merged into the fo pool).

This pool is merged over `verify.strategies.first_order.HYPER`, so a name defined here is the
one every fo rule draws. Shared names are left to that module (alpha, eps, beta2, lam, psi:
its ranges are valid for these rules), except ``beta1`` and ``beta2``:

``beta1`` is {0} or [0.5, 0.99] and ``beta2`` is [0.5, 0.999]. AdaBelief's second moment is an
EMA of (g - m)^2, and g - m = beta1 (g - m_prev) is a cancellation: it loses
log10(|g|/|g - m|) digits to the float32 rounding of g and m, which the float64 baseline does
not see (relative error ~ eps32 |g|/|g - m|). For 0 < beta1 << 1 that is ~eps32/beta1 from
the first step on (6e-5 at beta1 = 1e-3); for any beta1 it grows as m catches up with a slowly
moving g (|g - m| ~ beta1^t |g| at constant g), and with beta2 = 0 the EMA keeps only that
latest, least accurate term (a 5-step case with beta1 = 0.5, beta2 = 0 reached 1.4e-4). With
beta1 >= 0.5 and beta2 >= 0.5 the early terms, whose |g - m| >= |g|/4, dominate v over the
family's <= 5 steps and the float32 error stays below ~1e-5; beta1 = 0 is exact (m = g and
g - m = 0 in every dtype). Both ranges are valid for every fo rule that uses the names (Lion,
LAMB, Adam, ...).

The rest are names of these rules only (AdaFactor's [shazeer2018]/[torch] options, LAMB's phi,
AdaBound's bounds). ``eps1`` is drawn as a number: its default None means "the dtype's machine
epsilon" in [torch], a deliberate difference between float32 and the float64 baseline; and it
is >= 1e-16 because [torch] clamps V at eps1^2, which must not underflow in float32 (eps1 >=
~1.1e-19), else a zero gradient entry gives 0/0 there (as torch.optim.Adafactor does).
"""

from __future__ import annotations

from hypothesis import strategies as st


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


HYPER: dict[str, st.SearchStrategy] = {
    "beta1": st.one_of(st.just(0.0), _floats(0.5, 0.99)),
    "beta2": _floats(0.5, 0.999),
    # Adam without the square root, with the batch-size factor f (002 §6.1.2)
    "sqrt": st.booleans(),
    "scale_f": _floats(0.1, 10.0),
    # AdaFactor
    "denominator": st.sampled_from(["sum_c", "sum_r"]),
    "decay_rate": _floats(0.0, 1.0),
    "beta2_decay": _floats(-1.0, 0.0),
    "eps1": st.sampled_from([1e-16, 1e-12, 1e-8]),
    "eps2": _floats(1e-3, 2.0),
    "d": _floats(1.0, 4.0),
    "rho_max": _floats(1e-3, 1.0),
    # LAMB (gamma_l <= 1 <= gamma_u keeps the pair valid)
    "phi": st.sampled_from(["identity", "clip"]),
    "gamma_l": _floats(0.0, 1.0),
    "gamma_u": _floats(1.0, 10.0),
    # AdaBound
    "final_lr": _floats(1e-3, 1.0),
    "gamma": _floats(1e-4, 0.1),
}
