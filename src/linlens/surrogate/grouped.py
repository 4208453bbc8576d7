"""Row-group sufficient statistics of a least-squares fit on few features: a streamed, bias-corrected
data-weighted error with a group-bootstrap interval (the subspace route, ``analyze --components``).

The subspace surrogate regresses the outputs F (d_out) on m principal-component scores z of the inputs,
B̂ = X̃ᵀG̃⁻¹ (G̃ = Σ z̃z̃ᵀ, X̃ = Σ z̃F̃ᵀ), and is tested on held-out rows against a reference's outputs t = R y:

    θ = E‖B z − t‖² / E‖t‖²   (centred over the held-out rows).

The plug-in θ̂ is biased upward by the estimation noise of B̂ (+41% to +69% of the truth on a case with a known
population surrogate). Rows are hashed into g groups, and each group keeps its own sums (n, Σz, ΣF, Σzzᵀ, ΣzFᵀ
for training rows; the error sums for held-out rows), so that after the streamed passes

* the bias E tr((B̂ − B) S (B̂ − B)ᵀ) (S the held-out score covariance) is estimated by the cluster-robust
  sandwich G̃⁻¹ (Σ_g u_g u_gᵀ) G̃⁻¹, u_g = Σ_{i∈g} z̃ᵢ rᵢᵀ, with the g/(g − 1) small-sample factor, and subtracted;
* a replicate re-weights the training groups (multinomial counts), solves one m × m system for B*, and re-weights
  the held-out groups: O(g m d_out + m³) per replicate, no model call;
* the basic interval is taken around the corrected estimate (as everywhere in linlens).

Coverage and bias are checked by simulation against a model whose population surrogate is known in closed form
(``tests/surrogate/test_grouped.py``, ``benchmarks/bench_intervals.py``).

References:
    A. C. Cameron, D. L. Miller. A practitioner's guide to cluster-robust inference. J. Human Resources 50 (2015)
    317–372 (cluster-robust variance, the g/(g − 1) factor, the pairs cluster bootstrap).

Example:
    >>> rng = np.random.default_rng(0); Z = rng.normal(size=(4000, 2)); F = Z @ [[1.0, 0.0], [0.0, 1.0]]
    >>> F = F + 0.5 * rng.normal(size=F.shape); Zh = rng.normal(size=(1000, 2))
    >>> acc = GroupedFit(2, 2, n_groups=20); acc.update_train(Z, F, np.arange(4000) % 20)
    >>> B = acc.coef(); acc.update_held(Zh, Zh @ (0.9 * np.eye(2)), B, np.arange(1000) % 20)
    >>> e = acc.error(n_boot=200, seed=0)  # truth ‖I − 0.9 I‖²/‖0.9 I‖² = 0.0123
    >>> bool(e.low <= 0.0123 <= e.high), e.plug_in > e.estimate
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg.blas as blas

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.linalg import pinv_psd
from linlens.stats import BootstrapResult, _basic

__all__ = ["GroupedFit", "GroupedError", "FLOAT32_ROUNDING", "SINGLE_SHARE", "TILE_VALUES"]

#: Bound on the relative rounding of the bootstrap sweep's float32 products (X_w X_wᵀ, Y* = A X_w), 10× the largest
#: measured (``tests/surrogate/test_grouped.py``); the sweep runs in float32 only where this bound, carried to a
#: replicate and to its standard error, stays below SINGLE_SHARE of the analytic standard error (else in float64).
#: (The dense study's bootstrap has a different rule, :data:`linlens.surrogate.multiplier.REPLICATE_FLOAT32_MIN`: a
#: size threshold for its replicate-only products, checked by tests to a stated tolerance, not a bound per data set;
#: the two are not interchangeable and neither reads the other. The sweep's ‖Y'‖² sums each replicate's rows of
#: squares in blocks of SQUARES_BLOCK columns in the sweep's precision and those sums in float64: its relative rounding
#: ≲ 1e-7 is inside this bound.)
FLOAT32_ROUNDING, SINGLE_SHARE = 1e-5, 1e-2
SQUARES_BLOCK = 1024

#: Values of X_w (and of Y*) held at once by the bootstrap's sweep over the outputs, all replicates together
#: (2²³ float64 = 64 MiB): the outputs are swept in tiles of TILE_VALUES // (n_boot · m) columns.
TILE_VALUES = 2**23


@dataclass(frozen=True)
class GroupedError(ResultMixin):
    """The data-weighted error of a grouped fit against a reference, bias-corrected, with its interval.

    Arguments:
        plug_in: θ̂ on the held-out rows.
        estimate: θ̂ less the cluster-robust estimate of its estimation bias.
        bias: that estimate (in units of θ).
        low: basic interval, lower end (clipped at 0).
        high: upper end.
        std: standard deviation of the replicates.
        ci: level.
        n_boot: replicates.
        n_groups: row groups.
        method: the procedure in words.
        boot: the :class:`~linlens.stats.BootstrapResult` (name "R") for the verdict rule.
        sweep: precision of the replicates' d_out-sized products ("float32" where the rounding bound allows it:
            :data:`FLOAT32_ROUNDING`).

    Example:
        >>> rng = np.random.default_rng(0); Z = rng.normal(size=(2000, 2)); Zh = rng.normal(size=(500, 2))
        >>> acc = GroupedFit(2, 2, n_groups=10)
        >>> acc.update_train(Z, Z + 0.5 * rng.normal(size=Z.shape), np.arange(2000) % 10)
        >>> acc.update_held(Zh, 0.9 * Zh, acc.coef(), np.arange(500) % 10)  # truth ‖I − 0.9 I‖²/‖0.9 I‖² = 0.0123
        >>> e = acc.error(n_boot=100, seed=0)
        >>> bool(np.isclose(e.estimate, e.plug_in - e.bias)), bool(e.low <= 0.0123 <= e.high), e.n_groups
        (True, True, 10)
    """

    plug_in: float
    estimate: float
    bias: float
    low: float
    high: float
    std: float
    ci: float
    n_boot: int
    n_groups: int
    method: str
    boot: BootstrapResult | None = None
    sweep: str = "float64"

    def to_dict(self) -> dict:
        """JSON-safe dictionary (the replicates left out)."""
        return super().to_dict() | {"boot": None}


def _add_product(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """c += aᵀ b in place (c (p, q) C-contiguous float64, a (k, p), b (k, q)) by one BLAS gemm on the transposed
    views, with no (p, q) temporary (a fresh 32 MB product per group and batch costs more in page faults than in
    flops)."""
    if c.dtype != np.float64 or not c.flags.c_contiguous:
        c += a.T @ b
        return
    out = blas.dgemm(1.0, np.asarray(b, np.float64).T, np.asarray(a, np.float64).T, beta=1.0, c=c.T, trans_b=1,
                     overwrite_c=1)
    if not np.shares_memory(out, c):  # the wrapper copied c (it should not for an F-ordered view): keep the result
        c[...] = out.T


class GroupedFit:
    """Per-group sums of a least-squares fit of F (d_out) on m features (with intercept) and of its held-out error.

    Arguments:
        m: features. d_out: outputs. n_groups: row groups (each row's group comes with it; a seeded hash keeps
            the result independent of the batch size).

    Example:
        >>> rng = np.random.default_rng(0); Z = rng.normal(size=(100, 2)); B = np.array([[1.0, -2.0], [0.5, 0.0]])
        >>> acc = GroupedFit(2, 2, n_groups=4); acc.update_train(Z, Z @ B.T + 3.0, np.arange(100) % 4)  # exact fit
        >>> w = np.array([1.0, 0.0, 1.0, 0.0])  # groups 0 and 2 only
        >>> bool(np.allclose(acc.coef(), B)), bool(np.allclose(acc.coef(w), B)), acc.n.tolist()
        (True, True, [25.0, 25.0, 25.0, 25.0])
    """

    def __init__(self, m: int, d_out: int, n_groups: int = 32) -> None:
        if n_groups < 4:
            raise ConfigError(f"n_groups must be at least 4; got {n_groups}")
        g = int(n_groups)
        self.m, self.d_out, self.n_groups = int(m), int(d_out), g
        self.n = np.zeros(g)
        self.sz = np.zeros((g, m))
        self.sf = np.zeros((g, d_out))
        self.zz = np.zeros((g, m, m))
        self.zf = np.zeros((g, m, d_out))
        # held-out: per group error sums under the full-data fit, pooled score moments for the replicates
        self.hn = np.zeros(g)
        self.hd = np.zeros((g, d_out))
        self.hdd = np.zeros(g)
        self.ht = np.zeros((g, d_out))
        self.htt = np.zeros(g)
        self.hz = np.zeros(m)
        self.hzz = np.zeros((m, m))
        self.hzt = np.zeros((m, d_out))

    def update_train(self, Z: np.ndarray, F: np.ndarray, groups: np.ndarray) -> None:
        """Add training rows: scores Z (k, m), outputs F (k, d_out), their groups (k,) in [0, n_groups) (rows sorted
        by group are read in place; any order gives the same sums)."""
        Z, F, groups = np.asarray(Z, float), np.asarray(F, float), np.asarray(groups)
        if Z.shape[1] != self.m or F.shape[1] != self.d_out or len(Z) != len(F) or len(groups) != len(Z):
            raise ShapeError(f"need Z (k, {self.m}), F (k, {self.d_out}) and k groups; got {Z.shape}, {F.shape}, "
                             f"{groups.shape}")
        if len(groups) > 1 and np.all(groups[1:] >= groups[:-1]):  # rows sorted by group: views, no copies
            cuts = np.flatnonzero(np.diff(groups)) + 1
            parts = zip(groups[np.r_[0, cuts]], np.split(np.arange(len(groups)), cuts), strict=True)
            pieces = ((int(g), slice(int(ix[0]), int(ix[-1]) + 1)) for g, ix in parts)
        else:
            pieces = ((int(g), groups == g) for g in np.unique(groups))
        for g, sel in pieces:
            z, f = Z[sel], F[sel]
            self.n[g] += len(z)
            self.sz[g] += z.sum(axis=0)
            self.sf[g] += f.sum(axis=0)
            self.zz[g] += z.T @ z
            _add_product(self.zf[g], z, f)

    def merge(self, other: GroupedFit) -> GroupedFit:
        """A new :class:`GroupedFit` holding the rows of both (partials of row blocks, e.g. from Dask workers).

        Example:
            >>> Z, F = np.ones((4, 2)) * [[1.0], [2.0], [3.0], [5.0]], np.arange(4.0)[:, None]
            >>> a, b, w = GroupedFit(2, 1, 4), GroupedFit(2, 1, 4), GroupedFit(2, 1, 4)
            >>> a.update_train(Z[:2], F[:2], np.arange(2)); b.update_train(Z[2:], F[2:], np.arange(2, 4))
            >>> w.update_train(Z, F, np.arange(4)); bool(np.array_equal(a.merge(b).zz, w.zz))
            True
        """
        if (self.m, self.d_out, self.n_groups) != (other.m, other.d_out, other.n_groups):
            theirs, mine = (other.m, other.d_out, other.n_groups), (self.m, self.d_out, self.n_groups)
            raise ShapeError(f"cannot merge a GroupedFit of (m, d_out, groups) {theirs} into one of {mine}")
        out = GroupedFit(self.m, self.d_out, self.n_groups)
        for k, v in vars(self).items():
            if isinstance(v, np.ndarray):
                setattr(out, k, v + getattr(other, k))
        return out

    @staticmethod
    def _solve(n: float, sz: np.ndarray, sf: np.ndarray, zz: np.ndarray, zf: np.ndarray) -> np.ndarray:
        G = zz - np.outer(sz, sz) / n
        X = zf - np.outer(sz, sf) / n
        # the minimum-norm G⁺X with lstsq's cutoff, one m³ eigenproblem (gelsd took ~5 s per replicate at m = 256,
        # d_out = 16,384); every replicate of error() uses the same rule
        return (pinv_psd(G) @ X).T  # (d_out, m)

    def coef(self, w: np.ndarray | None = None) -> np.ndarray:
        """B (d_out, m) from all training groups, or from groups weighted by w (n_groups,)."""
        w = np.ones(self.n_groups) if w is None else np.asarray(w, float)
        return self._solve(w @ self.n, w @ self.sz, w @ self.sf, np.tensordot(w, self.zz, 1),
                           np.tensordot(w, self.zf, 1))

    def update_held(self, Z: np.ndarray, T: np.ndarray, B: np.ndarray, groups: np.ndarray,
                    D: np.ndarray | None = None) -> None:
        """Add held-out rows: scores Z (k, m), reference outputs T = R y (k, d_out) (any common shift of y cancels),
        the full-data fit B (d_out, m) and the rows' groups (k,); ``D`` = Z Bᵀ − T (k, d_out) when the caller has
        it already (else it is formed here)."""
        Z, T, groups = np.asarray(Z, float), np.asarray(T, float), np.asarray(groups)
        D = Z @ np.asarray(B).T - T if D is None else np.asarray(D, float)
        for g in np.unique(groups):
            sel = groups == g
            self.hn[g] += int(sel.sum())
            self.hd[g] += D[sel].sum(axis=0)
            self.hdd[g] += float(np.sum(D[sel] ** 2))
            self.ht[g] += T[sel].sum(axis=0)
            self.htt[g] += float(np.sum(T[sel] ** 2))
        self.hz += Z.sum(axis=0)
        self.hzz += Z.T @ Z
        _add_product(self.hzt, Z, T)

    def estimation_bias(self, S: np.ndarray, B: np.ndarray | None = None) -> float:
        """E tr((B̂ − B) S (B̂ − B)ᵀ) estimated by the cluster-robust sandwich G̃⁻¹ (Σ_g u_g u_gᵀ) G̃⁻¹ with the
        g/(g − 1) factor (see the module), for a score covariance S (m, m); B the full-data fit (default
        :meth:`coef`).

        Example:
            >>> rng = np.random.default_rng(0); Z = rng.normal(size=(2000, 1)); F = Z + rng.normal(size=(2000, 1))
            >>> acc = GroupedFit(1, 1, 20); acc.update_train(Z, F, np.arange(2000) % 20)
            >>> bool(0.7 < acc.estimation_bias(np.eye(1)) * 2000 < 1.3)  # ≈ σ²/Var z = 1 per row (20 groups)
            True
        """
        B = self.coef() if B is None else np.asarray(B, dtype=np.float64)
        return self._bias(S, B, np.matmul(self.zf, B))[0]

    def _bias(self, S: np.ndarray, B: np.ndarray, zfB: np.ndarray) -> tuple[float, float]:
        """:meth:`estimation_bias` given zfB = zf_g B (g, m, m), the products :meth:`error` shares with the
        bootstrap: Σ_g ⟨M, u_g u_gᵀ⟩ with u_g u_gᵀ = z̃f_g z̃f_gᵀ − (z̃f_g B) z̃z_g − z̃z_g (z̃f_g B)ᵀ + z̃z_g BᵀB z̃z_g, so
        the one d_out-sized product per group is the symmetric z̃f_g z̃f_gᵀ (syrk: half an m² d_out product). Also
        returns (Σ_g ‖z̃f_g‖²_F / Σ_g ‖u_g‖²_F)^½ ≥ 1, by how much the cancellation in u_g = z̃f_g − z̃z_g Bᵀ magnifies
        the rounding of products with the group sums (inf when every u_g is 0)."""
        g = self.n_groups
        ntr = self.n.sum()
        zb, fb = self.sz.sum(axis=0) / ntr, self.sf.sum(axis=0) / ntr
        Ginv = np.linalg.pinv(self.zz.sum(axis=0) - ntr * np.outer(zb, zb), hermitian=True)
        M = Ginv @ np.asarray(S, dtype=np.float64) @ Ginv
        BtB = B.T @ B
        fbB = fb @ B
        bias, sig2, res2 = 0.0, 0.0, 0.0
        zfc = np.empty((self.m, self.d_out))  # one buffer for every group's centred sums
        for j in range(g):  # u_g = Σ z̃ r̃ᵀ over the group's rows, from its sums (full-data centring)
            a = self.sz[j] - self.n[j] * zb
            zz = self.zz[j] - np.outer(self.sz[j], zb) - np.outer(zb, self.sz[j]) + self.n[j] * np.outer(zb, zb)
            np.copyto(zfc, self.zf[j])
            zfc -= a[:, None] * fb
            zfc -= zb[:, None] * self.sf[j]  # z̃f_g (m, d_out)
            zfcB = zfB[j] - np.outer(a, fbB) - np.outer(zb, self.sf[j] @ B)
            ff = blas.dsyrk(1.0, zfc.T, trans=1)  # upper triangle of z̃f_g z̃f_gᵀ
            ff += np.triu(ff, 1).T
            uu = ff - zfcB @ zz - zz @ zfcB.T + zz @ BtB @ zz
            bias += float(np.sum(M * uu))
            sig2 += float(np.trace(ff))
            res2 += max(float(np.trace(uu)), 0.0)
        return bias * g / (g - 1), float(np.sqrt(sig2 / res2)) if res2 > 0 else float("inf")

    def _held(self, v: np.ndarray) -> tuple[float, float]:
        k = v @ self.hn
        d, t = v @ self.hd / k, v @ self.ht / k
        return float(v @ self.hdd / k - d @ d), float(v @ self.htt / k - t @ t)

    def _fit_gradient_terms(self, Y: np.ndarray, B: np.ndarray, zb: np.ndarray, fb: np.ndarray) -> np.ndarray:
        """(n_groups,) ⟨Y, u_g⟩ with u_g = Σ_{i∈g} z̃ᵢ r̃ᵢᵀ (m, d_out) the group's score-residual sums under the
        full-data fit B and centring (zb, fb), from the group sums without forming u_g (O(g m d_out))."""
        yf = np.tensordot(self.zf, Y, axes=([1, 2], [0, 1]))  # ⟨Y, Σ z fᵀ⟩ per group
        return self._gradient_terms(yf, Y @ fb, self.sf @ (zb @ Y), Y @ B, zb)

    def _gradient_terms(self, yf: np.ndarray, Yfb: np.ndarray, sfY: np.ndarray, YB: np.ndarray,
                        zb: np.ndarray) -> np.ndarray:
        """:meth:`_fit_gradient_terms` from its d_out-sized pieces: yf (g,) = ⟨Y, zf_g⟩, Yfb = Y f̄ (m,),
        sfY (g,) = ⟨sf_g, z̄ᵀY⟩, YB = Y B (m, m); or for b matrices Y at once (the bootstrap's replicates): yf (g, b),
        Yfb (b, m), sfY (g, b), YB (b, m, m), giving (g, b)."""
        m = self.m
        one = np.ndim(yf) == 1
        yf, sfY = (yf[:, None], sfY[:, None]) if one else (yf, sfY)
        Yfb, YB = Yfb.reshape(-1, m), YB.reshape(-1, m, m)
        zfc = yf - self.sz @ Yfb.T - sfY + self.n[:, None] * (Yfb @ zb)[None, :]
        # ⟨Y, z̃z̃ᵀ Bᵀ⟩ = ⟨z̃z̃ᵀ, Y B⟩, for every Y in one product with the groups' zz_g
        zzc = (self.zz.reshape(self.n_groups, m * m) @ YB.reshape(-1, m * m).T - self.sz @ (YB @ zb).T
               - self.sz @ (zb @ YB).T + self.n[:, None] * (YB @ zb @ zb)[None, :])
        out = zfc - zzc
        return out[:, 0] if one else out

    def _held_variance(self, v: np.ndarray) -> tuple[float, float]:
        """The held-out error's ratio-of-means variance over groups weighted by v (n_groups,): (variance, e)."""
        k = v @ self.hn
        d, t = v @ self.hd / k, v @ self.ht / k
        num_g = self.hdd - 2 * self.hd @ d + self.hn * float(d @ d)
        den_g = self.htt - 2 * self.ht @ t + self.hn * float(t @ t)
        if not v @ den_g > 0:
            return float("inf"), float("nan")
        e = float(v @ num_g / (v @ den_g))
        psi = (num_g - e * den_g) / float(v @ den_g)
        g = self.n_groups
        return float(v @ (psi * psi)) * g / (g - 1), e

    def _replicates(self, draws: np.ndarray, B: np.ndarray, S: np.ndarray, Szt: np.ndarray, Ginv: np.ndarray,
                    zb: np.ndarray, fb: np.ndarray, fit_const: float, plug: float, den: float,
                    zfB: np.ndarray, single: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The bootstrap replicates of :meth:`error` and their analytic standard errors, for the group counts
        ``draws`` (n_boot, 2, g): training counts w and held-out counts v.

        Per replicate, B* = (G_w⁺ X_w)ᵀ refits on the training groups weighted by w; the training side of the numerator
        is tr(B* S B*ᵀ) − 2 tr(B* S_zt) against the same for B̂ (the rest cancels), the held-out side re-weights the
        held-out groups by v; the standard error re-evaluates the fit gradient at B* (see :meth:`error`). The m × m
        factors of every replicate come first; then one sweep over the outputs in tiles reads each tile of the
        (g, m, d_out) group sums once for all replicates (X_w on the tile, Y' = S^½ G_w⁺ X_w on the tile, whose
        squared norm is tr(B*SB*ᵀ) and which gives Y* = G̃⁻¹S^½ Y' − G̃⁻¹S_zt, and its inner products with the group
        sums), so the sums are read once, not twice per chunk of replicates; every d_out-sized product whose factors
        do not depend on the replicate is formed once: O(m² d_out) per replicate in one batched BLAS product (Y'),
        B* itself is never formed.
        """
        g, m, d_out = self.n_groups, self.m, self.d_out
        n_boot = len(draws)
        W = draws[:, 0]
        GS, GSzt = Ginv @ S, Ginv @ Szt  # Y* = G̃⁻¹(B* S − S_ztᵀ)ᵀ = (G̃⁻¹S G_w⁺) X_w − G̃⁻¹S_zt
        GSztB = GSzt @ B
        # (g, m, m) products of each group's sums with B and with S_zt: X_w B and X_w S_ztᵀ from the counts, with no
        # d_out-sized product per replicate (zfB is shared with the bias; zf S_ztᵀ is accumulated by the sweep below)
        sfB, sfS = self.sf @ B, self.sf @ Szt.T
        fit_const = fit_const - float(np.sum((B @ S) * B) - 2 * np.sum(B * Szt.T))
        # the m × m factors of every replicate first (no d_out work): G_w⁺, G̃⁻¹S G_w⁺, X_w S_ztᵀ, Y* B
        nw, SZ = W @ self.n, W @ self.sz  # (n_boot,), (n_boot, m)
        # every replicate's weighted m × m sums at once, one product each over the groups: Σ_g w_g zz_g (→ G_w) and
        # Σ_g w_g zf_g B (→ X_w B); then G_w⁺ (one m³ eigenproblem each) and Y* B = G̃⁻¹S G_w⁺ X_w B − G̃⁻¹S_zt B
        cen0 = SZ / nw[:, None]
        Gw = (W @ self.zz.reshape(g, m * m)).reshape(n_boot, m, m) - SZ[:, :, None] * cen0[:, None, :]
        XB = (W @ zfB.reshape(g, m * m)).reshape(n_boot, m, m) - cen0[:, :, None] * (W @ sfB)[:, None, :]
        P = np.empty((n_boot, m, m))
        for i in range(n_boot):
            P[i] = pinv_psd(Gw[i])
        YB = np.matmul(GS, np.matmul(P, XB)) - GSztB
        Gw = XB = None
        # S = H H (H = S^½, symmetric psd): tr(B*SB*ᵀ) = ‖H P X_w‖², and Y* = G̃⁻¹H (H P X_w) − G̃⁻¹S_zt, so one product
        # per replicate, Y' = (H P) X_w, gives both; its inner products with the groups' sums are those of
        # H G̃⁻¹ zf_g (formed once per tile for all replicates)
        lam, E = np.linalg.eigh(S)
        H = (E * np.sqrt(np.clip(lam, 0.0, None))) @ E.T
        HG = H @ Ginv  # (G̃⁻¹H)ᵀ
        A = np.matmul(H, P)
        # one sweep over the outputs in tiles: each tile of the group sums is read once for all replicates, giving
        # X_w X_wᵀ (accumulated), Y* = A X_w − G̃⁻¹S_zt on the tile and its inner products with the groups' sums. The
        # sums are first centred on the outputs' full-data mean (zf_g − sz_g f̄ᵀ, sf_g − n_g f̄: X_w is unchanged, and
        # ⟨Y*, zf_g⟩ = ⟨Y*, zf_g − sz_g f̄ᵀ⟩ + sz_g·Y* f̄), so no large common offset of the outputs enters the
        # products; with ``single`` the sweep's products run in float32 (see :meth:`error` for when)
        dt = np.float32 if single else np.float64
        fitq = np.zeros(n_boot)  # ‖Y'‖² = tr(B*SB*ᵀ)
        Ypf = np.zeros((n_boot, m))  # Y' f̄
        yf, sfY, Yfb = np.zeros((g, n_boot)), np.zeros((g, n_boot)), np.zeros((n_boot, m))
        tile = max(1, min(d_out, int(TILE_VALUES // max(n_boot * m, 1))))  # ≤ 64 MiB of X_w (and of Y*) per tile
        # buffers reused by every tile (fresh 64 MiB arrays per tile cost more in page faults than their products)
        # the group sums on a tile carry one more row, the outputs' sums sf_g − n_g f̄: X_w − (Σ_g w_g sz_g / n_w)(W sf −
        # n_w f̄)ᵀ is then one product with [A | −A z̄_w] (z̄_w = Σ_g w_g sz_g / n_w), no rank-one update per replicate
        zf_buf, X_buf, Y_buf = (np.empty(g * (m + 1) * tile, dtype=dt), np.empty(n_boot * (m + 1) * tile, dtype=dt),
                                np.empty(n_boot * m * tile, dtype=dt))
        zh_buf = np.empty(g * m * tile, dtype=dt)
        c64 = np.empty(g * m * tile)
        sfc = self.sf - self.n[:, None] * fb
        Aw = np.concatenate([A, -np.matmul(A, cen0[:, :, None])], axis=2)  # (n_boot, m, m + 1): [A | −A z̄_w]
        Wd, Ad, HGd, fbd = W.astype(dt), Aw.astype(dt), HG.astype(dt), fb.astype(dt)
        vzb = (HG @ zb).astype(dt)  # z̄ᵀ G̃⁻¹H Y' = (H G̃⁻¹ z̄)ᵀ Y'
        kz = np.zeros(g)  # ⟨zf_g − sz_g f̄ᵀ, G̃⁻¹S_zt⟩
        SztTd = np.ascontiguousarray(Szt.T, dtype=dt)
        zfS, zfS_tile = np.zeros((g, m, m)), np.empty((g, m, m), dtype=dt)
        for c0 in range(0, d_out, tile):
            c = slice(c0, min(c0 + tile, d_out))
            t = c.stop - c.start
            zc64 = c64[:g * m * t].reshape(g, m, t)
            np.multiply(self.sz[:, :, None], fb[None, None, c], out=zc64)
            np.subtract(self.zf[:, :, c], zc64, out=zc64)  # zf_g − sz_g f̄ᵀ on the tile
            zs_c = zf_buf[:g * (m + 1) * t].reshape(g, m + 1, t)
            zf_c = zs_c[:, :m]
            np.copyto(zf_c, zc64)
            np.copyto(zs_c[:, m], sfc[:, c])  # sf_g − n_g f̄ on the tile
            zfS += np.matmul(zf_c, SztTd[c], out=zfS_tile)  # (zf_g − sz_g f̄ᵀ) S_ztᵀ on the tile
            zh = np.matmul(HGd, zf_c, out=zh_buf[:g * m * t].reshape(g, m, t)).reshape(g, m * t)  # H G̃⁻¹ zf_g
            kz += zc64.reshape(g, m * t) @ GSzt[:, c].reshape(m * t)
            X = np.matmul(Wd, zs_c.reshape(g, (m + 1) * t),
                          out=X_buf[:n_boot * (m + 1) * t].reshape(n_boot, (m + 1) * t)).reshape(n_boot, m + 1, t)
            Yc = np.matmul(Ad, X, out=Y_buf[:n_boot * m * t].reshape(n_boot, m, t))  # Y' = H P X_w on the tile
            Yr = Yc.reshape(n_boot, m * t)
            # ‖Y'‖² on the tile: each replicate's row sums of at most SQUARES_BLOCK squares in the sweep's precision,
            # then summed in float64 (no float64 copy of Y'). Unblocked, a float32 row sum over a wide tile (m = 1:
            # 4e5 columns) rounded to 5.8e-6 relative, near FLOAT32_ROUNDING; blocks of 1024 keep it ~1e-7
            for j0 in range(0, t, SQUARES_BLOCK):
                Yj = Yc[:, :, j0:j0 + SQUARES_BLOCK]
                fitq += np.einsum("bij,bij->bi", Yj, Yj).sum(axis=1, dtype=np.float64)
            yf += zh @ Yr.T
            Ypf += Yc @ fbd[c]
            sfY += zs_c[:, m] @ (vzb @ Yc).T
        # the constant parts of Y* = G̃⁻¹H Y' − G̃⁻¹S_zt
        yf -= kz[:, None]
        Yfb = Ypf @ HG - (GSzt @ fb)[None, :]  # Y* f̄ (n_boot, m)
        sfY -= (sfc @ (GSzt.T @ zb))[:, None]
        yf += self.sz @ Yfb.T  # back to ⟨Y*, zf_g⟩ (the centring above)
        sfY += self.n[:, None] * (Yfb @ zb)[None, :]  # back to ⟨sf_g, z̄ᵀY*⟩
        zfS += self.sz[:, :, None] * (Szt @ fb)[None, None, :]  # back to zf_g S_ztᵀ
        XSzt = (W @ zfS.reshape(g, m * m)).reshape(n_boot, m, m) - cen0[:, :, None] * (W @ sfS)[:, None, :]
        # B*ᵀ = P X_w: tr(B*SB*ᵀ) = ‖H P X_w‖² and tr(B*S_zt) = ⟨P, X_w S_ztᵀ⟩ (P symmetric)
        fit_num = fitq - 2 * np.einsum("bij,bij->b", P, XSzt) + fit_const
        cb = 2 * self._gradient_terms(yf, Yfb, sfY, YB, zb) / den  # (g, n_boot)
        reps, se_reps = np.empty(n_boot), np.empty(n_boot)
        for i in range(n_boot):
            held_num, held_den = self._held(draws[i, 1])
            reps[i] = fit_num[i] / den + (held_num / held_den - plug if held_den > 0 else 0.0)
            se_reps[i] = np.sqrt(float(W[i] @ (cb[:, i] * cb[:, i])) * g / (g - 1)
                                 + self._held_variance(draws[i, 1])[0])
        return reps, se_reps

    def error(self, n_boot: int = 200, seed: int = 0, ci: float = 0.95, float32: bool | None = None) -> GroupedError:
        """The bias-corrected data-weighted error with its basic group-bootstrap interval (see the module).
        ``float32``: the precision of the bootstrap sweep's products (None: float32 where the rounding bound allows
        it, see :data:`FLOAT32_ROUNDING`; the estimate, bias and every m × m step are float64 either way)."""
        if self.hn.sum() < 2 or self.n.sum() <= self.m + 1:
            raise ShapeError("need training rows beyond the features + 1 and at least 2 held-out rows")
        g = self.n_groups
        ones = np.ones(g)
        num, den = self._held(ones)
        if not den > 0:
            raise ShapeError("the reference's outputs have no variance on the held-out rows")
        B = self.coef()
        k = self.hn.sum()
        zbar, tbar = self.hz / k, self.ht.sum(axis=0) / k
        S = self.hzz / k - np.outer(zbar, zbar)  # held-out score covariance
        Szt = self.hzt / k - np.outer(zbar, tbar)
        ntr = self.n.sum()
        zb, fb = self.sz.sum(axis=0) / ntr, self.sf.sum(axis=0) / ntr
        G = self.zz.sum(axis=0) - ntr * np.outer(zb, zb)
        Ginv = np.linalg.pinv(G, hermitian=True)
        zfB = np.matmul(self.zf, B)  # (g, m, m), shared by the bias and the replicates
        bias, amp = self._bias(S, B, zfB)
        plug = num / den
        corrected = (num - bias) / den
        # the analytic (cluster-robust delta-method) standard error, at the estimate and per replicate, for the
        # bootstrap-t "none" test: de = 2⟨Γ, dB⟩/den with Γ = B S − S_tzᵀ the gradient and dB = Σ_g (G̃⁻¹u_g)ᵀ, so
        # V_fit = g/(g − 1) Σ_g (2⟨G̃⁻¹Γᵀ, u_g⟩/den)², plus the held-out groups' ratio-of-means variance. A
        # replicate re-evaluates the gradient at its B* (the spread's main dependence: a small gradient, a small
        # spread) with the groups' u_g under the full-data fit, weighted by its counts, and the held-out part with
        # its held-out counts (u_g at every B* would cost O(g m² d_out) per replicate)
        Gam = B @ S - Szt.T
        c = 2 * self._fit_gradient_terms(Ginv @ Gam.T, B, zb, fb) / den
        v_held, _ = self._held_variance(ones)
        se = float(np.sqrt(float(c @ c) * g / (g - 1) + v_held))
        rng = np.random.default_rng(seed)
        draws = np.empty((n_boot, 2, g))
        for b in range(n_boot):  # training counts w, then held-out counts v, per replicate (the draw order)
            draws[b, 0] = rng.multinomial(g, np.full(g, 1.0 / g))
            draws[b, 1] = rng.multinomial(g, np.full(g, 1.0 / g))
        # the sweep's products in float32 only where their rounding cannot matter: the bound FLOAT32_ROUNDING on a
        # replicate's fit term tr(B*SB*ᵀ) − 2 tr(B*S_zt) (relative to its parts' scale) is at most SINGLE_SHARE of the
        # analytic standard error, and on a replicate's standard error (relative, magnified by the cancellations in
        # Y* = G̃⁻¹(B*S − S_ztᵀ)ᵀ and in u_g) at most SINGLE_SHARE; else float64 (e.g. a surrogate equal to R: 0 spread)
        fit_scale = (abs(float(np.sum((B @ S) * B))) + 2 * abs(float(np.sum(B * Szt.T)))) / den
        y_size = float(np.linalg.norm(Ginv @ Gam.T))
        y_rel = float(np.linalg.norm(Ginv @ Szt)) / y_size if y_size > 0 else math.inf
        single = (FLOAT32_ROUNDING * fit_scale <= SINGLE_SHARE * se
                  and FLOAT32_ROUNDING * amp * max(y_rel, 1.0) <= SINGLE_SHARE) if float32 is None else bool(float32)
        reps, se_reps = self._replicates(draws, B, S, Szt, Ginv, zb, fb, num - bias, plug, den, zfB, single)
        est, lo, hi, sd = _basic(plug, reps, ci, corrected)
        boot = BootstrapResult(estimate={"R": plug}, bias_corrected={"R": est}, low={"R": lo}, high={"R": hi},
                               std={"R": sd}, samples={"R": reps}, ci=float(ci),
                               method="basic, analytic bias (cluster-robust), row-group bootstrap",
                               standard_error={"R": se}, se_samples={"R": se_reps})
        return GroupedError(plug_in=plug, estimate=est, bias=bias / den, low=max(lo, 0.0), high=max(hi, 0.0), std=sd,
                            ci=float(ci), n_boot=int(n_boot), n_groups=g,
                            method=f"cluster-robust bias over {g} row groups; basic interval from {n_boot} group-"
                                   "bootstrap replicates (training and held-out groups resampled)", boot=boot,
                            sweep="float32" if single else "float64")
