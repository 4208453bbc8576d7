"""linlens.flows (being built)."""
