"""The problem oracle interface (INVENTORY §1.1), NumPy side.

A problem holds its data as plain arrays. ``spec()`` returns the constructor arguments
(arrays and scalars) from which the torch twin, ``torchimpl.problems.get(id)(**spec)``, is
built, so both layers see identical data. Every quantity here is exact: closed forms or
hand-written (second-order) backpropagation, never finite differences or autograd.

Conventions (INVENTORY §5, each tested):
- ``params`` is a mapping name -> array; dense matrices over parameters index
  ``reference.tree.flatten(params)``.
- ``batch`` is ``None`` (the whole data set) or an integer index array into the data set.
- The loss is the mean of per-sample losses over the batch (``reduction="mean"``) unless
  the problem was built with ``reduction="sum"``. Per-sample gradients are gradients of the
  per-sample loss l_n, unscaled; their batch mean is the gradient of the mean loss.
- Hessian, GGN and both Fishers carry the same 1/N as the loss.
A quantity a problem cannot define (a Fisher for a bare quadratic) raises
``NotImplementedError`` naming the problem and the quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from reference.tree import Tree


class Problem:
    """Base class: every method below is part of the oracle interface."""

    id: str = "prob:?"

    def spec(self) -> dict[str, Any]:
        """Constructor arguments of the torch twin: NumPy arrays and Python scalars."""
        raise self._undefined("spec")

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A starting point drawn from ``rng``."""
        raise self._undefined("init_params")

    def num_samples(self) -> int:
        """N, the size of the data set (1 for problems without samples)."""
        return 1

    def loss(self, params: Tree, batch: np.ndarray | None = None) -> float:
        raise self._undefined("loss")

    def grad(self, params: Tree, batch: np.ndarray | None = None) -> dict[str, np.ndarray]:
        raise self._undefined("grad")

    def per_sample_losses(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Shape (B,)."""
        raise self._undefined("per_sample_losses")

    def per_sample_grads(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Shape (B, P): gradients of the per-sample losses (flat layout)."""
        raise self._undefined("per_sample_grads")

    def hessian(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Dense (P, P) Hessian of the loss."""
        raise self._undefined("hessian")

    def hvp(self, params: Tree, v: Tree, batch: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Hessian-vector product, exact (an R-operator pass where the model is a network)."""
        raise self._undefined("hvp")

    def jac_out(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Output Jacobians J_n, shape (B, C, P)."""
        raise self._undefined("jac_out")

    def out_hess(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Lambda_n = d^2 l / dz^2 at the outputs, shape (B, C, C)."""
        raise self._undefined("out_hess")

    def ggn(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """G = (1/N) sum_n J_n^T Lambda_n J_n, shape (P, P)."""
        raise self._undefined("ggn")

    def fisher_true(
        self,
        params: Tree,
        batch: np.ndarray | None = None,
        mc_samples: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """True Fisher: exact expectation over the model's labels, or ``mc_samples`` draws."""
        raise self._undefined("fisher_true")

    def fisher_emp(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """Empirical Fisher (1/N) sum_n g_n g_n^T with the data labels."""
        raise self._undefined("fisher_emp")

    def sample_labels(
        self, params: Tree, rng: np.random.Generator, batch: np.ndarray | None = None
    ) -> np.ndarray:
        """Labels drawn from the model's predictive distribution p_theta(y | x)."""
        raise self._undefined("sample_labels")

    def layer_stats(
        self, params: Tree, batch: np.ndarray | None = None
    ) -> list[dict[str, np.ndarray]]:
        """Per layer: ``h_bar`` (B, in+1), ``a`` (B, out), ``s`` = dl_n/da (B, out)."""
        raise self._undefined("layer_stats")

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """(x*, f*) when known, else None."""
        return None

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        """Known constants: ``L`` (gradient Lipschitz), ``mu`` (strong convexity), ..."""
        return {}

    def _undefined(self, quantity: str) -> NotImplementedError:
        return NotImplementedError(f"{self.id} does not define {quantity!r}")
