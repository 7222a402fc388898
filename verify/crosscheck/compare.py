"""Distance between a reference value and its torch mirror, for any nesting of arrays."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def to_numpy(value: Any) -> Any:
    """Tensors -> float64/int NumPy arrays, recursively through mappings and sequences."""
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().numpy()
        return array.astype(np.float64) if array.dtype.kind == "f" else array
    if isinstance(value, Mapping):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_numpy(v) for v in value]
    return value


def relative_error(reference: Any, mirror: Any, atol: float = 1e-12, scale: Any = None) -> float:
    """max over leaves of ||ref - mirror|| / (||ref|| + atol/rtol scale), inf on structure mismatch.

    Each leaf contributes ``||ref - mirror||_2 / max(||ref||_2, ||scale||_2, atol)``: a normwise
    relative error, with ``atol`` as the floor for leaves that vanish and ``scale`` (a tree like
    ``reference``, optional) the typical size of the leaf where it is small by cancellation.
    """
    mirror = to_numpy(mirror)
    if isinstance(reference, Mapping):
        if not isinstance(mirror, Mapping) or set(reference) != set(mirror):
            return math.inf
        return max(
            (relative_error(reference[k], mirror[k], atol, _part(scale, k)) for k in reference),
            default=0.0,
        )
    if isinstance(reference, Sequence) and not isinstance(reference, str):
        if not isinstance(mirror, Sequence) or len(reference) != len(mirror):
            return math.inf
        pairs = enumerate(zip(reference, mirror, strict=True))
        return max((relative_error(r, m, atol, _part(scale, i)) for i, (r, m) in pairs),
                   default=0.0)
    if reference is None or isinstance(reference, str | bool):
        return 0.0 if reference == mirror else math.inf
    ref, mir = np.asarray(reference, dtype=np.float64), np.asarray(mirror, dtype=np.float64)
    if ref.shape != mir.shape:
        return math.inf
    if not np.array_equal(np.isfinite(ref), np.isfinite(mir)):
        return math.inf
    finite = np.isfinite(ref)
    gap = float(np.linalg.norm(ref[finite] - mir[finite]))
    size = 0.0 if scale is None else float(np.linalg.norm(np.nan_to_num(np.asarray(scale))))
    return gap / max(float(np.linalg.norm(ref[finite])), size, atol)


def _part(scale: Any, key: Any) -> Any:
    return None if scale is None else scale[key]
