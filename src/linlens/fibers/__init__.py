"""linlens.fibers (being built)."""
