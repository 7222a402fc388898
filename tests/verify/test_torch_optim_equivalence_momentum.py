"""The momentum and adaptive-denominator rules of INVENTORY §2.2 against ``torch.optim``.

Both layers (the NumPy reference and the torch rules) are driven step by step through
``rule.step`` for 60 steps in float64 and compared with the trajectory of the built-in
optimizer under the change of variables the INVENTORY oracle states:

* ``fo.sgd`` = SGD(lr=alpha);
* ``fo.heavy_ball`` (thesis) = SGD(lr=alpha, momentum=beta, dampening=0), buf = -m;
* ``[survey]`` = SGD(lr=eps, momentum=alpha, dampening=0), v = -eps buf;
* ``[ema]`` = SGD(lr=eta (1 - beta), momentum=beta, dampening=0), m = (1 - beta) buf;
* ``fo.nesterov[sutskever]`` = SGD(lr=eps, momentum=alpha, dampening=0, nesterov=True) on the
  look-ahead points phi = theta + alpha v, buf = -v/eps;
* ``fo.nesterov`` (thesis_eq9, constant alpha) = ``[sutskever]`` with eps = alpha, momentum
  beta, v = alpha m;
* ``fo.adagrad`` = Adagrad(lr=alpha, eps, lr_decay=0, initial_accumulator_value=0), G = sum;
* ``fo.rmsprop`` = RMSprop(lr=alpha, alpha=beta, eps, momentum=0, centered=False),
  v = square_avg.

Problems: ``prob:quad`` (one leaf, through the layers' own `Oracle`) and a least-squares
problem over three leaves of different shapes (a minimal oracle with ``grad``). Both have
Hessian eigenvalues in [0.1, 1] (quad) or [0, 1] (least squares), and the step sizes keep the
iterations stable, so rounding differences do not grow: iterates agree to rtol 1e-10.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import reference
import torchimpl
from reference.oracle import Oracle as RefOracle
from reference.tree import flatten as ref_flatten
from reference.tree import unflatten as ref_unflatten
from torchimpl.oracle import Oracle as TorchOracle
from torchimpl.tree import flatten as torch_flatten
from torchimpl.tree import unflatten as torch_unflatten

RTOL, ATOL = 1e-10, 1e-12
STEPS = 60
LAYERS = ("reference", "torch")
PROBLEMS = ("quad", "lsq")
SHAPES = {"W": (3, 4), "b": (5,), "c": (2, 1, 3)}
F64 = torch.float64


# --- problems, in both layers ----------------------------------------------------------------


class Case:
    """A problem with x0, in both layers: ``oracle(layer)``, ``grad_flat(x)`` (NumPy)."""

    def __init__(self, kind: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.kind = kind
        if kind == "quad":
            n = 7
            Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            H = (Q * rng.uniform(0.1, 1.0, n)) @ Q.T
            self.problem = reference.problems.get("prob:quad")(
                A=0.5 * (H + H.T), x_star=rng.standard_normal(n)
            )
            self.shapes = {"x": (n,)}
        else:
            P = sum(math.prod(s) for s in SHAPES.values())
            A = rng.standard_normal((P + 6, P))
            self.A, self.y = A / np.linalg.norm(A, 2), rng.standard_normal(P + 6)
            self.shapes = SHAPES
        self.x0 = rng.standard_normal(sum(math.prod(s) for s in self.shapes.values()))

    def grad_flat(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "quad":
            return self.problem.A @ (x - self.problem.x_star)
        return self.A.T @ (self.A @ x - self.y)

    def params(self, layer: str) -> dict[str, Any]:
        like = {k: np.zeros(s) for k, s in self.shapes.items()}
        tree = ref_unflatten(self.x0.copy(), like)
        if layer == "reference":
            return tree
        return {k: torch.tensor(v, dtype=F64) for k, v in tree.items()}

    def oracle(self, layer: str):
        if self.kind == "quad":
            if layer == "reference":
                return RefOracle(self.problem)
            return TorchOracle(
                torchimpl.problems.get("prob:quad")(**self.problem.spec(), dtype=F64)
            )
        return LeastSquaresOracle(self, layer)


class LeastSquaresOracle:
    """The gradient of f = 1/2 ||A x - y||^2 over x = flatten(params), in one layer."""

    def __init__(self, case: Case, layer: str) -> None:
        self.case, self.layer = case, layer

    def grad(self, params):
        if self.layer == "reference":
            return ref_unflatten(self.case.grad_flat(ref_flatten(params)), params)
        x = torch_flatten(params).numpy()
        return torch_unflatten(torch.tensor(self.case.grad_flat(x), dtype=F64), params)


def to_np(tree) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v, dtype=np.float64)
            for k, v in tree.items()}


# --- trajectories --------------------------------------------------------------------------


def rule_trajectory(layer: str, rule_id: str, case: Case, steps: int = STEPS, **hyper):
    """Iterates (steps + 1, P) and the final state (NumPy) of one layer's rule."""
    rules = reference.rules if layer == "reference" else torchimpl.rules
    rule = rules.get(rule_id)
    oracle, params = case.oracle(layer), case.params(layer)
    state = rule.init(params)
    iterates = [ref_flatten(to_np(params))]
    for _ in range(steps):
        updates, state = rule.step(oracle.grad(params), state, params, oracle, **hyper)
        params = {k: params[k] + updates[k] for k in params}
        iterates.append(ref_flatten(to_np(params)))
    final = {k: to_np(v) if hasattr(v, "items") else v for k, v in state.items()}
    return np.stack(iterates), final


def optim_trajectory(make: Callable, case: Case, state_key: str | None, steps: int = STEPS):
    """Iterates (steps + 1, P) of ``make(params)`` and its per-leaf state ``state_key``."""
    like = {k: np.zeros(s) for k, s in case.shapes.items()}
    leaves = {k: torch.nn.Parameter(torch.tensor(v, dtype=F64))
              for k, v in ref_unflatten(case.x0.copy(), like).items()}
    opt = make(list(leaves.values()))
    iterates = [case.x0.copy()]
    for _ in range(steps):
        x = np.concatenate([p.detach().numpy().reshape(-1) for p in leaves.values()])
        grads = ref_unflatten(case.grad_flat(x), like)
        for k, p in leaves.items():
            p.grad = torch.tensor(grads[k], dtype=F64)
        opt.step()
        iterates.append(np.concatenate([p.detach().numpy().reshape(-1) for p in leaves.values()]))
    buffers = None
    if state_key is not None:
        buffers = {k: opt.state[p][state_key].detach().numpy().copy() for k, p in leaves.items()}
    return np.stack(iterates), buffers


def assert_trajectories(ours: np.ndarray, theirs: np.ndarray) -> None:
    scale = np.linalg.norm(theirs, axis=1)
    gap = np.linalg.norm(ours - theirs, axis=1)
    assert np.all(gap <= RTOL * scale + ATOL), float(np.max(gap / (scale + ATOL)))
    assert np.linalg.norm(theirs[-1] - theirs[0]) > 1e-3  # the trajectory actually moved


def assert_trees(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=RTOL, atol=ATOL)


def draw(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(1000 + seed)
    return {"lr": float(rng.uniform(0.05, 0.5)), "mom": float(rng.uniform(0.3, 0.9))}


PARAMS = [(layer, kind, seed) for layer in LAYERS for kind in PROBLEMS for seed in (0, 1)]
parametrize = pytest.mark.parametrize("layer,kind,seed", PARAMS)


# --- the oracles ---------------------------------------------------------------------------


@parametrize
def test_sgd_equals_torch_sgd(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    ours, _ = rule_trajectory(layer, "rule:fo.sgd", case, alpha=h["lr"])
    theirs, _ = optim_trajectory(lambda p: torch.optim.SGD(p, lr=h["lr"]), case, None)
    assert_trajectories(ours, theirs)


@parametrize
def test_heavy_ball_thesis_equals_torch_sgd_momentum(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    ours, state = rule_trajectory(layer, "rule:fo.heavy_ball", case, alpha=h["lr"],
                                  beta=h["mom"])
    theirs, buf = optim_trajectory(
        lambda p: torch.optim.SGD(p, lr=h["lr"], momentum=h["mom"], dampening=0), case,
        "momentum_buffer",
    )
    assert_trajectories(ours, theirs)
    assert_trees(state["m"], {k: -v for k, v in buf.items()})  # buf = -m
    assert state["t"] == STEPS


@parametrize
def test_heavy_ball_survey_equals_torch_sgd_momentum(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    ours, state = rule_trajectory(layer, "rule:fo.heavy_ball[survey]", case, alpha=h["mom"],
                                  eps=h["lr"])
    theirs, buf = optim_trajectory(
        lambda p: torch.optim.SGD(p, lr=h["lr"], momentum=h["mom"], dampening=0), case,
        "momentum_buffer",
    )
    assert_trajectories(ours, theirs)
    assert_trees(state["v"], {k: -h["lr"] * v for k, v in buf.items()})  # v = -eps buf


@parametrize
def test_heavy_ball_ema_equals_torch_sgd_with_scaled_lr(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    beta = h["mom"]
    ours, state = rule_trajectory(layer, "rule:fo.heavy_ball[ema]", case, eta=h["lr"], beta=beta)
    theirs, buf = optim_trajectory(
        lambda p: torch.optim.SGD(p, lr=h["lr"] * (1 - beta), momentum=beta, dampening=0), case,
        "momentum_buffer",
    )
    assert_trajectories(ours, theirs)
    assert_trees(state["m"], {k: (1 - beta) * v for k, v in buf.items()})  # m = (1 - beta) buf


@parametrize
def test_nesterov_sutskever_equals_torch_nesterov_on_look_ahead_points(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    alpha, eps = h["mom"], h["lr"]
    rule = (reference.rules if layer == "reference" else torchimpl.rules).get(
        "rule:fo.nesterov[sutskever]")
    oracle, params = case.oracle(layer), case.params(layer)
    state = rule.init(params)
    looks = [case.x0.copy()]  # phi_0 = theta_0 (v_0 = 0)
    for _ in range(STEPS):
        updates, state = rule.step(oracle.grad(params), state, params, oracle, alpha=alpha,
                                   eps=eps)
        params = {k: params[k] + updates[k] for k in params}
        looks.append(ref_flatten(to_np(params)) + alpha * ref_flatten(to_np(state["v"])))
    theirs, buf = optim_trajectory(
        lambda p: torch.optim.SGD(p, lr=eps, momentum=alpha, dampening=0, nesterov=True), case,
        "momentum_buffer",
    )
    assert_trajectories(np.stack(looks), theirs)
    assert_trees(to_np(state["v"]), {k: -eps * v for k, v in buf.items()})  # buf = -v/eps


@parametrize
def test_nesterov_thesis_eq9_equals_sutskever(layer, kind, seed):
    # constant alpha: thesis_eq9(alpha, beta) = sutskever(momentum beta, eps = alpha), v = alpha m
    case, h = Case(kind, seed), draw(seed)
    thesis, s_thesis = rule_trajectory(layer, "rule:fo.nesterov", case, alpha=h["lr"],
                                       beta=h["mom"])
    sutskever, s_sut = rule_trajectory(layer, "rule:fo.nesterov[sutskever]", case,
                                       alpha=h["mom"], eps=h["lr"])
    assert_trajectories(thesis, sutskever)
    assert_trees({k: h["lr"] * v for k, v in s_thesis["m"].items()}, s_sut["v"])


@parametrize
def test_adagrad_equals_torch_adagrad(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    eps = 10.0 ** -(4 + 4 * seed)
    ours, state = rule_trajectory(layer, "rule:fo.adagrad", case, alpha=h["lr"], eps=eps)
    theirs, total = optim_trajectory(
        lambda p: torch.optim.Adagrad(p, lr=h["lr"], eps=eps, lr_decay=0,
                                      initial_accumulator_value=0),
        case, "sum",
    )
    assert_trajectories(ours, theirs)
    assert_trees(state["G"], total)


@parametrize
def test_rmsprop_equals_torch_rmsprop(layer, kind, seed):
    case, h = Case(kind, seed), draw(seed)
    beta, eps, lr = 0.9 + 0.09 * seed, 1e-8 * 10.0**seed, 0.1 * h["lr"]
    ours, state = rule_trajectory(layer, "rule:fo.rmsprop", case, alpha=lr, beta=beta, eps=eps)
    theirs, square_avg = optim_trajectory(
        lambda p: torch.optim.RMSprop(p, lr=lr, alpha=beta, eps=eps, momentum=0, centered=False),
        case, "square_avg",
    )
    assert_trajectories(ours, theirs)
    assert_trees(state["v"], square_avg)
