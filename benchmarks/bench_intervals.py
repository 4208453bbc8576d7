"""Coverage of linlens' intervals by simulation against a closed-form truth (the larger version of the test).

Model: f(y) = C₀y + β|Gy| on y ~ N(0, Σ) (``linlens.surrogate.simulation.KnownSurrogate``): the population
surrogate is exactly C₀, so the true data-weighted error against R = C₀ + εE is known in closed form. For each ε
(large to tiny true error) and ``--repeats`` independent data sets, three intervals of the error are compared:

* percentile: the percentile interval of the refitted plug-in (what linlens did before; not bias-aware);
* basic, bootstrap bias: 2θ̂ − quantiles, fit and test rows resampled, estimate 2θ̂ − mean θ*;
* basic, analytic bias (linlens' default in the study): HC2-corrected statistic, basic interval around it.

Printed per ε: true error, coverage of each interval (nominal 95%), mean estimate / truth − 1 (bias), and the
ratio of the plug-in's bias to the truth. A second part (``study``) checks the study's signal-error,
noise-amplification, total and per-band intervals on a known inverse problem (Wiener estimator + |Gy|
nonlinearity, 400 probes; every truth is the Wiener estimator's own split), with Monte Carlo standard errors.
A third part (``verdicts``) measures
the verdict rule of ``linlens.stats.closest_reference``: the wrong-verdict rate on a true tie (2 and 3 references at
exactly equal true errors), the false "closest to something" rate when every true error is the zero map's 1 (1 and 3
references), the power at error ratios 1.1 and 1.3, and the HC2 bias estimate at n = 12, 20, 50, each with its
Monte Carlo standard error (the small version runs in ``tests/test_verdicts.py``).

Part "routes" (issue 19): coverage and bias of the bias-corrected data-weighted error on every route that has an
interval — the dense study (multiplier bootstrap; a fixed reference and C_data resampled with its own rows), the
Fourier route (Poisson bootstrap over images), the subspace route (row-group sums; m = d and m < d below a gap) and
the dense ``--reference`` route in memory and on Dask (row-group Gram blocks) — at a larger and a smaller truth scale
(targets at the larger: coverage ≥ 0.90, |bias| ≤ 10%).

Part "route-verdicts" (issue 21): each production route's own verdict on data sets whose truth is known in closed
form — the "none" false rate of a model with no linear part (dense study with 1, 2 and 3 references and with
d_out = 300, above ``KRON_FULL_MAX``, where the study's standard error is the isotropic one; Fourier; subspace) and
the wrong-verdict rate on a true tie — for the rule and, on the same data sets, the multivariate t alone.

Part "gain" (not in the default parts): the "nonlinear gain" rule (``linlens.stats.gain_split``) on every route that
scores a network against C_data, with binary x ∈ {±1}¹⁶, y = U diag(s) x + σn (σ = 0.8): the exact Wiener network
(linear: no gain), the Bayes estimator E[x|y] = tanh(s ⊙ Uᵀy/σ²) (a true gain), 0.98 Wy + 0.02 E[x|y] (a small true
gain: power) and the overshoot 2E[x|y] − Wy (same population test MSE as its linear part W: no gain, yet far from
linear: the case the surrogate's own out-of-sample error turns into a false gain). Rates of: the old wording
(network beats C_data), "network beats its own surrogate" without the surrogate's excess removed, and the rule — on
the study's out-of-sample surrogate (HC2 excess), the matrix-free route (cluster-robust excess, every component
kept) and the Fourier route's in-sample surrogate (pixelwise A = I).
``python benchmarks/bench_intervals.py --parts gain [--gain-repeats 400] [--gain-routes study,fourier]``
(the matrix-free lines run the whole route study: ~1 s CPU per network and data set).

Run: ``python benchmarks/bench_intervals.py [--repeats 200] [--boot 200]`` (about 10 minutes on one core).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from linlens.surrogate import bootstrap
from linlens.surrogate.resampling import corrected_data_weighted_error
from linlens.surrogate.simulation import KnownSurrogate


def _centred_dwe(c, R, T):
    Tc = T - T.mean(0)
    return float(np.sum((Tc @ (c - R).T) ** 2) / np.sum((Tc @ R.T) ** 2))


def coverage(eps: float, repeats: int, n_boot: int, n: int) -> dict[str, float]:
    sim = KnownSurrogate.make(d_in=6, d_out=4, seed=0)
    E = np.random.default_rng(99).normal(size=sim.C0.shape)
    R = sim.C0 + eps * E
    truth = sim.true_error(R)
    hits = {"percentile": 0, "basic, bootstrap bias": 0, "basic, analytic bias": 0}
    est = {"basic, bootstrap bias": [], "basic, analytic bias": [], "plug-in": []}
    for r in range(repeats):
        Y, F = sim.sample(n, seed=10_000 + r)
        T, _ = sim.sample(n, seed=50_000 + r)
        b = bootstrap(Y, F, lambda c, i, Tr: _centred_dwe(c, R, Tr), test=T, n_boot=n_boot, seed=r)
        q = np.quantile(b.samples, [0.025, 0.975])
        hits["percentile"] += q[0] <= truth <= q[1]
        hits["basic, bootstrap bias"] += b.low <= truth <= b.high
        a = bootstrap(Y, F, lambda fit, Tr: {"e": corrected_data_weighted_error(fit, R, Tr)}, test=T,
                      n_boot=n_boot, seed=r, bias="analytic")
        hits["basic, analytic bias"] += a.low["e"] <= truth <= a.high["e"]
        est["basic, bootstrap bias"].append(b.bias_corrected)
        est["basic, analytic bias"].append(a.bias_corrected["e"])
        est["plug-in"].append(b.estimate)
    out = {"truth": truth}
    out.update({f"coverage {k}": v / repeats for k, v in hits.items()})
    out.update({f"bias {k}": float(np.mean(v)) / truth - 1 for k, v in est.items()})
    out["se of bias (analytic)"] = float(np.std(est["basic, analytic bias"]) / np.sqrt(repeats)) / truth
    return out


def _wiener_plus_abs(sparse: bool = False) -> tuple[Any, Any]:
    """The study's known problem (d = 10, spectrum 1 … 1e-3, Gaussian prior, σ = 0.01) and f(y) = Wy + |Gy| with W
    its Wiener estimator and G normal, as a float64 torch module (probed in float64): |Gy| is even and y symmetric,
    so the population surrogate of f is W exactly. ``sparse``: a Bernoulli(0.2)–Laplace prior of unit variance
    instead (non-Gaussian x: E[x | y] is nonlinear, the least-squares residuals depend on y; W is still the
    population least-squares map)."""
    import torch

    from linlens.problems import GaussianPrior, InverseProblem, SparsePrior, prescribed_spectrum

    prior = SparsePrior(10, p=0.2, scale=1.0 / np.sqrt(0.4)) if sparse else GaussianPrior(10)
    prob = InverseProblem(prescribed_spectrum(np.logspace(0, -3, 10), seed=1), prior, 1e-2)

    class F(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W = torch.nn.Parameter(torch.as_tensor(prob.wiener()))
            self.G = torch.nn.Parameter(torch.as_tensor(np.random.default_rng(5).normal(size=(10, 10))))

        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return y @ self.W.T + torch.abs(y @ self.G.T)

    return prob, F()


def study_coverage(repeats: int, n_boot: int, n_probe: int = 400, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Coverage (rate, MC s.e.) of the study's signal-error, noise-amplification, total and per-band intervals on a
    known inverse problem with a strongly heteroscedastic nonlinearity: f(y) = Wy + |Gy| (d = 10, W the Wiener
    estimator, G normal): |Gy| is even and y symmetric, so the population surrogate is W exactly and every truth is
    the Wiener estimator's own split (closed form); plus the error against the Wiener estimator (truth 0)."""
    from linlens.workflows.study import linearity_study

    prob, f = _wiener_plus_abs()

    X, Y = prob.sample(20000, seed=0)
    hits: dict[str, list[bool]] = {}
    for r in range(repeats):
        res = linearity_study({"f": f}, prob, X_train=X, Y_train=Y, n_probe=n_probe, n_boot=n_boot, seed=seed + r)
        sn, tr = res.models["f"].signal_noise_corrected, res.reference_signal_noise["Wiener"]
        truth = {"signal_error": tr.signal_error, "noise_amplification": tr.noise_amplification, "total": tr.total}
        truth |= {f"band_{j}": float(v) for j, v in enumerate(tr.band_signal_error)}
        for k, t in truth.items():
            hits.setdefault(k, []).append(sn[k]["low"] <= t <= sn[k]["high"])
        e = res.models["f"].errors["Wiener"]
        hits.setdefault("Wiener (error 0)", []).append(e["low"] <= 0.0 <= e["high"])
    return {k: _rate(v) for k, v in hits.items()}


def cdata_coverage(n_train: int, repeats: int, n_boot: int, n_probe: int = 400, theta: float = 0.0,
                   hetero: bool = False, sparse: bool = False) -> tuple[float, float, float, float, float]:
    """:func:`cdata_runs`' coverage summary (see there): (rate, s.e., mean estimate, s.d. of the estimates, the rate
    of verdicts naming C_data or the Wiener estimator alone — wrong at theta = 0, where both errors are 0)."""
    hits, est, verdicts = cdata_runs(n_train, repeats, n_boot, n_probe, theta, hetero, sparse)
    rate, se = _rate(hits)
    return rate, se, float(np.mean(est)), float(np.std(est)), float(np.mean([v in ("C_data", "Wiener")
                                                                              for v in verdicts]))


def cdata_runs(n_train: int, repeats: int, n_boot: int, n_probe: int = 400, theta: float = 0.0,
               hetero: bool = False, sparse: bool = False, shift: float = 0.0
               ) -> tuple[list[bool], list[float], list[str]]:
    """Coverage (rate, MC s.e.) of the study's interval for the error against C_data, the reference fitted on the
    training pairs (d = 10, f = Wiener + |Gy| as in :func:`study_coverage`): the population surrogate and the
    population C_data are both the Wiener estimator, so the truth is 0; with few training pairs per unknown the
    reference's own estimation noise dominates. ``theta`` > 0 adds a linear part Δy to f (Δ a fixed normal matrix
    scaled so that the truth tr(ΔΣ_yΔᵀ)/tr(WΣ_yWᵀ) is theta, Σ_y = AΣₓAᵀ + σ²I in closed form). ``hetero``: the
    training targets are x = Wy + (0.3 + |gᵀy|) L ε instead (LLᵀ the posterior covariance, g a fixed unit vector:
    E[x | y] = Wy, so C_data's population value is still W, with residuals whose size grows with the leverage of y).
    ``sparse``: the sparse prior of :func:`_wiener_plus_abs` (truth still 0). ``shift`` > 0 adds Δ'y to the training
    targets (Δ' a fixed normal matrix with tr(Δ'Σ_yΔ'ᵀ) = shift · tr(WΣ_yWᵀ)): C_data's population value is then
    W + Δ', the Wiener estimator is truly closer than C_data (with theta = 0 the right verdict is "Wiener": power;
    the coverage hits then refer to theta, not to the error against the shifted C_data).
    Returns per data set (interval covers theta, the estimate, the verdict's text: a name, "tie" or "none")."""
    import torch

    from linlens.workflows.study import linearity_study

    prob, f0 = _wiener_plus_abs(sparse)
    f = f0
    if theta > 0:
        W, A = prob.wiener(), prob.A
        Sy = A @ prob.prior.covariance() @ A.T + prob.noise_std**2 * np.eye(A.shape[0])
        delta = np.random.default_rng(11).normal(size=W.shape)
        delta *= np.sqrt(theta * np.trace(W @ Sy @ W.T) / np.trace(delta @ Sy @ delta.T))

        class F(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.D = torch.nn.Parameter(torch.as_tensor(delta))

            def forward(self, y: torch.Tensor) -> torch.Tensor:
                return f0(y) + y @ self.D.T

        f = F()
    W = prob.wiener()
    post = prob.prior.covariance() - W @ prob.A @ prob.prior.covariance()
    chol = np.linalg.cholesky(post + 1e-12 * np.eye(len(post)))
    g = np.random.default_rng(3).normal(size=W.shape[1])
    g /= np.linalg.norm(g)
    shift_map = None
    if shift > 0:
        Sy = prob.A @ prob.prior.covariance() @ prob.A.T + prob.noise_std**2 * np.eye(prob.A.shape[0])
        shift_map = np.random.default_rng(13).normal(size=W.shape)
        shift_map *= np.sqrt(shift * np.trace(W @ Sy @ W.T) / np.trace(shift_map @ Sy @ shift_map.T))
    hits, est, verdicts = [], [], []
    for r in range(repeats):
        X, Y = prob.sample(n_train, seed=1000 + r)
        if hetero:
            eps = np.random.default_rng(5000 + r).normal(size=X.shape) @ chol.T
            X = Y @ W.T + (0.3 + np.abs(Y @ g))[:, None] * eps
        if shift_map is not None:
            X = X + Y @ shift_map.T
        m = linearity_study({"f": f}, prob, X_train=X, Y_train=Y, n_probe=n_probe, n_boot=n_boot, seed=r).models["f"]
        e = m.errors["C_data"]
        hits.append(e["low"] <= theta <= e["high"])
        est.append(e["estimate"])
        verdicts.append(m.verdict.verdict)
    return hits, est, verdicts


def _rate(hits: list[bool]) -> tuple[float, float]:
    """Rate and its Monte Carlo standard error √(r(1 − r)/n)."""
    r = float(np.mean(hits))
    return r, float(np.sqrt(max(r * (1 - r), 1e-12) / len(hits)))


def verdict_rates(repeats: int, n_boot: int, n: int) -> dict[str, tuple[float, float, str]]:
    """Error rates and power of linlens.stats.closest_reference on the dense route, against truths in closed
    form (KnownSurrogate: references at exactly chosen true errors; a surrogate with C₀ = 0 for "none")."""
    sim = KnownSurrogate.make(d_in=3, d_out=2, seed=0)
    zero = KnownSurrogate(C0=np.zeros_like(sim.C0), G=sim.G, L=sim.L)
    kw = dict(repeats=repeats, n=n, n_boot=n_boot)
    out: dict[str, tuple[float, float, str]] = {}
    for K in (2, 3):
        R = sim.references_at([0.2] * K, seed=K)
        v = sim.verdicts(dict(zip("abc", R, strict=False)), seed=1000 * K, **kw)
        out[f"wrong verdict on a true tie, {K} references"] = (*_rate([x not in ("tie", "none") for x in v]), "≤ 0.05")
    # "none" by the bootstrap-t (analytic standard errors resampled; the rule whenever they exist) and, on the same
    # data sets, by the multivariate-t approximation the rule falls back to without them ("t approx.")
    for K in (1, 3):
        R = sim.references_at([0.1, 0.2, 0.3][:K], seed=10 + K)
        for st, tag in ((True, "the rule"), (False, "t approx. alone")):
            v = zero.verdicts(dict(zip("abc", R, strict=False)), seed=5000 + K, studentized=st, **kw)
            out[f"'none' false rate (all errors 1), {K} ref., {tag}"] = (*_rate([x != "none" for x in v]), "≤ 0.025")
    for ratio in (1.1, 1.3):
        R = sim.references_at([0.2, 0.2 * ratio], seed=20)
        for st, tag in ((True, "the rule"), (False, "t approx. alone")):
            v = sim.verdicts({"near": R[0], "far": R[1]}, seed=7000 + int(ratio * 10), studentized=st, **kw)
            out[f"power: names the closer at ratio {ratio}, {tag}"] = (*_rate([x == "near" for x in v]), "high")
    return out


def hc2_bias(n: int, draws: int) -> tuple[float, float]:
    """Mean HC2 bias estimate / its closed form σ² d_out tr(W(ỸᵀỸ)⁻¹) − 1 on one design, with its MC s.e."""
    from linlens.surrogate.resampling import OLSFit

    rng = np.random.default_rng(n)
    d, p, sigma = 3, 3, 0.5
    Y = rng.normal(size=(n, d))
    C = rng.normal(size=(p, d))
    W = np.diag([1.0, 2.0, 0.5])
    Yc = Y - Y.mean(0)
    truth = sigma**2 * p * np.trace(W @ np.linalg.inv(Yc.T @ Yc))
    est = np.array([OLSFit(Y, Y @ C.T + sigma * rng.normal(size=(n, p))).quadratic_bias(W) for _ in range(draws)])
    return float(est.mean() / truth - 1), float(est.std(ddof=1) / np.sqrt(draws) / truth)


# ------------------------------------------------------------------- per route (issue 19): coverage and bias
# Each route's bias-corrected data-weighted error and its interval, against a truth known in closed form, at two
# truth scales. "bias" is mean(estimate)/truth − 1 with its Monte Carlo s.e.; "plug-in" is the uncorrected bias.


def _known_module(sim):  # f(y) = C₀y + β|Gy| as a float64 torch module (probed in float64)
    import torch

    class Known(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.C = torch.nn.Parameter(torch.as_tensor(sim.C0))
            self.G = torch.nn.Parameter(torch.as_tensor(sim.G))

        def forward(self, y):
            return y @ self.C.T + sim.beta * torch.abs(y @ self.G.T)

    return Known()


def _summary(truth: float, hits: list[bool], est: list[float], plug: list[float]) -> dict[str, float]:
    r = len(hits)
    return {"truth": truth, "coverage": float(np.mean(hits)), "bias": float(np.mean(est)) / truth - 1,
            "se": float(np.std(est)) / np.sqrt(r) / truth, "plug-in bias": float(np.mean(plug)) / truth - 1}


def route_dense(eps: float, repeats: int, n_boot: int) -> dict[str, dict[str, float]]:
    """The dense study (``inverse_study``: multiplier bootstrap, designs fixed): errors against a fixed reference
    R = C₀ + εE and against C_data, estimated from its own training pairs x = Ky + e (population value K = C₀ + εE′,
    resampled with its rows)."""
    from linlens.workflows.study import inverse_study

    sim = KnownSurrogate.make(d_in=6, d_out=4, seed=0)
    rng = np.random.default_rng(99)
    R = sim.C0 + eps * rng.normal(size=sim.C0.shape)
    K = sim.C0 + eps * rng.normal(size=sim.C0.shape)
    S = sim.covariance
    truth = {"fixed R": sim.true_error(R),
             "C_data (estimated)": float(np.trace((sim.C0 - K) @ S @ (sim.C0 - K).T) / np.trace(K @ S @ K.T))}
    key = {"fixed R": "Wiener", "C_data (estimated)": "C_data"}
    f = _known_module(sim)
    hits, est, plug = ({k: [] for k in truth} for _ in range(3))
    for r in range(repeats):
        Yp, _ = sim.sample(1200, seed=10_000 + r)
        Ytr, _ = sim.sample(1200, seed=20_000 + r)
        Xtr = Ytr @ K.T + 0.5 * np.random.default_rng(30_000 + r).normal(size=(1200, 4))
        res = inverse_study({"f": f}, Yp, Yp @ K.T, Xtr, Ytr, wiener=R, n_boot=n_boot, seed=r)
        for k in truth:
            e = res.models["f"].errors[key[k]]
            hits[k].append(e["low"] <= truth[k] <= e["high"])
            est[k].append(e["estimate"])
            plug[k].append(e["plug_in"])
    return {k: _summary(truth[k], hits[k], est[k], plug[k]) for k in truth}


def route_fourier(eps: float, repeats: int, n_boot: int, n_img: int = 100) -> dict[str, dict[str, float]]:
    """The Fourier route (``spectral_analysis``): signals of 64 samples, f = h ⊛ y + |g ⊛ y| on white Gaussian y
    (|g ⊛ y| is even in y, so the population transfer function is H exactly), H = Ŵ(1 + εu) against the Wiener
    filter Ŵ of a Gaussian blur (white prior, σ = 0.05), and against C_data fitted on its own training images
    x = K ⊛ y + e (population transfer K = Ŵ(1 − εu); resampled with those images)."""
    from linlens.spectral import SpectralSurrogate, spectral_analysis
    from linlens.spectral.radial import _multiplicity

    L = 64
    k = np.fft.rfftfreq(L)
    HA = np.exp(-0.5 * (k / 0.12) ** 2).astype(complex)
    sigma = 0.05
    W = np.conj(HA) / (np.abs(HA) ** 2 + sigma**2)
    Hf = W * (1 + eps * (np.cos(2 * np.pi * 3 * k) + 0.5j * np.sin(2 * np.pi * 5 * k)))
    Gk = np.exp(-0.5 * (k / 0.3) ** 2)
    w = _multiplicity((L,))
    w[0] = 0.0  # centred: k = 0 carries no variance
    Kt = W * (1 - eps * (np.cos(2 * np.pi * 3 * k) + 0.5j * np.sin(2 * np.pi * 5 * k)))
    truth = {"Wiener": float(np.sum(w * np.abs(Hf - W) ** 2) / np.sum(w * np.abs(W) ** 2)),
             "C_data": float(np.sum(w * np.abs(Hf - Kt) ** 2) / np.sum(w * np.abs(Kt) ** 2))}
    hits, est, plug = ({k: [] for k in truth} for _ in range(3))
    for r in range(repeats):
        rng = np.random.default_rng(r)
        Y = rng.normal(size=(n_img, L))
        Yk = np.fft.rfft(Y)
        F = np.fft.irfft(Yk * Hf, n=L) + np.abs(np.fft.irfft(Yk * Gk, n=L))
        Yt = rng.normal(size=(n_img, L))
        Xt = np.fft.irfft(np.fft.rfft(Yt) * Kt, n=L) + 0.5 * rng.normal(size=(n_img, L))
        data = SpectralSurrogate(image_shape=(L,), n_boot=n_boot, seed=r + 1).fit(Yt, Xt)
        an = spectral_analysis(SpectralSurrogate(image_shape=(L,), n_boot=n_boot, seed=r).fit(Y, F), HA, sigma,
                               prior=1.0, data_surrogate=data)
        for key in truth:
            lo, hi = an.error_intervals[key]
            hits[key].append(lo <= truth[key] <= hi)
            est[key].append(an.errors_corrected[key])
            plug[key].append(an.errors[key])
    return {"Wiener (fixed)": _summary(truth["Wiener"], hits["Wiener"], est["Wiener"], plug["Wiener"]),
            "C_data (estimated)": _summary(truth["C_data"], hits["C_data"], est["C_data"], plug["C_data"])}


def route_subspace(eps: float, repeats: int, n_boot: int) -> dict[str, dict[str, float]]:
    """The subspace route's statistics (:class:`~linlens.surrogate.grouped.GroupedFit`, as ``analyze
    --components`` streams them): d = 8, m = d and m = 3 below a spectral gap of Σ (population subspace surrogate
    C₀P_m), 600 training + 150 held-out rows, R = C₀P_m + εEP_m."""
    from linlens.surrogate.grouped import GroupedFit

    out = {}
    for m_gap in (None, 3):
        rng = np.random.default_rng(0)
        d = 8
        V = np.linalg.qr(rng.normal(size=(d, d)))[0]
        lam = np.ones(d) if m_gap is None else np.r_[np.full(m_gap, 4.0), np.full(d - m_gap, 0.05)]
        sim = KnownSurrogate(C0=rng.normal(size=(4, d)), G=rng.normal(size=(4, d)), L=V * np.sqrt(lam))
        m = d if m_gap is None else m_gap
        P = V[:, :m] @ V[:, :m].T
        R = sim.C0 @ P + eps * np.random.default_rng(9).normal(size=sim.C0.shape) @ P
        S = sim.covariance
        truth = float(np.trace((sim.C0 @ P - R) @ S @ (sim.C0 @ P - R).T) / np.trace(R @ S @ R.T))
        hits, est, plug = [], [], []
        for r in range(repeats):
            Y, F = sim.sample(600, seed=r)
            Yh, _ = sim.sample(150, seed=r + 7919)
            mean = Y.mean(0)
            Vt = np.linalg.svd(Y - mean, full_matrices=False)[2][:m]
            acc = GroupedFit(m, 4, n_groups=32)
            acc.update_train((Y - mean) @ Vt.T, F, np.arange(600) % 32)
            acc.update_held((Yh - mean) @ Vt.T, (Yh - mean) @ R.T, acc.coef(), np.arange(150) % 32)
            e = acc.error(n_boot=n_boot, seed=r)
            hits.append(e.low <= truth <= e.high)
            est.append(e.estimate)
            plug.append(e.plug_in)
        out[f"m = {m} of {d}" + (" (gap)" if m_gap else "")] = _summary(truth, hits, est, plug)
    return out


def route_dense_small_nonlinear(repeats: int, n_boot: int) -> dict[str, float]:
    """The dense study at few probes on a strongly nonlinear model (the case of ``bench_track.py --coverage``):
    f(y) = C₀y + 0.5|Gy| on y ~ N(0, I₃) (population surrogate C₀), 400 probes, C_data on 200 separate training
    pairs x = By + 0.5e; truth ‖C₀ − B‖²_F/‖B‖²_F. The errors' score-type interval (quadratic_interval) is what
    this case checks: the basic interval covered 0.877 here."""
    import torch

    from linlens.workflows.study import inverse_study

    d, rng0 = 3, np.random.default_rng(0)
    C0, G = rng0.normal(size=(d, d)), rng0.normal(size=(d, d))
    B = C0 + 0.3 * rng0.normal(size=(d, d))
    truth = float(np.sum((C0 - B) ** 2) / np.sum(B**2))

    class F(torch.nn.Module):
        def forward(self, y):
            return y @ torch.as_tensor(C0, dtype=y.dtype).T + 0.5 * torch.abs(y @ torch.as_tensor(G, dtype=y.dtype).T)

    hits, est, plug = [], [], []
    for r in range(repeats):
        rng = np.random.default_rng(100 + r)
        Y, Yt = rng.normal(size=(400, d)), rng.normal(size=(200, d))
        X, Xt = Y @ B.T + 0.5 * rng.normal(size=(400, d)), Yt @ B.T + 0.5 * rng.normal(size=(200, d))
        e = inverse_study({"f": F()}, Y, X, Xt, Yt, n_boot=n_boot, seed=r).models["f"].errors["C_data"]
        hits.append(e["low"] <= truth <= e["high"])
        est.append(e["estimate"])
        plug.append(e["plug_in"])
    return _summary(truth, hits, est, plug)


def print_routes(repeats: int, n_boot: int) -> None:
    """Coverage (nominal 0.95) and bias per route at a larger and a smaller truth scale."""
    print(f"per route: bias-corrected data-weighted error, {repeats} data sets, {n_boot} replicates, nominal 95% "
          "(targets at the larger truth: coverage ≥ 0.90, |bias| ≤ 10%)")
    for name, fn in (("dense study", route_dense), ("Fourier", route_fourier), ("subspace", route_subspace)):
        for eps in (0.3, 0.05):
            for ref, v in fn(eps, repeats, n_boot).items():
                print(f"    {name:<12} {ref:<20} eps={eps:<5} truth={v['truth']:<10.4g} coverage {v['coverage']:.3f}  "
                      f"bias {v['bias']:+.3f} ± {v['se']:.3f}  (plug-in {v['plug-in bias']:+.3f})")
    v = route_dense_small_nonlinear(repeats, n_boot)
    print(f"    {'dense study':<12} {'C_data, 400 probes, f = C₀y + 0.5|Gy|, d = 3':<46} truth={v['truth']:<8.4g} "
          f"coverage {v['coverage']:.3f} ± {(v['coverage'] * (1 - v['coverage']) / repeats) ** 0.5:.3f}  "
          f"bias {v['bias']:+.3f} ± {v['se']:.3f}  (score-type interval; basic covered 0.877)")
    print_dense_reference(repeats, n_boot)


# ---------------------------------------------------------------------------------------------------------------
# The dense ``analyze --reference`` route, in memory and on Dask: the same streamed statistics (per-row-group Gram
# blocks of the training rows, held-out inputs against the training fit; ``linlens.workflows.analyze_common``),
# computed block by block as the routes stream them; the Dask line runs the block tasks on a LocalCluster and
# merges the partials in a tree (``linlens.scale.tree_reduce``), as ``run_dask`` does.

def _dense_reference_stats(Y, F, R, seed, n_boot, batch=300, client=None):
    from linlens.scale import tree_reduce
    from linlens.workflows.analyze_common import (
        block_stats,
        grouped_shift,
        held_grouped,
        merge_stats,
        reference_error,
    )

    n = len(Y)
    shift = grouped_shift(Y)
    starts = range(0, n, batch)
    if client is None:
        parts = [block_stats(Y[s:s + batch], F[s:s + batch], s, seed, n, shift=shift) for s in starts]
        stats = parts[0]
        for p in parts[1:]:
            stats.merge(p)
        g = stats.grouped
        B = g.coef()
        for s in starts:
            g = g.merge(held_grouped(Y[s:s + batch], s, seed, shift, B, R, R.shape[0]))
        return reference_error(g, n_boot, seed)
    futs = [client.submit(block_stats, Y[s:s + batch], F[s:s + batch], s, seed, n, shift=shift, pure=False)
            for s in starts]
    stats = tree_reduce(futs, merge_stats, submit=lambda f, a, b: client.submit(f, a, b, pure=False)).result()
    B = stats.grouped.coef()
    futs = [client.submit(held_grouped, Y[s:s + batch], s, seed, shift, B, R, R.shape[0], pure=False) for s in starts]
    held = tree_reduce(futs, lambda a, b: a.merge(b), submit=lambda f, a, b: client.submit(f, a, b, pure=False))
    return reference_error(stats.grouped.merge(held.result()), n_boot, seed)


def route_dense_reference(eps: float, repeats: int, n_boot: int, client=None) -> dict[str, dict[str, float]]:
    """``analyze --reference`` on the dense route (in memory, or on Dask with ``client``): d_in = 6, d_out = 4,
    1200 rows (one in five held out), R = C₀ + εE fixed."""
    sim = KnownSurrogate.make(d_in=6, d_out=4, seed=0)
    R = sim.C0 + eps * np.random.default_rng(99).normal(size=sim.C0.shape)
    truth = sim.true_error(R)
    hits, est, plug = [], [], []
    for r in range(repeats):
        Y, F = sim.sample(1200, seed=40_000 + r)
        e = _dense_reference_stats(Y, F, R, r, n_boot, client=client)
        hits.append(e.low <= truth <= e.high)
        est.append(e.estimate)
        plug.append(e.plug_in)
    return {"fixed R": _summary(truth, hits, est, plug)}


def print_dense_reference(repeats: int, n_boot: int, dask_repeats: int | None = None) -> None:
    """Coverage and bias of the dense ``--reference`` route in memory and on Dask (2-worker LocalCluster; fewer
    data sets there, ``dask_repeats`` = repeats // 4 by default: each costs task round trips)."""
    import logging

    from dask.distributed import Client, LocalCluster

    for eps in (0.3, 0.05):
        for ref, v in route_dense_reference(eps, repeats, n_boot).items():
            print(f"    {'dense --reference':<12} {ref:<20} eps={eps:<5} truth={v['truth']:<10.4g} coverage "
                  f"{v['coverage']:.3f}  bias {v['bias']:+.3f} ± {v['se']:.3f}  (plug-in {v['plug-in bias']:+.3f})")
    k = dask_repeats or max(repeats // 4, 10)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        for eps in (0.3, 0.05):
            for ref, v in route_dense_reference(eps, k, n_boot, client=client).items():
                print(f"    {'Dask --reference':<12} {ref:<20} eps={eps:<5} truth={v['truth']:<10.4g} coverage "
                      f"{v['coverage']:.3f}  bias {v['bias']:+.3f} ± {v['se']:.3f}  (plug-in "
                      f"{v['plug-in bias']:+.3f})  [{k} data sets]")


# ------------------------------------------------------- per route (issue 21): verdicts on the production routes
# Each production route's own verdict (its bootstrap, its analytic standard errors, closest_reference) on data sets
# whose truth is known in closed form: a model with no linear part (every reference's true error is the zero map's
# 1: "none" is right) and a true tie (a fixed and an estimated reference at exactly equal true errors). "none" is
# decided by the bootstrap-t (the routes' per-replicate analytic standard errors) and, on the same data sets, by the
# multivariate-t approximation the rule uses without them ("t approx.", for comparison).


class _BothRules:
    """Within the block, ``module.closest_reference`` also decides each verdict without the standard errors (the t
    approximation) and records (bootstrap-t verdict, t-approx. verdict, none_method) per call."""

    def __init__(self, module) -> None:
        self.module, self.calls = module, []

    def __enter__(self):
        import dataclasses

        from linlens.stats import closest_reference

        def both(boot, names, *a, **kw):
            v = closest_reference(boot, names, *a, **kw)
            v0 = closest_reference(dataclasses.replace(boot, standard_error=None, se_samples=None), names, *a, **kw)
            self.calls.append((v.verdict, v0.verdict, v.none_method))
            return v

        self._old = self.module.closest_reference
        self.module.closest_reference = both
        return self

    def __exit__(self, *exc) -> None:
        self.module.closest_reference = self._old


def dense_verdicts(case: str, repeats: int, n_boot: int = 100, n: int = 200, seed: int = 0, d_out: int = 2
                   ) -> list[tuple[str, str, str]]:
    """The dense study (``inverse_study``, multiplier bootstrap) on KnownSurrogate data sets (d_in = 3, d_out = 2;
    n probes, half fit and half test, n training pairs for C_data, x = K y + e, resampled with its rows).

    case "none2": f with no linear part, references Wiener (fixed, given) and C_data (estimated), every true error 1;
    "none1": the same with C_data alone;
    "none3": the same with A given (references A⁺, Wiener from A, Σₓ, σ — fixed — and C_data); "tie": f with
    population surrogate C₀, the fixed reference and C_data's population value K at exactly equal true errors 0.2.
    ``d_out`` above :data:`~linlens.surrogate.multiplier.KRON_FULL_MAX` (e.g. 300) takes the study's cheaper
    isotropic standard error (not with "none3", whose A is 3 × 2).
    Returns (bootstrap-t verdict, t-approx. verdict, none_method) per data set."""
    import linlens.workflows.study as study_mod

    sim = KnownSurrogate.make(d_in=3, d_out=d_out, seed=0)
    truth = sim if case == "tie" else KnownSurrogate(C0=np.zeros_like(sim.C0), G=sim.G, L=sim.L)
    R, K = sim.references_at([0.2, 0.2], seed=11)
    f = _known_module(truth)
    A = np.random.default_rng(3).normal(size=(3, 2))
    with _BothRules(study_mod) as rec:
        for r in range(repeats):
            Yp, _ = truth.sample(n, seed=seed + 10_000 + r)
            Ytr, _ = truth.sample(n, seed=seed + 20_000 + r)
            Xtr = Ytr @ K.T + 0.5 * np.random.default_rng(seed + 30_000 + r).normal(size=(n, d_out))
            kw = (dict(A=A, prior_covariance=np.eye(2), noise_std=0.3) if case == "none3"
                  else {} if case == "none1" else dict(wiener=R))
            study_mod.inverse_study({"f": f}, Yp, Yp @ K.T, Xtr, Ytr, n_boot=n_boot, seed=seed + r, **kw)
    return rec.calls


def fourier_verdicts(case: str, repeats: int, n_boot: int = 100, n_img: int = 100, seed: int = 0
                     ) -> list[tuple[str, str, str]]:
    """The Fourier route (``spectral_analysis``, Poisson bootstrap over images) on signals of 64 samples, white
    Gaussian y, A a Gaussian blur, white prior, σ = 0.05 (references A⁻¹ and the Wiener filter, fixed).

    case "none2": f = |g ⊛ y| (no linear part: every true error is 1), references A⁻¹ and Wiener; "none3": the
    same with C_data, fitted on its own training images x = K ⊛ y + e and resampled with them; "tie": f = h ⊛ y +
    |g ⊛ y| with H = Ŵ(1 + iεa) and C_data's population transfer K = H/(1 + √e_W), so that its true error e_W
    equals the Wiener filter's exactly (S_yy = 1). Returns (bootstrap-t verdict, t-approx. verdict, none_method)."""
    import linlens.spectral.analysis as sp_mod  # _BothRules patches the closest_reference that it calls
    from linlens.spectral.radial import _multiplicity

    L = 64
    k = np.fft.rfftfreq(L)
    HA = np.exp(-0.5 * (k / 0.12) ** 2).astype(complex)
    sigma = 0.05
    W = np.conj(HA) / (np.abs(HA) ** 2 + sigma**2)
    Gk = np.exp(-0.5 * (k / 0.3) ** 2)
    w = _multiplicity((L,))
    w[0] = 0.0  # centred: k = 0 carries no variance
    if case == "tie":
        Hf = W * (1 + 0.3j * np.cos(2 * np.pi * 3 * k))
        e_w = float(np.sum(w * np.abs(Hf - W) ** 2) / np.sum(w * np.abs(W) ** 2))
        Kt = Hf / (1 + np.sqrt(e_w))
    else:
        Hf = np.zeros_like(W)
        Kt = W * (1 - 0.3 * np.cos(2 * np.pi * 3 * k))
    with _BothRules(sp_mod) as rec:
        for r in range(repeats):
            rng = np.random.default_rng(seed + r)
            Y = rng.normal(size=(n_img, L))
            Yk = np.fft.rfft(Y)
            F = np.fft.irfft(Yk * Hf, n=L) + np.abs(np.fft.irfft(Yk * Gk, n=L))
            data = None
            if case != "none2":
                Yt = rng.normal(size=(n_img, L))
                Xt = np.fft.irfft(np.fft.rfft(Yt) * Kt, n=L) + 0.5 * rng.normal(size=(n_img, L))
                data = sp_mod.SpectralSurrogate(image_shape=(L,), n_boot=n_boot, seed=seed + r + 1).fit(Yt, Xt)
            sur = sp_mod.SpectralSurrogate(image_shape=(L,), n_boot=n_boot, seed=seed + r).fit(Y, F)
            sp_mod.spectral_analysis(sur, HA, sigma, prior=1.0, data_surrogate=data)
    return rec.calls


def subspace_verdicts(repeats: int, n_boot: int = 100, m_gap: int | None = 3, seed: int = 0
                      ) -> list[tuple[str, str, str]]:
    """The subspace route's statistics (:class:`~linlens.surrogate.grouped.GroupedFit`, 32 row groups) for a model
    with no linear part, f = |Gy| (d = 8, m = 3 below a spectral gap of Σ, or m = d), 600 training + 150 held-out
    rows, one fixed reference R (true error 1: "none" is right). Returns (bootstrap-t verdict, t-approx. verdict,
    none_method) per data set."""
    import dataclasses

    from linlens.stats import closest_reference
    from linlens.surrogate.grouped import GroupedFit

    rng = np.random.default_rng(0)
    d = 8
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    lam = np.ones(d) if m_gap is None else np.r_[np.full(m_gap, 4.0), np.full(d - m_gap, 0.05)]
    sim = KnownSurrogate(C0=np.zeros((4, d)), G=rng.normal(size=(4, d)), L=V * np.sqrt(lam))
    m = d if m_gap is None else m_gap
    R = np.random.default_rng(9).normal(size=(4, d))
    out = []
    for r in range(repeats):
        Y, F = sim.sample(600, seed=seed + r)
        Yh, _ = sim.sample(150, seed=seed + r + 7919)
        mean = Y.mean(0)
        Vt = np.linalg.svd(Y - mean, full_matrices=False)[2][:m]
        acc = GroupedFit(m, 4, n_groups=32)
        acc.update_train((Y - mean) @ Vt.T, F, np.arange(600) % 32)
        acc.update_held((Yh - mean) @ Vt.T, (Yh - mean) @ R.T, acc.coef(), np.arange(150) % 32)
        boot = acc.error(n_boot=n_boot, seed=seed + r).boot
        v = closest_reference(boot, ["R"])
        v0 = closest_reference(dataclasses.replace(boot, standard_error=None, se_samples=None), ["R"])
        out.append((v.verdict, v0.verdict, v.none_method))
    return out


def route_verdict_rates(repeats: int, n_boot: int) -> dict[str, tuple[float, float, str]]:
    """"none" false rates (bootstrap-t and t approx.) and wrong verdicts on a true tie, per production route."""
    from linlens.surrogate.multiplier import KRON_FULL_MAX

    out: dict[str, tuple[float, float, str]] = {}

    def none_lines(name: str, calls: list[tuple[str, str, str]]) -> None:
        assert all(c[2].startswith("bootstrap-t") for c in calls), f"{name}: a verdict without analytic standard errors"
        out[f"{name}, the rule"] = (*_rate([c[0] != "none" for c in calls]), "≤ 0.025")
        out[f"{name}, t approx. alone"] = (*_rate([c[1] != "none" for c in calls]), "(for comparison)")

    none_lines("dense study: 'none' false rate, 1 ref. (C_data est.)", dense_verdicts("none1", repeats, n_boot))
    none_lines("dense study: 'none' false rate, 2 ref. (Wiener fixed, C_data est.)",
               dense_verdicts("none2", repeats, n_boot))
    none_lines("dense study: 'none' false rate, 3 ref. (A⁺, Wiener, C_data)", dense_verdicts("none3", repeats, n_boot))
    none_lines(f"dense study, d_out = 300 > {KRON_FULL_MAX} (isotropic s.e.): 'none' false rate, 2 ref.",
               dense_verdicts("none2", repeats, n_boot, d_out=300))
    out["dense study: wrong verdict on a true tie (Wiener fixed, C_data est.)"] = (
        *_rate([c[0] not in ("tie", "none") for c in dense_verdicts("tie", repeats, n_boot)]), "≤ 0.05")
    none_lines("Fourier: 'none' false rate, 2 ref. (A⁻¹, Wiener)", fourier_verdicts("none2", repeats, n_boot))
    none_lines("Fourier: 'none' false rate, 3 ref. (+ C_data est.)", fourier_verdicts("none3", repeats, n_boot))
    out["Fourier: wrong verdict on a true tie (Wiener fixed, C_data est.)"] = (
        *_rate([c[0] not in ("tie", "none") for c in fourier_verdicts("tie", repeats, n_boot)]), "≤ 0.05")
    none_lines("subspace (m = 3 of 8): 'none' false rate, 1 ref.", subspace_verdicts(repeats, n_boot))
    return out


GAIN_D, GAIN_SIGMA = 16, 0.8


def _gain_problem():
    U = np.linalg.qr(np.random.default_rng(7).normal(size=(GAIN_D, GAIN_D)))[0]
    s = np.linspace(1.0, 0.5, GAIN_D)
    return U, s, s / (s**2 + GAIN_SIGMA**2)


def _gain_draw(rng, n, U, s):
    X = rng.choice([-1.0, 1.0], size=(n, GAIN_D))
    return X, X @ (U * s).T + GAIN_SIGMA * rng.normal(size=(n, GAIN_D))


def _gain_nets(Y, U, s, wd):
    Z = Y @ U
    bayes, wiener = np.tanh(s * Z / GAIN_SIGMA**2), Z * wd
    return {"exact Wiener (no gain)": wiener, "overshoot 2E[x|y] − Wy (no gain)": 2 * bayes - wiener,
            "Bayes E[x|y] (a gain)": bayes, "0.98 Wy + 0.02 E[x|y] (small gain)": 0.98 * wiener + 0.02 * bayes}


def gain_rates(route: str, repeats: int, n_fit: int, n_test: int, n_train: int = 500) -> dict[str, list[float]]:
    """Per network: rates (old claim vs C_data, uncorrected network-vs-surrogate claim, the rule's claim)."""
    from linlens.operators import as_operator
    from linlens.spectral import SpectralSurrogate
    from linlens.stats import gain_split
    from linlens.surrogate.multiplier import FixedDesign
    from linlens.surrogate.resampling import surrogate_excess
    from linlens.workflows.analyze_matrix_free import _test_errors, matrix_free_study

    U, s, wd = _gain_problem()
    hits: dict[str, list[float]] = {}
    for r in range(repeats):
        rng = np.random.default_rng(50_000 + r)
        Xtr, Ytr = _gain_draw(rng, n_train, U, s)
        Xf, Yf = _gain_draw(rng, n_fit, U, s)
        Xt, Yt = _gain_draw(rng, n_test, U, s)
        cc, ci_, _ = FixedDesign(Ytr).fit(Xtr)
        e_c = np.sum((Yt @ cc.T + ci_ - Xt) ** 2, 1)
        Nt = _gain_nets(Yt, U, s, wd) if route != "fourier" else None
        if route == "study":
            Nf = _gain_nets(Yf, U, s, wd)
            for k in Nf:
                C, c, _ = FixedDesign(Yf).fit(Nf[k])
                pred = Yt @ C.T + c
                e_n, e_s = np.sum((Nt[k] - Xt) ** 2, 1), np.sum((pred - Xt) ** 2, 1)
                b, se = surrogate_excess(Yf, Nf[k], Yt, pred - Xt)
                raw, rule = gain_split(e_n, e_s, e_c), gain_split(e_n, e_s, e_c, surrogate_bias=b, surrogate_se=se)
                hits.setdefault(k, []).append((raw.total.high < 0, raw.nonlinear.high < 0, rule.nonlinear_gain))
        elif route == "matrix-free":
            g = lambda n: np.arange(n) % 32  # noqa: E731
            Nf = _gain_nets(Yf, U, s, wd)
            for k in Nf:
                st = matrix_free_study(as_operator(U * s), (Ytr, Xtr, g(n_train)), (Yf, Nf[k], g(n_fit)),
                                       (Yt, Nt[k], Xt, g(n_test)), m=GAIN_D, n_boot=2, noise_std=GAIN_SIGMA)
                te = _test_errors(st, GAIN_D)
                sq = st.squares
                raw = gain_split(sq["model"], sq["surrogate"], sq["C_data"])
                hits.setdefault(k, []).append((raw.total.high < 0, raw.nonlinear.high < 0, te["gain"].nonlinear_gain))
        else:  # Fourier: pixelwise problem (A = I, s = 1), the surrogate fitted in-sample on the probe images
            X = rng.choice([-1.0, 1.0], size=(n_fit + n_train, GAIN_D))
            Y = X + 0.5 * rng.normal(size=X.shape)
            b_, w_ = np.tanh(Y / 0.25), Y / 1.25
            cd = SpectralSurrogate(n_boot=0).fit(Y[:n_train], X[:n_train])
            Yp, Xp = Y[n_train:], X[n_train:]
            e_c = np.sum((cd.predict(Yp) - Xp) ** 2, 1)
            for k, F in (("exact Wiener (no gain)", w_), ("overshoot 2E[x|y] − Wy (no gain)", 2 * b_ - w_),
                         ("Bayes E[x|y] (a gain)", b_), ("0.98 Wy + 0.02 E[x|y] (small gain)", 0.98 * w_ + 0.02 * b_)):
                Fp = F[n_train:]
                sur = SpectralSurrogate(n_boot=0).fit(Yp, Fp)
                e_n, e_s = np.sum((Fp - Xp) ** 2, 1), np.sum((sur.predict(Yp) - Xp) ** 2, 1)
                raw = gain_split(e_n, e_s, e_c)
                hits.setdefault(k, []).append((raw.total.high < 0, raw.nonlinear.high < 0, raw.nonlinear_gain))
    return {k: np.mean(np.asarray(v, dtype=float), axis=0).tolist() for k, v in hits.items()}


def print_gain(repeats: int, routes: str = "study,matrix-free,fourier") -> None:
    mc = 3 / repeats
    print(f"'nonlinear gain' rule (stats.gain_split), binary x, d = {GAIN_D}, σ = {GAIN_SIGMA}, C_data on 500 training "
          f"pairs, {repeats} data sets per line; rates of: old wording (beats C_data) | beats its surrogate, excess "
          f"not removed | the rule (nominal ≤ 0.025 one-sided for the no-gain networks; none seen: < {mc:.3f}):",
          flush=True)
    for route, n_fit, n_test in (("study", 200, 200), ("study", 500, 500), ("study", 2000, 2000),
                                 ("matrix-free", 500, 500), ("matrix-free", 2000, 2000), ("fourier", 200, 200),
                                 ("fourier", 2000, 2000)):
        if route not in routes.split(","):
            continue
        t0 = time.process_time()
        for k, (old, raw, rule) in gain_rates(route, repeats, n_fit, n_test).items():
            print(f"    {route:<11} fit {n_fit:<5} test {n_test:<5} {k:<36} {old:.3f} | {raw:.3f} | {rule:.3f}",
                  flush=True)
        print(f"      ({time.process_time() - t0:.0f} s CPU)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--n", type=int, default=300, help="fit rows = test rows per data set")
    ap.add_argument("--study-repeats", type=int, default=400)
    ap.add_argument("--parts", default="dwe,study,verdicts,routes,route-verdicts",
                    help="comma-separated: dwe (data-weighted error), study, verdicts (verdict rule rates, HC2), "
                         "routes (coverage and bias per route), dense-reference (only the dense --reference/Dask "
                         "lines of routes), route-verdicts (verdict rates per production route), study-cdata (the "
                         "error against C_data fitted on few training pairs; not in the default), gain (the "
                         "'nonlinear gain' rule per route; not in the default)")
    ap.add_argument("--route-repeats", type=int, default=200, help="data sets per route and truth scale")
    ap.add_argument("--verdict-repeats", type=int, default=1000, help="data sets per verdict rate")
    ap.add_argument("--verdict-boot", type=int, default=100, help="resamples per data set for the verdicts")
    ap.add_argument("--gain-repeats", type=int, default=400, help="data sets per line of the gain part")
    ap.add_argument("--gain-routes", default="study,matrix-free,fourier", help="routes of the gain part")
    ap.add_argument("--gain-d", type=int, default=GAIN_D, help="dimension of x and y in the gain part (study lines)")
    args = ap.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    parts = set(args.parts.split(","))
    if "dwe" in parts:
        print(f"data-weighted error, {args.repeats} repeats, {args.boot} resamples, n = {args.n}, nominal 95%")
    for eps in (1.0, 0.3, 0.1, 0.03) if "dwe" in parts else ():
        r = coverage(eps, args.repeats, args.boot, args.n)
        print(f"eps={eps:<5} truth={r['truth']:.4g}")
        for k, v in r.items():
            if k != "truth":
                print(f"    {k:<34} {v:+.3f}" if k.startswith(("bias", "se")) else f"    {k:<34} {v:.3f}")
    if "study" in parts:
        print(f"study on a known inverse problem (f = Wiener + |Gy|, 400 probes), {args.study_repeats} repeats, "
              "coverage ± MC s.e. (target ≥ 0.92):")
        for k, (v, se) in study_coverage(args.study_repeats, min(args.boot, 100)).items():
            print(f"    {k:<34} {v:.3f} ± {se:.3f}")
    if "study-cdata" in parts:
        print(f"study: the error against C_data fitted on few training pairs (d = 10, 11 unknowns per output, truth 0, "
              f"400 probes), {args.study_repeats} repeats, coverage ± MC s.e. at nominal 0.95:")
        for n_train in (20, 25, 30, 40, 80):
            rate, se, m, sd, one = cdata_coverage(n_train, args.study_repeats, min(args.boot, 100))
            print(f"    {n_train:>3} pairs ({n_train / 11:.1f} per unknown)   {rate:.3f} ± {se:.3f}   "
                  f"estimate mean {m:+.3g}, s.d. {sd:.3g}; verdict on the true tie (C_data, Wiener) named one of "
                  f"them {one:.3f} ± {(one * (1 - one) / args.study_repeats) ** 0.5:.3f} (target 0.05)", flush=True)
        print("  the same with heteroscedastic training residuals (x = Wy + (0.3 + |gᵀy|) L ε; truth 0):")
        for n_train in (25, 80):
            rate, se, m, sd, _ = cdata_coverage(n_train, args.study_repeats, min(args.boot, 100), hetero=True)
            print(f"    {n_train:>3} pairs ({n_train / 11:.1f} per unknown)   {rate:.3f} ± {se:.3f}   "
                  f"estimate mean {m:+.3g}, s.d. {sd:.3g}", flush=True)
        print("  the same with a sparse (Bernoulli–Laplace) prior, non-Gaussian x (truth 0):")
        for n_train in (80, 400):
            rate, se, m, sd, _ = cdata_coverage(n_train, args.study_repeats, min(args.boot, 100), sparse=True)
            print(f"    {n_train:>3} pairs ({n_train / 11:.1f} per unknown)   {rate:.3f} ± {se:.3f}   "
                  f"estimate mean {m:+.3g}, s.d. {sd:.3g}", flush=True)
        print("  the same with a linear part Δy added to f (truth θ > 0; both errors are θ: the right verdict is the "
              "tie for θ < 1, 'none' for θ = 3):")
        for theta in (0.05, 0.3, 3.0):
            for n_train in (25, 80):
                hits, est, ver = cdata_runs(n_train, args.study_repeats, min(args.boot, 100), theta=theta)
                (rate, se), right = _rate(hits), _rate([v == ("none" if theta >= 1 else "tie") for v in ver])
                print(f"    θ = {theta:<5} {n_train:>3} pairs ({n_train / 11:.1f} per unknown)   {rate:.3f} ± "
                      f"{se:.3f}   estimate mean {np.mean(est):+.3g}, s.d. {np.std(est):.3g}; right verdict "
                      f"{right[0]:.3f} ± {right[1]:.3f}", flush=True)
        print("  power: C_data's population value shifted by Δ'y (tr(Δ'Σ_yΔ'ᵀ) = s · tr(WΣ_yWᵀ)), f = Wiener + |Gy|: "
              "the Wiener estimator is truly closer (error 0); rate of the verdict 'Wiener' ± MC s.e. (and 'C_data', "
              "wrong):")
        for shift in (0.3, 1.0):
            for n_train in (25, 40, 80):
                _, _, ver = cdata_runs(n_train, args.study_repeats, min(args.boot, 100), shift=shift)
                (r, se), wrong = _rate([v == "Wiener" for v in ver]), float(np.mean([v == "C_data" for v in ver]))
                print(f"    s = {shift:<4} {n_train:>3} pairs ({n_train / 11:.1f} per unknown)   'Wiener' {r:.3f} ± "
                      f"{se:.3f}   'C_data' {wrong:.3f}", flush=True)
    if "verdicts" in parts:
        print(f"verdict rule (linlens.stats.closest_reference), d_in = 3, d_out = 2, n = 200 fit + 200 test rows, "
              f"{args.verdict_repeats} data sets per line, {args.verdict_boot} resamples; rate ± Monte Carlo s.e.:")
        for k, (r, se, target) in verdict_rates(args.verdict_repeats, args.verdict_boot, 200).items():
            err = f"± {se:.3f}" if 0 < r < 1 else f"(none seen; 95% bound {3 / args.verdict_repeats:.3f})"
            print(f"    {k:<52} {r:.3f} {err}   (target {target})")
        print("HC2 bias estimate (intercept leverage 1/n included), mean / closed form − 1, 20000 draws:")
        for n in (12, 20, 50):
            b, se = hc2_bias(n, 20000)
            print(f"    n = {n:<3} {b:+.4f} ± {se:.4f}   (target |bias| ≤ 0.02)")
    if "routes" in parts:
        print_routes(args.route_repeats, min(args.boot, 200))
    elif "dense-reference" in parts:
        print_dense_reference(args.route_repeats, min(args.boot, 200))
    if "route-verdicts" in parts:
        print(f"verdicts on the production routes, {args.verdict_repeats} data sets per line, {args.verdict_boot} "
              "replicates; rate ± Monte Carlo s.e. (targets: 'none' ≤ 0.025, tie ≤ 0.05, each + 2 MC s.e.):")
        for k, (r, se, target) in route_verdict_rates(args.verdict_repeats, args.verdict_boot).items():
            err = f"± {se:.3f}" if 0 < r < 1 else f"(none seen; 95% bound {3 / args.verdict_repeats:.3f})"
            print(f"    {k:<66} {r:.3f} {err}   (target {target})", flush=True)
    if "gain" in parts:
        globals()["GAIN_D"] = args.gain_d  # the gain part's helpers read the module constant
        print_gain(args.gain_repeats, args.gain_routes)
    print(f"total {time.perf_counter() - t0:.0f} s (CPU {time.process_time() - c0:.0f} s)")


if __name__ == "__main__":
    main()
