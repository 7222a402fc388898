"""The unified-view update rules ``rule:uv.*`` in torch (INVENTORY §2.1; source 000 §1-§2).

The same mathematics, IDs, hyperparameter names, defaults and error messages as the NumPy
reference; any dtype and device (the working dtype is the gradient's; the curvature is cast to
it). Every rule works on the flat gradient g = flatten(grads) and returns the direction d,
unflattened like ``params``, as ``updates`` (params + updates = next params). No state (the
document excludes momentum and weight decay), except ``uv.gd_linesearch`` (``eta``) and
``uv.stochastic_direction`` (``d``, ``d_xi``).

Curvature hyperparameters: ``curv`` (H, F, F_emp, G, user, or diag(.) of one: the diagonal
fast path), ``damping`` >= 0 (K -> K + damping I), ``singular`` in {"raise", "pinv"} (the
policy of `torchimpl.linalg`; pinv gives d_hat_i = 0 on dropped directions). The diagonal rules
(``uv.diag_ngd*``, ``uv.sophia_clip``) use lam = the diagonal of ``curv`` or the vector ``lam``
(it overrides ``curv``). K = Q diag(lam) Q^T, g_hat = Q^T g.

Defaults: alpha = 1 (Newton's "alpha in (0, 1]", the pure method at 1); the document gives no
value for eps or eta, and 0.1 is this project's choice.

``uv.gd_linesearch`` runs scipy's Brent (``minimize_scalar``) on the Python float values of the
torch loss: a one-dimensional search gains nothing from tensors, and the same algorithm in both
layers keeps them comparable. Its accuracy is about sqrt(eps) of the loss's dtype (see
`_exact_step`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from scipy.optimize import minimize_scalar

from contract import Rule, freeze
from contract.specs.unified_view import DIAGONAL_VARIANTS, LINESEARCH_TOL, SPECS, validate
from torchimpl.linalg import Spectrum, eigenbasis_map, eigh_sym, lambda_max
from torchimpl.linalg import matrix_power_apply as power
from torchimpl.oracle import parse_curvature
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import check_finite, flatten, unflatten

# validation: `contract.specs.unified_view` (the same checks and messages in both layers)


def _matrix(name: str, value: Any, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A finite tensor of the given shape, dtype and device of ``like``, else a ``ValueError``."""
    if value is None:
        raise ValueError(f"{name} is required here: an array of shape {shape}")
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}; parameters need {shape}")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return tensor


# --- directions: pure functions of g and the spectrum of K --------------------------------


def newton(g: torch.Tensor, spec: Spectrum, alpha: float) -> torch.Tensor:
    """d = -alpha K^-1 g: 000 §1 "(Newton's Method)", and "(Natural Gradient Descent)" at K = F."""
    return -alpha * power(spec, g, -1)


def _newton_step(g: torch.Tensor, spec: Spectrum) -> tuple[torch.Tensor, float]:
    """g_tilde = K^-1 g and ||g_tilde||_K = sqrt(g_tilde^T K g_tilde) = sqrt(g^T g_tilde)."""
    g_tilde = power(spec, g, -1)
    return g_tilde, math.sqrt(max(float(g @ g_tilde), 0.0))


def ngd_normalized(g: torch.Tensor, spec: Spectrum, eps: float) -> torch.Tensor:
    """d = -eps K^-1 g / sqrt(g^T K^-1 g), d = 0 if g = 0: 000 §1 "(Normalized NGD)"."""
    g_tilde, norm = _newton_step(g, spec)
    return -eps * g_tilde / norm if norm > 0 else torch.zeros_like(g)


def ngd_gn_normalized(g: torch.Tensor, spec: Spectrum, eps: float) -> torch.Tensor:
    """d = -eps K^{-1/2} g: 000 §1 "(Gradient-Norm Normalized NGD)"."""
    return -eps * power(spec, g, -0.5)


def ngd_eigen_normalized(g: torch.Tensor, spec: Spectrum, eps: float, form: str) -> torch.Tensor:
    """000 §1 "(Eigenbasis Normalized NGD)*" (doc: SPECS["rule:uv.ngd_eigen_normalized"])."""
    exponent = -0.5 if form == "matrix" else 0.0
    return eigenbasis_map(spec, g, lambda lam, g_hat: -eps * lam**exponent * torch.sign(g_hat))


def _clip(bound, size):
    """min(1, bound/size) for bound > 0 and size >= 0 (tensors or floats), without dividing by
    size."""
    larger = torch.maximum(bound, size) if isinstance(size, torch.Tensor) else max(bound, size)
    return bound / larger


def clipped_ngd(g: torch.Tensor, spec: Spectrum, alpha: float, eps: float, q: int) -> torch.Tensor:
    """d = -alpha min(1, C/||g_tilde||_K^q) g_tilde, C = eps/alpha (doc: the spec)."""
    g_tilde, norm = _newton_step(g, spec)
    return -alpha * _clip(eps / alpha, norm**q) * g_tilde


def gn_clipped(g: torch.Tensor, spec: Spectrum, alpha: float, eps: float) -> torch.Tensor:
    """d_hat_i = -alpha min(1, C sqrt(lam_i)) g_hat_i/lam_i, d = Q d_hat (doc: the spec)."""
    C = eps / alpha
    return eigenbasis_map(
        spec, g, lambda lam, g_hat: -alpha * torch.clamp(C * lam.sqrt(), max=1.0) * g_hat / lam
    )


def eigen_clipped(g: torch.Tensor, spec: Spectrum, alpha: float, eps: float) -> torch.Tensor:
    """d_hat_i = -alpha min(1, C sqrt(lam_i)/|g_hat_i|) g_hat_i/lam_i (doc: the spec)."""
    C = eps / alpha
    return eigenbasis_map(
        spec, g, lambda lam, g_hat: -alpha * _clip(C * lam.sqrt(), g_hat.abs()) * g_hat / lam
    )


def sophia_clip(g: torch.Tensor, spec: Spectrum, alpha: float, eps: float) -> torch.Tensor:
    """d_i = -alpha min(1, lam_i eps/|g_i|) g_i/lam_i, K diagonal (doc: the spec)."""
    return eigenbasis_map(spec, g, lambda lam, g_: -alpha * _clip(lam * eps, g_.abs()) * g_ / lam)


def diag_ngd_as_printed(g: torch.Tensor, spec: Spectrum, eps: float) -> torch.Tensor:
    """d = -(eps/(lam^T d^2)) g/lam as its fixed point (doc: the spec)."""
    g_tilde, norm = _newton_step(g, spec)
    return -((eps / norm**2) ** (1.0 / 3.0)) * g_tilde if norm > 0 else torch.zeros_like(g)


def gd(g: torch.Tensor, L: float, alpha: float) -> torch.Tensor:
    """d = -(alpha/L) g, i.e. eta = alpha/L: 000 §1 "(Gradient Descent)"."""
    return -(alpha / L) * g


def gd_normalized(g: torch.Tensor, L: float, eps: float) -> torch.Tensor:
    """d = -eps L^{-1/2} g/||g||_2, d = 0 if g = 0: 000 §1 "(Normalized Gradient Descent)"."""
    norm = float(torch.linalg.vector_norm(g))
    return -eps / math.sqrt(L) * g / norm if norm > 0 else torch.zeros_like(g)


def sign_gd(g: torch.Tensor, eta: float) -> torch.Tensor:
    """d = -eta sign(g), sign(0) = 0 (doc: SPECS["rule:uv.sign_gd"])."""
    return -eta * torch.sign(g)


# --- what the rules ask of the oracle -------------------------------------------------------


def _curvature(params, oracle, curv: str, lam, diagonal: bool, like: torch.Tensor):
    """K (dense) or its diagonal lam (the fast path) in ``like``'s dtype, and its name."""
    n = like.numel()
    if lam is not None:
        return _matrix("lam", lam, (n,), like), "lam"
    K = oracle.curvature(params, curv).to(dtype=like.dtype, device=like.device)
    diagonal = diagonal or parse_curvature(curv)[1]
    return (torch.diagonal(K).clone() if diagonal else K), f"curvature {curv!r}"


def _spectrum(params, oracle, curv, damping, singular, like, lam=None, diagonal=False):
    K, name = _curvature(params, oracle, curv, lam, diagonal, like)
    return eigh_sym(K, damping, singular, name)


def _lipschitz(params, oracle, L, L_source: str, curv: str, damping: float, like) -> float:
    """L as given, lambda_max(K + damping I), or the problem's constant ``L``."""
    if L_source == "given":
        return L
    if L_source == "lambda_max":
        K, name = _curvature(params, oracle, curv, None, False, like)
        value = lambda_max(K, damping, name)
    else:
        value = oracle.problem.constants(params).get("L")
        if value is None:
            raise ValueError(f"L_source='problem': {oracle.problem.id} has no constant 'L'")
        value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Invalid L: {value} from L_source={L_source!r} (must be > 0)")
    return value


def _exact_step(g: torch.Tensor, params, oracle) -> float:
    """eta* = argmin_{eta > 0} f(theta - eta g) by Brent on the loss values (as floats).

    Searched as t = log(eta): eta > 0 holds by construction, and Brent's tolerance (relative,
    with an absolute floor of 1e-11 in scipy) becomes relative in eta at every scale. A minimiser
    located from function values is determined to about sqrt(machine eps) relative: the loss
    is flat to rounding within that distance of it. g = 0 gives eta* = 0 (no step).
    """
    if not bool(g.any()):
        return 0.0
    theta = flatten(params)

    def phi(t: float) -> float:
        with torch.no_grad():
            return float(oracle.loss(unflatten(theta - math.exp(t) * g, params)))

    try:
        with warnings.catch_warnings():  # scipy's arithmetic when the bracket overshoots to inf
            warnings.simplefilter("ignore", RuntimeWarning)
            found = minimize_scalar(phi, bracket=(0.0, 1.0), method="brent", tol=LINESEARCH_TOL)
    except (RuntimeError, OverflowError, ValueError) as error:
        raise ValueError(
            f"gd_linesearch: no minimiser of f(theta - eta g) over eta > 0 ({error})"
        ) from error
    if not math.isfinite(found.fun):
        raise ValueError("gd_linesearch: f(theta - eta g) is unbounded below along -g")
    return math.exp(found.x)


def _linear_map(V, params, oracle, A, alpha, A_user, curv, damping, singular) -> torch.Tensor:
    """A V for the document's A in {alpha H^-1, alpha H^-1/2, alpha I, user} (V: (n, k))."""
    if A == "user":
        return _matrix("A_user", A_user, (len(V),) * 2, V) @ V
    if A == "alpha_I":
        return alpha * V
    spec = _spectrum(params, oracle, curv, damping, singular, V[:, 0])
    return alpha * power(spec, V, -1 if A == "alpha_Hinv" else -0.5)


# --- steps: (g, state, params, oracle, **hyper) -> (d, new_state) ---------------------------


def _preconditioned(direction: Callable, diagonal: bool = False) -> Callable:
    def step(g, state, params, oracle, curv, damping, singular, lam=None, **rest):
        spec = _spectrum(params, oracle, curv, damping, singular, g, lam, diagonal)
        return direction(g, spec, **rest), state

    return step


def _with_lipschitz(direction: Callable) -> Callable:
    def step(g, state, params, oracle, L, L_source, curv, damping, **rest):
        L = _lipschitz(params, oracle, L, L_source, curv, damping, g)
        return direction(g, L, **rest), state

    return step


def _plain(direction: Callable) -> Callable:
    def step(g, state, params, oracle, **rest):
        return direction(g, **rest), state

    return step


def _linesearch_step(g, state, params, oracle):
    eta = _exact_step(g, params, oracle)
    return -eta * g, freeze(eta=torch.tensor(eta, dtype=g.dtype, device=g.device))


def _stochastic_step(g_b, state, params, oracle, A, alpha, A_user, curv, damping, singular):
    full = oracle.full_grad(params)
    check_finite(full, "full_grad")
    g = flatten(full).to(dtype=g_b.dtype, device=g_b.device)
    columns = torch.stack([g_b, g, g_b - g], dim=1)
    mapped = _linear_map(columns, params, oracle, A, alpha, A_user, curv, damping, singular)
    d_b, d, d_xi = mapped.unbind(dim=1)
    return d_b, freeze(d=d, d_xi=d_xi)


# --- registration ---------------------------------------------------------------------------


def _no_state(params) -> Mapping[str, Any]:
    return freeze()


def _step_size_state(params) -> Mapping[str, Any]:
    return freeze(eta=flatten(params).new_zeros(()))


def _split_state(params) -> Mapping[str, Any]:
    flat = flatten(params)
    return freeze(d=torch.zeros_like(flat), d_xi=torch.zeros_like(flat))


def _register(rule_id: str, step: Callable, init=_no_state, doc: str = "") -> None:
    def update(grads, state, params, oracle, **values):
        validate(values)
        check_finite(grads, "grads")
        d, new_state = step(flatten(grads), state, params, oracle, **values)
        return unflatten(d.to(flatten(params).dtype), params), new_state

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
    "d = -eta* g, eta* = argmin_{eta>0} f(theta - eta g) by Brent (scipy minimize_scalar on the "
    "float loss values, tol 1e-14, searched in log eta); no closed form. new_state['eta'] = eta*. "
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
