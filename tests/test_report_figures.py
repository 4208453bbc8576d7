"""linlens.report.figures: every figure function is ``plot_*(…, ax=None) -> Figure``, draws what it is given
(read back from the artists) and keeps its pre-issue-13 name as an alias."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import linlens.report.figures as figs  # noqa: E402

ALIASES = {"singular_spectra": "plot_singular_spectra", "filter_factor_plot": "plot_filter_factors",
           "principal_angle_plot": "plot_principal_angles", "eigenvalue_plot": "plot_eigenvalues",
           "operator_heatmaps": "plot_operator_heatmaps", "training_curves": "plot_training_curves",
           "bar_chart": "plot_bar_chart"}


@pytest.mark.parametrize("old", sorted(ALIASES))
def test_deprecated_names_are_the_plot_functions(old):
    assert getattr(figs, old) is getattr(figs, ALIASES[old])
    assert old not in figs.__all__ and ALIASES[old] in figs.__all__


def test_every_public_figure_is_plot_star():
    assert all(name.startswith("plot_") for name in figs.__all__)


def test_plot_singular_spectra_draws_the_values_on_the_given_axes():
    fig, ax = plt.subplots()
    s = np.array([3.0, 1.0, 0.25])
    out = figs.plot_singular_spectra({"C": s}, ax=ax)
    assert out is fig and isinstance(out, Figure)
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, [1, 2, 3])
    np.testing.assert_array_equal(y, s)
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_plot_eigenvalues_places_each_eigenvalue_at_re_im():
    e = np.array([2.0 + 1.0j, -0.5 - 0.25j])
    fig = figs.plot_eigenvalues({"A": e})
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_offsets(), np.column_stack([e.real, e.imag]))
    plt.close(fig)


def test_plot_operator_rows_draws_each_row_as_its_image():
    import numpy as np

    from linlens.report.figures import plot_operator_rows

    rng = np.random.default_rng(0)
    C = rng.normal(size=(12, 12))
    fig = plot_operator_rows({"C": C, "2C": 2 * C}, (3, 4), [0, 5])
    grid = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(grid[:3, :4], C[0].reshape(3, 4) / np.abs(C[0]).max())
    np.testing.assert_allclose(grid[4:7, 5:9], C[5].reshape(3, 4) / np.abs(C[5]).max())  # scaled to itself
    assert np.isnan(grid[3]).all()  # gutter between operators


def test_plot_singular_images_labels_each_tile_with_its_index_sigma_and_factors():
    s = np.r_[np.geomspace(10.0, 0.1, 30), 0.0, 0.0]  # two zero singular values: never shown
    Vt = np.linalg.qr(np.random.default_rng(0).normal(size=(36, 36)))[0][:32]
    phi = s**2 / (s**2 + 1.0)
    fig = figs.plot_singular_images(Vt, s, {"W": phi}, (6, 6), count=5)
    idx = figs.singular_indices(s, 5)
    assert idx[0] == 0 and idx[-1] == 29 and len(idx) == 5  # log-spread over the 30 nonzero values
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == len(idx)
    for lab, i in zip(labels, idx, strict=True):
        assert f"i = {i + 1}" in lab and f"φ W = {phi[i]:.2f}" in lab
    assert figs.row_pixels((6, 6), 36)[0] == 3 * 6 + 3  # the centre pixel first
