"""Hyperparameter strategies of the `rule:zo.*` family (see `verify.strategies.families`).

Difference steps ``h`` (and MeZO's ``eps``) are drawn from [1e-2, 1]: the same strategies serve
the float32 cross-check, where a difference quotient carries a rounding error of about
eps32 |L| / h (see `verify.crosscheck.settings_zeroth_order`). On the quadratics of the
cross-check a large step only adds a deterministic bias that both layers share. Step sizes are
small (alpha <= 1e-2, with eigenvalues <= 10): a few steps stay near the start, so the
iterates and losses keep the magnitude the tolerance assumes.
"""

from __future__ import annotations

from hypothesis import strategies as st

from contract.specs.zeroth_order import U_DIST
from verify.strategies import positive

STEP = positive(1e-2, 1.0)

HYPER: dict[str, st.SearchStrategy] = {
    "alpha": positive(1e-4, 1e-2),
    "estimator": st.sampled_from(["direction", "coord", "two_point"]),
    "h": STEP,
    "eps": STEP,
    "u_dist": st.sampled_from(list(U_DIST)),
    "n_dirs": st.integers(min_value=1, max_value=3),
    "central": st.booleans(),
    "beta1": st.floats(min_value=0.0, max_value=0.99),
    "beta2": st.floats(min_value=0.9, max_value=0.9999),
    "delta": positive(1e-8, 1e-2),
    "common_random_directions": st.booleans(),
    "curvature_guard": st.sampled_from(["skip", "damp"]),
}
