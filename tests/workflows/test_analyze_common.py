"""linlens.workflows.analyze_common: the streamed statistics behind every surrogate route, against independent
routes — scikit-learn's r2_score and LinearRegression on the same rows, numpy's covariance, the rows' own
hold-out rule applied by hand — and with Gram and TSQR accumulators alike."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from linlens.errors import MemoryLimitError
from linlens.workflows.analyze_common import (
    N_GROUPS,
    BlockStats,
    block_stats,
    check_analyze_memory,
    fit_surrogate,
    grouped_possible,
    grouped_shift,
    holdout_mask,
    input_covariance,
    input_warnings,
    merge_stats,
    r2_and_split,
    r2_from_stats,
)

RNG = np.random.default_rng(0)
Y = RNG.normal(size=(700, 4)) * [1.0, 2.0, 0.5, 3.0] + 1.0
F = np.tanh(Y @ RNG.normal(size=(4, 3))) + 0.05 * RNG.normal(size=(700, 3))  # not linear: R² < 1


@pytest.mark.parametrize("mode", ["gram", "qr"])
def test_fit_and_r2_equal_scikit_learn_on_the_same_rows(mode):
    st = block_stats(Y, F, 0, seed=3, n=len(Y), mode=mode)
    sur, msgs = fit_surrogate(st.full(), fit_intercept=True)
    ref = LinearRegression().fit(Y, F)
    np.testing.assert_allclose(sur.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sur.intercept_, ref.intercept_, rtol=1e-9, atol=1e-12)
    # in-sample R² of that fit: scikit-learn's pooled ("variance_weighted") and per-output scores
    r2, per = r2_from_stats(st.full(), sur.coef_, sur.intercept_)
    P = ref.predict(Y)
    assert r2 == pytest.approx(r2_score(F, P, multioutput="variance_weighted"), rel=1e-10)
    np.testing.assert_allclose(per, r2_score(F, P, multioutput="raw_values"), rtol=1e-10)
    assert msgs == [] and 0.3 < r2 < 0.999


@pytest.mark.parametrize("mode", ["gram", "qr"])
def test_held_out_r2_is_the_training_fit_scored_on_the_held_out_rows(mode):
    held = holdout_mask(0, len(Y), seed=3)
    a = block_stats(Y[:250], F[:250], 0, seed=3, n=len(Y), mode=mode)  # two blocks: rows keep their index
    b = block_stats(Y[250:], F[250:], 250, seed=3, n=len(Y), mode=mode)
    st = merge_stats(a, b)
    r2, per, info, _ = r2_and_split(st, fit_surrogate(st.full(), True)[0], True, seed=3)
    ref = LinearRegression().fit(Y[~held], F[~held])
    assert info["kind"] == "held-out" and info["n_held_out"] == held.sum()
    assert r2 == pytest.approx(r2_score(F[held], ref.predict(Y[held]), multioutput="variance_weighted"), rel=1e-9)


def test_input_covariance_is_the_rows_covariance():
    for mode in ("gram", "qr"):
        st = block_stats(Y, F, 0, seed=0, n=len(Y), mode=mode)
        np.testing.assert_allclose(input_covariance(st.full()), np.cov(Y.T, bias=True), rtol=1e-10)


def test_input_warnings_name_what_is_wrong():
    Yc = Y.copy()
    Yc[:, 2] = 5.0  # a constant column
    Yc[:, 3] = 2 * Yc[:, 0]  # a collinear one
    acc = block_stats(Yc, F, 0, seed=0, n=len(Y)).full()
    sur, msgs = fit_surrogate(acc, True)
    codes = [w["code"] for w in input_warnings(acc, sur, np.ones(3), msgs)[0]]
    assert "constant_input_columns" in codes and "rank_deficient" in codes
    good = block_stats(Y, F, 0, seed=0, n=len(Y)).full()
    assert input_warnings(good, fit_surrogate(good, True)[0], np.ones(3), [])[0] == []


def test_memory_bounds_are_the_stated_formulas():
    d_in, d_out, batch = 50, 20, 100
    need = 8.0 * (6 * 70**2 + 4 * batch * 70)
    check_analyze_memory(d_in, d_out, batch, int(need) + 1)
    with pytest.raises(MemoryLimitError):
        check_analyze_memory(d_in, d_out, batch, int(need) - 1)
    grouped = 8.0 * (2 * N_GROUPS + 2) * d_in * (d_in + d_out)
    assert grouped_possible(d_in, d_out, int(grouped))[0] and not grouped_possible(d_in, d_out, int(grouped) - 1)[0]


def test_block_stats_into_equals_merging_per_block_partials():
    """block_stats(..., into=stats) adds a block in place: the same statistics as merging per-block partials and as
    numpy's covariance of the training / held-out rows (the grouped sums too)."""
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(900, 4)) + 2.0
    F = Y @ rng.normal(size=(4, 3)) + 0.1 * rng.normal(size=(900, 3))
    shift = grouped_shift(Y)
    merged, inplace = BlockStats(), BlockStats()
    for s in range(0, 900, 250):
        merged.merge(block_stats(Y[s:s + 250], F[s:s + 250], s, seed=1, n=900, shift=shift))
        assert block_stats(Y[s:s + 250], F[s:s + 250], s, seed=1, n=900, shift=shift, into=inplace) is inplace
    held = holdout_mask(0, 900, 1)
    Z = np.hstack([Y, F])
    for acc_a, acc_b, rows in ((merged.train, inplace.train, ~held), (merged.held, inplace.held, held)):
        truth = np.cov(Z[rows].T, bias=True) * rows.sum()
        np.testing.assert_allclose(acc_b.S, truth, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(acc_b.S, acc_a.S, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inplace.grouped.zz, merged.grouped.zz, rtol=1e-12)
    np.testing.assert_allclose(inplace.full().S, np.cov(Z.T, bias=True) * 900, rtol=1e-12, atol=1e-12)
