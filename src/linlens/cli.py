"""The ``linlens`` command line (typer + rich): demo, analyze, reproduce, track, fibers.

This is the only module that wires capabilities together (through :mod:`linlens.workflows`). Every
command prints a summary table and writes a report folder (``metrics.json``, ``report.html``, PNGs).
Errors caused by the user (bad files, shapes, NaN, …) print one line and exit with code 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from linlens._version import __version__
from linlens.errors import ConfigError, LinlensError, one_line
from linlens.report import check_destination, format_number
from linlens.validation import check_device, check_seed, parse_bytes
from linlens.workflows.analyze_options import routes_text

__all__ = ["app", "main"]


def _tidy_help() -> None:
    """How every option of this CLI renders in ``--help`` (generic, for all commands).

    Flags take no value, so they show no ``<bool>`` type placeholder; a flag declared with an alias
    (``"--fit-intercept/--no-fit-intercept", "--fit-intercept/--no-intercept"``) lists each name once.
    """
    from typer.core import TyperOption

    if getattr(TyperOption, "_linlens_tidy", False):
        return
    parse, display = TyperOption._parse_decls, TyperOption.display_type_rich

    def _parse_decls(self: Any, decls: Any, expose_value: bool) -> Any:
        name, opts, secondary = parse(self, decls, expose_value)
        return name, list(dict.fromkeys(opts)), list(dict.fromkeys(secondary))

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else display(self, ctx)

    TyperOption._parse_decls = _parse_decls
    TyperOption.display_type_rich = display_type_rich
    TyperOption._linlens_tidy = True
    # typer joins a flag's negative names with "," into one unbreakable word that a narrow terminal cuts
    # ("--no-fit-intercep…"): join them with spaces so that they wrap instead
    from typer import rich_utils

    negative = getattr(rich_utils, "negative_highlighter", None)
    if callable(negative):
        rich_utils.negative_highlighter = lambda text: negative(text.replace(",", " "))
    # a help word wider than its column ('package.module:attr') is folded onto the next line, not cut with "…"
    parameter_help = getattr(rich_utils, "_get_parameter_help", None)
    if callable(parameter_help):
        from rich.text import Text as _Text

        def _folded_help(*args: Any, **kwargs: Any) -> Any:
            out = parameter_help(*args, **kwargs)
            for item in getattr(out, "renderables", [out]):
                if isinstance(item, _Text):
                    item.overflow = "fold"
            return out

        rich_utils._get_parameter_help = _folded_help


_tidy_help()

app = typer.Typer(
    name="linlens",
    help="Look at trained neural networks through linear algebra. Model files are programs: TorchScript and "
    "torch.export files are loaded only with --trust-model (and still inspected); the safe way is your own "
    "code named 'package.module:attr' with a weights-only state dict (see `linlens analyze --help`).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"linlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print linlens's version and exit"),
) -> None:
    """Look at trained neural networks through linear algebra."""


fibers_app = typer.Typer(help="Fibers of linear networks: strata, barcodes, bases.", no_args_is_help=True)
app.add_typer(fibers_app, name="fibers")

console = Console(stderr=False)
err_console = Console(stderr=True)

# name → "module:function"; each function takes (out, force, seed, quick, device, console) and returns a
# dict of headline numbers printed as the summary table.
REPRODUCTIONS: dict[str, tuple[str, str]] = {
    "koopman-yinyang": ("linlens.workflows.reproduce.koopman_yinyang:run_yinyang", "Koopman hybrids on Yin-Yang"),
    "koopman-mnist": ("linlens.workflows.reproduce.koopman_mnist:run_mnist", "Koopman hybrids on MNIST"),
    "flows-linear": ("linlens.workflows.reproduce.flows_linear:run_linear", "linear flow = PCA, penalty = shrinkage"),
    "flows-stability": ("linlens.workflows.reproduce.flows_stability:run_stability", "flows on a plane in 3-D"),
    "flows-scurve": ("linlens.workflows.reproduce.flows_scurve:run_scurve", "local covariance on the S-curve"),
    "flows-digits": ("linlens.workflows.reproduce.flows_digits:run_digits", "un-whitened components of digits"),
    "denoiser-jacobian": ("linlens.workflows.reproduce.denoiser_jacobian:run_denoiser_jacobian", "bias-free denoisers"),
    "track-blur": ("linlens.workflows.reproduce.track_blur:run_track_blur", "spectral bias of a blur inverter"),
    "track-saxe": ("linlens.workflows.reproduce.track_saxe:run_track_saxe", "deep linear modes vs Saxe et al."),
}


def _load(spec: str) -> Any:
    mod, attr = spec.split(":")
    return getattr(importlib.import_module(mod), attr)


def print_summary(title: str, summary: dict[str, Any], out: Path | None = None) -> None:
    """Print a two-column table of headline numbers, and where the report went.

    Example:
        >>> print_summary("run", {"R²": 0.98765, "rows": 300})  # doctest: +NORMALIZE_WHITESPACE
                 run
        ┏━━━━━━━━━━┳━━━━━━━━┓
        ┃ quantity ┃  value ┃
        ┡━━━━━━━━━━╇━━━━━━━━┩
        │ R²       │ 0.9877 │
        │ rows     │    300 │
        └──────────┴────────┘
    """
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(str(k), format_number(v))
    console.print(table)
    if out is not None:
        console.print(f"report written to [bold]{out}[/bold] (report.html, metrics.json, figures)")


def _check_out(ctx: typer.Context, value: Path | None) -> Path | None:
    """--out is checked before any computation, in every command: writable parent, name length, no dangling
    link, and (without --force, which is parsed first) not an existing folder. Raises LinlensError → exit 2."""
    if ctx.resilient_parsing:
        return value
    if value is None:  # the command's default name, in the current folder
        check_destination(Path.cwd() / ".linlens-out-check", force=True)
        return value
    check_destination(value, force=bool(ctx.params.get("force", False)))
    return value


def _check_seed(ctx: typer.Context, value: int) -> int:
    return value if ctx.resilient_parsing else check_seed(value)


def _check_device(ctx: typer.Context, value: str) -> str:
    return value if ctx.resilient_parsing else check_device(value)


def _check_batch_size(ctx: typer.Context, value: int) -> int:
    if not ctx.resilient_parsing and value < 1:
        raise ConfigError(f"--batch-size must be a positive integer; got {value}")
    return value


def _parse_memory(ctx: typer.Context, value: str | None) -> int | None:
    return None if value is None or ctx.resilient_parsing else parse_bytes(value)


OutOpt = typer.Option(None, "--out", "-o", help="report folder (default: a name per command)", callback=_check_out)
# eager: parsed before --out, so that --out's check knows whether an existing folder may be replaced
ForceOpt = typer.Option(False, "--force", help="replace an existing report folder that linlens wrote (any other "
                        "folder is refused, nothing deleted)", is_eager=True)
SeedOpt = typer.Option(0, "--seed", help="random seed, an integer in [0, 2^64)", callback=_check_seed)
QuickOpt = typer.Option(False, "--quick", help="smaller, faster run (for smoke tests)")
DeviceOpt = typer.Option("auto", "--device", help="torch device: auto, cpu, cuda, cuda:1 …", callback=_check_device)


def _r(option: str) -> str:
    """' (routes: …)': which routes of ``analyze`` use an option (the rest refuse it)."""
    return f" ({routes_text(option)})"


MODEL_IS_CODE = ("A model file is a program: TorchScript (.pt/.ts) and torch.export (.pt2) files can run code "
                 "while they load, so they are loaded only with --trust-model, and then still refused if their "
                 "graph touches files, processes or the network. The safe way: your architecture as "
                 "'package.module:attr' in your own code, its weights loaded there from a weights-only state dict "
                 "(linlens.loaders.load_weights: .safetensors or torch.save). WARNING: a module:attr spec imports "
                 "and runs that Python code, uninspected: use it only for code you trust.")
TrustOpt = typer.Option(False, "--trust-model", help="load a TorchScript or torch.export model file (a program that "
                        "can run code while loading); refused without it. Its graph is still inspected: operations "
                        "on files, processes or the network are refused")


@app.command(epilog="Example (about 90 s; --quick for a smoke test in ~20 s): linlens demo --out demo-report")
def demo(
    out: Path = typer.Option(Path("linlens-report"), "--out", "-o", help="report folder", callback=_check_out),
    force: bool = ForceOpt,
    seed: int = SeedOpt,
    quick: bool = QuickOpt,
    device: str = DeviceOpt,
) -> None:
    """Inverse-operator study: train MLPs that invert a Gaussian blur (n = 64) under two priors and ask
    which linear operator each network's surrogate is closest to: A⁻¹, the Wiener estimator, or the
    least-squares fit of the data."""
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.demo import run_demo

    summary = run_demo(out=out, force=force, seed=seed, quick=quick, console=console, device=device)
    print_summary("linlens demo", summary, out)


ANALYZE_EXAMPLE = """Example (runnable as is; a linear "network" that is the Wiener estimator of a blur, on images):

  python -c "if 1:
    import numpy as np, torch
    rng = np.random.default_rng(0); i = np.arange(8)
    B = np.exp(-0.5 * (i[:, None] - i[None, :]) ** 2); B /= B.sum(1, keepdims=True)
    A = np.kron(B, B); x = rng.normal(size=(8000, 64)); y = x @ A.T + 0.05 * rng.normal(size=x.shape)
    W = A.T @ np.linalg.inv(A @ A.T + 0.05**2 * np.eye(64))
    lin = torch.nn.Linear(64, 64, bias=False).double(); lin.weight.data = torch.from_numpy(W)
    net = torch.nn.Sequential(torch.nn.Flatten(), lin)
    torch.jit.script(net).save('net.pt'); np.save('A.npy', A)
    np.save('y.npy', y.reshape(-1, 1, 8, 8)); np.save('x.npy', x.reshape(-1, 8, 8))"
  linlens analyze --model net.pt --trust-model --inputs y.npy --targets x.npy --operator A.npy --out report
  linlens analyze --model net.pt --trust-model --inputs y.npy --out surrogate-only
"""


@app.command(help="Fit the global linear surrogate of your model on your inputs, and compare it with a "
             "reference; with --targets and --operator, the whole inverse-operator study (C against A⁺, the "
             "Wiener estimator and the least-squares fit of your data). Routes, chosen from the problem and printed "
             "first with the reason: dense (in memory), Dask (--dask), subspace (--components m), study (--targets: "
             "the dense inverse study), Fourier (--targets with a circular-convolution operator, or --assume "
             "shift-invariant), matrix-free (--targets with a non-circular operator beyond the dense study, or "
             "--assume matrix-free; Fourier, subspace and matrix-free also read block by block on Dask with "
             "--dask); an option the route does not use is refused (each option's help names its "
             "routes). "
             + MODEL_IS_CODE,
             epilog=ANALYZE_EXAMPLE)
def analyze(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="a TorchScript file (.pt/.ts), a torch.export archive (.pt2), or 'package.module:attr' naming a torch "
        "callable. Model files are programs: loaded only with --trust-model. "
        "WARNING: a module:attr spec imports and runs that Python code." + _r("model"),
    ),
    inputs: Path = typer.Option(..., "--inputs", "-i", help="probe inputs: .npy, .npz, .pt, .csv/.txt or .zarr "
                                "(.zarr: --dask)" + _r("inputs")),
    reference: Path | None = typer.Option(None, "--reference", "-r", help="reference operator R to compare the "
                                          "surrogate with: a matrix file (.npy, .npz, .pt, .csv) or "
                                          "'package.module:attr' (imports code)"
                                          + _r("reference")),
    out: Path = typer.Option(Path("linlens-analyze"), "--out", "-o", help="report folder" + _r("out"),
                             callback=_check_out),
    force: bool = typer.Option(False, "--force", help=ForceOpt.help + _r("force"), is_eager=True),
    batch_size: int = typer.Option(4096, "--batch-size", help="rows per model call (results do not depend on it)"
                                   + _r("batch_size"), callback=_check_batch_size),
    fit_intercept: bool = typer.Option(True, "--fit-intercept/--no-fit-intercept", "--fit-intercept/--no-intercept",
                                       help="fit the surrogate's offset c (--no-intercept is an alias)"
                                       + _r("fit_intercept")),
    dask: str | None = typer.Option(
        None, "--dask", help="stream inputs on Dask: a scheduler address, or 'local' for a LocalCluster" + _r("dask")
    ),
    device: str = typer.Option("auto", "--device", help=DeviceOpt.help + _r("device"), callback=_check_device),
    seed: int = typer.Option(0, "--seed", help=SeedOpt.help + _r("seed"), callback=_check_seed),
    trust_model: bool = typer.Option(False, "--trust-model", help=TrustOpt.help + _r("trust_model")),
    output_index: int | None = typer.Option(None, "--output-index", help="analyse this element of a model that "
                                            "returns a tuple or list (refused without it)" + _r("output_index")),
    output_key: str | None = typer.Option(None, "--output-key", help="analyse this entry of a model that returns "
                                          "a dict (refused without it)" + _r("output_key")),
    max_memory: str | None = typer.Option(None, "--max-memory", help="memory limit for loading and statistics, "
                                          "e.g. 8G (default: half the physical memory)" + _r("max_memory"),
                                          callback=_parse_memory),
    targets: Path | None = typer.Option(None, "--targets", "-t", help="the ground truth x paired with each input "
                                        "(same row count, any shape): runs the whole inverse-operator study"
                                        + _r("targets")),
    operator: str | None = typer.Option(None, "--operator", "-A", help="the forward operator A (x ↦ y): a matrix "
                                        "file (.npy, .npz, .pt, .csv), or 'package.module:attr' naming a matrix, "
                                        "a scipy LinearOperator, a pair (A, Aᵀ) of torch callables or a deepinv-style "
                                        "object (imports code)"
                                        + _r("operator")),
    noise_std: float | None = typer.Option(None, "--noise-std", help="σ of the noise on y (default: estimated "
                                           "from y − Ax, with an interval)" + _r("noise_std")),
    n_boot: int | None = typer.Option(None, "--n-boot", help="bootstrap resamples for intervals and paired tests "
                                       "(default 100)" + _r("n_boot")),
    train_inputs: Path | None = typer.Option(None, "--train-inputs", help="separate training inputs for C_data, "
                                             "Σₓ and σ (then every row of --inputs is a held-out probe)"
                                             + _r("train_inputs")),
    train_targets: Path | None = typer.Option(None, "--train-targets", help="the targets of --train-inputs"
                                              + _r("train_targets")),
    prior_covariance: Path | None = typer.Option(None, "--prior-covariance", help="Σₓ (.npy, n_x × n_x) "
                                                 "instead of the training targets' empirical covariance"
                                                 + _r("prior_covariance")),
    components: int | None = typer.Option(None, "--components", help="fit the surrogate on the top-m principal "
                                           "subspace of the inputs, C = B V_mᵀ: no d × d matrix, for sizes where "
                                           "the dense route does not fit in memory (--reference may then be a "
                                           "module:attr operator)" + _r("components")),
    assume: str | None = typer.Option(None, "--assume", help="the structure you assert, which names the route: "
                                      "'shift-invariant' (Fourier route: --targets with a convolution operator), "
                                      "'dense' (dense study even for a circular operator, or the dense surrogate) or "
                                      "'subspace' (with --components) or 'matrix-free' (--targets with an operator "
                                      "applied as a function); default: chosen from the problem" + _r("assume")),
    full_spectrum: bool = typer.Option(False, "--full-spectrum", help="every singular value of the references "
                                       "at any size; default above 1024 inputs or outputs: leading values only "
                                       "(said in the report). With --reference: R's full SVD (filter factors on "
                                       "every pair); with --targets (dense study): the Wiener estimator's and "
                                       "C_data's full spectra, numerical ranks and log-spectral distances"
                                       + _r("full_spectrum")),
) -> None:
    """Fit the global linear surrogate of your model on your inputs; with --targets (and --operator), the whole
    inverse-operator study: C against A⁺, the Wiener estimator and C_data, signal/noise split, filter factors,
    the network's nonlinear gain, verdicts from paired tests. --help shows ``ANALYZE_EXAMPLE``.

    This command only parses: the options become one :class:`AnalyzeOptions` and
    :func:`linlens.workflows.analyze.run` plans the route (printed first), refuses the options it does not use
    and runs it.
    """
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.analyze import AnalyzeOptions, run

    options = AnalyzeOptions(
        model=model, inputs=inputs, out=out, force=force, batch_size=batch_size, device=device, seed=seed,
        trust_model=trust_model, reference=reference, fit_intercept=fit_intercept, dask=dask,
        output_index=output_index, output_key=output_key, max_memory=max_memory, components=components,
        targets=targets, operator=operator, noise_std=noise_std, n_boot=n_boot, train_inputs=train_inputs,
        train_targets=train_targets, prior_covariance=prior_covariance, assume=assume, full_spectrum=full_spectrum)
    summary = run(options, console)
    print_summary(f"linlens analyze ({summary['route']})", summary, out)


@app.command(epilog="""Example (runnable as is; an untrained net labels its own data — use your trained model):

  python -c "if 1:
    import numpy as np, torch; from torch import nn
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6),
                        nn.ReLU(), nn.Linear(6, 3))
    torch.jit.script(net).save('mlp.pt'); rng = np.random.default_rng(0)
    for k, n in [('train', 2000), ('val', 500), ('test', 500)]:
        x = rng.random((n, 2), dtype=np.float32)
        y = net(torch.from_numpy(x)).argmax(1).numpy()
        np.savez(k + '.npz', inputs=x, labels=y)"
  linlens koopman --model mlp.pt --trust-model --layer 1 --train train.npz \\
    --val val.npz --test test.npz --out koop-report --quick
""")
def koopman(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="your trained nn.Sequential of Linear + activation layers: a TorchScript file (torch.jit.script(m)"
        ".save(…), needs --trust-model) or 'package.module:attr'. WARNING: a module:attr spec imports and runs "
        "that Python code.",
    ),
    layer: int = typer.Option(..., "--layer", help="index of the Linear to replace (0-based over Linear layers, ≥ 1)"),
    train: Path = typer.Option(..., "--train", help=".npz with 'inputs' and 'labels' (or 'targets'): scaling, DMD, LS"),
    val: Path = typer.Option(..., "--val", help=".npz like --train: selection of hybrids and rivals"),
    test: Path = typer.Option(..., "--test", help=".npz like --train: reported numbers and paired tests"),
    out: Path = typer.Option(Path("linlens-koopman"), "--out", "-o", help="report folder"),
    task: str | None = typer.Option(
        None, "--task", help="classification or regression (default: 'labels' in the files → classification)"
    ),
    device: str = DeviceOpt,
    seed: int = SeedOpt,
    quick: bool = QuickOpt,
    force: bool = ForceOpt,
    trust_model: bool = TrustOpt,
) -> None:
    """Replace a hidden layer of your trained MLP by Koopman (DMD) hybrids, next to the affine least-squares
    layer, an untrained control, the same trained scaled layers with a least-squares readout and h = 0; paired
    tests on your test file."""
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.koopman import run_koopman

    summary = run_koopman(model=model, layer=layer, train=train, val=val, test=test, out=out, task=task,
                          device=device, seed=seed, quick=quick, force=force, console=console,
                          trust_model=trust_model)
    print_summary("linlens koopman", summary, out)


@app.command(epilog="""Example (runnable as is; an untrained zuko flow — name your trained one the same way):

  printf 'import zuko\\nflow = zuko.flows.MAF(2, transforms=2, hidden_features=(16,))\\n' > myflows.py
  python -c "import numpy as np; np.save('data.npy', np.random.default_rng(0).normal(size=(500, 2)))"
  linlens flows --model myflows:flow --data data.npy --alpha 0.05 --out flow-report
""")
def flows(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="the flow: 'package.module:attr' naming a zuko flow (or a transform with call_and_ladj, or a "
        "callable x -> (z, log|det dz/dx|)), or a TorchScript encoder file returning (z, logabsdet) (needs "
        "--trust-model). WARNING: a model is code: module:attr imports and runs that module, TorchScript runs its "
        "graph.",
    ),
    data: Path = typer.Option(..., "--inputs", "--data", "-i", "-d", help="the data x fed to the flow "
                              "(n_samples, d): .npy, .npz, .pt or .csv (--data is an alias)"),
    out: Path = typer.Option(Path("linlens-flows"), "--out", "-o", help="report folder"),
    force: bool = ForceOpt,
    alpha: float | None = typer.Option(
        None, "--alpha", help="Jacobian penalty α the flow was trained with: compare σ_max(J) with 1/√(2α)"
    ),
    device: str = DeviceOpt,
    seed: int = SeedOpt,
    max_points: int = typer.Option(2000, "--max-points", help="analyse at most this many rows (seeded sample)"),
    tol: float | None = typer.Option(
        None, "--tol", help="J counts as singular where σ_min ≤ tol·σ_max (default d·eps of the flow's dtype)"
    ),
    trust_model: bool = TrustOpt,
) -> None:
    """Local covariance (JᵀJ)⁻¹, local standard deviations and directions, un-whitened components and
    traversals of your flow on your data, σ_max(J) over the data; PCA beside every component result.

    Example: see below (runnable as is; use your trained flow instead of the untrained one).
    """
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.flows import run_flows

    summary = run_flows(model=model, data=data, out=out, force=force, alpha=alpha, device=device, seed=seed,
                        max_points=max_points, tol=tol, console=console, trust_model=trust_model)
    print_summary("linlens flows", summary, out)


@app.command(epilog="Example (a linear flow's components against PCA, ~40 s): linlens reproduce flows-linear "
             "--quick --out flows-linear")
def reproduce(
    name: str = typer.Argument(..., help="one of: " + ", ".join(REPRODUCTIONS)),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
    seed: int = SeedOpt,
    quick: bool = QuickOpt,
    device: str = DeviceOpt,
) -> None:
    """Reproduce a paper's experiment with baselines; writes a report."""
    if name not in REPRODUCTIONS:
        raise LinlensError(f"unknown reproduction {name!r}; choose one of: {', '.join(REPRODUCTIONS)}")
    spec, title = REPRODUCTIONS[name]
    out = out or Path(f"linlens-{name}")
    summary = _load(spec)(out=out, force=force, seed=seed, quick=quick, device=device, console=console)
    print_summary(f"{name}: {title}", summary, out)


@app.command(epilog="""Example (runnable as is; three checkpoints of an untrained 2-layer linear network):

  python -c "if 1:
    import numpy as np, torch
    open('arch.py', 'w').write('import torch\\nL = torch.nn.Linear\\n'
                               'net = torch.nn.Sequential(L(4, 3, bias=False), L(3, 4, bias=False))\\n')
    from arch import net
    for k in (0, 10, 20): torch.save(net.state_dict(), f'ckpt_{k}.pt')
    np.save('y.npy', np.random.default_rng(0).normal(size=(200, 4)))"
  linlens track --model-spec arch:net --checkpoints "ckpt_*.pt" --inputs y.npy --out track-report
""")
def track(
    model_spec: str = typer.Option(..., "--model-spec", help="your architecture as 'package.module:attr': an "
                                   "nn.Module, or a class or function building one without arguments. WARNING: "
                                   "imports and runs that Python code"),
    checkpoints: str = typer.Option(..., "--checkpoints", help="glob pattern of weights-only state dicts (quote it: "
                                    "\"ckpt_*.pt\"; .pt via torch.load(weights_only=True) or .safetensors); the step "
                                    "of a file is the last integer in its name, files are tracked in step order"),
    inputs: Path = typer.Option(..., "--inputs", "-i", help="probe inputs y (n, d_in): .npy, .npz, .pt or .csv; "
                                "the first half fits the surrogate, the second half tests it"),
    targets: Path | None = typer.Option(None, "--targets", help="true outputs x (n, d_out) paired with --inputs: "
                                        "test MSE, C_data (fitted on the fit half) and, with --operator, the Wiener "
                                        "reference"),
    operator: str | None = typer.Option(None, "--operator", help="forward operator A (d_in, d_out) mapping targets to "
                                        "inputs (.npy or module:attr): A⁻¹/A⁺ and Wiener references, filter factors, "
                                        "signal error and noise amplification"),
    prior_covariance: Path | None = typer.Option(None, "--prior-covariance", help="Σₓ (d_out, d_out) for the Wiener "
                                                 "reference (with --operator; default the targets' covariance)"),
    noise_std: float | None = typer.Option(None, "--noise-std", help="σ of the noise on y (with --operator; default "
                                           "estimated from y − Ax of the probe pairs)"),
    n_boot: int = typer.Option(100, "--n-boot", help="bootstrap replicates for intervals and verdicts (the same "
                               "draws at every step)"),
    jacobian_rows: int = typer.Option(32, "--jacobian-rows", help="test probes at which the network's Jacobians "
                                      "are compared with the surrogate (0: none)"),
    n_bands: int = typer.Option(8, "--bands", help="bands of A's singular index (with --operator)"),
    show_bands: str | None = typer.Option(None, "--show-bands", help="bands drawn as curves in the per-band "
                                          "filter-factor figure, 1-based and comma-separated, e.g. 1,2,3 (with "
                                          "--operator; default all)"),
    rank_tol: float | None = typer.Option(None, "--rank-tol", help="relative rank tolerance for deep linear "
                                          "networks' rank lists (only for bias-free Linear stacks)"),
    batch_size: int = typer.Option(8192, "--batch-size", help="rows per model call", callback=_check_batch_size),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
    seed: int = SeedOpt,
) -> None:
    """The linear picture of your network across its saved checkpoints: surrogate errors against references with
    intervals, filter factors per band, R², Jacobian distance, ranks/strata of deep linear networks; the same
    numbers as linlens.tracking.Tracker.update in a training loop."""
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.track import run_track

    if operator is None and n_bands != 8:
        raise ConfigError("--bands is used only with --operator (bands of A's singular index)")
    if targets is None and operator is None and (n_boot != 100 or seed != 0):
        raise ConfigError(f"{'--n-boot' if n_boot != 100 else '--seed'} is used only with references (--targets or "
                          "--operator): without them there are no intervals to resample")
    out = out or Path("linlens-track")
    summary = run_track(model_spec=model_spec, checkpoints=checkpoints, inputs=inputs, targets=targets,
                        operator=operator, prior_covariance=prior_covariance, noise_std=noise_std, n_boot=n_boot,
                        jacobian_rows=jacobian_rows, n_bands=n_bands, rank_tol=rank_tol, batch_size=batch_size,
                        out=out, force=force, seed=seed, console=console, show_bands=show_bands)
    print_summary("linlens track", summary, out)


@fibers_app.command("strata")
def fibers_strata(
    widths: str = typer.Option(..., "--widths", help="layer widths d_0,…,d_L, e.g. 2,3,2"),
    rank: int = typer.Option(..., "--rank", help="rank of the product matrix W"),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
    max_strata: int = typer.Option(
        2000, "--max-strata", help="refuse fibers with more strata than this (counted before listing them)"
    ),
) -> None:
    """List every stratum of the fiber of a rank-r matrix: barcode, rank list, dim, codim; the closure
    order goes into the report as a figure.

    Example: linlens fibers strata --widths 2,2,2 --rank 0 --out strata-222
    """
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.fibers_cmd import parse_widths, run_strata

    w = parse_widths(widths)
    summary = run_strata(widths=w, rank=rank, out=out or Path("linlens-fibers-strata"), force=force,
                         console=console, max_strata=max_strata)
    print_summary("fiber strata", summary, out or Path("linlens-fibers-strata"))


@fibers_app.command("analyze")
def fibers_analyze(
    weights_opt: Path | None = typer.Option(
        None, "--weights", "-w",
        help="the linear network's weights: an .npz with W1 … WL (or arr_0 …), W_k of shape (d_k, d_{k-1}); or a "
        ".pt state dict of a bias-free nn.Sequential of nn.Linear layers (keys 0.weight, 1.weight, …, read with "
        "weights_only=True)",
    ),
    weights: Path | None = typer.Argument(None, help="the same file given positionally", show_default=False),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
    tol: float | None = typer.Option(None, "--tol", help="relative rank tolerance (default max(shape)·eps)"),
) -> None:
    """Which stratum are these weights on: ranks with gaps, barcode, dimensions, basis flow diagram.

    Example: python -c "import torch; torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False),
    torch.nn.Linear(2, 4, bias=False)).state_dict(), 'w.pt')" && linlens fibers analyze --weights w.pt --out fiber-w
    """
    # lazy: workflows load matplotlib; --help stays fast
    from linlens.workflows.fibers_cmd import run_analyze_weights

    if (weights_opt is None) == (weights is None):
        raise ConfigError("give the weights once: --weights FILE (or FILE as the argument)")
    summary = run_analyze_weights(weights=weights_opt or weights, out=out or Path("linlens-fibers"), force=force,
                                  tol=tol, console=console)
    print_summary("fiber of the trained network", summary, out or Path("linlens-fibers"))


def _user_exit_origin(exc: SystemExit) -> str | None:
    """Where a SystemExit was raised (``file:line``) when that is user code; None when click, typer or linlens
    raised it (help, usage errors, the end of a command, a caught SIGTERM)."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return None
    path = Path(last.tb_frame.f_code.co_filename)
    ours = ("click", "typer", "rich", "linlens")
    if any(part in ours for part in path.parts[-4:-1]) or path.name == "cli.py" and "linlens" in path.parts:
        return None
    return f"{path.name}:{last.tb_lineno}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 2.

    Example:
        >>> try:  # a user error: one line on stderr ("error: inputs: file not found: nope.npy"), exit code 2
        ...     main(["analyze", "--model", "nope.pt", "--inputs", "nope.npy"])
        ... except SystemExit as exc:
        ...     print("exit code", exc.code)  # doctest: +ELLIPSIS
        route: dense (in memory) — ...
        exit code 2
    """
    debug = bool(os.environ.get("LINLENS_DEBUG"))
    try:
        app(args=argv, prog_name="linlens", standalone_mode=True)
    except SystemExit as exc:
        where = _user_exit_origin(exc)
        if where is None or debug:
            raise  # click's own exit (help, usage errors, success) or a caught signal: as it is
        err_console.print(Text("error: ", style="red") + Text(
            f"user code called sys.exit({exc.code!r}) at {where}: a model, operator, reference or flow module must "
            "return, not end the process; nothing was written"), highlight=False, soft_wrap=True)
        sys.exit(2)
    except LinlensError as exc:
        if debug:
            raise
        # one line, whatever the message holds (newlines from user code, brackets that rich would read as markup)
        err_console.print(Text("error: ", style="red") + Text(" ".join(str(exc).split())), highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: never show a traceback to a user
        if debug:
            raise
        err_console.print(
            f"[red]internal error:[/red] {escape(one_line(exc))} (set LINLENS_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
