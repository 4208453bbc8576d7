"""``linlens analyze --dask ADDRESS|local --targets --operator … --assume matrix-free``: the matrix-free route out of
core.

The inputs y and targets x stay on disk (``.npy`` files or chunked Zarr array folders); each block of ``batch_size``
rows is one Dask task that reads only its rows. The rows are split as in memory (training pairs by
:func:`linlens.workflows.inverse.split_rows`; the probes by the seeded hash into rows that fit the surrogate and
held-out rows; row groups = file row index mod 32), and every statistic is the in-memory route's
(:func:`linlens.workflows.analyze_matrix_free.matrix_free_study`), computed per block on the workers and merged in a
tree (:func:`linlens.workflows.dask_passes.run_pass`):

1. **training pairs** (no model call): the residuals y − Ax per row group (σ), the inputs' and targets' means and
   variances; Σₓ (low rank + diagonal) by the same randomized subspace iterations and principal-axis factoring on an
   operator whose products are passes over the blocks (A·M gathered in block order, Aᵀ·Q and the Gram products
   summed in the tree); C_data's principal subspace likewise; then one pass for the targets' per-group moments on
   Σₓ's span and C_data's Gram and row-group sums;
2. **probes that fit the surrogate**: their mean and principal subspace (as the model receives them), then the
   model on the workers: the scores' Gram, cross products and row-group sums;
3. **held-out probes**: the model again, and per block the in-memory route's held-out statistics
   (``_held_statistics``: the Wiener estimator by conjugate gradients per row, C_data, A⁺ by LSQR where planned,
   score moments, per-image terms), merged in file order; then the bias corrections, the group-bootstrap
   replicates, the verdict and the error split on the client (``_finish``), and the in-memory route's report.

Same numbers as the in-memory route up to rounding, and the Wiener estimator (CG) and A⁺ (LSQR) up to their solvers'
tolerances (``tests/workflows/test_analyze_matrix_free_dask.py``, 2-worker ``LocalCluster``). The operator is sent
to the workers (pickled: a ``module:attr`` object must be importable there). The client holds (n_train, m + 10)
sketches of the subspace iterations and one number per held-out image; the workers one block at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from linlens.errors import ConfigError, ShapeError
from linlens.linalg import randomized_svd
from linlens.loaders import load_model
from linlens.nn import progress_bar
from linlens.probing import cast_note, model_input_dtype
from linlens.report import check_destination
from linlens.scale import ColumnMoments, check_block_finite, require_dask
from linlens.stats import noise_std_from_sums
from linlens.surrogate.grouped import GroupedFit
from linlens.surrogate.matrix_free import CovarianceMoments, LowRankDiagCovariance
from linlens.surrogate.subspace import SubspaceSurrogate
from linlens.validation import check_estimated_noise_std, check_noise_std, noise_std_disagreement
from linlens.workflows.analyze_common import holdout_mask
from linlens.workflows.analyze_dask import _connect, _model_spec, open_inputs, read_rows
from linlens.workflows.analyze_matrix_free import (
    DEFAULT_COMPONENTS,
    N_GROUPS,
    _finish,
    _held_statistics,
    _HeldStats,
    _peak_rss_gib,
    _report,
    _residual_group_sums,
    _setup,
    _test_errors,
    _TrainStats,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.analyze_subspace_dask import _probe, _received, _Sum
from linlens.workflows.dask_passes import run_pass
from linlens.workflows.inverse import split_rows

__all__ = ["run_matrix_free_dask"]


def _rows(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray) -> np.ndarray:
    rows = read_rows(src, s, e)
    check_block_finite(rows, name, b, s)
    return rows[keep]


# ------------------------------------------------------------------------------------------ block partials
@dataclass
class _TrainSums:
    """Pass 1's partial: per row group (n, Σr, Σ‖r‖²) of r = y − Ax, the inputs' and targets' column moments and
    Σ y² (the inputs' rounding scale)."""

    resid: tuple[np.ndarray, np.ndarray, np.ndarray]
    y: ColumnMoments
    x: ColumnMoments
    y_sq: float

    def merge(self, o: _TrainSums) -> _TrainSums:
        return _TrainSums(tuple(a + b for a, b in zip(self.resid, o.resid, strict=True)), self.y.merge(o.y),
                          self.x.merge(o.x), self.y_sq + o.y_sq)


@dataclass
class _TrainGram:
    """The last training pass's partial: the targets' per-group moments on Σₓ's span and C_data's Gram, cross
    products (uncentred outputs), score sums, Σ‖y − ȳ‖² and row-group sums."""

    moments: CovarianceMoments
    G: np.ndarray
    cross: np.ndarray
    z_sum: np.ndarray
    ss_in: float
    groups: GroupedFit

    def merge(self, o: _TrainGram) -> _TrainGram:
        mom = CovarianceMoments(self.moments.components, self.moments.n_groups, self.moments.refine)
        for a in ("n", "s1", "s2", "q1", "q2"):
            setattr(mom, a, getattr(self.moments, a) + getattr(o.moments, a))
        return _TrainGram(mom, self.G + o.G, self.cross + o.cross, self.z_sum + o.z_sum, self.ss_in + o.ss_in,
                          self.groups.merge(o.groups))


@dataclass
class _FitGram:
    """Pass 2's partial: the surrogate's Gram, cross products (uncentred outputs), score sums, Σ‖y − ȳ‖², the
    outputs' moments and row-group sums."""

    G: np.ndarray
    cross: np.ndarray
    z_sum: np.ndarray
    ss_in: float
    out: ColumnMoments
    groups: GroupedFit

    def merge(self, o: _FitGram) -> _FitGram:
        return _FitGram(self.G + o.G, self.cross + o.cross, self.z_sum + o.z_sum, self.ss_in + o.ss_in,
                        self.out.merge(o.out), self.groups.merge(o.groups))


# ------------------------------------------------------------------------------------------ worker tasks
def _train_sums_task(src_y: tuple[str, str], src_x: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray,
                     op: Any, batch: int, g: int) -> _TrainSums:
    Y, X = _rows(src_y, "inputs", b, s, e, keep), _rows(src_x, "targets", b, s, e, keep)
    grp = (s + np.flatnonzero(keep)) % g
    sums = _residual_group_sums(op, Y, X, grp, batch=batch, g=g)
    return _TrainSums(sums, ColumnMoments().update(Y), ColumnMoments().update(X), float(np.sum(Y**2)))


def _centred(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray, dtype: str,
             mean: np.ndarray) -> np.ndarray:
    return _received(_rows(src, name, b, s, e, keep), dtype) - mean


def _sum_task(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray, dtype: str) -> _Sum:
    return _Sum(_received(_rows(src, name, b, s, e, keep), dtype).sum(axis=0))


def _matmat_task(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray, dtype: str,
                 mean: np.ndarray, M: np.ndarray) -> np.ndarray:
    return _centred(src, name, b, s, e, keep, dtype, mean) @ M


def _rmatmat_task(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray, dtype: str,
                  mean: np.ndarray, Q: np.ndarray) -> _Sum:
    return _Sum(_centred(src, name, b, s, e, keep, dtype, mean).T @ Q)


def _gram_task(src: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray, dtype: str,
               mean: np.ndarray, U: np.ndarray) -> _Sum:
    xc = _centred(src, name, b, s, e, keep, dtype, mean)
    return _Sum(xc.T @ (xc @ U))


def _train_gram_task(src_y: tuple[str, str], src_x: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray,
                     cov_components: np.ndarray, refine: int, mean_y: np.ndarray, Vc: np.ndarray,
                     g: int) -> _TrainGram:
    Y, X = _rows(src_y, "inputs", b, s, e, keep), _rows(src_x, "targets", b, s, e, keep)
    grp = (s + np.flatnonzero(keep)) % g
    yc = Y - mean_y
    Z = yc @ Vc.T
    groups = GroupedFit(Vc.shape[0], X.shape[1], g)
    groups.update_train(Z, X, grp)
    return _TrainGram(CovarianceMoments(cov_components, g, refine).update(X, grp), Z.T @ Z, Z.T @ X, Z.sum(axis=0),
                      float(np.sum(yc**2)), groups)


def _fit_task(src_y: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, model: Any, mean: np.ndarray,
              Vt: np.ndarray, g: int) -> _FitGram:
    rows, F = _probe(model, _rows(src_y, "inputs", b, s, e, keep), b, s, e, None, None)
    xc = rows - mean
    Z = xc @ Vt.T
    groups = GroupedFit(Vt.shape[0], F.shape[1], g)
    groups.update_train(Z, F, (s + np.flatnonzero(keep)) % g)
    return _FitGram(Z.T @ Z, Z.T @ F, Z.sum(axis=0), float(np.sum(xc**2)), ColumnMoments().update(F), groups)


def _held_task(src_y: tuple[str, str], src_x: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray,
               start: int, model: Any, setup: Any) -> _HeldStats:
    rows, F = _probe(model, _rows(src_y, "inputs", b, s, e, keep), b, s, e, None, None)
    X = _rows(src_x, "targets", b, s, e, keep)
    if F.shape[1] != X.shape[1]:
        raise ShapeError(f"the model outputs {F.shape[1]} values per image; the targets have {X.shape[1]}")
    return _held_statistics(setup, rows, F, X, (s + np.flatnonzero(keep)) % setup.g, start)


# ------------------------------------------------------------------------------------------------- passes
class _Blocks:
    """The blocks holding some of one set of rows (training, fit or held-out), and passes over them."""

    def __init__(self, client: Any, bar: Any, ranges: list[tuple[int, int, int]], mask: np.ndarray) -> None:
        self.client, self.bar = client, bar
        self.blocks = [(b, s, e, mask[s:e]) for b, s, e in ranges if mask[s:e].any()]
        self.counts = np.array([int(k.sum()) for *_, k in self.blocks])
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)])
        self.n = int(self.counts.sum())

    def run(self, what: str, fn: Any, args_of: Any, reduce: bool = True) -> Any:
        """``fn(*args_of(i, b, s, e, keep))`` for each block i (rows [s, e), ``keep`` its rows of this set), merged
        in a tree (or gathered in block order)."""
        tasks = [(b, s, e, *args_of(i, b, s, e, keep)) for i, (b, s, e, keep) in enumerate(self.blocks)]
        return run_pass(self.client, self.bar, what, fn, tasks, reduce=reduce)

    def centred(self, src: tuple[str, str], name: str, dtype: str, mean: np.ndarray, d: int) -> tuple[
            LinearOperator, Any]:
        """(the centred rows as a products-only operator (n, d), their Gram map U ↦ xcᵀ(xc U)), one pass each."""
        cl = self.client

        def tasks(last: Any) -> list[tuple[Any, ...]]:
            return [(b, s, e, src, name, b, s, e, keep, dtype, mean, last(i))
                    for i, (b, s, e, keep) in enumerate(self.blocks)]

        def matmat(M: np.ndarray) -> np.ndarray:
            fut = cl.scatter(np.ascontiguousarray(M), broadcast=True)
            return np.concatenate(run_pass(cl, None, "A·M", _matmat_task, tasks(lambda i: fut),
                                           reduce=False))

        def rmatmat(Q: np.ndarray) -> np.ndarray:
            o = self.offsets
            return run_pass(cl, None, "Aᵀ·Q", _rmatmat_task, tasks(lambda i: Q[o[i]:o[i + 1]])).value

        def gram(U: np.ndarray) -> np.ndarray:
            fut = cl.scatter(np.ascontiguousarray(U), broadcast=True)
            return run_pass(cl, None, "AᵀA·U", _gram_task, tasks(lambda i: fut)).value

        op = LinearOperator((self.n, d), matvec=lambda v: matmat(v[:, None])[:, 0],
                            rmatvec=lambda v: rmatmat(v[:, None])[:, 0], matmat=matmat, rmatmat=rmatmat,
                            dtype=np.float64)
        return op, gram


# ------------------------------------------------------------------------------------------------- route
def run_matrix_free_dask(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The matrix-free route on a Dask cluster: inputs and targets read block by block on the workers.

    Arguments:
        options: the run's options. Fields used: model (loaded on each worker), inputs and targets (``.npy`` or
            ``.zarr``, any row shape), operator (loaded by the plan: ``route.operator``, sent to the workers),
            noise_std, components (m), n_boot, dask (address or "local"), out, force, batch_size (rows per task and
            per operator call; the numbers do not depend on it beyond rounding), device, seed, trust_model.
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        The summary dict (the in-memory matrix-free route's keys).

    Example:
        >>> import json
        >>> from dask.distributed import LocalCluster
        >>> from linlens.workflows._examples import image_files
        >>> from linlens.workflows.analyze import plan
        >>> d = image_files(200)  # x (200, 1, 4, 4), y = x/2 + 0.1·noise, A.npy = I/2, net.pt = 2I = A⁻¹
        >>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
        >>> o = AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                    operator=str(d / "A.npy"), assume="matrix-free", n_boot=20, out=d / "report",
        ...                    trust_model=True, dask=cluster.scheduler_address, batch_size=64)
        >>> s = run_matrix_free_dask(o, plan(o)); cluster.close()
        >>> sn = json.loads((d / "report/metrics.json").read_text())["signal_noise"]["surrogate C"]
        >>> abs(round(sn["signal_error"]["estimate"], 12)), "A⁺" in s["verdict"]  # C = A⁻¹: no signal error
        (0.0, True)
    """
    o = options
    t0, c0 = time.perf_counter(), time.process_time()
    require_dask("--dask")
    check_destination(o.out, o.force)
    n_boot = 100 if o.n_boot is None else int(o.n_boot)

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg, highlight=False)

    src_y, n, d_in, in_shape = open_inputs(o.inputs, "inputs")
    src_x, n_x, d_x, x_shape = open_inputs(o.targets, "targets")
    if n_x != n:
        raise ShapeError(f"targets must have one row per input: inputs have {n} rows, targets {n_x}")
    op = route.operator
    if op is None or op.shape != (d_in, d_x):
        raise ShapeError(f"operator must map targets {x_shape} to inputs {in_shape}; got shape "
                         f"{None if op is None else op.shape}")
    op.rmatvec(np.zeros(op.shape[0]))  # an operator without an adjoint stops here, in one line
    if n < 8:
        raise ShapeError(f"inputs: the matrix-free route (training pairs for σ, Σₓ and C_data, held-out probes) "
                         f"needs at least 8 rows; got {n}")
    g, batch, seed = N_GROUPS, max(o.batch_size, 1), o.seed
    train, probe = split_rows(n, seed)
    probe = np.sort(probe)
    held = holdout_mask(0, len(probe), seed)
    fit_rows, held_rows = probe[~held], probe[held]
    n_tr, n_fit, n_held = len(train), len(fit_rows), len(held_rows)
    m = int(o.components) if o.components is not None else min(DEFAULT_COMPONENTS, d_in, max(1, n_fit // 4))
    if m > min(d_in, n_fit - 2, n_tr - 2):
        raise ConfigError(f"--components {m} must be at most min(d_in, fit rows − 2, training rows − 2) = "
                          f"{min(d_in, n_fit - 2, n_tr - 2)} ({n} rows: {n_tr} train C_data, Σₓ and σ; "
                          f"{n_fit} fit the surrogate; {n_held} test)")
    if n_held < 8:
        raise ShapeError(f"{n} rows leave {n_held} held-out probes; give more rows (at least 8 held out)")
    masks = {}
    for name, idx in (("train", train), ("fit", fit_rows), ("held", held_rows)):
        masks[name] = np.zeros(n, dtype=bool)
        masks[name][idx] = True
    spec = _model_spec(o.model)
    net = load_model(spec, device="cpu", trust_model=o.trust_model)  # fails early, on the client
    dtype, cast = str(model_input_dtype(net)), cast_note(net)
    model = (spec, o.device, o.trust_model, in_shape)
    ranges = [(b, s, min(s + o.batch_size, n)) for b, s in enumerate(range(0, n, o.batch_size))]
    raw = "torch.float64"  # the training pairs are not model inputs: read as they are
    client, cluster = _connect(o.dask)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        with progress_bar(console is not None) as bar:
            tr = _Blocks(client, bar, ranges, masks["train"])
            op_f = client.scatter(op, broadcast=True)
            t1: _TrainSums = tr.run(f"training pairs: residuals and moments ({n_workers} Dask workers)",
                                    _train_sums_task, lambda i, b, s, e, k: (src_y, src_x, b, s, e, k, op_f, batch, g))
            if not float(t1.y.m2.sum()) > 0 or not float(t1.x.m2.sum()) > 0:
                which = "inputs" if not float(t1.y.m2.sum()) > 0 else "targets"
                raise ShapeError(f"{which}: all {n_tr} training rows are identical; the matrix-free route needs rows "
                                 "that vary")
            sigma_note = None
            if o.noise_std is not None:  # given σ: checked against the training residuals
                rn, rs, rr = t1.resid
                est = noise_std_from_sums(float(rr.sum() - rs.sum(axis=0) @ rs.sum(axis=0) / rn.sum()), n_tr, d_in)
                sigma_note = noise_std_disagreement(check_noise_std(o.noise_std), est.value, est.low, est.high)
                if sigma_note:
                    say(f"warning: {sigma_note}")
            say(f"training pairs: Σₓ and C_data's subspace by passes over {len(tr.blocks)} blocks …")
            mean_y, mean_x = t1.y.mean, t1.x.mean
            op_x, gram_x = tr.centred(src_x, "targets", raw, mean_x, d_x)
            cov0 = LowRankDiagCovariance(rank=min(m, n_tr - 1, d_x), seed=seed).fit_centred(
                op_x, mean_x, t1.x.m2 / n_tr, gram=gram_x)
            cd = SubspaceSurrogate(n_components=m, seed=seed + 1)
            op_y, _ = tr.centred(src_y, "inputs", raw, mean_y, d_in)
            _, _, Vc = randomized_svd(op_y, m, n_oversamples=cd.n_oversamples, n_iter=cd.n_iter, seed=cd.seed)
            t3: _TrainGram = tr.run("training pairs: Σₓ's moments, C_data", _train_gram_task,
                                    lambda i, b, s, e, k: (src_y, src_x, b, s, e, k, cov0.components_, cov0.refine,
                                                           mean_y, Vc, g))
            cdata = cd.fit_statistics(n_tr, mean_y, mean_x, Vc, t3.G, t3.cross - np.outer(t3.z_sum, mean_x),
                                      t3.ss_in, float(t1.x.m2.sum()))
            ts = _TrainStats(t1.resid, t3.moments, mean_y, cdata, t3.groups)

            fb = _Blocks(client, bar, ranges, masks["fit"])
            say(f"probes: the surrogate on the top-{m} principal subspace of {n_fit} rows …")
            mean_f = fb.run("probes: mean", _sum_task,
                            lambda i, b, s, e, k: (src_y, "inputs", b, s, e, k, dtype)).value / n_fit
            sur = SubspaceSurrogate(n_components=m, seed=seed)
            op_f_rows, _ = fb.centred(src_y, "inputs", dtype, mean_f, d_in)
            _, _, Vt = randomized_svd(op_f_rows, m, n_oversamples=sur.n_oversamples, n_iter=sur.n_iter,
                                      seed=sur.seed)
            fg: _FitGram = fb.run("probing the model (rows that fit the surrogate)", _fit_task,
                                  lambda i, b, s, e, k: (src_y, b, s, e, k, model, mean_f, Vt, g))
            if fg.out.mean.shape[0] != d_x:
                raise ShapeError(f"the model outputs {fg.out.mean.shape[0]} values per image; the targets have {d_x}")
            sur.fit_statistics(n_fit, mean_f, fg.out.mean, Vt, fg.G, fg.cross - np.outer(fg.z_sum, fg.out.mean),
                               fg.ss_in, float(fg.out.m2.sum()))
            grp = fg.groups
            first_inputs = _received(np.stack([read_rows(src_y, int(r), int(r) + 1)[0] for r in held_rows[:4]]),
                                     dtype)
            su = _setup(op, ts, sur, grp, noise_std=o.noise_std, first_inputs=first_inputs, n_held=n_held, seed=seed,
                        batch=batch, g=g, say=say)
            hb = _Blocks(client, bar, ranges, masks["held"])
            su_f = client.scatter(su, broadcast=True)
            say(f"held-out probes: the model, the references and the test errors on {n_held} rows …")
            hs: _HeldStats = hb.run("probing the model (held-out rows)", _held_task,
                                    lambda i, b, s, e, k: (src_y, src_x, b, s, e, k, int(hb.offsets[i]), model, su_f))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    st = _finish(su, hs, n_boot=n_boot, ci=0.95, fixed_references=False, say=say)
    if st.noise_std_interval is not None:
        check_estimated_noise_std(st.noise_std, np.array([np.sqrt(t1.y_sq / (n_tr * d_in))]))
    te = _test_errors(st, d_x)
    timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_rss_gib": _peak_rss_gib()}
    f = st.first_rows
    extra = {"dask": {"address": o.dask, "workers": n_workers, "blocks": len(ranges),
                      "how": "inputs and targets read block by block on the workers; per-block statistics merged in "
                             "a tree; timing and peak RSS are the client's"}}
    return _report(o, route, op, st, sigma_note, te, timing, in_shape, x_shape, n, n_tr, n_fit, n_held, m,
                   f["targets"], f["inputs"], f["outputs"], cast, extra=extra)
