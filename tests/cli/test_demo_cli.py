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
        models = study["models"]
        for name, mod in models.items():
            v = mod["verdict"]
            assert mod["closest"] in ("A⁻¹", "Wiener", "C_data", "tie", "none"), name
            # a verdict is only named when its paired intervals against every other reference exclude 0
            if mod["closest"] not in ("tie", "none"):
                assert all(d["low"] > 0 for d in v["differences"].values()), name
            for ref, e in mod["errors"].items():
                assert e["low"] <= e["estimate"] <= e["high"] or e["low"] == 0.0, (name, ref)
        # the untrained network's surrogate is noise: closest to nothing, signal error ≈ 1 (nothing recovered)
        untrained = models["untrained MLP"]
        assert untrained["closest"] == "none"
        assert untrained["signal_noise_corrected"]["signal_error"]["estimate"] > 0.9
        # the split reproduces the surrogate's test error (checked by the report against measured test MSE)
        tr = models["trained MLP"]
        assert tr["signal_noise"]["total"] == pytest.approx(
            tr["signal_noise"]["signal_error"] + tr["signal_noise"]["noise_amplification"], rel=1e-9)
        assert tr["nonlinear_gain"]["method"] == "paired t"
        assert "Paired differences" in m["problems"][key]["verdict"]
    pngs = {p.name for p in out.glob("*.png")}
    for stem in ("singular_spectra", "filter_factors", "signal_noise", "heatmaps", "training"):
        assert f"smooth_{stem}.png" in pngs
    html = (out / "report.html").read_text()
    assert "signal error" in html and "basic bootstrap interval" in html
    assert "verdict" in capsys.readouterr().out
