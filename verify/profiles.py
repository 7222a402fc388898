"""Hypothesis profiles: ``dev`` (fast), ``ci`` (``nox -s tests``), ``thorough`` (``nox -s verify``).

``ci`` is derandomized (the same cases on every run, so a CI verdict is reproducible from the
commit alone); ``dev`` and ``thorough`` draw fresh cases each run and print the blob to replay.

Selected by the environment variable ``HYPOTHESIS_PROFILE`` (default ``dev``). The example
budget of every cross-check and audit comes from the active profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings

PROFILES = {"dev": 15, "ci": 40, "thorough": 200}


def register() -> None:
    for name, examples in PROFILES.items():
        settings.register_profile(
            name,
            max_examples=examples,
            derandomize=name == "ci",
            deadline=None,
            print_blob=True,
            verbosity=Verbosity.normal,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def max_examples() -> int:
    """The example budget of the active profile."""
    return settings().max_examples


register()


def search(strategy, visit, n: int, seed_value: int, shrink: bool) -> None:
    """Call ``visit`` on ``n`` cases of ``strategy``, reproducibly from ``seed_value``.

    With ``shrink``, an exception raised by ``visit`` is shrunk to a minimal case (which
    Hypothesis replays last) and re-raised; without it, every case is only visited once.
    """
    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def run(case) -> None:
        visit(case)

    run()
