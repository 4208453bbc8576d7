"""Issue 25, data loss: `--force` replaces only a folder linlens wrote (the marker file every report holds) or an
empty one; an ordinary folder with a user's files is refused (one line, exit 2) and nothing in it changes."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.cli import main
from linlens.errors import ReportExistsError
from linlens.report.io import MARKER, atomic_dir


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def _thesis(folder):
    folder.mkdir()
    (folder / "chapter1.tex").write_text("years of work")
    (folder / "figs").mkdir()
    (folder / "figs" / "a.png").write_bytes(b"\x89PNG")
    (folder / "metrics.json").write_text("{}")  # even a file name a report uses does not make it a report
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_force_refuses_an_ordinary_folder_on_every_route(tmp_path, capsys):
    thesis = tmp_path / "my_thesis"
    before = _thesis(thesis)
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(50, 2)))
    for args in (["fibers", "strata", "--widths", "2,2,2", "--rank", "1"],
                 ["analyze", "-m", "torch.nn:Identity", "-i", tmp_path / "y.npy"]):
        code, _, err = _run([*args, "-o", thesis, "--force"], capsys)
        assert code == 2 and "not a linlens report" in err and len(err.strip().splitlines()) == 1, err
        assert _snapshot(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_thesis", "y.npy"]  # no temporary folder left


def test_force_replaces_a_linlens_report_and_an_empty_folder(tmp_path, capsys):
    out = tmp_path / "rep"
    code, _, err = _run(["fibers", "strata", "--widths", "2,2,2", "--rank", "1", "-o", out], capsys)
    assert code in (0, None), err
    assert (out / MARKER).is_file()
    (out / "stale.txt").write_text("from the old report")
    code, _, err = _run(["fibers", "strata", "--widths", "2,2,2", "--rank", "0", "-o", out, "--force"], capsys)
    assert code in (0, None), err
    assert (out / MARKER).is_file() and not (out / "stale.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(["fibers", "strata", "--widths", "2,2,2", "--rank", "0", "-o", empty, "--force"], capsys)
    assert code in (0, None), err
    assert (empty / MARKER).is_file()


def test_folder_that_turns_foreign_while_writing_is_not_replaced(tmp_path):
    """The check is made again at the moment of publishing: a user's folder appearing at --out meanwhile stays."""
    dest = tmp_path / "rep"
    with pytest.raises(ReportExistsError, match="not a linlens report"):
        with atomic_dir(dest, force=True) as tmp:
            (tmp / "a.txt").write_text("new")
            dest.mkdir()
            (dest / "notes.txt").write_text("mine")
    assert (dest / "notes.txt").read_text() == "mine" and not (dest / "a.txt").exists()
