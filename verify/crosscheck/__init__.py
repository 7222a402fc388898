"""Cross-check every registered ID: reference vs torch mirror, float64 and float32."""

from __future__ import annotations

from collections.abc import Iterator

import reference
import torchimpl
from verify.crosscheck import estimators, problems, rules
from verify.crosscheck.engine import DTYPES, CheckResult, Mirror, check

LAYERS = {
    "rule": (reference.rules, torchimpl.rules, rules.mirror),
    "estimator": (reference.estimators, torchimpl.estimators, estimators.mirror),
    "problem": (reference.problems, torchimpl.problems, problems.mirror),
}


def registered(pattern: str = "*") -> list[tuple[str, str]]:
    """(kind, id) of every reference entry matching ``pattern``."""
    return [(kind, key) for kind, (ref, _, _) in LAYERS.items() for key in ref.ids(pattern)]


def mirror_for(kind: str, key: str) -> Mirror:
    ref, _, make = LAYERS[kind]
    return make(key, ref.get(key))


def missing(pattern: str = "*") -> list[tuple[str, str]]:
    """(id, what is missing) for reference IDs without a torch mirror or a cross-check."""
    gaps = []
    for kind, key in registered(pattern):
        ref, twin, make = LAYERS[kind]
        if key not in twin.REGISTRY:
            gaps.append((key, f"no torch mirror in {twin.__name__}"))
        elif make(key, ref.get(key)) is None:
            gaps.append((key, "no cross-check case in verify.crosscheck"))
    return gaps


def run(
    pattern: str = "*",
    dtypes: tuple[str, ...] = DTYPES,
    max_examples: int = 50,
    seed: int = 0,
    case: dict | None = None,
) -> Iterator[CheckResult]:
    """Cross-check every ID matching ``pattern`` in each dtype."""
    gaps = {key for key, _ in missing(pattern)}
    for kind, key in registered(pattern):
        if key in gaps:
            continue
        ref, twin, _ = LAYERS[kind]
        for dtype in dtypes:
            yield check(
                key,
                mirror_for(kind, key),
                ref.get(key),
                twin.get(key),
                dtype,
                max_examples,
                seed,
                case,
            )


__all__ = ["DTYPES", "CheckResult", "check", "missing", "registered", "run"]
