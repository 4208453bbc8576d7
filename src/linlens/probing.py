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

from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError, one_line
from linlens.nn import model_device
from linlens.validation import as_array, check_finite, check_real, is_torch

__all__ = ["probe_model", "probe_all", "model_input_dtype", "cast_note", "FlatModel"]


def model_input_dtype(model: Any) -> torch.dtype:
    """The dtype :func:`probe_model` casts inputs to before calling ``model``: that of its first floating-point
    parameter, else of its first floating-point buffer (a model whose weights are float64 buffers gets float64
    inputs), else float32 (plain callables).

    Example:
        >>> import torch
        >>> model_input_dtype(torch.nn.Linear(2, 2).double()), model_input_dtype(lambda y: y)
        (torch.float64, torch.float32)
    """
    for get in ("parameters", "buffers"):
        tensors = list(getattr(model, get)()) if hasattr(model, get) else []
        floating = [t for t in tensors if t.is_floating_point()]
        if floating:
            return floating[0].dtype
    return torch.float32


def cast_note(model: Any) -> str | None:
    """One sentence for a report when float64 probes are cast to a narrower dtype for ``model``, else None.

    Example:
        >>> import torch
        >>> cast_note(torch.nn.Linear(2, 2)).split(";")[0]
        'probe inputs were cast from float64 to float32 for the model'
    """
    dtype = model_input_dtype(model)
    if dtype == torch.float64:
        return None
    name = str(dtype).removeprefix("torch.")
    return (f"probe inputs were cast from float64 to {name} for the model; the surrogate is fitted on the cast "
            f"inputs, exactly those the model received (relative rounding {torch.finfo(dtype).eps / 2:.2g})")


def probe_all(model: Any, inputs: Any, batch_size: int = 8192, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`probe_model` over all ``inputs`` at once: (inputs the model received (n, d_in), outputs (n, d_out)),
    both float64; the inputs are after the cast to the model's dtype (:func:`model_input_dtype`), so a
    surrogate fitted on them describes the map the model computed.

    Example:
        >>> import torch
        >>> Y, F = probe_all(torch.nn.Identity(), np.array([[1 / 3]]))  # an identity in float32
        >>> bool(F[0, 0] == Y[0, 0] != 1 / 3)
        True
    """
    parts = list(probe_model(model, inputs, batch_size=batch_size, **kwargs))
    if not parts:
        raise ShapeError("no inputs to probe the model with")
    return np.concatenate([y for _, y, _ in parts]), np.concatenate([f for _, _, f in parts])


def probe_model(
    model: Any,
    inputs: Any,
    batch_size: int = 4096,
    device: Any = "auto",
    *,
    output_index: int | None = None,
    output_key: str | None = None,
) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """Run a torch model over ``inputs`` in batches, in eval mode under ``torch.no_grad()``, in the model's
    dtype (:func:`model_input_dtype`); yields ``(batch index, inputs (b, d_in), outputs (b, d_out))`` as float64
    numpy arrays (outputs of a native shape (b, *shape) are flattened to (b, prod(shape))). The yielded inputs
    are exactly those the model received, after the cast to its dtype: a surrogate fitted on the uncast float64
    inputs of a float32 model misses the cast (13% away from an exactly linear model's own matrix on inputs of
    condition number 2e8); :func:`cast_note` gives the sentence a report prints about the cast.

    The one place where linlens calls a user's model to probe it (surrogates, the linearity study, the
    ``analyze`` command and its Dask workers). The model's training flag is restored afterwards.

    The model gets a private copy of each batch, so a model that modifies its input in place (an in-place
    ReLU, ``x.sub_(1)``) changes neither what is recorded nor the caller's arrays. A model returning a tuple,
    list or dict is refused unless ``output_index`` / ``output_key`` names the element to analyse.

    Arguments:
        model: a torch callable mapping (batch, d_in) to (batch, d_out) (or (batch,)).
        inputs: an array or tensor (n_samples, d_in), or an iterable of such batches (or (x, y) tuples).
        batch_size: rows per call when ``inputs`` is one array.
        device: where the model runs; ``"auto"`` (or None): the device of its first parameter (CPU for plain
            callables), since the model is never moved.
        output_index: element of a tuple/list output to analyse.
        output_key: key of a dict output to analyse.

    Raises:
        ModelError: the model raised (first line of its message, naming the batch), called ``sys.exit``,
            returned no tensor, a tuple/dict without ``output_index``/``output_key``, complex values or a
            wrong shape; its parameters are on the meta device; inputs overflow the model's float dtype.
        NonFiniteError: NaN/Inf in a batch of inputs or outputs (naming batch and rows).

    Example:
        >>> import torch
        >>> [F.shape for _, _, F in probe_model(torch.nn.Linear(3, 2), np.ones((5, 3)), batch_size=2)]
        [(2, 2), (2, 2), (1, 2)]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    if output_index is not None and output_key is not None:
        raise ConfigError("give output_index or output_key, not both")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if any(p.device.type == "meta" for p in params):
        raise ModelError("the model's parameters are on the 'meta' device (shapes without values); load its "
                         "weights before probing it")
    if any(p.is_complex() for p in params):
        raise ModelError("the model has complex parameters; linlens analyses real-valued maps")
    dtype = model_input_dtype(model)
    device = model_device(model, device)  # "auto": the model stays where it is (CPU for plain callables)
    if torch.device(device).type == "meta":
        raise ConfigError("device 'meta' holds no values: a model cannot be probed there")
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    limit = torch.finfo(dtype).max
    row = 0
    try:
        for i, batch in enumerate(_batches(inputs, batch_size)):
            rows = f"batch {i}, rows {row}–{row + batch.shape[0] - 1}"
            row += batch.shape[0]
            top = float(batch.detach().abs().max()) if batch.numel() else 0.0
            if dtype != torch.float64 and top > limit:
                raise NonFiniteError(
                    f"inputs ({rows}) reach |x| = {top:.3g}, beyond the range of the "
                    f"model's {str(dtype).removeprefix('torch.')} (max {limit:.3g}); linlens casts inputs to the "
                    "model's dtype, and that cast would give Inf: rescale the inputs or use a float64 model")
            xb = batch.detach().to(device=device, dtype=dtype, copy=True)  # the model's own copy
            # what we record: the inputs exactly as the model receives them (after the cast), never its copy
            recorded = xb.to("cpu", torch.float64, copy=True).numpy()  # one copy (not a conversion and a copy)
            try:
                with torch.no_grad():
                    out = model(xb)
            except SystemExit as exc:  # a model must not end the process (sys.exit in user code)
                raise ModelError(f"the model called sys.exit({exc.code!r}) on batch {i}; a model must return "
                                 "outputs") from None
            except Exception as exc:  # noqa: BLE001 - any failure of user code is a ModelError, in one line
                raise ModelError(f"the model raised on batch {i} (input shape {tuple(xb.shape)}): "
                                 f"{one_line(exc)}") from None
            out = _select_output(out, output_index, output_key, i)
            if not is_torch(out):
                raise ModelError(f"model must return a tensor; got {type(out).__name__} on batch {i}")
            if out.is_complex():
                raise ModelError(f"the model returned complex outputs on batch {i}; linlens analyses real-valued "
                                 "maps (return torch.view_as_real(z).flatten(1) to analyse both parts)")
            if out.device.type == "meta":
                raise ModelError(f"the model returned a 'meta' tensor (no values) on batch {i}")
            if out.ndim == 1:
                out = out[:, None]
            elif out.ndim > 2 and out.shape[0] == xb.shape[0]:  # native shape (batch, C, H, W): as vectors
                out = out.reshape(out.shape[0], -1)
            if out.ndim != 2 or out.shape[0] != xb.shape[0]:
                raise ModelError(f"model output must be (batch, d_out) with batch {xb.shape[0]}; "
                                 f"got {tuple(out.shape)} on batch {i}")
            F = check_finite(out.detach().to("cpu", torch.float64, copy=True).numpy(), f"model outputs ({rows})")
            yield i, recorded, F
    finally:
        if was_training and hasattr(model, "train"):
            model.train(was_training)


def _select_output(out: Any, index: int | None, key: str | None, i: int) -> Any:
    """The analysed element of a tuple/list/dict output; refuse to guess."""
    if isinstance(out, dict):
        if key is None:
            raise ModelError(f"the model returned a dict with keys {list(out)[:8]} on batch {i}; name the output "
                             "to analyse (CLI --output-key, API output_key)")
        if key not in out:
            raise ModelError(f"output_key {key!r} is not among the model's outputs {list(out)[:8]}")
        return out[key]
    if isinstance(out, (tuple, list)):
        if index is None:
            raise ModelError(f"the model returned a {type(out).__name__} of {len(out)} elements on batch {i}; name "
                             "the output to analyse (CLI --output-index, API output_index)")
        if not -len(out) <= index < len(out):
            raise ModelError(f"output_index {index} is out of range for the model's {len(out)} outputs")
        return out[index]
    if index is not None or key is not None:
        raise ModelError(f"output_index/output_key given but the model returned a single {type(out).__name__}")
    return out


def _batches(inputs: Any, batch_size: int) -> Iterable[Any]:
    if is_torch(inputs) or isinstance(inputs, np.ndarray):
        if is_torch(inputs) and inputs.device.type == "meta":
            raise ShapeError("inputs are on the 'meta' device (shapes without values)")
        check_real(inputs, "inputs")
        if inputs.ndim != 2:
            raise ShapeError(f"inputs must be 2-D (n_samples, d_in); got shape {tuple(inputs.shape)}")
        for start in range(0, inputs.shape[0], batch_size):
            yield _as_batch(inputs[start : start + batch_size], start // batch_size)
        return
    if isinstance(inputs, (list, tuple)) and inputs and np.ndim(inputs[0]) <= 1:
        yield from _batches(as_array(inputs, "inputs", ndim=2), batch_size)
        return
    for i, batch in enumerate(inputs):
        if isinstance(batch, (list, tuple)) and len(batch) and is_torch(batch[0]):  # (x, y) from a DataLoader
            batch = batch[0]
        yield _as_batch(batch, i)


def _as_batch(batch: Any, i: int) -> Any:
    if is_torch(batch):
        if batch.device.type == "meta":
            raise ShapeError(f"inputs batch {i} is on the 'meta' device (shapes without values)")
        check_real(batch, f"inputs batch {i}")
    else:
        a = as_array(batch, f"inputs batch {i}", ndim=2)
        batch = torch.from_numpy(np.array(a, dtype=np.float64, copy=True))  # never shares the caller's memory
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
