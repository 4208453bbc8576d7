"""`linlens reproduce flows-scurve --quick` (linlens.workflows.reproduce.flows_scurve):
the ideal S-curve flow's median local std (0.6356, closed form) is the one truth of the table, the
pass verdict and the README; its bootstrap intervals contain the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from _cases import run_reproduce_quick


def test_flows_scurve_quick(tmp_path, capsys):
    out, m = run_reproduce_quick(tmp_path, capsys, "flows-scurve")
    for v in ("narrow", "wide"):
        res = m["variants"][v]
        assert len(res["median_local_std"]) == 3
        assert (out / f"scurve_{v}.png").exists()
        # the table, the pass verdict and the README use one truth: the ideal flow's median local std
        assert res["true_std"][1] == pytest.approx(0.6356, abs=1e-3)
        rel = np.abs(np.array(res["median_local_std"]) - res["true_std"]) / np.array(res["true_std"])
        assert res["pass_std"] == bool(np.all(rel <= np.array(res["targets_rel"])))
        lo, hi = np.array(res["median_local_std_ci95"]).T
        assert np.all(lo <= res["median_local_std"]) and np.all(res["median_local_std"] <= hi)
    assert "Spearman" in capsys.readouterr().out
