"""What ``linlens analyze`` computes, shared by the in-memory and the Dask routes (one place for each rule).

- **Held-out split of rows**: row i is held out when ``splitmix64(seed, i) mod 5 == 4`` (:func:`holdout_mask`),
  so the split depends on neither ``--batch-size`` nor the route (in memory or on Dask workers).
- **Data-weighted errors** are weighted by the covariance of all the inputs, S_xx / n of the streamed statistics
  (:func:`input_covariance`): no rows are kept.
- **Streaming statistics** per block (:func:`block_stats`): centred accumulators (Gram, or TSQR in a second
  pass) of the training rows and of the held-out rows; merged in any order (:meth:`BlockStats.merge`).
- **Solver policy** (:func:`needs_qr_pass`, :func:`fit_surrogate`): the library's
  :class:`~linlens.surrogate.LinearSurrogate` with its thresholds. One pass accumulates Gram matrices; when
  κ(inputs) ≤ 1e5 the Gram (Cholesky) solve is used, as ``fit`` does. Above, ``fit`` refines with extra
  passes over the data or switches to TSQR; here every pass over the data re-runs the model, so ``analyze``
  makes one more pass that accumulates TSQR factors (stable at any κ) and solves from them, and κ is then
  taken from the TSQR factor (the Gram estimate saturates near 1e8).
- **The error against a reference, with an interval** (:func:`grouped_possible`, :func:`held_grouped`): training
  rows also go, by row group (row index mod :data:`N_GROUPS`), into the sums of a
  :class:`~linlens.surrogate.grouped.GroupedFit` (per-group Gram blocks; the subspace route's statistics with the
  m features = the d_in inputs); after the pass, the held-out rows' inputs (no model call) give the data-weighted
  error of the training fit against R, its cluster-robust bias correction, a row-group bootstrap interval and the
  paired verdict. Its memory is N_GROUPS·d_in·(d_in + d_out) numbers: refused with a stated reason (and the plug-in
  alone reported) beyond ``--max-memory`` or 1 GiB.
- **One R²** (:func:`r2_from_stats` → :func:`linlens.surrogate.r2_from_sums`, the library's one rule): pooled
  over outputs, R² = 1 − Σⱼ SSEⱼ / Σⱼ SSTⱼ with SSTⱼ the sum of squares of output j around its own mean on the
  scored rows (scikit-learn's ``r2_score(..., multioutput="variance_weighted")``); the per-output values
  1 − SSEⱼ/SSTⱼ go to metrics.json. Scored on the
  held-out rows by a surrogate fitted on the other rows, computed exactly from the held-out statistics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linlens._results import JSON_ARRAY_LIMIT
from linlens.errors import NumericalWarning, ShapeError
from linlens.linalg import (
    DEFAULT_MAX_K,
    REFINE_THRESHOLD,
    GramAccumulator,
    TSQRAccumulator,
    default_tol,
    pinv_svd,
    scaled_sq_norm,
    solver_policy,
    svd,
    svd_leading,
)
from linlens.loaders import ARRAY_SUFFIXES, load_array, stored_float_dtype
from linlens.operators import LinearMap, as_operator, image_shape, load_operator, signal_shape
from linlens.report import Report
from linlens.report import figures as figs
from linlens.stats import GainSplit, closest_reference, interval_text, summarize
from linlens.surrogate import LinearSurrogate, compare_operators, filter_factors, r2_from_sums
from linlens.surrogate.compare import leading_filter_factors, leading_whole_pairs
from linlens.surrogate.grouped import GroupedError, GroupedFit
from linlens.validation import check_gram_range, check_memory
from linlens.workflows import study  # the size rule of the references' spectra (one place: the study's)
from linlens.workflows.analyze_options import Route

__all__ = [
    "HOLDOUT_EVERY",
    "R2_DEFINITION",
    "holdout_mask",
    "BlockStats",
    "block_stats",
    "merge_stats",
    "needs_qr_pass",
    "fit_surrogate",
    "r2_from_stats",
    "check_analyze_memory",
    "input_warnings",
    "surrogate_report",
    "r2_and_split",
    "finish_analyze",
    "image_shape",
    "signal_shape",
    "load_inputs",
    "add_route",
    "answer_network_vs_cdata",
    "answer_gain",
    "answer_r2",
    "answer_verdict",
    "load_linear_map",
    "input_covariance",
    "N_GROUPS",
    "grouped_possible",
    "grouped_shift",
    "received_rows",
    "held_grouped",
    "reference_error",
]

HOLDOUT_EVERY = 5  # one row in five is held out
R2_DEFINITION = ("pooled over outputs: 1 − Σⱼ SSEⱼ / Σⱼ SSTⱼ, SSTⱼ around output j's own mean on the scored rows "
                 "(scikit-learn r2_score multioutput='variance_weighted'); per-output values in r2_per_output")
_MASK64 = (1 << 64) - 1


def _splitmix64(idx: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit hash of row indices (splitmix64 finaliser), vectorised; same on every machine."""
    with np.errstate(over="ignore"):
        z = idx.astype(np.uint64) + np.uint64((int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def holdout_mask(start: int, stop: int, seed: int) -> np.ndarray:
    """Which of the rows [start, stop) are held out for R² (about one in five; a function of the row index and
    the seed only).

    Example:
        >>> m = holdout_mask(0, 100_000, seed=0)
        >>> bool(abs(m.mean() - 0.2) < 0.01), bool((holdout_mask(400, 500, 0) == m[400:500]).all())
        (True, True)
    """
    return _splitmix64(np.arange(start, stop, dtype=np.uint64), seed) % np.uint64(HOLDOUT_EVERY) == np.uint64(
        HOLDOUT_EVERY - 1)


#: Row groups (row index mod N_GROUPS) of the grouped statistics behind the intervals (dense, Dask, subspace routes).
N_GROUPS = 32
#: Memory for the grouped statistics when --max-memory is not given.
GROUPED_DEFAULT_BYTES = 2**30


def grouped_possible(d_in: int, d_out: int, max_memory: int | None) -> tuple[bool, str]:
    """Whether the per-group statistics of the interval (N_GROUPS Gram blocks of d_in × (d_in + d_out), twice: the
    partials and their merge) fit in ``max_memory`` (default 1 GiB); (False, why) otherwise.

    Example:
        >>> d = 100; need = 8 * (2 * N_GROUPS + 2) * d * (d + d)  # bytes of the partials and their merge
        >>> grouped_possible(d, d, need)[0], grouped_possible(d, d, need - 1)[0], grouped_possible(4096, 4096, None)[0]
        (True, False, False)
    """
    need = 8.0 * (2 * N_GROUPS + 2) * d_in * (d_in + d_out)
    budget = GROUPED_DEFAULT_BYTES if max_memory is None else max_memory
    if need <= budget:
        return True, ""
    return False, (f"no interval: its per-row-group statistics ({N_GROUPS} groups of d_in × (d_in + d_out) = {d_in} × "
                   f"{d_in + d_out}) need {need / 2**30:.2g} GiB, more than "
                   + ("the 1 GiB allowed by default (raise --max-memory)" if max_memory is None else "--max-memory")
                   + "; --components m gives the error with an interval on the inputs' top-m subspace")


def grouped_shift(rows: np.ndarray) -> np.ndarray:
    """The constant subtracted from every input row before the grouped sums (any common shift cancels in the fit and
    the centred error; it keeps the raw sums from cancelling digits): the mean of the first ≤ 1024 rows, the same
    on every route.

    Example:
        >>> grouped_shift(np.arange(4096.0)[:, None]).tolist()  # the mean of rows 0 … 1023
        [511.5]
    """
    return np.asarray(rows[:1024], dtype=np.float64).reshape(min(len(rows), 1024), -1).mean(axis=0)


def received_rows(rows: np.ndarray, dtype: Any) -> np.ndarray:
    """Input rows as the model receives them (cast to its input dtype, a torch dtype), back in float64.

    Example:
        >>> import torch
        >>> r = received_rows(np.array([[0.1]]), torch.float32)  # what a float32 model sees, back in float64
        >>> r.dtype, bool(r[0, 0] == np.float32(0.1)), bool(r[0, 0] == 0.1)
        (dtype('float64'), True, False)
    """
    import torch

    if dtype is None or dtype == torch.float64:
        return np.asarray(rows, dtype=np.float64)
    return torch.as_tensor(np.asarray(rows)).to(dtype).to(torch.float64).numpy()


def held_grouped(rows: np.ndarray, start: int, seed: int, shift: np.ndarray, B: np.ndarray, R: np.ndarray,
                 d_out: int) -> GroupedFit:
    """Held-out partial of the grouped statistics for a block of inputs (b, d_in) as the model received them, rows
    ``start …``: the training fit's B (d_out, d_in) and R (d_out, d_in) applied to the held-out rows (no model call).

    Example:
        >>> Y = np.random.default_rng(0).normal(size=(500, 2)); R = np.array([[1.0, 0.0], [0.0, 2.0]])
        >>> g = held_grouped(Y, 0, 0, grouped_shift(Y), R, R, 2)  # the fit B equals R: zero error on every row
        >>> int(g.hn.sum()) == int(holdout_mask(0, 500, 0).sum()), float(g.hdd.sum())
        (True, 0.0)
    """
    held = holdout_mask(start, start + len(rows), seed)
    g = GroupedFit(rows.shape[1], d_out, N_GROUPS)
    if held.any():
        Z = rows[held] - shift
        g.update_held(Z, Z @ R.T, B, (start + np.flatnonzero(held)) % N_GROUPS)
    return g


def reference_error(grouped: GroupedFit, n_boot: int | None, seed: int) -> GroupedError | None:
    """The bias-corrected data-weighted error of the training fit against R on the held-out rows, with its
    row-group bootstrap interval (None when R has no variance on the held-out rows).

    Example:
        >>> Y = np.random.default_rng(0).normal(size=(4000, 2)); shift = grouped_shift(Y)
        >>> st = block_stats(Y, 0.9 * Y, 0, seed=0, n=4000, shift=shift)  # the model is 0.9 I, the reference R = I
        >>> g = st.grouped.merge(held_grouped(Y, 0, 0, shift, st.grouped.coef(), np.eye(2), 2))
        >>> e = reference_error(g, 50, seed=0); round(e.plug_in, 8), round(e.estimate, 8)  # ‖0.9 I − I‖²/‖I‖² = 0.01
        (0.01, 0.01)
    """
    if grouped.hn.sum() < 2:
        return None
    try:
        return grouped.error(n_boot=n_boot or 100, seed=seed)
    except ShapeError:
        return None


@dataclass
class BlockStats:
    """Streaming statistics of some rows: accumulators (Gram, or TSQR with ``mode="qr"``) of the training and
    of the held-out rows. Picklable; ``merge`` in any order.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> st.train.n + st.held.n, st.held.n == int(holdout_mask(0, 1000, 0).sum()), st.full().n
        (1000, True, 1000)
    """

    mode: str = "gram"
    train: GramAccumulator | TSQRAccumulator | None = None
    held: GramAccumulator | TSQRAccumulator | None = None
    grouped: GroupedFit | None = None

    def __post_init__(self) -> None:
        make = TSQRAccumulator if self.mode == "qr" else GramAccumulator
        self.train = make() if self.train is None else self.train
        self.held = make() if self.held is None else self.held

    def merge(self, other: BlockStats) -> BlockStats:
        """Fold ``other`` (same mode) into this one; returns self."""
        self.train.merge(other.train)
        self.held.merge(other.held)
        if other.grouped is not None:
            g = other.grouped
            self.grouped = (GroupedFit(g.m, g.d_out, g.n_groups) if self.grouped is None else self.grouped).merge(g)
        self.__dict__.pop("_full", None)
        return self

    def full(self) -> GramAccumulator | TSQRAccumulator:
        """The accumulator of all rows (training + held-out), a new object, remembered until the next merge (so
        that its condition number, asked by the solver policy and by the fit, is computed once)."""
        if "_full" not in self.__dict__:
            self._full = type(self.train)().merge(self.train).merge(self.held)
        return self._full


def merge_stats(a: BlockStats, b: BlockStats) -> BlockStats:
    """A new :class:`BlockStats` holding both (for tree reductions).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> a = block_stats(Y[:400], Y[:400] @ B.T + 1.0, 0, seed=0, n=1000)
        >>> b = block_stats(Y[400:], Y[400:] @ B.T + 1.0, 400, seed=0, n=1000)  # rows keep their index: same split
        >>> m = merge_stats(a, b); m.held.n == st.held.n, bool(np.allclose(m.full().S, st.full().S))
        (True, True)
    """
    return BlockStats(mode=a.mode).merge(a).merge(b)


def block_stats(Yb: np.ndarray, F: np.ndarray, start: int, seed: int, n: int, mode: str = "gram",
                shift: np.ndarray | None = None, into: BlockStats | None = None) -> BlockStats:
    """Statistics of one block: rows ``start …`` of inputs ``Yb`` (b, d_in) and model outputs ``F`` (b, d_out);
    with ``shift`` (:func:`grouped_shift`), also the training rows' grouped sums of the interval. With ``into``
    (same mode), the block is added to those statistics in place and they are returned: the same numbers as
    ``into.merge(block_stats(...))`` without a per-block (d_in + d_out)² partial (0.5 GiB each at d = 4096).

    Values whose squares overflow the Gram matrix (|x| ≥ 1e150) are refused with one line.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> st.mode, round(float(st.held.n) / 1000, 1), st.grouped is None  # about one row in five held out
        ('gram', 0.2, True)
    """
    check_gram_range(Yb, "inputs", start)
    check_gram_range(F, "model outputs", start)
    held = holdout_mask(start, start + len(Yb), seed)
    st = BlockStats(mode=mode) if into is None else into
    st.__dict__.pop("_full", None)
    if (~held).any():
        st.train.update(Yb[~held], F[~held])
    if held.any():
        st.held.update(Yb[held], F[held])
    if shift is not None:
        if st.grouped is None:
            st.grouped = GroupedFit(Yb.shape[1], F.shape[1], N_GROUPS)
        if (~held).any():
            st.grouped.update_train(np.asarray(Yb[~held], dtype=np.float64) - shift, F[~held],
                                    (start + np.flatnonzero(~held)) % N_GROUPS)
    return st


def needs_qr_pass(stats: BlockStats, fit_intercept: bool) -> bool:
    """True when the library's one solver policy (:func:`linlens.linalg.solver_policy`), told that another pass
    is costly (each one re-runs the model), asks for a TSQR pass: κ(inputs) > 1e5 on the Gram pass.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> bad = block_stats(Y * [1.0, 1.0, 1e-7], Y @ B.T, 0, seed=0, n=1000)  # κ ≈ 1e7 > 1e5
        >>> needs_qr_pass(st, True), needs_qr_pass(bad, True)
        (False, True)
    """
    return solver_policy(stats.full().condition_number(fit_intercept), "auto", passes="one").method == "qr"


def check_analyze_memory(d_in: int, d_out: int, batch_size: int, max_memory: int | None) -> None:
    """Refuse before any work when the streaming statistics would not fit: about six (d_in + d_out)² float64
    matrices (two accumulators, their merge, the solve and its workspace) and four copies of a batch.

    Example:
        >>> check_analyze_memory(10, 10, 100, None)  # about 8·(6·20² + 4·100·20) bytes: fine
        >>> check_analyze_memory(10, 10, 100, 1000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.MemoryLimitError: analyze with 10 input and 10 output columns ... needs about ...
    """
    p = d_in + d_out
    need = 8.0 * (6 * p * p + 4 * batch_size * p)
    check_memory(need, f"analyze with {d_in} input and {d_out} output columns ((d_in + d_out)² statistics)",
                 max_memory, alternative="use --components m: the surrogate on the inputs' top-m principal "
                 "subspace, without d × d matrices")


def fit_surrogate(acc: GramAccumulator | TSQRAccumulator, fit_intercept: bool) -> tuple[LinearSurrogate, list[str]]:
    """The surrogate from streamed statistics (Gram accumulators only when κ ≤ 1e5; see :func:`needs_qr_pass`).

    Returns:
        (fitted :class:`LinearSurrogate`, messages of the numerical warnings raised while solving).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> sur, msgs = fit_surrogate(st.full(), fit_intercept=True)
        >>> bool(np.allclose(sur.coef_, B)), bool(np.allclose(sur.intercept_, 1.0)), msgs
        (True, True, [])
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        sur = LinearSurrogate(fit_intercept=fit_intercept).fit_statistics(acc)
    msgs = [str(w.message) for w in caught if issubclass(w.category, NumericalWarning)]
    return sur, msgs


def r2_from_stats(acc: GramAccumulator | TSQRAccumulator, coef: np.ndarray,
                  intercept: np.ndarray) -> tuple[float, np.ndarray]:
    """R² of ``outputs ≈ inputs @ coef.T + intercept`` on the rows summarised by ``acc`` (see the module notes).

    SSEⱼ = (residual scatter)ⱼ + n (ȳⱼ − coefⱼ·x̄ − cⱼ)², the scatter being ‖R [−coefᵀ; I]‖²ⱼ from a centred TSQR
    factor R of [inputs | outputs] (no cancellation beyond that of the residuals themselves) or
    [−coefᵀ; I]ᵀ S [−coefᵀ; I] from the centred Gram matrix S (used only when κ ≤ 1e5); SSTⱼ = its output
    block's diagonal.

    Returns:
        (pooled R², per-output R² (d_out,)) by :func:`linlens.surrogate.r2_from_sums` (the one rule).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> acc = st.full(); round(r2_from_stats(acc, B, np.ones(2))[0], 12)  # the exact map: R² = 1
        1.0
        >>> round(r2_from_stats(acc, np.zeros((2, 3)), acc.mean_y)[0], 12)  # predicting the mean: R² = 0
        0.0
    """
    d = acc.d_in
    if isinstance(acc, TSQRAccumulator):
        W = np.vstack([-coef.T, np.eye(coef.shape[0])])
        R = acc.r_factor(fit_intercept=True)
        s_res, q_res = scaled_sq_norm(R @ W, axis=0)
        scatter = s_res**2 * q_res
        s_tot, q_tot = scaled_sq_norm(R[:, d:], axis=0)
        sst = s_tot**2 * q_tot
    else:
        # diag(Wᵀ S W) = diag(S_yy) − 2 diag(C S_xy) + diag(C S_xx Cᵀ): one BLAS product S_xx Cᵀ (d³), the rest
        # elementwise (a three-operand einsum runs as an unblocked triple loop: minutes at d = 4096)
        Sxy = acc.S[:d, d:]
        sst = np.diag(acc.S)[d:].copy()
        scatter = np.maximum(sst - 2.0 * np.sum(coef.T * Sxy, axis=0) + np.sum(coef.T * (acc.S[:d, :d] @ coef.T),
                                                                                axis=0), 0.0)
    mean_res = acc.mean_y - acc.mean_x @ coef.T - intercept
    return r2_from_sums(scatter + acc.n * mean_res**2, sst)


def input_warnings(full: GramAccumulator | TSQRAccumulator, sur: LinearSurrogate, per_output: np.ndarray,
                   solver_msgs: list[str]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Warnings the report states in a box (and metrics.json lists): too few rows, constant inputs, a
    rank-deficient or ill-conditioned design, constant outputs, numerical warnings of the solve.

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> acc = st.full(); sur, _ = fit_surrogate(acc, True)
        >>> input_warnings(acc, sur, np.ones(2), [])[0]  # a well-posed design: no warning
        []
        >>> few = block_stats(Y[:3], Y[:3] @ B.T, 0, seed=0, n=3).full()
        >>> [w["code"] for w in input_warnings(few, fit_surrogate(few, True)[0], np.ones(2), [])[0]]
        ['underdetermined']
    """
    n, d = full.n, full.d_in
    var = np.diag(full.S)[:d] if isinstance(full, GramAccumulator) else np.sum(full.r_factor(True)[:, :d] ** 2, 0)
    out: list[dict[str, str]] = []
    constant = [int(i) for i in np.flatnonzero(var <= 1e-30 * max(float(var.max()), 1e-300))] if n > 1 else \
        list(range(d))
    need = d + (1 if sur.fit_intercept else 0)
    underdetermined = n < need
    if underdetermined:
        out.append({"code": "underdetermined",
                    "message": f"{n} rows for {d} input features{' and an intercept' if sur.fit_intercept else ''}: "
                               "fewer rows than unknowns, so an affine map fits the model's outputs exactly on these "
                               "rows whatever the model is; R² and the nonlinear fraction say nothing about "
                               "linearity, and C is the minimum-norm solution. Probe with more rows than features."})
    if len(constant) == d:
        out.append({"code": "constant_inputs",
                    "message": "every input column is constant: the surrogate's C is undetermined (set to 0) and "
                               "R² says nothing about the model. Probe with varying inputs."})
    elif constant:
        out.append({"code": "constant_input_columns",
                    "message": f"{len(constant)} input column(s) are constant (first: {constant[:10]}): C is not "
                               "determined along them (minimum-norm, set to 0)."})
    if sur.rank_ < d and not underdetermined and len(constant) < d:
        out.append({"code": "rank_deficient",
                    "message": f"the inputs have numerical rank {sur.rank_} < {d} features (collinear columns): C "
                               "is the minimum-norm solution, determined only on the inputs' span."})
    # fewer rows than unknowns: singular by construction, so κ is rounding noise (finite or not by its sign)
    if sur.condition_number_ > REFINE_THRESHOLD and np.isfinite(sur.condition_number_) and not underdetermined:
        out.append({"code": "ill_conditioned",
                    "message": f"the inputs are ill-conditioned (κ ≈ {sur.condition_number_:.3g} > "
                               f"{REFINE_THRESHOLD:.0e}); the surrogate was solved by TSQR (solver "
                               f"{sur.solver_!r}), accurate to about κ·eps relative."})
    var_out = np.diag(full.S)[d:] if isinstance(full, GramAccumulator) else np.sum(full.r_factor(True)[:, d:] ** 2, 0)
    const_out = [int(j) for j in np.flatnonzero(var_out <= 0)] if n > 1 else list(range(len(var_out)))
    if const_out:
        out.append({"code": "constant_outputs",
                    "message": f"{len(const_out)} model output(s) are constant over the inputs (first: "
                               f"{const_out[:10]}): their R² is 1 if predicted exactly, else 0, and they weigh nothing "
                               "in the pooled R² (scikit-learn's rule)."})
    for m in solver_msgs:
        if not any(w["code"] in ("underdetermined", "rank_deficient", "constant_inputs", "constant_input_columns")
                   for w in out) or "rank" not in m:
            out.append({"code": "numerical", "message": m})
    flags = {"underdetermined": underdetermined, "constant_input_columns": constant,
             "all_inputs_constant": len(constant) == d, "rank_deficient": bool(sur.rank_ < d),
             "constant_outputs": const_out}
    return out, flags


def surrogate_report(title: str, intro: str, full: LinearSurrogate, r2: float, r2_info: dict[str, Any],
                     P: np.ndarray, R: np.ndarray | None, out: Path, force: bool, extra_metrics: dict[str, Any],
                     warn: list[dict[str, str]], image: tuple[int, int] | None = None,
                     route: Route | None = None, err: GroupedError | None = None,
                     err_note: str = "", full_spectrum: bool = False) -> dict[str, Any]:
    """Write the analyze report (warnings box, summary table, comparison with R when given, figures)
    atomically to ``out`` and return the summary. Shared by the in-memory and the Dask routes.

    Arguments:
        full: the surrogate fitted on all rows; r2, r2_info: its one R² and how it was measured.
        P: (d_in, d_in) covariance of the inputs (all rows, from the streamed statistics) for data-weighted
            errors; R: (d_out, d_in) reference or None.
        warn: warnings (code, message) shown in a box at the top of the report and listed in metrics.json.
        image: (H, W) when the inputs are single-channel images: rows of C (and R) and the filter factors are
            also shown as images.
        route: the dispatch's route, stated first in the report and recorded in metrics.json.
        err: the bias-corrected error against R with its interval (:func:`reference_error`), or None with
            ``err_note`` saying why there is none.
        full_spectrum: R's full SVD at any size. Default: the study's size rule
            (:func:`~linlens.workflows.study.reference_n_values`): above REFERENCE_SPECTRUM_MAX_D (1024) inputs or
            outputs, R's leading DEFAULT_MAX_K singular pairs (+ one value) only, and the filter factors on those
            pairs (:func:`~linlens.surrogate.compare.leading_filter_factors`); the report, metrics.json
            (``reference_spectrum``, the comparison's ``spectra``/``omitted``, ``filter_factors.spectrum``) and the
            figures say so, and what needs R's whole spectrum (its rank, the log-spectral distance, the whole
            leakage) is null with the reason. C keeps every singular value either way, as in the study.

    Example:
        >>> import tempfile
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> acc = st.full(); sur, _ = fit_surrogate(acc, True); out = Path(tempfile.mkdtemp()) / "rep"
        >>> s = surrogate_report("t", "intro", sur, 1.0, {"kind": "in-sample", "n_held_out": 0}, input_covariance(acc),
        ...                      None, out, False, {}, [])
        >>> s["d_in"], s["d_out"], round(s["σ_max(C)"], 6) == round(float(np.linalg.norm(B, 2)), 6), out.is_dir()
        (3, 2, True, True)
    """
    C = full.coef_
    n = extra_metrics.get("n_samples", full.n_samples_seen_)
    if R is not None and R.shape != C.shape:
        raise ShapeError(f"reference must be (d_out, d_in) = {C.shape} to match the model; got {R.shape}")
    rep = Report(title)
    if route is not None:
        add_route(rep, route)
    if warn:
        rep.add_heading("⚠ Warnings")
        rep.add_table(["warning", "what it means"], [[w["code"], w["message"]] for w in warn])
    rep.add_text(intro)
    # each d × d operator is factorized once per report; of C the report uses every singular value but only the
    # leading vectors of the principal-angle profile: values without vectors + ARPACK (d = 4096: ~21 + ~3 s, not 35)
    svd_C = svd_leading(C, min(min(C.shape), DEFAULT_MAX_K)) if C.size else svd(C)
    sv = svd_C.s
    summary: dict[str, Any] = {"inputs": n, "d_in": C.shape[1], "d_out": C.shape[0],
                               "R² (pooled, " + r2_info["kind"] + ")": r2,
                               "nonlinear residual fraction": 1 - r2 if np.isfinite(r2) else float("nan"),
                               "solver": full.solver_,
                               "condition number of inputs": full.condition_number_,
                               "σ_max(C)": float(sv[0]) if len(sv) else 0.0,
                               "σ_min(C)": float(sv[-1]) if len(sv) else 0.0}
    if warn:
        summary["warnings"] = ", ".join(w["code"] for w in warn)
    metrics: dict[str, Any] = {**extra_metrics, "r2": r2, "r2_definition": R2_DEFINITION, "r2_split": r2_info,
                               "nonlinear_residual_fraction": 1 - r2 if np.isfinite(r2) else None,
                               # large matrices go to .npy beside metrics.json (a 4096² matrix is ~300 MB of JSON)
                               "coef": C if C.size <= JSON_ARRAY_LIMIT else "surrogate_coef.npy",
                               "intercept": full.intercept_, "singular_values": sv,
                               "solver": full.solver_, "condition_number_inputs": full.condition_number_,
                               "rank_inputs": full.rank_, "warnings": warn}
    rep.add_array("surrogate_coef", C)
    rep.add_answer(answer_r2(r2, int(r2_info.get("n_held_out", 0))))
    if warn:
        rep.add_answer(f"Warnings ({len(warn)}): {', '.join(w['code'] for w in warn)} — read the box below before "
                       "trusting these numbers.")
    spectra = {"C (surrogate)": sv}
    if R is not None:
        svd_R, partial, why_full = _reference_svd(R, full_spectrum)
        cmp = compare_operators(C, R, covariance=P, svd_C=svd_C, svd_R=svd_R)
        angles = (f"k = {cmp.k} (clear gap), largest {np.degrees(cmp.subspaces.max_angle):.3g}°"
                  if cmp.k is not None else "none: no clear spectral gap of both")
        metrics["comparison"] = cmp.to_dict()
        spectra["reference R" + (f" ({cmp.spectra['R']})" if partial else "")] = cmp.singular_values_R
        summary.update({"data-weighted error vs R": cmp.data_weighted_error,
                        "‖C−R‖_F/‖R‖_F": cmp.rel_fro_error, "‖C−R‖₂/‖R‖₂": cmp.rel_spectral_error,
                        "principal angles": angles})
        if partial:
            ff = leading_filter_factors(C, svd_R)
            kf, mn = len(ff.factors), min(R.shape)
            # A = R⁺'s right singular vectors on these indices are R's left ones (A's order: R's reversed)
            Vt_A, r_index = svd_R.U[:, :kf][:, ::-1].T, np.arange(kf, 0, -1)
            why = (f"the size rule REFERENCE_SPECTRUM_MAX_D = {study.REFERENCE_SPECTRUM_MAX_D} (max(d_in, d_out) = "
                   f"{max(R.shape)} > {study.REFERENCE_SPECTRUM_MAX_D}, as in the inverse study): R's leading "
                   f"{svd_R.U.shape[1]} singular pairs and {len(svd_R.s)} values only, not its full SVD; "
                   "--full-spectrum computes every pair")
            pairs = (f"R's leading {kf} of {mn} singular pairs (whole clusters of equal values) = the {kf} smallest "
                     "nonzero singular values of A = R⁺ (for R = A⁻¹: where a regularizing network departs from R)")
            metrics["reference_spectrum"] = {"singular_values": cmp.spectra["R"], "filter_factors": pairs,
                                             "why": why, "full_spectrum_option": "--full-spectrum"}
            metrics["filter_factors"] = {
                **ff.to_dict(), "spectrum": f"{pairs}; entries in A's order (descending σ of A): entry j is R's "
                "singular index r_index[j] (1 = largest)", "r_index": r_index,
                "leakage": None, "leakage_within_computed": ff.leakage,
                "omitted": {"leakage": f"the leakage of the whole Φ needs every singular pair of R; only {kf} of "
                            f"{mn} were computed ({why}); leakage_within_computed is Φ's on those pairs only"}}
            summary["reference R spectrum"] = (f"{cmp.spectra['R']} singular values, filter factors on R's leading "
                                               f"{kf} pairs (size rule above d = {study.REFERENCE_SPECTRUM_MAX_D}; "
                                               "--full-spectrum for all)")
            spectrum_text = (f"Reference spectrum: {why}. So the spectrum of R shown holds {cmp.spectra['R']} values, "
                             f"and the filter factors cover {pairs}. Not reported (null in metrics.json, with the "
                             "reason): R's numerical rank, the log-spectral distance between C and R, the leakage of "
                             "the whole filter-factor matrix.")
            ff_caption = (f"Filter factors with R⁺ as the forward operator A (so R = A⁻¹ gives φ = 1), on {pairs} "
                          f"only ({why}); leakage within those pairs {ff.leakage:.3g}.")
            xlabel = f"position among the {kf} smallest singular values of A = R⁺ (R's leading {kf} of {mn})"
        else:
            svd_A = pinv_svd(svd_R, R.shape)  # A = R⁺ from R's SVD, no new factorization (A itself is not needed)
            ff = filter_factors(C, svd_A=svd_A)
            Vt_A, r_index = svd_A.Vt, None
            metrics["filter_factors"] = ff.to_dict()
            metrics["reference_spectrum"] = {
                "singular_values": cmp.spectra["R"], "filter_factors": "every singular pair of R",
                "why": why_full}
            ff_caption = ("Filter factors with R⁺ as the forward operator A (so R = A⁻¹ gives φ = 1); leakage "
                          f"{ff.leakage:.3g}.")
            xlabel = "singular index i of A"
        if err is not None:
            table = summarize(err.boot)["R"]
            table["low"], table["high"] = err.low, err.high
            verdict = closest_reference(err.boot, ["R"])
            summary["data-weighted error vs R (held-out, bias-corrected)"] = interval_text(table)
            summary["reference R"] = "fixed (given, not resampled)"
            summary["verdict"] = ("no clearer than the zero map" if verdict.verdict == "none"
                                  else "closer to R than the zero map" + (", but far from R" if verdict.far else ""))
            metrics["data_weighted_error_corrected"] = err.to_dict()
            metrics["verdict"] = verdict.to_dict()
            rep.add_answer(f"Against the reference R: data-weighted error E‖(C−R)y‖²/E‖Ry‖² = {err.estimate:.4g} "
                           f"[{err.low:.4g}, {err.high:.4g}] (bias-corrected, {round(err.ci * 100)}% basic interval "
                           f"from {err.n_boot} row-group bootstrap replicates; surrogate fitted on the training rows, "
                           f"error on the held-out rows; 0: C acts as R where your data lies, 1: no closer than the "
                           f"zero map); {answer_verdict(verdict)}. Plug-in over all rows: "
                           f"{cmp.data_weighted_error:.4g} (biased up by C's estimation noise).")
        else:
            metrics["data_weighted_error_corrected"] = None
            metrics["interval_note"] = err_note
            rep.add_answer(f"Against the reference R: data-weighted error E‖(C−R)y‖²/E‖Ry‖² = "
                           f"{cmp.data_weighted_error:.4g} over your inputs (0: C acts as R where your data lies; 1: "
                           f"no closer than the zero map); a plug-in point estimate, biased up: {err_note}.")
        rep.add_answer(f"Principal angles: {angles}; ‖C−R‖_F/‖R‖_F = {cmp.rel_fro_error:.3g} (for an ill-conditioned"
                       " R dominated by its smallest singular values).")
        if partial:
            rep.add_answer(f"R's spectrum: {cmp.spectra['R']} singular values and filter factors on {pairs} (the "
                           f"size rule above d = {study.REFERENCE_SPECTRUM_MAX_D}; --full-spectrum computes all of "
                           "them).")
        rep.answer_next = ("the filter factors (which singular directions of R the surrogate keeps, 1 = as R does), "
                           "then the principal-angle figure.")
        rep.add_heading("Comparison with the reference R")
        rep.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()])
        rep.add_text("The data-weighted error E‖(C−R)y‖²/E‖Ry‖² over your inputs is the headline: it weights "
                     "each direction by how much your data uses it. Frobenius and spectral errors are shown "
                     "but, for ill-conditioned references, are dominated by the tiniest singular values.")
        if partial:
            rep.add_text(spectrum_text)
        rep.add_figure(figs.plot_subspace_angles(cmp.subspaces), "principal_angles",
                       "Largest principal angle between the top-k singular subspaces of C and R against k, with the "
                       "spectral gaps marked; angles are reported only at a clear gap of both ("
                       + (f"k = {cmp.k})." if cmp.k is not None else "none here)."))
        if ff.matrix.size > JSON_ARRAY_LIMIT:
            rep.add_array("filter_factor_matrix", ff.matrix)
            metrics["filter_factors"]["matrix"] = "filter_factor_matrix.npy"
        rep.add_figure(figs.plot_filter_factors({"C": ff}, ff.singular_values, xlabel=xlabel),
                       "filter_factors", ff_caption)
        if image is not None and C.shape[0] == C.shape[1] == int(np.prod(image)):
            rep.add_figure(figs.plot_singular_images(Vt_A, ff.singular_values, {"C": ff.factors}, image,
                                                     **({} if r_index is None else
                                                        {"index_name": "R's j", "indices": r_index})),
                           "filter_factor_images", "Filter factors as images: right singular vectors vᵢ of A = R⁺ "
                           "(the patterns of the target image, from the best-seen to the worst-seen), each with its "
                           "σᵢ and C's filter factor φᵢ (1: passed as R passes it; 0: suppressed)"
                           + (f"; only {pairs}, captioned with R's singular index j." if partial else "."))
        if image is not None and C.shape[1] == int(np.prod(image)):
            rep.add_figure(figs.plot_operator_rows({"surrogate C": C, "reference R": R}, image,
                                                   figs.row_pixels(image, C.shape[0])), "operator_rows",
                           "Rows of C and R as images: the linear filter each output value applies to the input "
                           "image (each tile scaled to itself).")
        if cmp.eigs_C is not None:
            rep.add_figure(figs.plot_eigenvalues({"C": cmp.eigs_C, "R": cmp.eigs_R}), "eigenvalues",
                           "Eigenvalues (matched by minimum-cost assignment in metrics.json).")
        rep.add_figure(figs.plot_operator_heatmaps({"C": C, "R": R, "C − R": C - R}), "heatmaps", "Heatmaps.")
    else:
        rep.add_answer("No reference given: --reference R (a .npy matrix or module:attr) adds the data-weighted "
                       "error of C against R, principal angles and filter factors.")
        rep.answer_next = ("the singular values of C (figure below) and the per-output R² in metrics.json "
                           "(r2_per_output): a low one names the outputs the model computes nonlinearly.")
        rep.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()])
        rep.add_figure(figs.plot_operator_heatmaps({"C": C}), "heatmaps", "The surrogate C.")
        if image is not None and C.shape[1] == int(np.prod(image)):
            rep.add_figure(figs.plot_operator_rows({"surrogate C": C}, image, figs.row_pixels(image, C.shape[0])),
                           "operator_rows", "Rows of C as images: the linear filter each output value applies to "
                           "the input image (each tile scaled to itself).")
    rep.add_figure(figs.plot_singular_spectra(spectra), "singular_spectra", "Singular values (log scale).")
    rep.metrics.update(metrics)
    rep.write(out, force=force)
    return summary


def _reference_svd(R: np.ndarray, full_spectrum: bool) -> tuple[Any, bool, str]:
    """R's SVD for the report: the full one (``full_spectrum``, or up to the size rule), else its leading
    DEFAULT_MAX_K pairs and one more value by the study's route (``svd_leading(method="gram", n_values=)``) —
    unless those values reach R's numerical-rank cut (then A = R⁺'s zeros need the whole spectrum: full SVD) or are
    all one cluster (R = c·I, c times an orthogonal matrix: no whole cluster among the leading pairs: full SVD).
    Returns (svd_R, partial, why the full SVD was taken — "" when partial)."""
    lead = min(DEFAULT_MAX_K, *R.shape)
    rule = study.reference_n_values(R.shape, lead)
    if rule is None or rule >= min(R.shape):
        return svd(R), False, (f"max(d_in, d_out) = {max(R.shape)} ≤ REFERENCE_SPECTRUM_MAX_D = "
                               f"{study.REFERENCE_SPECTRUM_MAX_D}" if rule is None else
                               f"min(d_in, d_out) = {min(R.shape)}: the leading {rule} values are all of them")
    if full_spectrum:
        return svd(R), False, "--full-spectrum (above the size rule REFERENCE_SPECTRUM_MAX_D)"
    svd_R = svd_leading(R, lead, method="gram", n_values=rule)
    if not svd_R.s[-1] > default_tol(R.shape) * svd_R.s[0]:
        return svd(R), False, (f"R's leading {rule} values reach its numerical-rank cut: the full SVD places the "
                               "zeros of A = R⁺")
    if leading_whole_pairs(svd_R.s, lead, R.shape) < 1:  # e.g. R = c·I: one cluster beyond the leading pairs
        return svd(R), False, (f"R's leading {rule} singular values are one cluster (equal within rtol): no whole "
                               "cluster among the leading pairs, so the filter factors need R's full SVD")
    return svd_R, True, ""


def r2_and_split(stats: BlockStats, full: LinearSurrogate, fit_intercept: bool,
                 seed: int) -> tuple[float, np.ndarray, dict[str, Any], list[str]]:
    """The one R²: held-out when both parts have at least two rows (surrogate refitted on the training rows,
    same solver policy), else in-sample on all rows. Returns (pooled, per output, split info, solver messages).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> r2, per, info, msgs = r2_and_split(st, fit_surrogate(st.full(), True)[0], True, seed=0)
        >>> round(r2, 12), np.round(per, 12).tolist(), info["kind"], info["n_held_out"] == st.held.n
        (1.0, [1.0, 1.0], 'held-out', True)
    """
    n_train, n_held = stats.train.n, stats.held.n
    rule = (f"row i is held out when splitmix64(seed={seed}, i) mod {HOLDOUT_EVERY} = {HOLDOUT_EVERY - 1}: "
            "independent of --batch-size and of --dask")
    if n_train >= 2 and n_held >= 2:
        sur, msgs = fit_surrogate(stats.train, fit_intercept)
        r2, per = r2_from_stats(stats.held, sur.coef_, sur.intercept_)
        info = {"kind": "held-out", "n_train": n_train, "n_held_out": n_held, "rule": rule}
    else:
        r2, per = r2_from_stats(stats.full(), full.coef_, full.intercept_)
        msgs = []
        info = {"kind": "in-sample", "n_train": n_train + n_held, "n_held_out": 0,
                "rule": "fewer than 2 rows on a side of the held-out split: R² in-sample on all rows"}
    info["r2_per_output"] = [None if not np.isfinite(v) else float(v) for v in per]
    info["definition"] = R2_DEFINITION
    return r2, per, info, msgs


def load_linear_map(spec: str | Path, name: str = "reference", *, in_shape: tuple[int, ...] | None = None,
                    out_shape: tuple[int, ...] | None = None, max_bytes: int | None = None) -> LinearMap:
    """The one reader of ``--reference`` and ``--operator`` on every route: an existing file is read as a matrix
    (d_out, d_in) by :func:`linlens.loaders.load_array` (.npy, .npz, .pt, .csv/.txt; finite, real, within
    ``max_bytes``); anything else must be ``package.module:attr`` (imports that code) and goes through
    :func:`linlens.operators.load_operator` (a matrix, a scipy LinearOperator, (A, Aᵀ) torch callables or a
    deepinv-like object). Dense routes take ``.to_dense()`` of the result.

    Arguments:
        spec: the file or ``module:attr``.
        name: how it is called in messages ("reference", "operator").
        in_shape, out_shape: the shapes of one input / output row (for callables, and to reshape).
        max_bytes: memory limit for a file.

    Returns:
        :class:`~linlens.operators.LinearMap`.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "R.csv"; _ = p.write_text("1,2\\n3,4\\n")
        >>> load_linear_map(p).to_dense().tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """
    p = Path(spec)
    if p.suffix.lower() in ARRAY_SUFFIXES or p.exists():
        M = load_array(p, name, ndim=2, max_bytes=max_bytes)
        stored = stored_float_dtype(p)
        if stored is not None and stored.itemsize < 8:  # back to float32 exactly: the map keeps that precision
            M = M.astype(stored)
        try:
            return as_operator(M, in_shape=in_shape, out_shape=out_shape)
        except ShapeError as exc:
            raise ShapeError(f"{name}: {exc}") from None
    return load_operator(str(spec), name=name, **({} if in_shape is None else {"in_shape": in_shape}),
                         **({} if out_shape is None else {"out_shape": out_shape}))


def load_inputs(inputs: Path, max_memory: int | None) -> tuple[np.ndarray, tuple[int, ...]]:
    """The inputs as rows (n, d_in) — a view of the memory-mapped file for ``.npy`` — and the shape of one row
    (``(d_in,)``, or native such as (C, H, W), on which the model is called).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.npy"; np.save(p, np.zeros((10, 2, 3)))
        >>> rows, shape = load_inputs(p, None); rows.shape, shape  # images as rows, and the shape the model takes
        ((10, 6), (2, 3))
    """
    Y = load_array(inputs, "inputs", ndim=None, mmap=True, max_bytes=max_memory)
    if Y.ndim < 2:
        raise ShapeError(f"inputs need a row axis and at least one feature axis (n_samples, d_in) or "
                         f"(n_samples, *shape); got shape {tuple(Y.shape)}")
    in_shape = tuple(int(k) for k in Y.shape[1:])
    return Y.reshape(len(Y), -1), in_shape


def input_covariance(acc: GramAccumulator | TSQRAccumulator) -> np.ndarray:
    """The inputs' covariance (d_in, d_in) over all rows (ddof 0) from the streamed statistics: S_xx / n of the
    Gram accumulator, or R₁₁ᵀR₁₁ / n of the TSQR factor. Data-weighted errors are weighted by it (it equals the
    covariance of the rows themselves, and costs no pass and no copy of the rows).

    Example:
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> bool(np.allclose(input_covariance(st.full()), np.cov(Y.T, bias=True)))
        True
    """
    d = acc.d_in
    if isinstance(acc, TSQRAccumulator):
        R11 = acc.r_factor(fit_intercept=True)[:, :d]
        return (R11.T @ R11) / acc.n
    return acc.S[:d, :d] / acc.n


def finish_analyze(stats: BlockStats, fit_intercept: bool, seed: int, R: np.ndarray | None, out: Path, force: bool,
                   title: str, how: str, extra: dict[str, Any], route: Route | None = None,
                   err: GroupedError | None = None, err_note: str = "", full_spectrum: bool = False) -> dict[str, Any]:
    """From merged statistics: the surrogate (library solver policy), the one R², the warnings, the report (with
    the error against R and its interval ``err``, or ``err_note`` saying why there is none).
    Shared by the in-memory and the Dask routes.

    Example:
        >>> import tempfile
        >>> rng = np.random.default_rng(0); Y = rng.normal(size=(1000, 3))
        >>> B = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
        >>> st = block_stats(Y, Y @ B.T + 1.0, 0, seed=0, n=1000)  # an exact affine model: C = B, c = 1
        >>> out = Path(tempfile.mkdtemp()) / "rep"
        >>> s = finish_analyze(st, True, 0, None, out, False, "t", "one block", {})  # no reference R
        >>> round(s["R² (pooled, held-out)"], 12), s["solver"], (out / "metrics.json").exists()
        (1.0, 'gram', True)
    """
    acc = stats.full()
    full, msgs = fit_surrogate(acc, fit_intercept)
    r2, per, info, _ = r2_and_split(stats, full, fit_intercept, seed)
    warn, flags = input_warnings(acc, full, per, msgs)
    C = full.coef_
    intro = (
        f"Global linear surrogate of the model, {how}; outputs ≈ inputs @ Cᵀ + c with C of shape {C.shape}. "
        f"Solver: {full.solver_} (κ of the inputs ≈ {full.condition_number_:.3g}; the Gram/Cholesky solve when "
        "κ ≤ 1e5, else a second pass of the model accumulating TSQR factors). R² of the surrogate against the "
        f"model's outputs ({info['kind']}, {info['n_held_out']} held-out rows, pooled over outputs relative to "
        f"each output's variance): {r2:.6g} (1 means the model is exactly affine on these inputs; 1 − R² is its "
        "nonlinear residual fraction; per-output values in metrics.json)."
    )
    extra = {**extra, "input_checks": flags, "r2_per_output": info["r2_per_output"]}
    image = image_shape(tuple(extra.get("input_shape", ())))
    return surrogate_report(title, intro, full, r2, info, input_covariance(acc), R, out, force, extra, warn,
                            image=image, route=route, err=err, err_note=err_note, full_spectrum=full_spectrum)


def answer_r2(r2: float, n_held_out: int, *, outside: float | None = None) -> str:
    """The first line of a surrogate route's answer: how linear the model is, from the held-out R² (the numbers
    are metrics.json's ``r2`` and ``nonlinear_residual_fraction`` / ``outside_variance_fraction``, to 4 and 3
    significant digits).

    Example:
        >>> answer_r2(0.95, 200).split("; ")[1]
        'the nonlinear residual fraction is 0.05.'
    """
    if not np.isfinite(r2):
        return (f"How linear: R² could not be measured on the {n_held_out} held-out rows (no output variance there); "
                "see the warnings.")
    rows = (f"{n_held_out} held-out rows" if n_held_out else
            "the rows it was fitted on (in-sample: too few rows to hold any out, so it flatters the fit)")
    if outside is None:
        return (f"How linear: the surrogate C explains R² = {r2:.4g} of the model's output variance (pooled over "
                f"outputs) on {rows}; the nonlinear residual fraction is {1 - r2:.3g}.")
    return (f"How linear, on the inputs' top principal subspace: held-out R² = {r2:.4g} ({n_held_out} rows, pooled "
            f"over outputs); the inputs' variance outside the subspace, which the surrogate does not see, is "
            f"{outside:.3g}.")


def answer_verdict(verdict: Any) -> str:
    """The verdict of :func:`linlens.stats.closest_reference` against one reference R, in words, with its p-value.

    Example:
        >>> from linlens.stats import ClosestVerdict
        >>> answer_verdict(ClosestVerdict("none", (), ("R",), {}, {}, "", none_p_value=0.3))
        'no clearer than the zero map (p = 0.3)'
        >>> answer_verdict(ClosestVerdict("R", ("R",), ("R",), {}, {}, "", none_p_value=1e-5, far=True))
        'closer to R than the zero map C = 0 (p = 1e-05), but far from R (error ≥ 0.5 with confidence)'
    """
    if verdict.verdict == "none":
        return f"no clearer than the zero map (p = {verdict.none_p_value:.2g})"
    far = f", but far from R (error ≥ {verdict.far_error:g} with confidence)" if verdict.far else ""
    return f"closer to R than the zero map C = 0 (p = {verdict.none_p_value:.2g}){far}"


def answer_network_vs_cdata(mse_model: float, mse_cdata: float, pair: Any, *,
                            worse: str = "the network is worse than C_data",
                            difference: str = "paired per-image difference", baseline: str = "C_data",
                            better: str = "the network is better: a nonlinear gain") -> str:
    """The answer line comparing the network's test MSE per pixel with C_data's, from their paired per-image test
    (``pair``: a :class:`linlens.stats.PairedTest` of network − C_data squared errors): better when the interval lies
    below 0, worse above it, else not told apart (Fourier and matrix-free routes). ``baseline`` names the linear map
    compared (the matrix-free route also compares with the Wiener estimator), ``better`` what a negative interval
    means (not a nonlinear gain where the baseline is a truncated fit).

    Example:
        >>> from types import SimpleNamespace
        >>> pair = SimpleNamespace(difference=-0.5, ci_low=-0.7, ci_high=-0.3, p_value=1e-4)
        >>> answer_network_vs_cdata(1.0, 1.5, pair).split("; ")[1]
        'the network is better: a nonlinear gain (paired per-image difference -0.5 [-0.7, -0.3], p = 0.0001).'
    """
    said = (better if pair.ci_high < 0 else worse if pair.ci_low > 0 else "they cannot be told apart")
    return (f"Test MSE per pixel: network {mse_model:.4g} vs {baseline} {mse_cdata:.4g}; {said} ({difference} "
            f"{pair.difference:.3g} [{pair.ci_low:.3g}, {pair.ci_high:.3g}], p = {pair.p_value:.2g}).")


def answer_gain(mse: dict[str, float], gain: GainSplit, *, surrogate: str = "surrogate", baseline: str = "C_data",
                label: str | None = None, baseline_note: str = "", nonlinear_note: str = "") -> str:
    """The answer line on the network's test error (Fourier and matrix-free routes): the three test MSEs per pixel and
    :meth:`linlens.stats.GainSplit.words` — a nonlinear gain only where the network beats its own linear surrogate;
    beating C_data alone is "a better linear map" (C_data's test error includes its own estimation error).

    Arguments:
        mse: predictor → test MSE per pixel (holds "model", ``surrogate`` and ``baseline``).
        gain: the split of the per-image squared-error differences (:func:`linlens.stats.gain_split`).
        surrogate, baseline: their names in ``mse``; label: how the line names the baseline (default ``baseline``).
        baseline_note, nonlinear_note: as :meth:`~linlens.stats.GainSplit.words`.

    Example:
        >>> from linlens.stats import gain_split
        >>> e = np.linspace(1.0, 2.0, 50)  # an exactly linear network: it equals its surrogate
        >>> line = answer_gain({"model": 1.5, "surrogate": 1.5, "C_data": 1.6}, gain_split(e, e, e + 0.1))
        >>> line.split("; ")[1].split(" (")[0]
        'no nonlinear gain: the network and its own linear surrogate cannot be told apart'
    """
    label = baseline if label is None else label
    return (f"Test MSE per pixel: network {mse['model']:.4g}, its surrogate {mse[surrogate]:.4g}, {label} "
            f"{mse[baseline]:.4g}; {gain.words(label, baseline_note=baseline_note, nonlinear_note=nonlinear_note)}"
            " (per-image squared-error differences, paired t).")


def add_route(rep: Report, route: Route) -> None:
    """State the route and its reason first in a report, and record both in its metrics.json (every route).

    Example:
        >>> from linlens.report import Report
        >>> from linlens.workflows.analyze_options import Route
        >>> rep = Report("r"); add_route(rep, Route("dense", "the inputs fit in memory"))
        >>> rep.metrics["route"], rep._blocks[0].payload
        ('dense', 'route: dense (in memory) — the inputs fit in memory')
    """
    rep.add_text(route.line)
    rep.metrics.update({"route": route.name, "route_label": route.label, "route_reason": route.reason})
