import numpy as np
import pytest
import torch

from linlens.problems import GaussianPrior, InverseProblem, gaussian_blur, prescribed_spectrum
from linlens.study import data_weighted_error, linearity_study


class Fixed(torch.nn.Module):
    """y ↦ C y as a float64 module."""

    def __init__(self, C):
        super().__init__()
        self.C = torch.nn.Parameter(torch.as_tensor(C, dtype=torch.float64))

    def forward(self, y):
        return y @ self.C.T


def test_data_weighted_error_closed_form():
    rng = np.random.default_rng(0)
    R = rng.standard_normal((3, 4))
    Y = rng.standard_normal((50, 4))
    assert data_weighted_error(R, R, Y) == 0
    assert data_weighted_error(2 * R, R, Y) == pytest.approx(1.0)
    assert data_weighted_error(np.zeros_like(R), R, Y) == pytest.approx(1.0)


def test_a_model_that_is_the_wiener_estimator_is_found_closest_to_it():
    s = np.logspace(0, -3, 10)
    prob = InverseProblem(prescribed_spectrum(s, seed=1), GaussianPrior(10), 1e-2, name="test")
    W = prob.wiener()
    X, Y = prob.sample(20000, seed=0)
    res = linearity_study({"wiener-net": Fixed(W), "pinv-net": Fixed(prob.pinv())}, prob, X_train=X, Y_train=Y,
                          n_probe=4000, n_boot=20, seed=0)
    m = res.models["wiener-net"]
    assert m.closest == "Wiener"
    assert m.data_weighted_errors["Wiener"] < 1e-20
    assert m.r2 == pytest.approx(1.0, abs=1e-12)
    # the filter factors of the Wiener net are Tikhonov's s²/(s² + σ²/λ)
    np.testing.assert_allclose(m.filter_factors.factors, s**2 / (s**2 + 1e-4), atol=1e-8)
    # C_data estimates the Wiener estimator; A⁻¹ is far away in data-weighted error
    assert m.data_weighted_errors["C_data"] < 1e-2
    assert m.data_weighted_errors["A⁻¹"] > 0.5
    lo, hi = m.intervals["A⁻¹"]
    assert lo <= m.data_weighted_errors["A⁻¹"] * 1.5 and hi >= lo
    assert res.models["pinv-net"].closest == "A⁻¹"
    # the test MSE of the Wiener net equals the closed-form linear MMSE per entry
    assert m.test_mse_model == pytest.approx(prob.mmse_linear() / 10, rel=0.1)
    d = res.to_dict()
    assert d["models"]["wiener-net"]["closest"] == "Wiener"


def test_study_rejects_mismatched_training_pairs():
    prob = InverseProblem(gaussian_blur(6), GaussianPrior(6), 0.1)
    X, Y = prob.sample(100)
    from linlens.errors import ShapeError

    with pytest.raises(ShapeError):
        linearity_study({"m": Fixed(np.eye(6))}, prob, X_train=X[:, :5], Y_train=Y, n_boot=2)
