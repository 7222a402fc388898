"""Shared helpers of the survey audits (INVENTORY §4.3, source 003_77bdf9f2a211a398.txt).

- `iteration_spectrum`: the per-mode iteration matrices of GD, heavy ball (003 §2.1 display)
  and Nesterov/Sutskever (003 §2.2 display) on a quadratic mode of curvature lambda, written as
  functions of h = step * lambda and the momentum, and their spectral radii (est:iteration_
  spectrum). The machinery test checks them against iterating the registered rules.
- `run`: iterate a registered reference rule on a problem (flat parameters), stopping at a
  tolerance or at divergence; the rule is looked up at call time, so a missing rule is a
  reason string (`missing`) and never an import error.
- small problems built here from registered ones (a quadratic from its matrix, an affine
  reparameterisation x = A y + b of any problem).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import reference
from reference.oracle import Oracle
from reference.problems.base import Problem
from reference.tree import flatten, unflatten
from verify.audits.framework import Evaluation, predicate, undefined

EPS = float(np.finfo(np.float64).eps)
ROUNDOFF = 16.0  # as in unified_view_onestep: exact relations allow ROUNDOFF * n * kappa * eps
DIVERGED = 1e12  # a run whose loss or iterate norm exceeds this (or is non-finite) diverged


# --- registry guards -----------------------------------------------------------------------


def missing(*ids: str) -> str | None:
    """``"not implemented yet: <id>"`` for the first unregistered rule/problem, else None."""
    for key in ids:
        registry = reference.problems.REGISTRY if key.startswith("prob:") else (
            reference.rules.REGISTRY)
        if key not in registry:
            return f"not implemented yet: {key}"
    return None


def needs(*ids: str):
    """Decorator for a relation check: undefined with the reason while an ID is missing."""

    def wrap(fn: Callable[[Mapping[str, Any]], Evaluation]):
        def check(ctx: Mapping[str, Any]) -> Evaluation:
            reason = missing(*ids)
            return undefined(reason) if reason else fn(ctx)

        return check

    return wrap


def reason_or(value: Any, fn: Callable[[Any], Evaluation]) -> Evaluation:
    """``fn(value)``, or undefined when ``value`` is a reason string."""
    return undefined(value) if isinstance(value, str) else fn(value)


def at_most(value: float, bound: float, **detail: Any) -> Evaluation:
    """``value <= bound`` with the slack ``bound - value`` as margin (nan: undefined)."""
    if not math.isfinite(value) or not math.isfinite(bound):
        if math.isinf(value) and value > 0 and math.isfinite(bound):
            return predicate(False, -math.inf, value=value, bound=bound, **detail)
        return undefined("non-finite value", value=value, bound=bound, **detail)
    return predicate(value <= bound, bound - value, value=value, bound=bound, **detail)


# --- iteration spectra (003 §2.1 and §2.2 displays, per eigenmode) --------------------------


def iteration_matrix(kind: str, h, beta) -> np.ndarray:
    """The 2x2 matrix M with (x_{k+1}, x_k) = M (x_k, x_{k-1}) on the mode x of curvature
    lambda, h = step * lambda (arrays broadcast; result shape (..., 2, 2)).

    heavy ball (003 §2.1: v <- beta v - eps g, x <- x + v): x_{k+1} = (1 + beta - h) x_k -
    beta x_{k-1}. Nesterov/Sutskever (003 §2.2: v <- beta v - eps g(x + beta v)):
    x_{k+1} = (1 + beta)(1 - h) x_k - beta (1 - h) x_{k-1}. GD: beta = 0 of heavy ball.
    """
    h, beta = np.broadcast_arrays(np.asarray(h, float), np.asarray(beta, float))
    if kind == "gd":
        a, b = 1.0 - h, np.zeros_like(h)
    elif kind == "hb":
        a, b = 1.0 + beta - h, -beta
    elif kind == "nag":
        a, b = (1.0 + beta) * (1.0 - h), -beta * (1.0 - h)
    else:
        raise ValueError(f"kind must be gd, hb or nag, got {kind!r}")
    M = np.zeros(h.shape + (2, 2))
    M[..., 0, 0], M[..., 0, 1], M[..., 1, 0] = a, b, 1.0
    return M


def spectral_radius(kind: str, h, beta) -> np.ndarray:
    """max |root| of z^2 - a z - b (the eigenvalues of `iteration_matrix`), vectorised."""
    M = iteration_matrix(kind, h, beta)
    a, b = M[..., 0, 0], M[..., 0, 1]
    root = np.sqrt((a * a + 4.0 * b).astype(complex))
    return np.maximum(np.abs((a + root) / 2), np.abs((a - root) / 2))


def modal_trajectory(kind: str, h, beta, x0, steps: int) -> np.ndarray:
    """x_0..x_steps of each mode from rest (x_{-1} = x_0: zero initial velocity)."""
    M = iteration_matrix(kind, h, beta)
    x0 = np.broadcast_to(np.asarray(x0, float), M.shape[:-2])
    state = np.stack([x0, x0], axis=-1)
    out = [x0.copy()]
    for _ in range(steps):
        state = np.einsum("...ij,...j->...i", M, state)
        out.append(state[..., 0].copy())
    return np.stack(out)


def steps_to(errors: np.ndarray, tol: float) -> float:
    """The first index k with errors[k] <= tol * errors[0] (inf if never)."""
    hit = np.flatnonzero(errors <= tol * errors[0])
    return float(hit[0]) if hit.size else math.inf


# --- problems -------------------------------------------------------------------------------


def quadratic(A: np.ndarray, x_star: np.ndarray | None = None, c: float = 0.0):
    """prob:quad with Hessian A (f = 1/2 (x - x*)^T A (x - x*) + c)."""
    x_star = np.zeros(len(A)) if x_star is None else x_star
    return reference.problems.get("prob:quad")(A=A, x_star=x_star, c=c, halved=True)


def spectrum_matrix(lam: np.ndarray, seed: int, rotated: bool = True) -> np.ndarray:
    """Q diag(lam) Q^T with Q Haar-random (seeded) or I."""
    n = len(lam)
    if not rotated:
        return np.diag(lam)
    Q, R = np.linalg.qr(np.random.default_rng([seed, 7]).standard_normal((n, n)))
    Q = Q * np.sign(np.diag(R))
    return (Q * lam) @ Q.T


def family_spectrum(family: str, n: int, kappa: float, seed: int) -> np.ndarray:
    """lam in [1/kappa, 1]: two_point {mu, L}, uniform, or geometric (always both ends)."""
    mu = 1.0 / kappa
    if n == 1:
        return np.array([1.0])
    if family == "two_point":
        return np.where(np.arange(n) < n // 2, mu, 1.0)
    if family == "uniform":
        inner = np.random.default_rng([seed, 3]).uniform(mu, 1.0, n - 2)
        return np.sort(np.concatenate([[mu], inner, [1.0]]))
    return np.geomspace(mu, 1.0, n)


class Affine(Problem):
    """g(y) = f(A y + b) over flat y (003 §3 "independent of linear changes in coordinates")."""

    def __init__(self, base: Problem, template: Mapping[str, np.ndarray], A: np.ndarray,
                 b: np.ndarray) -> None:
        self.base, self.template, self.A, self.b = base, template, A, b
        self.id = f"affine({base.id})"

    def x_of(self, params) -> dict[str, np.ndarray]:
        return unflatten(self.A @ params["y"] + self.b, self.template)

    def loss(self, params, batch=None) -> float:
        return self.base.loss(self.x_of(params), batch)

    def grad(self, params, batch=None):
        return {"y": self.A.T @ flatten(self.base.grad(self.x_of(params), batch))}

    def hessian(self, params, batch=None):
        return self.A.T @ self.base.hessian(self.x_of(params), batch) @ self.A

    def hvp(self, params, v, batch=None):
        w = unflatten(self.A @ v["y"], self.template)
        return {"y": self.A.T @ flatten(self.base.hvp(self.x_of(params), w, batch))}


# --- running a rule --------------------------------------------------------------------------


def run(rule_id: str, problem: Problem, x0: Mapping[str, np.ndarray], steps: int,
        grads: Callable[[int, dict], dict] | None = None,
        hyper_at: Callable[[int], Mapping[str, Any]] | None = None,
        stop: Callable[[dict], bool] | None = None, project=None,
        oracle: Oracle | None = None, **hyper) -> dict[str, Any] | str:
    """Iterate ``rule_id`` for up to ``steps`` steps from ``x0``.

    ``grads(t, params)`` overrides the gradient fed to the rule (default: the oracle's);
    ``hyper_at(t)`` adds per-step hyperparameters (schedules); ``stop(params)`` ends the run;
    ``project`` maps each iterate (online projection). Returns the iterates (flat, (k+1, P)),
    the final state, ``diverged`` and ``steps``; or the reason string if the rule is missing.
    """
    reason = missing(rule_id)
    if reason:
        return reason
    rule = reference.rules.get(rule_id)
    oracle = Oracle(problem) if oracle is None else oracle
    params = {k: np.asarray(v, float) for k, v in x0.items()}
    state = rule.init(params)
    xs, diverged, error = [flatten(params)], False, None
    for t in range(steps):
        try:
            g = grads(t, params) if grads is not None else oracle.grad(params)
            extra = dict(hyper_at(t)) if hyper_at is not None else {}
            updates, state = rule.step(g, state, params, oracle, **{**hyper, **extra})
        except (ValueError, FloatingPointError, ArithmeticError, np.linalg.LinAlgError) as e:
            error = f"{type(e).__name__}: {e}"
            diverged = not np.all(np.isfinite(xs[-1]))
            break
        params = {k: params[k] + np.asarray(updates[k]) for k in params}
        if project is not None:
            params = project(params)
        flat = flatten(params)
        xs.append(flat)
        if not np.all(np.isfinite(flat)) or np.linalg.norm(flat) > DIVERGED:
            diverged = True
            break
        if stop is not None and stop(params):
            break
    return {"xs": np.array(xs), "state": state, "diverged": diverged, "steps": len(xs) - 1,
            "params": params, "error": error}


def as_flat(value) -> np.ndarray:
    """A state entry as a flat vector (a mapping like params is flattened)."""
    if isinstance(value, Mapping):
        return flatten(value)
    return np.asarray(value, dtype=float).ravel()


def first_below(values: np.ndarray, bound: float) -> float:
    """The first index where values <= bound (inf if never)."""
    hit = np.flatnonzero(np.asarray(values) <= bound)
    return float(hit[0]) if hit.size else math.inf


def losses(problem: Problem, xs: np.ndarray, template) -> np.ndarray:
    return np.array([problem.loss(unflatten(x, template)) for x in xs])


def minimise(problem: Problem, x0: Mapping[str, np.ndarray], steps: int = 60) -> tuple:
    """(x*, f*) of a smooth convex problem by damped Newton steps with backtracking (the
    comparator of rate claims; computed here, independently of the audited rules)."""
    x = flatten(x0)
    f = problem.loss(x0)
    for _ in range(steps):
        p = unflatten(x, x0)
        g = flatten(problem.grad(p))
        if np.linalg.norm(g) < 1e-13:
            break
        H = problem.hessian(p) + 1e-12 * np.eye(len(x))
        d = -np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        while t > 1e-12:
            cand = problem.loss(unflatten(x + t * d, x0))
            if cand <= f + 1e-4 * t * (g @ d):
                break
            t *= 0.5
        x, f = x + t * d, problem.loss(unflatten(x + t * d, x0))
    return x, f


def median_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    import time

    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cached(fn):
    """Cache a context builder on its (primitive, hashable-valued) case."""
    store: dict = {}

    def build(case: Mapping[str, Any]):
        key = tuple(sorted((k, repr(v)) for k, v in case.items()))
        if key not in store:
            store[key] = fn(case)
        return store[key]

    build.__wrapped__ = fn
    build.__doc__ = fn.__doc__
    return build
