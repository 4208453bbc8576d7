"""Koopman figures return matplotlib figures from results without recomputing."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from linlens.koopman.plots import (  # noqa: E402
    accuracy_grid_figure,
    decision_boundaries_figure,
    eigenvalue_figure,
    right_singular_vectors_figure,
)


def test_figures():
    assert eigenvalue_figure({"a": np.array([0.9 + 0.1j, 0.9 - 0.1j])}).axes
    assert right_singular_vectors_figure(np.random.default_rng(0).normal(size=(30, 5)), steps=5).axes
    g = np.linspace(0, 1, 10)
    xx, yy = np.meshgrid(g, g)
    fig = decision_boundaries_figure(xx, yy, {"a": (xx > 0.5).astype(int), "b": (yy > 0.5).astype(int)},
                                     np.random.rand(20, 2), np.random.randint(0, 3, 20))
    assert len(fig.axes) == 2
    rows = [{"delays": h, "rank": r, "accuracy": 0.1 * h} for h in range(3) for r in (4, 8)]
    assert accuracy_grid_figure(rows).axes
