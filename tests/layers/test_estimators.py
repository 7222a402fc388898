"""Estimators of the unified view and of gradient noise (INVENTORY §3.1, §3.2, §3.8), both layers.

Oracles: algebraic identities of the definitions, dense ground truth (eigh, np.cov), brute-force
enumeration over batches and label vectors, textbook facts about means of random draws, and
Monte-Carlo confidence intervals at a fixed false-alarm rate alpha = 1e-3 with fixed seeds. Each
check runs on the reference and on torch (float64) from the same NumPy inputs; expected values
are NumPy closed forms of those inputs, never the other layer's numbers. Torch only: float32
runs against the float64 run of the same function, and the rejection of non-tensor inputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import norm

from verify.strategies import SEEDS, build_curvature, curvature_cases

RTOL, ATOL = 1e-10, 1e-12
ALPHA = 1e-3
SAMPLINGS = ("with_replacement", "without_replacement")
F64, F32 = torch.float64, torch.float32
MODULES = {
    "uv_quantities": "estimators.unified_view",
    "grad_noise": "estimators.gradient_noise",
    "minibatch_moments": "estimators.gradient_noise",
    "fisher_batch": "estimators.gradient_noise",
}


def _convert(layer, x):
    """NumPy arrays to the layer (float arrays in its dtype, integer arrays kept integer);
    anything else (lists, numbers, None, strings) unchanged."""
    if not isinstance(x, np.ndarray):
        return x
    if np.issubdtype(x.dtype, np.floating):
        return layer.to_layer(x)
    return torch.as_tensor(x) if layer.is_torch else x.copy()


def est(layer, name: str):
    """The layer's estimator function ``name``, called with NumPy inputs, returning NumPy."""
    fn = getattr(layer.module(MODULES[name]), name)

    def call(*args, **options):
        out = fn(*(_convert(layer, a) for a in args),
                 **{k: _convert(layer, v) for k, v in options.items()})
        return layer.to_numpy(out)

    return call


def z_bound(components: int = 1) -> float:
    """Two-sided normal quantile at false-alarm rate ALPHA, Bonferroni over ``components``."""
    return float(norm.isf(ALPHA / (2 * components)))


def within_ci(estimate, se, exact) -> None:
    estimate, se, exact = (np.ravel(x) for x in (estimate, se, exact))
    assert np.all(np.abs(estimate - exact) <= z_bound(exact.size) * se), (estimate, exact, se)


def random_symmetric(n: int, rng: np.random.Generator) -> np.ndarray:
    M = rng.standard_normal((n, n))
    return M + M.T


def random_law(N: int, C: int, P: int, rng: np.random.Generator):
    """Per-label gradients G (N, C, P) and label probabilities p (N, C)."""
    return rng.standard_normal((N, C, P)), rng.dirichlet(np.ones(C), size=N)


def sample_labels(p_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF draws y ~ p_rows[...] (one uniform per label), shape p_rows.shape[:-1]."""
    u = rng.random(p_rows.shape[:-1])
    y = (np.cumsum(p_rows, axis=-1) < u[..., None]).sum(axis=-1)
    return np.minimum(y, p_rows.shape[-1] - 1)


def sample_indices(N: int, B: int, K: int, sampling: str, rng: np.random.Generator):
    if sampling == "with_replacement":
        return rng.integers(0, N, size=(K, B))
    return np.argsort(rng.random((K, N)), axis=1)[:, :B]


def assert_follows_float64(out32, out64, rtol) -> None:
    """Torch float32 outputs are float32 and within rtol (atol rtol * scale) of float64."""
    assert set(out32) == set(out64)
    for key, value in out32.items():
        assert value.dtype == F32, key
        scale = float(out64[key].abs().max())
        torch.testing.assert_close(value.double(), out64[key], rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------- est:uv_quantities


@given(curvature_cases(n_max=10, kinds=("pd", "psd", "indefinite")))
def test_uv_identities(layer, case):
    """sum Delta_i = -Delta, sum Delta_i_neg = Delta, normH2 = sum normH2_i, H = Q diag(lam) Q^T.

    Sums of n terms carry rounding n*eps*sum|terms|: the absolute tolerance is 1e-10 times
    that scale, not 1e-12, because the terms cancel (H indefinite).
    """
    data = build_curvature(case)
    rng = np.random.default_rng(case["seed"] + 1)
    H, g = np.asarray(data["H"], np.float64), np.asarray(data["g"], np.float64)
    d = rng.standard_normal(g.size)
    out = est(layer, "uv_quantities")(g, d, H)
    scale = np.abs(out["Delta_i"]).sum() + abs(out["Delta"])
    assert_allclose(out["Delta_i"].sum(), -out["Delta"], rtol=RTOL, atol=1e-10 * scale)
    assert_allclose(out["Delta_i_neg"].sum(), out["Delta"], rtol=RTOL, atol=1e-10 * scale)
    scale = np.abs(out["normH2_i"]).sum()
    assert_allclose(out["normH2_i"].sum(), out["normH2"], rtol=RTOL, atol=1e-10 * scale)
    Q, lam = out["Q"], out["lam"]
    assert np.all(np.diff(lam) >= 0)
    assert_allclose(lam, np.linalg.eigvalsh(H), rtol=RTOL, atol=1e-12 * np.abs(lam).max())
    assert_allclose(Q.T @ Q, np.eye(g.size), atol=1e-12)
    assert_allclose((Q * lam) @ Q.T, H, rtol=RTOL, atol=1e-12 * np.abs(H).max())
    assert_allclose(Q @ out["g_hat"], g, rtol=RTOL, atol=ATOL)
    assert_allclose(Q @ out["d_hat"], d, rtol=RTOL, atol=ATOL)
    pivots = Q[np.argmax(np.abs(Q), axis=0), np.arange(g.size)]
    assert np.all(pivots > 0)


def test_uv_hand_example(layer):
    """H = diag(2, 1): lam = (1, 2), Q = [e2, e1]; g = (1, 2), d = (-1/2, 0)."""
    out = est(layer, "uv_quantities")(
        np.array([1.0, 2.0]), np.array([-0.5, 0.0]), np.diag([2.0, 1.0])
    )
    assert_allclose(out["lam"], [1.0, 2.0], rtol=RTOL, atol=ATOL)
    assert_allclose(out["Q"], [[0.0, 1.0], [1.0, 0.0]], rtol=RTOL, atol=ATOL)
    assert_allclose(out["g_hat"], [2.0, 1.0], rtol=RTOL, atol=ATOL)
    assert_allclose(out["d_hat"], [0.0, -0.5], rtol=RTOL, atol=ATOL)
    assert_allclose(out["Delta"], 0.25, rtol=RTOL, atol=ATOL)
    assert_allclose(out["Delta_i"], [0.0, -0.25], rtol=RTOL, atol=ATOL)
    assert_allclose(out["Delta_i_neg"], [0.0, 0.25], rtol=RTOL, atol=ATOL)
    assert_allclose(out["normH2"], 0.5, rtol=RTOL, atol=ATOL)
    assert_allclose(out["normH2_i"], [0.0, 0.5], rtol=RTOL, atol=ATOL)


@given(st.integers(1, 8), SEEDS)
def test_uv_delta_is_the_decrease_of_a_quadratic(layer, n, seed):
    """For f(t) = 1/2 t^T H t + b^T t the expansion is exact: Delta = f(theta) - f(theta + d).

    f0 - f1 cancels: its rounding is eps * (|f0| + |f1|), so atol is 1e-12 times that scale.
    f0 is given as a layer scalar (0-dim array/tensor), f1 as a Python float.
    """
    rng = np.random.default_rng(seed)
    H, b, theta, d = random_symmetric(n, rng), *rng.standard_normal((3, n))

    def f(t):
        return 0.5 * t @ H @ t + b @ t

    f0, f1 = f(theta), f(theta + d)
    out = est(layer, "uv_quantities")(H @ theta + b, d, H, f0=np.asarray(f0), f1=float(f1))
    scale = abs(f0) + abs(f1)
    assert_allclose(out["actual_decrease"], f0 - f1, rtol=0, atol=0)
    assert_allclose(out["Delta"], out["actual_decrease"], rtol=RTOL, atol=1e-12 * scale)


@given(st.integers(1, 8), SEEDS)
def test_uv_noise_exact(layer, n, seed):
    """Sigma_dxi = A Sigma_b A^T; N_b = 1/2 sum_i lam_i E||d_xi_i||^2 (d^T H d = sum lam_i
    (e_i^T d)^2); with A = Sigma_b = I, N_b = tr(H)/2 (E[x^T H x] = tr(H Cov x), zero mean)."""
    rng = np.random.default_rng(seed)
    H, A, L = random_symmetric(n, rng), rng.standard_normal((n, n)), rng.standard_normal((n, n))
    g, d = rng.standard_normal((2, n))
    uv_quantities = est(layer, "uv_quantities")
    out = uv_quantities(g, d, H, A=A, Sigma_b=L @ L.T)
    assert_allclose(out["Sigma_dxi"], A @ L @ L.T @ A.T, rtol=RTOL, atol=1e-12 * np.abs(A).max())
    assert np.all(out["d_xi_i"] >= 0)
    scale = np.abs(out["lam"] * out["d_xi_i"]).sum()
    assert_allclose(out["N_b"], 0.5 * out["lam"] @ out["d_xi_i"], rtol=RTOL, atol=1e-12 * scale)
    identity = uv_quantities(g, d, H, A=np.eye(n), Sigma_b=np.eye(n))
    assert_allclose(identity["N_b"], 0.5 * np.trace(H), rtol=RTOL, atol=1e-12 * np.abs(H).sum())
    assert_allclose(identity["d_xi_i"], np.ones(n), rtol=RTOL, atol=ATOL)


def test_uv_noise_monte_carlo_within_ci(layer):
    """N_b and E||d_xi_i||^2 from Gaussian draws xi_b ~ N(0, Sigma_b) (seed 20240601, K = 20000)
    agree with the exact values within z_{alpha/2} standard errors (Bonferroni over n)."""
    rng = np.random.default_rng(20240601)
    n, K = 5, 20_000
    H, A, L = random_symmetric(n, rng), rng.standard_normal((n, n)), rng.standard_normal((n, n))
    xi = rng.standard_normal((K, n)) @ L.T
    g, d = rng.standard_normal((2, n))
    out = est(layer, "uv_quantities")(g, d, H, A=A, Sigma_b=L @ L.T, xi=xi)
    within_ci(out["N_b_mc"], out["N_b_mc_se"], out["N_b"])
    within_ci(out["d_xi_i_mc"], out["d_xi_i_mc_se"], out["d_xi_i"])
    D = xi @ A.T
    assert_allclose(out["Sigma_dxi_mc"], D.T @ D / K, rtol=RTOL, atol=ATOL)
    assert_allclose(out["N_b_mc"], 0.5 * np.trace(H @ out["Sigma_dxi_mc"]), rtol=RTOL, atol=0)
    expected = np.diag(out["Q"].T @ out["Sigma_dxi_mc"] @ out["Q"])
    assert_allclose(out["d_xi_i_mc"], expected, rtol=RTOL, atol=0)


def test_uv_float32_follows_float64(torch_layer):
    """Eigenvalues 1..n (gap 1, ||H|| = n) keep eigenvectors well conditioned, so float32
    results stay within ~1e3 float32 epsilons (1e-4 relative) of the float64 run."""
    uv_quantities = torch_layer.module(MODULES["uv_quantities"]).uv_quantities
    rng = np.random.default_rng(3)
    n, K = 6, 500
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    H = (Q * np.arange(1.0, n + 1)) @ Q.T
    inputs = {"g": rng.standard_normal(n), "d": rng.standard_normal(n), "H": H,
              "A": rng.standard_normal((n, n)), "Sigma_b": np.eye(n),
              "xi": rng.standard_normal((K, n))}
    inputs = {k: torch.tensor(v, dtype=F64) for k, v in inputs.items()} | {"f0": 1.5, "f1": 0.5}
    out64 = uv_quantities(**inputs)
    out32 = uv_quantities(**{k: v.float() if torch.is_tensor(v) else v for k, v in inputs.items()})
    assert_follows_float64(out32, out64, rtol=1e-4)


def test_uv_float32_tolerates_float32_asymmetry(torch_layer):
    """A product computed in float32 is symmetric only to float32 rounding; it is accepted."""
    uv_quantities = torch_layer.module(MODULES["uv_quantities"]).uv_quantities
    M = torch.tensor(np.random.default_rng(4).standard_normal((8, 8)), dtype=F32)
    H = M @ M.T + 1e-7 * torch.triu(torch.ones(8, 8))
    out = uv_quantities(torch.ones(8), torch.ones(8), H)
    assert out["lam"].dtype == F32


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"H": np.array([[1.0, 2.0], [0.0, 1.0]])}, ValueError, "H must be symmetric"),
        ({"H": np.eye(3)}, ValueError, r"H must have shape \(2, 2\)"),
        ({"d": np.ones(3)}, ValueError, r"d must have shape \(2,\)"),
        ({"g": np.array([np.nan, 1.0])}, ValueError, "g contains non-finite"),
        ({"g": np.ones((2, 2))}, ValueError, "g must be a non-empty vector"),
        ({"f0": 1.0}, ValueError, "f0 and f1"),
        ({"f0": 1.0, "f1": np.inf}, ValueError, "f1 contains non-finite"),
        ({"Sigma_b": np.eye(2)}, ValueError, "need A"),
        ({"A": np.eye(2)}, ValueError, "A needs Sigma_b"),
        ({"A": np.eye(2), "Sigma_b": -np.eye(2)}, ValueError, "positive semi-definite"),
        ({"A": np.eye(2), "xi": np.ones((1, 2))}, ValueError, r"xi must have shape \(K, n=2\)"),
        ({"A": np.eye(3), "xi": np.ones((4, 2))}, ValueError, r"A must have shape \(2, 2\)"),
    ],
)
def test_uv_errors(layer, change, error, match):
    inputs = {"g": np.ones(2), "d": np.ones(2), "H": np.eye(2), **change}
    with pytest.raises(error, match=match):
        est(layer, "uv_quantities")(inputs.pop("g"), inputs.pop("d"), inputs.pop("H"), **inputs)


def test_uv_rejects_non_tensors(torch_layer):
    uv_quantities = torch_layer.module(MODULES["uv_quantities"]).uv_quantities
    with pytest.raises(TypeError, match="g must be a floating-point torch.Tensor"):
        uv_quantities([1.0, 1.0], torch.ones(2), torch.eye(2))


# ---------------------------------------------------------------- est:grad_noise


@given(st.integers(1, 6), st.integers(1, 8), SEEDS)
def test_grad_noise_data_labels(layer, N, P, seed):
    """PSD, rank <= N - 1, trace = mean ||xi_n||^2, and np.cov as the dense ground truth."""
    grad_noise = est(layer, "grad_noise")
    G = np.random.default_rng(seed).standard_normal((N, P))
    out = grad_noise(G)
    Sigma = out["Sigma"]
    assert_allclose(out["g"], G.mean(axis=0), rtol=RTOL, atol=ATOL)
    assert_allclose(out["xi"], G - G.mean(axis=0), rtol=RTOL, atol=ATOL)
    assert_allclose(Sigma, Sigma.T, rtol=0, atol=0)
    scale = np.abs(Sigma).max()
    assert np.linalg.eigvalsh(Sigma)[0] >= -1e-12 * scale
    assert np.linalg.matrix_rank(Sigma, tol=1e-10 * max(scale, 1.0)) <= N - 1
    assert_allclose(np.trace(Sigma), np.mean(np.sum(out["xi"] ** 2, axis=1)), rtol=RTOL, atol=ATOL)
    assert_allclose(Sigma, np.atleast_2d(np.cov(G.T, bias=True)), rtol=RTOL, atol=ATOL)
    if N > 1:
        unbiased = grad_noise(G, ddof=1)["Sigma"]
        assert_allclose(unbiased, np.atleast_2d(np.cov(G.T)), rtol=RTOL, atol=ATOL)


@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), SEEDS)
def test_grad_noise_model_labels(layer, N, C, P, seed):
    """Sigma^model is the covariance of the mixture over (n, c) with weights p[n, c]/N (np.cov
    with aweights); one-hot p gives the data-label result at the chosen labels."""
    grad_noise = est(layer, "grad_noise")
    rng = np.random.default_rng(seed)
    G, p = random_law(N, C, P, rng)
    out = grad_noise(G, p, labels="model")
    weighted = np.cov(G.reshape(N * C, P).T, aweights=p.ravel(), bias=True)
    assert_allclose(out["Sigma"], np.atleast_2d(weighted), rtol=RTOL, atol=ATOL)
    assert_allclose(out["g"], np.einsum("nc,ncp->p", p, G) / N, rtol=RTOL, atol=ATOL)
    assert out["xi"].shape == G.shape
    y = rng.integers(0, C, size=N)
    one_hot = grad_noise(G, np.eye(C)[y], labels="model")
    data = grad_noise(G[np.arange(N), y])
    assert_allclose(one_hot["Sigma"], data["Sigma"], rtol=RTOL, atol=ATOL)
    assert_allclose(one_hot["g"], data["g"], rtol=RTOL, atol=ATOL)


def softmax_per_label_gradients(N: int, C: int, d: int, rng: np.random.Generator):
    """Softmax regression, W (C, d) row-major: G[n, c] = vec_row((p_n - e_c) h_n^T)."""
    h = rng.standard_normal((N, d))
    z = h @ rng.standard_normal((d, C))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    s = p[:, None, :] - np.eye(C)[None]
    return np.einsum("nca,nb->ncab", s, h).reshape(N, C, C * d), p, h


def test_grad_noise_model_labels_is_the_true_fisher_for_softmax(layer):
    """The score has mean zero under the model, so Sigma^model = F, which for softmax regression
    is mean_n (diag(p_n) - p_n p_n^T) kron h_n h_n^T (row-major vec of W)."""
    G, p, h = softmax_per_label_gradients(5, 3, 2, np.random.default_rng(7))
    out = est(layer, "grad_noise")(G, p, labels="model")
    Lam = np.einsum("na,ab->nab", p, np.eye(3)) - np.einsum("na,nb->nab", p, p)
    F = np.mean([np.kron(L, np.outer(x, x)) for L, x in zip(Lam, h, strict=True)], axis=0)
    assert_allclose(out["g"], np.zeros(6), atol=ATOL)
    assert_allclose(out["Sigma"], F, rtol=RTOL, atol=ATOL)


def test_grad_noise_float32_follows_float64(torch_layer):
    """float32 sums of N = 6 products: within 1e-5 relative (~100 float32 epsilons)."""
    grad_noise = torch_layer.module(MODULES["grad_noise"]).grad_noise
    G, p = (torch.tensor(a, dtype=F64) for a in random_law(6, 3, 4, np.random.default_rng(8)))
    for labels, args in (("data", (G[:, 0], None)), ("model", (G, p))):
        out64 = grad_noise(*args, labels=labels)
        out32 = grad_noise(*(a if a is None else a.float() for a in args), labels=labels)
        assert_follows_float64(out32, out64, rtol=1e-5)


@pytest.mark.parametrize(
    ("G", "p", "options", "match"),
    [
        (np.ones((3, 2)), None, {"ddof": 3}, r"Invalid ddof: 3; allowed: integer in \[0, 2\]"),
        (np.ones((3, 2)), None, {"labels": "sampled"}, "Invalid labels: 'sampled'"),
        (np.ones((3, 2)), np.ones((3, 1)), {}, "p is only used with labels='model'"),
        (np.ones((3, 2, 2)), None, {}, r"G must have shape \(N, P\)"),
        (np.ones((3, 2, 2)), None, {"labels": "model"}, "needs the label probabilities p"),
        (np.ones((3, 2, 2)), np.full((3, 3), 1 / 3), {"labels": "model"}, "needs G"),
        (np.ones((3, 2, 2)), np.full((3, 2), 0.6), {"labels": "model"}, "rows summing to 1"),
        (np.ones((3, 2, 2)), np.array([[2.0, -1.0]] * 3), {"labels": "model"}, "non-negative"),
        (np.array([[np.nan, 1.0]]), None, {}, "G contains non-finite"),
    ],
)
def test_grad_noise_errors(layer, G, p, options, match):
    with pytest.raises(ValueError, match=match):
        est(layer, "grad_noise")(G, p, **options)


def test_grad_noise_rejects_non_tensors(torch_layer):
    grad_noise = torch_layer.module(MODULES["grad_noise"]).grad_noise
    with pytest.raises(TypeError, match="G must be a floating-point torch.Tensor"):
        grad_noise([[1.0, 2.0]])


# ---------------------------------------------------------------- est:minibatch_moments


@given(st.integers(2, 7), st.integers(1, 7), st.integers(1, 3), SEEDS)
def test_minibatch_exact_matches_textbook_variances(layer, N, B, P, seed):
    """Textbook facts used as test oracles only: the mean of B i.i.d. draws has covariance
    Sigma/B; a mean of B draws without replacement has (Sigma/B)(N - B)/(N - 1), Sigma the
    population covariance (1/N). Both sampling schemes are unbiased for g."""
    G = np.random.default_rng(seed).standard_normal((N, P))
    g, Sigma = G.mean(axis=0), np.atleast_2d(np.cov(G.T, bias=True))
    factor = {"with_replacement": 1.0, "without_replacement": (N - B) / (N - 1)}
    for sampling in SAMPLINGS if B <= N else SAMPLINGS[:1]:
        out = est(layer, "minibatch_moments")(G, B=B, sampling=sampling)
        assert_allclose(out["mean"], g, rtol=RTOL, atol=ATOL)
        assert_allclose(out["g"], g, rtol=RTOL, atol=ATOL)
        assert_allclose(out["cov"], Sigma / B * factor[sampling], rtol=RTOL, atol=ATOL)
        assert_allclose(out["xi_cov"], out["cov"], rtol=RTOL, atol=ATOL)
        assert_allclose(out["second_moment"], out["cov"] + np.outer(g, g), rtol=RTOL, atol=ATOL)


@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 5), SEEDS)
def test_minibatch_model_labels_with_replacement_is_iid(layer, N, C, B, seed):
    """With replacement and model labels a batch is B i.i.d. draws of the (n, y) mixture, so
    Cov[g_b] = Sigma^model / B (the textbook variance of a mean, as above)."""
    G, p = random_law(N, C, 2, np.random.default_rng(seed))
    out = est(layer, "minibatch_moments")(G, p, B=B, labels="model", sampling="with_replacement")
    noise = est(layer, "grad_noise")(G, p, labels="model")
    assert_allclose(out["mean"], noise["g"], rtol=RTOL, atol=ATOL)
    assert_allclose(out["cov"], noise["Sigma"] / B, rtol=RTOL, atol=ATOL)


def brute_force(G, p, B, sampling):
    """E[g_b], E[g_b g_b^T] over ordered index tuples and every label vector, by loops."""
    N, C, P = G.shape
    tuples = (
        list(itertools.product(range(N), repeat=B))
        if sampling == "with_replacement"
        else list(itertools.permutations(range(N), B))
    )
    mean, second = np.zeros(P), np.zeros((P, P))
    for index in tuples:
        for y in itertools.product(range(C), repeat=B):
            weight = np.prod(p[list(index), list(y)]) / len(tuples)
            g_b = G[list(index), list(y)].mean(axis=0)
            mean += weight * g_b
            second += weight * np.outer(g_b, g_b)
    return mean, second


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("B", [1, 2, 3])
def test_minibatch_model_labels_vs_brute_force(layer, sampling, B):
    """Exact enumeration (multisets with multinomial weights, label expectation in closed
    form given the batch) equals brute force over ordered tuples x label vectors."""
    G, p = random_law(3, 2, 2, np.random.default_rng(11 + B))
    out = est(layer, "minibatch_moments")(G, p, B=B, labels="model", sampling=sampling)
    mean, second = brute_force(G, p, B, sampling)
    assert_allclose(out["mean"], mean, rtol=RTOL, atol=ATOL)
    assert_allclose(out["second_moment"], second, rtol=RTOL, atol=ATOL)
    assert_allclose(out["cov"], second - np.outer(mean, mean), rtol=RTOL, atol=ATOL)
    fisher = est(layer, "fisher_batch")(G, p, labels="model", B=B, sampling=sampling)
    assert_allclose(fisher["F_b"], second, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("labels", ["data", "model"])
def test_minibatch_monte_carlo_within_ci(layer, sampling, labels):
    """Brute-force MC from draws made here (seed 314159, K = 4000) agrees with the exact
    enumeration within z_{alpha/2} standard errors, Bonferroni over every entry."""
    minibatch_moments = est(layer, "minibatch_moments")
    rng = np.random.default_rng(314159)
    N, B, K = 6, 3, 4000
    G, p = random_law(N, 3, 3, rng)
    if labels == "data":
        G, p = G[:, 0], None
    indices = sample_indices(N, B, K, sampling, rng)
    y = None if p is None else sample_labels(p[indices], rng)
    exact = minibatch_moments(G, p, B=B, labels=labels, sampling=sampling)
    mc = minibatch_moments(
        G, p, B=B, labels=labels, sampling=sampling, mode="mc", indices=indices, y=y
    )
    keys = ("mean", "cov", "second_moment", "xi_cov")
    within_ci(
        np.concatenate([np.ravel(mc[k]) for k in keys]),
        np.concatenate([np.ravel(mc[f"{k}_se"]) for k in keys]),
        np.concatenate([np.ravel(exact[k]) for k in keys]),
    )
    assert_allclose(mc["g"], exact["g"], rtol=RTOL, atol=ATOL)
    g_b = (G[indices] if p is None else G[indices, y]).mean(axis=1)
    assert_allclose(mc["mean"], g_b.mean(axis=0), rtol=RTOL, atol=ATOL)
    assert_allclose(mc["cov"], np.cov(g_b.T), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", ["exact", "mc"])
def test_minibatch_float32_follows_float64(torch_layer, mode):
    """float32 weighted sums over <= 56 batches (or K = 50 draws): within 1e-5 relative."""
    minibatch_moments = torch_layer.module(MODULES["minibatch_moments"]).minibatch_moments
    rng = np.random.default_rng(9)
    G, p = random_law(8, 3, 3, rng)
    indices = sample_indices(8, 3, 50, "with_replacement", rng)
    draws = {"indices": torch.as_tensor(indices),
             "y": torch.as_tensor(sample_labels(p[indices], rng))} if mode == "mc" else {}
    G, p = torch.tensor(G, dtype=F64), torch.tensor(p, dtype=F64)
    options = {"B": 3, "labels": "model", "sampling": "with_replacement", "mode": mode, **draws}
    out64 = minibatch_moments(G, p, **options)
    out32 = minibatch_moments(G.float(), p.float(), **options)
    assert_follows_float64(out32, out64, rtol=1e-5)


# ---------------------------------------------------------------- est:fisher_batch


@pytest.mark.parametrize("N", [1, 2, 5])
def test_fisher_batch_full_batch_is_the_outer_product(typed_layer, N):
    """B = N without replacement: the only batch is everything, F_tilde_b = gbar gbar^T
    (float32: the same float32 operations up to summation order, 1e-6 relative)."""
    layer = typed_layer
    G = np.random.default_rng(N).standard_normal((N, 4))
    fisher_batch = layer.module(MODULES["fisher_batch"]).fisher_batch
    raw = fisher_batch(layer.to_layer(G), labels="data", B=N, sampling="without_replacement")
    assert list(raw) == ["F_tilde_b"]
    G = layer.to_numpy(layer.to_layer(G))  # rounded to the layer's dtype
    gbar = G.mean(axis=0)
    if layer.dtype == "float64":
        assert_allclose(layer.to_numpy(raw["F_tilde_b"]), np.outer(gbar, gbar), rtol=RTOL,
                        atol=ATOL)
    else:
        assert raw["F_tilde_b"].dtype == F32
        assert_allclose(layer.to_numpy(raw["F_tilde_b"]), np.outer(gbar, gbar), rtol=1e-6,
                        atol=1e-6 * np.abs(gbar).max())


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_fisher_batch_of_one_is_the_per_sample_fisher(layer, sampling):
    """B = 1: F_tilde_b = (1/N) sum_n g_n g_n^T (empirical Fisher) and F_b = (1/N) sum_n
    sum_c p_nc G_nc G_nc^T (true Fisher by exact label enumeration)."""
    fisher_batch = est(layer, "fisher_batch")
    G, p = random_law(4, 3, 3, np.random.default_rng(5))
    F = np.einsum("nc,ncp,ncq->pq", p, G, G) / 4
    F_b = fisher_batch(G, p, labels="model", B=1, sampling=sampling)["F_b"]
    assert_allclose(F_b, F, rtol=RTOL, atol=ATOL)
    F_tilde_b = fisher_batch(G[:, 0], labels="data", B=1, sampling=sampling)["F_tilde_b"]
    assert_allclose(F_tilde_b, G[:, 0].T @ G[:, 0] / 4, rtol=RTOL, atol=ATOL)


def test_fisher_batch_needs_labels(layer):
    with pytest.raises(TypeError, match="labels"):
        est(layer, "fisher_batch")(np.ones((2, 2)), B=1)


# ---------------------------------------------------------------- errors and registry

G_DATA = np.arange(8.0).reshape(4, 2)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"B": 0}, ValueError, r"Invalid batch size B \(N=4"),
        ({"B": 5}, ValueError, r"Invalid batch size B \(N=4.*allowed: integer in \[1, 4\]"),
        ({"B": 2.0}, ValueError, "Invalid batch size B"),
        ({"B": True}, ValueError, "Invalid batch size B"),
        ({"B": 2, "sampling": "bootstrap"}, ValueError, "Invalid sampling: 'bootstrap'"),
        ({"B": 2, "mode": "sampled"}, ValueError, "Invalid mode: 'sampled'"),
        ({"B": 2, "max_batches": 5}, ValueError, r"6 batches \(N=4, B=2.*max_batches=5"),
        ({"B": 2, "max_batches": 0}, ValueError, "Invalid max_batches"),
        ({"B": 2, "indices": np.zeros((2, 2), int)}, ValueError, "mode='exact' takes none"),
        ({"B": 2, "mode": "mc"}, ValueError, "needs the batch index draws"),
        ({"B": 2, "mode": "mc", "indices": np.zeros((2, 2))}, TypeError, "indices must be integ"),
        ({"B": 2, "mode": "mc", "indices": np.zeros((1, 2), int)}, ValueError, "K >= 2"),
        ({"B": 2, "mode": "mc", "indices": np.zeros((3, 3), int)}, ValueError, r"\(K, B=2\)"),
        ({"B": 2, "mode": "mc", "indices": np.full((2, 2), 4)}, ValueError, r"in \[0, 4\)"),
        ({"B": 2, "mode": "mc", "indices": np.zeros((2, 2), int)}, ValueError, "repeat a sample"),
        (
            {"B": 2, "mode": "mc", "indices": [[0, 1], [2, 3]], "y": [[0, 0], [0, 0]]},
            ValueError,
            "y, the sampled labels",
        ),
    ],
)
def test_minibatch_errors(layer, options, error, match):
    with pytest.raises(error, match=match):
        est(layer, "minibatch_moments")(G_DATA, **options)


def test_minibatch_too_many_batches_names_n_b_and_count(layer):
    minibatch_moments = est(layer, "minibatch_moments")
    with pytest.raises(ValueError, match=r"155117520 batches \(N=30, B=15"):
        minibatch_moments(np.ones((30, 1)), B=15)
    with pytest.raises(ValueError, match=r"\(N=30, B=15, sampling='with_replacement'\)"):
        minibatch_moments(np.ones((30, 1)), B=15, sampling="with_replacement")


def test_minibatch_model_labels_mc_needs_labels_in_range(layer):
    minibatch_moments = est(layer, "minibatch_moments")
    G, p = random_law(3, 2, 2, np.random.default_rng(0))
    draws = {"B": 1, "labels": "model", "mode": "mc", "indices": [[0], [1]]}
    with pytest.raises(ValueError, match="y, the sampled labels"):
        minibatch_moments(G, p, **draws)
    with pytest.raises(ValueError, match=r"y must lie in \[0, 2\)"):
        minibatch_moments(G, p, **draws, y=[[0], [2]])


def test_registry_entries_and_defaults(layer):
    REGISTRY, get = layer.estimators.REGISTRY, layer.estimators.get
    assert {"est:uv_quantities", "est:grad_noise", "est:minibatch_moments"} <= set(REGISTRY)
    assert dict(get("est:grad_noise").options) == {"labels": "data", "ddof": 0}
    assert dict(get("est:minibatch_moments").options) == {
        "labels": "data",
        "mode": "exact",
        "sampling": "without_replacement",
        "max_batches": 200_000,
    }
    assert dict(get("est:fisher_batch").options) == {
        "sampling": "without_replacement",
        "max_batches": 200_000,
    }
    assert dict(get("est:uv_quantities").options) == {}
    G = layer.to_layer(G_DATA)
    via_registry = layer.to_numpy(get("est:minibatch_moments")(G, B=2))
    direct = est(layer, "minibatch_moments")(G_DATA, B=2)
    assert_allclose(via_registry["cov"], direct["cov"], rtol=0, atol=0)
