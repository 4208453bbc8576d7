"""The subspace route on Dask (inputs as a Zarr folder of images, read block by block on a 2-worker LocalCluster)
gives the in-memory subspace route's numbers: the independent route is the in-memory one, which streams the same
file in one process. Held-out rows and row groups are hashes of the row index, so the bias-corrected error, its
row-group bootstrap interval and the verdict agree too, for a batch size unlike the in-memory one."""

import json
import warnings

import numpy as np
import pytest
import torch

from linlens.workflows.analyze import AnalyzeOptions, plan, run

distributed = pytest.importorskip("dask.distributed")
zarr = pytest.importorskip("zarr")

SIDE = 6


class _Net(torch.nn.Module):
    """A small nonlinear CNN on (b, 1, 6, 6) images (zero padding: not shift-invariant)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Conv2d(1, 4, 3, padding=1).double()
        self.b = torch.nn.Conv2d(4, 1, 3, padding=1).double()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(y)))


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    d = tmp_path_factory.mktemp("sdask")
    rng = np.random.default_rng(0)
    n, dim = 600, SIDE * SIDE
    # images with a decaying spectrum (a clear gap after a few components) plus a little white noise
    Y = (rng.normal(size=(n, 8)) * [4, 3, 2.5, 2, 0.3, 0.2, 0.1, 0.05]) @ rng.normal(size=(8, dim))
    Y = (Y + 0.05 * rng.normal(size=(n, dim)) + 1.0).reshape(n, 1, SIDE, SIDE)
    np.save(d / "y.npy", Y)
    z = zarr.open_array(str(d / "y.zarr"), mode="w", shape=Y.shape, chunks=(70, 1, SIDE, SIDE), dtype=Y.dtype)
    z[:] = Y
    np.save(d / "R.npy", np.eye(dim) + 0.1 * rng.normal(size=(dim, dim)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_Net()).save(str(d / "net.pt"))
    return d


def test_subspace_dask_equals_in_memory(problem, dask_address):
    d = problem
    common = dict(model=str(d / "net.pt"), trust_model=True, components=4, reference=str(d / "R.npy"), n_boot=50,
                  seed=1)
    mem = AnalyzeOptions(inputs=d / "y.npy", out=d / "mem", batch_size=128, **common)
    dsk = AnalyzeOptions(inputs=d / "y.zarr", out=d / "dsk", dask=dask_address, batch_size=53, **common)
    assert plan(mem).name == "subspace"
    route = plan(dsk)
    assert route.name == "subspace_dask" and route.line.startswith("route: subspace (Dask) — --dask ")
    run(mem)
    run(dsk)
    a = json.loads((d / "mem" / "metrics.json").read_text())
    b = json.loads((d / "dsk" / "metrics.json").read_text())
    assert b["route"] == "subspace_dask" and b["dask"]["workers"] == 2 and b["dask"]["blocks"] == 12
    assert (a["n_train"], a["n_held_out"]) == (b["n_train"], b["n_held_out"])
    # in memory the exact subspace (Gram route, this size); on Dask the randomized iteration over the blocks, which
    # converges on this clear gap: the same V_m to the tolerance below
    assert (a["subspace_method"], b["subspace_method"]) == ("gram", "randomized") and b["subspace_converged"]
    assert a["subspace_max_residual"] < 1e-12 and b["subspace_max_residual"] < 1e-6
    for k in ("r2", "outside_variance_fraction", "total_variance", "data_weighted_error"):
        assert b[k] == pytest.approx(a[k], rel=1e-8), k
    assert 0.3 < a["r2"] < 0.999  # a nonlinear model on a subspace: R² is informative
    assert np.allclose(b["explained_variance"], a["explained_variance"], rtol=1e-8)
    ea, eb = a["data_weighted_error_corrected"], b["data_weighted_error_corrected"]
    for k in ("plug_in", "estimate", "bias", "low", "high", "std"):
        assert eb[k] == pytest.approx(ea[k], rel=1e-7), k
    assert b["verdict"] == a["verdict"]
    Va, Vb = np.load(d / "mem" / "components.npy"), np.load(d / "dsk" / "components.npy")
    assert np.allclose(Va, Vb, atol=1e-8)  # the same V_m, signs included (one sign rule)
