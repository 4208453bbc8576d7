"""linlens.flows.train (and the penalty estimators of flows._autodiff): linear-flow theory (PCA,
shrinkage), σ_max = 1/√(2α), penalty plumbing, divergence."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from linlens.errors import TrainingDiverged
from linlens.flows import (
    InvertibleMLP,
    LinearFlow,
    encoder_jacobians,
    flow_loss,
    local_covariance,
    train_flow,
    unwhitened_components,
)

torch.set_num_threads(1)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_linear_flow_matches_shrinkage_closed_form_and_pca(gaussian, alpha):
    X, S = gaussian
    d = X.shape[1]
    f = LinearFlow(d, seed=3).double()  # random initial W
    train_flow(f, X, epochs=30, optimizer="lbfgs", lr=1.0, jacobian_penalty=alpha)
    W = f.weight.detach().numpy()
    target = np.linalg.inv(S + 2 * alpha * np.eye(d))
    assert np.linalg.norm(W.T @ W - target) / np.linalg.norm(target) < 1e-3
    comp = unwhitened_components(f, X)
    scores = PCA().fit_transform(X)
    for k in range(d):
        assert abs(np.corrcoef(comp.components[:, k], scores[:, k])[0, 1]) >= 0.999
    np.testing.assert_allclose(comp.components.var(axis=0), np.linalg.eigvalsh(S)[::-1], rtol=1e-3)
    # local std = sqrt of the shrunk eigenvalues, Σ = (S + 2αI)
    lc = local_covariance(f, X[:5])
    np.testing.assert_allclose(lc.covariance[0], S + 2 * alpha * np.eye(d), rtol=1e-3, atol=1e-3)


def _plane_data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    Y = rng.uniform(-1, 1, size=(n, 2))  # non-Gaussian in-plane density
    return np.c_[Y, np.zeros(n)] @ Q.T, Q[:, 2]



@pytest.mark.parametrize("alpha", [1e-2, 1e-1])
def test_sigma_max_settles_at_inverse_sqrt_2alpha(alpha):
    X, normal = _plane_data()
    f = LinearFlow(3, seed=0).double()
    train_flow(f, X, epochs=30, optimizer="lbfgs", lr=1.0, jacobian_penalty=alpha)
    _, J = encoder_jacobians(f, X[:3])
    U, s, Vt = np.linalg.svd(J[0])
    assert s[0] == pytest.approx(1 / math.sqrt(2 * alpha), rel=1e-3)
    assert abs(Vt[0] @ normal) > 0.999  # the largest singular direction is the plane's normal


def test_sigma_max_grows_without_penalty():
    X, _ = _plane_data(400)
    f = InvertibleMLP(3, n_layers=1, seed=0).double()
    def smax(ep, e):
        return {"s": float(np.linalg.svd(encoder_jacobians(e, X[:50])[1], compute_uv=False)[:, 0].max())}
    h = train_flow(f, X, epochs=150, lr=1e-2, callback=smax, callback_every=50)
    s = [r["s"] for _, r in h.records]
    assert s[-1] > 3 * s[1] > 3 * s[0] / 2 and h.nll[-1] < h.nll[10]


def test_hutchinson_penalty_is_unbiased_for_exact():
    torch.manual_seed(0)
    f = InvertibleMLP(5, n_layers=2, activation="asinh", seed=2).double()
    x = torch.randn(64, 5, dtype=torch.float64)
    exact = float(flow_loss(f, x, 1.0, "exact")[2])
    g = torch.Generator().manual_seed(0)
    n_rep = 400
    est = np.array([float(flow_loss(f, x, 1.0, "hutchinson", 1, g)[2]) for _ in range(n_rep)])
    # mean of n_rep i.i.d. unbiased estimates: 5 standard errors is a 1-in-3e6 false alarm
    assert abs(est.mean() - exact) < 5 * est.std(ddof=1) / math.sqrt(n_rep)
    assert est.std() > 0  # really stochastic


def test_penalty_gradient_flows_to_parameters():
    f = LinearFlow(3, seed=0).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    loss, _, fro = flow_loss(f, x, 0.5, "exact")
    (gW,) = torch.autograd.grad(fro, f.weight)
    np.testing.assert_allclose(gW.numpy(), 2 * f.weight.detach().numpy(), rtol=1e-12)  # d‖W‖²/dW = 2W


def test_injected_nonfinite_loss_raises_training_diverged():
    class Exploding(LinearFlow):
        calls = 0

        def forward(self, x):
            z, ladj = super().forward(x)
            Exploding.calls += 1
            return z, ladj * (float("nan") if Exploding.calls > 4 else 1.0)

    X = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(TrainingDiverged) as exc:
        train_flow(Exploding(2).double(), X, epochs=20, lr=1e-2)
    assert exc.value.epoch == 5 and math.isfinite(exc.value.last_finite_loss)
    assert "epoch 5" in str(exc.value) and "last finite loss" in str(exc.value)
