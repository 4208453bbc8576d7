"""Reproductions of paper experiments, one module per experiment (``linlens reproduce …``)."""
