"""Strata, barcodes, dimensions and the closure order, checked against the note's worked examples,
brute-force enumeration of rank lists, brute-force transitive reduction, and literature invariants."""

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.errors import ConfigError, ShapeError
from linlens.fibers import LinearNetwork, Stratum, barcode_from_ranks, strata, stratum_order

SMALL = [((1, 1, 1), 0), ((1, 1, 1), 1), ((2, 2, 2), 0), ((2, 2, 2), 1), ((2, 2, 2), 2), ((2, 3, 2), 1),
         ((3, 2, 3), 1), ((2, 1, 2), 0), ((2, 2, 2, 2), 0), ((2, 2, 2, 2), 1), ((1, 2, 2, 1), 1), ((2, 3, 1), 1)]


def test_note_examples():
    assert [s.dim for s in strata((2, 2, 2), 0)] == [5, 4, 4, 3, 3, 0]
    assert [s.dim for s in strata((2, 2, 2), 1)] == [4, 4, 3]
    one = strata((1, 1, 1), 1)
    assert len(one) == 1 and one[0].dim == 1 and one[0].label == "[0,2]"
    assert sorted(s.dim for s in strata((1, 1, 1), 0)) == [0, 1, 1]
    # §7.2 table: barcodes and rank lists
    by_label = {s.label: s for s in strata((2, 2, 2), 0)}
    top = by_label["[0,0] [0,1] [1,2] [2,2]"]
    assert top.dim == 5 and top.rank_list == {(1, 0): 1, (2, 0): 0, (2, 1): 1}
    assert by_label["[0,1]×2 [2,2]×2"].rank_list == {(1, 0): 2, (2, 0): 0, (2, 1): 0}
    r1 = {s.label: s for s in strata((2, 2, 2), 1)}
    assert r1["[0,0] [0,2] [1,1] [2,2]"].dim == 3


def test_koncki_rimanyi_components():
    # {(A, B) 2x2 : AB = 0} has components of codimension 4, 4, 3 (the maximal strata)
    g = stratum_order((2, 2, 2), 0)
    codims = sorted(g.nodes[n]["codim"] for n in g.graph["maximal"])
    assert codims == [3, 4, 4]


@pytest.mark.parametrize("widths", [(2, 3, 1), (1, 2, 3), (2, 2, 3, 1), (1, 2, 2, 3)])
def test_fiber_codimension_permutation_invariant_at_zero(widths):
    # Pepin Lehalleur–Rimányi: the codimension of the fiber over W = 0 is invariant under permuting widths
    codims = {min(s.codim for s in strata(p, 0)) for p in itertools.permutations(widths)}
    assert len(codims) == 1


@pytest.mark.parametrize("widths,rank", SMALL)
def test_enumeration_matches_brute_force_rank_lists(widths, rank):
    L = len(widths) - 1
    keys = [(j, i) for j in range(1, L + 1) for i in range(j)]
    found = set()
    for vals in itertools.product(range(max(widths) + 1), repeat=len(keys)):
        ranks = dict(zip(keys, vals, strict=True))
        if ranks[(L, 0)] != rank:
            continue
        om = barcode_from_ranks(widths, ranks)
        if all(m >= 0 for m in om.values()):
            found.add(tuple(sorted(ranks.items())))
    mine = {tuple(sorted(s.rank_list.items())) for s in strata(widths, rank)}
    assert mine == found


@pytest.mark.parametrize("widths,rank", SMALL)
def test_codim_formulas_agree_and_minimal_unique(widths, rank):
    ss = strata(widths, rank)
    for s in ss:
        assert s.codim == s.codim_ext
        assert s.is_realizable and s.rank == rank
        assert s.layer_sums() == tuple(widths)
    mins = [s for s in ss if all(v == rank for v in s.rank_list.values())]
    assert len(mins) == 1
    g = stratum_order(widths, rank)
    assert g.nodes[g.graph["minimal"]]["stratum"] == mins[0]


def _single_move(lo: Stratum, hi: Stratum) -> bool:
    """Is hi obtained from lo by one merge [a,b]+[b+1,d]→[a,d] or nest {[a,b],[c,d]}→{[a,d],[c,b]}?"""
    a_ms, b_ms = dict(lo.barcode), dict(hi.barcode)
    removed, added = [], []
    for bar in set(a_ms) | set(b_ms):
        diff = b_ms.get(bar, 0) - a_ms.get(bar, 0)
        removed += [bar] * max(-diff, 0)
        added += [bar] * max(diff, 0)
    if len(removed) == 2 and len(added) == 1:
        (p, q), (r, s) = sorted(removed)
        return q + 1 == r and added[0] == (p, s)
    if len(removed) == 2 and len(added) == 2:
        (p, q), (r, s) = sorted(removed)
        return p < r <= q < s and sorted(added) == sorted([(p, s), (r, q)])
    return False


@pytest.mark.parametrize("widths,rank", SMALL + [((3, 3, 3, 3), 1), ((2, 2, 2, 2, 2), 1)])
def test_hasse_is_transitive_reduction_of_dominance_and_edges_are_moves(widths, rank):
    g = stratum_order(widths, rank)
    nodes = list(g)
    R = {n: g.nodes[n]["stratum"].rank_list for n in nodes}
    dom = nx.DiGraph()
    dom.add_nodes_from(nodes)
    for u in nodes:
        for v in nodes:
            if u != v and all(R[u][k] <= R[v][k] for k in R[u]):
                dom.add_edge(u, v)
    red = nx.transitive_reduction(dom)
    assert set(red.edges) == set(g.edges)
    for u, v in g.edges:
        lo, hi = g.nodes[u]["stratum"], g.nodes[v]["stratum"]
        assert _single_move(lo, hi)
        assert hi.dim > lo.dim


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=2, max_size=4), st.integers(0, 3), st.integers(0, 10_000))
def test_random_point_rank_list_equals_stratum(widths, rank, seed):
    rank = min(rank, min(widths))
    ss = strata(widths, rank)
    s = ss[seed % len(ss)]
    w = s.random_point(seed=seed)
    # independent route: ranks of the partial products straight from numpy
    for (j, i), r in s.rank_list.items():
        M = np.eye(widths[i])
        for k in range(i, j):
            M = w[k] @ M
        assert np.linalg.matrix_rank(M, tol=1e-9 * max(1.0, np.abs(M).max())) == r
    assert LinearNetwork(w).stratum() == s


def test_random_point_on_prescribed_fiber():
    W = np.array([[1.0, 2.0], [2.0, 4.0]])
    for s in strata((2, 3, 2), 1):
        w = s.random_point(W=W, seed=4)
        assert np.allclose(w[1] @ w[0], W, atol=1e-12)
        assert LinearNetwork(w).stratum() == s


def test_bad_input():
    with pytest.raises(ConfigError, match="rank"):
        strata((2, 1, 2), 2)
    with pytest.raises(ConfigError, match="widths"):
        strata((2,), 0)
    with pytest.raises(ConfigError, match="widths"):
        strata((2, 0, 2), 0)
    with pytest.raises(ConfigError, match="not realizable"):
        Stratum.from_rank_list((2, 2, 2), {(1, 0): 0, (2, 1): 0, (2, 0): 1})
    with pytest.raises(ConfigError, match="layer sums"):
        Stratum.from_barcode((2, 2, 2), {(0, 2): 1})
    s = strata((2, 2, 2), 1)[0]
    with pytest.raises(ConfigError, match="rank 1"):
        s.random_point(W=np.eye(2))
    with pytest.raises(ShapeError, match="shape"):
        s.random_point(W=np.ones((3, 2)))
