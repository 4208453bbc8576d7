"""linlens.flows.components: Jacobians of encoders, local covariance, un-whitened components, sign
alignment, bad input."""

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError, ModelError, NonFiniteError, ShapeError
from linlens.flows import (
    InvertibleMLP,
    LinearFlow,
    align_signs,
    coupling_flow,
    encoder_jacobians,
    flow_loss,
    local_covariance,
    train_flow,
    unwhitened_components,
)

torch.set_num_threads(1)


def _plane_data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    Y = rng.uniform(-1, 1, size=(n, 2))  # non-Gaussian in-plane density
    return np.c_[Y, np.zeros(n)] @ Q.T, Q[:, 2]


def test_jacobians_match_closed_form_for_invertible_mlp():
    f = InvertibleMLP(3, n_layers=1, activation="asinh", seed=0).double()
    x = np.random.default_rng(0).normal(size=(4, 3))
    W1, W2 = (layer.matrix().detach().numpy() for layer in (f.layers[0], f.layers[2]))
    b1 = f.layers[0].bias.detach().numpy()
    z, J = encoder_jacobians(f, x)
    for i in range(4):
        h = W1 @ x[i] + b1
        np.testing.assert_allclose(J[i], W2 @ np.diag(1 / np.sqrt(1 + h**2)) @ W1, rtol=1e-10)
        # logabsdet is consistent with the Jacobian
    ladj = f(torch.as_tensor(x))[1].detach().numpy()
    np.testing.assert_allclose(ladj, np.linalg.slogdet(J)[1], rtol=1e-10)


def test_local_covariance_is_inverse_gram_without_forming_it():
    f = InvertibleMLP(3, 2, "prelu", seed=4).double()
    x = np.random.default_rng(1).normal(size=(5, 3))
    _, J = encoder_jacobians(f, x)
    lc = local_covariance(f, x)
    for i in range(5):
        np.testing.assert_allclose(lc.covariance[i], np.linalg.inv(J[i].T @ J[i]), rtol=1e-8)
    assert (np.diff(lc.local_std, axis=1) <= 0).all()


def test_bad_inputs_give_clear_errors():
    f = LinearFlow(2).double()
    with pytest.raises(NonFiniteError):
        local_covariance(f, [[np.nan, 0.0]])
    with pytest.raises(ShapeError, match="invertible"):
        local_covariance(lambda x: (x[:, :1], x[:, 0]), np.zeros((3, 2)))
    with pytest.raises(ModelError, match="tuple"):
        unwhitened_components(torch.nn.Linear(2, 2), np.zeros((3, 2)))
    with torch.no_grad():
        f.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    with pytest.raises(ModelError, match="singular"):
        local_covariance(f, np.zeros((3, 2)))
    lc = local_covariance(f, np.zeros((3, 2)), on_singular="mask")
    assert lc.singular.all() and np.isnan(lc.covariance).all()
    with pytest.raises(ConfigError):
        train_flow(LinearFlow(2), np.zeros((3, 2)), optimizer="lbfgs", noise_std=0.1)
    with pytest.raises(ShapeError):
        align_signs(np.zeros((3, 2)), np.zeros((4, 2)), 1.0)


def test_align_signs_recovers_random_flips():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 2 * np.pi, 300))
    X = np.c_[np.cos(t), np.sin(t)]
    tangent = np.c_[-np.sin(t), np.cos(t)]  # smooth field along the circle
    flips = rng.choice([-1.0, 1.0], size=300)
    aligned, signs = align_signs(X, tangent * flips[:, None], radius=0.1)
    # consistent up to one global sign: neighbours agree, and aligned = ± the smooth field
    g = np.sign(aligned[0] @ tangent[0])
    np.testing.assert_allclose(aligned, g * tangent, atol=1e-12)
    aligned3, signs3 = align_signs(X, np.stack([tangent * flips[:, None], X], axis=2), radius=0.1)
    assert signs3.shape == (300, 2) and (signs3[:, 1] == 1).all()


def test_encoder_jacobians_agree_with_linlens_jacobian_module():
    # independent route: torch.func vmap(jacrev) in linlens.jacobian against our batched reverse passes
    from linlens.jacobian import jacobian_frobenius_sq, jacobians

    f = coupling_flow(3, transforms=2, hidden_features=(16,)).double()
    x = torch.randn(40, 3, dtype=torch.float64)
    _, J = encoder_jacobians(f, x)
    ref = jacobians(lambda u: f(u)[0], x).detach().numpy()
    np.testing.assert_allclose(J, ref, rtol=1e-10, atol=1e-12)
    fro = float(flow_loss(f, x, 1.0, "exact")[2].detach())
    assert fro == pytest.approx(float(jacobian_frobenius_sq(lambda u: f(u)[0], x).mean().detach()), rel=1e-10)


def test_transform_encoder_has_the_closed_form_jacobian():
    # a transform with call_and_ladj (zuko's interface, duck-typed here): z = a + b ⊙ x, elementwise log-derivatives;
    # J = diag(b), so the local stds are 1/|b| sorted, and the log-det is Σ log|b|
    from linlens.flows import TransformEncoder, as_encoder

    b = torch.tensor([2.0, 0.25, 1.0], dtype=torch.float64)
    a = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)

    class Affine:
        def call_and_ladj(self, x):
            return a + b * x, torch.log(b).expand(x.shape)

        def inv(self, z):
            return (z - a) / b

    enc = as_encoder(Affine())
    assert isinstance(enc, TransformEncoder)
    X = np.random.default_rng(0).normal(size=(7, 3))
    lc = local_covariance(enc, X)
    np.testing.assert_allclose(lc.local_std, np.tile([4.0, 1.0, 0.5], (7, 1)), rtol=1e-12)
    z, ladj = enc(torch.as_tensor(X))
    np.testing.assert_allclose(ladj.numpy(), np.log(2.0 * 0.25 * 1.0), rtol=1e-12)
    np.testing.assert_allclose(enc.inverse(z).numpy(), X, atol=1e-12)


def test_precomputed_jacobians_are_reused_not_recomputed():
    f = InvertibleMLP(3, n_layers=1, seed=2).double()
    X = np.random.default_rng(1).normal(size=(20, 3))
    z, J = encoder_jacobians(f, X)
    calls = []

    def counting(x):
        calls.append(1)
        return f(x)

    lc = local_covariance(counting, X, jacobians=(z, J))
    uc = unwhitened_components(counting, X, jacobians=(z, J))
    assert not calls  # the encoder was not run again
    np.testing.assert_allclose(lc.covariance, local_covariance(f, X).covariance, rtol=1e-12)
    np.testing.assert_allclose(uc.components, unwhitened_components(f, X).components, rtol=1e-12)


def test_a_network_without_log_determinant_is_not_a_flow():
    net = torch.nn.Linear(2, 2).double()
    with pytest.raises(ModelError, match="log-determinant"):
        local_covariance(net, np.zeros((2, 2)))
    with pytest.raises(ModelError, match="tuple of 3"):
        local_covariance(lambda x: (x, x.sum(-1), x), np.zeros((2, 2)))
