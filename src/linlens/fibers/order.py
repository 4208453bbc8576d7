"""The closure order of the strata of a fiber, and the barcode moves that connect neighbouring strata.

``S' ⊆ closure(S)`` iff every rank of ``S'`` is at most the same rank of ``S``. Combinatorial barcode moves
go up the order (merge ``[a,b] + [b+1,d] → [a,d]``, nest ``{[a,b],[c,d]} → {[a,d],[c,b]}``) or down (cut,
un-nest), never touching a full bar ``[0, L]``; every cover of the order is one such move. Their
realisation in weight space is :func:`linlens.fibers.moves.apply_barcode_move`.

References:
    | The Hierarchy of Manifolds in a Stratification of the Set of Equivalent Linear Neural Networks
    | (Bhattacharya & Shewchuk, SoCG 2026) https://doi.org/10.4230/LIPIcs.SoCG.2026.91

    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from linlens.errors import ConfigError
from linlens.fibers.barcode import Bar, Stratum, strata

__all__ = ["BarcodeMove", "barcode_moves", "stratum_order"]


@dataclass(frozen=True)
class BarcodeMove:
    """A single change of barcode between neighbouring strata.

    Attributes:
        kind: ``"merge"``, ``"nest"`` (up the order) or ``"cut"``, ``"unnest"`` (down).
        bars: the bars involved: merge/nest ``([a,b], [c,d])`` (``[a,b]`` ends at ``b``, its successor runs to
            ``d``); cut ``([a,d], [b,b])`` (cut after layer ``b``); unnest ``([a,d], [c,b])`` (``[c,b]`` nested).
        source, target: the strata before and after.

    Example:
        >>> s = Stratum.from_barcode((2, 2, 2), {(0, 0): 1, (0, 2): 1, (1, 1): 1, (2, 2): 1})
        >>> m = barcode_moves(s, "up")[0]  # [0,0] and [1,1] merge into [0,1]
        >>> m.kind, m.bars, m.direction, m.to_dict()["target"]
        ('merge', ((0, 0), (1, 1)), 'up', '[0,1] [0,2] [2,2]')
    """

    kind: str
    bars: tuple[Bar, Bar]
    source: Stratum
    target: Stratum

    @property
    def direction(self) -> str:
        """``"up"`` or ``"down"``."""
        return "up" if self.kind in ("merge", "nest") else "down"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, written by hand on purpose: the strata by their labels, not in full."""
        return {
            "kind": self.kind,
            "bars": [list(b) for b in self.bars],
            "source": self.source.label,
            "target": self.target.label,
        }


def _replace(st: Stratum, remove: list[Bar], add: list[Bar]) -> Stratum:
    m = dict(st.barcode)
    for b in remove:
        m[b] -= 1
    for b in add:
        m[b] = m.get(b, 0) + 1
    return Stratum(st.widths, tuple(sorted((b, k) for b, k in m.items() if k > 0)))


def barcode_moves(stratum: Stratum, direction: str = "up") -> list[BarcodeMove]:
    """All single barcode moves from ``stratum`` in one direction of the closure order.

    Arguments:
        stratum: the starting stratum.
        direction: ``"up"`` (merge, nest) or ``"down"`` (cut, un-nest).

    Returns:
        list of :class:`BarcodeMove`, one per distinct target.

    Example:
        >>> s = Stratum.from_barcode((2, 2, 2), {(0, 0): 1, (0, 2): 1, (1, 1): 1, (2, 2): 1})
        >>> sorted(m.target.dim for m in barcode_moves(s, "up"))
        [4, 4]
    """
    if direction not in ("up", "down"):
        raise ConfigError(f"direction must be 'up' or 'down'; got {direction!r}")
    L = stratum.L
    full = (0, L)
    present = [bar for bar, _ in stratum.barcode]
    mult = dict(stratum.barcode)
    out: dict[tuple, BarcodeMove] = {}
    if direction == "up":
        for a, b in present:
            for c, d in present:
                if (a, b) == (c, d) and mult[(a, b)] < 2:
                    continue
                if c == b + 1 and (a, d) != full:  # merge
                    t = _replace(stratum, [(a, b), (c, d)], [(a, d)])
                    out.setdefault(t.barcode, BarcodeMove("merge", ((a, b), (c, d)), stratum, t))
                elif a < c <= b < d and (a, d) != full:  # nest
                    t = _replace(stratum, [(a, b), (c, d)], [(a, d), (c, b)])
                    out.setdefault(t.barcode, BarcodeMove("nest", ((a, b), (c, d)), stratum, t))
    else:
        for a, d in present:
            if (a, d) == full:
                continue
            for b in range(a, d):  # cut after layer b
                t = _replace(stratum, [(a, d)], [(a, b), (b + 1, d)])
                out.setdefault(t.barcode, BarcodeMove("cut", ((a, d), (b, b)), stratum, t))
            for c, b in present:
                if a < c <= b < d:
                    t = _replace(stratum, [(a, d), (c, b)], [(a, b), (c, d)])
                    out.setdefault(t.barcode, BarcodeMove("unnest", ((a, d), (c, b)), stratum, t))
    return list(out.values())


def _rank_matrix(items: list[Stratum]) -> np.ndarray:
    keys = sorted(items[0].rank_list)
    return np.array([[s.rank_list[k] for k in keys] for s in items], dtype=np.int64)


def stratum_order(widths: Sequence[int], rank: int) -> nx.DiGraph:
    """The closure order of the strata of a rank-``rank`` fiber, as its Hasse diagram.

    ``S' ⊆ closure(S)`` iff ``r'_ji ≤ r_ji`` for all ``i < j``. Edges go from the lower stratum to the
    stratum that covers it. Candidate covers are the single down-moves (cut, un-nest) of each stratum;
    a candidate is kept when no stratum lies strictly between (checked on the rank lists).

    References:
        | The Hierarchy of Manifolds in a Stratification of the Set of Equivalent Linear Neural Networks
        | (Bhattacharya & Shewchuk, SoCG 2026) https://doi.org/10.4230/LIPIcs.SoCG.2026.91

    Arguments:
        widths: ``(d_0, …, d_L)``.
        rank: rank of the product.

    Returns:
        ``networkx.DiGraph`` with nodes ``0..n−1`` (in the order of :func:`strata`) carrying ``stratum``,
        ``label`` (barcode text), ``dim`` and ``codim``; edge attribute ``move`` names the barcode move;
        graph attributes ``minimal`` (node of the unique minimal stratum), ``maximal`` (list), ``widths``, ``rank``.

    Example:
        >>> g = stratum_order((2, 2, 2), 0)
        >>> g.number_of_nodes(), g.nodes[g.graph["minimal"]]["dim"]
        (6, 0)
    """
    items = strata(widths, rank)
    g = nx.DiGraph(widths=list(items[0].widths), rank=int(rank))
    index = {s.barcode: n for n, s in enumerate(items)}
    for n, s in enumerate(items):
        g.add_node(n, stratum=s, label=s.label, dim=s.dim, codim=s.codim)
    R = _rank_matrix(items)
    for hi, s in enumerate(items):
        below = np.flatnonzero((R <= R[hi]).all(axis=1))
        below = below[below != hi]
        Rb = R[below]
        for mv in barcode_moves(s, "down"):
            lo = index[mv.target.barcode]
            between = (Rb >= R[lo]).all(axis=1) & (Rb != R[lo]).any(axis=1)
            if not between.any():
                g.add_edge(lo, hi, move=mv.kind, bars=[list(b) for b in mv.bars])
    minimal = [n for n in g if g.in_degree(n) == 0]
    g.graph["minimal"] = minimal[0] if len(minimal) == 1 else minimal
    g.graph["maximal"] = [n for n in g if g.out_degree(n) == 0]
    return g
