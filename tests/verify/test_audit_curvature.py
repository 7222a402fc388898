"""The thesis curvature audits and SASSHA's Eq. (2) audit compute what they claim to (machinery
and relations on hand-made contexts; no test asserts a claim's verdict).

Closed forms used below: the covariance is NumPy's biased ``np.cov``; the batch Fisher with
labels sampled from the model is F/B (the score has mean zero, so cross terms vanish) and with
the data labels it is F_emp at B = 1 and ggᵀ at B = N; George et al.'s eigenvalue-corrected
K-FAC is the best diagonal in the K-FAC eigenbasis, Q diag(diag(QᵀFQ)) Qᵀ.
"""

import math

import numpy as np
import pytest

from reference.tree import flatten
from verify import audits
from verify.audits import sassha_curvature as sc
from verify.audits import thesis_curvature as tc
from verify.audits.framework import audit

T_IDS = ("cov_psd", "ggn_psd", "fim_chain", "ngd_reparam", "hessian_conditioning",
         "kron_identities")


def relation(claim, start):
    matches = [r for r in claim.relations if r.name.startswith(start)]
    assert len(matches) == 1, start
    return matches[0]


OWN_P_IDS = {"claim:P.eq2_dual"}


def test_every_id_is_registered_with_thresholds_and_notes():
    assert set(tc.CLAIMS) == {f"claim:T.{name}" for name in T_IDS}
    assert OWN_P_IDS <= set(sc.CLAIMS)  # the other P.* of the module: test_audit_factors.py
    for key, claim in {**tc.CLAIMS, **{k: sc.CLAIMS[k] for k in OWN_P_IDS}}.items():
        assert audits.get(key) is claim
        assert claim.thresholds and claim.note
    assert tc.hessian_conditioning.nature == "record"


@pytest.mark.parametrize("key", sorted([*tc.CLAIMS, *OWN_P_IDS]))
def test_each_claim_audits_at_a_tiny_budget(key):
    claim = audits.get(key)
    record = audit(claim, max_examples=2).as_record()
    assert record["verdict"] in {"holds", "refuted", "inconclusive"}
    assert record["examples_tried"] >= max(1, len(claim.examples))
    assert sum(r["tried"] for r in record["evidence"]["relations"]) >= 1
    if claim.nature != "mathematical":
        assert record["verdict"] == "inconclusive"


# --- shared helpers ------------------------------------------------------------------------------


def test_gaps_closed_forms():
    A, B = np.diag([3.0, 4.0]), np.array([[0.0, 1.0], [1.0, 0.0]])
    assert tc.gap(A, 2 * A) == pytest.approx(0.5)
    assert tc.gap(np.zeros(2), np.zeros(2)) == 0.0
    assert tc.scale_free_gap(A, 3 * A) == pytest.approx(0.0, abs=1e-15)
    assert tc.scale_free_gap(A, B) == pytest.approx(1.0)  # B is orthogonal to A


def test_psd_margin():
    assert tc.psd_margin(np.array([-1e-3, 1.0])).ok is False
    assert tc.psd_margin(np.array([-1e-3, 1.0])).discrepancy == pytest.approx(-1e-3)
    assert tc.psd_margin(np.array([-1e-12, 1.0])).ok is True
    assert tc.psd_margin(np.zeros(3)).ok is True


# --- claim:T.cov_psd -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", tc.COV_DATA)
def test_cov_context_matches_numpy(data):
    case = {"d": 3, "n": 5, "data": data, "seed": 7}
    ctx = tc.cov_context(case)
    X = tc.cov_data(data, 3, 5, 7)
    np.testing.assert_allclose(ctx["Sigma"], np.cov(X, bias=True), rtol=1e-12, atol=1e-9)
    assert ctx["sum_transposed"].shape == (1, 3)
    np.testing.assert_allclose(ctx["sum_transposed"], 0.0, atol=1e-9)


def test_cov_printed_relations_on_hand_made_contexts():
    printed = relation(tc.cov_psd, "as printed: ").check
    ev = printed({"sum_transposed": np.zeros((1, 1)), "Sigma": np.ones((1, 1))})
    assert ev.ok is False and ev.discrepancy == pytest.approx(1.0)
    ev = printed({"sum_transposed": np.zeros((1, 2)), "Sigma": np.eye(2)})
    assert ev.ok is None and ev.detail["lhs"] == "ndarray(1, 2)"
    stated = relation(tc.cov_psd, "as printed with the stated type").check
    ev = stated({"d": 2, "n": 3, "sum_transposed": np.zeros((1, 2)), "Sigma": np.eye(2)})
    assert ev.ok is None and ev.detail["lhs"] == "ndarray(3, 2)"


# --- claim:T.ggn_psd -----------------------------------------------------------------------------


@pytest.mark.parametrize("loss, value", [("mse", 2.0), ("mse_half", 1.0)])
def test_ggn_context_output_hessian_of_the_squared_losses(loss, value):
    case = {"problem": "mlp", "variant": f"{loss}/tanh", "reduction": "sum", "scale": 1.0,
            "seed": 3}
    ctx = tc.ggn_context(case)
    assert ctx["least_squares"]
    np.testing.assert_allclose(ctx["lam_Lambda"], value, rtol=1e-14)
    np.testing.assert_allclose(ctx["G"], ctx["G_printed"], rtol=1e-10, atol=1e-12)


def test_ggn_relations_split_least_squares_and_ce():
    ls = relation(tc.ggn_psd, "least-squares losses: G").check
    ce = relation(tc.ggn_psd, "outside 'such as' (ce, recorded separately): G").check
    ctx = {"least_squares": True, "loss": "mse", "lam_G": np.array([-1.0, 1.0]),
           "lam_H": np.array([-2.0, 1.0])}
    assert ls(ctx).ok is False and ce(ctx).ok is None
    ctx = {**ctx, "least_squares": False, "loss": "ce", "lam_G": np.array([0.0, 1.0])}
    assert ls(ctx).ok is None and ce(ctx).ok is True


# --- claim:T.fim_chain ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["init", "trained"])
def test_fim_context_batch_fishers_closed_forms(stage):
    N = tc.fim_problem("softmax").num_samples()
    for B in (1, 4, N):
        ctx = tc.fim_context({"model": "softmax", "stage": stage, "B": B})
        np.testing.assert_allclose(ctx["E_B_model"], ctx["F_mean"] / B, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(tc.fim_context({"model": "softmax", "stage": stage, "B": 1})
                               ["E_B_data"], ctx["F_emp"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ctx["E_B_data"], ctx["ggT"], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(ctx["F_sum"], N * ctx["F_mean"], rtol=1e-12)


def test_chain_relation_records_the_scale_free_gap():
    check = tc.chain("test", "X", "Y").check
    ev = check({"X": 2 * np.eye(3), "Y": np.eye(3), "N": 4, "B": 2, "distances": {}})
    assert ev.ok is False and ev.discrepancy == pytest.approx(0.5)
    assert ev.detail["scale_free_gap"] == pytest.approx(0.0, abs=1e-15)


# --- claim:T.ngd_reparam -------------------------------------------------------------------------


@pytest.mark.parametrize("kind, c", [("affine", 0.0), ("tanh", 0.7), ("tanh", -0.5)])
def test_reparam_jacobian_and_start(kind, c):
    rep = tc.Reparam(kind, 4, c, 1.0, seed=2)
    phi, h = np.array([0.3, -1.2, 0.0, 2.0]), 1e-6
    fd = np.stack([(rep.theta(phi + h * e) - rep.theta(phi - h * e)) / (2 * h)
                   for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(rep.jac(phi), fd, rtol=1e-7, atol=1e-8)
    if kind == "affine":
        theta0 = np.array([1.0, -2.0, 0.5, 0.0])
        np.testing.assert_allclose(rep.theta(rep.start(theta0)), theta0, rtol=1e-12,
                                   atol=1e-14)


def test_ngd_step_is_minus_alpha_K_inverse_g():
    K, g = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, -1.0])
    step = tc.ngd_step(tc.ngd_problem("logreg"), g, K, 0.3)
    np.testing.assert_allclose(step, -0.3 * np.linalg.solve(K, g), rtol=1e-12)


def test_path_gap_and_first_order_relation():
    thetas = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert tc.path_gap(thetas, thetas + [0.0, 0.5]) == pytest.approx(0.25)
    base = {"allowance_one_step": 1e-8}
    quadratic = tc._first_order({**base, "one_step_relative": 0.1 * tc.ALPHAS})  # ||Δ|| ~ α²
    assert quadratic.ok is True and quadratic.detail["exponent"] == pytest.approx(2.0)
    linear = tc._first_order({**base, "one_step_relative": np.full(tc.ALPHAS.size, 0.3)})
    assert linear.ok is False and linear.detail["exponent"] == pytest.approx(1.0)
    assert tc._first_order({**base, "one_step_relative": np.zeros(tc.ALPHAS.size)}).ok is True


def test_agreement_is_undefined_when_ill_conditioned_or_diverged():
    check = tc._agree("path_gap")
    ctx = {"finite": True, "kappa": 1.0, "allowance": 1e-8, "path_gap": 1e-3}
    assert check(ctx).ok is False
    assert check({**ctx, "allowance": 1.0}).ok is None
    assert check({**ctx, "finite": False}).ok is None


# --- claim:T.hessian_conditioning ----------------------------------------------------------------


def test_saddle_points_are_stationary_and_classified_like_f():
    built = tc.make("prob:saddle", 4, kind="nd", dim=3, n_neg=2)
    points = tc.saddle_points(built)
    assert len(points) == 5
    classes = []
    for x in points:
        assert np.linalg.norm(flatten(built.grad({"x": x}))) <= 1e-12
        classes.append(tc.local_class(built, {"x": x}, seed=0))
    # x = 0, then ±v_i by ascending eigenvalue of A: ±v of the most negative one minimise f
    assert classes == ["saddle", "minimum", "minimum", "saddle", "saddle"]


def test_classify_and_ratios_on_hand_made_spectra():
    assert tc.classify(np.array([-1.0, 2.0]), 1e-12) == "saddle"
    assert tc.classify(np.array([1.0, 2.0]), 1e-12) == "minimum"
    assert tc.classify(np.array([-3.0, -2.0]), 1e-12) == "maximum"
    assert tc.classify(np.array([0.0, 2.0]), 1e-12) == "degenerate"
    ev = tc._ratios({"lam": np.array([-4.0, 1.0]), "sv": np.array([4.0, 1.0]), "point": "p"})
    assert ev.ok is True and ev.detail["signed_ratio_lambda_max_over_lambda_min"] == -0.25
    assert tc._ratios({"lam": np.array([0.0, 1.0]), "sv": np.array([1.0, 0.0]),
                       "point": "p"}).ok is None


# --- claim:T.kron_identities ---------------------------------------------------------------------


def test_vec_order_is_the_column_major_vec_of_the_augmented_weight():
    built = tc.make("prob:mlp", 0, n_samples=4, widths=(3, 4, 2))
    params = built.init_params(np.random.default_rng(1))
    for layer, (w, b) in enumerate((("0.weight", "0.bias"), ("2.weight", "2.bias"))):
        theta = np.hstack([params[w], params[b][:, None]])
        np.testing.assert_array_equal(flatten(params)[tc.vec_order(params, layer)],
                                      theta.reshape(-1, order="F"))


@pytest.mark.parametrize("labels", ["data", "model"])
def test_george_form_is_the_best_diagonal_in_the_kfac_eigenbasis(labels):
    ctx = tc.kron_context({"arm": "mlp", "layer": 1, "stage": "init", "labels": labels,
                           "seed": 0})
    Q, F = ctx["Q"], ctx["F_block"]
    np.testing.assert_allclose(tc.george_ekfac(ctx), Q @ np.diag(np.diag(Q.T @ F @ Q)) @ Q.T,
                               rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(tc.printed_ekfac(ctx), np.kron(ctx["A"], ctx["B"]), rtol=1e-9,
                               atol=1e-13)


def test_inverse_identity_is_undefined_for_a_singular_factor():
    check = tc._inverse_identity("A", "B")
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    assert check({"A": A, "B": np.diag([1.0, 4.0])}).ok is True
    assert check({"A": A, "B": np.diag([1.0, 0.0])}).ok is None


# --- claim:P.eq2_dual ----------------------------------------------------------------------------


def test_projection_ascent_and_samples():
    rho, g = 0.5, np.array([3.0, -4.0])
    np.testing.assert_allclose(sc.project(np.array([3.0, 4.0]), rho), [0.3, 0.4])
    np.testing.assert_allclose(sc.ascend(g, np.array([0.1, 0.1]), rho), rho * g / 5.0,
                               rtol=1e-12)
    samples = sc.ball_samples(3, rho, np.random.default_rng(0))
    norms = np.linalg.norm(samples, axis=1)
    assert samples.shape == (sc.SAMPLES, 3) and norms.max() <= rho * (1 + 1e-12)
    np.testing.assert_allclose(norms[: sc.SAMPLES // 2], rho, rtol=1e-12)


def test_eq2_relations_on_hand_made_contexts():
    g = np.array([1.0, 0.0])
    ctx = {"g": g, "rho": 1.0, "norm": 1.0, "f_x": 2.0, "eps_star": g,
           "sampled": {"linear": 1.5, "shifted": 3.0}}
    assert sc.no_better_sample("linear")(ctx).ok is False  # a "sample" beats eps*
    assert sc.no_better_sample("shifted")(ctx).ok is True
    zero = {**ctx, "g": np.zeros(2), "norm": 0.0, "eps_star": np.full(2, math.nan)}
    assert sc.no_better_sample("linear")(zero).ok is None


def test_dual_context_records_zero_gradient_literally():
    ctx = sc.dual_context({"d": 3, "log10_rho": -1.0, "g": "zero", "seed": 0})
    assert ctx["norm"] == 0.0 and np.all(np.isnan(ctx["eps_star"]))
    np.testing.assert_array_equal(ctx["pga"], sc.ascend(np.zeros(3), ctx["pga"], 0.1))
