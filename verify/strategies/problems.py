"""Builder-option strategies of the problems added for the fo/zo/so families."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {}
