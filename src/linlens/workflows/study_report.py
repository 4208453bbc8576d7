"""Report sections of the inverse-operator study, shared by ``linlens demo`` and ``linlens analyze``.

Every claim in the text comes from the study's numbers: verdicts from paired intervals, the signal/noise split
checked against the measured test error, estimation-noise flags beside unweighted norms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.jacobian import JacobianField
from linlens.report import Report
from linlens.report import figures as figs
from linlens.stats import interval_text
from linlens.workflows.study import LinearityStudy

__all__ = ["ci_text", "verdict_text", "answer_lines", "local_vs_global", "add_study_section", "MAX_DENSE_FIGURE"]

#: Above this dimension the dense operator figures (spectra, heatmaps, filter factors) are left out.
MAX_DENSE_FIGURE = 1024


def ci_text(v: dict[str, float]) -> str:
    """"estimate [low, high]" of a summarized bootstrap entry; a noise-dominated one (its estimate outside its own
    interval, see :func:`linlens.workflows.study.inverse_study`) says so; one below the detection limit reads
    "below detection: < high" (:func:`linlens.stats.interval_text`).

    Example:
        >>> ci_text({"estimate": 0.12, "low": 0.1, "high": 0.15})
        '0.12 [0.1, 0.15]'
        >>> ci_text({"estimate": 0.2, "low": 0.05, "high": 0.15, "noise_dominated": True})
        '0.2, noise-dominated (its interval [0.05, 0.15] excludes it)'
    """
    if v.get("below_detection"):
        return interval_text(v)
    if v.get("noise_dominated"):
        return f"{v['estimate']:.3g}, noise-dominated (its interval [{v['low']:.3g}, {v['high']:.3g}] excludes it)"
    return f"{v['estimate']:.3g} [{v['low']:.3g}, {v['high']:.3g}]"


def _verdict_words(m: Any) -> str:
    if m.closest == "tie" and not m.verdict.far:
        return f"{m.verdict.words()} (their paired difference is not significant)"
    return m.verdict.words()


def verdict_text(study: LinearityStudy, good: str, total_var: float) -> str:
    """The plain-language verdict for one model, every claim backed by an interval or a p-value.

    Example:
        >>> from linlens.workflows._examples import wiener_study
        >>> study, net, Y = wiener_study()  # the network "w" is the Wiener estimator of A = diag(2, 1, 0.5)
        >>> text = verdict_text(study, "w", total_var=3.0)
        >>> text.startswith("The trained network's surrogate is tied between Wiener and C_data"), "signal error" in text
        (True, True)
    """
    m = study.models[good]
    pct = int(round(study.ci * 100))
    inv = study.inverse_name
    parts = [
        f"The trained network's surrogate is {_verdict_words(m)}. Centred data-weighted errors, corrected for "
        f"the estimation noise of C, with {pct}% basic bootstrap intervals: "
        + ", ".join(f"{k} {ci_text(v)}" for k, v in m.errors.items()) + "."
    ]
    diffs = [f"{k}: {d.estimate:.3g} [{d.low:.3g}, {d.high:.3g}], {d.p_text()}"
             for k, d in m.verdict.differences.items()]
    if diffs:
        parts.append("Paired differences of errors (same resamples): " + "; ".join(diffs) + ".")
    if inv and m.signal_noise_corrected:
        sn = m.signal_noise_corrected
        w = study.reference_signal_noise["Wiener"]
        a = study.reference_signal_noise[inv]
        pinned = all(mm.errors[inv]["estimate"] > 0.9 for mm in study.models.values())
        measured = m.test_mse_surrogate * len(w.singular_values_A) / total_var
        parts.append(
            f"Against {inv} the data-weighted error is {m.errors[inv]['estimate']:.4g}"
            + (" (and above 0.9 for every model, like the zero map's 1: E‖" + inv + "y‖² is almost all amplified "
               "noise, so that number says little)" if pinned else "")
            + f". Split instead (fractions of E‖x‖²): signal error E‖(CA − I)x‖² {ci_text(sn['signal_error'])} and "
            f"noise amplification σ²‖C‖²_F {ci_text(sn['noise_amplification'])}, total {ci_text(sn['total'])} "
            f"against a measured {measured:.3g} for the surrogate on the test probes; the Wiener estimator has "
            f"{w.signal_error:.3g} + {w.noise_amplification:.3g}, {inv} has {a.signal_error:.2g} + "
            f"{a.noise_amplification:.3g}."
        )
    if m.filter_factors is not None:
        phi = np.asarray(m.filter_factors.factors)
        phi_w = np.asarray(study.reference_filter_factors["Wiener"].factors)
        parts.append(
            f"Its filter factors (means per cluster of equal singular values) are "
            f"{float(np.sqrt(np.mean((phi - phi_w) ** 2))):.3g} (RMS) from the Wiener estimator's factors "
            f"diag(Vᵀ C* A V) and {float(np.sqrt(np.mean((phi - 1.0) ** 2))):.3g} from {inv}'s factors of 1."
        )
    g = m.nonlinear_gain
    lin = study.test_mse["C_data"]
    rel = m.test_mse_model / lin
    n_x = m.coef.shape[0]
    compared = ("beats" if g.high < 0 else "is worse than" if g.low > 0 else "cannot be told apart from")
    parts.append(
        f"In test MSE the network ({m.test_mse_model:.3g}) {compared} the linear fit C_data ({lin:.3g}; "
        f"{(1 - rel) * 100:+.1f}%, paired test on the same {study.n_test} test points: squared-error difference per "
        f"entry {g.estimate / n_x:.3g} [{g.low / n_x:.3g}, {g.high / n_x:.3g}], {g.p_text()}); its own surrogate "
        f"scores {m.test_mse_surrogate:.3g}."
    )
    if m.gain is not None:
        parts.append(f"Split on the same points (per entry; the surrogate's own estimation error from {study.n_fit} "
                     f"probes removed): {m.gain.words(scale=n_x, baseline_note=_cdata_note(study))}. Only the first "
                     "is about the network's nonlinear part, which no spectral analysis of C can show.")
    return " ".join(parts)



def _cdata_note(study: LinearityStudy) -> str:
    """What C_data's test error includes besides the best linear map's (for :meth:`linlens.stats.GainSplit.words`)."""
    n = study.reference_status.get("C_data", "")
    rows = n.split("its own ")[-1].split(" training")[0] if "its own " in n else ""
    return f"C_data's estimation error from {rows} training pairs" if rows else "C_data's own estimation error"


def answer_lines(study: LinearityStudy, good: str, label: str) -> list[str]:
    """Two lines for the top of the report: the verdict with the numbers that decide it, and the network against
    the best linear fit in test MSE (every number from the study's tables).

    Example:
        >>> from linlens.workflows._examples import wiener_study
        >>> study, net, Y = wiener_study()  # the network "w" is the Wiener estimator of A = diag(2, 1, 0.5)
        >>> first, second = answer_lines(study, "w", "blur")
        >>> first.startswith("blur: w's surrogate is tied between Wiener and C_data"), second[:17]
        (True, 'blur: in test MSE')
    """
    m = study.models[good]
    v = m.verdict
    if m.closest == "none":
        first = (f"{label}: {good}'s surrogate is closest to no reference — none is clearly closer than the zero "
                 f"map (smallest adjusted p = {v.none_p_value:.2g}).")
    else:
        named = v.closest if m.closest == "tie" else (m.closest,)
        errs = ", ".join(f"vs {k} {ci_text(m.errors[k])}" for k in named if k in m.errors)
        diffs = "; ".join(f"{k} {d.p_text()}" for k, d in v.differences.items())
        words = v.words()
        first = f"{label}: {good}'s surrogate is {words} (data-weighted error {errs}" + (
            f"; paired differences: {diffs})." if diffs else ").")
    g = m.nonlinear_gain
    lin = study.test_mse["C_data"]
    rel = m.test_mse_model / lin
    compared = (f"beats the linear fit C_data by {(1 - rel) * 100:.1f}%" if g.high < 0 else
                f"is {rel:.3g}× worse than the linear fit C_data" if g.low > 0 else "and C_data cannot be told apart")
    second = f"{label}: in test MSE it {compared} ({m.test_mse_model:.3g} vs {lin:.3g}, paired {g.p_text()})"
    if m.gain is not None:
        second += f"; split: {m.gain.words(scale=m.coef.shape[0], baseline_note=_cdata_note(study))}"
    second += "."
    return [first, second]


def local_vs_global(models: dict[str, Any], study: LinearityStudy, Y: np.ndarray,
                    covariance: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Jacobians at the rows of Y against each model's surrogate, Σ_y-weighted (Σ_y: ``covariance``, default the
    covariance of Y) and unweighted.

    Example:
        >>> from linlens.workflows._examples import wiener_study
        >>> study, net, Y = wiener_study()  # the network "w" is the Wiener estimator of A = diag(2, 1, 0.5)
        >>> d = local_vs_global({"w": net}, study, Y[:20])  # a linear network: J(y) = C everywhere
        >>> round(d["w"]["weighted_distance_median"], 8), round(d["w"]["relative_distance_median"], 8)
        (0.0, 0.0)
    """
    cov = np.cov(np.asarray(Y).T, bias=True).reshape(Y.shape[1], Y.shape[1]) if covariance is None else covariance
    out = {}
    for name, model in models.items():
        m = study.models[name]
        sv = next(iter(m.comparisons.values())).singular_values_C if m.comparisons else None  # the study's SVD of C
        out[name] = JacobianField(model).local_vs_global(m.coef, Y, covariance=cov, singular_values=sv).to_dict()
    return out


def add_study_section(rep: Report, key: str, study: LinearityStudy, *, good: str, total_var: float,
                      local: dict[str, dict[str, Any]] | None = None, hists: dict[str, Any] | None = None,
                      null_models: tuple[str, ...] = ()) -> None:
    """Tables, verdict text and figures of one :class:`LinearityStudy` (the demo's and ``analyze``'s).

    Arguments:
        rep: the report to append to.
        key: prefix of the figure files.
        study: the result.
        good: the model the verdict text is about.
        total_var: tr Σₓ (for relative test errors).
        local: model → :meth:`~linlens.jacobian.LocalVsGlobal.to_dict` with weighted distances, or None.
        hists: training histories to plot, or None.
        null_models: models left out of the figures (e.g. an untrained network).

    Example:
        >>> import numpy as np, torch
        >>> from linlens.report import Report
        >>> from linlens.workflows.study import inverse_study
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(600, 2)); Y = X + 0.1 * rng.normal(size=(600, 2))
        >>> net = torch.nn.Linear(2, 2, bias=False).double()  # no operator A: no split, no filter factors
        >>> study = inverse_study({"w": net}, Y[:400], X[:400], X[400:], Y[400:], n_boot=20)
        >>> rep = Report("study"); add_study_section(rep, "s", study, good="w", total_var=2.0)
        >>> list(rep._figures), [b.kind for b in rep._blocks].count("table"), len(rep.answer)
        (['s_singular_spectra.png'], 2, 2)
    """
    inv = study.inverse_name
    pct = int(round(study.ci * 100))
    for line in answer_lines(study, good, key):
        rep.add_answer(line)
    if not rep.answer_next:
        rep.answer_next = ("the split of the test error into signal error and noise amplification (table and figure "
                           "per band of A's singular index), then the filter factors: they show which singular "
                           "directions of A each estimator keeps." if inv else
                           "the error table and its paired differences, then the singular spectra.")
    rep.add_heading(study.problem)
    rep.add_notes(study.notes, study.reference_status, "Every interval and paired verdict resamples the surrogate's "
                  "fit and test rows and each estimated reference's own training rows (multiplier bootstrap, designs "
                  "fixed).")
    header = ["model / reference", "test MSE", "surrogate R²"] + [
        f"error vs {k} [{pct}% CI]" for k in study.references] + ["verdict"]
    rows: list[list[Any]] = []
    for name, m in study.models.items():
        rows.append([name, m.test_mse_model, m.r2] + [ci_text(m.errors[k]) for k in study.references]
                    + [m.verdict.text()])
        rows.append(["  its surrogate C", m.test_mse_surrogate, "", *[""] * len(study.references), ""])
    for k, v in study.test_mse.items():
        rows.append([k, v, "", *[""] * len(study.references), ""])
    rep.add_table(header, rows, caption=(
        "Test MSE per entry; centred data-weighted error E‖(C−R)(y−ȳ)‖²/E‖R(y−ȳ)‖² on held-out probes, corrected "
        "for the estimation noise of C (estimate [basic bootstrap interval]); verdict from paired intervals "
        "('tie' when they contain 0, 'none' when no reference is clearly below the zero map's 1)"))
    rep.add_text(verdict_text(study, good, total_var))
    if inv:
        rows = []
        for name, m in study.models.items():
            sn = m.signal_noise_corrected
            rows.append([f"C ({name})", ci_text(sn["signal_error"]), ci_text(sn["noise_amplification"]),
                         ci_text(sn["total"]), m.test_mse_surrogate * len(m.coef) / total_var])
        for k, sp in study.reference_signal_noise.items():
            rows.append([k, sp.signal_error, sp.noise_amplification, sp.total, study.test_mse.get(k, float("nan"))
                         * len(sp.singular_values_A) / total_var if k in study.test_mse else ""])
        rep.add_table(["estimator", "signal error", "noise amplification", "total (predicted)",
                       "measured relative test MSE"], rows, caption=(
            "E‖Cy − x‖²/E‖x‖² = signal error E‖(CA − I)x‖²/E‖x‖² + noise amplification σ²‖C‖²_F/E‖x‖² (closed forms "
            "with the prior's Σₓ; surrogates' values bias-corrected with intervals). The measured column checks the "
            "split on the test probes."))
        shown = [n for n in study.models if n not in null_models]
        splits = {f"C ({n})": study.models[n].signal_noise for n in shown}
        splits["Wiener"] = study.reference_signal_noise["Wiener"]
        corrected = {f"C ({n})": study.models[n].signal_noise_corrected for n in shown}
        w = study.reference_signal_noise["Wiener"]
        band_rows = [[f"{a + 1}–{b}"] + [ci_text(corrected[f"C ({n})"][f"band_{j}"]) for n in shown]
                     + [float(w.band_signal_error[j])] for j, (a, b) in enumerate(w.bands)]
        rep.add_table(["band of A's singular index"] + [f"signal error, C ({n})" for n in shown] + ["Wiener"],
                      band_rows, caption=(
            "Signal error per band of A's singular index (fractions of E‖x‖²; surrogates bias-corrected, with "
            "intervals; the Wiener estimator in closed form). The figure below draws these values."))
        rep.add_figure(figs.plot_signal_noise(splits, corrected=corrected), f"{key}_signal_noise",
                       "Left: signal error per band of A's singular index, the values of the table above "
                       "(bias-corrected, with their intervals; ▽ marks a noise-dominated value, drawn at its "
                       "interval's upper end). Right: the totals of signal error and noise amplification from the "
                       "split table.")
    gm = study.models[good]
    rows = [[k, v["value"], v["std"], v["noise_floor"] if v["noise_floor"] is not None else "",
             "yes" if v["noise_dominated"] else "no"] for k, v in gm.estimation_noise.items()]
    rep.add_table([f"unweighted number (surrogate of {good})", "value", "bootstrap std", "noise floor",
                   "dominated by estimation noise?"], rows, caption=(
        "Unweighted norms of C weigh directions the data hardly visits, where C is mostly estimation noise. "
        "'noise floor' is √E‖Ĉ − C‖²_F (HC2); flagged when std > 25% or the floor > 50% of the value."))
    if max(gm.coef.shape) > MAX_DENSE_FIGURE:
        rep.add_text(f"Operator figures (spectra, heatmaps) are left out above d = {MAX_DENSE_FIGURE}; the matrices "
                     "are saved as .npy beside metrics.json.")
        _add_local(rep, local, good)
        return
    first = next(iter(study.models.values()))  # the references' spectra from the study's one SVD of each
    spectra = {}
    for k in study.references:  # a partial spectrum (REFERENCE_SPECTRUM_MAX_D) is labelled, never drawn as whole
        cmp = first.comparisons[k]
        label = cmp.spectra.get("R", "all")
        spectra[k if label.startswith("all") else f"{k} ({label})"] = cmp.singular_values_R
    for name, m in study.models.items():
        spectra[f"C ({name})"] = m.comparisons["C_data"].singular_values_C
    floors = {}
    for name, m in study.models.items():
        flags = [v for k, v in m.estimation_noise.items() if k in ("‖C‖_F", "σ_max(C)")]
        if any(v["noise_dominated"] for v in flags) and flags[0]["noise_floor"] is not None:
            floors[f"C ({name})"] = float(flags[0]["noise_floor"])
    rep.add_figure(figs.plot_singular_spectra(spectra, title="Singular values of the surrogates and references",
                                              noise_floors=floors),
                   f"{key}_singular_spectra", "Singular spectra (log scale). Dashed horizontal lines: the "
                   "estimation-noise floor √E‖Ĉ − C‖²_F of each surrogate whose unweighted norms are flagged as "
                   "noise-dominated; its singular values near or below that line are not told apart from noise.")
    if inv:
        _add_operator_figures(rep, key, study, gm, null_models)
    if hists:
        rep.add_figure(figs.plot_training_curves(hists), f"{key}_training", "Training curves (MSE).")
    _add_local(rep, local, good)


def _add_operator_figures(rep: Report, key: str, study: LinearityStudy, gm: Any, null_models: tuple[str, ...]) -> None:
    inv = study.inverse_name
    sub = gm.comparisons["Wiener"].subspaces
    what = (f"a clear gap of both at k = {sub.k}: largest angle {sub.max_angle:.3g} rad, Wedin's bound on its sine "
            f"{sub.wedin_bound:.3g} (δ = {sub.delta:.3g})" if sub.k is not None and sub.clear
            else "no clear spectral gap of both operators, so no principal angles are reported (between "
            "full-dimensional subspaces they would be trivially 0)")
    rep.add_figure(figs.plot_subspace_angles(sub), f"{key}_subspace_angles",
                   "Largest principal angle between the top-k singular subspaces of the surrogate and the Wiener "
                   f"estimator, against k, with the spectral gaps marked: {what}.")
    ff = {"Wiener": study.reference_filter_factors["Wiener"], "C_data": study.reference_filter_factors["C_data"]}
    ff.update({f"C ({n})": m.filter_factors for n, m in study.models.items() if n not in null_models})
    rep.add_figure(figs.plot_filter_factors(ff, study.singular_values_A), f"{key}_filter_factors",
                   "Filter factors φ = diag(Vᵀ C A V), averaged over clusters of equal singular values: 1 keeps "
                   "singular component i as A⁻¹ would, 0 discards it. The Wiener estimator's factors equal Tikhonov's "
                   "sᵢ²/(sᵢ²+σ²/λ) only for a white prior (Σₓ = λI), not for these priors. Leakage of the "
                   f"surrogate off the cluster diagonal: {gm.filter_factors.leakage:.3g}.")
    mats: dict[str, Any] = {"C (model)": gm.coef}
    for k in ("Wiener", inv):
        mats[k] = study.references[k]
    for k in ("Wiener", "C_data", inv):
        if k in study.references:
            R = study.references[k]
            rel = float(np.linalg.norm(gm.coef - R) / max(np.linalg.norm(R), 1e-300))
            mats[f"C − {k}"] = (gm.coef - R, f"‖C − {k}‖_F/‖{k}‖_F = {rel:.3g}")
    rep.add_figure(
        figs.plot_operator_heatmaps(mats, ncols=3),
        f"{key}_heatmaps", "Heatmaps, each on a colour scale of its own (limits at the 99th percentile of |entries|, "
        "in each title). Top: the surrogate and two references; bottom: differences, with their size relative to "
        f"the reference. A difference of relative size ≈ 1 is the reference itself (C is negligible next to it, as "
        f"C − {inv} is whenever {inv} amplifies noise).")


def _add_local(rep: Report, local: dict[str, dict[str, Any]] | None, good: str) -> None:
    if not local:
        return
    rows = [[name, v["weighted_distance_median"], v["weighted_distance_q10"], v["weighted_distance_q90"],
             v["relative_distance_median"]] for name, v in local.items()]
    rep.add_table(["model", "Σ-weighted ‖(J−C)Σ^½‖/‖CΣ^½‖ median", "q10", "q90", "unweighted ‖J−C‖/‖C‖ median"],
                  rows, caption="Local vs global: Jacobians J(y) at fresh probes against the model's own surrogate C")
    g = local[good]
    rep.add_text(
        f"Local linearization: where the data lives (Σ_y-weighted), the network's Jacobian at a typical "
        f"input differs from its global surrogate by {g['weighted_distance_median']:.3g} (10–90%: "
        f"{g['weighted_distance_q10']:.3g}–{g['weighted_distance_q90']:.3g}). A value near 0 means the network "
        "acts as one linear map on the data; large values mean its linear picture is an average of different "
        "local maps. The unweighted distance is shown for reference only: it is dominated by directions of tiny "
        "input variance, where C is estimation noise."
    )


