"""The classical second-order rules ``rule:so.*`` in torch (INVENTORY §2.4; sources 003 §3-§3.6,
002 §2.4.3 Eq. (14)-(15)). The quasi-Newton rules live in `torchimpl.rules.quasi_newton`,
imported at the bottom so that they register too; the line searches in `contract.linesearch`.

The same mathematics, IDs, hyperparameter names, defaults, state keys and error messages as the
NumPy reference; any dtype and device (the working dtype is the gradient's; curvatures are cast
to it). Every rule works on the flat gradient g = flatten(grads) and returns the step as
``updates`` (params + updates = next params). State scalars (mu, lam, alpha) are 0-dim tensors
of the working dtype, counters (t, count) Python ints.

Fixed constants: the Armijo search of ``gauss_newton[step=line_search]`` and ``newton_cg`` uses
c1 = 1e-4, rho = 0.5, initial step 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from contract import Rule, freeze, linesearch
from contract.specs import second_order as second_order_specs
from contract.specs.second_order import validate
from torchimpl.linalg import Spectrum, eigh_sym
from torchimpl.linalg import matrix_power_apply as power
from torchimpl.oracle import parse_curvature
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import check_finite, flatten, unflatten

ARMIJO_C1, ARMIJO_RHO = 1e-4, 0.5

# --- validation: `contract.specs.second_order`, the curvature kind parsed here ----------


def curvature_kind(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    try:
        parse_curvature(value)
    except ValueError as error:
        raise ValueError(f"Invalid {name}: {error}") from error


SPECS = second_order_specs.specs(curvature_kind)


def register(rule_id: str, step: Callable, doc: str,
             init: Callable[[Any], Mapping[str, Any]] | None = None) -> None:
    """Register ``step(g, state, params, oracle, **hyper) -> (d, new_state)`` as a Rule, with
    the defaults and checks of ``SPECS[rule_id]``."""
    spec = SPECS[rule_id]

    def update(grads, state, params, oracle, **values):
        validate(values, spec.checks)
        check_finite(grads, "grads")
        d, new_state = step(flatten(grads), state, params, oracle, **values)
        return unflatten(d, params), new_state

    REGISTRY.register(rule_id, Rule(rule_id, init or _counter, update, spec.hyper, doc))


def _counter(params) -> Mapping[str, Any]:
    return freeze(t=0)


def _no_state(params) -> Mapping[str, Any]:
    return freeze()


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def dot(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(u @ v)


# --- what the rules ask of the oracle -----------------------------------------------------


def along(params, oracle, d: torch.Tensor):
    """phi(a) = f(x + a d) and (phi(a), phi'(a)) as float callables, for the line searches."""
    x = flatten(params).to(d)

    def phi(a: float) -> float:
        return float(oracle.loss(unflatten(x + a * d, params)))

    def phi_slope(a: float) -> tuple[float, float]:
        point = unflatten(x + a * d, params)
        return float(oracle.loss(point)), dot(flatten(oracle.grad(point)).to(d), d)

    return phi, phi_slope


def armijo_step(params, oracle, g, d, alpha0=1.0, c1=ARMIJO_C1, rho=ARMIJO_RHO) -> float:
    """The backtracking Armijo step along d (0 when d = 0)."""
    if not bool(d.any()):
        return 0.0
    phi, _ = along(params, oracle, d)
    return linesearch.armijo(phi, phi(0.0), dot(g, d), alpha0, c1, rho).alpha


def wolfe_step(params, oracle, g, d, alpha0, c1, c2) -> float:
    """The strong-Wolfe step along d (0 when d = 0)."""
    if not bool(d.any()):
        return 0.0
    phi, phi_slope = along(params, oracle, d)
    return linesearch.strong_wolfe(phi_slope, phi(0.0), dot(g, d), alpha0, c1, c2).alpha


def hessian_vector(params, oracle, v: torch.Tensor) -> torch.Tensor:
    return flatten(oracle.hvp(params, unflatten(v, params))).to(v)


def curvature(params, oracle, curv: str, like: torch.Tensor) -> torch.Tensor:
    return oracle.curvature(params, curv).to(like)


def nonpd_spectrum(K: torch.Tensor, nonpd: str, delta: float, name: str) -> Spectrum:
    """The spectrum a Newton step inverts, under the ``nonpd`` policy of ``so.newton_ls``
    (raise, pinv, damping: K + max(0, delta - lam_min) I, abs: Q |Lam| Q^T)."""
    if nonpd in ("raise", "pinv"):
        return eigh_sym(K, 0.0, nonpd, name)
    if nonpd == "damping":
        lam_min = float(eigh_sym(K, 0.0, "pinv", name).lam.min())
        return eigh_sym(K, max(0.0, delta - lam_min), "raise", name)
    spec = eigh_sym(K, 0.0, "pinv", name)
    lam = spec.lam.abs()
    kept = lam > lam.numel() * torch.finfo(lam.dtype).eps * float(lam.max())
    if not bool(kept.all()):
        raise ValueError(f"{name} has a zero eigenvalue: |K| is singular (nonpd='abs')")
    return Spectrum(lam, spec.Q, kept, None)


# --- Newton with globalization: 003 §3, 002 Eq. (14) -------------------------------------


def newton_ls(g, state, params, oracle, alpha, line_search, c1, rho, nonpd, delta, curv):
    K = curvature(params, oracle, curv, g)
    d = -power(nonpd_spectrum(K, nonpd, delta, f"curvature {curv!r}"), g, -1)
    a = alpha if line_search == "none" else armijo_step(params, oracle, g, d, alpha, c1, rho)
    return a * d, state


# --- Gauss-Newton and Levenberg-Marquardt: 003 §3.1 ---------------------------------------


def gauss_newton(g, state, params, oracle, step, pinv, curv):
    G = curvature(params, oracle, curv, g)
    delta_w = power(eigh_sym(G, 0.0, "pinv" if pinv else "raise", f"curvature {curv!r}"), g, -1)
    a = 1.0 if step == "unit" else armijo_step(params, oracle, g, -delta_w)
    return -a * delta_w, state


def levenberg_marquardt(g, state, params, oracle, mu, mu_schedule, nu, scaling, curv):
    mu_t = mu if state["t"] == 0 else float(state["mu"])
    G = curvature(params, oracle, curv, g)
    D = torch.eye(len(g), dtype=g.dtype, device=g.device) if scaling == "identity" else (
        torch.diag(torch.diagonal(G)))
    name = f"curvature {curv!r} + mu D (mu = {mu_t:.6e})"
    delta_w = power(eigh_sym(G + mu_t * D, 0.0, "raise", name), g, -1)
    if mu_schedule == "fixed":
        return -delta_w, freeze(mu=scalar(mu_t, g), t=state["t"] + 1)
    phi, _ = along(params, oracle, -delta_w)
    accept = phi(1.0) < phi(0.0)
    mu_next = mu_t / nu if accept else mu_t * nu
    d = -delta_w if accept else torch.zeros_like(g)
    return d, freeze(mu=scalar(mu_next, g), t=state["t"] + 1)


def _lm_init(params) -> Mapping[str, Any]:
    return freeze(mu=scalar(0.0, flatten(params)), t=0)


# --- SOFO: 002 §2.4.3 -----------------------------------------------------------------------


def sofo(g, state, params, oracle, alpha, lam, curv):
    G = curvature(params, oracle, curv, g)
    return -alpha * power(eigh_sym(G, lam, "raise", f"curvature {curv!r}"), g, -1), state


# --- conjugate gradients: 003 §3.2 ----------------------------------------------------------


def cg_linear(g, state, params, oracle):
    r = -g
    rr = dot(r, r)
    if state["t"] == 0:
        p = r
    else:
        r_prev = state["r"].to(g)
        rr_prev = dot(r_prev, r_prev)
        p = r + (rr / rr_prev if rr_prev > 0 else 0.0) * state["p"].to(g)
    if rr == 0.0:
        return torch.zeros_like(g), freeze(r=r, p=torch.zeros_like(g), t=state["t"] + 1)
    pAp = dot(p, hessian_vector(params, oracle, p))
    if not pAp > 0:
        raise ValueError(f"cg_linear: p^T A p = {pAp:.6e} <= 0 (A must be SPD)")
    return (rr / pAp) * p, freeze(r=r, p=p, t=state["t"] + 1)


def _cg_linear_init(params) -> Mapping[str, Any]:
    x = flatten(params)
    return freeze(r=torch.zeros_like(x), p=torch.zeros_like(x), t=0)


def cg_beta(g, g_prev, beta: str) -> float:
    denominator = dot(g_prev, g_prev)
    if denominator == 0.0:
        return 0.0
    numerator = dot(g, g) if beta == "fr" else dot(g - g_prev, g)
    return numerator / denominator


def cg_nonlinear(g, state, params, oracle, beta, restart, line_search, c1, c2, printed=False):
    t = state["t"]
    g_prev, d_prev = state["g"].to(g), state["d"].to(g)
    fresh = t == 0 or restart == "every_step" or (restart == "every_n" and t % g.numel() == 0)
    b = 0.0 if fresh else cg_beta(g, g_prev, beta)
    if restart == "pr_plus":
        b = max(0.0, b)
    sign = 1.0 if printed else -1.0
    d = sign * g + b * (0.0 if fresh else 1.0) * d_prev
    if not printed and b != 0.0 and dot(g, d) >= 0:
        d, fresh = -g, True
    if not bool(d.any()):
        a = 0.0
    elif line_search == "exact":
        dHd = dot(d, hessian_vector(params, oracle, d))
        if not dHd > 0:
            raise ValueError(f"cg_nonlinear: exact line search needs d^T H d > 0, got "
                             f"{dHd:.6e}")
        a = -dot(g, d) / dHd
    else:
        previous = float(state["alpha"]) * dot(g_prev, d_prev)
        slope = dot(g, d)
        a0 = min(1.0, 1.0 / float(torch.linalg.vector_norm(d))) if fresh or previous == 0 else (
            previous / slope)
        a = wolfe_step(params, oracle, g, d, a0, c1, c2)
    return a * d, freeze(g=g, d=d, alpha=scalar(a, g), t=t + 1)


def _cg_nonlinear_init(params) -> Mapping[str, Any]:
    x = flatten(params)
    return freeze(g=torch.zeros_like(x), d=torch.zeros_like(x), alpha=scalar(0.0, x), t=0)


# --- Newton-CG (Hessian-free): 003 §3.6 ------------------------------------------------------


def truncated_cg(apply_B: Callable[[torch.Tensor], torch.Tensor], g: torch.Tensor, tol: float,
                 max_iter: int) -> torch.Tensor:
    """CG on B p = -g from p = 0 (Nocedal & Wright Alg. 7.1), as in the reference."""
    z = torch.zeros_like(g)
    r = g.clone()
    d = -r
    for j in range(max_iter):
        Bd = apply_B(d)
        dBd = dot(d, Bd)
        if not dBd > 0:
            return -g if j == 0 else z
        rr = dot(r, r)
        a = rr / dBd
        z = z + a * d
        r = r + a * Bd
        if float(torch.linalg.vector_norm(r)) <= tol:
            break
        d = -r + (dot(r, r) / rr) * d
    return z


def newton_cg(g, state, params, oracle, lam, hvp, h, model, alpha_damp, line_search):
    lam_t = lam if state["t"] == 0 else float(state["lam"])
    x = flatten(params).to(g)

    def H(v: torch.Tensor) -> torch.Tensor:
        if hvp == "exact":
            return hessian_vector(params, oracle, v)
        return (flatten(oracle.grad(unflatten(x + h * v, params))).to(g) - g) / h

    norm_g = float(torch.linalg.vector_norm(g))
    p = truncated_cg(lambda v: H(v) + lam_t * v, g, min(0.5, math.sqrt(norm_g)) * norm_g,
                     g.numel())
    a = armijo_step(params, oracle, g, p) if line_search else 1.0
    lam_next = lam_t
    if lam_t > 0 and bool(p.any()):
        q = dot(g, p) + 0.5 * dot(p, H(p)) + (0.5 * lam_t * dot(p, p) if model == "damped" else 0.0)
        phi, _ = along(params, oracle, p)
        ratio = (phi(1.0) - phi(0.0)) / q if q != 0 else 1.0
        if ratio < 0.25:
            lam_next = alpha_damp * lam_t
        elif ratio > 0.75:
            lam_next = lam_t / alpha_damp
    return a * p, freeze(lam=scalar(lam_next, g), t=state["t"] + 1)


def _newton_cg_init(params) -> Mapping[str, Any]:
    return freeze(lam=scalar(0.0, flatten(params)), t=0)


# --- registration (docs: see the reference) ---------------------------------------------------

_DOC = "See the NumPy reference rule of the same ID (reference.rules.second_order)."

register(
    "rule:so.newton_ls",
    newton_ls,
    "Newton with globalization (003 §3; 002 Eq. (14)). " + _DOC,
    init=_no_state,
)
register(
    "rule:so.gauss_newton",
    gauss_newton,
    "Gauss-Newton, w <- w - G^-1 grad E (003 §3.1). " + _DOC,
    init=_no_state,
)
register(
    "rule:so.lm",
    levenberg_marquardt,
    "Levenberg-Marquardt (003 §3.1). State: mu, t. " + _DOC,
    init=_lm_init,
)
register(
    "rule:so.sofo",
    sofo,
    "SOFO, theta <- theta - alpha (G + lam I)^-1 g (002 §2.4.3). " + _DOC,
    init=_no_state,
)
register(
    "rule:so.cg_linear",
    cg_linear,
    "Linear CG, one iteration per step. " + _DOC,
    init=_cg_linear_init,
)
register(
    "rule:so.cg_nonlinear",
    cg_nonlinear,
    "Nonlinear CG (003 §3.2, Reading). " + _DOC,
    init=_cg_nonlinear_init,
)
register(
    "rule:so.cg_nonlinear[as_printed]",
    lambda *args, **kw: cg_nonlinear(*args, **kw, printed=True),
    "Nonlinear CG with the printed d_t = +g_t + beta_t d_{t-1} (003 §3.2 Text). " + _DOC,
    init=_cg_nonlinear_init,
)
register(
    "rule:so.newton_cg",
    newton_cg,
    "Line-search Newton-CG (003 §3.6). State: lam, t. " + _DOC,
    init=_newton_cg_init,
)

from torchimpl.rules import quasi_newton  # noqa: E402, F401  (registers so.bfgs, so.lbfgs)
