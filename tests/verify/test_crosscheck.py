"""The cross-check machinery: completeness of the registries, and a planted bug is caught."""

import json

import pytest

import reference
import torchimpl
from contract import Rule
from verify import crosscheck
from verify.cli import main
from verify.crosscheck.engine import check

NEWTON = "rule:uv.newton"


def test_every_reference_entry_has_a_torch_mirror_and_a_crosscheck():
    assert reference.rules.ids() and reference.estimators.ids() and reference.problems.ids()
    assert crosscheck.missing() == []


def test_every_torch_entry_has_a_reference_definition():
    for kind in ("rules", "estimators", "problems"):
        extra = set(getattr(torchimpl, kind).ids()) - set(getattr(reference, kind).ids())
        assert not extra, f"torch {kind} without a reference definition: {sorted(extra)}"


def _sign_flipped(rule: Rule) -> Rule:
    def update(*args, **hyper):
        updates, state = rule.update(*args, **hyper)
        return {k: -v for k, v in updates.items()}, state

    return Rule(rule.id, rule.init, update, rule.hyper)


def test_a_mirror_with_a_sign_error_is_caught_with_a_replayable_witness():
    mirror = crosscheck.mirror_for("rule", NEWTON)
    ref, good = reference.rules.get(NEWTON), torchimpl.rules.get(NEWTON)
    bad = check(NEWTON, mirror, ref, _sign_flipped(good), "float64", max_examples=20)
    assert not bad.passed and bad.witness is not None
    assert bad.max_error > 1.0  # a flipped direction is 2x off, whatever the case
    assert f"--case '{json.dumps(bad.witness, sort_keys=True)}'" in bad.repro()
    replay_good = check(NEWTON, mirror, ref, good, "float64", case=bad.witness)
    replay_bad = check(NEWTON, mirror, ref, _sign_flipped(good), "float64", case=bad.witness)
    assert replay_good.passed and not replay_bad.passed


def test_float32_mirror_is_compared_against_the_float64_reference():
    mirror = crosscheck.mirror_for("rule", NEWTON)
    result = check(
        NEWTON,
        mirror,
        reference.rules.get(NEWTON),
        torchimpl.rules.get(NEWTON),
        "float32",
        max_examples=10,
    )
    assert result.passed and 0 < result.max_error < result.tolerance


def test_cli_replays_one_case_and_writes_its_record(tmp_path, capsys):
    case = {
        "curvature": {"n": 3, "seed": 5, "kind": "pd", "lo": -1.0, "hi": 1.0, "rotated": True},
        "hyper": {"alpha": 0.5, "curv": "user", "damping": 0.0, "singular": "raise"},
        "steps": 2,
    }
    out = tmp_path / "r.json"
    code = main(
        [
            "crosscheck",
            "--ids",
            NEWTON,
            "--dtype",
            "float64",
            "--case",
            json.dumps(case),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    record = json.loads(out.read_text())[0]
    assert record["id"] == NEWTON and record["status"] == {"float64": "pass"}
    assert "pass" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float16", "int"])
def test_unknown_dtype_is_rejected(dtype):
    mirror = crosscheck.mirror_for("rule", NEWTON)
    with pytest.raises(ValueError, match="dtype must be one of"):
        check(NEWTON, mirror, None, None, dtype)
