"""Tests of linlens.surrogate.resampling: coverage by simulation against a closed-form truth, paired tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ttest_rel

from linlens.errors import ConfigError
from linlens.surrogate import LinearSurrogate, bootstrap
from linlens.surrogate.resampling import (
    OLSFit,
    closest_reference,
    corrected_data_weighted_error,
    paired_difference,
    paired_mean_difference,
)
from linlens.surrogate.simulation import KnownSurrogate


# ----------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_percentile_spread_and_dict_statistic():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    Y = X @ np.array([[1.5], [-0.5]]) + 0.5 * rng.normal(size=(300, 1))
    res = bootstrap(X, Y, lambda c, b: float(c[0, 0]), n_boot=100, seed=1)
    assert res.low < 1.5 < res.high and res.samples.shape == (100,)
    # the bootstrap standard error matches the analytic OLS one within Monte-Carlo noise
    Xc = X - X.mean(0)
    resid = Y - LinearSurrogate().fit(X, Y).predict(X)
    se = np.sqrt(resid.var() * np.linalg.inv(Xc.T @ Xc)[0, 0])
    assert np.std(res.samples) == pytest.approx(se, rel=0.25)
    res2 = bootstrap(X, Y, lambda c, b: {"a": c[0, 0], "b": b[0]}, n_boot=20, seed=1)
    assert set(res2.low) == {"a", "b"} and res2.samples["a"].shape == (20,)
    np.testing.assert_allclose(res2.samples["a"], res.samples[:20])
    json.dumps(res2.to_dict())


# ------------------------------------------------------------------------- coverage against a known truth
SIM = KnownSurrogate.make(d_in=6, d_out=4, seed=0)
E_DIR = np.random.default_rng(99).normal(size=SIM.C0.shape)


@pytest.mark.parametrize("eps", [1.0, 0.1], ids=["large error", "tiny error (bias 1.5x the truth)"])
def test_interval_covers_the_closed_form_truth(eps):
    """f(y) = C₀y + |Gy| on Gaussian y has population surrogate C₀: the interval must cover the true
    data-weighted error at ≈ its nominal 95% (≥ 85% over 60 repeats; a percentile interval of the plug-in
    covers it far less often, which the second assertion shows)."""
    R = SIM.C0 + eps * E_DIR
    truth = SIM.true_error(R)
    cover, cover_pct = [], []
    for r in range(60):
        Y, F = SIM.sample(300, seed=1000 + r)
        T, _ = SIM.sample(300, seed=5000 + r)
        res = bootstrap(Y, F, lambda fit, Tr: {"R": corrected_data_weighted_error(fit, R, Tr)}, test=T,
                        n_boot=80, seed=r, bias="analytic")
        cover.append(res.low["R"] <= truth <= res.high["R"])
        plug = bootstrap(Y, F, lambda c, b, Tr: {"R": float(np.sum(((Tr - Tr.mean(0)) @ (c - R).T) ** 2)
                                                           / np.sum(((Tr - Tr.mean(0)) @ R.T) ** 2))},
                         test=T, n_boot=80, seed=r)
        q = np.quantile(plug.samples["R"], [0.025, 0.975])
        cover_pct.append(q[0] <= truth <= q[1])
    assert np.mean(cover) >= 0.85, np.mean(cover)
    if eps < 0.5:  # where the bias is as large as the truth, the percentile interval misses
        assert np.mean(cover_pct) < 0.5, np.mean(cover_pct)


@pytest.mark.parametrize("eps", [1.0, 0.1])
def test_corrected_estimate_is_unbiased_and_plug_in_is_not(eps):
    R = SIM.C0 + eps * E_DIR
    truth = SIM.true_error(R)
    pairs = []
    for r in range(1500):
        Y, F = SIM.sample(300, seed=20_000 + r)
        T, _ = SIM.sample(300, seed=40_000 + r)
        pairs.append(corrected_data_weighted_error(OLSFit(Y, F), R, T))
    corrected, plug = np.array(pairs).T
    assert abs(corrected.mean() - truth) < 0.1 * truth
    if eps < 0.5:
        assert plug.mean() > 1.5 * truth  # the plug-in is dominated by the estimation noise of Ĉ


def test_quadratic_bias_matches_homoscedastic_closed_form():
    """For F = Y C + e, e ~ N(0, σ²I): E‖(Ĉ − C)W^½‖² = σ² d_out tr(W (ỸᵀỸ)⁻¹) given the design."""
    rng = np.random.default_rng(3)
    n, d, p, sigma = 120, 4, 3, 0.7
    Y = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    C = rng.normal(size=(p, d))
    W = np.diag([1.0, 2.0, 0.5, 3.0])
    Yc = Y - Y.mean(0)
    expected = sigma**2 * p * np.trace(W @ np.linalg.inv(Yc.T @ Yc))
    est = [OLSFit(Y, Y @ C.T + sigma * rng.normal(size=(n, p))).quadratic_bias(W) for _ in range(3000)]
    assert np.mean(est) == pytest.approx(expected, rel=0.02)
    fit = OLSFit(Y, Y @ C.T + 2.0)
    np.testing.assert_allclose(fit.coef, C, atol=1e-10)
    np.testing.assert_allclose(fit.intercept, 2.0, atol=1e-10)


# ------------------------------------------------------------------------------------ paired tests, verdicts
def _errors(refs):
    def stat(fit, T):
        return {k: corrected_data_weighted_error(fit, R, T) for k, R in refs.items()}
    return stat


def test_zero_map_is_closest_to_no_reference():
    rng = np.random.default_rng(4)
    Y = rng.normal(size=(300, 4))
    refs = {"I": np.eye(4), "2I": 2 * np.eye(4), "M": rng.normal(size=(4, 4))}
    res = bootstrap(Y, np.zeros((300, 4)), _errors(refs), test=Y, n_boot=50, bias="analytic")
    for k in refs:
        assert res.bias_corrected[k] == pytest.approx(1.0)
    v = closest_reference(res, list(refs))
    assert v.verdict == "none" and v.closest == ()


def test_verdicts_tie_and_clear_winner():
    """Two references at exactly the same population distance tie; a clearly nearer one wins."""
    R_plus, R_minus = SIM.C0 + 0.5 * E_DIR, SIM.C0 - 0.5 * E_DIR
    R_near = SIM.C0 + 0.1 * E_DIR
    assert SIM.true_error(R_plus) > 0.1 and SIM.true_error(R_near) < SIM.true_error(R_plus) / 5
    Y, F = SIM.sample(600, seed=7)
    T, _ = SIM.sample(600, seed=8)
    res = bootstrap(Y, F, _errors({"+": R_plus, "−": R_minus, "near": R_near}), test=T, n_boot=150,
                    bias="analytic")
    assert closest_reference(res, ["+", "near", "−"]).verdict == "near"
    v = closest_reference(res, ["+", "−"])
    assert v.verdict in ("tie", "+", "−")
    d = paired_difference(res, "+", "−")
    # in population the two are equally far only relative to their own norms; check against the closed form
    true_diff = SIM.true_error(R_plus) - SIM.true_error(R_minus)
    assert d.low <= true_diff <= d.high
    assert (v.verdict == "tie") == (d.low <= 0 <= d.high)
    json.dumps(v.to_dict())


def test_paired_difference_is_tighter_than_marginal_overlap():
    """Strongly correlated errors: marginal intervals overlap but the paired interval excludes 0."""
    Y, F = SIM.sample(800, seed=11)
    T, _ = SIM.sample(800, seed=12)
    R1 = SIM.C0 + 0.30 * E_DIR
    R2 = SIM.C0 + 0.33 * E_DIR
    res = bootstrap(Y, F, _errors({"a": R1, "b": R2}), test=T, n_boot=200, bias="analytic")
    overlap = res.low["b"] <= res.high["a"]
    d = paired_difference(res, "b", "a")
    truth = SIM.true_error(R2) - SIM.true_error(R1)
    assert overlap and d.low > 0 and d.low <= truth <= d.high and d.p_value < 0.05


def test_paired_mean_difference_matches_scipy_ttest_rel():
    rng = np.random.default_rng(5)
    a = rng.exponential(size=200)
    b = a + rng.normal(0.05, 0.2, size=200)
    d = paired_mean_difference(b, a, "b", "a")
    ref = ttest_rel(b, a)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    with pytest.raises(Exception, match="paired"):
        paired_mean_difference(a, b[:-1])


def test_bad_arguments():
    Y, F = SIM.sample(50, seed=1)
    with pytest.raises(ConfigError):
        bootstrap(Y, F, lambda c, b: 0.0, n_boot=1)
    with pytest.raises(ConfigError):
        bootstrap(Y, F, lambda fit: {"a": 1.0}, bias="analytic")  # must return (corrected, plug_in)
    with pytest.raises(ConfigError):
        bootstrap(Y, F, lambda fit: {"a": (1.0, 1.0)}, bias="analytic", alpha=1.0)
    with pytest.raises(ConfigError):
        bootstrap(Y, F, lambda c, b: 0.0, test=Y)  # statistic must take the test rows


def test_corrected_error_from_a_shared_covariance_equals_the_one_from_probes():
    """Several references on one set of probes: Σ (and the leverage weights under it) computed once give the same
    numbers as each call computing its own; exactly one of probes / covariance is accepted."""
    from linlens.surrogate.compare import probe_covariance

    rng = np.random.default_rng(3)
    Y, T = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) + 2.0
    fit = OLSFit(Y, Y @ rng.normal(size=(4, 3)) + 0.3 * rng.normal(size=(300, 3)))
    S = probe_covariance(T)[0]
    for R in (rng.normal(size=(3, 4)), fit.coef + 0.01, np.zeros((3, 4)) + 1.0):
        a = corrected_data_weighted_error(fit, R, T)
        b = corrected_data_weighted_error(fit, R, covariance=S)
        assert a == pytest.approx(b, rel=1e-13)
    with pytest.raises(ConfigError):
        corrected_data_weighted_error(fit, R)
    with pytest.raises(ConfigError):
        corrected_data_weighted_error(fit, R, T, covariance=S)


@pytest.mark.parametrize("n", [12, 20, 50])
def test_hc2_bias_is_unbiased_in_small_samples(n):
    """HC2 with the intercept's leverage 1/n: the mean bias estimate equals the closed form σ² d_out tr(W(ỸᵀỸ)⁻¹)
    within 2% even at n = 12 (without the 1/n it was 12% short there). 6000 noise draws on one design; the Monte
    Carlo s.e. of the mean is < 0.5%."""
    rng = np.random.default_rng(n)
    d, p, sigma = 3, 3, 0.5
    Y = rng.normal(size=(n, d))
    C = rng.normal(size=(p, d))
    W = np.diag([1.0, 2.0, 0.5])
    Yc = Y - Y.mean(0)
    expected = sigma**2 * p * np.trace(W @ np.linalg.inv(Yc.T @ Yc))
    est = np.array([OLSFit(Y, Y @ C.T + 1.0 + sigma * rng.normal(size=(n, p))).quadratic_bias(W)
                    for _ in range(6000)])
    assert est.std() / np.sqrt(len(est)) < 0.005 * expected
    assert est.mean() == pytest.approx(expected, rel=0.02)
