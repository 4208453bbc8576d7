"""KoopmanHybrid: never calls the replaced layer, agrees with HankelDMD.predict, saves/loads, beats
majority class on Yin-Yang; least-squares baselines agree with numpy lstsq."""

import copy

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError
from linlens.koopman import (
    HankelDMD,
    fit_hybrid,
    fit_least_squares,
    linearize_layer,
    record_trajectories,
    scale_layer,
)
from linlens.nn import accuracy, mlp, predict, train


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = mlp(2, [8, 6, 4], 3, seed=3)
    X = torch.rand(600, 2)
    sm = scale_layer(net, 1, 4, X, epochs=0, noise=0.1, seed=1, progress=False)
    T = record_trajectories(sm, X)
    return net, X, sm, T


def test_hybrid_never_calls_replaced_layer_nor_later_scaled_layers(setup):
    net, X, sm, T = setup
    hyb = fit_hybrid(sm, T, 2, None, "projected")
    ref = hyb(X[:10]).clone()

    def boom(*a, **k):
        raise RuntimeError("replaced layer called")

    sm.target[0].forward = boom
    for g in list(sm.scaled)[2:]:
        g[0].forward = boom
    try:
        torch.testing.assert_close(hyb(X[:10]), ref)
        with pytest.raises(RuntimeError):
            sm(X[:10])
    finally:
        del sm.target[0].forward
        for g in list(sm.scaled)[2:]:
            del g[0].forward
    assert len(hyb.scaled) == 2 and not any(m is sm.target[0] for m in hyb.modules())


@pytest.mark.parametrize("readout", ["projected", "exact"])
@pytest.mark.parametrize("rank", [None, 6])
def test_hybrid_matches_dmd_predict(setup, readout, rank):
    net, X, sm, T = setup
    h = 2
    hyb = fit_hybrid(sm, T, h, rank, readout)
    dmd = HankelDMD(delays=h, rank=rank).fit(T)
    steps = sm.n_scaled + 1 - h
    pred = dmd.predict(T[:50, : h + 1], steps=steps, readout=readout)[:, -1, : sm.out_features]
    expected = sm.post(pred.float())
    torch.testing.assert_close(hyb(X[:50]), expected, rtol=1e-4, atol=1e-5)


def test_full_rank_one_step_hybrid_is_least_squares_on_window(setup):
    # h = N, full rank: one DMD step = least-squares map from the window to the next delay vector
    net, X, sm, T = setup
    N = sm.n_scaled
    hyb = fit_hybrid(sm, T, N, None, "projected")
    Z = T[:, : N + 1].flip(1).reshape(len(T), -1).numpy()
    target = T[:, N + 1].numpy()
    coef, *_ = np.linalg.lstsq(Z, target, rcond=None)
    want = sm.post(torch.as_tensor(Z @ coef)[:, : sm.out_features].float())
    torch.testing.assert_close(hyb(X), want, rtol=1e-3, atol=1e-4)


def test_state_dict_round_trip(setup, tmp_path):
    net, X, sm, T = setup
    hyb = fit_hybrid(sm, T, 1, 5, "exact")
    path = tmp_path / "hyb.pt"
    torch.save(hyb.state_dict(), path)
    other = copy.deepcopy(hyb)
    with torch.no_grad():
        for b in other.buffers():
            b.zero_()
        for p in other.parameters():
            p.zero_()
    assert not torch.allclose(other(X[:20]), hyb(X[:20]))
    other.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(other(X[:20]), hyb(X[:20]))
    assert {"basis", "operator", "full_map"} <= set(hyb.state_dict())


def test_bad_config(setup):
    net, X, sm, T = setup
    with pytest.raises(ConfigError):
        fit_hybrid(sm, T, 5, None)
    with pytest.raises(ConfigError):
        fit_hybrid(sm, T, 1, None, readout="both")


def test_affine_least_squares_matches_numpy():
    # well-posed design: 8 ReLU features of a 6-D input (full column rank)
    net = mlp(6, [8, 6], 3, seed=4)
    X = torch.randn(600, 6)
    ls = fit_least_squares(net, 1, X)
    with torch.no_grad():
        x0 = torch.relu(net[0](X)).double()
        y = torch.relu(net[2](x0.float())).double().numpy()  # L(x0), by hand
    A = np.hstack([x0.numpy(), np.ones((len(x0), 1))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    torch.testing.assert_close(ls.readout.weight, torch.as_tensor(coef[:-1].T), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ls.readout.bias, torch.as_tensor(coef[-1]), atol=1e-6, rtol=1e-6)
    assert ls.replacement_params() == 8 * 6 + 6
    ctrl = fit_least_squares(net, 1, X, 3)
    assert len(ctrl.layers) == 3 and ctrl.readout.in_features == 8 * 4


def test_hybrid_beats_majority_class_on_small_yinyang():
    from linlens.data.yinyang import yinyang

    Xtr, ytr = yinyang(1500, seed=42, features="kriener")
    Xte, yte = yinyang(500, seed=40, features="kriener")
    net = mlp(4, [16, 12], 3, seed=0)
    train(net, Xtr, ytr, epochs=40, batch_size=100, lr=1e-2, loss="cross_entropy", progress=False)
    orig = accuracy(predict(net, Xte), torch.as_tensor(yte))
    hyb = linearize_layer(net, 1, Xtr, n_scaled=3, delays=3, rank=None, scale_kwargs={"epochs": 5},
                          progress=False)
    acc = accuracy(predict(hyb, Xte), torch.as_tensor(yte))
    majority = np.bincount(yte).max() / len(yte)
    assert orig > majority + 0.2
    assert acc > majority + 0.1, (acc, majority, orig)
