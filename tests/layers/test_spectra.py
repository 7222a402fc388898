"""Spectra, sharpness and the other diagnostics (INVENTORY §3.5, §3.8), both layers.

Oracles: eigvalsh / eigsh on small dense matrices (power iteration, Lanczos), the SLQ quadrature
identities at m = P, closed forms on quadratics (delta L_worst, the reduction ratio, Hessian
sensitivity of a known diagonal), a confidence-interval test of the Monte-Carlo delta L_avg
against rho^2 tr(A)/(2d) at alpha = 1e-3 (seed in the message), and iterating the heavy-ball,
NAG and GD rules of this project on 1-D quadratics for the iteration spectrum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.stats import norm

from reference.problems.spectra import random_orthogonal, symmetric
from verify.strategies import SEEDS

ALPHA = 1e-3
RTOL = 1e-10
MODULE = {"power_iteration": "spectra", "lanczos_slq": "spectra", "sharpness": "spectra",
          "iteration_spectrum": "spectra"}


def est(layer, name: str):
    """The layer's estimator ``name``: NumPy float arrays converted, outputs to NumPy."""
    fn = getattr(layer.module(f"estimators.{MODULE.get(name, 'stochastic')}"), name)

    def call(*args, **options):
        conv = [layer.to_layer(a) if isinstance(a, np.ndarray) else a for a in args]
        opts = {k: layer.to_layer(v) if isinstance(v, np.ndarray) else v
                for k, v in options.items()}
        out = fn(*conv, **opts)
        return {k: v if isinstance(v, str | dict | type(None)) else np.asarray(layer.to_numpy(v))
                for k, v in out.items()}

    return call


def geometric(n: int, r: float, seed: int, signs: bool = True) -> np.ndarray:
    """Symmetric H with eigenvalues +-r^i (distinct magnitudes), random eigenvectors."""
    rng = np.random.default_rng(seed)
    lam = r ** np.arange(n) * (rng.choice([-1.0, 1.0], size=n) if signs else 1.0)
    return symmetric(lam, random_orthogonal(n, rng))


def quadratic(layer, A, a):
    A_l, a_l = layer.to_layer(A), layer.to_layer(a)
    return (lambda v: 0.5 * (v - a_l) @ (A_l @ (v - a_l))), (lambda v: A_l @ (v - a_l))


# ---------------------------------------------------------------- power iteration


@given(st.integers(1, 6), SEEDS, st.floats(0.3, 0.7), st.booleans())
def test_power_iteration_top_n_matches_eigvalsh(layer, n, seed, r, as_callable):
    """Converged (tol 1e-14 on the Rayleigh quotient) deflated power iteration returns the n
    largest-magnitude eigenvalues, their eigenvectors up to sign, small residuals."""
    H = geometric(n, r, seed)
    H_l = layer.to_layer(H)
    H_arg = H if not as_callable else (lambda v: H_l @ v)
    extra = {"dim": n} if as_callable else {}
    out = est(layer, "power_iteration")(H_arg, seed=seed, top_n=n, tol=1e-14, max_iter=5000,
                                        **extra)
    lam, Q = np.linalg.eigh(H)
    order = np.argsort(-np.abs(lam))
    assert_allclose(out["eigenvalues"], lam[order], rtol=1e-9, atol=1e-12)
    overlap = np.abs(np.einsum("kp,pk->k", out["eigenvectors"], Q[:, order]))
    assert_allclose(overlap, 1.0, atol=1e-6)
    assert np.all(out["residuals"] <= 1e-6) and np.all(out["converged"])


def test_power_iteration_shift_finds_the_algebraic_maximum(layer):
    H = np.diag([-5.0, 1.0, 2.0])
    out = est(layer, "power_iteration")(H, seed=0, shift=5.0, tol=1e-14, max_iter=2000)
    assert_allclose(out["eigenvalues"], [2.0], rtol=1e-9)
    plain = est(layer, "power_iteration")(H, seed=0, tol=1e-14, max_iter=2000)
    assert_allclose(plain["eigenvalues"], [-5.0], rtol=1e-9)


def test_power_iteration_defaults_stop_early_and_count_hvps(layer):
    H = np.diag([4.0, 1.0, 0.5])
    out = est(layer, "power_iteration")(H, seed=3)
    assert out["converged"][0] and out["iterations"][0] < 100
    assert out["n_hvp"] == out["iterations"][0] + 1
    assert abs(out["eigenvalues"][0] - 4.0) <= 1e-3 * 4.0
    fixed = est(layer, "power_iteration")(H, seed=3, tol=0.0, max_iter=7)
    assert fixed["iterations"][0] == 7 and not fixed["converged"][0]


# ---------------------------------------------------------------- Lanczos and SLQ


@given(st.integers(2, 7), SEEDS, st.sampled_from(["LA", "SA", "LM"]), st.integers(1, 3))
def test_lanczos_full_space_ritz_values_and_quadrature_weights(layer, n, seed, which, n_v):
    """m = P: nodes are the eigenvalues, weights (q_i^T v)^2/||v||^2, each row sums to 1; the
    density integrates to 1 and the k extreme Ritz values match eigvalsh with zero residual."""
    H = geometric(n, 0.6, seed)
    V = np.random.default_rng(seed + 1).standard_normal((n_v, n))
    k = min(2, n)
    out = est(layer, "lanczos_slq")(H, V, m=n, k=k, which=which, n_v=n_v)
    lam, Q = np.linalg.eigh(H)
    assert_allclose(out["nodes"], np.tile(lam, (n_v, 1)), rtol=1e-9, atol=1e-11)
    w = (V @ Q) ** 2 / (V**2).sum(axis=1, keepdims=True)
    assert_allclose(out["weights"], w, atol=1e-9)
    key = {"LA": -lam, "SA": lam, "LM": -np.abs(lam)}[which]
    assert_allclose(out["eigenvalues"], lam[np.argsort(key)][:k], rtol=1e-9, atol=1e-11)
    assert_allclose(out["residuals"], 0.0)
    assert_allclose(np.trapezoid(out["density"], out["grid"]), 1.0, atol=2e-3)


def test_lanczos_extreme_ritz_values_agree_with_eigsh_on_a_linear_operator(layer):
    """m = 40 < P = 60 steps on a matrix with a separated top: the largest Ritz value equals
    ARPACK's (eigsh on a LinearOperator), and its residual bound beta_m |s_m| is small."""
    rng = np.random.default_rng(0)
    lam = np.concatenate([[10.0, 8.0], rng.uniform(-1, 1, 58)])
    H = symmetric(lam, random_orthogonal(60, rng))
    op = LinearOperator((60, 60), matvec=lambda v: H @ v, dtype=np.float64)
    top = eigsh(op, k=2, which="LA", return_eigenvectors=False, tol=0)
    out = est(layer, "lanczos_slq")(H, seed=1, m=40, k=2)
    assert_allclose(out["eigenvalues"], np.sort(top)[::-1], rtol=1e-9)
    assert np.all(out["residuals"] < 1e-6)


# ---------------------------------------------------------------- sharpness


def test_sharpness_closed_forms_on_a_quadratic(layer):
    """delta L_worst = rho ||g|| + rho^2/2 g_hat^T A g_hat; delta L_avg within its CI of
    rho^2 tr(A)/(2d) (K = 4000 directions, z at alpha = 1e-3, seed recorded); exact lambda_max
    and trace; the PGD extension is at least the first-order value."""
    rng = np.random.default_rng(5)
    d, rho, seed = 6, 0.1, 17
    M = rng.standard_normal((d, d))
    A, a, x = M @ M.T + np.eye(d), rng.standard_normal(d), rng.standard_normal(d)
    L, g = quadratic(layer, A, a)
    out = est(layer, "sharpness")(L, g, x, seed=seed, n_samples=4000, H=A, pgd_steps=5)
    grad = A @ (x - a)
    g_hat = grad / np.linalg.norm(grad)
    worst = rho * np.linalg.norm(grad) + rho**2 / 2 * g_hat @ A @ g_hat
    assert_allclose(out["delta_L_worst"], worst, rtol=1e-9)
    avg = rho**2 * np.trace(A) / (2 * d)
    assert abs(out["delta_L_avg"] - avg) <= norm.isf(ALPHA / 2) * out["delta_L_avg_se"], (
        f"seed {seed}: {out['delta_L_avg']} vs {avg} +- {out['delta_L_avg_se']}")
    assert_allclose([out["lambda_max"], out["trace"]], [np.linalg.eigvalsh(A).max(),
                                                         np.trace(A)], rtol=RTOL)
    assert out["delta_L_worst_pgd"] >= out["delta_L_worst"] - 1e-12
    assert out["n_evaluations"] == 1 + 1 + 4000 + 5


def test_sharpness_at_zero_gradient_and_with_weight_decay(layer):
    """g = 0 gives eps = 0 and delta L_worst = 0; the weight-decay term adds (wd/2)||v||^2."""
    A, a = np.diag([1.0, 2.0]), np.zeros(2)
    L, g = quadratic(layer, A, a)
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = est(layer, "sharpness")(L, g, np.zeros(2), z)
    assert out["delta_L_worst"] == 0.0
    assert_allclose(out["delta_L_avg"], 0.01 * (1.0 + 2.0) / 4, rtol=RTOL)
    wd = est(layer, "sharpness")(L, g, np.zeros(2), z, weight_decay=1.0,
                                 include_weight_decay_term=True)
    assert_allclose(wd["delta_L_avg"], 0.01 * (2.0 + 3.0) / 4, rtol=RTOL)
    assert wd["protocol"]["include_weight_decay_term"] is True


def test_sharpness_stochastic_curvature(layer):
    A = np.diag([3.0, 1.0, 0.5])
    L, g = quadratic(layer, A, np.zeros(3))
    out = est(layer, "sharpness")(L, g, np.ones(3), seed=2, n_samples=2, H=A,
                                  curvature="stochastic", n_probes=8)
    assert abs(out["lambda_max"] - 3.0) <= 3e-3 * 3.0
    assert_allclose(out["trace"], 4.5, rtol=RTOL)  # Rademacher probes are exact for diagonal A


# ---------------------------------------------------------------- iteration spectrum


class Quadratic1D:
    """The oracle of f(x) = lam x^2 / 2 for the rules (gradient at any point)."""

    def __init__(self, lam):
        self.lam = lam

    def grad(self, params):
        return {"x": self.lam * params["x"]}


def _rate(layer, rule_id, lam, steps=300, **hyper):
    """(||s_2K|| / ||s_K||)^(1/K) for the state s = (x, momentum) of the rule."""
    rule, oracle = layer.rules.get(rule_id), Quadratic1D(lam)
    params = {"x": layer.to_layer(np.array([1.0]))}
    state, norms = rule.init(params), []
    for _ in range(2 * steps):
        updates, state = rule.step(oracle.grad(params), state, params, oracle, **hyper)
        params = {"x": params["x"] + updates["x"]}
        m = layer.to_numpy(state["m"]["x"]) if "m" in state else 0.0
        norms.append(math.hypot(float(layer.to_numpy(params["x"])[0]), float(np.ravel(m)[0])))
    return (norms[-1] / norms[steps - 1]) ** (1.0 / steps)


@pytest.mark.parametrize("h,beta", [(0.1, 0.5), (0.5, 0.9), (1.5, 0.3), (3.5, 0.2), (0.02, 0.0)])
def test_iteration_spectrum_agrees_with_iterating_the_rules(layer, h, beta):
    alpha = 0.1
    out = est(layer, "iteration_spectrum")(np.array([h]), np.array([beta]))
    lam = h / alpha
    assert_allclose(out["gd"][0], _rate(layer, "rule:fo.sgd", lam, alpha=alpha), rtol=0.03)
    hb = _rate(layer, "rule:fo.heavy_ball", lam, alpha=alpha, beta=beta)
    assert_allclose(out["heavy_ball"][0, 0], hb, rtol=0.03)
    nag = _rate(layer, "rule:fo.nesterov", lam, alpha=alpha, beta=beta)
    assert_allclose(out["nag"][0, 0], nag, rtol=0.03)


def test_iteration_spectrum_closed_forms(layer):
    out = est(layer, "iteration_spectrum")(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.81]))
    assert_allclose(out["gd"], [1.0, 0.0, 1.0])
    assert_allclose(out["heavy_ball"][:, 0], [1.0, 0.0, 1.0])  # beta = 0 is GD
    assert_allclose(out["heavy_ball"][1, 1], 0.9)  # complex pair: sqrt(beta)
    assert_allclose(out["nag"][1, :], [0.0, 0.0])  # h = 1: one step to the minimum


# ---------------------------------------------------------------- reduction ratio


@pytest.mark.parametrize("model", ["undamped", "damped"])
def test_reduction_ratio_is_one_for_the_exact_quadratic_model(layer, model):
    rng = np.random.default_rng(2)
    M = rng.standard_normal((4, 4))
    A, a, x, p = M @ M.T + np.eye(4), *rng.standard_normal((3, 4))
    L, _ = quadratic(layer, A, a)
    g = A @ (x - a)
    out = est(layer, "reduction_ratio")(L, x, p, g, A, lam=0.5, model=model)
    pred = g @ p + 0.5 * p @ A @ p
    assert_allclose(out["actual"], pred, rtol=1e-9)
    damped = pred + 0.25 * p @ p if model == "damped" else pred
    assert_allclose(out["predicted"], damped, rtol=1e-9)
    assert_allclose(out["ratio"], pred / damped, rtol=1e-9)


# ---------------------------------------------------------------- Hessian sensitivity


def _diag_of(layer, a):
    """H_hat(x, seed) = a + x ⊙ x (the exact diagonal of sum_i a_i x_i^2/2 + x_i^4/12)."""
    a_l = layer.to_layer(a)
    return lambda x, seed: a_l + x * x


def test_sensitivity_of_a_known_diagonal(layer):
    """||H'(x + e) - H'(x)|| = ||2 x ⊙ e + e ⊙ e|| with e = rho d/||d||; reference level 0."""
    a, x = np.array([1.0, -2.0, 0.5]), np.array([0.3, -1.0, 2.0])
    delta = np.random.default_rng(0).standard_normal((4, 3))
    out = est(layer, "hessian_sensitivity")(_diag_of(layer, a), x, delta, N=4)
    e = 0.1 * delta / np.linalg.norm(delta, axis=1, keepdims=True)
    values = np.linalg.norm(2 * x * e + e * e, axis=1)
    assert_allclose(out["values"], values, rtol=RTOL)
    assert_allclose(out["sensitivity"], values.max(), rtol=RTOL)
    assert out["reference_level"] == 0.0 and out["n_evaluations"] == 9


def test_sensitivity_seed_schemes(layer):
    """Common probes give reference level 0; independent probes a positive level; ema_D scales
    the abs differences by (1 - beta2)."""
    seen = []

    def H_hat(x, seed):
        seen.append(seed)
        return x * 0.0 + float(seed[0] or 0)

    x = np.ones(2)
    common = est(layer, "hessian_sensitivity")(H_hat, x, seed=4, N=3,
                                               H_hat_mode="hutchinson_common")
    assert common["reference_level"] == 0.0 and len(set(seen)) == 1
    seen.clear()
    indep = est(layer, "hessian_sensitivity")(H_hat, x, seed=4, N=3,
                                              H_hat_mode="hutchinson_independent")
    assert len(set(seen)) == 7 and indep["reference_level"] > 0
    ema = est(layer, "hessian_sensitivity")(H_hat, x, seed=4, N=3, which="ema_D", beta2=0.9,
                                            H_hat_mode="hutchinson_independent")
    assert_allclose(ema["reference_level"], 0.1 * indep["reference_level"], rtol=RTOL)


def test_hessian_difference_along_a_trajectory(layer):
    a = np.array([1.0, 2.0])
    X = np.arange(12.0).reshape(6, 2) / 4
    out = est(layer, "hessian_difference")(_diag_of(layer, a), X, k=2)
    D = a + X * X
    assert_allclose(out["differences"], np.linalg.norm(D[2:] - D[:-2], axis=1), rtol=RTOL)
    clipped = est(layer, "hessian_difference")(_diag_of(layer, -a), X, k=2,
                                               sophia_clip_before_diff=True, gamma=0.5)
    C = np.maximum(0.5 * (-a + X * X), 1e-12)
    assert_allclose(clipped["differences"], np.linalg.norm(C[2:] - C[:-2], axis=1), rtol=RTOL)


# ---------------------------------------------------------------- precond_stats, gen_gap


def test_precond_stats_closed_forms(layer):
    D = np.array([[4.0, 1.0], [0.25, 1.0]])
    x = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 5.0]])
    out = est(layer, "precond_stats")(D, eta=0.1, power=0.5, eps=0.5, x=x, bins=2)
    denom = np.sqrt(D) + 0.5
    assert_allclose(out["denominator"], denom, rtol=RTOL)
    assert_allclose(out["precond_step_size"], 0.1 * np.sqrt((denom**-2).sum(axis=1)), rtol=RTOL)
    assert_allclose(out["update_size"], [5.0, 1.0], rtol=RTOL)
    widths = np.diff(out["hist_edges"])
    assert_allclose((out["hist_density"] * widths).sum(), 1.0, rtol=RTOL)


def test_gen_gap_closed_form(layer):
    Z_tr = np.array([[2.0, 0.0], [0.0, 1.0]])
    Z_va = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 2.0]])
    y_tr, y_va = np.array([0, 1]), np.array([1, 1, 1])
    fn = layer.module("estimators.stochastic").gen_gap
    labels = (lambda y: torch.as_tensor(y)) if layer.is_torch else (lambda y: y)
    out = fn(layer.to_layer(Z_tr), labels(y_tr), layer.to_layer(Z_va), labels(y_va))

    def ce(Z, y):
        return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]))

    assert_allclose(out["L_train"], ce(Z_tr, y_tr), rtol=RTOL)
    assert_allclose(out["delta_L"], ce(Z_va, y_va) - ce(Z_tr, y_tr), rtol=RTOL)
    assert out["acc_train"] == 1.0 and out["acc_val"] == pytest.approx(1 / 3)


def test_errors_name_the_parameter(layer):
    with pytest.raises(ValueError, match="symmetric"):
        est(layer, "power_iteration")(np.array([[1.0, 2.0], [0.0, 1.0]]), seed=0)
    with pytest.raises(ValueError, match="top_n"):
        est(layer, "power_iteration")(np.eye(2), seed=0, top_n=3)
    with pytest.raises(ValueError, match="which"):
        est(layer, "lanczos_slq")(np.eye(2), seed=0, which="BE")
    with pytest.raises(ValueError, match="H_hat_mode"):
        est(layer, "hessian_sensitivity")(lambda x, s: x, np.ones(2), seed=0, H_hat_mode="x")
    with pytest.raises(ValueError, match="needs a seed"):
        est(layer, "hessian_sensitivity")(lambda x, s: x, np.ones(2), np.ones((1, 2)),
                                          H_hat_mode="hutchinson_common")
    with pytest.raises(ValueError, match="momentum"):
        est(layer, "iteration_spectrum")(np.ones(1), -np.ones(1))
