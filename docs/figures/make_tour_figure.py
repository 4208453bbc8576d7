"""Make the README's figure and the demo figures of guide/inverse.md from `linlens demo` (seed 0).

Run from the repository root: ``python docs/figures/make_tour_figure.py [--quick]`` (the full demo takes about
90 s on 2 CPU cores). The figures are the demo report's own PNGs of the piecewise problem, copied here:
``piecewise_filter_factors.png`` → ``tour_filter_factors.png`` (README) and ``piecewise_signal_noise.png`` →
``demo_signal_noise.png`` (guide/inverse.md).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from linlens.workflows.demo import run_demo

HERE = Path(__file__).resolve().parent


def main(quick: bool = False) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        run_demo(out, seed=0, quick=quick)
        dest = HERE / "tour_filter_factors.png"
        shutil.copyfile(out / "piecewise_filter_factors.png", dest)
        shutil.copyfile(out / "piecewise_signal_noise.png", HERE / "demo_signal_noise.png")
    return dest


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv[1:]))
