"""Networks and independent Jacobian routes shared by the tests of linlens.jacobian."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def mlp(d_in: int, d_out: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A small smooth MLP (tanh, softplus) in eval mode."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d_in, 16), nn.Tanh(), nn.Linear(16, 12), nn.Softplus(), nn.Linear(12, d_out))
    return net.to(dtype).eval()


def loop_jacobians(f, x: torch.Tensor) -> torch.Tensor:
    """Independent route: torch.autograd.functional.jacobian one sample at a time."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: f(v[None])[0], xi) for xi in x])


def relu_cnn(bias: bool, c_in: int = 1, c_out: int = 1, width: int = 6, stride: int = 1, seed: int = 0) -> nn.Module:
    """A plain-torch ReLU CNN in float64, with or without additive constants."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(c_in, width, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, stride=stride, bias=bias),
        nn.ReLU(),
        nn.Conv2d(width, c_out, 3, padding=1, bias=bias),
    ).double().eval()
    net.requires_grad_(False)
    if bias:
        with torch.no_grad():
            for mod in net:
                if isinstance(mod, nn.Conv2d):
                    mod.bias.uniform_(-0.5, 0.5)
    return net


def dense_jacobian(f: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """(d_out, d_in) Jacobian of one sample y (*in_shape) by torch.func.jacrev (the independent route)."""
    J = torch.func.jacrev(lambda x: f(x[None])[0])(y)
    d_out = int(np.prod(J.shape[: J.ndim - y.ndim]))
    return J.reshape(d_out, y.numel()).detach()
