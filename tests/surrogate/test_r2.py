"""The one R² rule (`r2_from_sums`), against scikit-learn, and the estimators that use it."""

import numpy as np
import pytest
from sklearn.metrics import r2_score

from linlens.surrogate import LinearSurrogate, r2_from_sums, r2_scores
from linlens.surrogate.subspace import SubspaceSurrogate


@pytest.mark.parametrize("case", ["plain", "constant_exact", "constant_missed", "all_constant", "one_output"])
def test_r2_is_scikit_learns_variance_weighted(case):
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1]
    P = Y + rng.normal(size=Y.shape) * [0.5, 1.0, 0.3]
    if case == "constant_exact":
        Y[:, 1] = P[:, 1] = 2.0
    elif case == "constant_missed":
        Y[:, 1], P[:, 1] = 2.0, 2.5
    elif case == "all_constant":
        Y[:], P[:] = 1.0, 1.0
        P[0, 0] = 1.5
    elif case == "one_output":
        Y, P = Y[:, :1], P[:, :1]
    pooled, per = r2_scores(Y, P)
    assert pooled == pytest.approx(r2_score(Y, P, multioutput="variance_weighted"), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(per, r2_score(Y, P, multioutput="raw_values"), rtol=1e-12)
    sse, sst = ((Y - P) ** 2).sum(0), ((Y - Y.mean(0)) ** 2).sum(0)
    assert r2_from_sums(sse, sst)[0] == pooled


def test_subspace_and_dense_scores_agree_at_m_equal_d():
    """Two estimators, one rule: at m = d the subspace surrogate is the dense one, so are their R²; outputs of
    very different variances make a plain mean over outputs differ from the pooled value."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 4))
    Y = np.column_stack([100 * X[:, 0], np.sin(3 * X[:, 1]), X[:, 2] ** 2])
    dense = LinearSurrogate().fit(X[:400], Y[:400])
    sub = SubspaceSurrogate(n_components=4).fit(X[:400], Y[:400])
    want = r2_score(Y[400:], dense.predict(X[400:]), multioutput="variance_weighted")
    assert dense.score(X[400:], Y[400:]) == pytest.approx(want, rel=1e-12)
    assert sub.score(X[400:], Y[400:]) == pytest.approx(want, rel=1e-9)
    assert abs(want - r2_score(Y[400:], dense.predict(X[400:]))) > 0.1  # the uniform mean is another number
