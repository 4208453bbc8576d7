"""References and error splits of the inverse study for operators given only as functions (no d × d matrix).

For a forward operator A of any boundary (reflect/zero-padded blur, inpainting mask, subsampled Fourier) at image
size, the references of the inverse study are applied, never formed:

* **Wiener estimator**, x̂ = x̄ + Σₓ Aᵀ u with (A Σₓ Aᵀ + σ² I) u = y − ȳ solved by conjugate gradients
  (:func:`linlens.linalg.krylov.batched_cg`, every image of a batch at once). Σₓ is **low rank + diagonal**
  (:class:`LowRankDiagCovariance`): the top-r principal components of the training images plus the per-pixel
  variance they leave, so that Σₓ keeps the training images' exact per-pixel variances (its diagonal) and their
  top-r covariance, and is positive definite. When Σₓ is exactly of that form the result is the dense Wiener
  estimator Σₓ Aᵀ (A Σₓ Aᵀ + σ² I)⁻¹ (tested).
* **A⁺** by LSQR (:func:`linlens.linalg.krylov.lsqr_rows`), row by row; a row where LSQR stopped at its iteration
  limit is reported as not converged, and callers leave A⁺ out rather than label an iterate A⁺.
* **Signal error and noise amplification** of any linear map C (the network's surrogate, a reference):
  E‖(CA − I)x‖²/E‖x‖² as a ratio of means over held-out centred targets (exact expectation, one probe per
  image), and σ²‖C‖²_F/E‖x‖² by Hutchinson's estimator with Rademacher probes (:mod:`linlens.linalg.trace`),
  each with an interval. Their sum is C's expected test error per unit of E‖x‖² for noise independent of x.

Example:
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(500, 6))
    >>> cov = LowRankDiagCovariance(rank=2).fit(X)
    >>> bool(np.allclose(np.diag(cov.to_dense()), X.var(axis=0)))
    True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

from linlens._results import ResultMixin
from linlens.errors import ConfigError, NotFittedError, ShapeError
from linlens.linalg import randomized_svd
from linlens.linalg.krylov import KrylovResult, batched_cg, lsqr_rows
from linlens.linalg.trace import TraceEstimate, hutchinson, ratio_estimate
from linlens.operators import LinearMap
from linlens.validation import as_array, check_noise_std

__all__ = ["LowRankDiagCovariance", "CovarianceMoments", "MatrixFreeWiener", "WienerRefits", "pseudo_inverse_rows",
           "SignalNoiseEstimate", "signal_noise_estimate", "signal_noise_from_rows", "PRIOR_MODEL"]

#: How Σₓ is modelled on the matrix-free route (reports and metrics.json say it)
PRIOR_MODEL = ("low rank + diagonal: the top-r principal components of the centred training targets plus the "
               "per-pixel variance they leave (diagonal of Σₓ equal to the training targets' variances), refined by "
               "principal-axis factoring")


#: values (rows × d_y) per batch of conjugate gradients: its ~8 work arrays and the operator's temporaries are
#: ~12 × this in float64 (0.2 GiB), the CG's share of the peak memory whatever the number of right-hand sides;
#: 16 MiB arrays, below glibc's 32 MiB mmap threshold, are reused rather than page-faulted and zeroed per iteration
CG_VALUES = 2**21

#: power iterations of the randomized SVDs that fit Σₓ (a model of Σₓ, not a spectrum to report: a fixed count)
POWER_ITERATIONS = 4


class LowRankDiagCovariance:
    """Σ = Vᵀ diag(λ) V + diag(δ): the top-r principal subspace of samples plus the per-coordinate rest.

    Fitting starts from the top-r principal components of the samples (λ their variances, δ the per-coordinate
    variance they leave) and refines by principal-axis factoring (the top-r eigenpairs of S − diag(δ), then δ
    again), because principal components alone absorb part of the diagonal into the low-rank part (+4.4% error in
    Frobenius norm on a known low-rank + diagonal Σ with 40,000 samples; 1.6% after two refinements). The
    diagonal of the fit always equals the samples' per-coordinate variances.

    Arguments:
        rank: r, principal components kept.
        refine: principal-axis factoring iterations after the principal components (0: principal components only).
        seed: seed of the randomized SVD.

    Attributes:
        mean_ (d,), components_ (r, d) rows orthonormal, variances_ (r,) λ, diagonal_ (d,) δ ≥ 0, n_samples_.

    Example:
        >>> c = LowRankDiagCovariance.from_parts(np.array([[1.0, 0.0]]), np.array([2.0]), np.array([0.5, 1.0]))
        >>> c.to_dense().tolist()
        [[2.5, 0.0], [0.0, 1.0]]
    """

    def __init__(self, rank: int = 64, refine: int = 2, seed: int = 0) -> None:
        self.rank = rank
        self.refine = refine
        self.seed = seed

    @classmethod
    def from_parts(cls, components: Any, variances: Any, diagonal: Any, mean: Any = None) -> LowRankDiagCovariance:
        """A covariance given by its parts (components (r, d) with orthonormal rows, λ (r,) ≥ 0, δ (d,) ≥ 0)."""
        V = as_array(components, "components", ndim=2)
        lam, dg = as_array(variances, "variances", ndim=1), as_array(diagonal, "diagonal", ndim=1)
        if lam.shape != (V.shape[0],) or dg.shape != (V.shape[1],):
            raise ShapeError(f"need components (r, d), variances (r,), diagonal (d,); got {V.shape}, {lam.shape}, "
                             f"{dg.shape}")
        if (lam < 0).any() or (dg < 0).any():
            raise ConfigError("variances and diagonal must be non-negative (a covariance)")
        self = cls(rank=V.shape[0])
        self.components_, self.variances_, self.diagonal_ = V, lam, dg
        self.mean_ = np.zeros(V.shape[1]) if mean is None else as_array(mean, "mean", ndim=1)
        self.n_samples_ = 0
        return self

    def fit(self, X: Any) -> LowRankDiagCovariance:
        """Fit on samples X (n, d) (rows of training targets); returns self."""
        x = as_array(X, "samples", ndim=2)
        xc = x - x.mean(axis=0)
        return self.fit_centred(xc, x.mean(axis=0), xc.var(axis=0))

    def fit_centred(self, xc: Any, mean: np.ndarray, var: np.ndarray,
                    gram: Callable[[np.ndarray], np.ndarray] | None = None) -> LowRankDiagCovariance:
        """:meth:`fit` from the centred samples xc (n, d), an array or a products-only scipy ``LinearOperator``
        (``matmat``/``rmatmat``: e.g. passes over blocks on Dask workers), their mean (d,) and per-coordinate
        variances (d,); ``gram`` maps U (d, k) to xcᵀ(xc U) in one pass where given (default: the two products).
        Returns self.

        Example:
            >>> X = np.random.default_rng(0).normal(size=(200, 5)); from scipy.sparse.linalg import aslinearoperator
            >>> a = LowRankDiagCovariance(rank=2).fit(X)
            >>> b = LowRankDiagCovariance(rank=2).fit_centred(aslinearoperator(X - X.mean(0)), X.mean(0), X.var(0))
            >>> bool(np.allclose(a.to_dense(), b.to_dense()))
            True
        """
        n, d = xc.shape
        r = self.rank
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= min(n - 1, d):
            raise ConfigError(f"rank must be an integer in [1, min(n − 1, d)] = [1, {min(n - 1, d)}]; got {r!r}")
        self.mean_ = np.asarray(mean, dtype=np.float64)
        _, s, Vt = randomized_svd(xc, int(r), n_iter=POWER_ITERATIONS, seed=self.seed)
        lam = s**2 / n
        # the rest of each pixel's variance: exact diagonal of the sample covariance minus that of the low-rank part
        dg = np.maximum(var - (Vt**2).T @ lam, 0.0)
        for _ in range(int(self.refine)):  # principal-axis factoring: top-r eigenpairs of S − diag(δ)
            def reduced(U: np.ndarray, dg: np.ndarray = dg) -> np.ndarray:
                return (xc.T @ (xc @ U) if gram is None else gram(U)) / n - dg[:, None] * U

            op = spla.LinearOperator((d, d), matvec=lambda u: reduced(u[:, None])[:, 0],
                                     rmatvec=lambda u: reduced(u[:, None])[:, 0], matmat=reduced, rmatmat=reduced,
                                     dtype=np.float64)
            _, _, Vt = randomized_svd(op, int(r), n_iter=POWER_ITERATIONS, seed=self.seed)
            lam = np.maximum(np.einsum("ij,ji->i", Vt, reduced(Vt.T)), 0.0)  # Rayleigh quotients (clip: PSD)
            dg = np.maximum(var - (Vt**2).T @ lam, 0.0)
        self.components_, self.variances_, self.diagonal_ = Vt, lam, dg
        self.n_samples_ = n
        return self

    def _check(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("LowRankDiagCovariance is not fitted; call fit or from_parts")

    @property
    def trace(self) -> float:
        """tr Σ."""
        self._check()
        return float(self.variances_.sum() + self.diagonal_.sum())

    def apply(self, U: np.ndarray) -> np.ndarray:
        """Rows U (k, d) ↦ rows of Σ u (k, d)."""
        self._check()
        V = self.components_
        return ((U @ V.T) * self.variances_) @ V + U * self.diagonal_

    def to_dense(self) -> np.ndarray:
        """Σ as a (d, d) matrix (small d only: tests)."""
        self._check()
        V = self.components_
        return (V.T * self.variances_) @ V + np.diag(self.diagonal_)

    def group_moments(self, X: Any, groups: Any, n_groups: int) -> CovarianceMoments:
        """Per-group sums of the samples X (n, d) on this fit's span (rows' groups (n,) in [0, n_groups)), from which
        :meth:`CovarianceMoments.covariance` refits Σ on group-resampled rows without the samples.

        Example:
            >>> X = np.random.default_rng(0).normal(size=(300, 4)); c = LowRankDiagCovariance(rank=2).fit(X)
            >>> mom = c.group_moments(X, np.arange(300) % 8, 8)
            >>> bool(np.allclose(np.diag(mom.covariance(np.ones(8)).to_dense()), X.var(axis=0)))
            True
        """
        self._check()
        return CovarianceMoments(self.components_, int(n_groups), int(self.refine)).update(X, groups)

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {"model": PRIOR_MODEL, "rank": int(len(self.variances_)), "refinements": int(self.refine),
                "trace": self.trace,
                "low_rank_fraction": float(self.variances_.sum() / self.trace) if self.trace > 0 else None,
                "n_samples": int(self.n_samples_)}


class CovarianceMoments:
    """Per-group sums of samples on a fixed r-dimensional span V (r, d): n_g, Σx, Σx² (per coordinate), ΣVx and
    Σ(Vx)(Vx)ᵀ. :meth:`covariance` refits the low rank + diagonal Σ on the groups weighted by w (a group bootstrap's
    counts): the per-coordinate variances exactly, the low-rank part by principal-axis factoring restricted to the
    span (Rayleigh–Ritz: the r × r block V S_w Vᵀ less V diag(δ) Vᵀ), so a replicate costs O(g d + r² d), no pass
    over the samples. Holding the span at the full-data fit leaves out the span's own estimation noise (second
    order where the spectrum has a gap at r).

    Arguments:
        components: V (r, d), orthonormal rows. n_groups: g. refine: principal-axis factoring iterations.

    Example:
        >>> X = np.random.default_rng(1).normal(size=(200, 3)); mom = CovarianceMoments(np.eye(3)[:1], 4).update(
        ...     X, np.arange(200) % 4)
        >>> bool(np.allclose(mom.covariance(np.ones(4)).to_dense(), np.diag(X.var(axis=0))))
        True
    """

    def __init__(self, components: np.ndarray, n_groups: int, refine: int = 2) -> None:
        V = np.asarray(components, dtype=np.float64)
        self.components, self.n_groups, self.refine = V, int(n_groups), int(refine)
        r, d = V.shape
        g = self.n_groups
        self.n, self.s1, self.s2 = np.zeros(g), np.zeros((g, d)), np.zeros((g, d))
        self.q1, self.q2 = np.zeros((g, r)), np.zeros((g, r, r))

    def update(self, X: Any, groups: Any) -> CovarianceMoments:
        """Add samples X (k, d) with their groups (k,); returns self."""
        x = np.asarray(X, dtype=np.float64)
        grp = np.asarray(groups)
        if x.ndim != 2 or x.shape[1] != self.components.shape[1] or grp.shape != (len(x),):
            raise ShapeError(f"need X (k, {self.components.shape[1]}) and k groups; got {x.shape}, {grp.shape}")
        q = x @ self.components.T
        for j in np.unique(grp):
            sel = grp == j
            self.n[j] += int(sel.sum())
            self.s1[j] += x[sel].sum(axis=0)
            self.s2[j] += np.einsum("ij,ij->j", x[sel], x[sel])
            self.q1[j] += q[sel].sum(axis=0)
            self.q2[j] += q[sel].T @ q[sel]
        return self

    def covariance(self, w: Any) -> LowRankDiagCovariance:
        """Σ refitted on the groups weighted by w (n_groups,) (ones: all samples once)."""
        w = np.asarray(w, dtype=np.float64)
        N = float(w @ self.n)
        mean = (w @ self.s1) / N
        var = np.maximum((w @ self.s2) / N - mean**2, 0.0)
        V = self.components
        qm = V @ mean
        K = np.tensordot(w, self.q2, 1) / N - np.outer(qm, qm)  # V S_w Vᵀ
        lam, Q = np.linalg.eigh(K)
        comp = Q.T @ V
        dg = np.maximum(var - (comp**2).T @ lam, 0.0)
        for _ in range(self.refine):
            lam, Q = np.linalg.eigh(K - (V * dg) @ V.T)
            lam = np.maximum(lam, 0.0)
            comp = Q.T @ V
            dg = np.maximum(var - (comp**2).T @ lam, 0.0)
        out = LowRankDiagCovariance.from_parts(comp[::-1], lam[::-1], dg, mean)
        out.refine, out.n_samples_ = self.refine, int(round(N))
        return out


class MatrixFreeWiener:
    """The Wiener (LMMSE) estimator x̂ = x̄ + Σₓ Aᵀ (A Σₓ Aᵀ + σ² I)⁻¹ (y − ȳ), applied by conjugate gradients.

    Arguments:
        operator: the forward operator A (:class:`~linlens.operators.LinearMap`, with an adjoint).
        covariance: Σₓ (:class:`LowRankDiagCovariance`).
        noise_std: σ > 0.
        mean_x, mean_y: x̄ (d_x,) and ȳ (d_y,) (default zeros: the centred map).
        tol, maxiter: CG's stopping rule.
        preconditioner: "auto", "fourier", "scalar" or "none" (below).

    CG is preconditioned by P = C + (AVᵀ) diag(λ) (AVᵀ)ᵀ, the low-rank part of A Σₓ Aᵀ exactly and the rest,
    A diag(δ) Aᵀ + σ² I, as C = σ² I + mean(δ) · T (inverted by the Woodbury identity; r calls of A, once): the
    large eigenvalues that the low-rank prior puts in A Σₓ Aᵀ would otherwise cost CG about r extra iterations
    each solve. With ``preconditioner="fourier"`` (the default ``"auto"`` where A's outputs are images of at least
    4 × 4) T is the Fourier-diagonal (circulant) approximation of A Aᵀ, its diagonal in the 2-D Fourier basis
    estimated from 4 random images (exact for a circular blur; for a blur with other boundaries it differs only
    near the border), so that C carries the blur's spectrum; with ``"scalar"`` T = (‖A‖²_F/d_x) I. ``"auto"``
    takes the Fourier one only where it is closer to A Aᵀ than the scalar one on 2 fresh random images (a mask's
    A Aᵀ is diagonal, not circulant: the scalar one; :attr:`preconditioner` says which, after a solve); ``"none"``:
    no preconditioner. P is symmetric positive definite in every case, so the solutions are those of the
    unpreconditioned CG to its stopping rule (tested); only the iteration count depends on it.
    ``tol`` is raised to 100 × the operator's rounding when the operator computes in low precision.

    Attributes (after :meth:`predict`/:meth:`apply_centred`): last_solve_ (:class:`~linlens.linalg.krylov.KrylovResult`
    of the last call, solutions dropped).

    Example:
        >>> A = np.array([[1.0, 0.5], [0.0, 1.0]]); from linlens.operators import as_operator
        >>> cov = LowRankDiagCovariance.from_parts(np.array([[0.6, 0.8]]), np.array([2.0]), np.array([0.3, 0.1]))
        >>> W = MatrixFreeWiener(as_operator(A), cov, 0.5, tol=1e-12)
        >>> from linlens.problems import wiener_estimator
        >>> bool(np.allclose(W.apply_centred(np.eye(2)), wiener_estimator(A, cov.to_dense(), 0.5).T))
        True
    """

    def __init__(self, operator: LinearMap, covariance: LowRankDiagCovariance, noise_std: float, *,
                 mean_x: Any = None, mean_y: Any = None, tol: float = 1e-6, maxiter: int = 2000,
                 preconditioner: str = "auto") -> None:
        if preconditioner not in ("auto", "fourier", "scalar", "none"):
            raise ConfigError(f"preconditioner must be 'auto', 'fourier', 'scalar' or 'none'; got {preconditioner!r}")
        self.operator, self.covariance = operator, covariance
        self.noise_std = check_noise_std(noise_std)
        d_y, d_x = operator.shape
        self.mean_x = np.zeros(d_x) if mean_x is None else as_array(mean_x, "mean_x", ndim=1)
        self.mean_y = np.zeros(d_y) if mean_y is None else as_array(mean_y, "mean_y", ndim=1)
        self.tol, self.maxiter = max(float(tol), 100 * operator.eps), maxiter
        self.last_solve_: KrylovResult | None = None
        image = _image_shape(operator.out_shape)
        if preconditioner == "fourier" and image is None:
            raise ConfigError(f"a Fourier preconditioner needs A's outputs to be images (≥ 4 × 4); they are "
                              f"{operator.out_shape}")
        self.preconditioner = preconditioner  # "auto" is resolved by the first solve (:meth:`_preconditioner`)
        self._pre: tuple[np.ndarray, np.ndarray, Any] | None = None

    def _normal(self, U: np.ndarray) -> np.ndarray:
        A = self.operator
        return A.matvec(self.covariance.apply(A.rmatvec(U))) + self.noise_std**2 * U

    def _preconditioner(self) -> tuple[np.ndarray, np.ndarray, Any]:
        """(C⁻¹G as rows (r, d_y), (I + GᵀC⁻¹G)⁻¹ (r, r), C: a scalar or its Fourier diagonal) with G Gᵀ the
        low-rank part (AVᵀ) diag(λ) (AVᵀ)ᵀ."""
        if self._pre is None:
            A, cov = self.operator, self.covariance
            M = A.matvec(cov.components_)  # (r, d_y): A vᵢ
            Q, R = np.linalg.qr(M.T)
            gam, E = np.linalg.eigh((R * cov.variances_) @ R.T)
            G = (Q @ E) * np.sqrt(np.maximum(gam, 0.0))  # (d_y, r)
            rng = np.random.default_rng(0)
            z = rng.choice([-1.0, 1.0], size=(4, A.shape[1]))
            a = float(np.mean(np.sum(A.matvec(z) ** 2, axis=1))) / A.shape[1]  # ‖A‖²_F / d_x (Hutchinson)
            c: Any = self.noise_std**2 + float(cov.diagonal_.mean()) * a
            shape = _image_shape(A.out_shape)
            if self.preconditioner in ("auto", "fourier") and shape is not None:
                # diag of F A Aᵀ F* from 4 random images (exact if circulant); "auto" keeps it only where it
                # approximates A Aᵀ better than the scalar a I on 2 fresh images (a blur: yes; a mask: no)
                z = rng.choice([-1.0, 1.0], size=(6, A.shape[0]))
                AAz = A.matvec(A.rmatvec(z))
                Z = np.fft.rfft2(z[:4].reshape(-1, *shape))
                W = np.fft.rfft2(AAz[:4].reshape(-1, *shape))
                t = np.maximum(np.sum((np.conj(Z) * W).real, axis=0) / np.sum(np.abs(Z) ** 2, axis=0), 0.0)
                circ = np.fft.irfft2(np.fft.rfft2(z[4:].reshape(-1, *shape)) * t, s=shape).reshape(2, -1)
                err_f, err_s = (float(np.linalg.norm(AAz[4:] - e)) for e in (circ, a * z[4:]))
                if self.preconditioner == "fourier" or err_f < err_s:
                    c = self.noise_std**2 + float(cov.diagonal_.mean()) * t
                    self.preconditioner = "fourier"
            if self.preconditioner == "auto":
                self.preconditioner = "scalar"
            CiG = self._c_solve(G.T, c)
            self._pre = (CiG, np.linalg.inv(np.eye(G.shape[1]) + CiG @ G), c)
        return self._pre

    def _c_solve(self, Rr: np.ndarray, c: Any) -> np.ndarray:
        """Rows of C⁻¹ r: C = c I (scalar) or the circulant of Fourier diagonal c on A's output images."""
        if np.ndim(c) == 0:
            return Rr / c
        shape = _image_shape(self.operator.out_shape)
        F = np.fft.rfft2(Rr.reshape(-1, *shape)) / c
        return np.fft.irfft2(F, s=shape).reshape(Rr.shape)

    def _precondition(self, Rr: np.ndarray) -> np.ndarray:
        CiG, Sinv, c = self._preconditioner()
        return self._c_solve(Rr, c) - ((Rr @ CiG.T) @ Sinv) @ CiG

    def apply_centred(self, Yc: Any) -> np.ndarray:
        """Rows Yc (k, d_y) of centred inputs ↦ rows of W yc (k, d_x), W = Σₓ Aᵀ (A Σₓ Aᵀ + σ² I)⁻¹."""
        return self.solve_centred(Yc)[0]

    def solve_centred(self, Yc: Any, *, x0: np.ndarray | None = None,
                      tol: float | None = None) -> tuple[np.ndarray, KrylovResult]:
        """(rows of W yc (k, d_x), the CG result) for centred inputs Yc (k, d_y); the result's ``solution`` is
        u = (A Σₓ Aᵀ + σ² I)⁻¹ yc, a warm start ``x0`` for a nearby system (a refitted prior: :meth:`refitted`).
        ``tol`` overrides the stopping rule for this call."""
        Yc = as_array(Yc, "inputs", ndim=2)
        step = max(1, CG_VALUES // max(Yc.shape[1], 1))  # rows per CG batch: bounded memory at image size
        pre = None if self.preconditioner == "none" else self._precondition
        parts = [batched_cg(self._normal, Yc[s:s + step], tol=self.tol if tol is None else max(float(tol), self.tol),
                            maxiter=self.maxiter, precondition=pre,
                            x0=None if x0 is None else x0[s:s + step]) for s in range(0, max(len(Yc), 1), step)]
        res = KrylovResult(
            np.concatenate([p.solution for p in parts]), np.concatenate([p.iterations for p in parts]),
            np.concatenate([p.converged for p in parts]), np.concatenate([p.relative_residual for p in parts]),
            f"{parts[0].method}; preconditioner: {_PRECONDITIONER_WORDS[self.preconditioner]}")
        self.last_solve_ = KrylovResult(np.empty((0, 0)), res.iterations, res.converged, res.relative_residual,
                                        res.method)
        return self.covariance.apply(self.operator.rmatvec(res.solution)), res

    def refitted(self, covariance: LowRankDiagCovariance, noise_std: float) -> MatrixFreeWiener:
        """The estimator with another prior and σ (e.g. refitted on resampled training rows), sharing this one's
        preconditioner (still symmetric positive definite, so CG stays exact; only its speed depends on it).

        Example:
            >>> from linlens.operators import as_operator
            >>> c = LowRankDiagCovariance.from_parts(np.eye(2)[:1], np.array([1.0]), np.array([0.5, 0.5]))
            >>> W = MatrixFreeWiener(as_operator(np.eye(2)), c, 1.0, tol=1e-12).refitted(c, 2.0)
            >>> W.apply_centred(np.eye(2)).round(6).tolist()  # Σ(Σ + 4I)⁻¹ = diag(1.5/5.5, 0.5/4.5)
            [[0.272727, 0.0], [0.0, 0.111111]]
        """
        out = copy.copy(self)
        out.covariance, out.noise_std = covariance, check_noise_std(noise_std)
        out._pre = self._preconditioner()
        out.last_solve_ = None
        return out

    def predict(self, Y: Any) -> np.ndarray:
        """x̂ (k, d_x) for inputs Y (k, d_y)."""
        return self.mean_x + self.apply_centred(as_array(Y, "inputs", ndim=2) - self.mean_y)


_PRECONDITIONER_WORDS = {"fourier": "Fourier-diagonal approximation of A Aᵀ times mean(δ), plus σ² I and the "
                                     "prior's low-rank part (Woodbury)",
                         "scalar": "(σ² + mean(δ) ‖A‖²_F/d_x) I plus the prior's low-rank part (Woodbury)",
                         "none": "none", "auto": "automatic"}


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(H, W) of outputs shaped (…, H, W) with H, W ≥ 4 (images, for the Fourier preconditioner), else None."""
    return (int(shape[-2]), int(shape[-1])) if len(shape) >= 2 and min(shape[-2:]) >= 4 else None


class WienerRefits:
    """The Wiener estimator refitted on resampled training rows (its low-rank prior part and σ), applied to fixed
    rows b without conjugate gradients.

    A refit Σ* keeps the full-data span V (r, d_x) (:class:`CovarianceMoments`) and the per-pixel rest δ̂, so
    K* = A Σ* Aᵀ + σ*² I = K̂ + U ΔM Uᵀ + Δσ² I with U = A Vᵀ (d_y × r) and ΔM the r × r change of the low-rank
    part in V's coordinates. By the push-through (Woodbury) identity, (K̂ + U ΔM Uᵀ)⁻¹ b = u − P (I + ΔM Q)⁻¹ ΔM Uᵀu
    with u = K̂⁻¹b, P = K̂⁻¹U, Q = UᵀP (exact), and σ's change enters to first order, − Δσ² K̂⁻¹u (σ̂'s relative
    noise is ~1/√(n d_y)). P, u, K̂⁻¹u and their images under Aᵀ are solved once by CG; a refit then costs
    O(k r d_x) for k rows. δ̂ is held at the full-data fit: its estimation noise is not in the refits.

    Arguments:
        wiener: the full-data :class:`MatrixFreeWiener` (its covariance on the span of ``moments``).
        moments: :class:`CovarianceMoments` of the training targets on that span.
        rows: (k, d_y) centred inputs b the refits are applied to.
        solutions: (k, d_y) u = K̂⁻¹b when already solved (e.g. by :meth:`MatrixFreeWiener.solve_centred`), or None.

    Example:
        >>> from linlens.operators import as_operator
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 3)) * [2.0, 1.0, 0.5]
        >>> mom = LowRankDiagCovariance(rank=3).fit(X).group_moments(X, np.arange(300) % 6, 6)
        >>> A = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.2], [0.1, 0.0, 1.0]])
        >>> W = MatrixFreeWiener(as_operator(A), mom.covariance(np.ones(6)), 0.5, tol=1e-12)
        >>> w = np.array([2.0, 0, 1, 1, 0, 2]); cw = mom.covariance(w); ref = WienerRefits(W, mom, np.eye(3))
        >>> from linlens.problems import wiener_estimator
        >>> bool(np.allclose(ref.apply(cw, 0.25), wiener_estimator(A, cw.to_dense(), 0.5).T, atol=1e-8))
        True
    """

    def __init__(self, wiener: MatrixFreeWiener, moments: CovarianceMoments, rows: Any,
                 solutions: np.ndarray | None = None) -> None:
        A, cov = wiener.operator, wiener.covariance
        b = as_array(rows, "rows", ndim=2)
        V = moments.components
        self.wiener, self.moments, self.diagonal = wiener, moments, cov.diagonal_
        self.M0 = self._span_matrix(cov)
        U = A.matvec(V)  # (r, d_y): rows are the columns of A Vᵀ
        u = solutions if solutions is not None else wiener.solve_centred(b)[1].solution
        P = wiener.solve_centred(U)[1].solution
        v = wiener.solve_centred(u)[1].solution
        self.Q = U @ P.T
        self.Uu = u @ U.T  # (k, r) Uᵀu per row
        self.ATu, self.ATP, self.ATv = A.rmatvec(u), A.rmatvec(P), A.rmatvec(v)
        self.sigma2 = wiener.noise_std**2

    def _span_matrix(self, cov: LowRankDiagCovariance) -> np.ndarray:
        C = cov.components_ @ self.moments.components.T  # (r', r): the components in the span's coordinates
        return (C.T * cov.variances_) @ C

    def covariance(self, w: Any) -> LowRankDiagCovariance:
        """The refit's Σ* on groups weighted by w: low-rank part refitted, δ held at the full-data δ̂."""
        c = self.moments.covariance(w)
        return LowRankDiagCovariance.from_parts(c.components_, c.variances_, self.diagonal, c.mean_)

    def apply(self, covariance: LowRankDiagCovariance, sigma2: float) -> np.ndarray:
        """Rows W* b (k, d_x) of the Wiener estimator with prior ``covariance`` (from :meth:`covariance`) and
        noise variance σ*²."""
        dM = self._span_matrix(covariance) - self.M0
        r = dM.shape[0]
        c = np.linalg.solve(np.eye(r) + dM @ self.Q, dM @ self.Uu.T)  # (r, k)
        ATx = self.ATu - c.T @ self.ATP - (float(sigma2) - self.sigma2) * self.ATv
        return covariance.apply(ATx)


def pseudo_inverse_rows(operator: LinearMap, Y: Any, *, atol: float = 1e-8, btol: float = 1e-8,
                        iter_lim: int = 300) -> KrylovResult:
    """A⁺ y for every row y of Y (k, d_y) by LSQR on the operator (a function, never a matrix).

    Example:
        >>> from linlens.operators import as_operator
        >>> r = pseudo_inverse_rows(as_operator(np.diag([1.0, 0.0, 2.0])), np.array([[1.0, 5.0, 4.0]]))
        >>> r.solution.round(8).tolist()
        [[1.0, 0.0, 2.0]]
    """
    return lsqr_rows(operator.to_scipy(), as_array(Y, "inputs", ndim=2), atol=atol, btol=btol, iter_lim=iter_lim)


@dataclass(frozen=True)
class SignalNoiseEstimate(ResultMixin):
    """Signal error, noise amplification and their sum for one linear map C, each ÷ E‖x‖², with intervals.

    Arguments:
        signal_error: E‖(CA − I)x‖²/E‖x‖² (ratio of means over held-out centred targets).
        noise_amplification: σ²‖C‖²_F/E‖x‖² (Hutchinson, Rademacher probes; E‖x‖² from the same targets).
        total: their sum (C's expected test error ÷ E‖x‖², noise independent of x).
        noise_std: σ used.

    Example:
        >>> from linlens.operators import as_operator
        >>> X = np.random.default_rng(0).normal(size=(400, 3))
        >>> e = signal_noise_estimate(lambda Y: Y, as_operator(np.eye(3)), X, 0.5)  # C = A⁻¹ = I: no signal error
        >>> t = e.table(); sorted(t), t["signal_error"]["estimate"], e.noise_std
        (['noise_amplification', 'signal_error', 'total'], 0.0, 0.5)
    """

    signal_error: TraceEstimate
    noise_amplification: TraceEstimate
    total: TraceEstimate
    noise_std: float

    def table(self) -> dict[str, dict[str, float]]:
        """name → {estimate, low, high, std} (the shape of the other routes' corrected tables)."""
        return {k: {"estimate": e.estimate, "low": e.low, "high": e.high, "std": e.std_error}
                for k, e in (("signal_error", self.signal_error), ("noise_amplification", self.noise_amplification),
                             ("total", self.total))}


def signal_noise_estimate(apply_C: Callable[[np.ndarray], np.ndarray], operator: LinearMap, targets_centred: Any,
                          noise_std: float, *, n_probes: int = 64, seed: int = 0, ci: float = 0.95,
                          batch: int = 256) -> SignalNoiseEstimate:
    """Signal error and noise amplification of a linear map C (given as a function on rows) against A.

    Arguments:
        apply_C: rows Y (k, d_y) ↦ rows of C y (k, d_x), the linear part (no offset).
        operator: A (d_y, d_x).
        targets_centred: (n, d_x) held-out targets minus their (training) mean: the signal's probes.
        noise_std: σ of the white noise on y.
        n_probes: Rademacher probes for ‖C‖²_F.
        seed: the probes' seed (the same seed gives every C the same probes: paired).
        ci: confidence level.
        batch: rows per call of C and A.

    Returns:
        :class:`SignalNoiseEstimate`.

    Example:
        >>> from linlens.operators import as_operator
        >>> X = np.random.default_rng(0).normal(size=(400, 3)); A = as_operator(np.eye(3))
        >>> e = signal_noise_estimate(lambda Y: 0.5 * Y, A, X, 1.0)  # (0.5 − 1)² = 0.25; σ²·0.75/3 = 0.25
        >>> round(e.signal_error.estimate, 12), round(e.noise_amplification.estimate, 1)
        (0.25, 0.3)
    """
    Xc = as_array(targets_centred, "targets", ndim=2)
    sigma = check_noise_std(noise_std)
    d_y = operator.shape[0]
    num = np.concatenate([np.einsum("ij,ij->i", r := np.asarray(apply_C(operator.matvec(Xc[s:s + batch])))
                                    - Xc[s:s + batch], r) for s in range(0, len(Xc), batch)])
    den = np.einsum("ij,ij->i", Xc, Xc)
    fro = hutchinson(apply_C, d_y, n_probes=n_probes, seed=seed, batch=batch, ci=ci)
    return signal_noise_from_rows(num, den, fro, sigma, ci)


def signal_noise_from_rows(num: np.ndarray, den: np.ndarray, fro: TraceEstimate, noise_std: float,
                           ci: float = 0.95) -> SignalNoiseEstimate:
    """:func:`signal_noise_estimate` from its per-target terms (computed block by block, e.g. on Dask workers):
    num (n,) ‖(CA − I)x̃‖², den (n,) ‖x̃‖² of the held-out centred targets x̃, and ‖C‖²_F's estimate ``fro``.

    Example:
        >>> from linlens.linalg.trace import mean_estimate
        >>> e = signal_noise_from_rows(np.array([1.0, 1.0]), np.array([4.0, 4.0]), mean_estimate(np.ones(3)), 2.0)
        >>> e.signal_error.estimate, e.noise_amplification.estimate  # 1/4; 2²·1/4
        (0.25, 1.0)
    """
    sigma = check_noise_std(noise_std)
    signal = ratio_estimate(num, den, ci, "E‖(CA − I)x‖²/E‖x‖², ratio of means over held-out targets")
    mx = float(den.mean())
    se_den = float(den.std(ddof=1) / math.sqrt(len(den)))
    val = sigma**2 * fro.estimate / mx
    se = abs(val) * math.hypot(fro.std_error / fro.estimate if fro.estimate > 0 else 0.0, se_den / mx)
    from scipy.stats import norm

    q = float(norm.ppf(0.5 + ci / 2))
    noise = TraceEstimate(val, val - q * se, val + q * se, se, fro.n_probes, ci,
                          f"σ²‖C‖²_F/E‖x‖²: Hutchinson ({fro.n_probes} Rademacher probes) over the held-out targets' "
                          "mean squared norm; delta-method normal interval")
    return SignalNoiseEstimate(signal_error=signal, noise_amplification=noise, total=signal + noise,
                               noise_std=sigma)
