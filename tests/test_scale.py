"""Dask backend: equality with the in-memory results on a real 2-process LocalCluster, NaN blocks, analyze."""

import json
import warnings

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

from linlens.errors import NonFiniteError  # noqa: E402
from linlens.jacobian import JacobianField  # noqa: E402
from linlens.koopman.dmd import HankelDMD  # noqa: E402
from linlens.scale import dask_accumulate, range_finder  # noqa: E402
from linlens.surrogate import LinearSurrogate  # noqa: E402


@pytest.fixture(scope="module")
def client():
    import logging

    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 7)) @ rng.normal(size=(7, 7))
    Y = X @ rng.normal(size=(7, 3)) + np.tanh(X[:, :3]) + 2.0
    return X, Y


@pytest.mark.parametrize("solver", ["auto", "qr", "svd"])
def test_surrogate_dask_equals_in_memory_and_lstsq(client, regression, solver):
    X, Y = regression
    Xd = da.from_array(X, chunks=(450, 7))  # 9 blocks
    Yd = da.from_array(Y, chunks=(1000, 3))  # different row chunks: rechunked to X's
    sur = LinearSurrogate(solver=solver).fit(Xd, Yd)
    ref = LinearSurrogate(solver=solver).fit(X, Y)
    assert _rel(sur.coef_, ref.coef_) < 1e-10 and _rel(sur.intercept_, ref.intercept_) < 1e-10
    # independent route: numpy lstsq with a column of ones
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    assert _rel(sur.coef_, sol[:-1].T) < 1e-10 and _rel(sur.intercept_, sol[-1]) < 1e-10
    assert sur.n_samples_seen_ == 4000


def test_surrogate_dask_ill_conditioned_switches_to_tsqr(client):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5)) * np.array([1.0, 1e-3, 1e-5, 1e-6, 1.0])
    Y = X @ rng.normal(size=(5, 2))
    sur = LinearSurrogate().fit(da.from_array(X, chunks=300), da.from_array(Y, chunks=300))
    assert sur.solver_ == "qr"
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    assert _rel(sur.coef_, sol[:-1].T) < 1e-8


def test_dask_gram_accumulator_matches_numpy(client, regression):
    X, Y = regression
    acc = dask_accumulate(da.from_array(X, chunks=400), da.from_array(Y, chunks=400), "gram")
    Z = np.hstack([X, Y])
    Zc = Z - Z.mean(0)
    np.testing.assert_allclose(acc.S, Zc.T @ Zc, rtol=1e-11, atol=1e-9)


def test_range_finder_spans_the_row_space(client):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2000, 4)) @ rng.normal(size=(4, 30))
    for M in (A, torch.as_tensor(A), da.from_array(A, chunks=250)):
        Q = range_finder(M, 4)
        assert np.linalg.norm(A - (A @ Q) @ Q.T) < 1e-9 * np.linalg.norm(A)


def test_nan_block_is_named(client, regression):
    X, Y = regression
    X = X.copy()
    X[2345, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"block 5 \(rows 2250–2699\).*first at row 2345"):
        LinearSurrogate().fit(da.from_array(X, chunks=450), da.from_array(Y, chunks=450))


def _trajectories():
    rng = np.random.default_rng(4)
    t = np.arange(80)[None, :, None]
    freqs = np.array([0.2, 0.45, 0.7])[None, None, :]
    return np.cos(freqs * t + rng.uniform(0, 6, size=(16, 1, 3))) * 0.99**t + 1e-3 * rng.normal(size=(16, 80, 3))


@pytest.mark.parametrize("exact", [False, True])
def test_hankel_dmd_dask_equals_in_memory(client, exact):
    T = _trajectories()
    Td = da.from_array(T, chunks=(2, 40, 3))  # 8 trajectory chunks (time/dim chunks are merged)
    ref = HankelDMD(delays=5, rank=6, exact=exact, backend="numpy", svd="full").fit(T)
    got = HankelDMD(delays=5, rank=6, exact=exact, backend="numpy").fit(Td)
    assert got.rank_ == 6 and got.n_columns_ == ref.n_columns_
    for name in ("eigs", "modes", "amplitudes", "operator", "basis_", "right_singular_vectors_"):
        assert _rel(getattr(got, name), getattr(ref, name)) < 1e-10, name
    assert _rel(got.singular_values_, ref.singular_values_) < 1e-10
    # independent: the eigenvalues are those of a least-squares linear map between the delay vectors
    assert np.all(np.abs(np.abs(got.eigs) - 0.99) < 5e-3)


def test_hankel_dmd_dask_nan_chunk_is_named(client):
    T = _trajectories()
    T[9, 3, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"trajectories: block 4 \(rows 8–9\)"):
        HankelDMD(delays=2, rank=4).fit(da.from_array(T, chunks=(2, 80, 3)))


def test_jacobian_field_dask_equals_in_memory(client):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    X = np.random.default_rng(5).normal(size=(300, 4))
    a = JacobianField(net).fit(X)
    b = JacobianField(net).fit(da.from_array(X, chunks=(37, 2)))  # 9 row blocks
    for name in ("mean_jacobian_", "mean_gram_", "singular_values_"):
        assert _rel(getattr(b, name), getattr(a, name)) < 1e-10, name
    # independent route: autograd Jacobian per sample
    J = torch.stack([torch.autograd.functional.jacobian(net, torch.as_tensor(x)) for x in X[:20]])
    np.testing.assert_allclose(b.singular_values_[:20], torch.linalg.svdvals(J).numpy(), rtol=1e-10)
    Xn = X.copy()
    Xn[100] = np.inf
    with pytest.raises(NonFiniteError, match=r"block 2 \(rows 74–110\)"):
        JacobianField(net).fit(da.from_array(Xn, chunks=37))


# --------------------------------------------------------------------------------------- analyze --dask
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask_analyze")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(d / "m.pt"))
    Y = np.random.default_rng(0).standard_normal((3000, 5))
    np.save(d / "y.npy", Y)
    np.save(d / "ref.npy", np.random.default_rng(1).normal(size=(3, 5)))
    import zarr

    z = zarr.create_array(str(d / "y.zarr"), shape=Y.shape, chunks=(400, 5), dtype="f8")
    z[:] = Y
    with torch.no_grad():
        F = net(torch.as_tensor(Y)).numpy()
    return d, Y, F


def _run(argv, capsys):
    from linlens.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _check_report(rep, Y, F):
    metrics = json.loads((rep / "metrics.json").read_text())
    sol = np.linalg.lstsq(np.hstack([Y, np.ones((len(Y), 1))]), F, rcond=None)[0]  # independent route
    np.testing.assert_allclose(np.array(metrics["coef"]), sol[:-1].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.array(metrics["intercept"]), sol[-1], rtol=1e-10, atol=1e-12)
    from linlens.workflows.analyze_common import holdout_mask  # the held-out split is of rows, not batches

    assert metrics["r2_split"]["kind"] == "held-out" and 0.5 < metrics["r2"] < 1
    assert metrics["r2_split"]["n_held_out"] == int(holdout_mask(0, len(Y), seed=0).sum())
    return metrics


def test_run_analyze_dask_npy_matches_in_memory(client, model_dir, tmp_path):
    from linlens.workflows.analyze import run_analyze
    from linlens.workflows.analyze_dask import run_analyze_dask

    d, Y, F = model_dir
    s_dask = run_analyze_dask(str(d / "m.pt"), d / "y.npy", d / "ref.npy", out=tmp_path / "a", batch_size=500,
                              dask=client.scheduler.address, device="cpu", trust_model=True)
    s_mem = run_analyze(str(d / "m.pt"), d / "y.npy", d / "ref.npy", out=tmp_path / "b", batch_size=500,
                        device="cpu", trust_model=True)
    m_dask = _check_report(tmp_path / "a", Y, F)
    m_mem = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert set(s_dask) == set(s_mem)
    np.testing.assert_allclose(m_dask["coef"], m_mem["coef"], rtol=1e-10)
    assert m_dask["r2"] == pytest.approx(m_mem["r2"], rel=1e-10)  # same held-out blocks
    # the error against R with its interval: the same grouped sums, merged in a tree on the workers
    e_dask, e_mem = m_dask["data_weighted_error_corrected"], m_mem["data_weighted_error_corrected"]
    for k in ("plug_in", "estimate", "low", "high", "bias"):
        assert e_dask[k] == pytest.approx(e_mem[k], rel=1e-8), k
    assert m_dask["verdict"]["verdict"] == m_mem["verdict"]["verdict"]


def test_analyze_cli_dask_local_zarr(model_dir, tmp_path, capsys):
    d, Y, F = model_dir
    code, out, err = _run(["analyze", "-m", str(d / "m.pt"), "-i", str(d / "y.zarr"), "-o", str(tmp_path / "r"),
                           "--batch-size", "500", "--dask", "local", "--device", "cpu", "--trust-model"], capsys)
    assert code in (0, None), err
    _check_report(tmp_path / "r", Y, F)


def test_analyze_dask_nan_block_leaves_no_report(client, model_dir, tmp_path):
    from linlens.workflows.analyze_dask import run_analyze_dask

    d, Y, _ = model_dir
    bad = Y.copy()
    bad[1700, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(NonFiniteError, match=r"inputs: block 3 \(rows 1500–1999\)"):
        run_analyze_dask(str(d / "m.pt"), tmp_path / "bad.npy", out=tmp_path / "rep", batch_size=500,
                         dask=client.scheduler.address, device="cpu", trust_model=True)
    assert not (tmp_path / "rep").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.npy"]


def test_from_npy_reads_blocks_on_workers(client, regression, tmp_path):
    from linlens.scale import from_npy

    X, Y = regression
    np.save(tmp_path / "X.npy", X)
    Xd = from_npy(tmp_path / "X.npy", chunk_rows=500)
    assert Xd.numblocks[0] == 8
    # the graph holds the path, not the data
    import pickle

    assert len(pickle.dumps(dict(Xd.__dask_graph__()))) < X.nbytes / 10
    sur = LinearSurrogate().fit(Xd, da.from_array(Y, chunks=700))
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    assert _rel(sur.coef_, sol[:-1].T) < 1e-10


def test_device_auto_resolves_and_results_are_float64_on_cpu():
    T = _trajectories()[:2]
    dmd = HankelDMD(delays=2, rank=4, device="auto").fit(T)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert dmd.eigs.device.type == expected
    f = JacobianField(lambda x: torch.sin(x), device="auto").fit(np.random.default_rng(0).normal(size=(10, 3)))
    assert f.mean_jacobian_.dtype == np.float64 and isinstance(f.mean_jacobian_, np.ndarray)


def test_run_analyze_dask_module_attr_model_is_imported_on_workers(client, model_dir, tmp_path):
    from linlens.workflows.analyze_dask import run_analyze_dask

    d, Y, _ = model_dir
    s = run_analyze_dask("torch.nn:Tanh", d / "y.npy", out=tmp_path / "t", batch_size=1000,
                         dask=client.scheduler.address, device="cpu", trust_model=True)
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())
    Yc = Y.astype(np.float32).astype(np.float64)  # parameter-free: the model receives float32 inputs,
    F = torch.tanh(torch.from_numpy(Yc).float()).double().numpy()  # and the surrogate is fitted on exactly those
    sol = np.linalg.lstsq(np.hstack([Yc, np.ones((len(Y), 1))]), F, rcond=None)[0]
    np.testing.assert_allclose(np.array(m["coef"]), sol[:-1].T, rtol=1e-9, atol=1e-12)
    from linlens.workflows.analyze_common import holdout_mask  # one R² (issue 10 item 6): held-out rows, pooled

    held = holdout_mask(0, len(Y), seed=0)
    assert s["d_out"] == 5 and m["r2_split"]["kind"] == "held-out"  # rows, whatever the number of blocks
    A = np.hstack([Yc, np.ones((len(Y), 1))])
    sol_train = np.linalg.lstsq(A[~held], F[~held], rcond=None)[0]
    sse = ((F[held] - A[held] @ sol_train) ** 2).sum(0)
    sst = ((F[held] - F[held].mean(0)) ** 2).sum(0)
    assert m["r2"] == pytest.approx(1 - sse.sum() / sst.sum(), rel=1e-9)
    np.testing.assert_allclose(m["r2_per_output"], 1 - sse / sst, rtol=1e-9)


@pytest.mark.parametrize("solver", ["auto", "gram"])
def test_surrogate_torch_gram_on_device_equals_numpy(regression, solver):
    X, Y = regression
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    Xt, Yt = torch.as_tensor(X, device=dev), torch.as_tensor(Y, device=dev, dtype=torch.float32)
    a = LinearSurrogate(solver=solver).fit(Xt, Yt)
    b = LinearSurrogate(solver=solver).fit(X, Yt.cpu().double().numpy())
    assert _rel(a.coef_, b.coef_) < 1e-10 and isinstance(a.coef_, np.ndarray) and a.coef_.dtype == np.float64
    p = LinearSurrogate(solver=solver)
    for s in range(0, len(X), 1000):
        p.partial_fit(Xt[s : s + 1000], Yt[s : s + 1000, 0])
    c = LinearSurrogate(solver=solver).fit(X, Yt[:, 0].cpu().double().numpy())
    assert _rel(p.coef_, c.coef_) < 1e-10 and p.predict(X[:3]).shape == (3,)
    Xn = Xt.clone()
    Xn[1500, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="first at row 1500"):
        LinearSurrogate(solver=solver).fit(Xn, Yt)


def test_surrogate_torch_ill_conditioned_falls_back_to_refinement_or_qr():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5)) * np.array([1.0, 1e-3, 1e-5, 1e-6, 1.0])
    Y = X @ rng.normal(size=(5, 2))
    sur = LinearSurrogate().fit(torch.as_tensor(X), torch.as_tensor(Y))
    assert sur.solver_ in ("gram+refine", "qr")
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    assert _rel(sur.coef_, sol[:-1].T) < 1e-8


def test_dask_reference_follows_the_size_rule_and_full_spectrum(client, tmp_path, monkeypatch):
    """The Dask route reports R as the dense route does: above the study's size rule (lowered to 100 here; d = 200)
    its leading 129 values, labelled, and the filter factors on its leading pairs equal to numpy's full SVD;
    --full-spectrum gives every value."""
    from linlens.workflows import study
    from linlens.workflows.analyze import AnalyzeOptions, run

    monkeypatch.setattr(study, "REFERENCE_SPECTRUM_MAX_D", 100)  # read in this (client) process, which reports
    rng = np.random.default_rng(2)
    d = 200
    W = rng.normal(size=(d, d)) / np.sqrt(d)
    lin = torch.nn.Linear(d, d, bias=False).double()
    lin.weight.data = torch.as_tensor(W)
    torch.jit.script(lin).save(str(tmp_path / "m.pt"))
    R = W + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d)
    np.save(tmp_path / "R.npy", R)
    np.save(tmp_path / "y.npy", rng.normal(size=(800, d)))
    U, s, Vt = np.linalg.svd(R)
    phi = np.einsum("ij,ik,kj->j", U, W, Vt.T) / s  # C = W exactly: φⱼ = uⱼᵀ W vⱼ / σⱼ
    for full, out in ((False, "a"), (True, "b")):
        o = AnalyzeOptions(model=str(tmp_path / "m.pt"), inputs=tmp_path / "y.npy", reference=str(tmp_path / "R.npy"),
                           out=tmp_path / out, dask=client.scheduler.address, device="cpu", trust_model=True,
                           batch_size=400, n_boot=10, full_spectrum=full)
        run(o)
        m = json.loads((tmp_path / out / "metrics.json").read_text())
        assert m["comparison"]["spectra"]["R"] == ("all 200" if full else "leading 129 of 200")
        k = len(m["filter_factors"]["factors"])
        assert k == (d if full else 128)
        np.testing.assert_allclose(m["filter_factors"]["factors"][::-1], phi[:k], rtol=0, atol=1e-9)
        assert (m["filter_factors"]["leakage"] is None) != full
