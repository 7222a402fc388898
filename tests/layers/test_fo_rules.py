"""The non-Adam first-order rules ``rule:fo.*`` of both layers against their oracles.

INVENTORY §2.2: closed forms under a constant gradient (heavy ball, Adagrad, RMSprop, delta-bar-
delta gains), the heavy-ball iteration matrix and the Nesterov characteristic polynomial on
quadratic modes, Lion's reductions (sign descent; the negated EMA momentum), WIN as Lion on
g + lam theta, Langevin's noise as an exact function of the oracle's probe, the LARS local
rate, the declared momentum ramp, and the error paths, each on the reference and on torch
(float64; expected values are NumPy closed forms, never the other layer). Torch only: float32
runs stay in float32 and match float64. The torch.optim trajectory oracles are in
``tests/verify/test_torch_optim_equivalence_momentum.py`` (both layers).

Parameters have several leaves of different shapes wherever the rule is elementwise.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import pytest
import torch

from contract import freeze

RTOL, ATOL = 1e-10, 1e-12
SHAPES = {"W": (3, 4), "b": (5,), "c": (2, 1, 3)}
MINE = (
    "rule:fo.sgd", "rule:fo.heavy_ball", "rule:fo.heavy_ball[survey]", "rule:fo.heavy_ball[ema]",
    "rule:fo.nesterov", "rule:fo.nesterov[sutskever]", "rule:fo.nesterov[as_printed]",
    "rule:fo.lion", "rule:fo.lion[as_printed]", "rule:fo.adagrad", "rule:fo.rmsprop",
    "rule:fo.langevin", "rule:fo.win", "rule:fo.lars", "rule:fo.delta_bar_delta",
)


def tree(rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {k: scale * rng.standard_normal(s) for k, s in SHAPES.items()}


def close(a, b, rtol: float = RTOL) -> None:
    if isinstance(a, dict | MappingProxyType):
        assert set(a) == set(b)
        for k in a:
            close(a[k], b[k], rtol)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=ATOL)


def flat(layer, tree) -> np.ndarray:
    """The layer's ``flatten`` of a NumPy tree, as NumPy."""
    return layer.to_numpy(layer.tree.flatten(layer.cast(tree)))


class LeastSquares:
    """A minimal oracle for several leaves: f = 1/2 ||A x - y||^2 over x = flatten(params),
    ||A||_2 = 1; ``grad``, and the seeds and probes of the layer's ``Oracle``."""

    def __init__(self, layer, seed: int) -> None:
        rng = np.random.default_rng(seed)
        P = sum(math.prod(s) for s in SHAPES.values())
        A = rng.standard_normal((P + 7, P))
        self.layer = layer
        self.A = layer.to_layer(A / np.linalg.norm(A, 2))
        self.y = layer.to_layer(rng.standard_normal(P + 7))
        self.draws = layer.oracle(None, seed=seed + 1)

    def grad(self, params):
        tree = self.layer.tree
        return tree.unflatten(self.A.T @ (self.A @ tree.flatten(params) - self.y), params)

    def seed(self) -> int:
        return self.draws.seed()

    def probe(self, dist, shape, seed, **kw):
        return self.draws.probe(dist, shape, seed, **kw)


def step(layer, rule_id, grads, state, params, oracle=None, **hyper):
    """One step from NumPy inputs (trees, a state mapping, array hyperparameters); the updates
    and the new state as NumPy."""
    updates, new = layer.rules.get(rule_id).step(
        layer.cast(grads), freeze(**layer.cast(dict(state))), layer.cast(params), oracle,
        **layer.cast(hyper))
    return layer.to_numpy(updates), layer.to_numpy(new)


def run_constant(layer, rule_id, g, steps, params=None, **hyper):
    """(list of updates, final state), as NumPy, under the constant gradient ``g``."""
    rule = layer.rules.get(rule_id)
    g = layer.cast(g)
    params = layer.cast(params if params is not None else
                        {k: np.zeros(np.shape(v)) for k, v in g.items()})
    state, out = rule.init(params), []
    for _ in range(steps):
        updates, state = rule.step(g, state, params, None, **hyper)
        out.append(layer.to_numpy(updates))
    return out, layer.to_numpy(state)


def test_every_first_order_id_is_registered_with_a_doc(layer):
    for rule_id in MINE:
        assert rule_id in [i for i in layer.rules.ids() if i.startswith("rule:fo.")]
        assert len(layer.rules.get(rule_id).doc) > 80


@pytest.mark.parametrize("seed", [0, 1])
def test_sgd_is_minus_alpha_g(layer, seed):
    rng = np.random.default_rng(seed)
    g, p = tree(rng), tree(rng)
    init = layer.rules.get("rule:fo.sgd").init(layer.cast(p))
    updates, state = step(layer, "rule:fo.sgd", g, init, p, alpha=0.3)
    close(updates, {k: -0.3 * v for k, v in g.items()})
    assert dict(state) == {}


@pytest.mark.parametrize("alpha,eps", [(0.9, 0.01), (0.5, 0.3), (0.0, 0.2)])
def test_heavy_ball_survey_constant_gradient_closed_form_and_limit(layer, alpha, eps):
    # v_t = -eps g (1 - alpha^t)/(1 - alpha) -> -eps g/(1 - alpha) (INVENTORY §2.2 oracle)
    g = tree(np.random.default_rng(3))
    out, state = run_constant(layer, "rule:fo.heavy_ball[survey]", g, 400, alpha=alpha, eps=eps)
    for t in (1, 2, 7, 400):
        close(out[t - 1], {k: -eps * v * (1 - alpha**t) / (1 - alpha) for k, v in g.items()})
    close(state["v"], {k: -eps * v / (1 - alpha) for k, v in g.items()})
    assert state["t"] == 400


def test_heavy_ball_thesis_and_ema_constant_gradient(layer):
    g = tree(np.random.default_rng(4))
    alpha, beta = 0.05, 0.8
    out, state = run_constant(layer, "rule:fo.heavy_ball", g, 9, alpha=alpha, beta=beta)
    close(state["m"], {k: -v * (1 - beta**9) / (1 - beta) for k, v in g.items()})
    close(out[-1], {k: -alpha * v * (1 - beta**9) / (1 - beta) for k, v in g.items()})
    out, state = run_constant(layer, "rule:fo.heavy_ball[ema]", g, 9, eta=0.1, beta=beta)
    close(state["m"], {k: v * (1 - beta**9) for k, v in g.items()})
    close(out[-1], {k: -0.1 * v * (1 - beta**9) for k, v in g.items()})


def _modes(layer, seed: int, n: int = 6):
    """A separable quadratic (x* = 0) whose modes are its diagonal entries lam."""
    lam = np.random.default_rng(seed).uniform(0.1, 20.0, n)
    return lam, layer.quadratic(np.diag(lam), np.zeros(n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heavy_ball_iteration_matrix_on_quadratic_modes(layer, seed):
    # (theta_{t+1}, theta_t) = [[1 + beta - alpha lam, -beta], [1, 0]] (theta_t, theta_{t-1})
    lam, problem = _modes(layer, seed)
    rng = np.random.default_rng(seed + 10)
    alpha, beta = 0.07, 0.85
    theta, m = rng.standard_normal(lam.size), rng.standard_normal(lam.size)
    theta_prev = theta - alpha * m  # theta_t = theta_{t-1} + alpha m_t
    params = {"x": theta}
    grads = problem.grad(layer.cast(params))
    updates, new = step(layer, "rule:fo.heavy_ball", grads, freeze(m={"x": m}, t=0), params,
                        alpha=alpha, beta=beta)
    for i in range(lam.size):
        M = np.array([[1 + beta - alpha * lam[i], -beta], [1.0, 0.0]])
        close(np.array([theta[i] + updates["x"][i], theta[i]]), M @ [theta[i], theta_prev[i]])
    assert new["t"] == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nesterov_sutskever_characteristic_polynomial(layer, seed):
    # one step (theta, v) -> (theta', v') on mode lam is linear; its characteristic polynomial
    # is r^2 - (1 + alpha)(1 - eps lam) r + alpha (1 - eps lam)
    lam, problem = _modes(layer, seed, n=4)
    alpha, eps = 0.8, 0.04
    oracle = layer.Oracle(problem)
    n = lam.size

    def one_step(theta, v):
        updates, new = step(layer, "rule:fo.nesterov[sutskever]", {"x": np.zeros(n)},
                            freeze(v={"x": v}), {"x": theta}, oracle, alpha=alpha, eps=eps)
        return theta + updates["x"], new["v"]["x"]

    columns = [one_step(*np.eye(2 * n)[j].reshape(2, n)) for j in range(2 * n)]
    T = np.stack([np.concatenate(c) for c in columns], axis=1)  # (theta, v) -> (theta', v')
    for i in range(n):
        block = T[np.ix_([i, n + i], [i, n + i])]
        c = 1 - eps * lam[i]
        close(np.poly(block), np.array([1.0, -(1 + alpha) * c, alpha * c]))
        assert np.all(np.delete(T[i], [i, n + i]) == 0.0)  # the modes decouple


def test_nesterov_as_printed_omits_alpha_in_the_position_update(layer):
    lam, problem = _modes(layer, 5)
    oracle, rng = layer.Oracle(problem), np.random.default_rng(5)
    params, m = {"x": rng.standard_normal(lam.size)}, {"x": rng.standard_normal(lam.size)}
    state = freeze(m=m)
    g = problem.grad(layer.cast(params))
    eq9, s9 = step(layer, "rule:fo.nesterov", g, state, params, oracle, alpha=0.2, beta=0.7)
    printed, sp = step(layer, "rule:fo.nesterov[as_printed]", g, state, params, oracle,
                       alpha=0.2, beta=0.7)
    expected_m = 0.7 * m["x"] - lam * (params["x"] + 0.2 * 0.7 * m["x"])
    close(sp["m"]["x"], expected_m)
    close(s9["m"]["x"], expected_m)
    close(printed["x"], expected_m)
    close(eq9["x"], 0.2 * expected_m)


def test_nesterov_uses_the_look_ahead_gradient_not_grads(layer):
    lam, problem = _modes(layer, 6)
    params = {"x": np.ones(lam.size)}
    wrong = {"x": np.full(lam.size, 1e3)}
    v = {"x": np.ones(lam.size)}
    updates, _ = step(layer, "rule:fo.nesterov[sutskever]", wrong, freeze(v=v), params,
                      layer.Oracle(problem), alpha=0.5, eps=0.1)
    close(updates["x"], 0.5 - 0.1 * lam * 1.5)


def test_lion_chen2023_without_momentum_or_decay_is_sign_descent(layer):
    rng = np.random.default_rng(7)
    rule = layer.rules.get("rule:fo.lion")
    params = layer.cast(tree(rng))
    state = rule.init(params)
    for t in range(6):
        g = tree(rng)
        g["b"][t % 5] = 0.0  # sign(0) = 0
        updates, state = rule.step(layer.cast(g), state, params, None, eta=0.03, beta1=0.0,
                                   beta2=0.0, lam=0.0)
        updates = layer.to_numpy(updates)
        close(updates, {k: -0.03 * np.sign(v) for k, v in g.items()}, rtol=0)
        assert updates["b"][t % 5] == 0.0


def test_lion_chen2023_one_step_with_decay(layer):
    rng = np.random.default_rng(8)
    params, g, m = tree(rng), tree(rng), tree(rng)
    updates, state = step(layer, "rule:fo.lion", g, freeze(m=m), params, eta=0.01, beta1=0.9,
                          beta2=0.99, lam=0.1)
    c = {k: 0.9 * m[k] + 0.1 * g[k] for k in g}
    close(updates, {k: -0.01 * (np.sign(c[k]) + 0.1 * params[k]) for k in g})
    close(state["m"], {k: 0.99 * m[k] + 0.01 * g[k] for k in g})


def test_lion_as_printed_with_unit_P_is_the_negated_ema_momentum(layer):
    # m_lion = -m_ema of fo.heavy_ball[ema] (same beta); theta + alpha m_lion = theta - eta m_ema
    rng = np.random.default_rng(9)
    params = layer.cast(tree(rng))
    lion, ema = (layer.rules.get(k) for k in ("rule:fo.lion[as_printed]",
                                               "rule:fo.heavy_ball[ema]"))
    s_lion, s_ema = lion.init(params), ema.init(params)
    for _ in range(20):
        g = layer.cast(tree(rng))
        u_lion, s_lion = lion.step(g, s_lion, params, None, alpha=0.04, beta=0.8)
        u_ema, s_ema = ema.step(g, s_ema, params, None, eta=0.04, beta=0.8)
        m_lion, m_ema = layer.to_numpy(s_lion["m"]), layer.to_numpy(s_ema["m"])
        close(m_lion, {k: -v for k, v in m_ema.items()})
        close(layer.to_numpy(u_lion), layer.to_numpy(u_ema))


def test_lion_as_printed_scales_by_P(layer):
    rng = np.random.default_rng(10)
    params, g, m, P = tree(rng), tree(rng), tree(rng), tree(rng)
    updates, state = step(layer, "rule:fo.lion[as_printed]", g, freeze(m=m), params, alpha=0.5,
                          beta=0.6, P=P)
    expected = {k: 0.6 * m[k] - 0.4 * P[k] * g[k] for k in g}
    close(state["m"], expected)
    close(updates, {k: 0.5 * v for k, v in expected.items()})


def test_win_is_lion_as_printed_on_g_plus_lam_theta(layer):
    rng = np.random.default_rng(11)
    params, m = tree(rng), tree(rng)
    g = tree(rng)
    u_win, s_win = step(layer, "rule:fo.win", g, freeze(m=m), params, alpha=0.1, beta=0.7,
                        lam=0.3)
    shifted = {k: g[k] + 0.3 * params[k] for k in g}
    u_lion, s_lion = step(layer, "rule:fo.lion[as_printed]", shifted, freeze(m=m), params,
                          alpha=0.1, beta=0.7)
    close(u_win, u_lion)
    close(s_win["m"], s_lion["m"])


def test_adagrad_constant_gradient(layer):
    g = tree(np.random.default_rng(12))
    out, state = run_constant(layer, "rule:fo.adagrad", g, 16, alpha=0.2, eps=1e-3)
    close(state["G"], {k: 16 * v**2 for k, v in g.items()})
    close(out[-1], {k: -0.2 * v / (4 * np.abs(v) + 1e-3) for k, v in g.items()})


@pytest.mark.parametrize("eps_inside", [False, True])
def test_rmsprop_constant_gradient(layer, eps_inside):
    g = tree(np.random.default_rng(13))
    beta, eps, t = 0.9, 1e-2, 5
    out, state = run_constant(layer, "rule:fo.rmsprop", g, t, alpha=0.1, beta=beta, eps=eps,
                              eps_inside=eps_inside)
    v = {k: (1 - beta**t) * x**2 for k, x in g.items()}
    close(state["v"], v)
    denom = {k: np.sqrt(v[k] + eps) if eps_inside else np.sqrt(v[k]) + eps for k in g}
    close(out[-1], {k: -0.1 * g[k] / denom[k] for k in g})


def test_langevin_at_zero_temperature_is_gradient_descent(layer):
    rng = np.random.default_rng(14)
    params, g = tree(rng), tree(rng)
    updates, state = step(layer, "rule:fo.langevin", g, freeze(), params, LeastSquares(layer, 0),
                          alpha=0.2, T_eff=0.0)
    close(updates, {k: -0.2 * v for k, v in g.items()}, rtol=0)
    assert dict(state) == {}


@pytest.mark.parametrize("with_cov", [False, True])
def test_langevin_noise_is_the_scaled_probe(layer, with_cov):
    rng = np.random.default_rng(15)
    params, g = tree(rng), tree(rng)
    P = flat(layer, params).size
    alpha, T = 0.05, 0.7
    B = rng.standard_normal((P, P))
    Sigma = B @ B.T + 0.1 * np.eye(P) if with_cov else None
    updates, _ = step(layer, "rule:fo.langevin", g, freeze(), params, LeastSquares(layer, 1),
                      alpha=alpha, T_eff=T, noise_cov=Sigma)
    replay = LeastSquares(layer, 1)
    xi = layer.to_numpy(replay.probe("gaussian", (P,), replay.seed()))
    L = np.linalg.cholesky(Sigma) if with_cov else np.eye(P)
    close(flat(layer, updates) + alpha * flat(layer, g), math.sqrt(2 * alpha * T) * (L @ xi))
    again = layer.to_numpy(replay.probe("gaussian", (P,), replay.seed()))
    assert not np.allclose(xi, again)  # fresh seeds


def test_langevin_noise_covariance_monte_carlo(layer):
    # E[n n^T] = 2 alpha T Sigma for the noise n (P = 3, 1000 draws, seed fixed)
    P, alpha, T = 3, 0.5, 1.0
    Sigma = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 0.5]])
    oracle = layer.oracle(None, seed=16)
    rule = layer.rules.get("rule:fo.langevin")
    params, g = layer.cast({"x": np.zeros(P)}), layer.cast({"x": np.zeros(P)})
    cov = layer.to_layer(Sigma)
    noise = np.stack([
        layer.to_numpy(rule.step(g, freeze(), params, oracle, alpha=alpha, T_eff=T,
                                 noise_cov=cov)[0]["x"])
        for _ in range(1000)
    ])
    empirical = noise.T @ noise / len(noise)
    # entry (i, j) has standard error sqrt((S_ii S_jj + S_ij^2)/1000) <= sqrt(8/1000) ~ 0.09
    # (2 alpha T = 1): atol = 5 standard errors
    np.testing.assert_allclose(empirical, 2 * alpha * T * Sigma, atol=0.45)


def test_lars_local_rate_and_update_norm(layer):
    # before momentum (v = 0): ||update|| = eta eta_l ||grad w + beta_wd w|| per leaf
    rng = np.random.default_rng(17)
    params, g = tree(rng), tree(rng)
    params["b"] = np.zeros(5)  # ||w|| = 0: eta_l = 1 (declared convention)
    eta, trust, wd = 0.5, 0.01, 0.2
    init = layer.rules.get("rule:fo.lars").init(layer.cast(params))
    updates, state = step(layer, "rule:fo.lars", g, init, params, eta=eta, eta_trust=trust,
                          beta_wd=wd, mu=0.9)
    for k in g:
        w_norm, g_norm = np.linalg.norm(params[k]), np.linalg.norm(g[k])
        local = trust * w_norm / (g_norm + wd * w_norm) if w_norm > 0 else 1.0
        expected = -eta * local * (g[k] + wd * params[k])
        close(updates[k], expected)
        close(np.linalg.norm(updates[k]), eta * local * np.linalg.norm(g[k] + wd * params[k]))
    updates2, _ = step(layer, "rule:fo.lars", g, state, params, eta=eta, eta_trust=trust,
                       beta_wd=wd, mu=0.9)
    close(updates2, {k: 1.9 * v for k, v in updates.items()})  # v <- mu v + same step


def test_delta_bar_delta_gains_grow_linearly_until_the_clip(layer):
    g = tree(np.random.default_rng(18))
    kappa, gmax = 0.05, 1.4
    out, state = run_constant(layer, "rule:fo.delta_bar_delta", g, 12, eps=0.1, kappa=kappa,
                              gamma_max=gmax)
    for t, u in enumerate(out, start=1):
        gain = min(1 + (t - 1) * kappa, gmax)  # unchanged at the first step
        close(u, {k: -0.1 * gain * v for k, v in g.items()})
    assert state["t"] == 12


def test_delta_bar_delta_sign_flip_shrinks_the_gain(layer):
    g = {"x": np.array([1.0, -2.0, 3.0, 0.5])}
    rule = layer.rules.get("rule:fo.delta_bar_delta")
    params = layer.cast({"x": np.zeros(4)})
    state = rule.init(params)
    _, state = rule.step(layer.cast(g), state, params, None)
    _, state = rule.step(layer.cast(g), state, params, None)  # gains 1.05
    flipped = {"x": g["x"] * np.array([1, -1, -1, 0])}
    updates, state = rule.step(layer.cast(flipped), state, params, None, psi=0.5)
    gamma = layer.to_numpy(state["gamma"]["x"])
    close(gamma, [1.1, 0.525, 0.525, 0.525])
    close(layer.to_numpy(updates["x"]), -0.01 * gamma * flipped["x"])
    _, state = rule.step(layer.cast({"x": np.full(4, 1e-3)}), state, params, None, psi=0.01)
    # previous signs (+, +, -, 0) against +: grow, grow, shrink, shrink ("else"), then clip
    close(layer.to_numpy(state["gamma"]["x"]), [1.15, 0.575, 0.1, 0.1], rtol=1e-15)


def test_linear_momentum_ramp(layer):
    # beta_t = beta_start + (beta - beta_start) min(t/ramp_steps, 1), t = steps taken
    g = {"x": np.array([1.0, -2.0])}
    out, _ = run_constant(layer, "rule:fo.heavy_ball", g, 8, alpha=1.0, beta=0.9,
                          momentum_schedule="linear", beta_start=0.5, ramp_steps=4)
    m = np.zeros(2)
    for t in range(8):
        m = (0.5 + 0.4 * min(t / 4, 1.0)) * m - g["x"]
        close(out[t]["x"], m)
    out, _ = run_constant(layer, "rule:fo.heavy_ball[survey]", g, 8, alpha=0.9, eps=1.0,
                          momentum_schedule="linear", beta_start=0.5, ramp_steps=4)
    v = np.zeros(2)
    for t in range(8):
        v = (0.5 + 0.4 * min(t / 4, 1.0)) * v - g["x"]
        close(out[t]["x"], v)


def test_states_are_immutable_and_inputs_untouched(layer):
    rng = np.random.default_rng(19)
    params, g = layer.cast(tree(rng)), layer.cast(tree(rng))
    kept = layer.to_numpy(g)
    for rule_id in MINE:
        rule = layer.rules.get(rule_id)
        state = rule.init(params)
        _, new = rule.step(g, state, params, LeastSquares(layer, 2))
        assert isinstance(new, MappingProxyType)
        for value in new.values():
            assert not isinstance(value, dict)
        close(layer.to_numpy(g), kept, rtol=0)


BAD = [
    ("rule:fo.sgd", {"alpha": -0.1}, "alpha"),
    ("rule:fo.sgd", {"alpha": 0.0}, "alpha"),
    ("rule:fo.heavy_ball", {"beta": 1.0}, "beta"),
    ("rule:fo.heavy_ball", {"beta": -0.1}, "beta"),
    ("rule:fo.heavy_ball", {"momentum_schedule": "cosine"}, "momentum_schedule"),
    ("rule:fo.heavy_ball", {"ramp_steps": 0}, "ramp_steps"),
    ("rule:fo.heavy_ball", {"beta_start": 1.5}, "beta_start"),
    ("rule:fo.heavy_ball[survey]", {"alpha": 1.2}, "alpha"),
    ("rule:fo.heavy_ball[survey]", {"eps": -1.0}, "eps"),
    ("rule:fo.heavy_ball[ema]", {"eta": math.nan}, "eta"),
    ("rule:fo.nesterov", {"alpha": -1.0}, "alpha"),
    ("rule:fo.nesterov[sutskever]", {"alpha": 1.0}, "alpha"),
    ("rule:fo.lion", {"beta1": 1.0}, "beta1"),
    ("rule:fo.lion", {"lam": -0.1}, "lam"),
    ("rule:fo.lion[as_printed]", {"P": {"W": np.ones((3, 4))}}, "P"),
    ("rule:fo.adagrad", {"eps": 0.0}, "eps"),
    ("rule:fo.rmsprop", {"beta": 1.0}, "beta"),
    ("rule:fo.langevin", {"T_eff": -1e-3}, "T_eff"),
    ("rule:fo.langevin", {"noise_cov": -np.eye(23)}, "noise_cov"),
    ("rule:fo.langevin", {"noise_cov": np.eye(3)}, "noise_cov"),
    ("rule:fo.lars", {"mu": 1.0}, "mu"),
    ("rule:fo.delta_bar_delta", {"gamma_min": 20.0}, "gamma_min"),
    ("rule:fo.win", {"lam": -1.0}, "lam"),
]


@pytest.mark.parametrize("rule_id,hyper,name", BAD)
def test_bad_hyperparameters_raise_value_error_naming_them(layer, rule_id, hyper, name):
    rng = np.random.default_rng(20)
    params, g = layer.cast(tree(rng)), layer.cast(tree(rng))
    rule = layer.rules.get(rule_id)
    with pytest.raises(ValueError, match=name):
        rule.step(g, rule.init(params), params, LeastSquares(layer, 3), **layer.cast(hyper))


@pytest.mark.parametrize("rule_id,hyper,name", [
    ("rule:fo.rmsprop", {"eps_inside": "yes"}, "eps_inside"),
    ("rule:fo.heavy_ball", {"ramp_steps": 2.5}, "ramp_steps"),
    ("rule:fo.sgd", {"alpha": "0.1"}, "alpha"),
    ("rule:fo.sgd", {"lr": 0.1}, "lr"),
])
def test_wrong_types_raise_type_error(layer, rule_id, hyper, name):
    rng = np.random.default_rng(21)
    params, g = layer.cast(tree(rng)), layer.cast(tree(rng))
    rule = layer.rules.get(rule_id)
    with pytest.raises(TypeError, match=name):
        rule.step(g, rule.init(params), params, LeastSquares(layer, 3), **hyper)


@pytest.mark.parametrize("rule_id", MINE)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_gradients_raise(layer, rule_id, bad):
    rng = np.random.default_rng(22)
    params, g = tree(rng), tree(rng)
    g["c"][0, 0, 1] = bad
    rule = layer.rules.get(rule_id)
    params, g = layer.cast(params), layer.cast(g)
    with pytest.raises(ValueError, match="grads"):
        rule.step(g, rule.init(params), params, LeastSquares(layer, 4))


@pytest.mark.parametrize("rule_id", MINE)
def test_float32_runs_stay_in_float32_and_match_float64(torch_layer, rule_id):
    # 5 steps on the least-squares oracle: float32 within 1e-5 (normwise, per leaf) of float64
    # and every state tree in float32. Langevin runs at T_eff = 0: torch draws a float32
    # Gaussian probe from the same seed differently from a float64 one (the cross-check replays
    # one set of draws into both dtypes instead).
    rule = torch_layer.rules.get(rule_id)
    hyper = {"T_eff": 0.0} if rule_id == "rule:fo.langevin" else {}
    runs = {}
    start = tree(np.random.default_rng(24))
    for dtype in (torch.float32, torch.float64):
        oracle = LeastSquares(torch_layer, 23)
        oracle.A, oracle.y = oracle.A.to(dtype), oracle.y.to(dtype)
        params = {k: torch.as_tensor(v, dtype=dtype) for k, v in start.items()}
        state = rule.init(params)
        for _ in range(5):
            updates, state = rule.step(oracle.grad(params), state, params, oracle, **hyper)
            params = {k: params[k] + updates[k] for k in params}
        runs[dtype] = params, state
    (p32, s32), (p64, _) = runs[torch.float32], runs[torch.float64]
    for k in p64:
        assert p32[k].dtype == torch.float32
        gap = torch.linalg.norm(p32[k].double() - p64[k])
        assert gap <= 1e-5 * torch.linalg.norm(p64[k]) + 1e-7
    for value in s32.values():
        if isinstance(value, MappingProxyType):
            assert all(v.dtype == torch.float32 for v in value.values())
