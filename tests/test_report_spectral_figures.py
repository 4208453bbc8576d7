"""Figures of the Fourier route draw the result's numbers (no recomputation) on a given or new axis."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from linlens.operators import as_operator
from linlens.problems import CircularBlur
from linlens.report.spectral_figures import (
    plot_coherence,
    plot_coherence_map,
    plot_fourier_filter_factors,
    plot_transfer,
    plot_transfer_map,
)
from linlens.spectral import SpectralSurrogate, full_plane, spectral_analysis


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    y = np.random.default_rng(0).standard_normal((60, 10, 12))
    return y, 0.8 * y + 0.2 * np.tanh(y)


@pytest.fixture(scope="module")
def analysis():
    y, f = _pairs()
    A = as_operator(CircularBlur(1.0, size=3), in_shape=(10, 12))
    sur = SpectralSurrogate(n_boot=20).fit(y, f)
    return spectral_analysis(sur, A, 0.1, prior=1.0)


def test_figures_show_the_results_numbers(analysis):
    fig = plot_coherence(analysis)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), analysis.surrogate.radial.coherence)
    fig = plot_transfer(analysis)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), analysis.surrogate.radial.transfer_abs)
    fig, ax = plt.subplots()
    assert plot_coherence_map(analysis.surrogate, ax=ax) is fig
    img = ax.images[0].get_array()
    np.testing.assert_allclose(img, full_plane(analysis.surrogate.coherence, (10, 12)).real)
    # the transfer map against an independent route: per-frequency least squares Ĉ(k) = Σ F̂ Ŷ* / Σ |Ŷ|² on the
    # full fft2 plane (the constant image removed: the intercept), zero frequency shifted to the centre
    y, f = _pairs()
    Y, F = np.fft.fft2(y - y.mean()), np.fft.fft2(f - f.mean())
    want = np.fft.fftshift(np.log10(np.abs((F * Y.conj()).sum(0) / (np.abs(Y) ** 2).sum(0))))
    np.testing.assert_allclose(plot_transfer_map(analysis).axes[0].images[0].get_array(), want, rtol=0, atol=1e-12)
    fig = plot_fourier_filter_factors(analysis)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), analysis.filter_factors.real.ravel())
    plt.close("all")


def test_figures_refuse_other_results():
    with pytest.raises(TypeError):
        plot_coherence({"not": "a result"})
    with pytest.raises(TypeError):
        plot_fourier_filter_factors(None)
