"""The Adam-family rules of `rule:fo.*` (INVENTORY §2.2): Adam, AdamW, NAdam, RAdam, AdaFactor,
AdaBelief and the P2 Adam relatives."""
