"""The `rule:meta.*` update rules (INVENTORY §2.9): wrappers, schedules and utilities.

Written once for both layers: a wrapper only composes an inner rule of its layer with
elementwise arithmetic on its trees, and the schedules are scalar functions, so one definition
serves NumPy and torch alike. Each layer registers the rules with `register(Layer(...))`,
giving its registry and tree helpers (`reference.rules.meta`, `torchimpl.rules.meta`).

A wrapper rule runs an *inner* rule, named by its registry ID (``inner``) with its own
hyperparameters (``inner_hyper``, a mapping), and keeps the inner state nested in its own
state under ``"inner"``. The inner rule is looked up in this layer's registry at call time.
The inner state is created lazily on the wrapper's first update (``init`` receives no
hyperparameters, so it cannot know the inner rule): the wrapper state starts with
``t = 0`` and ``inner = {}``.

- ``rule:meta.lookahead`` (003 §3.7): slow weights phi, k fast steps of the inner rule, then
  phi <- phi + alpha (theta_{t,k} - phi) and the fast weights restart from phi.
  ``rule:meta.lookahead[as_printed]``: the printed fast step, the inner step evaluated at the
  previous fast iterate theta_{t,i-1} and applied from theta_{t,i} (theta_{t,0} = phi_t at i = 0).
- ``rule:meta.every_k``: a lazy-refresh wrapper. `fires` (t = 1, 1+k, 1+2k, ...) decides on
  which steps the inner rule's ``oracle.curvature``/``oracle.hvp`` are evaluated; on the other
  steps the results cached in the state are handed back (``every_k(inner="rule:uv.newton",
  k=5)`` is lazy Newton).
- ``rule:meta.weight_decay``: the four conventions of INVENTORY §2.9 / §5 item 14, and
  `convert_weight_decay` between them.
- ``rule:meta.schedules``: pure learning-rate functions (`schedule_lr`) and the wrapper that
  sets ``inner_hyper[lr_name]`` to the scheduled value before each inner step.

Counters: ``t`` counts the wrapper's updates, 1-based once the first update has run
(INVENTORY §5 item 11). Counters are Python ints, scalars Python floats, in both layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from contract.registry import Registry
from contract.rule import Rule, freeze
from contract.validate import choice, integer, nonnegative, positive, real


@dataclass(frozen=True)
class Layer:
    """What the wrappers need of a layer: its rule registry (inner rules are looked up there)
    and its tree helpers (``copy``: a fresh, detached copy of a tree of arrays)."""

    registry: Registry
    tree_map: Callable[..., Any]
    check_finite: Callable[[Any, str], None]
    copy: Callable[[Any], dict[str, Any]]


# --- validation (`contract.validate`, with this module's wording) ---------------------------

_integer = partial(integer, bound_noun=True)  # "(must be an integer >= low)"
_choice = partial(choice, require_str=True)  # a non-str option is a TypeError


def _inner(layer: Layer, inner: Any, inner_hyper: Any) -> tuple[Rule, dict[str, Any]]:
    """The inner rule from this layer's registry and its resolved hyperparameters."""
    if not isinstance(inner, str):
        raise TypeError(f"inner must be a rule ID string, got {type(inner).__name__}")
    try:
        rule = layer.registry.get(inner)
    except (KeyError, ValueError):
        raise ValueError(f"Invalid inner: {inner!r} (must be a registered rule ID)") from None
    if not isinstance(inner_hyper, Mapping):
        raise TypeError(f"inner_hyper must be a mapping, got {type(inner_hyper).__name__}")
    return rule, rule.resolve(**inner_hyper)


def _inner_state(rule: Rule, state: Mapping[str, Any], params) -> Mapping[str, Any]:
    """The nested inner state, created from ``params`` on the wrapper's first update."""
    return rule.init(params) if state["t"] == 0 else state["inner"]


def _wrapper_init(params) -> Mapping[str, Any]:
    return freeze(t=0, inner=freeze())


# --- rule:meta.lookahead ----------------------------------------------------------------------

INNER_STATE = ("keep", "reset")


def slow_weights_unrolled(phi0, fast_ends, alpha: float) -> dict[str, Any]:
    """phi_{t+1} = alpha sum_{j=0}^{t} (1-alpha)^{t-j} theta_{j,k} + (1-alpha)^{t+1} phi_0.

    The unrolled slow-weight recursion of 003 §3.7 (2nd line of the first display), for the
    fast-weight ends ``fast_ends = [theta_{0,k}, ..., theta_{t,k}]``. The print,
    alpha[theta_{t,k} + (1-alpha) theta_{t-1,k} + ... + (1-alpha)^{t-1} theta_{0,k}]
    + (1-alpha)^t phi_0, gives theta_{0,k} and phi_0 exponents one lower than the recursion
    phi_{t+1} = phi_t + alpha(theta_{t,k} - phi_t) produces (t+1 terms reach exponent t); the
    exponents here are the ones the recursion produces.
    """
    t = len(fast_ends) - 1
    out = {k: (1.0 - alpha) ** (t + 1) * v for k, v in phi0.items()}
    for j, theta in enumerate(fast_ends):
        out = {k: out[k] + alpha * (1.0 - alpha) ** (t - j) * theta[k] for k in out}
    return out


def _lookahead_init(layer: Layer, params) -> Mapping[str, Any]:
    return freeze(t=0, phi=freeze(layer.copy(params)), inner=freeze())


def _lookahead_printed_init(layer: Layer, params) -> Mapping[str, Any]:
    """As `_lookahead_init`, plus ``prev``: the fast weights the last step was taken from."""
    return freeze(t=0, phi=freeze(layer.copy(params)), prev=freeze(layer.copy(params)),
                  inner=freeze())


def _lookahead_update(layer: Layer, grads, state, params, oracle, inner, inner_hyper, k, alpha,
                      inner_state, *, printed: bool = False):
    rule, hyper = _inner(layer, inner, inner_hyper)
    k = _integer("k", k, 1)
    alpha = real("alpha", alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Invalid alpha: {alpha} (must be in [0, 1])")
    _choice("inner_state", inner_state, INNER_STATE)
    layer.check_finite(grads, "grads")
    inner_st = _inner_state(rule, state, params)
    # 003 §3.7 fast update. Text: theta_{t,i+1} = theta_{t,i} + A(L, theta_{t,i-1}, d);
    # Reading (index typo): A(L, theta_{t,i}, d), with theta_{t,0} = phi_t.
    if printed and state["t"] % k != 0:
        # The Text ([as_printed]), fast step i >= 1: the inner step is evaluated at
        # theta_{t,i-1} (state["prev"]; gradient there on the oracle's batch) and applied from
        # theta_{t,i} = params. At i = 0 theta_{t,-1} is undefined: theta_{t,0} = phi_t is used
        # (the Reading's step, below).
        previous = dict(state["prev"])
        g_prev = oracle.grad(previous)
        layer.check_finite(g_prev, "grads")
        u, inner_st = rule.step(g_prev, inner_st, previous, oracle, **hyper)
    else:
        u, inner_st = rule.step(grads, inner_st, params, oracle, **hyper)
    t = state["t"] + 1
    phi = state["phi"]
    if t % k == 0:
        # 003 §3.7 slow update: phi_{t+1} = phi_t + alpha (theta_{t,k} - phi_t), with
        # theta_{t,k} = params + u; the update to the new fast weights phi_{t+1} is written
        # (1 - alpha)(phi - params) + alpha u, free of the cancellation theta - params.
        gap = {name: phi[name] - params[name] for name in phi}
        phi = {name: phi[name] + alpha * (u[name] - gap[name]) for name in phi}
        u = {name: (1.0 - alpha) * gap[name] + alpha * u[name] for name in u}
        if inner_state == "reset":
            inner_st = rule.init(layer.copy(phi))
    if printed:  # theta_{t,i}, the evaluation point of the next fast step (if i + 1 < k)
        return u, freeze(t=t, phi=freeze(phi), prev=freeze(layer.copy(params)), inner=inner_st)
    return u, freeze(t=t, phi=freeze(phi), inner=inner_st)


# --- rule:meta.every_k ------------------------------------------------------------------------


def fires(t: int, k: int) -> bool:
    """True on the refresh steps t = 1, 1+k, 1+2k, ... (t 1-based, k >= 1; INVENTORY §2.9)."""
    t, k = _integer("t", t, 1), _integer("k", k, 1)
    return (t - 1) % k == 0


class LazyOracle:
    """The oracle an `every_k` inner rule sees: ``curvature(params, kind)`` and the i-th
    ``hvp(params, v)`` call of a step are evaluated on refresh steps and cached; on other
    steps the cached values are returned (a result never cached before is evaluated and
    cached then). Everything else is the wrapped oracle's."""

    def __init__(self, oracle, cache: Mapping[str, Any], refresh: bool) -> None:
        self._oracle = oracle
        self.cache: dict[str, Any] = {} if refresh else dict(cache)
        self._refresh = refresh
        self._hvp_calls = 0

    def _cached(self, key: str, compute):
        if self._refresh or key not in self.cache:
            value = compute()
            self.cache[key] = freeze(value) if isinstance(value, Mapping) else value
        return self.cache[key]

    def curvature(self, params, kind: str):
        return self._cached(f"curvature:{kind}", lambda: self._oracle.curvature(params, kind))

    def hvp(self, params, v):
        key = f"hvp:{self._hvp_calls}"
        self._hvp_calls += 1
        return self._cached(key, lambda: self._oracle.hvp(params, v))

    def __getattr__(self, name: str):
        return getattr(self._oracle, name)


def _every_k_init(params) -> Mapping[str, Any]:
    return freeze(t=0, n=0, inner=freeze(), cache=freeze())


def _every_k_update(layer: Layer, grads, state, params, oracle, inner, inner_hyper, k):
    rule, hyper = _inner(layer, inner, inner_hyper)
    k = _integer("k", k, 1)
    layer.check_finite(grads, "grads")
    t = state["t"] + 1
    refresh = fires(t, k)
    lazy = LazyOracle(oracle, state["cache"], refresh)
    u, inner_st = rule.step(grads, _inner_state(rule, state, params), params, lazy, **hyper)
    n = state["n"] + int(refresh)
    return u, freeze(t=t, n=n, inner=inner_st, cache=freeze(lazy.cache))


# --- rule:meta.weight_decay -------------------------------------------------------------------

CONVENTIONS = ("coupled", "decoupled_lr", "decoupled_unscaled", "sassha_code")


def decay_per_step(convention: str, wd: float, eta: float | None = None,
                   eta0: float | None = None) -> float:
    """c in theta <- theta (1 - c): the per-step decay of ``wd`` under ``convention``.

    ``decoupled_lr``: c = eta wd (torch AdamW, AdaFisherW); ``decoupled_unscaled``: c = wd
    (002 AdamW as printed); ``sassha_code``: lambda = wd/eta0, c = eta_t wd/eta0; ``coupled``
    (g <- g + wd theta): c = eta wd, exact only when the inner rule is d = -eta g.
    """
    _choice("convention", convention, CONVENTIONS)
    if convention == "decoupled_unscaled":
        return wd
    if eta is None:
        raise ValueError(f"eta is required for convention={convention!r} (must be > 0)")
    if convention == "sassha_code":
        if eta0 is None:
            raise ValueError("eta0 is required for convention='sassha_code' (must be > 0)")
        return eta * wd / eta0
    return eta * wd


def convert_weight_decay(wd: float, source: str, target: str, eta: float | None = None,
                         eta0: float | None = None) -> float:
    """The ``wd`` of convention ``target`` whose per-step decay equals that of ``wd`` under
    ``source`` (see `decay_per_step`; eta = the current learning rate, eta0 the base one)."""
    c = decay_per_step(source, wd, eta, eta0)
    unit = decay_per_step(target, 1.0, eta, eta0)
    if unit == 0:
        raise ValueError(f"convention {target!r} cannot express a decay at eta = {eta}")
    return c / unit


def _learning_rate(eta: Any, hyper: Mapping[str, Any]) -> float:
    """``eta`` if given, else the inner rule's ``alpha`` or ``eta``."""
    if eta is None:
        for name in ("alpha", "eta"):
            if hyper.get(name) is not None:
                return positive(name, hyper[name])
        raise ValueError("eta is required: the inner rule declares no 'alpha' or 'eta' (> 0)")
    return positive("eta", eta)


def _weight_decay_update(layer: Layer, grads, state, params, oracle, inner, inner_hyper, wd,
                         convention, eta, eta0):
    rule, hyper = _inner(layer, inner, inner_hyper)
    wd = nonnegative("wd", wd)
    _choice("convention", convention, CONVENTIONS)
    layer.check_finite(grads, "grads")
    inner_st = _inner_state(rule, state, params)
    if convention == "coupled":  # g <- g + wd theta, then the inner rule (preconditioning)
        coupled = layer.tree_map(lambda g, x: g + wd * x, grads, params)
        u, inner_st = rule.step(coupled, inner_st, params, oracle, **hyper)
        return u, freeze(t=state["t"] + 1, inner=inner_st)
    c = wd
    if convention != "decoupled_unscaled":
        eta_t = _learning_rate(eta, hyper)
        c = eta_t * wd if convention == "decoupled_lr" else eta_t * wd / (
            eta_t if eta0 is None else positive("eta0", eta0))
    u, inner_st = rule.step(grads, inner_st, params, oracle, **hyper)
    updates = layer.tree_map(lambda d, x: d - c * x, u, params)  # theta (1 - c) + d
    return updates, freeze(t=state["t"] + 1, inner=inner_st)


# --- rule:meta.schedules ----------------------------------------------------------------------

SCHEDULES = ("constant", "cosine", "step", "multistep", "plateau", "warmup_cosine", "inv_sqrt",
             "poly")
T_MAX_MODES = ("fixed", "own_epoch_count")
# 004 App. E: ResNet-20/32 "decayed by a factor of 0.1 at epochs [missing] and 120" (Reading:
# 80 and 120, per the official configs); WRN-28-10 "0.2 at epochs 80 and 160" (text), the
# official code 60/120/160; ResNet-50 on ImageNet 0.1 at 30 and 60.
MILESTONE_PRESETS: Mapping[str, tuple[tuple[int, ...], float]] = {
    "resnet_cifar": ((80, 120), 0.1),
    "wrn_text": ((80, 160), 0.2),
    "wrn_code": ((60, 120, 160), 0.2),
    "imagenet_resnet50": ((30, 60), 0.1),
}
PRESETS = ("custom", *MILESTONE_PRESETS)
PLATEAU_EPS = 1e-8  # torch ReduceLROnPlateau: a reduction smaller than this is skipped


def constant_lr(e: int, base: float) -> float:
    return base


def cosine_lr(e: int, base: float, T_max: int, eta_min: float = 0.0) -> float:
    """eta_min + (base - eta_min)(1 + cos(pi e/T_max))/2 (torch CosineAnnealingLR's closed
    form; e = scheduler steps taken, 0 on the first update)."""
    return eta_min + (base - eta_min) * (1.0 + math.cos(math.pi * e / T_max)) / 2.0


def step_lr(e: int, base: float, step_size: int, gamma: float) -> float:
    """base gamma^floor(e/step_size) (torch StepLR)."""
    return base * gamma ** (e // step_size)


def multistep_lr(e: int, base: float, milestones, gamma: float) -> float:
    """base gamma^(number of milestones <= e) (torch MultiStepLR)."""
    return base * gamma ** sum(1 for m in milestones if m <= e)


def warmup_cosine_lr(e: int, base: float, warmup_steps: int, T_max: int,
                     eta_min: float = 0.0) -> float:
    """Linear warm-up base (e+1)/W for e < W, then cosine from base to eta_min over the
    remaining T_max - W steps (004 App. E: ViT, 8 warm-up epochs)."""
    if e < warmup_steps:
        return base * (e + 1) / warmup_steps
    return cosine_lr(e - warmup_steps, base, T_max - warmup_steps, eta_min)


def inv_sqrt_lr(e: int, base: float) -> float:
    """eta_t = eta/sqrt(t), t = e + 1 (theory schedules)."""
    return base / math.sqrt(e + 1)


def poly_lr(e: int, base: float, T_max: int, power: float) -> float:
    """base (1 - min(e, T_max)/T_max)^power (torch PolynomialLR)."""
    return base * (1.0 - min(e, T_max) / T_max) ** power


def milestones_of(milestones_preset: str, milestones,
                  gamma: float) -> tuple[tuple[int, ...], float]:
    """(milestones, gamma): a 004 App. E preset, or the given ones for ``custom``."""
    _choice("milestones_preset", milestones_preset, PRESETS)
    if milestones_preset != "custom":
        return MILESTONE_PRESETS[milestones_preset]
    if milestones is None:
        raise ValueError("Invalid milestones: None (must be increasing integers >= 1 when "
                         "milestones_preset='custom')")
    values = tuple(_integer("milestones", m, 1) for m in milestones)
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"Invalid milestones: {milestones} (must be increasing)")
    return values, gamma


def schedule_lr(e: int, base: float, schedule: str, *, T_max: int = 100, eta_min: float = 0.0,
                step_size: int = 30, gamma: float = 0.1, milestones=None,
                milestones_preset: str = "custom", warmup_steps: int = 8,
                power: float = 1.0) -> float:
    """The learning rate after ``e`` scheduler steps, for every schedule except ``plateau``
    (whose value depends on the losses seen: see `plateau_step`)."""
    if schedule == "constant":
        return constant_lr(e, base)
    if schedule == "cosine":
        return cosine_lr(e, base, T_max, eta_min)
    if schedule == "step":
        return step_lr(e, base, step_size, gamma)
    if schedule == "multistep":
        return multistep_lr(e, base, *milestones_of(milestones_preset, milestones, gamma))
    if schedule == "warmup_cosine":
        return warmup_cosine_lr(e, base, warmup_steps, T_max, eta_min)
    if schedule == "inv_sqrt":
        return inv_sqrt_lr(e, base)
    if schedule == "poly":
        return poly_lr(e, base, T_max, power)
    raise ValueError(f"Invalid schedule: {schedule!r} (must be one of {SCHEDULES[:4]} or "
                     f"{SCHEDULES[5:]}; 'plateau' depends on losses: use plateau_step)")


def plateau_step(metric: float, lr: float, best: float, bad: int, cooldown_left: int, *,
                 factor: float = 0.5, patience: int = 3, threshold: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> tuple[float, float, int, int]:
    """One ReduceLROnPlateau step on ``metric`` (mode min, relative threshold), as torch:
    returns (lr, best, bad, cooldown_left). Defaults: factor 0.5, patience 3 (INVENTORY §2.9:
    the AdaHessian ImageNet setting)."""
    if metric < best * (1.0 - threshold):
        best, bad = metric, 0
    else:
        bad += 1
    if cooldown_left > 0:
        cooldown_left -= 1
        bad = 0
    if bad > patience:
        new_lr = max(lr * factor, min_lr)
        if lr - new_lr > PLATEAU_EPS:
            lr = new_lr
        cooldown_left, bad = cooldown, 0
    return lr, best, bad, cooldown_left


def _schedule_init(params) -> Mapping[str, Any]:
    return freeze(t=0, inner=freeze(), lr=math.nan, best=math.inf, bad=0, cooldown_left=0)


def _set_path(hyper: Mapping[str, Any], path: str, value: float) -> dict[str, Any]:
    """``hyper`` with ``hyper[a][b]... = value`` for ``path = "a.b..."`` (copies, no mutation)."""
    head, _, rest = path.partition(".")
    out = dict(hyper)
    out[head] = _set_path(hyper.get(head) or {}, rest, value) if rest else value
    return out


def _get_path(hyper: Mapping[str, Any], path: str) -> Any:
    head, _, rest = path.partition(".")
    value = hyper.get(head)
    return _get_path(value or {}, rest) if rest else value


def _schedule_update(layer: Layer, grads, state, params, oracle, inner, inner_hyper, lr_name,
                     schedule, base, steps_per_epoch, T_max, T_max_mode, epochs, eta_min,
                     step_size, gamma, milestones, milestones_preset, factor, patience,
                     threshold, cooldown, min_lr, warmup_steps, power):
    rule, hyper = _inner(layer, inner, inner_hyper)
    if not isinstance(lr_name, str) or not lr_name:
        raise TypeError("lr_name must be a non-empty string (a dotted path for nested rules)")
    _choice("schedule", schedule, SCHEDULES)
    spe = _integer("steps_per_epoch", steps_per_epoch, 1)
    _choice("T_max_mode", T_max_mode, T_MAX_MODES)
    # 002 §5.1.1: cosine annealing over each optimizer's own (WCT-matched) epoch count
    if T_max_mode == "own_epoch_count" and epochs is None:
        raise ValueError("Invalid epochs: None (must be an integer >= 1 when "
                         "T_max_mode='own_epoch_count')")
    horizon = _integer("T_max", T_max, 1) if T_max_mode == "fixed" else _integer(
        "epochs", epochs, 1)
    if base is None:
        base = _get_path(hyper, lr_name)
        if base is None:
            raise ValueError(f"Invalid base: None (the inner rule has no {lr_name!r}: give base)")
    base = positive("base", base)
    nonnegative("eta_min", eta_min)
    positive("gamma", gamma)
    _integer("step_size", step_size, 1)
    factor = real("factor", factor)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"Invalid factor: {factor} (must be in (0, 1))")
    _integer("patience", patience, 0)
    nonnegative("threshold", threshold)
    _integer("cooldown", cooldown, 0)
    nonnegative("min_lr", min_lr)
    _integer("warmup_steps", warmup_steps, 1)
    if schedule == "warmup_cosine" and warmup_steps >= horizon:
        raise ValueError(f"Invalid warmup_steps: {warmup_steps} (must be < T_max = {horizon})")
    nonnegative("power", power)
    layer.check_finite(grads, "grads")
    t = state["t"] + 1
    e = (t - 1) // spe  # scheduler steps taken before this update (one per epoch)
    lr, best, bad, cooldown_left = state["lr"], state["best"], state["bad"], state["cooldown_left"]
    if schedule == "plateau":
        if t == 1:
            lr = base
        elif (t - 1) % spe == 0:  # an epoch ended: ReduceLROnPlateau.step(loss)
            lr, best, bad, cooldown_left = plateau_step(
                float(oracle.loss(params)), lr, best, bad, cooldown_left, factor=factor,
                patience=patience, threshold=threshold, cooldown=cooldown, min_lr=min_lr)
    else:
        lr = schedule_lr(e, base, schedule, T_max=horizon, eta_min=eta_min, step_size=step_size,
                         gamma=gamma, milestones=milestones, milestones_preset=milestones_preset,
                         warmup_steps=warmup_steps, power=power)
    hyper = rule.resolve(**_set_path(hyper, lr_name, lr))
    u, inner_st = rule.step(grads, _inner_state(rule, state, params), params, oracle, **hyper)
    return u, freeze(t=t, inner=inner_st, lr=lr, best=best, bad=bad, cooldown_left=cooldown_left)


# --- registration -----------------------------------------------------------------------------

_WRAP = {"inner": "rule:fo.sgd", "inner_hyper": freeze()}


def register(layer: Layer) -> None:
    """Register the wrapper rules in ``layer.registry``, bound to ``layer``."""

    layer.registry.register("rule:meta.lookahead", Rule(
        "rule:meta.lookahead", partial(_lookahead_init, layer), partial(_lookahead_update, layer),
        {**_WRAP, "k": 5, "alpha": 0.5, "inner_state": "keep"},
        "Lookahead (003 §3.7; defaults k = 5, alpha = 0.5 [ext: Zhang et al. 2019]): the inner "
        "rule takes k fast steps from phi, then phi <- phi + alpha (theta_{t,k} - phi) and the "
        "fast weights restart from phi. The fast step reads A(L, theta_{t,i}, d) (the print has "
        "theta_{t,i-1}, an index typo). inner_state: 'keep' the inner state across "
        "synchronisations, or 'reset' it (inner.init(phi)). State: t, phi, inner.",
    ))
    layer.registry.register("rule:meta.lookahead[as_printed]", Rule(
        "rule:meta.lookahead[as_printed]", partial(_lookahead_printed_init, layer),
        partial(_lookahead_update, layer, printed=True),
        {**_WRAP, "k": 5, "alpha": 0.5, "inner_state": "keep"},
        "Lookahead with the fast step as printed in 003 §3.7 (Text): theta_{t,i+1} = theta_{t,i} "
        "+ A(L, theta_{t,i-1}, d): the inner rule's step is evaluated at the previous fast "
        "iterate theta_{t,i-1} (the rule gets oracle.grad(theta_{t,i-1}), on the oracle's batch, "
        "and params = theta_{t,i-1}) and applied from the current one theta_{t,i}. At i = 0 "
        "(the first step and each step right after a synchronisation) theta_{t,-1} is undefined "
        "and theta_{t,0} = phi_t is used, so that step is the Reading's; with k = 1 every step "
        "is such a step and the variant equals rule:meta.lookahead. Slow update, names, "
        "defaults and inner_state as rule:meta.lookahead. State: t, phi, prev (theta_{t,i}, the "
        "fast weights of the last step), inner.",
    ))
    layer.registry.register("rule:meta.every_k", Rule(
        "rule:meta.every_k", _every_k_init, partial(_every_k_update, layer), {**_WRAP, "k": 1},
        "Lazy refresh: the inner rule's oracle.curvature/oracle.hvp results are computed on the "
        "steps where fires(t, k) (t = 1, 1+k, ...) and reused from the state in between. State: "
        "t (steps), n (refreshes, = ceil(t/k)), inner, cache.",
    ))
    layer.registry.register("rule:meta.weight_decay", Rule(
        "rule:meta.weight_decay", _wrapper_init, partial(_weight_decay_update, layer),
        {**_WRAP, "wd": 0.0, "convention": "coupled", "eta": None, "eta0": None},
        "Weight decay around an inner rule (INVENTORY §2.9, §5 item 14). coupled: g <- g + wd "
        "theta, then the inner rule; decoupled_lr: theta <- theta (1 - eta wd) + d (torch AdamW); "
        "decoupled_unscaled: theta (1 - wd) + d (002 AdamW as printed); sassha_code: lambda = "
        "wd/eta0, theta (1 - eta_t wd/eta0) + d. eta: the current learning rate (None: the inner "
        "rule's alpha or eta); eta0: the base rate (None: eta, i.e. no schedule).",
    ))
    layer.registry.register("rule:meta.schedules", Rule(
        "rule:meta.schedules", _schedule_init, partial(_schedule_update, layer),
        {**_WRAP, "lr_name": "alpha", "schedule": "constant", "base": None, "steps_per_epoch": 1,
         "T_max": 100, "T_max_mode": "fixed", "epochs": None, "eta_min": 0.0, "step_size": 30,
         "gamma": 0.1, "milestones": None, "milestones_preset": "custom", "factor": 0.5,
         "patience": 3, "threshold": 1e-4, "cooldown": 0, "min_lr": 0.0, "warmup_steps": 8,
         "power": 1.0},
        "Learning-rate schedules: before each inner step, inner_hyper[lr_name] (a dotted path "
        "reaches nested wrappers) is set to lr(e), e = (t-1)//steps_per_epoch, base = base or the "
        "inner's own value. constant; cosine (T_max_mode 'fixed': T_max, 'own_epoch_count': "
        "epochs, 002 §5.1.1); step (step_size, gamma); multistep (milestones, gamma, or a 004 App. "
        "E milestones_preset); plateau (ReduceLROnPlateau on oracle.loss at each epoch end, "
        "factor 0.5, patience 3, threshold, cooldown, min_lr); warmup_cosine (warmup_steps, then "
        "cosine to T_max); inv_sqrt (base/sqrt(e+1)); poly ((1 - e/T_max)^power). State: t, "
        "inner, lr (the last rate used), best, bad, cooldown_left (plateau).",
    ))
