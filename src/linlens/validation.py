"""Input checks shared by every capability: conversion to float64 arrays with clear errors, option checks
(device, seed, memory budget). The overflow-safe squared norms live in :mod:`linlens.linalg.norms`.

Functions here raise :mod:`linlens.errors` exceptions whose messages name the argument.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import (
    ComplexInputError,
    ConfigError,
    EmptyInputError,
    InputFileError,
    MemoryLimitError,
    ModelError,
    NonFiniteError,
    ShapeError,
)

__all__ = [
    "import_attr",
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
    "check_noise_std",
    "check_covariance",
    "noise_std_disagreement",
    "check_estimated_noise_std",
    "check_rows",
]

# |x| above this makes x² · n overflow float64 in a Gram matrix (sqrt(1.8e308) ≈ 1.3e154, with room for n)
GRAM_MAX_ABS = 1e150


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch when it is not loaded).

    Example:
        >>> import torch
        >>> is_torch(torch.zeros(2)), is_torch(np.zeros(2))
        (True, False)
    """
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

    Example:
        >>> check_real(np.ones(2), "inputs").tolist()
        [1.0, 1.0]
        >>> check_real(np.array([1j]), "inputs")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ComplexInputError: inputs holds complex numbers; ...
    """
    if _is_complex(x):
        raise ComplexInputError(f"{name} holds complex numbers; linlens analyses real-valued maps (split them into "
                                "real columns, e.g. np.hstack([z.real, z.imag]))")
    return x


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Convert a numpy array, torch tensor (any device) or sequence to a numpy array of ``dtype``.

    Complex data asked for as a real ``dtype`` raises :class:`ComplexInputError` (never a silent cast).

    Example:
        >>> import torch
        >>> to_numpy(torch.tensor([1, 2])).dtype, to_numpy([[0.5]]).shape
        (dtype('float64'), (1, 1))
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
    """Raise :class:`NonFiniteError` naming ``name`` and the first bad row if ``a`` holds NaN or Inf.

    Example:
        >>> check_finite(np.array([[1.0], [np.nan]]), "targets")
        Traceback (most recent call last):
        ...
        linlens.errors.NonFiniteError: targets contains 1 NaN/Inf value(s), first at row 1
    """
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
    """Half of the machine's physical memory (8 GiB where it cannot be read).

    Example:
        >>> default_max_memory() > 0
        True
    """
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


# --------------------------------------------------------------------------------- σ, Σₓ and row counts
def check_noise_std(sigma: Any, name: str = "--noise-std") -> float:
    """A given noise level σ must be a finite number > 0 (σ = 0 makes the Wiener estimator A⁻¹ and hides the
    noise; NaN/inf flip verdicts silently). Returns it as a float.

    Example:
        >>> check_noise_std(0.05)
        0.05
    """
    ok = not isinstance(sigma, bool) and isinstance(sigma, (int, float, np.integer, np.floating))
    if not ok or not np.isfinite(float(sigma)) or float(sigma) <= 0:
        raise ConfigError(f"{name} must be a finite number > 0 (the standard deviation σ of the noise on y, not "
                          f"its variance); got {sigma!r}")
    return float(sigma)


def check_covariance(S: Any, d: int, name: str = "--prior-covariance", rtol: float = 1e-8) -> np.ndarray:
    """A covariance Σ must be (d, d), finite, symmetric and positive semi-definite within ``rtol``.

    Symmetric: ‖Σ − Σᵀ‖_F ≤ rtol · ‖Σ‖_F (a non-symmetric Σₓ changed the error vs Wiener from 0.025 to 0.97 in the
    last fuzz). PSD: its smallest eigenvalue ≥ −rtol · d · its largest (rounding). Not all zero.

    Returns:
        (Σ + Σᵀ) / 2 as float64 (exactly symmetric).

    Example:
        >>> check_covariance(np.eye(2), 2).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    a = as_array(S, name, ndim=2)
    if a.shape != (d, d):
        raise ShapeError(f"{name} must be ({d}, {d}); got {a.shape}")
    norm = float(np.linalg.norm(a))
    if norm == 0:
        raise ConfigError(f"{name} is all zeros: a prior covariance must have a positive trace")
    asym = float(np.linalg.norm(a - a.T)) / norm
    if asym > rtol:
        raise ConfigError(f"{name} is not symmetric (‖Σ − Σᵀ‖/‖Σ‖ = {asym:.3g} > {rtol:g}): a covariance is; "
                          "check that the file holds Σₓ itself")
    sym = (a + a.T) / 2
    ev = np.linalg.eigvalsh(sym)
    if ev[0] < -rtol * d * max(ev[-1], 0.0) or ev[-1] <= 0:
        raise ConfigError(f"{name} is not positive semi-definite (smallest eigenvalue {ev[0]:.3g}, largest "
                          f"{ev[-1]:.3g}): a covariance has no negative variances")
    return sym


def noise_std_disagreement(sigma: float, estimate: float, low: float, high: float,
                           name: str = "--noise-std") -> str | None:
    """A warning when a given σ lies outside the interval [low, high] that the residuals y − Ax give for it
    (e.g. the variance 0.0025 passed for σ = 0.05); None when they agree. The interval comes from σ's one
    estimate (``linlens.workflows.inverse.noise_std_interval``).

    Example:
        >>> noise_std_disagreement(0.0025, 0.0502, 0.0498, 0.0506)[:40]
        '--noise-std 0.0025 disagrees with the da'
        >>> noise_std_disagreement(0.05, 0.0502, 0.0498, 0.0506) is None
        True
    """
    if low <= sigma <= high:
        return None
    hint = " (is it the variance σ²?)" if abs(sigma - estimate**2) <= 0.1 * estimate**2 else ""
    return (f"{name} {sigma:.4g} disagrees with the data: the residuals y − Ax give σ = {estimate:.4g} (95% "
            f"interval [{low:.4g}, {high:.4g}]){hint}; the Wiener estimator and every verdict use {sigma:.4g}")


def check_estimated_noise_std(sigma: float, Y: Any) -> float:
    """An σ estimated from y − Ax must be distinguishable from 0 (above the rounding of y): noiseless pairs make
    the Wiener estimator equal A⁻¹, so no verdict between them exists (σ = 0 [0, 0] and a verdict came out before).

    Example:
        >>> check_estimated_noise_std(0.05, np.ones((3, 2)))
        0.05
    """
    scale = float(np.sqrt(np.mean(np.square(np.asarray(Y, dtype=np.float64))))) if np.size(Y) else 0.0
    if not np.isfinite(sigma) or sigma <= 64 * np.finfo(float).eps * max(scale, np.finfo(float).tiny):
        raise ConfigError(f"the noise σ estimated from y − Ax is {sigma:.3g}: the inputs equal A·targets (no noise), "
                          "so the Wiener estimator equals A⁻¹ and no verdict between them exists; give --noise-std "
                          "if the data are noisy, or check that --inputs are not the clean A·x")
    return float(sigma)


def check_rows(X: Any, minimum: int, name: str, what: str = "this analysis") -> None:
    """Refuse fewer than ``minimum`` rows, and rows that are all identical (no variation to estimate anything
    from: σ = 0 [0, 0] and a verdict came out of two rows in the last fuzz).

    Example:
        >>> check_rows(np.arange(6.0).reshape(3, 2), 2, "inputs")
    """
    a = np.asarray(X)
    n = int(a.shape[0]) if a.ndim else 0
    if n < minimum:
        raise ShapeError(f"{name}: {what} needs at least {minimum} rows; got {n}")
    flat = a.reshape(n, -1)
    if n > 1 and np.all(flat == flat[0]):
        raise ShapeError(f"{name}: all {n} rows are identical; {what} needs rows that vary")


# ------------------------------------------------------------------ the one module:attr importer
def _caller_folder() -> Path | None:
    """The folder of the first file on the call stack outside linlens (a user's script naming a spec), if any."""
    pkg = Path(__file__).resolve().parent  # the linlens package
    frame = sys._getframe(1)
    while frame is not None:
        f = frame.f_code.co_filename
        if f and not f.startswith("<"):
            p = Path(f).resolve()
            if pkg not in p.parents and p.suffix == ".py" and not {"site-packages", "dist-packages"} & set(p.parts):
                return p.parent
        frame = frame.f_back
    return None


def import_attr(spec: str, what: str = "model", near: str | os.PathLike | None = None) -> Any:
    """Import ``package.module:attr`` (``attr`` may be dotted) — the one ``module:attr`` importer of linlens.

    IMPORTS AND RUNS that module's code. The module is looked for, as Python users expect, in the current folder,
    on ``sys.path``, and in the folder of the file that names the spec (``near``; by default the user's script on
    the call stack, when linlens is called from Python); those folders are put on ``sys.path`` (the current folder
    first, the naming file's folder last, so it never shadows an installed package) and stay there (later imports
    of the user's code find it too). ``SystemExit`` and any exception raised
    by the user's code become a one-line :class:`~linlens.errors.ModelError`; when the module is not found, the
    message says where it looked.

    Arguments:
        spec: ``package.module:attr``.
        what: how the object is called in messages ("model", "operator", "reference").
        near: a file or folder whose folder is searched too (e.g. the script or config that names the spec).

    Returns:
        The attribute.

    Raises:
        InputFileError: not a ``module:attr`` spec. ModelError: the import failed or the attribute is missing.

    Example:
        >>> import_attr("math:pi", "constant")
        3.141592653589793
    """
    s = str(spec)
    mod_name, _, attr = s.partition(":")
    if s.count(":") != 1 or not mod_name or not attr or os.sep in mod_name or "/" in mod_name:
        raise InputFileError(f"{what}: file not found: {s} (and it is not a 'package.module:attr' spec)")
    folders: list[str] = [os.getcwd()]
    extra = Path(near) if near is not None else _caller_folder()
    if extra is not None:
        extra = extra if extra.is_dir() else extra.parent
        folders.append(str(extra.resolve()))
    if "" not in sys.path and folders[0] not in sys.path:
        sys.path.insert(0, folders[0])  # the current folder first, as `python -m` does
    for folder in folders[1:]:
        if folder not in sys.path:
            sys.path.append(folder)  # the naming file's folder last: it never shadows an installed package
    try:
        obj: Any = importlib.import_module(mod_name)
    except SystemExit as exc:  # user code must not end the process while being imported
        raise ModelError(f"{what}: importing {mod_name!r} called sys.exit({exc.code!r})") from None
    except ModuleNotFoundError as exc:
        if exc.name is not None and mod_name.startswith(exc.name):
            looked = ", ".join(dict.fromkeys(folders))
            raise ModelError(f"{what}: cannot import {mod_name!r}: no module {exc.name!r} in {looked} or on "
                             f"sys.path; run from the folder that holds {exc.name.replace('.', '/')}.py, or install it"
                             ) from None
        raise ModelError(f"{what}: cannot import {mod_name!r}: {type(exc).__name__}: {_first(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
        raise ModelError(f"{what}: cannot import {mod_name!r}: {type(exc).__name__}: {_first(exc)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{what}: {mod_name!r} has no attribute {attr!r} (looked for {part!r} in "
                             f"{getattr(obj, '__file__', None) or getattr(obj, '__name__', type(obj).__name__)})")
        obj = getattr(obj, part)
    return obj


def _first(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
