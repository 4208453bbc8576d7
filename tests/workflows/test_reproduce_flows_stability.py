"""`linlens reproduce flows-stability --quick` (linlens.workflows.reproduce.flows_stability):
without a penalty σ_max of the flow's Jacobian grows; with α = 0.1 it settles within 10% of the
closed form 1/√(2α), which the report states."""

from __future__ import annotations

from _cases import run_reproduce_quick


def test_flows_stability_quick(tmp_path, capsys):
    out, m = run_reproduce_quick(tmp_path, capsys, "flows-stability")
    runs = m["runs"]
    s = runs["no penalty"]["sigma_max"]
    assert s[str(m["epochs"])]["sigma_max_median"] > 5 * s["1"]["sigma_max_median"]  # grows without penalty
    assert runs["α = 0.1"]["rel_err"] < 0.1
    assert (out / "stability.png").exists()
    assert "1/√(2α)" in (out / "report.html").read_text()
