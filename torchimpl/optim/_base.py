"""Shared machinery of the `torchimpl.optim` classes: validation and the step loop.

Errors follow torch.optim's wording, with the allowed range added:
``ValueError("Invalid learning rate: -1 (must be >= 0)")``. Group-level overrides given to
the constructor or to ``add_param_group`` are validated the same way.

Non-finite gradients (policy, INVENTORY §0.4 / DESIGN "never silently corrupt state"): before
touching anything, ``step`` checks every gradient it is about to use; a NaN or inf raises
``ValueError`` naming the group and parameter index, and no parameter or state is modified.
(torch.optim's built-ins instead propagate the NaN into the parameters and moments.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from numbers import Real
from typing import Any

import torch
from torch.optim import Optimizer


def _number(label: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Invalid {label}: a tensor with {value.numel()} elements "
                             "(must be a scalar)")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{label} must be a real number, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"Invalid {label}: {value} (must not be NaN)")
    return float(value)


def check_nonneg(label: str, value: Any) -> None:
    if not _number(label, value) >= 0.0:
        raise ValueError(f"Invalid {label}: {value} (must be >= 0)")


def check_betas(betas: Any) -> None:
    if not isinstance(betas, tuple | list) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (must be a pair (beta1, beta2))")
    for i, beta in enumerate(betas):
        if not 0.0 <= _number(f"beta parameter at index {i}", beta) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta} (must be in [0, 1))")


def check_common(group: dict[str, Any]) -> None:
    """lr, betas, eps and weight_decay, as far as the group has them."""
    check_nonneg("learning rate", group["lr"])
    if "betas" in group:
        check_betas(group["betas"])
    if "eps" in group:
        check_nonneg("epsilon value", group["eps"])
    if "weight_decay" in group:
        check_nonneg("weight_decay value", group["weight_decay"])


class FirstOrder(Optimizer):
    """A torch optimizer whose step is a per-parameter update ``_update(p, grad, state,
    group)`` under ``torch.no_grad()``; parameters whose ``.grad`` is None are skipped (their
    state untouched). Subclasses define ``_validate(group)``, ``_init_state(p)`` and
    ``_update``."""

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self._validate(defaults)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        check_common(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self._validate({**self.defaults, **param_group})
        super().add_param_group(param_group)

    def _with_grads(self) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    def _check_finite(self) -> None:
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                if not bool(torch.isfinite(p.grad).all()):
                    raise ValueError(
                        f"{type(self).__name__}: non-finite gradient (NaN or inf) in "
                        f"param_groups[{gi}]['params'][{pi}]; no parameter or state was updated")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One update; ``closure`` (re-evaluates the loss and its gradients) is called once,
        with gradients enabled, and its loss returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_finite()
        for group, p in self._with_grads():
            state = self.state[p]
            if len(state) == 0:
                state.update(self._init_state(p))
            self._update(p, p.grad, state, group)
        return loss

    def _init_state(self, p: torch.Tensor) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, p, grad, state, group) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def step_counter() -> torch.Tensor:
    """The per-parameter step count, a 0-dim float32 tensor as in torch.optim."""
    return torch.tensor(0.0, dtype=torch.float32)
