"""`linlens analyze --dask` with hostile input: a failing model gives one line and exit 2 (no worker logs), and
the numbers (R², surrogate) equal the in-memory route's for any batch size. The cluster runs in this process
(threads), so the test takes seconds; `--dask local` starts worker processes the same code talks to."""

import json
import logging
import textwrap
import uuid
import warnings

import numpy as np
import pytest
import torch

from linlens.cli import main

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def address():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                                       silence_logs=logging.CRITICAL)
    yield cluster.scheduler_address
    cluster.close()


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _module(tmp_path, monkeypatch, body):
    name = f"hostile_dask_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_failing_model_on_workers_is_one_line(tmp_path, capsys, monkeypatch, address, caplog):
    mod = _module(tmp_path, monkeypatch, """
        def model(x):
            if x.shape[0] and float(x[0, 0]) > -10:
                raise RuntimeError("boom in the model")
            return x
    """)
    np.save(tmp_path / "y.npy", np.random.default_rng(0).standard_normal((300, 2)))
    with caplog.at_level(logging.WARNING):
        code, out, err = _run(["analyze", "-m", f"{mod}:model", "-i", tmp_path / "y.npy", "-o", tmp_path / "rep",
                               "--dask", address, "--batch-size", "50"], capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "boom in the model" in err, err
    assert "Traceback" not in err and not [r for r in caplog.records if "Compute Failed" in r.getMessage()]
    assert not (tmp_path / "rep").exists()


def test_dask_equals_in_memory_for_any_batch_size(tmp_path, capsys, monkeypatch, address):
    mod = _module(tmp_path, monkeypatch, """
        import torch
        def model(x):
            return torch.stack([100.0 * x[:, 0], torch.sin(3.0 * x[:, 1])], 1)
    """)
    np.save(tmp_path / "y.npy", np.random.default_rng(0).uniform(-1, 1, size=(1000, 2)))
    res = {}
    for key, extra in {"mem": ["--batch-size", "250"], "dask200": ["--dask", address, "--batch-size", "200"],
                       "dask130": ["--dask", address, "--batch-size", "130"]}.items():
        code, _, err = _run(["analyze", "-m", f"{mod}:model", "-i", tmp_path / "y.npy", "-o", tmp_path / key,
                             *extra], capsys)
        assert code in (0, None), err
        res[key] = json.loads((tmp_path / key / "metrics.json").read_text())
    for key in ("dask200", "dask130"):
        assert res[key]["r2"] == pytest.approx(res["mem"]["r2"], abs=1e-12)
        np.testing.assert_allclose(res[key]["r2_per_output"], res["mem"]["r2_per_output"], atol=1e-12)
        np.testing.assert_allclose(res[key]["coef"], res["mem"]["coef"], rtol=1e-10, atol=1e-12)
        assert res[key]["r2_split"]["n_held_out"] == res["mem"]["r2_split"]["n_held_out"]
        # a plain callable gets float32 probes on both routes, and both say so (issue 21)
        assert "float32" in res[key]["input_cast"] and res[key]["input_cast"] == res["mem"]["input_cast"]


def test_in_place_model_on_dask(tmp_path, capsys, address):
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 2)).double()

    class InPlace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            x.mul_(-1.0)
            return self.body(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(InPlace()).save(str(tmp_path / "m.pt"))
    Y = np.random.default_rng(2).standard_normal((400, 3))
    np.save(tmp_path / "y.npy", Y)
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "-o",
                         tmp_path / "rep",
                         "--dask", address, "--batch-size", "100"], capsys)
    assert code in (0, None), err
    met = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    with torch.no_grad():
        F = body(-torch.tensor(Y)).numpy()
    from sklearn.linear_model import LinearRegression

    np.testing.assert_allclose(met["coef"], LinearRegression().fit(Y, F).coef_, atol=1e-9)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), Y)


@pytest.mark.slow
def test_dask_local_failing_model_prints_one_line(tmp_path):
    """The issue's case end to end: `--dask local` (worker processes) with a failing model; everything the
    process and its workers print on stderr is one line (was ~45 lines of worker logs)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "failmod.py").write_text("def model(x):\n    raise RuntimeError('boom in the model')\n")
    np.save(tmp_path / "y.npy", np.random.default_rng(0).standard_normal((300, 2)))
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(tmp_path)]), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "linlens.cli", "analyze", "-m", "failmod:model", "-i",
                        str(tmp_path / "y.npy"), "-o", str(tmp_path / "rep"), "--dask", "local", "--batch-size", "100"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "boom" in p.stderr, p.stderr


def test_ill_conditioned_inputs_on_dask_use_tsqr(tmp_path, capsys, address, ill_conditioned_linear):
    """κ ≈ 2e7: the Gram-only Dask route reported ‖C−R‖/‖R‖ = 0.026 in the issue; the TSQR pass gets ~1e-10."""
    Y, M, lin = ill_conditioned_linear
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(lin).save(str(tmp_path / "m.pt"))
    np.save(tmp_path / "y.npy", Y)
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "-o",
                         tmp_path / "rep",
                         "--dask", address, "--batch-size", "256"], capsys)
    assert code in (0, None), err
    met = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert met["solver"] in ("qr", "svd") and met["model_passes"] == 2
    assert met["condition_number_inputs"] == pytest.approx(np.linalg.cond(Y - Y.mean(0)), rel=1e-3)
    assert np.linalg.norm(np.array(met["coef"]) - M) / np.linalg.norm(M) < 1e-7
    assert met["input_cast"] is None  # a float64 model: nothing cast


def test_images_in_their_native_shape_on_dask(tmp_path, capsys, address):
    """(n, 1, H, W) inputs: the workers call the model on images, as the in-memory route does (same numbers)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(2 * 36, 5)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(tmp_path / "m.pt"))
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(400, 1, 6, 6)))
    res = {}
    for key, extra in {"mem": [], "dask": ["--dask", address, "--batch-size", "90"]}.items():
        code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "-o",
                             tmp_path / key,
                             *extra], capsys)
        assert code in (0, None), err
        res[key] = json.loads((tmp_path / key / "metrics.json").read_text())
    assert res["dask"]["input_shape"] == res["mem"]["input_shape"] == [1, 6, 6]
    assert res["dask"]["r2"] == pytest.approx(res["mem"]["r2"], abs=1e-12)
    np.testing.assert_allclose(res["dask"]["coef"], res["mem"]["coef"], rtol=1e-10, atol=1e-12)
    assert np.asarray(res["mem"]["coef"]).shape == (5, 36)
