"""Reproductions of the linear-systems theory of normalizing flows: ``linlens reproduce flows-*``.

- ``flows-linear``: a linear flow's un-whitened components are the PCA scores; with the Jacobian penalty α
  the learned WᵀW is (S + 2αI)⁻¹ (covariance shrinkage).
- ``flows-stability``: on data on a plane in 3-D, maximum likelihood has no minimizer (σ_max(J) grows without
  bound); with α, σ_max(J) settles at 1/√(2α).
- ``flows-scurve``: the local covariance of a neural spline flow on the S-curve against the known local
  standard deviations and tangent.
- ``flows-digits``: traversals along the top un-whitened components of a flow on scikit-learn's 8×8 digits.

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linlens.errors import TrainingDiverged
from linlens.flows import (
    InvertibleMLP,
    LinearFlow,
    align_signs,
    encoder_jacobians,
    local_covariance,
    plots,
    spline_flow,
    train_flow,
    unwhitened_components,
)
from linlens.nn import resolve_device, seed_everything
from linlens.report import Report, check_destination

__all__ = ["run_linear", "run_stability", "run_scurve", "run_digits"]

_PAPER = "Feinman & Parthasarathy, A Linear Systems Theory of Normalizing Flows, arXiv:1907.06496"


def _setup(out: Path, force: bool, seed: int) -> None:
    check_destination(out, force)  # fail before training, not after
    torch.set_num_threads(1)
    seed_everything(seed)


def _say(console: Any, msg: str) -> None:
    if console is not None:
        console.print(msg)


# ----------------------------------------------------------------------------------------------- flows-linear
def run_linear(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
               console: Any = None) -> dict[str, Any]:
    """Linear flow on Gaussian data: components = PCA scores; penalty α gives WᵀW = (S + 2αI)⁻¹."""
    from sklearn.decomposition import PCA

    _setup(out, force, seed)
    dev = str(resolve_device(device))
    rng = np.random.default_rng(seed)
    d, n = 5, (600 if quick else 2000)
    A = rng.normal(size=(d, d))
    X = rng.normal(size=(n, d)) @ A.T + rng.normal(size=d)
    S = np.cov(X.T, bias=True)  # the MLE covariance the flow's likelihood sees
    eig_S = np.linalg.eigvalsh(S)[::-1]
    scores = PCA().fit_transform(X)
    alphas = [0.0, 0.1]
    summary: dict[str, Any] = {}
    metrics: dict[str, Any] = {"seed": seed, "quick": quick, "d": d, "n": n, "eig_S": eig_S, "runs": {}}
    rep = Report("flows-linear: a linear flow is PCA; the Jacobian penalty is covariance shrinkage")
    rep.add_text(
        f"Reproduces the linear theory of {_PAPER}. Data: n = {n} Gaussian samples in d = {d} with a random "
        "covariance; the flow z = Wx + b starts from a random W and is trained by exact maximum likelihood "
        "(full-batch L-BFGS) with the penalty α‖J‖_F² = α‖W‖_F². Theory: WᵀW = (S + 2αI)⁻¹ (S = MLE sample "
        "covariance), and the un-whitened components ẑ = diag(1/s)Uᵀz equal the PCA scores Vᵀ(x − μ) whatever "
        "rotation the flow learned. Targets (issue 4): |corr| ≥ 0.999 per component against scikit-learn's PCA, "
        "component variances = eigenvalues of S, WᵀW within 1e-3 relative."
    )
    rows = []
    curves: dict[str, tuple[list[int], list[float]]] = {}

    def rel_err(f: LinearFlow, alpha: float) -> float:
        W = f.weight.detach().cpu().double().numpy()
        T = np.linalg.inv(S + 2 * alpha * np.eye(d))
        return float(np.linalg.norm(W.T @ W - T) / np.linalg.norm(T))

    first_comp = None
    for alpha in alphas:
        f = LinearFlow(d, seed=seed + 1).double()
        h = train_flow(f, X, epochs=30, optimizer="lbfgs", lr=1.0, jacobian_penalty=alpha, device=dev,
                       callback=lambda ep, e, a=alpha: {"rel_err": rel_err(e, a)})
        err = rel_err(f, alpha)
        comp = unwhitened_components(f, X)
        corr = [abs(float(np.corrcoef(comp.components[:, k], scores[:, k])[0, 1])) for k in range(d)]
        var = comp.components.var(axis=0)
        var_err = float(np.max(np.abs(var - eig_S) / eig_S))
        local_var = np.median(comp.local_std, axis=0) ** 2
        local_var_err = float(np.max(np.abs(local_var - (eig_S + 2 * alpha)) / (eig_S + 2 * alpha)))
        ok = err <= 1e-3 and min(corr) >= 0.999 and var_err <= 1e-3
        metrics["runs"][f"alpha={alpha}"] = {
            "alpha": alpha, "wtw_rel_err": err, "abs_corr_vs_pca": corr, "component_variance": var,
            "component_variance_max_rel_err": var_err, "local_variance": local_var,
            "local_variance_vs_eig_S_plus_2alpha_max_rel_err": local_var_err, "final_nll": h.nll[-1],
            "pass": ok, "history": h.to_dict(),
        }
        rows.append([f"{alpha:g}", err, "≤ 1e-3", min(corr), "≥ 0.999", var_err, local_var_err,
                     "pass" if ok else "FAIL"])
        curves[f"L-BFGS, α = {alpha:g}"] = ([e for e, _ in h.records], [r["rel_err"] for _, r in h.records])
        summary[f"α={alpha:g}: WᵀW rel. error vs (S+2αI)⁻¹"] = err
        summary[f"α={alpha:g}: min |corr| with PCA"] = min(corr)
        if first_comp is None:
            first_comp = comp.components

    # optimizer comparison (the reason for L-BFGS / a decaying rate), α = 0.1
    epochs = 600 if quick else 3000
    for label, decay in (("Adam, constant lr 1e-2", None), ("Adam, lr 1e-2 decaying ×0.05", 0.05)):
        f = LinearFlow(d, seed=seed + 1).double()
        h = train_flow(f, X, epochs=epochs, lr=1e-2, lr_decay=decay, jacobian_penalty=0.1, device=dev,
                       callback=lambda ep, e: {"rel_err": rel_err(e, 0.1)}, callback_every=max(1, epochs // 200))
        curves[f"{label}, α = 0.1"] = ([e for e, _ in h.records], [r["rel_err"] for _, r in h.records])
        metrics["runs"][f"{label}, alpha=0.1"] = {"final_rel_err": rel_err(f, 0.1), "epochs": epochs}
        summary[f"{label} (α=0.1): final rel. error"] = rel_err(f, 0.1)
    rep.add_heading("Theory against training")
    rep.add_table(["α", "‖WᵀW − (S+2αI)⁻¹‖/‖·‖", "target", "min |corr| vs PCA", "target",
                   "max rel. err. var(ẑ) vs eig(S)", "max rel. err. local var vs eig(S)+2α", "verdict"], rows)
    rep.add_figure(plots.components_vs_pca_plot(first_comp, scores), "components_vs_pca",
                   "α = 0: each un-whitened component against scikit-learn's PCA score of the same rank.")
    rep.add_figure(plots.spectrum_plot({"eigenvalues of S": eig_S, "var(ẑ), α = 0.1":
                                        metrics["runs"]["alpha=0.1"]["component_variance"],
                                        "median local variance 1/s², α = 0.1":
                                        metrics["runs"]["alpha=0.1"]["local_variance"],
                                        "eigenvalues of S + 0.2 I": eig_S + 0.2}),
                   "spectrum", "Component variances equal the eigenvalues of S; the flow's own local variance "
                   "is the shrunk spectrum S + 2αI.")
    rep.add_figure(plots.convergence_plot(curves, title="relative error of WᵀW against (S + 2αI)⁻¹"),
                   "convergence", "Full-batch L-BFGS reaches the closed form in a few steps. Final relative "
                   "errors of full-batch Adam in this run: constant rate "
                   f"{metrics['runs']['Adam, constant lr 1e-2, alpha=0.1']['final_rel_err']:.2g}, decaying rate "
                   f"{metrics['runs']['Adam, lr 1e-2 decaying ×0.05, alpha=0.1']['final_rel_err']:.2g} (the "
                   "prototype saw constant-rate Adam reach 1e-15 and drift back to 1.6e-3; we did not see that "
                   "drift here).")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return summary


# -------------------------------------------------------------------------------------------- flows-stability
def _plane_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    Y = rng.uniform(-1, 1, size=(n, 2))  # a non-Gaussian (uniform square) density on the plane
    Y[:, 1] = Y[:, 1] + 0.5 * np.sin(2 * Y[:, 0])  # bent, so the flow must be non-linear in the plane
    return np.c_[Y, np.zeros(n)] @ Q.T, Q[:, 2]


def run_stability(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
                  console: Any = None) -> dict[str, Any]:
    """Flows on a plane in 3-D: σ_max(J) grows without penalty; with α it settles at 1/√(2α)."""
    _setup(out, force, seed)
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
        _say(console, f"training {label}")
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
        f"Reproduces the stability claim of {_PAPER}. Data: n = {n} points of a bent uniform square lying in a "
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
    rep.add_figure(plots.stability_plot(nll_curves, sig_curves, targets), "stability",
                   "Left: training NLL. Right: median σ_max(J) over data; dashed: theory 1/√(2α).")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return summary


# ----------------------------------------------------------------------------------------------- flows-scurve
def _scurve_variant(name: str, scale: float, noise: float, n: int, epochs: int, seed: int, dev: str,
                    console: Any, transforms: int = 3) -> tuple[dict[str, Any], Any]:
    from scipy.stats import spearmanr
    from sklearn.decomposition import PCA

    from linlens.data.scurve import make_s_curve, s_curve_tangent, s_curve_true_std

    X, _ = make_s_curve(n, scale_eta0=scale, noise=noise, seed=seed)
    Xe, t = make_s_curve(2000, scale_eta0=scale, noise=noise, seed=seed + 1000)  # held-out evaluation points
    torch.manual_seed(seed)
    f = spline_flow(3, transforms=transforms, hidden_features=(64, 64)).double()
    h = train_flow(f, X, epochs=epochs, lr=5e-3, lr_decay=0.02, batch_size=500, X_val=Xe, seed=seed, device=dev,
                   progress=console is not None, description=f"S-curve {name}, {transforms} transforms")
    lc = local_covariance(f, Xe, on_singular="mask")
    ok = ~lc.singular
    truth = s_curve_true_std(scale, noise)
    med = np.median(lc.local_std[ok], axis=0)
    rel = np.abs(med - truth) / truth
    tan = s_curve_tangent(t)
    cosang = np.abs(np.einsum("ni,ni->n", lc.directions[:, :, 0], tan))
    ang = np.degrees(np.arccos(np.clip(cosang, 0, 1)))
    frac25 = float(np.mean(ang[ok] <= 25))
    comp = unwhitened_components(f, Xe, on_singular="mask")
    rho_flow = abs(float(spearmanr(comp.components[ok, 0], t[ok])[0]))
    rho_pca = abs(float(spearmanr(PCA(1).fit(X).transform(Xe)[:, 0], t)[0]))
    # the local *direction* is identifiable up to sign: align signs along the curve (spanning-tree propagation)
    _, sg = align_signs(Xe, lc.directions[:, :, 0], radius=0.3)
    res = {
        "scale_eta0": scale, "noise": noise, "n_train": n, "n_eval": len(Xe), "epochs": epochs,
        "transforms": transforms, "final_train_nll": h.nll[-1], "heldout_nll": h.val_nll[-1],
        "median_local_std": med, "true_std": truth, "rel_err": rel,
        "targets_rel": [0.1, 0.1, 0.2], "pass_std": bool(np.all(rel <= np.array([0.1, 0.1, 0.2]))),
        "tangent_angle_median_deg": float(np.median(ang[ok])), "frac_tangent_within_25deg": frac25,
        "pass_tangent": frac25 >= 0.9, "spearman_top_component_vs_t": rho_flow, "spearman_pca1_vs_t": rho_pca,
        "n_singular": int(lc.singular.sum()), "sign_flips_after_alignment": int(np.sum(sg < 0)),
    }
    fig = plots.local_covariance_plot(Xe, lc.covariance, lc.directions, lc.local_std, dims=(0, 2),
                                      title=f"{name}: local covariance ellipses (×0.25 std) and top direction")
    return res, fig


def run_scurve(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
               console: Any = None) -> dict[str, Any]:
    """Neural spline flow on the S-curve: local standard deviations and directions against the truth."""
    _setup(out, force, seed)
    dev = str(resolve_device(device))
    n, epochs = (1000, 30) if quick else (3000, 60)
    metrics: dict[str, Any] = {"seed": seed, "quick": quick, "variants": {}, "capacity_sweep": {}}
    summary: dict[str, Any] = {}
    rep = Report("flows-scurve: a flow's Jacobian recovers the S-curve's local covariance")
    rep.add_text(
        f"Reproduces the local-covariance claim of {_PAPER} on the authors' S-curve (Gaussian density along the "
        "curve, t = 3π·η0 with η0 ~ N(0, scale²), uniform across it, isotropic noise 0.05). Flow: zuko's neural "
        f"spline flow (3 autoregressive transforms, 2 × 64 hidden), minibatch Adam, {epochs} epochs, n = {n} "
        "training points; every number below is measured on 2000 held-out points. "
        "Σ(x) = V diag(1/s²) Vᵀ from the SVD of J(x) = ∂z/∂x. True local standard deviations: 3π·scale along "
        "the curve (arc length = t), 2/√12 ≈ 0.577 across (uniform on [0, 2]; an exact flow's median would be "
        "2φ(0.674) ≈ 0.636), and the noise 0.05. Targets (issue 4, narrow variant): medians within 10/10/20 %, "
        "top local direction within 25° of the tangent at ≥ 90 % of points. Prototype: [1.30, 0.60, 0.055]."
    )
    rows, figs = [], []
    for name, scale in (("narrow", 0.15), ("wide", 0.3)):
        _say(console, f"S-curve, {name} variant")
        res, fig = _scurve_variant(name, scale, 0.05, n, epochs, seed, dev, console)
        metrics["variants"][name] = res
        figs.append((name, fig))
        m, tr = res["median_local_std"], res["true_std"]
        rows.append([name, f"{m[0]:.3g} / {tr[0]:.3g}", f"{m[1]:.3g} / {tr[1]:.3g}", f"{m[2]:.3g} / {tr[2]:.3g}",
                     res["frac_tangent_within_25deg"], res["spearman_top_component_vs_t"], res["spearman_pca1_vs_t"],
                     "pass" if res["pass_std"] and res["pass_tangent"] else "fail"])
        summary[f"{name}: median local std (along, across, noise)"] = ", ".join(f"{v:.3g}" for v in m)
        summary[f"{name}: fraction within 25° of tangent"] = res["frac_tangent_within_25deg"]
        summary[f"{name}: |Spearman ρ| top component vs t (PCA)"] = (
            f"{res['spearman_top_component_vs_t']:.3f} ({res['spearman_pca1_vs_t']:.3f})")
    rep.add_table(["variant", "along: ours / true", "across: ours / true", "noise: ours / true",
                   "fraction ≤ 25° from tangent", "|ρ| top un-whitened comp. vs t", "|ρ| PCA 1 vs t",
                   "targets (10/10/20 %, ≥ 0.9)"], rows)
    nw, nn_ = metrics["variants"]["wide"], metrics["variants"]["narrow"]
    rep.add_text(
        "Finding (stated, not tuned away): the local covariance — scales and directions — is what the flow "
        "identifies. The *values* of the un-whitened components ẑ = diag(1/s)Uᵀz are computed from the full "
        "latent z, which carries a rotation of latent space that the likelihood cannot identify, so the top "
        f"component need not be monotone in t: its |Spearman ρ| with t is {nn_['spearman_top_component_vs_t']:.3f} "
        f"(narrow) and {nw['spearman_top_component_vs_t']:.3f} (wide), against PCA's "
        f"{nn_['spearman_pca1_vs_t']:.3f} and {nw['spearman_pca1_vs_t']:.3f} "
        "(prototype: 0.20–0.88 for well-fitting flows, PCA 0.993 narrow). On the wide variant the curve folds "
        "back on itself (|t| > π is common), so 3π·scale is the spread of t, not a local standard deviation: "
        "its 'along' truth does not apply there."
    )
    if not quick:
        sweep_rows = []
        for transforms in (2, 3, 5):
            _say(console, f"capacity sweep: {transforms} transforms")
            res, fig = _scurve_variant("narrow", 0.15, 0.05, n, epochs, seed, dev, console, transforms)
            import matplotlib.pyplot as plt

            plt.close(fig)
            metrics["capacity_sweep"][str(transforms)] = res
            sweep_rows.append([transforms, res["heldout_nll"], *res["median_local_std"],
                               res["frac_tangent_within_25deg"]])
        rep.add_heading("Flow capacity against the local-covariance readout (narrow variant)")
        rep.add_table(["NSF transforms", "held-out NLL", "along", "across", "noise", "fraction ≤ 25°"], sweep_rows)
        rep.add_text(
            "A better density fit does not make the Jacobian readout more accurate: the along-curve local std "
            "falls as capacity grows and the held-out NLL improves. A measure-preserving twist of latent space "
            "(e.g. a rotation whose angle depends on ‖z‖) leaves the likelihood unchanged but changes J's "
            "singular values, so the likelihood alone does not pin down the local covariance of a non-linear "
            "flow — the same non-identifiability that scrambles the component values."
        )
    for name, fig in figs:
        rep.add_figure(fig, f"scurve_{name}", f"{name} variant, x–z projection of held-out points.")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return summary


# ----------------------------------------------------------------------------------------------- flows-digits
def run_digits(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
               console: Any = None) -> dict[str, Any]:
    """Invertible-MLP flow on 8×8 digits; image grid of traversals along the top un-whitened components."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    _setup(out, force, seed)
    dev = str(resolve_device(device))
    rng = np.random.default_rng(seed)
    raw = load_digits().data  # (1797, 64), integers 0..16
    X = (raw + rng.uniform(size=raw.shape)) / 17.0  # uniform dequantisation into (0, 1)
    perm = rng.permutation(len(X))
    tr, te = X[perm[:1500]], X[perm[1500:]]
    epochs = 15 if quick else 150
    alpha = 1e-3
    f = InvertibleMLP(64, n_layers=3, activation="prelu", seed=seed).double()
    h = train_flow(f, tr, epochs=epochs, lr=2e-3, lr_decay=0.05, batch_size=250, jacobian_penalty=alpha,
                   penalty_method="hutchinson", X_val=te, seed=seed, device=dev, progress=console is not None,
                   description="digits flow")
    comp = unwhitened_components(f, tr, on_singular="mask")
    ok = ~comp.singular
    var = comp.components[ok].var(axis=0)
    pca = PCA().fit(tr)
    k_top, steps = 6, np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    base_rows = [0, 1, 2]
    enc_dtype = next(f.parameters()).dtype
    grids = []
    with torch.no_grad():
        xb = torch.as_tensor(te[base_rows], dtype=enc_dtype, device=dev)
        zb = f(xb)[0]
    cb = unwhitened_components(f, te[base_rows])
    std = np.sqrt(var)
    for b in range(len(base_rows)):
        imgs = np.zeros((k_top, len(steps), 8, 8))
        for k in range(k_top):
            u = cb.latent_directions[b, :, k]
            s_k = 1.0 / cb.local_std[b, k]
            # move ẑ_k by c·std_k: z += c·std_k·s_k·u_k; decode with the exact inverse
            dz = np.outer(steps * std[k] * s_k, u)
            with torch.no_grad():
                xs = f.inverse(zb[b][None, :] + torch.as_tensor(dz, dtype=enc_dtype, device=dev)).cpu().numpy()
            imgs[k] = np.clip(xs, 0, 1).reshape(len(steps), 8, 8)
        grids.append(imgs)
    rec = f.inverse(f(torch.as_tensor(te[:50], dtype=enc_dtype, device=dev))[0]).detach().cpu().numpy()
    recon_err = float(np.max(np.abs(rec - te[:50])))
    top10_flow = float(var[:10].sum() / var.sum())
    top10_pca = float(pca.explained_variance_ratio_[:10].sum())
    metrics = {
        "seed": seed, "quick": quick, "epochs": epochs, "alpha": alpha, "n_train": len(tr), "n_test": len(te),
        "train_nll": h.nll[-1], "test_nll": h.val_nll[-1],
        "component_variance": var, "pca_eigenvalues": pca.explained_variance_,
        "top10_variance_fraction_flow": top10_flow, "top10_variance_fraction_pca": top10_pca,
        "median_local_std": np.median(comp.local_std[ok], axis=0), "n_singular": int(comp.singular.sum()),
        "inverse_max_abs_error": recon_err, "history": h.to_dict(),
    }
    rep = Report("flows-digits: traversals along the top un-whitened components of a flow on 8×8 digits")
    rep.add_text(
        f"Following {_PAPER} (the paper uses MNIST; we use scikit-learn's 8×8 digits, allowed by issue 4). "
        "Pixels dequantised uniformly into (0, 1). Flow: invertible MLP (3 × [full 64×64 affine → PReLU] → "
        f"affine), minibatch Adam for {epochs} epochs, Jacobian penalty α = {alpha:g} estimated by Hutchinson "
        "(one Rademacher probe per sample). Traversal: for a test digit, the un-whitened component k "
        "ẑ_k = u_kᵀz/s_k is moved by c·std(ẑ_k) (c ∈ {−2, −1, 0, 1, 2}) along the latent direction u_k and "
        "decoded with the flow's exact inverse. The paper gives no numbers to compare; we report NLLs, the "
        "variance spectrum against PCA, and the inverse's round-trip error."
    )
    rep.add_table(["quantity", "value"], [
        ["train NLL (nats/image)", h.nll[-1]], ["test NLL (nats/image)", h.val_nll[-1]],
        ["top-10 variance fraction, un-whitened components", top10_flow],
        ["top-10 variance fraction, PCA", top10_pca],
        ["max |x − g⁻¹(g(x))|", recon_err], ["points with singular J", int(comp.singular.sum())],
    ])
    for b, imgs in enumerate(grids):
        rep.add_figure(plots.traversal_grid(imgs, steps, [f"comp. {k + 1}" for k in range(k_top)]),
                       f"traversals_{b}", f"Test digit {b}: rows = top un-whitened components, columns = steps.")
    rep.add_figure(plots.spectrum_plot({"var(ẑ) un-whitened components": var,
                                        "PCA eigenvalues": pca.explained_variance_}),
                   "spectrum", "Variance of each un-whitened component (ordered by local std) and PCA's spectrum.")
    rep.add_figure(plots.convergence_plot({"train NLL − min + 1e-3": (np.arange(1, epochs + 1),
                                                                     np.array(h.nll) - min(h.nll) + 1e-3)},
                                          ylabel="NLL excess (nats)"), "training", "Training NLL (shifted).")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return {"train NLL (nats/image)": h.nll[-1], "test NLL (nats/image)": h.val_nll[-1],
            "top-10 variance fraction flow (PCA)": f"{top10_flow:.3f} ({top10_pca:.3f})",
            "inverse round-trip max error": recon_err}
