"""``linlens fibers strata|analyze`` and the demo's deep-linear-network section.

Wires :mod:`linlens.fibers` to reports: a table of strata with the closure order as a Hasse diagram; the stratum
of a trained network (ranks with gaps, barcode, dimensions, basis flow diagram).
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npformat
import torch

from linlens.errors import ConfigError, InputFileError, NumericalWarning, ShapeError
from linlens.fibers import (
    LinearNetwork,
    count_strata,
    prebasis,
    stratum_order,
    tangent_normal,
)
from linlens.nn import seed_everything, train
from linlens.report import Report, check_destination
from linlens.report.fibers_figures import plot_basis_flow, plot_hasse
from linlens.surrogate import reduced_rank_regression
from linlens.validation import as_array

__all__ = [
    "MAX_STRATA",
    "MAX_WEIGHT_BYTES",
    "parse_widths",
    "run_strata",
    "run_analyze_weights",
    "analyze_network",
    "demo_section",
    "load_weights",
]

MAX_STRATA = 2000
"""Default of ``--max-strata``: the closure order costs time ∝ strata² (about 15 s at 2000 on one core)."""
#: largest layer width `fibers strata` lists (its enumeration loops up to a width per bar: 10⁵ stays fast)
MAX_WIDTH = 10**5
MAX_LAYERS = 30
MAX_WEIGHT_BYTES = 2**30
"""Largest total size of the weights ``fibers analyze`` reads (dense SVDs of every subproduct follow)."""
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


def run_strata(widths: list[int], rank: int, out: Path, force: bool = False, console: Any = None,
               max_strata: int = MAX_STRATA) -> dict[str, Any]:
    """Every stratum of the rank-``rank`` fiber for ``widths``: a table and the closure order (Hasse diagram).

    The strata are counted first (without listing them, :func:`linlens.fibers.count_strata`); more than
    ``max_strata`` is refused before any enumeration, with the option that raises the limit.

    Returns:
        headline numbers (number of strata, covers, dimensions, weight-space dimension).

    Example:
        >>> import tempfile
        >>> summary = run_strata([2, 2, 2], 0, Path(tempfile.mkdtemp()) / "strata")
        >>> summary["weight-space dim D"], summary["strata"]  # D = 2·2 + 2·2
        (8, 6)
    """
    check_destination(out, force)
    ws = [int(w) for w in widths]
    if len(ws) < 2 or min(ws) < 1:
        raise ConfigError(f"widths must hold at least two positive integers; got {ws}")
    if len(ws) > MAX_LAYERS + 1:
        raise ConfigError(f"--widths must have at most {MAX_LAYERS + 1} layers (rank lists grow as L²); got {len(ws)}")
    if max(ws) > MAX_WIDTH:
        raise ConfigError(f"--widths: each width must be at most {MAX_WIDTH:,} (listing the strata loops over the "
                          f"multiplicities of each bar, up to a width); got {max(ws):,}")
    if not isinstance(rank, int | np.integer) or rank < 0 or rank > min(ws):
        raise ConfigError(f"--rank must be an integer in [0, min(widths) = {min(ws)}] for widths {ws}; got {rank}")
    if max_strata < 1:
        raise ConfigError(f"--max-strata must be >= 1; got {max_strata}")
    n_strata = count_strata(ws, rank, stop_above=max_strata)
    if n_strata > max_strata:
        exact = count_strata(ws, rank, stop_above=10**5)  # exact when the count's own work is small
        many = f"{exact}" if exact <= 10**5 else f"more than {10**5}"
        raise ConfigError(
            f"widths {','.join(map(str, ws))} at rank {rank} have {many} strata, more than --max-strata {max_strata} "
            "(listing them and their closure order costs time ∝ strata²); raise --max-strata to list them anyway"
        )
    if console is not None:
        console.print(f"{n_strata} strata; listing them and their closure order", highlight=False)
    order = stratum_order(ws, rank)
    items = [order.nodes[n]["stratum"] for n in sorted(order)]
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _check_npz_headers(p: Path) -> None:
    """Read every member's .npy header (no data) and refuse shapes that the file cannot hold or that are too big."""
    total = 0
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    version = npformat.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = npformat.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = npformat.read_array_header_2_0(fh)
                    offset = fh.tell()
                n_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if n_bytes > info.file_size - offset:
                    raise InputFileError(
                        f"weights file {p}: member {info.filename} declares shape {tuple(shape)} ({n_bytes} bytes) but "
                        f"holds {max(info.file_size - offset, 0)} bytes of data; refusing a corrupt or hostile header"
                    )
                total += n_bytes
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt archive raises anything; the user needs one line
        raise InputFileError(f"weights file must be an .npz of arrays W1..WL; could not read {p}: {_first_line(exc)}") \
            from None
    _check_total_bytes(p, total)


def _check_total_bytes(p: Path, total: int) -> None:
    if total > MAX_WEIGHT_BYTES:
        raise InputFileError(
            f"weights file {p} declares {total / 2**30:.3g} GiB of weights, more than the "
            f"{MAX_WEIGHT_BYTES / 2**30:.3g} GiB a dense fiber analysis can handle"
        )


def _load_npz(p: Path) -> dict[str, np.ndarray]:
    _check_npz_headers(p)
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"weights file must be an .npz of arrays W1..WL; could not read {p}: {_first_line(exc)}") \
            from None


def _load_state_dict(p: Path) -> list[np.ndarray]:
    """``0.weight, 1.weight, …`` of a bias-free ``nn.Sequential`` of Linear layers, loaded with weights_only=True."""
    if zipfile.is_zipfile(p):  # torch's zip format: check the declared storage sizes before loading
        try:
            with zipfile.ZipFile(p) as zf:
                total = sum(i.file_size for i in zf.infolist() if "/data/" in i.filename)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(f"weights file {p} is not a readable torch file: {_first_line(exc)}") from None
        _check_total_bytes(p, total)
    elif p.stat().st_size > MAX_WEIGHT_BYTES:
        _check_total_bytes(p, p.stat().st_size)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - hostile or corrupt files raise anything
        raise InputFileError(
            f"weights file {p} is not a state dict torch.load(weights_only=True) can read: {_first_line(exc)}"
        ) from None
    if not isinstance(obj, Mapping) or not obj:
        raise InputFileError(
            f"weights file {p} must hold the state dict of a bias-free nn.Sequential of Linear layers "
            f"(keys 0.weight, 1.weight, …); found {type(obj).__name__}"
        )
    index: dict[int, str] = {}
    for key in obj:
        m = re.fullmatch(r"(\d+)\.(weight|bias)", str(key))
        if m is None:
            raise InputFileError(
                f"weights file {p}: key {str(key)[:40]!r} is not a Linear layer's weight; expected only 0.weight, "
                "1.weight, … of an nn.Sequential of bias-free Linear layers"
            )
        if m.group(2) == "bias":
            raise InputFileError(
                f"weights file {p}: layer {m.group(1)} has a bias ({key}); a fiber is defined for bias-free linear "
                "networks (nn.Linear(…, bias=False))"
            )
        index[int(m.group(1))] = key
    order = sorted(index)
    if order != list(range(len(order))):
        missing = sorted(set(range(order[-1] + 1)) - set(order))
        raise InputFileError(
            f"weights file {p}: keys must be 0.weight, 1.weight, … without gaps; layer {missing[0]} has no weight "
            "(an activation or other layer between the Linear layers makes the network non-linear)"
        )
    ws = []
    for k in order:
        t = obj[index[k]]
        if not isinstance(t, torch.Tensor):
            raise InputFileError(f"weights file {p}: {index[k]} is a {type(t).__name__}, not a tensor")
        if t.is_complex():
            raise InputFileError(f"weights file {p}: {index[k]} is complex ({t.dtype}); expected real weights")
        if t.ndim != 2:
            raise ShapeError(
                f"weights file {p}: {index[k]} has shape {tuple(t.shape)}; a Linear layer's weight is 2-D (out, in)"
            )
        ws.append(t.detach().to(torch.float64).numpy())
    return ws


def load_weights(path: Path) -> list[np.ndarray]:
    """Load the weights ``W_1 … W_L`` of a linear network, each of shape ``(d_k, d_{k-1})``.

    Two formats, both read without running code: an ``.npz`` with keys ``W1..WL`` (or ``arr_0..``), loaded with
    ``allow_pickle=False`` after every member's header was checked against the bytes it holds; or a ``.pt``/``.pth``
    state dict of a bias-free ``nn.Sequential`` of ``nn.Linear`` layers (keys ``0.weight``, ``1.weight``, …),
    loaded with ``torch.load(weights_only=True)``.

    Raises:
        InputFileError: missing or unreadable file, a single ``.npy``, a header that claims more data than the file
            holds, more than ``MAX_WEIGHT_BYTES``, biases, non-Linear keys, complex values;
        ShapeError: a weight that is not 2-D.

    Example:
        >>> import tempfile, pathlib, torch
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "net.pt"
        >>> torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 4, bias=False))
        ...            .state_dict(), p)
        >>> [w.shape for w in load_weights(p)]
        [(2, 3), (4, 2)]
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"weights file must exist; not found: {p}")
    with open(p, "rb") as fh:
        magic = fh.read(6)
    suffix = p.suffix.lower()
    if magic == b"\x93NUMPY" or suffix == ".npy":
        raise InputFileError(
            f"weights file {p} is a single .npy array; save the layers together: np.savez('w.npz', W1=…, W2=…) or a "
            "state dict with torch.save(model.state_dict(), 'w.pt')"
        )
    if suffix in (".pt", ".pth"):
        ws = _load_state_dict(p)
    else:
        if not magic.startswith(b"PK"):
            raise InputFileError(
                f"weights file must be an .npz of arrays W1..WL (a zip archive) or a .pt state dict; could not read "
                f"{p}: not a zip archive"
            )
        data = _load_npz(p)
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
            raise InputFileError(f"weights file must hold keys W1..WL or arr_0..; got {sorted(data)[:8]}")
    for k, w in enumerate(ws, start=1):
        if w.ndim != 2:
            raise ShapeError(f"W{k} must be a 2-D matrix (d_k, d_(k-1)); got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
            raise InputFileError(f"W{k} must be real numbers; got dtype {w.dtype}")
    return ws


def analyze_network(net: LinearNetwork, tol: float | None = None, tangent: bool = True) -> dict[str, Any]:
    """Stratum, ranks with gaps, dimensions (and the numerical tangent rank for small ``D``) of a network.

    Example:
        >>> net = LinearNetwork([np.array([[1.0, 0.0]]), np.array([[2.0], [0.0]])])  # W₂W₁ of rank 1
        >>> info = analyze_network(net)
        >>> info["product_rank"], info["widths"]
        (1, [2, 1, 2])
    """
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
    """The stratum of a trained linear network stored as ``.npz``: ranks with gaps, barcode, dims, flow diagram.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> np.savez(folder / "w.npz", W1=np.array([[1.0, 0.0]]), W2=np.array([[2.0], [0.0]]))
        >>> summary = run_analyze_weights(folder / "w.npz", folder / "report")
        >>> summary["widths"], summary["rank of product"], (folder / "report" / "metrics.json").is_file()
        ('2,1,2', 1, True)
    """
    check_destination(out, force)
    ws = load_weights(weights)
    net = LinearNetwork(ws)
    if console is not None:
        console.print(f"widths {list(net.widths)}: numerical ranks, stratum, tangent space, basis flow diagram",
                      highlight=False)
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

    Example:
        >>> rng = np.random.default_rng(0)
        >>> Y = rng.standard_normal((16, 4))
        >>> info = demo_section(Report("demo"), Y, Y @ np.diag([2.0, 1.0, 0.5, 0.1]), quick=True)
        >>> info["deep linear: rank of W"]  # at most the bottleneck h = 4 // 4
        1
    """
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
                 lr_schedule="cosine",
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
    mse_rrr = float(np.mean((Y @ reduced_rank_regression(Y, X, h).T - X) ** 2))
    gap = mse_net / mse_rrr - 1.0 if mse_rrr > 0 else float("inf")
    report.add_heading("Deep linear network: which stratum of its fiber did training end on?")
    report.add_text(
        f"A 3-layer linear network with widths {list(widths)} (bottleneck {h}) was trained for {epochs} epochs "
        f"(Adam, weight decay 1e-4) to map the blurred noisy y to x. Its product W = W_3 W_2 W_1 is one matrix; all "
        "weights with the same product form the fiber, stratified by the ranks of the partial products. At "
        f"machine precision the weights sit on the generic stratum {info['stratum']['barcode_text']} "
        f"(dim {info['stratum']['dim']}); at relative tolerance 1e-3 on {eff['stratum']['barcode_text']} "
        f"(rank of W {eff['stratum']['rank']}, dim {eff['stratum']['dim']}). Training MSE {mse_net:.4g} against "
        f"{mse_rrr:.4g} for the best map of rank ≤ {h} (reduced-rank regression, closed form: the optimum this "
        f"network can reach), {gap * 100:.1f}% above it"
        + (" — within the 5% the demo aims for" if gap <= 0.05 else " — NOT within 5%: training stopped short")
        + f"; the unconstrained least-squares map ({mse_lin:.4g}) is out of reach of a rank-{h} bottleneck."
    )
    _add_network_section(report, net, info, None, "fibers_")
    report.metrics["deep_linear_network"] = {
        "widths": list(widths),
        "epochs": epochs,
        "train_loss": hist.train_loss,
        "mse_network": mse_net,
        "mse_least_squares": mse_lin,
        "mse_reduced_rank_optimum": mse_rrr,
        "relative_gap_to_reduced_rank_optimum": gap,
        "machine_precision": info,
        "effective_tol_1e-3": eff,
    }
    return {
        "deep linear: rank of W": info["stratum"]["rank"],
        "deep linear: stratum dim": info["stratum"]["dim"],
        "deep linear: stratum codim": info["stratum"]["codim"],
        "deep linear: smallest rank gap": info["smallest_gap"],
        "deep linear: effective rank (tol 1e-3)": eff["stratum"]["rank"],
        "deep linear: mse / rank-constrained optimum": mse_net / mse_rrr if mse_rrr > 0 else float("nan"),
    }
