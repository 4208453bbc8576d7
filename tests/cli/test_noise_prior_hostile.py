"""Issue 25, σ, Σₓ and row counts on every route: a given σ must be finite and > 0 and is checked against the
residual y − Ax (a warning when outside its interval); Σₓ must be symmetric PSD; too few or identical rows are
refused. Each hostile file is made here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.errors import ConfigError, ShapeError
from linlens.validation import check_covariance, check_noise_std, check_rows, noise_std_disagreement
from linlens.workflows.inverse import noise_std_interval
from linlens.workflows.study import inverse_study

L = 8


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -0.05, True, "0.05"])
def test_noise_std_must_be_finite_and_positive(bad):
    with pytest.raises(ConfigError, match="noise"):
        check_noise_std(bad)


def test_prior_covariance_symmetric_psd():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(4, 4))
    S = B @ B.T
    np.testing.assert_array_equal(check_covariance(S, 4), (S + S.T) / 2)
    with pytest.raises(ConfigError, match="not symmetric"):
        check_covariance(S + np.triu(np.ones((4, 4)), 1), 4)
    indefinite = S - 2 * np.linalg.eigvalsh(S)[-1] * np.outer([1, 0, 0, 0], [1, 0, 0, 0])
    assert np.linalg.eigvalsh(indefinite)[0] < 0  # independent check that the case is indefinite
    with pytest.raises(ConfigError, match="positive semi-definite"):
        check_covariance(indefinite, 4)
    with pytest.raises(ShapeError):
        check_covariance(S, 5)


def test_given_sigma_is_checked_against_the_residual():
    """Simulation with known σ = 0.05 over 400 data sets: the true σ is flagged at the interval's nominal 5% rate
    (binomial 99.9% band), the variance 0.0025 passed as σ every time, with a hint."""
    flagged_true, flagged_var = 0, 0
    for seed in range(400):
        est = noise_std_interval(0.05 * np.random.default_rng(seed).normal(size=(200, 16)))
        flagged_true += noise_std_disagreement(0.05, *est) is not None
        msg = noise_std_disagreement(0.0025, *est)
        flagged_var += msg is not None and "variance" in msg
    assert 5 <= flagged_true <= 37  # Binomial(400, 0.05): mean 20, 99.9% band ≈ [6, 36]
    assert flagged_var == 400


def test_rows_too_few_or_identical():
    with pytest.raises(ShapeError, match="at least 8"):
        check_rows(np.ones((2, 3)), 8, "inputs")
    with pytest.raises(ShapeError, match="identical"):
        check_rows(np.ones((20, 3)), 8, "inputs")


def test_python_api_refuses_bad_sigma_and_covariance():
    rng = np.random.default_rng(2)
    A = np.eye(3)
    X = rng.normal(size=(60, 3))
    Y = X + 0.1 * rng.normal(size=X.shape)
    net = torch.nn.Identity()
    with pytest.raises(ConfigError, match="noise_std"):
        inverse_study({"id": net}, Y, X, X, Y, A=A, noise_std=float("nan"), n_boot=5)
    with pytest.raises(ConfigError, match="not symmetric"):
        inverse_study({"id": net}, Y, X, X, Y, A=A, prior_covariance=np.triu(np.ones((3, 3))), n_boot=5)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sigma")
    rng = np.random.default_rng(0)
    k = np.exp(-np.minimum(np.arange(L), L - np.arange(L)) ** 2 / 2.0)
    A = np.stack([np.roll(k / k.sum(), j) for j in range(L)], axis=1)
    X = rng.normal(size=(400, L))
    np.save(d / "y.npy", X @ A.T + 0.05 * rng.normal(size=X.shape))
    np.save(d / "x.npy", X)
    np.save(d / "A.npy", A)
    np.save(d / "A_dense.npy", A + 0.3 * np.triu(rng.normal(size=(L, L))))
    np.save(d / "y_dense.npy", X @ np.load(d / "A_dense.npy").T + 0.05 * rng.normal(size=X.shape))
    np.save(d / "S_bad.npy", np.triu(np.ones((L, L))))
    np.save(d / "y2.npy", np.load(d / "y.npy")[:2])
    np.save(d / "x2.npy", X[:2])
    np.save(d / "ysame.npy", np.repeat(np.load(d / "y.npy")[:1], 40, axis=0))
    np.save(d / "xsame.npy", np.repeat(X[:1], 40, axis=0))
    return d


def test_cli_fourier_route_refuses_bad_sigma_and_degenerate_rows(files, capsys):
    d = files
    base = ["analyze", "-m", "torch.nn:Identity", "-t", d / "x.npy", "--operator", d / "A.npy", "--n-boot", "5"]
    for sigma in ("nan", "inf", "0"):
        code, _, err = _run([*base, "-i", d / "y.npy", "--noise-std", sigma, "-o", d / f"r{sigma}"], capsys)
        assert code == 2 and "--noise-std" in err and len(err.strip().splitlines()) == 1, err
    for y, x in (("y2.npy", "x2.npy"), ("ysame.npy", "xsame.npy")):
        code, _, err = _run(["analyze", "-m", "torch.nn:Identity", "-i", d / y, "-t", d / x, "--operator",
                             d / "A.npy", "--n-boot", "5", "-o", d / "rdeg"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "rows" in err, err
        assert not (d / "rdeg").exists()


def test_cli_dense_route_warns_when_sigma_disagrees_and_refuses_bad_covariance(files, capsys):
    d = files
    base = ["analyze", "-m", "torch.nn:Identity", "-i", d / "y_dense.npy", "-t", d / "x.npy", "--operator",
            d / "A_dense.npy", "--n-boot", "5"]
    code, _, err = _run([*base, "--prior-covariance", d / "S_bad.npy", "-o", d / "rS"], capsys)
    assert code == 2 and "not symmetric" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = _run([*base, "--noise-std", "0.0025", "-o", d / "rv"], capsys)
    assert code in (0, None), err
    text = " ".join(out.split())
    assert "disagrees with the data" in text and "variance" in text
    notes = json.dumps(json.loads((d / "rv" / "metrics.json").read_text()))
    assert "disagrees with the data" in notes


def test_noiseless_pairs_are_refused_when_sigma_is_estimated(files, capsys):
    """y = A x exactly: σ̂ = 0 made Wiener = A⁻¹ and still gave a verdict; now one line saying why."""
    d = files
    A = np.load(d / "A.npy")
    np.save(d / "y_clean.npy", np.load(d / "x.npy") @ A.T)
    code, _, err = _run(["analyze", "-m", "torch.nn:Identity", "-i", d / "y_clean.npy", "-t", d / "x.npy",
                         "--operator", d / "A.npy", "--n-boot", "5", "-o", d / "rclean"], capsys)
    assert code == 2 and "no noise" in err and len(err.strip().splitlines()) == 1, err
