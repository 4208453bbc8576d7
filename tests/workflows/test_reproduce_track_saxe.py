"""linlens.workflows.reproduce.track_saxe, the tracker's first worked example: the deep linear network's modes
against Saxe et al.'s closed form (an independent truth). The blur example: test_reproduce_track_blur.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linlens.tracking.saxe import saxe_mode_strength
from linlens.workflows.reproduce.track_saxe import SINGULAR_VALUES, TOLERANCE, run_track_saxe, saxe_experiment


def test_decoupled_modes_follow_the_closed_form():
    lr = 2e-3
    r = saxe_experiment(init="decoupled", steps=int(12 / lr), lr=lr, track_every=250, seed=1)
    s = np.array(SINGULAR_VALUES)
    t = r["steps"]
    # the closed form with the known start u₀ = 1e-3 (not the tracked one) and τ = 1/η
    closed = np.stack([saxe_mode_strength(t, sa, 1e-3, 1 / lr) for sa in s], axis=1)
    dev = np.max(np.abs(r["strengths"] - closed), axis=0) / s
    assert np.all(dev <= TOLERANCE), dev
    assert r["final_relative_error"] < 1e-2
    # each mode rises: from ≤ 2u₀ to ≥ 0.9 s, the strongest first
    assert np.all(r["strengths"][0] <= 2e-3) and np.all(r["strengths"][-1] >= 0.9 * s)
    half = [t[np.argmax(r["strengths"][:, a] >= s[a] / 2)] for a in range(s.size)]
    assert np.all(np.diff(half) > 0)
    # the tracked surrogate is the product W₂W₁ (a linear network): R² = 1 at every tracked step
    assert all(p.r2 == pytest.approx(1.0, abs=1e-9) for p in r["result"].points[1:])


def test_a_breaking_learning_rate_fails_the_tolerance():
    # the test above can fail: at η = 0.05 gradient descent is no longer the flow and the curves part
    lr = 0.05
    r = saxe_experiment(init="decoupled", steps=int(12 / lr), lr=lr, track_every=5, seed=1)
    s = np.array(SINGULAR_VALUES)
    closed = np.stack([saxe_mode_strength(r["steps"], sa, 1e-3, 1 / lr) for sa in s], axis=1)
    assert np.max(np.abs(r["strengths"] - closed) / s) > TOLERANCE


def test_track_saxe_report(tmp_path):
    out = tmp_path / "saxe"
    summary = run_track_saxe(out, quick=True)
    m = json.loads((out / "metrics.json").read_text())
    assert max(m["max_deviation_over_s_decoupled"]) <= TOLERANCE
    assert m["final_relative_error"]["decoupled"] < 1e-2 and m["final_relative_error"]["random"] < 1e-2
    assert m["random_start"]["tracking"]["points"][-1]["ranks"]["r_2_0"] == len(SINGULAR_VALUES)
    for f in ("saxe_modes_decoupled.png", "saxe_modes_random.png", "saxe_random_ranks.png", "report.html"):
        assert (out / f).is_file()
    assert any("closed form" in k for k in summary)
