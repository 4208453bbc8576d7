"""Preparing f and x for differentiation: one probe call tells a batched f from a per-sample one, inputs are
converted and checked, and an image model is run once at fixed inputs for matrix-free products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from linlens.errors import ConfigError, EmptyInputError, ModelError, NonFiniteError, ShapeError
from linlens.nn import model_device
from linlens.validation import is_torch

__all__: list[str] = []


_MODES = ("auto", "reverse", "forward")


@dataclass(frozen=True)
class _Prepared:
    """A probed function: per-sample and batched callables, shapes, dtypes."""

    per_sample: Callable[[Tensor], Tensor]
    batched: Callable[[Tensor], Tensor]
    is_batched: bool
    d_in: int
    d_out: int
    out_dtype: torch.dtype


def _module_param(f: Any) -> Tensor | None:
    if isinstance(f, nn.Module):
        p = next(f.parameters(), None)
        if p is None:
            p = next(f.buffers(), None)
        return p
    return None


def _as_tensor_input(x: Any, name: str) -> Tensor:
    """x as a tensor (a tensor as is; array-likes converted); meta tensors and non-numeric data refused."""
    if is_torch(x):
        if x.device.type == "meta":
            raise ShapeError(f"{name} is a tensor on the 'meta' device (it has shapes but no values)")
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a numeric array; could not convert: {exc}") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise ShapeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    return torch.as_tensor(arr)


def _to_input(f: Any, x: Any, name: str = "x") -> Tensor:
    """x as a 2-D floating tensor on the right device/dtype; NaN → NonFiniteError."""
    p = _module_param(f)
    t = _as_tensor_input(x, name)
    if is_torch(x):
        if p is not None and t.is_floating_point() and p.is_floating_point() and t.dtype != p.dtype:
            t = t.to(p.dtype)
    else:
        if p is not None and p.is_floating_point():
            t = t.to(device=p.device, dtype=p.dtype)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim == 1:
        raise ShapeError(f"{name} must be 2-D (n_samples, d_in); got shape {tuple(t.shape)} "
                         f"(use x[None] for a single sample)")
    if t.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (n_samples, d_in); got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise EmptyInputError(f"{name} is empty (shape {tuple(t.shape)})")
    with torch.no_grad():
        ok = torch.isfinite(t)
        if not bool(ok.all()):
            bad = int((~ok).sum())
            row = int(torch.nonzero(~ok)[0, 0])
            raise NonFiniteError(f"{name} contains {bad} NaN/Inf value(s), first at row {row}")
    return t


def _call(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    try:
        out = f(x)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes ModelError
        raise ModelError(f"f raised {type(exc).__name__} on input of shape {tuple(x.shape)}: {exc}") from exc
    return out


def _prepare(f: Any, x: Tensor) -> _Prepared:
    """Probe f on a small batch to learn whether it is batched, d_out and the output dtype."""
    if not callable(f):
        raise ConfigError(f"f must be a torch module or callable; got {type(f).__name__}")
    n, d_in = x.shape
    p = 3 if d_in != 3 else 2
    probe = x[torch.arange(p, device=x.device) % n]
    batched_exc: Exception | None = None
    with torch.no_grad():
        try:
            out = f(probe)
        except Exception as exc:  # noqa: BLE001
            out, batched_exc = None, exc
        if isinstance(out, Tensor) and out.ndim == 2 and out.shape[0] == p:
            d_out = int(out.shape[1])

            def per_sample(xi: Tensor) -> Tensor:
                return f(xi.unsqueeze(0)).squeeze(0)

            return _Prepared(per_sample, f, True, d_in, d_out, out.dtype)
        if isinstance(out, Tensor) and out.ndim >= 3 and out.shape[0] == p:
            raise ShapeError(
                f"f must return a 1-D output per sample, (n, d_out) for a batch; got shape {tuple(out.shape)} "
                f"for input shape {tuple(probe.shape)}"
            )
        # not batched: try one sample (d_in,) → (d_out,)
        try:
            one = f(x[0])
        except Exception as exc:  # noqa: BLE001
            first = batched_exc if batched_exc is not None else exc
            raise ModelError(
                f"f raised {type(first).__name__} on input of shape {tuple(probe.shape)}: {first}"
            ) from first
    if not isinstance(one, Tensor):
        raise ShapeError(f"f must return a tensor; got {type(one).__name__}")
    if one.ndim != 1:
        got = tuple(out.shape) if isinstance(out, Tensor) else tuple(one.shape)
        raise ShapeError(
            f"f must map (n, d_in) → (n, d_out) or (d_in,) → (d_out,): expected a 1-D output per sample; "
            f"got shape {got} for input shape {tuple(probe.shape) if isinstance(out, Tensor) else (d_in,)}"
        )
    return _Prepared(f, torch.vmap(f), False, d_in, int(one.shape[0]), one.dtype)


def _resolve_mode(mode: str, d_in: int, d_out: int) -> str:
    if mode not in _MODES:
        raise ConfigError(f"mode must be one of {_MODES}; got {mode!r}")
    if mode == "auto":
        return "reverse" if d_out < d_in else "forward"
    return mode


@dataclass(frozen=True)
class _ImageMap:
    """A batched model prepared for matrix-free products at fixed inputs Y."""

    f: Callable[[Tensor], Tensor]
    inputs: Tensor  # (n, *in_shape), model dtype and device
    outputs: Tensor  # (n, *out_shape)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def n(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def d_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def d_out(self) -> int:
        return math.prod(self.out_shape)


def _image_map(f: Any, inputs: Any, device: str | torch.device = "auto", name: str = "inputs") -> _ImageMap:
    """Validate ``inputs`` (n, *in_shape), place them on f's device and dtype, and run f once."""
    if not callable(f):
        raise ConfigError(f"f must be a torch module or callable; got {type(f).__name__}")
    p = _module_param(f)
    t = _as_tensor_input(inputs, name)
    if is_torch(inputs):
        t = t.detach()
    if p is not None:
        t = t.to(device=p.device, dtype=p.dtype if p.is_floating_point() else None)
    elif not is_torch(inputs):
        t = t.to(model_device(f, device))  # "auto": the CPU (a user's computation is not moved)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim < 2:
        raise ShapeError(
            f"{name} must be a batch (n_inputs, *in_shape) as f takes it; got shape {tuple(t.shape)} "
            f"(use y[None] for a single input)"
        )
    if t.numel() == 0:
        raise EmptyInputError(f"{name} is empty (shape {tuple(t.shape)})")
    ok = torch.isfinite(t)
    if not bool(ok.all()):
        raise NonFiniteError(f"{name} contains {int((~ok).sum())} NaN/Inf value(s)")
    t = t.contiguous()
    with torch.no_grad():
        out = _call(f, t)
    if not isinstance(out, Tensor):
        raise ShapeError(f"f must return a tensor; got {type(out).__name__}")
    if out.ndim < 1 or out.shape[0] != t.shape[0]:
        raise ShapeError(
            f"f must return one output per input, (n_inputs, *out_shape) = ({t.shape[0]}, …); got shape "
            f"{tuple(out.shape)} for {name} of shape {tuple(t.shape)}"
        )
    if not out.is_floating_point():
        raise ShapeError(f"f must return a floating-point tensor; got dtype {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise NonFiniteError("f returned NaN/Inf values at the given inputs")
    return _ImageMap(f, t, out, tuple(t.shape[1:]), tuple(out.shape[1:]))


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
