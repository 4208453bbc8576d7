"""``linlens reproduce track-blur``: the demo's blur problem trained from scratch, watched through its surrogate.

The demo's smooth problem (Gaussian blur n = 64, κ ≈ 1.5e8, Gaussian-process prior ℓ = 4, σ = 1e-3) and its MLP
are trained from scratch with Adam; a :class:`~linlens.tracking.Tracker` on 2,000 held-out probe pairs follows the
surrogate at log-spaced steps. Science first:

1. The gate: at the end the network must beat its simplest baseline, predicting the mean, by a paired test on the
   test probes (and its test MSE is set beside C_data's and the Wiener estimator's) — only then are its internals
   compared.
2. When does each band's filter factor approach Wiener's? Per band of A's singular index, the first tracked step at
   which the band's mean factor is within :data:`CLOSE` of the Wiener estimator's.
3. Is the order by singular value (spectral bias, Rahaman et al. 2019)? The step at which each component reaches
   half of its final filter factor against σᵢ(A), over the components a good estimator keeps (final and Wiener
   φᵢ ≥ 0.5), with Spearman's ρ and its p-value.

References:
    N. Rahaman et al. On the spectral bias of neural networks. ICML 2019, https://arxiv.org/abs/1806.08734.
    Z.-Q. J. Xu et al. Frequency principle, https://arxiv.org/abs/1901.06523.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from linlens import nn as lnn
from linlens.report import Report, check_destination
from linlens.surrogate.resampling import paired_mean_difference
from linlens.tracking import Tracker, spectral_bias
from linlens.validation import check_device
from linlens.workflows.demo import TRAINING, demo_problems
from linlens.workflows.track import add_tracking_section

__all__ = ["run_track_blur", "blur_experiment", "CLOSE"]

#: A band's mean filter factor counts as having approached Wiener's once it is within this (absolute) of it.
CLOSE = 0.1


def _tracked_steps(total: int, n: int) -> list[int]:
    """0 and about ``n`` log-spaced steps up to ``total`` (early training changes fastest)."""
    pts = np.unique(np.round(np.geomspace(1, total, n)).astype(int))
    return [0, *pts.tolist()]


def blur_experiment(*, quick: bool, seed: int = 0, device: str = "cpu", n_probe: int = 2000, n_track: int = 40,
                    n_boot: int = 100, console: Any = None) -> dict[str, Any]:
    """Train the demo's smooth-problem MLP from scratch with a tracker; returns the result and the gate.

    Returns:
        dict: "result" (:class:`~linlens.tracking.TrackingResult`), "problem", "gate" (paired test of the
        network's squared error against predicting the mean, per test probe), "test_mse" (network, C_data, Wiener,
        zero), "epochs", "steps_per_epoch".

    Example:
        >>> blur_experiment(quick=True, n_boot=5)  # the tracker refuses too few replicates before any training step
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: n_boot must be an integer ≥ 10; got 5
    """
    key, prob = demo_problems()[0]
    n_train, hidden, epochs, batch, lr = TRAINING[key]
    if quick:
        n_train, hidden, epochs = 4000, [128, 128], 6
    X, Y = prob.sample(n_train, seed=seed)
    Xp, Yp = prob.sample(n_probe, seed=seed + 2_000_003)
    dev = lnn.resolve_device(device)
    net = lnn.mlp(prob.n_y, hidden, prob.n_x, seed=seed).to(dev)
    steps_per_epoch = -(-n_train // batch)
    total = epochs * steps_per_epoch
    track_at = set(_tracked_steps(total, n_track))
    tracker = Tracker(Yp, Xp, prob.A, prior_covariance=prob.prior.covariance(), noise_std=prob.noise_std,
                      n_boot=n_boot, n_jacobian=16, seed=seed, batch_size=4096)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    Yt = torch.as_tensor(Y, dtype=torch.float32, device=dev)
    Xt = torch.as_tensor(X, dtype=torch.float32, device=dev)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    tracker.update(net, 0)
    for ep in range(epochs):
        perm = torch.randperm(n_train, generator=gen).to(dev)
        net.train()
        for b in range(steps_per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(Yt[idx]), Xt[idx])
            loss.backward()
            opt.step()
            step += 1
            if step in track_at:
                tracker.update(net, step)
        sched.step()
        if console is not None:
            console.print(f"epoch {ep + 1}/{epochs}: step {step}, last loss {float(loss):.3g}")
    half = n_probe // 2
    Xte, Yte = Xp[half:], Yp[half:]
    with torch.no_grad():
        net.eval()
        F = net(torch.as_tensor(Yte, dtype=torch.float32, device=dev)).double().cpu().numpy()
    mean = X.mean(axis=0)
    sq_net = np.sum((F - Xte) ** 2, axis=1)
    sq_zero = np.sum((mean - Xte) ** 2, axis=1)
    gate = paired_mean_difference(sq_net, sq_zero, "network", "predict the mean")
    W = prob.wiener()
    test_mse = {"network": float(np.mean(sq_net)) / prob.n_x,
                "predict the mean": float(np.mean(sq_zero)) / prob.n_x,
                "Wiener (closed form)": float(np.mean(((Yte - Y.mean(0)) @ W.T + mean - Xte) ** 2))}
    test_mse |= {f"{k} (surrogate-study reference)": v for k, v in tracker.setup_.reference_test_mse.items()
                 if k == "C_data"}
    return {"result": tracker.result(), "problem": prob, "gate": gate, "test_mse": test_mse, "epochs": epochs,
            "steps_per_epoch": steps_per_epoch, "hidden": hidden, "n_train": n_train}


def approach_steps(result: Any, close: float = CLOSE) -> np.ndarray:
    """Per band, the first tracked step from which on the band's mean filter factor stays within ``close`` of the
    Wiener estimator's (NaN when it never does).

    Example:
        >>> from linlens.tracking import TrackPoint, TrackSetup, TrackingResult
        >>> setup = TrackSetup(3, 3, 0, ["Wiener"], {}, None, np.array([[0, 1], [1, 2]]), {},
        ...                    {"Wiener": np.array([1.0, 0.5])}, {}, None, 0.95)
        >>> bands = [[0.2, 0.0], [0.98, 0.2], [0.99, 0.49], [1.0, 0.9]]  # Wiener's: 1.0 and 0.5
        >>> pts = [TrackPoint(10 * i, 1.0, None, {}, None, None, None, np.array(b), None, None, None, None, None, None,
        ...                   np.zeros((2, 2)), np.zeros(2), 0.0, 0.0) for i, b in enumerate(bands)]
        >>> approach_steps(TrackingResult(setup, pts), close=0.05).tolist()  # band 2 leaves the band at step 30
        [10.0, nan]
    """
    B = np.stack([p.band_filter_factors for p in result.points])
    w = result.setup.reference_band_factors["Wiener"]
    steps = result.steps
    out = np.full(B.shape[1], np.nan)
    for j in range(B.shape[1]):
        ok = np.abs(B[:, j] - w[j]) <= close
        bad = np.flatnonzero(~ok)
        first = 0 if bad.size == 0 else bad[-1] + 1
        if first < len(steps):
            out[j] = steps[first]
    return out


def run_track_blur(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
                   console: Any = None) -> dict[str, Any]:
    """Run the example and write its report; returns headline numbers.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "notes.txt").write_text("mine")  # a folder that is not a report
        >>> run_track_blur(d)  # refused before the training  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
        >>> [p.name for p in d.iterdir()]
        ['notes.txt']
    """
    check_device(device)
    check_destination(out, force)
    cpus = os.cpu_count() or 1
    torch.set_num_threads(1 if cpus <= 2 else min(4, cpus))
    with threadpool_limits(limits=1 if cpus <= 2 else None):
        ex = blur_experiment(quick=quick, seed=seed, device=device, n_boot=30 if quick else 100, console=console)
    res, gate = ex["result"], ex["gate"]
    rep = Report("Spectral bias on the demo's blur problem: when does each band reach Wiener's filter factor?")
    rep.add_text(__doc__.split("\n\n", 1)[1].split("References:")[0].strip())
    rep.add_text(f"MLP {ex['hidden']}, {ex['n_train']} training pairs, {ex['epochs']} epochs × "
                 f"{ex['steps_per_epoch']} steps (Adam, cosine schedule); {len(res.points)} tracked steps.")
    passed = gate.high < 0
    rep.add_answer(f"Gate: the network's test squared error per probe minus predicting the mean's: {gate.estimate:.3g} "
                   f"[{gate.low:.3g}, {gate.high:.3g}], {gate.p_text()} — "
                   + ("it beats its simplest baseline." if passed else "it does NOT beat its simplest baseline: the "
                      "comparisons below describe a network that has not learned the task."))
    bands = res.setup.bands
    appr = approach_steps(res)
    sb = spectral_bias(res)
    order = ("larger singular values are learned earlier" if sb.spearman_rho < 0 and sb.p_value < 0.05 else
             "the order is not clearly by singular value")
    rep.add_answer(f"Spectral bias: over {sb.components.size} components kept by Wiener (φ ≥ 0.5), Spearman ρ between "
                   f"σᵢ and the half-rise step = {sb.spearman_rho:.3g} (p = {sb.p_value:.2g}): {order}.")
    last = res.points[-1]
    rep.add_answer(f"At the last step ({last.step}) the surrogate's verdict is {last.verdict}; error vs Wiener "
                   f"{last.errors['Wiener']['estimate']:.3g} [{last.errors['Wiener']['low']:.3g}, "
                   f"{last.errors['Wiener']['high']:.3g}].")
    rep.answer_next = ("the band table (when each band approaches Wiener's factor), then the heat map and the "
                       "spectral-bias plot.")
    rep.add_table(["predictor", "test MSE per entry"], [[k, v] for k, v in ex["test_mse"].items()],
                  caption="Test MSE on the held-out half of the probe pairs (the gate's numbers).")
    w = res.setup.reference_band_factors["Wiener"]
    fin = last.band_filter_factors
    s = res.setup.singular_values_A
    rep.add_table(["band", "σᵢ(A) range", "Wiener φ (band mean)", "final φ", f"first step within {CLOSE:g} of Wiener "
                   "(and staying)"],
                  [[f"{a + 1}–{b}", f"{s[b - 1]:.2g} – {s[a]:.2g}", w[j], fin[j],
                    "never" if np.isnan(appr[j]) else int(appr[j])] for j, (a, b) in enumerate(bands)],
                  caption="Per band of A's singular index: the Wiener estimator's mean filter factor, the network "
                  "surrogate's at the last step, and when it approached Wiener's.")
    metrics = add_tracking_section(rep, res, key="blur", spectral=sb)
    rep.metrics.update(metrics | {"seed": seed, "quick": quick, "gate": gate.to_dict(), "gate_passed": passed,
                                  "test_mse": ex["test_mse"], "approach_steps": appr, "close": CLOSE,
                                  "epochs": ex["epochs"], "steps_per_epoch": ex["steps_per_epoch"]})
    rep.write(out, force=force)
    summary: dict[str, Any] = {"gate: network − mean predictor (sq. error)": f"{gate.estimate:.3g} [{gate.low:.3g}, "
                               f"{gate.high:.3g}]", "gate passed": passed,
                               "test MSE network / Wiener": ex["test_mse"]["network"]
                               / ex["test_mse"]["Wiener (closed form)"],
                               "spectral bias: Spearman ρ (σ vs half-rise step)": sb.spearman_rho,
                               "spectral bias: p": sb.p_value, "verdict (last step)": last.verdict}
    for j, (a, b) in enumerate(bands[:4]):
        summary[f"band {a + 1}–{b}: step within {CLOSE:g} of Wiener"] = "never" if np.isnan(appr[j]) else int(appr[j])
    return summary
