"""The unified-view rules ``rule:uv.*`` of the torch layer against their oracles.

Torch only: float64 results are compared with closed forms (torch.linalg.solve, eigh, pinv),
reductions to other rules and the oracles of INVENTORY §2.1, never with the reference layer
(that is the cross-check's job). float32 runs are compared with the float64 closed form.

Matrices come from primitive draws (n, seed) as K = Q diag(lam) Q^T with Q Haar (torch
generator) and lam in [0.1, ~12] with gaps >= 0.2, so kappa <= ~120: float64 comparisons hold
at rtol 1e-10 and the eigenbasis rules (distinct eigenvalues only) are well defined.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import torchimpl
from torchimpl.linalg import eigh_sym, matrix_power_apply
from torchimpl.oracle import Oracle
from torchimpl.problems.base import Problem
from torchimpl.problems.quadratic import Quadratic
from torchimpl.rules import unified_view as uv

RTOL, ATOL = 1e-10, 1e-12
F64, F32 = torch.float64, torch.float32
EPS32 = torch.finfo(F32).eps

CASES = st.tuples(st.integers(min_value=1, max_value=8), st.integers(0, 2**32 - 1))
STEP = st.floats(min_value=1e-2, max_value=3.0)


def orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    """A Haar orthogonal matrix: QR of a Gaussian matrix with the signs of R's diagonal fixed."""
    Q, R = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    return Q * torch.sign(torch.diagonal(R))


def build(case: tuple[int, int]) -> dict[str, torch.Tensor]:
    """K = Q diag(lam) Q^T (distinct lam >= 0.1), g ~ N(0, I), and a rotation R (float64)."""
    n, seed = case
    gen = torch.Generator().manual_seed(seed)
    lam = 0.1 + torch.cumsum(0.2 + 1.3 * torch.rand(n, generator=gen, dtype=F64), 0)
    Q = orthogonal(n, gen)
    K = (Q * lam) @ Q.T
    g = torch.randn(n, generator=gen, dtype=F64)
    return {"K": 0.5 * (K + K.T), "Q": Q, "lam": lam, "g": g, "R": orthogonal(n, gen)}


def run(rule_id: str, K: torch.Tensor, g: torch.Tensor, problem: Problem | None = None, **hyper):
    """(updates['x'], new_state) of one step at x = 0 with gradient g and user curvature K.

    A vector K is a diagonal curvature; the dtype is g's. ``curv`` defaults to ``user``
    (``diag(user)`` for the diagonal rules).
    """
    rule = torchimpl.rules.get(rule_id)
    dense = torch.diag(K) if K.ndim == 1 else K
    if "curv" in rule.hyper and "curv" not in hyper:
        hyper["curv"] = "diag(user)" if rule.hyper["curv"].startswith("diag(") else "user"
    problem = problem or Quadratic(dense, torch.zeros(len(g)), dtype=g.dtype)
    params = {"x": torch.zeros(len(g), dtype=g.dtype)}
    oracle = Oracle(problem, user_curvature=dense)
    updates, state = rule.step({"x": g}, rule.init(params), params, oracle, **hyper)
    return updates["x"], state


def direction(rule_id: str, K: torch.Tensor, g: torch.Tensor, **hyper) -> torch.Tensor:
    return run(rule_id, K, g, **hyper)[0]


def close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected), rtol=rtol, atol=atol)


# --- the registry: IDs, hyperparameter names and defaults (same table as the reference) -----

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
    assert torchimpl.rules.ids("rule:uv.*") == sorted(EXPECTED_HYPER)
    for rule_id, hyper in EXPECTED_HYPER.items():
        rule = torchimpl.rules.get(rule_id)
        assert rule.id == rule_id and dict(rule.hyper) == hyper and rule.doc


# --- closed forms in float64, and the same rules in float32 ---------------------------------


def closed_form(rule_id: str, K: torch.Tensor, g: torch.Tensor, hyper: dict) -> torch.Tensor:
    """The rule from torch.linalg.solve / eigh; K^{-1/2} only through the diagonal eigenbasis
    (K^{-1/2} v = Q diag(lam^{-1/2}) Q^T v) and checked separately by squaring."""
    alpha, eps = hyper.get("alpha", 1.0), hyper.get("eps", 0.1)
    g_tilde = torch.linalg.solve(K, g)
    lam, Q = torch.linalg.eigh(K)
    g_hat, C = Q.T @ g, eps / alpha
    forms = {
        "rule:uv.newton": lambda: -alpha * g_tilde,
        "rule:uv.ngd": lambda: -alpha * g_tilde,
        "rule:uv.ngd_normalized": lambda: -eps * g_tilde / torch.sqrt(g @ g_tilde),
        "rule:uv.ngd_gn_normalized": lambda: -eps * Q @ (g_hat / lam.sqrt()),
        "rule:uv.ngd_eigen_normalized": lambda: -eps * Q @ (torch.sign(g_hat) / lam.sqrt()),
        "rule:uv.clipped_ngd": lambda: (
            -alpha * min(1.0, C / float(g @ g_tilde) ** (hyper.get("q", 2) / 2)) * g_tilde
        ),
        "rule:uv.clipped_ngd[gn_clipped]": lambda: (
            Q @ (-alpha * torch.clamp(C * lam.sqrt(), max=1.0) * g_hat / lam)
        ),
        "rule:uv.clipped_ngd[eigen_clipped]": lambda: (
            Q @ (-alpha * torch.clamp(C * lam.sqrt() / g_hat.abs(), max=1.0) * g_hat / lam)
        ),
    }
    return forms[rule_id]()


DENSE_CASES = [
    ("rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.ngd", {"alpha": 0.3}),
    ("rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.05, "q": 2}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.05, "q": 1}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 50.0, "q": 2}),
    ("rule:uv.clipped_ngd[gn_clipped]", {"alpha": 0.8, "eps": 0.5}),
    ("rule:uv.clipped_ngd[eigen_clipped]", {"alpha": 0.8, "eps": 0.5}),
]


@pytest.mark.parametrize(("rule_id", "hyper"), DENSE_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_rules_agree_with_dense_linear_algebra(rule_id, hyper, seed):
    c = build((6, seed))
    expected = closed_form(rule_id, c["K"], c["g"], hyper)
    close(direction(rule_id, c["K"], c["g"], **hyper), expected)


@pytest.mark.parametrize(("rule_id", "hyper"), DENSE_CASES)
def test_float32_runs_close_to_the_float64_closed_form(rule_id, hyper):
    """Backward-stable float32 eigh/Cholesky: relative error <= c n kappa eps32 (c = 10)."""
    c = build((6, 0))
    d32 = direction(rule_id, c["K"].float(), c["g"].float(), **hyper)
    expected = closed_form(rule_id, c["K"], c["g"], hyper)
    lam = torch.linalg.eigvalsh(c["K"])
    bound = 10 * 6 * float(lam[-1] / lam[0]) * EPS32
    assert d32.dtype == F32
    assert float(torch.linalg.vector_norm(d32.double() - expected)) <= bound * float(
        torch.linalg.vector_norm(expected)
    )


def test_inverse_square_root_squares_to_the_inverse():
    c = build((6, 3))
    once = direction("rule:uv.ngd_gn_normalized", c["K"], c["g"], eps=0.5) / -0.5
    twice = direction("rule:uv.ngd_gn_normalized", c["K"], once, eps=0.5) / -0.5
    close(twice, torch.linalg.solve(c["K"], c["g"]))


def test_eigen_normalized_matrix_form_is_the_inverse_root_of_the_coordinate_form():
    c = build((6, 4))
    coordinates = direction("rule:uv.ngd_eigen_normalized", c["K"], c["g"], form="coordinates")
    lam, Q = torch.linalg.eigh(c["K"])
    close(coordinates, -0.1 * Q @ torch.sign(Q.T @ c["g"]))
    matrix = direction("rule:uv.ngd_eigen_normalized", c["K"], c["g"], eps=0.1)
    close(matrix, direction("rule:uv.ngd_gn_normalized", c["K"], coordinates / -0.1, eps=0.1))


def test_newton_with_damping_solves_the_damped_system_of_an_indefinite_curvature():
    c = build((5, 3))
    K = c["K"] - 2.0 * torch.eye(5, dtype=F64)
    assert torch.linalg.eigvalsh(K)[0] < 0
    expected = -torch.linalg.solve(K + 3.0 * torch.eye(5, dtype=F64), c["g"])
    close(direction("rule:uv.newton", K, c["g"], damping=3.0), expected)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_gd_and_normalized_gd_with_each_source_of_L(dtype):
    c = build((5, 1))
    K, g = c["K"].to(dtype), c["g"].to(dtype)
    L_max = float(torch.linalg.eigvalsh(c["K"])[-1])
    problem = Quadratic(2.0 * K, torch.ones(5), dtype=dtype)  # constant L = lambda_max(2K)
    rtol = RTOL if dtype == F64 else 10 * EPS32
    for L_source, L, extra in [
        ("given", 3.0, {}),
        ("lambda_max", L_max, {}),
        ("problem", 2.0 * L_max, {"problem": problem}),
    ]:
        hyper = {"L_source": L_source, "L": 3.0}
        d_gd, _ = run("rule:uv.gd", K, g, alpha=0.5, **hyper, **extra)
        d_normalized, _ = run("rule:uv.gd_normalized", K, g, eps=0.2, **hyper, **extra)
        close(d_gd, -(0.5 / L) * g, rtol=rtol)
        close(d_normalized, -0.2 / math.sqrt(L) * g / torch.linalg.vector_norm(g), rtol=rtol)
    damped = direction("rule:uv.gd", K, g, L_source="lambda_max", damping=0.5)
    close(damped, -g / (L_max + 0.5), rtol=rtol)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_sign_gd_is_minus_eta_sign_with_sign_of_zero_zero(dtype):
    g = torch.tensor([-2.0, 0.0, 1e-30, 1.0], dtype=dtype)
    close(
        direction("rule:uv.sign_gd", torch.ones(4, dtype=dtype), g, eta=0.5),
        g.new_tensor([0.5, 0.0, -0.5, -0.5]),
    )


@pytest.mark.parametrize("dtype", [F64, F32])
def test_diagonal_rules_match_their_closed_forms(dtype):
    gen = torch.Generator().manual_seed(5)
    lam = (0.1 + 9.9 * torch.rand(7, generator=gen, dtype=F64)).to(dtype)
    g = torch.randn(7, generator=gen, dtype=F64).to(dtype)
    alpha, eps, S = 0.6, 0.3, torch.sum(g**2 / lam)
    expected = {
        "rule:uv.diag_ngd": -alpha * g / lam,
        "rule:uv.diag_ngd[normalized]": -eps * (g / lam) / S.sqrt(),
        "rule:uv.diag_ngd[gn_normalized]": -eps * g / lam.sqrt(),
        "rule:uv.diag_ngd[eigen_normalized]": -eps * torch.sign(g) / lam.sqrt(),
        "rule:uv.diag_ngd[as_printed]": -((eps / S) ** (1 / 3)) * g / lam,
        "rule:uv.sophia_clip": -alpha * torch.clamp(lam * eps / g.abs(), max=1.0) * g / lam,
    }
    rtol = RTOL if dtype == F64 else 10 * EPS32
    for rule_id, value in expected.items():
        hyper = {
            k: v for k, v in {"alpha": alpha, "eps": eps}.items() if k in EXPECTED_HYPER[rule_id]
        }
        close(direction(rule_id, lam, g, **hyper), value, rtol=rtol)


# --- equivariance and eigenvector signs -----------------------------------------------------

EQUIVARIANT = [
    ("rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.ngd", {"alpha": 0.7}),
    ("rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "matrix"}),
    ("rule:uv.ngd_eigen_normalized", {"eps": 0.4, "form": "coordinates"}),
    ("rule:uv.clipped_ngd", {"alpha": 0.8, "eps": 0.3, "q": 2}),
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
    close(
        direction(rule_id, R.T @ K @ R, R.T @ g, **hyper), R.T @ direction(rule_id, K, g, **hyper)
    )


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
    p = torch.randperm(len(c["g"]), generator=torch.Generator().manual_seed(case[1]))
    permuted = direction(rule_id, c["lam"][p], c["g"][p], **hyper)
    close(permuted, direction(rule_id, c["lam"], c["g"], **hyper)[p])


EIGENBASIS_DIRECTIONS = {
    "eigen_matrix": lambda g, s: uv.ngd_eigen_normalized(g, s, eps=0.4, form="matrix"),
    "eigen_coordinates": lambda g, s: uv.ngd_eigen_normalized(g, s, eps=0.4, form="coordinates"),
    "gn_clipped": lambda g, s: uv.gn_clipped(g, s, alpha=0.8, eps=0.5),
    "eigen_clipped": lambda g, s: uv.eigen_clipped(g, s, alpha=0.8, eps=0.5),
    "gn_normalized": lambda g, s: uv.ngd_gn_normalized(g, s, eps=0.4),
}


@pytest.mark.parametrize("name", sorted(EIGENBASIS_DIRECTIONS))
@given(case=CASES, flips=st.lists(st.booleans(), min_size=8, max_size=8))
def test_eigenbasis_rules_ignore_the_signs_of_the_eigenvectors(name, case, flips):
    c = build(case)
    spec = eigh_sym(c["K"])
    signs = torch.tensor([-1.0 if f else 1.0 for f in flips[: len(c["g"])]], dtype=F64)
    rule = EIGENBASIS_DIRECTIONS[name]
    close(rule(c["g"], spec._replace(Q=spec.Q * signs)), rule(c["g"], spec))


# --- diagonal fast path, K = I --------------------------------------------------------------

FAST_PATH_PAIRS = [
    ("rule:uv.diag_ngd", "rule:uv.newton", {"alpha": 0.7}),
    ("rule:uv.diag_ngd[normalized]", "rule:uv.ngd_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[gn_normalized]", "rule:uv.ngd_gn_normalized", {"eps": 0.4}),
    ("rule:uv.diag_ngd[eigen_normalized]", "rule:uv.ngd_eigen_normalized", {"eps": 0.4}),
]


@pytest.mark.parametrize(("diagonal", "dense", "hyper"), FAST_PATH_PAIRS)
def test_diagonal_fast_path_equals_the_dense_rule_at_K_diag_lam(diagonal, dense, hyper):
    c = build((6, 0))
    lam, g = c["lam"], c["g"]
    fast = direction(diagonal, lam, g, **hyper)
    close(fast, direction(dense, torch.diag(lam), g, **hyper))
    close(direction(dense, torch.diag(lam), g, curv="diag(user)", **hyper), fast)
    close(direction(diagonal, torch.ones(6, dtype=F64), g, lam=lam, curv="H", **hyper), fast)


def test_diagonal_rules_use_only_the_diagonal_of_a_dense_curvature():
    c = build((5, 4))
    diagonal_newton = -c["g"] / torch.diagonal(c["K"])
    for curv in ("diag(user)", "user"):
        close(direction("rule:uv.diag_ngd", c["K"], c["g"], curv=curv), diagonal_newton)
        close(direction("rule:uv.sophia_clip", c["K"], c["g"], eps=1e6, curv=curv), diagonal_newton)


@given(case=CASES, alpha=STEP)
def test_ngd_with_identity_curvature_is_gradient_descent_with_rate_alpha(case, alpha):
    g = build(case)["g"]
    I = torch.eye(len(g), dtype=F64)
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


@pytest.mark.parametrize("variant", ["gn_clipped", "eigen_clipped"])
@given(case=CASES, alpha=STEP, eps=STEP)
def test_clipped_coefficients_never_exceed_the_newton_coefficients(variant, case, alpha, eps):
    c = build(case)
    d = direction(f"rule:uv.clipped_ngd[{variant}]", c["K"], c["g"], alpha=alpha, eps=eps)
    lam, Q = torch.linalg.eigh(c["K"])
    bound = alpha * (Q.T @ c["g"]).abs() / lam
    assert bool(((Q.T @ d).abs() <= bound * (1 + RTOL) + ATOL).all())


def _sign_safe(case) -> tuple[torch.Tensor, torch.Tensor]:
    """lam and a g with |g_i| in [0.1, 2], from a case."""
    c = build(case)
    gen = torch.Generator().manual_seed(case[1] + 1)
    n = len(c["g"])
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    return c["lam"], signs * (0.1 + 1.9 * torch.rand(n, generator=gen, dtype=F64))


@given(case=CASES, alpha=STEP, shrink=st.floats(min_value=1e-6, max_value=1.0))
def test_sophia_clip_is_sign_descent_when_every_coordinate_clips(case, alpha, shrink):
    lam, g = _sign_safe(case)
    eps = shrink * float((g.abs() / lam).min())
    d = direction("rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction("rule:uv.sign_gd", lam, g, eta=alpha * eps))


@given(case=CASES, alpha=STEP, grow=st.floats(min_value=1.0, max_value=1e6))
def test_sophia_clip_is_diagonal_newton_when_no_coordinate_clips(case, alpha, grow):
    lam, g = _sign_safe(case)
    eps = grow * float((g.abs() / lam).max())
    d = direction("rule:uv.sophia_clip", lam, g, alpha=alpha, eps=eps)
    close(d, direction("rule:uv.diag_ngd", lam, g, alpha=alpha))


@given(case=CASES, alpha=STEP, eps=st.floats(min_value=1e-6, max_value=1e3))
def test_sophia_clip_steps_are_bounded_by_alpha_eps(case, alpha, eps):
    c = build(case)
    g = torch.where(torch.arange(len(c["g"])) % 3 == 0, 0.0, c["g"])
    d = direction("rule:uv.sophia_clip", c["lam"], g, alpha=alpha, eps=eps)
    assert bool((d.abs() <= alpha * eps * (1 + 4 * torch.finfo(F64).eps)).all())
    assert bool((d[g == 0] == 0).all())


@given(case=CASES, eps=STEP)
def test_diag_ngd_as_printed_satisfies_its_printed_fixed_point_equation(case, eps):
    c = build(case)
    lam, g = c["lam"], c["g"]
    d = direction("rule:uv.diag_ngd[as_printed]", lam, g, eps=eps)
    close(d, -(eps / (lam @ d**2)) * g / lam)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_line_search_finds_the_vertex_of_the_parabola(dtype, seed):
    """eta* = g^T g / g^T A g, the vertex of phi(eta) = f(theta - eta g), to the resolution of
    a minimiser located from loss values: relative sqrt(delta / (phi(0) - phi(eta*))) with
    delta ~ n eps |phi(0)| the rounding of f in ``dtype``; the test allows 10 times that."""
    c = build((6, seed))
    A = c["K"]
    gen = torch.Generator().manual_seed(seed)
    x_star, x = torch.randn(6, generator=gen, dtype=F64), torch.randn(6, generator=gen, dtype=F64)
    problem = Quadratic(A, x_star, dtype=dtype)
    params = {"x": x.to(dtype)}
    g = A @ (x - x_star)
    rule = torchimpl.rules.get("rule:uv.gd_linesearch")
    updates, state = rule.step({"x": g.to(dtype)}, rule.init(params), params, Oracle(problem))
    eta_star = float(g @ g / (g @ A @ g))
    phi0 = float(0.5 * (x - x_star) @ A @ (x - x_star))
    decrease = float(0.5 * (g @ g) ** 2 / (g @ A @ g))
    bound = 10.0 * math.sqrt(6 * torch.finfo(dtype).eps * phi0 / decrease)
    assert state["eta"].dtype == dtype and updates["x"].dtype == dtype
    assert abs(float(state["eta"]) - eta_star) <= bound * eta_star
    close(updates["x"], -state["eta"] * g.to(dtype), rtol=torch.finfo(dtype).eps * 4, atol=0.0)


def test_exact_line_search_raises_when_the_loss_is_unbounded_along_minus_g():
    problem = Quadratic(-torch.diag(torch.tensor([1.0, 2.0], dtype=F64)), torch.zeros(2))
    params = {"x": torch.tensor([1.0, -1.0], dtype=F64)}
    rule = torchimpl.rules.get("rule:uv.gd_linesearch")
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
def test_zero_gradient_gives_a_zero_step(rule_id):
    hyper = {"L": 2.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    d = direction(rule_id, build((4, 0))["K"], torch.zeros(4, dtype=F64), **hyper)
    assert bool((d == 0).all())


# --- stochastic direction -------------------------------------------------------------------


@pytest.mark.parametrize("A", ["alpha_Hinv", "alpha_Hinvsqrt", "alpha_I", "user"])
def test_stochastic_direction_splits_d_b_into_d_and_d_xi(A):
    c = build((5, 7))
    K, gen = c["K"], torch.Generator().manual_seed(7)
    x_star, x = torch.randn(5, generator=gen, dtype=F64), torch.randn(5, generator=gen, dtype=F64)
    problem = Quadratic(K, x_star)
    params = {"x": x}
    g = K @ (x - x_star)
    g_b = g + torch.randn(5, generator=gen, dtype=F64)
    A_user = torch.randn(5, 5, generator=gen, dtype=F64)
    lam, Q = torch.linalg.eigh(K)
    matrix = {
        "alpha_Hinv": 0.6 * torch.linalg.inv(K),
        "alpha_Hinvsqrt": 0.6 * (Q / lam.sqrt()) @ Q.T,
        "alpha_I": 0.6 * torch.eye(5, dtype=F64),
        "user": A_user,
    }[A]
    rule = torchimpl.rules.get("rule:uv.stochastic_direction")
    init = rule.init(params)
    assert set(init) == {"d", "d_xi"} and not bool(init["d"].any()) and not bool(init["d_xi"].any())
    oracle = Oracle(problem, user_curvature=K)
    updates, state = rule.step(
        {"x": g_b}, init, params, oracle, A=A, alpha=0.6, A_user=A_user, curv="user"
    )
    close(updates["x"], matrix @ g_b)
    close(state["d"], matrix @ g)
    close(state["d_xi"], matrix @ (g_b - g))
    close(state["d"] + state["d_xi"], updates["x"])


# --- the singular policy --------------------------------------------------------------------


def _psd(n: int, rank: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    lam = torch.cat(
        [torch.zeros(n - rank, dtype=F64), 0.5 + 9.5 * torch.rand(rank, generator=gen, dtype=F64)]
    )
    Q = orthogonal(n, gen)
    K = (Q * lam) @ Q.T
    return 0.5 * (K + K.T)


@pytest.mark.parametrize(("n", "rank", "seed"), [(4, 2, 0), (6, 3, 1), (7, 6, 2), (3, 1, 3)])
def test_pinv_on_a_psd_curvature_is_the_moore_penrose_pseudo_inverse(n, rank, seed):
    K = _psd(n, rank, seed)
    g = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=F64)
    expected = -0.5 * torch.linalg.pinv(K, hermitian=True) @ g
    close(direction("rule:uv.newton", K, g, alpha=0.5, singular="pinv"), expected)
    with pytest.raises(ValueError, match="singular") as raised:
        direction("rule:uv.newton", K, g)
    assert "lambda_min" in str(raised.value) and "curvature 'user'" in str(raised.value)


def test_pinv_on_an_indefinite_curvature_drops_the_negative_directions():
    gen = torch.Generator().manual_seed(11)
    lam, Q = torch.tensor([-3.0, -0.5, 0.7, 2.0, 5.0], dtype=F64), orthogonal(5, gen)
    K, g = (Q * lam) @ Q.T, torch.randn(5, generator=gen, dtype=F64)
    positive = torch.where(lam > 0, 1.0 / lam.abs(), 0.0)
    close(direction("rule:uv.newton", K, g, singular="pinv"), -Q @ (positive * (Q.T @ g)))
    with pytest.raises(ValueError, match="singular='raise'"):
        direction("rule:uv.newton", K, g)


def test_cholesky_and_eigh_inverses_agree():
    c = build((7, 5))
    spec = eigh_sym(c["K"])
    close(
        matrix_power_apply(spec, c["g"], -1), matrix_power_apply(spec._replace(K=None), c["g"], -1)
    )
    close(matrix_power_apply(spec, c["g"], -1), torch.linalg.solve(c["K"], c["g"]))


# --- errors (the reference's messages) and immutability -------------------------------------

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
        {"lam": torch.ones(3)},
        ValueError,
        r"lam has shape \(3,\); parameters need \(4,\)",
    ),
    (
        "rule:uv.diag_ngd",
        {"lam": torch.tensor([1.0, math.nan, 1.0, 1.0])},
        ValueError,
        "lam contains non-finite",
    ),
    ("rule:uv.stochastic_direction", {"A": "user"}, ValueError, "A_user is required"),
    (
        "rule:uv.stochastic_direction",
        {"A": "user", "A_user": torch.eye(3)},
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
    K = -torch.eye(4, dtype=F64) if "L_source" in hyper else torch.eye(4, dtype=F64)
    with pytest.raises(error, match=message):
        run(rule_id, K, torch.ones(4, dtype=F64), **hyper)


@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_non_finite_gradients_raise_naming_grads(rule_id):
    hyper = {"L": 1.0} if "L" in EXPECTED_HYPER[rule_id] else {}
    with pytest.raises(ValueError, match=r"grads\['x'\] contains non-finite"):
        run(
            rule_id, torch.eye(3, dtype=F64), torch.tensor([1.0, math.nan, 0.0], dtype=F64), **hyper
        )


@pytest.mark.parametrize(
    ("K", "message"),
    [
        (torch.eye(3, dtype=F64)[:2], r"user curvature has shape \(2, 3\)"),
        (
            torch.tensor([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]], dtype=F64),
            "curvature 'user' is not symmetric",
        ),
        (
            torch.diag(torch.tensor([1.0, math.inf, 1.0], dtype=F64)),
            "curvature 'user' contains non-finite",
        ),
    ],
)
def test_bad_curvatures_raise_naming_the_curvature(K, message):
    rule = torchimpl.rules.get("rule:uv.newton")
    params = {"x": torch.zeros(3, dtype=F64)}
    oracle = Oracle(Quadratic(torch.eye(3), torch.zeros(3)), user_curvature=K)
    with pytest.raises(ValueError, match=message):
        rule.step({"x": torch.ones(3, dtype=F64)}, rule.init(params), params, oracle, curv="user")


def test_L_from_a_problem_without_the_constant_raises():
    class Bare(Problem):
        id = "prob:bare"

    with pytest.raises(ValueError, match="prob:bare has no constant 'L'"):
        run(
            "rule:uv.gd",
            torch.eye(2, dtype=F64),
            torch.ones(2, dtype=F64),
            problem=Bare(),
            L_source="problem",
        )


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("rule_id", sorted(EXPECTED_HYPER))
def test_rules_keep_dtype_do_not_mutate_inputs_and_return_immutable_state(rule_id, dtype):
    c = build((4, 9))
    K, lam = c["K"].to(dtype), c["lam"].to(dtype)
    params, grads = {"x": torch.arange(4.0, dtype=dtype)}, {"x": c["g"].to(dtype)}
    inputs = [K, lam, params["x"], grads["x"]]
    copies = [t.clone() for t in inputs]
    rule = torchimpl.rules.get(rule_id)
    hyper = {"L": 2.0} if "L" in rule.hyper else {}
    if "lam" in rule.hyper:
        hyper["lam"] = lam
    elif "curv" in rule.hyper:
        hyper["curv"] = "user"
    oracle = Oracle(Quadratic(K, torch.ones(4), dtype=dtype), user_curvature=K)
    state = rule.init(params)
    updates, new_state = rule.step(grads, state, params, oracle, **hyper)
    for before, after in zip(copies, inputs, strict=True):
        assert torch.equal(before, after)
    assert isinstance(state, MappingProxyType) and isinstance(new_state, MappingProxyType)
    with pytest.raises(TypeError):
        new_state["d"] = 0  # type: ignore[index]
    assert set(updates) == {"x"} and updates["x"].shape == (4,) and updates["x"].dtype == dtype
    assert bool(torch.isfinite(updates["x"]).all())
    assert all(v.dtype == dtype for v in new_state.values())
