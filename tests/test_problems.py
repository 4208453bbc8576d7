import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.errors import ConfigError
from linlens.problems import (
    GaussianPrior,
    InverseProblem,
    PiecewiseConstantPrior,
    SmoothPrior,
    SparsePrior,
    gaussian_blur,
    prescribed_spectrum,
    second_difference,
    vandermonde,
    wiener_estimator,
)


def test_second_difference_closed_form_spectrum():
    n = 20
    k = np.arange(1, n + 1)
    expected = np.sort(2 - 2 * np.cos(k * np.pi / (n + 1)))
    np.testing.assert_allclose(np.linalg.eigvalsh(second_difference(n)), expected, atol=1e-12)
    v = np.sin(np.arange(1, n + 1) * 3 * np.pi / (n + 1))
    np.testing.assert_allclose(
        second_difference(n) @ v, (2 - 2 * np.cos(3 * np.pi / (n + 1))) * v, atol=1e-12
    )


def test_gaussian_blur_is_symmetric_and_severely_ill_conditioned():
    A = gaussian_blur(64, 2.0)
    np.testing.assert_allclose(A, A.T)
    assert 1e7 < np.linalg.cond(A) < 1e9


@given(st.lists(st.floats(1e-3, 10.0), min_size=1, max_size=6), st.integers(0, 3), st.integers(0, 100))
@settings(max_examples=25, deadline=None)
def test_prescribed_spectrum_has_those_singular_values(s, extra, seed):
    s = np.array(s)
    A = prescribed_spectrum(s, n_rows=len(s) + extra, seed=seed)
    assert A.shape == (len(s) + extra, len(s))
    np.testing.assert_allclose(np.linalg.svd(A, compute_uv=False), np.sort(s)[::-1], rtol=1e-10)


def test_vandermonde_matches_numpy_polynomial():
    t = np.linspace(-1, 1, 7)
    c = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(vandermonde(t, 3) @ c, np.polynomial.polynomial.polyval(t, c))


@pytest.mark.parametrize(
    "prior",
    [
        GaussianPrior(12, 2.0),
        SmoothPrior(12, 3.0),
        SparsePrior(12, 0.2, 1.5),
        PiecewiseConstantPrior(12, 0.2),
    ],
)
def test_prior_covariance_matches_monte_carlo(prior):
    X = prior.sample(200_000, np.random.default_rng(1))
    S = X.T @ X / len(X)  # zero-mean priors
    scale = np.abs(prior.covariance()).max()
    np.testing.assert_allclose(S, prior.covariance(), atol=0.03 * scale)


def test_wiener_isotropic_closed_form_and_data_fit():
    s = np.logspace(0, -2, 8)
    A = prescribed_spectrum(s, seed=3)
    lam, sigma = 2.0, 0.05
    U, sv, Vt = np.linalg.svd(A)
    closed = Vt.T @ np.diag(sv / (sv**2 + sigma**2 / lam)) @ U.T
    prob = InverseProblem(A, GaussianPrior(8, lam), sigma)
    np.testing.assert_allclose(prob.wiener(), closed, rtol=1e-10, atol=1e-12)
    X, Y = prob.sample(400_000, seed=0)
    C_data = np.linalg.lstsq(Y, X, rcond=None)[0].T
    assert np.linalg.norm(C_data - closed) / np.linalg.norm(closed) < 0.02
    mc = np.mean(np.sum((X - Y @ closed.T) ** 2, axis=1))
    assert abs(mc - prob.mmse_linear()) / prob.mmse_linear() < 0.01


def test_wiener_general_covariance_is_orthogonality_solution():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 7))
    L = rng.standard_normal((7, 7))
    S = L @ L.T
    C = wiener_estimator(A, S, 0.3)
    # orthogonality principle: E[(x − C y) yᵀ] = S Aᵀ − C (A S Aᵀ + σ² I) = 0
    np.testing.assert_allclose(S @ A.T - C @ (A @ S @ A.T + 0.09 * np.eye(5)), 0, atol=1e-10)


def test_pinv_square_and_rectangular():
    A = second_difference(6)
    prob = InverseProblem(A, GaussianPrior(6), 0.1)
    np.testing.assert_allclose(prob.pinv() @ A, np.eye(6), atol=1e-10)
    B = vandermonde(np.linspace(0, 1, 9), 3)
    prob2 = InverseProblem(B, GaussianPrior(4), 0.1)
    np.testing.assert_allclose(prob2.pinv(), np.linalg.pinv(B), atol=1e-10)


def test_bad_configurations_raise():
    with pytest.raises(ConfigError):
        InverseProblem(second_difference(4), GaussianPrior(5), 0.1)
    with pytest.raises(ConfigError):
        gaussian_blur(0)
    with pytest.raises(ConfigError):
        InverseProblem(second_difference(4), GaussianPrior(4), -1.0)
    with pytest.raises(ConfigError):
        PiecewiseConstantPrior(4, 0.0)


def test_sampling_is_seeded():
    prob = InverseProblem(gaussian_blur(8), PiecewiseConstantPrior(8), 0.01)
    X1, Y1 = prob.sample(10, seed=5)
    X2, Y2 = prob.sample(10, seed=5)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
