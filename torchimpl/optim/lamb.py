"""LAMB ([ext: You et al. 2020], Alg. 2), the functional rule ``rule:fo.lamb``.

Per parameter tensor (a "layer"):

    m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
    r = (m/(1 - beta1^t)) / (sqrt(v/(1 - beta2^t)) + eps) + weight_decay theta
    theta <- theta - lr phi(||theta||)/||r|| r     (the ratio is 0 where ||r|| = 0)

phi is the identity (``trust_clip=None``) or the clip to [gamma_l, gamma_u]
(``trust_clip=(gamma_l, gamma_u)``). As in the rule, phi(||theta||) = 0 gives no update:
with phi the identity a parameter tensor that is exactly zero stays zero.

Name mapping (torch -> rule): lr -> alpha, betas -> (beta1, beta2), eps -> eps,
weight_decay -> lam, trust_clip None -> phi "identity", (lo, hi) -> phi "clip",
gamma_l lo, gamma_u hi. Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-6, weight_decay 0.
"""

from __future__ import annotations

import torch

from torchimpl.optim._base import FirstOrder, check_common, check_nonneg, step_counter, zeros


class LAMB(FirstOrder):
    """LAMB (layer-wise adaptive moments); see the module docstring."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0,
                 trust_clip: tuple[float, float] | None = None) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "trust_clip": trust_clip})

    def _validate(self, group) -> None:
        check_common(group)
        clip = group.get("trust_clip")
        if clip is not None:
            if not isinstance(clip, tuple | list) or len(clip) != 2:
                raise ValueError(f"Invalid trust_clip: {clip!r} (must be None or a pair "
                                 "(gamma_l, gamma_u) with 0 <= gamma_l <= gamma_u)")
            check_nonneg("trust_clip lower bound", clip[0])
            if not clip[1] >= clip[0]:
                raise ValueError(f"Invalid trust_clip: {clip!r} (must have gamma_l <= gamma_u)")

    def _init_state(self, p):
        return {"step": step_counter(), "exp_avg": zeros(p), "exp_avg_sq": zeros(p)}

    def _update(self, p, grad, state, group) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, lam, clip = group["lr"], group["eps"], group["weight_decay"], group["trust_clip"]
        state["step"] += 1
        t = int(state["step"].item())
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_((1 - beta1) * grad)
        v.mul_(beta2).add_((1 - beta2) * grad * grad)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        r = (m / bc1) / (torch.sqrt(v / bc2) + eps) + lam * p
        norm_theta = torch.linalg.vector_norm(p)
        scale = norm_theta if clip is None else torch.clamp(norm_theta, clip[0], clip[1])
        norm_r = torch.linalg.vector_norm(r)
        ratio = torch.where(norm_r > 0, scale / torch.where(norm_r > 0, norm_r, 1.0), 0.0)
        p.sub_(lr * ratio * r)
