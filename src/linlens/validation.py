"""Input checks shared by every capability: conversion to float64 arrays with clear errors, option checks
(device, seed, memory budget). The overflow-safe squared norms live in :mod:`linlens.linalg.norms`.

Functions here raise :mod:`linlens.errors` exceptions whose messages name the argument.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import numpy as np

from linlens.errors import (
    ComplexInputError,
    ConfigError,
    EmptyInputError,
    MemoryLimitError,
    NonFiniteError,
    ShapeError,
)

__all__ = [
    "as_array",
    "check_finite",
    "check_real",
    "is_torch",
    "to_numpy",
    "check_gram_range",
    "GRAM_MAX_ABS",
    "check_device",
    "check_seed",
    "parse_bytes",
    "default_max_memory",
    "check_memory",
]

# |x| above this makes x² · n overflow float64 in a Gram matrix (sqrt(1.8e308) ≈ 1.3e154, with room for n)
GRAM_MAX_ABS = 1e150


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_complex(x: Any) -> bool:
    if is_torch(x):
        return bool(x.is_complex())
    if isinstance(x, np.ndarray):
        return np.iscomplexobj(x)
    try:
        return np.iscomplexobj(np.asarray(x))
    except (TypeError, ValueError):
        return False


def check_real(x: Any, name: str) -> Any:
    """Raise :class:`ComplexInputError` if ``x`` (array, tensor or sequence) holds complex numbers.

    linlens analyses real-valued maps; a complex value is refused the same way for every format and the API
    (a silent cast would drop the imaginary part). Split a complex array into real columns instead:
    ``np.hstack([z.real, z.imag])``.
    """
    if _is_complex(x):
        raise ComplexInputError(f"{name} holds complex numbers; linlens analyses real-valued maps (split them into "
                                "real columns, e.g. np.hstack([z.real, z.imag]))")
    return x


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Convert a numpy array, torch tensor (any device) or sequence to a numpy array of ``dtype``.

    Complex data asked for as a real ``dtype`` raises :class:`ComplexInputError` (never a silent cast).
    """
    if np.dtype(dtype).kind in "fiub":
        check_real(x, "the array")
    if is_torch(x):
        if x.device.type == "meta":
            raise ShapeError("the tensor is on the 'meta' device (it has no values)")
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
    if np.dtype(dtype).kind in "fiub":
        check_real(x, name)
    if is_torch(x) and x.device.type == "meta":
        raise ShapeError(f"{name} is a tensor on the 'meta' device (it has shapes but no values)")
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


# ------------------------------------------------------------------------------ overflow-safe squared norms
def check_gram_range(a: np.ndarray, name: str, row0: int = 0) -> np.ndarray:
    """Refuse values whose squares overflow a float64 Gram matrix (|x| ≥ :data:`GRAM_MAX_ABS` = 1e150).

    Example:
        >>> check_gram_range(np.ones((2, 2)), "inputs").shape
        (2, 2)
    """
    if a.size and a.dtype.kind in "fiu":
        big = np.abs(a) >= GRAM_MAX_ABS
        if big.any():
            where = np.argwhere(big)[0]
            raise NonFiniteError(
                f"{name} reach |x| = {float(np.max(np.abs(a))):.3g} (first at row {row0 + int(where[0])}): squares "
                f"of values ≥ {GRAM_MAX_ABS:.0e} overflow float64 in the Gram matrix; rescale them (divide by a "
                "constant: the surrogate scales with it)")
    return a


# --------------------------------------------------------------------------------------------- options
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?)$")


def check_device(device: Any) -> str:
    """Validate a device option: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``xpu[:N]``, available here.

    Refuses an empty string, unknown names and ``meta`` (a device without values) with a :class:`ConfigError`.

    Example:
        >>> check_device("cpu")
        'cpu'
    """
    dev = str(device).strip() if device is not None else "auto"
    if dev == "meta":
        raise ConfigError("--device meta: the meta device holds no values, so a model cannot be probed on it")
    if not _DEVICE_RE.match(dev):
        raise ConfigError(f"--device {device!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    if dev.startswith("cuda"):
        import torch  # lazy: this module stays importable without loading torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {dev}: CUDA is not available on this machine")
        idx = int(dev.split(":")[1]) if ":" in dev else 0
        if idx >= torch.cuda.device_count():
            raise ConfigError(f"--device {dev}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev == "mps":
        import torch  # lazy, as above

        if not torch.backends.mps.is_available():
            raise ConfigError("--device mps: MPS is not available on this machine")
    return dev


def check_seed(seed: Any) -> int:
    """A seed must be an integer in [0, 2⁶⁴) (what numpy and torch both accept).

    Example:
        >>> check_seed(2**64 - 1) == 2**64 - 1
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ConfigError(f"--seed must be an integer in [0, 2^64); got {seed!r}")
    return int(seed)


_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
          "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}


def parse_bytes(text: Any) -> int:
    """``"512M"``, ``"4G"``, ``"1.5GiB"``, ``"1000000"`` → bytes (binary units).

    Example:
        >>> parse_bytes("1.5G") == 3 * 2**29
        True
    """
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        val = int(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or m.group(2).upper() not in _UNITS:
            raise ConfigError(f"--max-memory {text!r} is not a size; use e.g. 512M, 4G")
        val = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if val <= 0:
        raise ConfigError(f"--max-memory must be positive; got {text!r}")
    return val


def default_max_memory() -> int:
    """Half of the machine's physical memory (8 GiB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _fmt_bytes(n: float) -> str:
    for unit, k in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(need: float, what: str, limit: int | None = None, option: str = "--max-memory",
                 alternative: str = "reduce the size") -> None:
    """Refuse work whose memory estimate ``need`` (bytes) exceeds ``limit`` (default :func:`default_max_memory`),
    naming the estimate, ``what`` needs it, the option that raises the limit and the ``alternative``.

    Example:
        >>> check_memory(1e3, "a tiny Gram matrix", limit=2**20)
    """
    lim = default_max_memory() if limit is None else int(limit)
    if need > lim:
        raise MemoryLimitError(f"{what} needs about {_fmt_bytes(need)}, over the memory limit of {_fmt_bytes(lim)}; "
                               f"raise it with {option} (or {alternative})")
