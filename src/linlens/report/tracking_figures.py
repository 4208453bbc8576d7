"""Figures of a training run seen through its linear surrogates (:class:`linlens.tracking.TrackingResult`).

Every function takes results (never recomputes), an optional ``ax``, and returns the matplotlib figure.

Example:
    >>> import numpy as np
    >>> fig = plot_spectral_bias(np.array([1.0, 0.5, 0.1]), np.array([10.0, 30.0, 90.0]))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linlens.report.figures import new_axes

__all__ = ["plot_factor_heatmap", "plot_factor_curves", "plot_errors_vs_step", "plot_r2_vs_step",
           "plot_ranks_vs_step", "plot_spectral_bias", "plot_mode_curves"]


def plot_factor_heatmap(result: Any, ax: Any = None):
    """Filter factors φᵢ(step) as an image: singular index i (rows, largest σᵢ on top) × tracked step (columns);
    the colour scale is centred on 1 (A⁻¹'s factor) and spans [−0.25, 1.25] (values outside are clipped in
    colour only).

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> fig = plot_factor_heatmap(tr.result())
        >>> np.round(fig.axes[0].collections[0].get_array().reshape(3, 2), 8).tolist()  # rows i, columns steps
        [[0.5, 1.0], [0.5, 1.0], [0.5, 1.0]]
    """
    fig, ax = new_axes(ax, (7, 4))
    F = result.factors()
    steps = result.steps
    k = F.shape[1]
    x = np.arange(len(steps) + 1) - 0.5
    im = ax.pcolormesh(x, np.arange(k + 1) + 0.5, F.T, cmap="viridis", vmin=-0.25, vmax=1.25, shading="flat")
    ax.set_ylim(k + 0.5, 0.5)
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(steps[t]) for t in ticks])
    ax.set_xlabel("step (tracked points, evenly spaced)")
    ax.set_ylabel("singular index i of A (σᵢ descending)")
    ax.set_title("filter factors φᵢ(step) of the surrogate")
    fig.colorbar(im, ax=ax, label="φᵢ")
    return fig


def plot_factor_curves(result: Any, bands: Sequence[int] | None = None, ax: Any = None):
    """Mean filter factor per band of A's singular index against the step, one line per chosen band (default all),
    with the Wiener estimator's value for the band as a dashed line of the same colour.

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> fig = plot_factor_curves(tr.result(), bands=[0])
        >>> np.round(fig.axes[0].lines[0].get_ydata(), 8).tolist()  # band 1's mean φ at steps 0, 1
        [0.5, 1.0]
    """
    fig, ax = new_axes(ax, (7, 4))
    steps = result.steps
    B = np.stack([p.band_filter_factors for p in result.points])
    sb = result.setup.bands
    wiener = result.setup.reference_band_factors.get("Wiener")
    for j in (range(B.shape[1]) if bands is None else bands):
        a, b = sb[j]
        ax.plot(steps, B[:, j], color=f"C{j % 10}", marker="o", ms=3, label=f"band {a + 1}–{b}")
        if wiener is not None:
            ax.axhline(wiener[j], color=f"C{j % 10}", ls="--", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("mean φᵢ over the band")
    ax.set_title("filter factors per band (dashed: Wiener)" if wiener is not None else "filter factors per band")
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_errors_vs_step(result: Any, ax: Any = None):
    """Data-weighted error of the surrogate against each reference against the step: bias-corrected estimate
    (line) with its interval (band), log scale.

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> fig = plot_errors_vs_step(tr.result())
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['vs A⁻¹', 'vs Wiener', 'vs C_data']
        >>> bool(fig.axes[0].lines[0].get_ydata()[1] <= 1e-12)  # at step 1, C = A⁻¹: no error against it
        True
    """
    fig, ax = new_axes(ax, (7, 4))
    steps = result.steps
    pct = int(round(result.setup.ci * 100))
    for j, name in enumerate(result.setup.references):
        est = np.array([p.errors[name]["estimate"] for p in result.points])
        lo = np.array([p.errors[name]["low"] for p in result.points])
        hi = np.array([p.errors[name]["high"] for p in result.points])
        ax.plot(steps, np.maximum(est, 1e-12), color=f"C{j}", marker="os^dv"[j % 5], ms=4 - (j % 3),
                ls=("-", "--", ":")[j % 3], label=f"vs {name}")  # overlapping curves stay distinguishable
        ax.fill_between(steps, np.maximum(lo, 1e-12), np.maximum(hi, 1e-12), color=f"C{j}", alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("E‖(C − R)y‖² / E‖Ry‖²")
    ax.set_title(f"error against each reference ({pct}% intervals; values ≤ 1e-12 drawn at 1e-12)")
    ax.legend(fontsize=8)
    return fig


def plot_r2_vs_step(result: Any, ax: Any = None):
    """R² of the surrogate on the held-out probes and, when taken, the median Σ_y-weighted distance between the
    network's Jacobians and the surrogate, against the step.

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> fig = plot_r2_vs_step(tr.result())
        >>> np.round(fig.axes[0].lines[0].get_ydata(), 8).tolist()  # a linear network: R² = 1 at every step
        [1.0, 1.0]
    """
    fig, ax = new_axes(ax, (7, 4))
    steps = result.steps
    ax.plot(steps, [p.r2 for p in result.points], marker="o", ms=3, color="C0", label="R² (held-out probes)")
    ax.set_xlabel("step")
    ax.set_ylabel("R²", color="C0")
    ax.set_title("how linear the network is")
    if all(p.local is not None for p in result.points) and result.points:
        ax2 = ax.twinx()
        med = [p.local["weighted_distance_median"] for p in result.points]
        q10 = [p.local["weighted_distance_q10"] for p in result.points]
        q90 = [p.local["weighted_distance_q90"] for p in result.points]
        ax2.plot(steps, med, color="C3", marker="s", ms=3, label="Σ_y-weighted ‖J − C‖ (median)")
        ax2.fill_between(steps, q10, q90, color="C3", alpha=0.15, lw=0)
        ax2.set_ylabel("‖(J − C)Σ_y^½‖_F / ‖CΣ_y^½‖_F (10–90%)", color="C3")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    return fig


def plot_ranks_vs_step(result: Any, ax: Any = None):
    """Numerical ranks r_ji of the deep linear network's subproducts against the step (steps), with the stratum's
    dimension in the legend's last line.

    Example:
        >>> import numpy as np, torch
        >>> from linlens.tracking import Tracker
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 3, bias=False)).double()
        >>> tr = Tracker(np.random.default_rng(0).normal(size=(100, 3)), n_jacobian=0)
        >>> _ = tr.update(net, 0)
        >>> fig = plot_ranks_vs_step(tr.result())
        >>> sorted(tr.result().points[0].ranks.items()), len(fig.axes[0].lines)  # a 3 → 2 → 3 network has rank ≤ 2
        ([('r_1_0', 2), ('r_2_0', 2), ('r_2_1', 2)], 3)
    """
    fig, ax = new_axes(ax, (7, 4))
    steps = result.steps
    keys = list(result.points[0].ranks)
    for j, key in enumerate(keys):
        _, a, b = key.split("_")
        ax.step(steps, [p.ranks[key] + 0.03 * j for p in result.points], where="post", color=f"C{j % 10}",
                label=f"r_{a}{b} = rank W_{a}⋯W_{int(b) + 1}")
    ax.set_xlabel("step")
    ax.set_ylabel("numerical rank (lines offset by 0.03 to stay apart)")
    changes = [i for i in range(1, len(result.points)) if result.points[i].stratum != result.points[i - 1].stratum]
    for i in changes:
        ax.axvline(steps[i], color="0.6", lw=0.8, ls=":")
    ax.set_title(f"rank list per step; {len(changes)} stratum change(s) (dotted)")
    ax.legend(fontsize=8)
    return fig


def plot_spectral_bias(singular_values: Any, half_steps: Any, ax: Any = None, reference_steps: Any = None,
                       label: str = "surrogate", reference_label: str = "closed form"):
    """The step at which each singular component reaches half of its final filter factor against σᵢ(A)
    (log-log): a spectral bias shows as larger σᵢ learned earlier. Components without a half-rise step (NaN) are
    left out.

    Example:
        >>> fig = plot_spectral_bias(np.array([1.0, 0.5, 0.1]), np.array([10.0, np.nan, 90.0]))
        >>> fig.axes[0].lines[0].get_xydata().tolist(), fig.axes[0].get_title()  # the NaN component is left out
        ([[1.0, 10.0], [0.1, 90.0]], 'spectral bias: 2 components')
    """
    fig, ax = new_axes(ax, (6, 4))
    s = np.asarray(singular_values, dtype=float)
    t = np.asarray(half_steps, dtype=float)
    ok = np.isfinite(t) & (s > 0) & (t > 0)
    ax.loglog(s[ok], t[ok], "o", color="C0", label=label)
    if reference_steps is not None:
        r = np.asarray(reference_steps, dtype=float)
        okr = np.isfinite(r) & (s > 0) & (r > 0)
        ax.loglog(s[okr], r[okr], "-", color="C1", label=reference_label)
        ax.legend(fontsize=8)
    ax.set_xlabel("σᵢ(A)")
    ax.set_ylabel("step at half of the final φᵢ")
    ax.set_title(f"spectral bias: {int(ok.sum())} components")
    return fig


def plot_mode_curves(steps: Any, strengths: Any, closed_form: Any, singular_values: Any, ax: Any = None):
    """Mode strengths u_α(step)/s_α of a deep linear network (markers) against their closed-form curves (lines),
    one colour per mode.

    Example:
        >>> from linlens.tracking.saxe import saxe_mode_strength
        >>> t = np.arange(0.0, 10.0); s = np.array([2.0, 1.0])
        >>> cf = np.stack([saxe_mode_strength(t, si, 0.01) for si in s], axis=1)
        >>> fig = plot_mode_curves(t, cf, cf, s)
        >>> len(fig.axes[0].lines), bool(np.allclose(fig.axes[0].lines[0].get_ydata(), cf[:, 0] / 2.0))
        (4, True)
    """
    fig, ax = new_axes(ax, (7, 4))
    t = np.asarray(steps, dtype=float)
    U = np.asarray(strengths, dtype=float)
    Cf = np.asarray(closed_form, dtype=float)
    s = np.asarray(singular_values, dtype=float)
    stride = max(1, len(t) // 40)
    for a in range(U.shape[1]):
        ax.plot(t, Cf[:, a] / s[a], color=f"C{a % 10}", lw=1.5)
        ax.plot(t[::stride], U[::stride, a] / s[a], "o", ms=3, color=f"C{a % 10}", label=f"s = {s[a]:.3g}")
    ax.set_xlabel("step")
    ax.set_ylabel("u_α / s_α")
    ax.set_title("mode strengths: tracked (markers) and Saxe et al.'s closed form (lines)")
    ax.legend(fontsize=8)
    return fig
