"""The matrix-free references and error split against their dense counterparts on small non-circular operators
(reflect blur, inpainting mask, subsampled Fourier), and the intervals' coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.errors import ConfigError
from linlens.operators import as_operator
from linlens.problems import CircularBlur, wiener_estimator
from linlens.surrogate.matrix_free import (
    LowRankDiagCovariance,
    MatrixFreeWiener,
    pseudo_inverse_rows,
    signal_noise_estimate,
)
from tests._matrix_free_cases import example_namespace, namespace

NS = namespace()
OPS = {k: as_operator(NS[k], in_shape=(1, 8, 8)) for k in ("blur", "mask", "fourier")}


def _cov(d: int, r: int, seed: int) -> LowRankDiagCovariance:
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.normal(size=(d, r)))[0].T
    return LowRankDiagCovariance.from_parts(V, np.linspace(3.0, 0.5, r), rng.uniform(0.01, 0.2, d))


def test_the_operators_are_not_circular_and_have_exact_adjoints():
    for k, op in OPS.items():
        assert op.adjoint_check().passed, k
    assert not OPS["blur"].shift_invariance_check().passed  # reflecting boundaries: not a circular convolution


@pytest.mark.parametrize("name", ["blur", "mask", "fourier"])
def test_matrix_free_wiener_is_the_dense_wiener_when_the_prior_is_low_rank_plus_diagonal(name):
    op = OPS[name]
    A = op.to_dense()
    cov = _cov(64, 5, seed=1)
    W = MatrixFreeWiener(op, cov, 0.05, tol=1e-11, maxiter=5000)
    dense = wiener_estimator(A, cov.to_dense(), 0.05)
    np.testing.assert_allclose(W.apply_centred(np.eye(A.shape[0])), dense.T, rtol=1e-6, atol=1e-8)
    assert W.last_solve_.converged.all()
    # with means: x̂ = x̄ + W(y − ȳ)
    mx, my = np.full(64, 0.3), np.full(A.shape[0], 0.1)
    y = np.random.default_rng(2).normal(size=(3, A.shape[0]))
    W2 = MatrixFreeWiener(op, cov, 0.05, mean_x=mx, mean_y=my, tol=1e-11, maxiter=5000)
    np.testing.assert_allclose(W2.predict(y), mx + (y - my) @ dense.T, rtol=1e-6, atol=1e-8)


def test_low_rank_plus_diagonal_fit_recovers_such_a_covariance():
    cov = _cov(12, 3, seed=3)
    S = cov.to_dense()
    X = np.random.default_rng(4).multivariate_normal(np.zeros(12), S, size=40_000)
    fit = LowRankDiagCovariance(rank=3).fit(X)
    assert np.linalg.norm(fit.to_dense() - S) / np.linalg.norm(S) < 0.025
    pca = LowRankDiagCovariance(rank=3, refine=0).fit(X)  # principal components alone: biased (see the class)
    assert np.linalg.norm(pca.to_dense() - S) > np.linalg.norm(fit.to_dense() - S)
    np.testing.assert_allclose(np.diag(fit.to_dense()), X.var(axis=0), rtol=1e-10)  # exact per-pixel variances
    with pytest.raises(ConfigError):
        LowRankDiagCovariance(rank=0).fit(X)


@pytest.mark.parametrize("name", ["mask", "fourier"])
def test_lsqr_pseudo_inverse_is_the_dense_pseudo_inverse(name):
    op = OPS[name]
    A = op.to_dense()
    Y = np.random.default_rng(5).normal(size=(4, A.shape[0]))
    r = pseudo_inverse_rows(op, Y, atol=1e-12, btol=1e-12)
    assert r.converged.all()
    np.testing.assert_allclose(r.solution, Y @ np.linalg.pinv(A).T, rtol=1e-6, atol=1e-8)


def _dense_split(C, A, S, sigma):
    M = C @ A - np.eye(A.shape[1])
    return np.trace(M @ S @ M.T) / np.trace(S), sigma**2 * np.sum(C**2) / np.trace(S)


@pytest.mark.parametrize("name", ["blur", "mask", "fourier"])
def test_signal_noise_equals_the_dense_values_within_the_intervals(name):
    """C = the dense Wiener estimator of a known Σ; targets drawn from N(0, Σ); the dense split is the truth."""
    op = OPS[name]
    A = op.to_dense()
    cov = _cov(64, 5, seed=6)
    S = cov.to_dense()
    C = wiener_estimator(A, S, 0.1)
    X = np.random.default_rng(7).multivariate_normal(np.zeros(64), S, size=2000)
    e = signal_noise_estimate(lambda Y: Y @ C.T, op, X, 0.1, n_probes=200, seed=1)
    sig, noi = _dense_split(C, A, S, 0.1)
    assert e.signal_error.low <= sig <= e.signal_error.high, (e.signal_error, sig)
    assert e.noise_amplification.low <= noi <= e.noise_amplification.high, (e.noise_amplification, noi)
    assert e.total.low <= sig + noi <= e.total.high
    assert e.signal_error.high - e.signal_error.low < 0.2 * sig  # informative, not vacuous


def test_signal_noise_intervals_cover_by_simulation():
    """600 data sets with a known Σ and a fixed C: both intervals cover the closed-form values ≈ 95%."""
    rng = np.random.default_rng(8)
    d = 10
    A = as_operator(rng.normal(size=(d, d)) / np.sqrt(d))
    L = rng.normal(size=(d, d)) * np.linspace(0.2, 1.2, d)
    S = L @ L.T
    C = wiener_estimator(A.to_dense(), S, 0.3) + 0.1 * rng.normal(size=(d, d))
    sig, noi = _dense_split(C, A.to_dense(), S, 0.3)
    hit_s, hit_n = [], []
    for s in range(600):
        X = np.random.default_rng(1000 + s).normal(size=(300, d)) @ L.T
        e = signal_noise_estimate(lambda Y: Y @ C.T, A, X, 0.3, n_probes=64, seed=s)
        hit_s.append(e.signal_error.low <= sig <= e.signal_error.high)
        hit_n.append(e.noise_amplification.low <= noi <= e.noise_amplification.high)
    assert 0.92 <= np.mean(hit_s) <= 0.98, np.mean(hit_s)
    assert 0.92 <= np.mean(hit_n) <= 0.98, np.mean(hit_n)


def test_covariance_refit_on_resampled_groups_is_the_resampled_sample_covariance():
    """Rank d (the whole span): the refit on group counts w is the covariance of the rows repeated w times."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(240, 5)) @ rng.normal(size=(5, 5))
    groups = np.arange(240) % 12
    mom = LowRankDiagCovariance(rank=5).fit(X).group_moments(X, groups, 12)
    w = rng.multinomial(12, np.full(12, 1 / 12)).astype(float)
    rows = np.concatenate([np.repeat(X[groups == j], int(w[j]), axis=0) for j in range(12)])
    np.testing.assert_allclose(mom.covariance(w).to_dense(), np.cov(rows.T, bias=True), atol=1e-10)
    np.testing.assert_allclose(mom.covariance(w).mean_, rows.mean(axis=0), atol=1e-12)


def test_refitted_wiener_warm_started_is_the_dense_wiener_of_the_new_prior():
    op = OPS["blur"]
    A = op.to_dense()
    W = MatrixFreeWiener(op, _cov(64, 5, seed=10), 0.05, tol=1e-11, maxiter=5000)
    Y = np.random.default_rng(11).normal(size=(4, A.shape[0]))
    _, res = W.solve_centred(Y)
    new = _cov(64, 5, seed=12)
    out, res2 = W.refitted(new, 0.07).solve_centred(Y, x0=res.solution)
    np.testing.assert_allclose(out, Y @ wiener_estimator(A, new.to_dense(), 0.07).T, rtol=1e-6, atol=1e-8)
    assert res2.converged.all()


def test_wiener_refits_by_woodbury_equal_the_dense_wiener_of_the_refitted_prior():
    """Rank r < d: the refit's low-rank part changes, δ is held; the push-through identity must reproduce the dense
    Wiener estimator of that prior exactly (σ unchanged), and to first order in Δσ²."""
    from linlens.surrogate.matrix_free import WienerRefits

    op = OPS["blur"]
    A = op.to_dense()
    cov = _cov(64, 5, seed=13)
    X = np.random.default_rng(14).multivariate_normal(np.zeros(64), cov.to_dense(), size=600)
    mom = LowRankDiagCovariance(rank=5).fit(X).group_moments(X, np.arange(600) % 10, 10)
    W = MatrixFreeWiener(op, mom.covariance(np.ones(10)), 0.1, tol=1e-12, maxiter=5000)
    Y = np.random.default_rng(15).normal(size=(3, A.shape[0]))
    ref = WienerRefits(W, mom, Y)
    c = ref.covariance(np.random.default_rng(16).multinomial(10, np.full(10, 0.1)).astype(float))
    np.testing.assert_allclose(c.diagonal_, W.covariance.diagonal_)
    np.testing.assert_allclose(ref.apply(c, 0.01), Y @ wiener_estimator(A, c.to_dense(), 0.1).T, rtol=1e-6,
                               atol=1e-9)
    exact = Y @ wiener_estimator(A, c.to_dense(), 0.101).T
    assert np.abs(ref.apply(c, 0.101**2) - exact).max() < 1e-3 * np.abs(exact).max()


def _example_blur(image):
    """The docs' worked-example reflect blur (explicit adjoint), in float64."""
    ns = example_namespace()
    op = ns["ReflectBlur"](image=image)
    op.k = op.k.double()
    return as_operator(op, in_shape=(1, *image))


def test_preconditioners_give_the_unpreconditioned_solutions_within_the_cg_tolerance():
    """Fourier-diagonal, scalar and no preconditioner on a reflect blur (24 × 24, float64) with a low rank +
    diagonal prior: every solution's residual difference ‖K(x_p − x_none)‖ is within the two stopping rules
    (2 · tol · ‖b‖), all equal the dense Wiener estimator, and the Fourier one needs the fewest iterations."""
    A = _example_blur((24, 24))
    d = 24 * 24
    rng = np.random.default_rng(0)
    V = np.linalg.qr(rng.normal(size=(d, 6)))[0].T
    cov = LowRankDiagCovariance.from_parts(V, np.linspace(5.0, 1.0, 6), rng.uniform(0.02, 0.08, d))
    sigma, tol = 0.05, 1e-9
    B = np.concatenate([rng.normal(size=(5, d)), V])
    K = A.to_dense() @ cov.to_dense() @ A.to_dense().T + sigma**2 * np.eye(d)
    W = wiener_estimator(A.to_dense(), cov.to_dense(), sigma)
    sol, its = {}, {}
    for p in ("none", "scalar", "fourier"):
        w = MatrixFreeWiener(A, cov, sigma, tol=tol, preconditioner=p)
        out, res = w.solve_centred(B)
        assert res.converged.all() and w.preconditioner == p
        sol[p], its[p] = res.solution, int(res.iterations.max())
        assert np.allclose(out, B @ W.T, rtol=0, atol=1e-6 * np.abs(B @ W.T).max())
    bn = np.linalg.norm(B, axis=1)
    for p in ("scalar", "fourier"):
        assert (np.linalg.norm((sol[p] - sol["none"]) @ K, axis=1) <= 2.01 * tol * bn).all(), p
    assert its["fourier"] < its["scalar"] < its["none"], its
    auto = MatrixFreeWiener(A, cov, sigma)
    auto.solve_centred(B[:1])
    assert auto.preconditioner == "fourier"  # a blur on images: "auto" takes the Fourier-diagonal one
    mask = as_operator(NS["mask"], in_shape=(1, 8, 8))
    auto = MatrixFreeWiener(mask, _cov(64, 3, 0), sigma)
    auto.solve_centred(np.ones((1, 64)))
    assert auto.preconditioner == "scalar"  # a mask's A Aᵀ is diagonal, not circulant: the scalar one


def test_the_fourier_preconditioner_is_exact_for_a_circular_blur_and_a_white_prior():
    """A circular blur and Σₓ = δ I (no low-rank part): A Σₓ Aᵀ + σ² I is circulant, the Fourier preconditioner
    estimated from 4 random images is that matrix itself, and CG stops after one iteration."""
    A = as_operator(CircularBlur(sigma=1.0), in_shape=(1, 16, 16))
    cov = LowRankDiagCovariance.from_parts(np.eye(256)[:1], np.zeros(1), np.full(256, 0.5))
    B = np.random.default_rng(1).normal(size=(3, 256))
    w = MatrixFreeWiener(A, cov, 0.1, tol=1e-10, preconditioner="fourier")
    out, res = w.solve_centred(B)
    assert int(res.iterations.max()) == 1 and res.converged.all()
    assert np.allclose(out, B @ wiener_estimator(A.to_dense(), cov.to_dense(), 0.1).T, atol=1e-9)
    with pytest.raises(ConfigError, match="Fourier preconditioner needs"):
        MatrixFreeWiener(as_operator(np.eye(5)), LowRankDiagCovariance.from_parts(np.eye(5)[:1], np.ones(1),
                                                                                 np.ones(5)), 0.1,
                         preconditioner="fourier")
