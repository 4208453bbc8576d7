"""Issue 25, exhaustion and exits: sys.exit in user code is one line (exit 2) on every command; fibers widths are
bounded; unused koopman .npz members are never decompressed; the Fourier route estimates its bootstrap memory
before allocating it (honouring --max-memory) and --n-boot is bounded."""

from __future__ import annotations

import textwrap
import time
import uuid
import zipfile

import numpy as np
import pytest

from linlens.cli import main
from linlens.workflows.koopman import load_split


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def _one_line_2(code, err):
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (code, err)


def test_sys_exit_in_a_flow_or_model_module_is_one_line(tmp_path, capsys, monkeypatch):
    name = f"exitmod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import sys, torch

        class Flow(torch.nn.Module):
            def forward(self, x):
                sys.exit(0)  # exit code 0: without the guard the run "succeeds" silently

        flow = Flow()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(30, 2)))
    code, _, err = _run(["flows", "-m", f"{name}:flow", "--data", tmp_path / "x.npy", "-o", tmp_path / "f"], capsys)
    _one_line_2(code, err)
    assert "sys.exit(0)" in err and f"{name}.py" in err
    assert not (tmp_path / "f").exists()
    code, _, err = _run(["analyze", "-m", f"{name}:flow", "-i", tmp_path / "x.npy", "-o", tmp_path / "a"], capsys)
    _one_line_2(code, err)
    assert "sys.exit" in err and not (tmp_path / "a").exists()


def test_click_exits_are_untouched(capsys):
    code, out, _ = _run(["fibers", "--help"], capsys)
    assert code == 0 and "strata" in out
    code, _, err = _run(["fibers", "strata", "--widths", "2,2"], capsys)
    assert code == 2 and "--rank" in err and "sys.exit" not in err


def test_fibers_widths_are_bounded(tmp_path, capsys):
    t = time.perf_counter()
    code, _, err = _run(["fibers", "strata", "--widths", "100000000000,2", "--rank", "2", "-o", tmp_path / "s"],
                        capsys)
    _one_line_2(code, err)
    assert "--widths" in err and time.perf_counter() - t < 30  # it used to loop over 1e11 multiplicities


def test_koopman_never_reads_unused_npz_members(tmp_path, monkeypatch):
    """An extra member (here 40 MB of zeros, a few KB compressed) is never opened: only 'inputs' and the labels."""
    p = tmp_path / "train.npz"
    rng = np.random.default_rng(0)
    np.savez_compressed(p, inputs=rng.random((20, 2)), labels=np.arange(20) % 2, junk=np.zeros(5_000_000))
    assert p.stat().st_size < 200_000
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **k):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    X, y, task = load_split(p, "--train", None)
    assert X.shape == (20, 2) and task == "classification" and y.dtype == np.int64
    assert "junk.npy" not in opened and {"inputs.npy", "labels.npy"} <= set(opened)


def test_fourier_memory_is_estimated_and_n_boot_bounded(tmp_path, capsys):
    from linlens.operators import circulant

    L = 64
    k = np.zeros(L)
    k[:3] = [0.25, 0.5, 0.25]
    A = circulant(np.fft.rfft(np.roll(k, -1)), (L,)).to_dense()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, L))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", X @ A.T + 0.01 * rng.normal(size=X.shape))
    np.save(tmp_path / "A.npy", A)
    base = ["analyze", "-m", "torch.nn:Identity", "-i", tmp_path / "y.npy", "-t", tmp_path / "x.npy", "--operator",
            tmp_path / "A.npy", "--assume", "shift-invariant"]
    code, _, err = _run([*base, "--n-boot", "100000", "--max-memory", "100M", "-o", tmp_path / "r"], capsys)
    _one_line_2(code, err)  # 16 · 8 B · 1e5 · 33 = 4 GiB estimated, refused before any allocation
    assert "bootstrap" in err and "--max-memory" in err and "--n-boot" in err
    assert not (tmp_path / "r").exists()
    code, _, err = _run([*base, "--n-boot", "100000000", "-o", tmp_path / "r"], capsys)
    _one_line_2(code, err)  # beyond the bound: refused before anything is loaded
    assert "--n-boot" in err


def test_koopman_inputs_beyond_the_models_range_are_refused(tmp_path, capsys):
    """1e200 inputs overflowed a float32 model to inf and 'accuracy 1.0' was reported; now one line naming the
    file, the row and the range."""
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 2))
    torch.jit.script(net).save(str(tmp_path / "m.pt"))
    rng = np.random.default_rng(0)
    for k in ("train", "val", "test"):
        np.savez(tmp_path / f"{k}.npz", inputs=rng.random((30, 2)) * 1e200, labels=np.arange(30) % 2)
    code, _, err = _run(["koopman", "--trust-model", "-m", tmp_path / "m.pt", "--layer", "1", "--train",
                         tmp_path / "train.npz", "--val", tmp_path / "val.npz", "--test", tmp_path / "test.npz",
                         "-o", tmp_path / "k", "--quick"], capsys)
    _one_line_2(code, err)
    assert "--train" in err and "row 0" in err and "float32" in err and not (tmp_path / "k").exists()
