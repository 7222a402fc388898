"""The one contract every rule and estimator follows, shared by `reference` and `torchimpl`.

Pure Python, no third-party imports, so that `reference` stays NumPy-only and `torchimpl`
stays free of `reference` (DESIGN.md, "The three layers and the one contract"). Besides the
contract itself it holds the few pieces that are the same in both layers and independent of
arrays, written once: the rule specs (ID -> hyperparameter defaults, doc and checks,
`contract.specs`), hyperparameter validation (`contract.validate`), the scalar line searches
(`contract.linesearch`) and the wrapper rules and learning-rate schedules
(`contract.wrappers`), which each layer binds to its registry.
"""

from contract.registry import Registry, split_id
from contract.rule import Estimator, Rule, freeze

__all__ = ["Estimator", "Registry", "Rule", "freeze", "split_id"]
