"""Cost measurements for the benchmarks (INVENTORY §3.10 est:timing, est:state_bytes).

`time_call`: the median wall-clock seconds of a callable over >= 5 repeats after a warm-up,
with ``torch.set_num_threads`` applied while timing and ``torch.cuda.synchronize`` around each
run on GPU. `tensor_bytes`: the bytes of every tensor in a (nested) state, e.g. an optimizer's
``state_dict()``. `peak_cuda_bytes`: ``torch.cuda.max_memory_allocated`` over one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from contract.specs.curvature import median_seconds


@contextmanager
def num_threads(threads: int | None):
    """``torch.set_num_threads(threads)`` inside the block (None: unchanged), then restored."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1,
              threads: int | None = None, device: Any = "cpu") -> float:
    """Median seconds of ``fn()`` (see the module docstring)."""
    cuda = torch.device(device).type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    with num_threads(threads):
        return median_seconds(fn, repeats, warmup, sync)


def tensor_bytes(state: Any) -> int:
    """Bytes of the tensors (and NumPy-like arrays) in ``state``, through mappings and
    sequences; scalars and strings count nothing."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, Mapping):
        return sum(tensor_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(tensor_bytes(v) for v in state)
    return int(getattr(state, "nbytes", 0))


def peak_cuda_bytes(fn: Callable[[], Any], device: Any = "cuda") -> int:
    """``torch.cuda.max_memory_allocated`` during ``fn()``, from a reset peak."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))
