"""Claim audits: an executable predicate per printed relation, searched by Hypothesis.

A `Claim` is what a document states, made executable (INVENTORY §0.4 item 4):

- ``cases``: a Hypothesis strategy of *primitive* dictionaries (dimensions, seeds, exponents,
  step sizes) over the search space the claim's own hypotheses imply. Primitive cases keep
  every witness short and reproducible: ``claim.context(case)`` rebuilds the arrays.
- ``hypotheses``: named predicates over the built context. A case that violates one is not
  used for the relations; the counts show that the hypotheses are not vacuous.
- ``relations``: each printed statement, evaluated literally on a context, returning an
  `Evaluation`: it held, it failed (with the discrepancy), or it is undefined there (an
  inverse of a singular matrix, an ill-typed printed expression, whose types and shapes are
  recorded).
- ``thresholds``: every decision threshold, written in the claim before anything runs.

`audit` computes a verdict from what it finds; it never knows an expected answer:
``refuted`` when some relation fails on some case (with a shrunk minimal witness),
``inconclusive`` when no relation fails but one is nowhere defined, the hypotheses are
vacuous, or the claim is qualitative, ``holds`` otherwise (no counterexample in the cases
searched, with the largest discrepancy seen as evidence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from verify.profiles import search

Case = Mapping[str, Any]
Context = Mapping[str, Any]

NEVER = "qualitative"  # a claim of this nature gets `inconclusive` with its reason
# Errors a printed formula can raise on a legitimate case (0/0, a singular solve): recorded
# as "undefined there", never a crash of the audit.
NUMERICAL_ERRORS = (ArithmeticError, ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one printed relation on one case.

    ``ok`` is True (held), False (failed) or None (undefined here: see ``detail``).
    ``discrepancy`` is the relative gap for equalities, the margin for inequalities.
    """

    ok: bool | None
    discrepancy: float = math.nan
    detail: Mapping[str, Any] = field(default_factory=dict)


def describe(value: Any) -> str:
    """The type and shape of a literally evaluated expression, e.g. ``ndarray(3, 3)``."""
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape}" if value.ndim else "scalar"
    if isinstance(value, int | float | np.floating | np.integer):
        return "scalar"
    return type(value).__name__


def compare(lhs: Any, rhs: Any, rtol: float) -> Evaluation:
    """Literal equality of two printed expressions, to relative tolerance ``rtol``.

    Shapes are compared first: a matrix printed where a scalar stands is recorded as
    ill-typed (``ok=None``), not silently reduced. The discrepancy is
    ``||lhs - rhs|| / max(||lhs||, ||rhs||)`` (0 when both vanish).
    """
    left, right = np.asarray(lhs, dtype=float), np.asarray(rhs, dtype=float)
    detail = {"lhs": describe(lhs), "rhs": describe(rhs)}
    if left.shape != right.shape:
        return Evaluation(None, math.nan, {**detail, "undefined": "ill-typed: shapes differ"})
    if not (np.all(np.isfinite(left)) and np.all(np.isfinite(right))):
        return Evaluation(None, math.nan, {**detail, "undefined": "non-finite value"})
    scale = max(float(np.linalg.norm(left)), float(np.linalg.norm(right)))
    gap = float(np.linalg.norm(left - right))
    discrepancy = 0.0 if scale == 0.0 else gap / scale
    return Evaluation(discrepancy <= rtol, discrepancy, detail)


def predicate(holds: bool, margin: float, **detail: Any) -> Evaluation:
    """An inequality or qualitative predicate; ``margin`` is the signed slack recorded."""
    return Evaluation(bool(holds), float(margin), detail)


def undefined(reason: str, **detail: Any) -> Evaluation:
    """The relation cannot be evaluated on this case (say why)."""
    return Evaluation(None, math.nan, {"undefined": reason, **detail})


@dataclass(frozen=True)
class Relation:
    """One printed statement; ``check(context) -> Evaluation``."""

    name: str
    check: Callable[[Context], Evaluation]


@dataclass(frozen=True)
class Hypothesis:
    """One stated hypothesis of the claim; ``check(context) -> bool``."""

    name: str
    check: Callable[[Context], bool]


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    cases: st.SearchStrategy
    context: Callable[[Case], Context]
    relations: Sequence[Relation]
    hypotheses: Sequence[Hypothesis] = ()
    thresholds: Mapping[str, Any] = field(default_factory=dict)  # numbers or formulas
    examples: Sequence[Case] = ()
    nature: str = "mathematical"  # or NEVER ("qualitative") / "record"
    note: str = ""


@dataclass
class RelationStats:
    name: str
    tried: int = 0
    held: int = 0
    failed: int = 0
    undefined: int = 0
    max_discrepancy: float = 0.0
    min_discrepancy: float = math.inf
    types: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    first_failure: Case | None = None
    witness: Case | None = None
    witness_shrunk: bool = False
    witness_detail: Mapping[str, Any] | None = None

    def add(self, case: Case, ev: Evaluation) -> None:
        self.tried += 1
        self.types = {k: v for k, v in ev.detail.items() if k in ("lhs", "rhs")} or self.types
        if ev.ok is None:
            self.undefined += 1
            reason = str(ev.detail.get("undefined", "undefined"))
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            return
        if math.isfinite(ev.discrepancy):
            self.max_discrepancy = max(self.max_discrepancy, ev.discrepancy)
            self.min_discrepancy = min(self.min_discrepancy, ev.discrepancy)
        if ev.ok:
            self.held += 1
        else:
            self.failed += 1
            if self.first_failure is None:
                self.first_failure = dict(case)

    def as_json(self) -> dict[str, Any]:
        return {
            "relation": self.name,
            "tried": self.tried,
            "held": self.held,
            "failed": self.failed,
            "undefined": self.undefined,
            "undefined_reasons": self.reasons,
            "max_discrepancy": _finite_or_none(
                self.max_discrepancy if self.held + self.failed else math.nan
            ),
            "min_discrepancy": _finite_or_none(self.min_discrepancy),
            "printed_types": self.types,
            "witness": self.witness,
            "witness_shrunk": self.witness_shrunk,
            "witness_detail": _jsonable(self.witness_detail),
        }


@dataclass
class AuditResult:
    claim: Claim
    verdict: str
    reason: str
    cases_tried: int
    cases_in_scope: int
    hypotheses: dict[str, int]
    relations: list[RelationStats]
    seed: int

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.claim.id,
            "kind": "claim",
            "verdict": self.verdict,
            "reason": self.reason,
            "source": self.claim.source,
            "statement": self.claim.statement,
            "examples_tried": self.cases_tried,
            "evidence": {
                "cases_satisfying_all_hypotheses": self.cases_in_scope,
                "hypotheses_satisfied": self.hypotheses,
                "thresholds": dict(self.claim.thresholds),
                "relations": [r.as_json() for r in self.relations],
                "note": self.claim.note,
            },
            "repro": f"python -m verify audit --ids '{self.claim.id}' --seed {self.seed}",
        }


def audit(claim: Claim, max_examples: int = 100, seed_value: int = 0) -> AuditResult:
    """Search ``claim.cases`` for counterexamples and return the verdict with its evidence."""
    stats = [RelationStats(r.name) for r in claim.relations]
    hyp_counts = {h.name: 0 for h in claim.hypotheses}
    counts = {"tried": 0, "in_scope": 0}

    def visit(case: Case) -> None:
        counts["tried"] += 1
        try:
            ctx = claim.context(case)
            satisfied = [h.check(ctx) for h in claim.hypotheses]
        except NUMERICAL_ERRORS as error:
            for stat in stats:
                stat.add(case, _failed_to_evaluate(error))
            return
        for h, ok in zip(claim.hypotheses, satisfied, strict=True):
            hyp_counts[h.name] += int(ok)
        if not all(satisfied):
            return
        counts["in_scope"] += 1
        for rel, stat in zip(claim.relations, stats, strict=True):
            stat.add(case, _evaluate(rel, ctx))

    for case in claim.examples:
        visit(case)
    search(claim.cases, visit, max_examples, seed_value, shrink=False)
    for rel, stat in zip(claim.relations, stats, strict=True):
        if stat.failed:
            _shrink_witness(claim, rel, stat, max_examples)
    verdict, reason = _verdict(claim, stats, counts["in_scope"])
    return AuditResult(
        claim, verdict, reason, counts["tried"], counts["in_scope"], hyp_counts, stats, seed_value
    )


def _evaluate(relation: Relation, ctx: Context) -> Evaluation:
    """``relation.check(ctx)``; a numerical error (a division by zero in a printed formula)
    makes the relation undefined on this case, with the error recorded as the reason."""
    try:
        return relation.check(ctx)
    except NUMERICAL_ERRORS as error:
        return _failed_to_evaluate(error)


def _failed_to_evaluate(error: Exception) -> Evaluation:
    return undefined(f"not evaluable: {type(error).__name__}: {error}")


def _fails(claim: Claim, relation: Relation, case: Case) -> bool:
    try:
        ctx = claim.context(case)
        if not all(h.check(ctx) for h in claim.hypotheses):
            return False
    except NUMERICAL_ERRORS:
        return False
    return _evaluate(relation, ctx).ok is False


def _shrink_witness(claim: Claim, relation: Relation, stat: RelationStats, n: int) -> None:
    """A minimal failing case by Hypothesis shrinking; the first failure seen if none is found."""
    try:
        witness = find(
            claim.cases,
            lambda case: _fails(claim, relation, case),
            settings=settings(
                max_examples=max(n, 50),
                phases=[Phase.generate, Phase.shrink],
                database=None,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )
        stat.witness, stat.witness_shrunk = dict(witness), True
    except NoSuchExample:
        stat.witness, stat.witness_shrunk = stat.first_failure, False
    ev = _evaluate(relation, claim.context(stat.witness))
    stat.witness_detail = {"discrepancy": ev.discrepancy, **ev.detail}


def _verdict(claim: Claim, stats: list[RelationStats], in_scope: int) -> tuple[str, str]:
    if claim.nature != "mathematical":
        return "inconclusive", f"{claim.nature} statement: recorded, not decidable by computation"
    if in_scope == 0:
        return "inconclusive", "no searched case satisfied every hypothesis"
    failed = [s.name for s in stats if s.failed]
    if failed:
        return "refuted", f"counterexamples to {len(failed)} of {len(stats)} relation(s): {failed}"
    never = [s.name for s in stats if s.held == 0]
    if never:
        return "inconclusive", f"relation(s) nowhere defined on the cases searched: {never}"
    return "holds", f"no counterexample in {in_scope} case(s) to any of {len(stats)} relation(s)"


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
