"""The zeroth-order estimators `est:zo_*` (INVENTORY §3.9)."""
