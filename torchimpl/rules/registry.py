"""The registry of torch update rules: ID -> `contract.Rule`."""

from contract import Registry

REGISTRY: Registry = Registry("rule")
