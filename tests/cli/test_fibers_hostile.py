"""Hostile and careless input to `linlens fibers`: one line on stderr, exit 2, no report folder, and fast."""

import time
import zipfile

import numpy as np
import pytest
import torch

from linlens.cli import main


def _exit2(argv, capsys, *match):
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    for m in match:
        assert m in err, err
    return err, elapsed


@pytest.mark.parametrize("widths", ["4,4,4,4,4,4,4,4", "5,5,5,5,5", "12,12,12,12,12,12,12,12,12,12"])
def test_strata_limit_is_checked_before_enumerating(tmp_path, capsys, widths):
    out = tmp_path / "o"
    err, elapsed = _exit2(["fibers", "strata", "--widths", widths, "--rank", "0", "--out", str(out)], capsys,
                          "--max-strata", "strata")
    assert elapsed < 10  # these took 169 s / 4.4 GB before the count came first
    assert not out.exists()


def test_strata_count_in_the_message_is_exact(tmp_path, capsys):
    from linlens.fibers import strata

    err, _ = _exit2(["fibers", "strata", "--widths", "3,3,3,3,3", "--rank", "0", "--max-strata", "100",
                     "--out", str(tmp_path / "o")], capsys)
    assert f" {len(strata((3, 3, 3, 3, 3), 0))} strata" in err


def test_raising_the_limit_lists_them(tmp_path, capsys):
    import json

    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["fibers", "strata", "--widths", "3,3,3,3", "--rank", "0", "--max-strata", "77", "--out", str(out)])
    assert exc.value.code in (0, None)
    assert json.loads((out / "metrics.json").read_text())["n_strata"] == 77


def test_bad_limits_and_layers(tmp_path, capsys):
    out = str(tmp_path / "o")
    _exit2(["fibers", "strata", "--widths", "2,2", "--rank", "0", "--max-strata", "0", "--out", out], capsys,
           "--max-strata")
    _exit2(["fibers", "strata", "--widths", ",".join(["1"] * 40), "--rank", "1", "--out", out], capsys, "--widths")


def test_analyze_refuses_npy(tmp_path, capsys):
    f = tmp_path / "w.npy"
    np.save(f, np.eye(3))
    _exit2(["fibers", "analyze", str(f), "--out", str(tmp_path / "o")], capsys, ".npy", "np.savez")
    g = tmp_path / "renamed.npz"  # a .npy under another name is recognised by its magic bytes
    g.write_bytes(f.read_bytes())
    _exit2(["fibers", "analyze", str(g), "--out", str(tmp_path / "o")], capsys, ".npy")
    assert not (tmp_path / "o").exists()


def test_analyze_refuses_non_zip(tmp_path, capsys):
    f = tmp_path / "w.npz"
    f.write_bytes(b"\x00\x01 definitely not a zip archive" * 10)
    _exit2(["fibers", "analyze", str(f), "--out", str(tmp_path / "o")], capsys, "not a zip")
    p = tmp_path / "w.pt"
    p.write_text("not a torch file")
    _exit2(["fibers", "analyze", str(p), "--out", str(tmp_path / "o")], capsys, "weights_only")


def _lying_npz(path, shape):
    """An .npz whose W1 member declares ``shape`` (float64) but holds 16 bytes of data."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("W1.npy", buf.getvalue() + b"\x00" * 16)
        ok = io.BytesIO()
        np.save(ok, np.eye(2))
        zf.writestr("W2.npy", ok.getvalue())


def test_analyze_refuses_a_header_claiming_a_huge_shape(tmp_path, capsys):
    f = tmp_path / "huge.npz"
    _lying_npz(f, (20000, 20000))  # 3.2 GB claimed, 16 bytes held
    err, elapsed = _exit2(["fibers", "analyze", str(f), "--out", str(tmp_path / "o")], capsys, "declares shape")
    assert elapsed < 5 and not (tmp_path / "o").exists()


def test_analyze_refuses_honestly_huge_weights(tmp_path, capsys, monkeypatch):
    import linlens.workflows.fibers_cmd as fc

    monkeypatch.setattr(fc, "MAX_WEIGHT_BYTES", 1000)  # same rule as 1 GiB, at test size
    f = tmp_path / "w.npz"
    np.savez(f, W1=np.ones((20, 20)), W2=np.ones((20, 20)))
    _exit2(["fibers", "analyze", str(f), "--out", str(tmp_path / "o")], capsys, "GiB")
    g = tmp_path / "w.pt"
    torch.save({"0.weight": torch.ones(20, 20)}, g)
    _exit2(["fibers", "analyze", str(g), "--out", str(tmp_path / "o")], capsys, "GiB")


def test_state_dict_with_bias_or_activation_is_refused(tmp_path, capsys):
    out = str(tmp_path / "o")
    f = tmp_path / "bias.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 3, bias=False)).state_dict(), f)
    _exit2(["fibers", "analyze", str(f), "--out", out], capsys, "bias")
    g = tmp_path / "relu.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.ReLU(),
                                   torch.nn.Linear(2, 3, bias=False)).state_dict(), g)
    _exit2(["fibers", "analyze", str(g), "--out", out], capsys, "layer 1 has no weight")
    h = tmp_path / "bn.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.BatchNorm1d(2, affine=False))
               .state_dict(), h)
    _exit2(["fibers", "analyze", str(h), "--out", out], capsys, "running_mean")
    c = tmp_path / "conv.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3, bias=False)).state_dict(), c)
    _exit2(["fibers", "analyze", str(c), "--out", out], capsys, "2-D")
    t = tmp_path / "tensor.pt"
    torch.save(torch.eye(3), t)
    _exit2(["fibers", "analyze", str(t), "--out", out], capsys, "state dict")
    z = tmp_path / "cplx.pt"
    torch.save({"0.weight": torch.eye(2, dtype=torch.complex64)}, z)
    _exit2(["fibers", "analyze", str(z), "--out", out], capsys, "complex")


def test_existing_out_is_refused_before_reading(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    f = tmp_path / "w.npz"
    _lying_npz(f, (2, 2))
    _exit2(["fibers", "analyze", str(f), "--out", str(out)], capsys, "--force")
    _exit2(["fibers", "strata", "--widths", "2,2,2", "--rank", "0", "--out", str(out)], capsys, "--force")
