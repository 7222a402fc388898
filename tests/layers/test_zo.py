"""The zeroth-order family of both layers: `est:zo_*` (INVENTORY §3.9) and `rule:zo.*` (§2.3)
against closed forms on quadratics.

On L(x) = 1/2 (x - x*)^T A (x - x*) + c, with g = A (theta - x*), every difference is a
polynomial in the step: L(theta + w) - L(theta) = g^T w + 1/2 w^T A w. Hence the oracles:
forward coordinate error A_ii h/2, central error 0; direction quotient u^T g + h/2 u^T A u;
two-point quotient z^T g exactly; printed ZO-HVP g^T z/h + z^T A z/2 + z^T A u. They hold to
rounding, i.e. to about eps |L(theta + h u)| / h absolutely, where |L(theta + h u)| <=
|L| + O(10) (1 + |u|^2) (the evaluation error does not shrink with a short probe); the cases
keep |L| = O(10) and h >= 1e-4, so the float64 tolerances (1e-9 relative, plus an absolute
1e-9 |L| / step) hold with margin. torch float32 cases use steps >= 1e-2 and 2e-3 relative
plus 1e-4 |L| / step (eps32 ~ 1.2e-7, times ~100 for the quadratic form and the point's
rounding). Evaluation counts are checked against a counting loss; bit-exact regeneration from
seeds. Expected values are NumPy closed forms (or the layer's own seeded probes), never the
other layer's numbers.
Torch only: ZO-SGD against torch.optim.SGD, the replayed NumPy sampler, tensor-only inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

CASES = st.tuples(st.integers(min_value=1, max_value=6), st.integers(0, 2**32 - 1))
EXPONENTS = st.floats(min_value=-4.0, max_value=0.0)
DISTS = ("gaussian", "uniform_sphere", "sqrtP_sphere", "rademacher")
TOL = {"float64": (1e-9, 1e-9), "float32": (2e-3, 1e-4)}


def zo(layer):
    return layer.module("estimators.zeroth_order")


def step_size(layer, e: float) -> float:
    """10^e: float64 steps in [1e-4, 1], float32 in [1e-2, 1]."""
    return float(10.0 ** (e if layer.dtype == "float64" else e / 2))


def quadratic(layer, case):
    """A (SPD, eigenvalues in [0.1, 10]), x*, theta, c and L on the flat vector: L and theta in
    the layer (its dtype), the rest NumPy float64 (L64 = L(theta) in float64)."""
    n, seed = case
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * 10.0 ** rng.uniform(-1, 1, n)) @ Q.T
    A = 0.5 * (A + A.T)
    x_star, theta, c = rng.standard_normal(n), rng.standard_normal(n), float(rng.normal())
    A_l, x_l = layer.to_layer(A), layer.to_layer(x_star)

    def L(v):
        r = v - x_l
        return 0.5 * (r @ (A_l @ r)) + c

    r = theta - x_star
    return {"A": A, "x_star": x_star, "theta": layer.to_layer(theta), "c": c, "L": L,
            "g": A @ r, "rng": rng, "L64": float(0.5 * r @ A @ r + c)}


def close(got, want, scale, step, dtype="float64"):
    """|got - want| <= rel |want| + abs scale / step (rounding of a difference quotient)."""
    rel, absolute = TOL[dtype]
    got, want = np.asarray(got), np.asarray(want)
    bound = rel * np.abs(want) + absolute * scale / step
    assert np.all(np.abs(got - want) <= bound), (got, want, bound)


def counting(L):
    calls = []

    def f(v):
        calls.append(v)
        return L(v)

    return f, calls


# --- est:zo_coord ----------------------------------------------------------------------------


@given(CASES, EXPONENTS)
def test_coord_forward_error_is_half_h_diag_and_central_is_exact(typed_layer, case, e):
    layer = typed_layer
    h = step_size(layer, e)
    q = quadratic(layer, case)
    scale = abs(q["L64"]) + 10.0
    L, calls = counting(q["L"])
    forward = layer.estimators.get("est:zo_coord")(L, q["theta"], h=h)
    assert forward["evaluations"] == len(calls) == case[0] + 1
    assert forward["grad"].dtype == q["theta"].dtype
    error = layer.to_numpy(forward["grad"]) - q["g"]
    close(error, np.diag(q["A"]) * h / 2, scale, h, layer.dtype)  # 002 §2.4.1, coordinate
    L, calls = counting(q["L"])
    central = zo(layer).zo_coord(L, q["theta"], h=h, central=True)
    assert central["evaluations"] == len(calls) == 2 * case[0]
    close(layer.to_numpy(central["grad"]), q["g"], scale, h, layer.dtype)
    np.testing.assert_array_equal(layer.to_numpy(central["grad"]),
                                  layer.to_numpy(central["quotients"]))


# --- est:zo_direction ------------------------------------------------------------------------


@given(CASES, EXPONENTS, st.sampled_from([0, 1, 4]))
def test_direction_equals_printed_formula_and_per_draw_limit(typed_layer, case, e, K):
    layer = typed_layer
    h = step_size(layer, e)
    q = quadratic(layer, case)
    P = case[0]
    u = q["rng"].standard_normal((K, P) if K else (P,))
    L, calls = counting(q["L"])
    out = zo(layer).zo_direction(L, q["theta"], layer.to_layer(u), h=h)
    assert out["evaluations"] == len(calls) == max(K, 1) + 1
    assert np.shape(layer.to_numpy(out["quotients"])) == (() if K == 0 else (K,))
    # the printed formula computed independently, draw by draw, then averaged
    theta = q["theta"]
    printed = [layer.to_numpy((q["L"](theta + h * uk) - q["L"](theta)) / h * uk)
               for uk in layer.to_layer(np.atleast_2d(u))]
    # a mean over draws can cancel: float32 entries are compared relative to the terms' size
    atol = 0.0 if layer.dtype == "float64" else 1e-6 * np.abs(printed).max()
    np.testing.assert_allclose(layer.to_numpy(out["grad"]), np.mean(printed, axis=0),
                               rtol=1e-12 if layer.dtype == "float64" else 1e-5, atol=atol)
    # per draw: q_k = u_k^T g + h/2 u_k^T A u_k, i.e. -> (u^T g) u as h -> 0
    U = np.atleast_2d(u)
    scale = abs(q["L64"]) + 10.0
    exact = U @ q["g"] + 0.5 * h * np.einsum("ki,ij,kj->k", U, q["A"], U)
    close(np.atleast_1d(layer.to_numpy(out["quotients"])), exact,
          scale * (1 + np.sum(U**2, axis=1)), h, layer.dtype)


def test_direction_limit_on_a_non_quadratic(layer):
    """L = log sum exp(B theta): (q - u^T g) / h -> u^T H u / 2 (a first-order error in h)."""
    rng = np.random.default_rng(5)
    B, theta, u = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(3)
    xp, B_l = layer.xp, layer.to_layer(B)

    def L(v):
        s = B_l @ v
        return xp.log(xp.sum(xp.exp(s - s.max()))) + s.max()

    p = np.exp(B @ theta - np.max(B @ theta))
    p /= p.sum()
    g = B.T @ p
    H = B.T @ (np.diag(p) - np.outer(p, p)) @ B
    for h in (1e-2, 1e-3, 1e-4):
        out = zo(layer).zo_direction(L, layer.to_layer(theta), layer.to_layer(u), h=h)
        q = float(layer.to_numpy(out["quotients"]))
        assert abs((q - u @ g) / h - 0.5 * u @ H @ u) < 5 * h * np.linalg.norm(u) ** 3 + 1e-7


@pytest.mark.parametrize("u_dist", DISTS)
@pytest.mark.parametrize("n_dirs", [1, 3])
def test_direction_seed_draws_the_rule_probes(layer, u_dist, n_dirs):
    q = quadratic(layer, (5, 11))
    out = zo(layer).zo_direction(q["L"], q["theta"], seed=42, u_dist=u_dist, n_dirs=n_dirs,
                                 h=1e-3)
    dist = {"uniform_sphere": "sphere"}.get(u_dist, u_dist)
    U = np.stack([layer.probe(dist, (5,), 42 + k) for k in range(n_dirs)])
    again = zo(layer).zo_direction(q["L"], q["theta"], layer.to_layer(U if n_dirs > 1 else U[0]),
                                   h=1e-3)
    np.testing.assert_array_equal(layer.to_numpy(out["grad"]), layer.to_numpy(again["grad"]))
    norms = np.linalg.norm(U, axis=1)
    if u_dist == "uniform_sphere":
        np.testing.assert_allclose(norms, 1.0, rtol=1e-14)
    elif u_dist in ("sqrtP_sphere", "rademacher"):
        np.testing.assert_allclose(norms, np.sqrt(5), rtol=1e-14)


# --- est:zo_two_point ------------------------------------------------------------------------


@given(CASES, EXPONENTS, st.sampled_from([0, 1, 3]))
def test_two_point_each_draw_is_zTg_z(typed_layer, case, e, K):
    layer = typed_layer
    eps = step_size(layer, e)
    q = quadratic(layer, case)
    P = case[0]
    z = q["rng"].standard_normal((K, P) if K else (P,))
    L, calls = counting(q["L"])
    out = layer.estimators.get("est:zo_two_point")(L, q["theta"], layer.to_layer(z), eps=eps)
    Z = np.atleast_2d(z)
    assert out["evaluations"] == len(calls) == 2 * len(Z)
    quotients = np.atleast_1d(layer.to_numpy(out["quotients"]))
    scale = (abs(q["L64"]) + 10.0) * (1 + np.sum(Z**2, axis=1))
    close(quotients, Z @ q["g"], scale, eps, layer.dtype)  # MeZO display, per draw
    Z_used = layer.to_numpy(layer.to_layer(Z))  # z as the layer holds it (rounded in float32)
    per_draw = (quotients[:, None] * Z_used).mean(axis=0)
    if layer.dtype == "float64":
        rtol, atol = 1e-14, 1e-300
    else:
        rtol, atol = 1e-5, 1e-6 * np.abs(quotients[:, None] * Z_used).max()
    np.testing.assert_allclose(layer.to_numpy(out["grad"]), per_draw, rtol=rtol, atol=atol)
    assert np.shape(layer.to_numpy(out["quotients"])) == (() if K == 0 else (K,))


def test_two_point_regenerates_z_bit_exactly_from_the_seed(typed_layer):
    layer = typed_layer
    q = quadratic(layer, (6, 3))
    z1, z2 = layer.probe("gaussian", (6,), 1234), layer.probe("gaussian", (6,), 1234)
    np.testing.assert_array_equal(z1, z2)
    by_seed = zo(layer).zo_two_point(q["L"], q["theta"], seed=1234, eps=1e-2)
    by_array = zo(layer).zo_two_point(q["L"], q["theta"], layer.to_layer(z1), eps=1e-2)
    for key in ("grad", "quotients"):
        np.testing.assert_array_equal(layer.to_numpy(by_seed[key]), layer.to_numpy(by_array[key]))
    # a regenerator is asked again for every use of z: never stored by the estimator
    asked = []

    def regenerate():
        asked.append(1)
        return layer.to_layer(layer.probe("gaussian", (6,), 1234))

    by_regenerator = zo(layer).zo_two_point(q["L"], q["theta"], regenerate, eps=1e-2)
    np.testing.assert_array_equal(layer.to_numpy(by_regenerator["grad"]),
                                  layer.to_numpy(by_array["grad"]))
    assert len(asked) >= 3  # perturb +, perturb -, the product (plus one shape check)


# --- est:zo_hvp_printed ----------------------------------------------------------------------


@given(CASES, EXPONENTS, st.sampled_from([0, 2]))
def test_hvp_printed_closed_form_on_a_quadratic(layer, case, e, K):
    h = step_size(layer, e)
    q = quadratic(layer, case)
    P = case[0]
    shape = (K, P) if K else (P,)
    z, u = q["rng"].standard_normal(shape), q["rng"].standard_normal(shape)
    L, calls = counting(q["L"])
    out = layer.estimators.get("est:zo_hvp_printed")(L, q["theta"], layer.to_layer(z),
                                                      layer.to_layer(u), h=h)
    Z, U = np.atleast_2d(z), np.atleast_2d(u)
    assert out["evaluations"] == len(calls) == 2 * len(Z)
    # [L(th + hz + hu) - L(th + hu)]/h^2 = g^T z / h + z^T A z / 2 + z^T A u, exactly
    want = Z @ q["g"] / h + 0.5 * np.einsum("ki,ij,kj->k", Z, q["A"], Z)
    want += np.einsum("ki,ij,kj->k", Z, q["A"], U)
    scale = (abs(q["L64"]) + 10.0) * (1 + np.sum((Z + U) ** 2 + U**2, axis=1))
    value = layer.to_numpy(out["value"])
    close(np.atleast_1d(value), want, scale, h * h)
    assert np.shape(value) == shape[:-1]


# --- errors ------------------------------------------------------------------------------

BAD_OPTIONS = [
    (lambda zo, L, t, a: zo.zo_coord(L, t, h=0.0), ValueError, "h"),
    (lambda zo, L, t, a: zo.zo_coord(L, t, h=float("nan")), ValueError, "h"),
    (lambda zo, L, t, a: zo.zo_coord(L, t, central="yes"), TypeError, "central"),
    (lambda zo, L, t, a: zo.zo_direction(L, t, seed=1, u_dist="sphere"), ValueError, "u_dist"),
    (lambda zo, L, t, a: zo.zo_direction(L, t, seed=1, n_dirs=0), ValueError, "n_dirs"),
    (lambda zo, L, t, a: zo.zo_direction(L, t, seed=1, n_dirs=1.5), TypeError, "n_dirs"),
    (lambda zo, L, t, a: zo.zo_direction(L, t), ValueError, "seed"),
    (lambda zo, L, t, a: zo.zo_direction(L, t, a(np.ones(2))), ValueError, "u"),
    (lambda zo, L, t, a: zo.zo_two_point(L, t, eps=-1.0, seed=1), ValueError, "eps"),
    (lambda zo, L, t, a: zo.zo_two_point(L, t, eps=float("inf"), seed=1), ValueError, "eps"),
    (lambda zo, L, t, a: zo.zo_two_point(L, t, a(np.ones(3)), seed=1), ValueError, "seed"),
    (lambda zo, L, t, a: zo.zo_two_point(L, t, seed=-1), ValueError, "seed"),
    (lambda zo, L, t, a: zo.zo_two_point(L, t), ValueError, "seed"),
    (lambda zo, L, t, a: zo.zo_hvp_printed(L, t, a(np.ones(3)), a(np.ones((2, 3)))), ValueError,
     "z and u"),
    (lambda zo, L, t, a: zo.zo_direction(lambda v: np.nan, t, a(np.ones(3))), ValueError,
     "loss"),
    (lambda zo, L, t, a: zo.zo_two_point(lambda v: v.sum() / 0.0, t, seed=1), ValueError,
     "loss"),
]


@pytest.mark.parametrize(("call", "error", "name"), BAD_OPTIONS)
def test_bad_options_name_the_parameter(layer, call, error, name):
    q = quadratic(layer, (3, 0))
    with pytest.raises(error, match=name), np.errstate(divide="ignore", invalid="ignore"):
        call(zo(layer), q["L"], q["theta"], layer.to_layer)


def test_torch_estimators_take_tensors_only(torch_layer):
    q = quadratic(torch_layer, (3, 0))
    with pytest.raises(TypeError, match="theta"):
        zo(torch_layer).zo_coord(q["L"], q["theta"].numpy())


# --- rules -------------------------------------------------------------------------------


def problem(layer, n=4, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    A = M @ M.T / n + 0.5 * np.eye(n)
    prob = layer.quadratic(A, rng.standard_normal(n))
    return prob, {"x": layer.to_layer(rng.standard_normal(n))}, A


def draws(layer, seed: int, count: int = 1) -> list[int]:
    """The seeds the layer's oracle seeded with ``seed`` hands out."""
    oracle = layer.oracle(None, seed=seed)
    return [oracle.seed() for _ in range(count)]


@pytest.mark.parametrize("central", [False, True])
def test_zo_sgd_coord_is_gd_on_the_biased_gradient(layer, central):
    prob, params, A = problem(layer)
    rule = layer.rules.get("rule:zo.sgd")
    state = rule.init(params)
    for t in range(3):
        g = layer.to_numpy(prob.grad(params)["x"])
        updates, state = rule.step(None, state, params, layer.Oracle(prob), alpha=0.1,
                                   estimator="coord", h=1e-2, central=central)
        bias = 0.0 if central else np.diag(A) * 1e-2 / 2
        np.testing.assert_allclose(layer.to_numpy(updates["x"]), -0.1 * (g + bias), rtol=1e-9,
                                   atol=1e-12)
        params = {"x": params["x"] + updates["x"]}
        assert state["t"] == t + 1 and state["evaluations"] == (t + 1) * (8 if central else 5)


@pytest.mark.parametrize("u_dist", DISTS)
@pytest.mark.parametrize("rule_id", ["rule:zo.sgd", "rule:zo.sign"])
def test_zo_sgd_and_sign_direction_use_the_oracle_draws(layer, rule_id, u_dist):
    prob, params, A = problem(layer, 5, 1)
    grads = prob.grad(params)
    g = layer.to_numpy(grads["x"])
    rule = layer.rules.get(rule_id)
    updates, state = rule.step(grads, rule.init(params), params, layer.oracle(prob, seed=9),
                               alpha=0.05, u_dist=u_dist, n_dirs=2, h=1e-3)
    (s,) = draws(layer, 9)
    dist = {"uniform_sphere": "sphere"}.get(u_dist, u_dist)
    U = np.stack([layer.probe(dist, (5,), s + k) for k in range(2)])
    qk = U @ g + 0.5e-3 * np.einsum("ki,ij,kj->k", U, A, U)
    g_hat = qk @ U / 2
    want = -0.05 * (np.sign(g_hat) if rule_id.endswith("sign") else g_hat)
    np.testing.assert_allclose(layer.to_numpy(updates["x"]), want, rtol=1e-8, atol=1e-12)
    assert state["evaluations"] == 3


def test_mezo_is_zo_sgd_two_point_and_keeps_only_the_seed(typed_layer):
    layer = typed_layer
    prob, params, _ = problem(layer, 6, 2)
    mezo, sgd = layer.rules.get("rule:zo.mezo"), layer.rules.get("rule:zo.sgd")
    o1, o2 = layer.oracle(prob, seed=4), layer.oracle(prob, seed=4)
    s1, s2 = mezo.init(params), sgd.init(params)
    seeds = draws(layer, 4, 3)
    tol = 1e-8 if layer.dtype == "float64" else 1e-2
    atol = 0.0 if layer.dtype == "float64" else 1e-2
    before = layer.to_numpy(params["x"])
    for t in range(3):
        u1, s1 = mezo.step(None, s1, params, o1, alpha=0.02, eps=1e-2)
        u2, s2 = sgd.step(None, s2, params, o2, alpha=0.02, estimator="two_point", h=1e-2)
        np.testing.assert_array_equal(layer.to_numpy(u1["x"]), layer.to_numpy(u2["x"]))
        z = layer.probe("gaussian", (6,), seeds[t])
        g = layer.to_numpy(prob.grad(params)["x"])
        assert s1["seed"] == seeds[t] and set(s1) == {"t", "evaluations", "seed", "projected_grad"}
        np.testing.assert_allclose(layer.to_numpy(s1["projected_grad"]), z @ g, rtol=tol,
                                   atol=atol)
        np.testing.assert_allclose(layer.to_numpy(u1["x"]), -0.02 * (z @ g) * z, rtol=tol,
                                   atol=0.02 * atol)
        np.testing.assert_array_equal(layer.to_numpy(params["x"]), before)  # never mutated
        params = {"x": params["x"] + u1["x"]}
        before = layer.to_numpy(params["x"])
    assert s1["evaluations"] == 6 and s1["t"] == 3


@pytest.mark.parametrize("rule_id", ["rule:zo.adamm", "rule:zo.adamm[chen2019]"])
def test_adamm_recurrence_as_read(layer, rule_id):
    prob, params, A = problem(layer, 3, 5)
    rule = layer.rules.get(rule_id)
    hyper = {"alpha": 0.1, "beta1": 0.5, "beta2": 0.8, "delta": 1e-3, "estimator": "coord",
             "h": 1e-2, "central": True}
    state = rule.init(params)
    m = v = v_hat = np.zeros(3)
    for _ in range(4):
        g = layer.to_numpy(prob.grad(params)["x"])  # central coord is exact on a quadratic
        updates, state = rule.step(None, state, params, layer.Oracle(prob), **hyper)
        m, v = 0.5 * m + 0.5 * g, 0.8 * v + 0.2 * g**2
        v_hat = np.maximum(v_hat, v)
        denominator = np.sqrt((v_hat if "chen2019" in rule_id else v) + 1e-3)
        np.testing.assert_allclose(layer.to_numpy(updates["x"]), -0.1 * m / denominator,
                                   rtol=1e-8)
        np.testing.assert_allclose(layer.to_numpy(state["m"]), m, rtol=1e-8)
        params = {"x": params["x"] + updates["x"]}


@pytest.mark.parametrize(
    ("rule_id", "hyper", "error", "name"),
    [
        ("rule:zo.sgd", {"alpha": 0.0}, ValueError, "alpha"),
        ("rule:zo.sgd", {"estimator": "spsa"}, ValueError, "estimator"),
        ("rule:zo.sgd", {"u_dist": "cauchy"}, ValueError, "u_dist"),
        ("rule:zo.sgd", {"n_dirs": 0}, ValueError, "n_dirs"),
        ("rule:zo.sgd", {"h": -1.0}, ValueError, "h"),
        ("rule:zo.sgd", {"central": 1}, TypeError, "central"),
        ("rule:zo.sign", {"alpha": -1.0}, ValueError, "alpha"),
        ("rule:zo.sign", {"estimator": "spsa"}, ValueError, "estimator"),
        ("rule:zo.sign", {"u_dist": "sphere"}, ValueError, "u_dist"),
        ("rule:zo.sign", {"n_dirs": 2.0}, TypeError, "n_dirs"),
        ("rule:zo.sign", {"h": 0.0}, ValueError, "h"),
    ],
)
def test_rule_errors_name_the_parameter(layer, rule_id, hyper, error, name):
    prob, params, _ = problem(layer)
    rule = layer.rules.get(rule_id)
    with pytest.raises(error, match=name):
        rule.step(None, rule.init(params), params, layer.Oracle(prob), **hyper)


def test_rule_error_paths(layer):
    prob, params, _ = problem(layer)
    oracle = layer.Oracle(prob)
    mezo = layer.rules.get("rule:zo.mezo")
    with pytest.raises(ValueError, match="eps"):
        mezo.step(None, mezo.init(params), params, oracle, eps=0.0)
    for rule_id in ("rule:zo.sgd", "rule:zo.sign"):
        rule = layer.rules.get(rule_id)
        with pytest.raises(ValueError, match="grads"):
            rule.step({"x": layer.to_layer(np.full(4, np.nan))}, rule.init(params), params,
                      oracle)
        with pytest.raises(ValueError, match="params"):
            rule.step(None, rule.init(params), {"x": params["x"] * float("nan")}, oracle)
    adamm = layer.rules.get("rule:zo.adamm")
    with pytest.raises(ValueError, match="beta2"):
        adamm.step(None, adamm.init(params), params, oracle, beta2=1.0)


# --- torch only: torch.optim.SGD and the replayed NumPy draws ---------------------------------


class NumpySampler:
    """Seeds and probes from NumPy, as the cross-check replays them into the torch oracle."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.asked: list[tuple] = []

    def seed(self) -> int:
        return int(self.rng.integers(0, 2**63 - 1))

    def probe(self, dist, shape, seed):
        self.asked.append((dist, shape, seed))
        return np.random.default_rng(seed).standard_normal(shape)


def test_zo_sgd_coord_central_matches_torch_optim_sgd(torch_layer):
    prob, params, _ = problem(torch_layer, 5, 3)
    rule = torch_layer.rules.get("rule:zo.sgd")
    state = rule.init(params)
    x = params["x"].clone().requires_grad_(True)
    opt = torch.optim.SGD([x], lr=0.05)
    for _ in range(4):
        updates, state = rule.step(None, state, params, torch_layer.Oracle(prob), alpha=0.05,
                                   estimator="coord", h=1e-2, central=True)
        params = {"x": params["x"] + updates["x"]}
        opt.zero_grad()
        prob.loss({"x": x}).backward()
        opt.step()
        torch.testing.assert_close(params["x"], x.detach(), rtol=1e-9, atol=1e-11)
    assert state == {"t": 4, "evaluations": 40}


@pytest.mark.parametrize("u_dist", DISTS)
def test_zo_sgd_direction_and_two_point_ask_seed_then_probes(torch_layer, u_dist):
    prob, params, A = problem(torch_layer, 4, 1)
    g = prob.grad(params)["x"]
    A = torch.as_tensor(A)
    dist = {"uniform_sphere": "sphere"}.get(u_dist, u_dist)
    rule = torch_layer.rules.get("rule:zo.sgd")
    for estimator in ("direction", "two_point"):
        sampler = NumpySampler(5)
        updates, state = rule.step(
            None, rule.init(params), params, torch_layer.Oracle(prob, sampler=sampler),
            alpha=0.1, estimator=estimator, u_dist=u_dist, n_dirs=2, h=1e-3,
        )
        s = int(np.random.default_rng(5).integers(0, 2**63 - 1))
        assert set(sampler.asked) == {(dist, (4,), s), (dist, (4,), s + 1)}
        U = torch.as_tensor(np.stack([np.random.default_rng(s + k).standard_normal(4)
                                      for k in range(2)]))
        qk = U @ g
        if estimator == "direction":
            qk = qk + 0.5e-3 * torch.einsum("ki,ij,kj->k", U, A, U)
        torch.testing.assert_close(updates["x"], -0.1 * qk @ U / 2, rtol=1e-7, atol=1e-12)
        assert state["evaluations"] == (3 if estimator == "direction" else 4)


# --- rule:zo.qn (002 §2.4.1 and Eq. (15)) ----------------------------------------------------


def eq15(B, s, y):
    """002 Eq. (15), dense and independent of the layers: V^T B V + rho s s^T."""
    rho = 1.0 / (y @ s)
    V = np.eye(len(s)) - rho * np.outer(y, s)
    return V.T @ B @ V + rho * np.outer(s, s)


QN_EXACT = {"alpha": 0.1, "estimator": "coord", "h": 1e-2, "central": True}


@pytest.mark.parametrize("guard", ["skip", "damp"])
def test_zo_qn_central_coord_is_eq15_bfgs_with_the_secant_equation(layer, guard):
    """Central coordinate differences are exact on a quadratic: y = A s, y^T s > 0, and the
    state's B equals Eq. (15) in NumPy (with Powell's r wherever "damp" triggers)."""
    prob, params, A = problem(layer, 4, 7)
    rule = layer.rules.get("rule:zo.qn")
    state, B = rule.init(params), np.eye(4)
    previous = None
    for t in range(4):
        theta = layer.to_numpy(params["x"])
        g = layer.to_numpy(prob.grad(params)["x"])
        updates, state = rule.step(None, state, params, layer.Oracle(prob),
                                   curvature_guard=guard, **QN_EXACT)
        if previous is not None:
            s, y = theta - previous[0], g - previous[1]
            if guard == "damp":
                Ms = np.linalg.solve(B, s)
                if s @ y < 0.2 * s @ Ms:
                    phi = 0.8 * (s @ Ms) / (s @ Ms - s @ y)
                    y = phi * y + (1 - phi) * Ms
            B = eq15(B, s, y)
            got = layer.to_numpy(state["B"])
            np.testing.assert_allclose(got, B, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(got @ y, s, rtol=1e-7, atol=1e-10)  # secant B'y = s
        np.testing.assert_allclose(layer.to_numpy(updates["x"]), -0.1 * B @ g, rtol=1e-7,
                                   atol=1e-10)
        assert state["t"] == t + 1 and state["evaluations"] == 8 * (t + 1)
        previous = (theta, g)
        params = {"x": params["x"] + updates["x"]}


def test_zo_qn_skips_when_curvature_is_negative_and_damps_to_positive(layer):
    """A = -I (concave): y = -s, y^T s < 0. skip: B stays I (ZO-SGD steps); damp: Powell's r
    = 0.2 s (phi = 0.8 |s|^2 / (2 |s|^2) = 0.4: r = 0.4 (-s) + 0.6 s), s^T r = 0.2 |s|^2."""
    n = 3
    prob = layer.quadratic(-np.eye(n), np.zeros(n))
    rule = layer.rules.get("rule:zo.qn")
    for guard in ("skip", "damp"):
        params = {"x": layer.to_layer(np.array([1.0, -2.0, 0.5]))}
        state = rule.init(params)
        theta0 = layer.to_numpy(params["x"])
        updates, state = rule.step(None, state, params, layer.Oracle(prob), curvature_guard=guard,
                                   **QN_EXACT)
        params = {"x": params["x"] + updates["x"]}
        _, state = rule.step(None, state, params, layer.Oracle(prob), curvature_guard=guard,
                             **QN_EXACT)
        s = layer.to_numpy(params["x"]) - theta0
        want = np.eye(n) if guard == "skip" else eq15(np.eye(n), s, 0.2 * s)
        np.testing.assert_allclose(layer.to_numpy(state["B"]), want, rtol=1e-8, atol=1e-12)


def test_zo_qn_common_random_directions_reuse_the_previous_probes(layer):
    """Gaussian direction, n_dirs = 1, on a quadratic: with common directions the y-estimate
    at theta_1 uses u_0 (the seed of step 0), the forward bias cancels, y = u_0 u_0^T A s;
    evaluations 2 + (2 + 2). Without: y = g_hat(theta_1; u_1) - g_hat(theta_0; u_0)."""
    prob, params, A = problem(layer, 3, 2)
    rule = layer.rules.get("rule:zo.qn")
    h = 1e-3
    for common in (True, False):
        oracle = layer.oracle(prob, seed=21)
        seeds = draws(layer, 21, 2)
        U = [layer.probe("gaussian", (3,), s) for s in seeds]
        x0 = layer.to_numpy(params["x"])
        u, state = rule.step(None, rule.init(params), params, oracle, alpha=0.05, h=h,
                             common_random_directions=common)
        x1 = x0 + layer.to_numpy(u["x"])
        _, state = rule.step(None, state, {"x": params["x"] + u["x"]}, oracle, alpha=0.05, h=h,
                             common_random_directions=common)

        def g_hat(x, v):
            g = layer.to_numpy(prob.grad({"x": layer.to_layer(x)})["x"])
            return (v @ g + 0.5 * h * v @ A @ v) * v

        s = x1 - x0
        y = (U[0] * (U[0] @ A @ s)) if common else g_hat(x1, U[1]) - g_hat(x0, U[0])
        want = eq15(np.eye(3), s, y) if y @ s > 0 else np.eye(3)
        np.testing.assert_allclose(layer.to_numpy(state["B"]), want, rtol=1e-6, atol=1e-9)
        assert state["evaluations"] == (6 if common else 4) and state["seed"] == seeds[1]


@pytest.mark.parametrize(
    ("hyper", "error", "name"),
    [
        ({"alpha": 0.0}, ValueError, "alpha"),
        ({"curvature_guard": "powell"}, ValueError, "curvature_guard"),
        ({"common_random_directions": 1}, TypeError, "common_random_directions"),
        ({"estimator": "spsa"}, ValueError, "estimator"),
        ({"u_dist": "sphere"}, ValueError, "u_dist"),
        ({"n_dirs": 0}, ValueError, "n_dirs"),
        ({"h": -1.0}, ValueError, "h"),
    ],
)
def test_zo_qn_errors_name_the_parameter(layer, hyper, error, name):
    prob, params, _ = problem(layer)
    rule = layer.rules.get("rule:zo.qn")
    with pytest.raises(error, match=name):
        rule.step(None, rule.init(params), params, layer.Oracle(prob), **hyper)
