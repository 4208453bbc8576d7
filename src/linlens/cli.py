"""The ``linlens`` command line (typer + rich): demo, analyze, reproduce, fibers.

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
from rich.table import Table

from linlens.errors import LinlensError

__all__ = ["app", "main"]

app = typer.Typer(
    name="linlens",
    help="Look at trained neural networks through linear algebra.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
fibers_app = typer.Typer(help="Fibers of linear networks: strata, barcodes, bases.", no_args_is_help=True)
app.add_typer(fibers_app, name="fibers")

console = Console(stderr=False)
err_console = Console(stderr=True)

# name → "module:function"; each function takes (out, force, seed, quick, device, console) and returns a
# dict of headline numbers printed as the summary table.
REPRODUCTIONS: dict[str, tuple[str, str]] = {
    "koopman-yinyang": ("linlens.workflows.reproduce.koopman_yinyang:run_yinyang", "Koopman hybrids on Yin-Yang"),
    "koopman-mnist": ("linlens.workflows.reproduce.koopman_mnist:run_mnist", "Koopman hybrids on MNIST"),
    "flows-linear": ("linlens.workflows.flows_repro:run_linear", "linear flow = PCA, penalty = shrinkage"),
    "flows-stability": ("linlens.workflows.flows_repro:run_stability", "flows on a plane in 3-D"),
    "flows-scurve": ("linlens.workflows.flows_repro:run_scurve", "local covariance on the S-curve"),
    "flows-digits": ("linlens.workflows.flows_repro:run_digits", "un-whitened components of digits"),
}


def _load(spec: str) -> Any:
    mod, attr = spec.split(":")
    return getattr(importlib.import_module(mod), attr)


def print_summary(title: str, summary: dict[str, Any], out: Path | None = None) -> None:
    """Print a two-column table of headline numbers, and where the report went."""
    from linlens.report import format_number

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(str(k), format_number(v))
    console.print(table)
    if out is not None:
        console.print(f"report written to [bold]{out}[/bold] (report.html, metrics.json, figures)")


OutOpt = typer.Option(None, "--out", "-o", help="report folder (default: a name per command)")
ForceOpt = typer.Option(False, "--force", help="overwrite an existing report folder")
SeedOpt = typer.Option(0, "--seed", help="random seed")
QuickOpt = typer.Option(False, "--quick", help="smaller, faster run (for smoke tests)")
DeviceOpt = typer.Option("auto", "--device", help="torch device: auto, cpu, cuda, cuda:1 …")


@app.command()
def demo(
    out: Path = typer.Option(Path("linlens-report"), "--out", "-o", help="report folder"),
    force: bool = ForceOpt,
    seed: int = SeedOpt,
    quick: bool = QuickOpt,
) -> None:
    """Inverse-operator study: train MLPs that invert a Gaussian blur (n = 64) under two priors and ask
    which linear operator each network's surrogate is closest to: A⁻¹, the Wiener estimator, or the
    least-squares fit of the data."""
    from linlens.workflows.demo import run_demo

    summary = run_demo(out=out, force=force, seed=seed, quick=quick, console=console)
    print_summary("linlens demo", summary, out)


@app.command()
def analyze(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="a TorchScript file (.pt/.ts), or 'package.module:attr' naming a torch callable. "
        "WARNING: a module:attr spec imports and runs that Python code.",
    ),
    inputs: Path = typer.Option(..., "--inputs", "-i", help="probe inputs: .npy, .npz, .pt, .csv or .zarr"),
    reference: Path | None = typer.Option(None, "--reference", "-r", help="reference operator (.npy)"),
    out: Path = typer.Option(Path("linlens-analyze"), "--out", "-o", help="report folder"),
    force: bool = ForceOpt,
    batch_size: int = typer.Option(4096, "--batch-size", help="rows per model call"),
    fit_intercept: bool = typer.Option(True, "--fit-intercept/--no-intercept"),
    dask: str | None = typer.Option(
        None, "--dask", help="stream inputs on Dask: a scheduler address, or 'local' for a LocalCluster"
    ),
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Fit the global linear surrogate of your model on your inputs, and compare it with a reference."""
    from linlens.workflows.analyze import run_analyze

    summary = run_analyze(
        model=model,
        inputs=inputs,
        reference=reference,
        out=out,
        force=force,
        batch_size=batch_size,
        fit_intercept=fit_intercept,
        dask=dask,
        device=device,
        seed=seed,
        console=console,
    )
    print_summary("linlens analyze", summary, out)


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
  linlens koopman --model mlp.pt --layer 1 --train train.npz \\
    --val val.npz --test test.npz --out koop-report --quick
""")
def koopman(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="your trained nn.Sequential of Linear + activation layers: a TorchScript file (torch.jit.script(m)"
        ".save(…)) or 'package.module:attr'. WARNING: a module:attr spec imports and runs that Python code.",
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
) -> None:
    """Replace a hidden layer of your trained MLP by Koopman (DMD) hybrids, next to the affine least-squares
    layer, an untrained control, the same trained scaled layers with a least-squares readout and h = 0; paired
    tests on your test file."""
    from linlens.workflows.koopman import run_koopman

    summary = run_koopman(model=model, layer=layer, train=train, val=val, test=test, out=out, task=task,
                          device=device, seed=seed, quick=quick, force=force, console=console)
    print_summary("linlens koopman", summary, out)


@app.command()
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


@fibers_app.command("strata")
def fibers_strata(
    widths: str = typer.Option(..., "--widths", help="layer widths d_0,…,d_L, e.g. 2,3,2"),
    rank: int = typer.Option(..., "--rank", help="rank of the product matrix W"),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
) -> None:
    """List every stratum of the fiber of a rank-r matrix: barcode, rank list, dim, codim; the closure
    order goes into the report as a figure."""
    from linlens.workflows.fibers_cmd import parse_widths, run_strata

    w = parse_widths(widths)
    summary = run_strata(widths=w, rank=rank, out=out or Path("linlens-fibers-strata"), force=force,
                         console=console)
    print_summary("fiber strata", summary, out or Path("linlens-fibers-strata"))


@fibers_app.command("analyze")
def fibers_analyze(
    weights: Path = typer.Argument(..., help=".npz with W1 … WL (or arr_0 …), W_k of shape (d_k, d_{k-1})"),
    out: Path | None = OutOpt,
    force: bool = ForceOpt,
    tol: float | None = typer.Option(None, "--tol", help="relative rank tolerance (default max(shape)·eps)"),
) -> None:
    """Which stratum are these weights on: ranks with gaps, barcode, dimensions, basis flow diagram."""
    from linlens.workflows.fibers_cmd import run_analyze_weights

    summary = run_analyze_weights(weights=weights, out=out or Path("linlens-fibers"), force=force, tol=tol,
                                  console=console)
    print_summary("fiber of the trained network", summary, out or Path("linlens-fibers"))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 2."""
    debug = bool(os.environ.get("LINLENS_DEBUG"))
    try:
        app(args=argv, standalone_mode=True)
    except LinlensError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: never show a traceback to a user
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {msg} (set LINLENS_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
