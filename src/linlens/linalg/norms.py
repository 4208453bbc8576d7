"""Squared norms without underflow or overflow: the one formula behind data-weighted errors.

Squaring first underflows to 0 below ~1e-154 and overflows to inf above ~1e154; scaling by the largest
magnitude first keeps every intermediate in range, so a ratio ‖num‖²/‖den‖² is wrong only where the ratio
itself is outside float64.

Example:
    >>> y = np.full(4, 1e-200)
    >>> float(np.sum(y**2)), ratio_of_sq_norms(3 * y, y)
    (0.0, 9.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import NonFiniteError

__all__ = ["scaled_sq_norm", "ratio_of_sq_norms"]


def scaled_sq_norm(a: Any, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """‖a‖² as ``scale² · sumsq`` without underflow or overflow: ``scale = max|a|`` and ``sumsq = Σ (a/scale)²``.

    Squaring first underflows to 0 for entries below ~1e-154 and overflows to inf above ~1e154; scaling by the
    largest magnitude first keeps ``sumsq`` in [1, a.size] (0 for an all-zero ``a``, with scale 0).

    Arguments:
        a: array (any shape), real or complex.
        axis: reduce over this axis only (None: all entries).

    Returns:
        (scale, sumsq), float64 arrays (0-d when ``axis`` is None).

    Example:
        >>> s, q = scaled_sq_norm(np.array([3e-200, 4e-200]))
        >>> float(s), float(q * 16)  # ‖a‖² = s²·q = 25e-400: below the float64 range
        (4e-200, 25.0)
    """
    x = np.abs(np.asarray(a))
    x = x.astype(np.float64) if x.dtype != np.float64 else x
    if x.size == 0:
        shape = () if axis is None else np.delete(np.array(x.shape), axis)
        return np.zeros(shape), np.zeros(shape)
    scale = np.max(x, axis=axis, keepdims=True)
    if not np.all(np.isfinite(scale)):
        raise NonFiniteError("scaled_sq_norm: the array holds NaN/Inf")
    safe = np.where(scale > 0, scale, 1.0)
    sumsq = np.sum((x / safe) ** 2, axis=axis, keepdims=True)
    squeeze = (lambda v: v.reshape(())) if axis is None else (lambda v: np.squeeze(v, axis=axis))
    return squeeze(scale), squeeze(sumsq)


def ratio_of_sq_norms(num: Any, den: Any, axis: int | None = None) -> Any:
    """‖num‖² / ‖den‖² computed through :func:`scaled_sq_norm`: no underflow to 0 on tiny inputs, no
    inf/inf = NaN on huge ones. The one formula behind data-weighted errors E‖(C−R)y‖²/E‖Ry‖².

    Arguments:
        num, den: arrays of any (possibly different) shapes; with ``axis`` the shapes must agree off it.
        axis: ratio per slice along this axis (None: one ratio).

    Returns:
        The ratio (float, or an array with ``axis``); ``nan`` where both are zero, ``inf`` where only ``den`` is.

    Example:
        >>> y = np.full(10, 1e-170)
        >>> ratio_of_sq_norms(2 * y, y), ratio_of_sq_norms(2e170 * np.ones(3), 1e170 * np.ones(3))
        (4.0, 4.0)
    """
    sn, qn = scaled_sq_norm(num, axis)
    sd, qd = scaled_sq_norm(den, axis)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # ((s_n/s_d)·√(q_n/q_d))²: overflows or underflows only where the ratio itself is outside float64
        root = (sn / np.where(sd > 0, sd, 1.0)) * np.sqrt(qn / np.where(qd > 0, qd, 1.0))
        r = np.where(sd > 0, root**2, np.where(sn > 0, np.inf, np.nan))
    return float(r) if np.ndim(r) == 0 else r
