"""Streaming least squares: centred Gram (Chan et al.) and TSQR accumulators with mergeable, picklable state.

Samples along axis 0. ``GramAccumulator`` is the fast one-pass route (error grows like κ²); ``TSQRAccumulator``
never forms XᵀX and is stable at any κ. Both merge pairwise, so per-block partials computed on Dask workers
reduce in a tree (:func:`linlens.scale.tree_reduce`) to the batch result up to rounding.

Example:
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(50, 2)); Y = X @ [[1.0], [-1.0]]
    >>> np.round(TSQRAccumulator().update(X, Y).solve().coef, 10).tolist()
    [[1.0, -1.0]]
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, NumericalWarning, ShapeError
from linlens.linalg.rank import numerical_rank
from linlens.linalg.svd import svd
from linlens.validation import as_array, check_finite, check_real, is_torch

__all__ = [
    "LstsqSolution",
    "GramAccumulator",
    "TSQRAccumulator",
    "REFINE_THRESHOLD",
    "QR_THRESHOLD",
    "SolverChoice",
    "solver_policy",
    "full_rank_by_kappa",
    "pinv_psd",
]

#: κ(X) above which the Gram route is refined (batch) or warned about (streaming).
REFINE_THRESHOLD = 1e5
#: κ(X) above which a batch fit goes straight to QR (refinement contracts only by ~κ²·eps per pass).
QR_THRESHOLD = 1e7
_GRAM_BLOCK = 8192  # rows centred at a time in GramAccumulator.update


# ------------------------------------------------------------------------------------------ solver policy
@dataclass(frozen=True)
class SolverChoice:
    """What :func:`solver_policy` decided.

    Arguments:
        method: "gram" (the Cholesky solve of the Gram pass), "refine" (Gram + iterative refinement, one more
            pass over the data per step), "qr" (TSQR: one more pass), or "svd" (TSQR + SVD of R).
        warn: the Gram solve is used above :data:`REFINE_THRESHOLD` (accurate only to about κ²·eps): say so.
        reason: one sentence for reports.

    Example:
        >>> c = solver_policy(1e6, passes="one"); c.method, c.warn  # κ above 1e5, costly passes: one TSQR pass
        ('qr', False)
    """

    method: str
    warn: bool
    reason: str


def solver_policy(kappa: float, solver: str = "auto", passes: str = "many") -> SolverChoice:
    """The one solver policy of linlens's least squares, from κ(X) of a Gram pass and what revisiting the data costs.

    - ``solver="qr"``/``"svd"``: TSQR from the start (κ is not needed).
    - ``solver="gram"``: the Gram solve, warned above κ = 1e5.
    - ``solver="auto"``: the Gram solve up to κ = 1e5 (:data:`REFINE_THRESHOLD`); above it, what the data allow:
      ``passes="many"`` (rows in memory) refines up to κ = 1e7 (:data:`QR_THRESHOLD`) and takes TSQR beyond;
      ``passes="one"`` (each pass is costly: Dask blocks, or a model re-run by ``linlens analyze``) takes one TSQR
      pass; ``passes="none"`` (streaming: the rows are gone, as in ``partial_fit``) keeps the Gram solve and warns.

    Arguments:
        kappa: κ₂ of the (centred) design from the Gram pass (inf: rank-deficient).
        solver: "auto", "gram", "qr" or "svd".
        passes: "many", "one" or "none": the extra passes over the data that are affordable.

    Returns:
        :class:`SolverChoice`.

    Example:
        >>> [solver_policy(k, passes=p).method for k, p in ((1e3, "many"), (1e6, "many"), (1e8, "many"),
        ...                                                 (1e6, "one"), (1e6, "none"))]
        ['gram', 'refine', 'qr', 'qr', 'gram']
    """
    if solver in ("qr", "svd"):
        return SolverChoice(solver, False, f"solver={solver!r}: TSQR from the start")
    if solver not in ("auto", "gram") or passes not in ("many", "one", "none"):
        raise ConfigError(f"solver must be auto, gram, qr or svd and passes many, one or none; got {solver!r}, "
                          f"{passes!r}")
    ill = bool(kappa > REFINE_THRESHOLD) and not math.isinf(kappa)
    if kappa <= REFINE_THRESHOLD or solver == "gram" or passes == "none":
        why = ("κ ≤ 1e5: the Gram (Cholesky) solve" if kappa <= REFINE_THRESHOLD else
               f"κ ≈ {kappa:.2g} > 1e5 but " + ("solver='gram'" if solver == "gram" else "the rows are gone")
               + ": the Gram solve, accurate to about κ²·eps")
        return SolverChoice("gram", ill, why)
    if passes == "many" and kappa <= QR_THRESHOLD:
        return SolverChoice("refine", False, f"1e5 < κ ≈ {kappa:.2g} ≤ 1e7: Gram + iterative refinement")
    return SolverChoice("qr", False, f"κ ≈ {kappa:.2g} > {'1e7' if passes == 'many' else '1e5'}: one TSQR pass")


# ---------------------------------------------------------------------------------- streaming least squares
@dataclass(frozen=True)
class LstsqSolution(ResultMixin):
    """Solution of a (ridge) least-squares problem Y ≈ X coefᵀ + intercept.

    Arguments:
        coef: (d_out, d_in).
        intercept: (d_out,) (zeros without intercept).
        condition_number: κ₂ of the (centred when fitting an intercept) design X.
        rank: numerical rank of that design.
        solver: route actually used ("gram", "gram+refine", "qr", "svd", "min-norm").

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(40, 2)); Y = X @ [[2.0], [-1.0]] + 3.0
        >>> s = GramAccumulator().update(X, Y).solve()
        >>> np.round(s.coef, 8).tolist(), np.round(s.intercept, 8).tolist(), s.rank
        ([[2.0, -1.0]], [3.0], 2)
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

    Takes no arguments: dimensions are taken from the first chunk.

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
        self._S: np.ndarray | None = None  # (d_in + d_out, d_in + d_out) centred scatter, Fortran order
        self._half = False  # only its upper triangle (i ≤ j) is current: see the S property

    @property
    def S(self) -> np.ndarray | None:
        """The centred scatter S = Σ (z − z̄)(z − z̄)ᵀ (d_in + d_out, d_in + d_out), symmetric.

        Updates add to one triangle in place (BLAS syrk: half the flops of a product, no (d_in + d_out)²
        temporary); the other triangle is filled here, when S is read."""
        if self._half:
            _symmetrize_upper(self._S)
            self._half = False
        return self._S

    @S.setter
    def S(self, value: np.ndarray | None) -> None:
        self._S, self._half = value, False
        self.__dict__.pop("_kappa", None)
        self.__dict__.pop("_factor", None)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "S" in state:  # pickled before S became a property
            state["_S"], state["_half"] = state.pop("S"), False
        self.__dict__.update(state)

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
        # Chan et al.'s update S ← S + Σ (z − z̄_chunk)(z − z̄_chunk)ᵀ + (n m / (n + m)) δδᵀ, δ = z̄_chunk − z̄, added
        # in place to S's upper triangle by BLAS syrk: the rows centred in cache-sized blocks (one reused buffer),
        # the mean shift as one more row √(n m / (n + m))·δ of the first block
        bs = min(m, _GRAM_BLOCK)
        Z = np.empty((bs + 1, d + y.shape[1]))
        S = None if self.n == 0 else self._S
        for s in range(0, m, bs):
            rows = min(bs, m - s)
            np.subtract(x[s : s + bs], mx, out=Z[:rows, :d])
            np.subtract(y[s : s + bs], my, out=Z[:rows, d:])
            if s == 0 and self.n > 0:
                Z[rows] = np.concatenate([mx - self.mean_x, my - self.mean_y]) * np.sqrt(self.n * m / (self.n + m))
                rows += 1
            S = _syrk_upper(Z[:rows], S)
        if self.n == 0:
            self.n, self.mean_x, self.mean_y = m, mx.copy(), my.copy()
        else:
            n = self.n + m
            self.mean_x = self.mean_x + (mx - self.mean_x) * (m / n)
            self.mean_y = self.mean_y + (my - self.mean_y) * (m / n)
            self.n = n
        self._S, self._half = S, True
        self.__dict__.pop("_kappa", None)
        self.__dict__.pop("_factor", None)
        return self

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
        self.__dict__.pop("_kappa", None)
        self.__dict__.pop("_factor", None)
        if self.n == 0:
            self.n, self.mean_x, self.mean_y = m, mx.copy(), my.copy()
            self._S = np.array(S, dtype=np.float64, order="F")  # this accumulator's own copy
            self._half = True  # S's upper triangle is current (an update may have left the lower one stale)
            return self
        n = self.n + m
        delta = np.concatenate([mx - self.mean_x, my - self.mean_y]) * np.sqrt(self.n * m / n)
        # in place, in the order (S_a + S_b) + shift, the shift δδᵀ·n_a n_b / n by a rank-one syrk on the upper
        # triangle: no (d_in + d_out)² temporary (at d_in = d_out = 4096 each one is 0.5 GiB of fresh pages)
        own = self._S  # only the upper triangles are summed and kept: the lower one is filled when S is read
        own += S
        self._S, self._half = _syrk_upper(delta[None, :], own), True
        self.mean_x = self.mean_x + (mx - self.mean_x) * (m / n)
        self.mean_y = self.mean_y + (my - self.mean_y) * (m / n)
        self.n = n
        return self

    def merge(self, other: GramAccumulator) -> GramAccumulator:
        """Fold another accumulator's state into this one (pairwise update); returns self."""
        if other.n == 0:
            return self
        self._check_dims(other.d_in, other.d_out)
        return self._combine(other.n, other.mean_x, other.mean_y, other._S)

    def gram(self, fit_intercept: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return (G (d_in, d_in), B (d_in, d_out)): XᵀX and XᵀY, centred when ``fit_intercept``."""
        G, B = self._gram_read_only(fit_intercept)
        return (G.copy(), B.copy()) if fit_intercept else (G, B)

    def _gram_read_only(self, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`gram` for callers that only read G and B: views of S when centred (no copies: at d = 4096 the
        two strided copies cost ~0.4 s per call), new arrays otherwise. The κ and the solve use it (neither
        writes to G or B: :func:`_kappa_and_factor` and :func:`_solve_gram` form their own scaled arrays)."""
        self._require()
        d = self.d_in
        G, B = self.S[:d, :d], self.S[:d, d:]
        if not fit_intercept:
            G = G + self.n * np.outer(self.mean_x, self.mean_x)
            B = B + self.n * np.outer(self.mean_x, self.mean_y)
        return G, B

    def condition_number(self, fit_intercept: bool = True) -> float:
        """κ₂ of the design, estimated as sqrt(κ(XᵀX)) (inaccurate beyond ~1e8, where it saturates).

        Remembered until the next update or merge. Above d_in = 512 it is computed as the solve needs it anyway:
        the Cholesky factor of the equilibrated Gram matrix (kept for :meth:`solve`) and Lanczos (ARPACK) for
        the largest eigenvalue of XᵀX and of its inverse, converged to rounding (~1 s at d_in = 4096 instead of
        ~6 s for all eigenvalues); where the Cholesky factorization fails or κ > 1e4 (near the solver policy's
        thresholds) it is taken from all eigenvalues, as below d_in = 512 (:func:`_kappa_and_factor`)."""
        key = (self.n, bool(fit_intercept))
        cached = self.__dict__.get("_kappa")
        if cached is not None and cached[0] == key and cached[1] is self.S:
            return cached[2]
        G, _ = self._gram_read_only(fit_intercept)
        kappa, factor = _kappa_and_factor(G)
        self._kappa = (key, self.S, kappa)
        self._factor = None if factor is None else (key, factor)
        return kappa

    def solve(self, alpha: float = 0.0, fit_intercept: bool = True) -> LstsqSolution:
        """Solve (XᵀX + αI) coefᵀ = XᵀY by Cholesky of the equilibrated Gram matrix.

        A singular Gram matrix with α = 0 gives the minimum-norm solution (eigen-decomposition) with a
        :class:`NumericalWarning`.
        """
        kappa = self.condition_number(fit_intercept)
        G, B = self._gram_read_only(fit_intercept)
        kept = self.__dict__.pop("_factor", None)  # the factor of condition_number (α = 0), used once
        factor = kept[1] if kept is not None and kept[0] == (self.n, bool(fit_intercept)) and alpha == 0 else None
        coef_t, rank, route = _solve_gram(G, B, alpha, kappa, factor=factor)
        intercept = self._intercept(coef_t, fit_intercept)
        return LstsqSolution(coef_t.T.copy(), intercept, kappa, rank, route)

    def _intercept(self, coef_t: np.ndarray, fit_intercept: bool) -> np.ndarray:
        if not fit_intercept:
            return np.zeros(self.d_out)
        return self.mean_y - self.mean_x @ coef_t


def _syrk_upper(Z: np.ndarray, S: np.ndarray | None) -> np.ndarray:
    """S + ZᵀZ on the upper triangle of S (p, p), in place (BLAS dsyrk, β = 1) when S is Fortran-ordered float64;
    a new Fortran-ordered upper triangle ZᵀZ when S is None. Z (k, p) float64, C-ordered (Zᵀ is then a Fortran
    view: no copy). The lower triangle is left as it was (see :func:`_symmetrize_upper`)."""
    from scipy.linalg.blas import dsyrk

    zt = np.asarray(Z, dtype=np.float64).T
    if S is None:
        return dsyrk(1.0, zt, trans=0, lower=0)
    if not S.flags.f_contiguous:
        S = np.asfortranarray(S)
    out = dsyrk(1.0, zt, beta=1.0, c=S, trans=0, lower=0, overwrite_c=1)
    return out


def _symmetrize_upper(S: np.ndarray, block: int = 512) -> None:
    """Copy the upper triangle of S (p, p) onto its lower triangle, in place, by blocks of columns."""
    p = S.shape[0]
    for b0 in range(0, p, block):
        b1 = min(p, b0 + block)
        S[b0:b1, :b0] = S[:b0, b0:b1].T
        D = S[b0:b1, b0:b1]
        iu = np.triu_indices(b1 - b0, 1)
        D[iu[1], iu[0]] = D[iu]


#: Gram matrices at least this large get κ from Lanczos on the Cholesky factor (:func:`_kappa_and_factor`).
_LANCZOS_MIN_D = 512
#: κ(X) above which the Lanczos value is replaced by the one from all eigenvalues (10× below REFINE_THRESHOLD).
_LANCZOS_MAX_KAPPA = 1e4


def _equilibrated(G: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(D (G + αI) D, diag of D) with D = diag(G + αI)^(-1/2) (1 where that diagonal is not positive)."""
    A = G + alpha * np.eye(G.shape[0]) if alpha else G.copy()
    diag = np.diag(A).copy()
    scale = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
    A *= scale[:, None]
    A *= scale[None, :]
    return A, scale


def _kappa_and_factor(G: np.ndarray) -> tuple[float, tuple[Any, np.ndarray] | None]:
    """κ(X) = sqrt(λ_max/λ_min) of the Gram matrix G = XᵀX (d, d) and, when computed, the Cholesky factor of the
    equilibrated G (``(cho_factor result, scale)``) for the solve.

    Up to d = 511: all eigenvalues (:func:`_kappa_from_gram`). From d = 512: Cholesky of D G D, then λ_max(G) and
    λ_max(G⁻¹) = λ_max(D (DGD)⁻¹ D) by ARPACK's Lanczos (tol = 0: converged to rounding; two d² products per
    step instead of a d³ tridiagonalization). Where the factorization fails (G not numerically positive
    definite), ARPACK does not converge, or κ > 1e4 (within 10× of the solver policy's first threshold, where the
    two routes' rounding could matter), κ comes from all eigenvalues as before."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    d = G.shape[0]
    if d < _LANCZOS_MIN_D:
        return _kappa_from_gram(G), None
    As, scale = _equilibrated(G, 0.0)
    try:
        cf = sla.cho_factor(As, lower=False, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        return _kappa_from_gram(G), None
    factor = (cf, scale)
    v0 = np.random.default_rng(0).standard_normal(d)  # deterministic start
    inverse = LinearOperator((d, d), dtype=np.float64,
                             matvec=lambda v: scale * sla.cho_solve(cf, scale * np.ravel(v), check_finite=False))
    try:
        top = float(eigsh(G, k=1, which="LA", tol=0, v0=v0, return_eigenvectors=False)[0])
        inv = float(eigsh(inverse, k=1, which="LA", tol=0, v0=v0, return_eigenvectors=False)[0])
    except ArpackNoConvergence:
        return _kappa_from_gram(G), factor
    if not (top > 0 and inv > 0) or top * inv > _LANCZOS_MAX_KAPPA**2:
        return _kappa_from_gram(G), factor
    return float(np.sqrt(top * inv)), factor


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


def full_rank_by_kappa(kappa: float, d: int) -> bool:
    """True when κ(X) alone proves that the equilibrated Gram matrix D G D (D = diag(G)^(-1/2)) has full numerical
    rank under the default rule (λ_min > d·eps·λ_max), so that its eigenvalues need not be computed.

    Van der Sluis (1969): Jacobi scaling is within a factor d of the best diagonal scaling, so
    κ(D G D) ≤ d·κ(G) = d·κ(X)²; full rank follows when d·κ(X)² ≤ 1/(2·d·eps) (a factor 2 for the rounding of
    the computed κ). At d = 4096 that is κ(X) ≤ 1.2e4, below the Gram route's own limit 1e5.

    Example:
        >>> full_rank_by_kappa(1e3, 4096), full_rank_by_kappa(1e5, 4096), full_rank_by_kappa(float("inf"), 2)
        (True, False, False)
    """
    return bool(np.isfinite(kappa) and d > 0 and d * d * kappa * kappa * np.finfo(np.float64).eps <= 0.5)


def pinv_psd(G: Any) -> np.ndarray:
    """Minimum-norm pseudo-inverse G⁺ of a symmetric positive semi-definite Gram matrix (m, m), with the cutoff of
    ``numpy.linalg.lstsq(G, X, rcond=None)`` (eigenvalues below m·eps·λ_max are dropped), from one symmetric
    eigen-decomposition.

    ``pinv_psd(G) @ X`` is the minimum-norm least-squares solution of G B = X that lstsq gives, at the cost of one
    m³ problem and one m²·k product: LAPACK's gelsd on k right-hand sides takes an SVD-based path per call (~5 s
    at m = 256, k = 16,384; the subspace surrogate and every bootstrap replicate of the grouped error solve such
    systems).

    Arguments:
        G: symmetric PSD (m, m) (e.g. ZᵀZ of scores).

    Returns:
        G⁺ (m, m).

    Example:
        >>> G = np.array([[2.0, 0.0], [0.0, 0.0]]); X = np.array([[4.0], [1.0]])
        >>> (pinv_psd(G) @ X).tolist(), np.linalg.lstsq(G, X, rcond=None)[0].tolist()
        ([[2.0], [0.0]], [[2.0], [0.0]])
    """
    g = np.asarray(G, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ShapeError(f"G must be a square (m, m) matrix; got shape {g.shape}")
    return np.linalg.pinv(g, rtol=max(g.shape[0], 1) * np.finfo(np.float64).eps, hermitian=True)


def _solve_gram(G: np.ndarray, B: np.ndarray, alpha: float, kappa: float = float("inf"),
                factor: tuple[Any, np.ndarray] | None = None) -> tuple[np.ndarray, int, str]:
    """Cholesky of the equilibrated (G + αI), or the minimum-norm eigen-solution when it is numerically singular.
    The rank test (an eigenvalue problem of size d, ~6 s at d = 4096) is skipped when ``kappa`` = κ(X), known from
    the Gram pass, proves full rank (:func:`full_rank_by_kappa`; a ridge α > 0 only lowers κ). ``factor``: the
    Cholesky factor of the same equilibrated matrix with α = 0 when :func:`_kappa_and_factor` made it."""
    d = G.shape[0]
    full = full_rank_by_kappa(kappa, d)
    if factor is not None and full and d > 0 and alpha == 0:
        cf, scale = factor
        return sla.cho_solve(cf, B * scale[:, None], check_finite=False) * scale[:, None], d, "gram"
    As, scale = _equilibrated(G, alpha)
    Bs = B * scale[:, None]
    # the Gram matrix is PSD: its eigenvalues are its singular values (negative ones are rounding)
    rank = d if full else numerical_rank(np.maximum(np.linalg.eigvalsh(As), 0.0), shape=(d, d)).rank
    if rank == d and d > 0:
        try:
            c = sla.cho_factor(As, lower=False, check_finite=False)
            return sla.cho_solve(c, Bs, check_finite=False) * scale[:, None], d, "gram"
        except np.linalg.LinAlgError:
            pass
    # singular (or not positive definite in floating point): minimum-norm solution of the normal equations
    A = G + alpha * np.eye(d)
    w, V = np.linalg.eigh(A)
    keep = w > numerical_rank(np.maximum(w, 0.0), shape=(d, d)).threshold
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
