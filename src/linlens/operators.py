"""Linear operators as maps: one :class:`LinearMap` for a dense array, a ``scipy.sparse.linalg.LinearOperator``,
a pair of torch callables (A, Aᵀ) with a shape, or an object with deepinv's interface (``A(x)``,
``A_adjoint(y)`` on image tensors (B, C, H, W)), duck-typed (deepinv is never imported).

A map acts on batches of flattened vectors (n, d) in float64, whatever it wraps; dense matrices are formed
only on request and only for small d (:meth:`LinearMap.to_dense`).

One conversion rule (:func:`as_operator`, used by the CLI and by the Python API alike): computations are float64
(a float32/bfloat16 matrix is converted exactly; a torch operator is called in float64, or converted with
``.double()`` on a copy when it is a module, or else called in its own dtype); the operator's own precision is
kept (:attr:`LinearMap.native_dtype`) because it limits what can be known: a zero of a float32 blur's transfer
function is only known to within float32 rounding, so the pseudo-inverse cuts there (:meth:`LinearMap.rank_tol`,
:meth:`LinearMap.transfer_rcond`) and :attr:`LinearMap.notes` says so. User code is probed before use: linearity
(A(x + y) = Ax + Ay and A(0) = 0 — an affine map is refused), real outputs (a complex output is refused unless
its imaginary part is rounding, which is then dropped and said), and it is always called on private copies (an
operator that modifies its input cannot touch the caller's arrays). Circular convolutions are diagonal in the
Fourier basis: :meth:`LinearMap.transfer_function` returns their transfer function H(k) (declared, or detected
by testing shift-equivariance on random probes), in ``numpy.fft.rfftn`` layout.

Example:
    >>> A = as_operator(np.array([[2.0, 0.0], [1.0, 1.0]]))
    >>> A.matvec(np.array([[1.0, 1.0]])).tolist(), A.adjoint_check().passed
    ([[2.0, 2.0]], True)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

from linlens._results import ResultMixin
from linlens.errors import ComplexInputError, ConfigError, InputFileError, LinlensError, ModelError, ShapeError
from linlens.validation import as_array, import_attr, is_torch

__all__ = [
    "LinearMap",
    "signal_shape",
    "image_shape",
    "AdjointCheck",
    "ShiftInvarianceCheck",
    "as_operator",
    "load_operator",
    "circulant",
    "apply_transfer",
    "DENSE_MAX_DIM",
    "operator_matrix",
]

_EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps),
        "float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0**-7}
_LOW_TORCH = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}

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

    Example:
        >>> A = as_operator(np.array([[1.0, 2.0], [0.0, 1.0]]))
        >>> chk = A.adjoint_check()
        >>> chk.passed, chk.max_error < 1e-12
        (True, True)
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

    Example:
        >>> shift = as_operator(np.roll(np.eye(6), 1, axis=0))  # a circular shift: shift-invariant
        >>> shift.shift_invariance_check().passed
        True
    """

    errors: np.ndarray
    max_error: float
    tol: float
    passed: bool


def signal_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The one single-channel shape rule of linlens: (L,) or (H, W) for signals/images of shape (L,), (H, W),
    (1, L) or (1, H, W); None for anything else (several channels, 3-D volumes).

    Example:
        >>> signal_shape((1, 8, 8)), signal_shape((1, 16)), signal_shape((3, 8, 8))
        ((8, 8), (16,), None)
    """
    core = tuple(shape[1:]) if len(shape) >= 2 and shape[0] == 1 else tuple(shape)
    return tuple(int(k) for k in core) if 1 <= len(core) <= 2 else None


def image_shape(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """(H, W) when one row of shape ``shape`` is a single-channel image ((H, W) or (1, H, W), H, W ≥ 2, by
    :func:`signal_shape`); else None.

    Example:
        >>> image_shape((1, 4, 5)), image_shape((16,))
        ((4, 5), None)
    """
    core = signal_shape(shape)
    return (core[0], core[1]) if core is not None and len(core) == 2 and min(core) >= 2 else None


def _rows_of(out: Any, n: int, d: int, what: str) -> np.ndarray:
    """An operator's output as (n, d) float64, or a one-line refusal naming the sizes (never a reshape error)."""
    a = np.asarray(out, dtype=np.float64)
    if a.size != n * d:
        raise ModelError(f"the {what} returned {a.size} values for {n} input(s); expected {n} × {d} (shape "
                         f"{tuple(a.shape)}): its output size disagrees with the shape it was declared or probed with")
    return a.reshape(n, d)


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """:func:`signal_shape`, or the shape itself when it is not a single-channel signal or image."""
    return signal_shape(shape) or tuple(shape)


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
        native_dtype: the precision the operator's own numbers carry ("float64", "float32", "float16",
            "bfloat16"): computations are float64, but what is below this rounding level is unknown.
        notes: sentences for reports (casts, dropped imaginary rounding).

    Example:
        >>> A = as_operator(np.array([[2.0, 0.0], [0.0, 3.0]]))
        >>> type(A).__name__, A.shape, A.matvec(np.array([[1.0, 1.0]])).tolist()
        ('LinearMap', (2, 2), [[2.0, 3.0]])
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
        native_dtype: str = "float64",
        notes: tuple[str, ...] = (),
    ):
        self._forward, self._adjoint = forward, adjoint
        self.in_shape, self.out_shape = tuple(int(s) for s in in_shape), tuple(int(s) for s in out_shape)
        self.kind, self.precision, self.circular = kind, precision, circular
        self._transfer = transfer
        self.native_dtype = native_dtype
        self.notes = tuple(notes)

    @property
    def eps(self) -> float:
        """Machine epsilon of :attr:`native_dtype` (the relative rounding of the operator's own numbers)."""
        return _EPS.get(self.native_dtype, _EPS["float64"])

    def rank_tol(self, singular_values: Any = None) -> float:
        """Relative singular-value cut (to σ_max) for A⁺ that respects the operator's own precision.

        Entries rounded with relative error ≤ eps/2 move every singular value by at most ‖δA‖₂ ≤ eps/2 · ‖A‖_F, so
        σ below eps · ‖A‖_F is not known to differ from 0. Returns max(float64's ``max(shape) · eps``, eps ·
        ‖A‖_F / σ_max) with ‖A‖_F from ``singular_values`` (all of them), or √min(shape) · eps without them.
        """
        base = max(self.shape) * _EPS["float64"]
        if self.native_dtype == "float64":
            return base
        if singular_values is None:
            return max(base, float(np.sqrt(min(self.shape))) * self.eps)
        sv = np.abs(np.asarray(singular_values, dtype=np.float64))
        top = float(sv.max()) if sv.size else 0.0
        return max(base, self.eps * float(np.linalg.norm(sv)) / top) if top > 0 else base

    def transfer_rcond(self) -> float:
        """Relative cut of |H(k)| for 1/H: 0 for a float64 operator; otherwise eps · ‖h‖₁ / max|H| (a transfer
        function computed from weights h rounded with relative error ≤ eps/2 is off by at most eps/2 · ‖h‖₁ at
        every frequency, so |H(k)| below eps · ‖h‖₁ is not known to differ from 0)."""
        if self.native_dtype == "float64":
            return 0.0
        H = self.transfer_function()
        h = np.fft.irfftn(H, s=self.image_shape, axes=tuple(range(len(self.image_shape))))
        return float(self.eps * np.abs(h).sum() / max(float(np.abs(H).max()), np.finfo(float).tiny))

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
        out = _rows_of(self._forward(x), x.shape[0], self.shape[0], "operator")
        return out[0] if one else out

    def rmatvec(self, Y: Any) -> np.ndarray:
        """Aᵀ y for y (d_out,) or each row of Y (n, d_out); returns (d_in,) or (n, d_in)."""
        if self._adjoint is None:
            raise ConfigError(f"this {self.kind} operator has no adjoint; pass one (e.g. the pair (A, At))")
        y, one = self._batch(Y, self.shape[0], "y")
        out = _rows_of(self._adjoint(y), y.shape[0], self.shape[1], "adjoint")
        return out[0] if one else out

    __call__ = matvec

    @property
    def T(self) -> LinearMap:
        """The adjoint as a :class:`LinearMap` (input and output swapped)."""
        if self._adjoint is None:
            raise ConfigError(f"this {self.kind} operator has no adjoint")
        tr = None if self._transfer is None else np.conj(self._transfer)
        return LinearMap(self._adjoint, self._forward, self.out_shape, self.in_shape, f"adjoint of {self.kind}",
                         self.precision, self.circular, tr, self.native_dtype, self.notes)

    def to_dense(self, max_dim: int = DENSE_MAX_DIM) -> np.ndarray:
        """The matrix (d_out, d_in), formed by applying the map to basis vectors; only when max(d) ≤ max_dim.

        Raises:
            ConfigError: the operator is larger than ``max_dim`` (a dense matrix would need d_out·d_in·8 bytes).
        """
        d_out, d_in = self.shape
        if max(d_out, d_in) > max_dim:
            raise ConfigError(f"to_dense: operator of shape {self.shape} is larger than max_dim={max_dim} "
                              f"(a dense copy needs {d_out * d_in * 8 / 2**30:.1f} GiB); use matvec/rmatvec")
        known = self.__dict__.get("matrix")
        if known is not None:  # a dense map: its matrix (what the products with basis vectors give, without a d³ cost)
            return np.array(known, dtype=np.float64)
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
        if self.precision == "float64" and self.native_dtype == "float64":
            return 1e-10
        return max(1e-4, 30 * self.eps)

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


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [""])[0])[:200]


def _real_output(out: np.ndarray | Any, eps: float, what: str) -> np.ndarray:
    """Real part of an operator's output when its imaginary part is rounding (≤ 100 · eps of the largest value);
    a genuinely complex output is refused (never a silent drop of the imaginary part)."""
    a = np.asarray(out)
    if not np.iscomplexobj(a):
        return a
    big = float(np.max(np.abs(a))) if a.size else 0.0
    im = float(np.max(np.abs(a.imag))) if a.size else 0.0
    if im > 100 * eps * big:
        raise ComplexInputError(f"{what} returns complex values (max |Im| = {im:.3g} of max |value| {big:.3g}); "
                                "linlens analyses real-valued maps: return a real tensor (e.g. .real, if the "
                                "imaginary part is meant to vanish)")
    return a.real


def _torch_fn(fn: Callable, in_shape: tuple[int, ...], dtype: torch.dtype, device: Any, batch_size: int,
              eps: float = _EPS["float64"]) -> Callable[[np.ndarray], np.ndarray]:
    def apply(X: np.ndarray) -> np.ndarray:
        outs = []
        for s in range(0, X.shape[0], batch_size):
            # a private copy: an operator that modifies its input in place cannot touch the caller's arrays
            xb = torch.tensor(np.array(X[s : s + batch_size]), dtype=dtype, device=device).reshape(-1, *in_shape)
            try:
                with torch.no_grad():
                    out = fn(xb)
            except SystemExit as exc:
                raise ModelError(f"operator called sys.exit({exc.code!r})") from None
            except Exception as exc:  # noqa: BLE001 - user code may raise anything
                raise ModelError(f"operator raised on input of shape {tuple(xb.shape)}: "
                                 f"{type(exc).__name__}: {_first_line(exc)}") from None
            if not is_torch(out):
                raise ModelError(f"operator must return a tensor; got {type(out).__name__}")
            out = out.detach().to("cpu")
            if out.is_complex():
                o = _real_output(out.to(torch.complex128).numpy(), eps, "the operator")
            else:
                o = out.to(torch.float64).numpy()
            outs.append(np.array(o, dtype=np.float64).reshape(xb.shape[0], -1))
        return np.concatenate(outs, axis=0)

    return apply


_DTYPE_WORDS = ("dtype", "double", "float", "scalar type", "same type", "expected both")


def _out_shape(fn: Callable, in_shape: tuple[int, ...], dtype: torch.dtype, device: Any) -> tuple[int, ...]:
    try:
        with torch.no_grad():
            out = fn(torch.zeros((1, *in_shape), dtype=dtype, device=device))
    except SystemExit as exc:
        raise ModelError(f"operator called sys.exit({exc.code!r})") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"operator raised on a zero input of shape {(1, *in_shape)}: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    if not is_torch(out) or out.shape[0] != 1:
        raise ModelError(f"operator must map a batch (1, *in_shape) to a tensor (1, …); got {type(out).__name__} "
                         f"{tuple(getattr(out, 'shape', ()))}")
    return tuple(out.shape[1:])


def _native_torch(fns: tuple[Callable, ...], in_shape: tuple[int, ...], device: Any
                  ) -> tuple[tuple[Callable, ...], torch.dtype, str, list[str]]:
    """How to call torch operator code in float64: (callables, dtype to call them with, native dtype, notes).

    Called with float64 probes first. A float64 call that fails on dtypes, or returns a lower precision, marks
    the operator as float32/bfloat16/float16; an ``nn.Module`` (deepinv's physics are) is then converted with
    ``.double()`` on a copy, otherwise it is called in its own dtype (its inputs rounded to it)."""
    x = torch.zeros((1, *in_shape), dtype=torch.float64, device=device)
    x.view(-1)[:: max(1, x.numel() // 7)] = 1.0
    native, err = "float64", None
    try:
        with torch.no_grad():
            out = fns[0](x.clone())
        if is_torch(out):
            low = out.dtype if out.dtype in _LOW_TORCH else {torch.complex64: torch.float32}.get(out.dtype)
            if low is not None:
                native = _LOW_TORCH[low]
    except SystemExit as exc:
        raise ModelError(f"operator called sys.exit({exc.code!r})") from None
    except Exception as exc:  # noqa: BLE001 - a dtype clash is how a float32 operator answers a float64 input
        if not any(w in str(exc).lower() for w in _DTYPE_WORDS):
            raise ModelError(f"operator raised on a float64 probe of shape {tuple(x.shape)}: {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
        err = exc
    owners = [getattr(f, "__self__", f) for f in fns]
    if native == "float64" and err is None and all(isinstance(o, torch.nn.Module) for o in owners):
        native = _module_dtype(owners[0]) or "float64"  # float32 weights promoted by a float64 input: still float32
    if native == "float64" and err is None:
        return fns, torch.float64, "float64", []
    if all(isinstance(o, torch.nn.Module) for o in owners):
        try:
            conv = {id(o): copy.deepcopy(o).double() for o in owners}
            new = tuple(getattr(conv[id(o)], f.__name__) if o is not f else conv[id(o)]
                        for o, f in zip(owners, fns, strict=True))
            with torch.no_grad():
                out = new[0](x.clone())
            if is_torch(out) and out.dtype in (torch.float64, torch.complex128):
                kind = native if err is None else (_module_dtype(owners[0]) or "float32")
                return new, torch.float64, kind, [
                    f"the operator computes in {kind}: it was converted to float64 (.double() on a copy), so its "
                    f"arithmetic is float64, but its {kind} weights carry relative rounding ~{_EPS[kind]:.1g}: "
                    "singular values / transfer-function values below that level are treated as zero in A⁺ (a "
                    f"{kind} zero is not exactly zero)"]
        except Exception:  # noqa: BLE001 - a module that cannot be copied or converted is called as it is
            pass
    if err is not None:
        for dt in (torch.float32, torch.bfloat16, torch.float16):
            try:
                with torch.no_grad():
                    out = fns[0](x.clone().to(dt))
            except Exception:  # noqa: BLE001
                continue
            native = _LOW_TORCH[dt]
            return fns, dt, native, [
                f"the operator only accepts {native} inputs: it is called in {native} (inputs rounded to {native}, "
                f"relative rounding ~{_EPS[native]:.1g}) and its outputs converted to float64; singular values / "
                "transfer-function values below that level are treated as zero in A⁺"]
        raise ModelError(f"operator raised on float64 and float32 probes of shape {tuple(x.shape)}: "
                         f"{type(err).__name__}: {_first_line(err)}") from None
    return fns, torch.float64, native, [
        f"the operator returns {native} results for float64 inputs: its outputs carry relative rounding "
        f"~{_EPS[native]:.1g}; singular values / transfer-function values below that level are treated as zero in "
        "A⁺ (return float64 for float64 inputs to avoid it)"]


def _module_dtype(m: Any) -> str | None:
    """The lowest floating precision among a module's parameters and buffers below float64, or None."""
    found = [_LOW_TORCH[t.dtype] for t in list(m.parameters()) + list(m.buffers()) if t.dtype in _LOW_TORCH]
    return max(found, key=lambda k: _EPS[k]) if found else None


def _check_linear(op: LinearMap, seed: int = 0) -> LinearMap:
    """Refuse an operator that is not linear: A(x + y) = Ax + Ay and A(0) = 0 on random probes (an affine map
    Ax + b, or a nonlinear one, would make every reference built from it silently wrong)."""
    rng = np.random.default_rng(seed)
    d = op.shape[1]
    x, y = rng.standard_normal(d), rng.standard_normal(d)
    out = op.matvec(np.stack([x, y, x + y, np.zeros(d)]))
    scale = max(float(np.linalg.norm(out[0]) + np.linalg.norm(out[1])), np.finfo(float).tiny)
    tol = min(0.1, 1e3 * op.eps) if op.native_dtype != "float64" else 1e-8
    add = float(np.linalg.norm(out[2] - out[0] - out[1])) / scale
    zero = float(np.linalg.norm(out[3])) / scale
    if not np.all(np.isfinite(out)):
        raise ConfigError(f"operator ({op.kind}) returns NaN/Inf on random probes")
    if zero > tol:
        raise ConfigError(f"operator ({op.kind}) is not linear: A(0) ≠ 0 (‖A(0)‖ = {zero:.3g} relative to ‖Ax‖), "
                          "so it is affine (Ax + b) or nonlinear; pass the linear part (subtract A(0))")
    if add > tol:
        raise ConfigError(f"operator ({op.kind}) is not linear: ‖A(x + y) − Ax − Ay‖ / (‖Ax‖ + ‖Ay‖) = {add:.3g} on "
                          f"random probes (tolerance {tol:.1g} for {op.native_dtype})")
    return op


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
    if isinstance(obj, tuple) and len(obj) == 2 and all(callable(f) for f in obj):
        if in_shape is None:
            if shape is None:
                raise ConfigError("a pair of callables (A, At) needs shape=(d_out, d_in) or in_shape=…")
            in_shape = (int(shape[1]),)
        in_shape = tuple(int(s) for s in in_shape)
        fns, call_dt, native, notes = _native_torch(tuple(obj), in_shape, device)
        if dtype != torch.float64:  # asked for: called in that dtype, checked with its tolerance
            call_dt = dtype
            native = _LOW_TORCH.get(dtype, native) if native == "float64" else native
        fwd, adj = fns
        out_shape = tuple(out_shape) if out_shape is not None else (
            (int(shape[0]),) if shape is not None else _out_shape(fwd, in_shape, call_dt, device))
        if shape is not None and tuple(shape) != (int(np.prod(out_shape)), int(np.prod(in_shape))):
            raise ShapeError(f"shape {tuple(shape)} disagrees with in_shape {in_shape} and out_shape {out_shape}")
        eps = _EPS[native]
        return _check_linear(LinearMap(_torch_fn(fwd, in_shape, call_dt, device, batch_size, eps),
                                       _torch_fn(adj, out_shape, call_dt, device, batch_size, eps), in_shape,
                                       out_shape, "torch-pair", "float64" if native == "float64" else "float32",
                                       circular, native_dtype=native, notes=tuple(notes)))
    if callable(getattr(obj, "A", None)) and callable(getattr(obj, "A_adjoint", None)):
        if in_shape is None:
            raise ConfigError(f"a deepinv-like operator ({type(obj).__name__}) needs in_shape=(C, H, W) "
                              "(its image size is not part of its interface)")
        in_shape = tuple(int(s) for s in in_shape)
        call_in = (1, *in_shape) if len(in_shape) == 2 else in_shape  # deepinv takes (B, C, H, W)
        fns, call_dt, native, notes = _native_torch((obj.A, obj.A_adjoint), call_in, device)
        if dtype != torch.float64:  # asked for: called in that dtype, checked with its tolerance
            call_dt = dtype
            native = _LOW_TORCH.get(dtype, native) if native == "float64" else native
        o_call = tuple(out_shape) if out_shape is not None else _out_shape(fns[0], call_in, call_dt, device)
        # the adjoint is called on (B, *o_call); an (H, W) input reports its output as (H, W) too
        out_report = o_call[1:] if len(in_shape) == 2 and len(o_call) == 3 and o_call[0] == 1 else o_call
        eps = _EPS[native]
        return _check_linear(LinearMap(_torch_fn(fns[0], call_in, call_dt, device, batch_size, eps),
                                       _torch_fn(fns[1], o_call, call_dt, device, batch_size, eps), in_shape,
                                       out_report, "deepinv-like", "float64" if native == "float64" else "float32",
                                       circular, native_dtype=native, notes=tuple(notes)))
    if isinstance(obj, spla.LinearOperator) or hasattr(obj, "tocsr"):
        op = spla.aslinearoperator(obj)
        m, n = op.shape
        out_shape = tuple(out_shape) if out_shape is not None else (
            tuple(in_shape) if in_shape is not None and m == n else (m,))  # square: output shaped like input
        in_shape = tuple(in_shape) if in_shape is not None else (n,)
        if (int(np.prod(out_shape)), int(np.prod(in_shape))) != (m, n):
            raise ShapeError(f"in_shape {in_shape} / out_shape {out_shape} disagree with the operator shape "
                             f"{op.shape}")
        dt = np.dtype(op.dtype) if getattr(op, "dtype", None) is not None else np.dtype(np.float64)
        native = {"float32": "float32", "complex64": "float32", "float16": "float16"}.get(dt.name, "float64")
        eps = _EPS[native]

        def call(f: Callable, X: np.ndarray, what: str) -> np.ndarray:
            try:
                r = f(np.array(X.T, dtype=np.float64))  # a private copy, as for every user operator
            except SystemExit as exc:
                raise ModelError(f"operator called sys.exit({exc.code!r})") from None
            except Exception as exc:  # noqa: BLE001 - user code may raise anything
                raise ModelError(f"operator {what} raised: {type(exc).__name__}: {_first_line(exc)}") from None
            return np.asarray(_real_output(np.asarray(r), eps, "the operator"), dtype=np.float64).T

        notes = [] if native == "float64" else [
            f"the operator declares dtype {dt.name}: its numbers carry relative rounding ~{eps:.1g}; singular values "
            "below that level are treated as zero in A⁺"]
        return _check_linear(LinearMap(lambda X: call(op.matmat, X, "matmat"),
                                       lambda Y: call(op.rmatmat, Y, "rmatmat"), in_shape, out_shape, "scipy",
                                       "float64", circular, native_dtype=native, notes=tuple(notes)))
    if isinstance(obj, np.ndarray) or is_torch(obj) or isinstance(obj, list):
        native = _array_native(obj)
        M = as_array(obj, "operator", ndim=2)
        m, n = M.shape
        out_shape = tuple(out_shape) if out_shape is not None else (
            tuple(in_shape) if in_shape is not None and m == n else (m,))  # square: output shaped like input
        in_shape = tuple(in_shape) if in_shape is not None else (n,)
        if (int(np.prod(out_shape)), int(np.prod(in_shape))) != (m, n):
            raise ShapeError(f"in_shape {in_shape} / out_shape {out_shape} disagree with the matrix's shape {M.shape}")
        notes = [] if native == "float64" else [
            f"the operator's matrix is {native}: converted to float64 exactly, but its entries carry relative rounding "
            f"~{_EPS[native]:.1g}; singular values / transfer-function values below that level are treated as zero in "
            "A⁺ (a rounded zero is not exactly zero)"]
        lm = LinearMap(lambda X: X @ M.T, lambda Y: Y @ M, in_shape, out_shape, "dense", "float64", circular,
                       native_dtype=native, notes=tuple(notes))
        lm.matrix = M  # the float64 matrix itself (operator_matrix returns it without forming it again)
        return lm
    raise ConfigError(f"cannot use a {type(obj).__name__} as a linear operator; expected an array, a scipy "
                      "LinearOperator, a pair (A, At) of torch callables or an object with A and A_adjoint")


def _array_native(obj: Any) -> str:
    if is_torch(obj):
        return _LOW_TORCH.get(obj.dtype, {torch.complex64: "float32"}.get(obj.dtype, "float64"))
    name = getattr(getattr(obj, "dtype", None), "name", "float64")
    return {"float32": "float32", "float16": "float16", "complex64": "float32"}.get(name, "float64")


def operator_matrix(A: Any, name: str = "A", *, shape: tuple[int, int] | None = None,
                    in_shape: tuple[int, ...] | None = None, max_dim: int = DENSE_MAX_DIM
                    ) -> tuple[np.ndarray, LinearMap]:
    """The dense float64 matrix of any operator :func:`as_operator` takes, through the same conversion rule (and
    checks) as the CLI: the Python API's entry for ``A`` (``inverse_study``, ``compare_operators``,
    ``filter_factors``).

    Arguments:
        A: a matrix, a scipy ``LinearOperator``, a pair (A, Aᵀ) of torch callables, a deepinv-like object (give
            ``in_shape`` or wrap it with :func:`as_operator` first) or a :class:`LinearMap`.
        name: how ``A`` is called in errors.
        shape: (d_out, d_in) expected (required for a pair of callables).
        in_shape: shape of one input, for callables and deepinv-like objects.
        max_dim: largest dimension for which the matrix is formed.

    Returns:
        (matrix (d_out, d_in) float64, the :class:`LinearMap`) — the map carries ``native_dtype``, ``notes`` and
        :meth:`LinearMap.rank_tol`.

    Example:
        >>> import scipy.sparse.linalg as spla
        >>> M, op = operator_matrix(spla.aslinearoperator(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)))
        >>> M.tolist(), op.native_dtype
        ([[1.0, 2.0], [3.0, 4.0]], 'float32')
    """
    if isinstance(A, (np.ndarray, list)) or is_torch(A):
        try:
            op = as_operator(A)
        except ShapeError as exc:
            raise ShapeError(f"{name}: {exc}") from None
        M = op.matrix
    elif isinstance(A, LinearMap) and getattr(A, "matrix", None) is not None:
        op, M = A, A.matrix
    else:
        if in_shape is None and shape is not None and not (callable(getattr(A, "A", None))):
            in_shape = (int(shape[1]),)
        try:
            op = as_operator(A, shape=shape if isinstance(A, tuple) else None, in_shape=in_shape)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        M = op.to_dense(max_dim=max_dim)
    if shape is not None and M.shape != tuple(shape):
        raise ShapeError(f"{name} must have shape {tuple(shape)}; got {M.shape}")
    return M, op


def load_operator(spec: str | os.PathLike, name: str = "operator", **kwargs: Any) -> LinearMap:
    """Load an operator for the CLI: a ``.npy`` matrix (loaded with ``allow_pickle=False``) or ``module:attr``.

    A ``module:attr`` spec IMPORTS AND RUNS that module's code (the current folder is put on ``sys.path``, as
    ``python -m`` does). ``attr`` may be a matrix, a scipy ``LinearOperator``, a :class:`LinearMap`, a pair
    ``(A, At)`` of torch callables, a triple ``(A, At, in_shape)``, or a deepinv-like object (give
    ``in_shape=`` in ``kwargs`` or as an ``in_shape`` attribute of the object).

    Arguments:
        spec: path to a ``.npy`` file, or ``package.module:attr``.
        name: how it is called in errors (e.g. ``"--reference"``).
        kwargs: passed to :func:`as_operator`.

    Raises:
        InputFileError: a missing or unreadable file. ModelError: the module cannot be imported or lacks attr.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "A.npy"
        >>> np.save(path, np.eye(3))
        >>> load_operator(path).shape
        (3, 3)
    """
    p = Path(spec)
    if p.suffix.lower() == ".npy" or p.exists():
        if not p.is_file():
            raise InputFileError(f"{name}: file not found: {p}")
        try:
            M = np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is an InputFileError
            raise InputFileError(f"{name}: cannot read {p} as a .npy array: {str(exc)[:120]}") from None
        if M.ndim != 2:
            raise InputFileError(f"{name}: {p} must hold a 2-D matrix (d_out, d_in); got shape {M.shape}")
        try:
            return as_operator(M, **kwargs)
        except LinlensError as exc:  # name the file: "operator contains NaN" does not say which
            raise type(exc)(f"{name} ({p.name}): {exc}") from None
    obj: Any = import_attr(str(spec), "operator")  # the one module:attr importer (linlens.validation)
    if isinstance(obj, tuple) and len(obj) == 3 and callable(obj[0]):
        kwargs.setdefault("in_shape", tuple(obj[2]))
        obj = obj[:2]
    if "in_shape" not in kwargs and getattr(obj, "in_shape", None) is not None and not isinstance(obj, LinearMap):
        kwargs["in_shape"] = tuple(obj.in_shape)
    return as_operator(obj, **kwargs)
