"""`linlens reproduce koopman-yinyang --quick` end to end: report folder with table rows and baselines."""

import json

import pytest

from linlens.cli import main

FIELDS = {"layer", "n_scaled", "delays", "rank", "readout", "nonlinear_layers_at_inference", "params", "accuracy"}


def test_koopman_yinyang_quick_writes_report(tmp_path, capsys):
    out = tmp_path / "kyy"
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "koopman-yinyang", "--quick", "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["original_accuracy"] <= 1.0
    assert m["paper"]["original_accuracy"] == 0.984
    assert set(m["layers"]) == {"8x6", "6x4", "4x3"}
    for lay in m["layers"].values():
        assert lay["rows"] and all(FIELDS <= set(r) for r in lay["rows"])
        assert {"affine_least_squares", "hybrid_h0"} <= set(lay["baselines"])
        assert any(k.startswith("control") for k in lay["baselines"])
        assert all(r["nonlinear_layers_at_inference"] == r["delays"] for r in lay["rows"])
        assert lay["original_accuracy"] == m["original_accuracy"]
    assert (out / "decision_boundaries.png").exists() and (out / "eigenvalues_8x6.png").exists()
    assert "nonlinear" in (out / "report.html").read_text()
