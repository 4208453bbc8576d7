"""Image inputs of the Fourier route: shapes (L,) or (H, W), views of the input arrays, float64 blocks."""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import EmptyInputError, ShapeError
from linlens.validation import check_finite, is_torch

__all__ = [
]

_BATCH = 64  # images per FFT block (bounds the temporaries)


def _check_shape(image_shape: Any) -> tuple[int, ...]:
    shp = tuple(int(s) for s in image_shape)
    if len(shp) not in (1, 2) or min(shp) < 2:
        raise ShapeError(f"image_shape must be (L,) or (H, W) with sizes ≥ 2; got {shp}")
    return shp


def _images(X: Any, image_shape: tuple[int, ...] | None, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, L), (n, H, W), (n, 1, H, W) or flat (n, d) with image_shape → (n, *shape) view in the input's real
    dtype (no float64 copy of a large array: blocks are converted by :func:`_block`), and the shape."""
    x = X.detach().cpu().numpy() if is_torch(X) else np.asarray(X)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ShapeError(f"{name} must be a real numeric array; got dtype {x.dtype}")
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ShapeError(f"{name}: only single-channel images are supported; got shape {x.shape} (C = "
                             f"{x.shape[1]}); analyse one channel at a time")
        x = x[:, 0]
    if image_shape is not None:
        shp = _check_shape(image_shape)
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != int(np.prod(shp)):
            raise ShapeError(f"{name} must hold images of shape {shp} (flat or not); got {x.shape}")
        x = x.reshape(x.shape[0], *shp)
    elif x.ndim not in (2, 3):
        raise ShapeError(f"{name} must be (n, L), (n, H, W) or (n, 1, H, W); got shape {x.shape}")
    if x.shape[0] == 0:
        raise EmptyInputError(f"{name} is empty (shape {x.shape})")
    return x, _check_shape(x.shape[1:])


def _block(x: np.ndarray, s: int, name: str) -> np.ndarray:
    """Rows s … s + _BATCH as float64, checked finite (the error names the rows)."""
    return check_finite(np.asarray(x[s : s + _BATCH], dtype=np.float64), f"{name} (rows {s}–{s + _BATCH - 1})")


def _mean(x: np.ndarray) -> float:
    """Mean of all entries in float64, block by block (no float64 copy of the whole array)."""
    return float(sum(np.sum(x[s : s + _BATCH], dtype=np.float64) for s in range(0, len(x), _BATCH)) / x.size)
