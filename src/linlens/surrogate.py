"""Global linear surrogates of a model, comparison of two linear operators, and filter factors.

A model's surrogate is the least-squares linear map C, c with ``outputs ≈ inputs @ C.T + c``
(:class:`LinearSurrogate`). :func:`compare_operators` measures how close C is to a reference R (norm and
data-weighted errors, singular spectra, principal angles, matched eigenvalues); :func:`filter_factors`
shows what C does to each singular component of a forward operator A (Φ = Vᵀ C A V). See
``shared/notes/surrogate.md`` for why a good network's surrogate approaches the Wiener estimator, not A⁻¹.

Example:
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); M = rng.normal(size=(2, 3))
    >>> sur = LinearSurrogate().fit(X, X @ M.T + 1.0)
    >>> bool(np.allclose(sur.coef_, M)), sur.coef_.shape
    (True, (2, 3))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from linlens.errors import (
    ConfigError,
    EmptyInputError,
    ModelError,
    NonFiniteError,
    NotFittedError,
    NumericalWarning,
    ShapeError,
)
from linlens.linalg import (
    QR_THRESHOLD,
    REFINE_THRESHOLD,
    GramAccumulator,
    LstsqSolution,
    RankInfo,
    TSQRAccumulator,
    _solve_gram,
    eigenvalue_condition_numbers,
    match_eigenvalues,
    numerical_rank,
    principal_angles,
    svd,
)
from linlens.validation import as_array, is_torch

__all__ = [
    "LinearSurrogate",
    "FilterFactors",
    "filter_factors",
    "OperatorComparison",
    "compare_operators",
    "BootstrapResult",
    "bootstrap",
    "probe_model",
]

_SOLVERS = ("auto", "gram", "qr", "svd")
_CHUNK = 65536  # rows per pass in batch fits: bounds the extra memory to a few chunk copies


def _json(obj: Any) -> Any:
    from linlens.report import json_safe

    return json_safe(obj)


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    return _json({f.name: getattr(obj, f.name) for f in fields(obj)})


# ------------------------------------------------------------------------------------------ the surrogate
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
        from linlens.scale import is_dask

        if is_dask(X) or is_dask(Y):
            return self._fit_dask(X, Y, alpha)
        if is_torch(X) and is_torch(Y) and self.solver in ("auto", "gram"):
            # Gram pass on the tensors' device (CUDA or CPU); only a κ above 1e5 with "auto" needs the rows
            # again, and then they are copied to the CPU for refinement / TSQR below
            if X.ndim != 2 or X.shape[0] == 0:
                raise (EmptyInputError if X.ndim == 2 else ShapeError)(
                    f"X must be a non-empty (n_samples, d_in) tensor; got shape {tuple(X.shape)}")
            acc = _accumulate(GramAccumulator(), X, Y)
            kappa = acc.condition_number(self.fit_intercept)
            if self.solver == "gram" or kappa <= REFINE_THRESHOLD:
                if self.solver == "gram" and REFINE_THRESHOLD < kappa < np.inf:
                    _warn_gram(kappa, streaming=False)
                self._one_d = Y.ndim == 1
                self._set(acc.solve(alpha, self.fit_intercept), acc)
                return self
        x, y, one_d = self._validate(X, Y, finite=False)  # the accumulators check finiteness
        if self.solver in ("qr", "svd"):
            acc = _accumulate(TSQRAccumulator(), x, y)
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver)
        else:
            acc = _accumulate(GramAccumulator(), x, y)
            kappa = acc.condition_number(self.fit_intercept)
            if self.solver == "gram" or kappa <= REFINE_THRESHOLD:
                if self.solver == "gram" and REFINE_THRESHOLD < kappa < np.inf:
                    _warn_gram(kappa, streaming=False)
                sol = acc.solve(alpha, self.fit_intercept)
            else:
                sol = None
                if kappa <= QR_THRESHOLD:
                    sol = _refine(acc, x, y, alpha, self.fit_intercept, kappa)
                if sol is None:
                    acc = _accumulate(TSQRAccumulator(), x, y)
                    sol = acc.solve(alpha, self.fit_intercept, method="qr")
        self._one_d = one_d
        self._set(sol, acc)
        return self

    def _fit_dask(self, X: Any, Y: Any, alpha: float) -> LinearSurrogate:
        """``fit`` for dask arrays: per-block partial statistics on the workers, merged in a tree.

        "auto" takes the Gram route and, when κ(X) > 1e5 (where the in-memory fit refines), makes one more
        pass over the blocks with TSQR instead of several refinement passes.
        """
        from linlens.scale import align_rows, dask_accumulate

        Xd, Yd, one_d = align_rows(X, Y)
        if self.solver in ("qr", "svd"):
            acc = dask_accumulate(Xd, Yd, "qr")
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver)
        else:
            acc = dask_accumulate(Xd, Yd, "gram")
            if acc.n == 0:
                raise EmptyInputError(f"X is empty (shape {Xd.shape})")
            kappa = acc.condition_number(self.fit_intercept)
            if self.solver == "gram" or kappa <= REFINE_THRESHOLD:
                if self.solver == "gram" and REFINE_THRESHOLD < kappa < np.inf:
                    _warn_gram(kappa, streaming=False)
                sol = acc.solve(alpha, self.fit_intercept)
            else:
                acc = dask_accumulate(Xd, Yd, "qr")
                sol = acc.solve(alpha, self.fit_intercept, method="qr")
        self._one_d = one_d
        self._set(sol, acc)
        return self

    def _fit_accumulator(self, acc: GramAccumulator | TSQRAccumulator, one_d: bool = False) -> LinearSurrogate:
        """Set the fitted attributes from merged streaming statistics (e.g. reduced on Dask workers)."""
        alpha = self._check_params()
        if isinstance(acc, TSQRAccumulator):
            sol = acc.solve(alpha, self.fit_intercept, method="svd" if self.solver == "svd" else "qr")
        else:
            kappa = acc.condition_number(self.fit_intercept)
            if REFINE_THRESHOLD < kappa < np.inf:
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
        if isinstance(acc, TSQRAccumulator):
            sol = acc.solve(alpha, self.fit_intercept, method=self.solver)
        else:
            kappa = acc.condition_number(self.fit_intercept)
            if REFINE_THRESHOLD < kappa < np.inf:
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
        device: Any = "cpu",
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
        from linlens.nn import resolve_device

        sur = cls(fit_intercept=fit_intercept, alpha=alpha, solver=solver)
        sur._check_params()
        for _, xb, F in probe_model(model, inputs, batch_size=batch_size, device=resolve_device(device)):
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
            import torch

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
        """Coefficient of determination R², averaged uniformly over outputs (as scikit-learn's r2_score).

        An output with zero variance scores 1 if predicted exactly, else 0.
        """
        self._check_fitted()
        x, y, _ = self._validate(X, Y)
        pred = self.predict(x)
        pred = pred[:, None] if pred.ndim == 1 else pred
        if y.shape[1] != pred.shape[1]:
            raise ShapeError(f"Y must have {pred.shape[1]} outputs; got {y.shape[1]}")
        ss_res = np.sum((y - pred) ** 2, axis=0)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
        return float(np.mean(r2))

    def __repr__(self) -> str:
        return f"LinearSurrogate(fit_intercept={self.fit_intercept!r}, alpha={self.alpha!r}, solver={self.solver!r})"


def probe_model(
    model: Any, inputs: Any, batch_size: int = 4096, device: Any = None
) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    """Run a torch model over ``inputs`` in batches, in eval mode under ``torch.no_grad()``, in the model's
    dtype; yields ``(batch index, inputs (b, d_in), outputs (b, d_out))`` as float64 numpy arrays.

    The one place where linlens calls a user's model to probe it (surrogates, the linearity study, the
    ``analyze`` command and its Dask workers). The model's training flag is restored afterwards.

    Arguments:
        model: a torch callable mapping (batch, d_in) to (batch, d_out) (or (batch,)).
        inputs: an array or tensor (n_samples, d_in), or an iterable of such batches (or (x, y) tuples).
        batch_size: rows per call when ``inputs`` is one array.
        device: where the model runs; default the device of its first parameter (CPU for plain callables).

    Raises:
        ModelError: the model raised (first line of its message, naming the batch) or returned no tensor or
            a wrong shape. NonFiniteError: NaN/Inf in a batch of inputs or outputs (naming batch and rows).

    Example:
        >>> import torch
        >>> [F.shape for _, _, F in probe_model(torch.nn.Linear(3, 2), np.ones((5, 3)), batch_size=2)]
        [(2, 2), (2, 2), (1, 2)]
    """
    import torch

    from linlens.validation import check_finite

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
    if device is None:
        device = params[0].device if params else torch.device("cpu")
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    row = 0
    try:
        for i, batch in enumerate(_batches(inputs, batch_size)):
            rows = f"batch {i}, rows {row}–{row + batch.shape[0] - 1}"
            row += batch.shape[0]
            xb = batch.to(device=device, dtype=dtype)
            try:
                with torch.no_grad():
                    out = model(xb)
            except Exception as exc:  # noqa: BLE001 - any failure of user code is a ModelError, in one line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ModelError(f"the model raised on batch {i} (input shape {tuple(xb.shape)}): "
                                 f"{type(exc).__name__}: {first[:200]}") from None
            if isinstance(out, (tuple, list)) and out and is_torch(out[0]):
                out = out[0]
            if not is_torch(out):
                raise ModelError(f"model must return a tensor; got {type(out).__name__} on batch {i}")
            if out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != xb.shape[0]:
                raise ModelError(f"model output must be (batch, d_out) with batch {xb.shape[0]}; "
                                 f"got {tuple(out.shape)} on batch {i}")
            F = check_finite(out.detach().to("cpu", torch.float64).numpy(), f"model outputs ({rows})")
            yield i, batch.detach().to("cpu", torch.float64).numpy(), F
    finally:
        if was_training and hasattr(model, "train"):
            model.train(was_training)


def _batches(inputs: Any, batch_size: int) -> Iterable[Any]:
    if is_torch(inputs) or isinstance(inputs, np.ndarray):
        if inputs.ndim != 2:
            raise ShapeError(f"inputs must be 2-D (n_samples, d_in); got shape {tuple(inputs.shape)}")
        for start in range(0, inputs.shape[0], batch_size):
            yield _as_batch(inputs[start : start + batch_size], start // batch_size)
        return
    if isinstance(inputs, (list, tuple)) and inputs and np.ndim(inputs[0]) <= 1:
        yield from _batches(np.asarray(inputs, dtype=np.float64), batch_size)
        return
    for i, batch in enumerate(inputs):
        if isinstance(batch, (list, tuple)) and len(batch) and is_torch(batch[0]):  # (x, y) from a DataLoader
            batch = batch[0]
        yield _as_batch(batch, i)


def _as_batch(batch: Any, i: int) -> Any:
    import torch

    if not is_torch(batch):
        a = as_array(batch, f"inputs batch {i}", ndim=2)
        batch = torch.as_tensor(a if a.flags.writeable else a.copy())  # memory maps are read-only
    if batch.ndim != 2:
        raise ShapeError(f"inputs batch {i} must be 2-D (batch, d_in); got shape {tuple(batch.shape)}")
    if batch.is_floating_point() and not torch.isfinite(batch).all():
        raise NonFiniteError(f"inputs batch {i} contains NaN/Inf")
    return batch


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


# ------------------------------------------------------------------------------------------ filter factors
@dataclass(frozen=True)
class FilterFactors:
    """What an estimator C does to each singular component of a forward operator A.

    Φ = Vᵀ C A V with A = U diag(s) Vᵀ: Φ = I for A⁻¹; diag(sᵢ²/(sᵢ² + σ²/λ)) for the Wiener estimator
    (Tikhonov filter factors); 0/1 for truncated SVD.

    Arguments:
        singular_values: sᵢ of A, descending (k,).
        factors: diag Φ (k,).
        leakage: ‖Φ − diag Φ‖_F / ‖Φ‖_F (0 when Φ = 0).
        matrix: Φ (k, k).
    """

    singular_values: np.ndarray
    factors: np.ndarray
    leakage: float
    matrix: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return _dataclass_dict(self)


def filter_factors(C: Any, A: Any) -> FilterFactors:
    """Filter factors φᵢ = (Vᵀ C A V)ᵢᵢ of an estimator C against the forward operator A.

    References:
        Hansen. Rank-Deficient and Discrete Ill-Posed Problems (SIAM, 1998), filter factors of regularized
        inverses.

    Arguments:
        C: estimator (n_x, n_y) mapping data y to x.
        A: forward operator (n_y, n_x) mapping x to y; rectangular or rank-deficient is fine (thin SVD,
            k = min(n_y, n_x); components with sᵢ = 0 get φᵢ = 0).

    Returns:
        :class:`FilterFactors` with (k,) factors and the (k, k) matrix Φ.

    Example:
        >>> A = np.diag([2.0, 0.5])
        >>> filter_factors(np.linalg.inv(A), A).factors.round(12).tolist()
        [1.0, 1.0]
    """
    c = as_array(C, "C", ndim=2)
    a = as_array(A, "A", ndim=2)
    if c.shape != a.T.shape:
        raise ShapeError(f"C must have the shape of Aᵀ {a.T.shape} (C maps y to x, A maps x to y); got C {c.shape}")
    U, s, Vt = svd(a)
    Phi = Vt @ c @ (U * s)  # = Vᵀ C A V since A V = U diag(s)
    d = np.diag(Phi).copy()
    total = np.linalg.norm(Phi)
    leak = float(np.linalg.norm(Phi - np.diag(d)) / total) if total > 0 else 0.0
    return FilterFactors(singular_values=s, factors=d, leakage=leak, matrix=Phi)


# ---------------------------------------------------------------------------------------- compare operators
@dataclass(frozen=True)
class OperatorComparison:
    """How close an operator C is to a reference R (same shape (m, n)).

    Arguments:
        shape: (m, n).
        rel_fro_error: ‖C − R‖_F / ‖R‖_F.
        rel_spectral_error: ‖C − R‖₂ / ‖R‖₂.
        data_weighted_error: E‖(C − R)y‖² / E‖Ry‖² over the probe rows y (None without probes).
        singular_values_C: (min(m, n),) descending.
        singular_values_R: (min(m, n),) descending.
        singular_value_rel_error: |σᵢ(C) − σᵢ(R)| / σᵢ(R) per index (min(m, n),) (inf where σᵢ(R) = 0 ≠ σᵢ(C)).
        log_spectral_distance: RMS over i < k of ln(σᵢ(C)/σᵢ(R)).
        k: number of leading singular directions compared (see :func:`compare_operators`).
        rank_info_C: numerical rank of C with the gap at its cut.
        rank_info_R: numerical rank of R with the gap at its cut.
        left_angles: principal angles (k,) between the top-k left singular subspaces, ascending, radians.
        right_angles: principal angles (k,) between the top-k right singular subspaces.
        eigs_C: (n,) eigenvalues of C (square case, else None), by descending modulus.
        eigs_R: (n,) eigenvalues of R matched to ``eigs_C`` by minimum-cost assignment.
        eig_distances: |eigs_C − eigs_R| (n,).
        eig_condition_C: eigenvalue condition numbers 1/|wᴴv| of C, aligned with ``eigs_C``.
        eig_condition_R: those of R, aligned with ``eigs_R``.
    """

    shape: tuple[int, int]
    rel_fro_error: float
    rel_spectral_error: float
    data_weighted_error: float | None
    singular_values_C: np.ndarray
    singular_values_R: np.ndarray
    singular_value_rel_error: np.ndarray
    log_spectral_distance: float
    k: int
    rank_info_C: RankInfo
    rank_info_R: RankInfo
    left_angles: np.ndarray
    right_angles: np.ndarray
    eigs_C: np.ndarray | None = None
    eigs_R: np.ndarray | None = None
    eig_distances: np.ndarray | None = None
    eig_condition_C: np.ndarray | None = None
    eig_condition_R: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (complex numbers as {"re", "im"}, NaN/Inf as null)."""
        return _dataclass_dict(self)


def _rel(num: float, den: float) -> float:
    if den > 0:
        return float(num / den)
    return 0.0 if num == 0 else float("inf")


def compare_operators(C: Any, R: Any, k: int | None = None, probes: Any = None) -> OperatorComparison:
    """Compare an operator C with a reference R: norms, data-weighted error, spectra, subspaces, eigenvalues.

    Default ``k``: min(rank(C), rank(R)) with the default numerical-rank tolerance (max(shape)·eps·σ_max):
    the largest index at which both spectra are still above their own numerical-zero cut, so the top-k
    subspaces of both operators are well defined; each rank comes with its gap (``rank_info_*``).
    Eigenvalues (square case) are matched by minimum-cost assignment on |λᵢ − μⱼ| and come with their
    condition numbers: for non-normal operators they are unstable, prefer singular values.

    Arguments:
        C: operator (m, n) under test (e.g. a surrogate's ``coef_``).
        R: reference (m, n) (e.g. A⁻¹, A⁺ or the Wiener estimator).
        k: number of leading singular directions for angles and the log-spectral distance.
        probes: optional inputs (n_probes, n) to the operators for the data-weighted error.

    Returns:
        :class:`OperatorComparison`.

    Example:
        >>> R = np.array([[2.0, 1.0], [0.0, 1.0]])
        >>> cmp = compare_operators(R, R)
        >>> cmp.rel_fro_error, cmp.k, cmp.right_angles.round(12).tolist()
        (0.0, 2, [0.0, 0.0])
    """
    c = as_array(C, "C", ndim=2)
    r = as_array(R, "R", ndim=2)
    if c.shape != r.shape:
        raise ShapeError(f"C and R must have the same shape; got C {c.shape} and R {r.shape}")
    m, n = c.shape
    D = c - r
    Uc, sc, Vtc = svd(c)
    Ur, sr, Vtr = svd(r)
    sd = np.linalg.svd(D, compute_uv=False)
    rel_fro = _rel(np.linalg.norm(D), np.linalg.norm(r))
    rel_spec = _rel(sd[0] if len(sd) else 0.0, sr[0] if len(sr) else 0.0)
    dwe = None
    if probes is not None:
        P = as_array(probes, "probes", ndim=2)
        if P.shape[1] != n:
            raise ShapeError(f"probes must be (n_probes, {n}) for operators of shape {c.shape}; got {P.shape}")
        dwe = _rel(np.sum((P @ D.T) ** 2), np.sum((P @ r.T) ** 2))
    info_c = numerical_rank(sc, shape=c.shape)
    info_r = numerical_rank(sr, shape=r.shape)
    if k is None:
        k = min(info_c.rank, info_r.rank)
    elif not isinstance(k, (int, np.integer)) or not 0 <= k <= min(m, n):
        raise ConfigError(f"k must be an integer in [0, {min(m, n)}]; got {k!r}")
    k = int(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        sv_rel = np.where(sr > 0, np.abs(sc - sr) / np.where(sr > 0, sr, 1.0), np.where(sc == sr, 0.0, np.inf))
        logs = np.log(sc[:k]) - np.log(sr[:k])
    lsd = float(np.sqrt(np.mean(logs**2))) if k else 0.0
    left = principal_angles(Uc[:, :k], Ur[:, :k])
    right = principal_angles(Vtc[:k].T, Vtr[:k].T)
    eig = {}
    if m == n:
        ec, cc = eigenvalue_condition_numbers(c)
        er, cr = eigenvalue_condition_numbers(r)
        rows, cols, dist = match_eigenvalues(ec, er)
        eig = dict(eigs_C=ec[rows], eigs_R=er[cols], eig_distances=dist, eig_condition_C=cc[rows],
                   eig_condition_R=cr[cols])
    return OperatorComparison(
        shape=(m, n),
        rel_fro_error=rel_fro,
        rel_spectral_error=rel_spec,
        data_weighted_error=dwe,
        singular_values_C=sc,
        singular_values_R=sr,
        singular_value_rel_error=sv_rel,
        log_spectral_distance=lsd,
        k=k,
        rank_info_C=info_c,
        rank_info_R=info_r,
        left_angles=left,
        right_angles=right,
        **eig,
    )


# ----------------------------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap percentile intervals of a statistic of the refitted surrogate.

    Arguments:
        estimate: statistic on the full data (float, or dict name → float).
        low: lower percentile bound (same structure).
        high: upper percentile bound (same structure).
        samples: (n_boot,) statistic values, or dict name → (n_boot,).
        ci: confidence level.
    """

    estimate: Any
    low: Any
    high: Any
    samples: Any
    ci: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        return _dataclass_dict(self)


def bootstrap(
    X: Any,
    Y: Any,
    statistic: Callable[[np.ndarray, np.ndarray], float | dict[str, float]],
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
    fit_intercept: bool = True,
    alpha: float = 0.0,
) -> BootstrapResult:
    """Resample rows with replacement, refit a :class:`LinearSurrogate`, and take percentile intervals.

    References:
        Efron, Tibshirani. An Introduction to the Bootstrap (1993), percentile intervals.

    Arguments:
        X: inputs (n_samples, d_in).
        Y: outputs (n_samples, d_out).
        statistic: ``statistic(coef (d_out, d_in), intercept (d_out,))`` → float or dict of floats.
        n_boot: number of resamples.
        seed: seed of the resampling.
        ci: confidence level of the two-sided interval.
        fit_intercept: passed to the surrogate.
        alpha: ridge penalty passed to the surrogate.

    Returns:
        :class:`BootstrapResult`.

    Example:
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 1)); Y = 2 * X + 0.1 * rng.normal(size=(100, 1))
        >>> res = bootstrap(X, Y, lambda c, b: float(c[0, 0]), n_boot=50)
        >>> bool(res.low < 2 < res.high)
        True
    """
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer; got {n_boot!r}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1); got {ci!r}")
    sur = LinearSurrogate(fit_intercept=fit_intercept, alpha=alpha)
    x, y, _ = sur._validate(X, Y)
    est = statistic(*_fit_coef(sur, x, y))
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    draws = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        for _ in range(n_boot):
            idx = rng.integers(0, n, size=n)
            draws.append(statistic(*_fit_coef(sur, x[idx], y[idx])))
    q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
    if isinstance(est, dict):
        samples = {key: np.array([float(d[key]) for d in draws]) for key in est}
        lo = {key: float(np.percentile(v, q[0])) for key, v in samples.items()}
        hi = {key: float(np.percentile(v, q[1])) for key, v in samples.items()}
        est = {key: float(v) for key, v in est.items()}
    else:
        samples = np.array([float(d) for d in draws])
        lo, hi = float(np.percentile(samples, q[0])), float(np.percentile(samples, q[1]))
        est = float(est)
    return BootstrapResult(estimate=est, low=lo, high=hi, samples=samples, ci=float(ci))


def _fit_coef(sur: LinearSurrogate, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sur.fit(x, y)
    return sur.coef_, sur.intercept_
