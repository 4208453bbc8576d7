"""``linlens analyze``, the dense route in memory: the global linear surrogate of a user's model on the user's
inputs, compared with a reference operator when one is given.

The model is probed once, batch by batch (in eval mode, without gradients, on copies of the inputs); each
batch adds to streaming statistics (:mod:`linlens.workflows.analyze_common`: Gram and TSQR accumulators of
training and held-out rows), so the inputs never need to fit in memory as model outputs. The rules (the
held-out split of rows, the solver policy, the one R²) live in ``analyze_common`` and are the same on Dask.
"""

from __future__ import annotations

from typing import Any

from linlens.errors import ShapeError
from linlens.loaders import load_model
from linlens.nn import progress_bar, resolve_device
from linlens.probing import FlatModel, cast_note, model_input_dtype, probe_model
from linlens.report import check_destination
from linlens.workflows.analyze_common import (
    BlockStats,
    block_stats,
    check_analyze_memory,
    finish_analyze,
    grouped_possible,
    grouped_shift,
    held_grouped,
    load_inputs,
    load_linear_map,
    needs_qr_pass,
    received_rows,
    reference_error,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route

__all__ = ["run_dense"]


def run_dense(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The dense route in memory: fit the surrogate of ``options.model`` on ``options.inputs``, compare with
    ``options.reference``, write a report.

    Arguments:
        options: the run's options (fields used: model, inputs (n_samples, d_in) or (n_samples, *shape), e.g.
            images, in .npy (memory-mapped), .npz, .pt, .csv/.txt; reference (d_out, d_in); out, force, batch_size,
            fit_intercept, device, seed, trust_model, output_index, output_key, max_memory, n_boot, full_spectrum). See
            :class:`~linlens.workflows.analyze_options.AnalyzeOptions`.
        route: the plan's route (recorded in the report).
        console: rich console for progress (None: quiet).

    Returns:
        The summary dict (headline numbers).

    Example:
        >>> import json, numpy as np
        >>> from linlens.workflows._examples import linear_files
        >>> d, W = linear_files()  # m.pt: a float64 Linear y ↦ Wy + b (TorchScript); y.npy: 300 rows of N(0, I₃)
        >>> o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", out=d / "report", trust_model=True)
        >>> s = run_dense(o, Route("dense", "example"))
        >>> C = np.load(d / "report/surrogate_coef.npy"); s["solver"], bool(np.allclose(C, W))  # C = W
        ('gram', True)
    """
    o = options
    model, inputs, reference, out, force = o.model, o.inputs, o.reference, o.out, o.force
    batch_size, fit_intercept, device, seed = o.batch_size, o.fit_intercept, o.device, o.seed
    trust_model, output_index, output_key, max_memory = o.trust_model, o.output_index, o.output_key, o.max_memory
    check_destination(out, force)
    dev = str(resolve_device(device))
    Y, in_shape = load_inputs(inputs, max_memory)  # rows; the model sees them in in_shape
    n, d_in = Y.shape
    if n < 2:
        raise ShapeError(f"inputs must have at least 2 rows to fit a surrogate; got {n}")
    check_analyze_memory(d_in, 1, min(batch_size, n), max_memory)
    R = None if reference is None else load_linear_map(reference, "reference", max_bytes=max_memory).to_dense()
    net = load_model(model, device=dev, trust_model=trust_model)
    if len(in_shape) > 1:
        net = FlatModel(net, in_shape)
    n_batches = -(-n // batch_size)
    # the error against R with an interval: grouped sums of the training rows (when they fit in memory)
    shift, err, err_note = None, None, ""
    if R is not None:
        ok, err_note = grouped_possible(d_in, R.shape[0], max_memory)
        shift = grouped_shift(Y) if ok else None
    with progress_bar(console is not None) as bar:

        def one_pass(mode: str, what: str) -> BlockStats:
            stats = BlockStats(mode=mode)
            task = bar.add_task(what, total=n_batches)
            start = 0
            for b, Yb, F in probe_model(net, Y, batch_size, dev, output_index=output_index, output_key=output_key):
                if b == 0:
                    check_analyze_memory(d_in, F.shape[1], min(batch_size, n), max_memory)
                    if R is not None and F.shape[1] != R.shape[0]:
                        raise ShapeError(f"reference must be (d_out, d_in) = ({F.shape[1]}, {d_in}) to match the "
                                         f"model; got {R.shape}")
                block_stats(Yb, F, start, seed, n, mode, shift=shift if mode == "gram" else None, into=stats)
                start += len(Yb)
                bar.advance(task)
            return stats

        stats = one_pass("gram", "probing the model")
        passes = 1
        if needs_qr_pass(stats, fit_intercept):  # ill-conditioned inputs: TSQR, as LinearSurrogate.fit does
            grouped = stats.grouped
            stats = one_pass("qr", "second pass (ill-conditioned inputs: TSQR)")
            stats.grouped = grouped
            passes = 2
        if stats.grouped is not None:  # held-out inputs (no model call) against the training fit and R
            B, dtype = stats.grouped.coef(), model_input_dtype(net)
            task = bar.add_task("held-out rows: error against R", total=n_batches)
            for s in range(0, n, batch_size):
                rows = received_rows(Y[s:s + batch_size], dtype)
                stats.grouped = stats.grouped.merge(held_grouped(rows, s, seed, shift, B, R, R.shape[0]))
                bar.advance(task)
            err = reference_error(stats.grouped, o.n_boot, seed)
            if err is None:
                err_note = "no interval: the reference's outputs have no variance on the held-out rows"
    return finish_analyze(stats, fit_intercept, seed, R, out, force, f"linlens analyze: {model}",
                          f"fitted by streaming least squares over {n} inputs (batches of {batch_size}, {passes} "
                          "pass(es) of the model)" + (f"; {cast_note(net)}" if cast_note(net) else ""),
                          {"model": model, "inputs": str(inputs), "n_samples": n, "model_passes": passes,
                           "input_shape": list(in_shape), "input_cast": cast_note(net)}, route=route, err=err,
                          err_note=err_note, full_spectrum=o.full_spectrum)
