"""The registry of reference update rules: ID -> `contract.Rule`."""

from contract import Registry

REGISTRY: Registry = Registry("rule")
