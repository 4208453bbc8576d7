"""The verdicts of the production routes (dense study, Fourier, subspace), checked by simulation against truths known
in closed form (issue 21): a model with no linear part, whose every reference is exactly at the zero map's error 1
("none" is right), and an exact tie between a fixed and an estimated reference. Small versions of
``benchmarks/bench_intervals.py --parts route-verdicts`` (its functions simulate the data sets; 1000 per line there).

Each route's "none" is decided by the bootstrap-t from its per-replicate analytic standard errors (the verdict says
so in ``none_method``); the target is the nominal rate + 3 Monte Carlo standard errors here: "none" ≤ 0.025, a named
reference on a true tie ≤ 0.05."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_intervals.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_intervals", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_intervals", mod)
    spec.loader.exec_module(mod)
    return mod


def _bound(target: float, n: int) -> float:
    """The target + 3 Monte Carlo standard errors at the nominal rate (as tests/test_verdicts.py: a few hundred
    data sets; the benchmark's 1000 per line are held to 2)."""
    return target + 3 * np.sqrt(target * (1 - target) / n)


def _none_rate(calls) -> float:
    assert all(c[2] == "bootstrap-t" for c in calls), "a verdict decided without analytic standard errors"
    return float(np.mean([c[0] != "none" for c in calls]))


def _tie_rate(calls) -> float:
    return float(np.mean([c[0] not in ("tie", "none") for c in calls]))


@pytest.mark.parametrize(("case", "n"), [("none2", 300), ("none3", 200)])
def test_dense_study_none_false_rate(bench, case, n):
    rate = _none_rate(bench.dense_verdicts(case, n, n_boot=100, seed=50_000))
    assert rate <= _bound(0.025, n), rate


def test_dense_study_true_tie_between_a_fixed_and_an_estimated_reference(bench):
    n = 300
    calls = bench.dense_verdicts("tie", n, n_boot=100, seed=60_000)
    assert _tie_rate(calls) <= _bound(0.05, n), _tie_rate(calls)
    assert np.mean([c[0] == "tie" for c in calls]) >= 0.9  # the truth (error 0.2 < 1) is far from "none"


def test_fourier_none_false_rate_with_an_estimated_reference(bench):
    n = 300
    rate = _none_rate(bench.fourier_verdicts("none3", n, n_boot=100, seed=70_000))
    assert rate <= _bound(0.025, n), rate


def test_fourier_true_tie_between_the_wiener_filter_and_c_data(bench):
    n = 300
    calls = bench.fourier_verdicts("tie", n, n_boot=100, seed=80_000)
    assert _tie_rate(calls) <= _bound(0.05, n), _tie_rate(calls)


def test_subspace_none_false_rate(bench):
    n = 300
    rate = _none_rate(bench.subspace_verdicts(n, n_boot=100, seed=90_000))
    assert rate <= _bound(0.025, n), rate
