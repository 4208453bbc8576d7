"""Benchmark: top-32 Jacobian singular values of a deblurring CNN at one 256×256 image (d = 65,536), matrix-free,
against ARPACK on the same products and the dense route's projected time and memory.

Model: a residual ReLU CNN f(y) = y + r(y) (5 convolutions 3×3, 16 channels, float32, eval mode), trained for a
few hundred Adam steps to undo a Gaussian blur (σ_blur = 1.5 px, circular) of smooth random images on 32×32
patches; it is convolutional, so it runs on any image size. Input: one blurred 256×256 image. Variants:

  ours   — ``linlens.jacobian.jacobian_svd(net, y[None], k=32, tol=TOL)``: block Lanczos bidiagonalization on
           vmapped ``torch.func.jvp``/``vjp`` (block size k + 8), both residuals measured at the end;
  arpack — ``scipy.sparse.linalg.svds(LinearOperator, k=32)`` whose matvec/rmatvec are the same single
           jvp/vjp products (the matrix-free peer; timed once, it is the slow one);
  dense  — ``torch.func.jacrev`` of the whole image (d vector-Jacobian products, vmapped in chunks) and
           ``torch.linalg.svdvals`` in float64, MEASURED at d = 16², 24², 32², 48² and PROJECTED to d = 256²
           with T_jac ∝ d² (d products, each ∝ d) and T_svd ∝ d³ (fitted on the measured sizes); memory is
           the Jacobian itself, 4·d² bytes in float32 and 8·d² in float64 (34 GiB at d = 65,536).

Every library is pinned to ONE thread (OMP/OPENBLAS/MKL before the imports, torch.set_num_threads(1)): on the
shared 2-core machine more threads make timings erratic (shared/notes/performance.md); ``--threads 2`` lets
torch use both cores. Times: min and median of ``--repeats`` runs of ours; ratios use the min. Peak memory:
the increase of the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs).

Usage: python benchmarks/bench_image_jacobian.py [--quick] [--size 256] [--k 32] [--repeats 3] [--no-arpack]
       [--no-dense] [--max-memory GiB] [--threads 1|2]
"""

from __future__ import annotations

import os
import sys

_THREADS = "2" if "--threads" in sys.argv and sys.argv[sys.argv.index("--threads") + 1] == "2" else "1"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from linlens.jacobian import jacobian_svd  # noqa: E402

torch.set_num_threads(int(_THREADS))

WIDTH, DEPTH, BLUR = 16, 5, 1.5


class Deblur(torch.nn.Module):
    """y + r(y), r a plain ReLU CNN with biases."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [torch.nn.Conv2d(1, WIDTH, 3, padding=1), torch.nn.ReLU()]
        for _ in range(DEPTH - 2):
            layers += [torch.nn.Conv2d(WIDTH, WIDTH, 3, padding=1), torch.nn.ReLU()]
        layers.append(torch.nn.Conv2d(WIDTH, 1, 3, padding=1))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.body(y)


def blur(x: torch.Tensor, width: float = BLUR) -> torch.Tensor:
    """Circular Gaussian blur of images (n, 1, H, W) through the FFT."""
    H, W = x.shape[-2:]
    fy, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
    Hk = torch.exp(-2 * math.pi**2 * width**2 * (fy[:, None] ** 2 + fx[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * Hk).real.to(x.dtype)


def smooth_images(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Random piecewise-smooth images: white noise blurred at width 3, plus random bright disks."""
    x = blur(torch.randn(n, 1, size, size, generator=gen), 3.0) * 3
    rr, cc = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for i in range(n):
        for _ in range(max(1, size // 16)):
            r0, c0, rad = torch.rand(3, generator=gen) * torch.tensor([size, size, size / 6])
            x[i, 0][(rr - r0) ** 2 + (cc - c0) ** 2 < rad**2] += 1.0
    return x


def train_deblur(steps: int, seed: int = 0) -> Deblur:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Deblur()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(steps):
        x = smooth_images(16, 32, gen)
        y = blur(x) + 0.01 * torch.randn(x.shape, generator=gen)
        opt.zero_grad()
        loss = torch.mean((net(y) - x) ** 2)
        loss.backward()
        opt.step()
    net.eval().requires_grad_(False)
    return net


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class PeakMemory:
    """Peak extra resident memory (bytes) during a block (CPU)."""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        self.base = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _status_kib("VmHWM") * 1024 - self.base


def dense_route(net: torch.nn.Module, size: int, gen: torch.Generator) -> dict[str, float]:
    """Measured dense route at one size: jacrev of the whole image, then svdvals in float64."""
    y = blur(smooth_images(1, size, gen))[0]
    f = lambda v: net(v[None])[0]  # noqa: E731
    with PeakMemory() as pm:
        t0 = time.perf_counter()
        J = torch.func.jacrev(f, chunk_size=256)(y).reshape(size * size, size * size)
        t1 = time.perf_counter()
        s = torch.linalg.svdvals(J.double())
        t2 = time.perf_counter()
    return {"d": size * size, "jac_s": t1 - t0, "svd_s": t2 - t1, "peak_bytes": pm.peak, "sigma": s.numpy(),
            "y": y}


def fit_power(d: np.ndarray, t: np.ndarray, p: float) -> tuple[float, float]:
    """Least-squares c in t ≈ c · d^p (log space, fixed p) and the free log-log exponent, for the report."""
    c = float(np.exp(np.mean(np.log(t) - p * np.log(d))))
    free = float(np.polyfit(np.log(d), np.log(t), 1)[0])
    return c, free


def gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128×128, k = 8, dense sizes up to 32², 1 repeat")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--tol", type=float, default=1e-3, help="relative residual target of ours")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, choices=[1, 2])
    ap.add_argument("--no-arpack", action="store_true")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense route and its projection")
    ap.add_argument("--block-size", type=int, default=None, help="block size of ours (default: the library's)")
    ap.add_argument("--max-memory", type=float, default=None,
                    help="memory budget of ours in GiB (jacobian_svd's max_memory; default: none)")
    args = ap.parse_args()
    size = args.size or (128 if args.quick else 256)
    k = args.k or (8 if args.quick else 32)
    repeats = args.repeats or (1 if args.quick else 3)
    dense_sizes = [16, 24, 32] if args.quick else [16, 24, 32, 48]
    d = size * size
    print(f"deblurring CNN ({DEPTH} conv 3×3, {WIDTH} channels, float32), image {size}×{size} (d = {d:,}), "
          f"top-{k}, threads pinned to {torch.get_num_threads()}")

    t0 = time.perf_counter()
    net = train_deblur(args.train_steps)
    print(f"trained {args.train_steps} Adam steps on 32×32 patches in {time.perf_counter() - t0:.1f} s")
    gen = torch.Generator().manual_seed(1)
    y = blur(smooth_images(1, size, gen))

    # ------------------------------------------------------------------ correctness at a dense size
    small = dense_route(net, dense_sizes[-1], torch.Generator().manual_seed(2))
    r = jacobian_svd(net, small["y"][None], k=k, tol=1e-5, max_iter=100)
    err = float(np.max(np.abs(r.singular_values[0] - small["sigma"][:k]) / small["sigma"][0]))
    print(f"check at d = {small['d']}: max |σᵢ(ours) − σᵢ(dense svdvals)| / σ₁ = {err:.2e} (top {k})")

    # ------------------------------------------------------------------------------------------- ours
    times, cpu, res = [], [], None
    for _ in range(repeats):
        gc.collect()
        with PeakMemory() as pm:
            t, c = time.perf_counter(), time.process_time()
            res = jacobian_svd(net, y, k=k, tol=args.tol, max_iter=60, block_size=args.block_size,
                               max_memory=None if args.max_memory is None else args.max_memory * 2**30)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    assert res is not None
    t_ours = min(times)
    rel = res.error_bounds[0] / res.singular_values[0, 0]
    print(f"machine load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"ours   : min {t_ours:.1f} s, median {statistics.median(times):.1f} s over {repeats} (process CPU min "
          f"{min(cpu):.1f} s); block size {res.block_size}; peak +{gib(pm.peak)}; "
          f"{res.n_iter} iterations, Krylov dim {res.krylov_dim} (budget {args.max_memory} GiB, basis limit "
          f"{res.max_basis}, {res.n_restarts} restarts), {res.n_jvp} jvp + {res.n_vjp} vjp; "
          f"σ₁ = {res.singular_values[0, 0]:.4g}, σ_{k} = {res.singular_values[0, -1]:.4g}; "
          f"max error bound / σ₁ = {rel.max():.1e}; converged {int(res.converged.sum())}/{k} at tol {args.tol:g}")
    print(f"target: top-{k} at d = {d:,} in < 60 s: {'met' if t_ours < 60 else 'NOT met'} ({t_ours:.1f} s)")

    # ----------------------------------------------------------------------------------------- ARPACK
    if not args.no_arpack:
        from scipy.sparse.linalg import LinearOperator, svds

        yt = y.clone()
        _, vjp_fn = torch.func.vjp(net, yt)
        count = {"mv": 0, "rmv": 0}

        def mv(v: np.ndarray) -> np.ndarray:
            count["mv"] += 1
            t = torch.as_tensor(np.ascontiguousarray(v).reshape(yt.shape), dtype=torch.float32)
            return torch.func.jvp(net, (yt,), (t,))[1].double().numpy().reshape(-1)

        def rmv(u: np.ndarray) -> np.ndarray:
            count["rmv"] += 1
            t = torch.as_tensor(np.ascontiguousarray(u).reshape(yt.shape), dtype=torch.float32)
            return vjp_fn(t)[0].double().numpy().reshape(-1)

        op = LinearOperator((d, d), matvec=mv, rmatvec=rmv, dtype=np.float64)
        t, c = time.perf_counter(), time.process_time()
        s_arp = np.sort(svds(op, k=k, return_singular_vectors=False, tol=args.tol,
                             v0=np.random.default_rng(0).standard_normal(d)))[::-1]
        t_arp, c_arp = time.perf_counter() - t, time.process_time() - c
        agree = float(np.max(np.abs(s_arp - res.singular_values[0]) / res.singular_values[0, 0]))
        print(f"arpack : {t_arp:.1f} s (process CPU {c_arp:.1f} s; {count['mv']} jvp + {count['rmv']} vjp, "
              "one at a time); "
              f"max |σᵢ(arpack) − σᵢ(ours)| / σ₁ = {agree:.1e}")
        print(f"ratio=arpack/ours time {t_arp / t_ours:.2f} (CPU time {c_arp / min(cpu):.2f})")
    if args.no_dense:
        return

    # ------------------------------------------------------------------------------ dense, projected
    rows = [dense_route(net, s, torch.Generator().manual_seed(3)) for s in dense_sizes]
    ds = np.array([r_["d"] for r_ in rows], float)
    tj = np.array([r_["jac_s"] for r_ in rows])
    tsv = np.array([r_["svd_s"] for r_ in rows])
    for r_ in rows:
        print(f"dense  : d = {int(r_['d']):5d}: jacrev {r_['jac_s']:.2f} s, svdvals {r_['svd_s']:.2f} s, "
              f"peak +{gib(r_['peak_bytes'])}")
    cj, ej = fit_power(ds, tj, 2.0)
    cs, es = fit_power(ds, tsv, 3.0)
    proj_j, proj_s = cj * d**2, cs * d**3
    proj_t = proj_j + proj_s
    print(f"dense  : fitted exponents jacrev {ej:.2f} (model 2), svdvals {es:.2f} (model 3)")
    print(f"dense projected to d = {d:,}: jacrev {proj_j / 3600:.3g} h + svdvals {proj_s / 3600:.3g} h = "
          f"{proj_t / 3600:.3g} h; memory J float32 {gib(4 * d**2)}, float64 {gib(8 * d**2)}")
    print(f"ratio=dense_projected/ours time {proj_t / t_ours:.3g}")
    print(f"ratio=dense_memory_float64/ours_peak {8 * d**2 / max(pm.peak, 1):.3g}")


if __name__ == "__main__":
    main()
