"""linlens.report.io: json_safe, the atomic report folder (atomic_dir, check_destination, --force), and Report.write
through it; the page itself (html) is tested in test_report_html.py."""

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


def test_large_arrays_leave_metrics_json_for_npy(tmp_path):
    """metrics.json stays small: arrays (numpy, nested lists, complex as JSON writes them, inside result objects)
    above the limit go to .npy beside it and read back equal; small ones stay in JSON."""
    from dataclasses import dataclass

    from linlens._results import ResultMixin
    from linlens.report.io import METRICS_ARRAY_LIMIT

    @dataclass(frozen=True)
    class Res(ResultMixin):
        H: np.ndarray

    rng = np.random.default_rng(0)
    H = rng.normal(size=(256, 129)) + 1j * rng.normal(size=(256, 129))
    big = rng.normal(size=300 * 300)
    rep = Report("t")
    rep.metrics.update({"res": Res(H), "v": big, "nested": big.reshape(300, 300).tolist(), "small": [1.0, None],
                        "r2_per_output": [0.5, None] * 3000})
    rep.write(tmp_path / "r")
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert (tmp_path / "r" / "metrics.json").stat().st_size < 10_000
    np.testing.assert_array_equal(np.load(tmp_path / "r" / m["res"]["H"]["npy"]), H)
    np.testing.assert_array_equal(np.load(tmp_path / "r" / m["v"]["npy"]), big)
    np.testing.assert_array_equal(np.load(tmp_path / "r" / m["nested"]["npy"]), big.reshape(300, 300))
    r2 = np.load(tmp_path / "r" / m["r2_per_output"]["npy"])
    assert r2.shape == (6000,) and np.isnan(r2[1]) and r2[0] == 0.5
    assert m["small"] == [1.0, None] and 3 < METRICS_ARRAY_LIMIT < 6000


def test_atomic_dir_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "r") as tmp:
            (tmp / "partial.txt").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- hostile and careless (issue 15)
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from linlens.errors import InputFileError  # noqa: E402
from linlens.report import check_destination  # noqa: E402
from linlens.report.io import temp_folders  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")

# a writer that enters the write window, says so, and waits there (for a kill or for a go file)
# (linlens is registered as a bare namespace so that the child does not import torch: seconds, not tens)
WRITER = """
import sys, time, pathlib, types
pkg = types.ModuleType("linlens"); pkg.__path__ = [sys.argv[4]]; sys.modules["linlens"] = pkg
from linlens.report.io import atomic_dir
dest, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with atomic_dir(dest) as tmp:
    (tmp / "metrics.json").write_text(sys.argv[3])
    print("in-window", flush=True)
    while not go.exists():
        time.sleep(0.02)
"""


def _writers(tmp_path, n, tags):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "rep"), str(tmp_path / "go"), tags[i],
                               SRC + "/linlens"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "in-window", p.stderr.read()
    return procs


def test_folder_created_by_the_user_during_the_run_is_kept(tmp_path):
    with pytest.raises(ReportExistsError):
        with atomic_dir(tmp_path / "rep") as tmp:
            (tmp / "metrics.json").write_text("ours")
            (tmp_path / "rep").mkdir()  # the user, meanwhile (an empty folder: plain rename would replace it)
    assert (tmp_path / "rep").is_dir() and list((tmp_path / "rep").iterdir()) == []
    (tmp_path / "rep" / "mine.txt").write_text("keep")
    with pytest.raises(ReportExistsError):
        with atomic_dir(tmp_path / "rep2") as tmp:
            (tmp_path / "rep2").mkdir()
            (tmp_path / "rep2" / "mine.txt").write_text("keep")
    assert (tmp_path / "rep2" / "mine.txt").read_text() == "keep"
    assert temp_folders(tmp_path / "rep") == [] and temp_folders(tmp_path / "rep2") == []


def test_two_writers_in_the_window_together_exactly_one_wins(tmp_path):
    procs = _writers(tmp_path, 2, ["first", "second"])  # both hold a complete temp folder
    (tmp_path / "go").write_text("")
    codes = [p.wait(timeout=60) for p in procs]
    errs = [p.stderr.read() for p in procs]
    assert sorted(c == 0 for c in codes) == [False, True], (codes, errs)
    loser = errs[codes.index(next(c for c in codes if c != 0))]
    assert "ReportExistsError" in loser
    assert (tmp_path / "rep" / "metrics.json").read_text() in ("first", "second")
    assert temp_folders(tmp_path / "rep") == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_in_the_write_window_leaves_no_temp_folder_after_a_rerun(tmp_path, sig):
    (p,) = _writers(tmp_path, 1, ["killed"])
    assert len(temp_folders(tmp_path / "rep")) == 1
    p.send_signal(sig)
    code = p.wait(timeout=60)
    assert code != 0 and not (tmp_path / "rep").exists()
    if sig == signal.SIGTERM:  # caught: cleaned up by the dying process itself
        assert temp_folders(tmp_path / "rep") == []
    rep = Report("rerun")
    rep.metrics["x"] = 1
    rep.write(tmp_path / "rep")
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text()) == {"x": 1}
    assert temp_folders(tmp_path / "rep") == []
    assert sorted(q.name for q in tmp_path.iterdir()) == ["rep"]


def test_check_destination_refusals(tmp_path):
    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for bad, match in [(tmp_path / ("a" * 256), "255"), (tmp_path / "dangling", "dangling"),
                       (tmp_path / "file", "not a folder"), (tmp_path / "file" / "sub", "not a folder"), ("", "empty")]:
        with pytest.raises(InputFileError, match=match):
            check_destination(bad)
    assert check_destination(tmp_path / ("a" * 255)).name == "a" * 255
    (tmp_path / "exists").mkdir()
    with pytest.raises(ReportExistsError):
        check_destination(tmp_path / "exists")
    assert check_destination(tmp_path / "exists", force=True).name == "exists"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputFileError, match="cannot"):
            check_destination(ro / "rep")
    finally:
        ro.chmod(0o755)


def test_force_replaces_only_when_complete_and_restores_on_failure(tmp_path):
    rep = Report("v1")
    rep.metrics["v"] = 1
    rep.write(tmp_path / "rep")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "rep", force=True) as tmp:
            (tmp / "metrics.json").write_text("{}")
            raise RuntimeError("crash before publishing")
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text()) == {"v": 1}
    rep.metrics["v"] = 2
    rep.write(tmp_path / "rep", force=True)
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text()) == {"v": 2}
    assert temp_folders(tmp_path / "rep") == []


def test_report_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        Report("p").write(tmp_path / "rep")
    finally:
        os.umask(old)
    assert (tmp_path / "rep").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "rep" / "report.html").stat().st_mode & 0o777 == 0o640
