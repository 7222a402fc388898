"""Each `torchimpl.optim` class equals its functional rule (torchimpl.rules) over 50 steps.

A small MLP in float64 on fixed data; the class steps the module, the rule steps a parameter
dict with gradients from torch.func (the same loss), and the iterates agree to rtol 1e-10 at
every step. The name mappings are the ones documented in `torchimpl.optim`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.func import functional_call, grad

import torchimpl.rules
from torchimpl.optim import LAMB, AdaBelief, Lion, Lookahead

STEPS, RTOL = 50, 1e-10

CASES: dict[str, tuple[Callable[..., torch.optim.Optimizer], str, dict[str, Any]]] = {
    "Lion": (lambda p: Lion(p, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1),
             "rule:fo.lion", {"eta": 1e-3, "beta1": 0.9, "beta2": 0.99, "lam": 0.1}),
    "AdaBelief": (lambda p: AdaBelief(p, lr=1e-2, betas=(0.8, 0.99)),
                  "rule:fo.adabelief", {"alpha": 1e-2, "beta1": 0.8, "beta2": 0.99}),
    "AdaBelief(weight_decay)": (
        lambda p: AdaBelief(p, lr=1e-2, eps=1e-12, weight_decay=0.05), "rule:meta.weight_decay",
        {"inner": "rule:fo.adabelief", "inner_hyper": {"alpha": 1e-2, "eps": 1e-12},
         "wd": 0.05, "convention": "decoupled_lr"}),
    "LAMB": (lambda p: LAMB(p, lr=1e-2, weight_decay=0.01),
             "rule:fo.lamb", {"alpha": 1e-2, "lam": 0.01}),
    "LAMB(trust_clip)": (lambda p: LAMB(p, lr=1e-2, betas=(0.85, 0.99), trust_clip=(0.1, 0.5)),
                         "rule:fo.lamb", {"alpha": 1e-2, "beta1": 0.85, "beta2": 0.99,
                                          "phi": "clip", "gamma_l": 0.1, "gamma_u": 0.5}),
    "Lookahead(SGD)": (lambda p: Lookahead(torch.optim.SGD(p, lr=0.1), k=3, alpha=0.5),
                       "rule:meta.lookahead", {"inner": "rule:fo.sgd",
                                               "inner_hyper": {"alpha": 0.1}, "k": 3,
                                               "alpha": 0.5}),
    "Lookahead(Adam)": (lambda p: Lookahead(torch.optim.Adam(p, lr=1e-2), k=4, alpha=0.3),
                        "rule:meta.lookahead", {"inner": "rule:fo.adam",
                                                "inner_hyper": {"alpha": 1e-2}, "k": 4,
                                                "alpha": 0.3}),
    "Lookahead(Lion, reset)": (
        lambda p: Lookahead(Lion(p, lr=1e-3), k=5, alpha=0.6, inner_state="reset"),
        "rule:meta.lookahead", {"inner": "rule:fo.lion", "inner_hyper": {"eta": 1e-3}, "k": 5,
                                "alpha": 0.6, "inner_state": "reset"}),
}


def setup() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                              torch.nn.Linear(4, 2)).double()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 3, generator=gen), torch.randn(16, 2, generator=gen)
    return net, x.double(), y.double()


@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_class_equals_functional_rule(name):
    make, rule_id, hyper = CASES[name]
    net, x, y = setup()
    rule = torchimpl.rules.get(rule_id)

    def loss(params):
        return torch.nn.functional.mse_loss(functional_call(net, params, (x,)), y)

    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    state = rule.init(params)
    opt = make(net.parameters())
    for step in range(STEPS):
        updates, state = rule.step(grad(loss)(params), state, params, None, **hyper)
        params = {k: params[k] + updates[k] for k in params}
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        for k, p in net.named_parameters():
            error = torch.linalg.vector_norm(p.detach() - params[k])
            scale = torch.linalg.vector_norm(params[k]).clamp_min(1e-12)
            assert error / scale <= RTOL, f"{name}: step {step + 1}, {k}: {error / scale:.2e}"
