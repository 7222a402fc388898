"""Exact oracles of the NumPy reference problems (INVENTORY §1.1-§1.3, §5 items 1, 2, 9, 10).

Finite differences use the 5-point central stencil with h = 1e-4: truncation error
h^4 |f^(5)| / 30 ~ 3e-18 |f^(5)| and rounding error ~ 1.5 eps |f| / h ~ 3e-12 |f|. The
strategies' inputs reach |x| ~ 5, so fifth derivatives reach ~1e6 (h = 1e-3 was measured to
miss by 1e-9 there) and losses ~10; a tolerance of 1e-9 times max(1, scale of the compared
quantity) keeps a margin of >= 30 over both terms (measured: the worst error over 400
`networks()` cases was 0.8% of the tolerance). ReLU networks are only piecewise smooth:
`assume_smooth` discards the cases where a hidden pre-activation lies within KINK_MARGIN of
the kink, so that no stencil point crosses it.
Statistical tests are confidence-interval tests at a family-wise false-alarm rate
ALPHA = 1e-3 (Bonferroni over the directions tested), with fixed seeds (INVENTORY §0.4(3)).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import expit, softmax

import reference.problems as problems
from reference.problems import datasets, network, spectra
from reference.problems.network import FeedForward
from reference.problems.quadratic import (
    Quadratic,
    QuadraticFiniteSum,
    QuadraticNoisy,
    QuadraticSumOfQuadratics,
)
from reference.tree import flatten, unflatten

RTOL, ATOL = 1e-10, 1e-12
FD_TOL = 1e-9
ALPHA = 1e-3
KINK_MARGIN = 0.01  # > 2h times the largest |h_bar| entry the strategies produce (~10)


def fd(fn, params, h=1e-4):
    """d fn / d theta_j for every flat coordinate j, shape fn(params).shape + (P,)."""
    theta = flatten(params)

    def at(step):
        return np.asarray(fn(unflatten(theta + step, params)), dtype=np.float64)

    columns = []
    for e in np.eye(theta.size) * h:
        columns.append((-at(2 * e) + 8 * at(e) - 8 * at(-e) + at(-2 * e)) / (12 * h))
    return np.stack(columns, axis=-1)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def fd_close(actual, expected):
    """Agreement with a finite difference to FD_TOL relative to the quantity's scale."""
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=0, atol=FD_TOL * scale)


def bonferroni_z(m: int) -> float:
    """Two-sided normal quantile for m simultaneous tests at family-wise rate ALPHA."""
    return float(stats.norm.ppf(1.0 - ALPHA / (2 * m)))


@st.composite
def networks(draw, losses=network.LOSSES, activations=network.ACTIVATIONS):
    """A small FeedForward (P <= ~70) with random widths, loss, activation, bias and seed."""
    loss = draw(st.sampled_from(losses))
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    out = 1 if loss == "bce" else draw(st.integers(2, 3))
    widths = [draw(st.integers(1, 4)), *hidden, out]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    prob = FeedForward.make(rng, n_samples=draw(st.integers(1, 6)), widths=widths,
                            activation=draw(st.sampled_from(activations)), loss=loss,
                            bias=draw(st.booleans()))
    return prob, prob.init_params(rng)


def assume_smooth(prob, params):
    """Discard a ReLU case whose finite-difference stencil could cross a kink."""
    if prob.activation == "relu":
        hidden = [layer["a"] for layer in prob.layer_stats(params)[:-1]]
        assume(all(np.abs(a).min() > KINK_MARGIN for a in hidden))


def small_mlp(loss="ce", activation="tanh", bias=True, reduction="mean", l2=0.0, seed=0,
              widths=(3, 4, 3), n_samples=6):
    rng = np.random.default_rng(seed)
    widths = (*widths[:-1], 1) if loss == "bce" else widths
    prob = FeedForward.make(rng, n_samples=n_samples, widths=widths, activation=activation,
                            loss=loss, bias=bias, reduction=reduction, l2=l2)
    return prob, prob.init_params(rng)


# -- spectra ---------------------------------------------------------------------------------


@given(n=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_random_orthogonal_is_orthogonal_and_deterministic(n, seed):
    Q = spectra.random_orthogonal(n, np.random.default_rng(seed))
    close(Q.T @ Q, np.eye(n))
    np.testing.assert_array_equal(Q, spectra.random_orthogonal(n, np.random.default_rng(seed)))


def test_random_orthogonal_sign_fix_gives_positive_r_diagonal():
    Q = spectra.random_orthogonal(6, np.random.default_rng(3))
    Z = np.random.default_rng(3).standard_normal((6, 6))
    R = Q.T @ Z
    close(np.tril(R, -1), 0.0, atol=1e-12)
    assert np.all(np.diag(R) > 0)


@given(family=st.sampled_from(spectra.FAMILIES), n=st.integers(2, 40),
       log_cond=st.floats(0.0, 8.0), L=st.floats(0.1, 10.0), seed=st.integers(0, 2**32 - 1))
def test_spectrum_is_descending_with_scale_L_and_condition_cond(family, n, log_cond, L, seed):
    cond = 10.0**log_cond
    lam = spectra.spectrum(family, n, cond, np.random.default_rng(seed), L=L)
    assert lam.shape == (n,)
    assert np.all(np.diff(lam) <= 0)
    magnitude = np.abs(lam[lam != 0])
    close(magnitude.max(), L)
    if magnitude.size >= 2:  # psd_zeros with n = 2 keeps a single nonzero eigenvalue
        close(magnitude.max() / magnitude.min(), cond, rtol=1e-9)
    assert magnitude.size >= 2 or (family == "psd_zeros" and n == 2)
    assert np.all(lam >= 0) or family == "indefinite"


def test_geometric_spectrum_is_geometric():
    lam = spectra.spectrum("geometric", 5, 1e4, L=2.0)
    close(lam, 2.0 * np.array([1.0, 1e-1, 1e-2, 1e-3, 1e-4]))


def test_two_point_and_power_law_shapes():
    close(spectra.spectrum("two_point", 5, 10.0), [1, 1, 1, 0.1, 0.1])
    lam = spectra.spectrum("power_law", 100, 1e4)
    close(lam, np.arange(1, 101) ** (-2.0))  # p = log(1e4)/log(100) = 2
    assert np.mean(lam < 1e-2 * lam[0]) > 0.85  # few large, many near 0


def test_psd_zeros_and_indefinite_counts():
    rng = np.random.default_rng(0)
    lam = spectra.spectrum("psd_zeros", 8, 100.0, rng, zeros=3)
    assert np.sum(lam == 0.0) == 3 and np.all(lam >= 0.0)
    lam = spectra.spectrum("indefinite", 8, 100.0, rng, negatives=2)
    assert np.sum(lam < 0.0) == 2
    drawn = [spectra.spectrum("psd_zeros", 8, 100.0, rng) for _ in range(50)]
    assert {int(np.sum(lam == 0.0)) for lam in drawn} == set(range(1, 7))
    close(spectra.spectrum("psd_zeros", 1, 10.0, rng, L=3.0), [0.0])
    close(spectra.spectrum("indefinite", 1, 10.0, rng, L=3.0), [-3.0])


def test_symmetric_has_the_spectrum_and_is_exactly_symmetric():
    rng = np.random.default_rng(1)
    lam = spectra.spectrum("indefinite", 7, 50.0, rng)
    A = spectra.symmetric(lam, spectra.random_orthogonal(7, rng))
    np.testing.assert_array_equal(A, A.T)
    close(np.linalg.eigvalsh(A)[::-1], lam, atol=1e-14)


def test_spectrum_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="family.*allowed.*geometric"):
        spectra.spectrum("cauchy", 3, 10.0, rng)
    with pytest.raises(ValueError, match="condition number"):
        spectra.spectrum("geometric", 3, 0.5, rng)
    with pytest.raises(ValueError, match="dimension n"):
        spectra.spectrum("geometric", 0, 10.0, rng)
    with pytest.raises(ValueError, match="zeros"):
        spectra.spectrum("psd_zeros", 4, 10.0, rng, zeros=4)
    with pytest.raises(ValueError, match="rng"):
        spectra.spectrum("uniform", 4, 10.0)


# -- prob:quad --------------------------------------------------------------------------------


@pytest.mark.parametrize("halved, factor", [(True, 1.0), (False, 2.0)])
def test_quadratic_halved_forms(halved, factor):
    rng = np.random.default_rng(2)
    prob = Quadratic.make(rng, n=6, family="geometric", cond=50.0, halved=halved)
    prob = Quadratic(prob.A, prob.x_star, c=1.5, halved=halved)
    d = rng.standard_normal(6)
    x = {"x": prob.x_star + d}
    close(prob.loss(x), 0.5 * factor * d @ prob.A @ d + 1.5)  # 002 Eq. (3) when not halved
    close(prob.hessian(x), factor * prob.A)
    close(prob.grad(x)["x"], factor * prob.A @ d)
    fd_close(prob.grad(x)["x"], fd(prob.loss, x))
    v = rng.standard_normal(6)
    close(prob.hvp(x, {"x": v})["x"], prob.hessian(x) @ v)
    constants = prob.constants()
    close([constants["L"], constants["mu"]], [factor, factor / 50.0])
    (x_star, f_star) = prob.optimum()
    close(x_star["x"], prob.x_star)
    assert f_star == 1.5
    close(prob.grad(x_star)["x"], 0.0)


def test_quadratic_separable_and_indefinite():
    rng = np.random.default_rng(3)
    prob = Quadratic.make(rng, n=5, family="uniform", cond=10.0, rotated=False)
    np.testing.assert_array_equal(prob.A, np.diag(np.diag(prob.A)))
    indefinite = Quadratic.make(rng, n=5, family="indefinite")
    assert indefinite.optimum() is None
    assert indefinite.constants()["mu"] < 0
    zeros = Quadratic.make(rng, n=5, family="psd_zeros")
    assert zeros.optimum()[1] == 0.0


def test_quadratic_has_one_sample_and_no_fisher():
    prob = Quadratic.make(np.random.default_rng(4), n=3)
    x = prob.init_params(np.random.default_rng(5))
    assert prob.num_samples() == 1
    close(prob.per_sample_grads(x), prob.grad(x)["x"][None])
    close(prob.per_sample_losses(x), [prob.loss(x)])
    with pytest.raises(NotImplementedError, match="prob:quad.*fisher_true"):
        prob.fisher_true(x)


def test_quadratic_errors():
    prob = Quadratic.make(np.random.default_rng(0), n=3)
    with pytest.raises(ValueError, match=r"params\['x'\] has shape \(2,\); expected \(3,\)"):
        prob.loss({"x": np.zeros(2)})
    with pytest.raises(ValueError, match="exactly the key 'x'"):
        prob.grad({"y": np.zeros(3)})
    with pytest.raises(ValueError, match=r"v\['x'\]"):
        prob.hvp({"x": np.zeros(3)}, {"x": np.zeros(4)})
    with pytest.raises(ValueError, match="non-finite"):
        prob.grad({"x": np.array([0.0, np.nan, 0.0])})
    with pytest.raises(ValueError, match="A must be symmetric"):
        Quadratic(np.triu(np.ones((3, 3))), np.zeros(3))
    with pytest.raises(ValueError, match="x_star"):
        Quadratic(np.eye(3), np.zeros(2))


# -- prob:quad_finite_sum ---------------------------------------------------------------------


def test_finite_sum_per_sample_structure():
    rng = np.random.default_rng(6)
    prob = QuadraticFiniteSum.make(rng, n_samples=10, dim=4, out_dim=2, noise_like_hessian=False)
    x = prob.init_params(rng)
    r = np.einsum("nmi,i->nm", prob.X, x["x"]) - prob.y
    close(prob.per_sample_losses(x), 0.5 * np.sum(r**2, axis=1))
    G = prob.per_sample_grads(x)
    fd_close(G, fd(prob.per_sample_losses, x))
    close(G.mean(axis=0), prob.grad(x)["x"])
    H = np.mean([Xn.T @ Xn for Xn in prob.X], axis=0)
    close(prob.hessian(x), H)
    close(prob.fisher_emp(x), np.mean([np.outer(g, g) for g in G], axis=0))
    batch = np.array([7, 2, 2])
    close(prob.loss(x, batch), prob.per_sample_losses(x)[batch].mean())
    close(prob.hessian(x, batch), np.mean([prob.X[n].T @ prob.X[n] for n in batch], axis=0))
    x_opt, f_opt = prob.optimum()
    close(x_opt["x"], np.linalg.lstsq(prob.X.reshape(-1, 4), prob.y.reshape(-1), rcond=None)[0])
    close(f_opt, prob.loss(x_opt))


@pytest.mark.parametrize("out_dim", [1, 3])
def test_finite_sum_noise_covariance_is_proportional_to_hessian(out_dim):
    noise = 0.7
    prob = QuadraticFiniteSum.make(np.random.default_rng(7), n_samples=12 * out_dim, dim=5,
                                   out_dim=out_dim, noise=noise)
    x_star, _ = prob.optimum()
    G = prob.per_sample_grads(x_star)
    close(G.mean(axis=0), 0.0, atol=1e-13)
    Sigma = (G - G.mean(axis=0)).T @ (G - G.mean(axis=0)) / G.shape[0]
    close(Sigma, noise**2 * prob.hessian(x_star), atol=1e-13)
    with pytest.raises(ValueError, match="multiple of"):
        QuadraticFiniteSum.make(np.random.default_rng(0), n_samples=7, out_dim=2)


def test_sum_of_quadratics_variant():
    rng = np.random.default_rng(8)
    prob = QuadraticSumOfQuadratics.make(rng, n_samples=5, dim=3, family="psd_zeros")
    assert prob.id == "prob:quad_finite_sum[quadratics]"
    x = prob.init_params(rng)
    r = x["x"] - prob.x_star
    close(prob.per_sample_losses(x), 0.5 * np.einsum("ni,nij,nj->n", r, prob.A, r))
    fd_close(prob.per_sample_grads(x), fd(prob.per_sample_losses, x))
    close(prob.hessian(x), prob.A.mean(axis=0))
    x_opt, _ = prob.optimum()
    close(prob.grad(x_opt)["x"], 0.0, atol=1e-12)
    close(prob.hessian(x_opt) @ x_opt["x"], np.einsum("nij,nj->i", prob.A, prob.x_star) / 5)


# -- prob:quad_noisy --------------------------------------------------------------------------


def _noise_draws(prob, seed, draws=20000):
    rng = np.random.default_rng(seed)
    x = {"x": np.zeros(prob.dim)}
    g = prob.grad(x)["x"]
    return np.stack([prob.noisy_grad(x, rng)["x"] - g for _ in range(draws)])


@pytest.mark.parametrize("noise", ["isotropic", "hessian", "user"])
def test_quad_noisy_mean_and_covariance(noise):
    rng = np.random.default_rng(9)
    user = spectra.symmetric(spectra.spectrum("psd_zeros", 4, 10.0, rng, zeros=1),
                             spectra.random_orthogonal(4, rng))
    prob = QuadraticNoisy.make(rng, n=4, noise=noise, sigma=0.3, k=2.0, batch_size=4,
                               Sigma=user if noise == "user" else None)
    Sigma = {"isotropic": 0.09 * np.eye(4), "hessian": 0.5 * prob.A, "user": user}[noise]
    close(prob.noise_cov(), Sigma)
    xi = _noise_draws(prob, seed=10)
    M = xi.shape[0]
    # mean: xi_bar ~ N(0, Sigma/M); on the range of Sigma, M xi_bar^T Sigma^+ xi_bar ~ chi2(rank)
    rank = np.linalg.matrix_rank(Sigma, tol=1e-10)
    T = M * xi.mean(axis=0) @ np.linalg.pinv(Sigma, rcond=1e-10) @ xi.mean(axis=0)
    assert T < stats.chi2.ppf(1.0 - ALPHA / 2, rank)
    # covariance along fixed directions: (u.xi)^2 has mean u^T Sigma u, variance 2 (u^T Sigma u)^2
    U = np.random.default_rng(11).standard_normal((3, 4))
    s2 = np.einsum("ki,ij,kj->k", U, Sigma, U)
    z = (np.mean((xi @ U.T) ** 2, axis=0) - s2) / (np.sqrt(2.0 / M) * s2)
    assert np.all(np.abs(z) < bonferroni_z(3 * 2))


def test_quad_noisy_bounded_clips_the_same_draw():
    rng = np.random.default_rng(12)
    free = QuadraticNoisy.make(rng, n=3, sigma=1.0)
    clipped = QuadraticNoisy(**{**free.spec(), "bounded": 1.2})
    xi_free, xi_clipped = _noise_draws(free, 13, 2000), _noise_draws(clipped, 13, 2000)
    norms = np.linalg.norm(xi_free, axis=1)
    close(xi_clipped, xi_free * np.minimum(1.0, 1.2 / norms)[:, None])
    assert np.mean(norms > 1.2) > 0.3  # the clipping is exercised
    assert np.all(np.linalg.norm(xi_clipped, axis=1) <= 1.2 * (1 + 1e-12))


def test_quad_noisy_errors():
    with pytest.raises(ValueError, match="positive semi-definite"):
        QuadraticNoisy(np.eye(2), np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="noise.*allowed"):
        QuadraticNoisy.make(np.random.default_rng(0), noise="laplace")
    with pytest.raises(ValueError, match="bounded"):
        QuadraticNoisy(np.eye(2), np.zeros(2), np.eye(2), bounded=-1.0)


# -- FeedForward: derivatives -----------------------------------------------------------------


def test_parameter_names_follow_nn_sequential():
    prob, params = small_mlp(widths=(3, 5, 4, 2))
    assert list(params) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert [params[k].shape for k in params] == [(5, 3), (5,), (4, 5), (4,), (2, 4), (2,)]
    assert np.all(params["0.bias"] != 0.0)
    prob, params = small_mlp(bias=False)
    assert list(params) == ["0.weight", "2.weight"]


@given(networks())
def test_per_sample_grads_match_finite_differences(case):
    prob, params = case
    assume_smooth(prob, params)
    G = prob.per_sample_grads(params)
    fd_close(G, fd(prob.per_sample_losses, params))
    close(G.mean(axis=0), flatten(prob.grad(params)))  # INVENTORY §5 item 1


@given(networks())
def test_hessian_matches_finite_differences_of_the_gradient(case):
    prob, params = case
    assume_smooth(prob, params)
    H = prob.hessian(params)
    fd_close(H, fd(lambda p: flatten(prob.grad(p)), params))


@given(networks())
def test_hvp_equals_hessian_times_v_and_is_symmetric(case):
    prob, params = case
    rng = np.random.default_rng(0)
    H = prob.hessian(params)
    v = rng.standard_normal(H.shape[0])
    close(flatten(prob.hvp(params, unflatten(v, params))), H @ v)
    # e_i^T H e_j from R-operator passes alone: symmetric up to rounding
    columns = np.stack([flatten(prob.hvp(params, unflatten(e, params))) for e in np.eye(v.size)])
    close(columns, columns.T, atol=1e-12 * max(1.0, np.abs(H).max()))


@pytest.mark.parametrize("loss", network.LOSSES)
def test_sum_reduction_scales_by_n(loss):
    mean, params = small_mlp(loss=loss, l2=0.1, seed=1)
    total = FeedForward(**{**mean.spec(), "reduction": "sum"})
    N = mean.num_samples()
    close(total.loss(params), N * mean.loss(params))
    close(flatten(total.grad(params)), N * flatten(mean.grad(params)))
    close(total.per_sample_grads(params), mean.per_sample_grads(params))
    for quantity in ("hessian", "ggn", "fisher_true", "fisher_emp"):
        close(getattr(total, quantity)(params), N * getattr(mean, quantity)(params))


def test_mlp_builder_targets():
    rng = np.random.default_rng(29)
    one = FeedForward.make(rng, n_samples=10, widths=(2, 1), loss="mse_half")
    assert one.y.shape == (10, 1) and set(np.unique(one.y)) == {0.0, 1.0}
    hot = FeedForward.make(rng, n_samples=9, widths=(2, 3), loss="mse")
    close(hot.y.sum(axis=1), 1.0)
    assert set(np.unique(FeedForward.make(rng, widths=(2, 1), loss="bce").y)) == {0.0, 1.0}


def test_hessian_of_batches_averages():
    prob, params = small_mlp(seed=2, n_samples=5)
    singles = [prob.hessian(params, np.array([n])) for n in range(5)]
    close(prob.hessian(params), np.mean(singles, axis=0))
    batch = np.array([4, 0])
    close(prob.loss(params, batch), prob.per_sample_losses(params)[batch].mean())


def test_jac_out_matches_finite_differences_of_the_outputs():
    prob, params = small_mlp(activation="sigmoid", widths=(2, 3, 3, 3))

    def outputs(p):
        return prob.layer_stats(p)[-1]["a"]

    fd_close(prob.jac_out(params), fd(outputs, params))


# -- FeedForward: curvature identities ------------------------------------------------------


@pytest.mark.parametrize("builder, options", [
    (network.SoftmaxRegression, {}),
    (network.SoftmaxRegression, {"l2": 0.3}),
    (network.LeastSquares, {}),
    (network.LeastSquares, {"design": "rank_deficient"}),
    (network.LogisticRegression, {"l2": 0.1}),
])
def test_ggn_equals_hessian_for_models_linear_in_theta(builder, options):
    rng = np.random.default_rng(14)
    prob = builder.make(rng, **options)
    params = prob.init_params(rng)
    G = prob.ggn(params)
    close(G, prob.hessian(params), atol=1e-12 * np.abs(G).max())


@given(networks())
def test_true_fisher_equals_ggn_without_ridge(case):
    """Canonical links (ce, bce) and Gaussian likelihoods (mse, mse_half): F = G exactly."""
    prob, params = case
    F = prob.fisher_true(params)
    close(F, prob.ggn(params), atol=1e-12 * max(1.0, np.abs(F).max()))


@pytest.mark.parametrize("loss", network.LOSSES)
def test_true_fisher_with_ridge(loss):
    """g_n(y) = J^T dl/dz + l2 theta and E[dl/dz] = 0: F = G - l2 I + l2^2 theta theta^T."""
    prob, params = small_mlp(loss=loss, l2=0.2, seed=3)
    theta = flatten(params)
    expected = prob.ggn(params) - 0.2 * np.eye(theta.size) + 0.04 * np.outer(theta, theta)
    close(prob.fisher_true(params), expected)


def _exact_moments(prob, params, u):
    """Mean and variance of the MC statistic u^T F_mc u for K = 1, from the model's law."""
    z = prob.layer_stats(params)[-1]["a"]
    if prob.loss_name in ("mse", "mse_half"):
        # u.g_n ~ N(0, s_n), s_n = (J_n u)^T Lambda_n (J_n u), so (u.g_n)^2 = s_n chi^2_1
        Ju = prob.jac_out(params) @ u
        s = np.einsum("nc,ncd,nd->n", Ju, prob.out_hess(params), Ju)
        return s.mean(), np.mean(2 * s**2) / s.size
    if prob.loss_name == "ce":
        labels, weights = range(z.shape[1]), softmax(z, axis=-1).T
    else:
        labels, weights = (0.0, 1.0), np.stack([expit(-z[:, 0]), expit(z[:, 0])])
    values = np.stack([(prob.per_sample_grads(params, labels=np.full(z.shape[0], c)) @ u) ** 2
                       for c in labels])  # (labels, N)
    mean_n = np.sum(weights * values, axis=0)
    var_n = np.sum(weights * values**2, axis=0) - mean_n**2
    return mean_n.mean(), var_n.mean() / mean_n.size


@pytest.mark.parametrize("loss", ["ce", "bce", "mse_half", "mse"])
def test_mc_fisher_is_within_a_confidence_interval_of_the_exact_one(loss):
    prob, params = small_mlp(loss=loss, seed=4, n_samples=8)
    K = 3000
    F_mc = prob.fisher_true(params, mc_samples=K, rng=np.random.default_rng(15))
    U = np.random.default_rng(16).standard_normal((3, F_mc.shape[0]))
    F = prob.fisher_true(params)
    for u in U:
        mean, var = _exact_moments(prob, params, u)
        close(mean, u @ F @ u)
        assert abs(u @ F_mc @ u - mean) < bonferroni_z(3) * np.sqrt(var / K)


def test_mc_fisher_error_shrinks_like_one_over_sqrt_k():
    prob, params = small_mlp(seed=5, n_samples=8)
    F = prob.fisher_true(params)
    errors = [np.mean([np.linalg.norm(prob.fisher_true(params, mc_samples=K,
                                                       rng=np.random.default_rng(s)) - F)
                       for s in range(20)]) for K in (16, 1024)]
    assert 4.0 < errors[0] / errors[1] < 16.0  # sqrt(1024/16) = 8


def test_sample_labels_follow_the_model():
    prob, params = small_mlp(n_samples=3, seed=6)
    p = softmax(prob.layer_stats(params)[-1]["a"], axis=-1)
    rng = np.random.default_rng(17)
    draws = np.stack([prob.sample_labels(params, rng) for _ in range(6000)])
    counts = (draws[..., None] == np.arange(3)).mean(axis=0)
    z = (counts - p) / np.sqrt(p * (1 - p) / draws.shape[0])
    assert np.all(np.abs(z) < bonferroni_z(p.size))


def test_softmax_last_layer_fisher_diagonals():
    """INVENTORY est:fisher_true / est:fisher_emp oracles, with [W | b] (bias as column d)."""
    rng = np.random.default_rng(18)
    prob = network.SoftmaxRegression.make(rng, n_samples=20, dim=3, classes=4)
    params = prob.init_params(rng)
    stats_ = prob.layer_stats(params)[0]
    h_bar, p = stats_["h_bar"], softmax(stats_["a"], axis=-1)
    y = np.eye(4)[prob.y]

    def augmented_diag(M):
        d = np.diag(M)
        return np.concatenate([d[:12].reshape(4, 3), d[12:, None]], axis=1)

    close(augmented_diag(prob.fisher_true(params)),
          np.mean((p * (1 - p))[:, :, None] * h_bar[:, None, :] ** 2, axis=0))
    close(augmented_diag(prob.fisher_emp(params)),
          np.mean(((p - y) ** 2)[:, :, None] * h_bar[:, None, :] ** 2, axis=0))
    close(stats_["s"], p - y)


def test_empirical_fisher_is_the_mean_outer_product_of_per_sample_grads():
    prob, params = small_mlp(loss="mse_half", l2=0.1)
    G = prob.per_sample_grads(params)
    close(prob.fisher_emp(params), np.mean(G[:, :, None] * G[:, None, :], axis=0))


# -- FeedForward: layer statistics ------------------------------------------------------------


@pytest.mark.parametrize("activation", network.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_stats(activation, bias):
    prob, params = small_mlp(activation=activation, bias=bias, widths=(3, 4, 5, 3), seed=7)
    layers = prob.layer_stats(params)
    G = prob.per_sample_grads(params)
    per_sample = {}
    for i, layer in enumerate(layers):
        W = params[f"{2 * i}.weight"]
        theta = np.concatenate([W, params[f"{2 * i}.bias"][:, None]], axis=1) if bias else W
        close(layer["a"], layer["h_bar"] @ theta.T)
        outer = layer["s"][:, :, None] * layer["h_bar"][:, None, :]  # s h_bar^T, (B, out, in+1)
        per_sample[f"{2 * i}.weight"] = outer[..., :W.shape[1]].reshape(6, -1)
        if bias:
            close(layer["h_bar"][:, -1], 1.0)
            per_sample[f"{2 * i}.bias"] = outer[..., -1]
    close(np.concatenate([per_sample[k] for k in params], axis=1), G)
    phi_prime = {"tanh": lambda a: 1 / np.cosh(a) ** 2, "relu": lambda a: (a > 0) * 1.0,
                 "sigmoid": lambda a: expit(a) * expit(-a), "identity": np.ones_like}[activation]
    for i in range(len(layers) - 1):  # s_i = (W_{i+1}^T s_{i+1}) ⊙ phi'(a_i)
        W_next = params[f"{2 * (i + 1)}.weight"]
        close(layers[i]["s"], (layers[i + 1]["s"] @ W_next) * phi_prime(layers[i]["a"]))
        h = layers[i + 1]["h_bar"][:, :-1] if bias else layers[i + 1]["h_bar"]
        close(h, {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": expit,
                  "identity": lambda a: a}[activation](layers[i]["a"]))


def test_layer_s_is_the_derivative_of_the_per_sample_loss_in_the_preactivation():
    """s = dl_n/da_i checked through the bias (da/db = I), independently of backprop."""
    prob, params = small_mlp(widths=(3, 4, 3), seed=8)
    layers = prob.layer_stats(params)
    for i, name in enumerate(["0.bias", "2.bias"]):
        def losses(b, name=name):
            return prob.per_sample_losses({**params, name: b["b"]})

        fd_close(layers[i]["s"], fd(losses, {"b": params[name]}))


# -- FeedForward: special cases and constants ------------------------------------------------


@pytest.mark.parametrize("design", network.LSTSQ_DESIGNS)
def test_lstsq_designs_constants_and_optimum(design):
    rng = np.random.default_rng(19)
    prob = network.LeastSquares.make(rng, n_samples=30, dim=6, design=design, cond=1e3)
    assert list(prob.init_params(rng)) == ["0.weight"]
    X = prob.X
    lam = np.linalg.eigvalsh(X.T @ X / 30)
    if design == "rank_deficient":
        assert np.linalg.matrix_rank(X) == 3
    if design == "ill_conditioned":
        close(lam[-1] / lam[0], 1e3, rtol=1e-8)
    constants, H = prob.constants(), prob.hessian(prob.init_params(rng))
    close([constants["L"], constants["mu"]], [lam[-1], lam[0]], atol=1e-12)
    close(H, X.T @ X / 30)
    params, f_star = prob.optimum()
    close(flatten(prob.grad(params)), 0.0, atol=1e-12)
    w = np.linalg.lstsq(X, prob.y[:, 0], rcond=None)[0]
    close(params["0.weight"][0], w, atol=1e-10)
    close(f_star, 0.5 * np.mean((X @ w - prob.y[:, 0]) ** 2))


def test_ridge_least_squares_optimum():
    rng = np.random.default_rng(20)
    base = network.LeastSquares.make(rng, n_samples=20, dim=4)
    for loss in ("mse_half", "mse"):
        prob = FeedForward(**{**base.spec(), "l2": 0.5, "loss": loss, "bias": True})
        params, _ = prob.optimum()
        close(flatten(prob.grad(params)), 0.0, atol=1e-12)


@pytest.mark.parametrize("flip", [0.0, 0.25])
def test_logreg_labels_constants(flip):
    clean = network.LogisticRegression.make(np.random.default_rng(21), n_samples=200, l2=0.1)
    prob = network.LogisticRegression.make(np.random.default_rng(21), n_samples=200, l2=0.1,
                                           flip=flip)
    assert np.sum(prob.y != clean.y) == round(flip * 200)
    Xb = np.concatenate([prob.X, np.ones((200, 1))], axis=1)
    constants = prob.constants()
    close(constants["L"], np.linalg.eigvalsh(Xb.T @ Xb)[-1] / 800 + 0.1)
    close(constants["mu"], 0.1)
    rng = np.random.default_rng(22)
    for _ in range(3):
        eig = np.linalg.eigvalsh(prob.hessian(prob.init_params(rng)))
        assert constants["mu"] <= eig[0] + 1e-12 and eig[-1] <= constants["L"] + 1e-12


def test_softmax_constants_bound_the_hessian():
    rng = np.random.default_rng(23)
    prob = network.SoftmaxRegression.make(rng, l2=0.05)
    eig = np.linalg.eigvalsh(prob.hessian(prob.init_params(rng)))
    assert 0.05 - 1e-12 <= eig[0] and eig[-1] <= prob.constants()["L"] + 1e-12
    assert small_mlp()[0].constants() == {} and small_mlp()[0].optimum() is None


def test_w1_digits_network():
    prob = network.DigitsMLP.make(np.random.default_rng(24), n_samples=8, activation="tanh")
    assert prob.id == "prob:W1" and prob.widths == (64, 32, 32, 10)
    params = prob.init_params(np.random.default_rng(25))
    assert flatten(params).size == 3466
    v = unflatten(np.random.default_rng(26).standard_normal(3466), params)
    theta, h = flatten(params), 1e-4
    grads = [flatten(prob.grad(unflatten(theta + s * h * flatten(v), params)))
             for s in (2, 1, -1, -2)]
    directional = (-grads[0] + 8 * grads[1] - 8 * grads[2] + grads[3]) / (12 * h)
    fd_close(flatten(prob.hvp(params, v)), directional)


# -- data sets, registry, errors ------------------------------------------------------------


def test_gmm_is_balanced_and_deterministic():
    X, y = datasets.gmm(np.random.default_rng(0), n=30, d=5, classes=3, separation=4.0)
    assert X.shape == (30, 5) and y.dtype == np.int64
    assert np.all(np.bincount(y) == 10)
    X2, y2 = datasets.gmm(np.random.default_rng(0), n=30, d=5, classes=3, separation=4.0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_digits_split_and_standardisation():
    X, y = datasets.digits("train")
    X_test, y_test = datasets.digits("test")
    assert X.shape[0] + X_test.shape[0] == 1797 and X_test.shape[0] == 359
    assert set(np.unique(y)) == set(range(10))
    close(X.mean(axis=0), 0.0, atol=1e-12)
    varying = X.std(axis=0) > 0
    close(X.std(axis=0)[varying], 1.0)
    raw, _ = datasets.digits("train", standardize=False)
    assert raw.max() == 16.0
    np.testing.assert_array_equal(datasets.digits("train")[0], X)
    with pytest.raises(ValueError, match="split.*allowed"):
        datasets.digits("validation")


def test_registry_and_spec_round_trip():
    options = {"prob:W1": {"n_samples": 16}}
    for key in problems.ids():
        builder = problems.get(key)
        prob = builder.make(np.random.default_rng(27), **options.get(key, {}))
        assert prob.id == key
        twin = builder(**prob.spec())
        params = prob.init_params(np.random.default_rng(28))
        assert twin.loss(params) == prob.loss(params)
    assert set(problems.ids()) >= {"prob:quad", "prob:quad_finite_sum", "prob:quad_noisy",
                                   "prob:lstsq", "prob:logreg", "prob:softmax", "prob:mlp",
                                   "prob:W1"}


def test_feedforward_errors():
    X, y = np.zeros((4, 3)), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"activation: 'gelu'; allowed: \('tanh', 'relu'"):
        FeedForward(X, y, [3, 3], activation="gelu")
    with pytest.raises(ValueError, match=r"loss: 'hinge'; allowed: \('ce', 'mse', 'mse_half'"):
        FeedForward(X, y, [3, 3], loss="hinge")
    with pytest.raises(ValueError, match="reduction"):
        FeedForward(X, y, [3, 3], reduction="none")
    with pytest.raises(ValueError, match="X must have shape"):
        FeedForward(X, y, [2, 3])
    with pytest.raises(ValueError, match=r"y must be \(4,\) integer classes"):
        FeedForward(X, np.array([0, 1, 3, 0]), [3, 3])
    with pytest.raises(ValueError, match="widths"):
        FeedForward(X, y, [3])
    with pytest.raises(ValueError, match="l2"):
        FeedForward(X, y, [3, 3], l2=-1.0)
    prob, params = small_mlp()
    with pytest.raises(ValueError, match=r"params\['2.weight'\] has shape \(4, 4\); expected"):
        prob.loss({**params, "2.weight": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="keys"):
        prob.grad({k: params[k] for k in reversed(params)})
    with pytest.raises(ValueError, match=r"v\['0.bias'\]"):
        prob.hvp(params, {**params, "0.bias": np.zeros(5)})
    with pytest.raises(ValueError, match="batch indices"):
        prob.loss(params, np.array([0, 6]))
    with pytest.raises(ValueError, match="mc_samples"):
        prob.fisher_true(params, mc_samples=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        prob.fisher_true(params, mc_samples=3)
