"""The matrix-free study's intervals and verdict with the references' own estimation noise, by simulation against
the closed-form truths of ``benchmarks/bench_matrix_free_coverage.py`` (a small version: 30 data sets; the
benchmark runs 300 and prints coverage with Monte Carlo standard errors)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_matrix_free_coverage.py"


def _simulate(*args, **kwargs):
    spec = importlib.util.spec_from_file_location("bench_matrix_free_coverage", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.simulate(*args, **kwargs)


def test_intervals_cover_and_a_true_tie_is_kept_when_the_references_are_refitted():
    """Both references have the same population (W) and the surrogate's error against it is 0.02: every interval
    holds its truth in most of 30 data sets (MC s.e. ≈ 0.04 at 0.95), and the verdict names neither reference
    alone in at most 10% of them (with the references held fixed it named one in 24.5% of 200; benchmark)."""
    r = _simulate(30, eps=0.02, n_boot=50, seed=1)
    for k, v in r.items():
        if isinstance(v, tuple):
            assert v[0] >= 0.83, (k, v)
    named = sum(c for v, c in r["verdicts"].items() if v not in ("tie", "none"))
    assert named <= 3, r["verdicts"]
    assert abs(r["error vs Wiener"][2]) < 4 * r["error vs Wiener"][3] + 0.002  # corrected estimate ≈ unbiased
