"""Paired tests against hand computations (exact binomial sums, the t formula), scipy's ttest_rel, and
simulations with a known truth (null rejection rate, interval coverage)."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, ShapeError
from linlens.stats import mcnemar, paired_squared_error_test


def _exact_two_sided(b: int, c: int) -> float:
    """Hand computation: 2·P(X ≤ min(b, c)) for X ~ Bin(b + c, 1/2), capped at 1."""
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    return min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2**m)


def _pairs(n: int, b: int, c: int, both: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros(n, bool)
    bb = np.zeros(n, bool)
    a[:b] = True  # A right, B wrong
    bb[b: b + c] = True  # A wrong, B right
    a[b + c: b + c + both] = True
    bb[b + c: b + c + both] = True
    perm = np.random.default_rng(n + b + c).permutation(n)
    return a[perm], bb[perm]


@pytest.mark.parametrize("b,c", [(0, 0), (3, 0), (10, 4), (4, 10), (25, 25), (12, 30), (1, 1)])
def test_mcnemar_counts_and_exact_p_match_hand_computation(b, c):
    a, bb = _pairs(200, b, c, 150)
    r = mcnemar(a, bb)
    assert (r.b, r.c, r.n) == (b, c, 200)
    assert r.p_value == pytest.approx(_exact_two_sided(b, c), rel=1e-12)
    assert r.difference == pytest.approx((b - c) / 200)
    assert r.accuracy_a - r.accuracy_b == pytest.approx(r.difference)


def test_mcnemar_textbook_example():
    # b = 10, c = 2: exact two-sided p = 2·(1 + 12 + 66)/4096 = 0.03857
    a, bb = _pairs(100, 10, 2, 80)
    assert mcnemar(a, bb).p_value == pytest.approx(2 * 79 / 4096, rel=1e-12)


def test_mcnemar_agresti_min_interval_by_hand():
    a, bb = _pairs(100, 10, 2, 80)
    r = mcnemar(a, bb)
    n2, b2, c2 = 102, 10.5, 2.5
    d = (b2 - c2) / n2
    se = math.sqrt(b2 + c2 - (b2 - c2) ** 2 / n2) / n2
    assert (r.ci_low, r.ci_high) == pytest.approx((d - 1.959963984540054 * se, d + 1.959963984540054 * se))


def test_mcnemar_null_rejection_rate_at_most_nominal():
    # two classifiers with the same accuracy and correlated errors: p < 0.05 in at most ~5% of repeats
    rng = np.random.default_rng(0)
    rej = 0
    reps = 400
    for _ in range(reps):
        common = rng.random(300) < 0.85
        flip_a = rng.random(300) < 0.1
        flip_b = rng.random(300) < 0.1
        rej += mcnemar(common ^ flip_a, common ^ flip_b).p_value < 0.05
    assert rej / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)


def test_mcnemar_interval_covers_true_difference():
    # A right w.p. 0.9, B right w.p. 0.85, correlated: true difference 0.05
    rng = np.random.default_rng(1)
    cover, reps = 0, 400
    for _ in range(reps):
        u = rng.random(500)
        a = u < 0.9
        bb = (u < 0.8) | ((u >= 0.9) & (u < 0.95))  # P(B right) = 0.85
        r = mcnemar(a, bb)
        cover += r.ci_low <= 0.05 <= r.ci_high
    assert cover / reps >= 0.92


def test_mcnemar_detects_a_real_difference():
    rng = np.random.default_rng(2)
    u = rng.random(1000)
    assert mcnemar(u < 0.95, u < 0.90).p_value < 1e-6


def test_mcnemar_bad_input():
    with pytest.raises(ShapeError):
        mcnemar([1, 0], [1, 0, 1])
    with pytest.raises(ConfigError):
        mcnemar([0.5, 1.0], [1, 0])
    with pytest.raises(EmptyInputError):
        mcnemar([], [])
    with pytest.raises(ConfigError):
        mcnemar([1], [1], confidence=1.5)


def test_paired_test_matches_scipy_ttest_rel_and_hand_interval():
    rng = np.random.default_rng(3)
    ea = rng.exponential(1.0, 200)
    eb = ea + rng.normal(0.1, 0.5, 200)
    r = paired_squared_error_test(ea, eb)
    ref = sps.ttest_rel(ea, eb)
    assert r.t_statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    d = ea - eb
    se = d.std(ddof=1) / math.sqrt(200)
    q = sps.t.ppf(0.975, 199)
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - q * se, d.mean() + q * se), rel=1e-12)
    assert r.mean_a - r.mean_b == pytest.approx(r.difference)


def test_paired_test_null_rejection_and_coverage():
    rng = np.random.default_rng(4)
    rej = cover = 0
    reps = 300
    for _ in range(reps):
        x = rng.normal(size=(100, 2))
        ea = (x[:, 0] + 0.3 * rng.normal(size=100)) ** 2
        eb = (x[:, 0] + 0.3 * rng.normal(size=100)) ** 2  # same distribution: true difference 0
        r = paired_squared_error_test(ea, eb)
        rej += r.p_value < 0.05
        cover += r.ci_low <= 0.0 <= r.ci_high
    assert rej / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)
    assert cover / reps >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / reps)


def test_paired_test_degenerate_and_bad_input():
    r = paired_squared_error_test([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert r.p_value == 0.0 and r.difference == 1.0
    with pytest.raises(NonFiniteError):
        paired_squared_error_test([1.0, np.nan], [1.0, 1.0])
    with pytest.raises(EmptyInputError):
        paired_squared_error_test([1.0], [1.0])
    with pytest.raises(ShapeError):
        paired_squared_error_test([1.0, 2.0], [1.0])


# ------------------------------------------------------------------------------------------------- Holm
def test_holm_equals_closed_testing_with_bonferroni_local_tests():
    """Holm's adjusted p of H_i is max over subsets J ∋ i of min(1, |J| min_{j∈J} p_j) (closed testing with
    Bonferroni local tests, Marcus, Peritz & Gabriel 1976): brute force over every subset."""
    import itertools

    from linlens.stats import holm

    rng = np.random.default_rng(0)
    for m in (1, 2, 3, 5):
        for _ in range(30):
            p = rng.uniform(0, 0.2, size=m) ** rng.uniform(0.5, 2)
            brute = [max(min(1.0, len(J) * min(p[j] for j in J))
                         for r in range(1, m + 1) for J in itertools.combinations(range(m), r) if i in J)
                     for i in range(m)]
            np.testing.assert_allclose(holm(p), brute, rtol=1e-12)


def test_holm_controls_the_family_wise_error_under_independent_nulls():
    from linlens.stats import holm

    rng = np.random.default_rng(1)
    n = 4000
    fwer = np.mean([(holm(rng.uniform(size=15)) < 0.05).any() for _ in range(n)])
    naive = np.mean([(rng.uniform(size=15) < 0.05).any() for _ in range(n)])
    assert fwer <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n) and naive > 0.4
