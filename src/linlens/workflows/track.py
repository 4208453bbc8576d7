"""``linlens track``: the linear picture of a network across its saved checkpoints, and the tracking report.

The architecture is the user's code (``--model-spec package.module:attr``: an ``nn.Module`` instance, a class
taking no arguments, or a function taking none that returns one); each checkpoint is a weights-only state dict
loaded into it (:func:`linlens.loaders.load_weights`), in step order (the step is the last integer in the file
name: :mod:`linlens.tracking.checkpoints`). :class:`~linlens.tracking.Tracker` computes every number; the same
numbers come from ``tracker.update(model, step)`` in a training loop on the same weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linlens._progress import progress_to
from linlens.errors import ConfigError, ModelError
from linlens.loaders import load_array
from linlens.nn import progress_bar, progress_listener
from linlens.report import Report, check_destination
from linlens.report import tracking_figures as tf
from linlens.stats import interval_text
from linlens.tracking import Tracker, TrackingResult, deep_linear_weights, ordered_checkpoints, spectral_bias
from linlens.tracking.checkpoints import track_checkpoints
from linlens.validation import import_attr
from linlens.workflows.inverse import load_forward_operator

__all__ = ["run_track", "add_tracking_section", "build_module"]


def build_module(spec: str) -> torch.nn.Module:
    """The architecture named by ``package.module:attr`` (imports and runs that code): an ``nn.Module`` instance
    is used as is, a class or a function is called without arguments and must return one.

    Example:
        >>> build_module("torch.nn:Identity")  # a class taking no arguments is instantiated
        Identity()
        >>> build_module("torch.nn:Linear")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ModelError: --model-spec: calling torch.nn:Linear() failed: ...missing 2 required positional...
    """
    obj = import_attr(spec, "model")
    if not isinstance(obj, torch.nn.Module) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - user code raises anything: one line, no traceback
            raise ModelError(f"--model-spec: calling {spec}() failed: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(obj, torch.nn.Module):
        raise ModelError(f"--model-spec: {spec} must be an nn.Module, or a class or function building one without "
                         f"arguments; got {type(obj).__name__}")
    return obj


def add_tracking_section(rep: Report, result: TrackingResult, key: str = "track", bands: list[int] | None = None,
                         spectral: Any = None) -> dict[str, Any]:
    """Tables and figures of a tracked run: errors vs references with intervals, R² and the Jacobian distance,
    filter factors as a heat map and per band, the spectral-bias plot, the rank list; returns its metrics.

    Arguments:
        rep: the report to append to.
        result: the :class:`~linlens.tracking.TrackingResult`.
        key: prefix of the figure files.
        bands: band indices drawn as curves (default all).
        spectral: a :class:`~linlens.tracking.SpectralBias` computed by the caller (default computed here when
            the run has filter factors).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 2))
        >>> tr = Tracker(X + 0.1 * rng.normal(size=(200, 2)), X, n_boot=20, n_jacobian=0)  # no operator
        >>> net = torch.nn.Linear(2, 2, bias=False).double()
        >>> for step in range(3):
        ...     _ = net.weight.data.copy_((step + 1) / 3 * torch.eye(2)); _ = tr.update(net, step)
        >>> rep = Report("run"); metrics = add_tracking_section(rep, tr.result())
        >>> sorted(metrics), [f.split("_", 1)[1] for f in rep._figures]  # bias-free Linear: deep linear, ranks
        (['seconds_per_update', 'tracking'], ['errors.png', 'r2.png', 'ranks.png'])
    """
    su, pts = result.setup, result.points
    pct = int(round(su.ci * 100))
    metrics: dict[str, Any] = {"tracking": result.to_dict()}
    rep.add_notes(su.notes, su.reference_status, "Every interval resamples the surrogate's fit and test rows and each "
                  "estimated reference's own rows (multiplier bootstrap with the same draws at every step).")
    header = ["step", "R²"] + (["test MSE"] if pts and pts[0].test_mse is not None else []) + [
        f"error vs {k} [{pct}% CI]" for k in su.references] + (["verdict"] if su.references else [])
    if su.singular_values_A is not None:
        header += ["signal error", "noise amplification"]
    if pts and pts[0].local is not None:
        header.append("weighted ‖J − C‖ (median)")
    if pts and pts[0].ranks is not None:
        header += ["rank list", "stratum (dim)"]
    rows = []
    for p in pts:
        row: list[Any] = [p.step, p.r2] + ([p.test_mse] if p.test_mse is not None else [])
        row += [interval_text(p.errors[k]) for k in su.references] + ([p.verdict] if su.references else [])
        if p.signal_noise is not None:
            row += [interval_text(p.signal_noise["signal_error"]), interval_text(p.signal_noise["noise_amplification"])]
        if p.local is not None:
            row.append(p.local["weighted_distance_median"])
        if p.ranks is not None:
            row += [" ".join(f"{k[2:].replace('_', '')}={v}" for k, v in p.ranks.items()),
                    f"{p.stratum} ({p.stratum_dim})"]
        rows.append(row)
    rep.add_table(header, rows, caption=(
        "Per tracked step: R² of the surrogate on the held-out half of the probes; centred data-weighted errors "
        "E‖(C−R)(y−ȳ)‖²/E‖R(y−ȳ)‖², bias-corrected, with basic bootstrap intervals; the paired verdict; signal error "
        "and noise amplification (fractions of E‖x‖²); the Σ_y-weighted distance ‖(J(y)−C)Σ_y^½‖_F/‖CΣ_y^½‖_F of the "
        "network's Jacobians to the surrogate; for deep linear networks the numerical ranks r_ji of W_j⋯W_{i+1}."))
    if su.references:
        rep.add_figure(tf.plot_errors_vs_step(result), f"{key}_errors", "Error of the surrogate against each "
                       f"reference per step: bias-corrected estimate and {pct}% basic bootstrap interval.")
    rep.add_figure(tf.plot_r2_vs_step(result), f"{key}_r2", "R² of the surrogate on held-out probes (left axis) and "
                   "the Σ_y-weighted distance between the network's Jacobians and the surrogate (right axis, median "
                   "and 10–90% range over the Jacobian probes).")
    if result.factors() is not None:
        rep.add_figure(tf.plot_factor_heatmap(result), f"{key}_filter_factors_heatmap",
                       "Filter factors φᵢ = (VᵀCAV)ᵢᵢ of the surrogate per singular index of A (rows) and tracked "
                       "step (columns).")
        rep.add_figure(tf.plot_factor_curves(result, bands), f"{key}_filter_factors_bands",
                       "Mean filter factor per band of A's singular index against the step; dashed: the Wiener "
                       "estimator's value for the band.")
        sb = spectral if spectral is not None else spectral_bias(result)
        metrics["spectral_bias"] = sb.to_dict()
        rep.add_figure(tf.plot_spectral_bias(sb.singular_values, sb.half_steps), f"{key}_spectral_bias",
                       "The step at which each singular component reaches half of its final filter factor, against "
                       f"σᵢ(A) (components whose final φᵢ and Wiener φᵢ are ≥ {sb.min_final:g}). Spearman ρ = "
                       f"{sb.spearman_rho:.3g} (p = {sb.p_value:.2g}); negative: larger σᵢ learned earlier.")
    if pts and pts[0].ranks is not None:
        rep.add_figure(tf.plot_ranks_vs_step(result), f"{key}_ranks", "Numerical ranks of every subproduct of the "
                       "deep linear network per step (relative tolerance of linlens.fibers), and the steps where the "
                       "stratum changes.")
    cpu = [p.cpu_seconds for p in pts]
    metrics["seconds_per_update"] = {"wall_median": float(np.median([p.seconds for p in pts])) if pts else None,
                                     "cpu_median": float(np.median(cpu)) if pts else None}
    return metrics


def run_track(*, model_spec: str, checkpoints: str, inputs: Path, targets: Path | None, operator: str | None,
              prior_covariance: Path | None, noise_std: float | None, n_boot: int, jacobian_rows: int,
              n_bands: int, rank_tol: float | None, batch_size: int, out: Path, force: bool, seed: int,
              console: Any = None, show_bands: str | None = None) -> dict[str, Any]:
    """Track the checkpoints and write the report; returns headline numbers (see ``linlens track --help``).

    Example:
        >>> import sys, tempfile
        >>> d = Path(tempfile.mkdtemp()); sys.path.insert(0, str(d))
        >>> _ = (d / "tiny_arch.py").write_text("import torch\\nnet = torch.nn.Linear(2, 2, bias=False).double()\\n")
        >>> for step in (1, 2):  # weights s·I at step s
        ...     torch.save({"weight": step * torch.eye(2, dtype=torch.float64)}, d / f"ckpt_{step}.pt")
        >>> np.save(d / "y.npy", np.random.default_rng(0).normal(size=(40, 2)))
        >>> s = run_track(model_spec="tiny_arch:net", checkpoints=str(d / "ckpt_*.pt"), inputs=d / "y.npy",
        ...               targets=None, operator=None, prior_covariance=None, noise_std=None, n_boot=20,
        ...               jacobian_rows=0, n_bands=2, rank_tol=None, batch_size=64, out=d / "report",
        ...               force=False, seed=0)
        >>> s["checkpoints"], s["first step"], s["last step"], round(s["R² (last)"], 8), (d / "report").is_dir()
        (2, 1, 2, 1.0, True)
    """
    check_destination(out, force)
    bands = None
    if show_bands is not None:
        if operator is None:
            raise ConfigError("--show-bands is used only with --operator (bands of A's singular index)")
        try:
            bands = [int(b) - 1 for b in show_bands.split(",")]
        except ValueError:
            raise ConfigError(f"--show-bands must be comma-separated band numbers like 1,2,3; got {show_bands!r}"
                              ) from None
        if not bands or min(bands) < 0 or max(bands) >= n_bands or len(set(bands)) != len(bands):
            raise ConfigError(f"--show-bands: each band number once, between 1 and --bands = {n_bands}; got "
                              f"{show_bands!r}")
    for name, v in (("--prior-covariance", prior_covariance), ("--noise-std", noise_std)):
        if v is not None and operator is None:
            raise ConfigError(f"{name} is used only with --operator (the Wiener reference and the noise "
                              "amplification); give --operator or leave it out")
    files = ordered_checkpoints(checkpoints)  # refuse bad names before importing the user's code
    Y = load_array(inputs, "inputs", ndim=2)
    X = None if targets is None else load_array(targets, "targets", ndim=2)
    if X is not None and len(X) != len(Y):
        raise ConfigError(f"--targets must have one row per input: inputs have {len(Y)} rows, targets {len(X)}")
    A = None
    if operator is not None:
        if X is None and (prior_covariance is None or noise_std is None):
            raise ConfigError("--operator without --targets needs both --prior-covariance and --noise-std")
        x_shape = (X.shape[1],) if X is not None else None
        if x_shape is None:
            Sx = load_array(prior_covariance, "prior covariance", ndim=2)
            x_shape = (Sx.shape[0],)
        A = load_forward_operator(operator, x_shape, (Y.shape[1],)).to_dense()
    Sx = None if prior_covariance is None else load_array(prior_covariance, "prior covariance", ndim=2)
    module = build_module(model_spec)
    if rank_tol is not None and deep_linear_weights(module) is None:
        raise ConfigError("--rank-tol is used only for deep linear networks (an nn.Sequential of bias-free Linear "
                          "layers); this model is not one")
    tracker = Tracker(Y, X, A, prior_covariance=Sx, noise_std=noise_std, n_boot=n_boot, seed=seed, n_bands=n_bands,
                      n_jacobian=jacobian_rows, rank_tol=rank_tol, batch_size=batch_size)
    if console is not None:
        console.print(f"{len(files)} checkpoints, steps {files[0][0]} … {files[-1][0]}; {len(Y)} probes")
    with progress_bar(console is not None) as bar, progress_to(progress_listener(bar)):
        result = track_checkpoints(module, [p for _, p in files], tracker)
    rep = Report("linlens track: the linear picture across training")
    rep.add_text(f"Model {model_spec}, {len(files)} checkpoints ({os.fspath(checkpoints)}), step = the last integer "
                 f"in each file name; {len(Y)} probes from {inputs} (first half fits the surrogate, second half "
                 "tests it).")
    last = result.points[-1]
    rep.add_answer(f"At the last step ({last.step}) the surrogate explains R² = {last.r2:.4g} of the network's "
                   "output variance on held-out probes" + (f"; verdict: {last.verdict}" if last.verdict else "") + ".")
    if bands is not None and result.setup.bands is not None and max(bands) >= len(result.setup.bands):
        raise ConfigError(f"--show-bands: A's singular index has only {len(result.setup.bands)} bands; got "
                          f"{show_bands!r}")
    metrics = add_tracking_section(rep, result, bands=bands)
    rep.metrics.update(metrics | {"checkpoints": [{"step": s, "file": str(p)} for s, p in files],
                                  "step_rule": "the last integer in the file name"})
    rep.write(out, force=force)
    summary: dict[str, Any] = {"checkpoints": len(files), "first step": files[0][0], "last step": files[-1][0],
                               "R² (last)": last.r2}
    for k in result.setup.references:
        summary[f"error vs {k} (last)"] = interval_text(last.errors[k])
    if last.verdict:
        summary["verdict (last)"] = last.verdict
    if last.stratum is not None:
        summary["stratum (last)"] = last.stratum
    summary["CPU s per update (median)"] = metrics["seconds_per_update"]["cpu_median"]
    return summary
