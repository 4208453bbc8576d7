"""The Koopman layer-linearization study: hybrids and baselines for one replaced layer, compared by paired tests.

Used by ``linlens koopman`` (:mod:`linlens.workflows.koopman`) and ``linlens reproduce koopman-*``
(:mod:`linlens.workflows.reproduce.koopman`, which adds the paper's training of the original MLP).

For one trained MLP and each replaced hidden layer ℓ: scale the layer (N near-identity Linear+ReLU layers
trained to reproduce it, per init noise), record trajectories on the training inputs, fit Hankel DMD over a
grid of (h, rank, readout), and score every hybrid on the validation and the test points next to four
baseline families:

- ``affine_least_squares``: the affine least-squares replacement x₀ ↦ L_ℓ(x₀) (no nonlinear layer);
- ``control``: k UNTRAINED near-identity ReLU layers + least-squares readout of the window [x_k; …; x₀];
- ``trained_scaled_ls``: the SAME TRAINED scaled layers g_1 … g_k + an affine least-squares readout of
  [x_k; …; x₀] — it differs from the hybrid with h = k only in the DMD step, which it isolates;
- ``hybrid_h0``: the hybrid with h = 0 (no scaled layer runs at inference).

Selection uses the VALIDATION points only: the best hybrid (overall, one-step and multi-step with ≥ 3 DMD
steps) and, for each of them and each family, the rival — the family member with the same number of
nonlinear layers at inference where one exists (for ``trained_scaled_ls`` the readout of exactly the
hybrid's scaled layers), best by validation. Every verdict is a paired test on the test points (McNemar's
exact test for classification, a paired t-test on per-point squared errors for regression); its p-value
and interval are in metrics.json. The comparisons of one layer (up to 3 selected hybrids × 5 rivals, each
distinct pair counted once) form one family: their p-values are Holm-adjusted (:func:`linlens.stats.holm`,
family-wise error ≤ 0.05), and a hybrid "beats" a baseline only when the ADJUSTED p < 0.05.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308 (https://arxiv.org/abs/2409.01308).
    T. G. Dietterich, "Approximate statistical tests for comparing supervised classification learning
    algorithms", Neural Computation 10 (1998) 1895–1923.

Example:
    >>> t = Task("classification")
    >>> t.metric, t.per_point(torch.tensor([[2.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0])).tolist()
    ('accuracy', [True, False])
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ConfigError, NumericalWarning
from linlens.koopman.hybrid import fit_hybrid, fit_least_squares
from linlens.koopman.scaling import scale_layer
from linlens.koopman.trajectories import record_trajectories
from linlens.nn import predict, progress_bar, resolve_device
from linlens.stats import holm, mcnemar, paired_squared_error_test

__all__ = [
    "Task",
    "FAMILIES",
    "ALPHA",
    "layer_name",
    "study_layer",
    "verdict",
    "compare_layer",
    "run_study",
]

#: baseline families, in table order, with the words used in tables and verdicts
FAMILIES: dict[str, str] = {
    "affine_least_squares": "the affine least-squares layer",
    "control": "the untrained control (as many untrained layers + LS readout)",
    "trained_scaled_ls": "the same trained scaled layers + affine LS readout",
    "hybrid_h0": "the hybrid with h = 0",
}
ALPHA = 0.05


@dataclass(frozen=True)
class Task:
    """Classification (accuracy, McNemar's exact test) or regression (MSE, paired t-test on squared errors).

    Arguments:
        kind: ``"classification"`` (targets are integer labels, outputs are logits) or ``"regression"``
            (targets are (n_samples, d_out) real arrays).

    Example:
        >>> reg = Task("regression")
        >>> reg.metric, reg.higher_is_better, reg.per_point(torch.tensor([[1.0, 2.0]]), np.array([[0.0, 0.0]])).tolist()
        ('mse', False, [5.0])
    """

    kind: str = "classification"

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ConfigError(f"task must be 'classification' or 'regression'; got {self.kind!r}")

    @property
    def metric(self) -> str:
        """Name of the test metric: ``"accuracy"`` or ``"mse"``."""
        return "accuracy" if self.kind == "classification" else "mse"

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "classification"

    @property
    def test_name(self) -> str:
        return "McNemar" if self.kind == "classification" else "paired t"

    def per_point(self, outputs: torch.Tensor, targets: Any) -> np.ndarray:
        """(n_points,) booleans (classified right) or floats (squared error summed over outputs)."""
        t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
        if self.kind == "classification":
            return (outputs.argmax(1) == t.to(outputs.device)).cpu().numpy()
        d = outputs.double() - t.to(device=outputs.device, dtype=torch.float64).reshape(outputs.shape)
        return (d**2).sum(1).cpu().numpy()

    def paired(self, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
        """Paired test of model A against model B on the same points (dict of the result)."""
        res = mcnemar(a, b) if self.kind == "classification" else paired_squared_error_test(a, b)
        return res.to_dict()

    def a_better(self, test: dict[str, Any]) -> bool:
        """Model A is ahead in the paired comparison ``test``."""
        return test["difference"] > 0 if self.higher_is_better else test["difference"] < 0

    def val_key(self, row: dict[str, Any]) -> float:
        """Selection key from the VALIDATION metric (larger is better)."""
        v = row[f"val_{self.metric}"]
        return v if self.higher_is_better else -v


def layer_name(net: nn.Module, layer: int) -> str:
    """``"{in}x{out}"`` of the ``layer``-th Linear of ``net``.

    Example:
        >>> layer_name(nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4)), 1)
        '6x4'
    """
    lin = [m for m in net if isinstance(m, nn.Linear)][layer]
    return f"{lin.in_features}x{lin.out_features}"


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _example_study() -> tuple[nn.Module, dict, dict]:
    """The ``Example:`` doctests' problem: a float64 MLP 2 → 6 → ReLU → 4 → 3 (torch seed 0), data whose targets
    are the network's own outputs (300 / 100 / 100 uniform rows, numpy seeds 0, 1, 2), and the smallest grid
    (N = 2 scaled layers, h = N delays, full rank, exact readout)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4), nn.Linear(4, 3)).double().eval()

    def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.random.default_rng(seed).random((n, 2))
        return X, net(torch.as_tensor(X)).detach().numpy()

    data = {"train": split(300, 0), "val": split(100, 1), "test": split(100, 2)}
    grid = {"n_scaled": [2], "noise": [0.0], "delays": lambda N: [N], "ranks": [None], "readouts": ["exact"]}
    return net, data, grid


def study_layer(net: nn.Module, layer: int, data: dict, grid: dict, scale_cfg: dict, *, task: Task, seed: int = 0,
                device: Any = "cpu", advance: Callable[[], None] | None = None) -> dict[str, Any]:
    """All hybrids and baselines for one replaced layer, scored on validation and test points.

    Arguments:
        net: trained ``nn.Sequential`` MLP (frozen; not modified).
        layer: index ℓ ≥ 1 of the replaced Linear.
        data: ``{"train": (X, y), "val": (X, y), "test": (X, y)}``; X (n_samples, d_in).
        grid: ``n_scaled`` (list of N), ``noise`` (init noises), ``delays`` (N ↦ list of h), ``ranks``,
            ``readouts``, optional ``n_trajectories`` (first rows of the training inputs used as trajectories)
            and ``constant`` (list of booleans: states with an EDMD constant observable 1, default [False]).
        scale_cfg: ``epochs``, ``batch_size``, ``lr`` of :func:`linlens.koopman.scale_layer`.
        task: :class:`Task`.
        advance: called once per (N, noise) (progress).

    Returns:
        dict with ``rows`` (hybrids), ``baseline_rows``, ``points`` (row id → per-point test scores),
        ``hybrids`` (row id → the fitted hybrid, for the rows kept for figures) and the layer's sizes.

    Example:
        >>> net, data, grid = _example_study()  # a float64 MLP 2→6→4→3; targets are its own outputs
        >>> grid = {**grid, "constant": [True]}
        >>> res = study_layer(net, 1, data, grid, {"epochs": 0, "batch_size": 100, "lr": 1e-3}, task=Task("regression"))
        >>> best = res["selected"]["best"]  # the replaced layer is affine: the hybrid reproduces the network
        >>> res["layer"], bool(res["points"][best["id"]].max() < 1e-16)
        ('6x4', True)
    """
    m = task.metric
    Xtr = data["train"][0]
    Xtraj = Xtr[: grid.get("n_trajectories") or len(Xtr)]
    name = layer_name(net, layer)
    lin = [mod for mod in net if isinstance(mod, nn.Linear)][layer]
    orig_params = _n_params(lin)
    rows: list[dict] = []
    base_rows: list[dict] = []
    points: dict[str, np.ndarray] = {}
    keep: dict[str, Any] = {}

    def score(model: nn.Module, row: dict) -> dict:
        row["id"] = f"{name}#{len(rows) + len(base_rows)}"
        out = predict(model, data["test"][0])
        pts = task.per_point(out, data["test"][1])
        points[row["id"]] = pts
        row[m] = float(pts.mean())
        row[f"val_{m}"] = float(task.per_point(predict(model, data["val"][0]), data["val"][1]).mean())
        row["params"] = model.replacement_params()
        row["params_ratio"] = row["params"] / orig_params
        return row

    def base(family: str, kind: str, model: nn.Module, k: int, **extra: Any) -> None:
        row = {"layer": name, "family": family, "kind": kind, "n_scaled": extra.pop("n_scaled", None),
               "init_noise": extra.pop("init_noise", None), "delays": None, "rank": None,
               "readout": "least-squares", "dmd_steps": None, "nonlinear_layers_at_inference": k, **extra}
        base_rows.append(score(model, row))

    base("affine_least_squares", "affine least-squares", fit_least_squares(net, layer, Xtr), 0)
    noises = grid.get("noise", [0.01])
    ks_control = sorted({h for N in grid["n_scaled"] for h in grid["delays"](N) if 1 <= h <= N})
    for noise in noises:
        for k in ks_control:
            ctrl = fit_least_squares(net, layer, Xtr, k, noise=noise, seed=seed)
            base("control", f"control: {k} untrained layers (noise {noise}) + LS readout", ctrl, k,
                 init_noise=noise)
    for N in grid["n_scaled"]:
        for noise in noises:
            t0 = time.perf_counter()
            sm = scale_layer(net, layer, N, Xtr, epochs=scale_cfg["epochs"], batch_size=scale_cfg["batch_size"],
                             lr=scale_cfg["lr"], noise=noise, seed=seed, device=device, progress=False)
            scale_s = time.perf_counter() - t0
            scaled_metric = float(task.per_point(predict(sm, data["test"][0]), data["test"][1]).mean())
            delays = sorted({d for d in grid["delays"](N) if 0 <= d <= N})
            for k in (d for d in delays if d >= 1):
                tls = fit_least_squares(net, layer, Xtr, layers=list(sm.scaled)[:k])
                base("trained_scaled_ls", f"trained scaled layers g1..g{k} (N={N}, noise {noise}) + LS readout",
                     tls, k, n_scaled=N, init_noise=noise)
            trajs = {c: record_trajectories(sm, Xtraj, constant=c) for c in grid.get("constant", [False])}
            for const, h, rank, readout in product(trajs, delays, grid["ranks"], grid["readouts"]):
                traj = trajs[const]
                if isinstance(rank, int) and rank >= min(traj.shape[2] * (h + 1), len(traj) * (N + 1 - h)):
                    continue  # no truncation possible: same as the numerical-rank row
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NumericalWarning)
                    hyb = fit_hybrid(sm, traj, h, rank, readout, constant=const)
                row = {"layer": name, "family": "hybrid",
                       "kind": "koopman hybrid" + (" (constant observable)" if const else ""),
                       "n_scaled": N, "init_noise": noise, "delays": h, "rank": hyb.rank,
                       "rank_rule": "numerical" if rank is None else rank, "readout": readout,
                       "constant_observable": const, "dmd_steps": hyb.steps, "nonlinear_layers_at_inference": h,
                       f"scaled_model_{m}": scaled_metric, "scaling_seconds": scale_s}
                rows.append(score(hyb, row))
                for cat, ok in (("best", True), ("best_one_step", hyb.steps == 1), ("best_multi_step", hyb.steps >= 3)):
                    if ok and (cat not in keep or task.val_key(row) > task.val_key(keep[cat][0])):
                        keep[cat] = (row, hyb)
            if advance is not None:
                advance()
    return {"layer": name, "layer_index": layer, "original_layer_params": orig_params,
            "original_layer_shape": [lin.in_features, lin.out_features], "rows": rows, "baseline_rows": base_rows,
            "points": points, "selected": {c: r for c, (r, _) in keep.items()},
            "hybrids": {c: h for c, (_, h) in keep.items()}}


def _rival(res: dict, family: str, hyb_row: dict, task: Task) -> dict | None:
    """The family member a hybrid is compared with, chosen on VALIDATION (never test)."""
    k = hyb_row["nonlinear_layers_at_inference"]
    if family == "hybrid_h0":
        pool = [r for r in res["rows"] if r["delays"] == 0]
    elif family == "trained_scaled_ls" and k == 0:  # no scaled layer runs: the affine least-squares layer
        pool = [r for r in res["baseline_rows"] if r["family"] == "affine_least_squares"]
    elif family == "trained_scaled_ls":  # exactly the hybrid's trained scaled layers (isolates the DMD step)
        pool = [r for r in res["baseline_rows"] if r["family"] == family and r["n_scaled"] == hyb_row["n_scaled"]
                and r["init_noise"] == hyb_row["init_noise"] and r["nonlinear_layers_at_inference"] == k]
    else:
        members = [r for r in res["baseline_rows"] if r["family"] == family]
        pool = [r for r in members if r["nonlinear_layers_at_inference"] == k] or members
    return max(pool, key=task.val_key) if pool else None


def _p_words(task: Task, test: dict[str, Any]) -> str:
    if "p_adjusted" in test:
        return (f"{task.test_name} p = {float(test['p_value']):.3g}, Holm-adjusted over "
                f"{test['family_size']} comparisons p = {float(test['p_adjusted']):.3g}")
    return f"{task.test_name} p = {float(test['p_value']):.3g}"


def verdict(task: Task, test: dict[str, Any], rival: str) -> str:
    """Words for a paired comparison of a hybrid (A) with ``rival`` (B): 'beats' only when p < 0.05, the
    Holm-adjusted p (``test["p_adjusted"]``, set by :func:`compare_layer`) when there is one.

    Example:
        >>> verdict(Task(), {"p_value": 0.2, "difference": 0.01}, "the control")
        'no significant difference from the control (McNemar p = 0.2)'
        >>> verdict(Task(), {"p_value": 0.039, "p_adjusted": 0.39, "family_size": 10, "difference": 0.01}, "it")
        'no significant difference from it (McNemar p = 0.039, Holm-adjusted over 10 comparisons p = 0.39)'
    """
    p = float(test.get("p_adjusted", test["p_value"]))
    if p < ALPHA and task.a_better(test):
        return f"beats {rival} ({_p_words(task, test)})"
    if p < ALPHA:
        return f"is significantly worse than {rival} ({_p_words(task, test)})"
    return f"no significant difference from {rival} ({_p_words(task, test)})"


def compare_layer(res: dict, task: Task, original_points: np.ndarray) -> list[dict[str, Any]]:
    """Paired tests of each selected hybrid (best, best one-step, best multi-step) against the original
    model and the validation-chosen rival of every baseline family.

    The layer's comparisons are one family: each distinct (hybrid, rival) pair counts once, and its p-value
    is Holm-adjusted over the family (``test["p_adjusted"]``, ``test["family_size"]``); the verdict words
    follow the adjusted p.

    Returns:
        One dict per (hybrid, baseline): ids and metrics of both, the test result and the verdict words.

    Example:
        >>> net, data, grid = _example_study()  # a float64 MLP 2→6→4→3; targets are its own outputs
        >>> res = study_layer(net, 1, data, grid, {"epochs": 0, "batch_size": 100, "lr": 1e-3}, task=Task("regression"))
        >>> cmp = compare_layer(res, Task("regression"), np.zeros(100))
        >>> sorted({c["baseline"] for c in cmp})
        ['affine_least_squares', 'control', 'original', 'trained_scaled_ls']
    """
    out = []
    m = task.metric
    seen: set[str] = set()
    for cat in ("best", "best_one_step", "best_multi_step"):
        hyb = res["selected"].get(cat)
        if hyb is None:
            continue
        a = res["points"][hyb["id"]]
        rivals = [("original", {"id": "original", "kind": "original model", m: float(original_points.mean()),
                                "nonlinear_layers_at_inference": None, "params": res["original_layer_params"]},
                   original_points)]
        for fam in FAMILIES:
            r = _rival(res, fam, hyb, task)
            if r is not None:
                rivals.append((fam, r, res["points"][r["id"]]))
        for fam, r, b in rivals:
            test = task.paired(a, b)
            words = FAMILIES.get(fam, "the original model")
            out.append({"hybrid": cat, "hybrid_id": hyb["id"], "duplicate_of_best": cat != "best" and hyb["id"] in seen,
                        "baseline": fam, "rival_id": r["id"], "rival_kind": r["kind"], f"hybrid_{m}": hyb[m],
                        f"rival_{m}": r[m], f"rival_val_{m}": r.get(f"val_{m}"),
                        "rival_nonlinear_layers_at_inference": r["nonlinear_layers_at_inference"],
                        "rival_params": r["params"], "test": test, "verdict": words})
        seen.add(hyb["id"])
    # Holm over the layer's family of distinct (hybrid, rival) comparisons
    pairs = list(dict.fromkeys((c["hybrid_id"], c["rival_id"]) for c in out))
    first = {pair: next(c for c in out if (c["hybrid_id"], c["rival_id"]) == pair)["test"]["p_value"] for pair in pairs}
    adjusted = dict(zip(pairs, holm([first[pair] for pair in pairs]), strict=True))
    for c in out:
        c["test"] = {**c["test"], "p_adjusted": float(adjusted[(c["hybrid_id"], c["rival_id"])]),
                     "family_size": len(pairs), "adjustment": "Holm (1979) over the layer's distinct comparisons"}
        c["verdict"] = verdict(task, c["test"], c["verdict"])
    return out


def run_study(net: nn.Module, data: dict, layers: list[int], grid: dict, scale_cfg: dict, *, task: Task,
              seed: int = 0, device: Any = "cpu", progress: bool = True) -> tuple[list[dict], np.ndarray]:
    """:func:`study_layer` and :func:`compare_layer` for every layer in ``layers`` (with a progress bar).

    Returns:
        (one result dict per layer, with ``comparisons``; per-point test scores of the original model).

    Example:
        >>> net, data, grid = _example_study()  # a float64 MLP 2→6→4→3; targets are its own outputs
        >>> results, original = run_study(net, data, [1], grid, {"epochs": 0, "batch_size": 100, "lr": 1e-3},
        ...                               task=Task("regression"), progress=False)
        >>> len(results), float(original.max())  # the original model's squared error on its own outputs
        (1, 0.0)
    """
    dev = resolve_device(device)
    net = net.to(dev).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    orig_pts = task.per_point(predict(net, data["test"][0]), data["test"][1])
    results = []
    with progress_bar(progress) as bar:
        tid = bar.add_task("Koopman hybrids (layer × N × noise)",
                           total=len(layers) * len(grid["n_scaled"]) * len(grid.get("noise", [0.01])))
        for layer in layers:
            res = study_layer(net, layer, data, grid, scale_cfg, task=task, seed=seed, device=dev,
                              advance=lambda: bar.advance(tid))
            res["comparisons"] = compare_layer(res, task, orig_pts)
            results.append(res)
    return results, orig_pts
