"""linlens.report.tracking_figures: the figures draw the tracked result's own numbers (they take results and never
compute): what is on the axes is read back and compared with the TrackingResult of a run whose filter factors are
known in closed form (C = A⁻¹ (s + 1)/2: φᵢ = (s + 1)/2)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from linlens.report import tracking_figures as tf  # noqa: E402
from linlens.workflows._examples import tracked_run  # noqa: E402


@pytest.fixture(scope="module")
def result():
    return tracked_run().result()


def test_heatmap_is_the_filter_factors_by_step(result):
    fig = tf.plot_factor_heatmap(result)
    drawn = np.asarray(fig.axes[0].collections[0].get_array()).reshape(3, 2)  # rows: index i, columns: steps
    np.testing.assert_allclose(drawn, result.factors().T, rtol=0, atol=0)
    np.testing.assert_allclose(drawn, [[0.5, 1.0]] * 3, atol=1e-10)  # the closed form
    plt.close(fig)


def test_band_curves_and_the_wiener_lines(result):
    fig = tf.plot_factor_curves(result)
    ax = fig.axes[0]
    curves = [ln for ln in ax.lines if ln.get_linestyle() != "--"]
    assert len(curves) == 3
    for j, ln in enumerate(curves):
        np.testing.assert_allclose(ln.get_ydata(), [p.band_filter_factors[j] for p in result.points])
    wiener = sorted(float(ln.get_ydata()[0]) for ln in ax.lines if ln.get_linestyle() == "--")
    np.testing.assert_allclose(wiener, sorted(result.setup.reference_band_factors["Wiener"]))
    plt.close(fig)


def test_errors_are_drawn_with_their_intervals(result):
    fig = tf.plot_errors_vs_step(result)
    ax = fig.axes[0]
    for j, name in enumerate(result.setup.references):
        est = np.array([p.errors[name]["estimate"] for p in result.points])
        np.testing.assert_allclose(ax.lines[j].get_ydata(), np.maximum(est, 1e-12))
        band = ax.collections[j].get_paths()[0].vertices[:, 1]  # the interval's polygon spans low … high
        lo = np.array([p.errors[name]["low"] for p in result.points])
        hi = np.array([p.errors[name]["high"] for p in result.points])
        assert band.min() == pytest.approx(max(lo.min(), 1e-12)) and band.max() == pytest.approx(hi.max())
    plt.close(fig)


def test_spectral_bias_leaves_out_what_never_rose():
    fig = tf.plot_spectral_bias(np.array([2.0, 1.0, 0.5]), np.array([5.0, np.nan, 40.0]),
                                reference_steps=np.array([4.0, 9.0, 30.0]))
    pts, ref = fig.axes[0].lines
    np.testing.assert_allclose(pts.get_xydata(), [[2.0, 5.0], [0.5, 40.0]])
    np.testing.assert_allclose(ref.get_xydata(), [[2.0, 4.0], [1.0, 9.0], [0.5, 30.0]])
    plt.close(fig)
