"""The report: P2 catalogue entries left out are listed with a reason, and the files appear."""

import json

from contract import split_id
from verify import catalogue, report


def test_catalogue_lists_only_unregistered_p2_entries_with_a_reason():
    missing = {m["id"]: m for m in catalogue.not_implemented()}
    for key in catalogue.P2:
        split_id(key)  # every key is a well-formed ID
    assert "rule:fo.lamb" not in missing  # registered P2 entries are not listed
    assert "rule:fo.entropy_sgd" in missing  # catalogue only: no update rule in the source
    assert all(m["status"] == "not implemented" and m["reason"] for m in missing.values())


def test_report_writes_records_summary_and_figures(tmp_path):
    check = {
        "id": "rule:fo.sgd",
        "kind": "rule",
        "status": {"float64": "pass", "float32": "pass"},
        "examples_tried": {"float64": 3, "float32": 3},
        "max_error": {"float64": 1e-16, "float32": 1e-7},
        "tolerance": {"float64": 1e-10, "float32": 1e-4},
        "evidence": {},
        "repro": "python -m verify crosscheck --ids 'rule:fo.sgd'",
    }
    paths = report.write(tmp_path, [check], [], examples=3, seconds=1.0)
    assert all(p.exists() for p in paths)
    records = json.loads((tmp_path / "results.json").read_text())["records"]
    assert {r["id"] for r in records if r["kind"] == "catalogue"} == {
        m["id"] for m in catalogue.not_implemented()
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "## Not implemented (P2 catalogue entries)" in summary
    assert "`rule:fo.entropy_sgd`" in summary and "`rule:fo.sgd`" in summary
    assert {p.name for p in paths} >= {"rosenbrock_paths.png", "iterations_vs_condition.png"}
