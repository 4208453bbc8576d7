"""``linlens reproduce flows-linear``: a linear flow's un-whitened components are the PCA scores; with the
Jacobian penalty α the learned WᵀW is (S + 2αI)⁻¹ (covariance shrinkage).

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from linlens.flows import (
    LinearFlow,
    train_flow,
    unwhitened_components,
)
from linlens.nn import resolve_device
from linlens.report import Report
from linlens.report import flows_figures as ffig
from linlens.report.figures import plot_singular_spectra
from linlens.workflows.reproduce.flows_common import PAPER, say, setup

__all__ = ["run_linear"]


def run_linear(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
               console: Any = None) -> dict[str, Any]:
    """Linear flow on Gaussian data: components = PCA scores; penalty α gives WᵀW = (S + 2αI)⁻¹.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "notes.txt").write_text("not a report")
        >>> run_linear(folder)  # an existing folder is refused before any work  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
    """
    setup(out, force, seed)
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
        f"Reproduces the linear theory of {PAPER}. Data: n = {n} Gaussian samples in d = {d} with a random "
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
        say(console, f"linear flow, L-BFGS, α = {alpha:g}")
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
        say(console, f"linear flow, {label}, α = 0.1, {epochs} epochs")
        f = LinearFlow(d, seed=seed + 1).double()
        h = train_flow(f, X, epochs=epochs, lr=1e-2, lr_decay=decay, jacobian_penalty=0.1, device=dev,
                       callback=lambda ep, e: {"rel_err": rel_err(e, 0.1)}, callback_every=max(1, epochs // 200))
        curves[f"{label}, α = 0.1"] = ([e for e, _ in h.records], [r["rel_err"] for _, r in h.records])
        metrics["runs"][f"{label}, alpha=0.1"] = {"final_rel_err": rel_err(f, 0.1), "epochs": epochs}
        summary[f"{label} (α=0.1): final rel. error"] = rel_err(f, 0.1)
    rep.add_heading("Theory against training")
    rep.add_table(["α", "‖WᵀW − (S+2αI)⁻¹‖/‖·‖", "target", "min |corr| vs PCA", "target",
                   "max rel. err. var(ẑ) vs eig(S)", "max rel. err. local var vs eig(S)+2α", "verdict"], rows)
    rep.add_figure(ffig.plot_components_vs_pca(first_comp, scores), "components_vs_pca",
                   "α = 0: each un-whitened component against scikit-learn's PCA score of the same rank.")
    rep.add_figure(plot_singular_spectra({"eigenvalues of S": eig_S, "var(ẑ), α = 0.1":
                                        metrics["runs"]["alpha=0.1"]["component_variance"],
                                        "median local variance 1/s², α = 0.1":
                                        metrics["runs"]["alpha=0.1"]["local_variance"],
                                        "eigenvalues of S + 0.2 I": eig_S + 0.2},
                                         ylabel="variance", xlabel="component", title=""),
                   "spectrum", "Component variances equal the eigenvalues of S; the flow's own local variance "
                   "is the shrunk spectrum S + 2αI.")
    rep.add_figure(ffig.plot_convergence(curves, title="relative error of WᵀW against (S + 2αI)⁻¹"),
                   "convergence", "Full-batch L-BFGS reaches the closed form in a few steps. Final relative "
                   "errors of full-batch Adam in this run: constant rate "
                   f"{metrics['runs']['Adam, constant lr 1e-2, alpha=0.1']['final_rel_err']:.2g}, decaying rate "
                   f"{metrics['runs']['Adam, lr 1e-2 decaying ×0.05, alpha=0.1']['final_rel_err']:.2g} (the "
                   "prototype saw constant-rate Adam reach 1e-15 and drift back to 1.6e-3; we did not see that "
                   "drift here).")
    rep.metrics.update(metrics)
    rep.write(out, force)
    return summary
