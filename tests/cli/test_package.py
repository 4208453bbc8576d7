"""The installed command: --version, `python -m linlens`, help without placeholders, the [dask] extra's message,
and a failing model call reported by its underlying error in one line."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from linlens.cli import app, main

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _pyproject_version() -> str:
    """The version the wheel carries: pyproject's own, or the file its dynamic version names (read as text)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if "version" in project["project"]:
        return project["project"]["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]  # "linlens._version.__version__"
    path = ROOT / "src" / (attr.rsplit(".", 1)[0].replace(".", "/") + ".py")
    return re.search(r"__version__\s*=\s*[\"']([^\"']+)", path.read_text(encoding="utf-8")).group(1)


def test_version_is_the_packages(capsys):
    # independent truth: the version declared in pyproject.toml, which the wheel carries
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.strip() == f"linlens {_pyproject_version()}"


def test_python_dash_m_runs_the_same_cli():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "linlens", "--version"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == f"linlens {_pyproject_version()}", res.stderr


def _leaves(cmd, path=()):
    yield list(path), cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _leaves(sub, (*path, name))


@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_has_no_bool_placeholder_and_each_flag_once(columns):
    for path, cmd in _leaves(typer.main.get_command(app)):
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": columns, "NO_COLOR": "1", "TERM": "dumb"})
        assert res.exit_code == 0, res.output
        assert "<bool>" not in res.output, f"linlens {' '.join(path)} --help"
        assert not re.search(r"\w…", res.output), f"linlens {' '.join(path)} --help cuts a word"
        for p in getattr(cmd, "params", []):
            for name in [*p.opts, *getattr(p, "secondary_opts", [])]:
                if name.startswith("--"):
                    # every name of an option is listed once, and whole (not cut by "…")
                    assert len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", res.output.split("─╮", 1)[-1]
                                          .split("Example", 1)[0])) >= 1, (path, name, res.output)
                    row = [ln for ln in res.output.splitlines() if re.search(rf"│ [ *]  {re.escape(name)}\b", ln)]
                    assert len(row) <= 1, (path, name)


def test_dask_without_the_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    net = torch.nn.Linear(3, 2).double()
    torch.jit.script(net).save(str(tmp_path / "m.pt"))
    np.save(tmp_path / "y.npy", np.random.default_rng(0).standard_normal((50, 3)))
    real = importlib.util.find_spec
    extra = {"dask", "distributed", "zarr"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] in extra else real(name, *a))
    code, _, err = _run(["analyze", "-m", str(tmp_path / "m.pt"), "--trust-model", "-i", str(tmp_path / "y.npy"),
                         "--dask", "local", "-o", str(tmp_path / "rep")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'linlens[dask]'" in err and "dask" in err.split("needs")[1]
    assert not (tmp_path / "rep").exists()


def test_torchscript_failure_shows_the_underlying_error(tmp_path, capsys):
    net = torch.nn.Sequential(torch.nn.Linear(32, 8))
    torch.jit.script(net).save(str(tmp_path / "m.pt"))
    x = np.random.default_rng(0).standard_normal((10, 16))
    np.save(tmp_path / "y.npy", x)
    with pytest.raises(RuntimeError) as direct:  # what the Python API says for the same call
        net(torch.as_tensor(x, dtype=torch.float32))
    code, _, err = _run(["analyze", "-m", str(tmp_path / "m.pt"), "--trust-model", "-i", str(tmp_path / "y.npy"),
                         "-o", str(tmp_path / "rep")], capsys)
    assert code == 2 and err.count("\n") == 1
    assert str(direct.value).splitlines()[0] in err
    assert "TorchScript interpreter" not in err
