"""The survey audits (INVENTORY §4.3) run and evaluate what they claim to (machinery only:
no test asserts a claim's verdict)."""

import math

import numpy as np
import pytest

import reference
from verify import audits
from verify.audits import survey_common as sc
from verify.audits import survey_first_order as fo
from verify.audits import survey_second_order as so
from verify.audits.framework import audit

IDS = ("momentum_sqrtR momentum_effects nag_tolerance nag_rate adagrad rmsprop adam_invariance "
       "adam_convex adam_bias adam_fisher adam_robust lookahead gd_quadratic "
       "quadratic_conditioning fig10_fig11 landscape newton_quadratic newton_affine newton_nonpd "
       "newton_misc gn_lm cg bfgs lbfgs adahessian newton_cg").split()
SLOW = {"claim:S.newton_misc", "claim:S.adahessian"}  # timing claims: audited once below


def relation(claim, prefix):
    matches = [r for r in claim.relations if r.name.startswith(prefix)]
    assert len(matches) == 1, prefix
    return matches[0]


def test_every_survey_id_is_registered_with_thresholds():
    assert set(fo.CLAIMS) | set(so.CLAIMS) == {f"claim:S.{name}" for name in IDS}
    assert not set(fo.CLAIMS) & set(so.CLAIMS)
    for key in fo.CLAIMS | so.CLAIMS:
        assert audits.get(key).thresholds, key


@pytest.mark.parametrize("key", sorted(f"claim:S.{n}" for n in IDS))
def test_each_claim_audits_at_a_tiny_budget(key):
    claim = audits.get(key)
    result = audit(claim, max_examples=1 if key in SLOW else 2)
    assert result.verdict in {"holds", "refuted", "inconclusive"}
    record = result.as_record()
    assert record["evidence"]["relations"] and record["examples_tried"] >= 1
    assert sum(r["tried"] for r in record["evidence"]["relations"]) >= 1
    if claim.nature != "mathematical":
        assert result.verdict == "inconclusive"


# --- iteration spectra: agree with iterating the rules on a 1-D quadratic -------------------


@pytest.mark.parametrize("kind, rule_id", [("hb", fo.HB), ("nag", fo.NAG)])
@pytest.mark.parametrize("h, beta", [(0.3, 0.9), (1.7, 0.5), (3.5, 0.2), (0.01, 0.99)])
def test_iteration_spectrum_agrees_with_the_rule_on_a_1d_quadratic(kind, rule_id, h, beta):
    if rule_id not in reference.rules.REGISTRY:
        pytest.skip(f"{rule_id} not registered yet")
    lam = 4.0
    run = sc.run(rule_id, sc.quadratic(np.array([[lam]])), {"x": np.array([1.5])}, 25,
                 alpha=beta, eps=h / lam)
    modes = sc.modal_trajectory(kind, h, beta, 1.5, run["steps"])
    np.testing.assert_allclose(run["xs"][:, 0], modes, rtol=1e-9, atol=1e-12)
    # and the spectral radius is the asymptotic per-step rate of the modal recurrence
    M = sc.iteration_matrix(kind, h, beta)
    assert sc.spectral_radius(kind, h, beta) == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(M))), rel=1e-12)


def test_spectral_radius_closed_forms():
    # GD: |1 - h|; heavy ball at Polyak's optimum: sqrt(beta); NAG at h = 1: 0
    assert sc.spectral_radius("gd", 1.7, 0.0) == pytest.approx(0.7)
    kappa = 100.0
    beta = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    h = 4.0 / (1 + 1 / math.sqrt(kappa)) ** 2  # lambda = L = 1, step 4/(sqrt L + sqrt mu)^2
    assert sc.spectral_radius("hb", h, beta) == pytest.approx(math.sqrt(beta), rel=1e-6)
    assert sc.spectral_radius("nag", 1.0, 0.9) == pytest.approx(0.0, abs=1e-12)


def test_gd_closed_form_count_matches_iteration():
    lam, e0 = np.array([0.1, 1.0]), np.array([1.0, -2.0])
    k = fo.gd_steps(1.0, lam, e0, 1e-3)
    errs = [np.linalg.norm((1 - lam) ** j * e0) for j in range(200)]
    assert k == sc.steps_to(np.array(errs), 1e-3)
    assert fo.gd_steps(2.5, lam, e0, 1e-3) == math.inf  # |1 - 2.5| > 1 diverges


def test_heavy_ball_count_with_zero_momentum_is_gd():
    lam, e0 = np.geomspace(0.01, 1.0, 5), np.ones(5)
    counts = fo.hb_steps(np.array([1.0, 3.0]), 0.0, lam, e0, (1e-3,))
    assert counts[0, 0] == fo.gd_steps(1.0, lam, e0, 1e-3)
    assert counts[1, 0] == math.inf  # diverging row is not counted and does not stop the others


# --- relations that must fail on planted cases --------------------------------------------------


def test_printed_lookahead_sum_fails_and_the_reading_holds_at_t1():
    ctx = fo.lookahead_context({"t": 1, "n": 1, "alpha": 0.5, "seed": 0, "rule_alpha": 0.5,
                                "rule_k": 5})
    literal = relation(fo.lookahead, "printed unrolled sum").check(ctx)
    reading = relation(fo.lookahead, "reading:").check(ctx)
    assert literal.ok is False and reading.ok is True
    # by hand: phi2 = a th1 + a(1-a) th0 + (1-a)^2 phi0; printed: a th1 + a th0 + (1-a) phi0
    phis, a = ctx["phis"], 0.5
    th0 = (phis[1] - (1 - a) * phis[0]) / a
    th1 = (phis[2] - (1 - a) * phis[1]) / a
    np.testing.assert_allclose(ctx["literal"], a * (th1 + th0) + (1 - a) * phis[0])


def test_gd_boundary_alpha_two_over_lambda_is_bounded_not_unstable():
    ctx = fo.gd_context({"h": [2.0], "j": 0, "k": 3, "seed": 0, "rotated": False})
    ev = relation(fo.gd_quadratic, "to prevent instability").check(ctx)
    assert ev.ok is False and ev.detail["bounded"] is True
    assert relation(fo.gd_quadratic, "case 2").check(ctx).ok is True
    assert relation(fo.gd_quadratic, "θ_k (the GD rule)").check(ctx).ok is True


def test_zero_eigenvalue_breaks_the_strict_other_directions_bound():
    ctx = fo.gd_context({"h": [0.0, 1.0], "j": 0, "k": 1, "seed": 0, "rotated": False})
    assert relation(fo.gd_quadratic, "α < 2/λ_max ⇒").check(ctx).ok is False


def test_adam_invariance_fails_with_a_large_eps_and_holds_without_one():
    case = {"n": 2, "T": 3, "seed": 0, "log_c": [2.0, -2.0, 0.0, 0.0]}
    rel = fo.adam_invariance.relations[0]
    assert rel.check(fo.invariance_context({**case, "eps": 0.0})).ok is True
    assert rel.check(fo.invariance_context({**case, "eps": 1e-3})).ok is False


def test_fig10_eigenstructure_and_small_step_monotone_path():
    ctx = fo.figures_context({"alpha_frac": 0.1, "seed": 0})
    assert relation(fo.fig10_fig11, "Fig. 10: condition number 5").check(ctx).ok is True
    assert relation(fo.fig10_fig11, "Fig. 10: most curvature").check(ctx).ok is True
    # alpha = 0.04 < 1/lambda_max: the top mode decays monotonically, no zig-zag
    assert relation(fo.fig10_fig11, "Fig. 10: GD").check(ctx).ok is False


def test_well_conditioned_threshold_on_a_planted_kappa():
    rel = relation(fo.quadratic_conditioning, "well-conditioned")
    assert rel.check({"kappa": 5.0}).ok is True
    assert rel.check({"kappa": 1e4}).ok is False


def test_ggn_with_a_duplicated_feature_is_singular():
    ctx = so.newton_cg_context({"seed": 0})
    assert ctx["G_min"] < 1e-12
    assert relation(so.newton_cg, "G is always").check(ctx).ok is False


def test_affine_problem_derivatives():
    rng = np.random.default_rng(0)
    base = sc.quadratic(np.diag([1.0, 3.0]), np.array([1.0, -1.0]))
    A, b = rng.standard_normal((2, 2)), rng.standard_normal(2)
    aff = sc.Affine(base, {"x": np.zeros(2)}, A, b)
    y = rng.standard_normal(2)
    np.testing.assert_allclose(aff.grad({"y": y})["y"], A.T @ (np.diag([1.0, 3.0]) @ (
        A @ y + b - np.array([1.0, -1.0]))), rtol=1e-12)
    np.testing.assert_allclose(aff.hessian({"y": y}), A.T @ np.diag([1.0, 3.0]) @ A, rtol=1e-12)


def test_missing_rule_is_a_reason():
    assert sc.run("rule:fo.absent", sc.quadratic(np.eye(1)), {"x": np.zeros(1)}, 3) == (
        "not implemented yet: rule:fo.absent")
    assert sc.needs("rule:fo.absent")(lambda c: None)({}).detail["undefined"] == (
        "not implemented yet: rule:fo.absent")


# --- E-protocol (INVENTORY §4.0): seed-dependent comparisons carry paired CIs ------------------


def check_protocol_detail(ev, min_seeds):
    """The relation's detail: per-arm mean ± std of the recorded per-seed values, the paired
    difference inside its CI, and a decision consistent with the evaluation."""
    d = ev.detail
    assert ev.ok is (d["decision"] == "holds")
    assert d["n_seeds"] >= min_seeds and len(d["seeds"]) == d["n_seeds"]
    (name_a, arm_a), (name_b, arm_b) = d["arms"].items()
    a, b = np.asarray(d["per_seed"][name_a]), np.broadcast_to(d["per_seed"][name_b], (
        d["n_seeds"],))
    assert arm_a["mean"] == pytest.approx(a.mean()) and arm_b["mean"] == pytest.approx(b.mean())
    assert arm_a["std"] == pytest.approx(a.std(ddof=1))
    lo, hi = d["ci95"]
    assert lo <= d["mean_difference"] <= hi
    assert d["mean_difference"] == pytest.approx(float(np.mean(a - b)))
    assert d["decision_rule"].startswith("holds iff the 95% paired-bootstrap CI")
    if "censored_at" in d:
        assert np.all(a <= d["censored_at"]) and np.all(b <= d["censored_at"])


@pytest.mark.parametrize("claim, prefix, ctx, seeds", [
    (fo.momentum_effects, "momentum close to 1", fo.effects_context({"h": 0.5, "beta": 0.9}), 5),
    (fo.momentum_effects, "start at 0.5", fo.effects_context({"h": 0.5, "beta": 0.9}), 5),
    (fo.rmsprop, "divergence with sparse", {"beta": 0.999}, 10),
    (fo.rmsprop, "corrects axis-aligned", {"beta": 0.999}, 5),
    (fo.rmsprop, "converges rapidly", {"beta": 0.999}, 5),
    (fo.adam_robust, "Adam's good-lr", {"problem": "logreg"}, 5),
])
def test_seeded_comparisons_report_paired_bootstrap_cis(claim, prefix, ctx, seeds):
    if any(sc.missing(key) for key in ("rule:fo.rmsprop", "rule:fo.adam", fo.SGD, fo.HB)):
        pytest.skip("a compared rule is not registered yet")
    check_protocol_detail(relation(claim, prefix).check(ctx), seeds)
    assert claim.thresholds["seeds"] >= 5 and any(
        str(v).startswith("holds iff") for v in claim.thresholds.values())


def test_momentum_counts_are_paired_over_the_same_starts():
    # every beta runs on the same 5 starts: beta = 0 is GD, whose count the closed form gives
    counts = fo._beta_counts()
    lam = sc.family_spectrum("geometric", 10, 100.0, 0)
    for seed, n in zip(fo.EFFECT_SEEDS, counts[0.0], strict=True):
        e0 = np.random.default_rng([seed, 3]).standard_normal(10)
        assert n == fo.gd_steps(1.0, lam, e0, 1e-6)
