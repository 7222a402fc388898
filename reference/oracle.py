"""What a rule may ask of the problem beyond the gradient (DESIGN.md, the one contract).

An `Oracle` binds a problem, a batch and a random generator. Randomness reaches a rule only
through ``oracle.rng``, so runs are reproducible and both layers can be fed the same draws.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reference.problems.base import Problem
from reference.tree import Tree, flatten

CURVATURES = ("H", "F", "F_emp", "G", "user")
PROBES = ("gaussian", "rademacher", "sphere", "sqrtP_sphere")


def probe(dist: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A random probe of ``shape``, a pure function of ``seed`` (MeZO regenerates z from it).

    ``gaussian``: N(0, I); ``rademacher``: +-1 with probability 1/2; ``sphere``: uniform on
    the unit sphere of all ``prod(shape)`` entries; ``sqrtP_sphere``: sqrt(P) times that.
    """
    if dist not in PROBES:
        raise ValueError(f"Invalid u_dist: {dist!r} (must be one of {PROBES})")
    rng = np.random.default_rng(seed)
    if dist == "rademacher":
        return rng.integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0
    z = rng.standard_normal(shape)
    if dist == "gaussian":
        return z
    scale = np.sqrt(z.size) if dist == "sqrtP_sphere" else 1.0
    return scale * z / np.linalg.norm(z)


def parse_curvature(kind: str) -> tuple[str, bool]:
    """``"diag(H)" -> ("H", True)``; ``"F" -> ("F", False)``; anything else is a ValueError."""
    diagonal = kind.startswith("diag(") and kind.endswith(")")
    base = kind[5:-1] if diagonal else kind
    if base not in CURVATURES:
        raise ValueError(f"curv must be one of {CURVATURES} or diag(<one of them>), got {kind!r}")
    return base, diagonal


class Oracle:
    """Exact problem quantities at a batch; ``user`` curvature is a dense matrix given here."""

    def __init__(
        self,
        problem: Problem,
        batch: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        user_curvature: np.ndarray | None = None,
    ) -> None:
        self.problem = problem
        self.batch = batch
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.user_curvature = user_curvature

    def seed(self) -> int:
        """A fresh seed from ``rng``: the only source of a rule's randomness."""
        return int(self.rng.integers(0, 2**63 - 1))

    def probe(self, dist: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
        """`probe` (module function): the draws the torch layer replays in cross-checks."""
        return probe(dist, shape, seed)

    def loss(self, params: Tree) -> float:
        return self.problem.loss(params, self.batch)

    def grad(self, params: Tree) -> dict[str, np.ndarray]:
        return self.problem.grad(params, self.batch)

    def full_grad(self, params: Tree):
        """The full-batch gradient g, whatever the oracle's batch (for g_b = g + xi_b)."""
        return self.problem.grad(params, None)

    def hvp(self, params: Tree, v: Tree) -> dict[str, np.ndarray]:
        return self.problem.hvp(params, v, self.batch)

    def per_sample_grads(self, params: Tree) -> np.ndarray:
        return self.problem.per_sample_grads(params, self.batch)

    def curvature(self, params: Tree, kind: str) -> np.ndarray:
        """Dense curvature over ``flatten(params)``: H, F (true), F_emp, G, user, or diag(.)."""
        base, diagonal = parse_curvature(kind)
        K = self._dense(params, base)
        expected = (flatten(params).size,) * 2
        if K.shape != expected:
            raise ValueError(f"{kind} curvature has shape {K.shape}; parameters need {expected}")
        return np.diag(np.diag(K)) if diagonal else K

    def _dense(self, params: Tree, base: str) -> np.ndarray:
        if base == "user":
            if self.user_curvature is None:
                raise ValueError("curv='user' needs Oracle(..., user_curvature=K)")
            return np.asarray(self.user_curvature, dtype=np.float64)
        quantity: Mapping[str, str] = {
            "H": "hessian",
            "F": "fisher_true",
            "F_emp": "fisher_emp",
            "G": "ggn",
        }
        return getattr(self.problem, quantity[base])(params, self.batch)
