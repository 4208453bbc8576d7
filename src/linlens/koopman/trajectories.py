"""Trajectories through a scaled layer: the states x₀, x₁, …, x_N, x_{N+1} of every input.

x₀ is the input of the target layer, x_i = g_i(x_{i−1}) the outputs of the inserted layers and
x_{N+1} = L_ℓ(x_N) the target layer's output. States shorter than the widest one (x_{N+1} when the layer
narrows, m < n) are padded at the end with a constant (−1 by default, as in the paper's Figure 2; the
authors' code used −5 or −0.5).

References:
    N. Aswani, S. Jabari, M. Shafique, arXiv:2409.01308 (Fig. 2).

Example:
    >>> from linlens.nn import mlp
    >>> from linlens.koopman.scaling import scale_layer
    >>> sm = scale_layer(mlp(2, [8, 6], 3, seed=0), 1, 3, torch.rand(16, 2), epochs=0, progress=False)
    >>> record_trajectories(sm, torch.rand(5, 2)).shape
    torch.Size([5, 5, 8])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ShapeError

__all__ = ["record_trajectories", "pad_state"]


def pad_state(x: torch.Tensor, width: int, pad_value: float = -1.0) -> torch.Tensor:
    """Pad the last axis of ``x`` to ``width`` with ``pad_value`` (no-op when already that wide).

    Example:
        >>> pad_state(torch.zeros(1, 2), 4).tolist()
        [[0.0, 0.0, -1.0, -1.0]]
    """
    k = x.shape[-1]
    if k == width:
        return x
    if k > width:
        raise ShapeError(f"state width {k} exceeds the trajectory width {width}")
    fill = torch.full((*x.shape[:-1], width - k), float(pad_value), dtype=x.dtype, device=x.device)
    return torch.cat([x, fill], -1)


def _rows(x: Any, name: str) -> torch.Tensor:
    """``x`` as a tensor (a tensor as is, else through numpy), checked to be 2-D (n_samples, d_in) and non-empty."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (n_samples, d_in); got shape {tuple(t.shape)}")
    if len(t) == 0:
        raise ShapeError(f"{name} is empty")
    return t


def _layer_states(pre: Callable[[torch.Tensor], torch.Tensor], layers: Iterable[Callable[[torch.Tensor], torch.Tensor]],
                  x: torch.Tensor) -> list[torch.Tensor]:
    """[s₀, s₁, …, s_k] with s₀ = pre(x) and s_j = g_j(s_{j−1}) for the k ``layers`` g_j: the states of a batch x
    (batch, d_in) through the pre-layers and then each layer, in order."""
    s = pre(x)
    states = [s]
    for g in layers:
        s = g(s)
        states.append(s)
    return states


@torch.no_grad()
def record_trajectories(
    scaled_model: nn.Module,
    data: Any,
    *,
    pad_value: float = -1.0,
    batch_size: int = 8192,
    dtype: torch.dtype = torch.float64,
    constant: bool = False,
) -> torch.Tensor:
    """States x₀ … x_{N+1} of every input through the scaled layer (a :class:`ScaledModel`).

    Arguments:
        scaled_model: :class:`linlens.koopman.scaling.ScaledModel` (``pre``, ``scaled``, ``target``).
        data: inputs of the whole model (n_samples, d_in), numpy or tensor.
        pad_value: constant used to pad shorter states to the common width max(n, m).
        batch_size: inputs per forward pass.
        dtype: dtype of the returned states (float64 for the linear algebra).
        constant: append a constant 1 to every state (an EDMD constant observable, which lets the linear
            operator represent affine maps; the hybrid must then be built with ``constant=True``).

    Returns:
        (n_samples, N+2, max(n, m) (+1 with ``constant``)) tensor on the model's device; axis 1 is time
        (x₀ first).

    Example:
        >>> from linlens.nn import mlp
        >>> from linlens.koopman.scaling import scale_layer
        >>> X = torch.rand(5, 2)
        >>> sm = scale_layer(mlp(2, [8, 6], 3, seed=0), 1, 3, X, epochs=0, progress=False)
        >>> T = record_trajectories(sm, X)  # N = 3 scaled layers: states x₀ … x₄ of width max(8, 6)
        >>> T.shape, bool(torch.allclose(T[:, 0], sm.pre(X).double()))
        (torch.Size([5, 5, 8]), True)
    """
    p = next(scaled_model.parameters())
    dev, mdt = p.device, p.dtype
    X = _rows(data, "data")
    n, m = scaled_model.in_features, scaled_model.out_features
    width = max(n, m)
    was = scaled_model.training
    scaled_model.eval()
    out = []
    for i in range(0, len(X), batch_size):
        states = _layer_states(scaled_model.pre, scaled_model.scaled, X[i : i + batch_size].to(device=dev, dtype=mdt))
        states.append(scaled_model.target(states[-1]))
        t = torch.stack([pad_state(s, width, pad_value) for s in states], 1).to(dtype)
        if constant:
            t = torch.cat([t, torch.ones(*t.shape[:2], 1, dtype=dtype, device=t.device)], -1)
        out.append(t)
    scaled_model.train(was)
    return torch.cat(out, 0)
