"""``linlens analyze --dask ADDRESS|local``: the surrogate of a model probed over inputs larger than memory.

The inputs stay on disk as a chunked Zarr array (``.zarr`` folder) or an ``.npy`` file. Each row block of
``batch_size`` rows is one Dask task: the worker opens the file itself (``np.load(mmap_mode="r")`` or
``zarr.open_array``, reading only its rows), loads the model once per worker process (TorchScript → the file
path is sent and ``torch.jit.load`` runs on the worker; a ``module:attr`` spec is imported there), probes the
block and returns a small :class:`~linlens.linalg.GramAccumulator` partial. Partials are merged in a binary
tree on the cluster; every fifth block is held out (as in the in-memory ``analyze``) and scored in a second
pass. Nothing is written unless everything succeeded: the report is written atomically at the end.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError, InputFileError, LinlensError, NonFiniteError, ShapeError
from linlens.linalg import GramAccumulator
from linlens.loaders import load_array, load_model
from linlens.report import check_destination
from linlens.scale import check_block_finite, tree_reduce
from linlens.surrogate import LinearSurrogate
from linlens.workflows.analyze import surrogate_report

__all__ = ["run_analyze_dask", "open_inputs", "read_rows"]

_MODELS: dict[tuple[str, str], Any] = {}  # per worker process: the model, loaded once


# ------------------------------------------------------------------------------------------------- inputs
def open_inputs(path: Path) -> tuple[tuple[str, str], int, int]:
    """Check an ``.npy`` file or a Zarr array folder without reading it; return ((kind, abs path), n, d)."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise InputFileError(f"inputs: file not found: {path}")
    if p.is_dir() or p.suffix.lower() == ".zarr":
        import zarr

        try:
            arr = zarr.open_array(str(p), mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises several types for a bad store
            raise InputFileError(f"inputs: {path} is not a Zarr array ({type(exc).__name__}: {exc})") from None
        kind, shape, dtype = "zarr", arr.shape, arr.dtype
    elif p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(f"inputs: cannot read {path} as .npy ({type(exc).__name__}: {exc})") from None
        kind, shape, dtype = "npy", arr.shape, arr.dtype
        del arr
    else:
        raise InputFileError(f"inputs: with --dask, expected a .npy file or a .zarr folder; got {path}")
    if len(shape) != 2:
        raise ShapeError(f"inputs must be 2-D (n_samples, d_in); got shape {tuple(shape)}")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise InputFileError(f"inputs must hold real numbers; got dtype {dtype}")
    return (kind, str(p)), int(shape[0]), int(shape[1])


def read_rows(source: tuple[str, str], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of the inputs as float64, read from disk (only those rows)."""
    kind, path = source
    if kind == "npy":
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop], dtype=np.float64)
    import zarr

    return np.asarray(zarr.open_array(path, mode="r")[start:stop], dtype=np.float64)


# ------------------------------------------------------------------------------------------ worker tasks
def _model(spec: str, device: str) -> tuple[Any, str]:
    from linlens.nn import resolve_device

    dev = str(resolve_device(device))
    key = (spec, dev)
    if key not in _MODELS:
        _MODELS[key] = load_model(spec, device=dev)
    return _MODELS[key], dev


def _probe(source: tuple[str, str], spec: str, device: str, b: int, start: int, stop: int) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    from linlens.surrogate import probe_model

    Yb = read_rows(source, start, stop)
    check_block_finite(Yb, "inputs", b, start)
    net, dev = _model(spec, device)
    where = f"block {b} (rows {start}–{stop - 1})"
    try:
        _, Yb, F = next(probe_model(net, Yb, len(Yb), dev))
    except NonFiniteError:
        raise NonFiniteError(f"model outputs: {where} contain NaN/Inf") from None
    except LinlensError as exc:
        raise type(exc)(str(exc).replace("batch 0", where)) from None
    return Yb, F


def _block_stats(source: tuple[str, str], spec: str, device: str, b: int, start: int, stop: int,
                 keep: int, seed: int) -> tuple[GramAccumulator, np.ndarray]:
    """Gram partial of one block and a small random sample of its rows (for data-weighted errors)."""
    Yb, F = _probe(source, spec, device, b, start, stop)
    rng = np.random.default_rng([seed, b])
    take = rng.choice(len(Yb), size=min(keep, len(Yb)), replace=False)
    return GramAccumulator().update(Yb, F), Yb[take]


def _heldout_stats(source: tuple[str, str], spec: str, device: str, b: int, start: int, stop: int,
                   coef: np.ndarray, intercept: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, int]:
    Yb, F = _probe(source, spec, device, b, start, stop)
    sse = float(np.sum((F - (Yb @ coef.T + intercept)) ** 2))
    return sse, F.sum(0), (F**2).sum(0), len(F)


def _acc_of(stats: tuple[GramAccumulator, np.ndarray]) -> GramAccumulator:
    return stats[0]


def _merge(a: GramAccumulator, b: GramAccumulator) -> GramAccumulator:
    out = GramAccumulator().merge(a)
    return out.merge(b)


def _tree(client: Any, futures: list[Any]) -> Any:
    return tree_reduce(futures, _merge, submit=lambda f, a, b: client.submit(f, a, b, pure=False))


# ------------------------------------------------------------------------------------------------ cluster
def _connect(address: str) -> tuple[Any, Any]:
    from dask.distributed import Client, LocalCluster

    if address == "local":
        cluster = LocalCluster(n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
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
) -> dict[str, Any]:
    """Fit the surrogate of ``model`` on ``inputs`` with Dask, compare with ``reference``, write a report.

    Arguments:
        model: TorchScript file or ``package.module:attr`` (loaded on each worker).
        inputs: ``.npy`` file or ``.zarr`` array folder (n_samples, d_in), read block by block on the workers.
        reference: optional (d_out, d_in) operator to compare with.
        out: report folder (written atomically at the end, only on success).
        force: replace an existing report folder.
        batch_size: rows per task.
        fit_intercept: fit the offset of the surrogate.
        dask: scheduler address, or "local" to start a ``LocalCluster`` (closed afterwards).
        device: torch device on the workers ("auto" → CUDA where the worker has one).
        seed: seed of the probe sample for data-weighted errors.
        console: rich console for progress (None: quiet).

    Returns:
        The summary dict (same keys as :func:`linlens.workflows.analyze.run_analyze`).
    """
    from dask.distributed import as_completed

    from linlens.nn import progress_bar

    check_destination(out, force)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be ≥ 1; got {batch_size}")
    source, n, d = open_inputs(inputs)
    if n < 2:
        raise ShapeError(f"inputs must have at least 2 rows to fit a surrogate; got {n}")
    R = load_array(reference, "reference") if reference is not None else None
    spec = _model_spec(model)
    load_model(spec, device="cpu")  # fail early, on the client, for a missing or unreadable model
    ranges = [(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    n_batches = len(ranges)
    held = [b for b in range(n_batches) if n_batches >= 5 and b % 5 == 4]
    keep = max(1, 20000 // n_batches)

    client, cluster = _connect(dask)
    try:
        with progress_bar(console is not None) as bar:
            task = bar.add_task(f"probing the model on Dask ({len(client.scheduler_info()['workers'])} workers)",
                                total=n_batches)
            parts = [client.submit(_block_stats, source, spec, device, b, s, e, keep, seed, pure=False)
                     for b, (s, e) in enumerate(ranges)]
            for fut in as_completed(parts):
                fut.result()  # re-raises a worker's NonFiniteError / ModelError here
                bar.advance(task)
            accs = [client.submit(_acc_of, p, pure=False) for p in parts]
            full_f = _tree(client, accs)
            train_f = _tree(client, [a for b, a in enumerate(accs) if b not in set(held)]) if held else full_f
            full_acc, train_acc = client.gather([full_f, train_f])
            probes = np.concatenate([p[1] for p in client.gather(parts)])
            full = LinearSurrogate(fit_intercept=fit_intercept)._fit_accumulator(full_acc)
            sur = LinearSurrogate(fit_intercept=fit_intercept)._fit_accumulator(train_acc)
            if held:
                t2 = bar.add_task("held-out check", total=len(held))
                hs = [client.submit(_heldout_stats, source, spec, device, b, *ranges[b], sur.coef_,
                                    sur.intercept_, pure=False) for b in held]
                sse, sum_f, sum_f2, m = 0.0, 0.0, 0.0, 0
                for fut in as_completed(hs):
                    e, sf, sf2, k = fut.result()
                    sse, sum_f, sum_f2, m = sse + e, sum_f + sf, sum_f2 + sf2, m + k
                    bar.advance(t2)
            n_workers = len(client.scheduler_info()["workers"])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    if held and m > 1:
        ss_tot = sum_f2 - sum_f**2 / m
        r2 = float(1 - sse / ss_tot.sum()) if ss_tot.sum() > 0 else float("nan")
        r2_where = f"held-out ({len(held)} of {n_batches} batches)"
    else:  # in-sample R² from the merged statistics: 1 − SSE/SST with SSE = tr(S_yy − B coefᵀ)
        r2 = _in_sample_r2(full_acc, full)
        r2_where = "in-sample (fewer than 5 batches: no held-out split)"
    return _report(model, inputs, n, n_batches, batch_size, full, r2, r2_where, probes, R, out, force,
                   {"address": dask, "workers": n_workers})


def _in_sample_r2(acc: GramAccumulator, sur: LinearSurrogate) -> float:
    d = acc.d_in
    S = acc.S
    if sur.fit_intercept:
        Sxx, Sxy, Syy = S[:d, :d], S[:d, d:], S[d:, d:]
    else:
        z = np.concatenate([acc.mean_x, acc.mean_y])
        T = S + acc.n * np.outer(z, z)
        Sxx, Sxy, Syy = T[:d, :d], T[:d, d:], T[d:, d:]
    C = sur.coef_.T
    sse = np.diag(Syy - 2 * C.T @ Sxy + C.T @ Sxx @ C)
    sst = np.diag(S[d:, d:])
    r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), np.where(sse <= 0, 1.0, 0.0))
    return float(np.mean(r2))


def _report(model: str, inputs: Path, n: int, n_batches: int, batch_size: int, full: LinearSurrogate,
            r2: float, r2_where: str, P: np.ndarray, R: np.ndarray | None, out: Path, force: bool,
            dask_info: dict[str, Any]) -> dict[str, Any]:
    C = full.coef_
    intro = (
        f"Global linear surrogate of the model, fitted on a Dask cluster ({dask_info['workers']} workers) from "
        f"per-block streaming statistics over {n} inputs ({n_batches} blocks of {batch_size}, each probed on a "
        f"worker and reduced by merging Gram partials); outputs ≈ inputs @ Cᵀ + c with C of shape {C.shape}. "
        f"R² of the surrogate against the model's outputs, {r2_where}: {r2:.6g} "
        f"(1 means the model is exactly affine on these inputs; 1 − R² is its nonlinear residual fraction)."
    )
    return surrogate_report(f"linlens analyze (Dask): {model}", intro, full, r2, r2_where, P, R, out, force,
                            {"model": model, "inputs": str(inputs), "n_samples": n, "dask": dask_info})



