"""``linlens koopman``: Koopman linearization of a hidden layer of the user's own trained MLP, on the user's data.

The model is an ``nn.Sequential`` of ``nn.Linear`` and activation modules (a TorchScript file or a
``package.module:attr`` spec, loaded by :func:`linlens.loaders.load_model`); the data are three ``.npz`` files
(train, validation, test), each holding ``inputs`` (n_samples, d_in) and ``labels`` (n_samples,) integer classes
or ``targets`` (n_samples, d_out). The study is the one of the reproductions
(:mod:`linlens.koopman.study`): hybrids over a grid of N, init noise, h, rank, readout and the
constant observable, chosen on the validation file; the affine least-squares layer, the untrained control, the
same trained scaled layers with a least-squares readout and the h = 0 hybrid as baselines; paired tests
(McNemar / paired t on squared errors) on the test file; parameters and nonlinear layers at inference; figures.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308 (https://arxiv.org/abs/2409.01308).

Example:
    >>> from torch import nn
    >>> net = as_sequential(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)))
    >>> [type(m).__name__ for m in net]
    ['Linear', 'ReLU', 'Linear', 'Tanh', 'Linear']
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ConfigError, InputFileError, ModelError, NonFiniteError, ShapeError
from linlens.koopman.study import Task, run_study
from linlens.loaders import load_model, load_npz_member, npz_members
from linlens.nn import resolve_device
from linlens.report import Report, check_destination
from linlens.report.figures import plot_eigenvalues
from linlens.report.koopman_figures import plot_accuracy_grid, plot_right_singular_vectors
from linlens.validation import check_finite

__all__ = ["run_koopman", "as_sequential", "load_split", "check_layer", "add_study_report", "HEADLINE_HEADER",
           "QUICK_GRID", "FULL_GRID"]

#: activations a Koopman-linearizable MLP may use, by class name → builder from the (scripted) module
_ACTIVATIONS: dict[str, Any] = {
    "ReLU": lambda m: nn.ReLU(),
    "Tanh": lambda m: nn.Tanh(),
    "Sigmoid": lambda m: nn.Sigmoid(),
    "GELU": lambda m: nn.GELU(approximate=str(getattr(m, "approximate", "none"))),
    "SiLU": lambda m: nn.SiLU(),
    "ELU": lambda m: nn.ELU(alpha=float(getattr(m, "alpha", 1.0))),
    "LeakyReLU": lambda m: nn.LeakyReLU(negative_slope=float(getattr(m, "negative_slope", 0.01))),
    "Softplus": lambda m: nn.Softplus(beta=float(getattr(m, "beta", 1.0)),
                                      threshold=float(getattr(m, "threshold", 20.0))),
    "Identity": lambda m: nn.Identity(),
}

QUICK_GRID: dict[str, Any] = {
    "grid": {"n_scaled": [3], "noise": [0.1], "delays": lambda N: [0, 1, N], "ranks": [None],
             "readouts": ["projected", "exact"], "constant": [False, True], "n_trajectories": 2000},
    "scale": {"epochs": 20, "batch_size": 500, "lr": 2e-3},
}
FULL_GRID: dict[str, Any] = {
    "grid": {"n_scaled": [4, 10], "noise": [0.1, 0.3], "delays": lambda N: [0, 1, N // 2, N - 1, N],
             "ranks": [None, "optimal"], "readouts": ["projected", "exact"], "constant": [False, True],
             "n_trajectories": 5000},
    "scale": {"epochs": 200, "batch_size": 500, "lr": 2e-3},
}


def _kind(m: Any) -> str:
    """Class name of a module, also for TorchScript modules (their ``original_name``)."""
    return str(getattr(m, "original_name", type(m).__name__))


def as_sequential(model: Any) -> nn.Sequential:
    """A plain ``nn.Sequential`` of ``nn.Linear`` and activations equal to ``model`` (a Sequential or its
    TorchScript), or :class:`linlens.errors.ModelError` naming what is not allowed.

    Arguments:
        model: ``nn.Sequential`` or a ``torch.jit.script``-ed ``nn.Sequential`` (``torch.jit.load``).

    Returns:
        The model itself when it is already a plain Sequential of allowed modules, else a rebuilt copy.

    Example:
        >>> net = as_sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
        >>> [m.__class__.__name__ for m in net]
        ['Linear', 'ReLU', 'Linear']
    """
    if _kind(model) != "Sequential" or not isinstance(model, nn.Module):
        raise ModelError(f"model must be an nn.Sequential of Linear and activation layers; got {_kind(model)}")
    children = list(model.children())
    if not children or _kind(children[0]) != "Linear":
        raise ModelError("model must be an nn.Sequential that starts with an nn.Linear"
                         + (f"; its first module is {_kind(children[0])}" if children else "; it is empty"))
    layers: list[nn.Module] = []
    for i, child in enumerate(children):
        kind = _kind(child)
        if kind == "Linear":
            w = child.weight.detach()
            b = child.bias.detach() if getattr(child, "bias", None) is not None else None
            lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b)
            layers.append(lin)
        elif kind in _ACTIVATIONS:
            layers.append(_ACTIVATIONS[kind](child))
        else:
            raise ModelError(f"model must be an nn.Sequential of Linear and activation layers "
                             f"({', '.join(_ACTIVATIONS)}); module {i} is {kind}")
    lins = [m for m in layers if isinstance(m, nn.Linear)]
    for a, b in zip(lins, lins[1:], strict=False):
        if b.in_features != a.out_features:
            raise ShapeError(f"model: the Linear layers do not chain: a layer with {a.out_features} outputs is "
                             f"followed by one with {b.in_features} inputs")
    return nn.Sequential(*layers).eval()


def load_split(path: Path, name: str, task: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Load ``inputs`` and ``labels`` (classification) or ``targets`` (regression) from an ``.npz``.

    Arguments:
        path: the ``.npz`` file.
        name: what it is called in messages (``"--train"``, …).
        task: ``"classification"``, ``"regression"`` or None (labels present → classification, targets →
            regression).

    Returns:
        (inputs (n, d_in) float64, labels (n,) int64 or targets (n, d_out) float64, task).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "train.npz"
        >>> np.savez(path, inputs=np.zeros((4, 2)), labels=np.array([0, 1, 1, 0]))
        >>> X, y, task = load_split(path, "--train", None)
        >>> X.shape, y.tolist(), task
        ((4, 2), [0, 1, 1, 0], 'classification')
    """
    p = Path(path)
    if not p.exists() or p.is_dir():
        raise InputFileError(f"{name}: file not found: {p}")
    names = npz_members(p, name)  # the directory only: unused members are never decompressed
    if task is None:
        task = "classification" if "labels" in names else "regression" if "targets" in names else None
    want = "labels" if task == "classification" else "targets"
    missing = [k for k in ("inputs", want) if k not in names]
    if task is None or missing:
        need = "'inputs' and 'labels' (classification) or 'targets' (regression)" if task is None else \
            f"'inputs' and '{want}' for --task {task}"
        raise InputFileError(f"{name}: {p} must hold arrays {need}; found {sorted(names) or 'none'}")
    X, y = load_npz_member(p, "inputs", name), load_npz_member(p, want, name)
    for key, a in (("inputs", X), (want, y)):
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise InputFileError(f"{name}: '{key}' in {p} holds {a.dtype} values; expected real numbers")
    if X.ndim != 2:
        raise ShapeError(f"{name}: 'inputs' must be 2-D (n_samples, d_in); {p} holds shape {X.shape}")
    if len(y) != len(X):
        raise ShapeError(f"{name}: '{want}' has {len(y)} rows but 'inputs' has {len(X)}")
    if len(X) < 2:
        raise ShapeError(f"{name}: needs at least 2 rows; {p} has {len(X)}")
    X = np.asarray(X, dtype=np.float64)
    check_finite(X, f"{name} inputs")
    if task == "classification":
        if y.ndim != 1:
            raise ShapeError(f"{name}: 'labels' must be 1-D (n_samples,) class indices; got shape {y.shape}")
        yf = np.asarray(y, dtype=np.float64)
        bad = ~np.isfinite(yf) | (yf != np.round(yf)) | (yf < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ConfigError(f"{name}: labels must be non-negative integers for --task classification; "
                              f"row {i} holds {y[i]!r} (use --task regression for real-valued targets)")
        return X, yf.astype(np.int64), task
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2:
        raise ShapeError(f"{name}: 'targets' must be (n_samples, d_out); got shape {y.shape}")
    check_finite(y, f"{name} targets")
    return X, y, task


def check_layer(net: nn.Sequential, layer: int) -> None:
    """Raise :class:`ConfigError` unless ``layer`` indexes a Linear that can be replaced (not the first).

    Example:
        >>> check_layer(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --layer must be in [1, 1] (index of a Linear layer, counting from 0; ...); got 2
    """
    n = sum(isinstance(m, nn.Linear) for m in net)
    if n < 2:
        raise ConfigError(f"--layer: the model has {n} Linear layer; a hidden layer needs at least 2")
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not 1 <= layer <= n - 1:
        raise ConfigError(f"--layer must be in [1, {n - 1}] (index of a Linear layer, counting from 0; the first "
                          f"cannot be replaced because the scaled layers need its output); got {layer!r}")


def _check_shapes(net: nn.Sequential, data: dict, task: str) -> None:
    lins = [m for m in net if isinstance(m, nn.Linear)]
    d_in, d_out = lins[0].in_features, lins[-1].out_features
    for split, (X, y) in data.items():
        if X.shape[1] != d_in:
            raise ShapeError(f"--{split}: inputs have {X.shape[1]} columns but the model's first Linear takes {d_in}")
        if task == "classification" and int(y.max()) >= d_out:
            raise ShapeError(f"--{split}: label {int(y.max())} but the model has {d_out} outputs "
                             f"(classes 0..{d_out - 1})")
        if task == "regression" and y.shape[1] != d_out:
            raise ShapeError(f"--{split}: targets have {y.shape[1]} columns but the model has {d_out} outputs")


def run_koopman(model: str, layer: int, train: Path, val: Path, test: Path, out: Path, *, task: str | None = None,
                device: str = "auto", seed: int = 0, quick: bool = False, force: bool = False,
                console: Any = None, trust_model: bool = False) -> dict[str, Any]:
    """Replace hidden layer ``layer`` of the user's MLP by Koopman hybrids and baselines; write a report.

    Arguments:
        model: TorchScript file of an ``nn.Sequential`` of Linear + activation layers, or ``package.module:attr``.
        layer: index of the Linear to replace (0-based over Linear layers, ≥ 1).
        train, val, test: ``.npz`` files with ``inputs`` and ``labels`` or ``targets``.
        out: report folder (written atomically; an existing one only with ``force``).
        task: ``"classification"``, ``"regression"`` or None (from the arrays present).
        device: torch device (``"auto"``: CUDA when available).
        seed: seeds scaling, controls and selection ties.
        quick: a small grid (N = 3, one noise, 20 scaling epochs).
        console: a rich console for progress (None: no progress).
        trust_model: load a TorchScript file (a program: refused without it).

    Returns:
        Headline numbers for the console summary.

    Example:
        >>> import tempfile
        >>> run_koopman("net.pt", 1, Path("a.npz"), Path("b.npz"), Path("c.npz"), Path(tempfile.mkdtemp()) / "r",
        ...             task="ranking")
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --task must be 'classification' or 'regression'; got 'ranking'
    """
    if task is not None and task not in ("classification", "regression"):
        raise ConfigError(f"--task must be 'classification' or 'regression'; got {task!r}")
    check_destination(out, force)
    t0 = time.perf_counter()
    dev = resolve_device(device)
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, path in (("train", train), ("val", val), ("test", test)):
        X, y, task = load_split(path, f"--{split}", task)
        data[split] = (X, y)
    loaded = load_model(model, device="cpu", trust_model=trust_model)
    net = as_sequential(loaded)
    check_layer(net, layer)
    _check_shapes(net, data, task)
    dtype = next(net.parameters()).dtype
    limit = torch.finfo(dtype).max
    for split, (X, _) in data.items():  # the cast to the model's dtype must not overflow (accuracy 1.0 on inf)
        big = np.abs(X) > limit
        if dtype != torch.float64 and big.any():
            kind = str(dtype).removeprefix("torch.")
            raise NonFiniteError(f"--{split}: inputs reach |x| = {float(np.abs(X).max()):.3g} (first at row "
                                 f"{int(np.argwhere(big)[0][0])}), beyond the model's {kind} range (max "
                                 f"{limit:.3g}); the cast would give Inf: rescale the inputs")
    with torch.no_grad():  # the rebuilt Sequential must compute what the user's model computes
        x = torch.as_tensor(data["train"][0][:64], dtype=dtype)
        try:
            ref = loaded(x)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            raise ModelError(f"model raised on the training inputs: {type(exc).__name__}: {exc}") from None
        if isinstance(ref, torch.Tensor) and not bool(torch.isfinite(ref).all()):
            raise NonFiniteError("model: its outputs on the first --train rows hold NaN/Inf (inputs too large for "
                                 "its arithmetic?); rescale the inputs")
        if not isinstance(ref, torch.Tensor) or ref.shape != net(x).shape or not torch.allclose(
                ref, net(x), rtol=1e-4, atol=1e-5):
            raise ModelError("model: its forward is not the composition of its Linear and activation modules "
                             "(a Sequential is required)")
    t = Task(task)
    cfg = QUICK_GRID if quick else FULL_GRID
    data_t = {k: (v[0].astype(np.float32) if dtype == torch.float32 else v[0], v[1]) for k, v in data.items()}
    if console is not None:
        console.print(f"linlens koopman: layer {layer} of {model} ({task}); "
                      f"{len(data['train'][0])}/{len(data['val'][0])}/{len(data['test'][0])} train/val/test rows")
    results, orig_pts = run_study(net, data_t, [layer], cfg["grid"], cfg["scale"], task=t, seed=seed, device=dev,
                                  progress=console is not None)
    orig = float(orig_pts.mean())
    rep = Report(f"Koopman linearization of layer {layer} — {model}")
    rep.add_text(
        "Koopman layer linearization (Aswani, Jabari & Shafique, arXiv:2409.01308): N square Linear+ReLU layers "
        "are trained to reproduce the replaced layer, their states form trajectories, and a DMD operator on delay "
        "coordinates (h delays) replaces the replaced layer and the last N−h scaled layers (N+1−h DMD steps). "
        "The h first scaled layers still RUN at inference ('nonlinear layers at inference'). Hybrids and rivals "
        f"are chosen on the validation file; verdicts are paired tests ({t.test_name}) on the test file, "
        "Holm-adjusted over the layer's family of comparisons, and a hybrid 'beats' a baseline only when the "
        "adjusted p < 0.05. 'trained scaled layers + LS readout' isolates the DMD step: "
        "same nonlinear layers, affine least-squares readout instead of DMD.")
    rep.add_heading("Original model")
    rep.add_table(["", f"test {t.metric}"], [["original model", orig]])
    layers_metrics, summary, headline = add_study_report(rep, results, t, orig)
    rep.add_heading("Summary")
    rep.add_table(HEADLINE_HEADER[:-1], [h[:-1] for h in headline],
                  caption=f"p: {t.test_name}, test file, Holm-adjusted")
    total = time.perf_counter() - t0
    rep.metrics = {
        "model": model, "layer": layer, "task": task, "device": str(dev), "seed": seed, "quick": quick,
        "files": {"train": str(train), "val": str(val), "test": str(test)},
        "n_rows": {k: len(v[0]) for k, v in data.items()}, f"original_{t.metric}": orig,
        "grid": {**{k: v for k, v in cfg["grid"].items() if k != "delays"},
                 "delays": {str(N): cfg["grid"]["delays"](N) for N in cfg["grid"]["n_scaled"]},
                 "ranks": [str(r) for r in cfg["grid"]["ranks"]]},
        "scaling": cfg["scale"], "layers": layers_metrics,
        "headline": [dict(zip(HEADLINE_HEADER[:-1], h[:-1], strict=True)) for h in headline],
        "seconds": total,
    }
    rep.write(out, force=force)
    return {f"original {t.metric}": orig, **summary, "seconds": round(total, 1)}


_COLS = ["model", "N", "init noise", "h", "rank", "readout", "DMD steps", "nonlinear layers at inference",
         "params", "params / replaced layer"]


def _row_cells(r: dict, m: str) -> list[Any]:
    return [r["kind"], r.get("n_scaled"), r.get("init_noise"), r.get("delays"), r.get("rank"), r.get("readout"),
            r.get("dmd_steps"), r.get("nonlinear_layers_at_inference"), r.get("params"), r.get("params_ratio"),
            r.get(f"val_{m}"), r.get(m)]


def add_study_report(rep: Report, results: list[dict], task: Task, original_metric: float,
                     paper: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any], list[list[Any]]]:
    """Tables, verdicts and figures of every layer into ``rep``.

    Arguments:
        paper: optional layer name → the paper's hybrid number (shown beside ours).

    Returns:
        (metrics per layer, summary numbers for the console, one headline row per layer).

    Example:
        >>> from linlens.koopman.study import Task
        >>> rep = Report("Koopman")
        >>> add_study_report(rep, [], Task("classification"), 0.9)  # no layer studied: nothing to add
        ({}, {}, [])
    """
    m = task.metric
    layers_metrics: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    headline: list[list[Any]] = []
    for res in results:
        name, sel = res["layer"], res["selected"]
        cmp = res["comparisons"]
        best = sel["best"]
        paper_h = (paper or {}).get(name)
        layers_metrics[name] = {
            "original_layer_shape": res["original_layer_shape"], "original_layer_params": res["original_layer_params"],
            "original_" + m: original_metric, "paper_hybrid_" + m: paper_h,
            "selected": sel, "comparisons": cmp, "rows": res["rows"], "baseline_rows": res["baseline_rows"],
            "baselines": {c["baseline"]: {k: v for k, v in c.items() if k != "verdict"}
                          for c in cmp if c["hybrid"] == "best"},
        }
        rep.add_heading(f"Layer {name} replaced (original layer: {res['original_layer_params']} parameters)")
        # the verdict table: selected hybrids and the validation-chosen rival of each family, with p-values
        ids_seen: set[str] = set()
        vrows = []
        for cat, label in (("best", "best hybrid"), ("best_one_step", "best one-step hybrid"),
                           ("best_multi_step", "best multi-step hybrid (≥ 3 DMD steps)")):
            if cat in sel and sel[cat]["id"] not in ids_seen:
                ids_seen.add(sel[cat]["id"])
                vrows.append([label, *_row_cells(sel[cat], m)[1:], "", ""])
        by_rival: dict[str, dict[str, dict]] = {}
        for c in cmp:
            by_rival.setdefault(c["rival_id"], {})[c["hybrid"]] = c
        rows_by_id = {r["id"]: r for r in [*res["rows"], *res["baseline_rows"]]}
        for rid, cs in by_rival.items():
            r = rows_by_id.get(rid)
            if r is None:  # the original model
                any_c = next(iter(cs.values()))
                cells = ["original model", None, None, None, None, None, None, None, res["original_layer_params"],
                         1.0, None, any_c[f"rival_{m}"]]
            else:
                cells = _row_cells(r, m)
                cells[0] = f"[{next(iter(cs.values()))['baseline']}] {r['kind']}"
            p_one = cs.get("best_one_step", {}).get("test", {}).get("p_adjusted")
            p_multi = cs.get("best_multi_step", {}).get("test", {}).get("p_adjusted")
            vrows.append([*cells, p_one, p_multi])
        rep.add_table([*_COLS, f"val {m}", f"test {m}", f"{task.test_name} p (Holm) vs best one-step",
                       f"{task.test_name} p (Holm) vs best multi-step"], vrows,
                      caption=f"{name}: selection and rivals by validation {m}; p-values are paired tests on the "
                              f"test points, Holm-adjusted over the layer's "
                              f"{cmp[0]['test']['family_size'] if cmp else 0} comparisons (raw p in metrics.json). "
                              f"Paper's hybrid: {paper_h}; original: "
                              f"{original_metric:.4f}")
        # words
        lines = []
        for cat, label in (("best", "Best hybrid"), ("best_multi_step", "Best multi-step hybrid")):
            h = sel.get(cat)
            if h is None or (cat != "best" and h["id"] == best["id"]):
                continue
            vs = [c for c in cmp if c["hybrid"] == cat]
            lines.append(
                f"{label} for {name} by validation: {m} {h[m]:.4f} on the test points (N={h['n_scaled']}, "
                f"h={h['delays']}: {h['nonlinear_layers_at_inference']} trained nonlinear layers still run, "
                f"{h['dmd_steps']} DMD step(s), {h['params']} parameters = {h['params_ratio']:.1f}× the replaced "
                f"layer's {res['original_layer_params']}). Against each rival: "
                + "; ".join(f"{c['verdict']} [{c[f'rival_{m}']:.4f}]" for c in vs) + "."
            )
        if "best_multi_step" not in sel:
            lines.append(f"No hybrid with ≥ 3 DMD steps in the grid for {name}.")
        rep.add_text("\n\n".join(lines))
        ctrl = next((c for c in cmp if c["hybrid"] == "best" and c["baseline"] == "control"), None)
        tsl = next((c for c in cmp if c["hybrid"] == "best" and c["baseline"] == "trained_scaled_ls"), None)
        multi = sel.get("best_multi_step")
        summary[f"{name} best hybrid {m}"] = best[m]
        summary[f"{name} best hybrid nonlinear layers / DMD steps"] = \
            f"{best['nonlinear_layers_at_inference']} / {best['dmd_steps']}"
        if multi is not None:
            summary[f"{name} best multi-step hybrid {m}"] = multi[m]
        if ctrl is not None:
            summary[f"{name} control {m}"] = ctrl[f"rival_{m}"]
            summary[f"{name} {task.test_name} p (Holm) vs control"] = ctrl["test"]["p_adjusted"]
        if tsl is not None:
            summary[f"{name} trained scaled + LS {m}"] = tsl[f"rival_{m}"]
            summary[f"{name} {task.test_name} p (Holm) vs trained scaled + LS"] = tsl["test"]["p_adjusted"]
        h0 = next((c for c in cmp if c["hybrid"] == "best" and c["baseline"] == "hybrid_h0"), None)
        aff = next((c for c in cmp if c["hybrid"] == "best" and c["baseline"] == "affine_least_squares"), None)
        headline.append([name, res["original_layer_params"], best[m], best["nonlinear_layers_at_inference"],
                         best["dmd_steps"], best["params"], None if multi is None else multi[m],
                         None if multi is None else multi["dmd_steps"],
                         None if aff is None else aff[f"rival_{m}"], None if ctrl is None else ctrl[f"rival_{m}"],
                         None if ctrl is None else ctrl["test"]["p_adjusted"],
                         None if tsl is None else tsl[f"rival_{m}"], None if tsl is None else tsl["test"]["p_adjusted"],
                         None if h0 is None else h0[f"rival_{m}"], paper_h])
        # figures: eigenvalues and right singular vectors, labelled for what they show
        for cat in ("best_multi_step", "best_one_step"):
            hyb = res["hybrids"].get(cat)
            if hyb is None or hyb.dmd_ is None:
                continue
            r = sel[cat]
            what = (f"multi-step hybrid ({hyb.steps} DMD steps, N={r['n_scaled']}, h={r['delays']})"
                    if hyb.steps > 1 else
                    f"one-step regression (h = N = {r['n_scaled']}: one DMD step per trajectory)")
            tag = "multi_step" if hyb.steps > 1 else "one_step"
            rep.add_figure(plot_eigenvalues({f"{r['readout']} h={r['delays']}": hyb.dmd_.eigs},
                                             title=f"DMD eigenvalues, {name}, {what}", unit_circle=True, lim=2.0),
                           f"eigenvalues_{name}_{tag}",
                           f"Eigenvalues of Ã with the unit circle: {what}."
                           + (" With one snapshot pair per trajectory Ã is a one-step regression from the window "
                              "to the layer's output, not a dynamical system." if hyb.steps == 1 else ""))
            rep.add_figure(plot_right_singular_vectors(hyb.dmd_.right_singular_vectors_, hyb.steps,
                                                         title=f"Right singular vectors, {name}, {what}"),
                           f"right_singular_vectors_{name}_{tag}",
                           f"Leading right singular vectors of the Hankel matrix along the first trajectories: {what}.")
        rep.add_figure(plot_accuracy_grid([r for r in res["rows"] if r["readout"] == "projected"] or res["rows"],
                                            x="delays", y="n_scaled", value=m,
                                            title=f"{name}: test {m} (projected readout)",
                                            higher_is_better=task.higher_is_better,
                                            vmin=0.0 if task.higher_is_better else None,
                                            vmax=1.0 if task.higher_is_better else None),
                       f"accuracy_grid_{name}", f"Best test {m} over ranks and noises for each (N, h).")
        # all rows
        allrows = [_row_cells(r, m) for r in res["baseline_rows"]]
        allrows += [_row_cells(r, m) for r in sorted(res["rows"], key=task.val_key, reverse=True)]
        rep.add_table([*_COLS, f"val {m}", f"test {m}"], allrows, caption=f"{name}: every hybrid and baseline")
    return layers_metrics, summary, headline


HEADLINE_HEADER = ["layer", "replaced params", "best hybrid", "its nonlinear layers", "its DMD steps", "its params",
                   "best multi-step", "multi-step DMD steps", "affine LS", "untrained control", "p (Holm) vs control",
                   "trained scaled + LS", "p (Holm) vs trained scaled + LS", "hybrid h=0", "paper"]
