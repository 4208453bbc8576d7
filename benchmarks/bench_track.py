"""Benchmark: the training tracker's overhead per call against one training epoch, measured in the same run.

The demo's smooth blur problem (Gaussian blur n = 64, GP prior, σ = 1e-3) and its "good" MLP ([256, 256], Adam,
batch 128, 20,000 training pairs). One epoch of ``linlens.nn.train`` is timed, then ``Tracker.update`` on the
same model (probes, targets and A: errors against A⁻¹, Wiener and C_data with 100 multiplier-bootstrap
replicates, filter factors, signal/noise split, R², Σ_y-weighted Jacobian distance at 32 probes). The first
update includes the one-off set-up (A's SVD, references, the probes' factorization); later updates reuse it.
A second tracker takes C_data (and the estimated Σₓ, σ) from the probe pairs' fit half instead of the 20,000
training pairs: the bootstrap of a reference estimated on many rows dominates an update's cost.
As a second peer, ``inverse_study`` on the same model and pairs: what one call costs without the reuse.

Prints wall and CPU (process) seconds of each and ``ratio=`` update / epoch (CPU). One thread for torch and BLAS.

With ``--coverage``: instead, the coverage of the tracker's 95% interval on the error against C_data, by
simulation against a model whose population surrogate is known in closed form (y ↦ C₀y + β|Gy| on symmetric
y, d = 3, x = By + noise, so the truth is ‖C₀ − B‖²_F/‖B‖²_F), for C_data fitted on the probes' fit half (the
tracker's default) and on separate training pairs, at 400 probes and (probe pairs) 2,000 probes.

Usage: python benchmarks/bench_track.py [--quick] [--probes 2000] [--repeats 3] [--coverage [--reps 200]]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from linlens import nn as lnn  # noqa: E402
from linlens.problems import InverseProblem, SmoothPrior, gaussian_blur  # noqa: E402
from linlens.tracking import Tracker  # noqa: E402
from linlens.workflows.study import inverse_study  # noqa: E402


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def coverage(reps: int) -> None:
    """Coverage of the 95% interval on the error against C_data (see the module docstring)."""
    d = 3
    rng0 = np.random.default_rng(0)
    C0, G = rng0.normal(size=(d, d)), rng0.normal(size=(d, d))
    B = C0 + 0.3 * rng0.normal(size=(d, d))
    truth = float(np.sum((C0 - B) ** 2) / np.sum(B ** 2))  # Σ_y = I

    class Model(torch.nn.Module):
        def forward(self, y):
            Ct, Gt = torch.as_tensor(C0, dtype=y.dtype), torch.as_tensor(G, dtype=y.dtype)
            return y @ Ct.T + 0.5 * torch.abs(y @ Gt.T)

    model = Model()
    for label, n, n_train, r_max in (("C_data on the probes' fit half", 400, 0, reps),
                                     ("C_data on 200 separate training pairs", 400, 200, reps),
                                     ("C_data on the probes' fit half", 2000, 0, max(1, reps * 3 // 4))):
        hits, t0 = [], time.process_time()
        for r in range(r_max):
            rng = np.random.default_rng(100 + r)
            Y = rng.normal(size=(n, d))
            X = Y @ B.T + 0.5 * rng.normal(size=(n, d))
            kw = {}
            if n_train:
                Yt = rng.normal(size=(n_train, d))
                kw = {"train_inputs": Yt, "train_targets": Yt @ B.T + 0.5 * rng.normal(size=(n_train, d))}
            e = Tracker(Y, X, n_boot=200, n_jacobian=0, seed=r, **kw).update(model, 0).errors["C_data"]
            hits.append(e["low"] <= truth <= e["high"])
        cov = float(np.mean(hits))
        se = (cov * (1 - cov) / len(hits)) ** 0.5
        print(f"coverage {cov:.3f} ± {se:.3f} (nominal 0.95) — {label}, {n} probes, {len(hits)} data sets, "
              f"truth {truth:.4f}, {time.process_time() - t0:.0f} s CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 training pairs and 1,000 probes")
    ap.add_argument("--probes", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--coverage", action="store_true", help="the interval-coverage simulation instead")
    ap.add_argument("--reps", type=int, default=200, help="data sets of the coverage simulation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.coverage:
        coverage(args.reps)
        return
    n = 64
    prob = InverseProblem(gaussian_blur(n, width=2.0), SmoothPrior(n, length_scale=4.0), 1e-3)
    n_train = 5000 if args.quick else 20000
    n_probe = 1000 if args.quick else args.probes
    X, Y = prob.sample(n_train, seed=0)
    Xp, Yp = prob.sample(n_probe, seed=2)
    net = lnn.mlp(n, [256, 256], n, seed=0)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    epochs = []
    for _ in range(args.repeats):
        _, w, c = timed(lambda: lnn.train(net, Y32, X32, epochs=1, batch_size=128, lr=1e-3, device="cpu",
                                          progress=False))
        epochs.append((w, c))
    tr = Tracker(Yp, Xp, prob.A, train_inputs=Y, train_targets=X, n_boot=100, n_jacobian=32)
    _, w_first, c_first = timed(lambda: tr.update(net, 0))
    updates = [timed(lambda s=s: tr.update(net, s))[1:] for s in range(1, args.repeats + 1)]
    tr_p = Tracker(Yp, Xp, prob.A, n_boot=100, n_jacobian=32)  # C_data and Σₓ, σ from the probe pairs' fit half
    tr_p.update(net, 0)
    probe_only = [timed(lambda s=s: tr_p.update(net, s))[1:] for s in range(1, args.repeats + 1)]
    studies = [timed(lambda: inverse_study({"net": net}, Yp, Xp, X, Y, A=prob.A, n_boot=100))[1:]
               for _ in range(max(1, args.repeats - 1))]
    med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
    ep_w, ep_c = med(epochs, 0), med(epochs, 1)
    up_w, up_c = med(updates, 0), med(updates, 1)
    st_w, st_c = med(studies, 0), med(studies, 1)
    po_w, po_c = med(probe_only, 0), med(probe_only, 1)
    print(f"problem: Gaussian blur n={n}, MLP [256, 256], {n_train} training pairs, batch 128; {n_probe} probes, "
          f"n_boot 100, Jacobians at 32 probes; one thread; machine shared with other jobs (CPU time is the measure)")
    print(f"one epoch               : wall {ep_w:7.3f} s  cpu {ep_c:7.3f} s  (median of {len(epochs)})")
    print(f"first update (+ set-up) : wall {w_first:7.3f} s  cpu {c_first:7.3f} s")
    print(f"update (set-up reused)  : wall {up_w:7.3f} s  cpu {up_c:7.3f} s  (median of {len(updates)})")
    print(f"update, refs from probes: wall {po_w:7.3f} s  cpu {po_c:7.3f} s  (median of {len(probe_only)}; C_data "
          "fitted on the probes' fit half instead of the training pairs)")
    print(f"inverse_study, one model: wall {st_w:7.3f} s  cpu {st_c:7.3f} s  (median of {len(studies)})")
    print(f"ratio={up_c / ep_c:.3f} (tracker update / one epoch, CPU)")
    print(f"ratio_probe_refs={po_c / ep_c:.3f} (update with references from the probe pairs / one epoch, CPU)")
    print(f"ratio_first={c_first / ep_c:.3f} (first update with set-up / one epoch, CPU)")
    print(f"ratio_vs_study={up_c / st_c:.3f} (tracker update / inverse_study on one model, CPU)")


if __name__ == "__main__":
    main()
