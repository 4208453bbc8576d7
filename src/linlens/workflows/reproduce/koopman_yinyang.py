"""Reproduction of Aswani, Jabari & Shafique (arXiv:2409.01308) on Yin-Yang: replace 8×6, 6×4 and 4×3.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308 (https://arxiv.org/abs/2409.01308).
    L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", arXiv:2102.08211.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from linlens.data.yinyang import yinyang_splits
from linlens.nn import predict
from linlens.report import Report, check_destination
from linlens.report.koopman_figures import plot_decision_boundaries
from linlens.workflows.reproduce.koopman import reproduce

__all__ = ["run_yinyang", "PAPER"]

PAPER = {"original_accuracy": 0.984, "hybrid_accuracy": {"8x6": 0.913, "6x4": 0.758, "4x3": 0.973}}


def _boundaries(data: dict) -> Any:
    def add(rep: Report, net: nn.Module, results: list[dict], orig_acc: float) -> None:
        g = np.linspace(0, 1, 120)
        xx, yy = np.meshgrid(g, g)
        pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
        feats = np.concatenate([pts, 1 - pts], 1) if data["test"][0].shape[1] == 4 else pts
        preds = {"original": predict(net, feats).argmax(1).numpy().reshape(xx.shape)}
        titles = {"original": f"original {orig_acc:.3f}"}
        for res in results:
            hyb, row = res["hybrids"]["best"], res["selected"]["best"]
            preds[res["layer"]] = predict(hyb, feats).argmax(1).numpy().reshape(xx.shape)
            titles[res["layer"]] = f"{res['layer']} hybrid {row['accuracy']:.3f}"
        rep.add_figure(plot_decision_boundaries(xx, yy, preds, data["test"][0][:, :2], data["test"][1], titles),
                       "decision_boundaries", "Decision regions of the original and the best hybrid per layer.")
    return add


def run_yinyang(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "cpu",
                console: Any = None) -> dict:
    """Yin-Yang (3 classes, Kriener's features and splits), hidden [8, 6, 4, 3]; replace 8×6, 6×4, 4×3.

    Full run: 64 original seeds trained at once (final weights, selection on validation), scaled layers trained
    300 epochs, N ∈ {4, 10, 16}, init noise ∈ {0.01, 0.1, 0.2, 0.3}, h ∈ {0, 1, N/2, N−1, N}, rank ∈
    {numerical, optimal}, readout ∈ {projected, exact}; about 5 minutes of CPU time on one thread (1251 s wall on
    a shared, overloaded 2-core machine). ``quick``: ~10 s.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "notes.txt").write_text("not a report")
        >>> run_yinyang(folder)  # an existing folder is refused before any work  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: report folder ... exists; pass --force to overwrite it
    """
    check_destination(out, force)  # fail before loading or training, not after
    data = yinyang_splits(features="kriener")
    if quick:
        data = {"train": tuple(a[:1500] for a in data["train"]), "val": data["val"], "test": data["test"]}
        seeds = [seed + i for i in range(16)]
        train_cfg = {"ensemble": True, "epochs": 100, "batch_size": 100, "lr": 1e-2}
        scale_cfg = {"epochs": 10, "batch_size": 500, "lr": 2e-3}
        grid = {"n_scaled": [4], "delays": lambda N: [0, 1, N], "ranks": [None], "readouts": ["projected"]}
    else:
        # 64 seeds trained at once (see train_ensemble)
        seeds = [seed + i for i in range(64)]
        train_cfg = {"ensemble": True, "epochs": 300, "batch_size": 100, "lr": 5e-3}
        # Scaling: 300 epochs (100 left 8×6 scaled models at 92–96 %). Init noise matters most: with 0.01 the
        # scaled layers stay so close to the identity that the Hankel matrix is nearly rank-deficient.
        scale_cfg = {"epochs": 300, "batch_size": 500, "lr": 2e-3}
        grid = {"n_scaled": [4, 10, 16], "noise": [0.01, 0.1, 0.2, 0.3],
                "delays": lambda N: [0, 1, N // 2, N - 1, N],
                "ranks": [None, "optimal"],
                "readouts": ["projected", "exact"]}
    return reproduce(dataset="yinyang", data=data, hidden=[8, 6, 4, 3], n_classes=3, layers=[1, 2, 3], seeds=seeds,
                     train_cfg=train_cfg, scale_cfg=scale_cfg, grid=grid, out=out, force=force, seed=seed,
                     quick=quick, device=device, console=console, paper=PAPER, extra_figures=_boundaries(data),
                     extra_text="Data: Kriener's 3-class Yin-Yang with features (x, y, 1−x, 1−y), train 5000/42, "
                                "val 1000/41, test 1000/40. The paper's variant and features are not stated.")
