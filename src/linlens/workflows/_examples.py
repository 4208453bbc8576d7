"""Tiny problems with known answers for the ``Example:`` doctests (one place for their set-ups, written to a new
temporary folder each call). Every model here is linear, so its surrogate, filter factors and errors are known in
closed form; the examples check those numbers.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The map of :func:`linear_files`' model, (d_out, d_in) = (2, 3).
LINEAR_W = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])


def _save(module: torch.nn.Module, path: Path) -> None:
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it is still linlens's inspectable format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))


def linear_files() -> tuple[Path, np.ndarray]:
    """(folder, W): ``m.pt``, a float64 TorchScript ``Linear`` y ↦ W y + b with W = :data:`LINEAR_W` (2 × 3), and
    ``y.npy``, 300 rows of N(0, I₃).

    Example:
        >>> d, W = linear_files(); sorted(p.name for p in d.iterdir()), W.shape
        (['m.pt', 'y.npy'], (2, 3))
    """
    d = Path(tempfile.mkdtemp())
    lin = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(LINEAR_W))
    _save(lin, d / "m.pt")
    np.save(d / "y.npy", np.random.default_rng(0).normal(size=(300, 3)))
    return d, LINEAR_W.copy()


def subspace_files() -> Path:
    """A folder with ``m.pt``, a float64 TorchScript ``Linear(4, 2)``, and ``y.npy``, 300 rows that span a 2-D
    subspace of R⁴ (so a surrogate on the top-2 subspace sees all of their variance).

    Example:
        >>> int(np.linalg.matrix_rank(np.load(subspace_files() / "y.npy")))
        2
    """
    d = Path(tempfile.mkdtemp())
    _save(torch.nn.Linear(4, 2).double(), d / "m.pt")
    Z = np.random.default_rng(0).normal(size=(300, 2))
    V = np.linalg.qr(np.ones((4, 2)) + np.eye(4, 2))[0]
    np.save(d / "y.npy", Z @ V.T)
    return d


def image_files(n: int = 100) -> Path:
    """A folder with an inverse problem on 4 × 4 images: ``x.npy`` (n, 1, 4, 4) of N(0, I), ``y.npy`` = x/2 + 0.1
    noise, ``A.npy`` = I/2 (16 × 16: a trivial circular convolution) and ``net.pt``, the network 2I = A⁻¹ (a float64
    1 × 1 convolution): its signal error is 0 and its noise amplification σ²‖2I‖²_F/E‖x‖² = 0.04.

    Example:
        >>> d = image_files(); np.load(d / "y.npy").shape, np.load(d / "A.npy").shape
        ((100, 1, 4, 4), (16, 16))
    """
    d = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 1, 4, 4))
    np.save(d / "x.npy", X)
    np.save(d / "y.npy", 0.5 * X + 0.1 * rng.normal(size=X.shape))
    np.save(d / "A.npy", 0.5 * np.eye(16))
    net = torch.nn.Conv2d(1, 1, 1, bias=False).double()
    with torch.no_grad():
        net.weight.fill_(2.0)
    _save(net, d / "net.pt")
    return d


def inverse_files() -> tuple[Path, np.ndarray]:
    """(folder, A): an inverse problem on vectors: ``x.npy`` (400, 3) of N(0, I), A = diag(2, 1, 0.5) in ``A.npy``,
    ``y.npy`` = A x + 0.1 noise, and ``net.pt``, the network A⁻¹ (float64 TorchScript, no bias): every filter factor
    of its surrogate is 1 and its signal error is 0.

    Example:
        >>> d, A = inverse_files(); np.diag(A).tolist(), np.load(d / "x.npy").shape
        ([2.0, 1.0, 0.5], (400, 3))
    """
    d = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    A = np.diag([2.0, 1.0, 0.5])
    X = rng.normal(size=(400, 3))
    np.save(d / "x.npy", X)
    np.save(d / "A.npy", A)
    np.save(d / "y.npy", X @ A.T + 0.1 * rng.normal(size=X.shape))
    net = torch.nn.Linear(3, 3, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(np.linalg.inv(A)))
    _save(net, d / "net.pt")
    return d, A


def wiener_study() -> tuple[Any, torch.nn.Module, np.ndarray]:
    """(study, net, Y): :func:`~linlens.workflows.study.inverse_study` of one network, ``"w"``, that is the Wiener
    estimator W = A/(A² + σ²) of A = diag(2, 1, 0.5), Σₓ = I, σ = 0.1 (400 probe pairs, 200 training pairs, 20
    bootstrap replicates); Y: the 600 inputs. Its filter factors are sᵢ²/(sᵢ² + σ²).

    Example:
        >>> study, net, Y = wiener_study(); study.inverse_name, round(study.models["w"].r2, 8), Y.shape
        ('A⁻¹', 1.0, (600, 3))
    """
    from linlens.workflows.study import inverse_study  # a sibling workflow, imported only by this example helper

    rng = np.random.default_rng(0)
    A = np.diag([2.0, 1.0, 0.5])
    X = rng.normal(size=(600, 3))
    Y = X @ A.T + 0.1 * rng.normal(size=(600, 3))
    net = torch.nn.Linear(3, 3, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(A / (A**2 + 0.01)))
    study = inverse_study({"w": net}, Y[:400], X[:400], X[400:], Y[400:], A=A, prior_covariance=np.eye(3),
                          noise_std=0.1, n_boot=20)
    return study, net, Y


def tracked_run() -> Any:
    """A :class:`~linlens.tracking.Tracker` on A = diag(2, 1, 0.5) (200 probes y = Ax + 0.1 noise with their x,
    3 bands, 20 replicates, no Jacobians) after two updates of a bias-free linear network with C = A⁻¹ (s + 1)/2 at
    steps s = 0, 1: every filter factor is (s + 1)/2 (0.5, then 1).

    Example:
        >>> np.round(tracked_run().result().factors(), 8).tolist()
        [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]]
    """
    from linlens.tracking import Tracker  # the workflow floor's tracker, imported only by this example helper

    rng = np.random.default_rng(0)
    A = np.diag([2.0, 1.0, 0.5])
    X = rng.normal(size=(200, 3))
    tracker = Tracker(X @ A.T + 0.1 * rng.normal(size=(200, 3)), X, A, n_boot=20, n_jacobian=0, n_bands=3)
    net = torch.nn.Linear(3, 3, bias=False).double()
    for step in (0, 1):
        with torch.no_grad():
            net.weight.copy_(torch.as_tensor(np.linalg.inv(A) * (step + 1) / 2))
        tracker.update(net, step)
    return tracker
