"""linlens.flows.plots: ``plot_*`` names (one name per idea, issue 13), figures that draw what they are given,
the old ``*_plot`` names kept as aliases."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import linlens.flows.plots as plots  # noqa: E402

ALIASES = {"components_vs_pca_plot": "plot_components_vs_pca", "stability_plot": "plot_stability",
           "local_covariance_plot": "plot_local_covariance", "traversal_grid": "plot_traversal_grid",
           "spectrum_plot": "plot_spectrum", "convergence_plot": "plot_convergence",
           "sigma_max_plot": "plot_sigma_max", "traversal_paths_plot": "plot_traversal_paths"}


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_deprecated_names_are_the_plot_functions(old):
    assert getattr(plots, old) is getattr(plots, ALIASES[old])
    assert old not in plots.__all__ and ALIASES[old] in plots.__all__


def test_plot_spectrum_draws_each_spectrum_on_the_given_axes():
    fig, ax = plt.subplots()
    v = {"a": np.array([4.0, 2.0, 1.0]), "b": np.array([3.0, 0.5])}
    assert plots.plot_spectrum(v, ax=ax) is fig
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
