"""Krylov solvers on many right-hand sides at once, for operators given only as functions.

:func:`batched_cg` runs conjugate gradients on a symmetric positive-definite operator K for every row of B at
once (one call of K per iteration on the rows still unconverged), so a user's operator, which is cheapest on a
batch of images, is called once per iteration instead of once per vector. :func:`lsqr_rows` applies the
least-squares solution x = A⁺y row by row with ``scipy.sparse.linalg.lsqr`` and records whether each converged.

Both record convergence per row: a solve that stopped at its iteration limit is not a solution, and callers
must not label its output as one.

References:
    M. R. Hestenes, E. Stiefel. Methods of conjugate gradients for solving linear systems. J. Res. NBS 49 (1952).
    C. C. Paige, M. A. Saunders. LSQR: an algorithm for sparse linear equations and sparse least squares.
    ACM TOMS 8 (1982) 43–71.

Example:
    >>> K = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> r = batched_cg(lambda U: U @ K, np.eye(2), tol=1e-12)
    >>> bool(np.allclose(r.solution, np.linalg.inv(K))), bool(r.converged.all())
    (True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from linlens._results import ResultMixin
from linlens.errors import NonFiniteError, ShapeError

__all__ = ["KrylovResult", "batched_cg", "lsqr_rows"]


@dataclass(frozen=True)
class KrylovResult(ResultMixin):
    """Solutions of a batch of systems and how each solve ended.

    Arguments:
        solution: (k, d) one solution per row of the right-hand sides.
        iterations: (k,) iterations each row took.
        converged: (k,) True where the stopping rule was met before the iteration limit.
        relative_residual: (k,) ‖b − K x‖/‖b‖ (CG) or LSQR's ‖Aᵀr‖/(‖A‖‖r‖) estimate (least squares) at the end.
        method: the solver and its stopping rule in words.

    Example:
        >>> r = batched_cg(lambda U: 2.0 * U, np.ones((2, 3)))  # K = 2I: x = b/2 after one step
        >>> r.solution.tolist(), r.converged.tolist(), r.to_dict()["n_systems"]
        ([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], [True, True], 2)
    """

    solution: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    relative_residual: np.ndarray
    method: str

    def to_dict(self) -> dict:
        """JSON-safe summary (the solutions left out)."""
        return {"n_systems": int(len(self.iterations)), "max_iterations": int(self.iterations.max(initial=0)),
                "all_converged": bool(self.converged.all()), "n_converged": int(self.converged.sum()),
                "max_relative_residual": float(self.relative_residual.max(initial=0.0)), "method": self.method}


def batched_cg(apply: Callable[[np.ndarray], np.ndarray], B: np.ndarray, *, tol: float = 1e-6,
               maxiter: int = 1000, precondition: Callable[[np.ndarray], np.ndarray] | None = None,
               x0: np.ndarray | None = None) -> KrylovResult:
    """(Preconditioned) conjugate gradients for K x = b on every row b of B at once (K symmetric positive definite).

    Arguments:
        apply: maps rows U (k, d) to rows of K u (k, d); called once per iteration on the unconverged rows.
        B: (k, d) right-hand sides.
        tol: stop a row when ‖b − K x‖ ≤ tol · ‖b‖ (the residual of K itself, whatever the preconditioner).
        maxiter: iteration limit per row.
        precondition: maps rows R to rows of P⁻¹ r for a symmetric positive definite P ≈ K, or None.
        x0: (k, d) starting guesses (a warm start, e.g. the solutions of a nearby system), or None (zeros).

    Returns:
        :class:`KrylovResult` with ``solution`` (k, d).

    Example:
        >>> rng = np.random.default_rng(0); M = rng.normal(size=(6, 6)); K = M @ M.T + np.eye(6)
        >>> B = rng.normal(size=(3, 6)); r = batched_cg(lambda U: U @ K, B, tol=1e-12)
        >>> bool(np.allclose(r.solution @ K, B))
        True
        >>> warm = batched_cg(lambda U: U @ K, B, tol=1e-12, x0=r.solution)  # already solved: no iteration
        >>> int(warm.iterations.max())
        0
    """
    B = np.asarray(B, dtype=np.float64)
    if B.ndim != 2:
        raise ShapeError(f"right-hand sides must be (k, d); got {B.shape}")
    k = len(B)
    M = precondition if precondition is not None else (lambda R: R)
    if x0 is None:
        X = np.zeros_like(B)
        R = B.copy()
    else:
        X = np.array(x0, dtype=np.float64)
        if X.shape != B.shape:
            raise ShapeError(f"x0 must have the right-hand sides' shape {B.shape}; got {X.shape}")
        R = B - np.asarray(apply(X), dtype=np.float64) if k else B.copy()
    Zr = np.asarray(M(R), dtype=np.float64)
    P = Zr.copy()
    rz = np.einsum("ij,ij->i", R, Zr)
    rs = np.einsum("ij,ij->i", R, R)
    bnorm = np.sqrt(np.einsum("ij,ij->i", B, B))
    its = np.zeros(k, dtype=int)
    active = bnorm > 0
    for _ in range(int(maxiter)):
        active &= np.sqrt(rs) > tol * bnorm
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Pa = P[idx]
        KP = np.asarray(apply(Pa), dtype=np.float64)
        if KP.shape != Pa.shape:
            raise ShapeError(f"the operator of CG must map (k, {B.shape[1]}) to the same shape; got {KP.shape}")
        curv = np.einsum("ij,ij->i", Pa, KP)
        if not np.isfinite(curv).all():
            raise NonFiniteError("conjugate gradients: the operator returned NaN/Inf")
        if (curv <= 0).any():
            raise NonFiniteError("conjugate gradients: the operator is not positive definite (pᵀKp ≤ 0)")
        alpha = rz[idx] / curv
        X[idx] += alpha[:, None] * Pa
        R[idx] -= alpha[:, None] * KP
        Zi = np.asarray(M(R[idx]), dtype=np.float64)
        rz_new = np.einsum("ij,ij->i", R[idx], Zi)
        P[idx] = Zi + (rz_new / rz[idx])[:, None] * Pa
        rz[idx] = rz_new
        rs[idx] = np.einsum("ij,ij->i", R[idx], R[idx])
        its[idx] += 1
    rel = np.sqrt(rs) / np.where(bnorm > 0, bnorm, 1.0)
    return KrylovResult(solution=X, iterations=its, converged=rel <= tol, relative_residual=rel,
                        method=("preconditioned " if precondition is not None else "")
                        + f"conjugate gradients, stop at ‖b − Kx‖ ≤ {tol:g}‖b‖ or {maxiter} iterations")


def lsqr_rows(A: spla.LinearOperator, Y: np.ndarray, *, atol: float = 1e-8, btol: float = 1e-8,
              iter_lim: int = 500) -> KrylovResult:
    """x = argmin ‖A x − y‖ (the minimum-norm least-squares solution, A⁺y) for every row y of Y by LSQR.

    A row counts as converged when LSQR stopped by its own rule (istop 1 or 2: a solution of A x = y, or of the
    least-squares problem, to ``atol``/``btol``), not at ``iter_lim``.

    Arguments:
        A: a scipy ``LinearOperator`` (d_out, d_in) with matvec and rmatvec.
        Y: (k, d_out) right-hand sides.
        atol, btol, iter_lim: LSQR's stopping rule (see ``scipy.sparse.linalg.lsqr``).

    Returns:
        :class:`KrylovResult` with ``solution`` (k, d_in).

    Example:
        >>> A = spla.aslinearoperator(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        >>> r = lsqr_rows(A, np.array([[1.0, 2.0, 5.0]]))
        >>> r.solution.round(8).tolist(), bool(r.converged.all())
        ([[1.0, 1.0]], True)
    """
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[1] != A.shape[0]:
        raise ShapeError(f"right-hand sides must be (k, {A.shape[0]}); got {Y.shape}")
    X = np.zeros((len(Y), A.shape[1]))
    its, ok, rel = np.zeros(len(Y), dtype=int), np.zeros(len(Y), dtype=bool), np.zeros(len(Y))
    for i, y in enumerate(Y):
        out = spla.lsqr(A, y, atol=atol, btol=btol, iter_lim=iter_lim)
        X[i], its[i], ok[i] = out[0], out[2], out[1] in (1, 2)
        anorm, rnorm, arnorm = out[5], out[3], out[7]
        rel[i] = arnorm / (anorm * rnorm) if anorm * rnorm > 0 else 0.0
    return KrylovResult(solution=X, iterations=its, converged=ok, relative_residual=rel,
                        method=f"LSQR (Paige–Saunders), atol = {atol:g}, btol = {btol:g}, at most {iter_lim} "
                               "iterations")
