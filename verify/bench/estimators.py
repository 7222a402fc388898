"""``python -m verify bench estimators``: the cost of the curvature estimators relative to one
plain batched backward, measured in one run (INVENTORY §3.10 est:timing; DESIGN "Benchmarks").

Models (float32, cross-entropy, mean over the batch, random inputs and labels from seed 0):

- ``mlp``: prob:W1's MLP 64-32-32-10 with tanh, on (B, 64) inputs (3.5k parameters);
- ``cnn``: prob:W8's "2 conv + 2 linear": conv3x3(1->4, pad 1)-ReLU -> conv3x3(4->8, stride 2,
  pad 1)-ReLU -> flatten(128) -> Linear(128->32)-ReLU -> Linear(32->10), on (B, 1, 8, 8).

Candidates (`torchimpl.curvature`), each timed as a ratio to ``backward`` (forward, mean
cross-entropy and ``torch.autograd.grad`` of the module's parameters, i.e. ``loss.backward()``
without accumulating into ``.grad``): ``func_grad`` (``gradient``: torch.func grad of the mean
loss), ``diag_ef_fast`` (``diag_ef``: layer inputs and output gradients), ``psg_fast``
(``per_sample_grads_fast``), ``diag_ef_vmap`` / ``diag_ef_loop`` (``per_sample_grads`` by
``vmap(grad)`` / a Python loop, squared and averaged: the same 1/B diagonal EF), ``kfac``
(``kfac_factors``, empirical labels) and ``hvp_forward`` / ``hvp_reverse`` (``hvp``).

CPU targets of the issue: diag_ef_fast <= 1.5x and an HVP <= 3x a plain gradient, checked on
the fastest exact mode, ``hvp_reverse`` (a torch.autograd double backward); ``hvp_forward``
(``jvp(grad)``) pays a fixed per-call cost of the torch.func transforms (several ms on CPU), so
it is timed and cross-checked but not held to the target. Writes
``estimators.json`` (raw times, ratios, devices, versions) and ``estimators.png`` under --out.
"""

from __future__ import annotations

import datetime
import json
import platform
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import torchimpl.curvature as C  # noqa: E402
from torchimpl.curvature.cost import num_threads  # noqa: E402
from torchimpl.tree import flatten  # noqa: E402
from verify.bench import fastpath, timing  # noqa: E402
from verify.bench.timing import Budget  # noqa: E402

BASELINE = "backward"
COLUMNS = ("func_grad", "diag_ef_fast", "psg_fast", "diag_ef_vmap", "diag_ef_loop", "kfac",
           "hvp_forward", "hvp_reverse")
HEADERS = ("func grad", "diagEF fast", "psg fast", "vmap", "loop", "K-FAC", "HVP fwd", "HVP rev")
TARGETS = (("diag_ef_fast", 1.5, "fast-path diagonal EF <= 1.5x a plain backward"),
           ("hvp_reverse", 3.0, "HVP, fastest exact mode (reverse) <= 3x a gradient"))
FULL = ((32, 256), Budget(rounds=7, budget_s=0.3))
QUICK = ((32,), Budget(rounds=3, budget_s=0.02))
CLASSES = 10


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, CLASSES))


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, CLASSES))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], str]] = {
    "mlp": (mlp, (64,), "prob:W1 MLP 64-32-32-10, tanh"),
    "cnn": (cnn, (1, 8, 8), "prob:W8 CNN conv(1->4,p1)-conv(4->8,s2,p1)-fc(128->32)-fc(32->10)"),
}


def model_batch(model: str, batch: int, device: str) -> C.ModelBatch:
    """The model at seed 0 and a random batch of ``batch`` inputs and labels, on ``device``."""
    build, shape, _ = MODELS[model]
    torch.manual_seed(0)
    module = build().to(device)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *shape, generator=g).to(device)
    y = torch.randint(0, CLASSES, (batch,), generator=g).to(device)
    return C.ModelBatch(module, x, y)


def candidates(mb: C.ModelBatch) -> dict[str, Callable[[], dict[str, torch.Tensor]]]:
    """The baseline and every timed call, each returning a name -> tensor mapping."""
    params = dict(mb.module.named_parameters())
    g = torch.Generator().manual_seed(2)
    v = {k: torch.randn(p.shape, generator=g).to(p.device) for k, p in params.items()}

    def backward() -> dict[str, torch.Tensor]:
        loss = F.cross_entropy(mb.module(mb.x), mb.y)
        return dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))

    def diag_ef(method: str) -> Callable[[], dict[str, torch.Tensor]]:
        def run() -> dict[str, torch.Tensor]:
            grads = C.per_sample_grads(params, mb, method=method)
            return {k: (g_n**2).mean(0) for k, g_n in grads.items()}
        return run

    return {
        BASELINE: backward,
        "func_grad": lambda: C.gradient(params, mb),
        "diag_ef_fast": lambda: C.diag_ef(params, mb),
        "psg_fast": lambda: C.per_sample_grads_fast(params, mb),
        "diag_ef_vmap": diag_ef("vmap"),
        "diag_ef_loop": diag_ef("loop"),
        "kfac": lambda: {f"{k}.{f}": t for k, fs in C.kfac_factors(params, mb).items()
                         for f, t in fs.items()},
        "hvp_forward": lambda: C.hvp(params, mb, v, mode="forward"),
        "hvp_reverse": lambda: C.hvp(params, mb, v, mode="reverse"),
    }


def agreement(fns: dict[str, Callable[[], dict[str, torch.Tensor]]]) -> dict[str, float]:
    """Relative differences between candidates that compute the same quantity: a timing of a
    wrong computation would show here."""
    out = {name: {k: t.detach() for k, t in fns[name]().items()} for name in fns}

    def rel(a: str, b: str) -> float:
        x, y = flatten(out[a]), flatten({k: out[b][k] for k in out[a]})
        return float((x - y).norm() / y.norm().clamp_min(1e-30))

    pairs = (("func_grad", BASELINE), ("diag_ef_fast", "diag_ef_vmap"),
             ("diag_ef_loop", "diag_ef_vmap"), ("hvp_reverse", "hvp_forward"))
    return {f"{a} vs {b}": rel(a, b) for a, b in pairs}


def bench_row(model: str, batch: int, device: str, budget: Budget, threads: int) -> dict:
    """One row: raw times, ratios to the backward, peak memory and agreement."""
    mb = model_batch(model, batch, device)
    fns = candidates(mb)
    timings = timing.measure(fns, budget, device, threads)
    base = timings[BASELINE].seconds
    return {
        "model": model, "batch": batch, "device": device, "device_name": timing.device_name(device),
        "parameters": sum(p.numel() for p in mb.module.parameters()),
        "seconds": {k: t.seconds for k, t in timings.items()},
        "round_seconds": {k: t.rounds for k, t in timings.items()},
        "runs_per_round": {k: t.runs_per_round for k, t in timings.items()},
        "ratios": {k: timings[k].seconds / base for k in COLUMNS},
        "hvp_vs_func_grad": {k: timings[k].seconds / timings["func_grad"].seconds
                             for k in ("hvp_forward", "hvp_reverse")},
        "peak_bytes": timing.peak_bytes(fns, device),
        "agreement": agreement(fns),
    }


def target_checks(rows: list[dict]) -> list[dict]:
    """The issue's CPU targets, one record per CPU row and target."""
    return [{"model": r["model"], "batch": r["batch"], "device": r["device"], "target": text,
             "column": column, "limit": limit, "ratio": r["ratios"][column],
             "pass": r["ratios"][column] <= limit}
            for r in rows if r["device"] == "cpu" for column, limit, text in TARGETS]


def _ratio(r: float) -> str:
    return f"{r:.2f}x" if r < 100 else f"{r:.0f}x"


def table(rows: list[dict], threads: int) -> str:
    """The ratio table, the devices it ran on and the targets with PASS/MISS marks."""
    head = ["model", "batch", "device", "backward ms", *HEADERS]
    body = [[r["model"], str(r["batch"]), r["device"], f"{r['seconds'][BASELINE] * 1e3:.3f}",
             *(_ratio(r["ratios"][c]) for c in COLUMNS)] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
             for line in [head, *body]]
    names = {r["device"]: r["device_name"] for r in rows}
    lines += [f"{d}: {name}" for d, name in names.items()]
    lines.append(f"torch {torch.__version__}, {threads} threads; ratios = time / backward time")
    lines += [f"peak MiB above the held memory, {r['model']} B={r['batch']} {r['device']}: "
              + ", ".join(f"{k} {b / 2**20:.2f}" for k, b in r["peak_bytes"].items())
              for r in rows if r["peak_bytes"] is not None]
    for t in target_checks(rows):
        mark = "PASS" if t["pass"] else "MISS"
        lines.append(f"{mark}  {t['target']}: {t['model']} B={t['batch']} cpu "
                     f"{_ratio(t['ratio'])}")
    return "\n".join(lines)


def plot(rows: list[dict], threads: int, path: Path) -> Path:
    """Grouped bars of the ratios (log scale) per model x batch x device, target lines."""
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(rows)), 5))
    width = 0.8 / len(COLUMNS)
    for i, (column, header) in enumerate(zip(COLUMNS, HEADERS, strict=True)):
        xs = [j + (i - (len(COLUMNS) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r["ratios"][column] for r in rows], width, label=header)
    for limit, text, style in ((1.0, "backward", ":"), (1.5, "diag-EF target 1.5x", "--"),
                               (3.0, "HVP target 3x", "-.")):
        ax.axhline(limit, color="black", linestyle=style, linewidth=1, label=text)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['model']} B={r['batch']}\n{r['device']}" for r in rows])
    ax.set_ylabel("time / plain backward")
    names = ", ".join(sorted({r["device_name"] for r in rows}))
    ax.set_title(f"Curvature estimators vs one batched backward ({names}; torch "
                 f"{torch.__version__}, {threads} CPU threads)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(out: Path, threads: int = 2, quick: bool = False, device: str = "auto") -> int:
    """Run the suite, print the table, write ``estimators.json`` and ``estimators.png``."""
    batches, budget = QUICK if quick else FULL
    with num_threads(threads):
        rows = [bench_row(m, b, d, budget, threads)
                for d in timing.devices(device) for m in MODELS for b in batches]
        checks = target_checks(rows)
        report = fastpath.profile(rows, [t for t in checks if not t["pass"]], model_batch,
                                  budget, threads)
    print(table(rows, threads), flush=True)
    if report:
        print(fastpath.summary(report), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "suite": "estimators",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "python": platform.python_version(), "threads": threads,
        "quick": quick, "budget": {"rounds": budget.rounds, "seconds": budget.budget_s},
        "devices": {r["device"]: r["device_name"] for r in rows},
        "models": {k: m[2] for k, m in MODELS.items()}, "baseline": BASELINE,
        "memory_note": timing.CPU_MEMORY_NOTE, "rows": rows, "targets": checks,
        "fast_path_profile": report,
    }
    paths = [out / "estimators.json", plot(rows, threads, out / "estimators.png")]
    paths[0].write_text(json.dumps(record, indent=2))
    print("\n".join(f"wrote {p}" for p in paths))
    return 0
