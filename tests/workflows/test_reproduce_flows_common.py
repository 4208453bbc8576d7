"""linlens.workflows.reproduce.flows_common: the flows reproductions' set-up refuses an existing report (and, even
with force, a folder linlens did not write) before any training, then seeds every generator (the draws after it
equal those after seeding torch, numpy and random directly); ``say`` prints one line to a console, nothing without
one."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from rich.console import Console

from linlens.errors import ReportExistsError
from linlens.report.io import MARKER
from linlens.workflows.reproduce.flows_common import PAPER, say, setup


@pytest.fixture
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_setup_seeds_torch_numpy_and_random_like_direct_seeding(tmp_path, _threads):
    setup(tmp_path / "new", force=False, seed=7)
    got = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    want = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[2] == want[2]
    assert torch.get_num_threads() == 1
    setup(tmp_path / "new", force=False, seed=8)  # its draws differ with the seed
    assert not torch.equal(torch.rand(3), want[0])


def test_setup_refuses_an_existing_report_unless_forced(tmp_path, _threads):
    (tmp_path / "notes.txt").write_text("not a report")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with pytest.raises(ReportExistsError, match="--force"):
        setup(tmp_path, force=False, seed=0)
    assert torch.equal(torch.rand(1), before)  # refused before seeding anything
    assert (tmp_path / "notes.txt").read_text() == "not a report"
    with pytest.raises(ReportExistsError, match="nothing was deleted"):
        setup(tmp_path, force=True, seed=0)  # --force replaces only a report linlens wrote
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / MARKER).write_text("")
    with pytest.raises(ReportExistsError):
        setup(ours, force=False, seed=0)
    setup(ours, force=True, seed=0)


def test_say_prints_one_line_or_nothing():
    buf = io.StringIO()
    say(Console(file=buf, width=200), f"training [{PAPER[:8]}] α = 0.1")
    assert buf.getvalue() == "training [Feinman ] α = 0.1\n"
    say(None, "dropped")  # no console, no output, no error
