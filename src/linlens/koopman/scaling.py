"""Layer scaling: insert N square Linear+ReLU layers before a trained layer and train them to reproduce it.

The original network is frozen; only the N new layers g_1 … g_N are trained so that
L_ℓ(g_N ∘ … ∘ g_1(x₀)) ≈ L_ℓ(x₀), where x₀ is the input of the target layer L_ℓ. The states
x₀, x₁ = g_1(x₀), …, x_N, x_{N+1} = L_ℓ(x_N) then form a "trajectory" through the layer
(:mod:`linlens.koopman.trajectories`). By default the g_i start as the identity plus small noise: x₀ ≥ 0
after a ReLU, so the identity is an exact solution and training starts at (nearly) zero loss; PyTorch's
default initialization instead starts far from it and, in a prototype, left the 8×6 Yin-Yang scaling at
73.5 % accuracy.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308.

Example:
    >>> from linlens.nn import mlp
    >>> net = mlp(2, [8, 6], 3, seed=0)
    >>> sm = scale_layer(net, 1, 3, torch.rand(64, 2), epochs=2, progress=False)
    >>> len(sm.scaled), sm.in_features, sm.out_features
    (3, 8, 6)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ConfigError, ModelError
from linlens.koopman.trajectories import _rows
from linlens.nn import TrainHistory, resolve_device, seed_everything, train

__all__ = ["ScaledModel", "scale_layer", "split_layers", "near_identity_layers"]


def split_layers(model: nn.Module, layer: int) -> tuple[nn.Sequential, nn.Sequential, nn.Sequential]:
    """Split a ``Linear → act → … → Linear`` network into (pre-layers, target layer block, post-layers).

    A "layer" is an ``nn.Linear`` together with the non-Linear modules that follow it (its activation).

    Arguments:
        model: an ``nn.Sequential`` whose children are ``nn.Linear`` and activation modules
            (as built by :func:`linlens.nn.mlp`).
        layer: index ℓ of the target Linear (0-based, counting Linear modules only); ℓ ≥ 1 because the
            scaled layers need a ReLU output (x₀ ≥ 0) as input.

    Returns:
        ``(pre, target, post)`` as ``nn.Sequential`` (sharing modules with ``model``).

    Example:
        >>> from linlens.nn import mlp
        >>> pre, tgt, post = split_layers(mlp(2, [8, 6, 4], 3), 2)
        >>> tgt[0].in_features, tgt[0].out_features, len(post)
        (6, 4, 1)
    """
    if not isinstance(model, nn.Sequential):
        raise ModelError(f"model must be an nn.Sequential of Linear and activation modules; got {type(model).__name__}")
    blocks: list[list[nn.Module]] = []
    for child in model.children():
        if isinstance(child, nn.Linear):
            blocks.append([child])
        elif not blocks:
            raise ModelError(f"model must start with an nn.Linear; got {type(child).__name__} first")
        else:
            blocks[-1].append(child)
    n = len(blocks)
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not 1 <= layer <= n - 1:
        raise ConfigError(f"layer must be an int in [1, {n - 1}] (index of a Linear, not the first); got {layer!r}")
    pre = nn.Sequential(*[m for b in blocks[:layer] for m in b])
    target = nn.Sequential(*blocks[layer])
    post = nn.Sequential(*[m for b in blocks[layer + 1 :] for m in b])
    return pre, target, post


def near_identity_layers(
    width: int, n_layers: int, noise: float = 0.01, init: str = "identity", seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.ModuleList:
    """N square ``Linear(width, width) + ReLU`` layers, initialized as identity + noise (or PyTorch default).

    Arguments:
        width: n, the layer width.
        n_layers: N ≥ 1.
        noise: standard deviation of the Gaussian noise added to the identity weights and zero biases.
        init: ``"identity"`` (identity + noise) or ``"default"`` (PyTorch's Kaiming-uniform).
        seed: seed of the initialization.

    Returns:
        ``nn.ModuleList`` of N ``nn.Sequential(Linear, ReLU)``.

    Example:
        >>> g = near_identity_layers(4, 2, noise=0.0)
        >>> x = torch.rand(3, 4)
        >>> bool(torch.equal(g[1](g[0](x)), x))
        True
    """
    if init not in ("identity", "default"):
        raise ConfigError(f"init must be 'identity' or 'default'; got {init!r}")
    if int(n_layers) < 1:
        raise ConfigError(f"n_scaled must be >= 1; got {n_layers!r}")
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        layers = nn.ModuleList()
        for _ in range(int(n_layers)):
            lin = nn.Linear(width, width, dtype=dtype)
            if init == "identity":
                with torch.no_grad():
                    lin.weight.copy_(torch.eye(width, dtype=dtype)
                                     + noise * torch.randn(width, width, generator=gen, dtype=dtype))
                    lin.bias.copy_(noise * torch.randn(width, generator=gen, dtype=dtype))
            layers.append(nn.Sequential(lin, nn.ReLU()))
    return layers


class ScaledModel(nn.Module):
    """The original network with N trained square layers inserted before the target layer.

    Forward: pre-layers → g_1 … g_N → target layer (original, frozen) → post-layers.

    Arguments:
        pre, target, post: the three parts from :func:`split_layers` (frozen).
        scaled: the N layers g_i (``nn.ModuleList`` of ``Linear(n, n) + ReLU``).
        layer: index ℓ of the target Linear in the original model.

    Attributes:
        history_: :class:`linlens.nn.TrainHistory` of the scaling run (None if untrained).
        in_features: n (input width of the target layer). out_features: m.

    Example:
        >>> from linlens.nn import mlp
        >>> sm = scale_layer(mlp(2, [8, 6], 3, seed=0), 1, 3, torch.rand(50, 2), epochs=0, progress=False)
        >>> sm.n_scaled, sm.in_features, sm.out_features, sm(torch.rand(4, 2)).shape
        (3, 8, 6, torch.Size([4, 3]))
    """

    def __init__(self, pre: nn.Module, target: nn.Module, post: nn.Module, scaled: nn.ModuleList,
                 layer: int) -> None:
        super().__init__()
        self.pre, self.target, self.post, self.scaled = pre, target, post, scaled
        self.layer = layer
        self.history_: TrainHistory | None = None
        lin = target[0]
        self.in_features, self.out_features = lin.in_features, lin.out_features

    @property
    def n_scaled(self) -> int:
        """N, the number of inserted layers."""
        return len(self.scaled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        for g in self.scaled:
            h = g(h)
        return self.post(self.target(h))


def _to_tensor(x: Any, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return _rows(x, name).to(device=device, dtype=dtype)


def scale_layer(
    model: nn.Module,
    layer: int,
    n_scaled: int,
    data: Any,
    *,
    init: str = "identity",
    noise: float = 0.01,
    epochs: int = 200,
    batch_size: int = 500,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    val_data: Any = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    progress: bool = True,
) -> ScaledModel:
    """Insert ``n_scaled`` square Linear+ReLU layers before layer ``layer`` and train them (Huber loss).

    The original model is deep-copied and frozen. With x₀ the input of the target layer L_ℓ on ``data``,
    the new layers minimize Huber_δ=1(L_ℓ(g_N ∘ … ∘ g_1(x₀)), L_ℓ(x₀)) with AdamW.

    References:
        N. Aswani, S. Jabari, M. Shafique, arXiv:2409.01308 (layer scaling, Fig. 1).

    Arguments:
        model: ``nn.Sequential`` of Linear and activation modules (trained).
        layer: index ℓ ≥ 1 of the target Linear (see :func:`split_layers`).
        n_scaled: N ≥ 1.
        data: inputs of the whole model (n_samples, d_in), numpy or tensor.
        init: ``"identity"`` (identity + ``noise``, default) or ``"default"`` (PyTorch init).
        noise: noise level of the identity initialization.
        epochs, batch_size, lr, weight_decay: AdamW training; ``epochs=0`` leaves the initialization.
        val_data: optional model inputs for validation; the epoch with the lowest validation loss is kept.
        seed: seeds the initialization and the shuffling.
        device: torch device (``"auto"`` picks CUDA when available).
        progress: show a progress bar.

    Returns:
        :class:`ScaledModel` (on ``device``, eval mode) with ``history_``.

    Example:
        >>> from linlens.nn import mlp
        >>> net = mlp(2, [4, 3], 2, seed=0)
        >>> sm = scale_layer(net, 1, 2, torch.rand(32, 2), epochs=0, noise=0.0, progress=False)
        >>> x = torch.rand(5, 2)
        >>> bool(torch.allclose(sm(x), net(x)))
        True
    """
    dev = resolve_device(device)
    base = copy.deepcopy(model).to(dev)
    for p in base.parameters():
        p.requires_grad_(False)
    base.eval()
    pre, target, post = split_layers(base, layer)
    lin = target[0]
    dtype = lin.weight.dtype
    seed_everything(seed)
    scaled = near_identity_layers(lin.in_features, n_scaled, noise=noise, init=init, seed=seed, dtype=dtype).to(dev)
    sm = ScaledModel(pre, target, post, scaled, int(layer)).to(dev)
    X = _to_tensor(data, "data", dtype, dev)
    with torch.no_grad():
        x0 = pre(X)
        y0 = target(x0)
    if epochs > 0:
        inner = nn.Sequential(*scaled, target)
        kw: dict[str, Any] = {}
        if val_data is not None:
            Xv = _to_tensor(val_data, "val_data", dtype, dev)
            with torch.no_grad():
                xv = pre(Xv)
                kw = {"X_val": xv, "Y_val": target(xv)}
        sm.history_ = train(
            inner, x0, y0, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            loss="huber", optimizer="adamw", seed=seed, device=dev, progress=progress,
            description=f"scaling layer {layer} (N={n_scaled})", **kw,
        )
    sm.eval()
    return sm
