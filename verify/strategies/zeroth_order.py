"""Hyperparameter strategies of the `rule:zo.*` family (see `verify.strategies.families`)."""

from __future__ import annotations

from hypothesis import strategies as st

HYPER: dict[str, st.SearchStrategy] = {}
