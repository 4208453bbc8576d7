"""Moves keep the product; barcode moves land where the combinatorics says (ranks checked with numpy)."""

import numpy as np
import pytest

from linlens.errors import ConfigError, ShapeError
from linlens.fibers import (
    LinearNetwork,
    apply_barcode_move,
    barcode_moves,
    end_move,
    gl_move,
    is_valid_rank_one,
    rank_one_move,
    strata,
)

CASES = [((1, 1, 1), 0), ((2, 2, 2), 0), ((2, 2, 2), 1), ((2, 3, 2), 1), ((2, 2, 2, 2), 0), ((2, 2, 2, 2), 1),
         ((1, 2, 2, 1), 1), ((2, 3, 3, 2), 1)]


def _ranks(net):
    """Rank list straight from numpy.matrix_rank (independent of linlens' rank decision)."""
    out = {}
    for j in range(1, net.L + 1):
        for i in range(j):
            M = net.subproduct(j, i)
            out[(j, i)] = int(np.linalg.matrix_rank(M, tol=1e-8 * max(1.0, np.abs(M).max())))
    return out


def _same_product(a, b):
    W = a.product()
    return np.linalg.norm(b.product() - W) <= 1e-10 * max(1.0, np.linalg.norm(W))


@pytest.mark.parametrize("widths,rank", CASES)
def test_barcode_moves_keep_product_and_reach_target(widths, rank):
    for n, s in enumerate(strata(widths, rank)):
        net = LinearNetwork(s.random_point(seed=n + 1))
        for mv in barcode_moves(s, "up"):
            assert mv.target.dim > s.dim
            for t in (0.7, -1.9):
                moved = apply_barcode_move(net, mv, t=t)
                assert _same_product(net, moved)
                assert _ranks(moved) == mv.target.rank_list
            small = apply_barcode_move(net, mv, t=1e-6)  # tends to the lower stratum as t → 0
            assert max(np.abs(a - b).max() for a, b in zip(small.weights, net.weights, strict=True)) < 1e-4
        for mv in barcode_moves(s, "down"):
            assert mv.target.dim < s.dim
            moved = apply_barcode_move(net, mv, t=1.0)
            assert _same_product(net, moved)
            assert _ranks(moved) == mv.target.rank_list
            half = apply_barcode_move(net, mv, t=0.5)  # partway it stays on the stratum
            assert _same_product(net, half) and _ranks(half) == s.rank_list


def test_up_and_down_moves_are_inverse_relations():
    for s in strata((2, 2, 2, 2), 1):
        for mv in barcode_moves(s, "up"):
            assert s in [m.target for m in barcode_moves(mv.target, "down")]


def test_no_move_touches_the_full_bar():
    for s in strata((2, 2, 2), 1):
        for d in ("up", "down"):
            for mv in barcode_moves(s, d):
                assert mv.target.rank == 1


def test_gl_and_end_moves_stay_on_stratum():
    rng = np.random.default_rng(0)
    s = strata((2, 3, 3, 2), 1)[3]
    net = LinearNetwork(s.random_point(seed=2))
    moved = gl_move(net, 2, rng.standard_normal((3, 3)) + 3 * np.eye(3))
    assert _same_product(net, moved) and _ranks(moved) == s.rank_list
    W = net.product()
    # G_L W = W G_0: both act by the same scalars on paired singular vectors of the rank-1 W (2 on the top pair)
    U, sv, Vt = np.linalg.svd(W)
    G0 = Vt.T @ np.diag([2.0, 5.0]) @ Vt
    GL = U @ np.diag([2.0, 7.0]) @ U.T
    assert np.allclose(GL @ W, W @ G0)
    moved = end_move(net, G0, GL)
    assert _same_product(net, moved) and _ranks(moved) == s.rank_list
    with pytest.raises(ConfigError, match="G_L W = W G_0"):
        end_move(net, np.eye(2), 2 * np.eye(2))
    with pytest.raises(ConfigError, match="hidden layer"):
        gl_move(net, 0, np.eye(2))
    with pytest.raises(ShapeError, match="shape"):
        gl_move(net, 1, np.eye(2))


def test_rank_one_validity():
    s = strata((2, 2, 2), 0)[0]  # [0,0][0,1][1,2][2,2]
    net = LinearNetwork(s.random_point(seed=0))
    W2, W1 = net.weights[1], net.weights[0]
    u_null = np.linalg.svd(W2)[2][-1]  # W2 u = 0
    v_any = np.array([1.0, -2.0])
    assert is_valid_rank_one(net, 1, u_null, v_any)
    moved = rank_one_move(net, 1, u_null, v_any, t=3.0)
    assert _same_product(net, moved)
    u_bad = np.linalg.svd(W2)[2][0]
    v_bad = np.linalg.svd(W1)[2][0]  # for k = 1 the test vᵀ W_{0,0} = vᵀ I = 0 fails for any v ≠ 0
    assert not is_valid_rank_one(net, 1, u_bad, v_bad)
    with pytest.raises(ConfigError, match="rank-one move"):
        rank_one_move(net, 1, u_bad, v_bad)
    with pytest.raises(ShapeError, match="u must have shape"):
        is_valid_rank_one(net, 1, np.ones(3), v_any)


def test_move_on_wrong_stratum_raises():
    ss = strata((2, 2, 2), 0)
    net = LinearNetwork(ss[0].random_point(seed=0))
    mv = barcode_moves(ss[-1], "up")[0]
    with pytest.raises(ConfigError, match="move starts on"):
        apply_barcode_move(net, mv)
    with pytest.raises(ConfigError, match="direction"):
        barcode_moves(ss[0], "sideways")
