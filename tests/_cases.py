"""Test cases shared by several test files (plain torch/numpy, no linlens builders): models whose surrogate is
known in closed form, and a circular blur problem written to disk as a user would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class Fixed(torch.nn.Module):
    """y ↦ C y (+ β|G y|) as a float64 module built with plain torch; on symmetric y its surrogate is exactly C."""

    def __init__(self, C, G=None, beta=0.0):
        super().__init__()
        self.C = torch.nn.Parameter(torch.as_tensor(C, dtype=torch.float64))
        self.G = None if G is None else torch.as_tensor(G, dtype=torch.float64)
        self.beta = beta

    def forward(self, y):
        out = y @ self.C.T
        if self.G is not None:
            out = out + self.beta * torch.abs(y @ self.G.T)
        return out


class CircConv(torch.nn.Module):
    """y ↦ y + k ⊛ y, a circular 3×3 convolution on (b, 1, 8, 8) images (linear, shift-invariant)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.c(y)


def write_circular_blur(folder: Path, n: int, m: int = 8, noise_std: float = 0.01, seed: int = 0) -> np.ndarray:
    """Write y.npy (n, 1, m, m), x.npy (n, 1, m, m) and A.npy (m², m²) of a circular Gaussian blur y = A x + noise
    with x standard normal; returns A."""
    rng = np.random.default_rng(seed)
    i = np.arange(m)
    k = np.exp(-np.minimum(i, m - i) ** 2 / 2.0)
    k /= k.sum()
    C1 = np.stack([np.roll(k, j) for j in range(m)], axis=1)
    A = np.kron(C1, C1)
    X = rng.normal(size=(n, m * m))
    Y = X @ A.T + noise_std * rng.normal(size=(n, m * m))
    np.save(folder / "y.npy", Y.reshape(n, 1, m, m))
    np.save(folder / "x.npy", X.reshape(n, 1, m, m))
    np.save(folder / "A.npy", A)
    return A


class Stateful(torch.nn.Module):
    """A scriptable module with a ``__setstate__`` (code that runs while TorchScript loads the file)."""

    def __init__(self):
        super().__init__()
        self.k = 1

    def forward(self, x):
        return x * self.k

    @torch.jit.export
    def __getstate__(self):
        return (self.k, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[int, bool]):
        self.k = state[0]
        self.training = state[1]


def koopman_mlp(dtype=torch.float64, act=torch.nn.Identity, seed=0):
    """A 2 → 6 → 4 → 3 MLP whose layer 1 is followed by ``act`` (the Koopman study's test model)."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear
    return torch.nn.Sequential(lin(2, 6, dtype=dtype), torch.nn.ReLU(), lin(6, 4, dtype=dtype), act(),
                               lin(4, 3, dtype=dtype)).eval()


def koopman_split(net, n, seed):
    """(inputs, the network's own outputs) on n uniform points: a split whose targets the network hits exactly."""
    X = np.random.default_rng(seed).random((n, 2))
    with torch.no_grad():
        Y = net(torch.as_tensor(X)).numpy()
    return X, Y


def run_reproduce_quick(tmp_path: Path, capsys, name: str) -> tuple[Path, dict]:
    """`linlens reproduce <name> --quick --device cpu` into tmp_path/name: (the report folder, its metrics.json)."""
    import json

    import pytest

    from linlens.cli import main

    out = tmp_path / name
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", name, "--quick", "--out", str(out), "--device", "cpu"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    return out, json.loads((out / "metrics.json").read_text())
