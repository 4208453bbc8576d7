"""``linlens analyze --targets``: the whole inverse-operator study on the user's model, data and operator.

The user's rows (inputs y, targets x, in any native shape such as images (n, C, H, W)) are split once, by a
seeded permutation that does not depend on the batch size, into training pairs (for C_data, the prior
covariance and the noise level) and held-out probe pairs; the probes are split again into the rows each
surrogate is fitted on and the rows every number is tested on. :func:`linlens.workflows.study.inverse_study` then runs
the study the demo runs: surrogate C against A⁺, the Wiener estimator and C_data with bias-corrected errors,
intervals and paired verdicts; signal error, noise amplification and per-band errors against A; filter factors;
the network's test error against C_data split into its nonlinear gain (against its own surrogate) and a better
linear map (:func:`linlens.stats.gain_split`); Σ-weighted local Jacobians against C.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linlens._progress import progress_to
from linlens.errors import ConfigError, InputFileError, ShapeError
from linlens.loaders import load_array, load_model
from linlens.nn import progress_bar, progress_listener, resolve_device
from linlens.operators import LinearMap
from linlens.probing import FlatModel, probe_all
from linlens.report import Report, check_destination
from linlens.report import figures as figs
from linlens.report import spectral_figures as sfigs
from linlens.spectral import SpectralSurrogate, apply_filter, prediction_errors, spectral_analysis
from linlens.stats import noise_std_estimate
from linlens.validation import (
    check_covariance,
    check_estimated_noise_std,
    check_memory,
    check_noise_std,
    check_rows,
    noise_std_disagreement,
)
from linlens.workflows.analyze_common import (
    add_route,
    answer_gain,
    answer_network_vs_cdata,
    image_shape,
    load_linear_map,
    signal_shape,
)
from linlens.workflows.analyze_options import AnalyzeOptions, Route, refuse_unused
from linlens.workflows.study import LinearityStudy, inverse_study
from linlens.workflows.study_report import add_study_section, ci_text, local_vs_global

__all__ = ["run_study", "run_fourier", "study_memory", "plan_inverse", "run_inverse", "row_shapes",
           "load_forward_operator", "inverse_study_from_files", "FileStudy", "split_rows", "noise_std_interval",
           "DENSE_LIMIT", "LOCAL_ROWS", "LOCAL_MAX_D"]

#: Test rows at which the dense study compares the model's Jacobians with its surrogate, by default, up to
#: LOCAL_MAX_D inputs; above it none by default (each row costs a d × d Jacobian and a d³ product).
LOCAL_ROWS = 200
LOCAL_MAX_D = 1024

#: Largest d_in · d_out for which the dense study runs (references and surrogates are d × d matrices).
DENSE_LIMIT = 4096 * 4096

TARGET_KEYS = ("targets", "x", "X", "y_true", "labels")


def split_rows(n: int, seed: int, train_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of n row indices cut into (training rows, probe rows); independent of batch size.

    Example:
        >>> tr, pr = split_rows(10, seed=0); len(tr), len(pr), sorted(np.r_[tr, pr].tolist()) == list(range(10))
        (5, 5, True)
    """
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(train_fraction * n))
    return np.sort(perm[:k]), perm[k:]


def noise_std_interval(residuals: np.ndarray, ci: float = 0.95) -> tuple[float, float, float]:
    """(σ̂, low, high) of :func:`linlens.stats.noise_std_estimate` (the one estimate; ν = n·d − d).

    Example:
        >>> r = np.random.default_rng(0).normal(scale=0.1, size=(2000, 5))
        >>> s, lo, hi = noise_std_interval(r); bool(lo < 0.1 < hi), round(s, 2)
        (True, 0.1)
    """
    e = noise_std_estimate(residuals, ci)
    return e.value, e.low, e.high


def _load_pair(inputs: Path, targets: Path | None, mmap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    # mmap: .npy files memory-mapped in their stored dtype, not checked for NaN/Inf (read them with loaders.iter_rows)
    Y = load_array(inputs, "inputs", ndim=None, mmap=mmap)
    if targets is None:
        if Path(inputs).suffix.lower() != ".npz":
            raise InputFileError("targets: give --targets, or an .npz holding arrays named 'inputs' and 'targets'")
        targets = inputs
    X = load_array(targets, "targets", ndim=None, preferred_keys=TARGET_KEYS, mmap=mmap)
    if Y.ndim < 2 or X.ndim < 2:
        raise ShapeError(f"inputs and targets need a row axis and at least one feature axis; got shapes "
                         f"{Y.shape} and {X.shape}")
    if len(Y) != len(X):
        raise ShapeError(f"targets must have one row per input: inputs have {len(Y)} rows, targets {len(X)}")
    return Y, X


def row_shapes(inputs: Path, targets: Path | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shape of one row of the inputs and of the targets (``targets`` None: from an ``inputs`` .npz), read
    without loading ``.npy`` data (memory-mapped).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); np.save(d / "y.npy", np.zeros((5, 1, 4, 4)))
        >>> np.save(d / "x.npy", np.zeros((5, 8)))
        >>> row_shapes(d / "y.npy", d / "x.npy")  # read from the headers only
        ((1, 4, 4), (8,))
    """
    if targets is None and Path(inputs).suffix.lower() != ".npz":
        raise InputFileError("targets: give --targets, or an .npz holding arrays named 'inputs' and 'targets'")
    if any(p is not None and (Path(p).is_dir() or Path(p).suffix.lower() == ".zarr") for p in (inputs, targets)):
        from linlens.workflows.analyze_dask import open_inputs  # a Zarr array folder (the Dask routes read them)

        return open_inputs(inputs, "inputs")[3], open_inputs(targets, "targets")[3]
    Y = load_array(inputs, "inputs", ndim=None, mmap=True)
    X = load_array(targets if targets is not None else inputs, "targets", ndim=None, mmap=True,
                   preferred_keys=TARGET_KEYS)
    if Y.ndim < 2 or X.ndim < 2:
        raise ShapeError(f"inputs and targets need a row axis and at least one feature axis; got shapes "
                         f"{Y.shape} and {X.shape}")
    return tuple(int(k) for k in Y.shape[1:]), tuple(int(k) for k in X.shape[1:])


def load_forward_operator(spec: str | LinearMap, x_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> LinearMap:
    """The forward operator A (targets x ↦ inputs y) of an inverse study, checked against both row shapes.

    Arguments:
        spec: a ``.npy`` matrix (n_y, n_x), ``module:attr`` (imports that code: see
            :func:`linlens.operators.load_operator`), or a :class:`~linlens.operators.LinearMap` already loaded.
        x_shape, in_shape: the shape of one target row and of one input row.

    Returns:
        :class:`~linlens.operators.LinearMap` of shape (prod(in_shape), prod(x_shape)).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "A.npy"; np.save(p, np.arange(6.0).reshape(3, 2))
        >>> op = load_forward_operator(str(p), x_shape=(2,), in_shape=(3,)); op.shape, op.to_dense()[2].tolist()
        ((3, 2), [4.0, 5.0])
        >>> load_forward_operator(str(p), x_shape=(3,), in_shape=(3,))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ShapeError: ...
    """
    d_in, d_x = int(np.prod(in_shape)), int(np.prod(x_shape))
    try:
        op = spec if isinstance(spec, LinearMap) else load_linear_map(spec, "operator", in_shape=x_shape,
                                                                      out_shape=in_shape)
    except ShapeError as exc:
        raise ShapeError(f"operator must map targets {x_shape} ({d_x} values) to inputs {in_shape} ({d_in} "
                         f"values): {exc}") from None
    if op.shape != (d_in, d_x):
        raise ShapeError(f"operator must map targets ({d_x} values) to inputs ({d_in} values): shape "
                         f"{(d_in, d_x)}; got {op.shape}")
    return op


def plan_inverse(o: AnalyzeOptions) -> Route:
    """The inverse study's route: dense or Fourier. Loads the operator once (the route carries it) and tests it
    for shift invariance in its own precision (an operator that raises stops here, with one line).

    Arguments:
        o: the run's options (targets given, or an ``inputs`` .npz with an operator).

    Returns:
        :class:`~linlens.workflows.analyze_options.Route` named "study" or "fourier".

    Example:
        >>> import json
        >>> from linlens.workflows._examples import inverse_files
        >>> d, A = inverse_files()  # x ~ N(0, I₃), A = diag(2, 1, 0.5), y = Ax + 0.1·noise, net.pt = A⁻¹
        >>> r = plan_inverse(AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                                 operator=str(d / "A.npy")))
        >>> r.name, r.operator.shape  # a diagonal A is not a circular convolution: the dense study
        ('study', (3, 3))
    """
    if o.assume == "dense":
        return Route("study", "--targets with --assume dense: the dense study (d × d matrices), whatever the "
                              "operator's structure")
    if o.operator is None:
        if o.assume == "shift-invariant":
            raise ConfigError("--assume shift-invariant: the Fourier route needs the forward operator (--operator)")
        return Route("study", "--targets without --operator: the dense study against C_data (the least-squares fit "
                              "of your data) alone")
    in_shape, x_shape = row_shapes(o.inputs, o.targets)
    op = load_forward_operator(o.operator, x_shape, in_shape)
    same = in_shape == x_shape and signal_shape(in_shape) is not None
    if o.assume == "shift-invariant":
        if not same:
            raise ConfigError(f"--assume shift-invariant: the Fourier route needs single-channel signals or images "
                              f"of one shape for inputs and targets; got {in_shape} and {x_shape}")
        chk = op.shift_invariance_check()
        op.circular = True  # declared by the user; the test's error is recorded beside the declaration
        return Route("fourier", f"--assume shift-invariant (the operator's shift-equivariance error is "
                                f"{chk.max_error:.2g}; a circular convolution gives ≤ {chk.tol:.0e})", op)
    if not same:
        return Route("study", f"--targets with inputs {in_shape} and targets {x_shape}, not single-channel signals "
                              "or images of one shape: the dense study (the Fourier route needs one shape)", op)
    if op.circular is not None:
        return (Route("fourier", f"--targets with an operator declared a circular convolution ({op.kind})", op)
                if op.circular else
                Route("study", f"--targets with an operator declared not circular ({op.kind}): the dense study", op))
    chk = op.shift_invariance_check()  # in the operator's own precision; an operator that raises stops here
    op.circular = chk.passed
    if chk.passed:
        return Route("fourier", f"--targets with a circular-convolution operator (shift-equivariance error "
                                f"{chk.max_error:.2g} ≤ {chk.tol:.0e} in {op.precision}): diagonal in the Fourier "
                                "basis, no d × d matrix", op)
    return Route("study", f"--targets with an operator that is not a circular convolution (shift-equivariance "
                          f"error {chk.max_error:.2g} > {chk.tol:.0e}): the dense study", op)


def run_inverse(
    model: str,
    inputs: Path,
    targets: Path | None,
    out: Path,
    *,
    operator: str | None = None,
    noise_std: float | None = None,
    force: bool = False,
    batch_size: int = 4096,
    device: str = "auto",
    seed: int = 0,
    n_boot: int = 100,
    local_samples: int | None = None,
    console: Any = None,
    load_model_kwargs: dict[str, Any] | None = None,
    assume: str | None = None,
    train_inputs: Path | None = None,
    train_targets: Path | None = None,
    prior_covariance: Path | None = None,
    max_memory: int | None = None,
) -> dict[str, Any]:
    """The inverse study with the older signature: builds the options, plans (dense or Fourier, with the same
    refusals as ``linlens analyze``) and runs :func:`run_study` or :func:`run_fourier`.

    Arguments:
        model, inputs, targets, out, operator, noise_std, force, batch_size, device, seed, n_boot, assume,
            train_inputs, train_targets, prior_covariance, max_memory: as the fields of
            :class:`~linlens.workflows.analyze_options.AnalyzeOptions` (``targets`` None: read from an ``inputs``
            .npz).
        local_samples: test probes at which Jacobians are compared with the surrogate (0: none; default
            :data:`LOCAL_ROWS` up to :data:`LOCAL_MAX_D` inputs, none above; dense study).
        console: a rich console for progress lines, or None.
        load_model_kwargs: ``{"trust_model": bool}`` at most.

    Returns:
        headline numbers for the summary table.

    Example:
        >>> kw = {"device": "cpu"}  # refused: the device is run_inverse's own argument
        >>> run_inverse("net.pt", Path("y.npy"), Path("x.npy"), Path("out"), load_model_kwargs=kw)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: load_model_kwargs: only 'trust_model' is an option of the inverse study; got [...]
        >>> run_inverse("net.pt", Path("y.npy"), None, Path("out"))  # no targets and no .npz holding them
        Traceback (most recent call last):
        ...
        linlens.errors.InputFileError: targets: give --targets, or an .npz holding arrays named 'inputs' and 'targets'
    """
    extra = set(load_model_kwargs or {}) - {"trust_model"}
    if extra:
        raise ConfigError(f"load_model_kwargs: only 'trust_model' is an option of the inverse study; got "
                          f"{sorted(extra)}")
    if targets is None and Path(inputs).suffix.lower() == ".npz":
        targets = inputs
    o = AnalyzeOptions(model=model, inputs=inputs, targets=targets, out=out, operator=operator, noise_std=noise_std,
                       force=force, batch_size=batch_size, device=device, seed=seed,
                       n_boot=None if n_boot == 100 else n_boot, local_samples=local_samples, assume=assume,
                       train_inputs=train_inputs, train_targets=train_targets, prior_covariance=prior_covariance,
                       max_memory=max_memory, trust_model=bool((load_model_kwargs or {}).get("trust_model", False)))
    if o.targets is None:
        raise InputFileError("targets: give --targets, or an .npz holding arrays named 'inputs' and 'targets'")
    check_destination(out, force)
    refuse_unused(o, {"study", "fourier"}, "inverse study")
    o.check_values()
    route = plan_inverse(o)
    refuse_unused(o, {route.name}, route.label)
    return route.summary((run_fourier if route.name == "fourier" else run_study)(o, route, console))


def run_study(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The dense inverse-operator study on the user's files; writes the report to ``options.out``.

    Arguments:
        options: the run's options (:class:`~linlens.workflows.analyze_options.AnalyzeOptions`). Fields used:
            model (a file is a program: see ``linlens analyze --help``); inputs y (n, *in_shape); targets x
            (n, *out_shape); operator A (x ↦ y), taken from ``route.operator`` when the plan loaded it, else a
            ``.npy`` matrix (n_y, n_x) or ``module:attr``; noise_std (σ of the noise on y; estimated from y − Ax with
            a χ² interval when A is given and σ is not); out, force, batch_size, device ("auto": CUDA when
            available), seed (the row split and the resampling), n_boot (bootstrap resamples, default 100),
            local_samples (test probes at which Jacobians are compared with the surrogate, 0: none; default
            :data:`LOCAL_ROWS` up to :data:`LOCAL_MAX_D` inputs, none above: each row costs a d × d Jacobian and a d³
            product),
            trust_model; train_inputs, train_targets (separate training pairs for C_data, Σₓ and σ; then every
            row of ``inputs`` is a probe); prior_covariance (Σₓ as ``.npy`` instead of the training targets'
            empirical covariance); full_spectrum (every singular value of the Wiener estimator and C_data
            above the size rule REFERENCE_SPECTRUM_MAX_D).
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        headline numbers for the summary table.

    Example:
        >>> import json
        >>> from linlens.workflows._examples import inverse_files
        >>> d, A = inverse_files()  # x ~ N(0, I₃), A = diag(2, 1, 0.5), y = Ax + 0.1·noise, net.pt = A⁻¹
        >>> o = AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                    operator=str(d / "A.npy"), n_boot=20, local_samples=0, out=d / "report",
        ...                    trust_model=True)
        >>> s = run_study(o, plan_inverse(o))
        >>> m = json.loads((d / "report/metrics.json").read_text())["study"]["models"]["model"]
        >>> sn = m["signal_noise_corrected"]; round(sn["signal_error"]["estimate"], 12), round(m["r2"], 12)  # CA = I
        (0.0, 1.0)
    """
    o = options
    model, inputs, targets, out, force, seed = o.model, o.inputs, o.targets, o.out, o.force, o.seed
    n_boot = 100 if o.n_boot is None else o.n_boot
    train_inputs = o.train_inputs
    check_destination(out, force)

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg)

    with progress_bar(console is not None) as bar, progress_to(progress_listener(bar)):  # the study's steps
        core = inverse_study_from_files({"model": str(model)}, inputs, targets,
                                        operator=route.operator if route.operator is not None else o.operator,
                                        noise_std=o.noise_std, train_inputs=train_inputs,
                                        train_targets=o.train_targets, prior_covariance=o.prior_covariance,
                                        batch_size=o.batch_size, device=o.device, seed=seed, n_boot=n_boot,
                                        load_model_kwargs={"trust_model": o.trust_model}, say=say,
                                        name=f"{Path(str(model)).name} on {Path(inputs).name}",
                                        max_memory=o.max_memory, full_spectrum=o.full_spectrum)
    study, train, probe, n_fit = core.study, core.train, core.probe, core.study.n_fit
    noise_std, sigma_ci, A = core.noise_std, core.noise_std_interval, core.A
    in_shape, x_shape, n = core.in_shape, core.x_shape, core.n_rows
    d_in = int(np.prod(in_shape))
    m = study.models["model"]
    local = None
    local_samples = o.local_samples
    local_note = None
    if local_samples is None:  # the default: LOCAL_ROWS rows, none above LOCAL_MAX_D inputs
        local_samples = LOCAL_ROWS if d_in <= LOCAL_MAX_D else 0
        if not local_samples:
            local_note = (f"Local Jacobians were not compared with the surrogate: above d = {LOCAL_MAX_D} inputs "
                          f"they are off by default (each row costs a {d_in} × {d_in} Jacobian and a d³ product, "
                          f"minutes for {LOCAL_ROWS} rows at d = 4096 on one thread); ask for them in Python with "
                          "AnalyzeOptions(local_samples=N).")
    if local_samples > 0:
        say(f"Jacobians at {min(local_samples, len(probe) - n_fit)} test rows …")
        local = local_vs_global(core.nets, study, core.test_inputs[:local_samples],
                                covariance=np.cov(core.test_inputs.T, bias=True).reshape(d_in, d_in))
    total_var = core.total_var
    rep = Report(f"linlens analyze: {study.problem}")
    add_route(rep, route)
    rep.add_text(
        (f"{n} rows (inputs {in_shape}, targets {x_shape}) were split by a seeded permutation: {len(train)} training "
         f"pairs give C_data (the least-squares fit of x on y), the prior covariance Σₓ and the noise level; of the "
         if train_inputs is None else
         f"The training pairs ({train_inputs}) give C_data, Σₓ and the noise level; of the ")
        + f"{len(probe)} held-out pairs, {n_fit} fit the model's global linear surrogate C and {len(probe) - n_fit} "
        "test every number below. "
        + ("" if A is not None else "No operator was given: the study compares C with C_data only (the "
           "empirical Wiener estimator); give --operator for A⁺, the Wiener estimator, the signal/noise split and "
           "filter factors. ")
        + (f"Noise σ estimated from y − Ax on the training pairs: {noise_std:.4g} (95% χ² interval "
           f"[{sigma_ci[0]:.4g}, {sigma_ci[1]:.4g}] for i.i.d. Gaussian noise)." if sigma_ci else "")
    )
    add_study_section(rep, "analyze", study, good="model", total_var=total_var, local=local)
    if local_note:
        rep.add_text(local_note)
    img = image_shape(in_shape)
    if img is not None and image_shape(x_shape) == img:
        ops = {"surrogate C": m.coef, **{k: R for k, R in study.references.items() if not k.startswith("A")}}
        rep.add_figure(figs.plot_operator_rows(ops, img, figs.row_pixels(img, m.coef.shape[0])), "operator_rows",
                       "Rows of the surrogate and the references as images: the linear filter each output pixel "
                       "applies to the input (centre, off-centre and border pixels; each tile scaled to itself).")
        if A is not None and m.filter_factors is not None:
            Vt_A = study.svd_A.Vt  # A's right singular vectors (the study's one SVD of A): target-image patterns
            ff = {"C": m.filter_factors.factors,
                  **{k: study.reference_filter_factors[k].factors for k in ("Wiener", "C_data")
                     if k in study.reference_filter_factors}}
            rep.add_figure(figs.plot_singular_images(Vt_A, m.filter_factors.singular_values, ff, img),
                           "filter_factor_images",
                           "Filter factors as images: right singular vectors vᵢ of A (patterns of the target image, "
                           "from the best-seen to the worst-seen), each with σᵢ and the filter factor φᵢ of the "
                           "surrogate C and of the references (1: passed, 0: suppressed).")
    rep.add_array("surrogate_coef", m.coef)
    for k, R in study.references.items():
        rep.add_array({"A⁻¹": "A_inverse", "A⁺": "A_pinv"}.get(k, k), R)
    rep.metrics.update({"inputs": str(inputs), "targets": str(targets or inputs), "model": str(model),
                        "input_shape": list(in_shape), "target_shape": list(x_shape), "n_rows": n,
                        "n_train": len(train), "n_fit": n_fit, "n_test": len(probe) - n_fit, "seed": seed,
                        "noise_std": noise_std, "noise_std_interval": sigma_ci, "study": study.to_dict(),
                        "local_vs_global": local,
                        "arrays": "surrogate_coef.npy and one .npy per reference, beside this file"})
    rep.write(out, force=force)
    return _summary(study)


@dataclass
class FileStudy:
    """What :func:`inverse_study_from_files` returns: the study and what a report needs beside it.

    Example:
        >>> from linlens.workflows._examples import inverse_files
        >>> d, A = inverse_files()  # 400 pairs: the study splits them into training rows and probes
        >>> files = {"inputs": d / "y.npy", "targets": d / "x.npy", "operator": str(d / "A.npy")}
        >>> fs = inverse_study_from_files({"net": str(d / "net.pt")}, n_boot=20, **files,
        ...                               load_model_kwargs={"trust_model": True})
        >>> (fs.n_rows, len(fs.train), len(fs.probe)), fs.in_shape, bool(np.allclose(fs.A, A))
        ((400, 200, 200), (3,), True)
    """

    study: LinearityStudy
    nets: dict[str, Any]
    test_inputs: np.ndarray
    train: np.ndarray
    probe: np.ndarray
    A: np.ndarray | None
    noise_std: float | None
    noise_std_interval: tuple[float, float] | None
    total_var: float
    in_shape: tuple[int, ...]
    x_shape: tuple[int, ...]
    n_rows: int = 0


def study_memory(n_probe: int, n_train: int, d_in: int, d_x: int, n_boot: int = 100) -> float:
    """Peak memory (bytes) of the dense study, estimated before any work: ~48 d × d matrices (A, its SVD, the three
    references and their SVDs, Σₓ, the surrogate, …), the per-row arrays of the designs and of the multiplier
    bootstrap (≈ 8 probe and 10 training copies of d values per row), three n_fit × n_fit Gram matrices and the
    sketches of its quadratic terms (float64). Fitted to the peaks benchmarks/bench_analyze.py --targets measured
    (10,000 + 10,000 rows: 2.4 GiB above the process's start at d = 1024, 12.5 GiB at d = 4096).

    Example:
        >>> round(study_memory(10_000, 10_000, 4096, 4096) / 2**30, 1)  # GiB at d = 4096
        12.6
    """
    d = max(d_in, d_x)
    n_fit = n_probe // 2
    return 8.0 * (48 * d * d + d * (8 * n_probe + 10 * n_train) + 3 * n_fit * n_fit + 6 * 32 * n_boot * d)


def inverse_study_from_files(
    models: Mapping[str, str],
    inputs: Path,
    targets: Path | None,
    *,
    operator: str | LinearMap | None = None,
    noise_std: float | None = None,
    train_inputs: Path | None = None,
    train_targets: Path | None = None,
    prior_covariance: Path | None = None,
    batch_size: int = 4096,
    device: str = "auto",
    seed: int = 0,
    n_boot: int = 100,
    load_model_kwargs: dict[str, Any] | None = None,
    say: Any = None,
    name: str = "problem",
    max_memory: int | None = None,
    full_spectrum: bool = False,
) -> FileStudy:
    """The dense inverse-operator study from files: the one path of ``linlens analyze --targets`` and of the demo.

    Arguments:
        models: name → model spec (a TorchScript/``.pt2`` file or ``module:attr``; files are inspected first).
        inputs, targets: probe inputs y and ground truth x (any row shape). Without ``train_inputs`` the rows are
            split by a seeded permutation into training pairs and probes; with them, every row is a probe.
        operator: the forward operator A (``.npy``, ``module:attr`` or a loaded
            :class:`~linlens.operators.LinearMap`), or None.
        noise_std: σ; estimated from y − Ax on the training pairs (with a χ² interval) when A is given.
        train_inputs, train_targets: separate training pairs for C_data, Σₓ and σ.
        prior_covariance: Σₓ as a ``.npy`` (n_x, n_x); default the empirical covariance of the training targets.
        batch_size, device, seed, n_boot: as :func:`run_inverse`.
        load_model_kwargs: extra arguments of :func:`linlens.loaders.load_model`.
        say: a callable for progress lines, or None.
        name: the problem's label.
        max_memory: memory limit in bytes (None: half the physical memory); a study whose estimate
            (:func:`study_memory`) exceeds it is refused before the model runs.
        full_spectrum: the references' full spectra at any size (``--full-spectrum``; :func:`inverse_study`).

    Returns:
        :class:`FileStudy`.

    Example:
        >>> import json
        >>> from linlens.workflows._examples import inverse_files
        >>> d, A = inverse_files()  # x ~ N(0, I₃), A = diag(2, 1, 0.5), y = Ax + 0.1·noise, net.pt = A⁻¹
        >>> fs = inverse_study_from_files({"net": str(d / "net.pt")}, d / "y.npy", d / "x.npy",
        ...                               operator=str(d / "A.npy"), n_boot=20, load_model_kwargs={"trust_model": True})
        >>> bool(fs.noise_std_interval[0] < 0.1 < fs.noise_std_interval[1]), fs.study.inverse_name  # σ estimated
        (True, 'A⁻¹')
        >>> bool(np.allclose(fs.study.models["net"].coef, np.linalg.inv(A)))
        True
    """
    say = say or (lambda msg: None)
    Y, X = _load_pair(inputs, targets)
    in_shape, x_shape = tuple(Y.shape[1:]), tuple(X.shape[1:])
    n = len(Y)
    Yf, Xf = Y.reshape(n, -1), X.reshape(n, -1)
    d_in, d_x = Yf.shape[1], Xf.shape[1]
    if d_in * d_x > DENSE_LIMIT:
        raise ConfigError(f"d_in × d_out = {d_in} × {d_x} is beyond the dense study's limit ({DENSE_LIMIT:.3g} "
                          "entries per matrix); use the Fourier route for shift-invariant problems")
    if (train_inputs is None) != (train_targets is None):
        raise ConfigError("give both --train-inputs and --train-targets, or neither")
    if train_inputs is not None:
        Ytr, Xtr = _load_pair(train_inputs, train_targets)
        if Ytr.shape[1:] != Y.shape[1:] or Xtr.shape[1:] != X.shape[1:]:
            raise ShapeError(f"training pairs must have the probes' row shapes {in_shape} and {x_shape}; got "
                             f"{tuple(Ytr.shape[1:])} and {tuple(Xtr.shape[1:])}")
        Ytr, Xtr = Ytr.reshape(len(Ytr), -1), Xtr.reshape(len(Xtr), -1)
        train, probe = np.arange(0), np.arange(n)
    else:
        train, probe = split_rows(n, seed)
        Ytr, Xtr = Yf[train], Xf[train]
    n_fit = len(probe) // 2
    check_memory(study_memory(len(probe), len(Ytr), d_in, d_x, n_boot),
                 f"the dense study of {d_in} inputs and {d_x} targets on {len(probe)} probe and {len(Ytr)} training "
                 f"rows ({n_boot} bootstrap replicates)", max_memory,
                 alternative="fewer rows, or --assume shift-invariant for a convolution")
    if n_fit < d_in + 2 or len(Ytr) < d_in + 2:
        raise ShapeError(f"the surrogate is under-determined: {n} rows give {n_fit} rows to fit a map with {d_in} "
                         f"input features (+ intercept); give at least {4 * (d_in + 2)} rows (half train C_data, a "
                         "quarter fit the surrogate, a quarter test), or separate --train-inputs/--train-targets, or "
                         "--assume shift-invariant for a convolution, or analyze without --targets (the surrogate "
                         "alone, fitted on 4/5 of the rows)")
    A_op = None if operator is None else load_forward_operator(operator, x_shape, in_shape)
    A = None if A_op is None else A_op.to_dense()
    if A_op is not None:
        A_op.matrix = A  # inverse_study takes the map: its native precision sets the A⁺ cut (a float32 zero ≠ 0)
    Sx = None
    if prior_covariance is not None:
        Sx = check_covariance(load_array(prior_covariance, "prior covariance", ndim=2), d_x)
    sigma_ci, sigma_note = None, None
    AX = None if A is None else Xtr @ A.T  # formed once: σ's estimate here, the Wiener perturbation in the study
    if A is not None and noise_std is None:
        noise_std, lo, hi = noise_std_interval(Ytr - AX)
        check_estimated_noise_std(noise_std, Ytr)
        sigma_ci = (lo, hi)
    elif noise_std is not None:
        noise_std = check_noise_std(noise_std)
        if A is not None:  # a given σ is checked against what the residuals say
            sigma_note = noise_std_disagreement(noise_std, *noise_std_interval(Ytr - AX))
            if sigma_note:
                say(f"warning: {sigma_note}")
    dev = str(resolve_device(device))
    nets = {k: FlatModel(load_model(spec, device=dev, **(load_model_kwargs or {})), in_shape)
            for k, spec in models.items()}
    say(f"probing {len(nets)} model(s) on {len(probe)} held-out rows; C_data from {len(Ytr)} training rows; "
        f"{n_boot} bootstrap resamples …")
    # with separate training pairs every row is a probe: views, not copies of the n × d arrays (0.65 GB at d = 4096)
    Yp, Xp = (Yf, Xf) if train_inputs is not None else (Yf[probe], Xf[probe])
    handed = [AX]  # the study drops X Aᵀ after its Wiener perturbation: no reference to it stays here (n × d float64)
    del AX
    study = inverse_study(nets, Yp, Xp, Xtr, Ytr, A=A_op, prior_covariance=Sx, noise_std=noise_std,
                          noise_std_estimated=sigma_ci is not None, n_boot=n_boot, seed=seed, name=name,
                          batch_size=batch_size, AX_train=handed.pop(), full_spectrum=full_spectrum)
    if sigma_note:
        study.notes.append(sigma_note)
    for k, mod in study.models.items():
        if mod.coef.shape != (d_x, d_in):
            raise ShapeError(f"model {k!r} outputs {mod.coef.shape[0]} values per row; the targets have {d_x}")
    # tr Σₓ: the sum of the targets' variances (ddof 0), not the trace of a d × d covariance (an n·d² product)
    total_var = float(np.trace(Sx)) if Sx is not None else float(np.sum(np.var(Xtr, axis=0)))
    return FileStudy(study=study, nets=nets, test_inputs=Yp[n_fit:], train=train, probe=probe, A=A,
                     noise_std=noise_std, noise_std_interval=sigma_ci, total_var=total_var, in_shape=in_shape,
                     x_shape=x_shape, n_rows=n)


def _summary(study: LinearityStudy) -> dict[str, Any]:
    m = study.models["model"]
    out: dict[str, Any] = {"verdict": m.verdict.text(),
                           "surrogate R² (held out)": m.r2}
    for k, v in m.errors.items():
        out[f"error vs {k} [95% CI]"] = ci_text(v)
    if m.signal_noise_corrected:
        out["signal error"] = ci_text(m.signal_noise_corrected["signal_error"])
        out["noise amplification"] = ci_text(m.signal_noise_corrected["noise_amplification"])
    out["test MSE model"] = m.test_mse_model
    out["test MSE C_data"] = study.test_mse["C_data"]
    out["model vs C_data (paired t)"] = m.nonlinear_gain.p_text()
    if m.gain is not None:  # the nonlinear part alone: the network against its own surrogate (stats.gain_split)
        out["nonlinear gain (model vs its surrogate)"] = f"{m.gain.verdict}, {m.gain.nonlinear.p_text()}"
    return out

def _fourier_answer(rep: Report, an: Any, te: dict[str, Any], lf: float) -> None:
    """The short answer that opens the Fourier route's report: the verdict with every reference's bias-corrected
    error and interval, how linear the network is, its test MSE against C_data (numbers as in metrics.json)."""
    errs = "; ".join(f"vs {k} {an.errors_corrected[k]:.4g}" + (
        f" [{an.error_intervals[k][0]:.4g}, {an.error_intervals[k][1]:.4g}]" if k in an.error_intervals else "")
        for k in an.errors_corrected)
    words = an.verdict.words()
    rep.add_answer(f"Verdict: the network's surrogate is {words}; data-weighted error, bias-corrected [95% interval]: "
                   f"{errs}.")
    rep.add_answer(f"How linear: {lf:.4g} of the network's output power is linear in y (Σγ²S_ff/ΣS_ff); the rest is "
                   "nonlinear and invisible to any transfer function.")
    pair = te.get("paired")
    mse = te["mse"]
    if te.get("gain") is not None:  # the one rule (stats.gain_split): a nonlinear gain only against its surrogate
        rep.add_answer(answer_gain(mse, te["gain"], surrogate="surrogate (in-sample)",
                                   baseline_note="C_data's estimation error from the training pairs"))
    elif pair is not None:
        rep.add_answer(answer_network_vs_cdata(mse["model"], mse["C_data"], pair,
                                               worse="the network is worse than the best linear fit",
                                               better="the network is better than C_data, whose test error "
                                                      "includes its estimation error — not by itself a nonlinear gain",
                                               difference="paired per-image squared-error difference"))
    rep.answer_next = ("the coherence figure (where the output is not linear in y), then the filter factors "
                       "φ(k) = Ĉ(k)H(k): 1 inverts A at that frequency, 0 suppresses it.")



def run_fourier(options: AnalyzeOptions, route: Route, console: Any = None) -> dict[str, Any]:
    """The Fourier route: transfer function, coherence, Wiener filter and filter factors from cross-spectra.

    Arguments:
        options: the run's options (fields used: model, inputs, targets, operator (or ``route.operator``, loaded
            by the plan), noise_std, n_boot, out, force, batch_size, device, seed, trust_model).
        route: the plan's route (recorded in the report).
        console: a rich console for progress lines, or None.

    Returns:
        headline numbers for the summary table.

    Example:
        >>> import json
        >>> from linlens.workflows._examples import image_files
        >>> d = image_files()  # x (100, 1, 4, 4), y = x/2 + 0.1·noise, A.npy = I/2, net.pt = 2I = A⁻¹
        >>> o = AnalyzeOptions(model=str(d / "net.pt"), inputs=d / "y.npy", targets=d / "x.npy",
        ...                    operator=str(d / "A.npy"), n_boot=10, out=d / "report", trust_model=True)
        >>> r = plan_inverse(o); s = run_fourier(o, r)
        >>> a = json.loads((d / "report/metrics.json").read_text())["analysis"]
        >>> r.name, round(a["errors"]["A⁻¹"], 12), round(a["surrogate"]["linear_fraction"], 12)
        ('fourier', 0.0, 1.0)
    """
    o = options
    model, out, force, batch_size, device, seed = o.model, o.out, o.force, o.batch_size, o.device, o.seed
    n_boot, inputs, noise_std = 100 if o.n_boot is None else o.n_boot, o.inputs, o.noise_std
    load_model_kwargs = {"trust_model": o.trust_model}
    check_destination(out, force)

    def say(msg: str) -> None:
        if console is not None:
            console.print(msg)

    Y, X = _load_pair(inputs, o.targets)
    op = route.operator if route.operator is not None else load_forward_operator(
        str(o.operator), tuple(X.shape[1:]), tuple(Y.shape[1:]))
    shp = signal_shape(tuple(Y.shape[1:]))
    if shp is None or Y.shape[1:] != X.shape[1:]:
        raise ShapeError(f"the Fourier route needs single-channel signals or images of one shape for inputs and "
                         f"targets; got {tuple(Y.shape[1:])} and {tuple(X.shape[1:])}")
    n = len(Y)
    check_fourier_memory(n_boot, shp, o.max_memory)
    check_rows(Y, 8, "inputs", "the Fourier route (training pairs for σ and C_data, held-out probes)")
    check_rows(X, 8, "targets", "the Fourier route")
    train, probe = split_rows(n, seed)
    probe = np.sort(probe)  # the probes in file order (as the Dask route reads them): the same bootstrap weights
    Ytr, Xtr = Y[train].reshape(len(train), *shp), X[train].reshape(len(train), *shp)
    A_x = op.matvec(Xtr.reshape(len(train), -1))
    est = noise_std_interval(Ytr.reshape(len(train), -1) - A_x)
    noise_std, sigma_ci, sigma_note = fourier_noise_std(noise_std, est, Ytr, say)
    dev = str(resolve_device(device))
    net = load_model(model, device=dev, **(load_model_kwargs or {}))
    say(f"Fourier route: probing the model on {len(probe)} held-out images ({n_boot} Poisson-bootstrap replicates)")
    Yp = Y[probe]
    sur = SpectralSurrogate.from_model(net, Yp, batch_size=min(batch_size, 256), n_boot=n_boot, seed=seed,
                                       image_shape=shp)
    data = SpectralSurrogate(image_shape=shp, n_boot=n_boot, seed=seed + 1).fit(Ytr, Xtr)  # C_data, resampled
    an = spectral_analysis(sur, op, float(noise_std), targets=Xtr, data_surrogate=data, prior_from_data=True)
    # test errors on the probe images (targets X[probe]): model, surrogate (fitted on these images: in-sample),
    # C_data and the Wiener filter (fitted on the training pairs: held out), and the model-vs-C_data paired test
    Xp = X[probe].reshape(len(probe), -1)
    F_p = probe_all(FlatModel(net, tuple(Y.shape[1:])), Yp.reshape(len(probe), -1), batch_size=batch_size)[1]
    my, mx = float(Ytr.mean()), float(Xtr.mean())
    te = prediction_errors({"model": F_p, "surrogate (in-sample)": sur.predict(Yp), "C_data": data.predict(Yp),
                            "Wiener": apply_filter(an.wiener, Yp, shp, my, mx),
                            "zero (predict the mean)": np.full(Xp.shape, mx)}, Xp)
    return fourier_report(o, route, an, te, shp, len(train), len(probe), noise_std, sigma_ci, sigma_note)


def check_fourier_memory(n_boot: int, shp: tuple[int, ...], max_memory: int | None) -> None:
    """Refuse (one line) a Fourier-route bootstrap that would not fit ``max_memory`` (bytes; None: the machine).

    Example:
        >>> check_fourier_memory(100, (64, 64), None)  # 100 replicates of 64 · 33 coefficients: about 27 MB
        >>> check_fourier_memory(100, (64, 64), 10**6)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.MemoryLimitError: the Fourier route's 100 bootstrap replicates of 2,112 spectral values needs ...
    """
    K = int(np.prod(shp[:-1])) * (shp[-1] // 2 + 1)  # rfft coefficients per image
    # the bootstrap keeps ~16 arrays of n_boot × K float64 (4 accumulators, then spectra, ratios, temporaries)
    check_memory(16 * 8 * n_boot * K, f"the Fourier route's {n_boot} bootstrap replicates of {K:,} spectral values",
                 max_memory, alternative="lower --n-boot")


def fourier_noise_std(noise_std: float | None, estimate: tuple[float, float, float], Ytr: Any,
                      say: Any) -> tuple[float, tuple[float, float] | None, str | None]:
    """The Fourier route's σ: the given one (checked, with a warning when the residuals disagree) or the estimate
    (σ̂, low, high) from y − Ax, which must be above the rounding of the training inputs ``Ytr``.

    Returns:
        (σ, its interval or None when given, the warning or None).

    Example:
        >>> Ytr = np.random.default_rng(0).normal(size=(50, 16))
        >>> fourier_noise_std(None, (0.1, 0.09, 0.11), Ytr, print)  # σ estimated: it comes with its interval
        (0.1, (0.09, 0.11), None)
        >>> fourier_noise_std(0.1, (0.1, 0.09, 0.11), Ytr, print)  # σ given and consistent: no interval, no warning
        (0.1, None, None)
    """
    if noise_std is None:
        check_estimated_noise_std(estimate[0], Ytr)
        return estimate[0], (estimate[1], estimate[2]), None
    noise_std = check_noise_std(noise_std)
    note = noise_std_disagreement(noise_std, *estimate)
    if note:
        say(f"warning: {note}")
    return noise_std, None, note


def fourier_report(o: AnalyzeOptions, route: Route, an: Any, te: dict[str, Any], shp: tuple[int, ...],
                   n_train: int, n_probe: int, noise_std: float, sigma_ci: tuple[float, float] | None,
                   sigma_note: str | None, extra: dict[str, Any] | None = None, how: str = "") -> dict[str, Any]:
    """Write the Fourier route's report (in memory or on Dask: the same tables, answer and figures) to
    ``o.out`` and return the summary. ``an``: :class:`~linlens.spectral.SpectralAnalysis`; ``te``: the test
    errors (:func:`~linlens.spectral.errors_from_squares`); ``extra``: more metrics; ``how``: a sentence on where
    the statistics were computed.

    Example:
        >>> import tempfile
        >>> from linlens.spectral import SpectralSurrogate, errors_from_squares, spectral_analysis
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 16)); Y = X + 0.1 * rng.normal(size=(100, 16))
        >>> an = spectral_analysis(SpectralSurrogate(n_boot=10).fit(Y, Y), np.ones(9, complex), 0.1, targets=X)
        >>> te = errors_from_squares({"model": np.full(50, 0.16), "C_data": np.full(50, 0.15)}, 16, 8.0)
        >>> o = AnalyzeOptions(model="net.pt", inputs=Path("y.npy"), targets=Path("x.npy"),
        ...                    out=Path(tempfile.mkdtemp()) / "r")
        >>> s = fourier_report(o, Route("fourier", "example"), an, te, (16,), 100, 100, 0.1, None, None)
        >>> s["verdict"], (o.out / "report.html").exists()  # the network is the identity = A⁻¹ here
        ('A⁻¹', True)
    """
    name, inputs, out, force = Path(str(o.model)).name, o.inputs, o.out, o.force
    train, probe = range(n_train), range(n_probe)  # only their lengths are reported
    rep = Report(f"linlens analyze (Fourier route): {name} on {Path(inputs).name}")
    add_route(rep, route)
    if sigma_note:
        rep.add_text(f"Warning: {sigma_note}.")
    rep.add_text(
        f"The operator is a circular convolution (or was declared shift-invariant), so the surrogate, A⁻¹, the "
        f"Wiener filter and C_data are all diagonal in the Fourier basis: everything below comes from cross-spectra "
        f"of {len(probe)} held-out probe images (O(n d log d), no d × d matrix). {len(train)} training pairs give "
        f"C_data, the prior's power spectrum and the noise level"
        + (f" (σ estimated from y − Ax: {noise_std:.4g}, 95% χ² interval [{sigma_ci[0]:.4g}, {sigma_ci[1]:.4g}])"
           if sigma_ci else "") + ". Verdicts follow the dense route's rule (paired bootstrap intervals over probe "
        "images). References: " + "; ".join(f"{k}: {v}" for k, v in (an.reference_status or {}).items()) + "."
        + (f" {how}" if how else "")
    )
    rows = [[k, an.errors_corrected[k], f"[{an.error_intervals[k][0]:.3g}, {an.error_intervals[k][1]:.3g}]"
             if k in an.error_intervals else ""] for k in an.errors]
    rep.add_table(["reference", "data-weighted error (bias-corrected)", "95% basic interval"], rows,
                  caption=f"Verdict: {an.verdict.text()}")
    if an.signal_noise is not None:
        sn = an.signal_noise
        sn_rows = [[k, f"{sn[k]['plug_in']:.3g}" if k == "null_space_error" else ci_text(sn[k]),
                    *(f"{an.reference_signal_noise[r][k]:.3g}" if k in an.reference_signal_noise[r] else ""
                      for r in an.reference_signal_noise)]
                   for k in ("signal_error", "noise_amplification", "null_space_error", "total")]
        rep.add_table(["term (÷ E‖x‖²)", "surrogate (bias-corrected [95% CI])", *an.reference_signal_noise], sn_rows,
                      caption="Expected test error split per frequency and summed: signal error Σ|ĈH − 1|²P where A "
                              "sees, noise amplification σ²Σ|Ĉ|², null space ΣP where it does not (per annulus in "
                              "metrics.json: radial_signal_error, radial_noise_amplification).")
    rep.add_table(["predictor", "test MSE per pixel", "PSNR (dB)"],
                  [[k, te["mse"][k], te["psnr"][k]] for k in te["mse"]],
                  caption=f"On the {len(probe)} probe images (PSNR over the targets' range). Model − C_data per-image "
                          "squared error: "
                          + (f"{te['paired'].difference:.3g} [{te['paired'].ci_low:.3g}, {te['paired'].ci_high:.3g}],"
                             f" p = {te['paired'].p_value:.2g} (paired t; negative: the network is better — its "
                             "nonlinear gain only where it also beats its own surrogate, see the answer above)"
                             if te["paired"] is not None else "n/a") + ".")
    lf = an.surrogate.linear_fraction
    _fourier_answer(rep, an, te, lf)
    rep.add_text(f"Share of the output's power that is linear in y (Σγ²S_ff/ΣS_ff): {lf:.4g}; the rest is the "
                 "network's nonlinear part, which no transfer function can show.")
    rep.add_figure(sfigs.plot_transfer(an), "transfer", "Radial mean of |Ĉ(k)| with intervals, beside |H(k)|⁻¹ "
                   "and the Wiener filter.")
    rep.add_figure(sfigs.plot_coherence(an), "coherence", "Coherence γ²(k): per-frequency R² of the surrogate.")
    rep.add_figure(sfigs.plot_fourier_filter_factors(an), "filter_factors",
                   "Filter factors φ(k) = Ĉ(k)H(k) against |H(k)|.")
    rep.metrics.update({"image_shape": list(shp), "n_train": len(train), "n_probe": len(probe),
                        "noise_std": noise_std, "noise_std_interval": sigma_ci, "analysis": an.to_dict(),
                        "test_errors": te, **(extra or {})})
    rep.write(out, force=force)
    summary: dict[str, Any] = {"route": route.label, "verdict": an.verdict.text(),
                               "linear fraction of output power": lf}
    for k, v in an.errors_corrected.items():
        lo_hi = an.error_intervals.get(k)
        summary[f"error vs {k} [95% CI]"] = f"{v:.3g} [{lo_hi[0]:.3g}, {lo_hi[1]:.3g}]" if lo_hi else v
    if an.signal_noise is not None:
        summary["signal error"] = ci_text(an.signal_noise["signal_error"])
        summary["noise amplification"] = ci_text(an.signal_noise["noise_amplification"])
    summary["test MSE model"] = te["mse"]["model"]
    summary["test MSE C_data"] = te["mse"]["C_data"]
    if te["paired"] is not None:
        summary["model vs C_data (paired t)"] = f"p = {te['paired'].p_value:.2g}"
    if te.get("gain") is not None:
        summary["nonlinear gain (model vs its surrogate)"] = f"{te['gain'].verdict}, {te['gain'].nonlinear.p_text()}"
    return summary
