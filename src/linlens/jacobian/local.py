"""Local reading of a network's Jacobian: effective dimension, the Euler (homogeneity) test, adaptive filters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.jacobian._prepare import _image_map, _np
from linlens.jacobian.matrix_free import _vjp_function
from linlens.validation import is_torch

__all__ = ["effective_dimension", "euler_test", "EulerTest", "adaptive_filters", "AdaptiveFilters"]


def effective_dimension(singular_values: Any, definition: str = "frobenius", fraction: float = 0.1) -> np.ndarray:
    """Effective dimension of a local linear map from its singular values.

    ``"frobenius"`` (the definition of Mohan et al., and of their code ``calc_subspace_dims.py``): Σᵢ σᵢ²
    = ‖J‖_F². A denoiser whose Jacobian is an orthogonal projection onto a p-dimensional subspace has all σ in
    {0, 1} and dimension p; shrinkage (0 < σ < 1) counts fractionally. With only the top k singular values it
    is a lower bound (the tail adds Σ_{i>k} σᵢ²). ``"stable_rank"``: Σᵢ σᵢ² / σ₁² (scale-free). ``"count"``:
    the number of σᵢ > ``fraction`` · σ₁.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        singular_values: (..., k) singular values (any order; the largest is taken as σ₁).
        definition: "frobenius", "stable_rank" or "count".
        fraction: threshold of "count", relative to σ₁.

    Returns:
        (...) float64 array (a 0-d array for one spectrum).

    Example:
        >>> float(effective_dimension([1.0, 1.0, 0.5]))
        2.25
        >>> float(effective_dimension([2.0, 1.0, 0.1], "count", fraction=0.1))
        2.0
    """
    s = np.asarray(singular_values.detach().cpu().numpy() if is_torch(singular_values) else singular_values,
                   dtype=np.float64)
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ShapeError(f"singular_values must be (..., k) with k ≥ 1; got shape {s.shape}")
    if not np.isfinite(s).all():
        raise NonFiniteError("singular_values contains NaN/Inf values")
    if definition == "frobenius":
        return np.asarray((s**2).sum(axis=-1))
    smax = np.abs(s).max(axis=-1)
    if definition == "stable_rank":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(smax > 0, (s**2).sum(axis=-1) / np.where(smax > 0, smax, 1) ** 2, 0.0))
    if definition == "count":
        if not 0 <= fraction <= 1:
            raise ConfigError(f"fraction must be in [0, 1]; got {fraction!r}")
        return np.asarray((np.abs(s) > fraction * smax[..., None]).sum(axis=-1).astype(np.float64))
    raise ConfigError(f"definition must be 'frobenius', 'stable_rank' or 'count'; got {definition!r}")


@dataclass(frozen=True)
class EulerTest(ResultMixin):
    """How far f(y) is from J(y) y: zero for positively homogeneous maps, f(αy) = αf(y) for α > 0.

    Attributes:
        relative_residual: (n_inputs,) ‖f(y) − J(y) y‖ / ‖f(y)‖.
        residual_norm: (n_inputs,) ‖f(y) − J(y) y‖ (the "net bias" of Mohan et al.).
        output_norm: (n_inputs,) ‖f(y)‖.

    Example:
        >>> import torch
        >>> res = euler_test(lambda y: y + 1.0, torch.zeros(2, 3, dtype=torch.float64))  # f(0) = 1, J(0)·0 = 0
        >>> res.relative_residual.tolist(), res.residual_norm.round(6).tolist()
        ([1.0, 1.0], [1.732051, 1.732051])
    """

    relative_residual: np.ndarray
    residual_norm: np.ndarray
    output_norm: np.ndarray


def euler_test(f: Any, inputs: Any, device: str | torch.device = "auto") -> EulerTest:
    """The Euler test ‖f(y) − J(y) y‖ / ‖f(y)‖ per input, with one Jacobian-vector product.

    By Euler's theorem on homogeneous functions, a map with f(αy) = αf(y) for all α > 0 has J(y) y = f(y).
    A ReLU network without additive constants (no biases, no BatchNorm shifts) is such a map, so its
    residual is 0 up to rounding; a bias b in any layer adds a term that J(y) y does not contain. Mohan et
    al. write f(y) = A_y y + b_y and call b_y = f(y) − J(y) y the net bias.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape).
        device: where numpy inputs go when ``f`` has no parameters ("auto": the CPU,
            :func:`linlens.nn.model_device`); a module's own device wins.

    Returns:
        :class:`EulerTest` (float64 numpy arrays; relative residual NaN where f(y) = 0).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.ReLU(),
        ...                           torch.nn.Linear(8, 4, bias=False)).double()
        >>> bool(euler_test(net, torch.randn(3, 4, dtype=torch.float64)).relative_residual.max() < 1e-12)
        True
    """
    m = _image_map(f, inputs, device)
    try:
        out, Jy = torch.func.jvp(m.f, (m.inputs,), (m.inputs.clone(),))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"f raised {type(exc).__name__} during a Jacobian-vector product: {exc}") from exc
    out = out.reshape(m.n, -1).to(torch.float64)
    r = (out - Jy.reshape(m.n, -1).to(torch.float64)).norm(dim=1)
    o = out.norm(dim=1)
    rel = torch.where(o > 0, r / torch.where(o > 0, o, torch.ones_like(o)), torch.full_like(o, float("nan")))
    return EulerTest(_np(rel), _np(r), _np(o))


@dataclass(frozen=True)
class AdaptiveFilters(ResultMixin):
    """Rows of J(y) as images: the linear weights each chosen output pixel applies to the input.

    For a bias-free network f(y)_p = ⟨filter_p, y⟩ exactly (``filter_dot_input`` = ``outputs``).

    Attributes:
        pixels: (n_pixels, len(out_shape)) output indices, one row per pixel.
        filters: (n_inputs, n_pixels, *in_shape) row p of J(y), shaped like the input.
        outputs: (n_inputs, n_pixels) f(y) at the pixel.
        filter_dot_input: (n_inputs, n_pixels) ⟨row p of J(y), y⟩ = (J(y) y)_p.
        filter_sums: (n_inputs, n_pixels) Σ of the weights (Mohan et al. find ≈ 1: a local average).

    Example:
        >>> import torch
        >>> avg = lambda y: (y + y.roll(1, dims=1)) / 2  # each output averages two neighbouring inputs
        >>> res = adaptive_filters(avg, torch.ones(1, 4, dtype=torch.float64), [2])
        >>> res.filters[0, 0].tolist(), res.filter_sums.tolist()
        ([0.0, 0.5, 0.5, 0.0], [[1.0]])
    """

    pixels: np.ndarray
    filters: np.ndarray
    outputs: np.ndarray
    filter_dot_input: np.ndarray
    filter_sums: np.ndarray


def adaptive_filters(f: Any, inputs: Any, pixels: Any, device: str | torch.device = "auto",
                     chunk_size: int | None = None) -> AdaptiveFilters:
    """Rows of J(y) for chosen output pixels (the "adaptive filters"), one vector-Jacobian product each.

    Row p of J(y) is Jᵀ e_p: the weights with which output p combines the input pixels around y.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape).
        pixels: output indices: a sequence of tuples into out_shape (e.g. (0, row, col) for (C, H, W)),
            or of flat indices into the flattened output.
        device: where numpy inputs go when ``f`` has no parameters ("auto": the CPU,
            :func:`linlens.nn.model_device`); a module's own device wins.
        chunk_size: pixels per ``vmap`` call on CUDA (on the CPU they run one at a time); None = all.

    Returns:
        :class:`AdaptiveFilters`.

    Example:
        >>> import torch
        >>> conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
        >>> res = adaptive_filters(conv, torch.randn(1, 1, 5, 5, dtype=torch.float64), [(0, 2, 2)])
        >>> w = conv.weight.detach()[0, 0].numpy()
        >>> bool(np.allclose(res.filters[0, 0, 0, 1:4, 1:4], w))
        True
    """
    m = _image_map(f, inputs, device)
    idx = _pixel_indices(pixels, m.out_shape)
    flat = np.ravel_multi_index(tuple(idx.T), m.out_shape)
    p = len(flat)
    E = torch.zeros((m.n, m.d_out, p), dtype=torch.float64, device=m.inputs.device)
    E[:, torch.as_tensor(flat, device=E.device), torch.arange(p, device=E.device)] = 1.0
    rows = _vjp_function(m)(E, chunk_size)  # (n, d_in, p)
    y = m.inputs.reshape(m.n, -1).to(torch.float64)
    out = m.outputs.reshape(m.n, -1).to(torch.float64)[:, torch.as_tensor(flat, device=E.device)]
    return AdaptiveFilters(
        pixels=idx,
        filters=_np(rows.transpose(1, 2).reshape(m.n, p, *m.in_shape)),
        outputs=_np(out),
        filter_dot_input=_np((rows * y[:, :, None]).sum(dim=1)),
        filter_sums=_np(rows.sum(dim=1)),
    )


def _pixel_indices(pixels: Any, out_shape: tuple[int, ...]) -> np.ndarray:
    """Pixels as an (n_pixels, len(out_shape)) int array, checked against out_shape."""
    try:
        arr = np.asarray(pixels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"pixels must be integer indices; could not convert: {exc}") from None
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim == 1 and (len(out_shape) != 1 or arr.size == 0):
        if arr.size == 0:
            raise ShapeError("pixels is empty")
        if (arr < 0).any() or (arr >= math.prod(out_shape)).any():
            raise ShapeError(f"flat pixel indices must be in [0, {math.prod(out_shape)}); got {arr.tolist()}")
        return np.stack(np.unravel_index(arr, out_shape), axis=1)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != len(out_shape) or arr.shape[0] == 0:
        raise ShapeError(
            f"pixels must be index tuples of length {len(out_shape)} into out_shape {out_shape}; got shape "
            f"{arr.shape}"
        )
    bad = (arr < 0) | (arr >= np.asarray(out_shape))
    if bad.any():
        raise ShapeError(f"pixel {arr[bad.any(axis=1)][0].tolist()} is outside out_shape {out_shape}")
    return arr
