"""Layer scaling: split, identity initialization reproduces the layer at step 0, training stays close."""

import pytest
import torch
from torch import nn

from linlens.errors import ConfigError, ModelError
from linlens.koopman import near_identity_layers, scale_layer, split_layers
from linlens.nn import mlp


def _net():
    return mlp(2, [8, 6, 4], 3, seed=1)


def test_split_layers_recomposes_the_model():
    net = _net()
    x = torch.randn(20, 2)
    for layer in (1, 2, 3):
        pre, tgt, post = split_layers(net, layer)
        assert isinstance(tgt[0], nn.Linear)
        torch.testing.assert_close(post(tgt(pre(x))), net(x))


@pytest.mark.parametrize("layer", [0, 4, 1.5, True])
def test_split_layers_rejects_bad_layer(layer):
    with pytest.raises(ConfigError, match="layer"):
        split_layers(_net(), layer)


def test_split_layers_rejects_non_sequential():
    with pytest.raises(ModelError):
        split_layers(nn.Linear(2, 2), 1)


@pytest.mark.parametrize("layer", [1, 2])
def test_identity_init_reproduces_layer_at_step_zero(layer):
    net = _net()
    x = torch.randn(50, 2)
    sm = scale_layer(net, layer, 5, x, epochs=0, noise=0.0, progress=False)
    torch.testing.assert_close(sm(x), net(x), rtol=0, atol=0)
    # the original is not modified and the stack is frozen except the scaled layers
    assert all(not p.requires_grad for p in sm.target.parameters())
    assert all(p.requires_grad for p in sm.scaled.parameters())


def test_near_identity_noise_and_default_init_differ():
    g0 = near_identity_layers(4, 1, noise=0.0)
    torch.testing.assert_close(g0[0][0].weight, torch.eye(4))
    g1 = near_identity_layers(4, 1, noise=0.05, seed=3)
    dev = (g1[0][0].weight - torch.eye(4)).abs()
    assert 0 < dev.max() < 0.5
    with pytest.raises(ConfigError):
        near_identity_layers(4, 0)
    with pytest.raises(ConfigError):
        near_identity_layers(4, 1, init="zeros")


def test_scaling_training_keeps_layer_output_close_and_is_seeded():
    torch.manual_seed(0)
    net = _net()
    X = torch.rand(400, 2)
    a = scale_layer(net, 1, 3, X, epochs=15, noise=0.05, seed=7, progress=False)
    b = scale_layer(net, 1, 3, X, epochs=15, noise=0.05, seed=7, progress=False)
    torch.testing.assert_close(a(X), b(X))
    with torch.no_grad():
        x0 = a.pre(X)
        err_init = scale_layer(net, 1, 3, X, epochs=0, noise=0.05, seed=7, progress=False)
        def target_err(sm):
            h = x0
            for g in sm.scaled:
                h = g(h)
            return torch.nn.functional.huber_loss(sm.target(h), sm.target(x0)).item()
        assert target_err(a) <= target_err(err_init) + 1e-7
    assert a.history_ is not None and len(a.history_.train_loss) == 15
