"""The one contract every rule and estimator follows, shared by `reference` and `torchimpl`.

Pure Python, no third-party imports, so that `reference` stays NumPy-only and `torchimpl`
stays free of `reference` (DESIGN.md, "The three layers and the one contract").
"""

from contract.registry import Registry, split_id
from contract.rule import Estimator, Rule, freeze

__all__ = ["Estimator", "Registry", "Rule", "freeze", "split_id"]
