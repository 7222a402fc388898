"""The two layers as one test parameter: tests under ``tests/layers`` run once per layer.

``layer`` is the NumPy reference or the torch layer (float64); ``typed_layer`` adds the
dtype, float64 for the reference and float64 and float32 for torch; ``torch_layer`` and
``reference_layer`` are for the checks that exist in one layer only (torch.optim oracles,
dtype preservation, reference-only helpers). Expected values are NumPy closed forms: a test
converts its inputs with ``layer.to_layer`` and the rule's outputs with ``layer.to_numpy``, so
the torch layer is never checked against the reference's numbers. Session scope: Hypothesis
rejects function-scoped fixtures under ``@given``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class Layer:
    """One layer: its package (``reference`` or ``torchimpl``) and array conversions."""

    name: str  # "reference" or "torch"
    package: str
    dtype: str = "float64"  # the dtype `to_layer` produces (torch only may be float32)

    @property
    def is_torch(self) -> bool:
        return self.name == "torch"

    @property
    def xp(self) -> ModuleType:
        """``numpy`` or ``torch``, for layer-generic problem code (sum, exp, diag, ...)."""
        return torch if self.is_torch else np

    def module(self, dotted: str) -> ModuleType:
        """``layer.module("rules.adaptive")`` is ``reference.rules.adaptive`` or its twin."""
        return importlib.import_module(f"{self.package}.{dotted}")

    @property
    def rules(self) -> ModuleType:
        return self.module("rules")

    @property
    def estimators(self) -> ModuleType:
        return self.module("estimators")

    @property
    def problems(self) -> ModuleType:
        return self.module("problems")

    @property
    def tree(self) -> ModuleType:
        return self.module("tree")

    @property
    def Oracle(self) -> type:
        return self.module("oracle").Oracle

    @property
    def Quadratic(self) -> type:
        return self.module("problems.quadratic").Quadratic

    def quadratic(self, A, x_star, **kw) -> Any:
        """``Quadratic(A, x_star)`` from NumPy data, in this layer's dtype."""
        if self.is_torch:
            kw["dtype"] = DTYPES[self.dtype]
        return self.Quadratic(np.asarray(A, dtype=np.float64), np.asarray(x_star, np.float64),
                              **kw)

    def oracle(self, problem=None, seed: int | None = None, **kw) -> Any:
        """The layer's oracle; ``seed`` seeds its draws (a NumPy or a torch generator)."""
        if seed is not None:
            if self.is_torch:
                kw["generator"] = torch.Generator().manual_seed(seed)
            else:
                kw["rng"] = np.random.default_rng(seed)
        return self.Oracle(problem, **kw)

    def probe(self, dist: str, shape, seed: int) -> np.ndarray:
        """The layer's own seeded probe (in this layer's dtype), as a NumPy float64 array."""
        draw = self.module("oracle").probe
        if self.is_torch:
            return self.to_numpy(draw(dist, tuple(shape), seed, dtype=DTYPES[self.dtype]))
        return self.to_numpy(draw(dist, tuple(shape), seed))

    def init_params(self, problem, seed: int) -> dict:
        gen = torch.Generator().manual_seed(seed) if self.is_torch else np.random.default_rng(seed)
        return problem.init_params(gen)

    def to_layer(self, x) -> Any:
        """A fresh layer array (never a view of ``x``)."""
        if self.is_torch:
            if isinstance(x, torch.Tensor):
                return x.detach().clone().to(DTYPES[self.dtype])
            return torch.tensor(np.asarray(x, dtype=np.float64), dtype=DTYPES[self.dtype])
        return np.array(to_numpy(x), dtype=np.float64)

    def to_numpy(self, x) -> Any:
        return to_numpy(x)

    def cast(self, value) -> Any:
        """Arrays to layer arrays, mappings leaf by leaf; anything else unchanged."""
        if isinstance(value, np.ndarray | torch.Tensor):
            return self.to_layer(value)
        if isinstance(value, Mapping):
            return {k: self.cast(v) for k, v in value.items()}
        return value

    def with_dtype(self, dtype: str) -> Layer:
        return Layer(self.name, self.package, dtype)


def to_numpy(x) -> Any:
    """A fresh float64 NumPy copy of an array, tensor or number (either layer); mappings
    (parameter trees, states) leaf by leaf; strings and None unchanged."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy().copy()
    if isinstance(x, Mapping):
        return {k: to_numpy(v) for k, v in x.items()}
    if x is None or isinstance(x, str):
        return x
    return np.array(x, dtype=np.float64)


REFERENCE = Layer("reference", "reference")
TORCH = Layer("torch", "torchimpl")


@pytest.fixture(scope="session", params=[REFERENCE, TORCH], ids=lambda lay: lay.name)
def layer(request) -> Layer:
    return request.param


@pytest.fixture(scope="session", params=[REFERENCE, TORCH, TORCH.with_dtype("float32")],
                ids=lambda lay: f"{lay.name}-{lay.dtype}")
def typed_layer(request) -> Layer:
    return request.param


@pytest.fixture(scope="session")
def torch_layer() -> Layer:
    return TORCH


@pytest.fixture(scope="session")
def reference_layer() -> Layer:
    return REFERENCE
