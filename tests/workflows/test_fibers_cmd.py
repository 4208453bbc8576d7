"""The demo's deep-linear-network section on small random data."""

import numpy as np

from linlens.fibers import strata
from linlens.report import Report
from linlens.workflows.fibers_cmd import demo_section


def test_demo_section_small_random(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12))
    A = rng.standard_normal((12, 12)) / 4 + np.eye(12)
    Y = X @ A.T + 0.01 * rng.standard_normal((300, 12))
    rep = Report("demo")
    out = demo_section(rep, Y, X, seed=0, quick=True)
    assert out["deep linear: rank of W"] == 3  # widths (12, 6, 3, 12): the bottleneck is 3
    d = rep.metrics["deep_linear_network"]
    assert d["widths"] == [12, 6, 3, 12]
    st = d["machine_precision"]["stratum"]
    # independent check: the generic stratum of these widths is the top-dimensional one of the rank-3 fiber
    assert st["dim"] == strata((12, 6, 3, 12), 3)[0].dim
    assert out["deep linear: stratum dim"] + out["deep linear: stratum codim"] == 12 * 6 + 6 * 3 + 3 * 12
    assert d["mse_network"] >= d["mse_least_squares"] * (1 - 1e-9)
    rep.write(tmp_path / "r")
    assert (tmp_path / "r" / "fibers_flow.png").is_file()
    assert "Deep linear network" in (tmp_path / "r" / "report.html").read_text()
