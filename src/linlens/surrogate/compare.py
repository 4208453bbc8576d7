"""Comparison of two linear operators and filter factors in a forward operator's singular basis.

:func:`compare_operators` measures how close C is to a reference R (norm and data-weighted errors, singular
spectra, principal angles, matched eigenvalues); :func:`filter_factors` shows what C does to each singular
component of a forward operator A (Φ = Vᵀ C A V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.linalg import (
    RankInfo,
    eigenvalue_condition_numbers,
    match_eigenvalues,
    numerical_rank,
    principal_angles,
    svd,
)
from linlens.validation import as_array

__all__ = ["FilterFactors", "filter_factors", "OperatorComparison", "compare_operators"]


# ------------------------------------------------------------------------------------------ filter factors
@dataclass(frozen=True)
class FilterFactors(ResultMixin):
    """What an estimator C does to each singular component of a forward operator A.

    Φ = Vᵀ C A V with A = U diag(s) Vᵀ: Φ = I for A⁻¹; diag(sᵢ²/(sᵢ² + σ²/λ)) for the Wiener estimator
    (Tikhonov filter factors); 0/1 for truncated SVD.

    Arguments:
        singular_values: sᵢ of A, descending (k,).
        factors: diag Φ (k,).
        leakage: ‖Φ − diag Φ‖_F / ‖Φ‖_F (0 when Φ = 0).
        matrix: Φ (k, k).
    """

    singular_values: np.ndarray
    factors: np.ndarray
    leakage: float
    matrix: np.ndarray



def filter_factors(C: Any, A: Any) -> FilterFactors:
    """Filter factors φᵢ = (Vᵀ C A V)ᵢᵢ of an estimator C against the forward operator A.

    References:
        Hansen. Rank-Deficient and Discrete Ill-Posed Problems (SIAM, 1998), filter factors of regularized
        inverses.

    Arguments:
        C: estimator (n_x, n_y) mapping data y to x.
        A: forward operator (n_y, n_x) mapping x to y; rectangular or rank-deficient is fine (thin SVD,
            k = min(n_y, n_x); components with sᵢ = 0 get φᵢ = 0).

    Returns:
        :class:`FilterFactors` with (k,) factors and the (k, k) matrix Φ.

    Example:
        >>> A = np.diag([2.0, 0.5])
        >>> filter_factors(np.linalg.inv(A), A).factors.round(12).tolist()
        [1.0, 1.0]
    """
    c = as_array(C, "C", ndim=2)
    a = as_array(A, "A", ndim=2)
    if c.shape != a.T.shape:
        raise ShapeError(f"C must have the shape of Aᵀ {a.T.shape} (C maps y to x, A maps x to y); got C {c.shape}")
    U, s, Vt = svd(a)
    Phi = Vt @ c @ (U * s)  # = Vᵀ C A V since A V = U diag(s)
    d = np.diag(Phi).copy()
    total = np.linalg.norm(Phi)
    leak = float(np.linalg.norm(Phi - np.diag(d)) / total) if total > 0 else 0.0
    return FilterFactors(singular_values=s, factors=d, leakage=leak, matrix=Phi)


# ---------------------------------------------------------------------------------------- compare operators
@dataclass(frozen=True)
class OperatorComparison(ResultMixin):
    """How close an operator C is to a reference R (same shape (m, n)).

    Arguments:
        shape: (m, n).
        rel_fro_error: ‖C − R‖_F / ‖R‖_F.
        rel_spectral_error: ‖C − R‖₂ / ‖R‖₂.
        data_weighted_error: E‖(C − R)y‖² / E‖Ry‖² over the probe rows y (None without probes).
        singular_values_C: (min(m, n),) descending.
        singular_values_R: (min(m, n),) descending.
        singular_value_rel_error: |σᵢ(C) − σᵢ(R)| / σᵢ(R) per index (min(m, n),) (inf where σᵢ(R) = 0 ≠ σᵢ(C)).
        log_spectral_distance: RMS over i < k of ln(σᵢ(C)/σᵢ(R)).
        k: number of leading singular directions compared (see :func:`compare_operators`).
        rank_info_C: numerical rank of C with the gap at its cut.
        rank_info_R: numerical rank of R with the gap at its cut.
        left_angles: principal angles (k,) between the top-k left singular subspaces, ascending, radians.
        right_angles: principal angles (k,) between the top-k right singular subspaces.
        eigs_C: (n,) eigenvalues of C (square case, else None), by descending modulus.
        eigs_R: (n,) eigenvalues of R matched to ``eigs_C`` by minimum-cost assignment.
        eig_distances: |eigs_C − eigs_R| (n,).
        eig_condition_C: eigenvalue condition numbers 1/|wᴴv| of C, aligned with ``eigs_C``.
        eig_condition_R: those of R, aligned with ``eigs_R``.
    """

    shape: tuple[int, int]
    rel_fro_error: float
    rel_spectral_error: float
    data_weighted_error: float | None
    singular_values_C: np.ndarray
    singular_values_R: np.ndarray
    singular_value_rel_error: np.ndarray
    log_spectral_distance: float
    k: int
    rank_info_C: RankInfo
    rank_info_R: RankInfo
    left_angles: np.ndarray
    right_angles: np.ndarray
    eigs_C: np.ndarray | None = None
    eigs_R: np.ndarray | None = None
    eig_distances: np.ndarray | None = None
    eig_condition_C: np.ndarray | None = None
    eig_condition_R: np.ndarray | None = None


def _rel(num: float, den: float) -> float:
    if den > 0:
        return float(num / den)
    return 0.0 if num == 0 else float("inf")


def compare_operators(C: Any, R: Any, k: int | None = None, probes: Any = None) -> OperatorComparison:
    """Compare an operator C with a reference R: norms, data-weighted error, spectra, subspaces, eigenvalues.

    Default ``k``: min(rank(C), rank(R)) with the default numerical-rank tolerance (max(shape)·eps·σ_max):
    the largest index at which both spectra are still above their own numerical-zero cut, so the top-k
    subspaces of both operators are well defined; each rank comes with its gap (``rank_info_*``).
    Eigenvalues (square case) are matched by minimum-cost assignment on |λᵢ − μⱼ| and come with their
    condition numbers: for non-normal operators they are unstable, prefer singular values.

    Arguments:
        C: operator (m, n) under test (e.g. a surrogate's ``coef_``).
        R: reference (m, n) (e.g. A⁻¹, A⁺ or the Wiener estimator).
        k: number of leading singular directions for angles and the log-spectral distance.
        probes: optional inputs (n_probes, n) to the operators for the data-weighted error.

    Returns:
        :class:`OperatorComparison`.

    Example:
        >>> R = np.array([[2.0, 1.0], [0.0, 1.0]])
        >>> cmp = compare_operators(R, R)
        >>> cmp.rel_fro_error, cmp.k, cmp.right_angles.round(12).tolist()
        (0.0, 2, [0.0, 0.0])
    """
    c = as_array(C, "C", ndim=2)
    r = as_array(R, "R", ndim=2)
    if c.shape != r.shape:
        raise ShapeError(f"C and R must have the same shape; got C {c.shape} and R {r.shape}")
    m, n = c.shape
    D = c - r
    Uc, sc, Vtc = svd(c)
    Ur, sr, Vtr = svd(r)
    sd = np.linalg.svd(D, compute_uv=False)
    rel_fro = _rel(np.linalg.norm(D), np.linalg.norm(r))
    rel_spec = _rel(sd[0] if len(sd) else 0.0, sr[0] if len(sr) else 0.0)
    dwe = None
    if probes is not None:
        P = as_array(probes, "probes", ndim=2)
        if P.shape[1] != n:
            raise ShapeError(f"probes must be (n_probes, {n}) for operators of shape {c.shape}; got {P.shape}")
        dwe = _rel(np.sum((P @ D.T) ** 2), np.sum((P @ r.T) ** 2))
    info_c = numerical_rank(sc, shape=c.shape)
    info_r = numerical_rank(sr, shape=r.shape)
    if k is None:
        k = min(info_c.rank, info_r.rank)
    elif not isinstance(k, (int, np.integer)) or not 0 <= k <= min(m, n):
        raise ConfigError(f"k must be an integer in [0, {min(m, n)}]; got {k!r}")
    k = int(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        sv_rel = np.where(sr > 0, np.abs(sc - sr) / np.where(sr > 0, sr, 1.0), np.where(sc == sr, 0.0, np.inf))
        logs = np.log(sc[:k]) - np.log(sr[:k])
    lsd = float(np.sqrt(np.mean(logs**2))) if k else 0.0
    left = principal_angles(Uc[:, :k], Ur[:, :k])
    right = principal_angles(Vtc[:k].T, Vtr[:k].T)
    eig = {}
    if m == n:
        ec, cc = eigenvalue_condition_numbers(c)
        er, cr = eigenvalue_condition_numbers(r)
        rows, cols, dist = match_eigenvalues(ec, er)
        eig = dict(eigs_C=ec[rows], eigs_R=er[cols], eig_distances=dist, eig_condition_C=cc[rows],
                   eig_condition_R=cr[cols])
    return OperatorComparison(
        shape=(m, n),
        rel_fro_error=rel_fro,
        rel_spectral_error=rel_spec,
        data_weighted_error=dwe,
        singular_values_C=sc,
        singular_values_R=sr,
        singular_value_rel_error=sv_rel,
        log_spectral_distance=lsd,
        k=k,
        rank_info_C=info_c,
        rank_info_R=info_r,
        left_angles=left,
        right_angles=right,
        **eig,
    )


# ----------------------------------------------------------------------------------------------- bootstrap
