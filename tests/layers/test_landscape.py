"""The loss-landscape estimators `est:landscape*` (INVENTORY §3.8; 002 App. B, 004 Fig. 2), both
layers.

Oracles: (a) the grid's printed bounds and layout; interpolation (reference only: the torch layer
raises NotImplementedError for it, by design) is exact at data points lying on grid nodes, exact
to rounding for a linear function inside the hull with method="linear", close for a quadratic
with the printed cubic method (bound 0.05 on a function of range ~3 sampled at spacing ~1/7;
observed <= 0.016), NaN outside the hull; the PCA equals NumPy's SVD of the centred data with
the sign convention applied, its variances np.cov's eigenvalues; (b) on a quadratic the slice
equals the closed form L(theta0) + g_i du + g_j dv + (A_ii du^2 + 2 A_ij du dv + A_jj dv^2)/2,
looped and batched (odd chunks); (c) on L = L* + (x - x*)^T A (x - x*)/2 the slice through x*
along the top eigenvector is L* + s^2 lambda_max / 2. Expected values are NumPy closed forms,
never the other layer's numbers. Errors: the same type and message in both layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from contract.specs.landscape import SPECS
from verify.strategies import SEEDS

RTOL, ATOL = 1e-10, 1e-12


def lsc(layer):
    return layer.module("estimators.landscape")


def symmetric_gap(rng: np.random.Generator, n: int, gap: float = 0.5) -> np.ndarray:
    """Symmetric A with eigenvalues in [-1, 3.5] and a top eigenvalue separated by ``gap``."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.sort(rng.uniform(-1.0, 2.0, n))
    lam[-1] = lam[-2] + gap + rng.uniform(0.0, 1.0) if n > 1 else lam[-1]
    return (Q * lam) @ Q.T


def signed(V: np.ndarray) -> np.ndarray:
    """The sign convention, written out: each row's largest-|.| entry made positive."""
    return np.stack([row * np.sign(row[np.argmax(np.abs(row))]) for row in V])


# --- (a) the printed grid ---------------------------------------------------------------------


@given(seed=SEEDS, E=st.integers(1, 12), n_grid=st.integers(2, 9))
def test_grid_bounds_and_layout(layer, seed, E, n_grid):
    W = np.random.default_rng(seed).standard_normal((E, 2))
    out = layer.to_numpy(lsc(layer).landscape(layer.to_layer(W), layer.to_layer(W[:, 0]),
                                              n_grid=n_grid, method="none"))
    X, Y = out["X"], out["Y"]
    assert out["Z"] is None and X.shape == Y.shape == (n_grid, n_grid)
    assert_allclose(X, np.tile(np.linspace(W[:, 0].min(), W[:, 0].max(), n_grid), (n_grid, 1)),
                    rtol=RTOL, atol=ATOL)
    assert_allclose(Y.T, np.tile(np.linspace(W[:, 1].min(), W[:, 1].max(), n_grid), (n_grid, 1)),
                    rtol=RTOL, atol=ATOL)
    assert (X[0, 0], X[0, -1], Y[0, 0], Y[-1, 0]) == (W[:, 0].min(), W[:, 0].max(),
                                                      W[:, 1].min(), W[:, 1].max())


def test_default_grid_is_the_printed_200(reference_layer):
    W = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = lsc(reference_layer).landscape(W, W.sum(axis=1))
    assert out["X"].shape == out["Z"].shape == (200, 200)
    assert_allclose(out["Z"], out["X"] + out["Y"], rtol=1e-6, atol=1e-6)


def test_torch_interpolation_not_implemented(torch_layer):
    W = torch.eye(3, 2, dtype=torch.float64)
    for method in ("cubic", "linear", "nearest"):
        with pytest.raises(NotImplementedError, match="method='none'.*reference"):
            lsc(torch_layer).landscape(W, W[:, 0], method=method)


def _on_grid_nodes(n_grid: int, rng: np.random.Generator) -> np.ndarray:
    """Scattered grid nodes that include (0, 0) and (1, 1), so the grid is linspace(0, 1)."""
    g = np.linspace(0.0, 1.0, n_grid)
    picks = rng.choice(n_grid * n_grid, size=12, replace=False)
    nodes = np.c_[g[picks % n_grid], g[picks // n_grid]]
    return np.unique(np.vstack([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], nodes]), axis=0)


@pytest.mark.parametrize("method", ["cubic", "linear", "nearest"])
@given(seed=SEEDS)
def test_interpolation_exact_at_data_points(reference_layer, method, seed):
    n_grid = 9
    W = _on_grid_nodes(n_grid, np.random.default_rng(seed))
    L = W[:, 0] ** 3 - 2.0 * W[:, 0] * W[:, 1] ** 2 + W[:, 1]
    out = lsc(reference_layer).landscape(W, L, n_grid=n_grid, method=method)
    col, row = np.rint(W * (n_grid - 1)).astype(int).T
    assert_allclose(out["Z"][row, col], L, rtol=1e-9, atol=1e-9, err_msg=f"seed={seed}")


@given(seed=SEEDS)
def test_interpolation_linear_exact_quadratic_close_nan_outside(reference_layer, seed):
    rng = np.random.default_rng(seed)
    g = np.linspace(0.0, 1.0, 8)
    W = np.c_[np.repeat(g, 8), np.tile(g, 8)] + rng.uniform(-0.03, 0.03, (64, 2))
    W = W[W[:, 0] + W[:, 1] <= 1.2]  # a hull cut by a diagonal: the corner (1, 1) is outside

    def quad(x, y):
        return 1.0 + x - 2.0 * y + 0.5 * x * x + x * y - y * y

    def lin(x, y):
        return 1.0 + x - 2.0 * y

    est = lsc(reference_layer).landscape
    cubic = est(W, quad(W[:, 0], W[:, 1]), n_grid=25)
    X, Y, Z = cubic["X"], cubic["Y"], cubic["Z"]
    inside = np.isfinite(Z)
    assert np.isnan(Z[-1, -1]) and inside.sum() > 100, f"seed={seed}"
    assert np.abs(Z - quad(X, Y))[inside].max() <= 0.05, f"seed={seed}"
    linear = est(W, lin(W[:, 0], W[:, 1]), n_grid=25, method="linear")["Z"]
    assert np.array_equal(np.isfinite(linear), inside), f"seed={seed}"
    assert_allclose(linear[inside], lin(X, Y)[inside], rtol=1e-12, atol=1e-12)


def test_collinear_points_raise(reference_layer):
    W = np.c_[np.arange(5.0), 2.0 * np.arange(5.0)]
    with pytest.raises(ValueError, match="W: method='cubic' needs a 2-D triangulation"):
        lsc(reference_layer).landscape(W, W[:, 0])


# --- (a) the PCA ------------------------------------------------------------------------------


@given(seed=SEEDS, m=st.integers(6, 12), n=st.integers(2, 5), k=st.integers(1, 2))
def test_pca_is_numpy_svd_with_sign_convention(layer, seed, m, n, k):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    D = (rng.standard_normal((m, n)) * 3.0 ** -np.arange(n)) @ Q.T + rng.standard_normal(n)
    out = layer.to_numpy(lsc(layer).landscape_pca(layer.to_layer(D), n_components=k))
    Dc = D - D.mean(axis=0)
    _, S, Vt = np.linalg.svd(Dc)
    V = signed(Vt[:k])
    assert_allclose(out["components"], V, rtol=1e-8, atol=1e-8, err_msg=f"seed={seed}")
    assert_allclose(np.abs(out["components"]).max(axis=1),
                    out["components"][np.arange(k), np.abs(out["components"]).argmax(axis=1)])
    cov = np.sort(np.linalg.eigvalsh(np.cov(D.T)))[::-1]
    assert_allclose(out["explained_variance"], cov[:k], rtol=1e-9, atol=ATOL)
    assert_allclose(out["explained_variance_ratio"], cov[:k] / cov.sum(), rtol=1e-9, atol=ATOL)
    assert_allclose(out["mean"], D.mean(axis=0), rtol=RTOL, atol=ATOL)
    assert_allclose(out["projected"], Dc @ V.T, rtol=1e-8, atol=1e-8)


# --- (b) the exact 2-D slice ------------------------------------------------------------------


def _quadratic_loss(layer, A, g, c):
    """L(params) = theta^T A theta / 2 + g^T theta + c, theta = [vec_row(W1), b]; with a
    leading batch dimension on W1 it returns (B,)."""
    xp = layer.xp
    A_l, g_l = layer.to_layer(A), layer.to_layer(g)

    def loss(params):
        W, b = params["W1"], params["b"]
        batched = W.ndim == 3
        B = W.shape[0] if batched else 1
        theta = xp.concatenate([W.reshape(B, -1), b[None, :] + 0.0 * W.reshape(B, -1)[:, :2]], 1)
        value = 0.5 * xp.einsum("bi,ij,bj->b", theta, A_l, theta) + theta @ g_l + c
        return value if batched else value[0]

    return loss


@pytest.mark.parametrize("batched,chunk", [(False, 1024), (True, 7), (True, 1024)])
@given(seed=SEEDS, i=st.integers(0, 5), dj=st.integers(1, 5))
def test_slice2d_is_the_quadratic_closed_form(layer, batched, chunk, seed, i, dj):
    rng = np.random.default_rng(seed)
    A, g, c = symmetric_gap(rng, 8), rng.standard_normal(8), float(rng.normal())
    W1, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    j = (i + dj) % 6  # two distinct entries of W1 (flat row-major positions 0..5)
    X, Y = np.meshgrid(np.linspace(-1.0, 1.0, 5), np.linspace(-2.0, 0.5, 4))
    params = {"W1": layer.to_layer(W1), "b": layer.to_layer(b)}
    out = layer.to_numpy(lsc(layer).landscape_slice2d(
        _quadratic_loss(layer, A, g, c), params, "W1", layer.to_layer(X), layer.to_layer(Y),
        index=(i, j), batched=batched, chunk=chunk))
    theta0 = np.r_[W1.reshape(-1), b]
    grad = A @ theta0 + g
    du, dv = X - theta0[i], Y - theta0[j]
    L0 = 0.5 * theta0 @ A @ theta0 + g @ theta0 + c
    want = L0 + grad[i] * du + grad[j] * dv + 0.5 * (A[i, i] * du**2 + 2 * A[i, j] * du * dv
                                                     + A[j, j] * dv**2)
    assert_allclose(out["Z"], want, rtol=1e-9, atol=1e-9, err_msg=f"seed={seed}")
    assert_allclose(layer.to_numpy(params["W1"]), W1)  # params untouched


def test_slice2d_two_entry_parameter(layer):
    X, Y = np.meshgrid([0.0, 1.0, 2.0], [-1.0, 3.0])
    params = {"w": layer.to_layer(np.array([[5.0, 7.0]])), "s": layer.to_layer(np.array([2.0]))}

    def loss(p):
        return p["s"][0] * (p["w"][0, 0] ** 2 + 3.0 * p["w"][0, 1])

    out = layer.to_numpy(lsc(layer).landscape_slice2d(loss, params, "w", X, Y))
    assert_allclose(out["Z"], 2.0 * (X**2 + 3.0 * Y), rtol=RTOL, atol=ATOL)


# --- (c) the 1-D slice along the top Hessian eigenvector --------------------------------------


@pytest.mark.parametrize("batched", [False, True])
@given(seed=SEEDS, n=st.integers(1, 6), n_points=st.integers(2, 9))
def test_slice1d_is_s_squared_lambda_max_over_two(typed_layer, batched, seed, n, n_points):
    layer = typed_layer
    rng = np.random.default_rng(seed)
    A, x_star, L_star = symmetric_gap(rng, n), rng.standard_normal(n), float(rng.normal())
    A_l, xs_l = layer.to_layer(A), layer.to_layer(x_star)

    def loss(x):
        r = x - xs_l
        return 0.5 * (r @ A_l * r).sum(-1) + L_star

    out = lsc(layer).landscape_slice1d(loss, xs_l, H=A_l, s_range=(-0.5, 2.0),
                                       n_points=n_points, batched=batched, chunk=3)
    lam, V = np.linalg.eigh(A)
    s = np.linspace(-0.5, 2.0, n_points)
    tol = 1e-10 if layer.dtype == "float64" else 1e-5
    assert_allclose(out["lambda_max"], lam[-1], rtol=tol, atol=tol)
    got = layer.to_numpy(out)
    assert_allclose(got["s"], s, rtol=tol, atol=tol)
    assert_allclose(got["loss"], L_star + s**2 * lam[-1] / 2, rtol=tol, atol=tol * 10,
                    err_msg=f"seed={seed}")
    assert_allclose(got["v"], signed(V[:, -1][None, :])[0], atol=tol * 100)


def test_slice1d_given_direction_is_normalized(layer):
    x_star = np.array([1.0, -2.0, 0.5])
    v = np.array([0.0, -3.0, 4.0])  # largest |.| entry 4 > 0: the convention keeps the sign
    xs_l = layer.to_layer(x_star)

    def loss(x):
        return ((x - xs_l) ** 2).sum() * 3.0

    out = layer.to_numpy(lsc(layer).landscape_slice1d(loss, xs_l, -layer.to_layer(v),
                                                      n_points=5))
    assert out["lambda_max"] is None
    assert_allclose(out["v"], v / 5.0, rtol=RTOL, atol=ATOL)
    assert_allclose(out["loss"], 3.0 * np.linspace(-1.0, 1.0, 5) ** 2, rtol=RTOL, atol=ATOL)


def test_defaults_are_shared(layer):
    for key, spec in SPECS.items():
        entry = layer.estimators.get(key)
        assert dict(entry.options) == dict(spec.options) and entry.doc == spec.doc


# --- errors: the same in both layers ----------------------------------------------------------


def _errors(layer):
    m = lsc(layer)
    W = layer.to_layer(np.eye(3, 2))
    x = layer.to_layer(np.zeros(2))
    p = {"w": layer.to_layer(np.zeros(2)), "M": layer.to_layer(np.zeros((2, 2)))}
    G = layer.to_layer(np.zeros((2, 2)))

    def sq(q):
        return (q["w"] ** 2).sum()

    return [
        (ValueError, "Invalid method: 'spline'", lambda: m.landscape(W, W[:, 0], method="spline")),
        (ValueError, "Invalid n_grid: 1", lambda: m.landscape(W, W[:, 0], n_grid=1)),
        (TypeError, "n_grid must be an integer", lambda: m.landscape(W, W[:, 0], n_grid=2.0)),
        (ValueError, r"W must have shape \(E, 2\)", lambda: m.landscape(W.T, W[0])),
        (ValueError, r"L must have shape \(3,\)", lambda: m.landscape(W, W[:2, 0])),
        (ValueError, "Invalid n_components: 3", lambda: m.landscape_pca(W, n_components=3)),
        (ValueError, "zero total variance", lambda: m.landscape_pca(W * 0.0)),
        (ValueError, "Invalid name: 'v'", lambda: m.landscape_slice2d(sq, p, "v", G, G)),
        (ValueError, "give index=", lambda: m.landscape_slice2d(sq, p, "M", G, G)),
        (ValueError, "positions must differ",
         lambda: m.landscape_slice2d(sq, p, "M", G, G, index=(1, 1))),
        (ValueError, r"Invalid index\[1\]: 4",
         lambda: m.landscape_slice2d(sq, p, "M", G, G, index=(1, 4))),
        (ValueError, "X and Y must have the same shape",
         lambda: m.landscape_slice2d(sq, p, "w", G, G[0])),
        (ValueError, r"batched loss must return shape \(3,\)",
         lambda: m.landscape_slice2d(sq, p, "w", W[:, :1], W[:, 1:], batched=True)),
        (ValueError, "loss must return a scalar",
         lambda: m.landscape_slice2d(lambda q: q["w"], p, "w", G, G)),
        (TypeError, "loss must be callable", lambda: m.landscape_slice1d(3, x, v=x + 1)),
        (ValueError, "give exactly one of v", lambda: m.landscape_slice1d(sq, x)),
        (ValueError, "give exactly one of v", lambda: m.landscape_slice1d(sq, x, x + 1, G)),
        (ValueError, "v must be a nonzero vector", lambda: m.landscape_slice1d(sq, x, v=x)),
        (ValueError, "H must be symmetric",
         lambda: m.landscape_slice1d(sq, x, H=layer.to_layer(np.array([[0.0, 1.0], [0, 0]])))),
        (ValueError, r"Invalid s_range: \(1.0, 1.0\)",
         lambda: m.landscape_slice1d(sq, x, v=x + 1, s_range=(1.0, 1.0))),
        (ValueError, "Invalid n_points: 1", lambda: m.landscape_slice1d(sq, x, v=x + 1,
                                                                         n_points=1)),
        (TypeError, "batched must be a bool",
         lambda: m.landscape_slice1d(sq, x, v=x + 1, batched=1)),
    ]


def test_errors_name_the_parameter(layer):
    for kind, message, call in _errors(layer):
        with pytest.raises(kind, match=message):
            call()
