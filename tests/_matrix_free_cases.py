"""Non-circular operators written as deepinv-style objects (``A``, ``A_adjoint`` on (B, C, H, W) tensors), for the
matrix-free route's tests: a reflect-boundary Gaussian blur, an inpainting mask and a subsampled 2-D Fourier
operator in a real-valued formulation. deepinv is not installed; these follow its interface. The adjoint of each
is the vector-Jacobian product of its (linear) forward map, so it is exact. ``SOURCE`` is the module's text, for
tests that hand the operator to the CLI as ``module:attr``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SOURCE = '''
import torch
import torch.nn.functional as F


def _vjp_adjoint(fn, in_shape):
    def adjoint(y):
        x0 = torch.zeros((y.shape[0], *in_shape), dtype=y.dtype, device=y.device)
        return torch.func.vjp(fn, x0)[1](y)[0]
    return adjoint


class ReflectBlur:
    """Gaussian blur with reflecting boundaries: pad by reflection, then a valid 2-D convolution (not circular)."""

    def __init__(self, size=5, width=1.2, image=(8, 8)):
        r = size // 2
        t = torch.arange(size, dtype=torch.float64) - r
        g = torch.exp(-t ** 2 / (2 * width ** 2))
        k = torch.outer(g, g)
        self.k, self.r = (k / k.sum())[None, None], r
        self.A_adjoint = _vjp_adjoint(self.A, (1, *image))

    def A(self, x):
        return F.conv2d(F.pad(x, (self.r,) * 4, mode="reflect"), self.k.to(x.dtype))


class Inpainting:
    """Multiply by a fixed 0/1 mask (deepinv's Inpainting): the masked pixels are lost."""

    def __init__(self, image=(8, 8), keep=0.6, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.mask = (torch.rand(image, generator=g, dtype=torch.float64) < keep).double()[None, None]

    def A(self, x):
        return x * self.mask.to(x.dtype)

    def A_adjoint(self, y):
        return y * self.mask.to(y.dtype)


class SubsampledFourier:
    """Orthonormal 2-D DFT kept at a random set of frequencies, real and imaginary parts stacked: (B, 2, K)."""

    def __init__(self, image=(8, 8), keep=0.4, seed=0):
        g = torch.Generator().manual_seed(seed)
        m = torch.rand(image, generator=g) < keep
        m[0, 0] = True
        self.idx = torch.nonzero(m.ravel()).ravel()
        self.A_adjoint = _vjp_adjoint(self.A, (1, *image))

    def A(self, x):
        f = torch.fft.fft2(x[:, 0], norm="ortho").reshape(x.shape[0], -1)[:, self.idx]
        return torch.stack([f.real, f.imag], dim=1)


blur = ReflectBlur(image=(8, 8))
mask = Inpainting(image=(8, 8))
fourier = SubsampledFourier(image=(8, 8))
'''


def namespace() -> dict:
    """The module's names (the three classes and an 8×8 instance of each), executed in-process."""
    ns: dict = {}
    exec(compile(SOURCE, "matrix_free_cases", "exec"), ns)  # noqa: S102 - our own test source
    return ns


def example_namespace() -> dict:
    """The operators of the docs' worked example (docs/figures/make_images_matrix_free.py's ``OPS``: the reflect
    blur with its explicit adjoint and the inpainting mask), executed in-process."""
    path = Path(__file__).resolve().parents[1] / "docs" / "figures" / "make_images_matrix_free.py"
    spec = importlib.util.spec_from_file_location("make_images_matrix_free", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ns: dict = {}
    exec(compile(mod.OPS, "example_ops", "exec"), ns)  # noqa: S102 - the repository's own example source
    return ns
