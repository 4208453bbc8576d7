"""Tests of linlens.koopman.dmd against closed forms (known linear systems, known spectra) and PyDMD."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from linlens.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError
from linlens.koopman.dmd import HankelDMD, delay_embed, randomized_svd


def match_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Max relative difference after optimally matching two eigenvalue lists."""
    a, b = np.asarray(a, complex), np.asarray(b, complex)
    cost = np.abs(a[:, None] - b[None, :])
    i, j = linear_sum_assignment(cost)
    assert len(i) == len(a) == len(b)
    return float(np.max(np.abs(a[i] - b[j]) / np.maximum(np.abs(b[j]), 1e-300)))


TRUE_EIGS = np.array([0.95 * np.exp(0.3j), 0.8 * np.exp(1.1j), 0.99 * np.exp(2.0j)])


def rotation_system(eigs: np.ndarray = TRUE_EIGS) -> np.ndarray:
    """Block-diagonal real matrix whose eigenvalues are ``eigs`` and their conjugates."""
    n = 2 * len(eigs)
    A = np.zeros((n, n))
    for k, lam in enumerate(eigs):
        A[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = [[lam.real, -lam.imag], [lam.imag, lam.real]]
    rng = np.random.default_rng(3)
    S = rng.normal(size=(n, n))  # similarity transform: same eigenvalues, not block diagonal
    return S @ A @ np.linalg.inv(S)


def simulate(A: np.ndarray, x0: np.ndarray, n_steps: int) -> np.ndarray:
    xs = [x0]
    for _ in range(n_steps - 1):
        xs.append(A @ xs[-1])
    return np.array(xs)


def all_eigs(eigs: np.ndarray = TRUE_EIGS) -> np.ndarray:
    return np.concatenate([eigs, eigs.conj()])


@pytest.fixture(scope="module")
def linear_data() -> tuple[np.ndarray, np.ndarray]:
    A = rotation_system()
    rng = np.random.default_rng(0)
    trajs = np.stack([simulate(A, rng.normal(size=6), 30) for _ in range(5)])  # (5, 30, 6)
    return A, trajs


def test_delay_embed_newest_first() -> None:
    x = torch.arange(10.0).reshape(5, 2)  # x_t = [2t, 2t+1]
    z = delay_embed(x, 2)
    assert z.shape == (3, 6)
    # z_2 = [x_2; x_1; x_0]
    assert z[0].tolist() == [4.0, 5.0, 2.0, 3.0, 0.0, 1.0]


@pytest.mark.parametrize("exact", [False, True])
def test_recovers_eigenvalues_full_state(linear_data, exact: bool) -> None:
    _, trajs = linear_data
    dmd = HankelDMD(delays=2, rank=6, exact=exact, backend="numpy").fit(trajs)
    assert dmd.eigs.shape == (6,)
    assert match_rel(dmd.eigs, all_eigs()) < 1e-8
    assert dmd.modes.shape == (18, 6) and dmd.operator.shape == (6, 6)
    assert np.isrealobj(dmd.operator)
    assert dmd.basis_.shape == (18, 6) and dmd.right_singular_vectors_.shape == (5 * 27, 6)
    # modes are eigenvectors of the full-state map: A_full Φ = Φ Λ on the delay space
    A_full = dmd.exact_basis_ @ dmd.basis_.T
    assert np.allclose(A_full @ dmd.modes, dmd.modes * dmd.eigs, atol=1e-9)


def test_recovers_eigenvalues_partial_observation() -> None:
    """Observing 2 of 6 states: delay coordinates are needed (Hankel), h = 3 gives an 8-dim lift of rank 6."""
    A = rotation_system()
    C = np.random.default_rng(1).normal(size=(2, 6))
    rng = np.random.default_rng(2)
    trajs = np.stack([simulate(A, rng.normal(size=6), 40) @ C.T for _ in range(4)])
    dmd = HankelDMD(delays=3, rank=6, backend="numpy").fit(trajs)
    assert match_rel(dmd.eigs, all_eigs()) < 1e-8
    # without delays the rank-2 lift cannot represent the 6-dim dynamics
    plain = HankelDMD(delays=0, rank=2, backend="numpy").fit(trajs)
    assert plain.eigs.shape == (2,)


def test_matches_pydmd_single_trajectory() -> None:
    pydmd = pytest.importorskip("pydmd")
    rng = np.random.default_rng(5)
    t = np.arange(300)
    freqs = [0.05, 0.13, 0.31]
    x = np.stack(
        [np.cos(f * t + p) * 0.995**t for f, p in zip(freqs, [0.1, 0.7, 1.3], strict=True)]
        + [np.sin(0.05 * t) * np.cos(0.31 * t)],
        axis=1,
    )
    x = x @ rng.normal(size=(4, 5)) + 1e-3 * rng.normal(size=(300, 5))  # (300, 5), noisy
    h, r = 6, 8
    ours = HankelDMD(delays=h, rank=r, backend="numpy", svd="full").fit(x[None])
    ref = pydmd.HankelDMD(svd_rank=r, d=h + 1)  # PyDMD: d = window length = h + 1, snapshots as columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(x.T)
    assert match_rel(ours.eigs, ref.eigs) < 1e-6
    # same rank with the randomized SVD (forced)
    rnd = HankelDMD(delays=h, rank=r, backend="numpy", svd="randomized").fit(x[None])
    assert match_rel(rnd.eigs, ref.eigs) < 1e-6


def test_windows_never_cross_trajectories(linear_data) -> None:
    A, _ = linear_data
    rng = np.random.default_rng(11)
    t1 = simulate(A, rng.normal(size=6), 12)
    t2 = simulate(A, 10 * rng.normal(size=6), 12)
    ours = HankelDMD(delays=1, rank=6, backend="numpy").fit(np.stack([t1, t2]))
    assert match_rel(ours.eigs, all_eigs()) < 1e-8
    # list input, different lengths: same answer
    ours_list = HankelDMD(delays=1, rank=6, backend="numpy").fit([t1, t2[:9]])
    assert match_rel(ours_list.eigs, all_eigs()) < 1e-8
    # end-to-end concatenation (what pykoopman/PyDMD do with stacked trajectories) adds spurious pairs
    concat = HankelDMD(delays=1, rank=6, backend="numpy").fit(np.concatenate([t1, t2])[None])
    assert match_rel(concat.eigs, all_eigs()) > 1e-3


@pytest.mark.parametrize("readout", ["projected", "exact"])
def test_predict_matches_true_future(linear_data, readout: str) -> None:
    A, trajs = linear_data
    h = 2
    dmd = HankelDMD(delays=h, rank=6).fit(torch.as_tensor(trajs))
    rng = np.random.default_rng(7)
    test = np.stack([simulate(A, rng.normal(size=6), 12) for _ in range(3)])  # (3, 12, 6)
    window = torch.as_tensor(test[:, : h + 1])  # oldest first
    pred = dmd.predict(window, steps=12 - h - 1, readout=readout)
    assert isinstance(pred, torch.Tensor) and pred.shape == (3, 9, 6)
    np.testing.assert_allclose(pred.numpy(), test[:, h + 1 :], atol=1e-9, rtol=0)
    # lift / advance / readout compose to the projected prediction
    y = dmd.advance(dmd.lift(window), 3)
    np.testing.assert_allclose(dmd.readout(y).numpy(), test[:, h + 3], atol=1e-9)
    # numpy in -> numpy out
    assert isinstance(dmd.predict(test[:, : h + 1]), np.ndarray)


def test_exact_readout_differs_from_projected_off_span() -> None:
    """On data outside span(U_r) the exact readout applies Y V Σ⁻¹ without projecting back first."""
    rng = np.random.default_rng(0)
    trajs = rng.normal(size=(20, 6, 4))
    dmd = HankelDMD(delays=1, rank=3, backend="numpy").fit(trajs)
    w = rng.normal(size=(5, 2, 4))
    z = w[:, ::-1].reshape(5, -1)
    U, B = dmd.basis_, dmd.exact_basis_
    expected_exact = (z @ U @ B.T)[:, :4]
    expected_proj = (z @ U @ dmd.operator.T @ U.T)[:, :4]
    np.testing.assert_allclose(dmd.predict(w, readout="exact")[:, 0], expected_exact, atol=1e-12)
    np.testing.assert_allclose(dmd.predict(w, readout="projected")[:, 0], expected_proj, atol=1e-12)
    assert not np.allclose(expected_exact, expected_proj)


def test_float32_and_torch_backend(linear_data) -> None:
    _, trajs = linear_data
    dmd = HankelDMD(delays=2, rank=6, dtype=torch.float32).fit(torch.as_tensor(trajs, dtype=torch.float32))
    assert dmd.eigs.dtype == torch.complex64 and dmd.operator.dtype == torch.float32
    assert match_rel(dmd.eigs.numpy(), all_eigs()) < 1e-4
    dmd_s = HankelDMD(delays=2, rank=6, dtype="float32", backend="numpy").fit(trajs)
    assert dmd_s.eigs.dtype == np.complex64


def test_randomized_matches_full_svd_eigenvalues() -> None:
    rng = np.random.default_rng(1)
    n_traj, T, dim = 2, 400, 16
    A = rotation_system(np.array([0.99 * np.exp(1j * w) for w in np.linspace(0.1, 2.8, 8)]))
    A = np.kron(np.eye(2), A)[:dim, :dim]
    trajs = np.stack([simulate(A, rng.normal(size=dim), T) for _ in range(n_traj)])
    trajs += 1e-6 * rng.normal(size=trajs.shape)
    full = HankelDMD(delays=19, rank=12, svd="full", backend="numpy").fit(trajs)
    rnd = HankelDMD(delays=19, rank=12, backend="numpy").fit(trajs)  # auto → randomized here (320 × 760)
    assert rnd.power_iterations_ >= 1
    assert match_rel(rnd.eigs, full.eigs) < 1e-8
    np.testing.assert_allclose(rnd.singular_values_[:12], full.singular_values_[:12], rtol=1e-10)


def test_randomized_svd_slow_decay_adaptive() -> None:
    """Singular values 1/i: the adaptive power iteration converges to the full SVD's leading subspace."""
    rng = np.random.default_rng(0)
    m, n = 300, 500
    P, _ = np.linalg.qr(rng.normal(size=(m, m)))
    Q, _ = np.linalg.qr(rng.normal(size=(n, m)))
    s = 1.0 / np.arange(1, m + 1)
    X = torch.as_tensor((P * s) @ Q.T)
    (U, sv, Vt), n_iter = randomized_svd(X, 10, return_n_iter=True)
    np.testing.assert_allclose(sv[:10].numpy(), s[:10], rtol=1e-10)
    cosines = np.linalg.svd(P[:, :10].T @ U[:, :10].numpy(), compute_uv=False)
    assert cosines.min() > 1 - 1e-12
    assert n_iter > 2


def _known_spectrum_traj(s: np.ndarray, n_rows: int, seed: int = 0) -> np.ndarray:
    """A single trajectory whose delays=0 data matrix X (first n_rows snapshots) has singular values s."""
    rng = np.random.default_rng(seed)
    dim = len(s)
    P, _ = np.linalg.qr(rng.normal(size=(n_rows, dim)))
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    Xt = (P * s) @ Q.T  # (n_rows, dim): rows are snapshots x_0..x_{n_rows-1}
    return np.concatenate([Xt, rng.normal(size=(1, dim))])[None]


def test_rank_energy_rule_known_spectrum() -> None:
    s = np.array([10.0, 5.0, 3.0, 1.0, 0.5, 0.1])
    traj = _known_spectrum_traj(s, 50)
    energy = np.cumsum(s**2) / np.sum(s**2)  # 0.735, 0.919, 0.985, ...
    for frac in (0.5, 0.9, 0.95, 0.99):
        dmd = HankelDMD(delays=0, rank=frac, backend="numpy").fit(traj)
        np.testing.assert_allclose(dmd.singular_values_, s, rtol=1e-12)
        assert dmd.rank_ == int(np.argmax(energy >= frac)) + 1
    assert HankelDMD(delays=0, rank=None, backend="numpy").fit(traj).rank_ == 6


def test_rank_optimal_rule_known_spectrum() -> None:
    rng = np.random.default_rng(4)
    n, dim = 400, 60
    signal = rng.normal(size=(n, 4)) @ rng.normal(size=(4, dim)) * 3.0
    traj = (signal + 0.05 * rng.normal(size=(n, dim)))[None]
    dmd = HankelDMD(delays=0, rank="optimal", backend="numpy").fit(traj)
    assert dmd.rank_ == 4
    pydmd_utils = pytest.importorskip("pydmd.utils")
    assert dmd.rank_ == pydmd_utils._compute_rank(dmd.singular_values_, dim, n - 1, 0)


def test_rank_beyond_numerical_rank_warns() -> None:
    traj = _known_spectrum_traj(np.array([3.0, 2.0, 1.0, 0.0, 0.0, 0.0]), 40)
    with pytest.warns(Warning, match="numerical rank"):
        dmd = HankelDMD(delays=0, rank=5, backend="numpy").fit(traj)
    assert dmd.rank_ == 3


def test_amplitudes_fit_first_delay_vector(linear_data) -> None:
    _, trajs = linear_data
    dmd = HankelDMD(delays=2, rank=6, backend="numpy").fit(trajs)
    z0 = trajs[0, 2::-1].reshape(-1)  # [x_2; x_1; x_0] of trajectory 0
    np.testing.assert_allclose((dmd.modes @ dmd.amplitudes).real, z0, atol=1e-9)


def test_bad_input() -> None:
    x = np.random.default_rng(0).normal(size=(2, 10, 3))
    bad = x.copy()
    bad[1, 4, 2] = np.nan
    with pytest.raises(NonFiniteError, match="trajectories"):
        HankelDMD(delays=1, rank=2).fit(bad)
    with pytest.raises(ShapeError, match="3-D"):
        HankelDMD(delays=1, rank=2).fit(x[0])
    with pytest.raises(ConfigError, match="rank=50"):
        HankelDMD(delays=1, rank=50).fit(x)
    with pytest.raises(ConfigError, match="delays"):
        HankelDMD(delays=-1).fit(x)
    with pytest.raises(ConfigError, match="n_steps"):
        HankelDMD(delays=9).fit(x)
    with pytest.raises(ConfigError, match="rank"):
        HankelDMD(rank=1.5).fit(x)
    with pytest.raises(ConfigError, match="backend"):
        HankelDMD(backend="jax").fit(x)
    with pytest.raises(NotFittedError):
        HankelDMD().predict(x[:, :2])
    dmd = HankelDMD(delays=1, rank=2).fit(x)
    with pytest.raises(ShapeError, match="window"):
        dmd.predict(x[:, :3])
    with pytest.raises(ConfigError, match="readout"):
        dmd.predict(x[:, :2], readout="both")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(linear_data) -> None:
    _, trajs = linear_data
    cpu = HankelDMD(delays=2, rank=6).fit(trajs)
    gpu = HankelDMD(delays=2, rank=6, device="cuda").fit(trajs)
    assert gpu.eigs.device.type == "cuda"
    assert match_rel(gpu.eigs.cpu().numpy(), cpu.eigs.numpy()) < 1e-8
    w = torch.as_tensor(trajs[:, :3], device="cuda")
    np.testing.assert_allclose(gpu.predict(w, 4).cpu().numpy(), cpu.predict(trajs[:, :3], 4), atol=1e-8)


def test_n_features_in_and_deprecated_alias(linear_data) -> None:
    _, trajs = linear_data
    dmd = HankelDMD(delays=1, rank=6, backend="numpy").fit(trajs)
    assert dmd.n_features_in_ == trajs.shape[-1] == 6
    with pytest.warns(DeprecationWarning, match="n_features_in_"):
        assert dmd.n_features_ == 6
    assert not hasattr(HankelDMD(), "n_features_in_")  # learned attributes exist only after fit


def test_default_device_is_auto(linear_data) -> None:
    # one name per idea (issue 13): "auto" everywhere, resolved by linlens.nn.resolve_device
    _, trajs = linear_data
    dmd = HankelDMD(delays=2, rank=6).fit(trajs)
    assert dmd.device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert dmd.eigs.device.type == expected
    if expected == "cpu":  # CPU-only machines compute exactly what the old default "cpu" computed
        old = HankelDMD(delays=2, rank=6, device="cpu").fit(trajs)
        assert torch.equal(dmd.eigs, old.eigs) and torch.equal(dmd.operator, old.operator)


def test_meta_tensors_are_refused_in_one_line():
    """Issue 15: meta-device tensors (shapes without values) gave a NotImplementedError traceback."""
    import torch

    from linlens.errors import ShapeError
    from linlens.koopman.dmd import HankelDMD

    with pytest.raises(ShapeError, match="meta"):
        HankelDMD(delays=1, rank=1).fit(torch.ones((3, 5, 2), device="meta"))
    with pytest.raises(ShapeError, match="meta"):
        HankelDMD(delays=1, rank=1).fit([torch.ones((5, 2), device="meta")])
