"""`linlens fibers strata|analyze` with a careless --out: refused (one line, exit 2) before any computation.
(Bad weight files and the strata guard are tested with the fibers commands themselves.)"""

import pytest
from _hostile_out import OUT_CASES, assert_one_line_exit_2, bad_out, run

import linlens.workflows.fibers_cmd as fibers_cmd


@pytest.fixture
def no_work(monkeypatch):
    def fail(**kwargs):
        raise AssertionError("the command started although --out was bad")

    monkeypatch.setattr(fibers_cmd, "run_strata", fail)
    monkeypatch.setattr(fibers_cmd, "run_analyze_weights", fail)


@pytest.mark.parametrize("case", OUT_CASES)
@pytest.mark.parametrize("cmd", [["fibers", "strata", "--widths", "2,2,2", "--rank", "0"],
                                 ["fibers", "analyze", "weights.npz"]])
def test_bad_out_refused_before_work(tmp_path, capsys, no_work, case, cmd):
    out, untouched = bad_out(tmp_path, case)
    assert_one_line_exit_2(*run([*cmd, "--out", out], capsys))
    assert untouched() is not False
