"""The matrix-free route on Dask (inputs and targets as Zarr folders, read block by block on a 2-worker LocalCluster)
gives the in-memory matrix-free route's numbers on the same problem. The independent route is the in-memory one,
which holds every image at once: one randomized SVD of each array, one CG over all held-out rows, one set of sums.
The Dask route gets Σₓ, C_data's and the surrogate's subspaces from products that are passes over blocks, the
held-out statistics block by block merged in a tree; the group-bootstrap replicates use the same row groups (file
row index mod 32), so intervals, paired tests and verdicts agree too, for a batch size that cuts every set of rows
at other places than the in-memory batches."""

import json
import warnings

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.workflows.analyze import AnalyzeOptions, plan, run

distributed = pytest.importorskip("dask.distributed")
zarr = pytest.importorskip("zarr")

S = 6  # 6 × 6 images


class _Net(torch.nn.Module):
    """A 3 × 3 convolution (zero padding) plus 0.3 relu: not linear, not shift-invariant at the border."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return 1.5 * y + self.c(y) + 0.3 * torch.relu(y)


def _reflect_blur(s: int) -> np.ndarray:
    """A (s², s²) 3-tap blur per axis with reflecting boundaries (not circular: the matrix-free route)."""
    B = np.zeros((s, s))
    for i in range(s):
        for j, w in ((i - 1, 0.25), (i, 0.5), (i + 1, 0.25)):
            B[i, min(max(j, 0), s - 1)] += w
    return np.kron(B, B)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    d = tmp_path_factory.mktemp("mfdask")
    rng = np.random.default_rng(0)
    n = 500
    # images near an 8-dimensional subspace (a spectral gap at m = 8: subspaces that rounding cannot turn)
    X = (rng.normal(size=(n, 8)) @ rng.normal(size=(8, S * S)) + 0.3 * rng.normal(size=(n, S * S))).reshape(
        n, 1, S, S)
    A = _reflect_blur(S)
    Y = (X.reshape(n, -1) @ A.T).reshape(X.shape) + 0.1 * rng.normal(size=X.shape)
    np.save(d / "A.npy", A)
    for name, a in (("y", Y), ("x", X)):
        np.save(d / f"{name}.npy", a)
        z = zarr.open_array(str(d / f"{name}.zarr"), mode="w", shape=a.shape, chunks=(50, 1, S, S), dtype=a.dtype)
        z[:] = a
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Net()).save(str(d / "net.pt"))
    return d


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


#: relative agreement: 1e-9 where the numbers are sums and small dense algebra (the surrogate, C_data, σ, R²); the
#: Wiener estimator (CG, stop at 1e-6 relative residual) and A⁺ (LSQR, atol = btol = 1e-8) are defined only to their
#: solvers' tolerance, and rounding-level differences in their right-hand sides may move the stopping iteration
REL = {"C_data": 1e-9, "surrogate C": 1e-9, "Wiener": 1e-6, "A⁺": 1e-6}


@pytest.mark.parametrize("noise_std", [None, pytest.param(0.1, marks=pytest.mark.slow)])
def test_matrix_free_dask_equals_in_memory(problem, dask_address, noise_std):
    d = problem
    common = dict(model=str(d / "net.pt"), trust_model=True, operator=str(d / "A.npy"), n_boot=20, seed=3,
                  assume="matrix-free", components=8, noise_std=noise_std)
    tag = "given" if noise_std else "est"
    mem = AnalyzeOptions(inputs=d / "y.npy", targets=d / "x.npy", out=d / f"mem{tag}", **common)
    dsk = AnalyzeOptions(inputs=d / "y.zarr", targets=d / "x.zarr", out=d / f"dsk{tag}", dask=dask_address,
                         batch_size=45, **common)
    assert plan(mem).name == "matrix_free"
    route = plan(dsk)
    assert route.name == "matrix_free_dask" and route.line.startswith("route: matrix-free (Dask) — --dask ")
    run(mem)
    run(dsk)
    a, b = _metrics(d / f"mem{tag}"), _metrics(d / f"dsk{tag}")
    assert b["route"] == "matrix_free_dask" and b["dask"]["blocks"] == 12 and b["dask"]["workers"] == 2
    for k in ("n_rows", "n_train", "n_fit", "n_test", "n_components", "references", "reference_noise"):
        assert b[k] == a[k], k
    assert "A⁺" in a["errors"] and "Wiener" in a["errors"]  # every reference took part
    assert b["noise_std"] == pytest.approx(a["noise_std"], rel=1e-10)
    assert b["r2"] == pytest.approx(a["r2"], rel=1e-10)
    assert b["outside_variance_fraction"] == pytest.approx(a["outside_variance_fraction"], rel=1e-9, abs=1e-12)
    for k, e in a["errors"].items():  # the same replicates: the same intervals
        for f in ("plug_in", "estimate", "bias", "low", "high", "std"):
            assert b["errors"][k][f] == pytest.approx(e[f], rel=REL[k], abs=1e-12), (k, f)
    va, vb = a["verdict"], b["verdict"]
    assert (vb["closest"], vb["ranking"], vb["none_method"]) == (va["closest"], va["ranking"], va["none_method"])
    for k, t in va["differences"].items():
        for f in ("estimate", "low", "high", "standard_error"):
            assert vb["differences"][k][f] == pytest.approx(t[f], rel=1e-6, abs=1e-12), (k, f)
        assert vb["differences"][k]["p_value"] == pytest.approx(t["p_value"], rel=1e-4, abs=1e-12), k  # a tail
    assert b["verdict_text"] == a["verdict_text"]
    for k, t in a["signal_noise"].items():
        for part, v in t.items():
            assert b["signal_noise"][k][part] == pytest.approx(v, rel=REL[k], abs=1e-12), (k, part)
    for k in ("mse", "psnr"):
        for name, v in a["test_errors"][k].items():
            assert b["test_errors"][k][name] == pytest.approx(v, rel=REL.get(name, 1e-10)), (k, name)
    for k, rel in (("paired", 1e-9), ("paired_wiener", 1e-6)):
        ta, tb = a["test_errors"][k], b["test_errors"][k]
        words = [f for f, v in ta.items() if isinstance(v, str)]
        assert [tb[f] for f in words] == [ta[f] for f in words]
        for f, v in ta.items():
            if not isinstance(v, str):
                assert tb[f] == pytest.approx(v, rel=rel if f != "p_value" else 1e-4, abs=1e-12), (k, f)
    ga, gb = a["test_errors"]["gain"], b["test_errors"]["gain"]  # the nonlinear-gain split (stats.gain_split)
    assert (gb["verdict"], gb["linear_verdict"], gb["n"]) == (ga["verdict"], ga["linear_verdict"], ga["n"])
    for part in ("total", "nonlinear", "linear"):
        for f in ("estimate", "low", "high", "standard_error"):
            assert gb[part][f] == pytest.approx(ga[part][f], rel=1e-6, abs=1e-12), (part, f)
    pa, pb = a["prior_covariance"], b["prior_covariance"]
    assert (pb["model"], pb["rank"], pb["n_samples"]) == (pa["model"], pa["rank"], pa["n_samples"])
    assert (pb["trace"], pb["low_rank_fraction"]) == pytest.approx((pa["trace"], pa["low_rank_fraction"]), rel=1e-9)
    assert b["wiener_solve"]["n_systems"] == a["wiener_solve"]["n_systems"]
    assert np.allclose(np.load(d / f"dsk{tag}" / "components.npy"), np.load(d / f"mem{tag}" / "components.npy"),
                       atol=1e-10)
    assert 0.0 < a["r2"] < 0.9999  # a nonlinear network: the numbers depend on which rows each block holds


def test_matrix_free_dask_refuses_unused_options(problem, capsys):
    d = problem
    args = ["analyze", "--model", str(d / "net.pt"), "--inputs", str(d / "y.zarr"), "--targets", str(d / "x.zarr"),
            "--operator", str(d / "A.npy"), "--assume", "matrix-free", "--dask", "local", "--trust-model",
            "--out", str(d / "refused")]
    for extra, flag in ((["--max-memory", "1000000000"], "--max-memory"), (["--no-intercept"], "--no-intercept")):
        with pytest.raises(SystemExit) as exc:
            main([*args, *extra])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"{flag} is not used by the matrix-free (Dask) route" in err or (
            f"{flag} is not used by the inverse study route" in err), err
        assert "Traceback" not in err
    assert not (d / "refused").exists()


def test_matrix_free_dask_bad_block_is_one_line(problem, dask_address, capsys):
    """NaN in one block of the targets: one line naming the targets and the block's rows, exit 2, no report."""
    d = problem
    x = np.load(d / "x.npy")
    x[130, 0, 2, 3] = np.nan
    z = zarr.open_array(str(d / "x_nan.zarr"), mode="w", shape=x.shape, chunks=(50, 1, S, S), dtype=x.dtype)
    z[:] = x
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--model", str(d / "net.pt"), "--trust-model", "--inputs", str(d / "y.zarr"), "--targets",
              str(d / "x_nan.zarr"), "--operator", str(d / "A.npy"), "--assume", "matrix-free", "--components", "8",
              "--dask", dask_address, "--batch-size", "45", "--out", str(d / "nan")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "targets" in err and "NaN" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and not (d / "nan").exists()
