"""The unified-view one-step audits evaluate what the documents print (machinery, not verdicts).

Hand-computed cases: H = diag(1, 4), g = (1, 2) unless stated. Newton's step is d = (-1, -1/2),
so g_hat = (1, 2), d_hat = (-1, -1/2), Delta_d = 1, ||d||_H^2 = 2, ||d_i||_H^2 = (1, 1), the
table's Delta_d^i = g_hat_i d_hat_i + 1/2 d_hat_i^2 lam_i = (-1/2, -1/2).
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import strategies as st

import reference
from reference.tree import flatten
from verify.audits import unified_view_models as models
from verify.audits import unified_view_onestep as onestep
from verify.audits.framework import audit
from verify.strategies import curvature_cases

H = np.diag([1.0, 4.0])
G = np.array([1.0, 2.0])
NEWTON = np.array([-1.0, -0.5])


def hand_context(d=NEWTON, H=H, g=G, **extra):
    """A context as the claims build it, from a chosen H, g, d (theta = 0, f the quadratic)."""
    lam = np.linalg.eigvalsh(H)
    ctx = {"H": H, "g": g, "theta": np.zeros(len(g)), "n": len(g), "singular": False,
           "psd": True, "kappa": float(lam.max() / lam[lam > 0].min()), "loss_problem": None,
           **extra}
    ctx["q"] = onestep.quantities(ctx, d)
    return ctx


def relation(claim, name):
    matches = [r for r in claim.relations if r.name == name]
    assert len(matches) == 1, name
    return matches[0]


# --- evaluation helpers ---------------------------------------------------------------------


def test_every_onestep_id_has_a_claim_with_thresholds():
    ids = ("general newton_pure newton_damped ngd_normalized gn_normalized eigen_normalized gd "
           "gd_stability gd_optimal_lr normalized_gd sign_gd diag clipped ngd_equivalences "
           "kl_metric ef_quality spectrum qn_costs table1").split()
    claims = {**onestep.CLAIMS, **models.CLAIMS}
    assert set(claims) == {f"claim:U.{name}" for name in ids}
    assert all(claim.thresholds for claim in claims.values())
    assert claims["claim:U.spectrum"].nature == "qualitative"
    assert claims["claim:U.qn_costs"].nature == "record"


def test_exact_tolerance_grows_with_n_kappa_eps_and_respects_the_term_scale():
    ctx = {"n": 12, "kappa": 1e8}
    eps = np.finfo(float).eps
    assert onestep.exact_rtol(ctx) == pytest.approx(1e-10 + 16.0 * 12 * 1e8 * eps, rel=1e-15)
    # a sum of O(1) terms that cancels to 1e-17 vs 0: relative to the terms it is exact
    assert onestep.exact(1e-17, 0.0, {"n": 1, "kappa": 1.0}).ok is False
    ev = onestep.exact(1e-17, 0.0, {"n": 1, "kappa": 1.0}, scale=1.0)
    assert ev.ok is True and ev.discrepancy == pytest.approx(1e-17)


def test_undefined_direction_propagates_its_reason():
    ctx = {"q": "rule:uv.newton: singular", "n": 1, "kappa": 1.0}
    ev = relation(onestep.newton_pure, "d = −g̃ = −H⁻¹g").check(ctx)
    assert ev.ok is None and ev.detail["undefined"] == "rule:uv.newton: singular"


def test_missing_rule_is_a_reason_not_an_error():
    assert onestep.step(hand_context(), "rule:uv.nonexistent") == (
        "rule:uv.nonexistent not implemented yet"
    )


def test_singular_rule_error_becomes_a_reason_with_numbers_masked():
    ctx = hand_context(H=np.diag([0.0, 1.0]), d=np.zeros(2))
    reason = onestep.step(ctx, "rule:uv.newton", alpha=1.0)
    assert reason.startswith("rule:uv.newton: ") and "singular" in reason
    assert not any(ch.isdigit() for ch in reason.split(": ", 1)[1].replace("uv", ""))


# --- claim:U.general and the Delta_d^i definitions --------------------------------------------


def test_quantities_of_newtons_step_match_the_hand_computation():
    q = hand_context()["q"]
    np.testing.assert_allclose(q["Delta_i"], [-0.5, -0.5], rtol=1e-15)
    np.testing.assert_allclose(q["normH2_i"], [1.0, 1.0], rtol=1e-15)
    assert q["Delta"] == pytest.approx(1.0, rel=1e-15)
    assert q["Delta_scale"] == pytest.approx(3.0, rel=1e-15)  # |g^T d| + 1/2 d^T H d


def test_printed_delta_i_fails_as_defined_and_holds_negated():
    ctx = hand_context()
    defined = relation(onestep.newton_pure,
                       "Δ_d^i = ĝ_i²/(2λ_i) [Δ_d^i as defined: ĝ_i d̂_i + ½d̂_i²λ_i]").check(ctx)
    negated = relation(onestep.newton_pure,
                       "Δ_d^i = ĝ_i²/(2λ_i) [reading: Δ_d^i negated, ΣΔ_d^i = Δ_d]").check(ctx)
    # gap ||(-1, -1)|| against the terms' size ||(3/2, 3/2)||: 2/3
    assert defined.ok is False and defined.discrepancy == pytest.approx(2 / 3, rel=1e-12)
    assert negated.ok is True and negated.discrepancy < 1e-15


def test_norm_in_the_space_of_lambda_e_is_evaluated_literally():
    ctx = hand_context()
    literal = relation(onestep.general,
                       "‖d‖_H² is the norm in the space of [λ₁e₁, …, λ_ne_n]: ‖Σ_i d̂_i λ_ie_i‖₂²")
    reading = relation(onestep.general,
                       "reading: … in the space of [√λ₁e₁, …, √λ_ne_n]: ‖Σ_i d̂_i √λ_ie_i‖₂²")
    ev = literal.check(ctx)  # sum lam^2 d_hat^2 = 1 + 4 = 5 against d^T H d = 2
    assert ev.ok is False and ev.discrepancy == pytest.approx(3 / 5, rel=1e-12)
    assert reading.check(ctx).ok is True


def test_expansion_relation_is_undefined_without_a_loss():
    ev = relation(onestep.general,
                  "Δ_d = f(θ) − f(θ+d) ≈ −(gᵀd + ½dᵀHd) (second-order expansion)").check(
        hand_context())
    assert ev.ok is None and "no loss f" in ev.detail["undefined"]


def test_expansion_is_exact_on_the_quadratic():
    ctx = onestep.general_context(onestep.synthetic(3, d_scale=0.5))
    assert ctx["q"]["actual_decrease"] == pytest.approx(ctx["q"]["Delta"], rel=1e-9)


# --- claim:U.gn_normalized: ill-typed printed forms ------------------------------------------


def test_matrix_printed_where_a_scalar_stands_is_ill_typed():
    d = -0.5 * G / np.sqrt([1.0, 4.0])  # eps = 0.5: d = -eps H^{-1/2} g
    ctx = hand_context(d=d, eps=0.5)
    ev = relation(onestep.gn_normalized, "Δ_d = ε(H^{−1/2} − (ε/2)I)‖g‖₂").check(ctx)
    assert ev.ok is None and ev.detail == {
        "lhs": "scalar", "rhs": "ndarray(2, 2)", "undefined": "ill-typed: shapes differ"}
    reading = relation(onestep.gn_normalized, "reading: Δ_d = ε gᵀ(H^{−1/2} − (ε/2)I)g")
    assert reading.check(ctx).ok is True


def test_signed_length_eps_g_hat_fails_only_for_negative_components():
    d = -0.5 * np.array([1.0, -2.0]) / np.sqrt([1.0, 4.0])
    ctx = hand_context(d=d, g=np.array([1.0, -2.0]), eps=0.5)
    signed = relation(onestep.gn_normalized, "‖d_i‖_H = εĝ_i").check(ctx)
    absolute = relation(onestep.gn_normalized, "reading: ‖d_i‖_H = ε|ĝ_i|").check(ctx)
    # lengths (1/2, 1) against (1/2, -1): gap 2 over max norm sqrt(5)/2
    assert signed.ok is False and signed.discrepancy == pytest.approx(4 / math.sqrt(5))
    assert absolute.ok is True


def test_to_make_delta_i_positive_is_an_equivalence_with_a_signed_slack():
    d = -0.5 * G / np.sqrt([1.0, 4.0])
    name = "To make Δ_d^i > 0, ε < 2/√(max_i λ_i) [reading: Δ_d^i negated]"
    ev = relation(onestep.gn_normalized, name).check(hand_context(d=d, eps=0.5))
    assert ev.ok is True and ev.discrepancy == pytest.approx(2 / 2 - 0.5)  # 2/sqrt(4) - eps


# --- claim:U.gd, claim:U.gd_stability -------------------------------------------------------


def test_gd_real_delta_misses_the_half_and_the_reading_has_it():
    ctx = hand_context(d=-G / 4, alpha=1.0, L=4.0)  # Delta_d = 5/4 - 17/32 = 0.71875
    printed = relation(onestep.gd, "Δ_d = (α/L)‖g‖₂² − (α²/L²)‖g‖_H²").check(ctx)
    reading = relation(onestep.gd, "reading: Δ_d = (α/L)‖g‖₂² − (α²/(2L²))‖g‖_H²").check(ctx)
    # printed 5/4 - 17/16 = 0.1875; gap 17/32 over the terms' size 5/4 + 17/32
    assert printed.ok is False and printed.discrepancy == pytest.approx((17 / 32) / (57 / 32))
    assert reading.ok is True


def test_gd_001_rendering_sets_a_scalar_to_a_vector():
    ctx = onestep.gd.context(onestep.synthetic(3, alpha=0.5, L_factor=2.0))
    ev = relation(onestep.gd, "001: Δ'_d = (α/L)(1 − α/2)ĝ_i").check(ctx)
    assert ev.ok is None and ev.detail["rhs"] == "ndarray(3,)"
    assert ctx["p"]["Q"] == pytest.approx(np.eye(3))  # H' = L I: the coordinate basis


def test_stability_at_alpha_two_is_undecidable_not_refuted():
    ctx = onestep.gd_stability.context(onestep.synthetic(2, rotated=False, alpha=2.0,
                                                         L_factor=1.5))
    ev = relation(onestep.gd_stability, "To make Δ'_d > 0, we have α < 2").check(ctx)
    assert ev.ok is None and "within rounding" in ev.detail["undefined"]


def test_line_search_finds_the_printed_optimum_on_the_hand_quadratic():
    case = onestep.synthetic(2, rotated=False)
    ctx = onestep.linesearch_context(case)
    eta = float(ctx["g"] @ ctx["g"] / (ctx["g"] @ ctx["H"] @ ctx["g"]))
    assert ctx["eta_printed"] == pytest.approx(eta, rel=1e-15)
    assert ctx["rtol_linesearch"] < 1e-4
    assert ctx["eta_model"] == pytest.approx(eta, rel=ctx["rtol_linesearch"])


# --- claim:U.eigen_normalized, claim:U.sign_gd: sign(x) = x/|x| ------------------------------


def test_printed_sign_is_undefined_at_a_zero_gradient_entry():
    ctx = onestep.sign_context({**onestep.synthetic(2, rotated=False, eps=1.0, L_factor=1.0)})
    ctx["g"] = np.array([0.0, 1.0])
    ev = relation(onestep.sign_gd, "reading: ‖d_i‖_H² = ε²").check(ctx)
    assert ev.ok is None and ev.detail["undefined"] == onestep.SIGN_AT_ZERO


def test_sign_fixed_point_with_d_inside_flips_the_sign():
    ctx = onestep.sign_context(onestep.synthetic(2, rotated=False, eps=1.0, L_factor=1.0))
    literal = relation(onestep.sign_gd, "d = −εH^{−1/2}Q sign(Qᵀd) (d on both sides)").check(ctx)
    assert literal.ok is False and literal.discrepancy == pytest.approx(2.0)  # rhs = -d


def test_eigen_forms_differ_by_the_square_root_of_lambda():
    name = "‖d_i‖_H² = ε² (control ‖d_i‖_H = ε)"
    for form, holds in (("matrix", True), ("coordinates", False)):
        ctx = onestep.eigen_context(onestep.synthetic(2, rotated=False, eps=1.0, form=form))
        assert relation(onestep.eigen_normalized, name).check(ctx).ok is holds


def test_printed_g_hat_over_lambda_makes_the_noise_tendency_hold_by_construction():
    ctx = hand_context()
    printed, reading = (relation(onestep.eigen_normalized, n).check(ctx) for n in (
        "higher λ_i tends to have smaller ĝ_i (printed ĝ_i = gᵀe_i/λ_i, E over g ~ N(0, I))",
        "reading (ĝ_i = gᵀe_i): higher λ_i tends to have smaller ĝ_i"))
    # E|g^T e_i| / lam_i = sqrt(2/pi) (1, 1/4): steps down by 3/4 sqrt(2/pi)
    step = 0.75 * math.sqrt(2 / math.pi)
    assert printed.ok is True and printed.discrepancy == pytest.approx(step)
    assert reading.ok is False and reading.discrepancy == 0.0


# --- claim:U.clipped, claim:U.diag ----------------------------------------------------------


def test_clipped_vector_set_to_scalars_is_ill_typed_and_001_sophia_too():
    ctx = onestep.clipped_context(onestep.synthetic(3, alpha=0.5, eps=0.2))
    for name in ("GN Clipped NGD: \\vec d_i = −α min(1, C√λ_i)ĝ_i/λ_i (\\vec d_i = d̂_i e_i, "
                 "a vector)",
                 "001: Sophia d̂_i = −α min(1, λ_iε/|ĝ_i|)ĝ/λ_i (ĝ the vector)"):
        ev = relation(onestep.clipped, name).check(ctx)
        assert ev.ok is None and "ill-typed" in ev.detail["undefined"]


def test_q1_clipping_is_clip_by_norm_while_q2_is_not_when_the_clip_is_active():
    # H = I, g = (3, 4): ||g~||_H = 5; alpha = 1, eps = 1: q=2 scale 1/25, clip-by-norm 1/5
    ctx = onestep.clipped_context(onestep.synthetic(2, rotated=False, alpha=1.0, eps=1.0))
    ctx.update(H=np.eye(2), g=np.array([3.0, 4.0]), kappa=1.0)
    ctx["q"] = onestep.quantities(ctx, -np.array([3.0, 4.0]) / 25)
    ctx["d_q1"] = -np.array([3.0, 4.0]) / 5
    first = relation(onestep.clipped, "the first one is the gradient-norm clipping technique: "
                                      "d = Newton's step clipped to ‖d‖_H ≤ ε").check(ctx)
    q1 = relation(onestep.clipped,
                  "reading (q = 1, ‖g̃‖_H to the first power) is that clipping").check(ctx)
    assert first.ok is False and first.discrepancy == pytest.approx(1 - 1 / 5)
    assert q1.ok is True


def test_method_mapping_is_undefined_until_the_rule_lands(monkeypatch):
    monkeypatch.setitem(onestep.MAPPINGS, "rule:fo.absent", ("ngd", {"lr": "alpha"}, "diag"))
    ev = onestep.method_mapping("rule:fo.absent").check({"q": {}})
    assert ev.ok is None and ev.detail["undefined"] == "rule:fo.absent not implemented yet"


def test_diag_printed_normalized_fixed_point_differs_from_the_reading():
    ctx = onestep.diag_context(onestep.synthetic(2, rotated=False, alpha=1.0, eps=1.0))
    lam, g = ctx["lam"], ctx["g"]
    c = (1.0 / np.sum(g**2 / lam)) ** (1 / 3)  # the as_printed fixed point d = -c g/lam
    np.testing.assert_allclose(ctx["as_printed"], -c * g / lam, rtol=1e-12)
    assert relation(onestep.diag, "Normalized NGD: d = −(ε/(λᵀd²)) g/λ (d on both sides: the "
                                  "printed fixed point)").check(ctx).ok is True


# --- claim:U.qn_costs, claim:U.table1 -------------------------------------------------------


def test_stored_float_counts_and_their_exponents():
    assert onestep.stored_floats(10, 3) == {"H": 100, "H_inv": 100, "lbfgs": 63}
    ns = onestep.STORAGE_N
    assert onestep._slope(ns, [onestep.stored_floats(n, 5)["H"] for n in ns]) == pytest.approx(2)
    # 2kn + k: the k scalars make the count slightly sublinear in n over [64, 2048]
    slope = onestep._slope(ns, [onestep.stored_floats(n, 5)["lbfgs"] for n in ns])
    assert 0.99 < slope < 1.0


def test_table_rows_of_missing_rules_are_undefined_with_the_reason():
    ev = onestep._not_derived("K-FAC", "rule:kf.absent", "Structure").check({})
    assert ev.ok is None and ev.detail["undefined"] == "rule:kf.absent not implemented yet"
    ngd = onestep._curvature_source("rule:uv.ngd", "F").check({})
    assert ngd.ok is True and ngd.detail == {"derived": "F", "printed": "F"}


def test_table_tilde_rendering_divides_by_sqrt_lambda():
    ctx = onestep.table_context(onestep.synthetic(2, rotated=False, eps=1.0, L_factor=1.0))
    lam, d_hat = ctx["eigen"]["lam"], ctx["eigen"]["d_hat"]
    np.testing.assert_allclose(onestep._lengths("eigen", "vec")(ctx), np.sqrt(lam) * abs(d_hat))
    np.testing.assert_allclose(onestep._lengths("eigen", "tilde")(ctx), abs(d_hat) / np.sqrt(lam))


# --- the model arm and the model claims -----------------------------------------------------


def test_coordinate_block_is_f_on_those_coordinates():
    built = models.problem("softmax")
    params = models.trajectory("softmax")["init"]
    S = np.array([0, 5, 14])
    block = models.CoordinateBlock(built, params, S)
    x = flatten(params)[S]
    assert block.loss({"x": x}) == built.loss(params)
    np.testing.assert_array_equal(block.grad({"x": x})["x"],
                                  flatten(built.grad(params))[S])


def test_flipped_labels_move_a_fifth_to_other_classes():
    clean, noisy = (np.asarray(models.problem("softmax", lab).spec()["y"])
                    for lab in ("clean", "flipped"))
    moved = clean != noisy
    assert moved.sum() == round(models.FLIP_FRACTION * clean.size)


def test_kl_divergence_matches_a_direct_softmax_computation():
    built = reference.problems.get("prob:softmax")(
        X=np.array([[1.0], [-2.0]]), y=np.array([0, 1]), widths=[1, 2], activation="identity")
    params = {"0.weight": np.array([[0.5], [-0.5]]), "0.bias": np.array([0.1, 0.0])}
    d = np.array([0.2, 0.0, 0.0, -0.3])  # flat layout: weight rows, then bias

    def softmax(W, b):
        z = np.exp(np.array([[1.0], [-2.0]]) @ W.T + b)
        return z / z.sum(axis=1, keepdims=True)

    p = softmax(params["0.weight"], params["0.bias"])
    q = softmax(params["0.weight"] + d[:2, None], params["0.bias"] + d[2:])
    expected = np.mean(np.sum(p * np.log(p / q), axis=1))
    assert models.kl_divergence(built, params, d) == pytest.approx(expected, rel=1e-12)


def test_fisher_quality_implication_and_converse():
    ctx = {"relative": 0.05, "loss": 0.5, "accuracy": 0.8, "grad_norm": 0.0,
           "well_specified_fit": False}
    printed = models.ef_relation("p", models.low_loss, converse=False).check(ctx)
    converse = models.ef_relation("c", models.low_loss, converse=True).check(ctx)
    assert printed.ok is False and printed.discrepancy == pytest.approx(0.05)
    assert converse.ok is True


def test_spectrum_facts_on_a_planted_spectrum():
    lam = np.concatenate([-np.ones(2) * 1e-5, np.zeros(4), np.full(13, 1e-6), [1.0]])
    facts = models.spectrum_facts(np.sort(lam))
    assert facts["positive_fraction"] == pytest.approx(14 / 20)
    assert facts["large_fraction"] == pytest.approx(1 / 20)
    assert facts["near_zero_fraction"] == pytest.approx(19 / 20)
    assert facts["kappa_positive"] == pytest.approx(1e6)
    assert facts["top_k_mass"] == pytest.approx((1 + 9e-6) / (1 + 13e-6 + 2e-5))


# --- every relation evaluates on the targeted examples; audits run end to end ----------------

CHEAP = [c for c in onestep.CLAIMS.values() if c.id != "claim:U.qn_costs"]


@pytest.mark.parametrize("claim", CHEAP, ids=lambda c: c.id)
def test_every_relation_evaluates_on_the_examples(claim):
    for case in claim.examples:
        ctx = claim.context(case)
        for rel in claim.relations:
            ev = rel.check(ctx)
            assert ev.ok in (True, False, None), rel.name


def test_audit_records_types_and_counts_on_synthetic_cases():
    claim = dataclasses.replace(
        onestep.gn_normalized,
        cases=st.tuples(curvature_cases(kinds=("pd",)).map(lambda c: {**c, "source": "s"}),
                        st.fixed_dictionaries({"eps": st.floats(0.01, 1.0)}))
        .map(lambda p: {**p[0], **p[1]}),
        examples=(),
    )
    result = audit(claim, max_examples=8)
    assert result.cases_tried == result.cases_in_scope == 8
    stats = {s.name: s for s in result.relations}
    ill = stats["Δ_d = ε(H^{−1/2} − (ε/2)I)‖g‖₂"]
    assert ill.undefined == 8 and ill.reasons == {"ill-typed: shapes differ": 8}
    assert ill.types["lhs"] == "scalar" and ill.types["rhs"].startswith("ndarray(")
