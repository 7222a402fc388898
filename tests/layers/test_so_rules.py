"""The classical second-order rules ``rule:so.*`` of both layers against their oracles.

INVENTORY §2.4: dense solves (np.linalg.solve, lstsq, pinv), the reductions between rules (LM
with mu = 0 is Gauss-Newton, SOFO's large-lam limit is GD, nonlinear CG with the exact line
search is linear CG), the CG and BFGS identities (conjugacy, secant equation, Eq. (15),
finite termination with M_n = A^-1), the two-loop recursion against the dense inverse, the
line searches' conditions (`contract.linesearch`, shared: run once), and the error paths.
Each check runs on the reference and on torch (float64; expected values are NumPy closed forms
or the layer's own helpers, never the other layer). Solves, CG and convergence on quadratics
also run in torch float32 (normwise 1e-3); torch only: torch.optim.LBFGS on Rosenbrock. The
scipy final-point oracles are in ``tests/verify/test_scipy_equivalence.py``; the layer-vs-layer
agreement is `python -m verify crosscheck --ids 'rule:so.*'`.

Matrices are Q diag(lam) Q^T with Q Haar and lam in [0.5, 50] (kappa <= 100), so float64
comparisons hold at rtol 1e-10; iterative solvers are compared with a residual tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.rules
import torchimpl.rules
from contract import linesearch

RTOL, ATOL = 1e-10, 1e-12
CASES = st.tuples(st.integers(min_value=1, max_value=7), st.integers(0, 2**32 - 1))
TOL = {"float64": 1e-10, "float32": 1e-4}  # normwise, times 10 (the float32 runs)
SO_IDS = sorted(set(reference.rules.ids("rule:so.*")) | set(torchimpl.rules.ids("rule:so.*")))


def so(layer):
    return layer.module("rules.second_order")


def qn(layer):
    return layer.module("rules.quasi_newton")


def spd(n: int, rng: np.random.Generator, lo: float = 0.5, hi: float = 50.0) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q = Q * np.sign(np.diag(R))
    lam = np.sort(rng.uniform(lo, hi, size=n))
    A = (Q * lam) @ Q.T
    return 0.5 * (A + A.T)


def quad(layer, case, lam=None, hi: float = 50.0):
    """A quadratic prob:quad with an SPD (or given-spectrum) A, its oracle (user curvature A),
    a start in the layer, and A, x* as NumPy."""
    n, seed = case
    rng = np.random.default_rng(seed)
    if lam is None:
        A = spd(n, rng, 0.5, hi)
    else:
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        A = (Q * np.asarray(lam)) @ Q.T
    A = 0.5 * (A + A.T)
    x_star = rng.standard_normal(n)
    problem = layer.quadratic(A, x_star)
    oracle = layer.oracle(problem, user_curvature=layer.to_layer(A))
    return problem, oracle, {"x": layer.to_layer(rng.standard_normal(n))}, A, x_star


def grad(layer, problem, params) -> np.ndarray:
    """The flat gradient of ``problem`` at ``params`` (layer trees), as NumPy."""
    return layer.to_numpy(layer.tree.flatten(problem.grad(params)))


def flat(layer, tree) -> np.ndarray:
    return layer.to_numpy(layer.tree.flatten(tree))


def run(layer, rule_id, problem, oracle, params, steps, **hyper):
    """``steps`` steps of ``rule_id``: the final params and state and the trace of (params,
    state), all layer objects."""
    rule = layer.rules.get(rule_id)
    state = rule.init(params)
    trace = [(params, state)]
    for _ in range(steps):
        updates, state = rule.step(problem.grad(params), state, params, oracle, **hyper)
        params = {k: params[k] + updates[k] for k in params}
        trace.append((params, state))
    return params, state, trace


def norm_close(a, b, dtype: str) -> bool:
    scale = max(float(np.linalg.norm(b)), 1e-12)
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b))) <= TOL[dtype] * 10 * scale


class Rosenbrock:
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (INVENTORY prob:rosenbrock) with its
    gradient in closed form, in the layer's array type (the loss differentiates in torch)."""

    id = "test:rosenbrock"

    def __init__(self, layer) -> None:
        self.xp = layer.xp

    def loss(self, params, batch=None):
        x = params["x"]
        return self.xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def grad(self, params, batch=None):
        x = params["x"]
        g = self.xp.zeros_like(x)
        inner = x[1:] - x[:-1] ** 2
        g[:-1] = -400.0 * x[:-1] * inner - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * inner
        return {"x": g}


# --- line searches (contract.linesearch: shared by both layers, run once) -------------------


@given(st.floats(0.1, 10.0), st.floats(-5.0, 5.0), st.floats(1e-5, 0.4), st.floats(0.45, 0.95))
def test_strong_wolfe_conditions_on_a_parabola(curv, slope, c1, c2):
    dphi0 = -abs(slope) - 0.1
    phi = lambda a: (0.5 * curv * a * a + dphi0 * a, curv * a + dphi0)  # noqa: E731
    step = linesearch.strong_wolfe(phi, 0.0, dphi0, 1.0, c1, c2)
    value, derivative = phi(step.alpha)
    assert step.converged
    assert value <= c1 * step.alpha * dphi0
    assert abs(derivative) <= c2 * abs(dphi0)


def test_strong_wolfe_on_a_quartic_and_the_cubic_minimizer():
    phi = lambda a: ((a - 3.0) ** 4 - 81.0, 4.0 * (a - 3.0) ** 3)  # noqa: E731
    step = linesearch.strong_wolfe(phi, -0.0, -108.0, 1.0, 1e-4, 0.1)
    assert step.converged and abs(phi(step.alpha)[1]) <= 0.1 * 108.0
    # the cubic through two points of a cubic is the cubic itself: its minimiser is exact
    f = lambda a: (a**3 - 3 * a, 3 * a**2 - 3)  # noqa: E731
    assert linesearch.cubic_minimizer(0.0, *f(0.0), 2.0, *f(2.0)) == pytest.approx(1.0)


def test_armijo_backtracks_to_the_first_sufficient_decrease():
    phi = lambda a: (a - 0.1) ** 2 - 0.01  # noqa: E731  phi(0) = 0, phi'(0) = -0.2
    step = linesearch.armijo(phi, 0.0, -0.2, 1.0, 1e-4, 0.5)
    # 1, 0.5, 0.25 fail (phi >= 0 > c1 a phi'(0)), 0.125 passes
    assert step.alpha == 0.125 and step.evaluations == 4
    assert linesearch.armijo(lambda a: 1.0, 0.0, -1.0, 1.0, 1e-4, 0.5, max_iter=5).alpha == 0.0
    with pytest.raises(ValueError, match="descent"):
        linesearch.armijo(phi, 0.0, 0.2)


# --- Newton with globalization --------------------------------------------------------------


@given(CASES, st.floats(0.1, 1.0))
def test_newton_ls_is_the_newton_solve(layer, case, alpha):
    problem, oracle, x, A, _ = quad(layer, case)
    d = -np.linalg.solve(A, grad(layer, problem, x))
    for line_search in ("none", "armijo"):
        u, _ = layer.rules.get("rule:so.newton_ls").step(
            problem.grad(x), {}, x, oracle, alpha=alpha, line_search=line_search, curv="user")
        np.testing.assert_allclose(layer.to_numpy(u["x"]), alpha * d, rtol=RTOL, atol=ATOL)


def test_newton_ls_nonpd_policies(layer):
    lam = np.array([-2.0, 0.5, 3.0])
    problem, oracle, x, A, _ = quad(layer, (3, 7), lam)
    g = grad(layer, problem, x)
    w, Q = np.linalg.eigh(A)
    g_hat = Q.T @ g
    rule = layer.rules.get("rule:so.newton_ls")
    with pytest.raises(ValueError, match="positive definite"):
        rule.step(problem.grad(x), {}, x, oracle, nonpd="raise")
    expected = {
        "abs": -Q @ (g_hat / np.abs(w)),
        "pinv": -Q @ np.where(w > 0, g_hat / np.where(w > 0, w, 1.0), 0.0),
        "damping": -np.linalg.solve(A + (0.1 - w[0]) * np.eye(3), g),
    }
    for nonpd, d in expected.items():
        u, _ = rule.step(problem.grad(x), {}, x, oracle, nonpd=nonpd, delta=0.1,
                         line_search="none")
        np.testing.assert_allclose(layer.to_numpy(u["x"]), d, rtol=RTOL, atol=ATOL)
        # each is a descent direction and the Armijo search accepts the full step
        u_ls, _ = rule.step(problem.grad(x), {}, x, oracle, nonpd=nonpd, delta=0.1)
        np.testing.assert_allclose(layer.to_numpy(u_ls["x"]), d, rtol=RTOL, atol=ATOL)
    # damping leaves a matrix with lam_min >= delta untouched
    problem, oracle, x, A, _ = quad(layer, (4, 3))
    u, _ = rule.step(problem.grad(x), {}, x, oracle, nonpd="damping", delta=1e-3)
    np.testing.assert_allclose(layer.to_numpy(u["x"]),
                               -np.linalg.solve(A, grad(layer, problem, x)), rtol=RTOL)


def logreg(layer):
    """prob:logreg (60 samples, 3 features, bias): features N(0, I), labels drawn from a
    logistic model, as NumPy data given to the layer's class."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    logits = X @ rng.standard_normal(3) + rng.standard_normal()
    y = (rng.random(60) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64)
    return layer.problems.get("prob:logreg")(X, y, [3, 1], "identity", "bce", True, "mean", 0.0,
                                            id="prob:logreg")


def test_newton_ls_armijo_decreases_logistic_loss(layer):
    problem = logreg(layer)
    oracle = layer.Oracle(problem)
    x = {k: 3.0 * v for k, v in layer.init_params(problem, 1).items()}
    losses = [float(problem.loss(x))]
    rule = layer.rules.get("rule:so.newton_ls")
    for _ in range(8):
        u, _ = rule.step(problem.grad(x), {}, x, oracle)
        x = {k: x[k] + u[k] for k in x}
        losses.append(float(problem.loss(x)))
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))
    assert np.linalg.norm(grad(layer, problem, x)) < 1e-8


# --- Gauss-Newton, LM, SOFO -----------------------------------------------------------------


def lstsq(layer, design, seed=0):
    """prob:lstsq (20 samples, 5 features, no bias): y = X w + 0.1 noise, X Gaussian of full
    rank or of rank 2; the problem, its oracle and (X, y) as NumPy."""
    rng = np.random.default_rng(seed)
    if design == "full_rank":
        X = rng.standard_normal((20, 5))
    else:
        X = rng.standard_normal((20, 2)) @ rng.standard_normal((2, 5)) / np.sqrt(2)
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(20)
    problem = layer.problems.get("prob:lstsq")(X, y[:, None], [5, 1], "identity", "mse_half",
                                              False, "mean", id="prob:lstsq")
    return problem, layer.Oracle(problem), X, y


@pytest.mark.parametrize("step", ["unit", "line_search"])
def test_gauss_newton_one_step_reaches_lstsq(layer, step):
    problem, oracle, X, y = lstsq(layer, "full_rank")
    params = layer.init_params(problem, 3)
    u, _ = layer.rules.get("rule:so.gauss_newton").step(problem.grad(params), {}, params, oracle,
                                                       step=step)
    final = flat(layer, {k: params[k] + u[k] for k in params})
    np.testing.assert_allclose(final, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-9)


def test_gauss_newton_pinv_on_a_rank_deficient_design(layer):
    problem, oracle, X, y = lstsq(layer, "rank_deficient")
    params = {k: 0.0 * v for k, v in layer.init_params(problem, 0).items()}
    rule = layer.rules.get("rule:so.gauss_newton")
    with pytest.raises(ValueError, match="singular"):
        rule.step(problem.grad(params), {}, params, oracle)
    u, _ = rule.step(problem.grad(params), {}, params, oracle, pinv=True)
    # from 0: the minimum-norm solution
    np.testing.assert_allclose(flat(layer, u), np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)


def test_lm_reductions(layer):
    problem, oracle, _, _ = lstsq(layer, "full_rank")
    params = layer.init_params(problem, 4)
    grads = problem.grad(params)
    g = flat(layer, grads)
    G = layer.to_numpy(problem.ggn(params))
    lm, gn = layer.rules.get("rule:so.lm"), layer.rules.get("rule:so.gauss_newton")
    u_gn, _ = gn.step(grads, {}, params, oracle)
    for schedule in ("fixed", "marquardt"):
        u_lm, state = lm.step(grads, lm.init(params), params, oracle, mu=0.0,
                              mu_schedule=schedule)
        for k in params:
            np.testing.assert_allclose(layer.to_numpy(u_lm[k]), layer.to_numpy(u_gn[k]),
                                       rtol=RTOL, atol=ATOL)
        assert state["t"] == 1 and float(state["mu"]) == 0.0
    # mu Delta w -> grad E as mu -> infinity: mu (G + mu I)^-1 g = g - G g / mu + O(mu^-2)
    mu = 1e8
    u, _ = lm.step(grads, lm.init(params), params, oracle, mu=mu, mu_schedule="fixed")
    np.testing.assert_allclose(-mu * flat(layer, u), g, rtol=10 * np.linalg.norm(G, 2) / mu)
    # diag scaling (Marquardt 1963): (G + mu diag(G))^-1 g
    u, _ = lm.step(grads, lm.init(params), params, oracle, mu=0.3, scaling="diag",
                   mu_schedule="fixed")
    expected = -np.linalg.solve(G + 0.3 * np.diag(np.diag(G)), g)
    np.testing.assert_allclose(flat(layer, u), expected, rtol=RTOL)


def test_lm_marquardt_accepts_and_rejects(layer):
    problem, _, x, A, _ = quad(layer, (4, 11))
    lm = layer.rules.get("rule:so.lm")
    # a curvature 100 times too small overshoots: E grows, the step is rejected
    bad = layer.Oracle(problem, user_curvature=layer.to_layer(0.01 * A))
    u, state = lm.step(problem.grad(x), lm.init(x), x, bad, mu=1e-3, nu=4.0, curv="user")
    assert np.all(layer.to_numpy(u["x"]) == 0.0) and float(state["mu"]) == pytest.approx(4e-3)
    assert state["t"] == 1
    # the exact curvature: accepted, mu <- mu / nu, the next step starts from the state's mu
    good = layer.Oracle(problem, user_curvature=layer.to_layer(A))
    g = grad(layer, problem, x)
    u, state = lm.step(problem.grad(x), state, x, good, mu=1e-3, nu=4.0, curv="user")
    np.testing.assert_allclose(layer.to_numpy(u["x"]),
                               -np.linalg.solve(A + 4e-3 * np.eye(4), g), rtol=RTOL)
    assert float(state["mu"]) == pytest.approx(1e-3)
    assert float(problem.loss({"x": x["x"] + u["x"]})) < float(problem.loss(x))


def test_sofo_limits_and_linear_model(layer):
    problem, oracle, _, _ = lstsq(layer, "full_rank", seed=2)
    params = layer.init_params(problem, 5)
    grads = problem.grad(params)
    g = flat(layer, grads)
    rule = layer.rules.get("rule:so.sofo")
    # lam -> infinity with alpha/lam = 0.3 fixed: GD with learning rate 0.3
    lam = 1e9
    u, _ = rule.step(grads, {}, params, oracle, alpha=0.3 * lam, lam=lam)
    np.testing.assert_allclose(flat(layer, u), -0.3 * g, rtol=1e-7)
    # linear in theta: G = H, SOFO is damped Newton -alpha (H + lam I)^-1 g
    H = layer.to_numpy(problem.hessian(params))
    u_G, _ = rule.step(grads, {}, params, oracle, alpha=0.7, lam=0.2)
    u_H, _ = rule.step(grads, {}, params, oracle, alpha=0.7, lam=0.2, curv="H")
    expected = -0.7 * np.linalg.solve(H + 0.2 * np.eye(len(g)), g)
    np.testing.assert_allclose(flat(layer, u_G), expected, rtol=RTOL)
    np.testing.assert_allclose(flat(layer, u_H), expected, rtol=RTOL)


@given(case=st.tuples(st.integers(min_value=1, max_value=6), st.integers(0, 2**32 - 1)))
def test_newton_ls_and_sofo_are_solves(typed_layer, case):
    """On quadratics with lam in [0.5, 5], in float64 and torch float32 (normwise)."""
    layer = typed_layer
    problem, oracle, x, A, _ = quad(layer, case, hi=5.0)
    g = grad(layer, problem, x)
    u, _ = layer.rules.get("rule:so.newton_ls").step(problem.grad(x), {}, x, oracle, curv="user")
    assert norm_close(layer.to_numpy(u["x"]), -np.linalg.solve(A, g), layer.dtype)
    u, _ = layer.rules.get("rule:so.sofo").step(problem.grad(x), {}, x, oracle, alpha=0.5,
                                               lam=0.3, curv="H")
    expected = -0.5 * np.linalg.solve(A + 0.3 * np.eye(case[0]), g)
    assert norm_close(layer.to_numpy(u["x"]), expected, layer.dtype)
    # SOFO's limit lam -> infinity, alpha/lam = 0.2: GD with learning rate 0.2
    u, _ = layer.rules.get("rule:so.sofo").step(problem.grad(x), {}, x, oracle, alpha=0.2e9,
                                               lam=1e9, curv="user")
    assert np.linalg.norm(layer.to_numpy(u["x"]) + 0.2 * g) <= 1e-6 * np.linalg.norm(g)


# --- conjugate gradients ----------------------------------------------------------------------


@given(CASES)
def test_cg_linear_finite_termination_conjugacy_orthogonality(layer, case):
    problem, oracle, x, A, x_star = quad(layer, case)
    n = case[0]
    final, _, trace = run(layer, "rule:so.cg_linear", problem, oracle, x, n)
    b = A @ x_star
    assert np.linalg.norm(A @ layer.to_numpy(final["x"]) - b) <= 1e-8 * max(np.linalg.norm(b),
                                                                           1.0)
    P = np.array([layer.to_numpy(s["p"]) for _, s in trace[1:]])
    R = np.array([layer.to_numpy(s["r"]) for _, s in trace[1:]])
    conj = P @ A @ P.T
    scale = np.sqrt(np.outer(np.diag(conj), np.diag(conj)))
    off = ~np.eye(n, dtype=bool)
    # In floating point a direction built from a residual r_j carries the rounding of the
    # first residual, eps ||r_0||, so its relative loss of conjugacy and orthogonality is
    # about eps kappa(A) ||r_0|| / ||r_j||: large only for the last, tiny residuals.
    size = np.linalg.norm(R, axis=1)
    drift = 10 * n * np.finfo(np.float64).eps * np.linalg.cond(A) * size[0] / np.minimum.outer(
        size, size)
    assert np.all(np.abs(conj[off]) <= np.maximum(1e-12, drift[off]) * scale[off])
    gram = R @ R.T
    norms = np.sqrt(np.outer(np.diag(gram), np.diag(gram)))
    assert np.all(np.abs(gram[off]) <= np.maximum(1e-12, drift[off]) * norms[off])


def test_cg_linear_needs_spd(layer):
    problem, oracle, x, A, x_star = quad(layer, (2, 0), [-1.0, 2.0])
    rule = layer.rules.get("rule:so.cg_linear")
    with pytest.raises(ValueError, match="SPD"):
        # a gradient along the negative eigenvector: p^T A p < 0
        w, Q = np.linalg.eigh(A)
        x = {"x": layer.to_layer(x_star + Q[:, 0])}
        rule.step(problem.grad(x), rule.init(x), x, oracle)


@given(CASES)
def test_cg_nonlinear_exact_reproduces_linear_cg(layer, case):
    problem, oracle, x, A, _ = quad(layer, case)
    n = case[0]
    linear, _, _ = run(layer, "rule:so.cg_linear", problem, oracle, x, n)
    linear = layer.to_numpy(linear["x"])
    for beta in ("fr", "pr"):
        final, _, trace = run(layer, "rule:so.cg_nonlinear", problem, oracle, x, n, beta=beta,
                              restart="none")
        np.testing.assert_allclose(layer.to_numpy(final["x"]), linear, rtol=1e-8, atol=1e-10)
    # identical beta along the trajectory: the gradients are mutually orthogonal. In floating
    # point pr - fr = -g1^T g0/||g0||^2, and the computed g1 is orthogonal to g0 only up to the
    # rounding the iterates carry: an absolute error of about eps kappa(A) ||g_start|| per step
    # (n steps at most), whatever the size of g1 itself.
    g_start = np.linalg.norm(grad(layer, problem, x))
    bound = 10 * n * np.finfo(np.float64).eps * np.linalg.cond(A) * g_start
    for (_, s0), (_, s1) in zip(trace[1:], trace[2:], strict=False):
        g0, g1 = s0["g"], s1["g"]
        fr, pr = so(layer).cg_beta(g1, g0, "fr"), so(layer).cg_beta(g1, g0, "pr")
        assert abs(fr - pr) <= bound / np.linalg.norm(layer.to_numpy(g0))
    # the printed sign with the exact line search gives the same iterates (a < 0)
    printed, _, _ = run(layer, "rule:so.cg_nonlinear[as_printed]", problem, oracle, x, n,
                        restart="none")
    np.testing.assert_allclose(layer.to_numpy(printed["x"]), linear, rtol=1e-8, atol=1e-10)


def test_cg_linear_and_nonlinear_exact(typed_layer):
    """Five steps on a 5-dimensional quadratic (lam geometric in [0.5, 5]), in float64 and
    torch float32: the linear-CG residual and the nonlinear CG variants' final points."""
    layer = typed_layer
    problem, oracle, x, A, x_star = quad(layer, (5, 3), lam=np.geomspace(0.5, 5.0, 5))
    final, _, _ = run(layer, "rule:so.cg_linear", problem, oracle, x, 5)
    final = layer.to_numpy(final["x"])
    b = A @ x_star
    assert np.linalg.norm(A @ final - b) <= 30 * TOL[layer.dtype] * np.linalg.norm(b)
    for beta in ("fr", "pr"):
        nl, _, _ = run(layer, "rule:so.cg_nonlinear", problem, oracle, x, 5, beta=beta,
                       restart="none")
        assert norm_close(layer.to_numpy(nl["x"]), final, layer.dtype)
    printed, _, _ = run(layer, "rule:so.cg_nonlinear[as_printed]", problem, oracle, x, 5,
                        restart="none")
    assert norm_close(layer.to_numpy(printed["x"]), final, layer.dtype)


def test_cg_nonlinear_printed_sign_is_ascent_under_wolfe(layer):
    problem, oracle, x, _, _ = quad(layer, (3, 1))
    rule = layer.rules.get("rule:so.cg_nonlinear[as_printed]")
    with pytest.raises(ValueError, match="descent"):
        rule.step(problem.grad(x), rule.init(x), x, oracle, line_search="wolfe")


def test_cg_nonlinear_every_step_is_steepest_descent_with_exact_search(layer):
    problem, oracle, x, A, _ = quad(layer, (4, 2))
    _, _, trace = run(layer, "rule:so.cg_nonlinear", problem, oracle, x, 4, restart="every_step")
    for (x0, _), (x1, _) in zip(trace, trace[1:], strict=False):
        g = grad(layer, problem, x0)
        eta = g @ g / (g @ A @ g)
        np.testing.assert_allclose(layer.to_numpy(x1["x"]), layer.to_numpy(x0["x"]) - eta * g,
                                   rtol=RTOL, atol=ATOL)


def test_cg_nonlinear_wolfe_on_rosenbrock_converges(layer):
    problem = Rosenbrock(layer)
    x, _, _ = run(layer, "rule:so.cg_nonlinear", problem, layer.Oracle(problem),
                  {"x": layer.to_layer([-1.2, 1.0])}, 400, beta="pr", restart="pr_plus",
                  line_search="wolfe")
    np.testing.assert_allclose(layer.to_numpy(x["x"]), [1.0, 1.0], atol=1e-6)


def run_until(layer, rule_id, problem, oracle, params, max_steps, gtol, **hyper):
    """Steps until ||g|| <= gtol (or max_steps); the iterates' losses."""
    rule = layer.rules.get(rule_id)
    state = rule.init(params)
    losses = [float(problem.loss(params))]
    for _ in range(max_steps):
        grads = problem.grad(params)
        if np.linalg.norm(flat(layer, grads)) <= gtol:
            break
        updates, state = rule.step(grads, state, params, oracle, **hyper)
        params = {k: params[k] + updates[k] for k in params}
        losses.append(float(problem.loss(params)))
    return params, losses


def test_cg_nonlinear_and_lbfgs_on_rosenbrock_vs_torch_lbfgs(torch_layer):
    """Final points only (loose): torch.optim.LBFGS uses its own strong-Wolfe search and first
    step, so the trajectories differ step by step; all reach the minimiser (1, ..., 1)."""
    problem = Rosenbrock(torch_layer)
    oracle = torch_layer.Oracle(problem)
    x0 = torch.tensor([-1.2, 1.0, 0.5], dtype=torch.float64)
    ones = torch.ones(3, dtype=torch.float64)
    cg, _ = run_until(torch_layer, "rule:so.cg_nonlinear", problem, oracle, {"x": x0}, 2000,
                      1e-10, beta="pr", restart="pr_plus", line_search="wolfe")
    ours, losses = run_until(torch_layer, "rule:so.lbfgs", problem, oracle, {"x": x0}, 500,
                             1e-10, m=5)
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))
    w = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=500, history_size=5, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = problem.loss({"x": w})
        loss.backward()
        return loss

    opt.step(closure)
    for point in (cg["x"], ours["x"], w.detach()):
        assert float((point - ones).abs().max()) <= 1e-6


# --- BFGS -------------------------------------------------------------------------------------


def secant_pair(n, rng):
    s = rng.standard_normal(n)
    y = spd(n, rng) @ s  # s^T y > 0
    return s, y


def bfgs_update(M, s, y) -> np.ndarray:
    """Eq. (15) in NumPy: (I - rho s y^T) M (I - rho y s^T) + rho s s^T, rho = 1/(y^T s)."""
    rho = 1.0 / (y @ s)
    V = np.eye(len(s)) - rho * np.outer(y, s)
    return V.T @ M @ V + rho * np.outer(s, s)


def dense_inverse(S, Y, gamma) -> np.ndarray:
    """The L-BFGS inverse-Hessian approximation: Eq. (15) applied pair by pair to gamma I."""
    H = gamma * np.eye(S.shape[1])
    for s, y in zip(S, Y, strict=True):
        H = bfgs_update(H, s, y)
    return H


@given(CASES)
def test_bfgs_update_is_eq15_secant_symmetric_pd(layer, case):
    n, seed = case
    rng = np.random.default_rng(seed)
    M = spd(n, rng, 0.5, 5.0)
    s, y = secant_pair(n, rng)
    T = layer.to_layer
    new = layer.to_numpy(qn(layer).bfgs_update(T(M), T(s), T(y)))
    np.testing.assert_allclose(new, bfgs_update(M, s, y), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(new @ y, s, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(new, new.T)
    assert np.linalg.eigvalsh(new)[0] > 0


def test_bfgs_printed_update_is_the_matrix_product(layer):
    rng = np.random.default_rng(0)
    M = spd(4, rng, 0.5, 5.0)
    s, y = secant_pair(4, rng)
    sy = s @ y
    printed = M @ ((1 + y @ M @ y / sy) * np.outer(s, s) / sy) - (
        np.outer(s, y) @ M + M @ np.outer(y, s)) / sy
    T, N = layer.to_layer, layer.to_numpy
    np.testing.assert_allclose(N(qn(layer).bfgs_update_printed(T(M), T(s), T(y))), printed,
                               rtol=1e-12)
    # it drops the "+ M" of the Reading: the two differ by exactly M when M s s^T = s s^T
    I = T(np.eye(4))
    difference = N(qn(layer).bfgs_update(I, T(s), T(y))) - N(
        qn(layer).bfgs_update_printed(I, T(s), T(y)))
    np.testing.assert_allclose(difference, np.eye(4), atol=1e-12)


@given(CASES)
def test_bfgs_exact_line_search_terminates_with_inverse_hessian(layer, case):
    """Through the update formula: BFGS with the exact step on a quadratic reaches x* in <= n
    steps and, after n steps with independent s, M_n = A^-1 (Nocedal & Wright Thm. 6.4)."""
    _, _, x, A, x_star = quad(layer, case)
    n = case[0]
    T = layer.to_layer
    x0 = layer.to_numpy(x["x"])
    M, xk = np.eye(n), x0
    for k in range(n):  # noqa: B007 (read after the loop)
        g = A @ (xk - x_star)
        if np.linalg.norm(g) <= 1e-13 * np.linalg.norm(A @ x_star):
            break
        p = -M @ g
        s = (-(g @ p) / (p @ A @ p)) * p
        M = layer.to_numpy(qn(layer).bfgs_update(T(M), T(s), T(A @ s)))
        xk = xk + s
    np.testing.assert_allclose(xk, x_star, rtol=1e-8, atol=1e-9)
    if np.linalg.norm(A @ (x0 - x_star)) > 0 and k == n - 1:
        np.testing.assert_allclose(M, np.linalg.inv(A), rtol=1e-6, atol=1e-8)


def test_bfgs_rule_secant_state_and_scaled_start(layer):
    problem, oracle, x, A, _ = quad(layer, (5, 9))
    _, state, trace = run(layer, "rule:so.bfgs", problem, oracle, x, 4)
    N = layer.to_numpy
    # the M in the state after step k + 1 satisfies the secant equation M y = s of the
    # previous step's pair (s = the step taken, y = A s on a quadratic)
    for (_, before), (_, after) in zip(trace[1:], trace[2:], strict=False):
        s, M = N(before["s"]), N(after["M"])
        np.testing.assert_allclose(M @ (A @ s), s, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(M, M.T, rtol=1e-12, atol=1e-14)
        assert np.linalg.eigvalsh(M)[0] > 0
    assert state["t"] == 4 and state["updated"]
    # M0 = scaled: M = (s^T y / y^T y) I just before the first update
    _, scaled, _ = run(layer, "rule:so.bfgs", problem, oracle, x, 2, M0="scaled")
    s1 = N(trace[1][1]["s"])
    y1 = A @ s1
    gamma = (s1 @ y1) / (y1 @ y1)
    T = layer.to_layer
    expected = N(qn(layer).bfgs_update(T(gamma * np.eye(5)), T(s1), T(y1)))
    np.testing.assert_allclose(N(scaled["M"]), expected, rtol=1e-10)


def test_bfgs_printed_update_stalls_on_an_ascent_direction(layer):
    """After a near-exact line search the printed M_1 gives g^T M_1 g = O(s^T g); when -M g is
    not a descent direction the printed variant takes eps* = 0 and stays there."""
    lam = 10.0 ** np.sort(np.random.default_rng(0).uniform(-0.5, 0.5, size=6))
    rng = np.random.default_rng(1)
    problem = layer.quadratic(np.diag(lam), rng.standard_normal(6))
    oracle, x = layer.Oracle(problem), {"x": layer.to_layer(rng.standard_normal(6))}
    rule = layer.rules.get("rule:so.bfgs[as_printed]")
    state, stalled = rule.init(x), 0
    for _ in range(4):
        g = grad(layer, problem, x)
        u, new = rule.step(problem.grad(x), state, x, oracle, c1=0.01, c2=0.125, skip=False)
        if g @ (layer.to_numpy(new["M"]) @ g) <= 0:
            assert np.all(layer.to_numpy(u["x"]) == 0.0)
            assert np.all(layer.to_numpy(new["s"]) == 0.0)
            stalled += 1
        x, state = {"x": x["x"] + u["x"]}, new
    assert stalled >= 2  # stuck: s = 0 skips every later update


@pytest.mark.parametrize("rule_id", ["rule:so.bfgs", "rule:so.lbfgs", "rule:so.newton_cg"])
def test_quasi_newton_and_newton_cg_converge_on_a_quadratic(typed_layer, rule_id):
    layer = typed_layer
    problem, oracle, x, _, x_star = quad(layer, (4, 8), hi=5.0)
    final, state, _ = run(layer, rule_id, problem, oracle, x, 40)
    error = np.linalg.norm(layer.to_numpy(final["x"]) - x_star) / np.linalg.norm(x_star)
    assert error <= (1e-8 if layer.dtype == "float64" else 1e-4)
    assert state["t"] == 40


# --- L-BFGS -----------------------------------------------------------------------------------


@given(CASES, st.integers(min_value=1, max_value=6))
def test_two_loop_equals_dense_inverse(layer, case, m):
    n, seed = case
    rng = np.random.default_rng(seed)
    pairs = [secant_pair(n, rng) for _ in range(m)]
    S, Y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    g = rng.standard_normal(n)
    gamma = float(S[-1] @ Y[-1] / (Y[-1] @ Y[-1]))
    dense = dense_inverse(S, Y, gamma)
    T = layer.to_layer
    if hasattr(qn(layer), "dense_inverse"):  # the reference's own dense form
        np.testing.assert_allclose(layer.to_numpy(qn(layer).dense_inverse(T(S), T(Y), gamma)),
                                   dense, rtol=1e-10, atol=1e-12 * np.linalg.norm(dense))
    direction = dense @ g
    np.testing.assert_allclose(layer.to_numpy(qn(layer).two_loop(T(g), T(S), T(Y), gamma)),
                               direction, rtol=1e-10, atol=1e-12 * np.linalg.norm(direction))


def test_lbfgs_state_keeps_the_last_m_pairs(layer):
    problem, oracle, x, _, _ = quad(layer, (6, 4), np.geomspace(0.1, 10, 6))
    _, state, trace = run(layer, "rule:so.lbfgs", problem, oracle, x, 6, m=3)
    N = layer.to_numpy
    assert N(state["S"]).shape == (3, 6) and state["count"] == 3
    steps = [N(t[1]["s"]) for t in trace[1:]]
    np.testing.assert_allclose(N(state["S"]), np.array(steps[-4:-1]), rtol=0, atol=0)
    # the direction of the last step is -H_k g from those pairs
    rule = layer.rules.get("rule:so.lbfgs")
    params = trace[-1][0]
    u, new = rule.step(problem.grad(params), state, params, oracle, m=3)
    S, Y = N(new["S"]), N(new["Y"])
    gamma = S[-1] @ Y[-1] / (Y[-1] @ Y[-1])
    p = -dense_inverse(S, Y, gamma) @ grad(layer, problem, params)
    u = N(u["x"])
    cosine = u @ p / (np.linalg.norm(u) * np.linalg.norm(p))
    assert cosine == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(ValueError, match="m"):
        rule.step(problem.grad(params), state, params, oracle, m=4)


# --- Newton-CG --------------------------------------------------------------------------------


@given(CASES)
def test_truncated_cg_full_iterations_is_the_solve(layer, case):
    problem, _, x, A, _ = quad(layer, case)
    g = grad(layer, problem, x)
    A_l = layer.to_layer(A)
    p = layer.to_numpy(so(layer).truncated_cg(lambda v: A_l @ v, layer.to_layer(g), 0.0,
                                              case[0]))
    assert np.linalg.norm(A @ p + g) <= 1e-8 * np.linalg.norm(g)
    np.testing.assert_allclose(p, -np.linalg.solve(A, g), rtol=1e-7, atol=1e-10)


def test_truncated_cg_negative_curvature(layer):
    A = layer.to_layer(np.diag([-1.0, 2.0, 3.0]))
    g = np.array([1.0, 0.0, 0.0])
    p = so(layer).truncated_cg(lambda v: A @ v, layer.to_layer(g), 0.0, 3)
    np.testing.assert_array_equal(layer.to_numpy(p), -g)
    g = np.array([0.1, 1.0, 1.0])  # first iteration positive, negative later
    p = so(layer).truncated_cg(lambda v: A @ v, layer.to_layer(g), 0.0, 3)
    assert g @ layer.to_numpy(p) < 0


def test_newton_cg_rule_damping_and_fd(layer):
    problem, oracle, x, A, x_star = quad(layer, (5, 12))
    rule = layer.rules.get("rule:so.newton_cg")
    N = layer.to_numpy
    g = grad(layer, problem, x)
    u_exact, state = rule.step(problem.grad(x), rule.init(x), x, oracle, lam=0.5)
    u_fd, state_fd = rule.step(problem.grad(x), rule.init(x), x, oracle, lam=0.5, hvp="fd",
                               h=1e-3)
    np.testing.assert_allclose(N(u_fd["x"]), N(u_exact["x"]), rtol=1e-8)
    # quadratic, undamped model with the exact Hessian: rho = 1 > 3/4, lam <- lam / alpha_damp
    assert float(state["lam"]) == pytest.approx(0.5 / 1.5) and state["t"] == 1
    assert g @ N(u_exact["x"]) < 0
    # damped model: q(p) = g^T p + 1/2 p^T (H + lam I) p, rho = f-change / q
    _, damped = rule.step(problem.grad(x), rule.init(x), x, oracle, lam=50.0, model="damped",
                          line_search=False, alpha_damp=2.0)
    p = rule.step(problem.grad(x), rule.init(x), x, oracle, lam=50.0, model="damped",
                  line_search=False)[0]["x"]
    q = g @ N(p) + 0.5 * N(p) @ (A + 50.0 * np.eye(5)) @ N(p)
    rho = (float(problem.loss({"x": x["x"] + p})) - float(problem.loss(x))) / q
    expected = 50.0 * 2.0 if rho < 0.25 else (25.0 if rho > 0.75 else 50.0)
    assert float(damped["lam"]) == pytest.approx(expected)
    # lam = 0 and a tight forcing term: Newton-CG on a quadratic converges
    final, _, _ = run(layer, "rule:so.newton_cg", problem, oracle, x, 12)
    np.testing.assert_allclose(N(final["x"]), x_star, rtol=1e-8, atol=1e-10)


# --- errors -----------------------------------------------------------------------------------

BAD = [
    ("rule:so.newton_ls", "alpha", 0.0, ValueError),
    ("rule:so.newton_ls", "line_search", "wolfe", ValueError),
    ("rule:so.newton_ls", "c1", 1.0, ValueError),
    ("rule:so.newton_ls", "c1", 0.0, ValueError),
    ("rule:so.newton_ls", "rho", 0.0, ValueError),
    ("rule:so.newton_ls", "nonpd", "clip", ValueError),
    ("rule:so.newton_ls", "delta", -1.0, ValueError),
    ("rule:so.newton_ls", "curv", "Z", ValueError),
    ("rule:so.newton_ls", "curv", 3, TypeError),
    ("rule:so.gauss_newton", "step", "half", ValueError),
    ("rule:so.gauss_newton", "pinv", 1, TypeError),
    ("rule:so.gauss_newton", "pinv", "yes", TypeError),
    ("rule:so.lm", "mu", -1e-3, ValueError),
    ("rule:so.lm", "nu", 1.0, ValueError),
    ("rule:so.lm", "nu", 0.5, ValueError),
    ("rule:so.lm", "mu_schedule", "nielsen", ValueError),
    ("rule:so.lm", "scaling", "full", ValueError),
    ("rule:so.sofo", "lam", 0.0, ValueError),
    ("rule:so.sofo", "lam", -1.0, ValueError),
    ("rule:so.sofo", "alpha", math.inf, ValueError),
    ("rule:so.cg_nonlinear", "beta", "hs", ValueError),
    ("rule:so.cg_nonlinear", "restart", "sometimes", ValueError),
    ("rule:so.cg_nonlinear", "restart", "often", ValueError),
    ("rule:so.cg_nonlinear", "line_search", "armijo", ValueError),
    ("rule:so.cg_nonlinear", "c2", 1e-5, ValueError),
    ("rule:so.bfgs", "M0", "diag", ValueError),
    ("rule:so.bfgs", "skip", "yes", TypeError),
    ("rule:so.bfgs", "c2", 1.5, ValueError),
    ("rule:so.bfgs", "c2", 1e-6, ValueError),
    ("rule:so.lbfgs", "m", 0, ValueError),
    ("rule:so.lbfgs", "m", 2.5, TypeError),
    ("rule:so.newton_cg", "hvp", "bfgs", ValueError),
    ("rule:so.newton_cg", "h", 0.0, ValueError),
    ("rule:so.newton_cg", "alpha_damp", 0.5, ValueError),
    ("rule:so.newton_cg", "alpha_damp", 1.0, ValueError),
    ("rule:so.newton_cg", "model", "cubic", ValueError),
    ("rule:so.newton_cg", "line_search", "armijo", TypeError),
    ("rule:so.newton_cg", "lam", -1.0, ValueError),
]


@pytest.mark.parametrize(("rule_id", "name", "value", "error"), BAD)
def test_bad_hyperparameters_name_the_parameter(layer, rule_id, name, value, error):
    problem, oracle, x, _, _ = quad(layer, (3, 0))
    rule = layer.rules.get(rule_id)
    with pytest.raises(error, match=name):
        rule.step(problem.grad(x), rule.init(x), x, oracle, **{name: value})


@pytest.mark.parametrize("rule_id", SO_IDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_gradients_raise(layer, rule_id, bad):
    problem, oracle, x, _, _ = quad(layer, (3, 0))
    rule = layer.rules.get(rule_id)
    hyper = {"curv": "user"} if "curv" in rule.hyper else {}
    with pytest.raises(ValueError, match="non-finite"):
        rule.step({"x": layer.to_layer([1.0, bad, 0.0])}, rule.init(x), x, oracle, **hyper)


@pytest.mark.parametrize("rule_id", SO_IDS)
def test_state_is_immutable_and_fresh(layer, rule_id):
    problem, oracle, x, _, _ = quad(layer, (3, 5))
    rule = layer.rules.get(rule_id)
    hyper = {"curv": "user"} if "curv" in rule.hyper else {}
    state = rule.init(x)
    snapshot = {k: layer.to_numpy(v) for k, v in state.items()}
    _, new = rule.step(problem.grad(x), state, x, oracle, **hyper)
    with pytest.raises(TypeError):
        new["t"] = 5  # type: ignore[index]
    for k, v in snapshot.items():
        np.testing.assert_array_equal(layer.to_numpy(state[k]), v)
