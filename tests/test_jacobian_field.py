"""linlens.jacobian.field: JacobianField's streamed statistics against explicit means, slogdet and scipy's
principal angles, and LocalVsGlobal's distances against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from _jacobian_cases import loop_jacobians, mlp
from torch import nn

from linlens.errors import ShapeError
from linlens.jacobian import JacobianField, LocalVsGlobal, jacobians

torch.set_num_threads(1)


def test_field_means_equal_explicit_means_and_stream_over_batches():
    net = mlp(5, 3, seed=5)
    X = torch.randn(40, 5, dtype=torch.float64)
    J = loop_jacobians(net, X).numpy()
    field = JacobianField(net, chunk_size=7, k=2).fit(X)
    assert field.n_samples_seen_ == 40
    np.testing.assert_allclose(field.mean_jacobian_, J.mean(0), atol=1e-13)
    np.testing.assert_allclose(field.mean_gram_, np.einsum("boi,boj->ij", J, J) / 40, atol=1e-13)
    sv = np.stack([np.linalg.svd(j, compute_uv=False)[:2] for j in J])
    np.testing.assert_allclose(field.singular_values_, sv, atol=1e-12)
    assert field.logabsdet_ is None
    # same result from an iterable of (x, y) batches
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, X[:, :1]), batch_size=16)
    f2 = JacobianField(net).fit(loader)
    np.testing.assert_allclose(f2.mean_jacobian_, field.mean_jacobian_, atol=1e-13)
    np.testing.assert_allclose(f2.mean_gram_, field.mean_gram_, atol=1e-13)


def test_field_logabsdet_matches_slogdet_and_singular_is_minus_inf():
    net = mlp(4, 4, seed=6)
    X = np.random.default_rng(6).normal(size=(12, 4))
    field = JacobianField(net).fit(X)
    J = loop_jacobians(net, torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(field.logabsdet_, np.linalg.slogdet(J)[1], atol=1e-10)
    # a singular (rank-1) linear map: -inf, no error
    P = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    f_sing = JacobianField(lambda v: v @ P.T).fit(np.ones((3, 2)))
    assert np.all(np.isneginf(f_sing.logabsdet_))


def test_local_vs_global_is_zero_for_linear_model_and_angles_match_scipy():
    torch.manual_seed(7)
    lin = nn.Linear(6, 3).double()
    C = lin.weight.detach().numpy()
    X = np.random.default_rng(7).normal(size=(10, 6))
    res = JacobianField(lin).local_vs_global(C, X)
    assert isinstance(res, LocalVsGlobal) and res.k == 3
    assert res.relative_distance.max() < 1e-14 and res.max_angle.max() < 1e-7
    # a nonlinear net against a random C: distances and angles vs an explicit route with scipy
    net = mlp(6, 3, seed=8)
    C2 = np.random.default_rng(8).normal(size=(3, 6))
    res2 = JacobianField(net, chunk_size=4).local_vs_global(C2, X)
    J = loop_jacobians(net, torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(
        res2.relative_distance, np.linalg.norm(J - C2, axis=(1, 2)) / np.linalg.norm(C2), rtol=1e-12
    )
    ref = [scipy.linalg.subspace_angles(j.T, C2.T).max() for j in J]  # row spaces, rank 3 = k
    np.testing.assert_allclose(res2.max_angle, ref, atol=1e-10)
    d = res2.to_dict()
    assert d["n_samples"] == 10 and math.isclose(d["relative_distance_median"], np.median(res2.relative_distance))
    assert math.isclose(d["max_angle_deg_q90"], math.degrees(np.quantile(res2.max_angle, 0.9)))
    with pytest.raises(ShapeError, match="C must have shape"):
        JacobianField(net).local_vs_global(C2.T, X)


def test_weighted_local_distance_ignores_directions_the_data_does_not_visit():
    """J = C + E with E acting only on an input direction of zero variance: unweighted distance large,
    Σ-weighted distance 0; and on a random weighting it equals the closed form ‖(J−C)Σ^½‖/‖CΣ^½‖."""
    rng = np.random.default_rng(0)
    C = rng.normal(size=(3, 4))
    E = np.zeros((3, 4))
    E[:, 3] = 5.0
    lin = torch.nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(C + E))
    Sigma = np.diag([1.0, 2.0, 0.5, 0.0])
    r = JacobianField(lin).local_vs_global(C, torch.randn(5, 4, dtype=torch.float64), covariance=Sigma)
    assert r.relative_distance.min() > 1.0
    np.testing.assert_allclose(r.weighted_distance, 0.0, atol=1e-12)
    L = rng.normal(size=(4, 4))
    S2 = L @ L.T
    w, V = np.linalg.eigh(S2)
    half = (V * np.sqrt(w)) @ V.T
    expected = np.linalg.norm(E @ half) / np.linalg.norm(C @ half)
    r2 = JacobianField(lin).local_vs_global(C, torch.randn(3, 4, dtype=torch.float64), covariance=S2)
    np.testing.assert_allclose(r2.weighted_distance, expected, rtol=1e-10)
    assert "weighted_distance_median" in r2.to_dict()


def test_meta_tensors_are_refused_in_one_line():
    from linlens.errors import ShapeError

    with pytest.raises(ShapeError, match="meta"):
        jacobians(torch.nn.Linear(3, 2), torch.ones((4, 3), device="meta"))
    with pytest.raises(ShapeError, match="meta"):
        JacobianField(torch.nn.Linear(3, 2)).fit(torch.ones((4, 3), device="meta"))


def test_local_angles_at_the_full_input_dimension_are_not_reported():
    """k = d_in: the top-k right subspaces of J and C are both all of R^d_in, so the 'angle' is 0 whatever J is;
    it is left out (NaN), not reported as agreement."""
    net = mlp(4, 4, seed=3)
    X = np.random.default_rng(3).normal(size=(5, 4))
    C = np.random.default_rng(4).normal(size=(4, 4))  # unrelated to the net, full rank: k = 4 = d_in
    res = JacobianField(net).local_vs_global(C, X)
    assert res.k == 4 and np.isnan(res.max_angle).all()
    assert res.to_dict()["max_angle_median"] is None or math.isnan(res.to_dict()["max_angle_median"])
    assert res.relative_distance.min() > 0.1


def test_auto_device_runs_a_parameterless_callable_on_the_cpu(monkeypatch):
    # one meaning of "auto" with linlens.probing (linlens.nn.model_device): a user's callable is not moved, and
    # numpy inputs of a callable without parameters stay on the CPU even where CUDA is available (simulated: were
    # they sent to CUDA, .to("cuda") would fail on this CPU-only build)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    X = np.random.default_rng(0).normal(size=(6, 3))
    field = JacobianField(lambda x: 2.0 * x).fit(X)
    np.testing.assert_allclose(field.mean_jacobian_, 2.0 * np.eye(3), atol=1e-12)
