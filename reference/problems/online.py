"""Problems of INVENTORY §1.2 (stub, filled by the fo/zo/so issue)."""
