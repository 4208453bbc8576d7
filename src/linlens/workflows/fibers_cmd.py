"""``linlens fibers strata|analyze`` and the demo's deep-linear-network section.

Wires :mod:`linlens.fibers` to reports: a table of strata with the closure order as a Hasse diagram; the stratum
of a trained network (ranks with gaps, barcode, dimensions, basis flow diagram).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError, InputFileError, NumericalWarning, ShapeError
from linlens.fibers import LinearNetwork, count_strata, plot_basis_flow, plot_hasse, prebasis, stratum_order, tangent_normal
from linlens.report import Report

__all__ = ["parse_widths", "run_strata", "run_analyze_weights", "analyze_network", "demo_section", "load_weights"]

_MAX_STRATA = 20000
_MAX_TANGENT_D = 3000


def parse_widths(text: str) -> list[int]:
    """Parse ``"2,3,2"`` (commas or spaces) into layer widths; at least two positive integers.

    Raises:
        ConfigError: one line naming ``--widths``, the expected form and the text found.

    Example:
        >>> parse_widths("2, 3,2")
        [2, 3, 2]
    """
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    try:
        ws = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--widths must be positive integers separated by commas, e.g. 2,3,2; got {text!r}") from None
    if len(ws) < 2 or min(ws) < 1:
        raise ConfigError(f"--widths must hold at least two positive integers d_0,…,d_L; got {text!r}")
    return ws


def _quiet(console: Any) -> bool:
    return console is None


def run_strata(widths: list[int], rank: int, out: Path, force: bool = False, console: Any = None) -> dict[str, Any]:
    """Every stratum of the rank-``rank`` fiber for ``widths``: a table and the closure order (Hasse diagram).

    Returns:
        headline numbers (number of strata, covers, dimensions, weight-space dimension).
    """
    ws = [int(w) for w in widths]
    if len(ws) < 2 or min(ws) < 1:
        raise ConfigError(f"widths must hold at least two positive integers; got {ws}")
    if not isinstance(rank, int | np.integer) or rank < 0 or rank > min(ws):
        raise ConfigError(f"--rank must be an integer in [0, min(widths) = {min(ws)}] for widths {ws}; got {rank}")
    if len(ws) > 8 or max(ws) > 12:
        # the number of strata grows very fast; refuse sizes that would not finish
        raise ConfigError(f"--widths too large for enumeration (at most 8 layers of width ≤ 12); got {ws}")
    order = stratum_order(ws, rank)
    items = [order.nodes[n]["stratum"] for n in sorted(order)]
    if len(items) > _MAX_STRATA:
        raise ConfigError(f"too many strata to report ({len(items)} > {_MAX_STRATA}) for widths {ws}")
    D = items[0].weight_dim
    expected = rank * (ws[0] + ws[-1] - rank)
    minimal = order.graph["minimal"]
    maximal = order.graph["maximal"]

    rep = Report(f"Strata of the fiber: widths {ws}, rank {rank}")
    rep.add_text(
        f"The set of weights (W_1, …, W_L) of a linear network with widths {ws} whose product is a fixed matrix "
        f"of rank {rank} is stratified by rank lists r_ji = rank(W_j⋯W_(i+1)) into {len(items)} manifolds. "
        f"Each stratum is named by its barcode: bars [a,b] are information born at layer a and killed after b. "
        f"Weight space has dimension D = {D}; the expected codimension of a fiber is r(d_0+d_L−r) = {expected}. "
        "Bhattacharya & Shewchuk, arXiv:2404.14855."
    )
    rows = []
    for n, s in enumerate(items):
        tag = "minimal" if n == minimal else ("maximal" if n in maximal else "")
        rows.append([n, s.label, s.rank_list_text(), s.dim, s.codim, s.excess_codim, tag])
    rep.add_heading("Strata")
    rep.add_table(["#", "barcode", "rank list", "dim", "codim", "excess codim", "order"], rows)
    rep.add_heading("Closure order")
    rep.add_text(
        "S′ lies in the closure of S iff every rank of S′ is ≤ the same rank of S. Edges are covers (Hasse "
        "diagram); each is a single barcode move (merge / nest going up)."
    )
    rep.add_figure(plot_hasse(order), "hasse", "Closure order of the strata (height = dimension).")
    rep.metrics = {
        "widths": ws,
        "rank": int(rank),
        "weight_dim": D,
        "expected_codim": expected,
        "n_strata": len(items),
        "n_covers": order.number_of_edges(),
        "minimal": minimal,
        "maximal": list(maximal),
        "strata": [dict(s.to_dict(), index=n) for n, s in enumerate(items)],
        "covers": [
            {"lower": int(u), "upper": int(v), "move": d["move"], "bars": d["bars"]}
            for u, v, d in order.edges(data=True)
        ],
    }
    rep.write(out, force)
    return {
        "strata": len(items),
        "covers (Hasse edges)": order.number_of_edges(),
        "maximal strata": len(maximal),
        "largest dim": max(s.dim for s in items),
        "minimal stratum dim": items[minimal].dim,
        "weight-space dim D": D,
        "expected codim": expected,
    }


def load_weights(path: Path) -> list[np.ndarray]:
    """Load ``W1..WL`` (or ``arr_0..``) from an ``.npz`` with ``allow_pickle=False``.

    Raises:
        InputFileError: missing/unreadable file or no weight keys; ShapeError: a weight that is not 2-D.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"weights file must exist; not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"weights file must be an .npz of arrays W1..WL; could not read {p}: {first}") from None
    if not isinstance(data, dict):
        raise InputFileError(f"weights file must be an .npz archive (not a single .npy); got {p}")
    for pat in (r"W(\d+)", r"arr_(\d+)"):
        keys = {int(m.group(1)): k for k in data if (m := re.fullmatch(pat, k))}
        if keys:
            lo = 1 if pat.startswith("W") else 0
            idx = sorted(keys)
            if idx != list(range(lo, lo + len(idx))):
                name = pat.split("(")[0]
                raise InputFileError(f"weights file keys must be consecutive {name}{lo}..; got {sorted(data)}")
            ws = [data[keys[i]] for i in idx]
            break
    else:
        raise InputFileError(f"weights file must hold keys W1..WL or arr_0..; got {sorted(data)}")
    for k, w in enumerate(ws, start=1):
        if w.ndim != 2:
            raise ShapeError(f"W{k} must be a 2-D matrix (d_k, d_(k-1)); got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.number):
            raise InputFileError(f"W{k} must be numeric; got dtype {w.dtype}")
    return ws


def analyze_network(net: LinearNetwork, tol: float | None = None, tangent: bool = True) -> dict[str, Any]:
    """Stratum, ranks with gaps, dimensions (and the numerical tangent rank for small ``D``) of a network."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        rl = net.rank_list(tol)
    st = net.stratum(tol)
    out: dict[str, Any] = {
        "widths": list(net.widths),
        "stratum": st.to_dict(),
        "rank_list": rl.to_dict(),
        "product_rank": st.rank,
        "smallest_gap": rl.smallest_gap,
        "fragile_ranks": [f"r_{j}_{i}" for j, i in rl.fragile],
        "warnings": [str(w.message) for w in caught],
    }
    if tangent and net.weight_dim <= _MAX_TANGENT_D:
        T, N = tangent_normal(net, tol)
        out["tangent_dim_numerical"] = int(T.shape[1])
        out["normal_dim_numerical"] = int(N.shape[1])
        if T.shape[1] != st.dim:
            out["warnings"].append(
                f"numerical tangent rank {T.shape[1]} differs from the stratum dimension {st.dim}: the point is "
                "ill-conditioned (close to another stratum)"
            )
    return out


def _rank_rows(net: LinearNetwork, info: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for key, e in info["rank_list"]["ranks"].items():
        j, i = e["j"], e["i"]
        rows.append([f"r_{j},{i} = rank(W_{j}⋯W_{i + 1})", e["rank"], e["sigma_above"], e["sigma_below"], e["gap"],
                     "FRAGILE" if key in info["fragile_ranks"] else ""])
    return rows


def _add_network_section(rep: Report, net: LinearNetwork, info: dict[str, Any], tol: float | None, stem: str) -> None:
    st = info["stratum"]
    rep.add_table(
        ["quantity", "value"],
        [
            ["widths", str(info["widths"])],
            ["barcode", st["barcode_text"]],
            ["rank of W = W_L⋯W_1", st["rank"]],
            ["stratum dim", st["dim"]],
            ["stratum codim", st["codim"]],
            ["excess codim (beyond r(d_0+d_L−r))", st["excess_codim"]],
            ["weight-space dim D", st["weight_dim"]],
            ["smallest singular-value gap", info["smallest_gap"]],
        ]
        + ([["tangent dim (numerical)", info["tangent_dim_numerical"]]] if "tangent_dim_numerical" in info else []),
    )
    rep.add_table(["rank", "value", "σ_r", "σ_r+1", "gap σ_r/σ_r+1", ""], _rank_rows(net, info),
                  caption="Every numerical rank with the singular values at its cut.")
    for w in info["warnings"]:
        rep.add_text(f"Warning: {w}")
    rep.add_figure(plot_basis_flow(prebasis(net, tol)), f"{stem}flow",
                   "Basis flow diagram: one node per prebasis vector per layer; bars are paths.")


def run_analyze_weights(weights: Path, out: Path, force: bool = False, tol: float | None = None,
                        console: Any = None) -> dict[str, Any]:
    """The stratum of a trained linear network stored as ``.npz``: ranks with gaps, barcode, dims, flow diagram."""
    ws = load_weights(weights)
    net = LinearNetwork(ws)
    info = analyze_network(net, tol)
    if console is not None:
        for w in info["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)
    rep = Report(f"Fiber of the linear network in {Path(weights).name}")
    rep.add_text(
        "Which stratum of its fiber this network lies on: every rank r_ji = rank(W_j⋯W_(i+1)) with the "
        "singular-value gap behind it, the barcode (bars [a,b]: information born at layer a and killed after b), "
        "and the stratum's dimension. Bhattacharya & Shewchuk, arXiv:2404.14855."
    )
    _add_network_section(rep, net, info, tol, "")
    rep.metrics = dict(info, file=str(weights), tol=tol)
    rep.write(out, force)
    st = info["stratum"]
    return {
        "widths": ",".join(map(str, net.widths)),
        "barcode": st["barcode_text"],
        "rank of product": st["rank"],
        "stratum dim": st["dim"],
        "stratum codim": st["codim"],
        "excess codim": st["excess_codim"],
        "smallest rank gap": info["smallest_gap"],
        "fragile ranks": len(info["fragile_ranks"]),
    }


def demo_section(report: Report, Y_train: np.ndarray, X_train: np.ndarray, seed: int = 0,
                 quick: bool = False) -> dict[str, Any]:
    """Train a 3-layer deep linear network ``y ↦ x`` and add the stratum it ends on to ``report``.

    Widths ``(d_y, 2h, h, d_x)`` with a bottleneck ``h = min(d_x, d_y) // 4`` (at least 1). Reports the
    stratum at machine precision and the *effective* stratum at relative tolerance ``1e-3`` (trained weights
    are generic at machine precision; weight decay pushes them towards lower strata).

    Arguments:
        report: the demo's report; a heading, text, tables and the flow diagram are appended.
        Y_train: inputs ``(n_samples, d_y)``; X_train: targets ``(n_samples, d_x)``.

    Returns:
        headline numbers.
    """
    import torch

    from linlens.nn import seed_everything, train
    from linlens.validation import as_array

    Y = as_array(Y_train, "Y_train")
    X = as_array(X_train, "X_train")
    if len(Y) != len(X):
        raise ShapeError(f"Y_train and X_train must have the same number of rows; got {len(Y)} and {len(X)}")
    d_y, d_x = Y.shape[1], X.shape[1]
    h = max(1, min(d_x, d_y) // 4)
    widths = (d_y, 2 * h, h, d_x)
    seed_everything(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(widths[k], widths[k + 1], bias=False) for k in range(3)])
    model = model.double()
    n = len(Y)
    epochs = 15 if quick else 60
    hist = train(model, Y, X, epochs=epochs, batch_size=min(256, n), lr=3e-3, weight_decay=1e-4, seed=seed,
                 device="cpu", progress=False, description="deep linear network")
    weights = [m.weight.detach().cpu().numpy().astype(np.float64) for m in model]
    net = LinearNetwork(weights)
    info = analyze_network(net, None, tangent=False)
    try:
        eff = analyze_network(net, 1e-3, tangent=False)
    except ConfigError:  # ranks at a loose tolerance need not be consistent; fall back to machine precision
        eff = info
    coef, *_ = np.linalg.lstsq(Y, X, rcond=None)
    mse_lin = float(np.mean((Y @ coef - X) ** 2))
    mse_net = float(np.mean((Y @ net.product().T - X) ** 2))
    report.add_heading("Deep linear network: which stratum of its fiber did training end on?")
    report.add_text(
        f"A 3-layer linear network with widths {list(widths)} (bottleneck {h}) was trained for {epochs} epochs "
        f"(Adam, weight decay 1e-4) to map the blurred noisy y to x. Its product W = W_3 W_2 W_1 is one matrix; all "
        "weights with the same product form the fiber, stratified by the ranks of the partial products. At "
        f"machine precision the weights sit on the generic stratum {info['stratum']['barcode_text']} "
        f"(dim {info['stratum']['dim']}); at relative tolerance 1e-3 on {eff['stratum']['barcode_text']} "
        f"(rank of W {eff['stratum']['rank']}, dim {eff['stratum']['dim']}). Training MSE {mse_net:.4g} vs "
        f"{mse_lin:.4g} for the unconstrained least-squares map."
    )
    _add_network_section(report, net, info, None, "fibers_")
    report.metrics["deep_linear_network"] = {
        "widths": list(widths),
        "epochs": epochs,
        "train_loss": hist.train_loss,
        "mse_network": mse_net,
        "mse_least_squares": mse_lin,
        "machine_precision": info,
        "effective_tol_1e-3": eff,
    }
    return {
        "deep linear: rank of W": info["stratum"]["rank"],
        "deep linear: stratum dim": info["stratum"]["dim"],
        "deep linear: stratum codim": info["stratum"]["codim"],
        "deep linear: smallest rank gap": info["smallest_gap"],
        "deep linear: effective rank (tol 1e-3)": eff["stratum"]["rank"],
        "deep linear: mse / least-squares mse": mse_net / mse_lin if mse_lin > 0 else float("nan"),
    }
