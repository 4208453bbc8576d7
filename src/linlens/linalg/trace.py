"""Randomized trace estimation with intervals: tr(M S Mᵀ) from i.i.d. probes z with E zzᵀ = S.

For any operator M given only as a function, E‖M z‖² = tr(M S Mᵀ) when E zzᵀ = S. With Rademacher probes
(S = I) this is Hutchinson's estimator of ‖M‖²_F = tr(MᵀM); with probes drawn from a distribution (rows of a
data set, centred) it is the expected squared norm E‖M x‖² under that distribution. The probes are i.i.d., so
the estimate is a sample mean and its interval a Student-t interval on that mean; a ratio of two such means
(e.g. E‖(CA − I)x‖² / E‖x‖² on the same rows) gets a delta-method interval. Coverage is checked by simulation
against closed-form traces (``tests/linalg/test_trace.py``).

References:
    M. F. Hutchinson. A stochastic estimator of the trace of the influence matrix for Laplacian smoothing
    splines. Comm. Statist. Simulation Comput. 19 (1990) 433–450.
    H. Avron, S. Toledo. Randomized algorithms for estimating the trace of an implicit symmetric positive
    semi-definite matrix. J. ACM 58 (2011) 8:1–8:34.

Example:
    >>> M = np.diag([1.0, 2.0, 3.0])
    >>> e = hutchinson(lambda Z: Z @ M.T, 3, n_probes=200, seed=0)  # ‖M‖²_F = 14
    >>> bool(e.low <= 14.0 <= e.high)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats as sps

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError

__all__ = ["TraceEstimate", "mean_estimate", "ratio_estimate", "hutchinson", "rademacher"]


@dataclass(frozen=True)
class TraceEstimate(ResultMixin):
    """An estimate from i.i.d. probes with its interval.

    Arguments:
        estimate: the sample mean (or ratio of means).
        low: lower end of the interval.
        high: upper end.
        std_error: standard error of the estimate.
        n_probes: probes used.
        ci: confidence level.
        method: how the estimate and the interval were made.

    Example:
        >>> e = mean_estimate(np.array([1.0, 2.0, 3.0]))  # mean 2, standard error 1/√3
        >>> e.estimate, round(e.std_error, 6), e.scaled(2.0).estimate, (e + e).estimate
        (2.0, 0.57735, 4.0, 4.0)
    """

    estimate: float
    low: float
    high: float
    std_error: float
    n_probes: int
    ci: float
    method: str

    def scaled(self, c: float) -> TraceEstimate:
        """The same estimate times a positive constant c (e.g. σ² or 1/E‖x‖²)."""
        if not c > 0:
            raise ConfigError(f"scale must be positive; got {c!r}")
        return TraceEstimate(self.estimate * c, self.low * c, self.high * c, self.std_error * c, self.n_probes,
                             self.ci, self.method)

    def __add__(self, other: TraceEstimate) -> TraceEstimate:
        """Sum of two independent estimates (standard errors added in quadrature, normal interval)."""
        se = math.hypot(self.std_error, other.std_error)
        q = float(sps.norm.ppf(0.5 + self.ci / 2))
        est = self.estimate + other.estimate
        return TraceEstimate(est, est - q * se, est + q * se, se, min(self.n_probes, other.n_probes), self.ci,
                             "sum of independent estimates, normal interval")


def _check(ci: float) -> float:
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    return float(ci)


def mean_estimate(values: np.ndarray, ci: float = 0.95, method: str = "mean of i.i.d. probes") -> TraceEstimate:
    """The mean of i.i.d. probe values q_i (e.g. ‖M z_i‖²) with a Student-t interval (n − 1 degrees of freedom).

    Example:
        >>> mean_estimate(np.array([1.0, 2.0, 3.0])).estimate
        2.0
    """
    ci = _check(ci)
    q = np.asarray(values, dtype=np.float64).ravel()
    n = q.size
    if n < 2:
        raise ShapeError(f"an interval needs at least 2 probes; got {n}")
    m = float(q.mean())
    se = float(q.std(ddof=1) / math.sqrt(n))
    t = float(sps.t.ppf(0.5 + ci / 2, n - 1))
    return TraceEstimate(m, m - t * se, m + t * se, se, n, ci, method + f"; Student-t interval, {n} probes")


def ratio_estimate(num: np.ndarray, den: np.ndarray, ci: float = 0.95,
                   method: str = "ratio of means on the same probes") -> TraceEstimate:
    """mean(num) / mean(den) over the same i.i.d. probes, with a delta-method Student-t interval
    (standard error of mean(num − R·den) / mean(den)).

    Example:
        >>> r = ratio_estimate(np.array([1.0, 2.0, 3.0, 2.0]), np.array([2.0, 4.0, 6.0, 4.0]))
        >>> r.estimate, r.std_error
        (0.5, 0.0)
    """
    ci = _check(ci)
    a, b = np.asarray(num, dtype=np.float64).ravel(), np.asarray(den, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ShapeError(f"numerator and denominator need the same ≥ 2 probes; got {a.size} and {b.size}")
    mb = float(b.mean())
    if not mb > 0:
        raise ShapeError("the denominator's mean must be positive")
    r = float(a.mean() / mb)
    n = a.size
    se = float((a - r * b).std(ddof=1) / math.sqrt(n) / mb)
    t = float(sps.t.ppf(0.5 + ci / 2, n - 1))
    return TraceEstimate(r, r - t * se, r + t * se, se, n, ci,
                         method + f"; delta-method Student-t interval, {n} probes")


def rademacher(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) independent ±1 entries (Hutchinson's probes: E zzᵀ = I).

    Example:
        >>> sorted(set(rademacher(4, 3).ravel().tolist()))
        [-1.0, 1.0]
    """
    return np.random.default_rng(seed).integers(0, 2, size=(n, d)).astype(np.float64) * 2.0 - 1.0


def hutchinson(apply: Callable[[np.ndarray], np.ndarray], dim: int, *, n_probes: int = 64, seed: int = 0,
               batch: int = 64, ci: float = 0.95) -> TraceEstimate:
    """‖M‖²_F = tr(MᵀM) of an operator given as a function, by Hutchinson's estimator with Rademacher probes.

    Arguments:
        apply: maps rows Z (k, dim) to rows of M z (k, d_out).
        dim: M's input dimension.
        n_probes: Rademacher probes (the interval's width falls as 1/√n_probes).
        seed: the probes' seed.
        batch: probes per call of ``apply``.
        ci: confidence level.

    Returns:
        :class:`TraceEstimate`.

    Example:
        >>> e = hutchinson(lambda Z: 2.0 * Z, 5, n_probes=8)  # ‖2I‖²_F = 20, exact for Rademacher probes
        >>> e.estimate, e.std_error
        (20.0, 0.0)
    """
    if n_probes < 2:
        raise ConfigError(f"n_probes must be at least 2; got {n_probes}")
    Z = rademacher(int(n_probes), int(dim), seed)
    q = np.concatenate([np.einsum("ij,ij->i", Mz := np.asarray(apply(Z[s:s + batch]), dtype=np.float64), Mz)
                        for s in range(0, len(Z), batch)])
    return mean_estimate(q, ci, "Hutchinson (Rademacher probes)")
