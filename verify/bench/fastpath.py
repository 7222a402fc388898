"""Where the time goes, for the CPU rows that miss a target (the fast-path diagonal EF's 1.5x
or an HVP's 3x).

Stages, timed in the same interleaved rounds (`timing.measure`):

- ``forward``: the plain module forward and mean cross-entropy, no graph;
- ``backward``: the baseline (forward, loss, ``torch.autograd.grad`` of the parameters);
- ``hooked_backward``: the minimum the fast path needs, written plainly: forward hooks on the
  Linear/Conv2d layers, the module forward, the summed cross-entropy and
  ``torch.autograd.grad`` of the layer outputs (s_n, 002 §2.1.4);
- ``engine_loss``: ``per_sample_losses`` (``functional_call`` forward, per-sample loss by
  ``vmap``), no backward;
- ``unfold``: ``F.unfold`` of every conv layer's input (conv models only);
- ``collect``: the engine's layer statistics (hooks, forward, backward to the outputs,
  layouts: augmentation, unfold);
- ``diag_ef_fast``: the whole call;
- ``autograd_hvp``: a reverse-over-reverse HVP written plainly on the module
  (``torch.autograd.grad`` with ``create_graph=True``, then the gradient of g^T v), the
  reference point for the engine's ``hvp``.

Derived: ``collect - hooked_backward`` is the engine's overhead over the plain statistics;
``diag_ef_fast - collect`` the per-layer products after the statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import torchimpl.curvature as C
from verify.bench.timing import Budget, measure


def stages(mb: C.ModelBatch) -> dict[str, Callable[[], Any]]:
    """The stage callables of the module docstring for one model and batch."""
    module, x, y = mb.module, mb.x, mb.y
    params = dict(module.named_parameters())
    gen = torch.Generator().manual_seed(2)
    v = {k: torch.randn(p.shape, generator=gen).to(p.device) for k, p in params.items()}
    layers = [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    conv_inputs = _inputs(module, x, [m for m in layers if isinstance(m, nn.Conv2d)])

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return F.cross_entropy(module(x), y)

    def backward() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(F.cross_entropy(module(x), y), list(params.values()))

    def hooked_backward() -> tuple[torch.Tensor, ...]:
        outs: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _a, o: outs.append(o)) for m in layers]
        try:
            loss = F.cross_entropy(module(x), y, reduction="sum")
        finally:
            for handle in handles:
                handle.remove()
        return torch.autograd.grad(loss, outs)

    def autograd_hvp() -> tuple[torch.Tensor, ...]:
        leaves = list(params.values())
        g = torch.autograd.grad(F.cross_entropy(module(x), y), leaves, create_graph=True)
        return torch.autograd.grad(g, leaves, grad_outputs=[v[k] for k in params])

    def unfold() -> list[torch.Tensor]:
        return [F.unfold(h, m.kernel_size, m.dilation, m.padding, m.stride)
                for m, h in conv_inputs]

    fns = {"forward": forward, "backward": backward, "hooked_backward": hooked_backward,
           "engine_loss": lambda: C.per_sample_losses(params, mb),
           "unfold": unfold, "collect": lambda: C.collect(params, mb),
           "diag_ef_fast": lambda: C.diag_ef(params, mb), "autograd_hvp": autograd_hvp}
    if not conv_inputs:
        del fns["unfold"]
    return fns


def _inputs(module: nn.Module, x: torch.Tensor, convs: list[nn.Conv2d]):
    """(conv, its input) for each conv layer, from one forward pass without a graph."""
    seen: list[tuple[nn.Conv2d, torch.Tensor]] = []
    handles = [m.register_forward_hook(lambda mod, a, _o: seen.append((mod, a[0]))) for m in convs]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def profile(rows: list[dict], missed: list[dict],
            model_batch: Callable[[str, int, str], C.ModelBatch], budget: Budget,
            threads: int) -> list[dict]:
    """The stage times (seconds) and their ratios to the backward, for every CPU row with a
    target record in ``missed``."""
    report = []
    keys = {(t["model"], t["batch"]) for t in missed if t["device"] == "cpu"}
    for row in rows:
        if row["device"] != "cpu" or (row["model"], row["batch"]) not in keys:
            continue
        timings = measure(stages(model_batch(row["model"], row["batch"], "cpu")), budget,
                          "cpu", threads)
        seconds = {k: t.seconds for k, t in timings.items()}
        base = seconds["backward"]
        report.append({"model": row["model"], "batch": row["batch"], "seconds": seconds,
                       "ratios": {k: s / base for k, s in seconds.items()},
                       "engine_overhead_ratio": (seconds["collect"]
                                                 - seconds["hooked_backward"]) / base,
                       "layer_products_ratio": (seconds["diag_ef_fast"]
                                                - seconds["collect"]) / base})
    return report


def summary(report: list[dict]) -> str:
    """One line per profiled row: each stage as a ratio to the backward."""
    lines = ["profile of the CPU rows missing a target (ratios to the same-round backward):"]
    for r in report:
        stages_ = "  ".join(f"{k} {v:.2f}x" for k, v in r["ratios"].items() if k != "backward")
        lines.append(f"  {r['model']} B={r['batch']}: {stages_}  | engine overhead "
                     f"{r['engine_overhead_ratio']:.2f}x, layer products "
                     f"{r['layer_products_ratio']:.2f}x")
    return "\n".join(lines)
