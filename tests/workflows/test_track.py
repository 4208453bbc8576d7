"""linlens.workflows.track as a library (the command line is tests/cli/test_track_cli.py): build_module's forms
of --model-spec and its refusals, and the tracking section's tables against the TrackingResult's own numbers
(filter factors known in closed form: C = A⁻¹ (s + 1)/2, φᵢ = (s + 1)/2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from linlens.errors import ModelError
from linlens.report import Report
from linlens.workflows._examples import tracked_run
from linlens.workflows.track import add_tracking_section, build_module

ARCH = """import torch
instance = torch.nn.Linear(2, 2)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
def build():
    return torch.nn.Linear(4, 4)
def broken():
    raise RuntimeError("no weights here\\nsecond line")
def not_a_module():
    return 42
"""


@pytest.fixture()
def arch(tmp_path, monkeypatch):
    (tmp_path / "h24_arch.py").write_text(ARCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "h24_arch"
    sys.modules.pop("h24_arch", None)


def test_build_module_takes_an_instance_a_class_or_a_builder(arch):
    import h24_arch

    assert build_module(f"{arch}:instance") is h24_arch.instance  # an instance is used as is
    assert isinstance(build_module(f"{arch}:Net").lin, torch.nn.Linear)
    assert build_module(f"{arch}:build").in_features == 4


def test_build_module_refusals_are_one_line(arch):
    with pytest.raises(ModelError, match=r"calling h24_arch:broken\(\) failed: no weights here second line$"):
        build_module(f"{arch}:broken")
    with pytest.raises(ModelError, match="must be an nn.Module.*got int"):
        build_module(f"{arch}:not_a_module")


def test_section_metrics_and_tables_are_the_results():
    result = tracked_run().result()
    rep = Report("t")
    metrics = add_tracking_section(rep, result)
    assert metrics["tracking"]["points"][1]["step"] == 1
    np.testing.assert_allclose(metrics["tracking"]["points"][1]["filter_factors"], [1.0, 1.0, 1.0], atol=1e-10)
    sb = metrics["spectral_bias"]  # every φᵢ reaches half of its final value at the same step: no order to see
    assert sb["components"] == [0, 1, 2] and sb["spearman_rho"] is None  # NaN, written as null
    tables = [b.payload for b in rep._blocks if b.kind == "table"]
    header, rows = tables[0][0], tables[0][1]
    assert header[:2] == ["step", "R²"] and [r[0] for r in rows] == [0, 1]
    names = sorted(f.rsplit(".", 1)[0].split("_", 1)[1] for f in rep._figures)
    assert names == ["errors", "filter_factors_bands", "filter_factors_heatmap", "r2", "ranks", "spectral_bias"]
