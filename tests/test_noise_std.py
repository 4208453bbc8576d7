"""The one estimate of the noise level σ (ν = n·d − d) and its one check, by simulation and on every route."""

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError
from linlens.stats import noise_std_estimate
from linlens.validation import check_noise_std
from linlens.workflows.study import inverse_study


def test_sigma_squared_is_unbiased_and_the_interval_covers():
    """n = 3 rows of d = 4: dividing by n·d would be low by (n − 1)/n = 2/3; ν = n·d − d is exact."""
    rng = np.random.default_rng(0)
    sigma, reps = 0.5, 4000
    offsets = rng.normal(size=4) * 10  # a per-column offset is not noise
    est = [noise_std_estimate(offsets + sigma * rng.normal(size=(3, 4))) for _ in range(reps)]
    v2 = np.array([e.value**2 for e in est])
    assert abs(v2.mean() - sigma**2) < 4 * v2.std() / np.sqrt(reps)
    assert abs(v2.mean() * 2 / 3 - sigma**2) > 10 * v2.std() / np.sqrt(reps)  # the n·d divisor is visibly off
    cover = np.mean([e.low <= sigma <= e.high for e in est])
    assert abs(cover - 0.95) < 4 * np.sqrt(0.95 * 0.05 / reps)
    assert est[0].dof == 8


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, 0.0, "0.1", True, None])
def test_the_check_refuses_what_is_not_a_noise_level(bad):
    with pytest.raises(ConfigError, match="must be a finite number > 0"):
        check_noise_std(bad)


def test_nan_sigma_is_refused_on_the_fourier_and_dense_routes():
    from linlens.workflows.analyze import AnalyzeOptions

    with pytest.raises(ConfigError, match="--noise-std must be a finite"):
        AnalyzeOptions("m.pt", "y.npy", targets="x.npy", noise_std=float("nan")).check_values()  # every route
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    lin = torch.nn.Linear(3, 3).double()
    with pytest.raises(ConfigError, match="noise_std must be a finite"):
        inverse_study({"m": lin}, Y, X, X, Y, A=np.eye(3), noise_std=float("nan"), n_boot=2)


def test_the_study_estimates_sigma_with_the_one_rule():
    rng = np.random.default_rng(2)
    A = np.triu(np.ones((3, 3)))
    Xtr = rng.normal(size=(40, 3))
    Ytr = Xtr @ A.T + 0.1 * rng.normal(size=(40, 3))
    X, Y = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    lin = torch.nn.Linear(3, 3).double()
    res = inverse_study({"m": lin}, Y, X, Xtr, Ytr, A=A, n_boot=2)
    assert res.noise_std == pytest.approx(noise_std_estimate(Ytr - Xtr @ A.T).value, rel=1e-14)
