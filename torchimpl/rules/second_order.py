"""The `rule:so.*` update rules (INVENTORY §2.4)."""
