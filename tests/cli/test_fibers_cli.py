"""`linlens fibers strata|analyze` end to end, and one-line errors with exit code 2."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from linlens.cli import app, main
from linlens.fibers import strata

runner = CliRunner()


def test_strata_command_writes_every_stratum(tmp_path):
    out = tmp_path / "s"
    res = runner.invoke(app, ["fibers", "strata", "--widths", "2,2,2", "--rank", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "strata" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_strata"] == 6
    assert sorted(s["dim"] for s in m["strata"]) == [0, 3, 3, 4, 4, 5]
    for s in m["strata"]:
        assert s["codim"] == 8 - s["dim"] and "barcode_text" in s and "rank_list" in s
    assert m["strata"][m["minimal"]]["dim"] == 0
    assert (out / "hasse.png").is_file() and "[0,0] [0,1] [1,2] [2,2]" in (out / "report.html").read_text()


def test_analyze_command_finds_the_stratum(tmp_path):
    s = strata((3, 2, 3), 1)[-1]
    w = s.random_point(seed=3)
    f = tmp_path / "w.npz"
    np.savez(f, W1=w[0], W2=w[1])
    out = tmp_path / "a"
    res = runner.invoke(app, ["fibers", "analyze", "--weights", str(f), "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["stratum"]["barcode_text"] == s.label and m["stratum"]["dim"] == s.dim
    assert m["tangent_dim_numerical"] == s.dim
    # the positional form gives the same report; both or neither is a one-line error
    res = runner.invoke(app, ["fibers", "analyze", str(f), "--out", str(tmp_path / "positional")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "positional" / "metrics.json").read_text())["stratum"] == m["stratum"]
    for args in (["--weights", str(f), str(f)], []):
        with pytest.raises(SystemExit) as exc:
            main(["fibers", "analyze", *args, "--out", str(tmp_path / "c")])
        assert exc.value.code == 2 and not (tmp_path / "c").exists()
    assert m["rank_list"]["ranks"]["r_2_0"]["gap"] > 1e8
    assert (out / "flow.png").is_file()
    # arr_0.. keys work too
    g = tmp_path / "g.npz"
    np.savez(g, *w)
    res = runner.invoke(app, ["fibers", "analyze", str(g), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output


def test_analyze_warns_on_tiny_gap(tmp_path):
    f = tmp_path / "w.npz"
    np.savez(f, W1=np.diag([1.0, 1.1e-3, 0.9e-3]), W2=np.eye(3))
    out = tmp_path / "a"
    res = runner.invoke(app, ["fibers", "analyze", str(f), "--out", str(out), "--tol", "1e-3"])
    assert res.exit_code == 0, res.output
    assert "tiny singular-value gap" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["fragile_ranks"] and m["warnings"]


def _exit2(argv, capsys, match):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    out = str(tmp_path / "o")
    _exit2(["fibers", "strata", "--widths", "2,x,2", "--rank", "1", "--out", out], capsys, "--widths")
    _exit2(["fibers", "strata", "--widths", "2", "--rank", "0", "--out", out], capsys, "--widths")
    _exit2(["fibers", "strata", "--widths", "2,1,2", "--rank", "2", "--out", out], capsys, "rank")
    _exit2(["fibers", "analyze", str(tmp_path / "missing.npz"), "--out", out], capsys, "not found")
    f = tmp_path / "bad.npz"
    np.savez(f, W1=np.ones((3, 2)), W2=np.ones((2, 2)))
    _exit2(["fibers", "analyze", str(f), "--out", out], capsys, "must chain")
    g = tmp_path / "odd.npz"
    np.savez(g, foo=np.ones((2, 2)))
    _exit2(["fibers", "analyze", str(g), "--out", out], capsys, "W1..WL")
    h = tmp_path / "vec.npz"
    np.savez(h, W1=np.ones(3))
    _exit2(["fibers", "analyze", str(h), "--out", out], capsys, "2-D")
    t = tmp_path / "text.npz"
    t.write_text("not a zip")
    _exit2(["fibers", "analyze", str(t), "--out", out], capsys, "could not read")


def test_analyze_state_dict_of_a_torch_sequential(tmp_path):
    # weights on a known stratum (canonical construction), loaded into a plain torch nn.Sequential and saved
    # the way people save models; the command must name that stratum and its dimension
    s = strata((4, 3, 2, 4), 1)[2]
    w = s.random_point(seed=5)
    model = torch.nn.Sequential(*[torch.nn.Linear(a.shape[1], a.shape[0], bias=False) for a in w]).double()
    with torch.no_grad():
        for layer, a in zip(model, w, strict=True):
            layer.weight.copy_(torch.as_tensor(a))
    f = tmp_path / "weights.pt"
    torch.save(model.state_dict(), f)
    out = tmp_path / "a"
    res = runner.invoke(app, ["fibers", "analyze", "--weights", str(f), "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["stratum"]["barcode_text"] == s.label and m["stratum"]["dim"] == s.dim
    assert m["tangent_dim_numerical"] == s.dim
    np.testing.assert_allclose(np.linalg.matrix_rank(w[2] @ w[1] @ w[0]), m["product_rank"])
