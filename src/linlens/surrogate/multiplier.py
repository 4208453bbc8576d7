"""A multiplier (wild) bootstrap of statistics of fitted linear operators, with the design held fixed.

The study's statistics are quadratic (data-weighted errors, signal error, noise amplification) or smooth
(norms, leakage) functions of estimated operators: the surrogate Ĉ (fitted on probe rows), C_data (fitted on
training rows) and the Wiener estimator when Σₓ or σ are estimated (from training rows). To first order each
estimate's error is a sum of independent per-row terms,

    Ĉ − C ≈ Σᵢ εᵢ lᵢ mᵢᵀ,

(an OLS fit: lᵢ the HC2-scaled residual rᵢ/√(1 − hᵢ), mᵢ = (ỸᵀỸ)⁺ỹᵢ; a Wiener estimator re-estimated from Σ̂ₓ,
σ̂²: the influence of each training row through dW = ((I − WA) dΣₓ Aᵀ − dσ² W) M⁻¹). A replicate replaces the
unknown εᵢ by independent Rademacher multipliers ωᵢ (Wu 1986; Mammen 1993) — one draw per row of each source
(probe rows, training rows), shared by every statistic, so paired differences keep their pairing. A quadratic
statistic of D* = D + Σₚ ± Eₚ(ω) is then, exactly,

    tr(O D* W D*ᵀ Oᵀ) = tr(O D W Dᵀ Oᵀ) + 2 Σₚ ±ωₚᵀaₚ + Σₚ,q ±ωₚᵀ Kₚq ω_q,
    aₚ,ₖ = lₖᵀ OᵀO D W mₖ,   Kₚq = (Lₚ OᵀO L_qᵀ) ∘ (Mₚ W M_qᵀ),

so after O(n d²) + O(n² d) set-up a replicate costs O(n²) — no refit, no O(d³) per resample. The expected
quadratic term E_ω[·] = Σₚ tr Kₚₚ is the HC2 estimate of the statistic's estimation bias (for the surrogate
alone it equals :meth:`~linlens.surrogate.resampling.OLSFit.quadratic_bias`); the bias-corrected estimate
subtracts it and the basic interval is taken around it, as the row bootstrap with ``bias="analytic"`` does.
Rows the statistic is *evaluated* on (test probes) are resampled with multinomial counts, added to the
replicate (their interaction with the fit noise is of higher order).

The coverage of these intervals is checked by simulation against models whose population surrogate is known in
closed form (``tests/surrogate/test_multiplier.py``, ``benchmarks/bench_intervals.py``).

References:
    C. F. J. Wu. Jackknife, bootstrap and other resampling methods in regression analysis. Ann. Statist. 14
    (1986) 1261–1295 (the wild bootstrap). E. Mammen. Bootstrap and wild bootstrap for high dimensional linear
    models. Ann. Statist. 21 (1993) 255–285. J. G. MacKinnon, H. White. J. Econometrics 29 (1985) 305–325 (HC2).
    R. Davidson, E. Flachaire. The wild bootstrap, tamed at last. J. Econometrics 146 (2008) 162–169 (Rademacher).

Example:
    >>> rng = np.random.default_rng(0); Y = rng.normal(size=(400, 3)); F = Y @ np.eye(3) + rng.normal(size=(400, 3))
    >>> design = FixedDesign(Y); fit = design.perturbation(F, "fit")
    >>> mb = MultiplierBootstrap({"fit": 400}, n_boot=200, seed=0)
    >>> q = mb.quadratic(fit.coef, np.eye(3), [(1.0, fit)])  # ‖Ĉ‖²_F: plug-in, bias, replicates
    >>> round(q.plug_in - q.expected), q.replicates.shape  # ‖C‖²_F = 3
    (3, (200,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens.errors import ConfigError, ShapeError
from linlens.linalg import numerical_rank
from linlens.linalg.lstsq import _kappa_and_factor, _symmetrize_upper, _syrk_upper

__all__ = ["Perturbation", "FixedDesign", "MultiplierBootstrap", "Quadratic", "wiener_perturbation",
           "quadratic_interval", "GRAM_KAPPA_LIMIT", "SKETCH_PROBES", "SKETCH_NOISE_MAX", "KRON_FULL_MAX",
           "REPLICATE_FLOAT32_MIN"]

#: Rademacher probes of the Hutchinson sketch of the quadratic term's fluctuations (large operators on many rows).
SKETCH_PROBES = 32

#: The "auto" method forms a sketch's first this many probes first (without output rows): where they show its noise
#: far above SKETCH_NOISE_MAX (:func:`_pilot_says_exact`), it takes the exact route without forming the others (the
#: work of a sketch that is then dropped); otherwise it forms the rest, and the decision is the full sketch's.
_SKETCH_PILOT = 8

#: "Far above": the pilot's estimate of the full sketch's noise ratio exceeds SKETCH_NOISE_MAX by this factor (the
#: estimate's own spread is ~10% at 100 replicates; where it is below, the full sketch decides, as without a pilot).
_PILOT_MARGIN = 2.0

#: The "auto" method drops a sketch whose own noise (the probes' sample variance / p, averaged over the replicates)
#: exceeds this fraction of the replicates' variance, and takes the exact Grams (or explicit operators) instead: a
#: large quadratic term (an estimate fitted on about as many rows as it has inputs) made the sketch's noise several
#: times the true spread (d = 300, n = 700: replicate s.d. 4.7 against the exact 2.5).
SKETCH_NOISE_MAX = 0.01

#: :meth:`MultiplierBootstrap.delta_variance` uses the residuals' full output covariance LᵀL/n up to this many
#: outputs and its mean eigenvalue × I above (no d_out³ eigendecomposition, no rotated copies of the pieces: at
#: d = 1024 the full form added ~85% to the study's bootstrap, the isotropic one much less).
KRON_FULL_MAX = 256

#: From this many inputs d_in on, the products that move replicates and standard errors only run in float32: the
#: Hutchinson sketch of the quadratic term's fluctuations (its mean is replaced by the float64 expectation), the n × n
#: Grams of the exact quadratic term (accumulated per replicate in float64), a banded statistic's linear-term rows
#: M (O D W)ᵀ and the row products L D of the unbanded linear terms (whose row forms, summed in float64, also give the
#: first-order standard errors). Plug-ins and bias corrections stay float64 (the row forms that enter a bias, e.g. a
#: Wiener estimator's full-rank cross term, too). ``tests/surrogate/test_multiplier.py`` bounds the change (replicates
#: to 1e-5 of their spread, standard errors to 1e-5 relative, plug-in and bias bit for bit); at d = 4096 it halves the
#: cost of these products.
REPLICATE_FLOAT32_MIN = 512

#: Rows per block of a symmetric Gram's upper triangle (:meth:`MultiplierBootstrap._gram` of a piece with itself):
#: the blocks right of the diagonal are formed, ~(1 + block/n)/2 of the full product's flops.
_SYM_BLOCK = 512

#: A design whose condition number (from its Gram matrix) is below this is factorized through the Gram matrix
#: (O(n d²) BLAS products and one d × d symmetric eigendecomposition); above it, through the SVD of the rows.
GRAM_KAPPA_LIMIT = 1e5


def _terms(D: np.ndarray | Sequence[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    """An operator or a linear combination [(c, X), …] as a list of (c, float64 X)."""
    if isinstance(D, np.ndarray):
        return [(1.0, D if D.dtype == np.float64 else D.astype(np.float64))]
    if isinstance(D, (list, tuple)) and D and all(isinstance(t, tuple) and len(t) == 2 for t in D):
        return [(float(c), np.asarray(X, dtype=np.float64)) for c, X in D]
    return [(1.0, np.asarray(D, dtype=np.float64))]


@dataclass(frozen=True)
class Perturbation:
    """The linearized estimation error of a (d_out, d_in) operator: E(ω) = Σₖ ωₖ lₖ mₖᵀ + (gᵀω) N.

    Arguments:
        source: the name of the rows whose multipliers ω drive it ("fit", "train", …).
        coef: the estimate itself (d_out, d_in).
        L: (n_rows, d_out) rows lₖ.
        M: (n_rows, d_in) rows mₖ.
        g: (n_rows,) weights of the full-rank part, or None.
        N: (d_out, d_in) its matrix, or None.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(50, 2))
        >>> F = Y @ [[2.0, 0.0], [0.0, 1.0]] + rng.normal(size=(50, 2))
        >>> p = FixedDesign(Y).perturbation(F, "fit")
        >>> p.n_rows, p.L.shape, p.M.shape, bool(np.allclose(p.times(3 * np.eye(2)).coef, 3 * p.coef))
        (50, (50, 2), (50, 2), True)
    """

    source: str
    coef: np.ndarray
    L: np.ndarray
    M: np.ndarray
    g: np.ndarray | None = None
    N: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        """Rows (multipliers) of the source."""
        return int(self.L.shape[0] if self.g is None else self.g.shape[0])

    def times(self, A: np.ndarray) -> Perturbation:
        """The perturbation of X A (A: (d_in, d)): mₖ ↦ Aᵀmₖ, N ↦ N A (e.g. Ĉ ↦ ĈA for the signal error)."""
        A = np.asarray(A, dtype=np.float64)
        return Perturbation(source=self.source, coef=self.coef @ A, L=self.L, M=self.M @ A, g=self.g,
                            N=None if self.N is None else self.N @ A)


class FixedDesign:
    """The centred design of an OLS fit with intercept, factorized once for every output fitted on it.

    Arguments:
        Y: inputs (n_samples, d_in).

    Attributes:
        mean: (d_in,); Z: (n_samples, d_in) rows zᵢ = (ỸᵀỸ)⁺ỹᵢ; leverage: (n_samples,) hᵢ = 1/n + ỹᵢᵀ(ỸᵀỸ)⁺ỹᵢ
        (the intercept's 1/n included); rank; method: "gram" or "svd".

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(30, 3)); B = rng.normal(size=(2, 3))
        >>> design = FixedDesign(Y); coef, intercept, resid = design.fit(Y @ B.T + 1.0)  # an exact linear map
        >>> bool(np.allclose(coef, B)), bool(np.allclose(intercept, 1.0)), bool(np.allclose(resid, 0))
        (True, True, True)
        >>> design.method, round(float(design.leverage.sum()), 8)  # tr(hat matrix) = d_in + 1 (the intercept)
        ('gram', 4.0)
    """

    def __init__(self, Y: np.ndarray) -> None:
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[0] < 3:
            raise ShapeError(f"the design must be (n ≥ 3, d_in); got {Y.shape}")
        n, d = Y.shape
        self.mean = Y.mean(axis=0)
        Yc = Y - self.mean
        self._Yc = Yc
        G = _syrk_upper(Yc, None)  # ỸᵀỸ on one triangle by BLAS syrk (half the flops of the product), then mirrored
        _symmetrize_upper(G)
        # the condition number only (κ(Y) = √(λ_max/λ_min) of G; from d = 512 by Lanczos on G's Cholesky factor, not
        # from all eigenvalues: linalg.lstsq's one routine); G⁻¹ comes from a Cholesky factor
        kappa = _kappa_and_factor(G)[0] if d and np.isfinite(G).all() else float("inf")
        Ginv = _spd_inverse(G, pinv=False) if kappa < GRAM_KAPPA_LIMIT else None
        if Ginv is not None:
            self.method, self.rank = "gram", d
            self.Z = Yc @ Ginv
        else:  # ill-conditioned or rank-deficient: the SVD of the rows, cut at the numerical rank
            U, s, Vt = np.linalg.svd(Yc, full_matrices=False)
            k = numerical_rank(s, shape=Y.shape).rank
            self.method, self.rank = "svd", int(k)
            self.Z = (U[:, :k] / s[:k]) @ Vt[:k]
        self.leverage = 1.0 / n + np.einsum("ij,ij->i", self.Z, Yc)
        self.n = n

    def fit(self, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OLS of F (n, d_out) on the design: (coef (d_out, d_in), intercept (d_out,), residuals (n, d_out))."""
        F = np.asarray(F, dtype=np.float64)
        if F.ndim != 2 or F.shape[0] != self.n:
            raise ShapeError(f"F must be ({self.n}, d_out); got {F.shape}")
        mf = F.mean(axis=0)
        Fc = F - mf
        coef = Fc.T @ self.Z
        resid = self._Yc @ coef.T
        np.subtract(Fc, resid, out=resid)  # Fc − Ỹ coefᵀ into the product's array (no third n × d_out array)
        return coef, mf - self.mean @ coef.T, resid

    def perturbation(self, F: np.ndarray, source: str) -> Perturbation:
        """The OLS fit of F with its HC2 perturbation: lᵢ = rᵢ/√(1 − hᵢ), mᵢ = zᵢ (1 − hᵢ capped at 1/n)."""
        coef, _, r = self.fit(F)
        w = 1.0 / np.sqrt(np.clip(1.0 - self.leverage, 1.0 / self.n, None))
        r *= w[:, None]  # the residuals are fit()'s own new array: scaled in place
        return Perturbation(source=source, coef=coef, L=r, M=self.Z)


def wiener_perturbation(A: np.ndarray, prior_covariance: np.ndarray, noise_std: float, X_train: np.ndarray,
                        Y_train: np.ndarray, *, prior_estimated: bool, noise_estimated: bool,
                        source: str = "train", ASA: np.ndarray | None = None, A_Sx: np.ndarray | None = None,
                        AX: np.ndarray | None = None) -> Perturbation:
    """The Wiener estimator W = Σₓ Aᵀ M⁻¹ (M = AΣₓAᵀ + σ²I) with the first-order error of re-estimating Σₓ
    (the centred second moment of ``X_train``) and/or σ² (∝ the summed squared centred residuals y − Ax).

    Row k's influence: dWₖ = [(I − WA) x̃ₖ x̃ₖᵀ Aᵀ M⁻¹ − σₖ² W M⁻¹]/n, with σₖ² = σ² n‖ẽₖ‖²/Σ‖ẽ‖² when σ is
    estimated (σ² when only Σₓ is; the −Σₓ and −σ² centring terms of the influence functions cancel into it).

    Arguments:
        A: (n_y, n_x). prior_covariance: Σₓ (n_x, n_x). noise_std: σ.
        X_train, Y_train: the training pairs (n, n_x), (n, n_y) the estimates came from.
        prior_estimated, noise_estimated: which of Σₓ, σ were estimated (both False: a fixed reference).
        source: the multipliers' name (the training rows, shared with C_data).
        ASA: A Σₓ Aᵀ (n_y, n_y) when the caller has it (e.g. :class:`~linlens.surrogate.compare.SignalNoiseModel`);
            A_Sx: A Σₓ (n_y, n_x) likewise (W = (AΣₓ)ᵀ M⁻¹: one d³ product fewer).
        AX: ``X_train @ A.T`` (n, n_y) when the caller has formed it (e.g. for σ's estimate): one n·d² product fewer.

    Returns:
        :class:`Perturbation` of W (n_x, n_y).

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(500, 2)); Y = X + 0.5 * rng.normal(size=(500, 2))
        >>> p = wiener_perturbation(np.eye(2), np.cov(X.T, bias=True), 0.5, X, Y, prior_estimated=True,
        ...                         noise_estimated=False)
        >>> p.L.shape, p.M.shape, p.coef.round(1).tolist()
        ((500, 2), (500, 2), [[0.8, 0.0], [0.0, 0.8]])
    """
    A = np.asarray(A, dtype=np.float64)
    Sx = np.asarray(prior_covariance, dtype=np.float64)
    n_y, n_x = A.shape
    ASA = A @ Sx @ A.T if ASA is None else np.asarray(ASA, dtype=np.float64)
    Minv = _spd_inverse(ASA + noise_std**2 * np.eye(n_y))
    W = (Sx @ A.T if A_Sx is None else np.asarray(A_Sx, dtype=np.float64).T) @ Minv
    X = np.asarray(X_train, dtype=np.float64)
    n = X.shape[0]
    if AX is not None and np.shape(AX) != (n, n_y):
        raise ShapeError(f"AX must be X_train @ A.T, shape {(n, n_y)}; got {np.shape(AX)}")
    if prior_estimated:
        if AX is None:
            XA = (X - X.mean(axis=0)) @ A.T  # rows A x̃ₖ
        else:  # the caller's X Aᵀ, centred (= X̃ Aᵀ)
            XA = np.asarray(AX, dtype=np.float64)
            XA = XA - XA.mean(axis=0)
        L = ((X - X.mean(axis=0)) - XA @ W.T) / n
        M = XA @ Minv
    else:
        L, M = np.zeros((n, n_x)), np.zeros((n, n_y))
    g = None
    if noise_estimated:  # centred residuals ẽₖ = ỹₖ − A x̃ₖ (from the rows A x̃ₖ when they are formed)
        Y = np.asarray(Y_train, dtype=np.float64)
        if prior_estimated:
            Ec = (Y - Y.mean(axis=0)) - XA
        else:
            E = Y - (X @ A.T if AX is None else np.asarray(AX, dtype=np.float64))
            Ec = E - E.mean(axis=0)
        e2 = np.sum(Ec**2, axis=1)
        tot = float(e2.sum())
        sk = noise_std**2 * n * e2 / tot if tot > 0 else np.zeros(n)
        g = -sk / n if prior_estimated else -(sk - noise_std**2) / n
    elif prior_estimated:
        g = np.full(n, -noise_std**2 / n)
    return Perturbation(source=source, coef=W, L=L, M=M, g=g, N=None if g is None else W @ Minv)


def _pilot_says_exact(per_probe: np.ndarray, base: np.ndarray, s2: float) -> bool:
    """Whether the first probes of a sketch (``per_probe``: (p₀, n_boot) Hutchinson terms, unscaled) show the full
    sketch's own noise above :data:`_PILOT_MARGIN` × :data:`SKETCH_NOISE_MAX` of the replicates' variance (``base``:
    plug-in + linear term per replicate, scaled; ``s2``: scale²). The per-probe variance σ_b² is estimated
    unbiasedly from the p₀ probes; the full sketch's noise is σ_b²(p − 1)/p² (what its own rule measures, on
    average), and the replicates' variance it would show is the pilot replicates' variance minus the pilot's own
    noise σ_b²/p₀ plus that. A non-positive estimate (noise-dominated) also says exact."""
    p0, p = per_probe.shape[0], SKETCH_PROBES
    if p0 < 2:
        return False
    sig2 = float(np.mean(per_probe.var(axis=0, ddof=1))) / (s2 * s2)
    noise_full = sig2 * (p - 1) / (p * p)
    var_full = float(np.var(base + per_probe.mean(axis=0) / s2)) - sig2 / p0 + noise_full
    return var_full <= 0 or noise_full > _PILOT_MARGIN * SKETCH_NOISE_MAX * var_full


def _times_gram(w: np.ndarray, K: np.ndarray, upper: bool) -> np.ndarray:
    """w K (w: (B, n) multipliers, K: (n, n_q)) in K's dtype; ``upper``: K symmetric with only its upper triangle
    defined (:meth:`MultiplierBootstrap._gram` of a piece with itself), read by BLAS symm."""
    wt = w.astype(K.dtype)
    if not upper:
        return wt @ K
    from scipy.linalg.blas import dsymm, ssymm

    symm = ssymm if K.dtype == np.float32 else dsymm
    # K (C order) is Kᵀ in Fortran order, whose lower triangle is K's upper one; wᵀ (n, B) is Fortran-ordered
    return symm(1.0, K.T, wt.T, side=0, lower=1).T


def _spd_inverse(G: np.ndarray, pinv: bool = True) -> np.ndarray | None:
    """G⁻¹ of a symmetric positive definite G by Cholesky (LAPACK potrf/potri: ~d³ flops), or the Hermitian
    pseudo-inverse when G is only semidefinite (e.g. σ = 0 and a singular A Σₓ Aᵀ), as wiener_estimator solves
    (``pinv=False``: None then)."""
    from scipy.linalg import lapack

    c, info = lapack.dpotrf(G, lower=False)
    if info == 0:
        inv, info = lapack.dpotri(c, lower=False)
        if info == 0:
            _symmetrize_upper(inv)  # in place, by blocks (np.triu twice cost ~1 s at d = 4096)
            return inv
    return np.linalg.pinv(G, hermitian=True) if pinv else None


def quadratic_interval(corrected: float, sd: float, bias: float, ci: float = 0.95) -> tuple[float, float]:
    """The interval {θ : |θ − θ̃| ≤ z·sd·√((θ + b/2)/(θ̃ + b/2))} on a bias-corrected quadratic statistic θ̃.

    A quadratic statistic ‖D + E‖² of an estimate (E ≈ N(0, V)) has variance 4 DᵀVD + 2 tr V²: for isotropic
    V = λI that is 4λ(θ + b/2), b = tr V its bias. Its spread therefore grows with the truth θ, and a bootstrap
    spread sd, taken at the estimate θ̃, is too small exactly when θ̃ fell low: a basic interval θ̃ ± sd
    undercovers from above (measured 0.88 at 400 probes on a nonlinear model, ``tests/surrogate/
    test_study_coverage.py``). Inverting the test with the spread rescaled to each candidate θ (a score-type
    interval, normal quantiles) gives the closed form θ̃ + c/2 ± √(c(θ̃ + b/2) + c²/4), c = z² sd²/(θ̃ + b/2).
    When θ̃ + b/2 ≤ 0 it is θ̃ ± z·sd.

    Arguments:
        corrected: θ̃. sd: the bootstrap standard deviation of the statistic (at the estimate).
        bias: b ≥ 0, the bias correction (plug-in − corrected). ci: the level.

    Returns:
        (low, high) (not clipped at 0).

    Example:
        >>> lo, hi = quadratic_interval(1.0, 0.1, 0.0)  # spread ∝ √θ: longer above than below
        >>> round(lo, 3), round(hi, 3), round(hi - 1.0, 3) > round(1.0 - lo, 3)
        (0.822, 1.216, True)
    """
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + ci / 2))
    a = corrected + max(bias, 0.0) / 2
    if not (math.isfinite(corrected) and math.isfinite(sd) and sd >= 0):
        return float("nan"), float("nan")
    if a <= 0:
        return corrected - z * sd, corrected + z * sd
    c = (z * sd) ** 2 / a
    h = math.sqrt(c * a + c * c / 4)
    return corrected + c / 2 - h, corrected + c / 2 + h


@dataclass(frozen=True)
class Quadratic:
    """A quadratic statistic tr(O X W Xᵀ Oᵀ) of a perturbed operator X, over the multiplier replicates.

    Arguments:
        plug_in: its value at the estimates.
        expected: E_ω of the quadratic term: the HC2 estimate of the plug-in's upward bias.
        replicates: (n_boot,) the statistic at D + Σ ±E(ω_b); their mean is ≈ plug_in + expected.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(100, 2))
        >>> p = FixedDesign(Y).perturbation(rng.normal(size=(100, 2)), "fit")
        >>> mb = MultiplierBootstrap({"fit": 100}, n_boot=50, method="explicit")
        >>> q = mb.quadratic(np.zeros((2, 2)), np.eye(2), [(1.0, p)])  # D = 0: only the perturbation
        >>> q.plug_in, bool(np.isclose(q.expected, np.sum(p.L ** 2, 1) @ np.sum(p.M ** 2, 1)))  # E‖Σ ωₖ lₖ mₖᵀ‖²_F
        (0.0, True)
        >>> q.corrected == -q.expected, q.replicates.shape
        (True, (50,))
    """

    plug_in: float
    expected: float
    replicates: np.ndarray

    @property
    def corrected(self) -> float:
        """plug_in − expected."""
        return self.plug_in - self.expected


class MultiplierBootstrap:
    """Rademacher multipliers per row source and the exact replicates of quadratic and linear statistics.

    Arguments:
        sizes: source name → number of rows (e.g. {"fit": n_fit, "train": n_train}).
        n_boot: replicates B (≥ 2).
        seed: seed of the multipliers.
        method: how the quadratic terms are evaluated: "explicit" (form each replicate's perturbation: cheap for
            small operators), "gram" (n × n Gram matrices: cheap for large operators on few rows), "sketch" (a
            Hutchinson sketch of the fluctuations with :data:`SKETCH_PROBES` probes, their mean set to the exact
            expectation: large operators on many rows) or "auto" (the cheapest by a flop count). "explicit" and
            "gram" give the same replicates up to rounding; "sketch" adds a little spread to the quadratic term.

    The Gram matrices Kₚq (n × n) are formed in one scratch array; their replicates' forms ωₚᵀKω_q are kept per
    (pieces, weight) until :meth:`clear`.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(40, 2))
        >>> p = FixedDesign(Y).perturbation(rng.normal(size=(40, 2)), "fit")
        >>> mb = MultiplierBootstrap({"fit": 40}, n_boot=8, seed=1); G = np.array([[1.0, 0.0], [0.0, 2.0]])
        >>> direct = [np.einsum("k,ki,ij,kj->", w, p.L, G, p.M) for w in mb.omega["fit"]]  # ⟨G, Σ ωₖ lₖ mₖᵀ⟩
        >>> mb.omega["fit"].shape, bool(np.allclose(mb.linear(G, [(1.0, p)]), direct))
        ((8, 40), True)
    """

    def __init__(self, sizes: dict[str, int], n_boot: int = 200, seed: int = 0, method: str = "auto") -> None:
        if not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
            raise ConfigError(f"n_boot must be an integer ≥ 2; got {n_boot!r}")
        if method not in ("auto", "explicit", "gram", "sketch"):
            raise ConfigError(f"method must be 'auto', 'explicit', 'gram' or 'sketch'; got {method!r}")
        self.method = method
        rng = np.random.default_rng(seed)
        self.n_boot = int(n_boot)
        self.omega = {k: rng.choice(np.array([-1.0, 1.0]), size=(self.n_boot, int(n))) for k, n in sizes.items()}
        self._rng = rng
        self._cache: dict[Any, np.ndarray] = {}
        self._counts: dict[str, np.ndarray] = {}
        self._keep: list[Any] = []

    def clear(self) -> None:
        """Forget the cached Gram matrices."""
        self._cache.clear()
        self._keep.clear()

    def _w(self, p: Perturbation) -> np.ndarray:
        om = self.omega.get(p.source)
        if om is None or om.shape[1] != p.n_rows:
            raise ShapeError(f"no multipliers for {p.n_rows} rows of source {p.source!r}")
        return om

    @staticmethod
    def _rows(X: np.ndarray, O: np.ndarray | slice | None) -> np.ndarray:
        """X Oᵀ: X's columns taken by output rows O (a (k, d_out) matrix, or a slice of the outputs: no product)."""
        if O is None:
            return X
        return X[:, O] if isinstance(O, slice) else X @ O.T

    def _times_w(self, kind: str, p: Perturbation, W: np.ndarray) -> np.ndarray:
        """``kind`` "MW": M W (n, d_in) of a perturbation; "NW": N W (d_out, d_in) of its full-rank part; kept until
        :meth:`clear` (bands and references reuse them)."""
        key = (kind, id(p), id(W))
        XW = self._cache.get(key)
        if XW is None:
            X = p.M if kind == "MW" else p.N
            dW = self._diagonal(W)
            XW = X * dW if dW is not None else X @ W
            self._cache[key] = XW
            self._keep.append((p, W))
        return XW

    def _mw(self, p: Perturbation, W: np.ndarray) -> np.ndarray:
        return self._times_w("MW", p, W)

    def _mw_low(self, p: Perturbation, W: np.ndarray, dt: type) -> np.ndarray:
        """M W in dtype dt (a float32 copy kept until :meth:`clear`: the Grams of every block of a piece reuse it)."""
        MW = self._mw(p, W)
        if np.dtype(dt) == MW.dtype:
            return MW
        key = ("MW32", id(p), id(W))
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = MW.astype(dt)
            self._keep.append((p, W))
        return out

    def _nw(self, p: Perturbation, W: np.ndarray) -> np.ndarray:
        return self._times_w("NW", p, W)

    def _buffer(self, shape: tuple[int, ...], dt: type, name: str) -> np.ndarray:
        """A scratch array kept until :meth:`clear` (large temporaries reused: no fresh pages to fault in each time)."""
        key = ("buf", name, tuple(shape), np.dtype(dt).str)
        buf = self._cache.get(key)
        if buf is None:
            buf = self._cache[key] = np.empty(shape, dtype=dt)
        return buf

    def _cast(self, X: np.ndarray, dt: type) -> np.ndarray:
        """X as dt (a float64 X as is; else into a scratch array)."""
        X = np.asarray(X)
        if np.dtype(dt) == np.float64:
            return X if X.dtype == np.float64 else X.astype(np.float64)
        out = self._buffer(X.shape, dt, "cast")
        np.copyto(out, X, casting="unsafe")
        return out

    def weight_forms(self, p: Perturbation, W: np.ndarray) -> np.ndarray:
        """(n_rows,) mₖᵀ W mₖ of a perturbation's rows under a weight W (float64; e.g. for a fit's design rows and the
        test rows' second moment, what :func:`~linlens.surrogate.resampling.surrogate_excess` needs), from the
        product M W the statistics of that weight form anyway; kept until :meth:`clear`."""
        key = ("MWM", id(p), id(W))
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = np.einsum("ij,ij->i", self._mw(p, W), p.M)
            self._keep.append((p, W))
        return out

    @staticmethod
    def _replicate_dtype(p: Perturbation) -> type:
        """float32 for replicate-only products of a perturbation with ≥ :data:`REPLICATE_FLOAT32_MIN` inputs."""
        return np.float32 if p.M.shape[1] >= REPLICATE_FLOAT32_MIN else np.float64

    def _low(self, p: Perturbation, part: str = "M", dt: type | None = None) -> np.ndarray:
        """p.M (or p.L, ``part`` "L") in the replicate-only dtype (or ``dt``): a float32 copy kept until :meth:`clear`
        from REPLICATE_FLOAT32_MIN."""
        dt = self._replicate_dtype(p) if dt is None else dt
        X = p.M if part == "M" else p.L
        if dt == np.float64:
            return X
        key = (part + "32", id(p))
        X32 = self._cache.get(key)
        if X32 is None:
            X32 = self._cache[key] = X.astype(dt)
            self._keep.append(p)
        return X32

    def _gram(self, p: Perturbation, q: Perturbation, W: np.ndarray, O: np.ndarray | None,
              LO: dict[int, np.ndarray] | None = None) -> np.ndarray:
        """Kₚq = (LₚOᵀ OL_qᵀ) ∘ (MₚWM_qᵀ) (n_p, n_q), in a scratch array (:meth:`_scratch`: valid until the next
        Gram; :meth:`_quad_gram` keeps its replicates' forms ωₚᵀKω_q instead, so no n × n array is kept and none is
        faulted in afresh per Gram). For a piece with itself (p is q) K is symmetric and only its upper triangle is
        formed (blocks of :data:`_SYM_BLOCK` rows from the diagonal on: about half the flops) — the lower triangle is
        undefined; :meth:`_quad_gram` reads it with a symmetric product (BLAS symm)."""
        dt = self._replicate_dtype(p)
        if O is None:  # the rows' copies in the replicate dtype, kept (every block of a piece reuses them)
            lp, lq = self._low(p, "L", dt), self._low(q, "L", dt)
        else:
            lp = LO[id(p)] if LO is not None else self._rows(p.L, O)  # the rows the quadratic formed
            lq = LO[id(q)] if LO is not None else self._rows(q.L, O)
        lp, lq = lp.astype(dt, copy=False), lq.astype(dt, copy=False)
        out = self._scratch((lp.shape[0], lq.shape[0]), dt, "gram")
        km = ("M", id(p), id(q), id(W))
        GM = self._cache.get(km)
        if p is q:  # symmetric: the upper triangle only
            if GM is None and O is not None:  # the bands of one weight share M W Mᵀ (its upper triangle)
                GM = self._cache[km] = self._upper_gram(self._mw_low(p, W, dt), None, None, self._low(q))
            K = self._upper_gram(lp, None if GM is not None else (self._mw_low(p, W, dt), self._low(q)), GM, out=out)
        else:
            K = np.matmul(lp, lq.T, out=out)
            if GM is None:
                if O is not None:  # the bands of one weight share it
                    GM = self._cache[km] = self._mw_low(p, W, dt) @ self._low(q).T
                else:
                    GM = np.matmul(self._mw_low(p, W, dt), self._low(q).T, out=self._scratch(K.shape, dt, "gram_m"))
            K *= GM  # (L Lᵀ) ∘ (M W Mᵀ) in place
        self._keep.append((p, q, W, O))  # the ids in the keys stay valid until clear()
        return K

    def _scratch(self, shape: tuple[int, ...], dt: type, name: str) -> np.ndarray:
        """A C-ordered ``shape`` view of one flat scratch array per (name, dtype), grown when too small and kept until
        :meth:`clear` (the Grams of all sizes share it: no fresh pages per Gram)."""
        key = ("flat", name, np.dtype(dt).str)
        size = math.prod(shape)
        buf = self._cache.get(key)
        if buf is None or buf.size < size:
            self._cache.pop(key, None)  # the smaller one goes first
            buf = self._cache[key] = np.empty(size, dtype=dt)
        return buf[:size].reshape(shape)

    def _upper_gram(self, X: np.ndarray, second: tuple[np.ndarray, np.ndarray] | None, H: np.ndarray | None,
                    Y: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The upper triangle (by blocks of :data:`_SYM_BLOCK` rows, the lower triangle left undefined) of
        (X Yᵀ) ∘ (P Qᵀ) (``second`` = (P, Q)), of (X Yᵀ) ∘ H (H's upper triangle used), or of X Yᵀ alone (both None);
        Y defaults to X (X Xᵀ: symmetric). X, Y (n, k); P, Q (n, k'). Returns (n, n) in X's dtype (into ``out`` when
        given)."""
        Y = X if Y is None else Y
        n = X.shape[0]
        K = np.empty((n, n), dtype=X.dtype) if out is None else out
        for a in range(0, n, _SYM_BLOCK):
            b = min(n, a + _SYM_BLOCK)
            blk = K[a:b, a:]
            np.matmul(X[a:b], Y[a:].T, out=blk)
            if second is not None:
                blk *= second[0][a:b] @ second[1][a:].T
            elif H is not None:
                blk *= H[a:b, a:]
        return K

    def _cross_forms(self, u: Perturbation, v: Perturbation, W: np.ndarray, O: np.ndarray | None,
                     ON: dict[int, np.ndarray], LO: dict[int, np.ndarray]) -> np.ndarray:
        """(n_rows of v,) (O lₖ)ᵀ (O N_u) W mₖ: the cross term of u's full-rank part with v's rows (an n·d_out·d_in
        product). Without output rows these are v's row forms of N_u under W (:meth:`_row_forms`, float64: they enter
        the bias correction), formed once for every statistic of the same weight until :meth:`clear`."""
        if O is None:
            return self._row_forms(v, u.N, W, exact=True)
        return np.einsum("ij,ij->i", LO[id(v)], self._mw(v, W) @ ON[id(u)].T)

    def _nwn(self, p: Perturbation, q: Perturbation, W: np.ndarray, O: np.ndarray | None,
             ON: dict[int, np.ndarray]) -> float:
        """⟨O N_p W, O N_q⟩ of two full-rank parts; without output rows from N_p W kept per (piece, W) (no d³)."""
        if O is None:
            return float(np.sum(self._nw(p, W) * q.N))
        return float(np.sum((ON[id(p)] @ W) * ON[id(q)]))

    def quadratic(self, D: np.ndarray | Sequence[tuple[float, np.ndarray]], W: np.ndarray,
                  pieces: Sequence[tuple[float, Perturbation]], O: np.ndarray | slice | None = None,
                  scale: float = 1.0, plug_in: float | None = None, DW: np.ndarray | None = None) -> Quadratic:
        """tr(O D* W D*ᵀ Oᵀ)/scale² over the replicates, D* = D + Σ sign·E(ω).

        Arguments:
            D: (d_out, d_in) the operator at the estimates (e.g. Ĉ − R), or a linear combination of operators
                [(c, X), …] (D = Σ c X): the row forms of each X (products L X) are shared with other statistics of
                the same arrays.
            W: (d_in, d_in) symmetric weight.
            pieces: (sign, :class:`Perturbation`) pairs; the same objects across calls reuse cached Grams.
            O: (k, d_out) output rows (a band of a singular basis), a slice of the outputs (rows of an operator
                already in that basis: no products), or None for all outputs.
            scale: divides every operator (ratios of tiny or huge operators neither under- nor overflow).
            plug_in: tr(D W Dᵀ)/scale² when the caller has it (O None only; e.g. from :meth:`test_forms` when W is
                the evaluation rows' second moment): without output rows, the quadratic then forms no d³ product.
            DW: (d_out, d_in) the product D W when the caller has it (e.g. a factorization formed it): its rows O D W
                give the plug-in and the linear term without the d³ product O D W.

        Returns:
            :class:`Quadratic`.
        """
        if plug_in is not None and O is not None:
            raise ConfigError("quadratic: plug_in is tr(D W Dᵀ) over all outputs; not with output rows O")
        terms = _terms(D)
        dW = self._diagonal(W)
        ODW = None
        if O is None and plug_in is not None and DW is None:
            # the linear term reads each term's row forms and the plug-in is given: no combined D, no scaled copy
            D, OD = terms[0][1], None
        else:
            D = terms[0][1] if len(terms) == 1 and terms[0][0] == 1.0 else sum(c * X for c, X in terms)
            OD = self._rows(D.T, O).T  # O D, (k, d_in)
            if scale != 1.0:
                OD = OD / scale
        if DW is not None:
            if np.shape(DW) != np.shape(D):
                raise ShapeError(f"quadratic: DW must be D W, shape {np.shape(D)}; got {np.shape(DW)}")
            ODW = self._rows(np.asarray(DW, dtype=np.float64).T, O).T / scale
        elif plug_in is None:
            ODW = OD * dW if dW is not None else OD @ W
        if plug_in is None:
            plug = float(np.sum(OD * ODW))
        else:
            plug = float(plug_in)
        B = self.n_boot
        s2 = scale * scale
        ON = {id(p): self._rows(p.N.T, O).T for _, p in pieces if p.N is not None}  # O N, (k, d_in)
        LO = {id(p): self._rows(p.L, O) for _, p in pieces}
        lin = np.zeros(B)
        for sp, p in pieces:
            if not p.L.size:
                a = np.zeros(p.n_rows)
            elif O is None:  # lₖᵀ D W mₖ from L D, shared with the first-order change of an unweighted norm of D
                self._mw(p, W)
                a = sum(c * self._row_forms(p, X, W) for c, X in terms) / scale
            else:
                a = np.einsum("ij,ij->i", LO[id(p)], self._low(p) @ ODW.T.astype(self._replicate_dtype(p)))
            if p.g is not None:  # ⟨O N, O D W⟩; without output rows ⟨N W, D⟩ from N W kept per (piece, W)
                if ODW is not None:
                    a = a + p.g * float(np.sum(ON[id(p)] * ODW))
                else:
                    NW = self._nw(p, W)
                    a = a + p.g * (sum(c * float(np.vdot(NW, X)) for c, X in terms) / scale if OD is None
                                   else float(np.sum(NW * OD)))
            lin += 2 * sp * (self._w(p) @ a) / scale
        # E_ω of the quadratic term (pieces on the same rows share multipliers): the diagonal of every Gram
        expected = 0.0
        for i, (sp, p) in enumerate(pieces):
            for j in range(i, len(pieces)):
                sq, q = pieces[j]
                if p.source != q.source or p.n_rows != q.n_rows:
                    continue
                f = (1.0 if i == j else 2.0) * sp * sq / s2
                if p.L.size and q.L.size:
                    mwm = self.weight_forms(p, W) if p is q else np.einsum("ij,ij->i", self._mw(p, W), q.M)
                    expected += f * float(np.sum(np.einsum("ij,ij->i", LO[id(p)], LO[id(q)]) * mwm))
                for u, v in ((p, q), (q, p)) if i != j else ((p, q),):
                    if u.g is not None and v.L.size:
                        c = self._cross_forms(u, v, W, O, ON, LO)
                        expected += (2 * f if i == j else f) * float(np.sum(u.g * c))
                if p.g is not None and q.g is not None:
                    expected += f * float(np.sum(p.g * q.g)) * self._nwn(p, q, W, O, ON)
        d_out, d_in = np.shape(D)
        k = d_out if O is None else len(range(d_out)[O]) if isinstance(O, slice) else O.shape[0]
        rows = [p.n_rows for _, p in pieces]
        # the Grams' M W Mᵀ part (n² d_in) is shared by every band of one weight (_gram): a band of k of the d_out
        # output rows carries k/d_out of it
        costs = {"explicit": B * sum(rows) * d_out * d_in + B * k * d_in * (d_in + d_out),
                 "gram": sum(a * b for a in rows for b in rows) * (k + d_in * k / d_out + B),
                 "sketch": SKETCH_PROBES * (B * (sum(rows) * d_in + d_in * d_in) + sum(rows) * k)}
        method = min(costs, key=costs.get) if self.method == "auto" else self.method
        if method == "sketch":
            # Hutchinson sketch of the fluctuations only; their mean is replaced by the exact expectation. Under
            # "auto" (output rows O None) its first SKETCH_PILOT probes come first: where they show the full
            # sketch's noise far above SKETCH_NOISE_MAX (_pilot_says_exact), the other probes are not formed
            pilot = self.method == "auto" and O is None and _SKETCH_PILOT < SKETCH_PROBES
            per_probe = self._quad_sketch(pieces, W, O, ON, LO, 0, _SKETCH_PILOT if pilot else SKETCH_PROBES)
            if pilot and _pilot_says_exact(per_probe, plug + lin, s2):
                method = "gram" if costs["gram"] <= costs["explicit"] else "explicit"
            else:
                if pilot:  # the remaining probes: the same numbers as the full sketch formed at once
                    per_probe = np.concatenate([per_probe, self._quad_sketch(pieces, W, O, ON, LO, _SKETCH_PILOT,
                                                                             SKETCH_PROBES)])
                quad, noise = per_probe.mean(axis=0), per_probe.var(axis=0) / SKETCH_PROBES
                quad = quad - quad.mean() + expected * s2
                reps = plug + lin + quad / s2
                # the sketch's own noise (each replicate's probe-to-probe variance / p) adds to the replicates'
                # spread: where it is more than SKETCH_NOISE_MAX of their variance (a large quadratic term, e.g. a
                # reference fitted on as many rows as the surrogate) the auto route takes the exact Grams (or explicit
                # operators)
                if self.method == "sketch" or not (float(np.mean(noise)) / s2**2
                                                   > SKETCH_NOISE_MAX * float(np.var(reps))):
                    return Quadratic(plug_in=plug, expected=expected, replicates=reps)
                method = "gram" if costs["gram"] <= costs["explicit"] else "explicit"
        quad = (self._quad_explicit if method == "explicit" else self._quad_gram)(pieces, W, O, ON, LO)
        return Quadratic(plug_in=plug, expected=expected, replicates=plug + lin + quad / s2)

    def _quad_sketch(self, pieces: Sequence[tuple[float, Perturbation]], W: np.ndarray, O: np.ndarray | None,
                     ON: dict[int, np.ndarray], LO: dict[int, np.ndarray], j0: int = 0,
                     j1: int = SKETCH_PROBES) -> np.ndarray:
        """(j1 − j0, n_boot) the Hutchinson terms ‖W^½ E_bᵀ Oᵀ uⱼ‖² of probes j0 ≤ j < j1 of the p =
        :data:`SKETCH_PROBES` Rademacher probes uⱼ shared by the replicates (Hutchinson 1990): their mean over the p
        probes estimates tr(O E_b W E_bᵀ Oᵀ), their variance / p is the estimate's own noise. O(p (n d + d²)) per
        replicate, for large operators fitted on many rows.

        Computed per pair of pieces, Σₚ,q ±⟨Xₚⱼ, W X_qⱼ⟩ with Xₚⱼ = Eₚ(ω)ᵀ Oᵀ uⱼ (the same sum, bilinear): without
        output rows (O None) each piece's Xₚ and W Xₚ are kept until :meth:`clear` (the probes formed so far), so the
        references' errors, which share the surrogate's piece and the weight, sketch it once; probes asked for in two
        ranges give the same numbers as in one."""
        k = next(iter(LO.values())).shape[1]
        U = np.random.default_rng(12345).choice(np.array([-1.0, 1.0]), size=(k, SKETCH_PROBES))
        X = [(sp, self._sketch_x(p, O, U, ON, LO, j1)) for sp, p in pieces]
        WX = [self._sketch_wx(p, W, O, x, j1) for (_, p), (_, x) in zip(pieces, X, strict=True)]
        per_probe = np.zeros((j1 - j0, self.n_boot))
        for i, (sp, x) in enumerate(X):
            if x is None:
                continue
            x = x[j0:j1]
            for j in range(i, len(X)):
                sq, y = X[j]
                if y is not None:  # summed in float64 (pairwise) when the sketch is float32; products in scratch
                    xy = np.multiply(x, WX[j][j0:j1], out=self._buffer(x.shape, x.dtype, "sketch_xy"))
                    per_probe += (1.0 if i == j else 2.0) * sp * sq * xy.sum(axis=1, dtype=np.float64)
        return per_probe

    def _sketch_x(self, p: Perturbation, O: np.ndarray | None, U: np.ndarray, ON: dict[int, np.ndarray],
                  LO: dict[int, np.ndarray], j1: int = SKETCH_PROBES) -> np.ndarray | None:
        """(probes, d_in, n_boot) Eₚ(ω_b)ᵀ Oᵀ uⱼ of one piece (None when it has no rows), the probes j < j1 formed;
        kept with the count of formed probes when O is None."""
        key = ("SX", id(p)) if O is None else None
        X = self._cache.get(key) if key else None
        done = self._cache.get(("SXn", id(p)), 0) if X is not None else 0
        if (X is not None and done >= j1) or (not p.L.size and p.g is None):
            return X
        w = self._w(p)
        dt = self._replicate_dtype(p)
        if X is None:
            X = np.zeros((U.shape[1], p.M.shape[1], self.n_boot), dtype=dt)
        Mt, wt = self._low(p).T, w.T.astype(dt)
        for j in range(done, j1):
            if p.L.size:
                X[j] += Mt @ (wt * (LO[id(p)] @ U[:, j]).astype(dt)[:, None])
            if p.g is not None:
                X[j] += np.outer(ON[id(p)].T @ U[:, j], w @ p.g).astype(dt)
        if key:
            if done == 0:
                self._keep.append(p)
            self._cache[key], self._cache[("SXn", id(p))] = X, j1
        return X

    def _sketch_wx(self, p: Perturbation, W: np.ndarray, O: np.ndarray | None, X: np.ndarray | None,
                   j1: int = SKETCH_PROBES) -> np.ndarray | None:
        """W Xₚⱼ for the probes j < j1 (a diagonal W scales rows: the same numbers as the product), kept with the count
        of formed probes when O is None."""
        if X is None:
            return None
        key = ("SWX", id(p), id(W)) if O is None else None
        WX = self._cache.get(key) if key else None
        done = self._cache.get(("SWXn", id(p), id(W)), 0) if WX is not None else 0
        if WX is not None and done >= j1:
            return WX
        if WX is None:
            WX = np.empty_like(X)
        dW = self._diagonal(W)
        if dW is not None:
            np.multiply(X[done:j1], dW.astype(X.dtype)[None, :, None], out=WX[done:j1])
        else:
            np.matmul(W.astype(X.dtype), X[done:j1], out=WX[done:j1])
        if key:
            if done == 0:
                self._keep.append((p, W))
            self._cache[key], self._cache[("SWXn", id(p), id(W))] = WX, j1
        return WX

    def _diagonal(self, W: np.ndarray) -> np.ndarray | None:
        """The diagonal of W when W is diagonal (e.g. σ²I), else None (checked once per W until :meth:`clear`)."""
        key = ("diag", id(W))
        if key not in self._cache:
            dW = np.diag(W).copy()
            n = W.shape[0]
            if W.ndim == 2 and W.shape == (n, n) and W.flags.c_contiguous and n > 1:  # off-diagonal entries as a view
                diagonal = not np.any(W.reshape(-1)[1:].reshape(n - 1, n + 1)[:, :n])
            else:
                diagonal = bool(np.array_equal(W, np.diag(dW)))
            self._cache[key] = dW if diagonal else None
            self._keep.append(W)
        return self._cache[key]

    def _quad_explicit(self, pieces: Sequence[tuple[float, Perturbation]], W: np.ndarray, O: np.ndarray | None,
                       ON: dict[int, np.ndarray], LO: dict[int, np.ndarray]) -> np.ndarray:
        """tr(O E_b W E_bᵀ Oᵀ) per replicate, forming E_b = Σ ±(Lᵀ diag(ω_b) M + (gᵀω_b) N) (small operators)."""
        out = np.zeros(self.n_boot)
        for b in range(self.n_boot if pieces else 0):
            OE = 0.0
            for sp, p in pieces:
                w = self._w(p)[b]
                if p.L.size:
                    OE = OE + sp * ((LO[id(p)].T * w) @ p.M)
                if p.g is not None:
                    OE = OE + sp * float(w @ p.g) * ON[id(p)]
            out[b] = float(np.sum((OE @ W) * OE)) if np.ndim(OE) else 0.0
        return out

    def _quad_gram(self, pieces: Sequence[tuple[float, Perturbation]], W: np.ndarray, O: np.ndarray | None,
                   ON: dict[int, np.ndarray], LO: dict[int, np.ndarray]) -> np.ndarray:
        """The same through the n × n Grams Kₚq = (LₚOᵀ OL_qᵀ) ∘ (MₚWM_qᵀ): O(n²) per replicate (large operators)."""
        quad = np.zeros(self.n_boot)
        for i, (sp, p) in enumerate(pieces):
            wp = self._w(p)
            for j in range(i, len(pieces)):
                sq, q = pieces[j]
                wq = self._w(q)
                f = (1.0 if i == j else 2.0) * sp * sq
                if p.L.size and q.L.size:  # ω_pᵀ K ω_q per replicate, kept (numerator, denominator and standard
                    kq = ("wKw", id(p), id(q), id(W)) if O is None else None  # error of one reference share them)
                    v = self._cache.get(kq) if kq else None
                    if v is None:
                        K = self._gram(p, q, W, O, LO)
                        v = np.einsum("bi,bi->b", _times_gram(wp, K, p is q).astype(np.float64), wq)
                        if kq:
                            self._cache[kq] = v
                    quad += f * v
                pairs = [(p, wp, q, wq)] if i == j else [(p, wp, q, wq), (q, wq, p, wp)]
                for u, wu, v, wv in pairs:
                    if u.g is not None and v.L.size:
                        quad += (2 * f if i == j else f) * (wu @ u.g) * (wv @ self._cross_forms(u, v, W, O, ON, LO))
                if p.g is not None and q.g is not None:
                    quad += f * (wp @ p.g) * (wq @ q.g) * self._nwn(p, q, W, O, ON)
        return quad

    def expected(self, p: Perturbation, W: np.ndarray | None, O: np.ndarray | None = None) -> float:
        """E_ω tr(O E W Eᵀ Oᵀ) of one rank-one perturbation without forming its Gram matrix (O(n d²)); W None: the
        identity (E‖O E‖²_F, no d × d identity and no M W)."""
        LO = self._rows(p.L, O)
        mwm = np.einsum("ij,ij->i", p.M, p.M) if W is None else np.einsum("ij,ij->i", self._mw(p, W), p.M)
        return float(np.sum(np.sum(LO * LO, axis=1) * mwm))

    def linear(self, G: np.ndarray | tuple[np.ndarray, np.ndarray],
               pieces: Sequence[tuple[float, Perturbation]]) -> np.ndarray:
        """(n_boot,) replicates of Σ sign·⟨G, E(ω)⟩ (first-order changes of a smooth statistic with gradient G).

        G: (d_out, d_in), or a pair (u, v) for the rank-one G = u vᵀ (O(n d) instead of O(n d²)). The signs may be
        any factors: ``linear(D, [(1/c, p)])`` is ``linear(D/c, [(1, p)])`` and reuses the products L D that
        :meth:`quadratic` formed for the same D (the same array object) until :meth:`clear`.
        """
        out = np.zeros(self.n_boot)
        for sp, p in pieces:
            if not p.L.size:
                a = np.zeros(p.n_rows)
            elif isinstance(G, tuple):
                a = (p.L @ G[0]) * (p.M @ G[1])
            else:
                a = self._row_forms(p, G)
            if p.g is not None:
                a = a + p.g * float(np.sum(p.N * (np.outer(*G) if isinstance(G, tuple) else G)))
            out += sp * (self._w(p) @ a)
        return out

    def _row_forms(self, p: Perturbation, D: np.ndarray, W: np.ndarray | None = None,
                   exact: bool = False) -> np.ndarray:
        """(n_rows,) lₖᵀ D mₖ (W None) or lₖᵀ D W mₖ for each row of a perturbation. One product L D (n d_out d_in)
        per (piece, D) until :meth:`clear`: its row forms with M and with every cached M W are kept (vectors),
        so a statistic's linear term and the first-order change of an unweighted norm of D share it.

        These forms move replicates and standard errors only (linear terms, :meth:`linear_variance`): from
        :data:`REPLICATE_FLOAT32_MIN` inputs the product L D runs in float32 (its forms summed in float64 against the
        float64 M and M W: numpy's einsum casts in its buffers). ``exact``: float64 whatever the size (forms that enter
        a bias correction)."""
        dt = np.float64 if exact else self._replicate_dtype(p)
        key = ("forms", id(p), id(D), dt)
        forms = self._cache.get(key)
        want = None if W is None else id(W)
        if forms is None or want not in forms:
            L = self._low(p, "L", dt)
            LD = self._buffer((L.shape[0], np.shape(D)[1]), dt, "LD")  # one scratch array per shape (no new pages)
            np.matmul(L, self._cast(D, dt), out=LD)
            forms = {} if forms is None else forms
            forms[None] = np.einsum("ij,ij->i", LD, p.M)
            for k, MW in list(self._cache.items()):
                if k[0] == "MW" and k[1] == id(p):
                    forms[k[2]] = np.einsum("ij,ij->i", LD, MW)
            if want is not None and want not in forms:
                forms[want] = np.einsum("ij,ij->i", LD, self._mw(p, W))
            self._cache[key] = forms
            self._keep.append((p, D))
        return forms[want]

    def _kron_factors(self, p: Perturbation, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(O, S MᵀM S) of a perturbation, OᵀO = LᵀL/n (O: (rank, d_out)); kept until :meth:`clear`."""
        key = ("kron", id(p), id(S))
        out = self._cache.get(key)
        if out is None:
            MS = self._mw(p, S)  # S MᵀM S = (M S)ᵀ(M S): one product of the rows the statistic's own terms formed
            Wk = MS.T @ MS
            Wk = (Wk + Wk.T) / 2
            if p.L.shape[1] > KRON_FULL_MAX:  # the isotropic form: O = √(tr(LᵀL)/(n d_out)) I, kept as a factor
                self._cache[("kron_iso", id(p))] = float(np.sum(p.L * p.L)) / (max(p.n_rows, 1) * p.L.shape[1])
                out = (None, Wk)
            else:
                lam, V = np.linalg.eigh(p.L.T @ p.L / max(p.n_rows, 1))
                keep = lam > lam.max() * 1e-14 if lam.size and lam.max() > 0 else np.zeros(lam.shape, bool)
                out = ((V[:, keep] * np.sqrt(lam[keep])).T, Wk)
            self._cache[key] = out
            self._keep.append((p, S))
        return out

    def _rotated(self, q: Perturbation, O: np.ndarray) -> Perturbation:
        """The perturbation of O X: rows O lₖ and O N (kept until :meth:`clear`, so its sketches are shared)."""
        key = ("rot", id(q), id(O))
        r = self._cache.get(key)
        if r is None:
            r = Perturbation(source=q.source, coef=O @ q.coef, L=q.L @ O.T, M=q.M, g=q.g,
                             N=None if q.N is None else O @ q.N)
            self._cache[key] = r
            self._keep.append((q, O, r))
        return r

    def prepare_variance(self, p: Perturbation, S: np.ndarray, pieces: Sequence[tuple[float, Perturbation]]) -> None:
        """Form, before a statistic's :meth:`quadratic` runs, what :meth:`delta_variance` of ``p`` under weight S will
        weigh the pieces' rows with (M S for every piece and the Kronecker weight's M (S MᵀM S)): the products L D of
        that statistic's operators are then formed once for both (:meth:`_row_forms` meets every weight already
        cached). Only a matter of cost: the numbers are the same without it."""
        if not p.L.size:
            return
        _, Wk = self._kron_factors(p, S)
        for _, q in pieces:
            if q.L.size:
                self._mw(q, S)
                self._mw(q, Wk)

    def delta_variance(self, X: np.ndarray | Sequence[tuple[float, np.ndarray]], S: np.ndarray, p: Perturbation,
                       pieces: Sequence[tuple[float, Perturbation]], scale: float = 1.0) -> Quadratic:
        """Var_ω ⟨X S, E_p(ω)⟩/scale⁴ — the first-order variance of a statistic with gradient X S in the operator
        that ``p`` perturbs — at X and at every replicate X*_b = X + Σ sign·E_q(ω_b) of ``pieces`` (issue 21: the
        per-replicate standard errors that make the bootstrap-t).

        Exactly, Var_ω = Σₖ (lₖᵀ X S mₖ + gₖ c)² with c = ⟨N, X S⟩. Evaluated at every replicate that costs
        O(B n d²); this uses the Kronecker (homoscedastic) form of its sum over rows,
        Σₖ (lₖᵀ Y mₖ)² ≈ tr(Y (MᵀM) Yᵀ (LᵀL))/n (Y = X S; exact when the rows' l and m are uncorrelated, the
        classical multivariate OLS variance for a fit), plus the full-rank part 2c⟨Y, Lᵀ diag(g) M⟩ + c²‖g‖² exactly.
        Quadratic in X, so every replicate comes from :meth:`quadratic` and :meth:`linear` (the same multipliers as
        the statistic's own replicates). A studentizer, not an interval: the bootstrap-t needs a smooth function of
        the data that tracks the statistic's spread, and this one tracks its main dependence (a small gradient, a
        small spread).

        Arguments:
            X: (d_out, d_in) where the gradient is taken (e.g. D = Ĉ − R), or a linear combination [(c, X), …] as
                in :meth:`quadratic` (the row forms of arrays the statistic's own terms used are then shared).
            S: (d_in, d_in) symmetric weight of the statistic.
            p: the perturbation whose variance is wanted.
            pieces: (sign, :class:`Perturbation`) that move X in the replicates.
            scale: divides X and the rows lₖ (as in :meth:`quadratic`); the result is divided by scale⁴.

        Returns:
            :class:`Quadratic` (``plug_in`` the variance at X, ``replicates`` at each X*_b; ``expected`` unused).

        Example:
            >>> rng = np.random.default_rng(0); Y = rng.normal(size=(4000, 2)); F = Y + rng.normal(size=(4000, 2))
            >>> fit = FixedDesign(Y).perturbation(F, "fit"); mb = MultiplierBootstrap({"fit": 4000}, n_boot=50)
            >>> v = mb.delta_variance(np.eye(2), np.eye(2), fit, [(1.0, fit)])  # Var tr Ĉ = σ² tr(Σ⁻¹)/n = 2/n
            >>> round(v.plug_in * 4000, 1), v.replicates.shape
            (2.0, (50,))
        """
        terms = _terms(X)
        X = terms[0][1] if len(terms) == 1 and terms[0][0] == 1.0 else sum(c * Xi for c, Xi in terms)
        s2 = scale * scale
        q = None
        if p.L.size:
            # tr(O X Wk Xᵀ Oᵀ) with OᵀO = LᵀL/n, through pieces whose rows are O lₖ (and O N) and no output rows:
            # cached per perturbation, so the references' calls share the factors and the sketches of the pieces
            O, Wk = self._kron_factors(p, S)
            if O is None:  # many outputs: LᵀL/n ≈ its mean eigenvalue × I, no rotated pieces (their sketches shared)
                q = self.quadratic(terms, Wk, pieces, scale=scale)
                q = Quadratic(plug_in=q.plug_in * self._cache[("kron_iso", id(p))], expected=0.0,
                              replicates=q.replicates * self._cache[("kron_iso", id(p))])
            elif O.size:
                moved = [(sg, self._rotated(r, O)) for sg, r in pieces]
                q = self.quadratic(O @ X, Wk, moved, scale=scale)
        plug = 0.0 if q is None else q.plug_in / s2
        reps = np.zeros(self.n_boot) if q is None else q.replicates / s2
        if p.g is not None and p.N is not None:
            G1 = p.N @ S  # c = ⟨N, X S⟩ = ⟨N S, X⟩
            G2 = ((p.L.T * p.g) @ p.M) @ S if p.L.size else np.zeros_like(X)
            c0, h0 = float(np.sum(G1 * X)), float(np.sum(G2 * X))
            c = c0 + self.linear(G1, pieces)
            h = h0 + self.linear(G2, pieces)
            gg = float(p.g @ p.g)
            plug += (2 * c0 * h0 + c0 * c0 * gg) / (s2 * s2)
            reps += (2 * c * h + c * c * gg) / (s2 * s2)
        return Quadratic(plug_in=float(plug), expected=0.0, replicates=np.maximum(reps, 0.0))

    def linear_variance(self, X: np.ndarray | Sequence[tuple[float, np.ndarray]], W: np.ndarray, p: Perturbation,
                        scale: float = 1.0) -> float:
        """Var_ω ⟨X W, E_p(ω)⟩/scale⁴ = Σₖ (lₖᵀ X W mₖ + gₖ ⟨N W, X⟩)²/scale⁴, exactly: the first-order
        (delta-method) variance of a statistic with gradient X W in the operator ``p`` perturbs, with every row's own
        residual (heteroscedasticity-robust, no Kronecker approximation) — a quarter of the variance over the
        multipliers of the linear term that :meth:`quadratic` ``(X, W, [(1, p)])`` forms. Read from the row forms
        that :meth:`quadratic` formed for the same arrays X and W (no new O(n d²) product when it ran first).

        Arguments:
            X: (d_out, d_in) or a linear combination [(c, X), …] as in :meth:`quadratic`.
            W: (d_in, d_in) symmetric weight. p: the perturbation. scale: divides X and the rows lₖ.

        Example:
            >>> rng = np.random.default_rng(0); Y = rng.normal(size=(4000, 2)); F = Y + rng.normal(size=(4000, 2))
            >>> fit = FixedDesign(Y).perturbation(F, "fit"); mb = MultiplierBootstrap({"fit": 4000}, n_boot=50)
            >>> round(mb.linear_variance(np.eye(2), np.eye(2), fit) * 4000, 1)  # Var tr Ĉ = σ² tr(Σ⁻¹)/n = 2/n
            2.0
        """
        terms = _terms(X)
        a = np.zeros(p.n_rows)
        if p.L.size:
            a = a + sum(c * self._row_forms(p, Xi, W) for c, Xi in terms)
        if p.g is not None and p.N is not None:
            NW = self._nw(p, W)
            a = a + p.g * sum(c * float(np.sum(NW * Xi)) for c, Xi in terms)
        return float(a @ a) / scale**4

    def counts(self, n_rows: int, key: str = "test") -> np.ndarray:
        """(n_boot, n_rows) multinomial resampling counts of evaluation rows (drawn once per key)."""
        V = self._counts.get(key)
        if V is None or V.shape[1] != n_rows:
            V = self._rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=self.n_boot).astype(np.float64)
            self._counts[key] = V
        return V

    def test_forms(self, T: np.ndarray, X: np.ndarray, scale: float = 1.0,
                   TX: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """(u, base, base*) of an operator X on evaluation rows T (n_t, d_in): uⱼ = ‖X tⱼ‖² (n_t,), base = tr(XΣXᵀ)
        with Σ the centred second moment of the rows, base* (n_boot,) the same on each replicate's rows
        (:meth:`counts`). One product T Xᵀ (n_t d_out d_in) per (T, X) (the same array objects) until :meth:`clear`:
        the replicates' ratios and the errors' standard errors share it; only its reductions are kept. ``scale``
        divides X (the forms of X/scale, without a scaled copy of X). ``TX``: the product T Xᵀ (unscaled) when the
        caller has it (e.g. T Cᵀ − T Rᵀ for X = C − R: one product per operator, not per difference); not modified."""
        key = ("test", id(T), id(X), float(scale))
        out = self._cache.get(key)
        if out is None:
            n_t = T.shape[0]
            V = self.counts(n_t)
            if TX is None:
                TX = T @ np.asarray(X, dtype=np.float64).T
                if scale != 1.0:
                    TX /= scale
            elif TX.shape != (n_t, X.shape[0]):
                raise ShapeError(f"TX must be T Xᵀ, shape {(n_t, X.shape[0])}; got {TX.shape}")
            elif scale != 1.0:  # the scaled forms in a scratch array (no new m × d array per call)
                TX = np.divide(TX, scale, out=self._buffer(TX.shape, np.float64, "test_scaled"))
            u = np.sum(np.multiply(TX, TX, out=self._buffer(TX.shape, np.float64, "test_sq")), axis=1)
            mstar = (V / n_t) @ TX
            out = (u, float(u.mean() - np.sum(TX.mean(axis=0) ** 2)), V @ u / n_t - np.sum(mstar * mstar, axis=1))
            self._cache[key] = out
            self._keep.append((T, X))
        return out

    def test_ratio_deltas(self, T: np.ndarray, D: np.ndarray, R: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(n_boot,) changes of tr(DΣDᵀ)/tr(RΣRᵀ) when the evaluation rows T (n_t, d_in) (centred, scaled)
        are resampled (Σ the centred second moment of the resampled rows); ``scale`` as in :meth:`test_forms`."""
        (_, nd, nd_b), (_, nr, nr_b) = self.test_forms(T, D, scale), self.test_forms(T, R, scale)
        if nr <= 0:
            return np.zeros(self.n_boot)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nr_b > 0, nd_b / nr_b, np.inf) - nd / nr
