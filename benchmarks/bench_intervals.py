"""Coverage of linlens' intervals by simulation against a closed-form truth (the larger version of the test).

Model: f(y) = C₀y + β|Gy| on y ~ N(0, Σ) (``linlens.surrogate.simulation.KnownSurrogate``): the population
surrogate is exactly C₀, so the true data-weighted error against R = C₀ + εE is known in closed form. For each ε
(large to tiny true error) and ``--repeats`` independent data sets, three intervals of the error are compared:

* percentile: the percentile interval of the refitted plug-in (what linlens did before; not bias-aware);
* basic, bootstrap bias: 2θ̂ − quantiles, fit and test rows resampled, estimate 2θ̂ − mean θ*;
* basic, analytic bias (linlens' default in the study): HC2-corrected statistic, basic interval around it.

Printed per ε: true error, coverage of each interval (nominal 95%), mean estimate / truth − 1 (bias), and the
ratio of the plug-in's bias to the truth. A second part checks the study's signal-error and noise-amplification
intervals on a known inverse problem (Wiener estimator + |Gy| nonlinearity).

Run: ``python benchmarks/bench_intervals.py [--repeats 200] [--boot 200]`` (about 10 minutes on one core).
"""

from __future__ import annotations

import argparse
import time

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


def study_coverage(repeats: int, n_boot: int) -> dict[str, float]:
    import torch

    from linlens.problems import GaussianPrior, InverseProblem, prescribed_spectrum
    from linlens.study import linearity_study

    prob = InverseProblem(prescribed_spectrum(np.logspace(0, -3, 10), seed=1), GaussianPrior(10), 1e-2)
    class F(torch.nn.Module):  # float64 parameters: probed in float64
        def __init__(self) -> None:
            super().__init__()
            self.W = torch.nn.Parameter(torch.as_tensor(prob.wiener()))
            self.G = torch.nn.Parameter(torch.as_tensor(np.random.default_rng(5).normal(size=(10, 10))))

        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return y @ self.W.T + torch.abs(y @ self.G.T)

    f = F()

    X, Y = prob.sample(20000, seed=0)
    hits = {"signal_error": 0, "noise_amplification": 0, "Wiener (error 0)": 0}
    for r in range(repeats):
        res = linearity_study({"f": f}, prob, X_train=X, Y_train=Y, n_probe=3000, n_boot=n_boot, seed=r)
        sn, truth = res.models["f"].signal_noise_corrected, res.reference_signal_noise["Wiener"]
        hits["signal_error"] += sn["signal_error"]["low"] <= truth.signal_error <= sn["signal_error"]["high"]
        hits["noise_amplification"] += (sn["noise_amplification"]["low"] <= truth.noise_amplification
                                        <= sn["noise_amplification"]["high"])
        e = res.models["f"].errors["Wiener"]
        hits["Wiener (error 0)"] += e["low"] <= 0.0 <= e["high"]
    return {k: v / repeats for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--n", type=int, default=300, help="fit rows = test rows per data set")
    ap.add_argument("--study-repeats", type=int, default=60)
    ap.add_argument("--parts", default="dwe,study", help="comma-separated: dwe (data-weighted error), study")
    args = ap.parse_args()
    t0 = time.perf_counter()
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
        print(f"study on a known inverse problem (f = Wiener + |Gy|), {args.study_repeats} repeats, coverage:")
        for k, v in study_coverage(args.study_repeats, min(args.boot, 100)).items():
            print(f"    {k:<34} {v:.3f}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
