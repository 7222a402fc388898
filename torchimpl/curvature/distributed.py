"""All-reduce of Kronecker factors across the ranks of a ``torch.distributed`` process group
(002 §4.2 Eq. (22) and the display after it; INVENTORY est:dist_agg).

`all_reduce_factors` is the multi-process form of the shard simulation ``est:dist_agg``
(``torchimpl.estimators.factors.dist_agg``): with rank k holding shard k's factors,
``all_reduce_factors({"H_D": H_k, "S_D": S_k}, order=o)`` returns on every rank the
``H_SUM``, ``S_SUM`` of ``dist_agg(stack(H_k), stack(S_k), order=o)``, and `efim_sum` its
``F_SUM``. The min-max normalization is the one of ``torchimpl.estimators.factors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from contract.specs.factors import DEGENERATE, MINMAX, ORDERS, check_lam, option
from contract.validate import integer
from torchimpl.estimators.factors import efim, finite_tensor, normalize, tensor_of, weight_shaped

WEIGHTS = ("equal", "by_samples")

Factors = Mapping[str, Any]
"""name -> tensor, or name -> such a mapping (the output of ``kfac_factors``)."""


def all_reduce_factors(
    factors: Factors,
    group: dist.ProcessGroup | None = None,
    order: str = "thesis",
    *,
    weights: str = "equal",
    n_samples: int | None = None,
    minmax: str = "thesis",
    degenerate: str = "ones",
) -> Factors:
    """The average over the ranks of ``group`` of this rank's factors, on every rank.

    ``factors``: name -> tensor (e.g. diagonal factors H_D, S_D), or a nested mapping such as
    the output of ``kfac_factors``; every rank passes the same names, shapes and dtypes (checked:
    ``ValueError`` on every rank otherwise). Returns a new mapping of the same structure.

    ``order="thesis"`` (002 Eq. (22)): the raw factors are averaged,
    H^SUM = (1/K) sum_k H^(k), and the caller normalizes the averages (F~^SUM = mm(H^SUM) (x)
    mm(S^SUM) + lam I, `efim_sum`). ``order="code"``: each rank first normalizes its factors
    with ``minmax`` / ``degenerate`` (as est:efim: min-max over all entries of a tensor, so pass
    diagonal factors) and the normalized factors are averaged; ``minmax="none"`` averages
    factors the caller has already normalized (the official code all-reduces its EMA of
    normalized factors). ``minmax`` and ``degenerate`` act only with ``order="code"``.

    ``weights="equal"``: all_reduce(SUM) / K, the equal weights 1/K printed in Eq. (22).
    ``weights="by_samples"``: shard k is weighted B_k / B with B_k = ``n_samples`` (this rank's
    batch size, required) and B = sum_k B_k. The factors are batch means (1/B_k sum over the
    shard; ``kfac_factors`` with ``s_scale="per_sample"``), so the sample-weighted average of
    raw factors equals the factors of the concatenated batch for any shard sizes, the equal
    weights only when every shard has the same size.

    Without an initialized process group, or with a group of one rank, the average is over
    this rank alone: the input itself is returned, except that ``order="code"`` with a
    normalization returns the normalized factors (dist_agg with K = 1). Collective: every rank
    of ``group`` must call it. Results are detached (all_reduce is not differentiable).
    """
    option("order", order, ORDERS)
    option("weights", weights, WEIGHTS)
    option("minmax", minmax, MINMAX)
    option("degenerate", degenerate, DEGENERATE)
    if weights == "by_samples":
        if n_samples is None:
            raise ValueError("weights='by_samples' needs n_samples, this rank's batch size B_k")
        n_samples = integer("n_samples", n_samples, 1)
    leaves = _leaves(factors)
    normalizing = order == "code" and minmax != "none"
    if normalizing:
        leaves = [(path, normalize(finite_tensor(_name(path), x), minmax, degenerate))
                  for path, x in leaves]
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size(group) == 1:
        return _rebuild(factors, dict(leaves)) if normalizing else factors
    counts = _agree(leaves, (order, weights, minmax, degenerate), n_samples, group)
    scale = (n_samples / sum(counts) if weights == "by_samples"
             else 1.0 / dist.get_world_size(group))
    return _rebuild(factors, _sum_reduce(leaves, scale, group))


def efim_sum(H_SUM, S_SUM, *, lam=1e-3, order="thesis", minmax="thesis", degenerate="ones"):
    """F~^SUM in weight shape (out, in + 1) from the all-reduced diagonal factors of one layer.

    ``order="thesis"``: mm(H^SUM) (x) mm(S^SUM) + lam (002 §4.2, the display after Eq. (22);
    est:efim on the averages); ``order="code"``: the averages are already normalized,
    H^SUM (x) S^SUM + lam. The options are those given to `all_reduce_factors`; the result is
    ``F_SUM`` of est:dist_agg.
    """
    option("order", order, ORDERS)
    if order == "thesis":
        return efim(H_SUM, S_SUM, lam=lam, minmax=minmax, degenerate=degenerate)["F"]
    H_SUM = finite_tensor("H_SUM", H_SUM, 1)
    return weight_shaped(H_SUM, finite_tensor("S_SUM", S_SUM, 1, H_SUM), check_lam(lam))


def _leaves(factors: Factors, prefix: tuple[str, ...] = ()) -> list[tuple[tuple, torch.Tensor]]:
    """(path, tensor) for every leaf of a nested mapping, in key order."""
    if not isinstance(factors, Mapping):
        raise TypeError(f"factors must be a mapping name -> tensor (or nested mappings), got "
                        f"{type(factors).__name__}")
    out = []
    for key, value in factors.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            out.extend(_leaves(value, path))
        else:
            out.append((path, tensor_of(_name(path), value)))
    return out


def _name(path: tuple) -> str:
    return "factors" + "".join(f"[{key!r}]" for key in path)


def _rebuild(factors: Factors, values: dict[tuple, torch.Tensor],
             prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """``factors``' structure with the leaf at path p replaced by ``values[p]``."""
    return {key: (_rebuild(value, values, (*prefix, key)) if isinstance(value, Mapping)
                  else values[(*prefix, key)])
            for key, value in factors.items()}


def _agree(leaves, options: tuple, n_samples: int | None, group) -> list[int | None]:
    """Every rank's batch size, after checking that all ranks hold the same factor layout and
    options (mismatched collectives would hang or mix unrelated tensors)."""
    layout = ([(path, tuple(x.shape), str(x.dtype)) for path, x in leaves], options)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, (layout, n_samples), group=group)
    if any(other != layout for other, _ in gathered):
        raise ValueError("all_reduce_factors: the ranks hold different factor names, shapes, "
                         "dtypes or options; every rank must pass the same layout")
    return [count for _, count in gathered]


def _sum_reduce(leaves, scale: float, group) -> dict[tuple, torch.Tensor]:
    """sum over ranks of ``scale * x`` for every leaf: one all_reduce per dtype and device."""
    buckets: dict[tuple, list] = {}
    for path, x in leaves:
        buckets.setdefault((x.dtype, x.device), []).append((path, x.detach()))
    out = {}
    for bucket in buckets.values():
        flat = torch.cat([x.reshape(-1) for _, x in bucket]) * scale  # 002 Eq. (22)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        pieces = torch.split(flat, [x.numel() for _, x in bucket])
        out.update({path: p.reshape(x.shape) for (path, x), p in zip(bucket, pieces, strict=True)})
    return out
