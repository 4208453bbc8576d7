"""linlens.workflows.reproduce.track_blur, the tracker's blur example: its gate (the network beats predicting the
mean, with a paired interval below 0), spectral bias (Spearman ρ < 0) and report files (slow: trains a network;
the tracker's closed-form check runs by default in test_reproduce_track_saxe.py); by default, ``approach_steps``
against a brute-force reading of its definition and the tracked-step schedule's properties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linlens.tracking import TrackingResult, TrackPoint, TrackSetup
from linlens.workflows.reproduce.track_blur import _tracked_steps, approach_steps, run_track_blur


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


def _result(steps, bands, wiener):
    setup = TrackSetup(3, 3, 0, ["Wiener"], {}, None, np.array([[0, 1], [1, 2]]), {}, {"Wiener": wiener}, {}, None,
                       0.95)
    pts = [TrackPoint(int(s), 1.0, None, {}, None, None, None, np.asarray(b), None, None, None, None, None, None,
                      np.zeros((2, 2)), np.zeros(2), 0.0, 0.0) for s, b in zip(steps, bands, strict=True)]
    return TrackingResult(setup, pts)


@pytest.mark.parametrize("seed", range(5))
def test_approach_steps_is_the_first_step_from_which_the_band_stays_close(seed):
    """Brute force: the smallest i with |B[k, j] − w_j| ≤ close for every k ≥ i gives steps[i]; none: NaN."""
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 20, size=12))
    w = np.array([1.0, 0.5, 0.2])
    B = w + rng.choice([-0.3, -0.05, 0.0, 0.04, 0.2], size=(12, 3)) * (rng.random((12, 3)) < 0.6)
    got = approach_steps(_result(steps, B, w), close=0.05)
    for j in range(3):
        first = [i for i in range(12) if np.all(np.abs(B[i:, j] - w[j]) <= 0.05)]
        want = steps[first[0]] if first else np.nan
        np.testing.assert_equal(got[j], want)


@pytest.mark.parametrize("total,n", [(10, 40), (3000, 40), (50, 5)])
def test_tracked_steps_start_at_zero_end_at_total_and_are_log_spaced(total, n):
    s = _tracked_steps(total, n)
    assert s[0] == 0 and s[1] == 1 and s[-1] == total and s == sorted(set(s)) and len(s) <= n + 1
    ratios = np.diff(np.log(s[1:]))
    assert np.all(ratios <= np.log(total) / (n - 1) + np.log(2) + 1e-12)  # no gap wider than a log step (+ rounding)
