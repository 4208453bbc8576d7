import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from linlens.errors import ReportExistsError
from linlens.report import Report, atomic_dir, json_safe


def test_json_safe_handles_numpy_complex_nan():
    d = json_safe({"a": np.arange(3), "b": np.float32(1.5), "c": 1 + 2j, "d": math.nan, "e": np.inf})
    assert d == {"a": [0, 1, 2], "b": 1.5, "c": {"re": 1.0, "im": 2.0}, "d": None, "e": None}
    json.dumps(d, allow_nan=False)


def test_report_writes_folder_and_refuses_overwrite(tmp_path):
    rep = Report("t")
    rep.add_text("hello")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    rep.add_figure(fig, "curve", "a line")
    rep.metrics["x"] = np.float64(2.0)
    out = rep.write(tmp_path / "r")
    assert json.loads((out / "metrics.json").read_text()) == {"x": 2.0}
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ReportExistsError):
        rep.write(tmp_path / "r")
    rep.metrics["x"] = 3
    rep.write(tmp_path / "r", force=True)
    assert json.loads((out / "metrics.json").read_text()) == {"x": 3}


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "r") as tmp:
            (tmp / "partial.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
