"""Does the demo's verdict "C_data" on the piecewise problem say something about the network, or about the
training rows it shares with C_data? (issue 21)

On the demo's problems Σₓ and σ are given exactly, so the population value of C_data (the least-squares fit of x
on y) IS the Wiener estimator: the true difference "error vs C_data − error vs Wiener" is exactly 0 and the right
verdict between the two is "tie". C_data is resampled with its own rows as if its estimation error were independent
of the surrogate's; when the network was trained on those same rows the two errors are correlated (both follow the
sample), and the study can call C_data closest for that reason alone.

Per seed: the demo's trained MLP (piecewise prior, demo training settings), then the study twice on the same
probes — C_data fitted on the network's own training rows, and on as many fresh rows it never saw — printing the
verdict and the paired difference C_data − Wiener with its interval and p-value.

Run: ``python benchmarks/bench_demo_verdict.py [--seeds 0,1,2,3,4] [--problem piecewise] [--quick]``
(about 40 s of CPU per seed on one thread for the full piecewise training).
"""

from __future__ import annotations

import argparse
import time

import torch

from linlens.workflows.demo import FRESH_SEED, _train_models, demo_problems
from linlens.workflows.study import inverse_study


def one_seed(key: str, seed: int, quick: bool, n_boot: int) -> dict[str, dict[str, float | str]]:
    prob = dict(demo_problems())[key]
    models, _, X, Y = _train_models(prob, seed, quick, None, key)
    net = {"trained MLP": models["trained MLP"]}
    X_probe, Y_probe = prob.sample(8000, seed=seed + 2_000_003)  # as the demo's write_problem_files
    X_fresh, Y_fresh = prob.sample(len(X), seed=seed + FRESH_SEED)  # rows the network never saw (as the demo)
    out = {}
    for tag, (Xc, Yc) in (("C_data on the training rows", (X, Y)), ("C_data on fresh rows", (X_fresh, Y_fresh))):
        st = inverse_study(net, Y_probe, X_probe, Xc, Yc, A=prob.A, prior_covariance=prob.prior.covariance(),
                           noise_std=prob.noise_std, n_boot=n_boot, seed=seed, name=prob.name)
        m = st.models["trained MLP"]
        v = m.verdict
        d = v.differences.get("C_data − Wiener") or v.differences.get("Wiener − C_data")
        sign = 1.0 if "C_data − Wiener" in v.differences else -1.0
        lo, hi = sorted((sign * d.low, sign * d.high))
        out[tag] = {"verdict": v.text(), "C_data": m.errors["C_data"]["estimate"],
                    "Wiener": m.errors["Wiener"]["estimate"], "diff": sign * d.estimate, "low": lo, "high": hi,
                    "p": d.p_value}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--problem", default="piecewise", choices=["piecewise", "smooth"])
    ap.add_argument("--quick", action="store_true", help="the demo's --quick training")
    ap.add_argument("--boot", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    print(f"{args.problem} problem, true C_data − Wiener difference = 0 (Σₓ, σ exact); {args.boot} replicates")
    counts: dict[str, list[str]] = {}
    for s in (int(x) for x in args.seeds.split(",")):
        for tag, r in one_seed(args.problem, s, args.quick, args.boot).items():
            counts.setdefault(tag, []).append(r["verdict"])
            print(f"seed {s}  {tag:<28} verdict {r['verdict']:<22} error vs C_data {r['C_data']:.4g}, vs Wiener "
                  f"{r['Wiener']:.4g}; C_data − Wiener {r['diff']:+.3g} [{r['low']:+.3g}, {r['high']:+.3g}] "
                  f"p = {r['p']:.2g}", flush=True)
    for tag, v in counts.items():
        print(f"{tag}: " + ", ".join(f"{x} ×{v.count(x)}" for x in sorted(set(v))))
    print(f"total {time.perf_counter() - t0:.0f} s (CPU {time.process_time() - c0:.0f} s; shared machine)")


if __name__ == "__main__":
    main()
