"""Shared float64 numerics: deterministic SVDs, numerical rank with its gap, principal angles, eigenvalue
matching, and streaming least squares (Gram + Cholesky, TSQR) with mergeable, picklable state.

Conventions (``shared/design.md``): samples along axis 0; singular values descending; the largest-|entry|
of every left singular vector is made positive (right vectors flipped with it); a reported rank always
comes with the singular-value gap at its cut.

Example:
    >>> A = np.arange(12.0).reshape(4, 3)
    >>> numerical_rank(A).rank
    2
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.optimize import linear_sum_assignment

from linlens._results import json_safe
from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, NumericalWarning, ShapeError
from linlens.validation import as_array, check_finite, check_real, is_torch

__all__ = [
    "svd",
    "RankInfo",
    "numerical_rank",
    "truncated_svd",
    "randomized_svd",
    "principal_angles",
    "match_eigenvalues",
    "eigenvalue_condition_numbers",
    "LstsqSolution",
    "GramAccumulator",
    "TSQRAccumulator",
    "REFINE_THRESHOLD",
    "QR_THRESHOLD",
]

#: κ(X) above which the Gram route is refined (batch) or warned about (streaming).
REFINE_THRESHOLD = 1e5
#: κ(X) above which a batch fit goes straight to QR (refinement contracts only by ~κ²·eps per pass).
QR_THRESHOLD = 1e7
_GRAM_BLOCK = 8192  # rows centred at a time in GramAccumulator.update


# --------------------------------------------------------------------------------------------- SVD helpers
def _fix_signs_np(U: np.ndarray, Vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if U.shape[1] == 0:
        return U, Vt
    idx = np.argmax(np.abs(U), axis=0)
    signs = np.sign(U[idx, np.arange(U.shape[1])])
    signs[signs == 0] = 1.0
    return U * signs, Vt * signs[:, None]


def _fix_signs_torch(U: Any, Vt: Any) -> tuple[Any, Any]:
    import torch

    if U.shape[1] == 0:
        return U, Vt
    idx = torch.argmax(U.abs(), dim=0)
    signs = torch.sign(U[idx, torch.arange(U.shape[1], device=U.device)])
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return U * signs, Vt * signs[:, None]


def svd(A: Any, full_matrices: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Singular value decomposition in float64 with descending σ and deterministic signs.

    The largest-|entry| of each column of U is positive; the matching row of Vᵀ is flipped with it.
    Falls back from LAPACK ``gesdd`` to the slower, more robust ``gesvd`` if the former fails.

    Arguments:
        A: matrix (m, n), numpy or torch (converted to float64 numpy; complex stays complex).
        full_matrices: return square U (m, m) and Vᵀ (n, n) instead of the thin factors.

    Returns:
        U (m, k), s (k,), Vt (k, n) with k = min(m, n) (thin), A = U diag(s) Vt.

    Example:
        >>> U, s, Vt = svd(np.diag([1.0, 3.0]))
        >>> s.tolist()
        [3.0, 1.0]
    """
    a = _as_matrix(A, "A")
    try:
        U, s, Vt = sla.svd(a, full_matrices=full_matrices, lapack_driver="gesdd", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        U, s, Vt = sla.svd(a, full_matrices=full_matrices, lapack_driver="gesvd", check_finite=False)
    k = len(s)
    Uf, Vtf = _fix_signs_np(U[:, :k], Vt[:k])
    if full_matrices:
        U = np.concatenate([Uf, U[:, k:]], axis=1)
        Vt = np.concatenate([Vtf, Vt[k:]], axis=0)
        return U, s, Vt
    return Uf, s, Vtf


def _as_matrix(A: Any, name: str) -> np.ndarray:
    if is_torch(A) and A.is_complex():
        a = A.detach().cpu().numpy().astype(np.complex128)
    elif np.iscomplexobj(A):
        a = np.asarray(A, dtype=np.complex128)
    else:
        return as_array(A, name, ndim=2, allow_empty=True)
    if a.ndim != 2:
        raise ShapeError(f"{name} must be 2-D; got shape {tuple(a.shape)}")
    if not np.isfinite(a).all():
        check_finite(a, name)
    return a


@dataclass(frozen=True)
class RankInfo:
    """Numerical rank with the tolerance used and the singular-value gap at the cut.

    Arguments:
        rank: number of singular values above ``tol``.
        tol: absolute tolerance applied.
        gap: σ_r/σ_{r+1} (inf when r = len(s) or σ_{r+1} = 0). For rank 0: inf when every σ is 0 (or there
            are none), else tol/σ_1 (how far the largest singular value lies below the tolerance).
        singular_values: all singular values, descending (k,).
    """

    rank: int
    tol: float
    gap: float
    singular_values: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return json_safe(
            {"rank": self.rank, "tol": self.tol, "gap": self.gap, "singular_values": self.singular_values}
        )


def numerical_rank(
    A_or_s: Any, tol: float | None = None, rtol: float | None = None, shape: tuple[int, int] | None = None
) -> RankInfo:
    """Numerical rank with the gap at the cut.

    The default tolerance is ``max(shape) * eps * σ_max`` (as ``numpy.linalg.matrix_rank``); ``rtol``
    replaces ``max(shape) * eps``; an absolute ``tol`` overrides both.

    Arguments:
        A_or_s: a matrix (m, n), or a 1-D vector of its singular values (any order).
        tol: absolute tolerance.
        rtol: relative tolerance (multiplied by σ_max).
        shape: shape of the matrix when ``A_or_s`` is a vector of singular values (default: (k, k)).

    Returns:
        A :class:`RankInfo`.

    Example:
        >>> info = numerical_rank(np.array([3.0, 1.0, 1e-20]), shape=(3, 3))
        >>> info.rank, info.gap > 1e19
        (2, True)
    """
    if is_torch(A_or_s):
        A_or_s = A_or_s.detach().cpu().numpy()
    a = np.asarray(A_or_s)
    if a.ndim == 1:
        s = np.sort(np.abs(as_array(a, "singular values", ndim=1, allow_empty=True)))[::-1]
        m = max(shape) if shape is not None else len(s)
    elif a.ndim == 2:
        a = _as_matrix(a, "A")
        s = sla.svdvals(a, check_finite=False) if a.size else np.zeros(0)
        m = max(a.shape) if shape is None else max(shape)
    else:
        raise ShapeError(f"A_or_s must be a 2-D matrix or 1-D singular values; got shape {a.shape}")
    smax = float(s[0]) if len(s) else 0.0
    if tol is None:
        r_tol = float(max(m, 1) * np.finfo(np.float64).eps) if rtol is None else float(rtol)
        tol = r_tol * smax
    tol = float(tol)
    if tol < 0:
        raise ConfigError(f"tol must be non-negative; got {tol}")
    r = int(np.sum(s > tol))
    if r == 0:
        gap = float("inf") if smax == 0 else tol / smax
    elif r == len(s) or s[r] == 0:
        gap = float("inf")
    else:
        gap = float(s[r - 1] / s[r])
    return RankInfo(rank=r, tol=tol, gap=gap, singular_values=s.copy())


def randomized_svd(
    A: Any, k: int, oversample: int = 10, n_iter: int = 4, seed: int = 0
) -> tuple[Any, Any, Any]:
    """Top-k SVD by a randomized range finder with power iterations.

    References:
        Halko, Martinsson, Tropp. Finding structure with randomness: probabilistic algorithms for
        constructing approximate matrix decompositions (2011). https://arxiv.org/abs/0909.4061

    Arguments:
        A: matrix (m, n); numpy (float64) or torch (computed in float64 on the tensor's device).
        k: number of singular triplets.
        oversample: extra random directions p (sketch size k + p).
        n_iter: power iterations (each re-orthonormalized by QR); more for slowly decaying spectra.
        seed: random seed of the test matrix.

    Returns:
        U (m, k), s (k,), Vt (k, n): deterministic signs, the input's array type.

    Example:
        >>> A = np.random.default_rng(0).normal(size=(50, 5)) @ np.random.default_rng(1).normal(size=(5, 40))
        >>> s = randomized_svd(A, 5)[1]
        >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:5]))
        True
    """
    k = _check_k(k, A)
    if is_torch(A):
        import torch

        a = A.detach().to(torch.float64)
        m, n = a.shape
        L = min(k + oversample, min(m, n))
        g = torch.Generator(device=a.device).manual_seed(seed)
        Q = torch.linalg.qr(a @ torch.randn(n, L, generator=g, device=a.device, dtype=a.dtype))[0]
        for _ in range(n_iter):
            Z = torch.linalg.qr(a.T @ Q)[0]
            Q = torch.linalg.qr(a @ Z)[0]
        Ub, s, Vt = torch.linalg.svd(Q.T @ a, full_matrices=False)
        U, Vt = _fix_signs_torch(Q @ Ub[:, :k], Vt[:k])
        return U, s[:k], Vt
    a = _as_matrix(A, "A")
    m, n = a.shape
    L = min(k + oversample, min(m, n))
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(a @ rng.standard_normal((n, L)))[0]
    for _ in range(n_iter):
        Z = np.linalg.qr(a.T @ Q)[0]
        Q = np.linalg.qr(a @ Z)[0]
    Ub, s, Vt = np.linalg.svd(Q.T @ a, full_matrices=False)
    U, Vt = _fix_signs_np(Q @ Ub[:, :k], Vt[:k])
    return U, s[:k], Vt


def _check_k(k: int, A: Any) -> int:
    shape = tuple(A.shape)
    if len(shape) != 2:
        raise ShapeError(f"A must be 2-D; got shape {shape}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= min(shape):
        raise ConfigError(f"k must be an integer in [1, {min(shape)}] for A of shape {shape}; got {k!r}")
    return int(k)


def truncated_svd(A: Any, k: int, method: str = "auto", seed: int = 0) -> tuple[Any, Any, Any]:
    """Top-k singular triplets with deterministic signs.

    ``method="auto"`` takes the full thin SVD for small matrices (min(shape) ≤ 256) or large k
    (k > min(shape)/4), else ARPACK (``scipy.sparse.linalg.svds``, accurate on any spectrum). "randomized"
    is :func:`randomized_svd` (fast; accurate when the spectrum decays past k).

    Arguments:
        A: matrix (m, n), numpy or torch (the torch path keeps the tensor's device for "full"/"randomized").
        k: number of triplets, 1 ≤ k ≤ min(m, n).
        method: "auto", "full", "arpack" or "randomized".
        seed: seed of the random start vector / test matrix.

    Returns:
        U (m, k), s (k,) descending, Vt (k, n), in the input's array type.

    Example:
        >>> U, s, Vt = truncated_svd(np.diag([1.0, 5.0, 3.0]), 2)
        >>> s.tolist()
        [5.0, 3.0]
    """
    if method not in ("auto", "full", "arpack", "randomized"):
        raise ConfigError(f"method must be 'auto', 'full', 'arpack' or 'randomized'; got {method!r}")
    k = _check_k(k, A)
    mn = min(A.shape)
    if method == "auto":
        method = "full" if (mn <= 256 or k > mn / 4 or k >= mn - 1) else "arpack"
    if method == "arpack" and k >= mn:
        method = "full"
    if method == "randomized":
        return randomized_svd(A, k, seed=seed)
    if is_torch(A):
        import torch

        if method == "full":
            a = A.detach().to(torch.float64)
            U, s, Vt = torch.linalg.svd(a, full_matrices=False)
            U, Vt = _fix_signs_torch(U[:, :k], Vt[:k])
            return U, s[:k], Vt
        U, s, Vt = truncated_svd(A.detach().cpu().double().numpy(), k, method, seed)
        return (torch.as_tensor(U, device=A.device), torch.as_tensor(s, device=A.device),
                torch.as_tensor(Vt, device=A.device))
    if method == "full":
        U, s, Vt = svd(A)
        return U[:, :k], s[:k], Vt[:k]
    from scipy.sparse.linalg import svds

    a = _as_matrix(A, "A")
    v0 = np.random.default_rng(seed).standard_normal(min(a.shape))
    U, s, Vt = svds(a, k=k, v0=v0, solver="arpack")
    order = np.argsort(s)[::-1]
    U, s, Vt = U[:, order], s[order], Vt[order]
    U, Vt = _fix_signs_np(U, Vt)
    return U, s, Vt


# ---------------------------------------------------------------------------------- subspaces, eigenvalues
def principal_angles(A: Any, B: Any) -> np.ndarray:
    """Principal angles between the column spaces of A and B, ascending, in radians.

    References:
        Björck, Golub. Numerical methods for computing angles between linear subspaces (1973).
        Knyazev, Argentati. Principal angles between subspaces in an A-based scalar product (2002).

    Arguments:
        A: matrix (m, p) whose columns span the first subspace.
        B: matrix (m, q) whose columns span the second subspace.

    Returns:
        angles (min(p, q),) in [0, π/2], ascending. Same algorithm as ``scipy.linalg.subspace_angles``
        (cosines for large angles, sines for small ones), with orthonormal bases from an SVD so that angles
        near 0 come out at ~1e-16 rather than ~1e-8. Directions missing from a rank-deficient input count
        as π/2.

    Example:
        >>> principal_angles(np.eye(3)[:, :2], np.eye(3)[:, 1:]).round(6).tolist()
        [0.0, 1.570796]
    """
    a = _as_matrix(A, "A")
    b = _as_matrix(B, "B")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"A and B must have the same number of rows; got A {a.shape} and B {b.shape}")
    if a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros(0)
    qa, qb = _orth(a), _orth(b)
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    k = min(a.shape[1], b.shape[1])
    if qb.shape[1] == 0:
        return np.full(k, np.pi / 2)
    # cosines from QAᵀQB (accurate for large angles), sines from the part of QB outside span(QA) (accurate
    # for small angles); Björck & Golub (1973), as in scipy.linalg.subspace_angles
    cos = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)
    sin = np.clip(np.sort(np.linalg.svd(qb - qa @ (qa.T @ qb), compute_uv=False)), 0.0, 1.0)
    theta = np.where(cos**2 >= 0.5, np.arcsin(sin), np.arccos(cos))
    # a rank-deficient input spans fewer directions: the missing ones count as orthogonal
    return np.concatenate([np.sort(theta), np.full(k - len(theta), np.pi / 2)])


def _orth(a: np.ndarray) -> np.ndarray:
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    tol = max(a.shape) * np.finfo(float).eps * (s[0] if len(s) else 0.0)
    return u[:, s > tol]


def match_eigenvalues(lam: Any, mu: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair eigenvalues of two operators by a minimum-cost assignment on |λᵢ − μⱼ|.

    Arguments:
        lam: eigenvalues (p,), real or complex.
        mu: eigenvalues (q,), real or complex; p ≠ q pairs min(p, q) of them.

    Returns:
        row_idx (r,), col_idx (r,), distances |lam[row_idx] − mu[col_idx]| (r,), r = min(p, q),
        with row_idx ascending.

    Example:
        >>> match_eigenvalues([1.0, 2.0], [2.1, 0.9])[1].tolist()
        [1, 0]
    """
    a = np.asarray(lam.detach().cpu().numpy() if is_torch(lam) else lam).astype(np.complex128).ravel()
    b = np.asarray(mu.detach().cpu().numpy() if is_torch(mu) else mu).astype(np.complex128).ravel()
    if len(a) == 0 or len(b) == 0:
        e = np.zeros(0, dtype=int)
        return e, e, np.zeros(0)
    cost = np.abs(a[:, None] - b[None, :])
    if not np.isfinite(cost).all():
        raise ShapeError("lam and mu must hold finite eigenvalues")
    rows, cols = linear_sum_assignment(cost)
    return rows, cols, cost[rows, cols]


def eigenvalue_condition_numbers(M: Any) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and their condition numbers 1/|wᵢᴴvᵢ| (unit left wᵢ and right vᵢ eigenvectors).

    A normal matrix has all condition numbers 1; large values flag eigenvalues that a small perturbation
    moves a lot (compare singular values instead).

    Arguments:
        M: square matrix (n, n).

    Returns:
        eigs (n,) complex, sorted by descending modulus then angle; cond (n,) ≥ 1 (inf for a defective
        eigenvalue).

    Example:
        >>> eigs, cond = eigenvalue_condition_numbers(np.array([[1.0, 100.0], [0.0, 2.0]]))
        >>> cond.round(1).tolist()
        [100.0, 100.0]
    """
    m = _as_matrix(M, "M")
    if m.shape[0] != m.shape[1]:
        raise ShapeError(f"M must be square; got shape {m.shape}")
    if m.size == 0:
        return np.zeros(0, dtype=complex), np.zeros(0)
    w, vl, vr = sla.eig(m, left=True, right=True, check_finite=False)
    vl = vl / np.linalg.norm(vl, axis=0)
    vr = vr / np.linalg.norm(vr, axis=0)
    overlap = np.abs(np.sum(np.conj(vl) * vr, axis=0))
    with np.errstate(divide="ignore"):
        cond = np.where(overlap > 0, 1.0 / np.maximum(overlap, 1e-300), np.inf)
    w = w.astype(np.complex128)
    order = np.lexsort((np.angle(w), -np.abs(w)))
    return w[order], cond[order]


# ---------------------------------------------------------------------------------- streaming least squares
@dataclass(frozen=True)
class LstsqSolution:
    """Solution of a (ridge) least-squares problem Y ≈ X coefᵀ + intercept.

    Arguments:
        coef: (d_out, d_in).
        intercept: (d_out,) (zeros without intercept).
        condition_number: κ₂ of the (centred when fitting an intercept) design X.
        rank: numerical rank of that design.
        solver: route actually used ("gram", "gram+refine", "qr", "svd", "min-norm").
    """

    coef: np.ndarray
    intercept: np.ndarray
    condition_number: float
    rank: int
    solver: str


def _split_xy(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    # finiteness is checked later through the column means (one pass fewer over the data)
    x = as_array(X, "X", ndim=2, finite=False, allow_empty=True)
    y = as_array(Y, "Y", ndim=(1, 2), finite=False, allow_empty=True)
    if y.ndim == 1:
        y = y[:, None]
    if x.shape[0] != y.shape[0]:
        raise ShapeError(f"X and Y must have the same number of rows; got X {x.shape} and Y {y.shape}")
    return x, y


def _finite_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means; a NaN/Inf anywhere makes a mean non-finite, and then the full check names it."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    if not (np.isfinite(mx).all() and np.isfinite(my).all()):
        check_finite(x, "X")
        check_finite(y, "Y")
    return mx, my


class _Accumulator:
    n: int
    d_in: int | None
    d_out: int | None
    mean_x: np.ndarray | None
    mean_y: np.ndarray | None

    def _check_dims(self, d_in: int, d_out: int) -> bool:
        if self.d_in is None:
            self.d_in, self.d_out = d_in, d_out
            return True
        if (d_in, d_out) != (self.d_in, self.d_out):
            raise ShapeError(
                f"chunk has {d_in} inputs and {d_out} outputs; earlier chunks had {self.d_in} and {self.d_out}"
            )
        return False

    def _require(self) -> None:
        if self.n == 0:
            raise EmptyInputError("no samples have been accumulated")


class GramAccumulator(_Accumulator):
    """Streaming centred cross-products of [X | Y] with Chan et al.'s pairwise update.

    Keeps n, the means and S = Σ (z − z̄)(z − z̄)ᵀ for z = [x; y] in float64, so chunked updates equal the
    batch computation up to rounding. State is small and picklable; ``merge`` combines partial results
    (e.g. per-chunk partials reduced with Dask).

    References:
        Chan, Golub, LeVeque. Updating formulae and a pairwise algorithm for computing sample variances (1979).

    Arguments:
        None; dimensions are taken from the first chunk.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 3)); Y = X @ [[1.0], [2.0], [3.0]] + 4
        >>> acc = GramAccumulator().update(X[:30], Y[:30]).update(X[30:], Y[30:])
        >>> np.round(acc.solve().coef, 8).tolist(), np.round(acc.solve().intercept, 8).tolist()
        ([[1.0, 2.0, 3.0]], [4.0])
    """

    def __init__(self) -> None:
        self.n = 0
        self.d_in = None
        self.d_out = None
        self.mean_x = None
        self.mean_y = None
        self.S: np.ndarray | None = None  # (d_in + d_out, d_in + d_out) centred scatter

    def update(self, X: Any, Y: Any) -> GramAccumulator:
        """Add a chunk of rows X (m, d_in), Y (m, d_out) or (m,); returns self.

        Two torch tensors are reduced on their own device (CPU or CUDA) in float64; only the (d, d) result
        comes back to the CPU.
        """
        if is_torch(X) and is_torch(Y):
            return self._update_torch(X, Y)
        x, y = _split_xy(X, Y)
        self._check_dims(x.shape[1], y.shape[1])
        m = x.shape[0]
        if m == 0:
            return self
        mx, my = _finite_means(x, y)
        d = x.shape[1]
        # centre in cache-sized blocks (one reused buffer) and sum their Grams: ~25% faster than one copy
        bs = min(m, _GRAM_BLOCK)
        Z = np.empty((bs, d + y.shape[1]))
        S = np.zeros((Z.shape[1], Z.shape[1]))
        for s in range(0, m, bs):
            zb = Z[: min(bs, m - s)]
            np.subtract(x[s : s + bs], mx, out=zb[:, :d])
            np.subtract(y[s : s + bs], my, out=zb[:, d:])
            S += zb.T @ zb
        return self._combine(m, mx, my, S)

    def _update_torch(self, X: Any, Y: Any) -> GramAccumulator:
        import torch

        check_real(X, "X")  # a cast to float64 would drop an imaginary part silently
        check_real(Y, "Y")
        x = X.detach().to(torch.float64)
        y = Y.detach().to(device=x.device, dtype=torch.float64)
        y = y[:, None] if y.ndim == 1 else y
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ShapeError(f"X must be (m, d_in) and Y (m, d_out) with the same m; got X {tuple(X.shape)} and "
                             f"Y {tuple(Y.shape)}")
        self._check_dims(x.shape[1], y.shape[1])
        m = x.shape[0]
        if m == 0:
            return self
        mx, my = x.mean(0), y.mean(0)
        if not bool(torch.isfinite(mx).all() & torch.isfinite(my).all()):
            for t, name in ((x, "X"), (y, "Y")):
                bad = (~torch.isfinite(t)).any(1)
                if bool(bad.any()):
                    raise NonFiniteError(f"{name} contains {int((~torch.isfinite(t)).sum())} NaN/Inf value(s), "
                                         f"first at row {int(bad.nonzero()[0, 0])}")
        S = 0
        for st in range(0, m, _GRAM_BLOCK):  # centred blocks: one block-sized temporary on the device
            zb = torch.cat([x[st : st + _GRAM_BLOCK] - mx, y[st : st + _GRAM_BLOCK] - my], 1)
            S = S + zb.T @ zb
        return self._combine(m, mx.cpu().numpy(), my.cpu().numpy(), S.cpu().numpy())

    def _combine(self, m: int, mx: np.ndarray, my: np.ndarray, S: np.ndarray) -> GramAccumulator:
        if self.n == 0:
            self.n, self.mean_x, self.mean_y, self.S = m, mx.copy(), my.copy(), S.copy()
            return self
        n = self.n + m
        delta = np.concatenate([mx - self.mean_x, my - self.mean_y])
        self.S = self.S + S + np.outer(delta, delta) * (self.n * m / n)
        self.mean_x = self.mean_x + (mx - self.mean_x) * (m / n)
        self.mean_y = self.mean_y + (my - self.mean_y) * (m / n)
        self.n = n
        return self

    def merge(self, other: GramAccumulator) -> GramAccumulator:
        """Fold another accumulator's state into this one (pairwise update); returns self."""
        if other.n == 0:
            return self
        self._check_dims(other.d_in, other.d_out)
        return self._combine(other.n, other.mean_x, other.mean_y, other.S)

    def gram(self, fit_intercept: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return (G (d_in, d_in), B (d_in, d_out)): XᵀX and XᵀY, centred when ``fit_intercept``."""
        self._require()
        d = self.d_in
        G, B = self.S[:d, :d].copy(), self.S[:d, d:].copy()
        if not fit_intercept:
            G += self.n * np.outer(self.mean_x, self.mean_x)
            B += self.n * np.outer(self.mean_x, self.mean_y)
        return G, B

    def condition_number(self, fit_intercept: bool = True) -> float:
        """κ₂ of the design, estimated as sqrt(κ(XᵀX)) (inaccurate beyond ~1e8, where it saturates)."""
        G, _ = self.gram(fit_intercept)
        return _kappa_from_gram(G)

    def solve(self, alpha: float = 0.0, fit_intercept: bool = True) -> LstsqSolution:
        """Solve (XᵀX + αI) coefᵀ = XᵀY by Cholesky of the equilibrated Gram matrix.

        A singular Gram matrix with α = 0 gives the minimum-norm solution (eigen-decomposition) with a
        :class:`NumericalWarning`.
        """
        G, B = self.gram(fit_intercept)
        kappa = _kappa_from_gram(G)
        coef_t, rank, route = _solve_gram(G, B, alpha)
        intercept = self._intercept(coef_t, fit_intercept)
        return LstsqSolution(coef_t.T.copy(), intercept, kappa, rank, route)

    def _intercept(self, coef_t: np.ndarray, fit_intercept: bool) -> np.ndarray:
        if not fit_intercept:
            return np.zeros(self.d_out)
        return self.mean_y - self.mean_x @ coef_t


def _kappa_from_gram(G: np.ndarray) -> float:
    if G.size == 0:
        return 1.0
    ev = np.linalg.eigvalsh(G)
    top = ev[-1]
    if top <= 0:
        return float("inf")
    low = ev[0]
    if low <= top * np.finfo(float).eps * len(G):
        return float("inf") if low <= 0 else float(np.sqrt(top / low))
    return float(np.sqrt(top / low))


def _solve_gram(G: np.ndarray, B: np.ndarray, alpha: float) -> tuple[np.ndarray, int, str]:
    d = G.shape[0]
    A = G + alpha * np.eye(d)
    diag = np.diag(A).copy()
    scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    As = A * scale[:, None] * scale[None, :]
    Bs = B * scale[:, None]
    ev = np.linalg.eigvalsh(As)
    tol = d * np.finfo(float).eps * max(ev[-1], 0.0) if d else 0.0
    rank = int(np.sum(ev > tol))
    if rank == d and d > 0:
        try:
            c = sla.cho_factor(As, lower=False, check_finite=False)
            return sla.cho_solve(c, Bs, check_finite=False) * scale[:, None], d, "gram"
        except np.linalg.LinAlgError:
            pass
    # singular (or not positive definite in floating point): minimum-norm solution of the normal equations
    w, V = np.linalg.eigh(A)
    tol = d * np.finfo(float).eps * max(w[-1], 0.0) if d else 0.0
    keep = w > tol
    warnings.warn(
        f"the design has numerical rank {int(keep.sum())} < {d} features (too few samples or collinear "
        "columns); returning the minimum-norm least-squares solution",
        NumericalWarning,
        stacklevel=4,
    )
    coef_t = V[:, keep] @ ((V[:, keep].T @ B) / w[keep][:, None])
    return coef_t, int(keep.sum()), "min-norm"


class TSQRAccumulator(_Accumulator):
    """Streaming R factor of the centred stack [X | Y] (tall-skinny QR), numerically stable at any κ.

    The centred Gram matrix equals RᵀR; merging two partial results stacks their R factors with the
    mean-shift row sqrt(n_a n_b / n)·(z̄_b − z̄_a) and re-factorizes, so chunked = batch up to rounding,
    and the solve never forms XᵀX. State is small and picklable.

    References:
        Demmel, Grigori, Hoemmen, Langou. Communication-optimal parallel and sequential QR and LU
        factorizations (2008). https://arxiv.org/abs/0808.2664

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 3)); Y = X @ [[1.0], [2.0], [3.0]] + 4
        >>> acc = TSQRAccumulator().update(X[:30], Y[:30]).update(X[30:], Y[30:])
        >>> np.round(acc.solve().coef, 8).tolist()
        [[1.0, 2.0, 3.0]]
    """

    def __init__(self) -> None:
        self.n = 0
        self.d_in = None
        self.d_out = None
        self.mean_x = None
        self.mean_y = None
        self.R: np.ndarray | None = None  # (≤ d_in + d_out, d_in + d_out) upper triangular

    def update(self, X: Any, Y: Any) -> TSQRAccumulator:
        """Add a chunk of rows X (m, d_in), Y (m, d_out) or (m,); returns self."""
        x, y = _split_xy(X, Y)
        self._check_dims(x.shape[1], y.shape[1])
        m = x.shape[0]
        if m == 0:
            return self
        mx, my = _finite_means(x, y)
        Z = np.empty((m, x.shape[1] + y.shape[1]))
        np.subtract(x, mx, out=Z[:, : x.shape[1]])
        np.subtract(y, my, out=Z[:, x.shape[1]:])
        R = sla.qr(Z, mode="r", overwrite_a=True, check_finite=False)[0]
        return self._combine(m, mx, my, R)

    def _combine(self, m: int, mx: np.ndarray, my: np.ndarray, R: np.ndarray) -> TSQRAccumulator:
        if self.n == 0:
            self.n, self.mean_x, self.mean_y, self.R = m, mx.copy(), my.copy(), R.copy()
            return self
        n = self.n + m
        delta = np.concatenate([mx - self.mean_x, my - self.mean_y]) * np.sqrt(self.n * m / n)
        stack = np.vstack([self.R, R, delta[None, :]])
        self.R = sla.qr(stack, mode="r", overwrite_a=True, check_finite=False)[0]
        self.mean_x = self.mean_x + (mx - self.mean_x) * (m / n)
        self.mean_y = self.mean_y + (my - self.mean_y) * (m / n)
        self.n = n
        return self

    def merge(self, other: TSQRAccumulator) -> TSQRAccumulator:
        """Fold another accumulator's state into this one; returns self."""
        if other.n == 0:
            return self
        self._check_dims(other.d_in, other.d_out)
        return self._combine(other.n, other.mean_x, other.mean_y, other.R)

    def r_factor(self, fit_intercept: bool = True) -> np.ndarray:
        """R (d_in + d_out, d_in + d_out) of [X | Y], centred when ``fit_intercept`` (zero-padded rows)."""
        self._require()
        R = self.R
        if not fit_intercept:
            shift = np.sqrt(self.n) * np.concatenate([self.mean_x, self.mean_y])
            R = sla.qr(np.vstack([R, shift[None, :]]), mode="r", check_finite=False)[0]
        p = R.shape[1]
        if R.shape[0] < p:
            R = np.vstack([R, np.zeros((p - R.shape[0], p))])
        return R[:p]

    def condition_number(self, fit_intercept: bool = True) -> float:
        """κ₂ of the design from the singular values of its R block (accurate at any κ)."""
        R = self.r_factor(fit_intercept)
        s = sla.svdvals(R[: self.d_in, : self.d_in], check_finite=False)
        return float(s[0] / s[-1]) if len(s) and s[-1] > 0 else (1.0 if not len(s) else float("inf"))

    def solve(self, alpha: float = 0.0, fit_intercept: bool = True, method: str = "qr") -> LstsqSolution:
        """Solve min ‖X coefᵀ − Y‖² + α‖coef‖² from R alone.

        ``method="qr"``: triangular solve (ridge by QR of [R₁₁; √α I]); "svd": SVD of R₁₁, minimum-norm
        with the default rank tolerance. A rank-deficient design with α = 0 falls back to "svd" with a
        :class:`NumericalWarning`.
        """
        R = self.r_factor(fit_intercept)
        d = self.d_in
        R11, R12 = R[:d, :d], R[:d, d:]
        U, s, Vt = svd(R11)
        info = numerical_rank(s, shape=(self.n, d))
        kappa = float(s[0] / s[-1]) if d and s[-1] > 0 else (1.0 if not d else float("inf"))
        if alpha > 0:
            if method == "svd":
                coef_t = Vt.T @ ((s / (s**2 + alpha))[:, None] * (U.T @ R12))
            else:
                aug = np.vstack([np.hstack([R11, R12]), np.hstack([np.sqrt(alpha) * np.eye(d), np.zeros_like(R12)])])
                Ra = sla.qr(aug, mode="r", check_finite=False)[0]
                coef_t = sla.solve_triangular(Ra[:d, :d], Ra[:d, d:], check_finite=False)
            route = method
        elif method == "qr" and info.rank == d:
            coef_t = sla.solve_triangular(R11, R12, check_finite=False)
            route = "qr"
        else:
            r = info.rank
            if r < d:
                warnings.warn(
                    f"the design has numerical rank {r} < {d} features (too few samples or collinear "
                    "columns); returning the minimum-norm least-squares solution",
                    NumericalWarning,
                    stacklevel=3,
                )
            coef_t = Vt[:r].T @ ((U[:, :r].T @ R12) / s[:r, None])
            route = "svd" if r == d else "min-norm"
        intercept = self.mean_y - self.mean_x @ coef_t if fit_intercept else np.zeros(self.d_out)
        return LstsqSolution(coef_t.T.copy(), intercept, kappa, info.rank, route)
