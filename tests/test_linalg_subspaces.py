"""Tests of linlens.linalg.subspaces against scipy, brute force, closed forms and perturbation theory."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from scipy.stats import ortho_group

from linlens.errors import ConfigError, ShapeError
from linlens.linalg import (
    eigenvalue_condition_numbers,
    match_eigenvalues,
    principal_angles,
    principal_subspace,
    subspace_comparison,
)
from linlens.linalg.subspaces import KRYLOV_MAX_STEPS, KRYLOV_TOL


# --------------------------------------------------------------------------------------- principal angles
def test_principal_angles_closed_form():
    t = 0.3
    a = np.array([[1.0], [0.0]])
    b = np.array([[np.cos(t)], [np.sin(t)]])
    assert principal_angles(a, b)[0] == pytest.approx(t)
    with pytest.raises(ShapeError):
        principal_angles(np.eye(3), np.eye(2))
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(9, 3)), rng.normal(size=(9, 4))
    np.testing.assert_allclose(principal_angles(A, B), np.sort(subspace_angles(A, B)), atol=1e-12)
    P = rng.normal(size=(3, 2))  # two planes in R^3 share a line: one angle is exactly 0
    assert principal_angles(P, rng.normal(size=(3, 2)))[0] < 1e-14


@settings(max_examples=30, deadline=None)
@given(m=st.integers(3, 10), p=st.integers(1, 3), q=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_principal_angles_invariant_to_basis(m, p, q, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, p))
    B = rng.normal(size=(m, q))
    ref = principal_angles(A, B)
    flips = rng.choice([-1.0, 1.0], size=p)
    Qp = ortho_group.rvs(p, random_state=seed) if p > 1 else np.array([[-1.0]])
    Qq = ortho_group.rvs(q, random_state=seed + 1) if q > 1 else np.array([[1.0]])
    np.testing.assert_allclose(principal_angles(A * flips, B), ref, atol=1e-10)
    np.testing.assert_allclose(principal_angles(A @ Qp, B @ Qq), ref, atol=1e-10)
    np.testing.assert_allclose(principal_angles(B, A), ref, atol=1e-10)
    assert np.all(np.diff(ref) >= -1e-15) and len(ref) == min(p, q)


# ------------------------------------------------------------------------------------------ eigenvalues
@pytest.mark.parametrize("p,q", [(3, 3), (4, 2), (2, 5), (5, 5)])
def test_match_eigenvalues_vs_brute_force(p, q):
    rng = np.random.default_rng(p * 10 + q)
    lam = rng.normal(size=p) + 1j * rng.normal(size=p)
    mu = rng.normal(size=q) + 1j * rng.normal(size=q)
    rows, cols, dist = match_eigenvalues(lam, mu)
    best = np.inf
    if p <= q:
        for perm in itertools.permutations(range(q), p):
            best = min(best, sum(abs(lam[i] - mu[j]) for i, j in enumerate(perm)))
    else:
        for perm in itertools.permutations(range(p), q):
            best = min(best, sum(abs(lam[i] - mu[j]) for j, i in enumerate(perm)))
    assert dist.sum() == pytest.approx(best, rel=1e-12)
    np.testing.assert_allclose(dist, np.abs(lam[rows] - mu[cols]))
    assert len(rows) == min(p, q) and len(set(cols)) == len(cols)


def test_eigenvalue_condition_numbers_closed_form():
    a, d, b = 1.0, 3.0, 5.0
    eigs, cond = eigenvalue_condition_numbers(np.array([[a, b], [0.0, d]]))
    np.testing.assert_allclose(eigs, [3.0, 1.0])
    np.testing.assert_allclose(cond, np.sqrt(1 + (b / (a - d)) ** 2) * np.ones(2), rtol=1e-12)
    Q = ortho_group.rvs(6, random_state=0)
    S = Q @ np.diag(np.arange(1.0, 7.0)) @ Q.T  # normal: all condition numbers 1
    _, c = eigenvalue_condition_numbers(S)
    np.testing.assert_allclose(c, 1.0, rtol=1e-10)
    with pytest.raises(ShapeError):
        eigenvalue_condition_numbers(np.ones((2, 3)))


# ------------------------------------------------------------------------------ gap-aware comparison
def _wedin_bound_numpy(C, R, k):
    """Independent Wedin bound (Stewart & Sun Thm V.4.4) in both orientations, the smaller one, by numpy."""
    E = C - R
    out = []
    for A, B in ((R, C), (C, R)):
        U, s, Vt = np.linalg.svd(A)
        sb = np.linalg.svd(B, compute_uv=False)
        delta = s[k - 1] - (sb[k] if k < len(sb) else 0.0)
        res = max(np.linalg.norm(E @ Vt[:k].T, 2), np.linalg.norm(E.T @ U[:, :k], 2))
        out.append(res / delta if delta > 0 else np.inf)
    return min(out)


@pytest.mark.parametrize("seed", range(3))
def test_unrelated_random_operators_get_no_trivially_small_angles(seed):
    rng = np.random.default_rng(seed)
    C, R = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    res = subspace_comparison(C, R)
    assert res.k is None and res.left_angles is None and res.max_angle is None
    assert "no clear spectral gap" in res.reason
    for k in (1, 5, 32, 63):  # forced cuts: the subspaces of unrelated operators are far apart
        forced = subspace_comparison(C, R, k=k)
        assert forced.k == k and not forced.clear
        assert forced.max_angle > 1.0  # radians (57°); scipy agrees
        Uc, Ur = np.linalg.svd(C)[0], np.linalg.svd(R)[0]
        assert np.max(subspace_angles(Uc[:, :k], Ur[:, :k])) == pytest.approx(
            forced.left_angles.max(), abs=1e-10)
    # the old default (k = full dimension) is the trivial comparison: flagged, angles ~ 0
    full = subspace_comparison(C, R, k=64)
    assert not full.clear and "trivially" in full.reason and full.max_angle < 1e-6
    # the profile: every proper cut has a large largest angle, no cut is marked clear
    assert res.profile.max_angles[:-1].min() > 0.5 and not res.profile.clear.any()


@settings(max_examples=30, deadline=None)
@given(m=st.integers(6, 30), n=st.integers(6, 30), data=st.data())
def test_low_rank_plus_perturbation_obeys_wedin(m, n, data):
    r = data.draw(st.integers(1, min(m, n) - 2))
    eps = data.draw(st.floats(1e-7, 1e-2))
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    s = rng.uniform(1.0, 1.9, size=r)  # relative gaps inside the signal stay below 0.5: the only clear cut is r
    U = np.linalg.qr(rng.normal(size=(m, r)))[0]
    V = np.linalg.qr(rng.normal(size=(n, r)))[0]
    R = (U * s) @ V.T
    C = R + eps * rng.normal(size=(m, n))
    res = subspace_comparison(C, R)
    assert res.k == r and res.clear
    # independent route: scipy angles against the Wedin bound computed here with numpy
    Uc, sc, Vct = np.linalg.svd(C)
    Ur, sr, Vrt = np.linalg.svd(R)
    theta = max(np.max(subspace_angles(Uc[:, :r], Ur[:, :r])), np.max(subspace_angles(Vct[:r].T, Vrt[:r].T)))
    simple = np.linalg.norm(C - R, 2) / (sr[r - 1] - sc[r])
    assert np.sin(theta) <= simple * (1 + 1e-9) + 1e-15
    assert res.max_angle == pytest.approx(theta, rel=1e-6, abs=1e-12)
    assert res.wedin_bound == pytest.approx(_wedin_bound_numpy(C, R, r), rel=1e-9)
    assert np.sin(res.max_angle) <= res.wedin_bound * (1 + 1e-9) + 1e-15
    assert res.wedin_bound <= res.norm_bound * (1 + 1e-12)
    assert res.delta > 0  # small angles are guaranteed by the bound checked above


def test_subspace_comparison_closed_form_rotation():
    t = 0.3
    C = np.diag([4.0, 1.0, 0.5])
    G = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    res = subspace_comparison(C, G @ C)  # left vectors rotated by t, right vectors unchanged
    assert res.k == 1  # clear at k = 1 (gaps 0.75) and k = 2 (0.5); the larger gap wins
    assert res.left_angles[0] == pytest.approx(t, abs=1e-12) and res.right_angles[0] == pytest.approx(0, abs=1e-12)
    assert res.profile.clear.tolist() == [True, True, False]
    np.testing.assert_allclose(res.profile.left_max_angles[:2], [t, 0.0], atol=1e-7)  # k = 2: the same plane
    assert np.sin(t) <= res.wedin_bound <= res.norm_bound
    assert res.delta == pytest.approx(4.0 - 1.0)  # σ_1 − σ_2 of the other operator (both spectra are equal)
    d = res.to_dict()
    json.dumps(d)
    assert d["k"] == 1 and d["profile"]["clear"] == [True, True, False]


def test_subspace_comparison_inputs():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(10, 2)) @ rng.normal(size=(2, 8))
    a = subspace_comparison(torch.as_tensor(R), R + 1e-9)
    assert a.k == 2 and a.rank_C.rank == 2
    none = subspace_comparison(np.zeros((4, 4)), np.eye(4))
    assert none.k is None and "no cut" in none.reason
    with pytest.raises(ShapeError):
        subspace_comparison(np.eye(3), np.eye(4))
    with pytest.raises(ConfigError):
        subspace_comparison(np.eye(3), np.eye(3), min_gap=0.0)
    with pytest.raises(ConfigError):
        subspace_comparison(np.eye(3), np.eye(3), k=4)


def test_plot_subspace_angles_marks_gaps_and_the_cut():
    import matplotlib.pyplot as plt

    from linlens.report.figures import plot_subspace_angles

    C = np.diag([4.0, 1.0, 0.5])
    res = subspace_comparison(C, C)
    fig = plot_subspace_angles(res)
    ax = fig.axes[0]
    assert len(ax.patches) == int(res.profile.clear.sum()) == 2  # one band per clear gap
    star = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(star) == 1 and star[0].get_xdata()[0] == res.k
    plt.close(fig)
    rng = np.random.default_rng(0)
    none = subspace_comparison(rng.normal(size=(8, 8)), rng.normal(size=(8, 8)), min_gap=0.99)
    fig = plot_subspace_angles(none)
    assert "no angles reported" in fig.axes[0].get_title()
    assert not [ln for ln in fig.axes[0].lines if ln.get_marker() == "*"]
    plt.close(fig)


@pytest.mark.parametrize("shape", [(8, 8), (12, 7), (6, 10)])
def test_operator_against_itself_has_angles_below_1e_12(shape):
    """Issue 21: the profile took arccos of cosines within eps of 1 (3.65e-8 rad for an operator against itself);
    the sine/cosine combination (Knyazev & Argentati 2002) gives rounding-level angles at every k."""
    rng = np.random.default_rng(sum(shape))
    m, n = shape
    C = rng.normal(size=(m, min(m, n))) @ np.diag(np.logspace(1, -2, min(m, n))) @ rng.normal(size=(min(m, n), n))
    res = subspace_comparison(C, C.copy(), k=2)
    assert res.profile.max_angles.max() <= 1e-12
    assert res.max_angle <= 1e-12
    assert principal_angles(C[:, : min(m, n)], C[:, : min(m, n)].copy()).max() <= 1e-12


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("eps", [1e-6, 1e-2, 1.0])
def test_angle_profile_matches_scipy_subspace_angles(seed, eps):
    """Every k of the profile (small, medium and large angles) against scipy.linalg.subspace_angles, an
    independent implementation, on the same singular vectors."""
    rng = np.random.default_rng(seed)
    m, n = 9, 6
    C = rng.normal(size=(m, n))
    R = C + eps * rng.normal(size=(m, n))
    res = subspace_comparison(C, R, max_k=None)
    Uc, _, Vtc = np.linalg.svd(C, full_matrices=False)
    Ur, _, Vtr = np.linalg.svd(R, full_matrices=False)
    for k in range(1, n + 1):
        left = subspace_angles(Uc[:, :k], Ur[:, :k]).max()
        right = subspace_angles(Vtc[:k].T, Vtr[:k].T).max()
        assert res.profile.left_max_angles[k - 1] == pytest.approx(left, rel=1e-8, abs=1e-14)
        assert res.profile.right_max_angles[k - 1] == pytest.approx(right, rel=1e-8, abs=1e-14)
    A, B = rng.normal(size=(m, 3)), rng.normal(size=(m, 4))
    np.testing.assert_allclose(principal_angles(A, B), np.sort(subspace_angles(A, B)), rtol=1e-10, atol=1e-14)



@pytest.mark.parametrize("seed", [25, 80, 92, 169, 193])
def test_lambda_max_of_near_identity_blocks(seed):
    # regression: these blocks (the identity up to rounding, as two equal subspaces give) made LAPACK's syevr
    # (scipy eigvalsh with subset_by_index) raise "Internal Error" mid-report; the largest eigenvalue is 1 ± 1e-14
    from linlens.linalg.subspaces import _lambda_max

    E = np.random.default_rng(seed).normal(size=(10, 10)) * 3e-16
    assert abs(_lambda_max(np.eye(10) + (E + E.T) / 2) - 1.0) < 1e-14


def test_profile_of_equal_subspaces_near_identity_blocks():
    # regression: LAPACK's syevr raised "Internal Error" on this near-identity 10 x 10 block (an operator
    # compared with a copy of itself up to rounding); every angle must be ~0
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(64, 64)))
    C = Q @ np.diag(np.logspace(0, -3, 64)) @ Q.T
    R = C + 1e-15 * rng.normal(size=C.shape)
    out = subspace_comparison(C, R, max_k=20)
    assert np.all(out.profile.max_angles <= 1e-6)


# ------------------------------------------------------------------------------- principal_subspace
def _data(n, d, spectrum, seed):
    """Centred data (n, d) with the given singular values along random orthonormal directions (and those)."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(n, len(spectrum))))[0]
    V = np.linalg.qr(rng.normal(size=(d, len(spectrum))))[0]
    X = (U * spectrum) @ V.T
    return X - X.mean(0)


@pytest.mark.parametrize("method", ["gram", "randomized", "krylov"])
@pytest.mark.parametrize("shape", [(300, 120), (120, 300)])
def test_principal_subspace_equals_numpy_svd_at_a_gap(method, shape):
    """A clear gap at k: both routes give numpy's top-k right singular subspace (principal angles ~0), singular
    values and σ_{k+1}; the residuals they report are at rounding level (Krylov with a tolerance of 1e-12 on every
    pair's relative residual)."""
    n, d = shape
    X = _data(n, d, np.r_[np.linspace(10, 5, 8), 0.5 * 0.9 ** np.arange(100)], 0)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    p = principal_subspace(X, 8, method=method, **({"tol": 1e-12} if method == "krylov" else {}))
    assert p.method == method and p.converged
    assert principal_angles(p.Vt.T, Vt[:8].T).max() < 1e-7
    assert np.allclose(p.Vt @ p.Vt.T, np.eye(8), atol=1e-12)
    assert np.allclose(p.s, s[:8], rtol=1e-10) and p.s_next == pytest.approx(s[8], rel=1e-6)
    assert p.max_residual < 1e-8


def test_principal_subspace_float32_randomized_on_a_slowly_decaying_spectrum():
    """σᵢ = i^(−1/2): no clear gap at k = 20. The float32 randomized route (≤ 7 power iterations) is checked against
    numpy's exact subspace: (1) every sᵢ lies within sᵢ·residualᵢ of an exact singular value (the residual bound the
    route reports); (2) Wedin: where s_k − σ_{k+1} = δ > 0, the largest principal angle to the exact top-k subspace
    obeys sin θ ≤ ‖[sᵢ·residualᵢ]‖₂ / δ; (3) the subspace captures ≥ 99% of the exact top-k variance."""
    X = _data(600, 400, 1.0 / np.sqrt(np.arange(1, 401)), 1)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    k = 20
    p = principal_subspace(X.astype(np.float32), k, method="randomized")
    assert p.method == "randomized" and p.n_iter <= 7
    abs_res = p.s * p.residuals
    assert all(np.min(np.abs(s - si)) <= ri * (1 + 1e-3) + 1e-5 for si, ri in zip(p.s, abs_res, strict=True))
    theta = principal_angles(p.Vt.T, Vt[:k].T).max()
    delta = p.s[-1] - s[k]
    if delta > 0:
        assert np.sin(theta) <= np.linalg.norm(abs_res) / delta + 1e-5
    captured = np.sum((X @ p.Vt.T) ** 2) / np.sum(s[:k] ** 2)
    assert 0.99 <= captured <= 1 + 1e-12
    # the exact route on the same data: angles at rounding level, and its gap is the exact one
    q = principal_subspace(X, k, method="gram")
    assert principal_angles(q.Vt.T, Vt[:k].T).max() < 1e-6
    assert q.relative_gap == pytest.approx((s[k - 1] - s[k]) / s[k - 1], rel=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_krylov_route_on_a_slowly_decaying_spectrum_beats_power_iterations(dtype):
    """σᵢ = i^(−1/2), k = 20 (no gap): against numpy's exact subspace, the block Krylov route's pairs obey the
    residual bound it reports (each sᵢ within sᵢ·residualᵢ of an exact singular value) and Wedin's bound, it captures
    at least the variance that 7 power iterations capture (and ≥ 99.9% of the exact top-k variance), with at most
    2(q + 1) + 1 ≤ 11 products against their 16."""
    X = _data(600, 400, 1.0 / np.sqrt(np.arange(1, 401)), 1)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    k = 20
    p = principal_subspace(X.astype(dtype), k, method="krylov")
    r = principal_subspace(X.astype(dtype), k, method="randomized")
    assert p.method == "krylov" and 1 <= p.n_iter <= 4
    abs_res = p.s * p.residuals
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert all(np.min(np.abs(s - si)) <= ri * (1 + 1e-3) + tol for si, ri in zip(p.s, abs_res, strict=True))
    delta = p.s[-1] - s[k]
    if delta > 0:
        assert np.sin(principal_angles(p.Vt.T, Vt[:k].T).max()) <= np.linalg.norm(abs_res) / delta + tol
    exact = np.sum(s[:k] ** 2)
    got, power = np.sum((X @ p.Vt.T) ** 2), np.sum((X @ r.Vt.T) ** 2)
    assert power - 1e-9 * exact <= got <= exact * (1 + 1e-9) and got >= 0.999 * exact
    assert np.allclose(p.Vt @ p.Vt.T, np.eye(k), atol=1e-12)


def test_krylov_route_on_data_of_low_rank():
    """Rank 5 < the block width: the Krylov space is exhausted after one block; the top-3 subspace and singular
    values are numpy's, σ₄ too, and the residuals are at rounding level."""
    X = _data(200, 80, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 3)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    p = principal_subspace(X, 3, method="krylov")
    assert p.converged and principal_angles(p.Vt.T, Vt[:3].T).max() < 1e-7
    assert np.allclose(p.s, s[:3], rtol=1e-10) and p.s_next == pytest.approx(s[3], rel=1e-8)
    assert p.max_residual < 1e-8


def _dominant(seed=0):
    """The reviewer's case: n = 2000, d = 600, σ₁ = 1000, σ₂..₂₀ from 1.0 to 0.9, the rest 0.8 down to 0.5."""
    return _data(2000, 600, np.r_[1000.0, np.linspace(1.0, 0.9, 19), np.linspace(0.8, 0.5, 580)], seed)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_krylov_with_a_dominant_direction_never_says_converged_on_a_wrong_subspace(dtype, transpose):
    """One dominant direction (σ₁ = 1000) and a clear gap at k = 20 (σ₂₀ = 0.9, σ₂₁ = 0.8): the first Krylov stop rule
    (a step's gain against the whole captured variance, and a rounding cut relative to the whole block) said
    "converged" after 1 step on a subspace 88° from numpy's. Now, against numpy's exact SVD: ``converged`` holds
    exactly when every reported residual is within the tolerance; the residual bound (each sᵢ within sᵢ·residualᵢ of
    an exact singular value) and Wedin's bound on the largest angle hold, the largest angle is below 0.1 rad; with the
    default 4 steps (or in float32, whose rounded products leave residuals ~7e-3 here) the route does not claim
    convergence, and in float64 given the steps it needs it converges to numpy's subspace, s_k and gap. Transposed
    (600 rows, 2000 columns) the route iterates on Xᵀ (the basis in the smaller space) and returns X's right vectors
    from its products: the same guarantees against numpy's SVD of that matrix."""
    X = _dominant().T if transpose else _dominant()
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    k = 20
    exact_gap = (s[k - 1] - s[k]) / s[k - 1]
    rounding = 1e-4 if dtype == np.float32 else 1e-10
    for steps in (KRYLOV_MAX_STEPS, 12):
        p = principal_subspace(X.astype(dtype), k, method="krylov", max_steps=steps)
        assert p.Vt.shape == (k, X.shape[1]) and np.allclose(p.Vt @ p.Vt.T, np.eye(k), atol=1e-12)
        assert p.converged == (p.max_residual <= KRYLOV_TOL)
        abs_res = p.s * p.residuals
        assert all(np.min(np.abs(s - si)) <= ri * (1 + 1e-3) + rounding * s[0] for si, ri in zip(p.s, abs_res,
                                                                                                  strict=True))
        theta = principal_angles(p.Vt.T, Vt[:k].T).max()
        delta = p.s[-1] - s[k]
        assert delta > 0 and np.sin(theta) <= np.linalg.norm(abs_res) / delta + rounding
        assert theta < 0.1 and p.s[-1] == pytest.approx(s[k - 1], rel=1e-3)  # was 88°, s_k 0.69 for 0.90
        if steps == KRYLOV_MAX_STEPS or dtype == np.float32:  # too few steps, or float32 (products rounded to
            assert not p.converged and p.max_residual > KRYLOV_TOL  # ~1e-7·σ₁ = 1e-4·σ₂₀): it must say so
        else:
            assert p.converged and p.n_iter < 12
            assert theta < 1e-2 and p.s[-1] == pytest.approx(s[k - 1], rel=1e-5)
            assert p.relative_gap == pytest.approx(exact_gap, rel=0.05)  # s_(k+1) a Ritz estimate


@pytest.mark.parametrize("method,dtype", [("gram", np.float64), ("randomized", np.float64),
                                          ("randomized", np.float32), ("krylov", np.float64),
                                          ("krylov", np.float32)])
@pytest.mark.parametrize("shape", [(200, 50), (50, 200)])
def test_every_route_gives_k_components_above_the_rank_and_on_zero_data(method, dtype, shape):
    """Rank 3, k = 5: every route returns k orthonormal rows (the Krylov route returned 3, and crashed on X = 0); the
    first 3 span numpy's row space with its singular values, the other 2 are (numerically) null directions of X
    (‖X v‖ ≤ 1e-5·σ₁, sᵢ ≤ 1e-5·σ₁); X = 0 gives k orthonormal rows at s = 0 and no error."""
    n, d = shape
    X = _data(n, d, np.array([9.0, 5.0, 2.0]), 4)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    close = 1e-5 if dtype == np.float32 else 1e-9
    p = principal_subspace(X.astype(dtype), 5, method=method)
    assert p.Vt.shape == (5, d) and p.s.shape == (5,) and p.residuals.shape == (5,)
    assert np.allclose(p.Vt @ p.Vt.T, np.eye(5), atol=1e-10)
    assert principal_angles(p.Vt[:3].T, Vt[:3].T).max() < np.sqrt(close)
    assert np.allclose(p.s[:3], s[:3], rtol=close) and np.all(p.s[3:] <= 1e-5 * s[0])
    assert np.linalg.norm(X @ p.Vt[3:].T, axis=0).max() <= 1e-5 * s[0]
    if method != "randomized":
        assert p.converged and p.s_next <= 1e-5 * s[0]
    z = principal_subspace(np.zeros((n, d), dtype=dtype), 5, method=method)
    assert z.Vt.shape == (5, d) and np.allclose(z.Vt @ z.Vt.T, np.eye(5), atol=1e-10)
    assert np.all(z.s == 0) and z.converged


@pytest.mark.parametrize("shape", [(20, 10), (10, 20), (1, 7), (7, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_krylov_at_k_equal_to_the_smaller_dimension(shape, dtype):
    """k = min(n, d): the whole row space; singular values equal numpy's, σ_(k+1) = 0 as in the Gram route."""
    X = np.random.default_rng(2).normal(size=shape)
    k = min(shape)
    s = np.linalg.svd(X, compute_uv=False)
    p = principal_subspace(X.astype(dtype), k, method="krylov")
    assert p.converged and p.Vt.shape == (k, shape[1]) and np.allclose(p.Vt @ p.Vt.T, np.eye(k), atol=1e-10)
    assert np.allclose(p.s, s[:k], rtol=1e-5 if dtype == np.float32 else 1e-12) and p.s_next == 0.0


def test_principal_subspace_refuses_bad_input():
    X = np.ones((5, 3))
    for kw, msg in (({"k": 0}, "k must"), ({"k": 4}, "k must"), ({"k": 1, "method": "svd"}, "method must"),
                    ({"k": 1, "method": "krylov", "X": X.astype(np.int64)}, "float32 or float64"),
                    ({"k": 1, "method": "gram", "X": X.astype(np.float32)}, "float64")):
        with pytest.raises(ConfigError, match=msg):
            principal_subspace(**({"X": X} | kw))


@pytest.mark.parametrize("shape", [(60, 300), (300, 60)])
def test_krylov_float64_does_not_say_converged_on_a_tail_below_its_resolution(shape):
    """σ = [1 ×5, 1e-10·(1 … 0.5) ×20], k = 15, float64: the Krylov route's Ritz values come from the squared Gram
    PᵀP, which cannot resolve values below √(pε)·σ₁ ≈ 1e-7·σ₁, so its directions 6 … 15 are not numpy's top-15:
    it must not say converged (it did, with cosines 0.02 to numpy's subspace). The 5 resolved pairs equal numpy's
    (independent route: LAPACK's SVD) and the unresolved values are returned as 0, never as wrong positive values;
    the Gram route's exact answer is unaffected."""
    n, d = shape
    sv = np.r_[np.ones(5), 1e-10 * np.linspace(1.0, 0.5, 20)]
    X = _data(n, d, sv, 5)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    p = principal_subspace(X, 15, method="krylov")
    assert not p.converged
    assert np.allclose(p.s[:5], s[:5], rtol=1e-12) and np.all(p.s[5:] == 0.0)
    assert principal_angles(p.Vt[:5].T, Vt[:5].T).max() < 1e-6
    low = principal_subspace(_data(n, d, np.array([3.0, 2.0, 1.0, 1.0, 1.0]), 5), 8, method="krylov")
    assert low.converged  # an exactly rank-deficient X: its zero directions are zeros to rounding
