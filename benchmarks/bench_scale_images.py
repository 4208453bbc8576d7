"""Images out of core: ``linlens analyze --dask local`` on the Fourier route (``--route fourier``, the default) or
the matrix-free route (``--route matrix-free``) at 2^20 images of 32×32, against the in-memory route on a subset,
measured in the same run.

1. Writes ``y.zarr`` and ``x.zarr`` (n, 1, 32, 32) float32, uncompressed, in chunks of ``--batch-size`` images
   (n = 2^20 by default: 4 GiB each; where the folder's disk cannot hold both with room to spare, the largest power
   of two that fits, said on the first line): x are smooth random images (a 1/(1 + |k|²) spectrum), y = A x + σ e
   with A a circular Gaussian blur (``A.npy``, 1024 × 1024) and σ = 0.05 (Fourier), or A a 9 × 9 Gaussian blur
   with reflecting boundaries given as a deepinv-style object (``ops.py``: ``--operator ops:blur``, the docs' worked
   example's float32 blur with its explicit adjoint, applied as a function, never a matrix) and ``--assume
   matrix-free --components 32`` (matrix-free). Nothing is downloaded.
2. The model: y ↦ y + Conv–ReLU–Conv(y), circular padding, 8 channels, float32 (TorchScript, ``--trust-model``).
3. Runs, each as its own ``linlens analyze`` process (so that its memory is its own): the Dask route on all n
   images (``--dask local``: a LocalCluster of min(4, cores) worker processes, one thread each); the in-memory
   Fourier route on the first ``--subset`` images (``.npy`` files); the Dask route on the same subset (its numbers
   must equal the in-memory ones: printed).
4. Prints, per run: wall time, CPU time (user + system of the process and its worker processes), images/s (wall
   and per CPU second), peak resident memory of the process tree (RSS summed over the process and its children,
   sampled every 0.2 s); then ``ratio=`` lines: Dask throughput on n against in memory on the subset, and their
   peak memories.

Everything is pinned to one thread per process. The 2-core machine this was written on is shared: wall times
are inflated by the other jobs; CPU time is the steadier number. Usage:
``python benchmarks/bench_scale_images.py [--route fourier|matrix-free] [--n 1048576] [--subset 65536]
[--dir /tmp/...] [--keep]``; ``--quick`` runs n = 2^14, subset 2^12.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402
import zarr  # noqa: E402

torch.set_num_threads(1)

SIDE = 32
SIGMA = 0.05


class Net(torch.nn.Module):
    """y ↦ y + Conv(8)–ReLU–Conv(1) (y), circular padding: shift-equivariant, not linear."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Conv2d(1, 8, 3, padding=1, padding_mode="circular")
        self.b = torch.nn.Conv2d(8, 1, 3, padding=1, padding_mode="circular")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.b(torch.relu(self.a(y)))


def _blur_transfer() -> np.ndarray:
    i = np.arange(SIDE)
    k = np.exp(-np.minimum(i, SIDE - i) ** 2 / (2 * 1.2**2))
    k /= k.sum()
    return np.fft.rfft2(np.outer(k, k))


#: the matrix-free route's operator, imported by ``linlens`` (and by the Dask workers) as ``ops:blur``: the docs'
#: worked example's reflect blur (``docs/figures/make_images_matrix_free.py``: float32, explicit adjoint), one
#: source for both, at SIDE × SIDE (its ``LINLENS_EXAMPLE_SIZE``, inherited by the runs and their workers)
os.environ["LINLENS_EXAMPLE_SIZE"] = str(SIDE)
_spec = importlib.util.spec_from_file_location(
    "make_images_matrix_free", Path(__file__).resolve().parents[1] / "docs" / "figures" / "make_images_matrix_free.py")
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)
OPS = _example.OPS


def write_data(folder: Path, n: int, chunk: int, seed: int = 0, route: str = "fourier") -> None:
    """y.zarr, x.zarr (n, 1, 32, 32) float32 uncompressed, written chunk by chunk; A.npy (1024, 1024) (Fourier) or
    ops.py (matrix-free)."""
    H = _blur_transfer()
    blur = None
    if route == "matrix-free":
        (folder / "ops.py").write_text(OPS)
        space: dict = {}
        exec(compile(OPS, "ops.py", "exec"), space)  # the same operator the route will import
        blur = space["blur"]
    ky, kx = np.meshgrid(np.fft.fftfreq(SIDE) * SIDE, np.fft.rfftfreq(SIDE) * SIDE, indexing="ij")
    shape_x = torch.as_tensor(1.0 / (1.0 + (ky**2 + kx**2) / 4.0), dtype=torch.float32)  # power ∝ 1/(1 + |k|²/4)²
    Ht = torch.as_tensor(H, dtype=torch.complex64)
    arrays = {name: zarr.create_array(store=str(folder / f"{name}.zarr"), shape=(n, 1, SIDE, SIDE),
                                      chunks=(chunk, 1, SIDE, SIDE), dtype="float32", compressors=None,
                                      overwrite=True) for name in ("x", "y")}
    for s in range(0, n, chunk):  # float32 torch FFTs: 3× faster than numpy's float64 ones here
        g = torch.Generator().manual_seed(seed * 2**32 + s)
        b = min(chunk, n - s)
        xh = torch.fft.rfft2(torch.randn(b, SIDE, SIDE, generator=g)) * shape_x
        x = torch.fft.irfft2(xh, s=(SIDE, SIDE)) * 4.0
        if blur is None:
            y = torch.fft.irfft2(xh * 4.0 * Ht, s=(SIDE, SIDE)) + SIGMA * torch.randn(b, SIDE, SIDE, generator=g)
        else:
            y = blur.A(x[:, None])[:, 0] + SIGMA * torch.randn(b, SIDE, SIDE, generator=g)
        arrays["x"][s:s + b] = x[:, None].numpy()
        arrays["y"][s:s + b] = y[:, None].numpy()
    if blur is not None:
        return _save_net(folder)
    # the operator as a dense matrix (columns: A applied to the unit images)
    E = np.eye(SIDE * SIDE).reshape(-1, SIDE, SIDE)
    A = np.fft.irfft2(np.fft.rfft2(E) * H, s=(SIDE, SIDE)).reshape(SIDE * SIDE, -1).T
    np.save(folder / "A.npy", np.ascontiguousarray(A))
    _save_net(folder)


def _save_net(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Net()).save(str(folder / "net.pt"))


def measure(argv: list[str], label: str, path: Path | None = None) -> dict:
    """Run ``linlens`` with ``argv`` in a child process; wall, CPU (user + system, children included), peak RSS of
    the process tree (sampled), and metrics.json of its report. ``path``: a folder put on PYTHONPATH (the
    operator's module, for the process and its Dask workers)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), *filter(None, [env.get("PYTHONPATH")])])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "linlens", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [p, *p.children(recursive=True)]
                peak[0] = max(peak[0], sum(q.memory_info().rss for q in tree if q.is_running()))
            except psutil.Error:
                pass
            stop.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(out)
        raise SystemExit(f"{label}: linlens exited {proc.returncode}")
    first = out.strip().splitlines()[0] if out.strip() else ""
    out_dir = Path(argv[argv.index("-o") + 1])
    return {"label": label, "wall": wall, "cpu": cpu, "peak_rss": peak[0], "first_line": first,
            "metrics": json.loads((out_dir / "metrics.json").read_text())}


def _summary(metrics: dict) -> tuple[dict[str, float], dict[str, list[float]], str]:
    """(bias-corrected errors, their intervals, verdict) of a Fourier or a matrix-free report."""
    if "analysis" in metrics:  # the Fourier routes
        a = metrics["analysis"]
        return a["errors_corrected"], a["error_intervals"], str(a["closest"])
    e = metrics["errors"]
    return ({k: v["estimate"] for k, v in e.items()}, {k: [v["low"], v["high"]] for k, v in e.items()},
            metrics["verdict_text"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--route", choices=("fourier", "matrix-free"), default="fourier")
    ap.add_argument("--n", type=int, default=2**20, help="images on disk (default 2^20)")
    ap.add_argument("--subset", type=int, default=2**16, help="images for the in-memory route (default 2^16)")
    ap.add_argument("--batch-size", type=int, default=8192, help="images per Dask task (and zarr chunk)")
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--components", type=int, default=32, help="m of the matrix-free route")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/linlens-bench-images"))
    ap.add_argument("--keep", action="store_true", help="keep the data folder (default: deleted at the end)")
    ap.add_argument("--skip-full", action="store_true", help="only the subset runs (in memory and Dask)")
    ap.add_argument("--quick", action="store_true", help="n = 2^14, subset 2^12")
    a = ap.parse_args()
    if a.quick:
        a.n, a.subset, a.batch_size = 2**14, 2**12, 2048
    a.dir.mkdir(parents=True, exist_ok=True)
    need = lambda n: 2 * n * SIDE * SIDE * 4 + 2 * a.subset * SIDE * SIDE * 4  # noqa: E731 - float32 zarr + npy
    free = shutil.disk_usage(a.dir).free
    n = a.n
    while n > a.subset and need(n) > 0.5 * free:
        n //= 2
    note = "" if n == a.n else f" (asked for {a.n:,}: the disk at {a.dir} has {free / 2**30:.1f} GiB free, so {n:,})"
    print(f"bench_scale_images ({a.route} route): {n:,} images of {SIDE}×{SIDE} on disk as float32 zarr "
          f"({need(n) / 2**30:.2f} GiB with the subset){note}; in memory: the first {a.subset:,}; {os.cpu_count()} "
          "cores (shared machine)", flush=True)
    sub = min(a.subset, n)
    try:
        t0 = time.perf_counter()
        write_data(a.dir, n, a.batch_size, route=a.route)
        for name in ("x", "y"):
            np.save(a.dir / f"{name}_sub.npy", zarr.open_array(str(a.dir / f"{name}.zarr"), mode="r")[:sub])
        print(f"data written in {time.perf_counter() - t0:.1f} s", flush=True)
        common = ["--trust-model", "-m", str(a.dir / "net.pt"), "--n-boot", str(a.n_boot), "--force"]
        if a.route == "fourier":
            common += ["--operator", str(a.dir / "A.npy")]
        else:
            common += ["--operator", "ops:blur", "--assume", "matrix-free", "--components", str(a.components)]
        path = a.dir if a.route == "matrix-free" else None
        runs = [
            measure(["analyze", *common, "-i", str(a.dir / "y_sub.npy"), "--targets", str(a.dir / "x_sub.npy"),
                     "-o", str(a.dir / "rep_mem_sub")], f"in memory, {sub:,} images", path),
            measure(["analyze", *common, "-i", str(a.dir / "y_sub.npy"), "--targets", str(a.dir / "x_sub.npy"),
                     "--dask", "local", "--batch-size", str(a.batch_size), "-o", str(a.dir / "rep_dask_sub")],
                    f"Dask, {sub:,} images", path),
        ]
        if not a.skip_full:
            runs.append(measure(["analyze", *common, "-i", str(a.dir / "y.zarr"), "--targets", str(a.dir / "x.zarr"),
                                 "--dask", "local", "--batch-size", str(a.batch_size), "-o",
                                 str(a.dir / "rep_dask_all")], f"Dask, {n:,} images", path))
    finally:
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)
    sizes = [sub, sub, n][:len(runs)]
    print(f"{'run':<24} {'wall s':>8} {'CPU s':>8} {'images/s':>10} {'img/CPU-s':>10} {'peak RSS GiB':>13}  verdict")
    for r, k in zip(runs, sizes, strict=True):
        print(f"{r['label']:<24} {r['wall']:8.1f} {r['cpu']:8.1f} {k / r['wall']:10.0f} {k / r['cpu']:10.0f} "
              f"{r['peak_rss'] / 2**30:13.2f}  {_summary(r['metrics'])[2]}")
    print("route lines:", *(f"  {r['label']}: {r['first_line'][:100]}" for r in runs), sep="\n")
    (me, mi, _), (se, si, _) = _summary(runs[0]["metrics"]), _summary(runs[1]["metrics"])
    diff = max(abs(me[k] - se[k]) / abs(me[k]) for k in me)
    print(f"in memory vs Dask on the same {sub:,} images: largest relative difference of the bias-corrected errors "
          f"{diff:.1e}; intervals {mi} vs {si}")
    last = runs[-1]
    k_last = sizes[-1]
    fe, fi, fv = _summary(last["metrics"])
    print(f"Dask on {k_last:,}: errors (bias-corrected) { {k: round(v, 5) for k, v in fe.items()} }, intervals "
          f"{ {k: [round(x, 5) for x in v] for k, v in fi.items()} }; verdict {fv}")
    print(f"ratio={(k_last / last['wall']) / (sub / runs[0]['wall']):.2f} (images/s wall: Dask on {k_last:,} / in "
          f"memory on {sub:,})")
    print(f"ratio_cpu={(k_last / last['cpu']) / (sub / runs[0]['cpu']):.2f} (images per CPU second: Dask on "
          f"{k_last:,} / in memory on {sub:,})")
    print(f"ratio_memory={last['peak_rss'] / runs[0]['peak_rss']:.2f} (peak RSS: Dask on {k_last:,} images, client + "
          f"workers / in memory on {sub:,})")


if __name__ == "__main__":
    main()
