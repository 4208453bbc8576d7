"""The S-curve of the authors' code: Gaussian density along the curve, uniform across it.

η0 ~ N(0, scale_eta0²), η1 ~ U(0, 1), t = 3π η0, point = (sin t, 2 η1, sign(t)(cos t − 1)) plus optional
isotropic Gaussian noise. Unlike scikit-learn's ``make_s_curve`` (uniform t), the density along the curve is
Gaussian, so the true local standard deviations are known: 3π·scale_eta0 along the curve (|dx/dt| = 1, so
arc length equals t), 2/√12 across it (uniform on [0, 2]) and ``noise`` normal to it.

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496

Example:
    >>> X, t = make_s_curve(100, seed=0)
    >>> X.shape, t.shape
    ((100, 3), (100,))
"""

from __future__ import annotations

import math

import numpy as np

from linlens.errors import ConfigError

__all__ = ["make_s_curve", "s_curve_tangent", "s_curve_true_std"]


def make_s_curve(
    n_samples: int, scale_eta0: float = 0.15, noise: float = 0.0, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the S-curve.

    Arguments:
        n_samples: number of points (≥ 1).
        scale_eta0: std of η0; t = 3π η0 (0.15 narrow, 0.3 wide).
        noise: std of isotropic Gaussian noise added to the points.
        seed: random seed.

    Returns:
        ``(X, t)``: points ``(n_samples, 3)`` and curve parameter ``(n_samples,)``.

    Example:
        >>> X, t = make_s_curve(5, seed=1)
        >>> bool(np.allclose(X[:, 0], np.sin(t)))
        True
    """
    if n_samples < 1 or scale_eta0 <= 0 or noise < 0:
        raise ConfigError(
            f"need n_samples >= 1, scale_eta0 > 0, noise >= 0; got {n_samples}, {scale_eta0}, {noise}"
        )
    rng = np.random.default_rng(seed)
    eta0 = rng.normal(0.0, scale_eta0, n_samples)
    eta1 = rng.uniform(0.0, 1.0, n_samples)
    t = 3 * math.pi * eta0
    X = np.stack([np.sin(t), 2 * eta1, np.sign(t) * (np.cos(t) - 1)], axis=1)
    if noise > 0:
        X = X + noise * rng.standard_normal(X.shape)
    return X, t


def s_curve_tangent(t: np.ndarray) -> np.ndarray:
    """Unit tangent of the curve at parameter ``t``: (cos t, 0, −sign(t) sin t), shape ``(n, 3)``.

    Example:
        >>> s_curve_tangent(np.array([0.5])).round(3).tolist()
        [[0.878, 0.0, -0.479]]
    """
    t = np.asarray(t, dtype=np.float64)
    return np.stack([np.cos(t), np.zeros_like(t), -np.sign(t) * np.sin(t)], axis=1)


def s_curve_true_std(scale_eta0: float = 0.15, noise: float = 0.0) -> np.ndarray:
    """True standard deviations [along the curve, across it, noise] = [3π·scale_eta0, 2/√12, noise].

    Example:
        >>> s_curve_true_std(0.15, 0.05).round(3).tolist()
        [1.414, 0.577, 0.05]
    """
    return np.array([3 * math.pi * scale_eta0, 2 / math.sqrt(12), noise])
