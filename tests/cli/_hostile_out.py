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
    """A destination that must be refused, and a check that nothing of the user's was touched."""
    (tmp_path / "afile").write_text("mine")
    if case == "long_name":
        return tmp_path / ("r" * 256), lambda: None
    if case == "dangling_link":
        os.symlink(tmp_path / "nowhere", tmp_path / "link")
        return tmp_path / "link", lambda: os.path.islink(tmp_path / "link") and not (tmp_path / "nowhere").exists()
    if case == "parent_is_file":
        return tmp_path / "afile" / "rep", lambda: (tmp_path / "afile").read_text() == "mine"
    if case == "out_is_file":
        return tmp_path / "afile", lambda: (tmp_path / "afile").read_text() == "mine"
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "keep.txt").write_text("keep")
    return tmp_path / "rep", lambda: (tmp_path / "rep" / "keep.txt").read_text() == "keep"
