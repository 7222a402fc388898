"""Adam-family rules (INVENTORY §2.2) against torch.optim, in both layers.

The oracle is public code: torch.optim.Adam (amsgrad False and True), AdamW, NAdam, RAdam and
Adafactor (torch 2.13).
Each rule (the variant that claims to match) is driven for 60 steps on a random
quadratic over three parameter leaves (a 4 x 3 matrix, a 4-vector and a 5-vector, see
`make_problem`); the torch optimizer runs on the same problem with ``.grad`` set from the same
gradient function.
Every iterate must agree to rtol 1e-10 (normwise per leaf) in float64: both sides do the same
arithmetic in a different order, and the problem keeps that comparison well conditioned (the
rounding differences, ~1e-16 per step, stay far below 1e-10 in 60 steps).

The same problem also cross-checks the two layers on leaves with two axes, which the generic
sweep (``python -m verify crosscheck``, one vector leaf) never sees: AdaFactor's factored path.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import reference.rules
import torchimpl.rules

STEPS = 60
RTOL = 1e-10
LAYERS = ("reference", "torch")


class NoOracle:
    """These rules ask nothing of the oracle beyond the gradient; any use is a bug."""

    def __getattr__(self, name: str):
        raise AssertionError(f"an Adam-family rule asked the oracle for {name!r}")


SHAPES = {"W": (4, 3), "b": (4,), "c": (5,)}


def make_problem(seed: int):
    """f = (x - x*)^T A (x - x*)/2 over x = flatten(W, b, c) (21 entries), its start, gradients.

    A = 3 I + B with B symmetric and entrywise in (0, 1): positive definite with positive
    entries. The start has x - x* in [3, 5] entrywise, so g = A (x - x*) stays entrywise
    positive and bounded away from 0 over the run (every rule below moves an entry by well under
    3 in 60 steps). That keeps the comparison well conditioned: an entry of g that crosses 0
    makes Adam-type steps g/sqrt(v) sign-like in it, and the gradient's own rounding (relative
    error ~ eps ||A|| ||x - x*|| / |g_i|) would then be amplified by the dynamics, not by
    either implementation.
    """
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(s)) for s in SHAPES.values())
    B = rng.uniform(0.0, 1.0, (n, n))
    A = 3.0 * np.eye(n) + 0.5 * (B + B.T)
    x_star = rng.standard_normal(n)
    x0 = x_star + rng.uniform(3.0, 5.0, n)
    sizes = np.cumsum([int(np.prod(s)) for s in SHAPES.values()])[:-1]
    start = {k: piece.reshape(s) for (k, s), piece in zip(SHAPES.items(), np.split(x0, sizes),
                                                          strict=True)}

    def grad_np(p):
        x = np.concatenate([p[k].reshape(-1) for k in SHAPES])
        g = np.split(A @ (x - x_star), sizes)
        return {k: piece.reshape(s) for (k, s), piece in zip(SHAPES.items(), g, strict=True)}

    At, xt = torch.as_tensor(A), torch.as_tensor(x_star)

    def grad_torch(p):
        x = torch.cat([p[k].reshape(-1) for k in SHAPES])
        g = torch.split(At @ (x - xt), [int(np.prod(s)) for s in SHAPES.values()])
        return {k: piece.reshape(s) for (k, s), piece in zip(SHAPES.items(), g, strict=True)}

    return start, grad_np, grad_torch


def run_rule(layer: str, rule_id: str, hyper: dict, seed: int, steps: int = STEPS):
    """The iterates of ``rule_id`` in ``layer`` (NumPy arrays), from the problem's start."""
    start, grad_np, grad_torch = make_problem(seed)
    if layer == "reference":
        rule, params, grad = reference.rules.get(rule_id), dict(start), grad_np
    else:
        rule, grad = torchimpl.rules.get(rule_id), grad_torch
        params = {k: torch.as_tensor(v) for k, v in start.items()}
    state, path = rule.init(params), []
    for _ in range(steps):
        updates, state = rule.step(grad(params), state, params, NoOracle(), **hyper)
        params = {k: params[k] + updates[k] for k in params}
        path.append({k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
    return path


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """torch.optim keeps scalar state (NAdam's mu_product, step counters) in the default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def run_torch_optim(optimizer: type, kwargs: dict, seed: int, steps: int = STEPS):
    start, _, grad_torch = make_problem(seed)
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in start.items()}
    with default_dtype(torch.float64):
        opt = optimizer(list(params.values()), **kwargs)
        path = []
        for _ in range(steps):
            with torch.no_grad():
                grads = grad_torch(params)
            for k, p in params.items():
                p.grad = grads[k].clone()
            opt.step()
            path.append({k: p.detach().numpy().copy() for k, p in params.items()})
    return path


def assert_same_path(path, oracle_path, rtol=RTOL) -> None:
    assert len(path) == len(oracle_path)
    for step, (ours, theirs) in enumerate(zip(path, oracle_path, strict=True)):
        for k in theirs:
            err = np.linalg.norm(ours[k] - theirs[k]) / np.linalg.norm(theirs[k])
            assert err <= rtol, f"step {step + 1}, leaf {k}: relative error {err:.3e}"


BETAS = {"beta1": 0.9, "beta2": 0.99}
AMSGRAD_ACTIVE = {"alpha": 0.2, "beta1": 0.9, "beta2": 0.9, "eps": 1e-6}
CASES = [
    ("rule:fo.adam", {}, torch.optim.Adam, {}),
    ("rule:fo.adam", {"alpha": 0.02, **BETAS, "eps": 1e-6}, torch.optim.Adam,
     {"lr": 0.02, "betas": (0.9, 0.99), "eps": 1e-6}),
    ("rule:fo.adam[amsgrad]", {}, torch.optim.Adam, {"amsgrad": True}),
    # AMSGRAD_ACTIVE: the running maximum binds (see test_amsgrad_case_is_not_adam)
    ("rule:fo.adam[amsgrad]", AMSGRAD_ACTIVE, torch.optim.Adam,
     {"lr": 0.2, "betas": (0.9, 0.9), "eps": 1e-6, "amsgrad": True}),
    ("rule:fo.adamw", {"alpha": 0.02, **BETAS, "lam": 0.1}, torch.optim.AdamW,
     {"lr": 0.02, "betas": (0.9, 0.99), "weight_decay": 0.1}),
    ("rule:fo.adamw", {}, torch.optim.AdamW, {}),
    # the SASSHA Table 8 reading is the same map as torch's AdamW (rounding order aside)
    ("rule:fo.adamw[sassha_table8]", {"alpha": 0.02, **BETAS, "lam": 0.1}, torch.optim.AdamW,
     {"lr": 0.02, "betas": (0.9, 0.99), "weight_decay": 0.1}),
    ("rule:fo.nadam[torch]", {}, torch.optim.NAdam, {}),
    ("rule:fo.nadam[torch]", {"alpha": 0.015, **BETAS, "eps": 1e-7, "psi": 0.05},
     torch.optim.NAdam, {"lr": 0.015, "betas": (0.9, 0.99), "eps": 1e-7, "momentum_decay": 0.05}),
    ("rule:fo.radam[torch]", {}, torch.optim.RAdam, {}),
    # beta2 = 0.99: rho_t crosses torch's threshold 5 at t = 6, inside the run
    ("rule:fo.radam[torch]", {"alpha": 0.02, **BETAS}, torch.optim.RAdam,
     {"lr": 0.02, "betas": (0.9, 0.99)}),
    ("rule:fo.adafactor[torch]", {}, torch.optim.Adafactor, {}),
    ("rule:fo.adafactor[torch]",
     {"alpha": 0.02, "beta2_decay": -0.5, "eps1": 1e-20, "eps2": 1e-2, "d": 2.0, "lam": 0.1},
     torch.optim.Adafactor,
     {"lr": 0.02, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 2.0, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(("rule_id", "hyper", "optimizer", "kwargs"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_torch_optim(layer, rule_id, hyper, optimizer, kwargs):
    seed = 11
    path = run_rule(layer, rule_id, hyper, seed)
    oracle = run_torch_optim(optimizer, kwargs, seed)
    # the run must move (else equality would be vacuous)
    start = make_problem(seed)[0]
    assert all(np.linalg.norm(oracle[-1][k] - start[k]) > 1e-3 for k in start)
    assert_same_path(path, oracle)


@pytest.mark.parametrize("rule_id", ["rule:fo.nadam", "rule:fo.radam"])
def test_default_variants_differ_from_torch(rule_id):
    """The default variants are not torch's: NAdam's momentum schedule and RAdam's threshold
    and eps placement change the iterates (kept as the named [torch] variants)."""
    optimizer = {"rule:fo.nadam": torch.optim.NAdam, "rule:fo.radam": torch.optim.RAdam}[rule_id]
    path = run_rule("reference", rule_id, {}, 3, steps=10)
    oracle = run_torch_optim(optimizer, {}, 3, steps=10)
    gap = max(np.linalg.norm(path[-1][k] - oracle[-1][k]) for k in oracle[-1])
    assert gap > 1e-6


@pytest.mark.parametrize("layer", LAYERS)
def test_amsgrad_case_is_not_adam(layer):
    """In the AMSGRAD_ACTIVE case v falls below its running maximum, so AMSGrad leaves Adam's
    path (in the default case, beta2 = 0.999, v grows over all 60 steps and the two coincide):
    the torch.optim match above then checks the maximum, not only the Adam step."""
    ams = run_rule(layer, "rule:fo.adam[amsgrad]", AMSGRAD_ACTIVE, 11)
    adam = run_rule(layer, "rule:fo.adam", AMSGRAD_ACTIVE, 11)
    gap = max(np.linalg.norm(a[k] - b[k]) for a, b in zip(ams, adam, strict=True) for k in a)
    assert gap > 0.1
    same = run_rule(layer, "rule:fo.adam[amsgrad]", {}, 11)
    assert_same_path(same, run_rule(layer, "rule:fo.adam", {}, 11), rtol=1e-14)


ALL_IDS = reference.rules.ids("rule:fo.ada*") + reference.rules.ids("rule:fo.*adam*") + [
    "rule:fo.lamb"
]


@pytest.mark.parametrize("rule_id", sorted(set(ALL_IDS)))
def test_layers_agree_on_matrix_leaves(rule_id):
    """Reference and torch layers, same problem with a matrix leaf, 20 steps, rtol 1e-10."""
    hyper = {"alpha": 0.02} if "alpha" in reference.rules.get(rule_id).hyper else {}
    ref = run_rule("reference", rule_id, hyper, 5, steps=20)
    mirror = run_rule("torch", rule_id, hyper, 5, steps=20)
    assert_same_path(mirror, ref)
