"""Coverage of the matrix-free route's intervals by simulation, against truths in closed form (issue 21: references
that are estimates resampled with their own data).

A small case (d = 8, an explicit non-symmetric operator) whose every number is known: x ~ N(0, Σ), y = Ax + σε,
the "network" f(y) = (W + Δ₀)y + γ G h(ξ) with W = ΣAᵀ(AΣAᵀ + σ²I)⁻¹ the population Wiener estimator, ξ = L⁻¹y
whitened inputs and h(ξ) = (ξ² − 1)/√2 Hermite terms, which are uncorrelated with y, so the network's population
linear part is exactly W + Δ₀. With m = d (the whole input space) the populations of both estimated references
are W (Σₓ's model of rank d is the sample covariance; C_data is the least-squares map, = W for Gaussian x, y), so

    error vs Wiener = error vs C_data = tr(Δ₀ Σ_y Δ₀ᵀ) / tr(W Σ_y Wᵀ),
    signal error of C = tr((CA − I)Σ(CA − I)ᵀ)/tr Σ,   noise amplification = σ²‖C‖²_F/tr Σ,

for C = W + Δ₀ (the surrogate) and C = W (Wiener, C_data). Each data set runs
:func:`linlens.workflows.analyze_matrix_free.matrix_free_study` (σ estimated, every reference refitted per
replicate) and records whether each 95% interval holds its truth; also the mean of the corrected error minus the
truth (its bias), with Monte Carlo standard errors. ``--fixed`` repeats it with the references held fixed (the
previous behaviour), for comparison.

Run: ``PYTHONPATH=src python benchmarks/bench_matrix_free_coverage.py --sets 400``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from linlens.operators import as_operator
from linlens.problems import wiener_estimator
from linlens.workflows.analyze_matrix_free import matrix_free_study

D = 8


def case(eps: float, seed: int = 0) -> dict:
    """The fixed parts of the simulated problem (operator, Σ, W, Δ₀, σ) and the closed-form truths."""
    rng = np.random.default_rng(seed)
    A = np.eye(D) + 0.6 * np.eye(D, k=1) + 0.3 * np.eye(D, k=-1) + 0.1 * rng.normal(size=(D, D))
    L = rng.normal(size=(D, D)) * np.linspace(0.3, 1.0, D)
    S = L @ L.T + 0.05 * np.eye(D)
    sigma = 0.4
    W = wiener_estimator(A, S, sigma)
    Sy = A @ S @ A.T + sigma**2 * np.eye(D)
    Dl = rng.normal(size=(D, D))
    Dl *= math.sqrt(eps * np.trace(W @ Sy @ W.T) / np.trace(Dl @ Sy @ Dl.T))
    truth = {"error": float(np.trace(Dl @ Sy @ Dl.T) / np.trace(W @ Sy @ W.T))}
    for name, C in (("surrogate C", W + Dl), ("Wiener", W), ("C_data", W)):
        M = C @ A - np.eye(D)
        truth[name] = (float(np.trace(M @ S @ M.T) / np.trace(S)), float(sigma**2 * np.sum(C**2) / np.trace(S)))
    G = 0.5 * rng.normal(size=(D, D))
    return {"A": A, "S": S, "L": np.linalg.cholesky(S), "Ly": np.linalg.cholesky(Sy), "sigma": sigma, "W": W,
            "Dl": Dl, "G": G, "truth": truth}


def one(c: dict, seed: int, n_boot: int, n: tuple[int, int, int] = (1000, 800, 200), fixed: bool = False) -> dict:
    """One simulated data set: which intervals hold their truths, and the corrected errors."""
    rng = np.random.default_rng(seed)
    N = sum(n)
    X = rng.normal(size=(N, D)) @ c["L"].T
    Y = X @ c["A"].T + c["sigma"] * rng.normal(size=(N, D))
    xi = np.linalg.solve(c["Ly"], Y.T).T
    F = Y @ (c["W"] + c["Dl"]).T + ((xi**2 - 1) / math.sqrt(2)) @ c["G"].T
    a, b = n[0], n[0] + n[1]
    grp = np.arange(N) % 32
    op = as_operator(c["A"])
    st = matrix_free_study(op, (Y[:a], X[:a], grp[:a]), (Y[a:b], F[a:b], grp[a:b]), (Y[b:], F[b:], X[b:], grp[b:]),
                           m=D, n_boot=n_boot, seed=seed, n_groups=32, fixed_references=fixed)
    t = c["truth"]
    out = {}
    for k in ("Wiener", "C_data"):
        e = st.errors[k]
        out[f"error vs {k}"] = (e.low <= t["error"] <= e.high, e.estimate - t["error"])
    for k in ("surrogate C", "Wiener", "C_data"):
        s = st.split[k]
        out[f"{k} signal"] = (s.signal_error.low <= t[k][0] <= s.signal_error.high, s.signal_error.estimate - t[k][0])
        out[f"{k} noise"] = (s.noise_amplification.low <= t[k][1] <= s.noise_amplification.high,
                             s.noise_amplification.estimate - t[k][1])
    out["verdict"] = (st.verdict.verdict, 0.0)
    return out


def simulate(sets: int, eps: float = 0.02, n_boot: int = 100, seed: int = 0, fixed: bool = False) -> dict:
    """name → (coverage, its Monte Carlo s.e., mean estimate − truth, its s.e.) over ``sets`` data sets."""
    c = case(eps, seed)
    runs = [one(c, 10_000 + seed * 100_000 + s, n_boot, fixed=fixed) for s in range(sets)]
    res = {}
    for k in runs[0]:
        if k == "verdict":
            continue
        hit = np.array([r[k][0] for r in runs], dtype=float)
        dev = np.array([r[k][1] for r in runs])
        res[k] = (float(hit.mean()), float(hit.std(ddof=1) / math.sqrt(sets)) if sets > 1 else float("nan"),
                  float(dev.mean()), float(dev.std(ddof=1) / math.sqrt(sets)) if sets > 1 else float("nan"))
    verdicts = [r["verdict"][0] for r in runs]
    res["verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    res["truth"] = c["truth"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=400)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.002])
    ap.add_argument("--fixed", action="store_true", help="hold the references fixed (the previous behaviour)")
    a = ap.parse_args()
    for eps in a.eps:
        t0, c0 = time.perf_counter(), time.process_time()
        r = simulate(a.sets, eps, a.n_boot, fixed=a.fixed)
        print(f"true error {r['truth']['error']:.4g} (d = {D}, m = d, 1000 training pairs, 800 fit, 200 held out, "
              f"B = {a.n_boot}, {a.sets} data sets, references {'fixed' if a.fixed else 'refitted'}); "
              f"verdicts {r['verdicts']}")
        for k, v in r.items():
            if isinstance(v, tuple):
                print(f"  {k:28s} coverage {v[0]:.3f} ± {v[1]:.3f}   mean(estimate − truth) {v[2]:+.2e} ± {v[3]:.1e}")
        print(f"  ({time.process_time() - c0:.0f} s CPU, {time.perf_counter() - t0:.0f} s wall)")


if __name__ == "__main__":
    main()
