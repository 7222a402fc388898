"""Parameter trees: a mapping name -> array, flattened in the mapping's order.

Convention (DESIGN.md): every array is flattened row-major (``reshape(-1)``, torch's
``flatten`` order) and the pieces are concatenated in the order of the mapping's keys. Dense
matrices over parameters (Hessian, GGN, Fisher) index this flat vector. The column-major
``vec`` of the documents is a different, per-layer layout used by Kronecker factors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Tree = Mapping[str, np.ndarray]


def flatten(tree: Tree) -> np.ndarray:
    """Concatenate the row-major flattening of every leaf, in key order."""
    return np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in tree.values()])


def unflatten(vector: np.ndarray, like: Tree) -> dict[str, np.ndarray]:
    """Inverse of `flatten`, with the names and shapes of ``like``."""
    vector = np.asarray(vector)
    sizes = [int(np.size(v)) for v in like.values()]
    if vector.shape != (sum(sizes),):
        raise ValueError(f"vector has shape {vector.shape}; the tree needs ({sum(sizes)},)")
    pieces = np.split(vector, np.cumsum(sizes)[:-1])
    return {k: p.reshape(np.shape(v)) for (k, v), p in zip(like.items(), pieces, strict=True)}


def tree_map(fn: Callable[..., np.ndarray], tree: Tree, *rest: Tree) -> dict[str, np.ndarray]:
    """Apply ``fn`` leaf-wise to trees with the same keys."""
    return {k: fn(v, *(r[k] for r in rest)) for k, v in tree.items()}


def check_finite(tree: Tree, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the leaf if any entry is NaN or infinite."""
    for key, value in tree.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name}[{key!r}] contains non-finite values (NaN or inf)")
