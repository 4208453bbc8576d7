"""The Fourier route for shift-invariant problems (1-D signals and 2-D images, circular boundaries).

For a circular convolution A, a stationary prior and a shift-equivariant network, every reference and the
surrogate are diagonal in the Fourier basis, so the analysis costs O(n d log d) instead of O(d³):

- transfer function of the surrogate Ĉ(k) = S_fy(k) / S_yy(k), from cross-spectra of probe pairs
  (y_i, f(y_i)) averaged over the probe images (Welch averaging with one rectangular-window segment per
  image: the boundary is circular, so no taper is needed and the estimate is exact);
- magnitude-squared coherence γ²(k) = |S_fy|² / (S_ff S_yy): the fraction of the output's power at k that is
  linear in y (a per-frequency R²; 1 for a linear shift-invariant network);
- the Wiener filter Ŵ(k) = H*(k) P(k) / (|H(k)|² P(k) + σ²), with P the prior's power spectrum (estimated from
  targets, or given), and filter factors φ(k) = Ĉ(k) H(k) (1 for A⁻¹, |H|²P/(|H|²P + σ²) for Wiener);
- radially averaged profiles for 2-D images, with bootstrap intervals over probe images.

Ĉ is exactly the least-squares fit of a circulant matrix (plus a constant image) to the probe pairs, i.e.
:class:`linlens.LinearSurrogate` fitted on the flattened images augmented with all their circular shifts.
Spectra are in ``numpy.fft.rfftn`` layout: (L // 2 + 1,) for signals (L,), (H, W // 2 + 1) for images (H, W),
normalised as S(k) = mean over images of |x̂(k)|² / d (white noise of variance s² has S = s²).

Intervals: a Poisson bootstrap over probe images (each image gets an independent Poisson(1) weight per
replicate, accumulated in one streaming pass, so ``partial_fit`` needs no second pass and ``fit`` on all data
equals ``partial_fit`` on its chunks). An image's weights depend only on the seed and its position in the
sequence (:func:`poisson_weights`), so partial fits of separate blocks (on Dask workers, ``first_index``) merge
(:meth:`SpectralSurrogate.merge`) into the fit on all images, replicates included. Basic intervals
[2θ̂ − q_hi, 2θ̂ − q_lo] (the data-weighted errors
are biased upward; the basic interval corrects that bias to first order). The coherence, bounded in [0, 1], gets
its interval on Fisher's z scale (:func:`coherence_interval`).

References:
    Welch. The use of fast Fourier transform for the estimation of power spectra (1967).
    Bendat, Piersol. Random Data: Analysis and Measurement Procedures, ch. 9 (coherence, frequency response).
    Chamandy, Muralidharan, Najmi, Naidu. Estimating uncertainty for massive data streams (2012), Poisson
    bootstrap. https://research.google/pubs/estimating-uncertainty-for-massive-data-streams/

Example:
    >>> rng = np.random.default_rng(0); Y = rng.standard_normal((50, 16))
    >>> h = np.zeros(16); h[:3] = [0.5, 0.3, 0.2]
    >>> F = np.fft.irfft(np.fft.rfft(Y) * np.fft.rfft(h), n=16)
    >>> sur = SpectralSurrogate(n_boot=0).fit(Y, F)
    >>> bool(np.allclose(sur.transfer_, np.fft.rfft(h))), bool(np.allclose(sur.coherence_, 1.0))
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NotFittedError, ShapeError
from linlens.operators import DENSE_MAX_DIM, LinearMap, as_operator, circulant
from linlens.probing import probe_model
from linlens.stats import (
    ClosestVerdict,
    bootstrap_from_replicates,
    closest_reference,
    paired_difference,
    paired_squared_error_test,
)
from linlens.validation import check_finite, check_noise_std, is_torch

__all__ = [
    "SpectralSurrogate",
    "SpectralSurrogateResult",
    "RadialProfile",
    "SpectralAnalysis",
    "spectral_analysis",
    "wiener_filter",
    "prior_spectrum",
    "radial_average",
    "coherence_interval",
    "self_conjugate",
    "prediction_errors",
    "apply_filter",
    "errors_from_squares",
    "poisson_weights",
    "frequency_radii",
    "full_plane",
]

_BATCH = 64  # images per FFT block (bounds the temporaries)
_WEIGHT_UNIT = 64  # images per seeded stream of Poisson weights (see poisson_weights)


def poisson_weights(seed: int, start: int, stop: int, n_boot: int) -> np.ndarray:
    """Poisson(1) bootstrap weights (n_boot, stop − start) of the images at positions [start, stop) of a sequence.

    The weights of position i come from the stream seeded by (seed, i // 64) alone, so any block of the
    sequence gets the same weights wherever it is computed (a Dask worker, a streaming ``partial_fit``).

    Example:
        >>> W = poisson_weights(0, 0, 200, 5)
        >>> W.shape, bool(np.array_equal(W[:, 70:90], poisson_weights(0, 70, 90, 5)))
        ((5, 200), True)
    """
    if stop <= start:
        return np.zeros((n_boot, 0))
    u0, u1 = start // _WEIGHT_UNIT, (stop - 1) // _WEIGHT_UNIT
    key = int(seed) % 2**64
    W = np.concatenate([np.random.default_rng([key, u]).poisson(1.0, size=(_WEIGHT_UNIT, n_boot))
                        for u in range(u0, u1 + 1)])
    return W[start - u0 * _WEIGHT_UNIT: stop - u0 * _WEIGHT_UNIT].astype(np.float64).T


# ---------------------------------------------------------------------------------------------- helpers
def _check_shape(image_shape: Any) -> tuple[int, ...]:
    shp = tuple(int(s) for s in image_shape)
    if len(shp) not in (1, 2) or min(shp) < 2:
        raise ShapeError(f"image_shape must be (L,) or (H, W) with sizes ≥ 2; got {shp}")
    return shp


def _images(X: Any, image_shape: tuple[int, ...] | None, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, L), (n, H, W), (n, 1, H, W) or flat (n, d) with image_shape → (n, *shape) view in the input's real
    dtype (no float64 copy of a large array: blocks are converted by :func:`_block`), and the shape."""
    x = X.detach().cpu().numpy() if is_torch(X) else np.asarray(X)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ShapeError(f"{name} must be a real numeric array; got dtype {x.dtype}")
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ShapeError(f"{name}: only single-channel images are supported; got shape {x.shape} (C = "
                             f"{x.shape[1]}); analyse one channel at a time")
        x = x[:, 0]
    if image_shape is not None:
        shp = _check_shape(image_shape)
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != int(np.prod(shp)):
            raise ShapeError(f"{name} must hold images of shape {shp} (flat or not); got {x.shape}")
        x = x.reshape(x.shape[0], *shp)
    elif x.ndim not in (2, 3):
        raise ShapeError(f"{name} must be (n, L), (n, H, W) or (n, 1, H, W); got shape {x.shape}")
    if x.shape[0] == 0:
        raise EmptyInputError(f"{name} is empty (shape {x.shape})")
    return x, _check_shape(x.shape[1:])


def _block(x: np.ndarray, s: int, name: str) -> np.ndarray:
    """Rows s … s + _BATCH as float64, checked finite (the error names the rows)."""
    return check_finite(np.asarray(x[s : s + _BATCH], dtype=np.float64), f"{name} (rows {s}–{s + _BATCH - 1})")


def _mean(x: np.ndarray) -> float:
    """Mean of all entries in float64, block by block (no float64 copy of the whole array)."""
    return float(sum(np.sum(x[s : s + _BATCH], dtype=np.float64) for s in range(0, len(x), _BATCH)) / x.size)


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
    quantities are copied, complex ones conjugated), centred with ``fftshift`` for display."""
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


def _basic(est: np.ndarray, reps: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Basic bootstrap interval [2θ̂ − q_hi, 2θ̂ − q_lo] along axis 0 of ``reps`` (NaN replicates skipped)."""
    a = (1 - ci) / 2
    quantile = np.nanquantile if np.isnan(reps).any() else np.quantile  # nanquantile is ~10× slower
    with np.errstate(invalid="ignore"):
        qlo, qhi = quantile(reps, [a, 1 - a], axis=0)
    return 2 * est - qhi, 2 * est - qlo


def _z_normal(est: np.ndarray, reps: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """A [0, 1] statistic's interval on the z = atanh(√·) scale: 2ẑ − mean z* ± z_{(1+ci)/2}·sd(z*)."""
    z = np.arctanh(np.sqrt(np.clip(est, 0.0, 1.0 - 1e-15)))
    with np.errstate(invalid="ignore"):
        zb = np.arctanh(np.sqrt(np.clip(reps, 0.0, 1.0 - 1e-15)))
        zc, sd = 2 * z - np.nanmean(zb, axis=0), np.nanstd(zb, axis=0, ddof=1)
    half = float(norm.ppf((1 + ci) / 2)) * sd
    return np.tanh(np.maximum(zc - half, 0.0)) ** 2, np.tanh(np.maximum(zc + half, 0.0)) ** 2


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


def coherence_interval(g: np.ndarray, g_b: np.ndarray, ci: float, n_images: float,
                       real: np.ndarray | bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the magnitude-squared coherence γ² on Fisher's z = atanh(|γ|) scale, mapped back into [0, 1].

    On the z scale the estimate of ν = n_images − 1 independent images (one degree of freedom goes to the
    intercept) has bias 1/(2(ν − 1)) and standard error 1/√(2(ν − 1)) for complex Gaussian Fourier coefficients
    (Enochson & Goodman 1965; Bendat & Piersol, Random Data §9.3); at real (self-conjugate) frequencies it is
    the correlation of real variables, unbiased to first order with standard error 1/√(ν − 2). The interval is
    ẑ − bias ± z_{(1+ci)/2} · max(that standard error, the bootstrap's), so heavy-tailed (non-Gaussian) outputs
    widen it; its ends are tanh²(max(·, 0)). Simulated coverage at 30 images (``tests/test_spectral.py``,
    ``benchmarks/bench_intervals.py``): ≥ 0.92 at every frequency, where the basic interval on γ² itself gave
    0.80–0.90.

    Arguments:
        g: (...) estimates γ̂² in [0, 1] (NaN where undefined).
        g_b: (n_boot, ...) bootstrap replicates.
        ci: confidence level.
        n_images: the number of independent images the estimate averages (after any intercept: give n − 1 + 1).
        real: boolean mask (broadcast to ``g``) of real-valued frequencies.

    Returns:
        (low, high) arrays of ``g``'s shape in [0, 1].

    Example:
        >>> lo, hi = coherence_interval(np.array([0.5]), np.full((50, 1), 0.5), 0.95, n_images=30)
        >>> bool(0 < lo[0] < 0.5 < hi[0] < 1)
        True
    """
    nu = max(float(n_images) - 1.0, 3.0)
    real = np.broadcast_to(np.asarray(real, dtype=bool), np.shape(g))
    bias = np.where(real, 0.0, 1.0 / (2.0 * (nu - 1.0)))
    se = np.where(real, 1.0 / np.sqrt(nu - 2.0), 1.0 / np.sqrt(2.0 * (nu - 1.0)))
    z = np.arctanh(np.sqrt(np.clip(g, 0.0, 1.0 - 1e-15)))
    with np.errstate(invalid="ignore"):
        zb = np.arctanh(np.sqrt(np.clip(g_b, 0.0, 1.0 - 1e-15)))
        sd = np.nanstd(zb, axis=0, ddof=1) if len(g_b) > 1 else np.zeros(np.shape(g))
    half = float(norm.ppf((1 + ci) / 2)) * np.fmax(se, np.nan_to_num(sd))
    zc = z - bias
    return np.tanh(np.maximum(zc - half, 0.0)) ** 2, np.tanh(np.maximum(zc + half, 0.0)) ** 2


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RadialProfile(ResultMixin):
    """Radially averaged |Ĉ(k)| and γ²(k) with bootstrap intervals.

    Arguments:
        radii: (n_bins,) |k| in cycles per sample (bin centres; 0 … 0.5).
        transfer_abs: (n_bins,) mean |Ĉ| over each annulus; ``transfer_abs_low``/``_high`` its interval.
        coherence: (n_bins,) mean γ² over each annulus; ``coherence_low``/``_high`` its interval.
        ci: confidence level of the intervals (NaN intervals when no bootstrap was run).
    """

    radii: np.ndarray
    transfer_abs: np.ndarray
    transfer_abs_low: np.ndarray
    transfer_abs_high: np.ndarray
    coherence: np.ndarray
    coherence_low: np.ndarray
    coherence_high: np.ndarray
    ci: float


@dataclass(frozen=True)
class SpectralSurrogateResult(ResultMixin):
    """What a :class:`SpectralSurrogate` measured, with intervals (rfftn layout throughout).

    Arguments:
        image_shape: (L,) or (H, W).
        n_samples: probe images used.
        radii: |k| per frequency (cycles per sample), rfft shape.
        transfer: Ĉ(k), complex, rfft shape; ``transfer_real_low``/``_high`` and ``transfer_imag_low``/``_high``
            are intervals of its real and imaginary parts.
        coherence: γ²(k) ∈ [0, 1] (NaN where an input or output has no power); ``coherence_low``/``_high``.
        linear_fraction: share of the output's (centred) power explained by the surrogate, Σ γ² S_ff / Σ S_ff
            (the surrogate's in-sample R²), with ``linear_fraction_interval``.
        radial: :class:`RadialProfile`.
        ci: confidence level; n_boot: bootstrap replicates (0: intervals are NaN).
    """

    image_shape: tuple[int, ...]
    n_samples: int
    radii: np.ndarray
    transfer: np.ndarray
    transfer_real_low: np.ndarray
    transfer_real_high: np.ndarray
    transfer_imag_low: np.ndarray
    transfer_imag_high: np.ndarray
    coherence: np.ndarray
    coherence_low: np.ndarray
    coherence_high: np.ndarray
    linear_fraction: float
    linear_fraction_interval: tuple[float, float]
    radial: RadialProfile
    ci: float
    n_boot: int

    @property
    def transfer_plane(self) -> np.ndarray:
        """Ĉ(k) on the full frequency plane (zero frequency at the centre), :func:`full_plane` of ``transfer``."""
        return full_plane(self.transfer, self.image_shape)

    @property
    def coherence_plane(self) -> np.ndarray:
        """γ²(k) on the full frequency plane (zero frequency at the centre), :func:`full_plane` of ``coherence``."""
        return full_plane(self.coherence, self.image_shape)


# ---------------------------------------------------------------------------------------------- estimator
class SpectralSurrogate:
    """Shift-invariant (circulant) linear surrogate of a model from probe pairs, estimated in the Fourier domain.

    References:
        Welch (1967); Bendat & Piersol, Random Data (coherence); Chamandy et al. (2012), Poisson bootstrap.

    Arguments:
        image_shape: (L,) or (H, W) to reshape flat (n, d) inputs; None to take images as given.
        fit_intercept: fit a constant image as intercept (removes the mean pixel value at k = 0).
        n_boot: Poisson-bootstrap replicates over probe images for intervals (0: none). Memory
            ~4 · n_boot · d / 2 float64 values.
        seed: seed of the bootstrap weights.
        tol: relative threshold under which S_yy(k) counts as zero (Ĉ = 0 and γ² = NaN there).

    Fitted attributes: ``image_shape_``, ``n_samples_``, ``spectrum_in_`` (S_yy), ``spectrum_out_`` (S_ff),
    ``cross_spectrum_`` (S_fy, complex), ``transfer_`` (Ĉ), ``coherence_`` (γ²), ``intercept_`` (constant pixel
    value), ``mean_in_``, ``mean_out_``.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.standard_normal((200, 8, 8))
        >>> sur = SpectralSurrogate(n_boot=20).fit(Y, 2 * Y + 1)
        >>> bool(np.allclose(sur.transfer_, 2)), round(sur.intercept_, 12)
        (True, 1.0)
    """

    def __init__(self, image_shape: tuple[int, ...] | None = None, fit_intercept: bool = True, n_boot: int = 200,
                 seed: int = 0, tol: float = 1e-12):
        self.image_shape = image_shape
        self.fit_intercept = fit_intercept
        self.n_boot = n_boot
        self.seed = seed
        self.tol = tol

    # ------------------------------------------------------------------ fitting
    def _reset(self) -> None:
        for a in ("image_shape_", "n_samples_", "_acc", "transfer_"):
            if hasattr(self, a):
                delattr(self, a)

    def fit(self, Y: Any, F: Any) -> SpectralSurrogate:
        """Fit on probe inputs Y and model outputs F = f(Y), both (n, L), (n, H, W), (n, 1, H, W) or flat
        (n, d) with ``image_shape``; returns self."""
        self._reset()
        return self.partial_fit(Y, F)

    def partial_fit(self, Y: Any, F: Any, first_index: int | None = None) -> SpectralSurrogate:
        """Add a batch of probe pairs (streaming; equals ``fit`` on all of them up to rounding); returns self.

        ``first_index``: the position of the batch's first image in the whole sequence (it keys the images'
        bootstrap weights); None: right after the images added so far. A block fitted alone with its position,
        then :meth:`merge`-d with the others, equals the fit on the whole sequence."""
        if not isinstance(self.n_boot, (int, np.integer)) or self.n_boot < 0:
            raise ConfigError(f"n_boot must be a non-negative integer; got {self.n_boot!r}")
        y, shp = _images(Y, self.image_shape, "inputs")
        f, shp_f = _images(F, self.image_shape, "outputs")
        if shp_f != shp or f.shape[0] != y.shape[0]:
            raise ShapeError(f"inputs and outputs must be images of the same shape and number (a shift-invariant "
                             f"map); got inputs {y.shape} and outputs {f.shape}")
        if not hasattr(self, "_acc"):
            self.image_shape_ = shp
            K = frequency_radii(shp).shape
            B = int(self.n_boot)
            self._acc = {
                "n": 0, "next": 0,
                "cy": _mean(y) if self.fit_intercept else 0.0,  # pilot shifts (accuracy at k = 0)
                "cf": _mean(f) if self.fit_intercept else 0.0,
                "sy": 0.0, "sf": 0.0, "yy": np.zeros(K), "ff": np.zeros(K), "fy": np.zeros(K, complex),
                "bw": np.zeros(B), "bsy": np.zeros(B), "bsf": np.zeros(B), "byy": np.zeros((B, *K)),
                "bff": np.zeros((B, *K)), "bfy_re": np.zeros((B, *K)), "bfy_im": np.zeros((B, *K)),
            }
        elif shp != self.image_shape_:
            raise ShapeError(f"batch has images of shape {shp}; earlier batches had {self.image_shape_}")
        acc = self._acc
        if first_index is not None:
            if isinstance(first_index, bool) or not isinstance(first_index, (int, np.integer)) or first_index < 0:
                raise ConfigError(f"first_index must be a non-negative integer; got {first_index!r}")
            acc["next"] = int(first_index)
        axes = tuple(range(1, len(shp) + 1))
        dc = (slice(None),) + (0,) * len(shp)
        for s in range(0, y.shape[0], _BATCH):
            Yh = np.fft.rfftn(_block(y, s, "inputs") - acc["cy"], axes=axes)
            Fh = np.fft.rfftn(_block(f, s, "outputs") - acc["cf"], axes=axes)
            pyy, pff = Yh.real**2 + Yh.imag**2, Fh.real**2 + Fh.imag**2
            pfy = Fh * np.conj(Yh)
            acc["n"] += Yh.shape[0]
            acc["sy"] += float(Yh[dc].real.sum())
            acc["sf"] += float(Fh[dc].real.sum())
            acc["yy"] += pyy.sum(0)
            acc["ff"] += pff.sum(0)
            acc["fy"] += pfy.sum(0)
            if self.n_boot:
                b = Yh.shape[0]
                W = poisson_weights(self.seed, acc["next"], acc["next"] + b, self.n_boot)  # (B, b)
                acc["bw"] += W.sum(1)
                acc["bsy"] += W @ Yh[dc].real
                acc["bsf"] += W @ Fh[dc].real
                for key, arr in (("byy", pyy), ("bff", pff), ("bfy_re", pfy.real), ("bfy_im", pfy.imag)):
                    acc[key] += (W @ arr.reshape(b, -1)).reshape(acc[key].shape)
            acc["next"] += Yh.shape[0]
        self._finish()
        return self

    def merge(self, other: SpectralSurrogate) -> SpectralSurrogate:
        """A new surrogate fitted on the images of both (per-block partial fits merged in a tree; the blocks
        must have been fitted with their ``first_index`` for the replicates to be those of the whole fit).

        The raw sums add; only the k = 0 terms move, from ``other``'s pilot shift to this one's.

        Example:
            >>> rng = np.random.default_rng(0); Y = rng.standard_normal((300, 8)); F = 2 * Y + Y**2
            >>> whole = SpectralSurrogate(n_boot=10).fit(Y, F)
            >>> a = SpectralSurrogate(n_boot=10).partial_fit(Y[:100], F[:100], first_index=0)
            >>> b = SpectralSurrogate(n_boot=10).partial_fit(Y[100:], F[100:], first_index=100)
            >>> m, w = a.merge(b).result(), whole.result()
            >>> bool(np.allclose(m.transfer, w.transfer)), bool(np.allclose(m.coherence_low, w.coherence_low))
            (True, True)
        """
        for s in (self, other):
            if not hasattr(s, "_acc"):
                raise NotFittedError("SpectralSurrogate.merge: both surrogates must be fitted")
        if (self.image_shape_, self.fit_intercept, self.n_boot, self.seed) != (
                other.image_shape_, other.fit_intercept, other.n_boot, other.seed):
            raise ConfigError("SpectralSurrogate.merge: the surrogates differ in image shape, fit_intercept, n_boot "
                              "or seed")
        a, b = self._acc, other._acc
        d = int(np.prod(self.image_shape_))
        dy, df = (b["cy"] - a["cy"]) * d, (b["cf"] - a["cf"]) * d  # other's k = 0 terms, moved to a's pilots
        dc = (Ellipsis,) + (0,) * len(self.image_shape_)
        out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in a.items()}
        for k in ("n", "sy", "sf", "yy", "ff", "fy", "bw", "bsy", "bsf", "byy", "bff", "bfy_re", "bfy_im"):
            out[k] = out[k] + b[k]
        out["next"] = max(a["next"], b["next"])
        for n_, sy, sf, yy, ff, fy in (("n", "sy", "sf", "yy", "ff", "fy"),
                                       ("bw", "bsy", "bsf", "byy", "bff", "bfy_re")):
            nb = np.asarray(b[n_], dtype=np.float64)
            out[yy][dc] += 2 * dy * b[sy] + nb * dy**2
            out[ff][dc] += 2 * df * b[sf] + nb * df**2
            out[fy][dc] += df * b[sy] + dy * b[sf] + nb * dy * df
            out[sy] = out[sy] + nb * dy
            out[sf] = out[sf] + nb * df
        new = type(self)(**{k: getattr(self, k) for k in ("image_shape", "fit_intercept", "n_boot", "seed", "tol")})
        new.image_shape_, new._acc = self.image_shape_, out
        new._finish()
        return new

    def _spectra(self, n: Any, sy: Any, sf: Any, yy: np.ndarray, ff: np.ndarray, fy: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centred spectra S_yy, S_ff, S_fy from raw sums (only k = 0 changes); leading axes broadcast."""
        nd = len(self.image_shape_)
        d = int(np.prod(self.image_shape_))
        yy, ff, fy = yy.copy(), ff.copy(), fy.copy()
        n = np.asarray(n, dtype=np.float64)
        if self.fit_intercept:
            idx = (Ellipsis,) + (0,) * nd
            with np.errstate(invalid="ignore", divide="ignore"):
                yy[idx] -= sy**2 / n
                ff[idx] -= sf**2 / n
                fy[idx] -= sf * sy / n
        scale = (n * d)[(...,) + (None,) * nd] if n.ndim else n * d
        with np.errstate(invalid="ignore", divide="ignore"):
            return yy / scale, ff / scale, fy / scale

    def _ratios(self, Syy: np.ndarray, Sff: np.ndarray, Sfy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        axes = tuple(range(Syy.ndim - len(self.image_shape_), Syy.ndim))
        top = np.max(np.abs(Syy), axis=axes, keepdims=True)
        ok = Syy > self.tol * top
        with np.errstate(invalid="ignore", divide="ignore"):
            C = np.where(ok, Sfy / np.where(ok, Syy, 1.0), 0.0)
            okf = ok & (Sff > self.tol * np.max(np.abs(Sff), axis=axes, keepdims=True))
            g = np.where(okf, (Sfy.real**2 + Sfy.imag**2) / np.where(okf, Sff * Syy, 1.0), np.nan)
        return C, np.clip(g, 0.0, 1.0)

    def _finish(self) -> None:
        a = self._acc
        n = a["n"]
        self.n_samples_ = n
        Syy, Sff, Sfy = self._spectra(n, a["sy"], a["sf"], a["yy"], a["ff"], a["fy"])
        self.spectrum_in_, self.spectrum_out_, self.cross_spectrum_ = Syy, Sff, Sfy
        self.transfer_, self.coherence_ = self._ratios(Syy, Sff, Sfy)
        d = int(np.prod(self.image_shape_))
        self.mean_in_ = a["cy"] + a["sy"] / (n * d) if self.fit_intercept else 0.0
        self.mean_out_ = a["cf"] + a["sf"] / (n * d) if self.fit_intercept else 0.0
        c0 = self.transfer_[(0,) * len(self.image_shape_)].real
        self.intercept_ = float(self.mean_out_ - c0 * self.mean_in_) if self.fit_intercept else 0.0

    def _replicates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-replicate (S_yy, S_ff, S_fy, Ĉ, γ²), each (n_boot, *rfft_shape)."""
        a = self._acc
        Syy, Sff, Sfy = self._spectra(a["bw"], a["bsy"], a["bsf"], a["byy"], a["bff"], a["bfy_re"] + 1j * a["bfy_im"])
        C, g = self._ratios(Syy, Sff, Sfy)
        return Syy, Sff, Sfy, C, g

    def _check_fitted(self) -> None:
        if not hasattr(self, "transfer_"):
            raise NotFittedError("SpectralSurrogate is not fitted; call fit or partial_fit first")

    # ------------------------------------------------------------------ use
    def predict(self, Y: Any) -> np.ndarray:
        """Ĉ ⊛ (y − ȳ) + f̄ for images Y (same layouts as ``fit``); returns (n, *image_shape_) float64."""
        self._check_fitted()
        y, shp = _images(Y, self.image_shape_, "inputs")
        out = self.as_operator().matvec(y.reshape(y.shape[0], -1)) + self.intercept_
        return out.reshape(y.shape[0], *shp)

    def as_operator(self) -> LinearMap:
        """The surrogate's linear part as a circulant :class:`LinearMap` (matvec/rmatvec by FFT)."""
        self._check_fitted()
        return circulant(self.transfer_, self.image_shape_)

    def to_dense(self, max_dim: int = DENSE_MAX_DIM) -> np.ndarray:
        """The surrogate as a dense (d, d) matrix, only for small d (as ``LinearSurrogate.coef_``)."""
        return self.as_operator().to_dense(max_dim)

    def result(self, ci: float = 0.95) -> SpectralSurrogateResult:
        """Estimates with basic bootstrap intervals at level ``ci`` as a frozen :class:`SpectralSurrogateResult`."""
        self._check_fitted()
        if not 0 < ci < 1:
            raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
        shp = self.image_shape_
        C, g = self.transfer_, self.coherence_
        w = _multiplicity(shp)
        lin = float(np.nansum(w * np.nan_to_num(g) * self.spectrum_out_) / np.sum(w * self.spectrum_out_))
        radii, prof_c = radial_average(np.abs(C), shp)
        _, prof_g = radial_average(g, shp)
        nanK = np.full(C.shape, np.nan)
        nanR = np.full(radii.shape, np.nan)
        iv = dict(rl=nanK, rh=nanK, il=nanK, ih=nanK, gl=nanK, gh=nanK, pcl=nanR, pch=nanR, pgl=nanR, pgh=nanR)
        lin_iv = (float("nan"), float("nan"))
        if self.n_boot:
            _, Sff_b, _, C_b, g_b = self._replicates()
            iv["rl"], iv["rh"] = _basic(C.real, C_b.real, ci)
            iv["il"], iv["ih"] = _basic(C.imag, C_b.imag, ci)
            n_img = float(self.n_samples_) if self.fit_intercept else float(self.n_samples_) + 1.0
            iv["gl"], iv["gh"] = coherence_interval(g, g_b, ci, n_img, self_conjugate(shp))
            iv["pcl"], iv["pch"] = _basic(prof_c, radial_average(np.abs(C_b), shp)[1], ci)
            # an annulus averages many frequencies: the bootstrap's spread on the z scale (no per-bin formula)
            iv["pgl"], iv["pgh"] = _z_normal(prof_g, radial_average(g_b, shp)[1], ci)
            axes = tuple(range(1, 1 + len(shp)))
            lin_b = np.nansum(w * np.nan_to_num(g_b) * Sff_b, axis=axes) / np.sum(w * Sff_b, axis=axes)
            lo, hi = _z_normal(np.float64(lin), lin_b, ci)
            lin_iv = (float(lo), float(hi))
        radial = RadialProfile(radii, prof_c, iv["pcl"], iv["pch"], prof_g, iv["pgl"], iv["pgh"], float(ci))
        return SpectralSurrogateResult(
            image_shape=tuple(shp), n_samples=int(self.n_samples_), radii=frequency_radii(shp), transfer=C.copy(),
            transfer_real_low=iv["rl"], transfer_real_high=iv["rh"], transfer_imag_low=iv["il"],
            transfer_imag_high=iv["ih"], coherence=g.copy(), coherence_low=iv["gl"], coherence_high=iv["gh"],
            linear_fraction=lin, linear_fraction_interval=lin_iv, radial=radial, ci=float(ci),
            n_boot=int(self.n_boot),
        )

    @classmethod
    def from_model(cls, model: Any, inputs: Any, batch_size: int = 32, device: Any = None,
                   **params: Any) -> SpectralSurrogate:
        """Probe a torch model on images and fit, streaming batch by batch (``linlens.probing.probe_model``).

        Arguments:
            model: torch callable taking (batch, *inputs.shape[1:]) (e.g. (b, 1, H, W)) and returning the same shape.
            inputs: probe images (n, L), (n, H, W) or (n, 1, H, W) (numpy or torch; numpy memory maps stream).
            batch_size: images per model call.
            device: where the model runs (default: its parameters' device).
            params: hyper-parameters of the estimator.
        """
        shape = tuple(inputs.shape[1:])
        flat = _Flat(model, shape)
        n = inputs.shape[0]
        sur = cls(**params)
        sur._reset()
        batches = (np.asarray(inputs[s : s + batch_size], dtype=np.float64).reshape(-1, int(np.prod(shape)))
                   for s in range(0, n, batch_size))
        buf: list[tuple[np.ndarray, np.ndarray]] = []
        for _, yb, fb in probe_model(flat, batches, device=device):
            buf.append((yb, fb))
            if sum(len(b[0]) for b in buf) >= _BATCH:  # bootstrap updates are cheaper on larger blocks
                sur.partial_fit(*_stack(buf, shape))
                buf = []
        if buf:
            sur.partial_fit(*_stack(buf, shape))
        return sur

    def __repr__(self) -> str:
        return (f"SpectralSurrogate(image_shape={self.image_shape}, fit_intercept={self.fit_intercept}, "
                f"n_boot={self.n_boot}, seed={self.seed})")


def _stack(buf: list[tuple[np.ndarray, np.ndarray]], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([b[0] for b in buf]).reshape(-1, *shape),
            np.concatenate([b[1] for b in buf]).reshape(-1, *shape))


class _Flat(torch.nn.Module):
    """Adapter: a model on (b, *shape) images seen as a map of flat (b, d) rows (for ``probe_model``)."""

    def __init__(self, model: Any, shape: tuple[int, ...]):
        super().__init__()
        self.model, self.shape = model, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(-1, *self.shape)).reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class SpectralAnalysis(ResultMixin):
    """The Fourier-route answer to "is the network's surrogate close to A⁻¹, to Wiener, to C_data?".

    Arguments:
        surrogate: :class:`SpectralSurrogateResult` of the network.
        operator_transfer: H(k) of A (rfftn layout).
        wiener: Ŵ(k) (rfftn layout); prior_spectrum: P(k) used for it; noise_std: σ.
        filter_factors: φ(k) = Ĉ(k) H(k) of the network's surrogate; wiener_filter_factors: Ŵ(k) H(k).
        errors: reference name → data-weighted error E‖(C − R)y‖² / E‖Ry‖² over the probes (Parseval:
            Σ_k |Ĉ − R̂|² S_yy / Σ_k |R̂|² S_yy), for "A⁻¹" (pseudo-inverse 1/H where |H| > rcond·max|H|),
            "Wiener" and "C_data" (when given).
        errors_corrected: name → bias-corrected error 2θ̂ − mean of the replicates (estimation noise in Ĉ biases
            a squared distance upward; the basic interval is centred on this, not on θ̂).
        error_intervals: name → (low, high) basic bootstrap interval.
        closest: the verdict of :func:`linlens.surrogate.resampling.closest_reference` (the same rule as the
            dense route): a reference's name, "tie" (see ``verdict.closest``) or "none". The intervals resample
            the probe images only: references estimated from data (C_data, a Wiener filter with an estimated
            prior) are treated as fixed.
        verdict: the full :class:`~linlens.surrogate.resampling.ClosestVerdict` (None without replicates).
        paired: "R1 − R2" → {"difference", "low", "high", "p_value"} of the paired bootstrap of the errors.
        radial_filter_factors: (n_bins,) radial mean of Re φ; radial_operator_abs: radial mean of |H|;
        radial_wiener_abs: radial mean of |Ŵ|; radii: (n_bins,).
        signal_noise: the surrogate's expected test error split as on the dense route, per unit of E‖x‖² = Σ P:
            "signal_error" Σ|ĈH − 1|²P over the frequencies A sees, "noise_amplification" σ²Σ|Ĉ|², "null_space_error"
            ΣP over those it does not, "total" — each {plug_in, estimate (bias-corrected), low, high} (Poisson
            bootstrap over probe images, basic intervals; the null-space part does not depend on Ĉ).
        reference_status: reference → "fixed …" or "estimated: resampled with …" (see ``prior_from_data``).
        reference_signal_noise: the same split (plug-in values) of A⁻¹, the Wiener filter and C_data.
        radial_signal_error, radial_noise_amplification: (n_bins,) the surrogate's two terms per annulus of |k|
            (sums over the annulus: they add up to the totals, less the corners beyond the Nyquist circle in 2-D).
    """

    surrogate: SpectralSurrogateResult
    operator_transfer: np.ndarray
    wiener: np.ndarray
    prior_spectrum: np.ndarray
    noise_std: float
    filter_factors: np.ndarray
    wiener_filter_factors: np.ndarray
    errors: dict[str, float]
    errors_corrected: dict[str, float]
    error_intervals: dict[str, tuple[float, float]]
    closest: str
    verdict: ClosestVerdict | None
    paired: dict[str, dict[str, float]]
    radii: np.ndarray
    radial_filter_factors: np.ndarray
    radial_wiener_filter_factors: np.ndarray
    radial_operator_abs: np.ndarray
    radial_wiener_abs: np.ndarray
    signal_noise: dict[str, dict[str, float]] | None = None
    reference_status: dict[str, str] | None = None
    reference_signal_noise: dict[str, dict[str, float]] | None = None
    radial_signal_error: np.ndarray | None = None
    radial_noise_amplification: np.ndarray | None = None


def _error_standard_error(C: np.ndarray, R: np.ndarray, Syy: np.ndarray, Sff: np.ndarray, n: Any, w: np.ndarray,
                          real: np.ndarray, e: Any, ref_noise: tuple[str, np.ndarray, Any] | None = None
                          ) -> np.ndarray:
    """Delta-method standard error of the data-weighted error e = Σ w|C − R|²S / Σ w|R|²S (S = S_yy), frequencies
    taken as independent (a stationary process's Fourier coefficients are asymptotically so); leading axes of the
    arrays (replicates) broadcast, so the same function gives the estimate's standard error and each replicate's
    (from the replicate's own spectra and weight total n): the studentizer of the bootstrap-t "none" test.

    To first order de = [Σ 2wS Re(conj(D) dC) − Σ 2wS Re(conj(D + eR) dR) + Σ w(|D|² − e|R|²) dS]/Σ w|R|²S
    (D = C − R), with E|dC(k)|² = S_rr(k)/(n S_yy(k)) (S_rr = S_ff − |C|²S_yy, the residual spectrum: the classical
    variance of a frequency-response estimate), Var Re(conj(X) dC) = |X|² E|dC|²/2 at complex frequencies (all of
    it at the real ones), and Var dS = S²/n (×2 at the real frequencies; a Gaussian input's periodogram average).
    ``ref_noise``: None (a fixed reference), ("complex", E|dR|², None) for an estimated transfer function (C_data),
    or ("real", ∂R/∂P, Var dP) for a reference re-estimated from a prior spectrum P (the Wiener filter).
    """
    nd = real.ndim
    axes = tuple(range(C.ndim - nd, C.ndim)) if C.ndim >= nd else tuple(range(R.ndim - nd, R.ndim))
    n = np.asarray(n, dtype=np.float64)
    n = n.reshape(n.shape + (1,) * nd) if n.ndim else n
    e = np.asarray(e, dtype=np.float64)
    e = e.reshape(e.shape + (1,) * nd) if e.ndim else e
    half = np.where(real, 1.0, 0.5)
    D = C - R
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sum(w * np.abs(R) ** 2 * Syy, axis=axes)
        ok = Syy > 0
        vC = np.where(ok, np.maximum(Sff - np.abs(C) ** 2 * Syy, 0.0) / (n * np.where(ok, Syy, 1.0)), 0.0)
        g = 2 * w * Syy
        v = np.sum(g * g * np.abs(D) ** 2 * vC * half, axis=axes)
        if ref_noise is not None:
            kind, a, b = ref_noise
            X = D + e * R
            if kind == "complex":
                v = v + np.sum(g * g * np.abs(X) ** 2 * a * half, axis=axes)
            else:
                v = v + np.sum(g * g * (X.real * a.real + X.imag * a.imag) ** 2 * b, axis=axes)
        v = v + np.sum((w * (np.abs(D) ** 2 - e * np.abs(R) ** 2)) ** 2 * Syy**2 * np.where(real, 2.0, 1.0) / n,
                       axis=axes)
        return np.sqrt(np.maximum(v, 0.0)) / den


def spectral_analysis(
    surrogate: SpectralSurrogate,
    operator: Any,
    noise_std: float,
    targets: Any = None,
    prior: Any = None,
    data_surrogate: SpectralSurrogate | None = None,
    ci: float = 0.95,
    rcond: float = 1e-12,
    prior_from_data: bool = False,
) -> SpectralAnalysis:
    """Compare a fitted :class:`SpectralSurrogate` with A⁻¹, the Wiener filter and C_data, in the Fourier domain.

    Arguments:
        surrogate: fitted on probe pairs (y, f(y)).
        operator: the forward operator A: a circular convolution in any form :func:`linlens.operators.as_operator`
            takes (for a deepinv-like object pass a :class:`LinearMap` built with ``in_shape``), or its transfer
            function H (complex array in rfftn layout).
        noise_std: σ of the white measurement noise.
        targets: clean images x (to estimate the prior spectrum P), or None when ``prior`` is given.
        prior: P(k) in rfftn layout (or a scalar for a white prior), used instead of ``targets``.
        data_surrogate: a :class:`SpectralSurrogate` fitted on (y, x) training pairs (C_data, the data estimate of
            the Wiener filter), optional.
        ci: level of the intervals.
        rcond: relative cut of |H| for the pseudo-inverse.
        prior_from_data: the ``targets`` are the training targets ``data_surrogate`` was fitted on (``targets``
            None: P is ``data_surrogate``'s output spectrum, the same images' spectrum, e.g. merged from blocks
            on Dask); then, when
            ``data_surrogate`` has as many replicates as ``surrogate``, the Wiener filter is re-estimated from each
            replicate's prior spectrum. (C_data is resampled whenever ``data_surrogate`` has those replicates:
            references that are estimates carry their own images' noise; σ is held fixed.)

    Returns:
        :class:`SpectralAnalysis`.
    """
    surrogate._check_fitted()
    shp = surrogate.image_shape_
    K = frequency_radii(shp).shape
    if isinstance(operator, np.ndarray) and np.iscomplexobj(operator) and operator.shape == K:
        H = operator.astype(np.complex128)
    else:
        op = as_operator(operator)
        H = op.transfer_function()
        if H.shape != K:
            raise ShapeError(f"operator acts on images of rfft shape {H.shape}; the surrogate's is {K}")
        rcond = max(rcond, op.transfer_rcond())  # a float32 operator's |H| below its rounding is not known ≠ 0
    if prior is None and targets is None and prior_from_data and data_surrogate is not None:
        P = np.asarray(data_surrogate.spectrum_out_, dtype=np.float64)  # its outputs are the training targets
    elif prior is None:
        if targets is None:
            raise ConfigError("spectral_analysis needs targets (clean images) or prior (their power spectrum)")
        P = prior_spectrum(targets, shp, surrogate.fit_intercept)
    else:
        P = np.broadcast_to(np.asarray(prior, dtype=np.float64), K).copy()
    W = wiener_filter(H, P, check_noise_std(noise_std, "noise_std"))
    absH = np.abs(H)
    ok = absH > rcond * absH.max()
    Hinv = np.where(ok, 1.0 / np.where(ok, H, 1.0), 0.0)
    refs = {"A⁻¹": Hinv, "Wiener": W}
    if data_surrogate is not None:
        data_surrogate._check_fitted()
        refs["C_data"] = data_surrogate.transfer_
    res = surrogate.result(ci)
    w = _multiplicity(shp)

    def err(C: np.ndarray, R: np.ndarray, Syy: np.ndarray) -> np.ndarray:
        axes = tuple(range(C.ndim - len(shp), C.ndim))
        num = np.sum(w * np.abs(C - R) ** 2 * Syy, axis=axes)
        return num / np.sum(w * np.abs(R) ** 2 * Syy, axis=axes)

    errors = {k: float(err(surrogate.transfer_, R, surrogate.spectrum_in_)) for k, R in refs.items()}
    intervals: dict[str, tuple[float, float]] = {}
    paired: dict[str, dict[str, float]] = {}
    names = list(refs)
    corrected: dict[str, float] = dict(errors)
    closest = "tie"
    verdict = None
    C_b = None
    status = {"A⁻¹": "fixed (from the operator)",
              "Wiener": "fixed (from the operator, σ and the prior spectrum" + (" given)" if prior is not None else
                                                                             " estimated from the targets)")}
    if surrogate.n_boot:
        # the same bias correction, basic intervals, paired tests and verdict rule as the dense route
        Syy_b, _, _, C_b, _ = surrogate._replicates()
        refs_b: dict[str, np.ndarray] = dict(refs)
        if data_surrogate is not None and data_surrogate.n_boot == surrogate.n_boot:
            _, P_b, _, D_b, _ = data_surrogate._replicates()  # Poisson replicates over the training images
            refs_b["C_data"] = D_b
            status["C_data"] = f"estimated: resampled with its own {int(data_surrogate.n_samples_)} training images"
            if prior_from_data and prior is None:
                refs_b["Wiener"] = wiener_filter(np.broadcast_to(H, P_b.shape), np.maximum(P_b, 0.0), noise_std)
                status["Wiener"] = ("estimated (prior spectrum from the training targets): resampled with them; "
                                    "σ held fixed")
        elif data_surrogate is not None:
            status["C_data"] = "estimated, held fixed (no replicates of its training images)"
        reps = {k: np.asarray(err(C_b, refs_b[k], Syy_b), dtype=np.float64) for k in refs}
        # analytic standard errors at the estimate and per replicate: the bootstrap-t "none" test (issue 21)
        real = self_conjugate(shp)
        sa = surrogate._acc
        n_a, n_b = float(surrogate.n_samples_), sa["bw"]
        _, Sff_b, _, _, _ = surrogate._replicates()
        noise: dict[str, tuple[Any, Any]] = dict.fromkeys(refs)
        if "C_data" in refs_b and refs_b["C_data"] is not refs["C_data"]:
            ds = data_surrogate
            Syy_d, Sff_d, _, _, _ = ds._replicates()
            with np.errstate(invalid="ignore", divide="ignore"):
                def var_c(Cd: np.ndarray, Sy: np.ndarray, Sf: np.ndarray, nn: Any) -> np.ndarray:
                    nn = np.asarray(nn, dtype=np.float64)
                    nn = nn.reshape(nn.shape + (1,) * len(shp)) if nn.ndim else nn
                    okd = Sy > 0
                    return np.where(okd, np.maximum(Sf - np.abs(Cd) ** 2 * Sy, 0.0) / (nn * np.where(okd, Sy, 1.0)),
                                    0.0)
            noise["C_data"] = (("complex", var_c(ds.transfer_, ds.spectrum_in_, ds.spectrum_out_,
                                                 float(ds.n_samples_)), None),
                               ("complex", var_c(refs_b["C_data"], Syy_d, Sff_d, ds._acc["bw"]), None))
            if refs_b["Wiener"] is not refs["Wiener"]:  # dŴ/dP = H*σ²/(|H|²P + σ²)², Var dP = P²/n (×2 real)
                def dW(Pk: np.ndarray) -> np.ndarray:
                    return np.conj(H) * noise_std**2 / (np.abs(H) ** 2 * Pk + noise_std**2) ** 2

                def var_p(Pk: np.ndarray, nn: Any) -> np.ndarray:
                    nn = np.asarray(nn, dtype=np.float64)
                    nn = nn.reshape(nn.shape + (1,) * len(shp)) if nn.ndim else nn
                    return Pk**2 * np.where(real, 2.0, 1.0) / nn
                P_b0 = np.maximum(P_b, 0.0)
                noise["Wiener"] = (("real", dW(P), var_p(P, float(ds.n_samples_))),
                                   ("real", dW(P_b0), var_p(P_b0, ds._acc["bw"])))
        se = {k: float(_error_standard_error(surrogate.transfer_, refs[k], surrogate.spectrum_in_,
                                             surrogate.spectrum_out_, n_a, w, real, errors[k],
                                             None if noise[k] is None else noise[k][0])) for k in refs}
        se_b = {k: np.asarray(_error_standard_error(C_b, refs_b[k], Syy_b, Sff_b, n_b, w, real, reps[k],
                                                    None if noise[k] is None else noise[k][1]), dtype=np.float64)
                for k in refs}
        boot = bootstrap_from_replicates(errors, reps, ci, standard_error=se, se_replicates=se_b)
        corrected = {k: float(boot.bias_corrected[k]) for k in names}
        intervals = {k: (float(boot.low[k]), float(boot.high[k])) for k in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                d = paired_difference(boot, a, b)
                paired[f"{a} − {b}"] = {"difference": d.estimate, "low": d.low, "high": d.high, "p_value": d.p_value}
        verdict = closest_reference(boot, names)
        closest = verdict.verdict
    # the signal / noise split per frequency (the dense route's SignalNoiseSplit in the Fourier basis)
    wP = w * P
    tot = float(np.sum(wP))

    def split(T: np.ndarray) -> dict[str, np.ndarray]:
        axes = tuple(range(T.ndim - len(shp), T.ndim))
        sig = np.where(ok, np.abs(T * H - 1.0) ** 2, 0.0) * wP
        noi = noise_std**2 * np.abs(T) ** 2 * w
        return {"signal_error": np.sum(sig, axis=axes) / tot, "noise_amplification": np.sum(noi, axis=axes) / tot,
                "per_freq_signal": sig / tot, "per_freq_noise": noi / tot}

    sn = None
    ref_sn = None
    r_sig = r_noise = None
    if tot > 0:
        null = float(np.sum(np.where(ok, 0.0, wP))) / tot
        sp = split(surrogate.transfer_)
        plug_sn = {k: float(sp[k]) for k in ("signal_error", "noise_amplification")}
        plug_sn["total"] = plug_sn["signal_error"] + plug_sn["noise_amplification"] + null
        sn = {k: {"plug_in": v, "estimate": v, "low": float("nan"), "high": float("nan")} for k, v in plug_sn.items()}
        sn["null_space_error"] = {"plug_in": null, "estimate": null, "low": null, "high": null}
        if surrogate.n_boot:
            sb = split(C_b)
            reps_sn = {"signal_error": sb["signal_error"], "noise_amplification": sb["noise_amplification"],
                       "total": sb["signal_error"] + sb["noise_amplification"] + null}
            bs = bootstrap_from_replicates(plug_sn, reps_sn, ci)
            for k in plug_sn:
                sn[k].update(estimate=float(bs.bias_corrected[k]), low=max(float(bs.low[k]), 0.0),
                             high=max(float(bs.high[k]), 0.0))
        ref_sn = {}
        for k, R in refs.items():
            rs = split(R)
            ref_sn[k] = {"signal_error": float(rs["signal_error"]),
                         "noise_amplification": float(rs["noise_amplification"]),
                         "total": float(rs["signal_error"] + rs["noise_amplification"]) + null}
        bins, _ = _radial_bins(shp)
        r_sig = np.array([float(np.sum(sp["per_freq_signal"][bins == j])) for j in range(bins.max() + 1)])
        r_noise = np.array([float(np.sum(sp["per_freq_noise"][bins == j])) for j in range(bins.max() + 1)])
    phi, phiW = surrogate.transfer_ * H, W * H
    radii, r_phi = radial_average(phi.real, shp)
    return SpectralAnalysis(
        surrogate=res, operator_transfer=H, wiener=W, prior_spectrum=P, noise_std=float(noise_std),
        filter_factors=phi, wiener_filter_factors=phiW, errors=errors, errors_corrected=corrected,
        error_intervals=intervals, closest=closest, verdict=verdict,
        paired=paired, radii=radii, radial_filter_factors=r_phi,
        radial_wiener_filter_factors=radial_average(phiW.real, shp)[1],
        radial_operator_abs=radial_average(absH, shp)[1], radial_wiener_abs=radial_average(np.abs(W), shp)[1],
        signal_noise=sn, reference_status=status, reference_signal_noise=ref_sn, radial_signal_error=r_sig,
        radial_noise_amplification=r_noise,
    )


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


def prediction_errors(predictions: dict[str, np.ndarray], targets: np.ndarray, *, model: str = "model",
                baseline: str = "C_data", confidence: float = 0.95) -> dict[str, Any]:
    """Test MSE (per entry) and PSNR of several predictors on the same images, and the network-vs-baseline test.

    PSNR = 10 log₁₀(range²/MSE) with range = max − min of the targets. The paired t-test compares per-image
    squared errors of ``model`` and ``baseline`` (negative difference: the model is better — its nonlinear gain).

    Arguments:
        predictions: name → (n, d) predictions of the targets.
        targets: (n, d) (or any row shape) true images.
        model, baseline: the names compared by the paired test (skipped when either is missing).
        confidence: level of the paired interval.

    Returns:
        {"mse": name → float, "psnr": name → float (dB), "paired": :class:`~linlens.stats.PairedTestResult` or None}.

    Example:
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
        >>> r = prediction_errors({"model": X + 0.1, "C_data": X + 0.2}, X)
        >>> round(r["mse"]["model"], 6), round(r["psnr"]["model"], 3), r["paired"].difference < 0
        (0.01, 20.0, True)
    """
    Xt = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    sq = {k: np.sum((np.asarray(P, dtype=np.float64).reshape(Xt.shape) - Xt) ** 2, axis=1) for k, P in
          predictions.items()}
    return errors_from_squares(sq, Xt.shape[1], float(Xt.max() - Xt.min()), model=model, baseline=baseline,
                               confidence=confidence)


def errors_from_squares(squares: dict[str, np.ndarray], d: int, target_range: float, *, model: str = "model",
                        baseline: str = "C_data", confidence: float = 0.95) -> dict[str, Any]:
    """:func:`prediction_errors` from per-image squared errors (computed block by block, e.g. on Dask workers).

    Arguments:
        squares: name → (n,) per-image sums of squared errors ‖x̂ᵢ − xᵢ‖².
        d: values per image; target_range: max − min of the targets (for the PSNR).
        model, baseline, confidence: as :func:`prediction_errors`.

    Example:
        >>> r = errors_from_squares({"model": np.array([0.02, 0.02]), "C_data": np.array([0.08, 0.06])}, 2, 1.0)
        >>> round(r["mse"]["model"], 6), round(r["psnr"]["model"], 3)
        (0.01, 20.0)
    """
    sq = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in squares.items()}
    n = len(next(iter(sq.values()))) if sq else 0
    mse = {k: float(v.sum() / (n * d)) for k, v in sq.items()}
    rng_ = float(target_range)
    psnr = {k: (10 * float(np.log10(rng_**2 / v)) if v > 0 and rng_ > 0 else float("inf")) for k, v in mse.items()}
    paired = (paired_squared_error_test(sq[model], sq[baseline], confidence)
              if model in sq and baseline in sq and n >= 2 else None)
    return {"mse": mse, "psnr": psnr, "paired": paired}
