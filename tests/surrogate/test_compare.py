"""Tests of linlens.surrogate.compare against closed forms, Monte Carlo and basis-independence properties."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linlens.errors import ShapeError
from linlens.surrogate import LinearSurrogate, compare_operators, filter_factors


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
    assert cmp.k == 6 and cmp.log_spectral_distance == 0
    assert np.all(cmp.singular_value_rel_error == 0)
    assert np.max(cmp.left_angles) < 1e-7 and np.max(cmp.right_angles) < 1e-7
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
    assert cmp.eigs_C is None and cmp.eig_distances is None
    assert cmp.singular_value_rel_error[-1] > 1e6  # σ(R) there is rounding noise
    d = cmp.to_dict()
    assert d["eigs_C"] is None and d["rank_info_R"]["rank"] == 2
    json.dumps(d)
    with pytest.raises(ShapeError, match=r"\(7, 5\).*\(5, 7\)"):
        compare_operators(C, R.T)
    with pytest.raises(ShapeError, match="probes"):
        compare_operators(C, R, probes=np.ones((3, 7)))


