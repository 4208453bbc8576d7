"""`linlens demo` with careless options: --out and --seed are refused (one line, exit 2) before any training."""

import pytest
from _hostile_out import OUT_CASES, assert_one_line_exit_2, bad_out, run

import linlens.workflows.demo as demo_mod


@pytest.fixture
def no_training(monkeypatch):
    def fail(**kwargs):
        raise AssertionError("the demo started although its options were bad")

    monkeypatch.setattr(demo_mod, "run_demo", fail)


@pytest.mark.parametrize("case", OUT_CASES)
def test_bad_out_refused_before_training(tmp_path, capsys, no_training, case):
    out, untouched = bad_out(tmp_path, case)
    assert_one_line_exit_2(*run(["demo", "--quick", "--out", out], capsys))
    assert untouched() is not False


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_bad_seed_refused_before_training(tmp_path, capsys, no_training, seed):
    assert_one_line_exit_2(*run(["demo", "--quick", "--out", tmp_path / "rep", "--seed", seed], capsys))


def test_force_lets_the_check_pass(tmp_path, capsys, monkeypatch):
    (tmp_path / "rep").mkdir()
    called = {}
    monkeypatch.setattr(demo_mod, "run_demo", lambda **kw: called.update(kw) or {"ok": 1})
    code, _, err = run(["demo", "--quick", "--out", tmp_path / "rep", "--force"], capsys)
    assert code in (0, None), err
    assert called["force"] is True
