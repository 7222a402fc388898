"""AdaBelief ([ext: Zhuang et al. 2020]), the functional rule ``rule:fo.adabelief``
(= zhuang2020), with optional decoupled weight decay.

    m <- beta1 m + (1 - beta1) g
    s <- beta2 s + (1 - beta2)(g - m)^2 + eps
    theta <- theta (1 - lr weight_decay) - lr (m/(1 - beta1^t)) / (sqrt(s/(1 - beta2^t)) + eps)

Name mapping (torch -> rule): lr -> alpha, betas -> (beta1, beta2), eps -> eps. Defaults:
lr 1e-3, betas (0.9, 0.999), eps 1e-16 (the rule's). ``weight_decay`` is the
``decoupled_lr`` convention of ``rule:meta.weight_decay`` (torch AdamW's): the class equals
``rule:meta.weight_decay(inner="rule:fo.adabelief", convention="decoupled_lr", wd=...)``.
"""

from __future__ import annotations

import torch

from torchimpl.optim._base import FirstOrder, step_counter, zeros


class AdaBelief(FirstOrder):
    """AdaBelief; see the module docstring for the update and mapping."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-16, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay})

    def _init_state(self, p):
        return {"step": step_counter(), "exp_avg": zeros(p), "exp_avg_var": zeros(p)}

    def _update(self, p, grad, state, group) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        state["step"] += 1
        t = int(state["step"].item())
        m, s = state["exp_avg"], state["exp_avg_var"]
        m.mul_(beta1).add_((1 - beta1) * grad)
        s.mul_(beta2).add_((1 - beta2) * (grad - m) ** 2).add_(eps)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        step = lr * (m / bc1) / (torch.sqrt(s / bc2) + eps)
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.sub_(step)
