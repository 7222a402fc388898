"""The `rule:fo.*` update rules (INVENTORY §2.2)."""
