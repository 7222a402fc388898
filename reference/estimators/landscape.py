"""Loss-landscape pictures `est:landscape*` (INVENTORY §3.8; 002 App. B, 004 Fig. 2).

(a) ``landscape``: the printed grid X, Y over the range of the per-epoch weights W and the
surface Z = griddata(W, L, (X, Y), method) (SciPy, as printed); ``landscape_pca``: the PCA of
the data to 2-D that the experiment starts from; (b) ``landscape_slice2d``: the exact slice of
the loss over two weight entries on a grid; (c) ``landscape_slice1d``: the slice along the top
Hessian eigenvector. Option defaults, docs and option checks: `contract.specs.landscape`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.interpolate import griddata
from scipy.spatial import QhullError

from contract import Estimator
from contract.specs.estimators import SYM_RTOL
from contract.specs.landscape import (
    SPECS,
    check_batched,
    check_chunk,
    check_direction_inputs,
    check_method,
    check_n_components,
    check_n_grid,
    check_n_points,
    check_s_range,
    selection,
)
from reference.estimators.registry import REGISTRY

# --- inputs -----------------------------------------------------------------------------------


def _array(name: str, value: Any, ndim: int) -> np.ndarray:
    """A finite float64 array with ``ndim`` dimensions."""
    x = np.asarray(value, dtype=np.float64)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _trajectory(W: Any, L: Any) -> tuple[np.ndarray, np.ndarray]:
    W, L = _array("W", W, 2), _array("L", L, 1)
    if W.shape[1] != 2 or W.shape[0] == 0:
        raise ValueError(f"W must have shape (E, 2) with E >= 1, got {W.shape}")
    if L.shape != (W.shape[0],):
        raise ValueError(f"L must have shape ({W.shape[0]},) (one loss per row of W), "
                         f"got {L.shape}")
    return W, L


def _grid_axes(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape:
        raise ValueError(f"X and Y must have the same shape, got {X.shape} and {Y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("X and Y contain non-finite values (NaN or inf)")
    return X, Y


def _callable(loss: Any) -> None:
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")


def _sign_fixed(V: np.ndarray) -> np.ndarray:
    """Each row of V times the sign of its largest-magnitude entry (the first on a tie)."""
    rows = np.arange(V.shape[0])
    s = np.sign(V[rows, np.argmax(np.abs(V), axis=1)])
    return V * np.where(s == 0, 1.0, s)[:, None]


# --- evaluation on a set of points ------------------------------------------------------------


def _scan(loss: Callable, make: Callable, coords: np.ndarray, batched: bool,
          chunk: int) -> np.ndarray:
    """loss(make(c)) for each row c of coords (N, k): one call per row, or with ``batched``
    one call per block of ``chunk`` rows (make gets the (B, k) block, loss returns (B,))."""
    if not batched:
        return np.array([_scalar(loss(make(c))) for c in coords], dtype=np.float64)
    blocks = []
    for start in range(0, coords.shape[0], chunk):
        c = coords[start:start + chunk]
        value = np.asarray(loss(make(c)), dtype=np.float64)
        if value.shape != (c.shape[0],):
            raise ValueError(f"a batched loss must return shape ({c.shape[0]},) for a block of "
                             f"{c.shape[0]} points, got {value.shape}")
        blocks.append(value)
    return np.concatenate(blocks)


def _scalar(value: Any) -> float:
    v = np.asarray(value, dtype=np.float64)
    if v.shape != ():
        raise ValueError(f"loss must return a scalar (batched=False), got shape {v.shape}")
    return float(v)


# --- (a) the printed grid and surface, and the PCA --------------------------------------------


def landscape(W: Any, L: Any, *, n_grid: int = 200, method: str = "cubic") -> dict[str, Any]:
    n_grid, method = check_n_grid(n_grid), check_method(method)
    W, L = _trajectory(W, L)
    # 002 App. B: X, Y = meshgrid(min W_:,1, max W_:,1, min W_:,2, max W_:,2, 200)
    X, Y = np.meshgrid(np.linspace(W[:, 0].min(), W[:, 0].max(), n_grid),
                       np.linspace(W[:, 1].min(), W[:, 1].max(), n_grid))
    if method == "none":
        return {"X": X, "Y": Y, "Z": None}
    try:  # 002 App. B: Z = griddata(W, L, (X, Y), method = cubic)
        Z = griddata(W, L, (X, Y), method=method)
    except QhullError as err:
        raise ValueError(f"W: method={method!r} needs a 2-D triangulation of the E={len(W)} "
                         f"points (at least 3, not all on one line): {err}") from None
    return {"X": X, "Y": Y, "Z": Z}


def landscape_pca(D: Any, *, n_components: int = 2) -> dict[str, np.ndarray]:
    D = _array("D", D, 2)
    m, n = D.shape
    if m < 2 or n < 1:
        raise ValueError(f"D must have shape (m, n) with m >= 2 samples and n >= 1, got {D.shape}")
    k = check_n_components(n_components, m, n)
    mean = D.mean(axis=0)
    Dc = D - mean
    _, S, Vt = np.linalg.svd(Dc, full_matrices=False)
    variance = S**2 / (m - 1)
    if not variance.sum() > 0:
        raise ValueError("D has zero total variance (all rows equal): no principal directions")
    components = _sign_fixed(Vt[:k])
    return {"components": components, "explained_variance": variance[:k],
            "explained_variance_ratio": variance[:k] / variance.sum(), "mean": mean,
            "projected": Dc @ components.T}


# --- (b) the exact 2-D slice ------------------------------------------------------------------


def landscape_slice2d(loss: Callable, params: Mapping[str, Any], name: str, X: Any, Y: Any, *,
                      index: Any = None, batched: bool = False,
                      chunk: int = 1024) -> dict[str, np.ndarray]:
    _callable(loss)
    batched, chunk = check_batched(batched), check_chunk(chunk)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping name -> array, got {type(params).__name__}")
    shape = np.shape(params[name]) if isinstance(name, str) and name in params else ()
    i, j = selection(params, name, tuple(shape), index)
    w0 = _array(f"params[{name!r}]", params[name], len(shape)).reshape(-1)
    X, Y = _grid_axes(X, Y)

    def make(c: np.ndarray) -> dict[str, Any]:
        w = np.repeat(w0[None, :], c.shape[0], axis=0) if c.ndim == 2 else w0.copy()
        w[..., i], w[..., j] = c[..., 0], c[..., 1]
        return {**params, name: w.reshape(*c.shape[:-1], *shape)}

    coords = np.stack([X.reshape(-1), Y.reshape(-1)], axis=1)
    Z = _scan(loss, make, coords, batched, chunk).reshape(X.shape)
    return {"X": X, "Y": Y, "Z": Z}


# --- (c) the 1-D slice along the top Hessian eigenvector --------------------------------------


def _direction(v: Any, H: Any, P: int) -> tuple[np.ndarray, float | None]:
    """(unit v_1 with the sign convention, lambda_max or None)."""
    check_direction_inputs(v is not None, H is not None)
    if v is not None:
        v = _array("v", v, 1)
        if v.shape != (P,) or not np.linalg.norm(v) > 0:
            raise ValueError(f"v must be a nonzero vector of shape ({P},), got shape {v.shape}")
        return _sign_fixed((v / np.linalg.norm(v))[None, :])[0], None
    H = _array("H", H, 2)
    if H.shape != (P, P):
        raise ValueError(f"H must have shape ({P}, {P}), got {H.shape}")
    if np.abs(H - H.T).max() > SYM_RTOL * np.abs(H).max():
        raise ValueError(f"H must be symmetric (relative asymmetry <= {SYM_RTOL})")
    lam, Q = np.linalg.eigh(0.5 * (H + H.T))
    return _sign_fixed(Q[:, -1][None, :])[0], float(lam[-1])


def landscape_slice1d(loss: Callable, x_star: Any, v: Any = None, H: Any = None, *,
                      s_range: tuple[float, float] = (-1.0, 1.0), n_points: int = 51,
                      batched: bool = False, chunk: int = 1024) -> dict[str, Any]:
    _callable(loss)
    lo, hi = check_s_range(s_range)
    n_points, batched, chunk = check_n_points(n_points), check_batched(batched), check_chunk(chunk)
    x_star = _array("x_star", x_star, 1)
    if x_star.size == 0:
        raise ValueError("x_star must be a non-empty vector (P,)")
    v1, lam = _direction(v, H, x_star.size)
    s = np.linspace(lo, hi, n_points)
    # 004 Fig. 2: L(x* + s v_1)
    values = _scan(loss, lambda c: x_star + c * v1, s[:, None], batched, chunk)
    return {"s": s, "loss": values, "v": v1, "lambda_max": lam}


for _key, _fn in (
    ("est:landscape", landscape),
    ("est:landscape[pca]", landscape_pca),
    ("est:landscape[slice2d]", landscape_slice2d),
    ("est:landscape[slice1d]", landscape_slice1d),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
