"""Tests of linlens.linalg.rank against numpy.linalg.matrix_rank, closed forms and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.linalg import numerical_rank


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
