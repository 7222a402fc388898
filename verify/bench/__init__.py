"""Benchmarks (``python -m verify bench <suite>``, ``nox -s bench``): costs as ratios measured
in one run, with the device named (DESIGN "Benchmarks"; INVENTORY §3.10 est:timing).

``SUITES`` maps a suite name to ``run(out, threads=2, quick=False, device="auto") -> exit
status``; each suite prints its table and writes JSON and a PNG under ``out``. The suites are
imported when run, so the other ``verify`` sub-commands never import them.
"""

from __future__ import annotations

from pathlib import Path


def run_estimators(out: Path, threads: int = 2, quick: bool = False, device: str = "auto") -> int:
    """The curvature estimators vs one batched backward (`verify.bench.estimators`)."""
    from verify.bench.estimators import run

    return run(out, threads, quick, device)


SUITES = {"estimators": run_estimators}
