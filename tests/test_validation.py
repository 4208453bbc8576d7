"""Overflow-safe squared norms (the helper behind data-weighted errors) and the option checks."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.errors import ComplexInputError, ConfigError, MemoryLimitError
from linlens.validation import (
    as_array,
    check_device,
    check_memory,
    check_seed,
    parse_bytes,
    ratio_of_sq_norms,
    scaled_sq_norm,
)


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


def test_option_checks():
    for bad in ("", "nonsense", "meta", "cuda:x", "cpu "):
        if bad == "cpu ":
            assert check_device(bad) == "cpu"
            continue
        with pytest.raises(ConfigError):
            check_device(bad)
    for bad in (-1, 2**64, 1.5, True):
        with pytest.raises(ConfigError):
            check_seed(bad)
    assert check_seed(0) == 0
    assert parse_bytes("4G") == 4 * 2**30 and parse_bytes("512MiB") == 512 * 2**20
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(ConfigError):
            parse_bytes(bad)
    with pytest.raises(MemoryLimitError, match="--max-memory"):
        check_memory(2e9, "a Gram matrix", limit=2**30)


def test_complex_is_refused_not_cast():
    with pytest.raises(ComplexInputError):
        as_array(np.array([[1 + 1j]]), "X")
    with pytest.raises(ComplexInputError):
        as_array([[1j, 2.0]], "X")
    assert as_array(np.array([[1 + 1j]]), "X", dtype=np.complex128)[0, 0] == 1 + 1j


def test_meta_tensors_are_refused_by_the_api():
    import torch

    from linlens.errors import ModelError, ShapeError
    from linlens.probing import probe_model

    meta = torch.empty(4, 2, device="meta")
    with pytest.raises(ShapeError, match="meta"):
        as_array(meta, "X")
    with pytest.raises(ShapeError, match="meta"):
        list(probe_model(torch.nn.Linear(2, 1), meta))
    with pytest.raises(ModelError, match="meta"):
        list(probe_model(torch.nn.Linear(2, 1, device="meta"), np.ones((3, 2))))
