"""Figures for local linearizations of image networks: Jacobian singular spectra and vectors, adaptive
filters as image grids, the Euler test and effective dimension against the noise level, and PSNR curves.
Every function takes results (never recomputes; summaries over patches, such as medians and intervals, come from
the caller), an optional ``ax``, and returns the matplotlib figure.

Example:
    >>> import numpy as np
    >>> fig = plot_effective_dimension([0.1, 0.2, 0.4], {"net": {"centre": np.array([40.0, 20.0, 10.0])}})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # reports are written headless; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from linlens.report.figures import _label  # noqa: E402
from linlens.report.figures import new_axes as _ax  # noqa: E402

if TYPE_CHECKING:  # only for annotations: figures never import the capability that made the result
    from linlens.jacobian import AdaptiveFilters, JacobianSVD

__all__ = [
    "mosaic",
    "plot_jacobian_spectrum",
    "plot_singular_vectors",
    "plot_adaptive_filters",
    "plot_euler_test",
    "plot_effective_dimension",
    "plot_psnr",
]


def _as_images(a: np.ndarray) -> np.ndarray:
    """(n, *shape) → (n, H, W): a single channel is squeezed, several are laid side by side."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 2:  # (n, d): square images when possible
        side = int(round(np.sqrt(a.shape[1])))
        if side * side != a.shape[1]:
            return a[:, None, :]
        return a.reshape(a.shape[0], side, side)
    if a.ndim == 4:  # (n, C, H, W)
        return np.concatenate(list(np.moveaxis(a, 1, 0)), axis=2)
    return a


def mosaic(images: np.ndarray, ncols: int | None = None, pad: int = 1, symmetric: bool = False) -> np.ndarray:
    """Tile images (n, H, W) into one array with NaN gutters (drawn blank); each tile scaled to [-1, 1]
    (``symmetric``: by its largest |value|, so 0 stays 0) or left as is.

    Example:
        >>> mosaic(np.ones((3, 2, 2)), ncols=2, pad=1).shape  # 2 rows × 2 columns of 2×2 tiles, 1-pixel gaps
        (5, 5)
    """
    imgs = _as_images(images)
    n, h, w = imgs.shape
    ncols = ncols or n
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for i, im in enumerate(imgs):
        if symmetric:
            m = np.nanmax(np.abs(im))
            im = im / m if m > 0 else im
        r, c = divmod(i, ncols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = im
    return out


def plot_jacobian_spectrum(result: JacobianSVD, ax: Any = None, index: int = 0, label: str | None = None):
    """Top-k singular values of J(y) for input ``index``, with the error bound of each as a bar.

    Example:
        >>> import torch
        >>> from linlens.jacobian import jacobian_svd
        >>> res = jacobian_svd(lambda x: x * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64),
        ...                    torch.ones(1, 3, dtype=torch.float64), k=2, tol=1e-10)
        >>> np.round(plot_jacobian_spectrum(res).axes[0].lines[0].get_ydata(), 8).tolist()
        [3.0, 2.0]
    """
    fig, ax = _ax(ax)
    s = result.singular_values[index]
    err = result.error_bounds[index]
    i = np.arange(1, len(s) + 1)
    ax.errorbar(i, s, yerr=err, marker=".", capsize=2, label=label or f"input {index}")
    ax.set_yscale("log")
    return _label(fig, ax, "index i", "σᵢ(J(y))",
                  f"Jacobian singular values (Krylov dim {result.krylov_dim}, {result.n_iter} iterations)",
                  which="both")


def plot_singular_vectors(result: JacobianSVD, ax: Any = None, index: int = 0, n: int = 8, side: str = "right"):
    """The first ``n`` singular vectors (``side`` "right": input space v_i, "left": output space u_i) of
    input ``index`` as images, each scaled to its largest |entry|.

    Example:
        >>> import torch
        >>> from linlens.jacobian import jacobian_svd
        >>> res = jacobian_svd(lambda x: 2.0 * x, torch.ones(1, 4, 4, dtype=torch.float64), k=2, tol=1e-10)
        >>> plot_singular_vectors(res, n=2).axes[0].images[0].get_array().shape  # two 4×4 tiles, one gap
        (4, 9)
    """
    fig, ax = _ax(ax, figsize=(1.3 * min(n, 8), 1.6 * -(-n // 8)))
    vecs = result.right_vectors if side == "right" else result.left_vectors
    k = min(n, vecs.shape[1])
    ax.imshow(mosaic(vecs[index, :k], ncols=min(k, 8), symmetric=True), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_axis_off()
    s = result.singular_values[index, :k]
    ax.set_title(f"{side} singular vectors; σ = " + ", ".join(f"{v:.3g}" for v in s[:4]) + ("…" if k > 4 else ""))
    return fig


def plot_adaptive_filters(result: AdaptiveFilters, ax: Any = None, index: int = 0, image: np.ndarray | None = None,
                          title: str | None = None):
    """The adaptive filters (rows of J(y)) of input ``index`` as a row of images, each scaled to its largest
    |weight| (red positive, blue negative), the filter's pixel marked; with ``image`` (*in_shape, e.g. the
    noisy input) it comes first, in gray, with every pixel marked.

    Example:
        >>> import torch
        >>> from linlens.jacobian import adaptive_filters
        >>> res = adaptive_filters(lambda x: 2.0 * x, torch.ones(1, 4, 4, dtype=torch.float64), [(1, 2)])
        >>> fig = plot_adaptive_filters(res)
        >>> [(int(line.get_xdata()[0]), int(line.get_ydata()[0])) for line in fig.axes[0].lines]  # row 1, col 2
        [(2, 1)]
    """
    filt = _as_images(result.filters[index])
    h, w = filt.shape[1:]
    tiles = [plt.get_cmap("RdBu_r")(0.5 + 0.5 * mosaic(f[None], symmetric=True))[..., :3] for f in filt]
    if image is not None:
        im = _as_images(np.asarray(image, dtype=float)[None])[0]
        lo, hi = float(np.min(im)), float(np.max(im))
        tiles.insert(0, plt.get_cmap("gray")((im - lo) / (hi - lo) if hi > lo else im * 0)[..., :3])
    gutter = np.ones((h, 1, 3))
    row = np.concatenate([x for t in tiles for x in (t, gutter)][:-1], axis=1)
    fig, ax = _ax(ax, figsize=(1.6 * len(tiles), 1.9))
    ax.imshow(row)
    off = 0 if image is None else 1
    for j, pix in enumerate(result.pixels):
        r, c = int(pix[-2]), int(pix[-1])
        for t in ([0, j + off] if image is not None else [j]):
            ax.plot(t * (w + 1) + c, r, marker="s", ms=4, mfc="none", mec="lime", mew=1.0)
    ax.set_axis_off()
    ax.set_title(title or "adaptive filters: rows of J(y) (pixel marked)", fontsize=9)
    return fig


def plot_euler_test(noise_levels: Sequence[float], bands: Mapping[str, Mapping[str, Any]], ax: Any = None,
                    train_max: float | None = None):
    """The Euler residual ‖f(y) − J(y) y‖/‖f(y)‖ against the noise level, one line per network, on a log scale.

    Arguments:
        noise_levels: (n_levels,) σ.
        bands: network → ``{"centre": (n_levels,), "low": (n_levels,), "high": (n_levels,), "exact": bool}``,
            e.g. the median and the 10–90% range over the test patches, computed by the caller; ``exact``: every
            residual was exactly 0 (drawn at 1e-18, said in the legend).
        train_max: top of the training noise range (shaded).

    Example:
        >>> band = {"centre": np.zeros(2), "low": np.zeros(2), "high": np.zeros(2), "exact": True}
        >>> plot_euler_test([0.1, 0.2], {"2y": band}).axes[0].get_legend().get_texts()[0].get_text()
        '2y (exactly 0, drawn at 1e-18)'
    """
    fig, ax = _ax(ax)
    x = np.asarray(noise_levels, dtype=float)
    for name, b in bands.items():
        exact = bool(b.get("exact", False))
        def floor(v: Any) -> np.ndarray:
            return np.maximum(np.asarray(v, dtype=float), 1e-18)
        ax.plot(x, floor(b["centre"]), marker="o", label=name + (" (exactly 0, drawn at 1e-18)" if exact else ""))
        ax.fill_between(x, floor(b["low"]), floor(b["high"]), alpha=0.2)
    ax.set_yscale("log")
    if train_max is not None:
        ax.axvspan(0, train_max, color="0.9", zorder=0, label="training noise range")
    return _label(fig, ax, "noise level σ", "‖f(y) − J(y) y‖ / ‖f(y)‖",
                  "Euler test (0 ⇔ f is homogeneous: f(y) = J(y) y)", which="both")


def plot_effective_dimension(noise_levels: Sequence[float], bands: Mapping[str, Mapping[str, Any]], ax: Any = None,
                             reference_slope: float | None = -1.0, train_max: float | None = None):
    """Effective dimension against the noise level on log-log axes, one line per map.

    Arguments:
        noise_levels: (n_levels,) σ.
        bands: map → ``{"centre": (n_levels,)}`` with optional ``"low"`` and ``"high"`` (a band drawn around it),
            computed by the caller (e.g. the mean over patches and its interval).
        reference_slope: a dashed line of this slope (the paper's d ∝ 1/σ) through the first map's first point.
        train_max: top of the training noise range (dotted).

    Example:
        >>> fig = plot_effective_dimension([0.1, 0.2], {"net": {"centre": np.array([30.0, 15.0])}})
        >>> fig.axes[0].lines[0].get_ydata().tolist(), fig.axes[0].lines[1].get_ydata().tolist()  # d, slope −1
        ([30.0, 15.0], [30.0, 15.0])
    """
    fig, ax = _ax(ax)
    x = np.asarray(noise_levels, dtype=float)
    first = None
    for name, b in bands.items():
        centre = np.asarray(b["centre"], dtype=float)
        ax.plot(x, centre, marker="o", label=name)
        if "low" in b and "high" in b:
            ax.fill_between(x, np.asarray(b["low"], dtype=float), np.asarray(b["high"], dtype=float), alpha=0.2)
        if first is None:
            first = centre[0]
    if reference_slope is not None and first is not None:
        ax.plot(x, first * (x / x[0]) ** reference_slope, "k--", lw=1, label=f"∝ σ^{reference_slope:g} (paper's trend)")
    if train_max is not None:
        ax.axvline(train_max, color="0.5", lw=1, ls=":", label="top of training range")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _label(fig, ax, "noise level σ", "effective dimension Σσᵢ²(J)",
                  "Effective dimension of the local linear map", which="both")


def plot_psnr(noise_levels: Sequence[float], bands: Mapping[str, Mapping[str, Any]], ax: Any = None,
              train_max: float | None = None):
    """PSNR (dB) against the noise level, one line per method.

    Arguments:
        noise_levels: (n_levels,) σ.
        bands: method → ``{"centre": (n_levels,), "low": (n_levels,), "high": (n_levels,)}``, computed by the
            caller (e.g. the mean PSNR over test patches ± 2 standard errors).
        train_max: top of the training noise range (shaded).

    Example:
        >>> band = {"centre": np.array([31.0, 27.0]), "low": np.array([30.0, 26.0]), "high": np.array([32.0, 28.0])}
        >>> plot_psnr([0.1, 0.2], {"net": band}).axes[0].lines[0].get_ydata().tolist()
        [31.0, 27.0]
    """
    fig, ax = _ax(ax)
    x = np.asarray(noise_levels, dtype=float)
    for name, b in bands.items():
        ax.plot(x, np.asarray(b["centre"], dtype=float), marker="o", label=name)
        ax.fill_between(x, np.asarray(b["low"], dtype=float), np.asarray(b["high"], dtype=float), alpha=0.2)
    if train_max is not None:
        ax.axvspan(x.min(), train_max, color="0.92", zorder=0, label="training noise range")
    return _label(fig, ax, "noise level σ", "PSNR (dB)", "Denoising PSNR")
