"""Reproductions of papers' experiments, one file per experiment (``linlens reproduce …``)."""
