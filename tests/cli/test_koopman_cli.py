"""`linlens koopman` on models built with plain torch (scripted and saved, or module:attr): the runnable
example of --help, a regression model, and every bad input as one line on stderr, exit 2, nothing written."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import typer
from torch import nn

from linlens.cli import app, main


def _run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code or 0, capsys.readouterr()


def _example() -> str:
    return typer.main.get_command(app).commands["koopman"].epilog


def test_help_example_runs(tmp_path, capsys, monkeypatch):
    ep = _example()
    code = ep[ep.index('python -c "') + len('python -c "'): ep.index('"\n')]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    cmd = ep[ep.index("linlens koopman"):].replace("\\\n", " ").split()
    monkeypatch.chdir(tmp_path)
    rc, cap = _run(cmd[1:], capsys)
    assert rc == 0, cap.err
    m = json.loads((tmp_path / "koop-report" / "metrics.json").read_text())
    assert m["task"] == "classification" and m["layer"] == 1
    lay = m["layers"]["8x6"]
    assert lay["original_layer_params"] == 8 * 6 + 6
    assert {c["baseline"] for c in lay["comparisons"]} == {"original", "affine_least_squares", "control",
                                                          "trained_scaled_ls", "hybrid_h0"}
    assert all(0 <= c["test"]["p_value"] <= 1 for c in lay["comparisons"])
    assert "best hybrid" in cap.out


def _reg_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


NET = _reg_net()


def test_regression_module_attr_paired_t(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    for name, n in (("train", 400), ("val", 200), ("test", 200)):
        x = rng.random((n, 3), dtype=np.float32)
        with torch.no_grad():
            y = NET(torch.from_numpy(x)).numpy() + 0.01 * rng.normal(size=(n, 2))
        np.savez(tmp_path / f"{name}.npz", inputs=x, targets=y)
    out = tmp_path / "rep"
    monkeypatch.syspath_prepend(str(tmp_path.parent))
    rc, cap = _run(["koopman", "--model", f"{__name__}:NET", "--layer", "2", "--train", str(tmp_path / "train.npz"),
                    "--val", str(tmp_path / "val.npz"), "--test", str(tmp_path / "test.npz"), "--out", str(out),
                    "--quick", "--device", "cpu"], capsys)
    assert rc == 0, cap.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "regression"
    # the original model's test MSE is the noise level (0.01² per output, 2 outputs), within sampling error
    assert m["original_mse"] == pytest.approx(2e-4, rel=0.3)
    lay = m["layers"]["5x2"]
    c = next(c for c in lay["comparisons"] if c["hybrid"] == "best" and c["baseline"] == "original")
    assert c["test"]["difference"] == pytest.approx(c["hybrid_mse"] - c["rival_mse"], rel=1e-9, abs=1e-15)
    assert "paired t" in c["verdict"]


def _files(tmp, X, **lab):
    for name in ("train", "val", "test"):
        np.savez(tmp / f"{name}.npz", inputs=X, **lab)
    return ["--train", str(tmp / "train.npz"), "--val", str(tmp / "val.npz"), "--test", str(tmp / "test.npz")]


def _script(tmp, module) -> str:
    p = tmp / "m.pt"
    torch.jit.script(module).save(str(p))
    return str(p)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        return x + self.a(x)


def _mlp():
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


@pytest.mark.parametrize("case,expect", [
    ("not_sequential", "nn.Sequential of Linear and activation"),
    ("bad_module", "module 1 is Dropout"),
    ("layer_range", "--layer must be in [1, 2]"),
    ("float_labels", "labels must be non-negative integers"),
    ("no_chain", "do not chain"),
    ("wrong_width", "inputs have 3 columns"),
    ("missing", "must hold arrays"),
    ("label_range", "label 5 but the model has 2 outputs"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, case, expect):
    X = np.random.default_rng(0).random((20, 2)).astype(np.float32)
    labels = np.arange(20) % 2
    model, layer, files = _mlp(), "1", None
    if case == "not_sequential":
        model = Residual()
    elif case == "bad_module":
        model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(), nn.Linear(4, 2))
    elif case == "layer_range":
        layer = "3"
    elif case == "float_labels":
        files = _files(tmp_path, X, labels=labels + 0.5)
    elif case == "no_chain":
        model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(5, 2))
    elif case == "wrong_width":
        files = _files(tmp_path, np.random.default_rng(0).random((20, 3)), labels=labels)
    elif case == "missing":
        files = _files(tmp_path, X, y=labels)
    elif case == "label_range":
        files = _files(tmp_path, X, labels=labels * 5)
    files = files or _files(tmp_path, X, labels=labels)
    out = tmp_path / "rep"
    rc, cap = _run(["koopman", "--trust-model", "--model", _script(tmp_path, model), "--layer", layer, *files,
                    "--out", str(out)],
                   capsys)
    assert rc == 2
    assert expect in cap.err and len(cap.err.strip().splitlines()) == 1, cap.err
    assert not out.exists()
