"""Registries keyed by INVENTORY IDs; variants are addressed as ``<ID>[<variant>]``."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_ID = re.compile(
    r"^(?P<base>(rule|est|prob|claim):[A-Za-z0-9_.]+)(\[(?P<variant>[A-Za-z0-9_]+)\])?$"
)


def split_id(key: str) -> tuple[str, str | None]:
    """``"rule:uv.diag_ngd[normalized]" -> ("rule:uv.diag_ngd", "normalized")``."""
    match = _ID.match(key)
    if match is None:
        raise ValueError(
            f"malformed ID {key!r}: expected '<kind>:<name>' or '<kind>:<name>[<variant>]' "
            "with kind in rule, est, prob, claim (INVENTORY §0.2)"
        )
    return match["base"], match["variant"]


class Registry(Generic[T]):
    """A mapping from ID to entry; the ID alone names the default variant (INVENTORY §0.4)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, key: str, entry: T) -> T:
        split_id(key)
        if key in self._entries:
            raise ValueError(f"{self.kind} registry: {key!r} is registered twice")
        self._entries[key] = entry
        return entry

    def get(self, key: str) -> T:
        split_id(key)
        try:
            return self._entries[key]
        except KeyError:
            close = difflib.get_close_matches(key, self._entries, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise KeyError(f"no {self.kind} registered as {key!r}{hint}") from None

    def ids(self, pattern: str = "*") -> list[str]:
        """Registered keys matching the glob ``pattern``, sorted.

        A registered key matches itself even though ``[variant]`` reads as a glob class.
        """
        if pattern in self._entries:
            return [pattern]
        return sorted(k for k in self._entries if fnmatch.fnmatchcase(k, pattern))

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self._entries)
