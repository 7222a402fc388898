"""Diagonal Kronecker factors in torch: min-max normalization, the diagonal EFIM, EMAs, bias
correction, AdaHessian spatial averaging and distributed aggregation (INVENTORY §3.3, §3.4),
with the same IDs, arguments, options, keys and errors as the reference layer.

Layout (INVENTORY §5 item 3): a layer's F is stored in weight shape (out, in + 1),
F[a, b] = S'[a] H'[b] + lam, whose column-major vec is diag(H' (x) S') + lam. Inputs must be
floating-point tensors; results have the dtype and device of the first array argument.
Option defaults and docs: `contract.specs.factors.SPECS`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from contract import Estimator
from contract.specs.factors import (
    COUNTS,
    DEGENERATE,
    EMA_CONVENTION,
    FORMS,
    INITS,
    INPUTS,
    MINMAX,
    ORDERS,
    SPECS,
    block_size,
    check_lam,
    ema_coefficients,
    option,
    refresh_steps,
)
from contract.validate import integer, positive, unit
from torchimpl.estimators.registry import REGISTRY

_FILL = {"ones": 1.0, "zeros": 0.0, "nan": math.nan}


def tensor_of(name: str, x: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """A floating-point tensor (TypeError otherwise), moved to ``like``'s dtype and device."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    return x if like is None else x.to(dtype=like.dtype, device=like.device)


def finite_tensor(name: str, x: Any, ndim: int | None = None,
                  like: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` as a tensor with ``ndim`` dimensions (any if None), non-empty and finite."""
    x = tensor_of(name, x, like)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _matrix_form(m: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    # 002 A.0.2 Part 2: M' = D^-1 (M - m_min I) D^-1, D = diag(sqrt(m_max - m_min))
    I = torch.eye(m.numel(), dtype=m.dtype, device=m.device)
    D_inv = torch.diag(torch.ones_like(m) / torch.sqrt(hi - lo))
    return torch.diagonal(D_inv @ (torch.diag(m) - lo * I) @ D_inv)


def minmax(x, *, degenerate="ones", form="vector"):
    # doc: contract.specs.factors.SPECS['est:minmax']
    option("degenerate", degenerate, DEGENERATE)
    option("form", form, FORMS)
    x = finite_tensor("x", x)
    lo, hi = x.min(), x.max()
    if bool(hi == lo):
        return torch.full_like(x, _FILL[degenerate])
    if form == "matrix":
        return _matrix_form(x.reshape(-1), lo, hi).reshape(x.shape)
    return (x - lo) / (hi - lo)  # 002 Eq. (20), Patro & Sahu min-max


def minmax_code(x, *, eps=1e-6):
    # doc: contract.specs.factors.SPECS['est:minmax[code]']
    eps = positive("eps", eps)
    x = tensor_of("x", x)
    if x.numel() == 0 or bool(torch.isnan(x).any()):
        raise ValueError("x must be non-empty and free of NaN")
    x = torch.where(torch.isposinf(x), 1.0, torch.where(torch.isneginf(x), 0.0, x))
    return (x - x.min()) / (x.max() - x.min() + eps)


def normalize(x: torch.Tensor, how: str, degenerate: str) -> torch.Tensor:
    """A factor after the ``minmax`` option: thesis, code or none."""
    option("minmax", how, MINMAX)
    if how == "thesis":
        return minmax(x, degenerate=degenerate)
    return minmax_code(x) if how == "code" else x


def weight_shaped(H_prime: torch.Tensor, S_prime: torch.Tensor, lam: float) -> torch.Tensor:
    """F[a, b] = S'[a] H'[b] + lam: diag(H' (x) S') + lam I in weight shape (002 Eq. (20))."""
    return torch.outer(S_prime, H_prime) + lam


def efim(H_D, S_D, G=None, *, lam=1e-3, minmax="thesis", degenerate="ones"):
    # doc: contract.specs.factors.SPECS['est:efim']
    lam = check_lam(lam)
    H_D = finite_tensor("H_D", H_D, 1)
    H_prime = normalize(H_D, minmax, degenerate)
    S_prime = normalize(finite_tensor("S_D", S_D, 1, H_D), minmax, degenerate)
    F = weight_shaped(H_prime, S_prime, lam)
    out = {"F": F, "H_prime": H_prime, "S_prime": S_prime}
    if G is not None:
        G = finite_tensor("G", G, like=H_D)
        if G.shape != F.shape:
            raise ValueError(f"G must have the weight shape (out, in + 1) = {tuple(F.shape)}, "
                             f"got {tuple(G.shape)}")
        if bool((F == 0).any()):
            raise ValueError("F has zero entries (lam = 0 with a zero factor): G / F is undefined")
        out["G_bar"] = G / F  # 002 Eq. (21)
    return out


def _initial(x: torch.Tensor, y0: Any, init: str) -> torch.Tensor:
    """y_0 of the ``init`` option (``y0`` exactly with init="y0")."""
    option("init", init, INITS)
    if (init == "y0") != (y0 is not None):
        raise ValueError("y0 goes with init='y0' and only with it")
    if init == "y0":
        y0 = finite_tensor("y0", y0, like=x)
        if y0.shape != x.shape[1:]:
            raise ValueError(f"y0 must have the shape of one observation {tuple(x.shape[1:])}")
        return y0
    if init == "first_observation":
        return x[0].clone()
    return torch.full_like(x[0], 1.0 if init == "ones" else 0.0)


def _ema(key: str):
    def ema(x, y0=None, *, init, k, **weights):
        a, c = ema_coefficients(key, weights)
        x = finite_tensor("x", x)
        if x.ndim < 1:
            raise ValueError("x must be a stack (T, ...) of T >= 1 observations")
        y = _initial(x, y0, init)
        trajectory, fires = [], refresh_steps(x.shape[0], k)
        for x_t, fire in zip(x, fires, strict=True):
            if fire:
                y = a * y + c * x_t  # 002 Eq. (19) and its code variants
            trajectory.append(y)
        return {"y": y, "trajectory": torch.stack(trajectory), "n": sum(fires)}

    ema.__name__ = "ema"
    return ema


def bias_correction(x, *, beta, t=None, n=None, c="steps"):
    # doc: contract.specs.factors.SPECS['est:bias_correction']
    option("c", c, COUNTS)
    beta = unit("beta", beta)
    name, count = ("t", t) if c == "steps" else ("n", n)
    if count is None:
        raise ValueError(f"c={c!r} needs the count {name} (an integer >= 1)")
    count = integer(name, count, 1)
    return finite_tensor("x", x) / (1.0 - beta**count)


def spatial_avg(D, *, b=None, input="signed"):
    # doc: contract.specs.factors.SPECS['est:spatial_avg']
    option("input", input, INPUTS)
    D = finite_tensor("D", D)
    b = block_size(tuple(D.shape), b)
    V = D.abs() if input == "abs" else D
    means = V.reshape(-1, b).mean(dim=1)  # 003 §3.5 (last display)
    return means.repeat_interleave(b).reshape(D.shape)


def dist_agg(H_shards, S_shards, *, lam=1e-3, order="thesis", minmax="thesis",
             degenerate="ones"):
    # doc: contract.specs.factors.SPECS['est:dist_agg']
    option("order", order, ORDERS)
    lam = check_lam(lam)
    H = finite_tensor("H_shards", H_shards, 2)
    S = finite_tensor("S_shards", S_shards, 2, H)
    if H.shape[0] != S.shape[0]:
        raise ValueError(f"H_shards and S_shards need the same K, got {H.shape[0]}, {S.shape[0]}")
    if order == "thesis":  # 002 Eq. (22), then Eq. (20) on the averages
        H_SUM, S_SUM = H.mean(dim=0), S.mean(dim=0)
        F = weight_shaped(normalize(H_SUM, minmax, degenerate),
                          normalize(S_SUM, minmax, degenerate), lam)
    else:
        H_SUM = torch.stack([normalize(h, minmax, degenerate) for h in H]).mean(dim=0)
        S_SUM = torch.stack([normalize(s, minmax, degenerate) for s in S]).mean(dim=0)
        F = weight_shaped(H_SUM, S_SUM, lam)
    return {"H_SUM": H_SUM, "S_SUM": S_SUM, "F_SUM": F}


def _register(key: str, fn) -> None:
    spec = SPECS[key]
    fn.__doc__ = spec.doc
    REGISTRY.register(key, Estimator(key, fn, spec.options, spec.doc))


for _key, _fn in (
    ("est:minmax", minmax),
    ("est:minmax[code]", minmax_code),
    ("est:efim", efim),
    ("est:bias_correction", bias_correction),
    ("est:spatial_avg", spatial_avg),
    ("est:dist_agg", dist_agg),
    *((key, _ema(key)) for key in EMA_CONVENTION),
):
    _register(_key, _fn)
