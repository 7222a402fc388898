"""Cross-check cases for problems (filled in when the problems land)."""

from __future__ import annotations

from typing import Any

from verify.crosscheck.engine import Mirror


def mirror(key: str, ref_entry: Any) -> Mirror | None:
    return None
