"""``rule:so.*`` in both layers against scipy.optimize, and the cross-check branches the generic
sweep cannot draw.

Final points: BFGS vs ``minimize(method="BFGS")``, L-BFGS vs ``minimize(method="L-BFGS-B")``
(no bounds), nonlinear CG (PR+, strong Wolfe) vs ``minimize(method="CG")``, on prob:rosenbrock,
prob:logreg (with a ridge, so the minimiser is unique) and a quadratic. Each run stops when
||g|| <= 1e-10; the line searches differ from scipy's, so only the final points are compared
(within 1e-6, well above the 1e-10 gradient tolerance's effect on these well-conditioned
minimisers).

Branches: `verify.crosscheck.rules.run` checks every ``line_search`` branch layer against
layer on fixed cases (the sweep draws them at random, `verify.strategies.second_order`), with
the settings' tolerances, plus Newton-CG's finite-difference HVP in float64, which the sweep
does not draw.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

from reference import problems as ref_problems
from reference import rules as ref_rules
from reference.oracle import Oracle
from reference.tree import flatten, unflatten
from torchimpl import problems as torch_problems
from torchimpl import rules as torch_rules
from torchimpl.oracle import Oracle as TorchOracle
from verify.crosscheck.families import setting_for
from verify.crosscheck.rules import run as crosscheck_run
from verify.strategies import build_curvature

GTOL = 1e-10


def minimise(layer: str, rule_id: str, problem, params, max_steps: int = 3000, **hyper):
    """Run ``rule_id`` of one layer on ``problem`` (reference) from ``params`` until
    ||g|| <= GTOL; the final flat iterate as NumPy."""
    if layer == "reference":
        oracle, rules = Oracle(problem), ref_rules
        x = dict(params)
    else:
        twin = torch_problems.get(problem.id)(**problem.spec())
        oracle, rules = TorchOracle(twin), torch_rules
        x = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
        problem = twin
    rule = rules.get(rule_id)
    state = rule.init(x)
    for _ in range(max_steps):
        grads = problem.grad(x)
        norm = float(np.sqrt(sum(float((v * v).sum()) for v in grads.values())))
        if norm <= GTOL:
            break
        updates, state = rule.step(grads, state, x, oracle, **hyper)
        x = {k: x[k] + updates[k] for k in x}
    else:
        raise AssertionError(f"{rule_id} ({layer}) did not reach ||g|| <= {GTOL}")
    return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in x.values()])


def scipy_minimum(problem, params, method: str) -> np.ndarray:
    def fun(theta):
        point = unflatten(theta, params)
        return problem.loss(point), flatten(problem.grad(point))

    result = scipy.optimize.minimize(fun, flatten(params), jac=True, method=method,
                                     options={"gtol": GTOL, "maxiter": 20000}
                                     if method != "L-BFGS-B" else
                                     {"gtol": GTOL, "ftol": 0.0, "maxiter": 20000})
    return result.x


def rosenbrock(dim: int = 2):
    problem = ref_problems.get("prob:rosenbrock")(dim=dim)
    start = np.array([-1.2, 1.0, 0.5, -0.5][:dim])
    return problem, {k: start.reshape(np.shape(v)) for k, v in
                     problem.init_params(np.random.default_rng(0)).items()}


def logreg():
    problem = ref_problems.get("prob:logreg").make(np.random.default_rng(1), n_samples=80,
                                                   dim=3, l2=0.1)
    return problem, problem.init_params(np.random.default_rng(2))


def quadratic():
    case = {"n": 5, "seed": 3, "kind": "pd", "lo": -1.0, "hi": 1.0, "rotated": True}
    problem = ref_problems.get("prob:quad")(A=build_curvature(case)["H"],
                                            x_star=np.linspace(-1.0, 1.0, 5))
    return problem, {"x": np.full(5, 2.0)}


CASES = [
    ("rule:so.bfgs", "BFGS", rosenbrock, {}),
    ("rule:so.bfgs", "BFGS", logreg, {}),
    ("rule:so.lbfgs", "L-BFGS-B", rosenbrock, {"m": 5}),
    ("rule:so.lbfgs", "L-BFGS-B", logreg, {}),
    ("rule:so.lbfgs", "L-BFGS-B", quadratic, {"m": 3}),
    ("rule:so.cg_nonlinear", "CG", rosenbrock,
     {"beta": "pr", "restart": "pr_plus", "line_search": "wolfe"}),
]


@pytest.mark.parametrize("layer", ["reference", "torch"])
@pytest.mark.parametrize(("rule_id", "method", "build", "hyper"), CASES,
                         ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_final_point_matches_scipy(layer, rule_id, method, build, hyper):
    problem, params = build()
    ours = minimise(layer, rule_id, problem, params, **hyper)
    theirs = scipy_minimum(problem, params, method)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


# --- cross-check of the branches the generic sweep leaves at their defaults -----------------

BRANCHES = [
    ("rule:so.newton_ls", {"line_search": "none", "alpha": 0.7, "curv": "user"}),
    ("rule:so.newton_ls", {"line_search": "armijo", "nonpd": "abs", "curv": "H"}),
    ("rule:so.cg_nonlinear", {"line_search": "wolfe", "beta": "pr", "restart": "pr_plus"}),
    ("rule:so.cg_nonlinear", {"line_search": "wolfe", "beta": "fr", "restart": "none",
                              "c2": 0.4}),
    ("rule:so.newton_cg", {"line_search": False, "lam": 0.5}),
    ("rule:so.newton_cg", {"line_search": True, "lam": 0.2, "model": "damped"}),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("rule_id", "hyper"), BRANCHES)
def test_branches_agree_between_layers(rule_id, hyper, seed, dtype):
    kind = "indefinite" if hyper.get("nonpd") == "abs" else "pd"
    spread = (-0.5, 0.5) if dtype == "float32" else (-1.0, 1.0)
    case = {"curvature": {"n": 4, "seed": seed, "kind": kind, "lo": spread[0], "hi": spread[1],
                          "rotated": True},
            "hyper": hyper, "steps": 2}
    error, _ = crosscheck_run(rule_id, ref_rules.get(rule_id), torch_rules.get(rule_id), case,
                              dtype)
    H = build_curvature(case["curvature"])["H"]
    assert error <= setting_for(rule_id).tolerance(H, hyper, dtype)


@pytest.mark.parametrize("h", [1e-2, 1e-4])
def test_newton_cg_finite_difference_hvp_agrees_in_float64(h):
    """The fd branch (held out of the sweep): on a quadratic the difference quotient is exact up
    to rounding eps |x| / (h |v|), here ~1e-12, far inside 1e-8."""
    case = {"curvature": {"n": 5, "seed": 4, "kind": "pd", "lo": -1.0, "hi": 1.0,
                          "rotated": True},
            "hyper": {"hvp": "fd", "h": h, "lam": 0.3}, "steps": 2}
    rule_id = "rule:so.newton_cg"
    error, _ = crosscheck_run(rule_id, ref_rules.get(rule_id), torch_rules.get(rule_id), case,
                              "float64")
    assert error <= 1e-8


@pytest.mark.parametrize("layer", ["reference", "torch"])
@pytest.mark.parametrize(
    ("rule_id", "hyper"),
    [
        ("rule:so.cg_nonlinear", {"line_search": "exact"}),
        ("rule:so.cg_nonlinear", {"line_search": "wolfe"}),
        ("rule:so.bfgs", {}),
        ("rule:so.lbfgs", {}),
    ],
)
def test_one_dimensional_quadratic_is_solved_in_a_few_steps(layer, rule_id, hyper):
    """The 1-D case the cross-check leaves out (`verify.crosscheck.settings_second_order`):
    an exact line search, or the first secant pair (M = s/y = 1/lam), solves a 1-D quadratic,
    so both layers stop at x* within a handful of steps."""
    problem = ref_problems.get("prob:quad")(A=np.array([[3.0]]), x_star=np.array([1.5]))
    x = minimise(layer, rule_id, problem, {"x": np.array([-2.0])}, max_steps=6, **hyper)
    np.testing.assert_allclose(x, [1.5], rtol=1e-10)
