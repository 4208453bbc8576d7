"""Tests of linlens.linalg.svd against independent routes (numpy/scipy, torch, closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError, NonFiniteError, ShapeError
from linlens.linalg import principal_angles, randomized_svd, svd, truncated_svd


def _with_spectrum(m: int, n: int, s: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(m, len(s))))[0]
    V = np.linalg.qr(rng.normal(size=(n, len(s))))[0]
    return (U * s) @ V.T


# -------------------------------------------------------------------------------------------------- svd
@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5)])
def test_svd_reconstructs_with_sign_rule(shape):
    A = np.random.default_rng(1).normal(size=shape)
    U, s, Vt = svd(A)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-13)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=1e-13)
    assert np.all(np.diff(s) <= 0)
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(U.shape[1])] > 0)
    # the same matrix with flipped columns of U (a different but valid SVD) gives the same factors
    U2, s2, Vt2 = svd(-A)
    np.testing.assert_allclose(U2, U, atol=1e-12)
    np.testing.assert_allclose(Vt2, -Vt, atol=1e-12)


def test_svd_full_matrices_orthogonal():
    A = np.random.default_rng(2).normal(size=(6, 3))
    U, s, Vt = svd(A, full_matrices=True)
    assert U.shape == (6, 6) and Vt.shape == (3, 3)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-13)
    np.testing.assert_allclose(U[:, :3] * s @ Vt, A, atol=1e-13)


def test_svd_rejects_nan():
    with pytest.raises(NonFiniteError):
        svd(np.array([[1.0, np.nan]]))
    with pytest.raises(ShapeError):
        svd(np.ones(3))


# ------------------------------------------------------------------------------------------ truncated svd
@pytest.mark.parametrize("method", ["full", "arpack", "randomized", "auto"])
def test_truncated_svd_matches_full(method):
    s_true = np.logspace(0, -6, 40)
    A = _with_spectrum(300, 280, s_true, seed=3)
    U, s, Vt = truncated_svd(A, 8, method=method, seed=1)
    np.testing.assert_allclose(s, s_true[:8], rtol=1e-8)
    Uf, _, Vtf = np.linalg.svd(A)
    assert principal_angles(U, Uf[:, :8]).max() < 1e-6
    assert principal_angles(Vt.T, Vtf[:8].T).max() < 1e-6
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(8)] > 0)


def test_randomized_svd_torch_keeps_type_and_agrees():
    A = _with_spectrum(60, 50, np.logspace(0, -4, 20), seed=4)
    U, s, Vt = randomized_svd(torch.tensor(A), 5, seed=0)
    assert isinstance(U, torch.Tensor) and U.dtype == torch.float64
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(A, compute_uv=False)[:5], rtol=1e-10)
    Ut, st_, Vtt = truncated_svd(torch.tensor(A), 5, method="full")
    np.testing.assert_allclose(U.numpy(), Ut.numpy(), atol=1e-8)


def test_truncated_svd_bad_args():
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 0)
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 2, method="magic")
