"""``linlens analyze --components m``: the global surrogate at sizes where no d × d matrix fits in memory.

The surrogate is fitted on the top-m principal subspace of the inputs (:class:`~linlens.surrogate.SubspaceSurrogate`,
C = B V_mᵀ), exactly, from three kinds of passes:

1. **Inputs only** (read from disk, no model call): the training rows' mean, then their top-m right singular
   vectors V_m by :func:`~linlens.linalg.principal_subspace`, with its accuracy measured (the pairs' residuals and
   the gap at m, in the report): when the training rows fit in memory, the exact subspace from the smaller Gram
   matrix's eigen-decomposition or a float32 randomized block Krylov SVD (at most 4 steps, adaptive stop),
   whichever :func:`~linlens.linalg.subspace_method` finds cheaper; beyond, the randomized SVD on an operator
   whose products are passes over the memory-mapped file.
2. **Model on the training rows**: scores Z = (y − ȳ)V_m and the model's outputs F give ZᵀZ (m × m) and
   Zᵀ(F − F̄) (m × d_out); B solves the least squares in the subspace.
3. **Model on the held-out rows** (the same seeded hash as the dense route, one row in five): the pooled R² and,
   with ``--reference``, the centred data-weighted error E‖(C − R)(y − ȳ)‖²/E‖R(y − ȳ)‖², R applied matrix-free
   (a ``.npy`` matrix or a ``module:attr`` operator), bias-corrected for the estimation noise of B with a basic
   interval and the paired verdict, from per-row-group sums (:class:`~linlens.surrogate.grouped.GroupedFit`:
   cluster-robust bias, row-group bootstrap; the subspace V_m is held fixed).

Memory is O(m · (d_in + d_out) + batch · (d_in + d_out)), never d². What the subspace leaves out is reported:
the fraction of the inputs' variance outside it, about which the surrogate says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from linlens._results import JSON_ARRAY_LIMIT
from linlens.errors import ConfigError, NonFiniteError, ShapeError
from linlens.linalg import PrincipalSubspace, principal_subspace, subspace_method
from linlens.loaders import ARRAY_SUFFIXES, load_model
from linlens.nn import progress_bar, resolve_device
from linlens.probing import FlatModel, cast_note, model_input_dtype, probe_model
from linlens.report import Report, check_destination
from linlens.report import figures as figs
from linlens.stats import closest_reference, interval_text, summarize
from linlens.surrogate import r2_from_sums
from linlens.surrogate.grouped import GroupedError, GroupedFit
from linlens.surrogate.subspace import SubspaceSurrogate
from linlens.validation import check_memory
from linlens.workflows.analyze_common import (
    HOLDOUT_EVERY,
    N_GROUPS,
    R2_DEFINITION,
    add_route,
    answer_r2,
    answer_verdict,
    holdout_mask,
    image_shape,
    load_inputs,
    load_linear_map,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route

__all__ = ["run_subspace", "run_analyze_subspace", "MAX_POWER_ITERATIONS"]

#: Power iterations of the randomized SVD at most (each is two products with the training rows, or two passes over
#: the inputs on disk): scikit-learn's randomized PCA runs 7 with no check; here the iteration stops earlier when the
#: subspace has converged, and the subspace's accuracy is measured either way (residuals, the gap at m).
MAX_POWER_ITERATIONS = 7

#: The centred training rows are kept in memory for the subspace iteration when they take at most this much (or half
#: of --max-memory); beyond, every product is a pass over the file.
CACHE_DEFAULT_BYTES = 2 * 2**30

#: Values of one chunk of rows read, cast and probed at once (2²¹ float64 = 16 MiB, at most --batch-size rows).
CHUNK_VALUES = 2**21



class _Moments:
    """Per-column count, mean and centred sum of squares, merged batch by batch (Chan et al.)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, None, None

    def update(self, F: np.ndarray) -> None:
        if len(F) == 0:
            return
        b, mb = len(F), F.mean(axis=0)
        m2b = ((F - mb) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = b, mb, m2b
            return
        n = self.n + b
        delta = mb - self.mean
        self.m2 = self.m2 + m2b + delta**2 * (self.n * b / n)
        self.mean = self.mean + delta * (b / n)
        self.n = n


def _chunks(Y: np.ndarray, batches: list[tuple[int, np.ndarray]], step: int,
            held: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row indices (k,), rows (k, d) float64) of the training (``held`` False) or held-out rows of ``batches``, at
    most ``step`` rows at a time, read by :func:`_rows` (NaN/Inf refused naming the row)."""
    for s, msk in batches:
        keep = ~msk if held else msk
        pos = np.flatnonzero(keep)
        for a in range(0, len(pos), step):
            lo, hi = int(pos[a]), int(pos[min(a + step, len(pos)) - 1]) + 1
            yield s + pos[a:a + step], _rows(Y, s + lo, keep[lo:hi])


def _training_rows(Y: np.ndarray, batch_size: int, seed: int) -> list[tuple[int, np.ndarray]]:
    """(start, boolean mask of training rows) per batch of the inputs."""
    n = len(Y)
    return [(s, ~holdout_mask(s, min(s + batch_size, n), seed)) for s in range(0, n, batch_size)]


def _rows(Y: np.ndarray, start: int, keep: np.ndarray) -> np.ndarray:
    """The rows ``start + i`` with ``keep[i]``, read from the (memory-mapped) inputs as float64; NaN/Inf is refused
    naming the row (memory-mapped inputs are checked here, chunk by chunk, as they are read)."""
    a = np.asarray(Y[start:start + len(keep)][keep], dtype=np.float64)
    ok = np.isfinite(a).all(axis=1)
    if not ok.all():
        row = start + int(np.flatnonzero(keep)[int(np.argmin(ok))])
        raise NonFiniteError(f"--inputs contain NaN/Inf, first at row {row}")
    return a


def _centred_operator(Y: np.ndarray, batches: list[tuple[int, np.ndarray]], mean: np.ndarray,
                      received: Callable[[np.ndarray], np.ndarray] = lambda a: a) -> LinearOperator:
    """The centred training rows (n_train, d) as an operator: each product is one pass over the file.
    ``received`` maps stored rows to the rows the model receives (its input cast), the ones ``mean`` is of."""
    n_train = int(sum(int(m.sum()) for _, m in batches))
    d = Y.shape[1]

    def matmat(M: np.ndarray) -> np.ndarray:
        out, row = np.empty((n_train, M.shape[1])), 0
        for s, m in batches:
            rows = received(_rows(Y, s, m)) - mean
            out[row:row + len(rows)] = rows @ M
            row += len(rows)
        return out

    def rmatmat(Q: np.ndarray) -> np.ndarray:
        out, row = np.zeros((d, Q.shape[1])), 0
        for s, m in batches:
            rows = received(_rows(Y, s, m)) - mean
            out += rows.T @ Q[row:row + len(rows)]
            row += len(rows)
        return out

    return LinearOperator((n_train, d), matvec=lambda v: matmat(v[:, None])[:, 0],
                          rmatvec=lambda v: rmatmat(v[:, None])[:, 0], matmat=matmat, rmatmat=rmatmat,
                          dtype=np.float64)


def run_analyze_subspace(
    model: str,
    inputs: Path,
    components: int,
    reference: str | None = None,
    out: Path = Path("linlens-analyze"),
    force: bool = False,
    batch_size: int = 4096,
    device: str = "auto",
    seed: int = 0,
    console: Any = None,
    *,
    trust_model: bool = False,
    output_index: int | None = None,
    output_key: str | None = None,
    max_memory: int | None = None,
) -> dict[str, Any]:
    """:func:`run_subspace` with the older signature (every argument is one the subspace route uses).

    Example:
        >>> from linlens.workflows._examples import subspace_files
        >>> d = subspace_files()  # m.pt: a float64 Linear(4, 2); y.npy: 300 rows spanning a 2-D subspace of R⁴
        >>> s = run_analyze_subspace(str(d / "m.pt"), d / "y.npy", 2, out=d / "report", trust_model=True)
        >>> out, r2 = s["inputs' variance outside the subspace"], s["R² (pooled, held-out)"]
        >>> s["components m"], round(out, 12), round(r2, 10)
        (2, 0.0, 1.0)
    """
    o = AnalyzeOptions(model=model, inputs=inputs, components=components, reference=reference, out=out, force=force,
                       batch_size=batch_size, device=device, seed=seed, trust_model=trust_model,
                       output_index=output_index, output_key=output_key, max_memory=max_memory)
    o.check_values()
    route = Route("subspace", f"--components {components}: called as run_analyze_subspace")
    return route.summary(run_subspace(o, route, console))


def run_subspace(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """Fit the top-m subspace surrogate of the model on the inputs (no d × d matrix), compare with the reference.

    Arguments:
        options: the run's options (:class:`~linlens.workflows.analyze_options.AnalyzeOptions`). Fields used:
            components (m, the dimension of the inputs' principal subspace the surrogate lives on); reference (an
            operator R (d_out, d_in): a ``.npy`` matrix or ``module:attr``, which imports that code); model,
            inputs (any row shape), out, force, batch_size, device, seed, trust_model, output_index, output_key,
            max_memory as on the dense route.
        route: the plan's route (recorded in the report).
        console: rich console for progress (None: quiet).

    Returns:
        The summary dict.

    Example:
        >>> from linlens.workflows._examples import subspace_files
        >>> d = subspace_files()  # m.pt: a float64 Linear(4, 2); y.npy: 300 rows spanning a 2-D subspace of R⁴
        >>> o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", components=1, out=d / "report",
        ...                    trust_model=True)
        >>> s = run_subspace(o, Route("subspace", "example"))  # one of the two directions: variance is left outside
        >>> s["components m"], 0 < s["inputs' variance outside the subspace"] < 1
        (1, True)
    """
    o = options
    model, inputs, components, reference, out, force = o.model, o.inputs, o.components, o.reference, o.out, o.force
    batch_size, device, seed = o.batch_size, o.device, o.seed
    trust_model, output_index, output_key, max_memory = o.trust_model, o.output_index, o.output_key, o.max_memory
    check_destination(out, force)
    Y, in_shape = load_inputs(inputs, max_memory)
    n, d_in = Y.shape
    batches = _training_rows(Y, batch_size, seed)
    n_train = int(sum(int(m.sum()) for _, m in batches))
    n_held = n - n_train
    m = check_components(components, n, d_in, n_train, batch_size, max_memory)
    R = None
    if reference is not None:
        code = not (Path(reference).suffix.lower() in ARRAY_SUFFIXES or Path(reference).exists())
        R = load_linear_map(reference, "reference", max_bytes=max_memory,  # images: a deepinv-like R needs in_shape
                            in_shape=in_shape if code and len(in_shape) > 1 else None)
        if R.shape[1] != d_in:
            raise ShapeError(f"reference must take the inputs' {d_in} values (shape (d_out, {d_in})); got "
                             f"{R.shape}")
    dev = str(resolve_device(device))
    net = load_model(model, device=dev, trust_model=trust_model)
    if len(in_shape) > 1:
        net = FlatModel(net, in_shape)
    import torch

    dtype = model_input_dtype(net)  # the model receives its inputs cast to this: the fit uses the cast ones

    def received(a: np.ndarray) -> np.ndarray:
        return a if dtype == torch.float64 else torch.as_tensor(a).to(dtype).to(torch.float64).numpy()

    # rows are read, cast and probed in chunks of at most CHUNK_VALUES values (the model is called on at most
    # --batch-size rows at once): every temporary is then small enough to be reused by the allocator instead of being
    # mapped afresh (the page faults of fresh 400 MB temporaries cost more than the copies themselves); the training
    # rows' statistics are formed per batch from two buffers filled chunk by chunk
    step = max(1, min(batch_size, CHUNK_VALUES // max(d_in, 1)))
    with progress_bar(console is not None) as bar:
        # 1. inputs only: mean and top-m principal subspace of the training rows
        mean = np.zeros(d_in)
        task = bar.add_task("inputs: mean and principal subspace", total=None)
        # the training rows stay in memory (cast as the model receives them) when they fit the budget: float64 for
        # the exact Gram route, float32 for the randomized one (its products in single precision; the directions it
        # finds are re-orthonormalized in float64 and everything computed on them is float64)
        method = subspace_method(n_train, d_in, m, max_iter=MAX_POWER_ITERATIONS)
        item = 8 if method == "gram" else 4
        cached = item * n_train * d_in <= (CACHE_DEFAULT_BYTES if max_memory is None else max_memory / 2)
        X = np.empty((n_train, d_in), dtype=np.float64 if item == 8 else np.float32) if cached else None
        row = 0
        direct = cached and X.dtype == np.float32 and dtype == torch.float32  # the cache's cast is the model's
        for _, rows in _chunks(Y, batches, step, held=False):
            if direct:  # float32(rows) is what the model receives: cast once, into the cache, and sum that
                X[row:row + len(rows)] = rows
                mean += X[row:row + len(rows)].sum(axis=0, dtype=np.float64)
                row += len(rows)
                continue
            rows = received(rows)
            mean += rows.sum(axis=0)
            if cached:
                X[row:row + len(rows)] = rows
                row += len(rows)
        mean /= n_train
        if cached:
            X -= mean.astype(X.dtype)
            sub = principal_subspace(X, m, method=method, max_iter=MAX_POWER_ITERATIONS, seed=seed)
        else:  # every product is a pass over the file (the cast rows, centred on their own mean)
            sub = principal_subspace(_centred_operator(Y, batches, mean, received), m, max_iter=MAX_POWER_ITERATIONS,
                                     seed=seed)
        # the cached rows are not needed further; their memory, already mapped, holds the batch buffer of the model's
        # outputs below when it fits (a fresh 0.5 GB buffer costs ~1 s of page faults at d = 16,384)
        spare, X = X, None
        sv, Vt = sub.s, sub.Vt
        bar.update(task, completed=1, total=1)
        # identical rows leave only the rounding of their mean (≈ eps · ‖ȳ‖ per row) after centring
        if not sv.size or sv[0] <= 64 * np.finfo(float).eps * np.sqrt(n_train) * np.linalg.norm(mean):
            raise ShapeError(f"--inputs: the {n_train} training rows are all identical (no variance around their "
                             "mean): there is no principal subspace to fit the surrogate on")

        # 2. the model on the training rows: least squares on the scores
        G, cross, ss_x, mom_train = np.zeros((m, m)), None, 0.0, _Moments()
        Zb = Fb = None  # one batch's scores and outputs, filled chunk by chunk (buffers reused by every batch)
        task = bar.add_task("probing the model (training rows)", total=len(batches))
        for s, msk in batches:
            k = 0
            # the batch's rows go into the buffers in the order of their groups (GroupedFit reads each group in place)
            ids = (s + np.flatnonzero(msk)) % N_GROUPS
            order = np.argsort(ids, kind="stable")
            dest = np.empty(len(ids), dtype=np.int64)
            dest[order] = np.arange(len(ids))
            for _, rows in _chunks(Y, [(s, msk)], step, held=False):
                _, rows, F = next(probe_model(net, torch.from_numpy(rows), len(rows), dev, output_index=output_index,
                                              output_key=output_key))  # rows as the model received them
                if Fb is None:
                    d_out = F.shape[1]
                    check_memory(8.0 * (4 * m * (d_in + d_out) + 6 * batch_size * (d_in + d_out)),
                                 f"analyze --components {m} with {d_in} inputs and {d_out} outputs", max_memory)
                    cross = np.zeros((m, d_out))
                    if R is not None:
                        check_memory(8.0 * N_GROUPS * m * (m + d_out),
                                     f"the error statistics of --components {m} ({N_GROUPS} row groups)", max_memory)
                        grp = GroupedFit(m, d_out, N_GROUPS)
                    nb = max(int(mk.sum()) for _, mk in batches)  # the most training rows of one batch
                    Zb = np.empty((nb, m))
                    if spare is not None and spare.nbytes >= 8 * nb * d_out:
                        Fb = spare.reshape(-1).view(np.uint8)[:8 * nb * d_out].view(np.float64).reshape(nb, d_out)
                    else:
                        Fb = np.empty((nb, d_out))
                    spare = None
                rows -= mean  # centred in place (the chunk's own float64 copy)
                at = dest[k:k + len(rows)]
                Zb[at] = rows @ Vt.T
                Fb[at] = F
                ss_x += float(np.vdot(rows, rows))
                mom_train.update(F)
                k += len(rows)
            if k:
                Z, F = Zb[:k], Fb[:k]
                if R is not None:  # the per-group sums; G and Zᵀ F are their totals
                    grp.update_train(Z, F, ids[order])
                else:
                    G += Z.T @ Z
                    cross += Z.T @ F  # Σ Z = 0 over the training rows, so this is Zᵀ(F − F̄) up to rounding
            bar.advance(task)
        Zb = Fb = None
        if R is not None:
            G, cross = grp.zz.sum(axis=0), grp.zf.sum(axis=0)
        sur = SubspaceSurrogate(n_components=m, seed=seed).fit_statistics(
            n_train, mean, mom_train.mean, Vt, G, cross, ss_x, float(mom_train.m2.sum()))

        # 3. the model on the held-out rows: R² and the data-weighted error against R
        d_out = sur.coef_subspace_.shape[0]
        if R is not None and R.shape[0] != d_out:
            raise ShapeError(f"reference must be (d_out, d_in) = ({d_out}, {d_in}) to match the model; got {R.shape}")
        sse, mom_held = np.zeros(d_out), _Moments()
        dw = {"D_sum": np.zeros(d_out), "D_sq": 0.0, "R_sum": np.zeros(d_out), "R_sq": 0.0, "n": 0}
        Bt = sur.coef_subspace_.T
        shift = sur.intercept_ + (mean @ Vt.T) @ Bt  # predict(y) = (y − ȳ) V_m Bᵀ + shift, as sur.predict
        task = bar.add_task("probing the model (held-out rows)", total=len(batches))
        for s, msk in batches:
            for idx, rows in _chunks(Y, [(s, msk)], step, held=True):
                _, rows, F = next(probe_model(net, torch.from_numpy(rows), len(rows), dev, output_index=output_index,
                                              output_key=output_key))  # rows as the model received them
                rows -= mean  # centred by the training mean; for R the rest of the shift is removed below
                Zh = rows @ Vt.T
                P = Zh @ Bt
                E = P + shift
                E -= F
                sse += np.einsum("ij,ij->j", E, E)
                mom_held.update(F)
                if R is not None:
                    Ry = np.asarray(R.matvec(rows), dtype=np.float64)
                    P -= Ry  # Dy = Zh Bᵀ − R(y − ȳ)
                    grp.update_held(Zh, Ry, sur.coef_subspace_, idx % N_GROUPS, D=P)
                    dw["D_sum"] += P.sum(axis=0)
                    dw["D_sq"] += float(np.vdot(P, P))
                    dw["R_sum"] += Ry.sum(axis=0)
                    dw["R_sq"] += float(np.vdot(Ry, Ry))
                    dw["n"] += len(rows)
            bar.advance(task)

    r2, r2_out, dwe, err = held_out_results(sse, mom_held.m2, dw, grp if R is not None else None, o.n_boot, seed)
    return _report(model, inputs, reference, out, force, sur, r2, r2_out, dwe, n, n_train, n_held, in_shape,
                   sub, seed, route, err, cast_note(net))


def check_components(components: Any, n: int, d_in: int, n_train: int, batch_size: int,
                     max_memory: int | None) -> int:
    """Refuse (one line) an m the rows cannot support or whose statistics would not fit; returns m.

    Example:
        >>> check_components(3, n=100, d_in=5, n_train=80, batch_size=10, max_memory=None)
        3
        >>> check_components(6, n=100, d_in=5, n_train=80, batch_size=10, max_memory=None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --components 6 must be at most min(d_in, training rows − 1) = 5 (80 of 100 rows ...
    """
    n_held = n - n_train
    if isinstance(components, bool) or not isinstance(components, (int, np.integer)) or components < 1:
        raise ConfigError(f"--components must be a positive integer; got {components!r}")
    if components > min(d_in, n_train - 1):
        raise ConfigError(f"--components {components} must be at most min(d_in, training rows − 1) = "
                          f"{min(d_in, n_train - 1)} ({n_train} of {n} rows train, one in {HOLDOUT_EVERY} is held "
                          "out)")
    if n_held < 2:
        raise ShapeError(f"{n} rows leave {n_held} held-out rows; give more rows to score the surrogate")
    m = int(components)
    check_memory(8.0 * (4 * m * d_in + 6 * batch_size * d_in + 64 * (d_in + m)),
                 f"analyze --components {m} on {d_in} input features", max_memory)
    return m


def held_out_results(sse: np.ndarray, sst: np.ndarray, dw: dict[str, Any], grp: GroupedFit | None,
                     n_boot: int | None, seed: int) -> tuple[float, np.ndarray, float | None, GroupedError | None]:
    """The held-out numbers from the held-out sums: pooled R² (the one rule), the plug-in data-weighted error and,
    from the row groups' sums ``grp`` (None: no reference), its bias-corrected interval.

    Returns:
        (R², R² per output, plug-in error or None, :class:`GroupedError` or None).

    Example:
        >>> sse, sst = np.array([1.0, 3.0]), np.array([10.0, 10.0])  # pooled R² = 1 − 4/20
        >>> r2, per, dwe, err = held_out_results(sse, sst, {"n": 0}, None, None, seed=0)
        >>> round(r2, 12), per.tolist(), dwe, err
        (0.8, [0.9, 0.7], None, None)
    """
    r2, r2_out = r2_from_sums(sse, sst)  # the one R² rule
    dwe, den = None, 0.0
    if grp is not None and dw["n"]:
        k = dw["n"]
        num = dw["D_sq"] / k - float(np.sum((dw["D_sum"] / k) ** 2))
        den = dw["R_sq"] / k - float(np.sum((dw["R_sum"] / k) ** 2))
        dwe = float(num / den) if den > 0 else (0.0 if num <= 0 else math.inf)
    err = grp.error(n_boot=n_boot or 100, seed=seed) if dwe is not None and math.isfinite(dwe) and den > 0 else None
    return r2, r2_out, dwe, err


def _answer(rep: Report, r2: float, n_held: int, outside: float, dwe: float | None, err: GroupedError | None,
            verdict: Any, sub: PrincipalSubspace) -> None:
    """The short answer that opens the subspace report (its numbers are metrics.json's)."""
    rep.add_answer(answer_r2(r2, n_held, outside=outside))
    if err is not None:
        rep.add_answer(f"Against the reference R: data-weighted error {err.estimate:.4g} [{err.low:.4g}, "
                       f"{err.high:.4g}] (bias-corrected, {round(err.ci * 100)}% basic interval, held-out rows); "
                       f"{answer_verdict(verdict)}.")
    elif dwe is not None:
        rep.add_answer(f"Against the reference R: data-weighted error {dwe:.4g} (plug-in, no interval: R's outputs "
                       "give the bootstrap nothing to resample here).")
    else:
        rep.add_answer("No reference given: --reference R (a .npy matrix or module:attr) adds the data-weighted "
                       "error of C against R with an interval and a verdict.")
    if not sub.converged:
        rep.add_answer(f"The subspace iteration did not converge in {_iterations(sub)} (largest relative "
                       f"residual {sub.max_residual:.2g}): {_why_not_converged(sub)}.")
    rep.answer_next = ("the inputs' singular values along the m components: a spectrum still high at m means "
                       "directions the surrogate does not see (raise --components).")


def _how_subspace(sub: PrincipalSubspace) -> str:
    """How V_m was computed, in words."""
    if sub.method == "gram":
        return "the exact top-m subspace, from the eigen-decomposition of their Gram matrix"
    if sub.method == "krylov":
        return (f"a randomized block Krylov SVD (Musco & Musco 2015), {_iterations(sub)}, the last adding a fraction "
                f"{sub.last_gain:.2g} of the captured variance")
    return f"a randomized SVD, {_iterations(sub)}"


def _iterations(sub: PrincipalSubspace) -> str:
    """The iterations of a randomized subspace route, in words."""
    return f"{sub.n_iter} Krylov step(s)" if sub.method == "krylov" else f"{sub.n_iter} power iteration(s)"


def _why_not_converged(sub: PrincipalSubspace) -> str:
    """What a subspace that did not converge means, in words: by the gap at m (no clear gap: one of many
    nearly-equivalent subspaces; a gap: an approximation whose angle to the exact one Wedin's bound limits)."""
    gap = sub.relative_gap
    if not np.isfinite(gap) or gap < 0.01:
        return "the inputs' spectrum has no clear gap at m, so V_m is one of many nearly-equivalent top-m subspaces"
    return ("V_m only approximates the top-m subspace (the spectrum has a gap at m, but the iteration ran out of "
            "steps, e.g. with one dominant direction): sin of its largest angle to the exact one is at most about "
            "the pairs' absolute residuals over the gap (Wedin)")


def _subspace_check(sub: PrincipalSubspace, m: int) -> str:
    """The subspace's accuracy in words: the pairs' residuals and the gap at m (both in metrics.json).

    Example:
        >>> from linlens.linalg import principal_subspace
        >>> X = np.diag([3.0, 2.0, 1.0]) @ np.eye(3, 5)
        >>> _subspace_check(principal_subspace(X, 2), 2)[:60]
        'Subspace check: the m = 2 pairs (vᵢ, sᵢ) have relative resid'
    """
    gap = sub.relative_gap
    other = "X vᵢ = sᵢuᵢ" if sub.residual_form.startswith("‖Xᵀ") else "Xᵀuᵢ = sᵢvᵢ"
    res = f"{sub.residual_form} ({other} by construction)" if sub.method == "krylov" else sub.residual_form
    text = (f"Subspace check: the m = {m} pairs (vᵢ, sᵢ) have relative residuals {res} of at most "
            f"{sub.max_residual:.2g} (each sᵢ lies within that fraction of a singular value of the centred inputs), "
            f"and the relative gap at m, (s_m − s_(m+1))/s_m, is {gap:.3g}"
            + ("" if sub.method == "gram" else " (s_(m+1) a Ritz estimate, a lower bound)") + ".")
    if not sub.converged:
        text += (f" The subspace iteration did not converge in {_iterations(sub)}: {_why_not_converged(sub)} (the "
                 "surrogate is still the least-squares fit on it, and the held-out R² measures it).")
    elif np.isfinite(gap) and gap < 0.01:
        text += (" The spectrum is nearly flat at m: the top-m subspace is barely determined by these inputs (other "
                 "draws of them would rotate it); the surrogate is the least-squares fit on this one.")
    return text


def _report(model: str, inputs: Path, reference: str | None, out: Path, force: bool, sur: SubspaceSurrogate,
            r2: float, r2_out: np.ndarray, dwe: float | None, n: int, n_train: int, n_held: int,
            in_shape: tuple[int, ...], sub: PrincipalSubspace, seed: int,
            route: Route, err: GroupedError | None = None, cast: str | None = None, how: str = "",
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    m, d_in = sur.components_.shape
    d_out = sur.coef_subspace_.shape[0]
    rep = Report(f"linlens analyze (subspace surrogate, m = {m}): {model}")
    add_route(rep, route)
    rep.add_text(
        f"Global linear surrogate of the model restricted to the top-{m} principal subspace of its inputs: outputs ≈ "
        f"(y − ȳ) V_m Bᵀ + c, so C = B V_mᵀ ({d_out} × {d_in}) is never formed. V_m comes from the {n_train} "
        f"centred training rows ({_how_subspace(sub)}); B is the least-squares "
        f"fit of the model's outputs on the scores. {n_held} held-out rows (one in {HOLDOUT_EVERY}, a seeded hash "
        f"of the row index, as in the dense route) score it: pooled R² {r2:.6g} (1 − R² is what neither the "
        "subspace nor linearity explains). The fraction of the inputs' variance outside the subspace, "
        f"{sur.outside_variance_fraction_:.3g}, is what the surrogate says nothing about: raise --components if it "
        "is large. The data-weighted error against the reference is measured on the held-out rows and corrected for "
        "the estimation noise of B (which biases the plug-in upward), with a basic interval from a bootstrap over "
        f"{N_GROUPS} row groups that resamples the training and the held-out rows; the subspace V_m is held fixed, "
        "so the interval is about the surrogate on this subspace. No d × d matrix is formed, so spectra, principal "
        "angles and filter factors of C (which need one) are not computed here; the dense route (without "
        "--components) gives them where d allows."
        + f" {_subspace_check(sub, m)}"
        + ("" if cast is None else f" The {cast}.") + (f" {how}" if how else ""))
    summary: dict[str, Any] = {"inputs": n, "d_in": d_in, "d_out": d_out, "components m": m,
                               "inputs' variance outside the subspace": sur.outside_variance_fraction_,
                               "R² (pooled, held-out)": r2,
                               "nonlinear + outside-subspace residual fraction": 1 - r2 if np.isfinite(r2) else None}
    verdict = None
    if err is not None:
        table = summarize(err.boot)["R"]
        table["low"], table["high"] = err.low, err.high
        verdict = closest_reference(err.boot, ["R"])
        summary["data-weighted error vs R (held-out rows)"] = interval_text(table) + " (bias-corrected)"
        summary["plug-in (biased up)"] = dwe
        summary["reference R"] = "fixed (given, not resampled)"
        summary["verdict"] = ("no clearer than the zero map" if verdict.verdict == "none"
                              else "closer to R than the zero map" + (", but far from R" if verdict.far else ""))
    elif dwe is not None:
        summary["data-weighted error vs R (held-out rows)"] = dwe
    rep.add_table(["quantity", "value"], [[k, v] for k, v in summary.items()])
    _answer(rep, r2, n_held, sur.outside_variance_fraction_, dwe, err, verdict, sub)
    rep.add_figure(figs.plot_singular_spectra({"inputs (top m)": sub.s}, title="Singular values of the centred "
                                              "training inputs (the subspace)"), "input_spectrum",
                   "Singular values of the centred inputs along the m components: a spectrum still high at m means "
                   "directions the surrogate does not see.")
    img = image_shape(in_shape)
    if img is not None:
        rep.add_figure(figs.plot_singular_images(sur.components_, sur.singular_values_, {}, img,
                                                 title="Principal components of the inputs"),
                       "components", "Principal components of the inputs (rows of V_mᵀ) as images.")
        pix = figs.row_pixels(img, d_out)
        rows = sur.coef_subspace_[pix] @ sur.components_
        rep.add_figure(figs.plot_operator_rows({"surrogate C": rows}, img, range(len(pix)), labels=pix),
                       "operator_rows", "Rows of C = B V_mᵀ as images: the linear filter each output value applies "
                       "to the input image (each tile scaled to itself).")
    rep.add_array("components", sur.components_)
    rep.add_array("coef_subspace", sur.coef_subspace_)
    rep.metrics.update({
        "model": model, "inputs": str(inputs), "reference": reference, "n_samples": n,
        "input_shape": list(in_shape), "n_components": m, "n_train": n_train, "n_held_out": n_held, "seed": seed,
        "input_cast": cast,
        "subspace_method": sub.method, "power_iterations": sub.n_iter if sub.method == "randomized" else 0,
        "krylov_steps": sub.n_iter if sub.method == "krylov" else 0, "subspace_last_gain": sub.last_gain,
        "subspace_converged": sub.converged,
        "subspace_max_residual": sub.max_residual, "subspace_residual": sub.residual_form,
        "subspace_relative_gap": sub.relative_gap,
        "singular_value_next": sub.s_next, "r2": r2, "r2_definition": R2_DEFINITION,
        "r2_per_output": r2_out if r2_out.size <= JSON_ARRAY_LIMIT else None,
        "outside_variance_fraction": sur.outside_variance_fraction_,
        "explained_variance": sur.explained_variance_, "total_variance": sur.total_variance_,
        "data_weighted_error": dwe,
        "data_weighted_error_corrected": None if err is None else err.to_dict(),
        "verdict": None if verdict is None else verdict.to_dict(),
        "intercept": sur.intercept_ if sur.intercept_.size <= JSON_ARRAY_LIMIT else None,
        "arrays": "components.npy (m, d_in) = V_mᵀ and coef_subspace.npy (d_out, m) = B: C = B V_mᵀ",
        **(extra or {})})
    rep.write(out, force=force)
    return summary
