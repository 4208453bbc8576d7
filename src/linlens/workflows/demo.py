"""``linlens demo``: the inverse-operator study on built-in data.

A Gaussian blur A (n = 64, κ ≈ 1.5e8) is inverted by MLPs under two priors:

* a smooth Gaussian-process prior with σ = 1e-3, where the best estimator is linear (the Wiener filter);
* a piecewise-constant prior with σ = 1e-2, where a network can beat every linear estimator.

For each, a well-trained and a weak MLP (plus an untrained one as a null scale) are compared with A⁻¹, the
Wiener estimator and C_data (the linear least-squares fit of as many fresh pairs, drawn apart from the networks'
training pairs) by the study of ``linlens analyze --targets``. The report states which reference each surrogate
is closest to.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from linlens import nn as lnn
from linlens._progress import progress_to
from linlens.nn import progress_bar, progress_listener
from linlens.problems import InverseProblem, PiecewiseConstantPrior, SmoothPrior, gaussian_blur
from linlens.report import Report, check_destination
from linlens.validation import check_device
from linlens.workflows.fibers_cmd import demo_section
from linlens.workflows.inverse import inverse_study_from_files
from linlens.workflows.study_report import add_study_section, ci_text, local_vs_global, verdict_text

__all__ = ["run_demo", "demo_problems"]


def demo_problems(n: int = 64) -> list[tuple[str, InverseProblem]]:
    """The two problems of the demo: (short key, problem).

    Example:
        >>> [(key, p.n_x, p.n_y, p.noise_std) for key, p in demo_problems(16)]  # two blurs of 16 pixels, two priors
        [('smooth', 16, 16, 0.001), ('piecewise', 16, 16, 0.01)]
    """
    A = gaussian_blur(n, width=2.0)
    return [
        ("smooth", InverseProblem(A, SmoothPrior(n, length_scale=4.0), 1e-3,
                                  name=f"Gaussian blur n={n}, smooth GP prior (ℓ=4), σ=1e-3")),
        ("piecewise", InverseProblem(A, PiecewiseConstantPrior(n, jump_probability=0.04), 1e-2,
                                     name=f"Gaussian blur n={n}, piecewise-constant prior, σ=1e-2")),
    ]


#: Training of the "good" MLP per problem: (n_train, hidden, epochs, batch size, learning rate). The
#: piecewise problem needs more data and width for its nonlinear gain to show (measured: [256, 256] on 20k
#: samples stayed 22% worse than C_data; [512, 512] on 40k samples, 20 epochs, beat it by ~13%).
TRAINING = {
    "smooth": (20000, [256, 256], 30, 128, 1e-3),
    "piecewise": (40000, [512, 512], 20, 256, 2e-3),
}


#: Seed offset of the pairs C_data is fitted on (drawn apart from the networks' training pairs).
FRESH_SEED = 7_000_001


def _train_models(
    prob: InverseProblem, seed: int, quick: bool, console: Any, key: str, device: str = "auto"
) -> tuple[dict[str, torch.nn.Module], dict[str, Any], np.ndarray, np.ndarray]:
    n_train, hidden, epochs, batch_size, lr = TRAINING[key]
    if quick:
        n_train, epochs = 6000, 6
    X, Y = prob.sample(n_train, seed=seed)
    Xv, Yv = prob.sample(max(1000, n_train // 10), seed=seed + 1)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    good = lnn.mlp(prob.n_y, hidden, prob.n_x, seed=seed)
    weak = lnn.mlp(prob.n_y, [16], prob.n_x, seed=seed + 1)
    untrained = lnn.mlp(prob.n_y, hidden, prob.n_x, seed=seed + 2)
    h_good = lnn.train(good, Y32, X32, epochs=epochs, batch_size=batch_size, lr=lr, X_val=Yv, Y_val=Xv,
                       patience=8, lr_schedule="cosine", seed=seed, description=f"{key}: MLP {hidden}",
                       device=device)
    h_weak = lnn.train(weak, Y32, X32, epochs=2, batch_size=128, lr=1e-3, X_val=Yv, Y_val=Xv, seed=seed,
                       description=f"{key}: weak MLP [16], 2 epochs", device=device)
    # back on the CPU: the files written for the study and the Jacobians do not depend on where training ran
    models = {"trained MLP": good.cpu(), "weak MLP": weak.cpu(), "untrained MLP": untrained.cpu()}
    return models, {"trained MLP": h_good, "weak MLP": h_weak}, X, Y


def write_problem_files(folder: Path, prob: InverseProblem, models: dict[str, torch.nn.Module], X_train: np.ndarray,
                        Y_train: np.ndarray, n_probe: int, seed: int) -> dict[str, Any]:
    """Write what a user would have — TorchScript models, probe and training pairs, A and Σₓ as ``.npy`` — so
    that the demo runs the same study as ``linlens analyze --targets``; returns the paths.

    The probes are drawn from the problem with ``seed + 2_000_003`` (as
    :func:`linlens.workflows.study.linearity_study`).

    Example:
        >>> import tempfile
        >>> key, prob = demo_problems(8)[0]; X, Y = prob.sample(50, seed=0); d = Path(tempfile.mkdtemp())
        >>> paths = write_problem_files(d, prob, {"lin": torch.nn.Linear(8, 8).double()}, X, Y, n_probe=20, seed=0)
        >>> np.load(paths["inputs"]).shape, np.load(paths["train_targets"]).shape  # 20 probes, 50 training pairs
        ((20, 8), (50, 8))
        >>> bool(np.allclose(np.load(paths["operator"]), prob.A)), sorted(paths["models"])
        (True, ['lin'])
    """
    X_probe, Y_probe = prob.sample(n_probe, seed=seed + 2_000_003)
    paths: dict[str, Any] = {"models": {}}
    for key, arr in (("inputs", Y_probe), ("targets", X_probe), ("train_inputs", Y_train),
                     ("train_targets", X_train), ("operator", prob.A), ("prior_covariance", prob.prior.covariance())):
        paths[key] = folder / f"{key}.npy"
        np.save(paths[key], np.asarray(arr, dtype=np.float64))
    paths["operator"] = str(paths["operator"])
    for i, (name, model) in enumerate(models.items()):
        path = folder / f"model_{i}.pt"
        torch.jit.script(model.eval()).save(str(path))
        paths["models"][name] = str(path)
    return paths


def run_demo(out: Path, force: bool = False, seed: int = 0, quick: bool = False, console: Any = None,
             device: str = "auto") -> dict:
    """Run the demo and write the report to ``out``; returns headline numbers.

    ``device`` is where the MLPs are trained and probed ("auto": CUDA when available); the figures' numbers were
    measured on the CPU, and a GPU's different rounding gives slightly different trained networks.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "notes.txt").write_text("mine")  # a folder that is not a report
        >>> run_demo(d)  # refused before minutes of training  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
        >>> sorted(p.name for p in d.iterdir())  # nothing written or removed
        ['notes.txt']
    """
    check_device(device)
    check_destination(out, force)  # fail before minutes of training, not after
    # on 2 cores (hyperthreads of one, see shared/notes/performance.md) one thread is faster for these sizes —
    # for torch and for numpy's BLAS alike: measured, the quick demo took 29 s with one BLAS thread and 706 s
    # with two on a loaded 2-core machine (the bootstrap's many small products spin-wait for a busy core)
    cpus = os.cpu_count() or 1
    torch.set_num_threads(1 if cpus <= 2 else min(4, cpus))
    with threadpool_limits(limits=1 if cpus <= 2 else None):
        return _run_demo(out, force, seed, quick, console, device)


def _run_demo(out: Path, force: bool, seed: int, quick: bool, console: Any, device: str) -> dict:
    rep = Report("linlens demo: is a network that inverts a Gaussian blur spectrally close to A⁻¹?")
    rep.add_text(
        "Each MLP is trained to map a blurred, noisy observation y = A x + σe (n = 64) back to x. Its global "
        "linear surrogate C (least-squares fit of its outputs on held-out probes) is compared with three "
        "references: A⁻¹, the Wiener (LMMSE) estimator C* = Σₓ Aᵀ(AΣₓAᵀ + σ²I)⁻¹ (Σₓ and σ given: a fixed "
        "reference), and C_data, the linear least-squares fit of x on y from as many training pairs as the "
        "networks had, drawn apart from theirs (an estimate, resampled with its own pairs; fitted on the "
        "networks' own training rows it would share their sampling noise and look closer than it is). A network "
        "trained with squared error approaches E[x|y], whose best linear fit is C*, not A⁻¹. Every error is "
        "corrected for the estimation noise of C and comes with a basic bootstrap interval that resamples the fit"
        " and the test probes; every verdict is a paired test, and 'tie' or 'none' are possible answers. Against "
        "A⁻¹ the test error is split into signal error and noise amplification, because the data-weighted error "
        "against A⁻¹ is ≈ 1 for every model. An untrained and a weak network give 'close' a scale."
    )
    summary: dict[str, Any] = {}
    metrics: dict[str, Any] = {"seed": seed, "quick": quick, "training": TRAINING, "problems": {}}
    for key, prob in demo_problems():
        if console is not None:
            console.print(f"[bold]{prob.name}[/bold]")
        models, hists, X, Y = _train_models(prob, seed, quick, console, key, device)
        # C_data from as many pairs the networks never saw: fitted on their own training rows it shares their
        # sampling noise, which the study's resampling takes as independent, and it came out "closest" for that
        # reason alone (piecewise problem, seeds 0–4: C_data 5 of 5 on the training rows, p = 6e-6 to 0.026; tie
        # 5 of 5 on fresh rows, p = 0.42 to 0.83, where the truth is a tie: Σₓ and σ are exact, so C_data's
        # population value is the Wiener estimator; benchmarks/bench_demo_verdict.py)
        X_c, Y_c = prob.sample(len(X), seed=seed + FRESH_SEED)
        if console is not None:
            console.print("fitting surrogates, bootstrap intervals and paired tests, model by model …")
        # the demo writes its files and runs the study `linlens analyze --targets` runs on them (one code path);
        # the bootstrap, the demo's longest step, shows its resamples as progress
        with tempfile.TemporaryDirectory(prefix="linlens-demo-") as tmp, \
                progress_bar(console is not None) as bar, progress_to(progress_listener(bar, f"{key}: ")):
            files = write_problem_files(Path(tmp), prob, models, X_c, Y_c, n_probe=8000, seed=seed)
            study = inverse_study_from_files(
                files["models"], files["inputs"], files["targets"], operator=files["operator"],
                noise_std=prob.noise_std, train_inputs=files["train_inputs"], train_targets=files["train_targets"],
                prior_covariance=files["prior_covariance"], batch_size=8192, device=device, seed=seed,
                n_boot=30 if quick else 100, name=prob.name,
                load_model_kwargs={"trust_model": True},  # the TorchScript files it has just written itself
            ).study
        _, Y_local = prob.sample(300 if quick else 1000, seed=seed + 3_000_017)
        if console is not None:
            console.print(f"{key}: Jacobians at {len(Y_local)} inputs against the surrogates, then the report's "
                          "figures …")
        local = local_vs_global(models, study, Y_local)
        total_var = float(np.trace(prob.prior.covariance()))
        add_study_section(rep, key, study, good="trained MLP", total_var=total_var, local=local, hists=hists,
                          null_models=("untrained MLP",))
        metrics["problems"][key] = {"study": study.to_dict(), "local_vs_global": local,
                                    "training": {k: h.to_dict() for k, h in hists.items()},
                                    "verdict": verdict_text(study, "trained MLP", total_var)}
        g = study.models["trained MLP"]
        summary[f"{key}: trained MLP verdict"] = g.verdict.text()
        for k in ("Wiener", "C_data"):
            summary[f"{key}: error vs {k} [95% CI]"] = ci_text(g.errors[k])
        sn = g.signal_noise_corrected
        summary[f"{key}: signal error (trained)"] = ci_text(sn["signal_error"])
        summary[f"{key}: noise amplification (trained)"] = ci_text(sn["noise_amplification"])
        summary[f"{key}: test MSE network / C_data"] = g.test_mse_model / study.test_mse["C_data"]
        summary[f"{key}: network vs C_data (paired t)"] = g.nonlinear_gain.p_text()
        for other in ("weak MLP", "untrained MLP"):
            o = study.models[other]
            summary[f"{key}: {other} verdict"] = o.verdict.text()
            summary[f"{key}: {other} signal error"] = ci_text(o.signal_noise_corrected["signal_error"])
        summary[f"{key}: median weighted ‖J−C‖ (trained)"] = local["trained MLP"]["weighted_distance_median"]
    _, prob = demo_problems()[0]
    X, Y = prob.sample(6000 if quick else 20000, seed=seed)
    rep.add_text("A deep linear network (3 layers, no activations) trained on the smooth-prior problem: which "
                 "stratum of the fiber of its product matrix does it end on?")
    fib = demo_section(rep, Y, X, seed=seed, quick=quick)
    summary.update(fib)  # its detailed numbers are already in rep.metrics["deep_linear_network"]
    rep.metrics.update(metrics)
    rep.write(out, force=force)
    return summary
