"""The study report's figures say what its tables say (issue 23, item 6).

The report of a small inverse study is rendered with every figure kept as a matplotlib object; each figure is then
read back (its artists' data) and compared with the study's own numbers and the report's tables: the per-band
signal errors drawn are the bias-corrected table values (not the plug-in ones), no principal angle is drawn when
none is reported, every difference heat map has a colour scale of its own, colour-bar numbers do not run into the
next panel, noise floors are drawn where the table flags noise, overlapping curves differ in style, and the page
opens with a short answer.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _cases import Fixed  # noqa: E402

from linlens.linalg import subspace_comparison  # noqa: E402
from linlens.problems import GaussianPrior, InverseProblem, prescribed_spectrum  # noqa: E402
from linlens.report import Report  # noqa: E402
from linlens.report import figures as figs  # noqa: E402
from linlens.workflows.study import linearity_study  # noqa: E402
from linlens.workflows.study_report import add_study_section, ci_text  # noqa: E402

N = 16
PROB = InverseProblem(prescribed_spectrum(np.logspace(0, -4, N), seed=1), GaussianPrior(N), 1e-2, name="toy")


@pytest.fixture(scope="module")
def rendered():
    rng = np.random.default_rng(0)
    W = PROB.wiener()
    G = rng.normal(size=(N, N)) / N
    X, Y = PROB.sample(3000, seed=0)
    # "net": Wiener + a nonlinear part; "weak": a tenth of it (its noise amplification is estimation noise)
    models = {"net": Fixed(W, G, beta=0.2), "weak": Fixed(0.1 * W, G, beta=0.05)}
    study = linearity_study(models, PROB, X_train=X, Y_train=Y, n_probe=600, n_boot=20, seed=0)
    rep = Report("toy")
    kept: dict[str, object] = {}
    real_add = Report.add_figure

    def keep(self, fig, name, caption="", dpi=110):
        kept[name] = fig  # the figure object stays readable after the report saved (and closed) it
        real_add(self, fig, name, caption, dpi)

    Report.add_figure = keep
    try:
        add_study_section(rep, "toy", study, good="net", total_var=float(np.trace(PROB.prior.covariance())))
    finally:
        Report.add_figure = real_add
    return study, rep, kept


def _shown(v):
    """What the figure must show for a table entry: its estimate, or its interval's upper end when the estimate is
    noise-dominated or not above 0 (on a log axis)."""
    return v["high"] if v.get("noise_dominated") or v["estimate"] <= 0 else v["estimate"]


def test_band_figure_draws_the_corrected_table_values(rendered):
    study, rep, kept = rendered
    fig = kept["toy_signal_noise"]
    band_ax, total_ax = fig.axes[:2]
    tables = [b.payload for b in rep._blocks if b.kind == "table"]
    band_table = next(t for t in tables if t[0][0] == "band of A's singular index")
    n_bands = len(study.reference_signal_noise["Wiener"].bands)
    differs_from_plug_in = False
    for col, name in enumerate(["net", "weak"], start=1):
        corr = study.models[name].signal_noise_corrected
        line = next(ln for ln in band_ax.lines if ln.get_label().startswith(f"C ({name})"))
        want = [_shown(corr[f"band_{j}"]) for j in range(n_bands)]
        np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-12)
        # the report's band table holds the same numbers
        assert [row[col] for row in band_table[1]] == [ci_text(corr[f"band_{j}"]) for j in range(n_bands)]
        plug = np.asarray(study.models[name].signal_noise.band_signal_error)
        differs_from_plug_in |= not np.allclose(line.get_ydata(), plug, rtol=1e-3)
        # totals panel: signal error and noise amplification of the split table
        ys = sorted(float(y) for ln in total_ax.lines if ln.get_color() == line.get_color()
                    for y in np.atleast_1d(ln.get_ydata()) if len(np.atleast_1d(ln.get_ydata())) == 1)
        for key in ("signal_error", "noise_amplification"):
            assert any(np.isclose(y, _shown(corr[key]), rtol=1e-12) for y in ys), (name, key, ys)
    assert differs_from_plug_in  # the check above would not notice plug-in values otherwise


def test_no_angles_drawn_when_none_reported(rendered):
    study, _, kept = rendered
    sub = study.models["net"].comparisons["Wiener"].subspaces
    fig = kept["toy_subspace_angles"]
    ax = fig.axes[0]
    labels = [ln.get_label() for a in fig.axes for ln in a.lines]
    if sub.k is None or not sub.clear:
        assert "no angles reported" in ax.get_title()
        assert not any(lb in ("largest angle", "left / right", "Wedin bound") for lb in labels), labels
        assert not [ln for a in fig.axes for ln in a.lines if ln.get_marker() == "*"]
    # both cases on purpose-built operators: a clear gap draws the angle and its star, none draws no angle
    rng = np.random.default_rng(1)
    gap = figs.plot_subspace_angles(subspace_comparison(np.diag([4.0, 1.0, 0.5]), np.diag([4.0, 1.0, 0.5])))
    assert "largest angle" in [ln.get_label() for ln in gap.axes[0].lines]
    none = figs.plot_subspace_angles(subspace_comparison(rng.normal(size=(8, 8)), rng.normal(size=(8, 8)),
                                                         min_gap=0.99))
    assert not any(ln.get_label() in ("largest angle", "Wedin bound") for a in none.axes for ln in a.lines)
    plt.close(gap)
    plt.close(none)


def test_differences_have_their_own_scale_and_colour_bars_do_not_overlap(rendered):
    study, _, kept = rendered
    fig = kept["toy_heatmaps"]
    C = study.models["net"].coef
    images = [(a, a.images[0]) for a in fig.axes if a.images]
    by_title = {a.get_title().split("\n")[0]: im for a, im in images}
    for ref in ("Wiener", "C_data"):
        D = C - study.references[ref]
        lim = np.percentile(np.abs(D), 99)
        assert by_title[f"C − {ref}"].get_clim() == pytest.approx((-lim, lim))
    assert by_title["C − Wiener"].get_clim() != by_title["Wiener"].get_clim()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the report closed the figure; draw it again off-screen, as it was saved
    canvas.draw()
    renderer = canvas.get_renderer()
    from matplotlib.transforms import Bbox

    # one box per panel: the heat map with its title and ticks, and its colour bar with its numbers
    boxes = [Bbox.union([a.get_tightbbox(renderer), im.colorbar.ax.get_tightbbox(renderer)]) for a, im in images]
    assert len(boxes) == 6
    for i, b in enumerate(boxes):  # no panel's numbers run into another panel
        for c in boxes[i + 1:]:
            inter = Bbox.intersection(b, c)
            assert inter is None or inter.width < 1.0 or inter.height < 1.0, (i, b, c)


def test_noise_floors_drawn_where_the_table_flags_noise(rendered):
    study, _, kept = rendered
    ax = kept["toy_singular_spectra"].axes[0]
    for name, m in study.models.items():
        flagged = any(m.estimation_noise[k]["noise_dominated"] for k in ("‖C‖_F", "σ_max(C)"))
        floor = m.estimation_noise["σ_max(C)"]["noise_floor"]
        drawn = [ln for ln in ax.lines if ln.get_label().startswith(f"C ({name}): estimation-noise floor")]
        assert bool(drawn) == flagged
        if drawn:
            assert drawn[0].get_ydata()[0] == pytest.approx(floor)


def test_overlapping_curves_differ_in_style(rendered):
    _, _, kept = rendered
    lines = [ln for ln in kept["toy_filter_factors"].axes[0].lines if not ln.get_label().startswith("_")]
    styles = [(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in lines]
    assert len(lines) >= 3
    for i, a in enumerate(styles):  # every pair differs in colour, dash AND marker (grey scale, overlap)
        for b in styles[i + 1:]:
            assert a[1] != b[1] and a[2] != b[2]


def test_page_opens_with_a_short_answer(rendered):
    study, rep, _ = rendered
    html = rep.to_html()
    assert html.index("The answer") < html.index("<h2>toy</h2>")
    assert 2 <= len(rep.answer) + bool(rep.answer_next) <= 5
    m = study.models["net"]
    named = m.verdict.closest if m.closest == "tie" else (m.closest,)
    for k in named:
        if k in m.errors:
            assert ci_text(m.errors[k]) in rep.answer[0]
