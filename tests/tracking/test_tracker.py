"""linlens.tracking.Tracker against independent truths: inverse_study (the one-checkpoint route) on the same pairs,
closed-form filter factors and signal error of an exactly linear model, the rank table of shared/notes/fibers.md,
and the logistic closed form of the half-rise step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cases import Fixed

from linlens.errors import ConfigError, ShapeError
from linlens.problems import InverseProblem, SmoothPrior, gaussian_blur
from linlens.tracking import Tracker, deep_linear_weights, half_rise_steps
from linlens.tracking import tracker as tracker_mod
from linlens.workflows.study import inverse_study


@pytest.fixture(scope="module")
def blur():
    n = 12
    prob = InverseProblem(gaussian_blur(n, width=1.5), SmoothPrior(n, length_scale=3.0), 1e-2)
    X, Y = prob.sample(600, seed=1)
    Xp, Yp = prob.sample(400, seed=2)
    return prob, X, Y, Xp, Yp


def _mlp(n, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n, 24), torch.nn.Tanh(), torch.nn.Linear(24, n)).double()


def test_same_numbers_as_inverse_study(blur):
    # the tracker's per-step statistics are the study's: same pairs, same seed → same estimates and intervals
    prob, X, Y, Xp, Yp = blur
    net = _mlp(prob.n_x)
    st = inverse_study({"net": net}, Yp, Xp, X, Y, A=prob.A, n_boot=50, seed=3, n_bands=4)
    tr = Tracker(Yp, Xp, prob.A, train_inputs=Y, train_targets=X, n_boot=50, seed=3, n_bands=4, n_jacobian=0)
    p = tr.update(net, 0)
    m = st.models["net"]
    assert set(p.errors) == set(m.errors) == {"A⁻¹", "Wiener", "C_data"}
    for k in m.errors:
        for q in ("plug_in", "estimate", "low", "high"):
            assert p.errors[k][q] == pytest.approx(m.errors[k][q], rel=1e-7, abs=1e-12), (k, q)
    for k in ("signal_error", "noise_amplification", "band_0"):
        assert p.signal_noise[k]["estimate"] == pytest.approx(m.signal_noise_corrected[k]["estimate"], rel=1e-7)
    assert p.verdict == m.verdict.text()
    np.testing.assert_allclose(p.filter_factors, m.filter_factors.factors, rtol=1e-7, atol=1e-10)
    assert p.r2 == pytest.approx(m.r2, rel=1e-9)
    np.testing.assert_allclose(p.coef, m.coef, rtol=1e-7, atol=1e-10)


def test_linear_model_closed_forms(blur):
    # a network that is exactly the Wiener estimator: R² = 1, Jacobians = C, filter factors diag(VᵀWAV) and
    # signal error tr((WA − I)Σₓ(WA − I)ᵀ)/tr Σₓ computed here from numpy's SVD
    prob, X, Y, Xp, Yp = blur
    W = prob.wiener()
    tr = Tracker(Yp, Xp, prob.A, prior_covariance=prob.prior.covariance(), noise_std=prob.noise_std, n_boot=30,
                 n_jacobian=5, n_bands=3)
    p = tr.update(Fixed(W), 7)
    U, s, Vt = np.linalg.svd(prob.A)
    np.testing.assert_allclose(p.filter_factors, np.diag(Vt @ W @ prob.A @ Vt.T), atol=1e-9)
    E = W @ prob.A - np.eye(prob.n_x)
    Sx = prob.prior.covariance()
    assert p.signal_noise["signal_error"]["plug_in"] == pytest.approx(np.trace(E @ Sx @ E.T) / np.trace(Sx), rel=1e-8)
    assert p.signal_noise["noise_amplification"]["plug_in"] == pytest.approx(
        prob.noise_std**2 * np.sum(W**2) / np.trace(Sx), rel=1e-8)
    assert p.r2 == pytest.approx(1.0, abs=1e-12)
    assert p.local["weighted_distance_median"] == pytest.approx(0.0, abs=1e-10)
    assert p.errors["Wiener"]["plug_in"] == pytest.approx(0.0, abs=1e-18)
    np.testing.assert_allclose(tr.setup_.reference_filter_factors["Wiener"], p.filter_factors, atol=1e-9)
    b = tr.setup_.bands
    np.testing.assert_allclose(p.band_filter_factors, [p.filter_factors[a:c].mean() for a, c in b])
    assert p.step == 7 and p.ranks is None and p.test_mse is not None


def test_deep_linear_rank_list_matches_fibers_table():
    # shared/notes/fibers.md §7.2: d = (2,2,2), r = 0, W1 = diag(1,0), W2 = diag(0,1): r10 = r21 = 1, dim 5
    net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.diag(torch.tensor([1.0, 0.0])))
        net[1].weight.copy_(torch.diag(torch.tensor([0.0, 1.0])))
    Y = np.random.default_rng(0).normal(size=(40, 2))
    p = Tracker(Y, n_jacobian=0).update(net, 0)
    assert p.ranks == {"r_1_0": 1, "r_2_0": 0, "r_2_1": 1}
    assert p.stratum_dim == 5 and p.stratum == "[0,0] [0,1] [1,2] [2,2]"
    assert p.errors == {} and p.verdict is None and p.filter_factors is None


def test_deep_linear_detection():
    lin = torch.nn.Linear(3, 2, bias=False)
    nested = torch.nn.Sequential(lin, torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False)))
    assert len(deep_linear_weights(nested)) == 2
    assert deep_linear_weights(torch.nn.Sequential(lin, torch.nn.ReLU())) is None
    assert deep_linear_weights(torch.nn.Sequential(torch.nn.Linear(3, 2))) is None

    class Custom(torch.nn.Sequential):  # a subclass may change forward: not trusted to be the product
        pass

    assert deep_linear_weights(Custom(lin)) is None


def test_factorization_reused_and_mode_restored(blur, monkeypatch):
    prob, X, Y, Xp, Yp = blur
    calls = []
    orig = tracker_mod.FixedDesign

    class Counting(orig):
        def __init__(self, Yd):
            calls.append(Yd.shape)
            super().__init__(Yd)

    monkeypatch.setattr(tracker_mod, "FixedDesign", Counting)
    svds = []
    orig_snm = tracker_mod.SignalNoiseModel

    class CountingSNM(orig_snm):  # A's SVD lives here: taken once
        def __init__(self, *a, **k):
            svds.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(tracker_mod, "SignalNoiseModel", CountingSNM)
    net = _mlp(prob.n_x).float()  # float32: the cast design is factorized once, then reused
    net.train()
    tr = Tracker(Yp, Xp, prob.A, n_boot=20, n_jacobian=3, every=2)
    assert tr.update(net, 1) is None
    for step in (0, 2, 4):
        tr.update(net, step)
    assert net.training
    assert len(calls) == 3  # probes' fit half, C_data's rows, and the float32-cast fit half: once each
    assert len(svds) == 1
    assert [p.step for p in tr.history_] == [0, 2, 4]
    a, b = tr.history_[0], tr.history_[2]
    assert a.errors == b.errors and np.array_equal(a.filter_factors, b.filter_factors)  # same model, same draws
    d = tr.result().to_dict()
    assert d["points"][0]["coef"] is None and len(d["points"]) == 3


def test_refusals(blur):
    prob, X, Y, Xp, Yp = blur
    with pytest.raises(ConfigError, match="prior_covariance and noise_std"):
        Tracker(Yp, operator=prob.A).update(_mlp(prob.n_x), 0)
    with pytest.raises(ShapeError, match="operator must map"):
        Tracker(Yp, Xp, prob.A[:, :5]).update(_mlp(prob.n_x), 0)
    with pytest.raises(ConfigError, match="every"):
        Tracker(Yp, every=0).update(_mlp(prob.n_x), 0)
    with pytest.raises(ConfigError, match="step"):
        Tracker(Yp).update(_mlp(prob.n_x), -1)
    with pytest.raises(ConfigError, match="both"):
        Tracker(Yp, Xp, train_inputs=Y).update(_mlp(prob.n_x), 0)


def test_half_rise_steps_logistic_closed_form():
    # φᵢ(t) = 1/(1 + e^{−(t − cᵢ)/w}) reaches half of its final value (≈ 1) at t = cᵢ exactly
    t = np.linspace(0, 200, 401)
    c = np.array([20.0, 55.5, 130.25])
    F = 1 / (1 + np.exp(-(t[:, None] - c) / 4.0))
    np.testing.assert_allclose(half_rise_steps(t, F), c, atol=0.05)
    assert np.isnan(half_rise_steps(t, np.zeros((t.size, 1))))[0]
    with pytest.raises(ConfigError):
        half_rise_steps(t[::-1], F)


def test_band_curves_draw_the_chosen_bands_with_their_values(blur):
    # the figure reads back the result's numbers: one line per chosen band, its y-data the band means
    from linlens.report import tracking_figures as tf

    prob, X, Y, Xp, Yp = blur
    tr = Tracker(Yp, Xp, prob.A, n_boot=20, n_jacobian=0, n_bands=4)
    for step, seed in ((0, 0), (3, 1)):
        tr.update(_mlp(prob.n_x, seed), step)
    res = tr.result()
    fig = tf.plot_factor_curves(res, bands=[0, 2])
    lines = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("band")]
    assert [ln.get_label() for ln in lines] == [f"band {a + 1}–{b}" for a, b in res.setup.bands[[0, 2]]]
    for ln, j in zip(lines, (0, 2), strict=True):
        np.testing.assert_allclose(ln.get_ydata(), [p.band_filter_factors[j] for p in res.points])


def test_targets_without_operator_compare_with_c_data(blur):
    # no A: C_data (least squares of the targets on the fit-half probes) is the only reference; a model that is
    # exactly that least-squares fit (computed here with numpy) has error 0 against it
    prob, X, Y, Xp, Yp = blur
    half = len(Yp) // 2
    Yc = np.c_[Yp[:half], np.ones(half)]
    sol = np.linalg.lstsq(Yc, Xp[:half], rcond=None)[0]
    lin = torch.nn.Linear(prob.n_y, prob.n_x).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(sol[:-1].T))
        lin.bias.copy_(torch.as_tensor(sol[-1]))
    tr = Tracker(Yp, Xp, n_boot=20, n_jacobian=0)
    p = tr.update(lin, 0)
    assert tr.setup_.references == ["C_data"] and p.filter_factors is None and p.signal_noise is None
    assert p.errors["C_data"]["plug_in"] == pytest.approx(0.0, abs=1e-20)
    np.testing.assert_allclose(p.coef, sol[:-1].T, atol=1e-10)
    assert p.test_mse == pytest.approx(np.mean((Yp[half:] @ sol[:-1] + sol[-1] - Xp[half:]) ** 2), rel=1e-10)
