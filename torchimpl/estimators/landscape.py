"""Loss-landscape pictures `est:landscape*` in torch (INVENTORY §3.8; 002 App. B, 004 Fig. 2):
the same IDs, arguments, options, result keys and errors as the reference layer.

(a) ``landscape`` builds the printed grid X, Y and takes ``method="none"`` only (Z = None):
griddata interpolation needs a Delaunay triangulation, which torch lacks, so an interpolating
method raises ``NotImplementedError`` (the decision is written in `contract.specs.landscape`);
``landscape_pca`` is the PCA of the data; (b) ``landscape_slice2d`` and (c)
``landscape_slice1d`` evaluate the loss callable on a grid. Results take the dtype and device of
the main tensor input (W, D, params[name], x_star); losses are evaluated under
``torch.no_grad()``. Option defaults, docs and option checks: `contract.specs.landscape`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from contract import Estimator
from contract.specs.estimators import SYM_RTOL
from contract.specs.landscape import (
    INTERPOLATING,
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
    torch_interpolation_error,
)
from torchimpl.estimators.registry import REGISTRY

# --- inputs -----------------------------------------------------------------------------------


def _tensor(name: str, value: Any, ndim: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """A finite floating tensor with ``ndim`` dimensions (``like``'s dtype and device)."""
    if like is None:
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, "
                            f"got {type(value).__name__}")
        x = value
    else:
        x = torch.as_tensor(value).to(dtype=like.dtype, device=like.device)
    if x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _trajectory(W: Any, L: Any) -> tuple[torch.Tensor, torch.Tensor]:
    W = _tensor("W", W, 2)
    L = _tensor("L", L, 1, like=W)
    if W.shape[1] != 2 or W.shape[0] == 0:
        raise ValueError(f"W must have shape (E, 2) with E >= 1, got {tuple(W.shape)}")
    if L.shape != (W.shape[0],):
        raise ValueError(f"L must have shape ({W.shape[0]},) (one loss per row of W), "
                         f"got {tuple(L.shape)}")
    return W, L


def _grid_axes(X: Any, Y: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.as_tensor(X).to(dtype=like.dtype, device=like.device)
    Y = torch.as_tensor(Y).to(dtype=like.dtype, device=like.device)
    if X.shape != Y.shape:
        raise ValueError(f"X and Y must have the same shape, got {tuple(X.shape)} and "
                         f"{tuple(Y.shape)}")
    if not (bool(torch.isfinite(X).all()) and bool(torch.isfinite(Y).all())):
        raise ValueError("X and Y contain non-finite values (NaN or inf)")
    return X, Y


def _callable(loss: Any) -> None:
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")


def _sign_fixed(V: torch.Tensor) -> torch.Tensor:
    """Each row of V times the sign of its largest-magnitude entry (the first on a tie)."""
    rows = torch.arange(V.shape[0], device=V.device)
    s = torch.sign(V[rows, torch.argmax(V.abs(), dim=1)])
    return V * torch.where(s == 0, torch.ones_like(s), s)[:, None]


# --- evaluation on a set of points ------------------------------------------------------------


def _scan(loss: Callable, make: Callable, coords: torch.Tensor, batched: bool,
          chunk: int) -> torch.Tensor:
    """loss(make(c)) for each row c of coords (N, k): one call per row, or with ``batched``
    one call per block of ``chunk`` rows (make gets the (B, k) block, loss returns (B,))."""
    with torch.no_grad():
        if not batched:
            return torch.stack([_scalar(loss(make(c)), coords) for c in coords])
        blocks = []
        for start in range(0, coords.shape[0], chunk):
            c = coords[start:start + chunk]
            value = torch.as_tensor(loss(make(c))).to(dtype=coords.dtype, device=coords.device)
            if value.shape != (c.shape[0],):
                raise ValueError(f"a batched loss must return shape ({c.shape[0]},) for a block "
                                 f"of {c.shape[0]} points, got {tuple(value.shape)}")
            blocks.append(value)
        return torch.cat(blocks)


def _scalar(value: Any, like: torch.Tensor) -> torch.Tensor:
    v = torch.as_tensor(value).to(dtype=like.dtype, device=like.device)
    if v.shape != ():
        raise ValueError(f"loss must return a scalar (batched=False), got shape {tuple(v.shape)}")
    return v


# --- (a) the printed grid, and the PCA --------------------------------------------------------


def landscape(W: Any, L: Any, *, n_grid: int = 200, method: str = "cubic") -> dict[str, Any]:
    n_grid, method = check_n_grid(n_grid), check_method(method)
    W, L = _trajectory(W, L)
    if method in INTERPOLATING:
        raise torch_interpolation_error(method)
    lo, hi = W.min(dim=0).values, W.max(dim=0).values
    # 002 App. B: X, Y = meshgrid(min W_:,1, max W_:,1, min W_:,2, max W_:,2, 200)
    X, Y = torch.meshgrid(*(torch.linspace(float(lo[k]), float(hi[k]), n_grid, dtype=W.dtype,
                                           device=W.device) for k in range(2)), indexing="xy")
    return {"X": X, "Y": Y, "Z": None}


def landscape_pca(D: Any, *, n_components: int = 2) -> dict[str, torch.Tensor]:
    D = _tensor("D", D, 2)
    m, n = D.shape
    if m < 2 or n < 1:
        raise ValueError(f"D must have shape (m, n) with m >= 2 samples and n >= 1, "
                         f"got {tuple(D.shape)}")
    k = check_n_components(n_components, m, n)
    mean = D.mean(dim=0)
    Dc = D - mean
    _, S, Vt = torch.linalg.svd(Dc, full_matrices=False)
    variance = S**2 / (m - 1)
    if not bool(variance.sum() > 0):
        raise ValueError("D has zero total variance (all rows equal): no principal directions")
    components = _sign_fixed(Vt[:k])
    return {"components": components, "explained_variance": variance[:k],
            "explained_variance_ratio": variance[:k] / variance.sum(), "mean": mean,
            "projected": Dc @ components.T}


# --- (b) the exact 2-D slice ------------------------------------------------------------------


def landscape_slice2d(loss: Callable, params: Mapping[str, Any], name: str, X: Any, Y: Any, *,
                      index: Any = None, batched: bool = False,
                      chunk: int = 1024) -> dict[str, torch.Tensor]:
    _callable(loss)
    batched, chunk = check_batched(batched), check_chunk(chunk)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping name -> array, got {type(params).__name__}")
    has = isinstance(name, str) and name in params
    shape = tuple(params[name].shape) if has and hasattr(params[name], "shape") else ()
    i, j = selection(params, name, shape, index)
    w0 = _tensor(f"params[{name!r}]", params[name], len(shape)).reshape(-1)
    X, Y = _grid_axes(X, Y, w0)

    def make(c: torch.Tensor) -> dict[str, Any]:
        w = w0.repeat(c.shape[0], 1) if c.dim() == 2 else w0.clone()
        w[..., i], w[..., j] = c[..., 0], c[..., 1]
        return {**params, name: w.reshape(*c.shape[:-1], *shape)}

    coords = torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)
    Z = _scan(loss, make, coords, batched, chunk).reshape(X.shape)
    return {"X": X, "Y": Y, "Z": Z}


# --- (c) the 1-D slice along the top Hessian eigenvector --------------------------------------


def _direction(v: Any, H: Any, x_star: torch.Tensor) -> tuple[torch.Tensor, float | None]:
    """(unit v_1 with the sign convention, lambda_max or None)."""
    check_direction_inputs(v is not None, H is not None)
    P = x_star.shape[0]
    if v is not None:
        v = _tensor("v", v, 1, like=x_star)
        if v.shape != (P,) or not bool(torch.linalg.vector_norm(v) > 0):
            raise ValueError(f"v must be a nonzero vector of shape ({P},), "
                             f"got shape {tuple(v.shape)}")
        return _sign_fixed((v / torch.linalg.vector_norm(v))[None, :])[0], None
    H = _tensor("H", H, 2, like=x_star)
    if H.shape != (P, P):
        raise ValueError(f"H must have shape ({P}, {P}), got {tuple(H.shape)}")
    if bool((H - H.T).abs().max() > SYM_RTOL * H.abs().max()):
        raise ValueError(f"H must be symmetric (relative asymmetry <= {SYM_RTOL})")
    lam, Q = torch.linalg.eigh(0.5 * (H + H.T))
    return _sign_fixed(Q[:, -1][None, :])[0], float(lam[-1])


def landscape_slice1d(loss: Callable, x_star: Any, v: Any = None, H: Any = None, *,
                      s_range: tuple[float, float] = (-1.0, 1.0), n_points: int = 51,
                      batched: bool = False, chunk: int = 1024) -> dict[str, Any]:
    _callable(loss)
    lo, hi = check_s_range(s_range)
    n_points, batched, chunk = check_n_points(n_points), check_batched(batched), check_chunk(chunk)
    x_star = _tensor("x_star", x_star, 1)
    if x_star.numel() == 0:
        raise ValueError("x_star must be a non-empty vector (P,)")
    v1, lam = _direction(v, H, x_star)
    s = torch.linspace(lo, hi, n_points, dtype=x_star.dtype, device=x_star.device)
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
