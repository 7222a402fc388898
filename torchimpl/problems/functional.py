"""torch.func machinery shared by the torch problems (quadratics and networks).

`FunctionalProblem` turns a scalar loss ``_loss(params, batch)`` into gradient, Hessian-vector
product (forward-over-reverse, ``jvp(grad(loss))``) and dense Hessian (the same HVP of the loss
of the flat parameter vector, vmapped over the unit directions, in chunks of
``_hessian_chunk(batch)`` directions to bound memory). `SampleProblem` builds the loss from a
per-sample loss ``_loss_one(params, *sample)``: per-sample losses and gradients by
``vmap(grad(...))``, the batch loss as their mean (or sum, ``reduction="sum"``), and the
empirical Fisher.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.func import grad, jvp, vmap

from torchimpl.problems.base import Batch, Problem
from torchimpl.tree import Tree, flatten, unflatten

REDUCTIONS = ("mean", "sum")


def to_tensor(array: Any, name: str, dtype: torch.dtype, device: Any, ndim: int) -> torch.Tensor:
    """``array`` as a finite tensor of ``dtype`` on ``device`` with ``ndim`` dimensions."""
    tensor = torch.as_tensor(np.asarray(array) if not torch.is_tensor(array) else array)
    if tensor.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(tensor.shape)}")
    tensor = tensor.to(dtype=dtype, device=device)
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return tensor


def batch_index(batch: Batch, size: int, device: Any) -> torch.Tensor:
    """``batch`` (None = everything, or integer indices into ``size`` samples) as int64 indices."""
    if batch is None:
        return torch.arange(size, device=device)
    index = torch.as_tensor(np.asarray(batch) if not torch.is_tensor(batch) else batch)
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise TypeError(f"batch must be an integer index array, got dtype {index.dtype}")
    if index.dim() != 1 or index.numel() == 0:
        raise ValueError(f"batch must be a non-empty 1-D index array, got {tuple(index.shape)}")
    if bool((index < 0).any() | (index >= size).any()):
        raise ValueError(f"batch indices must lie in [0, {size}), got {index.tolist()}")
    return index.to(device=device, dtype=torch.int64)


def flat_rows(tree: Tree, lead: int) -> torch.Tensor:
    """Leaves with ``lead`` leading (batch) dims -> (*lead_shape, P) in ``flatten`` order."""
    return torch.cat([v.reshape(*v.shape[:lead], -1) for v in tree.values()], dim=-1)


def check_tree(tree: Tree, shapes: dict[str, torch.Size], name: str) -> dict[str, torch.Tensor]:
    """``tree`` as a dict, with its names (in order) and shapes checked against ``shapes``."""
    if list(tree) != list(shapes):
        raise ValueError(
            f"{name} must have the keys {list(shapes)} in this order, got {list(tree)}"
        )
    for key, shape in shapes.items():
        if tree[key].shape != shape:
            raise ValueError(
                f"{name}[{key!r}] has shape {tuple(tree[key].shape)}; expected {tuple(shape)}"
            )
    return dict(tree)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid reduction: {reduction!r}; allowed: {REDUCTIONS}")
    return reduction


class FunctionalProblem(Problem):
    """Gradient, HVP and Hessian of ``_loss(params, batch)`` by torch.func.

    ``shapes``: the parameter names, in order, and their shapes.
    """

    shapes: dict[str, torch.Size]

    def _loss(self, params: Tree, batch: Batch) -> torch.Tensor:
        raise self._undefined("loss")

    def loss(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        return self._loss(dict(params), batch)

    def grad(self, params: Tree, batch: Batch = None) -> dict[str, torch.Tensor]:
        return grad(self._loss)(dict(params), batch)

    def hvp(self, params: Tree, v: Tree, batch: Batch = None) -> dict[str, torch.Tensor]:
        """H v by forward-over-reverse: the directional derivative of the gradient along v."""
        params, v = check_tree(params, self.shapes, "params"), check_tree(v, self.shapes, "v")
        return jvp(lambda p: grad(self._loss)(p, batch), (params,), (v,))[1]

    def hessian(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """Dense H over ``flatten(params)``: column j is the HVP with the unit vector e_j.

        The loss is differentiated as a function of the flat vector, so each vmapped direction
        is one tangent tensor rather than one per leaf.
        """
        params = check_tree(params, self.shapes, "params")
        theta = flatten(params)

        def hvp_flat(u: torch.Tensor) -> torch.Tensor:
            flat_grad = grad(lambda t: self._loss(unflatten(t, params), batch))
            return jvp(flat_grad, (theta,), (u,))[1]

        eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
        return vmap(hvp_flat, chunk_size=self._hessian_chunk(batch))(eye).T

    def _hessian_chunk(self, batch: Batch) -> int | None:
        """Unit directions per vmapped HVP pass in `hessian`; None: all at once."""
        return None


class SampleProblem(FunctionalProblem):
    """A finite sum: the loss is the mean (or sum) over the batch of ``_loss_one``."""

    reduction: str = "mean"

    def _loss_one(self, params: Tree, *sample: torch.Tensor) -> torch.Tensor:
        raise self._undefined("per-sample loss")

    def _samples(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """The data of the batch, each tensor indexed by sample along dim 0."""
        raise self._undefined("samples")

    def _scale(self, size: int) -> float:
        """Weight of one per-sample term: 1/B for the mean loss, 1 for the sum."""
        return 1.0 / size if self.reduction == "mean" else 1.0

    def _vmapped(self, fn: Any, params: Tree, samples: tuple[torch.Tensor, ...]) -> Any:
        """``fn(params, *sample)`` for every sample, batched along dim 0."""
        return vmap(fn, in_dims=(None,) + (0,) * len(samples))(dict(params), *samples)

    def _loss(self, params: Tree, batch: Batch) -> torch.Tensor:
        losses = self.per_sample_losses(params, batch)
        return losses.sum() * self._scale(losses.shape[0])

    def per_sample_losses(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        return self._vmapped(self._loss_one, params, self._samples(batch))

    def per_sample_grads(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """(B, P): g_n = grad of the per-sample loss l_n, unscaled."""
        return flat_rows(self._vmapped(grad(self._loss_one), params, self._samples(batch)), 1)

    def fisher_emp(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """(1/B) sum_n g_n g_n^T with the data labels (sum: no 1/B)."""
        g = self.per_sample_grads(params, batch)
        return (g.T @ g) * self._scale(g.shape[0])
