"""Classic synthetic test functions (INVENTORY §1.2 prob:rosenbrock, prob:nls, prob:saddle,
prob:nesterov_worst, prob:smooth_nonconvex (and [mlp]), prob:zo_test, prob:double_well), torch.

Every problem is a `functional.SampleProblem` over the one parameter ``{"x": (d,)}``: the
formula of the per-sample loss l_n is written once and torch.func gives gradients, per-sample
gradients, Hessian-vector products and Hessians. A problem without data is the one-sample
case N = 1 (a dummy sample), as ``prob:quad``. Built from the reference's ``spec()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.func import grad as fgrad
from torch.func import hessian, jacfwd

from torchimpl.problems.base import Batch
from torchimpl.problems.functional import (
    SampleProblem,
    batch_index,
    check_reduction,
    check_tree,
    to_tensor,
)
from torchimpl.problems.network import FeedForward
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree

NLS_KINDS = ("exp", "rosenbrock")


class VectorSample(SampleProblem):
    """A mean (or sum) of per-sample losses of x = params["x"] (d,); ``_data`` holds the
    per-sample tensors, indexed along dim 0."""

    dim: int
    _data: tuple[torch.Tensor, ...]

    def _setup(self, dim: int, dtype: torch.dtype, device: Any, *data: torch.Tensor) -> None:
        self.dim, self.dtype, self.device = int(dim), dtype, device
        self.shapes = {"x": torch.Size([self.dim])}
        self._data = data

    def num_samples(self) -> int:
        return self._data[0].shape[0]

    def _samples(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        index = batch_index(batch, self.num_samples(), self._data[0].device)
        return tuple(d[index] for d in self._data)

    def _x(self, params: Tree) -> torch.Tensor:
        return check_tree(params, self.shapes, "params")["x"]

    def _tensor(self, values: Any) -> torch.Tensor:
        return torch.as_tensor(values, dtype=self.dtype, device=self.device)

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x ~ N(0, I)."""
        x = torch.randn(self.dim, generator=generator, dtype=self.dtype)
        return {"x": x.to(self.device)}


class Deterministic(VectorSample):
    """One function ``_f(x)``: the single (dummy) sample, N = 1."""

    def _setup_single(self, dim: int, dtype: torch.dtype, device: Any) -> None:
        self._setup(dim, dtype, device, torch.zeros(1, 1, dtype=dtype, device=device))

    def _f(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _loss_one(self, params: Tree, dummy: torch.Tensor) -> torch.Tensor:
        return self._f(params["x"])


class Rosenbrock(Deterministic):
    """f(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; x* = 1, f* = 0."""

    def __init__(self, dim: int = 2, id: str = "prob:rosenbrock",
                 dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        if int(dim) < 2:
            raise ValueError(f"Invalid dim: {dim!r}; must be an integer >= 2")
        self.id = id
        self._setup_single(dim, dtype, device)

    def _f(self, x):
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x ~ U(-2, 2)^d."""
        u = torch.rand(self.dim, generator=generator, dtype=self.dtype)
        return {"x": (4.0 * u - 2.0).to(self.device)}

    def classic_start(self) -> dict[str, torch.Tensor]:
        """(-1.2, 1, -1.2, 1, ...)."""
        even = torch.arange(self.dim, device=self.device) % 2 == 0
        return {"x": torch.where(even, -1.2, 1.0).to(self.dtype)}

    def optimum(self) -> tuple[dict[str, torch.Tensor], float]:
        return {"x": torch.ones(self.dim, dtype=self.dtype, device=self.device)}, 0.0


class NonlinearLeastSquares(VectorSample):
    """l_n = 1/2 r_n(x)^2, r_n = m_n(x) - y_n: ``exp`` m_n = a e^{b t_n} (x = (a, b));
    ``rosenbrock`` m = (10 (x2 - x1^2), 1 - x1, x2)[:N]. Loss scale 1/N (mean) or 1 (sum);
    ``ggn`` = scale sum_n J_n^T J_n with J_n = dr_n/dx (per-sample gradients of r_n)."""

    def __init__(self, kind: str, y: Any, t: Any = None, reduction: str = "mean",
                 id: str = "prob:nls", dtype: torch.dtype = torch.float64,
                 device: Any = None) -> None:
        if kind not in NLS_KINDS:
            raise ValueError(f"Invalid kind: {kind!r}; allowed: {NLS_KINDS}")
        self.kind, self.id = kind, id
        self.reduction = check_reduction(reduction)
        y = to_tensor(y, "y", dtype, device, 1)
        if kind == "exp":
            t = to_tensor(t, "t", dtype, device, 1)
            if t.shape != y.shape or y.numel() == 0:
                raise ValueError("t and y must have one equal, non-zero length")
            self._setup(2, dtype, device, t, y)
        else:
            if y.numel() not in (2, 3):
                raise ValueError(f"rosenbrock residuals need y of length 2 or 3, got {y.numel()}")
            self._setup(2, dtype, device, torch.eye(y.numel(), dtype=dtype, device=device), y)

    def _residual_one(self, params: Tree, first: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """r_n; ``first`` is t_n (exp) or the one-hot selector of residual n (rosenbrock)."""
        x = params["x"]
        if self.kind == "exp":
            return x[0] * torch.exp(x[1] * first) - y
        x1, x2 = x[:1], x[1:]  # 1-D slices: 0-dim pieces promote to float64 under vmap(jvp)
        m = torch.cat([10.0 * (x2 - x1**2), 1.0 - x1, x2])[: first.shape[0]]
        return m @ first - y

    def _loss_one(self, params: Tree, first: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * self._residual_one(params, first, y) ** 2

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """exp: (a, b) ~ U(0.5, 2) x U(-1, 1); rosenbrock: U(-2, 2)^2."""
        u = torch.rand(2, generator=generator, dtype=self.dtype)
        lo, hi = ((0.5, -1.0), (2.0, 1.0)) if self.kind == "exp" else ((-2.0, -2.0), (2.0, 2.0))
        return {"x": (self._tensor(lo) + (self._tensor(hi) - self._tensor(lo)) * u)}

    def residuals(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        check_tree(params, self.shapes, "params")
        return self._vmapped(self._residual_one, params, self._samples(batch))

    def jacobian(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """J (B, P), J_n = dr_n/dx."""
        check_tree(params, self.shapes, "params")
        return self._vmapped(fgrad(self._residual_one), params, self._samples(batch))["x"]

    def jac_out(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        return self.jacobian(params, batch).unsqueeze(1)

    def out_hess(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        check_tree(params, self.shapes, "params")
        B = self._samples(batch)[0].shape[0]
        return torch.ones(B, 1, 1, dtype=self.dtype, device=self.device)

    def ggn(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        J = self.jacobian(params, batch)
        return (J.T @ J) * self._scale(J.shape[0])


class Saddle(Deterministic):
    """f(x) = 1/2 x^T A x + (gamma/4) ||x||^4, A symmetric (indefinite for a saddle)."""

    def __init__(self, A: Any, quartic: float = 0.0, id: str = "prob:saddle",
                 dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        self.id = id
        self.A = _symmetric(to_tensor(A, "A", dtype, device, 2), "A")
        self.quartic = float(quartic)
        if not 0.0 <= self.quartic < math.inf:
            raise ValueError(f"Invalid quartic: {quartic}; must be finite and >= 0")
        self._setup_single(self.A.shape[0], dtype, device)

    def _f(self, x):
        s = x @ x
        return 0.5 * (x @ (self.A @ x)) + 0.25 * self.quartic * s * s

    def inertia(self, params: Tree, tol: float = 1e-12) -> tuple[int, int, int]:
        """(positive, negative, zero) eigenvalue counts of the Hessian at ``params``."""
        lam = torch.linalg.eigvalsh(self.hessian(params))
        zero = lam.abs() <= tol * max(float(lam.abs().max()), 1.0)
        return int(((lam > 0) & ~zero).sum()), int(((lam < 0) & ~zero).sum()), int(zero.sum())

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        """gamma > 0: sqrt(-lambda_min/gamma) v_min (largest entry positive); 0 if A is PSD;
        None for an indefinite quadratic."""
        lam, V = torch.linalg.eigh(self.A)
        if float(lam[0]) >= 0.0:
            return {"x": torch.zeros_like(lam)}, 0.0
        if self.quartic == 0.0:
            return None
        v = V[:, 0] * torch.sign(V[V[:, 0].abs().argmax(), 0])
        x = torch.sqrt(-lam[0] / self.quartic) * v
        return {"x": x}, float(-lam[0] ** 2 / (4.0 * self.quartic))

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        lam = torch.linalg.eigvalsh(self.A)
        if self.quartic > 0.0:
            return {"mu": float(lam[0])}
        return {"L": float(lam.abs().max()), "mu": float(lam[0])}


class NesterovWorst(Deterministic):
    """f(x) = (L/8)(x_1^2 + sum_{i<d} (x_i - x_{i+1})^2 + x_d^2) - (L/4) x_1."""

    def __init__(self, dim: int = 200, L: float = 1.0, id: str = "prob:nesterov_worst",
                 dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        if int(dim) < 1 or not 0.0 < float(L) < math.inf:
            raise ValueError(f"Invalid dim {dim!r} or L {L!r}; need dim >= 1 and finite L > 0")
        self.id, self.L = id, float(L)
        self._setup_single(dim, dtype, device)

    def _f(self, x):
        sq = x[0] ** 2 + ((x[1:] - x[:-1]) ** 2).sum() + x[-1] ** 2
        return self.L / 8.0 * sq - self.L / 4.0 * x[0]

    def classic_start(self) -> dict[str, torch.Tensor]:
        return {"x": torch.zeros(self.dim, dtype=self.dtype, device=self.device)}

    def optimum(self) -> tuple[dict[str, torch.Tensor], float]:
        i = torch.arange(1, self.dim + 1, dtype=self.dtype, device=self.device)
        return {"x": 1.0 - i / (self.dim + 1.0)}, -self.L / 8.0 * self.dim / (self.dim + 1.0)

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        lam = [0.25 * self.L * (2.0 - 2.0 * math.cos(k * math.pi / (self.dim + 1.0)))
               for k in (1, self.dim)]
        return {"L": self.L, "lambda_max": lam[1], "mu": lam[0]}


class SmoothNonconvex(Deterministic):
    """f(x) = 1/2 x^T A x + alpha sum_i cos x_i + beta sum_i log(1 + (x_i - c_i)^2)."""

    def __init__(self, A: Any, c: Any, alpha: float = 0.0, beta: float = 1.0,
                 id: str = "prob:smooth_nonconvex", dtype: torch.dtype = torch.float64,
                 device: Any = None) -> None:
        self.id = id
        self.A = _symmetric(to_tensor(A, "A", dtype, device, 2), "A")
        self.c = to_tensor(c, "c", dtype, device, 1)
        if self.c.shape != (self.A.shape[0],):
            raise ValueError(f"c must have shape ({self.A.shape[0]},)")
        self.alpha, self.beta = float(alpha), float(beta)
        self._setup_single(self.A.shape[0], dtype, device)

    def _f(self, x):
        u = x - self.c
        return (0.5 * (x @ (self.A @ x)) + self.alpha * torch.cos(x).sum()
                + self.beta * torch.log1p(u * u).sum())

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        if not bool(self.A.any()) and self.alpha == 0.0 and self.beta > 0.0:
            return {"x": self.c.clone()}, 0.0
        return None


class ZOTest(Deterministic):
    """f(x) = 1/2 x^T A x + b^T x + c3 sum x_i^3 + (c4/4) sum x_i^4 + (1/m) sum_k
    softplus(z_k^T x); ``third_derivative`` is the (P, P, P) tensor by forward-over-Hessian."""

    def __init__(self, A: Any, b: Any, c3: float = 0.0, c4: float = 0.0, Z: Any = None,
                 id: str = "prob:zo_test", dtype: torch.dtype = torch.float64,
                 device: Any = None) -> None:
        self.id = id
        self.A = _symmetric(to_tensor(A, "A", dtype, device, 2), "A")
        d = self.A.shape[0]
        self.b = to_tensor(b, "b", dtype, device, 1)
        self.Z = (torch.zeros(0, d, dtype=dtype, device=device) if Z is None
                  else to_tensor(Z, "Z", dtype, device, 2))
        if self.b.shape != (d,) or self.Z.shape[1] != d:
            raise ValueError(f"b must have shape ({d},) and Z shape (m, {d})")
        self.c3, self.c4 = float(c3), float(c4)
        self._setup_single(d, dtype, device)

    def _f(self, x):
        m = max(self.Z.shape[0], 1)
        u = self.Z @ x
        soft = torch.logaddexp(torch.zeros_like(u), u).sum() / m
        return (0.5 * (x @ (self.A @ x)) + self.b @ x + self.c3 * (x**3).sum()
                + 0.25 * self.c4 * (x**4).sum() + soft)

    def third_derivative(self, params: Tree) -> torch.Tensor:
        x = self._x(params)
        return jacfwd(hessian(self._f))(x)

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        if self.c3 or self.c4 or self.Z.shape[0]:
            return None
        if float(torch.linalg.eigvalsh(self.A)[0]) <= 0.0:
            return None
        x = -torch.linalg.solve(self.A, self.b)
        return {"x": x}, float(0.5 * (self.b @ x))


class DoubleWell(VectorSample):
    """l_n(x) = -log(exp(-(a/2)||x + e_1||^2) + exp(-(b/2)||x - e_1||^2)) + c_n^T x."""

    def __init__(self, a: float, b: float, c: Any, id: str = "prob:double_well",
                 dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        self.id, self.a, self.b = id, float(a), float(b)
        if not (0.0 < self.a < math.inf and 0.0 < self.b < math.inf):
            raise ValueError(f"Invalid a {a!r} or b {b!r}; must be finite and > 0")
        c = to_tensor(c, "c", dtype, device, 2)
        if c.shape[0] == 0 or c.shape[1] not in (1, 2):
            raise ValueError(f"c must have shape (N >= 1, d in {{1, 2}}), got {tuple(c.shape)}")
        self._setup(c.shape[1], dtype, device, c)
        self._e1 = torch.eye(self.dim, dtype=dtype, device=device)[0]

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        q1 = 0.5 * self.a * ((x + self._e1) ** 2).sum()
        q2 = 0.5 * self.b * ((x - self._e1) ** 2).sum()
        # -log(e^-q1 + e^-q2) = min(q1, q2) - log1p(e^-|q1 - q2|): torch.logaddexp's second
        # derivative (forward-over-reverse) overflows in float32 once |q1 - q2| exceeds ~80.
        return torch.minimum(q1, q2) - torch.log1p(torch.exp(-(q1 - q2).abs()))

    def _loss_one(self, params: Tree, c_n: torch.Tensor) -> torch.Tensor:
        x = params["x"]
        return self.potential(x) + c_n @ x


def _symmetric(M: torch.Tensor, name: str) -> torch.Tensor:
    if M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got {tuple(M.shape)}")
    rtol = max(1e-10, 100 * torch.finfo(M.dtype).eps)
    if not bool(((M - M.T).abs() <= rtol * max(float(M.abs().max()), 1.0)).all()):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (M + M.T)


REGISTRY.register("prob:rosenbrock", Rosenbrock)
REGISTRY.register("prob:nls", NonlinearLeastSquares)
REGISTRY.register("prob:saddle", Saddle)
REGISTRY.register("prob:nesterov_worst", NesterovWorst)
REGISTRY.register("prob:smooth_nonconvex", SmoothNonconvex)
REGISTRY.register("prob:smooth_nonconvex[mlp]", FeedForward)
REGISTRY.register("prob:zo_test", ZOTest)
REGISTRY.register("prob:double_well", DoubleWell)
