"""Loading what users hand us — safely. Files may be hostile: arrays load with ``allow_pickle=False``, torch
files with ``weights_only=True``, models as TorchScript; user text is never ``eval``-ed. A
``package.module:attr`` model spec imports (and therefore runs) that module's code: the CLI's ``--help``
says so.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(p, np.ones((3, 2)))
    >>> load_array(p, "inputs").shape
    (3, 2)
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import EmptyInputError, InputFileError, ModelError, ShapeError
from linlens.validation import check_finite

__all__ = ["load_array", "load_model", "ARRAY_SUFFIXES"]

ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".csv", ".txt")


def _single_from_mapping(d: Any, path: Path, name: str, preferred: tuple[str, ...]) -> Any:
    keys = list(d.keys())
    for k in preferred:
        if k in keys:
            return d[k]
    if len(keys) == 1:
        return d[keys[0]]
    raise InputFileError(
        f"{name}: {path} holds several arrays {keys[:8]}; expected one, or one named {' or '.join(preferred)}"
    )


def load_array(
    path: str | os.PathLike,
    name: str = "inputs",
    *,
    ndim: int | None = 2,
    mmap: bool = False,
    finite: bool = True,
    preferred_keys: tuple[str, ...] = ("inputs", "X", "x", "arr_0"),
) -> np.ndarray:
    """Load a numeric array from ``.npy``, ``.npz``, ``.pt``/``.pth`` (a tensor or a dict holding one) or
    ``.csv``/``.txt`` (comma-separated numbers; one header line is skipped if it is not numeric).

    Arguments:
        path: the file.
        name: how the array is called in error messages (e.g. ``"inputs"``, ``"reference"``).
        ndim: required dimensions (1-D inputs are *not* silently reshaped); None for any.
        mmap: memory-map ``.npy`` files instead of reading them (the finiteness check is then skipped here
            and must be done per chunk by the caller).
        finite: reject NaN/Inf.

    Returns:
        The array (float64 unless memory-mapped, which keeps the stored dtype).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{name}: file not found: {p}")
    if p.is_dir():
        raise InputFileError(f"{name}: {p} is a folder, expected a file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                a = np.asarray(_single_from_mapping(z, p, name, preferred_keys))
        elif suffix in (".pt", ".pth"):
            import torch

            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                obj = _single_from_mapping(obj, p, name, preferred_keys)
            if not isinstance(obj, torch.Tensor):
                raise InputFileError(f"{name}: {p} does not hold a tensor (found {type(obj).__name__})")
            a = obj.detach().double().numpy()
        elif suffix in (".csv", ".txt"):
            a = _load_csv(p, name)
        else:
            raise InputFileError(
                f"{name}: unsupported file type {suffix or '(none)'} for {p}; use one of {', '.join(ARRAY_SUFFIXES)}"
            )
    except InputFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputFileError(f"{name}: {p} holds Python objects (pickled); refusing to load it") from None
        raise InputFileError(f"{name}: cannot read {p}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt files raise anything; the user needs one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"{name}: cannot read {p}: {msg}") from None
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InputFileError(f"{name}: {p} holds {a.dtype} values; expected real numbers")
    if ndim is not None and a.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D; {p} holds shape {tuple(a.shape)}")
    if a.size == 0:
        raise EmptyInputError(f"{name}: {p} holds an empty array of shape {tuple(a.shape)}")
    if not mmap or suffix != ".npy":
        a = np.asarray(a, dtype=np.float64)
        if finite:
            check_finite(a, f"{name} ({p.name})")
    return a


def _load_csv(p: Path, name: str) -> np.ndarray:
    with open(p, encoding="utf-8", errors="replace") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    if not lines:
        raise EmptyInputError(f"{name}: {p} is empty")

    def parse(line: str, lineno: int) -> list[float]:
        out = []
        for tok in line.split(","):
            try:
                out.append(float(tok))
            except ValueError:
                raise InputFileError(
                    f"{name}: {p} line {lineno} has a non-numeric value {tok.strip()[:20]!r}"
                ) from None
        return out

    start = 0
    try:
        [float(t) for t in lines[0].split(",")]
    except ValueError:
        start = 1  # a header line
    rows = [parse(ln, i + 1) for i, ln in enumerate(lines) if i >= start]
    if not rows:
        raise EmptyInputError(f"{name}: {p} has a header but no rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ShapeError(f"{name}: {p} has rows of different lengths {sorted(widths)[:5]}")
    return np.array(rows, dtype=np.float64)


def load_model(spec: str, device: str = "cpu") -> Any:
    """Load a torch model: a TorchScript file, a ``torch.export`` archive (``.pt2``) or ``package.module:attr``.

    A ``module:attr`` spec IMPORTS AND RUNS that module's code; ``attr`` may be a module instance, a plain
    callable, or an ``nn.Module`` subclass that takes no arguments (it is instantiated). Files are loaded
    with ``torch.jit.load`` only (a pickled full model is refused; a state dict cannot be analysed without
    its code — pass ``module:attr`` instead).

    Returns:
        A callable mapping a (batch, d_in) tensor to (batch, d_out); modules are put in eval mode.
    """
    import torch

    p = Path(spec)
    if p.exists():
        if p.is_dir():
            raise InputFileError(f"model: {p} is a folder, expected a TorchScript file")
        if p.suffix.lower() == ".pt2":  # torch.export archive: graph + weights, no pickled code
            try:
                prog = torch.export.load(str(p))
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"model: {p} is not a torch.export archive: {str(exc)[:120]}") from None
            return prog.module().to(device)
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it is still the safe format
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(p), map_location=device)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"model: {p} is not a TorchScript file ({first[:120]}); save it with torch.jit.script(m).save(…)"
                " or pass 'package.module:attr'"
            ) from None
        model.eval()
        return model
    if ":" not in spec or spec.count(":") != 1 or os.sep in spec.split(":")[0]:
        raise InputFileError(f"model: file not found: {spec} (and it is not a 'package.module:attr' spec)")
    mod_name, attr = spec.split(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # so that a user's local module can be named, as `python -m` does
    try:
        mod = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
        raise ModelError(f"model: cannot import {mod_name!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"model: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"model: cannot instantiate {spec}: {type(exc).__name__}: {exc}") from None
    if not callable(obj):
        raise ModelError(f"model: {spec} is a {type(obj).__name__}, not a callable")
    if isinstance(obj, torch.nn.Module):
        obj = obj.to(device).eval()
    return obj
