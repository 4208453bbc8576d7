"""Benchmark: linlens HankelDMD.fit vs PyDMD HankelDMD.fit (and RDMD) on the same Hankel DMD problem.

Every library is pinned to ONE thread (OMP/OPENBLAS/MKL env vars set before numpy/torch import, and
torch.set_num_threads(1)): on the 2-core CI machine two threads make timings erratic, and the ratio against
the peer measured in the same run is what counts. Prints ``ratio=`` (PyDMD time / ours, by median) and the
eigenvalue agreement (optimally matched, max relative difference).

Cases (64-dim series, 4001 snapshots, window 32 = delays 31 → Hankel 2048 × 3969, rank 20):
  easy  — 10 damped/undamped oscillators (exact rank 20) seen through a random 64 × 20 map + 1e-6 noise;
  slow  — 60 oscillators with amplitudes 1/k + 1e-2 noise: singular values decay slowly across rank 20.

Usage: python benchmarks/bench_dmd.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from linlens.koopman.dmd import HankelDMD  # noqa: E402

torch.set_num_threads(1)


def oscillators(n_steps: int, dim: int, n_osc: int, amp_decay: float, noise: float, seed: int) -> np.ndarray:
    """(n_steps, dim) series: ``n_osc`` damped oscillators (amplitudes k^-amp_decay) through a random map."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    freqs = rng.uniform(0.01, np.pi - 0.01, size=n_osc)
    damp = rng.uniform(0.9995, 1.0, size=n_osc)
    amps = np.arange(1, n_osc + 1, dtype=float) ** (-amp_decay)
    phases = rng.uniform(0, 2 * np.pi, size=n_osc)
    cols = []
    for f, d, a, p in zip(freqs, damp, amps, phases, strict=True):
        cols += [a * d**t * np.cos(f * t + p), a * d**t * np.sin(f * t + p)]
    S = np.stack(cols, 1)  # (n_steps, 2·n_osc)
    M = rng.normal(size=(2 * n_osc, dim)) / np.sqrt(2 * n_osc)
    return S @ M + noise * rng.normal(size=(n_steps, dim))


def max_rel_matched(a: np.ndarray, b: np.ndarray) -> float:
    cost = np.abs(a[:, None] - b[None, :])
    i, j = linear_sum_assignment(cost)
    return float(np.max(np.abs(a[i] - b[j]) / np.abs(b[j])))


def timeit(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def fmt(times: list[float]) -> str:
    return f"min {min(times):7.3f} s  median {statistics.median(times):7.3f} s"


def run_case(name: str, x: np.ndarray, window: int, rank: int, repeats: int, rdmd: bool) -> None:
    import pydmd

    h = window - 1
    print(f"\n[{name}] series {x.shape}, window {window} (delays {h}), Hankel {x.shape[1] * window} x "
          f"{x.shape[0] - window}, rank {rank}")

    def ours():
        return HankelDMD(delays=h, rank=rank, backend="numpy").fit(x[None])

    def ours_full():
        return HankelDMD(delays=h, rank=rank, backend="numpy", svd="full").fit(x[None])

    def peer():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydmd.HankelDMD(svd_rank=rank, d=window).fit(x.T)

    t_ours, m_ours = timeit(ours, repeats)
    t_peer, m_peer = timeit(peer, repeats)
    ratio = statistics.median(t_peer) / statistics.median(t_ours)
    ratio_min = min(t_peer) / min(t_ours)
    print(f"  linlens HankelDMD (auto→randomized, {m_ours.power_iterations_} power it.): {fmt(t_ours)}")
    print(f"  PyDMD   HankelDMD(d={window}, svd_rank={rank}):                  {fmt(t_peer)}")
    err = max_rel_matched(np.asarray(m_ours.eigs), np.asarray(m_peer.eigs))
    print(f"  ratio={ratio:.1f} (median; min/min {ratio_min:.1f})  eig max rel diff vs PyDMD = {err:.2e}  "
          f"(target ratio >= 5)")
    t_full, m_full = timeit(ours_full, 1)
    err_full = max_rel_matched(np.asarray(m_ours.eigs), np.asarray(m_full.eigs))
    print(f"  linlens svd='full' (1 run): {t_full[0]:.3f} s; ours randomized vs ours full: eig max rel diff "
          f"{err_full:.2e}; full vs PyDMD {max_rel_matched(np.asarray(m_full.eigs), np.asarray(m_peer.eigs)):.2e}")
    s = np.asarray(m_full.singular_values_)
    print(f"  singular values around the cut: s[r-1]/s[0]={s[rank - 1] / s[0]:.2e}, "
          f"s[r]/s[r-1]={s[rank] / s[rank - 1]:.3f}")
    if rdmd:
        H = np.lib.stride_tricks.sliding_window_view(x.T, window, axis=1)  # (dim, n-window+1, window)
        H = np.ascontiguousarray(H.transpose(2, 0, 1).reshape(window * x.shape[1], -1))  # oldest first

        def peer_r():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pydmd.RDMD(svd_rank=rank, oversampling=10, power_iters=2, seed=0).fit(H)

        t_r, m_r = timeit(peer_r, repeats)
        print(f"  PyDMD   RDMD(svd_rank={rank}, oversampling=10, power_iters=2) on the Hankel matrix: {fmt(t_r)}"
              f"  ratio_vs_rdmd={statistics.median(t_r) / statistics.median(t_ours):.1f}  eig max rel diff vs "
              f"PyDMD HankelDMD {max_rel_matched(np.asarray(m_r.eigs), np.asarray(m_peer.eigs)):.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, easy case only, smaller series")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-rdmd", action="store_true")
    args = ap.parse_args()
    print("threads pinned to 1 (OMP/OPENBLAS/MKL=1, torch.set_num_threads(1)); times are wall-clock seconds")
    if args.quick:
        x = oscillators(1001, 32, 10, 0.0, 1e-6, seed=0)
        run_case("easy, quick", x, window=16, rank=20, repeats=1, rdmd=False)
        return
    x = oscillators(4001, 64, 10, 0.0, 1e-6, seed=0)
    run_case("easy: exact rank 20 + 1e-6 noise", x, window=32, rank=20, repeats=args.repeats, rdmd=not args.no_rdmd)
    x = oscillators(4001, 64, 60, 1.0, 1e-2, seed=1)
    run_case("slow: 60 oscillators, amplitudes 1/k, 1e-2 noise", x, window=32, rank=20, repeats=args.repeats,
             rdmd=not args.no_rdmd)


if __name__ == "__main__":
    main()
