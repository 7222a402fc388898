"""Hyperparameter strategies of the `rule:so.*` family (see `verify.strategies.families`).

One strategy per name across the family; each rule draws the names it declares. Ranges keep
every case on the well-defined side of the branch decisions the cross-check compares between
layers (see `verify.crosscheck.settings_second_order`): initial steps alpha <= 1 and c1 < 1/2,
so that the first Armijo trial of a Newton-type step on a quadratic is accepted with margin;
LM damping mu >= 0.1, so that the accept test never compares two losses equal to rounding.

``line_search`` has three meanings in this family (newton_ls: "armijo" | "none"; cg_nonlinear:
"exact" | "wolfe"; newton_cg: a bool), so it is drawn per rule (``HYPER_BY_ID``).
``hvp`` is held at "exact": the printed finite difference (grad(x + h v) - grad(x))/h with an
unscaled h loses eps |x| / (h |v|) relative accuracy, unbounded as the CG direction v shrinks
near convergence, so its float32 run has no a-priori bound against float64; the fd branch is
cross-checked in float64 on fixed cases in the same test module.
"""

from __future__ import annotations

from hypothesis import strategies as st

from verify.strategies import positive

HYPER: dict[str, st.SearchStrategy] = {
    "curv": st.sampled_from(["user", "H"]),  # G is not defined on prob:quad
    "alpha": st.floats(min_value=0.1, max_value=1.0),
    "c1": positive(1e-5, 1e-2),
    "c2": st.floats(min_value=0.5, max_value=0.9),
    "rho": st.floats(min_value=0.3, max_value=0.8),
    "nonpd": st.sampled_from(["raise", "pinv", "damping", "abs"]),
    "delta": positive(1e-2, 1.0),
    "step": st.sampled_from(["unit", "line_search"]),
    "pinv": st.booleans(),
    "mu": positive(0.1, 10.0),
    "mu_schedule": st.sampled_from(["marquardt", "fixed"]),
    "nu": st.floats(min_value=2.0, max_value=10.0),
    "scaling": st.sampled_from(["identity", "diag"]),
    "lam": positive(1e-2, 10.0),
    "beta": st.sampled_from(["fr", "pr"]),
    "restart": st.sampled_from(["every_n", "none", "pr_plus", "every_step"]),
    "M0": st.sampled_from(["identity", "scaled"]),
    "skip": st.booleans(),
    "m": st.integers(min_value=1, max_value=5),
    "hvp": st.just("exact"),  # fd: see the module docstring
    "h": positive(1e-3, 1e-1),
    "model": st.sampled_from(["undamped", "damped"]),
    "alpha_damp": st.floats(min_value=1.1, max_value=3.0),
}

HYPER_BY_ID: dict[str, dict[str, st.SearchStrategy]] = {
    "rule:so.newton_ls": {"line_search": st.sampled_from(["armijo", "none"])},
    "rule:so.cg_nonlinear": {"line_search": st.sampled_from(["exact", "wolfe"])},
    "rule:so.newton_cg": {"line_search": st.booleans()},
}
