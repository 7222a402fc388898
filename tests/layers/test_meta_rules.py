"""The wrapper rules ``rule:meta.*`` of both layers against their oracles.

INVENTORY §2.9: lookahead (alpha = 1 is the inner rule; alpha = 0 freezes phi and restarts the
fast weights from it every k steps; the unrolled slow-weight sum of 003 §3.7 equals the
recursion; the printed fast step [as_printed] is the Reading at k = 1, a hand-computed SGD run,
and a NumPy replay of the inner step at the previous fast iterate), every_k (the refresh
pattern t = 1, 1+k, ...; k = 1 is the inner rule; lazy Newton reuses the Hessian of the last
refresh), weight_decay (the conventions agree through the converter; decoupled_lr around Adam
is AdamW), schedules (the wrapper sets the inner learning rate, the plateau rule follows the
oracle's loss, nested through a dotted path), each on the reference and on torch (float64, rtol
1e-12; expected values are NumPy closed forms or the shared `contract.wrappers` functions,
never the other layer).

The pure functions of `contract.wrappers` (closed forms, 004 App. E presets, the plateau rule,
the converter, and their equality with torch.optim.lr_scheduler) are layer-free and run once.
Torch only: the schedules wrapper around ``rule:fo.sgd`` against torch.optim.SGD driven by
CosineAnnealingLR, StepLR, MultiStepLR, PolynomialLR and ReduceLROnPlateau, and
weight_decay around ``rule:fo.sgd`` / ``rule:fo.adam`` against torch.optim's SGD, Adam and AdamW.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from contract import wrappers as meta

RTOL, ATOL = 1e-12, 1e-14
GD = {"L": 1.0, "L_source": "given"}  # uv.gd with L = 1: d = -alpha g


class Quartic:
    """f(x) = sum(q x^4/4 + c x^2/2 + b x) in the layer's arrays (q = 1: a non-quadratic
    problem whose Hessian moves), with NumPy closed forms of its gradient and Hessian."""

    id = "prob:test_quartic"

    def __init__(self, layer, c, b, q: float = 1.0) -> None:
        self.xp, self.q = layer.xp, q
        self.c_np, self.b_np = np.asarray(c, dtype=np.float64), np.asarray(b, dtype=np.float64)
        self.c, self.b = layer.to_layer(c), layer.to_layer(b)

    def loss(self, params, batch=None):
        x = params["x"]
        return self.xp.sum(self.q * x**4 / 4 + self.c * x**2 / 2 + self.b * x)

    def grad(self, params, batch=None):
        x = params["x"]
        return {"x": self.q * x**3 + self.c * x + self.b}

    def hessian(self, params, batch=None):
        return self.xp.diag(3 * self.q * params["x"] ** 2 + self.c)

    def hvp(self, params, v, batch=None):
        return {"x": (3 * self.q * params["x"] ** 2 + self.c) * v["x"]}

    def np_grad(self, x: np.ndarray) -> np.ndarray:
        return self.q * x**3 + self.c_np * x + self.b_np

    def np_hessian(self, x: np.ndarray) -> np.ndarray:
        return np.diag(3 * self.q * x**2 + self.c_np)


def quartic(layer, n: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    problem = Quartic(layer, rng.uniform(0.5, 2.0, n), rng.standard_normal(n))
    return problem, {"x": layer.to_layer(rng.standard_normal(n))}


def trajectory(layer, rule_id: str, problem, x0, steps: int, **hyper) -> list[np.ndarray]:
    """Iterates x_0..x_steps of ``rule_id`` on ``problem`` (full gradients), as NumPy."""
    rule = layer.rules.get(rule_id)
    oracle = layer.Oracle(problem)
    params, state = dict(x0), rule.init(x0)
    out = [layer.to_numpy(params["x"])]
    for _ in range(steps):
        updates, state = rule.step(problem.grad(params), state, params, oracle, **hyper)
        params = {k: params[k] + updates[k] for k in params}
        out.append(layer.to_numpy(params["x"]))
    return out


def close(a, b, rtol=RTOL, atol=ATOL) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


INNERS = [("rule:uv.gd", {"alpha": 0.1, **GD}), ("rule:uv.newton", {"alpha": 0.7, "curv": "H"}),
          ("rule:fo.sgd", {"alpha": 0.05}), ("rule:fo.adam", {"alpha": 0.05})]
STATELESS = ("rule:uv.gd", "rule:uv.newton", "rule:fo.sgd")


# --- lookahead --------------------------------------------------------------------------------


@pytest.mark.parametrize("inner,inner_hyper", INNERS)
@pytest.mark.parametrize("k", [1, 3])
def test_lookahead_alpha_one_is_the_inner_rule(layer, inner, inner_hyper, k):
    problem, x0 = quartic(layer)
    wrapped = trajectory(layer, "rule:meta.lookahead", problem, x0, 10, inner=inner,
                         inner_hyper=inner_hyper, k=k, alpha=1.0)
    plain = trajectory(layer, inner, problem, x0, 10, **inner_hyper)
    close(wrapped, plain)


@pytest.mark.parametrize("inner,inner_hyper", INNERS)
@pytest.mark.parametrize("inner_state", ["keep", "reset"])
def test_lookahead_alpha_zero_freezes_phi_and_restarts(layer, inner, inner_hyper, inner_state):
    problem, x0 = quartic(layer, seed=1)
    k = 3
    rule = layer.rules.get("rule:meta.lookahead")
    oracle = layer.Oracle(problem)
    params, state = dict(x0), rule.init(x0)
    start = layer.to_numpy(x0["x"])
    fresh = trajectory(layer, inner, problem, x0, k, **inner_hyper)  # k inner steps from x0
    for t in range(1, 3 * k + 1):
        updates, state = rule.step(problem.grad(params), state, params, oracle, inner=inner,
                                   inner_hyper=inner_hyper, k=k, alpha=0.0,
                                   inner_state=inner_state)
        params = {"x": params["x"] + updates["x"]}
        x = layer.to_numpy(params["x"])
        np.testing.assert_array_equal(layer.to_numpy(state["phi"]["x"]), start)  # phi fixed
        if t % k == 0:
            close(x, start)  # restart from phi
        elif t < k or inner_state == "reset" or inner in STATELESS:
            # the inner rule restarted from phi with a fresh (or no) state repeats itself
            close(x, fresh[t % k])


@pytest.mark.parametrize("inner,inner_hyper", [("rule:uv.gd", {"alpha": 0.2, **GD}),
                                               ("rule:fo.sgd", {"alpha": 0.2})])
def test_lookahead_unrolled_sum_equals_recursion(layer, inner, inner_hyper):
    problem, x0 = quartic(layer, seed=2)
    k, alpha = 2, 0.3
    rule, inner_rule = layer.rules.get("rule:meta.lookahead"), layer.rules.get(inner)
    oracle = layer.Oracle(problem)
    params, state, ends = dict(x0), rule.init(x0), []
    for t in range(1, 5 * k + 1):
        grads = problem.grad(params)
        if t % k == 0:  # theta_{j,k}: the fast weights after the k-th inner step
            u, _ = inner_rule.step(grads, inner_rule.init(params), params, oracle, **inner_hyper)
            ends.append({"x": layer.to_numpy(params["x"] + u["x"])})
        updates, state = rule.step(grads, state, params, oracle, inner=inner,
                                   inner_hyper=inner_hyper, k=k, alpha=alpha)
        params = {"x": params["x"] + updates["x"]}
        if t % k == 0:
            unrolled = meta.slow_weights_unrolled({"x": layer.to_numpy(x0["x"])}, ends, alpha)
            close(layer.to_numpy(state["phi"]["x"]), unrolled["x"])
            close(layer.to_numpy(params["x"]), unrolled["x"])
    # The printed exponents ((1-alpha)^{t-1} on theta_{0,k}, (1-alpha)^t on phi_0) are one lower
    # than the recursion's: with t+1 = 5 ends the printed sum is a different point.
    t = len(ends) - 1
    printed = alpha * sum((1 - alpha) ** (t - 1 - j) * ends[j]["x"] for j in range(1, t + 1))
    printed = printed + alpha * (1 - alpha) ** (t - 1) * ends[0]["x"]
    printed = printed + (1 - alpha) ** t * layer.to_numpy(x0["x"])
    assert not np.allclose(printed, layer.to_numpy(state["phi"]["x"]), rtol=1e-6)


# --- lookahead[as_printed]: the fast step at the previous fast iterate -----------------------

PRINTED = "rule:meta.lookahead[as_printed]"


@pytest.mark.parametrize("inner,inner_hyper", INNERS)
@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_lookahead_as_printed_with_k_one_is_the_reading(layer, inner, inner_hyper, alpha):
    """k = 1: every fast step is the first of its cycle (i = 0), taken from phi_t, where the
    printed theta_{t,-1} is undefined and theta_{t,0} = phi_t is used."""
    problem, x0 = quartic(layer, seed=7)
    common = {"inner": inner, "inner_hyper": inner_hyper, "k": 1, "alpha": alpha}
    printed = trajectory(layer, PRINTED, problem, x0, 8, **common)
    close(printed, trajectory(layer, "rule:meta.lookahead", problem, x0, 8, **common))


def test_lookahead_as_printed_hand_computed_sgd(layer):
    """f = (2 x_1^2 + x_2^2)/2 (g = (2 x_1, x_2)), inner rule:fo.sgd alpha 0.1, k = 3,
    alpha 0.5, from (1, -2). Fast steps theta_{i+1} = theta_i - 0.1 g(theta_{i-1}):
    step 1 (i = 0, from phi_0): (1, -2) - 0.1 (2, -2) = (0.8, -1.8);
    step 2 (at theta_0): (0.8, -1.8) - 0.1 (2, -2) = (0.6, -1.6);
    step 3 (at theta_1): (0.6, -1.6) - 0.1 (1.6, -1.8) = (0.44, -1.42), then
    phi_1 = (1, -2) + 0.5 ((0.44, -1.42) - (1, -2)) = (0.72, -1.71), the new fast weights;
    step 4 (i = 0 again, from phi_1): (0.72, -1.71) - 0.1 (1.44, -1.71) = (0.576, -1.539);
    step 5 (at theta_{1,0} = phi_1): (0.576, -1.539) - 0.1 (1.44, -1.71) = (0.432, -1.368).
    The Reading (gradient at the current iterate) reaches (0.64, -1.62) at step 2."""
    problem = Quartic(layer, [2.0, 1.0], [0.0, 0.0], q=0.0)
    x0 = {"x": layer.to_layer([1.0, -2.0])}
    hyper = {"inner": "rule:fo.sgd", "inner_hyper": {"alpha": 0.1}, "k": 3, "alpha": 0.5}
    expected = [[1.0, -2.0], [0.8, -1.8], [0.6, -1.6], [0.72, -1.71], [0.576, -1.539],
                [0.432, -1.368]]
    close(trajectory(layer, PRINTED, problem, x0, 5, **hyper), expected)
    reading = trajectory(layer, "rule:meta.lookahead", problem, x0, 2, **hyper)
    close(reading[2], [0.64, -1.62])
    # the state: phi after the synchronisation, prev = the fast weights of the last step
    rule, oracle = layer.rules.get(PRINTED), layer.Oracle(problem)
    params, state = dict(x0), rule.init(x0)
    for t in range(1, 5):
        updates, state = rule.step(problem.grad(params), state, params, oracle, **hyper)
        close(layer.to_numpy(state["prev"]["x"]), layer.to_numpy(params["x"]))
        params = {"x": params["x"] + updates["x"]}
        assert state["t"] == t
    close(layer.to_numpy(state["phi"]["x"]), [0.72, -1.71])
    assert set(state) == {"t", "phi", "prev", "inner"}


@pytest.mark.parametrize("inner,inner_hyper", [("rule:fo.sgd", {"alpha": 0.05}),
                                               ("rule:uv.newton", {"alpha": 0.7, "curv": "H"})])
def test_lookahead_as_printed_evaluates_the_inner_rule_at_the_previous_iterate(
        layer, inner, inner_hyper):
    """On the quartic (the Hessian moves): theta_{i+1} = theta_i + d(theta_{i-1}) with d the
    inner step (-alpha g, or -alpha H^{-1} g: Newton's curvature is taken at theta_{i-1}, so
    the inner rule gets params = theta_{i-1}), theta_{-1} := theta_0 = phi, k = 3."""
    problem, x0 = quartic(layer, seed=11)
    k, alpha, a = 3, 0.4, inner_hyper["alpha"]

    def d(x):
        g = problem.np_grad(x)
        return -a * (g if inner == "rule:fo.sgd" else np.linalg.solve(problem.np_hessian(x), g))

    phi = layer.to_numpy(x0["x"])
    x, prev, xs = phi.copy(), phi.copy(), [phi.copy()]
    for t in range(1, 3 * k + 2):
        step = d(x if (t - 1) % k == 0 else prev)
        prev, x = x, x + step
        if t % k == 0:
            phi = phi + alpha * (x - phi)
            x = phi.copy()
        xs.append(x)
    printed = trajectory(layer, PRINTED, problem, x0, 3 * k + 1, inner=inner,
                         inner_hyper=inner_hyper, k=k, alpha=alpha)
    close(printed, xs)
    reading = trajectory(layer, "rule:meta.lookahead", problem, x0, 3 * k + 1, inner=inner,
                         inner_hyper=inner_hyper, k=k, alpha=alpha)
    assert not np.allclose(printed[-1], reading[-1], rtol=1e-6)


@pytest.mark.parametrize("rule_id", ["rule:meta.lookahead", PRINTED])
@pytest.mark.parametrize("hyper,match", [
    ({"alpha": 1.5}, "alpha"), ({"alpha": -0.1}, "alpha"), ({"k": 0}, "k"),
    ({"inner_state": "drop"}, "inner_state"), ({"inner": "rule:uv.nope"}, "inner"),
])
def test_lookahead_invalid_hyper(layer, rule_id, hyper, match):
    problem, x0 = quartic(layer)
    rule = layer.rules.get(rule_id)
    base = {"inner": "rule:uv.gd", "inner_hyper": {"alpha": 0.1, **GD}}
    with pytest.raises(ValueError, match=match):
        rule.step(problem.grad(x0), rule.init(x0), x0, layer.Oracle(problem),
                  **{**base, **hyper})


def test_invalid_hyper_messages_match_the_shared_wording(layer):
    problem, x0 = quartic(layer)
    rule = layer.rules.get("rule:meta.lookahead")
    with pytest.raises(ValueError, match=r"Invalid alpha: 2.0 \(must be in \[0, 1\]\)"):
        rule.step(problem.grad(x0), rule.init(x0), x0, layer.Oracle(problem),
                  inner="rule:fo.sgd", alpha=2.0)
    rule = layer.rules.get("rule:meta.schedules")
    with pytest.raises(ValueError, match="Invalid schedule"):
        rule.step(problem.grad(x0), rule.init(x0), x0, layer.Oracle(problem),
                  inner="rule:fo.sgd", schedule="exp")


def test_wrappers_type_errors_and_non_finite_grads(layer):
    problem, x0 = quartic(layer)
    oracle = layer.Oracle(problem)
    for rule_id in layer.rules.ids("rule:meta.*"):
        rule = layer.rules.get(rule_id)
        with pytest.raises(TypeError, match="inner_hyper"):
            rule.step(problem.grad(x0), rule.init(x0), x0, oracle, inner="rule:uv.gd",
                      inner_hyper=[("alpha", 1.0)])
        with pytest.raises(TypeError, match="unknown"):
            rule.step(problem.grad(x0), rule.init(x0), x0, oracle, inner="rule:uv.gd",
                      inner_hyper={"beta": 1.0})
        with pytest.raises(ValueError, match="non-finite"):
            rule.step({"x": layer.to_layer([np.nan, 0, 0])}, rule.init(x0), x0, oracle,
                      inner="rule:uv.gd", inner_hyper=GD)


# --- every_k ----------------------------------------------------------------------------------


@given(k=st.integers(min_value=1, max_value=7), T=st.integers(min_value=1, max_value=40))
def test_fires_pattern_and_refresh_count(layer, k, T):
    assert [t for t in range(1, T + 1) if meta.fires(t, k)] == list(range(1, T + 1, k))
    problem, x0 = quartic(layer)
    rule = layer.rules.get("rule:meta.every_k")
    oracle, params, state = layer.Oracle(problem), dict(x0), rule.init(x0)
    for _ in range(T):
        updates, state = rule.step(problem.grad(params), state, params, oracle,
                                   inner="rule:uv.gd", inner_hyper={"alpha": 0.01, **GD}, k=k)
        params = {"x": params["x"] + updates["x"]}
    assert (state["t"], state["n"]) == (T, math.ceil(T / k))


def test_fires_rejects_bad_counters():
    with pytest.raises(ValueError, match="t"):
        meta.fires(0, 2)
    with pytest.raises(ValueError, match="k"):
        meta.fires(1, 0)
    with pytest.raises(TypeError, match="k"):
        meta.fires(1, 1.5)


@pytest.mark.parametrize("inner,inner_hyper", [
    ("rule:uv.newton", {"alpha": 0.7, "curv": "H"}),
    ("rule:uv.gd", {"alpha": 0.5, "L_source": "lambda_max", "curv": "H"}),
    ("rule:fo.adam", {"alpha": 0.05}),
])
def test_every_k_with_k_one_is_the_inner_rule(layer, inner, inner_hyper):
    problem, x0 = quartic(layer, seed=3)
    wrapped = trajectory(layer, "rule:meta.every_k", problem, x0, 8, inner=inner,
                         inner_hyper=inner_hyper, k=1)
    close(wrapped, trajectory(layer, inner, problem, x0, 8, **inner_hyper))


@pytest.mark.parametrize("k,alpha,seed,apart", [(3, 0.8, 4, True), (4, 0.9, 9, False)])
def test_lazy_newton_reuses_the_hessian_of_the_last_refresh(layer, k, alpha, seed, apart):
    """``apart``: the case ends away from Newton's 10th iterate (the other converges too)."""
    problem, x0 = quartic(layer, seed=seed)
    lazy = trajectory(layer, "rule:meta.every_k", problem, x0, 10, inner="rule:uv.newton",
                      inner_hyper={"alpha": alpha, "curv": "H"}, k=k)
    x = layer.to_numpy(x0["x"])
    for t in range(1, 11):
        if meta.fires(t, k):
            H = problem.np_hessian(x)
        x = x - alpha * np.linalg.solve(H, problem.np_grad(x))
        close(lazy[t], x)
    assert [t for t in range(1, 11) if meta.fires(t, k)] == {3: [1, 4, 7, 10], 4: [1, 5, 9]}[k]
    if apart:
        newton = trajectory(layer, "rule:uv.newton", problem, x0, 10, alpha=alpha, curv="H")
        assert not np.allclose(lazy[-1], newton[-1])


def test_lazy_oracle_caches_hvp_by_call_order(layer):
    problem, x0 = quartic(layer)
    calls = []

    class Counting(layer.Oracle):
        def hvp(self, params, v):
            calls.append(1)
            return super().hvp(params, v)

    oracle = Counting(problem)
    v1, v2 = {"x": layer.to_layer(np.ones(3))}, {"x": layer.to_layer(np.arange(3.0))}
    fresh = meta.LazyOracle(oracle, {}, refresh=True)
    h1, h2 = fresh.hvp(x0, v1), fresh.hvp(x0, v2)
    stale = meta.LazyOracle(oracle, fresh.cache, refresh=False)
    moved = {"x": x0["x"] + 1.0}
    assert stale.hvp(moved, v2)["x"] is h1["x"] and stale.hvp(moved, v1)["x"] is h2["x"]
    assert len(calls) == 2
    assert float(stale.loss(moved)) == float(problem.loss(moved))  # the rest passes through


# --- weight_decay -----------------------------------------------------------------------------

CONVENTIONS = meta.CONVENTIONS


@pytest.mark.parametrize("source", CONVENTIONS)
@pytest.mark.parametrize("target", CONVENTIONS)
def test_weight_decay_conventions_agree_through_the_converter(layer, source, target):
    """Around plain gradient descent (uv.gd, L = 1: d = -eta g) all four conventions are the
    same method once wd is converted (coupled included: theta - eta(g + wd theta))."""
    problem, x0 = quartic(layer, seed=5)
    eta, eta0, wd = 0.05, 0.2, 0.3
    common = {"inner": "rule:uv.gd", "inner_hyper": {"alpha": eta, **GD}, "eta0": eta0}
    wd_target = meta.convert_weight_decay(wd, source, target, eta=eta, eta0=eta0)
    a = trajectory(layer, "rule:meta.weight_decay", problem, x0, 6, wd=wd, convention=source,
                   **common)
    b = trajectory(layer, "rule:meta.weight_decay", problem, x0, 6, wd=wd_target,
                   convention=target, **common)
    close(a, b)
    assert meta.convert_weight_decay(wd_target, target, source, eta, eta0) == pytest.approx(
        wd, rel=1e-14)


def test_weight_decay_per_step_decays():
    assert meta.decay_per_step("decoupled_lr", 0.1, eta=0.5) == pytest.approx(0.05)
    assert meta.decay_per_step("decoupled_unscaled", 0.1) == 0.1
    assert meta.decay_per_step("sassha_code", 0.1, eta=0.05, eta0=0.5) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="eta0"):
        meta.decay_per_step("sassha_code", 0.1, eta=0.05)
    with pytest.raises(ValueError, match="convention"):
        meta.decay_per_step("l2", 0.1, eta=0.05)


def test_converter_roundtrip():
    for a in meta.CONVENTIONS:
        for b in meta.CONVENTIONS:
            wd = meta.convert_weight_decay(0.3, a, b, eta=0.1, eta0=0.4)
            assert meta.convert_weight_decay(wd, b, a, eta=0.1, eta0=0.4) == pytest.approx(0.3)


def test_decoupled_lr_around_adam_is_adamw(layer):
    problem, x0 = quartic(layer, seed=6)
    alpha, lam = 0.02, 0.1
    wrapped = trajectory(layer, "rule:meta.weight_decay", problem, x0, 12, inner="rule:fo.adam",
                         inner_hyper={"alpha": alpha}, wd=lam, convention="decoupled_lr")
    close(wrapped, trajectory(layer, "rule:fo.adamw", problem, x0, 12, alpha=alpha, lam=lam))


def test_coupled_adds_wd_theta_to_the_gradient_before_the_inner_rule(layer):
    problem, x0 = quartic(layer, seed=7)
    wd = 0.4
    wrapped = trajectory(layer, "rule:meta.weight_decay", problem, x0, 5, inner="rule:uv.newton",
                         inner_hyper={"alpha": 1.0, "curv": "H"}, wd=wd, convention="coupled")
    x = layer.to_numpy(x0["x"])
    for t in range(1, 6):  # the Hessian of the problem, not of the decayed objective
        g = problem.np_grad(x) + wd * x
        x = x - np.linalg.solve(problem.np_hessian(x), g)
        close(wrapped[t], x)


@pytest.mark.parametrize("hyper,match", [({"wd": -1.0}, "wd"), ({"convention": "l2"},
                                                                "convention"),
                                         ({"eta": 0.0, "convention": "decoupled_lr"}, "eta")])
def test_weight_decay_invalid_hyper(layer, hyper, match):
    problem, x0 = quartic(layer)
    rule = layer.rules.get("rule:meta.weight_decay")
    with pytest.raises(ValueError, match=match):
        rule.step(problem.grad(x0), rule.init(x0), x0, layer.Oracle(problem),
                  inner="rule:uv.gd", inner_hyper=GD, **hyper)


# --- schedules: the pure functions (layer-free) -----------------------------------------------


def test_schedule_closed_forms():
    base = 0.4
    assert meta.cosine_lr(0, base, 10) == base
    assert meta.cosine_lr(5, base, 10, 0.1) == pytest.approx(0.25, rel=1e-15)
    assert meta.cosine_lr(10, base, 10, 0.1) == pytest.approx(0.1, rel=1e-15)
    assert [meta.step_lr(e, 1.0, 3, 0.5) for e in range(7)] == [1, 1, 1, .5, .5, .5, .25]
    assert meta.multistep_lr(79, 1.0, (80, 120), 0.1) == 1.0
    assert meta.multistep_lr(80, 1.0, (80, 120), 0.1) == pytest.approx(0.1)
    assert meta.multistep_lr(120, 1.0, (80, 120), 0.1) == pytest.approx(0.01)
    assert meta.inv_sqrt_lr(3, base) == pytest.approx(0.2)
    assert meta.poly_lr(5, base, 10, 2.0) == pytest.approx(0.1)
    assert meta.poly_lr(12, base, 10, 2.0) == 0.0
    warm = [meta.warmup_cosine_lr(e, base, 4, 20) for e in range(21)]
    assert warm[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])
    assert warm[20] == pytest.approx(0.0, abs=1e-16) and np.all(np.diff(warm[4:]) <= 0)


@pytest.mark.parametrize("preset,milestones,gamma", [
    ("resnet_cifar", (80, 120), 0.1), ("wrn_text", (80, 160), 0.2),
    ("wrn_code", (60, 120, 160), 0.2), ("imagenet_resnet50", (30, 60), 0.1)])
def test_multistep_presets_of_004_app_e(preset, milestones, gamma):
    lrs = [meta.schedule_lr(e, 1.0, "multistep", milestones_preset=preset) for e in range(200)]
    drops = [e for e in range(1, 200) if lrs[e] < lrs[e - 1]]
    assert tuple(drops) == milestones
    assert lrs[-1] == pytest.approx(gamma ** len(milestones), rel=1e-14)


def test_plateau_step_reduces_after_patience_bad_epochs():
    lr, best, bad, cool = 1.0, math.inf, 0, 0
    seen = []
    for metric in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0]:
        lr, best, bad, cool = meta.plateau_step(metric, lr, best, bad, cool)
        seen.append(lr)
    # patience 3: the 4th consecutive epoch without improvement halves the rate (factor 0.5)
    assert seen == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]


SCHEDULERS = [
    ({"schedule": "cosine", "T_max": 10, "eta_min": 0.01},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
    ({"schedule": "step", "step_size": 3, "gamma": 0.5},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    ({"schedule": "multistep", "milestones": [2, 5, 9], "gamma": 0.3},
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3)),
    ({"schedule": "poly", "T_max": 30, "power": 2.0},
     lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=30, power=2.0)),
]


@pytest.mark.parametrize("hyper,make_sched", SCHEDULERS)
def test_schedule_functions_equal_torch_schedulers(hyper, make_sched):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = make_sched(opt)
    schedule = hyper["schedule"]
    options = {k: v for k, v in hyper.items() if k != "schedule"}
    for e in range(25):
        assert meta.schedule_lr(e, 0.2, schedule, **options) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()


def test_warmup_cosine_equals_torch_linear_then_cosine():
    """Warm-up (e+1)/W for e < W, then cosine over T_max - W: torch's LambdaLR with the same
    closed form is not an independent oracle, so compare with LinearLR + CosineAnnealingLR."""
    W, T = 4, 20
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / W, end_factor=1.0,
                                          total_iters=W - 1),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T - W)], milestones=[W])
    for e in range(T):
        assert meta.warmup_cosine_lr(e, 0.3, W, T) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()


# --- schedules: the wrapper -------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "multistep", "warmup_cosine",
                                      "inv_sqrt", "poly"])
@pytest.mark.parametrize("spe", [1, 2])
def test_schedule_wrapper_sets_the_inner_learning_rate(layer, schedule, spe):
    problem, x0 = quartic(layer, seed=8)
    extra = {"T_max": 12, "step_size": 2, "gamma": 0.5, "milestones": [1, 3], "warmup_steps": 2}
    wrapped = trajectory(layer, "rule:meta.schedules", problem, x0, 10, inner="rule:uv.gd",
                         inner_hyper=GD, schedule=schedule, base=0.1, steps_per_epoch=spe,
                         **extra)
    x = layer.to_numpy(x0["x"])
    for t in range(1, 11):
        lr = meta.schedule_lr((t - 1) // spe, 0.1, schedule, **extra)
        x = x - lr * problem.np_grad(x)
        close(wrapped[t], x)


def test_schedule_wrapper_plateau_follows_the_oracle_loss(layer):
    problem = layer.quadratic(np.diag([4.0]), np.zeros(1))
    x0 = {"x": layer.to_layer([1.0])}
    # alpha = 0.5 on curvature 4 gives x <- -x: the loss stalls until the rate is reduced
    wrapped = trajectory(layer, "rule:meta.schedules", problem, x0, 12, inner="rule:uv.gd",
                         inner_hyper=GD, schedule="plateau", base=0.5, patience=1,
                         threshold=0.0)
    x, lr, best, bad, cool = np.array([1.0]), 0.5, math.inf, 0, 0
    for t in range(1, 13):
        if t > 1:
            loss = float(2.0 * x[0] ** 2)  # 1/2 x^T diag(4) x
            lr, best, bad, cool = meta.plateau_step(loss, lr, best, bad, cool, patience=1,
                                                    threshold=0.0)
        x = x - lr * 4.0 * x
        close(wrapped[t], x)
    assert lr < 0.5


def test_schedule_dotted_lr_name_reaches_nested_wrappers(layer):
    """schedules(weight_decay(gd)) with lr_name 'inner_hyper.alpha': AdamW-style decay follows
    the scheduled rate (decoupled_lr with eta = None reads the inner alpha)."""
    problem, x0 = quartic(layer, seed=9)
    wd, base = 0.2, 0.1
    wrapped = trajectory(
        layer, "rule:meta.schedules", problem, x0, 6, inner="rule:meta.weight_decay",
        inner_hyper={"inner": "rule:uv.gd", "inner_hyper": GD, "wd": wd,
                     "convention": "decoupled_lr"},
        lr_name="inner_hyper.alpha", schedule="step", base=base, step_size=2, gamma=0.5)
    x = layer.to_numpy(x0["x"])
    for t in range(1, 7):
        lr = meta.step_lr(t - 1, base, 2, 0.5)
        x = x * (1 - lr * wd) - lr * problem.np_grad(x)
        close(wrapped[t], x)


@pytest.mark.parametrize("hyper,match", [
    ({"schedule": "linear"}, "schedule"), ({"factor": 1.5, "schedule": "plateau"}, "factor"),
    ({"schedule": "multistep"}, "milestones"), ({"T_max": 0}, "T_max"),
    ({"T_max_mode": "own_epoch_count"}, "epochs"), ({"base": -1.0}, "base"),
    ({"milestones_preset": "vit", "schedule": "multistep"}, "milestones_preset"),
])
def test_schedules_invalid_hyper(layer, hyper, match):
    problem, x0 = quartic(layer)
    rule = layer.rules.get("rule:meta.schedules")
    with pytest.raises(ValueError, match=match):
        rule.step(problem.grad(x0), rule.init(x0), x0, layer.Oracle(problem),
                  inner="rule:uv.gd", inner_hyper=GD, **hyper)


def test_cosine_own_epoch_count_uses_epochs(layer):
    problem, x0 = quartic(layer)
    a = trajectory(layer, "rule:meta.schedules", problem, x0, 4, inner="rule:uv.gd",
                   inner_hyper=GD, schedule="cosine", base=0.1, T_max_mode="own_epoch_count",
                   epochs=5)
    b = trajectory(layer, "rule:meta.schedules", problem, x0, 4, inner="rule:uv.gd",
                   inner_hyper=GD, schedule="cosine", base=0.1, T_max=5)
    close(a, b)


# --- torch only: whole trajectories against torch.optim ---------------------------------------


def torch_run(problem, x0, steps: int, make_opt, make_sched=None, metric=False):
    """torch.optim on the same problem: returns the iterates and the learning rates used."""
    x = torch.nn.Parameter(x0["x"].clone())
    opt = make_opt([x])
    sched = make_sched(opt) if make_sched else None
    out, lrs = [x.detach().numpy().copy()], []
    for _ in range(steps):
        opt.zero_grad()
        problem.loss({"x": x}).backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        out.append(x.detach().numpy().copy())
        if sched is not None:
            if metric:
                with torch.no_grad():
                    sched.step(float(problem.loss({"x": x})))
            else:
                sched.step()
    return out, lrs


@pytest.mark.parametrize("hyper,make_sched", SCHEDULERS)
def test_schedule_wrapper_equals_sgd_driven_by_the_torch_scheduler(torch_layer, hyper,
                                                                   make_sched):
    problem, x0 = quartic(torch_layer, seed=1)
    ours = trajectory(torch_layer, "rule:meta.schedules", problem, x0, 25, inner="rule:fo.sgd",
                      inner_hyper={"alpha": 0.05}, **hyper)
    theirs, _ = torch_run(problem, x0, 25, lambda p: torch.optim.SGD(p, lr=0.05), make_sched)
    close(ours, theirs)


@pytest.mark.parametrize("patience,cooldown,min_lr", [(3, 0, 0.0), (1, 2, 0.0), (0, 0, 0.02)])
def test_plateau_wrapper_equals_reduce_lr_on_plateau(torch_layer, patience, cooldown, min_lr):
    """f(x) = (4 x_1^2 + x_2^2)/2: SGD with lr 0.5 flips x_1 and halves x_2, so the loss stalls
    once x_2 is small. torch steps the scheduler on the loss after each epoch, the wrapper
    evaluates oracle.loss at the start of the next one: the same number."""
    problem = Quartic(torch_layer, [4.0, 1.0], [0.0, 0.0], q=0.0)
    x0 = {"x": torch_layer.to_layer([0.3, 1.0])}
    kwargs = {"factor": 0.5, "patience": patience, "cooldown": cooldown, "min_lr": min_lr}
    rule = torch_layer.rules.get("rule:meta.schedules")
    oracle = torch_layer.Oracle(problem)
    params = dict(x0)
    state, ours = rule.init(params), [params["x"].numpy().copy()]
    lrs = []
    for _ in range(30):
        updates, state = rule.step(problem.grad(params), state, params, oracle,
                                   inner="rule:fo.sgd", inner_hyper={"alpha": 0.5},
                                   schedule="plateau", **kwargs)
        lrs.append(state["lr"])
        params = {"x": params["x"] + updates["x"]}
        ours.append(params["x"].numpy().copy())
    theirs, torch_lrs = torch_run(
        problem, x0, 30, lambda p: torch.optim.SGD(p, lr=0.5),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kwargs), metric=True)
    assert lrs == pytest.approx(torch_lrs, rel=1e-15)
    assert min(lrs) < 0.5  # the case exercises a reduction
    close(ours, theirs)


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5])
def test_decoupled_lr_around_adam_equals_torch_adamw(torch_layer, lam):
    problem, x0 = quartic(torch_layer, seed=3)
    ours = trajectory(torch_layer, "rule:meta.weight_decay", problem, x0, 30,
                      inner="rule:fo.adam", inner_hyper={"alpha": 0.02}, wd=lam,
                      convention="decoupled_lr")
    theirs, _ = torch_run(problem, x0, 30,
                          lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=lam))
    close(ours, theirs)


def test_coupled_around_sgd_equals_torch_sgd_weight_decay(torch_layer):
    problem, x0 = quartic(torch_layer, seed=4)
    ours = trajectory(torch_layer, "rule:meta.weight_decay", problem, x0, 20,
                      inner="rule:fo.sgd", inner_hyper={"alpha": 0.05}, wd=0.3,
                      convention="coupled")
    theirs, _ = torch_run(problem, x0, 20,
                          lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.3))
    close(ours, theirs)


def test_coupled_around_adam_equals_torch_adam_weight_decay(torch_layer):
    """torch.optim.Adam's weight_decay is L2 added to the gradient: the coupled convention."""
    problem, x0 = quartic(torch_layer, seed=5)
    ours = trajectory(torch_layer, "rule:meta.weight_decay", problem, x0, 20,
                      inner="rule:fo.adam", inner_hyper={"alpha": 0.02}, wd=0.3,
                      convention="coupled")
    theirs, _ = torch_run(problem, x0, 20,
                          lambda p: torch.optim.Adam(p, lr=0.02, weight_decay=0.3))
    close(ours, theirs)
