"""Matrix diagnostics (INVENTORY §3.5-§3.8), both layers: exact spectra and inertia, condition
numbers, Gershgorin discs, off-diagonal noise, SNR, the printed 2-D DFT, Fisher agreement
metrics, the Newton decrement and the output KL.

Oracles: Gershgorin's theorem (random symmetric and non-symmetric matrices), numpy.fft.fft2,
brute-force assignments over all permutations, scipy.stats.spearmanr, explicit softmax sums,
and closed forms of hand-built matrices; each layer's seeded noise is checked against its own
`probe("gaussian", ...)` draw.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

from contract.specs.factors import assignment
from verify.strategies import SEEDS

RTOL, ATOL = 1e-10, 1e-12


def call(layer, key: str, *args, **options):
    """The layer's registered estimator on NumPy inputs (converted), output as NumPy."""
    out = layer.estimators.get(key)(*(layer.cast(a) for a in args),
                                    **{k: layer.cast(v) for k, v in options.items()})
    return layer.to_numpy(out)


def spd(n: int, rng: np.random.Generator) -> np.ndarray:
    B = rng.standard_normal((n, n))
    return B @ B.T / n + np.diag(rng.random(n))


# ---------------------------------------------------------------- est:eig_exact, condition


def test_eig_exact_inertia(layer):
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    lam = np.array([-3.0, -1.0, 0.0, 0.0, 2.0, 5.0])
    M = (Q * lam) @ Q.T
    out = call(layer, "est:eig_exact", 0.5 * (M + M.T))
    assert_allclose(out["eigenvalues"], lam, atol=1e-12)
    assert (int(out["n_pos"]), int(out["n_zero"]), int(out["n_neg"])) == (2, 2, 2)
    V = out["eigenvectors"]
    assert_allclose(V.T @ V, np.eye(6), atol=1e-12)
    pivots = V[np.abs(V).argmax(axis=0), np.arange(6)]
    assert np.all(pivots > 0)
    assert_allclose(out["zero_tol"], 10 * 6 * np.finfo(float).eps * 5.0, rtol=1e-6)
    custom = call(layer, "est:eig_exact", np.diag([1.0, 1e-3, -2.0]), zero_rtol=1e-2)
    assert (int(custom["n_pos"]), int(custom["n_zero"]), int(custom["n_neg"])) == (1, 1, 1)
    with pytest.raises(ValueError, match="symmetric"):
        call(layer, "est:eig_exact", np.array([[1.0, 2.0], [0.0, 1.0]]))


def test_condition_number(layer):
    rng = np.random.default_rng(1)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    M = (Q * np.array([0.5, 1.0, 2.0, 50.0])) @ Q.T
    out = call(layer, "est:condition_number", 0.5 * (M + M.T))
    assert_allclose(out["kappa"], 100.0, rtol=1e-10)
    for bad in (np.diag([1.0, 0.0]), np.diag([1.0, -1.0])):
        with pytest.raises(ValueError, match="positive definite"):
            call(layer, "est:condition_number", bad)


# ---------------------------------------------------------------- est:gershgorin


@given(SEEDS, st.integers(1, 8), st.booleans())
def test_gershgorin_theorem(layer, seed, n, symmetric):
    """Every eigenvalue lies in some disc D(a_ii, R_i), for symmetric and general M."""
    M = np.random.default_rng(seed).standard_normal((n, n))
    M = M + M.T if symmetric else M
    out = call(layer, "est:gershgorin", M)
    eig = np.linalg.eigvals(M)
    R = np.abs(M).sum(axis=1) - np.abs(np.diag(M))
    slack = 1e-12 * np.linalg.norm(M, 2)
    assert np.all(np.any(np.abs(eig[:, None] - np.diag(M)) <= R + slack, axis=1)), seed
    assert out["frac_in_union"] == 1.0
    assert_allclose(out["radii"], R, rtol=RTOL, atol=1e-12)
    got = out["eig_real"] + 1j * out["eig_imag"]
    cost = np.abs(got[:, None] - eig[None, :])
    assert cost[linear_sum_assignment(cost)].max() <= 1e-10 * np.linalg.norm(M, 2)


def test_gershgorin_metrics_closed_form(layer):
    M = np.array([[4.0, 1.0, -1.0], [0.5, -2.0, 2.0], [0.0, 0.0, 0.0]])
    out = call(layer, "est:gershgorin", M)
    R = np.array([2.0, 2.5, 0.0])
    ratio = np.array([0.5, 1.25, 0.0])  # 0/0 counts as 0
    assert_allclose(out["radii"], R)
    assert_allclose(out["ratio_max"], 1.25)
    assert_allclose(out["ratio_median"], np.median(ratio))
    assert_allclose(out["frac_dominant"], 1 / 3)
    assert_allclose(out["diag_energy"], 20.0 / np.sum(M**2), rtol=RTOL)
    Off = M - np.diag(np.diag(M))
    assert_allclose(out["offdiag_rel2"], np.linalg.norm(Off, 2) / np.linalg.norm(M, 2), rtol=1e-9)
    eig = out["eig_real"] + 1j * out["eig_imag"]
    dist = np.abs(eig[:, None] - np.diag(M)).min(axis=1) / np.linalg.norm(M, 2)
    assert_allclose(out["eig_dist"], dist, rtol=1e-9, atol=1e-12)
    diag = call(layer, "est:gershgorin", np.diag([3.0, -1.0]))
    assert diag["ratio_max"] == 0 and diag["diag_energy"] == 1 and diag["frac_dominant"] == 1
    assert np.all(diag["eig_dist"] == 0)


# ---------------------------------------------------------------- est:offdiag_noise


def test_offdiag_noise_seed_draws_through_probe(layer):
    """E = sigma (Z - Diag Z), Z = the layer's probe("gaussian", (n, n), seed): not symmetric
    (as printed); symmetrize=True: sigma (Z + Z^T)/sqrt 2 off the diagonal."""
    A = spd(5, np.random.default_rng(2))
    Z = layer.probe("gaussian", (5, 5), 11)
    out = call(layer, "est:offdiag_noise", A, seed=11, sigma=0.01)
    assert_allclose(out["E"], 0.01 * (Z - np.diag(np.diag(Z))), rtol=1e-6, atol=1e-12)
    assert not np.allclose(out["E"], out["E"].T)
    sym = call(layer, "est:offdiag_noise", A, seed=11, sigma=0.01, symmetrize=True)
    S = (Z + Z.T) / math.sqrt(2)
    assert_allclose(sym["E"], 0.01 * (S - np.diag(np.diag(S))), rtol=1e-6, atol=1e-12)
    assert_allclose(sym["M_hat"], A + sym["E"], rtol=RTOL)
    with pytest.raises(ValueError, match="exactly one of Z"):
        call(layer, "est:offdiag_noise", A)


@given(SEEDS, st.integers(1, 6), st.sampled_from(["sort", "hungarian"]))
def test_offdiag_noise_matching(layer, seed, n, match):
    """Kaiser count, sorted eigenvalues, and the Hungarian matching = brute force over all
    permutations; displacement |lam(M_hat) - lam(A)| of the Kaiser eigenvalues."""
    rng = np.random.default_rng(seed)
    A = 3.0 * spd(n, rng)
    Z = rng.standard_normal((n, n))
    out = call(layer, "est:offdiag_noise", A, Z, sigma=0.05, match=match)
    lam_A = np.sort(np.linalg.eigvalsh(A))[::-1]
    lam_M = out["eig_M_real"] + 1j * out["eig_M_imag"]
    assert_allclose(out["eig_A_real"], lam_A, rtol=1e-10, atol=1e-12)
    eig_M = np.linalg.eigvals(A + 0.05 * (Z - np.diag(np.diag(Z))))
    assert_allclose(np.sort_complex(lam_M), np.sort_complex(eig_M), rtol=1e-9, atol=1e-12)
    index = out["match_index"].astype(int)
    if match == "sort":
        assert_array_equal(index, np.arange(n))
    else:
        cost = np.abs(lam_A[:, None] - lam_M[None, :])
        best = min(cost[np.arange(n), list(p)].sum() for p in itertools.permutations(range(n)))
        assert_allclose(cost[np.arange(n), index].sum(), best, rtol=1e-12, atol=1e-14)
    keep = lam_A > 1.0
    assert int(out["n_kaiser"]) == keep.sum()
    assert_allclose(out["displacement"], np.abs(lam_M[index] - lam_A)[keep], rtol=1e-9,
                    atol=1e-12)


def test_offdiag_noise_zero_sigma_and_controls(layer):
    A = 4.0 * spd(4, np.random.default_rng(4))
    Z = np.random.default_rng(5).standard_normal((4, 4))
    out = call(layer, "est:offdiag_noise", A, Z, sigma=0.0, controls=True)
    assert_allclose(out["displacement"], 0.0, atol=1e-12)
    s = np.trace(A) / 4
    dense = out["controls"]["dense"]
    assert_allclose(dense["M_hat"], 0.5 * s * (np.eye(4) + np.ones((4, 4))), rtol=RTOL)
    assert_allclose(dense["eig_A_real"], [2.5 * s, 0.5 * s, 0.5 * s, 0.5 * s], rtol=1e-10)
    band = out["controls"]["banded"]["M_hat"]
    assert_allclose(np.diag(band, 1), 0.25 * s)
    assert_allclose(np.diag(band, 2), 0.0)
    assert_allclose(out["controls"]["diagonal"]["M_hat"], np.diag(np.diag(A)))


def test_assignment_matches_scipy():
    """The pure-Python Hungarian (torch layer's matching) attains scipy's optimal cost."""
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 9):
        cost = rng.random((n, n))
        col = assignment(cost.tolist())
        assert sorted(col) == list(range(n))
        rows, ref = linear_sum_assignment(cost)
        assert_allclose(cost[np.arange(n), col].sum(), cost[rows, ref].sum(), rtol=1e-12)


# ---------------------------------------------------------------- est:snr


def test_snr_closed_form(layer):
    M = np.array([[2.0, 0.0], [0.0, 1.0]])
    M_hat = np.array([[2.0, 0.1], [0.2, 1.0]])
    out = call(layer, "est:snr", M, M_hat)
    assert_allclose(out["snr"], 10 * np.log10(5.0 / 0.01), rtol=RTOL)
    full = call(layer, "est:snr", M, M_hat, offdiag="full")
    assert_allclose(full["snr"], 10 * np.log10(5.0 / 0.05), rtol=RTOL)
    assert call(layer, "est:snr", M, M)["snr"] == np.inf
    Z = np.random.default_rng(0).standard_normal((2, 2))
    noisy = call(layer, "est:snr", M, Z=Z, sigma=0.1, controls=True)
    assert_allclose(noisy["noise"], (0.1 * Z[0, 1]) ** 2, rtol=RTOL)
    assert set(noisy["controls"]) == {"diagonal", "banded", "dense"}
    with pytest.raises(ValueError, match="not both"):
        call(layer, "est:snr", M, M_hat, Z=Z)


# ---------------------------------------------------------------- est:fft2


@given(SEEDS, st.integers(1, 7), st.integers(1, 7))
def test_fft2_equals_numpy(layer, seed, m, n):
    A = np.random.default_rng(seed).standard_normal((m, n))
    out = call(layer, "est:fft2", A)
    F = np.fft.fft2(A)
    scale = 1e-12 * max(np.abs(F).max(), 1.0)
    assert_allclose(out["F_real"] + 1j * out["F_imag"], F, rtol=1e-10, atol=scale)
    assert_allclose(out["magnitude_shifted"], np.abs(np.fft.fftshift(F)), rtol=1e-10, atol=scale)
    P = np.abs(F) ** 2
    k, l = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    diff = [P[(k - l) % n == c].sum() / P.sum() for c in range(n)]
    assert_allclose(out["diff_energy"], diff, rtol=1e-9, atol=1e-12)
    assert_allclose(out["sum_energy"].sum(), 1.0, rtol=1e-12)
    assert_allclose(out["shifted_sum_energy"].sum(), 1.0, rtol=1e-12)


def test_fft2_identity_energy_on_one_line(layer):
    """F(I)_kl = n [k + l = 0 mod n]: all energy on the line k + l = 0."""
    out = call(layer, "est:fft2", np.eye(5), controls=True)
    assert_allclose(out["sum_energy"], np.eye(5)[0], atol=1e-12)
    assert_allclose(out["diff_energy"], np.full(5, 0.2), atol=1e-12)
    assert set(out["controls"]) == {"diagonal", "banded", "dense"}
    with pytest.raises(ValueError, match="not be zero"):
        call(layer, "est:fft2", np.zeros((2, 2)))


# ---------------------------------------------------------------- est:fisher_agreement


@given(SEEDS, st.integers(2, 25), st.sampled_from([0.1, 0.3, 1.0]))
def test_fisher_agreement_metrics(layer, seed, P, top_frac):
    rng = np.random.default_rng(seed)
    r = rng.random(P) + 0.01
    c = np.round(r * (1 + 0.3 * rng.standard_normal(P)), 2)
    out = call(layer, "est:fisher_agreement", r, {"c": c, "same": r, "triple": 3 * r},
               top_frac=top_frac)
    m = out["c"]
    assert_allclose(m["mae"], np.abs(c - r).mean(), rtol=RTOL)
    assert_allclose(m["rel_l1"], np.abs(c - r).sum() / r.sum(), rtol=RTOL)
    alphas = [ri / ci for ri, ci in zip(r, c, strict=True) if ci != 0] + [0.0]
    best = min(np.abs(a * c - r).sum() for a in alphas) / r.sum()  # minimum at a breakpoint
    assert_allclose(m["rel_l1_scaled"], best, rtol=1e-9, atol=1e-14)
    assert_allclose(m["cosine"], c @ r / np.linalg.norm(c) / np.linalg.norm(r), rtol=RTOL)
    rho = spearmanr(r, c).statistic
    if np.isfinite(rho):
        assert_allclose(m["spearman"], rho, rtol=1e-9, atol=1e-12)
    else:  # a constant candidate: undefined
        assert np.isnan(m["spearman"])
    k = max(1, math.ceil(top_frac * P))
    top = set(np.argsort(-r, kind="stable")[:k]) & set(np.argsort(-c, kind="stable")[:k])
    assert_allclose(m["top_k_overlap"], len(top) / k)
    for key, value in (("mae", 0), ("rel_l1", 0), ("cosine", 1), ("spearman", 1),
                       ("top_k_overlap", 1)):
        assert_allclose(out["same"][key], value, atol=1e-12)
    assert_allclose(out["triple"]["rel_l1"], 2.0, rtol=1e-12)
    assert_allclose(out["triple"]["rel_l1_scaled"], 0.0, atol=1e-12)


def test_fisher_agreement_undefined_and_errors(layer):
    r = np.array([1.0, 2.0, 3.0])
    out = call(layer, "est:fisher_agreement", r, {"zero": np.zeros(3)})["zero"]
    assert np.isnan(out["cosine"]) and np.isnan(out["spearman"])
    assert_allclose(out["rel_l1_scaled"], 1.0)
    with pytest.raises(ValueError, match="has 2 entries"):
        call(layer, "est:fisher_agreement", r, {"short": np.ones(2)})
    with pytest.raises(TypeError, match="mapping"):
        call(layer, "est:fisher_agreement", r, [np.ones(3)])


# ---------------------------------------------------------------- newton decrement, KL


def test_newton_decrement(layer):
    rng = np.random.default_rng(3)
    g, F = rng.standard_normal((3, 4)), rng.random((3, 4)) + 0.1
    out = call(layer, "est:newton_decrement", g, F)
    assert_allclose(out["decrement"], np.sum(g**2 / F), rtol=RTOL)
    assert_allclose(out["sqrt_decrement"], np.sqrt(np.sum(g**2 / F)), rtol=RTOL)
    K, v = spd(5, rng), rng.standard_normal(5)
    dense = call(layer, "est:newton_decrement", v, 0.5 * (K + K.T))
    assert_allclose(dense["decrement"], v @ np.linalg.solve(K, v), rtol=1e-9)
    with pytest.raises(ValueError, match="positive definite"):
        call(layer, "est:newton_decrement", v, -np.eye(5))
    with pytest.raises(ValueError, match="must be positive"):
        call(layer, "est:newton_decrement", g, -F)


@given(SEEDS, st.integers(1, 5), st.integers(1, 6))
def test_kl_outputs(layer, seed, N, C):
    rng = np.random.default_rng(seed)
    zp, zq = rng.standard_normal((N, C)), rng.standard_normal((N, C))
    p = np.exp(zp) / np.exp(zp).sum(axis=1, keepdims=True)
    q = np.exp(zq) / np.exp(zq).sum(axis=1, keepdims=True)
    kl = np.sum(p * np.log(p / q), axis=1)
    out = call(layer, "est:kl_outputs", zp, zq)
    assert_allclose(out["kl_per_input"], kl, rtol=1e-9, atol=1e-13)
    assert_allclose(out["kl"], kl.mean(), rtol=1e-9, atol=1e-13)
    shifted = call(layer, "est:kl_outputs", zp + 5.0, zq - 2.0)
    assert_allclose(shifted["kl"], out["kl"], rtol=1e-9, atol=1e-13)
    assert_allclose(call(layer, "est:kl_outputs", zp, zp)["kl"], 0.0, atol=1e-15)


def test_float32_diagnostics_follow_float64(typed_layer):
    """float32 runs stay within float32 rounding of NumPy float64 closed forms."""
    rng = np.random.default_rng(8)
    A = spd(5, rng)
    assert_allclose(call(typed_layer, "est:eig_exact", A)["eigenvalues"],
                    np.linalg.eigvalsh(A), rtol=1e-5, atol=1e-5 * np.abs(A).max())
    B = rng.standard_normal((4, 6))
    out = call(typed_layer, "est:fft2", B)
    assert_allclose(out["magnitude"], np.abs(np.fft.fft2(B)), rtol=1e-4, atol=1e-5)
