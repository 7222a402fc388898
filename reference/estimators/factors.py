"""Diagonal Kronecker factors: min-max normalization, the diagonal EFIM, EMAs, bias correction,
AdaHessian spatial averaging and distributed aggregation (INVENTORY §3.3, §3.4).

Everything here is array-level: inputs are factor vectors, stacks of observations and shard
factors, never models. Layout (INVENTORY §5 item 3): a layer's F is stored in weight shape
(out, in + 1), F[a, b] = S'[a] H'[b] + lam, whose column-major vec is diag(H' (x) S') + lam.
Option defaults and docs: `contract.specs.factors.SPECS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
from reference.estimators.registry import REGISTRY

_FILL = {"ones": 1.0, "zeros": 0.0, "nan": np.nan}


def finite_array(name: str, x: Any, ndim: int | None = None) -> np.ndarray:
    """``x`` as a float64 array with ``ndim`` dimensions (any if None), non-empty and finite."""
    array = np.asarray(x, dtype=np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return array


def _matrix_form(m: np.ndarray, lo: float, hi: float) -> np.ndarray:
    # 002 A.0.2 Part 2: M' = D^-1 (M - m_min I) D^-1, D = diag(sqrt(m_max - m_min))
    I = np.eye(m.size)
    D_inv = np.diag(np.full(m.size, 1.0 / np.sqrt(hi - lo)))
    return np.diag(D_inv @ (np.diag(m) - lo * I) @ D_inv)


def minmax(x, *, degenerate="ones", form="vector"):
    # doc: contract.specs.factors.SPECS['est:minmax']
    option("degenerate", degenerate, DEGENERATE)
    option("form", form, FORMS)
    x = finite_array("x", x)
    lo, hi = x.min(), x.max()
    if hi == lo:
        return np.full(x.shape, _FILL[degenerate])
    if form == "matrix":
        return _matrix_form(x.ravel(), lo, hi).reshape(x.shape)
    return (x - lo) / (hi - lo)  # 002 Eq. (20), Patro & Sahu min-max


def minmax_code(x, *, eps=1e-6):
    # doc: contract.specs.factors.SPECS['est:minmax[code]']
    eps = positive("eps", eps)
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or np.any(np.isnan(x)):
        raise ValueError("x must be non-empty and free of NaN")
    x = np.where(np.isposinf(x), 1.0, np.where(np.isneginf(x), 0.0, x))
    return (x - x.min()) / (x.max() - x.min() + eps)


def normalize(x: np.ndarray, how: str, degenerate: str) -> np.ndarray:
    """A factor after the ``minmax`` option: thesis, code or none."""
    option("minmax", how, MINMAX)
    if how == "thesis":
        return minmax(x, degenerate=degenerate)
    return minmax_code(x) if how == "code" else x


def weight_shaped(H_prime: np.ndarray, S_prime: np.ndarray, lam: float) -> np.ndarray:
    """F[a, b] = S'[a] H'[b] + lam: diag(H' (x) S') + lam I in weight shape (002 Eq. (20))."""
    return np.outer(S_prime, H_prime) + lam


def efim(H_D, S_D, G=None, *, lam=1e-3, minmax="thesis", degenerate="ones"):
    # doc: contract.specs.factors.SPECS['est:efim']
    lam = check_lam(lam)
    H_prime = normalize(finite_array("H_D", H_D, 1), minmax, degenerate)
    S_prime = normalize(finite_array("S_D", S_D, 1), minmax, degenerate)
    F = weight_shaped(H_prime, S_prime, lam)
    out = {"F": F, "H_prime": H_prime, "S_prime": S_prime}
    if G is not None:
        G = finite_array("G", G)
        if G.shape != F.shape:
            raise ValueError(f"G must have the weight shape (out, in + 1) = {F.shape}, "
                             f"got {G.shape}")
        if np.any(F == 0):
            raise ValueError("F has zero entries (lam = 0 with a zero factor): G / F is undefined")
        out["G_bar"] = G / F  # 002 Eq. (21)
    return out


def _initial(x: np.ndarray, y0: Any, init: str) -> np.ndarray:
    """y_0 of the ``init`` option (``y0`` exactly with init="y0")."""
    option("init", init, INITS)
    if (init == "y0") != (y0 is not None):
        raise ValueError("y0 goes with init='y0' and only with it")
    if init == "y0":
        y0 = finite_array("y0", y0)
        if y0.shape != x.shape[1:]:
            raise ValueError(f"y0 must have the shape of one observation {x.shape[1:]}")
        return y0
    if init == "first_observation":
        return x[0].copy()
    return np.full(x.shape[1:], 1.0 if init == "ones" else 0.0)


def _ema(key: str):
    def ema(x, y0=None, *, init, k, **weights):
        a, c = ema_coefficients(key, weights)
        x = finite_array("x", x)
        if x.ndim < 1:
            raise ValueError("x must be a stack (T, ...) of T >= 1 observations")
        y = _initial(x, y0, init)
        trajectory, fires = [], refresh_steps(x.shape[0], k)
        for x_t, fire in zip(x, fires, strict=True):
            if fire:
                y = a * y + c * x_t  # 002 Eq. (19) and its code variants
            trajectory.append(y)
        return {"y": y, "trajectory": np.stack(trajectory), "n": sum(fires)}

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
    return finite_array("x", x) / (1.0 - beta**count)


def spatial_avg(D, *, b=None, input="signed"):
    # doc: contract.specs.factors.SPECS['est:spatial_avg']
    option("input", input, INPUTS)
    D = finite_array("D", D)
    b = block_size(D.shape, b)
    V = np.abs(D) if input == "abs" else D
    means = V.reshape(-1, b).mean(axis=1)  # 003 §3.5 (last display)
    return np.repeat(means, b).reshape(D.shape)


def dist_agg(H_shards, S_shards, *, lam=1e-3, order="thesis", minmax="thesis",
             degenerate="ones"):
    # doc: contract.specs.factors.SPECS['est:dist_agg']
    option("order", order, ORDERS)
    lam = check_lam(lam)
    H = finite_array("H_shards", H_shards, 2)
    S = finite_array("S_shards", S_shards, 2)
    if H.shape[0] != S.shape[0]:
        raise ValueError(f"H_shards and S_shards need the same K, got {H.shape[0]}, {S.shape[0]}")
    if order == "thesis":  # 002 Eq. (22), then Eq. (20) on the averages
        H_SUM, S_SUM = H.mean(axis=0), S.mean(axis=0)
        F = weight_shaped(normalize(H_SUM, minmax, degenerate),
                          normalize(S_SUM, minmax, degenerate), lam)
    else:
        H_SUM = np.mean([normalize(h, minmax, degenerate) for h in H], axis=0)
        S_SUM = np.mean([normalize(s, minmax, degenerate) for s in S], axis=0)
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
