"""``linlens analyze --targets --operator`` for a non-circular operator given as a function, beyond the dense study.

The forward operator A (a deepinv-style object, a scipy ``LinearOperator``, an (A, Aᵀ) pair, converted by the one
rule of :func:`linlens.operators.as_operator`) of any boundary is only ever applied; no d × d matrix is formed:

1. The rows are split once (:func:`~linlens.workflows.inverse.split_rows`) into training pairs and probes; the
   probes again (the seeded hash of the subspace route, one in five held out) into rows that fit the surrogate
   and held-out rows that test every number.
2. **Surrogate** on the probes' top-m principal subspace, C = B V_mᵀ (:class:`~linlens.surrogate.subspace.
   SubspaceSurrogate`), its data-weighted error against each reference bias-corrected with a row-group bootstrap
   interval (:class:`~linlens.surrogate.grouped.GroupedFit`, as the subspace route), all references resampled
   with the same group weights, so that the paired verdict (:func:`linlens.stats.closest_reference`) compares
   them on the same replicates.
3. **References**, applied matrix-free (:mod:`linlens.surrogate.matrix_free`): the Wiener estimator by conjugate
   gradients with Σₓ low rank + diagonal from the training targets; C_data, the least-squares fit of x on y on
   the training inputs' top-m principal subspace; A⁺ by LSQR, used only where LSQR converged.
4. **Signal error and noise amplification** of C and of each reference, with intervals (held-out targets as the
   signal's probes, Hutchinson's estimator for ‖C‖²_F), and the test MSE/PSNR of the network, its surrogate and
   the references, with the paired network-vs-C_data test.
"""

from __future__ import annotations

import copy
import math
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError, ShapeError
from linlens.loaders import load_array, load_model
from linlens.nn import resolve_device
from linlens.probing import FlatModel, cast_note, probe_all
from linlens.report import Report, check_destination
from linlens.report import figures as figs
from linlens.spectral import prediction_errors
from linlens.stats import BootstrapResult, below_detection, closest_reference
from linlens.surrogate.grouped import GroupedError, GroupedFit
from linlens.surrogate.matrix_free import (
    PRIOR_MODEL,
    LowRankDiagCovariance,
    MatrixFreeWiener,
    pseudo_inverse_rows,
    signal_noise_estimate,
)
from linlens.surrogate.subspace import SubspaceSurrogate
from linlens.validation import check_estimated_noise_std, check_noise_std, check_rows, noise_std_disagreement
from linlens.workflows.analyze_common import (
    R2_DEFINITION,
    add_route,
    answer_network_vs_cdata,
    holdout_mask,
    image_shape,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.inverse import (
    DENSE_LIMIT,
    _load_pair,
    load_forward_operator,
    noise_std_interval,
    split_rows,
)

__all__ = ["plan_matrix_free", "run_matrix_free", "DEFAULT_COMPONENTS", "N_PROBES", "N_GROUPS"]

#: m when --components is not given (capped by the rows and the dimension)
DEFAULT_COMPONENTS = 64
#: Rademacher probes of Hutchinson's estimator of ‖C‖²_F
N_PROBES = 64
#: row groups of the bias correction and the group bootstrap (as the subspace route)
N_GROUPS = 32
#: LSQR's iteration limit for A⁺ (rows that reach it are not A⁺)
LSQR_ITER = 300
#: operator calls that A⁺ by LSQR (one vector per call) may take at most, estimated from a 4-row trial
LSQR_CALLS = 40_000


def plan_matrix_free(o: AnalyzeOptions, route: Route) -> Route:
    """The inverse study's route after :func:`~linlens.workflows.inverse.plan_inverse`: the matrix-free route when
    asked (``--assume matrix-free``), when ``--components`` is given with a non-circular operator, or when the dense
    study cannot fit the problem (d_in · d_x beyond its limit, or fewer rows than it needs); otherwise ``route``.

    Example:
        >>> r = Route("fourier", "circular")
        >>> plan_matrix_free(AnalyzeOptions(model="m.pt", inputs="y.npy", targets="x.npy"), r) is r
        True
    """
    if o.assume == "matrix-free":
        if route.operator is None:
            raise ConfigError("--assume matrix-free needs the forward operator (--operator): the matrix-free route "
                              "applies A and Aᵀ")
        return Route("matrix_free", f"--assume matrix-free: A ({route.operator.kind}) applied as a function, the "
                                    "surrogate on the probes' top-m principal subspace, references by CG and LSQR",
                     route.operator)
    if route.name != "study" or route.operator is None or o.assume == "dense":
        return route
    op = route.operator
    d_in, d_x = op.shape
    if o.components is not None:
        return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) and --components "
                                    f"{o.components}: the matrix-free route (no d × d matrix)", op)
    if d_in * d_x > DENSE_LIMIT:
        return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) of d_in × d_x = {d_in} × "
                                    f"{d_x}, beyond the dense study's {DENSE_LIMIT:.3g} entries: the matrix-free route "
                                    "(A applied as a function, no d × d matrix)", op)
    if o.train_inputs is None:
        n = int(load_array(o.inputs, "inputs", ndim=None, mmap=True).shape[0])
        if n < 4 * (d_in + 2):
            return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) and {n} rows, fewer than "
                                        f"the dense study needs for d = {d_in} ({4 * (d_in + 2)}): the matrix-free "
                                        "route (the surrogate on the probes' top-m principal subspace)", op)
    return route


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _batched(f: Any, Y: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([f(Y[s:s + batch]) for s in range(0, len(Y), batch)]) if len(Y) else Y


def run_matrix_free(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The matrix-free inverse study on the user's files; writes the report to ``options.out``.

    Arguments:
        options: the run's options. Fields used: model, inputs y (n, *in_shape), targets x (n, *x_shape), operator
            (or ``route.operator``, loaded by the plan), noise_std (σ; estimated from y − Ax with a χ² interval when
            not given), components (m, default 64, capped by the rows), n_boot (group-bootstrap replicates,
            default 100), out, force, batch_size, device, seed, trust_model.
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        headline numbers for the summary table.
    """
    o = options
    t0, c0 = time.perf_counter(), time.process_time()
    check_destination(o.out, o.force)
    n_boot = 100 if o.n_boot is None else int(o.n_boot)

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg, highlight=False)

    Y, X = _load_pair(o.inputs, o.targets)
    in_shape, x_shape = tuple(Y.shape[1:]), tuple(X.shape[1:])
    op = route.operator if route.operator is not None else load_forward_operator(str(o.operator), x_shape, in_shape)
    if op.shape != (int(np.prod(in_shape)), int(np.prod(x_shape))):
        raise ShapeError(f"operator must map targets {x_shape} to inputs {in_shape}; got shape {op.shape}")
    op.rmatvec(np.zeros(op.shape[0]))  # an operator without an adjoint stops here, in one line
    check_rows(Y, 8, "inputs", "the matrix-free route (training pairs for σ, Σₓ and C_data, held-out probes)")
    check_rows(X, 8, "targets", "the matrix-free route")
    n = len(Y)
    Yf, Xf = Y.reshape(n, -1), X.reshape(n, -1)
    d_in, d_x = Yf.shape[1], Xf.shape[1]
    train, probe = split_rows(n, o.seed)
    probe = np.sort(probe)
    Ytr, Xtr = np.asarray(Yf[train], dtype=np.float64), np.asarray(Xf[train], dtype=np.float64)
    held = holdout_mask(0, len(probe), o.seed)  # one probe in five (the subspace route's seeded hash)
    fit_rows, held_rows = probe[~held], probe[held]
    n_fit, n_held = len(fit_rows), len(held_rows)
    m = int(o.components) if o.components is not None else min(DEFAULT_COMPONENTS, d_in, max(1, n_fit // 4))
    if m > min(d_in, n_fit - 2, len(train) - 2):
        raise ConfigError(f"--components {m} must be at most min(d_in, fit rows − 2, training rows − 2) = "
                          f"{min(d_in, n_fit - 2, len(train) - 2)} ({n} rows: {len(train)} train C_data, Σₓ and σ; "
                          f"{n_fit} fit the surrogate; {n_held} test)")
    if n_held < 8:
        raise ShapeError(f"{n} rows leave {n_held} held-out probes; give more rows (at least 8 held out)")

    # σ from the training pairs (or given, and checked against them)
    resid = Ytr - _batched(op.matvec, Xtr, o.batch_size)
    sigma_note, sigma_ci = None, None
    if o.noise_std is None:
        sigma, lo, hi = noise_std_interval(resid)
        check_estimated_noise_std(sigma, Ytr)
        sigma_ci = (lo, hi)
    else:
        sigma = check_noise_std(o.noise_std)
        sigma_note = noise_std_disagreement(sigma, *noise_std_interval(resid))
        if sigma_note:
            say(f"warning: {sigma_note}")
    del resid

    # the network on the probes (fit rows and held-out rows), in its own dtype
    dev = str(resolve_device(o.device))
    net = FlatModel(load_model(o.model, device=dev, trust_model=o.trust_model), in_shape)
    say(f"probing the model on {len(probe)} probe images ({n_fit} fit the surrogate, {n_held} test) …")
    pb = min(o.batch_size, 256)  # images per model call (a CNN's activations are channels × the image per row)
    Yfit, Ffit = probe_all(net, np.asarray(Yf[fit_rows], dtype=np.float64), batch_size=pb, device=dev)
    Yh, Fh = probe_all(net, np.asarray(Yf[held_rows], dtype=np.float64), batch_size=pb, device=dev)
    if Ffit.shape[1] != d_x:
        raise ShapeError(f"the model outputs {Ffit.shape[1]} values per image; the targets have {d_x}")
    Xh = np.asarray(Xf[held_rows], dtype=np.float64)

    # 2. the surrogate on the probes' top-m principal subspace, and its grouped sums
    say(f"surrogate on the top-{m} principal subspace of the probes …")
    sur = SubspaceSurrogate(n_components=m, seed=o.seed).fit(Yfit, Ffit)
    Vt, B = sur.components_, sur.coef_subspace_
    Z = (Yfit - sur.mean_in_) @ Vt.T
    Zh = (Yh - sur.mean_in_) @ Vt.T
    grp = GroupedFit(m, d_x, N_GROUPS)
    grp.update_train(Z, Ffit, fit_rows % N_GROUPS)
    pred_sur = sur.predict(Yh)
    r2 = float(1.0 - np.sum((Fh - pred_sur) ** 2) / np.sum((Fh - Fh.mean(axis=0)) ** 2))
    del Yfit, Ffit, Z

    # 3. the references, applied matrix-free
    say(f"references: Wiener (CG, Σₓ low rank + diagonal, rank {m}), C_data (top-{m} subspace), A⁺ (LSQR) …")
    cov = LowRankDiagCovariance(rank=min(m, len(train) - 1, d_x), seed=o.seed).fit(Xtr)
    mean_x, mean_y = cov.mean_, Ytr.mean(axis=0)
    wiener = MatrixFreeWiener(op, cov, sigma, mean_x=mean_x, mean_y=mean_y)
    cdata = SubspaceSurrogate(n_components=m, seed=o.seed + 1).fit(Ytr, Xtr)
    del Ytr
    # each reference on the held-out inputs (test MSE) and on their projections onto the surrogate's subspace
    # (the error statistic: C lives on that subspace, so R is compared with it there; without the projection,
    # R's action outside the subspace would count against every full-rank reference and favour C_data, whose
    # own fit is restricted to a principal subspace too)
    Ph = sur.mean_in_ + ((Yh - sur.mean_in_) @ Vt.T) @ Vt
    outputs: dict[str, np.ndarray] = {}  # reference → its estimate of the held-out targets
    on_sub: dict[str, np.ndarray] = {}  # reference → R applied to the projected held-out inputs
    status: dict[str, str] = {}
    both = _batched(wiener.predict, np.concatenate([Yh, Ph]), max(o.batch_size, 1))
    outputs["Wiener"], on_sub["Wiener"] = both[:n_held], both[n_held:]
    wsolve = wiener.last_solve_
    status["Wiener"] = ("CG converged" if wsolve.converged.all() else
                        f"CG did not converge on {int((~wsolve.converged).sum())} rows: left out")
    outputs["C_data"], on_sub["C_data"] = cdata.predict(Yh), cdata.predict(Ph)
    status["C_data"] = f"least squares of x on the training inputs' top-{m} principal subspace"
    trial = pseudo_inverse_rows(op, Yh[:4], iter_lim=LSQR_ITER)
    calls = 2 * int(trial.iterations.max()) * (3 * n_held + N_PROBES)  # LSQR: one A and one Aᵀ per iteration, row
    if trial.converged.all() and calls > LSQR_CALLS:
        status["A⁺"] = (f"LSQR converges in ~{int(trial.iterations.max())} iterations per row, but A⁺ on every "
                        f"held-out row and probe would take ~{calls:,} operator calls (> {LSQR_CALLS:,}): left out")
    elif trial.converged.all():
        pinv = pseudo_inverse_rows(op, np.concatenate([Yh, Ph]), iter_lim=LSQR_ITER)
        ok = bool(pinv.converged.all())
        if ok:
            outputs["A⁺"], on_sub["A⁺"] = pinv.solution[:n_held], pinv.solution[n_held:]
        status["A⁺"] = (f"LSQR converged (≤ {int(pinv.iterations.max())} iterations)" if ok else
                        f"LSQR stopped at {LSQR_ITER} iterations on {int((~pinv.converged).sum())} rows: left out")
    else:
        status["A⁺"] = (f"LSQR did not converge in {LSQR_ITER} iterations (A is ill-conditioned): left out rather "
                        "than labelling an iterate A⁺")
    if not wsolve.converged.all():
        outputs.pop("Wiener")
        on_sub.pop("Wiener")

    # errors against each reference: the same group weights for all (paired replicates), the verdict
    errors: dict[str, GroupedError] = {}
    for k, T in on_sub.items():
        g = copy.copy(grp)  # shares the training sums (read-only); fresh held-out sums
        for a, v in vars(GroupedFit(m, d_x, N_GROUPS)).items():
            if a.startswith("h"):
                setattr(g, a, v)
        g.update_held(Zh, T - T.mean(axis=0), B, held_rows % N_GROUPS)
        errors[k] = g.error(n_boot=n_boot, seed=o.seed)
    boot = BootstrapResult(estimate={k: e.plug_in for k, e in errors.items()},
                           bias_corrected={k: e.estimate for k, e in errors.items()},
                           low={k: e.low for k, e in errors.items()}, high={k: e.high for k, e in errors.items()},
                           std={k: e.std for k, e in errors.items()},
                           samples={k: e.boot.samples["R"] for k, e in errors.items()}, ci=0.95,
                           method="basic, analytic bias (cluster-robust), row-group bootstrap, paired across "
                                  "references")
    verdict = closest_reference(boot, list(errors))

    # 4. signal error and noise amplification (held-out targets; the same Rademacher probes for every map)
    say(f"signal error and noise amplification ({n_held} held-out targets, {N_PROBES} Hutchinson probes) …")
    Xc = Xh - mean_x
    maps = {"surrogate C": lambda Yb: (Yb @ Vt.T) @ B.T, "Wiener": wiener.apply_centred,
            "C_data": lambda Yb: (Yb @ cdata.components_.T) @ cdata.coef_subspace_.T}
    if "A⁺" in outputs:
        maps["A⁺"] = lambda Yb: pseudo_inverse_rows(op, Yb, iter_lim=LSQR_ITER).solution
    if "Wiener" not in outputs:
        maps.pop("Wiener")
    split = {k: signal_noise_estimate(f, op, Xc, sigma, n_probes=N_PROBES, seed=o.seed, batch=o.batch_size)
             for k, f in maps.items()}
    te = prediction_errors({"model": Fh, "surrogate": pred_sur, **outputs,
                            "zero (predict the mean)": np.broadcast_to(mean_x, Xh.shape)}, Xh)
    timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_rss_gib": _peak_rss_gib()}
    return _report(o, route, op, sur, r2, errors, verdict, status, split, te, cov, sigma, sigma_ci, sigma_note,
                   timing, in_shape, x_shape, n, len(train), n_fit, n_held, m, Xh, Yh, Fh, outputs, wsolve,
                   cast_note(net.model))


def _err_text(e: GroupedError) -> str:
    """"estimate [low, high]", or "below detection: < upper" when the bias correction is at least the corrected
    estimate (:func:`linlens.stats.below_detection`: the number left is no larger than the noise removed)."""
    if below_detection(e.plug_in, e.estimate):
        hi = float(e.boot.high["R"])
        return (f"below detection: < {hi:.3g}" if hi > 0 else
                f"below detection: ≈ 0 (the plug-in {e.plug_in:.3g} is no larger than its estimation noise)")
    return f"{e.estimate:.3g} [{e.low:.3g}, {e.high:.3g}]"


def _report(o: AnalyzeOptions, route: Route, op: Any, sur: SubspaceSurrogate, r2: float,
            errors: dict[str, GroupedError], verdict: Any, status: dict[str, str], split: dict[str, Any],
            te: dict[str, Any], cov: LowRankDiagCovariance, sigma: float, sigma_ci: Any, sigma_note: Any,
            timing: dict[str, float], in_shape: tuple[int, ...], x_shape: tuple[int, ...], n: int, n_train: int,
            n_fit: int, n_held: int, m: int, Xh: np.ndarray, Yh: np.ndarray, Fh: np.ndarray,
            outputs: dict[str, np.ndarray], wsolve: Any, cast: str | None) -> dict[str, Any]:
    rep = Report(f"linlens analyze (matrix-free route): {Path(str(o.model)).name} on {Path(o.inputs).name}")
    add_route(rep, route)
    errs = "; ".join(f"vs {k} {_err_text(e)}" for k, e in errors.items())
    rep.add_answer(f"Verdict: the network's surrogate is {verdict.words()}; data-weighted error on the held-out "
                   f"probes (on the surrogate's top-{m} subspace), bias-corrected [95% interval]: {errs}.")
    rep.add_answer(f"How linear: the surrogate on the top-{m} principal subspace explains R² = {r2:.4g} of the "
                   f"network's output variance on {n_held} held-out probes; {sur.outside_variance_fraction_:.3g} of "
                   "the inputs' variance lies outside that subspace.")
    pair = te["paired"]
    if pair is not None:
        rep.add_answer(answer_network_vs_cdata(te["mse"]["model"], te["mse"]["C_data"], pair))
    rep.answer_next = "the signal error / noise amplification table: where the network's error comes from."
    if sigma_note:
        rep.add_text(f"Warning: {sigma_note}.")
    rep.add_text(
        f"The operator ({op.kind}, {op.shape[0]} × {op.shape[1]}) is applied as a function: no d × d matrix is "
        f"formed. {n} rows were split by a seeded permutation: {n_train} training pairs give σ, the prior "
        f"covariance Σₓ ({PRIOR_MODEL}; rank {len(cov.variances_)}, which holds "
        f"{cov.to_dict()['low_rank_fraction']:.3g} of tr Σₓ) and C_data; of the {n - n_train} probes, {n_fit} fit "
        f"the network's surrogate on their top-{m} principal subspace (C = B V_mᵀ) and {n_held} test every number. "
        f"The Wiener estimator x̄ + ΣₓAᵀ(AΣₓAᵀ + σ²I)⁻¹(y − ȳ) is applied by conjugate gradients "
        f"({wsolve.to_dict()['max_iterations']} iterations at most); A⁺ by LSQR where it converges. "
        f"Noise σ = {sigma:.4g}"
        + (f" (estimated from y − Ax, 95% χ² interval [{sigma_ci[0]:.4g}, {sigma_ci[1]:.4g}])" if sigma_ci else
           " (given)") + ". Data-weighted errors E‖Cỹ − RPỹ‖²/E‖RPỹ‖² are measured on the held-out probes ỹ "
        "projected (P) onto the surrogate's subspace for the reference: C lives there, and the probes' variance "
        f"outside it ({sur.outside_variance_fraction_:.3g}) is reported, not scored. They are corrected "
        "for the estimation noise of B (cluster-"
        f"robust, {N_GROUPS} row groups) with a basic group-bootstrap interval; every reference is resampled with "
        "the same group weights, so the verdict's paired tests compare them on the same replicates. C_data and "
        "the Wiener estimator are fitted on the training pairs and held fixed in the resampling (their own "
        "estimation noise is not in the intervals). References: "
        + "; ".join(f"{k}: {v}" for k, v in status.items()) + "." + ("" if cast is None else f" The {cast}."))
    rows = [[k, _err_text(e), e.plug_in] for k, e in errors.items()]
    rep.add_table(["reference", "data-weighted error (bias-corrected [95% basic interval])", "plug-in"], rows,
                  caption=f"Verdict: {verdict.text()}")
    sn_rows = [[k, *(f"{e.estimate:.4g} [{e.low:.4g}, {e.high:.4g}]" for e in (s.signal_error,
                                                                               s.noise_amplification, s.total))]
               for k, s in split.items()]
    rep.add_table(["map", "signal error E‖(CA − I)x‖²/E‖x‖²", "noise amplification σ²‖C‖²_F/E‖x‖²", "sum"],
                  sn_rows, caption=f"Expected test error split (÷ E‖x‖²) with 95% intervals: the signal error over "
                                   f"the {n_held} held-out targets, ‖C‖²_F by Hutchinson's estimator ({N_PROBES} "
                                   "Rademacher probes, the same for every map). The surrogate's numbers are those of "
                                   "its estimate B̂ (its estimation noise adds to the noise amplification).")
    rep.add_table(["predictor", "test MSE per pixel", "PSNR (dB)"],
                  [[k, te["mse"][k], te["psnr"][k]] for k in te["mse"]],
                  caption=f"On the {n_held} held-out probe images. Network − C_data per-image squared error: "
                          + (f"{pair.difference:.3g} [{pair.ci_low:.3g}, {pair.ci_high:.3g}], p = {pair.p_value:.2g} "
                             "(paired t; negative: the network's nonlinear gain)" if pair is not None else "n/a") + ".")
    img = image_shape(x_shape)
    if img is not None:
        k = min(3, len(Xh))
        tiles = {"target x": Xh[:k], "network": Fh[:k], **{f"{r}": v[:k] for r, v in outputs.items()}}
        if image_shape(in_shape) == img:
            tiles = {"input y": Yh[:k], **tiles}
        rep.add_figure(figs.plot_operator_rows(tiles, img, range(k)), "examples",
                       "Held-out probe images: input, target, the network's output and each reference's estimate "
                       "(each tile scaled to itself).")
        rep.add_array("example_images", np.stack([v[0].reshape(img) for v in tiles.values()]))
        rep.metrics["example_images"] = list(tiles)
    rep.add_figure(figs.plot_singular_spectra({"probes (top m)": sur.singular_values_},
                                              title="Singular values of the centred probe inputs (the subspace)"),
                   "input_spectrum", "A spectrum still high at m means directions the surrogate does not see (raise "
                   "--components).")
    rep.add_array("components", sur.components_)
    rep.add_array("coef_subspace", sur.coef_subspace_)
    verdict_d = verdict.to_dict()
    rep.metrics.update({
        "model": str(o.model), "inputs": str(o.inputs), "targets": str(o.targets), "operator": op.kind,
        "input_shape": list(in_shape), "target_shape": list(x_shape), "n_rows": n, "n_train": n_train,
        "n_fit": n_fit, "n_test": n_held, "n_components": m, "seed": o.seed, "input_cast": cast,
        "noise_std": sigma, "noise_std_interval": sigma_ci, "r2": r2, "r2_definition": R2_DEFINITION,
        "outside_variance_fraction": sur.outside_variance_fraction_,
        "prior_covariance": cov.to_dict(), "references": status,
        "wiener_solve": wsolve.to_dict(),
        "errors": {k: {**e.to_dict(), "below_detection": below_detection(e.plug_in, e.estimate)}
                   for k, e in errors.items()}, "verdict": verdict_d, "verdict_text": verdict.text(),
        "signal_noise": {k: s.table() for k, s in split.items()},
        "signal_noise_method": {k: {"signal_error": s.signal_error.method,
                                    "noise_amplification": s.noise_amplification.method}
                                for k, s in list(split.items())[:1]},
        "test_errors": te, "timing": timing,
        "arrays": "components.npy (m, d_in) = V_mᵀ and coef_subspace.npy (d_out, m) = B: C = B V_mᵀ; "
                  "example_images.npy: the first held-out image as each of example_images"})
    rep.write(o.out, force=o.force)
    summary: dict[str, Any] = {"verdict": verdict.text(), "surrogate R² (held out)": r2, "components m": m}
    for k, e in errors.items():
        summary[f"error vs {k} [95% CI]"] = _err_text(e)
    s = split["surrogate C"]
    summary["signal error"] = f"{s.signal_error.estimate:.3g} [{s.signal_error.low:.3g}, {s.signal_error.high:.3g}]"
    na = s.noise_amplification
    summary["noise amplification"] = f"{na.estimate:.3g} [{na.low:.3g}, {na.high:.3g}]"
    summary["test MSE model"] = te["mse"]["model"]
    summary["test MSE C_data"] = te["mse"]["C_data"]
    if pair is not None:
        summary["model vs C_data (paired t)"] = f"p = {pair.p_value:.2g}"
    summary["time (CPU / wall)"] = f"{timing['cpu_s']:.1f} s / {timing['wall_s']:.1f} s"
    summary["peak memory (RSS)"] = f"{timing['peak_rss_gib']:.2f} GiB"
    if not math.isfinite(r2):
        summary["surrogate R² (held out)"] = None
    return summary
