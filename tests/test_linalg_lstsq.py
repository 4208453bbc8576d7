"""Tests of linlens.linalg.lstsq (streaming Gram/TSQR accumulators) against numpy.linalg.lstsq and closed forms."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from linlens.errors import ShapeError
from linlens.linalg import GramAccumulator, TSQRAccumulator


# --------------------------------------------------------------------------------- streaming least squares
def _problem(n=500, d=6, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 3 + 5
    Y = X @ rng.normal(size=(d, p)) + rng.normal(size=(n, p)) + 2
    return X, Y


def _lstsq_with_intercept(X, Y):
    sol = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    return sol[:-1].T, sol[-1]


@pytest.mark.parametrize("cls", [GramAccumulator, TSQRAccumulator])
def test_accumulators_chunked_equal_batch_and_lstsq(cls):
    X, Y = _problem()
    batch = cls().update(X, Y)
    chunked = cls()
    bounds = [0, 1, 8, 100, 333, 500]  # uneven chunks, including a 1-row one
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        chunked.update(X[a:b], Y[a:b])
    coef, b0 = _lstsq_with_intercept(X, Y)
    for acc in (batch, chunked):
        sol = acc.solve()
        np.testing.assert_allclose(sol.coef, coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sol.intercept, b0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.mean_x, X.mean(0), rtol=1e-13)
    # without intercept
    ref = np.linalg.lstsq(X, Y, rcond=None)[0].T
    np.testing.assert_allclose(chunked.solve(fit_intercept=False).coef, ref, rtol=1e-9)
    # kappa of the centred design
    kappa = np.linalg.cond(X - X.mean(0))
    assert chunked.condition_number() == pytest.approx(kappa, rel=1e-8)


@pytest.mark.parametrize("cls", [GramAccumulator, TSQRAccumulator])
def test_accumulators_merge_and_pickle(cls):
    X, Y = _problem(seed=5)
    parts = [cls().update(X[i : i + 97], Y[i : i + 97]) for i in range(0, len(X), 97)]
    parts = [pickle.loads(pickle.dumps(p)) for p in parts]
    # tree reduction in a different order than the data
    left = parts[3].merge(parts[0]).merge(parts[5])
    right = parts[1].merge(parts[4]).merge(parts[2])
    merged = left.merge(right)
    assert merged.n == len(X)
    np.testing.assert_allclose(merged.solve().coef, cls().update(X, Y).solve().coef, rtol=1e-11)
    with pytest.raises(ShapeError):
        merged.update(X[:, :2], Y)


def test_tsqr_solvers_and_ridge_closed_form():
    X, Y = _problem(seed=2)
    acc = TSQRAccumulator().update(X, Y)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    alpha = 7.0
    ridge = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ Yc).T
    for method in ("qr", "svd"):
        np.testing.assert_allclose(acc.solve(alpha, method=method).coef, ridge, rtol=1e-10)
    np.testing.assert_allclose(GramAccumulator().update(X, Y).solve(alpha).coef, ridge, rtol=1e-10)


def test_gram_accumulator_multi_block_chunk_matches_lstsq():
    X, Y = _problem(n=20_000, d=4, p=2, seed=9)  # one update spanning several internal centring blocks
    sol = GramAccumulator().update(X, Y).solve()
    coef, b0 = _lstsq_with_intercept(X, Y)
    np.testing.assert_allclose(sol.coef, coef, rtol=1e-10)
    np.testing.assert_allclose(sol.intercept, b0, rtol=1e-10)


def test_gram_scatter_in_place_is_the_rows_covariance_after_updates_merges_and_old_pickles():
    """S (updated in place on one triangle by syrk, filled when read) equals n·cov of the rows, whatever the mix of
    multi-block updates, merges and pickling; an accumulator pickled before S became a property still loads."""
    X, Y = _problem(n=20_000, d=5, p=3, seed=11)
    Z = np.hstack([X, Y])
    truth = (Z - Z.mean(0)).T @ (Z - Z.mean(0))
    a = GramAccumulator().update(X[:9000], Y[:9000]).update(X[9000:17_000], Y[9000:17_000])  # > 1 centring block
    b = pickle.loads(pickle.dumps(GramAccumulator().update(X[17_000:], Y[17_000:])))
    a.merge(b)
    np.testing.assert_allclose(a.S, truth, rtol=1e-12, atol=1e-9 * np.abs(truth).max())
    assert np.array_equal(a.S, a.S.T)
    old = GramAccumulator().update(X, Y)
    state = {k: v for k, v in vars(old).items() if k not in ("_S", "_half")} | {"S": old.S}  # the former layout
    legacy = GramAccumulator.__new__(GramAccumulator)
    legacy.__setstate__(state)
    np.testing.assert_allclose(legacy.update(X[:10], Y[:10]).S,
                               GramAccumulator().update(X, Y).update(X[:10], Y[:10]).S, rtol=1e-12)


def test_condition_number_by_lanczos_on_the_cholesky_factor_equals_all_eigenvalues():
    """From d_in = 512, κ comes from the Cholesky factor of the equilibrated Gram matrix and Lanczos (the solve reuses
    the factor): it equals numpy's cond of the centred design, and the solve equals lstsq; near and beyond the
    policy's thresholds (κ > 1e4) and for a singular design it is the all-eigenvalue value, as before."""
    from linlens.linalg.lstsq import _kappa_from_gram

    rng = np.random.default_rng(12)
    n, d = 1500, 520
    Q = np.linalg.qr(rng.normal(size=(n, d)))[0]
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    for kappa in (30.0, 3e3, 1e6):
        X = (Q * np.geomspace(1.0, 1.0 / kappa, d)) @ V.T * 4.0 + 7.0
        Y = X @ rng.normal(size=(d, 3)) + 0.01 * rng.normal(size=(n, 3))
        acc = GramAccumulator().update(X, Y)
        got = acc.condition_number()
        assert got == pytest.approx(np.linalg.cond(X - X.mean(0)), rel=1e-9 if kappa < 1e4 else 1e-3)
        if kappa > 1e4:
            assert got == _kappa_from_gram(acc.gram()[0])  # the former route, to the last bit
        if kappa < 1e4:
            coef, b0 = _lstsq_with_intercept(X, Y)
            sol = acc.solve()
            np.testing.assert_allclose(sol.coef, coef, rtol=1e-9, atol=1e-9 * np.abs(coef).max())
            assert sol.solver == "gram" and "_factor" not in vars(acc)  # the factor was used once
    Xs = rng.normal(size=(300, d))  # fewer rows than columns: singular, no Cholesky factor
    assert GramAccumulator().update(Xs, Xs[:, :2]).condition_number() == _kappa_from_gram(
        GramAccumulator().update(Xs, Xs[:, :2]).gram()[0])
