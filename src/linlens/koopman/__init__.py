"""linlens.koopman (being built)."""
