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
from functools import partial
from typing import Any

import torch

from contract import Rule, freeze
from contract.validate import boolean, choice, integer, nonnegative, positive, unit
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import check_finite, flatten, tree_map, unflatten

SCHEDULES = ("constant", "linear")

# --- validation (the torch layer raises the same messages) ----------------------------------


_KIND_CHECKS: Mapping[str, Callable[[str, Any], Any]] = {
    "positive": positive,
    "nonneg": nonnegative,
    "unit": unit,
    "bool": boolean,
    "count": partial(integer, low=1, type_noun="int"),
}


def _check(name: str, kind: Any, value: Any) -> None:
    """One hyperparameter against its kind: "positive", "nonneg", "unit" ([0, 1)),
    "count" (an int >= 1), "bool", or a tuple of allowed values (of the same type too)."""
    if isinstance(kind, tuple):
        choice(name, value, kind, exact_type=True)
    else:
        _KIND_CHECKS[kind](name, value)


def validate(hyper: Mapping[str, Any], kinds: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name, kind in kinds.items():
        _check(name, kind, hyper[name])
    if "gamma_min" in kinds and not hyper["gamma_min"] <= hyper["gamma_max"]:
        raise ValueError(
            f"Invalid gamma_min: {hyper['gamma_min']} (must be <= gamma_max = "
            f"{hyper['gamma_max']})"
        )


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


# --- registration ---------------------------------------------------------------------------


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


def _register(key: str, step: Callable, hyper: Mapping[str, Any], kinds: Mapping[str, Any],
              init: Callable, doc: str) -> None:
    def update(grads, state, params, oracle, **values):
        validate(values, kinds)
        check_finite(grads, "grads")
        grads, params = _as_tensors(grads, params)
        return step(grads, state, params, oracle, **values)

    REGISTRY.register(key, Rule(key, init, update, hyper, doc))


SCHEDULE = {"momentum_schedule": "constant", "beta_start": 0.5, "ramp_steps": 100}
SCHEDULE_KINDS = {"momentum_schedule": SCHEDULES, "beta_start": "unit", "ramp_steps": "count"}
SCHEDULE_DOC = (
    " momentum_schedule: 'constant' (default) or 'linear' (this project's declared ramp: the "
    "momentum coefficient of the step after t steps is beta_start + (target - beta_start) "
    "min(t/ramp_steps, 1); 003 §2.1 recommends starting close to 0.5 and increasing smoothly "
    "to 0.9-0.99 but gives no formula); beta_start = 0.5, ramp_steps = 100 are the project's."
)

_register(
    "rule:fo.sgd",
    sgd,
    {"alpha": 0.01},
    {"alpha": "positive"},
    _zeros(),
    "theta <- theta - alpha g (002 Eq. (2); Eq. (7) with a minibatch gradient g_b; 003 §3). "
    "No state. alpha = 0.01 is this project's default (the source gives none). "
    "Equals torch.optim.SGD(lr=alpha).",
)
_register(
    "rule:fo.heavy_ball",
    heavy_ball_thesis,
    {"alpha": 0.01, "beta": 0.9, **SCHEDULE},
    {"alpha": "positive", "beta": "unit", **SCHEDULE_KINDS},
    _zeros("m", counter=True),
    "Variant thesis (default): m <- beta m - g; theta <- theta + alpha m; m_0 = 0 (002 Eq. (8)-"
    "(9)); alpha = learning rate, beta = momentum in [0, 1). State m, t. Defaults alpha = 0.01 "
    "(project's), beta = 0.9. Equals torch.optim.SGD(lr=alpha, momentum=beta, dampening=0) "
    "with buf = -m." + SCHEDULE_DOC,
)
_register(
    "rule:fo.heavy_ball[survey]",
    heavy_ball_survey,
    {"alpha": 0.9, "eps": 0.01, **SCHEDULE},
    {"alpha": "unit", "eps": "positive", **SCHEDULE_KINDS},
    _zeros("v", counter=True),
    "v <- alpha v - eps g; theta <- theta + v (003 §2.1, 1st display); here alpha is the "
    "momentum in [0, 1) (default 0.9) and eps the learning rate (default 0.01, project's). "
    "State v, t. Equals torch.optim.SGD(lr=eps, momentum=alpha, dampening=0) with v = -eps buf "
    "for a constant eps; under a constant gradient v -> -eps g/(1 - alpha)."
    + SCHEDULE_DOC.replace("momentum coefficient", "momentum coefficient alpha"),
)
_register(
    "rule:fo.heavy_ball[ema]",
    heavy_ball_ema,
    {"eta": 0.01, "beta": 0.9},
    {"eta": "positive", "beta": "unit"},
    _zeros("m"),
    "m <- beta m + (1 - beta) g; theta <- theta - eta m (004 App. C Table 8, 'SGD with "
    "momentum', EMA form). State m. Defaults eta = 0.01 (project's), beta = 0.9. Equals "
    "torch.optim.SGD(lr=eta (1 - beta), momentum=beta, dampening=0), m = (1 - beta) buf.",
)
_NESTEROV_THESIS_DOC = (
    "m <- beta m - grad L(theta + alpha beta m); theta <- theta + alpha m (002 §2.4.2, NAG "
    "paragraph). Text: 'theta^{t+1} = theta^t + m^{t+1}' (no alpha in the position update, "
    "although the look-ahead uses the Eq. (9) scaling alpha beta m); Reading (implemented by "
    "thesis_eq9): theta <- theta + alpha m, consistent with Eq. (9). The gradient is "
    "oracle.grad at the look-ahead point (the grads argument is only checked for finiteness). "
    "alpha = learning rate (0.01, project's), beta = momentum in [0, 1) (0.9). State m. With a "
    "constant alpha it equals [sutskever] with eps = alpha and v = alpha m."
)
_register(
    "rule:fo.nesterov",
    nesterov_thesis,
    {"alpha": 0.01, "beta": 0.9},
    {"alpha": "positive", "beta": "unit"},
    _zeros("m"),
    "Variant thesis_eq9 (default). " + _NESTEROV_THESIS_DOC,
)
_register(
    "rule:fo.nesterov[as_printed]",
    lambda *a, **h: nesterov_thesis(*a, **h, printed=True),
    {"alpha": 0.01, "beta": 0.9},
    {"alpha": "positive", "beta": "unit"},
    _zeros("m"),
    "The printed text of 002 §2.4.2 (NAG paragraph): m <- beta m - grad L(theta + alpha beta m);"
    " theta <- theta + m (alpha only in the look-ahead). Defaults as rule:fo.nesterov. State m.",
)
_register(
    "rule:fo.nesterov[sutskever]",
    nesterov_sutskever,
    {"alpha": 0.9, "eps": 0.01},
    {"alpha": "unit", "eps": "positive"},
    _zeros("v"),
    "v <- alpha v - eps grad L(theta + alpha v); theta <- theta + v (003 §2.2 display, the "
    "minibatch mean gradient taken as oracle.grad at the look-ahead point); alpha = momentum in "
    "[0, 1) (0.9), eps = learning rate (0.01, project's). State v. Equals "
    "torch.optim.SGD(lr=eps, momentum=alpha, dampening=0, nesterov=True) on the look-ahead "
    "points phi = theta + alpha v, with buf = -v/eps.",
)
_LION_CHEN = (
    "c = beta1 m + (1 - beta1) g; theta <- theta - eta (sign(c) + lam theta); m <- beta2 m + "
    "(1 - beta2) g, sign(0) = 0 ([ext: Chen et al. 2023] Alg. 1; the source 002 §2.4.2 prints "
    "another form, variant [as_printed]). Defaults eta = 1e-4, beta1 = 0.9, beta2 = 0.99 "
    "(Chen et al.), lam = 0 (project's). State m."
)
_register(
    "rule:fo.lion",
    lion_chen2023,
    {"eta": 1e-4, "beta1": 0.9, "beta2": 0.99, "lam": 0.0},
    {"eta": "positive", "beta1": "unit", "beta2": "unit", "lam": "nonneg"},
    _zeros("m"),
    "Variant chen2023 (default). " + _LION_CHEN,
)
_register(
    "rule:fo.lion[as_printed]",
    lion_as_printed,
    {"alpha": 0.01, "beta": 0.9, "P": None},
    {"alpha": "positive", "beta": "unit"},
    _zeros("m"),
    "m <- beta m - (1 - beta) P . g; theta <- theta + alpha m (002 §2.4.2 Lion display 'and "
    "applies Eq. (9)'); P is the diagonal preconditioner, unspecified in the source: None = "
    "ones (project's default), else a mapping like params. Defaults alpha = 0.01 (project's), "
    "beta = 0.9. State m. With P = 1, m = -m_ema of rule:fo.heavy_ball[ema] (same beta) and "
    "the updates coincide for alpha = eta.",
)
_register(
    "rule:fo.win",
    win,
    {"alpha": 0.01, "beta": 0.9, "lam": 5e-4},
    {"alpha": "positive", "beta": "unit", "lam": "nonneg"},
    _zeros("m"),
    "m <- beta m - (1 - beta)(g + lam theta); theta <- theta + alpha m (002 §2.4.2 WIN display;"
    " the position update 'is similar as Eq. (9)'). Defaults alpha = 0.01, beta = 0.9 "
    "(project's), lam = 5e-4 (project's: the weight decay of 002 §5.1 for CIFAR). State m.",
)
_register(
    "rule:fo.adagrad",
    adagrad,
    {"alpha": 0.01, "eps": 1e-10},
    {"alpha": "positive", "eps": "positive"},
    _zeros("G"),
    "G <- G + g^2 (G = sum_{tau <= t} g_tau^2); theta <- theta - alpha g/(sqrt(G) + eps) (002 "
    "§2.4.2 Adagrad display; 003 §2.4 prose). Defaults alpha = 0.01 (project's; torch's lr), "
    "eps = 1e-10 (torch's). State G. Equals torch.optim.Adagrad(lr=alpha, eps=eps, "
    "lr_decay=0, initial_accumulator_value=0).",
)
_register(
    "rule:fo.rmsprop",
    rmsprop,
    {"alpha": 0.01, "beta": 0.99, "eps": 1e-8, "eps_inside": False},
    {"alpha": "positive", "beta": "unit", "eps": "positive", "eps_inside": "bool"},
    _zeros("v"),
    "v <- beta v + (1 - beta) g^2; theta <- theta - alpha g/(sqrt(v) + eps) (002 §2.4.2 RMSProp "
    "display; 003 §2.5 prose); eps_inside=True gives alpha g/sqrt(v + eps) (textbook form). "
    "Defaults alpha = 0.01, beta = 0.99, eps = 1e-8 (torch's). State v. Equals "
    "torch.optim.RMSprop(lr=alpha, alpha=beta, eps=eps, momentum=0, centered=False).",
)
_register(
    "rule:fo.langevin",
    langevin,
    {"alpha": 0.01, "T_eff": 1e-3, "noise_cov": None},
    {"alpha": "positive", "T_eff": "nonneg"},
    _zeros(),
    "theta <- theta - alpha g + sqrt(2 alpha T_eff) xi (002 §2.2.2, Xie et al. display), xi ~ "
    "N(0, I) isotropic as printed: xi = oracle.probe('gaussian', (P,), oracle.seed()) over the "
    "flat parameter vector (one seed per step, drawn whatever T_eff). noise_cov (None = "
    "isotropic) = a symmetric positive definite P x P Sigma gives the noise sqrt(2 alpha T_eff)"
    " L xi with L = cholesky(Sigma). Defaults alpha = 0.01, T_eff = 1e-3 (project's). No state.",
)
_register(
    "rule:fo.lars",
    lars,
    {"eta": 0.1, "eta_trust": 1e-3, "beta_wd": 0.0, "mu": 0.9},
    {"eta": "positive", "eta_trust": "positive", "beta_wd": "nonneg", "mu": "unit"},
    _zeros("v"),
    "Per leaf (one leaf = one layer): eta_l = eta_trust ||w||/(||grad w|| + beta_wd ||w||); "
    "v <- mu v + eta eta_l (grad w + beta_wd w); w <- w - v ([ext: You et al. 2017] Alg. 1; 002 "
    "§5.2.1 names LARS only). eta_l = 1 where ||w|| = 0 or ||grad w|| = 0 (project's "
    "convention). Defaults eta = 0.1, eta_trust = 1e-3, beta_wd = 0, mu = 0.9 (project's, "
    "after You et al.). State v.",
)
_register(
    "rule:fo.delta_bar_delta",
    delta_bar_delta,
    {"eps": 0.01, "kappa": 0.05, "psi": 0.95, "gamma_min": 0.1, "gamma_max": 10.0},
    {"eps": "positive", "kappa": "nonneg", "psi": "positive", "gamma_min": "positive",
     "gamma_max": "positive"},
    _dbd_init,
    "Variant hinton (the only one implemented; jacobs1988 and jacobs_velocity are not). "
    "Per-weight gains gamma, starting at 1: if g_i(t) g_i(t-1) > 0 then gamma_i += kappa, else "
    "gamma_i *= psi; clip gamma to [gamma_min, gamma_max]; Delta w_i = -eps gamma_i g_i (003 "
    "§2.3, prose only; [ext: Hinton's lecture 6] constants). Declared: kappa = 0.05, psi = 0.95 "
    "(ext), eps = 0.01, gamma_min = 0.1, gamma_max = 10 (project's), gains unchanged at the "
    "first step (no previous gradient). State gamma, g_prev, t.",
)
