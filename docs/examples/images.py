"""The student's question for images: "my CNN deblurs MNIST digits blurred by a (deepinv-style) Gaussian blur;
is what it learned close to A⁻¹?" — answered with the Fourier route, cross-checked with the dense route at
28×28 (d = 784, where the dense route is still affordable). Output is quoted in docs/images.md.

Run (about 1-2 minutes on one core):
    PYTHONPATH=src OMP_NUM_THREADS=1 python docs/examples/images.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from linlens.data.mnist import load_mnist
from linlens.errors import NumericalWarning
from linlens.nn import seed_everything, train
from linlens.operators import as_operator, circulant
from linlens.problems import CircularBlur
from linlens.spectral import SpectralSurrogate, spectral_analysis
from linlens.surrogate import LinearSurrogate, compare_operators

SIGMA = 0.05
N_TRAIN, N_PROBE, N_TEST = 5000, 5000, 1000


class ResidualCNN(torch.nn.Module):
    """x̂ = y + g(y) on flat (b, 784) rows: 4 circular 3×3 convolutions, 16 channels, ReLU."""

    def __init__(self, c: int = 16):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"), torch.nn.ReLU(),
            torch.nn.Conv2d(c, 1, 3, padding=1, padding_mode="circular"),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        img = y.reshape(-1, 1, 28, 28)
        return (img + self.body(img)).reshape(y.shape[0], -1)


def main() -> None:
    t0 = time.perf_counter()
    seed_everything(0)
    Xtr, _ = load_mnist("train", normalize=False)
    Xva, _ = load_mnist("val", normalize=False)
    Xte, _ = load_mnist("test", normalize=False)
    Xtr, Xva, Xte = (a[:n].astype(np.float64) for a, n in ((Xtr, N_TRAIN), (Xva, N_PROBE), (Xte, N_TEST)))
    blur = CircularBlur(sigma=1.5)  # deepinv interface: blur.A, blur.A_adjoint on (B, 1, 28, 28)
    A = as_operator(blur, in_shape=(1, 28, 28))  # duck-typed; deepinv itself is never imported
    rng = np.random.default_rng(0)
    Ytr = A.matvec(Xtr) + SIGMA * rng.standard_normal(Xtr.shape)
    Yva = A.matvec(Xva) + SIGMA * rng.standard_normal(Xva.shape)  # probes (validation digits)
    Yte = A.matvec(Xte) + SIGMA * rng.standard_normal(Xte.shape)  # held out for test errors
    print(f"operator: {A.kind}, shape {A.shape}, adjoint check error {A.adjoint_check().max_error:.1e}, "
          f"circular convolution detected: {A.is_circular()}, κ(A) = "
          f"{np.abs(A.transfer_function()).max() / np.abs(A.transfer_function()).min():.3g}")

    net = ResidualCNN()
    train(net, Ytr.astype(np.float32), Xtr.astype(np.float32), epochs=15, batch_size=64, lr=2e-3, progress=False)
    net.eval()

    # ---- Fourier route: the network's shift-invariant surrogate from 1,000 probe digits, C_data from training pairs
    sur = SpectralSurrogate.from_model(net, Yva, image_shape=(28, 28), n_boot=200)
    cdata = SpectralSurrogate(image_shape=(28, 28), n_boot=0).fit(Ytr, Xtr)
    an = spectral_analysis(sur, A, SIGMA, targets=Xtr, data_surrogate=cdata)
    res = an.surrogate
    with torch.no_grad():
        Fte = net(torch.as_tensor(Yte, dtype=torch.float32)).double().numpy()
        Fva = net(torch.as_tensor(Yva, dtype=torch.float32)).double().numpy()

    def mse(P: np.ndarray) -> float:
        return float(np.mean((P.reshape(len(Xte), -1) - Xte) ** 2))

    print("Fourier route (circulant surrogate, 28×28, 5000 probe digits, 200 bootstrap replicates; test errors on "
          "1000 other digits)")
    for k, v in an.errors.items():
        lo, hi = an.error_intervals[k]
        print(f"  data-weighted error vs {k:7s} {v:.4g} (bias-corrected {an.errors_corrected[k]:.4g}) "
              f"[{lo:.4g}, {hi:.4g}]")
    for k, v in an.paired.items():
        print(f"  paired {k:18s} {v['difference']:+.2e}  [{v['low']:+.2e}, {v['high']:+.2e}]  p = {v['p_value']:.3f}")
    print(f"  closest reference: {an.closest}")
    print(f"  linear fraction of the CNN's output power (Σγ²S_ff/ΣS_ff): {res.linear_fraction:.4f} "
          f"[{res.linear_fraction_interval[0]:.4f}, {res.linear_fraction_interval[1]:.4f}]")
    r = res.radial
    for j in (0, 3, 7, 10, 14):
        print(f"  |k| = {r.radii[j]:.3f}: |Ĉ| = {r.transfer_abs[j]:.3f}  γ² = {r.coherence[j]:.3f} "
              f"[{r.coherence_low[j]:.3f}, {r.coherence_high[j]:.3f}]  |Ŵ| = {an.radial_wiener_abs[j]:.3f}  "
              f"1/|H| = {1 / an.radial_operator_abs[j]:.3g}  φ = {an.radial_filter_factors[j]:.3f} "
              f"(Wiener {an.radial_wiener_filter_factors[j]:.3f})")
    Hinv = circulant(1 / an.operator_transfer, (28, 28))  # the blur's H has no zero
    print(f"  test MSE: CNN {mse(Fte):.5f} | its circulant surrogate {mse(sur.predict(Yte)):.5f} | "
          f"circulant C_data {mse(cdata.predict(Yte)):.5f} | A⁻¹ {mse(Hinv.matvec(Yte)):.4g}")

    # ---- dense route at d = 784 (cross-check; the general, non-circulant surrogate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        dsur = LinearSurrogate().fit(Yva, Fva)
        dcd = LinearSurrogate().fit(Ytr, Xtr)
    Ainv = np.linalg.inv(A.to_dense())
    print("Dense route (general d×d surrogate fitted on the same probes)")
    for name, R in (("A⁻¹", Ainv), ("C_data", dcd.coef_)):
        c = compare_operators(dsur.coef_, R, probes=Yva)
        print(f"  data-weighted error vs {name:7s} {c.data_weighted_error:9.4f}")
    print(f"  test MSE: dense surrogate {mse(dsur.predict(Yte)):.5f} | dense C_data {mse(dcd.predict(Yte)):.5f}")
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
