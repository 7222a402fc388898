"""``reports/verify/``: ``results.json`` (one record per ID), ``summary.md`` and plots."""

from __future__ import annotations

import json
import math
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from verify import catalogue, plots


def write(
    out: Path,
    checks: list[dict[str, Any]],
    claims: list[dict[str, Any]],
    examples: int,
    seconds: float,
) -> list[Path]:
    """Write the JSON, the Markdown summary and the plots; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "examples_per_id": examples,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    missing = catalogue.not_implemented()
    results = out / "results.json"
    records = _finite(checks + claims + missing)
    results.write_text(json.dumps({"meta": meta, "records": records}, indent=2, allow_nan=False))
    figures = plots.write_all(out, checks, claims)
    summary = out / "summary.md"
    summary.write_text(_summary(meta, checks, claims, missing, [f.name for f in figures]))
    return [results, summary, *figures]


def _summary(
    meta: dict, checks: list[dict], claims: list[dict], missing: list[dict], figures: list[str]
) -> str:
    verdicts = Counter(c["verdict"] for c in claims)
    failing = [c for c in checks if "fail" in c["status"].values()]
    lines = [
        "# Verification report",
        "",
        f"Generated {meta['generated']} in {meta['seconds']} s; "
        f"{meta['examples_per_id']} Hypothesis cases per ID; "
        + f"torch {meta['torch']}, NumPy {meta['numpy']}, Python {meta['python']}.",
        "",
        "How to read it: a **cross-check** runs the NumPy definition and the torch mirror of one "
        "ID on identical inputs; `pass` means every case agreed within the tolerance (float64: "
        "1e-10 relative; float32: the documented bound against the float64 baseline). A "
        "**claim** verdict is computed, never expected: `holds` (no counterexample among the "
        "cases searched), `refuted` (a minimal witness is given), `inconclusive` (with why). "
        "Every row has a command that reproduces it.",
        "",
        f"Cross-checks: {len(checks) - len(failing)} of {len(checks)} IDs pass in every dtype. "
        f"Claims: {dict(verdicts)}.",
        "",
        "## Cross-checks",
        "",
        "| ID | kind | float64 | float32 | max error f64 / f32 | cases |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        err = " / ".join(_fmt(c["max_error"].get(d)) for d in ("float64", "float32"))
        n = sum(c["examples_tried"].values())
        lines.append(
            f"| `{c['id']}` | {c['kind']} | {c['status'].get('float64', '-')} | "
            f"{c['status'].get('float32', '-')} | {err} | {n} |"
        )
    lines += [
        "",
        "## Claims",
        "",
        "| ID | verdict | why | cases | reproduce |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        lines.append(
            f"| `{c['id']}` | **{c['verdict']}** | {_cell(c['reason'])} | {c['examples_tried']} | "
            f"`{c['repro']}` |"
        )
    lines += ["", "## Witnesses of refuted relations", ""]
    for c in claims:
        for rel in c["evidence"]["relations"]:
            if rel["failed"]:
                lines.append(
                    f"- `{c['id']}` — {_cell(rel['relation'])}: "
                    f"failed {rel['failed']}/{rel['tried']}, "
                    + f"max discrepancy {_fmt(rel['max_discrepancy'])}; minimal case "
                    f"`{json.dumps(rel['witness'], sort_keys=True)}`"
                )
    lines += ["", "## Not implemented (P2 catalogue entries)", ""]
    lines += [f"- `{m['id']}`: {m['reason']}" for m in missing] or ["- none"]
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.1e}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (strict JSON has no inf/NaN)."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _finite(value.item())
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value
