"""linlens.report.figures: every figure function is ``plot_*(…, ax=None) -> Figure`` and draws what it is given
(read back from the artists); one name per figure across the report's figure modules, no aliases."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import linlens.report.figures as figs  # noqa: E402

FIGURE_MODULES = ["figures", "jacobian_figures", "spectral_figures", "koopman_figures", "flows_figures",
                  "fibers_figures"]


def test_one_name_per_figure_and_figures_only_in_report():
    # every figure function has one public name in one module of linlens.report, and no alias of it is bound
    # anywhere in the package (the 19 pre-issue-13 aliases are gone); capabilities hold no figure code
    import importlib
    import inspect
    import pkgutil

    import linlens

    homes: dict[str, str] = {}
    for m in FIGURE_MODULES:
        mod = importlib.import_module(f"linlens.report.{m}")
        for name in mod.__all__:
            assert name not in homes, f"{name} is public in both {homes[name]} and {m}"
            homes[name] = m
    figures = {id(getattr(importlib.import_module(f"linlens.report.{m}"), n)): n for n, m in homes.items()}
    for info in pkgutil.walk_packages(linlens.__path__, "linlens."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if inspect.isfunction(obj) and id(obj) in figures:
                assert name == figures[id(obj)], f"{info.name}.{name} is an alias of {figures[id(obj)]}"
        if not info.name.startswith(("linlens.report", "linlens.workflows", "linlens.cli")):
            assert not any(n.startswith("plot_") for n in getattr(mod, "__all__", [])), info.name


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


def test_plot_operator_heatmaps_draws_big_matrices_as_block_means_on_the_full_matrix_scale():
    """Above 1024 per side a heatmap shows f × f block means (edge blocks smaller), with the colour limit and the axes
    of the full matrix; small matrices are drawn as they are."""
    rng = np.random.default_rng(1)
    M = rng.normal(size=(2050, 1100))
    fig = figs.plot_operator_heatmaps({"M": M})
    im = fig.axes[0].images[0]
    shown = np.asarray(im.get_array())
    assert shown.shape == (684, 367)  # f = ⌈2050 / 1024⌉ = 3
    assert shown[0, 0] == pytest.approx(M[:3, :3].mean()) and shown[-1, -1] == pytest.approx(M[2049:, 1098:].mean())
    assert im.get_clim()[1] == pytest.approx(np.percentile(np.abs(M), 99))
    assert im.get_extent() == [-0.5, 1099.5, 2049.5, -0.5]
    small = figs.plot_operator_heatmaps({"S": M[:5, :4]})
    np.testing.assert_array_equal(np.asarray(small.axes[0].images[0].get_array()), M[:5, :4])
    plt.close(fig)
    plt.close(small)
