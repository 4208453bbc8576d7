"""``linlens reproduce flows-stability``: on data on a plane in 3-D maximum likelihood has no minimizer
(σ_max(J) grows without bound); with the Jacobian penalty α, σ_max(J) settles at 1/√(2α).

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import TrainingDiverged
from linlens.flows import (
    InvertibleMLP,
    encoder_jacobians,
    train_flow,
)
from linlens.nn import resolve_device
from linlens.report import Report
from linlens.report import flows_figures as ffig
from linlens.workflows.reproduce.flows_common import PAPER, say, setup

__all__ = ["run_stability"]


def _plane_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    Y = rng.uniform(-1, 1, size=(n, 2))  # a non-Gaussian (uniform square) density on the plane
    Y[:, 1] = Y[:, 1] + 0.5 * np.sin(2 * Y[:, 0])  # bent, so the flow must be non-linear in the plane
    return np.c_[Y, np.zeros(n)] @ Q.T, Q[:, 2]


def run_stability(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
                  console: Any = None) -> dict[str, Any]:
    """Flows on a plane in 3-D: σ_max(J) grows without penalty; with α it settles at 1/√(2α).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "notes.txt").write_text("not a report")
        >>> run_stability(folder)  # an existing folder is refused before any work  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
    """
    setup(out, force, seed)
    dev = str(resolve_device(device))
    n, epochs = (400, 200) if quick else (1000, 1000)
    X, normal = _plane_data(n, seed)
    probe = X[: min(200, n)]
    checkpoints = sorted({1, 2, 3, 5, 10, 20, 30, 50, 100, 150, 200, 300, 500, 700, 1000, epochs} - {0})
    checkpoints = [c for c in checkpoints if c <= epochs]

    def sigma(ep: int, enc: Any) -> dict[str, Any] | None:
        if ep not in checkpoints and ep != 0:
            return None
        _, J = encoder_jacobians(enc, probe)
        U, s, Vt = np.linalg.svd(J)
        return {"sigma_max_median": float(np.median(s[:, 0])), "sigma_max_max": float(s[:, 0].max()),
                "normal_alignment_median": float(np.median(np.abs(Vt[:, 0, :] @ normal)))}

    alphas = [0.0, 1e-2, 1e-1]
    nll_curves, sig_curves, targets = {}, {}, {}
    metrics: dict[str, Any] = {"seed": seed, "quick": quick, "n": n, "epochs": epochs, "runs": {}}
    summary: dict[str, Any] = {}
    rows = []
    for alpha in alphas:
        label = "no penalty" if alpha == 0 else f"α = {alpha:g}"
        say(console, f"training {label}")
        f = InvertibleMLP(3, n_layers=2, activation="prelu", seed=seed).double()
        diverged = None
        try:
            h = train_flow(f, X, epochs=epochs, lr=1e-2, lr_decay=0.1, jacobian_penalty=alpha, callback=sigma,
                           seed=seed, device=dev, progress=console is not None, description=label)
        except TrainingDiverged as exc:  # reported, not hidden
            diverged = {"epoch": exc.epoch, "last_finite_loss": exc.last_finite_loss, "message": str(exc)}
            h = None
        if h is None:
            metrics["runs"][label] = {"alpha": alpha, "diverged": diverged}
            rows.append([label, "diverged", "", "", ""])
            continue
        rec = {e: r for e, r in h.records}
        eps = sorted(rec)
        nll_curves[label] = h.nll
        sig_curves[label] = (eps, [rec[e]["sigma_max_median"] for e in eps])
        final = rec[epochs]["sigma_max_median"]
        run = {"alpha": alpha, "final_nll": h.nll[-1], "final_loss": h.loss[-1], "sigma_max": {e: rec[e] for e in eps},
               "nan_or_inf": False, "nll_upward_jumps": int(np.sum(np.diff(h.nll) > 0))}
        if alpha > 0:
            target = 1 / math.sqrt(2 * alpha)
            targets[label] = target
            run.update(theory_sigma_max=target, rel_err=abs(final - target) / target)
            rows.append([label, final, target, abs(final - target) / target, rec[epochs]["normal_alignment_median"]])
            summary[f"{label}: σ_max(J) at end (theory {target:.4g})"] = final
        else:
            at = {e: rec[e]["sigma_max_median"] for e in (10, 100, 1000) if e in rec}
            run["sigma_max_at"] = at
            rows.append([label, final, "unbounded", "", rec[epochs]["normal_alignment_median"]])
            summary["no penalty: σ_max(J) at 10/100/end epochs"] = " → ".join(
                f"{rec[e]['sigma_max_median']:.3g}" for e in (10, 100, epochs) if e in rec)
            summary["no penalty: NLL first → last epoch"] = f"{h.nll[0]:.3g} → {h.nll[-1]:.3g}"
        metrics["runs"][label] = run
    rep = Report("flows-stability: maximum likelihood on a plane in 3-D is ill-posed; Tikhonov fixes it")
    rep.add_text(
        f"Reproduces the stability claim of {PAPER}. Data: n = {n} points of a bent uniform square lying in a "
        "random plane of R³ (intrinsic dimension 2). Flow: invertible MLP (2 × [full affine → PReLU] → affine), "
        f"full-batch Adam, lr 1e-2 decaying ×0.1 over {epochs} epochs. Without a penalty the likelihood has no "
        "maximum: shrinking the normal direction raises log|det J| for free, so the largest singular value of "
        "J (its direction is the plane's normal: see alignment) grows without bound while the NLL keeps "
        "falling. With α‖J‖_F² the normal variance is floored at 2α, so σ_max(J) → 1/√(2α). "
        "Prototype (issue 4): σ_max 1.2 → 47 → 5415 over 10/100/1000 epochs; 7.07 for α = 1e-2 and 2.236 for "
        "α = 1e-1. Our numbers are medians over 200 data points."
    )
    rep.add_table(["run", "σ_max(J) at end (median)", "theory 1/√(2α)", "relative error",
                   "|⟨top right singular vector, plane normal⟩|"], rows)
    if 0.0 in alphas and "no penalty" in metrics["runs"] and "sigma_max_at" in metrics["runs"]["no penalty"]:
        at = metrics["runs"]["no penalty"]["sigma_max_at"]
        rep.add_table(["epoch", "σ_max(J), ours", "prototype"],
                      [[e, at.get(e, "—"), p] for e, p in ((10, 1.2), (100, 47), (1000, 5415))],
                      caption="No penalty: growth of σ_max(J)")
    rep.add_figure(ffig.plot_stability(nll_curves, sig_curves, targets), "stability",
                   "Left: training NLL. Right: median σ_max(J) over data; dashed: theory 1/√(2α).")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return summary
