"""Tests for linlens.jacobian against closed forms, torch.autograd.functional, scipy and statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import linlens.jacobian as jac
import linlens.jacobian.dense as jac_dense
from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.jacobian import (
    JacobianField,
    LocalVsGlobal,
    estimate_chunk_size,
    jacobian_frobenius_sq,
    jacobians,
)

torch.set_num_threads(1)


def _mlp(d_in: int, d_out: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(d_in, 16), nn.Tanh(), nn.Linear(16, 12), nn.Softplus(), nn.Linear(12, d_out))
    return net.to(dtype).eval()


def _loop_jacobians(f, x: torch.Tensor) -> torch.Tensor:
    """Independent route: torch.autograd.functional.jacobian one sample at a time."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: f(v[None])[0], xi) for xi in x])


# ---------------------------------------------------------------------------------------------- jacobians


@pytest.mark.parametrize("mode", ["auto", "reverse", "forward"])
def test_linear_map_jacobian_is_its_matrix(mode):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 5))
    At = torch.as_tensor(A)
    x = rng.normal(size=(7, 5))
    J = jacobians(lambda v: v @ At.T + 1.0, x, mode=mode)
    assert J.shape == (7, 3, 5) and J.dtype == torch.float64
    np.testing.assert_allclose(J.numpy(), np.broadcast_to(A, (7, 3, 5)), atol=1e-14)


def test_per_sample_function_is_accepted():
    A = torch.randn(3, 4, dtype=torch.float64)
    J = jacobians(lambda v: A @ v, torch.randn(6, 4, dtype=torch.float64))
    torch.testing.assert_close(J, A.expand(6, 3, 4))


@pytest.mark.parametrize(
    "fn, deriv",
    [
        (torch.tanh, lambda x: 1 - np.tanh(x) ** 2),
        (nn.functional.softplus, lambda x: 1 / (1 + np.exp(-x))),
    ],
)
def test_elementwise_maps_give_diagonal_of_closed_form_derivative(fn, deriv):
    x = np.random.default_rng(1).normal(scale=2.0, size=(9, 4))
    J = jacobians(fn, x).numpy()
    expected = np.stack([np.diag(deriv(xi)) for xi in x])
    np.testing.assert_allclose(J, expected, atol=1e-13)


@pytest.mark.parametrize("d_in, d_out", [(6, 3), (3, 6)])
def test_mlp_matches_autograd_functional_loop(d_in, d_out):
    net = _mlp(d_in, d_out)
    x = torch.randn(11, d_in, dtype=torch.float64)
    torch.testing.assert_close(jacobians(net, x), _loop_jacobians(net, x), atol=1e-12, rtol=1e-10)


def test_float32_module_with_numpy_input_keeps_model_dtype():
    net = _mlp(5, 2, dtype=torch.float32)
    x = np.random.default_rng(2).normal(size=(4, 5))  # float64 numpy
    J = jacobians(net, x)
    assert J.dtype == torch.float32
    ref = _loop_jacobians(net, torch.as_tensor(x, dtype=torch.float32))
    torch.testing.assert_close(J, ref, atol=1e-5, rtol=1e-5)


def test_chunked_equals_unchunked_and_forward_equals_reverse():
    net = _mlp(5, 4)
    x = torch.randn(37, 5, dtype=torch.float64)
    full = jacobians(net, x, chunk_size=37)
    for c in (1, 5, 16):
        torch.testing.assert_close(jacobians(net, x, chunk_size=c), full, atol=1e-15, rtol=1e-13)
    torch.testing.assert_close(jacobians(net, x, mode="forward", chunk_size=7), full, atol=1e-13, rtol=1e-12)
    torch.testing.assert_close(jacobians(net, x, mode="reverse", chunk_size=9), full, atol=1e-13, rtol=1e-12)


def test_max_memory_bounds_the_chunk_size(monkeypatch):
    net = _mlp(8, 3)
    x = torch.randn(200, 8, dtype=torch.float64)
    out_bytes = 200 * 3 * 8 * 8 + jac.FIXED_OVERHEAD
    big = estimate_chunk_size(net, x, max_memory=1e9)
    assert big == 200
    small = estimate_chunk_size(net, x, max_memory=out_bytes + 20_000)
    assert 1 <= small < 200
    # the chunks actually used follow the estimate, and the result is unchanged
    seen: list[int] = []
    orig = jac_dense._iter_chunks

    def spy(prep, xt, mode, chunk, create_graph):
        for i, J in orig(prep, xt, mode, chunk, create_graph):
            seen.append(J.shape[0])
            yield i, J

    monkeypatch.setattr(jac_dense, "_iter_chunks", spy)
    J = jacobians(net, x, max_memory=out_bytes + 20_000)
    assert len(seen) > 1 and max(seen) == small and sum(seen) == 200
    torch.testing.assert_close(J, _loop_jacobians(net, x), atol=1e-12, rtol=1e-10)
    with pytest.raises(ConfigError, match="max_memory"):
        jacobians(net, x, max_memory=out_bytes)


def test_create_graph_is_differentiable_wrt_parameters():
    lin = nn.Linear(3, 2).double()
    J = jacobians(lin, torch.randn(4, 3, dtype=torch.float64), create_graph=True)
    assert J.requires_grad
    J.pow(2).sum().backward()
    # d/dW of 4‖W‖_F² = 8 W
    torch.testing.assert_close(lin.weight.grad, 8 * lin.weight.detach())
    assert not jacobians(lin, torch.randn(4, 3, dtype=torch.float64)).requires_grad


def test_bad_inputs_raise_linlens_errors():
    net = _mlp(3, 2)
    x = torch.randn(5, 3, dtype=torch.float64)
    x[2, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="row 2"):
        jacobians(net, x)
    with pytest.raises(ShapeError, match="1-D output"):
        jacobians(lambda v: v[:, :, None] * v[:, None, :], torch.randn(4, 3))
    with pytest.raises(ShapeError, match="2-D"):
        jacobians(net, torch.randn(3, dtype=torch.float64))

    class Broken(nn.Module):
        def forward(self, v):
            raise RuntimeError("boom")

    with pytest.raises(ModelError, match="boom"):
        jacobians(Broken(), torch.randn(4, 3))
    with pytest.raises(ConfigError, match="mode"):
        jacobians(net, torch.randn(4, 3), mode="sideways")


# ---------------------------------------------------------------------------------------- Frobenius norm


def test_exact_frobenius_matches_loop():
    net = _mlp(4, 3)
    x = torch.randn(6, 4, dtype=torch.float64)
    ref = _loop_jacobians(net, x).pow(2).sum(dim=(1, 2))
    torch.testing.assert_close(jacobian_frobenius_sq(net, x), ref)


def test_hutchinson_is_unbiased_within_its_standard_error():
    """Mean of n Rademacher probes vs exact, tolerance 5 standard errors from the known variance.

    Var ‖Jᵀu‖² = 2(‖JJᵀ‖_F² − Σᵢ (JJᵀ)ᵢᵢ²) per probe for Rademacher u, so the mean of n probes has standard
    error sqrt(var / n); 5 s.e. gives a false-failure probability below 1e-6 per sample (CLT).
    """
    net = _mlp(5, 4, seed=3)
    x = torch.randn(3, 5, dtype=torch.float64)
    n = 4000
    g = torch.Generator().manual_seed(0)
    est = jacobian_frobenius_sq(net, x, method="hutchinson", n_probes=n, generator=g).detach()
    J = _loop_jacobians(net, x)
    exact = J.pow(2).sum(dim=(1, 2))
    M = J @ J.transpose(1, 2)
    var = 2 * (M.pow(2).sum(dim=(1, 2)) - torch.diagonal(M, dim1=1, dim2=2).pow(2).sum(-1))
    se = (var / n).sqrt()
    assert torch.all((est - exact).abs() < 5 * se), (est, exact, se)


def test_hutchinson_gradient_matches_double_backward_of_explicit_jacobian():
    net = _mlp(3, 3, seed=4)
    x = torch.randn(8, 3, dtype=torch.float64)
    v = jacobian_frobenius_sq(net, x, method="hutchinson", generator=torch.Generator().manual_seed(1))
    assert v.shape == (8,) and v.requires_grad
    grads = torch.autograd.grad(v.sum(), list(net.parameters()), allow_unused=True)
    # same probe drawn by hand; explicit per-sample Jacobians from autograd.functional with create_graph
    u = torch.randint(0, 2, (8, 3), generator=torch.Generator().manual_seed(1)).double() * 2 - 1
    J = torch.stack([
        torch.autograd.functional.jacobian(lambda s: net(s[None])[0], xi, create_graph=True) for xi in x
    ])
    ref = torch.einsum("bo,boi->bi", u, J).pow(2).sum()
    torch.testing.assert_close(v.sum(), ref)
    ref_grads = torch.autograd.grad(ref, list(net.parameters()), allow_unused=True)
    for g, r in zip(grads, ref_grads, strict=True):
        if r is None:  # the last bias does not enter J
            assert g is None or torch.all(g == 0)
        else:
            torch.testing.assert_close(g, r)


def test_hutchinson_exact_for_orthogonal_probe_structure():
    # for a diagonal J, ‖Jᵀu‖² = Σ J_ii² u_i² = ‖J‖_F² for every Rademacher u (zero variance)
    x = torch.randn(5, 4, dtype=torch.float64)
    est = jacobian_frobenius_sq(torch.tanh, x, method="hutchinson")
    exact = (1 - torch.tanh(x) ** 2).pow(2).sum(-1)
    torch.testing.assert_close(est, exact)


# ---------------------------------------------------------------------------------------- JacobianField


def test_field_means_equal_explicit_means_and_stream_over_batches():
    net = _mlp(5, 3, seed=5)
    X = torch.randn(40, 5, dtype=torch.float64)
    J = _loop_jacobians(net, X).numpy()
    field = JacobianField(net, chunk_size=7, top_k=2).fit(X)
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
    net = _mlp(4, 4, seed=6)
    X = np.random.default_rng(6).normal(size=(12, 4))
    field = JacobianField(net).fit(X)
    J = _loop_jacobians(net, torch.as_tensor(X)).numpy()
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
    net = _mlp(6, 3, seed=8)
    C2 = np.random.default_rng(8).normal(size=(3, 6))
    res2 = JacobianField(net, chunk_size=4).local_vs_global(C2, X)
    J = _loop_jacobians(net, torch.as_tensor(X)).numpy()
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
    net = _mlp(4, 4, seed=3)
    X = np.random.default_rng(3).normal(size=(5, 4))
    C = np.random.default_rng(4).normal(size=(4, 4))  # unrelated to the net, full rank: k = 4 = d_in
    res = JacobianField(net).local_vs_global(C, X)
    assert res.k == 4 and np.isnan(res.max_angle).all()
    assert res.to_dict()["max_angle_median"] is None or math.isnan(res.to_dict()["max_angle_median"])
    assert res.relative_distance.min() > 0.1
