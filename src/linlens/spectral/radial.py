"""Frequency geometry of the rfftn layout: radii |k|, conjugate multiplicities, real frequencies, radial
averages over annuli of |k| and the expansion to the full frequency plane.

Example:
    >>> frequency_radii((4,)).tolist(), self_conjugate((4,)).tolist()
    ([0.0, 0.25, 0.5], [True, False, True])
"""

from __future__ import annotations

import numpy as np

from linlens.spectral._layout import _check_shape

__all__ = [
    "frequency_radii",
    "radial_average",
    "full_plane",
    "self_conjugate",
]

def frequency_radii(image_shape: tuple[int, ...]) -> np.ndarray:
    """|k| in cycles per sample at each rfftn frequency: (L // 2 + 1,) or (H, W // 2 + 1).

    Example:
        >>> frequency_radii((4,)).tolist()
        [0.0, 0.25, 0.5]
    """
    shp = _check_shape(image_shape)
    if len(shp) == 1:
        return np.fft.rfftfreq(shp[0])
    fy, fx = np.fft.fftfreq(shp[0]), np.fft.rfftfreq(shp[1])
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _multiplicity(image_shape: tuple[int, ...]) -> np.ndarray:
    """How many full-plane frequencies each rfftn entry stands for (2 for a conjugate pair, else 1)."""
    n = image_shape[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w if len(image_shape) == 1 else np.broadcast_to(w, (image_shape[0], n // 2 + 1)).copy()


def _radial_bins(image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Integer radius bin of each rfftn entry (−1 beyond the Nyquist circle) and the bin radii."""
    shp = _check_shape(image_shape)
    m = min(shp)
    r = frequency_radii(shp)
    b = np.rint(r * m).astype(int)
    b[r > 0.5 + 1e-12] = -1
    return b, np.arange(m // 2 + 1) / m


def radial_average(values: np.ndarray, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged profile over annuli of integer radius |k|·min(H, W) (the full plane counted once).

    Arguments:
        values: (..., *rfft_shape) real values per frequency (leading axes kept, e.g. bootstrap replicates).
        image_shape: (L,) or (H, W); for signals the profile is the spectrum itself.

    Returns:
        radii (n_bins,) in cycles per sample, profile (..., n_bins) (NaN values are skipped).

    Example:
        >>> r, p = radial_average(np.ones((4, 3)), (4, 4))
        >>> r.tolist(), p.tolist()
        ([0.0, 0.25, 0.5], [1.0, 1.0, 1.0])
    """
    shp = _check_shape(image_shape)
    v = np.asarray(values, dtype=np.float64)
    bins, radii = _radial_bins(shp)
    w = _multiplicity(shp)
    lead = v.shape[: v.ndim - len(shp)]
    vf = v.reshape(*lead, -1)
    ok = np.isfinite(vf)
    ww = np.where(ok, w.ravel(), 0.0)
    num = np.zeros((*lead, len(radii)))
    den = np.zeros((*lead, len(radii)))
    sel = bins.ravel() >= 0
    for j in range(len(radii)):
        m = sel & (bins.ravel() == j)
        num[..., j] = np.sum(np.where(ok[..., m], vf[..., m], 0.0) * ww[..., m], axis=-1)
        den[..., j] = np.sum(ww[..., m], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return radii, num / den


def full_plane(values: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Expand an rfftn-layout array of a real signal's spectrum to the full (H, W) plane (|·|-symmetric
    quantities are copied, complex ones conjugated), centred with ``fftshift`` for display.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(4, 6))
        >>> bool(np.allclose(full_plane(np.fft.rfft2(x), (4, 6)), np.fft.fftshift(np.fft.fft2(x))))
        True
    """
    shp = _check_shape(image_shape)
    v = np.asarray(values)
    if len(shp) == 1:
        n = shp[0]
        full = np.concatenate([v, np.conj(v[1 : (n + 1) // 2][::-1])])
        return np.fft.fftshift(full)
    H, W = shp
    full = np.empty((H, W), dtype=v.dtype)
    full[:, : v.shape[1]] = v
    cols = np.arange(v.shape[1], W)
    full[:, cols] = np.conj(v[(-np.arange(H)) % H][:, W - cols])
    return np.fft.fftshift(full)


def self_conjugate(image_shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask (rfftn layout) of the real-valued frequencies: k ≡ −k on every axis (DC, Nyquist).

    Example:
        >>> self_conjugate((4,)).tolist(), int(self_conjugate((4, 6)).sum())
        ([True, False, True], 4)
    """
    masks = []
    for a, n in enumerate(image_shape):
        idx = np.arange(n // 2 + 1 if a == len(image_shape) - 1 else n)
        masks.append(idx == (-idx) % n)
    out = masks[0]
    for m in masks[1:]:
        out = out[..., None] & m
    return out
