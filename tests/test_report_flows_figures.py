"""linlens.report.flows_figures: ``plot_*`` names (one name per figure, no aliases), figures that draw what they
are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import linlens.report.flows_figures as plots  # noqa: E402
from linlens.report.figures import plot_singular_spectra  # noqa: E402


def test_the_variance_spectra_of_flows_are_drawn_by_the_one_spectrum_figure():
    fig, ax = plt.subplots()
    v = {"a": np.array([4.0, 2.0, 1.0]), "b": np.array([3.0, 0.5])}
    assert plot_singular_spectra(v, ax=ax, ylabel="variance", xlabel="component") is fig
    assert ax.get_ylabel() == "variance" and ax.get_yscale() == "log"
    for line, (label, values) in zip(ax.lines, v.items(), strict=True):
        assert line.get_label() == label
        np.testing.assert_array_equal(line.get_ydata(), values)
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(values) + 1))
    plt.close(fig)


def test_plot_convergence_is_log_log_and_draws_the_curve():
    fig = plots.plot_convergence({"run": ([1, 10, 100], [1.0, 0.1, 0.01])})
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1.0, 0.1, 0.01])
    plt.close(fig)
