"""The classical second-order rules ``rule:so.*`` (INVENTORY §2.4; sources 003 §3-§3.6, 002
§2.4.3 Eq. (14)-(15)). The quasi-Newton rules (BFGS, L-BFGS) live in
`reference.rules.quasi_newton`, imported at the bottom so that they register too; the line
searches in `contract.linesearch`.

Every rule works on the flat gradient g = flatten(grads) and returns the step, unflattened like
``params``, as ``updates`` (params + updates = next params). Curvature comes from
``oracle.curvature(params, curv)`` (dense over the flat parameters), Hessian-vector products
from ``oracle.hvp``, losses and gradients at trial points from ``oracle.loss``/``oracle.grad``.

State is explicit: ``t`` (int, the number of completed steps) in every stateful rule, ``mu``
(LM), ``lam`` (Newton-CG), the last gradient/direction/step (nonlinear CG). A damping held in
state is taken from the hyperparameter at t = 0 and from the state afterwards.

Fixed constants (the documents give none; documented, shared by the rules that use them):
the Armijo search of ``gauss_newton[step=line_search]`` and ``newton_cg`` uses c1 = 1e-4,
rho = 0.5, initial step 1 (INVENTORY ``so.newton_ls`` defaults).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from contract import Rule, freeze, linesearch
from contract.specs import second_order as second_order_specs
from contract.specs.second_order import validate
from reference.linalg import Spectrum, eigh_sym
from reference.linalg import matrix_power_apply as power
from reference.oracle import parse_curvature
from reference.rules.registry import REGISTRY
from reference.tree import check_finite, flatten, unflatten

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


# --- what the rules ask of the oracle -----------------------------------------------------


def along(params, oracle, d: np.ndarray):
    """phi(a) = f(x + a d) and (phi(a), phi'(a)) as float callables, for the line searches."""
    x = flatten(params)

    def phi(a: float) -> float:
        return float(oracle.loss(unflatten(x + a * d, params)))

    def phi_slope(a: float) -> tuple[float, float]:
        point = unflatten(x + a * d, params)
        return float(oracle.loss(point)), float(flatten(oracle.grad(point)) @ d)

    return phi, phi_slope


def armijo_step(params, oracle, g, d, alpha0=1.0, c1=ARMIJO_C1, rho=ARMIJO_RHO) -> float:
    """The backtracking Armijo step along d (0 when d = 0)."""
    if not np.any(d):
        return 0.0
    phi, _ = along(params, oracle, d)
    return linesearch.armijo(phi, phi(0.0), float(g @ d), alpha0, c1, rho).alpha


def wolfe_step(params, oracle, g, d, alpha0, c1, c2) -> float:
    """The strong-Wolfe step along d (0 when d = 0)."""
    if not np.any(d):
        return 0.0
    phi, phi_slope = along(params, oracle, d)
    return linesearch.strong_wolfe(phi_slope, phi(0.0), float(g @ d), alpha0, c1, c2).alpha


def hessian_vector(params, oracle, v: np.ndarray) -> np.ndarray:
    return flatten(oracle.hvp(params, unflatten(v, params)))


def nonpd_spectrum(K: np.ndarray, nonpd: str, delta: float, name: str) -> Spectrum:
    """The spectrum a Newton step inverts, under the ``nonpd`` policy of ``so.newton_ls``.

    raise: K must be positive definite (the Cholesky route of 003 §3); pinv: the directions
    with lam_i <= 0 are dropped (pseudo-inverse on the positive part); damping: K + s I with
    s = max(0, delta - lam_min), so lam_min(K + s I) >= delta (continuous in K); abs: Q |Lam| Q^T
    (saddle-free Newton), a ValueError when some |lam_i| is zero up to rounding.
    """
    if nonpd in ("raise", "pinv"):
        return eigh_sym(K, 0.0, nonpd, name)
    if nonpd == "damping":
        lam_min = float(eigh_sym(K, 0.0, "pinv", name).lam.min())
        return eigh_sym(K, max(0.0, delta - lam_min), "raise", name)
    spec = eigh_sym(K, 0.0, "pinv", name)
    lam = np.abs(spec.lam)
    kept = lam > lam.size * np.finfo(np.float64).eps * lam.max(initial=0.0)
    if not np.all(kept):
        raise ValueError(f"{name} has a zero eigenvalue: |K| is singular (nonpd='abs')")
    return Spectrum(lam, spec.Q, kept, None)


# --- Newton with globalization: 003 §3, 002 Eq. (14) -------------------------------------


def newton_ls(g, state, params, oracle, alpha, line_search, c1, rho, nonpd, delta, curv):
    """d = -K^-1 g (002 Eq. (14)); x <- x + a d with a = alpha, or Armijo from a0 = alpha."""
    K = oracle.curvature(params, curv)
    d = -power(nonpd_spectrum(K, nonpd, delta, f"curvature {curv!r}"), g, -1)
    a = alpha if line_search == "none" else armijo_step(params, oracle, g, d, alpha, c1, rho)
    return a * d, state


# --- Gauss-Newton and Levenberg-Marquardt: 003 §3.1 ---------------------------------------


def gauss_newton(g, state, params, oracle, step, pinv, curv):
    """Delta w = G^-1 grad E (003 §3.1, 1st display); Reading: w <- w - Delta w (the sign and
    the application are not printed). pinv: Moore-Penrose on rank-deficient G. step
    'line_search': w <- w - a Delta w with the Armijo a (c1 = 1e-4, rho = 0.5, a0 = 1)."""
    G = oracle.curvature(params, curv)
    delta_w = power(eigh_sym(G, 0.0, "pinv" if pinv else "raise", f"curvature {curv!r}"), g, -1)
    a = 1.0 if step == "unit" else armijo_step(params, oracle, g, -delta_w)
    return -a * delta_w, state


def levenberg_marquardt(g, state, params, oracle, mu, mu_schedule, nu, scaling, curv):
    """Delta w = (G + mu D)^-1 grad E, w <- w - Delta w (003 §3.1, 2nd display; D = I as
    printed, or diag(G) [ext: Marquardt 1963]). marquardt: the step is taken only if E
    decreases strictly, then mu <- mu/nu; otherwise the update is 0 and mu <- mu nu."""
    mu_t = mu if state["t"] == 0 else float(state["mu"])
    G = oracle.curvature(params, curv)
    D = np.eye(len(g)) if scaling == "identity" else np.diag(np.diag(G))
    name = f"curvature {curv!r} + mu D (mu = {mu_t:.6e})"
    delta_w = power(eigh_sym(G + mu_t * D, 0.0, "raise", name), g, -1)
    if mu_schedule == "fixed":
        return -delta_w, freeze(mu=np.float64(mu_t), t=state["t"] + 1)
    phi, _ = along(params, oracle, -delta_w)
    accept = phi(1.0) < phi(0.0)
    mu_next = mu_t / nu if accept else mu_t * nu
    d = -delta_w if accept else np.zeros_like(g)
    return d, freeze(mu=np.float64(mu_next), t=state["t"] + 1)


def _lm_init(params) -> Mapping[str, Any]:
    return freeze(mu=np.float64(0.0), t=0)


# --- SOFO: 002 §2.4.3 -----------------------------------------------------------------------


def sofo(g, state, params, oracle, alpha, lam, curv):
    """theta <- theta - alpha (G + lam I)^-1 g (002 §2.4.3, SOFO display), lam > 0."""
    G = oracle.curvature(params, curv)
    return -alpha * power(eigh_sym(G, lam, "raise", f"curvature {curv!r}"), g, -1), state


# --- conjugate gradients: 003 §3.2 ----------------------------------------------------------


def cg_linear(g, state, params, oracle):
    """One Hestenes-Stiefel CG iteration on the quadratic model, r_k = -g_k (INVENTORY
    ``so.cg_linear``): beta = r_k^T r_k / r_{k-1}^T r_{k-1}, p_k = r_k + beta p_{k-1}
    (p_0 = r_0), a = r_k^T r_k / p_k^T A p_k with A p by ``oracle.hvp``, x <- x + a p_k.

    The residual is the fresh gradient (equal to the recurrence r - a A p on a quadratic in
    exact arithmetic). r = 0 gives a zero step; p^T A p <= 0 raises (A must be SPD)."""
    r = -g
    rr = float(r @ r)
    if state["t"] == 0:
        p = r
    else:
        rr_prev = float(state["r"] @ state["r"])
        p = r + (rr / rr_prev if rr_prev > 0 else 0.0) * state["p"]
    if rr == 0.0:
        return np.zeros_like(g), freeze(r=r, p=np.zeros_like(g), t=state["t"] + 1)
    curvature = float(p @ hessian_vector(params, oracle, p))
    if not curvature > 0:
        raise ValueError(f"cg_linear: p^T A p = {curvature:.6e} <= 0 (A must be SPD)")
    return (rr / curvature) * p, freeze(r=r, p=p, t=state["t"] + 1)


def _cg_linear_init(params) -> Mapping[str, Any]:
    n = flatten(params).size
    return freeze(r=np.zeros(n), p=np.zeros(n), t=0)


def cg_beta(g, g_prev, beta: str) -> float:
    """Fletcher-Reeves or Polak-Ribiere (003 §3.2, items 1-2); 0 when g_prev = 0."""
    denominator = float(g_prev @ g_prev)
    if denominator == 0.0:
        return 0.0
    numerator = float(g @ g) if beta == "fr" else float((g - g_prev) @ g)
    return numerator / denominator


def cg_nonlinear(g, state, params, oracle, beta, restart, line_search, c1, c2, printed=False):
    """Nonlinear CG (003 §3.2). Reading: d_t = -g_t + beta_t d_{t-1}, d_0 = -g_0 (the Text's
    d_t = +g_t + beta_t d_{t-1} is ``[as_printed]``); x <- x + a_t d_t.

    restart: every_n (beta = 0 every n = #params steps, default), none, pr_plus (beta =
    max(0, beta)), every_step (beta = 0: the printed sentence). A Reading direction with
    g^T d >= 0 is replaced by -g (a restart). Line search: exact, a = -g^T d / d^T H d
    (d^T H d by ``oracle.hvp``; exact on quadratics, a ValueError if d^T H d <= 0), or strong
    Wolfe (c1, c2) from a0 = min(1, 1/||d||) at a restart and a_{t-1} g_{t-1}^T d_{t-1} /
    g_t^T d_t otherwise (Nocedal & Wright Eq. (3.60)).
    """
    t = state["t"]
    fresh = t == 0 or restart == "every_step" or (restart == "every_n" and t % g.size == 0)
    b = 0.0 if fresh else cg_beta(g, state["g"], beta)
    if restart == "pr_plus":
        b = max(0.0, b)
    sign = 1.0 if printed else -1.0
    d = sign * g + b * (0.0 if fresh else 1.0) * state["d"]
    if not printed and b != 0.0 and float(g @ d) >= 0:
        d, fresh = -g, True
    if not np.any(d):
        a = 0.0
    elif line_search == "exact":
        curvature = float(d @ hessian_vector(params, oracle, d))
        if not curvature > 0:
            raise ValueError(f"cg_nonlinear: exact line search needs d^T H d > 0, got "
                             f"{curvature:.6e}")
        a = -float(g @ d) / curvature
    else:
        previous = float(state["alpha"]) * float(state["g"] @ state["d"])
        slope = float(g @ d)
        a0 = min(1.0, 1.0 / float(np.linalg.norm(d))) if fresh or previous == 0 else (
            previous / slope)
        a = wolfe_step(params, oracle, g, d, a0, c1, c2)
    return a * d, freeze(g=g, d=d, alpha=np.float64(a), t=t + 1)


def _cg_nonlinear_init(params) -> Mapping[str, Any]:
    n = flatten(params).size
    return freeze(g=np.zeros(n), d=np.zeros(n), alpha=np.float64(0.0), t=0)


# --- Newton-CG (Hessian-free): 003 §3.6 ------------------------------------------------------


def truncated_cg(apply_B: Callable[[np.ndarray], np.ndarray], g: np.ndarray, tol: float,
                 max_iter: int) -> np.ndarray:
    """CG on B p = -g from p = 0, stopped when ||r|| <= tol or after ``max_iter`` iterations
    (Nocedal & Wright Alg. 7.1). On d^T B d <= 0: -g at the first iteration, else the current
    iterate."""
    z = np.zeros_like(g)
    r = g.copy()
    d = -r
    for j in range(max_iter):
        Bd = apply_B(d)
        curvature = float(d @ Bd)
        if not curvature > 0:
            return -g if j == 0 else z
        rr = float(r @ r)
        a = rr / curvature
        z = z + a * d
        r = r + a * Bd
        if float(np.linalg.norm(r)) <= tol:
            break
        d = -r + (float(r @ r) / rr) * d
    return z


def newton_cg(g, state, params, oracle, lam, hvp, h, model, alpha_damp, line_search):
    """Line-search Newton-CG (003 §3.6): truncated CG on (H + lam I) p = -g with the forcing
    term ||r|| <= min(0.5, sqrt(||g||)) ||g|| and at most n iterations [ext: N&W Alg. 7.1];
    H v exact (``oracle.hvp``) or fd, (grad f(x + h v) - g)/h as printed; then the Armijo step
    (c1 = 1e-4, rho = 0.5, a0 = 1) if ``line_search``, else a = 1.

    Damping (003 §3.6): rho_k = (f(x + p) - f(x)) / (q(p) - q(0)); rho_k < 1/4: lam <-
    alpha_damp lam; rho_k > 3/4: lam <- lam / alpha_damp. alpha_damp is undefined in 003;
    Reading: 3/2 [ext: Martens 2010]. q(p) = g^T p + 1/2 p^T H p (model 'undamped', default),
    plus 1/2 lam ||p||^2 ('damped'). lam = 0 stays 0 (the ratio is then not computed)."""
    lam_t = lam if state["t"] == 0 else float(state["lam"])
    x = flatten(params)

    def H(v: np.ndarray) -> np.ndarray:
        if hvp == "exact":
            return hessian_vector(params, oracle, v)
        return (flatten(oracle.grad(unflatten(x + h * v, params))) - g) / h

    norm_g = float(np.linalg.norm(g))
    p = truncated_cg(lambda v: H(v) + lam_t * v, g, min(0.5, math.sqrt(norm_g)) * norm_g, g.size)
    a = armijo_step(params, oracle, g, p) if line_search else 1.0
    lam_next = lam_t
    if lam_t > 0 and np.any(p):
        q = float(g @ p) + 0.5 * float(p @ H(p)) + (
            0.5 * lam_t * float(p @ p) if model == "damped" else 0.0)
        phi, _ = along(params, oracle, p)
        ratio = (phi(1.0) - phi(0.0)) / q if q != 0 else 1.0
        if ratio < 0.25:
            lam_next = alpha_damp * lam_t
        elif ratio > 0.75:
            lam_next = lam_t / alpha_damp
    return a * p, freeze(lam=np.float64(lam_next), t=state["t"] + 1)


def _newton_cg_init(params) -> Mapping[str, Any]:
    return freeze(lam=np.float64(0.0), t=0)


# --- registration ---------------------------------------------------------------------------


register(
    "rule:so.newton_ls",
    newton_ls,
    "Newton with globalization (003 §3; 002 Eq. (14)): d = -K^-1 g, K = curvature curv (H); "
    "x <- x + a d, a = alpha (line_search='none') or backtracking Armijo from a0 = alpha "
    "(c1, rho; 0 if 60 trials fail). " + (nonpd_spectrum.__doc__ or ""),
    init=_no_state,
)
register("rule:so.gauss_newton", gauss_newton, gauss_newton.__doc__ or "", init=_no_state)
register(
    "rule:so.lm",
    levenberg_marquardt,
    (levenberg_marquardt.__doc__ or "") + " State: mu (the damping of the next step), t.",
    init=_lm_init,
)
register("rule:so.sofo", sofo, sofo.__doc__ or "", init=_no_state)
register(
    "rule:so.cg_linear",
    cg_linear,
    (cg_linear.__doc__ or "") + " State: r, p, t.",
    init=_cg_linear_init,
)
register(
    "rule:so.cg_nonlinear",
    cg_nonlinear,
    (cg_nonlinear.__doc__ or "") + " State: g, d, alpha (the last ones), t.",
    init=_cg_nonlinear_init,
)
register(
    "rule:so.cg_nonlinear[as_printed]",
    lambda *args, **kw: cg_nonlinear(*args, **kw, printed=True),
    "003 §3.2 Text: d_t = +g_t + beta_t d_{t-1}, d_0 = +g_0, x <- x + a_t d_t. With the exact "
    "line search a_t = -g^T d / d^T H d is negative and the iterates equal the Reading's "
    "(d_t is the Reading's direction negated); with line_search='wolfe' d_t is an ascent "
    "direction and the strong-Wolfe search (a > 0) raises ValueError. No restart safeguard.",
    init=_cg_nonlinear_init,
)
register(
    "rule:so.newton_cg",
    newton_cg,
    (newton_cg.__doc__ or "") + " State: lam (the damping of the next step), t.",
    init=_newton_cg_init,
)

from reference.rules import quasi_newton  # noqa: E402, F401  (registers so.bfgs, so.lbfgs)
