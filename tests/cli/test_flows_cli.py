"""`linlens reproduce flows-* --quick` end to end: report folders with figures and the theory's numbers."""

import json

import pytest

from linlens.cli import main


def _run(tmp_path, capsys, name):
    out = tmp_path / name
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", name, "--quick", "--out", str(out), "--device", "cpu"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    return out, json.loads((out / "metrics.json").read_text())


def test_flows_linear_quick(tmp_path, capsys):
    out, m = _run(tmp_path, capsys, "flows-linear")
    for key in ("alpha=0.0", "alpha=0.1"):
        assert m["runs"][key]["wtw_rel_err"] < 1e-3
        assert min(m["runs"][key]["abs_corr_vs_pca"]) >= 0.999
    assert {"components_vs_pca.png", "spectrum.png", "convergence.png"} <= {p.name for p in out.glob("*.png")}


def test_flows_stability_quick(tmp_path, capsys):
    out, m = _run(tmp_path, capsys, "flows-stability")
    runs = m["runs"]
    s = runs["no penalty"]["sigma_max"]
    assert s[str(m["epochs"])]["sigma_max_median"] > 5 * s["1"]["sigma_max_median"]  # grows without penalty
    assert runs["α = 0.1"]["rel_err"] < 0.1
    assert (out / "stability.png").exists()
    assert "1/√(2α)" in (out / "report.html").read_text()


def test_flows_scurve_quick(tmp_path, capsys):
    out, m = _run(tmp_path, capsys, "flows-scurve")
    for v in ("narrow", "wide"):
        assert len(m["variants"][v]["median_local_std"]) == 3
        assert (out / f"scurve_{v}.png").exists()
    assert "Spearman" in capsys.readouterr().out


def test_flows_digits_quick(tmp_path, capsys):
    out, m = _run(tmp_path, capsys, "flows-digits")
    assert m["inverse_max_abs_error"] < 1e-8
    assert (out / "traversals_0.png").exists()
