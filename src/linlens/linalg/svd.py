"""The one SVD of the package: float64, descending σ, one sign rule, a named tuple.

Every SVD in linlens goes through this module: :func:`svd` (thin or full, LAPACK), :func:`truncated_svd`
(top-k by full SVD, ARPACK or sketching) and :func:`randomized_svd` (randomized subspace iteration, numpy or
torch on any device). All return an :class:`SVDResult` ``(U, s, Vt)`` with ``A ≈ U diag(s) Vt``, singular
values descending, and the same sign rule (:func:`fix_signs`): in each column of U the entry of largest
magnitude is real and positive, and the matching row of Vt follows — scikit-learn's ``svd_flip`` (u-based).

Example:
    >>> U, s, Vt = svd(np.array([[0.0, -2.0], [1.0, 0.0]]))
    >>> s.tolist(), (U + 0.0).tolist(), (Vt + 0.0).tolist()
    ([2.0, 1.0], [[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 0.0]])
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg as sla
import torch
from scipy.sparse.linalg import LinearOperator, svds
from torch import Tensor

from linlens.errors import ConfigError, NonFiniteError, NumericalWarning, ShapeError
from linlens.validation import as_array, check_finite, is_torch

__all__ = ["SVDResult", "svd", "svd_leading", "truncated_svd", "randomized_svd", "fix_signs", "sign_flips",
           "spectral_norm", "check_svd", "top_eigh", "GRAM_MIN_RATIO"]

#: ``svd_leading(method="gram")`` finds the leading vectors from AᵀA, whose eigenvectors carry errors of order
#: ε·(σ₁/σ_k)²/(relative gap of σ²): where the k-th value is below this fraction of σ₁ (known before the vectors) it
#: takes ARPACK's instead (a 600 × 600 rank-60 matrix with σ down to 1e-6: Gram-route angles 2.6e-5, ARPACK 3.7e-8).
GRAM_MIN_RATIO = 1e-3


class SVDResult(NamedTuple):
    """Singular triplets ``A ≈ U diag(s) Vt``; unpacks as ``U, s, Vt``.

    Arguments:
        U: left singular vectors (m, k), columns orthonormal.
        s: singular values (k,), descending.
        Vt: right singular vectors as rows (k, n).

    Example:
        >>> U, s, Vt = svd(np.array([[0.0, 2.0], [1.0, 0.0]]))
        >>> s.tolist(), np.allclose(U @ np.diag(s) @ Vt, [[0.0, 2.0], [1.0, 0.0]])
        ([2.0, 1.0], True)
    """

    U: Any
    s: Any
    Vt: Any


# ------------------------------------------------------------------------------------------------ sign rule
def sign_flips(U: Any) -> Any:
    """The one sign rule: per column of U, the phase that makes its largest-|entry| real and positive.

    Arguments:
        U: (..., m, k) numpy array or torch tensor (a batch of matrices allowed; real or complex).

    Returns:
        (..., k) signs ±1 (unit-modulus phases for complex U; 1 for an all-zero column), same type as U.
        Multiply the columns of U by ``conj(signs)`` and the rows of Vt by ``signs``.

    Example:
        >>> sign_flips(np.array([[1.0, 0.5], [-3.0, 0.0]])).tolist()
        [-1.0, 1.0]
    """
    if is_torch(U):
        idx = U.abs().argmax(dim=-2, keepdim=True)
        top = torch.take_along_dim(U, idx, dim=-2).squeeze(-2)
        mag = top.abs()
        return torch.where(mag == 0, torch.ones_like(top), top / torch.where(mag == 0, torch.ones_like(mag), mag))
    U = np.asarray(U)
    idx = np.argmax(np.abs(U), axis=-2)[..., None, :]
    top = np.take_along_axis(U, idx, axis=-2)[..., 0, :]
    mag = np.abs(top)
    return np.where(mag == 0, 1.0, top / np.where(mag == 0, 1.0, mag)).astype(U.dtype, copy=False)


def fix_signs(U: Any, Vt: Any) -> tuple[Any, Any]:
    """Apply the sign rule of :func:`sign_flips`: largest-|entry| of each column of U positive, Vt follows.

    ``U diag(s) Vt`` is unchanged. Idempotent, batched over leading axes, numpy or torch.

    Arguments:
        U: (..., m, k). Vt: (..., k, n).

    Returns:
        (U, Vt) with the rule applied.

    Example:
        >>> U, Vt = fix_signs(-np.eye(2), np.eye(2))
        >>> U.tolist(), Vt.tolist()
        ([[1.0, 0.0], [0.0, 1.0]], [[-1.0, -0.0], [-0.0, -1.0]])
    """
    if U.shape[-1] == 0:
        return U, Vt
    sg = sign_flips(U)
    return U * sg.conj()[..., None, :], Vt * sg[..., :, None]


# ---------------------------------------------------------------------------------------------- full SVD
def _as_matrix(A: Any, name: str) -> np.ndarray:
    """2-D float64 (or complex128) numpy copy-free view of A; NaN/Inf rejected."""
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


def svd(A: Any, full_matrices: bool = False) -> SVDResult:
    """Singular value decomposition in float64 with descending σ and deterministic signs.

    The largest-|entry| of each column of U is positive; the matching row of Vᵀ is flipped with it.
    Falls back from LAPACK ``gesdd`` to the slower, more robust ``gesvd`` if the former fails.

    Arguments:
        A: matrix (m, n), numpy or torch (converted to float64 numpy; complex stays complex).
        full_matrices: return square U (m, m) and Vᵀ (n, n) instead of the thin factors.

    Returns:
        :class:`SVDResult` U (m, k), s (k,), Vt (k, n) with k = min(m, n) (thin), A = U diag(s) Vt.

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
    Uf, Vtf = fix_signs(U[:, :k], Vt[:k])
    if full_matrices:
        return SVDResult(np.concatenate([Uf, U[:, k:]], axis=1), s, np.concatenate([Vtf, Vt[k:]], axis=0))
    return SVDResult(Uf, s, Vtf)


def svd_leading(A: Any, k: int, method: str = "arpack", n_values: int | None = None) -> SVDResult:
    """Every singular value of A and its k leading singular vectors: what a report needs of a d × d operator whose
    spectrum is shown in full but whose vectors enter only top-k comparisons (principal angles).

    The values come from LAPACK ``gesdd`` without vectors (the same bidiagonalization as :func:`svd`, equal to its
    values to rounding: ~60% of a full SVD's time at d = 4096, the reduction being memory-bound); the vectors from
    :func:`truncated_svd` (ARPACK on the Gram operator, converged to machine precision: accurate for the leading
    singular values, which are the ones asked for), with the sign rule of :func:`fix_signs`. Small matrices
    (min(m, n) ≤ 256) or k > min(m, n)/4 take the full SVD, as ``truncated_svd`` does.

    ``method="gram"`` takes the vectors instead from the k leading eigenvectors of the Gram matrix AᵀA (or AAᵀ) by
    LAPACK ``syevr`` on that index range, then a Rayleigh–Ritz step (the SVD of the (m, k) product A V): its cost does
    not depend on the spectrum (one symmetric product and a tridiagonalization), where ARPACK's grows on clustered
    spectra (at d = 4096: 8.5 s against ARPACK's 16.5 s on the Wiener estimator of a B ⊗ B blur, whose values come in
    pairs). Forming AᵀA squares the spectrum — its vectors carry errors ~ε(σ₁/σ_k)²/gap — so when σ_k < σ₁ ·
    :data:`GRAM_MIN_RATIO` (the values are known first) the vectors come from ARPACK, as with "arpack".

    ``n_values`` (k ≤ n_values ≤ min(m, n)) asks for the leading n_values singular values only, not every one: no
    gesdd then (its bidiagonalization is most of the cost at d = 4096: ~20 s); the values are the Rayleigh–Ritz values
    of the same route as the vectors, computed with n_values pairs (the Gram route's, accurate to rounding relative to
    σ₁ where σ_k ≥ :data:`GRAM_MIN_RATIO` σ₁ — the ratio is read from the Gram eigenvalues —, else ARPACK's). s then has
    n_values entries: a caller must not take it for the whole spectrum (a numerical rank or a mean over every value
    needs them all; :func:`check_svd` accepts it only with ``partial_values=True``).

    Arguments:
        A: matrix (m, n), real, numpy or torch (converted to float64 numpy).
        k: number of leading singular vector pairs, 1 ≤ k ≤ min(m, n).
        method: "arpack" or "gram" (how the vectors are found; the values are gesdd's either way).
        n_values: return only this many leading singular values (k ≤ n_values ≤ min(m, n)); None: all of them.

    Returns:
        :class:`SVDResult` U (m, k), s (min(m, n),) — all of them, descending (or the leading ``n_values``) — and
        Vt (k, n). Functions that take a precomputed SVD accept it where they need only the leading k vectors
        (:func:`check_svd` with ``vectors``).

    Example:
        >>> A = np.random.default_rng(0).normal(size=(300, 300))
        >>> U, s, Vt = svd_leading(A, 5); full = svd(A)
        >>> U.shape, s.shape, bool(np.allclose(s, full.s)), bool(np.allclose(U, full.U[:, :5]))
        ((300, 5), (300,), True, True)
        >>> part = svd_leading(A, 5, method="gram", n_values=6)  # the leading 6 values only, no gesdd
        >>> part.s.shape, bool(np.allclose(part.s, full.s[:6], rtol=0, atol=1e-12 * full.s[0]))
        ((6,), True)
    """
    if method not in ("arpack", "gram"):
        raise ConfigError(f"method must be 'arpack' or 'gram'; got {method!r}")
    a = _as_matrix(A, "A")
    k = _check_k(k, a)
    mn = min(a.shape)
    if n_values is not None and (isinstance(n_values, bool) or not isinstance(n_values, (int, np.integer))
                                 or not k <= n_values <= mn):
        raise ConfigError(f"n_values must be an integer in [k = {k}, {mn}] or None; got {n_values!r}")
    p = mn if n_values is None else int(n_values)
    if mn <= 256 or max(k, p if p < mn else 0) > mn / 4 or np.iscomplexobj(a):
        U, s, Vt = svd(a)
        return SVDResult(U[:, :k], s[:p], Vt[:k])
    if p < mn:  # the leading p values from the vectors' own route (no gesdd)
        if method == "gram":
            U, sp, Vt = _leading_pairs_gram(a, p)
            if sp[0] > 0 and sp[k - 1] >= GRAM_MIN_RATIO * sp[0]:
                return SVDResult(U[:, :k], sp, Vt[:k])
        U, sp, Vt = truncated_svd(a, p, method="arpack")
        return SVDResult(U[:, :k], sp, Vt[:k])
    try:
        s = sla.svd(a, compute_uv=False, lapack_driver="gesdd", check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        s = sla.svd(a, compute_uv=False, lapack_driver="gesvd", check_finite=False)
    if method == "gram" and s[0] > 0 and s[k - 1] >= GRAM_MIN_RATIO * s[0]:
        U, Vt = _leading_vectors_gram(a, k)
    else:
        U, _, Vt = truncated_svd(a, k, method="arpack")
    return SVDResult(U, s, Vt)


def top_eigh(K: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m largest eigenpairs of a symmetric K (p, p), descending: LAPACK syevr on that index range (one
    tridiagonalization, m vectors back-transformed), or syevd on all of them when syevr fails (its rare "Internal
    Error" on near-identity matrices; the same pairs). Returns (w (m,), E (p, m)). The one Gram eigensolver of
    :func:`svd_leading` and :func:`~linlens.linalg.principal_subspace`'s exact route.

    Example:
        >>> w, E = top_eigh(np.diag([1.0, 3.0, 2.0]), 2)
        >>> w.tolist(), np.abs(E).T.tolist()
        ([3.0, 2.0], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    """
    p = len(K)
    lo = max(p - m, 0)
    try:
        w, E = sla.eigh(K, subset_by_index=[lo, p - 1], check_finite=False)
    except np.linalg.LinAlgError:  # syevr's rare "Internal Error" (near-identity matrices): the same pairs by syevd
        w, E = np.linalg.eigh(K)
        w, E = w[lo:], E[:, lo:]
    return w[::-1], E[:, ::-1]


def _leading_vectors_gram(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k leading singular vector pairs (U (m, k), Vt (k, n)) of a real a from the k leading eigenvectors of its
    smaller Gram matrix (LAPACK syevr on that index range) and a Rayleigh–Ritz step, signs by :func:`fix_signs`."""
    U, _, Vt = _leading_pairs_gram(a, k)
    return U, Vt


def _leading_pairs_gram(a: np.ndarray, k: int) -> SVDResult:
    """:func:`_leading_vectors_gram` with the Rayleigh–Ritz values: U (m, k), s (k,) descending, Vt (k, n)."""
    tall = a.shape[0] >= a.shape[1]
    b = a if tall else a.T
    _, V = top_eigh(b.T @ b, k)  # the (n, n) Gram matrix by BLAS syrk
    Ub, s, Wt = np.linalg.svd(b @ V, full_matrices=False)  # Rayleigh–Ritz: b V = Ub diag(σ) Wt, descending σ
    U, Vt = Ub, Wt @ V.T
    if not tall:
        U, Vt = Vt.T, U.T
    U, Vt = fix_signs(np.ascontiguousarray(U), np.ascontiguousarray(Vt))
    return SVDResult(U, s, Vt)


def check_svd(result: Any, shape: tuple[int, int], name: str = "svd", vectors: int | None = None,
              partial_values: bool = False) -> SVDResult:
    """Check that a precomputed :class:`SVDResult` is a thin SVD of a matrix of ``shape`` (a caller passing
    the SVD of one matrix saves recomputing it; a mismatch would silently give wrong numbers). With ``vectors``, a
    result of :func:`svd_leading` is accepted too: every singular value and at least ``vectors`` leading vectors;
    with ``partial_values`` also only the leading singular values (at least as many as the vectors, fewer than
    min(shape): ``svd_leading(n_values=)``) — for callers that tell a partial spectrum from a whole one by its length.

    Example:
        >>> A = np.arange(6.0).reshape(2, 3)
        >>> check_svd(svd(A), A.shape).Vt.shape
        (2, 3)
        >>> try:
        ...     check_svd(svd(A), (3, 2))
        ... except ShapeError as e:
        ...     print(str(e).split(" (U")[0])
        svd must be the thin SVD of a (3, 2) matrix
    """
    if not isinstance(result, tuple) or len(result) != 3:
        raise ConfigError(f"{name} must be an SVDResult (U, s, Vt); got {type(result).__name__}")
    U, s_, Vt = (np.asarray(x) for x in result)
    m, n = shape
    k = min(m, n)
    if vectors is not None and U.ndim == 2 and min(int(vectors), k) <= U.shape[1] <= k \
            and U.shape == (m, U.shape[1]) and Vt.shape == (U.shape[1], n) and (
            s_.shape == (k,) or (partial_values and s_.ndim == 1 and U.shape[1] <= s_.shape[0] < k)):
        return SVDResult(U, s_, Vt)
    if U.shape != (m, k) or s_.shape != (k,) or Vt.shape != (k, n):
        part = " (or the leading values, at least as many)" if partial_values else ""
        lead = f" or its {min(int(vectors), k)} leading vectors with every value{part}" if vectors is not None else ""
        raise ShapeError(f"{name} must be the thin SVD of a {shape} matrix (U {(m, k)}, s {(k,)}, Vt {(k, n)}"
                         f"{lead}); got U {U.shape}, s {s_.shape}, Vt {Vt.shape}")
    return SVDResult(U, s_, Vt)


def spectral_norm(A: Any) -> float:
    """‖A‖₂ = σ_max(A) in float64: all singular values for small matrices (min(shape) ≤ 256), else ARPACK
    (``scipy.sparse.linalg.svds`` with k = 1, a few dozen products with A and Aᵀ instead of an O(n³) SVD;
    converged to machine precision, tol = 0).

    Example:
        >>> spectral_norm(np.diag([1.0, -4.0, 2.0])), round(spectral_norm(np.eye(400) * 3.0), 12)
        (4.0, 3.0)
    """
    a = _as_matrix(A, "A")
    if a.size == 0:
        return 0.0
    if min(a.shape) <= 256:
        return float(sla.svdvals(a, check_finite=False)[0])
    if not np.any(a):
        return 0.0
    v0 = np.random.default_rng(0).standard_normal(min(a.shape))  # deterministic start
    s = svds(a, k=1, tol=0, v0=v0, return_singular_vectors=False, random_state=0)
    return float(np.max(s))


def _check_k(k: int, A: Any) -> int:
    shape = tuple(A.shape)
    if len(shape) != 2:
        raise ShapeError(f"A must be 2-D; got shape {shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(shape):
        raise ConfigError(f"k must be an integer in [1, {min(shape)}] for A of shape {shape}; got {k!r}")
    return int(k)


# -------------------------------------------------------------------------------------------- randomized
def randomized_svd(
    A: Any,
    k: int,
    *,
    n_oversamples: int = 10,
    n_iter: int | None = None,
    tol: float | None = None,
    max_iter: int = 60,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    full_sketch: bool = False,
    return_n_iter: bool = False,
) -> Any:
    """Top-k SVD by randomized subspace iteration with Rayleigh–Ritz, adaptive in the iteration count.

    A Gaussian sketch of width L = k + ``n_oversamples`` is pushed through A and Aᴴ; each iteration takes the
    SVD of the small (n, L) matrix AᴴQ (Rayleigh–Ritz; its right factor re-orthonormalizes the basis). With
    ``n_iter=None`` the iteration stops when the leading k left singular vectors change by less than ``tol``
    (Frobenius norm of the change after aligning the bases) between two iterations, up to ``max_iter``, with a
    :class:`NumericalWarning` if they have not converged — slowly decaying spectra get the iterations they
    need, easy ones stop after one or two. Runs in torch (numpy inputs on the CPU), so a CUDA tensor stays
    on its device.

    References:
        Halko, Martinsson, Tropp. Finding structure with randomness: probabilistic algorithms for
        constructing approximate matrix decompositions (2011), Alg. 4.4. https://arxiv.org/abs/0909.4061

    Arguments:
        A: matrix (m, n), numpy or torch; or a real ``scipy.sparse.linalg.LinearOperator`` giving only the
            products ``matmat`` and ``rmatmat`` (e.g. data read from disk chunk by chunk: each product is one
            pass over it), run in float64 numpy with the same iteration, stopping rule and sign rule.
        k: number of singular triplets, 1 ≤ k ≤ min(m, n).
        n_oversamples: extra sketch columns p (sketch width min(k + p, m, n)).
        n_iter: fixed number of power iterations, or None for the adaptive rule.
        tol: convergence tolerance of the adaptive rule (default 1e-10, 1e-4 in float32).
        max_iter: cap of the adaptive rule.
        seed: seed of the Gaussian sketch (a torch generator on A's device).
        dtype: torch dtype of the computation for torch inputs (default float64; float32 for speed on an
            accelerator); numpy inputs always run in float64.
        full_sketch: return all L Ritz triplets (the first k are the accurate ones) instead of k.
        return_n_iter: also return the number of power iterations run.

    Returns:
        :class:`SVDResult` U (m, k), s (k,) descending, Vt (k, n) in the input's array type, signs by
        :func:`fix_signs`; with ``return_n_iter`` the pair ``(SVDResult, n_iter)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> A = rng.normal(size=(50, 5)) @ rng.normal(size=(5, 40))
        >>> s = randomized_svd(A, 5).s
        >>> bool(np.allclose(s, np.linalg.svd(A, compute_uv=False)[:5]))
        True
    """
    k = _check_k(k, A)
    if n_oversamples < 0 or (n_iter is not None and n_iter < 0) or max_iter < 0:
        raise ConfigError(f"n_oversamples, n_iter and max_iter must be >= 0; got {n_oversamples}, {n_iter}, "
                          f"{max_iter}")
    torch_in = is_torch(A)
    if isinstance(A, LinearOperator):  # products only (e.g. passes over a file), in float64 on the CPU
        def prod(M: Tensor) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(A.matmat(M.numpy()), dtype=np.float64))

        def prod_h(M: Tensor) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(A.rmatmat(M.numpy()), dtype=np.float64))

        m, n = A.shape
        device, dtype_, check_nan = torch.device("cpu"), torch.float64, True
    else:
        if torch_in:
            X = A.detach()
            X = X.to(dtype if dtype is not None else (torch.complex128 if X.is_complex() else torch.float64))
        else:
            a = _as_matrix(A, "A")
            X = torch.from_numpy(a if a.flags.writeable else a.copy())
        Xh = X.mH
        # operands are made row-major (contiguous): a column-major factor from svd/qr times a transposed view
        # hits a slow matmul path (measured ~5x slower at L = 30)
        def prod(M: Tensor) -> Tensor:
            return X @ M

        def prod_h(M: Tensor) -> Tensor:
            return Xh @ M

        m, n = X.shape
        device, dtype_, check_nan = X.device, X.dtype, torch_in
    L = min(k + n_oversamples, m, n)
    if tol is None:
        tol = 1e-4 if dtype_ in (torch.float32, torch.float16, torch.bfloat16, torch.complex64) else 1e-10
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    real = dtype_.to_real() if dtype_.is_complex else dtype_
    G = torch.randn(n, L, generator=gen, dtype=real, device=device).to(dtype_)
    Y = prod(G)
    # NaN/Inf in A reach the Gaussian sketch (a pass over the small (m, L) product, not over A)
    if check_nan and not bool(torch.isfinite(Y).all()):
        bad = int((~torch.isfinite(X)).sum()) if torch_in else "some"
        raise NonFiniteError(f"A contains {bad} NaN/Inf value(s)")
    Q = torch.linalg.qr(Y)[0].contiguous()
    done, U_prev, change = 0, None, float("nan")
    limit = max_iter if n_iter is None else n_iter
    while True:
        W = prod_h(Q)  # (n, L); QᴴX = Wᴴ
        Vw, s, Uwh = torch.linalg.svd(W, full_matrices=False)  # W = Vw diag(s) Uwᴴ → QᴴX = Uw s Vwᴴ
        Vw = Vw.contiguous()
        U = Q @ Uwh.mH
        if n_iter is None and U_prev is not None:
            Ur, Pr = U[:, :k], U_prev[:, :k]
            change = torch.linalg.matrix_norm(Ur - Pr @ (Pr.mH @ Ur)).item()
            if change < tol:
                break
        if done >= limit:
            if n_iter is None:
                warnings.warn(
                    f"randomized SVD did not converge in {limit} power iterations (subspace change {change:.1e}"
                    f" > tol {tol:.1e}); singular values decay slowly near k = {k}: use a full SVD or more "
                    "oversampling",
                    NumericalWarning,
                    stacklevel=2,
                )
            break
        U_prev = U
        Q = torch.linalg.qr(prod(Vw))[0].contiguous()
        done += 1
    keep = L if full_sketch else k
    U, Vt = fix_signs(U[:, :keep], Vw[:, :keep].mH)
    s = s[:keep]
    out = SVDResult(U, s, Vt) if torch_in else SVDResult(U.numpy(), s.numpy(), Vt.resolve_conj().numpy())
    return (out, done) if return_n_iter else out


# --------------------------------------------------------------------------------------------- truncated
def truncated_svd(A: Any, k: int, method: str = "auto", seed: int = 0) -> SVDResult:
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
        :class:`SVDResult` U (m, k), s (k,) descending, Vt (k, n), in the input's array type.

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
        if method == "full":
            a = A.detach().to(torch.complex128 if A.is_complex() else torch.float64)
            U, s, Vt = torch.linalg.svd(a, full_matrices=False)
            U, Vt = fix_signs(U[:, :k], Vt[:k])
            return SVDResult(U, s[:k], Vt)
        U, s, Vt = truncated_svd(A.detach().cpu().double().numpy(), k, method, seed)
        return SVDResult(torch.as_tensor(U, device=A.device), torch.as_tensor(s, device=A.device),
                         torch.as_tensor(Vt, device=A.device))
    if method == "full":
        U, s, Vt = svd(A)
        return SVDResult(U[:, :k], s[:k], Vt[:k])
    a = _as_matrix(A, "A")
    v0 = np.random.default_rng(seed).standard_normal(min(a.shape))
    U, s, Vt = svds(a, k=k, v0=v0, solver="arpack")
    order = np.argsort(s)[::-1]
    U, Vt = fix_signs(U[:, order], Vt[order])
    return SVDResult(U, s[order], Vt)
