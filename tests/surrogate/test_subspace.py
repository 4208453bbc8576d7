"""Tests of linlens.surrogate.subspace against scikit-learn (PCA + LinearRegression / Ridge) and exact-rank
streaming, and on an inpainting operator (not shift-invariant)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, Ridge

from linlens.errors import ConfigError, NotFittedError, ShapeError
from linlens.surrogate.subspace import SubspaceSurrogate


def _data(n=300, d=60, d_out=7, rank=None, seed=0):
    rng = np.random.default_rng(seed)
    s = np.r_[np.linspace(10, 5, 8), 0.05 * np.ones(d - 8)]  # a clear gap after 8 components
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    X = rng.standard_normal((n, d)) * s @ Q.T + rng.standard_normal(d)
    if rank is not None:
        X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + rng.standard_normal(d)
    Y = np.tanh(X @ rng.standard_normal((d, d_out)) / 10) + 0.5
    return X, Y


def test_matches_sklearn_pca_plus_linear_regression():
    X, Y = _data()
    m = 8
    sur = SubspaceSurrogate(n_components=m).fit(X, Y)
    pca = PCA(n_components=m, svd_solver="full").fit(X)
    lr = LinearRegression().fit(pca.transform(X), Y)
    Xt = _data(seed=1)[0]
    np.testing.assert_allclose(sur.predict(Xt), lr.predict(pca.transform(Xt)), atol=1e-8)
    assert sur.outside_variance_fraction_ == pytest.approx(1 - pca.explained_variance_ratio_.sum(), abs=1e-10)
    np.testing.assert_allclose(sur.explained_variance_ * len(X) / (len(X) - 1), pca.explained_variance_, rtol=1e-8)
    # ridge in score coordinates = sklearn Ridge on the scores
    rsur = SubspaceSurrogate(n_components=m, alpha=3.0).fit(X, Y)
    rr = Ridge(alpha=3.0).fit(pca.transform(X), Y)
    np.testing.assert_allclose(rsur.predict(Xt), rr.predict(pca.transform(Xt)), atol=1e-8)


def test_in_sample_r2_matches_sklearn_single_output():
    X, Y = _data(d_out=1)
    sur = SubspaceSurrogate(n_components=5).fit(X, Y[:, 0])
    pca = PCA(n_components=5, svd_solver="full").fit(X)
    assert sur.r2_ == pytest.approx(LinearRegression().fit(pca.transform(X), Y).score(pca.transform(X), Y), abs=1e-10)


def test_streaming_equals_batch_when_rank_fits_the_sketch():
    X, Y = _data(rank=9, d=80)
    a = SubspaceSurrogate(n_components=6, n_oversamples=4).fit(X, Y)
    b = SubspaceSurrogate(n_components=6, n_oversamples=4)
    for s in range(0, len(X), 37):
        b.partial_fit(X[s : s + 37], Y[s : s + 37])
    np.testing.assert_allclose(b.predict(X), a.predict(X), atol=1e-8)
    assert b.outside_variance_fraction_ == pytest.approx(a.outside_variance_fraction_, abs=1e-10)
    assert b.n_samples_ == len(X)
    np.testing.assert_allclose(b.mean_in_, X.mean(0), atol=1e-12)


def test_streaming_close_to_batch_on_decaying_spectrum():
    X, Y = _data(n=400)
    a = SubspaceSurrogate(n_components=8).fit(X, Y)
    b = SubspaceSurrogate(n_components=8)
    for s in range(0, len(X), 50):
        b.partial_fit(X[s : s + 50], Y[s : s + 50])
    err = np.linalg.norm(b.predict(X) - a.predict(X)) / np.linalg.norm(a.predict(X) - a.intercept_)
    assert err < 1e-2
    assert abs(b.outside_variance_fraction_ - a.outside_variance_fraction_) < 1e-3


def test_inpainting_operator_recovers_the_masked_identity():
    """f = inpainting-aware linear map on images with a low-dimensional prior: the surrogate restricted to the
    prior's subspace reproduces f there, and the variance outside is what the prior does not span."""
    rng = np.random.default_rng(3)
    d, r = 256, 12
    basis = np.linalg.qr(rng.standard_normal((d, r)))[0]
    x = rng.standard_normal((500, r)) @ basis.T
    mask = rng.random(d) > 0.3
    y = x * mask + 0.01 * rng.standard_normal((500, d))
    sur = SubspaceSurrogate(n_components=r).fit(y, x)
    # truth: the LMMSE map restricted to the top-r subspace of y (via sklearn on the same scores)
    pca = PCA(n_components=r, svd_solver="full").fit(y)
    lr = LinearRegression().fit(pca.transform(y), x)
    np.testing.assert_allclose(sur.predict(y), lr.predict(pca.transform(y)), atol=1e-8)
    assert sur.r2_ > 0.99
    assert 0 < sur.outside_variance_fraction_ < 0.05
    op = sur.as_operator()
    np.testing.assert_allclose(op.matvec(y[:3]) + sur.intercept_, sur.predict(y[:3]), atol=1e-12)
    assert op.adjoint_check().passed


def test_bad_inputs():
    X, Y = _data()
    with pytest.raises(ConfigError, match="n_components"):
        SubspaceSurrogate(n_components=0).fit(X, Y)
    with pytest.raises(ConfigError, match="exceeds"):
        SubspaceSurrogate(n_components=50).fit(X[:10], Y[:10])
    with pytest.raises(ShapeError, match="same number of rows"):
        SubspaceSurrogate(n_components=2).fit(X, Y[:5])
    with pytest.raises(NotFittedError):
        SubspaceSurrogate().predict(X)
    s = SubspaceSurrogate(n_components=2).partial_fit(X[:20], Y[:20])
    with pytest.raises(ShapeError, match="earlier batches"):
        s.partial_fit(X[:20, :5], Y[:20])
