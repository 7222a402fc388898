"""The command line: ``python -m verify {crosscheck,audit,report} [--ids GLOB] [--json PATH]``
and ``python -m verify bench SUITE [--out DIR] [--threads N] [--quick] [--device D]``.

- ``crosscheck``: reference vs torch mirror for every matching rule, estimator and problem,
  in float64 and float32; ``--case JSON`` replays one (shrunk) case.
- ``audit``: every matching claim, with verdict and evidence.
- ``report``: both, then ``reports/verify/results.json``, ``summary.md`` and plots.
- ``bench``: a benchmark suite of `verify.bench` (``estimators``): a ratio table, JSON and a
  plot under ``reports/bench/``.

The example budget comes from the Hypothesis profile (``HYPOTHESIS_PROFILE``: dev, ci,
thorough) unless ``--examples`` is given. Exit status 1 when a cross-check fails or a
registered reference entry has no mirror; a claim's verdict never changes the exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from verify import profiles
from verify.bench import SUITES

DEFAULT_OUT = Path("reports/verify")
BENCH_OUT = Path("reports/bench")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(2)
    examples = args.examples or profiles.max_examples()
    return args.command(args, examples)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True)
    for name, command, text in (
        ("crosscheck", _crosscheck, "reference vs torch for every matching ID"),
        ("audit", _audit, "audit every matching claim"),
        ("report", _report, "cross-checks + audits, written to reports/verify/"),
    ):
        p = sub.add_parser(name, help=text)
        p.set_defaults(command=command)
        p.add_argument("--ids", default="*", help="glob over IDs, e.g. 'rule:uv.*' (default: all)")
        p.add_argument("--json", type=Path, help="also write the records as JSON here")
        p.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
        p.add_argument("--examples", type=int, help="cases per ID (default: from the profile)")
    for p in sub.choices["crosscheck"], sub.choices["report"]:
        p.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    sub.choices["crosscheck"].add_argument("--case", type=json.loads, help="replay one case (JSON)")
    sub.choices["report"].add_argument("--out", type=Path, default=DEFAULT_OUT)
    _bench_parser(sub)
    return parser


def _bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="a benchmark suite: ratio table, JSON and plot")
    p.set_defaults(command=_bench, examples=None)
    p.add_argument("suite", choices=sorted(SUITES), help="the suite to run")
    p.add_argument("--out", type=Path, default=BENCH_OUT, help=f"default {BENCH_OUT}")
    p.add_argument("--threads", type=_positive, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--quick", action="store_true", help="fewer repeats, batch 32 only")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the CPU, and the GPU when CUDA is available")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _bench(args: argparse.Namespace, examples: int) -> int:
    return SUITES[args.suite](args.out, args.threads, args.quick, args.device)


def _dtypes(args: argparse.Namespace) -> tuple[str, ...]:
    return ("float64", "float32") if args.dtype == "both" else (args.dtype,)


def crosscheck_records(
    args: argparse.Namespace, examples: int
) -> tuple[list[dict[str, Any]], bool]:
    """Run the cross-checks, print a line per ID and dtype; (records, all passed)."""
    from verify import crosscheck

    gaps = crosscheck.missing(args.ids)
    for key, what in gaps:
        print(f"MISSING  {key}: {what}", flush=True)
    by_id: dict[str, dict[str, Any]] = {}
    ok = not gaps
    for result in crosscheck.run(
        args.ids, _dtypes(args), examples, args.seed, getattr(args, "case", None)
    ):
        ok &= result.passed
        print(_line(result), flush=True)
        if not result.passed:
            print(f"         {result.message}\n         reproduce: {result.repro()}", flush=True)
        record = by_id.setdefault(result.id, _crosscheck_record(result))
        record["status"][result.dtype] = "pass" if result.passed else "fail"
        record["examples_tried"][result.dtype] = result.examples
        record["max_error"][result.dtype] = result.max_error
        record["tolerance"][result.dtype] = result.tolerance
        record["evidence"][result.dtype] = _evidence(result)
        if not result.passed:
            record["repro"] = result.repro()
    return list(by_id.values()), ok


def audit_records(args: argparse.Namespace, examples: int) -> list[dict[str, Any]]:
    """Audit every matching claim, printing a line per claim; the records."""
    from verify import audits
    from verify.audits.framework import audit

    records = []
    for key in audits.ids(args.ids):
        start = time.perf_counter()
        result = audit(audits.get(key), examples, args.seed)
        record = result.as_record()
        record["seconds"] = round(time.perf_counter() - start, 2)
        records.append(record)
        print(
            f"{result.verdict:<12} {key:<34} {record['seconds']:>6.1f}s  {result.reason}",
            flush=True,
        )
    return records


def _crosscheck(args: argparse.Namespace, examples: int) -> int:
    records, ok = crosscheck_records(args, examples)
    _write_json(args.json, records)
    return 0 if ok else 1


def _audit(args: argparse.Namespace, examples: int) -> int:
    _write_json(args.json, audit_records(args, examples))
    return 0


def _report(args: argparse.Namespace, examples: int) -> int:
    from verify import report

    start = time.perf_counter()
    checks, ok = crosscheck_records(args, examples)
    claims = audit_records(args, examples)
    paths = report.write(args.out, checks, claims, examples, time.perf_counter() - start)
    _write_json(args.json, checks + claims)
    print("\n".join(f"wrote {p}" for p in paths))
    return 0 if ok else 1


def _crosscheck_record(result: Any) -> dict[str, Any]:
    return {
        "id": result.id,
        "kind": result.kind,
        "status": {},
        "examples_tried": {},
        "max_error": {},
        "tolerance": {},
        "evidence": {},
        "repro": f"python -m verify crosscheck --ids '{result.id}'",
    }


def _evidence(result: Any) -> dict[str, Any]:
    evidence = {"seconds": round(result.seconds, 2), "note": result.note}
    if not result.passed:
        evidence.update(witness=result.witness, message=result.message)
    return evidence


def _line(result: Any) -> str:
    status = "pass" if result.passed else "FAIL"
    return (
        f"{status:<8} {result.id:<40} {result.dtype:<8} n={result.examples:<4} "
        f"max err {result.max_error:.2e} (tol {result.tolerance:.1e})  {result.seconds:.1f}s"
    )


def _write_json(path: Path | None, records: list[dict[str, Any]]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=2, default=_json_default))
        print(f"wrote {path}", file=sys.stderr)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
