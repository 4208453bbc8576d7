"""The one place linlens runs a user's model: batches, devices, dtype, and checks of what comes back.

Example:
    >>> import torch
    >>> [F.shape for _, _, F in probe_model(torch.nn.Linear(3, 2), np.ones((5, 3)), batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.validation import as_array, check_finite, is_torch

__all__ = ["probe_model", "FlatModel"]


def probe_model(
    model: Any, inputs: Any, batch_size: int = 4096, device: Any = None
) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """Run a torch model over ``inputs`` in batches, in eval mode under ``torch.no_grad()``, in the model's
    dtype; yields ``(batch index, inputs (b, d_in), outputs (b, d_out))`` as float64 numpy arrays.

    The one place where linlens calls a user's model to probe it (surrogates, the linearity study, the
    ``analyze`` command and its Dask workers). The model's training flag is restored afterwards.

    Arguments:
        model: a torch callable mapping (batch, d_in) to (batch, d_out) (or (batch,)).
        inputs: an array or tensor (n_samples, d_in), or an iterable of such batches (or (x, y) tuples).
        batch_size: rows per call when ``inputs`` is one array.
        device: where the model runs; default the device of its first parameter (CPU for plain callables).

    Raises:
        ModelError: the model raised (first line of its message, naming the batch) or returned no tensor or
            a wrong shape. NonFiniteError: NaN/Inf in a batch of inputs or outputs (naming batch and rows).

    Example:
        >>> import torch
        >>> [F.shape for _, _, F in probe_model(torch.nn.Linear(3, 2), np.ones((5, 3)), batch_size=2)]
        [(2, 2), (2, 2), (1, 2)]
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
    if device is None:
        device = params[0].device if params else torch.device("cpu")
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    row = 0
    try:
        for i, batch in enumerate(_batches(inputs, batch_size)):
            rows = f"batch {i}, rows {row}–{row + batch.shape[0] - 1}"
            row += batch.shape[0]
            xb = batch.to(device=device, dtype=dtype)
            try:
                with torch.no_grad():
                    out = model(xb)
            except Exception as exc:  # noqa: BLE001 - any failure of user code is a ModelError, in one line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ModelError(f"the model raised on batch {i} (input shape {tuple(xb.shape)}): "
                                 f"{type(exc).__name__}: {first[:200]}") from None
            if isinstance(out, (tuple, list)) and out and is_torch(out[0]):
                out = out[0]
            if not is_torch(out):
                raise ModelError(f"model must return a tensor; got {type(out).__name__} on batch {i}")
            if out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != xb.shape[0]:
                raise ModelError(f"model output must be (batch, d_out) with batch {xb.shape[0]}; "
                                 f"got {tuple(out.shape)} on batch {i}")
            F = check_finite(out.detach().to("cpu", torch.float64).numpy(), f"model outputs ({rows})")
            yield i, batch.detach().to("cpu", torch.float64).numpy(), F
    finally:
        if was_training and hasattr(model, "train"):
            model.train(was_training)


def _batches(inputs: Any, batch_size: int) -> Iterable[Any]:
    if is_torch(inputs) or isinstance(inputs, np.ndarray):
        if inputs.ndim != 2:
            raise ShapeError(f"inputs must be 2-D (n_samples, d_in); got shape {tuple(inputs.shape)}")
        for start in range(0, inputs.shape[0], batch_size):
            yield _as_batch(inputs[start : start + batch_size], start // batch_size)
        return
    if isinstance(inputs, (list, tuple)) and inputs and np.ndim(inputs[0]) <= 1:
        yield from _batches(np.asarray(inputs, dtype=np.float64), batch_size)
        return
    for i, batch in enumerate(inputs):
        if isinstance(batch, (list, tuple)) and len(batch) and is_torch(batch[0]):  # (x, y) from a DataLoader
            batch = batch[0]
        yield _as_batch(batch, i)


def _as_batch(batch: Any, i: int) -> Any:
    if not is_torch(batch):
        a = as_array(batch, f"inputs batch {i}", ndim=2)
        batch = torch.as_tensor(a if a.flags.writeable else a.copy())  # memory maps are read-only
    if batch.ndim != 2:
        raise ShapeError(f"inputs batch {i} must be 2-D (batch, d_in); got shape {tuple(batch.shape)}")
    if batch.is_floating_point() and not torch.isfinite(batch).all():
        raise NonFiniteError(f"inputs batch {i} contains NaN/Inf")
    return batch



class FlatModel(torch.nn.Module):
    """A model that takes inputs of a native shape (images (C, H, W), sequences, …) seen as flat vectors.

    ``FlatModel(model, in_shape)(y)`` reshapes y (batch, prod(in_shape)) to (batch, *in_shape), calls the model and
    flattens its output to (batch, d_out): surrogates and references work on vectors, the model on its own shape.

    Arguments:
        model: a torch callable on (batch, *in_shape).
        in_shape: the shape of one input.

    Example:
        >>> conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        >>> FlatModel(conv, (1, 4, 4))(torch.zeros(5, 16)).shape
        torch.Size([5, 32])
    """

    def __init__(self, model: Any, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.in_shape = tuple(int(s) for s in in_shape)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        out = self.model(y.reshape(y.shape[0], *self.in_shape))
        if isinstance(out, torch.Tensor):
            return out.reshape(out.shape[0], -1)
        return out  # probe_model reports what came back
