"""Resampling statistics of surrogates: bootstrap intervals and paired tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens._results import ResultMixin
from linlens.errors import ConfigError, NumericalWarning
from linlens.surrogate.estimator import LinearSurrogate

__all__ = ["BootstrapResult", "bootstrap"]


@dataclass(frozen=True)
class BootstrapResult(ResultMixin):
    """Bootstrap percentile intervals of a statistic of the refitted surrogate.

    Arguments:
        estimate: statistic on the full data (float, or dict name → float).
        low: lower percentile bound (same structure).
        high: upper percentile bound (same structure).
        samples: (n_boot,) statistic values, or dict name → (n_boot,).
        ci: confidence level.
    """

    estimate: Any
    low: Any
    high: Any
    samples: Any
    ci: float



def bootstrap(
    X: Any,
    Y: Any,
    statistic: Callable[[np.ndarray, np.ndarray], float | dict[str, float]],
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    fit_intercept: bool = True,
    alpha: float = 0.0,
) -> BootstrapResult:
    """Resample rows with replacement, refit a :class:`LinearSurrogate`, and take percentile intervals.

    References:
        Efron, Tibshirani. An Introduction to the Bootstrap (1993), percentile intervals.

    Arguments:
        X: inputs (n_samples, d_in).
        Y: outputs (n_samples, d_out).
        statistic: ``statistic(coef (d_out, d_in), intercept (d_out,))`` → float or dict of floats.
        n_boot: number of resamples.
        seed: seed of the resampling.
        ci: confidence level of the two-sided interval.
        fit_intercept: passed to the surrogate.
        alpha: ridge penalty passed to the surrogate.

    Returns:
        :class:`BootstrapResult`.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 1)); Y = 2 * X + 0.1 * rng.normal(size=(100, 1))
        >>> res = bootstrap(X, Y, lambda c, b: float(c[0, 0]), n_boot=50)
        >>> bool(res.low < 2 < res.high)
        True
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer; got {n_boot!r}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    sur = LinearSurrogate(fit_intercept=fit_intercept, alpha=alpha)
    x, y, _ = sur._validate(X, Y)
    est = statistic(*_fit_coef(sur, x, y))
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    draws = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        for _ in range(n_boot):
            idx = rng.integers(0, n, size=n)
            draws.append(statistic(*_fit_coef(sur, x[idx], y[idx])))
    q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
    if isinstance(est, dict):
        samples = {key: np.array([float(d[key]) for d in draws]) for key in est}
        lo = {key: float(np.percentile(v, q[0])) for key, v in samples.items()}
        hi = {key: float(np.percentile(v, q[1])) for key, v in samples.items()}
        est = {key: float(v) for key, v in est.items()}
    else:
        samples = np.array([float(d) for d in draws])
        lo, hi = float(np.percentile(samples, q[0])), float(np.percentile(samples, q[1]))
        est = float(est)
    return BootstrapResult(estimate=est, low=lo, high=hi, samples=samples, ci=float(ci))


def _fit_coef(sur: LinearSurrogate, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sur.fit(x, y)
    return sur.coef_, sur.intercept_
