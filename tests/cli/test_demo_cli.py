"""`linlens demo --quick` end to end: report folder, figures, and a verdict backed by numbers."""

import json

import pytest

from linlens.cli import main


def test_demo_quick_writes_report_and_names_closest_reference(tmp_path, capsys):
    out = tmp_path / "rep"
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--quick", "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    for key in ("smooth", "piecewise"):
        study = m["problems"][key]["study"]
        trained = study["models"]["trained MLP"]
        assert trained["closest"] in ("A⁻¹", "Wiener", "C_data")
        # on these ill-conditioned, noisy problems A⁻¹ is never the closest linear reference
        assert trained["closest"] != "A⁻¹"
        assert trained["data_weighted_errors"]["A⁻¹"] > 0.5
        assert "closest to" in m["problems"][key]["verdict"]
    pngs = {p.name for p in out.glob("*.png")}
    for stem in ("singular_spectra", "filter_factors", "principal_angles", "eigenvalues", "heatmaps", "training"):
        assert f"smooth_{stem}.png" in pngs
    assert "closest to" in (out / "report.html").read_text()
    assert "closest to" in capsys.readouterr().out
