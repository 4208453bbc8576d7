"""``linlens analyze --dask ADDRESS|local --targets --operator <circular>``: the Fourier route out of core.

The inputs y and targets x stay on disk (``.npy`` files or chunked Zarr array folders); each block of
``batch_size`` rows is one Dask task that reads only its rows. The rows are split into training pairs and held-out
probes by the in-memory route's seeded permutation (:func:`linlens.workflows.inverse.split_rows`), and every
statistic is a per-block partial merged in a binary tree (:func:`linlens.scale.tree_reduce`):

1. **training pairs** (no model call): C_data as a partial :class:`~linlens.spectral.SpectralSurrogate` of (y, x)
   per block, with its Poisson-bootstrap replicates (each image's weights are keyed by its position among the
   training images, so the merged replicates are those of the in-memory fit); the residuals y − Ax (A applied by
   its transfer function) as per-column moments for σ; the training means; the prior's spectrum is C_data's
   output spectrum.
2. **probes** (the model, loaded once per worker): the network's partial surrogate with its replicates, and per
   image the squared test errors of the network, C_data, the Wiener filter and the mean.
3. **probes again** (no model call): the in-sample surrogate's squared test errors (it is known only after 2).

The result, the report and the verdicts are the in-memory Fourier route's
(:func:`~linlens.workflows.inverse.fourier_report`): the same numbers up to rounding, bootstrap replicates included
(``tests/workflows/test_analyze_fourier_dask.py`` checks it on a 2-worker ``LocalCluster``). Worker tasks never
raise: a failure comes back as a value and becomes one line on the client; nothing is written unless everything
succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linlens.errors import LinlensError, NonFiniteError, ShapeError
from linlens.loaders import load_model
from linlens.nn import progress_bar
from linlens.operators import circulant
from linlens.probing import cast_note, probe_model
from linlens.report import check_destination
from linlens.scale import ColumnMoments, check_block_finite, require_dask
from linlens.spectral import SpectralSurrogate, apply_filter, errors_from_squares, spectral_analysis, wiener_filter
from linlens.stats import noise_std_from_sums
from linlens.workflows.analyze_common import signal_shape
from linlens.workflows.analyze_dask import _connect, _model, _model_spec, open_inputs, read_rows
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.dask_passes import run_pass
from linlens.workflows.inverse import check_fourier_memory, fourier_noise_std, fourier_report, split_rows

__all__ = ["run_fourier_dask", "TrainStats", "ProbeStats"]


# -------------------------------------------------------------------------------------- block statistics
@dataclass
class TrainStats:
    """Mergeable statistics of the training pairs of a run of blocks (pass 1).

    Arguments:
        data: partial C_data (None when the blocks hold no training row).
        residual: per-column moments of r = y − Ax (σ).
        y_sum, y_sq, x_sum: Σ y, Σ y², Σ x over the training rows' values.
        first_y, first_x: the first row of inputs and targets of the run; same_y, same_x: every row equals it.

    Example:
        >>> from linlens.scale import ColumnMoments
        >>> a = TrainStats(None, ColumnMoments(), 3.0, 5.0, 1.0, np.zeros(2), np.ones(2), True, True)
        >>> b = TrainStats(None, ColumnMoments(), 1.0, 1.0, 2.0, np.zeros(2), np.zeros(2), True, True)
        >>> m = a.merge(b); (m.y_sum, m.y_sq, m.x_sum), m.same_y, m.same_x  # sums add; b's first x differs from a's
        ((4.0, 6.0, 3.0), True, False)
    """

    data: SpectralSurrogate | None
    residual: ColumnMoments
    y_sum: float
    y_sq: float
    x_sum: float
    first_y: np.ndarray
    first_x: np.ndarray
    same_y: bool
    same_x: bool

    def merge(self, other: TrainStats) -> TrainStats:
        data = self.data if other.data is None else other.data if self.data is None else self.data.merge(other.data)
        return TrainStats(data, self.residual.merge(other.residual), self.y_sum + other.y_sum,
                          self.y_sq + other.y_sq, self.x_sum + other.x_sum, self.first_y, self.first_x,
                          self.same_y and other.same_y and bool(np.array_equal(self.first_y, other.first_y)),
                          self.same_x and other.same_x and bool(np.array_equal(self.first_x, other.first_x)))


@dataclass
class ProbeStats:
    """Mergeable statistics of the probes of a run of blocks (passes 2 and 3): the partial surrogate (pass 2),
    per-image squared errors of each predictor (in file order) and the targets' range.

    Example:
        >>> a = ProbeStats(None, {"model": [np.array([1.0])]}, x_min=-1.0, x_max=2.0)
        >>> b = ProbeStats(None, {"model": [np.array([2.0])]}, x_min=-3.0, x_max=1.0)
        >>> m = a.merge(b); [v.tolist() for v in m.squares["model"]], m.x_min, m.x_max  # in file order; the range
        ([[1.0], [2.0]], -3.0, 2.0)
    """

    surrogate: SpectralSurrogate | None
    squares: dict[str, list[np.ndarray]] = field(default_factory=dict)
    x_min: float = np.inf
    x_max: float = -np.inf

    def merge(self, other: ProbeStats) -> ProbeStats:
        s, o = self.surrogate, other.surrogate
        sur = s if o is None else o if s is None else s.merge(o)
        sq = {k: self.squares.get(k, []) + other.squares.get(k, []) for k in {**self.squares, **other.squares}}
        return ProbeStats(sur, sq, min(self.x_min, other.x_min), max(self.x_max, other.x_max))


def _rows(source: tuple[str, str], name: str, b: int, s: int, e: int, keep: np.ndarray) -> np.ndarray:
    rows = read_rows(source, s, e)
    check_block_finite(rows, name, b, s)
    return rows[keep]


def _train_task(src_y: tuple[str, str], src_x: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray,
                first: int, shp: tuple[int, ...], H: np.ndarray, n_boot: int, seed: int) -> TrainStats:
    Yall, Xall = read_rows(src_y, s, e), read_rows(src_x, s, e)
    check_block_finite(Yall, "inputs", b, s)
    check_block_finite(Xall, "targets", b, s)
    Y, X = Yall[keep], Xall[keep]
    data = None
    if len(Y):
        data = SpectralSurrogate(image_shape=shp, n_boot=n_boot, seed=seed + 1).partial_fit(
            Y.reshape(-1, *shp), X.reshape(-1, *shp), first_index=first)
    r = Y - circulant(H, shp).matvec(X)
    return TrainStats(data, ColumnMoments().update(r), float(Y.sum()), float(np.sum(Y**2)), float(X.sum()),
                      Yall[0].copy(), Xall[0].copy(),  # copies: a view would keep the whole block alive with the result
                      bool(np.all(Yall == Yall[0])), bool(np.all(Xall == Xall[0])))


def _probe_task(src_y: tuple[str, str], src_x: tuple[str, str], b: int, s: int, e: int, keep: np.ndarray,
                first: int, shp: tuple[int, ...], n_boot: int, seed: int, filters: dict[str, tuple[Any, ...]],
                model: tuple[str, str, bool, tuple[int, ...]] | None) -> ProbeStats:
    """Pass 2 (``model`` given: the network's partial surrogate and its test errors) or pass 3 (the surrogate's)."""
    Y, X = _rows(src_y, "inputs", b, s, e, keep), _rows(src_x, "targets", b, s, e, keep)
    if not len(Y):
        return ProbeStats(None)
    sq = {k: [np.sum((apply_filter(T, Y, shp, m_in, m_out) - X) ** 2, axis=1)] for k, (T, m_in, m_out) in
          filters.items()}
    if model is None:
        return ProbeStats(None, sq)
    spec, device, trust, in_shape = model
    net, dev = _model(spec, device, trust, in_shape)
    try:
        _, Yr, F = next(probe_model(net, Y, len(Y), dev))  # Yr: the rows as the model received them
    except NonFiniteError:
        raise NonFiniteError(f"model outputs: block {b} (rows {s}–{e - 1}) contain NaN/Inf") from None
    except LinlensError as exc:
        raise type(exc)(str(exc).replace("batch 0", f"block {b} (rows {s}–{e - 1})")) from None
    if F.shape != Y.shape:
        raise ShapeError(f"the Fourier route needs a model whose outputs are images of its inputs' shape {shp}; "
                         f"got {F.shape[1]} values per row")
    sur = SpectralSurrogate(image_shape=shp, n_boot=n_boot, seed=seed).partial_fit(
        Yr.reshape(-1, *shp), F.reshape(-1, *shp), first_index=first)
    sq = {"model": [np.sum((F - X) ** 2, axis=1)], **sq}
    return ProbeStats(sur, sq, float(X.min()), float(X.max()))


# ------------------------------------------------------------------------------------------------- route
def run_fourier_dask(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The Fourier route on a Dask cluster: inputs and targets read block by block on the workers.

    Arguments:
        options: the run's options. Fields used: model (loaded on each worker), inputs and targets (``.npy`` or
            ``.zarr``, (n, L), (n, H, W) or (n, 1, H, W)), operator (loaded by the plan: ``route.operator``; the
            workers get its transfer function only), noise_std, n_boot, dask (address or "local"), out, force,
            batch_size (rows per task; results do not depend on it), device, seed, trust_model, max_memory (the
            bootstrap's memory check, as in memory).
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        The summary dict (the in-memory Fourier route's keys).

    Example:
        >>> import json
        >>> from linlens.workflows._examples import image_files
        >>> d = image_files()  # x (100, 1, 4, 4), y = x/2 + 0.1·noise, A.npy = I/2, net.pt = 2I = A⁻¹
        >>> from dask.distributed import LocalCluster
        >>> from linlens.workflows.analyze import plan
        >>> cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
        >>> o = AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                    operator=str(d / "A.npy"), n_boot=10, out=d / "report", trust_model=True,
        ...                    dask=cluster.scheduler_address)
        >>> s = run_fourier_dask(o, plan(o)); cluster.close()
        >>> a = json.loads((d / "report/metrics.json").read_text())["analysis"]
        >>> round(a["errors"]["A⁻¹"], 12), round(a["surrogate"]["linear_fraction"], 12)  # the net is A⁻¹ exactly
        (0.0, 1.0)
    """
    o = options
    require_dask("--dask")
    check_destination(o.out, o.force)
    n_boot = 100 if o.n_boot is None else o.n_boot
    src_y, n, _, in_shape = open_inputs(o.inputs, "inputs")
    src_x, n_x, _, x_shape = open_inputs(o.targets, "targets")
    shp = signal_shape(in_shape)
    if shp is None or in_shape != x_shape:
        raise ShapeError(f"the Fourier route needs single-channel signals or images of one shape for inputs and "
                         f"targets; got {in_shape} and {x_shape}")
    if n_x != n:
        raise ShapeError(f"targets must have one row per input: inputs have {n} rows, targets {n_x}")
    if n < 8:
        raise ShapeError(f"inputs: the Fourier route (training pairs for σ and C_data, held-out probes) needs at "
                         f"least 8 rows; got {n}")
    check_fourier_memory(n_boot, shp, o.max_memory)
    op = route.operator
    H = op.transfer_function()
    spec = _model_spec(o.model)
    cast = cast_note(load_model(spec, device="cpu", trust_model=o.trust_model))  # fails early, on the client

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg)

    train, probe = split_rows(n, o.seed)
    is_train = np.zeros(n, dtype=bool)
    is_train[train] = True
    ranges = [(b, s, min(s + o.batch_size, n)) for b, s in enumerate(range(0, n, o.batch_size))]
    n_tr_before = np.concatenate([[0], np.cumsum([int(is_train[s:e].sum()) for _, s, e in ranges])])
    n_pr_before = np.concatenate([[0], np.cumsum([int((~is_train[s:e]).sum()) for _, s, e in ranges])])
    keep_tr = [is_train[s:e] for _, s, e in ranges]
    model = (spec, o.device, o.trust_model, in_shape)
    seed = o.seed
    client, cluster = _connect(o.dask)
    try:
        n_workers = len(client.scheduler_info()["workers"])
        with progress_bar(console is not None) as bar:
            tr: TrainStats = run_pass(client, bar, f"training pairs: C_data and σ ({n_workers} Dask workers)",
                                       _train_task, [(b, s, e, src_y, src_x, b, s, e, keep_tr[b], int(n_tr_before[b]),
                                                      shp, H, n_boot, seed) for b, s, e in ranges])
            if tr.same_y or tr.same_x:
                which = "inputs" if tr.same_y else "targets"
                raise ShapeError(f"{which}: all {n} rows are identical; the Fourier route needs rows that vary")
            d = int(np.prod(shp))
            n_tr = len(train)
            est = noise_std_from_sums(float(tr.residual.m2.sum()), n_tr, d)
            # the estimate must be above the rounding of the training inputs (their RMS, as one value)
            rms = np.array([np.sqrt(tr.y_sq / (n_tr * d))])
            noise_std, sigma_ci, sigma_note = fourier_noise_std(o.noise_std, (est.value, est.low, est.high), rms, say)
            data = tr.data
            my, mx = tr.y_sum / (n_tr * d), tr.x_sum / (n_tr * d)
            W = wiener_filter(H, data.spectrum_out_, float(noise_std))  # as spectral_analysis builds it
            filters = {"C_data": (data.transfer_, 0.0, data.intercept_), "Wiener": (W, my, mx),
                       "zero (predict the mean)": (np.zeros_like(W), 0.0, mx)}
            say(f"Fourier route on Dask: probing the model on {len(probe)} held-out images ({n_boot} "
                "Poisson-bootstrap replicates)")
            pr: ProbeStats = run_pass(client, bar, "probes: the network's surrogate and test errors", _probe_task,
                                       [(b, s, e, src_y, src_x, b, s, e, ~keep_tr[b], int(n_pr_before[b]), shp,
                                         n_boot, seed, filters, model) for b, s, e in ranges])
            sur = pr.surrogate
            own = {"surrogate (in-sample)": (sur.transfer_, 0.0, sur.intercept_)}
            p3: ProbeStats = run_pass(client, bar, "probes: the surrogate's in-sample errors", _probe_task,
                                       [(b, s, e, src_y, src_x, b, s, e, ~keep_tr[b], 0, shp, n_boot, seed, own, None)
                                        for b, s, e in ranges])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    an = spectral_analysis(sur, op, float(noise_std), targets=None, data_surrogate=data, prior_from_data=True)
    squares = {k: np.concatenate(v) for k, v in {**pr.squares, **p3.squares}.items()}
    order = ("model", "surrogate (in-sample)", "C_data", "Wiener", "zero (predict the mean)")
    te = errors_from_squares({k: squares[k] for k in order}, d, pr.x_max - pr.x_min)
    how = (f"Computed on a Dask cluster ({n_workers} workers): {len(ranges)} blocks of {o.batch_size} rows read from "
           "disk by the workers, per-block partial spectra (with their bootstrap replicates) merged in a tree; three "
           "passes (training pairs; the model on the probes; the in-sample surrogate's errors)"
           + (f"; {cast}" if cast else "") + ".")
    return fourier_report(o, route, an, te, shp, n_tr, len(probe), float(noise_std), sigma_ci, sigma_note,
                          extra={"dask": {"address": o.dask, "workers": n_workers, "blocks": len(ranges)},
                                 "input_cast": cast, "n_samples": n}, how=how)
