"""Benchmark: streaming LinearSurrogate vs numpy.linalg.lstsq, and the memory of a streamed 2^24-row fit.

Every library is pinned to ONE thread (OMP/OPENBLAS/MKL env vars set before numpy import): on the 2-core CI
machine two threads make timings erratic, and the ratio against the peer measured in the same run is what
counts.

1. Memory: a 2^24 × 64 design (10 outputs) generated chunk by chunk (2^16 rows) and streamed through
   ``LinearSurrogate.partial_fit``; the whole design is never held. Prints the peak extra memory traced by
   tracemalloc (numpy allocations) and the ru_maxrss growth. Target < 1 GiB.
2. Speed: a 2,000,000 × 64 design with 10 outputs, κ ≈ 1e2. ``numpy.linalg.lstsq`` on [X | 1] against
   ``LinearSurrogate.partial_fit`` over 32 chunks and ``LinearSurrogate.fit``, 3 repeats each; prints
   min/median, ``ratio=`` (lstsq median / ours) and the relative difference of the solutions
   (coefficients and intercept together). Target ≥ 5× at ≤ 1e-8.

Usage: python benchmarks/bench_surrogate.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from linlens.surrogate import LinearSurrogate  # noqa: E402

D_IN, D_OUT = 64, 10


def make_chunk(rng: np.random.Generator, m: int, scales: np.ndarray, M: np.ndarray, b: np.ndarray):
    """One chunk of the design: columns with scales from 1 to 1e-2 (κ ≈ 1e2), Y = X Mᵀ + b + noise."""
    X = rng.standard_normal((m, D_IN))
    X *= scales
    X += 0.5
    Y = X @ M.T
    Y += b
    Y += 0.1 * rng.standard_normal((m, D_OUT))
    return X, Y


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    return np.logspace(0, -2, D_IN), rng.standard_normal((D_OUT, D_IN)), rng.standard_normal(D_OUT)


def bench_memory(n_rows: int, chunk: int) -> None:
    scales, M, b = problem(1)
    rng = np.random.default_rng(1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    sur = LinearSurrogate()
    for _ in range(n_rows // chunk):
        X, Y = make_chunk(rng, chunk, scales, M, b)
        sur.partial_fit(X, Y)
        del X, Y
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    design_gib = n_rows * D_IN * 8 / 2**30
    err = np.linalg.norm(sur.coef_ - M) / np.linalg.norm(M)
    print(f"[memory] streamed {n_rows:,} x {D_IN} design (+{D_OUT} outputs; the design alone would be "
          f"{design_gib:.2f} GiB) in {n_rows // chunk} chunks of {chunk:,} rows: {elapsed:.1f} s")
    print(f"[memory] peak extra memory (tracemalloc) = {peak / 2**20:.1f} MiB; ru_maxrss growth = "
          f"{(rss1 - rss0) / 1024:.1f} MiB; target < 1024 MiB -> {'OK' if peak < 2**30 else 'MISSED'}")
    print(f"[memory] fitted coef vs the generating M: relative error {err:.2e} (noise-limited)")


def timeit(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times), statistics.median(times)


def bench_speed(n_rows: int, repeats: int, n_chunks: int = 32) -> None:
    scales, M, b = problem(0)
    rng = np.random.default_rng(0)
    X, Y = make_chunk(rng, n_rows, scales, M, b)
    print(f"[speed] design {n_rows:,} x {D_IN}, {D_OUT} outputs, κ(centred X) ≈ "
          f"{LinearSurrogate().fit(X[:200_000], Y[:200_000]).condition_number_:.3g} (from the first 200k rows)")

    def lstsq():
        A = np.hstack([X, np.ones((n_rows, 1))])
        sol = np.linalg.lstsq(A, Y, rcond=None)[0]
        return sol[:-1].T, sol[-1]

    bounds = np.linspace(0, n_rows, n_chunks + 1).astype(int)

    def streaming():
        sur = LinearSurrogate()
        for a, c in zip(bounds[:-1], bounds[1:], strict=True):
            sur.partial_fit(X[a:c], Y[a:c])
        return sur.coef_, sur.intercept_

    def batch():
        sur = LinearSurrogate().fit(X, Y)
        return sur.coef_, sur.intercept_

    ref, t_min_ref, t_med_ref = timeit(lstsq, repeats)
    print(f"[speed] numpy.linalg.lstsq on [X | 1]: min {t_min_ref:.3f} s, median {t_med_ref:.3f} s")
    ref_vec = np.concatenate([ref[0].ravel(), ref[1]])
    for name, fn in ((f"LinearSurrogate.partial_fit over {n_chunks} chunks", streaming),
                     ("LinearSurrogate.fit", batch)):
        sol, t_min, t_med = timeit(fn, repeats)
        rel = np.linalg.norm(np.concatenate([sol[0].ravel(), sol[1]]) - ref_vec) / np.linalg.norm(ref_vec)
        ok = t_med_ref / t_med >= 5 and rel <= 1e-8
        print(f"[speed] {name}: min {t_min:.3f} s, median {t_med:.3f} s; ratio={t_med_ref / t_med:.1f} "
              f"(min-based {t_min_ref / t_min:.1f}); rel_diff={rel:.2e}; target >=5x at <=1e-8 -> "
              f"{'OK' if ok else 'MISSED'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (200k-row timing, 2^20-row stream)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print("threads pinned to 1 (OMP/OPENBLAS/MKL_NUM_THREADS=1, set before importing numpy)")
    bench_memory(2**20 if args.quick else 2**24, 2**16)
    bench_speed(200_000 if args.quick else 2_000_000, args.repeats)


if __name__ == "__main__":
    main()
