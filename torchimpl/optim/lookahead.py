"""Lookahead around any torch optimizer (003 §3.7; [ext: Zhang et al. 2019] defaults k = 5,
alpha = 0.5): the functional rule ``rule:meta.lookahead``.

The inner optimizer takes the fast steps; after every k steps of a parameter its slow weight
phi moves to phi + alpha (theta - phi) and the parameter restarts from phi. Names are the
rule's: k, alpha, inner_state ("keep" the inner optimizer's state across synchronisations, or
"reset": clear that parameter's inner state, so the inner optimizer re-initialises it).

Sharing: ``param_groups`` *is* the inner optimizer's list (the same dicts), so an LR scheduler
attached to the wrapper drives the inner learning rate, and ``k``/``alpha`` live in each
group (a scheduler or a group override may set them). ``add_param_group`` adds to the inner
optimizer. ``state`` holds, per parameter, ``slow`` (phi, created from the parameter's value
before its first step) and ``lookahead_step``; ``state_dict()`` holds that, the shared
``param_groups`` and, under ``"inner"``, the inner optimizer's own ``state_dict()``.

Parameters whose ``.grad`` is None at a step are skipped (no slow-weight update, no count).
Non-finite gradients follow the inner optimizer's policy (this package's classes raise
``ValueError`` before any change; torch's built-ins propagate the NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer

from torchimpl.optim._base import _number

INNER_STATE = ("keep", "reset")


def _validate(group: dict[str, Any]) -> None:
    k = group["k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"Invalid k: {k!r} (must be an integer >= 1)")
    if not 0.0 <= _number("alpha", group["alpha"]) <= 1.0:
        raise ValueError(f"Invalid alpha: {group['alpha']} (must be in [0, 1])")
    if group["inner_state"] not in INNER_STATE:
        raise ValueError(f"Invalid inner_state: {group['inner_state']!r} "
                         f"(must be one of {INNER_STATE})")


class Lookahead(Optimizer):
    """``Lookahead(torch.optim.SGD(model.parameters(), lr=0.1), k=5, alpha=0.5)``."""

    def __init__(self, optimizer: Optimizer, k: int = 5, alpha: float = 0.5,
                 inner_state: str = "keep") -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        defaults = {"k": k, "alpha": alpha, "inner_state": inner_state}
        _validate(defaults)
        self.optimizer = optimizer
        super().__init__(optimizer.param_groups, defaults)
        self.param_groups = optimizer.param_groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _validate({**self.defaults, **param_group})
        if not any(param_group is g for g in self.optimizer.param_groups):
            self.optimizer.add_param_group(param_group)
            param_group = self.optimizer.param_groups[-1]
        for name, value in self.defaults.items():
            param_group.setdefault(name, value)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "optimizer": self.optimizer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.param_groups = self.optimizer.param_groups

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["inner"] = self.optimizer.state_dict()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        inner = state_dict.pop("inner")
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(inner)
        self.param_groups = self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """The inner optimizer's step (``closure`` is handed to it), then the slow-weight
        update of the parameters that had a gradient."""
        fresh = {p: p.detach().clone() for g in self.param_groups for p in g["params"]
                 if "slow" not in self.state.get(p, {})}
        if closure is None:
            loss = self.optimizer.step()
        else:
            with torch.enable_grad():
                loss = self.optimizer.step(closure)
        for group in self.param_groups:
            k, alpha = group["k"], group["alpha"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]  # created only for parameters that have a gradient
                if "slow" not in state:
                    state["slow"] = fresh[p]
                    state["lookahead_step"] = 0
                state["lookahead_step"] += 1
                if state["lookahead_step"] % k == 0:
                    slow = state["slow"]
                    slow.add_(alpha * (p - slow))  # 003 §3.7: phi + alpha (theta_{t,k} - phi)
                    p.copy_(slow)
                    if group["inner_state"] == "reset":
                        self.optimizer.state[p] = {}
        return loss
