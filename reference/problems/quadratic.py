"""Quadratic problems (INVENTORY §1.2 ``prob:quad``, ``prob:quad_finite_sum``, ``prob:quad_noisy``).

All three are means of per-sample losses l_n that are quadratic in the one parameter ``x``,
so every quantity is a closed form: g_n = H_n x - b_n, H = (1/N) sum_n H_n, and the Hessian
does not depend on x. Parameters are ``{"x": (n,)}``; batches index the samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.problems.base import Problem
from reference.problems.datasets import batch_rows
from reference.problems.registry import REGISTRY
from reference.problems.spectra import random_orthogonal, spectrum, symmetric
from reference.tree import Tree

NOISE_KINDS = ("isotropic", "hessian", "user")


class _QuadraticSum(Problem):
    """f(x) = (1/N) sum_n l_n(x), each l_n quadratic; subclasses give l_n, g_n and H_n."""

    dim: int

    def _losses(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grads(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _hessians(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"x": rng.standard_normal(self.dim)}

    def loss(self, params: Tree, batch: np.ndarray | None = None) -> float:
        return float(np.mean(self.per_sample_losses(params, batch)))

    def grad(self, params: Tree, batch: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {"x": self.per_sample_grads(params, batch).mean(axis=0)}

    def per_sample_losses(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        return self._losses(self._x(params), batch_rows(batch, self.num_samples()))

    def per_sample_grads(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        return self._grads(self._x(params), batch_rows(batch, self.num_samples()))

    def hessian(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        self._x(params)
        return self._hessians(batch_rows(batch, self.num_samples())).mean(axis=0)

    def hvp(self, params: Tree, v: Tree, batch: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {"x": self.hessian(params, batch) @ self._x(v, "v")}

    def fisher_emp(self, params: Tree, batch: np.ndarray | None = None) -> np.ndarray:
        """(1/B) sum_n g_n g_n^T with the data's own targets (INVENTORY est:fisher_emp)."""
        G = self.per_sample_grads(params, batch)
        return G.T @ G / G.shape[0]

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """The minimiser of H x = -g(0) of least norm, when H is PSD and the system consistent."""
        x0 = {"x": np.zeros(self.dim)}
        H, b = self.hessian(x0), -self.grad(x0)["x"]
        lam = np.linalg.eigvalsh(H)
        tol = 1e-12 * max(np.abs(lam).max(), 1.0)
        x = np.linalg.lstsq(H, b, rcond=None)[0]
        if lam[0] < -tol or np.linalg.norm(H @ x - b) > 1e-9 * max(np.linalg.norm(b), 1.0):
            return None
        return {"x": x}, self.loss({"x": x})

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """L = lambda_max(H), mu = lambda_min(H) (negative when H is indefinite)."""
        lam = np.linalg.eigvalsh(self.hessian({"x": np.zeros(self.dim)}))
        return {"L": float(lam[-1]), "mu": float(lam[0])}

    def _x(self, tree: Tree, name: str = "params") -> np.ndarray:
        """The vector ``tree["x"]``, checked: the only key, shape (n,), finite."""
        if set(tree) != {"x"}:
            raise ValueError(f"{name} must have exactly the key 'x', got {sorted(tree)}")
        x = np.asarray(tree["x"], dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"{name}['x'] has shape {x.shape}; expected ({self.dim},)")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}['x'] contains non-finite values (NaN or inf)")
        return x


class Quadratic(_QuadraticSum):
    """f(x) = 1/2 (x - x*)^T A (x - x*) + c, or (x - x*)^T A (x - x*) + c if not ``halved``.

    The second form is 002 Eq. (3); its Hessian is 2A, the first's A (``hessian`` returns the
    Hessian of the chosen definition). One sample: N = 1.
    """

    def __init__(
        self,
        A: np.ndarray,
        x_star: np.ndarray,
        c: float = 0.0,
        halved: bool = True,
        id: str = "prob:quad",
    ) -> None:
        self.A = _symmetric_matrix(A, "A")
        self.dim = self.A.shape[0]
        self.x_star = _vector(x_star, "x_star", self.dim)
        self.c = _finite_scalar(c, "c")
        self.halved = bool(halved)
        self.id = id

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n: int = 10,
        family: str = "geometric",
        cond: float = 100.0,
        rotated: bool = True,
        halved: bool = True,
        L: float = 1.0,
    ) -> Quadratic:
        """A = Q diag(lam) Q^T with lam from ``spectra.spectrum``, Q Haar or I; x* ~ N(0, I)."""
        return cls(_random_A(rng, n, family, cond, rotated, L), rng.standard_normal(n),
                   halved=halved)

    def spec(self) -> dict[str, Any]:
        return {"A": self.A, "x_star": self.x_star, "c": self.c, "halved": self.halved,
                "id": self.id}

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """(x*, c) when A is PSD; None otherwise (f unbounded below)."""
        if np.linalg.eigvalsh(self.A)[0] < -1e-12 * max(np.abs(self.A).max(), 1.0):
            return None
        return {"x": self.x_star.copy()}, self.c

    def _losses(self, x, rows):
        r = x - self.x_star
        return np.full(rows.size, 0.5 * self._factor * r @ self.A @ r + self.c)

    def _grads(self, x, rows):
        return np.tile(self._factor * self.A @ (x - self.x_star), (rows.size, 1))

    def _hessians(self, rows):
        return np.broadcast_to(self._factor * self.A, (rows.size, self.dim, self.dim))

    @property
    def _factor(self) -> float:
        """1 for 1/2 r^T A r, 2 for the un-halved 002 Eq. (3) form."""
        return 1.0 if self.halved else 2.0


class QuadraticFiniteSum(_QuadraticSum):
    """f(x) = (1/N) sum_n 1/2 ||X_n x - y_n||^2 with X (N, m, n), y (N, m).

    g_n = X_n^T (X_n x - y_n), H = (1/N) sum_n X_n^T X_n.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, id: str = "prob:quad_finite_sum") -> None:
        self.X = np.asarray(X, dtype=np.float64)
        if self.X.ndim != 3 or 0 in self.X.shape or not np.all(np.isfinite(self.X)):
            raise ValueError(f"X must be a finite (N, m, n) array, got shape {self.X.shape}")
        N, m, self.dim = self.X.shape
        self.y = np.asarray(y, dtype=np.float64)
        if self.y.shape != (N, m) or not np.all(np.isfinite(self.y)):
            raise ValueError(f"y must be a finite ({N}, {m}) array, got shape {self.y.shape}")
        self.id = id

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n_samples: int = 32,
        dim: int = 5,
        out_dim: int = 1,
        noise: float = 0.5,
        noise_like_hessian: bool = True,
    ) -> QuadraticFiniteSum:
        """Gaussian X_n and targets y_n = X_n x* + eps_n around a random x* ~ N(0, I).

        ``noise_like_hessian`` (INVENTORY opt "target noise covariance ∝ H"): the samples come
        in groups of 2m sharing one design X_j, with eps = ±noise·sqrt(m)·u_k for the columns
        u_k of a random orthogonal m x m matrix. Each group's eps have mean 0 and second moment
        noise^2 I, so x* is the exact minimiser and, at x*, the gradient noise covariance
        (1/N) sum_n g_n g_n^T = (1/N) sum_n X_n^T eps_n eps_n^T X_n equals noise^2 H exactly.
        ``n_samples`` must then be a multiple of 2m. Otherwise eps_n ~ N(0, noise^2 I).
        """
        x_star = rng.standard_normal(dim)
        if not noise_like_hessian:
            X = rng.standard_normal((n_samples, out_dim, dim))
            eps = noise * rng.standard_normal((n_samples, out_dim))
            return cls(X, X @ x_star + eps)
        if n_samples % (2 * out_dim):
            raise ValueError(
                f"Invalid n_samples: {n_samples}; noise_like_hessian needs a multiple of "
                f"2 * out_dim = {2 * out_dim}"
            )
        groups = n_samples // (2 * out_dim)
        X = np.repeat(rng.standard_normal((groups, out_dim, dim)), 2 * out_dim, axis=0)
        U = noise * np.sqrt(out_dim) * random_orthogonal(out_dim, rng).T
        eps = np.tile(np.concatenate([U, -U]), (groups, 1))
        return cls(X, X @ x_star + eps)

    def spec(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "id": self.id}

    def num_samples(self) -> int:
        return self.X.shape[0]

    def _losses(self, x, rows):
        r = self.X[rows] @ x - self.y[rows]
        return 0.5 * np.sum(r * r, axis=1)

    def _grads(self, x, rows):
        r = self.X[rows] @ x - self.y[rows]
        return np.einsum("bmn,bm->bn", self.X[rows], r)

    def _hessians(self, rows):
        return np.einsum("bmi,bmj->bij", self.X[rows], self.X[rows])


class QuadraticSumOfQuadratics(_QuadraticSum):
    """f(x) = (1/N) sum_n 1/2 (x - x_n*)^T A_n (x - x_n*) with A (N, n, n), x_star (N, n).

    The second form of INVENTORY ``prob:quad_finite_sum``, registered as its variant
    ``[quadratics]``: g_n = A_n (x - x_n*), H = (1/N) sum_n A_n.
    """

    def __init__(
        self, A: np.ndarray, x_star: np.ndarray, id: str = "prob:quad_finite_sum[quadratics]"
    ) -> None:
        self.A = _symmetric_matrix(A, "A", stack=True)
        N, self.dim, _ = self.A.shape
        self.x_star = np.asarray(x_star, dtype=np.float64)
        if self.x_star.shape != (N, self.dim) or not np.all(np.isfinite(self.x_star)):
            raise ValueError(f"x_star must be a finite ({N}, {self.dim}) array, "
                             f"got shape {self.x_star.shape}")
        self.id = id

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n_samples: int = 8,
        dim: int = 5,
        family: str = "geometric",
        cond: float = 10.0,
        spread: float = 1.0,
    ) -> QuadraticSumOfQuadratics:
        """A_n with the named spectrum in independent Haar bases; x_n* = x* + spread N(0, I)."""
        A = np.stack([_random_A(rng, dim, family, cond, True, 1.0) for _ in range(n_samples)])
        x_star = rng.standard_normal(dim) + spread * rng.standard_normal((n_samples, dim))
        return cls(A, x_star)

    def spec(self) -> dict[str, Any]:
        return {"A": self.A, "x_star": self.x_star, "id": self.id}

    def num_samples(self) -> int:
        return self.A.shape[0]

    def _losses(self, x, rows):
        r = x - self.x_star[rows]
        return 0.5 * np.einsum("bi,bij,bj->b", r, self.A[rows], r)

    def _grads(self, x, rows):
        return np.einsum("bij,bj->bi", self.A[rows], x - self.x_star[rows])

    def _hessians(self, rows):
        return self.A[rows]


class QuadraticNoisy(Quadratic):
    """``prob:quad`` (halved) with a noisy gradient oracle g(x) + xi, xi ~ N(0, Sigma).

    000 §2 "(General Update)" models minibatch noise as xi_b ~ N(0, (k/B) H). ``bounded`` = R
    clips each draw radially, xi <- xi min(1, R/||xi||): still mean 0 (the law is symmetric),
    ||xi|| <= R, one Gaussian draw per call; ``noise_cov()`` is then Sigma, the covariance
    before clipping, which bounds the clipped covariance from above in the Loewner order.
    """

    def __init__(
        self,
        A: np.ndarray,
        x_star: np.ndarray,
        Sigma: np.ndarray,
        c: float = 0.0,
        bounded: float | None = None,
        id: str = "prob:quad_noisy",
    ) -> None:
        super().__init__(A, x_star, c=c, halved=True, id=id)
        self.Sigma = _symmetric_matrix(Sigma, "Sigma", self.dim)
        lam, V = np.linalg.eigh(self.Sigma)
        if lam[0] < -1e-12 * max(lam[-1], 1.0):
            raise ValueError(f"Sigma must be positive semi-definite; lambda_min = {lam[0]}")
        self._root = V * np.sqrt(np.clip(lam, 0.0, None))
        if bounded is not None and not (np.isfinite(bounded) and bounded > 0.0):
            raise ValueError(f"Invalid bounded radius: {bounded}; must be None or finite > 0")
        self.bounded = None if bounded is None else float(bounded)

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n: int = 10,
        family: str = "geometric",
        cond: float = 100.0,
        rotated: bool = True,
        noise: str = "isotropic",
        sigma: float = 0.1,
        k: float = 1.0,
        batch_size: int = 1,
        Sigma: np.ndarray | None = None,
        bounded: float | None = None,
    ) -> QuadraticNoisy:
        """Sigma = sigma^2 I (``isotropic``), (k / batch_size) A (``hessian``), or ``Sigma``."""
        if noise not in NOISE_KINDS:
            raise ValueError(f"Invalid noise: {noise!r}; allowed: {NOISE_KINDS}")
        if (noise == "user") != (Sigma is not None):
            raise ValueError("Sigma must be given exactly when noise='user'")
        A = _random_A(rng, n, family, cond, rotated, 1.0)
        Sigma = {"isotropic": sigma**2 * np.eye(n), "hessian": (k / batch_size) * A,
                 "user": Sigma}[noise]
        return cls(A, rng.standard_normal(n), Sigma, bounded=bounded)

    def spec(self) -> dict[str, Any]:
        quad = {k: v for k, v in super().spec().items() if k != "halved"}
        return {**quad, "Sigma": self.Sigma, "bounded": self.bounded}

    def noise_cov(self) -> np.ndarray:
        """Sigma, the covariance of xi (before clipping when ``bounded``)."""
        return self.Sigma.copy()

    def noisy_grad(self, params: Tree, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """g(x) + xi with xi = Sigma^{1/2} z, z ~ N(0, I) from ``rng`` (clipped if bounded)."""
        xi = self._root @ rng.standard_normal(self.dim)
        if self.bounded is not None:
            xi *= min(1.0, self.bounded / max(np.linalg.norm(xi), np.finfo(float).tiny))
        return {"x": self.grad(params)["x"] + xi}


def _random_A(rng, n, family, cond, rotated, L) -> np.ndarray:
    """Q diag(lam) Q^T: the spectrum family in a Haar basis, or diagonal when not rotated."""
    lam = spectrum(family, n, cond, rng, L=L)
    return symmetric(lam, random_orthogonal(n, rng)) if rotated else np.diag(lam)


def _symmetric_matrix(A: np.ndarray, name: str, n: int | None = None, stack: bool = False):
    """A finite symmetric (n, n) matrix, or an (N, n, n) stack of them when ``stack``.

    Symmetrised when equal to its transpose up to rounding; otherwise a ValueError.
    """
    A = np.asarray(A, dtype=np.float64)
    ndim = 3 if stack else 2
    if A.ndim != ndim or A.shape[-1] != A.shape[-2] or (n is not None and A.shape[-1] != n):
        what = "an (N, n, n) stack of square matrices" if stack else "a square matrix"
        raise ValueError(f"{name} must be {what}{f' with n = {n}' if n else ''}, got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    At = np.swapaxes(A, -1, -2)
    if not np.allclose(A, At, rtol=1e-10, atol=1e-12 * max(np.abs(A).max(initial=0.0), 1.0)):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (A + At)


def _vector(x: np.ndarray, name: str, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (n,) or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be a finite ({n},) vector, got shape {x.shape}")
    return x


def _finite_scalar(value: float, name: str) -> float:
    if not np.isfinite(value):
        raise ValueError(f"Invalid {name}: {value}; must be finite")
    return float(value)


REGISTRY.register("prob:quad", Quadratic)
REGISTRY.register("prob:quad_finite_sum", QuadraticFiniteSum)
REGISTRY.register("prob:quad_finite_sum[quadratics]", QuadraticSumOfQuadratics)
REGISTRY.register("prob:quad_noisy", QuadraticNoisy)
