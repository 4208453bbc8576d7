"""``linlens flows``: the local covariance and un-whitened components of the user's flow on the user's data.

The flow is an encoder x → (z, log|det ∂z/∂x|): a zuko flow named as ``package.module:attr`` (zuko's
``Flow``/``LazyDistribution``; ``flow().transform`` gives the x → z map and its log-determinant), a transform
with ``call_and_ladj``, or a TorchScript encoder returning ``(z, logabsdet)``. On (a sample of) the data it reads
off J(x) = ∂z/∂x = U diag(s) Vᵀ: the local covariance Σ(x) = (JᵀJ)⁻¹ = V diag(1/s²) Vᵀ, local standard deviations
1/s and directions V, the un-whitened components ẑ = diag(1/s) Uᵀ z and traversals along them, and σ_max(J) over
the data (against 1/√(2α) when the Jacobian penalty α is given). PCA of the same data stands beside every
component result: it is what a linear flow would give (for a linear flow the two coincide exactly).

Points where J is numerically singular (σ_min ≤ tol · σ_max) are counted and left out, never divided by.

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
from scipy.stats import norm
from torch import nn

from linlens.errors import ConfigError, ModelError, ShapeError
from linlens.flows import (
    ZukoEncoder,
    as_encoder,
    encode,
    encoder_jacobians,
    local_covariance,
    unwhitened_components,
)
from linlens.linalg import svd
from linlens.loaders import load_array, load_model
from linlens.nn import resolve_device
from linlens.report import Report, check_destination
from linlens.report import flows_figures as ffig
from linlens.report.figures import plot_singular_spectra

__all__ = ["run_flows", "load_flow", "MAX_JACOBIAN_NUMBERS"]

MAX_JACOBIAN_NUMBERS = 2**25
"""Largest n_points · d² kept in memory (about 256 MiB per (n, d, d) array; a handful of them are held)."""

_STEPS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
_N_CI = 10  # components with bootstrap intervals
_N_BOOT = 500


def load_flow(spec: str, device: str = "auto", trust_model: bool = False) -> Any:
    """Load the user's flow as a linlens encoder: a TorchScript file or ``package.module:attr`` (code runs).

    Arguments:
        spec: path of a TorchScript encoder returning ``(z, logabsdet)``, or ``package.module:attr`` naming a
            zuko flow, a transform with ``call_and_ladj`` or any callable returning ``(z, logabsdet)``.
        device: torch device ("auto": CUDA when available, :func:`linlens.nn.resolve_device`).
        trust_model: load a TorchScript file (a program: refused without it).

    Returns:
        An encoder (callable x → (z, logabsdet)).

    Example:
        >>> load_flow("flow.pt")
        Traceback (most recent call last):
        ...
        linlens.errors.InputFileError: model: file not found: flow.pt (and it is not a 'package.module:attr' spec)
    """
    return as_encoder(load_model(spec, device=device, trust_model=trust_model))


def _flow_features(enc: Any) -> int | None:
    """The dimension the flow models, when it says so (zuko's event shape, linlens flows' ``features``)."""
    if isinstance(enc, ZukoEncoder):
        try:
            dist = enc.flow() if isinstance(enc.flow, nn.Module) else enc.flow
            shape = tuple(dist.event_shape)
        except Exception:  # noqa: BLE001 - a conditional flow or an odd object: fall back to a trial call
            return None
        return int(shape[0]) if len(shape) == 1 else None
    f = getattr(enc, "features", None)
    return int(f) if isinstance(f, int) else None


def _prepare(enc: Any, X: np.ndarray, device: torch.device) -> torch.dtype:
    """Check the data fits the flow, and run it in float64 when it allows that (else its own dtype)."""
    d = X.shape[1]
    feats = _flow_features(enc)
    if feats is not None and feats != d:
        raise ShapeError(f"--data has d = {d} columns but the flow models {feats} features")
    if isinstance(enc, nn.Module):
        own = next((p.dtype for p in enc.parameters()), torch.float32)
        try:
            enc.double()
            encode(enc, torch.as_tensor(X[:2], dtype=torch.float64, device=device))
            return torch.float64
        except Exception:  # noqa: BLE001 - the flow may hard-code float32; run it as it is
            enc.to(own)
    dtype = next((p.dtype for p in getattr(enc, "parameters", lambda: [])()), torch.float64)
    try:
        encode(enc, torch.as_tensor(X[:2], dtype=dtype, device=device))
    except ShapeError:
        raise
    except ModelError as exc:
        raise ModelError(f"the flow cannot encode --data (d = {d} columns): {exc}") from None
    return dtype


def _median_ci(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """95 % percentile-bootstrap interval of the column medians of ``values`` ``(m, k)`` → ``(k, 2)``."""
    m = len(values)
    meds = np.empty((_N_BOOT, values.shape[1]))
    for b in range(_N_BOOT):
        meds[b] = np.median(values[rng.integers(0, m, m)], axis=0)
    return np.quantile(meds, [0.025, 0.975], axis=0).T


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = norm.ppf(0.975)
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else max(0.0, c - h), 1.0 if k == n else min(1.0, c + h))


def _traversals(enc: Any, dtype: torch.dtype, device: torch.device, Xa: np.ndarray, z: np.ndarray, uc: Any,
                base: np.ndarray, k_top: int, mean: np.ndarray, pca_axes: np.ndarray, pca_std: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """Flow traversals (n_base, k_top, steps, d) by the exact inverse when there is one, and PCA's beside.

    Step c along component k moves ẑ_k by c local standard deviations: z ↦ z + c u_k (u_k the latent
    direction), decoded by the flow's inverse; without an inverse, the first-order step x + c (1/s_k) v_k.
    PCA's traversal moves the same point by c global standard deviations along PCA axis k.
    """
    d = Xa.shape[1]
    flow = np.zeros((len(base), k_top, len(_STEPS), d))
    pca = np.zeros_like(flow)
    how = "exact inverse"
    inverse = getattr(enc, "inverse", None)
    for i, b in enumerate(base):
        for k in range(k_top):
            pca[i, k] = Xa[b] + np.outer(_STEPS * pca_std[k], pca_axes[k])
            linear = Xa[b] + np.outer(_STEPS * uc.local_std[b, k], uc.directions[b, :, k])
            if inverse is not None and how == "exact inverse":
                zs = z[b] + np.outer(_STEPS, uc.latent_directions[b, :, k])
                try:
                    with torch.no_grad():
                        xs = inverse(torch.as_tensor(zs, dtype=dtype, device=device))
                    xs = xs.detach().cpu().double().numpy()
                    if xs.shape != zs.shape or not np.isfinite(xs).all():
                        raise ValueError("non-finite or misshapen inverse")
                    flow[i, k] = xs
                    continue
                except Exception:  # noqa: BLE001 - an inverse that fails: say so and use first order
                    how = "first order (the flow's inverse failed)"
            elif inverse is None:
                how = "first order (the flow has no inverse)"
            flow[i, k] = linear
    if how != "exact inverse":  # one rule for every path
        for i, b in enumerate(base):
            for k in range(k_top):
                flow[i, k] = Xa[b] + np.outer(_STEPS * uc.local_std[b, k], uc.directions[b, :, k])
    return flow, pca, how


def run_flows(
    model: str,
    data: Path,
    out: Path = Path("linlens-flows"),
    force: bool = False,
    alpha: float | None = None,
    device: str = "auto",
    seed: int = 0,
    max_points: int = 2000,
    tol: float | None = None,
    console: Any = None,
    trust_model: bool = False,
) -> dict[str, Any]:
    """Local covariance, local standard deviations and directions, un-whitened components and traversals of a
    flow on data, σ_max(J) over the data, with PCA of the same data beside every component result.

    Arguments:
        model: TorchScript encoder file or ``package.module:attr`` (see :func:`load_flow`).
        data: data file ``(n_samples, d)`` (``.npy``, ``.npz``, ``.pt``, ``.csv``).
        out: report folder.
        force: overwrite ``out``.
        alpha: the Jacobian Tikhonov penalty the flow was trained with; σ_max(J) is compared with 1/√(2α).
        device: torch device ("auto", "cpu", "cuda", …).
        seed: seed of the point sample, bootstrap and traversal base points.
        max_points: at most this many rows are analysed (a seeded random sample).
        tol: J counts as singular where σ_min ≤ tol · σ_max (default d · eps of the flow's dtype).
        console: rich console for progress lines (None: silent).
        trust_model: load a TorchScript file (a program: refused without it).

    Returns:
        headline numbers (also in ``metrics.json`` with every other number).

    Example:
        >>> import tempfile
        >>> run_flows("flow.pt", Path("x.npy"), Path(tempfile.mkdtemp()) / "report", alpha=-1.0)
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --alpha must be a positive number; got -1.0
    """
    check_destination(out, force)
    if alpha is not None and not (alpha > 0 and math.isfinite(alpha)):
        raise ConfigError(f"--alpha must be a positive number; got {alpha}")
    if max_points < 1:
        raise ConfigError(f"--max-points must be >= 1; got {max_points}")
    if tol is not None and not (0 < tol < 1):
        raise ConfigError(f"--tol must be in (0, 1); got {tol}")

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg, highlight=False)

    dev = resolve_device(device)
    X = load_array(data, "data")
    n, d = X.shape
    if n < 2:
        raise ShapeError(f"--data must have at least 2 rows; got {n}")
    m = min(n, max_points)
    if m * d * d > MAX_JACOBIAN_NUMBERS:
        raise ConfigError(
            f"{m} points × d² = {m * d * d:.3g} Jacobian entries exceed the {MAX_JACOBIAN_NUMBERS:.3g} this command "
            f"keeps in memory; lower --max-points to at most {max(1, MAX_JACOBIAN_NUMBERS // (d * d))}"
        )
    enc = load_flow(model, device=str(dev), trust_model=trust_model)
    dtype = _prepare(enc, X, dev)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, m, replace=False)) if m < n else np.arange(n)
    Xa = X[rows]
    say(f"flow: Jacobians at {m} of {n} points (d = {d}, {str(dtype).replace('torch.', '')})")
    batch = max(1, min(2048, 2**24 // (d * d)))
    z, J = encoder_jacobians(enc, Xa, batch_size=batch)
    tol = tol if tol is not None else d * float(torch.finfo(dtype).eps)
    lc = local_covariance(enc, Xa, tol=tol, on_singular="mask", jacobians=(z, J))
    uc = unwhitened_components(enc, Xa, tol=tol, on_singular="mask", jacobians=(z, J))
    ok = ~lc.singular
    n_ok, n_sing = int(ok.sum()), int(lc.singular.sum())
    if n_ok == 0:
        raise ModelError(
            f"the flow's Jacobian is singular (σ_min ≤ {tol:.3g} σ_max) at all {m} points: it is not invertible "
            "on this data"
        )
    # the flow's own log-determinant against log|det J| from its Jacobian
    k_ld = min(m, 256)
    with torch.no_grad():
        _, ladj = encode(enc, torch.as_tensor(Xa[:k_ld], dtype=dtype, device=dev))
    ladj = ladj.detach().cpu().double().numpy()
    with np.errstate(divide="ignore"):  # log 0 = −inf at singular points, excluded just below
        logdet_J = np.sum(np.log(lc.singular_values[:k_ld]), axis=1)
    fin = np.isfinite(logdet_J)
    logdet_err = float(np.max(np.abs(ladj[fin] - logdet_J[fin]))) if fin.any() else float("nan")
    logdet_tol = 1e-6 if dtype == torch.float64 else 1e-2
    logdet_ok = bool(logdet_err <= logdet_tol * (1 + float(np.max(np.abs(logdet_J[fin]), initial=0.0))))

    say("PCA of the data, components, traversals")
    mean = X.mean(axis=0)
    _, s_pca, Vt = svd(X - mean)
    pca_std = np.zeros(d)
    pca_std[: len(s_pca)] = s_pca / math.sqrt(n)  # MLE, the covariance a flow's likelihood sees
    axes = np.zeros((d, d))
    axes[: Vt.shape[0]] = Vt
    scores = (Xa - mean) @ axes.T
    std_ok = lc.local_std[ok]
    comp_ok = uc.components[ok]
    k_ci = min(d, _N_CI)
    ci = _median_ci(std_ok[:, :k_ci], rng)
    med_std = np.median(std_ok, axis=0)
    comp_var = comp_ok.var(axis=0)
    corr = np.array([
        abs(float(np.corrcoef(comp_ok[:, k], scores[ok, k])[0, 1])) if comp_ok[:, k].std() > 0 and
        scores[ok, k].std() > 0 else float("nan") for k in range(d)
    ])
    align = np.mean(np.abs(np.einsum("nik,ki->nk", lc.directions[ok], axes)), axis=0)  # |cos(v_k, PCA axis k)|
    S = np.cov(X.T, bias=True).reshape(d, d)
    mean_cov = lc.covariance[ok].mean(axis=0)
    cov_rel = float(np.linalg.norm(mean_cov - S) / max(np.linalg.norm(S), 1e-300))
    sig_max = lc.singular_values[ok, 0]
    sig_q = np.quantile(sig_max, [0.05, 0.5, 0.95])

    k_top = min(3, d)
    base = np.sort(rng.choice(np.flatnonzero(ok), min(3, n_ok), replace=False))
    trav, trav_pca, how = _traversals(enc, dtype, dev, Xa, z, uc, base, k_top, mean, axes, pca_std)

    metrics: dict[str, Any] = {
        "model": model, "data": str(data), "seed": seed, "n_rows": n, "d": d, "n_analysed": m,
        "analysed_rows": "all" if m == n else f"random sample of {m} (--max-points {max_points}, seed {seed})",
        "dtype": str(dtype).replace("torch.", ""), "singular_tol": tol, "n_singular_left_out": n_sing,
        "n_used": n_ok,
        "median_local_std": med_std, "median_local_std_ci95": ci, "pca_std": pca_std,
        "component_variance": comp_var, "pca_variance": pca_std**2,
        "abs_corr_component_vs_pca_score": corr, "mean_abs_cos_local_direction_vs_pca_axis": align,
        "mean_local_covariance_vs_data_covariance_rel_frobenius": cov_rel,
        "sigma_max": {"q05": sig_q[0], "median": sig_q[1], "q95": sig_q[2], "max": float(sig_max.max())},
        "logdet": {"checked_points": k_ld, "max_abs_diff_returned_vs_from_J": logdet_err, "consistent": logdet_ok},
        "traversals": {"steps": _STEPS, "base_rows": rows[base], "decoded_by": how,
                       "unit": "flow: local std of the component at the base point; PCA: global std of the axis"},
    }
    if d <= 64:
        metrics["traversals"]["flow"] = trav
        metrics["traversals"]["pca"] = trav_pca
    summary: dict[str, Any] = {
        "data rows / dimension": f"{n} / {d}",
        "points analysed (left out: singular J)": f"{n_ok} ({n_sing})",
    }
    for k in range(k_top):
        summary[f"comp {k + 1}: median local std [95% CI] (PCA std)"] = (
            f"{med_std[k]:.4g} [{ci[k, 0]:.4g}, {ci[k, 1]:.4g}] ({pca_std[k]:.4g})")
        summary[f"comp {k + 1}: |corr| with PCA score {k + 1}"] = corr[k]
    summary["σ_max(J): median (95th percentile)"] = f"{sig_q[1]:.4g} ({sig_q[2]:.4g})"
    bound_text = ""
    if alpha is not None:
        bound = 1 / math.sqrt(2 * alpha)
        above = int(np.sum(sig_max > bound * (1 + 1e-9)))
        lo, hi = _wilson(above, n_ok)
        ratio_ci = _median_ci((sig_max / bound)[:, None], rng)[0]
        metrics["alpha"] = alpha
        metrics["tikhonov_bound"] = {
            "bound_1_over_sqrt_2alpha": bound, "n_above": above, "fraction_above": above / n_ok,
            "fraction_above_ci95_wilson": [lo, hi], "median_ratio": float(np.median(sig_max / bound)),
            "median_ratio_ci95": ratio_ci, "max_ratio": float(sig_max.max() / bound),
        }
        summary[f"σ_max(J) / (1/√(2α) = {bound:.4g}): median [95% CI]"] = (
            f"{np.median(sig_max / bound):.4g} [{ratio_ci[0]:.4g}, {ratio_ci[1]:.4g}]")
        summary["points with σ_max(J) above 1/√(2α) [95% CI]"] = f"{above / n_ok:.3g} [{lo:.3g}, {hi:.3g}]"
        bound_text = (
            f" With the Jacobian penalty α = {alpha:g}, the theory floors every local variance at about 2α, so "
            f"σ_max(J) ≲ 1/√(2α) = {bound:.4g} (exact for a linear flow at its optimum): σ_max exceeds it at "
            f"{above} of {n_ok} points (fraction {above / n_ok:.3g}, 95% Wilson interval [{lo:.3g}, {hi:.3g}])."
        )
    summary["log|det J|: flow's value vs from J, max |diff|"] = logdet_err

    rep = Report("linlens flows: local covariance and un-whitened components of a flow")
    rep.add_text(
        f"Flow {model} on {Path(data).name}: {n} rows in d = {d}; {m} analysed "
        f"({metrics['analysed_rows']}), run in {metrics['dtype']}. J(x) = ∂z/∂x = U diag(s) Vᵀ at every analysed "
        "point: local covariance Σ(x) = (JᵀJ)⁻¹ = V diag(1/s²) Vᵀ, local standard deviations 1/s (component k = "
        "k-th largest), local directions V, un-whitened components ẑ = diag(1/s) Uᵀ z (Feinman & Parthasarathy, "
        f"arXiv:1907.06496). {n_sing} point(s) with σ_min(J) ≤ {tol:.3g}·σ_max(J) (numerically singular: the flow "
        "is not invertible there) are left out of every number below; nothing is divided by a zero singular value. "
        "Baseline beside every component result: PCA of the same data (global standard deviations, scores and "
        "axes); for a linear flow the two coincide exactly, so the differences are what the flow's nonlinearity "
        "adds. Intervals: 95% percentile bootstrap over the analysed points." + bound_text
    )
    if not logdet_ok:
        rep.add_text(
            f"Warning: the log-determinant the flow returns differs from log|det J| computed from its Jacobian by up "
            f"to {logdet_err:.3g} on {k_ld} points: the flow's likelihood is not the one its map implies (the "
            "Jacobian analysis above does not use the returned value)."
        )
    rep.add_heading("Components against PCA")
    rep.add_table(
        ["component", "median local std [95% CI]", "PCA std", "var(ẑ_k)", "PCA variance",
         "|corr(ẑ_k, PCA score k)|", "mean |cos(v_k, PCA axis k)|"],
        [[k + 1, f"{med_std[k]:.4g} [{ci[k, 0]:.4g}, {ci[k, 1]:.4g}]" if k < k_ci else f"{med_std[k]:.4g}",
          pca_std[k], comp_var[k], pca_std[k] ** 2, corr[k], align[k]] for k in range(min(d, 20))],
        caption="Component k: the k-th largest local standard deviation (un-whitened component), and PCA's k-th axis.",
    )
    rep.add_text(
        f"Mean local covariance E[Σ(x)] against the data covariance S: relative Frobenius difference {cov_rel:.3g} "
        "(0 for a linear flow; by the law of total covariance a flow that captures structure has E[Σ(x)] below S). "
        f"σ_max(J) over the data: 5% {sig_q[0]:.4g}, median {sig_q[1]:.4g}, 95% {sig_q[2]:.4g}, max "
        f"{sig_max.max():.4g}. Traversals ({how}): component k of a base point moved by c ∈ {{−2, …, 2}} local "
        "standard deviations; PCA's traversal moves the same point by c global standard deviations along its axis k."
    )
    R = axes
    Xr = (X - mean) @ R.T
    if d >= 2:
        show = np.flatnonzero(ok)[np.linspace(0, n_ok - 1, min(120, n_ok)).astype(int)]
        cov_r = R @ lc.covariance[show] @ R.T  # batched BLAS (a three-operand einsum loops unblocked)
        dir_r = np.einsum("ij,njk->nik", R, lc.directions[show])
        fig = ffig.plot_local_covariance(((Xa[show] - mean) @ R.T), cov_r, dir_r, lc.local_std[show], dims=(0, 1),
                                          n_show=len(show), title="local covariance (×0.25 std), PCA axes 1–2")
        fig.axes[0].scatter(Xr[:, 0], Xr[:, 1], s=1, c="0.85", zorder=0)
        fig.axes[0].set_xlabel("PCA axis 1")
        fig.axes[0].set_ylabel("PCA axis 2")
        rep.add_figure(fig, "local_covariance", "Local covariance ellipses and top local direction at analysed "
                       "points, in the plane of PCA's first two axes.")
        fp = np.einsum("bksd,ed->bkse", trav - mean, R[:2]).reshape(-1, len(_STEPS), 2)
        pp = np.einsum("bksd,ed->bkse", trav_pca - mean, R[:2]).reshape(-1, len(_STEPS), 2)
        labels = [f"point {i + 1}, comp {k + 1}" for i in range(len(base)) for k in range(k_top)]
        rep.add_figure(ffig.plot_traversal_paths(Xr[:, :2], fp, pp, labels), "traversals",
                       "Traversals along the top components (solid, flow) and PCA's axes (dashed), PCA plane.")
    side = int(round(math.sqrt(d)))
    if side * side == d and d >= 16:
        lo_v, hi_v = float(X.min()), float(X.max())
        imgs = np.concatenate([trav[0], trav_pca[0]]).reshape(2 * k_top, len(_STEPS), side, side)
        imgs = (imgs - lo_v) / max(hi_v - lo_v, 1e-300)
        rep.add_figure(ffig.plot_traversal_grid(np.clip(imgs, 0, 1), _STEPS,
                                            [f"flow {k + 1}" for k in range(k_top)] + [f"PCA {k + 1}" for k in
                                                                                        range(k_top)]),
                       "traversal_images", "First base point as an image: rows = flow components, then PCA axes.")
    rep.add_figure(plot_singular_spectra({"median local variance 1/s²": med_std**2, "var(ẑ_k)": comp_var,
                                        "PCA variance": pca_std**2},
                                         ylabel="variance", xlabel="component", title=""), "spectrum",
                   "Local variances and component variances of the flow against PCA's spectrum.")
    kc = min(d, 4)
    rep.add_figure(ffig.plot_components_vs_pca(comp_ok[:, :kc], scores[ok, :kc]), "components_vs_pca",
                   "Each un-whitened component against PCA's score of the same rank.")
    rep.add_figure(ffig.plot_sigma_max(sig_max, 1 / math.sqrt(2 * alpha) if alpha else None), "sigma_max",
                   "σ_max(J) over the analysed points" + (" with 1/√(2α)." if alpha else "."))
    rep.metrics = metrics
    rep.write(out, force)
    return summary
