"""Lion ([ext: Chen et al. 2023], Alg. 1), the functional rule ``rule:fo.lion`` (= chen2023).

    c = beta1 m + (1 - beta1) g
    theta <- theta - lr (sign(c) + weight_decay theta)
    m <- beta2 m + (1 - beta2) g

Name mapping (torch -> rule): lr -> eta, betas -> (beta1, beta2), weight_decay -> lam.
Defaults: lr 1e-4, betas (0.9, 0.99), weight_decay 0 (the rule's defaults). sign(0) = 0.
"""

from __future__ import annotations

import torch

from torchimpl.optim._base import FirstOrder, zeros


class Lion(FirstOrder):
    """Lion (EvoLved Sign Momentum); see the module docstring for the update and mapping."""

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    def _init_state(self, p):
        return {"exp_avg": zeros(p)}

    def _update(self, p, grad, state, group) -> None:
        beta1, beta2 = group["betas"]
        lr, lam = group["lr"], group["weight_decay"]
        m = state["exp_avg"]
        c = beta1 * m + (1 - beta1) * grad
        p.sub_(lr * (torch.sign(c) + lam * p))
        m.mul_(beta2).add_((1 - beta2) * grad)
