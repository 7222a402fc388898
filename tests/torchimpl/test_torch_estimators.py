"""Torch estimators of the unified view and of gradient noise (INVENTORY §3.1, §3.2, §3.8).

The same oracles as the reference tests, on the torch functions alone (cross-layer agreement
is the verify cross-check's job): identities of the definitions, dense ground truth
(torch.linalg.eigh, torch.cov), brute-force enumeration, textbook facts about means of random
draws and Monte-Carlo confidence intervals at alpha = 1e-3 with fixed torch.Generator seeds.
float32 runs are compared against the float64 run of the same function.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from torchimpl.estimators import REGISTRY, get
from torchimpl.estimators.gradient_noise import fisher_batch, grad_noise, minibatch_moments
from torchimpl.estimators.unified_view import uv_quantities
from verify.strategies import SEEDS, build_curvature, curvature_cases

F64, F32 = torch.float64, torch.float32
RTOL, ATOL = 1e-10, 1e-12
ALPHA = 1e-3
SAMPLINGS = ("with_replacement", "without_replacement")


def close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def z_bound(components: int = 1) -> float:
    """Two-sided normal quantile at false-alarm rate ALPHA, Bonferroni over ``components``."""
    return float(norm.isf(ALPHA / (2 * components)))


def within_ci(estimate, se, exact) -> None:
    estimate, se, exact = (x.reshape(-1) for x in (estimate, se, exact))
    assert bool(((estimate - exact).abs() <= z_bound(exact.numel()) * se).all()), (estimate, exact)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, gen, dtype=F64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=dtype)


def random_symmetric(n: int, gen: torch.Generator) -> torch.Tensor:
    M = randn(n, n, gen=gen)
    return M + M.T


def random_law(N: int, C: int, P: int, gen: torch.Generator):
    """Per-label gradients G (N, C, P) and label probabilities p (N, C)."""
    return randn(N, C, P, gen=gen), torch.softmax(randn(N, C, gen=gen), dim=1)


def sample_labels(p_rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Inverse-CDF draws y ~ p_rows[...] (one uniform per label), shape p_rows.shape[:-1]."""
    u = torch.rand(p_rows.shape[:-1], generator=gen, dtype=p_rows.dtype)
    y = (p_rows.cumsum(dim=-1) < u[..., None]).sum(dim=-1)
    return y.clamp(max=p_rows.shape[-1] - 1)


def sample_indices(N: int, B: int, K: int, sampling: str, gen: torch.Generator):
    if sampling == "with_replacement":
        return torch.randint(0, N, (K, B), generator=gen)
    return torch.rand(K, N, generator=gen).argsort(dim=1)[:, :B]


# ---------------------------------------------------------------- est:uv_quantities


@given(curvature_cases(n_max=10, kinds=("pd", "psd", "indefinite")))
def test_uv_identities(case):
    """sum Delta_i = -Delta, sum Delta_i_neg = Delta, normH2 = sum normH2_i, H = Q diag(lam) Q^T.

    Sums of n terms carry rounding n*eps*sum|terms|: the absolute tolerance is 1e-10 times
    that scale, not 1e-12, because the terms cancel (H indefinite).
    """
    data = {k: torch.as_tensor(v) for k, v in build_curvature(case).items()}
    H, g = data["H"], data["g"]
    d = randn(g.numel(), gen=generator(case["seed"]))
    out = uv_quantities(g, d, H)
    scale = float(out["Delta_i"].abs().sum() + out["Delta"].abs())
    close(out["Delta_i"].sum(), -out["Delta"], atol=1e-10 * scale)
    close(out["Delta_i_neg"].sum(), out["Delta"], atol=1e-10 * scale)
    close(out["normH2_i"].sum(), out["normH2"], atol=1e-10 * float(out["normH2_i"].abs().sum()))
    Q, lam = out["Q"], out["lam"]
    assert bool((lam.diff() >= 0).all())
    close(lam, torch.linalg.eigvalsh(H), atol=1e-12 * float(lam.abs().max()))
    close(Q.T @ Q, torch.eye(g.numel(), dtype=F64))
    close((Q * lam) @ Q.T, H, atol=1e-12 * float(H.abs().max()))
    close(Q @ out["g_hat"], g)
    close(Q @ out["d_hat"], d)
    pivots = Q[Q.abs().argmax(dim=0), torch.arange(g.numel())]
    assert bool((pivots > 0).all())


def test_uv_hand_example():
    """H = diag(2, 1): lam = (1, 2), Q = [e2, e1]; g = (1, 2), d = (-1/2, 0)."""
    t = torch.tensor
    out = uv_quantities(t([1.0, 2.0], dtype=F64), t([-0.5, 0.0]), torch.diag(t([2.0, 1.0])))
    close(out["lam"], [1.0, 2.0])
    close(out["Q"], [[0.0, 1.0], [1.0, 0.0]])
    close(out["g_hat"], [2.0, 1.0])
    close(out["d_hat"], [0.0, -0.5])
    close(out["Delta"], 0.25)
    close(out["Delta_i"], [0.0, -0.25])
    close(out["Delta_i_neg"], [0.0, 0.25])
    close(out["normH2"], 0.5)
    close(out["normH2_i"], [0.0, 0.5])


@given(st.integers(1, 8), SEEDS)
def test_uv_delta_is_the_decrease_of_a_quadratic(n, seed):
    """For f(t) = 1/2 t^T H t + b^T t the expansion is exact: Delta = f(theta) - f(theta + d).

    f0 - f1 cancels: its rounding is eps * (|f0| + |f1|), so atol is 1e-12 times that scale.
    """
    gen = generator(seed)
    H, (b, theta, d) = random_symmetric(n, gen), randn(3, n, gen=gen)

    def f(t):
        return 0.5 * t @ H @ t + b @ t

    f0, f1 = f(theta), f(theta + d)
    out = uv_quantities(H @ theta + b, d, H, f0=f0, f1=float(f1))
    close(out["actual_decrease"], f0 - f1, rtol=0, atol=0)
    close(out["Delta"], out["actual_decrease"], atol=1e-12 * float(f0.abs() + f1.abs()))


@given(st.integers(1, 8), SEEDS)
def test_uv_noise_exact(n, seed):
    """Sigma_dxi = A Sigma_b A^T; N_b = 1/2 sum_i lam_i E||d_xi_i||^2 (d^T H d = sum lam_i
    (e_i^T d)^2); with A = Sigma_b = I, N_b = tr(H)/2 (E[x^T H x] = tr(H Cov x), zero mean)."""
    gen = generator(seed)
    H, A, L = random_symmetric(n, gen), randn(n, n, gen=gen), randn(n, n, gen=gen)
    g, d = randn(2, n, gen=gen)
    out = uv_quantities(g, d, H, A=A, Sigma_b=L @ L.T)
    close(out["Sigma_dxi"], A @ L @ L.T @ A.T, atol=1e-12 * float(A.abs().max()))
    assert bool((out["d_xi_i"] >= 0).all())
    scale = float((out["lam"] * out["d_xi_i"]).abs().sum())
    close(out["N_b"], 0.5 * out["lam"] @ out["d_xi_i"], atol=1e-12 * scale)
    eye = torch.eye(n, dtype=F64)
    identity = uv_quantities(g, d, H, A=eye, Sigma_b=eye)
    close(identity["N_b"], 0.5 * torch.trace(H), atol=1e-12 * float(H.abs().sum()))
    close(identity["d_xi_i"], torch.ones(n, dtype=F64))


def test_uv_noise_monte_carlo_within_ci():
    """N_b and E||d_xi_i||^2 from Gaussian draws xi_b ~ N(0, Sigma_b) (seed 20240601, K = 20000)
    agree with the exact values within z_{alpha/2} standard errors (Bonferroni over n)."""
    gen = generator(20240601)
    n, K = 5, 20_000
    H, A, L = random_symmetric(n, gen), randn(n, n, gen=gen), randn(n, n, gen=gen)
    xi = randn(K, n, gen=gen) @ L.T
    g, d = randn(2, n, gen=gen)
    out = uv_quantities(g, d, H, A=A, Sigma_b=L @ L.T, xi=xi)
    within_ci(out["N_b_mc"], out["N_b_mc_se"], out["N_b"])
    within_ci(out["d_xi_i_mc"], out["d_xi_i_mc_se"], out["d_xi_i"])
    D = xi @ A.T
    close(out["Sigma_dxi_mc"], D.T @ D / K)
    close(out["N_b_mc"], 0.5 * torch.trace(H @ out["Sigma_dxi_mc"]), atol=0)
    close(out["d_xi_i_mc"], torch.diag(out["Q"].T @ out["Sigma_dxi_mc"] @ out["Q"]), atol=0)


def test_uv_float32_follows_float64():
    """Eigenvalues 1..n (gap 1, ||H|| = n) keep eigenvectors well conditioned, so float32
    results stay within ~1e3 float32 epsilons (1e-4 relative) of the float64 run."""
    gen = generator(3)
    n, K = 6, 500
    Q = torch.linalg.qr(randn(n, n, gen=gen)).Q
    H = (Q * torch.arange(1.0, n + 1, dtype=F64)) @ Q.T
    inputs = {"g": randn(n, gen=gen), "d": randn(n, gen=gen), "H": H, "A": randn(n, n, gen=gen)}
    inputs |= {"Sigma_b": torch.eye(n, dtype=F64), "xi": randn(K, n, gen=gen), "f0": 1.5}
    inputs["f1"] = 0.5
    out64 = uv_quantities(**inputs)
    out32 = uv_quantities(**{k: v.float() if torch.is_tensor(v) else v for k, v in inputs.items()})
    assert set(out32) == set(out64)
    for key, value in out32.items():
        assert value.dtype == F32, key
        scale = float(out64[key].abs().max())
        torch.testing.assert_close(value.double(), out64[key], rtol=1e-4, atol=1e-4 * scale)


def test_uv_float32_tolerates_float32_asymmetry():
    """A product computed in float32 is symmetric only to float32 rounding; it is accepted."""
    M = randn(8, 8, gen=generator(4), dtype=F32)
    H = M @ M.T + 1e-7 * torch.triu(torch.ones(8, 8))
    out = uv_quantities(torch.ones(8), torch.ones(8), H)
    assert out["lam"].dtype == F32


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"H": torch.tensor([[1.0, 2.0], [0.0, 1.0]])}, ValueError, "H must be symmetric"),
        ({"H": torch.eye(3)}, ValueError, r"H must have shape \(2, 2\)"),
        ({"d": torch.ones(3)}, ValueError, r"d must have shape \(2,\)"),
        ({"g": torch.tensor([math.nan, 1.0])}, ValueError, "g contains non-finite"),
        ({"g": torch.ones(2, 2)}, ValueError, "g must be a non-empty vector"),
        ({"g": [1.0, 1.0]}, TypeError, "g must be a floating-point torch.Tensor"),
        ({"f0": 1.0}, ValueError, "f0 and f1"),
        ({"f0": 1.0, "f1": math.inf}, ValueError, "f1 contains non-finite"),
        ({"Sigma_b": torch.eye(2)}, ValueError, "need A"),
        ({"A": torch.eye(2)}, ValueError, "A needs Sigma_b"),
        ({"A": torch.eye(2), "Sigma_b": -torch.eye(2)}, ValueError, "positive semi-definite"),
        ({"A": torch.eye(2), "xi": torch.ones(1, 2)}, ValueError, r"xi must have shape \(K, n=2\)"),
        ({"A": torch.eye(3), "xi": torch.ones(4, 2)}, ValueError, r"A must have shape \(2, 2\)"),
    ],
)
def test_uv_errors(change, error, match):
    inputs = {"g": torch.ones(2), "d": torch.ones(2), "H": torch.eye(2), **change}
    with pytest.raises(error, match=match):
        uv_quantities(inputs.pop("g"), inputs.pop("d"), inputs.pop("H"), **inputs)


# ---------------------------------------------------------------- est:grad_noise


@given(st.integers(1, 6), st.integers(1, 8), SEEDS)
def test_grad_noise_data_labels(N, P, seed):
    """PSD, rank <= N - 1, trace = mean ||xi_n||^2, and torch.cov as the dense ground truth."""
    G = randn(N, P, gen=generator(seed))
    out = grad_noise(G)
    Sigma = out["Sigma"]
    close(out["g"], G.mean(dim=0))
    close(out["xi"], G - G.mean(dim=0))
    close(Sigma, Sigma.T, rtol=0, atol=0)
    scale = float(Sigma.abs().max())
    assert float(torch.linalg.eigvalsh(Sigma)[0]) >= -1e-12 * scale
    assert int(torch.linalg.matrix_rank(Sigma, atol=1e-10 * max(scale, 1.0))) <= N - 1
    close(torch.trace(Sigma), (out["xi"] ** 2).sum(dim=1).mean())
    close(Sigma, torch.atleast_2d(torch.cov(G.T, correction=0)))
    if N > 1:
        close(grad_noise(G, ddof=1)["Sigma"], torch.atleast_2d(torch.cov(G.T)))


@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), SEEDS)
def test_grad_noise_model_labels(N, C, P, seed):
    """Sigma^model is the covariance of the mixture over (n, c) with weights p[n, c]/N
    (torch.cov with aweights); one-hot p gives the data-label result at the chosen labels."""
    gen = generator(seed)
    G, p = random_law(N, C, P, gen)
    out = grad_noise(G, p, labels="model")
    # clone: torch 2.13's torch.cov with aweights writes into a (1, 1) transposed view's base
    weighted = torch.cov(G.reshape(N * C, P).T.clone(), correction=0, aweights=p.reshape(-1))
    close(out["Sigma"], torch.atleast_2d(weighted))
    close(out["g"], torch.einsum("nc,ncp->p", p, G) / N)
    assert out["xi"].shape == G.shape
    y = torch.randint(0, C, (N,), generator=gen)
    one_hot = grad_noise(G, torch.eye(C, dtype=F64)[y], labels="model")
    data = grad_noise(G[torch.arange(N), y])
    close(one_hot["Sigma"], data["Sigma"])
    close(one_hot["g"], data["g"])


def test_grad_noise_model_labels_is_the_true_fisher_for_softmax():
    """The score has mean zero under the model, so Sigma^model = F, which for softmax regression
    is mean_n (diag(p_n) - p_n p_n^T) kron h_n h_n^T (row-major vec of W)."""
    gen = generator(7)
    N, C, d = 5, 3, 2
    h = randn(N, d, gen=gen)
    p = torch.softmax(h @ randn(d, C, gen=gen), dim=1)
    s = p[:, None, :] - torch.eye(C, dtype=F64)[None]
    G = torch.einsum("nca,nb->ncab", s, h).reshape(N, C, C * d)
    out = grad_noise(G, p, labels="model")
    Lam = torch.diag_embed(p) - torch.einsum("na,nb->nab", p, p)
    F = torch.stack([torch.kron(L, torch.outer(x, x)) for L, x in zip(Lam, h, strict=True)])
    close(out["g"], torch.zeros(C * d, dtype=F64))
    close(out["Sigma"], F.mean(dim=0))


def test_grad_noise_float32_follows_float64():
    """float32 sums of N = 6 products: within 1e-5 relative (~100 float32 epsilons)."""
    G, p = random_law(6, 3, 4, generator(8))
    for labels, args in (("data", (G[:, 0], None)), ("model", (G, p))):
        out64 = grad_noise(*args, labels=labels)
        out32 = grad_noise(*(a if a is None else a.float() for a in args), labels=labels)
        for key, value in out32.items():
            assert value.dtype == F32, key
            scale = float(out64[key].abs().max())
            torch.testing.assert_close(value.double(), out64[key], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(
    ("G", "p", "options", "match"),
    [
        (torch.ones(3, 2), None, {"ddof": 3}, r"Invalid ddof: 3; allowed: integer in \[0, 2\]"),
        (torch.ones(3, 2), None, {"labels": "sampled"}, "Invalid labels: 'sampled'"),
        (torch.ones(3, 2), torch.ones(3, 1), {}, "p is only used with labels='model'"),
        (torch.ones(3, 2, 2), None, {}, r"G must have shape \(N, P\)"),
        (torch.ones(3, 2, 2), None, {"labels": "model"}, "needs the label probabilities p"),
        (torch.ones(3, 2, 2), torch.full((3, 3), 1 / 3), {"labels": "model"}, "needs G"),
        (torch.ones(3, 2, 2), torch.full((3, 2), 0.6), {"labels": "model"}, "rows summing to 1"),
        (
            torch.ones(3, 2, 2),
            torch.tensor([[2.0, -1.0]] * 3),
            {"labels": "model"},
            "non-negative",
        ),
        (torch.tensor([[math.nan, 1.0]]), None, {}, "G contains non-finite"),
    ],
)
def test_grad_noise_errors(G, p, options, match):
    with pytest.raises(ValueError, match=match):
        grad_noise(G, p, **options)


def test_grad_noise_rejects_non_tensors():
    with pytest.raises(TypeError, match="G must be a floating-point torch.Tensor"):
        grad_noise([[1.0, 2.0]])


# ---------------------------------------------------------------- est:minibatch_moments


@given(st.integers(2, 7), st.integers(1, 7), st.integers(1, 3), SEEDS)
def test_minibatch_exact_matches_textbook_variances(N, B, P, seed):
    """Textbook facts used as test oracles only: the mean of B i.i.d. draws has covariance
    Sigma/B; a mean of B draws without replacement has (Sigma/B)(N - B)/(N - 1), Sigma the
    population covariance (1/N). Both sampling schemes are unbiased for g."""
    G = randn(N, P, gen=generator(seed))
    g, Sigma = G.mean(dim=0), torch.atleast_2d(torch.cov(G.T, correction=0))
    factor = {"with_replacement": 1.0, "without_replacement": (N - B) / (N - 1)}
    for sampling in SAMPLINGS if B <= N else SAMPLINGS[:1]:
        out = minibatch_moments(G, B=B, sampling=sampling)
        close(out["mean"], g)
        close(out["g"], g)
        close(out["cov"], Sigma / B * factor[sampling])
        close(out["xi_cov"], out["cov"])
        close(out["second_moment"], out["cov"] + torch.outer(g, g))


@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 5), SEEDS)
def test_minibatch_model_labels_with_replacement_is_iid(N, C, B, seed):
    """With replacement and model labels a batch is B i.i.d. draws of the (n, y) mixture, so
    Cov[g_b] = Sigma^model / B (the textbook variance of a mean, as above)."""
    G, p = random_law(N, C, 2, generator(seed))
    out = minibatch_moments(G, p, B=B, labels="model", sampling="with_replacement")
    noise = grad_noise(G, p, labels="model")
    close(out["mean"], noise["g"])
    close(out["cov"], noise["Sigma"] / B)


def brute_force(G, p, B, sampling):
    """E[g_b], E[g_b g_b^T] over ordered index tuples and every label vector, by loops."""
    N, C, P = G.shape
    tuples = (
        list(itertools.product(range(N), repeat=B))
        if sampling == "with_replacement"
        else list(itertools.permutations(range(N), B))
    )
    mean, second = torch.zeros(P, dtype=F64), torch.zeros(P, P, dtype=F64)
    for index in tuples:
        for y in itertools.product(range(C), repeat=B):
            weight = p[list(index), list(y)].prod() / len(tuples)
            g_b = G[list(index), list(y)].mean(dim=0)
            mean += weight * g_b
            second += weight * torch.outer(g_b, g_b)
    return mean, second


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("B", [1, 2, 3])
def test_minibatch_model_labels_vs_brute_force(sampling, B):
    """Exact enumeration (multisets with multinomial weights, label expectation in closed
    form given the batch) equals brute force over ordered tuples x label vectors."""
    G, p = random_law(3, 2, 2, generator(11 + B))
    out = minibatch_moments(G, p, B=B, labels="model", sampling=sampling)
    mean, second = brute_force(G, p, B, sampling)
    close(out["mean"], mean)
    close(out["second_moment"], second)
    close(out["cov"], second - torch.outer(mean, mean))
    close(fisher_batch(G, p, labels="model", B=B, sampling=sampling)["F_b"], second)


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("labels", ["data", "model"])
def test_minibatch_monte_carlo_within_ci(sampling, labels):
    """Brute-force MC from draws made here (seed 314159, K = 4000) agrees with the exact
    enumeration within z_{alpha/2} standard errors, Bonferroni over every entry."""
    gen = generator(314159)
    N, B, K = 6, 3, 4000
    G, p = random_law(N, 3, 3, gen)
    if labels == "data":
        G, p = G[:, 0], None
    indices = sample_indices(N, B, K, sampling, gen)
    y = None if p is None else sample_labels(p[indices], gen)
    exact = minibatch_moments(G, p, B=B, labels=labels, sampling=sampling)
    mc = minibatch_moments(
        G, p, B=B, labels=labels, sampling=sampling, mode="mc", indices=indices, y=y
    )
    keys = ("mean", "cov", "second_moment", "xi_cov")
    within_ci(
        torch.cat([mc[k].reshape(-1) for k in keys]),
        torch.cat([mc[f"{k}_se"].reshape(-1) for k in keys]),
        torch.cat([exact[k].reshape(-1) for k in keys]),
    )
    close(mc["g"], exact["g"])
    g_b = (G[indices] if p is None else G[indices, y]).mean(dim=1)
    close(mc["mean"], g_b.mean(dim=0))
    close(mc["cov"], torch.cov(g_b.T))


@pytest.mark.parametrize("mode", ["exact", "mc"])
def test_minibatch_float32_follows_float64(mode):
    """float32 weighted sums over <= 56 batches (or K = 50 draws): within 1e-5 relative."""
    gen = generator(9)
    G, p = random_law(8, 3, 3, gen)
    indices = sample_indices(8, 3, 50, "with_replacement", gen)
    draws = {"indices": indices, "y": sample_labels(p[indices], gen)} if mode == "mc" else {}
    options = {"B": 3, "labels": "model", "sampling": "with_replacement", "mode": mode, **draws}
    out64 = minibatch_moments(G, p, **options)
    out32 = minibatch_moments(G.float(), p.float(), **options)
    assert set(out32) == set(out64)
    for key, value in out32.items():
        assert value.dtype == F32, key
        scale = float(out64[key].abs().max())
        torch.testing.assert_close(value.double(), out64[key], rtol=1e-5, atol=1e-5 * scale)


# ---------------------------------------------------------------- est:fisher_batch


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("N", [1, 2, 5])
def test_fisher_batch_full_batch_is_the_outer_product(N, dtype):
    """B = N without replacement: the only batch is everything, F_tilde_b = gbar gbar^T
    (float32: the same float32 operations up to summation order, 1e-6 relative)."""
    G = randn(N, 4, gen=generator(N), dtype=dtype)
    gbar = G.mean(dim=0)
    out = fisher_batch(G, labels="data", B=N, sampling="without_replacement")
    assert list(out) == ["F_tilde_b"]
    tol = RTOL if dtype == F64 else 1e-6
    close(out["F_tilde_b"], torch.outer(gbar, gbar), rtol=tol, atol=tol * float(gbar.abs().max()))


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_fisher_batch_of_one_is_the_per_sample_fisher(sampling):
    """B = 1: F_tilde_b = (1/N) sum_n g_n g_n^T (empirical Fisher) and F_b = (1/N) sum_n
    sum_c p_nc G_nc G_nc^T (true Fisher by exact label enumeration)."""
    G, p = random_law(4, 3, 3, generator(5))
    F = torch.einsum("nc,ncp,ncq->pq", p, G, G) / 4
    close(fisher_batch(G, p, labels="model", B=1, sampling=sampling)["F_b"], F)
    F_tilde_b = fisher_batch(G[:, 0], labels="data", B=1, sampling=sampling)["F_tilde_b"]
    close(F_tilde_b, G[:, 0].T @ G[:, 0] / 4)


def test_fisher_batch_needs_labels():
    with pytest.raises(TypeError, match="labels"):
        fisher_batch(torch.ones(2, 2), B=1)


# ---------------------------------------------------------------- errors and registry

G_DATA = torch.arange(8.0, dtype=F64).reshape(4, 2)
ZEROS = torch.zeros(2, 2, dtype=torch.long)


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
        ({"B": 2, "indices": ZEROS}, ValueError, "mode='exact' takes none"),
        ({"B": 2, "mode": "mc"}, ValueError, "needs the batch index draws"),
        ({"B": 2, "mode": "mc", "indices": torch.zeros(2, 2)}, TypeError, "indices must be integ"),
        ({"B": 2, "mode": "mc", "indices": ZEROS[:1]}, ValueError, "K >= 2"),
        ({"B": 2, "mode": "mc", "indices": torch.zeros(3, 3, dtype=int)}, ValueError, r"B=2\)"),
        ({"B": 2, "mode": "mc", "indices": ZEROS + 4}, ValueError, r"in \[0, 4\)"),
        ({"B": 2, "mode": "mc", "indices": ZEROS}, ValueError, "repeat a sample"),
        (
            {"B": 2, "mode": "mc", "indices": [[0, 1], [2, 3]], "y": [[0, 0], [0, 0]]},
            ValueError,
            "y, the sampled labels",
        ),
    ],
)
def test_minibatch_errors(options, error, match):
    with pytest.raises(error, match=match):
        minibatch_moments(G_DATA, **options)


def test_minibatch_too_many_batches_names_n_b_and_count():
    with pytest.raises(ValueError, match=r"155117520 batches \(N=30, B=15"):
        minibatch_moments(torch.ones(30, 1), B=15)
    with pytest.raises(ValueError, match=r"\(N=30, B=15, sampling='with_replacement'\)"):
        minibatch_moments(torch.ones(30, 1), B=15, sampling="with_replacement")


def test_minibatch_model_labels_mc_needs_labels_in_range():
    G, p = random_law(3, 2, 2, generator(0))
    draws = {"B": 1, "labels": "model", "mode": "mc", "indices": [[0], [1]]}
    with pytest.raises(ValueError, match="y, the sampled labels"):
        minibatch_moments(G, p, **draws)
    with pytest.raises(ValueError, match=r"y must lie in \[0, 2\)"):
        minibatch_moments(G, p, **draws, y=[[0], [2]])


def test_registry_entries_and_defaults():
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
    via_registry = get("est:minibatch_moments")(G_DATA, B=2)
    close(via_registry["cov"], minibatch_moments(G_DATA, B=2)["cov"], rtol=0, atol=0)
