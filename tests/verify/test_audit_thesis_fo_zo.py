"""The thesis first- and zeroth-order audits compute what they claim to (machinery, not verdicts).

Closed forms used below: GD with step 1/L on a 2-D quadratic with Hessian diag(L, mu) and start
c = (1, 1) in the eigenbasis has r_t = mu (1 - mu/L)^(2t) / (L + mu); steepest descent with
exact line search from c = (1/L, 1/mu) contracts f - f* by exactly ((k - 1)/(k + 1))^2 per step.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import strategies as st

import reference
from verify import audits
from verify.audits import framework
from verify.audits import thesis_first_order as fo
from verify.audits import thesis_zeroth_order as zo
from verify.audits.framework import Claim, Relation, audit

FO_IDS = ("gd_rate", "acceleration", "fo_qualitative", "table41_regret")
ZO_IDS = ("zo_fd_cost", "zo_smoothing", "zo_ghadimi_lan", "zo_parallel", "zo_svrg", "zo_adamm",
          "zo_hvp", "zo_qn", "sign_zo", "mezo_order")


def relation(claim, start):
    matches = [r for r in claim.relations if r.name.startswith(start)]
    assert len(matches) == 1, start
    return matches[0]


def test_every_listed_id_is_registered_with_thresholds():
    assert set(fo.CLAIMS) == {f"claim:T.{i}" for i in FO_IDS}
    assert set(zo.CLAIMS) == {f"claim:T.{i}" for i in ZO_IDS}
    for key, claim in {**fo.CLAIMS, **zo.CLAIMS}.items():
        assert audits.get(key) is claim
        assert claim.thresholds and claim.note
    assert fo.fo_qualitative.nature == "qualitative"
    assert zo.zo_parallel.nature == "record" and zo.zo_qn.nature == "qualitative"


# --- claim:T.gd_rate: the rate helpers against closed forms -------------------------------------


def test_gd_ratios_match_the_two_mode_closed_form():
    L, mu = 1.0, 0.1
    lam, c = np.array([L, mu]), np.ones(2)
    r = fo.gd_ratios(lam, c, 1.0 / L, 50)
    t = np.arange(51)
    # the top mode is removed in one step (1 - L/L = 0); r_0 = 1
    np.testing.assert_allclose(r[1:], mu * (1 - mu / L) ** (2 * t[1:]) / (L + mu), rtol=1e-13)
    assert r[0] == 1.0


def test_exact_line_search_attains_the_kantorovich_rate_from_the_worst_start():
    L, mu = 1.0, 0.01
    r, etas = fo.linesearch_ratios(np.array([L, mu]), np.array([1 / L, 1 / mu]), 20)
    kappa = L / mu
    np.testing.assert_allclose(r[1:] / r[:-1], ((kappa - 1) / (kappa + 1)) ** 2, rtol=1e-10)
    assert etas[0] == pytest.approx(2 / (L + mu), rel=1e-12)


def test_eigenbasis_trajectory_is_anchored_to_the_registered_rules():
    for reading in fo.READINGS:
        case = {"kappa": 10.0, "d": 3, "family": "geometric", "x0": "random", "halved": False,
                "reading": reading, "constants": "hessian", "seed": 3}
        ctx = fo.gd_rate_context(case)
        assert ctx["anchor"] is None, ctx["anchor"]
        assert ctx["r"].shape == (fo.HORIZON + 1,)


def test_rate_relations_planted_exact_and_perturbed():
    kappa, T = 10.0, 200
    ctx = {"kappa": kappa, "T": T, "eta": 0.1, "anchor": None}
    exact = dict(ctx, r=(1 - 1 / kappa) ** np.arange(T + 1))
    eq = relation(fo.gd_rate, "f(x_t) − f* = (1 − 1/κ)^t")
    bound = relation(fo.gd_rate, "reading as a bound")
    assert eq.check(exact).ok is True and bound.check(exact).ok is True
    slower = dict(ctx, r=(1 - 1 / (2 * kappa)) ** np.arange(T + 1))
    ev = eq.check(slower)
    assert ev.ok is False and ev.detail["first_t_differing"] == 1
    assert bound.check(slower).ok is False
    faster = dict(ctx, r=(1 - 2 / kappa) ** np.arange(T + 1))
    assert eq.check(faster).ok is False and bound.check(faster).ok is True
    assert eq.check(dict(exact, anchor="not implemented yet: rule:x")).ok is None


def test_unhalved_eq3_with_printed_H_equal_A_gives_a_non_contracting_top_mode():
    case = {"kappa": 2.0, "d": 2, "family": "two_point", "x0": "top", "halved": False,
            "reading": "1/L", "constants": "A", "seed": 0}
    ctx = fo.gd_rate_context(case)
    assert ctx["eta"] * ctx["lam_H"][0] == pytest.approx(2.0)  # eta = 1/lam_max(A) on H = 2A
    np.testing.assert_allclose(ctx["r"], 1.0, rtol=1e-12)


# --- claim:T.acceleration and the momentum helpers -------------------------------------------


def test_heavy_ball_radius_matches_the_iteration_matrix_eigenvalues():
    for step_lam in (0.01, 0.5, 1.9, 3.5):
        for beta in (0.0, 0.3, 0.9):
            M = np.array([[1 + beta - step_lam, -beta], [1.0, 0.0]])
            expected = np.max(np.abs(np.linalg.eigvals(M)))
            assert fo.hb_radius(np.array([step_lam]), beta)[0] == pytest.approx(expected,
                                                                                rel=1e-10)


def test_momentum_recurrences_agree_with_the_rules():
    assert fo._momentum_anchor({"family": "geometric", "d": 4, "seed": 1}) is None


def test_gd_iteration_count_is_the_first_hit_of_the_closed_form():
    lam, c = np.array([1.0, 0.05]), np.array([1.0, 1.0])
    n = fo.gd_iterations(lam, c, 1.0, 1e-6)
    r = fo.gd_ratios(lam, c, 1.0, n)
    assert r[n] <= 1e-6 < r[n - 1]


def test_acceleration_figure_draws_three_curves():
    fig = fo.acceleration_figure([{"id": "claim:T.acceleration", "verdict": "x"}])
    assert len(fig.axes[0].lines) == 5 and "(x)" in fig.axes[0].get_title()


def test_radam_and_adabound_closed_forms():
    rho, phi = fo.radam_phi(np.array([1.0, 1e6]))
    assert phi[0] == 1.0 and phi[1] == pytest.approx(1.0, abs=1e-9)  # rho_t -> rho_inf
    lo, hi = fo.adabound_bounds(np.array([1.0, 1e9]))
    assert hi[-1] - lo[-1] < 1e-6 and lo[0] == pytest.approx(0.1 * (1 - 1 / 1.001))


# --- machinery that cannot pass vacuously ----------------------------------------------------


def test_planted_failing_relation_is_refuted_with_a_shrunk_witness():
    planted = Claim(
        "claim:T.planted", "planted", "planted",
        st.fixed_dictionaries({"kappa": st.sampled_from(fo.KAPPAS)}),
        lambda c: {"kappa": c["kappa"], "T": 20, "eta": 1.0, "anchor": None,
                   "r": (1 - 1 / c["kappa"]) ** (2 * np.arange(21))},
        (Relation("planted rate", fo.anchored("anchor", fo._rate_equality)),),
        thresholds={"rtol": fo.RATE_RTOL},
    )
    result = audit(planted, max_examples=10)
    assert result.verdict == "refuted"
    assert result.relations[0].witness == {"kappa": 2.0}  # the first of the sampled values


def test_mc_equal_detects_a_wrong_mean_and_accepts_the_right_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 3)) + np.array([1.0, 0.0, -1.0])
    assert fo.mc_equal(x, np.array([1.0, 0.0, -1.0])).ok is True
    ev = fo.mc_equal(x, np.array([1.2, 0.0, -1.0]))
    assert ev.ok is False and ev.discrepancy > 1.0


def test_slope_recovers_a_planted_exponent():
    x = np.array([1.0, 10.0, 100.0])
    assert fo.slope(x, 3 * x**0.5) == pytest.approx(0.5)


# --- zeroth-order helpers ------------------------------------------------------------------------


def test_coordinate_cost_is_counted_at_the_oracle():
    assert zo.coord_cost(5, False)["coord"]["loss_calls"] == 6
    assert zo.coord_cost(5, True)["coord"]["loss_calls"] == 10
    assert zo.coord_cost(5, False)["coord"]["grad_calls"] == 0
    assert zo.coord_cost(5, False)["direction"]["loss_calls"] == 2


def test_probe_moments_match_sampled_ones():
    for dist in zo.U_DISTS:
        U = zo.draws(dist, 3, 4000, 1)
        m2, m4 = zo.moments(dist, 3)
        assert np.mean(U**2) == pytest.approx(m2, rel=0.05)
        assert np.mean(U**4) == pytest.approx(m4, rel=0.15)


def test_smoothing_on_the_sphere_is_off_by_the_factor_P():
    case = {"kind": "quadratic", "u_dist": "uniform_sphere", "h": 0.1, "P": 2, "seed": 0}
    ctx = zo.smoothing_context(case)
    assert ctx["anchor"] is None
    np.testing.assert_allclose(ctx["E_hat"], ctx["grad"] / 2, rtol=1e-14)
    ev = relation(zo.zo_smoothing, "E_u[∇̂L(θ)] = ∇L_h(θ): exact").check(ctx)
    assert ev.ok is False and ev.discrepancy == pytest.approx(0.5)
    gauss = zo.smoothing_context({**case, "u_dist": "gaussian", "kind": "cubic"})
    assert relation(zo.zo_smoothing, "E_u[∇̂L(θ)] = ∇L_h(θ): exact").check(gauss).ok is True


def test_vectorised_draws_equal_the_registered_estimators():
    problem = zo.zo_test("logistic", 3, 2)
    f, g = zo.batch_fns(problem)
    x = np.array([0.3, -1.0, 0.5])
    assert f(x)[0] == pytest.approx(problem.loss({"x": x}), rel=1e-13)
    np.testing.assert_allclose(g(x)[0], problem.grad({"x": x})["x"], rtol=1e-12)
    ctx = zo.hvp_context({"kind": "quadratic", "P": 2, "h": 1e-2, "seed": 0})
    assert "reason" not in ctx
    # on a quadratic the quotient is g^T z / h + z^T A z / 2 + z^T A u: its mean is near that
    mean = ctx["values"].mean()
    assert abs(mean - (ctx["gz_over_h"] + ctx["zHz"] / 2)) < 5 * ctx["values"].std() / 20


def test_printed_hvp_compares_a_vector_with_a_scalar():
    ctx = zo.hvp_context({"kind": "cubic", "P": 3, "h": 1e-1, "seed": 1})
    ev = relation(zo.zo_hvp, "H z ≈ printed quotient").check(ctx)
    assert ev.ok is None and "ill-typed" in ev.detail["undefined"]


def test_mezo_per_draw_error_on_a_cubic_is_second_order():
    ctx = zo.mezo_context({"kind": "cubic", "P": 2, "seed": 0})
    ev = relation(zo.mezo_order, "reading per draw").check(ctx)
    assert ev.ok is True and ev.discrepancy == pytest.approx(2.0, abs=0.05)
    literal = relation(zo.mezo_order, "literal, per draw").check(ctx)
    assert literal.ok is False  # a single draw does not tend to ∇L


def test_ghadimi_lan_runs_are_anchored_to_rule_zo_sgd():
    run = zo.gl_run("quad_noisy", 2)
    assert run["anchor"] is None
    assert len(run["best"]) == len(zo.GL_HORIZONS) and run["sigma2"] > 0
    assert zo.printed_bound(run, 2, 100) > 0


# --- every claim audits at a tiny budget --------------------------------------------------------


@pytest.mark.parametrize("key", sorted({**fo.CLAIMS, **zo.CLAIMS}))
def test_claim_audits_at_a_tiny_budget(key, monkeypatch):
    monkeypatch.setattr(framework, "_shrink_witness", lambda *a, **k: None)  # speed only
    claim = dataclasses.replace(audits.get(key), examples=audits.get(key).examples[:1])
    result = audit(claim, max_examples=2)
    assert result.verdict in ("holds", "refuted", "inconclusive")
    record = result.as_record()
    assert record["examples_tried"] == 3
    relations = record["evidence"]["relations"]
    assert len(relations) == len(claim.relations)
    assert sum(r["tried"] for r in relations) > 0 or not record["evidence"][
        "cases_satisfying_all_hypotheses"]
    assert math.isfinite(sum(r["tried"] for r in relations))


def test_missing_rule_is_a_reason():
    assert fo.missing("rule:zo.nonexistent") == "not implemented yet: rule:zo.nonexistent"
    assert fo.missing("rule:zo.sgd", "est:zo_direction") is None
    assert "rule:zo.sgd" in reference.rules.REGISTRY


# --- E-protocol (INVENTORY §4.0): seed-dependent decisions use bootstrap CIs -------------------


def test_regret_exponents_are_decided_on_a_ci_over_paired_seeds():
    rel = relation(fo.table41_regret, "Adam:")
    ctx = fo.regret_context({"family": "linear", "C": 3.0, "dim": 3, "seed": 0, "beta1": 0.9,
                             "beta2": 0.999})
    ev = rel.check(ctx)
    d = ev.detail
    assert d["n_seeds"] == fo.REGRET_SEEDS >= 5 and d["seeds"] == list(range(5))
    exps = [fo._regret_exponent(r, True) for r in d["regret"]]
    np.testing.assert_allclose(d["per_seed"]["exponent Adam"], exps)
    assert d["ci95"][0] <= d["mean_difference"] <= d["ci95"][1]
    assert ev.ok is (d["ci95"][1] <= 0.0) and ev.discrepancy == pytest.approx(-d["ci95"][1])
    assert d["versus_ogd"]["n_seeds"] == 5
    # the deterministic reddi family runs once: a zero-width CI at its exponent
    reddi = rel.check(fo.regret_context({"family": "reddi", "C": 3.0, "dim": 1, "seed": 0,
                                         "beta1": 0.0, "beta2": "reddi"}))
    lo, hi = reddi.detail["ci95"]
    assert reddi.detail["n_seeds"] == 1 and lo == hi == reddi.detail["mean_difference"]


def test_ghadimi_lan_bootstrap_refits_the_seed_averaged_exponent():
    run = zo.gl_run("quad_noisy", 2)
    assert run["best"] == zo.gl_best(run, np.arange(zo.GL_SEEDS))
    estimate, (lo, hi) = zo.gl_boot("quad_noisy", 2)["T"]
    assert estimate == pytest.approx(fo.slope(zo.GL_HORIZONS, run["best"]))
    assert lo <= hi and zo.GL_SEEDS >= 5
    # resampling one seed five times is that seed's own curve
    single = zo.gl_best(run, np.zeros(zo.GL_SEEDS, int))
    np.testing.assert_allclose(single, zo.gl_best(run, np.array([0])))
    ctx = zo.gl_context({"problem": "quad_noisy", "P": 2})
    ev = relation(zo.zo_ghadimi_lan, "(1/T)").check(ctx)
    assert ev.detail["ci95"] == [lo, hi] and ev.ok is (hi <= -1.0 + fo.SLOPE)


def test_svrg_variances_are_compared_on_paired_draws():
    ctx = zo.svrg_context({"d": 2, "seed": 0})
    ev = zo.zo_svrg.relations[0].check(ctx)
    for r, comp in ev.detail["paired_by_distance"].items():
        v = ctx["variance"][r]
        assert comp["n_seeds"] == zo.N_MC
        # the mean per-draw squared deviation is the total variance (ddof 0)
        assert comp["arms"]["SVRG sq. deviation"]["mean"] == pytest.approx(v["var_svrg"])
        assert comp["arms"]["plain sq. deviation"]["mean"] == pytest.approx(v["var_plain"])
    assert ev.ok is all(c["decision"] == "holds" for c in ev.detail["paired_by_distance"].values())


def test_sign_fraction_is_decided_on_its_ci():
    ctx = zo.sign_context({"kind": "cubic", "P": 4, "seed": 3})
    ev = zo.sign_zo.relations[0].check(ctx)
    d = ev.detail
    assert d["fraction"] == pytest.approx(ctx["agree"].mean())
    assert d["ci95"][0] <= d["fraction"] - 0.5 <= d["ci95"][1]
    assert ev.ok is (d["ci95"][0] > 0) and len(ctx["loss_ratio_sign"]) == 5
