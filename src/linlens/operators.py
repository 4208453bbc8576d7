"""Linear operators as maps: one :class:`LinearMap` for a dense array, a ``scipy.sparse.linalg.LinearOperator``,
a pair of torch callables (A, Aᵀ) with a shape, or an object with deepinv's interface (``A(x)``,
``A_adjoint(y)`` on image tensors (B, C, H, W)), duck-typed (deepinv is never imported).

A map acts on batches of flattened vectors (n, d) in float64, whatever it wraps; dense matrices are formed
only on request and only for small d (:meth:`LinearMap.to_dense`). Circular convolutions are diagonal in the
Fourier basis: :meth:`LinearMap.transfer_function` returns their transfer function H(k) (declared, or detected
by testing shift-equivariance on random probes), in ``numpy.fft.rfftn`` layout.

Example:
    >>> A = as_operator(np.array([[2.0, 0.0], [1.0, 1.0]]))
    >>> A.matvec(np.array([[1.0, 1.0]])).tolist(), A.adjoint_check().passed
    ([[2.0, 2.0]], True)
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

from linlens._results import ResultMixin
from linlens.errors import ConfigError, InputFileError, ModelError, ShapeError
from linlens.validation import as_array, is_torch

__all__ = [
    "LinearMap",
    "AdjointCheck",
    "ShiftInvarianceCheck",
    "as_operator",
    "load_operator",
    "circulant",
    "apply_transfer",
    "DENSE_MAX_DIM",
]

#: default largest dimension for which :meth:`LinearMap.to_dense` forms a matrix (4096² float64 = 128 MiB).
DENSE_MAX_DIM = 4096


@dataclass(frozen=True)
class AdjointCheck(ResultMixin):
    """Dot-product test of an adjoint: ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ on random vectors.

    Arguments:
        errors: (n_probes,) relative errors |⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / (‖Ax‖ ‖y‖).
        max_error: the largest of them.
        tol: tolerance used for ``passed`` (depends on the working precision).
        passed: ``max_error <= tol``.
    """

    errors: np.ndarray
    max_error: float
    tol: float
    passed: bool


@dataclass(frozen=True)
class ShiftInvarianceCheck(ResultMixin):
    """Shift-equivariance test A(Sx) = S(Ax) for random circular shifts S and random probes x.

    Arguments:
        errors: (n_probes,) relative errors ‖A(Sx) − S(Ax)‖ / ‖Ax‖.
        max_error: the largest of them (inf when the input and output shapes differ).
        tol: tolerance used for ``passed``.
        passed: ``max_error <= tol``.
    """

    errors: np.ndarray
    max_error: float
    tol: float
    passed: bool


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Signal shape without a leading single channel: (1, H, W) → (H, W); (d,) stays."""
    return tuple(shape[1:]) if len(shape) == 3 and shape[0] == 1 else tuple(shape)


def apply_transfer(X: np.ndarray, transfer: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Apply the circular convolution with transfer function ``transfer`` to a batch of flattened signals.

    Arguments:
        X: (n, d) with d = prod(image_shape).
        transfer: rfftn-layout transfer function, shape image_shape[:-1] + (image_shape[-1] // 2 + 1,).
        image_shape: (L,) or (H, W).

    Returns:
        (n, d) float64: irfftn(transfer · rfftn(x)) per row.

    Example:
        >>> apply_transfer(np.array([[1.0, 2.0, 3.0, 4.0]]), np.full(3, 2.0), (4,)).tolist()
        [[2.0, 4.0, 6.0, 8.0]]
    """
    axes = tuple(range(1, len(image_shape) + 1))
    Xi = np.asarray(X, dtype=np.float64).reshape((-1, *image_shape))
    out = np.fft.irfftn(np.fft.rfftn(Xi, axes=axes) * transfer, s=image_shape, axes=axes)
    return out.reshape(Xi.shape[0], -1)


class LinearMap:
    """A linear operator y = A x acting on batches of flattened vectors, whatever it wraps.

    Build one with :func:`as_operator` (the one entry). Vectors are flattened row-major from ``in_shape`` /
    ``out_shape`` (e.g. (1, H, W) images); ``shape`` is (d_out, d_in) as for a matrix.

    Arguments:
        forward: maps (n, d_in) float64 numpy to (n, d_out).
        adjoint: maps (n, d_out) to (n, d_in), or None when unknown.
        in_shape: shape of one input (e.g. (d,), (H, W) or (C, H, W)).
        out_shape: shape of one output.
        kind: "dense", "scipy", "torch-pair", "deepinv-like", "circulant" or "adjoint of …".
        precision: working precision of the wrapped code ("float64" or "float32"); sets check tolerances.
        circular: True (declared a circular convolution), False (declared not), None (detect when asked).
        transfer: a known rfftn-layout transfer function (circulant maps), or None.
    """

    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        adjoint: Callable[[np.ndarray], np.ndarray] | None,
        in_shape: tuple[int, ...],
        out_shape: tuple[int, ...],
        kind: str,
        precision: str = "float64",
        circular: bool | None = None,
        transfer: np.ndarray | None = None,
    ):
        self._forward, self._adjoint = forward, adjoint
        self.in_shape, self.out_shape = tuple(int(s) for s in in_shape), tuple(int(s) for s in out_shape)
        self.kind, self.precision, self.circular = kind, precision, circular
        self._transfer = transfer

    # ------------------------------------------------------------------ shape and application
    @property
    def shape(self) -> tuple[int, int]:
        """(d_out, d_in)."""
        return int(np.prod(self.out_shape)), int(np.prod(self.in_shape))

    def __repr__(self) -> str:
        return f"LinearMap(kind={self.kind!r}, in_shape={self.in_shape}, out_shape={self.out_shape})"

    def _batch(self, X: Any, d: int, name: str) -> tuple[np.ndarray, bool]:
        x = as_array(X, name, ndim=None)
        one = x.ndim == 1
        x = x[None] if one else x.reshape(x.shape[0], -1) if x.ndim > 2 else x
        if x.ndim != 2 or x.shape[1] != d:
            raise ShapeError(f"{name} must be ({d},) or (n, {d}) for an operator of shape {self.shape}; "
                             f"got {tuple(np.shape(X))}")
        return x, one

    def matvec(self, X: Any) -> np.ndarray:
        """A x for x (d_in,) or each row of X (n, d_in) (or (n, *in_shape)); returns (d_out,) or (n, d_out)."""
        x, one = self._batch(X, self.shape[1], "x")
        out = np.asarray(self._forward(x), dtype=np.float64).reshape(x.shape[0], self.shape[0])
        return out[0] if one else out

    def rmatvec(self, Y: Any) -> np.ndarray:
        """Aᵀ y for y (d_out,) or each row of Y (n, d_out); returns (d_in,) or (n, d_in)."""
        if self._adjoint is None:
            raise ConfigError(f"this {self.kind} operator has no adjoint; pass one (e.g. the pair (A, At))")
        y, one = self._batch(Y, self.shape[0], "y")
        out = np.asarray(self._adjoint(y), dtype=np.float64).reshape(y.shape[0], self.shape[1])
        return out[0] if one else out

    __call__ = matvec

    @property
    def T(self) -> LinearMap:
        """The adjoint as a :class:`LinearMap` (input and output swapped)."""
        if self._adjoint is None:
            raise ConfigError(f"this {self.kind} operator has no adjoint")
        tr = None if self._transfer is None else np.conj(self._transfer)
        return LinearMap(self._adjoint, self._forward, self.out_shape, self.in_shape, f"adjoint of {self.kind}",
                         self.precision, self.circular, tr)

    def to_dense(self, max_dim: int = DENSE_MAX_DIM) -> np.ndarray:
        """The matrix (d_out, d_in), formed by applying the map to basis vectors; only when max(d) ≤ max_dim.

        Raises:
            ConfigError: the operator is larger than ``max_dim`` (a dense matrix would need d_out·d_in·8 bytes).
        """
        d_out, d_in = self.shape
        if max(d_out, d_in) > max_dim:
            raise ConfigError(f"to_dense: operator of shape {self.shape} is larger than max_dim={max_dim} "
                              f"(a dense copy needs {d_out * d_in * 8 / 2**30:.1f} GiB); use matvec/rmatvec")
        cols = [self.matvec(np.eye(min(1024, d_in - s), d_in, k=s)) for s in range(0, d_in, 1024)]
        return np.concatenate(cols, axis=0).T.copy()

    def to_scipy(self) -> spla.LinearOperator:
        """A ``scipy.sparse.linalg.LinearOperator`` view (matvec/rmatvec on vectors, matmat on (d, k))."""
        return spla.LinearOperator(
            self.shape, dtype=np.float64,
            matvec=lambda v: self.matvec(np.ravel(v)), rmatvec=lambda v: self.rmatvec(np.ravel(v)),
            matmat=lambda V: self.matvec(np.asarray(V).T).T, rmatmat=lambda V: self.rmatvec(np.asarray(V).T).T,
        )

    # ------------------------------------------------------------------ checks
    def _tol(self) -> float:
        return 1e-10 if self.precision == "float64" else 1e-4

    def adjoint_check(self, n_probes: int = 4, seed: int = 0, tol: float | None = None) -> AdjointCheck:
        """Dot-product test ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ on ``n_probes`` Gaussian vectors (a wrong adjoint fails it).

        Example:
            >>> M = np.arange(6.0).reshape(2, 3)
            >>> as_operator((lambda x: x @ torch.as_tensor(M).T, lambda y: y @ torch.as_tensor(M) * 2),
            ...             shape=(2, 3)).adjoint_check().passed
            False
        """
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_probes, self.shape[1]))
        y = rng.standard_normal((n_probes, self.shape[0]))
        Ax, Aty = self.matvec(x), self.rmatvec(y)
        lhs, rhs = np.sum(Ax * y, axis=1), np.sum(x * Aty, axis=1)
        scale = np.maximum(np.linalg.norm(Ax, axis=1) * np.linalg.norm(y, axis=1),
                           np.linalg.norm(x, axis=1) * np.linalg.norm(Aty, axis=1))
        errs = np.abs(lhs - rhs) / np.maximum(scale, np.finfo(float).tiny)
        tol = self._tol() if tol is None else float(tol)
        return AdjointCheck(errors=errs, max_error=float(errs.max()), tol=tol, passed=bool(errs.max() <= tol))

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Signal shape of one input without a single leading channel: (L,) or (H, W)."""
        return _image_shape(self.in_shape)

    def shift_invariance_check(self, n_probes: int = 2, seed: int = 0, tol: float | None = None
                               ) -> ShiftInvarianceCheck:
        """Test A(Sx) = S(Ax) for random circular shifts S of random images x (a circular convolution passes)."""
        tol = self._tol() * 10 if tol is None else float(tol)
        shp = self.image_shape
        if _image_shape(self.out_shape) != shp or len(shp) > 2:
            return ShiftInvarianceCheck(np.array([np.inf]), float("inf"), tol, False)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_probes, *shp))
        shifts = [tuple(int(rng.integers(1, max(s, 2))) for s in shp) for _ in range(n_probes)]
        xs = np.stack([np.roll(xi, s, axis=tuple(range(len(shp)))) for xi, s in zip(x, shifts, strict=True)])
        Ax = self.matvec(x.reshape(n_probes, -1)).reshape(x.shape)
        Axs = self.matvec(xs.reshape(n_probes, -1)).reshape(x.shape)
        SAx = np.stack([np.roll(a, s, axis=tuple(range(len(shp)))) for a, s in zip(Ax, shifts, strict=True)])
        errs = np.linalg.norm((Axs - SAx).reshape(n_probes, -1), axis=1) / np.maximum(
            np.linalg.norm(SAx.reshape(n_probes, -1), axis=1), np.finfo(float).tiny)
        return ShiftInvarianceCheck(errs, float(errs.max()), tol, bool(errs.max() <= tol))

    def is_circular(self) -> bool:
        """True when declared a circular convolution, or (undeclared) when the shift-equivariance test passes."""
        if self.circular is None:
            self.circular = self.shift_invariance_check().passed
        return bool(self.circular)

    def transfer_function(self) -> np.ndarray:
        """Transfer function H(k) of a circular convolution: rfftn of the impulse response A δ₀.

        Returns:
            complex array in ``numpy.fft.rfftn`` layout: (L // 2 + 1,) for signals (L,), (H, W // 2 + 1) for
            images (H, W); A x = irfftn(H · rfftn(x)).

        Raises:
            ConfigError: the operator is not (declared or detected to be) a circular convolution.
        """
        if self._transfer is not None:
            return self._transfer
        if not self.is_circular():
            chk = self.shift_invariance_check()
            raise ConfigError(f"operator ({self.kind}, in {self.in_shape}, out {self.out_shape}) is not a circular "
                              f"convolution (shift-equivariance error {chk.max_error:.3g}); the Fourier route needs "
                              "one: use the subspace surrogate instead")
        shp = self.image_shape
        delta = np.zeros(shp)
        delta[(0,) * len(shp)] = 1.0
        h = self.matvec(delta.reshape(1, -1)).reshape(shp)
        self._transfer = np.fft.rfftn(h)
        return self._transfer


# ---------------------------------------------------------------------------------------------- builders
def circulant(transfer: Any, image_shape: tuple[int, ...]) -> LinearMap:
    """The circular convolution with a given rfftn-layout transfer function, as a :class:`LinearMap`.

    Arguments:
        transfer: complex (L // 2 + 1,) or (H, W // 2 + 1), e.g. ``np.fft.rfftn(kernel)``.
        image_shape: (L,) or (H, W).

    Example:
        >>> A = circulant(np.fft.rfftn(np.array([0.5, 0.25, 0.0, 0.25])), (4,))
        >>> A.to_dense()[0].tolist()
        [0.5, 0.25, 0.0, 0.25]
    """
    shp = tuple(int(s) for s in image_shape)
    H = np.asarray(transfer, dtype=np.complex128)
    want = (*shp[:-1], shp[-1] // 2 + 1)
    if H.shape != want or len(shp) not in (1, 2):
        raise ShapeError(f"transfer must have rfftn shape {want} for image_shape {shp} (1-D or 2-D); got {H.shape}")
    Hc = np.conj(H)
    return LinearMap(lambda X: apply_transfer(X, H, shp), lambda Y: apply_transfer(Y, Hc, shp), shp, shp,
                     "circulant", circular=True, transfer=H)


def _torch_fn(fn: Callable, in_shape: tuple[int, ...], dtype: torch.dtype, device: Any, batch_size: int
              ) -> Callable[[np.ndarray], np.ndarray]:
    def apply(X: np.ndarray) -> np.ndarray:
        outs = []
        for s in range(0, X.shape[0], batch_size):
            xb = torch.as_tensor(X[s : s + batch_size], dtype=dtype, device=device).reshape(-1, *in_shape)
            try:
                with torch.no_grad():
                    out = fn(xb)
            except Exception as exc:  # noqa: BLE001 - user code may raise anything
                first = (str(exc).strip().splitlines() or [""])[0]
                raise ModelError(f"operator raised on input of shape {tuple(xb.shape)}: "
                                 f"{type(exc).__name__}: {first[:200]}") from None
            if not is_torch(out):
                raise ModelError(f"operator must return a tensor; got {type(out).__name__}")
            outs.append(out.detach().to("cpu", torch.float64).reshape(xb.shape[0], -1).numpy())
        return np.concatenate(outs, axis=0)

    return apply


def _out_shape(fn: Callable, in_shape: tuple[int, ...], dtype: torch.dtype, device: Any) -> tuple[int, ...]:
    try:
        with torch.no_grad():
            out = fn(torch.zeros((1, *in_shape), dtype=dtype, device=device))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"operator raised on a zero input of shape {(1, *in_shape)}: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from None
    if not is_torch(out) or out.shape[0] != 1:
        raise ModelError(f"operator must map a batch (1, *in_shape) to a tensor (1, …); got {type(out).__name__} "
                         f"{tuple(getattr(out, 'shape', ()))}")
    return tuple(out.shape[1:])


def as_operator(
    obj: Any,
    *,
    shape: tuple[int, int] | None = None,
    in_shape: tuple[int, ...] | None = None,
    out_shape: tuple[int, ...] | None = None,
    circular: bool | None = None,
    dtype: torch.dtype = torch.float64,
    device: Any = "cpu",
    batch_size: int = 256,
) -> LinearMap:
    """The one entry: wrap a dense array, a scipy ``LinearOperator``, a pair of torch callables (A, Aᵀ) or a
    deepinv-like object (``A(x)``, ``A_adjoint(y)`` on (B, C, H, W) tensors) as a :class:`LinearMap`.

    Torch callables receive float tensors (batch, *in_shape) of ``dtype`` on ``device`` (float64 by default:
    an operator whose own tensors are float32 must cast them to the input's dtype, or pass
    ``dtype=torch.float32``, which loosens the checks' tolerances) and run under ``torch.no_grad()``.

    Arguments:
        obj: (d_out, d_in) array (numpy or torch), ``scipy.sparse.linalg.LinearOperator``, sparse matrix,
            ``(A, At)`` tuple of callables, deepinv-like object, or a :class:`LinearMap` (returned as is).
        shape: (d_out, d_in) for a pair of callables acting on flat vectors (batch, d_in).
        in_shape: shape of one input for callables and deepinv-like objects, e.g. (1, H, W) (required for a
            deepinv-like object: its image size is not part of its interface); optional for arrays (reshaping).
        out_shape: shape of one output; inferred by applying the operator to a zero input when not given.
        circular: declare a circular convolution (True), declare not (False), or detect on request (None).
        dtype: torch dtype of the tensors handed to callables.
        device: torch device of those tensors.
        batch_size: rows per call of a torch callable.

    Returns:
        :class:`LinearMap`.

    Raises:
        ConfigError: nothing to infer the shape from, or an object of no supported kind. ShapeError: sizes
        that disagree. ModelError: a callable raised.

    Example:
        >>> import scipy.sparse.linalg as spla
        >>> M = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> a, b = as_operator(M), as_operator(spla.aslinearoperator(M))
        >>> bool(np.allclose(a.matvec(np.eye(2)), b.matvec(np.eye(2)))), b.shape
        (True, (2, 2))
    """
    if isinstance(obj, LinearMap):
        return obj
    prec = "float64" if dtype == torch.float64 else "float32"
    if isinstance(obj, tuple) and len(obj) == 2 and all(callable(f) for f in obj):
        fwd, adj = obj
        if in_shape is None:
            if shape is None:
                raise ConfigError("a pair of callables (A, At) needs shape=(d_out, d_in) or in_shape=…")
            in_shape = (int(shape[1]),)
        in_shape = tuple(int(s) for s in in_shape)
        out_shape = tuple(out_shape) if out_shape is not None else (
            (int(shape[0]),) if shape is not None else _out_shape(fwd, in_shape, dtype, device))
        if shape is not None and tuple(shape) != (int(np.prod(out_shape)), int(np.prod(in_shape))):
            raise ShapeError(f"shape {tuple(shape)} disagrees with in_shape {in_shape} and out_shape {out_shape}")
        return LinearMap(_torch_fn(fwd, in_shape, dtype, device, batch_size),
                         _torch_fn(adj, out_shape, dtype, device, batch_size), in_shape, out_shape, "torch-pair",
                         prec, circular)
    if callable(getattr(obj, "A", None)) and callable(getattr(obj, "A_adjoint", None)):
        if in_shape is None:
            raise ConfigError(f"a deepinv-like operator ({type(obj).__name__}) needs in_shape=(C, H, W) "
                              "(its image size is not part of its interface)")
        in_shape = tuple(int(s) for s in in_shape)
        call_in = (1, *in_shape) if len(in_shape) == 2 else in_shape  # deepinv takes (B, C, H, W)
        o_call = tuple(out_shape) if out_shape is not None else _out_shape(obj.A, call_in, dtype, device)
        # the adjoint is called on (B, *o_call); an (H, W) input reports its output as (H, W) too
        out_report = o_call[1:] if len(in_shape) == 2 and len(o_call) == 3 and o_call[0] == 1 else o_call
        return LinearMap(_torch_fn(obj.A, call_in, dtype, device, batch_size),
                         _torch_fn(obj.A_adjoint, o_call, dtype, device, batch_size), in_shape, out_report,
                         "deepinv-like", prec, circular)
    if isinstance(obj, spla.LinearOperator) or hasattr(obj, "tocsr"):
        op = spla.aslinearoperator(obj)
        m, n = op.shape
        out_shape = tuple(out_shape) if out_shape is not None else (
            tuple(in_shape) if in_shape is not None and m == n else (m,))  # square: output shaped like input
        in_shape = tuple(in_shape) if in_shape is not None else (n,)
        if (int(np.prod(out_shape)), int(np.prod(in_shape))) != (m, n):
            raise ShapeError(f"in_shape {in_shape} / out_shape {out_shape} disagree with the operator shape "
                             f"{op.shape}")
        return LinearMap(lambda X: np.asarray(op.matmat(X.T)).T, lambda Y: np.asarray(op.rmatmat(Y.T)).T,
                         in_shape, out_shape, "scipy", "float64", circular)
    if isinstance(obj, np.ndarray) or is_torch(obj) or isinstance(obj, list):
        M = as_array(obj, "operator", ndim=2)
        m, n = M.shape
        out_shape = tuple(out_shape) if out_shape is not None else (
            tuple(in_shape) if in_shape is not None and m == n else (m,))  # square: output shaped like input
        in_shape = tuple(in_shape) if in_shape is not None else (n,)
        if (int(np.prod(out_shape)), int(np.prod(in_shape))) != (m, n):
            raise ShapeError(f"in_shape {in_shape} / out_shape {out_shape} disagree with the matrix's shape {M.shape}")
        return LinearMap(lambda X: X @ M.T, lambda Y: Y @ M, in_shape, out_shape, "dense", "float64", circular)
    raise ConfigError(f"cannot use a {type(obj).__name__} as a linear operator; expected an array, a scipy "
                      "LinearOperator, a pair (A, At) of torch callables or an object with A and A_adjoint")


def load_operator(spec: str | os.PathLike, **kwargs: Any) -> LinearMap:
    """Load an operator for the CLI: a ``.npy`` matrix (loaded with ``allow_pickle=False``) or ``module:attr``.

    A ``module:attr`` spec IMPORTS AND RUNS that module's code (the current folder is put on ``sys.path``, as
    ``python -m`` does). ``attr`` may be a matrix, a scipy ``LinearOperator``, a :class:`LinearMap`, a pair
    ``(A, At)`` of torch callables, a triple ``(A, At, in_shape)``, or a deepinv-like object (give
    ``in_shape=`` in ``kwargs`` or as an ``in_shape`` attribute of the object).

    Arguments:
        spec: path to a ``.npy`` file, or ``package.module:attr``.
        kwargs: passed to :func:`as_operator`.

    Raises:
        InputFileError: a missing or unreadable file. ModelError: the module cannot be imported or lacks attr.
    """
    p = Path(spec)
    if p.suffix.lower() == ".npy" or p.exists():
        if not p.is_file():
            raise InputFileError(f"operator: file not found: {p}")
        try:
            M = np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is an InputFileError
            raise InputFileError(f"operator: cannot read {p} as a .npy array: {str(exc)[:120]}") from None
        if M.ndim != 2:
            raise InputFileError(f"operator: {p} must hold a 2-D matrix (d_out, d_in); got shape {M.shape}")
        return as_operator(M, **kwargs)
    s = str(spec)
    if s.count(":") != 1 or os.sep in s.split(":")[0]:
        raise InputFileError(f"operator: file not found: {s} (and it is not a 'package.module:attr' spec)")
    mod_name, attr = s.split(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
        raise ModelError(f"operator: cannot import {mod_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"operator: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, tuple) and len(obj) == 3 and callable(obj[0]):
        kwargs.setdefault("in_shape", tuple(obj[2]))
        obj = obj[:2]
    if "in_shape" not in kwargs and getattr(obj, "in_shape", None) is not None and not isinstance(obj, LinearMap):
        kwargs["in_shape"] = tuple(obj.in_shape)
    return as_operator(obj, **kwargs)
