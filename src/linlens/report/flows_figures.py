"""Figures for flow analyses: each takes computed results (arrays, dataclasses) and returns a figure.

Plotting never recomputes anything: pass the outputs of :func:`~linlens.flows.local_covariance`,
:func:`~linlens.flows.unwhitened_components` or training histories.

Example:
    >>> import numpy as np
    >>> fig = plot_sigma_max(np.array([1.0, 2.0, 3.0]), bound=2.5)
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from linlens.report.figures import new_axes as _ax

__all__ = [
    "plot_components_vs_pca",
    "plot_stability",
    "plot_local_covariance",
    "plot_traversal_grid",
    "plot_convergence",
    "plot_sigma_max",
    "plot_traversal_paths",
]


def plot_components_vs_pca(components: np.ndarray, pca_scores: np.ndarray, max_points: int = 500) -> Any:
    """Scatter of each un-whitened component against the matching PCA score (one panel per component).

    Arguments:
        components: ``(n_samples, k)`` un-whitened components.
        pca_scores: ``(n_samples, k)`` PCA scores (same order).
        max_points: points drawn per panel.

    Returns:
        The matplotlib figure.

    Example:
        >>> fig = plot_components_vs_pca(np.eye(3), np.eye(3))
        >>> len(fig.axes)
        3
    """
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    k = components.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.6), squeeze=False)
    idx = np.arange(min(max_points, len(components)))
    for j, ax in enumerate(axes[0]):
        c, p = components[idx, j], pca_scores[idx, j]
        r = np.corrcoef(components[:, j], pca_scores[:, j])[0, 1] if len(components) > 1 else np.nan
        ax.scatter(p, c, s=3, alpha=0.5)
        ax.set_title(f"component {j + 1}: |r| = {abs(r):.4f}", fontsize=8)
        ax.set_xlabel("PCA score (sklearn)", fontsize=8)
        if j == 0:
            ax.set_ylabel("un-whitened component", fontsize=8)
    fig.tight_layout()
    return fig


def plot_stability(
    nll_curves: Mapping[str, Sequence[float]],
    sigma_curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    targets: Mapping[str, float] | None = None,
) -> Any:
    """Training NLL (left) and σ_max(J) against epochs (right, log scale) with 1/√(2α) as dashed lines.

    Arguments:
        nll_curves: label → NLL per epoch.
        sigma_curves: label → (epochs, σ_max values).
        targets: label → theory's σ_max (drawn dashed in the label's colour).

    Returns:
        The matplotlib figure.

    Example:
        >>> fig = plot_stability({"a": [1.0, 0.5]}, {"a": ([0, 1], [1.0, 2.0])}, {"a": 2.0})
        >>> len(fig.axes)
        2
    """
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (label, curve) in enumerate(nll_curves.items()):
        a1.plot(np.arange(1, len(curve) + 1), curve, color=f"C{i}", label=label, lw=1)
    a1.set_xlabel("epoch")
    a1.set_ylabel("training NLL (nats)")
    a1.set_xscale("log")
    a1.legend(fontsize=8)
    for i, (label, (ep, s)) in enumerate(sigma_curves.items()):
        a2.plot(np.maximum(np.asarray(ep), 1), s, color=f"C{i}", label=label, marker=".", lw=1)
        if targets and label in targets:
            a2.axhline(targets[label], color=f"C{i}", ls="--", lw=1, label=f"1/√(2α) = {targets[label]:.3g}")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("epoch")
    a2.set_ylabel("median σ_max(J) over data")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_local_covariance(
    X: np.ndarray,
    covariance: np.ndarray,
    directions: np.ndarray | None = None,
    local_std: np.ndarray | None = None,
    dims: tuple[int, int] = (0, 2),
    n_show: int = 120,
    scale: float = 0.25,
    title: str = "",
    ax: Any = None,
) -> Any:
    """Data projected on two coordinates with local-covariance ellipses (1 local std × ``scale``) and arrows.

    Arguments:
        X: points ``(n_samples, d)``.
        covariance: local covariances ``(n_samples, d, d)``.
        directions: optional ``(n_samples, d, d)`` local directions (column 0 = top) for arrows.
        local_std: optional ``(n_samples, d)`` to scale the arrows.
        dims: the two coordinates shown.
        n_show: number of ellipses drawn (evenly spaced rows).
        scale: ellipse/arrow length multiplier (for legibility).
        title: axes title.
        ax: optional axes.

    Returns:
        The matplotlib figure.

    Example:
        >>> fig = plot_local_covariance(np.zeros((2, 3)), np.stack([np.eye(3)] * 2), n_show=2)
        >>> len(fig.axes)
        1
    """
    from matplotlib.patches import Ellipse  # lazy: plotting is heavy, loaded when a figure is drawn

    fig, ax = _ax(ax, (5, 5))
    i, j = dims
    ax.scatter(X[:, i], X[:, j], s=2, c="0.7")
    rows = np.linspace(0, len(X) - 1, min(n_show, len(X))).astype(int)
    for r in rows:
        C = covariance[r][np.ix_([i, j], [i, j])]
        if not np.isfinite(C).all():
            continue
        w, v = np.linalg.eigh(C)
        w = np.sqrt(np.maximum(w, 0))
        ang = np.degrees(np.arctan2(v[1, 1], v[0, 1]))
        ax.add_patch(Ellipse((X[r, i], X[r, j]), 2 * scale * w[1], 2 * scale * w[0], angle=ang,
                             fill=False, color="C0", lw=0.7))
        if directions is not None and local_std is not None:
            d = directions[r][[i, j], 0] * local_std[r, 0] * scale
            ax.arrow(X[r, i], X[r, j], d[0], d[1], color="C3", width=0.003, head_width=0.03)
    lo, hi = X[:, [i, j]].min(axis=0), X[:, [i, j]].max(axis=0)
    pad = 0.1 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)  # a few near-singular points must not set the view
    ax.set_aspect("equal")
    ax.set_xlabel(f"x{i}")
    ax.set_ylabel(f"x{j}")
    ax.set_title(title, fontsize=9)
    return fig


def plot_traversal_grid(images: np.ndarray, steps: Sequence[float], row_labels: Sequence[str] | None = None) -> Any:
    """Image grid: one row per component, one column per step along it.

    Arguments:
        images: ``(n_rows, n_steps, h, w)``.
        steps: the step values (column titles), e.g. multiples of the component's std.
        row_labels: optional labels of the rows.

    Returns:
        The matplotlib figure.

    Example:
        >>> fig = plot_traversal_grid(np.zeros((2, 3, 8, 8)), [-1, 0, 1])
        >>> len(fig.axes)
        6
    """
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    r, c = images.shape[:2]
    fig, axes = plt.subplots(r, c, figsize=(1.1 * c + 0.8, 1.1 * r), squeeze=False)
    for a in range(r):
        for b in range(c):
            ax = axes[a, b]
            ax.imshow(images[a, b], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if a == 0:
                ax.set_title(f"{steps[b]:+g}σ", fontsize=8)
            if b == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[a], fontsize=7)
    fig.tight_layout()
    return fig


def plot_convergence(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], ax: Any = None,
                     ylabel: str = "relative error", title: str = "") -> Any:
    """Error against epochs/steps for several runs (log-log).

    Arguments:
        curves: label → (steps, errors).
        ax: optional axes.
        ylabel: y label.
        title: axes title.

    Returns:
        The matplotlib figure.

    Example:
        >>> plot_convergence({"a": ([1, 2], [1.0, 0.1])}).axes[0].get_xscale()
        'log'
    """
    fig, ax = _ax(ax, (6, 3.8))
    for k, (label, (x, y)) in enumerate(curves.items()):
        ax.plot(np.maximum(np.asarray(x), 1), np.maximum(np.asarray(y, dtype=float), 1e-17), label=label,
                color=f"C{k}", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch / optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_sigma_max(sigma_max: np.ndarray, bound: float | None = None, ax: Any = None) -> Any:
    """Histogram of σ_max(J) over the data (log scale), with the Tikhonov bound 1/√(2α) when given.

    Arguments:
        sigma_max: largest singular value of J at each point ``(n_samples,)``.
        bound: 1/√(2α), drawn as a dashed line.
        ax: optional axes.

    Returns:
        The matplotlib figure.

    Example:
        >>> plot_sigma_max(np.array([1.0, 2.0, 3.0]), bound=2.5).axes[0].get_xscale()
        'log'
    """
    fig, ax = _ax(ax, (6, 3.2))
    v = np.asarray(sigma_max, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v):
        lo, hi = v.min(), v.max()
        if bound is not None:
            lo, hi = min(lo, bound), max(hi, bound)
        edges = np.geomspace(lo / 1.05, hi * 1.05, 40)
        ax.hist(v, bins=edges, color="C0", alpha=0.8)
    if bound is not None:
        ax.axvline(bound, color="C3", ls="--", label=f"1/√(2α) = {bound:.3g}")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("σ_max(J(x)) = 1 / smallest local std")
    ax.set_ylabel("points")
    return fig


def plot_traversal_paths(
    X2: np.ndarray, flow_paths: np.ndarray, pca_paths: np.ndarray, labels: Sequence[str] | None = None,
    ax: Any = None,
) -> Any:
    """Traversals drawn in a 2-D projection of the data: the flow's (solid) beside PCA's (dashed).

    Arguments:
        X2: data projected on two axes ``(n_samples, 2)`` (grey background).
        flow_paths: ``(n_paths, n_steps, 2)`` projected traversal points along the flow's components.
        pca_paths: ``(n_paths, n_steps, 2)`` the same steps along PCA's axes.
        labels: one label per path.
        ax: optional axes.

    Returns:
        The matplotlib figure.

    Example:
        >>> p = np.zeros((1, 3, 2)); p[0, :, 0] = [-1, 0, 1]
        >>> len(plot_traversal_paths(np.zeros((5, 2)), p, p).axes)
        1
    """
    fig, ax = _ax(ax, (5.5, 5))
    ax.scatter(X2[:, 0], X2[:, 1], s=2, c="0.75")
    for k in range(len(flow_paths)):
        lab = labels[k] if labels is not None else f"path {k + 1}"
        ax.plot(flow_paths[k, :, 0], flow_paths[k, :, 1], "-o", ms=3, color=f"C{k % 10}", label=f"flow: {lab}")
        ax.plot(pca_paths[k, :, 0], pca_paths[k, :, 1], "--", color=f"C{k % 10}", lw=1, alpha=0.7)
    ax.set_xlabel("PCA axis 1")
    ax.set_ylabel("PCA axis 2")
    ax.legend(fontsize=7, title="dashed: PCA, same steps", title_fontsize=7)
    return fig
