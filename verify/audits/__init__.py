"""Every claim audit, keyed by INVENTORY ID: ``CLAIMS`` and ``get(id)``/``ids(pattern)``."""

from __future__ import annotations

from importlib import import_module

from contract import Registry
from verify.audits.framework import Claim

MODULES = (
    "verify.audits.unified_view_onestep",
    "verify.audits.unified_view_models",
    "verify.audits.unified_view_stochastic",
    "verify.audits.survey_first_order",
    "verify.audits.survey_second_order",
    "verify.audits.thesis_first_order",
    "verify.audits.thesis_zeroth_order",
    "verify.audits.thesis_curvature",
    "verify.audits.thesis_factors",
    "verify.audits.thesis_diagnostics",
    "verify.audits.sassha_curvature",
)

REGISTRY: Registry[Claim] = Registry("claim")


def _load() -> None:
    for name in MODULES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        for key, claim in module.CLAIMS.items():
            REGISTRY.register(key, claim)


_load()
get = REGISTRY.get
ids = REGISTRY.ids
