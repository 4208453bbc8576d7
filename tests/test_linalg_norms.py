"""Overflow-safe squared norms (linlens.linalg.norms) against exact rational arithmetic."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.linalg import ratio_of_sq_norms, scaled_sq_norm


def _exact_ratio(num, den):
    """‖num‖²/‖den‖² in exact rational arithmetic (an independent route: no floating point squares)."""
    n = sum(Fraction(float(v)) ** 2 for v in np.ravel(num))
    d = sum(Fraction(float(v)) ** 2 for v in np.ravel(den))
    try:
        return float(n / d)
    except OverflowError:  # the true ratio is beyond float64: inf is the right answer
        return float("inf")


def test_tiny_and_huge_inputs_give_the_true_ratio():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(50)
    e = rng.standard_normal(50)
    truth = _exact_ratio(e, y)
    for scale in (1e-170, 1e-300, 1.0, 1e170, 1e300):
        num, den = e * scale, y * scale
        with np.errstate(all="ignore"):
            naive = np.sum(num**2) / np.sum(den**2) if scale != 1.0 else truth
        assert ratio_of_sq_norms(num, den) == pytest.approx(truth, rel=1e-13), scale
        if scale in (1e-170, 1e-300, 1e170, 1e300):  # what squaring first does: 0/0 or inf/inf
            assert not np.isfinite(naive) or naive == 0 or np.isnan(naive)
    # the case: tiny inputs whose true data-weighted error is 1
    y = np.full(20, 1e-170)
    assert ratio_of_sq_norms(y, y) == 1.0
    assert ratio_of_sq_norms(np.zeros(3), np.zeros(3)) != ratio_of_sq_norms(np.zeros(3), np.zeros(3))  # nan
    assert ratio_of_sq_norms(np.ones(3), np.zeros(3)) == np.inf


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12),
       st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12),
       st.integers(-290, 290))
def test_ratio_matches_exact_arithmetic(a, b, k):
    a, b = np.array(a) * 10.0**k, np.array(b) * 10.0**k
    if not np.any(b) or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        return
    want = _exact_ratio(a, b)
    got = ratio_of_sq_norms(a, b)
    assert got == want if want == float("inf") else got == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_scaled_sq_norm_per_axis():
    a = np.array([[3e-200, 0.0], [4e-200, 2.0]])
    s, q = scaled_sq_norm(a, axis=0)
    np.testing.assert_allclose(s, [4e-200, 2.0])
    np.testing.assert_allclose(q, [25 / 16, 1.0])
    r = ratio_of_sq_norms(a, 2 * a, axis=0)
    np.testing.assert_allclose(r, [0.25, 0.25])
