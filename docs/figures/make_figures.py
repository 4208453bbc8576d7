"""Make the figures of the documentation's capability pages (seconds, CPU): ``python docs/figures/make_figures.py``.

Each figure is drawn by linlens's own plotting functions from a small example whose answer is known in closed
form, the same examples the pages run as doctests; the PNGs are committed beside this script so that the site
builds offline without running a model. ``make_tour_figure.py`` makes the demo's figures (minutes).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent


def save(fig, name: str) -> Path:
    path = HERE / name
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def fibers() -> Path:
    """The closure order of the strata of the rank-0 fiber of 2 × 2 × 2 (guide/fibers.md)."""
    from linlens.fibers.order import stratum_order
    from linlens.report.fibers_figures import plot_hasse

    return save(plot_hasse(stratum_order((2, 2, 2), 0)), "fibers_hasse.png")


def koopman() -> Path:
    """Hankel DMD eigenvalues of damped oscillations against the true pair 0.98·e^{±0.3i} (guide/koopman.md)."""
    from linlens.koopman import HankelDMD
    from linlens.report.figures import plot_eigenvalues

    rng = np.random.default_rng(0)
    t = np.arange(200)[None, :, None]
    trajs = np.cos(0.3 * t + rng.uniform(0, 6, size=(16, 1, 1))) * 0.98**t
    trajs = trajs + 0.01 * rng.standard_normal(trajs.shape)
    dmd = HankelDMD(delays=8, rank=4, backend="numpy").fit(trajs)
    true = 0.98 * np.exp(np.array([0.3j, -0.3j]))
    fig = plot_eigenvalues({"Hankel DMD (rank 4, noise 0.01)": dmd.eigs, "true 0.98·exp(±0.3i)": true},
                           unit_circle=True, title="DMD eigenvalues and the unit circle")
    fig.axes[0].legend(loc="lower left", fontsize=8)
    return save(fig, "koopman_dmd_eigenvalues.png")


def local() -> Path:
    """Top singular values of a small MLP's Jacobian at three inputs, matrix-free and dense (guide/local.md)."""
    from linlens.jacobian import jacobian_svd, jacobians

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 32)).double()
    y = torch.randn(3, 32, dtype=torch.float64)
    res = jacobian_svd(net, y, k=8)
    dense = torch.linalg.svdvals(jacobians(net, y)).detach().numpy()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i in range(3):
        ax.semilogy(np.arange(1, 33), dense[i], color=f"C{i}", lw=1, label=f"dense SVD, input {i}")
        ax.semilogy(np.arange(1, 9), res.singular_values[i], ls="none", marker="o", mfc="none", color=f"C{i}",
                    label=f"jacobian_svd top 8, input {i}")
    ax.set_xlabel("index i")
    ax.set_ylabel("σᵢ(J(y))")
    ax.set_title("Local linearization: singular values of J(y) at three inputs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save(fig, "local_jacobian_svd.png")


def images() -> list[Path]:
    """Fourier route on 16×16 images: a Wiener filter plus a small nonlinearity (images.md)."""
    from linlens.operators import as_operator, circulant
    from linlens.problems import CircularBlur
    from linlens.report.spectral_figures import plot_coherence, plot_transfer
    from linlens.spectral import SpectralSurrogate, spectral_analysis, wiener_filter

    A = as_operator(CircularBlur(sigma=1.0), in_shape=(1, 16, 16))
    H, sigma = A.transfer_function(), 0.1
    W = wiener_filter(H, 1.0, sigma)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 256))
    Y = A.matvec(X) + sigma * rng.standard_normal((4000, 256))
    F = circulant(W, (16, 16)).matvec(Y) + 0.3 * np.tanh(2 * Y) ** 2  # a "network": Wiener + a nonlinear part
    sur = SpectralSurrogate(image_shape=(16, 16), n_boot=50).fit(Y[:2000], F[:2000])
    cdata = SpectralSurrogate(image_shape=(16, 16), n_boot=0).fit(Y[2000:], X[2000:])
    an = spectral_analysis(sur, A, noise_std=sigma, prior=1.0, data_surrogate=cdata)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    plot_transfer(an, ax=axes[0])
    plot_coherence(an, ax=axes[1])
    return [save(fig, "images_fourier_route.png")]


def larger_than_memory() -> Path:
    """Peak extra memory of the streaming surrogate fit (row blocks of an .npy read by Dask) against loading the
    design and calling numpy's lstsq, as the design grows (larger_than_memory.md). Measured with tracemalloc (numpy
    reports its buffers to it), dask's synchronous scheduler, one thread."""
    import tempfile
    import tracemalloc

    import dask

    from linlens.scale import from_npy
    from linlens.surrogate import LinearSurrogate

    rng = np.random.default_rng(0)
    W = rng.normal(size=(16, 4))
    sizes, stream, dense, diffs = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, dask.config.set(scheduler="synchronous"):
        np.save(Path(tmp) / "warm.npy", rng.standard_normal((2**12, 16)))
        warm = from_npy(Path(tmp) / "warm.npy", chunk_rows=2**10)
        LinearSurrogate().fit(warm, warm @ W)  # first use imports and caches: not part of the measurement
        for k in range(14, 21):
            n = 2**k
            path = Path(tmp) / f"X{k}.npy"
            X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, 16))
            X[:] = rng.standard_normal((n, 16))
            X.flush()
            del X
            tracemalloc.start()
            Xd = from_npy(path, chunk_rows=2**14)
            sur = LinearSurrogate().fit(Xd, Xd @ W)
            stream.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            tracemalloc.start()
            Xm = np.load(path)
            coef = np.linalg.lstsq(np.column_stack([Xm, np.ones(n)]), Xm @ W, rcond=None)[0][:16].T
            dense.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            diffs.append(float(np.abs(sur.coef_ - coef).max()))
            sizes.append(n * 16 * 8 / 2**20)
            del Xm
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.loglog(sizes, dense, marker="s", label="np.load + numpy.linalg.lstsq")
    ax.loglog(sizes, stream, marker="o", ls="--", label="LinearSurrogate.fit on from_npy (dask, 2¹⁴-row blocks)")
    ax.set_xlabel("design size on disk (MiB)")
    ax.set_ylabel("peak extra memory (MiB)")
    ax.set_title(f"Streaming keeps memory flat (coefficients equal to {max(diffs):.0e})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, "larger_than_memory_peak.png")


if __name__ == "__main__":
    for make in (fibers, koopman, local, images, larger_than_memory):
        print(make())
