"""Input checks shared by every capability: conversion to float64 arrays with clear errors.

Functions here raise :mod:`linlens.errors` exceptions whose messages name the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import EmptyInputError, NonFiniteError, ShapeError

__all__ = ["as_array", "check_finite", "is_torch", "to_numpy"]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Convert a numpy array, torch tensor (any device) or sequence to a numpy array of ``dtype``."""
    if is_torch(x):
        x = x.detach().to("cpu")
        if x.is_complex():
            return x.numpy().astype(np.complex128)
        x = x.double().numpy() if dtype == np.float64 else x.numpy()
    return np.asarray(x, dtype=dtype)


def check_finite(a: np.ndarray, name: str) -> np.ndarray:
    """Raise :class:`NonFiniteError` naming ``name`` and the first bad row if ``a`` holds NaN or Inf."""
    ok = np.isfinite(a)
    if not ok.all():
        bad = np.argwhere(~ok)[0]
        n_bad = int((~ok).sum())
        where = f"row {bad[0]}" if a.ndim >= 1 else "value"
        raise NonFiniteError(f"{name} contains {n_bad} NaN/Inf value(s), first at {where}")
    return a


def as_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = 2,
    dtype: Any = np.float64,
    allow_empty: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Validate and convert ``x`` to a numpy array.

    Arguments:
        x: array-like or torch tensor.
        name: argument name used in error messages.
        ndim: required number of dimensions (an int or a tuple of allowed ones); None for any.
        dtype: numpy dtype of the result.
        allow_empty: accept arrays with zero samples.
        finite: reject NaN and Inf.

    Returns:
        The converted array.

    Example:
        >>> as_array([[1, 2], [3, 4]], "X").dtype
        dtype('float64')
    """
    try:
        a = to_numpy(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a numeric array; could not convert: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ShapeError(f"{name} must be {want}; got shape {tuple(a.shape)}")
    if not allow_empty and a.size == 0:
        raise EmptyInputError(f"{name} is empty (shape {tuple(a.shape)})")
    if finite and np.issubdtype(a.dtype, np.number):
        check_finite(a, name)
    return a
