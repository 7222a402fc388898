"""Hyperparameter strategies of the Adam-family `rule:fo.*` rules (merged into the fo pool)."""

from __future__ import annotations

from hypothesis import strategies as st

HYPER: dict[str, st.SearchStrategy] = {}
