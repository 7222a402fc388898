"""The zeroth-order estimators `est:zo_*` (INVENTORY §3.9; source 002 §2.4.1).

Every estimator is a pure function of a loss ``L`` on the flat parameter vector (a callable
``L(v: (P,)) -> float``), the point ``theta`` (P,), the probes (arrays, or for ``zo_two_point``
a seed from which z is regenerated) and its options. Each returns a mapping with the same
shape of result:

- ``evaluations``: the number of calls of ``L`` it made (counted, not assumed), for the cost
  claims (`est:oracle_counter`): coord P + 1 (central 2P), direction K + 1 (L(theta) is shared
  by the K directions), two-point 2K, printed ZO-HVP 2K;
- ``quotients``: the scalar difference quotients, one per draw (per coordinate for
  ``zo_coord``); a probe of shape (P,) gives a scalar, a stack (K, P) gives (K,);
- ``grad`` (the three gradient estimators): the estimate, shape (P,); with K > 1 draws it is
  the mean over the draws, (1/K) sum_k q_k u_k (the document prints one draw);
- ``value`` (``zo_hvp_printed``): the printed scalar, one per (z, u) draw (= ``quotients``).

Probes are used as given: the distribution of u (Gaussian, sphere, ...) is the caller's choice
(the rules draw them through ``oracle.probe``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from contract import Estimator
from contract.specs.zeroth_order import check_seed, count, probe_dist
from contract.validate import boolean, positive
from reference.estimators.registry import REGISTRY
from reference.oracle import probe

Loss = Callable[[np.ndarray], float]


# --- inputs (option checks: contract.specs.zeroth_order) ------------------------


def directions(draw: Callable, dist: str, P: int, n_dirs: int, seed: int) -> np.ndarray:
    """n_dirs probes u_k = draw(dist, (P,), seed + k): (P,) when n_dirs = 1, else (n_dirs, P).

    One seed per estimate; ``draw`` is ``oracle.probe`` in the rules (the same draws)."""
    U = [np.asarray(draw(dist, (P,), seed + k), dtype=np.float64) for k in range(n_dirs)]
    return U[0] if n_dirs == 1 else np.stack(U)


def _point(theta: Any) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 1 or theta.size == 0:
        raise ValueError(f"theta must be a non-empty vector (P,), got shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta contains non-finite values (NaN or inf)")
    return theta


def _probes(name: str, value: Any, P: int) -> np.ndarray:
    """A probe (P,) or a stack of K >= 1 probes (K, P), finite."""
    u = np.asarray(value, dtype=np.float64)
    if u.ndim not in (1, 2) or u.shape[-1] != P or (u.ndim == 2 and u.shape[0] == 0):
        raise ValueError(f"{name} must have shape ({P},) or (K, {P}) with K >= 1, got {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return u


class _Counted:
    """``L`` with a call counter; every value must be a finite real."""

    def __init__(self, loss: Loss) -> None:
        if not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        self.loss, self.calls = loss, 0

    def __call__(self, v: np.ndarray) -> float:
        self.calls += 1
        value = float(self.loss(v))
        if not math.isfinite(value):
            raise ValueError(f"loss returned a non-finite value ({value})")
        return value


def _result(grad, quotients, L: _Counted, single: bool) -> dict[str, Any]:
    q = np.asarray(quotients, dtype=np.float64)
    return {
        "grad": grad,
        "quotients": q[0] if single else q,
        "evaluations": L.calls,
    }


# --- the estimators ------------------------------------------------------------------------


def zo_coord(loss: Loss, theta: Any, *, h: float = 1e-3, central: bool = False) -> dict:
    """Coordinate-wise differences: d_i = (L(theta + h e_i) - L(theta))/h (002 §2.4.1, first
    display); with ``central``, (L(theta + h e_i) - L(theta - h e_i))/(2h). P + 1 evaluations
    (central: 2P). On a quadratic with Hessian A the forward error is exactly A_ii h/2 and the
    central one is 0. ``quotients`` = ``grad``."""
    h, central = positive("h", h, say_finite=True), boolean("central", central)
    theta = _point(theta)
    L = _Counted(loss)
    P = theta.size
    E = h * np.eye(P)
    plus = np.array([L(theta + E[i]) for i in range(P)])
    if central:
        minus = np.array([L(theta - E[i]) for i in range(P)])
        grad = (plus - minus) / (2.0 * h)
    else:
        grad = (plus - L(theta)) / h
    return {"grad": grad, "quotients": grad.copy(), "evaluations": L.calls}


def zo_direction(
    loss: Loss,
    theta: Any,
    u: Any = None,
    *,
    h: float = 1e-3,
    u_dist: str = "gaussian",
    n_dirs: int = 1,
    seed: int | None = None,
) -> dict:
    """Random-direction differences: q_k = (L(theta + h u_k) - L(theta))/h and
    grad = (1/K) sum_k q_k u_k (002 §2.4.1, "A typical estimator is", u ~ N(0, I_P) printed).
    ``u``: given probes (P,) or (K, P); or ``seed``: K = ``n_dirs`` probes
    u_k = probe(dist, (P,), seed + k) with dist from ``u_dist`` (``gaussian`` N(0, I_P),
    ``uniform_sphere``, ``sqrtP_sphere`` = sqrt(P) x uniform on the sphere, ``rademacher``),
    the draws `rule:zo.sgd` makes (a single probe (P,) when n_dirs = 1). ``u_dist`` and
    ``n_dirs`` describe that draw and are not used with given ``u``. K + 1 evaluations.
    On a quadratic, q_k = u_k^T g + (h/2) u_k^T A u_k: per draw it tends to (u^T g) u as h -> 0.
    """
    h = positive("h", h, say_finite=True)
    dist, n_dirs = probe_dist(u_dist), count("n_dirs", n_dirs)
    theta = _point(theta)
    if (u is None) == (seed is None):
        raise ValueError("zo_direction needs exactly one of u (probes) and seed")
    if seed is not None:
        u = directions(lambda d, shape, s: probe(d, shape, s), dist, theta.size, n_dirs,
                       check_seed(seed))
    u = _probes("u", u, theta.size)
    U = np.atleast_2d(u)
    L = _Counted(loss)
    L0 = L(theta)
    q = np.array([(L(theta + h * uk) - L0) / h for uk in U])
    return _result(q @ U / len(U), q, L, u.ndim == 1)


def _regenerator(z: Any, seed: Any, P: int) -> tuple[Callable[[], np.ndarray], bool]:
    """A zero-argument callable returning z (K, P) each time it is called, and whether the
    input was a single probe. ``z`` is an array, or itself a callable (a regenerator: the
    rules pass one that asks the oracle again); ``seed`` regenerates z ~ N(0, I_P) through
    `reference.oracle.probe` (bit-exact from the seed)."""
    if (z is None) == (seed is None):
        raise ValueError("zo_two_point needs exactly one of z (probes or a regenerator) and seed")
    if seed is not None:
        seed = check_seed(seed)
        return (lambda: probe("gaussian", (P,), seed)[None]), True
    if callable(z):
        first = _probes("z", z(), P)
        return (lambda: np.atleast_2d(_probes("z", z(), P))), first.ndim == 1
    fixed = _probes("z", z, P)
    return (lambda: np.atleast_2d(fixed)), fixed.ndim == 1


def zo_two_point(
    loss: Loss, theta: Any, z: Any = None, *, eps: float = 1e-3, seed: int | None = None
) -> dict:
    """Symmetric (MeZO) differences: q_k = (L(theta + eps z_k) - L(theta - eps z_k))/(2 eps),
    grad = (1/K) sum_k q_k z_k (002 §2.4.1, MeZO display, z ~ N(0, I_P)). ``z``: (P,), (K, P),
    or a callable returning them; or ``seed``: z = probe("gaussian", (P,), seed). z is never
    kept: it is regenerated for each use (perturb +, perturb -, the product), as MeZO stores
    the seed instead of z. 2K evaluations. On a quadratic each draw equals (z^T g) z."""
    eps = positive("eps", eps, say_finite=True)
    theta = _point(theta)
    draw, single = _regenerator(z, seed, theta.size)
    L = _Counted(loss)
    plus = np.array([L(theta + eps * zk) for zk in draw()])
    minus = np.array([L(theta - eps * zk) for zk in draw()])
    q = (plus - minus) / (2.0 * eps)
    Z = draw()
    return _result(q @ Z / len(Z), q, L, single)


def zo_hvp_printed(loss: Loss, theta: Any, z: Any, u: Any, *, h: float = 1e-3) -> dict:
    """The printed ZO-HVP relation, literally: [L(theta + h z + h u) - L(theta + h u)]/h^2,
    a scalar per (z, u) draw (002 §2.4.1, "H^(t) z ~ ..."; the left side is a vector, the right
    a scalar: INVENTORY keeps the right side). ``z``, ``u``: (P,) or (K, P), the same shape.
    2K evaluations. On L = 1/2 (x - x*)^T A (x - x*) + c with g = A (theta - x*) it equals
    exactly g^T z / h + z^T A z / 2 + z^T A u: it does not tend to a curvature as h -> 0."""
    h = positive("h", h, say_finite=True)
    theta = _point(theta)
    z = _probes("z", z, theta.size)
    u = _probes("u", u, theta.size)
    if z.shape != u.shape:
        raise ValueError(f"z and u must have the same shape, got {z.shape} and {u.shape}")
    L = _Counted(loss)
    value = np.array(
        [
            (L(theta + h * zk + h * uk) - L(theta + h * uk)) / h**2
            for zk, uk in zip(np.atleast_2d(z), np.atleast_2d(u), strict=True)
        ]
    )
    value = value[0] if z.ndim == 1 else value
    return {"value": value, "quotients": value.copy(), "evaluations": L.calls}


for _key, _fn, _options in (
    ("est:zo_coord", zo_coord, {"h": 1e-3, "central": False}),
    ("est:zo_direction", zo_direction,
     {"h": 1e-3, "u_dist": "gaussian", "n_dirs": 1, "seed": None}),
    ("est:zo_two_point", zo_two_point, {"eps": 1e-3, "seed": None}),
    ("est:zo_hvp_printed", zo_hvp_printed, {"h": 1e-3}),
):
    REGISTRY.register(_key, Estimator(_key, _fn, _options, _fn.__doc__))
