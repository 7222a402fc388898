"""Quadratic problems (INVENTORY §1.2 prob:quad, prob:quad_finite_sum, prob:quad_noisy), torch.

Each problem is a mean of per-sample quadratics l_n (``prob:quad`` is the one-sample case)
and every quantity comes from torch.func applied to l_n (`functional.SampleProblem`): the
closed forms (g_n = H_n x - b_n, constant Hessian) are what the tests check, not what the code
computes. Parameters are ``{"x": (n,)}``; ``batch`` indexes the samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from torchimpl.problems.base import Batch
from torchimpl.problems.functional import SampleProblem, batch_index, check_tree, to_tensor
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree

PSD_RTOL = 1e4  # lambda_min >= -1e4 eps max(|lambda|, 1) counts as PSD (~1e-12 in float64)
SYM_RTOL = 1e-10  # relative asymmetry accepted (and removed) in A and Sigma


def _symmetric(M: torch.Tensor, name: str) -> torch.Tensor:
    """(M + M^T)/2 for ``M`` (..., n, n) symmetric up to rounding; otherwise a ValueError."""
    if M.shape[-1] != M.shape[-2]:
        raise ValueError(f"{name} must be square, got shape {tuple(M.shape)}")
    rtol = max(SYM_RTOL, 100 * torch.finfo(M.dtype).eps)
    if not bool(((M - M.mT).abs() <= rtol * max(float(M.abs().max()), 1.0)).all()):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (M + M.mT)


def _psd(lam: torch.Tensor) -> bool:
    """Whether ascending eigenvalues ``lam`` are non-negative up to rounding."""
    return bool(lam[0] >= -PSD_RTOL * torch.finfo(lam.dtype).eps * max(float(lam.abs().max()), 1))


def _vector(array: Any, name: str, n: int, dtype: torch.dtype, device: Any) -> torch.Tensor:
    v = to_tensor(array, name, dtype, device, 1)
    if v.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(v.shape)}")
    return v


def _finite_scalar(value: float, name: str) -> float:
    value = float(value)
    if value != value or abs(value) == float("inf"):
        raise ValueError(f"Invalid {name}: {value} (must be finite)")
    return value


class _QuadraticSum(SampleProblem):
    """(1/N) sum_n l_n(x), each l_n quadratic: f = 1/2 x^T H x - b^T x + const, H constant.

    Subclasses set ``_data`` (tensors indexed by sample), ``_H``, ``_b`` and ``_loss_one``.
    """

    _H: torch.Tensor
    _b: torch.Tensor
    _data: tuple[torch.Tensor, ...]

    def _setup(self, H: torch.Tensor, b: torch.Tensor, *data: torch.Tensor) -> None:
        self._H, self._b, self._data = H, b, data
        self.shapes = {"x": torch.Size([H.shape[0]])}

    def num_samples(self) -> int:
        return self._data[0].shape[0]

    def _samples(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        index = batch_index(batch, self.num_samples(), self._H.device)
        return tuple(d[index] for d in self._data)

    def _x(self, params: Tree) -> torch.Tensor:
        return check_tree(params, self.shapes, "params")["x"]

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """x ~ N(0, I)."""
        x = torch.randn(self._H.shape[0], generator=generator, dtype=self._H.dtype)
        return {"x": x.to(self._H.device)}

    def constants(self, params: Tree | None = None) -> Mapping[str, float]:
        """L = lambda_max(H), mu = lambda_min(H) (negative when H is indefinite)."""
        lam = torch.linalg.eigvalsh(self._H)
        return {"L": float(lam[-1]), "mu": float(lam[0])}

    def _psd(self) -> bool:
        return _psd(torch.linalg.eigvalsh(self._H))

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        """The least-norm solution of H x = b when H is PSD and the system is consistent."""
        x = torch.linalg.pinv(self._H, hermitian=True) @ self._b
        residual = torch.linalg.vector_norm(self._H @ x - self._b)
        if not self._psd() or residual > 1e-9 * max(torch.linalg.vector_norm(self._b), 1.0):
            return None
        return {"x": x}, float(self.loss({"x": x}))


class Quadratic(_QuadraticSum):
    """f(x) = 1/2 (x-x*)^T A (x-x*) + c, or (x-x*)^T A (x-x*) + c when ``halved=False``.

    The unhalved form is 002 Eq. (3); its Hessian is 2A. ``A`` must be symmetric. One sample
    (N = 1), so per-sample gradients and the empirical Fisher g g^T are defined.
    """

    def __init__(
        self,
        A: Any,
        x_star: Any,
        c: float = 0.0,
        halved: bool = True,
        id: str = "prob:quad",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        self.id = id
        self.A = _symmetric(to_tensor(A, "A", dtype, device, 2), "A")
        self.x_star = _vector(x_star, "x_star", self.A.shape[0], dtype, device)
        self.c = _finite_scalar(c, "c")
        self.halved = bool(halved)
        self._factor = 1.0 if self.halved else 2.0  # Hessian factor A * _factor
        H = self._factor * self.A
        self._setup(H, H @ self.x_star, self.x_star[None])

    def _loss_one(self, params: Tree, x_star: torch.Tensor) -> torch.Tensor:
        r = self._x(params) - x_star
        return 0.5 * self._factor * (r @ (self.A @ r)) + self.c

    def optimum(self) -> tuple[dict[str, torch.Tensor], float] | None:
        """(x*, c) when A is PSD; an indefinite A has no minimum."""
        return ({"x": self.x_star.clone()}, self.c) if self._psd() else None


class QuadraticNoisy(Quadratic):
    """prob:quad (halved) with a noisy gradient oracle g(x) + xi, xi ~ N(0, Sigma).

    000 §2 "(General Update)" models minibatch noise this way, with Sigma = (k/B) H.
    ``bounded=R`` truncates each draw: xi is rescaled to norm min(||xi||, R). `noise_cov`
    returns Sigma, the covariance of the untruncated draw.
    """

    def __init__(
        self,
        A: Any,
        x_star: Any,
        Sigma: Any,
        c: float = 0.0,
        bounded: float | None = None,
        id: str = "prob:quad_noisy",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        super().__init__(A, x_star, c, True, id, dtype, device)
        self.Sigma = _symmetric(to_tensor(Sigma, "Sigma", dtype, device, 2), "Sigma")
        if self.Sigma.shape != self.A.shape:
            raise ValueError(f"Sigma must have shape {tuple(self.A.shape)}")
        lam, Q = torch.linalg.eigh(self.Sigma)
        if not _psd(lam):
            raise ValueError(f"Sigma must be positive semi-definite; lambda_min = {float(lam[0])}")
        self._root = Q * lam.clamp(min=0).sqrt()  # Sigma = root root^T, also for singular Sigma
        if bounded is not None and not 0 < float(bounded) < float("inf"):
            raise ValueError(f"Invalid bounded: {bounded} (must be a finite radius > 0, or None)")
        self.bounded = None if bounded is None else float(bounded)

    def noise_cov(self) -> torch.Tensor:
        return self.Sigma.clone()

    def noisy_grad(self, params: Tree, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """g(x) + xi with xi = Sigma^{1/2} z, z ~ N(0, I) from ``generator``."""
        z = torch.randn(self.Sigma.shape[0], generator=generator, dtype=self.Sigma.dtype)
        xi = self._root @ z.to(self.Sigma.device)
        if self.bounded is not None:
            xi = xi * (self.bounded / torch.linalg.vector_norm(xi)).clamp(max=1.0)
        return {"x": self.grad(params)["x"] + xi}


class QuadraticFiniteSum(_QuadraticSum):
    """f(x) = (1/N) sum_n 1/2 ||X_n x - y_n||^2 with X (N, m, n), y (N, m)."""

    def __init__(
        self,
        X: Any,
        y: Any,
        id: str = "prob:quad_finite_sum",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        self.id = id
        X = to_tensor(X, "X", dtype, device, 3)
        y = to_tensor(y, "y", dtype, device, 2)
        if y.shape != X.shape[:2]:
            raise ValueError(f"y must have shape {tuple(X.shape[:2])}, got {tuple(y.shape)}")
        H = torch.einsum("nmi,nmj->ij", X, X) / X.shape[0]
        self._setup(H, torch.einsum("nmi,nm->i", X, y) / X.shape[0], X, y)

    def _loss_one(self, params: Tree, X_n: torch.Tensor, y_n: torch.Tensor) -> torch.Tensor:
        r = X_n @ self._x(params) - y_n
        return 0.5 * (r @ r)


class QuadraticSumOfQuadratics(_QuadraticSum):
    """f(x) = (1/N) sum_n 1/2 (x - x_n*)^T A_n (x - x_n*) with A (N, n, n), x_star (N, n)."""

    def __init__(
        self,
        A: Any,
        x_star: Any,
        id: str = "prob:quad_finite_sum[quadratics]",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        self.id = id
        A = _symmetric(to_tensor(A, "A", dtype, device, 3), "A")
        x_star = to_tensor(x_star, "x_star", dtype, device, 2)
        if x_star.shape != A.shape[:2]:
            raise ValueError(f"x_star must have shape {tuple(A.shape[:2])}")
        self._setup(A.mean(dim=0), torch.einsum("nij,nj->i", A, x_star) / A.shape[0], A, x_star)

    def _loss_one(self, params: Tree, A_n: torch.Tensor, x_n: torch.Tensor) -> torch.Tensor:
        r = self._x(params) - x_n
        return 0.5 * (r @ (A_n @ r))


REGISTRY.register("prob:quad", Quadratic)
REGISTRY.register("prob:quad_noisy", QuadraticNoisy)
REGISTRY.register("prob:quad_finite_sum", QuadraticFiniteSum)
REGISTRY.register("prob:quad_finite_sum[quadratics]", QuadraticSumOfQuadratics)
