"""Torch problems of INVENTORY §1.2 added for the fo/zo/so families, on the torch side alone.

Oracles: closed forms written out here (Rosenbrock's gradient, Nesterov's minimiser, the
saddle's inertia and wells, the Reddi comparator, the quartic's third derivative), reverse-
over-reverse autograd Hessians, and the reductions (batch gradient = mean of per-sample
gradients, hvp = H v). float64 at rtol 1e-10; float32 against the float64 result at 1e-4.
Agreement with the NumPy reference is tests/test_problem_agreement.py and the cross-check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import torchimpl.problems as tp
from torchimpl.problems.classic import (
    DoubleWell,
    NesterovWorst,
    NonlinearLeastSquares,
    Rosenbrock,
    Saddle,
    SmoothNonconvex,
    ZOTest,
)
from torchimpl.problems.online import OnlineConvex

F64, F32 = torch.float64, torch.float32
RTOL = 1e-10


def close(actual, expected, rtol=RTOL, atol=1e-12):
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    gap = float(torch.linalg.vector_norm(actual - expected))
    assert gap <= rtol * float(torch.linalg.vector_norm(expected)) + atol, gap


def autograd_hessian(fn, x: torch.Tensor) -> torch.Tensor:
    """Reverse-over-reverse with torch.autograd, row by row."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
    rows = [torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(x.numel())]
    return torch.stack(rows)


def instances():
    gen = np.random.default_rng(0)
    A = gen.standard_normal((4, 4))
    return [
        Rosenbrock(5),
        NonlinearLeastSquares("exp", np.exp(np.linspace(0, 1, 6)), np.linspace(0, 1, 6)),
        NonlinearLeastSquares("rosenbrock", [0.0, 0.0, -1.0], reduction="sum"),
        Saddle(A + A.T, quartic=1.0),
        NesterovWorst(9, L=2.0),
        SmoothNonconvex(np.zeros((3, 3)), [0.5, -1.0, 2.0]),
        SmoothNonconvex(np.eye(3), np.zeros(3), alpha=1.0, beta=0.0),
        ZOTest(np.eye(3), [1.0, 0.0, -1.0], c3=1.0, c4=0.5, Z=gen.standard_normal((5, 3))),
        DoubleWell(1.0, 4.0, np.array([[0.3, -0.2], [-0.3, 0.2]])),
        OnlineConvex(gen.standard_normal((5, 2)), gen.uniform(0, 1, (5, 2)),
                     gen.standard_normal((5, 2)), R=2.0),
    ]


@pytest.mark.parametrize("problem", instances(), ids=lambda p: p.id)
def test_reductions_hvp_and_autograd_hessian(problem):
    x = problem.init_params(torch.Generator().manual_seed(1))
    G = problem.per_sample_grads(x)
    scale = 1.0 / G.shape[0] if problem.reduction == "mean" else 1.0
    close(problem.grad(x)["x"], scale * G.sum(0))
    close(problem.loss(x), scale * problem.per_sample_losses(x).sum())
    H = problem.hessian(x)
    close(H, autograd_hessian(lambda z: problem.loss({"x": z}), x["x"]))
    v = torch.randn(problem.dim, generator=torch.Generator().manual_seed(2), dtype=F64)
    close(problem.hvp(x, {"x": v})["x"], H @ v)
    close(problem.fisher_emp(x), scale * G.T @ G)
    with pytest.raises(NotImplementedError):
        problem.fisher_true(x)


def test_rosenbrock_closed_forms_and_float32():
    problem = Rosenbrock(4)
    x = torch.tensor([0.3, -1.1, 0.8, 2.0], dtype=F64)
    u = x[1:] - x[:-1] ** 2
    g = torch.zeros(4, dtype=F64)
    g[:-1] += -400 * x[:-1] * u - 2 * (1 - x[:-1])
    g[1:] += 200 * u
    close(problem.grad({"x": x})["x"], g)
    x_star, f_star = problem.optimum()
    assert float(problem.loss(x_star)) == f_star == 0.0
    assert float(Rosenbrock(2).loss(Rosenbrock(2).classic_start())) == pytest.approx(24.2)
    low = Rosenbrock(4, dtype=F32)
    close(low.hessian({"x": x.float()}).double(), problem.hessian({"x": x}), rtol=1e-4)


def test_nls_hessian_is_ggn_plus_residual_curvature():
    t = torch.linspace(0, 1, 8, dtype=F64)
    y = 1.5 * torch.exp(-0.7 * t) + 0.05 * torch.cos(7 * t)  # non-zero residual
    problem = NonlinearLeastSquares("exp", y, t)
    x = {"x": torch.tensor([1.2, -0.5], dtype=F64)}
    a, b = x["x"]
    e = torch.exp(b * t)
    r = a * e - y
    J = torch.stack([e, a * t * e], 1)
    close(problem.residuals(x), r)
    close(problem.jacobian(x), J)
    close(problem.ggn(x), J.T @ J / 8)
    curv = torch.zeros(2, 2, dtype=F64)
    curv[0, 1] = curv[1, 0] = (r * t * e).sum() / 8
    curv[1, 1] = (r * a * t * t * e).sum() / 8
    close(problem.hessian(x), J.T @ J / 8 + curv)
    assert problem.jac_out(x).shape == (8, 1, 2) and problem.out_hess(x).shape == (8, 1, 1)


def test_saddle_inertia_and_wells():
    simple = Saddle(torch.diag(torch.tensor([2.0, -2.0], dtype=F64)))
    assert simple.inertia({"x": torch.zeros(2, dtype=F64)}) == (1, 1, 0)
    assert simple.optimum() is None
    phi = math.radians(30)
    R = torch.tensor([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]], dtype=F64)
    rotated = Saddle(R @ torch.diag(torch.tensor([1.0, -1.0], dtype=F64)) @ R.T, quartic=1.0)
    x_star, f_star = rotated.optimum()
    assert f_star == pytest.approx(-0.25, rel=1e-14)
    close(rotated.grad(x_star)["x"], torch.zeros(2, dtype=F64), atol=1e-14)
    assert rotated.inertia(x_star) == (2, 0, 0)


def test_nesterov_worst_minimiser():
    problem = NesterovWorst(60)
    x_star, f_star = problem.optimum()
    close(x_star["x"], 1 - torch.arange(1, 61, dtype=F64) / 61)
    assert torch.linalg.vector_norm(problem.grad(x_star)["x"]) <= 1e-14
    assert float(problem.loss(x_star)) == pytest.approx(-60 / (8 * 61), rel=1e-12)
    lam = torch.linalg.eigvalsh(problem.hessian(x_star))
    consts = problem.constants()
    assert consts["mu"] == pytest.approx(float(lam[0]), rel=1e-8)
    assert consts["lambda_max"] == pytest.approx(float(lam[-1]), rel=1e-12)


def test_zo_test_third_derivative_closed_form():
    Z = torch.tensor([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0]], dtype=F64)
    problem = ZOTest(torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64), c3=0.7, c4=2.0, Z=Z)
    x = torch.tensor([0.4, -1.3], dtype=F64)
    s = torch.sigmoid(Z @ x)
    w = s * (1 - s) * (1 - 2 * s) / 3
    T = torch.einsum("k,ki,kj,kl->ijl", w, Z, Z, Z)
    T[[0, 1], [0, 1], [0, 1]] += 6 * 0.7 + 6 * 2.0 * x
    close(problem.third_derivative({"x": x}), T)
    quad = ZOTest(torch.diag(torch.tensor([1.0, 3.0], dtype=F64)), torch.tensor([1.0, -3.0]))
    x_star, f_star = quad.optimum()
    close(x_star["x"], torch.tensor([-1.0, 1.0], dtype=F64))
    assert f_star == pytest.approx(-2.0, rel=1e-14)


def test_double_well_tilts_average_out():
    c = torch.tensor([[0.4], [-0.1], [-0.3]], dtype=F64)
    problem = DoubleWell(1.0, 4.0, c)
    x = {"x": torch.tensor([0.2], dtype=F64)}
    close(problem.loss(x), problem.potential(x["x"]))
    G = problem.per_sample_grads(x)
    close(G - G.mean(0), c)


@pytest.mark.parametrize("C", [2.5, 4.0])
def test_online_reddi_regret(C):
    T = 12
    t = torch.arange(1, T + 1)
    G = torch.where(t % 3 == 1, C, -1.0).to(F64)[:, None]
    problem = OnlineConvex(G, torch.zeros(T, 1), torch.zeros(T, 1))
    assert float(problem.loss_t({"x": torch.tensor([1.0], dtype=F64)}, 1)) == C
    close(problem.grad_t({"x": torch.tensor([0.5], dtype=F64)}, 2)["x"],
          torch.tensor([-1.0], dtype=F64))
    x, value = problem.comparator()
    assert x.tolist() == [-1.0] and value == pytest.approx(-(T / 3) * (C - 2))
    assert problem.regret(torch.ones(T, 1, dtype=F64)) == pytest.approx(2 * (T / 3) * (C - 2))
    assert problem.project({"x": torch.tensor([-3.0], dtype=F64)})["x"].tolist() == [-1.0]
    with pytest.raises(ValueError, match="round"):
        problem.grad_t({"x": torch.zeros(1, dtype=F64)}, T + 1)


def test_every_new_id_is_registered():
    for pid in ("prob:rosenbrock", "prob:nls", "prob:online_convex", "prob:saddle",
                "prob:nesterov_worst", "prob:smooth_nonconvex", "prob:smooth_nonconvex[mlp]",
                "prob:zo_test", "prob:double_well", "prob:digits", "prob:gmm_cls"):
        assert pid in tp.REGISTRY
