"""What the curvature engine needs to know about a model on a batch.

A torch problem built on ``torch.nn`` (``prob:mlp`` and its special cases, ``prob:cnn``,
``prob:normnet``, ...) hands the engine a `ModelBatch` from ``problem.as_model(batch)``; a user
builds one directly around any ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LOSSES = ("ce", "bce", "mse", "mse_half")


@dataclass(frozen=True)
class ModelBatch:
    """A module, a batch of inputs and targets, and the per-sample loss l_n = loss(z_n, y_n).

    ``module``: its ``named_parameters()`` names are the parameter names of the params
    mappings the engine takes (``functional_call``). ``x``: (B, ...) inputs. ``y``: (B,)
    classes for "ce", (B,) {0, 1} floats for "bce", (B, C) targets for "mse" (||z - y||^2) and
    "mse_half" (1/2 ||z - y||^2). ``reduction``: the batch loss is the "mean" or the "sum"
    of the per-sample losses.
    """

    module: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss: str = "ce"
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if not isinstance(self.module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}")
        if self.loss not in LOSSES:
            raise ValueError(f"Invalid loss: {self.loss!r}; allowed: {LOSSES}")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"Invalid reduction: {self.reduction!r}; allowed: ('mean', 'sum')")
        if self.x.shape[0] != self.y.shape[0] or self.x.shape[0] == 0:
            raise ValueError(f"x and y must hold the same number B >= 1 of samples, got "
                             f"{tuple(self.x.shape)} and {tuple(self.y.shape)}")
