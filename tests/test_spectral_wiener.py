"""Tests of linlens.spectral.wiener against independent routes: the dense Wiener estimator on circulant
matrices, the closed-form spectrum of a filtered white field, and circular filtering as a dense circulant."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from linlens.operators import as_operator
from linlens.problems import CircularBlur, wiener_estimator
from linlens.spectral import apply_filter, prior_spectrum, wiener_filter


def _circ2d(c: np.ndarray) -> np.ndarray:
    """Dense block-circulant matrix of the 2-D circular convolution with c (index formula, no FFT)."""
    H, W = c.shape
    i = np.arange(H * W)
    r, s = i // W, i % W
    return c[(r[:, None] - r[None, :]) % H, (s[:, None] - s[None, :]) % W]


def test_wiener_filter_matches_dense_closed_form_1d_and_2d():
    rng = np.random.default_rng(2)
    # 1-D: circulant A (a random kernel) and circulant Σx from a decaying spectrum
    n = 64
    a = rng.standard_normal(n) * np.exp(-np.arange(n) / 3.0)
    k = np.fft.rfftfreq(n)
    P = 1.0 / (1.0 + (k / 0.05) ** 2)
    cov = np.fft.irfft(P, n=n)  # autocovariance with spectrum P
    W = wiener_filter(np.fft.rfft(a), P, 0.1)
    dense = wiener_estimator(sla.circulant(a), sla.circulant(cov), 0.1)
    from linlens.operators import circulant

    D = circulant(W, (n,)).to_dense()
    assert np.linalg.norm(D - dense) / np.linalg.norm(dense) < 1e-8
    # 2-D: the blur of CircularBlur and a 2-D stationary prior
    blur = CircularBlur(1.0, size=5)
    A = as_operator(blur, in_shape=(1, 16, 16))
    H = A.transfer_function()
    P2 = 1.0 / (1.0 + (np.sqrt(np.fft.fftfreq(16)[:, None] ** 2 + np.fft.rfftfreq(16)[None] ** 2) / 0.1) ** 2)
    cov2 = np.fft.irfft2(P2, s=(16, 16))
    dense2 = wiener_estimator(A.to_dense(), _circ2d(cov2), 0.05)
    D2 = circulant(wiener_filter(H, P2, 0.05), (16, 16)).to_dense()
    assert np.linalg.norm(D2 - dense2) / np.linalg.norm(dense2) < 1e-8


def test_prior_spectrum_of_a_known_stationary_field():
    rng = np.random.default_rng(3)
    c = np.zeros(32)
    c[:3] = [1.0, 0.5, 0.25]
    X = np.fft.irfft(np.fft.rfft(rng.standard_normal((20000, 32))) * np.fft.rfft(c), n=32) + 3.0
    P = prior_spectrum(X)
    np.testing.assert_allclose(P[1:], np.abs(np.fft.rfft(c)[1:]) ** 2, rtol=0.05)
    assert abs(P[0] - np.abs(np.sum(c)) ** 2) / np.sum(c) ** 2 < 0.05  # the mean 3.0 is removed


def test_apply_filter_is_the_dense_circulant_plus_means():
    """x̂ = T ⊛ (y − m_in) + m_out against scipy's dense circulant of the kernel t = irfft(T) (1-D, odd length) and
    the index-formula block circulant (2-D)."""
    rng = np.random.default_rng(8)
    t = rng.standard_normal(9)
    Y = rng.standard_normal((5, 9))
    got = apply_filter(np.fft.rfft(t), Y, (9,), mean_in=0.7, mean_out=-2.0)
    np.testing.assert_allclose(got, (Y - 0.7) @ sla.circulant(t).T - 2.0, atol=1e-12)
    t2 = rng.standard_normal((6, 8))
    Y2 = rng.standard_normal((3, 6, 8))
    got2 = apply_filter(np.fft.rfft2(t2), Y2, (6, 8), mean_out=1.5)
    np.testing.assert_allclose(got2, Y2.reshape(3, -1) @ _circ2d(t2).T + 1.5, atol=1e-12)
