"""The Yin-Yang classification data set of Kriener, Göltz and Petrovici, generated exactly as their code does.

The generator reproduces ``lkriener/yin_yang_data_set/dataset.py``: a ``np.random.RandomState(seed)`` (the
same stream as the older ``np.random.seed(seed)`` version), a class drawn uniformly per sample with
``randint(3)``, then rejection sampling of a point in the unit square until it lies inside the big circle
and belongs to that class. Classes are therefore balanced in expectation.

References:
    L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", arXiv:2102.08211.

Example:
    >>> X, y = yinyang(10, seed=0)
    >>> X.shape, X.dtype, y.dtype
    ((10, 2), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import numpy as np

from linlens.errors import ConfigError

__all__ = ["yinyang", "yinyang_splits", "which_class", "CLASS_NAMES", "R_SMALL", "R_BIG"]

R_SMALL = 0.1
R_BIG = 0.5
#: Kriener's names; label 1 (``is_yin``) is *named* "yang" there — inconsistent but harmless.
CLASS_NAMES = ("yin", "yang", "dot")
_FEATURES = ("xy", "kriener")
_VARIANTS = ("3class", "binary", "nodots")


def which_class(x: float, y: float, r_small: float = R_SMALL, r_big: float = R_BIG) -> int:
    """Kriener's class of a point: 2 inside a dot, else ``int(is_yin)``.

    Arguments:
        x, y: coordinates in the unit square.
        r_small, r_big: dot radius and big-circle radius.

    Returns:
        0, 1 or 2.

    Example:
        >>> which_class(0.75, 0.5), which_class(0.25, 0.5)
        (2, 2)
    """
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    criterion1 = d_right <= r_small
    criterion2 = r_small < d_left <= 0.5 * r_big
    criterion3 = y > r_big and d_right > 0.5 * r_big
    is_yin = criterion1 or criterion2 or criterion3
    if d_right < r_small or d_left < r_small:
        return 2
    return int(is_yin)


def _binary_class(x: float, y: float) -> int:
    """The authors' binary variant: dots are merged, the right dot into 1 and the left dot into 0."""
    c = which_class(x, y)
    if c != 2:
        return c
    d_right = np.sqrt((x - 1.5 * R_BIG) ** 2 + (y - R_BIG) ** 2)
    d_left = np.sqrt((x - 0.5 * R_BIG) ** 2 + (y - R_BIG) ** 2)
    return int(d_right <= R_SMALL or (R_SMALL < d_left <= 0.5 * R_BIG))


def yinyang(
    n: int, seed: int, features: str = "xy", variant: str = "3class"
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` Yin-Yang samples with Kriener's generator.

    References:
        L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", arXiv:2102.08211.

    Arguments:
        n: number of samples (≥ 1).
        seed: seed of the ``np.random.RandomState`` stream (Kriener: train 42, validation 41, test 40).
        features: ``"xy"`` → (x, y) as in the Koopman paper's code; ``"kriener"`` → (x, y, 1−x, 1−y).
        variant: ``"3class"`` (Kriener: yin, yang, dot); ``"binary"`` (authors' variant: dots merged, the
            right dot into 1 and the left into 0, same sampling stream); ``"nodots"`` (authors' variant: the
            goal is drawn from {0, 1} and points in a dot are rejected).

    Returns:
        ``(X, y)``: X float32 (n, 2) or (n, 4), y int64 (n,).

    Example:
        >>> X, y = yinyang(5, seed=42, features="kriener")
        >>> bool(np.allclose(X[:, 2], 1 - X[:, 0]))
        True
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n must be a positive integer; got {n!r}")
    if features not in _FEATURES:
        raise ConfigError(f"features must be one of {_FEATURES}; got {features!r}")
    if variant not in _VARIANTS:
        raise ConfigError(f"variant must be one of {_VARIANTS}; got {variant!r}")
    rng = np.random.RandomState(seed)
    n_goals = 2 if variant == "nodots" else 3
    vals = np.empty((n, 2), dtype=np.float64)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        goal = rng.randint(n_goals)
        while True:
            x, y = rng.rand(2) * 2.0 * R_BIG
            if np.sqrt((x - R_BIG) ** 2 + (y - R_BIG) ** 2) > R_BIG:
                continue
            c = which_class(x, y)
            if c == goal:
                break
        vals[i] = (x, y)
        # binary: sampled on Kriener's 3 classes (same stream), then the dots are merged
        labels[i] = _binary_class(x, y) if variant == "binary" else c
    if features == "kriener":
        vals = np.concatenate([vals, 1.0 - vals], axis=1)
    return vals.astype(np.float32), labels


def yinyang_splits(features: str = "xy", variant: str = "3class") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kriener's standard splits: train (5000, seed 42), val (1000, seed 41), test (1000, seed 40).

    Arguments:
        features: ``"xy"`` or ``"kriener"`` (see :func:`yinyang`).
        variant: ``"3class"``, ``"binary"`` or ``"nodots"``.

    Returns:
        ``{"train": (X, y), "val": (X, y), "test": (X, y)}``.

    Example:
        >>> {k: v[0].shape for k, v in yinyang_splits().items()}
        {'train': (5000, 2), 'val': (1000, 2), 'test': (1000, 2)}
    """
    return {
        "train": yinyang(5000, 42, features, variant),
        "val": yinyang(1000, 41, features, variant),
        "test": yinyang(1000, 40, features, variant),
    }
