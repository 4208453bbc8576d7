"""`linlens track` end to end: the same numbers as Tracker.update in the training loop on the same weights, numeric
step order, and one-line refusals with exit code 2 that write nothing."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from linlens import nn as lnn
from linlens.cli import main
from linlens.problems import InverseProblem, SmoothPrior, gaussian_blur
from linlens.tracking import Tracker

ARCH = """import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Train a small MLP on a blur problem, tracking it in the loop and saving a state dict at each tracked step
    (unpadded names: numeric order differs from alphabetical)."""
    d = tmp_path_factory.mktemp("track")
    (d / "track_arch.py").write_text(ARCH)
    sys.path.insert(0, str(d))
    try:
        import track_arch
    finally:
        sys.path.remove(str(d))
    prob = InverseProblem(gaussian_blur(10, width=1.5), SmoothPrior(10, length_scale=3.0), 1e-2)
    X, Y = prob.sample(600, seed=0)
    Xp, Yp = prob.sample(200, seed=1)
    np.save(d / "y.npy", Yp)
    np.save(d / "x.npy", Xp)
    np.save(d / "A.npy", prob.A)
    net = track_arch.build()
    tr = Tracker(Yp, Xp, prob.A, n_boot=30, n_jacobian=4, n_bands=3, seed=5)
    for step in (0, 5, 10):
        if step:
            lnn.train(net, Y.astype(np.float32), X.astype(np.float32), epochs=5, lr=3e-3, device="cpu",
                      progress=False, seed=step)
        tr.update(net, step)
        torch.save(net.state_dict(), d / f"ckpt_{step}.pt")
    return d, tr


def test_cli_gives_the_callbacks_numbers(run, monkeypatch):
    d, tr = run
    monkeypatch.chdir(d)
    out = d / "rep"
    with pytest.raises(SystemExit) as exc:
        main(["track", "--model-spec", "track_arch:build", "--checkpoints", "ckpt_*.pt", "--inputs", "y.npy",
              "--targets", "x.npy", "--operator", "A.npy", "--n-boot", "30", "--jacobian-rows", "4", "--bands", "3",
              "--seed", "5", "--show-bands", "1,3", "--out", str(out)])
    assert exc.value.code in (0, None)
    m = json.loads((out / "metrics.json").read_text())
    pts = m["tracking"]["points"]
    assert [p["step"] for p in pts] == [0, 5, 10] and m["step_rule"] == "the last integer in the file name"
    for p, q in zip(pts, tr.history_, strict=True):
        assert p["r2"] == pytest.approx(q.r2, rel=1e-12)
        assert p["verdict"] == q.verdict
        for k in ("A⁻¹", "Wiener", "C_data"):
            for s in ("estimate", "low", "high"):
                assert p["errors"][k][s] == pytest.approx(q.errors[k][s], rel=1e-10, abs=1e-15)
        np.testing.assert_allclose(p["filter_factors"], q.filter_factors, rtol=1e-10, atol=1e-14)
        assert p["signal_noise"]["signal_error"]["estimate"] == pytest.approx(
            q.signal_noise["signal_error"]["estimate"], rel=1e-10)
        assert p["local"]["weighted_distance_median"] == pytest.approx(q.local["weighted_distance_median"], rel=1e-8)
    assert pts[0]["filter_factors"] != pts[-1]["filter_factors"]  # training changed the picture
    for f in ("track_filter_factors_heatmap.png", "track_spectral_bias.png", "track_errors.png", "report.html"):
        assert (out / f).is_file()


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_refusals_one_line_nothing_written(run, monkeypatch, capsys, tmp_path):
    d, _ = run
    monkeypatch.chdir(d)
    base = ["track", "--model-spec", "track_arch:build", "--inputs", "y.npy"]
    out = str(tmp_path / "o")
    assert "--noise-std" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--noise-std", "0.1", "--out", out], capsys)
    assert "no file matches" in _fails(base + ["--checkpoints", "nothing_*.pt", "--out", out], capsys)
    assert "--rank-tol" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--rank-tol", "0.1", "--out", out], capsys)
    assert "--n-boot" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--n-boot", "50", "--out", out], capsys)
    assert "--bands" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--bands", "2", "--out", out], capsys)
    assert "--show-bands" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--show-bands", "1", "--out", out], capsys)
    full = base + ["--checkpoints", "ckpt_*.pt", "--targets", "x.npy", "--operator", "A.npy", "--out", out]
    assert "--show-bands" in _fails(full + ["--show-bands", "0,2"], capsys)
    assert "--show-bands" in _fails(full + ["--show-bands", "1,x"], capsys)
    (d / "ckpt_last.pt").write_bytes(b"")
    try:
        assert "no step" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--out", out], capsys)
    finally:
        (d / "ckpt_last.pt").unlink()
    assert not (tmp_path / "o").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("user data")
    assert "exists" in _fails(base + ["--checkpoints", "ckpt_*.pt", "--out", str(mine)], capsys)
    _fails(base + ["--checkpoints", "ckpt_*.pt", "--out", str(mine), "--force"], capsys)  # not a linlens report
    assert (mine / "keep.txt").read_text() == "user data" and sorted(p.name for p in mine.iterdir()) == ["keep.txt"]
