"""The registry of torch estimators: ID -> `contract.Estimator`."""

from contract import Registry

REGISTRY: Registry = Registry("estimator")
