"""Cross-check settings of `rule:zo.*` (see `verify.crosscheck.families`)."""

from __future__ import annotations

from verify.crosscheck.families import Setting

SETTINGS: dict[str, Setting] = {"rule:zo.*": Setting()}
