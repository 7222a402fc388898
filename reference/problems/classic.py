"""Classic synthetic test functions (INVENTORY §1.2): ``prob:rosenbrock``, ``prob:nls``,
``prob:saddle``, ``prob:nesterov_worst``, ``prob:smooth_nonconvex`` (and ``[mlp]``),
``prob:zo_test`` and ``prob:double_well``.

Every problem has the one parameter ``{"x": (d,)}`` and is a mean of per-sample losses l_n
(``reduction="sum"``: their sum, where offered). A problem without data is the one-sample case
N = 1, exactly as ``prob:quad``: its per-sample loss is f, so per-sample gradients and the
empirical Fisher g g^T are defined. Loss, gradient, Hessian and HVP are closed forms (no
autograd, no finite differences); the few minimisers without a closed form (``prob:nls`` with
a non-zero residual on exponential data, the wells of ``prob:double_well``) are polished by
Newton's method on the closed-form gradient and Hessian, to a gradient at rounding level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from reference.problems.base import Problem
from reference.problems.datasets import batch_rows
from reference.problems.network import FeedForward
from reference.problems.registry import REGISTRY
from reference.problems.spectra import random_orthogonal, spectrum, symmetric
from reference.tree import Tree

REDUCTIONS = ("mean", "sum")
NLS_KINDS = ("exp", "rosenbrock")
RESIDUALS = ("zero", "nonzero")
SADDLE_KINDS = ("simple", "random", "rotated", "nd")
SMOOTH_KINDS = ("log", "cos")
ZO_KINDS = ("quadratic", "cubic", "quartic", "logistic")


class VectorProblem(Problem):
    """(scale) sum_n l_n(x) over the batch, x = params["x"] of shape (dim,).

    Subclasses give per-sample losses ``_losses(x, rows)`` (B,), gradients ``_grads(x, rows)``
    (B, d) and the summed Hessian ``_hess_sum(x, rows)`` = sum_n Hess l_n (d, d). The scale is
    1/B (``reduction="mean"``) or 1 (``"sum"``); Hessian and empirical Fisher carry it too.
    """

    dim: int
    reduction: str = "mean"

    def _losses(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grads(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _hess_sum(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """x ~ N(0, I)."""
        return {"x": rng.standard_normal(self.dim)}

    def _scale(self, B: int) -> float:
        return 1.0 / B if self.reduction == "mean" else 1.0

    def _rows(self, batch) -> np.ndarray:
        return batch_rows(batch, self.num_samples())

    def loss(self, params: Tree, batch=None) -> float:
        losses = self.per_sample_losses(params, batch)
        return float(self._scale(losses.size) * losses.sum())

    def grad(self, params: Tree, batch=None) -> dict[str, np.ndarray]:
        G = self.per_sample_grads(params, batch)
        return {"x": self._scale(G.shape[0]) * G.sum(axis=0)}

    def per_sample_losses(self, params: Tree, batch=None) -> np.ndarray:
        return self._losses(self._x(params), self._rows(batch))

    def per_sample_grads(self, params: Tree, batch=None) -> np.ndarray:
        return self._grads(self._x(params), self._rows(batch))

    def hessian(self, params: Tree, batch=None) -> np.ndarray:
        rows = self._rows(batch)
        H = self._scale(rows.size) * self._hess_sum(self._x(params), rows)
        return 0.5 * (H + H.T)

    def hvp(self, params: Tree, v: Tree, batch=None) -> dict[str, np.ndarray]:
        return {"x": self.hessian(params, batch) @ self._x(v, "v")}

    def fisher_emp(self, params: Tree, batch=None) -> np.ndarray:
        """scale * sum_n g_n g_n^T (INVENTORY est:fisher_emp)."""
        G = self.per_sample_grads(params, batch)
        return self._scale(G.shape[0]) * G.T @ G

    def _x(self, tree: Tree, name: str = "params") -> np.ndarray:
        """``tree["x"]`` checked: the only key, shape (dim,), finite."""
        if set(tree) != {"x"}:
            raise ValueError(f"{name} must have exactly the key 'x', got {sorted(tree)}")
        x = np.asarray(tree["x"], dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"{name}['x'] has shape {x.shape}; expected ({self.dim},)")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}['x'] contains non-finite values (NaN or inf)")
        return x


class Deterministic(VectorProblem):
    """One function f, the single sample (N = 1): subclasses give ``_f``, ``_g``, ``_h``."""

    def _f(self, x: np.ndarray) -> float:
        raise NotImplementedError

    def _g(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _h(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _losses(self, x, rows):
        return np.full(rows.size, self._f(x))

    def _grads(self, x, rows):
        return np.tile(self._g(x), (rows.size, 1))

    def _hess_sum(self, x, rows):
        return rows.size * self._h(x)


# --- prob:rosenbrock -----------------------------------------------------------------------


class Rosenbrock(Deterministic):
    """f(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (INVENTORY §1.2); x* = 1, f* = 0.

    g_i = -400 x_i (x_{i+1} - x_i^2) - 2 (1 - x_i) [i < d] + 200 (x_i - x_{i-1}^2) [i > 1];
    the Hessian is tridiagonal: H_ii = (1200 x_i^2 - 400 x_{i+1} + 2) [i < d] + 200 [i > 1],
    H_{i,i+1} = -400 x_i.
    """

    def __init__(self, dim: int = 2, id: str = "prob:rosenbrock") -> None:
        self.dim = _int_at_least(dim, "dim", 2)
        self.id = id

    @classmethod
    def make(cls, rng: np.random.Generator, dim: int = 2) -> Rosenbrock:
        return cls(dim)

    def spec(self) -> dict[str, Any]:
        return {"dim": self.dim, "id": self.id}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """x ~ U(-2, 2)^d."""
        return {"x": rng.uniform(-2.0, 2.0, self.dim)}

    def classic_start(self) -> dict[str, np.ndarray]:
        """The textbook start (-1.2, 1, -1.2, 1, ...)."""
        return {"x": np.where(np.arange(self.dim) % 2 == 0, -1.2, 1.0)}

    def _f(self, x):
        u = x[1:] - x[:-1] ** 2
        return float(np.sum(100.0 * u * u + (1.0 - x[:-1]) ** 2))

    def _g(self, x):
        u = x[1:] - x[:-1] ** 2
        g = np.zeros(self.dim)
        g[:-1] += -400.0 * x[:-1] * u - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * u
        return g

    def _h(self, x):
        diag = np.zeros(self.dim)
        diag[:-1] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
        diag[1:] += 200.0
        off = -400.0 * x[:-1]
        return np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)

    def optimum(self) -> tuple[dict[str, np.ndarray], float]:
        return {"x": np.ones(self.dim)}, 0.0


# --- prob:nls ------------------------------------------------------------------------------


class NonlinearLeastSquares(VectorProblem):
    """l_n = 1/2 r_n(x)^2 with r_n = m_n(x) - y_n; loss (1/N) sum_n l_n = ||r||^2 / (2N)
    (``reduction="sum"``: ||r||^2 / 2). INVENTORY §1.2 prob:nls, 003 §3.1 (GN and LM).

    - ``kind="exp"``: x = (a, b), m_n = a exp(b t_n) at the points t (N,);
    - ``kind="rosenbrock"``: x = (x1, x2), m = (10 (x2 - x1^2), 1 - x1, x2)[:N], N = len(y) in
      {2, 3}. y = (0, 0) is the zero-residual system (minimum (1, 1), f* = 0); a third
      residual x2 - c is incompatible with the first two: a non-zero residual at the minimum,
      where the first residual 10 (c - x1^2) / 101 is non-zero and so is its curvature term.

    Gauss-Newton quantities: ``residuals`` (B,), ``jacobian`` J (B, P) with J_n = dr_n/dx,
    ``jac_out`` (B, 1, P), ``out_hess`` = 1 (B, 1, 1) and ``ggn`` = scale sum_n J_n^T J_n, so
    that hessian = ggn + scale sum_n r_n Hess r_n.
    """

    def __init__(self, kind: str, y: np.ndarray, t: np.ndarray | None = None,
                 reduction: str = "mean", id: str = "prob:nls") -> None:
        _choice(kind, "kind", NLS_KINDS)
        _choice(reduction, "reduction", REDUCTIONS)
        self.kind, self.reduction, self.id, self.dim = kind, reduction, id, 2
        self.y = _finite(y, "y", 1)
        if kind == "exp":
            self.t = _finite(t, "t", 1)
            if self.t.shape != self.y.shape or self.y.size == 0:
                raise ValueError(f"t and y must have one equal, non-zero length; got "
                                 f"{self.t.shape} and {self.y.shape}")
        else:
            if self.y.size not in (2, 3):
                raise ValueError(f"rosenbrock residuals need y of length 2 or 3, got {self.y.size}")
            self.t = None

    @classmethod
    def make(cls, rng: np.random.Generator, kind: str = "exp", residual: str = "zero",
             n_points: int = 30, noise: float = 0.1, c: float = 0.0,
             reduction: str = "mean") -> NonlinearLeastSquares:
        """``exp``: t = linspace(0, 1, n_points), y = a e^{b t} with a ~ U(0.5, 2), b ~ U(-1, 1)
        (``residual="zero"``), plus noise * N(0, 1) per point (``"nonzero"``).
        ``rosenbrock``: y = (0, 0) (zero) or (0, 0, c) (non-zero)."""
        _choice(kind, "kind", NLS_KINDS)
        _choice(residual, "residual", RESIDUALS)
        if kind == "rosenbrock":
            y = np.zeros(2) if residual == "zero" else np.array([0.0, 0.0, float(c)])
            return cls("rosenbrock", y, reduction=reduction)
        n = _int_at_least(n_points, "n_points", 2)
        if not (np.isfinite(noise) and noise >= 0.0):
            raise ValueError(f"Invalid noise: {noise}; must be finite and >= 0")
        t = np.linspace(0.0, 1.0, n)
        a, b = rng.uniform(0.5, 2.0), rng.uniform(-1.0, 1.0)
        y = a * np.exp(b * t)
        if residual == "nonzero":
            y = y + noise * rng.standard_normal(n)
        return cls("exp", y, t, reduction)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "y": self.y, "t": self.t, "reduction": self.reduction,
                "id": self.id}

    def num_samples(self) -> int:
        return self.y.size

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """exp: (a, b) ~ U(0.5, 2) x U(-1, 1); rosenbrock: U(-2, 2)^2."""
        if self.kind == "exp":
            return {"x": np.array([rng.uniform(0.5, 2.0), rng.uniform(-1.0, 1.0)])}
        return {"x": rng.uniform(-2.0, 2.0, 2)}

    # r_n, J_n = dr_n/dx (B, 2) and Hess r_n (B, 2, 2)
    def _model(self, x: np.ndarray, rows: np.ndarray):
        B = rows.size
        if self.kind == "exp":
            a, b = x
            t = self.t[rows]
            e = np.exp(b * t)
            m, J = a * e, np.stack([e, a * t * e], axis=1)
            Hr = np.zeros((B, 2, 2))
            Hr[:, 0, 1] = Hr[:, 1, 0] = t * e
            Hr[:, 1, 1] = a * t * t * e
            return m - self.y[rows], J, Hr
        x1, x2 = x
        m_all = np.array([10.0 * (x2 - x1 * x1), 1.0 - x1, x2])
        J_all = np.array([[-20.0 * x1, 10.0], [-1.0, 0.0], [0.0, 1.0]])
        H_all = np.zeros((3, 2, 2))
        H_all[0, 0, 0] = -20.0
        return m_all[rows] - self.y[rows], J_all[rows], H_all[rows]

    def residuals(self, params: Tree, batch=None) -> np.ndarray:
        return self._model(self._x(params), self._rows(batch))[0]

    def jacobian(self, params: Tree, batch=None) -> np.ndarray:
        return self._model(self._x(params), self._rows(batch))[1]

    def _losses(self, x, rows):
        r = self._model(x, rows)[0]
        return 0.5 * r * r

    def _grads(self, x, rows):
        r, J, _ = self._model(x, rows)
        return r[:, None] * J

    def _hess_sum(self, x, rows):
        r, J, Hr = self._model(x, rows)
        return J.T @ J + np.einsum("b,bij->ij", r, Hr)

    def jac_out(self, params: Tree, batch=None) -> np.ndarray:
        """(B, 1, P): the output is the residual r_n (its target folded in)."""
        return self.jacobian(params, batch)[:, None, :]

    def out_hess(self, params: Tree, batch=None) -> np.ndarray:
        """d^2 (r^2/2) / dr^2 = 1, shape (B, 1, 1)."""
        self._x(params)
        return np.ones((self._rows(batch).size, 1, 1))

    def ggn(self, params: Tree, batch=None) -> np.ndarray:
        """scale sum_n J_n^T J_n (003 §3.1 "square of the Jacobian", with the loss's scale)."""
        J = self.jacobian(params, batch)
        return self._scale(J.shape[0]) * J.T @ J

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """rosenbrock: (1, 1) with f* = 0, or with the third residual x2 - c the minimiser
        among the real roots of 200 x1^3 + (101 - 200 c) x1 - 101 = 0 (stationarity), with
        x2 = (100 x1^2 + c) / 101. exp: Newton from the log-linear fit of the data (exact
        when the data are noiseless), None if it does not converge."""
        if self.kind == "rosenbrock":
            if self.y.size == 2:
                x = np.array([1.0, 1.0])
            else:
                c = self.y[2]
                roots = np.roots([200.0, 0.0, 101.0 - 200.0 * c, -101.0])
                x1s = roots[np.abs(roots.imag) <= 1e-12 * max(1.0, np.abs(roots).max())].real
                cands = [np.array([x1, (100.0 * x1 * x1 + c) / 101.0]) for x1 in x1s]
                x = min(cands, key=lambda p: self.loss({"x": p}))
            return {"x": x}, self.loss({"x": x})
        if np.any(self.y <= 0.0):
            return None
        slope, intercept = np.polyfit(self.t, np.log(self.y), 1)
        x = _newton(self, np.array([np.exp(intercept), slope]))
        return None if x is None else ({"x": x}, self.loss({"x": x}))


# --- prob:saddle ---------------------------------------------------------------------------


class Saddle(Deterministic):
    """f(x) = 1/2 x^T A x + (gamma/4) ||x||^4 with A symmetric indefinite (INVENTORY §1.2).

    g = A x + gamma ||x||^2 x, H = A + gamma (||x||^2 I + 2 x x^T). x = 0 is a saddle point
    with the inertia of A. With gamma > 0 the minimisers are +-sqrt(-lambda_min/gamma) v_min
    (v_min the eigenvector of the most negative eigenvalue of A), f* = -lambda_min^2/(4 gamma).
    """

    def __init__(self, A: np.ndarray, quartic: float = 0.0, id: str = "prob:saddle") -> None:
        self.A = _symmetric(A, "A")
        self.dim = self.A.shape[0]
        if not (np.isfinite(quartic) and quartic >= 0.0):
            raise ValueError(f"Invalid quartic: {quartic}; must be finite and >= 0")
        self.quartic, self.id = float(quartic), id

    @classmethod
    def make(cls, rng: np.random.Generator, kind: str = "simple", dim: int = 3,
             n_neg: int = 1, phi: float = 30.0, quartic: float | None = None) -> Saddle:
        """- ``simple``: f = x1^2 - x2^2 (A = diag(2, -2), gamma = 0);
        - ``rotated``: A = R_phi diag(1, -1) R_phi^T, phi in degrees in [0, 90], gamma = 1;
        - ``random``: A = Q diag(lam) Q^T, Q Haar, |lam| ~ U(0.5, 2) with ``n_neg`` of them
          negative, gamma = 0; ``nd``: the same with gamma = 1 (the n-D rotated saddle).
        ``quartic`` overrides gamma."""
        _choice(kind, "kind", SADDLE_KINDS)
        if kind == "simple":
            A, gamma = np.diag([2.0, -2.0]), 0.0
        elif kind == "rotated":
            if not (np.isfinite(phi) and 0.0 <= phi <= 90.0):
                raise ValueError(f"Invalid phi: {phi}; must be an angle in degrees in [0, 90]")
            A, gamma = symmetric(np.array([1.0, -1.0]), _rotation(np.deg2rad(phi))), 1.0
        else:
            d = _int_at_least(dim, "dim", 1)
            if not (isinstance(n_neg, (int, np.integer)) and 1 <= n_neg <= d):
                raise ValueError(f"Invalid n_neg: {n_neg!r}; must be an integer in [1, {d}]")
            lam = rng.uniform(0.5, 2.0, d) * np.where(np.arange(d) < n_neg, -1.0, 1.0)
            A, gamma = symmetric(lam, random_orthogonal(d, rng)), float(kind == "nd")
        return cls(A, gamma if quartic is None else quartic)

    def spec(self) -> dict[str, Any]:
        return {"A": self.A, "quartic": self.quartic, "id": self.id}

    def _f(self, x):
        s = x @ x
        return float(0.5 * x @ self.A @ x + 0.25 * self.quartic * s * s)

    def _g(self, x):
        return self.A @ x + self.quartic * (x @ x) * x

    def _h(self, x):
        return self.A + self.quartic * ((x @ x) * np.eye(self.dim) + 2.0 * np.outer(x, x))

    def inertia(self, params: Tree, tol: float = 1e-12) -> tuple[int, int, int]:
        """(positive, negative, zero) eigenvalue counts of the Hessian at ``params``;
        |lambda| <= tol max(|lambda|, 1) counts as zero."""
        lam = np.linalg.eigvalsh(self.hessian(params))
        zero = np.abs(lam) <= tol * max(np.abs(lam).max(), 1.0)
        return int(np.sum((lam > 0) & ~zero)), int(np.sum((lam < 0) & ~zero)), int(zero.sum())

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """gamma > 0: the minimiser along +v_min (sign: its largest entry positive); x = 0 when
        A is PSD; None when gamma = 0 and A is indefinite (unbounded below)."""
        lam, V = np.linalg.eigh(self.A)
        if lam[0] >= 0.0:
            return {"x": np.zeros(self.dim)}, 0.0
        if self.quartic == 0.0:
            return None
        v = V[:, 0] * np.sign(V[np.argmax(np.abs(V[:, 0])), 0])
        x = np.sqrt(-lam[0] / self.quartic) * v
        return {"x": x}, float(-lam[0] ** 2 / (4.0 * self.quartic))

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """gamma = 0: L = max |lambda(A)|, mu = lambda_min(A) < 0. gamma > 0: mu = lambda_min(A)
        (H >= A everywhere), no global L."""
        lam = np.linalg.eigvalsh(self.A)
        if self.quartic > 0.0:
            return {"mu": float(lam[0])}
        return {"L": float(np.abs(lam).max()), "mu": float(lam[0])}


# --- prob:nesterov_worst -------------------------------------------------------------------


class NesterovWorst(Deterministic):
    """f(x) = (L/8)(x_1^2 + sum_{i<d} (x_i - x_{i+1})^2 + x_d^2) - (L/4) x_1 (INVENTORY §1.2).

    f = (L/4)(1/2 x^T Lap x - x_1) with Lap = tridiag(-1, 2, -1), the path-graph Laplacian with
    Dirichlet ends: g = (L/4)(Lap x - e_1), H = (L/4) Lap. Lap^{-1} e_1 = (1 - i/(d+1))_i, so
    x*_i = 1 - i/(d+1) and f* = -(L/8) d/(d+1). Eigenvalues (L/4)(2 - 2 cos(k pi/(d+1))).
    """

    def __init__(self, dim: int = 200, L: float = 1.0, id: str = "prob:nesterov_worst") -> None:
        self.dim = _int_at_least(dim, "dim", 1)
        if not (np.isfinite(L) and L > 0.0):
            raise ValueError(f"Invalid L: {L}; must be finite and > 0")
        self.L, self.id = float(L), id
        lap = 2.0 * np.eye(self.dim) - np.eye(self.dim, k=1) - np.eye(self.dim, k=-1)
        self._H = 0.25 * self.L * lap

    @classmethod
    def make(cls, rng: np.random.Generator, dim: int = 200, L: float = 1.0) -> NesterovWorst:
        return cls(dim, L)

    def spec(self) -> dict[str, Any]:
        return {"dim": self.dim, "L": self.L, "id": self.id}

    def classic_start(self) -> dict[str, np.ndarray]:
        """x_0 = 0, the start of the lower-bound construction."""
        return {"x": np.zeros(self.dim)}

    def _f(self, x):
        sq = x[0] ** 2 + np.sum(np.diff(x) ** 2) + x[-1] ** 2
        return float(self.L / 8.0 * sq - self.L / 4.0 * x[0])

    def _g(self, x):
        g = self._H @ x
        g[0] -= 0.25 * self.L
        return g

    def _h(self, x):
        return self._H.copy()

    def optimum(self) -> tuple[dict[str, np.ndarray], float]:
        i = np.arange(1, self.dim + 1)
        return {"x": 1.0 - i / (self.dim + 1.0)}, -self.L / 8.0 * self.dim / (self.dim + 1.0)

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """L: the construction's constant (>= lambda_max); lambda_max and mu exact."""
        k = np.array([1.0, self.dim])
        lam = 0.25 * self.L * (2.0 - 2.0 * np.cos(k * np.pi / (self.dim + 1.0)))
        return {"L": self.L, "lambda_max": float(lam[1]), "mu": float(lam[0])}


# --- prob:smooth_nonconvex -----------------------------------------------------------------


class SmoothNonconvex(Deterministic):
    """f(x) = 1/2 x^T A x + alpha sum_i cos x_i + beta sum_i log(1 + (x_i - c_i)^2).

    INVENTORY §1.2 families ``log`` (A = 0, alpha = 0, beta = 1) and ``cos`` (beta = 0,
    alpha = 1, A PSD). With u = x - c: g = A x - alpha sin x + beta 2u/(1+u^2),
    H = A - alpha diag(cos x) + beta diag(2(1 - u^2)/(1 + u^2)^2).
    """

    def __init__(self, A: np.ndarray, c: np.ndarray, alpha: float = 0.0, beta: float = 1.0,
                 id: str = "prob:smooth_nonconvex") -> None:
        self.A = _symmetric(A, "A")
        self.dim = self.A.shape[0]
        self.c = _finite(c, "c", 1)
        if self.c.shape != (self.dim,):
            raise ValueError(f"c must have shape ({self.dim},), got {self.c.shape}")
        self.alpha, self.beta = _scalar(alpha, "alpha"), _scalar(beta, "beta")
        self.id = id

    @classmethod
    def make(cls, rng: np.random.Generator, kind: str = "log", dim: int = 5,
             cond: float = 10.0) -> SmoothNonconvex:
        """``log``: c ~ N(0, I). ``cos``: A with a geometric spectrum (max 1, condition
        ``cond``) in a Haar basis."""
        _choice(kind, "kind", SMOOTH_KINDS)
        d = _int_at_least(dim, "dim", 1)
        if kind == "log":
            return cls(np.zeros((d, d)), rng.standard_normal(d), 0.0, 1.0)
        A = symmetric(spectrum("geometric", d, cond), random_orthogonal(d, rng))
        return cls(A, np.zeros(d), 1.0, 0.0)

    def spec(self) -> dict[str, Any]:
        return {"A": self.A, "c": self.c, "alpha": self.alpha, "beta": self.beta, "id": self.id}

    def _f(self, x):
        u = x - self.c
        return float(0.5 * x @ self.A @ x + self.alpha * np.sum(np.cos(x))
                     + self.beta * np.sum(np.log1p(u * u)))

    def _g(self, x):
        u = x - self.c
        return self.A @ x - self.alpha * np.sin(x) + self.beta * 2.0 * u / (1.0 + u * u)

    def _h(self, x):
        u = x - self.c
        curv = -self.alpha * np.cos(x) + self.beta * 2.0 * (1.0 - u * u) / (1.0 + u * u) ** 2
        return self.A + np.diag(curv)

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """L = ||A||_2 + |alpha| + 2|beta| (|cos| <= 1, |2(1-u^2)/(1+u^2)^2| <= 2); when A = 0,
        the gradient bound G = (|alpha| + |beta|) sqrt(d) (|sin| <= 1, |2u/(1+u^2)| <= 1)."""
        out = {"L": float(np.abs(np.linalg.eigvalsh(self.A)).max() + abs(self.alpha)
                          + 2.0 * abs(self.beta))}
        if not np.any(self.A):
            out["G"] = float((abs(self.alpha) + abs(self.beta)) * np.sqrt(self.dim))
        return out

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """(c, 0) for the pure log family (A = 0, alpha = 0, beta > 0); else unknown."""
        if not np.any(self.A) and self.alpha == 0.0 and self.beta > 0.0:
            return {"x": self.c.copy()}, 0.0
        return None


class SmoothMLPRegression(FeedForward):
    """``prob:smooth_nonconvex[mlp]``: a tanh (or sigmoid) MLP with squared loss (mse_half) on
    bounded inputs X ~ U(-1, 1)^d and bounded targets y = tanh(X W*) (W* ~ N(0, 1/d))."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 32, widths=(2, 8, 1),
             activation: str = "tanh", reduction: str = "mean", l2: float = 0.0
             ) -> SmoothMLPRegression:
        if activation not in ("tanh", "sigmoid"):
            raise ValueError(f"Invalid activation: {activation!r}; allowed: ('tanh', 'sigmoid')")
        widths = list(widths)
        d, C = widths[0], widths[-1]
        X = rng.uniform(-1.0, 1.0, (n_samples, d))
        y = np.tanh(X @ rng.standard_normal((d, C)) / np.sqrt(d))
        return cls(X, y, widths, activation, "mse_half", True, reduction, l2,
                   id="prob:smooth_nonconvex[mlp]")


# --- prob:zo_test --------------------------------------------------------------------------


class ZOTest(Deterministic):
    """f(x) = 1/2 x^T A x + b^T x + c3 sum_i x_i^3 + (c4/4) sum_i x_i^4
    + (1/m) sum_k softplus(z_k^T x), softplus(u) = log(1 + e^u), Z (m, d) (m = 0: no term).

    Exact derivatives up to order 3 (INVENTORY §1.2 prob:zo_test), with s = sigma(Z x):
    g = A x + b + 3 c3 x^2 + c4 x^3 + Z^T s / m,
    H = A + diag(6 c3 x + 3 c4 x^2) + Z^T diag(s (1 - s)) Z / m,
    T_ijk = delta_ijk (6 c3 + 6 c4 x_i) + (1/m) sum_k s(1-s)(1-2s) z_ki z_kj z_kl.
    """

    def __init__(self, A: np.ndarray, b: np.ndarray, c3: float = 0.0, c4: float = 0.0,
                 Z: np.ndarray | None = None, id: str = "prob:zo_test") -> None:
        self.A = _symmetric(A, "A")
        self.dim = d = self.A.shape[0]
        self.b = _finite(b, "b", 1)
        if self.b.shape != (d,):
            raise ValueError(f"b must have shape ({d},), got {self.b.shape}")
        self.c3, self.c4 = _scalar(c3, "c3"), _scalar(c4, "c4")
        self.Z = np.zeros((0, d)) if Z is None else _finite(Z, "Z", 2)
        if self.Z.shape[1] != d:
            raise ValueError(f"Z must have shape (m, {d}), got {self.Z.shape}")
        self.id = id

    @classmethod
    def make(cls, rng: np.random.Generator, kind: str = "quadratic", dim: int = 4,
             cond: float = 10.0, n_samples: int = 20, l2: float = 0.1) -> ZOTest:
        """``quadratic``: A geometric spectrum (max 1, condition ``cond``, Haar basis), b ~ N(0,I);
        ``cubic``: + sum x_i^3 (c3 = 1); ``quartic``: + (1/4) sum x_i^4 (c4 = 1);
        ``logistic``: mean logistic loss log(1 + exp(-y_k a_k^T x)) of ``n_samples`` Gaussian
        features a_k with labels y_k = +-1 (z_k = -y_k a_k), plus the ridge (l2/2)||x||^2."""
        _choice(kind, "kind", ZO_KINDS)
        d = _int_at_least(dim, "dim", 1)
        if kind == "logistic":
            a = rng.standard_normal((n_samples, d))
            y = np.where(rng.random(n_samples) < 0.5, -1.0, 1.0)
            return cls(l2 * np.eye(d), np.zeros(d), Z=-y[:, None] * a)
        A = symmetric(spectrum("geometric", d, cond), random_orthogonal(d, rng))
        return cls(A, rng.standard_normal(d), float(kind == "cubic"), float(kind == "quartic"))

    def spec(self) -> dict[str, Any]:
        return {"A": self.A, "b": self.b, "c3": self.c3, "c4": self.c4, "Z": self.Z,
                "id": self.id}

    def _m(self) -> int:
        return max(self.Z.shape[0], 1)

    def _f(self, x):
        soft = np.sum(np.logaddexp(0.0, self.Z @ x)) / self._m()
        return float(0.5 * x @ self.A @ x + self.b @ x + self.c3 * np.sum(x**3)
                     + 0.25 * self.c4 * np.sum(x**4) + soft)

    def _g(self, x):
        s = expit(self.Z @ x)
        return (self.A @ x + self.b + 3.0 * self.c3 * x * x + self.c4 * x**3
                + self.Z.T @ s / self._m())

    def _h(self, x):
        s = expit(self.Z @ x)
        return (self.A + np.diag(6.0 * self.c3 * x + 3.0 * self.c4 * x * x)
                + (self.Z.T * (s * (1.0 - s))) @ self.Z / self._m())

    def third_derivative(self, params: Tree) -> np.ndarray:
        """The dense (P, P, P) tensor T_ijk = d^3 f / dx_i dx_j dx_k."""
        x = self._x(params)
        s = expit(self.Z @ x)
        w = s * (1.0 - s) * (1.0 - 2.0 * s) / self._m()
        T = np.einsum("k,ki,kj,kl->ijl", w, self.Z, self.Z, self.Z)
        i = np.arange(self.dim)
        T[i, i, i] += 6.0 * self.c3 + 6.0 * self.c4 * x
        return T

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """Pure quadratic with A positive definite: x* = -A^{-1} b, f* = -b^T A^{-1} b / 2."""
        if self.c3 or self.c4 or self.Z.shape[0] or np.linalg.eigvalsh(self.A)[0] <= 0.0:
            return None
        x = -np.linalg.solve(self.A, self.b)
        return {"x": x}, float(0.5 * self.b @ x)

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """Without the cubic and quartic terms: L = lambda_max(A) + lambda_max(Z^T Z)/(4m)
        (sigma(1 - sigma) <= 1/4), mu = lambda_min(A)."""
        if self.c3 or self.c4:
            return {}
        lam = np.linalg.eigvalsh(self.A)
        extra = np.linalg.eigvalsh(self.Z.T @ self.Z)[-1] / (4.0 * self._m())
        return {"L": float(lam[-1] + extra), "mu": float(lam[0])}


# --- prob:double_well ----------------------------------------------------------------------


class DoubleWell(VectorProblem):
    """f(x) = -log(exp(-q_1(x)) + exp(-q_2(x))), q_1 = (a/2)||x + e_1||^2,
    q_2 = (b/2)||x - e_1||^2, x in R^d (d = 1 or 2): two wells near -e_1 and e_1 of curvature
    about a and b (INVENTORY §1.2). Finite-sum version l_n(x) = f(x) + c_n^T x with
    sum_n c_n = 0 (c (N, d)), so the mean loss is f.

    With pi = softmax(-q) and r_k = grad q_k: grad f = sum_k pi_k r_k,
    Hess f = sum_k pi_k P_k - sum_k pi_k r_k r_k^T + (grad f)(grad f)^T, P = (a I, b I).
    ``minima()`` reports the actual wells (Newton from each centre).
    """

    def __init__(self, a: float, b: float, c: np.ndarray, id: str = "prob:double_well") -> None:
        self.a, self.b = _positive(a, "a"), _positive(b, "b")
        self.c = _finite(c, "c", 2)
        if self.c.shape[0] == 0 or self.c.shape[1] not in (1, 2):
            raise ValueError(f"c must have shape (N >= 1, d in {{1, 2}}), got {self.c.shape}")
        if np.abs(self.c.sum(axis=0)).max() > 1e-10 * max(np.abs(self.c).max(), 1.0):
            raise ValueError("the tilts c_n must sum to zero over n")
        self.dim, self.id = self.c.shape[1], id

    @classmethod
    def make(cls, rng: np.random.Generator, dim: int = 1, a: float = 1.0, b: float = 4.0,
             n_samples: int = 1, noise: float = 0.0) -> DoubleWell:
        """c_n = noise * N(0, I) minus their mean (all zero for N = 1 or noise = 0)."""
        if dim not in (1, 2):
            raise ValueError(f"Invalid dim: {dim!r}; allowed: (1, 2)")
        N = _int_at_least(n_samples, "n_samples", 1)
        if noise == 0.0:
            return cls(a, b, np.zeros((N, dim)))
        c = noise * rng.standard_normal((N, dim))
        return cls(a, b, c - c.mean(axis=0))

    def spec(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "c": self.c, "id": self.id}

    def num_samples(self) -> int:
        return self.c.shape[0]

    def _terms(self, x: np.ndarray):
        """q (2,), r = grad q (2, d), precisions (2,)."""
        e1 = np.eye(self.dim)[0]
        P = np.array([self.a, self.b])
        diff = np.stack([x + e1, x - e1])
        return 0.5 * P * np.sum(diff * diff, axis=1), P[:, None] * diff, P

    def _f(self, x: np.ndarray) -> float:
        q = self._terms(x)[0]
        return float(-np.logaddexp(-q[0], -q[1]))

    def _g(self, x: np.ndarray) -> np.ndarray:
        q, r, _ = self._terms(x)
        return _softmax(-q) @ r

    def _h(self, x: np.ndarray) -> np.ndarray:
        q, r, P = self._terms(x)
        pi = _softmax(-q)
        g = pi @ r
        return (pi @ P) * np.eye(self.dim) - (r.T * pi) @ r + np.outer(g, g)

    def _losses(self, x, rows):
        return self._f(x) + self.c[rows] @ x

    def _grads(self, x, rows):
        return self._g(x) + self.c[rows]

    def _hess_sum(self, x, rows):
        return rows.size * self._h(x)

    def minima(self) -> list[dict[str, Any]]:
        """The local minima of f found by Newton from -e_1 and e_1: dicts with ``x``, ``f``
        (depth) and ``curvatures`` (Hessian eigenvalues), duplicates removed."""
        found: list[dict[str, Any]] = []
        for sign in (-1.0, 1.0):
            x = _newton(_Potential(self), sign * np.eye(self.dim)[0])
            if x is None or any(np.linalg.norm(x - m["x"]) < 1e-8 for m in found):
                continue
            lam = np.linalg.eigvalsh(self._h(x))
            if lam[0] > 0.0:
                found.append({"x": x, "f": self._f(x), "curvatures": lam})
        return found

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """The deeper of `minima` (the mean tilt is zero, so the loss is f)."""
        wells = self.minima()
        if not wells:
            return None
        best = min(wells, key=lambda m: m["f"])
        return {"x": best["x"]}, float(best["f"])


class _Potential:
    """The untilted f of a DoubleWell, in the (loss, grad, hessian) shape `_newton` uses."""

    def __init__(self, well: DoubleWell) -> None:
        self.well = well

    def loss(self, params: Tree) -> float:
        return self.well._f(params["x"])

    def grad(self, params: Tree) -> dict[str, np.ndarray]:
        return {"x": self.well._g(params["x"])}

    def hessian(self, params: Tree) -> np.ndarray:
        return self.well._h(params["x"])


# --- helpers -------------------------------------------------------------------------------


def _newton(problem: Any, x: np.ndarray, max_iter: int = 200) -> np.ndarray | None:
    """Newton's method with halving backtracking from ``x``: the point where the gradient is
    at rounding level (||g|| <= 1e-13 max(1, |f|, ||H||)), or None (no descent or no
    convergence, e.g. a non-positive-definite Hessian on the way)."""
    f = problem.loss({"x": x})
    for _ in range(max_iter):
        g, H = problem.grad({"x": x})["x"], problem.hessian({"x": x})
        if np.linalg.norm(g) <= 1e-13 * max(1.0, abs(f), np.abs(H).max()):
            return x
        lam, V = np.linalg.eigh(H)
        if lam[0] <= 0.0:
            return None
        step, t = -(V / lam) @ (V.T @ g), 1.0
        while t > 1e-10:
            trial = x + t * step
            f_trial = problem.loss({"x": trial})
            if f_trial <= f + 1e-4 * t * (g @ step) or np.linalg.norm(t * step) <= 1e-15 * (
                1.0 + np.linalg.norm(x)
            ):
                break
            t *= 0.5
        else:
            return None
        if np.array_equal(trial, x):
            return x
        x, f = trial, f_trial
    return None


def _softmax(u: np.ndarray) -> np.ndarray:
    e = np.exp(u - u.max())
    return e / e.sum()


def _rotation(phi: float) -> np.ndarray:
    return np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])


def _symmetric(A: np.ndarray, name: str) -> np.ndarray:
    A = _finite(A, name, 2)
    if A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {A.shape}")
    if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12 * max(np.abs(A).max(), 1.0)):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (A + A.T)


def _finite(array: Any, name: str, ndim: int) -> np.ndarray:
    if array is None:
        raise ValueError(f"{name} is required")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


def _scalar(value: float, name: str) -> float:
    if isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"Invalid {name}: {value!r}; must be a finite number")
    return float(value)


def _positive(value: float, name: str) -> float:
    if not (np.isfinite(value) and value > 0.0):
        raise ValueError(f"Invalid {name}: {value!r}; must be finite and > 0")
    return float(value)


def _int_at_least(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Invalid {name}: {value!r}; must be an integer >= {minimum}")
    return int(value)


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Invalid {name}: {value!r}; allowed: {allowed}")


REGISTRY.register("prob:rosenbrock", Rosenbrock)
REGISTRY.register("prob:nls", NonlinearLeastSquares)
REGISTRY.register("prob:saddle", Saddle)
REGISTRY.register("prob:nesterov_worst", NesterovWorst)
REGISTRY.register("prob:smooth_nonconvex", SmoothNonconvex)
REGISTRY.register("prob:smooth_nonconvex[mlp]", SmoothMLPRegression)
REGISTRY.register("prob:zo_test", ZOTest)
REGISTRY.register("prob:double_well", DoubleWell)
