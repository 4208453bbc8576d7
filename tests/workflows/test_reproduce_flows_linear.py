"""`linlens reproduce flows-linear --quick` (linlens.workflows.reproduce.flows_linear):
the linear flow on Gaussian data: WᵀW = (S + 2αI)⁻¹ (closed form) and components = PCA scores."""

from __future__ import annotations

from _cases import run_reproduce_quick


def test_flows_linear_quick(tmp_path, capsys):
    out, m = run_reproduce_quick(tmp_path, capsys, "flows-linear")
    for key in ("alpha=0.0", "alpha=0.1"):
        assert m["runs"][key]["wtw_rel_err"] < 1e-3
        assert min(m["runs"][key]["abs_corr_vs_pca"]) >= 0.999
    assert {"components_vs_pca.png", "spectrum.png", "convergence.png"} <= {p.name for p in out.glob("*.png")}
