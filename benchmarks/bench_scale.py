"""Scale benchmark: streaming surrogate fit on a memory-mapped design vs ``dask.array.linalg.lstsq``.

1. Writes an (n × 64) float64 design to a temporary ``.npy`` on disk chunk by chunk (n = 2^26 = 32 GiB by
   default, or the largest power of two that fits in half the free space of the temp folder).
2. Peak extra memory of ``LinearSurrogate(solver="gram").fit`` on the memory-mapped design, read in
   ``linlens.scale.from_npy`` row blocks (each task copies its rows out of the memory map; outputs
   Y = X W + noise made per block, 8 columns), measured as the peak anonymous resident memory (RssAnon,
   sampled every 5 ms) above the baseline; the mapped file's pages are page cache (RssFile, reclaimable)
   and are reported separately. Target: < 1 GiB extra.
3. Throughput in rows/s of that fit vs ``dask.array.linalg.lstsq`` on the SAME dask chunks (the first
   ``--compare-rows`` rows, so the peer fits in memory), and the relative difference of the coefficients.
   Target ratio ≥ 2.
4. Jacobian GPU/CPU ratio where CUDA is present (skipped otherwise).

Everything runs on one thread (OMP/OpenBLAS/MKL/torch pinned to 1, dask's synchronous scheduler), so the
ratio compares algorithms, not parallelism. Usage: ``python benchmarks/bench_scale.py [--quick]``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from linlens.scale import from_npy  # noqa: E402
from linlens.surrogate import LinearSurrogate  # noqa: E402

torch.set_num_threads(1)
D_IN, D_OUT = 64, 8


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Sample RssAnon and RssFile in a background thread; peaks above the values at entry."""

    def __enter__(self) -> PeakMemory:
        self.base_anon, self.base_file = _status("RssAnon"), _status("RssFile")
        self.peak_anon, self.peak_file = self.base_anon, self.base_file
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_anon = max(self.peak_anon, _status("RssAnon"))
            self.peak_file = max(self.peak_file, _status("RssFile"))
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    @property
    def extra_anon(self) -> int:
        return self.peak_anon - self.base_anon

    @property
    def extra_file(self) -> int:
        return self.peak_file - self.base_file


def write_design(path: Path, n: int, chunk: int, seed: int = 0) -> None:
    """Write an (n, 64) float64 design with κ ≈ 10 to ``path`` chunk by chunk (never whole in memory)."""
    rng = np.random.default_rng(seed)
    M = np.linalg.qr(rng.normal(size=(D_IN, D_IN)))[0] * np.geomspace(1, 10, D_IN)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, D_IN))
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        out[s : s + m] = rng.standard_normal((m, D_IN)) @ M
    out.flush()
    del out


def dask_design(path: Path, n: int, chunk: int) -> tuple[da.Array, da.Array, np.ndarray]:
    """X (n, 64) from the memory map in row blocks and Y = X W + noise made per block (same chunks)."""
    X = from_npy(path, chunk_rows=chunk)[:n]  # each task reads its rows from the memory map (no whole copy)
    W = np.random.default_rng(1).normal(size=(D_IN, D_OUT))

    def outputs(x: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        i = block_info[0]["chunk-location"][0] if block_info else 0
        return np.asarray(x) @ W + 1e-3 * np.random.default_rng([2, i]).standard_normal((len(x), D_OUT))

    Y = X.map_blocks(outputs, chunks=(X.chunks[0], (D_OUT,)), dtype=np.float64)
    return X, Y, W


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, res = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return times, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2^20 rows, one repeat")
    ap.add_argument("--rows-log2", type=int, default=26)
    ap.add_argument("--chunk-log2", type=int, default=17, help="rows per dask block (2^17 × 64 × 8 B = 64 MiB)")
    ap.add_argument("--compare-rows-log2", type=int, default=22, help="rows for the comparison with dask lstsq")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--keep", action="store_true", help="keep the design file for the next run")
    args = ap.parse_args()
    if args.quick:
        args.rows_log2, args.compare_rows_log2, args.repeats, args.chunk_log2 = 20, 20, 1, 16
    dask.config.set(scheduler="synchronous")
    chunk = 2**args.chunk_log2
    free = shutil.disk_usage(args.tmp).free
    k = args.rows_log2
    while k > 10 and 2**k * D_IN * 8 > free // 2:
        k -= 1
    n = 2**k
    print("threads pinned to 1 (OMP/OpenBLAS/MKL/torch), dask scheduler: synchronous")
    print(f"free space in {args.tmp}: {free / 2**30:.1f} GiB; design 2^{k} x {D_IN} float64 = "
          f"{n * D_IN * 8 / 2**30:.2f} GiB" + ("" if k == args.rows_log2 else
                                              f" (2^{args.rows_log2} does not fit in half the free space)"))
    path = args.tmp / f"linlens_bench_scale_2p{k}x{D_IN}.npy"
    try:
        old = np.load(path, mmap_mode="r") if path.exists() else None
        if old is not None and old.shape == (n, D_IN) and old.dtype == np.float64:
            print(f"reusing {path} (kept by an earlier --keep run)")
        else:
            t = time.perf_counter()
            write_design(path, n, chunk)
            print(f"wrote {path} in {time.perf_counter() - t:.1f} s")
        del old

        # --- peak memory + throughput of the streaming fit on the whole design
        X, Y, W = dask_design(path, n, chunk)
        with PeakMemory() as pm:
            t = time.perf_counter()
            sur = LinearSurrogate(fit_intercept=False, solver="gram").fit(X, Y)
            t_full = time.perf_counter() - t
        err_w = np.max(np.abs(sur.coef_ - W.T))
        print(f"streaming surrogate fit, {n} rows in {X.numblocks[0]} blocks of {chunk}: {t_full:.1f} s = "
              f"{n / t_full:,.0f} rows/s; peak extra anonymous memory {pm.extra_anon / 2**20:.0f} MiB "
              f"(target < 1024 MiB: {'met' if pm.extra_anon < 2**30 else 'NOT met'}); page cache of the "
              f"memory map (RssFile, reclaimable) grew by {pm.extra_file / 2**20:.0f} MiB; "
              f"max |coef − W| = {err_w:.2e}")

        # --- throughput vs dask.array.linalg.lstsq on the same chunks
        m = 2 ** min(args.compare_rows_log2, k)
        Xc, Yc, _ = dask_design(path, m, chunk)
        ours, s_ours = timed(lambda: LinearSurrogate(fit_intercept=False, solver="gram").fit(Xc, Yc),
                             args.repeats)
        with PeakMemory() as pm_peer:
            peer, (x_peer, *_) = timed(lambda: dask.compute(*da.linalg.lstsq(Xc, Yc)), args.repeats)
        rel = np.max(np.abs(s_ours.coef_ - x_peer.T)) / np.max(np.abs(x_peer))
        print(f"comparison on {m} rows ({Xc.numblocks[0]} blocks of {chunk}), {args.repeats} repeat(s):")
        print(f"  linlens streaming Gram fit : min {min(ours):.2f} s, median {statistics.median(ours):.2f} s, "
              f"{m / min(ours):,.0f} rows/s")
        print(f"  dask.array.linalg.lstsq    : min {min(peer):.2f} s, median {statistics.median(peer):.2f} s, "
              f"{m / min(peer):,.0f} rows/s (peak extra anonymous memory {pm_peer.extra_anon / 2**20:.0f} MiB)")
        ratio = min(peer) / min(ours)
        print(f"  ratio={ratio:.2f} (throughput linlens / dask lstsq, target >= 2: "
              f"{'met' if ratio >= 2 else 'NOT met'}); relative coefficient difference {rel:.1e}")
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)

    if torch.cuda.is_available():
        from linlens.jacobian import jacobians

        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                  torch.nn.ReLU(), torch.nn.Linear(128, 10))
        x = torch.randn(2048 if args.quick else 8192, 784)
        t_cpu, _ = timed(lambda: jacobians(net, x), args.repeats)
        gnet, gx = net.to("cuda"), x.to("cuda")

        def gpu() -> object:
            J = jacobians(gnet, gx)
            torch.cuda.synchronize()
            return J

        gpu()
        t_gpu, _ = timed(gpu, args.repeats)
        print(f"Jacobians MLP 784-256-128-10 on {len(x)} inputs: CPU {min(t_cpu):.2f} s, GPU {min(t_gpu):.3f} s, "
              f"ratio={min(t_cpu) / min(t_gpu):.1f} (GPU speed-up)")
    else:
        print("Jacobian GPU/CPU ratio: skipped (no CUDA device on this machine)")


if __name__ == "__main__":
    main()
