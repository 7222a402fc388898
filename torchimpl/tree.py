"""Parameter trees in torch: the same layout as the reference (row-major leaves, key order)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Tree = Mapping[str, torch.Tensor]


def flatten(tree: Tree) -> torch.Tensor:
    """Concatenate the row-major flattening of every leaf, in key order."""
    return torch.cat([v.reshape(-1) for v in tree.values()])


def unflatten(vector: torch.Tensor, like: Tree) -> dict[str, torch.Tensor]:
    """Inverse of `flatten`, with the names and shapes of ``like``."""
    sizes = [v.numel() for v in like.values()]
    if tuple(vector.shape) != (sum(sizes),):
        raise ValueError(f"vector has shape {tuple(vector.shape)}; the tree needs ({sum(sizes)},)")
    pieces = torch.split(vector, sizes)
    return {k: p.reshape(v.shape) for (k, v), p in zip(like.items(), pieces, strict=True)}


def tree_map(fn: Callable[..., torch.Tensor], tree: Tree, *rest: Tree) -> dict[str, torch.Tensor]:
    """Apply ``fn`` leaf-wise to trees with the same keys."""
    return {k: fn(v, *(r[k] for r in rest)) for k, v in tree.items()}


def check_finite(tree: Tree, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the leaf if any entry is NaN or infinite."""
    for key, value in tree.items():
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}[{key!r}] contains non-finite values (NaN or inf)")
