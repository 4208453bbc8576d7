"""Fourier-domain filters: the prior's power spectrum P(k), the Wiener (LMMSE) filter
Ŵ(k) = H*(k) P(k) / (|H(k)|² P(k) + σ²), and a transfer function applied as a circular filter.

Example:
    >>> wiener_filter(np.array([1.0, 0.5]), 1.0, 0.0).real.tolist()
    [1.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import ConfigError
from linlens.operators import circulant
from linlens.spectral._layout import _BATCH, _block, _check_shape, _images, _mean
from linlens.spectral.radial import frequency_radii

__all__ = [
    "prior_spectrum",
    "wiener_filter",
    "apply_filter",
]

def prior_spectrum(X: Any, image_shape: tuple[int, ...] | None = None, fit_intercept: bool = True) -> np.ndarray:
    """Power spectrum P(k) = mean |x̂(k)|² / d of target images (the mean image removed when
    ``fit_intercept``: the constant image's power at k = 0), rfftn layout; the eigenvalues of a circulant Σₓ.

    Example:
        >>> X = np.random.default_rng(0).standard_normal((4000, 8))
        >>> bool(np.allclose(prior_spectrum(X), 1.0, atol=0.1))
        True
    """
    x, shp = _images(X, image_shape, "targets")
    axes = tuple(range(1, len(shp) + 1))
    d = int(np.prod(shp))
    c = _mean(x) if fit_intercept else 0.0
    P = np.zeros(frequency_radii(shp).shape)
    dc = 0.0
    for s in range(0, x.shape[0], _BATCH):
        Xh = np.fft.rfftn(_block(x, s, "targets") - c, axes=axes)
        P += np.sum(Xh.real**2 + Xh.imag**2, axis=0)
        dc += float(np.sum(Xh[(slice(None),) + (0,) * len(shp)].real))
    n = x.shape[0]
    if fit_intercept:
        P[(0,) * len(shp)] -= dc**2 / n
    return P / (n * d)


def wiener_filter(transfer: Any, prior: Any, noise_std: float) -> np.ndarray:
    """Fourier-domain Wiener (LMMSE) filter Ŵ(k) = H*(k) P(k) / (|H(k)|² P(k) + σ²).

    The eigenvalues of Σₓ Aᵀ (A Σₓ Aᵀ + σ² I)⁻¹ for circulant A (transfer H) and Σₓ (spectrum P), white noise.

    Arguments:
        transfer: H(k), rfftn layout (e.g. ``LinearMap.transfer_function()``).
        prior: P(k) ≥ 0, same layout (see :func:`prior_spectrum`), or a scalar (white prior).
        noise_std: σ ≥ 0 (σ = 0 gives 1/H where H ≠ 0 and 0 elsewhere).

    Example:
        >>> wiener_filter(np.array([1.0, 0.5]), 1.0, 1.0).real.tolist()
        [0.5, 0.4]
    """
    H = np.asarray(transfer, dtype=np.complex128)
    P = np.broadcast_to(np.asarray(prior, dtype=np.float64), H.shape)
    if noise_std < 0 or np.any(P < 0):
        raise ConfigError(f"noise_std and the prior spectrum must be ≥ 0; got σ = {noise_std}, min P = {P.min()}")
    den = np.abs(H) ** 2 * P + noise_std**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.conj(H) * P / np.where(den > 0, den, 1.0), 0.0)


def apply_filter(transfer: np.ndarray, Y: np.ndarray, image_shape: tuple[int, ...], mean_in: float = 0.0,
                 mean_out: float = 0.0) -> np.ndarray:
    """x̂ = T ⊛ (y − mean_in) + mean_out for images Y (n, *image_shape) or flat (n, d): a transfer function
    (rfftn layout) applied as a circular filter; returns (n, d).

    Example:
        >>> apply_filter(np.ones(3), np.array([[1.0, 2.0, 3.0, 4.0]]), (4,), mean_in=1.0).tolist()
        [[0.0, 1.0, 2.0, 3.0]]
    """
    shp = _check_shape(image_shape)
    Yf = np.asarray(Y, dtype=np.float64).reshape(len(Y), -1)
    return circulant(np.asarray(transfer), shp).matvec(Yf - mean_in) + mean_out
