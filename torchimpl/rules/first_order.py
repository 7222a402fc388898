"""The non-Adam first-order rules ``rule:fo.*`` in torch (INVENTORY §2.2): SGD, heavy ball,
Nesterov, Lion, WIN, Adagrad, RMSprop, Langevin, LARS, delta-bar-delta.

The same mathematics, IDs, hyperparameter names, defaults, state keys and error messages as
the NumPy reference; any dtype and device (the working dtype is each leaf's gradient's). Every
rule is elementwise on the leaves (``tree_map``), except ``fo.nesterov`` (``oracle.grad`` at
the look-ahead point), ``fo.langevin`` (one Gaussian probe over the flat parameter vector,
``oracle.probe("gaussian", (P,), oracle.seed(), dtype=..., device=...)``) and ``fo.lars``
(per-leaf norms). ``updates`` is the step: params + updates = next params; the step counter
``t`` is a python int, as in the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from contract import Rule, freeze
from contract.specs.first_order import SPECS, validate
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import check_finite, flatten, tree_map, unflatten

# --- validation: `contract.specs.first_order` (the same kinds and messages) -------------


def _tree_option(name: str, value: Any, params) -> dict[str, torch.Tensor]:
    """A mapping like ``params`` (same keys and shapes, finite), else a ``ValueError``."""
    if not isinstance(value, Mapping) or set(value) != set(params):
        raise ValueError(f"Invalid {name}: must be None or a mapping with keys {list(params)}")
    tree = {k: _like(value[k], params[k]) for k in params}
    for k, v in tree.items():
        if v.shape != params[k].shape:
            raise ValueError(
                f"{name}[{k!r}] has shape {tuple(v.shape)}; params need {tuple(params[k].shape)}"
            )
    check_finite(tree, name)
    return tree


def _like(value: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value).to(dtype=like.dtype, device=like.device)


def _cholesky(name: str, value: Any, like: torch.Tensor) -> torch.Tensor:
    """L with L L^T = value, for a symmetric positive definite (n, n) matrix, n = like.numel().

    The checks run in float64 (as in the reference) and L is cast to ``like``'s dtype.
    """
    n = like.numel()
    sigma = torch.as_tensor(value).to(dtype=torch.float64, device=like.device)
    if tuple(sigma.shape) != (n, n):
        raise ValueError(f"{name} has shape {tuple(sigma.shape)}; parameters need {(n, n)}")
    if not bool(torch.isfinite(sigma).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    if not torch.allclose(sigma, sigma.T, rtol=1e-12, atol=0.0):
        raise ValueError(f"Invalid {name}: must be symmetric")
    L, info = torch.linalg.cholesky_ex(sigma)
    if int(info) != 0:
        raise ValueError(f"Invalid {name}: must be positive definite (leading minor {int(info)})")
    return L.to(like.dtype)


def ramp(t: int, target: float, start: float, schedule: str, steps: int) -> float:
    """The momentum coefficient of step t (t = steps already taken, 0 at the first step).

    ``constant``: target. ``linear`` (this project's declared schedule; 003 §2.1 asks to start
    "close to 0.5" and increase "smoothly" to 0.9-0.99 without a formula): start +
    (target - start) min(t/steps, 1), i.e. start at the first step and target from step
    ``steps`` on.
    """
    if schedule == "constant":
        return target
    return start + (target - start) * min(t / steps, 1.0)


def _state(**items: Any) -> Mapping[str, Any]:
    """The new state: an immutable mapping whose trees are immutable too."""
    return freeze({k: freeze(v) if isinstance(v, dict) else v for k, v in items.items()})


# --- steps: (grads, state, params, oracle, **hyper) -> (updates, new_state) ----------------


def sgd(grads, state, params, oracle, alpha):
    """theta <- theta - alpha g (002 Eq. (2), Eq. (7))."""
    return tree_map(lambda g: -alpha * g, grads), state


def heavy_ball_thesis(grads, state, params, oracle, alpha, beta, momentum_schedule,
                      beta_start, ramp_steps):
    """m <- beta_t m - g; theta <- theta + alpha m (002 Eq. (8)-(9))."""
    b = ramp(state["t"], beta, beta_start, momentum_schedule, ramp_steps)
    m = tree_map(lambda m, g: b * m - g, state["m"], grads)
    return tree_map(lambda m: alpha * m, m), _state(m=m, t=state["t"] + 1)


def heavy_ball_survey(grads, state, params, oracle, alpha, eps, momentum_schedule,
                      beta_start, ramp_steps):
    """v <- alpha_t v - eps g; theta <- theta + v (003 §2.1, 1st display)."""
    a = ramp(state["t"], alpha, beta_start, momentum_schedule, ramp_steps)
    v = tree_map(lambda v, g: a * v - eps * g, state["v"], grads)
    return tree_map(torch.clone, v), _state(v=v, t=state["t"] + 1)


def heavy_ball_ema(grads, state, params, oracle, eta, beta):
    """m <- beta m + (1 - beta) g; theta <- theta - eta m (004 App. C Table 8)."""
    m = tree_map(lambda m, g: beta * m + (1 - beta) * g, state["m"], grads)
    return tree_map(lambda m: -eta * m, m), _state(m=m)


def _grad_at(oracle, point):
    """oracle.grad at ``point``, in each leaf's dtype and device."""
    g = oracle.grad(point)
    check_finite(g, "oracle.grad")
    return {k: _like(g[k], point[k]) for k in point}


def nesterov_thesis(grads, state, params, oracle, alpha, beta, printed=False):
    """m <- beta m - grad L(theta + alpha beta m); theta <- theta + alpha m (Reading), or
    theta <- theta + m (Text, ``printed``): 002 §2.4.2, NAG paragraph."""
    look = tree_map(lambda p, m: p + alpha * beta * m, params, state["m"])
    m = tree_map(lambda m, g: beta * m - g, state["m"], _grad_at(oracle, look))
    scale = 1.0 if printed else alpha
    return tree_map(lambda m: scale * m, m), _state(m=m)


def nesterov_sutskever(grads, state, params, oracle, alpha, eps):
    """v <- alpha v - eps grad L(theta + alpha v); theta <- theta + v (003 §2.2 display)."""
    look = tree_map(lambda p, v: p + alpha * v, params, state["v"])
    v = tree_map(lambda v, g: alpha * v - eps * g, state["v"], _grad_at(oracle, look))
    return tree_map(torch.clone, v), _state(v=v)


def lion_chen2023(grads, state, params, oracle, eta, beta1, beta2, lam):
    """c = beta1 m + (1 - beta1) g; theta <- theta - eta (sign(c) + lam theta);
    m <- beta2 m + (1 - beta2) g ([ext: Chen et al. 2023], Alg. 1)."""
    c = tree_map(lambda m, g: beta1 * m + (1 - beta1) * g, state["m"], grads)
    updates = tree_map(lambda c, p: -eta * (torch.sign(c) + lam * p), c, params)
    m = tree_map(lambda m, g: beta2 * m + (1 - beta2) * g, state["m"], grads)
    return updates, _state(m=m)


def lion_as_printed(grads, state, params, oracle, alpha, beta, P):
    """m <- beta m - (1 - beta) P . g; theta <- theta + alpha m (002 §2.4.2 Lion display with
    Eq. (9)); P = None means ones."""
    scale = _tree_option("P", P, params) if P is not None else tree_map(torch.ones_like, grads)
    m = tree_map(lambda m, d, g: beta * m - (1 - beta) * d * g, state["m"], scale, grads)
    return tree_map(lambda m: alpha * m, m), _state(m=m)


def win(grads, state, params, oracle, alpha, beta, lam):
    """m <- beta m - (1 - beta)(g + lam theta); theta <- theta + alpha m (002 §2.4.2 WIN
    display; "the update rule is similar as Eq. (9)")."""
    m = tree_map(lambda m, g, p: beta * m - (1 - beta) * (g + lam * p), state["m"], grads, params)
    return tree_map(lambda m: alpha * m, m), _state(m=m)


def adagrad(grads, state, params, oracle, alpha, eps):
    """G <- G + g^2; theta <- theta - alpha g/(sqrt(G) + eps) (002 §2.4.2 Adagrad display)."""
    G = tree_map(lambda G, g: G + g * g, state["G"], grads)
    return tree_map(lambda g, G: -alpha * g / (torch.sqrt(G) + eps), grads, G), _state(G=G)


def rmsprop(grads, state, params, oracle, alpha, beta, eps, eps_inside):
    """v <- beta v + (1 - beta) g^2; theta <- theta - alpha g/(sqrt(v) + eps), or
    alpha g/sqrt(v + eps) with ``eps_inside`` (002 §2.4.2 RMSProp display)."""
    v = tree_map(lambda v, g: beta * v + (1 - beta) * g * g, state["v"], grads)

    def step(g, v):
        return -alpha * g / (torch.sqrt(v + eps) if eps_inside else torch.sqrt(v) + eps)

    return tree_map(step, grads, v), _state(v=v)


def langevin(grads, state, params, oracle, alpha, T_eff, noise_cov):
    """theta <- theta - alpha g + sqrt(2 alpha T_eff) L xi, xi ~ N(0, I) over the flat vector
    (002 §2.2.2, Xie et al. display); L = I (isotropic, as printed) or the Cholesky factor of
    ``noise_cov`` = Sigma = L L^T."""
    g = flatten(grads)
    s = oracle.seed()
    xi = oracle.probe("gaussian", (g.numel(),), s, dtype=g.dtype, device=g.device)
    if noise_cov is not None:
        xi = _cholesky("noise_cov", noise_cov, g) @ xi
    return unflatten(-alpha * g + math.sqrt(2 * alpha * T_eff) * xi, params), state


def lars(grads, state, params, oracle, eta, eta_trust, beta_wd, mu):
    """Per leaf (layer): eta_l = eta_trust ||w||/(||grad w|| + beta_wd ||w||);
    v <- mu v + eta eta_l (grad w + beta_wd w); w <- w - v ([ext: You et al. 2017], Alg. 1).
    eta_l = 1 where ||w|| = 0 or ||grad w|| = 0 (this project's convention, as common
    implementations do: the ratio is 0/0 or 0 there)."""

    def velocity(v, g, w):
        w_norm, g_norm = torch.linalg.vector_norm(w), torch.linalg.vector_norm(g)
        ratio = eta_trust * w_norm / (g_norm + beta_wd * w_norm)
        local = torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))
        return mu * v + eta * local * (g + beta_wd * w)

    v = tree_map(velocity, state["v"], grads, params)
    return tree_map(lambda v: -v, v), _state(v=v)


def delta_bar_delta(grads, state, params, oracle, eps, kappa, psi, gamma_min, gamma_max):
    """Hinton's gains: gamma_i += kappa if g_i(t) g_i(t-1) > 0, else gamma_i *= psi; clip to
    [gamma_min, gamma_max]; Delta w_i = -eps gamma_i g_i (003 §2.3, prose). Gains start at 1
    and are left unchanged at the first step (no previous gradient)."""

    def gain(gamma, g, g_prev):
        if state["t"] == 0:
            return gamma
        grown = torch.where(g * g_prev > 0, gamma + kappa, gamma * psi)
        return torch.clamp(grown, gamma_min, gamma_max)

    gamma = tree_map(gain, state["gamma"], grads, state["g_prev"])
    updates = tree_map(lambda c, g: -eps * c * g, gamma, grads)
    return updates, _state(gamma=gamma, g_prev=tree_map(torch.clone, grads), t=state["t"] + 1)


# --- registration (IDs, defaults, docs, kinds: `contract.specs.first_order`) ---------------


def _zeros(*names: str, counter: bool = False) -> Callable:
    def init(params) -> Mapping[str, Any]:
        state: dict[str, Any] = {n: tree_map(torch.zeros_like, dict(params)) for n in names}
        if counter:
            state["t"] = 0
        return _state(**state)

    return init


def _dbd_init(params) -> Mapping[str, Any]:
    params = dict(params)
    return _state(
        gamma=tree_map(torch.ones_like, params), g_prev=tree_map(torch.zeros_like, params), t=0
    )


def _as_tensors(grads, params) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Gradients as tensors, and params in each gradient leaf's dtype and device."""
    grads = {k: torch.as_tensor(v) for k, v in grads.items()}
    return grads, {k: _like(params[k], grads[k]) for k in grads}


def _register(key: str, step: Callable, init: Callable) -> None:
    spec = SPECS[key]

    def update(grads, state, params, oracle, **values):
        validate(values, spec.checks)
        check_finite(grads, "grads")
        grads, params = _as_tensors(grads, params)
        return step(grads, state, params, oracle, **values)

    REGISTRY.register(key, Rule(key, init, update, spec.hyper, spec.doc))


_register("rule:fo.sgd", sgd, _zeros())
_register("rule:fo.heavy_ball", heavy_ball_thesis, _zeros("m", counter=True))
_register("rule:fo.heavy_ball[survey]", heavy_ball_survey, _zeros("v", counter=True))
_register("rule:fo.heavy_ball[ema]", heavy_ball_ema, _zeros("m"))
_register("rule:fo.nesterov", nesterov_thesis, _zeros("m"))
_register(
    "rule:fo.nesterov[as_printed]",
    lambda *a, **h: nesterov_thesis(*a, **h, printed=True),
    _zeros("m"),
)
_register("rule:fo.nesterov[sutskever]", nesterov_sutskever, _zeros("v"))
_register("rule:fo.lion", lion_chen2023, _zeros("m"))
_register("rule:fo.lion[as_printed]", lion_as_printed, _zeros("m"))
_register("rule:fo.win", win, _zeros("m"))
_register("rule:fo.adagrad", adagrad, _zeros("G"))
_register("rule:fo.rmsprop", rmsprop, _zeros("v"))
_register("rule:fo.langevin", langevin, _zeros())
_register("rule:fo.lars", lars, _zeros("v"))
_register("rule:fo.delta_bar_delta", delta_bar_delta, _dbd_init)
