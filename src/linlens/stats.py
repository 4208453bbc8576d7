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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, ShapeError

__all__ = ["McNemarResult", "PairedTestResult", "mcnemar", "paired_squared_error_test"]


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
