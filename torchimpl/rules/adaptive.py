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
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch

from contract import Rule, freeze
from contract.validate import at_least, at_most, boolean, choice, positive, unit
from torchimpl.rules.registry import REGISTRY
from torchimpl.tree import Tree, check_finite

# --- validation (the same messages as the reference) ---------------------------------------


_nonneg = partial(at_least, low=0.0)  # "(must be >= 0.0)", the wording of this family


def _optional_nonneg(name: str, value: Any) -> None:
    if value is not None:
        _nonneg(name, value)


def _choice(*allowed: str) -> Callable[[str, Any], Any]:
    return partial(choice, allowed=allowed)


CHECKS: Mapping[str, Callable[[str, Any], Any]] = {
    "alpha": _nonneg,
    "beta1": unit,
    "beta2": unit,
    "eps": _nonneg,
    "lam": _nonneg,
    "sqrt": boolean,
    "scale_f": positive,
    "psi": _nonneg,
    "denominator": _choice("sum_c", "sum_r"),
    "decay_rate": _nonneg,
    "beta2_decay": partial(at_most, high=0),
    "eps1": _optional_nonneg,
    "eps2": _nonneg,
    "d": partial(at_least, low=1.0),
    "rho_max": positive,
    "phi": _choice("identity", "clip"),
    "gamma_l": _nonneg,
    "gamma_u": _nonneg,
    "final_lr": positive,
    "gamma": positive,
}


def validate(hyper: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name, value in hyper.items():
        CHECKS[name](name, value)
    if "gamma_u" in hyper and hyper["gamma_u"] < hyper["gamma_l"]:
        raise ValueError(f"Invalid gamma_u: {hyper['gamma_u']} (must be >= gamma_l)")


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


# --- registration ---------------------------------------------------------------------------

ADAM = {"alpha": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

DOCS: dict[str, str] = {
    "rule:fo.adam": """Adam (002 Eq. (11) + the bias-corrected display, §2.4.2; 003 §2.6 prose;
004 Table 8 without eps). m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
theta <- theta - alpha (m/(1-b1^t)) / (D + eps) with D = sqrt(f v_hat) (sqrt=True) or D = f v_hat
(sqrt=False, the "Adam without the square root" of 002 §6.1.2), v_hat = v/(1-b2^t), f = scale_f.
Text (§6.1.2): a "scaling factor f proportional to batch size" without a formula; Reading (the
project's): f multiplies v_hat inside D, declared by the caller as f = c B. Defaults [ext:
Kingma & Ba]: alpha 1e-3, betas (0.9, 0.999), eps 1e-8; sqrt True, scale_f 1 (plain Adam).
Equals torch.optim.Adam (sqrt=True, scale_f=1).""",
    "rule:fo.adam[amsgrad]": """AMSGrad [ext: Reddi et al. 2018, Alg. 2] as torch.optim.Adam
(amsgrad=True, weight_decay=0) implements it (torch 2.13): m, v as in Adam (002 Eq. (11));
v_max <- max(v_max, v) on the raw, uncorrected v; theta <- theta - (alpha/(1-b1^t)) m /
(sqrt(v_max)/sqrt(1-b2^t) + eps). Differs from rule:fo.adam by the running maximum only: the
denominator never decreases up to the bias correction 1/sqrt(1-b2^t), taken at the current t
(torch's placement; the paper has no bias correction and keeps the maximum of v itself). No
sqrt or scale_f. Defaults: Adam's (alpha 1e-3, betas (0.9, 0.999), eps 1e-8). State m, v,
v_max, t. Equals torch.optim.Adam(amsgrad=True).""",
    "rule:fo.adamw": """AdamW, torch convention (default variant [torch]):
theta <- theta (1 - alpha lam), then the bias-corrected Adam step with eps outside the sqrt.
Src: 002 §2.4.2 (AdamW display), 004 Table 8. The printed thesis form is [thesis_printed]
(decay not multiplied by alpha, no bias correction, eps inside the sqrt). Defaults: Adam's and
lam 1e-2 (torch's). Equals torch.optim.AdamW.""",
    "rule:fo.adamw[thesis_printed]": """AdamW as printed in 002 §2.4.2 (AdamW display):
theta <- theta (1 - lam) - alpha m/sqrt(v + eps), m and v of Eq. (11) without bias correction;
the decay is not multiplied by alpha. Same names and defaults as rule:fo.adamw.""",
    "rule:fo.adamw[sassha_table8]": """AdamW of 004 Table 8 ("U(z) = z + lam").
Text: U(z) = z + lam (a scalar added to the step). Reading: U(z) = bc(z) + lam x_t, the
decoupled decay of 004 Alg. 1 line 18: x <- x - eta (m_hat/(sqrt(v_hat) + eps) + lam x).
Mathematically the same map as the torch variant (only the rounding order differs); Table 8
omits eps (eps = 0 gives the printed form). Same names and defaults as rule:fo.adamw.""",
    "rule:fo.nadam": """NAdam, default [dozat2016] [ext: Dozat 2016]:
theta <- theta - alpha (b1 m_hat + (1-b1) g/(1-b1^t)) / (sqrt(v_hat) + eps), m_hat = m/(1-b1^t),
v_hat = v/(1-b2^t). Src: 002 §2.4.2 (NaDam display, which prints neither second moment nor
bias correction: see [as_printed]). Defaults: alpha 2e-3 (torch's), betas (0.9, 0.999), eps
1e-8. Differs from torch.optim.NAdam by torch's momentum schedule mu_t: see [torch].""",
    "rule:fo.nadam[as_printed]": """NAdam as printed in 002 §2.4.2 (NaDam display):
theta <- theta - alpha (b1 m + (1-b1) g), m of Eq. (11) updated with the current g; no second
moment, no bias correction. Defaults alpha 2e-3, beta1 0.9. State m, t.""",
    "rule:fo.nadam[torch]": """NAdam of torch.optim.NAdam (weight_decay=0):
mu_t = b1 (1 - 0.96^(t psi)/2), P_t = prod_{i<=t} mu_i (state mu_product, a Python float);
theta <- theta - alpha [(1-mu_t)/(1-P_t) g + mu_{t+1}/(1-P_t mu_{t+1}) m] / (sqrt(v_hat) + eps).
psi = torch's momentum_decay (4e-3). torch.optim.NAdam keeps mu_product in the default
dtype: with torch.get_default_dtype() == float32 it is rounded to float32 (~1e-7 relative).""",
    "rule:fo.radam": """RAdam, default [liu2020] [ext: Liu et al. 2020]:
rho_inf = 2/(1-b2) - 1, rho_t = rho_inf - 2 t b2^t/(1-b2^t); if rho_t > 4:
theta <- theta - alpha phi(rho_t) m_hat/(sqrt(v_hat) + eps), phi the rectification of 002
§2.4.2; otherwise theta <- theta - alpha m_hat. Src: 002 §2.4.2 (RAdam displays, which use
uncorrected m, v and apply phi = 1 below the threshold: [as_printed]). Defaults: Adam's.
torch.optim.RAdam differs (threshold 5; eps added to sqrt(v) before the bias correction): see
[torch].""",
    "rule:fo.radam[as_printed]": """RAdam as printed in 002 §2.4.2:
theta <- theta - alpha phi(rho_t) m/(sqrt(v) + eps), m and v uncorrected, phi = 1 if rho_t <= 4.
Same names and defaults as rule:fo.radam.""",
    "rule:fo.radam[torch]": """RAdam of torch.optim.RAdam (weight_decay=0): if rho_t > 5,
theta <- theta - alpha phi(rho_t) sqrt(1-b2^t) m_hat/(sqrt(v) + eps) (eps added to the
uncorrected sqrt(v)); otherwise theta <- theta - alpha m_hat.""",
    "rule:fo.adafactor": """AdaFactor, 002 Eq. (12) and the displays above it (§2.4.2):
for a leaf G with >= 2 axes (a matrix; leading axes are batch axes), r_i <- b2 r_i + (1-b2)
sum_j G_ij^2, c_j <- b2 c_j + (1-b2) sum_i G_ij^2, V_ij = r_i c_j / S with S = sum_j c_j
(denominator="sum_c", Eq. (12)) or S = sum_k r_k ("sum_r", Table 4.1; Text there: r_i c_i /
sum_k r_k, Reading: r_i c_j / sum_k r_k); V = 0 where S = 0. Other leaves use the unfactored
v <- b2 v + (1-b2) G^2 as V. m <- b1 m + (1-b1) G (Table 4.1's first moment; b1 = 0 gives Eq.
(12)'s G); theta <- theta - alpha (m/(1-b1^t)) / (sqrt(V) + eps); V has no bias correction. With
zero initialization sum_j c_j = sum_i r_i at every step, so both denominators give the same V
up to rounding. Defaults (the project's; the source gives none): alpha 1e-2, beta1 0,
beta2 0.999, eps 1e-8.""",
    "rule:fo.adafactor[shazeer2018]": """AdaFactor of Shazeer & Stern (2018), Alg. 4-5 [ext]:
b2_t = 1 - t^(-decay_rate); R, C (or v) are EMAs with b2_t of G^2 + eps1 (row/column sums);
V = R C^T / sum(R); U = G/sqrt(V); U_hat = U / max(1, RMS(U)/d);
theta <- theta - max(eps2, RMS(theta)) min(rho_max, 1/sqrt(t)) U_hat (RMS per leaf).
Names: decay_rate 0.8, eps1 1e-30, eps2 1e-3, d 1 (>= 1), rho_max 1e-2 (the paper's); no
first moment. With eps1 = 0 and rho_max = lr it coincides with rule:fo.adafactor[torch] at
eps1 = 0, lam = 0 (torch uses means where this uses sums; the ratio is the same).""",
    "rule:fo.adafactor[torch]": """AdaFactor of torch.optim.Adafactor (torch 2.13,
_single_tensor_adafactor). Mapping: alpha = lr (1e-2), beta2_decay (-0.8; 1 - b2_t =
t^beta2_decay), eps1 = eps[0] (None = the dtype's machine epsilon), eps2 = eps[1] (1e-3),
d (1, >= 1), lam = weight_decay (0). Step t: rho_t = min(alpha, 1/sqrt(t)), a_t = max(eps2,
RMS(theta)) rho_t; for >= 2 axes r = lerp(r, mean_j G^2, 1-b2_t), c = lerp(c, mean_i G^2,
1-b2_t) (means, not sums: state r, c hold torch's row_var/col_var without their kept
singleton axes; lerp evaluated as torch.lerp), V = r c^T /
max(mean(r), eps1); else v = lerp(v, G^2, 1-b2_t) = V; U = G/sqrt(max(V, eps1^2));
theta <- theta (1 - alpha lam) - a_t U / max(1, RMS(U)/d), a_t from theta before the decay.
Differences from [shazeer2018]: lr caps rho_t (paper: 0.01), eps1 clamps V (paper: added to
G^2), decoupled weight decay.""",
    "rule:fo.adabelief": """AdaBelief, default [zhuang2020] [ext: Zhuang et al. 2020]:
m <- b1 m + (1-b1) g; s <- b2 s + (1-b2)(g - m)^2 + eps (m the updated one);
theta <- theta - alpha (m/(1-b1^t)) / (sqrt(s/(1-b2^t)) + eps). State m, v (= s), t.
Src: 002 §2.4.2 (AdaBelief display; printed form [as_printed]). Defaults: alpha 1e-3, betas
(0.9, 0.999), eps 1e-16 (the adabelief-pytorch default).""",
    "rule:fo.adabelief[as_printed]": """AdaBelief as printed in 002 §2.4.2:
m as in Adam; v <- b2 v + (1-b2)(g - m)^2 with the updated m; theta <- theta - alpha m/sqrt(v +
eps); no bias correction. Same names and defaults as rule:fo.adabelief.""",
    "rule:fo.lamb": """LAMB [ext: You et al. 2020], named in 002 §5.2.1 / Table 5.9 only:
r = m_hat/(sqrt(v_hat) + eps) + lam theta per leaf (one leaf = one layer);
theta <- theta - alpha phi(||theta||)/||r|| r (no update where r = 0), so the update of a leaf
has norm alpha phi(||theta||). phi = identity ("identity", default, as in the paper's
experiments) or clip(z, gamma_l, gamma_u) ("clip"). With phi = identity a zero leaf stays zero
(as printed). Defaults: Adam's betas, alpha 1e-3, eps 1e-6, lam 0, gamma_l 0, gamma_u 10 (the
project's choice).""",
    "rule:fo.adabound": """AdaBound, 002 §2.4.2 (AdaBound display) with the bounds of Luo et al.
(2019) [ext]: alpha_hat = clip(alpha/(sqrt(v) + eps), final_lr (1 - 1/(gamma t + 1)),
final_lr (1 + 1/(gamma t))) elementwise; theta <- theta - alpha_hat m, m and v of Eq. (11)
uncorrected as printed (Luo's code also bias-corrects and scales final_lr by lr/base_lr; not
implemented). Defaults: Adam's, final_lr 0.1, gamma 1e-3. Both bounds tend to final_lr.""",
}


def _register(rule_id: str, init, update, hyper: Mapping[str, Any]) -> None:
    REGISTRY.register(rule_id, Rule(rule_id, init, update, hyper, DOCS[rule_id]))


_register("rule:fo.adam", init_mv, adam, {**ADAM, "sqrt": True, "scale_f": 1.0})
_register("rule:fo.adam[amsgrad]", init_amsgrad, adam_amsgrad, ADAM)
_register("rule:fo.adamw", init_mv, adamw("torch"), {**ADAM, "lam": 1e-2})
_register("rule:fo.adamw[thesis_printed]", init_mv, adamw("thesis_printed"), {**ADAM, "lam": 1e-2})
_register("rule:fo.adamw[sassha_table8]", init_mv, adamw("sassha_table8"), {**ADAM, "lam": 1e-2})
_register("rule:fo.nadam", init_mv, nadam, {**ADAM, "alpha": 2e-3})
_register("rule:fo.nadam[as_printed]", init_m, nadam_as_printed, {"alpha": 2e-3, "beta1": 0.9})
_register("rule:fo.nadam[torch]", init_nadam_torch, nadam_torch, {**ADAM, "alpha": 2e-3,
                                                                   "psi": 4e-3})
_register("rule:fo.radam", init_mv, radam("liu2020"), ADAM)
_register("rule:fo.radam[as_printed]", init_mv, radam("as_printed"), ADAM)
_register("rule:fo.radam[torch]", init_mv, radam("torch"), ADAM)
_register("rule:fo.adafactor", init_adafactor, adafactor,
          {"alpha": 1e-2, "beta1": 0.0, "beta2": 0.999, "eps": 1e-8, "denominator": "sum_c"})
_register("rule:fo.adafactor[shazeer2018]", lambda p: init_adafactor(p, with_m=False),
          adafactor_shazeer,
          {"decay_rate": 0.8, "eps1": 1e-30, "eps2": 1e-3, "d": 1.0, "rho_max": 1e-2})
_register("rule:fo.adafactor[torch]", lambda p: init_adafactor(p, with_m=False), adafactor_torch,
          {"alpha": 1e-2, "beta2_decay": -0.8, "eps1": None, "eps2": 1e-3, "d": 1.0, "lam": 0.0})
_register("rule:fo.adabelief", init_mv, adabelief("zhuang2020"), {**ADAM, "eps": 1e-16})
_register("rule:fo.adabelief[as_printed]", init_mv, adabelief("as_printed"),
          {**ADAM, "eps": 1e-16})
_register("rule:fo.lamb", init_mv, lamb,
          {**ADAM, "eps": 1e-6, "lam": 0.0, "phi": "identity", "gamma_l": 0.0, "gamma_u": 10.0})
_register("rule:fo.adabound", init_mv, adabound, {**ADAM, "final_lr": 0.1, "gamma": 1e-3})
