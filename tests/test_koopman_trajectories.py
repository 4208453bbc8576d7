"""Trajectories: shape, padding, states recomputed layer by layer by hand."""

import torch

from linlens.koopman import pad_state, record_trajectories, scale_layer
from linlens.nn import mlp


def test_shape_padding_and_states():
    net = mlp(2, [8, 6, 4], 3, seed=2)
    X = torch.randn(30, 2)
    sm = scale_layer(net, 1, 4, X, epochs=0, noise=0.1, progress=False)
    T = record_trajectories(sm, X, pad_value=-1.0)
    assert T.shape == (30, 4 + 2, 8) and T.dtype == torch.float64
    # by hand from the raw modules of the original net
    lin0, lin1 = net[0], net[2]
    x = torch.relu(lin0(X))
    torch.testing.assert_close(T[:, 0].float(), x)
    for i, g in enumerate(sm.scaled):
        x = torch.relu(g[0](x))
        torch.testing.assert_close(T[:, i + 1].float(), x)
    torch.testing.assert_close(T[:, -1, :6].float(), torch.relu(lin1(x)))
    assert bool((T[:, -1, 6:] == -1.0).all())
    T5 = record_trajectories(sm, X, pad_value=-5.0)
    assert bool((T5[:, -1, 6:] == -5.0).all())
    Tc = record_trajectories(sm, X.numpy(), constant=True)
    assert Tc.shape == (30, 6, 9) and bool((Tc[..., -1] == 1).all())
    torch.testing.assert_close(Tc[..., :-1], T)


def test_pad_state():
    assert pad_state(torch.ones(2, 3), 3).shape == (2, 3)
    assert pad_state(torch.ones(2, 3), 5, 0.5)[0].tolist() == [1, 1, 1, 0.5, 0.5]
