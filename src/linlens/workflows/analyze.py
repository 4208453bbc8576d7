"""``linlens analyze``: one dispatch over every route.

The CLI only parses its options into an :class:`~linlens.workflows.analyze_options.AnalyzeOptions` (Python
builds the same object); :func:`plan` picks the :class:`~linlens.workflows.analyze_options.Route` from the
problem and from ``--assume``, and refuses — in one line naming the option and the route, before any work —
every option that route does not use; :func:`run` prints the route and its reason as the first line of output
and runs that route's module, which records both in metrics.json and report.html.

=========================================  ========================================================
route                                      taken when
=========================================  ========================================================
dense (in memory)                          no ``--targets``, no ``--components``, no ``--dask``
dense (Dask)                               ``--dask ADDRESS|local``
subspace (top-m principal subspace)        ``--components m``
inverse study (dense)                      ``--targets``, and an operator that is not a circular
                                           convolution (or none, or ``--assume dense``)
Fourier (shift-invariant inverse study)    ``--targets --operator`` with a circular convolution
                                           (tested in the operator's own precision), or
                                           ``--assume shift-invariant``
Fourier (Dask)                             the same with ``--dask ADDRESS|local`` (inputs and targets
                                           read block by block on the workers)
subspace (Dask)                            ``--components m --dask ADDRESS|local``
matrix-free (inverse study, operator as    ``--targets --operator`` with a non-circular operator when
a function)                                the dense study cannot fit it (d or rows), with
                                           ``--components``, or ``--assume matrix-free``
matrix-free (Dask)                         the same with ``--dask ADDRESS|local`` (inputs and targets
                                           read block by block on the workers)
=========================================  ========================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text

from linlens.errors import ConfigError
from linlens.report import check_destination
from linlens.workflows.analyze_dask import run_dask
from linlens.workflows.analyze_dense import run_dense
from linlens.workflows.analyze_fourier_dask import run_fourier_dask
from linlens.workflows.analyze_matrix_free import plan_matrix_free, run_matrix_free
from linlens.workflows.analyze_matrix_free_dask import run_matrix_free_dask
from linlens.workflows.analyze_options import ASSUME, OPTION_ROUTES, ROUTES, AnalyzeOptions, Route, refuse_unused
from linlens.workflows.analyze_subspace import run_subspace
from linlens.workflows.analyze_subspace_dask import run_subspace_dask
from linlens.workflows.inverse import plan_inverse, run_fourier, run_study

__all__ = ["AnalyzeOptions", "Route", "ROUTES", "OPTION_ROUTES", "plan", "run", "run_analyze"]

_INVERSE = frozenset({"study", "fourier", "fourier_dask", "matrix_free", "matrix_free_dask"})


def plan(options: AnalyzeOptions) -> Route:
    """Pick the route for ``options`` and refuse every given option it does not use (one line, exit 2).

    Options that no route of the problem's family uses (e.g. ``--reference`` with ``--targets``) are refused
    before anything is read; the inverse study's operator is then loaded once and tested for shift invariance
    (in its own precision) to choose between the dense study and the Fourier route.

    Arguments:
        options: the options of the run.

    Returns:
        :class:`Route` (name, reason, and the loaded operator on the inverse routes).

    Raises:
        ConfigError: an option the route does not use, or ``--assume`` naming a route these options cannot take.

    Example:
        >>> plan(AnalyzeOptions(model="m.pt", inputs="y.npy", components=4)).name
        'subspace'
        >>> plan(AnalyzeOptions(model="m.pt", inputs="y.npy", noise_std=0.1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        linlens.errors.ConfigError: --noise-std is not used by the dense (in memory) route (it is used by: ...
    """
    o = options
    inverse = o.inverse
    if (o.components is not None and not inverse) or o.assume == "subspace":
        if o.components is None:
            raise ConfigError("--assume subspace needs --components m (the dimension of the inputs' principal "
                              "subspace the surrogate lives on)")
        route = Route("subspace", f"--components {o.components}: the surrogate on the inputs' top-{o.components} "
                                  "principal subspace, C = B V_mᵀ (no d × d matrix)")
        if o.dask is not None:
            route = Route("subspace_dask", f"--dask {o.dask} --components {o.components}: the surrogate on the "
                                           f"inputs' top-{o.components} principal subspace, inputs read block by "
                                           "block on Dask workers, statistics merged in a tree")
    elif inverse:
        refuse_unused(o, _INVERSE, "inverse study")  # before the operator is loaded (module:attr imports code)
        o.check_values()
        route = plan_matrix_free(o, plan_inverse(o))
        if o.dask is not None and route.name == "fourier":
            route = Route("fourier_dask", f"--dask {o.dask}: {route.reason}; inputs and targets read block by block "
                                          "on Dask workers, partial spectra merged in a tree", route.operator)
        elif o.dask is not None and route.name == "matrix_free":
            route = Route("matrix_free_dask", f"--dask {o.dask}: {route.reason}; inputs and targets read block by "
                                              "block on Dask workers, per-block statistics merged in a tree",
                          route.operator)
    elif o.dask is not None:
        route = Route("dask", f"--dask {o.dask}: the dense surrogate, inputs streamed block by block on Dask workers")
    else:
        route = Route("dense", "no --targets: the model's global linear surrogate alone, statistics streamed in "
                               "memory ((d_in + d_out)² numbers)")
    if o.assume is not None and route.name not in ASSUME[o.assume]:
        need = {"shift-invariant": "give --targets and --operator (the Fourier route is the inverse study)",
                "dense": "drop --components", "subspace": "give --components m",
                "matrix-free": "give --targets and --operator"}[o.assume]
        raise ConfigError(f"--assume {o.assume} does not fit the {route.label} route these options take: {need}")
    refuse_unused(o, {route.name}, route.label)
    o.check_values()
    return route


_RUNNERS = {"dense": run_dense, "dask": run_dask, "subspace": run_subspace, "study": run_study,
            "fourier": run_fourier, "fourier_dask": run_fourier_dask, "subspace_dask": run_subspace_dask,
            "matrix_free": run_matrix_free, "matrix_free_dask": run_matrix_free_dask}


def run(options: AnalyzeOptions, console: Any = None) -> dict[str, Any]:
    """Plan the route, print it (the first line of output), run it and return its summary (route first).

    Arguments:
        options: the options of the run.
        console: a rich console for the route line and progress, or None (quiet).

    Returns:
        The summary dict (headline numbers), ``{"route": label, ...}``.

    Example:
        >>> import json, numpy as np
        >>> from linlens.workflows._examples import linear_files
        >>> d, W = linear_files()  # m.pt: a float64 Linear y ↦ Wy + b (TorchScript); y.npy: 300 rows of N(0, I₃)
        >>> s = run(AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", out=d / "report", trust_model=True))
        >>> s["route"], round(s["R² (pooled, held-out)"], 12), bool(np.isclose(s["σ_max(C)"], np.linalg.norm(W, 2)))
        ('dense (in memory)', 1.0, True)
    """
    check_destination(options.out, options.force)
    route = plan(options)
    if console is not None:
        console.print(Text(route.line), highlight=False, soft_wrap=True)
    return route.summary(_RUNNERS[route.name](options, route, console))


def run_analyze(
    model: str,
    inputs: Path,
    reference: Path | None = None,
    out: Path = Path("linlens-analyze"),
    force: bool = False,
    batch_size: int = 4096,
    fit_intercept: bool = True,
    dask: str | None = None,
    device: str = "auto",
    seed: int = 0,
    console: Any = None,
    *,
    trust_model: bool = False,
    output_index: int | None = None,
    output_key: str | None = None,
    max_memory: int | None = None,
    full_spectrum: bool = False,
) -> dict[str, Any]:
    """The surrogate routes (dense in memory, or on Dask) with the older signature: builds the options and
    calls :func:`run` (the same plan and refusals).

    Example:
        >>> import json, numpy as np
        >>> from linlens.workflows._examples import linear_files
        >>> d, W = linear_files()  # m.pt: a float64 Linear y ↦ Wy + b (TorchScript); y.npy: 300 rows of N(0, I₃)
        >>> s = run_analyze(str(d / "m.pt"), d / "y.npy", out=d / "report", trust_model=True)
        >>> s["route"], s["inputs"], (s["d_in"], s["d_out"]), bool(np.isclose(s["σ_min(C)"], np.linalg.svd(W)[1][-1]))
        ('dense (in memory)', 300, (3, 2), True)
    """
    return run(AnalyzeOptions(model=model, inputs=inputs, reference=reference, out=out, force=force,
                              batch_size=batch_size, fit_intercept=fit_intercept, dask=dask, device=device, seed=seed,
                              trust_model=trust_model, output_index=output_index, output_key=output_key,
                              max_memory=max_memory, full_spectrum=full_spectrum), console)
