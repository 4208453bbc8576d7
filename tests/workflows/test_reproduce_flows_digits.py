"""`linlens reproduce flows-digits --quick` (linlens.workflows.reproduce.flows_digits):
the trained flow inverts to 1e-8 and draws its traversals."""

from __future__ import annotations

from _cases import run_reproduce_quick


def test_flows_digits_quick(tmp_path, capsys):
    out, m = run_reproduce_quick(tmp_path, capsys, "flows-digits")
    assert m["inverse_max_abs_error"] < 1e-8
    assert (out / "traversals_0.png").exists()
