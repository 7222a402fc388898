"""Cross-check settings of the Adam-family `rule:fo.*` rules (see `verify.crosscheck.families`)."""

from __future__ import annotations

from verify.crosscheck.families import Setting

SETTINGS: dict[str, Setting] = {}
