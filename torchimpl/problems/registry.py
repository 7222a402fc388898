"""The registry of torch problems: ID -> problem class (with a ``make`` builder)."""

from contract import Registry

REGISTRY: Registry = Registry("problem")
