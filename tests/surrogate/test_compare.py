"""Tests of linlens.surrogate.compare against closed forms, Monte Carlo and basis-independence properties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linlens.errors import ConfigError, ShapeError
from linlens.problems import wiener_estimator
from linlens.surrogate import LinearSurrogate, compare_operators, filter_factors
from linlens.surrogate.compare import SignalNoiseModel, data_weighted_error, signal_noise_split, singular_value_clusters


def _orth(n, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))[0]


# ---------------------------------------------------------------------------------------- filter factors
def test_filter_factors_wiener_setup_from_data():
    """x ~ N(0, λI), y = A x + σ e; the least-squares fit of x on y has φᵢ = sᵢ²/(sᵢ² + σ²/λ)."""
    n, lam, sigma = 8, 2.0, 0.05
    s = np.logspace(0, -2, n)
    U, V = _orth(n, 10), _orth(n, 11)
    A = (U * s) @ V.T
    rng = np.random.default_rng(12)
    m = 200_000
    X = np.sqrt(lam) * rng.normal(size=(m, n))
    Y = X @ A.T + sigma * rng.normal(size=(m, n))
    C_data = LinearSurrogate().fit(Y, X).coef_
    ff = filter_factors(C_data, A)
    expected = s**2 / (s**2 + sigma**2 / lam)
    np.testing.assert_allclose(ff.singular_values, s, rtol=1e-12)
    np.testing.assert_allclose(ff.factors, expected, atol=1e-2)
    assert ff.leakage < 0.05
    # closed-form Wiener estimator: exact factors, no leakage; A⁻¹: all ones
    C_star = (V * (s / (s**2 + sigma**2 / lam))) @ U.T
    exact = filter_factors(C_star, A)
    np.testing.assert_allclose(exact.factors, expected, atol=1e-12)
    assert exact.leakage < 1e-12
    np.testing.assert_allclose(filter_factors(np.linalg.inv(A), A).factors, 1.0, atol=1e-10)
    json.dumps(ff.to_dict())


def test_filter_factors_rectangular_and_shapes():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 4))  # more data than unknowns
    ff = filter_factors(np.linalg.pinv(A), A)
    assert ff.matrix.shape == (4, 4)
    np.testing.assert_allclose(ff.factors, 1.0, atol=1e-12)
    A2 = rng.normal(size=(3, 6))  # underdetermined: A⁺A is a projector onto the row space
    np.testing.assert_allclose(filter_factors(np.linalg.pinv(A2), A2).factors, 1.0, atol=1e-12)
    with pytest.raises(ShapeError, match="C must have the shape"):
        filter_factors(A, A)


# ------------------------------------------------------------------------------------- compare operators
def test_compare_identical_is_zero():
    rng = np.random.default_rng(1)
    R = rng.normal(size=(6, 6))
    cmp = compare_operators(R, R, probes=rng.normal(size=(50, 6)))
    assert cmp.rel_fro_error == 0 and cmp.rel_spectral_error == 0 and cmp.data_weighted_error == 0
    assert cmp.log_spectral_distance == 0
    assert np.all(cmp.singular_value_rel_error == 0)
    # a random 6×6 matrix has no clear spectral gap in general: then no angles (never full-dimensional ones)
    sub = cmp.subspaces
    assert (cmp.k is None) == (sub.max_angle is None)
    if cmp.k is not None:
        assert sub.clear and cmp.k < 6 and sub.max_angle < 1e-7
    np.testing.assert_allclose(cmp.eig_distances, 0, atol=1e-12)
    json.dumps(cmp.to_dict())  # complex eigenvalues must serialize


def test_compare_scaled_and_data_weighted_closed_form():
    rng = np.random.default_rng(2)
    R = rng.normal(size=(5, 5))
    C = 2.0 * R
    cmp = compare_operators(C, R)
    assert cmp.rel_fro_error == pytest.approx(1.0) and cmp.rel_spectral_error == pytest.approx(1.0)
    np.testing.assert_allclose(cmp.singular_value_rel_error, 1.0)
    assert cmp.log_spectral_distance == pytest.approx(np.log(2))
    np.testing.assert_allclose(cmp.eigs_C, 2 * cmp.eigs_R, atol=1e-10)
    assert cmp.data_weighted_error is None
    # data-weighted error = tr(D Σ Dᵀ)/tr(R Σ Rᵀ) with Σ the probes' second moment
    C2 = R + 0.1 * rng.normal(size=(5, 5))
    P = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    Pc = P - P.mean(0)
    S = Pc.T @ Pc / len(P)  # centred: the surrogates carry intercepts
    D = C2 - R
    expected = np.trace(D @ S @ D.T) / np.trace(R @ S @ R.T)
    assert compare_operators(C2, R, probes=P).data_weighted_error == pytest.approx(expected, rel=1e-10)


def test_compare_eigen_matching_with_permuted_similar():
    rng = np.random.default_rng(3)
    Q = _orth(4, 3)
    lam = np.array([3.0, -1.0, 0.5, 2.0])
    R = Q @ np.diag(lam) @ Q.T
    C = Q @ np.diag(lam + 1e-3 * np.array([1, 2, 3, 4])) @ Q.T
    cmp = compare_operators(C, R)
    np.testing.assert_allclose(np.sort(cmp.eig_distances), 1e-3 * np.array([1, 2, 3, 4]), atol=1e-10)
    np.testing.assert_allclose(cmp.eig_condition_C, 1.0, rtol=1e-8)
    del rng


def test_compare_rectangular_rank_deficient():
    rng = np.random.default_rng(4)
    R = rng.normal(size=(7, 2)) @ rng.normal(size=(2, 5))  # rank 2
    C = R + 1e-6 * rng.normal(size=(7, 5))  # full rank, but only 2 directions shared
    cmp = compare_operators(C, R)
    assert cmp.rank_info_R.rank == 2 and cmp.rank_info_C.rank == 5 and cmp.k == 2
    assert cmp.rank_info_R.gap > 1e8
    assert cmp.left_angles.shape == (2,) and cmp.left_angles.max() < 1e-5
    # Wedin: sin θ ≤ ‖C − R‖₂/δ at the clear gap k = 2
    assert np.sin(cmp.subspaces.max_angle) <= cmp.subspaces.norm_bound
    assert cmp.eigs_C is None and cmp.eig_distances is None
    assert cmp.singular_value_rel_error[-1] > 1e6  # σ(R) there is rounding noise
    d = cmp.to_dict()
    assert d["eigs_C"] is None and d["rank_info_R"]["rank"] == 2
    json.dumps(d)
    with pytest.raises(ShapeError, match=r"\(7, 5\).*\(5, 7\)"):
        compare_operators(C, R.T)
    with pytest.raises(ShapeError, match="probes"):
        compare_operators(C, R, probes=np.ones((3, 7)))




# ----------------------------------------------------------------------------------- data-weighted error
def test_data_weighted_error_is_centred_and_scale_safe():
    rng = np.random.default_rng(20)
    P = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 50.0  # a large mean must not matter
    R = rng.normal(size=(3, 5))
    C = R + 0.2 * rng.normal(size=(3, 5))
    Pc = P - P.mean(0)
    expected = np.sum((Pc @ (C - R).T) ** 2) / np.sum((Pc @ R.T) ** 2)
    assert data_weighted_error(C, R, P) == pytest.approx(expected, rel=1e-12)
    assert data_weighted_error(np.zeros_like(R), R, P) == pytest.approx(1.0, rel=1e-12)
    for scale_p, scale_m in [(1e-150, 1e-150), (1e150, 1e150), (1e-300, 1.0), (1.0, 1e200)]:
        got = data_weighted_error(scale_m * C, scale_m * R, scale_p * P)
        assert got == pytest.approx(expected, rel=1e-10), (scale_p, scale_m)
    S = np.cov(P.T, bias=True)
    assert data_weighted_error(C, R, covariance=S) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ConfigError):
        data_weighted_error(C, R)
    with pytest.raises(ShapeError):
        data_weighted_error(C, R, P[:, :4])


# ----------------------------------------------------------------------------------- signal / noise split
def _problem(n=8, seed=30, rank=None):
    rng = np.random.default_rng(seed)
    s = np.logspace(0, -3, n)
    if rank is not None:
        s[rank:] = 0.0
    A = (_orth(n, seed) * s) @ _orth(n, seed + 1).T
    L = rng.normal(size=(n, n)) / np.sqrt(n) + np.eye(n)
    return A, L @ L.T


def test_signal_noise_split_reproduces_monte_carlo_test_error():
    """E‖Cy − x‖²/E‖x‖² by simulation equals signal + noise; the Wiener estimator's signal error equals the
    Monte Carlo E‖(CA − I)x‖²/E‖x‖²; bands add up."""
    A, Sx = _problem()
    sigma = 1e-2
    W = wiener_estimator(A, Sx, sigma)
    sp = signal_noise_split(W, A, Sx, noise_std=sigma, n_bands=4)
    rng = np.random.default_rng(31)
    m = 400_000
    X = rng.normal(size=(m, 8)) @ np.linalg.cholesky(Sx).T
    Y = X @ A.T + sigma * rng.normal(size=(m, 8))
    tr = np.trace(Sx)
    mc_total = np.mean(np.sum((Y @ W.T - X) ** 2, axis=1)) / tr
    mc_signal = np.mean(np.sum((X @ (W @ A - np.eye(8)).T) ** 2, axis=1)) / tr
    assert sp.total == pytest.approx(mc_total, rel=0.01)
    assert sp.signal_error == pytest.approx(mc_signal, rel=0.01)
    assert sp.null_space_error == 0.0
    assert sp.band_signal_error.sum() == pytest.approx(sp.signal_error, rel=1e-12)
    assert sp.band_noise_amplification.sum() == pytest.approx(sp.noise_amplification, rel=1e-12)
    assert sp.bands.tolist() == [[0, 2], [2, 4], [4, 6], [6, 8]]
    # the zero map: signal error 1, no noise; A⁻¹: no signal error, all noise
    z = signal_noise_split(np.zeros((8, 8)), A, Sx, noise_std=sigma)
    assert (z.signal_error, z.noise_amplification) == (pytest.approx(1.0), 0.0)
    inv = signal_noise_split(np.linalg.inv(A), A, Sx, noise_std=sigma)
    assert inv.signal_error < 1e-12
    assert inv.noise_amplification == pytest.approx(sigma**2 * np.sum(np.linalg.inv(A) ** 2) / tr, rel=1e-10)
    # noise lives in the small singular values: the last band carries almost all of A⁻¹'s amplification
    assert inv.band_noise_amplification[-1] > 0.8 * inv.noise_amplification


def test_signal_noise_split_rank_deficient_and_noise_covariance():
    A, Sx = _problem(rank=5)
    rng = np.random.default_rng(33)
    C = rng.normal(size=(8, 8)) * 0.1
    Se = np.diag(rng.uniform(0.5, 2.0, size=8)) * 1e-3
    sp = signal_noise_split(C, A, Sx, noise_covariance=Se)
    tr = np.trace(Sx)
    total = (np.trace((C @ A - np.eye(8)) @ Sx @ (C @ A - np.eye(8)).T) + np.trace(C @ Se @ C.T)) / tr
    assert sp.total == pytest.approx(total, rel=1e-10)
    P = np.linalg.pinv(A) @ A
    assert sp.signal_error == pytest.approx(np.trace((C @ A - P) @ Sx @ (C @ A - P).T) / tr, rel=1e-10)
    assert sp.null_space_error != 0.0
    # per band of A's right singular basis (the split works in that basis): rows of Vᵀ(CA − P) under Σₓ, explicitly
    model = SignalNoiseModel(A, Sx, noise_covariance=Se, n_bands=3)
    G = model.Vt @ (C @ A - P)
    rows = np.sum((G @ Sx) * G, axis=1) / tr
    np.testing.assert_allclose(model.split(C).band_signal_error, [rows[a:b].sum() for a, b in model.bands],
                               rtol=1e-10, atol=1e-15)
    with pytest.raises(ConfigError):
        signal_noise_split(C, A, Sx)  # no noise level given
    with pytest.raises(ShapeError):
        signal_noise_split(C[:, :7], A, Sx, noise_std=0.1)


# ----------------------------------------------------------------------- filter factors, repeated sᵢ
def _circular_blur_2d(m=16, width=1.0):
    i = np.arange(m)
    dist = np.minimum(i, m - i)
    k = np.exp(-(dist**2) / (2 * width**2))
    k /= k.sum()
    C1 = np.stack([np.roll(k, j) for j in range(m)], axis=1)  # circulant
    return np.kron(C1, C1)


def test_filter_factors_do_not_depend_on_the_svd_basis_within_clusters():
    """A circular blur of 16×16 images has its singular values in groups of 4 or 8: the diagonal of Φ changes
    between two valid SVDs, the cluster means linlens reports do not."""
    A = _circular_blur_2d()
    clusters = singular_value_clusters(np.linalg.svd(A, compute_uv=False), shape=A.shape)
    sizes = np.diff(clusters, axis=1).ravel()
    assert sizes.max() >= 4 and sizes.sum() == 256
    rng = np.random.default_rng(40)
    C = np.linalg.pinv(A, rcond=1e-3) + 0.05 * rng.normal(size=A.shape)
    ff = filter_factors(C, A)
    # a second valid SVD: rotate singular vectors within each cluster by a random orthogonal matrix
    U, s, Vt = np.linalg.svd(A)
    Q = np.eye(256)
    for a, b in clusters:
        if b - a > 1:
            Q[a:b, a:b] = _orth(b - a, int(a))
    U2, V2 = U @ Q, Vt.T @ Q
    np.testing.assert_allclose((U2 * s) @ V2.T, A, atol=1e-12)
    Phi1, Phi2 = Vt @ C @ A @ Vt.T, V2.T @ C @ A @ V2
    assert np.max(np.abs(np.diag(Phi1) - np.diag(Phi2))) > 0.02  # the raw diagonal is basis-dependent
    for a, b in clusters:
        np.testing.assert_allclose(ff.factors[a:b], np.trace(Phi2[a:b, a:b]) / (b - a), atol=1e-10)
    # leakage is invariant too
    model = np.zeros_like(Phi2)
    for a, b in clusters:
        model[a:b, a:b] = np.trace(Phi2[a:b, a:b]) / (b - a) * np.eye(b - a)
    assert ff.leakage == pytest.approx(np.linalg.norm(Phi2 - model) / np.linalg.norm(Phi2), rel=1e-8)


def test_unrelated_random_operators_get_no_trivially_small_angles():
    """The old default compared full-dimensional subspaces: two unrelated random 64×64 matrices got a largest
    angle of 2e-15. Now: no clear gap → no angles; with a forced proper k the angles are large."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        C, R = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
        cmp = compare_operators(C, R)
        assert cmp.k is None and cmp.left_angles is None and "gap" in cmp.subspaces.reason
        forced = compare_operators(C, R, k=8)
        assert forced.subspaces.max_angle > 1.0 and not forced.subspaces.clear


def test_precomputed_svds_give_the_same_comparison_and_filter_factors():
    """A caller that already factorized C and R (the analyze report does, once per operator) gets exactly what
    the self-contained call gives; ‖C − R‖₂ (ARPACK above 256) agrees with numpy's 2-norm; SVDs of the wrong
    matrix shape are refused instead of giving silently wrong numbers."""
    from linlens.linalg import pinv_svd, svd

    rng = np.random.default_rng(5)
    n = 300
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    R = (U[:, :3] * [10.0, 5.0, 1.0]) @ U[:, :3].T + 0.01 * rng.normal(size=(n, n))  # a clear gap at k = 3
    C = R + 0.002 * rng.normal(size=(n, n))
    P = rng.normal(size=(400, n))
    a = compare_operators(C, R, probes=P)
    b = compare_operators(C, R, probes=P, svd_C=svd(C), svd_R=svd(R))
    assert a.k == b.k and a.k is not None
    np.testing.assert_allclose(b.subspaces.left_angles, a.subspaces.left_angles, atol=1e-12)
    assert b.rel_spectral_error == pytest.approx(np.linalg.norm(C - R, 2) / np.linalg.norm(R, 2), rel=1e-10)
    assert b.subspaces.norm_bound == pytest.approx(a.subspaces.norm_bound, rel=1e-10)
    A = np.linalg.pinv(R)
    f1 = filter_factors(C, A)
    f2 = filter_factors(C, A, svd_A=pinv_svd(svd(R), R.shape))
    np.testing.assert_allclose(f2.singular_values, f1.singular_values, rtol=1e-8)
    np.testing.assert_allclose(f2.factors, f1.factors, atol=1e-8)
    f3 = filter_factors(C, svd_A=pinv_svd(svd(R), R.shape))  # A is not needed when its SVD is given
    np.testing.assert_array_equal(f3.factors, f2.factors)
    with pytest.raises(ConfigError, match="give the forward operator"):
        filter_factors(C)
    with pytest.raises(ShapeError, match="thin SVD"):
        compare_operators(C, R, svd_C=svd(C[:, :-1]))


def test_comparison_from_every_value_and_the_leading_vectors_of_C_equals_the_full_svds():
    """The analyze report factorizes C by svd_leading (every singular value, 128 leading vectors): the comparison
    (spectra, ranks, the whole principal-angle profile, the angles and Wedin bounds at the cut) equals the one from
    full SVDs; with a clear gap, and on an ill-conditioned blur (κ ≈ 1e8) without one; fewer leading vectors
    than the profile needs are refused."""
    from linlens.linalg import svd, svd_leading
    from linlens.problems import gaussian_blur

    rng = np.random.default_rng(7)
    n = 600
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    gap = (U[:, :3] * [10.0, 5.0, 1.0]) @ U[:, :3].T + 0.01 * rng.normal(size=(n, n))
    ks = []
    for R in (gap, gaussian_blur(n, width=2.0)):
        C = R + 1e-3 * rng.normal(size=(n, n)) / np.sqrt(n)
        a = compare_operators(C, R, covariance=np.eye(n), svd_C=svd(C), svd_R=svd(R))
        b = compare_operators(C, R, covariance=np.eye(n), svd_C=svd_leading(C, 128), svd_R=svd(R))
        assert a.k == b.k and a.rank_info_C.rank == b.rank_info_C.rank
        ks.append(a.k)
        top = a.singular_values_C[0]
        np.testing.assert_allclose(b.singular_values_C, a.singular_values_C, rtol=0, atol=1e-13 * top)
        for f in ("max_angles", "left_max_angles", "right_max_angles", "wedin_bounds", "deltas", "clear"):
            np.testing.assert_allclose(getattr(b.subspaces.profile, f), getattr(a.subspaces.profile, f), atol=1e-9,
                                       rtol=1e-9)
        if a.k is not None:
            np.testing.assert_allclose(b.subspaces.left_angles, a.subspaces.left_angles, atol=1e-12)
            assert b.subspaces.wedin_bound == pytest.approx(a.subspaces.wedin_bound, rel=1e-9)
    assert ks[0] is not None and ks[1] is None  # a cut with angles in the first case, the blur has no clear gap
    with pytest.raises(ShapeError, match="leading vectors"):
        compare_operators(C, R, svd_C=svd_leading(C, 100))


def test_comparison_with_the_leading_values_of_R_only_says_so_and_computes_nothing_from_the_rest():
    """svd_R with the leading 129 of 600 values (svd_leading(n_values=), the study's references above its size rule):
    the spectrum is reported as "leading 129 of 600" and equals numpy's leading values (independent route), R's rank
    and the log-spectral distance are None with the reason in ``omitted`` (a rank or an RMS over every index cannot
    come from 129 values), the relative errors per index cover those 129, and the principal-angle profile and cut —
    which need σ_1..σ_129 only — equal the full comparison's; a partial spectrum with as many values as vectors (no
    σ_k+1 at the last cut) limits the profile, and a forced cut beyond it is refused."""
    from linlens.linalg import svd, svd_leading

    rng = np.random.default_rng(8)
    n = 600
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    R = (U[:, :3] * [10.0, 5.0, 1.0]) @ U[:, :3].T + 0.01 * rng.normal(size=(n, n))
    C = R + 1e-3 * rng.normal(size=(n, n)) / np.sqrt(n)
    a = compare_operators(C, R, covariance=np.eye(n), svd_C=svd(C), svd_R=svd(R))
    part = svd_leading(R, 128, method="gram", n_values=129)
    b = compare_operators(C, R, covariance=np.eye(n), svd_C=svd(C), svd_R=part)
    np.testing.assert_allclose(b.singular_values_R, np.linalg.svd(R, compute_uv=False)[:129], rtol=0,
                               atol=1e-12 * a.singular_values_R[0])
    assert b.spectra == {"C": "all 600", "R": "leading 129 of 600"} and a.spectra == {"C": "all 600", "R": "all 600"}
    assert a.omitted == {} and a.rank_info_R.rank == n and a.log_spectral_distance is not None
    assert b.rank_info_R is None and b.log_spectral_distance is None and b.subspaces.rank_R is None
    assert set(b.omitted) == {"rank_info_R", "log_spectral_distance"}
    assert b.rank_info_C.rank == a.rank_info_C.rank and len(b.singular_value_rel_error) == 129
    np.testing.assert_allclose(b.singular_value_rel_error, a.singular_value_rel_error[:129], rtol=1e-9, atol=1e-12)
    assert a.k is not None and a.k == b.k
    assert b.subspaces.max_angle == pytest.approx(a.subspaces.max_angle, rel=1e-6, abs=1e-12)
    for f in ("max_angles", "wedin_bounds", "deltas", "gaps_R", "clear"):
        np.testing.assert_allclose(getattr(b.subspaces.profile, f), getattr(a.subspaces.profile, f), atol=1e-9,
                                   rtol=1e-9)
    d = b.to_dict()
    assert d["log_spectral_distance"] is None and "every value" in d["omitted"]["rank_info_R"]
    short = svd_leading(R, 128, method="gram", n_values=128)  # no σ_129: the profile stops at k = 127
    c = compare_operators(C, R, svd_C=svd(C), svd_R=short)
    assert len(c.subspaces.profile.max_angles) == 127 and c.k == a.k
    with pytest.raises(ConfigError, match="needs σ_k"):
        compare_operators(C, R, k=128, svd_C=svd(C), svd_R=short)


@pytest.mark.parametrize("m,block", [(100, 16), (97, 10), (30, 16)])
def test_symmetric_product_equals_the_full_product(m, block):
    """compare._symmetric_product (A Σₓ Aᵀ, VᵀΣₓV of SignalNoiseModel: the blocks on and above the diagonal)
    equals the full product X Yᵀ to rounding and is exactly symmetric; blocks that do not divide m, the small case."""
    from linlens.surrogate.compare import _symmetric_product

    rng = np.random.default_rng(12)
    A, G = rng.normal(size=(m, m)), rng.normal(size=(m, m))
    X = A @ (G @ G.T)
    P = _symmetric_product(X, A, block=block)
    np.testing.assert_allclose(P, X @ A.T, rtol=0, atol=1e-13 * np.abs(P).max())
    assert np.array_equal(P, P.T)


@pytest.mark.parametrize("shape,rank", [((12, 12), 12), ((12, 12), 9), ((10, 14), 10)])
def test_signal_rows_equal_the_direct_formula(shape, rank):
    """SignalNoiseModel.signal_rows(C): Φ_s V_rᵀ must be Vᵀ(CA − P) formed directly (P = A⁺A from numpy's pinv), B_rr
    the leading block of VᵀΣₓV, and the per-component quadratic forms (Φ_s B_rr Φ_sᵀ)ᵢᵢ/tr Σₓ the diagonal of
    Vᵀ(CA − P)Σₓ(CA − P)ᵀV/tr Σₓ (direct products), whose band sums are the split's (1e-10 relative); on a full-rank,
    a rank-deficient and a wide A. After split(C) the same arrays come back (no product); another array is computed."""
    rng = np.random.default_rng(11)
    n_y, n_x = shape
    Ua, Va = np.linalg.qr(rng.normal(size=(n_y, n_y)))[0], np.linalg.qr(rng.normal(size=(n_x, n_x)))[0]
    s = np.r_[np.geomspace(3.0, 0.05, rank), np.zeros(min(shape) - rank)]
    A = (Ua[:, : s.size] * s) @ Va[:, : s.size].T
    G = rng.normal(size=(n_x, n_x))
    Sx = G @ G.T / n_x + 0.1 * np.eye(n_x)
    C = rng.normal(size=(n_x, n_y))
    snm = SignalNoiseModel(A, Sx, 0.1, n_bands=3)
    sp = snm.split(C)
    Phi_s, B, PB = snm.signal_rows(C)
    assert snm.signal_rows(C)[0] is Phi_s  # reused from the split of the same array
    r = s.size
    P = np.linalg.pinv(A) @ A
    E = snm.Vt @ (C @ A - P)  # rows of Vᵀ(CA − P), directly
    np.testing.assert_allclose(Phi_s @ snm.Vt[:r], E, rtol=0, atol=1e-12 * np.abs(E).max())
    np.testing.assert_allclose(B, (snm.Vt @ Sx @ snm.Vt.T)[:r, :r], rtol=0, atol=1e-12 * np.abs(Sx).max())
    direct = np.einsum("ij,jk,ik->i", E, Sx, E) / np.trace(Sx)
    rows = np.sum(Phi_s * PB, axis=1) / np.trace(Sx)
    np.testing.assert_allclose(rows, direct, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sp.band_signal_error, [direct[a:b].sum() for a, b in sp.bands], rtol=1e-10)
    fresh = SignalNoiseModel(A, Sx, 0.1, n_bands=3).signal_rows(C.copy())  # computed without a split first
    np.testing.assert_allclose(fresh[2], PB, rtol=0, atol=1e-12 * np.abs(PB).max())


def test_signal_noise_model_takes_the_callers_full_svd_of_A():
    """A study factorizes A once: the model built from the caller's full SVD splits every C exactly as the one
    that factorizes A itself (second route), and an SVD of another shape is refused."""
    from linlens.linalg import svd
    from linlens.surrogate.compare import SignalNoiseModel

    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 7))
    Sx = np.cov(rng.normal(size=(40, 7)).T)
    C = rng.normal(size=(7, 5))
    own = SignalNoiseModel(A, Sx, 0.1, n_bands=3).split(C)
    given = SignalNoiseModel(A, Sx, 0.1, n_bands=3, svd_A=svd(A, full_matrices=True)).split(C)
    for k in ("signal_error", "noise_amplification", "null_space_error", "total"):
        assert getattr(given, k) == pytest.approx(getattr(own, k), rel=1e-12)
    np.testing.assert_allclose(given.band_signal_error, own.band_signal_error, rtol=1e-12)
    with pytest.raises(ShapeError, match="full SVD"):
        SignalNoiseModel(A, Sx, 0.1, svd_A=svd(A))


@pytest.mark.parametrize("case", ["invertible", "rank-deficient", "cut by tol"])
def test_pinv_split_and_filter_factors_in_closed_form_equal_the_products_of_an_independent_pseudo_inverse(case):
    """SignalNoiseModel.pinv() gives A⁺ with its Vᵀ A⁺ and Φ = [I_r, 0] in closed form (no d³ product): its split
    and filter factors must equal those of numpy's pseudo-inverse (cut at the same rank), split by the general route
    on a copy (second algorithm: LAPACK products, not the closed form); Φ is I exactly on the kept components."""
    rng = np.random.default_rng(5)
    n = 9
    U, V = _orth(n, 51), _orth(n, 52)
    s = np.logspace(0, -3, n)
    tol = None
    if case == "rank-deficient":
        s[6:] = 0.0
    elif case == "cut by tol":
        tol = 2e-3  # the float32-operator cut: components below it are dropped from A⁺
    A = (U * s) @ V.T
    Sx = np.cov(rng.normal(size=(60, n)).T)
    model = SignalNoiseModel(A, Sx, 0.05, n_bands=3)
    R = model.pinv(tol)
    keep = s > (tol if tol is not None else 1e-12)
    R_np = np.linalg.pinv(A, rcond=(tol / s[0]) if tol is not None else 1e-12)
    assert int(keep.sum()) == np.linalg.matrix_rank(R_np)
    np.testing.assert_allclose(R, R_np, rtol=1e-9, atol=1e-12 * np.abs(R_np).max())
    closed, ff = model.split(R), model.filter_factors(R)
    general = SignalNoiseModel(A, Sx, 0.05, n_bands=3)
    R_copy = R_np.copy()
    ref, ff_ref = general.split(R_copy), general.filter_factors(R_copy)
    for k in ("signal_error", "null_space_error", "noise_amplification", "total"):
        assert getattr(closed, k) == pytest.approx(getattr(ref, k), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(closed.band_signal_error, ref.band_signal_error, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(closed.band_noise_amplification, ref.band_noise_amplification, rtol=1e-9, atol=1e-20)
    np.testing.assert_allclose(ff.factors, ff_ref.factors, atol=1e-9)
    np.testing.assert_array_equal(ff.factors[: int(keep.sum())], 1.0)
    assert ff.leakage == 0.0 and ff_ref.leakage < 1e-8
    if case == "invertible":
        assert closed.signal_error == 0.0
        # noise amplification of A⁻¹ in closed form: σ² Σ 1/sᵢ² / tr Σₓ
        assert closed.noise_amplification == pytest.approx(0.05**2 * np.sum(1 / s**2) / np.trace(Sx), rel=1e-12)
    # the cache is per array: a different C (even equal in value) takes the general route
    other = model.split(R.copy())
    assert other.total == pytest.approx(closed.total, rel=1e-9)


def test_split_of_an_array_changed_in_place_is_computed_again():
    """Only pinv()'s own A⁺ reuses a closed form; any other C is multiplied out at each split, so a caller that
    updates C in place (a tracker's buffer) gets the split of the new values (the explicit route as the truth)."""
    rng = np.random.default_rng(2)
    A = rng.normal(size=(6, 6))
    Sx = np.cov(rng.normal(size=(40, 6)).T)
    model = SignalNoiseModel(A, Sx, 0.1, n_bands=2)
    C = rng.normal(size=(6, 6))
    model.split(C)
    C *= 2.0
    fresh = SignalNoiseModel(A, Sx, 0.1, n_bands=2).split(C.copy())
    assert model.split(C).total == pytest.approx(fresh.total, rel=1e-12)


def test_signal_noise_model_caches_see_an_array_changed_in_place():
    """SignalNoiseModel reuses Vᵀ C, Φ and the signal rows of the last split for the same array object: after the
    array is changed in place (and after pinv()'s A⁺ is changed in place) every result must equal a fresh model's
    on the new values (independent route: a new SignalNoiseModel, no cache)."""
    rng = np.random.default_rng(3)
    d = 6
    A = rng.normal(size=(d, d)) + 3 * np.eye(d)
    Sx = np.cov(rng.normal(size=(40, d)).T)
    C = rng.normal(size=(d, d))
    snm = SignalNoiseModel(A, Sx, 0.1, n_bands=2)
    snm.split(C)
    C *= 2.0
    C[0, 1] += 0.5
    fresh = SignalNoiseModel(A, Sx, 0.1, n_bands=2)
    for got, want in zip(snm.signal_rows(C), fresh.signal_rows(C.copy()), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(snm.filter_factors(C).matrix, fresh.filter_factors(C.copy()).matrix, rtol=1e-12)
    assert snm.split(C).signal_error == pytest.approx(fresh.split(C.copy()).signal_error, rel=1e-12)
    R = snm.pinv()
    R[:, 0] *= 0.5  # no longer A⁻¹: the closed form must not be used
    assert snm.split(R).signal_error == pytest.approx(fresh.split(R.copy()).signal_error, rel=1e-12)
    assert snm.split(R).signal_error > 1e-3
    np.testing.assert_allclose(snm.filter_factors(R).matrix, fresh.filter_factors(R.copy()).matrix, rtol=1e-12,
                               atol=1e-14)


def test_leading_filter_factors_equal_the_full_route_on_those_pairs():
    """R's leading pairs (svd_leading's Gram route, 40 pairs + 1 value of a 300 × 300 R) give the filter factors
    numpy's full SVD gives on those indices (φⱼ = uⱼᵀ C vⱼ / σⱼ, R = A⁻¹), and the same Φ block as
    filter_factors(C, A = R⁺) in A's order; a cluster of equal values cut by the boundary is dropped whole (its
    cluster mean, kept by the full route, needs all of it); values at R's rank cut are refused."""
    from linlens.linalg import svd_leading
    from linlens.surrogate.compare import leading_filter_factors

    rng = np.random.default_rng(3)
    d = 300
    Q1, Q2 = (np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(2))
    s = np.geomspace(5.0, 0.01, d)
    R = (Q1 * s) @ Q2.T
    C = R @ (np.eye(d) + 0.2 * rng.normal(size=(d, d)) / np.sqrt(d))  # a perturbed R: Φ not diagonal
    U, sn, Vt = np.linalg.svd(R)
    phi = np.einsum("ij,ik,kj->j", U, C, Vt.T) / sn
    ff = leading_filter_factors(C, svd_leading(R, 40, method="gram", n_values=41))
    assert len(ff.factors) == 40
    np.testing.assert_allclose(ff.factors[::-1], phi[:40], rtol=0, atol=1e-10)
    full = filter_factors(C, np.linalg.pinv(R))
    np.testing.assert_allclose(np.abs(ff.matrix), np.abs(full.matrix[-40:, -40:]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ff.singular_values, full.singular_values[-40:], rtol=1e-10)

    s2 = s.copy()
    s2[39] = s2[40] = s2[41] = s[40]  # pairs 40–42 (1-based) equal: the 40th pair's cluster goes past the cut
    R2 = (Q1 * s2) @ Q2.T
    U2, sn2, Vt2 = np.linalg.svd(R2)
    ff2 = leading_filter_factors(C, svd_leading(R2, 40, method="gram", n_values=41))
    assert len(ff2.factors) == 39  # the cut cluster is dropped whole
    phi2 = np.einsum("ij,ik,kj->j", U2, C, Vt2.T) / sn2
    np.testing.assert_allclose(ff2.factors[::-1], phi2[:39], rtol=0, atol=1e-10)

    low = (Q1[:, :50] * s[:50]) @ Q2[:, :50].T  # rank 50: its leading 51 values reach the rank cut
    with pytest.raises(ConfigError, match="numerical-rank cut"):
        leading_filter_factors(C, svd_leading(low, 50, method="gram", n_values=51))


def _brute_split(A, Sx, sigma, W, bands, Vt_signs):
    """The split of W by its definition (independent route): CA − I under Σₓ, σ²‖·‖² of the rows of Vᵀ W, per band of
    A's right singular basis (numpy's SVD), and the filter-factor matrix Vᵀ W A V (V with the signs of Vt_signs)."""
    _, s, Vt = np.linalg.svd(A)
    Vt = Vt * np.sign(np.sum(Vt * Vt_signs, axis=1))[:, None]
    E = Vt @ (W @ A - np.eye(A.shape[1]))
    sig_rows = np.sum((E @ Sx) * E, axis=1) / np.trace(Sx)
    G = Vt @ W
    noise_rows = sigma**2 * np.sum(G * G, axis=1) / np.trace(Sx)
    band = lambda r: np.array([r[a:b].sum() for a, b in bands])  # noqa: E731
    return band(sig_rows), band(noise_rows), Vt @ W @ A @ Vt.T


@pytest.mark.parametrize("kappa, sigma", [(1e3, 0.1), (1e8, 1e-2), (1e8, 0.3)])
def test_adopt_wiener_split_in_as_basis_equals_an_independent_solve(kappa, sigma):
    """adopt_wiener takes the Wiener estimator's Φ = Ṽ S K⁻¹ S in A's basis (no rotations of W): its split and filter
    factors must equal those of W formed by an independent route (np.linalg.solve of (AΣₓAᵀ + σ²I) X = AΣₓ, split by
    the definition in numpy's SVD basis) and those of the general route (a model that did not adopt it) — on an
    ill-conditioned A (κ up to 1e8) with an estimated Σₓ (correlated, 3 samples per unknown)."""
    rng = np.random.default_rng(7)
    n = 40
    U, V = _orth(n, 61), _orth(n, 62)
    A = (U * np.logspace(0, -np.log10(kappa), n)) @ V.T
    X = rng.normal(size=(3 * n, n)) @ (rng.normal(size=(n, n)) / np.sqrt(n)).T
    Sx = np.cov(X.T, bias=True)
    W = np.linalg.solve(A @ Sx @ A.T + sigma**2 * np.eye(n), A @ Sx).T
    model = SignalNoiseModel(A, Sx, sigma, n_bands=4)
    assert model.adopt_wiener(W)
    sp, ff = model.split(W), model.filter_factors(W)
    general = SignalNoiseModel(A, Sx, sigma, n_bands=4)
    ref, ff_ref = general.split(W), general.filter_factors(W)
    b_sig, b_noise, Phi = _brute_split(A, Sx, sigma, W, model.bands, model.Vt)
    total = sp.signal_error + sp.noise_amplification
    for got, want in ((sp.band_signal_error, b_sig), (sp.band_noise_amplification, b_noise),
                      (sp.band_signal_error, ref.band_signal_error),
                      (sp.band_noise_amplification, ref.band_noise_amplification)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * total)
    assert sp.total == pytest.approx(ref.total, rel=1e-12) and sp.null_space_error == 0.0
    np.testing.assert_allclose(ff.matrix, Phi, rtol=0, atol=1e-10 * np.abs(Phi).max())
    np.testing.assert_allclose(ff.factors, ff_ref.factors, rtol=0, atol=1e-10)
    assert ff.leakage == pytest.approx(ff_ref.leakage, rel=1e-9)


def test_adopt_wiener_refuses_what_is_not_this_models_wiener_estimator():
    """Nothing is adopted (False; the next split multiplies W out) for a W that is not this model's Wiener estimator
    (1e-6 off, another σ), a non-square A, or a noise covariance; the split then equals the general route's."""
    rng = np.random.default_rng(8)
    n = 12
    A = _orth(n, 71) * np.logspace(0, -2, n)
    Sx = np.cov(rng.normal(size=(50, n)).T)
    W = wiener_estimator(A, Sx, 0.1)
    model = SignalNoiseModel(A, Sx, 0.1, n_bands=3)
    for other in (W * (1 + 1e-6), wiener_estimator(A, Sx, 0.11)):
        assert not model.adopt_wiener(other)
        ref = SignalNoiseModel(A, Sx, 0.1, n_bands=3).split(other.copy())
        np.testing.assert_allclose(model.split(other).band_signal_error, ref.band_signal_error, rtol=1e-12)
    assert model.adopt_wiener(W)
    assert not SignalNoiseModel(A, Sx, noise_covariance=0.01 * np.eye(n)).adopt_wiener(W)
    A2 = np.vstack([A, A[:2]])
    assert not SignalNoiseModel(A2, Sx, 0.1).adopt_wiener(wiener_estimator(A2, Sx, 0.1))
