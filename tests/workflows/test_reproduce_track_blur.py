"""linlens.workflows.reproduce.track_blur, the tracker's blur example: its gate (the network beats predicting the
mean, with a paired interval below 0), spectral bias (Spearman ρ < 0) and report files. Slow (trains a network);
the tracker's closed-form check runs by default in test_reproduce_track_saxe.py."""

from __future__ import annotations

import json

import pytest

from linlens.workflows.reproduce.track_blur import run_track_blur


@pytest.mark.slow
def test_track_blur_quick_gate_and_report(tmp_path):
    out = tmp_path / "blur"
    run_track_blur(out, quick=True, device="cpu")
    m = json.loads((out / "metrics.json").read_text())
    assert m["gate_passed"] and m["gate"]["high"] < 0
    assert m["test_mse"]["network"] < m["test_mse"]["predict the mean"]
    sb = m["spectral_bias"]
    assert len(sb["components"]) >= 3 and sb["spearman_rho"] < 0
    for f in ("blur_filter_factors_heatmap.png", "blur_spectral_bias.png", "blur_errors.png", "report.html"):
        assert (out / f).is_file()
