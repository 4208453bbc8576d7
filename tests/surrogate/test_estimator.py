"""Tests of linlens.surrogate against independent routes (lstsq, closed forms, sklearn, Wiener theory)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from linlens.errors import (
    ConfigError,
    ModelError,
    NonFiniteError,
    NotFittedError,
    NumericalWarning,
    ShapeError,
)
from linlens.surrogate import LinearSurrogate, r2_scores, reduced_rank_regression


def _lstsq(X, Y, intercept=True):
    A = np.hstack([X, np.ones((len(X), 1))]) if intercept else X
    sol = np.linalg.lstsq(A, Y, rcond=None)[0]
    return (sol[:-1].T, sol[-1]) if intercept else (sol.T, np.zeros(Y.shape[1]))


def _orth(n, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))[0]


def _data(n=400, d=5, p=3, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + rng.normal(size=d)
    Y = X @ rng.normal(size=(d, p)) + noise * rng.normal(size=(n, p)) + rng.normal(size=p)
    return X, Y


# ------------------------------------------------------------------------------------------- exact models
def test_exactly_linear_model_recovered():
    rng = np.random.default_rng(0)
    M, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    X = rng.normal(size=(300, 6))
    sur = LinearSurrogate().fit(X, X @ M.T + b)
    np.testing.assert_allclose(sur.coef_, M, atol=1e-10)
    np.testing.assert_allclose(sur.intercept_, b, atol=1e-10)
    assert sur.n_samples_seen_ == 300 and sur.n_features_in_ == 6 and sur.solver_ == "gram"
    assert sur.condition_number_ == pytest.approx(np.linalg.cond(X - X.mean(0)), rel=1e-8)


def test_from_model_float64_linear_layer():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).double()
    X = np.random.default_rng(1).normal(size=(1000, 6))
    sur = LinearSurrogate.from_model(lin, X, batch_size=128)
    np.testing.assert_allclose(sur.coef_, lin.weight.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(sur.intercept_, lin.bias.detach().numpy(), atol=1e-10)
    assert sur.n_samples_seen_ == 1000
    # an iterable of tensor batches gives the same surrogate; training flag restored
    lin.train()
    sur2 = LinearSurrogate.from_model(lin, (torch.tensor(X[i : i + 300]) for i in range(0, 1000, 300)))
    np.testing.assert_allclose(sur2.coef_, sur.coef_, atol=1e-12)
    assert lin.training


@pytest.mark.filterwarnings("ignore::linlens.errors.NumericalWarning")
def test_from_model_errors():
    def boom(x):
        raise RuntimeError("kaboom")

    class Raises(torch.nn.Module):
        def forward(self, x):
            return boom(x)

    class NaNs(torch.nn.Module):
        def forward(self, x):
            out = x.clone()
            if x[0, 0] > 100:
                out[0, 0] = float("nan")
            return out

    X = np.zeros((20, 2))
    with pytest.raises(ModelError, match="kaboom"):
        LinearSurrogate.from_model(Raises(), X)
    X[10, 0] = 1000
    with pytest.raises(NonFiniteError, match="batch 2"):
        LinearSurrogate.from_model(NaNs(), X, batch_size=5)


# ---------------------------------------------------------------------------------------------- solvers
@pytest.mark.parametrize("solver", ["auto", "gram", "qr", "svd"])
@pytest.mark.parametrize("intercept", [True, False])
def test_solvers_agree_with_lstsq(solver, intercept):
    X, Y = _data()
    sur = LinearSurrogate(fit_intercept=intercept, solver=solver).fit(X, Y)
    coef, b = _lstsq(X, Y, intercept)
    np.testing.assert_allclose(sur.coef_, coef, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sur.intercept_, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sur.predict(X), X @ coef.T + b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("solver", ["auto", "gram", "qr", "svd"])
def test_ridge_closed_form_and_sklearn(solver):
    X, Y = _data(seed=3)
    alpha = 12.5
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    C = Yc.T @ Xc @ np.linalg.inv(Xc.T @ Xc + alpha * np.eye(X.shape[1]))
    sur = LinearSurrogate(alpha=alpha, solver=solver).fit(X, Y)
    np.testing.assert_allclose(sur.coef_, C, rtol=1e-10)
    sk = Ridge(alpha=alpha).fit(X, Y)
    np.testing.assert_allclose(sur.coef_, sk.coef_, rtol=1e-8)
    np.testing.assert_allclose(sur.intercept_, sk.intercept_, rtol=1e-8)
    nofit = LinearSurrogate(alpha=alpha, fit_intercept=False, solver=solver).fit(X, Y)
    np.testing.assert_allclose(nofit.coef_, np.linalg.solve(X.T @ X + alpha * np.eye(5), X.T @ Y).T, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::linlens.errors.NumericalWarning")  # the 3-row first chunk is underdetermined
@pytest.mark.parametrize("solver", ["auto", "gram", "qr", "svd"])
def test_partial_fit_equals_fit(solver):
    X, Y = _data(n=1000, seed=4)
    batch = LinearSurrogate(solver=solver).fit(X, Y)
    stream = LinearSurrogate(solver=solver)
    for a, b in [(0, 3), (3, 250), (250, 251), (251, 1000)]:
        stream.partial_fit(X[a:b], Y[a:b])
    np.testing.assert_allclose(stream.coef_, batch.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stream.intercept_, batch.intercept_, rtol=1e-10, atol=1e-12)
    assert stream.n_samples_seen_ == 1000
    np.testing.assert_allclose(stream.outputs_mean_, Y.mean(0), rtol=1e-12)


def _ill_conditioned(kappa, n=3000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(n, d)))[0]
    s = np.logspace(0, -np.log10(kappa), d) * np.sqrt(n)
    X = (U * s) @ _orth(d, seed + 1).T + 3.0
    M = rng.normal(size=(2, d))
    Y = X @ M.T + 1e-3 * rng.normal(size=(n, 2)) + 0.5
    return X, Y


@pytest.mark.parametrize("kappa,route", [(1e6, "gram+refine"), (1e8, "qr")])
def test_ill_conditioned_auto_matches_lstsq(kappa, route):
    X, Y = _ill_conditioned(kappa)
    coef, b = _lstsq(X, Y)
    sur = LinearSurrogate().fit(X, Y)
    assert sur.solver_ == route
    assert sur.condition_number_ == pytest.approx(kappa, rel=0.05)
    err = np.linalg.norm(sur.coef_ - coef) / np.linalg.norm(coef)
    assert err < 1e-6
    # the plain Gram route loses about twice the digits (this is what the fallback is for)
    with pytest.warns(NumericalWarning):
        gram = LinearSurrogate(solver="gram").fit(X, Y)
    err_gram = np.linalg.norm(gram.coef_ - coef) / np.linalg.norm(coef)
    assert err_gram > 10 * err


def test_streaming_auto_warns_when_ill_conditioned_and_qr_streams_stably():
    X, Y = _ill_conditioned(1e8)
    coef, _ = _lstsq(X, Y)
    with pytest.warns(NumericalWarning, match="solver='qr'"):
        LinearSurrogate().partial_fit(X[:1500], Y[:1500])
    qr = LinearSurrogate(solver="qr")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        for i in range(0, 3000, 500):
            qr.partial_fit(X[i : i + 500], Y[i : i + 500])
    assert np.linalg.norm(qr.coef_ - coef) / np.linalg.norm(coef) < 1e-6


def test_underdetermined_gives_min_norm_with_warning():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(4, 10)), rng.normal(size=(4, 2))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    ref = (np.linalg.pinv(Xc) @ Yc).T
    for solver in ("auto", "gram", "svd"):
        with pytest.warns(NumericalWarning, match="minimum-norm"):
            sur = LinearSurrogate(solver=solver).fit(X, Y)
        np.testing.assert_allclose(sur.coef_, ref, atol=1e-10)
        assert sur.rank_ == 3


# ------------------------------------------------------------------------------ score, types, bad input
def test_score_matches_sklearn_and_1d():
    X, Y = _data(seed=7, noise=2.0)
    sur = LinearSurrogate().fit(X[:300], Y[:300])
    pred = sur.predict(X[300:])
    assert sur.score(X[300:], Y[300:]) == pytest.approx(r2_score(Y[300:], pred, multioutput="variance_weighted"),
                                                        rel=1e-12)
    np.testing.assert_allclose(r2_scores(Y[300:], pred)[1], r2_score(Y[300:], pred, multioutput="raw_values"),
                               rtol=1e-12)
    # pooled, not averaged: outputs (100·y₀, sin 3y₁) — the big linear output dominates, the per-output
    # values show the nonlinear one (issue: R² meant two things)
    y = np.random.default_rng(3).normal(size=(1000, 2))
    F = np.column_stack([100 * y[:, 0], np.sin(3 * y[:, 1])])
    lin = LinearSurrogate().fit(y, F)
    pooled, per = r2_scores(F, lin.predict(y))
    assert pooled > 0.999 and per[0] == pytest.approx(1.0) and per[1] < 0.2
    s1 = LinearSurrogate().fit(X, Y[:, 0])
    assert s1.coef_.shape == (1, 5) and s1.predict(X).shape == (400,)
    assert s1.score(X, Y[:, 0]) == pytest.approx(r2_score(Y[:, 0], s1.predict(X)), rel=1e-12)
    Yc = np.column_stack([Y[:, 0], np.full(400, 3.0)])  # a constant output is predicted exactly: R² = 1
    sc = LinearSurrogate().fit(X, Yc)
    assert sc.score(X, Yc) == pytest.approx(r2_score(Yc, sc.predict(X), multioutput="variance_weighted"),
                                            rel=1e-10)


def test_torch_inputs_and_predict_type():
    X, Y = _data(seed=8)
    sur = LinearSurrogate().fit(torch.tensor(X, dtype=torch.float32), torch.tensor(Y))
    ref = LinearSurrogate().fit(X.astype(np.float32).astype(np.float64), Y)
    np.testing.assert_allclose(sur.coef_, ref.coef_, rtol=1e-12)
    out = sur.predict(torch.tensor(X, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), sur.predict(X), rtol=1e-5, atol=1e-5)


def test_bad_input():
    X, Y = _data()
    with pytest.raises(ConfigError, match="solver"):
        LinearSurrogate(solver="lu").fit(X, Y)
    with pytest.raises(ConfigError, match="alpha"):
        LinearSurrogate(alpha=-1).fit(X, Y)
    with pytest.raises(ShapeError, match="same number of rows"):
        LinearSurrogate().fit(X, Y[:-1])
    Xn = X.copy()
    Xn[5, 2] = np.nan
    with pytest.raises(NonFiniteError, match="X"):
        LinearSurrogate().fit(Xn, Y)
    Yi = Y.copy()
    Yi[7, 0] = np.inf
    for solver in ("auto", "qr"):
        with pytest.raises(NonFiniteError, match="Y.*row 7"):
            LinearSurrogate(solver=solver).partial_fit(X, Yi)
    with pytest.raises(NotFittedError):
        LinearSurrogate().predict(X)
    sur = LinearSurrogate().fit(X, Y)
    with pytest.raises(ShapeError):
        sur.predict(X[:, :3])
    with pytest.raises(ShapeError):
        sur.partial_fit(X, Y).partial_fit(X[:, :2], Y)
    sur = LinearSurrogate(alpha=1.0, solver="gram")
    assert (sur.alpha, sur.solver, sur.fit_intercept) == (1.0, "gram", True)




def test_reduced_rank_regression_eckart_young_and_optimality():
    """On a whitened design (XᵀX = nI) the rank-r optimum is the truncated SVD of the least-squares map
    (Eckart–Young); on any design it beats every other rank-r map tried, the truncated SVD included."""
    rng = np.random.default_rng(0)
    n, d, p, r = 400, 6, 5, 2
    Q = np.linalg.qr(rng.normal(size=(n, d)))[0] * np.sqrt(n)  # QᵀQ = n I
    Y = Q @ rng.normal(size=(d, p)) + 0.1 * rng.normal(size=(n, p))
    B = reduced_rank_regression(Q, Y, r)
    B0 = np.linalg.lstsq(Q, Y, rcond=None)[0].T
    U, s, Vt = np.linalg.svd(B0)
    np.testing.assert_allclose(B, (U[:, :r] * s[:r]) @ Vt[:r], atol=1e-10)
    X = rng.normal(size=(n, d)) @ np.diag([10, 3, 1, 0.3, 0.1, 0.01])
    Y = X @ rng.normal(size=(d, p)) + 0.1 * rng.normal(size=(n, p))
    B = reduced_rank_regression(X, Y, r)
    assert np.linalg.matrix_rank(B) == r
    best = np.sum((Y - X @ B.T) ** 2)
    B0 = np.linalg.lstsq(X, Y, rcond=None)[0].T
    U, s, Vt = np.linalg.svd(B0)
    assert best <= np.sum((Y - X @ ((U[:, :r] * s[:r]) @ Vt[:r]).T) ** 2) + 1e-9
    for _ in range(200):  # random rank-r maps, and rank-r maps near the optimum, never do better
        L, R = rng.normal(size=(p, r)), rng.normal(size=(r, d))
        assert best <= np.sum((Y - X @ (L @ R).T) ** 2)
        U2, s2, Vt2 = np.linalg.svd(B + 1e-3 * rng.normal(size=(p, d)))
        assert best <= np.sum((Y - X @ ((U2[:, :r] * s2[:r]) @ Vt2[:r]).T) ** 2) + 1e-9
    with pytest.raises(ConfigError):
        reduced_rank_regression(X, Y, -1)


@pytest.mark.parametrize("solver", ["auto", "gram", "qr"])
def test_partial_fit_after_fit_continues(solver):
    """scikit-learn's convention: fit starts over, a partial_fit after it adds data (it used to start over)."""
    X, Y = _data(n=400, seed=11)
    sur = LinearSurrogate(solver=solver).fit(X[:200], Y[:200]).partial_fit(X[200:], Y[200:])
    assert sur.n_samples_seen_ == 400
    coef, icpt = _lstsq(X, Y)
    np.testing.assert_allclose(sur.coef_, coef, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(sur.intercept_, icpt, rtol=1e-9, atol=1e-10)
    assert LinearSurrogate(solver=solver).fit(X[:200], Y[:200]).fit(X[200:], Y[200:]).n_samples_seen_ == 200
