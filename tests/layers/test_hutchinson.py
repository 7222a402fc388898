"""Hutchinson diagonal and trace, fd_hvp, GNB and label noise (INVENTORY §3.1, §3.2, §3.4), both
layers.

Oracles: exact enumeration of all 2^d Rademacher probes (mean = diag(H), Var(h_i) =
sum_{j != i} H_ij^2, trace per-probe variance 2 sum_{i != j} H_ij^2); Gaussian probes by a
confidence-interval test at false-alarm rate alpha = 1e-3 (Var(h_i) = 2 H_ii^2 + sum_{j != i}
H_ij^2; trace variance 2 ||H||_F^2), with the seed in the assertion message; fd_hvp equals H d
on quadratics for any h; GNB's exact expectation against brute-force enumeration of batches and
label vectors; the empirical label-corruption rate against the model's rate.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import chi2, norm

from verify.strategies import SEEDS, build_curvature, curvature_cases

ALPHA = 1e-3
RTOL = 1e-10


def est(layer, name: str):
    """The layer's estimator ``name`` on NumPy inputs (float arrays to the layer, integers kept)."""
    fn = getattr(layer.module("estimators.stochastic"), name)

    def convert(x):
        if isinstance(x, np.ndarray):
            if x.dtype.kind == "f":
                return layer.to_layer(x)
            return torch.as_tensor(x) if layer.is_torch else x
        return x

    def call(*args, **options):
        out = fn(*(convert(a) for a in args), **{k: convert(v) for k, v in options.items()})
        return {k: (v if isinstance(v, str | type(None)) else np.asarray(layer.to_numpy(v)))
                for k, v in out.items()}

    return call


def all_signs(d: int) -> np.ndarray:
    return np.array(list(itertools.product([-1.0, 1.0], repeat=d)))


def random_symmetric(d: int, seed: int) -> np.ndarray:
    M = np.random.default_rng(seed).standard_normal((d, d))
    return M + M.T


# ---------------------------------------------------------------- enumeration (Rademacher)


@given(st.integers(1, 10), SEEDS)
def test_rademacher_enumeration_mean_and_variance(layer, d, seed):
    """Over all 2^d sign vectors: mean z ⊙ Hz = diag(H), Var = sum_{j != i} H_ij^2; trace: mean
    tr(H), per-probe variance 2 sum_{i != j} H_ij^2 (a z ≡ -1 generator gives variance 0)."""
    H = random_symmetric(d, seed)
    Z = all_signs(d)
    out = est(layer, "hutchinson_diag")(H, Z)
    off = H - np.diag(np.diag(H))
    assert_allclose(out["diag"], np.diag(H), rtol=RTOL, atol=1e-12)
    assert_allclose(out["samples"].var(axis=0), (off**2).sum(axis=1), rtol=1e-9, atol=1e-12)
    tr = est(layer, "hutchinson_trace")(H, Z)
    assert_allclose(tr["trace"], np.trace(H), rtol=RTOL, atol=1e-10)
    assert_allclose(tr["samples"].var(), 2 * (off**2).sum(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["abs_of_mean", "mean_of_abs"])
def test_abs_modes_by_enumeration(layer, mode):
    H = random_symmetric(5, 3)
    Z = all_signs(5)
    S = Z * (Z @ H.T)
    expected = np.abs(S.mean(axis=0)) if mode == "abs_of_mean" else np.abs(S).mean(axis=0)
    out = est(layer, "hutchinson_diag")(H, Z, abs=mode)
    assert_allclose(out["diag"], expected, rtol=RTOL)
    assert out["n_hvp"] == 32


def test_seeded_rademacher_probes_have_the_probe_moments(layer):
    """The layer's own seeded draws (H = I returns z ⊙ z = 1 and samples tell z): entries in
    {+-1}, mean 0 and E[z z^T] = I within a CI at alpha = 1e-3 (Bonferroni over entries)."""
    d, K, seed = 4, 4000, 11
    Z = layer.probe("rademacher", (K, d), seed)
    assert set(np.unique(Z)) == {-1.0, 1.0}, f"seed {seed}"
    out = est(layer, "hutchinson_diag")(np.eye(d), seed=seed, n_probes=K)
    assert_allclose(out["samples"], 1.0)
    zq = norm.isf(ALPHA / (2 * (d + d * d)))
    assert np.all(np.abs(Z.mean(axis=0)) <= zq / math.sqrt(K)), f"seed {seed}"
    second = Z.T @ Z / K
    assert np.all(np.abs(second - np.eye(d)) <= zq / math.sqrt(K)), f"seed {seed}"


def test_seeded_trace_through_a_callable(layer):
    H = random_symmetric(3, 1)
    H_l = layer.to_layer(H)
    out = layer.module("estimators.stochastic").hutchinson_trace(
        lambda v: H_l @ v, seed=5, n_probes=2**12, dim=3)
    Z = layer.probe("rademacher", (2**12, 3), 5)
    assert_allclose(float(out["trace"]), np.einsum("kp,pq,kq->", Z, H, Z) / 2**12, rtol=RTOL)
    assert out["n_hvp"] == 2**12


# ---------------------------------------------------------------- Gaussian probes (CI)


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_mean_and_variance_within_ci(layer, seed):
    """K Gaussian probes from the layer's seeded generator: the mean of z ⊙ Hz within its CI of
    diag(H) and the sample variance within the chi^2 interval of 2 H_ii^2 + sum_{j != i} H_ij^2
    (normal approximation for the variance of a sample variance, K = 20000); trace variance
    2 ||H||_F^2. Bonferroni over the d + 1 + d + 1 tests, alpha = 1e-3."""
    d, K = 4, 20000
    H = random_symmetric(d, 7)
    out = est(layer, "hutchinson_diag")(H, seed=seed, n_probes=K, dist="gaussian")
    S = out["samples"]
    var = 2 * np.diag(H) ** 2 + (H**2).sum(axis=1) - np.diag(H) ** 2
    zq = norm.isf(ALPHA / (2 * (2 * d + 2)))
    assert np.all(np.abs(S.mean(axis=0) - np.diag(H)) <= zq * np.sqrt(var / K)), f"seed {seed}"
    m4 = np.mean((S - np.diag(H)) ** 4, axis=0)  # Var(s^2) ~ (m4 - var^2)/K
    assert np.all(np.abs(S.var(axis=0, ddof=1) - var) <= zq * np.sqrt((m4 - var**2) / K)), (
        f"seed {seed}")
    t = est(layer, "hutchinson_trace")(H, seed=seed, n_probes=K, dist="gaussian")["samples"]
    tvar = 2 * (H**2).sum()
    assert abs(t.mean() - np.trace(H)) <= zq * math.sqrt(tvar / K), f"seed {seed}"
    lo, hi = chi2.ppf(ALPHA / 4, K - 1) / (K - 1), chi2.isf(ALPHA / 4, K - 1) / (K - 1)
    kurt = np.mean((t - np.trace(H)) ** 4) / tvar**2  # non-normal t: widen by its kurtosis
    spread = math.sqrt((kurt - 1) / 2)
    assert 1 - (1 - lo) * spread <= t.var(ddof=1) / tvar <= 1 + (hi - 1) * spread, f"seed {seed}"


# ---------------------------------------------------------------- fd_hvp


@given(curvature_cases(n_max=6, log10_range=(-1.0, 1.0), kinds=("pd", "indefinite")),
       st.floats(-6.0, 2.0), st.booleans())
def test_fd_hvp_is_exact_on_quadratics(layer, case, log_h, central):
    """Gradient A (x - a) is affine: the quotient is A d for any h, up to rounding
    10 n eps (||grad(x + h d)|| + ||grad(x)||) / h."""
    A = build_curvature(case)["H"]
    rng = np.random.default_rng(case["seed"] + 1)
    a, x, d = (rng.standard_normal(len(A)) for _ in range(3))
    A_l, a_l = layer.to_layer(A), layer.to_layer(a)
    h = 10.0**log_h
    out = est(layer, "fd_hvp")(lambda v: A_l @ (v - a_l), x, d, h=h, central=central)
    size = np.abs(A).sum() * (np.abs(x).max() + h * np.abs(d).max() + np.abs(a).max())
    bound = 10 * len(A) * np.finfo(float).eps * 2 * size / h
    assert np.linalg.norm(out["hvp"] - A @ d) <= bound
    assert out["evaluations"] == 2


# ---------------------------------------------------------------- GNB


def _brute_gnb(G, p, B, with_replacement):
    """E[B g_hat ⊙ g_hat] over every batch and every label vector."""
    N, C, _ = G.shape
    batches = (itertools.product(range(N), repeat=B) if with_replacement
               else itertools.permutations(range(N), B))
    total, weight = 0.0, 0.0
    for batch in batches:
        for labels in itertools.product(range(C), repeat=B):
            w = np.prod([p[n, c] for n, c in zip(batch, labels, strict=True)])
            g_hat = np.mean([G[n, c] for n, c in zip(batch, labels, strict=True)], axis=0)
            total, weight = total + w * B * g_hat**2, weight + w
    return total / weight


@pytest.mark.parametrize("sampling", ["with_replacement", "without_replacement"])
def test_gnb_exact_equals_enumeration_and_code_convention_divides_by_B(layer, sampling):
    rng = np.random.default_rng(0)
    G, p = rng.standard_normal((3, 2, 4)), rng.dirichlet(np.ones(2), size=3)
    expected = _brute_gnb(G, p, 2, sampling == "with_replacement")
    ext = est(layer, "gnb")(G, p, B=2, sampling=sampling)["h"]
    code = est(layer, "gnb")(G, p, B=2, sampling=sampling, convention="code")["h"]
    assert_allclose(ext, expected, rtol=RTOL)
    assert_allclose(code, expected / 2, rtol=RTOL)


def test_gnb_draws_are_B_g_hat_squared(layer):
    rng = np.random.default_rng(1)
    G = rng.standard_normal((4, 3, 2))
    idx, y = rng.integers(0, 4, (5, 3)), rng.integers(0, 3, (5, 3))
    out = est(layer, "gnb")(G, None, B=3, mode="draws", indices=idx, y=y)
    g_hat = G[idx, y].mean(axis=1)
    assert_allclose(out["samples"], 3 * g_hat**2, rtol=RTOL)
    assert_allclose(out["h"], 3 * (g_hat**2).mean(axis=0), rtol=RTOL)


# ---------------------------------------------------------------- label noise


@pytest.mark.parametrize("model", ["flip_to_other", "resample_uniform"])
def test_label_noise_rate_matches_the_model(layer, model):
    """flip_to_other changes exactly round(pN) labels; resample_uniform changes each chosen
    label with probability (C-1)/C: a binomial CI at alpha = 1e-3 (seed in the message)."""
    N, C, p, seed = 4000, 5, 0.3, 3
    y = np.random.default_rng(0).integers(0, C, N)
    out = est(layer, "label_noise")(y, C, p, model=model, seed=seed)
    mask, labels = out["mask"].astype(bool), out["labels"].astype(int)
    m = round(p * N)
    assert mask.sum() == m
    assert np.array_equal(labels[~mask], y[~mask])
    assert np.array_equal(out["changed"].astype(bool), labels != y)
    assert np.all((labels >= 0) & (labels < C))
    if model == "flip_to_other":
        assert out["changed"].sum() == m and out["rate"] == m / N
    else:
        q = (C - 1) / C
        bound = norm.isf(ALPHA / 2) * math.sqrt(m * q * (1 - q))
        assert abs(out["changed"].sum() - m * q) <= bound, f"seed {seed}"
        counts = np.bincount(labels[mask], minlength=C)
        stat = ((counts - m / C) ** 2 / (m / C)).sum()
        assert stat <= chi2.isf(ALPHA, C - 1), f"seed {seed}: uniform labels, chi2 {stat}"


# ---------------------------------------------------------------- errors


def test_errors_name_the_parameter(layer):
    H = np.eye(3)
    with pytest.raises(ValueError, match="dist"):
        est(layer, "hutchinson_diag")(H, seed=0, dist="uniform")
    with pytest.raises(ValueError, match="abs"):
        est(layer, "hutchinson_diag")(H, seed=0, abs="both")
    with pytest.raises(ValueError, match="exactly one of z"):
        est(layer, "hutchinson_trace")(H)
    with pytest.raises(ValueError, match="dim"):
        est(layer, "hutchinson_trace")(lambda v: v, seed=0)
    with pytest.raises(ValueError, match="n_probes"):
        est(layer, "hutchinson_trace")(H, seed=0, n_probes=0)
    with pytest.raises(ValueError, match="convention"):
        est(layer, "gnb")(np.ones((2, 2, 1)), np.full((2, 2), 0.5), B=1, convention="x")
