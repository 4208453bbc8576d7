"""`linlens reproduce koopman-yinyang --quick` end to end (small size; linlens.workflows.reproduce.koopman_yinyang):
every baseline family, paired tests whose p-values match scipy's binomial test, rivals chosen on validation,
labelled figures."""

import json

import pytest
from scipy import stats as sps

from linlens.cli import main

FIELDS = {"layer", "n_scaled", "delays", "rank", "readout", "nonlinear_layers_at_inference", "params", "accuracy",
          "val_accuracy", "params_ratio", "dmd_steps"}
FAMILIES = {"original", "affine_least_squares", "control", "trained_scaled_ls", "hybrid_h0"}


def test_koopman_yinyang_quick_writes_report(tmp_path, capsys):
    out = tmp_path / "kyy"
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "koopman-yinyang", "--quick", "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["paper"]["original_accuracy"] == 0.984
    assert set(m["layers"]) == {"8x6", "6x4", "4x3"}
    for lay in m["layers"].values():
        n_in, n_out = lay["original_layer_shape"]
        assert lay["original_layer_params"] == n_in * n_out + n_out
        assert lay["rows"] and all(FIELDS <= set(r) for r in lay["rows"])
        assert all(r["nonlinear_layers_at_inference"] == r["delays"] for r in lay["rows"])
        assert all(r["dmd_steps"] == r["n_scaled"] + 1 - r["delays"] for r in lay["rows"])
        assert {r["family"] for r in lay["baseline_rows"]} == {"affine_least_squares", "control", "trained_scaled_ls"}
        sel = lay["selected"]
        assert sel["best_one_step"]["dmd_steps"] == 1 and sel["best_multi_step"]["dmd_steps"] >= 3
        # the best hybrid is the best on VALIDATION
        assert sel["best"]["val_accuracy"] == max(r["val_accuracy"] for r in lay["rows"])
        for cat in ("best", "best_one_step", "best_multi_step"):
            cmp = [c for c in lay["comparisons"] if c["hybrid"] == cat]
            assert {c["baseline"] for c in cmp} == FAMILIES
            for c in cmp:
                t = c["test"]
                ref = 1.0 if t["b"] + t["c"] == 0 else sps.binomtest(t["b"], t["b"] + t["c"], 0.5).pvalue
                assert t["p_value"] == pytest.approx(ref)
                assert t["difference"] == pytest.approx(c["hybrid_accuracy"] - c["rival_accuracy"])
                assert t["p_value"] <= t["p_adjusted"] <= 1
                assert c["verdict"].startswith("beats") == (t["p_adjusted"] < 0.05 and t["b"] > t["c"])
            tsl = next(c for c in cmp if c["baseline"] == "trained_scaled_ls")
            assert tsl["rival_nonlinear_layers_at_inference"] == sel[cat]["nonlinear_layers_at_inference"]
    for name in ("8x6", "6x4", "4x3"):
        assert (out / f"eigenvalues_{name}_multi_step.png").exists()
        assert (out / f"eigenvalues_{name}_one_step.png").exists()
    html = (out / "report.html").read_text()
    assert "one-step regression" in html and "McNemar" in html
    assert (out / "decision_boundaries.png").exists()
