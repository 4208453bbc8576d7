"""linlens.linalg.krylov: batched CG and row-wise LSQR against dense solvers (numpy's solve and pseudo-inverse),
with their convergence flags and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from linlens.errors import NonFiniteError, ShapeError
from linlens.linalg.krylov import batched_cg, lsqr_rows


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


def test_preconditioned_cg_gives_the_same_solution_in_fewer_iterations():
    # a Jacobi preconditioner on a badly scaled SPD matrix: the same solution (the stopping rule is on K's own
    # residual), reached in fewer iterations than without it
    rng = np.random.default_rng(2)
    d = np.logspace(0, 4, 40)
    M = rng.normal(size=(40, 40)) * 0.01
    K = np.diag(d) + M @ M.T
    B = rng.normal(size=(3, 40))
    plain = batched_cg(lambda U: U @ K, B, tol=1e-10, maxiter=2000)
    jacobi = batched_cg(lambda U: U @ K, B, tol=1e-10, maxiter=2000, precondition=lambda R: R / np.diag(K))
    exact = np.linalg.solve(K, B.T).T
    np.testing.assert_allclose(jacobi.solution, exact, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(plain.solution, exact, rtol=1e-6, atol=1e-10)
    assert jacobi.iterations.max() < plain.iterations.max()
