"""The Adam-family rules of `rule:fo.*` in torch (INVENTORY §2.2): Adam, AdamW, NAdam, RAdam,
AdaFactor, AdaBelief, the P2 Adam relatives LAMB and AdaBound, and Adam's AMSGrad variant [ext].

The same mathematics, IDs, hyperparameter names, defaults, state keys and error messages as the
NumPy reference; any dtype and device (the working dtype is the gradient's). Every rule works
leaf by leaf on the ``params`` mapping (elementwise, except AdaFactor, which factors the second
moment of every leaf with two or more axes over its last two axes, and LAMB, whose trust ratio
is one number per leaf). State: the step counter ``t`` (a Python int, the number of updates
taken) and one frozen mapping leaf -> tensor per accumulator (``m``, ``v``, ...), all zero at
``init``; scalar schedules (bias corrections, RAdam's rho_t, NAdam's mu_product) are Python
floats, computed exactly as in the reference. The first update uses t = 1 (the source's
superscript (t+1), 002 §2.4.2).

Every ``doc`` states the update, its source location, the Text/Reading where the printed
formula is not the one implemented, the defaults that are the project's choice and, for the
``[torch]`` variants, the mapping to ``torch.optim``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from contract import Rule, freeze
from contract.specs.adaptive import SPECS, validate
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import Tree, check_finite

# --- validation (`contract.specs.adaptive`: the same checks and messages in both layers) ---


def _checked(grads: Tree, hyper: Mapping[str, Any]) -> None:
    validate(hyper)
    check_finite(grads, "grads")


# --- scalar schedules (Python floats, identical in both layers) ------------------------------


def rho_inf(beta2: float) -> float:
    """rho_inf = 2/(1 - beta2) - 1: the RAdam SMA length limit (002 §2.4.2, RAdam display)."""
    return 2.0 / (1.0 - beta2) - 1.0


def rho(t: int, beta2: float) -> float:
    """rho_t = rho_inf - 2 t beta2^t/(1 - beta2^t) (002 §2.4.2); rho_1 = 1; rho_t -> rho_inf."""
    if beta2 == 0.0:
        return rho_inf(beta2)
    return rho_inf(beta2) - 2.0 * t * beta2**t / (1.0 - beta2**t)


def radam_phi(rho_t: float, rho_infinity: float, threshold: float = 4.0) -> float:
    """The rectification sqrt((rho-4)(rho-2)rho_inf/((rho_inf-4)(rho_inf-2)rho)) if rho_t >
    threshold, else 1 (002 §2.4.2; the printed threshold is 4, torch's is 5)."""
    if not rho_t > threshold:
        return 1.0
    return math.sqrt(
        (rho_t - 4.0) * (rho_t - 2.0) * rho_infinity
        / ((rho_infinity - 4.0) * (rho_infinity - 2.0) * rho_t)
    )


def nadam_mu(t: int, beta1: float, psi: float) -> float:
    """mu_t = beta1 (1 - 0.96^(t psi)/2): the momentum schedule of torch.optim.NAdam."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))


# --- array helpers --------------------------------------------------------------------------


def _zeros(tree: Tree) -> Mapping[str, torch.Tensor]:
    return freeze({k: torch.zeros_like(v) for k, v in tree.items()})


def _ema(old: torch.Tensor, new: torch.Tensor, beta: float) -> torch.Tensor:
    return beta * old + (1.0 - beta) * new


def _rms(x: torch.Tensor) -> torch.Tensor:
    """The root mean square of all entries, a 0-dim tensor (0 for an empty leaf)."""
    return torch.sqrt(torch.mean(x * x)) if x.numel() else x.new_zeros(())


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num/den with 0 where den == 0 (there num is 0 too: a zero accumulator has seen only zero
    gradients)."""
    num, den = torch.broadcast_tensors(num, den)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


def _state(t: int, **accumulators: Mapping[str, torch.Tensor]) -> Mapping[str, Any]:
    return freeze({"t": t, **{k: freeze(v) for k, v in accumulators.items()}})


def init_mv(params: Tree) -> Mapping[str, Any]:
    """t = 0, m = v = 0 leaf-wise."""
    return _state(0, m=_zeros(params), v=_zeros(params))


def _moments(grads: Tree, state, beta1: float, beta2: float, square=None):
    """t + 1, m <- beta1 m + (1-beta1) g, v <- beta2 v + (1-beta2) g^2 (002 Eq. (11)).

    ``square(g, m_new)`` replaces g^2 (AdaBelief uses (g - m)^2)."""
    m = {k: _ema(state["m"][k], g, beta1) for k, g in grads.items()}
    sq = square or (lambda g, _m: g * g)
    v = {k: _ema(state["v"][k], sq(g, m[k]), beta2) for k, g in grads.items()}
    return state["t"] + 1, m, v


# --- Adam, AdamW ----------------------------------------------------------------------------


def adam(grads, state, params, oracle, *, alpha, beta1, beta2, eps, sqrt, scale_f):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, sqrt=sqrt,
                         scale_f=scale_f))
    t, m, v = _moments(grads, state, beta1, beta2)
    bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t

    def step(m_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
        # 002 §2.4.2 (bias-corrected Adam display); sqrt=False: 002 §6.1.2 (no square root)
        v_hat = scale_f * v_ / bc2
        return -alpha * (m_ / bc1) / ((torch.sqrt(v_hat) if sqrt else v_hat) + eps)

    return {k: step(m[k], v[k]) for k in m}, _state(t, m=m, v=v)


def init_amsgrad(params: Tree) -> Mapping[str, Any]:
    """t = 0, m = v = v_max = 0 leaf-wise."""
    return _state(0, m=_zeros(params), v=_zeros(params), v_max=_zeros(params))


def adam_amsgrad(grads, state, params, oracle, *, alpha, beta1, beta2, eps):
    # [ext: Reddi et al. 2018] AMSGrad in torch.optim.Adam(amsgrad=True)'s order (torch 2.13,
    # _single_tensor_adam): the running maximum is taken of the raw v, then bias-corrected
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps))
    t, m, v = _moments(grads, state, beta1, beta2)
    step_size, bc2_sqrt = alpha / (1.0 - beta1**t), math.sqrt(1.0 - beta2**t)
    v_max = {k: torch.maximum(state["v_max"][k], v[k]) for k in v}
    out = {k: -step_size * (m[k] / (torch.sqrt(v_max[k]) / bc2_sqrt + eps)) for k in m}
    return out, _state(t, m=m, v=v, v_max=v_max)


def adamw(variant: str):
    def update(grads, state, params, oracle, *, alpha, beta1, beta2, eps, lam):
        _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, lam=lam))
        t, m, v = _moments(grads, state, beta1, beta2)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        if variant == "thesis_printed":  # 002 §2.4.2 (AdamW display), as printed
            out = {k: -lam * params[k] - alpha * m[k] / torch.sqrt(v[k] + eps) for k in m}
        elif variant == "sassha_table8":  # 004 Alg. 1 line 18: -eta (bc(D^-1 m) + lam x)
            out = {
                k: -alpha * ((m[k] / bc1) / (torch.sqrt(v[k] / bc2) + eps) + lam * params[k])
                for k in m
            }
        else:  # torch: theta (1 - alpha lam), then the Adam step
            out = {
                k: -alpha * lam * params[k]
                - alpha * (m[k] / bc1) / (torch.sqrt(v[k] / bc2) + eps)
                for k in m
            }
        return out, _state(t, m=m, v=v)

    return update


# --- NAdam ----------------------------------------------------------------------------------


def init_nadam_torch(params: Tree) -> Mapping[str, Any]:
    return freeze({**init_mv(params), "mu_product": 1.0})


def init_m(params: Tree) -> Mapping[str, Any]:
    return _state(0, m=_zeros(params))


def nadam(grads, state, params, oracle, *, alpha, beta1, beta2, eps):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps))
    t, m, v = _moments(grads, state, beta1, beta2)
    bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
    out = {  # Dozat (2016): beta1 m_hat + (1 - beta1) g/(1 - beta1^t), over sqrt(v_hat) + eps
        k: -alpha * (beta1 * m[k] / bc1 + (1.0 - beta1) * g / bc1)
        / (torch.sqrt(v[k] / bc2) + eps)
        for k, g in grads.items()
    }
    return out, _state(t, m=m, v=v)


def nadam_as_printed(grads, state, params, oracle, *, alpha, beta1):
    _checked(grads, dict(alpha=alpha, beta1=beta1))
    m = {k: _ema(state["m"][k], g, beta1) for k, g in grads.items()}
    # 002 §2.4.2 (NaDam display): theta - alpha (beta1 m^(t+1) + (1 - beta1) g^(t+1))
    out = {k: -alpha * (beta1 * m[k] + (1.0 - beta1) * g) for k, g in grads.items()}
    return out, _state(state["t"] + 1, m=m)


def nadam_torch(grads, state, params, oracle, *, alpha, beta1, beta2, eps, psi):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, psi=psi))
    t, m, v = _moments(grads, state, beta1, beta2)
    bc2 = 1.0 - beta2**t
    mu, mu_next = nadam_mu(t, beta1, psi), nadam_mu(t + 1, beta1, psi)
    mu_product = state["mu_product"] * mu
    c_g = alpha * (1.0 - mu) / (1.0 - mu_product)
    c_m = alpha * mu_next / (1.0 - mu_product * mu_next)
    out = {
        k: -(c_g * g + c_m * m[k]) / (torch.sqrt(v[k] / bc2) + eps) for k, g in grads.items()
    }
    return out, freeze({**_state(t, m=m, v=v), "mu_product": mu_product})


# --- RAdam ----------------------------------------------------------------------------------


def radam(variant: str):
    def update(grads, state, params, oracle, *, alpha, beta1, beta2, eps):
        _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps))
        t, m, v = _moments(grads, state, beta1, beta2)
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        rho_t, r_inf = rho(t, beta2), rho_inf(beta2)
        if variant == "as_printed":  # 002 §2.4.2: phi(rho) m/(sqrt(v) + eps), uncorrected
            f = radam_phi(rho_t, r_inf)
            out = {k: -alpha * f * m[k] / (torch.sqrt(v[k]) + eps) for k in m}
        elif variant == "torch":  # torch.optim.RAdam: threshold 5, eps added to sqrt(v)
            if rho_t > 5.0:
                f = radam_phi(rho_t, r_inf, 5.0) * math.sqrt(bc2)
                out = {k: -alpha * f * (m[k] / bc1) / (torch.sqrt(v[k]) + eps) for k in m}
            else:
                out = {k: -alpha * m[k] / bc1 for k in m}
        elif rho_t > 4.0:  # liu2020
            f = radam_phi(rho_t, r_inf)
            out = {k: -alpha * f * (m[k] / bc1) / (torch.sqrt(v[k] / bc2) + eps) for k in m}
        else:
            out = {k: -alpha * m[k] / bc1 for k in m}
        return out, _state(t, m=m, v=v)

    return update


# --- AdaFactor ------------------------------------------------------------------------------


def _factored(x: torch.Tensor) -> bool:
    return x.dim() >= 2


def init_adafactor(params: Tree, with_m: bool = True) -> Mapping[str, Any]:
    """t = 0; per leaf with >= 2 axes row/column accumulators r (..., m) and c (..., n), per
    other leaf an unfactored v; m (first moment) for every leaf in the Eq. (12) form."""
    r = {k: x.new_zeros(x.shape[:-1]) for k, x in params.items() if _factored(x)}
    c = {k: x.new_zeros(x.shape[:-2] + x.shape[-1:]) for k, x in params.items() if _factored(x)}
    v = {k: torch.zeros_like(x) for k, x in params.items() if not _factored(x)}
    acc = {"r": r, "c": c, "v": v}
    return _state(0, **({"m": dict(_zeros(params))} if with_m else {}), **acc)


def factored_second_moment(r: torch.Tensor, c: torch.Tensor, denominator: str) -> torch.Tensor:
    """V_ij = r_i c_j / sum_j c_j (002 Eq. (12) display, ``sum_c``) or r_i c_j / sum_k r_k
    (Table 4.1 read with index j, ``sum_r``); 0 where the sum is 0 (then r c = 0 as well)."""
    total = torch.sum(c if denominator == "sum_c" else r, dim=-1)[..., None, None]
    return _safe_div(r[..., :, None] * c[..., None, :], total)


def adafactor(grads, state, params, oracle, *, alpha, beta1, beta2, eps, denominator):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps,
                         denominator=denominator))
    t = state["t"] + 1
    m = {k: _ema(state["m"][k], g, beta1) for k, g in grads.items()}
    r, c, v, out = {}, {}, {}, {}
    for k, G in grads.items():
        if _factored(G):  # 002 §2.4.2, the r and c displays above Eq. (12)
            r[k] = _ema(state["r"][k], torch.sum(G * G, dim=-1), beta2)
            c[k] = _ema(state["c"][k], torch.sum(G * G, dim=-2), beta2)
            V = factored_second_moment(r[k], c[k], denominator)
        else:
            v[k] = V = _ema(state["v"][k], G * G, beta2)
        out[k] = -alpha * (m[k] / (1.0 - beta1**t)) / (torch.sqrt(V) + eps)  # Eq. (12)
    return out, _state(t, m=m, r=r, c=c, v=v)


def adafactor_shazeer(grads, state, params, oracle, *, decay_rate, eps1, eps2, d, rho_max):
    _checked(grads, dict(decay_rate=decay_rate, eps1=eps1, eps2=eps2, d=d, rho_max=rho_max))
    t = state["t"] + 1
    beta2_hat = 1.0 - t ** (-decay_rate)  # Shazeer & Stern (2018), Alg. 4-5
    rho_t = min(rho_max, 1.0 / math.sqrt(t))
    r, c, v, out = {}, {}, {}, {}
    for k, G in grads.items():
        G2 = G * G + eps1
        if _factored(G):
            r[k] = _ema(state["r"][k], torch.sum(G2, dim=-1), beta2_hat)
            c[k] = _ema(state["c"][k], torch.sum(G2, dim=-2), beta2_hat)
            V = factored_second_moment(r[k], c[k], "sum_r")
        else:
            v[k] = V = _ema(state["v"][k], G2, beta2_hat)
        U = _safe_div(G, torch.sqrt(V))
        scale = torch.clamp(_rms(params[k]), min=eps2) * rho_t
        out[k] = -(scale / torch.clamp(_rms(U) / d, min=1.0)) * U
    return out, _state(t, r=r, c=c, v=v)


def adafactor_torch(grads, state, params, oracle, *, alpha, beta2_decay, eps1, eps2, d, lam):
    _checked(grads, dict(alpha=alpha, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d,
                         lam=lam))
    t = state["t"] + 1
    w = float(t) ** beta2_decay  # 1 - beta2_hat_t
    rho_t = min(alpha, 1.0 / math.sqrt(t))
    r, c, v, out = {}, {}, {}, {}
    for k, G in grads.items():
        e1 = torch.finfo(G.dtype).eps if eps1 is None else eps1
        if _factored(G):  # row/col *means* of G^2; V = r c/max(mean(r), eps1)
            r[k] = torch.lerp(state["r"][k], torch.mean(G * G, dim=-1), w)
            c[k] = torch.lerp(state["c"][k], torch.mean(G * G, dim=-2), w)
            mean_r = torch.clamp(torch.mean(r[k], dim=-1), min=e1)[..., None, None]
            V = r[k][..., :, None] * c[k][..., None, :] / mean_r
        else:
            v[k] = V = torch.lerp(state["v"][k], G * G, w)
        U = G / torch.sqrt(torch.clamp(V, min=e1 * e1))
        scale = torch.clamp(_rms(params[k]), min=eps2) * rho_t
        out[k] = -alpha * lam * params[k] - (scale / torch.clamp(_rms(U) / d, min=1.0)) * U
    return out, _state(t, r=r, c=c, v=v)


# --- AdaBelief ------------------------------------------------------------------------------


def adabelief(variant: str):
    def update(grads, state, params, oracle, *, alpha, beta1, beta2, eps):
        _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps))
        t, m, v = _moments(grads, state, beta1, beta2, square=lambda g, m_: (g - m_) ** 2)
        if variant == "as_printed":  # 002 §2.4.2: m/sqrt(v + eps), no bias correction
            return {k: -alpha * m[k] / torch.sqrt(v[k] + eps) for k in m}, _state(t, m=m, v=v)
        s = {k: v[k] + eps for k in v}  # Zhuang et al. (2020): s_t gets + eps
        bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
        out = {k: -alpha * (m[k] / bc1) / (torch.sqrt(s[k] / bc2) + eps) for k in m}
        return out, _state(t, m=m, v=s)

    return update


# --- LAMB, AdaBound (P2) --------------------------------------------------------------------


def lamb(grads, state, params, oracle, *, alpha, beta1, beta2, eps, lam, phi, gamma_l,
         gamma_u):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, lam=lam, phi=phi,
                         gamma_l=gamma_l, gamma_u=gamma_u))
    t, m, v = _moments(grads, state, beta1, beta2)
    bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
    out = {}
    for k in m:  # You et al. (2020), Alg. 2: one trust ratio per leaf (layer)
        r = (m[k] / bc1) / (torch.sqrt(v[k] / bc2) + eps) + lam * params[k]
        norm_theta = torch.linalg.vector_norm(params[k])
        scale = norm_theta if phi == "identity" else torch.clamp(norm_theta, gamma_l, gamma_u)
        norm_r = torch.linalg.vector_norm(r)
        ratio = torch.where(norm_r > 0, scale / torch.where(norm_r > 0, norm_r, 1.0), 0.0)
        out[k] = -alpha * ratio * r
    return out, _state(t, m=m, v=v)


def adabound(grads, state, params, oracle, *, alpha, beta1, beta2, eps, final_lr, gamma):
    _checked(grads, dict(alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, final_lr=final_lr,
                         gamma=gamma))
    t, m, v = _moments(grads, state, beta1, beta2)
    low, high = adabound_bounds(t, final_lr, gamma)
    # 002 §2.4.2: alpha_hat = clip(alpha/(sqrt(v) + eps), low, high); theta - alpha_hat m
    out = {k: -torch.clamp(alpha / (torch.sqrt(v[k]) + eps), low, high) * m[k] for k in m}
    return out, _state(t, m=m, v=v)


def adabound_bounds(t: int, final_lr: float, gamma: float) -> tuple[float, float]:
    """Luo et al. (2019): final_lr (1 - 1/(gamma t + 1)) and final_lr (1 + 1/(gamma t))."""
    return final_lr * (1.0 - 1.0 / (gamma * t + 1.0)), final_lr * (1.0 + 1.0 / (gamma * t))


# --- registration (IDs, defaults and docs: `contract.specs.adaptive`) ------------------------


def _register(rule_id: str, init, update) -> None:
    spec = SPECS[rule_id]
    REGISTRY.register(rule_id, Rule(rule_id, init, update, spec.hyper, spec.doc))


_register("rule:fo.adam", init_mv, adam)
_register("rule:fo.adam[amsgrad]", init_amsgrad, adam_amsgrad)
_register("rule:fo.adamw", init_mv, adamw("torch"))
_register("rule:fo.adamw[thesis_printed]", init_mv, adamw("thesis_printed"))
_register("rule:fo.adamw[sassha_table8]", init_mv, adamw("sassha_table8"))
_register("rule:fo.nadam", init_mv, nadam)
_register("rule:fo.nadam[as_printed]", init_m, nadam_as_printed)
_register("rule:fo.nadam[torch]", init_nadam_torch, nadam_torch)
_register("rule:fo.radam", init_mv, radam("liu2020"))
_register("rule:fo.radam[as_printed]", init_mv, radam("as_printed"))
_register("rule:fo.radam[torch]", init_mv, radam("torch"))
_register("rule:fo.adafactor", init_adafactor, adafactor)
_register("rule:fo.adafactor[shazeer2018]", lambda p: init_adafactor(p, with_m=False),
          adafactor_shazeer)
_register("rule:fo.adafactor[torch]", lambda p: init_adafactor(p, with_m=False), adafactor_torch)
_register("rule:fo.adabelief", init_mv, adabelief("zhuang2020"))
_register("rule:fo.adabelief[as_printed]", init_mv, adabelief("as_printed"))
_register("rule:fo.lamb", init_mv, lamb)
_register("rule:fo.adabound", init_mv, adabound)
