"""Figures for global linear surrogates. Every function takes results (never recomputes), an optional
``ax`` (or ``axes``), and returns the matplotlib figure.

Example:
    >>> import numpy as np
    >>> fig = plot_singular_spectra({"C": np.array([1.0, 0.1]), "A⁻¹": np.array([2.0, 0.01])})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written headless; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = [
    "plot_singular_spectra",
    "plot_filter_factors",
    "plot_principal_angles",
    "plot_eigenvalues",
    "plot_operator_heatmaps",
    "plot_training_curves",
    "plot_bar_chart",
    "plot_signal_noise",
    "plot_subspace_angles",
    "plot_operator_rows",
    "plot_singular_images",
]


def new_axes(ax: Any, figsize: tuple[float, float] = (6, 4)) -> tuple[Any, Any]:
    """(figure, axes): ``ax`` and its figure when given, else a new figure of ``figsize`` — the one helper every
    ``plot_*`` function of the report modules starts with.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = new_axes(None, figsize=(3, 2)); fig2, ax2 = new_axes(ax)
        >>> fig.get_size_inches().tolist(), fig2 is fig, ax2 is ax  # a given ax is reused with its own figure
        ([3.0, 2.0], True, True)
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


def _label(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, which: str = "major") -> Any:
    """Axis labels, title, a light grid (``which`` ticks) and the legend of a line plot; returns ``fig`` (the
    one ending of the report modules' line plots)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which=which, alpha=0.3)
    ax.legend()
    return fig


_ax = new_axes


def plot_singular_spectra(spectra: Mapping[str, np.ndarray], ax: Any = None, title: str = "Singular values",
                          noise_floors: Mapping[str, float] | None = None, ylabel: str = "σᵢ",
                          xlabel: str = "index i"):
    """Spectra against their index on a log scale, one line per name: singular values of operators, variances
    of components against PCA eigenvalues (``ylabel="variance"``) — the one spectrum figure of the package.

    ``noise_floors`` maps an operator's name to the size of its estimation noise (e.g. √E‖Ĉ − C‖²_F): drawn as a
    horizontal dashed line in that operator's colour, singular values below it are not told apart from noise.

    Example:
        >>> fig = plot_singular_spectra({"C": np.array([3.0, 1.0, 0.25])}, noise_floors={"C": 0.5})
        >>> [[float(v) for v in line.get_ydata()] for line in fig.axes[0].lines]  # σᵢ, the noise floor
        [[3.0, 1.0, 0.25], [0.5, 0.5]]
    """
    fig, ax = _ax(ax)
    styles = _line_styles()
    for j, (name, s) in enumerate(spectra.items()):
        s = np.asarray(s, dtype=float)
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-300), label=name, **next(styles))
        if noise_floors and name in noise_floors and noise_floors[name] > 0:
            ax.axhline(noise_floors[name], color=f"C{j}", ls=(0, (6, 3)), lw=1.2,
                       label=f"{name}: estimation-noise floor {noise_floors[name]:.2g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _line_styles():
    """Colour, line style and marker per curve, all three changing, so that curves lying on top of each other stay
    distinguishable (the later ones are thinner and drawn above)."""
    dashes = ["-", "--", "-.", ":", (0, (5, 1, 1, 1))]
    markers = ["o", "s", "^", "x", "d", "v", "+"]
    j = 0
    while True:
        yield {"color": f"C{j % 10}", "ls": dashes[j % len(dashes)], "marker": markers[j % len(markers)],
               "ms": max(6 - j, 3), "lw": max(2.6 - 0.5 * j, 1.0), "markerfacecolor": "none" if j % 2 else None,
               "zorder": 2 + j}
        j += 1


def plot_filter_factors(
    factors: Mapping[str, Any],
    singular_values: np.ndarray | None = None,
    ax: Any = None,
    title: str = "Filter factors φ = diag(Vᵀ C A V), mean per cluster of equal σᵢ",
    xlabel: str = "singular index i of A",
):
    """Filter factors against the singular index of A (1 = A⁻¹, 0 = discarded); ``factors`` maps a name to
    a FilterFactors result or an array. With ``singular_values`` a second axis shows σᵢ(A). ``xlabel`` says what
    the index counts when the factors cover part of A's spectrum only.

    Example:
        >>> fig = plot_filter_factors({"truncated SVD": np.array([1.0, 1.0, 0.0])},
        ...                           singular_values=np.array([2.0, 1.0, 0.1]))
        >>> fig.axes[0].lines[0].get_ydata().tolist(), len(fig.axes)  # the factors; a second axis for σᵢ(A)
        ([1.0, 1.0, 0.0], 2)
    """
    fig, ax = _ax(ax, (7, 4))
    styles = _line_styles()
    for name, f in factors.items():
        vals = np.asarray(getattr(f, "factors", f), dtype=float)
        ax.plot(np.arange(1, len(vals) + 1), vals, label=name, markevery=max(len(vals) // 24, 1), **next(styles))
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("φᵢ")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if singular_values is not None:
        ax2 = ax.twinx()
        s = np.asarray(singular_values, dtype=float)
        ax2.semilogy(np.arange(1, len(s) + 1), s, color="gray", alpha=0.5, lw=1)
        ax2.set_ylabel("σᵢ(A) (gray)")
    ax.legend(loc="center right", fontsize=8)  # the curves fall from 1 on the left: keep clear of them
    return fig


def plot_principal_angles(angles: Mapping[str, np.ndarray], ax: Any = None, title: str = "Principal angles"):
    """Principal angles (degrees, ascending) between singular subspaces; one line per comparison.

    Example:
        >>> plot_principal_angles({"C vs R": np.array([0.0, np.pi / 4])}).axes[0].lines[0].get_ydata().tolist()  # °
        [0.0, 45.0]
    """
    fig, ax = _ax(ax)
    for name, a in angles.items():
        a = np.degrees(np.asarray(a, dtype=float))
        ax.plot(np.arange(1, len(a) + 1), a, marker=".", label=name)
    ax.set_ylim(-2, 92)
    return _label(fig, ax, "k", "angle (degrees)", title)


def plot_eigenvalues(eigs: Mapping[str, Any], ax: Any = None, unit_circle: bool = False,
                     title: str = "Eigenvalues", symlog: bool = True, lim: float | None = None):
    """Eigenvalues in the complex plane, one marker set per operator.

    Arguments:
        eigs: name → (r,) complex eigenvalues (arrays or tensors).
        ax: optional matplotlib axes.
        unit_circle: draw the unit circle with equal axes (DMD, Koopman); otherwise symmetric-log axes when
            ``symlog`` (eigenvalues of inverse operators span many decades).
        lim: axes span [−lim, lim] (the Koopman authors' plots use 2); eigenvalues outside are counted in a note.

    Returns:
        The matplotlib figure.

    Example:
        >>> fig = plot_eigenvalues({"h=2": np.array([0.9 + 0.1j, 0.9 - 0.1j, 3.0])}, unit_circle=True, lim=2.0)
        >>> tuple(map(float, fig.axes[0].get_xlim())), fig.axes[0].texts[0].get_text()
        ((-2.0, 2.0), '1 eigenvalue(s) outside the axes (max |λ| = 3)')
    """
    eigs = {name: np.asarray(e.detach().cpu() if hasattr(e, "detach") else e, dtype=complex)
            for name, e in eigs.items()}
    fig, ax = _ax(ax, (5.5, 5))
    markers = "ox+sd^v"
    for j, (name, e) in enumerate(eigs.items()):
        mk = markers[j % len(markers)]
        style = {"facecolors": "none", "edgecolors": f"C{j}"} if mk in "osd^v" else {"color": f"C{j}"}
        ax.scatter(e.real, e.imag, marker=mk, s=18, label=name, **style)
    if unit_circle:
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), "k--", lw=0.8)
        ax.set_aspect("equal")
    elif symlog:
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_yscale("symlog", linthresh=1e-2)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(title)
    if lim is not None:
        all_e = np.concatenate([np.ravel(e) for e in eigs.values()]) if eigs else np.zeros(0)
        n_out = int(((np.abs(all_e.real) > lim) | (np.abs(all_e.imag) > lim)).sum()) if all_e.size else 0
        if n_out:
            ax.text(0.02, 0.02, f"{n_out} eigenvalue(s) outside the axes (max |λ| = {np.abs(all_e).max():.3g})",
                    transform=ax.transAxes, fontsize=7)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.legend(fontsize=7)
    return fig


def _block_means(M: np.ndarray, most: int) -> np.ndarray:
    """M (r, c) as the means of its f × f blocks, f = ⌈max(r, c) / most⌉ (edge blocks may be smaller); M when f = 1."""
    f = -(-max(M.shape) // most) if M.size else 1
    if f <= 1:
        return M
    rows, cols = np.arange(0, M.shape[0], f), np.arange(0, M.shape[1], f)
    sums = np.add.reduceat(np.add.reduceat(M, rows, axis=0), cols, axis=1)
    return sums / np.outer(np.diff(np.append(rows, M.shape[0])), np.diff(np.append(cols, M.shape[1])))


def plot_operator_heatmaps(mats: Mapping[str, np.ndarray], axes: Sequence[Any] | None = None,
                           title: str = "Operators", robust: bool = True, ncols: int | None = None):
    """Heatmaps, each on a colour scale of its own (diverging colormap, symmetric limits at the 99th percentile of
    |entries| when ``robust``, so one huge entry does not wash out the picture); the limit is in each title, and
    the colour bars are laid out so that their numbers never run into a neighbouring panel.

    ``mats`` maps a title to a matrix; a value may also be ``(matrix, note)``, the note going under the title
    (e.g. a difference's size relative to its reference). Panels wrap after ``ncols`` (default: all in one row).
    A matrix with more than 1024 rows or columns is drawn as the means of f × f blocks (f = ⌈side / 1024⌉; a panel
    has ~450 pixels, so matplotlib would average them anyway, at several seconds per 4096² panel); the colour
    limit and the axes' indices are those of the full matrix.

    Example:
        >>> fig = plot_operator_heatmaps({"C": np.eye(2), "R": -2 * np.eye(2)}, robust=False)
        >>> [ax.images[0].get_clim() for ax in fig.axes if ax.images]  # each panel on its own symmetric scale
        [(-1.0, 1.0), (-2.0, 2.0)]
    """
    k = len(mats)
    if axes is None:
        cols = min(k, ncols or k)
        rows = -(-k // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.0 * rows), layout="constrained", squeeze=False)
        axes = axes.ravel()
        for ax in axes[k:]:
            ax.set_visible(False)
    fig = axes[0].figure
    for ax, (name, M) in zip(axes, mats.items(), strict=False):
        note = ""
        if isinstance(M, tuple):
            M, note = M
        M = np.asarray(M, dtype=float)
        lim = np.percentile(np.abs(M), 99) if robust else np.abs(M).max()
        lim = lim if lim > 0 else 1.0
        extent = (-0.5, M.shape[1] - 0.5, M.shape[0] - 0.5, -0.5)  # the full matrix's indices
        im = ax.imshow(_block_means(M, 1024), cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
        ax.set_title(f"{name}\n(colour scale ±{lim:.2g}{'; ' + note if note else ''})", fontsize=9)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.ax.tick_params(labelsize=7)
        cb.formatter.set_powerlimits((-2, 3))  # big entries as ×10ⁿ above the bar, not wide tick labels
        cb.update_ticks()
    fig.suptitle(title)
    return fig


def plot_training_curves(histories: Mapping[str, Any], ax: Any = None, title: str = "Training curves"):
    """Train (solid) and validation (dashed) loss per epoch, log scale; ``histories`` maps a name to a
    TrainHistory (or anything with ``train_loss``/``val_loss``).

    Example:
        >>> from linlens.nn import TrainHistory
        >>> fig = plot_training_curves({"MLP": TrainHistory(train_loss=[1.0, 0.5], val_loss=[1.2, 0.7])})
        >>> [line.get_ydata().tolist() for line in fig.axes[0].lines]
        [[1.0, 0.5], [1.2, 0.7]]
    """
    fig, ax = _ax(ax)
    for j, (name, h) in enumerate(histories.items()):
        tr = np.asarray(getattr(h, "train_loss", []), dtype=float)
        va = np.asarray(getattr(h, "val_loss", []), dtype=float)
        if len(tr):
            ax.semilogy(np.arange(1, len(tr) + 1), tr, color=f"C{j}", label=f"{name} (train)")
        if len(va):
            ax.semilogy(np.arange(1, len(va) + 1), va, color=f"C{j}", ls="--", label=f"{name} (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_bar_chart(values: Mapping[str, float], errors: Mapping[str, tuple[float, float]] | None = None,
                   ax: Any = None, title: str = "", ylabel: str = "", log: bool = True):
    """Horizontal bars (e.g. test MSE of network, surrogate, C_data, Wiener), optional [low, high] whiskers.

    Example:
        >>> fig = plot_bar_chart({"network": 0.2, "Wiener": 0.1}, errors={"network": (0.15, 0.25)})
        >>> [round(float(b.get_width()), 3) for b in fig.axes[0].patches], fig.axes[0].lines[0].get_xdata().tolist()
        ([0.2, 0.1], [0.15, 0.25])
    """
    fig, ax = _ax(ax, (7, 0.5 + 0.45 * len(values)))
    names = list(values)
    v = np.array([values[n] for n in names], dtype=float)
    ax.barh(names, v, color=[f"C{j}" for j in range(len(names))])
    if errors:
        for j, n in enumerate(names):
            if n in errors:
                lo, hi = errors[n]
                ax.plot([lo, hi], [j, j], color="k", lw=1.5)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(ylabel)
    ax.set_title(title)
    ax.invert_yaxis()
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return fig


def plot_signal_noise(splits: Mapping[str, Any], ax: Any = None,
                      title: str = "Where the test error comes from, per band of A's singular index",
                      corrected: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None):
    """Signal error per band of A's singular index (left) and the totals of signal error and noise amplification
    (right), one colour per estimator, as fractions of E‖x‖².

    Arguments:
        splits: name → :class:`~linlens.surrogate.compare.SignalNoiseSplit` (bands, singular values; for the
            names not in ``corrected`` — closed-form references — its values are drawn).
        ax: optional axes for the band panel alone (the totals panel is then left out).
        title: the figure's title.
        corrected: name → the study's bias-corrected table (``signal_noise_corrected``: ``band_j``,
            ``signal_error``, ``noise_amplification``, each with ``estimate``, ``low``, ``high`` and
            ``noise_dominated``). These are the values drawn for that name, with their intervals — the numbers of
            the report's tables, not the plug-in ones. A value whose interval excludes it (noise-dominated) or that
            is not above 0 is drawn as a hollow ▽ at its interval's upper end: only that bound is informative.

    Returns:
        The matplotlib figure.

    Example:
        >>> from linlens.surrogate.compare import signal_noise_split
        >>> A = np.diag([2.0, 1.0])
        >>> split = signal_noise_split(np.linalg.inv(A), A, np.eye(2), noise_std=0.1, n_bands=2)
        >>> len(plot_signal_noise({"A⁻¹": split}).axes)  # the bands and the totals
        2
    """
    corrected = corrected or {}
    if ax is None:
        fig, (ax, axt) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[2.2, 1], layout="constrained")
    else:
        fig, axt = ax.figure, None
    labels: list[str] = []
    floor = 1e-300

    def draw(a: Any, x: float, v: Mapping[str, Any] | float, color: str, marker: str, label: str | None) -> float:
        if not isinstance(v, Mapping):
            a.plot([x], [max(float(v), floor)], marker=marker, color=color, ls="none", label=label)
            return float(v)
        est, lo, hi = float(v["estimate"]), max(float(v["low"]), 0.0), float(v["high"])
        if v.get("noise_dominated") or est <= 0:
            a.plot([x], [max(hi, floor)], marker="v", mfc="none", color=color, ls="none", label=label)
            return hi
        a.errorbar([x], [est], yerr=[[est - max(lo, est * 1e-3)], [max(hi - est, 0.0)]], marker=marker,
                   color=color, ls="none", capsize=2, label=label)
        return est

    names = list(splits)
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        sp = splits[name]
        color = f"C{j}"
        x = np.arange(len(sp.bands)) + (j - (len(names) - 1) / 2) * width
        table = corrected.get(name)
        ys = []
        for b in range(len(sp.bands)):
            v = table[f"band_{b}"] if table is not None else float(sp.band_signal_error[b])
            ys.append(draw(ax, float(x[b]), v, color, "o", None))
        ax.plot(x, np.maximum(ys, floor), color=color, lw=1, alpha=0.6,
                label=name + (" (bias-corrected, interval)" if table is not None else " (closed form)"))
        s = np.asarray(sp.singular_values_A, float)
        labels = [f"{a + 1}–{b}\nσ≈{s[a]:.0e}" if s[a] > 0 else f"{a + 1}–{b}\nσ=0" for a, b in sp.bands]
        if axt is not None:
            for i, key in enumerate(("signal_error", "noise_amplification")):
                v = table[key] if table is not None else float(getattr(sp, key))
                draw(axt, i + (j - (len(names) - 1) / 2) * width, v, color, "o" if i == 0 else "s", None)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_xlabel("band of singular index of A (largest σ first)")
    ax.set_ylabel("signal error in the band, fraction of E‖x‖²")
    ax.grid(True, which="both", alpha=0.3)
    ax.plot([], [], marker="v", mfc="none", color="gray", ls="none", label="noise-dominated: upper end only")
    ax.legend(fontsize=7)
    if axt is not None:
        axt.set_yscale("log")
        axt.set_xticks([0, 1])
        axt.set_xticklabels(["signal error\n(all bands)", "noise\namplification"], fontsize=8)
        axt.set_xlim(-0.6, 1.6)
        axt.set_title("totals (the table's values)", fontsize=9)
        axt.grid(True, which="both", alpha=0.3)
        fig.suptitle(title)
    else:
        ax.set_title(title)
    return fig


def plot_subspace_angles(result: Any, ax: Any = None, title: str = "Largest principal angle against k"):
    """Largest principal angle between the top-k singular subspaces against k, with the spectral gaps marked.

    Draws the largest angle (left and right subspaces together, and each faintly), Wedin's bound
    arcsin(min(1, bound)) where it exists, the smaller of the two operators' relative gaps on a second
    axis, a vertical band at every clear gap of both operators, and a star at the k the comparison used.
    When the comparison reports no angle (no clear gap of both operators), no angle is drawn either: only the
    gap profile that decided it, and the title says so.

    Arguments:
        result: a :class:`~linlens.linalg.SubspaceComparison` (or its ``profile``).
        ax: optional matplotlib axes.
        title: axes title.

    Returns:
        The matplotlib figure.

    Example:
        >>> from linlens.linalg import subspace_comparison
        >>> rng = np.random.default_rng(0)
        >>> R = rng.normal(size=(12, 3)) @ rng.normal(size=(3, 10))
        >>> fig = plot_subspace_angles(subspace_comparison(R + 1e-3 * rng.normal(size=R.shape), R))
        >>> len(fig.axes)
        2
    """
    prof = getattr(result, "profile", result)
    k_used = getattr(result, "k", None)
    fig, ax = _ax(ax, (7, 4))
    ks = np.asarray(prof.ks)
    deg = np.degrees
    reported = k_used is not None and bool(getattr(result, "clear", True))
    if not reported and hasattr(result, "reason"):
        # no angle is reported: none is drawn (they would not be well defined), only the gaps that decide it
        ax.step(ks, np.minimum(prof.gaps_C, prof.gaps_R), where="mid", color="gray", lw=1.2,
                label="min relative gap of C and R")
        ax.axhline(prof.min_gap, color="k", lw=0.8, ls=":", label=f"required gap {prof.min_gap:.2g}")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("k (top-k singular subspaces)")
        ax.set_ylabel("min relative gap (σ_k − σ_k+1)/σ_k")
        ax.text(0.5, 0.55, "no clear gap of both operators:\nno principal angles reported", transform=ax.transAxes,
                ha="center", va="center", fontsize=10, color="0.3")
        ax.set_title(title + " — no clear gap of both operators: no angles reported", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        return fig
    for x in ks[np.asarray(prof.clear, dtype=bool)]:
        ax.axvspan(x - 0.4, x + 0.4, color="C2", alpha=0.15, lw=0)
    ax.plot(ks, deg(prof.max_angles), marker=".", color="C0", label="largest angle")
    ax.plot(ks, deg(prof.left_max_angles), color="C0", alpha=0.3, lw=0.8, label="left / right")
    ax.plot(ks, deg(prof.right_max_angles), color="C0", alpha=0.3, lw=0.8, ls=":")
    b = np.asarray(prof.wedin_bounds, dtype=float)
    fin = np.isfinite(b)
    if fin.any():
        bound = np.where(fin, deg(np.arcsin(np.clip(np.where(fin, b, 1.0), 0.0, 1.0))), np.nan)
        ax.plot(ks, bound, color="C3", ls="--", lw=1, label="Wedin bound")
    if k_used is not None:
        ax.plot([k_used], [deg(result.max_angle)], marker="*", ms=14, color="C1", ls="none",
                label=f"k = {k_used}" + ("" if getattr(result, "clear", True) else " (no clear gap)"))
    ax.set_xlabel("k (top-k singular subspaces)")
    ax.set_ylabel("angle (degrees)")
    ax.set_ylim(-2, 92)
    ax2 = ax.twinx()
    ax2.step(ks, np.minimum(prof.gaps_C, prof.gaps_R), where="mid", color="gray", alpha=0.6, lw=1)
    ax2.axhline(prof.min_gap, color="gray", lw=0.6, ls=":")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("min relative gap (σ_k − σ_k+1)/σ_k (gray)")
    if k_used is None and hasattr(result, "reason"):
        title += " — no clear gap of both operators: no angles reported"
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left")
    return fig


def plot_operator_rows(rows: Mapping[str, np.ndarray], image_shape: tuple[int, int], pixels: Sequence[int],
                       ax: Any = None, title: str = "Operator rows as images (one output pixel each)",
                       labels: Sequence[int] | None = None):
    """Rows of (d_out, d_in) operators shown as images of the input: row p is the linear filter that output pixel
    p applies to the input. ``rows`` maps a name to an operator; one line of tiles per operator, one tile per
    pixel in ``pixels``, each tile scaled to its own largest |entry| (blue < 0 < red). ``labels``: the output
    indices to print under the tiles when ``rows`` holds only the selected rows (then ``pixels`` indexes them).

    Example:
        >>> fig = plot_operator_rows({"C": np.eye(4)}, (2, 2), [0, 3])
        >>> fig.axes[0].images[0].get_array()[:2, :2].tolist()  # row 0 of the identity: a one in the first pixel
        [[1.0, 0.0], [0.0, 0.0]]
    """
    names = list(rows)
    H, W = image_shape
    fig, ax = _ax(ax, (1.4 * len(pixels) + 1.5, 1.4 * len(names) + 0.6))
    grid = np.full((len(names) * (H + 1) - 1, len(pixels) * (W + 1) - 1), np.nan)
    for i, name in enumerate(names):
        M = np.asarray(rows[name], dtype=float)
        for j, p in enumerate(pixels):
            tile = M[int(p)].reshape(H, W)
            s = np.max(np.abs(tile))
            grid[i * (H + 1): i * (H + 1) + H, j * (W + 1): j * (W + 1) + W] = tile / s if s > 0 else tile
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks([i * (H + 1) + H / 2 for i in range(len(names))])
    ax.set_yticklabels(names)
    ax.set_xticks([j * (W + 1) + W / 2 for j in range(len(pixels))])
    ax.set_xticklabels([f"pixel {int(p)}" for p in (pixels if labels is None else labels)], fontsize=7)
    ax.set_title(title)
    return fig


def row_pixels(image_shape: tuple[int, int], d_out: int) -> list[int]:
    """Which output rows :func:`plot_operator_rows` shows: the centre, an off-centre, a left-border and a corner
    pixel when the output is an image of ``image_shape`` (d_out = H·W), else four outputs spread evenly.

    Example:
        >>> row_pixels((8, 8), 64), row_pixels((8, 8), 10)
        ([36, 18, 33, 1], [0, 3, 6, 9])
    """
    H, W = image_shape
    if d_out == H * W:
        return [(H // 2) * W + W // 2, (H // 4) * W + W // 4, (H // 2) * W + 1, 1]
    return sorted({int(round(i)) for i in np.linspace(0, d_out - 1, min(4, d_out))})


def singular_indices(s: np.ndarray, count: int = 8) -> list[int]:
    """About ``count`` indices spread log-evenly over the nonzero part of a descending spectrum (first and last
    included), for showing singular vectors from the best- to the worst-resolved.

    Example:
        >>> singular_indices(np.r_[np.ones(100), 0.0], 5)
        [0, 2, 9, 31, 99]
    """
    r = int(np.sum(np.asarray(s) > 0))
    if r == 0:
        return []
    return sorted({int(round(v)) - 1 for v in np.geomspace(1, r, min(count, r))})


def plot_singular_images(Vt: np.ndarray, singular_values: np.ndarray, factors: Mapping[str, np.ndarray],
                         image_shape: tuple[int, int], count: int = 8, ax: Any = None,
                         title: str = "Filter factors as images", index_name: str = "i",
                         indices: np.ndarray | None = None):
    """Right singular vectors vᵢ (rows of ``Vt``, (k, H·W)) of a forward operator A as images, at about
    ``count`` indices spread log-evenly over its spectrum, each captioned with i, σᵢ and the filter factor φᵢ of
    every estimator in ``factors`` (name → (k,) factors): which image patterns each estimator passes (φ ≈ 1)
    and which it suppresses (φ ≈ 0). Each tile is scaled to its own largest |entry| (blue < 0 < red). When the rows
    are part of A's spectrum only, ``indices`` (k,) gives the number printed for each row (default: its position,
    1-based) and ``index_name`` what it counts.

    Example:
        >>> phi = {"Wiener": np.array([0.9, 0.7, 0.3, 0.0])}
        >>> fig = plot_singular_images(np.eye(4), np.array([2.0, 1.0, 0.5, 0.1]), phi, (2, 2), count=2)
        >>> [t.get_text().split(chr(10)) for t in fig.axes[0].get_xticklabels()]
        [['i = 1', 'σ = 2', 'φ Wiener = 0.90'], ['i = 4', 'σ = 0.1', 'φ Wiener = 0.00']]
    """
    H, W = image_shape
    idx = singular_indices(singular_values, count)
    fig, ax = _ax(ax, (1.5 * max(len(idx), 1) + 0.5, 2.6 + 0.25 * len(factors)))
    grid = np.full((H, max(len(idx), 1) * (W + 1) - 1), np.nan)
    for j, i in enumerate(idx):
        tile = np.asarray(Vt[i], dtype=float).reshape(H, W)
        sc = np.max(np.abs(tile))
        grid[:, j * (W + 1): j * (W + 1) + W] = tile / sc if sc > 0 else tile
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks([])
    ax.set_xticks([j * (W + 1) + W / 2 for j in range(len(idx))])
    labels = []
    for i in idx:
        lines = [f"{index_name} = {i + 1 if indices is None else int(indices[i])}", f"σ = {singular_values[i]:.2g}"]
        lines += [f"φ {name} = {np.asarray(f)[i]:.2f}" for name, f in factors.items()]
        labels.append("\n".join(lines))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title(title)
    return fig
