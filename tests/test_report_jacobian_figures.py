"""linlens.report.jacobian_figures: the image mosaic against a hand-built layout (the plots themselves are
drawn from a JacobianSVD in tests/test_jacobian_matrix_free.py)."""

from __future__ import annotations

import numpy as np

from linlens.report.jacobian_figures import mosaic


def test_mosaic_layout_and_gutters():
    imgs = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2) + 1
    m = mosaic(imgs, ncols=2, pad=1)
    assert m.shape == (2 * 2 + 1, 2 * 2 + 1)  # 2 rows × 2 columns of 2×2 tiles, 1-pixel gutters
    np.testing.assert_array_equal(m[0:2, 0:2], imgs[0])
    np.testing.assert_array_equal(m[0:2, 3:5], imgs[1])
    np.testing.assert_array_equal(m[3:5, 0:2], imgs[2])
    assert np.isnan(m[2, :]).all() and np.isnan(m[:, 2]).all() and np.isnan(m[3:5, 3:5]).all()


def test_mosaic_symmetric_scaling_keeps_zero_and_sign():
    im = np.array([[[0.0, -4.0], [2.0, 1.0]]])
    np.testing.assert_array_equal(mosaic(im, symmetric=True), im[0] / 4.0)
    np.testing.assert_array_equal(mosaic(np.zeros((1, 2, 2)), symmetric=True), np.zeros((2, 2)))
