"""Figures for Koopman hybrids (:mod:`linlens.koopman`): right singular vectors of the Hankel matrix, decision
boundaries, accuracy grids. DMD eigenvalues are drawn by :func:`linlens.report.figures.plot_eigenvalues`
(``unit_circle=True, lim=2.0``).

Every function takes results (arrays, rows) and an optional ``ax`` and returns the figure; none recomputes.

Example:
    >>> fig = plot_accuracy_grid([{"delays": 0, "rank": 2, "accuracy": 0.9}])
    >>> fig.axes[0].images[0].get_array().tolist()
    [[0.9]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from linlens.report.figures import new_axes as _ax

__all__ = ["plot_right_singular_vectors", "plot_decision_boundaries", "plot_accuracy_grid"]


def plot_right_singular_vectors(V: Any, steps: int, n_traj: int = 3, n_vectors: int = 4, ax: Any = None,
                                title: str = "Right singular vectors of the Hankel matrix"):
    """Leading right singular vectors v_k of the Hankel matrix along the first trajectories' columns.

    Columns of the (per-trajectory) Hankel matrix are ordered trajectory by trajectory, ``steps`` columns each,
    so each v_k is drawn as one curve over the first ``n_traj·steps`` columns with trajectory boundaries marked.

    Arguments:
        V: (n_columns, r) right singular vectors.
        steps: snapshot pairs per trajectory (N+1−h).
        n_traj: trajectories shown. n_vectors: vectors shown.

    Returns:
        The matplotlib figure.

    Example:
        >>> V = np.eye(12)[:, :2]  # two vectors over 12 columns, 4 per trajectory
        >>> ax = plot_right_singular_vectors(V, steps=4, n_traj=2).axes[0]
        >>> [ln.get_ydata().tolist() for ln in ax.lines[:2]]
        [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    V = np.asarray(V.detach().cpu() if hasattr(V, "detach") else V, dtype=float)
    fig, ax = _ax(ax, (7, 3.5))
    k = min(n_traj * steps, len(V))
    for j in range(min(n_vectors, V.shape[1])):
        ax.plot(np.arange(k), V[:k, j], marker=".", label=f"v{j + 1}")
    for b in range(steps, k, steps):
        ax.axvline(b - 0.5, color="k", lw=0.5, ls=":")
    ax.set_xlabel("column (trajectory-major, one block per trajectory)")
    ax.set_ylabel("entry")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def plot_decision_boundaries(xx: Any, yy: Any, predictions: Mapping[str, Any], points: Any = None,
                             labels: Any = None, titles: Mapping[str, str] | None = None, axes: Any = None):
    """Decision regions on a 2-D grid, one panel per model (e.g. original and each hybrid).

    Arguments:
        xx, yy: (g, g) grid coordinates.
        predictions: name → (g, g) predicted classes on the grid.
        points, labels: optional (n, 2) test points and their (n,) labels, drawn on top.
        titles: optional name → panel title (e.g. with the accuracy).

    Returns:
        The matplotlib figure.

    Example:
        >>> xx, yy = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5))
        >>> fig = plot_decision_boundaries(xx, yy, {"MLP": xx > 0.5, "hybrid": yy > 0.5}, titles={"hybrid": "h=2"})
        >>> [ax.get_title() for ax in fig.axes]
        ['MLP', 'h=2']
    """
    import matplotlib.pyplot as plt

    n = len(predictions)
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.3), squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    for ax, (name, pred) in zip(axes, predictions.items(), strict=False):
        ax.contourf(xx, yy, np.asarray(pred), levels=np.arange(-0.5, 3.5, 1.0), cmap="coolwarm", alpha=0.6)
        if points is not None:
            p = np.asarray(points)
            ax.scatter(p[:, 0], p[:, 1], c=np.asarray(labels), cmap="coolwarm", s=3, edgecolors="none",
                       vmin=0, vmax=2)
        ax.set_title((titles or {}).get(name, name), fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_accuracy_grid(rows: Sequence[Mapping[str, Any]], x: str = "delays", y: str = "rank",
                       value: str = "accuracy", ax: Any = None, title: str = "Hybrid accuracy",
                       higher_is_better: bool = True, vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Heatmap of ``value`` over a grid of two row fields (the best value where several rows share a cell).

    Arguments:
        rows: result rows (dicts) holding fields ``x``, ``y`` and ``value``.
        higher_is_better: the best of a cell is its maximum (accuracy) or its minimum (an error such as MSE).
        vmin, vmax: colour range (None: the data's range).

    Returns:
        The matplotlib figure.

    Example:
        >>> rows = [{"delays": 1, "rank": 4, "accuracy": 0.5}, {"delays": 1, "rank": 4, "accuracy": 0.75},
        ...         {"delays": 2, "rank": 4, "accuracy": 0.25}]
        >>> plot_accuracy_grid(rows).axes[0].images[0].get_array().tolist()  # the best of each cell
        [[0.75, 0.25]]
    """
    fig, ax = _ax(ax, (6, 3.5))
    xs = sorted({r[x] for r in rows}, key=lambda v: (str(type(v)), v))
    ys = sorted({str(r[y]) for r in rows})
    M = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        i, j = ys.index(str(r[y])), xs.index(r[x])
        M[i, j] = (np.nanmax if higher_is_better else np.nanmin)([M[i, j], r[value]])
    im = ax.imshow(M, cmap="viridis" if higher_is_better else "viridis_r", aspect="auto", vmin=vmin, vmax=vmax)
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isfinite(M[i, j]):
                ax.text(j, i, f"{M[i, j]:.3g}", ha="center", va="center", fontsize=7, color="w")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return fig
