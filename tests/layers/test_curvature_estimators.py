"""The registered model-level curvature estimators (INVENTORY §3.1-§3.3, §3.10), both layers.

Problems prob:softmax and prob:mlp are built with NumPy (the torch layer gets the twin built
from ``problem.spec()``); expected values are NumPy closed forms of the softmax last layer
(h_bar = [x, 1], p = softmax(theta h_bar)):
diag F[a, b] = E_x[p_a (1 - p_a) h_b^2], diag F_emp[a, b] = E_x[(p_a - y_a)^2 h_b^2], and
the diagonal K-FAC form with exact-expectation labels S_D[a] = E_x[p_a (1 - p_a)],
H_D[b] = E_x[h_b^2]; plus reductions (the mean per-sample gradient is the gradient), G = H
for a model linear in theta, analytic state counts and oracle-call counts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import softmax

import reference.problems as ref_problems
import torchimpl.problems as torch_problems

RTOL, ATOL = 1e-10, 1e-12
SEED = st.integers(min_value=0, max_value=2**32 - 1)


def _setup(layer, pid: str, seed: int, **options):
    """(layer problem, layer params, NumPy params, NumPy problem) from one NumPy instance."""
    rng = np.random.default_rng(seed)
    problem = ref_problems.get(pid).make(rng, **options)
    params = problem.init_params(rng)
    if layer.is_torch:
        twin = torch_problems.get(pid)(**problem.spec(), dtype=torch.float64)
        return twin, layer.cast(params), params, problem
    return problem, layer.cast(params), params, problem


def _est(layer, key: str):
    return layer.estimators.get(key)


def _softmax_terms(problem, params):
    X = problem.X
    h = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    theta = np.concatenate([params["0.weight"], params["0.bias"][:, None]], axis=1)
    p = softmax(h @ theta.T, axis=1)
    y = np.eye(p.shape[1])[problem.y]
    return h, p, y


def _weight_shaped(diag_flat, C: int, d: int):
    """Flat (weight row-major, then bias) -> (C, d+1) with the bias as the last column."""
    return np.concatenate([diag_flat[: C * d].reshape(C, d), diag_flat[C * d:, None]], axis=1)


@given(SEED, st.integers(min_value=1, max_value=6), st.integers(min_value=2, max_value=4))
def test_softmax_diagonal_fishers_and_kfac_closed_forms(layer, seed, dim, classes):
    prob, params, np_params, problem = _setup(layer, "prob:softmax", seed, n_samples=7,
                                              dim=dim, classes=classes)
    h, p, y = _softmax_terms(problem, np_params)
    diag_F = np.einsum("na,nb->ab", p * (1 - p), h**2) / h.shape[0]
    diag_EF = np.einsum("na,nb->ab", (p - y) ** 2, h**2) / h.shape[0]
    F = layer.to_numpy(_est(layer, "est:fisher_true")(prob, params))
    assert_allclose(_weight_shaped(np.diag(F), classes, dim), diag_F, rtol=RTOL, atol=ATOL)
    EF = layer.to_numpy(_est(layer, "est:fisher_emp")(prob, params, diagonal=True))
    got = np.concatenate([EF["0.weight"], EF["0.bias"][:, None]], axis=1)
    assert_allclose(got, diag_EF, rtol=RTOL, atol=ATOL)
    factors = layer.to_numpy(_est(layer, "est:kfac_factors")(prob, params,
                                                             labels="exact_expectation"))["0"]
    assert_allclose(factors["S_D"], (p * (1 - p)).mean(0), rtol=RTOL, atol=ATOL)
    assert_allclose(factors["H_D"], (h**2).mean(0), rtol=RTOL, atol=ATOL)
    emp = layer.to_numpy(_est(layer, "est:kfac_factors")(prob, params))["0"]
    assert_allclose(emp["S"], (p - y).T @ (p - y) / h.shape[0], rtol=RTOL, atol=ATOL)
    summed = layer.to_numpy(_est(layer, "est:kfac_factors")(prob, params, s_scale="sum"))["0"]
    assert_allclose(summed["S"], (p - y).T @ (p - y), rtol=RTOL, atol=ATOL)


@given(SEED)
def test_mlp_reductions_ggn_equals_hessian_and_hvp(layer, seed):
    prob, params, np_params, _ = _setup(layer, "prob:mlp", seed, n_samples=5,
                                              widths=(3, 4, 3))
    G = layer.to_numpy(_est(layer, "est:per_sample_grads")(prob, params))
    grad = layer.to_numpy(prob.grad(params))
    assert_allclose(G.mean(0), np.concatenate([grad[k].ravel() for k in grad]), rtol=RTOL,
                    atol=ATOL)
    H = layer.to_numpy(_est(layer, "est:hessian")(prob, params))
    v = {k: np.random.default_rng(seed).standard_normal(np.shape(a))
         for k, a in np_params.items()}
    Hv = layer.to_numpy(_est(layer, "est:hvp")(prob, params, v=layer.cast(v), mode="reverse"))
    flat_v = np.concatenate([a.ravel() for a in v.values()])
    assert_allclose(np.concatenate([a.ravel() for a in Hv.values()]), H @ flat_v, rtol=1e-9,
                    atol=1e-11)


@given(SEED)
def test_ggn_equals_hessian_on_softmax(layer, seed):
    prob, params, _, _ = _setup(layer, "prob:softmax", seed, n_samples=6, dim=3, classes=3)
    G = layer.to_numpy(_est(layer, "est:ggn")(prob, params))
    H = layer.to_numpy(_est(layer, "est:hessian")(prob, params))
    assert_allclose(G, H, rtol=RTOL, atol=ATOL)


def test_state_bytes_and_oracle_counts(layer):
    prob, params, np_params, _ = _setup(layer, "prob:mlp", 0, n_samples=4, widths=(3, 4, 2))
    P = sum(a.size for a in np_params.values())
    adam = _est(layer, "est:state_bytes")(prob, params)
    assert adam["elements"] == 2 * P and adam["bytes"] == 2 * P * 8
    fisher = _est(layer, "est:state_bytes")(prob, params, optimizer="adafisher")
    assert fisher["per_state"] == {"exp_avg": P, "H": (3 + 1) + (4 + 1), "S": 4 + 2}
    measured = _est(layer, "est:state_bytes")(prob, params, state={"m": params})
    assert measured["measured_bytes"] == P * 8
    counts = _est(layer, "est:oracle_counter")(prob, params, rule="rule:fo.sgd", steps=3)
    assert counts["grad"] == [1, 1, 1] and counts["hvp_new_graph"] == [0, 0, 0]
    nesterov = _est(layer, "est:oracle_counter")(prob, params, rule="rule:fo.nesterov", steps=2)
    assert nesterov["grad"] == [2, 2]


def test_newton_cg_counts_on_a_quadratic(layer):
    """Newton-CG on a P = 4 least-squares quadratic: one gradient, the Armijo test's two losses
    (f(x), f(x + d): the full Newton step is accepted on a quadratic), and between 1 and P
    HVPs (CG is exact in at most P iterations), all on the gradient's graph."""
    prob, params, _, _ = _setup(layer, "prob:lstsq", 0, n_samples=20, dim=4)
    counts = _est(layer, "est:oracle_counter")(prob, params, rule="rule:so.newton_cg", steps=2)
    assert counts["grad"] == [1, 1] and counts["loss"] == [2, 2]
    assert counts["hvp_new_graph"] == [0, 0]
    assert all(1 <= k <= 4 for k in counts["hvp_reused_graph"])


def test_timing_reports_medians_and_ratios(layer):
    prob, params, _, _ = _setup(layer, "prob:softmax", 1, n_samples=4, dim=2, classes=2)
    out = _est(layer, "est:timing")(prob, params, quantities=("hvp",), warmup=0)
    assert set(out["seconds"]) == {"grad", "hvp"} and out["ratio"]["grad"] == 1.0
    assert all(0 < s < 10 for s in out["seconds"].values()) and out["repeats"] == 5


@pytest.mark.parametrize(("key", "options", "match"), [
    ("est:per_sample_grads", {"method": "jit"}, "Invalid method"),
    ("est:fisher_emp", {"scale": "avg"}, "Invalid scale"),
    ("est:fisher_true", {"mc_samples": 0}, "Invalid mc_samples"),
    ("est:kfac_factors", {"labels": "model"}, "Invalid labels"),
    ("est:kfac_factors", {"spatial_scaling": (1.0, -1.0)}, "spatial_scaling"),
    ("est:norm_factors", {"norm_h_source": "post"}, "Invalid norm_h_source"),
    ("est:timing", {"repeats": 3}, "Invalid repeats"),
    ("est:state_bytes", {"optimizer": "adamax"}, "Invalid optimizer"),
])
def test_invalid_options_raise_the_same_errors(layer, key, options, match):
    prob, params, _, _ = _setup(layer, "prob:softmax", 2, n_samples=3, dim=2, classes=2)
    with pytest.raises(ValueError, match=match):
        _est(layer, key)(prob, params, **options)


def test_exact_expectation_needs_a_categorical_likelihood(layer):
    prob, params, _, _ = _setup(layer, "prob:mlp", 3, n_samples=3, widths=(2, 3, 2),
                                loss="mse_half")
    with pytest.raises(ValueError, match="categorical likelihood"):
        _est(layer, "est:kfac_factors")(prob, params, labels="exact_expectation")
