"""Every command's --help shows an example, and the runnable ones run as printed (copied from the help text into
a shell in an empty folder, with `linlens` and `python` being this interpreter)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from linlens.cli import app

runner = CliRunner()


def _leaves(cmd, path=()):
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield list(path)


LEAVES = list(_leaves(typer.main.get_command(app)))
RUNNABLE = [["analyze"], ["flows"], ["koopman"], ["fibers", "analyze"], ["fibers", "strata"], ["track"]]


def _help(args: list[str]) -> str:
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("args", LEAVES, ids=" ".join)
def test_every_command_help_shows_an_example(args):
    assert re.search(r"^\s*Example", _help(args), re.MULTILINE), f"`linlens {' '.join(args)} --help` has no example"


def _script(text: str) -> str:
    """The shell lines of the example: the block after 'Example (runnable…', or the one-line 'Example: …'."""
    lines = [ln.strip("│").rstrip() for ln in text.splitlines()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("Example (runnable")), None)
    if start is not None:
        return "\n".join(ln[1:] if ln.startswith(" ") else ln for ln in lines[start + 1:] if "──" not in ln)
    one = " ".join(ln.strip() for ln in lines if ln.strip())
    m = re.search(r"Example: (.*?)(?:╭|$)", one)
    assert m, text
    return m.group(1)


@pytest.mark.parametrize("args", RUNNABLE, ids=" ".join)
def test_runnable_help_examples_run(args, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("linlens", f'exec "{sys.executable}" -c "from linlens.cli import main; main()" "$@"'),
                       ("python", f'exec "{sys.executable}" "$@"')):
        f = bindir / name
        f.write_text(f"#!/bin/sh\n{body}\n")
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    work = tmp_path / "work"
    work.mkdir()
    script = _script(_help(args))
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, f"{script}\n---\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    reports = [p for p in work.iterdir() if (p / "metrics.json").is_file()]
    assert reports, f"no report written by:\n{script}"
    assert all((p / "report.html").is_file() for p in reports)
