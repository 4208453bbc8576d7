"""linlens.data (being built)."""
