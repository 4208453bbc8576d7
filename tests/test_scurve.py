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
