"""linlens.flows.models: encoders, their log-determinants and inverses, the NLL against scipy."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from linlens.flows import (
    InvertibleMLP,
    LinearFlow,
    coupling_flow,
    encoder_jacobians,
    nll,
    spline_flow,
)

torch.set_num_threads(1)


def test_nll_equals_scipy_gaussian_logpdf(gaussian):
    X, _ = gaussian
    f = LinearFlow(4, seed=1).double()
    W = f.weight.detach().numpy()
    cov = np.linalg.inv(W.T @ W)  # z = W x ~ N(0, I)  ⇔  x ~ N(0, (WᵀW)⁻¹)
    ours = nll(f, torch.as_tensor(X[:50])).detach().numpy()
    np.testing.assert_allclose(ours, -multivariate_normal(np.zeros(4), cov).logpdf(X[:50]), rtol=1e-10)


@pytest.mark.parametrize("make", [lambda: InvertibleMLP(3, 2, "prelu", "tril", seed=1).double(),
                                  lambda: coupling_flow(3, transforms=2, hidden_features=(16,)).double(),
                                  lambda: spline_flow(3, transforms=1, hidden_features=(16,)).double()])
def test_encoders_logabsdet_and_inverse(make):
    f = make()
    x = torch.randn(6, 3, dtype=torch.float64)
    _, J = encoder_jacobians(f, x)
    np.testing.assert_allclose(f(x)[1].detach().numpy(), np.linalg.slogdet(J)[1], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(f.inverse(f(x)[0]).detach().numpy(), x.numpy(), atol=1e-6)
