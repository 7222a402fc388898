"""One battery of optimizer behaviours, run over every `torchimpl.optim` class.

Modelled on PyTorch's own optimizer tests: state_dict round trip mid-training (through
torch.save/torch.load) continues the identical trajectory; several param groups with different
hyperparameters equal separate optimizers; an LR scheduler drives lr; invalid hyperparameters
raise ValueError naming the parameter; parameters without gradients are skipped with their
state untouched; copy.deepcopy; float32 and float64; the closure; zero_grad; add_param_group;
the non-finite gradient policy. ``torch.optim.Adam`` runs the same battery as a control that
the battery itself is sound (its non-finite policy is to propagate the NaN; ours is to raise
before changing anything).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from torchimpl.optim import LAMB, AdaBelief, Lion, Lookahead


@dataclass(frozen=True)
class Case:
    make: Callable[..., torch.optim.Optimizer]  # make(params, **overrides)
    group_hyper: dict[str, Any]  # a second group's overrides (differs from the defaults)
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    nonfinite: str = "raise"  # or "propagate"


def _lookahead(inner: Callable[..., torch.optim.Optimizer]) -> Callable[..., Lookahead]:
    def make(params, k=3, alpha=0.5, inner_state="keep", **inner_kw):
        return Lookahead(inner(params, **inner_kw), k=k, alpha=alpha, inner_state=inner_state)

    return make


COMMON_INVALID = [({"lr": -1.0}, r"Invalid learning rate: -1.0"),
                  ({"betas": (1.0, 0.9)}, "beta parameter at index 0"),
                  ({"betas": (0.9, -0.1)}, "beta parameter at index 1"),
                  ({"weight_decay": -0.1}, "weight_decay")]

CASES: dict[str, Case] = {
    "Adam(control)": Case(
        lambda p, **kw: torch.optim.Adam(p, **{"lr": 1e-2, **kw}),
        {"lr": 3e-2, "betas": (0.8, 0.99)},
        [*COMMON_INVALID, ({"eps": -1.0}, "epsilon")], nonfinite="propagate"),
    "Lion": Case(
        lambda p, **kw: Lion(p, **{"lr": 1e-3, "weight_decay": 0.1, **kw}),
        {"lr": 3e-3, "betas": (0.8, 0.95), "weight_decay": 0.0},
        [*COMMON_INVALID, ({"lr": -1.0}, r"\(must be >= 0\)")]),
    "AdaBelief": Case(
        lambda p, **kw: AdaBelief(p, **{"lr": 1e-2, "eps": 1e-12, **kw}),
        {"lr": 3e-2, "betas": (0.8, 0.99), "weight_decay": 0.05},
        [*COMMON_INVALID, ({"eps": -1.0}, r"Invalid epsilon value: -1.0 \(must be >= 0\)")]),
    "LAMB": Case(
        lambda p, **kw: LAMB(p, **{"lr": 1e-2, "weight_decay": 0.01, **kw}),
        {"lr": 3e-2, "trust_clip": (0.0, 0.5)},
        [*COMMON_INVALID, ({"eps": -1.0}, "epsilon"), ({"trust_clip": (2.0, 1.0)}, "trust_clip")]),
    "Lookahead(SGD)": Case(
        _lookahead(lambda p, **kw: torch.optim.SGD(p, **{"lr": 0.05, "momentum": 0.9, **kw})),
        {"lr": 0.02, "k": 2, "alpha": 0.8},
        [({"k": 0}, r"Invalid k: 0 \(must be an integer >= 1\)"), ({"k": 2.5}, "Invalid k"),
         ({"alpha": 1.5}, r"Invalid alpha: 1.5 \(must be in \[0, 1\]\)"),
         ({"inner_state": "drop"}, "inner_state"), ({"lr": -1.0}, "learning rate")],
        nonfinite="propagate"),
    "Lookahead(Lion)": Case(
        _lookahead(lambda p, **kw: Lion(p, **{"lr": 1e-3, **kw})),
        {"lr": 3e-3, "alpha": 0.3, "inner_state": "reset"},
        [({"alpha": -0.5}, "alpha"), ({"lr": -1.0}, "learning rate")]),
}
NAMES = list(CASES)


def model(dtype=torch.float64, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 2)).to(dtype)


def data(step: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    x, y = torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)
    return x.to(dtype), y.to(dtype)


def loss_of(net: torch.nn.Module, step: int) -> torch.Tensor:
    x, y = data(step, next(net.parameters()).dtype)
    return torch.nn.functional.mse_loss(net(x), y)


def train(net, opt, steps: range) -> None:
    for s in steps:
        opt.zero_grad()
        loss_of(net, s).backward()
        opt.step()


def assert_same_params(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def assert_same_tree(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        assert a == b


def snapshot(opt: torch.optim.Optimizer) -> dict[str, Any]:
    return copy.deepcopy(opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_the_identical_trajectory(name):
    make = CASES[name].make
    net = model()
    opt = make(net.parameters())
    train(net, opt, range(7))  # mid-cycle for Lookahead (k = 3)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    twin = copy.deepcopy(net)
    opt2 = make(twin.parameters())
    opt2.load_state_dict(torch.load(buffer, weights_only=True))
    assert_same_tree(opt.state_dict(), opt2.state_dict())
    train(net, opt, range(7, 15))
    train(twin, opt2, range(7, 15))
    assert_same_params(net, twin)


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_hyperparameters_equal_separate_optimizers(name):
    case = CASES[name]
    net = model()
    first, second = net[0], net[2]
    opt = case.make([{"params": first.parameters()},
                     {"params": second.parameters(), **case.group_hyper}])
    twin = copy.deepcopy(net)
    opt_a = case.make(twin[0].parameters())
    opt_b = case.make(twin[2].parameters(), **case.group_hyper)
    for s in range(8):
        for o in (opt, opt_a, opt_b):
            o.zero_grad()
        loss_of(net, s).backward()
        loss_of(twin, s).backward()
        opt.step()
        opt_a.step()
        opt_b.step()
    assert_same_params(net, twin)
    assert opt.param_groups[1]["lr"] == case.group_hyper["lr"]


@pytest.mark.parametrize("name", NAMES)
def test_lr_scheduler_drives_lr(name):
    make = CASES[name].make
    runs = {}
    for mode in ("scheduler", "manual", "constant"):
        net = model()
        opt = make(net.parameters())
        base = opt.param_groups[0]["lr"]
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        lrs = []
        for s in range(8):
            if mode == "manual":
                opt.param_groups[0]["lr"] = base * 0.5 ** (s // 2)
            elif mode == "constant":
                opt.param_groups[0]["lr"] = base
            lrs.append(opt.param_groups[0]["lr"])
            train(net, opt, range(s, s + 1))
            if mode == "scheduler":
                sched.step()
        runs[mode] = (net, lrs)
    assert runs["scheduler"][1] == pytest.approx([runs["scheduler"][1][0] * 0.5 ** (s // 2)
                                                  for s in range(8)])
    assert_same_params(runs["scheduler"][0], runs["manual"][0])
    last = [p for p in runs["scheduler"][0].parameters()][-1]
    assert not torch.equal(last, [p for p in runs["constant"][0].parameters()][-1])


@pytest.mark.parametrize("name,kwargs,match", [
    (name, kwargs, match) for name in NAMES for kwargs, match in CASES[name].invalid])
def test_invalid_hyperparameters_raise_value_error_naming_the_parameter(name, kwargs, match):
    make = CASES[name].make
    with pytest.raises(ValueError, match=match):
        make(model().parameters(), **kwargs)
    # ours also check the overrides of an added group (torch.optim.SGD does not check lr there)
    if name != "Adam(control)" and not (name == "Lookahead(SGD)" and "lr" in kwargs):
        net = model()
        opt = make(net[0].parameters())
        with pytest.raises(ValueError, match=match):
            opt.add_param_group({"params": net[2].parameters(), **kwargs})


@pytest.mark.parametrize("name", NAMES)
def test_parameters_without_gradients_are_skipped(name):
    net = model()
    unused = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = CASES[name].make([*net.parameters(), unused])
    before = unused.detach().clone()
    train(net, opt, range(4))
    assert torch.equal(unused, before)
    assert not opt.state.get(unused)
    # a parameter that had gradients, then none: value and state untouched
    frozen = net[2].bias
    value, state = frozen.detach().clone(), snapshot(opt)
    for s in range(4, 7):
        opt.zero_grad()
        loss_of(net, s).backward()
        frozen.grad = None
        opt.step()
    assert torch.equal(frozen, value)
    index = len(list(net.parameters())) - 1  # bias of the last layer: the last param of net
    after = opt.state_dict()
    assert_same_tree(state["state"].get(index), after["state"].get(index))
    if "inner" in after:
        assert_same_tree(state["inner"]["state"].get(index), after["inner"]["state"].get(index))


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_is_independent(name):
    net = model()
    opt = CASES[name].make(net.parameters())
    train(net, opt, range(4))
    clone = copy.deepcopy(opt)
    saved = snapshot(clone)
    assert_same_tree(saved, opt.state_dict())
    train(net, opt, range(4, 6))
    assert_same_tree(saved, clone.state_dict())
    if isinstance(clone, Lookahead):
        assert clone.param_groups is clone.optimizer.param_groups


@pytest.mark.parametrize("name", NAMES)
def test_float32_and_float64(name):
    make = CASES[name].make
    nets = {}
    for dtype in (torch.float32, torch.float64):
        net = model(dtype)
        opt = make(net.parameters())
        train(net, opt, range(10))
        for state in opt.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    assert value.dtype == dtype
        nets[dtype] = net
    for p, q in zip(nets[torch.float32].parameters(), nets[torch.float64].parameters(),
                    strict=True):
        torch.testing.assert_close(p.double(), q, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_gradient_policy(name):
    case = CASES[name]
    net = model()
    opt = case.make(net.parameters())
    train(net, opt, range(2))
    values, state = [p.detach().clone() for p in net.parameters()], snapshot(opt)
    opt.zero_grad()
    loss_of(net, 2).backward()
    net[0].weight.grad[0, 0] = float("nan")
    if case.nonfinite == "raise":
        with pytest.raises(ValueError, match="non-finite"):
            opt.step()
        for p, v in zip(net.parameters(), values, strict=True):
            assert torch.equal(p, v)
        assert_same_tree(state, opt.state_dict())
    else:  # torch's built-ins: the NaN reaches the parameter
        opt.step()
        assert torch.isnan(net[0].weight).any()


@pytest.mark.parametrize("name", NAMES)
def test_closure_is_called_once_and_its_loss_returned(name):
    make = CASES[name].make
    net, twin = model(), model()
    opt, opt2 = make(net.parameters()), make(twin.parameters())
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = loss_of(net, 0)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and torch.equal(loss, loss_of(twin, 0))
    train(twin, opt2, range(1))
    assert_same_params(net, twin)


@pytest.mark.parametrize("name", NAMES)
def test_zero_grad_and_add_param_group(name):
    make = CASES[name].make
    net = model()
    opt = make(net[0].parameters())
    train(net, opt, range(2))
    opt.zero_grad()
    assert all(p.grad is None for p in net[0].parameters())
    late = net[2].weight.detach().clone()
    opt.add_param_group({"params": [net[2].weight], "lr": opt.param_groups[0]["lr"] / 2})
    assert len(opt.param_groups) == 2
    assert set(opt.param_groups[0]) == set(opt.param_groups[1])  # defaults filled in
    train(net, opt, range(2, 5))
    assert not torch.equal(net[2].weight, late)
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": [net[2].weight]})
