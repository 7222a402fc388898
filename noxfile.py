"""Sessions: ``tests`` (pytest, Hypothesis profile ``ci``), ``verify`` (the full sweep,
profile ``thorough``), ``lint`` (ruff), ``bench`` (the estimator benchmark, not run by default).
Every session installs with ``constraints.txt``, which pins the local CPU build of torch."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")


def _install(session: nox.Session, extra: str = "") -> None:
    session.install(*CONSTRAINTS, f".{extra}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite: every layer, the cross-checks and the audit machinery."""
    _install(session, "[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "ci", "OMP_NUM_THREADS": "2"},
    )


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """Cross-check every registry ID, audit every claim, write reports/verify/."""
    _install(session)
    session.run(
        "python",
        "-m",
        "verify",
        "report",
        *session.posargs,
        env={"HYPOTHESIS_PROFILE": "thorough", "OMP_NUM_THREADS": "2"},
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Time the curvature estimators against one backward (CPU, and the GPU when present),
    write reports/bench/; options after ``--`` go to ``python -m verify bench estimators``."""
    _install(session)
    session.run(
        "python",
        "-m",
        "verify",
        "bench",
        "estimators",
        *session.posargs,
        env={"OMP_NUM_THREADS": "2"},
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
