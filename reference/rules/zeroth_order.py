"""The `rule:zo.*` update rules (INVENTORY §2.3; source 002 §2.4.1).

Every rule sees the problem only through losses: it works on the flat vector
theta = flatten(params), evaluates L(v) = oracle.loss(unflatten(v, params)), and estimates
the gradient with an `est:zo_*` estimator (`reference.estimators.zeroth_order`). The ``grads``
argument is not used (it may be None; if given it must be finite, as for every rule).

Gradient-estimator options (``rule:zo.sgd``, ``zo.sign``, ``zo.adamm``, ``zo.qn``):
``estimator`` in {"direction", "coord", "two_point"}; ``h`` the difference step (the
two-point estimator's eps); ``u_dist`` in {"gaussian", "uniform_sphere", "sqrtP_sphere",
"rademacher"} the law of the random directions u (direction) or z (two_point); ``n_dirs``
directions per step, averaged; ``central`` (coord only) central differences.

Randomness: one ``s = oracle.seed()`` per step for the random estimators, then
u_k = oracle.probe(dist, (P,), s + k), k < n_dirs; ``coord`` draws nothing (``zo.qn`` also
re-draws the previous step's probes from its stored seed first). Both layers call
seed()/probe() in this order with these shapes, so the cross-check can replay the draws.

State (flat, over the P parameters; counters as Python ints): ``t`` steps taken and
``evaluations`` the cumulative number of loss evaluations (for the cost claims), plus each
rule's own entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from contract import Rule, freeze
from contract.specs.zeroth_order import HYPER, probe_dist, validate_estimator
from contract.validate import boolean, choice, positive, unit
from reference.estimators.zeroth_order import (
    directions,
    zo_coord,
    zo_direction,
    zo_two_point,
)
from reference.rules.registry import REGISTRY
from reference.tree import check_finite, flatten, unflatten

# --- inputs (option checks: contract.specs.zeroth_order) ------------------------


def _inputs(grads, params) -> np.ndarray:
    check_finite(params, "params")
    if grads is not None:
        check_finite(grads, "grads")
    return flatten(params)


def _loss(oracle, params):
    """L on the flat vector: oracle.loss of the unflattened point."""
    return lambda v: oracle.loss(unflatten(v, params))


# --- the gradient estimate of one step --------------------------------------------------------


def estimate(theta: np.ndarray, params, oracle, hyper: Mapping[str, Any]) -> dict[str, Any]:
    """The `est:zo_*` estimate at theta selected by ``hyper`` (002 §2.4.1 displays), with a
    fresh ``oracle.seed()`` for the random estimators (``coord`` draws nothing)."""
    s = -1 if hyper["estimator"] == "coord" else oracle.seed()
    return estimate_seeded(theta, params, oracle, hyper, s)


def estimate_seeded(theta, params, oracle, hyper: Mapping[str, Any], s: int) -> dict[str, Any]:
    """`estimate` with the probes of the given seed ``s`` (ignored by ``coord``)."""
    loss, P = _loss(oracle, params), theta.size
    if hyper["estimator"] == "coord":
        return zo_coord(loss, theta, h=hyper["h"], central=hyper["central"])
    dist, n_dirs = probe_dist(hyper["u_dist"]), hyper["n_dirs"]
    if hyper["estimator"] == "direction":
        return zo_direction(loss, theta, directions(oracle.probe, dist, P, n_dirs, s), h=hyper["h"])
    # two_point: z is regenerated from the seed at each use, never stored
    return zo_two_point(
        loss, theta, lambda: directions(oracle.probe, dist, P, n_dirs, s), eps=hyper["h"]
    )


def _counters(state, evaluations: int) -> dict[str, int]:
    return {"t": state["t"] + 1, "evaluations": state["evaluations"] + evaluations}


def init_counters(params) -> Mapping[str, Any]:
    return freeze(t=0, evaluations=0)


# --- rule:zo.sgd and rule:zo.sign -------------------------------------------------------------


def sgd_update(grads, state, params, oracle, *, alpha, **est):
    """theta <- theta - alpha grad_hat L(theta) (002 §2.4.1, "employ estimated gradients")."""
    positive("alpha", alpha)
    validate_estimator(est)
    theta = _inputs(grads, params)
    out = estimate(theta, params, oracle, est)
    return unflatten(-alpha * out["grad"], params), freeze(_counters(state, out["evaluations"]))


def sign_update(grads, state, params, oracle, *, alpha, **est):
    """theta <- theta - alpha sign(grad_hat L(theta)) (002 §2.4.1, sign-based display)."""
    positive("alpha", alpha)
    validate_estimator(est)
    theta = _inputs(grads, params)
    out = estimate(theta, params, oracle, est)
    return (
        unflatten(-alpha * np.sign(out["grad"]), params),
        freeze(_counters(state, out["evaluations"])),
    )


# --- rule:zo.mezo ------------------------------------------------------------------------


def mezo_init(params) -> Mapping[str, Any]:
    """Counters, the last seed (-1 before the first step) and projected gradient q."""
    return freeze(t=0, evaluations=0, seed=-1, projected_grad=np.float64(0.0))


def mezo_update(grads, state, params, oracle, *, alpha, eps):
    """MeZO: s = oracle.seed(); q = (L(theta + eps z) - L(theta - eps z))/(2 eps);
    theta <- theta - alpha q z, with z = oracle.probe("gaussian", (P,), s) regenerated for
    each use and never stored (002 §2.4.1, MeZO display; "storing random seeds rather than full
    vectors z"). The state keeps (seed, projected_grad), from which the step can be replayed.

    MeZO perturbs and restores theta in place (theta + eps z, then - 2 eps z, then + eps z).
    A functional rule never mutates params, so the perturbed points are theta +- eps z
    computed from the unchanged theta; the rounding drift of the in-place restore
    (theta + eps z - 2 eps z + eps z != theta in floating point) is not reproduced.
    """
    positive("alpha", alpha)
    positive("eps", eps)
    theta = _inputs(grads, params)
    s = oracle.seed()
    P = theta.size
    out = zo_two_point(
        _loss(oracle, params), theta, lambda: oracle.probe("gaussian", (P,), s), eps=eps
    )
    state = {
        **_counters(state, out["evaluations"]),
        "seed": s,
        "projected_grad": np.float64(out["quotients"]),
    }
    return unflatten(-alpha * out["grad"], params), freeze(state)


# --- rule:zo.adamm (P2) --------------------------------------------------------------------


def adamm_init(params) -> Mapping[str, Any]:
    P = flatten(params).size
    return freeze(t=0, evaluations=0, m=np.zeros(P), v=np.zeros(P))


def adamm_chen2019_init(params) -> Mapping[str, Any]:
    return freeze(adamm_init(params), v_hat=np.zeros(flatten(params).size))


def _adamm(grads, state, params, oracle, hyper, amsgrad: bool):
    """ZO-AdaMM, INVENTORY Reading of 002 Eq. (6): m_t = beta1 m + (1 - beta1) g_hat,
    v_t = beta2 v + (1 - beta2) g_hat^2, theta <- theta - alpha m_t / sqrt(v_t + delta)
    (no bias correction, delta inside the square root, as printed). ``amsgrad``
    ([chen2019]): v_hat_t = max(v_hat_{t-1}, v_t) replaces v_t in the step."""
    alpha, beta1, beta2, delta = (hyper.pop(k) for k in ("alpha", "beta1", "beta2", "delta"))
    positive("alpha", alpha)
    unit("beta1", beta1)
    unit("beta2", beta2)
    positive("delta", delta)
    validate_estimator(hyper)
    theta = _inputs(grads, params)
    out = estimate(theta, params, oracle, hyper)
    g_hat = out["grad"]
    m = beta1 * state["m"] + (1.0 - beta1) * g_hat
    v = beta2 * state["v"] + (1.0 - beta2) * g_hat**2
    new = {**_counters(state, out["evaluations"]), "m": m, "v": v}
    if amsgrad:
        new["v_hat"] = np.maximum(state["v_hat"], v)
    denominator = np.sqrt((new["v_hat"] if amsgrad else v) + delta)
    return unflatten(-alpha * m / denominator, params), freeze(new)


def adamm_update(grads, state, params, oracle, **hyper):
    """ZO-AdaMM (Reading of 002 Eq. (6)); see `_adamm`."""
    return _adamm(grads, state, params, oracle, hyper, amsgrad=False)


def adamm_chen2019_update(grads, state, params, oracle, **hyper):
    """ZO-AdaMM with the AMSGrad maximum v_hat (chen2019 [ext]); see `_adamm`."""
    return _adamm(grads, state, params, oracle, hyper, amsgrad=True)


# --- rule:zo.qn (P2) -----------------------------------------------------------------------

GUARDS = ("skip", "damp")
POWELL = 0.2  # Powell's damping threshold (Nocedal & Wright, Procedure 18.2) [ext]


def qn_init(params) -> Mapping[str, Any]:
    """Counters, B_0 = I (P x P), the previous point and estimate (zeros before the first
    step) and the seed of the previous estimate's probes (-1: none, or ``coord``)."""
    P = flatten(params).size
    return freeze(t=0, evaluations=0, B=np.eye(P), theta_prev=np.zeros(P),
                  grad_prev=np.zeros(P), seed=-1)


def bfgs_inverse(B: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """B' = V^T B V + rho s s^T, rho = 1 / y^T s, V = I - rho y s^T (002 Eq. (15)); dense."""
    rho = 1.0 / float(y @ s)
    V = np.eye(s.size) - rho * np.outer(y, s)
    return V.T @ B @ V + rho * np.outer(s, s)


def powell_damped(B: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Powell's damped y [ext: Nocedal & Wright, Procedure 18.2] on the Hessian approximation
    M = B^{-1}: r = y if s^T y >= 0.2 s^T M s, else r = phi y + (1 - phi) M s with
    phi = 0.8 s^T M s / (s^T M s - s^T y), so that s^T r = 0.2 s^T M s > 0 (M s by a solve)."""
    Ms = np.linalg.solve(B, s)
    sMs, sy = float(s @ Ms), float(s @ y)
    if sy >= POWELL * sMs:
        return y
    phi = (1.0 - POWELL) * sMs / (sMs - sy)
    return phi * y + (1.0 - phi) * Ms


def qn_update(grads, state, params, oracle, *, alpha, common_random_directions,
              curvature_guard, **est):
    """ZO quasi-Newton: theta_{t+1} = theta_t - alpha B_t g_hat(theta_t) (002 §2.4.1), B_t the
    inverse-Hessian approximation updated by 002 Eq. (15) from the secant pair
    s = theta_t - theta_{t-1}, y = g_hat'(theta_t) - g_hat(theta_{t-1}) (B_0 = I; at step t the
    pair of the previous step updates B before it is used, so B_t y = s).

    ``common_random_directions`` (default True; random estimators only): g_hat'(theta_t) is a
    second estimate at theta_t with the probes of step t-1 (the stored seed, no oracle.seed()),
    so both halves of y use the same probes (on a quadratic the forward bias h/2 u^T A u
    cancels and y = (1/K) sum_k u_k u_k^T A s); then the step draws a fresh seed and its own
    estimate g_hat(theta_t), which is kept for the next pair. Oracle order at t >= 1: the
    y-estimate's losses, then oracle.seed(), then the step estimate. False: y uses the step
    estimate g_hat(theta_t) itself (fresh probes). ``coord`` draws nothing: one estimate per
    step serves both (no extra evaluations). ``evaluations`` counts every loss evaluation.

    ``curvature_guard``: "skip" leaves B unchanged when y^T s <= 0; "damp" replaces y by
    Powell's damped r (`powell_damped`, on M = B^{-1}), for which s^T r = 0.2 s^T M s > 0, and
    skips only when s = 0. Estimator options as `rule:zo.sgd`. State: t, evaluations, B (P x P),
    theta_prev, grad_prev (the step estimate at theta_prev), seed (its probes' seed)."""
    positive("alpha", alpha)
    boolean("common_random_directions", common_random_directions)
    choice("curvature_guard", curvature_guard, GUARDS)
    validate_estimator(est)
    theta = _inputs(grads, params)
    B, evaluations = state["B"], 0
    again = None
    if state["t"] > 0 and common_random_directions and est["estimator"] != "coord":
        again = estimate_seeded(theta, params, oracle, est, state["seed"])
        evaluations += again["evaluations"]
    seed = -1 if est["estimator"] == "coord" else oracle.seed()
    out = estimate_seeded(theta, params, oracle, est, seed)
    evaluations += out["evaluations"]
    g_hat = out["grad"]
    if state["t"] > 0:
        s = theta - state["theta_prev"]
        y = (g_hat if again is None else again["grad"]) - state["grad_prev"]
        if curvature_guard == "damp":
            y = powell_damped(B, s, y)
        if float(y @ s) > 0.0:
            B = bfgs_inverse(B, s, y)
    new = {**_counters(state, evaluations), "B": B, "theta_prev": theta, "grad_prev": g_hat,
           "seed": seed}
    return unflatten(-alpha * (B @ g_hat), params), freeze(new)


RULES = (
    ("rule:zo.sgd", init_counters, sgd_update),
    ("rule:zo.sign", init_counters, sign_update),
    ("rule:zo.mezo", mezo_init, mezo_update),
    ("rule:zo.adamm", adamm_init, adamm_update),
    ("rule:zo.adamm[chen2019]", adamm_chen2019_init, adamm_chen2019_update),
    ("rule:zo.qn", qn_init, qn_update),
)
for _key, _init, _update in RULES:
    _doc = _adamm.__doc__ if "adamm" in _key else _update.__doc__
    REGISTRY.register(_key, Rule(_key, _init, _update, HYPER[_key], _doc or ""))
