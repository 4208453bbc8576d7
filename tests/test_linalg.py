"""Tests of linlens.linalg against independent routes (numpy/scipy, closed forms, brute force, properties)."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from scipy.stats import ortho_group

from linlens.errors import ConfigError, NonFiniteError, ShapeError
from linlens.linalg import (
    GramAccumulator,
    TSQRAccumulator,
    eigenvalue_condition_numbers,
    match_eigenvalues,
    numerical_rank,
    principal_angles,
    randomized_svd,
    svd,
    truncated_svd,
)


def _with_spectrum(m: int, n: int, s: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(m, len(s))))[0]
    V = np.linalg.qr(rng.normal(size=(n, len(s))))[0]
    return (U * s) @ V.T


# -------------------------------------------------------------------------------------------------- svd
@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5)])
def test_svd_reconstructs_with_sign_rule(shape):
    A = np.random.default_rng(1).normal(size=shape)
    U, s, Vt = svd(A)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-13)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=1e-13)
    assert np.all(np.diff(s) <= 0)
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(U.shape[1])] > 0)
    # the same matrix with flipped columns of U (a different but valid SVD) gives the same factors
    U2, s2, Vt2 = svd(-A)
    np.testing.assert_allclose(U2, U, atol=1e-12)
    np.testing.assert_allclose(Vt2, -Vt, atol=1e-12)


def test_svd_full_matrices_orthogonal():
    A = np.random.default_rng(2).normal(size=(6, 3))
    U, s, Vt = svd(A, full_matrices=True)
    assert U.shape == (6, 6) and Vt.shape == (3, 3)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-13)
    np.testing.assert_allclose(U[:, :3] * s @ Vt, A, atol=1e-13)


def test_svd_rejects_nan():
    with pytest.raises(NonFiniteError):
        svd(np.array([[1.0, np.nan]]))
    with pytest.raises(ShapeError):
        svd(np.ones(3))


# --------------------------------------------------------------------------------------- numerical rank
@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 12), n=st.integers(2, 12), data=st.data())
def test_rank_of_product_of_random_factors(m, n, data):
    r = data.draw(st.integers(0, min(m, n)))
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
    info = numerical_rank(A)
    assert info.rank == r
    assert info.rank == np.linalg.matrix_rank(A)
    if 0 < r < min(m, n):
        assert info.gap > 1e8


def test_rank_gap_and_vector_input():
    s = np.array([1.0, 0.5, 1e-3, 1e-20])
    info = numerical_rank(s, shape=(10, 4))
    assert info.rank == 3
    assert info.gap == pytest.approx(1e-3 / 1e-20)
    assert info.tol == pytest.approx(10 * np.finfo(float).eps)
    assert numerical_rank(s, rtol=1e-2).rank == 2
    assert numerical_rank(s, rtol=1e-2).gap == pytest.approx(0.5 / 1e-3)
    assert numerical_rank(s, tol=0.0).rank == 4 and numerical_rank(s, tol=0.0).gap == np.inf
    full = numerical_rank(np.array([2.0, 1.0]))
    assert full.rank == 2 and full.gap == np.inf
    zero = numerical_rank(np.zeros((3, 2)))
    assert zero.rank == 0 and zero.gap == np.inf
    below = numerical_rank(np.array([1.0, 0.5]), tol=4.0)
    assert below.rank == 0 and below.gap == pytest.approx(4.0)
    assert set(full.to_dict()) == {"rank", "tol", "gap", "singular_values"}
    assert full.to_dict()["gap"] is None  # inf is not JSON


# ------------------------------------------------------------------------------------------ truncated svd
@pytest.mark.parametrize("method", ["full", "arpack", "randomized", "auto"])
def test_truncated_svd_matches_full(method):
    s_true = np.logspace(0, -6, 40)
    A = _with_spectrum(300, 280, s_true, seed=3)
    U, s, Vt = truncated_svd(A, 8, method=method, seed=1)
    np.testing.assert_allclose(s, s_true[:8], rtol=1e-8)
    Uf, _, Vtf = np.linalg.svd(A)
    assert principal_angles(U, Uf[:, :8]).max() < 1e-6
    assert principal_angles(Vt.T, Vtf[:8].T).max() < 1e-6
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(8)] > 0)


def test_randomized_svd_torch_keeps_type_and_agrees():
    A = _with_spectrum(60, 50, np.logspace(0, -4, 20), seed=4)
    U, s, Vt = randomized_svd(torch.tensor(A), 5, seed=0)
    assert isinstance(U, torch.Tensor) and U.dtype == torch.float64
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(A, compute_uv=False)[:5], rtol=1e-10)
    Ut, st_, Vtt = truncated_svd(torch.tensor(A), 5, method="full")
    np.testing.assert_allclose(U.numpy(), Ut.numpy(), atol=1e-8)


def test_truncated_svd_bad_args():
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 0)
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 2, method="magic")


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


# --------------------------------------------------------------------------------- streaming least squares
def _problem(n=500, d=6, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 3 + 5
    Y = X @ rng.normal(size=(d, p)) + rng.normal(size=(n, p)) + 2
    return X, Y


def _lstsq_with_intercept(X, Y):
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    return sol[:-1].T, sol[-1]


@pytest.mark.parametrize("cls", [GramAccumulator, TSQRAccumulator])
def test_accumulators_chunked_equal_batch_and_lstsq(cls):
    X, Y = _problem()
    batch = cls().update(X, Y)
    chunked = cls()
    bounds = [0, 1, 8, 100, 333, 500]  # uneven chunks, including a 1-row one
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        chunked.update(X[a:b], Y[a:b])
    coef, b0 = _lstsq_with_intercept(X, Y)
    for acc in (batch, chunked):
        sol = acc.solve()
        np.testing.assert_allclose(sol.coef, coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sol.intercept, b0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.mean_x, X.mean(0), rtol=1e-13)
    # without intercept
    ref = np.linalg.lstsq(X, Y, rcond=None)[0].T
    np.testing.assert_allclose(chunked.solve(fit_intercept=False).coef, ref, rtol=1e-9)
    # kappa of the centred design
    kappa = np.linalg.cond(X - X.mean(0))
    assert chunked.condition_number() == pytest.approx(kappa, rel=1e-8)


@pytest.mark.parametrize("cls", [GramAccumulator, TSQRAccumulator])
def test_accumulators_merge_and_pickle(cls):
    X, Y = _problem(seed=5)
    parts = [cls().update(X[i : i + 97], Y[i : i + 97]) for i in range(0, len(X), 97)]
    parts = [pickle.loads(pickle.dumps(p)) for p in parts]
    # tree reduction in a different order than the data
    left = parts[3].merge(parts[0]).merge(parts[5])
    right = parts[1].merge(parts[4]).merge(parts[2])
    merged = left.merge(right)
    assert merged.n == len(X)
    np.testing.assert_allclose(merged.solve().coef, cls().update(X, Y).solve().coef, rtol=1e-11)
    with pytest.raises(ShapeError):
        merged.update(X[:, :2], Y)


def test_tsqr_solvers_and_ridge_closed_form():
    X, Y = _problem(seed=2)
    acc = TSQRAccumulator().update(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    alpha = 7.0
    ridge = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ Yc).T
    for method in ("qr", "svd"):
        np.testing.assert_allclose(acc.solve(alpha, method=method).coef, ridge, rtol=1e-10)
    np.testing.assert_allclose(GramAccumulator().update(X, Y).solve(alpha).coef, ridge, rtol=1e-10)


def test_gram_accumulator_multi_block_chunk_matches_lstsq():
    X, Y = _problem(n=20_000, d=4, p=2, seed=9)  # one update spanning several internal centring blocks
    sol = GramAccumulator().update(X, Y).solve()
    coef, b0 = _lstsq_with_intercept(X, Y)
    np.testing.assert_allclose(sol.coef, coef, rtol=1e-10)
    np.testing.assert_allclose(sol.intercept, b0, rtol=1e-10)
