"""Randomized trace estimation and batched Krylov solvers: against closed forms, and the intervals' coverage
by simulation with a known trace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from linlens.errors import ConfigError, NonFiniteError, ShapeError
from linlens.linalg.krylov import batched_cg, lsqr_rows
from linlens.linalg.trace import hutchinson, mean_estimate, ratio_estimate


def test_batched_cg_solves_every_row_as_a_dense_solver():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(30, 30))
    K = M @ M.T + 0.1 * np.eye(30)
    B = rng.normal(size=(7, 30))
    r = batched_cg(lambda U: U @ K, B, tol=1e-10, maxiter=500)
    assert r.converged.all()
    np.testing.assert_allclose(r.solution, np.linalg.solve(K, B.T).T, rtol=1e-7, atol=1e-9)


def test_batched_cg_says_when_it_did_not_converge():
    K = np.diag(np.logspace(0, 8, 50))
    r = batched_cg(lambda U: U @ K, np.ones((2, 50)), tol=1e-12, maxiter=3)
    assert not r.converged.any() and (r.iterations == 3).all() and r.to_dict()["all_converged"] is False


def test_batched_cg_refuses_indefinite_or_nonfinite():
    with pytest.raises(NonFiniteError, match="not positive definite"):
        batched_cg(lambda U: -U, np.ones((1, 3)))
    with pytest.raises(NonFiniteError, match="NaN"):
        batched_cg(lambda U: U * np.nan, np.ones((1, 3)))
    with pytest.raises(ShapeError):
        batched_cg(lambda U: U[:, :2], np.ones((1, 3)))


def test_lsqr_rows_is_the_pseudo_inverse():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(12, 5)) @ rng.normal(size=(5, 9))  # rank 5: not injective, not surjective
    Y = rng.normal(size=(4, 12))
    r = lsqr_rows(spla.aslinearoperator(A), Y, atol=1e-12, btol=1e-12, iter_lim=200)
    assert r.converged.all()
    np.testing.assert_allclose(r.solution, Y @ np.linalg.pinv(A).T, rtol=1e-6, atol=1e-8)


def test_lsqr_rows_flags_the_iteration_limit():
    A = np.diag(np.logspace(0, -6, 40))
    r = lsqr_rows(spla.aslinearoperator(A), np.ones((1, 40)), atol=1e-14, btol=1e-14, iter_lim=2)
    assert not r.converged.any()


def test_hutchinson_is_exact_on_diagonal_maps_and_refuses_one_probe():
    e = hutchinson(lambda Z: Z * np.array([1.0, 2.0, 3.0]), 3, n_probes=5)
    assert e.estimate == pytest.approx(14.0) and e.std_error == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        hutchinson(lambda Z: Z, 3, n_probes=1)


def test_ratio_estimate_refuses_bad_input():
    with pytest.raises(ShapeError):
        ratio_estimate(np.ones(3), np.ones(4))
    with pytest.raises(ShapeError):
        mean_estimate(np.ones(1))


def test_hutchinson_interval_covers_the_frobenius_norm():
    """Simulation with a known trace: ‖M‖²_F of a fixed random M, 64 probes, 600 repetitions."""
    rng = np.random.default_rng(2)
    M = rng.normal(size=(15, 20)) * np.linspace(0.2, 2.0, 20)
    truth = float(np.sum(M**2))
    hits = [(e := hutchinson(lambda Z: Z @ M.T, 20, n_probes=64, seed=s)).low <= truth <= e.high for s in range(600)]
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)


def test_ratio_interval_covers_a_known_ratio():
    """E‖Mx‖²/E‖x‖² with x ~ N(0, Σ): truth tr(MΣMᵀ)/tr Σ; 300 held-out rows per data set, 600 data sets."""
    rng = np.random.default_rng(3)
    L = rng.normal(size=(8, 8)) * np.linspace(0.1, 1.5, 8)
    S = L @ L.T
    M = rng.normal(size=(8, 8))
    truth = float(np.trace(M @ S @ M.T) / np.trace(S))
    hits = []
    for s in range(600):
        X = np.random.default_rng(100 + s).normal(size=(300, 8)) @ L.T
        e = ratio_estimate(np.sum((X @ M.T) ** 2, axis=1), np.sum(X**2, axis=1))
        hits.append(e.low <= truth <= e.high)
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)
