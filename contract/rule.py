"""`Rule` and `Estimator`: the values each layer registers under an INVENTORY ID."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def freeze(mapping: Mapping[str, Any] | None = None, **items: Any) -> Mapping[str, Any]:
    """An immutable mapping: the form every rule state takes (no mutation, no hidden state)."""
    return MappingProxyType({**(mapping or {}), **items})


@dataclass(frozen=True)
class Rule:
    """An optimizer update rule, optax-style.

    ``init(params) -> state`` and
    ``update(grads, state, params, oracle, **hyper) -> (updates, new_state)``, where
    ``params + updates`` is the next iterate. ``hyper`` holds the defaults (the source
    document's); ``update`` is always called with every hyperparameter, so a rule never
    relies on its own keyword defaults.
    """

    id: str
    init: Callable[..., Mapping[str, Any]]
    update: Callable[..., tuple[Mapping[str, Any], Mapping[str, Any]]]
    hyper: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hyper", freeze(self.hyper))

    def resolve(self, **hyper: Any) -> dict[str, Any]:
        """The defaults overridden by ``hyper``; an unknown name is a ``TypeError``."""
        unknown = sorted(set(hyper) - set(self.hyper))
        if unknown:
            raise TypeError(
                f"{self.id}: unknown hyperparameter(s) {unknown}; known: {sorted(self.hyper)}"
            )
        return {**self.hyper, **hyper}

    def step(self, grads, state, params, oracle, **hyper):
        """``update`` with the defaults filled in: ``(updates, new_state)``."""
        return self.update(grads, state, params, oracle, **self.resolve(**hyper))


@dataclass(frozen=True)
class Estimator:
    """A curvature, noise or diagnostic estimator: a plain function of arrays and options.

    ``fn(**inputs, **options) -> value`` where value is an array or a mapping of arrays.
    ``options`` holds the defaults of the keyword options (documented scale conventions).
    """

    id: str
    fn: Callable[..., Any]
    options: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(self.options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **{**self.options, **kwargs})
