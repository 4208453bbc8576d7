"""Subspaces and eigenvalues of operators: principal angles, the gap-aware comparison of two operators'
singular subspaces (Wedin's bound), eigenvalue matching and eigenvalue condition numbers.

Comparing the top-k singular subspaces of two operators C and R means something only where both spectra
have a clear gap at k: otherwise the top-k subspace of either is not determined by the operator (a tiny
perturbation rotates it), and at k = min(m, n) two square operators trivially share the whole space, so
every angle is 0 whatever C and R are. :func:`subspace_comparison` therefore cuts k only at a clear gap of
both spectra, reports Wedin's δ and bound there, and reports no angles (with the reason) when there is no
such gap; :class:`SubspaceAngleProfile` holds the largest angle against every k with the gaps marked
(drawn by :func:`linlens.report.figures.plot_subspace_angles`).

References:
    | Davis, Kahan. The rotation of eigenvectors by a perturbation. III (1970). SIAM J. Numer. Anal. 7(1).
    | Wedin. Perturbation bounds in connection with singular value decomposition (1972). BIT 12.
    | Stewart, Sun. Matrix Perturbation Theory (1990), ch. V §4.
    | Björck, Golub. Numerical methods for computing angles between linear subspaces (1973).

Example:
    >>> rng = np.random.default_rng(0)
    >>> R = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 15))
    >>> res = subspace_comparison(R + 1e-6 * rng.normal(size=R.shape), R)
    >>> res.k, bool(res.max_angle <= np.arcsin(min(res.wedin_bound, 1.0)))
    (3, True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import torch
from scipy.optimize import linear_sum_assignment

from linlens._results import ResultMixin
from linlens.errors import ConfigError, NonFiniteError, NumericalWarning, ShapeError
from linlens.linalg.rank import RankInfo, numerical_rank
from linlens.linalg.svd import (
    SVDResult,
    _as_matrix,
    check_svd,
    fix_signs,
    randomized_svd,
    sign_flips,
    spectral_norm,
    svd,
    top_eigh,
)
from linlens.validation import as_array, is_torch

__all__ = [
    "principal_angles",
    "SubspaceAngleProfile",
    "SubspaceComparison",
    "subspace_comparison",
    "DEFAULT_MIN_GAP",
    "DEFAULT_MIN_NORM_GAP",
    "DEFAULT_MAX_K",
    "match_eigenvalues",
    "eigenvalue_condition_numbers",
    "principal_subspace",
    "PrincipalSubspace",
    "subspace_method",
    "KRYLOV_MAX_STEPS",
    "KRYLOV_TOL",
]

#: Default "clear gap" threshold of :func:`subspace_comparison`: relative gap (σ_k − σ_{k+1})/σ_k ≥ 0.5 in
#: both spectra, i.e. σ_{k+1} at most half of σ_k.
DEFAULT_MIN_GAP = 0.5
#: Default second condition of a clear gap: (σ_k − σ_{k+1})/σ_1 ≥ 0.1 in both spectra, so a cut in the tail
#: (where a relative gap is large only because σ_k is tiny) does not count. Over 200 pairs of unrelated
#: 64×64 Gaussian matrices the largest tail gap meeting the first condition was 0.038·σ_1.
DEFAULT_MIN_NORM_GAP = 0.1
#: The largest k of the principal-angle profile by default (its cost grows like K⁴; a report needs C's and R's
#: leading K singular vectors only: :func:`~linlens.linalg.svd_leading`).
DEFAULT_MAX_K = 128


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
    return u[:, : numerical_rank(s, shape=a.shape).rank]


# ------------------------------------------------------------------------------- gap-aware comparison
@dataclass(frozen=True)
class SubspaceAngleProfile(ResultMixin):
    """The largest principal angle between the top-k singular subspaces of C and R against every k.

    Arguments:
        ks: cuts k = 1 … K (K,).
        max_angles: largest principal angle (radians) over the left and right top-k subspaces (K,),
            from the sine of the largest angle where it is small and from the cosine where it is large
            (Knyazev & Argentati 2002), so accurate to ~1e-16 rad near 0 as well as near π/2.
        left_max_angles: largest angle of the left (column-space) subspaces (K,).
        right_max_angles: largest angle of the right (row-space) subspaces (K,).
        gaps_C: relative gap (σ_k − σ_{k+1})/σ_k of C at each k (K,) (0 where σ_k = 0; σ_{k+1} = 0 past
            the end of the spectrum).
        gaps_R: the same for R (K,).
        norm_gaps_C: (σ_k − σ_{k+1})/σ_1 of C at each k (K,). norm_gaps_R: the same for R.
        deltas: Wedin's δ at each k (K,): σ_k(R) − σ_{k+1}(C) or σ_k(C) − σ_{k+1}(R), whichever orientation
            gives the smaller bound; ≤ 0 in both means no separation (no bound).
        wedin_bounds: Wedin's bound on sin θ_max at each k (K,) (inf where δ ≤ 0).
        clear: k is a clear gap of both operators (K,) bool: both relative gaps ≥ ``min_gap``, both
            norm gaps ≥ ``min_norm_gap``, k ≤ min(rank C, rank R) and k < min(m, n).
        min_gap: the threshold on the relative gaps. min_norm_gap: the threshold on the norm gaps.

    Example:
        >>> C = np.diag([3.0, 2.0, 1e-3])
        >>> prof = subspace_comparison(C, C + 1e-6, k=2).profile
        >>> prof.ks.tolist(), bool(prof.max_angles[1] < 1e-5)
        ([1, 2, 3], True)
    """

    ks: np.ndarray
    max_angles: np.ndarray
    left_max_angles: np.ndarray
    right_max_angles: np.ndarray
    gaps_C: np.ndarray
    gaps_R: np.ndarray
    norm_gaps_C: np.ndarray
    norm_gaps_R: np.ndarray
    deltas: np.ndarray
    wedin_bounds: np.ndarray
    clear: np.ndarray
    min_gap: float
    min_norm_gap: float


@dataclass(frozen=True)
class SubspaceComparison(ResultMixin):
    """Principal angles between the top-k singular subspaces of C and R, cut only at a clear gap of both.

    Arguments:
        k: the cut, or None when neither the caller gave one nor both spectra have a clear gap.
        reason: why this k (or why none), in words.
        clear: k is a clear gap of both operators (False for a forced k without one, and when k is None).
        left_angles: principal angles (k,) between the top-k left singular subspaces, ascending, radians;
            None when k is None.
        right_angles: the same for the right singular subspaces (k,); None when k is None.
        max_angle: the largest of both (radians); None when k is None.
        delta: Wedin's δ at k: σ_k of one operator minus σ_{k+1} of the other (the orientation with the
            smaller bound); None when k is None.
        wedin_bound: Wedin's bound max(‖(C−R)V‖₂, ‖(C−R)ᵀU‖₂)/δ on sin θ_max (U, V the top-k singular
            vectors of the operator whose σ_k enters δ); inf when δ ≤ 0, None when k is None.
        norm_bound: the simpler ‖C − R‖₂/δ (≥ ``wedin_bound``); inf when δ ≤ 0, None when k is None.
        gap_C: relative gap (σ_k − σ_{k+1})/σ_k of C at k; None when k is None.
        gap_R: the same for R.
        min_gap: threshold of a clear relative gap. min_norm_gap: threshold of a clear gap relative to σ_1.
        rank_C: numerical rank of C with its gap. rank_R: that of R. None when only the leading singular values
            were given (``svd_leading(n_values=)``): a rank needs every value.
        singular_values_C: (min(m, n),) descending. singular_values_R: (min(m, n),). Either holds only the
            leading values when the caller's factorization had only those (its length says so).
        profile: :class:`SubspaceAngleProfile`, the largest angle against every k (for a figure).

    Example:
        >>> C = np.diag([3.0, 2.0, 1e-3])
        >>> cmp = subspace_comparison(C, C + 1e-6)
        >>> cmp.k, cmp.clear, bool(cmp.max_angle < 1e-5)
        (2, True, True)
    """

    k: int | None
    reason: str
    clear: bool
    left_angles: np.ndarray | None
    right_angles: np.ndarray | None
    max_angle: float | None
    delta: float | None
    wedin_bound: float | None
    norm_bound: float | None
    gap_C: float | None
    gap_R: float | None
    min_gap: float
    min_norm_gap: float
    rank_C: RankInfo | None
    rank_R: RankInfo | None
    singular_values_C: np.ndarray
    singular_values_R: np.ndarray
    profile: SubspaceAngleProfile


def _relative_gaps(s: np.ndarray, K: int) -> np.ndarray:
    nxt = np.append(s[1:], 0.0)[:K]
    sk = s[:K]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sk > 0, (sk - nxt) / np.where(sk > 0, sk, 1.0), 0.0)


def _norm_gaps(s: np.ndarray, K: int) -> np.ndarray:
    nxt = np.append(s[1:], 0.0)[:K]
    return (s[:K] - nxt) / s[0] if len(s) and s[0] > 0 else np.zeros(K)


def _lambda_max(B: np.ndarray) -> float:
    """The largest eigenvalue of a symmetric matrix B (k, k), by LAPACK's divide and conquer (syevd).

    Not ``scipy.linalg.eigvalsh(subset_by_index=...)``: its MRRR driver (syevr) fails with "Internal Error" (and
    syevx does not converge) on matrices within rounding of the identity, which is exactly what two equal
    subspaces give here."""
    return float(np.linalg.eigvalsh(B)[-1])


def _leading_block_extreme(M: np.ndarray, K: int, largest: bool, psd: bool) -> np.ndarray:
    """For k = 1..K the largest eigenvalue (psd) or the smallest singular value of M[:k, :k]."""
    out = np.empty(K)
    for k in range(1, K + 1):
        B = M[:k, :k]
        if psd:
            out[k - 1] = _lambda_max(B)
        else:
            sv = sla.svdvals(B, check_finite=False)
            out[k - 1] = sv[0] if largest else sv[-1]
    return out


def _leading_max_angles(Qa: np.ndarray, Qb: np.ndarray, K: int) -> np.ndarray:
    """Largest principal angle between span(Qa[:, :k]) and span(Qb[:, :k]) for k = 1..K (orthonormal columns).

    Sine/cosine combination (Knyazev & Argentati 2002, SIAM J. Sci. Comput. 23(6), §3; Björck & Golub 1973): the
    cosine of the largest angle is the smallest singular value of Qa_kᵀQb_k, which cannot resolve angles below
    ~1e-8 (arccos of a number within eps of 1); its sine is ‖(I − Qa_k Qa_kᵀ) Qb_k‖₂, accurate near 0. The sine is
    used where sin² ≤ 1/2, the cosine elsewhere. For all k at once: with G = Qaᵀ Qb_K and the part of Qb_K outside
    span(Qa), P = Qb_K − Qa G, the squared sine at k is λ_max of (Σ_{i ≥ k} gᵢgᵢᵀ + PᵀP)[:k, :k] (gᵢ the rows of
    G), a sum of positive semidefinite terms accumulated from the last row up, so nothing cancels."""
    G = Qa.T @ Qb[:, :K]
    P = Qb[:, :K] - Qa @ G
    cos = np.clip(_leading_block_extreme(G[:K], K, False, False), 0.0, 1.0)
    S = G[K:].T @ G[K:] + P.T @ P
    sin2 = np.empty(K)
    for k in range(K, 0, -1):
        sin2[k - 1] = _lambda_max(S[:k, :k])
        S += np.outer(G[k - 1], G[k - 1])
    sin = np.sqrt(np.clip(sin2, 0.0, 1.0))
    return np.where(sin * sin <= 0.5, np.arcsin(sin), np.arccos(cos))


def _residual_norms(E: np.ndarray, U: np.ndarray, Vt: np.ndarray, K: int) -> np.ndarray:
    """max(‖E V_k‖₂, ‖Eᵀ U_k‖₂) for k = 1..K (V_k, U_k the first k singular vectors)."""
    EV = E @ Vt[:K].T
    EU = E.T @ U[:, :K]
    a = _leading_block_extreme(EV.T @ EV, K, True, True)
    b = _leading_block_extreme(EU.T @ EU, K, True, True)
    return np.sqrt(np.maximum(np.maximum(a, b), 0.0))


def _wedin(sa: np.ndarray, sb: np.ndarray, K: int) -> np.ndarray:
    """δ = σ_k(a) − σ_{k+1}(b) for k = 1..K (σ past the end of the spectrum is 0)."""
    return sa[:K] - np.append(sb[1:], 0.0)[:K]


def _bound(res: np.ndarray, delta: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(delta > 0, res / np.where(delta > 0, delta, 1.0), np.inf)


def subspace_comparison(
    C: Any,
    R: Any,
    k: int | None = None,
    min_gap: float = DEFAULT_MIN_GAP,
    min_norm_gap: float = DEFAULT_MIN_NORM_GAP,
    max_k: int | None = DEFAULT_MAX_K,
    *,
    svd_C: SVDResult | None = None,
    svd_R: SVDResult | None = None,
) -> SubspaceComparison:
    """Principal angles between the top-k singular subspaces of C and R, with k cut at a clear spectral gap.

    A **clear gap** at k, in both spectra: the relative gap (σ_k − σ_{k+1})/σ_k reaches ``min_gap`` (default
    0.5: σ_{k+1} at most half of σ_k) and the gap is a visible part of the operator, (σ_k − σ_{k+1})/σ_1 ≥
    ``min_norm_gap`` (default 0.1; a perturbation of relative size ε moves a subspace by up to ~ε/that);
    moreover k is at most both numerical ranks and k < min(m, n) (at the full dimension two square
    operators share the whole space and every angle is trivially 0). When
    ``k`` is None the cut is the clear gap with the largest min(gap_C, gap_R) (ties: the smaller k); when
    there is none, no angles are reported (``k`` None, ``reason`` says why). A ``k`` given by the caller
    is used as is, and ``clear`` says whether it is a clear gap.

    At the cut, Wedin's theorem (with R̃ = R, the operator whose vectors enter the residuals, and
    δ = σ_k(R) − σ_{k+1}(C) > 0) bounds both the left and the right subspaces:
    sin θ_max ≤ max(‖(C − R)V_R‖₂, ‖(C − R)ᵀU_R‖₂)/δ ≤ ‖C − R‖₂/δ. The roles of C and R may be swapped
    (δ = σ_k(C) − σ_{k+1}(R), vectors of C); both bounds hold and the smaller is reported with its δ.

    References:
        Davis, Kahan. The rotation of eigenvectors by a perturbation. III (1970).
        Wedin. Perturbation bounds in connection with singular value decomposition (1972).
        Stewart, Sun. Matrix Perturbation Theory (1990), Theorem V.4.4.

    Arguments:
        C: operator (m, n) under test, numpy or torch.
        R: reference operator (m, n).
        k: a cut to use instead of the automatic one, 1 ≤ k ≤ min(m, n).
        min_gap: threshold of a clear relative gap (σ_k − σ_{k+1})/σ_k, in (0, 1].
        min_norm_gap: threshold of a clear gap relative to the norm, (σ_k − σ_{k+1})/σ_1, in [0, 1].
        max_k: the largest k examined for the automatic cut and the profile (None: min(m, n)); the profile
            costs O(K⁴) for K cuts.
        svd_C, svd_R: thin SVDs of C and R already computed by the caller (:func:`~linlens.linalg.svd`), so that
            a d × d operator is factorized once per report (each is checked against the operator's shape); or
            every singular value with the leading vectors only (:func:`~linlens.linalg.svd_leading`), at least as
            many as the largest k examined (min(``max_k``, min(m, n)), or ``k``); or only the leading values
            (``svd_leading(n_values=)``): then k < their number (the cut needs σ_{k+1}) and that operator's rank is
            None (bounded below by its values above the rank threshold, which is all the cut uses).

    Returns:
        :class:`SubspaceComparison`.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> subspace_comparison(rng.normal(size=(8, 8)), rng.normal(size=(8, 8)), min_gap=0.99).k is None
        True
    """
    c = as_array(C, "C", ndim=2)
    r = as_array(R, "R", ndim=2)
    if c.shape != r.shape:
        raise ShapeError(f"C and R must have the same shape; got C {c.shape} and R {r.shape}")
    if not (isinstance(min_gap, (int, float)) and 0 < min_gap <= 1):
        raise ConfigError(f"min_gap must be a relative gap in (0, 1]; got {min_gap!r}")
    if not (isinstance(min_norm_gap, (int, float)) and 0 <= min_norm_gap <= 1):
        raise ConfigError(f"min_norm_gap must be in [0, 1]; got {min_norm_gap!r}")
    m, n = c.shape
    mn = min(m, n)
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= mn):
        raise ConfigError(f"k must be an integer in [1, {mn}] or None; got {k!r}")
    if max_k is not None and (isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or max_k < 1):
        raise ConfigError(f"max_k must be a positive integer or None; got {max_k!r}")
    K = mn if max_k is None else min(mn, int(max_k))
    if k is not None:
        K = max(K, int(k))
    Uc, sc, Vtc = svd(c) if svd_C is None else check_svd(svd_C, c.shape, "svd_C", vectors=K, partial_values=True)
    Ur, sr, Vtr = svd(r) if svd_R is None else check_svd(svd_R, r.shape, "svd_R", vectors=K, partial_values=True)
    # a partial spectrum (the leading values only, svd_leading(n_values=)): cuts need σ_{k+1}, so k < its length; its
    # numerical rank is not known (None), only bounded below by the values above the rank threshold
    known = min(len(sc) - (len(sc) < mn), len(sr) - (len(sr) < mn))
    if k is not None and k > known:
        raise ConfigError(f"k = {k} needs σ_k+1 of both operators; the factorizations given hold {len(sc)} (C) and "
                          f"{len(sr)} (R) singular values of {mn}")
    K = min(K, known)
    E = c - r
    info_c = numerical_rank(sc, shape=c.shape)
    info_r = numerical_rank(sr, shape=r.shape)
    low_c, low_r = info_c.rank, info_r.rank  # ranks (or lower bounds of the ranks of partial spectra)
    info_c, info_r = (info_c if len(sc) == mn else None), (info_r if len(sr) == mn else None)

    # ---- profile over k = 1..K (block-wise from two small products per side; cosines only)
    ks = np.arange(1, K + 1)
    gC, gR = _relative_gaps(sc, K), _relative_gaps(sr, K)
    nC, nR = _norm_gaps(sc, K), _norm_gaps(sr, K)
    left = _leading_max_angles(Uc, Ur, K)
    right = _leading_max_angles(Vtc.T, Vtr.T, K)
    dR, dC = _wedin(sr, sc, K), _wedin(sc, sr, K)
    bR = _bound(_residual_norms(E, Ur, Vtr, K), dR)
    bC = _bound(_residual_norms(E, Uc, Vtc, K), dC)
    use_c = bC < bR
    deltas = np.where(use_c, dC, dR)
    bounds = np.where(use_c, bC, bR)
    ok_rank = ks <= min(low_c, low_r)
    clear = (gC >= min_gap) & (gR >= min_gap) & (nC >= min_norm_gap) & (nR >= min_norm_gap) & ok_rank & (ks < mn)
    profile = SubspaceAngleProfile(ks, np.maximum(left, right), left, right, gC, gR, nC, nR, deltas, bounds,
                                   clear, float(min_gap), float(min_norm_gap))

    common = dict(min_gap=float(min_gap), min_norm_gap=float(min_norm_gap), rank_C=info_c, rank_R=info_r,
                  singular_values_C=sc, singular_values_R=sr, profile=profile)
    if k is None:
        if not clear.any():
            score = np.where(ok_rank & (ks < mn) & (nC >= min_norm_gap) & (nR >= min_norm_gap),
                             np.minimum(gC, gR), -np.inf)
            if K == 0 or min(low_c, low_r) == 0 or mn == 1:
                why = (f"no cut to compare: numerical ranks {low_c} (C) and {low_r} (R), min(m, n) = {mn}")
            elif not np.isfinite(score).any():
                why = (f"no clear spectral gap of both operators: no k in [1, {min(K, mn - 1)}] has gaps "
                       f"(σ_k − σ_k+1)/σ_1 ≥ {min_norm_gap:g} in both spectra; the top-k subspaces are not well "
                       "defined, so no angles are reported")
            else:
                j = int(np.argmax(score))
                why = (f"no clear spectral gap of both operators: no k in [1, {min(K, mn - 1)}] has relative gaps "
                       f"(σ_k − σ_k+1)/σ_k ≥ {min_gap:g} and (σ_k − σ_k+1)/σ_1 ≥ {min_norm_gap:g} in both spectra "
                       f"(best relative gap where the second holds: {score[j]:.3g} at k = {j + 1}); the top-k "
                       "subspaces are not well defined, so no angles are reported")
            return SubspaceComparison(k=None, reason=why, clear=False, left_angles=None, right_angles=None,
                                      max_angle=None, delta=None, wedin_bound=None, norm_bound=None, gap_C=None,
                                      gap_R=None, **common)
        score = np.where(clear, np.minimum(gC, gR), -np.inf)
        kk = int(np.argmax(score)) + 1
        why = (f"clear spectral gap of both operators at k = {kk}: relative gaps {gC[kk - 1]:.3g} (C) and "
               f"{gR[kk - 1]:.3g} (R) ≥ {min_gap:g}, gaps/σ_1 {nC[kk - 1]:.3g} (C) and {nR[kk - 1]:.3g} (R) ≥ "
               f"{min_norm_gap:g}")
    else:
        kk = int(k)
        j = kk - 1
        trivial = ", k = min(m, n): angles trivially 0 for square operators" if kk == mn else ""
        why = (f"k = {kk} given by the caller; it is " + ("" if clear[j] else "NOT ") +
               f"a clear gap of both operators (relative gaps {gC[j]:.3g} (C), {gR[j]:.3g} (R), min_gap "
               f"{min_gap:g}; gaps/σ_1 {nC[j]:.3g} (C), {nR[j]:.3g} (R), min_norm_gap {min_norm_gap:g}{trivial})")
    # ---- accurate values at the cut
    la = principal_angles(Uc[:, :kk], Ur[:, :kk])
    ra = principal_angles(Vtc[:kk].T, Vtr[:kk].T)
    j = kk - 1
    dr, dc = float(dR[j]), float(dC[j])
    res_r = max(np.linalg.norm(E @ Vtr[:kk].T, 2), np.linalg.norm(E.T @ Ur[:, :kk], 2))
    res_c = max(np.linalg.norm(E @ Vtc[:kk].T, 2), np.linalg.norm(E.T @ Uc[:, :kk], 2))
    br = res_r / dr if dr > 0 else float("inf")
    bc = res_c / dc if dc > 0 else float("inf")
    delta, bound = (dc, bc) if bc < br else (dr, br)
    e2 = spectral_norm(E)
    nb = e2 / delta if delta > 0 else float("inf")
    return SubspaceComparison(
        k=kk, reason=why, clear=bool(clear[j]), left_angles=la, right_angles=ra,
        max_angle=float(max(la.max(initial=0.0), ra.max(initial=0.0))), delta=float(delta),
        wedin_bound=float(bound), norm_bound=float(nb), gap_C=float(gC[j]), gap_R=float(gR[j]), **common,
    )


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


# ------------------------------------------------------------------------------- principal subspace of data
#: Measured costs (one thread, seconds per unit; shared/AMD EPYC, numpy/OpenBLAS) of the routes of
#: :func:`principal_subspace`: the Gram product per n·d·p (p = min(n, d)), its symmetric eigenproblem per p³
#: (LAPACK syevr, top k + 1 pairs), and one power iteration of the randomized SVD per n·d·L (two products and
#: the small SVD; float32 data).
_GRAM_PRODUCT_S, _GRAM_EIGH_S, _POWER_ITER_S = 1.93e-11, 8.6e-11, 8.0e-11

#: Block Krylov route: at most this many Krylov steps q (the basis [XᵀΩ, (XᵀX)XᵀΩ, …, (XᵀX)^q XᵀΩ], 1 + 2(q + 1)
#: products with X; on Xᵀ when n < d), stopping (``converged``) when every top-k pair's relative residual
#: (‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ, or ‖X vᵢ − sᵢuᵢ‖/sᵢ on Xᵀ) is at most KRYLOV_TOL. Each pair is measured against its own sᵢ:
#: a stop on the captured variance Σ sᵢ² (this route's first rule) let one dominant direction hide the others
#: (σ₁ = 1000, σ₂..₂₀ ≈ 1: "converged" after 1 step, 88° from the exact subspace). On blurred-image rows like
#: ``bench_analyze.py --side 128`` (4,800 × 16,384, flat spectrum at k = 256, relative gap 0.001) q = 3 leaves a
#: largest residual of 5e-3 and q = 4 6e-5 (1.3e-6 more variance).
KRYLOV_MAX_STEPS, KRYLOV_TOL = 4, 1e-3


def subspace_method(n: int, d: int, k: int, n_oversamples: int = 10, max_iter: int = 7) -> str:
    """The cheaper route of :func:`principal_subspace` for centred data (n, d) held in memory: "gram" (the exact
    top-k subspace from the eigen-decomposition of the smaller Gram matrix, XXᵀ or XᵀX: n·d·p + p³ work,
    p = min(n, d)) or "krylov" (block Krylov of block width L = k + ``n_oversamples``, costed at 3 steps: 9
    products of n·d·L), by the measured costs of each step on one thread. ``max_iter`` is not used by the rule
    (kept for callers of the randomized route).

    Example:
        >>> subspace_method(2000, 16384, 256), subspace_method(8000, 16384, 256), subspace_method(500, 36, 4)
        ('gram', 'krylov', 'gram')
    """
    p = min(n, d)
    L = min(k + n_oversamples, n, d)
    gram = _GRAM_PRODUCT_S * n * d * p + _GRAM_EIGH_S * p**3
    return "gram" if gram <= _POWER_ITER_S / 2 * 9 * n * d * L else "krylov"


@dataclass(frozen=True)
class PrincipalSubspace(ResultMixin):
    """The top-k right singular subspace of a centred data matrix X (n, d) and how accurate it is.

    Arguments:
        Vt: (k, d) orthonormal rows (float64), the singular vectors' order, signs by :func:`fix_signs` (on the left
            vectors).
        s: (k,) singular values of X along them (Ritz values; exact for "gram").
        s_next: σ_{k+1} ("gram": exact) or its Ritz estimate (a lower bound; "randomized"); nan when unknown.
        residuals: (k,) relative residuals ‖X vᵢ − sᵢ uᵢ‖ / sᵢ of the pairs (with Xᵀuᵢ = sᵢvᵢ; "krylov" with n ≥ d:
            the other side, ‖Xᵀuᵢ − sᵢvᵢ‖ / sᵢ, see ``residual_form``): a singular value of X lies within
            sᵢ·residualᵢ of each sᵢ (0 up to rounding when exact). "krylov" on X of rank r < k: the directions past r
            have sᵢ = 0 and residual ‖X vᵢ‖ / s₁.
        method: "gram", "krylov" or "randomized".
        n_iter: power iterations ("randomized") or Krylov steps q ("krylov") run (0 for "gram").
        converged: the iteration met its tolerance (True for "gram"; "krylov": every residual ≤ its ``tol``).
        last_gain: "krylov": the fraction of the captured variance Σ sᵢ² that the last Krylov step added (reported, not
            the stopping rule); nan for the other routes.
        residual_form: the residual reported, in words: "‖X vᵢ − sᵢuᵢ‖/sᵢ" (Xᵀuᵢ = sᵢvᵢ by construction) or, for
            "krylov" on X with n ≥ d rows, "‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ" (X vᵢ = sᵢuᵢ by construction); "gram": the eigenpairs'
            relative residual in the Gram matrix.

    Example:
        >>> X = np.diag([3.0, 2.0, 1.0])[:, :2] @ np.eye(2, 4)  # singular values 3, 2 along e₁, e₂ of R⁴
        >>> p = principal_subspace(X, 1)
        >>> p.method, p.s.round(12).tolist(), round(p.s_next, 12), round(p.relative_gap, 12), p.max_residual < 1e-12
        ('gram', [3.0], 2.0, 0.333333333333, True)
    """

    Vt: np.ndarray
    s: np.ndarray
    s_next: float
    residuals: np.ndarray
    method: str
    n_iter: int
    converged: bool
    last_gain: float = float("nan")
    residual_form: str = "‖X vᵢ − sᵢuᵢ‖/sᵢ"

    @property
    def max_residual(self) -> float:
        """The largest relative residual over the k pairs."""
        return float(np.max(self.residuals)) if self.residuals.size else 0.0

    @property
    def relative_gap(self) -> float:
        """(s_k − s_{k+1}) / s_k: how well the data determine the top-k subspace (small: a nearly flat spectrum at k,
        so a small perturbation of the data rotates it; Davis–Kahan/Wedin: sin θ ≲ residual / gap)."""
        sk = float(self.s[-1]) if self.s.size else 0.0
        return (sk - self.s_next) / sk if sk > 0 and np.isfinite(self.s_next) else float("nan")


def _orthonormal_rows(V: np.ndarray) -> np.ndarray:
    """Rows orthonormal in float64 (QR, each direction's sign kept): V (k, d) nearly orthonormal already."""
    Q, Rr = np.linalg.qr(np.asarray(V, dtype=np.float64).T)
    sg = np.sign(np.diag(Rr))
    return (Q * np.where(sg == 0, 1.0, sg)).T.copy()


def _gram_subspace(X: np.ndarray, k: int) -> PrincipalSubspace:
    """Exact top-k subspace from the smaller Gram matrix (XXᵀ when n < d, else XᵀX), top k + 1 eigenpairs."""
    n, d = X.shape
    wide = n < d
    K = X @ X.T if wide else X.T @ X  # symmetric products: BLAS syrk
    p = len(K)
    w, E = top_eigh(K, k + 1)  # descending; syevd where syevr fails
    lam = np.maximum(w[:k], 0.0)
    s = np.sqrt(lam)
    s_next = float(np.sqrt(max(w[k], 0.0))) if len(w) > k else 0.0
    Ek = E[:, :k]
    scale = np.maximum(lam, max(lam[0] if lam.size else 0.0, np.finfo(float).tiny) * p * np.finfo(float).eps)
    res = np.linalg.norm(K @ Ek - Ek * w[:k], axis=0) / scale
    if wide:  # E = left vectors U: V = Xᵀ U / s, re-orthonormalized (a zero direction gets any orthonormal one)
        U = Ek
        V = (X.T @ U) / np.where(s > 0, s, 1.0)
    else:
        V = Ek
        U = (X @ V) / np.where(s > 0, s, 1.0)
    U, Vt = fix_signs(U, V.T)
    return PrincipalSubspace(_orthonormal_rows(Vt), s, s_next, res, "gram", 0, True,
                             residual_form="‖K eᵢ − λᵢeᵢ‖/λᵢ of the smaller Gram matrix K (λᵢ = sᵢ²)")


def _range_basis(K: np.ndarray, cut: float, rel: float = 0.0, out: np.ndarray | None = None,
                 work: np.ndarray | None = None) -> np.ndarray:
    """Orthonormal basis (d, r) of the range of K (d, L) without its directions of singular value below ``cut`` or
    below ``rel`` times the largest: the eigen-decomposition of the small Gram KᵀK (KᵀK = E Λ Eᵀ, Q = K E Λ^(−1/2) over
    the kept λ), twice (the second pass restores the orthogonality the first loses to the Gram's squared condition
    number; Cholesky QR2, Fukaya et al. 2014, with the rank cut of an eigen-decomposition). Costs two d·L² products, a
    tenth of a Householder QR. ``work`` and ``out`` (d, ≥ L), when given, receive the first pass and the result in
    their leading columns (the result is then a view of ``out``)."""
    Q = K
    for dest in (work, out):
        lam, E = np.linalg.eigh(Q.T @ Q)
        keep = lam > max(cut * cut, rel * rel * (float(lam[-1]) if lam.size else 0.0))
        if not keep.any():
            return np.zeros((K.shape[0], 0))
        F = E[:, keep] / np.sqrt(lam[keep])
        Q = Q @ F if dest is None else np.matmul(Q, F, out=dest[:, :F.shape[1]])
        cut, rel = 0.5, 0.0  # second pass: Q has orthonormal columns up to rounding; keep them all
    return Q


def _complete_rows(Vt: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` more orthonormal rows (m, d) orthogonal to the orthonormal rows of Vt (r, d): Gaussian rows projected off
    Vt twice, then orthonormalized (QR)."""
    G = rng.standard_normal((m, Vt.shape[1]))
    for _ in range(2):
        G -= (G @ Vt.T) @ Vt
    return np.linalg.qr(G.T)[0].T


def _krylov_subspace(X: Any, k: int, n_oversamples: int, max_steps: int, tol: float,
                     seed: int) -> PrincipalSubspace:
    """Top-k right singular subspace of X (n, d), a float32 or float64 array, by block Krylov (Musco & Musco 2015):
    the basis Q of [XᵀΩ, (XᵀX)XᵀΩ, …, (XᵀX)^q XᵀΩ] (Ω Gaussian (n, L)), each new block orthogonalized twice against the
    earlier ones (float64), then Rayleigh–Ritz on X Q. Step j takes two products, P_j = X Q_j and Xᵀ P_j (the next
    block before its orthogonalization), 1 + 2(q + 1) in all: the last Xᵀ P gives the residuals (U = [P_0 … P_j] W / s,
    so Xᵀ U = [XᵀP_0 … XᵀP_j] W / s). With fewer rows than columns (n < d) all of this runs on Xᵀ, so that the
    float64 basis and its orthogonalization live in the smaller space; X's right vectors are then P W / s.

    Stopping rule: every top-k pair's relative residual ‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ ≤ ``tol`` — each pair against its own sᵢ, so
    one dominant direction cannot hide the others —, else ``max_steps``. Each step reads its residuals from the next
    block's new part (I − QQᵀ) Xᵀ P_j, formed by that block's Gram–Schmidt anyway (the rest of Xᵀuᵢ − sᵢvᵢ vanishes
    up to rounding and the cut directions); ``converged`` is set from the final residuals, formed in full (in float32
    with one dominant direction the rounded products leave more than the estimate sees: then not converged).

    A new block's directions are cut as linearly dependent only below a fraction of the block's own largest after
    projection (each column first scaled by its norm before projection) — never relative to the
    whole block, whose norm one dominant direction makes ~σ₁²/σᵢ² times larger than the new directions (such a cut
    removed every new direction in float32). Directions that are rounding noise cost a column and do no harm
    (Rayleigh–Ritz finds their Ritz values at the rounding level). Ritz values below the products' rounding or below
    the resolution of the squared Gram PᵀP they come from, √(pε)·s₁ (p its size; ~1e-7·s₁ in float64), are returned
    as sᵢ = 0 (X of rank < k, or a tail too small to resolve) along orthonormal directions (residual ‖X vᵢ‖/s₁) as
    in the Gram route, so that Vt always has k rows; a block with nothing left (X = 0, or an exhausted space) ends
    the iteration."""
    n0, d0 = X.shape
    # the basis lives in the smaller of the two spaces: with fewer rows than columns the iteration runs on Xᵀ (a view),
    # whose right vectors are X's left ones U; X's right vectors V = XᵀU/s are then its products P W / s (no more
    # passes) and the residuals are those of the other side, ‖X vᵢ − sᵢuᵢ‖/sᵢ (the basis's orthogonalization, a
    # float64 cost ∝ its length, halves at n = d/2)
    swap = n0 < d0
    X = X.T if swap else X
    n, d = X.shape
    dt = X.dtype
    L = min(k + n_oversamples, n, d)

    def prod(M: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.copyto(out, X @ M.astype(dt))  # X M in float64, into ``out``
        return out

    def prod_h(M: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.copyto(out, X.T @ M.astype(dt))
        return out

    # rounding of a product with X relative to ‖X‖₂ (an entry sums max(n, d) terms; 4√(max(n, d))·ε, generous): a
    # Ritz value below noise·s₁ is a zero singular value to the products' precision
    noise = 4.0 * np.sqrt(max(n, d)) * float(np.finfo(dt).eps)
    drop = 1e-5 if dt == np.float32 else 1e-12  # in a new block: directions this far below its largest are dependent
    rng = np.random.default_rng(seed)
    # every block-sized float64 array lives in a buffer allocated once (a fresh 35 MB temporary per operation, at
    # d = 16,384, is mapped and zeroed afresh by the kernel each time): the basis [Q_0 … Q_j], the products
    # [P_0 … P_j] = X [Q_0 … Q_j] and [XᵀP_0 … XᵀP_j] in column buffers (block j in columns c_j … c_(j+1)), the block
    # being orthogonalized (Kw) and one scratch block (T)
    cols = L * (max_steps + 1)
    Qbuf, Pbuf, Kbuf = (np.empty((d, cols), order="F"), np.empty((n, cols), order="F"),
                        np.empty((d, cols), order="F"))  # columns untouched until used
    Kw, T = np.empty((d, L), order="F"), np.empty((d, L), order="F")
    K = prod_h(rng.standard_normal((n, L)).astype(dt), Kw)
    if not np.isfinite(K).all():
        raise NonFiniteError("X contains NaN/Inf values")
    c = 0
    gram = W = np.zeros((0, 0))
    sv = np.zeros(0)
    captured, gain, steps, r, zero = 0.0, float("nan"), 0, 0, noise
    norms = np.linalg.norm(K, axis=0)
    for j in range(max_steps + 1):
        # each column relative to its own norm before projection (the span is unchanged), whatever the others' scale
        K /= np.where(norms > 0, norms, 1.0)
        Q = _range_basis(K, np.finfo(float).tiny, rel=drop, out=Qbuf[:, c:], work=T)
        if Q.shape[1] == 0:  # the Krylov space is exhausted (X of low rank): the last Ritz pairs are X's
            break
        w = Q.shape[1]
        P = prod(Q, Pbuf[:, c:c + w])  # X Q_j
        # Gram of [P_0 … P_j] (X Q) extended by the new block: its eigenvalues are the Ritz values sᵢ²
        cross = Pbuf[:, :c].T @ P
        gram = np.block([[gram, cross], [cross.T, P.T @ P]])
        Kr = prod_h(P, Kbuf[:, c:c + w])  # XᵀX Q_j: the next block, and the residuals of this step's Ritz pairs
        c += w
        steps = j
        w_, W = top_eigh(gram, k + 1)
        sv = np.sqrt(np.maximum(w_, 0.0))
        now = float(np.sum(sv[:k] ** 2))
        gain = (now - captured) / now if now > 0 else 0.0  # reported: the fraction of the variance this step added
        captured = now
        # the Ritz values come from the eigenvalues of the squared Gram PᵀP (absolute error ~ p·ε·s₁², p its size):
        # below √(p·ε)·s₁ a Ritz value and its vector are not resolved (in float64 this floor is above the products'
        # rounding; a tail at 1e-10·s₁ read as resolved values/vectors of the wrong size and direction)
        zero = max(noise, float(np.sqrt(gram.shape[0] * np.finfo(float).eps)))
        r = int(np.sum(sv[:k] > zero * sv[0])) if sv[0] > 0 else 0  # resolved pairs; the others are zero
        if j == max_steps:
            break
        # block classical Gram–Schmidt of the next block, twice; the first pass's coefficients QᵀK = QᵀXᵀ(XQ_j) =
        # (XQ)ᵀ(XQ_j) are the Gram's last block column
        norms = np.linalg.norm(Kr, axis=0)
        Qa = Qbuf[:, :c]
        K, Tw = Kw[:, :w], T[:, :w]
        np.subtract(Kr, np.matmul(Qa, gram[:, -w:], out=Tw), out=K)
        K -= np.matmul(Qa, Qa.T @ K, out=Tw)
        # the stopping rule: Xᵀuᵢ − sᵢvᵢ (uᵢ = P wᵢ/sᵢ, vᵢ = Q wᵢ) has no part in span(Q) (QᵀXᵀP = PᵀP, the Gram, whose
        # eigenvectors wᵢ are), and each Xᵀ P_b (b < j) lies in span(Q_0 … Q_(b+1)) up to the cut directions: what is
        # left is the next block's new part, (I − QQᵀ) Xᵀ P_j, along the block's rows of wᵢ / sᵢ (the final residuals
        # are formed in full below)
        est = np.linalg.norm(np.matmul(K, W[-w:, :r] / sv[:r], out=T[:, :r]), axis=0) / sv[:r]
        if est.max(initial=0.0) <= tol:
            break
    s1 = float(sv[0]) if sv.size else 0.0
    rows = []
    d_out = n if swap else d  # the length of the returned (right) vectors of the caller's X
    if r:  # the sign rule on the caller's left vectors: U = P W / s here (swapped: U = Q W)
        if swap:  # X's V = (Xᵀ-side) P W / s, orthonormal up to rounding (Wᵀ PᵀP W = s²); XV = (Xᵀ-side) K W / s
            sg = sign_flips(Qbuf[:, :c] @ W[:, :r])
            U = Qbuf[:, :c] @ (W[:, :r] * sg)
            XtU = Kbuf[:, :c] @ (W[:, :r] * (sg / sv[:r]))  # X vᵢ (of the caller's X), before the last step below
            rows.append((Pbuf[:, :c] @ (W[:, :r] * (sg / sv[:r]))).T)
        else:  # V = Q W and Xᵀ U = (Xᵀ P) W / s follow
            sg = sign_flips(Pbuf[:, :c] @ (W[:, :r] / sv[:r]))
            XtU = Kbuf[:, :c] @ (W[:, :r] * (sg / sv[:r]))
            rows.append((Qbuf[:, :c] @ (W[:, :r] * sg)).T)
    # beyond the resolved pairs: the remaining Ritz vectors (‖X v‖ ≤ zero·s₁), completed by orthonormal directions
    # outside the Krylov space (an exhausted space holds X's row space: X v = 0 there) up to k, at s = 0 (swapped: the
    # right vectors of the unresolved pairs, P W / s, are not defined: orthonormal completions, their ‖X v‖ measured)
    if c and min(k, len(sv)) > r and not swap:
        rows.append((Qbuf[:, :c] @ W[:, r:min(k, len(sv))]).T)
    have = sum(len(v) for v in rows)
    if have < k:
        rows.append(_complete_rows(np.vstack(rows) if rows else np.zeros((0, d_out)), k - have, rng))
    Vt = np.vstack(rows)
    # V (= Q W, or P W / s swapped) is orthonormal up to rounding already: one Cholesky QR step (R ≈ I keeps each
    # direction and its sign)
    Vt = sla.solve_triangular(np.linalg.cholesky(Vt @ Vt.T), Vt, lower=True, check_finite=False)
    sk = np.zeros(k)
    sk[:r] = sv[:r]
    res = np.zeros(k)
    if r:  # ‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ, or swapped ‖X vᵢ − sᵢuᵢ‖/sᵢ (vᵢ before the rounding-level Cholesky step)
        res[:r] = np.linalg.norm(XtU - (U if swap else Vt[:r].T) * sk[:r], axis=0) / sk[:r]
    if r < k and s1 > 0:  # a zero singular value: ‖X vᵢ‖ relative to s₁ (one product of the k − r directions)
        XV = Vt[r:].astype(dt) @ X if swap else (X @ Vt[r:].T.astype(dt)).T
        res[r:] = np.linalg.norm(XV.astype(np.float64), axis=1) / s1
    if k >= min(n, d) or (len(sv) <= k and r < k):  # no σ_(k+1), or an exhausted space of rank < k: σ_(k+1) = 0
        s_next = 0.0
    elif len(sv) > k:
        s_next = float(sv[k]) if sv[k] > zero * s1 else 0.0
    else:
        s_next = float("nan")
    # converged: every resolved pair within tol, and every unresolved direction (sᵢ = 0) a zero of X to the products'
    # rounding — a tail between the rounding and the squared Gram's resolution (float64: ~1e-14 … 1e-7·s₁) is not
    # resolved by this route, so its directions are not the top-k ones: not converged (the Gram route resolves it)
    converged = bool(res[:r].max(initial=0.0) <= tol and res[r:].max(initial=0.0) <= min(tol, 10.0 * noise))
    return PrincipalSubspace(Vt, sk, s_next, res, "krylov", int(steps), converged, float(gain),
                             "‖X vᵢ − sᵢuᵢ‖/sᵢ" if swap else "‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ")


def principal_subspace(X: Any, k: int, *, method: str = "auto", n_oversamples: int = 10, max_iter: int = 7,
                       tol: float | None = None, seed: int = 0,
                       max_steps: int = KRYLOV_MAX_STEPS) -> PrincipalSubspace:
    """Top-k principal (right singular) subspace of centred data X (n, d), with a check of its accuracy.

    Three routes; for ``method="auto"`` arrays take the cheaper of "gram" and "krylov" by :func:`subspace_method`,
    operators take "randomized":

    * **"gram"** (arrays): the exact subspace from the eigen-decomposition of the smaller Gram matrix XXᵀ (n < d:
      then V = Xᵀ U / s) or XᵀX, in float64 (a float32 X is refused here: give float64);
    * **"krylov"** (arrays): block Krylov (Musco & Musco 2015) of block width k + ``n_oversamples``, at most
      ``max_steps`` steps (2 products with X each), stopping when every pair's relative residual is at most ``tol``
      (default :data:`KRYLOV_TOL`; ``converged``); products in the array's precision (float32 allowed), the basis,
      its orthogonalization and the Rayleigh–Ritz step in float64. On a spectrum with no gap at k it reaches in 8–10
      products what power iterations do not reach in 16 (see :data:`KRYLOV_MAX_STEPS`). On X of rank r < k the
      directions past r come back at s = 0, as from "gram" (Vt has k rows whatever the rank, X = 0 included);
    * **"randomized"**: :func:`linlens.linalg.randomized_svd` (subspace iteration with its adaptive stop, at most
      ``max_iter`` power iterations — scikit-learn's PCA runs 7 — of width k + ``n_oversamples``), in the array's
      precision: a float32 X runs in float32 (the directions are then re-orthonormalized in float64; everything
      computed on them afterwards is float64); a ``scipy.sparse.linalg.LinearOperator`` (e.g. passes over a file)
      runs in float64 and keeps only (n, k + ``n_oversamples``) products in memory.

    Either way the accuracy is measured, not assumed: the relative residual of each pair (‖X vᵢ − sᵢ uᵢ‖/sᵢ for
    "randomized", ‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ for "krylov" — ‖X vᵢ − sᵢuᵢ‖/sᵢ when n < d, where it iterates on Xᵀ so that its
    basis lives in the smaller space —, whose other side holds by construction: one more product) and
    σ_{k+1} for the gap at k (:attr:`PrincipalSubspace.relative_gap`).

    References:
        C. Musco, C. Musco. Randomized block Krylov methods for stronger and faster approximate singular value
        decomposition. NeurIPS 2015.

    Arguments:
        X: (n, d) centred data, numpy (float64, or float32 for "krylov"/"randomized") or a real LinearOperator.
        k: subspace dimension, 1 ≤ k ≤ min(n, d).
        method: "auto", "gram", "krylov" or "randomized".
        n_oversamples, max_iter, tol, seed: of the randomized routes (for "randomized" tol defaults to 1e-6 in
            float64, 1e-4 in float32: the change of the top-k left vectors between iterations,
            :func:`linlens.linalg.randomized_svd`; for "krylov" to :data:`KRYLOV_TOL`: the largest relative
            residual, :attr:`PrincipalSubspace.residual_form`).
        max_steps: Krylov steps q at most ("krylov").

    Returns:
        :class:`PrincipalSubspace`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(300, 3)) * [5.0, 3.0, 1.0] @ np.linalg.qr(rng.normal(size=(40, 3)))[0].T
        >>> X = X + 1e-3 * rng.normal(size=X.shape); X -= X.mean(0)
        >>> a, b = principal_subspace(X, 2), principal_subspace(X, 2, method="randomized")
        >>> c = principal_subspace(X, 2, method="krylov", tol=1e-9)  # every pair's relative residual ≤ 1e-9
        >>> a.method, b.method, bool(np.abs(np.abs(a.Vt @ b.Vt.T) - np.eye(2)).max() < 1e-8), b.max_residual < 1e-6
        ('gram', 'randomized', True, True)
        >>> c.method, c.converged, bool(np.abs(np.abs(a.Vt @ c.Vt.T) - np.eye(2)).max() < 1e-8), c.max_residual < 1e-9
        ('krylov', True, True, True)
    """
    if method not in ("auto", "gram", "krylov", "randomized"):
        raise ConfigError(f"method must be 'auto', 'gram', 'krylov' or 'randomized'; got {method!r}")
    operator = not isinstance(X, np.ndarray)
    if operator and method in ("gram", "krylov"):
        raise ConfigError(f"method={method!r} needs the data as an array (an operator gives products only)")
    n, d = X.shape
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n, d):
        raise ConfigError(f"k must be an integer in [1, min(n, d) = {min(n, d)}]; got {k!r}")
    if method == "auto":
        method = "randomized" if operator else subspace_method(n, d, int(k), n_oversamples, max_iter)
    if method == "gram":
        if X.dtype != np.float64:
            raise ConfigError(f"method='gram' computes in float64: give X as float64 (got {X.dtype})")
        return _gram_subspace(X, int(k))
    if method == "krylov":
        if X.dtype not in (np.float32, np.float64):
            raise ConfigError(f"method='krylov' needs float32 or float64 data (got {X.dtype})")
        return _krylov_subspace(X, int(k), n_oversamples, int(max_steps), KRYLOV_TOL if tol is None else tol, seed)
    single = not operator and X.dtype == np.float32
    A = X if operator else torch.from_numpy(X if X.flags.c_contiguous else np.ascontiguousarray(X))
    if not operator and not single:
        A = A.to(torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        r, n_iter = randomized_svd(A, int(k), n_oversamples=n_oversamples, n_iter=None,
                                   tol=tol if tol is not None else (1e-4 if single else 1e-6), max_iter=max_iter,
                                   seed=seed, full_sketch=True, return_n_iter=True,
                                   dtype=torch.float32 if single else None)
    converged = not any(issubclass(w.category, NumericalWarning) for w in caught)
    U, s, Vt = (np.asarray(v.numpy() if isinstance(v, torch.Tensor) else v) for v in r)
    # the residual X vᵢ − sᵢuᵢ (Xᵀuᵢ = sᵢvᵢ holds by the Rayleigh–Ritz step): one more product
    XV = X.matmat(Vt[:k].T.astype(np.float64)) if operator else (A @ torch.from_numpy(Vt[:k].T.copy())).numpy()
    sk = s[:k].astype(np.float64)
    res = np.linalg.norm(XV - U[:, :k] * s[:k], axis=0) / np.where(sk > 0, sk, 1.0)
    s_next = float(s[k]) if len(s) > k else float("nan")
    return PrincipalSubspace(_orthonormal_rows(Vt[:k]), sk, s_next, res.astype(np.float64), "randomized",
                             int(n_iter), converged)
