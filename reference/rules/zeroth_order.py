"""The `rule:zo.*` update rules (INVENTORY §2.3)."""
