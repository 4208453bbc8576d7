"""Files a user could have, for `linlens analyze --targets --operator`: made with plain numpy and torch.

A 1-D Gaussian blur A (n = 32, zero boundary — a circular one would send `analyze` to the Fourier route —
σ_noise = 0.01) of piecewise-constant signals; an MLP trained
with plain torch to invert it, saved as TorchScript; the observations y, the signals x and A as .npy. Then:

    linlens analyze --model ex/net.pt --trust-model --inputs ex/y.npy --targets ex/x.npy --operator ex/A.npy \
        --out ex/report

Run: ``python docs/examples/analyze_inverse.py ex [--quick]`` (about 30 s; --quick: a few seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


def make_files(folder: Path, quick: bool = False, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n, m = 32, (3000 if quick else 20000)
    i = np.arange(n)
    dist = np.abs(i[:, None] - i[None, :])
    A = np.exp(-(dist**2) / (2 * 1.5**2))
    A /= A.sum(axis=1, keepdims=True)
    jumps = rng.random((m, n)) < 0.08  # piecewise-constant signals
    jumps[:, 0] = True
    x = np.take_along_axis(rng.standard_normal((m, n)), np.cumsum(jumps, axis=1) - 1, axis=1)
    y = x @ A.T + 0.01 * rng.standard_normal((m, n))
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, n))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Y, X = torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    for _ in range(2 if quick else 25):
        for b in torch.randperm(m).split(128):
            opt.zero_grad()
            loss = torch.mean((net(Y[b]) - X[b]) ** 2)
            loss.backward()
            opt.step()
    torch.jit.script(net.eval()).save(str(folder / "net.pt"))
    np.save(folder / "y.npy", y)
    np.save(folder / "x.npy", x)
    np.save(folder / "A.npy", A)


if __name__ == "__main__":
    make_files(Path(sys.argv[1] if len(sys.argv) > 1 else "ex"), quick="--quick" in sys.argv)
