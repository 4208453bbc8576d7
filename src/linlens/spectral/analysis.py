"""The Fourier-route answer to "is the network's surrogate close to A⁻¹, to Wiener, to C_data?"
(:func:`spectral_analysis`, data-weighted errors of a :class:`~linlens.spectral.surrogate.SpectralSurrogate`
with bootstrap intervals and the verdict), and test errors of predictors on held-out images.

Example:
    >>> r = errors_from_squares({"model": np.array([0.02, 0.02]), "C_data": np.array([0.08, 0.06])}, 2, 1.0)
    >>> round(r["mse"]["C_data"], 6)
    0.035
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.operators import as_operator
from linlens.spectral.radial import _multiplicity, _radial_bins, frequency_radii, radial_average, self_conjugate
from linlens.spectral.surrogate import SpectralSurrogate, SpectralSurrogateResult
from linlens.spectral.wiener import prior_spectrum, wiener_filter
from linlens.stats import (
    ClosestVerdict,
    bootstrap_from_replicates,
    closest_reference,
    gain_split,
    paired_difference,
    paired_squared_error_test,
)
from linlens.validation import check_noise_std

__all__ = [
    "SpectralAnalysis",
    "spectral_analysis",
    "prediction_errors",
    "errors_from_squares",
]

@dataclass(frozen=True)
class SpectralAnalysis(ResultMixin):
    """The Fourier-route answer to "is the network's surrogate close to A⁻¹, to Wiener, to C_data?".

    Arguments:
        surrogate: :class:`SpectralSurrogateResult` of the network.
        operator_transfer: H(k) of A (rfftn layout).
        wiener: Ŵ(k) (rfftn layout); prior_spectrum: P(k) used for it; noise_std: σ.
        filter_factors: φ(k) = Ĉ(k) H(k) of the network's surrogate; wiener_filter_factors: Ŵ(k) H(k).
        errors: reference name → data-weighted error E‖(C − R)y‖² / E‖Ry‖² over the probes (Parseval:
            Σ_k |Ĉ − R̂|² S_yy / Σ_k |R̂|² S_yy), for "A⁻¹" (pseudo-inverse 1/H where |H| > rcond·max|H|),
            "Wiener" and "C_data" (when given).
        errors_corrected: name → bias-corrected error 2θ̂ − mean of the replicates (estimation noise in Ĉ biases
            a squared distance upward; the basic interval is centred on this, not on θ̂).
        error_intervals: name → (low, high) basic bootstrap interval.
        closest: the verdict of :func:`linlens.surrogate.resampling.closest_reference` (the same rule as the
            dense route): a reference's name, "tie" (see ``verdict.closest``) or "none". The intervals resample
            the probe images only: references estimated from data (C_data, a Wiener filter with an estimated
            prior) are treated as fixed.
        verdict: the full :class:`~linlens.surrogate.resampling.ClosestVerdict` (None without replicates).
        paired: "R1 − R2" → {"difference", "low", "high", "p_value"} of the paired bootstrap of the errors.
        radial_filter_factors: (n_bins,) radial mean of Re φ; radial_operator_abs: radial mean of |H|;
        radial_wiener_abs: radial mean of |Ŵ|; radii: (n_bins,).
        signal_noise: the surrogate's expected test error split as on the dense route, per unit of E‖x‖² = Σ P:
            "signal_error" Σ|ĈH − 1|²P over the frequencies A sees, "noise_amplification" σ²Σ|Ĉ|², "null_space_error"
            ΣP over those it does not, "total" — each {plug_in, estimate (bias-corrected), low, high} (Poisson
            bootstrap over probe images, basic intervals; the null-space part does not depend on Ĉ).
        reference_status: reference → "fixed …" or "estimated: resampled with …" (see ``prior_from_data``).
        reference_signal_noise: the same split (plug-in values) of A⁻¹, the Wiener filter and C_data.
        radial_signal_error, radial_noise_amplification: (n_bins,) the surrogate's two terms per annulus of |k|
            (sums over the annulus: they add up to the totals, less the corners beyond the Nyquist circle in 2-D).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.standard_normal((200, 16))
        >>> Y = X + 0.1 * rng.standard_normal((200, 16))
        >>> a = spectral_analysis(SpectralSurrogate(n_boot=20).fit(Y, Y), np.ones(9, complex), 0.1, targets=X)
        >>> bool(np.allclose(a.filter_factors, 1.0)), a.closest, round(a.errors["A⁻¹"], 12)  # A = I: f = A⁻¹
        (True, 'A⁻¹', 0.0)
    """

    surrogate: SpectralSurrogateResult
    operator_transfer: np.ndarray
    wiener: np.ndarray
    prior_spectrum: np.ndarray
    noise_std: float
    filter_factors: np.ndarray
    wiener_filter_factors: np.ndarray
    errors: dict[str, float]
    errors_corrected: dict[str, float]
    error_intervals: dict[str, tuple[float, float]]
    closest: str
    verdict: ClosestVerdict | None
    paired: dict[str, dict[str, float]]
    radii: np.ndarray
    radial_filter_factors: np.ndarray
    radial_wiener_filter_factors: np.ndarray
    radial_operator_abs: np.ndarray
    radial_wiener_abs: np.ndarray
    signal_noise: dict[str, dict[str, float]] | None = None
    reference_status: dict[str, str] | None = None
    reference_signal_noise: dict[str, dict[str, float]] | None = None
    radial_signal_error: np.ndarray | None = None
    radial_noise_amplification: np.ndarray | None = None


def _error_standard_error(C: np.ndarray, R: np.ndarray, Syy: np.ndarray, Sff: np.ndarray, n: Any, w: np.ndarray,
                          real: np.ndarray, e: Any, ref_noise: tuple[str, np.ndarray, Any] | None = None
                          ) -> np.ndarray:
    """Delta-method standard error of the data-weighted error e = Σ w|C − R|²S / Σ w|R|²S (S = S_yy), frequencies
    taken as independent (a stationary process's Fourier coefficients are asymptotically so); leading axes of the
    arrays (replicates) broadcast, so the same function gives the estimate's standard error and each replicate's
    (from the replicate's own spectra and weight total n): the studentizer of the bootstrap-t "none" test.

    To first order de = [Σ 2wS Re(conj(D) dC) − Σ 2wS Re(conj(D + eR) dR) + Σ w(|D|² − e|R|²) dS]/Σ w|R|²S
    (D = C − R), with E|dC(k)|² = S_rr(k)/(n S_yy(k)) (S_rr = S_ff − |C|²S_yy, the residual spectrum: the classical
    variance of a frequency-response estimate), Var Re(conj(X) dC) = |X|² E|dC|²/2 at complex frequencies (all of
    it at the real ones), and Var dS = S²/n (×2 at the real frequencies; a Gaussian input's periodogram average).
    ``ref_noise``: None (a fixed reference), ("complex", E|dR|², None) for an estimated transfer function (C_data),
    or ("real", ∂R/∂P, Var dP) for a reference re-estimated from a prior spectrum P (the Wiener filter).
    """
    nd = real.ndim
    axes = tuple(range(C.ndim - nd, C.ndim)) if C.ndim >= nd else tuple(range(R.ndim - nd, R.ndim))
    n = np.asarray(n, dtype=np.float64)
    n = n.reshape(n.shape + (1,) * nd) if n.ndim else n
    e = np.asarray(e, dtype=np.float64)
    e = e.reshape(e.shape + (1,) * nd) if e.ndim else e
    half = np.where(real, 1.0, 0.5)
    D = C - R
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sum(w * np.abs(R) ** 2 * Syy, axis=axes)
        ok = Syy > 0
        vC = np.where(ok, np.maximum(Sff - np.abs(C) ** 2 * Syy, 0.0) / (n * np.where(ok, Syy, 1.0)), 0.0)
        g = 2 * w * Syy
        v = np.sum(g * g * np.abs(D) ** 2 * vC * half, axis=axes)
        if ref_noise is not None:
            kind, a, b = ref_noise
            X = D + e * R
            if kind == "complex":
                v = v + np.sum(g * g * np.abs(X) ** 2 * a * half, axis=axes)
            else:
                v = v + np.sum(g * g * (X.real * a.real + X.imag * a.imag) ** 2 * b, axis=axes)
        v = v + np.sum((w * (np.abs(D) ** 2 - e * np.abs(R) ** 2)) ** 2 * Syy**2 * np.where(real, 2.0, 1.0) / n,
                       axis=axes)
        return np.sqrt(np.maximum(v, 0.0)) / den


def spectral_analysis(
    surrogate: SpectralSurrogate,
    operator: Any,
    noise_std: float,
    targets: Any = None,
    prior: Any = None,
    data_surrogate: SpectralSurrogate | None = None,
    ci: float = 0.95,
    rcond: float = 1e-12,
    prior_from_data: bool = False,
) -> SpectralAnalysis:
    """Compare a fitted :class:`SpectralSurrogate` with A⁻¹, the Wiener filter and C_data, in the Fourier domain.

    Arguments:
        surrogate: fitted on probe pairs (y, f(y)).
        operator: the forward operator A: a circular convolution in any form :func:`linlens.operators.as_operator`
            takes (for a deepinv-like object pass a :class:`LinearMap` built with ``in_shape``), or its transfer
            function H (complex array in rfftn layout).
        noise_std: σ of the white measurement noise.
        targets: clean images x (to estimate the prior spectrum P), or None when ``prior`` is given.
        prior: P(k) in rfftn layout (or a scalar for a white prior), used instead of ``targets``.
        data_surrogate: a :class:`SpectralSurrogate` fitted on (y, x) training pairs (C_data, the data estimate of
            the Wiener filter), optional.
        ci: level of the intervals.
        rcond: relative cut of |H| for the pseudo-inverse.
        prior_from_data: the ``targets`` are the training targets ``data_surrogate`` was fitted on (``targets``
            None: P is ``data_surrogate``'s output spectrum, the same images' spectrum, e.g. merged from blocks
            on Dask); then, when
            ``data_surrogate`` has as many replicates as ``surrogate``, the Wiener filter is re-estimated from each
            replicate's prior spectrum. (C_data is resampled whenever ``data_surrogate`` has those replicates:
            references that are estimates carry their own images' noise; σ is held fixed.)

    Returns:
        :class:`SpectralAnalysis`.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.standard_normal((200, 16))
        >>> Y = X + 0.1 * rng.standard_normal((200, 16))
        >>> a = spectral_analysis(SpectralSurrogate(n_boot=20).fit(Y, Y), np.ones(9, complex), 0.1, targets=X)
        >>> round(a.errors["Wiener"], 4)  # A = I, P ≈ 1, σ = 0.1: W = 1/(1 + σ²), error |1 − W|²/|W|² = σ⁴ = 1e-4
        0.0001
    """
    surrogate._check_fitted()
    shp = surrogate.image_shape_
    K = frequency_radii(shp).shape
    if isinstance(operator, np.ndarray) and np.iscomplexobj(operator) and operator.shape == K:
        H = operator.astype(np.complex128)
    else:
        op = as_operator(operator)
        H = op.transfer_function()
        if H.shape != K:
            raise ShapeError(f"operator acts on images of rfft shape {H.shape}; the surrogate's is {K}")
        rcond = max(rcond, op.transfer_rcond())  # a float32 operator's |H| below its rounding is not known ≠ 0
    if prior is None and targets is None and prior_from_data and data_surrogate is not None:
        P = np.asarray(data_surrogate.spectrum_out_, dtype=np.float64)  # its outputs are the training targets
    elif prior is None:
        if targets is None:
            raise ConfigError("spectral_analysis needs targets (clean images) or prior (their power spectrum)")
        P = prior_spectrum(targets, shp, surrogate.fit_intercept)
    else:
        P = np.broadcast_to(np.asarray(prior, dtype=np.float64), K).copy()
    W = wiener_filter(H, P, check_noise_std(noise_std, "noise_std"))
    absH = np.abs(H)
    ok = absH > rcond * absH.max()
    Hinv = np.where(ok, 1.0 / np.where(ok, H, 1.0), 0.0)
    refs = {"A⁻¹": Hinv, "Wiener": W}
    if data_surrogate is not None:
        data_surrogate._check_fitted()
        refs["C_data"] = data_surrogate.transfer_
    res = surrogate.result(ci)
    w = _multiplicity(shp)

    def err(C: np.ndarray, R: np.ndarray, Syy: np.ndarray) -> np.ndarray:
        axes = tuple(range(C.ndim - len(shp), C.ndim))
        num = np.sum(w * np.abs(C - R) ** 2 * Syy, axis=axes)
        return num / np.sum(w * np.abs(R) ** 2 * Syy, axis=axes)

    errors = {k: float(err(surrogate.transfer_, R, surrogate.spectrum_in_)) for k, R in refs.items()}
    intervals: dict[str, tuple[float, float]] = {}
    paired: dict[str, dict[str, float]] = {}
    names = list(refs)
    corrected: dict[str, float] = dict(errors)
    closest = "tie"
    verdict = None
    C_b = None
    status = {"A⁻¹": "fixed (from the operator)",
              "Wiener": "fixed (from the operator, σ and the prior spectrum" + (" given)" if prior is not None else
                                                                             " estimated from the targets)")}
    if surrogate.n_boot:
        # the same bias correction, basic intervals, paired tests and verdict rule as the dense route
        Syy_b, _, _, C_b, _ = surrogate._replicates()
        refs_b: dict[str, np.ndarray] = dict(refs)
        if data_surrogate is not None and data_surrogate.n_boot == surrogate.n_boot:
            _, P_b, _, D_b, _ = data_surrogate._replicates()  # Poisson replicates over the training images
            refs_b["C_data"] = D_b
            status["C_data"] = f"estimated: resampled with its own {int(data_surrogate.n_samples_)} training images"
            if prior_from_data and prior is None:
                refs_b["Wiener"] = wiener_filter(np.broadcast_to(H, P_b.shape), np.maximum(P_b, 0.0), noise_std)
                status["Wiener"] = ("estimated (prior spectrum from the training targets): resampled with them; "
                                    "σ held fixed")
        elif data_surrogate is not None:
            status["C_data"] = "estimated, held fixed (no replicates of its training images)"
        reps = {k: np.asarray(err(C_b, refs_b[k], Syy_b), dtype=np.float64) for k in refs}
        # analytic standard errors at the estimate and per replicate: the bootstrap-t "none" test (issue 21)
        real = self_conjugate(shp)
        sa = surrogate._acc
        n_a, n_b = float(surrogate.n_samples_), sa["bw"]
        _, Sff_b, _, _, _ = surrogate._replicates()
        noise: dict[str, tuple[Any, Any]] = dict.fromkeys(refs)
        if "C_data" in refs_b and refs_b["C_data"] is not refs["C_data"]:
            ds = data_surrogate
            Syy_d, Sff_d, _, _, _ = ds._replicates()
            with np.errstate(invalid="ignore", divide="ignore"):
                def var_c(Cd: np.ndarray, Sy: np.ndarray, Sf: np.ndarray, nn: Any) -> np.ndarray:
                    nn = np.asarray(nn, dtype=np.float64)
                    nn = nn.reshape(nn.shape + (1,) * len(shp)) if nn.ndim else nn
                    okd = Sy > 0
                    return np.where(okd, np.maximum(Sf - np.abs(Cd) ** 2 * Sy, 0.0) / (nn * np.where(okd, Sy, 1.0)),
                                    0.0)
            noise["C_data"] = (("complex", var_c(ds.transfer_, ds.spectrum_in_, ds.spectrum_out_,
                                                 float(ds.n_samples_)), None),
                               ("complex", var_c(refs_b["C_data"], Syy_d, Sff_d, ds._acc["bw"]), None))
            if refs_b["Wiener"] is not refs["Wiener"]:  # dŴ/dP = H*σ²/(|H|²P + σ²)², Var dP = P²/n (×2 real)
                def dW(Pk: np.ndarray) -> np.ndarray:
                    return np.conj(H) * noise_std**2 / (np.abs(H) ** 2 * Pk + noise_std**2) ** 2

                def var_p(Pk: np.ndarray, nn: Any) -> np.ndarray:
                    nn = np.asarray(nn, dtype=np.float64)
                    nn = nn.reshape(nn.shape + (1,) * len(shp)) if nn.ndim else nn
                    return Pk**2 * np.where(real, 2.0, 1.0) / nn
                P_b0 = np.maximum(P_b, 0.0)
                noise["Wiener"] = (("real", dW(P), var_p(P, float(ds.n_samples_))),
                                   ("real", dW(P_b0), var_p(P_b0, ds._acc["bw"])))
        se = {k: float(_error_standard_error(surrogate.transfer_, refs[k], surrogate.spectrum_in_,
                                             surrogate.spectrum_out_, n_a, w, real, errors[k],
                                             None if noise[k] is None else noise[k][0])) for k in refs}
        se_b = {k: np.asarray(_error_standard_error(C_b, refs_b[k], Syy_b, Sff_b, n_b, w, real, reps[k],
                                                    None if noise[k] is None else noise[k][1]), dtype=np.float64)
                for k in refs}
        boot = bootstrap_from_replicates(errors, reps, ci, standard_error=se, se_replicates=se_b)
        corrected = {k: float(boot.bias_corrected[k]) for k in names}
        intervals = {k: (float(boot.low[k]), float(boot.high[k])) for k in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                d = paired_difference(boot, a, b)
                paired[f"{a} − {b}"] = {"difference": d.estimate, "low": d.low, "high": d.high, "p_value": d.p_value}
        verdict = closest_reference(boot, names)
        closest = verdict.verdict
    # the signal / noise split per frequency (the dense route's SignalNoiseSplit in the Fourier basis)
    wP = w * P
    tot = float(np.sum(wP))

    def split(T: np.ndarray) -> dict[str, np.ndarray]:
        axes = tuple(range(T.ndim - len(shp), T.ndim))
        sig = np.where(ok, np.abs(T * H - 1.0) ** 2, 0.0) * wP
        noi = noise_std**2 * np.abs(T) ** 2 * w
        return {"signal_error": np.sum(sig, axis=axes) / tot, "noise_amplification": np.sum(noi, axis=axes) / tot,
                "per_freq_signal": sig / tot, "per_freq_noise": noi / tot}

    sn = None
    ref_sn = None
    r_sig = r_noise = None
    if tot > 0:
        null = float(np.sum(np.where(ok, 0.0, wP))) / tot
        sp = split(surrogate.transfer_)
        plug_sn = {k: float(sp[k]) for k in ("signal_error", "noise_amplification")}
        plug_sn["total"] = plug_sn["signal_error"] + plug_sn["noise_amplification"] + null
        sn = {k: {"plug_in": v, "estimate": v, "low": float("nan"), "high": float("nan")} for k, v in plug_sn.items()}
        sn["null_space_error"] = {"plug_in": null, "estimate": null, "low": null, "high": null}
        if surrogate.n_boot:
            sb = split(C_b)
            reps_sn = {"signal_error": sb["signal_error"], "noise_amplification": sb["noise_amplification"],
                       "total": sb["signal_error"] + sb["noise_amplification"] + null}
            bs = bootstrap_from_replicates(plug_sn, reps_sn, ci)
            for k in plug_sn:
                sn[k].update(estimate=float(bs.bias_corrected[k]), low=max(float(bs.low[k]), 0.0),
                             high=max(float(bs.high[k]), 0.0))
        ref_sn = {}
        for k, R in refs.items():
            rs = split(R)
            ref_sn[k] = {"signal_error": float(rs["signal_error"]),
                         "noise_amplification": float(rs["noise_amplification"]),
                         "total": float(rs["signal_error"] + rs["noise_amplification"]) + null}
        bins, _ = _radial_bins(shp)
        r_sig = np.array([float(np.sum(sp["per_freq_signal"][bins == j])) for j in range(bins.max() + 1)])
        r_noise = np.array([float(np.sum(sp["per_freq_noise"][bins == j])) for j in range(bins.max() + 1)])
    phi, phiW = surrogate.transfer_ * H, W * H
    radii, r_phi = radial_average(phi.real, shp)
    return SpectralAnalysis(
        surrogate=res, operator_transfer=H, wiener=W, prior_spectrum=P, noise_std=float(noise_std),
        filter_factors=phi, wiener_filter_factors=phiW, errors=errors, errors_corrected=corrected,
        error_intervals=intervals, closest=closest, verdict=verdict,
        paired=paired, radii=radii, radial_filter_factors=r_phi,
        radial_wiener_filter_factors=radial_average(phiW.real, shp)[1],
        radial_operator_abs=radial_average(absH, shp)[1], radial_wiener_abs=radial_average(np.abs(W), shp)[1],
        signal_noise=sn, reference_status=status, reference_signal_noise=ref_sn, radial_signal_error=r_sig,
        radial_noise_amplification=r_noise,
    )


def prediction_errors(predictions: dict[str, np.ndarray], targets: np.ndarray, *, model: str = "model",
                      baseline: str = "C_data", confidence: float = 0.95, surrogate: str | None = "auto",
                      **gain: Any) -> dict[str, Any]:
    """Test MSE (per entry) and PSNR of several predictors on the same images, and the network-vs-baseline test.

    PSNR = 10 log₁₀(range²/MSE) with range = max − min of the targets. The paired t-test compares per-image
    squared errors of ``model`` and ``baseline`` (negative difference: the model is better — NOT by itself a nonlinear
    gain: the baseline's test error includes its own estimation error); with the model's own linear surrogate among
    the predictions, :func:`linlens.stats.gain_split` splits that difference into the nonlinear part (model −
    surrogate) and the linear part (surrogate − baseline).

    Arguments:
        predictions: name → (n, d) predictions of the targets.
        targets: (n, d) (or any row shape) true images.
        model, baseline: the names compared by the paired test (skipped when either is missing).
        confidence: level of the paired interval.
        surrogate: the name of the model's own linear surrogate among the predictions ("auto": "surrogate" or
            "surrogate (in-sample)" when present; None: no split).
        gain: keyword arguments of :func:`~linlens.stats.gain_split` (``surrogate_bias``, ``surrogate_se``,
            ``truncated_fraction``) for a surrogate scored out of sample or on a subspace.

    Returns:
        {"mse": name → float, "psnr": name → float (dB), "paired": :class:`~linlens.stats.PairedTestResult` or None,
        "gain": :class:`~linlens.stats.GainSplit` or None}.

    Example:
        >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
        >>> r = prediction_errors({"model": X + 0.1, "C_data": X + 0.2}, X)
        >>> round(r["mse"]["model"], 6), round(r["psnr"]["model"], 3), r["paired"].difference < 0
        (0.01, 20.0, True)
    """
    Xt = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    sq = {k: np.sum((np.asarray(P, dtype=np.float64).reshape(Xt.shape) - Xt) ** 2, axis=1) for k, P in
          predictions.items()}
    return errors_from_squares(sq, Xt.shape[1], float(Xt.max() - Xt.min()), model=model, baseline=baseline,
                               confidence=confidence, surrogate=surrogate, **gain)


def errors_from_squares(squares: dict[str, np.ndarray], d: int, target_range: float, *, model: str = "model",
                        baseline: str = "C_data", confidence: float = 0.95, surrogate: str | None = "auto",
                        **gain: Any) -> dict[str, Any]:
    """:func:`prediction_errors` from per-image squared errors (computed block by block, e.g. on Dask workers).

    Arguments:
        squares: name → (n,) per-image sums of squared errors ‖x̂ᵢ − xᵢ‖².
        d: values per image; target_range: max − min of the targets (for the PSNR).
        model, baseline, confidence, surrogate, gain: as :func:`prediction_errors`.

    Example:
        >>> r = errors_from_squares({"model": np.array([0.02, 0.02]), "C_data": np.array([0.08, 0.06])}, 2, 1.0)
        >>> round(r["mse"]["model"], 6), round(r["psnr"]["model"], 3)
        (0.01, 20.0)
    """
    sq = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in squares.items()}
    n = len(next(iter(sq.values()))) if sq else 0
    mse = {k: float(v.sum() / (n * d)) for k, v in sq.items()}
    rng_ = float(target_range)
    psnr = {k: (10 * float(np.log10(rng_**2 / v)) if v > 0 and rng_ > 0 else float("inf")) for k, v in mse.items()}
    paired = (paired_squared_error_test(sq[model], sq[baseline], confidence)
              if model in sq and baseline in sq and n >= 2 else None)
    if surrogate == "auto":
        surrogate = next((k for k in ("surrogate", "surrogate (in-sample)") if k in sq), None)
    split = (gain_split(sq[model], sq[surrogate], sq[baseline], confidence=confidence, baseline=baseline, **gain)
             if paired is not None and surrogate in sq else None)
    return {"mse": mse, "psnr": psnr, "paired": paired, "gain": split}
