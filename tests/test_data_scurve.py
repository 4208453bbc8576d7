"""linlens.data.scurve: the authors' S-curve and its known local geometry."""

import math

import numpy as np
import pytest

from linlens.data.scurve import make_s_curve, s_curve_tangent, s_curve_true_std
from linlens.errors import ConfigError


def test_points_lie_on_the_curve_and_parameter_is_gaussian():
    X, t = make_s_curve(20000, scale_eta0=0.15, seed=0)
    np.testing.assert_allclose(X[:, 0], np.sin(t))
    np.testing.assert_allclose(X[:, 2], np.sign(t) * (np.cos(t) - 1))
    assert X[:, 1].min() >= 0 and X[:, 1].max() <= 2
    assert t.std() == pytest.approx(3 * math.pi * 0.15, rel=0.02)
    assert X[:, 1].std() == pytest.approx(s_curve_true_std()[1], rel=0.02)


def test_tangent_is_the_unit_derivative():
    t = np.array([-2.0, -0.3, 0.4, 2.5])
    h = 1e-6
    X1 = np.c_[np.sin(t + h), np.zeros(4), np.sign(t) * (np.cos(t + h) - 1)]
    X0 = np.c_[np.sin(t - h), np.zeros(4), np.sign(t) * (np.cos(t - h) - 1)]
    np.testing.assert_allclose(s_curve_tangent(t), (X1 - X0) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(s_curve_tangent(t), axis=1), 1.0)


def test_noise_and_bad_arguments():
    X, t = make_s_curve(5000, noise=0.05, seed=1)
    clean = np.c_[np.sin(t), X[:, 1], np.sign(t) * (np.cos(t) - 1)]
    assert (X - clean)[:, [0, 2]].std() == pytest.approx(0.05, rel=0.05)
    with pytest.raises(ConfigError):
        make_s_curve(0)
    with pytest.raises(ConfigError):
        make_s_curve(10, noise=-1)


def test_ideal_flow_across_truth_by_simulation():
    # an ideal factorised flow maps x₁ = 2η₁ (+ noise) to N(0, 1) by z = Φ⁻¹(F(x₁)); its local std is
    # 1/|dz/dx₁|. Simulate it with an empirical CDF and a numerical derivative on a grid, independent of the
    # closed form in ideal_flow_local_std, and take the median over the data.
    from scipy.stats import norm

    from linlens.workflows.reproduce.flows_scurve import ideal_flow_local_std

    rng = np.random.default_rng(0)
    for noise in (0.0, 0.05):
        x = 2 * rng.uniform(size=200_000) + noise * rng.standard_normal(200_000)
        grid = np.linspace(np.quantile(x, 0.001), np.quantile(x, 0.999), 1001)
        F = np.searchsorted(np.sort(x), grid) / len(x)
        z = norm.ppf(np.clip(F, 1e-6, 1 - 1e-6))
        dzdx = np.gradient(z, grid)
        inner = (grid > np.quantile(x, 0.01)) & (grid < np.quantile(x, 0.99))
        local_std = np.interp(x, grid[inner], 1 / dzdx[inner])
        sim = np.median(local_std)
        truth = ideal_flow_local_std(0.15, noise)
        assert truth[1] == pytest.approx(sim, rel=0.01)
        assert truth[1] != pytest.approx(2 / math.sqrt(12), rel=0.05)  # not the global std of U(0, 2)
        assert truth[0] == pytest.approx(3 * math.pi * 0.15) and truth[2] == noise
    assert ideal_flow_local_std(0.15, 0.0)[1] == pytest.approx(2 * norm.pdf(norm.ppf(0.75)), rel=1e-12)
