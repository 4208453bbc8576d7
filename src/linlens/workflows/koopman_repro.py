"""Reproductions of Aswani, Jabari & Shafique (arXiv:2409.01308): Koopman hybrids on Yin-Yang and MNIST.

For each hidden layer: train the original MLP (several seeds, best by validation accuracy), scale the layer
(N identity+noise layers, Huber loss), record trajectories on the training set, fit Hankel DMD for a grid of
(h, rank, readout), and evaluate every hybrid on the test set next to three honest baselines — the affine
least-squares replacement, the control "N untrained near-identity layers + least-squares readout", and the
hybrid at h = 0. The best hybrid per layer is chosen by VALIDATION accuracy; its test accuracy is reported.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308.
    L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", arXiv:2102.08211.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import NumericalWarning
from linlens.koopman import fit_hybrid, fit_least_squares, record_trajectories, scale_layer
from linlens.koopman.plots import (
    accuracy_grid_figure,
    decision_boundaries_figure,
    eigenvalue_figure,
    right_singular_vectors_figure,
)
from linlens.nn import accuracy, mlp, predict, progress_bar, resolve_device, train
from linlens.report import Report

__all__ = ["run_yinyang", "run_mnist"]

PAPER = {
    "yinyang": {"original_accuracy": 0.984, "hybrid_accuracy": {"8x6": 0.913, "6x4": 0.758, "4x3": 0.973}},
    "mnist": {"original_accuracy": 0.972, "best_hybrid_accuracy": 0.958},
}


def _acc(model: nn.Module, X: Any, y: Any) -> float:
    return accuracy(predict(model, X), torch.as_tensor(y))


def _kaiming_init(net: nn.Module, seed: int) -> None:
    """The authors' base-MLP init (Kaiming normal, bias 0.01) — fewer dead narrow ReLU layers."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, (2.0 / m.in_features) ** 0.5, generator=g)
                m.bias.fill_(0.01)


def _train_ensemble(data: dict, hidden: list[int], n_classes: int, seeds: list[int], cfg: dict, device: Any,
                    progress: bool) -> tuple[nn.Module, list[dict]]:
    """Train one small MLP per seed *at once* (weights stacked, batched matmuls) and keep the best on validation.

    Each net gets its own Kaiming init (:func:`_kaiming_init`) and is trained independently — Adam is
    element-wise and the summed loss has separate gradients per net — with a shared minibatch order,
    cross-entropy, Adam and a per-step cosine learning rate. The FINAL weights are kept (no checkpoint
    picking, which over-fits the 1000 validation points) and the net with the highest validation accuracy,
    ties to the lower validation cross-entropy, is selected. Many seeds are cheap this way: narrow ReLU
    nets often stall (median validation accuracy ~92 %), the good ones reach ~98–99 %.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    nets = []
    for s in seeds:
        net = mlp(data["train"][0].shape[1], hidden, n_classes, seed=s)
        _kaiming_init(net, s)
        nets.append(net)
    lins = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
    n_lin = len(lins[0])
    W = [torch.stack([ls[i].weight.detach().T for ls in lins]).to(dev).requires_grad_() for i in range(n_lin)]
    B = [torch.stack([ls[i].bias.detach()[None] for ls in lins]).to(dev).requires_grad_() for i in range(n_lin)]
    K = len(seeds)

    def forward(X: torch.Tensor) -> torch.Tensor:
        h = X.unsqueeze(0).expand(K, -1, -1)
        for i in range(n_lin):
            h = torch.baddbmm(B[i], h, W[i])
            if i < n_lin - 1:
                h = torch.relu(h)
        return h

    Xtr, ytr = (torch.as_tensor(a).to(dev) for a in data["train"])
    Xv, yv = (torch.as_tensor(a).to(dev) for a in data["val"])
    n, bs, epochs = len(Xtr), cfg["batch_size"], cfg["epochs"]
    opt = torch.optim.Adam(W + B, lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * -(-n // bs))
    gen = torch.Generator().manual_seed(seeds[0])
    with progress_bar(progress) as bar:
        task = bar.add_task(f"original MLP, {K} seeds at once", total=epochs)
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)
            for i in range(0, n, bs):
                idx = perm[i: i + bs]
                loss = nn.functional.cross_entropy(forward(Xtr[idx]).reshape(-1, n_classes), ytr[idx].repeat(K),
                                                   reduction="sum") / len(idx)
                if not torch.isfinite(loss):
                    raise RuntimeError("original-MLP ensemble training diverged (non-finite loss)")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            bar.advance(task)
    with torch.no_grad():
        logits = forward(Xv)
        val_acc = (logits.argmax(-1) == yv).float().mean(1).cpu()
        val_ce = torch.stack([nn.functional.cross_entropy(logits[k], yv) for k in range(K)]).cpu()
        for k, ls in enumerate(lins):
            for i, lin in enumerate(ls):
                lin.weight.copy_(W[i][k].T.cpu())
                lin.bias.copy_(B[i][k, 0].cpu())
    secs = time.perf_counter() - t0
    runs = [{"seed": s, "val_accuracy": float(val_acc[k]), "val_loss": float(val_ce[k]), "seconds": secs / K}
            for k, s in enumerate(seeds)]
    best = max(range(K), key=lambda k: (float(val_acc[k]), -float(val_ce[k])))
    runs.append({"selected_seed": seeds[best]})
    net = nets[best]
    net.eval()
    return net, runs


def _train_original(data: dict, hidden: list[int], n_classes: int, seeds: list[int], cfg: dict, device: Any,
                    progress: bool) -> tuple[nn.Module, list[dict]]:
    if cfg.get("ensemble"):
        return _train_ensemble(data, hidden, n_classes, seeds, cfg, device, progress)
    Xtr, ytr = data["train"]
    Xv, yv = data["val"]
    Xv_t, yv_t = torch.as_tensor(Xv), torch.as_tensor(yv)

    def score(net: nn.Module) -> tuple[float, float]:
        """(validation accuracy, −validation cross-entropy): ties in accuracy go to the lower loss."""
        logits = predict(net, Xv_t)
        return accuracy(logits, yv_t), -float(nn.functional.cross_entropy(logits, yv_t))

    runs, cands = [], []
    for s in seeds:
        net = mlp(Xtr.shape[1], hidden, n_classes, seed=s)
        _kaiming_init(net, s)
        hist = train(net, Xtr, ytr, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                     loss="cross_entropy", optimizer="adam", X_val=Xv, Y_val=yv, metric=accuracy,
                     lr_schedule="cosine", seed=s, device=device, progress=progress,
                     description=f"original MLP, seed {s}")
        net = net.cpu()
        sc = score(net)
        runs.append({"seed": s, "val_accuracy": sc[0], "val_loss": -sc[1], "seconds": hist.seconds})
        cands.append((sc, s, net))
    cands.sort(key=lambda c: c[0], reverse=True)
    if cfg.get("refine_epochs"):  # refine the best few, then pick again on validation
        refined = []
        for _, s, net in cands[: cfg.get("refine_top", 1)]:
            hist = train(net, Xtr, ytr, epochs=cfg["refine_epochs"], batch_size=cfg["refine_batch_size"],
                         lr=cfg["refine_lr"], loss="cross_entropy", optimizer="adam", X_val=Xv, Y_val=yv,
                         metric=accuracy, lr_schedule="cosine", seed=s, device=device, progress=progress,
                         description=f"refining original MLP, seed {s}")
            net = net.cpu()
            sc = score(net)
            runs.append({"refined_seed": s, "val_accuracy": sc[0], "val_loss": -sc[1], "seconds": hist.seconds})
            refined.append((sc, s, net))
        cands = sorted(refined, key=lambda c: c[0], reverse=True)
    net = cands[0][2]
    runs.append({"selected_seed": cands[0][1]})
    return net, runs


def _layer_name(net: nn.Module, layer: int) -> str:
    lin = [m for m in net if isinstance(m, nn.Linear)][layer]
    return f"{lin.in_features}x{lin.out_features}"


def _study_layer(net: nn.Module, layer: int, data: dict, grid: dict, scale_cfg: dict, seed: int,
                 progress: bool, bar: Any, task: Any) -> dict:
    """All hybrids and baselines for one replaced layer; rows with test and validation accuracy."""
    Xtr, _ = data["train"]
    Xtraj = Xtr[: grid.get("n_trajectories", len(Xtr))]
    Xv, yv = data["val"]
    Xte, yte = data["test"]
    name = _layer_name(net, layer)
    lin = [m for m in net if isinstance(m, nn.Linear)][layer]
    orig_params = lin.weight.numel() + lin.bias.numel()
    rows: list[dict] = []
    baselines: dict[str, dict] = {}

    def base_row(kind: str, model: nn.Module, n_nonlin: int, n_scaled: int) -> dict:
        return {"layer": name, "kind": kind, "n_scaled": n_scaled, "delays": None, "rank": None,
                "readout": "least-squares", "dmd_steps": None, "nonlinear_layers_at_inference": n_nonlin,
                "params": model.replacement_params(), "accuracy": _acc(model, Xte, yte),
                "val_accuracy": _acc(model, Xv, yv)}

    baselines["affine_least_squares"] = base_row("affine least-squares", fit_least_squares(net, layer, Xtr), 0, 0)
    best_fit: dict[str, Any] = {}
    for N in grid["n_scaled"]:
      for noise in grid.get("noise", [0.01]):
        ctrl = fit_least_squares(net, layer, Xtr, N, noise=noise, seed=seed)
        baselines[f"control_N{N}_noise{noise}"] = {
            **base_row(f"control: {N} untrained layers (noise {noise}) + LS readout", ctrl, N, N),
            "init_noise": noise}
        t0 = time.perf_counter()
        sm = scale_layer(net, layer, N, Xtr, epochs=scale_cfg["epochs"], batch_size=scale_cfg["batch_size"],
                         lr=scale_cfg["lr"], noise=noise, seed=seed, progress=False)
        scale_s = time.perf_counter() - t0
        scaled_acc = _acc(sm, Xte, yte)
        traj = record_trajectories(sm, Xtraj)
        for h in sorted({d for d in grid["delays"](N) if 0 <= d <= N}):
            for rank in grid["ranks"]:
                n_pairs = len(traj) * (N + 1 - h)
                if isinstance(rank, int) and rank >= min(traj.shape[2] * (h + 1), n_pairs):
                    continue  # no truncation possible: same as the numerical-rank row
                for readout in grid["readouts"]:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", NumericalWarning)
                        hyb = fit_hybrid(sm, traj, h, rank, readout)
                    row = {"layer": name, "kind": "koopman hybrid", "n_scaled": N, "delays": h,
                           "rank": hyb.rank, "rank_rule": "numerical" if rank is None else rank,
                           "readout": readout, "init_noise": noise, "dmd_steps": hyb.steps,
                           "nonlinear_layers_at_inference": h,
                           "params": hyb.replacement_params(), "accuracy": _acc(hyb, Xte, yte),
                           "val_accuracy": _acc(hyb, Xv, yv), "scaled_model_accuracy": scaled_acc,
                           "scaling_seconds": scale_s}
                    rows.append(row)
                    if not best_fit or row["val_accuracy"] > best_fit["row"]["val_accuracy"]:
                        best_fit = {"row": row, "hybrid": hyb}
                    if h == 0 and ("hybrid_h0" not in baselines
                                   or row["val_accuracy"] > baselines["hybrid_h0"]["val_accuracy"]):
                        baselines["hybrid_h0"] = row
        bar.advance(task)
    return {"layer": name, "layer_index": layer, "original_layer_params": orig_params, "rows": rows,
            "baselines": baselines, "best": best_fit["row"], "_best_hybrid": best_fit["hybrid"]}


def _table(res: dict) -> tuple[list[str], list[list[Any]]]:
    header = ["kind", "N", "init noise", "h", "rank", "readout", "DMD steps", "nonlinear layers at inference", "params",
              "val acc", "test acc"]
    out = []
    for r in [*res["baselines"].values(), *sorted(res["rows"], key=lambda r: -r["val_accuracy"])]:
        out.append([r["kind"], r["n_scaled"], r.get("init_noise"), r["delays"], r["rank"], r["readout"], r["dmd_steps"],
                    r["nonlinear_layers_at_inference"], r["params"], r["val_accuracy"], r["accuracy"]])
    return header, out


def _run(*, dataset: str, data: dict, hidden: list[int], n_classes: int, layers: list[int], seeds: list[int],
         train_cfg: dict, scale_cfg: dict, grid: dict, out: Path, force: bool, seed: int, quick: bool,
         device: str, console: Any, extra_text: str = "", boundaries: bool = False) -> dict:
    t_start = time.perf_counter()
    dev = resolve_device(device)
    torch.manual_seed(seed)
    progress = console is not None
    net, runs = _train_original(data, hidden, n_classes, seeds, train_cfg, dev, progress)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    Xte, yte = data["test"]
    orig_acc = _acc(net, Xte, yte)
    t_train = time.perf_counter() - t_start
    results = []
    with progress_bar(progress) as bar:
        task = bar.add_task("Koopman hybrids (layer × N × noise)",
                            total=len(layers) * len(grid["n_scaled"]) * len(grid.get("noise", [0.01])))
        for layer in layers:
            results.append(_study_layer(net, layer, data, grid, scale_cfg, seed, progress, bar, task))
    total_s = time.perf_counter() - t_start

    rep = Report(f"Koopman layer linearization — {dataset}")
    paper = PAPER[dataset]
    rep.add_text(
        "Aswani, Jabari & Shafique (arXiv:2409.01308) replace one nonlinear layer of a trained MLP by a DMD "
        "operator on delay coordinates of 'trajectories' through N inserted square layers. For N scaled layers "
        "and h delays the hybrid still RUNS h trained nonlinear (Linear+ReLU) scaled layers at inference; only "
        "the replaced layer and the remaining N−h scaled layers become linear (N+1−h DMD steps). The column "
        "'nonlinear layers at inference' counts those h layers; pre- and post-layers always run. 'params' counts "
        f"the parameters standing in for the replaced layer. Best hybrid = highest validation accuracy. "
        f"{extra_text}"
    )
    summary: dict[str, Any] = {"original_accuracy": orig_acc}
    metrics: dict[str, Any] = {
        "dataset": dataset, "quick": quick, "seed": seed, "device": str(dev), "hidden": hidden,
        "original_accuracy": orig_acc, "original_runs": runs, "paper": paper,
        "seconds": {"original_training": t_train, "total": total_s},
        "grid": {"n_scaled": grid["n_scaled"], "noise": grid.get("noise", [0.01]), "delays": "see rows",
                 "ranks": [str(r) for r in grid["ranks"]],
                 "readouts": grid["readouts"]},
        "layers": {},
    }
    rep.add_heading("Original model")
    rep.add_table(["", "ours (test)", "paper"], [["original MLP accuracy", orig_acc, paper["original_accuracy"]]])
    interp: list[str] = []
    targets: list[list[Any]] = []
    for res in results:
        name, best, bl = res["layer"], res["best"], res["baselines"]
        ctrl_best = max((v for k, v in bl.items() if k.startswith("control")), key=lambda r: r["val_accuracy"])
        paper_h = paper.get("hybrid_accuracy", {}).get(name, paper.get("best_hybrid_accuracy"))
        metrics["layers"][name] = {
            "rows": res["rows"], "original_accuracy": orig_acc, "baselines": bl, "best_hybrid": best,
            "paper_hybrid_accuracy": paper_h, "original_layer_params": res["original_layer_params"],
        }
        summary[f"{name} best hybrid"] = best["accuracy"]
        summary[f"{name} h=0 hybrid"] = bl["hybrid_h0"]["accuracy"]
        summary[f"{name} affine LS"] = bl["affine_least_squares"]["accuracy"]
        summary[f"{name} control"] = ctrl_best["accuracy"]
        rep.add_heading(f"Layer {name} replaced (original layer: {res['original_layer_params']} parameters)")
        header, rows = _table(res)
        rep.add_table(header, rows, caption=f"paper's hybrid: {paper_h}; original: {orig_acc:.4f}")
        same = [v for k, v in bl.items() if k.startswith("control")
                and v["nonlinear_layers_at_inference"] == best["nonlinear_layers_at_inference"]]
        ctrl_same = max(same, key=lambda r: r["val_accuracy"]) if same else ctrl_best
        # "beats" only beyond two standard errors of a difference of two accuracies on len(yte) test points
        rival = max(ctrl_same["accuracy"], bl["affine_least_squares"]["accuracy"])
        se = math.sqrt((best["accuracy"] * (1 - best["accuracy"]) + rival * (1 - rival)) / max(1, len(yte)))
        if best["accuracy"] > rival + 2 * se:
            verdict = (f"the hybrid beats both the affine least-squares layer and the untrained control (by "
                       f"{best['accuracy'] - rival:.3f}, more than two standard errors, {2 * se:.3f})")
        elif best["accuracy"] > rival:
            verdict = (f"the hybrid is ahead of the untrained control with as many nonlinear layers and of the "
                       f"affine least-squares layer by only {best['accuracy'] - rival:.3f}, within two standard "
                       f"errors ({2 * se:.3f}) on {len(yte)} test points: no evidence that the linear operator "
                       "adds accuracy beyond the nonlinear layers still running")
        else:
            verdict = ("the hybrid does NOT beat the untrained control with as many nonlinear layers (or the "
                       "affine least-squares layer): its accuracy comes from the nonlinear layers still running, "
                       "not from the linear operator")
        met = None if paper_h is None else best["accuracy"] >= paper_h
        targets.append([name, best["accuracy"], paper_h, "met" if met else "missed",
                        bl["hybrid_h0"]["accuracy"], bl["affine_least_squares"]["accuracy"], ctrl_same["accuracy"]])
        interp.append(
            f"{name}: best hybrid {best['accuracy']:.3f} (N={best['n_scaled']}, h={best['delays']}: "
            f"{best['nonlinear_layers_at_inference']} trained nonlinear layers still run, "
            f"{best['dmd_steps']} linear DMD step(s)) vs paper {paper_h}. With no scaled layer at inference "
            f"(h=0) the hybrid reaches only {bl['hybrid_h0']['accuracy']:.3f}; the affine least-squares "
            f"replacement {bl['affine_least_squares']['accuracy']:.3f}; {ctrl_same['nonlinear_layers_at_inference']}"
            f" UNTRAINED near-identity layers + least-squares readout {ctrl_same['accuracy']:.3f}. So {verdict}."
        )
        hyb = res["_best_hybrid"]
        if hyb.dmd_ is not None:
            eigs = {f"{r['readout']} h={r['delays']}": r_h.dmd_.eigs for r, r_h in [(best, hyb)]}
            rep.add_figure(eigenvalue_figure(eigs, title=f"DMD eigenvalues, {name}, best hybrid"),
                           f"eigenvalues_{name}", "Eigenvalues of Ã with the unit circle.")
            rep.add_figure(right_singular_vectors_figure(hyb.dmd_.right_singular_vectors_, hyb.steps,
                                                         title=f"Right singular vectors, {name}"),
                           f"right_singular_vectors_{name}",
                           "Leading right singular vectors of the Hankel matrix along the first trajectories.")
        rep.add_figure(accuracy_grid_figure([r for r in res["rows"] if r["readout"] == "projected"],
                                            x="delays", y="n_scaled", title=f"{name}: test accuracy (projected)"),
                       f"accuracy_grid_{name}", "Best test accuracy over ranks for each (N, h).")
    rep.add_heading("What the numbers mean")
    rep.add_table(["layer", "best hybrid (test)", "paper", "target", "hybrid h=0", "affine LS",
                   "control, same nonlinear layers"], targets,
                  caption=f"original MLP: ours {orig_acc:.4f}, paper {paper['original_accuracy']}")
    metrics["targets"] = [dict(zip(["layer", "best_hybrid", "paper", "target", "hybrid_h0", "affine_ls",
                                    "control_same_nonlinear_layers"], t, strict=True)) for t in targets]
    rep.add_text("\n\n".join(interp) + "\n\nA hybrid that beats both the affine least-squares replacement and "
                 "the untrained control with the same number of nonlinear layers shows value from the Koopman "
                 "construction itself; otherwise its accuracy comes from the nonlinear layers that still run.")
    if boundaries:
        g = np.linspace(0, 1, 120)
        xx, yy = np.meshgrid(g, g)
        pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
        feats = np.concatenate([pts, 1 - pts], 1) if data["test"][0].shape[1] == 4 else pts
        preds = {"original": predict(net, feats).argmax(1).numpy().reshape(xx.shape)}
        titles = {"original": f"original {orig_acc:.3f}"}
        for res in results:
            preds[res["layer"]] = predict(res["_best_hybrid"], feats).argmax(1).numpy().reshape(xx.shape)
            titles[res["layer"]] = f"{res['layer']} hybrid {res['best']['accuracy']:.3f}"
        rep.add_figure(decision_boundaries_figure(xx, yy, preds, data["test"][0][:, :2], data["test"][1], titles),
                       "decision_boundaries", "Decision regions of the original and the best hybrid per layer.")
    rep.add_text(f"Total time {total_s:.0f} s (original training {t_train:.0f} s) on {dev}.")
    metrics["seconds"]["total"] = time.perf_counter() - t_start
    rep.metrics = metrics
    rep.write(out, force=force)
    summary["seconds"] = round(metrics["seconds"]["total"], 1)
    return summary


def run_yinyang(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "cpu",
                console: Any = None) -> dict:
    """Yin-Yang (3 classes, Kriener's features and splits), hidden [8, 6, 4, 3]; replace 8×6, 6×4, 4×3.

    Full run: 64 original seeds trained at once (final weights, selection on validation), scaled layers trained
    300 epochs, N ∈ {4, 10, 16}, init noise ∈ {0.01, 0.1, 0.2, 0.3}, h ∈ {0, 1, N/2, N−1, N}, rank ∈
    {numerical, optimal}, readout ∈ {projected, exact}; about 3 minutes on one CPU thread (measured 192 s on a
    shared 2-core machine). ``quick``: ~5 s.
    """
    from linlens.data.yinyang import yinyang_splits

    data = yinyang_splits(features="kriener")
    if quick:
        data = {"train": tuple(a[:1500] for a in data["train"]), "val": data["val"], "test": data["test"]}
        seeds = [seed + i for i in range(16)]
        train_cfg = {"ensemble": True, "epochs": 100, "batch_size": 100, "lr": 1e-2}
        scale_cfg = {"epochs": 10, "batch_size": 500, "lr": 2e-3}
        grid = {"n_scaled": [4], "delays": lambda N: [0, 1, N], "ranks": [None], "readouts": ["projected"]}
    else:
        # 64 seeds trained at once (see _train_ensemble): ~33 s on one thread. Seed 0 selects a net with 99.2 %
        # validation / 98.8 % test; seeds 1000 and 2000 gave 99.2 % and 99.4 % test (the earlier 16 seeds
        # trained one by one, best 3 refined: 98.2 % / 96.5 %).
        seeds = [seed + i for i in range(64)]
        train_cfg = {"ensemble": True, "epochs": 300, "batch_size": 100, "lr": 5e-3}
        # Scaling: 300 epochs (100 left 8×6 scaled models at 92–96 %). Init noise matters most: with 0.01 the
        # scaled layers stay so close to the identity that the Hankel matrix is nearly rank-deficient and the
        # hybrid falls to ~68 %; 0.2–0.3 with N = 10–16 gave the best validation hybrids (selection: validation).
        scale_cfg = {"epochs": 300, "batch_size": 500, "lr": 2e-3}
        grid = {"n_scaled": [4, 10, 16], "noise": [0.01, 0.1, 0.2, 0.3],
                "delays": lambda N: [0, 1, N // 2, N - 1, N],
                "ranks": [None, "optimal"],
                "readouts": ["projected", "exact"]}
    return _run(dataset="yinyang", data=data, hidden=[8, 6, 4, 3], n_classes=3, layers=[1, 2, 3], seeds=seeds,
                train_cfg=train_cfg, scale_cfg=scale_cfg, grid=grid, out=out, force=force, seed=seed,
                quick=quick, device=device, console=console, boundaries=True,
                extra_text="Data: Kriener's 3-class Yin-Yang with features (x, y, 1−x, 1−y), train 5000/42, "
                           "val 1000/41, test 1000/40. The paper's variant and features are not stated.")


def run_mnist(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "cpu",
              console: Any = None) -> dict:
    """MNIST, hidden [256, 128, 64, 32]; replace each hidden layer (256×128, 128×64, 64×32).

    Full run: 2 seeds × 20 epochs, N = 10, h ∈ {0, 1, 10}, rank ∈ {numerical, 500}, both readouts, 10 000
    trajectories; measured 437 s on one CPU thread (a GPU, ``--device cuda``, speeds up the training parts).
    ``quick``: 5 000 training images, one layer, ~15 s.
    """
    from linlens.data.mnist import load_mnist

    data = {k: load_mnist(k) for k in ("train", "val", "test")}
    if quick:
        data = {"train": tuple(a[:5000] for a in data["train"]), "val": tuple(a[:2000] for a in data["val"]),
                "test": data["test"]}
        seeds = [seed]
        train_cfg = {"epochs": 3, "batch_size": 256, "lr": 2e-3}
        scale_cfg = {"epochs": 3, "batch_size": 1000, "lr": 2e-3}
        grid = {"n_scaled": [3], "delays": lambda N: [0, N], "ranks": [None], "readouts": ["projected"],
                "n_trajectories": 2000}
        layers = [1]
    else:
        seeds = [seed, seed + 1]
        train_cfg = {"epochs": 20, "batch_size": 256, "lr": 2e-3}
        scale_cfg = {"epochs": 10, "batch_size": 1000, "lr": 2e-3}
        grid = {"n_scaled": [10], "delays": lambda N: [0, 1, N], "ranks": [None, 500],
                "readouts": ["projected", "exact"], "n_trajectories": 10000}
        layers = [1, 2, 3]
    return _run(dataset="mnist", data=data, hidden=[256, 128, 64, 32], n_classes=10, layers=layers, seeds=seeds,
                train_cfg=train_cfg, scale_cfg=scale_cfg, grid=grid, out=out, force=force, seed=seed,
                quick=quick, device=device, console=console,
                extra_text="Data: classic MNIST pickle split (train 50 000, val 10 000, test 10 000).")
