"""The per-ID registration data both layers share: ID -> `Spec` (pure Python, stdlib only).

"Same ID, same hyperparameter names, same defaults in both layers" (DESIGN.md) is written
once here; each layer's rule module registers ``Rule(key, init, update, spec.hyper, spec.doc)``
from the family's ``SPECS``, so names and defaults cannot drift between the layers. Where the
per-name validation table is also the same in both layers it is here too (``Spec.checks``;
what a check is, a kind name or a callable, is the family's choice). A family whose docs
differ between the layers (the torch second-order docs point to the reference) leaves ``doc``
empty and keeps its docs in the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.rule import freeze

__all__ = ["Spec"]


@dataclass(frozen=True)
class Spec:
    """The shared part of a registered rule: defaults, doc and (optionally) checks."""

    hyper: Mapping[str, Any]
    doc: str = ""
    checks: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyper", freeze(self.hyper))
        object.__setattr__(self, "checks", freeze(self.checks))
