"""linlens.surrogate.simulation.KnownSurrogate: its closed forms against Monte Carlo (the population surrogate C₀
by least squares on many samples, the data-weighted error by its definition on samples) and the references it builds
against their requested errors."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.surrogate.simulation import KnownSurrogate


def test_population_surrogate_and_covariance_by_monte_carlo():
    sim = KnownSurrogate.make(d_in=3, d_out=2, beta=2.0, seed=4)
    Y, F = sim.sample(200_000, seed=5)
    np.testing.assert_allclose(np.cov(Y.T), sim.covariance, rtol=0.03, atol=0.03 * np.abs(sim.covariance).max())
    Yc = np.column_stack([Y, np.ones(len(Y))])
    coef = np.linalg.lstsq(Yc, F, rcond=None)[0][:-1].T  # least squares with intercept: C₀ whatever β
    assert np.abs(coef - sim.C0).max() < 0.03 * np.abs(sim.C0).max()


def test_true_error_is_the_data_weighted_error_by_its_definition():
    sim = KnownSurrogate.make(d_in=4, d_out=3, seed=1)
    R = sim.C0 + 0.3 * np.random.default_rng(2).normal(size=sim.C0.shape)
    Y, _ = sim.sample(200_000, seed=3)
    Yc = Y - Y.mean(axis=0)
    mc = np.mean(np.sum((Yc @ (sim.C0 - R).T) ** 2, 1)) / np.mean(np.sum((Yc @ R.T) ** 2, 1))
    assert sim.true_error(R) == pytest.approx(mc, rel=0.02)
    assert sim.true_error(sim.C0) == 0.0


def test_references_have_exactly_the_requested_errors():
    sim = KnownSurrogate.make(seed=0)
    wanted = [0.0, 0.05, 0.3, 0.9]
    refs = sim.references_at(wanted, seed=7)
    np.testing.assert_allclose([sim.true_error(R) for R in refs], wanted, rtol=1e-10, atol=1e-12)
