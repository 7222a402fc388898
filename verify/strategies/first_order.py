"""Hyperparameter strategies of the `rule:fo.*` family (see `verify.strategies.families`).

One strategy per name across the family (the Adam-family pool in `adaptive` is merged over
it): a name with two meanings (``alpha`` is a learning rate in ``fo.sgd`` and a momentum in
``fo.heavy_ball[survey]``) draws from a range valid for both. Matrix- or tree-valued options
(``P``, ``noise_cov``) stay at their default None: their shape depends on the case.
"""

from __future__ import annotations

from hypothesis import strategies as st


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


HYPER: dict[str, st.SearchStrategy] = {
    # learning rates, and momenta in [0, 1) where a rule uses the symbol for one
    "alpha": _floats(1e-3, 0.95),
    "eps": _floats(1e-8, 0.5),
    "eta": _floats(1e-4, 0.5),
    # momentum / averaging coefficients in [0, 1)
    "beta": _floats(0.0, 0.99),
    "beta1": _floats(0.0, 0.99),
    "beta2": _floats(0.0, 0.999),
    "mu": _floats(0.0, 0.99),
    "momentum_schedule": st.sampled_from(["constant", "linear"]),
    "beta_start": _floats(0.0, 0.9),
    "ramp_steps": st.integers(min_value=1, max_value=10),
    # weight decay, temperature, trust coefficients
    "lam": _floats(0.0, 0.1),
    "beta_wd": _floats(0.0, 0.1),
    "eta_trust": _floats(1e-3, 1.0),
    "T_eff": _floats(0.0, 1.0),
    "eps_inside": st.booleans(),
    "P": st.just(None),
    "noise_cov": st.just(None),
    # delta-bar-delta gains
    "kappa": _floats(0.0, 0.2),
    "psi": _floats(0.5, 1.0),
    "gamma_min": _floats(0.01, 0.5),
    "gamma_max": _floats(2.0, 20.0),
}
