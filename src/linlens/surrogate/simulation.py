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

from dataclasses import dataclass

import numpy as np

from linlens.surrogate.compare import data_weighted_error

__all__ = ["KnownSurrogate"]


@dataclass(frozen=True)
class KnownSurrogate:
    """f(y) = C₀y + β|Gy|, y ~ N(0, LLᵀ): population surrogate C₀ (see the module docstring).

    Arguments:
        C0: (d_out, d_in) the population surrogate.
        G: (d_out, d_in) the nonlinear part's weights.
        L: (d_in, d_in) with Σ_y = L Lᵀ.
        beta: size of the nonlinear part.
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
