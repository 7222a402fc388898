"""The problem oracle interface (INVENTORY §1.1), torch side.

Each torch problem is built from the same arguments as its NumPy definition
(``Cls(**reference_problem.spec(), dtype=..., device=...)``) and computes every quantity with
``torch.func``: ``functional_call`` over an ``nn.Module``, ``vmap(grad)`` for per-sample
gradients, ``jvp(grad)`` (forward-over-reverse) for Hessian-vector products.

Same conventions as the reference: parameters are a mapping name -> tensor, dense matrices
index ``torchimpl.tree.flatten(params)``, ``batch`` is ``None`` or an integer index array,
the loss is a per-sample mean unless built with ``reduction="sum"``, and an undefined
quantity raises ``NotImplementedError`` naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchimpl.tree import Tree

Batch = Any  # None, or an integer index array (NumPy or torch)


class Problem:
    """Base class of torch problems; the methods mirror ``reference.problems.base.Problem``."""

    id: str = "prob:?"

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise self._undefined("init_params")

    def num_samples(self) -> int:
        return 1

    def loss(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("loss")

    def grad(self, params: Tree, batch: Batch = None) -> dict[str, torch.Tensor]:
        raise self._undefined("grad")

    def per_sample_losses(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("per_sample_losses")

    def per_sample_grads(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("per_sample_grads")

    def hessian(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("hessian")

    def hvp(self, params: Tree, v: Tree, batch: Batch = None) -> dict[str, torch.Tensor]:
        raise self._undefined("hvp")

    def jac_out(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("jac_out")

    def out_hess(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("out_hess")

    def ggn(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("ggn")

    def fisher_true(
        self,
        params: Tree,
        batch: Batch = None,
        mc_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        raise self._undefined("fisher_true")

    def fisher_emp(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        raise self._undefined("fisher_emp")

    def sample_labels(
        self, params: Tree, generator: torch.Generator, batch: Batch = None
    ) -> torch.Tensor:
        raise self._undefined("sample_labels")

    def layer_stats(self, params: Tree, batch: Batch = None) -> list[dict[str, torch.Tensor]]:
        raise self._undefined("layer_stats")

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        return None

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        return {}

    def _undefined(self, quantity: str) -> NotImplementedError:
        return NotImplementedError(f"{self.id} does not define {quantity!r}")
