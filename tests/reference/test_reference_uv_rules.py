"""The unified-view rules ``rule:uv.*`` of the NumPy reference against their oracles.

INVENTORY §2.1: dense linear algebra (np.linalg.solve, scipy.linalg.sqrtm, eigh), orthogonal
and permutation equivariance, eigenvector-sign invariance, the diagonal fast path, K = I, the
extra oracles (clipping limits and bounds, the printed fixed point, the exact line search on a
parabola), the singular policy and the error messages.

Matrices are built from primitive draws (n, seed) as K = Q diag(lam) Q^T with Q Haar and lam
in [0.1, ~12] with gaps >= 0.2: condition numbers <= ~120 keep every float64 comparison at
rtol 1e-10 (errors are O(kappa n eps) ~ 1e-13), and the gaps keep the eigenbasis rules, which
are defined only for distinct eigenvalues, well defined.
"""

from __future__ import annotations

import math
import warnings
from types import MappingProxyType

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import reference
from reference.linalg import eigh_sym, matrix_power_apply
from reference.oracle import Oracle
from reference.problems.base import Problem
from reference.problems.quadratic import Quadratic
from reference.rules import unified_view as uv

RTOL, ATOL = 1e-10, 1e-12
EPS64 = np.finfo(np.float64).eps

CASES = st.tuples(st.integers(min_value=1, max_value=8), st.integers(0, 2**32 - 1))
STEP = st.floats(min_value=1e-2, max_value=3.0)


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar orthogonal matrix: QR of a Gaussian matrix with the signs of R's diagonal fixed."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def build(case: tuple[int, int]) -> dict[str, np.ndarray]:
    """K = Q diag(lam) Q^T (distinct lam >= 0.1), g ~ N(0, I), and an independent rotation R."""
    n, seed = case
    rng = np.random.default_rng(seed)
    lam = 0.1 + np.cumsum(rng.uniform(0.2, 1.5, size=n))
    Q = orthogonal(n, rng)
    K = (Q * lam) @ Q.T
    return {
        "K": 0.5 * (K + K.T),
        "Q": Q,
        "lam": lam,
        "g": rng.standard_normal(n),
        "R": orthogonal(n, rng),
    }


def run(rule_id: str, K: np.ndarray, g: np.ndarray, problem: Problem | None = None, **hyper):
    """(updates['x'], new_state) of one step at params x = 0 with gradient g and user curvature K.

    A vector K is a diagonal curvature. ``curv`` defaults to ``user`` (``diag(user)`` for the
    diagonal rules).
    """
    rule = reference.rules.get(rule_id)
    dense = np.diag(K) if K.ndim == 1 else K
    if "curv" in rule.hyper and "curv" not in hyper:
        hyper["curv"] = "diag(user)" if rule.hyper["curv"].startswith("diag(") else "user"
    problem = problem or Quadratic(dense, np.zeros(len(g)))
    params = {"x": np.zeros(len(g))}
    updates, state = rule.step(
        {"x": g}, rule.init(params), params, Oracle(problem, user_curvature=dense), **hyper
    )
    return updates["x"], state


def direction(rule_id: str, K: np.ndarray, g: np.ndarray, **hyper) -> np.ndarray:
    return run(rule_id, K, g, **hyper)[0]


def close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --- the registry: IDs, hyperparameter names and defaults -----------------------------------

CURVED = {"curv": "H", "damping": 0.0, "singular": "raise"}
DIAGONAL = {"lam": None, "curv": "diag(H)", "damping": 0.0, "singular": "raise"}
LIPSCHITZ = {"L": None, "L_source": "given", "curv": "H", "damping": 0.0}
EXPECTED_HYPER = {
    "rule:uv.newton": {"alpha": 1.0, **CURVED},
    "rule:uv.ngd": {"alpha": 1.0, **CURVED, "curv": "F"},
    "rule:uv.ngd_normalized": {"eps": 0.1, **CURVED},
    "rule:uv.ngd_gn_normalized": {"eps": 0.1, **CURVED},
    "rule:uv.ngd_eigen_normalized": {"eps": 0.1, "form": "matrix", **CURVED},
    "rule:uv.gd": {"alpha": 1.0, **LIPSCHITZ},
    "rule:uv.gd_linesearch": {},
    "rule:uv.gd_normalized": {"eps": 0.1, **LIPSCHITZ},
    "rule:uv.sign_gd": {"eta": 0.1},
    "rule:uv.diag_ngd": {"alpha": 1.0, **DIAGONAL},
    "rule:uv.diag_ngd[normalized]": {"eps": 0.1, **DIAGONAL},
    "rule:uv.diag_ngd[gn_normalized]": {"eps": 0.1, **DIAGONAL},
    "rule:uv.diag_ngd[eigen_normalized]": {"eps": 0.1, **DIAGONAL},
    "rule:uv.diag_ngd[as_printed]": {"eps": 0.1, **DIAGONAL},
    "rule:uv.clipped_ngd": {"alpha": 1.0, "eps": 0.1, "q": 2, **CURVED},
    "rule:uv.clipped_ngd[gn_clipped]": {"alpha": 1.0, "eps": 0.1, **CURVED},
    "rule:uv.clipped_ngd[eigen_clipped]": {"alpha": 1.0, "eps": 0.1, **CURVED},
    "rule:uv.sophia_clip": {"alpha": 1.0, "eps": 0.1, **DIAGONAL},
    "rule:uv.stochastic_direction": {"A": "alpha_Hinv", "alpha": 1.0, "A_user": None, **CURVED},
}


def test_every_unified_view_rule_is_registered_with_its_defaults():
    assert reference.rules.ids("rule:uv.*") == sorted(EXPECTED_HYPER)
    for rule_id, hyper in EXPECTED_HYPER.items():
        rule = reference.rules.get(rule_id)
        assert rule.id == rule_id and dict(rule.hyper) == hyper and rule.doc


# --- dense linear-algebra agreement ---------------------------------------------------------


def _sqrtm(K: np.ndarray) -> np.ndarray:
    return np.real(scipy.linalg.sqrtm(K))


def _dense_reference(rule_id: str, K: np.ndarray, g: np.ndarray, hyper: dict) -> np.ndarray:
    """The rule from np.linalg.solve / scipy.linalg.sqrtm / np.linalg.eigh."""
    alpha, eps = hyper.get("alpha", 1.0), hyper.get("eps", 0.1)
    g_tilde = np.linalg.solve(K, g)
    lam, Q = np.linalg.eigh(K)
    g_hat = Q.T @ g
    C = eps / alpha
    forms = {
        "rule:uv.newton": lambda: -alpha * g_tilde,
        "rule:uv.ngd": lambda: -alpha * g_tilde,
        "rule:uv.ngd_normalized": lambda: -eps * g_tilde / math.sqrt(g @ g_tilde),
        "rule:uv.ngd_gn_normalized": lambda: -eps * np.linalg.solve(_sqrtm(K), g),
        "rule:uv.ngd_eigen_normalized": lambda: (
            -eps * np.linalg.solve(_sqrtm(K), Q @ np.sign(g_hat))
            if hyper.get("form", "matrix") == "matrix"
            else -eps * Q @ np.sign(g_hat)
        ),
        "rule:uv.clipped_ngd": lambda: (
            -alpha * min(1.0, C / (g @ g_tilde) ** (hyper.get("q", 2) / 2)) * g_tilde
        ),
        "rule:uv.clipped_ngd[gn_clipped]": lambda: (
            Q @ (-alpha * np.minimum(1.0, C * np.sqrt(lam)) * g_hat / lam)
        ),
        "rule:uv.clipped_ngd[eigen_clipped]": lambda: (
            Q @ (-alpha * np.minimum(1.0, C * np.sqrt(lam) / np.abs(g_hat)) * g_hat / lam)
        ),
    }
    return forms[rule_id]()


DENSE_CASES = [
    ("rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.ngd", {"alpha": 0.3}),
    ("rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "matrix"}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "coordinates"}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.05, "q": 2}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.05, "q": 1}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 50.0, "q": 2}),
    ("rule:uv.clipped_ngd[gn_clipped]", {"alpha": 0.8, "eps": 0.5}),
    ("rule:uv.clipped_ngd[eigen_clipped]", {"alpha": 0.8, "eps": 0.5}),
]


@pytest.mark.parametrize(("rule_id", "hyper"), DENSE_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_rules_agree_with_dense_linear_algebra(rule_id, hyper, seed):
    case = build((6, seed))
    close(
        direction(rule_id, case["K"], case["g"], **hyper),
        _dense_reference(rule_id, case["K"], case["g"], hyper),
    )


def test_clipped_cases_exercise_both_sides_of_the_clip():
    K, g = build((6, 0))["K"], build((6, 0))["g"]
    norm2 = g @ np.linalg.solve(K, g)
    assert 0.05 / 0.8 < norm2 < 50.0 / 0.8
    lam = np.linalg.eigvalsh(K)
    assert np.any(0.5 / 0.8 * np.sqrt(lam) < 1) and np.any(0.5 / 0.8 * np.sqrt(lam) > 1)


def test_newton_with_damping_solves_the_damped_system_of_an_indefinite_curvature():
    case = build((5, 3))
    K = case["K"] - 2.0 * np.eye(5)  # indefinite: lam_min < 0 < lam_max
    assert np.linalg.eigvalsh(K)[0] < 0
    close(
        direction("rule:uv.newton", K, case["g"], damping=3.0),
        -np.linalg.solve(K + 3.0 * np.eye(5), case["g"]),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_gd_and_normalized_gd_with_each_source_of_L(seed):
    case = build((5, seed))
    K, g = case["K"], case["g"]
    L_max = np.linalg.eigvalsh(K)[-1]
    problem = Quadratic(2.0 * K, np.ones(5))  # its constant L is lambda_max(2K)
    for L_source, L, extra in [
        ("given", 3.0, {}),
        ("lambda_max", L_max, {}),
        ("problem", 2.0 * L_max, {"problem": problem}),
    ]:
        hyper = {"L_source": L_source, "L": 3.0}
        d_gd, _ = run("rule:uv.gd", K, g, alpha=0.5, **hyper, **extra)
        d_ngd, _ = run("rule:uv.gd_normalized", K, g, eps=0.2, **hyper, **extra)
        close(d_gd, -(0.5 / L) * g)
        close(d_ngd, -0.2 / math.sqrt(L) * g / np.linalg.norm(g))
    damped = direction("rule:uv.gd", K, g, L_source="lambda_max", damping=0.5)
    close(damped, -g / (L_max + 0.5))


def test_sign_gd_is_minus_eta_sign_with_sign_of_zero_zero():
    g = np.array([-2.0, 0.0, 3e-300, 1.0])
    close(direction("rule:uv.sign_gd", np.ones(4), g, eta=0.3), [0.3, 0.0, -0.3, -0.3])


def _diagonal_closed_forms(lam, g, alpha, eps):
    S = np.sum(g**2 / lam)
    return {
        "rule:uv.diag_ngd": -alpha * g / lam,
        "rule:uv.diag_ngd[normalized]": -eps * (g / lam) / np.sqrt(S),
        "rule:uv.diag_ngd[gn_normalized]": -eps * g / np.sqrt(lam),
        "rule:uv.diag_ngd[eigen_normalized]": -eps * np.sign(g) / np.sqrt(lam),
        "rule:uv.diag_ngd[as_printed]": -((eps / S) ** (1 / 3)) * g / lam,
        "rule:uv.sophia_clip": -alpha * np.minimum(1.0, lam * eps / np.abs(g)) * g / lam,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diagonal_rules_match_their_closed_forms(seed):
    rng = np.random.default_rng(seed)
    lam, g = rng.uniform(0.1, 10.0, 7), rng.standard_normal(7)
    for rule_id, expected in _diagonal_closed_forms(lam, g, 0.6, 0.3).items():
        hyper = {
            k: v for k, v in {"alpha": 0.6, "eps": 0.3}.items() if k in EXPECTED_HYPER[rule_id]
        }
        close(direction(rule_id, lam, g, **hyper), expected)


# --- orthogonal and permutation equivariance, eigenvector signs -----------------------------

EQUIVARIANT = [
    ("rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.ngd", {"alpha": 0.7}),
    ("rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "matrix"}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "coordinates"}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.3, "q": 2}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.3, "q": 1}),
    ("rule:uv.clipped_ngd[gn_clipped]", {"alpha": 0.8, "eps": 0.5}),
    ("rule:uv.clipped_ngd[eigen_clipped]", {"alpha": 0.8, "eps": 0.5}),
    ("rule:uv.gd", {"alpha": 0.7, "L_source": "lambda_max"}),
    ("rule:uv.gd_normalized", {"eps": 0.4, "L_source": "lambda_max"}),
]


@pytest.mark.parametrize(("rule_id", "hyper"), EQUIVARIANT)
@given(case=CASES)
def test_matrix_rules_are_orthogonally_equivariant(rule_id, hyper, case):
    c = build(case)
    K, g, R = c["K"], c["g"], c["R"]
    rotated = direction(rule_id, R.T @ K @ R, R.T @ g, **hyper)
    close(rotated, R.T @ direction(rule_id, K, g, **hyper))


DIAGONAL_RULES = [
    ("rule:uv.diag_ngd", {"alpha": 0.7}),
    ("rule:uv.diag_ngd[normalized]", {"eps": 0.4}),
    ("rule:uv.diag_ngd[gn_normalized]", {"eps": 0.4}),
    ("rule:uv.diag_ngd[eigen_normalized]", {"eps": 0.4}),
    ("rule:uv.diag_ngd[as_printed]", {"eps": 0.4}),
    ("rule:uv.sophia_clip", {"alpha": 0.7, "eps": 0.2}),
    ("rule:uv.sign_gd", {"eta": 0.3}),
]


@pytest.mark.parametrize(("rule_id", "hyper"), DIAGONAL_RULES)
@given(case=CASES)
def test_diagonal_rules_are_permutation_equivariant(rule_id, hyper, case):
    c = build(case)
    lam, g = c["lam"], c["g"]
    p = np.random.default_rng(case[1]).permutation(len(g))
    close(direction(rule_id, lam[p], g[p], **hyper), direction(rule_id, lam, g, **hyper)[p])


EIGENBASIS_DIRECTIONS = [
    lambda g, s: uv.ngd_eigen_normalized(g, s, eps=0.4, form="matrix"),
    lambda g, s: uv.ngd_eigen_normalized(g, s, eps=0.4, form="coordinates"),
    lambda g, s: uv.gn_clipped(g, s, alpha=0.8, eps=0.5),
    lambda g, s: uv.eigen_clipped(g, s, alpha=0.8, eps=0.5),
    lambda g, s: uv.ngd_gn_normalized(g, s, eps=0.4),
]


@pytest.mark.parametrize(
    "rule",
    EIGENBASIS_DIRECTIONS,
    ids=["eigen_matrix", "eigen_coordinates", "gn_clipped", "eigen_clipped", "gn_normalized"],
)
@given(case=CASES, flips=st.lists(st.booleans(), min_size=8, max_size=8))
def test_eigenbasis_rules_ignore_the_signs_of_the_eigenvectors(rule, case, flips):
    c = build(case)
    spec = eigh_sym(c["K"])
    signs = np.where(flips[: len(c["g"])], -1.0, 1.0)
    close(rule(c["g"], spec._replace(Q=spec.Q * signs)), rule(c["g"], spec))


# --- diagonal fast path, K = I --------------------------------------------------------------

FAST_PATH_PAIRS = [
    ("rule:uv.diag_ngd", "rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.diag_ngd[normalized]", "rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[gn_normalized]", "rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[eigen_normalized]", "rule:uv.ngd_eigen_normalized", {"eps": 0.4}),
]


@pytest.mark.parametrize(("diagonal", "dense", "hyper"), FAST_PATH_PAIRS)
@pytest.mark.parametrize("seed", [0, 1])
def test_diagonal_fast_path_equals_the_dense_rule_at_K_diag_lam(diagonal, dense, hyper, seed):
    c = build((6, seed))
    lam, g = c["lam"], c["g"]
    fast = direction(diagonal, lam, g, **hyper)
    close(fast, direction(dense, np.diag(lam), g, **hyper))
    close(direction(dense, np.diag(lam), g, curv="diag(user)", **hyper), fast)
    close(direction(diagonal, np.ones(6), g, lam=lam, curv="H", **hyper), fast)


def test_diagonal_rules_use_only_the_diagonal_of_a_dense_curvature():
    c = build((5, 4))
    diagonal_newton = -c["g"] / np.diag(c["K"])
    for curv in ("diag(user)", "user"):
        close(direction("rule:uv.diag_ngd", c["K"], c["g"], curv=curv), diagonal_newton)
        sophia = direction("rule:uv.sophia_clip", c["K"], c["g"], eps=1e6, curv=curv)
        close(sophia, diagonal_newton)
    close(direction("rule:uv.newton", c["K"], c["g"], curv="diag(user)"), diagonal_newton)


@given(case=CASES, alpha=STEP)
def test_ngd_with_identity_curvature_is_gradient_descent_with_rate_alpha(case, alpha):
    g = build(case)["g"]
    I = np.eye(len(g))
    d = direction("rule:uv.ngd", I, g, alpha=alpha)
    close(d, -alpha * g)
    close(d, direction("rule:uv.gd", I, g, alpha=alpha, L=1.0))


# --- extra oracles --------------------------------------------------------------------------


@given(case=CASES, alpha=STEP)
def test_clipped_ngd_with_infinite_threshold_is_newton(case, alpha):
    c = build(case)
    for q in (1, 2):
        clipped = direction("rule:uv.clipped_ngd", c["K"], c["g"], alpha=alpha, eps=1e300, q=q)
        close(clipped, direction("rule:uv.newton", c["K"], c["g"], alpha=alpha))


@given(case=CASES, alpha=STEP, eps=STEP)
def test_clipped_ngd_with_q1_and_an_active_clip_is_normalized_ngd(case, alpha, eps):
    c = build(case)
    size = math.sqrt(c["g"] @ np.linalg.solve(c["K"], c["g"]))
    if eps / alpha < size:  # the clip is active: min(1, C/||g~||_K) = C/||g~||_K
        clipped = direction("rule:uv.clipped_ngd", c["K"], c["g"], alpha=alpha, eps=eps, q=1)
        close(clipped, direction("rule:uv.ngd_normalized", c["K"], c["g"], eps=eps))


@pytest.mark.parametrize("variant", ["gn_clipped", "eigen_clipped"])
@given(case=CASES, alpha=STEP, eps=STEP)
def test_clipped_coefficients_never_exceed_the_newton_coefficients(variant, case, alpha, eps):
    c = build(case)
    d = direction(f"rule:uv.clipped_ngd[{variant}]", c["K"], c["g"], alpha=alpha, eps=eps)
    lam, Q = np.linalg.eigh(c["K"])
    bound = alpha * np.abs(Q.T @ c["g"]) / lam
    assert np.all(np.abs(Q.T @ d) <= bound * (1 + RTOL) + ATOL)


def _sign_safe_gradient(case) -> tuple[np.ndarray, np.ndarray]:
    """lam and a g with |g_i| in [0.1, 2] (no entry near 0), from a case."""
    c = build(case)
    rng = np.random.default_rng(case[1] + 1)
    return c["lam"], rng.choice([-1.0, 1.0], len(c["g"])) * rng.uniform(0.1, 2.0, len(c["g"]))


@given(case=CASES, alpha=STEP, shrink=st.floats(min_value=1e-6, max_value=1.0))
def test_sophia_clip_is_sign_descent_when_every_coordinate_clips(case, alpha, shrink):
    lam, g = _sign_safe_gradient(case)
    eps = shrink * np.min(np.abs(g) / lam)  # lam_i eps <= |g_i| for every i
    d = direction("rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction("rule:uv.sign_gd", lam, g, eta=alpha * eps))


@given(case=CASES, alpha=STEP, grow=st.floats(min_value=1.0, max_value=1e6))
def test_sophia_clip_is_diagonal_newton_when_no_coordinate_clips(case, alpha, grow):
    lam, g = _sign_safe_gradient(case)
    eps = grow * np.max(np.abs(g) / lam)  # lam_i eps >= |g_i| for every i
    d = direction("rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction("rule:uv.diag_ngd", lam, g, alpha=alpha))


@given(case=CASES, alpha=STEP, eps=st.floats(min_value=1e-6, max_value=1e3))
def test_sophia_clip_steps_are_bounded_by_alpha_eps(case, alpha, eps):
    c = build(case)
    g = np.where(np.arange(len(c["g"])) % 3 == 0, 0.0, c["g"])
    d = direction("rule:uv.sophia_clip", c["lam"], g, alpha=alpha, eps=eps)
    assert np.all(np.abs(d) <= alpha * eps * (1 + 4 * EPS64))
    assert np.all(d[g == 0] == 0)


@given(case=CASES, eps=STEP)
def test_diag_ngd_as_printed_satisfies_its_printed_fixed_point_equation(case, eps):
    c = build(case)
    lam, g = c["lam"], c["g"]
    d = direction("rule:uv.diag_ngd[as_printed]", lam, g, eps=eps)
    close(d, -(eps / (lam @ d**2)) * g / lam)


@given(case=CASES)
def test_exact_line_search_finds_the_vertex_of_the_parabola(case):
    """phi(eta) = f(theta - eta g) is a parabola with vertex eta* = g^T g / g^T A g.

    Brent locates a minimiser from loss values, which rounding makes flat over
    |eta - eta*| <~ sqrt(2 delta / g^T A g), delta ~ n eps |phi(0)| the evaluation error of f
    (the objective is evaluated as a quadratic form of dimension n); relative to eta*, this is
    sqrt(delta / (phi(0) - phi(eta*))). The test allows 10 times that bound.
    """
    c = build(case)
    A, n = c["K"], len(c["g"])
    rng = np.random.default_rng(case[1] + 2)
    problem = Quadratic(A, rng.standard_normal(n))
    params = {"x": rng.standard_normal(n)}
    g = problem.grad(params)["x"]
    rule = reference.rules.get("rule:uv.gd_linesearch")
    updates, state = rule.step({"x": g}, rule.init(params), params, Oracle(problem))
    eta_star = (g @ g) / (g @ A @ g)
    phi0 = problem.loss(params)
    decrease = 0.5 * (g @ g) ** 2 / (g @ A @ g)
    bound = 10.0 * math.sqrt(n * EPS64 * phi0 / decrease)
    assert abs(float(state["eta"]) - eta_star) <= bound * eta_star
    close(updates["x"], -float(state["eta"]) * g)


def test_exact_line_search_raises_when_the_loss_is_unbounded_along_minus_g():
    problem = Quadratic(-np.diag([1.0, 2.0]), np.zeros(2))
    params = {"x": np.array([1.0, -1.0])}
    rule = reference.rules.get("rule:uv.gd_linesearch")
    with pytest.raises(ValueError, match="gd_linesearch"):
        rule.step(problem.grad(params), rule.init(params), params, Oracle(problem))


ZERO_GRADIENT_RULES = [
    "rule:uv.ngd_normalized",
    "rule:uv.gd_normalized",
    "rule:uv.clipped_ngd",
    "rule:uv.clipped_ngd[eigen_clipped]",
    "rule:uv.diag_ngd[normalized]",
    "rule:uv.diag_ngd[as_printed]",
    "rule:uv.sophia_clip",
    "rule:uv.sign_gd",
    "rule:uv.gd_linesearch",
]


@pytest.mark.parametrize("rule_id", ZERO_GRADIENT_RULES)
def test_zero_gradient_gives_a_zero_step_without_warnings(rule_id):
    c = build((4, 0))
    hyper = {"L": 2.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = direction(rule_id, c["K"], np.zeros(4), **hyper)
    assert np.array_equal(d, np.zeros(4))


# --- stochastic direction -------------------------------------------------------------------


@pytest.mark.parametrize("A", ["alpha_Hinv", "alpha_Hinvsqrt", "alpha_I", "user"])
def test_stochastic_direction_splits_d_b_into_d_and_d_xi(A):
    c = build((5, 7))
    K, rng = c["K"], np.random.default_rng(7)
    problem = Quadratic(K, rng.standard_normal(5))
    params = {"x": rng.standard_normal(5)}
    g = problem.grad(params)["x"]
    g_b = g + rng.standard_normal(5)
    A_user = rng.standard_normal((5, 5))
    matrix = {
        "alpha_Hinv": 0.6 * np.linalg.inv(K),
        "alpha_Hinvsqrt": 0.6 * np.linalg.inv(_sqrtm(K)),
        "alpha_I": 0.6 * np.eye(5),
        "user": A_user,
    }[A]
    rule = reference.rules.get("rule:uv.stochastic_direction")
    init = rule.init(params)
    assert set(init) == {"d", "d_xi"} and not np.any(init["d"]) and not np.any(init["d_xi"])
    oracle = Oracle(problem, user_curvature=K)
    updates, state = rule.step(
        {"x": g_b}, init, params, oracle, A=A, alpha=0.6, A_user=A_user, curv="user"
    )
    close(updates["x"], matrix @ g_b)
    close(state["d"], matrix @ g)
    close(state["d_xi"], matrix @ (g_b - g))
    close(state["d"] + state["d_xi"], updates["x"])


# --- the singular policy --------------------------------------------------------------------


def _psd(n: int, rank: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lam = np.concatenate([np.zeros(n - rank), rng.uniform(0.5, 10.0, rank)])
    Q = orthogonal(n, rng)
    K = (Q * lam) @ Q.T
    return 0.5 * (K + K.T)


@pytest.mark.parametrize(("n", "rank", "seed"), [(4, 2, 0), (6, 3, 1), (7, 6, 2), (3, 1, 3)])
def test_pinv_on_a_psd_curvature_is_the_moore_penrose_pseudo_inverse(n, rank, seed):
    K, g = _psd(n, rank, seed), np.random.default_rng(seed).standard_normal(n)
    close(
        direction("rule:uv.newton", K, g, alpha=0.5, singular="pinv"), -0.5 * np.linalg.pinv(K) @ g
    )
    with pytest.raises(ValueError, match="singular") as raised:
        direction("rule:uv.newton", K, g)
    assert "lambda_min" in str(raised.value) and "curvature 'user'" in str(raised.value)


def test_pinv_on_an_indefinite_curvature_drops_the_negative_directions():
    rng = np.random.default_rng(11)
    lam, Q = np.array([-3.0, -0.5, 0.7, 2.0, 5.0]), orthogonal(5, rng)
    K, g = (Q * lam) @ Q.T, rng.standard_normal(5)
    positive = np.where(lam > 0, 1.0 / np.abs(lam), 0.0)
    close(direction("rule:uv.newton", K, g, singular="pinv"), -Q @ (positive * (Q.T @ g)))
    with pytest.raises(ValueError, match="singular='raise'"):
        direction("rule:uv.newton", K, g)


def test_cholesky_and_eigh_inverses_agree():
    K, g = build((7, 5))["K"], build((7, 5))["g"]
    spec = eigh_sym(K)
    close(matrix_power_apply(spec, g, -1), matrix_power_apply(spec._replace(K=None), g, -1))
    close(matrix_power_apply(spec, g, -1), np.linalg.solve(K, g))


# --- errors and immutability ----------------------------------------------------------------

BAD_HYPER = [
    ("rule:uv.newton", {"alpha": -1.0}, ValueError, r"Invalid alpha: -1.0 \(must be > 0\)"),
    ("rule:uv.newton", {"alpha": 0.0}, ValueError, r"Invalid alpha: 0.0 \(must be > 0\)"),
    ("rule:uv.newton", {"alpha": math.inf}, ValueError, r"Invalid alpha: inf \(must be finite\)"),
    ("rule:uv.newton", {"alpha": "1"}, TypeError, "alpha must be a real number"),
    ("rule:uv.ngd_normalized", {"eps": math.nan}, ValueError, "Invalid eps: nan"),
    ("rule:uv.sign_gd", {"eta": -0.1}, ValueError, r"Invalid eta: -0.1 \(must be > 0\)"),
    ("rule:uv.gd", {"L": -2.0}, ValueError, r"Invalid L: -2.0 \(must be > 0\)"),
    ("rule:uv.gd", {}, ValueError, "Invalid L: None"),
    ("rule:uv.gd", {"L": 1.0, "L_source": "guess"}, ValueError, "Invalid L_source: 'guess'"),
    ("rule:uv.newton", {"damping": -1e-3}, ValueError, r"Invalid damping: -0.001 \(must be >= 0\)"),
    ("rule:uv.newton", {"singular": "ignore"}, ValueError, "Invalid singular: 'ignore'"),
    ("rule:uv.ngd_eigen_normalized", {"form": "rows"}, ValueError, "Invalid form: 'rows'"),
    ("rule:uv.clipped_ngd", {"q": 3}, ValueError, "Invalid q: 3"),
    ("rule:uv.stochastic_direction", {"A": "alpha_H"}, ValueError, "Invalid A: 'alpha_H'"),
    ("rule:uv.newton", {"beta": 1.0}, TypeError, "unknown hyperparameter"),
    ("rule:uv.newton", {"curv": "Hessian"}, ValueError, "curv must be one of"),
    (
        "rule:uv.diag_ngd",
        {"lam": np.ones(3)},
        ValueError,
        r"lam has shape \(3,\); parameters need \(4,\)",
    ),
    (
        "rule:uv.diag_ngd",
        {"lam": np.array([1.0, np.nan, 1.0, 1.0])},
        ValueError,
        "lam contains non-finite",
    ),
    ("rule:uv.stochastic_direction", {"A": "user"}, ValueError, "A_user is required"),
    (
        "rule:uv.stochastic_direction",
        {"A": "user", "A_user": np.eye(3)},
        ValueError,
        r"A_user has shape \(3, 3\)",
    ),
    (
        "rule:uv.gd",
        {"L_source": "lambda_max", "curv": "user"},
        ValueError,
        r"Invalid L: -1.0 from L_source='lambda_max'",
    ),
]


@pytest.mark.parametrize(("rule_id", "hyper", "error", "message"), BAD_HYPER)
def test_invalid_hyperparameters_raise_naming_the_parameter(rule_id, hyper, error, message):
    with pytest.raises(error, match=message):
        run(rule_id, -np.eye(4) if "L_source" in hyper else np.eye(4), np.ones(4), **hyper)


@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_non_finite_gradients_raise_naming_grads(rule_id):
    hyper = {"L": 1.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    with pytest.raises(ValueError, match=r"grads\['x'\] contains non-finite"):
        run(rule_id, np.eye(3), np.array([1.0, np.inf, 0.0]), **hyper)


@pytest.mark.parametrize(
    ("K", "message"),
    [
        (np.eye(3)[:2], r"user curvature has shape \(2, 3\)"),
        (np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), "curvature 'user' is not symmetric"),
        (np.diag([1.0, np.nan, 1.0]), "curvature 'user' contains non-finite"),
    ],
)
def test_bad_curvatures_raise_naming_the_curvature(K, message):
    rule = reference.rules.get("rule:uv.newton")
    params = {"x": np.zeros(3)}
    oracle = Oracle(Quadratic(np.eye(3), np.zeros(3)), user_curvature=K)
    with pytest.raises(ValueError, match=message):
        rule.step({"x": np.ones(3)}, rule.init(params), params, oracle, curv="user")


def test_L_from_a_problem_without_the_constant_raises():
    class Bare(Problem):
        id = "prob:bare"

    with pytest.raises(ValueError, match="prob:bare has no constant 'L'"):
        run("rule:uv.gd", np.eye(2), np.ones(2), problem=Bare(), L_source="problem")


@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_rules_do_not_mutate_their_inputs_and_return_immutable_state(rule_id):
    c = build((4, 9))
    K, g = c["K"], c["g"]
    params, grads, lam = {"x": np.arange(4.0)}, {"x": g.copy()}, c["lam"].copy()
    copies = [K.copy(), g.copy(), params["x"].copy(), lam.copy()]
    rule = reference.rules.get(rule_id)
    hyper = {"L": 2.0} if "L" in rule.hyper else {}
    if "lam" in rule.hyper:
        hyper["lam"] = lam
    if "curv" in rule.hyper and "lam" not in rule.hyper:
        hyper["curv"] = "user"
    state = rule.init(params)
    updates, new_state = rule.step(
        grads, state, params, Oracle(Quadratic(K, np.ones(4)), user_curvature=K), **hyper
    )
    for before, after in zip(copies, [K, grads["x"], params["x"], lam], strict=True):
        assert np.array_equal(before, after)
    assert isinstance(state, MappingProxyType) and isinstance(new_state, MappingProxyType)
    with pytest.raises(TypeError):
        new_state["d"] = 0  # type: ignore[index]
    assert set(updates) == {"x"} and updates["x"].shape == (4,)
