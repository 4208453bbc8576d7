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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, ShapeError

__all__ = [
    "McNemarResult",
    "PairedTestResult",
    "mcnemar",
    "paired_squared_error_test",
    "BootstrapResult",
    "bootstrap_from_replicates",
    "PairedDifference",
    "paired_difference",
    "ClosestVerdict",
    "closest_reference",
    "summarize",
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
    """

    estimate: Any
    bias_corrected: Any
    low: Any
    high: Any
    std: Any
    samples: Any
    ci: float
    method: str = "basic, bootstrap bias"

    def names(self) -> list[str]:
        """Names of a dict-valued statistic (empty for a scalar one)."""
        return list(self.estimate) if isinstance(self.estimate, dict) else []

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary without the replicates (they can be large)."""
        return super().to_dict() | {"samples": None, "n_boot": int(_n_samples(self.samples))}

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


def bootstrap_from_replicates(estimate: Mapping[str, float], replicates: Mapping[str, Any], ci: float = 0.95
                              ) -> BootstrapResult:
    """A :class:`BootstrapResult` from plug-in estimates and replicates computed elsewhere (e.g. the Fourier
    route's Poisson bootstrap): bias-corrected estimates 2θ̂ − mean θ* and basic intervals, as :func:`bootstrap`.

    Example:
        >>> r = bootstrap_from_replicates({"a": 1.0}, {"a": np.array([1.1, 1.2, 1.3, 1.2])})
        >>> round(r.bias_corrected["a"], 6)
        0.8
    """
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    samples = {k: np.asarray(replicates[k], dtype=np.float64).ravel() for k in estimate}
    parts = {k: _basic(float(estimate[k]), samples[k], ci) for k in estimate}
    return BootstrapResult(estimate={k: float(v) for k, v in estimate.items()},
                           bias_corrected={k: p[0] for k, p in parts.items()}, low={k: p[1] for k, p in parts.items()},
                           high={k: p[2] for k, p in parts.items()}, std={k: p[3] for k, p in parts.items()},
                           samples=samples, ci=float(ci))


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
        p_value: two-sided p-value of "a − b = 0" (the level at which the interval just reaches 0).
        ci: confidence level.
        method: "bootstrap (basic)" or "paired t".
        resolution: the smallest p the method can resolve (2/B for the bootstrap, 0 for the t-test).
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

    def p_text(self) -> str:
        """The p-value for a report: "p < 0.013" below the method's resolution, "p < 1e-16" when it underflows."""
        if self.p_value < max(self.resolution, 1e-16):
            return f"p < {max(self.resolution, 1e-16):.2g}"
        return f"p = {self.p_value:.2g}"

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0."""
        return bool(self.low > 0 or self.high < 0)


def paired_difference(result: BootstrapResult, a: str, b: str) -> PairedDifference:
    """Bias-corrected difference of two statistics of one :func:`bootstrap` run, with its basic interval.

    The replicates of a and b come from the same resamples, so their difference carries the pairing. The
    p-value is the smallest level at which the basic interval reaches 0,
    p = 2 min(#{Δ* ≤ c}, #{Δ* ≥ c})/B with c the reflection point of the interval, capped at 1; its
    resolution is 2/B (p = 0 reads "p < 2/B").

    Example:
        >>> rng = np.random.default_rng(1); common = rng.normal(size=200)  # strongly correlated replicates
        >>> res = bootstrap_from_replicates({"a": 1.0, "b": 0.9}, {"a": 1.0 + common, "b": 0.9 + common})
        >>> d = paired_difference(res, "a", "b"); round(d.estimate, 6), d.excludes_zero
        (0.1, True)
    """
    if not isinstance(result.estimate, dict) or a not in result.estimate or b not in result.estimate:
        raise ConfigError(f"paired_difference needs a dict-valued bootstrap holding {a!r} and {b!r}")
    est = float(result.estimate[a]) - float(result.estimate[b])
    draws = np.asarray(result.samples[a]) - np.asarray(result.samples[b])
    corrected = None
    if "analytic" in result.method:
        corrected = float(result.bias_corrected[a]) - float(result.bias_corrected[b])
    bc, lo, hi, _ = _basic(est, draws, result.ci, corrected)
    finite = draws[np.isfinite(draws)]
    B = finite.size
    if B == 0 or not math.isfinite(est):
        p = float("nan")
    else:
        c = est + (est if corrected is None else corrected)  # 0 lies in the interval iff q_lo ≤ c ≤ q_hi
        p = min(1.0, 2 * min(np.sum(finite <= c), np.sum(finite >= c)) / B)
    return PairedDifference(a=a, b=b, estimate=bc, low=lo, high=hi, p_value=float(p), ci=result.ci,
                            method="bootstrap (basic)", resolution=2.0 / B if B else 1.0)


# -------------------------------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class ClosestVerdict(ResultMixin):
    """Which reference a surrogate is closest to, decided by paired tests.

    Arguments:
        verdict: the reference's name when one is clearly closest; "tie" when the smallest errors cannot be
            told apart; "none" when no reference is clearly closer than the zero map (error 1).
        closest: the references tied for the smallest error (empty for "none").
        ranking: names by bias-corrected error, smallest first.
        differences: "b − best" → :class:`PairedDifference` of each other reference against the smallest.
        below_zero_map: name → True when the error's interval lies below the zero map's error 1.
        rule: the decision rule in words.
    """

    verdict: str
    closest: tuple[str, ...]
    ranking: tuple[str, ...]
    differences: dict[str, PairedDifference]
    below_zero_map: dict[str, bool]
    rule: str


def closest_reference(result: BootstrapResult, names: Sequence[str], zero_map_error: float = 1.0) -> ClosestVerdict:
    """Decide which of ``names`` (errors of one surrogate against several references) is closest.

    The reference with the smallest bias-corrected error is "closest" only if (1) the paired interval of every
    other reference's error minus its error lies above 0, and (2) its own interval lies below the zero map's
    error (1 for the data-weighted error against any reference). References whose paired interval contains 0
    tie with it; when none passes (2), the verdict is "none".

    Example:
        >>> rng = np.random.default_rng(2); noise = 0.01 * rng.normal(size=200)
        >>> res = bootstrap_from_replicates({"M": 0.05, "2M": 0.6}, {"M": 0.05 + noise, "2M": 0.6 + noise})
        >>> closest_reference(res, ["M", "2M"]).verdict
        'M'
    """
    names = list(names)
    if not names:
        raise ConfigError("closest_reference needs at least one reference name")
    bc = {k: float(result.bias_corrected[k]) for k in names}
    ranking = tuple(sorted(names, key=lambda k: (not math.isfinite(bc[k]), bc[k])))
    best = ranking[0]
    diffs = {f"{k} − {best}": paired_difference(result, k, best) for k in ranking[1:]}
    below = {k: bool(float(result.high[k]) < zero_map_error) for k in names}
    tied = [best] + [k for k in ranking[1:] if not diffs[f"{k} − {best}"].low > 0]
    tied = [k for k in tied if below[k]]
    if not below[best] or not tied:
        verdict, closest = "none", ()
    elif len(tied) == 1:
        verdict, closest = best, (best,)
    else:
        verdict, closest = "tie", tuple(tied)
    rule = (f"closest = smallest bias-corrected error whose paired {int(round(result.ci * 100))}% interval against "
            f"every other reference excludes 0 and whose own interval lies below the zero map's error "
            f"{zero_map_error:g}; 'tie' when paired intervals contain 0; 'none' when no reference is clearly "
            "closer than the zero map")
    return ClosestVerdict(verdict=verdict, closest=closest, ranking=ranking, differences=diffs,
                          below_zero_map=below, rule=rule)


def summarize(result: BootstrapResult, names: Mapping[str, str] | None = None) -> dict[str, dict[str, float]]:
    """name → {estimate, bias_corrected, low, high, std} of a dict-valued bootstrap (for tables and JSON)."""
    keys = result.names()
    label = dict(names or {})
    return {label.get(k, k): {"plug_in": float(result.estimate[k]), "estimate": float(result.bias_corrected[k]),
                              "low": float(result.low[k]), "high": float(result.high[k]),
                              "std": float(result.std[k])} for k in keys}
