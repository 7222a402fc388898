"""Machinery of the stochastic-analysis audits (verify/audits/unified_view_stochastic.py).

Each relation is checked to evaluate what the text prints, on cases whose values are computed
by hand here (closed forms for n = 1, explicit enumerations for two samples, dense inverses);
verdicts are never asserted.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import reference
import verify.audits.unified_view_stochastic as uv
from verify.audits.framework import audit

RTOL, ATOL = 1e-10, 1e-12
IDS = {"noise_basic", "noise_gaussian", "noise_hessian", "dxi_cov", "expected_loss", "Nb", "Fb",
       "dxi_i", "noise_newton", "noise_Hhalf", "noise_gd", "higher_Nb", "renderings"}


def relation(claim_id: str, prefix: str):
    """The one relation of the claim whose name starts with ``prefix``."""
    found = [r for r in uv.CLAIMS[claim_id].relations if r.name.startswith(prefix)]
    assert len(found) == 1, [r.name for r in uv.CLAIMS[claim_id].relations]
    return found[0]


def one_dimensional(lam: float, **overrides):
    """A Gaussian-law context with H = [[lam]] (n = 1: build_curvature gives lam in the case's
    range; lo = hi pins it)."""
    e = math.log10(lam)
    return uv.stochastic_context(uv.gaussian_example(lo=e, hi=e, **overrides))


# --- registry and thresholds -------------------------------------------------------------------


def test_every_claim_of_section_4_1_b_is_exported_with_its_thresholds():
    assert set(uv.CLAIMS) == {f"claim:U.{name}" for name in IDS}
    for claim in uv.CLAIMS.values():
        assert claim.relations and claim.note
        assert claim.thresholds or claim.nature == "record"
    assert uv.CLAIMS["claim:U.higher_Nb"].nature == "record"
    assert uv.CLAIMS["claim:U.noise_gaussian"].nature == "qualitative"
    assert uv.CLAIMS["claim:U.noise_basic"].thresholds["alpha_mc"] == 1e-3


# --- helpers -----------------------------------------------------------------------------------


def test_equal_floors_the_scale_of_a_printed_zero():
    tiny = np.array([1e-17, -2e-17])
    assert uv.equal(tiny, np.zeros(2), RTOL).ok is False  # relative to itself: a gap of 1
    floored = uv.equal(tiny, np.zeros(2), RTOL, floor=1.0)
    assert floored.ok and floored.discrepancy == pytest.approx(np.linalg.norm(tiny))
    assert uv.equal(np.eye(2), 1.0, RTOL).ok is None  # a matrix where a scalar stands


def test_within_ci_measures_the_gap_in_bonferroni_half_widths():
    z1 = stats.norm.isf(1e-3 / 2)
    ev = uv.within_ci(1.0, 0.1, 1.2)
    assert ev.ok and ev.discrepancy == pytest.approx(0.2 / (z1 * 0.1 + RTOL * 1.2), rel=1e-12)
    assert uv.within_ci(1.0, 0.1, 1.5).ok is False
    z3 = stats.norm.isf(1e-3 / 6)  # three entries share the false-alarm rate
    ev = uv.within_ci(np.zeros(3), np.ones(3), np.array([0.0, 0.0, 3.5]))
    assert ev.discrepancy == pytest.approx(3.5 / (z3 + 3.5 * RTOL), rel=1e-12) and ev.ok
    assert uv.within_ci(np.zeros(2), np.zeros(2), np.array([0.0, 1e-3])).ok is False
    # an entry that vanishes in exact arithmetic (null eigenvector) is rounding of the floor
    args = np.array([1e-32, 1.0]), np.array([1e-34, 0.01]), np.array([-3e-18, 1.0])
    assert uv.within_ci(*args).ok is False and uv.within_ci(*args, floor=1.0).ok


@settings(max_examples=30, database=None, deadline=None)
@given(uv.merged(uv.batch_cases(4, 10, even=True), st.fixed_dictionaries({"x": st.just(1)})))
def test_batch_cases_draw_a_batch_size_within_the_data_set(case):
    assert case["N"] % 2 == 0 and 4 <= case["N"] <= 10 and 1 <= case["B"] <= case["N"]
    assert case["x"] == 1


def test_lazy_context_computes_each_entry_once_and_only_when_read():
    calls = []
    ctx = uv.Lazy({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2},
                  c=3)
    assert ctx["a"] + ctx["a"] + ctx["c"] == 5 and calls == ["a"]
    assert set(ctx) == {"a", "b", "c"} and len(ctx) == 3
    ctx.extend(d=lambda: ctx["b"] * 10)
    assert ctx["d"] == 20 and calls == ["a", "b"]


def test_rule_map_is_the_matrix_of_the_registered_rule():
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((4, 4))
    H = Z @ Z.T + 0.5 * np.eye(4)
    quad = reference.problems.get("prob:quad")(H, rng.standard_normal(4))
    theta = {"x": rng.standard_normal(4)}
    lam, V = np.linalg.eigh(H)
    expected = {"alpha_Hinv": 0.7 * np.linalg.inv(H),
                "alpha_Hinvsqrt": 0.7 * (V / np.sqrt(lam)) @ V.T, "alpha_I": 0.7 * np.eye(4)}
    for kind, A in expected.items():
        np.testing.assert_allclose(uv.rule_map(kind, 0.7, quad, theta), A, rtol=RTOL, atol=ATOL)


def test_a_batch_of_the_whole_data_set_without_replacement_has_no_noise():
    case = {"source": "quad_finite_sum", "seed": 0, "N": 4, "B": 4, "dim": 2, "A": "alpha_I",
            "alpha": 1.0, "sampling": "without_replacement"}
    ctx = uv.stochastic_context(case)
    assert ctx["A"] is None and ctx["why"] == uv.NO_NOISE
    assert np.abs(ctx["Sigma_b"]).max() < 1e-20  # est:minibatch_moments: one batch, g_b = g
    assert uv.stochastic_context({**case, "sampling": "with_replacement"})["A"] is not None


def test_singular_hessian_leaves_the_inverse_maps_undefined():
    ctx = uv.stochastic_context(uv.gaussian_example(n=3, kind="psd", A="alpha_Hinv"))
    assert ctx["A"] is None and "singular" in ctx["why"]
    assert isinstance(ctx["by_kind"]["alpha_Hinvsqrt"], str)
    ev = relation("claim:U.Nb", "½E[d_ξᵀHd_ξ] = ").check(ctx)
    assert ev.ok is None and "singular" in ev.detail["undefined"]


# --- N_b, per-eigendirection noise and the three paragraphs (n = 1 closed forms) --------------


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_newton_paragraph_relations_evaluate_the_printed_forms(alpha):
    lam, k, B = 4.0, 0.3, 16
    ctx = one_dimensional(lam, A="alpha_Hinv", alpha=alpha, k=k, B=B)
    exact_nb = 0.5 * (k / B) * alpha**2  # 1/2 tr(H A Sigma_b A^T) with A = alpha/lam
    assert ctx["by_kind"]["alpha_Hinv"]["N_b"] == pytest.approx(exact_nb, rel=RTOL)
    printed = 0.5 * (k / B) * alpha  # "N_b = 1/2 (k/B) alpha"
    ev = relation("claim:U.noise_newton", "N_b = ").check(ctx)
    assert ev.discrepancy == pytest.approx(abs(exact_nb - printed) / max(exact_nb, printed),
                                           abs=ATOL)
    exact_i, printed_i = (k / B) * alpha**2 / lam, k * alpha / (B * lam)  # "k alpha/(B lam_i)"
    ev = relation("claim:U.noise_newton", "‖d_ξi‖₂² = ").check(ctx)
    assert ev.discrepancy == pytest.approx(
        abs(exact_i - printed_i) / max(exact_i, printed_i), abs=ATOL)


def test_per_eigendirection_renderings_are_the_printed_traces():
    lam, alpha, k, B = 9.0, 0.5, 2.0, 4
    ctx = one_dimensional(lam, A="alpha_I", alpha=alpha, k=k, B=B)
    exact = (k / B) * alpha**2 * lam  # e^T A Sigma_b A^T e
    r000 = (k / B) * alpha * lam * alpha  # (k/B) tr(A H A^T e e^T)
    r001 = (k / B) * lam * alpha  # (k/B) tr(H A^T e e^T)
    assert relation("claim:U.dxi_i", "E||d_ξi||² = (k/B)tr(AHA").check(ctx).discrepancy == \
        pytest.approx(abs(exact - r000) / max(exact, r000), abs=ATOL)
    ev = relation("claim:U.dxi_i", "E||d_ξi||² = (k/B)tr(HA").check(ctx)
    assert ev.discrepancy == pytest.approx(abs(exact - r001) / r001, abs=ATOL)
    ev = relation("claim:U.renderings", "(ii) (k/B)tr(AHA").check(ctx)
    assert ev.discrepancy == pytest.approx(abs(r000 - r001) / r001, abs=ATOL)


def test_projector_traces_match_an_explicit_loop():
    rng = np.random.default_rng(0)
    M, Q = rng.standard_normal((3, 3)), np.linalg.qr(rng.standard_normal((3, 3)))[0]
    loop = [np.trace(M @ np.outer(Q[:, i], Q[:, i])) for i in range(3)]
    np.testing.assert_allclose(uv._projector_traces(M, Q), loop, rtol=RTOL, atol=ATOL)


def test_gd_paragraph_renderings_on_a_two_dimensional_hessian():
    ctx = uv.stochastic_context(uv.gaussian_example(n=2, A="alpha_I", alpha=0.8, k=0.5, B=4))
    H, kb = ctx["H"], 0.5 / 4
    exact = 0.5 * kb * 0.8**2 * np.trace(H @ H)
    assert ctx["by_kind"]["alpha_I"]["N_b"] == pytest.approx(exact, rel=RTOL)
    for prefix, printed in (("N_b = ½(k/B)tr(H) ", 0.5 * kb * np.trace(H)),
                            ("N_b = ½(k/B)tr(HH)", 0.5 * kb * np.trace(H @ H))):
        ev = relation("claim:U.noise_gd", prefix).check(ctx)
        assert ev.discrepancy == pytest.approx(abs(exact - printed) / max(exact, printed),
                                               abs=ATOL)
    ev = relation("claim:U.renderings", "(i) ½(k/B)tr(H) [000]").check(ctx)
    a, b = np.trace(H), np.trace(H @ H)
    assert ev.discrepancy == pytest.approx(abs(a - b) / max(a, b), abs=ATOL)


def test_newton_to_gd_comparison_needs_its_premise_and_orders_exact_values():
    small = uv.stochastic_context(uv.gaussian_example(n=3, lo=-2.0, hi=-1.0, A="alpha_I"))
    assert np.trace(small["H"]) < 1
    ev = relation("claim:U.noise_gd", "noise term N_b decreasing").check(small)
    values = ev.detail["values"]  # N_b of alpha H^-1, alpha H^-1/2, alpha I: 1/2 (k/B) a^2 tr(.)
    np.testing.assert_allclose(values, [1.5, 0.5 * np.trace(small["H"]),
                                        0.5 * np.trace(small["H"] @ small["H"])], rtol=1e-8)
    assert ev.ok
    large = uv.stochastic_context(uv.gaussian_example(n=3, lo=1.0, hi=2.0, A="alpha_I"))
    ev = relation("claim:U.noise_gd", "noise term N_b decreasing").check(large)
    assert ev.ok is None and "tr(H) < 1" in ev.detail["undefined"]


def test_trace_usually_below_one_is_the_fraction_of_checkpoints(monkeypatch):
    monkeypatch.setattr(uv, "trace_along_training", lambda source: np.array([0.5, 2.0, 0.3]))
    ev = relation("claim:U.noise_gd", "tr(H) is usually").check({"case": {"trajectory": "x"}})
    assert ev.ok and ev.discrepancy == pytest.approx(2 / 3)


def test_nb_monte_carlo_and_literal_trace_with_a_general_map():
    ctx = uv.stochastic_context(uv.gaussian_example(n=3, A="general", sigma="general", B=4))
    A, H, S = ctx["A"], ctx["H"], ctx["Sigma_b"]
    assert ctx["est"]["N_b"] == pytest.approx(0.5 * np.trace(H @ A @ S @ A.T), rel=RTOL)
    printed = 0.5 * np.trace(H @ A.T @ A @ S)  # the printed order of the factors
    ev = relation("claim:U.Nb", "½E[d_ξᵀHd_ξ] = ").check(ctx)
    gap = abs(ctx["est"]["N_b"] - printed) / max(abs(ctx["est"]["N_b"]), abs(printed))
    assert ev.discrepancy == pytest.approx(gap, abs=ATOL)
    assert relation("claim:U.Nb", "N_b = ½(k/B)").check(ctx).ok is None  # Sigma_xi is not kH
    half_quad = 0.5 * np.einsum("kp,pq,kq->k", ctx["xi"] @ A.T, H, ctx["xi"] @ A.T)
    assert ctx["est"]["N_b_mc"] == pytest.approx(half_quad.mean(), rel=RTOL)


# --- d_xi covariance and the expected loss ----------------------------------------------------


def test_dxi_cov_records_the_printed_scalar_as_ill_typed():
    ctx = uv.stochastic_context(uv.gaussian_example(n=3, A="general"))
    ev = relation("claim:U.dxi_cov", "covariance matrix of d_ξ =").check(ctx)
    assert ev.ok is None and ev.detail["lhs"] == "ndarray(3, 3)" and ev.detail["rhs"] == "scalar"
    values = uv._draw_values(ctx)
    D = ctx["xi"] @ ctx["A"].T
    np.testing.assert_allclose(values["trace"], np.sum(D * D, axis=1), rtol=1e-12)
    np.testing.assert_allclose(values["outer"].mean(axis=0), D.T @ D / len(D), rtol=1e-12)


def test_expected_loss_uses_the_real_loss_at_theta_plus_d_b():
    ctx = uv.expected_loss_context(uv.gaussian_example(n=3, A="alpha_I", alpha=0.5))
    e = ctx["expansion"]
    np.testing.assert_allclose(e["f"], e["q"], rtol=1e-9)  # a quadratic is its own model
    D = ctx["d"] + ctx["xi"][:uv.LOSS_DRAWS] @ ctx["A"].T
    theta = ctx["theta"]["x"] + D[7]
    assert e["f"][7] == pytest.approx(ctx["problem"].loss({"x": theta}), rel=1e-14)
    case = {"source": "softmax", "seed": 1, "N": 6, "B": 2, "dim": 2, "A": "alpha_I",
            "alpha": 0.3, "sampling": "with_replacement"}
    real = uv.expected_loss_context(case)["expansion"]
    assert not np.allclose(real["f"], real["q"], rtol=1e-6)  # softmax: a remainder exists


def test_expected_loss_readings_coincide_when_a_is_the_identity():
    ctx = uv.expected_loss_context(uv.gaussian_example(n=2, A="alpha_I", alpha=1.0, B=4))
    printed = "E[f(θ+d_b)] ≈ f + gᵀd + ½dᵀHd + "
    xi_b = relation("claim:U.expected_loss", printed + "½E[ξᵀHξ] (ξ read as ξ_b)")
    reading = relation("claim:U.expected_loss", printed + "N_b")
    assert xi_b.check(ctx).discrepancy == pytest.approx(reading.check(ctx).discrepancy, rel=1e-9)


# --- noise_basic on two samples, by hand -------------------------------------------------------


@pytest.fixture
def two_samples(monkeypatch):
    """g_1 = 1, g_2 = 3: mean 2, sum 4 (N = 2, B = 2)."""
    monkeypatch.setattr(uv, "_basic_problem", lambda *key: np.array([[1.0], [3.0]]))
    uv._basic_moments.cache_clear()
    yield uv.basic_context({"source": "hand", "N": 2, "B": 2, "dim": 1, "seed": 0})
    uv._basic_moments.cache_clear()


@pytest.mark.parametrize("prefix, gap", [
    # mean reading: xi = +-1, Sigma_xi = 1; with replacement g_b in {1, 2, 3} w.p. 1/4, 1/2, 1/4
    ("E[xi] = 0 [g = mean", 0.0),
    ("Sigma_xi_b = Sigma_xi / B [g = mean_x g_x, reading; with ", 0.0),
    ("Sigma_g_b = Sigma_xi / B [g = mean_x g_x, reading; with ", 0.0),
    # without replacement the only batch is {1, 3}: g_b = 2, Cov = 0 against 1/2
    ("Sigma_g_b = Sigma_xi / B [g = mean_x g_x, reading; without", 1.0),
    # sum reading: xi = g_x - 4 in {-3, -1}: E[xi] = -2, Sigma_xi = E[xi^2] = 5
    ("E[xi] = 0 [g = Σ", 1.0),
    ("E[g_b] = g [g = Σ_x g_x, as printed; with ", 0.5),  # E[g_b] = 2 against 4
    ("Sigma_xi_b = Sigma_xi / B [g = Σ_x g_x, as printed; with ", 2.0 / 4.5),  # 4.5 vs 2.5
    ("Sigma_g_b = Sigma_xi / B [g = Σ_x g_x, as printed; with ", 2.0 / 2.5),  # 0.5 vs 2.5
])
def test_noise_basic_relations_on_two_samples(two_samples, prefix, gap):
    ev = relation("claim:U.noise_basic", prefix).check(two_samples)
    assert ev.discrepancy == pytest.approx(gap, abs=1e-12)


# --- F_b, Sigma fits, normality ------------------------------------------------------------


def test_batch_empirical_fisher_of_one_sample_is_the_empirical_fisher():
    case = {"source": "softmax", "seed": 2, "N": 5, "B": 1, "dim": 2}
    ctx = uv.fisher_context(case)
    problem, theta = uv._classifier("softmax", 5, 2, 2)
    G = problem.per_sample_grads(theta)
    F_tilde = G.T @ G / 5
    Sigma_x = np.cov(G.T, bias=True)
    np.testing.assert_allclose(ctx["F_tilde_b"]["with_replacement"], F_tilde, rtol=RTOL,
                               atol=ATOL)
    ev = relation("claim:U.Fb", "F̃_b = F̃ + (1/B)Σ_x [with replacement]").check(ctx)
    expected = np.linalg.norm(Sigma_x) / np.linalg.norm(F_tilde + Sigma_x)
    assert ev.discrepancy == pytest.approx(expected, rel=1e-9)


def test_proportional_fit_and_softmax_model_noise_equal_to_the_hessian():
    H = np.diag([2.0, 1.0])
    assert uv._proportional(3 * H, H) == pytest.approx((3.0, 0.0))
    k, residual = uv._proportional(H + np.diag([0.0, 1.0]), H)  # S = diag(2, 2)
    assert k == pytest.approx(6 / 5) and residual == pytest.approx(
        np.linalg.norm(np.diag([2 - 12 / 5, 2 - 6 / 5])) / np.linalg.norm(np.diag([2.0, 2.0])))
    # softmax regression: E_y~p[g] = 0, so Sigma^model = F = H (a linear model)
    ctx = uv.hessian_noise_context({"source": "softmax", "labels": "model", "stage": 1})
    assert ctx["k"] == pytest.approx(1.0, rel=1e-9) and ctx["residual"] < 1e-9


def test_k_over_loss_relations_read_the_ratios_along_training():
    ctx = {"ratios": np.array([0.5, 2.0, 4.0]), "k": 3.0, "loss": 0.2}
    ev = relation("claim:U.noise_hessian", "k ~ L(θ_t), reading: k*/L constant").check(ctx)
    assert ev.ok and ev.discrepancy == pytest.approx(8.0)
    ev = relation("claim:U.noise_hessian", "k ~ L(θ_t), reading: k*/L in").check(ctx)
    assert ev.ok is False and ev.discrepancy == pytest.approx(15.0)


def test_normality_relations_decide_by_the_fixed_level():
    rng = np.random.default_rng(0)
    normal, skewed = rng.standard_normal(2000), rng.exponential(size=2000)
    ctx = {"N": 10**6, "projections": {1: skewed, 4: normal, 16: None, 64: normal, 512: normal}}
    def normality(test: str, B: int):
        return relation("claim:U.noise_gaussian", f"ξ_b is Gaussian: {test} at B = {B} ")

    assert normality("Anderson-Darling", 1).check(ctx).ok is False
    ev = normality("Anderson-Darling", 4).check(ctx)
    statistic = stats.anderson(normal, method="interpolate").statistic
    assert ev.ok and ev.discrepancy == pytest.approx(statistic)
    ev = normality("skewness", 1).check(ctx)
    assert ev.discrepancy == pytest.approx(stats.skew(skewed)) and ev.ok is False
    assert normality("kurtosis", 16).check(ctx).ok is None


def test_one_step_items_read_the_sibling_claims():
    ev = uv.one_step_evidence("claim:U.clipped", "000: Sophia")
    assert ev.ok is not None and all("000: Sophia" in n for n in ev.detail["relations"])
    assert uv.one_step_evidence("claim:U.clipped", "no such relation").ok is None


# --- end to end --------------------------------------------------------------------------------


def test_dxi_cov_audit_runs_and_records_the_printed_types():
    result = audit(uv.CLAIMS["claim:U.dxi_cov"], max_examples=4)
    record = result.as_record()
    assert record["id"] == "claim:U.dxi_cov" and result.cases_tried == 4 + 3  # with 3 examples
    first = record["evidence"]["relations"][0]
    assert first["held"] == 0 and first["undefined"] == first["tried"]
