"""The unified-view update rules ``rule:uv.*`` (INVENTORY §2.1; source 000 §1-§2, 001 the same).

Every rule works on the flat gradient g = flatten(grads) and returns the direction d, unflattened
like ``params``, as ``updates`` (params + updates = next params). The document excludes momentum
and weight decay, so the rules keep no state (``init`` gives an empty mapping), except
``uv.gd_linesearch`` (reports the step ``eta``) and ``uv.stochastic_direction`` (``d``,
``d_xi``).

Curvature hyperparameters (every curvature-based rule): ``curv`` names the oracle curvature
K (H, F, F_emp, G, user, or diag(.) of one, which selects the diagonal fast path),
``damping`` >= 0 replaces K by K + damping I, ``singular`` in {"raise", "pinv"} is the policy
of `reference.linalg` for eigenvalues <= 0 (pinv: dropped directions get d_hat_i = 0). The
diagonal rules (``uv.diag_ngd*``, ``uv.sophia_clip``) use lam = the diagonal of ``curv``, or the
vector ``lam`` when given (it overrides ``curv``). K = Q diag(lam) Q^T, g_hat = Q^T g.

Defaults: alpha = 1 where the document gives one (Newton: "alpha in (0, 1]", the pure method at
1); the document gives no value for eps or eta, and 0.1 is this project's choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from contract import Rule, freeze
from contract.specs.unified_view import DIAGONAL_VARIANTS, LINESEARCH_TOL, SPECS, validate
from reference.linalg import Spectrum, eigenbasis_map, eigh_sym, lambda_max
from reference.linalg import matrix_power_apply as power
from reference.oracle import parse_curvature
from reference.rules.registry import REGISTRY
from reference.tree import check_finite, flatten, unflatten

# validation: `contract.specs.unified_view` (the same checks and messages in both layers)


def _matrix(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A finite float64 array of the given shape, else a ``ValueError`` naming ``name``."""
    if value is None:
        raise ValueError(f"{name} is required here: an array of shape {shape}")
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; parameters need {shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


# --- directions: pure functions of g and the spectrum of K --------------------------------


def newton(g: np.ndarray, spec: Spectrum, alpha: float) -> np.ndarray:
    """d = -alpha K^-1 g: 000 §1 "(Newton's Method)", and "(Natural Gradient Descent)" at K = F."""
    return -alpha * power(spec, g, -1)


def _newton_step(g: np.ndarray, spec: Spectrum) -> tuple[np.ndarray, float]:
    """g_tilde = K^-1 g and ||g_tilde||_K = sqrt(g_tilde^T K g_tilde) = sqrt(g^T g_tilde)."""
    g_tilde = power(spec, g, -1)
    return g_tilde, math.sqrt(max(float(g @ g_tilde), 0.0))


def ngd_normalized(g: np.ndarray, spec: Spectrum, eps: float) -> np.ndarray:
    """d = -eps K^-1 g / sqrt(g^T K^-1 g), d = 0 if g = 0: 000 §1 "(Normalized NGD)"."""
    g_tilde, norm = _newton_step(g, spec)
    return -eps * g_tilde / norm if norm > 0 else np.zeros_like(g)


def ngd_gn_normalized(g: np.ndarray, spec: Spectrum, eps: float) -> np.ndarray:
    """d = -eps K^{-1/2} g: 000 §1 "(Gradient-Norm Normalized NGD)"."""
    return -eps * power(spec, g, -0.5)


def ngd_eigen_normalized(g: np.ndarray, spec: Spectrum, eps: float, form: str) -> np.ndarray:
    """000 §1 "(Eigenbasis Normalized NGD)*" (doc: SPECS["rule:uv.ngd_eigen_normalized"])."""
    exponent = -0.5 if form == "matrix" else 0.0
    return eigenbasis_map(spec, g, lambda lam, g_hat: -eps * lam**exponent * np.sign(g_hat))


def _clip(bound: np.ndarray | float, size: np.ndarray | float) -> np.ndarray | float:
    """min(1, bound/size) for bound > 0 and size >= 0, written without dividing by size."""
    return bound / np.maximum(bound, size)


def clipped_ngd(g: np.ndarray, spec: Spectrum, alpha: float, eps: float, q: int) -> np.ndarray:
    """d = -alpha min(1, C/||g_tilde||_K^q) g_tilde, C = eps/alpha (doc: the spec)."""
    g_tilde, norm = _newton_step(g, spec)
    return -alpha * _clip(eps / alpha, norm**q) * g_tilde


def gn_clipped(g: np.ndarray, spec: Spectrum, alpha: float, eps: float) -> np.ndarray:
    """d_hat_i = -alpha min(1, C sqrt(lam_i)) g_hat_i/lam_i, d = Q d_hat (doc: the spec)."""
    C = eps / alpha
    return eigenbasis_map(
        spec, g, lambda lam, g_hat: -alpha * np.minimum(1.0, C * np.sqrt(lam)) * g_hat / lam
    )


def eigen_clipped(g: np.ndarray, spec: Spectrum, alpha: float, eps: float) -> np.ndarray:
    """d_hat_i = -alpha min(1, C sqrt(lam_i)/|g_hat_i|) g_hat_i/lam_i (doc: the spec)."""
    C = eps / alpha
    return eigenbasis_map(
        spec, g, lambda lam, g_hat: -alpha * _clip(C * np.sqrt(lam), np.abs(g_hat)) * g_hat / lam
    )


def sophia_clip(g: np.ndarray, spec: Spectrum, alpha: float, eps: float) -> np.ndarray:
    """d_i = -alpha min(1, lam_i eps/|g_i|) g_i/lam_i, K diagonal (doc: the spec)."""
    return eigenbasis_map(spec, g, lambda lam, g_: -alpha * _clip(lam * eps, np.abs(g_)) * g_ / lam)


def diag_ngd_as_printed(g: np.ndarray, spec: Spectrum, eps: float) -> np.ndarray:
    """d = -(eps/(lam^T d^2)) g/lam as its fixed point (doc: the spec)."""
    g_tilde, norm = _newton_step(g, spec)
    return -((eps / norm**2) ** (1.0 / 3.0)) * g_tilde if norm > 0 else np.zeros_like(g)


def gd(g: np.ndarray, L: float, alpha: float) -> np.ndarray:
    """d = -(alpha/L) g, i.e. eta = alpha/L: 000 §1 "(Gradient Descent)"."""
    return -(alpha / L) * g


def gd_normalized(g: np.ndarray, L: float, eps: float) -> np.ndarray:
    """d = -eps L^{-1/2} g/||g||_2, d = 0 if g = 0: 000 §1 "(Normalized Gradient Descent)"."""
    norm = float(np.linalg.norm(g))
    return -eps / math.sqrt(L) * g / norm if norm > 0 else np.zeros_like(g)


def sign_gd(g: np.ndarray, eta: float) -> np.ndarray:
    """d = -eta sign(g), sign(0) = 0 (doc: SPECS["rule:uv.sign_gd"])."""
    return -eta * np.sign(g)


# --- what the rules ask of the oracle -------------------------------------------------------


def _curvature(params, oracle, curv: str, lam, diagonal: bool) -> tuple[np.ndarray, str]:
    """K (dense) or its diagonal lam (a vector: the fast path), and its name for messages."""
    n = flatten(params).size
    if lam is not None:
        return _matrix("lam", lam, (n,)), "lam"
    K = oracle.curvature(params, curv)
    diagonal = diagonal or parse_curvature(curv)[1]
    return (np.diagonal(K).copy() if diagonal else K), f"curvature {curv!r}"


def _spectrum(params, oracle, curv, damping, singular, lam=None, diagonal=False) -> Spectrum:
    K, name = _curvature(params, oracle, curv, lam, diagonal)
    return eigh_sym(K, damping, singular, name)


def _lipschitz(params, oracle, L, L_source: str, curv: str, damping: float) -> float:
    """L as given, lambda_max(K + damping I), or the problem's constant ``L``."""
    if L_source == "given":
        return L
    if L_source == "lambda_max":
        K, name = _curvature(params, oracle, curv, None, False)
        value = lambda_max(K, damping, name)
    else:
        value = oracle.problem.constants(params).get("L")
        if value is None:
            raise ValueError(f"L_source='problem': {oracle.problem.id} has no constant 'L'")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Invalid L: {value} from L_source={L_source!r} (must be > 0)")
    return float(value)


def _exact_step(g: np.ndarray, params, oracle) -> float:
    """eta* = argmin_{eta > 0} f(theta - eta g) by Brent on the loss values.

    Searched as t = log(eta): eta > 0 holds by construction, and Brent's tolerance (relative,
    with an absolute floor of 1e-11 in scipy) becomes relative in eta at every scale. A minimiser
    located from function values is determined to about sqrt(machine eps) relative: the loss
    is flat to rounding within that distance of it. g = 0 gives eta* = 0 (no step).
    """
    if not np.any(g):
        return 0.0
    theta = flatten(params)

    def phi(t: float) -> float:
        return float(oracle.loss(unflatten(theta - math.exp(t) * g, params)))

    try:
        with np.errstate(over="ignore", invalid="ignore"):  # the bracket may overshoot to inf
            found = minimize_scalar(phi, bracket=(0.0, 1.0), method="brent", tol=LINESEARCH_TOL)
    except (RuntimeError, OverflowError, ValueError) as error:
        raise ValueError(
            f"gd_linesearch: no minimiser of f(theta - eta g) over eta > 0 ({error})"
        ) from error
    if not math.isfinite(found.fun):
        raise ValueError("gd_linesearch: f(theta - eta g) is unbounded below along -g")
    return math.exp(found.x)


def _linear_map(V, params, oracle, A, alpha, A_user, curv, damping, singular) -> np.ndarray:
    """A V for the document's A in {alpha H^-1, alpha H^-1/2, alpha I, user} (V: (n, k))."""
    if A == "user":
        return _matrix("A_user", A_user, (len(V),) * 2) @ V
    if A == "alpha_I":
        return alpha * V
    spec = _spectrum(params, oracle, curv, damping, singular)
    return alpha * power(spec, V, -1 if A == "alpha_Hinv" else -0.5)


# --- steps: (g, state, params, oracle, **hyper) -> (d, new_state) ---------------------------


def _preconditioned(direction: Callable, diagonal: bool = False) -> Callable:
    def step(g, state, params, oracle, curv, damping, singular, lam=None, **rest):
        spec = _spectrum(params, oracle, curv, damping, singular, lam, diagonal)
        return direction(g, spec, **rest), state

    return step


def _with_lipschitz(direction: Callable) -> Callable:
    def step(g, state, params, oracle, L, L_source, curv, damping, **rest):
        return direction(g, _lipschitz(params, oracle, L, L_source, curv, damping), **rest), state

    return step


def _plain(direction: Callable) -> Callable:
    def step(g, state, params, oracle, **rest):
        return direction(g, **rest), state

    return step


def _linesearch_step(g, state, params, oracle):
    eta = _exact_step(g, params, oracle)
    return -eta * g, freeze(eta=np.float64(eta))


def _stochastic_step(g_b, state, params, oracle, A, alpha, A_user, curv, damping, singular):
    full = oracle.full_grad(params)
    check_finite(full, "full_grad")
    g = flatten(full)
    columns = np.stack([g_b, g, g_b - g], axis=1)
    d_b, d, d_xi = _linear_map(columns, params, oracle, A, alpha, A_user, curv, damping, singular).T
    return d_b, freeze(d=d, d_xi=d_xi)


# --- registration ---------------------------------------------------------------------------


def _no_state(params) -> Mapping[str, Any]:
    return freeze()


def _step_size_state(params) -> Mapping[str, Any]:
    return freeze(eta=np.float64(0.0))


def _split_state(params) -> Mapping[str, Any]:
    n = flatten(params).size
    return freeze(d=np.zeros(n), d_xi=np.zeros(n))


def _register(rule_id: str, step: Callable, init=_no_state, doc: str = "") -> None:
    def update(grads, state, params, oracle, **values):
        validate(values)
        check_finite(grads, "grads")
        d, new_state = step(flatten(grads), state, params, oracle, **values)
        return unflatten(d, params), new_state

    spec = SPECS[rule_id]
    REGISTRY.register(rule_id, Rule(rule_id, init, update, spec.hyper, doc or spec.doc))


# IDs, defaults and docs: `contract.specs.unified_view`
_register("rule:uv.newton", _preconditioned(newton))
_register("rule:uv.ngd", _preconditioned(newton))
_register("rule:uv.ngd_normalized", _preconditioned(ngd_normalized))
_register("rule:uv.ngd_gn_normalized", _preconditioned(ngd_gn_normalized))
_register("rule:uv.ngd_eigen_normalized", _preconditioned(ngd_eigen_normalized))
_register("rule:uv.gd", _with_lipschitz(gd))
_LINESEARCH_DOC = (
    "d = -eta* g, eta* = argmin_{eta>0} f(theta - eta g) by Brent (scipy minimize_scalar, "
    "tol 1e-14, searched in log eta) on oracle.loss; no closed form. new_state['eta'] = eta*. "
    + (_exact_step.__doc__ or "")
)
_register("rule:uv.gd_linesearch", _linesearch_step, _step_size_state, _LINESEARCH_DOC)
_register("rule:uv.gd_normalized", _with_lipschitz(gd_normalized))
_register("rule:uv.sign_gd", _plain(sign_gd))
_DIAGONAL_DIRECTIONS = {
    "": newton,
    "[normalized]": ngd_normalized,
    "[gn_normalized]": ngd_gn_normalized,
    "[eigen_normalized]": partial(ngd_eigen_normalized, form="matrix"),
    "[as_printed]": diag_ngd_as_printed,
}
assert _DIAGONAL_DIRECTIONS.keys() == DIAGONAL_VARIANTS.keys()
for _variant, _direction in _DIAGONAL_DIRECTIONS.items():
    _register(f"rule:uv.diag_ngd{_variant}", _preconditioned(_direction, diagonal=True))
_register("rule:uv.clipped_ngd", _preconditioned(clipped_ngd))
_register("rule:uv.clipped_ngd[gn_clipped]", _preconditioned(gn_clipped))
_register("rule:uv.clipped_ngd[eigen_clipped]", _preconditioned(eigen_clipped))
_register("rule:uv.sophia_clip", _preconditioned(sophia_clip, diagonal=True))
_register("rule:uv.stochastic_direction", _stochastic_step, _split_state)
