"""The unified-view rules ``rule:uv.*`` (INVENTORY §2.1) of both layers against their oracles.

Dense linear algebra (np.linalg.solve, scipy.linalg.sqrtm, eigh, pinv), orthogonal and
permutation equivariance, eigenvector-sign invariance, the diagonal fast path, K = I, the extra
oracles (clipping limits and bounds, the printed fixed point, the exact line search on a
parabola), the singular policy and the error messages, each run on the reference and on torch
(expected values are NumPy closed forms, never the other layer's numbers). float32 (torch) is
compared with the float64 closed form at a bound in eps32; dtype preservation is torch only.

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
import torch
from hypothesis import given
from hypothesis import strategies as st

RTOL, ATOL = 1e-10, 1e-12
EPS64 = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)

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


def run(layer, rule_id: str, K, g, problem=None, raw=False, **hyper):
    """(updates['x'], new_state) as NumPy of one step of the layer's rule at params x = 0 with
    gradient g and user curvature K (NumPy inputs, converted to the layer's dtype).

    A vector K is a diagonal curvature. ``curv`` defaults to ``user`` (``diag(user)`` for the
    diagonal rules). Array hyperparameters are converted to the layer too; ``raw`` returns the
    layer's own array instead of NumPy.
    """
    rule = layer.rules.get(rule_id)
    K, g = np.asarray(K, dtype=np.float64), np.asarray(g, dtype=np.float64)
    dense = np.diag(K) if K.ndim == 1 else K
    if "curv" in rule.hyper and "curv" not in hyper:
        hyper["curv"] = "diag(user)" if rule.hyper["curv"].startswith("diag(") else "user"
    problem = problem or layer.quadratic(dense, np.zeros(len(g)))
    params = {"x": layer.to_layer(np.zeros(len(g)))}
    oracle = layer.oracle(problem, user_curvature=layer.to_layer(dense))
    updates, state = rule.step(
        {"x": layer.to_layer(g)}, rule.init(params), params, oracle, **layer.cast(hyper)
    )
    return (updates["x"] if raw else layer.to_numpy(updates["x"])), state


def direction(layer, rule_id: str, K, g, **hyper) -> np.ndarray:
    return run(layer, rule_id, K, g, **hyper)[0]


def close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def rounded(layer, x) -> np.ndarray:
    """``x`` rounded to the layer's dtype, back in float64."""
    return layer.to_numpy(layer.to_layer(x))


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


def test_every_unified_view_rule_is_registered_with_its_defaults(layer):
    assert layer.rules.ids("rule:uv.*") == sorted(EXPECTED_HYPER)
    for rule_id, hyper in EXPECTED_HYPER.items():
        rule = layer.rules.get(rule_id)
        assert rule.id == rule_id and dict(rule.hyper) == hyper and rule.doc


# --- dense linear-algebra agreement, and the same rules in float32 --------------------------


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
def test_matrix_rules_agree_with_dense_linear_algebra(layer, rule_id, hyper, seed):
    case = build((6, seed))
    close(
        direction(layer, rule_id, case["K"], case["g"], **hyper),
        _dense_reference(rule_id, case["K"], case["g"], hyper),
    )


@pytest.mark.parametrize(("rule_id", "hyper"), DENSE_CASES)
def test_float32_runs_close_to_the_float64_closed_form(torch_layer, rule_id, hyper):
    """Backward-stable float32 eigh/Cholesky: relative error <= c n kappa eps32 (c = 10)."""
    layer32 = torch_layer.with_dtype("float32")
    c = build((6, 0))
    d32, _ = run(layer32, rule_id, c["K"], c["g"], raw=True, **hyper)
    assert d32.dtype == torch.float32
    expected = _dense_reference(rule_id, c["K"], c["g"], hyper)
    lam = np.linalg.eigvalsh(c["K"])
    bound = 10 * 6 * float(lam[-1] / lam[0]) * EPS32
    assert np.linalg.norm(layer32.to_numpy(d32) - expected) <= bound * np.linalg.norm(expected)


def test_clipped_cases_exercise_both_sides_of_the_clip():
    K, g = build((6, 0))["K"], build((6, 0))["g"]
    norm2 = g @ np.linalg.solve(K, g)
    assert 0.05 / 0.8 < norm2 < 50.0 / 0.8
    lam = np.linalg.eigvalsh(K)
    assert np.any(0.5 / 0.8 * np.sqrt(lam) < 1) and np.any(0.5 / 0.8 * np.sqrt(lam) > 1)


def test_inverse_square_root_squares_to_the_inverse(layer):
    c = build((6, 3))
    once = direction(layer, "rule:uv.ngd_gn_normalized", c["K"], c["g"], eps=0.5) / -0.5
    twice = direction(layer, "rule:uv.ngd_gn_normalized", c["K"], once, eps=0.5) / -0.5
    close(twice, np.linalg.solve(c["K"], c["g"]))


def test_eigen_normalized_matrix_form_is_the_inverse_root_of_the_coordinate_form(layer):
    c = build((6, 4))
    coordinates = direction(
        layer, "rule:uv.ngd_eigen_normalized", c["K"], c["g"], form="coordinates"
    )
    lam, Q = np.linalg.eigh(c["K"])
    close(coordinates, -0.1 * Q @ np.sign(Q.T @ c["g"]))
    matrix = direction(layer, "rule:uv.ngd_eigen_normalized", c["K"], c["g"], eps=0.1)
    close(
        matrix,
        direction(layer, "rule:uv.ngd_gn_normalized", c["K"], coordinates / -0.1, eps=0.1),
    )


def test_newton_with_damping_solves_the_damped_system_of_an_indefinite_curvature(layer):
    case = build((5, 3))
    K = case["K"] - 2.0 * np.eye(5)  # indefinite: lam_min < 0 < lam_max
    assert np.linalg.eigvalsh(K)[0] < 0
    close(
        direction(layer, "rule:uv.newton", K, case["g"], damping=3.0),
        -np.linalg.solve(K + 3.0 * np.eye(5), case["g"]),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_gd_and_normalized_gd_with_each_source_of_L(typed_layer, seed):
    layer = typed_layer
    case = build((5, seed))
    K, g = rounded(layer, case["K"]), rounded(layer, case["g"])
    L_max = np.linalg.eigvalsh(case["K"])[-1]
    problem = layer.quadratic(2.0 * K, np.ones(5))  # its constant L is lambda_max(2K)
    rtol = RTOL if layer.dtype == "float64" else 10 * EPS32
    for L_source, L, extra in [
        ("given", 3.0, {}),
        ("lambda_max", L_max, {}),
        ("problem", 2.0 * L_max, {"problem": problem}),
    ]:
        hyper = {"L_source": L_source, "L": 3.0}
        d_gd, _ = run(layer, "rule:uv.gd", K, g, alpha=0.5, **hyper, **extra)
        d_ngd, _ = run(layer, "rule:uv.gd_normalized", K, g, eps=0.2, **hyper, **extra)
        close(d_gd, -(0.5 / L) * g, rtol=rtol)
        close(d_ngd, -0.2 / math.sqrt(L) * g / np.linalg.norm(g), rtol=rtol)
    damped = direction(layer, "rule:uv.gd", K, g, L_source="lambda_max", damping=0.5)
    close(damped, -g / (L_max + 0.5), rtol=rtol)


def test_sign_gd_is_minus_eta_sign_with_sign_of_zero_zero(layer):
    g = np.array([-2.0, 0.0, 3e-300, 1.0])
    close(direction(layer, "rule:uv.sign_gd", np.ones(4), g, eta=0.3), [0.3, 0.0, -0.3, -0.3])


def test_sign_gd_sign_of_zero_in_each_dtype(typed_layer):
    g = np.array([-2.0, 0.0, 1e-30, 1.0])
    d = direction(typed_layer, "rule:uv.sign_gd", np.ones(4), g, eta=0.5)
    close(d, rounded(typed_layer, [0.5, 0.0, -0.5, -0.5]))


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


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_diagonal_rules_match_their_closed_forms(typed_layer, seed):
    rng = np.random.default_rng(seed)
    lam = rounded(typed_layer, rng.uniform(0.1, 10.0, 7))
    g = rounded(typed_layer, rng.standard_normal(7))
    rtol = RTOL if typed_layer.dtype == "float64" else 10 * EPS32
    for rule_id, expected in _diagonal_closed_forms(lam, g, 0.6, 0.3).items():
        hyper = {
            k: v for k, v in {"alpha": 0.6, "eps": 0.3}.items() if k in EXPECTED_HYPER[rule_id]
        }
        close(direction(typed_layer, rule_id, lam, g, **hyper), expected, rtol=rtol)


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
def test_matrix_rules_are_orthogonally_equivariant(layer, rule_id, hyper, case):
    c = build(case)
    K, g, R = c["K"], c["g"], c["R"]
    rotated = direction(layer, rule_id, R.T @ K @ R, R.T @ g, **hyper)
    close(rotated, R.T @ direction(layer, rule_id, K, g, **hyper))


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
def test_diagonal_rules_are_permutation_equivariant(layer, rule_id, hyper, case):
    c = build(case)
    lam, g = c["lam"], c["g"]
    p = np.random.default_rng(case[1]).permutation(len(g))
    close(
        direction(layer, rule_id, lam[p], g[p], **hyper),
        direction(layer, rule_id, lam, g, **hyper)[p],
    )


EIGENBASIS_DIRECTIONS = {
    "eigen_matrix": lambda uv, g, s: uv.ngd_eigen_normalized(g, s, eps=0.4, form="matrix"),
    "eigen_coordinates": lambda uv, g, s: uv.ngd_eigen_normalized(
        g, s, eps=0.4, form="coordinates"
    ),
    "gn_clipped": lambda uv, g, s: uv.gn_clipped(g, s, alpha=0.8, eps=0.5),
    "eigen_clipped": lambda uv, g, s: uv.eigen_clipped(g, s, alpha=0.8, eps=0.5),
    "gn_normalized": lambda uv, g, s: uv.ngd_gn_normalized(g, s, eps=0.4),
}


@pytest.mark.parametrize("name", sorted(EIGENBASIS_DIRECTIONS))
@given(case=CASES, flips=st.lists(st.booleans(), min_size=8, max_size=8))
def test_eigenbasis_rules_ignore_the_signs_of_the_eigenvectors(layer, name, case, flips):
    c = build(case)
    uv = layer.module("rules.unified_view")
    spec = layer.module("linalg").eigh_sym(layer.to_layer(c["K"]))
    signs = layer.to_layer(np.where(flips[: len(c["g"])], -1.0, 1.0))
    rule, g = EIGENBASIS_DIRECTIONS[name], layer.to_layer(c["g"])
    close(
        layer.to_numpy(rule(uv, g, spec._replace(Q=spec.Q * signs))),
        layer.to_numpy(rule(uv, g, spec)),
    )


# --- diagonal fast path, K = I --------------------------------------------------------------

FAST_PATH_PAIRS = [
    ("rule:uv.diag_ngd", "rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.diag_ngd[normalized]", "rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[gn_normalized]", "rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[eigen_normalized]", "rule:uv.ngd_eigen_normalized", {"eps": 0.4}),
]


@pytest.mark.parametrize(("diagonal", "dense", "hyper"), FAST_PATH_PAIRS)
@pytest.mark.parametrize("seed", [0, 1])
def test_diagonal_fast_path_equals_the_dense_rule_at_K_diag_lam(layer, diagonal, dense, hyper,
                                                                 seed):
    c = build((6, seed))
    lam, g = c["lam"], c["g"]
    fast = direction(layer, diagonal, lam, g, **hyper)
    close(fast, direction(layer, dense, np.diag(lam), g, **hyper))
    close(direction(layer, dense, np.diag(lam), g, curv="diag(user)", **hyper), fast)
    close(direction(layer, diagonal, np.ones(6), g, lam=lam, curv="H", **hyper), fast)


def test_diagonal_rules_use_only_the_diagonal_of_a_dense_curvature(layer):
    c = build((5, 4))
    diagonal_newton = -c["g"] / np.diag(c["K"])
    for curv in ("diag(user)", "user"):
        close(direction(layer, "rule:uv.diag_ngd", c["K"], c["g"], curv=curv), diagonal_newton)
        sophia = direction(layer, "rule:uv.sophia_clip", c["K"], c["g"], eps=1e6, curv=curv)
        close(sophia, diagonal_newton)
    close(direction(layer, "rule:uv.newton", c["K"], c["g"], curv="diag(user)"), diagonal_newton)


@given(case=CASES, alpha=STEP)
def test_ngd_with_identity_curvature_is_gradient_descent_with_rate_alpha(layer, case, alpha):
    g = build(case)["g"]
    I = np.eye(len(g))
    d = direction(layer, "rule:uv.ngd", I, g, alpha=alpha)
    close(d, -alpha * g)
    close(d, direction(layer, "rule:uv.gd", I, g, alpha=alpha, L=1.0))


# --- extra oracles --------------------------------------------------------------------------


@given(case=CASES, alpha=STEP)
def test_clipped_ngd_with_infinite_threshold_is_newton(layer, case, alpha):
    c = build(case)
    for q in (1, 2):
        clipped = direction(
            layer, "rule:uv.clipped_ngd", c["K"], c["g"], alpha=alpha, eps=1e300, q=q
        )
        close(clipped, direction(layer, "rule:uv.newton", c["K"], c["g"], alpha=alpha))


@given(case=CASES, alpha=STEP, eps=STEP)
def test_clipped_ngd_with_q1_and_an_active_clip_is_normalized_ngd(layer, case, alpha, eps):
    c = build(case)
    size = math.sqrt(c["g"] @ np.linalg.solve(c["K"], c["g"]))
    if eps / alpha < size:  # the clip is active: min(1, C/||g~||_K) = C/||g~||_K
        clipped = direction(
            layer, "rule:uv.clipped_ngd", c["K"], c["g"], alpha=alpha, eps=eps, q=1
        )
        close(clipped, direction(layer, "rule:uv.ngd_normalized", c["K"], c["g"], eps=eps))


@pytest.mark.parametrize("variant", ["gn_clipped", "eigen_clipped"])
@given(case=CASES, alpha=STEP, eps=STEP)
def test_clipped_coefficients_never_exceed_the_newton_coefficients(layer, variant, case, alpha,
                                                                   eps):
    c = build(case)
    d = direction(layer, f"rule:uv.clipped_ngd[{variant}]", c["K"], c["g"], alpha=alpha, eps=eps)
    lam, Q = np.linalg.eigh(c["K"])
    bound = alpha * np.abs(Q.T @ c["g"]) / lam
    assert np.all(np.abs(Q.T @ d) <= bound * (1 + RTOL) + ATOL)


def _sign_safe_gradient(case) -> tuple[np.ndarray, np.ndarray]:
    """lam and a g with |g_i| in [0.1, 2] (no entry near 0), from a case."""
    c = build(case)
    rng = np.random.default_rng(case[1] + 1)
    return c["lam"], rng.choice([-1.0, 1.0], len(c["g"])) * rng.uniform(0.1, 2.0, len(c["g"]))


@given(case=CASES, alpha=STEP, shrink=st.floats(min_value=1e-6, max_value=1.0))
def test_sophia_clip_is_sign_descent_when_every_coordinate_clips(layer, case, alpha, shrink):
    lam, g = _sign_safe_gradient(case)
    eps = shrink * np.min(np.abs(g) / lam)  # lam_i eps <= |g_i| for every i
    d = direction(layer, "rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction(layer, "rule:uv.sign_gd", lam, g, eta=alpha * eps))


@given(case=CASES, alpha=STEP, grow=st.floats(min_value=1.0, max_value=1e6))
def test_sophia_clip_is_diagonal_newton_when_no_coordinate_clips(layer, case, alpha, grow):
    lam, g = _sign_safe_gradient(case)
    eps = grow * np.max(np.abs(g) / lam)  # lam_i eps >= |g_i| for every i
    d = direction(layer, "rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction(layer, "rule:uv.diag_ngd", lam, g, alpha=alpha))


@given(case=CASES, alpha=STEP, eps=st.floats(min_value=1e-6, max_value=1e3))
def test_sophia_clip_steps_are_bounded_by_alpha_eps(layer, case, alpha, eps):
    c = build(case)
    g = np.where(np.arange(len(c["g"])) % 3 == 0, 0.0, c["g"])
    d = direction(layer, "rule:uv.sophia_clip", c["lam"], g, alpha=alpha, eps=eps)
    assert np.all(np.abs(d) <= alpha * eps * (1 + 4 * EPS64))
    assert np.all(d[g == 0] == 0)


@given(case=CASES, eps=STEP)
def test_diag_ngd_as_printed_satisfies_its_printed_fixed_point_equation(layer, case, eps):
    c = build(case)
    lam, g = c["lam"], c["g"]
    d = direction(layer, "rule:uv.diag_ngd[as_printed]", lam, g, eps=eps)
    close(d, -(eps / (lam @ d**2)) * g / lam)


@given(case=CASES)
def test_exact_line_search_finds_the_vertex_of_the_parabola(layer, case):
    """phi(eta) = f(theta - eta g) is a parabola with vertex eta* = g^T g / g^T A g.

    Brent locates a minimiser from loss values, which rounding makes flat over
    |eta - eta*| <~ sqrt(2 delta / g^T A g), delta ~ n eps |phi(0)| the evaluation error of f
    (the objective is evaluated as a quadratic form of dimension n); relative to eta*, this is
    sqrt(delta / (phi(0) - phi(eta*))). The test allows 10 times that bound.
    """
    c = build(case)
    A, n = c["K"], len(c["g"])
    rng = np.random.default_rng(case[1] + 2)
    problem = layer.quadratic(A, rng.standard_normal(n))
    params = {"x": layer.to_layer(rng.standard_normal(n))}
    g = problem.grad(params)["x"]
    rule = layer.rules.get("rule:uv.gd_linesearch")
    updates, state = rule.step({"x": g}, rule.init(params), params, layer.oracle(problem))
    g = layer.to_numpy(g)
    eta_star = (g @ g) / (g @ A @ g)
    phi0 = float(problem.loss(params))
    decrease = 0.5 * (g @ g) ** 2 / (g @ A @ g)
    bound = 10.0 * math.sqrt(n * EPS64 * phi0 / decrease)
    assert abs(float(state["eta"]) - eta_star) <= bound * eta_star
    close(layer.to_numpy(updates["x"]), -float(state["eta"]) * g)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_line_search_in_each_dtype(typed_layer, seed):
    """eta* = g^T g / g^T A g, the vertex of phi(eta) = f(theta - eta g), to the resolution of
    a minimiser located from loss values: relative sqrt(delta / (phi(0) - phi(eta*))) with
    delta ~ n eps |phi(0)| the rounding of f in the layer's dtype; the test allows 10 times
    that."""
    layer = typed_layer
    c = build((6, seed))
    A = c["K"]
    rng = np.random.default_rng(seed)
    x_star, x = rng.standard_normal(6), rng.standard_normal(6)
    problem = layer.quadratic(A, x_star)
    params = {"x": layer.to_layer(x)}
    g = A @ (x - x_star)
    rule = layer.rules.get("rule:uv.gd_linesearch")
    updates, state = rule.step(
        {"x": layer.to_layer(g)}, rule.init(params), params, layer.oracle(problem)
    )
    eps = float(np.finfo(layer.dtype).eps)
    eta_star = float(g @ g / (g @ A @ g))
    phi0 = float(0.5 * (x - x_star) @ A @ (x - x_star))
    decrease = float(0.5 * (g @ g) ** 2 / (g @ A @ g))
    bound = 10.0 * math.sqrt(6 * eps * phi0 / decrease)
    if layer.is_torch:
        dtype = torch.float32 if layer.dtype == "float32" else torch.float64
        assert state["eta"].dtype == dtype and updates["x"].dtype == dtype
    assert abs(float(state["eta"]) - eta_star) <= bound * eta_star
    close(layer.to_numpy(updates["x"]), -float(state["eta"]) * rounded(layer, g), rtol=eps * 4,
          atol=0.0)


def test_exact_line_search_raises_when_the_loss_is_unbounded_along_minus_g(layer):
    problem = layer.quadratic(-np.diag([1.0, 2.0]), np.zeros(2))
    params = {"x": layer.to_layer(np.array([1.0, -1.0]))}
    rule = layer.rules.get("rule:uv.gd_linesearch")
    with pytest.raises(ValueError, match="gd_linesearch"):
        rule.step(problem.grad(params), rule.init(params), params, layer.oracle(problem))


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
def test_zero_gradient_gives_a_zero_step_without_warnings(layer, rule_id):
    c = build((4, 0))
    hyper = {"L": 2.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = direction(layer, rule_id, c["K"], np.zeros(4), **hyper)
    assert np.array_equal(d, np.zeros(4))


# --- stochastic direction -------------------------------------------------------------------


@pytest.mark.parametrize("A", ["alpha_Hinv", "alpha_Hinvsqrt", "alpha_I", "user"])
def test_stochastic_direction_splits_d_b_into_d_and_d_xi(layer, A):
    c = build((5, 7))
    K, rng = c["K"], np.random.default_rng(7)
    problem = layer.quadratic(K, rng.standard_normal(5))
    params = {"x": layer.to_layer(rng.standard_normal(5))}
    g = layer.to_numpy(problem.grad(params)["x"])
    g_b = g + rng.standard_normal(5)
    A_user = rng.standard_normal((5, 5))
    matrix = {
        "alpha_Hinv": 0.6 * np.linalg.inv(K),
        "alpha_Hinvsqrt": 0.6 * np.linalg.inv(_sqrtm(K)),
        "alpha_I": 0.6 * np.eye(5),
        "user": A_user,
    }[A]
    rule = layer.rules.get("rule:uv.stochastic_direction")
    init = layer.to_numpy(rule.init(params))
    assert set(init) == {"d", "d_xi"} and not np.any(init["d"]) and not np.any(init["d_xi"])
    oracle = layer.oracle(problem, user_curvature=layer.to_layer(K))
    updates, state = rule.step(
        {"x": layer.to_layer(g_b)}, rule.init(params), params, oracle, A=A, alpha=0.6,
        A_user=layer.to_layer(A_user), curv="user",
    )
    updates, state = layer.to_numpy(updates), layer.to_numpy(state)
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
def test_pinv_on_a_psd_curvature_is_the_moore_penrose_pseudo_inverse(layer, n, rank, seed):
    K, g = _psd(n, rank, seed), np.random.default_rng(seed).standard_normal(n)
    close(
        direction(layer, "rule:uv.newton", K, g, alpha=0.5, singular="pinv"),
        -0.5 * np.linalg.pinv(K) @ g,
    )
    with pytest.raises(ValueError, match="singular") as raised:
        direction(layer, "rule:uv.newton", K, g)
    assert "lambda_min" in str(raised.value) and "curvature 'user'" in str(raised.value)


def test_pinv_on_an_indefinite_curvature_drops_the_negative_directions(layer):
    rng = np.random.default_rng(11)
    lam, Q = np.array([-3.0, -0.5, 0.7, 2.0, 5.0]), orthogonal(5, rng)
    K, g = (Q * lam) @ Q.T, rng.standard_normal(5)
    positive = np.where(lam > 0, 1.0 / np.abs(lam), 0.0)
    close(direction(layer, "rule:uv.newton", K, g, singular="pinv"), -Q @ (positive * (Q.T @ g)))
    with pytest.raises(ValueError, match="singular='raise'"):
        direction(layer, "rule:uv.newton", K, g)


def test_cholesky_and_eigh_inverses_agree(layer):
    linalg = layer.module("linalg")
    c = build((7, 5))
    K, g = layer.to_layer(c["K"]), layer.to_layer(c["g"])
    spec = linalg.eigh_sym(K)
    by_cholesky = layer.to_numpy(linalg.matrix_power_apply(spec, g, -1))
    close(by_cholesky, layer.to_numpy(linalg.matrix_power_apply(spec._replace(K=None), g, -1)))
    close(by_cholesky, np.linalg.solve(c["K"], c["g"]))


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
def test_invalid_hyperparameters_raise_naming_the_parameter(layer, rule_id, hyper, error, message):
    with pytest.raises(error, match=message):
        run(layer, rule_id, -np.eye(4) if "L_source" in hyper else np.eye(4), np.ones(4), **hyper)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_non_finite_gradients_raise_naming_grads(layer, rule_id, bad):
    hyper = {"L": 1.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    with pytest.raises(ValueError, match=r"grads\['x'\] contains non-finite"):
        run(layer, rule_id, np.eye(3), np.array([1.0, bad, 0.0]), **hyper)


@pytest.mark.parametrize(
    ("K", "message"),
    [
        (np.eye(3)[:2], r"user curvature has shape \(2, 3\)"),
        (np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), "curvature 'user' is not symmetric"),
        (np.diag([1.0, np.nan, 1.0]), "curvature 'user' contains non-finite"),
        (np.diag([1.0, np.inf, 1.0]), "curvature 'user' contains non-finite"),
    ],
)
def test_bad_curvatures_raise_naming_the_curvature(layer, K, message):
    rule = layer.rules.get("rule:uv.newton")
    params = {"x": layer.to_layer(np.zeros(3))}
    oracle = layer.oracle(layer.quadratic(np.eye(3), np.zeros(3)),
                          user_curvature=layer.to_layer(K))
    with pytest.raises(ValueError, match=message):
        rule.step({"x": layer.to_layer(np.ones(3))}, rule.init(params), params, oracle,
                  curv="user")


def test_L_from_a_problem_without_the_constant_raises(layer):
    class Bare(layer.module("problems.base").Problem):
        id = "prob:bare"

    with pytest.raises(ValueError, match="prob:bare has no constant 'L'"):
        run(layer, "rule:uv.gd", np.eye(2), np.ones(2), problem=Bare(), L_source="problem")


@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_rules_keep_dtype_do_not_mutate_inputs_and_return_immutable_state(typed_layer, rule_id):
    layer = typed_layer
    c = build((4, 9))
    K, lam = layer.to_layer(c["K"]), layer.to_layer(c["lam"])
    params, grads = {"x": layer.to_layer(np.arange(4.0))}, {"x": layer.to_layer(c["g"])}
    inputs = [K, lam, params["x"], grads["x"]]
    copies = [layer.to_numpy(t) for t in inputs]
    rule = layer.rules.get(rule_id)
    hyper = {"L": 2.0} if "L" in rule.hyper else {}
    if "lam" in rule.hyper:
        hyper["lam"] = lam
    elif "curv" in rule.hyper:
        hyper["curv"] = "user"
    oracle = layer.oracle(layer.quadratic(c["K"], np.ones(4)), user_curvature=K)
    state = rule.init(params)
    updates, new_state = rule.step(grads, state, params, oracle, **hyper)
    for before, after in zip(copies, inputs, strict=True):
        assert np.array_equal(before, layer.to_numpy(after))
    assert isinstance(state, MappingProxyType) and isinstance(new_state, MappingProxyType)
    with pytest.raises(TypeError):
        new_state["d"] = 0  # type: ignore[index]
    assert set(updates) == {"x"} and updates["x"].shape == (4,)
    assert np.all(np.isfinite(layer.to_numpy(updates["x"])))
    if layer.is_torch:  # dtype preservation
        dtype = torch.float32 if layer.dtype == "float32" else torch.float64
        assert updates["x"].dtype == dtype
        assert all(v.dtype == dtype for v in new_state.values())
