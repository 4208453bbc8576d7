"""Figures for fibers: the basis flow diagram of a point and the Hasse diagram of the closure order.

Plotting takes results (a :class:`~linlens.fibers.bases.Prebasis`, the order graph) and never recomputes.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from linlens.fibers.bases import Prebasis

__all__ = ["plot_basis_flow", "plot_hasse"]


def _colors(n: int) -> list[Any]:
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(k % cmap.N) for k in range(n)]


def plot_basis_flow(pb: Prebasis, ax: Any = None, max_nodes: int = 400):
    """Basis flow diagram: one node per prebasis vector per layer, edges where ``W_{j+1}`` maps one to the next.

    Each bar ``[a, b]`` is a path from layer ``a`` to layer ``b``, coloured by bar type; full bars ``[0, L]``
    (the information that reaches the output) are drawn thick.

    Arguments:
        pb: the prebasis (from :func:`linlens.fibers.bases.prebasis`).
        ax: optional matplotlib axes.
        max_nodes: above this many nodes the diagram shows one node per bar type, labelled with its count.

    Returns:
        the matplotlib figure.

    Example:
        >>> import numpy as np
        >>> from linlens.fibers.network import LinearNetwork
        >>> from linlens.fibers.bases import prebasis
        >>> fig = plot_basis_flow(prebasis(LinearNetwork([np.eye(2), np.eye(2)])))
    """
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    st = pb.stratum
    L = st.L
    types = [bar for bar, _ in st.barcode]
    colors = dict(zip(types, _colors(len(types)), strict=True))
    collapse = sum(st.widths) > max_nodes
    if ax is None:
        height = max(2.5, 0.32 * (len(types) if collapse else max(st.widths)) + 1.2)
        fig, ax = plt.subplots(figsize=(1.6 + 1.4 * (L + 1), min(height, 14)))
    else:
        fig = ax.figure
    for k in range(L + 1):
        labs = [(bar, 0) for bar in types if bar[0] <= k <= bar[1]] if collapse else list(pb.labels[k])
        n = len(labs)
        for p, (bar, c) in enumerate(labs):
            y = (n - 1) / 2 - p
            full = bar == (0, L)
            ax.scatter([k], [y], s=60 if full else 35, color=colors[bar], zorder=3, edgecolor="k", linewidth=0.4)
            if collapse:
                ax.annotate(f"×{dict(st.barcode)[bar]}", (k, y), xytext=(4, 4), textcoords="offset points",
                            fontsize=7)
            if k < bar[1]:
                nxt = [(b2, 0) for b2 in types if b2[0] <= k + 1 <= b2[1]] if collapse else list(pb.labels[k + 1])
                q = nxt.index((bar, c))
                y2 = (len(nxt) - 1) / 2 - q
                ax.plot([k, k + 1], [y, y2], color=colors[bar], lw=2.5 if full else 1.2, zorder=2)
    handles = [plt.Line2D([], [], color=colors[b], marker="o", lw=2, label=f"[{b[0]},{b[1]}]×{m}")
               for b, m in st.barcode]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax.set_xticks(range(L + 1))
    ax.set_xticklabels([f"layer {k}\nd={d}" for k, d in enumerate(st.widths)], fontsize=8)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"basis flow diagram (dim {st.dim}, codim {st.codim})", fontsize=9)
    return fig


def plot_hasse(order: nx.DiGraph, ax: Any = None, max_labels: int = 60):
    """Hasse diagram of the closure order: strata placed by dimension (height), edges to covering strata.

    Arguments:
        order: from :func:`linlens.fibers.order.stratum_order`.
        ax: optional matplotlib axes.
        max_labels: above this many strata, nodes carry their index instead of the barcode.

    Returns:
        the matplotlib figure.

    Example:
        >>> from linlens.fibers.order import stratum_order
        >>> fig = plot_hasse(stratum_order((2, 2, 2), 1))
    """
    import matplotlib.pyplot as plt  # lazy: plotting is heavy, loaded when a figure is drawn

    n = order.number_of_nodes()
    by_dim: dict[int, list[int]] = {}
    for v in sorted(order):
        by_dim.setdefault(order.nodes[v]["dim"], []).append(v)
    widest = max((len(vs) for vs in by_dim.values()), default=1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(3 + 1.7 * widest, 22), min(2 + 0.9 * len(by_dim), 16)))
    else:
        fig = ax.figure
    pos = {}
    for dim, vs in by_dim.items():
        for p, v in enumerate(vs):
            pos[v] = (p - (len(vs) - 1) / 2, dim)
    for u, v in order.edges:
        (x1, y1), (x2, y2) = pos[u], pos[v]
        ax.plot([x1, x2], [y1, y2], color="0.6", lw=0.7, zorder=1)
    mins = order.graph.get("minimal")
    mins = mins if isinstance(mins, list) else [mins]
    maxs = set(order.graph.get("maximal", []))
    for v, (x, y) in pos.items():
        color = "tab:red" if v in mins else ("tab:green" if v in maxs else "tab:blue")
        ax.scatter([x], [y], s=25, color=color, zorder=3)
        text = order.nodes[v]["label"] if n <= max_labels else str(v)
        ax.annotate(text, (x, y), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=6)
    from matplotlib.ticker import MaxNLocator  # lazy: plotting is heavy, loaded when a figure is drawn

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # room for the labels: half a column beside the outermost nodes, a label's height above the top row
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = sorted({y for _, y in pos.values()}) or [0]
    step = min((b - a for a, b in zip(ys, ys[1:], strict=False)), default=1)
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(ys[0] - 0.3 * step, ys[-1] + 0.45 * step)
    ax.set_ylabel("dimension of stratum")
    ax.set_xticks([])
    ax.set_title(
        f"closure order of the strata (widths {order.graph.get('widths')}, rank {order.graph.get('rank')}): "
        f"{n} strata, {order.number_of_edges()} covers; red = minimal, green = maximal",
        fontsize=9,
    )
    return fig
