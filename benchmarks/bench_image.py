"""Benchmark: the Fourier route on a deblurring CNN at 256×256 (d = 65,536) vs the dense route's projection.

Problem: a circular Gaussian blur (``linlens.problems.CircularBlur``, σ = 2 px, deepinv interface) of
stationary random images (white noise through a Gaussian of σ = 3 px) plus white noise σ = 0.01; the
reconstructor is a small residual CNN (x̂ = y + g(y), g = 4 circular 3×3 convolutions, 16 channels, ReLU;
random weights by default — timing does not depend on training; ``--train-steps`` trains it briefly).

Fourier route (what is timed, end to end): probing the CNN on ``--n`` probe images (default 1,000), streaming
Welch cross-spectra with a 200-replicate Poisson bootstrap (``SpectralSurrogate.from_model``), the result with
intervals, the prior spectrum from the targets, the operator's transfer function (detected by the shift test),
the Wiener filter, filter factors and paired errors (``spectral_analysis``). Printed: time (total, and the share
spent running the CNN), peak memory (increase of the process's VmHWM over its resident set before the run).

Dense route (what the Fourier route replaces): ``LinearSurrogate.fit`` on the flattened probes (Gram d×d),
the dense operator from basis images, the closed-form Wiener estimator (d×d solve) and the filter factors
(SVD of A), measured at small d (16² … 48²) on the same number of probes, and projected to d = 65,536 by
d³ (time) and d² (memory) from the largest measured size. The Fourier route is also timed at those small d
(without the CNN) so that a same-size ratio is printed.

Jacobian half (same run, a subprocess): ``bench_image_jacobian.py`` at the same ``--size``, top-32 (top-8 with
``--quick``) singular values of a 5-layer CNN's Jacobian by ``jacobian_svd`` within ``max_memory`` = 4 GiB:
time, process CPU time and peak memory (on the CPU; without its ARPACK peer and dense projection, which that
script prints when run by itself).

Threads: 1 by default (``--threads``; the machine is shared). Usage:
    python benchmarks/bench_image.py [--n 1000] [--size 256] [--threads 1] [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import os
import sys

_THREADS = "2" if "--threads=2" in sys.argv else os.environ.get("BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import functools  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from linlens.errors import NumericalWarning  # noqa: E402
from linlens.operators import as_operator  # noqa: E402
from linlens.problems import CircularBlur, wiener_estimator  # noqa: E402
from linlens.spectral import SpectralSurrogate, spectral_analysis  # noqa: E402
from linlens.surrogate import LinearSurrogate, filter_factors  # noqa: E402

SIGMA_BLUR, SIGMA_PRIOR, NOISE = 2.0, 3.0, 0.01
print = functools.partial(print, flush=True)  # noqa: A001 - progress shows when piped to a file


class ResidualCNN(torch.nn.Module):
    """x̂ = y + g(y): 4 circular 3×3 convolutions (1 → c → c → c → 1) with ReLU; shift-equivariant."""

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, 1, 3, padding=1, padding_mode="circular"),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.body(y)


def make_data(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets x (n, 1, size, size) (stationary Gaussian field) and observations y = A x + σ e, float32.

    Both convolutions are applied by FFT with the transfer functions of the ``CircularBlur`` operators (the
    pixel-domain ``conv2d`` of the stand-in unfolds 50 images × 361 taps into ~9 GiB at 256×256)."""
    rng = np.random.default_rng(seed)
    shp = (size, size)
    Hp = as_operator(CircularBlur(SIGMA_PRIOR), in_shape=(1, *shp), circular=True).transfer_function()
    Ha = as_operator(CircularBlur(SIGMA_BLUR), in_shape=(1, *shp), circular=True).transfer_function()
    X = np.empty((n, 1, size, size), np.float32)
    Y = np.empty_like(X)
    for s in range(0, n, 50):
        b = min(50, n - s)
        x = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((b, *shp))) * Hp, s=shp) * SIGMA_PRIOR * 3.5
        X[s : s + b, 0] = x
        Y[s : s + b, 0] = np.fft.irfft2(np.fft.rfft2(x) * Ha, s=shp) + NOISE * rng.standard_normal((b, *shp))
    return X, Y


def train_briefly(net: ResidualCNN, X: np.ndarray, Y: np.ndarray, steps: int) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for i in range(steps):
        idx = np.random.default_rng(i).integers(0, len(X), 8)
        loss = torch.mean((net(torch.as_tensor(Y[idx])) - torch.as_tensor(X[idx])) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return _kib("VmRSS")


def fourier_route(net: torch.nn.Module, X: np.ndarray, Y: np.ndarray, device: str, n_boot: int = 200,
                  batch_size: int = 16) -> dict:
    size = Y.shape[-1]
    base = _reset_peak()
    t0 = time.perf_counter()
    # the CNN's share of the time: the same probing loop without spectra (measured separately below)
    sur = SpectralSurrogate.from_model(net, Y, batch_size=batch_size, device=device, n_boot=n_boot)
    t_fit = time.perf_counter() - t0
    A = as_operator(CircularBlur(SIGMA_BLUR), in_shape=(1, size, size))
    an = spectral_analysis(sur, A, NOISE, targets=X[:, 0])
    t = time.perf_counter() - t0
    peak = (_kib("VmHWM") - base) / 2**20
    return {"time_s": t, "fit_s": t_fit, "peak_gib": peak, "analysis": an}


def model_only(net: torch.nn.Module, Y: np.ndarray, device: str, batch_size: int = 16) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(Y), batch_size):
            net(torch.as_tensor(Y[s : s + batch_size]).to(device)).cpu()
    return time.perf_counter() - t0


def dense_route(Y: np.ndarray, F: np.ndarray, size: int) -> tuple[float, float]:
    """Time and peak memory (GiB) of the dense analysis at d = size² (surrogate, A, Wiener, filter factors)."""
    d = size * size
    base = _reset_peak()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        C = LinearSurrogate(alpha=1e-8).fit(Y.reshape(len(Y), d), F.reshape(len(F), d)).coef_
    A = as_operator(CircularBlur(SIGMA_BLUR), in_shape=(1, size, size)).to_dense(max_dim=d)
    idx = np.arange(d)
    r, c = idx // size, idx % size
    cov = np.fft.irfft2(np.ones((size, size // 2 + 1)), s=(size, size))  # white prior (cost is what matters)
    S = cov[(r[:, None] - r[None, :]) % size, (c[:, None] - c[None, :]) % size]
    W = wiener_estimator(A, S, NOISE)
    filter_factors(C, A)
    filter_factors(W, A)
    t = time.perf_counter() - t0
    return t, (_kib("VmHWM") - base) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=int(_THREADS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-steps", type=int, default=0)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--dense-sizes", default="16,24,32,48")
    ap.add_argument("--quick", action="store_true", help="n = 100, size 128, dense sizes 16,24,32")
    args = ap.parse_args()
    if args.quick:
        args.n, args.size, args.dense_sizes = 100, 128, "16,24,32"
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = ResidualCNN(args.channels).to(args.device).eval()
    X, Y = make_data(args.n, args.size)
    if args.train_steps:
        train_briefly(net, X, Y, args.train_steps)
    net.eval()
    d = args.size**2
    print(f"deblurring residual CNN ({args.channels} channels), {args.n} probe images {args.size}×{args.size} "
          f"(d = {d}), "
          f"{args.threads} thread(s), device {args.device}, torch {torch.__version__}")
    t_model = model_only(net, Y, args.device)
    res = fourier_route(net, X, Y, args.device)
    an = res["analysis"]
    print(f"Fourier route: {res['time_s']:.1f} s total (fit {res['fit_s']:.1f} s, of which the CNN alone "
          f"{t_model:.1f} s), peak memory +{res['peak_gib']:.2f} GiB "
          f"[target: < 300 s within 4 GiB → {'met' if res['time_s'] < 300 and res['peak_gib'] < 4 else 'MISSED'}]")
    print(f"  linear fraction of the CNN's output power: {an.surrogate.linear_fraction:.4f} "
          f"{tuple(round(v, 4) for v in an.surrogate.linear_fraction_interval)}; closest reference: {an.closest}; "
          + ", ".join(f"error vs {k} {v:.3g}" for k, v in an.errors.items()))

    # dense route at small d, Fourier route (spectra only) at the same d, and the projection
    sizes = [int(s) for s in args.dense_sizes.split(",")]
    n_small = min(args.n, 1000)
    rows = []
    for s in sizes:
        Xs, Ys = make_data(n_small, s, seed=1)
        with torch.no_grad():
            Fs = net(torch.as_tensor(Ys).to(args.device)).cpu().numpy()
        td, md = dense_route(Ys, Fs, s)
        t0 = time.perf_counter()
        sur = SpectralSurrogate(n_boot=200).fit(Ys, Fs)
        spectral_analysis(sur, as_operator(CircularBlur(SIGMA_BLUR), in_shape=(1, s, s)), NOISE, targets=Xs[:, 0])
        tf = time.perf_counter() - t0
        rows.append((s * s, td, md, tf))
        print(f"  d = {s * s:5d}: dense route {td:7.2f} s, +{md:.3f} GiB; Fourier route (no CNN) {tf:6.2f} s; "
              f"ratio={td / tf:.1f}")
    d0, t0_, m0, _ = rows[-1]
    t_proj = t0_ * (d / d0) ** 3
    m_proj = max(m0, 8 * 4 * d0**2 / 2**30) * (d / d0) ** 2
    print(f"dense route projected to d = {d}: {t_proj:.3g} s ({t_proj / 86400:.1f} days) by d³, "
          f"{m_proj:.3g} GiB by d² (one dense d×d float64 operator alone: {8 * d * d / 2**30:.0f} GiB)")
    print(f"ratio={t_proj / res['time_s']:.3g} (projected dense time / measured Fourier time at d = {d}); "
          f"memory ratio={m_proj / max(res['peak_gib'], 1e-9):.3g}")

    # ---- the Jacobian half (matrix-free top-k singular values) is benchmarked by another script:
    jac = Path(__file__).with_name("bench_image_jacobian.py")
    if jac.exists():
        print(f"--- {jac.name} ---", flush=True)
        # the Jacobian script runs on the CPU only (it has no --device): the top-32 (top-8 with --quick) at this
        # run's image size, within a 4 GiB budget, without the ARPACK peer and the dense projection (its own run)
        if args.device != "cpu":
            print(f"(the Jacobian half runs on the CPU; --device {args.device} applies to the Fourier route only)")
        subprocess.run([sys.executable, str(jac), *(["--quick"] if args.quick else []), "--size", str(args.size),
                        "--repeats", "1", "--no-arpack", "--no-dense", "--max-memory", "4",
                        "--threads", str(args.threads)], check=True)
    else:
        print(f"(Jacobian half: {jac.name} not present in this checkout)")


if __name__ == "__main__":
    main()
