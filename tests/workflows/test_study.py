"""The linearity study against closed forms: Wiener theory, the signal/noise split, verdicts with known answers."""

import json

import numpy as np
import pytest
from _cases import Fixed

from linlens.errors import ShapeError
from linlens.problems import GaussianPrior, InverseProblem, gaussian_blur, prescribed_spectrum
from linlens.workflows.study import inverse_study, linearity_study

S = np.logspace(0, -3, 10)
SIGMA = 1e-2
PROB = InverseProblem(prescribed_spectrum(S, seed=1), GaussianPrior(10), SIGMA, name="test")


@pytest.fixture(scope="module")
def study():
    W = PROB.wiener()
    X, Y = PROB.sample(20000, seed=0)
    models = {"wiener-net": Fixed(W), "pinv-net": Fixed(PROB.pinv()), "zero-net": Fixed(np.zeros((10, 10))),
              "10x-wiener": Fixed(10 * W)}
    return linearity_study(models, PROB, X_train=X, Y_train=Y, n_probe=4000, n_boot=40, seed=0)


def test_wiener_net_verdict_and_closed_form_signal_error(study):
    m = study.models["wiener-net"]
    # C_data is resampled with its own training rows: on a Gaussian problem its population value IS the Wiener
    # estimator, so the honest verdict is a tie of the two (issue 21: "closer to Wiener than to C_data" was built in
    # while C_data was held fixed); A⁻¹ is clearly farther
    assert m.closest == "tie" and set(m.verdict.closest) == {"Wiener", "C_data"}
    assert study.reference_status["C_data"].startswith("estimated")
    assert study.reference_status["Wiener"].startswith("fixed")
    assert abs(m.errors["Wiener"]["estimate"]) < 1e-20
    assert m.r2 == pytest.approx(1.0, abs=1e-12)
    phi = S**2 / (S**2 + SIGMA**2)  # Σₓ = I: the Wiener factors are Tikhonov's here
    np.testing.assert_allclose(m.filter_factors.factors, phi, atol=1e-8)
    # closed forms for Σₓ = I, white noise: signal Σ(1 − φᵢ)²/n, noise σ² Σ φᵢ²/sᵢ² / n
    assert m.signal_noise.signal_error == pytest.approx(np.sum((1 - phi) ** 2) / 10, rel=1e-8)
    assert m.signal_noise.noise_amplification == pytest.approx(SIGMA**2 * np.sum(phi**2 / S**2) / 10, rel=1e-8)
    # the decomposition reproduces the surrogate's measured test MSE (4000 test pairs; sampling error ~3%)
    assert m.signal_noise.total / 1.0 == pytest.approx(m.test_mse_surrogate, rel=0.08)
    assert m.test_mse_model == pytest.approx(PROB.mmse_linear() / 10, rel=0.08)
    d = study.to_dict()
    json.dumps(d)
    assert d["models"]["wiener-net"]["closest"] == "tie"
    # the study's one SVD of A is kept for reports (not in the JSON) and is an SVD of A
    assert "svd_A" not in d
    U, s, Vt = study.svd_A
    np.testing.assert_allclose((U * s) @ Vt, PROB.A, atol=1e-12)


def test_zero_map_is_closest_to_nothing_and_has_signal_error_one(study):
    z = study.models["zero-net"]
    assert z.closest == "none"
    for k in study.references:
        assert z.errors[k]["estimate"] == pytest.approx(1.0)
    assert z.signal_noise.signal_error == pytest.approx(1.0)
    assert z.signal_noise.noise_amplification == 0.0


def test_error_against_inverse_no_longer_pinned_at_one(study):
    """The old metric scored C = 0, Wiener and 10× Wiener all ≈ 1 against A⁻¹; the split separates them."""
    sig = {k: study.models[k].signal_noise.signal_error for k in ("zero-net", "wiener-net", "10x-wiener")}
    noise = {k: study.models[k].signal_noise.noise_amplification for k in sig}
    assert sig["zero-net"] == pytest.approx(1.0)
    assert sig["wiener-net"] < 0.3 < 1.5 < sig["10x-wiener"]
    assert noise["10x-wiener"] == pytest.approx(100 * noise["wiener-net"], rel=1e-8)
    p = study.models["pinv-net"]
    assert p.closest == "A⁻¹" and p.signal_noise.signal_error < 1e-10
    assert p.signal_noise.noise_amplification > 10  # A⁻¹ amplifies noise through 1/s up to 1e3


def test_nonlinear_model_with_known_population_surrogate():
    """f(y) = W y + β|Gy| on symmetric y has population surrogate W exactly: the corrected error against the
    Wiener estimator is ≈ 0 (its interval covers 0) while the plug-in is biased up by the nonlinear 'noise'."""
    W = PROB.wiener()
    G = np.random.default_rng(5).normal(size=(10, 10))
    X, Y = PROB.sample(20000, seed=0)
    res = linearity_study({"f": Fixed(W, G, beta=1.0)}, PROB, X_train=X, Y_train=Y, n_probe=3000, n_boot=60,
                          seed=1)
    e = res.models["f"].errors["Wiener"]
    assert e["low"] <= 0.0 <= e["high"]
    assert e["plug_in"] > 3 * abs(e["estimate"])
    assert res.models["f"].r2 < 0.9
    sn = res.models["f"].signal_noise_corrected
    truth = res.reference_signal_noise["Wiener"]
    # one run: the corrected estimates lie within 3 bootstrap standard deviations of the closed-form truth
    # (interval coverage over many runs is measured in benchmarks/bench_intervals.py)
    for key, true in (("signal_error", truth.signal_error), ("noise_amplification", truth.noise_amplification)):
        assert abs(sn[key]["estimate"] - true) < 3 * sn[key]["std"], key


def test_estimation_noise_flags_unweighted_numbers_on_an_ill_conditioned_problem():
    """f = Wiener + β|Gy| has population surrogate exactly the Wiener estimator, so ‖Ĉ − W‖_F/‖W‖_F (0.1–0.2
    here) is pure estimation noise of Ĉ on a blur with tiny noise: it must be flagged; the large, stable
    distance to A⁻¹ must not."""
    prob = InverseProblem(gaussian_blur(16, width=1.5), GaussianPrior(16), 1e-3, name="blur")
    X, Y = prob.sample(4000, seed=0)
    G = np.random.default_rng(6).normal(size=(16, 16))
    res = linearity_study({"f": Fixed(prob.wiener(), G, beta=0.3)}, prob, X_train=X, Y_train=Y, n_probe=1000,
                          n_boot=40, seed=0)
    noise = res.models["f"].estimation_noise
    w = noise["‖C − Wiener‖_F/‖Wiener‖_F"]
    assert w["value"] > 0.05 and w["noise_dominated"]
    assert w["noise_floor"] == pytest.approx(w["value"], rel=0.5)  # the whole distance is the noise floor
    assert not noise["‖C − A⁻¹‖_F/‖A⁻¹‖_F"]["noise_dominated"]
    assert set(noise) >= {"σ_max(C)", "‖C‖_F", "filter-factor leakage"}


def test_inverse_study_without_operator_and_with_estimated_noise():
    X, Y = PROB.sample(6000, seed=2)
    Xp, Yp = PROB.sample(2000, seed=3)
    no_A = inverse_study({"w": Fixed(PROB.wiener())}, Yp, Xp, X, Y, n_boot=20)
    assert set(no_A.references) == {"C_data"} and no_A.models["w"].signal_noise is None
    with_A = inverse_study({"w": Fixed(PROB.wiener())}, Yp, Xp, X, Y, A=PROB.A, n_boot=20)
    assert with_A.noise_std == pytest.approx(SIGMA, rel=0.05)
    assert any("estimated" in n for n in with_A.notes)


def test_study_rejects_mismatched_training_pairs():
    prob = InverseProblem(gaussian_blur(6), GaussianPrior(6), 0.1)
    X, Y = prob.sample(100)
    with pytest.raises(ShapeError):
        linearity_study({"m": Fixed(np.eye(6))}, prob, X_train=X[:, :5], Y_train=Y, n_boot=2)
    with pytest.raises(ShapeError):
        inverse_study({"m": Fixed(np.eye(6))}, Y[:50], X[:49], X, Y)


def test_noise_dominated_terms_have_consistent_intervals_and_say_so():
    """f(y) = β|Gy| has population surrogate 0 (y is symmetric), so its noise amplification is exactly 0 and all
    of Ĉ is estimation noise. Every non-negative term must get 0 ≤ low ≤ high; an estimate outside its own
    interval (the resampled fits saying the bias correction is short) must be flagged, and the report text must
    say "noise-dominated" instead of printing an inverted interval (seen: "8.09e-05 [0, -4.9e-05]")."""
    from linlens.workflows.study_report import ci_text

    G = np.random.default_rng(7).normal(size=(10, 10))
    X, Y = PROB.sample(4000, seed=0)
    for seed in range(3):
        res = linearity_study({"f": Fixed(np.zeros((10, 10)), G, beta=1.0)}, PROB, X_train=X, Y_train=Y,
                              n_probe=600, n_boot=200, seed=seed)
        m = res.models["f"]
        for key, v in {**m.errors, **m.signal_noise_corrected}.items():
            assert 0.0 <= v["low"] <= v["high"], (key, v)
            inside = v["low"] <= v["estimate"] <= v["high"]
            assert v["noise_dominated"] == (not inside), (key, v)
            assert ("noise-dominated" in ci_text(v)) == (not inside)
        nz = m.signal_noise_corrected["noise_amplification"]
        assert nz["low"] == 0.0 and nz["plug_in"] > 0  # truth 0 is covered; the plug-in is pure estimation bias


def test_few_rows_per_feature_get_a_note():
    X, Y = PROB.sample(2000, seed=0)
    few = linearity_study({"w": Fixed(PROB.wiener())}, PROB, X_train=X, Y_train=Y, n_probe=60, n_boot=10)
    many = linearity_study({"w": Fixed(PROB.wiener())}, PROB, X_train=X, Y_train=Y, n_probe=400, n_boot=10)
    assert any("fewer than 3 per unknown" in n for n in few.notes)
    assert not any("per unknown" in n for n in many.notes)


def test_few_training_pairs_for_c_data_get_a_note():
    """C_data fitted on fewer than 2 training pairs per unknown: its error interval still undercovers in simulation
    (bench_intervals.py --parts study-cdata: 0.92 at 1.8 per unknown, 0.94 at 2.3 with the null variance estimated
    directly): the study says so. From 2 per unknown the interval covers and the verdict keeps a true tie (named one
    reference in 0.023 of data sets at 2.3 per unknown with C_data's extra variance; 0.18 without): no note there,
    nor with many pairs."""
    few_x, few_y = PROB.sample(20, seed=0)  # 20 pairs for 10 inputs + intercept
    mid_x, mid_y = PROB.sample(25, seed=0)
    X, Y = PROB.sample(2000, seed=0)
    few = linearity_study({"w": Fixed(PROB.wiener())}, PROB, X_train=few_x, Y_train=few_y, n_probe=400, n_boot=10)
    mid = linearity_study({"w": Fixed(PROB.wiener())}, PROB, X_train=mid_x, Y_train=mid_y, n_probe=400, n_boot=10)
    many = linearity_study({"w": Fixed(PROB.wiener())}, PROB, X_train=X, Y_train=Y, n_probe=400, n_boot=10)
    assert sum("C_data is fitted on 20 training pairs" in n and "interval of the error against C_data is not "
               "calibrated" in n for n in few.notes) == 1
    assert not any("C_data is fitted" in n for n in mid.notes)
    assert not any("C_data is fitted" in n for n in many.notes)


def test_estimated_reference_is_resampled_with_its_own_rows_and_covered():
    """f = C₀y + β|Gy| (population surrogate C₀) against C_data fitted on its own pairs x = Ky + e (population
    value K): the truth is tr((C₀ − K)Σ(C₀ − K)ᵀ)/tr(KΣKᵀ) in closed form. With C_data's estimation noise
    resampled, the corrected estimate is unbiased and the interval covers (held fixed, C_data's own noise was
    neither subtracted nor in the interval). 40 data sets here; 200 in benchmarks/bench_intervals.py."""
    from linlens.surrogate.simulation import KnownSurrogate

    sim = KnownSurrogate.make(d_in=6, d_out=4, seed=0)
    K = sim.C0 + 0.3 * np.random.default_rng(99).normal(size=sim.C0.shape)
    S = sim.covariance
    truth = np.trace((sim.C0 - K) @ S @ (sim.C0 - K).T) / np.trace(K @ S @ K.T)
    f = Fixed(sim.C0, sim.G, beta=sim.beta)
    hits, est = [], []
    for r in range(40):
        Yp, _ = sim.sample(1200, seed=10_000 + r)
        Ytr, _ = sim.sample(1200, seed=20_000 + r)
        Xtr = Ytr @ K.T + 0.5 * np.random.default_rng(30_000 + r).normal(size=(1200, 4))
        res = inverse_study({"f": f}, Yp, Yp @ K.T, Xtr, Ytr, n_boot=100, seed=r)
        e = res.models["f"].errors["C_data"]
        hits.append(e["low"] <= truth <= e["high"])
        est.append(e["estimate"])
    assert np.mean(hits) >= 0.85
    assert abs(np.mean(est) / truth - 1) < 0.1
    assert res.reference_status["C_data"].startswith("estimated")


@pytest.mark.parametrize("ill", [False, True])  # the design's Gram route, and LinearSurrogate's policy beyond it
def test_surrogate_and_c_data_equal_an_independent_least_squares_fit(ill):
    """The study fits each map once (the surrogate and C_data from the multiplier design's factorization when it is
    well-conditioned): both must equal numpy's lstsq with an intercept column (second algorithm, QR/SVD)."""
    import torch

    rng = np.random.default_rng(3)
    d, n = 6, 400
    scales = np.r_[np.ones(d - 1), 1e-7 if ill else 0.5]  # κ(Y) ≈ 1e7 > GRAM_KAPPA_LIMIT: the SVD/QR route
    Y, Ytr = rng.normal(size=(n, d)) * scales, rng.normal(size=(n, d)) * scales
    X, Xtr = rng.normal(size=(n, d)), Ytr @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))
    net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, d)).double()
    res = inverse_study({"net": net}, Y, X, Xtr, Ytr, n_boot=20)

    def lstsq(A, B):
        sol = np.linalg.lstsq(np.c_[A, np.ones(len(A))], B, rcond=None)[0]
        return sol[:-1].T, sol[-1]

    with torch.no_grad():
        F = net(torch.from_numpy(Y[: n // 2])).numpy()
    coef, icpt = lstsq(Y[: n // 2], F)
    m = res.models["net"]
    np.testing.assert_allclose(m.coef, coef, rtol=1e-6, atol=1e-6 * np.abs(coef).max())
    np.testing.assert_allclose(m.intercept, icpt, rtol=1e-6, atol=1e-8)
    cd = lstsq(Ytr, Xtr)[0]
    np.testing.assert_allclose(res.references["C_data"], cd, rtol=1e-6, atol=1e-6 * np.abs(cd).max())


@pytest.mark.parametrize("partial", [False, True])
def test_comparisons_from_every_value_and_leading_vectors_equal_full_svds(partial, monkeypatch):
    """Above 512 inputs the study factorizes C, the Wiener estimator and C_data for every singular value and the
    128 leading vector pairs only (linalg.svd_leading: the spectra shown, the vectors the principal angles use), and A⁺
    from A's one SVD: every comparison must equal compare_operators on the same two matrices with their full LAPACK
    SVDs (second route), the reference splits the general products on copies (no closed form).

    ``partial``: above REFERENCE_SPECTRUM_MAX_D (lowered here to 512) the Wiener estimator and C_data get their leading
    129 values only: those equal numpy's SVD's leading values (third route) to rounding, the comparison says "leading
    129 of 520" and reports no rank of R and no log-spectral distance (None, with the reason), the principal-angle
    profile and everything else are the full comparison's, the statistics do not change, and a note says so."""
    import linlens.workflows.study as study_mod
    from linlens.surrogate import compare_operators
    from linlens.surrogate.compare import SignalNoiseModel

    if partial:
        monkeypatch.setattr(study_mod, "REFERENCE_SPECTRUM_MAX_D", 512)

    rng = np.random.default_rng(4)
    d, n_tr, n_pr = 520, 700, 1100
    s = np.logspace(0, -4, d)
    Ua, Va = np.linalg.qr(rng.normal(size=(d, d)))[0], np.linalg.qr(rng.normal(size=(d, d)))[0]
    A = (Ua * s) @ Va.T
    Xtr, Xp = rng.normal(size=(n_tr, d)), rng.normal(size=(n_pr, d))
    Ytr, Yp = Xtr @ A.T + 0.05 * rng.normal(size=(n_tr, d)), Xp @ A.T + 0.05 * rng.normal(size=(n_pr, d))
    C0 = (Va * (s / (s**2 + 0.05**2))) @ Ua.T + 1e-3 * rng.normal(size=(d, d))
    res = inverse_study({"net": Fixed(C0)}, Yp, Xp, Xtr, Ytr, A=A, noise_std=0.05, n_boot=10)
    m = res.models["net"]
    for k, R in res.references.items():
        got, ref = m.comparisons[k], compare_operators(m.coef, R)
        assert ref.k == got.k
        cut = partial and k != "A⁻¹"  # A⁻¹'s SVD comes from A's: every value at any size
        for f in ("singular_values_C", "singular_values_R"):  # equal to rounding: 1e-13 of σ_max
            want = getattr(ref, f)[:129] if cut and f.endswith("R") else getattr(ref, f)
            np.testing.assert_allclose(getattr(got, f), want, rtol=0, atol=1e-13 * want[0])
        assert got.spectra == {"C": "all 520", "R": "leading 129 of 520" if cut else "all 520"}
        assert got.rank_info_C.rank == ref.rank_info_C.rank
        if cut:
            np.testing.assert_allclose(got.singular_values_R, np.linalg.svd(R, compute_uv=False)[:129], rtol=0,
                                       atol=1e-13 * ref.singular_values_R[0])
            assert got.rank_info_R is None and got.log_spectral_distance is None and got.subspaces.rank_R is None
            assert set(got.omitted) == {"rank_info_R", "log_spectral_distance"}
            np.testing.assert_allclose(got.singular_value_rel_error, ref.singular_value_rel_error[:129], rtol=1e-9)
            d_json = got.to_dict()
            assert d_json["rank_info_R"] is None and d_json["omitted"]["rank_info_R"].startswith("only the leading 129")
        else:
            assert got.omitted == {}
            assert got.rank_info_R.rank == ref.rank_info_R.rank
            assert got.log_spectral_distance == pytest.approx(ref.log_spectral_distance, rel=1e-9)
        assert got.rel_spectral_error == pytest.approx(ref.rel_spectral_error, rel=1e-9)
        p, q = got.subspaces.profile, ref.subspaces.profile
        np.testing.assert_allclose(p.max_angles, q.max_angles, rtol=0, atol=1e-9)
        np.testing.assert_allclose(p.wedin_bounds, q.wedin_bounds, rtol=1e-8)
    general = SignalNoiseModel(A, np.cov(Xtr.T, bias=True), 0.05, n_bands=8)
    for k, R in res.references.items():
        ref = general.split(R.copy())
        got = res.reference_signal_noise[k]
        for f in ("signal_error", "noise_amplification", "total"):
            assert getattr(got, f) == pytest.approx(getattr(ref, f), rel=1e-7, abs=1e-12)
    inv = np.linalg.inv(A)
    np.testing.assert_allclose(res.references["A⁻¹"], inv, rtol=0, atol=1e-8 * np.abs(inv).max())
    assert any("leading 129 of 520" in note for note in res.notes) == partial
    if partial:  # the statistics do not read the references' spectra: the same numbers as with every value
        monkeypatch.setattr(study_mod, "REFERENCE_SPECTRUM_MAX_D", 1024)
        full = inverse_study({"net": Fixed(C0)}, Yp, Xp, Xtr, Ytr, A=A, noise_std=0.05, n_boot=10).models["net"]
        assert full.errors == m.errors and full.verdict.to_dict() == m.verdict.to_dict()


def test_test_products_shared_with_the_predictions_give_the_statistics_formed_from_scratch(monkeypatch):
    """inverse_study forms each operator's test-row product once (predictions, test MSEs) and hands T_c Xᵀ, centred and
    scaled from it, to the statistics: every number must equal the statistics that form T_c Xᵀ themselves (second
    route), on probes with a large mean (the centring's cancellation) and an estimated Wiener reference."""
    import linlens.workflows.study as study_mod

    rng = np.random.default_rng(6)
    d, n = 8, 900
    A = np.diag(np.linspace(2.0, 0.2, d))
    X, Xtr = rng.normal(size=(n, d)) + 30.0, rng.normal(size=(n, d)) + 30.0
    Y, Ytr = X @ A.T + 0.1 * rng.normal(size=(n, d)), Xtr @ A.T + 0.1 * rng.normal(size=(n, d))
    net = Fixed(np.linalg.inv(A) * 0.9)
    shared = inverse_study({"net": net}, Y, X, Xtr, Ytr, A=A, n_boot=30)
    own = study_mod._multiplier_statistics

    def from_scratch(*args, test_products=None, **kw):
        return own(*args, **kw)

    monkeypatch.setattr(study_mod, "_multiplier_statistics", from_scratch)
    ref = inverse_study({"net": net}, Y, X, Xtr, Ytr, A=A, n_boot=30)
    a, b = shared.models["net"], ref.models["net"]
    assert a.verdict.verdict == b.verdict.verdict
    for k in a.errors:
        for f in ("estimate", "low", "high", "std"):
            assert a.errors[k][f] == pytest.approx(b.errors[k][f], rel=1e-9, abs=1e-14)
    assert shared.test_mse == pytest.approx(ref.test_mse, rel=1e-12)


def test_band_terms_in_a_singular_basis_equal_the_bands_of_c_a_minus_p():
    """The study evaluates the signal error per band in A's right singular basis (slices of Φ − J under VᵀΣₓV, C's
    perturbation rotated to rows Vᵀlₖ and (U s)ᵀmₖ) and the filter-factor leakage's first-order change from the
    same rows: second route, the original basis — the quadratic of CA − P under Σₓ on the output rows Vᵀ[a:b] with
    C's perturbation times A, and ⟨V Γ (U s)ᵀ, E⟩ — on the same multipliers (rank-deficient A: P ≠ I)."""
    from linlens.linalg import svd
    from linlens.surrogate.compare import SignalNoiseModel
    from linlens.surrogate.multiplier import FixedDesign, MultiplierBootstrap
    from linlens.workflows.study import _multiplier_statistics

    rng = np.random.default_rng(8)
    d, n = 7, 300
    A = rng.normal(size=(d, d)) @ np.diag([3, 2, 1, 0.5, 0.2, 0.0, 0.0]) @ rng.normal(size=(d, d)) / d
    Sx = np.cov(rng.normal(size=(50, d)).T)
    Y, T = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    F = Y @ rng.normal(size=(d, d)) + np.abs(Y[:, :1])
    fit = FixedDesign(Y).perturbation(F, "fit")
    C = fit.coef
    snm = SignalNoiseModel(A, Sx, 0.1, n_bands=3, svd_A=np.linalg.svd(A))
    T_c = T - T.mean(axis=0)
    S_T = T_c.T @ T_c / n
    ci, B = 0.95, 40
    boot = _multiplier_statistics(MultiplierBootstrap({"fit": n}, n_boot=B, seed=2), fit, C, {"R": np.eye(d)},
                                  {"R": None}, S_T, T_c, snm, A, snm.svd_A, svd(C), ci)
    mb = MultiplierBootstrap({"fit": n}, n_boot=B, seed=2, method="explicit")
    fit_A = fit.times(A)
    for j, (a0, b0) in enumerate(snm.bands):
        q = mb.quadratic(fit_A.coef - snm.P, Sx, [(1.0, fit_A)], O=snm.Vt[a0:b0])
        assert boot.bias_corrected[f"band_{j}"] == pytest.approx(q.corrected / snm.trace, rel=1e-9, abs=1e-13)
        np.testing.assert_allclose(boot.samples[f"band_{j}"], (q.replicates - q.expected) / snm.trace,
                                   rtol=1e-8, atol=1e-12)
    ff = snm.filter_factors(C)
    model = np.zeros_like(ff.matrix)
    for a0, b0 in ff.clusters:
        model[a0:b0, a0:b0] = ff.factors[a0] * np.eye(b0 - a0)
    nphi, noff = np.linalg.norm(ff.matrix), np.linalg.norm(ff.matrix - model)
    Gam = (ff.matrix - model) / (noff * nphi) - ff.leakage * ff.matrix / nphi**2
    U, s, Vt = snm.svd_A
    lin = mb.linear(Vt.T @ Gam @ (U * s).T, [(1.0, fit)])
    np.testing.assert_allclose(boot.samples["filter-factor leakage"], ff.leakage + lin, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [12, 520])
def test_differences_row_forms_from_each_operator_give_the_direct_numbers(d, monkeypatch):
    """Each difference C − R's linear-term row forms are read as those of C minus those of R (one product per operator
    and row source) where ‖C − R‖ ≥ _DIFFERENCE_MIN of the larger operator: second route, every difference's own
    product (_DIFFERENCE_MIN = inf). Float64 (d = 12): replicates and standard errors to 1e-9; from
    REPLICATE_FLOAT32_MIN inputs (d = 520, float32 products): replicates within 1e-5 of their spread, standard errors
    to 1e-5; plug-ins and bias-corrected values identical either way (an estimated Wiener reference and C_data)."""
    import linlens.workflows.study as study_mod

    rng = np.random.default_rng(11)
    n = 3 * d + 600
    A = np.linalg.qr(rng.normal(size=(d, d)))[0] * np.linspace(1.0, 0.2, d)
    X, Xtr = rng.normal(size=(2 * n, d)), rng.normal(size=(n, d))
    Y, Ytr = X @ A.T + 0.1 * rng.normal(size=(2 * n, d)), Xtr @ A.T + 0.1 * rng.normal(size=(n, d))
    net = Fixed(np.linalg.inv(A) * 0.5 + 0.05 * rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / d, 0.5)
    assert study_mod._DIFFERENCE_MIN == 0.25
    own, boots = study_mod._multiplier_statistics, []

    def spy(*args, **kw):
        boots.append(own(*args, **kw))
        return boots[-1]

    monkeypatch.setattr(study_mod, "_multiplier_statistics", spy)
    out = {}
    for lim in (0.25, np.inf):
        monkeypatch.setattr(study_mod, "_DIFFERENCE_MIN", lim)
        res = inverse_study({"net": net}, Y, X, Xtr, Ytr, A=A, n_boot=30)
        out[lim] = boots[-1]
    C = res.models["net"].coef
    for R in res.references.values():  # every difference takes the shared route at the default
        assert np.linalg.norm(C - R) >= 0.25 * max(np.linalg.norm(C), np.linalg.norm(R))
    a, b = out[0.25], out[np.inf]
    assert a.estimate == b.estimate and a.bias_corrected == b.bias_corrected
    tol = 1e-9 if d < 512 else 1e-5
    for k in b.samples:
        spread = float(np.std(b.samples[k]))
        if spread > 1e-12 * float(np.max(np.abs(b.samples[k]))):
            assert np.max(np.abs(a.samples[k] - b.samples[k])) <= tol * spread, k
    for k in ("A⁻¹", "Wiener", "C_data"):
        assert a.standard_error[k] == pytest.approx(b.standard_error[k], rel=tol)
        np.testing.assert_allclose(a.se_samples[k], b.se_samples[k], rtol=tol)
