"""The `rule:meta.*` update rules (INVENTORY §2.9)."""
