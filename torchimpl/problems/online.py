"""Online convex optimisation (INVENTORY §1.2 prob:online_convex), torch.

Rounds t = 1..T, f_t(x) = g_t^T x + 1/2 sum_i a_ti (x_i - z_ti)^2 on X = [-R, R]^d (the Reddi
sequence, random linear and diagonal quadratic losses). Same API as the reference:
``loss_t``/``grad_t`` (1-based t), ``project``, ``comparator(T)`` (closed form per
coordinate), ``regret(iterates)``; the oracle interface sees the horizon average, sample
n = round n + 1, with gradients and curvature from torch.func.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from torchimpl.problems.base import Batch
from torchimpl.problems.functional import SampleProblem, batch_index, check_tree, to_tensor
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree


class OnlineConvex(SampleProblem):
    """Losses from G, A (>= 0), Z, each (T, d); box radius R."""

    def __init__(self, G: Any, A: Any, Z: Any, R: float = 1.0, id: str = "prob:online_convex",
                 dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        self.id = id
        self.G = to_tensor(G, "G", dtype, device, 2)
        self.A = to_tensor(A, "A", dtype, device, 2)
        self.Z = to_tensor(Z, "Z", dtype, device, 2)
        if self.A.shape != self.G.shape or self.Z.shape != self.G.shape or 0 in self.G.shape:
            raise ValueError("G, A and Z must share one shape (T >= 1, d >= 1)")
        if bool((self.A < 0).any()):
            raise ValueError("A must be non-negative (convex losses)")
        self.R = float(R)
        if not 0.0 < self.R < math.inf:
            raise ValueError(f"Invalid R: {R}; must be finite and > 0")
        self.T, self.dim = self.G.shape
        self.shapes = {"x": torch.Size([self.dim])}

    def num_samples(self) -> int:
        return self.T

    def _samples(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        index = batch_index(batch, self.T, self.G.device)
        return self.G[index], self.A[index], self.Z[index]

    def _loss_one(self, params: Tree, g: torch.Tensor, a: torch.Tensor, z: torch.Tensor):
        x = params["x"]
        return g @ x + 0.5 * (a * (x - z) ** 2).sum()

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x ~ U(-R, R)^d."""
        u = torch.rand(self.dim, generator=generator, dtype=self.G.dtype).to(self.G.device)
        return {"x": self.R * (2.0 * u - 1.0)}

    def loss_t(self, params: Tree, t: int) -> torch.Tensor:
        return self.per_sample_losses(params, [self._round(t) - 1])[0]

    def grad_t(self, params: Tree, t: int) -> dict[str, torch.Tensor]:
        return {"x": self.per_sample_grads(params, [self._round(t) - 1])[0]}

    def project(self, params: Tree) -> dict[str, torch.Tensor]:
        return {"x": check_tree(params, self.shapes, "params")["x"].clamp(-self.R, self.R)}

    def comparator(self, T: int | None = None) -> tuple[torch.Tensor, float]:
        """argmin_{x in X} sum_{t<=T} f_t(x) and the minimum."""
        T = self.T if T is None else self._round(T)
        g, a = self.G[:T].sum(0), self.A[:T].sum(0)
        az = (self.A[:T] * self.Z[:T]).sum(0)
        inner = ((az - g) / torch.where(a > 0, a, 1.0)).clamp(-self.R, self.R)
        x = torch.where(a > 0, inner, -self.R * torch.sign(g))
        return x, float(self.per_sample_losses({"x": x}, list(range(T))).sum())

    def regret(self, iterates: Sequence[Mapping[str, torch.Tensor]] | torch.Tensor) -> float:
        """R_T = sum_{t<=T} f_t(x_t) - min_{x in X} sum_{t<=T} f_t(x), T = len(iterates)."""
        X = iterates if torch.is_tensor(iterates) else torch.stack([p["x"] for p in iterates])
        X = X.to(self.G)
        if X.dim() != 2 or X.shape[1] != self.dim:
            raise ValueError(f"iterates must have shape (T, {self.dim}), got {tuple(X.shape)}")
        T = self._round(X.shape[0])
        u = X - self.Z[:T]
        incurred = (self.G[:T] * X).sum() + 0.5 * (self.A[:T] * u * u).sum()
        return float(incurred) - self.comparator(T)[1]

    def optimum(self) -> tuple[dict[str, torch.Tensor], float]:
        x, total = self.comparator()
        return {"x": x}, total / self.T

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        a = self.A.mean(0)
        corners = torch.tensor([-self.R, self.R], dtype=self.G.dtype, device=self.G.device)
        ends = (self.G[..., None] + self.A[..., None] * (corners - self.Z[..., None])).abs()
        G = ends.amax(-1).pow(2).sum(1).sqrt().max()
        return {"L": float(a.max()), "mu": float(a.min()),
                "D": 2.0 * self.R * math.sqrt(self.dim), "G": float(G)}

    def _round(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 1 <= t <= self.T:
            raise ValueError(f"Invalid round t: {t!r}; must be an integer in [1, {self.T}]")
        return int(t)


REGISTRY.register("prob:online_convex", OnlineConvex)
