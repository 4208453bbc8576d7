"""Tests of linlens.linalg.subspaces against scipy, brute force, closed forms and perturbation theory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from scipy.stats import ortho_group

from linlens.errors import ShapeError
from linlens.linalg import eigenvalue_condition_numbers, match_eigenvalues, principal_angles


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
