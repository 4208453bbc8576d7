"""Remake docs/figures/tracking_*.png: the figures of `linlens reproduce track-blur` and `linlens reproduce
track-saxe` (full configurations, seed 0), and print their headline numbers (quoted on docs/guide/tracking.md).

Run from the repository root: ``python docs/figures/make_tracking_figures.py`` (one thread; about 1–2 minutes of CPU
for the blur example and under a minute for the deep linear network, measured on the shared 2-core machine).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from linlens.workflows.reproduce.track_blur import run_track_blur
from linlens.workflows.reproduce.track_saxe import run_track_saxe

HERE = Path(__file__).parent

FIGURES = {
    "blur": ("blur_filter_factors_heatmap", "blur_filter_factors_bands", "blur_spectral_bias", "blur_errors",
             "blur_r2"),
    "saxe": ("saxe_modes_decoupled", "saxe_modes_random", "saxe_random_ranks"),
}

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for key, run in (("blur", run_track_blur), ("saxe", run_track_saxe)):
            out = Path(tmp) / key
            t0, c0 = time.perf_counter(), time.process_time()
            summary = run(out, seed=0, quick=False, device="cpu")
            print(f"{key}: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")
            for k, v in summary.items():
                print(f"  {k}: {v}")
            for name in FIGURES[key]:
                shutil.copyfile(out / f"{name}.png", HERE / f"tracking_{name}.png")
            shutil.copyfile(out / "metrics.json", Path(tmp) / f"{key}.json")
            m = json.loads((out / "metrics.json").read_text())
            if key == "blur":
                print("  approach steps per band:", m["approach_steps"])
                print("  test MSE:", m["test_mse"])
