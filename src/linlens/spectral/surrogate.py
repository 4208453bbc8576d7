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
from linlens.errors import ConfigError, NotFittedError, ShapeError
from linlens.operators import DENSE_MAX_DIM, LinearMap, circulant
from linlens.probing import probe_model
from linlens.spectral._layout import _BATCH, _block, _images, _mean
from linlens.spectral.radial import _multiplicity, frequency_radii, full_plane, radial_average, self_conjugate

__all__ = [
    "SpectralSurrogate",
    "SpectralSurrogateResult",
    "RadialProfile",
    "coherence_interval",
    "poisson_weights",
]

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


def coherence_interval(g: np.ndarray, g_b: np.ndarray, ci: float, n_images: float,
                       real: np.ndarray | bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Interval of the magnitude-squared coherence γ² on Fisher's z = atanh(|γ|) scale, mapped back into [0, 1].

    On the z scale the estimate of ν = n_images − 1 independent images (one degree of freedom goes to the
    intercept) has bias 1/(2(ν − 1)) and standard error 1/√(2(ν − 1)) for complex Gaussian Fourier coefficients
    (Enochson & Goodman 1965; Bendat & Piersol, Random Data §9.3); at real (self-conjugate) frequencies it is
    the correlation of real variables, unbiased to first order with standard error 1/√(ν − 2). The interval is
    ẑ − bias ± z_{(1+ci)/2} · max(that standard error, the bootstrap's), so heavy-tailed (non-Gaussian) outputs
    widen it; its ends are tanh²(max(·, 0)). Simulated coverage at 30 images (``tests/test_spectral_surrogate.py``,
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

    Example:
        >>> Y = np.random.default_rng(0).standard_normal((100, 8, 8))
        >>> p = SpectralSurrogate(n_boot=10).fit(Y, 3 * Y).result().radial  # Ĉ = 3, γ² = 1 at every |k|
        >>> bool(np.allclose(p.transfer_abs, 3.0)), bool(np.allclose(p.coherence, 1.0)), p.radii.shape
        (True, True, (5,))
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

    Example:
        >>> Y = np.random.default_rng(0).standard_normal((100, 16))
        >>> r = SpectralSurrogate(n_boot=10).fit(Y, -Y).result()
        >>> r.image_shape, r.transfer.shape, bool(np.allclose(r.transfer, -1.0)), round(r.linear_fraction, 8), r.n_boot
        ((16,), (9,), True, 1.0, 10)
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
