"""The options of ``linlens analyze`` as one frozen object, the routes, and which route uses which option.

:class:`AnalyzeOptions` is built the same way by the CLI (which only parses) and from Python; the dispatch
(:func:`linlens.workflows.analyze.plan`) picks a :class:`Route`, and :func:`refuse_unused` refuses, in one line
naming the option and the route, every option the route does not use — before any work. :data:`OPTION_ROUTES`
is that table (the CLI's help and docs/guide/cli.md say the same). This module is import-light: every route
module imports it; it imports no route.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError
from linlens.validation import check_device, check_noise_std, check_seed

__all__ = ["AnalyzeOptions", "Route", "ROUTES", "OPTION_ROUTES", "ASSUME", "FLAGS", "refuse_unused", "uses",
           "routes_text", "SHORT"]

#: route name → how reports and the first line of output call it
ROUTES: dict[str, str] = {
    "dense": "dense (in memory)",
    "dask": "dense (Dask)",
    "subspace": "subspace (top-m principal subspace)",
    "study": "inverse study (dense)",
    "fourier": "Fourier (shift-invariant inverse study)",
    "fourier_dask": "Fourier (Dask)",
    "subspace_dask": "subspace (Dask)",
    "matrix_free": "matrix-free (inverse study, operator as a function)",
    "matrix_free_dask": "matrix-free (Dask)",
}
_ALL = frozenset(ROUTES)
_SURROGATE = frozenset({"dense", "dask", "subspace", "subspace_dask"})
_INVERSE = frozenset({"study", "fourier", "fourier_dask", "matrix_free", "matrix_free_dask"})

#: the most bootstrap resamples --n-boot may ask for
MAX_N_BOOT = 100_000

#: option (field of :class:`AnalyzeOptions`) → the routes that use it; any other route refuses it when given
OPTION_ROUTES: dict[str, frozenset[str]] = {
    "model": _ALL, "inputs": _ALL, "out": _ALL, "force": _ALL, "batch_size": _ALL, "device": _ALL,
    "seed": _ALL, "trust_model": _ALL, "assume": _ALL,  # whether the route matches --assume is checked by plan
    "reference": _SURROGATE,
    "fit_intercept": frozenset({"dense", "dask"}),
    "dask": frozenset({"dask", "fourier_dask", "subspace_dask", "matrix_free_dask"}),
    "output_index": _SURROGATE, "output_key": _SURROGATE,
    "max_memory": _SURROGATE | {"study", "fourier", "fourier_dask"},
    "components": frozenset({"subspace", "subspace_dask", "matrix_free", "matrix_free_dask"}),
    "targets": _INVERSE, "operator": _INVERSE, "noise_std": _INVERSE, "n_boot": _INVERSE | _SURROGATE,
    "train_inputs": frozenset({"study"}), "train_targets": frozenset({"study"}),
    "prior_covariance": frozenset({"study"}), "local_samples": frozenset({"study"}),
    "full_spectrum": frozenset({"dense", "dask", "study"}),
}

#: option → its command-line spelling (as refusals name it)
FLAGS: dict[str, str] = {
    "fit_intercept": "--no-intercept", "local_samples": "local_samples (Python only)",
    **{k: "--" + k.replace("_", "-") for k in OPTION_ROUTES if k not in ("fit_intercept", "local_samples")},
}

#: --assume value → the routes it names
ASSUME: dict[str, frozenset[str]] = {
    "dense": frozenset({"dense", "dask", "study"}),
    "shift-invariant": frozenset({"fourier", "fourier_dask"}),
    "subspace": frozenset({"subspace", "subspace_dask"}),
    "matrix-free": frozenset({"matrix_free", "matrix_free_dask"}),
}


#: short route names, as the CLI's help says which routes use an option
SHORT: dict[str, str] = {"dense": "dense", "dask": "Dask", "subspace": "subspace", "study": "study",
                         "fourier": "Fourier", "fourier_dask": "Fourier on Dask",
                         "subspace_dask": "subspace on Dask", "matrix_free": "matrix-free",
                         "matrix_free_dask": "matrix-free on Dask"}


def routes_text(option: str) -> str:
    """The routes that use ``option``, in short words, for the CLI's help.

    Example:
        >>> routes_text("noise_std"), routes_text("seed")
        ('routes: study, Fourier, Fourier on Dask, matrix-free, matrix-free on Dask', 'all routes')
    """
    used = OPTION_ROUTES[option]
    return "all routes" if used == _ALL else "routes: " + ", ".join(SHORT[r] for r in ROUTES if r in used)


@dataclass(frozen=True)
class Route:
    """The route ``analyze`` takes and why (the first line of output; in metrics.json and report.html).

    Arguments:
        name: a key of :data:`ROUTES`.
        reason: one sentence: what in the problem or the options chose it.
        operator: the forward operator, loaded once by the plan (inverse routes with ``--operator``), or None.

    Example:
        >>> r = Route("dense", "no --targets: the model's global linear surrogate alone")
        >>> r.label, r.to_dict()["name"], r.line.startswith("route: dense (in memory) — no --targets")
        ('dense (in memory)', 'dense', True)
    """

    name: str
    reason: str
    operator: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return ROUTES[self.name]

    @property
    def line(self) -> str:
        """The first line of output: ``route: <label> — <reason>``."""
        return f"route: {self.label} — {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "label": self.label, "reason": self.reason}

    def summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        """A route's summary table with the route first."""
        return {"route": self.label, **{k: v for k, v in summary.items() if k != "route"}}


def _path(v: Any) -> Path | None:
    return None if v is None else Path(v)


@dataclass(frozen=True)
class AnalyzeOptions:
    """Everything ``linlens analyze`` is asked to do; built by the CLI or from Python, validated on creation.

    A field left at its default is "not given"; a given field that the chosen route does not use is refused
    (:func:`refuse_unused`). :data:`OPTION_ROUTES` says which routes use each field.

    Arguments:
        model: a TorchScript file, a ``torch.export`` archive, or ``package.module:attr`` (imports that code).
        inputs: the probe inputs y (n_samples, *shape).
        out, force: the report folder, and whether an existing linlens report there may be replaced.
        batch_size, device, seed, trust_model: as the CLI's options of the same names.
        reference: an operator R (d_out, d_in) to compare the surrogate with (``.npy``; ``module:attr`` on the
            subspace route).
        fit_intercept: fit the surrogate's offset (False: ``--no-intercept``).
        dask: a Dask scheduler address or "local" (the Dask route).
        output_index, output_key: the element of a tuple/dict output to analyse.
        max_memory: bytes; memory limit for loading and statistics.
        components: m, the subspace route's dimension.
        targets: the ground truth x (the inverse study).
        operator: the forward operator A (``.npy`` or ``module:attr``).
        noise_std: σ of the noise on y (default: estimated from y − Ax).
        n_boot: bootstrap resamples (None: 100).
        train_inputs, train_targets, prior_covariance: separate training pairs and Σₓ (dense study).
        assume: "dense", "shift-invariant", "subspace" or "matrix-free": the route family the user asserts.
        local_samples: test rows at which Jacobians are compared with the surrogate (dense study; None: 200 up to
            d = 1024 inputs, none above: workflows.inverse.LOCAL_ROWS, LOCAL_MAX_D).
        full_spectrum: every singular value of the references at any size; default: the study's size rule
            (workflows.study.REFERENCE_SPECTRUM_MAX_D): above 1024 inputs or outputs, leading values only, labelled
            in the report. Without ``targets``: R's full SVD (filter factors on every pair; needs ``reference``);
            with them (dense study): the Wiener estimator's and C_data's full spectra, ranks and log-spectral
            distances.

    Example:
        >>> o = AnalyzeOptions(model="m.pt", inputs="y.npy", targets="x.npy", n_boot=50)
        >>> o.given()
        ['model', 'inputs', 'targets', 'n_boot']
    """

    model: str
    inputs: Path
    out: Path = Path("linlens-analyze")
    force: bool = False
    batch_size: int = 4096
    device: str = "auto"
    seed: int = 0
    trust_model: bool = False
    reference: str | None = None
    fit_intercept: bool = True
    dask: str | None = None
    output_index: int | None = None
    output_key: str | None = None
    max_memory: int | None = None
    components: int | None = None
    targets: Path | None = None
    operator: str | None = None
    noise_std: float | None = None
    n_boot: int | None = None
    train_inputs: Path | None = None
    train_targets: Path | None = None
    prior_covariance: Path | None = None
    assume: str | None = None
    local_samples: int | None = None
    full_spectrum: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the types once, here
        set_(self, "model", str(self.model))
        for k in ("inputs", "out", "targets", "train_inputs", "train_targets", "prior_covariance"):
            set_(self, k, _path(getattr(self, k)))
        for k in ("reference", "operator"):
            v = getattr(self, k)
            set_(self, k, None if v is None else str(v))
        b = self.batch_size
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ConfigError(f"--batch-size must be a positive integer; got {b!r}")
        check_device(self.device)
        check_seed(self.seed)
        if self.output_index is not None and self.output_key is not None:
            raise ConfigError("give --output-index or --output-key, not both")
        if self.assume is not None and self.assume not in ASSUME:
            raise ConfigError(f"--assume must be one of {', '.join(ASSUME)}; got {self.assume!r}")

    def check_values(self) -> None:
        """Range checks of the route-specific options (one-line :class:`ConfigError`). :func:`plan
        <linlens.workflows.analyze.plan>` calls it after refusing the options the route does not use, so that an
        unused option is refused as unused whatever its value."""
        for k, low in (("components", 1), ("n_boot", 1), ("local_samples", 0)):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low):
                raise ConfigError(f"{FLAGS[k]} must be a {'positive' if low else 'non-negative'} integer; got {v!r}")
        if self.n_boot is not None and self.n_boot > MAX_N_BOOT:
            raise ConfigError(f"--n-boot must be at most {MAX_N_BOOT:,} (intervals and paired tests settle long "
                              f"before; each resample costs time and memory); got {self.n_boot:,}")
        if self.noise_std is not None:
            check_noise_std(self.noise_std)  # finite and > 0 (linlens.validation: the one σ check)
        if self.full_spectrum and self.reference is None and not self.inverse:
            raise ConfigError("--full-spectrum asks for every singular pair of the reference R: give --reference (the "
                              "surrogate's own spectrum is whole without it; with --targets it is the study's "
                              "references')")
        if self.max_memory is not None and (isinstance(self.max_memory, bool) or self.max_memory <= 0):
            raise ConfigError(f"--max-memory must be a positive number of bytes; got {self.max_memory!r}")

    @property
    def inverse(self) -> bool:
        """Whether these options ask for an inverse study (a route of the ``--targets`` family): targets given, or
        an ``inputs`` .npz (holding 'inputs' and 'targets') with an operator."""
        return self.targets is not None or (self.operator is not None and self.inputs.suffix.lower() == ".npz")

    def given(self) -> list[str]:
        """The fields set to something other than their default, in declaration order."""
        return [f.name for f in fields(self) if f.name in ("model", "inputs") or getattr(self, f.name) != f.default]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: paths as strings (metrics.json records the options of the run)."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def uses(route: str, option: str) -> bool:
    """Whether ``route`` uses ``option`` (a field of :class:`AnalyzeOptions`).

    Example:
        >>> uses("study", "reference"), uses("dense", "reference")
        (False, True)
    """
    return route in OPTION_ROUTES[option]


def refuse_unused(options: AnalyzeOptions, routes: frozenset[str] | set[str], what: str) -> None:
    """Refuse (one-line :class:`ConfigError` naming the option and the route) the first given option that no
    route in ``routes`` uses. ``what`` names the route (or family) in the message.

    Example:
        >>> o = AnalyzeOptions("m.pt", "y.npy", noise_std=0.1)
        >>> refuse_unused(o, {"dense"}, ROUTES["dense"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        linlens.errors.ConfigError: --noise-std is not used by the dense (in memory) route (it is used by: ...
    """
    for k in options.given():
        if not OPTION_ROUTES[k] & set(routes):
            users = ", ".join(ROUTES[r] for r in ROUTES if r in OPTION_ROUTES[k])
            raise ConfigError(f"{FLAGS[k]} is not used by the {what} route (it is used by: {users}); drop it")
