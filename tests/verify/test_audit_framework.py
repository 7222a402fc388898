"""The audit machinery decides verdicts from what it finds: planted claims, known answers."""

import numpy as np
from hypothesis import strategies as st

from verify.audits.framework import (
    Claim,
    Hypothesis,
    Relation,
    audit,
    compare,
    predicate,
    undefined,
)

CASES = st.fixed_dictionaries({"n": st.integers(1, 8), "seed": st.integers(0, 2**16)})


def _matrix(case):
    return {"A": np.random.default_rng(case["seed"]).standard_normal((case["n"], case["n"]))}


def _claim(relations, hypotheses=(), nature="mathematical"):
    return Claim(
        "claim:X.planted",
        "planted",
        "planted",
        CASES,
        _matrix,
        relations,
        hypotheses,
        thresholds={"rtol": 1e-8},
        nature=nature,
    )


def test_planted_true_claim_holds():
    trace = Relation(
        "tr A = sum of eigenvalues",
        lambda c: compare(np.trace(c["A"]), np.linalg.eigvals(c["A"]).real.sum(), 1e-8),
    )
    result = audit(_claim([trace]), max_examples=30)
    assert result.verdict == "holds"
    assert result.relations[0].held == result.cases_in_scope == 30
    assert result.relations[0].max_discrepancy < 1e-8


def test_planted_false_claim_is_refuted_with_a_minimal_witness():
    symmetric = Relation("A = A^T", lambda c: compare(c["A"], c["A"].T, 1e-8))
    result = audit(_claim([symmetric]), max_examples=30)
    stats = result.relations[0]
    assert result.verdict == "refuted"
    assert stats.failed > 0 and stats.witness_shrunk
    assert stats.witness["n"] == 2  # n = 1 is always symmetric: 2 is the smallest counterexample
    record = result.as_record()
    assert record["evidence"]["relations"][0]["witness"] == stats.witness
    assert "--seed 0" in record["repro"]


def test_ill_typed_printed_expression_is_recorded_not_decided():
    matrix_for_scalar = Relation(
        "Delta = matrix", lambda c: compare(c["A"], np.trace(c["A"]), 1e-8)
    )
    result = audit(_claim([matrix_for_scalar]), max_examples=10)
    assert result.verdict == "inconclusive"
    assert result.relations[0].undefined == 10
    assert "ill-typed" in next(iter(result.relations[0].reasons))


def test_relation_undefined_on_some_cases_is_decided_on_the_others():
    def inverse(c):
        if c["A"].shape[0] == 1:
            return undefined("scalar case excluded")
        A = c["A"] @ c["A"].T + np.eye(len(c["A"]))
        return compare(np.linalg.inv(A) @ A, np.eye(len(A)), 1e-8)

    result = audit(_claim([Relation("A^-1 A = I", inverse)]), max_examples=40)
    assert result.verdict == "holds"
    assert result.relations[0].undefined > 0 and result.relations[0].held > 0


def test_vacuous_hypotheses_make_the_claim_inconclusive():
    never = Hypothesis("A has a negative dimension", lambda c: c["A"].shape[0] < 0)
    rel = Relation("anything", lambda c: predicate(False, -1.0))
    result = audit(_claim([rel], hypotheses=[never]), max_examples=10)
    assert result.verdict == "inconclusive" and result.cases_in_scope == 0
    assert result.hypotheses == {"A has a negative dimension": 0}


def test_cases_outside_the_hypotheses_are_not_counterexamples():
    spd = Hypothesis("A symmetric", lambda c: np.allclose(c["A"], c["A"].T))
    symmetric = Relation("A = A^T", lambda c: compare(c["A"], c["A"].T, 1e-8))
    result = audit(_claim([symmetric], hypotheses=[spd]), max_examples=30)
    assert result.verdict == "holds"
    assert 0 < result.cases_in_scope < result.cases_tried


def test_qualitative_claims_are_recorded_with_their_numbers():
    rel = Relation("tr A < 1", lambda c: predicate(np.trace(c["A"]) < 1, 1 - np.trace(c["A"])))
    result = audit(_claim([rel], nature="qualitative"), max_examples=10)
    assert result.verdict == "inconclusive" and "qualitative" in result.reason
    assert result.relations[0].held + result.relations[0].failed == 10


def test_a_formula_that_divides_by_zero_is_undefined_on_that_case_not_a_crash():
    def ratio(c):
        n = c["A"].shape[0]
        return compare(1.0 / (n - 1), 1.0 / (n - 1), 1e-8)  # ZeroDivisionError at n = 1

    result = audit(_claim([Relation("1/(n-1) = 1/(n-1)", ratio)]), max_examples=40)
    stats = result.relations[0]
    assert result.verdict == "holds" and stats.undefined > 0 and stats.held > 0
    assert any("ZeroDivisionError" in reason for reason in stats.reasons)
