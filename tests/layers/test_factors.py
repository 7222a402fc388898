"""Factor estimators (INVENTORY §3.3, §3.4): min-max, EFIM, EMA, bias correction, spatial
averaging and distributed aggregation, both layers.

Oracles: the INVENTORY's (affine invariance, permutation equivariance, matrix path = vector
path, code -> thesis, the np.kron layout, EMA fixed points and closed forms, bias-correction
exactness, spatial-averaging idempotence and block sums, shard averages = batch factors),
with NumPy closed forms as expected values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from verify.strategies import SEEDS

RTOL, ATOL = 1e-10, 1e-12
EMA_KEYS = ("est:ema", "est:ema[code]", "est:ema[fisheradaptune]", "est:ema[sassha]",
            "est:ema[adam]")
WEIGHTS = {  # (a, c) of each key at its defaults (INVENTORY est:ema)
    "est:ema": (0.8, 0.2),
    "est:ema[code]": (0.08, 0.008),
    "est:ema[fisheradaptune]": (0.08, 0.008),
    "est:ema[sassha]": (0.999, 0.001),
    "est:ema[adam]": (0.9, 0.1),
}


def call(layer, key: str, *args, **options):
    """The layer's registered estimator on NumPy inputs (converted), output as NumPy."""
    out = layer.estimators.get(key)(*(layer.cast(a) for a in args),
                                    **{k: layer.cast(v) for k, v in options.items()})
    return layer.to_numpy(out)


def vectors(min_size: int = 2, max_size: int = 12):
    return st.tuples(SEEDS, st.integers(min_size, max_size))


def factor(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) * 10.0 + 0.1


# ---------------------------------------------------------------- est:minmax


def test_minmax_closed_form_and_degenerate(layer):
    assert_allclose(call(layer, "est:minmax", np.array([1.0, 3.0, 2.0])), [0.0, 1.0, 0.5])
    for degenerate, fill in (("ones", 1.0), ("zeros", 0.0)):
        assert_array_equal(call(layer, "est:minmax", np.full(3, 2.5), degenerate=degenerate),
                           np.full(3, fill))
    assert np.all(np.isnan(call(layer, "est:minmax", np.array([4.0]), degenerate="nan")))
    with pytest.raises(ValueError, match="degenerate"):
        call(layer, "est:minmax", np.ones(2), degenerate="eps")
    with pytest.raises(ValueError, match="non-finite"):
        call(layer, "est:minmax", np.array([1.0, np.nan]))


@given(vectors(), st.floats(1e-3, 1e3), st.floats(-1e3, 1e3))
def test_minmax_affine_invariance(layer, data, a, b):
    """mm(a x + b 1) = mm(x) for a > 0 (thesis variant)."""
    x = factor(*data)
    expected = (x - x.min()) / (x.max() - x.min())
    got = call(layer, "est:minmax", a * x + b)
    assert_allclose(got, expected, rtol=1e-8, atol=1e-9 * (1 + abs(b) / a))


@given(vectors(), SEEDS)
def test_minmax_permutation_equivariance_and_matrix_path(layer, data, seed):
    x = factor(*data)
    perm = np.random.default_rng(seed).permutation(x.size)
    out = call(layer, "est:minmax", x)
    assert_allclose(call(layer, "est:minmax", x[perm]), out[perm], rtol=RTOL, atol=ATOL)
    assert_allclose(call(layer, "est:minmax", x, form="matrix"), out, rtol=RTOL, atol=ATOL)


@given(vectors(), st.floats(-2.0, 6.0))
def test_minmax_code_tends_to_thesis(layer, data, log_range):
    """code = thesis * range/(range + 1e-6): |code - thesis| <= 1e-6/(range + 1e-6)."""
    x = factor(*data)
    x = (x - x.min()) / (x.max() - x.min()) * 10.0**log_range
    gap = np.abs(call(layer, "est:minmax[code]", x) - call(layer, "est:minmax", x))
    assert gap.max() <= 1e-6 / (10.0**log_range + 1e-6) + 4e-16  # + rounding of values <= 1


def test_minmax_code_infinities_and_constant(layer):
    x = np.array([np.inf, -np.inf, 0.5])
    assert_allclose(call(layer, "est:minmax[code]", x), np.array([1.0, 0.0, 0.5]) / (1 + 1e-6))
    assert_array_equal(call(layer, "est:minmax[code]", np.full(4, 7.0)), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        call(layer, "est:minmax[code]", np.array([np.nan, 1.0]))


# ---------------------------------------------------------------- est:efim


@given(vectors(1, 6), vectors(1, 6), st.floats(1e-4, 1.0))
def test_efim_kron_layout(layer, h, s, lam):
    """np.diag(np.kron(diag H', diag S')) + lam = column-major vec of the weight-shaped F."""
    H_D, S_D = factor(*h), factor(*s)
    G = np.random.default_rng(h[0]).standard_normal((S_D.size, H_D.size))
    out = call(layer, "est:efim", H_D, S_D, G, lam=lam)
    H1, S1 = out["H_prime"], out["S_prime"]
    kron = np.diag(np.kron(np.diag(H1), np.diag(S1))) + lam
    assert_allclose(out["F"].reshape(-1, order="F"), kron, rtol=RTOL, atol=ATOL)
    assert_allclose(out["G_bar"], G / out["F"], rtol=RTOL, atol=ATOL)
    assert np.all(out["F"] >= lam - 1e-12) and np.all(out["F"] <= 1 + lam + 1e-12)


def test_efim_without_normalization(layer):
    H_D, S_D = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    out = call(layer, "est:efim", H_D, S_D, lam=0.5, minmax="none")
    assert_allclose(out["F"], np.outer(S_D, H_D) + 0.5, rtol=RTOL)


# ---------------------------------------------------------------- est:ema, est:bias_correction


@pytest.mark.parametrize("key", EMA_KEYS)
def test_ema_closed_form(layer, key):
    """y_t = a^t y0 + c sum_tau a^(t - tau) x_tau with the convention's (a, c)."""
    rng = np.random.default_rng(3)
    x, y0 = rng.random((7, 3)), rng.random(3)
    a, c = WEIGHTS[key]
    out = call(layer, key, x, y0, init="y0")
    T = x.shape[0]
    expected = [a**t * y0 + c * sum(a ** (t - tau) * x[tau - 1] for tau in range(1, t + 1))
                for t in range(1, T + 1)]
    assert_allclose(out["trajectory"], expected, rtol=RTOL, atol=ATOL)
    assert_allclose(out["y"], expected[-1], rtol=RTOL, atol=ATOL)
    assert int(out["n"]) == T


@pytest.mark.parametrize("key", EMA_KEYS)
def test_ema_fixed_point(layer, key):
    """Constant input x from y0 = c x/(1 - a) stays there; from zeros it converges as a^t."""
    a, c = WEIGHTS[key]
    x = np.array([0.5, 2.0])
    star = c * x / (1 - a)
    stack = np.tile(x, (20, 1))
    assert_allclose(call(layer, key, stack, star, init="y0")["y"], star, rtol=RTOL)
    got = call(layer, key, stack, init="zeros")["y"]
    assert_allclose(got, star * (1 - a**20), rtol=1e-9)


def test_ema_init_options_and_lazy_updates(layer):
    x = np.arange(1.0, 8.0)[:, None]
    first = call(layer, "est:ema", x, init="first_observation", gamma=0.5)
    assert_allclose(first["trajectory"][0], x[0])
    ones = call(layer, "est:ema", x, init="ones", gamma=0.5)
    assert_allclose(ones["trajectory"][0], 0.5 + 0.5 * x[0])
    lazy = call(layer, "est:ema", x, init="zeros", gamma=0.5, k=3)
    assert int(lazy["n"]) == math.ceil(7 / 3)  # refreshes at t = 1, 4, 7
    expected, y = [], 0.0
    for t in range(1, 8):
        if (t - 1) % 3 == 0:
            y = 0.5 * y + 0.5 * x[t - 1, 0]
        expected.append(y)
    assert_allclose(lazy["trajectory"][:, 0], expected, rtol=RTOL)
    with pytest.raises(ValueError, match="y0"):
        call(layer, "est:ema", x, init="zeros", y0=np.zeros(1))
    with pytest.raises(TypeError, match="weight option"):
        call(layer, "est:ema", x, beta=0.9)


@pytest.mark.parametrize("key", ["est:ema", "est:ema[sassha]", "est:ema[adam]"])
@pytest.mark.parametrize("k", [1, 3])
def test_bias_correction_exact(layer, key, k):
    """Constant input, zero init, a + c = 1: x / (1 - beta^n) = x with n the EMA updates."""
    a, _ = WEIGHTS[key]
    x = np.array([0.3, 4.0])
    ema = call(layer, key, np.tile(x, (10, 1)), init="zeros", k=k)
    n = int(ema["n"])
    got = call(layer, "est:bias_correction", ema["y"], beta=a, n=n, c="refreshes")
    assert_allclose(got, x, rtol=1e-9)
    if k == 1:
        got = call(layer, "est:bias_correction", ema["y"], beta=a, t=10)
        assert_allclose(got, x, rtol=1e-9)
    with pytest.raises(ValueError, match="needs the count t"):
        call(layer, "est:bias_correction", x, beta=a, n=3)


# ---------------------------------------------------------------- est:spatial_avg


@given(SEEDS, st.integers(1, 4), st.integers(1, 5), st.sampled_from(["signed", "abs"]))
def test_spatial_avg_oracles(layer, seed, b, blocks, input_):
    D = np.random.default_rng(seed).standard_normal(b * blocks)
    V = np.abs(D) if input_ == "abs" else D
    out = call(layer, "est:spatial_avg", D, b=b, input=input_)
    assert_allclose(out.reshape(-1, b).sum(axis=1), V.reshape(-1, b).sum(axis=1),
                    rtol=RTOL, atol=1e-12)
    assert_allclose(call(layer, "est:spatial_avg", out, b=b), out, rtol=RTOL, atol=1e-15)
    assert_allclose(out, np.repeat(V.reshape(-1, b).mean(axis=1), b), rtol=RTOL, atol=1e-15)
    assert_array_equal(call(layer, "est:spatial_avg", D, b=1, input=input_), V)


def test_spatial_avg_conv_mapping_and_divisibility(layer):
    W = np.random.default_rng(0).standard_normal((2, 3, 3, 2))
    out = call(layer, "est:spatial_avg", W)
    assert_allclose(out, np.broadcast_to(W.mean(axis=(2, 3), keepdims=True), W.shape),
                    rtol=RTOL, atol=1e-15)
    assert_array_equal(call(layer, "est:spatial_avg", W[0, 0]), W[0, 0])  # 2-D: b = 1
    with pytest.raises(ValueError, match="must divide d = 6"):
        call(layer, "est:spatial_avg", np.ones(6), b=4)


# ---------------------------------------------------------------- est:dist_agg


@given(SEEDS, st.integers(1, 4), st.integers(1, 4), st.sampled_from(["thesis", "code"]))
def test_dist_agg_shards_equal_batch_factors(layer, seed, K, per_shard, order):
    """Equal shards of per-sample-separable factors (mean_n h_n^2, mean_n s_n^2): the shard
    average equals the factor of the concatenated batch; F_SUM follows the chosen order."""
    rng = np.random.default_rng(seed)
    h, s = rng.standard_normal((K * per_shard, 3)), rng.standard_normal((K * per_shard, 2))
    H_k = (h**2).reshape(K, per_shard, 3).mean(axis=1)
    S_k = (s**2).reshape(K, per_shard, 2).mean(axis=1)
    out = call(layer, "est:dist_agg", H_k, S_k, order=order, lam=1e-3)
    if order == "thesis":
        assert_allclose(out["H_SUM"], (h**2).mean(axis=0), rtol=RTOL)
        assert_allclose(out["S_SUM"], (s**2).mean(axis=0), rtol=RTOL)

        def mm(v):
            return (v - v.min()) / (v.max() - v.min())

        assert_allclose(out["F_SUM"], np.outer(mm(out["S_SUM"]), mm(out["H_SUM"])) + 1e-3,
                        rtol=RTOL, atol=ATOL)
    else:
        H_norm = [(v - v.min()) / (v.max() - v.min()) for v in H_k]
        S_norm = [(v - v.min()) / (v.max() - v.min()) for v in S_k]
        assert_allclose(out["H_SUM"], np.mean(H_norm, axis=0), rtol=RTOL, atol=ATOL)
        assert_allclose(out["F_SUM"], np.outer(np.mean(S_norm, axis=0), out["H_SUM"]) + 1e-3,
                        rtol=RTOL, atol=ATOL)


def test_dist_agg_thesis_scale_invariance(layer):
    """thesis order: multiplying every raw H factor by c > 0 leaves F_SUM unchanged."""
    rng = np.random.default_rng(1)
    H, S = rng.random((3, 4)), rng.random((3, 2))
    base = call(layer, "est:dist_agg", H, S)["F_SUM"]
    assert_allclose(call(layer, "est:dist_agg", 7.5 * H, S)["F_SUM"], base, rtol=RTOL)
    with pytest.raises(ValueError, match="same K"):
        call(layer, "est:dist_agg", H, S[:2])


def test_float32_follows_float64(typed_layer):
    """Every factor estimator keeps within float32 rounding of the float64 closed form."""
    x = factor(0, 6)
    mm = call(typed_layer, "est:minmax", x)
    assert_allclose(mm, (x - x.min()) / (x.max() - x.min()), rtol=1e-5, atol=1e-6)
    s = x[:3]
    s_mm = (s - s.min()) / (s.max() - s.min())
    out = call(typed_layer, "est:efim", x, s, lam=1e-2)
    assert_allclose(out["F"], np.outer(s_mm, mm) + 1e-2, rtol=1e-5, atol=1e-6)
