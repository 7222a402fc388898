"""The registry of reference problems: ID -> problem class (with a ``make`` builder)."""

from contract import Registry

REGISTRY: Registry = Registry("problem")
