"""Paired tests for two models scored on the SAME test points: McNemar's exact test for classifiers and a
paired t-test on per-point squared errors for regressors.

Two models evaluated on one test set make correlated errors; an unpaired standard error of the difference of
their accuracies ignores that correlation and is usually far too wide (or, for the argmax of several models,
meaningless). The paired tests here use only the points where the two models disagree (McNemar) or the
per-point differences of the losses (paired t).

References:
    Q. McNemar, "Note on the sampling error of the difference between correlated proportions or
    percentages", Psychometrika 12 (1947) 153–157.
    T. G. Dietterich, "Approximate statistical tests for comparing supervised classification learning
    algorithms", Neural Computation 10 (1998) 1895–1923.
    A. Agresti, Y. Min, "Simple improved confidence intervals for comparing matched proportions",
    Statistics in Medicine 24 (2005) 729–740.

Example:
    >>> a = np.array([1, 1, 1, 0, 1, 1], dtype=bool)
    >>> b = np.array([1, 0, 0, 0, 1, 0], dtype=bool)
    >>> res = mcnemar(a, b)
    >>> res.b, res.c, round(res.p_value, 4)
    (3, 0, 0.25)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, ShapeError

__all__ = [
    "McNemarResult",
    "PairedTestResult",
    "mcnemar",
    "holm",
    "paired_squared_error_test",
    "BootstrapResult",
    "bootstrap_from_replicates",
    "PairedDifference",
    "paired_difference",
    "ClosestVerdict",
    "closest_reference",
    "VERDICT_RULE",
    "summarize",
    "below_detection",
    "interval_text",
    "NoiseStdEstimate",
    "noise_std_estimate", "noise_std_from_sums",
    "GainSplit",
    "gain_split",
    "GAIN_RESOLUTION",
]


@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """McNemar's exact test of two classifiers on the same points.

    Attributes:
        n: number of paired test points.
        b: points model A gets right and model B gets wrong.
        c: points model A gets wrong and model B gets right.
        accuracy_a, accuracy_b: the two accuracies.
        difference: accuracy_a − accuracy_b = (b − c) / n.
        ci_low, ci_high: paired interval for the difference (Agresti–Min adjusted Wald).
        confidence: level of the interval.
        p_value: exact two-sided binomial p-value of b ~ Binomial(b + c, 1/2) (1 when b + c = 0).

    Example:
        >>> r = mcnemar([1, 1, 1, 0, 0], [1, 0, 0, 1, 0])  # A alone right twice, B alone once
        >>> r.b, r.c, r.difference == (r.b - r.c) / r.n, r.ci_low < r.difference < r.ci_high
        (2, 1, True, True)
    """

    n: int
    b: int
    c: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float


@dataclass(frozen=True)
class PairedTestResult(ResultMixin):
    """Paired t-test on per-point differences d_i = loss_a,i − loss_b,i (here: squared errors).

    Attributes:
        n: number of paired points.
        mean_a, mean_b: mean losses (e.g. the two test MSEs).
        difference: mean of d (= mean_a − mean_b); negative means model A has the lower loss.
        standard_error: sd(d) / √n.
        ci_low, ci_high: Student-t interval for the mean difference.
        confidence: level of the interval.
        t_statistic: difference / standard_error (±inf when every d_i is equal and non-zero).
        p_value: two-sided p-value of t with n − 1 degrees of freedom.

    Example:
        >>> r = paired_squared_error_test([1.0, 2.0, 4.0], [0.0, 1.0, 1.0])  # differences 1, 1, 3
        >>> round(r.difference, 6), round(r.standard_error ** 2, 6)  # mean 5/3; var(1, 1, 3)/3 = (4/3)/3
        (1.666667, 0.444444)
    """

    n: int
    mean_a: float
    mean_b: float
    difference: float
    standard_error: float
    ci_low: float
    ci_high: float
    confidence: float
    t_statistic: float
    p_value: float


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ConfigError(f"confidence must be in (0, 1); got {confidence!r}")
    return float(confidence)


def _as_bool(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be 1-D (n_points,); got shape {a.shape}")
    if a.dtype != bool:
        if not np.issubdtype(a.dtype, np.number) or not np.isin(a, (0, 1)).all():
            raise ConfigError(f"{name} must hold booleans (or 0/1): whether each test point is classified right")
        a = a.astype(bool)
    return a


def mcnemar(correct_a: Any, correct_b: Any, confidence: float = 0.95) -> McNemarResult:
    """McNemar's exact test: are two classifiers equally accurate on the same test points?

    Under the null hypothesis the discordant points (one model right, the other wrong) fall either way with
    probability 1/2, so b ~ Binomial(b + c, 1/2); the p-value is the exact two-sided binomial one
    (``scipy.stats.binomtest``). The interval for the accuracy difference is the Agresti–Min adjusted Wald
    interval (0.5 added to every cell of the 2×2 table), which keeps its level for small b + c.

    References:
        Q. McNemar (1947), Psychometrika 12:153–157. T. G. Dietterich (1998), Neural Computation
        10:1895–1923. A. Agresti, Y. Min (2005), Statistics in Medicine 24:729–740.

    Arguments:
        correct_a: (n_points,) booleans, model A right on each point.
        correct_b: (n_points,) booleans, model B right on the same points.
        confidence: level of the interval.

    Returns:
        :class:`McNemarResult`.

    Example:
        >>> r = mcnemar([1, 1, 0, 1], [1, 1, 0, 1])
        >>> r.p_value, r.difference
        (1.0, 0.0)
    """
    conf = _check_confidence(confidence)
    a, bb = _as_bool(correct_a, "correct_a"), _as_bool(correct_b, "correct_b")
    if len(a) != len(bb):
        raise ShapeError(f"correct_a and correct_b must be scored on the same points; got {len(a)} and {len(bb)}")
    n = len(a)
    if n == 0:
        raise EmptyInputError("mcnemar: no test points")
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    # Agresti–Min: add 1/2 to each of the four cells (n grows by 2)
    n2, b2, c2 = n + 2.0, b + 0.5, c + 0.5
    d2 = (b2 - c2) / n2
    se = math.sqrt(max((b2 + c2) - (b2 - c2) ** 2 / n2, 0.0)) / n2
    z = float(sps.norm.ppf(0.5 + conf / 2))
    return McNemarResult(
        n=n, b=b, c=c, accuracy_a=float(a.mean()), accuracy_b=float(bb.mean()), difference=(b - c) / n,
        ci_low=max(-1.0, d2 - z * se), ci_high=min(1.0, d2 + z * se), confidence=conf, p_value=min(p, 1.0),
    )


def _as_float(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim != 1:
        raise ShapeError(f"{name} must be 1-D (n_points,); got shape {a.shape}")
    if not np.isfinite(a).all():
        raise NonFiniteError(f"{name} holds NaN/Inf")
    return a


def paired_squared_error_test(squared_error_a: Any, squared_error_b: Any,
                              confidence: float = 0.95) -> PairedTestResult:
    """Paired t-test of two regressors' per-point squared errors on the same test points.

    With d_i = e²_a,i − e²_b,i: mean d̄, standard error s_d/√n, a Student-t interval with n − 1 degrees of
    freedom and the two-sided p-value of t = d̄ / (s_d/√n). Same statistic as ``scipy.stats.ttest_rel``.

    References:
        T. G. Dietterich (1998), Neural Computation 10:1895–1923 (paired tests of learning algorithms).

    Arguments:
        squared_error_a: (n_points,) squared errors of model A (sum over outputs, per point).
        squared_error_b: (n_points,) squared errors of model B on the same points.
        confidence: level of the interval.

    Returns:
        :class:`PairedTestResult` (difference < 0: A has the lower mean squared error).

    Example:
        >>> r = paired_squared_error_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
        >>> r.difference, r.p_value
        (0.0, 1.0)
    """
    conf = _check_confidence(confidence)
    a = _as_float(squared_error_a, "squared_error_a")
    b = _as_float(squared_error_b, "squared_error_b")
    if len(a) != len(b):
        raise ShapeError(f"squared errors must be on the same points; got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        raise EmptyInputError(f"paired test needs at least 2 points; got {n}")
    d = a - b
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    tq = float(sps.t.ppf(0.5 + conf / 2, n - 1))
    if se > 0:
        t = mean / se
        p = float(2 * sps.t.sf(abs(t), n - 1))
    else:  # every difference equal: no spread
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0 else 0.0
    return PairedTestResult(
        n=n, mean_a=float(a.mean()), mean_b=float(b.mean()), difference=mean, standard_error=se,
        ci_low=mean - tq * se, ci_high=mean + tq * se, confidence=conf, t_statistic=t, p_value=min(p, 1.0),
    )


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family of tests (family-wise error rate ≤ α when every
    adjusted p ≤ α is rejected, whatever the dependence between the tests).

    With the m p-values sorted, p₍₁₎ ≤ … ≤ p₍ₘ₎: p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎). NaN entries are left NaN
    and do not count in m.

    References:
        S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979) 65–70.

    Arguments:
        p_values: (m,) p-values of the family.

    Returns:
        (m,) adjusted p-values, in the input order.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ConfigError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


# ============================================================ bootstrap results, paired differences, verdicts
@dataclass(frozen=True)
class BootstrapResult(ResultMixin):
    """Bias-corrected bootstrap estimates and basic intervals of statistics of a refitted surrogate.

    Every field is a float for a scalar statistic, or a dict name → float for a dict-valued one.

    Arguments:
        estimate: the plug-in statistic θ̂ on the full data (biased for squared distances).
        bias_corrected: 2θ̂ − mean(θ*): the estimate to report.
        low: lower end of the basic interval 2θ̂ − q_{(1+ci)/2}.
        high: upper end of the basic interval 2θ̂ − q_{(1−ci)/2}.
        std: bootstrap standard deviation of θ* (the estimation noise of θ̂).
        samples: (n_boot,) replicates θ*, or dict name → (n_boot,).
        ci: confidence level.
        method: "basic, bootstrap bias" (estimate 2θ̂ − mean θ*) or "basic, analytic bias" (the statistic
            corrected itself); the interval is the basic one in both.
        standard_error: None, or (when the statistic also returned an analytic standard error, e.g.
            :func:`linlens.surrogate.resampling.corrected_data_weighted_error` with ``standard_error=True``) that
            standard error of the estimate, per name.
        se_samples: None, or the analytic standard error of each replicate, (n_boot,) per name: with it
            :func:`closest_reference` decides "none" by the bootstrap-t (studentized replicates).
        extra_variance: name → variance of the estimate that its replicates miss and that is independent of every
            other statistic's replicates (default empty: none). The dense study sets it for the error against an
            estimated least-squares reference (C_data): its own training rows' fourth-moment and bias-correction
            spread, which a multiplier bootstrap with the designs fixed does not reproduce. :func:`paired_difference`
            adds extra_a + extra_b to the variance of the replicated difference, and :func:`closest_reference`'s
            multivariate-t "none" test adds it to each error's replicate variance.

    Example:
        >>> r = bootstrap_from_replicates({"e": 2.0}, {"e": np.array([2.1, 2.3, 2.2, 2.2])})
        >>> round(r.bias_corrected["e"], 6), r.names(), r.to_dict()["n_boot"]  # 2·2.0 − mean(replicates) = 1.8
        (1.8, ['e'], 4)
    """

    estimate: Any
    bias_corrected: Any
    low: Any
    high: Any
    std: Any
    samples: Any
    ci: float
    method: str = "basic, bootstrap bias"
    standard_error: Any = None
    se_samples: Any = None
    extra_variance: dict[str, float] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Names of a dict-valued statistic (empty for a scalar one)."""
        return list(self.estimate) if isinstance(self.estimate, dict) else []

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary without the replicates (they can be large)."""
        return super().to_dict() | {"samples": None, "se_samples": None, "n_boot": int(_n_samples(self.samples))}

def _n_samples(samples: Any) -> int:
    if isinstance(samples, dict):
        return len(next(iter(samples.values()))) if samples else 0
    return len(samples)


def _basic(
    plug: float, draws: np.ndarray, ci: float, corrected: float | None = None
) -> tuple[float, float, float, float]:
    """Bias-corrected estimate, basic interval and standard deviation from the replicates.

    In the bootstrap world the truth is the plug-in value θ̂ of the full data, so (s* − θ̂) mimics (s − θ) for
    the statistic s that was resampled: the plug-in itself (``corrected`` None; interval
    [2θ̂ − q_hi, 2θ̂ − q_lo], estimate 2θ̂ − mean s*), or an analytically corrected θ̃ (interval
    [θ̃ + θ̂ − q_hi, θ̃ + θ̂ − q_lo], estimate θ̃)."""
    finite = draws[np.isfinite(draws)]
    est = plug if corrected is None else corrected
    if not (math.isfinite(est) and math.isfinite(plug)) or finite.size < 2:
        return est, float("nan"), float("nan"), float("nan")
    q_lo, q_hi = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2])
    centre = float(2 * plug - finite.mean()) if corrected is None else float(corrected)
    return centre, float(est + plug - q_hi), float(est + plug - q_lo), float(finite.std(ddof=1))


def bootstrap_from_replicates(estimate: Mapping[str, float], replicates: Mapping[str, Any], ci: float = 0.95, *,
                              standard_error: Mapping[str, float] | None = None,
                              se_replicates: Mapping[str, Any] | None = None) -> BootstrapResult:
    """A :class:`BootstrapResult` from plug-in estimates and replicates computed elsewhere (e.g. the Fourier
    route's Poisson bootstrap): bias-corrected estimates 2θ̂ − mean θ* and basic intervals, as :func:`bootstrap`.
    ``standard_error`` (name → float) and ``se_replicates`` (name → (n_boot,)) are the analytic standard errors of
    the estimate and of each replicate, when the caller has them (both or neither).

    Example:
        >>> r = bootstrap_from_replicates({"a": 1.0}, {"a": np.array([1.1, 1.2, 1.3, 1.2])})
        >>> round(r.bias_corrected["a"], 6)
        0.8
    """
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    if (standard_error is None) != (se_replicates is None):
        raise ConfigError("give both standard_error and se_replicates, or neither")
    samples = {k: np.asarray(replicates[k], dtype=np.float64).ravel() for k in estimate}
    se = se_rep = None
    if standard_error is not None and se_replicates is not None:
        se = {k: float(standard_error[k]) for k in estimate}
        se_rep = {k: np.asarray(se_replicates[k], dtype=np.float64).ravel() for k in estimate}
        if any(se_rep[k].shape != samples[k].shape for k in estimate):
            raise ShapeError("se_replicates must hold one standard error per replicate")
    parts = {k: _basic(float(estimate[k]), samples[k], ci) for k in estimate}
    return BootstrapResult(estimate={k: float(v) for k, v in estimate.items()},
                           bias_corrected={k: p[0] for k, p in parts.items()}, low={k: p[1] for k, p in parts.items()},
                           high={k: p[2] for k, p in parts.items()}, std={k: p[3] for k, p in parts.items()},
                           samples=samples, ci=float(ci), standard_error=se, se_samples=se_rep)


# ------------------------------------------------------------------------------------------ paired tests
@dataclass(frozen=True)
class PairedDifference(ResultMixin):
    """A paired comparison of two statistics a − b measured on the same data.

    Arguments:
        a: name of the first statistic.
        b: name of the second.
        estimate: the (bias-corrected) difference a − b.
        low: lower end of its interval.
        high: upper end.
        p_value: two-sided p-value of "a − b = 0"; p ≤ 1 − ci exactly when the interval excludes 0 (both come
            from the same estimate, standard error and reference distribution).
        ci: confidence level.
        method: "bootstrap (studentized, t with B − 1 df)" or "paired t".
        resolution: the smallest p the method can resolve (0 for both methods: the p-value is analytic).
        standard_error: the standard error the interval and the p-value use (the bootstrap standard deviation
            of the replicated difference, or sd/√n for the paired t).
        df: degrees of freedom of the t reference distribution (B − 1 or n − 1).

    Example:
        >>> d = PairedDifference("W", "C", estimate=0.2, low=0.1, high=0.3, p_value=1e-20, ci=0.95, method="paired t")
        >>> d.excludes_zero, d.p_text()
        (True, 'p < 1e-16')
    """

    a: str
    b: str
    estimate: float
    low: float
    high: float
    p_value: float
    ci: float
    method: str
    resolution: float = 0.0
    standard_error: float = float("nan")
    df: float = float("nan")

    def p_text(self) -> str:
        """The p-value for a report: "p < 0.013" below the method's resolution, "p < 1e-16" when it underflows."""
        if self.p_value < max(self.resolution, 1e-16):
            return f"p < {max(self.resolution, 1e-16):.2g}"
        return f"p = {self.p_value:.2g}"

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0."""
        return bool(self.low > 0 or self.high < 0)


#: Relative size below which a difference or a spread is rounding: ratios of quadratic forms of ill-conditioned
#: operators carry more than a few ulps (the zero map's exact error 1 against A⁻¹ of a 16-point blur, κ ≈ 5·10⁶,
#: came out 1 − 1.6e-14 with no spread, which 64 ulps called a significant gap)
_ROUNDING = 1e-12


def _t_test(estimate: float, se: float, df: float, null: float = 0.0) -> tuple[float, float]:
    """Studentized statistic (estimate − null)/se and its two-sided p-value under Student's t with df degrees of
    freedom; se = 0 gives t = 0 (p = 1) at the null and ±inf (p = 0) elsewhere."""
    diff = estimate - null
    if not (math.isfinite(estimate) and math.isfinite(se)):
        return float("nan"), float("nan")
    tol = _ROUNDING * max(abs(estimate), abs(null))  # below this, differences and spreads are rounding
    diff, se = (0.0 if abs(diff) <= tol else diff), (0.0 if se <= tol else se)
    if se > 0:
        t = diff / se
        return t, min(1.0, float(2 * sps.t.sf(abs(t), df)))
    return (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)


def paired_difference(result: BootstrapResult, a: str, b: str) -> PairedDifference:
    """Bias-corrected difference of two statistics of one :func:`bootstrap` run, its interval and p-value.

    The replicates of a and b come from the same resamples, so their difference Δ* carries the pairing. With
    Δ̃ the bias-corrected difference (the difference of the two bias-corrected estimates), s the standard deviation
    of the B finite replicates Δ* and t_{B−1} Student's t with B − 1 degrees of freedom, the interval is
    Δ̃ ± t_{B−1, (1+ci)/2} · s and the two-sided p-value 2 P(t_{B−1} ≥ |Δ̃|/s). Both come from the same Δ̃, s and
    reference distribution, so the interval excludes 0 exactly when p < 1 − ci. The t_{B−1} reference (rather than
    the normal one, or quantiles of the replicates) accounts for the Monte Carlo error of s from B resamples: a
    resampled tail quantile from B = 100 resamples named a reference on a true tie in 7.3% of data sets at nominal
    5% (the rates of this test are measured in ``benchmarks/bench_intervals.py``). The difference of two squared
    distances is linear in the surrogate to first order, so its replicates are close to normal.

    Where the result carries an ``extra_variance`` for a or b (a spread of the estimate that the replicates miss and
    that is independent of the other statistics' replicates: an estimated reference's own training rows), s² is
    var(Δ*) + extra_a + extra_b. Without it, a true tie of C_data (fitted on 25 training pairs for 11 unknowns) and the
    Wiener estimator was named one of them in 18% of data sets at nominal 5% (``bench_intervals.py --parts
    study-cdata``).

    Example:
        >>> rng = np.random.default_rng(1); common = rng.normal(size=200)  # strongly correlated replicates
        >>> res = bootstrap_from_replicates({"a": 1.0, "b": 0.9},
        ...                                 {"a": 1.0 + common, "b": 0.9 + common + 0.01 * rng.normal(size=200)})
        >>> d = paired_difference(res, "a", "b"); round(d.estimate, 2), d.excludes_zero, d.p_value < 0.05
        (0.1, True, True)
    """
    if not isinstance(result.estimate, dict) or a not in result.estimate or b not in result.estimate:
        raise ConfigError(f"paired_difference needs a dict-valued bootstrap holding {a!r} and {b!r}")
    est = float(result.bias_corrected[a]) - float(result.bias_corrected[b])
    draws = np.asarray(result.samples[a], dtype=np.float64) - np.asarray(result.samples[b], dtype=np.float64)
    finite = draws[np.isfinite(draws)]
    B = finite.size
    if B < 2 or not math.isfinite(est):
        nan = float("nan")
        return PairedDifference(a=a, b=b, estimate=est, low=nan, high=nan, p_value=nan, ci=result.ci,
                                method="bootstrap (studentized, t with B − 1 df)", standard_error=nan, df=float(B - 1))
    extra = _extra_variance(result, a) + _extra_variance(result, b)
    se = math.sqrt(float(finite.var(ddof=1)) + extra)
    _, p = _t_test(est, se, B - 1)
    half = float(sps.t.ppf(0.5 + result.ci / 2, B - 1)) * se
    method = "bootstrap (studentized, t with B − 1 df)" + (", estimated reference's extra variance added" if extra > 0
                                                             else "")
    return PairedDifference(a=a, b=b, estimate=est, low=est - half, high=est + half, p_value=p, ci=result.ci,
                            method=method, resolution=0.0, standard_error=se, df=float(B - 1))


def _extra_variance(result: BootstrapResult, name: str) -> float:
    """The variance of ``name``'s estimate that its replicates miss (``BootstrapResult.extra_variance``; 0 if none)."""
    v = float((result.extra_variance or {}).get(name, 0.0))
    if not (math.isfinite(v) and v >= 0):
        raise ConfigError(f"extra_variance[{name!r}] must be finite and ≥ 0; got {v!r}")
    return v


def _max_t_p_values(t: np.ndarray, draws: np.ndarray, df: float, extra: np.ndarray | None = None) -> np.ndarray:
    """Single-step max-T adjusted one-sided p-values P(max_j T_j ≥ t_k) under H₀ (Hothorn, Bretz & Westfall
    2008), T a multivariate t with df degrees of freedom and the correlation of the replicates (B, K) — of their
    covariance plus diag(``extra``) (K,) when given (variances the replicates miss, independent of the others).

    Statistics that are ±inf (zero spread) are decided without the others: p = 0 for +inf, 1 for −inf or nan."""
    p = np.where(t == np.inf, 0.0, 1.0)
    live = np.isfinite(t)
    if not live.any():
        return p
    tl = t[live]
    if live.sum() == 1:
        p[live] = sps.t.sf(tl, df)
        return p
    with np.errstate(divide="ignore", invalid="ignore"):
        if extra is not None and np.any(extra[live] > 0):
            cov = np.cov(draws[:, live], rowvar=False) + np.diag(extra[live])
            sd = np.sqrt(np.diag(cov))
            R = np.nan_to_num(cov / np.outer(sd, sd), nan=0.0)
        else:
            R = np.nan_to_num(np.corrcoef(draws[:, live], rowvar=False), nan=0.0)
    np.fill_diagonal(R, 1.0)
    R = (1 - 1e-9) * R + 1e-9 * np.eye(len(R))  # references with identical replicates: keep R positive definite
    dist = sps.multivariate_t(shape=R, df=df)
    for i, ti in zip(np.flatnonzero(live), tl, strict=True):
        if ti > 8.0:  # far in the tail 1 − cdf underflows: Bonferroni's bound, equal to it there to many digits
            p[i] = min(1.0, len(tl) * float(sps.t.sf(ti, df)))
            continue
        # Genz's quasi-Monte Carlo integration with a fixed seed (deterministic; error ≈ 1e-5 near p = 0.025);
        # never below the single test's own p
        p[i] = min(1.0, max(1.0 - float(dist.cdf(np.full(len(tl), ti), random_state=0)), float(sps.t.sf(ti, df))))
    return p


def _bootstrap_t_p_values(t: np.ndarray, centre: np.ndarray, draws: np.ndarray, se_draws: np.ndarray) -> np.ndarray:
    """Single-step max-T adjusted one-sided p-values by the bootstrap-t: p_k = (1 + #{b : M*_b ≥ t_k})/(B + 1),
    M*_b = max_j (θ̂_j − θ*_bj)/s*_bj the largest studentized replicate of resample b (θ̂ the bootstrap world's
    truth, s* each replicate's own analytic standard error). Replicates without a finite positive s* count as
    exceeding every t (conservative); t = +inf gives 1/(B + 1), t = −inf or nan gives 1.

    Arguments:
        t: (K,) observed statistics (e₀ − ẽ_k)/s_k. centre: (K,) θ̂. draws, se_draws: (B, K)."""
    dev = centre - draws
    with np.errstate(divide="ignore", invalid="ignore"):
        z = dev / se_draws
    z[~(np.isfinite(z) & (se_draws > 0))] = np.inf
    # a replicate equal to the bootstrap world's truth deviates by nothing, whatever its standard error (a fixed
    # reference the surrogate equals exactly has error 0 and standard error 0 in every replicate: 0/0 is 0 here)
    z[dev == 0] = 0.0
    m = z.max(axis=1)
    B = len(m)
    p = np.array([(1 + np.sum(m >= tk)) / (B + 1) for tk in np.nan_to_num(t, nan=-np.inf)])
    return np.where(np.nan_to_num(t, nan=-np.inf) == -np.inf, 1.0, p)


# -------------------------------------------------------------------------------------------------- verdicts
#: ``ClosestVerdict.none_method`` when the analytic standard errors exist: both "none" tests must reject.
_NONE_BOTH = "bootstrap-t and max-T multivariate t (both must reject)"

#: The verdict rule of :func:`closest_reference` in words (also written into every :class:`ClosestVerdict`).
VERDICT_RULE = (
    "'none' unless the family of one-sided tests 'error_k < zero map's error' rejects at level (1 − ci)/2 with "
    "max-T adjusted p-values by two tests that must both reject (the bootstrap-t: each error studentized by its "
    "analytic standard error, the null distribution of the largest studentized replicate taken from the replicates "
    "themselves; and the multivariate t with B − 1 df, each error studentized by its replicates' standard "
    "deviation, plus any variance the replicates miss (an estimated reference's own rows); where the statistic "
    "has no analytic standard error, the second alone); "
    "otherwise the references whose paired difference with the smallest bias-corrected error (the replicated "
    "difference's variance plus any such missed variance) has a two-sided "
    "p-value above 1 − ci are tied with it (never dropped for their own interval), and the verdict is the smallest "
    "one's name when it ties with no other, else 'tie'"
)


@dataclass(frozen=True)
class ClosestVerdict(ResultMixin):
    """Which reference a surrogate is closest to, decided by paired tests (:func:`closest_reference`).

    Arguments:
        verdict: the reference's name when one is clearly closest; "tie" when the smallest errors cannot be
            told apart; "none" when no reference is clearly closer than the zero map (error 1).
        closest: the references tied for the smallest error (empty for "none").
        ranking: names by bias-corrected error, smallest first.
        differences: "b − best" → :class:`PairedDifference` of each other reference against the smallest.
        below_zero_map: name → True when the reference's error is below the zero map's at the family-wise level
            (its adjusted p-value in ``zero_map_p`` is at most (1 − ci)/2).
        rule: the decision rule in words.
        zero_map_p: name → max-T adjusted one-sided p-value of "error ≥ the zero map's error".
        none_p_value: the smallest of ``zero_map_p``: the p-value of the "none" hypothesis (no reference is closer
            than the zero map); the verdict is "none" exactly when it exceeds (1 − ci)/2.
        ci: confidence level of the paired intervals; the family-wise levels are 1 − ci (ties, two-sided) and
            (1 − ci)/2 ("none", one-sided).
        none_method: how ``zero_map_p`` was computed: "bootstrap-t and max-T multivariate t (both must reject)"
            (analytic standard errors of the estimate and of every replicate were available: the larger of the two
            p-values) or "max-T, multivariate t" (the approximation alone, used otherwise).
        far: True when a reference is named (closest or tied) but even the closest one is far: the lower end of
            its error's interval is at least ``far_error`` (by default half the zero map's error). "Closer than the
            zero map" is then a statistical fact of no practical weight: an untrained network whose surrogate
            explains 2% of the Wiener estimator's output energy (error 0.98 [0.981, 0.982]) is significantly closer
            to it than C = 0. Every display of the verdict (:meth:`text`, :meth:`words`) says "far" then.
        far_error: the threshold of ``far`` (an error, on the scale of the zero map's).

    Example:
        >>> rng = np.random.default_rng(0); noise = 0.01 * rng.normal(size=(200, 2))
        >>> res = bootstrap_from_replicates({"W": 0.1, "C": 0.1}, {"W": 0.1 + noise[:, 0], "C": 0.1 + noise[:, 1]})
        >>> v = closest_reference(res, ["W", "C"]); v.verdict, sorted(v.closest), v.below_zero_map
        ('tie', ['C', 'W'], {'W': True, 'C': True})
    """

    verdict: str
    closest: tuple[str, ...]
    ranking: tuple[str, ...]
    differences: dict[str, PairedDifference]
    below_zero_map: dict[str, bool]
    rule: str
    zero_map_p: dict[str, float] = field(default_factory=dict)
    none_p_value: float = float("nan")
    ci: float = 0.95
    none_method: str = "max-T, multivariate t"
    far: bool = False
    far_error: float = 0.5

    def text(self) -> str:
        """The verdict for a table cell: "none", a name, or "tie (a, b)", with ", far (error ≥ …)" when ``far``.

        Example:
            >>> ClosestVerdict("tie", ("W", "C"), ("W", "C"), {}, {}, "", far=True).text()
            'tie (W, C), far (error ≥ 0.5)'
        """
        base = f"tie ({', '.join(self.closest)})" if self.verdict == "tie" else self.verdict
        return base + (f", far (error ≥ {self.far_error:g})" if self.far else "")

    def words(self) -> str:
        """The verdict in a sentence's words ("closest to W", "tied between W and C", "closest to no reference"),
        saying when even the closest reference is far.

        Example:
            >>> ClosestVerdict("W", ("W",), ("W", "C"), {}, {}, "", far=True).words()
            'closest to W, but far from it (error ≥ 0.5 with confidence: a significant, not a close, resemblance)'
        """
        if self.verdict == "none":
            return "closest to no reference (none is clearly closer than the zero map)"
        base = (f"tied between {' and '.join(self.closest)}" if self.verdict == "tie"
                else f"closest to {self.verdict}")
        if self.far:
            them = "them" if self.verdict == "tie" else "it"
            return (f"{base}, but far from {them} (error ≥ {self.far_error:g} with confidence: a significant, not a "
                    "close, resemblance)")
        return base


def closest_reference(result: BootstrapResult, names: Sequence[str], zero_map_error: float = 1.0,
                      far_fraction: float = 0.5) -> ClosestVerdict:
    """Decide which of ``names`` (errors of one surrogate against several references) is closest.

    The one verdict rule of linlens (dense, subspace and Fourier routes):

    1. **"none" with family-wise control.** For each reference k, T_k = (e₀ − ẽ_k)/s_k, with ẽ_k its
       bias-corrected error, s_k its standard error and e₀ the zero map's error (1 for the data-weighted error).
       The hypothesis "no reference is closer than the zero map" (every e_k ≥ e₀) is rejected when max_k T_k
       exceeds the (1 + ci)/2 quantile of the maximum of the K statistics under the null (single-step max-T;
       Hothorn, Bretz & Westfall 2008), so a network no better than the zero map is called closest to something
       in at most (1 − ci)/2 of data sets, whatever the number of references (testing only the smallest error
       on its own did so in 13–18% with three). That quantile comes from two approximations, and **both must
       reject** (the larger of their two p-values decides; an intersection of tests keeps the smaller level):

       - the **multivariate t**: s_k the standard deviation of the replicates, the maximum of a multivariate t with
         B − 1 df and the replicates' correlation. Alone (the rule where no analytic standard errors exist) it
         called "none" falsely in 3.4% and 4.0% of data sets at nominal 2.5% (1 and 3 references): for a network
         with no linear part the error's estimate and its spread are correlated (0.3–0.4), which gives the
         studentized gap a heavier tail than t (Hall 1992: the one-term Edgeworth term of a studentized statistic);
       - the **bootstrap-t**, when the result carries analytic standard errors of the estimate and of every
         replicate (``standard_error``/``se_samples``; e.g. :func:`~linlens.surrogate.resampling.bootstrap`
         with :func:`~linlens.surrogate.resampling.corrected_data_weighted_error` ``(..., standard_error=True)``):
         s_k is the analytic (HC2 delta-method) standard error, and the null distribution is that of
         M* = max_k (θ̂_k − θ*_k)/s*_k over the replicates, θ̂_k the bootstrap world's truth (the plug-in) and
         s*_k each replicate's own standard error; p_k = (1 + #{M* ≥ T_k})/(B + 1). It carries that correlation,
         but alone it called "none" falsely in 3.1% ± 0.4% (2 references) and 2.9% ± 0.4% (3) of 2,000 dense-study
         data sets (d = 3, 100 fit rows, f = |Gy|): where the residual variance grows with the leverage (|Gy| is
         large where y is), HC2-scaled rows make the replicates' spread 3–5% short of the true one (HC3 rows
         matched it to 0.1%), and the dense study's studentizer (the homoscedastic Kronecker form) is 15–40% short;
         the studentized replicates then have a lighter far tail than the real statistic (a replicate beat every
         one of 100 replicates in 2% of data sets, not 1%). Both together: 2.5% and 2.6% on the same data sets;
         the measured rates per route are in ``benchmarks/bench_intervals.py`` and docs/guide/inverse.md.
    2. **Ties kept.** Otherwise the reference with the smallest ẽ is compared with every other one by
       :func:`paired_difference` (interval and p-value from the same replicates); those with p > 1 − ci tie with
       it, whatever their own interval against the zero map (the smallest error is below e₀ once step 1 rejects,
       and the tie says the data cannot tell which one it is).
    3. The verdict is the smallest reference's name when nothing ties with it, else "tie".
    4. **Far.** When a reference is named but the lower end of the closest one's interval is at least
       ``far_fraction`` × the zero map's error, the verdict is marked ``far``: significant, but no resemblance
       (an untrained network can be significantly closer to the Wiener estimator than C = 0 at error 0.98).

    A true tie of two references is named wrongly in at most about 1 − ci of data sets (the paired test's level);
    ``benchmarks/bench_intervals.py`` measures both error rates and the power, and a small version runs in the
    test suite.

    Arguments:
        result: a dict-valued :class:`BootstrapResult` holding the errors (bias-corrected estimates and replicates
            from the same resamples).
        names: the references' keys in ``result``.
        zero_map_error: the error of the zero map C = 0 (1 for the data-weighted error).
        far_fraction: a named verdict is marked far when the closest reference's error is, with confidence, at
            least this fraction of the zero map's error, in (0, 1].

    Returns:
        :class:`ClosestVerdict`.

    Example:
        >>> rng = np.random.default_rng(2); noise = 0.01 * rng.normal(size=(200, 2))
        >>> res = bootstrap_from_replicates({"M": 0.05, "2M": 0.6}, {"M": 0.05 + noise[:, 0], "2M": 0.6 + noise[:, 1]})
        >>> v = closest_reference(res, ["M", "2M"]); v.verdict, v.none_p_value < 1e-6
        ('M', True)
    """
    names = list(names)
    if not names:
        raise ConfigError("closest_reference needs at least one reference name")
    if not (isinstance(far_fraction, (int, float)) and 0 < far_fraction <= 1):
        raise ConfigError(f"far_fraction must be in (0, 1]; got {far_fraction!r}")
    if not isinstance(result.estimate, dict) or any(k not in result.estimate for k in names):
        raise ConfigError(f"closest_reference needs a dict-valued bootstrap holding every name in {names}")
    alpha = 1.0 - result.ci
    bc = {k: float(result.bias_corrected[k]) for k in names}
    ranking = tuple(sorted(names, key=lambda k: (not math.isfinite(bc[k]), bc[k])))
    # a reference without a finite estimate or with fewer than two finite replicates (e.g. C_data whose
    # bias-corrected denominator is ≤ 0: its error is reported as infinite) cannot be tested: it takes no part in
    # the max-T test nor in the ties (p = 1, never closest), instead of emptying every other reference's replicates
    all_names = names
    untestable = [k for k in names if not (math.isfinite(bc[k]) and np.isfinite(
        np.asarray(result.samples[k], dtype=np.float64)).sum() >= 2)]
    names = [k for k in names if k not in untestable]
    best = next((k for k in ranking if k not in untestable), ranking[0])
    draws = np.column_stack([np.asarray(result.samples[k], dtype=np.float64) for k in names] or
                            [np.zeros(0)])
    studentized = (bool(names) and isinstance(result.se_samples, dict) and isinstance(result.standard_error, dict)
                   and all(k in result.se_samples and k in result.standard_error for k in names))
    method = _NONE_BOTH if studentized else "max-T, multivariate t"
    n_finite = int(np.isfinite(draws).all(axis=1).sum())
    if studentized and 1.0 / (n_finite + 1) > alpha / 2:
        # the bootstrap-t's p-values are (1 + count)/(B + 1): below B = 2/(1 − ci) − 1 they can never reach the
        # level (1 − ci)/2 and "none" would be forced; the multivariate-t approximation decides instead, and says so
        studentized = False
        method = (f"max-T, multivariate t (B = {n_finite} is too few for the bootstrap-t, whose smallest p-value "
                  f"1/(B + 1) exceeds (1 − ci)/2 = {alpha / 2:g})")
    if studentized:
        se_draws = np.column_stack([np.asarray(result.se_samples[k], dtype=np.float64) for k in names])
        keep = np.isfinite(draws).all(axis=1)
        draws, se_draws = draws[keep], se_draws[keep]
    else:
        draws = draws[np.isfinite(draws).all(axis=1)]
    B = draws.shape[0] if names else 0
    if B >= 2:  # the multivariate-t approximation (studentized by the replicates' standard deviation, with the
        # variance they miss added: BootstrapResult.extra_variance)
        extra = np.array([_extra_variance(result, k) for k in names])
        sd = np.sqrt(draws.var(axis=0, ddof=1) + extra)
        t = np.array([_t_test(zero_map_error, s, B - 1, null=bc[k])[0] for k, s in zip(names, sd, strict=True)])
        t[t == 0] = -np.inf  # no spread and no gap (e.g. the zero map itself): nothing to reject
        padj = _max_t_p_values(np.nan_to_num(t, nan=-np.inf), draws, B - 1, extra)
    else:
        padj = np.ones(len(names))
    if B >= 2 and studentized:
        se = np.array([float(result.standard_error[k]) for k in names])
        t = np.array([_t_test(zero_map_error, s, B - 1, null=bc[k])[0] for k, s in zip(names, se, strict=True)])
        t[t == 0] = -np.inf
        # the bootstrap world's counterpart of the corrected estimate's error ẽ − θ is ẽ*_b − θ̂: replicates of an
        # analytically corrected statistic are ẽ*_b themselves (centre θ̂); replicates of the plug-in ("bootstrap
        # bias", ẽ = 2θ̂ − mean θ*) carry the bias once more, ẽ*_b ≈ θ*_b − (mean θ* − θ̂), so their centre is mean θ*
        centre = np.array([float(result.estimate[k]) if "analytic" in result.method
                           else 2 * float(result.estimate[k]) - bc[k] for k in names])
        # both tests must reject (intersection: the larger p-value): the bootstrap-t alone called "none" falsely in
        # 3.1% (2 references) and 2.9% (3) of 2,000 dense-study data sets at nominal 2.5% — its studentizer and its
        # replicates' spread fall short of the true spread alike where the residual variance grows with leverage
        # (HC2 rows; see the docstring), a shortfall the bootstrap world does not reproduce
        padj = np.maximum(padj, _bootstrap_t_p_values(np.nan_to_num(t, nan=-np.inf), centre, draws, se_draws))
    zero_p = {k: float(p) for k, p in zip(names, padj, strict=True)} | dict.fromkeys(untestable, 1.0)
    below = {k: zero_p[k] <= alpha / 2 for k in all_names}
    none_p = min(zero_p.values())
    diffs = {f"{k} − {best}": paired_difference(result, k, best) for k in ranking if k != best}
    if not none_p <= alpha / 2:
        verdict, closest = "none", ()
    else:
        tied = [best] + [k for k in ranking if k != best
                         and k not in untestable and not diffs[f"{k} − {best}"].p_value <= alpha]
        verdict, closest = (best, (best,)) if len(tied) == 1 else ("tie", tuple(tied))
    far_error = float(far_fraction) * float(zero_map_error)
    far = bool(verdict != "none" and float(result.low[best]) >= far_error)
    rule = VERDICT_RULE + (f" (ci = {result.ci:g}, zero map's error {zero_map_error:g}, B = {B}; far when the "
                           f"closest error's interval lies above {far_error:g})") + (
        f"; not testable (no finite estimate or fewer than 2 finite replicates), left out of the tests: "
        f"{', '.join(untestable)}" if untestable else "")
    return ClosestVerdict(verdict=verdict, closest=closest, ranking=ranking, differences=diffs,
                          below_zero_map=below, rule=rule, zero_map_p=zero_p, none_p_value=float(none_p),
                          ci=float(result.ci), none_method=method, far=far, far_error=far_error)


def below_detection(plug_in: float, estimate: float) -> bool:
    """True when a bias-corrected estimate is below the detection limit: the estimated bias plug_in − estimate is
    positive and at least as large as the corrected estimate itself (the number left is no larger than the noise
    it was corrected for; at a true error of 1e-5 the corrected estimate was 57–161× the truth). Such a value is
    reported as "below detection: < upper end of its interval" (:func:`interval_text`), not as a point.

    Example:
        >>> below_detection(0.004, 0.001), below_detection(0.30, 0.27), below_detection(0.5, 0.5)
        (True, False, False)
    """
    bias = float(plug_in) - float(estimate)
    return bool(bias > 0 and float(estimate) <= bias)


def interval_text(v: Mapping[str, Any]) -> str:
    """"estimate [low, high]" of a :func:`summarize` entry, or "below detection: < high" when it is flagged.

    Example:
        >>> interval_text({"estimate": 0.001, "low": 0.0, "high": 0.009, "below_detection": True})
        'below detection: < 0.009'
    """
    if v.get("below_detection"):
        return f"below detection: < {v['high']:.3g}"
    return f"{v['estimate']:.3g} [{v['low']:.3g}, {v['high']:.3g}]"


def summarize(result: BootstrapResult, names: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """name → {plug_in, estimate, low, high, std, below_detection, upper_bound} of a dict-valued bootstrap (for
    tables and JSON). ``below_detection`` (:func:`below_detection`): the bias correction is at least the corrected
    estimate, so only ``upper_bound`` (= high, a one-sided (1 + ci)/2 upper confidence bound) is informative.

    Example:
        >>> r = bootstrap_from_replicates({"a": 0.004, "b": 0.3}, {"a": np.full(4, 0.007), "b": np.full(4, 0.33)})
        >>> s = summarize(r, {"a": "Wiener"}); sorted(s), s["Wiener"]["below_detection"], round(s["b"]["estimate"], 6)
        (['Wiener', 'b'], True, 0.27)
    """
    keys = result.names()
    label = dict(names or {})
    out: dict[str, dict[str, Any]] = {}
    for k in keys:
        plug, est = float(result.estimate[k]), float(result.bias_corrected[k])
        out[label.get(k, k)] = {"plug_in": plug, "estimate": est, "low": float(result.low[k]),
                                "high": float(result.high[k]), "std": float(result.std[k]),
                                "below_detection": below_detection(plug, est), "upper_bound": float(result.high[k])}
    return out


# ---------------------------------------------------------------------------------------- noise level σ
@dataclass(frozen=True)
class NoiseStdEstimate(ResultMixin):
    """σ̂ of i.i.d. noise from residuals, with its χ² interval (:func:`noise_std_estimate`).

    Arguments:
        value: σ̂. low, high: the interval's ends. level: its nominal coverage. dof: ν = n·d − d.

    Example:
        >>> e = noise_std_from_sums(ss=99.0, n=100, d=1)  # ν = 99, σ̂² = 99/99
        >>> e.value, e.dof, e.low < 1.0 < e.high
        (1.0, 99, True)
    """

    value: float
    low: float
    high: float
    level: float
    dof: int


def noise_std_estimate(residuals: Any, level: float = 0.95) -> NoiseStdEstimate:
    """σ̂ of i.i.d. Gaussian noise from residuals r = y − Ax (n rows of d values), with a χ² interval: the one
    estimate of σ on every route of ``linlens analyze`` and in :func:`linlens.workflows.study.inverse_study`.

    Each of the d columns is centred by its own mean (an offset in y, e.g. a sensor's bias, is not noise), which
    costs one degree of freedom per column: for i.i.d. noise of variance σ², E Σᵢⱼ (rᵢⱼ − r̄ⱼ)² = (n − 1) d σ².
    So σ̂² = Σ (rᵢⱼ − r̄ⱼ)² / ν with ν = n·d − d is unbiased, and ν σ̂²/σ² ~ χ²_ν gives the interval. (Dividing by
    n·d, as the study once did, is low by the factor (n − 1)/n: 1/3 at n = 3.)

    Arguments:
        residuals: (n_samples, d), n ≥ 2; finite.
        level: nominal coverage of the interval.

    Returns:
        :class:`NoiseStdEstimate` (a given σ is checked by :func:`linlens.validation.check_noise_std`).

    Example:
        >>> r = np.random.default_rng(0).normal(scale=0.1, size=(2000, 5))
        >>> e = noise_std_estimate(r); bool(e.low < 0.1 < e.high), round(e.value, 2), e.dof
        (True, 0.1, 9995)
    """
    r = np.asarray(residuals, dtype=np.float64)
    r = r[:, None] if r.ndim == 1 else r.reshape(len(r), -1)
    n, d = r.shape
    if n < 2 or d < 1:
        raise ShapeError(f"σ needs residuals of at least 2 rows; got shape {r.shape}")
    if not np.isfinite(r).all():
        raise NonFiniteError("residuals y − Ax hold NaN or Inf: σ cannot be estimated from them")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}")
    return noise_std_from_sums(float(np.sum((r - r.mean(axis=0)) ** 2)), n, d, level)


def noise_std_from_sums(ss: float, n: int, d: int, level: float = 0.95) -> NoiseStdEstimate:
    """:func:`noise_std_estimate` from the column-centred sum of squares ``ss`` = Σᵢⱼ (rᵢⱼ − r̄ⱼ)² of n rows of d
    residuals (merged from blocks, e.g. on Dask workers).

    Example:
        >>> r = np.random.default_rng(0).normal(scale=0.1, size=(2000, 5))
        >>> noise_std_from_sums(float(np.sum((r - r.mean(0)) ** 2)), 2000, 5) == noise_std_estimate(r)
        True
    """
    if n < 2 or d < 1:
        raise ShapeError(f"σ needs residuals of at least 2 rows; got {n} rows of {d}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1); got {level}")
    nu = n * d - d
    value = math.sqrt(ss / nu)
    lo = math.sqrt(ss / sps.chi2.ppf((1 + level) / 2, nu))
    hi = math.sqrt(ss / sps.chi2.ppf((1 - level) / 2, nu))
    return NoiseStdEstimate(value=value, low=lo, high=hi, level=level, dof=nu)


@dataclass(frozen=True)
class GainSplit(ResultMixin):
    """network − baseline on the same test points, split into the network's nonlinear part and its linear part.

    Per test point, with squared errors e²_net, e²_sur (the network's own linear surrogate C) and e²_base (a linear
    map fitted elsewhere, e.g. C_data on training pairs): e²_net − e²_base = (e²_net − e²_sur) + (e²_sur − e²_base).
    The first term is the **nonlinear** part: the network beats its own linear part only when what it adds to it
    helps. The second is **linear**: C against the baseline, which includes the baseline's own estimation error (a
    network that IS the true Wiener estimator beats a C_data fitted on 500 pairs, p = 2e-9), so a negative value is
    "a better linear map than C_data", never a nonlinear gain. A surrogate fitted on finitely many probes of the
    network and tested on other points carries its own estimation error, which raises e²_sur by ``surrogate_bias``
    per point in expectation and would make the network look nonlinearly better: that bias is moved from the
    nonlinear to the linear term, and the surrogate's randomness (``surrogate_se``) widens both intervals.

    Arguments:
        total: network − baseline (paired t; the route's historic "network vs C_data" test).
        nonlinear: network − surrogate, + surrogate_bias (interval and p-value: paired t with surrogate_se added).
        linear: surrogate − baseline, − surrogate_bias (same standard error as ``nonlinear``).
        surrogate_bias: per-point expected excess of the surrogate's squared error from its own estimation (0 when it
            is scored in-sample or is exact).
        surrogate_se: standard error the surrogate's own randomness adds to both parts' mean differences.
        n: number of test points.
        truncated_fraction: the inputs' variance outside the surrogate's subspace (a surrogate fitted on the top
            principal subspace, matrix-free route); above rounding, beating the surrogate can be the network's linear
            response out there, so the verdict is "gain over the truncated surrogate", not "nonlinear gain".

    Example:
        >>> s = GainSplit(*(PairedDifference(a, b, -1.0, -1.5, -0.5, 1e-4, 0.95, "paired t")
        ...                 for a, b in (("network", "C_data"), ("network", "surrogate"), ("surrogate", "C_data"))),
        ...               surrogate_bias=0.0, surrogate_se=0.0, n=100)
        >>> s.nonlinear_gain, s.verdict, s.linear_verdict
        (True, 'nonlinear gain', 'better linear map')
    """

    total: PairedDifference
    nonlinear: PairedDifference
    linear: PairedDifference
    surrogate_bias: float
    surrogate_se: float
    n: int
    truncated_fraction: float = 0.0

    @property
    def truncated(self) -> bool:
        """True when the surrogate sees only a subspace holding less than all of the inputs' variance."""
        return bool(self.truncated_fraction > _TRUNCATION_ROUNDING)

    @property
    def nonlinear_gain(self) -> bool:
        """True exactly when the network beats its own (untruncated) linear surrogate: the nonlinear part's interval
        lies below 0."""
        return bool(self.nonlinear.high < 0 and not self.truncated)

    @property
    def verdict(self) -> str:
        """"nonlinear gain", "gain over the truncated surrogate" (nonlinear or outside its subspace: not told
        apart), "nonlinear loss" (the surrogate is better) or "no nonlinear gain shown"."""
        if self.nonlinear.high < 0:
            return "gain over the truncated surrogate" if self.truncated else "nonlinear gain"
        return "nonlinear loss" if self.nonlinear.low > 0 else "no nonlinear gain shown"

    @property
    def linear_verdict(self) -> str:
        """"better linear map" (the surrogate beats the baseline), "worse linear map" or "tie"."""
        if self.linear.high < 0:
            return "better linear map"
        return "worse linear map" if self.linear.low > 0 else "tie"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of every field with the verdicts (``verdict``, ``linear_verdict``,
        ``nonlinear_gain``)."""
        return super().to_dict() | {"verdict": self.verdict, "linear_verdict": self.linear_verdict,
                                    "nonlinear_gain": self.nonlinear_gain}

    def words(self, baseline: str = "C_data", *, scale: float = 1.0, baseline_note: str = "",
              nonlinear_note: str = "") -> str:
        """The two findings in words, each with its interval and p-value (differences divided by ``scale``, e.g.
        the values per point, to give them per entry). ``baseline_note`` says what the baseline's error includes
        (e.g. "its estimation error from 500 training pairs"), ``nonlinear_note`` what else the network − surrogate
        difference can hold (e.g. a surrogate truncated to a subspace).

        Example:
            >>> s = gain_split([1.0, 2.0, 3.0, 2.5], [1.0, 2.0, 3.0, 2.5], [1.5, 2.4, 3.3, 3.0])
            >>> first, second = s.words().split("; ")  # an exactly linear network: its surrogate is itself
            >>> first[:80]
            'no nonlinear gain: the network and its own linear surrogate cannot be told apart'
            >>> first[80:]
            ' (network − surrogate 0 [0, 0], p = 1)'
            >>> second
            'its surrogate is a better linear map than C_data (surrogate − C_data -0.425 [-0.556, -0.233], p = 0.013)'
        """
        def num(d: PairedDifference) -> str:
            return f"{d.estimate / scale:.3g} [{d.low / scale:.3g}, {d.high / scale:.3g}], {d.p_text()}"

        note = f", {nonlinear_note}" if nonlinear_note else ""
        v = self.verdict
        if v == "nonlinear gain":
            first = ("a nonlinear gain: the network beats its own linear surrogate (network − surrogate "
                     f"{num(self.nonlinear)}{note})")
        elif v == "gain over the truncated surrogate":
            first = ("the network beats its own linear surrogate on the inputs' top principal subspace (network − "
                     f"surrogate {num(self.nonlinear)}{note}): a nonlinear gain, or the network's linear response to "
                     f"the {self.truncated_fraction:.3g} of the inputs' variance outside that subspace — not told "
                     "apart here (a nonlinear gain can be claimed only with every component kept)")
        elif v == "nonlinear loss":
            first = ("no nonlinear gain: its own linear surrogate is better than the network (network − surrogate "
                     f"{num(self.nonlinear)}{note})")
        else:
            first = ("no nonlinear gain: the network and its own linear surrogate cannot be told apart (network − "
                     f"surrogate {num(self.nonlinear)}{note})")
        bn = f", which includes {baseline_note}" if baseline_note else ""
        lv = self.linear_verdict
        said = {"better linear map": f"its surrogate is a better linear map than {baseline}",
                "worse linear map": f"its surrogate is a worse linear map than {baseline}",
                "tie": f"its surrogate and {baseline} cannot be told apart"}[lv]
        return f"{first}; {said} (surrogate − {baseline} {num(self.linear)}{bn})"


#: an outside-variance fraction at or below this is rounding (the subspace holds all of the inputs' variance)
_TRUNCATION_ROUNDING = 1e-10
#: a mean difference of squared errors at or below this fraction of their size is no finding: float32 outputs round
#: at ~6e-8, and an exactly linear float32 network differed from its float64 surrogate by ~2e-10 of its test error,
#: which the paired t (validly, at its nominal rate) called a "nonlinear gain" in 1 of 20 data sets
GAIN_RESOLUTION = 1e-6


def _hall(T: float, a: float) -> float:
    """Hall's monotone skewness-removing transform g(T) = T + a(1 + 2T²) + (4/3)a²T³ of a studentized mean."""
    return T + a * (1 + 2 * T * T) + (4.0 / 3.0) * a * a * T**3


def _hall_inverse(q: float, a: float) -> float:
    """The T with :func:`_hall` (T, a) = q: ((1 + 6a(q − a))^(1/3) − 1)/(2a) (q itself when a = 0)."""
    if a == 0:
        return q
    return float((np.cbrt(1 + 6 * a * (q - a)) - 1) / (2 * a))


def _shifted_paired(d: np.ndarray, shift: float, extra_se: float, a: str, b: str, conf: float,
                    scale: float) -> PairedDifference:
    """Paired test of mean(d) + shift with standard error √(sd(d)²/n + extra_se²), Student's t with n − 1 degrees of
    freedom after Hall's skewness-removing transform (the per-point differences of squared errors are skewed: a
    network with no gain was called one in 3.3–3.8% of data sets at nominal 2.5% with the plain t, 2.2% with the
    transform; ``tests/test_nonlinear_gain.py``). An estimate at most :data:`GAIN_RESOLUTION` × ``scale`` (the
    squared errors' size) is 0, and a nonzero standard error is at least that much.

    References:
        P. Hall, "On the removal of skewness by transformation", J. R. Statist. Soc. B 54 (1992) 221–228;
        N. J. Johnson, "Modified t tests and confidence intervals for asymmetrical populations", JASA 73 (1978)
        536–544.
    """
    n = len(d)
    tol = GAIN_RESOLUTION * scale
    est = float(d.mean()) + shift
    est = 0.0 if abs(est) <= tol else est
    # the resolution is a floor of the standard error, not a threshold that zeroes it: a zeroed s.e. beside an
    # estimate just above tol made a t ≈ 1.8 difference "certain" (p = 0); identical differences keep s.e. 0
    se = math.sqrt(float(d.var(ddof=1)) / n + extra_se**2)
    se = max(se, tol) if se > 0 else 0.0
    df = n - 1
    method = "paired t" + (" (surrogate's estimation error corrected)" if shift or extra_se else "")
    if se == 0:
        _, p = _t_test(est, se, df)
        return PairedDifference(a=a, b=b, estimate=est, low=est, high=est, p_value=p, ci=conf, method=method,
                                standard_error=se, df=float(df))
    # the mean's skewness κ₃/σ³ (third cumulant μ₃/n² of the mean of n points; the surrogate's part is ~normal)
    skew = float(np.mean((d - d.mean()) ** 3)) / (n * n * se**3)
    ah = skew / 6.0
    T = _hall(est / se, ah)
    p = min(1.0, float(2 * sps.t.sf(abs(T), df)))
    q = float(sps.t.ppf(0.5 + conf / 2, df))
    lo, hi = est - _hall_inverse(q, ah) * se, est - _hall_inverse(-q, ah) * se
    return PairedDifference(a=a, b=b, estimate=est, low=lo, high=hi, p_value=p, ci=conf,
                            method=method + ", Hall's skewness correction", standard_error=se, df=float(df))


def gain_split(squared_error_model: Any, squared_error_surrogate: Any, squared_error_baseline: Any, *,
               surrogate_bias: float = 0.0, surrogate_se: float = 0.0, confidence: float = 0.95,
               baseline: str = "C_data", truncated_fraction: float = 0.0) -> GainSplit:
    """The one rule that says whether a network has a nonlinear gain: split network − baseline on the same test
    points into network − its own linear surrogate (nonlinear) and surrogate − baseline (linear), each with a paired
    t-test (see :class:`GainSplit`). Only the nonlinear part's interval below 0 is a nonlinear gain; beating an
    *estimated* linear map (C_data, an estimated Wiener estimator) is not one, since that map's test error includes
    its own estimation error.

    The surrogate scored on points it was not fitted on carries its own estimation error: pass its expected excess
    squared error per point (``surrogate_bias``, e.g. from
    :func:`linlens.surrogate.resampling.surrogate_excess`) and the standard error its randomness adds to the mean
    difference (``surrogate_se``). Without them (in-sample scoring) the nonlinear difference is shrunk toward 0 by a
    factor ≈ 1 − (d_in + 1)/n, not pushed below it. A mean difference at most :data:`GAIN_RESOLUTION` (1e-6) of
    the squared errors' size is 0 and a nonzero standard error is at least that much (float32 outputs round at ~6e-8: no
    gain from rounding), and per-point differences at float64 rounding are 0.

    Arguments:
        squared_error_model: (n,) per-point squared errors ‖f(yᵢ) − xᵢ‖² of the network.
        squared_error_surrogate: (n,) of its linear surrogate on the same points.
        squared_error_baseline: (n,) of the baseline linear map (C_data) on the same points.
        surrogate_bias: ≥ 0, per point.
        surrogate_se: ≥ 0.
        confidence: level of the intervals.
        baseline: the baseline's name.
        truncated_fraction: the inputs' variance outside the surrogate's subspace, when it is fitted on one.

    Returns:
        :class:`GainSplit` (differences per point; negative: the first named is better).

    Example:
        >>> rng = np.random.default_rng(0); x = rng.choice([-1.0, 1.0], 4000); y = x + 0.5 * rng.normal(size=4000)
        >>> bayes, wiener = np.tanh(y / 0.25), 0.8 * y  # E[x | y] for binary x; the linear MMSE map 1/(1 + 0.25)
        >>> s = gain_split((bayes - x) ** 2, (wiener - x) ** 2, (0.75 * y - x) ** 2)
        >>> s.verdict, s.nonlinear.p_value < 1e-6, s.linear_verdict  # 0.75 y is a worse linear map than 0.8 y
        ('nonlinear gain', True, 'better linear map')
    """
    conf = _check_confidence(confidence)
    e_net = _as_float(squared_error_model, "squared_error_model")
    e_sur = _as_float(squared_error_surrogate, "squared_error_surrogate")
    e_base = _as_float(squared_error_baseline, "squared_error_baseline")

    def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # per-point differences below rounding are 0 (an exactly
        d = a - b  # linear network and its own surrogate differ by ulps, which a t-test would call a gain 2.5% of
        return np.where(np.abs(d) <= _ROUNDING * (np.abs(a) + np.abs(b)), 0.0, d)  # the time)

    if not len(e_net) == len(e_sur) == len(e_base):
        raise ShapeError(f"squared errors must be on the same points; got {len(e_net)}, {len(e_sur)}, {len(e_base)}")
    if len(e_net) < 2:
        raise EmptyInputError(f"the gain split needs at least 2 test points; got {len(e_net)}")
    bias, extra = float(surrogate_bias), float(surrogate_se)
    if not (math.isfinite(bias) and bias >= 0 and math.isfinite(extra) and extra >= 0):
        raise ConfigError(f"surrogate_bias and surrogate_se must be finite and ≥ 0; got {bias!r}, {extra!r}")
    scale = float(np.mean(e_net + e_sur + e_base))
    return GainSplit(
        total=_shifted_paired(diff(e_net, e_base), 0.0, 0.0, "network", baseline, conf, scale),
        nonlinear=_shifted_paired(diff(e_net, e_sur), bias, extra, "network", "surrogate", conf, scale),
        linear=_shifted_paired(diff(e_sur, e_base), -bias, extra, "surrogate", baseline, conf, scale),
        surrogate_bias=bias, surrogate_se=extra, n=len(e_net), truncated_fraction=float(truncated_fraction))
