"""`linlens reproduce` with careless options: --out, --seed and --device are refused (one line, exit 2)
before any training."""

import pytest
from _hostile_out import OUT_CASES, assert_one_line_exit_2, bad_out, run

import linlens.workflows.reproduce.flows_linear as flows_linear


@pytest.fixture
def no_training(monkeypatch):
    def fail(**kwargs):
        raise AssertionError("the reproduction started although its options were bad")

    monkeypatch.setattr(flows_linear, "run_linear", fail)


@pytest.mark.parametrize("case", OUT_CASES)
def test_bad_out_refused_before_training(tmp_path, capsys, no_training, case):
    out, untouched = bad_out(tmp_path, case)
    assert_one_line_exit_2(*run(["reproduce", "flows-linear", "--quick", "--out", out], capsys))
    assert untouched() is not False


@pytest.mark.parametrize("opt", [["--seed", "-1"], ["--seed", str(2**64)], ["--device", "nonsense"],
                                 ["--device", ""], ["--device", "meta"]])
def test_bad_options_refused_before_training(tmp_path, capsys, no_training, opt):
    assert_one_line_exit_2(*run(["reproduce", "flows-linear", "--quick", "--out", tmp_path / "rep", *opt], capsys))
    assert not (tmp_path / "rep").exists()


def test_unknown_reproduction_is_one_line(tmp_path, capsys):
    assert_one_line_exit_2(*run(["reproduce", "nonsense", "--out", tmp_path / "rep"], capsys))
