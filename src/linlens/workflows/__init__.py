"""Experiments that wire capabilities together for the CLI (demo, analyze, reproductions, fibers).

Capabilities never import each other; these modules do, and :mod:`linlens.cli` calls them.
"""
