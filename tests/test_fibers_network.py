"""LinearNetwork: input checks, rank list with gaps (vs numpy SVD), warnings for ranks in tiny gaps."""

import json
import warnings

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, NumericalWarning, ShapeError
from linlens.fibers import LinearNetwork


def test_widths_product_and_torch_input():
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    net = LinearNetwork([torch.tensor(w[0], dtype=torch.float32), w[1]])
    assert net.widths == (4, 3, 2) and net.L == 2 and net.weight_dim == 18
    assert np.allclose(net.product(), w[1] @ w[0].astype(np.float32).astype(np.float64), atol=1e-6)
    theta = net.flat()
    assert np.array_equal(LinearNetwork.from_flat(theta, net.widths).flat(), theta)


def test_rank_list_gaps_match_numpy_svd():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 2)) @ rng.standard_normal((2, 6))  # rank 2
    B = rng.standard_normal((4, 5))
    net = LinearNetwork([A, B])
    rl = net.rank_list()
    s = np.linalg.svd(A, compute_uv=False)
    e = rl.entries[(1, 0)]
    assert e.rank == 2 and np.isclose(e.sigma_above, s[1]) and np.isclose(e.sigma_below, s[2])
    assert e.gap > 1e10
    assert rl.ranks == {(1, 0): 2, (2, 1): 4, (2, 0): 2}
    assert net.barcode() == {(0, 0): 4, (0, 2): 2, (1, 1): 1, (1, 2): 2}


def test_tiny_gap_warns_and_is_reported():
    W1 = np.diag([1.0, 1.1e-3, 0.9e-3])
    net = LinearNetwork([W1, np.eye(3)])
    with pytest.warns(NumericalWarning, match="tiny singular-value gap"):
        rl = net.rank_list(tol=1e-3)
    assert (1, 0) in rl.fragile and rl.entries[(1, 0)].gap == pytest.approx(1.1 / 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearNetwork([np.eye(3), np.eye(3)]).rank_list()


def test_bad_input():
    with pytest.raises(ShapeError, match="W2 must have 3 columns"):
        LinearNetwork([np.ones((3, 2)), np.ones((2, 2))])
    with pytest.raises(EmptyInputError):
        LinearNetwork([])
    with pytest.raises(ShapeError, match="W1"):
        LinearNetwork([np.ones(3)])
    with pytest.raises(ShapeError, match="list"):
        LinearNetwork(np.ones((2, 2)))
    with pytest.raises(NonFiniteError, match="W1"):
        LinearNetwork([np.array([[np.nan]])])
    with pytest.raises(ConfigError, match="tol"):
        LinearNetwork([np.eye(2)]).rank_list(tol=2.0)
    with pytest.raises(ConfigError, match="subproduct"):
        LinearNetwork([np.eye(2)]).subproduct(0, 1)


def test_rank_entry_to_dict_is_every_field_json_safe():
    # RankEntry takes the one to_dict (linlens._results.ResultMixin): every field, inf → None
    W1 = np.diag([1.0, 1.0, 0.0])
    rl = LinearNetwork([W1, np.eye(3)]).rank_list(warn=False)
    e = rl.entries[(1, 0)]
    d = e.to_dict()
    assert set(d) == {"j", "i", "rank", "sigma_above", "sigma_below", "gap", "threshold"}
    assert (d["j"], d["i"], d["rank"]) == (1, 0, 2)  # rank of W1 = diag(1, 1, 0), closed form
    assert d["sigma_above"] == pytest.approx(1.0) and d["sigma_below"] == pytest.approx(0.0, abs=1e-300)
    assert d["gap"] is None  # σ_3 = 0: the gap is inf, and JSON has no inf
    assert json.loads(json.dumps(rl.to_dict()))["ranks"]["r_1_0"] == d
