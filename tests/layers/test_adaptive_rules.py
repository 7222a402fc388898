"""The Adam-family rules ``rule:fo.*`` (INVENTORY §2.2) of both layers against their oracles.

Closed forms of the first steps (hand-written m, v and bias corrections; AMSGrad's running
maximum over three steps), RAdam's phi(rho_inf) = 1 and rho_t -> rho_inf, AdaFactor's
row/column-sum identity and its rank-1 exactness, the relations between variants (AdamW at lam
= 0 is Adam; the SASSHA Table 8 reading is torch's AdamW; RAdam[torch] is liu2020 at eps = 0
away from the thresholds; AdaFactor[shazeer2018] at eps1 = 0 is AdaFactor[torch]), LAMB's
per-layer update norm, AdaBound's bounds, and the error paths, each run on the reference and on
torch (float64; expected values are NumPy closed forms or the layer's own helpers).
Deterministic comparisons at rtol 1e-12 (a few operations per entry). Torch only: dtype
preservation in float32. The torch.optim trajectories are in
``tests/verify/test_torch_optim_equivalence_adaptive.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

RTOL, ATOL = 1e-12, 1e-15
MY_IDS = [
    "rule:fo.adam", "rule:fo.adam[amsgrad]", "rule:fo.adamw", "rule:fo.adamw[thesis_printed]",
    "rule:fo.adamw[sassha_table8]", "rule:fo.nadam", "rule:fo.nadam[as_printed]",
    "rule:fo.nadam[torch]", "rule:fo.radam", "rule:fo.radam[as_printed]", "rule:fo.radam[torch]",
    "rule:fo.adafactor", "rule:fo.adafactor[shazeer2018]", "rule:fo.adafactor[torch]",
    "rule:fo.adabelief", "rule:fo.adabelief[as_printed]", "rule:fo.lamb", "rule:fo.adabound",
]


def close(a, b, rtol=RTOL, atol=ATOL) -> None:
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def tree(rng: np.random.Generator, shapes=(("W", (4, 3)), ("b", (4,)))) -> dict:
    return {k: rng.standard_normal(s) for k, s in shapes}


def run(layer, rule_id: str, grads_seq, params=None, **hyper):
    """Drive ``rule_id`` with the given gradient sequence (NumPy trees) from ``params``;
    return the list of (updates, state) and the final params, all as NumPy."""
    rule = layer.rules.get(rule_id)
    params = layer.cast(params or {k: np.ones_like(g) for k, g in grads_seq[0].items()})
    state, out = rule.init(params), []
    for g in grads_seq:
        updates, state = rule.step(layer.cast(g), state, params, None, **hyper)
        out.append((layer.to_numpy(updates), layer.to_numpy(state)))
        params = {k: params[k] + updates[k] for k in params}
    return out, layer.to_numpy(params)


def test_registered_with_docs_and_hyper_names(layer):
    for rule_id in MY_IDS:
        rule = layer.rules.get(rule_id)
        assert rule.id == rule_id and len(rule.doc) > 80
        assert any(src in rule.doc for src in ("002", "004", "torch.optim", "[ext"))
    assert dict(layer.rules.get("rule:fo.adam").hyper) == {
        "alpha": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "sqrt": True, "scale_f": 1.0}
    assert dict(layer.rules.get("rule:fo.adam[amsgrad]").hyper) == {
        "alpha": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert layer.rules.get("rule:fo.nadam[torch]").hyper["psi"] == 4e-3
    assert layer.rules.get("rule:fo.adabelief").hyper["eps"] == 1e-16
    assert layer.rules.get("rule:fo.adafactor").hyper["denominator"] == "sum_c"
    assert layer.rules.get("rule:fo.adafactor").hyper["beta1"] == 0.0


# --- Adam, AdamW ----------------------------------------------------------------------------


def test_adam_first_step_is_normalized_gradient(layer):
    g = tree(np.random.default_rng(0))
    (updates, state), = run(layer, "rule:fo.adam", [g], alpha=0.1, eps=1e-3)[0]
    for k in g:
        close(updates[k], -0.1 * g[k] / (np.abs(g[k]) + 1e-3))
    assert state["t"] == 1


@pytest.mark.parametrize("sqrt", [True, False])
def test_adam_two_steps_closed_form(layer, sqrt):
    """m, v by hand; sqrt=False divides by f v_hat (002 §6.1.2), sqrt=True by sqrt(f v_hat)."""
    rng = np.random.default_rng(1)
    g1, g2 = tree(rng), tree(rng)
    b1, b2, alpha, eps, f = 0.8, 0.9, 0.05, 1e-4, 32.0
    steps, _ = run(layer, "rule:fo.adam", [g1, g2], alpha=alpha, beta1=b1, beta2=b2, eps=eps,
                   sqrt=sqrt, scale_f=f)
    for k in g1:
        m = (1 - b1) * (b1 * g1[k] + g2[k])
        v = (1 - b2) * (b2 * g1[k] ** 2 + g2[k] ** 2)
        v_hat = f * v / (1 - b2**2)
        D = np.sqrt(v_hat) if sqrt else v_hat
        close(steps[1][0][k], -alpha * (m / (1 - b1**2)) / (D + eps))
        close(steps[1][1]["m"][k], m)
        close(steps[1][1]["v"][k], v)


def test_amsgrad_three_steps_closed_form(layer):
    """[ext: Reddi et al. 2018] in torch's order: v_max = max(v_max, v) on the raw v, then
    -(alpha/(1-b1^t)) m/(sqrt(v_max)/sqrt(1-b2^t) + eps). The gradients shrink (g, g/10, g/2),
    so v falls below its maximum on steps 2 and 3 and the step differs from Adam's there."""
    g = tree(np.random.default_rng(3))
    gs = [g, {k: 0.1 * x for k, x in g.items()}, {k: 0.5 * x for k, x in g.items()}]
    b1, b2, alpha, eps = 0.5, 0.6, 0.1, 1e-3
    h = {"alpha": alpha, "beta1": b1, "beta2": b2, "eps": eps}
    steps, _ = run(layer, "rule:fo.adam[amsgrad]", gs, **h)
    adam, _ = run(layer, "rule:fo.adam", gs, **h)
    for k in g:
        m, v, v_max = np.zeros_like(g[k]), np.zeros_like(g[k]), np.zeros_like(g[k])
        for t, (gt, (updates, state), (adam_updates, _)) in enumerate(
                zip(gs, steps, adam, strict=True), start=1):
            m = b1 * m + (1 - b1) * gt[k]
            v = b2 * v + (1 - b2) * gt[k] ** 2
            v_max = np.maximum(v_max, v)
            expected = -(alpha / (1 - b1**t)) * m / (np.sqrt(v_max) / np.sqrt(1 - b2**t) + eps)
            close(updates[k], expected)
            close(state["m"][k], m)
            close(state["v"][k], v)
            close(state["v_max"][k], v_max)
            assert state["t"] == t
            if t == 1:  # v_max = v: Adam's first step
                close(updates[k], adam_updates[k])
            else:  # the maximum binds in every entry: smaller steps than Adam's
                assert np.all(v < v_max)
                assert np.all(np.abs(updates[k]) < np.abs(adam_updates[k]))


def test_adamw_variants(layer):
    rng = np.random.default_rng(2)
    gs, p0 = [tree(rng) for _ in range(4)], tree(rng)
    h = {"alpha": 0.03, "beta1": 0.9, "beta2": 0.99, "eps": 1e-6}
    adam, _ = run(layer, "rule:fo.adam", gs, p0, **h)
    torch_v, _ = run(layer, "rule:fo.adamw", gs, p0, lam=0.0, **h)
    sassha, _ = run(layer, "rule:fo.adamw[sassha_table8]", gs, p0, lam=0.0, **h)
    for (a, _), (w, _), (s, _) in zip(adam, torch_v, sassha, strict=True):
        for k in a:
            close(w[k], a[k])
            close(s[k], a[k])
    # one step with decay: torch = Adam step - alpha lam theta; thesis_printed closed form
    g = gs[0]
    (w, _), = run(layer, "rule:fo.adamw", [g], p0, lam=0.1, **h)[0]
    (a, _), = run(layer, "rule:fo.adam", [g], p0, **h)[0]
    (t, _), = run(layer, "rule:fo.adamw[thesis_printed]", [g], p0, lam=0.1, **h)[0]
    (s, _), = run(layer, "rule:fo.adamw[sassha_table8]", [g], p0, lam=0.1, **h)[0]
    for k in g:
        close(w[k], a[k] - 0.03 * 0.1 * p0[k])
        close(s[k], w[k])
        expected = -0.1 * p0[k] - 0.03 * 0.1 * g[k] / np.sqrt(0.01 * g[k] ** 2 + 1e-6)
        close(t[k], expected)


# --- NAdam ----------------------------------------------------------------------------------


def test_nadam_first_steps(layer):
    g = tree(np.random.default_rng(3))
    (d, _), = run(layer, "rule:fo.nadam", [g], alpha=0.01, beta1=0.9, eps=1e-8)[0]
    (p, _), = run(layer, "rule:fo.nadam[as_printed]", [g], alpha=0.01, beta1=0.9)[0]
    for k in g:
        # m_hat = g and (1 - b1) g/(1 - b1) = g: (b1 + 1) g/(|g| + eps)
        close(d[k], -0.01 * 1.9 * g[k] / (np.abs(g[k]) + 1e-8))
        close(p[k], -0.01 * (0.9 * 0.1 * g[k] + 0.1 * g[k]))


def test_nadam_torch_mu_product(layer):
    ADAPTIVE = layer.module("rules.adaptive")
    gs = [tree(np.random.default_rng(s)) for s in range(5)]
    steps, _ = run(layer, "rule:fo.nadam[torch]", gs, beta1=0.9, psi=0.1)
    mus = [ADAPTIVE.nadam_mu(t, 0.9, 0.1) for t in range(1, 6)]
    assert steps[-1][1]["mu_product"] == pytest.approx(np.prod(mus), rel=1e-15)
    assert mus[0] == pytest.approx(0.9 * (1 - 0.5 * 0.96**0.1), rel=1e-15)


# --- RAdam ----------------------------------------------------------------------------------


@pytest.mark.parametrize("beta2", [0.7, 0.9, 0.99, 0.999])
def test_radam_phi_and_rho(layer, beta2):
    ADAPTIVE = layer.module("rules.adaptive")
    r_inf = ADAPTIVE.rho_inf(beta2)
    assert ADAPTIVE.radam_phi(r_inf, r_inf) == pytest.approx(1.0, rel=1e-14)
    assert ADAPTIVE.rho(1, beta2) == pytest.approx(1.0, rel=1e-9)
    ts = np.unique(np.geomspace(1, 1e6, 60).astype(int))
    rhos = np.array([ADAPTIVE.rho(int(t), beta2) for t in ts])
    assert np.all(np.diff(rhos) >= -1e-9 * r_inf)  # increasing
    assert np.all(rhos <= r_inf)
    assert abs(rhos[-1] - r_inf) <= 1e-9 * r_inf  # rho_t -> rho_inf
    assert ADAPTIVE.radam_phi(3.9, r_inf) == 1.0


def test_radam_warmup_is_momentum_and_torch_matches_at_zero_eps(layer):
    ADAPTIVE = layer.module("rules.adaptive")
    rng = np.random.default_rng(4)
    gs = [tree(rng) for _ in range(12)]
    h = {"alpha": 0.01, "beta1": 0.9, "beta2": 0.9, "eps": 0.0}
    liu, _ = run(layer, "rule:fo.radam", gs, **h)
    tor, _ = run(layer, "rule:fo.radam[torch]", gs, **h)
    for t, ((u, s), (w, _)) in enumerate(zip(liu, tor, strict=True), start=1):
        rho_t = ADAPTIVE.rho(t, 0.9)
        for k in u:
            m_hat = s["m"][k] / (1 - 0.9**t)
            if rho_t <= 4:  # no denominator: SGD with (bias-corrected) momentum
                close(u[k], -0.01 * m_hat)
            else:
                phi = ADAPTIVE.radam_phi(rho_t, ADAPTIVE.rho_inf(0.9))
                v_hat = s["v"][k] / (1 - 0.9**t)
                close(u[k], -0.01 * phi * m_hat / np.sqrt(v_hat))
            if not 4 < rho_t <= 5:  # eps = 0: torch's eps placement is immaterial
                close(w[k], u[k])
    assert any(4 < ADAPTIVE.rho(t, 0.9) <= 5 for t in range(1, 13))


def test_radam_as_printed_first_step(layer):
    g = tree(np.random.default_rng(5))
    (u, _), = run(layer, "rule:fo.radam[as_printed]", [g], alpha=0.01, eps=1e-8)[0]
    for k in g:  # rho_1 = 1 <= 4: phi = 1, uncorrected m/(sqrt(v) + eps)
        close(u[k], -0.01 * 0.1 * g[k] / (np.sqrt(0.001) * np.abs(g[k]) + 1e-8))


# --- AdaFactor ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
def test_adafactor_row_and_column_sums_agree(layer, shape):
    """Zero init and a common beta2: sum_j c_j = sum_i r_i at every step, so both
    denominators give the same update."""
    rng = np.random.default_rng(6)
    gs = [{"W": rng.standard_normal(shape)} for _ in range(6)]
    by_c, _ = run(layer, "rule:fo.adafactor", gs, beta1=0.5, beta2=0.7, denominator="sum_c")
    by_r, _ = run(layer, "rule:fo.adafactor", gs, beta1=0.5, beta2=0.7, denominator="sum_r")
    for (u, s), (w, _) in zip(by_c, by_r, strict=True):
        close(s["r"]["W"].sum(-1), s["c"]["W"].sum(-1))
        assert s["r"]["W"].shape == shape[:-1]
        assert s["c"]["W"].shape == shape[:-2] + shape[-1:]
        close(u["W"], w["W"])


@pytest.mark.parametrize("denominator", ["sum_c", "sum_r"])
def test_adafactor_rank_one_equals_unfactored(layer, denominator):
    """A constant rank-1 G = u w^T: V_t = (1 - b2^t) G^2, the unfactored EMA of G^2."""
    ADAPTIVE = layer.module("rules.adaptive")
    rng = np.random.default_rng(7)
    G = np.outer(rng.standard_normal(5), rng.standard_normal(3))
    b2, alpha, eps = 0.8, 0.02, 1e-8
    steps, _ = run(layer, "rule:fo.adafactor", [{"W": G}] * 4, alpha=alpha, beta2=b2, eps=eps,
                   denominator=denominator)
    for t, (u, s) in enumerate(steps, start=1):
        r, c = layer.to_layer(s["r"]["W"]), layer.to_layer(s["c"]["W"])
        V = layer.to_numpy(ADAPTIVE.factored_second_moment(r, c, denominator))
        ema = (1 - b2**t) * G**2
        close(V, ema)
        close(u["W"], -alpha * G / (np.sqrt(ema) + eps))


def test_adafactor_vector_leaf_is_unfactored_ema(layer):
    rng = np.random.default_rng(8)
    gs = [{"b": rng.standard_normal(4)} for _ in range(3)]
    steps, _ = run(layer, "rule:fo.adafactor", gs, alpha=0.1, beta2=0.5, eps=1e-6)
    v = np.zeros(4)
    for g, (u, s) in zip(gs, steps, strict=True):
        v = 0.5 * v + 0.5 * g["b"] ** 2  # Eq. (12): no bias correction, beta1 = 0
        close(s["v"]["b"], v)
        close(u["b"], -0.1 * g["b"] / (np.sqrt(v) + 1e-6))
    assert set(steps[0][1]["r"]) == set()


def test_adafactor_zero_gradient_gives_zero_update(layer):
    steps, _ = run(layer, "rule:fo.adafactor", [{"W": np.zeros((3, 2)), "b": np.zeros(2)}] * 2)
    for u, _ in steps:
        assert np.all(u["W"] == 0) and np.all(u["b"] == 0)


def test_adafactor_shazeer_equals_torch_variant_without_eps1(layer):
    """Shazeer & Stern with eps1 = 0 and rho_max = lr is torch's Adafactor with eps1 = 0 and no
    weight decay: sums versus means of G^2 cancel in V."""
    rng = np.random.default_rng(9)
    gs = [tree(rng) for _ in range(8)]
    p0 = tree(rng)
    sh, _ = run(layer, "rule:fo.adafactor[shazeer2018]", gs, p0, decay_rate=0.6, eps1=0.0,
                eps2=1e-3, d=1.5, rho_max=0.05)
    to, _ = run(layer, "rule:fo.adafactor[torch]", gs, p0, alpha=0.05, beta2_decay=-0.6,
                eps1=0.0, eps2=1e-3, d=1.5, lam=0.0)
    for (u, _), (w, _) in zip(sh, to, strict=True):
        for k in u:
            close(u[k], w[k], rtol=1e-11)


def test_adafactor_update_clipping_and_relative_step(layer):
    """[shazeer2018], first step (b2_1 = 0, eps1 = 0): V = R C^T/sum(R) from this G alone
    (vector leaves: V = G^2, so U = sign(G)), U = G/sqrt(V), clipped to RMS <= d, times
    max(eps2, RMS(theta)) min(rho_max, 1)."""
    rng = np.random.default_rng(10)
    g, p0 = tree(rng), tree(rng)
    for d in (1.0, 1.1, 3.0):
        (u, _), = run(layer, "rule:fo.adafactor[shazeer2018]", [g], p0, eps1=0.0, d=d)[0]
        for k in g:
            G2 = g[k] ** 2
            V = G2 if G2.ndim == 1 else np.outer(G2.sum(1), G2.sum(0)) / G2.sum()
            U = g[k] / np.sqrt(V)
            rms_u = np.sqrt(np.mean(U**2))
            step = max(1e-3, np.sqrt(np.mean(p0[k] ** 2))) * 1e-2
            close(u[k], -step * U / max(1.0, rms_u / d))
            if G2.ndim == 1:
                close(U, np.sign(g[k]))
            assert np.sqrt(np.mean(u[k] ** 2)) <= step * d * (1 + 1e-12)


# --- AdaBelief ------------------------------------------------------------------------------


def test_adabelief_first_step(layer):
    g = tree(np.random.default_rng(11))
    b1, b2, alpha, eps = 0.9, 0.99, 0.01, 1e-8
    (z, zs), = run(layer, "rule:fo.adabelief", [g], alpha=alpha, beta1=b1, beta2=b2, eps=eps)[0]
    (p, _), = run(layer, "rule:fo.adabelief[as_printed]", [g], alpha=alpha, beta1=b1, beta2=b2,
                  eps=eps)[0]
    for k in g:
        s = (1 - b2) * (b1 * g[k]) ** 2 + eps  # g - m = b1 g at the first step
        close(zs["v"][k], s)
        close(z[k], -alpha * g[k] / (np.sqrt(s / (1 - b2)) + eps))
        v = (1 - b2) * (b1 * g[k]) ** 2
        close(p[k], -alpha * (1 - b1) * g[k] / np.sqrt(v + eps))


# --- LAMB, AdaBound -------------------------------------------------------------------------


@pytest.mark.parametrize(("phi", "lo", "hi"), [("identity", 0.0, 10.0), ("clip", 1.0, 1.5)])
def test_lamb_layer_norm(layer, phi, lo, hi):
    """||update of a leaf|| = alpha phi(||theta||), one trust ratio per leaf."""
    rng = np.random.default_rng(12)
    gs, p0 = [tree(rng) for _ in range(5)], tree(rng)
    steps, _ = run(layer, "rule:fo.lamb", gs, p0, alpha=0.01, lam=0.01, phi=phi, gamma_l=lo,
                   gamma_u=hi)
    params = dict(p0)
    for u, _ in steps:
        for k in u:
            norm = np.linalg.norm(params[k])
            scale = norm if phi == "identity" else min(max(norm, lo), hi)
            assert np.linalg.norm(u[k]) == pytest.approx(0.01 * scale, rel=1e-12)
        params = {k: params[k] + u[k] for k in params}


def test_lamb_zero_direction_gives_zero_update(layer):
    (u, _), = run(layer, "rule:fo.lamb", [{"b": np.zeros(3)}], {"b": np.ones(3)})[0]
    assert np.all(u["b"] == 0)


def test_adabound_bounds_and_unclipped_step(layer):
    ADAPTIVE = layer.module("rules.adaptive")
    low, high = ADAPTIVE.adabound_bounds(10**12, 0.1, 1e-3)
    assert low == pytest.approx(0.1, rel=1e-8) and high == pytest.approx(0.1, rel=1e-8)
    for t in (1, 10, 1000):
        low, high = ADAPTIVE.adabound_bounds(t, 0.1, 1e-3)
        assert low < 0.1 < high
    g = {"b": np.array([0.5, -2.0, 1.0])}
    (u, _), = run(layer, "rule:fo.adabound", [g], alpha=1e-3, final_lr=0.1, gamma=1e-3)[0]
    step = 1e-3 / (np.sqrt(0.001) * np.abs(g["b"]) + 1e-8)  # inside [1e-4, 100] at t = 1
    close(u["b"], -step * 0.1 * g["b"])
    (u, _), = run(layer, "rule:fo.adabound", [g], alpha=1.0, final_lr=0.1, gamma=0.5)[0]
    close(u["b"], -0.3 * 0.1 * g["b"])  # clipped at final_lr (1 + 1/(gamma t)) = 0.3


# --- errors ---------------------------------------------------------------------------------

BAD = [("alpha", -1.0), ("beta1", 1.0), ("beta1", -0.1), ("beta2", 1.5), ("eps", -1e-8)]


@pytest.mark.parametrize("rule_id", MY_IDS)
def test_bad_hyperparameters_and_grads(layer, rule_id):
    rule = layer.rules.get(rule_id)
    params = {"W": layer.to_layer(np.ones((2, 2))), "b": layer.to_layer(np.ones(2))}
    grads = {"W": layer.to_layer(np.ones((2, 2))), "b": layer.to_layer(np.ones(2))}
    state = rule.init(params)
    for name, value in BAD:
        if name in rule.hyper:
            with pytest.raises(ValueError, match=name):
                rule.step(grads, state, params, None, **{name: value})
    bad_grads = {"W": layer.to_layer(np.ones((2, 2))), "b": layer.to_layer(np.array([1.0, np.nan]))}
    with pytest.raises(ValueError, match="grads"):
        rule.step(bad_grads, state, params, None)
    with pytest.raises(TypeError, match="unknown"):
        rule.step(grads, state, params, None, not_a_hyper=1.0)
    # the state given to a step is never mutated
    rule.step(grads, state, params, None)
    assert state["t"] == 0


@pytest.mark.parametrize(("rule_id", "name", "value", "error"), [
    ("rule:fo.adam", "sqrt", "yes", TypeError),
    ("rule:fo.adam", "scale_f", 0.0, ValueError),
    ("rule:fo.adam", "alpha", "0.1", TypeError),
    ("rule:fo.adafactor", "denominator", "sum_x", ValueError),
    ("rule:fo.adafactor[torch]", "d", 0.5, ValueError),
    ("rule:fo.adafactor[torch]", "beta2_decay", 0.5, ValueError),
    ("rule:fo.adafactor[torch]", "eps1", -1.0, ValueError),
    ("rule:fo.adafactor[shazeer2018]", "eps2", -1.0, ValueError),
    ("rule:fo.nadam[torch]", "psi", -1.0, ValueError),
    ("rule:fo.adamw", "lam", -0.1, ValueError),
    ("rule:fo.lamb", "phi", "sqrt", ValueError),
    ("rule:fo.lamb", "gamma_u", -1.0, ValueError),
    ("rule:fo.adabound", "final_lr", 0.0, ValueError),
])
def test_bad_options(layer, rule_id, name, value, error):
    rule = layer.rules.get(rule_id)
    params = {"W": layer.to_layer(np.ones((2, 2)))}
    with pytest.raises(error, match=name):
        rule.step(params, rule.init(params), params, None, **{name: value})


@pytest.mark.parametrize("rule_id", MY_IDS)
def test_float32_in_float32_out(torch_layer, rule_id):
    rule = torch_layer.rules.get(rule_id)
    rng = np.random.default_rng(13)
    params = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in tree(rng).items()}
    grads = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in tree(rng).items()}
    updates, state = rule.step(grads, rule.init(params), params, None)
    for k in params:
        assert updates[k].dtype == torch.float32 and updates[k].shape == params[k].shape
        assert bool(torch.isfinite(updates[k]).all())
    for name, acc in state.items():
        if name != "t" and not isinstance(acc, float):
            assert all(a.dtype == torch.float32 for a in acc.values())
