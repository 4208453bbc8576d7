"""linlens.jacobian.local: the Euler test, adaptive filters and effective dimension against the dense Jacobian
from torch.func.jacrev and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _jacobian_cases import dense_jacobian, relu_cnn

from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.jacobian import adaptive_filters, effective_dimension, euler_test


def test_euler_test_bias_free_is_zero_biased_is_not() -> None:
    Y = torch.rand(4, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    free = euler_test(relu_cnn(bias=False), Y)
    biased = euler_test(relu_cnn(bias=True), Y)
    assert free.relative_residual.shape == (4,)
    assert free.relative_residual.max() <= 1e-6
    assert biased.relative_residual.min() > 1e-2
    # independent route: ‖f(y) − J y‖ with the dense Jacobian
    net = relu_cnn(bias=True)
    J = dense_jacobian(net, Y[0])
    fy = net(Y[:1]).detach().reshape(-1)
    ref = float(torch.linalg.vector_norm(fy - J @ Y[0].reshape(-1)) / torch.linalg.vector_norm(fy))
    assert biased.relative_residual[0] == pytest.approx(ref, rel=1e-10)


def test_adaptive_filter_is_the_dense_row() -> None:
    net = relu_cnn(bias=False, c_out=2, seed=4)
    Y = torch.randn(2, 1, 10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pix = [(0, 4, 5), (1, 0, 9), (0, 9, 0)]
    res = adaptive_filters(net, Y, pix)
    assert res.filters.shape == (2, 3, 1, 10, 10)
    for i in range(2):
        J = dense_jacobian(net, Y[i]).numpy()
        for j, p in enumerate(pix):
            row = J[np.ravel_multi_index(p, (2, 10, 10))]
            np.testing.assert_allclose(res.filters[i, j].reshape(-1), row, atol=1e-13)
    # bias-free: f(y)_p = ⟨filter_p, y⟩
    np.testing.assert_allclose(res.filter_dot_input, res.outputs, atol=1e-12)
    flat = adaptive_filters(net, Y, [np.ravel_multi_index(p, (2, 10, 10)) for p in pix])
    np.testing.assert_array_equal(flat.filters, res.filters)


def test_effective_dimension_closed_forms() -> None:
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(50, 7)))[0]
    s = np.linalg.svd(Q @ Q.T, compute_uv=False)  # an orthogonal projection of rank 7
    assert float(effective_dimension(s)) == pytest.approx(7.0, rel=1e-12)
    assert float(effective_dimension(s, "count", fraction=0.5)) == 7.0
    shrink = np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(effective_dimension(shrink, "stable_rank"), [1.25, 3.0])
    with pytest.raises(ConfigError):
        effective_dimension(s, "entropy")


def test_bad_input() -> None:
    net = relu_cnn(bias=False)
    y = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    bad = y.clone()
    bad[0, 0, 1, 1] = float("nan")
    with pytest.raises(NonFiniteError):
        euler_test(net, bad)
    with pytest.raises(ModelError):
        euler_test(lambda x: x.reshape(7, -1), y)
    with pytest.raises(ShapeError):
        adaptive_filters(net, y, [(0, 6, 0)])


def test_euler_test_auto_device_keeps_a_parameterless_callable_on_the_cpu(monkeypatch):
    # the shared image-map preparation (also jacobian_svd, adaptive_filters) resolves "auto" like probe_model
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    r = euler_test(lambda x: 3.0 * x, np.random.default_rng(0).normal(size=(4, 1, 4, 4)))
    np.testing.assert_allclose(r.residual_norm, 0.0, atol=1e-12)  # a linear map is exactly 1-homogeneous
