"""Reproduction of Aswani, Jabari & Shafique (arXiv:2409.01308) on MNIST: replace 256×128, 128×64, 64×32.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308 (https://arxiv.org/abs/2409.01308).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linlens.data.mnist import load_mnist
from linlens.report import check_destination
from linlens.workflows.reproduce.koopman import reproduce

__all__ = ["run_mnist", "PAPER"]

PAPER = {"original_accuracy": 0.972, "best_hybrid_accuracy": 0.958}


def run_mnist(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "cpu",
              console: Any = None) -> dict:
    """MNIST, hidden [256, 128, 64, 32]; replace each hidden layer (256×128, 128×64, 64×32).

    Full run: 2 seeds × 20 epochs, N = 10, h ∈ {0, 1, 5, 8, 10}, rank ∈ {numerical, 500}, both readouts,
    10 000 trajectories (measured 3993 s wall on a shared, overloaded 2-core machine, about 20 minutes of CPU
    time; ``--device cuda`` speeds up the training).
    ``quick``: 5 000 training images, one layer, ~20 s.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "notes.txt").write_text("not a report")
        >>> run_mnist(folder)  # an existing folder is refused before any work  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
    """
    check_destination(out, force)  # fail before loading or training, not after
    data = {k: load_mnist(k) for k in ("train", "val", "test")}
    if quick:
        data = {"train": tuple(a[:5000] for a in data["train"]), "val": tuple(a[:2000] for a in data["val"]),
                "test": data["test"]}
        seeds = [seed]
        train_cfg = {"epochs": 3, "batch_size": 256, "lr": 2e-3}
        scale_cfg = {"epochs": 3, "batch_size": 1000, "lr": 2e-3}
        grid = {"n_scaled": [3], "delays": lambda N: [0, N], "ranks": [None], "readouts": ["projected"],
                "n_trajectories": 2000}
        layers = [1]
    else:
        seeds = [seed, seed + 1]
        train_cfg = {"epochs": 20, "batch_size": 256, "lr": 2e-3}
        scale_cfg = {"epochs": 10, "batch_size": 1000, "lr": 2e-3}
        # h ∈ {0, 1, 5, 8}: hybrids with ≥ 3 DMD steps beside the one-step h = N
        grid = {"n_scaled": [10], "delays": lambda N: [0, 1, N // 2, N - 2, N], "ranks": [None, 500],
                "readouts": ["projected", "exact"], "n_trajectories": 10000}
        layers = [1, 2, 3]
    return reproduce(dataset="mnist", data=data, hidden=[256, 128, 64, 32], n_classes=10, layers=layers, seeds=seeds,
                     train_cfg=train_cfg, scale_cfg=scale_cfg, grid=grid, out=out, force=force, seed=seed,
                     quick=quick, device=device, console=console, paper=PAPER,
                     extra_text="Data: classic MNIST pickle split (train 50 000, val 10 000, test 10 000).")
