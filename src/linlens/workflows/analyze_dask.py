"""``linlens analyze --dask ADDRESS|local``: the surrogate of a model probed over inputs larger than memory.

The inputs stay on disk as a chunked Zarr array (``.zarr`` folder) or an ``.npy`` file. Each row block of
``batch_size`` rows is one Dask task: the worker opens the file itself (``np.load(mmap_mode="r")`` or
``zarr.open_array``, reading only its rows), loads the model once per worker process (a model file → its
path is sent, and it is inspected and loaded on the worker; a ``module:attr`` spec is imported there), probes
the block and returns its :class:`~linlens.workflows.analyze_common.BlockStats` (Gram partials of training
and held-out rows; TSQR partials in a second pass when the inputs are ill-conditioned). Partials are merged
in a binary tree on the cluster. The held-out split of rows, the solver policy and the one R² are those of
the in-memory route (:mod:`linlens.workflows.analyze_common`), so both give the same numbers. Worker tasks
never raise: a failure comes back as a value and becomes one line on the client (no worker tracebacks in
the logs). Nothing is written unless everything succeeded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError, InputFileError, LinlensError, NonFiniteError, ShapeError
from linlens.loaders import load_model
from linlens.nn import progress_bar, resolve_device
from linlens.probing import FlatModel, cast_note, model_input_dtype, probe_model
from linlens.report import check_destination
from linlens.scale import check_block_finite, require_dask, tree_reduce
from linlens.validation import check_real
from linlens.workflows.analyze_common import (
    BlockStats,
    block_stats,
    check_analyze_memory,
    finish_analyze,
    grouped_possible,
    grouped_shift,
    held_grouped,
    load_linear_map,
    merge_stats,
    needs_qr_pass,
    received_rows,
    reference_error,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.dask_passes import unwrap

__all__ = ["run_dask", "run_analyze_dask", "open_inputs", "read_rows"]

_MODELS: dict[tuple[str, str, bool, tuple[int, ...]], Any] = {}  # per worker process: the model, loaded once


# ------------------------------------------------------------------------------------------------- inputs
def open_inputs(path: Path, name: str = "inputs") -> tuple[tuple[str, str], int, int, tuple[int, ...]]:
    """Check an ``.npy`` file or a Zarr array folder without reading it (``name`` starts its error messages).

    Returns:
        ((kind, abs path), n rows, d = values per row, the shape of one row (d,) or native, e.g. (C, H, W)).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "y.npy"; np.save(p, np.zeros((5, 2, 3)))
        >>> (kind, path), n, d, shape = open_inputs(p); kind, n, d, shape  # nothing read but the header
        ('npy', 5, 6, (2, 3))
    """
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise InputFileError(f"{name}: file not found: {path}")
    if p.is_dir() or p.suffix.lower() == ".zarr":
        import zarr

        try:
            arr = zarr.open_array(str(p), mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises several types for a bad store
            raise InputFileError(f"{name}: {path} is not a Zarr array ({type(exc).__name__}: {exc})") from None
        kind, shape, dtype = "zarr", arr.shape, arr.dtype
    elif p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(f"{name}: cannot read {path} as .npy ({type(exc).__name__}: {exc})") from None
        kind, shape, dtype = "npy", arr.shape, arr.dtype
        del arr
    else:
        raise InputFileError(f"{name}: with --dask, expected a .npy file or a .zarr folder; got {path}")
    if len(shape) < 2:
        raise ShapeError(f"{name} need a row axis and at least one feature axis (n_samples, d_in) or "
                         f"(n_samples, *shape); got shape {tuple(shape)}")
    check_real(np.zeros(0, dtype=dtype), f"{name} ({path})")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise InputFileError(f"{name} must hold real numbers; got dtype {dtype}")
    return (kind, str(p)), int(shape[0]), int(np.prod(shape[1:])), tuple(int(k) for k in shape[1:])


def read_rows(source: tuple[str, str], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of the inputs as float64 vectors (b, d), read from disk (only those rows).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "y.npy"; np.save(p, np.arange(12, dtype=np.float32).reshape(4, 3))
        >>> read_rows(open_inputs(p)[0], 1, 3).tolist()  # rows 1 and 2, as float64
        [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    """
    kind, path = source
    if kind == "npy":
        rows = np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop], dtype=np.float64)
    else:
        import zarr

        rows = np.asarray(zarr.open_array(path, mode="r")[start:stop], dtype=np.float64)
    return rows.reshape(len(rows), -1)


# ------------------------------------------------------------------------------------------ worker tasks
def _model(spec: str, device: str, trust_model: bool, in_shape: tuple[int, ...]) -> tuple[Any, str]:
    """The model, loaded once per worker, called on rows of their native shape ``in_shape``."""
    dev = str(resolve_device(device))
    key = (spec, dev, trust_model, in_shape)
    if key not in _MODELS:
        net = load_model(spec, device=dev, trust_model=trust_model)
        _MODELS[key] = FlatModel(net, in_shape) if len(in_shape) > 1 else net
    return _MODELS[key], dev


def _block_task(source: tuple[str, str], spec: str, device: str, b: int, start: int, stop: int, seed: int,
                n: int, opts: dict[str, Any], mode: str = "gram") -> tuple[str, Any]:
    """Probe one block on a worker; returns ("ok", BlockStats) or ("error", (error class name, one line)).

    Never raises, so no worker logs a traceback; the client turns an error into one line."""
    where = f"block {b} (rows {start}–{stop - 1})"
    try:
        Yb = read_rows(source, start, stop)
        check_block_finite(Yb, "inputs", b, start)
        net, dev = _model(spec, device, opts["trust_model"], tuple(opts["in_shape"]))
        try:
            _, Yb, F = next(probe_model(net, Yb, len(Yb), dev, output_index=opts["output_index"],
                                        output_key=opts["output_key"]))
        except NonFiniteError:
            raise NonFiniteError(f"model outputs: {where} contain NaN/Inf") from None
        except LinlensError as exc:
            raise type(exc)(str(exc).replace("batch 0", where)) from None
        return "ok", block_stats(Yb, F, start, seed, n, mode, shift=opts.get("shift") if mode == "gram" else None)
    except LinlensError as exc:
        return "error", (type(exc).__name__, str(exc))
    except BaseException as exc:  # noqa: BLE001 - anything else on a worker is reported as a model failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "error", ("ModelError", f"{where}: {type(exc).__name__}: {first[:200]}")


def _held_task(source: tuple[str, str], spec: str, device: str, b: int, start: int, stop: int, seed: int,
               opts: dict[str, Any], B: np.ndarray, R: np.ndarray) -> tuple[str, Any]:
    """The held-out rows of one block against the training fit B and R (inputs only, cast as the model receives
    them; no model call); returns ("ok", GroupedFit partial) or ("error", ...), never raises."""
    try:
        net, _ = _model(spec, device, opts["trust_model"], tuple(opts["in_shape"]))
        rows = received_rows(read_rows(source, start, stop), model_input_dtype(net))
        return "ok", held_grouped(rows, start, seed, opts["shift"], B, R, R.shape[0])
    except LinlensError as exc:
        return "error", (type(exc).__name__, str(exc))
    except BaseException as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "error", ("ModelError", f"block {b}: {type(exc).__name__}: {first[:200]}")


def _merge_grouped(a: tuple[str, Any], b: tuple[str, Any]) -> tuple[str, Any]:
    if a[0] != "ok":
        return a
    if b[0] != "ok":
        return b
    return "ok", a[1].merge(b[1])  # a new GroupedFit


def _merge(a: tuple[str, Any], b: tuple[str, Any]) -> tuple[str, Any]:
    if a[0] != "ok":
        return a
    if b[0] != "ok":
        return b
    return "ok", merge_stats(a[1], b[1])


def _tree(client: Any, futures: list[Any], merge: Any = _merge) -> Any:
    return tree_reduce(futures, merge, submit=lambda f, a, b: client.submit(f, a, b, pure=False))


# ------------------------------------------------------------------------------------------------ cluster
def _connect(address: str) -> tuple[Any, Any]:
    from dask.distributed import Client, LocalCluster

    if address == "local":
        cluster = LocalCluster(n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.CRITICAL)
        return Client(cluster), cluster
    try:
        return Client(address, timeout="15s"), None
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a bad address
        raise ConfigError(f"--dask: cannot connect to a Dask scheduler at {address!r} "
                          f"({type(exc).__name__}: {exc}); use 'local' to start a LocalCluster") from None


def _model_spec(model: str) -> str:
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else model  # workers may run elsewhere: send an absolute path


def run_analyze_dask(
    model: str,
    inputs: Path,
    reference: Path | None = None,
    out: Path = Path("linlens-analyze"),
    force: bool = False,
    batch_size: int = 4096,
    fit_intercept: bool = True,
    dask: str = "local",
    device: str = "auto",
    seed: int = 0,
    console: Any = None,
    *,
    trust_model: bool = False,
    output_index: int | None = None,
    output_key: str | None = None,
    max_memory: int | None = None,
) -> dict[str, Any]:
    """:func:`run_dask` with the older signature (every argument is one the Dask route uses).

    Example:
        >>> from dask.distributed import LocalCluster
        >>> from linlens.workflows._examples import linear_files
        >>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
        >>> d, W = linear_files()  # m.pt: a float64 Linear y ↦ Wy + b (TorchScript); y.npy: 300 rows of N(0, I₃)
        >>> s = run_analyze_dask(str(d / "m.pt"), d / "y.npy", out=d / "report", trust_model=True, batch_size=100,
        ...                      dask=cluster.scheduler_address); cluster.close()
        >>> s["route"], round(s["R² (pooled, held-out)"], 12), bool(np.isclose(s["σ_max(C)"], np.linalg.norm(W, 2)))
        ('dense (Dask)', 1.0, True)
    """
    o = AnalyzeOptions(model=model, inputs=inputs, reference=reference, out=out, force=force, batch_size=batch_size,
                       fit_intercept=fit_intercept, dask=dask, device=device, seed=seed, trust_model=trust_model,
                       output_index=output_index, output_key=output_key, max_memory=max_memory)
    o.check_values()
    route = Route("dask", f"--dask {dask}: called as run_analyze_dask")
    return route.summary(run_dask(o, route, console))


def run_dask(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """Fit the surrogate of the model on the inputs with Dask, compare with the reference, write a report.

    Arguments:
        options: the run's options (:class:`~linlens.workflows.analyze_options.AnalyzeOptions`). Fields used:
            model (loaded, and a file inspected, on each worker); inputs, an ``.npy`` file or ``.zarr`` array
            folder (n_samples, d_in) or (n_samples, *shape) (images: the model is called on that shape), read block
            by block on the workers; reference (d_out, d_in) and full_spectrum (its full SVD above the size rule);
            out (checked first, written atomically at the end,
            only on success); force; batch_size (rows per task; results do not depend on it); fit_intercept;
            dask (scheduler address, or "local" to start a ``LocalCluster``, closed afterwards); device ("auto" →
            CUDA where the worker has one); seed; trust_model, output_index, output_key, max_memory.
        route: the plan's route (recorded in the report).
        console: rich console for progress (None: quiet).

    Returns:
        The summary dict (same keys as the in-memory route's).

    Example:
        >>> from dask.distributed import LocalCluster
        >>> import json, numpy as np
        >>> from linlens.workflows._examples import linear_files
        >>> d, W = linear_files()  # m.pt: a float64 Linear y ↦ Wy + b (TorchScript); y.npy: 300 rows of N(0, I₃)
        >>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
        >>> o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", out=d / "report", trust_model=True,
        ...                    dask=cluster.scheduler_address, batch_size=64)  # 5 blocks, merged in a tree
        >>> s = run_dask(o, Route("dask", "example")); cluster.close()
        >>> s["inputs"], round(s["R² (pooled, held-out)"], 12), bool(np.isclose(s["σ_min(C)"], np.linalg.svd(W)[1][-1]))
        (300, 1.0, True)
    """
    o = options
    model, inputs, reference, out, force = o.model, o.inputs, o.reference, o.out, o.force
    batch_size, fit_intercept, dask, device, seed = o.batch_size, o.fit_intercept, o.dask, o.device, o.seed
    trust_model, output_index, output_key, max_memory = o.trust_model, o.output_index, o.output_key, o.max_memory
    require_dask("--dask")  # the [dask] extra: one line naming it, before anything runs
    from dask.distributed import as_completed  # optional heavy dependency: only for --dask

    check_destination(out, force)
    source, n, d, in_shape = open_inputs(inputs)
    if n < 2:
        raise ShapeError(f"inputs must have at least 2 rows to fit a surrogate; got {n}")
    check_analyze_memory(d, 1, min(batch_size, n), max_memory)
    R = None if reference is None else load_linear_map(reference, "reference", max_bytes=max_memory).to_dense()
    spec = _model_spec(model)
    # fail early, on the client (missing, unsafe); its dtype says whether the workers cast the probes
    cast = cast_note(load_model(spec, device="cpu", trust_model=trust_model))
    ranges = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    opts = {"trust_model": trust_model, "output_index": output_index, "output_key": output_key,
            "in_shape": in_shape}
    err, err_note = None, ""
    if R is not None:  # the error against R with an interval: grouped sums, when they fit in memory
        ok, err_note = grouped_possible(d, R.shape[0], max_memory)
        if ok:
            opts["shift"] = grouped_shift(read_rows(source, 0, min(n, 1024)))

    client, cluster = _connect(dask)
    try:
        with progress_bar(console is not None) as bar:
            n_workers = len(client.scheduler_info()["workers"])

            def one_pass(mode: str, what: str) -> BlockStats:
                task = bar.add_task(what, total=len(ranges))
                parts = [client.submit(_block_task, source, spec, device, b, s, e, seed, n, opts, mode, pure=False)
                         for b, (s, e) in enumerate(ranges)]
                for fut in as_completed(parts):
                    res = fut.result()
                    if res[0] != "ok":
                        unwrap(res)  # the first failure, as one line
                    bar.advance(task)
                return unwrap(_tree(client, parts).result())

            stats = one_pass("gram", f"probing the model on Dask ({n_workers} workers)")
            passes = 1
            if R is not None and stats.train.d_out != R.shape[0]:
                raise ShapeError(f"reference must be (d_out, d_in) = ({stats.train.d_out}, {d}) to match the model; "
                                 f"got {R.shape}")
            if needs_qr_pass(stats, fit_intercept):  # ill-conditioned inputs: TSQR partials, as fit does on Dask
                grouped = stats.grouped
                stats = one_pass("qr", "second pass (ill-conditioned inputs: TSQR)")
                stats.grouped = grouped
                passes = 2
            if stats.grouped is not None:  # held-out inputs on the workers (no model call) against B and R
                task = bar.add_task("held-out rows: error against R", total=len(ranges))
                B_f, R_f = client.scatter(stats.grouped.coef(), broadcast=True), client.scatter(R, broadcast=True)
                parts = [client.submit(_held_task, source, spec, device, b, s, e, seed, opts, B_f, R_f, pure=False)
                         for b, (s, e) in enumerate(ranges)]
                for fut in as_completed(parts):
                    if fut.result()[0] != "ok":
                        unwrap(fut.result())
                    bar.advance(task)
                stats.grouped = stats.grouped.merge(unwrap(_tree(client, parts, _merge_grouped).result()))
                err = reference_error(stats.grouped, o.n_boot, seed)
                if err is None:
                    err_note = "no interval: the reference's outputs have no variance on the held-out rows"
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return finish_analyze(stats, fit_intercept, seed, R, out, force, f"linlens analyze (Dask): {model}",
                          f"fitted on a Dask cluster ({n_workers} workers) from per-block streaming statistics over "
                          f"{n} inputs ({len(ranges)} blocks of {batch_size}, each probed on a worker, partials "
                          f"merged in a tree; {passes} pass(es) of the model)" + (f"; {cast}" if cast else ""),
                          {"model": model, "inputs": str(inputs), "n_samples": n, "model_passes": passes,
                           "input_shape": list(in_shape), "dask": {"address": dask, "workers": n_workers},
                           "input_cast": cast},
                          route=route, err=err, err_note=err_note, full_spectrum=o.full_spectrum)
