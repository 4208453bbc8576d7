"""linlens.jacobian.dense and .memory: Jacobians against closed forms and torch.autograd.functional, the chunk
memory model, and the Frobenius norm (exact and Hutchinson) against loops and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _jacobian_cases import loop_jacobians, mlp
from torch import nn

from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.jacobian import (
    jacobian_frobenius_sq,
    jacobians,
)

torch.set_num_threads(1)


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
    net = mlp(d_in, d_out)
    x = torch.randn(11, d_in, dtype=torch.float64)
    torch.testing.assert_close(jacobians(net, x), loop_jacobians(net, x), atol=1e-12, rtol=1e-10)


def test_float32_module_with_numpy_input_keeps_model_dtype():
    net = mlp(5, 2, dtype=torch.float32)
    x = np.random.default_rng(2).normal(size=(4, 5))  # float64 numpy
    J = jacobians(net, x)
    assert J.dtype == torch.float32
    ref = loop_jacobians(net, torch.as_tensor(x, dtype=torch.float32))
    torch.testing.assert_close(J, ref, atol=1e-5, rtol=1e-5)


def test_chunked_equals_unchunked_and_forward_equals_reverse():
    net = mlp(5, 4)
    x = torch.randn(37, 5, dtype=torch.float64)
    full = jacobians(net, x, chunk_size=37)
    for c in (1, 5, 16):
        torch.testing.assert_close(jacobians(net, x, chunk_size=c), full, atol=1e-15, rtol=1e-13)
    torch.testing.assert_close(jacobians(net, x, mode="forward", chunk_size=7), full, atol=1e-13, rtol=1e-12)
    torch.testing.assert_close(jacobians(net, x, mode="reverse", chunk_size=9), full, atol=1e-13, rtol=1e-12)


def test_create_graph_is_differentiable_wrt_parameters():
    lin = nn.Linear(3, 2).double()
    J = jacobians(lin, torch.randn(4, 3, dtype=torch.float64), create_graph=True)
    assert J.requires_grad
    J.pow(2).sum().backward()
    # d/dW of 4‖W‖_F² = 8 W
    torch.testing.assert_close(lin.weight.grad, 8 * lin.weight.detach())
    assert not jacobians(lin, torch.randn(4, 3, dtype=torch.float64)).requires_grad


def test_bad_inputs_raise_linlens_errors():
    net = mlp(3, 2)
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
    net = mlp(4, 3)
    x = torch.randn(6, 4, dtype=torch.float64)
    ref = loop_jacobians(net, x).pow(2).sum(dim=(1, 2))
    torch.testing.assert_close(jacobian_frobenius_sq(net, x), ref)


def test_hutchinson_is_unbiased_within_its_standard_error():
    """Mean of n Rademacher probes vs exact, tolerance 5 standard errors from the known variance.

    Var ‖Jᵀu‖² = 2(‖JJᵀ‖_F² − Σᵢ (JJᵀ)ᵢᵢ²) per probe for Rademacher u, so the mean of n probes has standard
    error sqrt(var / n); 5 s.e. gives a false-failure probability below 1e-6 per sample (CLT).
    """
    net = mlp(5, 4, seed=3)
    x = torch.randn(3, 5, dtype=torch.float64)
    n = 4000
    g = torch.Generator().manual_seed(0)
    est = jacobian_frobenius_sq(net, x, method="hutchinson", n_probes=n, generator=g).detach()
    J = loop_jacobians(net, x)
    exact = J.pow(2).sum(dim=(1, 2))
    M = J @ J.transpose(1, 2)
    var = 2 * (M.pow(2).sum(dim=(1, 2)) - torch.diagonal(M, dim1=1, dim2=2).pow(2).sum(-1))
    se = (var / n).sqrt()
    assert torch.all((est - exact).abs() < 5 * se), (est, exact, se)


def test_hutchinson_gradient_matches_double_backward_of_explicit_jacobian():
    net = mlp(3, 3, seed=4)
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
