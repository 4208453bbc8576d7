"""Numerical rank with its gap: the one place where linlens cuts a spectrum.

One meaning of ``tol`` everywhere in linlens (library and CLI): a **relative** tolerance. A singular value
σᵢ counts when σᵢ > tol · scale, where ``scale`` is σ_max unless a caller names another reference (the
fibers use the product of the layer norms). The default is ``tol = max(shape) · eps`` (``eps`` of the
computation's dtype, float64 unless told), the rule of ``numpy.linalg.matrix_rank``. Two other rules choose
a rank from the spectrum's shape rather than from rounding: ``"energy"`` (smallest r whose cumulative σ²
fraction reaches ``energy``) and ``"optimal"`` (Gavish–Donoho hard threshold for unknown noise). Whatever the
rule, the result is a :class:`RankInfo` holding the rank, the absolute cut, and the singular-value gap at
that cut, so a rank is never reported without it.

Example:
    >>> info = numerical_rank(np.array([3.0, 1.0, 1e-20]), shape=(3, 3))
    >>> info.rank, info.gap > 1e19
    (2, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import torch

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.linalg.svd import SVDResult, _as_matrix, check_svd, fix_signs
from linlens.validation import as_array, is_torch

__all__ = ["RankInfo", "numerical_rank", "numerical_ranks", "gap_at", "default_tol", "RANK_RULES", "pinv_svd"]

#: Rank rules of :func:`numerical_rank`.
RANK_RULES = ("tol", "energy", "optimal")


@dataclass(frozen=True)
class RankInfo(ResultMixin):
    """Numerical rank with the tolerance used and the singular-value gap at the cut.

    Arguments:
        rank: number of singular values kept (σᵢ > threshold).
        tol: relative tolerance, threshold / scale (scale = σ_max unless the caller gave one).
        gap: σ_r/σ_{r+1} (inf when r = len(s) or σ_{r+1} = 0). For rank 0: inf when every σ is 0 (or there
            are none), else threshold/σ_1 (how far the largest singular value lies below the cut).
        singular_values: all singular values, descending (k,).
        threshold: absolute cut applied (σᵢ > threshold are kept).
        rule: "tol", "energy" or "optimal".

    Example:
        >>> info = numerical_rank(np.diag([1.0, 1e-3, 1e-20]))
        >>> info.rank, info.gap, info.rule
        (2, 1e+17, 'tol')
    """

    rank: int
    tol: float
    gap: float
    singular_values: np.ndarray
    threshold: float = float("nan")
    rule: str = "tol"


def _eps(dtype: Any) -> float:
    if dtype is None:
        return float(np.finfo(np.float64).eps)
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def default_tol(shape: tuple[int, ...], dtype: Any = None) -> float:
    """Default relative rank tolerance ``max(shape) · eps`` (eps of ``dtype``, numpy or torch; float64 default).

    Example:
        >>> bool(default_tol((10, 4)) == 10 * np.finfo(float).eps)
        True
    """
    return float(max(max(shape), 1) * _eps(dtype))


def _gap(s: np.ndarray, r: int, threshold: float) -> float:
    smax = float(s[0]) if len(s) else 0.0
    if r == 0:
        return float("inf") if smax == 0 else float(threshold / smax)
    if r == len(s) or s[r] == 0:
        return float("inf")
    return float(s[r - 1] / s[r])


def gap_at(s: Any, r: int) -> float:
    """The singular-value gap σ_r/σ_{r+1} at a cut r chosen elsewhere (a fixed rank, a given k).

    Arguments:
        s: singular values (k,), descending; numpy or torch.
        r: the cut, 0 ≤ r ≤ k.

    Returns:
        σ_r/σ_{r+1}; inf when r = k or σ_{r+1} = 0; for r = 0, inf (nothing kept).

    Example:
        >>> gap_at(np.array([4.0, 2.0, 1.0]), 1)
        2.0
    """
    s = np.asarray(s.detach().cpu().double().numpy() if is_torch(s) else s, dtype=np.float64)
    if not 0 <= r <= len(s):
        raise ConfigError(f"r must be in [0, {len(s)}]; got {r!r}")
    return _gap(s, r, 0.0) if r else float("inf")


def _gavish_donoho_omega(beta: float) -> float:
    return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43


def numerical_rank(
    A_or_s: Any,
    tol: float | None = None,
    *,
    rule: str = "tol",
    energy: float | None = None,
    shape: tuple[int, int] | None = None,
    scale: float | None = None,
    dtype: Any = None,
) -> RankInfo:
    """Numerical rank with the gap at the cut.

    Rules:
        ``"tol"`` (default): σᵢ > tol · scale with tol relative (default ``max(shape) · eps``) and scale σ_max
        (or the given ``scale``).
        ``"energy"``: the smallest r with Σ_{i≤r} σᵢ² ≥ ``energy`` · Σ σᵢ² (``energy`` in (0, 1]).
        ``"optimal"``: Gavish–Donoho hard threshold for unknown noise, τ = ω(β) · median(σ) with
        β = min(shape)/max(shape) and ω(β) ≈ 0.56β³ − 0.95β² + 1.82β + 1.43 (PyDMD's approximation).

    References:
        Gavish, Donoho. The optimal hard threshold for singular values is 4/√3 (2014).
        https://arxiv.org/abs/1305.5870

    Arguments:
        A_or_s: a matrix (m, n), or a 1-D vector of its singular values (any order); numpy or torch.
        tol: relative tolerance of the "tol" rule.
        rule: "tol", "energy" or "optimal".
        energy: σ² fraction of the "energy" rule.
        shape: shape of the matrix when ``A_or_s`` holds singular values (default: (k, k)).
        scale: reference the relative ``tol`` multiplies (default σ_max).
        dtype: dtype whose eps sets the default tolerance (numpy or torch dtype; default float64).

    Returns:
        A :class:`RankInfo`.

    Example:
        >>> s = np.array([10.0, 5.0, 3.0, 1.0])
        >>> numerical_rank(s, tol=0.4).rank, numerical_rank(s, rule="energy", energy=0.9).rank
        (2, 2)
    """
    if rule not in RANK_RULES:
        raise ConfigError(f"rule must be one of {RANK_RULES}; got {rule!r}")
    if is_torch(A_or_s):
        A_or_s = A_or_s.detach().cpu().double().numpy()
    a = np.asarray(A_or_s)
    if a.ndim == 1:
        s = np.sort(np.abs(as_array(a, "singular values", ndim=1, allow_empty=True)))[::-1]
        shp = tuple(shape) if shape is not None else (len(s), len(s))
    elif a.ndim == 2:
        a = _as_matrix(a, "A")
        s = sla.svdvals(a, check_finite=False) if a.size else np.zeros(0)
        shp = a.shape if shape is None else tuple(shape)
    else:
        raise ShapeError(f"A_or_s must be a 2-D matrix or 1-D singular values; got shape {a.shape}")
    smax = float(s[0]) if len(s) else 0.0
    ref = smax if scale is None else float(scale)
    if rule == "tol":
        t = default_tol(shp, dtype) if tol is None else float(tol)
        if not t >= 0:
            raise ConfigError(f"tol must be a non-negative relative tolerance; got {tol!r}")
        threshold = t * ref
        r = int(np.sum(s > threshold))
    elif rule == "energy":
        if energy is None or not 0 < energy <= 1:
            raise ConfigError(f"the energy rule needs energy in (0, 1]; got {energy!r}")
        total = float(np.sum(s**2))
        if total == 0:
            r = 0
        else:
            frac = np.cumsum(s**2) / total
            r = min(int(np.searchsorted(frac, energy, side="left")) + 1, len(s))
        threshold = float(s[r]) if r < len(s) else 0.0
    else:
        if len(s) == 0:
            threshold, r = 0.0, 0
        else:
            beta = min(shp) / max(shp) if max(shp) > 0 else 1.0
            threshold = _gavish_donoho_omega(beta) * float(np.median(s))
            r = int(np.sum(s > threshold))
    rel = threshold / ref if ref > 0 else (0.0 if threshold == 0 else float("inf"))
    return RankInfo(rank=r, tol=float(rel), gap=_gap(s, r, threshold), singular_values=s.copy(),
                    threshold=float(threshold), rule=rule)


def numerical_ranks(s: Any, tol: float | None = None, shape: tuple[int, int] | None = None,
                    dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Numerical ranks and gaps of a batch of spectra, by the "tol" rule of :func:`numerical_rank`.

    Arguments:
        s: singular values (..., k), each row descending (as ``np.linalg.svd`` returns them); NaN rows count
            as rank 0 with gap NaN.
        tol: relative tolerance (default ``max(shape) · eps`` of ``dtype``).
        shape: shape of each matrix (default (k, k)).
        dtype: dtype whose eps sets the default tolerance.

    Returns:
        ranks (...,) int and gaps (...,) σ_r/σ_{r+1} (inf at full rank), as :func:`numerical_rank` per row.

    Example:
        >>> numerical_ranks(np.array([[2.0, 1.0], [1.0, 0.0]]))[0].tolist()
        [2, 1]
    """
    s = np.asarray(s.detach().cpu().double().numpy() if is_torch(s) else s, dtype=np.float64)
    if s.ndim < 1:
        raise ShapeError(f"s must hold singular values along its last axis; got shape {s.shape}")
    k = s.shape[-1]
    t = default_tol(shape if shape is not None else (k, k), dtype) if tol is None else float(tol)
    if k == 0:
        return np.zeros(s.shape[:-1], dtype=int), np.full(s.shape[:-1], np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        thr = t * s[..., :1]
        ranks = np.sum(s > thr, axis=-1)
        lo = np.take_along_axis(s, np.minimum(ranks, k - 1)[..., None], axis=-1)[..., 0]
        hi = np.take_along_axis(s, np.maximum(ranks - 1, 0)[..., None], axis=-1)[..., 0]
        gaps = np.where(ranks == k, np.inf, np.where(lo == 0, np.inf, hi / lo))
        gaps = np.where(ranks == 0, np.where(s[..., 0] == 0, np.inf, t), gaps)
        gaps = np.where(np.isnan(s).any(axis=-1), np.nan, gaps)
    return ranks.astype(int), gaps


def pinv_svd(result: SVDResult, shape: tuple[int, int], tol: float | None = None) -> SVDResult:
    """The SVD of the pseudo-inverse A⁺ from a thin SVD ``A = U diag(s) Vt`` of an (m, n) matrix, without a
    new factorization: A⁺ = V diag(1/s) Uᵀ on the numerical rank r (:func:`~linlens.linalg.numerical_rank`, the
    one rank cut), zero beyond. Singular values descending (1/s_r, …, 1/s_1, then zeros), signs by the rule.

    Returns:
        :class:`SVDResult` of A⁺ (n, m): U (n, k), s (k,), Vt (k, m), k = min(m, n).

    Example:
        >>> from linlens.linalg import svd
        >>> A = np.array([[2.0, 0.0], [0.0, 0.5], [0.0, 0.0]])
        >>> U, s, Vt = pinv_svd(svd(A), A.shape); bool(np.allclose((U * s) @ Vt, np.linalg.pinv(A)))
        True
    """
    U, s_, Vt = check_svd(result, shape)
    r = numerical_rank(s_, tol, shape=shape).rank
    order = np.r_[np.arange(r)[::-1], np.arange(r, len(s_))]
    inv = np.zeros_like(s_)
    inv[:r] = 1.0 / s_[r - 1::-1] if r else inv[:0]
    Up, Vtp = fix_signs(Vt[order].T.copy(), U[:, order].T.copy())
    return SVDResult(Up, inv, Vtp)
