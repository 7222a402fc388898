"""Cross-check settings of `rule:fo.*` (see `verify.crosscheck.families`)."""

from __future__ import annotations

from verify.crosscheck.families import Setting

SETTINGS: dict[str, Setting] = {"rule:fo.*": Setting()}
