"""A model whose population surrogate is known in closed form, for checking intervals by simulation.

f(y) = C₀ y + β |G y| on y ~ N(0, Σ_y): |Gy| is even in y and y is symmetric, so E[|Gy| yᵀ] = 0 and the
population least-squares surrogate (with intercept) is exactly C₀, whatever β. The nonlinear part acts as
heteroscedastic, non-Gaussian "noise" around the linear fit — the situation of a trained network. The true
data-weighted error of the surrogate against any reference R is then tr((C₀−R)Σ(C₀−R)ᵀ)/tr(RΣRᵀ).

Used by ``tests/surrogate/test_resampling.py`` (small, default suite) and ``benchmarks/bench_intervals.py``.

Example:
    >>> sim = KnownSurrogate.make(d_in=3, d_out=2, seed=0)
    >>> Y, F = sim.sample(20000, seed=1)
    >>> from linlens.surrogate.estimator import LinearSurrogate
    >>> bool(np.abs(LinearSurrogate().fit(Y, F).coef_ - sim.C0).max() < 0.05)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens.stats import closest_reference
from linlens.surrogate.compare import data_weighted_error
from linlens.surrogate.resampling import bootstrap, corrected_data_weighted_error

__all__ = ["KnownSurrogate"]


@dataclass(frozen=True)
class KnownSurrogate:
    """f(y) = C₀y + β|Gy|, y ~ N(0, LLᵀ): population surrogate C₀ (see the module docstring).

    Arguments:
        C0: (d_out, d_in) the population surrogate.
        G: (d_out, d_in) the nonlinear part's weights.
        L: (d_in, d_in) with Σ_y = L Lᵀ.
        beta: size of the nonlinear part.

    Example:
        >>> sim = KnownSurrogate.make(d_in=3, d_out=2, seed=0)
        >>> sim.true_error(sim.C0), bool(np.allclose(sim.covariance, sim.L @ sim.L.T))  # C₀ is its own surrogate
        (0.0, True)
    """

    C0: np.ndarray
    G: np.ndarray
    L: np.ndarray
    beta: float = 1.0

    @classmethod
    def make(cls, d_in: int = 6, d_out: int = 4, beta: float = 1.0, seed: int = 0) -> KnownSurrogate:
        """Random C₀, G and a correlated Σ_y (seeded)."""
        rng = np.random.default_rng(seed)
        L = rng.normal(size=(d_in, d_in)) / np.sqrt(d_in) + np.eye(d_in)
        return cls(C0=rng.normal(size=(d_out, d_in)), G=rng.normal(size=(d_out, d_in)), L=L, beta=beta)

    @property
    def covariance(self) -> np.ndarray:
        """Σ_y (d_in, d_in)."""
        return self.L @ self.L.T

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n inputs Y (n, d_in) and outputs F = f(Y) (n, d_out)."""
        Y = np.random.default_rng(seed).normal(size=(n, self.L.shape[0])) @ self.L.T
        return Y, Y @ self.C0.T + self.beta * np.abs(Y @ self.G.T)

    def true_error(self, R: np.ndarray) -> float:
        """The population data-weighted error of the surrogate C₀ against R."""
        return data_weighted_error(self.C0, R, covariance=self.covariance)

    def references_at(self, errors: Sequence[float], seed: int = 0) -> list[np.ndarray]:
        """References R_k = C₀ + ε_k E_k whose true data-weighted errors are exactly ``errors`` (each in [0, 1)).

        E_k is random, Σ-orthogonal to C₀ (tr(C₀ Σ E_kᵀ) = 0) and of unit Σ-norm, so the error against R_k is
        ε_k²/(‖C₀‖²_Σ + ε_k²) in closed form: equal errors are an exact tie. Needs C₀ ≠ 0.

        Example:
            >>> sim = KnownSurrogate.make(d_in=3, d_out=2, seed=0)
            >>> [round(sim.true_error(R), 12) for R in sim.references_at([0.2, 0.2, 0.3])]
            [0.2, 0.2, 0.3]
        """
        S = self.covariance
        c0 = float(np.trace(self.C0 @ S @ self.C0.T))
        if c0 <= 0:
            raise ValueError("references_at needs a nonzero population surrogate C₀")
        rng = np.random.default_rng(seed)
        out = []
        for e in errors:
            if not 0 <= e < 1:
                raise ValueError(f"an error of a reference C₀ + εE lies in [0, 1); got {e}")
            E = rng.normal(size=self.C0.shape)
            E -= np.trace(E @ S @ self.C0.T) / c0 * self.C0
            E /= np.sqrt(np.trace(E @ S @ E.T))
            out.append(self.C0 + np.sqrt(e * c0 / (1 - e)) * E)
        return out

    def verdicts(self, references: Mapping[str, np.ndarray], repeats: int, n: int = 200, n_boot: int = 100,
                 seed: int = 0, studentized: bool = True) -> list[str]:
        """The verdict of :func:`linlens.stats.closest_reference` on ``repeats`` independent data sets.

        Each data set: n fit rows and n test rows from the model, the analytic-bias bootstrap of the data-weighted
        errors against ``references`` (the dense study's route), then the verdict. ``studentized``: the errors
        carry their analytic standard errors, so "none" is decided by the bootstrap-t; False: by the multivariate
        t approximation (for comparison).

        Example:
            >>> sim = KnownSurrogate.make(d_in=3, d_out=2, seed=0)
            >>> R1, R2 = sim.references_at([0.05, 0.5])
            >>> sim.verdicts({"R1": R1, "R2": R2}, repeats=2, n_boot=50)
            ['R1', 'R1']
        """
        refs = dict(references)

        def stat(fit: Any, T: np.ndarray) -> dict[str, tuple[float, float]]:
            return {k: corrected_data_weighted_error(fit, R, T, standard_error=studentized) for k, R in refs.items()}

        out = []
        for r in range(repeats):
            Y, F = self.sample(n, seed=seed + 2 * r)
            T, _ = self.sample(n, seed=seed + 2 * r + 1)
            res = bootstrap(Y, F, stat, test=T, n_boot=n_boot, seed=seed + r, bias="analytic")
            out.append(closest_reference(res, list(refs)).verdict)
        return out
