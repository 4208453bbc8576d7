"""The Koopman layer-linearization study, shared by ``linlens reproduce koopman-*`` and ``linlens koopman``.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ConfigError, NumericalWarning
from linlens.koopman import fit_hybrid, fit_least_squares, record_trajectories, scale_layer
from linlens.koopman.plots import plot_accuracy_grid, plot_eigenvalues, plot_right_singular_vectors
from linlens.nn import accuracy, mlp, predict, progress_bar, resolve_device, train
from linlens.report import Report, check_destination
from linlens.stats import holm, mcnemar, paired_squared_error_test

__all__ = [
    "Task",
    "FAMILIES",
    "train_ensemble",
    "train_seeds",
    "study_layer",
    "compare_layer",
    "run_study",
    "add_study_report",
    "layer_name",
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
    """``"{in}x{out}"`` of the ``layer``-th Linear of ``net``."""
    lin = [m for m in net if isinstance(m, nn.Linear)][layer]
    return f"{lin.in_features}x{lin.out_features}"


def _kaiming_init(net: nn.Module, seed: int) -> None:
    """The authors' base-MLP init (Kaiming normal, bias 0.01) — fewer dead narrow ReLU layers."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, (2.0 / m.in_features) ** 0.5, generator=g)
                m.bias.fill_(0.01)


class _StackedMLPs(nn.Module):
    """K ReLU MLPs of one architecture evaluated at once: weights stacked, batched matmuls.

    Forward maps (batch, d_in) to (K, batch, d_out). The K nets are trained independently by one optimizer
    (Adam is element-wise and a summed loss has separate gradients per net).
    """

    def __init__(self, nets: Sequence[nn.Sequential]) -> None:
        super().__init__()
        lins = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.W = nn.ParameterList([nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in lins]))
                                   for i in range(len(lins[0]))])
        self.B = nn.ParameterList([nn.Parameter(torch.stack([ls[i].bias.detach()[None] for ls in lins]))
                                   for i in range(len(lins[0]))])
        self.K = len(nets)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = X.unsqueeze(0).expand(self.K, -1, -1)
        for i, (W, B) in enumerate(zip(self.W, self.B, strict=True)):
            h = torch.baddbmm(B, h, W)
            if i < len(self.W) - 1:
                h = torch.relu(h)
        return h

    @torch.no_grad()
    def copy_to(self, nets: Sequence[nn.Sequential]) -> None:
        for k, net in enumerate(nets):
            for i, lin in enumerate(m for m in net if isinstance(m, nn.Linear)):
                lin.weight.copy_(self.W[i][k].T.cpu())
                lin.bias.copy_(self.B[i][k, 0].cpu())


def train_ensemble(data: dict, hidden: list[int], n_classes: int, seeds: list[int], cfg: dict, device: Any,
                   progress: bool) -> tuple[nn.Module, list[dict]]:
    """Train one ReLU MLP per seed *at once* with :func:`linlens.nn.train`; keep the best on validation.

    Each net gets its own Kaiming init; the stacked nets are trained by the one training loop
    (:func:`linlens.nn.train`: cross-entropy summed over the nets, Adam, cosine learning rate stepped per
    minibatch, a shared minibatch order; a non-finite loss raises :class:`linlens.errors.TrainingDiverged`).
    The FINAL weights are kept (no checkpoint picking, which over-fits the validation points) and the net with
    the highest validation accuracy, ties to the lower validation cross-entropy, is selected.

    Returns:
        (selected net in eval mode on the CPU, one dict per seed plus ``{"selected_seed": …}``).
    """
    t0 = time.perf_counter()
    nets = []
    for s in seeds:
        net = mlp(data["train"][0].shape[1], hidden, n_classes, seed=s)
        _kaiming_init(net, s)
        nets.append(net)
    stacked = _StackedMLPs(nets)
    K = len(seeds)

    def loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(pred.reshape(-1, n_classes), y.repeat(K), reduction="sum") / len(y)

    train(stacked, data["train"][0], data["train"][1], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
          lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0), loss=loss, optimizer="adam",
          lr_schedule="cosine_per_step", seed=seeds[0], device=device, progress=progress,
          description=f"original MLP, {K} seeds at once")
    stacked.copy_to(nets)
    Xv, yv = torch.as_tensor(data["val"][0]), torch.as_tensor(data["val"][1])
    secs = time.perf_counter() - t0
    runs = []
    for s, net in zip(seeds, nets, strict=True):
        net.eval()
        logits = predict(net, Xv)
        runs.append({"seed": s, "val_accuracy": accuracy(logits, yv),
                     "val_loss": float(nn.functional.cross_entropy(logits, yv)), "seconds": secs / K})
    best = max(range(K), key=lambda k: (runs[k]["val_accuracy"], -runs[k]["val_loss"]))
    runs.append({"selected_seed": seeds[best]})
    return nets[best].eval(), runs


def train_seeds(data: dict, hidden: list[int], n_classes: int, seeds: list[int], cfg: dict, device: Any,
                progress: bool) -> tuple[nn.Module, list[dict]]:
    """Train one MLP per seed, one after the other (:func:`linlens.nn.train`); keep the best on validation.

    ``cfg`` with ``"ensemble": True`` trains the seeds at once instead (:func:`train_ensemble`).
    """
    if cfg.get("ensemble"):
        return train_ensemble(data, hidden, n_classes, seeds, cfg, device, progress)
    Xtr, ytr = data["train"]
    Xv_t, yv_t = torch.as_tensor(data["val"][0]), torch.as_tensor(data["val"][1])
    runs, cands = [], []
    for s in seeds:
        net = mlp(Xtr.shape[1], hidden, n_classes, seed=s)
        _kaiming_init(net, s)
        hist = train(net, Xtr, ytr, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                     loss="cross_entropy", optimizer="adam", X_val=data["val"][0], Y_val=data["val"][1],
                     metric=accuracy, lr_schedule="cosine", seed=s, device=device, progress=progress,
                     description=f"original MLP, seed {s}")
        net = net.cpu().eval()
        logits = predict(net, Xv_t)
        acc, ce = accuracy(logits, yv_t), float(nn.functional.cross_entropy(logits, yv_t))
        runs.append({"seed": s, "val_accuracy": acc, "val_loss": ce, "seconds": hist.seconds})
        cands.append(((acc, -ce), s, net))
    cands.sort(key=lambda c: c[0], reverse=True)
    runs.append({"selected_seed": cands[0][1]})
    return cands[0][2], runs


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


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
                                             title=f"DMD eigenvalues, {name}, {what}"),
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


def reproduce(*, dataset: str, data: dict, hidden: list[int], n_classes: int, layers: list[int], seeds: list[int],
              train_cfg: dict, scale_cfg: dict, grid: dict, out: Any, force: bool, seed: int, quick: bool,
              device: str, console: Any, paper: dict[str, Any], extra_text: str = "",
              extra_figures: Callable[[Report, nn.Module, list[dict], float], None] | None = None) -> dict:
    """Train the original MLP (seeds, best by validation), run the study on ``layers``, write the report.

    ``paper``: ``original_accuracy`` and ``hybrid_accuracy`` (layer name → number) or
    ``best_hybrid_accuracy``. ``extra_figures(rep, net, results, original_accuracy)`` adds data-set figures.

    Returns:
        Headline numbers for the console summary.
    """
    check_destination(out, force)
    t_start = time.perf_counter()
    dev = resolve_device(device)
    torch.manual_seed(seed)
    progress = console is not None
    task = Task("classification")
    net, runs = train_seeds(data, hidden, n_classes, seeds, train_cfg, dev, progress)
    net = net.cpu().eval()
    t_train = time.perf_counter() - t_start
    # the study runs on the CPU: the layers are narrow, and predictions must not depend on the device
    results, orig_pts = run_study(net, data, layers, grid, scale_cfg, task=task, seed=seed, device="cpu",
                                  progress=progress)
    orig_acc = float(orig_pts.mean())
    rep = Report(f"Koopman layer linearization — {dataset}")
    rep.add_text(
        "Aswani, Jabari & Shafique (arXiv:2409.01308) replace one nonlinear layer of a trained MLP by a DMD "
        "operator on delay coordinates of 'trajectories' through N inserted square layers. For N scaled layers "
        "and h delays the hybrid still RUNS h trained nonlinear (Linear+ReLU) scaled layers at inference; only "
        "the replaced layer and the remaining N−h scaled layers become linear (N+1−h DMD steps). 'nonlinear "
        "layers at inference' counts those h layers (pre- and post-layers always run); 'params' counts the "
        "parameters standing in for the replaced layer. Hybrids and rivals are chosen on VALIDATION accuracy; "
        "every verdict is McNemar's exact test on the same test points (Dietterich 1998), Holm-adjusted over each "
        f"layer's family of comparisons (Holm 1979), 'beats' only when the adjusted p < {ALPHA}. The baseline "
        "'trained scaled layers + LS readout' runs exactly the hybrid's trained "
        f"scaled layers and replaces only its DMD step by an affine least-squares readout. {extra_text}")
    paper_layers = paper.get("hybrid_accuracy") or {r["layer"]: paper.get("best_hybrid_accuracy") for r in results}
    rep.add_heading("Original model")
    rep.add_table(["", "ours (test)", "paper"], [["original MLP accuracy", orig_acc, paper["original_accuracy"]]])
    layers_metrics, summary, headline = add_study_report(rep, results, task, orig_acc, paper_layers)
    rep.add_heading("Summary: best hybrids against every baseline")
    rep.add_table(HEADLINE_HEADER, headline, caption=f"original MLP: ours {orig_acc:.4f}, paper "
                                                      f"{paper['original_accuracy']}; p: McNemar exact, test points, "
                                                      "Holm-adjusted per layer")
    if extra_figures is not None:
        extra_figures(rep, net, results, orig_acc)
    total_s = time.perf_counter() - t_start
    rep.add_text(f"Total time {total_s:.0f} s (original training {t_train:.0f} s) on {dev}.")
    rep.metrics = {
        "dataset": dataset, "quick": quick, "seed": seed, "device": str(dev), "hidden": hidden, "task": task.kind,
        "original_accuracy": orig_acc, "original_runs": runs, "paper": paper, "alpha": ALPHA,
        "multiplicity": "Holm (1979) within each layer's family of distinct (hybrid, rival) comparisons",
        "seconds": {"original_training": t_train, "total": total_s},
        "grid": {"n_scaled": grid["n_scaled"], "noise": grid.get("noise", [0.01]),
                 "delays": {str(N): grid["delays"](N) for N in grid["n_scaled"]},
                 "ranks": [str(r) for r in grid["ranks"]], "readouts": grid["readouts"],
                 "n_trajectories": grid.get("n_trajectories")},
        "scaling": scale_cfg, "training": train_cfg, "layers": layers_metrics,
        "headline": [dict(zip(HEADLINE_HEADER, h, strict=True)) for h in headline],
    }
    rep.write(out, force=force)
    return {"original_accuracy": orig_acc, **summary, "seconds": round(total_s, 1)}
