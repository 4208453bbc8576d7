"""``linlens analyze``: the global linear surrogate of a user's model on the user's inputs, compared with a
reference operator when one is given.

The surrogate is fitted by streaming over batches (the model is probed in eval mode without gradients);
every fifth batch is held out to measure R² and the nonlinear residual fraction, so the inputs never need
to fit in memory as model outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ShapeError
from linlens.loaders import load_array, load_model
from linlens.report import Report, check_destination
from linlens.report import figures as figs
from linlens.surrogate import LinearSurrogate, compare_operators, filter_factors, probe_model

__all__ = ["run_analyze", "surrogate_report"]


def run_analyze(
    model: str,
    inputs: Path,
    reference: Path | None = None,
    out: Path = Path("linlens-analyze"),
    force: bool = False,
    batch_size: int = 4096,
    fit_intercept: bool = True,
    dask: str | None = None,
    device: str = "auto",
    seed: int = 0,
    console: Any = None,
) -> dict[str, Any]:
    """Fit the surrogate of ``model`` on ``inputs``, compare with ``reference``, write a report."""
    from linlens.nn import resolve_device

    check_destination(out, force)
    if dask is not None:
        from linlens.workflows.analyze_dask import run_analyze_dask

        return run_analyze_dask(model, inputs, reference, out, force, batch_size, fit_intercept, dask, device,
                                seed, console)
    dev = str(resolve_device(device))
    Y = load_array(inputs, "inputs", mmap=True)
    R = load_array(reference, "reference") if reference is not None else None
    net = load_model(model, device=dev)
    n = len(Y)
    if n < 2:
        raise ShapeError(f"inputs must have at least 2 rows to fit a surrogate; got {n}")
    n_batches = -(-n // batch_size)
    holdout = (lambda b: b % 5 == 4) if n_batches >= 5 else (lambda b: False)

    sur = LinearSurrogate(fit_intercept=fit_intercept)
    full = LinearSurrogate(fit_intercept=fit_intercept)
    probes = []  # a bounded sample of inputs for data-weighted errors
    rng = np.random.default_rng(seed)
    keep_per_batch = max(1, 20000 // n_batches)
    held: list[int] = []
    from linlens.nn import progress_bar

    with progress_bar(console is not None) as bar:
        task = bar.add_task("probing the model", total=n_batches)
        for b, Yb, F in probe_model(net, Y, batch_size, dev):
            if holdout(b):
                held.append(b)
            else:
                sur.partial_fit(Yb, F)
            full.partial_fit(Yb, F)
            take = rng.choice(len(Yb), size=min(keep_per_batch, len(Yb)), replace=False)
            probes.append(Yb[take])
            bar.advance(task)
        # held-out batches: R² and nonlinear fraction of the surrogate fitted without them
        sse = 0.0
        sum_f = None
        sum_f2 = None
        m = 0
        if held:
            t2 = bar.add_task("held-out check", total=len(held))
            for b in held:
                i = b * batch_size
                _, Yb, F = next(probe_model(net, Y[i : i + batch_size], batch_size, dev))
                sse += float(np.sum((F - sur.predict(Yb)) ** 2, axis=0).sum())
                sum_f = F.sum(0) if sum_f is None else sum_f + F.sum(0)
                sum_f2 = (F**2).sum(0) if sum_f2 is None else sum_f2 + (F**2).sum(0)
                m += len(F)
                bar.advance(t2)
    if held and m > 1:
        ss_tot = sum_f2 - sum_f**2 / m
        r2 = float(1 - sse / ss_tot.sum()) if ss_tot.sum() > 0 else float("nan")
        r2_where = f"held-out ({len(held)} of {n_batches} batches)"
    else:
        r2 = float(full.score(np.asarray(Y, dtype=np.float64), _all_outputs(net, Y, batch_size, dev)))
        r2_where = "in-sample (fewer than 5 batches: no held-out split)"
    C = full.coef_
    intro = (
        f"Global linear surrogate of the model, fitted by streaming least squares over {n} inputs "
        f"({n_batches} batches of {batch_size}); outputs ≈ inputs @ Cᵀ + c with C of shape {C.shape}. "
        f"R² of the surrogate against the model's outputs, {r2_where}: {r2:.6g} "
        f"(1 means the model is exactly affine on these inputs; 1 − R² is its nonlinear residual fraction)."
    )
    return surrogate_report(f"linlens analyze: {model}", intro, full, r2, r2_where, np.concatenate(probes), R,
                            out, force, {"model": model, "inputs": str(inputs), "n_samples": n})


def surrogate_report(title: str, intro: str, full: LinearSurrogate, r2: float, r2_where: str, P: np.ndarray,
                     R: np.ndarray | None, out: Path, force: bool, extra_metrics: dict[str, Any]) -> dict[str, Any]:
    """Write the analyze report (summary table, comparison with R when given, figures) atomically to ``out``
    and return the summary. Shared by the in-memory and the Dask routes.

    Arguments:
        full: the surrogate fitted on all inputs; r2, r2_where: its R² and where it was measured.
        P: (n_probes, d_in) sample of inputs for data-weighted errors; R: (d_out, d_in) reference or None.
    """
    C = full.coef_
    n = extra_metrics.get("n_samples", full.n_samples_seen_)
    rep = Report(title)
    rep.add_text(intro)
    sv = np.linalg.svd(C, compute_uv=False)
    summary: dict[str, Any] = {"inputs": n, "d_in": C.shape[1], "d_out": C.shape[0], "R² (surrogate)": r2,
                               "nonlinear residual fraction": 1 - r2,
                               "condition number of inputs": full.condition_number_,
                               "σ_max(C)": float(sv[0]), "σ_min(C)": float(sv[-1])}
    metrics: dict[str, Any] = {**extra_metrics, "r2": r2, "r2_split": r2_where, "coef": C, "intercept": full.intercept_,
                               "singular_values": sv, "condition_number_inputs": full.condition_number_}
    spectra = {"C (surrogate)": sv}
    if R is not None:
        if R.shape != C.shape:
            raise ShapeError(f"reference must be (d_out, d_in) = {C.shape} to match the model; got {R.shape}")
        cmp = compare_operators(C, R, probes=P)
        metrics["comparison"] = cmp.to_dict()
        spectra["reference R"] = cmp.singular_values_R
        summary.update({"data-weighted error vs R": cmp.data_weighted_error,
                        "‖C−R‖_F/‖R‖_F": cmp.rel_fro_error, "‖C−R‖₂/‖R‖₂": cmp.rel_spectral_error,
                        "max principal angle, right (deg)": float(np.degrees(np.max(cmp.right_angles)))
                        if len(cmp.right_angles) else 0.0})
        rep.add_heading("Comparison with the reference R")
        rep.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()])
        rep.add_text("The data-weighted error E‖(C−R)y‖²/E‖Ry‖² over your inputs is the headline: it weights "
                     "each direction by how much your data uses it. Frobenius and spectral errors are shown "
                     "but, for ill-conditioned references, are dominated by the tiniest singular values.")
        rep.add_figure(figs.principal_angle_plot({"left": cmp.left_angles, "right": cmp.right_angles}),
                       "principal_angles", f"Principal angles between the top-{cmp.k} singular subspaces.")
        A = np.linalg.pinv(R)
        ff = filter_factors(C, A)
        metrics["filter_factors"] = ff.to_dict()
        rep.add_figure(figs.filter_factor_plot({"C": ff}, np.linalg.svd(A, compute_uv=False)),
                       "filter_factors", "Filter factors with R⁺ as the forward operator A (so R = A⁻¹ gives "
                       f"φ = 1); leakage {ff.leakage:.3g}.")
        if cmp.eigs_C is not None:
            rep.add_figure(figs.eigenvalue_plot({"C": cmp.eigs_C, "R": cmp.eigs_R}), "eigenvalues",
                           "Eigenvalues (matched by minimum-cost assignment in metrics.json).")
        rep.add_figure(figs.operator_heatmaps({"C": C, "R": R, "C − R": C - R}), "heatmaps", "Heatmaps.")
    else:
        rep.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()])
        rep.add_figure(figs.operator_heatmaps({"C": C}), "heatmaps", "The surrogate C.")
    rep.add_figure(figs.singular_spectra(spectra), "singular_spectra", "Singular values (log scale).")
    rep.metrics.update(metrics)
    rep.write(out, force=force)
    return summary


def _all_outputs(net: Any, Y: np.ndarray, batch_size: int, dev: str) -> np.ndarray:
    return np.concatenate([F for _, _, F in probe_model(net, Y, batch_size, dev)])
