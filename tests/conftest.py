"""Fixtures shared by several test files: data whose truth is known in closed form, written once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch


def _gaussian_sample(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) draws of N(μ, AAᵀ) with a random mixing A (d, d) and mean μ (d,): correlated, off-centre data whose
    covariance is known up to sampling (its sample covariance is the closed form the flow tests compare with)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ A.T + rng.normal(size=d)


@pytest.fixture(scope="session")
def gaussian_sample() -> Callable[..., np.ndarray]:
    """The sampler itself, ``gaussian_sample(n, d, seed=0)`` → (n, d), for tests that need other sizes."""
    return _gaussian_sample


@pytest.fixture(scope="session")
def gaussian() -> tuple[np.ndarray, np.ndarray]:
    """(X (1500, 4), its biased sample covariance S (4, 4)): the data of the linear-flow closed forms."""
    X = _gaussian_sample(1500, 4)
    return X, np.cov(X.T, bias=True)


@pytest.fixture(scope="session")
def ill_conditioned_linear() -> tuple[np.ndarray, np.ndarray, torch.nn.Linear]:
    """Inputs with κ ≈ 2e7 and the linear map that the surrogate must recover from them.

    Y (3000, 6) = U diag(logspace(0, −7.3)) Vᵀ √n + 1 (U, V orthonormal: κ of the centred inputs ≈ 10^7.3 ≈ 2e7),
    M (3, 6) the true map and ``lin`` a float64 ``nn.Linear`` with weight M and zero bias. A Gram-matrix solve
    loses about κ² · eps ≈ 0.1 of relative accuracy here (the issue saw ‖C−M‖/‖M‖ = 0.026); QR/TSQR about κ · eps.
    """
    rng = np.random.default_rng(0)
    n, d = 3000, 6
    U = np.linalg.qr(rng.standard_normal((n, d)))[0]
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    Y = (U * np.logspace(0, -7.3, d)) @ V.T * np.sqrt(n) + 1.0
    M = rng.standard_normal((3, d))
    lin = torch.nn.Linear(d, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(M))
        lin.bias.zero_()
    return Y, M, lin


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """Scheduler address of a 2-worker, 1-thread-each in-process LocalCluster for the module's Dask route tests
    (skips without dask.distributed)."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
                                       silence_logs=logging.CRITICAL)
    yield cluster.scheduler_address
    cluster.close()
