"""What a rule may ask of the problem beyond the gradient: the torch twin of the reference
oracle. Randomness reaches a rule only through ``oracle.seed()`` and ``oracle.probe(...)``,
which draw from ``generator``, or from a ``sampler`` given to the oracle (the cross-check
passes one that replays the reference layer's NumPy draws, so both layers see the same
probes)."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from torchimpl.problems.base import Batch, Problem
from torchimpl.tree import Tree, flatten

CURVATURES = ("H", "F", "F_emp", "G", "user")
PROBES = ("gaussian", "rademacher", "sphere", "sqrtP_sphere")


class Sampler(Protocol):
    """A source of seeds and seeded probes (both layers must see the same ones)."""

    def seed(self) -> int: ...

    def probe(self, dist: str, shape: tuple[int, ...], seed: int) -> Any: ...


def probe(
    dist: str,
    shape: tuple[int, ...],
    seed: int,
    dtype: torch.dtype = torch.float64,
    device: Any = "cpu",
) -> torch.Tensor:
    """A random probe of ``shape``, a pure function of ``seed`` (MeZO regenerates z from it).

    ``gaussian``: N(0, I); ``rademacher``: +-1; ``sphere``: uniform on the unit sphere of all
    entries; ``sqrtP_sphere``: sqrt(P) times that.
    """
    if dist not in PROBES:
        raise ValueError(f"Invalid u_dist: {dist!r} (must be one of {PROBES})")
    gen = torch.Generator(device=device).manual_seed(seed)
    if dist == "rademacher":
        bits = torch.randint(0, 2, shape, generator=gen, device=device)
        return bits.to(dtype) * 2 - 1
    z = torch.randn(shape, generator=gen, dtype=dtype, device=device)
    if dist == "gaussian":
        return z
    scale = z.numel() ** 0.5 if dist == "sqrtP_sphere" else 1.0
    return scale * z / torch.linalg.vector_norm(z)
_QUANTITY = {"H": "hessian", "F": "fisher_true", "F_emp": "fisher_emp", "G": "ggn"}


def parse_curvature(kind: str) -> tuple[str, bool]:
    """``"diag(H)" -> ("H", True)``; ``"F" -> ("F", False)``; anything else is a ValueError."""
    diagonal = kind.startswith("diag(") and kind.endswith(")")
    base = kind[5:-1] if diagonal else kind
    if base not in CURVATURES:
        raise ValueError(f"curv must be one of {CURVATURES} or diag(<one of them>), got {kind!r}")
    return base, diagonal


class Oracle:
    """Problem quantities at a batch; ``user`` curvature is a dense matrix given here."""

    def __init__(
        self,
        problem: Problem,
        batch: Batch = None,
        generator: torch.Generator | None = None,
        user_curvature: torch.Tensor | None = None,
        sampler: Sampler | None = None,
    ) -> None:
        self.problem = problem
        self.batch = batch
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.user_curvature = user_curvature
        self.sampler = sampler

    def seed(self) -> int:
        """A fresh seed, from ``sampler`` when one was given, else from ``generator``."""
        if self.sampler is not None:
            return int(self.sampler.seed())
        return int(torch.randint(0, 2**62, (1,), generator=self.generator).item())

    def probe(
        self,
        dist: str,
        shape: tuple[int, ...],
        seed: int,
        dtype: torch.dtype = torch.float64,
        device: Any = "cpu",
    ) -> torch.Tensor:
        """`probe` (module function), or the ``sampler``'s draw cast to ``dtype``."""
        if self.sampler is not None:
            draw = self.sampler.probe(dist, tuple(shape), seed)
            return torch.as_tensor(draw).to(dtype=dtype, device=device)
        return probe(dist, tuple(shape), seed, dtype, device)

    def loss(self, params: Tree) -> torch.Tensor:
        return self.problem.loss(params, self.batch)

    def grad(self, params: Tree) -> dict[str, torch.Tensor]:
        return self.problem.grad(params, self.batch)

    def full_grad(self, params: Tree):
        """The full-batch gradient g, whatever the oracle's batch (for g_b = g + xi_b)."""
        return self.problem.grad(params, None)

    def hvp(self, params: Tree, v: Tree) -> dict[str, torch.Tensor]:
        return self.problem.hvp(params, v, self.batch)

    def per_sample_grads(self, params: Tree) -> torch.Tensor:
        return self.problem.per_sample_grads(params, self.batch)

    def curvature(self, params: Tree, kind: str) -> torch.Tensor:
        """Dense curvature over ``flatten(params)``: H, F (true), F_emp, G, user, or diag(.)."""
        base, diagonal = parse_curvature(kind)
        if base == "user":
            if self.user_curvature is None:
                raise ValueError("curv='user' needs Oracle(..., user_curvature=K)")
            K = self.user_curvature
        else:
            K = getattr(self.problem, _QUANTITY[base])(params, self.batch)
        expected = (flatten(params).numel(),) * 2
        if tuple(K.shape) != expected:
            raise ValueError(
                f"{kind} curvature has shape {tuple(K.shape)}; parameters need {expected}"
            )
        return torch.diag(torch.diagonal(K)) if diagonal else K
