"""Comparison of two linear operators and filter factors in a forward operator's singular basis.

:func:`compare_operators` measures how close C is to a reference R (norm and data-weighted errors, singular
spectra, principal angles, matched eigenvalues); :func:`filter_factors` shows what C does to each singular
component of a forward operator A (Φ = Vᵀ C A V).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.linalg import (
    DEFAULT_MAX_K,
    RankInfo,
    SubspaceComparison,
    SVDResult,
    check_svd,
    default_tol,
    eigenvalue_condition_numbers,
    fix_signs,
    match_eigenvalues,
    numerical_rank,
    pinv_svd,
    spectral_norm,
    subspace_comparison,
    svd,
)
from linlens.operators import operator_matrix
from linlens.validation import as_array

__all__ = [
    "data_weighted_error",
    "probe_covariance",
    "FilterFactors",
    "filter_factors",
    "leading_filter_factors",
    "leading_whole_pairs",
    "singular_value_clusters",
    "SignalNoiseSplit",
    "signal_noise_split",
    "SignalNoiseModel",
    "OperatorComparison",
    "compare_operators",
    "weighted_sq_norm",
]


# ------------------------------------------------------------------------------------------ data-weighted error
def _scaled(M: np.ndarray) -> tuple[np.ndarray, float]:
    """M / max|M| and max|M| (1 for a zero matrix): squares of the scaled matrix neither under- nor overflow."""
    s = float(np.max(np.abs(M))) if M.size else 0.0
    return (M / s, s) if s > 0 and np.isfinite(s) else (M, 1.0)


def probe_covariance(probes: Any) -> tuple[np.ndarray, float]:
    """Centred second moment of probe rows, scaled: returns (Σ / s², s) with Σ = cov(probes) (ddof 0).

    Data-weighted errors are ratios, so the scale s (the largest |centred entry|) cancels; keeping it apart
    stops tiny (1e-200) or huge (1e200) probes from underflowing to 0 or overflowing to inf when squared.

    Arguments:
        probes: (n_probes, d) rows.

    Returns:
        (scaled covariance (d, d), scale s).

    Example:
        >>> S, s = probe_covariance(np.array([[3.0, 1.0], [1.0, 1.0]]))  # centred rows (±1, 0)
        >>> S.tolist(), s
        ([[1.0, 0.0], [0.0, 0.0]], 1.0)
    """
    P = as_array(probes, "probes", ndim=2)
    if P.shape[0] < 2:
        raise ShapeError(f"probes must have at least 2 rows to be centred; got {P.shape[0]}")
    Pc, s = _scaled(P - P.mean(axis=0))
    return (Pc.T @ Pc) / P.shape[0], s


def weighted_sq_norm(M: np.ndarray, covariance: np.ndarray) -> tuple[float, float]:
    """tr(M Σ Mᵀ) as (mantissa, scale) with value = mantissa · scale²; Σ (d, d), M (m, d).

    Keeping the scale apart lets ratios of two such norms be formed without under- or overflow.

    Example:
        >>> m, s = weighted_sq_norm(np.array([[3e-200, 0.0]]), np.eye(2))  # tr(MΣMᵀ) = 9e-400: below float64
        >>> m, s
        (1.0, 3e-200)
    """
    Ms, s = _scaled(M)
    # tr(MΣMᵀ) = Σᵢⱼ (MᵀM)ᵢⱼ Σᵢⱼ: MᵀM is one symmetric product (BLAS syrk), half the flops of M Σ
    return float(np.sum((Ms.T @ Ms) * covariance)), s


def data_weighted_error(C: Any, R: Any, probes: Any = None, *, covariance: Any = None) -> float:
    """Centred data-weighted error E‖(C − R)(y − ȳ)‖² / E‖R(y − ȳ)‖² = tr(DΣDᵀ)/tr(RΣRᵀ), D = C − R.

    The one definition in linlens. Centred because surrogates carry intercepts: the error of the linear part
    is measured on the fluctuations of y, with Σ the covariance of the probes (or the ``covariance`` given,
    e.g. a population Σ_y). The zero map scores exactly 1 against every reference.

    Arguments:
        C: operator (m, n) under test.
        R: reference (m, n).
        probes: rows y (n_probes, n); or
        covariance: Σ_y (n, n) directly (keyword).

    Returns:
        The ratio (inf when RΣRᵀ = 0 ≠ DΣDᵀ, 0 when both vanish).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(500, 3)) + 5.0
        >>> R = np.eye(3); round(data_weighted_error(np.zeros((3, 3)), R, Y), 12)
        1.0
        >>> round(data_weighted_error(1e-200 * R, 2e-200 * R, Y * 1e-150), 12)  # no underflow to 0/0
        0.25
    """
    c = as_array(C, "C", ndim=2)
    r = operator_matrix(R, "R", shape=c.shape if isinstance(R, tuple) else None)[0]  # any operator, one rule
    if c.shape != r.shape:
        raise ShapeError(f"C and R must have the same shape; got C {c.shape} and R {r.shape}")
    if (probes is None) == (covariance is None):
        raise ConfigError("give exactly one of probes (rows) or covariance (Σ_y)")
    if covariance is None:
        S, _ = probe_covariance(probes)
    else:
        S, _ = _scaled(as_array(covariance, "covariance", ndim=2))
    if S.shape != (c.shape[1], c.shape[1]):
        raise ShapeError(f"probes must have {c.shape[1]} columns (Σ_y {(c.shape[1],) * 2}); got Σ_y {S.shape}")
    num, sn = weighted_sq_norm(c - r, S)
    den, sd = weighted_sq_norm(r, S)
    if den <= 0:
        return 0.0 if num <= 0 else float("inf")
    return float(num / den * (sn / sd) ** 2)


# ------------------------------------------------------------------------------------------ filter factors
@dataclass(frozen=True)
class FilterFactors(ResultMixin):
    """What an estimator C does to each singular component of a forward operator A.

    Φ = Vᵀ C A V with A = U diag(s) Vᵀ: Φ = I for A⁻¹; 0/1 for a truncated SVD; for the Wiener estimator
    C* = Σₓ Aᵀ(AΣₓAᵀ + σ²I)⁻¹ the factors are diag(Vᵀ C* A V), which equal Tikhonov's sᵢ²/(sᵢ² + σ²/λ) only
    when Σₓ = λI.

    When A has repeated singular values, the singular vectors of each cluster are defined only up to a
    rotation within the cluster, and the diagonal entries of Φ depend on that arbitrary choice. linlens reports
    per cluster of equal singular values the trace of Φ's diagonal block divided by its size (invariant), and
    the block's spread around that multiple of I as part of the leakage.

    Arguments:
        singular_values: sᵢ of A, descending (k,).
        factors: per index, the mean factor of its cluster tr(Φ_bb)/|b| (k,); equals (Φ)ᵢᵢ for simple sᵢ.
        leakage: ‖Φ − blockdiag_mean(Φ)‖_F / ‖Φ‖_F: all of Φ that is not a multiple of I on a cluster (0 when
            Φ = 0).
        clusters: (n_clusters, 2) [start, stop) index ranges of equal singular values.
        cluster_spread: per index, ‖Φ_bb − φ̄_b I‖_F / (‖Φ_bb‖_F or 1) of its cluster (0 for simple sᵢ).
        matrix: Φ (k, k) in the computed (arbitrary within clusters) basis.

    Example:
        >>> A = np.diag([2.0, 0.5])
        >>> filter_factors(np.linalg.inv(A), A).factors.tolist()  # A⁻¹ keeps every component: φ = 1
        [1.0, 1.0]
        >>> filter_factors(np.diag([0.5, 0.0]), A).factors.tolist()  # a truncated SVD: 1, then 0
        [1.0, 0.0]
    """

    singular_values: np.ndarray
    factors: np.ndarray
    leakage: float
    clusters: np.ndarray
    cluster_spread: np.ndarray
    matrix: np.ndarray


def singular_value_clusters(s: np.ndarray, rtol: float = 1e-8, shape: tuple[int, int] | None = None) -> np.ndarray:
    """[start, stop) ranges of runs of equal singular values (descending s).

    Two neighbours belong to one cluster when |sᵢ − sᵢ₊₁| ≤ rtol · sᵢ, or when both lie below the
    numerical-zero level max(shape)·eps·s₀ (the numerical null space is one cluster).

    Example:
        >>> singular_value_clusters(np.array([3.0, 2.0, 2.0, 1.0])).tolist()
        [[0, 1], [1, 3], [3, 4]]
    """
    s = np.asarray(s, dtype=np.float64)
    if s.size == 0:
        return np.zeros((0, 2), dtype=int)
    zero = (max(shape) if shape else s.size) * np.finfo(np.float64).eps * s[0]
    bounds = [0]
    for i in range(1, s.size):
        same = abs(s[i - 1] - s[i]) <= rtol * s[i - 1] or (s[i - 1] <= zero and s[i] <= zero)
        if not same:
            bounds.append(i)
    bounds.append(s.size)
    return np.array([[bounds[j], bounds[j + 1]] for j in range(len(bounds) - 1)], dtype=int)


def filter_factors(C: Any, A: Any = None, rtol: float = 1e-8, *, svd_A: SVDResult | None = None) -> FilterFactors:
    """Filter factors of an estimator C against the forward operator A, per cluster of equal sᵢ.

    References:
        Hansen. Rank-Deficient and Discrete Ill-Posed Problems (SIAM, 1998), filter factors of regularized
        inverses.

    Arguments:
        C: estimator (n_x, n_y) mapping data y to x.
        A: forward operator (n_y, n_x) mapping x to y; rectangular or rank-deficient is fine (thin SVD,
            k = min(n_y, n_x); components with sᵢ = 0 get φᵢ = 0).
        rtol: relative tolerance under which two singular values count as equal (see
            :func:`singular_value_clusters`).
        svd_A: the thin SVD of A when the caller has it (e.g. from :func:`~linlens.linalg.pinv_svd` for A = R⁺);
            saves a d × d factorization; checked against the shape Cᵀ. A may then be None (it is not needed,
            and forming it from the factors would cost a d³ product).

    Returns:
        :class:`FilterFactors` with (k,) factors and the (k, k) matrix Φ.

    Example:
        >>> A = np.diag([2.0, 0.5])
        >>> filter_factors(np.linalg.inv(A), A).factors.round(12).tolist()
        [1.0, 1.0]
        >>> ff = filter_factors(np.diag([1.0, 0.0]), np.eye(2))  # equal sᵢ: only the cluster mean is defined
        >>> ff.factors.tolist(), ff.clusters.tolist()
        ([0.5, 0.5], [[0, 2]])
    """
    c = as_array(C, "C", ndim=2)
    if A is None and svd_A is None:
        raise ConfigError("give the forward operator A or its SVD svd_A")
    # the one conversion rule of linlens.operators: arrays, scipy operators, (A, Aᵀ) pairs, deepinv-like objects
    a = None if A is None else operator_matrix(A, "A", shape=c.T.shape if isinstance(A, tuple) else None)[0]
    a_shape = c.T.shape if a is None else a.shape
    if c.shape != a_shape[::-1]:
        raise ShapeError(f"C must have the shape of Aᵀ {a_shape[::-1]} (C maps y to x, A maps x to y); got C "
                         f"{c.shape}")
    U, s, Vt = svd(a) if svd_A is None else check_svd(svd_A, a_shape, "svd_A")
    return _filter_factors_of(Vt @ c @ (U * s), s, a_shape, rtol)  # Φ = Vᵀ C A V since A V = U diag(s)


def leading_whole_pairs(s: np.ndarray, k: int, shape: tuple[int, int], rtol: float = 1e-8) -> int:
    """How many of R's k leading singular pairs form whole clusters of equal values (the pairs
    :func:`leading_filter_factors` keeps): the (k+1)-th of the p > k leading values ``s`` (descending) tells whether
    the k-th pair's cluster goes on. 0 when every value given is one cluster (e.g. R = c·I).

    Arguments:
        s: (p,) R's leading singular values, descending, p > k. k: pairs with vectors. shape: R's (m, n).
        rtol: as :func:`filter_factors`.

    Example:
        >>> leading_whole_pairs(np.array([6.0, 5.0, 5.0, 3.0]), 2, (6, 6)), leading_whole_pairs(np.ones(4), 3, (6, 6))
        (1, 0)
    """
    s = np.asarray(s, dtype=np.float64)
    p = len(s)
    a_s = 1.0 / s[::-1]  # A = R⁺'s values on these indices, descending: position p − 1 − j ↔ R's index j
    starts = singular_value_clusters(a_s, rtol=rtol, shape=(shape[1], shape[0]))[:, 0]
    whole = starts[starts >= p - k]  # clusters that begin among R's first k (those with vectors) lie whole in them
    return p - int(whole.min()) if whole.size else 0


def leading_filter_factors(C: Any, svd_R: SVDResult, rtol: float = 1e-8) -> FilterFactors:
    """Filter factors of C against A = R⁺ on R's LEADING singular pairs only (the smallest nonzero singular values
    of A), from a partial SVD of R (:func:`~linlens.linalg.svd_leading` with k vectors and ``n_values`` > k): the
    diagonal block of :func:`filter_factors`' Φ on those indices, φᵢ = uᵢᵀ C vᵢ / σᵢ, without R's full SVD.

    Only whole clusters of equal singular values are kept (a cluster's mean factor is invariant only over all of
    it): the (k+1)-th value tells whether the k-th pair's cluster goes on, and then that cluster is dropped, so
    k' ≤ k pairs are returned. The entries are in :func:`filter_factors`' order — A's singular values descending,
    i.e. R's leading values reversed: entry j ↔ R's singular index k' − j (1-based) — and ``matrix`` is Φ's
    (k', k') block on them. ``leakage`` is then the leakage WITHIN that block: the whole Φ's needs every pair (a
    caller must say so). Every given value of R must lie above R's numerical-rank cut (the default "tol" rule of
    :func:`~linlens.linalg.numerical_rank`; else A = R⁺ has zeros whose place needs R's whole spectrum: take the
    full SVD then).

    Arguments:
        C: estimator (m, n), the shape of R.
        svd_R: U (m, k), s (p,) with p > k, the leading p singular values of R descending, Vt (k, n).
        rtol: as :func:`filter_factors`.

    Returns:
        :class:`FilterFactors` with (k',) entries.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Q1, Q2 = (np.linalg.qr(rng.normal(size=(6, 6)))[0] for _ in range(2))
        >>> R = Q1 @ np.diag([6.0, 5.0, 5.0, 3.0, 2.0, 1.0]) @ Q2.T; C = 0.5 * R
        >>> U, s, Vt = np.linalg.svd(R)
        >>> ff = leading_filter_factors(C, SVDResult(U[:, :2], s[:3], Vt[:2]))  # σ₂ = σ₃: that cluster is dropped
        >>> ff.singular_values.round(12).tolist(), ff.factors.round(12).tolist()  # A = R⁺'s 1/6, φ = 0.5
        ([0.166666666667], [0.5])
    """
    c = as_array(C, "C", ndim=2)
    U, s, Vt = (np.asarray(x, dtype=np.float64) for x in svd_R)
    m, n = c.shape
    k = U.shape[1] if U.ndim == 2 else -1
    if U.shape != (m, k) or Vt.shape != (k, n) or s.ndim != 1 or not k < len(s) <= min(m, n) or k < 1:
        raise ShapeError(f"svd_R must hold k ≥ 1 leading singular pairs of an {(m, n)} matrix R and more than k values "
                         f"(svd_leading(n_values=)); got U {U.shape}, s {s.shape}, Vt {Vt.shape}")
    cut = default_tol((m, n)) * s[0]
    if not s[-1] > cut:
        raise ConfigError(f"R's leading values reach its numerical-rank cut ({s[-1]:.3g} ≤ {cut:.3g}): A = R⁺ then has "
                          "zeros whose place needs R's whole spectrum; use filter_factors with R's full SVD")
    k_whole = leading_whole_pairs(s, k, (m, n), rtol)
    if k_whole < 1:
        raise ConfigError(f"R's leading {k} singular values are all equal to the next within rtol = {rtol:g}: no "
                          "whole cluster among them; give more pairs, or R's full SVD")
    # A = R⁺ on these indices, A's order (descending): U_A = V_R, V_A = U_R reversed; the sign rule as pinv_svd's
    UA, VtA = fix_signs(Vt[:k_whole][::-1].T.copy(), U[:, :k_whole][:, ::-1].T.copy())
    sA = 1.0 / s[:k_whole][::-1]
    return _filter_factors_of(VtA @ c @ (UA * sA), sA, (n, m), rtol)  # Φ's block, as filter_factors forms it


def _filter_factors_of(Phi: np.ndarray, s: np.ndarray, a_shape: tuple[int, int], rtol: float) -> FilterFactors:
    """:class:`FilterFactors` from Φ = Vᵀ C A V (k, k) and A's singular values s (k,)."""
    clusters = singular_value_clusters(s, rtol=rtol, shape=a_shape)
    factors = np.zeros(s.size)
    spread = np.zeros(s.size)
    model = np.zeros_like(Phi)
    for start, stop in clusters:
        block = Phi[start:stop, start:stop]
        mean = float(np.trace(block)) / (stop - start)
        factors[start:stop] = mean
        model[start:stop, start:stop] = mean * np.eye(stop - start)
        nb = float(np.linalg.norm(block))
        spread[start:stop] = float(np.linalg.norm(block - mean * np.eye(stop - start))) / (nb if nb > 0 else 1.0)
    total = np.linalg.norm(Phi)
    leak = float(np.linalg.norm(Phi - model) / total) if total > 0 else 0.0
    return FilterFactors(singular_values=s, factors=factors, leakage=leak, clusters=clusters,
                         cluster_spread=spread, matrix=Phi)


# ------------------------------------------------------------------------------------------ signal and noise
@dataclass(frozen=True)
class SignalNoiseSplit(ResultMixin):
    """The expected test error of an estimator C of x from y = A x + e, split into its sources.

    With x of covariance Σₓ (centred) and independent noise e of covariance Σₑ,
    E‖C y − x‖² = E‖(CA − I)x‖² + tr(C Σₑ Cᵀ). Every term below is divided by E‖x‖² = tr Σₓ, and the terms
    add up to ``total`` exactly. P = A⁺A projects on what A can see (P = I for full column rank).

    Arguments:
        signal_error: tr((CA − P) Σₓ (CA − P)ᵀ)/tr Σₓ — how far CA is from the identity on A's row space.
        null_space_error: the rest of E‖(CA − I)x‖²/tr Σₓ, from components of x that A does not see (0 when
            A has full column rank).
        noise_amplification: tr(C Σₑ Cᵀ)/tr Σₓ (σ²‖C‖²_F/tr Σₓ for white noise).
        total: E‖Cy − x‖²/E‖x‖², the relative test error of C (signal + null space + noise).
        singular_values_A: (n_x,) singular values of A padded with zeros to n_x.
        bands: (n_bands, 2) [start, stop) ranges of singular indices (A's right singular basis V).
        band_signal_error: (n_bands,) tr(V_bᵀ(CA − P)Σₓ(CA − P)ᵀV_b)/tr Σₓ; sums to ``signal_error``.
        band_noise_amplification: (n_bands,) tr(V_bᵀ C Σₑ Cᵀ V_b)/tr Σₓ; sums to ``noise_amplification``.

    Example:
        >>> A = np.diag([2.0, 1.0])
        >>> sp = signal_noise_split(np.linalg.inv(A), A, np.eye(2), noise_std=0.1)
        >>> sp.signal_error, round(sp.noise_amplification, 10)  # A⁻¹: no signal error; σ²‖A⁻¹‖²_F / tr Σₓ
        (0.0, 0.00625)
    """

    signal_error: float
    null_space_error: float
    noise_amplification: float
    total: float
    singular_values_A: np.ndarray
    bands: np.ndarray
    band_signal_error: np.ndarray
    band_noise_amplification: np.ndarray


def _noise_cov(n_y: int, noise_std: float | None, noise_covariance: Any) -> np.ndarray:
    if noise_covariance is not None:
        S = as_array(noise_covariance, "noise_covariance", ndim=2)
        if S.shape != (n_y, n_y):
            raise ShapeError(f"noise_covariance must be {(n_y, n_y)}; got {S.shape}")
        return S
    if noise_std is None or not np.isfinite(noise_std) or noise_std < 0:
        raise ConfigError(f"noise_std must be a finite number ≥ 0 (or give noise_covariance); got {noise_std!r}")
    return float(noise_std) ** 2 * np.eye(n_y)


def signal_noise_split(
    C: Any, A: Any, prior_covariance: Any, noise_std: float | None = None, *, noise_covariance: Any = None,
    n_bands: int = 8,
) -> SignalNoiseSplit:
    """Split the test error of C (an estimator of x from y = Ax + e) into signal error, null-space error
    and noise amplification, and the signal error per band of A's singular index.

    This replaces the data-weighted error against A⁻¹, which is pinned at ≈ 1 for every C on an
    ill-conditioned A: E‖A⁻¹y‖² is almost all amplified noise.

    References:
        Hansen. Rank-Deficient and Discrete Ill-Posed Problems (SIAM, 1998), ch. 4 (perturbation and
        regularization errors).

    Arguments:
        C: estimator (n_x, n_y).
        A: forward operator (n_y, n_x).
        prior_covariance: Σₓ (n_x, n_x).
        noise_std: σ of white noise, or
        noise_covariance: Σₑ (n_y, n_y).
        n_bands: number of contiguous bands of singular index (equal counts).

    Returns:
        :class:`SignalNoiseSplit`.

    Example:
        >>> A = np.diag([1.0, 0.1]); S = np.eye(2)
        >>> sp = signal_noise_split(np.linalg.inv(A), A, S, noise_std=0.1, n_bands=2)
        >>> round(sp.signal_error, 12), round(sp.noise_amplification, 12)  # (1 + 100)·0.01/2
        (0.0, 0.505)
    """
    return SignalNoiseModel(A, prior_covariance, noise_std, noise_covariance=noise_covariance,
                            n_bands=n_bands).split(C)


def _fingerprint(c: np.ndarray) -> float:
    """A cheap check that an array has not changed since it was last seen (O(size), no copy): wᵣᵀ c w_c with fixed
    Gaussian weights. Any change of one entry changes it (almost surely); the cached factorizations of
    :class:`SignalNoiseModel` are reused only when the array is the same object AND its fingerprint agrees, so an
    array modified in place after :meth:`SignalNoiseModel.split` is multiplied out afresh."""
    a = np.asarray(c, dtype=np.float64)
    if a.ndim != 2:
        return float("nan")
    rng = np.random.default_rng(20261207)
    wr, wc = rng.standard_normal(a.shape[0]), rng.standard_normal(a.shape[1])
    return float(wr @ (a @ wc))


def _unchanged(entry: tuple[Any, ...] | None, C: Any) -> bool:
    """Whether a cache entry (C, …, fingerprint) was made from this very array C, unchanged since."""
    return entry is not None and entry[0] is C and entry[-1] == _fingerprint(as_array(C, "C", ndim=2))


def _symmetric_product(X: np.ndarray, Y: np.ndarray, block: int = 512) -> np.ndarray:
    """X Yᵀ (m, m) for X, Y (m, n) whose product is known to be symmetric (e.g. (AΣₓ)Aᵀ): the blocks on and above
    the diagonal are multiplied (~(1 + 1/b)/2 of the flops for b blocks) and mirrored, so it is exactly symmetric."""
    m = X.shape[0]
    if m <= 2 * block:
        P = X @ Y.T
        return (P + P.T) / 2
    out = np.empty((m, m))
    for i in range(0, m, block):
        out[i:i + block, i:] = X[i:i + block] @ Y[i:].T
        D = out[i:i + block, i:i + block]
        D[...] = np.triu(D) + np.triu(D, 1).T
        out[i + block:, i:i + block] = out[i:i + block, i + block:].T
    return out


class SignalNoiseModel:
    """A, Σₓ, Σₑ and A's SVD prepared once, to split many estimators (e.g. bootstrap refits) cheaply.

    Arguments: as :func:`signal_noise_split` (without C); ``svd_A``: the full SVD of A when the caller has it
    (``svd(A, full_matrices=True)``), so that a study factorizes A once.

    Attributes:
        Vt: (n_x, n_x) right singular vectors of A (rows; full basis, null space last).
        svd_A: the thin :class:`~linlens.linalg.SVDResult` of A (the one factorization of A a study needs).
        P: (n_x, n_x) the projector A⁺A (I when A has full column rank). bands: (n_bands, 2). ASx: A Σₓ (n_y,
            n_x); AS: A Σₓ Aᵀ (n_y, n_y), the weight under which the signal error is quadratic in C (both are reused
            by the Wiener estimator's perturbation). noise_covariance: Σₑ. trace: tr Σₓ.

    Example:
        >>> A = np.diag([2.0, 1.0])
        >>> model = SignalNoiseModel(A, np.eye(2), noise_std=0.1)
        >>> [round(model.split(C).total, 10) for C in (np.linalg.inv(A), np.zeros((2, 2)))]  # A⁻¹; C = 0
        [0.00625, 1.0]
    """

    def __init__(self, A: Any, prior_covariance: Any, noise_std: float | None = None, *,
                 noise_covariance: Any = None, n_bands: int = 8, svd_A: SVDResult | None = None) -> None:
        a = operator_matrix(A, "A")[0]  # any operator linlens.operators takes (a pair needs its shape there)
        Sx = as_array(prior_covariance, "prior_covariance", ndim=2)
        n_y, n_x = a.shape
        if Sx.shape != (n_x, n_x):
            raise ShapeError(f"prior_covariance must be {(n_x, n_x)}; got {Sx.shape}")
        if not isinstance(n_bands, (int, np.integer)) or n_bands < 1:
            raise ConfigError(f"n_bands must be a positive integer; got {n_bands!r}")
        self.noise_covariance = _noise_cov(n_y, noise_std, noise_covariance)
        # white noise: Σₑ = σ²I, applied as a scalar (the same numbers as the product with σ²I, without its d³)
        self._noise_var = float(noise_std) ** 2 if noise_covariance is None else None
        if svd_A is None:
            Ufull, s, self.Vt = svd(a, full_matrices=True)
        else:  # the caller's full SVD of A (U (n_y, n_y), s, Vt (n_x, n_x)): A is factorized once per study
            Ufull, s, self.Vt = (np.asarray(x) for x in svd_A)
            if Ufull.shape != (n_y, n_y) or s.shape != (min(n_y, n_x),) or self.Vt.shape != (n_x, n_x):
                raise ShapeError(f"svd_A must be the full SVD of A {a.shape} (U {(n_y, n_y)}, s {(min(a.shape),)}, "
                                 f"Vt {(n_x, n_x)}); got U {Ufull.shape}, s {s.shape}, Vt {self.Vt.shape}")
        self.svd_A = SVDResult(Ufull[:, : s.size], s, self.Vt[: s.size])  # thin, for filter factors and A⁺
        self.singular_values = np.zeros(n_x)
        self.singular_values[: s.size] = s
        self.rank = numerical_rank(s, shape=a.shape).rank
        V = self.Vt.T
        # A⁺A = V_r V_rᵀ; with full column rank it is I (V orthogonal): no d³ product for the identity
        self.P = np.eye(n_x) if self.rank == n_x else V[:, : self.rank] @ V[:, : self.rank].T
        self.trace = float(np.trace(Sx))
        if not self.trace > 0:
            raise ConfigError("prior_covariance must have a positive trace")
        edges = np.unique(np.linspace(0, n_x, min(n_bands, n_x) + 1).round().astype(int))
        self.bands = np.stack([edges[:-1], edges[1:]], axis=1)
        self.A, self.Sx = a, Sx
        self.ASx = a @ Sx
        self.AS = _symmetric_product(self.ASx, a)  # A Σₓ Aᵀ
        # caches keyed by the array object AND its _fingerprint (an array changed in place is multiplied out afresh)
        self._vtc: tuple[Any, np.ndarray, np.ndarray, float] | None = None  # (C, Vᵀ C, Φ, fingerprint)
        self._sig: tuple[Any, np.ndarray, np.ndarray, float] | None = None  # (C, Φ_s, Φ_s B_rr, fp) of the last split
        self._pinv: tuple[Any, float] | None = None  # the array pinv() returned (exact Vᵀ A⁺ and Φ in _vtc), its fp
        self._wien: tuple[Any, np.ndarray, np.ndarray, float] | None = None  # (W, Vᵀ W U, Φ, fp): adopt_wiener

    def pinv(self, tol: float | None = None) -> np.ndarray:
        """A⁺ (n_x, n_y) — A⁻¹ when A is invertible — from this model's SVD (:func:`~linlens.linalg.pinv_svd`: the
        one rank cut; ``tol`` as there), formed by one product. Its Vᵀ A⁺ = [diag(1/sᵢ) U_rᵀ; 0] and filter-factor
        matrix Φ = [I_r, 0] are known in closed form: the next :meth:`split` / :meth:`filter_factors` of the
        returned array use them instead of two d³ products (and give Φ = I exactly, not I plus rounding).

        Example:
            >>> A = np.diag([2.0, 0.5]); snm = SignalNoiseModel(A, np.eye(2), 0.1)
            >>> R = snm.pinv(); bool(np.allclose(R, np.linalg.inv(A))), snm.split(R).signal_error
            (True, 0.0)
            >>> snm.filter_factors(R).factors.tolist(), round(snm.split(R).noise_amplification, 12)  # 0.01·(1/4 + 4)/2
            ([1.0, 1.0], 0.02125)
        """
        U, s, Vt = self.svd_A
        n_y, n_x = self.A.shape
        Up, inv, Vtp = pinv_svd(self.svd_A, (n_y, n_x), tol=tol)
        R = (Up * inv) @ Vtp
        r = int(np.count_nonzero(inv))  # pinv_svd's rank: A⁺ = V_r diag(1/s_r) U_rᵀ
        G = np.zeros((n_x, n_y))
        G[:r] = U[:, :r].T / s[:r, None]  # Vᵀ A⁺ (V orthogonal)
        Phi = np.zeros((n_x, s.size))
        Phi[np.arange(r), np.arange(r)] = 1.0  # Vᵀ A⁺ U diag(s) = diag(1/sᵢ) U_rᵀ U diag(s)
        fp = _fingerprint(R)
        self._vtc, self._pinv = (R, G, Phi, fp), (R, fp)
        return R

    def adopt_wiener(self, W: Any, rtol: float = 1e-9) -> bool:
        """Take W (n_x, n_y), this model's Wiener estimator Σₓ Aᵀ(AΣₓAᵀ + σ²I)⁻¹ (e.g. the one a study formed from the
        same A, Σₓ and white σ), in A's singular basis: with A = U S Vᵀ square of full rank, Ṽ = VᵀΣₓV and
        K = S Ṽ S + σ²I = Uᵀ(AΣₓAᵀ + σ²I)U, Vᵀ W U = Ṽ S K⁻¹, so its filter-factor matrix is Φ = Ṽ (S K⁻¹ S): one
        Cholesky inverse of K and one product (~3 d³ flops) instead of the two rotations Vᵀ W and (Vᵀ W)(U S) (~4 d³)
        that the next :meth:`split` / :meth:`filter_factors` of the same, unchanged array would form. Its noise rows
        are the row norms of Vᵀ W U = Φ S⁻¹ (those of Vᵀ W: U is orthogonal). K is conditioned as AΣₓAᵀ + σ²I, the
        matrix W's own route inverts; the diagonal of Φ is formed from s without the rotations' rounding.

        W is checked against the closed form on a random vector (O(d²)): nothing is kept, and False returned, where
        ‖W y − V (Vᵀ W U) Uᵀ y‖ > ``rtol`` ‖W y‖, or where the closed form does not apply (A not square or of lower
        rank, a noise covariance instead of σ, K not positive definite).

        Example:
            >>> A = np.diag([2.0, 0.5]); snm = SignalNoiseModel(A, np.eye(2), 0.1)
            >>> W = A / (np.diag(A) ** 2 + 0.01)  # Σₓ = I: W = A/(A² + σ²), φᵢ = sᵢ²/(sᵢ² + σ²)
            >>> snm.adopt_wiener(W), snm.filter_factors(W).factors.round(6).tolist(), snm.adopt_wiener(1.1 * W)
            (True, [0.997506, 0.961538], False)
        """
        from linlens.surrogate.multiplier import _spd_inverse  # the one Cholesky inverse (potrf/potri)

        w = as_array(W, "W", ndim=2)
        n_y, n_x = self.A.shape
        U, s, Vt = self.svd_A
        self._wien = None
        if (w.shape != (n_x, n_y) or n_x != n_y or self.rank < n_x or self._noise_var is None
                or not np.all(s > 0)):
            return False
        B = self._basis_prior()
        K = B * s[:, None]
        K *= s[None, :]  # S Ṽ S
        K[np.diag_indices_from(K)] += self._noise_var
        T = _spd_inverse(K, pinv=False)
        del K
        if T is None:
            return False
        T *= s[:, None]
        T *= s[None, :]  # S K⁻¹ S
        Phi = B @ T
        del T
        Z = Phi / s  # Vᵀ W U = Ṽ S K⁻¹ (a column scaling: its relative rounding only)
        y = np.random.default_rng(20261208).standard_normal(n_y)
        wy = w @ y
        if not float(np.linalg.norm(wy - Vt.T @ (Z @ (U.T @ y)))) <= rtol * float(np.linalg.norm(wy)):
            return False
        self._wien = (W, Z, Phi, _fingerprint(w))
        return True

    def split(self, C: Any) -> SignalNoiseSplit:
        """The :class:`SignalNoiseSplit` of an estimator C (n_x, n_y)."""
        c = as_array(C, "C", ndim=2)
        n_y, n_x = self.A.shape
        if c.shape != (n_x, n_y):
            raise ShapeError(f"C must have the shape of Aᵀ {(n_x, n_y)}; got {c.shape}")
        # in A's right singular basis: Vᵀ C A V = [Φ, 0] with Φ = (Vᵀ C)(U s) (n_x, r), the filter-factor matrix in
        # its first r rows, so the rows of Vᵀ(CA − P) are (Φ − J) V_rᵀ (J: ones at (i, i), i < rank) and the signal
        # error per component is a quadratic form in V_rᵀ Σₓ V_r (formed once per model): three d³ products per C
        # instead of five, and filter_factors(C) reuses Φ
        U, s, _ = self.svd_A
        last = self._vtc
        fp = _fingerprint(c)
        if (last is not None and last[0] is C and self._pinv is not None and C is self._pinv[0]
                and fp == self._pinv[1] == last[3]):  # A⁺ from pinv(), unchanged: Vᵀ A⁺ and Φ in closed form
            G_noise, Phi = last[1], last[2]
        elif _unchanged(self._wien, C):  # the Wiener estimator adopted in A's basis (adopt_wiener): Vᵀ W U and Φ
            G_noise, Phi = self._wien[1], self._wien[2]  # Vᵀ W U: the row norms of Vᵀ W (white noise, U orthogonal)
            self._vtc = (C, G_noise, Phi, fp)
        else:  # any other C is multiplied out (even the same array again: a caller may have changed it in place)
            G_noise = self.Vt @ c
            Phi = G_noise @ (U * s)
            self._vtc = (C, G_noise, Phi, fp)  # Vᵀ C and Φ, reused by filter_factors(C) for the same, unchanged C
        r = s.size
        Phi_s, PB = self._signal_products(Phi)
        sig_rows = np.sum(PB * Phi_s, axis=1) / self.trace
        self._sig = (C, Phi_s, PB, fp)  # for signal_rows(C) (the statistics' band terms in this basis)
        G_noise_S = G_noise * self._noise_var if self._noise_var is not None else G_noise @ self.noise_covariance
        noise_rows = np.sum(G_noise_S * G_noise, axis=1) / self.trace
        signal = float(sig_rows.sum())
        noise = float(noise_rows.sum())
        null = 0.0
        if self.rank < n_x:  # Vᵀ(CA − I)V = [Φ, 0] − I, under Vᵀ Σₓ V
            E_v = -np.eye(n_x)
            E_v[:, :r] += Phi
            null = float(np.sum((E_v @ self._basis_prior()) * E_v)) / self.trace - signal
        return SignalNoiseSplit(
            signal_error=signal,
            null_space_error=null,
            noise_amplification=noise,
            total=signal + null + noise,
            singular_values_A=self.singular_values,
            bands=self.bands,
            band_signal_error=self.band_sums(sig_rows),
            band_noise_amplification=self.band_sums(noise_rows),
        )

    def _signal_products(self, Phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Φ_s, Φ_s B_rr) of a filter-factor matrix Φ (n_x, r): Φ_s = Φ − J (J: ones at (i, i), i < rank), the rows
        of Vᵀ(CA − P) in A's right singular basis (Vᵀ(CA − P) = Φ_s V_rᵀ), and B_rr = (VᵀΣₓV)[:r, :r]. The product
        runs on the rows of Φ_s that are not zero only (all of them for a general C; none for A⁺: no d³ product)."""
        r = self.svd_A.s.size
        n_x = Phi.shape[0]
        Phi_s = np.array(Phi, dtype=np.float64)  # one copy; J subtracted on its diagonal (no n_x × r identity)
        j = np.arange(min(self.rank, r, n_x))
        Phi_s[j, j] -= 1.0
        nz = np.flatnonzero(np.any(Phi_s, axis=1))
        if nz.size == n_x:
            return Phi_s, Phi_s @ self._basis_prior()[:r, :r]
        PB = np.zeros_like(Phi_s)
        if nz.size:
            PB[nz] = Phi_s[nz] @ self._basis_prior()[:r, :r]
        return Phi_s, PB

    def signal_rows(self, C: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The signal error of C (n_x, n_y) in A's right singular basis: (Φ_s, B_rr, Φ_s B_rr), with
        Φ_s = Vᵀ C U_r diag(s) − J (n_x, r) — the rows of Vᵀ(CA − P) are Φ_s V_rᵀ —, B_rr = (Vᵀ Σₓ V)[:r, :r] (r, r)
        symmetric and their product (n_x, r): the signal error of singular component i is (Φ_s B_rr Φ_sᵀ)ᵢᵢ / tr Σₓ,
        so a band's signal error is a quadratic form in B_rr on the band's rows of Φ_s (what :meth:`split` sums).
        Reused from the last :meth:`split` of the same, unchanged array object (no d³ product; an array modified in
        place since is multiplied out afresh), else computed (three). The arrays are shared: do not modify them.

        Example:
            >>> A = np.diag([2.0, 0.5]); snm = SignalNoiseModel(A, np.eye(2), 0.1); C = np.diag([0.4, 1.0])
            >>> Phi_s, B, PB = snm.signal_rows(C)  # Φ = diag(0.8, 0.5): Φ − I = diag(−0.2, −0.5)
            >>> np.round(Phi_s, 12).tolist(), B.tolist()
            ([[-0.2, 0.0], [0.0, -0.5]], [[1.0, 0.0], [0.0, 1.0]])
            >>> round(float(np.sum(PB * Phi_s)) / 2, 12), round(snm.split(C).signal_error, 12)  # (0.04 + 0.25)/tr Σₓ
            (0.145, 0.145)
        """
        last = self._sig
        if not _unchanged(last, C):
            self.split(C)
            last = self._sig
        r = self.svd_A.s.size
        return last[1], self._basis_prior()[:r, :r], last[2]

    def _basis_prior(self) -> np.ndarray:
        """Vᵀ Σₓ V (n_x, n_x), the prior covariance in A's right singular basis (formed once)."""
        if getattr(self, "_vsv", None) is None:
            self._vsv = _symmetric_product(self.Vt @ self.Sx, self.Vt)
        return self._vsv

    def filter_factors(self, C: Any, rtol: float = 1e-8) -> FilterFactors:
        """:func:`filter_factors` of C (n_x, n_y) against A from this model's SVD; Vᵀ C is reused from the last
        :meth:`split` of the same, unchanged C (the same array object, not modified since), which saves a d³ product.

        Example:
            >>> A = np.diag([2.0, 0.5]); snm = SignalNoiseModel(A, np.eye(2), 0.1)
            >>> C = np.linalg.inv(A); _ = snm.split(C); snm.filter_factors(C).factors.round(12).tolist()
            [1.0, 1.0]
        """
        U, s, Vt = self.svd_A
        last = self._vtc
        if _unchanged(last, C):
            Phi = last[2][: s.size]
        elif _unchanged(self._wien, C):  # the adopted Wiener estimator's Φ in closed form (adopt_wiener)
            Phi = self._wien[2][: s.size]
        else:
            c = as_array(C, "C", ndim=2)
            if c.shape != self.A.shape[::-1]:
                raise ShapeError(f"C must have the shape of Aᵀ {self.A.shape[::-1]}; got {c.shape}")
            Phi = (Vt @ c) @ (U * s)
        return _filter_factors_of(Phi, s, self.A.shape, rtol)

    def band_sums(self, rows: np.ndarray) -> np.ndarray:
        """Sums of per-singular-component values (n_x,) over the bands."""
        return np.array([rows[a0:b0].sum() for a0, b0 in self.bands])


# ---------------------------------------------------------------------------------------- compare operators
@dataclass(frozen=True)
class OperatorComparison(ResultMixin):
    """How close an operator C is to a reference R (same shape (m, n)).

    Arguments:
        shape: (m, n).
        rel_fro_error: ‖C − R‖_F / ‖R‖_F.
        rel_spectral_error: ‖C − R‖₂ / ‖R‖₂.
        data_weighted_error: centred E‖(C − R)(y − ȳ)‖² / E‖R(y − ȳ)‖² over the probe rows (None without probes).
        singular_values_C: (min(m, n),) descending — or only the leading ones when the caller's factorization
            held only those (``svd_C`` from ``svd_leading(n_values=)``; ``spectra`` says which).
        singular_values_R: (min(m, n),) descending, or the leading ones likewise.
        singular_value_rel_error: |σᵢ(C) − σᵢ(R)| / σᵢ(R) per index (min(m, n),) (inf where σᵢ(R) = 0 ≠ σᵢ(C));
            over the indices both spectra hold when one is partial.
        log_spectral_distance: RMS over i < min(rank C, rank R) of ln(σᵢ(C)/σᵢ(R)); None when a spectrum is
            partial (the ranks need every value; ``omitted`` says so).
        k: number of leading singular directions whose subspaces are compared — cut only at a clear spectral
            gap of both operators (:func:`~linlens.linalg.subspace_comparison`); None when there is none.
        rank_info_C: numerical rank of C with the gap at its cut (None when its spectrum is partial).
        rank_info_R: numerical rank of R with the gap at its cut (None when its spectrum is partial).
        left_angles: principal angles (k,) between the top-k left singular subspaces, ascending, radians
            (None without a clear gap: full-dimensional subspaces would give trivially zero angles).
        right_angles: principal angles (k,) between the top-k right singular subspaces (or None).
        subspaces: the full :class:`~linlens.linalg.SubspaceComparison`: the gap δ, Wedin's bound
            ‖C−R‖/δ on sin θ, the reason for k, and the largest angle against every k.
        eigs_C: (n,) eigenvalues of C (square case, else None), by descending modulus.
        eigs_R: (n,) eigenvalues of R matched to ``eigs_C`` by minimum-cost assignment.
        eig_distances: |eigs_C − eigs_R| (n,).
        eig_condition_C: eigenvalue condition numbers 1/|wᴴv| of C, aligned with ``eigs_C``.
        eig_condition_R: those of R, aligned with ``eigs_R``.
        spectra: {"C": …, "R": …}, which singular values each spectrum holds ("all 4096", or "leading 129 of
            4096").
        omitted: field name → why it was not computed (None in the result): the ranks and the log-spectral distance
            of a partial spectrum.

    Example:
        >>> R = np.array([[2.0, 1.0], [0.0, 1.0]])
        >>> round(compare_operators(1.1 * R, R).rel_fro_error, 12), compare_operators(R, R).spectra
        (0.1, {'C': 'all 2', 'R': 'all 2'})
    """

    shape: tuple[int, int]
    rel_fro_error: float
    rel_spectral_error: float
    data_weighted_error: float | None
    singular_values_C: np.ndarray
    singular_values_R: np.ndarray
    singular_value_rel_error: np.ndarray
    log_spectral_distance: float | None
    k: int | None
    rank_info_C: RankInfo | None
    rank_info_R: RankInfo | None
    left_angles: np.ndarray | None
    right_angles: np.ndarray | None
    subspaces: SubspaceComparison
    eigs_C: np.ndarray | None = None
    eigs_R: np.ndarray | None = None
    eig_distances: np.ndarray | None = None
    eig_condition_C: np.ndarray | None = None
    eig_condition_R: np.ndarray | None = None
    spectra: dict[str, str] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)


def _rel(num: float, den: float) -> float:
    if den > 0:
        return float(num / den)
    return 0.0 if num == 0 else float("inf")


def compare_operators(
    C: Any, R: Any, k: int | None = None, probes: Any = None, eigenvalues: bool | None = None, *,
    svd_C: SVDResult | None = None, svd_R: SVDResult | None = None, covariance: Any = None,
) -> OperatorComparison:
    """Compare an operator C with a reference R: norms, data-weighted error, spectra, subspaces, eigenvalues.

    Principal angles compare top-k singular subspaces only where both spectra have a clear gap at k (default;
    see :func:`~linlens.linalg.subspace_comparison`, which also gives δ and Wedin's bound): without one, no
    angles are reported — two unrelated full-rank operators would otherwise get "angles" of 1e-15 between
    their full-dimensional subspaces. Each numerical rank comes with its gap (``rank_info_*``).
    Eigenvalues (square case) are matched by minimum-cost assignment on |λᵢ − μⱼ| and come with their
    condition numbers: for non-normal operators they are unstable, prefer singular values.

    Arguments:
        C: operator (m, n) under test (e.g. a surrogate's ``coef_``).
        R: reference (m, n) (e.g. A⁻¹, A⁺ or the Wiener estimator).
        k: a cut for the principal angles instead of the automatic clear-gap one (reported with ``clear``).
        probes: optional inputs (n_probes, n) to the operators for the (centred) data-weighted error.
        eigenvalues: compute matched eigenvalues and their condition numbers (square case). Default: only
            when n ≤ 1000 (the non-symmetric eigenproblem costs O(n³) with a large constant, and for
            non-normal operators its answer is unstable anyway).
        svd_C, svd_R: thin SVDs of C and R the caller already has (each d × d operator is factorized once;
            ‖C − R‖₂ comes from ARPACK, not from a third SVD), or every singular value with the leading
            min(128, m, n) vectors only (:func:`~linlens.linalg.svd_leading`; k of them when ``k`` is larger), or
            only the leading values too (``svd_leading(n_values=)``, more values than vectors): that spectrum is
            reported as it is (``spectra`` says "leading p of min(m, n)"), the relative errors per index cover the
            indices both hold, and what needs every value — that operator's numerical rank, the log-spectral
            distance — is None, with the reason in ``omitted``.
        covariance: the inputs' covariance Σ_y (n, n) instead of ``probes`` (e.g. from a streamed Gram matrix).

    Returns:
        :class:`OperatorComparison`.

    Example:
        >>> R = np.array([[2.0, 1.0], [0.0, 1.0]])
        >>> cmp = compare_operators(R, R)
        >>> cmp.rel_fro_error, cmp.k, round(cmp.subspaces.max_angle, 12)  # clear gap: σ = 2.29, 0.87
        (0.0, 1, 0.0)
        >>> rng = np.random.default_rng(0)  # two unrelated operators: no clear gap, no (trivial) angles
        >>> compare_operators(rng.normal(size=(64, 64)), rng.normal(size=(64, 64))).k is None
        True
    """
    c = as_array(C, "C", ndim=2)
    r = operator_matrix(R, "R", shape=c.shape if isinstance(R, tuple) else None)[0]  # any operator, one rule
    if c.shape != r.shape:
        raise ShapeError(f"C and R must have the same shape; got C {c.shape} and R {r.shape}")
    m, n = c.shape
    D = c - r
    given = int(k) if isinstance(k, (int, np.integer)) and not isinstance(k, bool) else 0
    lead = min(max(min(m, n, DEFAULT_MAX_K), given), min(m, n))  # the leading vectors the principal angles use
    svd_C = svd(c) if svd_C is None else check_svd(svd_C, c.shape, "svd_C", vectors=lead, partial_values=True)
    svd_R = svd(r) if svd_R is None else check_svd(svd_R, r.shape, "svd_R", vectors=lead, partial_values=True)
    sc, sr = svd_C.s, svd_R.s
    mn = min(m, n)
    spectra = {x: (f"all {mn}" if len(sv) == mn else f"leading {len(sv)} of {mn}") for x, sv in (("C", sc), ("R", sr))}
    partial = [x for x, sv in (("C", sc), ("R", sr)) if len(sv) < mn]
    omitted: dict[str, str] = {}
    for x in partial:
        omitted[f"rank_info_{x}"] = (f"only the leading {len(sc if x == 'C' else sr)} of {mn} singular values of {x} "
                                     "were computed; a numerical rank needs every value")
    if partial:
        omitted["log_spectral_distance"] = (f"an RMS over every index below both ranks; the spectrum of "
                                            f"{' and '.join(partial)} holds only leading values")
    rel_fro = _rel(np.linalg.norm(D), np.linalg.norm(r))
    rel_spec = _rel(spectral_norm(D), sr[0] if len(sr) else 0.0)
    dwe = None
    if probes is not None and covariance is not None:
        raise ConfigError("give probes (rows) or covariance (Σ_y), not both")
    if probes is not None:
        P = as_array(probes, "probes", ndim=2)
        if P.shape[1] != n:
            raise ShapeError(f"probes must be (n_probes, {n}) for operators of shape {c.shape}; got {P.shape}")
        dwe = data_weighted_error(c, r, P)
    elif covariance is not None:
        dwe = data_weighted_error(c, r, covariance=covariance)
    info_c = None if "C" in partial else numerical_rank(sc, shape=c.shape)
    info_r = None if "R" in partial else numerical_rank(sr, shape=r.shape)
    if k is not None and (not isinstance(k, (int, np.integer)) or not 1 <= k <= min(m, n)):
        raise ConfigError(f"k must be an integer in [1, {min(m, n)}]; got {k!r}")
    sub = subspace_comparison(c, r, k=None if k is None else int(k), svd_C=svd_C, svd_R=svd_R)
    both = min(len(sc), len(sr))
    a, b = sc[:both], sr[:both]
    with np.errstate(divide="ignore", invalid="ignore"):
        sv_rel = np.where(b > 0, np.abs(a - b) / np.where(b > 0, b, 1.0), np.where(a == b, 0.0, np.inf))
    lsd = None
    if info_c is not None and info_r is not None:
        k_sv = min(info_c.rank, info_r.rank)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(sc[:k_sv]) - np.log(sr[:k_sv])
        lsd = float(np.sqrt(np.mean(logs**2))) if k_sv else 0.0
    eig = {}
    if eigenvalues is None:
        eigenvalues = m == n and n <= 1000
    if eigenvalues and m == n:
        ec, cc = eigenvalue_condition_numbers(c)
        er, cr = eigenvalue_condition_numbers(r)
        rows, cols, dist = match_eigenvalues(ec, er)
        eig = dict(eigs_C=ec[rows], eigs_R=er[cols], eig_distances=dist, eig_condition_C=cc[rows],
                   eig_condition_R=cr[cols])
    return OperatorComparison(
        spectra=spectra,
        omitted=omitted,
        shape=(m, n),
        rel_fro_error=rel_fro,
        rel_spectral_error=rel_spec,
        data_weighted_error=dwe,
        singular_values_C=sc,
        singular_values_R=sr,
        singular_value_rel_error=sv_rel,
        log_spectral_distance=lsd,
        k=sub.k,
        rank_info_C=info_c,
        rank_info_R=info_r,
        left_angles=sub.left_angles,
        right_angles=sub.right_angles,
        subspaces=sub,
        **eig,
    )


# ----------------------------------------------------------------------------------------------- bootstrap
