"""Benchmark: ``linlens analyze --reference`` at image size (64×64, d = 4096) with 10,000 probe inputs.

The case of issue 11: a user's MLP 4096 → 512 → 4096 (TorchScript file), 10,000 inputs that are blurred digits-like
images plus noise, and a dense reference R (the Tikhonov inverse of a Gaussian blur with zero boundary, which is
not circular, so the dense route runs). The whole ``analyze`` runs in-process exactly as the CLI runs it (probing,
streaming statistics, surrogate, held-out R², comparison with R, filter factors, figures, report written).

Peer, measured in the same run on the same probed outputs: scikit-learn ``LinearRegression().fit(Y, F)`` (the least
anybody would do to get a surrogate, with no comparison and no report) and one full ``numpy.linalg.svd`` of a
d × d matrix (the unit of dense work). Prints the wall time of ``analyze``, its ratio against each peer, the
time of each stage (from a cProfile of the run with ``--profile``), and whether the 5-minute target is met.

Every library is pinned to ONE thread (set before numpy/torch import; see shared/notes/performance.md): the
target is stated for 2 cores, and one thread is the reproducible lower bound of what 2 cores give here.

Usage: python benchmarks/bench_analyze.py [--side 64] [--n 10000] [--profile] [--keep DIR]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from linlens.workflows.analyze import run_analyze  # noqa: E402

torch.set_num_threads(1)
TARGET_S = 300.0


def blur_matrix(side: int, width: float) -> np.ndarray:
    """The dense (side², side²) Gaussian blur with zero boundary: A = B ⊗ B for the 1-D blur B (not circular)."""
    i = np.arange(side)
    B = np.exp(-0.5 * ((i[:, None] - i[None, :]) / width) ** 2)
    B /= B.sum(axis=1, keepdims=True)
    return np.kron(B, B)


def make_case(folder: Path, side: int, n: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write the user's files: inputs.npy (n, 1, side, side) float32, model.pt (TorchScript), reference.npy."""
    inputs, model, reference = folder / "inputs.npy", folder / "model.pt", folder / "reference.npy"
    if inputs.exists() and model.exists() and reference.exists() and np.load(inputs, mmap_mode="r").shape == (
            n, 1, side, side):  # a case kept with --keep is reused
        return inputs, model, reference
    rng = np.random.default_rng(seed)
    d = side * side
    x = gaussian_filter(rng.standard_normal((n, side, side)), sigma=(0, 2.0, 2.0), mode="constant")
    A = blur_matrix(side, 1.5)
    y = x.reshape(n, d) @ A.T + 0.01 * rng.standard_normal((n, d))
    np.save(inputs, y.reshape(n, 1, side, side).astype(np.float32))
    lam = 1e-2
    U, s, Vt = np.linalg.svd(A)
    R = (Vt.T * (s / (s**2 + lam))) @ U.T  # Tikhonov inverse of A
    np.save(reference, R)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 512), torch.nn.GELU(), torch.nn.Linear(512, d),
                              torch.nn.Unflatten(1, (1, side, side)))
    torch.jit.script(net.eval()).save(str(model))
    return inputs, model, reference


def peers(inputs: Path, model: Path) -> dict[str, float]:
    """sklearn LinearRegression on the probed outputs, and one d × d SVD (timed on their own)."""
    from sklearn.linear_model import LinearRegression

    Y = np.load(inputs).reshape(len(np.load(inputs, mmap_mode="r")), -1).astype(np.float64)
    net = torch.jit.load(str(model))
    with torch.no_grad():
        F = np.concatenate([net(torch.from_numpy(np.load(inputs, mmap_mode="r")[i:i + 2048].copy())).reshape(
            min(2048, len(Y) - i), -1).double().numpy() for i in range(0, len(Y), 2048)])
    t = time.perf_counter()
    LinearRegression().fit(Y, F)
    t_lr = time.perf_counter() - t
    M = np.random.default_rng(1).standard_normal((Y.shape[1], Y.shape[1]))
    t = time.perf_counter()
    np.linalg.svd(M)
    t_svd = time.perf_counter() - t
    return {"sklearn LinearRegression.fit": t_lr, "numpy.linalg.svd (d × d)": t_svd}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true", help="print the 25 most expensive calls")
    ap.add_argument("--keep", type=Path, default=None, help="write the case and the report here")
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        inputs, model, reference = make_case(folder, args.side, args.n)
        print(f"case: d = {args.side ** 2}, n = {args.n}, MLP {args.side ** 2}-512-{args.side ** 2}; written in "
              f"{time.perf_counter() - t:.1f} s; one thread per library")
        prof = cProfile.Profile() if args.profile else None
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        if prof:
            prof.enable()
        summary = run_analyze(str(model), inputs, reference, out=folder / "report", force=True, seed=0)
        if prof:
            prof.disable()
        wall = time.perf_counter() - t
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 2**20
        print(f"linlens analyze --reference: {wall:.1f} s (target {TARGET_S:.0f} s: "
              f"{'met' if wall <= TARGET_S else 'NOT met'}), peak RSS growth {rss:.2f} GiB")
        for k in ("R² (pooled, held-out)", "data-weighted error vs R", "principal angles"):
            if k in summary:
                print(f"  {k}: {summary[k]}")
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        if not args.no_peers:
            for name, secs in peers(inputs, model).items():
                print(f"peer {name}: {secs:.1f} s; analyze / peer = {wall / secs:.1f}")


if __name__ == "__main__":
    main()
