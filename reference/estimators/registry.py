"""The registry of reference estimators: ID -> `contract.Estimator`."""

from contract import Registry

REGISTRY: Registry = Registry("estimator")
