"""The zeroth-order estimators `est:zo_*` in torch (INVENTORY §3.9; source 002 §2.4.1): the
same IDs, arguments, options, result keys and errors as the reference layer.

Every estimator is a pure function of a loss ``L`` on the flat parameter vector (a callable
``L(v: Tensor (P,)) -> 0-d Tensor``), the point ``theta`` (a floating tensor (P,): its dtype
and device are the results'), the probes (tensors or arrays, or for ``zo_two_point`` a seed
from which z is regenerated) and its options. Each returns a mapping:

- ``evaluations``: the number of calls of ``L`` it made (counted): coord P + 1 (central 2P),
  direction K + 1, two-point 2K, printed ZO-HVP 2K;
- ``quotients``: the scalar difference quotients, one per draw (per coordinate for
  ``zo_coord``); a probe (P,) gives a 0-d tensor, a stack (K, P) gives (K,);
- ``grad`` (the gradient estimators): (1/K) sum_k q_k u_k, shape (P,);
- ``value`` (``zo_hvp_printed``): the printed scalar per (z, u) draw (= ``quotients``).

A ``seed`` is turned into probes by `torchimpl.oracle.probe` (torch's generator: other numbers
than the reference's NumPy draws from the same seed; the cross-check passes the probes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from contract import Estimator
from contract.specs.zeroth_order import check_seed, count, probe_dist
from contract.validate import boolean, positive
from torchimpl.estimators.registry import REGISTRY
from torchimpl.oracle import probe

Loss = Callable[[torch.Tensor], torch.Tensor]


# --- inputs (option checks: contract.specs.zeroth_order) ------------------------


def directions(
    draw: Callable, dist: str, P: int, n_dirs: int, seed: int, like: torch.Tensor
) -> torch.Tensor:
    """n_dirs probes u_k = draw(dist, (P,), seed + k): (P,) when n_dirs = 1, else (n_dirs, P),
    with ``like``'s dtype and device. One seed per estimate; ``draw`` is ``oracle.probe`` in
    the rules (the same draws as the reference layer's)."""
    U = [
        torch.as_tensor(draw(dist, (P,), seed + k)).to(dtype=like.dtype, device=like.device)
        for k in range(n_dirs)
    ]
    return U[0] if n_dirs == 1 else torch.stack(U)


def _point(theta: Any) -> torch.Tensor:
    if not isinstance(theta, torch.Tensor) or not theta.is_floating_point():
        raise TypeError(f"theta must be a floating-point torch.Tensor, got {type(theta).__name__}")
    if theta.dim() != 1 or theta.numel() == 0:
        raise ValueError(f"theta must be a non-empty vector (P,), got shape {tuple(theta.shape)}")
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("theta contains non-finite values (NaN or inf)")
    return theta


def _probes(name: str, value: Any, like: torch.Tensor) -> torch.Tensor:
    """A probe (P,) or a stack of K >= 1 probes (K, P), finite, as ``like``'s dtype/device."""
    P = like.shape[0]
    u = torch.as_tensor(value).to(dtype=like.dtype, device=like.device)
    if u.dim() not in (1, 2) or u.shape[-1] != P or (u.dim() == 2 and u.shape[0] == 0):
        raise ValueError(
            f"{name} must have shape ({P},) or (K, {P}) with K >= 1, got {tuple(u.shape)}"
        )
    if not bool(torch.isfinite(u).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return u


class _Counted:
    """``L`` with a call counter; every value must be a finite real (0-d tensor or float)."""

    def __init__(self, loss: Loss, like: torch.Tensor) -> None:
        if not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        self.loss, self.like, self.calls = loss, like, 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        value = torch.as_tensor(self.loss(v)).to(dtype=self.like.dtype, device=self.like.device)
        if value.numel() != 1:
            raise ValueError(f"loss must return a scalar, got shape {tuple(value.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"loss returned a non-finite value ({float(value)})")
        return value.reshape(())


def _result(grad: torch.Tensor, q: torch.Tensor, L: _Counted, single: bool) -> dict[str, Any]:
    return {"grad": grad, "quotients": q[0] if single else q, "evaluations": L.calls}


# --- the estimators ------------------------------------------------------------------------


def zo_coord(loss: Loss, theta: Any, *, h: float = 1e-3, central: bool = False) -> dict:
    """Coordinate-wise differences: d_i = (L(theta + h e_i) - L(theta))/h (002 §2.4.1, first
    display); with ``central``, (L(theta + h e_i) - L(theta - h e_i))/(2h). P + 1 evaluations
    (central: 2P). On a quadratic with Hessian A the forward error is exactly A_ii h/2 and the
    central one is 0. ``quotients`` = ``grad``."""
    h, central = positive("h", h, say_finite=True), boolean("central", central)
    theta = _point(theta)
    L = _Counted(loss, theta)
    E = h * torch.eye(theta.shape[0], dtype=theta.dtype, device=theta.device)
    plus = torch.stack([L(theta + e) for e in E])
    if central:
        minus = torch.stack([L(theta - e) for e in E])
        grad = (plus - minus) / (2.0 * h)
    else:
        grad = (plus - L(theta)) / h
    return {"grad": grad, "quotients": grad.clone(), "evaluations": L.calls}


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
    u_k = probe(dist, (P,), seed + k) with dist from ``u_dist`` (``gaussian``,
    ``uniform_sphere``, ``sqrtP_sphere``, ``rademacher``). ``u_dist`` and ``n_dirs`` describe
    that draw and are not used with given ``u``. K + 1 evaluations. On a quadratic,
    q_k = u_k^T g + (h/2) u_k^T A u_k: per draw it tends to (u^T g) u as h -> 0.
    """
    h = positive("h", h, say_finite=True)
    dist, n_dirs = probe_dist(u_dist), count("n_dirs", n_dirs)
    theta = _point(theta)
    if (u is None) == (seed is None):
        raise ValueError("zo_direction needs exactly one of u (probes) and seed")
    if seed is not None:
        u = directions(probe, dist, theta.shape[0], n_dirs, check_seed(seed), theta)
    u = _probes("u", u, theta)
    U = torch.atleast_2d(u)
    L = _Counted(loss, theta)
    L0 = L(theta)
    q = torch.stack([(L(theta + h * uk) - L0) / h for uk in U])
    return _result(q @ U / U.shape[0], q, L, u.dim() == 1)


def _regenerator(z: Any, seed: Any, like: torch.Tensor) -> tuple[Callable[[], torch.Tensor], bool]:
    """A zero-argument callable returning z (K, P) at each call, and whether the input was a
    single probe: from an array, a callable (a regenerator), or ``seed`` (torch's draw)."""
    if (z is None) == (seed is None):
        raise ValueError("zo_two_point needs exactly one of z (probes or a regenerator) and seed")
    if seed is not None:
        seed = check_seed(seed)
        P = like.shape[0]
        return (lambda: probe("gaussian", (P,), seed, like.dtype, like.device)[None]), True
    if callable(z):
        first = _probes("z", z(), like)
        return (lambda: torch.atleast_2d(_probes("z", z(), like))), first.dim() == 1
    fixed = _probes("z", z, like)
    return (lambda: torch.atleast_2d(fixed)), fixed.dim() == 1


def zo_two_point(
    loss: Loss, theta: Any, z: Any = None, *, eps: float = 1e-3, seed: int | None = None
) -> dict:
    """Symmetric (MeZO) differences: q_k = (L(theta + eps z_k) - L(theta - eps z_k))/(2 eps),
    grad = (1/K) sum_k q_k z_k (002 §2.4.1, MeZO display, z ~ N(0, I_P)). ``z``: (P,), (K, P),
    or a callable returning them; or ``seed``: z = probe("gaussian", (P,), seed). z is never
    kept: it is regenerated for each use (perturb +, perturb -, the product). 2K evaluations.
    On a quadratic each draw equals (z^T g) z."""
    eps = positive("eps", eps, say_finite=True)
    theta = _point(theta)
    draw, single = _regenerator(z, seed, theta)
    L = _Counted(loss, theta)
    plus = torch.stack([L(theta + eps * zk) for zk in draw()])
    minus = torch.stack([L(theta - eps * zk) for zk in draw()])
    q = (plus - minus) / (2.0 * eps)
    Z = draw()
    return _result(q @ Z / Z.shape[0], q, L, single)


def zo_hvp_printed(loss: Loss, theta: Any, z: Any, u: Any, *, h: float = 1e-3) -> dict:
    """The printed ZO-HVP relation, literally: [L(theta + h z + h u) - L(theta + h u)]/h^2,
    a scalar per (z, u) draw (002 §2.4.1, "H^(t) z ~ ..."). ``z``, ``u``: (P,) or (K, P), the
    same shape. 2K evaluations. On L = 1/2 (x - x*)^T A (x - x*) + c with g = A (theta - x*)
    it equals exactly g^T z / h + z^T A z / 2 + z^T A u."""
    h = positive("h", h, say_finite=True)
    theta = _point(theta)
    z, u = _probes("z", z, theta), _probes("u", u, theta)
    if z.shape != u.shape:
        raise ValueError(
            f"z and u must have the same shape, got {tuple(z.shape)} and {tuple(u.shape)}"
        )
    L = _Counted(loss, theta)
    value = torch.stack(
        [
            (L(theta + h * zk + h * uk) - L(theta + h * uk)) / h**2
            for zk, uk in zip(torch.atleast_2d(z), torch.atleast_2d(u), strict=True)
        ]
    )
    value = value[0] if z.dim() == 1 else value
    return {"value": value, "quotients": value.clone(), "evaluations": L.calls}


for _key, _fn, _options in (
    ("est:zo_coord", zo_coord, {"h": 1e-3, "central": False}),
    (
        "est:zo_direction",
        zo_direction,
        {"h": 1e-3, "u_dist": "gaussian", "n_dirs": 1, "seed": None},
    ),
    ("est:zo_two_point", zo_two_point, {"eps": 1e-3, "seed": None}),
    ("est:zo_hvp_printed", zo_hvp_printed, {"h": 1e-3}),
):
    REGISTRY.register(_key, Estimator(_key, _fn, _options, _fn.__doc__))
