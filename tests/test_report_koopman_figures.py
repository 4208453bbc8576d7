"""linlens.report.koopman_figures (and the DMD eigenvalues drawn by report.figures.plot_eigenvalues): figures
draw what they are given, read back from the artists."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import linlens.report.koopman_figures as kp  # noqa: E402
from linlens.report.figures import plot_eigenvalues  # noqa: E402
from linlens.report.koopman_figures import (  # noqa: E402
    plot_accuracy_grid,
    plot_decision_boundaries,
    plot_right_singular_vectors,
)


def test_plot_eigenvalues_counts_what_falls_outside_the_span():
    fig = plot_eigenvalues({"a": np.array([0.9 + 0.1j, 0.9 - 0.1j, 3.0 + 0.0j])}, unit_circle=True, lim=2.0)
    ax = fig.axes[0]
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-2.0, 2.0)
    notes = [t.get_text() for t in ax.texts]
    assert any(t.startswith("1 eigenvalue(s) outside") and "max |λ| = 3" in t for t in notes), notes
    inside = plot_eigenvalues({"a": np.array([0.5 + 0.0j])}, unit_circle=True, lim=2.0)
    assert not inside.axes[0].texts
    plt.close("all")


def test_plot_right_singular_vectors_draws_the_first_trajectories_columns():
    V = np.random.default_rng(0).normal(size=(30, 5))
    ax = plot_right_singular_vectors(V, steps=5).axes[0]  # 3 trajectories × 5 columns, 4 vectors
    curves = [ln for ln in ax.lines if len(ln.get_xdata()) > 2]
    assert len(curves) == 4
    for j, ln in enumerate(curves):
        np.testing.assert_array_equal(ln.get_xdata(), np.arange(15))
        np.testing.assert_array_equal(ln.get_ydata(), V[:15, j])
    bounds = sorted(float(ln.get_xdata()[0]) for ln in ax.lines if len(ln.get_xdata()) == 2)
    assert bounds == [4.5, 9.5]  # trajectory boundaries between columns 4|5 and 9|10
    plt.close("all")


def test_plot_decision_boundaries_one_panel_per_model_with_the_points():
    g = np.linspace(0, 1, 10)
    xx, yy = np.meshgrid(g, g)
    pts = np.random.default_rng(1).random((20, 2))
    fig = plot_decision_boundaries(xx, yy, {"a": (xx > 0.5).astype(int), "b": (yy > 0.5).astype(int)},
                                   pts, np.arange(20) % 3, titles={"b": "B (acc 0.9)"})
    assert [ax.get_title() for ax in fig.axes] == ["a", "B (acc 0.9)"]
    for ax in fig.axes:
        scat = [c for c in ax.collections if len(c.get_offsets()) == 20]
        assert len(scat) == 1
        np.testing.assert_array_equal(scat[0].get_offsets(), pts)
    plt.close("all")


def test_plot_accuracy_grid_shows_the_best_value_of_each_cell():
    rows = [{"delays": h, "rank": r, "accuracy": 0.1 * h + 0.01 * r} for h in range(3) for r in (4, 8)]
    rows.append({"delays": 1, "rank": 4, "accuracy": 0.0})  # a worse fit in an occupied cell
    M = plot_accuracy_grid(rows).axes[0].images[0].get_array()
    want = np.array([[0.1 * h + 0.01 * r for h in range(3)] for r in (4, 8)])  # rows: rank, columns: delays
    np.testing.assert_allclose(M, want)
    rows_mse = [{"delays": 0, "rank": 4, "mse": v} for v in (0.3, 0.1, 0.2)]
    M = plot_accuracy_grid(rows_mse, value="mse", higher_is_better=False).axes[0].images[0].get_array()
    assert M.tolist() == [[0.1]]
    plt.close("all")


def test_every_public_figure_is_plot_star():
    assert all(name.startswith("plot_") for name in kp.__all__)


def test_plot_eigenvalues_draws_on_the_given_axes_what_it_was_given():
    fig, ax = plt.subplots()
    eigs = np.array([0.9 + 0.1j, 0.5 - 0.2j])
    assert plot_eigenvalues({"a": eigs}, ax=ax, unit_circle=True) is fig
    pts = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())] +
                         [np.column_stack(ln.get_data()) for ln in ax.lines if len(ln.get_xdata()) == 2])
    for e in eigs:  # each eigenvalue is drawn at (Re, Im)
        assert np.min(np.hypot(pts[:, 0] - e.real, pts[:, 1] - e.imag)) < 1e-12
    plt.close(fig)
