"""Shared benchmark machinery (INVENTORY §3.10 est:timing): interleaved rounds of
`torchimpl.curvature.time_call`, device names, the devices to run on.

`measure` times every candidate of one row in ``rounds`` interleaved rounds (candidate A, B,
C, A, B, C, ...), so a burst of load from other processes hits every candidate alike and the
ratios of one row are measured under the same conditions. Each round is one ``time_call``
(the median of ``n`` runs, ``n`` sized so a candidate runs for about ``budget_s`` in all, at
least one run a round, from the fastest of ``SIZING_RUNS`` runs after a warm-up run: a
stall from other processes must not shrink the rounds); a
candidate's time is the median over the rounds. With ``rounds >= 5`` every time is a median
over >= 5 runs after a warm-up.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from torchimpl.curvature import peak_cuda_bytes, time_call

MAX_RUNS_PER_ROUND = 200
SIZING_RUNS = 3


@dataclass(frozen=True)
class Budget:
    """How long to time: ``rounds`` interleaved rounds, ``budget_s`` seconds per candidate."""

    rounds: int = 5
    budget_s: float = 0.25


@dataclass(frozen=True)
class Timing:
    """The median over rounds (seconds), each round's median and the runs per round."""

    seconds: float
    rounds: list[float]
    runs_per_round: int


def measure(fns: Mapping[str, Callable[[], Any]], budget: Budget, device: str,
            threads: int) -> dict[str, Timing]:
    """Every candidate of ``fns`` timed in interleaved rounds (see the module docstring)."""
    runs = {}
    for name, fn in fns.items():
        once = min(time_call(fn, repeats=1, warmup=int(i == 0), threads=threads, device=device)
                   for i in range(SIZING_RUNS))
        wanted = budget.budget_s / (budget.rounds * max(once, 1e-7))
        runs[name] = min(MAX_RUNS_PER_ROUND, max(1, math.ceil(wanted)))
    rounds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(budget.rounds):
        for name, fn in fns.items():
            rounds[name].append(time_call(fn, repeats=runs[name], warmup=0, threads=threads,
                                          device=device))
    return {name: Timing(statistics.median(t), t, runs[name]) for name, t in rounds.items()}


def peak_bytes(fns: Mapping[str, Callable[[], Any]], device: str) -> dict[str, int] | None:
    """Peak CUDA bytes allocated above what was already held, per candidate (GPU only)."""
    if torch.device(device).type != "cuda":
        return None
    held = torch.cuda.memory_allocated(device)
    return {name: peak_cuda_bytes(fn, device) - held for name, fn in fns.items()}


CPU_MEMORY_NOTE = ("CPU peak memory not measured: tracemalloc sees only Python's allocator, "
                   "not torch's CPU tensor allocator, so it would report ~0 for every call.")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo ("model name"), else from `platform`."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: str) -> str:
    """A readable name: the CPU model and core count, or the GPU's name."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} logical cores)"


def devices(choice: str) -> list[str]:
    """"auto": the CPU, and the GPU when ``torch.cuda.is_available()``; "cpu"; "cuda"."""
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"Invalid device: {choice!r}; allowed: ('auto', 'cpu', 'cuda')")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but torch.cuda.is_available() is False")
    if choice == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [choice]
