"""Shared float64 numerics — the floor every capability stands on.

One SVD with one sign rule (:mod:`~linlens.linalg.svd`), numerical rank with its gap
(:mod:`~linlens.linalg.rank`), subspaces and eigenvalues with the gap-aware comparison of two operators
(:mod:`~linlens.linalg.subspaces`), streaming least squares (:mod:`~linlens.linalg.lstsq`) and squared
norms without underflow or overflow (:mod:`~linlens.linalg.norms`).

Conventions (the documentation's home page): samples along axis 0; singular values descending; the largest-|entry|
of every left singular vector is made positive (right vectors flipped with it); ``tol`` is always a relative
tolerance (default ``max(shape)·eps``, times σ_max); a reported rank always comes with the singular-value gap
at its cut.

Example:
    >>> A = np.arange(12.0).reshape(4, 3)
    >>> numerical_rank(A).rank
    2
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (used by the module doctest)

from linlens.linalg.lstsq import (
    QR_THRESHOLD,
    REFINE_THRESHOLD,
    GramAccumulator,
    LstsqSolution,
    SolverChoice,
    TSQRAccumulator,
    _solve_gram,
    pinv_psd,
    solver_policy,
)
from linlens.linalg.norms import ratio_of_sq_norms, scaled_sq_norm
from linlens.linalg.rank import (
    RANK_RULES,
    RankInfo,
    default_tol,
    gap_at,
    numerical_rank,
    numerical_ranks,
    pinv_svd,
)
from linlens.linalg.subspaces import (
    DEFAULT_MAX_K,
    DEFAULT_MIN_GAP,
    DEFAULT_MIN_NORM_GAP,
    PrincipalSubspace,
    SubspaceAngleProfile,
    SubspaceComparison,
    eigenvalue_condition_numbers,
    match_eigenvalues,
    principal_angles,
    principal_subspace,
    subspace_comparison,
    subspace_method,
)
from linlens.linalg.svd import (
    GRAM_MIN_RATIO,
    SVDResult,
    check_svd,
    fix_signs,
    randomized_svd,
    sign_flips,
    spectral_norm,
    svd,
    svd_leading,
    top_eigh,
    truncated_svd,
)

__all__ = [
    "svd",
    "svd_leading",
    "top_eigh",
    "GRAM_MIN_RATIO",
    "SVDResult",
    "fix_signs",
    "sign_flips",
    "truncated_svd",
    "randomized_svd",
    "spectral_norm",
    "pinv_svd",
    "pinv_psd",
    "check_svd",
    "RankInfo",
    "RANK_RULES",
    "numerical_rank",
    "numerical_ranks",
    "gap_at",
    "default_tol",
    "scaled_sq_norm",
    "ratio_of_sq_norms",
    "principal_angles",
    "subspace_comparison",
    "SubspaceComparison",
    "SubspaceAngleProfile",
    "DEFAULT_MIN_GAP",
    "DEFAULT_MIN_NORM_GAP",
    "DEFAULT_MAX_K",
    "match_eigenvalues",
    "eigenvalue_condition_numbers",
    "principal_subspace",
    "PrincipalSubspace",
    "subspace_method",
    "LstsqSolution",
    "GramAccumulator",
    "TSQRAccumulator",
    "REFINE_THRESHOLD",
    "QR_THRESHOLD",
    "SolverChoice",
    "solver_policy",
    "_solve_gram",
]
