'''The `est:landscape` family both layers share (INVENTORY §3.8; 002 App. B, 004 Fig. 2).

Four registered entries, one per part of the INVENTORY entry:

- ``est:landscape``: part (a) as printed, the grid X, Y over the range of the per-epoch
  first-layer weights and the surface Z interpolated from the (W, L) pairs;
- ``est:landscape[pca]``: the PCA of the data to 2-D that part (a) starts from;
- ``est:landscape[slice2d]``: part (b), the exact 2-D slice of the loss on a grid;
- ``est:landscape[slice1d]``: part (c), the 1-D slice along the top Hessian eigenvector.

Decision on the torch layer and part (a): Z is scattered-data interpolation over a Delaunay
triangulation (``scipy.interpolate.griddata``; "cubic" is SciPy's Clough-Tocher scheme with
gradients fitted by a global iterative solver). torch has no triangulation and the torch layer
may not import SciPy, so the torch layer builds the grid X, Y (and the PCA, and parts (b), (c))
and takes ``method="none"`` (Z = None) only; any interpolating method raises
``NotImplementedError`` there, pointing to the reference layer. The cross-check compares what
both layers define: X, Y with ``method="none"``. Z is a plot of logged numbers, not a training
quantity, so nothing is lost by computing it in NumPy.

Option defaults, docs and the pure-Python checks (with the messages both layers raise) are
written once here; each layer registers ``Estimator(key, fn, spec.options, spec.doc)`` from
`SPECS` and keeps only the array arithmetic.
'''

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.rule import freeze
from contract.specs.estimators import EstimatorSpec
from contract.validate import boolean, choice, integer, real

__all__ = [
    "INTERPOLATING",
    "METHODS",
    "SPECS",
    "check_batched",
    "check_chunk",
    "check_direction_inputs",
    "check_method",
    "check_n_components",
    "check_n_grid",
    "check_n_points",
    "check_s_range",
    "selection",
    "torch_interpolation_error",
]

METHODS = ("cubic", "linear", "nearest", "none")
INTERPOLATING = ("cubic", "linear", "nearest")


# --- option and input checks (the messages both layers raise) ---------------------------------


def check_method(method: Any) -> str:
    """``method``: a griddata method ("cubic" as printed, "linear", "nearest") or "none"."""
    return choice("method", method, METHODS, require_str=True)


def check_n_grid(n_grid: Any) -> int:
    """``n_grid``: points per axis, an integer >= 2 (the printed 200)."""
    return integer("n_grid", n_grid, 2)


def check_n_points(n_points: Any) -> int:
    """``n_points``: slice points, an integer >= 2."""
    return integer("n_points", n_points, 2)


def check_chunk(chunk: Any) -> int:
    """``chunk``: grid points per batched call of the loss, an integer >= 1."""
    return integer("chunk", chunk, 1)


def check_batched(batched: Any) -> bool:
    """``batched``: whether the loss takes a leading batch dimension."""
    return boolean("batched", batched)


def check_s_range(s_range: Any) -> tuple[float, float]:
    """``s_range``: a pair (lo, hi) of finite reals with lo < hi."""
    if not isinstance(s_range, Sequence) or isinstance(s_range, str) or len(s_range) != 2:
        raise TypeError(f"s_range must be a pair (lo, hi), got {s_range!r}")
    lo, hi = real("s_range[0]", s_range[0]), real("s_range[1]", s_range[1])
    if not lo < hi:
        raise ValueError(f"Invalid s_range: {tuple(s_range)} (must have lo < hi)")
    return lo, hi


def check_n_components(n_components: Any, m: int, n: int) -> int:
    """``n_components``: an integer in [1, min(m - 1, n)] (m samples, n features; centring
    removes one degree of freedom)."""
    return integer("n_components", n_components, 1, max(min(m - 1, n), 1))


def check_direction_inputs(v_given: bool, H_given: bool) -> None:
    """Part (c) takes the direction ``v`` or a dense Hessian ``H``, exactly one of them."""
    if v_given == H_given:
        raise ValueError("give exactly one of v (the direction, (P,)) and H (a dense "
                         "Hessian (P, P) whose top eigenvector is the direction)")


def selection(params: Mapping[str, Any], name: Any, shape: tuple[int, ...],
              index: Any) -> tuple[int, int]:
    """The two flat (row-major, ``reshape(-1)``) positions of the slice coordinates (u, v) in
    parameter ``name`` of shape ``shape``: (0, 1) for a 2-entry parameter when ``index`` is
    None, else ``index``, a pair of distinct flat positions."""
    if not isinstance(name, str) or name not in params:
        raise ValueError(f"Invalid name: {name!r} (must be one of {tuple(params)})")
    size = 1
    for d in shape:
        size *= d
    if index is None:
        if size != 2:
            raise ValueError(f"parameter {name!r} has {size} entries (shape {shape}); give "
                             "index=(i, j), two flat positions, to select two of them")
        return 0, 1
    if not isinstance(index, Sequence) or isinstance(index, str) or len(index) != 2:
        raise TypeError(f"index must be a pair (i, j) of flat positions, got {index!r}")
    i = integer("index[0]", index[0], 0, size - 1)
    j = integer("index[1]", index[1], 0, size - 1)
    if i == j:
        raise ValueError(f"Invalid index: {tuple(index)} (the two positions must differ)")
    return i, j


def torch_interpolation_error(method: str) -> NotImplementedError:
    """What the torch layer raises for an interpolating ``method`` (see the module doc)."""
    return NotImplementedError(
        f"method={method!r}: griddata interpolation (a Delaunay triangulation; 'cubic' is "
        "Clough-Tocher) has no torch implementation; use method='none' here for the grid and "
        "reference.estimators.landscape (SciPy griddata) for Z"
    )


# --- registration data: ID -> EstimatorSpec(options, doc) -------------------------------------

GRID_DOC = """The printed loss-landscape grid (002 App. B): X, Y and the interpolated Z.

    ``landscape(W, L, *, n_grid=200, method="cubic")`` with ``W`` (E, 2) the first-layer
    weights W_1^e stacked over epochs and ``L`` (E,) the losses. X, Y = meshgrid(linspace(min
    W[:, 0], max W[:, 0], n_grid), linspace(min W[:, 1], max W[:, 1], n_grid)) (``indexing
    "xy"``: X varies along axis 1), each (n_grid, n_grid); Z = griddata(W, L, (X, Y),
    method) with NaN outside the convex hull of the W (SciPy's fill value). ``method="none"``
    gives Z = None. Returns ``{"X", "Y", "Z"}``. No scaling: L is used as given. The torch
    layer takes ``method="none"`` only (contract.specs.landscape explains why).
    """

PCA_DOC = """PCA of the data to ``n_components`` dimensions (002 App. B: R^{m x n} -> R^{m x 2}).

    ``landscape_pca(D, *, n_components=2)``: the SVD of the centred data Dc = D - mean = U S V^T.
    Returns ``components`` (k, n) (the first k rows of V^T, each with its largest-magnitude
    entry positive; the first such entry on a tie), ``explained_variance`` (k,) = S^2/(m - 1)
    (the 1/(m - 1) sample-covariance scaling), ``explained_variance_ratio`` (k,) (over the
    total variance, all components), ``mean`` (n,) and ``projected`` (m, k) = Dc components^T.
    """

SLICE2D_DOC = """The exact 2-D slice L(W_1 = (u, v); other parameters fixed) on a grid (§3.8 (b)).

    ``landscape_slice2d(loss, params, name, X, Y, *, index=None, batched=False, chunk=1024)``:
    ``Z[p] = loss(params with the two selected entries of params[name] set to (X[p], Y[p]))``,
    Z of the shape of X (= that of Y). The selection is the whole parameter when it has two
    entries, else ``index=(i, j)``, flat row-major positions (``reshape(-1)``, weights W[out,
    in]). ``batched=False`` calls ``loss(params)`` once per grid point (a scalar back);
    ``batched=True`` calls it once per ``chunk`` points with params[name] of shape (B, *shape)
    (the other parameters unbatched) and expects (B,) back. ``params`` is never modified.
    The values are the loss as the callable defines it (its own reduction), non-finite ones
    included.
    """

SLICE1D_DOC = """The 1-D slice L(x* + s v_1) along the top Hessian eigenvector (004 Fig. 2).

    ``landscape_slice1d(loss, x_star, v=None, H=None, *, s_range=(-1.0, 1.0), n_points=51,
    batched=False, chunk=1024)`` with ``loss`` on the flat vector (P,) and exactly one of
    ``v`` (P,) (normalized to unit length) or a dense symmetric Hessian ``H`` (P, P) whose
    eigenvector of the largest eigenvalue (``eigh``) is v_1. Sign convention: the
    largest-magnitude entry of v_1 is positive (the first such entry on a tie). s =
    linspace(lo, hi, n_points); ``batched=True`` calls ``loss`` on (B, P) blocks and expects
    (B,). Returns ``s``, ``loss`` (n_points,), ``v`` (P,) and ``lambda_max`` (the eigenvalue,
    None when v is given). The range and count are not printed in the source: (-1, 1) is a unit
    step along the unit direction, 51 points include s = 0.
    """

SPECS: Mapping[str, EstimatorSpec] = freeze({
    "est:landscape": EstimatorSpec({"n_grid": 200, "method": "cubic"}, GRID_DOC),
    "est:landscape[pca]": EstimatorSpec({"n_components": 2}, PCA_DOC),
    "est:landscape[slice2d]": EstimatorSpec(
        {"index": None, "batched": False, "chunk": 1024}, SLICE2D_DOC),
    "est:landscape[slice1d]": EstimatorSpec(
        {"s_range": (-1.0, 1.0), "n_points": 51, "batched": False, "chunk": 1024}, SLICE1D_DOC),
})
"""ID -> its option defaults and doc (the same in both layers)."""
