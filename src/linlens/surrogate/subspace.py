"""Global linear surrogate restricted to the top-m principal subspace of the inputs, without d×d matrices.

For operators that are not shift-invariant (CT, inpainting) at image sizes where a d×d Gram matrix is out of
reach (d = 65,536: 34 GiB), fit the surrogate on the principal-component scores of the inputs:

    C_m = B V_mᵀ,  B = argmin Σᵢ ‖B V_mᵀ (yᵢ − ȳ) − (f(yᵢ) − f̄)‖² (+ α‖B‖²_F),

with V_m (d_in, m) the top-m right singular vectors of the centred inputs. Memory is O((m + d_out) · m + m · d_in);
the fraction of the inputs' variance left outside the subspace is reported, because the surrogate says nothing
about directions the probes do not excite.

``fit`` (in memory) takes V_m from :func:`linlens.linalg.randomized_svd` (power iterations) and projects
exactly. ``partial_fit`` streams: it keeps a rank-L sketch (L = m + n_oversamples) of the centred inputs, updated
by a truncated SVD of [sketch; new centred rows; mean-correction row] (incremental PCA), and rotates the
outputs' cross-products with the same left factors, so one pass suffices. It is exact when the centred inputs
have rank ≤ L, and otherwise loses the cross-products along the discarded directions.

References:
    Halko, Martinsson, Tropp. Finding structure with randomness (2011). https://arxiv.org/abs/0909.4061
    Ross, Lim, Lin, Yang. Incremental learning for robust visual tracking (2008), incremental PCA with a
    mean update. Brand. Fast low-rank modifications of the thin singular value decomposition (2006).

Example:
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 50))
    >>> sur = SubspaceSurrogate(n_components=3).fit(X, X[:, :5] * 2.0)
    >>> round(sur.outside_variance_fraction_, 10), bool(np.allclose(sur.predict(X), X[:, :5] * 2.0))
    (0.0, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import ConfigError, NotFittedError, ShapeError
from linlens.linalg import pinv_psd, randomized_svd, svd
from linlens.operators import LinearMap
from linlens.surrogate.estimator import r2_scores
from linlens.validation import as_array

__all__ = ["SubspaceSurrogate"]


class SubspaceSurrogate:
    """Linear surrogate outputs ≈ (inputs − mean) V_m Bᵀ + intercept on the top-m principal subspace.

    Arguments:
        n_components: m, the subspace dimension.
        fit_intercept: centre inputs and outputs (as :class:`linlens.LinearSurrogate`).
        alpha: ridge penalty on B (in the score coordinates).
        n_oversamples: extra sketch directions (L = m + n_oversamples) for the randomized/streaming SVD.
        n_iter: power iterations of the randomized SVD in ``fit``.
        seed: seed of the randomized SVD.

    Attributes:
        components_ (m, d_in): V_mᵀ, rows orthonormal. singular_values_ (m,): of the centred inputs.
        coef_subspace_ (d_out, m): B. intercept_ (d_out,). mean_in_ (d_in,), mean_out_ (d_out,).
        total_variance_: Σᵢ ‖yᵢ − ȳ‖² / n. explained_variance_ (m,): variance along each component.
        outside_variance_fraction_: 1 − Σ explained / total (inputs' variance the surrogate never sees).
        r2_: in-sample R² of the outputs. n_samples_.

    Example:
        >>> X = np.random.default_rng(1).normal(size=(100, 20))
        >>> sur = SubspaceSurrogate(n_components=5).fit(X, X @ np.ones((20, 2)))
        >>> sur.components_.shape, sur.coef_subspace_.shape, 0 < sur.outside_variance_fraction_ < 1
        ((5, 20), (2, 5), True)
    """

    def __init__(self, n_components: int = 32, fit_intercept: bool = True, alpha: float = 0.0, n_oversamples: int = 10,
                 n_iter: int = 4, seed: int = 0):
        self.n_components = n_components
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.seed = seed

    def _check_params(self, d_in: int) -> int:
        m = self.n_components
        if not isinstance(m, (int, np.integer)) or not 1 <= m <= d_in:
            raise ConfigError(f"n_components must be an integer in [1, {d_in}]; got {m!r}")
        if self.alpha < 0:
            raise ConfigError(f"alpha must be ≥ 0; got {self.alpha}")
        if not isinstance(self.n_oversamples, (int, np.integer)) or self.n_oversamples < 0:
            raise ConfigError(f"n_oversamples must be a non-negative integer; got {self.n_oversamples!r}")
        return int(m)

    @staticmethod
    def _validate(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_array(X, "inputs", ndim=2)
        y = as_array(Y, "outputs", ndim=(1, 2))
        y = y[:, None] if y.ndim == 1 else y
        if x.shape[0] != y.shape[0]:
            raise ShapeError(f"inputs and outputs must have the same number of rows; got {x.shape} and {y.shape}")
        return x, y

    # ------------------------------------------------------------------ batch fit
    def fit(self, X: Any, Y: Any) -> SubspaceSurrogate:
        """Fit on inputs X (n_samples, d_in) and outputs Y (n_samples, d_out) held in memory; returns self."""
        x, y = self._validate(X, Y)
        m = self._check_params(x.shape[1])
        if m > x.shape[0]:
            raise ConfigError(f"n_components={m} exceeds the number of samples {x.shape[0]}")
        mx = x.mean(0) if self.fit_intercept else np.zeros(x.shape[1])
        my = y.mean(0) if self.fit_intercept else np.zeros(y.shape[1])
        xc, yc = x - mx, y - my
        _, _, Vt = randomized_svd(xc, m, n_oversamples=self.n_oversamples, n_iter=self.n_iter, seed=self.seed)
        Z = xc @ Vt.T
        G, cross = Z.T @ Z, Z.T @ yc  # (m, m), (m, d_out)
        self._set(x.shape[0], mx, my, Vt, G, cross, float(np.sum(xc**2)), float(np.sum(yc**2)))
        self.__dict__.pop("_sketch", None)  # a later partial_fit starts a new stream
        return self

    def fit_statistics(self, n: int, mean_in: np.ndarray, mean_out: np.ndarray, components: np.ndarray,
                       G: np.ndarray, cross: np.ndarray, ss_x: float, ss_y: float) -> SubspaceSurrogate:
        """Set the fitted attributes from statistics streamed elsewhere (``linlens analyze --components``): n rows,
        their means, the components Vt (m, d_in), G = ZᵀZ and cross = Zᵀ(Y − ȳ) of the scores Z = (X − x̄)Vtᵀ,
        and the total sums of squares of the centred inputs and outputs; returns self."""
        self._check_params(components.shape[1])
        if components.shape[0] != self.n_components:
            raise ShapeError(f"components must have {self.n_components} rows; got {components.shape}")
        self._set(n, mean_in, mean_out, components, G, cross, ss_x, ss_y)
        self.__dict__.pop("_sketch", None)
        return self

    def _set(self, n: int, mx: np.ndarray, my: np.ndarray, Vt: np.ndarray, G: np.ndarray, cross: np.ndarray,
             ss_x: float, ss_y: float) -> None:
        m = Vt.shape[0]
        # α = 0: the minimum-norm least-squares B with lstsq's cutoff, by one m³ eigenproblem (pinv_psd; gelsd on
        # d_out right-hand sides took 3.7 s at m = 256, d_out = 16,384)
        Bt = np.linalg.solve(G + self.alpha * np.eye(m), cross) if self.alpha > 0 else pinv_psd(G) @ cross
        self.n_samples_ = int(n)
        self.mean_in_, self.mean_out_ = mx, my
        self.components_ = Vt
        ev = np.diag(G).copy()
        self.singular_values_ = np.sqrt(np.maximum(ev, 0.0))
        self.explained_variance_ = ev / n
        self.total_variance_ = ss_x / n
        self.outside_variance_fraction_ = float(max(0.0, 1.0 - ev.sum() / ss_x)) if ss_x > 0 else 0.0
        self.coef_subspace_ = Bt.T.copy()
        self.intercept_ = my - (mx @ Vt.T) @ Bt if self.fit_intercept else np.zeros(len(my))
        rss = ss_y - 2 * np.sum(Bt * cross) + np.sum(Bt * (G @ Bt))
        self.r2_ = float(1.0 - rss / ss_y) if ss_y > 0 else float("nan")

    # ------------------------------------------------------------------ streaming
    def partial_fit(self, X: Any, Y: Any) -> SubspaceSurrogate:
        """Add a batch of rows (one pass, incremental SVD sketch of rank m + n_oversamples); returns self."""
        x, y = self._validate(X, Y)
        m = self._check_params(x.shape[1])
        L = m + int(self.n_oversamples)
        b = x.shape[0]
        mxb = x.mean(0) if self.fit_intercept else np.zeros(x.shape[1])
        myb = y.mean(0) if self.fit_intercept else np.zeros(y.shape[1])
        xc, yc = x - mxb, y - myb
        ssx, ssy = float(np.sum(xc**2)), float(np.sum(yc**2))
        sk = getattr(self, "_sketch", None)
        if sk is None:
            rows_x, rows_y = [xc], [yc]
            n, mx, my = b, mxb, myb
        else:
            if x.shape[1] != sk["B"].shape[1] or y.shape[1] != sk["G"].shape[1]:
                raise ShapeError(f"batch has {x.shape[1]} inputs and {y.shape[1]} outputs; earlier batches had "
                                 f"{sk['B'].shape[1]} and {sk['G'].shape[1]}")
            n0 = sk["n"]
            n = n0 + b
            c = np.sqrt(n0 * b / n)
            dx, dy = sk["mx"] - mxb, sk["my"] - myb
            rows_x, rows_y = [sk["B"], xc, c * dx[None]], [sk["G"], yc, c * dy[None]]
            ssx += sk["ssx"] + c**2 * float(dx @ dx)
            ssy += sk["ssy"] + c**2 * float(dy @ dy)
            mx = sk["mx"] + (mxb - sk["mx"]) * (b / n)
            my = sk["my"] + (myb - sk["my"]) * (b / n)
        Xs, Ys = np.concatenate(rows_x), np.concatenate(rows_y)
        U, s, Vt = svd(Xs)
        k = min(L, len(s))
        # rotate both blocks with the same left factors: B = S Vᵀ (L, d_in), G = Uᵀ Y (L, d_out)
        self._sketch = {"n": n, "mx": mx, "my": my, "B": s[:k, None] * Vt[:k], "G": U[:, :k].T @ Ys,
                        "ssx": ssx, "ssy": ssy}
        mm = min(m, k)
        sm = s[:mm]
        G = np.diag(sm**2)
        cross = sm[:, None] * self._sketch["G"][:mm]
        self._set(n, mx, my, Vt[:mm], G, cross, ssx, ssy)
        return self

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise NotFittedError("SubspaceSurrogate is not fitted; call fit or partial_fit first")

    def predict(self, X: Any) -> np.ndarray:
        """Outputs (n, d_out) of the surrogate for inputs X (n, d_in)."""
        self._check_fitted()
        x = as_array(X, "inputs", ndim=2)
        if x.shape[1] != self.components_.shape[1]:
            raise ShapeError(f"inputs must have {self.components_.shape[1]} columns; got {x.shape[1]}")
        return (x @ self.components_.T) @ self.coef_subspace_.T + self.intercept_

    def score(self, X: Any, Y: Any) -> float:
        """R² of the surrogate's predictions, pooled over outputs and variance-weighted: the one rule of linlens
        (:func:`linlens.surrogate.r2_from_sums`, as :meth:`LinearSurrogate.score`)."""
        x, y = self._validate(X, Y)
        return r2_scores(y, self.predict(x))[0]

    def as_operator(self) -> LinearMap:
        """The linear part C_m = B V_mᵀ as a :class:`linlens.operators.LinearMap` (never formed densely)."""
        self._check_fitted()
        V, B = self.components_, self.coef_subspace_
        return LinearMap(lambda X: (X @ V.T) @ B.T, lambda Y: (Y @ B) @ V, (V.shape[1],), (B.shape[0],),
                         "low-rank surrogate")

    def __repr__(self) -> str:
        return (f"SubspaceSurrogate(n_components={self.n_components}, fit_intercept={self.fit_intercept}, "
                f"alpha={self.alpha})")
