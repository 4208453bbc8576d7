"""Resampling statistics of surrogates: bias-corrected bootstrap intervals, paired differences, verdicts.

A statistic of a fitted surrogate Ĉ — above all a squared distance such as the data-weighted error
E‖(Ĉ − R)y‖²/E‖Ry‖² — is biased upward by the estimation noise of Ĉ, and a percentile bootstrap adds that
bias a second time: its interval need not even contain the estimate. :func:`bootstrap` therefore resamples
the rows the surrogate is fitted on AND (when given) the rows it is tested on, refits, and returns

* the bias-corrected estimate θ̃ = 2θ̂ − mean(θ*) (Efron & Tibshirani 1993, ch. 10), and
* the basic interval [2θ̂ − q_{1−a/2}, 2θ̂ − q_{a/2}] (Davison & Hinkley 1997, §5.2),

both of which subtract the bias instead of adding it. Their coverage is checked by simulation against a
model whose population surrogate is known in closed form (``tests/test_resampling.py`` and
``benchmarks/bench_intervals.py``). Verdicts compare two statistics computed on the same replicates by the
interval of their paired difference (:func:`paired_difference`, :func:`closest_reference`): the two errors are
strongly correlated, so overlapping marginal intervals say nothing.

References:
    B. Efron, R. Tibshirani. An Introduction to the Bootstrap (Chapman & Hall, 1993), ch. 10 and 13.
    A. C. Davison, D. V. Hinkley. Bootstrap Methods and their Application (CUP, 1997), §5.2.

Example:
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 1)); Y = 2 * X + rng.normal(size=(200, 1))
    >>> res = bootstrap(X, Y, lambda c, b: float(c[0, 0]), n_boot=200)
    >>> bool(res.low < 2 < res.high), res.method
    (True, 'basic, bootstrap bias')
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from linlens._progress import report_progress
from linlens.errors import ConfigError, NumericalWarning, ShapeError
from linlens.linalg import numerical_rank
from linlens.stats import (
    BootstrapResult,
    ClosestVerdict,
    PairedDifference,
    _basic,
    bootstrap_from_replicates,
    closest_reference,
    paired_difference,
    paired_squared_error_test,
    summarize,
)
from linlens.surrogate.compare import probe_covariance, weighted_sq_norm
from linlens.surrogate.estimator import LinearSurrogate
from linlens.surrogate.multiplier import FixedDesign
from linlens.validation import as_array

__all__ = [
    "OLSFit",
    "bootstrap",
    "corrected_data_weighted_error",
    "paired_mean_difference",
    "surrogate_excess",
    # re-exported from linlens.stats, where the generic statistics live
    "BootstrapResult",
    "bootstrap_from_replicates",
    "PairedDifference",
    "paired_difference",
    "ClosestVerdict",
    "closest_reference",
    "summarize",
]



class OLSFit:
    """An ordinary least-squares surrogate of F on Y (with intercept) that knows its own estimation noise.

    Fitted through the thin SVD of the centred design (rank cut at the default numerical rank), so that the
    leverages hᵢ and Z = Ỹ(ỸᵀỸ)⁺ are available. A statistic quadratic in the coefficients,
    Q(Ĉ) = tr(O (Ĉ − R) W (Ĉ − R)ᵀ Oᵀ), is biased upward by E tr(O(Ĉ − C)W(Ĉ − C)ᵀOᵀ); :meth:`quadratic_bias`
    estimates that bias with heteroscedasticity-consistent (HC2) weights,
    Σᵢ ‖O r̂ᵢ‖²/(1 − hᵢ) · zᵢᵀ W zᵢ, with hᵢ = 1/n + ‖uᵢ‖² the leverage of the design WITH its intercept (the
    residual variance is σ²(1 − hᵢ); leaving out the intercept's 1/n made the estimate 12% short at n = 12), which
    is unbiased for homoscedastic residuals and consistent otherwise
    (checked by simulation against a model whose population surrogate is known in closed form).

    References:
        J. G. MacKinnon, H. White. Some heteroskedasticity-consistent covariance matrix estimators with improved
        finite sample properties. J. Econometrics 29 (1985) (HC2).

    Arguments:
        Y: inputs (n_samples, d_in).
        F: outputs (n_samples, d_out).

    Attributes:
        coef: (d_out, d_in); intercept: (d_out,); rank: numerical rank of the centred design.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(2000, 2))
        >>> fit = OLSFit(Y, Y @ [[1.0], [2.0]] + rng.normal(size=(2000, 1)))
        >>> round(fit.quadratic_bias(np.eye(2)) * 2000, 1)  # E‖Ĉ − C‖² ≈ σ² tr(Σ⁻¹)/n = 2/n
        2.0
    """

    def __init__(self, Y: np.ndarray, F: np.ndarray) -> None:
        Y = np.asarray(Y, dtype=np.float64)
        F = np.asarray(F, dtype=np.float64)
        if Y.ndim != 2 or F.ndim != 2 or Y.shape[0] != F.shape[0]:
            raise ShapeError(f"Y (n, d_in) and F (n, d_out) must share n; got {Y.shape} and {F.shape}")
        n = Y.shape[0]
        if n < 3:
            raise ShapeError(f"an OLS fit with intercept needs at least 3 rows; got {n}")
        mx, my = Y.mean(axis=0), F.mean(axis=0)
        U, s, Vt = np.linalg.svd(Y - mx, full_matrices=False)
        k = numerical_rank(s, shape=Y.shape).rank
        U, s, Vt = U[:, :k], s[:k], Vt[:k]
        self.rank = int(k)
        self.coef = (((F - my).T @ U) / s) @ Vt
        self.intercept = my - mx @ self.coef.T
        self.residuals = (F - my) - (Y - mx) @ self.coef.T
        h = 1.0 / n + np.sum(U * U, axis=1)  # leverage of the design with intercept: 1/n + that of the centred part
        self._w = 1.0 / np.clip(1.0 - h, 1.0 / n, None)  # HC2 weights 1/(1 − hᵢ), capped at n
        self._Z = (U / s) @ Vt  # Z = Ỹ (ỸᵀỸ)⁺, rows zᵢ

    def quadratic_bias(self, W: np.ndarray, O: np.ndarray | None = None, scale: float = 1.0) -> float:
        """Estimated E tr(O (Ĉ − C) W (Ĉ − C)ᵀ Oᵀ) / scale² for a weight W (d_in, d_in) and output rows O
        (k, d_out); ``scale`` divides the residuals first (no under- or overflow when forming ratios)."""
        return float(self.bias_by_output(W, O, scale).sum())

    def bias_by_output(self, W: np.ndarray, basis: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
        """The bias of :meth:`quadratic_bias` per output row of ``basis`` (k, d_out) (default: per output):
        entry j is E[(b_jᵀ(Ĉ − C)) W ((Ĉ − C)ᵀ b_j)] / scale²; one pass for all rows. The leverage weights under
        W are remembered for the next call with the same W object (do not modify W in place between calls)."""
        cached = self.__dict__.get("_q")
        if cached is not None and cached[0] is W:  # the same weight again (several references, one Σ)
            q = cached[1]
        else:
            q = np.sum((self._Z @ W) * self._Z, axis=1) * self._w
            self._q = (W, q)
        r = (self.residuals if basis is None else self.residuals @ np.asarray(basis).T) / scale
        return (r * r).T @ q


def bootstrap(
    X: Any,
    Y: Any,
    statistic: Callable[..., float | dict[str, float]],
    *,
    test: Any = None,
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    fit_intercept: bool = True,
    alpha: float = 0.0,
    bias: str = "bootstrap",
) -> BootstrapResult:
    """Resample rows, refit a :class:`LinearSurrogate`, and return bias-corrected basic intervals.

    References:
        Efron, Tibshirani. An Introduction to the Bootstrap (1993), ch. 10 (bias) and 13 (intervals);
        Davison, Hinkley. Bootstrap Methods and their Application (1997), §5.2 (basic interval).

    Arguments:
        X: inputs (n_samples, d_in) the surrogate is fitted on.
        Y: outputs (n_samples, d_out).
        statistic: ``statistic(coef (d_out, d_in), intercept (d_out,))`` → float or dict of floats; with
            ``test`` given, ``statistic(coef, intercept, test_rows (n_test, d_test))``.
        test: optional rows (n_test, d_test) the statistic is evaluated on (e.g. held-out probes); they are
            resampled too, independently of the fit rows, so the interval carries both sources of noise.
        n_boot: number of resamples (≥ 2).
        seed: seed of the resampling.
        ci: confidence level of the two-sided interval.
        fit_intercept: passed to the surrogate.
        alpha: ridge penalty passed to the surrogate.
        bias: "bootstrap" — the estimate is corrected by the replicates, 2θ̂ − mean(θ*); or "analytic" — the
            statistic receives an :class:`OLSFit` instead of (coef, intercept) and returns, per name, a pair
            (value it has corrected itself, e.g. with :meth:`OLSFit.quadratic_bias`; plug-in value); the
            corrected values are resampled and the basic interval is taken around the corrected estimate.
            "analytic" is the better choice for squared distances: the bootstrap's own
            bias estimate falls ~10% short when the bias is as large as the distance (measured in
            ``benchmarks/bench_intervals.py``). It requires ``fit_intercept=True`` and ``alpha=0``.

    Returns:
        :class:`BootstrapResult` (estimate, bias-corrected estimate, basic interval, std, replicates).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 1)); Y = 2 * X + 0.1 * rng.normal(size=(100, 1))
        >>> res = bootstrap(X, Y, lambda c, b: {"slope": c[0, 0], "icpt": b[0]}, n_boot=100)
        >>> bool(res.low["slope"] < 2 < res.high["slope"])
        True
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ConfigError(f"n_boot must be an integer ≥ 2; got {n_boot!r}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    if bias not in ("bootstrap", "analytic"):
        raise ConfigError(f"bias must be 'bootstrap' or 'analytic'; got {bias!r}")
    if bias == "analytic" and (not fit_intercept or alpha != 0):
        raise ConfigError("bias='analytic' needs fit_intercept=True and alpha=0 (an OLS fit with intercept)")
    sur = LinearSurrogate(fit_intercept=fit_intercept, alpha=alpha)
    x, y, _ = sur._validate(X, Y)
    T = None if test is None else as_array(test, "test", ndim=2)
    if T is not None and T.shape[0] < 2:
        raise ShapeError(f"test must have at least 2 rows; got {T.shape[0]}")
    n_params = len(inspect.signature(statistic).parameters) if callable(statistic) else 0
    if T is not None and n_params < (2 if bias == "analytic" else 3):
        raise ConfigError("with test rows, statistic must also take the test rows as its last argument")

    def evaluate(rows: np.ndarray | None, trows: np.ndarray | None) -> Any:
        xs, ys = (x, y) if rows is None else (x[rows], y[rows])
        if bias == "analytic":
            args: tuple[Any, ...] = (OLSFit(xs, ys),)
        else:
            sur.fit(xs, ys)
            args = (sur.coef_, sur.intercept_)
        if T is None:
            return statistic(*args)
        return statistic(*args, T if trows is None else T[trows])

    est = evaluate(None, None)
    method = "basic, analytic bias" if bias == "analytic" else "basic, bootstrap bias"
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    draws = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        for b in range(n_boot):
            idx = rng.integers(0, n, size=n)
            tidx = None if T is None else rng.integers(0, T.shape[0], size=T.shape[0])
            draws.append(evaluate(idx, tidx))
            report_progress("bootstrap resamples", b + 1, n_boot)
    se = se_samples = None
    if bias == "analytic":
        if not isinstance(est, dict) or not all(isinstance(v, tuple) and len(v) in (2, 3) for v in est.values()):
            raise ConfigError("with bias='analytic' the statistic must return a dict name → (corrected, plug_in) "
                              "or (corrected, plug_in, standard error)")
        if all(len(v) == 3 for v in est.values()):  # analytic standard errors: kept for the bootstrap-t
            se = {k: float(v[2]) for k, v in est.items()}
            se_samples = {k: np.array([float(d[k][2]) for d in draws]) for k in est}
        corr = {k: float(v[0]) for k, v in est.items()}
        est = {k: float(v[1]) for k, v in est.items()}
        draws = [{k: v[0] for k, v in d.items()} for d in draws]
    else:
        corr = None
    if isinstance(est, dict):
        samples = {k: np.array([float(d[k]) for d in draws]) for k in est}
        parts = {k: _basic(float(est[k]), samples[k], ci, None if corr is None else corr[k]) for k in est}
        return BootstrapResult(
            estimate={k: float(v) for k, v in est.items()},
            bias_corrected={k: p[0] for k, p in parts.items()},
            low={k: p[1] for k, p in parts.items()},
            high={k: p[2] for k, p in parts.items()},
            std={k: p[3] for k, p in parts.items()},
            samples=samples,
            ci=float(ci),
            method=method,
            standard_error=se,
            se_samples=se_samples,
        )
    samples = np.array([float(d) for d in draws])
    bc, lo, hi, sd = _basic(float(est), samples, ci)
    return BootstrapResult(estimate=float(est), bias_corrected=bc, low=lo, high=hi, std=sd, samples=samples,
                           ci=float(ci), method=method)


def corrected_data_weighted_error(fit: OLSFit, R: np.ndarray, probes: np.ndarray | None = None, *,
                                  covariance: np.ndarray | None = None, standard_error: bool = False
                                  ) -> tuple[float, ...]:
    """Data-weighted error of ``fit.coef`` against R on centred probes, less its estimation-noise bias.

    (tr(DΣDᵀ) − bias)/tr(RΣRᵀ), D = Ĉ − R, Σ the probes' covariance, bias from :meth:`OLSFit.quadratic_bias`.
    Unbiased for the population value; it may come out slightly negative when the truth is ≈ 0. Give the
    probes, or ``covariance`` = the (scaled) Σ of :func:`~linlens.surrogate.compare.probe_covariance` when several
    references share one set of probes (Σ and the leverage weights under it are then computed once).

    With ``standard_error=True`` (probes needed) a third value is returned: the delta-method standard error of
    the error, √(V_fit + V_probes), from the gradient 2DΣ/tr(RΣRᵀ) of the error in Ĉ with the HC2 covariance of
    Ĉ, V_fit = 4 Σᵢ wᵢ (r̂ᵢᵀ D Σ zᵢ)²/tr(RΣRᵀ)² (wᵢ = 1/(1 − hᵢ), zᵢ the rows of Ỹ(ỸᵀỸ)⁺), and the ratio-of-
    means variance of the probes, V_probes = Σⱼ ψⱼ²/m², ψⱼ = (‖D t̃ⱼ‖² − e‖R t̃ⱼ‖²)/mean‖R t̃‖² (t̃ⱼ the centred
    probes, e the plug-in). Resampled with the error, it makes the bootstrap-t of :func:`closest_reference`.

    Returns:
        (corrected, plug-in) — the pair a ``bias="analytic"`` statistic of :func:`bootstrap` returns; with
        ``standard_error=True``, (corrected, plug-in, standard error).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(400, 3)); R = np.eye(3)
        >>> fit = OLSFit(Y, Y @ R.T + 0.5 * rng.normal(size=(400, 3)))
        >>> corrected, plug_in = corrected_data_weighted_error(fit, R, Y)
        >>> round(plug_in, 4), round(corrected, 4)  # the plug-in is mostly noise: bias ≈ σ²·3·3/400/3 = 0.0019
        (0.0021, 0.0002)
        >>> # against 2R: gradient −2I/12, so the standard error ≈ (2/12)·√3·σ/√n = 0.0072 (probes add ≈ 0: D = −R)
        >>> round(corrected_data_weighted_error(fit, 2 * R, Y, standard_error=True)[2], 3)
        0.007
    """
    if (probes is None) == (covariance is None):
        raise ConfigError("give exactly one of probes (rows) or covariance (their scaled Σ)")
    if standard_error and probes is None:
        raise ConfigError("standard_error=True needs the probes (rows): their own variance is part of it")
    S = probe_covariance(probes)[0] if covariance is None else covariance
    R = np.asarray(R, dtype=np.float64)
    if R.shape != fit.coef.shape:
        raise ShapeError(f"R must have the surrogate's shape {fit.coef.shape}; got {R.shape}")
    num, sn = weighted_sq_norm(fit.coef - R, S)
    den, sd = weighted_sq_norm(R, S)
    if den <= 0:
        return float("inf"), float("inf")
    plug = num * (sn / sd) ** 2
    corrected = float((plug - fit.quadratic_bias(S, scale=sd)) / den)
    if not standard_error:
        return corrected, float(plug / den)
    Dn, Rn = (fit.coef - R) / sd, R / sd  # in the reference's scale: a ratio, so the scale cancels
    e = float(plug / den)
    g = np.sum((fit.residuals / sd @ Dn) * (fit._Z @ S), axis=1)  # r̂ᵢᵀ D Σ zᵢ
    v_fit = 4.0 * float(np.sum(fit._w * g * g)) / den**2
    P = np.asarray(probes, dtype=np.float64)
    Tc = (P - P.mean(axis=0)) / probe_covariance(P)[1]
    a, b = np.sum((Tc @ Dn.T) ** 2, axis=1), np.sum((Tc @ Rn.T) ** 2, axis=1)
    psi = (a - e * b) / b.mean()
    v_probe = float(np.sum(psi * psi)) / len(P) ** 2
    return corrected, e, math.sqrt(v_fit + v_probe)


def paired_mean_difference(loss_a: Any, loss_b: Any, a: str = "a", b: str = "b", ci: float = 0.95) -> PairedDifference:
    """Paired t comparison of two per-point losses on the same test points: mean(loss_a − loss_b).

    Arguments:
        loss_a: (n,) per-point loss of the first predictor (e.g. squared error of the network).
        loss_b: (n,) per-point loss of the second, on the same points.
        a: name of the first.
        b: name of the second.
        ci: confidence level of the t-interval.

    Returns:
        :class:`PairedDifference` with the mean difference, its t-interval and two-sided p-value.

    Example:
        >>> d = paired_mean_difference([1.0, 2.0, 3.0, 4.0], [0.9, 2.1, 2.8, 3.9])
        >>> round(d.estimate, 6), d.p_value > 0.05
        (0.075, True)
    """
    la = np.asarray(as_array(loss_a, "loss_a", ndim=1))
    lb = np.asarray(as_array(loss_b, "loss_b", ndim=1))
    if la.shape != lb.shape:
        raise ShapeError(f"loss_a and loss_b must be paired (same shape); got {la.shape} and {lb.shape}")
    t = paired_squared_error_test(la, lb, confidence=ci)  # the one paired t-test (linlens.stats)
    return PairedDifference(a=a, b=b, estimate=t.difference, low=t.ci_low, high=t.ci_high, p_value=t.p_value,
                            ci=float(ci), method="paired t")




def surrogate_excess(Y_fit: Any, F_fit: Any, Y_test: Any, errors_test: Any, *,
                     fit: tuple[FixedDesign, Any] | None = None,
                     test_forms: np.ndarray | None = None) -> tuple[float, float]:
    """What a surrogate's own estimation error adds to its test squared error, for :func:`linlens.stats.gain_split`.

    The OLS surrogate (with intercept) of F on Y, fitted on n rows and scored on other points, errs at a test point
    by δₜ = Σᵢ rᵢ aᵢₜ with rᵢ the fit rows' residuals from the population surrogate and aᵢₜ = 1/n + zᵢᵀ(yₜ − ȳ),
    zᵢ = (ỸᵀỸ)⁺ỹᵢ. Its squared error is raised by E‖δₜ‖² in expectation (≈ (d_in + 1)/n times the residual variance
    of the network about its surrogate: the term that makes any network with a nonlinear part look better than its
    surrogate out of sample), and the cross term 2⟨δₜ, eₜ⟩ (eₜ the surrogate's test error) is random with mean ≈ 0.
    Both are estimated with HC2 rows lᵢ = r̂ᵢ/√(1 − hᵢ) (heteroscedasticity-consistent, leverage hᵢ with the
    intercept's 1/n; :class:`~linlens.surrogate.multiplier.FixedDesign`).

    References:
        J. G. MacKinnon, H. White, "Some heteroskedasticity-consistent covariance matrix estimators with improved
        finite sample properties", Journal of Econometrics 29 (1985) 305–325 (HC2).

    Arguments:
        Y_fit: (n, d_in) the inputs the surrogate was fitted on (its features: projected ones for a subspace fit).
        F_fit: (n, d_out) the network's outputs there.
        Y_test: (n_test, d_in) the test inputs (the same features).
        errors_test: (n_test, d_out) the surrogate's prediction − target on the test points.
        fit: the (:class:`~linlens.surrogate.multiplier.FixedDesign`, its ``perturbation(F_fit, ...)``) a caller
            already has for these rows (no second factorization); Y_fit and F_fit are then not read.
        test_forms: (n,) zᵢᵀ Σₜ zᵢ with Σₜ = (1/n_test) Σₜ (yₜ − ȳ)(yₜ − ȳ)ᵀ the test inputs' covariance about their
            own mean, when the caller has them (e.g. :meth:`~linlens.surrogate.multiplier.MultiplierBootstrap.
            weight_forms` of the design rows under the test rows' second moment, times its scale²): then
            Σₜ aᵢₜ² = n_test/n² + (2/n) zᵢᵀs + n_test (zᵢᵀΣₜzᵢ + (zᵢᵀδ)²) (δ = ȳ_test − ȳ_fit, s = n_test δ) needs
            neither Σₜ nor Z Σₜ (an n_test·d² and an n·d² product).

    Returns:
        (bias, se): the expected excess squared error per test point, mean over t of Σᵢ ‖lᵢ‖² aᵢₜ², and the standard
        error the surrogate's randomness adds to a mean of per-point squared-error differences, √Σᵢ (2/n_test
        lᵢᵀ Σₜ eₜ aᵢₜ)².

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(400, 2)); Yt = rng.normal(size=(400, 2))
        >>> F = Y @ [[1.0], [2.0]] + rng.normal(size=(400, 1))  # residual variance 1 about the linear map
        >>> bias, se = surrogate_excess(Y, F, Yt, rng.normal(size=(400, 1)))
        >>> bool(0.8 < bias * 400 / 3 < 1.2)  # ≈ (d_in + 1)/n · 1
        True
        >>> bool(0 < se < 0.2)
        True
    """
    Yt = np.asarray(as_array(Y_test, "Y_test", ndim=2), dtype=np.float64)
    Et = np.asarray(as_array(errors_test, "errors_test", ndim=2), dtype=np.float64)
    if fit is None:
        Yf = np.asarray(as_array(Y_fit, "Y_fit", ndim=2), dtype=np.float64)
        Ff = np.asarray(as_array(F_fit, "F_fit", ndim=2), dtype=np.float64)
        if len(Ff) != len(Yf):
            raise ShapeError(f"Y_fit and F_fit must have the same rows; got {Yf.shape} and {Ff.shape}")
        design = FixedDesign(Yf)
        p = design.perturbation(Ff, "fit")  # L = HC2 rows lᵢ, M = zᵢ
    else:
        design, p = fit
    if Yt.shape[1] != p.M.shape[1] or len(Et) != len(Yt) or Et.shape[1] != p.L.shape[1]:
        raise ShapeError(f"surrogate_excess needs Y_test (m, {p.M.shape[1]}) and errors_test (m, {p.L.shape[1]}) on "
                         f"the same m points; got {Yt.shape} and {Et.shape}")
    n, n_t = design.n, len(Yt)
    Tc = Yt - design.mean
    l2 = np.einsum("ij,ij->i", p.L, p.L)
    Z = p.M
    if test_forms is None:
        s_t, S_t = Tc.sum(axis=0), Tc.T @ Tc
        quad = np.einsum("ij,ij->i", Z @ S_t, Z)  # Σₜ (zᵢᵀỹₜ)²
    else:  # Σₜ (zᵢᵀỹₜ)² = n_t (zᵢᵀΣₜzᵢ + (zᵢᵀδ)²), ỹₜ = (yₜ − ȳ_test) + δ
        tf = np.asarray(test_forms, dtype=np.float64)
        if tf.shape != (n,):
            raise ShapeError(f"test_forms must be ({n},) (one per fit row); got {tf.shape}")
        delta = Yt.mean(axis=0) - design.mean
        s_t, zd = n_t * delta, Z @ delta
        quad = n_t * (tf + zd * zd)
    a2 = n_t / n**2 + (2.0 / n) * (Z @ s_t) + quad  # Σₜ aᵢₜ²
    bias = float(l2 @ a2) / n_t
    q, Q = Et.sum(axis=0), Et.T @ Tc  # Σₜ eₜ, Σₜ eₜ ỹₜᵀ
    infl = (2.0 / n_t) * (p.L @ q / n + np.einsum("ij,ij->i", p.L, Z @ Q.T))
    return max(bias, 0.0), float(math.sqrt(float(infl @ infl)))
