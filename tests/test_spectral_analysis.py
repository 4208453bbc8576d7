"""Tests of linlens.spectral.analysis against independent routes: the dense data-weighted errors and filter
factors of the circulant matrices, the dense SignalNoiseModel split, interval coverage of a closed-form error by
simulation, and test MSE / PSNR / paired t-test (p-value and interval) computed by hand and by scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.stats

from linlens.errors import ConfigError, ShapeError
from linlens.operators import as_operator
from linlens.problems import CircularBlur
from linlens.spectral import (
    SpectralSurrogate,
    errors_from_squares,
    prediction_errors,
    spectral_analysis,
    wiener_filter,
)
from linlens.surrogate import filter_factors


def test_spectral_analysis_errors_match_dense_route_and_verdict():
    rng = np.random.default_rng(5)
    shp, sigma = (16, 16), 0.05
    blur = CircularBlur(1.0, size=5)
    A = as_operator(blur, in_shape=(1, 16, 16))
    H = A.transfer_function()
    P = 1.0 / (1.0 + (np.sqrt(np.fft.fftfreq(16)[:, None] ** 2 + np.fft.rfftfreq(16)[None] ** 2) / 0.1) ** 2)
    x = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((300, 16, 16))) * np.sqrt(P), s=shp)
    y = A.matvec(x.reshape(300, -1)).reshape(300, *shp) + sigma * rng.standard_normal((300, *shp))
    Wk = wiener_filter(H, P, sigma)
    from linlens.operators import circulant

    Wd = circulant(Wk, shp).to_dense()
    fy = y.reshape(300, -1) @ Wd.T + 0.01 * np.tanh(y.reshape(300, -1))  # nearly the Wiener filter
    sur = SpectralSurrogate(n_boot=100).fit(y, fy.reshape(300, *shp))
    an = spectral_analysis(sur, A, sigma, prior=P)
    assert an.closest == "Wiener"
    assert an.paired["A⁻¹ − Wiener"]["low"] > 0 and an.paired["A⁻¹ − Wiener"]["p_value"] < 0.05
    # dense route for the data-weighted errors: Σ‖(C − R)(y − ȳ)‖² / Σ‖R(y − ȳ)‖², ȳ the constant mean image
    C = sur.to_dense()
    yc = y.reshape(300, -1) - y.mean()
    Ad = A.to_dense()
    for name, R in (("Wiener", Wd), ("A⁻¹", np.linalg.inv(Ad))):
        ref = np.sum((yc @ (C - R).T) ** 2) / np.sum((yc @ R.T) ** 2)
        assert abs(an.errors[name] - ref) / ref < 1e-8, name
    np.testing.assert_allclose(an.wiener_filter_factors.imag, 0, atol=1e-12)
    assert an.to_dict()["closest"] == "Wiener"


def test_filter_factors_match_dense_filter_factors_1d():
    rng = np.random.default_rng(6)
    n = 32
    a = np.exp(-0.5 * (np.minimum(np.arange(n), n - np.arange(n)) / 1.5) ** 2)  # symmetric kernel, real H
    H = np.fft.rfft(a)
    y = rng.standard_normal((200, n))
    f = np.fft.irfft(np.fft.rfft(y) * wiener_filter(H, 1.0, 0.1), n=n) + 0.05 * np.sin(3 * y)
    sur = SpectralSurrogate(n_boot=20).fit(y, f)
    an = spectral_analysis(sur, H, 0.1, prior=1.0)
    ff = filter_factors(sur.to_dense(), sla.circulant(a))
    # each conjugate pair ±k is a 2-D singular subspace of A; its diagonal entries are Re φ(k)
    phi_full = np.concatenate([an.filter_factors.real, an.filter_factors.real[1 : n // 2][::-1]])
    np.testing.assert_allclose(np.sort(ff.factors), np.sort(phi_full), atol=1e-8)


def test_fourier_signal_noise_split_equals_the_dense_split_of_the_circulant():
    """Cross-route: on a circular blur with a white prior, the Fourier route's signal error, noise amplification
    and null-space error equal the dense SignalNoiseModel's on the circulant matrices, for the surrogate and for
    every reference; the radial bins add up to the totals (1-D: no corners)."""
    from linlens.operators import circulant
    from linlens.spectral import SpectralSurrogate, spectral_analysis
    from linlens.surrogate.compare import SignalNoiseModel

    L, sigma = 16, 0.1
    k = np.fft.rfftfreq(L)
    HA = np.exp(-0.5 * (k / 0.2) ** 2).astype(complex)
    HA[-1] = 0.0  # one frequency A does not see: a null space
    T = np.conj(HA) / (np.abs(HA) ** 2 + 0.3)  # the network: some linear filter
    Y = np.random.default_rng(0).normal(size=(400, L))
    F = np.fft.irfft(np.fft.rfft(Y) * T, n=L)
    sur = SpectralSurrogate(image_shape=(L,), n_boot=20, seed=0).fit(Y, F)
    an = spectral_analysis(sur, HA, sigma, prior=1.0)
    A = circulant(HA, (L,)).to_dense()
    snm = SignalNoiseModel(A, np.eye(L), sigma)
    dense = snm.split(circulant(sur.transfer_, (L,)).to_dense())
    assert an.signal_noise["signal_error"]["plug_in"] == pytest.approx(dense.signal_error, rel=1e-9)
    assert an.signal_noise["noise_amplification"]["plug_in"] == pytest.approx(dense.noise_amplification, rel=1e-9)
    assert an.signal_noise["null_space_error"]["plug_in"] == pytest.approx(dense.null_space_error, rel=1e-9)
    assert an.signal_noise["total"]["plug_in"] == pytest.approx(dense.total, rel=1e-9)
    W = snm.split(circulant(an.wiener, (L,)).to_dense())
    assert an.reference_signal_noise["Wiener"]["total"] == pytest.approx(W.total, rel=1e-9)
    assert np.sum(an.radial_signal_error) == pytest.approx(dense.signal_error, rel=1e-9)
    assert np.sum(an.radial_noise_amplification) == pytest.approx(dense.noise_amplification, rel=1e-9)
    assert an.signal_noise["signal_error"]["low"] <= an.signal_noise["signal_error"]["high"]


def test_fourier_c_data_is_resampled_with_its_training_images_and_covered():
    """f = h ⊛ y + |g ⊛ y| (population transfer h) against C_data fitted on x = K ⊛ y + e (population K): the truth
    Σ|ĥ − K|²/Σ|K|² is closed-form; with C_data's images resampled its interval covers it (40 data sets here, 200 in
    benchmarks/bench_intervals.py: 0.94 and bias +0.3%)."""
    from linlens.spectral import SpectralSurrogate, spectral_analysis
    from linlens.spectral.radial import _multiplicity

    L = 64
    k = np.fft.rfftfreq(L)
    HA = np.exp(-0.5 * (k / 0.12) ** 2).astype(complex)
    W = np.conj(HA) / (np.abs(HA) ** 2 + 0.05**2)
    u = np.cos(2 * np.pi * 3 * k) + 0.5j * np.sin(2 * np.pi * 5 * k)
    Hf, Kt, Gk = W * (1 + 0.3 * u), W * (1 - 0.3 * u), np.exp(-0.5 * (k / 0.3) ** 2)
    w = _multiplicity((L,))
    w[0] = 0.0
    truth = np.sum(w * np.abs(Hf - Kt) ** 2) / np.sum(w * np.abs(Kt) ** 2)
    hits, est = [], []
    for r in range(40):
        rng = np.random.default_rng(r)
        Y, Yt = rng.normal(size=(100, L)), rng.normal(size=(100, L))
        F = np.fft.irfft(np.fft.rfft(Y) * Hf, n=L) + np.abs(np.fft.irfft(np.fft.rfft(Y) * Gk, n=L))
        Xt = np.fft.irfft(np.fft.rfft(Yt) * Kt, n=L) + 0.5 * rng.normal(size=(100, L))
        an = spectral_analysis(SpectralSurrogate(image_shape=(L,), n_boot=100, seed=r).fit(Y, F), HA, 0.05,
                               prior=1.0, data_surrogate=SpectralSurrogate(image_shape=(L,), n_boot=100,
                                                                           seed=r + 1).fit(Yt, Xt))
        lo, hi = an.error_intervals["C_data"]
        hits.append(lo <= truth <= hi)
        est.append(an.errors_corrected["C_data"])
    assert np.mean(hits) >= 0.85 and abs(np.mean(est) / truth - 1) < 0.05
    assert an.reference_status["C_data"].startswith("estimated: resampled")


def test_spectral_analysis_bad_inputs():
    sur = SpectralSurrogate(n_boot=0).fit(np.random.default_rng(0).standard_normal((5, 8, 8)), np.ones((5, 8, 8)))
    with pytest.raises(ConfigError, match="targets"):
        spectral_analysis(sur, as_operator(np.eye(64), in_shape=(8, 8)), 0.1)
    with pytest.raises(ConfigError, match="circular"):
        spectral_analysis(sur, as_operator(np.triu(np.ones((64, 64))), in_shape=(8, 8)), 0.1, prior=1.0)
    with pytest.raises(ShapeError, match="rfft shape"):
        spectral_analysis(sur, as_operator(np.eye(16), in_shape=(4, 4), circular=True), 0.1, prior=1.0)

def test_prediction_errors_match_hand_mse_psnr_and_scipy_paired_t():
    """MSE per entry and PSNR = 10 log₁₀(range²/MSE) by hand; the paired test's difference is the mean of the
    per-image squared-error differences and its p-value is scipy's paired t-test (ttest_rel) on them."""
    rng = np.random.default_rng(10)
    X = rng.uniform(-1, 3, size=(40, 12))
    P_model = X + 0.1 * rng.standard_normal(X.shape)
    P_base = X + 0.3 * rng.standard_normal(X.shape)
    r = prediction_errors({"model": P_model, "C_data": P_base}, X)
    for k, P in (("model", P_model), ("C_data", P_base)):
        mse = np.mean((P - X) ** 2)
        assert r["mse"][k] == pytest.approx(mse, rel=1e-12)
        assert r["psnr"][k] == pytest.approx(10 * np.log10((X.max() - X.min()) ** 2 / mse), rel=1e-12)
    sq_m, sq_b = np.sum((P_model - X) ** 2, axis=1), np.sum((P_base - X) ** 2, axis=1)
    assert r["paired"].difference == pytest.approx(np.mean(sq_m - sq_b), rel=1e-10)
    tt = scipy.stats.ttest_rel(sq_m, sq_b)
    assert r["paired"].difference < 0 and r["paired"].p_value == pytest.approx(tt.pvalue, rel=1e-6)
    ci = tt.confidence_interval(0.95)
    assert (r["paired"].ci_low, r["paired"].ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    # the block-wise entry point gives the same answer from the per-image squares
    r2 = errors_from_squares({"model": sq_m, "C_data": sq_b}, 12, float(X.max() - X.min()))
    assert r2["mse"] == r["mse"] and r2["psnr"] == r["psnr"]
    assert errors_from_squares({"model": sq_m}, 12, 1.0)["paired"] is None  # no baseline: no test
