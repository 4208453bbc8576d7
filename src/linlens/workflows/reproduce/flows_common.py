"""Helpers shared by the flows reproductions: the paper's citation, setup before training, progress lines.

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from linlens.nn import seed_everything
from linlens.report import check_destination

__all__ = ["PAPER", "setup", "say"]

PAPER = "Feinman & Parthasarathy, A Linear Systems Theory of Normalizing Flows, arXiv:1907.06496"


def setup(out: Path, force: bool, seed: int) -> None:
    """Refuse an existing report folder before any training; one thread; seed every generator.

    Example:
        >>> import tempfile
        >>> setup(Path(tempfile.mkdtemp()) / "report", force=False, seed=0)  # a new folder: accepted, generators seeded
        >>> torch.get_num_threads()
        1
    """
    check_destination(out, force)  # fail before training, not after
    torch.set_num_threads(1)
    seed_everything(seed)


def say(console: Any, msg: str) -> None:
    """One progress line on the console (nothing when there is none).

    Example:
        >>> say(None, "no console: nothing is printed")
    """
    if console is not None:
        console.print(msg, highlight=False)
