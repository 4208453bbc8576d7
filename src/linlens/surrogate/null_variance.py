"""The spread of a bias-corrected quadratic statistic near its null: what a Rademacher multiplier bootstrap misses.

A data-weighted error against an *estimated* reference (C_data, the least-squares fit of x on y from training pairs)
is θ̃ = [tr(D̂ S D̂ᵀ) − B̂]/den with D̂ = Ĉ − R̂ = D + E (E = E_fit − E_R, both estimation errors) and B̂ the HC2
estimate of E tr(E S Eᵀ). To second order, with E ≈ N(0, V) (V the covariance of vec E, weighted by S),

    Var θ̃ · den² = 4 DᵀVD  +  2 tr(V²)  +  Var B̂.
                   linear     quadratic    the bias correction's own variance

The multiplier bootstrap with the designs fixed (``surrogate/multiplier.py``) gets the first term at the estimate,
4 D̂ᵀVD̂, whose expectation is 4 DᵀVD + 4 tr(V²): near the null (D ≈ 0) that is the noise counted as signal.
Its quadratic term ωᵀKω (K = (L Lᵀ) ∘ (M S Mᵀ)) has variance 2 Σ_{i≠j} K²ᵢⱼ: Rademacher multipliers have ω² ≡ 1, so
each row's own fourth-moment term (‖eₖ‖² aₖ, aₖ = mₖᵀSmₖ) — the diagonal of the quadratic and, alike, the whole
variance of B̂ = Σₖ ‖lₖ‖² aₖ — is missing. With few training rows per unknown these diagonal terms carry most of the
spread (the leverages hₖ are large), and with the estimated reference in both numerator and denominator the
replicates' ratio cancels much of the linear term (measured: correlation 0.92 between the numerator's and the
denominator's replicates at 2.3 rows per unknown). Result, d = 10, truth 0: bootstrap s.d. 0.61 of the estimate's
spread at 2.3 training pairs per unknown, 1.37 at 7.3; coverage 0.873 and 0.970 at nominal 0.95.

:func:`quadratic_null_variance` estimates the two terms the bootstrap gets wrong directly:

* tr(V²) in the Kronecker form of each row source p (the rows' residuals independent of their design rows):
  Vₚ ≈ Σ̄ₚ ⊗ MₚᵀMₚ, Σ̄ₚ the residuals' covariance, so tr(V²) = Σₚ tr(Σ̄ₚ²)‖MₚSMₚᵀ‖²_F + 2 Σₚ<q tr(Σ̄ₚΣ̄_q)‖MₚSM_qᵀ‖²_F,
  with tr(Σ̄ₚ²) from the pairs of distinct rows, (‖LᵀL‖²_F − Σₖ‖lₖ‖⁴)/(n(n − 1)) (unbiased: ‖lₖ‖⁴ alone has mean
  (tr Σ)² + 2 tr Σ²);
* Var B̂ = Σₖ aₖ² Var‖lₖ‖², estimated by Σₖ aₖ² (‖lₖ‖² − mean‖l‖²)².

Both assume each row's residual independent of its design row; with non-Gaussian x or residuals that grow with
the leverage they fall short, so the study takes c₀ at least the bootstrap's extrapolation and adds the
denominator's own null variance (``workflows.study._estimated_reference_interval``).

:func:`score_interval` then inverts |θ − θ̃| ≤ z √(κθ + c₀) with the null variance c₀ = (2 tr V² + Var B̂)/den²
estimated directly, and the slope κ the bootstrap's, as before (:func:`null_slope`: away from the null the bootstrap
sees the actual direction of D̂ and heteroscedastic rows). :func:`~linlens.surrogate.multiplier.quadratic_interval`,
the interval of the other errors, is the case c₀ = κb/2: the null variance extrapolated from the bootstrap's spread
at the estimate — too small with few rows per unknown (the two missing terms), too large with many (the noise in
the linear term). Where θ = 0 is inside, only c₀ matters: 0 is covered exactly when |θ̃| ≤ z√c₀.

Coverage of the 95% interval on d = 10, f = Wiener + |Gy| (truth 0; 400 probes, 300 data sets;
``benchmarks/bench_intervals.py --parts study-cdata``) is in docs/guide/inverse.md.

Example:
    >>> from linlens.surrogate.multiplier import FixedDesign
    >>> rng = np.random.default_rng(0); Y = rng.normal(size=(60, 3)); F = Y + rng.normal(size=(60, 3))
    >>> p = FixedDesign(Y).perturbation(F, "fit"); mb = MultiplierBootstrap({"fit": 60}, n_boot=10)
    >>> nv = quadratic_null_variance(mb, [(1.0, p)], np.eye(3))  # V ≈ I₃ ⊗ (ỸᵀỸ)⁻¹: tr V² ≈ (tr V)²/9
    >>> 0 < nv.trace_v2 < nv.expected ** 2, nv.bias_variance > 0
    (True, True)
    >>> lo, hi = score_interval(0.0, nv.slope, nv.null_variance)  # the interval of θ̃ = 0 (the bias subtracted)
    >>> lo < 0 < hi
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from linlens.errors import ConfigError
from linlens.surrogate.multiplier import KRON_FULL_MAX, MultiplierBootstrap, Perturbation

__all__ = ["QuadraticNullVariance", "quadratic_null_variance", "score_interval", "null_slope", "NULL_PROBES"]

#: Rademacher probes of the Hutchinson estimates of ‖MₚSM_qᵀ‖²_F and tr(Σ̄ₚΣ̄_q) above
#: :data:`~linlens.surrogate.multiplier.KRON_FULL_MAX` inputs/outputs (exact d × d products below: O(n d²) there
#: would cost seconds at d = 4096; the probes cost O(n d) each). Their relative error is about √(2/(64 r)) for an
#: effective rank r of the matrix sketched; it enters the null variance only.
NULL_PROBES = 64


@dataclass(frozen=True)
class QuadraticNullVariance:
    """The second-order spread of a bias-corrected quadratic statistic tr(D̂WD̂ᵀ) − B̂ (units of the statistic/scale²).

    Arguments:
        trace_v2: tr(V²) of the pieces' joint perturbation under the weight (Kronecker form per row source): the
            quadratic term's variance is 2 tr(V²).
        bias_variance: Var B̂ of the HC2 bias estimate B̂ = Σₖ ‖lₖ‖² mₖᵀWmₖ (empirical, per row).
        expected: tr V = E B̂ (the bias correction itself).

    Example:
        >>> QuadraticNullVariance(2.0, 1.0, 4.0).null_variance, QuadraticNullVariance(2.0, 1.0, 4.0).slope
        (5.0, 2.0)
    """

    trace_v2: float
    bias_variance: float
    expected: float

    @property
    def null_variance(self) -> float:
        """2 tr(V²) + Var B̂: the statistic's variance at D = 0."""
        return 2.0 * self.trace_v2 + self.bias_variance

    @property
    def slope(self) -> float:
        """4λ, λ = tr(V²)/tr(V): d Var/dθ of the unnormalized statistic for an isotropic V (0 without a bias)."""
        return 4.0 * self.trace_v2 / self.expected if self.expected > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain floats."""
        return {k: float(v) for k, v in asdict(self).items()}


def _probes(n: int, k: int, seed: int) -> np.ndarray:
    """(n, k) Rademacher probes (a fixed stream: no draw from the bootstrap's generator)."""
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=(n, k))


def _residual_products(p: Perturbation, q: Perturbation, scale: float) -> float:
    """tr(Σ̄ₚΣ̄_q), Σ̄ = LᵀL/n/scale² (for p = q from distinct pairs of rows: unbiased for tr Σ²)."""
    Lp, Lq = p.L / scale, q.L / scale
    d = Lp.shape[1]
    if d <= KRON_FULL_MAX:
        Gp = Lp.T @ Lp
        Gq = Gp if q is p else Lq.T @ Lq
        s = float(np.sum(Gp * Gq))
    else:
        H = _probes(d, NULL_PROBES, 1)
        a = Lp.T @ (Lp @ H)
        b = a if q is p else Lq.T @ (Lq @ H)
        s = float(np.sum(a * b)) / NULL_PROBES
    if q is p:
        n = Lp.shape[0]
        q4 = float(np.sum(np.sum(Lp * Lp, axis=1) ** 2))
        return max(s - q4, 0.0) / (n * (n - 1))
    return s / (Lp.shape[0] * Lq.shape[0])


def _design_products(mb: MultiplierBootstrap, p: Perturbation, q: Perturbation, W: np.ndarray) -> float:
    """‖MₚWM_qᵀ‖²_F = tr(MₚᵀMₚ W M_qᵀM_q W), from M_q W (the product the bootstrap's statistics formed)."""
    MqW = mb._mw(q, W)
    d = p.M.shape[1]
    if d <= KRON_FULL_MAX:
        return float(np.sum((p.M.T @ p.M) * (MqW.T @ MqW)))
    G = _probes(q.n_rows, NULL_PROBES, 2)
    X = p.M @ (MqW.T @ G)  # Mₚ W M_qᵀ g (W symmetric)
    return float(np.sum(X * X)) / NULL_PROBES


def quadratic_null_variance(mb: MultiplierBootstrap, pieces: Sequence[tuple[float, Perturbation]], W: np.ndarray,
                            scale: float = 1.0) -> QuadraticNullVariance:
    """tr(V²), Var B̂ and tr V of the perturbation Σ ±Eₚ of independent least-squares fits under the weight W.

    Arguments:
        mb: the bootstrap whose statistics use the same pieces and weight (its product M W is reused).
        pieces: (sign, :class:`~linlens.surrogate.multiplier.Perturbation`) of OLS fits (rows lₖ, mₖ; no full-rank
            part), each on its own row source.
        W: (d_in, d_in) symmetric weight. scale: divides the rows lₖ (as the statistics' ``scale``).

    Returns:
        :class:`QuadraticNullVariance` in units of tr(D W Dᵀ)/scale².

    Example:
        >>> from linlens.surrogate.multiplier import FixedDesign
        >>> rng = np.random.default_rng(1); Y = rng.normal(size=(40, 2)); p = FixedDesign(Y).perturbation(
        ...     Y + rng.normal(size=(40, 2)), "train")
        >>> nv = quadratic_null_variance(MultiplierBootstrap({"train": 40}, n_boot=4), [(1.0, p)], np.eye(2))
        >>> bool(np.isclose(nv.expected, np.sum(p.L ** 2, 1) @ np.sum(p.M ** 2, 1)))  # Σₖ‖lₖ‖²‖mₖ‖²
        True
    """
    ps = [p for _, p in pieces]
    if len({p.source for p in ps}) != len(ps) or any(p.g is not None for p in ps):
        raise ConfigError("quadratic_null_variance: one least-squares piece (no full-rank part) per row source")
    t2 = vb = ex = 0.0
    for i, p in enumerate(ps):
        a = mb.weight_forms(p, W)  # mₖᵀWmₖ
        q = np.sum(p.L * p.L, axis=1) / scale**2
        ex += float(a @ q)
        vb += float(np.sum(a * a * (q - q.mean()) ** 2))
        t2 += _residual_products(p, p, scale) * _design_products(mb, p, p, W)
        for r in ps[i + 1:]:
            t2 += 2.0 * _residual_products(p, r, scale) * _design_products(mb, p, r, W)
    return QuadraticNullVariance(trace_v2=t2, bias_variance=vb, expected=ex)


def null_slope(nv: QuadraticNullVariance, den: float, corrected: float, bias: float, sd: float) -> float:
    """κ of Var θ ≈ κθ + c₀ for θ = (quadratic)/den: the bootstrap's, sd²/(θ̃ + b/2) (the slope
    :func:`~linlens.surrogate.multiplier.quadratic_interval` assumes: sd² = κ(θ̃ + b/2) at the estimate), or, where
    θ̃ + b/2 ≤ 0 or sd is not finite, the isotropic 4λ/den (λ = tr V²/tr V).

    Arguments:
        nv: the statistic's :class:`QuadraticNullVariance` (units of the quadratic). den: the ratio's denominator.
        corrected: θ̃. bias: b = plug-in − θ̃ (≥ 0). sd: the replicates' standard deviation (units of θ).

    Example:
        >>> nv = QuadraticNullVariance(trace_v2=1.0, bias_variance=0.0, expected=4.0)  # 4λ = 1
        >>> null_slope(nv, 1.0, 1.0, 2.0, 2.0), null_slope(nv, 1.0, -3.0, 2.0, 2.0)  # 4/(1 + 1); isotropic
        (2.0, 1.0)
    """
    a = corrected + max(bias, 0.0) / 2
    if a > 0 and math.isfinite(sd):
        return sd * sd / a
    return nv.slope / den


def score_interval(corrected: float, slope: float, null_variance: float, ci: float = 0.95) -> tuple[float, float]:
    """{θ : (θ − θ̃)² ≤ z² (κθ + c₀)}: the score-type interval of a statistic whose variance grows linearly with its
    truth θ from c₀ at θ = 0 (normal quantiles). Closed form θ̃ + k/2 ± √(kθ̃ + k²/4 + z²c₀), k = z²κ;
    :func:`~linlens.surrogate.multiplier.quadratic_interval` is the case κ = sd²/(θ̃ + b/2), c₀ = κb/2.

    Arguments:
        corrected: θ̃. slope: κ ≥ 0. null_variance: c₀ ≥ 0. ci: the level.

    Returns:
        (low, high) (not clipped at 0); NaN when an input is not finite.

    Example:
        >>> lo, hi = score_interval(0.0, 0.0, 1.0)  # constant variance: θ̃ ± z
        >>> round(lo, 3), round(hi, 3)
        (-1.96, 1.96)
    """
    from scipy.stats import norm

    if not all(math.isfinite(v) for v in (corrected, slope, null_variance)) or slope < 0 or null_variance < 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + ci / 2))
    k = z * z * slope
    h = math.sqrt(max(k * corrected + k * k / 4 + z * z * null_variance, 0.0))
    return corrected + k / 2 - h, corrected + k / 2 + h
