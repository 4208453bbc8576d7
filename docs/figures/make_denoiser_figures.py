"""Remake docs/figures/denoiser_*.png: the figures of `linlens reproduce denoiser-jacobian --quick` (seed 0), and
with ``--full`` docs/figures/denoiser_full_*.png, those of the full configuration (seed 0).

Run from the repository root: ``python docs/figures/make_denoiser_figures.py [--full]`` (needs linlens[images];
about 75 s of CPU on one thread, ``--full`` about 18 minutes).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from linlens.workflows.reproduce.denoiser_jacobian import run_denoiser_jacobian

HERE = Path(__file__).parent

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dj"
        full = "--full" in sys.argv[1:]
        run_denoiser_jacobian(out, seed=0, quick=not full, device="cpu")
        for name in ("training_curves", "psnr", "effective_dimension"):
            shutil.copyfile(out / f"{name}.png", HERE / f"denoiser_{'full_' if full else ''}{name}.png")
