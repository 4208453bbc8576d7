"""Figures of the Fourier route (:mod:`linlens.spectral`): transfer functions and coherence as radial profiles
with bootstrap intervals and as 2-D maps, and filter factors against |H(k)|. Every function takes a result
(a :class:`~linlens.spectral.SpectralSurrogateResult` or a :class:`~linlens.spectral.SpectralAnalysis`), an
optional ``ax``, and returns the figure; nothing is computed here (the full frequency planes come from the
result's ``transfer_plane`` and ``coherence_plane``).

Example:
    >>> import numpy as np
    >>> from linlens.spectral import SpectralSurrogate
    >>> Y = np.random.default_rng(0).standard_normal((30, 8, 8))
    >>> res = SpectralSurrogate(n_boot=10).fit(Y, 0.5 * Y + 0.1 * Y**2).result()
    >>> len(plot_coherence(res).axes)
    1
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written headless; never needs a display
import numpy as np  # noqa: E402

from linlens.report.figures import _label  # noqa: E402
from linlens.report.figures import new_axes as _ax  # noqa: E402
from linlens.spectral import SpectralAnalysis, SpectralSurrogateResult  # noqa: E402

__all__ = ["plot_transfer", "plot_coherence", "plot_transfer_map", "plot_coherence_map",
           "plot_fourier_filter_factors"]


def _surrogate(result: Any) -> SpectralSurrogateResult:
    if isinstance(result, SpectralAnalysis):
        return result.surrogate
    if isinstance(result, SpectralSurrogateResult):
        return result
    raise TypeError(f"expected a SpectralSurrogateResult or SpectralAnalysis; got {type(result).__name__}")


def plot_transfer(result: Any, ax: Any = None, title: str = "Transfer function (radial mean of |·|)"):
    """Radial profile of |Ĉ(k)| with its bootstrap band; with a :class:`SpectralAnalysis` also |Ŵ| (Wiener)
    and |1/H| (A⁻¹).

    Example:
        >>> from linlens.spectral import SpectralSurrogate
        >>> Y = np.random.default_rng(0).standard_normal((40, 8))
        >>> res = SpectralSurrogate().fit(Y, 0.5 * Y).result()
        >>> np.round(plot_transfer(res).axes[0].lines[0].get_ydata(), 10).tolist()  # |Ĉ| = 0.5 at every |k|
        [0.5, 0.5, 0.5, 0.5, 0.5]
    """
    fig, ax = _ax(ax)
    s = _surrogate(result)
    r = s.radial
    ax.semilogy(r.radii, r.transfer_abs, marker=".", label="surrogate |Ĉ|")
    if np.isfinite(r.transfer_abs_low).any():
        ax.fill_between(r.radii, np.maximum(r.transfer_abs_low, 1e-300), r.transfer_abs_high, alpha=0.3,
                        label=f"{r.ci:.0%} interval")
    if isinstance(result, SpectralAnalysis):
        ax.semilogy(result.radii, result.radial_wiener_abs, ls="--", label="Wiener |Ŵ|")
        with np.errstate(divide="ignore"):
            ax.semilogy(result.radii, 1.0 / result.radial_operator_abs, ls=":", color="gray", label="A⁻¹ 1/|H|")
    return _label(fig, ax, "|k| (cycles / pixel)", "gain", title, which="both")


def plot_coherence(result: Any, ax: Any = None, title: str = "Coherence γ²(k): share of output power linear in y"):
    """Radial profile of the magnitude-squared coherence with its bootstrap band (1 = linear at that |k|).

    Example:
        >>> from linlens.spectral import SpectralSurrogate
        >>> Y = np.random.default_rng(0).standard_normal((40, 8))
        >>> res = SpectralSurrogate().fit(Y, 0.5 * Y).result()
        >>> np.round(plot_coherence(res).axes[0].lines[0].get_ydata(), 10).tolist()  # exactly linear: γ² = 1
        [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    fig, ax = _ax(ax)
    r = _surrogate(result).radial
    ax.plot(r.radii, r.coherence, marker=".", label="γ²")
    if np.isfinite(r.coherence_low).any():
        ax.fill_between(r.radii, r.coherence_low, r.coherence_high, alpha=0.3, label=f"{r.ci:.0%} interval")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("|k| (cycles / pixel)")
    ax.set_ylabel("γ²")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def _map(full: np.ndarray, shape: tuple[int, ...], ax: Any, title: str, label: str, **kw: Any):
    """Draw a full, centred frequency plane (the result's ``*_plane``): a curve for 1-D signals, an image else."""
    fig, ax = _ax(ax, (5, 4))
    if len(shape) == 1:
        k = np.fft.fftshift(np.fft.fftfreq(shape[0]))
        ax.plot(k, full.real, marker=".")
        ax.set_xlabel("k (cycles / sample)")
        ax.set_ylabel(label)
    else:
        H, W = shape
        ext = (-0.5, 0.5 - 1.0 / W, 0.5 - 1.0 / H, -0.5) if H % 2 == 0 else (-0.5, 0.5, 0.5, -0.5)
        im = ax.imshow(full.real, extent=ext, **kw)
        fig.colorbar(im, ax=ax, label=label)
        ax.set_xlabel("k_x")
        ax.set_ylabel("k_y")
    ax.set_title(title)
    return fig


def plot_transfer_map(result: Any, ax: Any = None, title: str = "log₁₀ |Ĉ(k)|"):
    """2-D map of log₁₀|Ĉ(k)| over the full frequency plane (zero frequency at the centre).

    Example:
        >>> from linlens.spectral import SpectralSurrogate
        >>> Y = np.random.default_rng(0).standard_normal((40, 4, 4))
        >>> res = SpectralSurrogate().fit(Y, 0.1 * Y).result()
        >>> np.round(plot_transfer_map(res).axes[0].images[0].get_array(), 10).max()  # log₁₀ 0.1 everywhere
        np.float64(-1.0)
    """
    s = _surrogate(result)
    with np.errstate(divide="ignore"):
        v = np.log10(np.abs(s.transfer_plane))
    return _map(v, s.image_shape, ax, title, "log₁₀ |Ĉ|", cmap="viridis")


def plot_coherence_map(result: Any, ax: Any = None, title: str = "Coherence γ²(k)"):
    """2-D map of γ²(k) over the full frequency plane (zero frequency at the centre).

    Example:
        >>> from linlens.spectral import SpectralSurrogate
        >>> Y = np.random.default_rng(0).standard_normal((40, 4, 4))
        >>> res = SpectralSurrogate().fit(Y, 0.1 * Y).result()
        >>> plot_coherence_map(res).axes[0].images[0].get_array().shape  # the full frequency plane
        (4, 4)
    """
    s = _surrogate(result)
    return _map(s.coherence_plane, s.image_shape, ax, title, "γ²", cmap="magma", vmin=0, vmax=1)


def plot_fourier_filter_factors(result: SpectralAnalysis, ax: Any = None,
                                title: str = "Filter factors φ(k) = Ĉ(k)H(k)"):
    """Re φ(k) against |H(k)| for the network's surrogate and the Wiener filter (1 = A⁻¹, 0 = discarded).

    Example:
        >>> from linlens.operators import as_operator
        >>> from linlens.problems import CircularBlur
        >>> from linlens.spectral import SpectralSurrogate, spectral_analysis
        >>> Y = np.random.default_rng(0).standard_normal((40, 6, 6))
        >>> A = as_operator(CircularBlur(1.0, size=3), in_shape=(6, 6))
        >>> an = spectral_analysis(SpectralSurrogate().fit(Y, 0.5 * Y), A, 0.1, prior=1.0)
        >>> line = plot_fourier_filter_factors(an).axes[0].lines[0]
        >>> bool(np.allclose(line.get_ydata(), an.filter_factors.real.ravel()))
        True
    """
    if not isinstance(result, SpectralAnalysis):
        raise TypeError(f"plot_fourier_filter_factors needs a SpectralAnalysis; got {type(result).__name__}")
    fig, ax = _ax(ax, (7, 4))
    h = np.abs(result.operator_transfer).ravel()
    order = np.argsort(h)
    ax.semilogx(h, result.filter_factors.real.ravel(), ".", ms=3, alpha=0.5, label="surrogate Re φ")
    ax.semilogx(h[order], result.wiener_filter_factors.real.ravel()[order], "-", color="C1", label="Wiener")
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="A⁻¹")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("|H(k)| of the operator")
    ax.set_ylabel("φ(k)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    return fig
