"""``linlens analyze --dask ADDRESS|local --components m``: the subspace route with inputs read on Dask workers.

The inputs stay on disk (``.npy`` or a chunked ``.zarr`` folder); each block of ``batch_size`` rows is one task
that reads only its rows. The passes and the statistics are the in-memory subspace route's
(:mod:`linlens.workflows.analyze_subspace`), with the same seeded hash choosing the held-out rows and the same
row groups, computed per block on the workers and merged in a tree (:func:`linlens.workflows.dask_passes.run_pass`):

1. the training rows' mean (as the model receives them: its input cast);
2. V_m by the randomized route of :func:`linlens.linalg.principal_subspace` (on an operator whose
   products are passes over the blocks: Aᵀ Q summed in the tree, A M gathered in block order, (n_train, m + 10)
   on the client);
3. the model on the training rows: ZᵀZ, Zᵀ F, the outputs' moments and the row groups' sums
   (:class:`~linlens.surrogate.grouped.GroupedFit`), merged;
4. the model on the held-out rows: the R² sums, the data-weighted error's sums against ``--reference`` (loaded on
   each worker) and the groups' held-out sums, merged; then the bias-corrected error and its row-group bootstrap
   interval (:func:`~linlens.workflows.analyze_subspace.held_out_results`) and the same report.

Same numbers as the in-memory route up to rounding (``tests/workflows/test_analyze_subspace_dask.py``, 2-worker
``LocalCluster``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from linlens.errors import LinlensError, NonFiniteError, ShapeError
from linlens.linalg import principal_subspace
from linlens.loaders import load_model
from linlens.nn import progress_bar
from linlens.probing import cast_note, model_input_dtype, probe_model
from linlens.report import check_destination
from linlens.scale import ColumnMoments, check_block_finite, require_dask
from linlens.surrogate.grouped import GroupedFit
from linlens.surrogate.subspace import SubspaceSurrogate
from linlens.validation import check_memory
from linlens.workflows.analyze_common import holdout_mask, load_linear_map
from linlens.workflows.analyze_dask import _connect, _model, _model_spec, open_inputs, read_rows
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.analyze_subspace import (
    MAX_POWER_ITERATIONS,
    N_GROUPS,
    _report,
    check_components,
    held_out_results,
)
from linlens.workflows.dask_passes import run_pass

__all__ = ["run_subspace_dask"]

_REFS: dict[tuple[str, int | None], Any] = {}  # per worker process: the reference, loaded once


def _received(rows: np.ndarray, dtype: str) -> np.ndarray:
    """The rows as a model of input dtype ``dtype`` receives them (cast there and back to float64)."""
    if dtype == "torch.float64":
        return rows
    import torch

    return torch.as_tensor(rows).to(getattr(torch, dtype.split(".")[-1])).to(torch.float64).numpy()


def _rows(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray) -> np.ndarray:
    rows = read_rows(src, s, e)
    check_block_finite(rows, "inputs", b, s)
    return rows[keep]


def _probe(model: tuple[str, str, bool, tuple[int, ...]], rows: np.ndarray, b: int, s: int, e: int,
           output_index: int | None, output_key: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows as the model received them, outputs) of one block, on a worker."""
    net, dev = _model(*model)
    where = f"block {b} (rows {s}–{e - 1})"
    try:
        _, Yr, F = next(probe_model(net, rows, len(rows), dev, output_index=output_index, output_key=output_key))
    except NonFiniteError:
        raise NonFiniteError(f"model outputs: {where} contain NaN/Inf") from None
    except LinlensError as exc:
        raise type(exc)(str(exc).replace("batch 0", where)) from None
    return Yr, F


# ------------------------------------------------------------------------------------------ block partials
@dataclass
class _Sum:
    """A partial that merges by adding (arrays or numbers)."""

    value: Any

    def merge(self, other: _Sum) -> _Sum:
        return _Sum(self.value + other.value)


@dataclass
class _Train:
    """Pass 3's partial: ZᵀZ, ZᵀF, Σ‖y − ȳ‖², the outputs' moments and the groups' training sums."""

    G: np.ndarray
    cross: np.ndarray | None
    ss_x: float
    moments: ColumnMoments
    groups: GroupedFit | None

    def merge(self, o: _Train) -> _Train:
        cross = self.cross if o.cross is None else o.cross if self.cross is None else self.cross + o.cross
        grp = self.groups if o.groups is None else o.groups if self.groups is None else self.groups.merge(o.groups)
        return _Train(self.G + o.G, cross, self.ss_x + o.ss_x, self.moments.merge(o.moments), grp)


@dataclass
class _Held:
    """Pass 4's partial: Σ squared residuals per output, the outputs' moments, the error sums, the groups'."""

    sse: np.ndarray | None
    moments: ColumnMoments
    dw: dict[str, Any]
    groups: GroupedFit | None

    def merge(self, o: _Held) -> _Held:
        sse = self.sse if o.sse is None else o.sse if self.sse is None else self.sse + o.sse
        grp = self.groups if o.groups is None else o.groups if self.groups is None else self.groups.merge(o.groups)
        dw = {k: self.dw[k] + o.dw[k] for k in self.dw}
        return _Held(sse, self.moments.merge(o.moments), dw, grp)


def _mean_task(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, dtype: str) -> _Sum:
    return _Sum(_received(_rows(src, b, s, e, keep), dtype).sum(axis=0))


def _matmat_task(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, dtype: str, mean: np.ndarray,
                 M: np.ndarray) -> np.ndarray:
    return (_received(_rows(src, b, s, e, keep), dtype) - mean) @ M


def _rmatmat_task(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, dtype: str, mean: np.ndarray,
                  Q: np.ndarray) -> _Sum:
    return _Sum((_received(_rows(src, b, s, e, keep), dtype) - mean).T @ Q)


def _train_task(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, model: Any, out: tuple[Any, Any],
                mean: np.ndarray, Vt: np.ndarray, groups: bool) -> _Train:
    m = Vt.shape[0]
    rows = _rows(src, b, s, e, keep)
    if not len(rows):
        return _Train(np.zeros((m, m)), None, 0.0, ColumnMoments(), None)
    rows, F = _probe(model, rows, b, s, e, *out)
    Z = (rows - mean) @ Vt.T
    grp = None
    if groups:
        grp = GroupedFit(m, F.shape[1], N_GROUPS)
        grp.update_train(Z, F, (s + np.flatnonzero(keep)) % N_GROUPS)
    return _Train(Z.T @ Z, Z.T @ F, float(np.sum((rows - mean) ** 2)), ColumnMoments().update(F), grp)


def _held_task(src: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray, model: Any, out: tuple[Any, Any],
               sur: SubspaceSurrogate, reference: tuple[str, int | None] | None) -> _Held:
    d_out = sur.coef_subspace_.shape[0]
    dw = {"D_sum": np.zeros(d_out), "D_sq": 0.0, "R_sum": np.zeros(d_out), "R_sq": 0.0, "n": 0}
    rows = _rows(src, b, s, e, keep)
    if not len(rows):
        return _Held(None, ColumnMoments(), dw, None)
    rows, F = _probe(model, rows, b, s, e, *out)
    grp = None
    if reference is not None:
        if reference not in _REFS:
            _REFS[reference] = load_linear_map(reference[0], "reference", max_bytes=reference[1])
        R = _REFS[reference]
        yc = rows - sur.mean_in_  # centred by the training mean; the rest of the shift is removed downstream
        Ry = R.matvec(yc)
        Zh = yc @ sur.components_.T
        Dy = Zh @ sur.coef_subspace_.T - Ry
        grp = GroupedFit(sur.components_.shape[0], d_out, N_GROUPS)
        grp.update_held(Zh, Ry, sur.coef_subspace_, (s + np.flatnonzero(keep)) % N_GROUPS)
        dw = {"D_sum": Dy.sum(axis=0), "D_sq": float(np.sum(Dy**2)), "R_sum": Ry.sum(axis=0),
              "R_sq": float(np.sum(Ry**2)), "n": len(rows)}
    return _Held(((F - sur.predict(rows)) ** 2).sum(axis=0), ColumnMoments().update(F), dw, grp)


# ------------------------------------------------------------------------------------------------- route
def run_subspace_dask(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The subspace route (``--components m``) on a Dask cluster; writes the in-memory route's report.

    Arguments:
        options: the run's options. Fields used: components, reference (``.npy`` or ``module:attr``, loaded on the
            client to check it and on each worker), model (loaded on each worker), inputs (``.npy`` or ``.zarr``,
            any row shape), dask, out, force, batch_size (rows per task; results do not depend on it), device,
            seed, n_boot (the row-group bootstrap), trust_model, output_index, output_key, max_memory.
        route: the plan's route (recorded in the report).
        console: rich console for progress (None: quiet).

    Returns:
        The summary dict (the in-memory subspace route's keys).

    Example:
        >>> from dask.distributed import LocalCluster
        >>> from linlens.workflows._examples import subspace_files
        >>> d = subspace_files()  # m.pt: a float64 Linear(4, 2); y.npy: 300 rows spanning a 2-D subspace of R⁴
        >>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
        >>> o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", components=2, out=d / "report",
        ...                    trust_model=True, dask=cluster.scheduler_address, batch_size=100)
        >>> s = run_subspace_dask(o, Route("subspace_dask", "example")); cluster.close()
        >>> out, r2 = s["inputs' variance outside the subspace"], s["R² (pooled, held-out)"]
        >>> s["components m"], round(out, 12), round(r2, 10)
        (2, 0.0, 1.0)
    """
    o = options
    require_dask("--dask")
    check_destination(o.out, o.force)
    src, n, d_in, in_shape = open_inputs(o.inputs, "inputs")
    ranges = [(b, s, min(s + o.batch_size, n)) for b, s in enumerate(range(0, n, o.batch_size))]
    held = [holdout_mask(s, e, o.seed) for _, s, e in ranges]
    n_held = int(sum(int(h.sum()) for h in held))
    n_train = n - n_held
    m = check_components(o.components, n, d_in, n_train, o.batch_size, o.max_memory)
    R = None
    if o.reference is not None:
        R = load_linear_map(o.reference, "reference", max_bytes=o.max_memory)  # checked here, loaded on workers
        if R.shape[1] != d_in:
            raise ShapeError(f"reference must take the inputs' {d_in} values (shape (d_out, {d_in})); got {R.shape}")
    spec = _model_spec(o.model)
    net = load_model(spec, device="cpu", trust_model=o.trust_model)  # fails early, on the client
    dtype, cast = str(model_input_dtype(net)), cast_note(net)
    model = (spec, o.device, o.trust_model, in_shape)
    out = (o.output_index, o.output_key)
    seed = o.seed
    client, cluster = _connect(o.dask)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        with progress_bar(console is not None) as bar:
            train_tasks = [(b, s, e, src, b, s, e, ~held[b]) for b, s, e in ranges]
            mean = run_pass(client, bar, f"inputs: mean ({n_workers} Dask workers)", _mean_task,
                            [(*t, dtype) for t in train_tasks]).value / n_train
            offsets = np.concatenate([[0], np.cumsum([int((~h).sum()) for h in held])])
            sweep = bar.add_task("inputs: principal subspace (passes over the blocks)", total=None)

            def matmat(M: np.ndarray) -> np.ndarray:
                parts = run_pass(client, None, "A·M", _matmat_task, [(*t, dtype, mean, M) for t in train_tasks],
                                 reduce=False)
                return np.concatenate(parts)

            def rmatmat(Q: np.ndarray) -> np.ndarray:
                return run_pass(client, None, "Aᵀ·Q", _rmatmat_task,
                                [(*t, dtype, mean, Q[offsets[t[0]]:offsets[t[0] + 1]]) for t in train_tasks]).value

            op = LinearOperator((n_train, d_in), matvec=lambda v: matmat(v[:, None])[:, 0],
                                rmatvec=lambda v: rmatmat(v[:, None])[:, 0], matmat=matmat, rmatmat=rmatmat,
                                dtype=np.float64)
            sub = principal_subspace(op, m, max_iter=MAX_POWER_ITERATIONS, seed=seed)  # randomized: passes only
            sv, Vt = sub.s, sub.Vt
            bar.update(sweep, completed=1, total=1)
            if not sv.size or sv[0] <= 64 * np.finfo(float).eps * np.sqrt(n_train) * np.linalg.norm(mean):
                raise ShapeError(f"--inputs: the {n_train} training rows are all identical (no variance around their "
                                 "mean): there is no principal subspace to fit the surrogate on")
            tr: _Train = run_pass(client, bar, "probing the model (training rows)", _train_task,
                                  [(*t, model, out, mean, Vt, R is not None) for t in train_tasks])
            d_out = tr.cross.shape[1]
            check_memory(8.0 * (4 * m * (d_in + d_out) + 6 * o.batch_size * (d_in + d_out)),
                         f"analyze --components {m} with {d_in} inputs and {d_out} outputs", o.max_memory)
            sur = SubspaceSurrogate(n_components=m, seed=seed).fit_statistics(
                n_train, mean, tr.moments.mean, Vt, tr.G, tr.cross, tr.ss_x, float(tr.moments.m2.sum()))
            if R is not None and R.shape[0] != d_out:
                raise ShapeError(f"reference must be (d_out, d_in) = ({d_out}, {d_in}) to match the model; got "
                                 f"{R.shape}")
            ref = None if R is None else (str(o.reference), o.max_memory)
            hd: _Held = run_pass(client, bar, "probing the model (held-out rows)", _held_task,
                                 [(b, s, e, src, b, s, e, held[b], model, out, sur, ref) for b, s, e in ranges])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    grp = None if R is None else tr.groups.merge(hd.groups)
    r2, r2_out, dwe, err = held_out_results(hd.sse, hd.moments.m2, hd.dw, grp, o.n_boot, seed)
    how = (f"Computed on a Dask cluster ({n_workers} workers): {len(ranges)} blocks of {o.batch_size} rows read by "
           "the workers, per-block statistics (means, subspace-iteration products, Gram and row-group sums) merged "
           "in a tree; the products A·M of the subspace iteration are gathered on the client ((n_train, m + 10)).")
    return _report(o.model, o.inputs, o.reference, o.out, o.force, sur, r2, r2_out, dwe, n, n_train, n_held, in_shape,
                   sub, seed, route, err, cast, how=how,
                   extra={"dask": {"address": o.dask, "workers": n_workers, "blocks": len(ranges)}})
