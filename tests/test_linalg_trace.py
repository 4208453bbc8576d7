"""Randomized trace estimation: against closed forms, and the intervals' coverage by simulation with a known
trace (the batched Krylov solvers are tested in test_linalg_krylov.py)."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.errors import ConfigError, ShapeError
from linlens.linalg.trace import hutchinson, mean_estimate, ratio_estimate


def test_hutchinson_is_exact_on_diagonal_maps_and_refuses_one_probe():
    e = hutchinson(lambda Z: Z * np.array([1.0, 2.0, 3.0]), 3, n_probes=5)
    assert e.estimate == pytest.approx(14.0) and e.std_error == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        hutchinson(lambda Z: Z, 3, n_probes=1)


def test_ratio_estimate_refuses_bad_input():
    with pytest.raises(ShapeError):
        ratio_estimate(np.ones(3), np.ones(4))
    with pytest.raises(ShapeError):
        mean_estimate(np.ones(1))


def test_hutchinson_interval_covers_the_frobenius_norm():
    """Simulation with a known trace: ‖M‖²_F of a fixed random M, 64 probes, 600 repetitions."""
    rng = np.random.default_rng(2)
    M = rng.normal(size=(15, 20)) * np.linspace(0.2, 2.0, 20)
    truth = float(np.sum(M**2))
    hits = [(e := hutchinson(lambda Z: Z @ M.T, 20, n_probes=64, seed=s)).low <= truth <= e.high for s in range(600)]
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)


def test_ratio_interval_covers_a_known_ratio():
    """E‖Mx‖²/E‖x‖² with x ~ N(0, Σ): truth tr(MΣMᵀ)/tr Σ; 300 held-out rows per data set, 600 data sets."""
    rng = np.random.default_rng(3)
    L = rng.normal(size=(8, 8)) * np.linspace(0.1, 1.5, 8)
    S = L @ L.T
    M = rng.normal(size=(8, 8))
    truth = float(np.trace(M @ S @ M.T) / np.trace(S))
    hits = []
    for s in range(600):
        X = np.random.default_rng(100 + s).normal(size=(300, 8)) @ L.T
        e = ratio_estimate(np.sum((X @ M.T) ** 2, axis=1), np.sum(X**2, axis=1))
        hits.append(e.low <= truth <= e.high)
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)
