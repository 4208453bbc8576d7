"""The global linear surrogate of a model: streaming least squares with a conditioning check.

A model's surrogate is the least-squares linear map C, c with ``outputs ≈ inputs @ C.T + c``
(:class:`LinearSurrogate`). The guide page "The inverse-operator study" says why a good network's surrogate approaches
the Wiener estimator, not A⁻¹.

Example:
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); M = rng.normal(size=(2, 3))
    >>> sur = LinearSurrogate().fit(X, X @ M.T + 1.0)
    >>> bool(np.allclose(sur.coef_, M)), sur.coef_.shape
    (True, (2, 3))
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from linlens.errors import ConfigError, EmptyInputError, NotFittedError, NumericalWarning, ShapeError
from linlens.linalg import (
    REFINE_THRESHOLD,
    GramAccumulator,
    LstsqSolution,
    TSQRAccumulator,
    _solve_gram,
    solver_policy,
)
from linlens.nn import resolve_device
from linlens.probing import probe_model
from linlens.scale import align_rows, dask_accumulate, is_dask
from linlens.validation import as_array, is_torch

__all__ = ["LinearSurrogate", "r2_scores", "r2_from_sums", "reduced_rank_regression"]

_SOLVERS = ("auto", "gram", "qr", "svd")
_CHUNK = 65536  # rows per pass in batch fits: bounds the extra memory to a few chunk copies


class LinearSurrogate:
    """Least-squares linear map from inputs to outputs: ``Y ≈ X @ coef_.T + intercept_``.

    Solvers: "gram" accumulates the centred Gram matrix in one pass and solves by Cholesky (fast; error
    grows like κ(X)²); "qr" streams the R factor of [X | Y] (TSQR; stable at any κ); "svd" uses the same R
    with an SVD solve (minimum norm for rank-deficient designs); "auto" takes the Gram route and, in a
    batch ``fit``, refines it with extra passes when κ(X) > 1e5 or switches to QR when κ(X) > 1e7. In
    ``partial_fit`` the data is gone after each call, so "auto" cannot refine: it warns
    (:class:`NumericalWarning`) when κ(X) > 1e5 and suggests solver="qr".

    A design with fewer samples than features (or collinear columns) and α = 0 gets the minimum-norm
    least-squares solution with a :class:`NumericalWarning`.

    Arguments:
        fit_intercept: fit the offset ``intercept_`` (data are centred).
        alpha: ridge penalty α‖coef‖_F² (not applied to the intercept).
        solver: "auto", "gram", "qr" or "svd".

    Attributes:
        coef_: (d_out, d_in). A 1-D ``Y`` gives d_out = 1 (and 1-D predictions).
        intercept_: (d_out,).
        n_samples_seen_: rows used.
        n_features_in_: d_in.
        condition_number_: κ₂ of the centred design (raw design without intercept).
        rank_: numerical rank of that design.
        solver_: route actually used ("gram", "gram+refine", "qr", "svd", "min-norm").
        outputs_mean_: (d_out,) mean of Y.

    Example:
        >>> X = np.array([[0.0], [1.0], [2.0]]); Y = 3 * X[:, 0] + 1
        >>> sur = LinearSurrogate().fit(X, Y)
        >>> np.round(sur.coef_, 12).tolist(), np.round(sur.intercept_, 12).tolist(), sur.predict([[4.0]]).round(9)
        ([[3.0]], [1.0], array([13.]))
    """

    def __init__(self, fit_intercept: bool = True, alpha: float = 0.0, solver: str = "auto"):
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.solver = solver

    # ------------------------------------------------------------------------------------------- checks
    def _check_params(self) -> float:
        if self.solver not in _SOLVERS:
            raise ConfigError(f"solver must be one of {', '.join(_SOLVERS)}; got {self.solver!r}")
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            raise ConfigError(f"alpha must be a non-negative number; got {self.alpha!r}") from None
        if not np.isfinite(alpha) or alpha < 0:
            raise ConfigError(f"alpha must be a non-negative finite number; got {self.alpha!r}")
        return alpha

    def _validate(self, X: Any, Y: Any, finite: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
        x = as_array(X, "X", ndim=2, finite=finite)
        y = as_array(Y, "Y", ndim=(1, 2), finite=finite)
        if x.shape[0] != y.shape[0]:
            raise ShapeError(f"X and Y must have the same number of rows; got X {x.shape} and Y {y.shape}")
        one_d = y.ndim == 1
        return x, (y[:, None] if one_d else y), one_d

    def _set(self, sol: LstsqSolution, acc: Any) -> None:
        self.coef_ = sol.coef
        self.intercept_ = sol.intercept
        self.condition_number_ = float(sol.condition_number)
        self.rank_ = int(sol.rank)
        self.solver_ = sol.solver
        self.n_samples_seen_ = int(acc.n)
        self.n_features_in_ = int(acc.d_in)
        self.outputs_mean_ = acc.mean_y.copy()

    # -------------------------------------------------------------------------------------------- fitting
    def fit(self, X: Any, Y: Any) -> LinearSurrogate:
        """Fit on all rows at once (chunked passes; memory beyond the data is a few chunks).

        Arguments:
            X: inputs (n_samples, d_in), numpy, torch (any device; statistics in float64 on the CPU) or a
                ``dask.array`` with rows chunked (per-block statistics on the workers, reduced by merge;
                Y is rechunked to X's row blocks). A block with NaN/Inf raises NonFiniteError naming it.
            Y: outputs (n_samples, d_out) or (n_samples,).

        Returns:
            self.
        """
        alpha = self._check_params()
        for attr in ("_acc", "_acc_solver"):
            self.__dict__.pop(attr, None)
        if is_dask(X) or is_dask(Y):
            return self._fit_dask(X, Y, alpha)
        if is_torch(X) and is_torch(Y) and self.solver in ("auto", "gram"):
            # Gram pass on the tensors' device (CUDA or CPU); only a κ above 1e5 with "auto" needs the rows
            # again, and then they are copied to the CPU for refinement / TSQR below
            if X.ndim != 2 or X.shape[0] == 0:
                raise (EmptyInputError if X.ndim == 2 else ShapeError)(
                    f"X must be a non-empty (n_samples, d_in) tensor; got shape {tuple(X.shape)}")
            acc = _accumulate(GramAccumulator(), X, Y)
            kappa, choice = self._policy(acc, "many")
            if choice.method == "gram":
                self._one_d = Y.ndim == 1
                self._set(acc.solve(alpha, self.fit_intercept), acc)
                self._acc, self._acc_solver = acc, self.solver  # a later partial_fit continues from here
                return self
        x, y, one_d = self._validate(X, Y, finite=False)  # the accumulators check finiteness
        if self.solver in ("qr", "svd"):
            acc = _accumulate(TSQRAccumulator(), x, y)
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver)
        else:
            acc = _accumulate(GramAccumulator(), x, y)
            kappa, choice = self._policy(acc, "many")
            if choice.method == "gram":
                sol = acc.solve(alpha, self.fit_intercept)
            else:
                sol = None
                if choice.method == "refine":
                    sol = _refine(acc, x, y, alpha, self.fit_intercept, kappa)
                if sol is None:
                    acc = _accumulate(TSQRAccumulator(), x, y)
                    sol = acc.solve(alpha, self.fit_intercept, method="qr")
        self._one_d = one_d
        self._set(sol, acc)
        self._acc, self._acc_solver = acc, self.solver  # a later partial_fit continues from here
        return self

    def _policy(self, acc: GramAccumulator, passes: str) -> tuple[float, Any]:
        """(κ, choice): the condition number of the accumulated design and the one solver policy's choice for it
        (:func:`linlens.linalg.solver_policy`); warns when the choice is a Gram solve the policy flags."""
        kappa = acc.condition_number(self.fit_intercept)
        choice = solver_policy(kappa, self.solver, passes)
        if choice.method == "gram" and choice.warn:
            _warn_gram(kappa, streaming=False)
        return kappa, choice

    def _fit_dask(self, X: Any, Y: Any, alpha: float) -> LinearSurrogate:
        """``fit`` for dask arrays: per-block partial statistics on the workers, merged in a tree.

        "auto" takes the Gram route and, when κ(X) > 1e5 (where the in-memory fit refines), makes one more
        pass over the blocks with TSQR instead of several refinement passes.
        """
        Xd, Yd, one_d = align_rows(X, Y)
        if self.solver in ("qr", "svd"):
            acc = dask_accumulate(Xd, Yd, "qr")
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver)
        else:
            acc = dask_accumulate(Xd, Yd, "gram")
            if acc.n == 0:
                raise EmptyInputError(f"X is empty (shape {Xd.shape})")
            _, choice = self._policy(acc, "one")  # each pass over the blocks is costly
            if choice.method == "gram":
                sol = acc.solve(alpha, self.fit_intercept)
            else:
                acc = dask_accumulate(Xd, Yd, "qr")
                sol = acc.solve(alpha, self.fit_intercept, method="qr")
        self._one_d = one_d
        self._set(sol, acc)
        return self

    def fit_statistics(self, acc: GramAccumulator | TSQRAccumulator, one_d: bool = False) -> LinearSurrogate:
        """Fit from streaming statistics accumulated elsewhere (batches of a model's outputs, Dask workers): a
        :class:`~linlens.linalg.TSQRAccumulator` is solved by QR (SVD with ``solver="svd"``), a
        :class:`~linlens.linalg.GramAccumulator` by the Gram solve, warned above κ = 1e5 (the rows are not here
        to refine; :func:`linlens.linalg.solver_policy` with ``passes="one"`` says when to accumulate TSQR instead).

        Arguments:
            acc: merged statistics of inputs (n, d_in) and outputs (n, d_out).
            one_d: the outputs were 1-D (predict then returns 1-D).

        Returns:
            self.

        Example:
            >>> from linlens.linalg import GramAccumulator
            >>> x = np.arange(8.0).reshape(4, 2) ** 2; acc = GramAccumulator().update(x, x @ [[1.0], [2.0]] + 3)
            >>> s = LinearSurrogate().fit_statistics(acc); s.coef_.round(8).tolist(), s.intercept_.round(8).tolist()
            ([[1.0, 2.0]], [3.0])
        """
        alpha = self._check_params()
        if isinstance(acc, TSQRAccumulator):
            sol = acc.solve(alpha, self.fit_intercept, method="svd" if self.solver == "svd" else "qr")
        else:
            kappa = acc.condition_number(self.fit_intercept)
            if solver_policy(kappa, "auto", "none").warn:
                _warn_gram(kappa, streaming=True)
            sol = acc.solve(alpha, self.fit_intercept)
        self._one_d = one_d
        self._set(sol, acc)
        return self

    def partial_fit(self, X: Any, Y: Any) -> LinearSurrogate:
        """Add a chunk of rows and refit; the result equals ``fit`` on the concatenation of all chunks.

        Arguments:
            X: inputs (m, d_in), numpy or torch.
            Y: outputs (m, d_out) or (m,).

        Returns:
            self.
        """
        alpha = self._check_params()
        if is_torch(X) and is_torch(Y) and self.solver in ("auto", "gram"):  # reduced on the tensors' device
            if X.ndim != 2:
                raise ShapeError(f"X must be 2-D (m, d_in); got shape {tuple(X.shape)}")
            x, y, one_d = X, Y, Y.ndim == 1
        else:
            x, y, one_d = self._validate(X, Y, finite=False)  # the accumulators check finiteness
        acc = self.__dict__.get("_acc")
        if acc is not None and self.__dict__.get("_acc_solver") != self.solver:
            raise ConfigError(
                f"solver changed from {self._acc_solver!r} to {self.solver!r} between partial_fit calls"
            )
        if acc is None:
            acc = TSQRAccumulator() if self.solver in ("qr", "svd") else GramAccumulator()
            self._acc, self._acc_solver = acc, self.solver
            self._one_d = one_d
        _accumulate(acc, x, y)
        if acc.n == 0:
            raise EmptyInputError(f"X is empty (shape {x.shape})")
        if isinstance(acc, TSQRAccumulator):  # "auto" lands here when fit fell back to TSQR
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver if self.solver in ("qr", "svd") else "qr")
        else:
            kappa = acc.condition_number(self.fit_intercept)
            if solver_policy(kappa, "auto", "none").warn:  # the rows are gone: Gram, warned
                _warn_gram(kappa, streaming=True)
            sol = acc.solve(alpha, self.fit_intercept)
        self._set(sol, acc)
        return self

    @classmethod
    def from_model(
        cls,
        model: Any,
        inputs: Any,
        batch_size: int = 4096,
        device: Any = "auto",
        fit_intercept: bool = True,
        alpha: float = 0.0,
        solver: str = "auto",
    ) -> LinearSurrogate:
        """Probe a torch model on ``inputs`` in batches and fit its linear surrogate by streaming.

        The model runs in eval mode under ``torch.no_grad()`` in its own dtype on ``device`` (its training
        flag is restored afterwards); outputs are accumulated in float64.

        Arguments:
            model: a callable torch module (inputs (b, d_in) → outputs (b, d_out)).
            inputs: array or tensor (n_samples, d_in), or an iterable of such batches.
            batch_size: rows per model call when ``inputs`` is one array.
            device: torch device (or "auto").
            fit_intercept: see :class:`LinearSurrogate`.
            alpha: see :class:`LinearSurrogate`.
            solver: see :class:`LinearSurrogate`.

        Returns:
            The fitted surrogate; ``outputs_mean_`` holds the mean model output.

        Example:
            >>> import torch
            >>> lin = torch.nn.Linear(3, 2).double()
            >>> sur = LinearSurrogate.from_model(lin, np.random.default_rng(0).normal(size=(50, 3)))
            >>> bool(np.allclose(sur.coef_, lin.weight.detach().numpy()))
            True
        """
        sur = cls(fit_intercept=fit_intercept, alpha=alpha, solver=solver)
        sur._check_params()
        # "auto": probe_model keeps the model where it is (it never moves it); a named device is checked here
        dev = device if device is None or (isinstance(device, str) and device == "auto") else resolve_device(device)
        for _, xb, F in probe_model(model, inputs, batch_size=batch_size, device=dev):
            sur.partial_fit(xb, F)
        if not hasattr(sur, "coef_"):
            raise EmptyInputError("inputs is empty: no batches to probe the model with")
        return sur

    # ----------------------------------------------------------------------------------------- prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this LinearSurrogate is not fitted yet; call fit or partial_fit first")

    def predict(self, X: Any) -> Any:
        """Predict outputs (n_samples, d_out) (or (n_samples,) after a 1-D fit) in the input's type.

        Arguments:
            X: inputs (n_samples, d_in), numpy or torch (the result keeps the tensor's device and dtype).
        """
        self._check_fitted()
        if is_torch(X):
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ShapeError(f"X must be (n_samples, {self.n_features_in_}); got {tuple(X.shape)}")
            C = torch.as_tensor(self.coef_, device=X.device)
            b = torch.as_tensor(self.intercept_, device=X.device)
            out = X.to(torch.float64) @ C.T + b
            out = out.to(X.dtype) if X.is_floating_point() else out
            return out[:, 0] if self._one_d else out
        x = as_array(X, "X", ndim=2, allow_empty=True)
        if x.shape[1] != self.n_features_in_:
            raise ShapeError(f"X must be (n_samples, {self.n_features_in_}); got {x.shape}")
        out = x @ self.coef_.T + self.intercept_
        return out[:, 0] if self._one_d else out

    def score(self, X: Any, Y: Any) -> float:
        """Coefficient of determination R², pooled over outputs (:func:`r2_scores`; scikit-learn's
        ``r2_score(..., multioutput="variance_weighted")``): the fraction of the outputs' total variance that
        the surrogate explains. Per-output values: ``r2_scores(Y, self.predict(X))[1]``.
        """
        self._check_fitted()
        x, y, _ = self._validate(X, Y)
        pred = self.predict(x)
        pred = pred[:, None] if pred.ndim == 1 else pred
        if y.shape[1] != pred.shape[1]:
            raise ShapeError(f"Y must have {pred.shape[1]} outputs; got {y.shape[1]}")
        return r2_scores(y, pred)[0]

    def __repr__(self) -> str:
        return f"LinearSurrogate(fit_intercept={self.fit_intercept!r}, alpha={self.alpha!r}, solver={self.solver!r})"



def _accumulate(acc: Any, x: np.ndarray, y: np.ndarray) -> Any:
    for start in range(0, max(x.shape[0], 1), _CHUNK):
        acc.update(x[start : start + _CHUNK], y[start : start + _CHUNK])
    return acc


def _warn_gram(kappa: float, streaming: bool) -> None:
    extra = "solver='qr' (TSQR) streams stably" if streaming else "solver='auto' or 'qr' refines or uses QR"
    warnings.warn(
        f"design condition number κ ≈ {kappa:.2g} > {REFINE_THRESHOLD:.0e}: the Gram (normal-equation) solve "
        f"may have lost about {2 * np.log10(max(kappa, 1)):.0f} of 16 digits; {extra}",
        NumericalWarning,
        stacklevel=3,
    )


def _refine(
    acc: GramAccumulator, x: np.ndarray, y: np.ndarray, alpha: float, fit_intercept: bool, kappa: float,
    max_passes: int = 6,
) -> LstsqSolution | None:
    """Iterative refinement of the normal equations (one extra pass over the data per step).

    Each pass contracts the error by about κ²·eps; iteration stops when the update is at the level
    κ·eps that a backward-stable solver attains. Returns None if it does not get there within
    ``max_passes`` or stops contracting (the caller then uses QR).
    """
    G, B = acc.gram(fit_intercept)
    coef_t, rank, _ = _solve_gram(G, B, alpha)
    if rank < G.shape[0]:
        return None
    mx = acc.mean_x if fit_intercept else 0.0
    my = acc.mean_y if fit_intercept else 0.0
    last = np.inf
    for _ in range(max_passes):
        grad = -alpha * coef_t
        for s in range(0, x.shape[0], _CHUNK):
            xc = x[s : s + _CHUNK] - mx
            r = (y[s : s + _CHUNK] - my) - xc @ coef_t
            grad += xc.T @ r
        delta = _solve_gram(G, grad, alpha)[0]
        coef_t = coef_t + delta
        change = np.linalg.norm(delta) / max(np.linalg.norm(coef_t), 1e-300)
        if change < max(1e-13, 100 * kappa * np.finfo(float).eps):  # at the attainable accuracy ~κ·eps
            intercept = acc.mean_y - acc.mean_x @ coef_t if fit_intercept else np.zeros(acc.d_out)
            return LstsqSolution(coef_t.T.copy(), intercept, kappa, rank, "gram+refine")
        if change > 0.5 * last:  # not contracting
            return None
        last = change
    return None




def r2_from_sums(sse: Any, sst: Any) -> tuple[float, np.ndarray]:
    """R² from per-output sums of squares: the one rule of linlens (every route and estimator calls it).

    Per output j: 1 − SSEⱼ/SSTⱼ; a constant output (SSTⱼ = 0) scores 1 when predicted exactly, else 0. Pooled:
    1 − Σⱼ SSEⱼ / Σⱼ SSTⱼ over the outputs with SSTⱼ > 0 — the fraction of the outputs' total variance explained,
    each output weighted by its variance, so constant outputs weigh nothing (when every output is constant, the
    mean of their 1s and 0s). This is scikit-learn's ``r2_score(..., multioutput="variance_weighted")`` (per output:
    ``"raw_values"``). Streaming routes pass sums accumulated over batches; scored on held-out rows by a
    surrogate fitted on the others, it is the held-out R².

    Arguments:
        sse: (d_out,) Σᵢ (Yᵢⱼ − predᵢⱼ)².
        sst: (d_out,) Σᵢ (Yᵢⱼ − Ȳⱼ)² on the same rows.

    Returns:
        (pooled R², per-output R² (d_out,)).

    Example:
        >>> pooled, per = r2_from_sums([1.0, 2.0, 0.0], [4.0, 4.0, 0.0])
        >>> pooled, per.tolist()
        (0.625, [0.75, 0.5, 1.0])
    """
    sse = np.atleast_1d(np.asarray(sse, dtype=np.float64))
    sst = np.atleast_1d(np.asarray(sst, dtype=np.float64))
    if sse.shape != sst.shape:
        raise ShapeError(f"sse and sst must have one value per output; got shapes {sse.shape} and {sst.shape}")
    ok = sst > 0
    per = np.where(ok, 1 - sse / np.where(ok, sst, 1.0), np.where(sse == 0, 1.0, 0.0))
    pooled = float(1 - sse[ok].sum() / sst[ok].sum()) if ok.any() else float(per.mean())
    return pooled, per


def r2_scores(Y: np.ndarray, pred: np.ndarray) -> tuple[float, np.ndarray]:
    """R² of predictions (:func:`r2_from_sums`, the one rule): pooled over outputs, with the per-output values.

    Arguments:
        Y: targets (n_samples, d_out).
        pred: predictions (n_samples, d_out).

    Returns:
        (pooled R², per-output R² (d_out,)).

    Example:
        >>> Y = np.array([[0.0, 0.0], [100.0, 1.0], [200.0, 0.0]]); P = Y * [1.0, 0.0]
        >>> pooled, per = r2_scores(Y, P); round(pooled, 6), per.round(6).tolist()
        (0.99995, [1.0, -0.5])
    """
    Y = np.asarray(Y, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    pred = pred[:, None] if pred.ndim == 1 else pred
    if Y.shape != pred.shape:
        raise ShapeError(f"targets and predictions must have the same shape; got {Y.shape} and {pred.shape}")
    return r2_from_sums(np.sum((Y - pred) ** 2, axis=0), np.sum((Y - Y.mean(axis=0)) ** 2, axis=0))


def reduced_rank_regression(X: Any, Y: Any, rank: int) -> np.ndarray:
    """The best linear map of rank ≤ r in least squares (no intercept): argmin ‖Y − X Bᵀ‖_F, rank B ≤ r.

    Closed form (Izenman 1975): with the least-squares map B₀ and the top-r right singular vectors V_r of the
    fitted values X B₀ᵀ, B = V_r V_rᵀ B₀. It is the optimum a linear network with an r-wide bottleneck can reach,
    the fair baseline for its training error (the full-rank least-squares map is out of its reach).

    References:
        A. J. Izenman. Reduced-rank regression for the multivariate linear model. J. Multivariate Analysis 5
        (1975).

    Arguments:
        X: inputs (n_samples, d_in).
        Y: targets (n_samples, d_out).
        rank: r ≥ 0.

    Returns:
        B (d_out, d_in) with ``Y ≈ X @ B.T``.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(500, 4))
        >>> B = reduced_rank_regression(X, X @ np.diag([3.0, 2.0, 1.0, 0.5]), 2)
        >>> int(np.linalg.matrix_rank(B)), np.round(np.diag(B), 2).tolist()  # the two strongest directions
        (2, [3.0, 2.0, 0.0, 0.0])
    """
    x = as_array(X, "X", ndim=2)
    y = as_array(Y, "Y", ndim=2)
    if len(x) != len(y):
        raise ShapeError(f"X and Y must have the same number of rows; got {len(x)} and {len(y)}")
    if not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ConfigError(f"rank must be a non-negative integer; got {rank!r}")
    B0 = np.linalg.lstsq(x, y, rcond=None)[0].T
    Vt = np.linalg.svd(x @ B0.T, full_matrices=False)[2]
    Vr = Vt[: int(rank)]
    return Vr.T @ (Vr @ B0)
