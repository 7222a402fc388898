"""Hypothesis profiles: ``dev`` (fast), ``ci`` (``nox -s tests``), ``thorough`` (``nox -s verify``).

Selected by the environment variable ``HYPOTHESIS_PROFILE`` (default ``dev``). The example
budget of every cross-check and audit comes from the active profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Verbosity, settings

PROFILES = {"dev": 15, "ci": 40, "thorough": 200}


def register() -> None:
    for name, examples in PROFILES.items():
        settings.register_profile(
            name,
            max_examples=examples,
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
