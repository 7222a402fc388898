"""Reference problems of INVENTORY §1.2 added for the fo/zo/so families: closed forms.

Oracles: known minimisers and values (Rosenbrock, Nesterov's worst case, the saddle's wells,
the Reddi sequence), SciPy solvers (least_squares, minimize with bounds) as independent
optimisers, and central differences of the exact loss / gradient / Hessian. Differences are
used here only, never in the library: step h = 1e-5 (1e-4 for third derivatives), error
O(h^2 |f'''|) + O(eps |f| / h), hence the tolerance DIFF_RTOL = 1e-6 relative to the norm.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares, minimize

import reference.problems as rp
from reference.problems.classic import NesterovWorst, Rosenbrock, Saddle, ZOTest
from reference.problems.datasets import digits
from reference.problems.online import OnlineConvex

DIFF_RTOL = 1e-6
H = 1e-5

# (ID, make options) of every vector-parameter problem, for the difference checks
VECTOR_CASES = [
    ("prob:rosenbrock", {"dim": 2}),
    ("prob:rosenbrock", {"dim": 7}),
    ("prob:nls", {"kind": "exp", "residual": "nonzero", "n_points": 30}),
    ("prob:nls", {"kind": "rosenbrock", "residual": "nonzero", "c": -1.0, "reduction": "sum"}),
    ("prob:saddle", {"kind": "rotated", "phi": 35.0}),
    ("prob:saddle", {"kind": "nd", "dim": 4, "n_neg": 2}),
    ("prob:nesterov_worst", {"dim": 12, "L": 3.0}),
    ("prob:smooth_nonconvex", {"kind": "log", "dim": 4}),
    ("prob:smooth_nonconvex", {"kind": "cos", "dim": 4}),
    ("prob:zo_test", {"kind": "cubic", "dim": 3}),
    ("prob:zo_test", {"kind": "quartic", "dim": 3}),
    ("prob:zo_test", {"kind": "logistic", "dim": 3, "n_samples": 7}),
    ("prob:double_well", {"dim": 2, "a": 1.0, "b": 4.0, "n_samples": 4, "noise": 0.5}),
    ("prob:online_convex", {"family": "quadratic", "T": 9, "dim": 3}),
]


def central(fn, x: np.ndarray, h: float = H) -> np.ndarray:
    """Central differences of ``fn`` (scalar or array valued) along each coordinate of x."""
    cols = [(np.asarray(fn(x + h * e)) - np.asarray(fn(x - h * e))) / (2 * h)
            for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


def assert_close(actual, expected, rtol=DIFF_RTOL, atol=1e-9):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    gap = np.linalg.norm(actual - expected)
    assert gap <= rtol * np.linalg.norm(expected) + atol, gap


@pytest.mark.parametrize("pid, options", VECTOR_CASES, ids=lambda o: str(o))
def test_gradient_hessian_hvp_against_differences(pid, options):
    rng = np.random.default_rng(7)
    problem = rp.get(pid).make(rng, **options)
    x = problem.init_params(rng)["x"]

    def f(z):
        return problem.loss({"x": z})

    def g(z):
        return problem.grad({"x": z})["x"]

    assert_close(g(x), central(f, x))
    Hx = problem.hessian({"x": x})
    assert_close(Hx, central(g, x))
    assert np.array_equal(Hx, Hx.T)
    v = rng.standard_normal(x.size)
    assert_close(problem.hvp({"x": x}, {"x": v})["x"], Hx @ v, rtol=1e-12)
    # the mean loss is the mean of per-sample losses; batch gradient = mean per-sample gradient
    G = problem.per_sample_grads({"x": x})
    scale = 1.0 / G.shape[0] if getattr(problem, "reduction", "mean") == "mean" else 1.0
    assert_close(scale * G.sum(axis=0), g(x), rtol=1e-12)
    assert_close(problem.fisher_emp({"x": x}), scale * G.T @ G, rtol=1e-12)


# --- prob:rosenbrock ---------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3, 10])
def test_rosenbrock_minimum_at_ones(dim):
    problem = Rosenbrock(dim)
    x_star, f_star = problem.optimum()
    assert np.array_equal(x_star["x"], np.ones(dim)) and f_star == 0.0
    assert problem.loss(x_star) == 0.0
    assert np.array_equal(problem.grad(x_star)["x"], np.zeros(dim))
    assert np.linalg.eigvalsh(problem.hessian(x_star))[0] > 0.0
    # the textbook start: f(-1.2, 1) = 100 (1 - 1.44)^2 + 2.2^2 = 24.2
    assert Rosenbrock(2).loss(Rosenbrock(2).classic_start()) == pytest.approx(24.2, rel=1e-14)
    # scipy's own Rosenbrock (same definition) as an independent implementation
    from scipy.optimize import rosen, rosen_der, rosen_hess

    x = np.random.default_rng(dim).uniform(-2, 2, dim)
    assert problem.loss({"x": x}) == pytest.approx(rosen(x), rel=1e-14)
    assert_close(problem.grad({"x": x})["x"], rosen_der(x), rtol=1e-14)
    assert_close(problem.hessian({"x": x}), rosen_hess(x), rtol=1e-14)


def test_rosenbrock_rejects_dim_one():
    with pytest.raises(ValueError, match="dim"):
        Rosenbrock(1)


# --- prob:nls ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exp", "rosenbrock"])
@pytest.mark.parametrize("residual", ["zero", "nonzero"])
def test_nls_gauss_newton_split_and_optimum(kind, residual):
    rng = np.random.default_rng(3)
    problem = rp.get("prob:nls").make(rng, kind=kind, residual=residual, c=-1.0)
    params = problem.init_params(rng)
    r, J = problem.residuals(params), problem.jacobian(params)
    N = r.size
    assert problem.loss(params) == pytest.approx(0.5 * r @ r / N, rel=1e-14)
    assert_close(problem.grad(params)["x"], J.T @ r / N, rtol=1e-14)
    assert_close(problem.ggn(params), J.T @ J / N, rtol=1e-14)
    assert_close(J, central(lambda z: problem.residuals({"x": z}), params["x"]))
    # H - G = (1/N) sum_n r_n Hess r_n: differences of the residual Jacobian
    dJ = central(lambda z: problem.jacobian({"x": z}), params["x"])  # (N, P, P)
    assert_close(problem.hessian(params) - problem.ggn(params), np.einsum("n,nij->ij", r, dJ) / N)
    assert problem.jac_out(params).shape == (N, 1, 2)
    assert np.array_equal(problem.out_hess(params), np.ones((N, 1, 1)))
    # the optimum against scipy's least_squares (trust region, independent code)
    (x_star, f_star) = problem.optimum()
    fit = least_squares(lambda z: problem.residuals({"x": z}), x_star["x"] + 0.1,
                        xtol=1e-15, ftol=1e-15, gtol=1e-15)
    assert_close(x_star["x"], fit.x, rtol=1e-7)
    assert np.linalg.norm(problem.grad(x_star)["x"]) <= 1e-10
    if residual == "zero":
        assert f_star <= 1e-25
    else:
        assert f_star > 1e-6
        # a non-zero residual with curvature: the Hessian differs from the GGN at the optimum
        gap = problem.hessian(x_star) - problem.ggn(x_star)
        assert np.linalg.norm(gap) > 1e-6 * np.linalg.norm(problem.ggn(x_star))


def test_nls_rosenbrock_zero_residual_is_half_rosenbrock():
    problem = rp.get("prob:nls").make(None, kind="rosenbrock", reduction="sum")
    x = {"x": np.array([-0.3, 0.8])}
    assert problem.loss(x) == pytest.approx(0.5 * Rosenbrock(2).loss(x), rel=1e-14)
    assert problem.optimum()[0]["x"].tolist() == [1.0, 1.0]


# --- prob:online_convex ------------------------------------------------------------------


@pytest.mark.parametrize("C", [2.5, 3.0, 10.0])
def test_reddi_sequence_comparator_and_regret(C):
    T = 30
    problem = rp.get("prob:online_convex").make(None, family="reddi", T=T, C=C)
    assert [problem.loss_t({"x": np.array([1.0])}, t) for t in (1, 2, 3, 4)] == [C, -1, -1, C]
    assert problem.grad_t({"x": np.array([0.3])}, 4)["x"].tolist() == [C]
    # sum_t f_t(x) = (T/3)(C - 2) x, minimised over [-1, 1] at x = -1
    x, value = problem.comparator()
    assert x.tolist() == [-1.0] and value == pytest.approx(-(T / 3) * (C - 2), rel=1e-14)
    # x_t = 1 throughout: incurred (T/3)(C - 2), regret twice that
    assert problem.regret(np.ones((T, 1))) == pytest.approx(2 * (T / 3) * (C - 2), rel=1e-14)
    assert problem.regret([{"x": np.array([-1.0])}] * T) == pytest.approx(0.0, abs=1e-12)
    # a prefix: after t = 1 the comparator is -1 with f_1(-1) = -C
    assert problem.comparator(1) == (pytest.approx([-1.0]), pytest.approx(-C))
    assert problem.project({"x": np.array([4.0])})["x"].tolist() == [1.0]
    with pytest.raises(ValueError, match="C > 2"):
        rp.get("prob:online_convex").make(None, family="reddi", C=2.0)
    with pytest.raises(ValueError, match="round"):
        problem.loss_t({"x": np.array([0.0])}, 0)


@pytest.mark.parametrize("family", ["linear", "quadratic"])
def test_online_comparator_against_a_box_solver(family):
    rng = np.random.default_rng(11)
    problem = rp.get("prob:online_convex").make(rng, family=family, T=12, dim=3, R=0.7)
    x, value = problem.comparator()

    def total(z):
        return np.sum(problem.per_sample_losses({"x": z}))

    if family == "linear":  # a linear function is minimised at a vertex of the box
        vertices = np.array(np.meshgrid(*[[-0.7, 0.7]] * 3)).reshape(3, -1).T
        best = min(total(v) for v in vertices)
    else:
        fit = minimize(total, np.zeros(3), method="L-BFGS-B", bounds=[(-0.7, 0.7)] * 3,
                       options={"ftol": 1e-15, "gtol": 1e-12})
        best = fit.fun
        assert_close(x, fit.x, rtol=1e-6)
    assert value == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert np.all(np.abs(x) <= 0.7)
    assert problem.optimum()[1] == pytest.approx(value / 12, rel=1e-14)
    # regret of the comparator itself played every round is zero; of anything else >= 0
    assert problem.regret(np.tile(x, (12, 1))) == pytest.approx(0.0, abs=1e-10)
    assert problem.regret(rng.uniform(-0.7, 0.7, (12, 3))) >= -1e-12
    # G bounds every gradient over X
    G = problem.constants()["G"]
    for z in rng.uniform(-0.7, 0.7, (50, 3)):
        assert np.linalg.norm(problem.per_sample_grads({"x": z}), axis=1).max() <= G + 1e-12


# --- prob:saddle -------------------------------------------------------------------------


def test_simple_saddle_is_x1_squared_minus_x2_squared():
    problem = rp.get("prob:saddle").make(None)
    x = {"x": np.array([0.3, -1.7])}
    assert problem.loss(x) == pytest.approx(0.09 - 2.89, rel=1e-14)
    assert problem.grad(x)["x"].tolist() == pytest.approx([0.6, 3.4], rel=1e-14)
    assert problem.inertia({"x": np.zeros(2)}) == (1, 1, 0)
    assert problem.optimum() is None


@pytest.mark.parametrize("dim, n_neg", [(2, 1), (5, 2), (4, 4)])
def test_random_and_nd_saddle_inertia_and_wells(dim, n_neg):
    rng = np.random.default_rng(dim + n_neg)
    zero = {"x": np.zeros(dim)}
    flat = rp.get("prob:saddle").make(rng, kind="random", dim=dim, n_neg=n_neg)
    assert flat.inertia(zero) == (dim - n_neg, n_neg, 0)
    well = rp.get("prob:saddle").make(rng, kind="nd", dim=dim, n_neg=n_neg)
    assert well.inertia(zero) == (dim - n_neg, n_neg, 0)
    x_star, f_star = well.optimum()
    assert np.linalg.norm(well.grad(x_star)["x"]) <= 1e-13
    assert well.inertia(x_star) == (dim, 0, 0)
    assert well.loss(x_star) == pytest.approx(f_star, rel=1e-12)
    # no lower value on random points of norm up to 3
    points = 3 * rng.uniform(-1, 1, (200, dim))
    assert min(well.loss({"x": p}) for p in points) >= f_star - 1e-12


@pytest.mark.parametrize("phi", [0.0, 30.0, 90.0])
def test_rotated_saddle(phi):
    problem = rp.get("prob:saddle").make(None, kind="rotated", phi=phi)
    c, s = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
    # A = R diag(1, -1) R^T: the unstable direction is R e_2 = (-s, c)
    assert_close(problem.A @ np.array([-s, c]), -np.array([-s, c]), rtol=1e-14, atol=1e-15)
    x_star, f_star = problem.optimum()  # lambda_min = -1, gamma = 1: ||x*|| = 1, f* = -1/4
    assert np.linalg.norm(x_star["x"]) == pytest.approx(1.0, rel=1e-14)
    assert abs(x_star["x"] @ np.array([-s, c])) == pytest.approx(1.0, rel=1e-14)
    assert f_star == pytest.approx(-0.25, rel=1e-14)
    with pytest.raises(ValueError, match="phi"):
        rp.get("prob:saddle").make(None, kind="rotated", phi=120.0)


# --- prob:nesterov_worst -----------------------------------------------------------------


@pytest.mark.parametrize("dim, L", [(1, 1.0), (7, 2.0), (200, 1.0)])
def test_nesterov_worst_optimum_and_spectrum(dim, L):
    problem = NesterovWorst(dim, L)
    x_star, f_star = problem.optimum()
    H = problem.hessian(x_star)
    # x* solves (L/4)(Lap x - e_1) = 0; f* = -(L/8) d/(d+1)
    assert_close(x_star["x"], np.linalg.solve(4 * H / L, np.eye(dim)[0]), rtol=1e-10)
    assert np.linalg.norm(problem.grad(x_star)["x"]) <= 1e-13 * L
    assert problem.loss(x_star) == pytest.approx(f_star, rel=1e-12)
    assert f_star == pytest.approx(-(L / 8) * dim / (dim + 1), rel=1e-15)
    lam = np.linalg.eigvalsh(H)
    consts = problem.constants()
    assert consts["mu"] == pytest.approx(lam[0], rel=1e-9)
    assert consts["lambda_max"] == pytest.approx(lam[-1], rel=1e-12)
    assert lam[-1] <= consts["L"]
    assert problem.loss(problem.classic_start()) == 0.0
    assert rp.get("prob:nesterov_worst").make(None).dim == 200


# --- prob:smooth_nonconvex ---------------------------------------------------------------


def test_smooth_nonconvex_bounds():
    rng = np.random.default_rng(5)
    log = rp.get("prob:smooth_nonconvex").make(rng, kind="log", dim=4)
    cos = rp.get("prob:smooth_nonconvex").make(rng, kind="cos", dim=4)
    x_star, f_star = log.optimum()
    assert np.array_equal(x_star["x"], log.c) and f_star == 0.0 and log.loss(x_star) == 0.0
    assert cos.optimum() is None
    points = 10 * rng.standard_normal((200, 4))
    for problem in (log, cos):
        L = problem.constants()["L"]
        assert max(np.abs(np.linalg.eigvalsh(problem.hessian({"x": p}))).max()
                   for p in points) <= L
    G = log.constants()["G"]
    assert max(np.linalg.norm(log.grad({"x": p})["x"]) for p in points) <= G


def test_smooth_mlp_regression_has_bounded_data():
    problem = rp.get("prob:smooth_nonconvex[mlp]").make(np.random.default_rng(0))
    assert problem.id == "prob:smooth_nonconvex[mlp]" and problem.loss_name == "mse_half"
    assert np.abs(problem.X).max() <= 1.0 and np.abs(problem.y).max() < 1.0


# --- prob:zo_test ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["quadratic", "cubic", "quartic", "logistic"])
def test_zo_test_third_derivative_against_hessian_differences(kind):
    rng = np.random.default_rng(2)
    problem = rp.get("prob:zo_test").make(rng, kind=kind, dim=4, n_samples=9)
    x = problem.init_params(rng)
    T = problem.third_derivative(x)
    assert T.shape == (4, 4, 4)
    assert_close(T, central(lambda z: problem.hessian({"x": z}), x["x"], h=1e-4), atol=1e-8)
    for perm in [(1, 0, 2), (0, 2, 1), (2, 1, 0)]:
        assert np.array_equal(T, np.transpose(T, perm)) or np.allclose(
            T, np.transpose(T, perm), rtol=1e-14, atol=1e-16)
    if kind == "quadratic":
        assert np.array_equal(T, np.zeros((4, 4, 4)))
        x_star, f_star = problem.optimum()
        assert np.linalg.norm(problem.grad(x_star)["x"]) <= 1e-12
        assert problem.loss(x_star) == pytest.approx(f_star, rel=1e-12)
    if kind == "cubic":  # sum x_i^3 contributes 6 on the diagonal
        assert_close(np.einsum("iii->i", T), np.full(4, 6.0), rtol=1e-14)


def test_zo_test_quartic_third_derivative_is_six_x():
    problem = ZOTest(np.eye(3), np.zeros(3), c4=1.0)
    x = np.array([0.5, -2.0, 1.0])
    T = problem.third_derivative({"x": x})
    expected = np.zeros((3, 3, 3))
    expected[np.arange(3), np.arange(3), np.arange(3)] = 6 * x
    assert np.array_equal(T, expected)


# --- prob:double_well --------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("a, b", [(1.0, 4.0), (2.0, 8.0), (3.0, 3.0)])
def test_double_well_minima_and_finite_sum(dim, a, b):
    rng = np.random.default_rng(0)
    problem = rp.get("prob:double_well").make(rng, dim=dim, a=a, b=b, n_samples=5, noise=0.7)
    wells = problem.minima()
    assert len(wells) == 2
    left, right = sorted(wells, key=lambda m: m["x"][0])
    for well, centre, curv in ((left, -1.0, a), (right, 1.0, b)):
        assert abs(well["x"][0] - centre) < 0.1
        # near the centre the other well's weight is ~exp(-2 min(a, b)): curvature ~ a or b
        assert well["curvatures"].max() == pytest.approx(curv, rel=0.3)
        assert well["f"] == pytest.approx(0.0, abs=0.2)
    if a == b:  # symmetric: equal depths
        assert left["f"] == pytest.approx(right["f"], rel=1e-12, abs=1e-14)
    # tilts sum to zero: the mean loss is the potential; per-sample gradients differ by c_n
    x = problem.init_params(rng)
    assert problem.loss(x) == pytest.approx(problem._f(x["x"]), rel=1e-12, abs=1e-14)
    G = problem.per_sample_grads(x)
    assert_close(G - G.mean(axis=0), problem.c, rtol=1e-12)
    x_star, f_star = problem.optimum()
    assert f_star == min(left["f"], right["f"])


# --- prob:digits, prob:gmm_cls -----------------------------------------------------------


def test_digits_shapes_split_and_standardisation():
    X_train, y_train = digits("train")
    X_test, y_test = digits("test")
    assert X_train.shape == (1438, 64) and X_test.shape == (359, 64)  # 20% of 1797 rounded
    assert set(np.unique(y_train)) == set(range(10))
    varying = X_train.std(axis=0) > 0
    assert np.abs(X_train.mean(axis=0)).max() < 1e-12
    assert np.allclose(X_train.std(axis=0)[varying], 1.0, rtol=1e-12)
    problem = rp.get("prob:digits").make(np.random.default_rng(0))
    assert problem.id == "prob:digits" and problem.widths == (64, 10)
    assert problem.num_samples() == 1438 and np.array_equal(problem.X, X_train)
    small = rp.get("prob:digits").make(np.random.default_rng(1), n_samples=20, hidden=(8,),
                                       split="test")
    assert small.widths == (64, 8, 10) and small.num_samples() == 20
    assert all(any(np.array_equal(row, t) for t in X_test) for row in small.X[:3])


def test_gmm_cls_label_noise_fraction():
    clean = rp.get("prob:gmm_cls").make(np.random.default_rng(4), n_samples=100, dim=3,
                                        classes=4)
    noisy = rp.get("prob:gmm_cls").make(np.random.default_rng(4), n_samples=100, dim=3,
                                        classes=4, label_noise=0.3)
    assert np.array_equal(clean.X, noisy.X)
    assert np.sum(clean.y != noisy.y) == 30
    assert noisy.widths == (3, 4) and noisy.id == "prob:gmm_cls"


def test_invalid_options_raise():
    with pytest.raises(ValueError, match="kind"):
        rp.get("prob:nls").make(None, kind="cubic")
    with pytest.raises(ValueError, match="n_neg"):
        Saddle.make(np.random.default_rng(0), kind="random", dim=3, n_neg=4)
    with pytest.raises(ValueError, match="family"):
        OnlineConvex.make(None, family="adversarial")
    with pytest.raises(ValueError, match="label_noise"):
        rp.get("prob:gmm_cls").make(np.random.default_rng(0), label_noise=1.5)
    with pytest.raises(NotImplementedError, match="fisher_true"):
        Rosenbrock(2).fisher_true({"x": np.zeros(2)})


def test_double_well_merges_into_one_minimum_when_wells_are_wide():
    # a = b = 1/2: Gaussians of variance 2 two units apart are unimodal; the minimum is x = 0
    problem = rp.get("prob:double_well").make(None, a=0.5, b=0.5)
    wells = problem.minima()
    assert len(wells) == 1 and abs(wells[0]["x"][0]) <= 1e-12
