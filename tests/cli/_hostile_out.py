"""Shared cases for the `--out` checks every command makes before any computation (issue 15)."""

import os

import pytest

from linlens.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def assert_one_line_exit_2(code, out, err):
    assert code == 2, (code, out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


OUT_CASES = ["long_name", "dangling_link", "parent_is_file", "out_is_file", "exists_without_force"]


def bad_out(tmp_path, case):
    """A destination that must be refused, and a check that nothing of the user's was touched: the case's own
    file or link is as it was, and ``tmp_path`` holds exactly the entries it held before (no temporary folder,
    partial report or stray file left behind)."""
    (tmp_path / "afile").write_text("mine")
    if case == "long_name":
        dest, kept = tmp_path / ("r" * 256), lambda: (tmp_path / "afile").read_text() == "mine"
    elif case == "dangling_link":
        os.symlink(tmp_path / "nowhere", tmp_path / "link")
        dest = tmp_path / "link"
        kept = lambda: os.path.islink(dest) and not (tmp_path / "nowhere").exists()  # noqa: E731
    elif case == "parent_is_file":
        dest, kept = tmp_path / "afile" / "rep", lambda: (tmp_path / "afile").read_text() == "mine"
    elif case == "out_is_file":
        dest, kept = tmp_path / "afile", lambda: (tmp_path / "afile").read_text() == "mine"
    else:
        (tmp_path / "rep").mkdir()
        (tmp_path / "rep" / "keep.txt").write_text("keep")
        dest, kept = tmp_path / "rep", lambda: (tmp_path / "rep" / "keep.txt").read_text() == "keep"
    before = _listing(tmp_path)
    return dest, lambda: bool(kept()) and _listing(tmp_path) == before


def _listing(root):
    """Every path under ``root`` (links not followed), relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
