"""The factor audits (T.prop331, T.kfac_independence) and SASSHA's P.avg_inequality and
P.hutchinson_one_bp compute what they claim to (machinery and relations on hand-made contexts;
no test asserts a claim's verdict).

Closed forms used below: vec(s h̄ᵀ) = h̄ ⊗ s; rearranging A ⊗ B gives vec(A) vec(B)ᵀ; under a
product measure E[A ⊗ B] = E[A] ⊗ E[B]; with one position the (c, c)-pairs of a Kronecker
product are the Hadamard product; all 2^d Rademacher probes have E[zzᵀ] = I.
"""

import numpy as np
import pytest

import reference
from verify import audits
from verify.audits import sassha_curvature as sc
from verify.audits import thesis_factors as tf
from verify.audits.framework import audit

NEW_SASSHA = ("claim:P.avg_inequality", "claim:P.hutchinson_one_bp")
PROP_CASE = {"norm": "groupnorm", "C": 4, "group_pick": 1, "T": 4, "B": 8,
             "activation": "tanh", "stage": "init", "labels": "empirical", "seed": 3}


def relation(claim, start):
    matches = [r for r in claim.relations if r.name.startswith(start)]
    assert len(matches) == 1, start
    return matches[0]


def test_ids_are_registered_with_thresholds_and_notes():
    assert set(tf.CLAIMS) == {"claim:T.prop331", "claim:T.kfac_independence"}
    assert set(NEW_SASSHA) < set(sc.CLAIMS)
    for key in (*tf.CLAIMS, *NEW_SASSHA):
        claim = audits.get(key)
        assert claim.thresholds and claim.note and claim.nature == "mathematical"


@pytest.mark.parametrize("key", sorted([*tf.CLAIMS, *NEW_SASSHA]))
def test_each_claim_audits_at_a_tiny_budget(key):
    claim = audits.get(key)
    record = audit(claim, max_examples=2).as_record()
    assert record["verdict"] in {"holds", "refuted", "inconclusive"}
    assert record["examples_tried"] >= max(1, len(claim.examples))
    assert sum(r["tried"] for r in record["evidence"]["relations"]) >= 1


# --- shared helpers ------------------------------------------------------------------------------


def test_vec_index_is_the_column_major_vec_of_the_augmented_weight():
    params = {"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(2), "1.weight": np.zeros((1, 2))}
    # W = [[0 1 2], [3 4 5]], b = [6 7]: columns (0, 3), (1, 4), (2, 5), (6, 7)
    np.testing.assert_array_equal(tf.vec_index(params, "0"), [0, 3, 1, 4, 2, 5, 6, 7])
    np.testing.assert_array_equal(tf.vec_index(params, "1"), [8, 9])


def test_per_sample_gradient_at_vec_index_is_h_bar_kron_s():
    built = tf.make("prob:mlp", 0, n_samples=3, widths=(3, 4, 2))
    params = built.init_params(np.random.default_rng(1))
    stats = reference.estimators.get("est:layer_stats").fn(built, params)["2"]
    G = built.per_sample_grads(params)[:, tf.vec_index(params, "2")]
    for n in range(3):
        np.testing.assert_allclose(G[n], np.kron(stats["h_bar"][n], stats["s"][n]), atol=1e-14)


def test_rearrange_sends_a_kronecker_product_to_the_outer_product_of_vecs():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, 2)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(tf.rearrange(np.kron(A, B), 2, 3), np.outer(A.ravel(), B.ravel()))


def test_layer_blocks_mask_groups_parameters_by_module():
    params = {"0.weight": np.zeros((1, 2)), "0.bias": np.zeros(1), "2.weight": np.zeros(1)}
    mask = tf.layer_blocks(params)
    expected = np.zeros((4, 4), dtype=bool)
    expected[:3, :3] = expected[3, 3] = True
    np.testing.assert_array_equal(mask, expected)


# --- claim:T.kfac_independence -------------------------------------------------------------------


def test_product_measure_factorizes_and_dependence_is_the_cross_covariance():
    indep = tf.synthetic_context({"arm": "synthetic", "coupling": "independent", "M": 4,
                                  "m": 2, "k": 3, "seed": 1})
    np.testing.assert_allclose(indep["F_block"], np.kron(indep["H"], indep["S"]), rtol=1e-12)
    assert tf._product_identity(indep).ok is True
    dep = tf.synthetic_context({"arm": "synthetic", "coupling": "dependent", "M": 4,
                                "m": 2, "k": 3, "seed": 1})
    assert tf._product_identity(dep).ok is None
    ev = tf._cross_covariance(dep)
    assert ev.ok is True and ev.discrepancy > 1e-3  # the margin is the factorization error
    assert ev.detail["identity_gap"] < 1e-12


def test_cross_covariance_relation_fails_on_a_wrong_covariance():
    ctx = dict(tf.synthetic_context({"arm": "synthetic", "coupling": "dependent", "M": 3,
                                     "m": 1, "k": 2, "seed": 0}))
    ctx["cov"] = 2.0 * ctx["cov"]
    assert tf._cross_covariance(ctx).ok is False


def test_paired_error_matches_the_direct_kronecker_gap():
    rng = np.random.default_rng(2)
    h, s = rng.standard_normal((50, 2)), rng.standard_normal((50, 3))
    out = tf.permutation_null(h, s, np.random.default_rng(0))
    terms = tf.factor_terms(h, s, np.full(50, 1 / 50))
    HS = np.kron(terms["H"], terms["S"])
    direct = np.linalg.norm(terms["F"] - HS) / np.linalg.norm(HS)
    assert out["paired_sample_error"] == pytest.approx(direct, rel=1e-10)
    assert out["permutation_q999"] > 0.0 and out["samples"] == 50


def test_network_context_linear_layer_identity_and_relations():
    case = {"arm": "mlp", "layer": 1, "labels": "sampled", "stage": "init", "seed": 0}
    ctx = tf.network_context(case)
    assert ctx["F_block"].shape == (np.kron(ctx["H"], ctx["S"]).shape)
    assert tf._cross_covariance(ctx).detail["identity_gap"] < 1e-12
    ev = tf._network_approx(ctx)
    assert ev.discrepancy == pytest.approx(tf.gap(ctx["F_block"], np.kron(ctx["H"], ctx["S"])))
    full = tf._block_diagonal(ctx)
    assert 0.0 <= full.discrepancy <= 1.0
    assert tf._network_approx({"arm": "synthetic"}).ok is None


# --- claim:T.prop331 -----------------------------------------------------------------------------


def test_source_terms_with_one_position():
    rng = np.random.default_rng(0)
    h, s = rng.standard_normal((5, 1, 3)), rng.standard_normal((5, 1, 3))
    terms = tf.source_terms(h, s)
    np.testing.assert_allclose(terms["hadamard"], terms["outer"], rtol=1e-12)
    pairs = np.arange(3) * 3 + np.arange(3)  # the (c, c) indices of a 9 x 9 Kronecker product
    np.testing.assert_allclose(terms["kron_sum"][np.ix_(pairs, pairs)], terms["hadamard"],
                               rtol=1e-12)
    np.testing.assert_allclose(terms["H_nu"], h[:, 0].T @ h[:, 0] / 5, rtol=1e-12)


def test_prop_context_uses_est_norm_factors():
    built, params = tf.normnet(PROP_CASE)
    ctx = tf.prop_context(PROP_CASE)
    for src in tf.H_SOURCES:
        f = reference.estimators.get("est:norm_factors").fn(built, params, norm_h_source=src)["1"]
        np.testing.assert_allclose(ctx[src]["H_nu"], f["H_nu"], rtol=1e-12)
        np.testing.assert_allclose(ctx["S"], f["S"], rtol=1e-12)
    np.testing.assert_allclose(ctx["EF_nu"], f["EF_nu"], rtol=1e-12)


def test_torch_norm_output_is_nu_x_hat_plus_beta():
    ctx = tf.prop_context(PROP_CASE)
    np.testing.assert_allclose(ctx["y"], ctx["nu"] * ctx["x_hat"] + ctx["beta"], atol=1e-12)
    claim = tf.prop331
    assert relation(claim, "(a) h_i = ν ⊙ h_{i−1} + β (torch's norm output) [h = normalized")\
        .check(ctx).ok is True
    assert relation(claim, "(a) h_i = ν ⊙ h_{i−1} + β (torch's norm output) [h = pre-")\
        .check(ctx).ok is False


def test_literal_kronecker_forms_are_ill_typed():
    ctx = tf.prop_context(PROP_CASE)
    for start in ("(d) literally", "(e) conclusion literally", "(f) E[∇_β∇_βᵀ] = 11ᵀ ⊗ S with 1"):
        ev = relation(tf.prop331, start).check(ctx)
        assert ev.ok is None and "ill-typed" in ev.detail["undefined"]


def test_coupled_context_keeps_a_and_b_only():
    ctx = {"coupled": True, "B": 2, "grads": {"beta": np.array([[3.0, 1.0]])},
           "g_beta": np.array([[2.0, 1.0], [4.0, 1.0], [6.0, 1.0], [0.0, 1.0]])}
    # 2 draws of B = 2 rows: the batch gradient is the sum over rows / (B * draws)
    assert tf._gradient("beta")(ctx).ok is True
    assert tf.separable(lambda c: None)(ctx).ok is None


def test_cross_block_relation():
    C = 2
    ctx = {"C": C, "EF_nu": np.eye(C), "EF_beta": np.eye(C), "EF_nu_beta": np.zeros((C, C)),
           "F_nu": np.eye(C), "F_beta": np.eye(C), "F_nu_beta": np.zeros((C, C))}
    assert tf._cross_block(ctx).discrepancy == 0.0
    ctx["EF_nu_beta"] = np.eye(C)
    ev = tf._cross_block(ctx)
    assert ev.ok is False and ev.discrepancy == pytest.approx(np.sqrt(0.5))


# --- claim:P.avg_inequality ----------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 3, 6])
def test_rademacher_probes_are_the_whole_sample_space(d):
    Z = sc.rademacher_probes(d)
    assert Z.shape == (2**d, d) and len({tuple(z) for z in Z}) == 2**d
    np.testing.assert_array_equal(Z.T @ Z / 2**d, np.eye(d))


@pytest.mark.parametrize("pattern", sc.SIGN_PATTERNS)
def test_spectrum_sign_patterns(pattern):
    lam = sc.spectrum(pattern, 4, 2.0, np.random.default_rng(0))
    signs = {"PD": lam > 0, "ND": lam < 0, "PSD": lam >= 0, "NSD": lam <= 0}
    if pattern == "indefinite":
        assert lam.max() > 0 > lam.min()
    else:
        assert signs[pattern].all()
    assert (np.count_nonzero(lam == 0) == 1) == (pattern in ("PSD", "NSD"))


def test_average_context_chain_and_abs_average():
    ctx = sc.average_context({"d": 4, "pattern": "ND", "log10_kappa": 1.0, "seed": 0})
    assert ctx["mean_of_averages"] == pytest.approx(ctx["eigen_average"], rel=1e-12)
    assert ctx["abs_average"] > 0 > ctx["trace_over_d"]  # |Ĥ_ii| >= 0 for every probe
    assert ctx["probes"] == 16


def test_equal_and_at_most_decide_on_hand_made_values():
    ctx = {"a": 1.0, "b": 1.0 + 1e-12, "c": 2.0, "scale": 1.0, "probes": 2,
           "eigen_average": 1.5, "lambda_1": 1.0, "trace_over_d": 1.5, "abs_average": 2.0}
    assert sc.equal("a", "b")(ctx).ok is True
    assert sc.equal("a", "c")(ctx).ok is False
    ev = sc.at_most("lambda_1")(ctx)
    assert ev.ok is False and ev.discrepancy == pytest.approx(-0.5)
    assert ev.detail["abs_average_at_most_lambda_1"] is False


# --- claim:P.hutchinson_one_bp -------------------------------------------------------------------


class QuadraticOracle:
    """H = diag(2, 3) on one leaf; the probe is the reference layer's."""

    def __init__(self):
        self.hvps = 0

    def hvp(self, params, v):
        self.hvps += 1
        return {"w": np.array([2.0, 3.0]) * v["w"]}

    def probe(self, dist, shape, seed):
        return reference.oracle.probe(dist, shape, seed)


def test_hutchinson_ema_step_is_one_hvp_and_the_printed_ema():
    rule, oracle = sc.HutchinsonEMA(), QuadraticOracle()
    params = {"w": np.array([1.0, -1.0])}
    _, state = rule.step({"w": np.ones(2)}, rule.init(params), params, oracle)
    z = reference.oracle.probe("rademacher", (2,), sc.HUTCHINSON_SEED)
    assert oracle.hvps == 1
    np.testing.assert_allclose(state["D"]["w"], (1 - sc.BETA2) * np.array([2.0, 3.0]) * z * z)


def test_one_additional_relation_on_hand_made_counts():
    base = {"grad": [1, 1], "hvp_reused_graph": [1, 1], "hvp_new_graph": [0, 0],
            "full_grad": [0, 0], "loss": [0, 0], "per_sample_grads": [0, 0], "curvature": [0, 0]}
    assert sc._one_additional({"counts": base, "timing": {}}).ok is True
    new_graph = {**base, "hvp_reused_graph": [1, 0], "hvp_new_graph": [0, 1]}
    assert sc._one_additional({"counts": new_graph, "timing": {}}).ok is False
    two = {**base, "hvp_reused_graph": [2, 1]}
    ev = sc._one_additional({"counts": two, "timing": {}})
    assert ev.ok is False and ev.discrepancy == 1.0
