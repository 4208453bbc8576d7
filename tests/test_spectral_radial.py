"""Tests of linlens.spectral.radial against brute force: the full FFT plane, annulus means computed by hand, the
frequency grid of numpy's fftfreq and the real-valued (self-conjugate) frequencies of a real signal's spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.spectral import frequency_radii, full_plane, radial_average, self_conjugate


def test_radial_average_and_full_plane_against_brute_force():
    shp = (6, 8)
    rng = np.random.default_rng(7)
    img = rng.standard_normal(shp)
    spec = np.abs(np.fft.rfft2(img)) ** 2
    full = np.abs(np.fft.fft2(img)) ** 2
    np.testing.assert_allclose(full_plane(spec, shp), np.fft.fftshift(full), atol=1e-10)
    Xc = np.fft.fft2(img)
    np.testing.assert_allclose(full_plane(np.fft.rfft2(img), shp), np.fft.fftshift(Xc), atol=1e-10)
    ky, kx = np.meshgrid(np.fft.fftfreq(6), np.fft.fftfreq(8), indexing="ij")
    b = np.rint(np.sqrt(ky**2 + kx**2) * 6).astype(int)
    b[np.sqrt(ky**2 + kx**2) > 0.5 + 1e-12] = -1
    r, prof = radial_average(spec, shp)
    for j in range(len(r)):
        assert prof[j] == pytest.approx(full[b == j].mean())


@pytest.mark.parametrize("shape", [(7,), (8,), (6, 8), (5, 7), (4, 9)])
def test_frequency_radii_and_self_conjugate_against_the_full_spectrum(shape):
    """|k| of every rfftn entry is the norm of numpy's fftfreq grid; the self-conjugate entries are exactly those
    where the full spectrum of a random real image is real (DC and the Nyquist lines), and nowhere else."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    spec = np.fft.rfftn(x)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape[:-1]], np.fft.rfftfreq(shape[-1]), indexing="ij")
    np.testing.assert_allclose(frequency_radii(shape), np.sqrt(sum(g**2 for g in grids)), atol=1e-15)
    mask = self_conjugate(shape)
    assert mask.shape == spec.shape
    real = np.abs(spec.imag) < 1e-12 * np.abs(spec).max()
    np.testing.assert_array_equal(mask, real)
    n_expected = int(np.prod([1 + (n % 2 == 0) for n in shape]))  # DC, plus Nyquist on each even axis
    assert int(mask.sum()) == n_expected
