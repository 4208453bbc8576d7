"""The multiplier bootstrap: exact against brute force, bias against closed forms, coverage by simulation."""

import numpy as np
import pytest

from linlens.errors import ConfigError, ShapeError
from linlens.surrogate.multiplier import FixedDesign, MultiplierBootstrap, Perturbation, wiener_perturbation


def _explicit(p: Perturbation, w: np.ndarray) -> np.ndarray:
    E = p.L.T @ (w[:, None] * p.M)
    if p.g is not None:
        E = E + float(w @ p.g) * p.N
    return E


@pytest.mark.parametrize(("method", "block"), [("explicit", 512), ("gram", 512), ("gram", 7)])
def test_replicates_equal_the_statistic_of_the_explicitly_perturbed_operator(method, block, monkeypatch):
    """Second algorithm: form D* = D + Σ ±E(ω_b) explicitly and evaluate tr(O D* W D*ᵀ Oᵀ) directly. ``block`` 7:
    the Grams of a piece with itself are formed as upper triangles by several blocks of rows (their lower triangle
    undefined, read by BLAS symm; the bands' shared M W Mᵀ too)."""
    import linlens.surrogate.multiplier as mm

    monkeypatch.setattr(mm, "_SYM_BLOCK", block)
    rng = np.random.default_rng(0)
    n, n_tr, d_in, d_out = 30, 40, 5, 4
    fit = FixedDesign(rng.normal(size=(n, d_in))).perturbation(rng.normal(size=(n, d_out)), "fit")
    ref = Perturbation("train", rng.normal(size=(d_out, d_in)), rng.normal(size=(n_tr, d_out)),
                       rng.normal(size=(n_tr, d_in)), rng.normal(size=n_tr), rng.normal(size=(d_out, d_in)))
    ref2 = Perturbation("train", rng.normal(size=(d_out, d_in)), np.zeros((n_tr, d_out)), np.zeros((n_tr, d_in)),
                        rng.normal(size=n_tr), rng.normal(size=(d_out, d_in)))
    W = np.cov(rng.normal(size=(50, d_in)).T)
    O = rng.normal(size=(2, d_out))
    D = rng.normal(size=(d_out, d_in))
    mb = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=7, seed=3, method=method)
    for pieces in ([(1.0, fit)], [(1.0, fit), (-1.0, ref)], [(1.0, ref2), (-1.0, fit), (2.0, ref)]):
        for o in (None, O, slice(1, 3)):
            q = mb.quadratic(D, W, pieces, O=o, scale=2.0)
            qw = mb.quadratic(D, W, pieces, O=o, scale=2.0, DW=D @ W)  # the caller's D W: the same numbers
            assert qw.plug_in == pytest.approx(q.plug_in, rel=1e-12) and qw.expected == q.expected
            np.testing.assert_allclose(qw.replicates, q.replicates, rtol=1e-12)
            for b in range(mb.n_boot):
                Ds = D + sum(s * _explicit(p, mb.omega[p.source][b]) for s, p in pieces)
                OD = Ds if o is None else Ds[o] if isinstance(o, slice) else o @ Ds
                assert q.replicates[b] == pytest.approx(np.trace(OD @ W @ OD.T) / 4.0, rel=1e-10)
            # the expected quadratic term, by averaging over every multiplier draw is costly: check it against
            # its definition E_ω tr(O E W Eᵀ Oᵀ) = Σₖ tr(O eₖ W eₖᵀ Oᵀ) for the per-row pieces eₖ (ω iid ±1)
            E_rows = 0.0
            for src, m in (("fit", n), ("train", n_tr)):
                if not any(p.source == src for _, p in pieces):
                    continue
                for k in range(m):
                    w = np.zeros(m)
                    w[k] = 1.0
                    Ek = sum(s * _explicit(p, w) for s, p in pieces if p.source == src)
                    OE = Ek if o is None else Ek[o] if isinstance(o, slice) else o @ Ek
                    E_rows += float(np.trace(OE @ W @ OE.T))
            assert q.expected == pytest.approx(E_rows / 4.0, rel=1e-10)
    g = rng.normal(size=(d_out, d_in))
    lin = mb.linear(g, [(1.0, fit), (-1.0, ref)])
    for b in range(mb.n_boot):
        E = _explicit(fit, mb.omega["fit"][b]) - _explicit(ref, mb.omega["train"][b])
        assert lin[b] == pytest.approx(np.sum(g * E), rel=1e-10)


def test_fixed_design_gram_and_svd_routes_agree_with_lstsq():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(60, 4))
    F = rng.normal(size=(60, 3))
    ref = np.linalg.lstsq(np.c_[Y, np.ones(60)], F, rcond=None)[0]
    for Yd in (Y, np.c_[Y, Y[:, :1]]):  # full rank (Gram route) and rank-deficient (SVD route)
        des = FixedDesign(Yd)
        coef, icpt, r = des.fit(F)
        assert des.method == ("gram" if Yd.shape[1] == 4 else "svd")
        np.testing.assert_allclose(Yd @ coef.T + icpt, np.c_[Y, np.ones(60)] @ ref, atol=1e-10)
        H = np.c_[Yd, np.ones(60)] @ np.linalg.pinv(np.c_[Yd, np.ones(60)])  # hat matrix with the intercept
        np.testing.assert_allclose(des.leverage, np.diag(H), atol=1e-10)


def test_hc2_bias_of_the_squared_error_matches_the_truth_for_homoscedastic_noise():
    """E‖Ĉ − C‖²_Σ for OLS with homoscedastic noise σ² is σ² d_out tr(Σ (ỸᵀỸ)⁻¹): HC2 is unbiased for it."""
    rng = np.random.default_rng(2)
    n, d_in, d_out = 12, 3, 2
    Y = rng.normal(size=(n, d_in))
    des = FixedDesign(Y)
    S = np.eye(d_in)
    truth = d_out * np.trace(S @ np.linalg.inv((Y - Y.mean(0)).T @ (Y - Y.mean(0))))
    mb = MultiplierBootstrap({"fit": n}, n_boot=2)
    est = [mb.expected(des.perturbation(rng.normal(size=(n, d_out)), "fit"), S) for _ in range(20000)]
    assert np.mean(est) == pytest.approx(truth, rel=0.02)


def test_wiener_perturbation_matches_the_refitted_estimator_to_first_order():
    """Second route: re-estimate Σₓ and σ from reweighted rows and rebuild W; the linearization must match."""
    rng = np.random.default_rng(3)
    n, d = 4000, 3
    A = rng.normal(size=(d, d)) + 2 * np.eye(d)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    Y = X @ A.T + 0.3 * rng.normal(size=(n, d))

    def estimate(wt):
        mx = (wt @ X) / wt.sum()
        Sx = ((X - mx).T * wt) @ (X - mx) / wt.sum()
        E = Y - X @ A.T
        me = (wt @ E) / wt.sum()
        s2 = float(wt @ np.sum((E - me) ** 2, axis=1)) / wt.sum() / d
        return Sx, s2, Sx @ A.T @ np.linalg.inv(A @ Sx @ A.T + s2 * np.eye(d))

    Sx, s2, W = estimate(np.ones(n))
    p = wiener_perturbation(A, Sx, np.sqrt(s2), X, Y, prior_estimated=True, noise_estimated=True)
    np.testing.assert_allclose(p.coef, W, atol=1e-12)
    w = 0.05 * rng.choice([-1.0, 1.0], size=n)  # a small reweighting 1 + w of the rows
    dW = estimate(1.0 + w)[2] - W
    np.testing.assert_allclose(_explicit(p, w), dW, atol=0.05 * np.abs(dW).max())


def test_sketch_follows_the_exact_replicates_with_the_exact_mean():
    """The Hutchinson sketch (large operators on many rows) against the exact Gram route on the same multipliers:
    the same mean (the exact expectation), a spread within 25% and replicates that move together."""
    rng = np.random.default_rng(4)
    n, d = 400, 20
    Y = rng.normal(size=(n, d))
    fit = FixedDesign(Y).perturbation(Y @ rng.normal(size=(d, d)).T + np.abs(Y @ rng.normal(size=(d, d)).T), "fit")
    W = np.cov(rng.normal(size=(100, d)).T)
    D = 0.05 * rng.normal(size=(d, d))
    out = {}
    for method in ("gram", "sketch"):
        mb = MultiplierBootstrap({"fit": n}, n_boot=300, seed=1, method=method)
        out[method] = mb.quadratic(D, W, [(1.0, fit)])
    g, s = out["gram"], out["sketch"]
    assert s.expected == pytest.approx(g.expected, rel=1e-12) and s.plug_in == g.plug_in
    assert np.mean(s.replicates) == pytest.approx(g.plug_in + g.expected, rel=0.02)
    assert np.std(s.replicates) == pytest.approx(np.std(g.replicates), rel=0.25)
    assert np.corrcoef(s.replicates, g.replicates)[0, 1] > 0.8


def test_sketch_replicates_equal_an_explicit_hutchinson_estimate_with_cached_pieces():
    """Second algorithm: form E_b explicitly and evaluate the Hutchinson sum (1/p) Σⱼ uⱼᵀ O E_b W E_bᵀ Oᵀ uⱼ with the
    same probes; the bootstrap reuses each piece's sketch across calls (numerator, denominator, a diagonal weight),
    and every call must still equal its own explicit evaluation."""
    from linlens.surrogate.multiplier import SKETCH_PROBES

    rng = np.random.default_rng(5)
    n, n_tr, d = 40, 60, 6
    fit = FixedDesign(rng.normal(size=(n, d))).perturbation(rng.normal(size=(n, d)), "fit")
    ref = Perturbation("train", rng.normal(size=(d, d)), rng.normal(size=(n_tr, d)), rng.normal(size=(n_tr, d)),
                       rng.normal(size=n_tr), rng.normal(size=(d, d)))
    W = np.cov(rng.normal(size=(50, d)).T)
    mb = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=9, seed=2, method="sketch")
    O = rng.normal(size=(3, d))
    R = rng.normal(size=(d, d))
    D = fit.coef - R
    calls = [(D, W, [(1.0, fit), (-1.0, ref)], None), (R, W, [(1.0, ref)], None), (D, W, [(1.0, fit)], None),
             (fit.coef, 0.3 * np.eye(d), [(1.0, fit)], None), (D, W, [(1.0, fit)], O)]
    for Dm, Wm, pieces, o in calls:
        q = mb.quadratic(Dm, Wm, pieces, O=o)
        Om = np.eye(d) if o is None else o
        U = np.random.default_rng(12345).choice(np.array([-1.0, 1.0]), size=(Om.shape[0], SKETCH_PROBES))
        lin, hutch = np.empty(mb.n_boot), np.empty(mb.n_boot)
        for b in range(mb.n_boot):
            E = Om @ sum(s * _explicit(p, mb.omega[p.source][b]) for s, p in pieces)
            lin[b] = 2 * np.trace(E @ Wm @ (Om @ Dm).T)
            hutch[b] = np.mean(np.einsum("kj,kj->j", U, E @ Wm @ E.T @ U))
        expect = q.plug_in + lin + hutch - hutch.mean() + q.expected
        np.testing.assert_allclose(q.replicates, expect, rtol=1e-10)


def test_linear_with_factors_and_rank_one_gradients_equals_the_explicit_inner_product():
    """⟨G, E(ω_b)⟩ formed explicitly, against linear(D, [(c, p)]) (reusing L D) and the rank-one pair (u, v)."""
    rng = np.random.default_rng(6)
    n, d = 30, 5
    fit = FixedDesign(rng.normal(size=(n, d))).perturbation(rng.normal(size=(n, d)), "fit")
    mb = MultiplierBootstrap({"fit": n}, n_boot=6, seed=0)
    D, u, v = rng.normal(size=(d, d)), rng.normal(size=d), rng.normal(size=d)
    mb.quadratic(D, np.eye(d), [(1.0, fit)])  # forms L D, which linear(D, …) then reuses
    scaled, rank_one = mb.linear(D, [(0.5, fit)]), mb.linear((u, v), [(1.0, fit)])
    for b in range(mb.n_boot):
        E = _explicit(fit, mb.omega["fit"][b])
        assert scaled[b] == pytest.approx(0.5 * np.sum(D * E), rel=1e-10)
        assert rank_one[b] == pytest.approx(u @ E @ v, rel=1e-10)


@pytest.mark.parametrize("kron_full_max", [256, 2])  # the full Kronecker form, and the isotropic one above it
def test_shared_row_products_give_the_numbers_of_a_fresh_bootstrap(monkeypatch, kron_full_max):
    """The study's sharing (prepare_variance before the statistics, D + eR as a linear combination, test-row
    products kept per array) gives what a fresh MultiplierBootstrap computes from summed arrays with no cache."""
    import linlens.surrogate.multiplier as mod

    monkeypatch.setattr(mod, "KRON_FULL_MAX", kron_full_max)
    rng = np.random.default_rng(5)
    n, n_tr, d_in, d_out = 40, 50, 5, 4
    fit = FixedDesign(rng.normal(size=(n, d_in))).perturbation(rng.normal(size=(n, d_out)), "fit")
    X = rng.normal(size=(n_tr, d_in))
    rp = wiener_perturbation(rng.normal(size=(d_in, d_out)), np.cov(X.T, bias=True)[:d_out, :d_out], 0.3,
                             rng.normal(size=(n_tr, d_out)), X, prior_estimated=True, noise_estimated=True)
    S = np.cov(rng.normal(size=(60, d_in)).T)
    R = rp.coef
    D, e = fit.coef - R, 0.37
    pieces = [(1.0, fit), (-1.0, rp)]
    shared = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=9, seed=1)
    shared.prepare_variance(fit, S, pieces)
    shared.prepare_variance(rp, S, pieces)
    shared.quadratic(D, S, pieces)  # the statistic first: its L D meet the prepared weights
    shared.quadratic(R, S, [(1.0, rp)])
    a = shared.delta_variance([(1.0, D), (e, R)], S, rp, [(1.0, fit), (-(1.0 - e), rp)], scale=2.0)
    a_fit = shared.delta_variance(D, S, fit, pieces, scale=2.0)
    fresh = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=9, seed=1)
    b = fresh.delta_variance(D + e * R, S, rp, [(1.0, fit), (-(1.0 - e), rp)], scale=2.0)
    fresh.clear()
    b_fit = fresh.delta_variance(D.copy(), S, fit, pieces, scale=2.0)
    for x, y in ((a, b), (a_fit, b_fit)):
        assert x.plug_in == pytest.approx(y.plug_in, rel=1e-12)
        np.testing.assert_allclose(x.replicates, y.replicates, rtol=1e-10)
    # the test rows' forms: base = tr(X Σ Xᵀ) with Σ the rows' centred second moment (explicit product)
    T = rng.normal(size=(30, d_in))
    T = T - T.mean(axis=0)
    u, base, _ = shared.test_forms(T, D)
    assert base == pytest.approx(np.trace(D @ (T.T @ T / 30) @ D.T), rel=1e-12)
    assert u == pytest.approx(np.sum((T @ D.T) ** 2, axis=1), rel=1e-12)


def test_wiener_perturbation_coef_is_the_wiener_estimator():
    """The study takes an estimated Wiener reference from its perturbation (one inverse): the closed form's value."""
    from linlens.problems import wiener_estimator

    rng = np.random.default_rng(8)
    A, X = rng.normal(size=(6, 5)), rng.normal(size=(200, 5))
    Y = X @ A.T + 0.2 * rng.normal(size=(200, 6))
    Sx = np.cov(X.T, bias=True)
    p = wiener_perturbation(A, Sx, 0.2, X, Y, prior_estimated=True, noise_estimated=True)
    np.testing.assert_allclose(p.coef, wiener_estimator(A, Sx, 0.2), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("method", ["explicit", "gram", "sketch"])
def test_plug_in_given_and_cached_n_w_give_the_numbers_formed_from_scratch(method):
    """The study passes tr(D W Dᵀ) read from the test rows and the full-rank part's ⟨N W, D⟩ comes from N W kept per
    piece: the replicates must equal those of a fresh bootstrap that forms D W itself (and, on the exact routes, the
    statistic of each explicitly perturbed operator)."""
    rng = np.random.default_rng(11)
    n, n_tr, d = 30, 40, 5
    fit = FixedDesign(rng.normal(size=(n, d))).perturbation(rng.normal(size=(n, d)), "fit")
    X = rng.normal(size=(n_tr, d))
    rp = wiener_perturbation(rng.normal(size=(d, d)), np.cov(X.T, bias=True), 0.4, X, rng.normal(size=(n_tr, d)),
                             prior_estimated=True, noise_estimated=True)
    T = rng.normal(size=(50, d))
    T = T - T.mean(axis=0)
    W = T.T @ T / 50
    pieces = [(1.0, fit), (-1.0, rp)]
    for D in (fit.coef - rp.coef, rp.coef):
        mb = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=8, seed=4, method=method)
        base = mb.test_forms(T, D / 2.0)[1]  # tr((D/2) W (D/2)ᵀ) from the rows, as the study reads it
        q = mb.quadratic(D, W, pieces, scale=2.0, plug_in=base)
        r = MultiplierBootstrap({"fit": n, "train": n_tr}, n_boot=8, seed=4, method=method).quadratic(
            D.copy(), W.copy(), pieces, scale=2.0)
        assert q.plug_in == pytest.approx(r.plug_in, rel=1e-12) and q.expected == pytest.approx(r.expected, rel=1e-12)
        np.testing.assert_allclose(q.replicates, r.replicates, rtol=1e-10)
        if method != "sketch":
            for b in range(mb.n_boot):
                Db = D + _explicit(fit, mb.omega["fit"][b]) - _explicit(rp, mb.omega["train"][b])
                assert q.replicates[b] == pytest.approx(float(np.sum((Db @ W) * Db)) / 4.0, rel=1e-10)


def test_plug_in_with_output_rows_is_refused():
    """plug_in is tr(D W Dᵀ) over all outputs: given with output rows O it was silently ignored; now refused."""
    rng = np.random.default_rng(12)
    n, d = 30, 4
    fit = FixedDesign(rng.normal(size=(n, d))).perturbation(rng.normal(size=(n, d)), "fit")
    mb = MultiplierBootstrap({"fit": n}, n_boot=4, seed=0)
    with pytest.raises(ConfigError, match="plug_in"):
        mb.quadratic(fit.coef, np.eye(d), [(1.0, fit)], O=np.eye(d)[:2], plug_in=1.0)


def test_wiener_perturbation_with_the_callers_products_equals_forming_them():
    """The study hands over A Σₓ Aᵀ, A Σₓ (SignalNoiseModel) and X Aᵀ (σ's estimate): the perturbation must be the
    one formed from A, Σₓ and X alone, and its coefficient the closed-form Wiener estimator; a wrong shape refused."""
    from linlens.problems import wiener_estimator

    rng = np.random.default_rng(9)
    A, X = rng.normal(size=(6, 5)), rng.normal(size=(300, 5)) + 2.0
    Y = X @ A.T + 0.3 * rng.normal(size=(300, 6))
    Sx = np.cov(X.T, bias=True)
    for prior, noise in ((True, True), (False, True), (True, False)):
        own = wiener_perturbation(A, Sx, 0.3, X, Y, prior_estimated=prior, noise_estimated=noise)
        given = wiener_perturbation(A, Sx, 0.3, X, Y, prior_estimated=prior, noise_estimated=noise,
                                    ASA=A @ Sx @ A.T, A_Sx=A @ Sx, AX=X @ A.T)
        np.testing.assert_allclose(given.coef, wiener_estimator(A, Sx, 0.3), rtol=1e-10, atol=1e-13)
        for f in ("coef", "L", "M", "g", "N"):
            a, b = getattr(own, f), getattr(given, f)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12 * max(np.abs(a).max(), 1e-300))
    with pytest.raises(ShapeError, match="AX"):
        wiener_perturbation(A, Sx, 0.3, X, Y, prior_estimated=True, noise_estimated=True, AX=X[:10] @ A.T)


@pytest.mark.parametrize("method", ["gram", "sketch"])
def test_float32_replicate_products_change_the_replicates_by_less_than_1e5_of_their_spread(method, monkeypatch):
    """From REPLICATE_FLOAT32_MIN inputs on, the sketch, the Grams and the row products L D of the linear terms
    (replicates and standard errors only) run in float32: the same statistic with every product in float64 (the
    constant raised) differs by < 1e-5 of the replicates' spread, the first-order variance (the bootstrap-t's
    standard error) by < 1e-5 relative, the plug-in and the bias correction are bit for bit the same (float64), and
    float32 is really taken."""
    import linlens.surrogate.multiplier as mm

    rng = np.random.default_rng(7)
    n, d = 1200, mm.REPLICATE_FLOAT32_MIN
    Y = rng.normal(size=(n, d))
    F = Y @ (rng.normal(size=(d, d)) / np.sqrt(d)).T + np.abs(Y[:, :d] @ rng.normal(size=(d, d)).T / np.sqrt(d))
    fit = FixedDesign(Y).perturbation(F, "fit")
    ref = FixedDesign(Y[::-1].copy()).perturbation(Y[::-1] + rng.normal(size=(n, d)), "train")
    W = np.cov(rng.normal(size=(2 * d, d)).T)
    D = fit.coef - ref.coef
    O = np.linalg.qr(rng.normal(size=(d, 40)))[0].T  # a band of output rows
    out, var, lin = {}, {}, {}
    for lo in (d, 10**9):
        monkeypatch.setattr(mm, "REPLICATE_FLOAT32_MIN", lo)
        mb = MultiplierBootstrap({"fit": n, "train": n}, n_boot=40, seed=3, method=method)
        out[lo] = (mb.quadratic(D, W, [(1.0, fit), (-1.0, ref)]), mb.quadratic(D, W, [(1.0, fit)], O=O))
        dt = np.dtype(np.float32 if lo == d else np.float64)
        key = ("SX", id(fit)) if method == "sketch" else ("flat", "gram", dt.str)  # the sketch, the Grams' array
        assert mb._cache[key].dtype == dt
        assert (("forms", id(fit), id(D), np.float32) in mb._cache) == (lo == d)
        var[lo] = (mb.linear_variance(D, W, fit), mb.linear_variance([(1.0, D), (0.5, ref.coef)], W, ref))
        lin[lo] = mb.linear(fit.coef, [(1.0, fit), (-0.3, ref)])
    for q32, q64 in zip(out[d], out[10**9], strict=True):
        assert q32.plug_in == q64.plug_in and q32.expected == q64.expected
        assert np.max(np.abs(q32.replicates - q64.replicates)) < 1e-5 * np.std(q64.replicates)
    np.testing.assert_allclose(var[d], var[10**9], rtol=1e-5)
    assert np.max(np.abs(lin[d] - lin[10**9])) < 1e-5 * np.std(lin[10**9])


def _quadratic_dominated_case():
    """An operator fitted on ~10 rows per input (d = 300, n = 3000, B = 50), a weight W, and a small (quadratic term
    dominates) and a large (linear term dominates) difference D: (n, B, fit, W, small, large)."""
    rng = np.random.default_rng(0)
    d, n, B = 300, 3000, 50
    Y = rng.normal(size=(n, d))
    fit = FixedDesign(Y).perturbation(Y @ rng.normal(size=(d, d)).T / np.sqrt(d) + 3 * rng.normal(size=(n, d)), "fit")
    W = np.cov(rng.normal(size=(2 * d, d)).T)
    return n, B, fit, W, 0.001 * rng.normal(size=(d, d)), 3.0 * rng.normal(size=(d, d))


def test_auto_drops_a_sketch_whose_own_noise_would_inflate_the_replicates():
    """A large quadratic term (an operator fitted on ~10 rows per input, D small): the cost rule picks the sketch, whose
    32-probe noise is several times the true spread. "auto" measures that noise (the probes' variance / p) and takes
    the exact route: its replicates are the explicit ones (second algorithm), not the sketch's inflated ones. With a
    large D (the linear term dominates) the sketch's noise is negligible and "auto" keeps it."""
    n, B, fit, W, small, large = _quadratic_dominated_case()
    q = {m: MultiplierBootstrap({"fit": n}, n_boot=B, seed=1, method=m).quadratic(small, W, [(1.0, fit)])
         for m in ("auto", "explicit", "sketch")}
    assert np.std(q["sketch"].replicates) > 2 * np.std(q["explicit"].replicates)  # the sketch's noise dominates
    np.testing.assert_allclose(q["auto"].replicates, q["explicit"].replicates, rtol=1e-9)
    big = {m: MultiplierBootstrap({"fit": n}, n_boot=B, seed=1, method=m).quadratic(large, W, [(1.0, fit)])
           for m in ("auto", "sketch")}
    np.testing.assert_array_equal(big["auto"].replicates, big["sketch"].replicates)


def test_the_sketch_pilot_forms_8_probes_where_the_noise_is_large_and_all_32_else():
    """"auto" forms a sketch's first _SKETCH_PILOT probes first. Quadratic-dominated (D small): the pilot shows the
    noise far above SKETCH_NOISE_MAX, the other probes are never formed, and the replicates are the explicit ones
    (second algorithm). Linear-dominated (D large): the sketch is completed and kept, its replicates equal to the
    sketch formed at once (method="sketch", the same probes) — the two ranges give the same numbers."""
    import linlens.surrogate.multiplier as mm

    n, B, fit, W, small, large = _quadratic_dominated_case()
    for D, probes in ((small, mm._SKETCH_PILOT), (large, mm.SKETCH_PROBES)):
        auto = MultiplierBootstrap({"fit": n}, n_boot=B, seed=1)
        q = auto.quadratic(D, W, [(1.0, fit)])
        assert auto._cache[("SXn", id(fit))] == probes
        ref = "explicit" if probes < mm.SKETCH_PROBES else "sketch"
        r = MultiplierBootstrap({"fit": n}, n_boot=B, seed=1, method=ref).quadratic(D, W, [(1.0, fit)])
        assert q.plug_in == r.plug_in and q.expected == pytest.approx(r.expected, rel=1e-12)
        np.testing.assert_allclose(q.replicates, r.replicates, rtol=1e-9 if ref == "explicit" else 1e-13)
