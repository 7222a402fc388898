"""Online convex optimisation (INVENTORY §1.2 ``prob:online_convex``, est:regret).

Rounds t = 1..T with losses on the box X = [-R, R]^d, all of one separable form

    f_t(x) = g_t^T x + 1/2 sum_i a_ti (x_i - z_ti)^2,   a_ti >= 0,

which covers (i) the Reddi et al. (2018) sequence f_t(x) = C x for t mod 3 = 1, else -x, on
[-1, 1] (d = 1, a = 0), and (ii) random online linear (a = 0) and diagonal quadratic losses.

API (1-based rounds, as in the Reddi sequence):
- ``loss_t(params, t)``, ``grad_t(params, t)``: f_t and its gradient;
- ``project(params)``: the Euclidean projection onto X (clipping);
- ``comparator(T)``: argmin_{x in X} sum_{t<=T} f_t(x) and the minimum, in closed form per
  coordinate (the problem is separable): with A_i = sum_t a_ti > 0 the clipped weighted mean
  clip((sum_t a_ti z_ti - sum_t g_ti) / A_i, -R, R); with A_i = 0 the vertex -R sign(sum_t g_ti)
  (0 when the sum vanishes);
- ``regret(iterates)``: R_T = sum_{t<=T} f_t(x_t) - min_{x in X} sum_{t<=T} f_t(x) for the
  T = len(iterates) first rounds.
The oracle interface sees the horizon average: sample n is round t = n + 1, the loss is
(1/T) sum_t f_t (per-sample quantities are the f_t), and ``optimum`` is the comparator over X
of that average (an unconstrained minimiser need not exist).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reference.problems.base import Problem
from reference.problems.datasets import batch_rows
from reference.problems.registry import REGISTRY
from reference.tree import Tree

FAMILIES = ("reddi", "linear", "quadratic")


class OnlineConvex(Problem):
    """Losses f_t given by G (T, d), A (T, d) >= 0 and Z (T, d); the box radius R."""

    def __init__(self, G: np.ndarray, A: np.ndarray, Z: np.ndarray, R: float = 1.0,
                 id: str = "prob:online_convex") -> None:
        self.G = _finite(G, "G")
        self.T, self.dim = self.G.shape
        if self.T == 0 or self.dim == 0:
            raise ValueError(f"G must have shape (T >= 1, d >= 1), got {self.G.shape}")
        self.A, self.Z = _finite(A, "A", self.G.shape), _finite(Z, "Z", self.G.shape)
        if np.any(self.A < 0.0):
            raise ValueError("A must be non-negative (convex losses)")
        if not (np.isfinite(R) and R > 0.0):
            raise ValueError(f"Invalid R: {R}; must be finite and > 0")
        self.R, self.id = float(R), id

    @classmethod
    def make(cls, rng: np.random.Generator, family: str = "reddi", T: int = 30, dim: int = 3,
             R: float = 1.0, C: float = 3.0) -> OnlineConvex:
        """- ``reddi``: d = 1, R = 1, g_t = C if t mod 3 = 1 else -1 (C > 2), a = 0;
        - ``linear``: g_t = m + N(0, I) with a drift m ~ N(0, I/4), a = 0;
        - ``quadratic``: g = 0, a_t ~ U(0.5, 2)^d, z_t = z + N(0, I) with z ~ U(-R, R)^d."""
        if family not in FAMILIES:
            raise ValueError(f"Invalid family: {family!r}; allowed: {FAMILIES}")
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValueError(f"Invalid T: {T!r}; must be an integer >= 1")
        if family == "reddi":
            if not (np.isfinite(C) and C > 2.0):
                raise ValueError(f"Invalid C: {C}; the Reddi sequence needs C > 2")
            t = np.arange(1, T + 1)
            G = np.where(t % 3 == 1, float(C), -1.0)[:, None]
            return cls(G, np.zeros((T, 1)), np.zeros((T, 1)), 1.0)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"Invalid dim: {dim!r}; must be an integer >= 1")
        zeros = np.zeros((T, dim))
        if family == "linear":
            G = 0.5 * rng.standard_normal(dim) + rng.standard_normal((T, dim))
            return cls(G, zeros, zeros, R)
        A = rng.uniform(0.5, 2.0, (T, dim))
        Z = rng.standard_normal((T, dim)) + rng.uniform(-R, R, dim)
        return cls(zeros, A, Z, R)

    def spec(self) -> dict[str, Any]:
        return {"G": self.G, "A": self.A, "Z": self.Z, "R": self.R, "id": self.id}

    def num_samples(self) -> int:
        return self.T

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """x ~ U(-R, R)^d (a point of X)."""
        return {"x": rng.uniform(-self.R, self.R, self.dim)}

    # -- oracle interface: the horizon average --------------------------------------------

    def per_sample_losses(self, params: Tree, batch=None) -> np.ndarray:
        x, rows = self._x(params), batch_rows(batch, self.T)
        u = x - self.Z[rows]
        return self.G[rows] @ x + 0.5 * np.sum(self.A[rows] * u * u, axis=1)

    def per_sample_grads(self, params: Tree, batch=None) -> np.ndarray:
        x, rows = self._x(params), batch_rows(batch, self.T)
        return self.G[rows] + self.A[rows] * (x - self.Z[rows])

    def loss(self, params: Tree, batch=None) -> float:
        return float(np.mean(self.per_sample_losses(params, batch)))

    def grad(self, params: Tree, batch=None) -> dict[str, np.ndarray]:
        return {"x": self.per_sample_grads(params, batch).mean(axis=0)}

    def hessian(self, params: Tree, batch=None) -> np.ndarray:
        self._x(params)
        return np.diag(self.A[batch_rows(batch, self.T)].mean(axis=0))

    def hvp(self, params: Tree, v: Tree, batch=None) -> dict[str, np.ndarray]:
        return {"x": self.hessian(params, batch) @ self._x(v, "v")}

    def fisher_emp(self, params: Tree, batch=None) -> np.ndarray:
        G = self.per_sample_grads(params, batch)
        return G.T @ G / G.shape[0]

    def optimum(self) -> tuple[dict[str, np.ndarray], float]:
        """The comparator of the whole horizon, with the average loss (1/T) min sum_t f_t."""
        x, total = self.comparator()
        return {"x": x}, total / self.T

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """L, mu: the extreme diagonal curvatures of the average loss; D = 2 R sqrt(d), the
        diameter of X; G = max_t max_{x in X} ||grad f_t(x)|| (each coordinate's extreme lies
        at x_i = +-R)."""
        a = self.A.mean(axis=0)
        ends = np.abs(self.G[..., None] + self.A[..., None]
                      * (np.array([-self.R, self.R]) - self.Z[..., None]))
        G = np.sqrt(np.sum(ends.max(axis=-1) ** 2, axis=1)).max()
        return {"L": float(a.max()), "mu": float(a.min()),
                "D": float(2.0 * self.R * np.sqrt(self.dim)), "G": float(G)}

    # -- online API -----------------------------------------------------------------------

    def loss_t(self, params: Tree, t: int) -> float:
        """f_t(x), t in 1..T."""
        return float(self.per_sample_losses(params, np.array([self._round(t) - 1]))[0])

    def grad_t(self, params: Tree, t: int) -> dict[str, np.ndarray]:
        """grad f_t(x), t in 1..T."""
        return {"x": self.per_sample_grads(params, np.array([self._round(t) - 1]))[0]}

    def project(self, params: Tree) -> dict[str, np.ndarray]:
        """Euclidean projection onto X = [-R, R]^d."""
        return {"x": np.clip(self._x(params), -self.R, self.R)}

    def comparator(self, T: int | None = None) -> tuple[np.ndarray, float]:
        """argmin_{x in X} sum_{t<=T} f_t(x) and the minimum (T = None: the horizon)."""
        T = self.T if T is None else self._round(T)
        g, a = self.G[:T].sum(axis=0), self.A[:T].sum(axis=0)
        az = np.sum(self.A[:T] * self.Z[:T], axis=0)
        safe = np.where(a > 0.0, a, 1.0)
        x = np.where(a > 0.0, np.clip((az - g) / safe, -self.R, self.R), -self.R * np.sign(g))
        return x, float(np.sum(self.per_sample_losses({"x": x}, np.arange(T))))

    def regret(self, iterates: Sequence[Mapping[str, np.ndarray]] | np.ndarray) -> float:
        """R_T = sum_{t<=T} f_t(x_t) - min_{x in X} sum_{t<=T} f_t(x), T = len(iterates);
        ``iterates``: a sequence of params, or an array (T, d) of the x_t."""
        X = _iterate_array(iterates, self.dim)
        T = self._round(X.shape[0])
        u = X - self.Z[:T]
        incurred = np.sum(self.G[:T] * X) + 0.5 * np.sum(self.A[:T] * u * u)
        return float(incurred - self.comparator(T)[1])

    # -- internals ------------------------------------------------------------------------

    def _round(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.T:
            raise ValueError(f"Invalid round t: {t!r}; must be an integer in [1, {self.T}]")
        return int(t)

    def _x(self, tree: Tree, name: str = "params") -> np.ndarray:
        if set(tree) != {"x"}:
            raise ValueError(f"{name} must have exactly the key 'x', got {sorted(tree)}")
        x = np.asarray(tree["x"], dtype=np.float64)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            raise ValueError(f"{name}['x'] must be a finite ({self.dim},) vector, got {x.shape}")
        return x


def _iterate_array(iterates, dim: int) -> np.ndarray:
    if isinstance(iterates, np.ndarray):
        X = np.asarray(iterates, dtype=np.float64)
    else:
        X = np.array([np.asarray(p["x"], dtype=np.float64) for p in iterates])
    if X.ndim != 2 or X.shape[1] != dim or not np.all(np.isfinite(X)):
        raise ValueError(f"iterates must be finite with shape (T, {dim}), got {X.shape}")
    return X


def _finite(array: Any, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        raise ValueError(f"{name} must have shape {shape or '(T, d)'}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


REGISTRY.register("prob:online_convex", OnlineConvex)
