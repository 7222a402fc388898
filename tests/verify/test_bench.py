"""The benchmark machinery (`verify.bench`): the quick estimator suite on the CPU through the
command line, its JSON schema and table, the fast-path profile and the timing helpers. No test
asserts a speed target: timings depend on the machine and its load."""

import contextlib
import io
import json
import math
import statistics

import pytest
import torch

from verify import cli
from verify.bench import SUITES, estimators, fastpath, timing

CANDIDATES = ("backward", *estimators.COLUMNS)
ROW_KEYS = {"model", "batch", "device", "device_name", "parameters", "seconds", "round_seconds",
            "runs_per_round", "ratios", "hvp_vs_func_grad", "peak_bytes", "agreement"}


def _positive_finite(x: float) -> bool:
    return math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out, printed = tmp_path_factory.mktemp("bench"), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(printed):
            rc = cli.main(["bench", "estimators", "--quick", "--device", "cpu", "--threads",
                           "1", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    return rc, out, printed.getvalue()


def test_quick_suite_writes_the_json_schema(quick_run):
    rc, out, _ = quick_run
    assert rc == 0
    record = json.loads((out / "estimators.json").read_text())
    assert {"date", "torch", "threads", "devices", "models", "rows", "targets",
            "memory_note", "fast_path_profile"} <= set(record)
    assert record["threads"] == 1 and record["quick"] is True
    assert record["devices"] == {"cpu": timing.device_name("cpu")}
    rows = record["rows"]
    assert [(r["model"], r["batch"]) for r in rows] == [("mlp", 32), ("cnn", 32)]
    rounds = estimators.QUICK[1].rounds
    for r in rows:
        assert set(r) == ROW_KEYS and r["device"] == "cpu" and r["peak_bytes"] is None
        assert set(r["seconds"]) == set(CANDIDATES)
        assert all(_positive_finite(s) for s in r["seconds"].values()), r["seconds"]
        assert all(len(t) == rounds for t in r["round_seconds"].values())
        assert all(r["seconds"][k] == statistics.median(t) for k, t in r["round_seconds"].items())
        assert set(r["ratios"]) == set(estimators.COLUMNS)
        assert all(_positive_finite(x) for x in r["ratios"].values()), r["ratios"]
        for k in estimators.COLUMNS:
            assert r["ratios"][k] == pytest.approx(r["seconds"][k] / r["seconds"]["backward"])
        # float32: the timed calls computing the same quantity agree to rounding
        assert all(e < 1e-4 for e in r["agreement"].values()), r["agreement"]
    assert len(record["targets"]) == len(rows) * len(estimators.TARGETS)
    assert all(t["pass"] == (t["ratio"] <= t["limit"]) for t in record["targets"])
    assert (out / "estimators.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_names_the_device_and_marks_every_cpu_target(quick_run):
    _, out, printed = quick_run
    record = json.loads((out / "estimators.json").read_text())
    text = estimators.table(record["rows"], record["threads"])
    assert text in printed and f"cpu: {timing.device_name('cpu')}" in text
    marks = [line for line in text.splitlines() if line.startswith(("PASS", "MISS"))]
    assert len(marks) == len(record["targets"])
    gpu = dict(record["rows"][0], device="cuda", device_name="Some GPU",
               peak_bytes={k: 3 * 2**20 for k in CANDIDATES})
    text = estimators.table([gpu], record["threads"])
    assert "cuda: Some GPU" in text and "mlp B=32 cuda: backward 3.00" in text
    assert not any(line.startswith(("PASS", "MISS")) for line in text.splitlines())


def test_profile_covers_only_the_cpu_rows_that_miss_a_target():
    rows = [{"model": m, "batch": 4, "device": "cpu"} for m in ("cnn", "mlp")]
    missed = [{"model": "cnn", "batch": 4, "device": "cpu"},
              {"model": "mlp", "batch": 4, "device": "cuda"}]
    report = fastpath.profile(rows, missed, estimators.model_batch, timing.Budget(1, 1e-3), 1)
    assert [(r["model"], r["batch"]) for r in report] == [("cnn", 4)]
    (r,) = report
    assert set(r["seconds"]) == {"forward", "backward", "hooked_backward", "engine_loss",
                                 "unfold", "collect", "diag_ef_fast", "autograd_hvp"}
    assert all(_positive_finite(s) for s in r["seconds"].values())
    assert r["ratios"]["backward"] == 1.0
    assert "cnn B=4" in fastpath.summary(report)


def test_plain_stages_compute_what_the_engine_computes():
    mb = estimators.model_batch("mlp", 5, "cpu")
    fns, params = fastpath.stages(mb), dict(mb.module.named_parameters())
    layers = fastpath.C.collect(params, mb)
    for s, layer in zip(fns["hooked_backward"](), layers, strict=True):
        torch.testing.assert_close(s, layer.stats["s"], rtol=1e-5, atol=1e-6)
    gen = torch.Generator().manual_seed(2)  # the stages' v
    v = {k: torch.randn(p.shape, generator=gen) for k, p in params.items()}
    Hv = fastpath.C.hvp(params, mb, v)
    for got, k in zip(fns["autograd_hvp"](), params, strict=True):
        torch.testing.assert_close(got, Hv[k], rtol=1e-4, atol=1e-6)


def test_measure_is_the_median_of_interleaved_rounds():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    result = timing.measure(fns, timing.Budget(rounds=5, budget_s=1e-9), "cpu", 1)
    warm = 2 * (1 + timing.SIZING_RUNS)
    assert calls[warm:] == ["a", "b"] * 5  # one run per round, interleaved
    for t in result.values():
        assert t.runs_per_round == 1 and len(t.rounds) == 5
        assert t.seconds == statistics.median(t.rounds)


def test_devices_and_cli_choices():
    assert timing.devices("cpu") == ["cpu"]
    assert timing.devices("auto")[0] == "cpu"
    with pytest.raises(ValueError, match="Invalid device: 'tpu'"):
        timing.devices("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            timing.devices("cuda")
    assert set(SUITES) == {"estimators"}
    with pytest.raises(SystemExit):
        cli.main(["bench", "no_such_suite"])
