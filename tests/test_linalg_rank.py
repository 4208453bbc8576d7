"""Tests of linlens.linalg.rank against numpy.linalg.matrix_rank, closed forms and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.errors import ConfigError
from linlens.linalg import default_tol, gap_at, numerical_rank, numerical_ranks


# --------------------------------------------------------------------------------------- numerical rank
@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 12), n=st.integers(2, 12), data=st.data())
def test_rank_of_product_of_random_factors(m, n, data):
    r = data.draw(st.integers(0, min(m, n)))
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, r)) @ rng.normal(size=(r, n))
    info = numerical_rank(A)
    assert info.rank == r
    assert info.rank == np.linalg.matrix_rank(A)
    if 0 < r < min(m, n):
        assert info.gap > 1e8


def test_rank_gap_and_vector_input():
    s = np.array([1.0, 0.5, 1e-3, 1e-20])
    info = numerical_rank(s, shape=(10, 4))
    assert info.rank == 3
    assert info.gap == pytest.approx(1e-3 / 1e-20)
    assert info.tol == pytest.approx(10 * np.finfo(float).eps)
    assert numerical_rank(s, tol=1e-2).rank == 2
    assert numerical_rank(s, tol=1e-2).gap == pytest.approx(0.5 / 1e-3)
    assert numerical_rank(s, tol=0.0).rank == 4 and numerical_rank(s, tol=0.0).gap == np.inf
    full = numerical_rank(np.array([2.0, 1.0]))
    assert full.rank == 2 and full.gap == np.inf
    zero = numerical_rank(np.zeros((3, 2)))
    assert zero.rank == 0 and zero.gap == np.inf
    below = numerical_rank(np.array([1.0, 0.5]), tol=4.0)
    assert below.rank == 0 and below.gap == pytest.approx(4.0)
    assert set(full.to_dict()) == {"rank", "tol", "gap", "singular_values", "threshold", "rule"}
    assert full.to_dict()["gap"] is None  # inf is not JSON


# ------------------------------------------------------------------------------- rules and one meaning of tol
@settings(max_examples=40, deadline=None)
@given(s=st.lists(st.floats(0.0, 1e3), min_size=1, max_size=12), frac=st.floats(0.01, 1.0))
def test_energy_rule_is_the_smallest_rank_reaching_the_fraction(s, frac):
    s = np.sort(np.array(s))[::-1]
    info = numerical_rank(s, rule="energy", energy=frac)
    if s @ s == 0:
        assert info.rank == 0
        return
    cum = np.cumsum(s**2) / np.sum(s**2)
    r = info.rank
    assert cum[r - 1] >= frac * (1 - 1e-12) and (r == 1 or cum[r - 2] < frac * (1 + 1e-12))
    assert info.rule == "energy" and info.singular_values.tolist() == s.tolist()


def test_optimal_rule_matches_pydmd_and_closed_form():
    rng = np.random.default_rng(4)
    n, d = 400, 60
    X = rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) * 3.0 + 0.05 * rng.normal(size=(n, d))
    s = np.linalg.svd(X, compute_uv=False)
    info = numerical_rank(s, rule="optimal", shape=X.shape)
    assert info.rank == 4 and info.gap > 10
    beta = d / n
    tau = (0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43) * np.median(s)
    assert info.threshold == pytest.approx(tau) and info.rank == int(np.sum(s > tau))
    pydmd_utils = pytest.importorskip("pydmd.utils")
    assert info.rank == pydmd_utils._compute_rank(s, d, n, 0)


def test_tol_is_relative_everywhere():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 3)) @ np.diag([1.0, 1e-3, 1e-9]) @ rng.normal(size=(3, 6))
    for t in (1e-12, 1e-6, 1e-2):
        ranks = {numerical_rank(c * A, tol=t).rank for c in (1e-8, 1.0, 1e8)}
        assert len(ranks) == 1  # scale-invariant: tol multiplies σ_max
        assert numerical_rank(A, tol=t).rank == np.linalg.matrix_rank(A, rtol=t)
    info = numerical_rank(np.array([4.0, 2.0, 1.0]), tol=0.3, scale=10.0)  # cut 0.3·10 = 3
    assert info.rank == 1 and info.threshold == pytest.approx(3.0) and info.tol == pytest.approx(0.3)
    assert default_tol((10, 4)) == pytest.approx(10 * np.finfo(np.float64).eps)
    assert default_tol((10, 4), torch.float32) == pytest.approx(10 * np.finfo(np.float32).eps)
    with pytest.raises(ConfigError):
        numerical_rank(np.ones(3), rule="magic")
    with pytest.raises(ConfigError):
        numerical_rank(np.ones(3), rule="energy")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 5), seed=st.integers(0, 10**6), zero=st.booleans())
def test_batched_ranks_equal_one_at_a_time(n, k, seed, zero):
    rng = np.random.default_rng(seed)
    s = np.sort(np.abs(rng.normal(size=(n, k))) * 10.0 ** rng.integers(-20, 1, size=(n, k)), axis=1)[:, ::-1]
    if zero:
        s[0] = 0.0
    ranks, gaps = numerical_ranks(s, shape=(k + 2, k))
    for i in range(n):
        info = numerical_rank(s[i], shape=(k + 2, k))
        assert ranks[i] == info.rank
        assert gaps[i] == pytest.approx(info.gap)


def test_gap_at_a_given_cut_agrees_with_the_rank_rule():
    s = np.array([5.0, 4.0, 1e-3, 1e-9, 0.0])
    for t in (1e-12, 1e-6, 1e-2, 0.5):
        info = numerical_rank(s, tol=t)
        assert gap_at(s, info.rank) == pytest.approx(info.gap) or info.rank == 0
    assert gap_at(s, 1) == pytest.approx(5.0 / 4.0)
    assert gap_at(s, 4) == np.inf and gap_at(s, 5) == np.inf and gap_at(s, 0) == np.inf
    assert gap_at(torch.tensor([2.0, 1.0]), 1) == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        gap_at(s, 6)
