"""``linlens analyze --targets --operator`` for a non-circular operator given as a function, beyond the dense study.

The forward operator A (a deepinv-style object, a scipy ``LinearOperator``, an (A, Aᵀ) pair, converted by the one
rule of :func:`linlens.operators.as_operator`) of any boundary is only ever applied; no d × d matrix is formed:

1. The rows are split once (:func:`~linlens.workflows.inverse.split_rows`) into training pairs and probes; the
   probes again (the seeded hash of the subspace route, one in five held out) into rows that fit the surrogate
   and held-out rows that test every number.
2. **Surrogate** on the probes' top-m principal subspace, C = B V_mᵀ (:class:`~linlens.surrogate.subspace.
   SubspaceSurrogate`), its data-weighted error against each reference bias-corrected with a row-group bootstrap
   interval (:class:`~linlens.surrogate.grouped.GroupedFit`, as the subspace route), all references resampled
   with the same group weights, so that the paired verdict (:func:`linlens.stats.closest_reference`) compares
   them on the same replicates.
3. **References**, applied matrix-free (:mod:`linlens.surrogate.matrix_free`): the Wiener estimator by conjugate
   gradients with Σₓ low rank + diagonal from the training targets; C_data, the least-squares fit of x on y on
   the training inputs' top-m principal subspace; A⁺ by LSQR, used only where LSQR converged.
4. **Signal error and noise amplification** of C and of each reference, with intervals (held-out targets as the
   signal's probes, Hutchinson's estimator for ‖C‖²_F), and the test MSE/PSNR of the network, its surrogate and
   the references, with the paired network-vs-C_data test.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.linalg.krylov import KrylovResult
from linlens.linalg.trace import TraceEstimate, hutchinson, mean_estimate, rademacher, ratio_estimate
from linlens.loaders import CHUNK_VALUES, iter_rows, load_array, load_model, read_rows
from linlens.nn import resolve_device
from linlens.operators import LinearMap
from linlens.probing import FlatModel, cast_note, probe_all
from linlens.report import Report, check_destination
from linlens.report import figures as figs
from linlens.scale import ColumnMoments
from linlens.spectral import errors_from_squares
from linlens.stats import BootstrapResult, _basic, below_detection, closest_reference, noise_std_from_sums
from linlens.surrogate.grouped import GroupedError, GroupedFit
from linlens.surrogate.matrix_free import (
    PRIOR_MODEL,
    LowRankDiagCovariance,
    MatrixFreeWiener,
    SignalNoiseEstimate,
    WienerRefits,
    pseudo_inverse_rows,
    signal_noise_from_rows,
)
from linlens.surrogate.subspace import SubspaceSurrogate
from linlens.validation import check_estimated_noise_std, check_noise_std, check_rows, noise_std_disagreement
from linlens.workflows.analyze_common import (
    R2_DEFINITION,
    add_route,
    answer_gain,
    answer_network_vs_cdata,
    holdout_mask,
    image_shape,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route
from linlens.workflows.inverse import (
    DENSE_LIMIT,
    _load_pair,
    load_forward_operator,
    noise_std_interval,
    split_rows,
)

__all__ = ["plan_matrix_free", "run_matrix_free", "matrix_free_study", "MatrixFreeStudy", "DEFAULT_COMPONENTS",
           "N_PROBES", "N_GROUPS"]

#: m when --components is not given (capped by the rows and the dimension)
DEFAULT_COMPONENTS = 64
#: Rademacher probes of Hutchinson's estimator of ‖C‖²_F
N_PROBES = 64
#: row groups of the bias correction and the group bootstrap (as the subspace route)
N_GROUPS = 32
#: LSQR's iteration limit for A⁺ (rows that reach it are not A⁺)
LSQR_ITER = 300
#: operator calls that A⁺ by LSQR (one vector per call) may take at most, estimated from a 1-row trial
LSQR_CALLS = 40_000


def plan_matrix_free(o: AnalyzeOptions, route: Route) -> Route:
    """The inverse study's route after :func:`~linlens.workflows.inverse.plan_inverse`: the matrix-free route when
    asked (``--assume matrix-free``), when ``--components`` is given with a non-circular operator, or when the dense
    study cannot fit the problem (d_in · d_x beyond its limit, or fewer rows than it needs); otherwise ``route``.

    Example:
        >>> r = Route("fourier", "circular")
        >>> plan_matrix_free(AnalyzeOptions(model="m.pt", inputs="y.npy", targets="x.npy"), r) is r
        True
    """
    if o.assume == "matrix-free":
        if route.operator is None:
            raise ConfigError("--assume matrix-free needs the forward operator (--operator): the matrix-free route "
                              "applies A and Aᵀ")
        return Route("matrix_free", f"--assume matrix-free: A ({route.operator.kind}) applied as a function, the "
                                    "surrogate on the probes' top-m principal subspace, references by CG and LSQR",
                     route.operator)
    if route.name != "study" or route.operator is None or o.assume == "dense":
        return route
    op = route.operator
    d_in, d_x = op.shape
    if o.components is not None:
        return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) and --components "
                                    f"{o.components}: the matrix-free route (no d × d matrix)", op)
    if d_in * d_x > DENSE_LIMIT:
        return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) of d_in × d_x = {d_in} × "
                                    f"{d_x}, beyond the dense study's {DENSE_LIMIT:.3g} entries: the matrix-free route "
                                    "(A applied as a function, no d × d matrix)", op)
    if o.train_inputs is None:
        n = int(load_array(o.inputs, "inputs", ndim=None, mmap=True).shape[0])
        if n < 4 * (d_in + 2):
            return Route("matrix_free", f"--targets with a non-circular operator ({op.kind}) and {n} rows, fewer than "
                                        f"the dense study needs for d = {d_in} ({4 * (d_in + 2)}): the matrix-free "
                                        "route (the surrogate on the probes' top-m principal subspace)", op)
    return route


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _check_rows(a: np.ndarray, name: str, what: str) -> None:
    """:func:`~linlens.validation.check_rows` (≥ 8 rows that are not all identical) on a memory-mapped array, read
    chunk by chunk until two rows differ (usually the first chunk)."""
    if len(a) < 8:
        check_rows(a, 8, name, what)
    first = None
    for _, c in iter_rows(a.reshape(len(a), -1), name=name):
        first = c[0] if first is None else first
        if np.any(c != first):
            return
    raise ShapeError(f"{name}: all {len(a)} rows are identical; {what} needs rows that vary")


def _probe_rows(net: Any, Yf: np.ndarray, rows: np.ndarray, batch: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs the model received, its outputs), float64 (k, d_in), (k, d_out), for rows of the (memory-mapped)
    inputs Yf read chunk by chunk: no float64 copy of the rows besides the result."""
    Yr, F = np.empty((len(rows), Yf.shape[1])), None
    for pos, c in iter_rows(Yf, rows, chunk_values=max(CHUNK_VALUES, batch * Yf.shape[1]), name="inputs"):
        y, f = probe_all(net, c, batch_size=batch, device=device)
        if F is None:
            F = np.empty((len(rows), f.shape[1]))
        Yr[pos], F[pos] = y, f
    return Yr, F


def _batched(f: Any, Y: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([f(Y[s:s + batch]) for s in range(0, len(Y), batch)]) if len(Y) else Y


def run_matrix_free(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The matrix-free inverse study on the user's files; writes the report to ``options.out``.

    Arguments:
        options: the run's options. Fields used: model, inputs y (n, *in_shape), targets x (n, *x_shape), operator
            (or ``route.operator``, loaded by the plan), noise_std (σ; estimated from y − Ax with a χ² interval when
            not given), components (m, default 64, capped by the rows), n_boot (group-bootstrap replicates,
            default 100), out, force, batch_size, device, seed, trust_model.
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        headline numbers for the summary table.

    Example:
        >>> import json
        >>> from linlens.workflows._examples import image_files
        >>> d = image_files(200)  # x (200, 1, 4, 4), y = x/2 + 0.1·noise, A.npy = I/2, net.pt = 2I = A⁻¹
        >>> o = AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                    operator=str(d / "A.npy"), assume="matrix-free", n_boot=20, out=d / "report",
        ...                    trust_model=True)
        >>> from linlens.workflows.analyze import plan
        >>> s = run_matrix_free(o, plan(o))
        >>> sn = json.loads((d / "report/metrics.json").read_text())["signal_noise"]["surrogate C"]
        >>> round(sn["signal_error"]["estimate"], 12), "A⁺" in s["verdict"]  # C = A⁻¹: no signal error
        (0.0, True)
        >>> bool(sn["noise_amplification"]["low"] < 0.04 < sn["noise_amplification"]["high"])  # σ²‖2I‖²_F/E‖x‖²
        True
    """
    o = options
    t0, c0 = time.perf_counter(), time.process_time()
    check_destination(o.out, o.force)
    n_boot = 100 if o.n_boot is None else int(o.n_boot)

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg, highlight=False)

    Y, X = _load_pair(o.inputs, o.targets, mmap=True)  # .npy: memory-mapped, read in float64 chunks below
    in_shape, x_shape = tuple(Y.shape[1:]), tuple(X.shape[1:])
    op = route.operator if route.operator is not None else load_forward_operator(str(o.operator), x_shape, in_shape)
    if op.shape != (int(np.prod(in_shape)), int(np.prod(x_shape))):
        raise ShapeError(f"operator must map targets {x_shape} to inputs {in_shape}; got shape {op.shape}")
    op.rmatvec(np.zeros(op.shape[0]))  # an operator without an adjoint stops here, in one line
    _check_rows(Y, "inputs", "the matrix-free route (training pairs for σ, Σₓ and C_data, held-out probes)")
    _check_rows(X, "targets", "the matrix-free route")
    n = len(Y)
    Yf, Xf = Y.reshape(n, -1), X.reshape(n, -1)
    d_in, d_x = Yf.shape[1], Xf.shape[1]
    train, probe = split_rows(n, o.seed)
    probe = np.sort(probe)
    Ytr, Xtr = read_rows(Yf, train, name="inputs"), read_rows(Xf, train, name="targets")
    held = holdout_mask(0, len(probe), o.seed)  # one probe in five (the subspace route's seeded hash)
    fit_rows, held_rows = probe[~held], probe[held]
    n_fit, n_held = len(fit_rows), len(held_rows)
    m = int(o.components) if o.components is not None else min(DEFAULT_COMPONENTS, d_in, max(1, n_fit // 4))
    if m > min(d_in, n_fit - 2, len(train) - 2):
        raise ConfigError(f"--components {m} must be at most min(d_in, fit rows − 2, training rows − 2) = "
                          f"{min(d_in, n_fit - 2, len(train) - 2)} ({n} rows: {len(train)} train C_data, Σₓ and σ; "
                          f"{n_fit} fit the surrogate; {n_held} test)")
    if n_held < 8:
        raise ShapeError(f"{n} rows leave {n_held} held-out probes; give more rows (at least 8 held out)")

    sigma_note = None
    if o.noise_std is not None:  # given σ: checked against the training residuals
        resid = Ytr - _batched(op.matvec, Xtr, o.batch_size)
        sigma_note = noise_std_disagreement(check_noise_std(o.noise_std), *noise_std_interval(resid))
        del resid
        if sigma_note:
            say(f"warning: {sigma_note}")

    # the network on the probes (fit rows and held-out rows), in its own dtype
    dev = str(resolve_device(o.device))
    net = FlatModel(load_model(o.model, device=dev, trust_model=o.trust_model), in_shape)
    say(f"probing the model on {len(probe)} probe images ({n_fit} fit the surrogate, {n_held} test) …")
    # images per model call: a CNN's activations are channels × the image per row (16 channels of a 256×256 image:
    # 4 MiB each in float32), so at most PROBE_VALUES input values per call
    pb = max(1, min(o.batch_size, 256, PROBE_VALUES // d_in))
    Yfit, Ffit = _probe_rows(net, Yf, fit_rows, pb, dev)
    Yh, Fh = _probe_rows(net, Yf, held_rows, pb, dev)
    if Ffit.shape[1] != d_x:
        raise ShapeError(f"the model outputs {Ffit.shape[1]} values per image; the targets have {d_x}")
    Xh = read_rows(Xf, held_rows, name="targets")
    say(f"surrogate on the top-{m} principal subspace of the probes …")
    st = matrix_free_study(op, (Ytr, Xtr, train % N_GROUPS), (Yfit, Ffit, fit_rows % N_GROUPS),
                           (Yh, Fh, Xh, held_rows % N_GROUPS), m=m, noise_std=o.noise_std, n_boot=n_boot,
                           seed=o.seed, batch=max(o.batch_size, 1), say=say)
    if st.noise_std_interval is not None:
        check_estimated_noise_std(st.noise_std, Ytr)
    del Ytr, Xtr, Yfit, Ffit
    te = _test_errors(st, d_x)
    timing = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "peak_rss_gib": _peak_rss_gib()}
    f = st.first_rows
    return _report(o, route, op, st, sigma_note, te, timing, in_shape, x_shape, n, len(train), n_fit, n_held, m,
                   f["targets"], f["inputs"], f["outputs"], cast_note(net.model))


def _test_errors(st: MatrixFreeStudy, d_x: int) -> dict[str, Any]:
    """Test MSE/PSNR of the network, its surrogate, the references and the mean on the held-out images, the
    network-vs-C_data test split by :func:`linlens.stats.gain_split` ("gain") and (C_data here is the rank-m fit on the
    top-m subspace: beating it can be the truncation alone) the test against the Wiener estimator applied in full."""
    # the one gain rule (stats.gain_split): the surrogate is scored out of sample (its excess removed) and sees only
    # the top-m subspace (beating it can be the network's linear response outside: said, not called nonlinear)
    te = errors_from_squares(st.squares, d_x, st.target_range, surrogate_bias=st.surrogate_excess,
                             surrogate_se=st.surrogate_se, truncated_fraction=st.surrogate.outside_variance_fraction_)
    te["paired_wiener"] = (errors_from_squares({k: st.squares[k] for k in ("model", "Wiener")}, d_x,
                                               st.target_range, baseline="Wiener")["paired"]
                           if "Wiener" in st.squares else None)
    return te


#: input values per model call when probing (4 images of 256×256; 64 of 64×64): a CNN's activations are
#: channels × this (16 channels in float32: 16 MiB each, below glibc's 32 MiB mmap threshold, so reused, not
#: page-faulted and zeroed again per call: that was 40% of the CPU time as system time), and set the probing's peak
PROBE_VALUES = 2**18
#: held-out targets and Rademacher probes on which each replicate re-applies the refitted Wiener estimator (the
#: change of its signal error and noise amplification; the full-data values use every held-out target and probe)
REFIT_TARGETS, REFIT_PROBES = 64, 32


@dataclass(frozen=True)
class MatrixFreeStudy(ResultMixin):
    """The numbers of the matrix-free study (see the module): errors with intervals, verdict, error split.

    Arguments:
        errors: reference → :class:`~linlens.surrogate.grouped.GroupedError` (data-weighted error on the surrogate's
            subspace, corrected for the estimation noise of B̂ and of the reference, row-group bootstrap interval).
        verdict: :class:`~linlens.stats.ClosestVerdict` from the same replicates (paired across references).
        split: map → :class:`~linlens.surrogate.matrix_free.SignalNoiseEstimate`, intervals including the map's
            own estimation noise where it is estimated.
        reference_noise: reference → "fixed: …" or "estimated: …" (what was resampled).
        status: reference → how it was computed (CG/LSQR convergence).
        outputs: reference → its estimates of the first held-out targets (at most FIRST_ROWS rows, d_x).
        surrogate, covariance, noise_std, noise_std_interval, r2, wiener_solve: the fitted pieces.
        squares: predictor → (n_held,) per-image squared test errors; target_range: max − min of the held-out
            targets (PSNR); first_rows: "inputs", "outputs", "targets" of the first held-out rows (report tiles).
        surrogate_excess: what B̂'s own estimation error adds to the surrogate's squared test error per held-out
            image (cluster-robust E tr(δB S δBᵀ) + E‖δc‖², :func:`_surrogate_bias`; for
            :func:`linlens.stats.gain_split`);
            surrogate_se: the standard error B̂'s randomness adds to the mean difference of squared test errors
            (cluster-robust, :func:`_surrogate_se`).

    Example:
        >>> from linlens.operators import as_operator
        >>> rng = np.random.default_rng(0); A = as_operator(np.eye(3)); g = lambda n: np.arange(n) % 8
        >>> X = rng.normal(size=(900, 3)); Y = X + 0.5 * rng.normal(size=X.shape)  # A = I, σ = 0.5, Σₓ = I
        >>> s = matrix_free_study(A, (Y[:400], X[:400], g(400)), (Y[400:800], Y[400:800], g(400)),
        ...                       (Y[800:], Y[800:], X[800:], g(100)), m=3, n_boot=20, n_groups=8)  # network = A⁻¹
        >>> sorted(s.errors), round(s.split["surrogate C"].signal_error.estimate, 12), round(s.r2, 12)
        (['A⁺', 'C_data', 'Wiener'], 0.0, 1.0)
        >>> bool(s.noise_std_interval[0] < 0.5 < s.noise_std_interval[1])
        True
    """

    errors: dict[str, GroupedError]
    verdict: Any
    split: dict[str, SignalNoiseEstimate]
    reference_noise: dict[str, str]
    status: dict[str, str]
    outputs: dict[str, np.ndarray]
    surrogate: SubspaceSurrogate
    covariance: LowRankDiagCovariance
    noise_std: float
    noise_std_interval: tuple[float, float] | None
    r2: float
    wiener_solve: KrylovResult
    mean_x: np.ndarray
    squares: dict[str, np.ndarray] = field(default_factory=dict)
    target_range: float = float("nan")
    first_rows: dict[str, np.ndarray] = field(default_factory=dict)
    surrogate_excess: float = 0.0
    surrogate_se: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (arrays and fitted objects left out)."""
        return {"errors": {k: e.to_dict() for k, e in self.errors.items()}, "verdict": self.verdict.to_dict(),
                "signal_noise": {k: s.table() for k, s in self.split.items()},
                "reference_noise": self.reference_noise, "references": self.status, "noise_std": self.noise_std,
                "r2": self.r2}


def _held_moments(Z: np.ndarray, groups: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, hz, hzz = np.zeros(g), np.zeros((g, Z.shape[1])), np.zeros((g, Z.shape[1], Z.shape[1]))
    for j in np.unique(groups):
        z = Z[groups == j]
        n[j], hz[j], hzz[j] = len(z), z.sum(axis=0), z.T @ z
    return n, hz, hzz


def _score_cov(mom: tuple[np.ndarray, np.ndarray, np.ndarray], v: np.ndarray) -> np.ndarray:
    n, hz, hzz = mom
    k = float(v @ n)
    zb = (v @ hz) / k
    return np.tensordot(v, hzz, 1) / k - np.outer(zb, zb)


def _quad(M: np.ndarray, S: np.ndarray) -> float:
    """tr(M S Mᵀ)."""
    return float(np.sum((M @ S) * M))


def _sigma2_from_sums(n: np.ndarray, sr: np.ndarray, rr: np.ndarray, u: np.ndarray) -> float:
    """σ̂² of :func:`linlens.stats.noise_std_estimate` (column-centred, ν = N·d − d) on groups weighted by u."""
    N = float(u @ n)
    s = u @ sr
    return float((u @ rr - s @ s / N) / (N * sr.shape[1] - sr.shape[1]))


def _widened(full: TraceEstimate, deltas: np.ndarray, g: int, what: str) -> TraceEstimate:
    """``full`` (conditional on the fitted map: held-out targets and probes only) with the map's own estimation
    noise: the replicates' changes Δ_b of the value under a group-resampled refit give a bootstrap bias (mean Δ,
    subtracted) and variance (× g/(g − 1), the group bootstrap's small-sample factor), added to the conditional
    variance; normal interval."""
    d = deltas[np.isfinite(deltas)]
    if d.size < 2:
        return full
    var = float(d.var(ddof=1)) * g / (g - 1)
    est = full.estimate - float(d.mean())
    se = math.hypot(full.std_error, math.sqrt(var))
    q = float(norm.ppf(0.5 + full.ci / 2))
    return TraceEstimate(est, est - q * se, est + q * se, se, full.n_probes, full.ci,
                         f"{full.method}; plus the estimation noise of {what}: {d.size} group-bootstrap refits "
                         f"({g} row groups), bootstrap bias subtracted, variances added, normal interval")


def _rowsq(R: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", R, R)


def _split_from_rows(Bm: np.ndarray, num: np.ndarray, den: np.ndarray, sigma2: float, ci: float) -> tuple[
        TraceEstimate, TraceEstimate]:
    """Signal error (ratio over held-out targets: num = ‖B Pᵢ − x̃ᵢ‖², den = ‖x̃ᵢ‖² per target, P = (A x̃) Vᵀ the
    targets' images' scores) and noise amplification (exact: ‖B Vᵀ‖_F = ‖B‖_F for orthonormal V) of C = B Vᵀ."""
    sig = ratio_estimate(num, den, ci, "E‖(CA − I)x‖²/E‖x‖², ratio of means over held-out targets")
    mx = float(den.mean())
    se_den = float(den.std(ddof=1) / math.sqrt(len(den)))
    val = sigma2 * float(np.sum(Bm**2)) / mx
    se = val * se_den / mx
    q = float(norm.ppf(0.5 + ci / 2))
    noise = TraceEstimate(val, val - q * se, val + q * se, se, len(den), ci,
                          "σ²‖C‖²_F/E‖x‖²: ‖C‖_F exact (C = B Vᵀ, V orthonormal), E‖x‖² over the held-out targets; "
                          "delta-method normal interval")
    return sig, noise


def _subspace_values(Bm: np.ndarray, Spp: np.ndarray, Spx: np.ndarray, sxx: float, n: int,
                     sigma2: float) -> tuple[float, float]:
    """(mean signal numerator, σ²‖B‖²_F) of C = B Vᵀ from the held-out moments PᵀP, PᵀX̃, Σ‖x̃‖² (n rows)."""
    return (_quad(Bm, Spp) - 2 * float(np.sum(Bm * Spx.T)) + sxx) / n, sigma2 * float(np.sum(Bm**2))


#: held-out rows whose inputs, outputs, targets and reference estimates a study keeps (report tiles, Wiener refits)
FIRST_ROWS = 64


@dataclass
class _TrainStats:
    """What the study takes from the training pairs (in memory: :func:`_train_statistics`; on Dask: passes over
    blocks, :mod:`linlens.workflows.analyze_matrix_free_dask`): per row group (n_g, Σr, Σ‖r‖²) of the residuals
    r = y − Ax; the targets' :class:`~linlens.surrogate.matrix_free.CovarianceMoments` on Σₓ's fitted span; the
    inputs' mean; C_data (a fitted :class:`SubspaceSurrogate` of x on y) and its :class:`GroupedFit`."""

    resid: tuple[np.ndarray, np.ndarray, np.ndarray]
    moments: Any
    mean_y: np.ndarray
    data: SubspaceSurrogate
    data_groups: GroupedFit


def _residual_group_sums(op: LinearMap, Y: np.ndarray, X: np.ndarray, groups: np.ndarray, *, batch: int,
                         g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row group: the count, Σ r and Σ ‖r‖² of the residuals r = y − A x ((g,), (g, d_y), (g,)), in batches;
    the in-memory route takes them over all training rows, the Dask route per block (merged by +)."""
    n, rs, rr = np.zeros(g), np.zeros((g, op.shape[0])), np.zeros(g)
    for a in range(0, len(Y), batch):
        r = Y[a:a + batch] - op.matvec(X[a:a + batch])
        ga = groups[a:a + batch]
        np.add.at(n, ga, 1.0)
        np.add.at(rs, ga, r)
        np.add.at(rr, ga, np.einsum("ij,ij->i", r, r))
    return n, rs, rr


def _train_statistics(op: LinearMap, Ytr: np.ndarray, Xtr: np.ndarray, gtr: np.ndarray, *, m: int, seed: int,
                      batch: int, g: int) -> _TrainStats:
    resid_n, resid_s, resid_r = _residual_group_sums(op, Ytr, Xtr, gtr, batch=batch, g=g)
    cov0 = LowRankDiagCovariance(rank=min(m, len(Xtr) - 1, Xtr.shape[1]), seed=seed).fit(Xtr)
    cdata = SubspaceSurrogate(n_components=m, seed=seed + 1).fit(Ytr, Xtr)
    cgrp = GroupedFit(m, Xtr.shape[1], g)
    cgrp.update_train((Ytr - cdata.mean_in_) @ cdata.components_.T, Xtr, gtr)
    return _TrainStats((resid_n, resid_s, resid_r), cov0.group_moments(Xtr, gtr, g), Ytr.mean(axis=0), cdata, cgrp)


@dataclass
class _Setup:
    """The fitted pieces every block of held-out rows needs (:func:`_held_statistics`) and the finishing step
    (:func:`_finish`) reuses: the surrogate and its grouped sums, σ, Σₓ, the Wiener estimator with its solves on the
    subspace's basis and the Rademacher probes, C_data, and A⁺'s plan (LSQR on the basis, or why it is left out)."""

    op: LinearMap
    ts: _TrainStats
    sur: SubspaceSurrogate
    grp: GroupedFit
    sigma: float
    sigma_ci: tuple[float, float] | None
    noise_given: bool
    cov: LowRankDiagCovariance
    wiener: MatrixFreeWiener
    probes: np.ndarray
    basis_out: np.ndarray
    basis_res: KrylovResult
    pinv_basis: KrylovResult | None
    pinv_status: str | None
    m: int
    g: int
    seed: int
    batch: int


def _setup(op: LinearMap, ts: _TrainStats, sur: SubspaceSurrogate, grp: GroupedFit, *, noise_std: float | None,
           first_inputs: np.ndarray, n_held: int, seed: int, batch: int, g: int, say: Any) -> _Setup:
    rn, rs, rr = ts.resid
    sigma_ci = None
    if noise_std is None:  # estimated from the column-centred residuals y − Ax (their per-group sums: resampled)
        ss = float(rr.sum() - rs.sum(axis=0) @ rs.sum(axis=0) / rn.sum())
        est = noise_std_from_sums(ss, int(round(rn.sum())), op.shape[0])
        sigma, sigma_ci = est.value, (est.low, est.high)
        check_noise_std(sigma)
    else:
        sigma = check_noise_std(noise_std)
    Vt = sur.components_
    m = Vt.shape[0]
    cov = ts.moments.covariance(np.ones(g))
    say(f"references: Wiener (CG, Σₓ low rank + diagonal, rank {len(cov.variances_)}), C_data (top-{m} "
        "subspace), A⁺ (LSQR) …")
    wiener = MatrixFreeWiener(op, cov, sigma, mean_x=cov.mean_, mean_y=ts.mean_y)
    probes = rademacher(N_PROBES, op.shape[0], seed)
    basis_out, basis_res = wiener.solve_centred(np.concatenate([Vt, probes]))  # K_W = W Vᵀ and ‖W‖²_F's probes
    trial = pseudo_inverse_rows(op, first_inputs[:1], iter_lim=LSQR_ITER)  # one row decides; all are checked
    calls = 2 * int(trial.iterations.max()) * (2 * n_held + m + N_PROBES)
    pinv_basis, pinv_status = None, None
    if trial.converged.all() and calls > LSQR_CALLS:
        pinv_status = (f"LSQR converges in ~{int(trial.iterations.max())} iterations per row, but A⁺ on every "
                       f"held-out row, basis vector and probe would take ~{calls:,} operator calls (> "
                       f"{LSQR_CALLS:,}): left out")
    elif trial.converged.all():
        pinv_basis = pseudo_inverse_rows(op, Vt, iter_lim=LSQR_ITER)
    else:
        pinv_status = (f"LSQR did not converge in {LSQR_ITER} iterations (A is ill-conditioned): left out rather "
                       "than labelling an iterate A⁺")
    return _Setup(op, ts, sur, grp, sigma, sigma_ci, noise_std is not None, cov, wiener, probes, basis_out,
                  basis_res, pinv_basis, pinv_status, m, g, seed, batch)


@dataclass
class _HeldStats:
    """Mergeable statistics of a run of held-out rows (in file order): the scores' per-group moments, the R² sums,
    the targets' images' score moments (P = (A x̃) Vᵀ for the surrogate's and C_data's bases), per-row terms
    (signal numerators, ‖x̃‖², squared test errors, CG/LSQR convergence), the first :data:`FIRST_ROWS` rows' arrays
    and the targets' range; ``ez`` = Σ eₜ zₜᵀ (d_x, m) and ``e_sum`` = Σ eₜ (d_x,), the surrogate's test errors
    against the scores and summed (the standard error its own randomness adds to the gain split). ``merge`` adds
    sums and concatenates rows (the earlier run first)."""

    hmom: tuple[np.ndarray, np.ndarray, np.ndarray]
    sse: float
    fmom: ColumnMoments
    mom_s: tuple[np.ndarray, np.ndarray]
    mom_c: tuple[np.ndarray, np.ndarray]
    rows: dict[str, list[np.ndarray]]
    first: dict[str, np.ndarray]
    x_min: float
    x_max: float
    ez: np.ndarray | None = None
    e_sum: np.ndarray | None = None

    def merge(self, o: _HeldStats) -> _HeldStats:
        first = {k: v if len(v) >= FIRST_ROWS else np.concatenate([v, o.first[k]])[:FIRST_ROWS]
                 for k, v in self.first.items()}
        return _HeldStats(tuple(a + b for a, b in zip(self.hmom, o.hmom, strict=True)), self.sse + o.sse,
                          self.fmom.merge(o.fmom), (self.mom_s[0] + o.mom_s[0], self.mom_s[1] + o.mom_s[1]),
                          (self.mom_c[0] + o.mom_c[0], self.mom_c[1] + o.mom_c[1]),
                          {k: v + o.rows[k] for k, v in self.rows.items()}, first, min(self.x_min, o.x_min),
                          max(self.x_max, o.x_max),
                          None if self.ez is None or o.ez is None else self.ez + o.ez,
                          None if self.e_sum is None or o.e_sum is None else self.e_sum + o.e_sum)


def _group_residual_sums(grp: GroupedFit, B: np.ndarray) -> np.ndarray:
    """(n_groups, d_out) ρ_g = Σ_{i∈g} r̃ᵢ, each row group's sum of the surrogate's fit residuals under the full-data
    fit B and centring, (sf_g − n_g f̄) − B (sz_g − n_g z̄): the intercept's error is δc = Σ_g ρ_g / n."""
    ntr = grp.n.sum()
    zb, fb = grp.sz.sum(axis=0) / ntr, grp.sf.sum(axis=0) / ntr
    return grp.sf - np.outer(grp.n, fb) - (grp.sz - np.outer(grp.n, zb)) @ B.T


def _surrogate_bias(grp: GroupedFit, B: np.ndarray, S: np.ndarray) -> float:
    """E‖δc + δB (z − z̄)‖² over held-out scores of covariance S: the slope's cluster-robust E tr(δB S δBᵀ)
    (:meth:`GroupedFit.estimation_bias`) plus the intercept's E‖δc‖² = Σ_g ‖ρ_g‖² / n² × g/(g − 1) (what
    :func:`linlens.surrogate.resampling.surrogate_excess`'s 1/n term is for the study; the held-out mean's shift from
    z̄ is left out)."""
    rho = _group_residual_sums(grp, B)
    g = grp.n_groups
    return grp.estimation_bias(S, B) + float(np.sum(rho * rho)) / float(grp.n.sum()) ** 2 * g / (g - 1)


def _surrogate_se(grp: GroupedFit, B: np.ndarray, ez: np.ndarray | None, n_held: int,
                  e_sum: np.ndarray | None = None) -> float:
    """The standard error that the surrogate's own randomness adds to a mean over held-out images of squared-error
    differences: its first-order term 2⟨eₜ, δc + δB (zₜ − z̄)⟩, as :func:`linlens.surrogate.resampling.surrogate_excess`
    for the study, with cluster-robust row-group sums: δB = Σ_g u_gᵀ G̃⁻¹ and the intercept's δc = Σ_g ρ_g / n
    (:func:`_group_residual_sums`), so the mean changes by (2/n_held) (⟨G̃⁻¹ Qᵀ, u_g⟩ + ⟨q, ρ_g⟩ / n) per group,
    q = Σₜ eₜ (``e_sum``, (d_x,)), Q = Σₜ eₜ (zₜ − z̄)ᵀ = ``ez`` − q z̄ᵀ; the g/(g − 1) factor as
    :meth:`GroupedFit.estimation_bias`. 0 without ``ez``; without ``e_sum`` the intercept's term is left out."""
    if ez is None or n_held < 1:
        return 0.0
    ntr = grp.n.sum()
    zb, fb = grp.sz.sum(axis=0) / ntr, grp.sf.sum(axis=0) / ntr
    Ginv = np.linalg.pinv(grp.zz.sum(axis=0) - ntr * np.outer(zb, zb), hermitian=True)
    Q = ez if e_sum is None else ez - np.outer(e_sum, zb)
    terms = grp._fit_gradient_terms(Ginv @ Q.T, B, zb, fb)
    if e_sum is not None:
        terms = terms + _group_residual_sums(grp, B) @ e_sum / ntr
    terms = terms * (2.0 / n_held)
    g = grp.n_groups
    return float(math.sqrt(max(float(terms @ terms) * g / (g - 1), 0.0)))


def _held_statistics(su: _Setup, Yh: np.ndarray, Fh: np.ndarray, Xh: np.ndarray, gh: np.ndarray,
                     start: int) -> _HeldStats:
    """The held-out rows Yh (k, d_y) as the model received them, its outputs Fh (k, d_x), the targets Xh and the
    rows' groups; ``start``: how many held-out rows come before these (which of them are among the first rows)."""
    op, sur, batch = su.op, su.sur, su.batch
    Vt, Vc, mean_x = sur.components_, su.ts.data.components_, su.cov.mean_
    k = len(Yh)
    Zh = (Yh - sur.mean_in_) @ Vt.T
    pred = sur.predict(Yh)
    Xc = Xh - mean_x
    AX = np.concatenate([op.matvec(Xc[s:s + batch]) for s in range(0, k, batch)])
    out, res = su.wiener.solve_centred(np.concatenate([Yh - su.ts.mean_y, AX]))  # the inputs; the targets' images
    outputs = {"Wiener": mean_x + out[:k], "C_data": su.ts.data.predict(Yh)}
    P, Pc = AX @ Vt.T, AX @ Vc.T
    rows = {"den": _rowsq(Xc), "sig_C": _rowsq(P @ su.grp.coef().T - Xc),
            "sig_D": _rowsq(Pc @ su.ts.data_groups.coef().T - Xc), "sig_W": _rowsq(out[k:] - Xc),
            "cg_iterations": res.iterations, "cg_converged": res.converged, "cg_residual": res.relative_residual}
    if su.pinv_basis is not None:
        py, px = pseudo_inverse_rows(op, Yh, iter_lim=LSQR_ITER), pseudo_inverse_rows(op, AX, iter_lim=LSQR_ITER)
        outputs["A⁺"] = py.solution
        rows.update({"sig_P": _rowsq(px.solution - Xc), "lsqr_converged": py.converged,
                     "lsqr_iterations": py.iterations})
    sq = {"model": Fh, "surrogate": pred, **outputs, "zero (predict the mean)": np.broadcast_to(mean_x, Xh.shape)}
    rows.update({f"squares:{name}": _rowsq(v - Xh) for name, v in sq.items()})
    j = max(0, min(k, FIRST_ROWS - start))
    first = {"inputs": Yh[:j], "outputs": Fh[:j], "targets": Xh[:j], "AX": AX[:j], "u_AX": res.solution[k:k + j],
             **{f"estimate:{name}": v[:j] for name, v in outputs.items()}}
    return _HeldStats(_held_moments(Zh, gh, su.g), float(np.sum((Fh - pred) ** 2)), ColumnMoments().update(Fh),
                      (P.T @ P, P.T @ Xc), (Pc.T @ Pc, Pc.T @ Xc), {k_: [v] for k_, v in rows.items()}, first,
                      float(Xh.min()) if k else np.inf, float(Xh.max()) if k else -np.inf, ez=(pred - Xh).T @ Zh,
                      e_sum=(pred - Xh).sum(axis=0))


def matrix_free_study(op: LinearMap, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                      fit: tuple[np.ndarray, np.ndarray, np.ndarray],
                      held: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], *, m: int,
                      noise_std: float | None = None, n_boot: int = 100, seed: int = 0, batch: int = 256,
                      n_groups: int = N_GROUPS, ci: float = 0.95, fixed_references: bool = False,
                      say: Any = None) -> MatrixFreeStudy:
    """The matrix-free inverse study on arrays: surrogate, references, errors, verdict and error split, every
    estimated reference (C_data; the Wiener estimator's Σₓ, and σ when estimated) refitted on group-resampled
    training rows in each replicate, so that the intervals and the verdict carry its estimation noise.

    The held-out rows enter only through mergeable per-block statistics (the same functions serve the route on
    Dask, :mod:`linlens.workflows.analyze_matrix_free_dask`, block by block).

    Arguments:
        op: A (d_y, d_x) with an adjoint.
        train: (inputs (n_t, d_y), targets (n_t, d_x), row groups (n_t,)) training pairs: σ, Σₓ and C_data.
        fit: (inputs the model received (n_f, d_y), its outputs (n_f, d_x), row groups) fit the surrogate.
        held: (inputs (n_h, d_y), the model's outputs (n_h, d_x), targets (n_h, d_x), row groups) test.
        m: principal components of the surrogate and of C_data, and Σₓ's rank (capped by the rows).
        noise_std: σ when known (fixed), or None (estimated from y − Ax on the training pairs, resampled).
        n_boot: group-bootstrap replicates (paired across references and the surrogate).
        seed, batch, n_groups, ci: seed of the replicates and fits; rows per operator call; row groups; level.
        fixed_references: hold C_data, Σₓ and σ at their full-data fits in the replicates (the route's behaviour
            before issue 21; for comparisons by simulation only).
        say: progress callback (a string) or None.

    Returns:
        :class:`MatrixFreeStudy`.

    Example:
        >>> from linlens.operators import as_operator
        >>> rng = np.random.default_rng(0); A = as_operator(np.eye(3)); g = lambda n: np.arange(n) % 8
        >>> X = rng.normal(size=(900, 3)); Y = X + 0.5 * rng.normal(size=X.shape); W = np.eye(3) / 1.25
        >>> s = matrix_free_study(A, (Y[:400], X[:400], g(400)), (Y[400:800], Y[400:800] @ W, g(400)),
        ...                       (Y[800:], Y[800:] @ W, X[800:], g(100)), m=3, n_boot=50, n_groups=8)
        >>> s.verdict.verdict in ("Wiener", "tie"), bool(s.errors["Wiener"].low <= 0.05)
        (True, True)
    """
    say = say or (lambda _msg: None)
    Ytr, Xtr, gtr = train
    Yfit, Ffit, gfit = fit
    Yh, Fh, Xh, gh = held
    g = int(n_groups)
    ts = _train_statistics(op, Ytr, Xtr, gtr, m=m, seed=seed, batch=batch, g=g)
    # the surrogate on the probes' top-m subspace, its grouped sums
    sur = SubspaceSurrogate(n_components=m, seed=seed).fit(Yfit, Ffit)
    grp = GroupedFit(m, Ffit.shape[1], g)
    grp.update_train((Yfit - sur.mean_in_) @ sur.components_.T, Ffit, gfit)
    su = _setup(op, ts, sur, grp, noise_std=noise_std, first_inputs=Yh[:4], n_held=len(Yh), seed=seed, batch=batch,
                g=g, say=say)
    return _finish(su, _held_statistics(su, Yh, Fh, Xh, gh, 0), n_boot=n_boot, ci=ci,
                   fixed_references=fixed_references, say=say)


def _finish(su: _Setup, hs: _HeldStats, *, n_boot: int, ci: float, fixed_references: bool,
            say: Any) -> MatrixFreeStudy:
    """The study from the merged statistics: errors on the surrogate's subspace, their bias corrections and
    group-bootstrap replicates (every estimated reference refitted), the verdict and the error split."""
    op, sur, grp, ts, g, m, batch = su.op, su.sur, su.grp, su.ts, su.g, su.m, su.batch
    seed = rng_probe = su.seed
    rows = {k: np.concatenate(v) for k, v in hs.rows.items()}
    first = hs.first
    n_held = len(rows["den"])
    sigma, sigma_ci = su.sigma, su.sigma_ci
    noise_std = sigma if su.noise_given else None
    resid_n, resid_s, resid_r = ts.resid
    cmom, cdata, cgrp, cov = ts.moments, ts.data, ts.data_groups, su.cov
    mean_x = cov.mean_
    ones = np.ones(g)
    Vt = sur.components_
    B = grp.coef()
    r2 = float(1.0 - hs.sse / float(hs.fmom.m2.sum()))
    Vc = cdata.components_
    VcVt = Vc @ Vt.T
    Bc = cgrp.coef()
    br = su.basis_res
    wsolve = KrylovResult(np.empty((0, 0)), *(np.concatenate([getattr(br, a), rows[f"cg_{a}"]]) for a in (
        "iterations", "converged")), np.concatenate([br.relative_residual, rows["cg_residual"]]), br.method)
    KW = su.basis_out[:m].T
    WZ = su.basis_out[m:]
    outputs = {"Wiener": first["estimate:Wiener"], "C_data": first["estimate:C_data"]}
    status = {"Wiener": ("CG converged" if wsolve.converged.all() else
                         f"CG did not converge on {int((~wsolve.converged).sum())} rows: left out"),
              "C_data": f"least squares of x on the training inputs' top-{m} principal subspace"}
    noise_words = "σ (training residuals)" if noise_std is None else "σ given (fixed)"
    reference_noise = {"Wiener": f"estimated: Σₓ's low-rank part (training targets; its per-pixel rest δ held at "
                                 f"the full-data fit) and {noise_words}, refitted per replicate",
                       "C_data": "estimated: refitted on the resampled training pairs per replicate (its subspace "
                                 "held at the full-data fit)"}
    K = {"Wiener": KW, "C_data": Bc @ VcVt}
    pinv_map = None
    squares_keys = ["model", "surrogate", "Wiener", "C_data"]
    if su.pinv_basis is None:
        status["A⁺"] = str(su.pinv_status)
    else:
        pb = su.pinv_basis
        its = np.concatenate([pb.iterations, rows["lsqr_iterations"]])
        ok = bool(pb.converged.all() and rows["lsqr_converged"].all())
        if ok:
            K["A⁺"], outputs["A⁺"] = pb.solution.T, first["estimate:A⁺"]
            reference_noise["A⁺"] = "fixed: a function of A alone"
            squares_keys.append("A⁺")

            def pinv_map(Yb: np.ndarray) -> np.ndarray:
                return pseudo_inverse_rows(op, Yb, iter_lim=LSQR_ITER).solution
        n_bad = int((~pb.converged).sum() + (~rows["lsqr_converged"]).sum())
        status["A⁺"] = (f"LSQR converged (≤ {int(its.max())} iterations)" if ok else
                        f"LSQR stopped at {LSQR_ITER} iterations on {n_bad} rows: left out")
    if not wsolve.converged.all():
        for d_ in (K, outputs, reference_noise):
            d_.pop("Wiener")
        squares_keys.remove("Wiener")
    squares = {k: rows[f"squares:{k}"] for k in [*squares_keys, "zero (predict the mean)"]}

    # full-data errors on the surrogate's subspace and the bias of B̂
    hmom = hs.hmom
    S = _score_cov(hmom, ones)
    num = {k: _quad(B - Kk, S) for k, Kk in K.items()}
    den = {k: _quad(Kk, S) for k, Kk in K.items()}
    for k, v in den.items():
        if not v > 0:
            raise ShapeError(f"the reference {k} has no variance on the held-out probes' subspace")
    bias_B = grp.estimation_bias(S, B)
    sur_se = _surrogate_se(grp, B, hs.ez, n_held, hs.e_sum)

    # the split's full-data values
    den_rows = rows["den"]
    mx = float(den_rows.mean())
    mom_s, mom_c = hs.mom_s, hs.mom_c
    sxx = float(den_rows.sum())
    s2 = sigma**2
    sig_C, noi_C = _split_from_rows(B, rows["sig_C"], den_rows, s2, ci)
    sig_D, noi_D = _split_from_rows(Bc, rows["sig_D"], den_rows, s2, ci)
    full_sur = _subspace_values(B, *mom_s, sxx, n_held, s2)
    full_cd = _subspace_values(Bc, *mom_c, sxx, n_held, s2)
    num_W = rows["sig_W"]
    sig_W = ratio_estimate(num_W, den_rows, ci, "E‖(CA − I)x‖²/E‖x‖², ratio of means over held-out targets")
    fro_W = mean_estimate(np.einsum("ij,ij->i", WZ, WZ), ci, "Hutchinson (Rademacher probes)")
    sub = np.arange(min(REFIT_TARGETS, n_held))
    nprb = min(REFIT_PROBES, N_PROBES)
    Xc_sub = first["targets"][sub] - mean_x
    refits = None
    if wsolve.converged.all():
        refits = WienerRefits(su.wiener, cmom, np.concatenate([Vt, first["AX"][sub], su.probes[:nprb]]),
                              np.concatenate([br.solution[:m], first["u_AX"][sub], br.solution[m:m + nprb]]))
    full_W = (float(num_W[sub].mean()), s2 * float(fro_W.estimate if nprb == N_PROBES else
                                                    np.mean(np.einsum("ij,ij->i", WZ[:nprb], WZ[:nprb]))))
    # the replicates: fit groups (B*), held-out groups (S*), training groups (every estimated reference and σ)
    say(f"{n_boot} group-bootstrap replicates (references refitted on resampled training rows) …")
    rng = np.random.default_rng(seed)
    names = list(K)
    nums = {k: np.empty(n_boot) for k in names}
    dens = {k: np.empty(n_boot) for k in names}
    kk = {k: np.zeros(n_boot) for k in names}
    dsplit = {k: np.empty((n_boot, 2)) for k in ("surrogate C", "C_data", "Wiener")}
    pv = np.full(g, 1.0 / g)
    for b in range(n_boot):
        w, v, u = (rng.multinomial(g, pv).astype(float) for _ in range(3))
        if fixed_references:
            u = ones
        Bb = grp.coef(w)
        Sv = _score_cov(hmom, v)
        s2b = s2 if noise_std is not None else _sigma2_from_sums(resid_n, resid_s, resid_r, u)
        Kb = dict(K)
        Bcb = cgrp.coef(u)
        Kb["C_data"] = Bcb @ VcVt
        if "Wiener" in K:
            ob = refits.apply(refits.covariance(u), s2b)
            Kb["Wiener"] = ob[:m].T
            rW = ob[m:m + len(sub)] - Xc_sub
            zW = ob[m + len(sub):]
            dsplit["Wiener"][b] = (float(np.mean(np.einsum("ij,ij->i", rW, rW))) - full_W[0],
                                   s2b * float(np.mean(np.einsum("ij,ij->i", zW, zW))) - full_W[1])
        for k in names:
            D = Bb - Kb[k]
            nums[k][b], dens[k][b] = _quad(D, Sv), _quad(Kb[k], Sv)
            if Kb[k] is not K[k]:
                kk[k][b] = _quad(Kb[k] - K[k], S)
        dsplit["surrogate C"][b] = np.subtract(_subspace_values(Bb, *mom_s, sxx, n_held, s2b), full_sur)
        dsplit["C_data"][b] = np.subtract(_subspace_values(Bcb, *mom_c, sxx, n_held, s2b), full_cd)

    errors: dict[str, GroupedError] = {}
    for k in names:
        bias_R = float(kk[k].mean()) * g / (g - 1)
        plug = num[k] / den[k]
        corrected = (num[k] - bias_B - bias_R) / den[k]
        reps = (nums[k] - bias_B - bias_R) / dens[k]
        est, lo, hi, sd = _basic(plug, reps, ci, corrected)
        what = ("B̂ (cluster-robust) and of the reference (bootstrap, its training rows resampled)" if bias_R
                else "B̂ (cluster-robust); the reference is fixed")
        method = (f"basic interval from {n_boot} row-group bootstrap replicates ({g} groups of the probes that fit "
                  f"the surrogate, of the held-out probes and of the training pairs); bias of {what} subtracted")
        boot = BootstrapResult(estimate={"R": plug}, bias_corrected={"R": est}, low={"R": lo}, high={"R": hi},
                               std={"R": sd}, samples={"R": reps}, ci=float(ci), method="basic, analytic bias")
        errors[k] = GroupedError(plug_in=plug, estimate=est, bias=(bias_B + bias_R) / den[k], low=max(lo, 0.0),
                                 high=max(hi, 0.0), std=sd, ci=float(ci), n_boot=int(n_boot), n_groups=g,
                                 method=method, boot=boot)
    res = BootstrapResult(estimate={k: e.plug_in for k, e in errors.items()},
                          bias_corrected={k: e.estimate for k, e in errors.items()},
                          low={k: e.low for k, e in errors.items()}, high={k: e.high for k, e in errors.items()},
                          std={k: e.std for k, e in errors.items()},
                          samples={k: e.boot.samples["R"] for k, e in errors.items()}, ci=float(ci),
                          method="basic, analytic bias (cluster-robust for B̂, bootstrap for estimated references), "
                                 "row-group bootstrap, paired across references")
    verdict = closest_reference(res, names)

    # the split: conditional intervals widened by each estimated map's own estimation noise
    def pair(sig: TraceEstimate, noi: TraceEstimate, dd: np.ndarray, what: str) -> SignalNoiseEstimate:
        ds, dn = dd[:, 0] / mx, dd[:, 1] / mx
        return SignalNoiseEstimate(signal_error=_widened(sig, ds, g, what),
                                   noise_amplification=_widened(noi, dn, g, what),
                                   total=_widened(sig + noi, ds + dn, g, what), noise_std=sigma)

    split = {"surrogate C": pair(sig_C, noi_C, dsplit["surrogate C"], "B̂ (and σ̂)" if noise_std is None else "B̂")}
    if "Wiener" in K:
        noi_W = TraceEstimate(s2 * fro_W.estimate / mx, 0.0, 0.0, 0.0, fro_W.n_probes, ci, "")
        se = abs(noi_W.estimate) * math.hypot(fro_W.std_error / fro_W.estimate if fro_W.estimate > 0 else 0.0,
                                              float(den_rows.std(ddof=1) / math.sqrt(n_held)) / mx)
        q = float(norm.ppf(0.5 + ci / 2))
        noi_W = TraceEstimate(noi_W.estimate, noi_W.estimate - q * se, noi_W.estimate + q * se, se,
                              fro_W.n_probes, ci, f"σ²‖C‖²_F/E‖x‖²: Hutchinson ({fro_W.n_probes} Rademacher probes) "
                                                  "over the held-out targets' mean squared norm; delta method")
        split["Wiener"] = pair(sig_W, noi_W, dsplit["Wiener"],
                               f"Σ̂ₓ{' and σ̂' if noise_std is None else ''} (Wiener re-applied on {len(sub)} "
                               f"held-out targets and {nprb} probes per refit)")
    split["C_data"] = pair(sig_D, noi_D, dsplit["C_data"], "C_data (training pairs)")
    if pinv_map is not None:
        fro_P = hutchinson(pinv_map, op.shape[0], n_probes=N_PROBES, seed=rng_probe, batch=batch, ci=ci)
        split["A⁺"] = signal_noise_from_rows(rows["sig_P"], den_rows, fro_P, sigma, ci)
    return MatrixFreeStudy(errors=errors, verdict=verdict, split=split, reference_noise=reference_noise,
                           status=status, outputs=outputs, surrogate=sur, covariance=cov, noise_std=sigma,
                           noise_std_interval=sigma_ci, r2=r2, wiener_solve=wsolve, mean_x=mean_x, squares=squares,
                           target_range=hs.x_max - hs.x_min,
                           first_rows={k: first[k] for k in ("inputs", "outputs", "targets")},
                           surrogate_excess=max(_surrogate_bias(grp, B, S), 0.0), surrogate_se=sur_se)


def _err_text(e: GroupedError) -> str:
    """"estimate [low, high]", or "below detection: < upper" when the bias correction is at least the corrected
    estimate (:func:`linlens.stats.below_detection`: the number left is no larger than the noise removed)."""
    if below_detection(e.plug_in, e.estimate):
        hi = float(e.boot.high["R"])
        return (f"below detection: < {hi:.3g}" if hi > 0 else
                f"below detection: ≈ 0 (the plug-in {e.plug_in:.3g} is no larger than its estimation noise)")
    return f"{e.estimate:.3g} [{e.low:.3g}, {e.high:.3g}]"


def _report(o: AnalyzeOptions, route: Route, op: Any, st: MatrixFreeStudy, sigma_note: Any, te: dict[str, Any],
            timing: dict[str, float], in_shape: tuple[int, ...], x_shape: tuple[int, ...], n: int, n_train: int,
            n_fit: int, n_held: int, m: int, Xh: np.ndarray, Yh: np.ndarray, Fh: np.ndarray,
            cast: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    sur, r2, errors, verdict, status, split = st.surrogate, st.r2, st.errors, st.verdict, st.status, st.split
    cov, sigma, sigma_ci, outputs, wsolve = st.covariance, st.noise_std, st.noise_std_interval, st.outputs, \
        st.wiener_solve
    rep = Report(f"linlens analyze (matrix-free route): {Path(str(o.model)).name} on {Path(o.inputs).name}")
    add_route(rep, route)
    errs = "; ".join(f"vs {k} {_err_text(e)}" for k, e in errors.items())
    rep.add_answer(f"Verdict: the network's surrogate is {verdict.words()}; data-weighted error on the held-out "
                   f"probes (on the surrogate's top-{m} subspace), bias-corrected [95% interval]: {errs}.")
    rep.add_answer(f"How linear: the surrogate on the top-{m} principal subspace explains R² = {r2:.4g} of the "
                   f"network's output variance on {n_held} held-out probes; {sur.outside_variance_fraction_:.3g} of "
                   "the inputs' variance lies outside that subspace.")
    pair, pair_w = te["paired"], te["paired_wiener"]
    if pair_w is not None:
        rep.add_answer(answer_network_vs_cdata(
            te["mse"]["model"], te["mse"]["Wiener"], pair_w, baseline="the Wiener estimator (applied in full)",
            worse="the network is worse than the Wiener estimator",
            better="the network is better than the estimated Wiener estimator, whose own error (Σ̂ₓ and σ̂ from "
                   f"{n_train} training pairs) counts too — not by itself a nonlinear gain (a network equal to the "
                   "true Wiener estimator also wins)"))
    if te.get("gain") is not None:
        rep.add_answer(answer_gain(te["mse"], te["gain"], label=f"C_data (rank {m})",
                                   baseline_note=f"C_data's estimation error from {n_train} training pairs and what "
                                                 "lies outside its subspace"))
    elif pair is not None:
        rep.add_answer(answer_network_vs_cdata(
            te["mse"]["model"], te["mse"]["C_data"], pair, baseline=f"C_data (rank {m})",
            better=f"the network is better than this rank-{m} fit (not by itself a nonlinear gain: the difference "
                   f"includes the {sur.outside_variance_fraction_:.3g} of the inputs' variance outside the subspace)"))
    rep.answer_next = "the signal error / noise amplification table: where the network's error comes from."
    if sigma_note:
        rep.add_text(f"Warning: {sigma_note}.")
    rep.add_text(
        f"The operator ({op.kind}, {op.shape[0]} × {op.shape[1]}) is applied as a function: no d × d matrix is "
        f"formed. {n} rows were split by a seeded permutation: {n_train} training pairs give σ, the prior "
        f"covariance Σₓ ({PRIOR_MODEL}; rank {len(cov.variances_)}, which holds "
        f"{cov.to_dict()['low_rank_fraction']:.3g} of tr Σₓ) and C_data; of the {n - n_train} probes, {n_fit} fit "
        f"the network's surrogate on their top-{m} principal subspace (C = B V_mᵀ) and {n_held} test every number. "
        f"The Wiener estimator x̄ + ΣₓAᵀ(AΣₓAᵀ + σ²I)⁻¹(y − ȳ) is applied by conjugate gradients "
        f"({wsolve.to_dict()['max_iterations']} iterations at most); A⁺ by LSQR where it converges. "
        f"Noise σ = {sigma:.4g}"
        + (f" (estimated from y − Ax, 95% χ² interval [{sigma_ci[0]:.4g}, {sigma_ci[1]:.4g}])" if sigma_ci else
           " (given)") + ". Data-weighted errors E‖Cỹ − RPỹ‖²/E‖RPỹ‖² are measured on the held-out probes ỹ "
        "projected (P) onto the surrogate's subspace for the reference: C lives there, and the probes' variance "
        f"outside it ({sur.outside_variance_fraction_:.3g}) is reported, not scored. They are corrected "
        "for the estimation noise of B (cluster-"
        f"robust, {N_GROUPS} row groups) with a basic group-bootstrap interval; every reference is resampled with "
        "the same group weights, so the verdict's paired tests compare them on the same replicates. References that "
        "are estimates are refitted in every replicate on the training pairs resampled by row groups, and the bias "
        "their estimation noise adds to the error is subtracted (bootstrap): "
        + "; ".join(f"{k}: {v}" for k, v in st.reference_noise.items()) + ". References: "
        + "; ".join(f"{k}: {v}" for k, v in status.items()) + "." + ("" if cast is None else f" The {cast}."))
    rows = [[k, _err_text(e), e.plug_in] for k, e in errors.items()]
    rep.add_table(["reference", "data-weighted error (bias-corrected [95% basic interval])", "plug-in"], rows,
                  caption=f"Verdict: {verdict.text()}")
    sn_rows = [[k, *(f"{e.estimate:.4g} [{e.low:.4g}, {e.high:.4g}]" for e in (s.signal_error,
                                                                               s.noise_amplification, s.total))]
               for k, s in split.items()]
    rep.add_table(["map", "signal error E‖(CA − I)x‖²/E‖x‖²", "noise amplification σ²‖C‖²_F/E‖x‖²", "sum"],
                  sn_rows, caption=f"Expected test error split (÷ E‖x‖²) with 95% intervals: the signal error over "
                                   f"the {n_held} held-out targets, ‖C‖²_F by Hutchinson's estimator ({N_PROBES} "
                                   "Rademacher probes, the same for every map; exact for the subspace maps C and "
                                   "C_data). Intervals include each map's own estimation noise where it is "
                                   "estimated (B̂; C_data; Σ̂ₓ and σ̂), from the group-bootstrap refits, whose "
                                   "bias is subtracted.")
    rep.add_table(["predictor", "test MSE per pixel", "PSNR (dB)"],
                  [[k, te["mse"][k], te["psnr"][k]] for k in te["mse"]],
                  caption=f"On the {n_held} held-out probe images. Network − C_data per-image squared error: "
                          + (f"{pair.difference:.3g} [{pair.ci_low:.3g}, {pair.ci_high:.3g}], p = {pair.p_value:.2g} "
                             f"(paired t; C_data has rank {m}, so a negative difference includes the truncation)"
                             if pair is not None else "n/a") + ". Network − Wiener: "
                          + (f"{pair_w.difference:.3g} [{pair_w.ci_low:.3g}, {pair_w.ci_high:.3g}], "
                             f"p = {pair_w.p_value:.2g} (paired t; negative: the network is better, which includes "
                             "the estimate's own error)"
                             if pair_w is not None else "n/a") + ".")
    img = image_shape(x_shape)
    if img is not None:
        k = min(3, len(Xh))
        tiles = {"target x": Xh[:k], "network": Fh[:k], **{f"{r}": v[:k] for r, v in outputs.items()}}
        if image_shape(in_shape) == img:
            tiles = {"input y": Yh[:k], **tiles}
        rep.add_figure(figs.plot_operator_rows(tiles, img, range(k)), "examples",
                       "Held-out probe images: input, target, the network's output and each reference's estimate "
                       "(each tile scaled to itself).")
        rep.add_array("example_images", np.stack([v[0].reshape(img) for v in tiles.values()]))
        rep.metrics["example_images"] = list(tiles)
    rep.add_figure(figs.plot_singular_spectra({"probes (top m)": sur.singular_values_},
                                              title="Singular values of the centred probe inputs (the subspace)"),
                   "input_spectrum", "A spectrum still high at m means directions the surrogate does not see (raise "
                   "--components).")
    rep.add_array("components", sur.components_)
    rep.add_array("coef_subspace", sur.coef_subspace_)
    verdict_d = verdict.to_dict()
    rep.metrics.update({
        "model": str(o.model), "inputs": str(o.inputs), "targets": str(o.targets), "operator": op.kind,
        "input_shape": list(in_shape), "target_shape": list(x_shape), "n_rows": n, "n_train": n_train,
        "n_fit": n_fit, "n_test": n_held, "n_components": m, "seed": o.seed, "input_cast": cast,
        "noise_std": sigma, "noise_std_interval": sigma_ci, "r2": r2, "r2_definition": R2_DEFINITION,
        "outside_variance_fraction": sur.outside_variance_fraction_,
        "prior_covariance": cov.to_dict(), "references": status, "reference_noise": st.reference_noise,
        "wiener_solve": wsolve.to_dict(),
        "errors": {k: {**e.to_dict(), "below_detection": below_detection(e.plug_in, e.estimate)}
                   for k, e in errors.items()}, "verdict": verdict_d, "verdict_text": verdict.text(),
        "signal_noise": {k: s.table() for k, s in split.items()},
        "signal_noise_method": {k: {"signal_error": s.signal_error.method,
                                    "noise_amplification": s.noise_amplification.method}
                                for k, s in split.items()},
        "test_errors": te, "timing": timing,
        "arrays": "components.npy (m, d_in) = V_mᵀ and coef_subspace.npy (d_out, m) = B: C = B V_mᵀ; "
                  "example_images.npy: the first held-out image as each of example_images"})
    rep.metrics.update(extra or {})
    rep.write(o.out, force=o.force)
    summary: dict[str, Any] = {"verdict": verdict.text(), "surrogate R² (held out)": r2, "components m": m}
    for k, e in errors.items():
        summary[f"error vs {k} [95% CI]"] = _err_text(e)
    s = split["surrogate C"]
    summary["signal error"] = f"{s.signal_error.estimate:.3g} [{s.signal_error.low:.3g}, {s.signal_error.high:.3g}]"
    na = s.noise_amplification
    summary["noise amplification"] = f"{na.estimate:.3g} [{na.low:.3g}, {na.high:.3g}]"
    summary["test MSE model"] = te["mse"]["model"]
    summary["test MSE C_data"] = te["mse"]["C_data"]
    if pair is not None:
        summary["model vs C_data (paired t)"] = f"p = {pair.p_value:.2g}"
    if te["paired_wiener"] is not None:
        summary["model vs Wiener (paired t)"] = f"p = {te['paired_wiener'].p_value:.2g}"
    if te.get("gain") is not None:  # the one gain rule (stats.gain_split), as the study and Fourier summaries
        summary["nonlinear gain (model vs its surrogate)"] = f"{te['gain'].verdict}, {te['gain'].nonlinear.p_text()}"
    if len(wsolve.iterations):  # CG's work and stopping rule (the Wiener estimator's solves)
        summary["CG (Wiener)"] = (f"{len(wsolve.iterations)} systems, ≤ {int(wsolve.iterations.max())} iterations "
                                  f"(mean {float(wsolve.iterations.mean()):.1f}), "
                                  + wsolve.method.split("stop at ", 1)[-1].split(" or ")[0]
                                  + (", Fourier-diagonal preconditioner" if "Fourier-diagonal" in wsolve.method
                                     else ""))
    summary["time (CPU / wall)"] = f"{timing['cpu_s']:.1f} s / {timing['wall_s']:.1f} s"
    summary["peak memory (RSS)"] = f"{timing['peak_rss_gib']:.2f} GiB"
    if not math.isfinite(r2):
        summary["surrogate R² (held out)"] = None
    return summary
