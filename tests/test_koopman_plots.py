"""Koopman figures return matplotlib figures from results without recomputing."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import linlens.koopman.plots as kp  # noqa: E402
from linlens.koopman.plots import (  # noqa: E402
    plot_accuracy_grid,
    plot_decision_boundaries,
    plot_eigenvalues,
    plot_right_singular_vectors,
)


def test_figures():
    assert plot_eigenvalues({"a": np.array([0.9 + 0.1j, 0.9 - 0.1j])}).axes
    assert plot_right_singular_vectors(np.random.default_rng(0).normal(size=(30, 5)), steps=5).axes
    g = np.linspace(0, 1, 10)
    xx, yy = np.meshgrid(g, g)
    fig = plot_decision_boundaries(xx, yy, {"a": (xx > 0.5).astype(int), "b": (yy > 0.5).astype(int)},
                                     np.random.rand(20, 2), np.random.randint(0, 3, 20))
    assert len(fig.axes) == 2
    rows = [{"delays": h, "rank": r, "accuracy": 0.1 * h} for h in range(3) for r in (4, 8)]
    assert plot_accuracy_grid(rows).axes


def test_deprecated_names_are_the_plot_functions():
    assert kp.eigenvalue_figure is kp.plot_eigenvalues
    assert kp.right_singular_vectors_figure is kp.plot_right_singular_vectors
    assert kp.decision_boundaries_figure is kp.plot_decision_boundaries
    assert kp.accuracy_grid_figure is kp.plot_accuracy_grid
    assert all(name.startswith("plot_") for name in kp.__all__)


def test_plot_eigenvalues_draws_on_the_given_axes_what_it_was_given():
    fig, ax = plt.subplots()
    eigs = np.array([0.9 + 0.1j, 0.5 - 0.2j])
    assert plot_eigenvalues({"a": eigs}, ax=ax) is fig
    pts = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())] +
                         [np.column_stack(ln.get_data()) for ln in ax.lines if len(ln.get_xdata()) == 2])
    for e in eigs:  # each eigenvalue is drawn at (Re, Im)
        assert np.min(np.hypot(pts[:, 0] - e.real, pts[:, 1] - e.imag)) < 1e-12
    plt.close(fig)
