"""Jacobian fields of trained networks: batched Jacobians under a memory budget, and streaming statistics.

``jacobians(f, x)`` returns the (n_samples, d_out, d_in) Jacobians of ``f`` at every row of ``x`` with
``torch.func`` (``vmap`` of ``jacrev`` or ``jacfwd``), processed in chunks of samples sized so that the
estimated peak memory stays within ``max_memory`` bytes. ``jacobian_frobenius_sq`` gives ‖J(x)‖_F² per sample
(exact or Hutchinson), differentiable for Jacobian penalties. ``JacobianField`` streams over a data set
without keeping the Jacobians and collects mean J, mean JᵀJ, per-sample singular values and log|det J|;
``JacobianField.local_vs_global`` measures how far the local maps J(x) are from a global linear map C.

``f`` may be a module or callable working on batches (n, d_in) → (n, d_out) (the common case; each output
row must depend only on its own input row, so put BatchNorm/Dropout models in ``eval()`` mode first), or a
function of one sample (d_in,) → (d_out,). Which of the two is detected by one probe call.

Memory model used for chunking (bytes, ``s`` = element size of f's output dtype)::

    peak ≈ n · d_out · d_in · s                               (the returned tensor, only in ``jacobians``)
         + FIXED_OVERHEAD                                     (16 MiB: allocator slack, probe, bookkeeping)
         + c · 1.5 · (2 · d_out · d_in · s + (1 + m) · a)     (one chunk of c samples, 1.5 = safety factor)

where ``m`` is the number of AD directions per sample (d_out in reverse mode, d_in in forward mode) and
``a`` is the measured per-sample activation cost: the bytes autograd saves for backward in one forward pass,
measured as the difference between batches of 2 and 1 samples (so weights do not count). Each of the m
directions carries one gradient/tangent per saved activation, hence ``(1 + m) · a``; the factor 2 on the
Jacobian block covers the chunk result and its copy into the output. The chunk's share is also capped at
:data:`DEFAULT_WORK_MEMORY`, so ``max_memory`` only ever shrinks chunks.

Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    >>> J = jacobians(lambda x: x @ A.T, torch.randn(5, 3))
    >>> J.shape, bool(torch.allclose(J[0], A))
    (torch.Size([5, 2, 3]), True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, ModelError, NonFiniteError, NotFittedError, ShapeError
from linlens.linalg import gap_at, numerical_rank
from linlens.nn import resolve_device
from linlens.scale import block_ranges, check_block_finite, is_dask
from linlens.validation import is_torch

__all__ = [
    "jacobians",
    "jacobian_frobenius_sq",
    "estimate_chunk_size",
    "JacobianField",
    "LocalVsGlobal",
]

#: Largest working memory (bytes) of one chunk. ``max_memory`` is an upper bound, not a target: larger chunks
#: gain nothing once the per-call overhead is amortized and lose cache locality (MLP 784-256-128-10 on one
#: CPU core: chunks of 512-1024 samples ≈ 60-120 MB were 0.65 s for 8192 inputs, the whole batch 0.81 s).
DEFAULT_WORK_MEMORY = 64 * 2**20

#: Fixed working memory (bytes) counted against ``max_memory`` besides the chunks: allocator slack, the
#: probe call and torch.func bookkeeping (measured as ≈ 8-10 MB of peak RSS on CPU for the MLP benchmark).
FIXED_OVERHEAD = 16 * 2**20

#: Safety factor on the per-sample working memory of the model (the measured peak RSS per chunk sample was
#: 1.1-1.5 × the model's estimate in the MLP benchmark, allocator rounding included).
_SAFETY = 1.5

_MODES = ("auto", "reverse", "forward")


# ----------------------------------------------------------------------------------------------------------
# preparing f and x
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """A probed function: per-sample and batched callables, shapes, dtypes."""

    per_sample: Callable[[Tensor], Tensor]
    batched: Callable[[Tensor], Tensor]
    is_batched: bool
    d_in: int
    d_out: int
    out_dtype: torch.dtype


def _module_param(f: Any) -> Tensor | None:
    if isinstance(f, nn.Module):
        p = next(f.parameters(), None)
        if p is None:
            p = next(f.buffers(), None)
        return p
    return None


def _as_tensor_input(x: Any, name: str) -> Tensor:
    """x as a tensor (a tensor as is; array-likes converted); meta tensors and non-numeric data refused."""
    if is_torch(x):
        if x.device.type == "meta":
            raise ShapeError(f"{name} is a tensor on the 'meta' device (it has shapes but no values)")
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a numeric array; could not convert: {exc}") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise ShapeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    return torch.as_tensor(arr)


def _to_input(f: Any, x: Any, name: str = "x") -> Tensor:
    """x as a 2-D floating tensor on the right device/dtype; NaN → NonFiniteError."""
    p = _module_param(f)
    t = _as_tensor_input(x, name)
    if is_torch(x):
        if p is not None and t.is_floating_point() and p.is_floating_point() and t.dtype != p.dtype:
            t = t.to(p.dtype)
    else:
        if p is not None and p.is_floating_point():
            t = t.to(device=p.device, dtype=p.dtype)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim == 1:
        raise ShapeError(f"{name} must be 2-D (n_samples, d_in); got shape {tuple(t.shape)} "
                         f"(use x[None] for a single sample)")
    if t.ndim != 2:
        raise ShapeError(f"{name} must be 2-D (n_samples, d_in); got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise EmptyInputError(f"{name} is empty (shape {tuple(t.shape)})")
    with torch.no_grad():
        ok = torch.isfinite(t)
        if not bool(ok.all()):
            bad = int((~ok).sum())
            row = int(torch.nonzero(~ok)[0, 0])
            raise NonFiniteError(f"{name} contains {bad} NaN/Inf value(s), first at row {row}")
    return t


def _call(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    try:
        out = f(x)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes ModelError
        raise ModelError(f"f raised {type(exc).__name__} on input of shape {tuple(x.shape)}: {exc}") from exc
    return out


def _prepare(f: Any, x: Tensor) -> _Prepared:
    """Probe f on a small batch to learn whether it is batched, d_out and the output dtype."""
    if not callable(f):
        raise ConfigError(f"f must be a torch module or callable; got {type(f).__name__}")
    n, d_in = x.shape
    p = 3 if d_in != 3 else 2
    probe = x[torch.arange(p, device=x.device) % n]
    batched_exc: Exception | None = None
    with torch.no_grad():
        try:
            out = f(probe)
        except Exception as exc:  # noqa: BLE001
            out, batched_exc = None, exc
        if isinstance(out, Tensor) and out.ndim == 2 and out.shape[0] == p:
            d_out = int(out.shape[1])

            def per_sample(xi: Tensor) -> Tensor:
                return f(xi.unsqueeze(0)).squeeze(0)

            return _Prepared(per_sample, f, True, d_in, d_out, out.dtype)
        if isinstance(out, Tensor) and out.ndim >= 3 and out.shape[0] == p:
            raise ShapeError(
                f"f must return a 1-D output per sample, (n, d_out) for a batch; got shape {tuple(out.shape)} "
                f"for input shape {tuple(probe.shape)}"
            )
        # not batched: try one sample (d_in,) → (d_out,)
        try:
            one = f(x[0])
        except Exception as exc:  # noqa: BLE001
            first = batched_exc if batched_exc is not None else exc
            raise ModelError(
                f"f raised {type(first).__name__} on input of shape {tuple(probe.shape)}: {first}"
            ) from first
    if not isinstance(one, Tensor):
        raise ShapeError(f"f must return a tensor; got {type(one).__name__}")
    if one.ndim != 1:
        got = tuple(out.shape) if isinstance(out, Tensor) else tuple(one.shape)
        raise ShapeError(
            f"f must map (n, d_in) → (n, d_out) or (d_in,) → (d_out,): expected a 1-D output per sample; "
            f"got shape {got} for input shape {tuple(probe.shape) if isinstance(out, Tensor) else (d_in,)}"
        )
    return _Prepared(f, torch.vmap(f), False, d_in, int(one.shape[0]), one.dtype)


def _saved_bytes(fn: Callable[[Tensor], Tensor], x: Tensor) -> int:
    """Bytes of distinct tensors autograd saves for backward in one call of fn(x)."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        except (RuntimeError, NotImplementedError):
            seen[id(t)] = t.numel() * t.element_size()
        return t

    xr = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(xr)
    return int(sum(seen.values()))


def _activation_bytes(prep: _Prepared, x: Tensor) -> int:
    """Measured per-sample activation cost ``a`` of the memory model (see the module docstring)."""
    try:
        if prep.is_batched:
            a1 = _saved_bytes(prep.batched, x[:1])
            a2 = _saved_bytes(prep.batched, x[[0, 0]])
            return max(a2 - a1, 0)
        return _saved_bytes(prep.per_sample, x[0])
    except Exception:  # noqa: BLE001 - estimate only; fall back to a size-based guess
        return 4 * (prep.d_in + prep.d_out) * x.element_size()


def _resolve_mode(mode: str, d_in: int, d_out: int) -> str:
    if mode not in _MODES:
        raise ConfigError(f"mode must be one of {_MODES}; got {mode!r}")
    if mode == "auto":
        return "reverse" if d_out < d_in else "forward"
    return mode


def _per_sample_work(prep: _Prepared, x: Tensor, mode: str) -> int:
    s = torch.empty((), dtype=prep.out_dtype).element_size()
    m = prep.d_out if mode == "reverse" else prep.d_in
    a = _activation_bytes(prep, x)
    return int(_SAFETY * (2 * prep.d_out * prep.d_in * s + (1 + m) * a + prep.d_in * x.element_size()))


def _chunk_from_budget(
    prep: _Prepared, x: Tensor, mode: str, chunk_size: int | None, max_memory: float | None, keep_output: bool
) -> int:
    n = x.shape[0]
    if chunk_size is not None:
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size!r}")
        return min(int(chunk_size), n)
    s = torch.empty((), dtype=prep.out_dtype).element_size()
    out_bytes = n * prep.d_out * prep.d_in * s if keep_output else 0
    per = _per_sample_work(prep, x, mode)
    budget = DEFAULT_WORK_MEMORY
    if max_memory is not None:
        if not (max_memory > 0):
            raise ConfigError(f"max_memory must be a positive number of bytes; got {max_memory!r}")
        avail = max_memory - out_bytes - FIXED_OVERHEAD
        budget = min(budget, avail)
        if avail < per:
            need = out_bytes + FIXED_OVERHEAD + per
            raise ConfigError(
                f"max_memory={max_memory:.0f} bytes is too small: the result needs {out_bytes} bytes, fixed "
                f"overhead {FIXED_OVERHEAD} and one sample about {per} more (at least {need} bytes)"
            )
    return int(max(1, min(n, budget // per)))


def estimate_chunk_size(
    f: Any, x: Any, *, max_memory: float | None = None, mode: str = "auto", keep_output: bool = True
) -> int:
    """Number of samples per chunk that :func:`jacobians` would use for ``max_memory`` bytes.

    Arguments:
        f: module or callable (batched or per sample).
        x: inputs (n_samples, d_in).
        max_memory: budget in bytes for the whole call (output included when ``keep_output``); the chunk's
            working memory is further capped at :data:`DEFAULT_WORK_MEMORY`.
        mode: "auto", "reverse" or "forward".
        keep_output: count the (n_samples, d_out, d_in) result against the budget.

    Returns:
        The chunk size (1 ≤ c ≤ n_samples).

    Example:
        >>> import torch
        >>> estimate_chunk_size(torch.nn.Linear(3, 2), torch.randn(10, 3), max_memory=1e8)
        10
    """
    xt = _to_input(f, x)
    prep = _prepare(f, xt)
    m = _resolve_mode(mode, prep.d_in, prep.d_out)
    return _chunk_from_budget(prep, xt, m, None, max_memory, keep_output)


def _jac_fn(prep: _Prepared, mode: str) -> Callable[[Tensor], Tensor]:
    inner = torch.func.jacrev(prep.per_sample) if mode == "reverse" else torch.func.jacfwd(prep.per_sample)
    return torch.vmap(inner)


def _iter_chunks(
    prep: _Prepared, x: Tensor, mode: str, chunk: int, create_graph: bool
) -> Iterator[tuple[int, Tensor]]:
    """Yield (start, J chunk (c, d_out, d_in)) over x in chunks of ``chunk`` samples."""
    jac = _jac_fn(prep, mode)
    n = x.shape[0]
    for i in range(0, n, chunk):
        # A contiguous copy of the chunk: forward mode on a view of a larger tensor materializes tangents
        # the size of the whole tensor (see notes/performance.md).
        xc = x[i : i + chunk]
        if mode == "forward" or not xc.is_contiguous():
            xc = xc.clone()
        try:
            if create_graph:
                J = jac(xc)
            else:
                with torch.no_grad():
                    J = jac(xc)
        except (ShapeError, ModelError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"differentiating f failed on samples {i}..{i + xc.shape[0] - 1}: {type(exc).__name__}: {exc}"
            ) from exc
        yield i, J


def jacobians(
    f: Any,
    x: Any,
    *,
    chunk_size: int | None = None,
    max_memory: float | None = None,
    mode: str = "auto",
    create_graph: bool = False,
) -> Tensor:
    """Jacobians ∂f/∂x of a network at every input, batched in chunks within a memory budget.

    Reverse mode (``vmap(jacrev)``, d_out backward directions) is chosen by ``mode="auto"`` when
    d_out < d_in, forward mode (``vmap(jacfwd)`` on a cloned chunk) otherwise. Chunks of samples are sized
    with the memory model of the module docstring.

    Arguments:
        f: ``nn.Module`` or callable on batches (n, d_in) → (n, d_out), or on one sample (d_in,) → (d_out,).
        x: inputs (n_samples, d_in), numpy or torch. A numpy ``x`` is converted to the module's device and
            dtype; a torch ``x`` keeps its device (floating dtype cast to the module's parameters' dtype).
        chunk_size: samples per chunk; overrides ``max_memory``.
        max_memory: bytes for the whole call, result included; the working memory of one chunk is
            also capped at :data:`DEFAULT_WORK_MEMORY` (a bound, not a target: larger chunks are not faster).
        mode: "auto", "reverse" or "forward".
        create_graph: keep the autograd graph (differentiable w.r.t. f's parameters and x), e.g. for a
            Jacobian penalty in training. Otherwise the result is computed without a graph.

    Returns:
        Tensor (n_samples, d_out, d_in) with f's output dtype, on the device of the computation.

    Example:
        >>> import torch
        >>> J = jacobians(torch.tanh, torch.zeros(4, 3))
        >>> bool(torch.allclose(J[0], torch.eye(3)))
        True
    """
    xt = _to_input(f, x)
    prep = _prepare(f, xt)
    m = _resolve_mode(mode, prep.d_in, prep.d_out)
    chunk = _chunk_from_budget(prep, xt, m, chunk_size, max_memory, keep_output=True)
    n = xt.shape[0]
    if create_graph:
        return torch.cat([J for _, J in _iter_chunks(prep, xt, m, chunk, True)], dim=0)
    out = torch.empty((n, prep.d_out, prep.d_in), dtype=prep.out_dtype, device=xt.device)
    for i, J in _iter_chunks(prep, xt, m, chunk, False):
        out[i : i + J.shape[0]] = J
        del J
    return out


def jacobian_frobenius_sq(
    f: Any,
    x: Any,
    method: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Squared Frobenius norm ‖J(x)‖_F² per sample, differentiable (for the Jacobian penalty α‖J‖_F²).

    ``"exact"`` sums the squares of :func:`jacobians` (with the graph kept); use it for small d.
    ``"hutchinson"`` averages ‖Jᵀu‖² over ``n_probes`` Rademacher vectors u ∈ {±1}^d_out, computed with
    vector-Jacobian products (``torch.func.vjp``, one backward pass per probe for the whole batch).
    E[uuᵀ] = I makes it unbiased: E‖Jᵀu‖² = tr(JJᵀ) = ‖J‖_F². Rademacher probes have the smallest variance
    among i.i.d. probes, 2(‖JJᵀ‖_F² − Σᵢ(JJᵀ)ᵢᵢ²) per probe against 2‖JJᵀ‖_F² for Gaussian ones; reverse
    mode is used because double backward is available for every op that trains, and it probes the output
    space, whose dimension is the smaller one for most networks.

    References:
        A stochastic estimator of the trace of the influence matrix for Laplacian smoothing splines
        (Hutchinson, 1990), https://doi.org/10.1080/03610919008812866
        A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019),
        https://arxiv.org/abs/1907.06496

    Arguments:
        f: module or callable (batched or per sample), as for :func:`jacobians`.
        x: inputs (n_samples, d_in).
        method: "exact" or "hutchinson".
        n_probes: probes per sample for "hutchinson".
        generator: torch Generator for the probes (reproducibility).

    Returns:
        Tensor (n_samples,) of f's output dtype, carrying the autograd graph.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(3, 2)
        >>> v = jacobian_frobenius_sq(lin, torch.randn(4, 3))
        >>> bool(torch.allclose(v, lin.weight.pow(2).sum().expand(4)))
        True
    """
    if method not in ("exact", "hutchinson"):
        raise ConfigError(f"method must be 'exact' or 'hutchinson'; got {method!r}")
    if int(n_probes) != n_probes or n_probes < 1:
        raise ConfigError(f"n_probes must be a positive integer; got {n_probes!r}")
    if method == "exact":
        return jacobians(f, x, create_graph=True).pow(2).sum(dim=(1, 2))
    xt = _to_input(f, x)
    prep = _prepare(f, xt)
    try:
        z, vjp_fn = torch.func.vjp(prep.batched, xt)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"f raised {type(exc).__name__} during a vector-Jacobian product: {exc}") from exc
    gdev = generator.device if generator is not None else z.device
    total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for _ in range(int(n_probes)):
        u = torch.randint(0, 2, tuple(z.shape), generator=generator, device=gdev)
        u = u.to(device=z.device, dtype=z.dtype) * 2 - 1
        (g,) = vjp_fn(u)
        total = total + g.pow(2).sum(dim=-1)
    return total / n_probes


# ----------------------------------------------------------------------------------------------------------
# Jacobian field statistics
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalVsGlobal:
    """How far a network's local linear maps J(x) are from one global linear map C.

    Attributes:
        relative_distance: (n_samples,) ‖J(x) − C‖_F / ‖C‖_F (unweighted: on ill-conditioned inputs dominated by
            directions the data never visits, where C is mostly estimation noise).
        weighted_distance: (n_samples,) ‖(J(x) − C) Σ^½‖_F / ‖C Σ^½‖_F with Σ the input covariance given to
            :meth:`JacobianField.local_vs_global` (None without it): the distance where the data lives.
        max_angle: (n_samples,) largest principal angle (radians) between the top-k right singular subspaces
            of J(x) and of C (the row spaces when k = rank C): 0 when J(x) reads the same input directions
            as C, π/2 when it ignores one of them.
        k: dimension of the compared subspaces.
        k_gap: singular-value gap σ_k/σ_{k+1} of C at k (inf at the end of the spectrum).
    """

    relative_distance: np.ndarray
    max_angle: np.ndarray
    k: int
    weighted_distance: np.ndarray | None = None
    k_gap: float = float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: median and 10/90% quantiles of the distributions (angles also in degrees)."""
        out: dict[str, Any] = {"n_samples": int(self.relative_distance.shape[0]), "k": int(self.k),
                               "k_gap": float(self.k_gap) if np.isfinite(self.k_gap) else None}
        series = [("relative_distance", self.relative_distance), ("max_angle", self.max_angle)]
        if self.weighted_distance is not None:
            series.append(("weighted_distance", self.weighted_distance))
        for name, v in series:
            q10, q50, q90 = (float(t) for t in np.quantile(v, [0.1, 0.5, 0.9]))
            out[f"{name}_median"] = q50
            out[f"{name}_q10"] = q10
            out[f"{name}_q90"] = q90
            out[f"{name}_mean"] = float(np.mean(v))
        for key in ("median", "q10", "q90"):
            out[f"max_angle_deg_{key}"] = math.degrees(out[f"max_angle_{key}"])
        return out


def _top_right_basis(M: Tensor, k: int) -> Tensor:
    """(…, d_in, k) orthonormal basis of the top-k right singular subspace of M (…, d_out, d_in)."""
    _, _, Vh = torch.linalg.svd(M, full_matrices=False)
    return Vh[..., :k, :].transpose(-1, -2)


def _max_principal_angle(Q1: Tensor, Q2: Tensor) -> Tensor:
    """Largest principal angle between span Q1 (…, d, k) and span Q2 (d, k), both orthonormal.

    atan2(sin, cos) with sin from the residual (I − Q2Q2ᵀ)Q1 and cos from Q2ᵀQ1, accurate near 0 and π/2.
    """
    cos = torch.linalg.svdvals(Q2.transpose(-1, -2) @ Q1)[..., -1]
    R = Q1 - Q2 @ (Q2.transpose(-1, -2) @ Q1)
    sin = torch.linalg.svdvals(R)[..., 0]
    return torch.atan2(sin, cos)


def _iter_batches(X: Any) -> Iterator[Any]:
    """Yield input batches from an array/tensor, a dask array (one computed row block at a time, streamed
    on the client), or from an iterable (DataLoader) of batches or (x, y)."""
    if is_dask(X):
        if X.ndim != 2:
            raise ShapeError(f"X must be 2-D (n_samples, d_in); got shape {X.shape}")
        X = X.rechunk({1: -1})
        for i, (start, _) in enumerate(block_ranges(X.chunks[0])):
            b = np.asarray(X.blocks[i].compute())
            check_block_finite(b, "X", i, start)
            yield b
        return
    if is_torch(X) or isinstance(X, np.ndarray):
        yield X
        return
    if isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], (int, float)):
        yield X
        return
    if isinstance(X, Iterable):
        for b in X:
            if isinstance(b, (tuple, list)) and len(b) > 0 and (is_torch(b[0]) or isinstance(b[0], np.ndarray)):
                b = b[0]
            elif isinstance(b, dict):
                raise ShapeError("X batches must be arrays or (x, ...) tuples; got a dict")
            yield b
        return
    yield X


class JacobianField:
    """Streaming statistics of the Jacobians J(x) of a network over a data set.

    Jacobians are computed chunk by chunk (see :func:`jacobians`) and reduced at once; only per-sample
    singular values and log-determinants are kept.

    Arguments:
        f: module or callable (batched or per sample), as for :func:`jacobians`.
        chunk_size: samples per chunk (overrides ``max_memory``).
        max_memory: working-memory budget in bytes per chunk (capped at :data:`DEFAULT_WORK_MEMORY`).
        mode: "auto", "reverse" or "forward".
        top_k: number of leading singular values kept per sample; None keeps all min(d_out, d_in).
        device: where numpy inputs are placed when ``f`` has no parameters ("cpu", "cuda", "auto" = CUDA when
            available, …); a module's own device wins. Statistics come back on the CPU in float64.

    Attributes:
        mean_jacobian_: (d_out, d_in) mean of J(x).
        mean_gram_: (d_in, d_in) mean of J(x)ᵀJ(x).
        singular_values_: (n_samples, k) descending singular values of each J(x).
        logabsdet_: (n_samples,) log|det J(x)| for square J (−inf where J is singular), else None.
        n_samples_seen_: number of samples.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(3, 3)
        >>> field = JacobianField(lin).fit(torch.randn(20, 3))
        >>> bool(np.allclose(field.mean_jacobian_, lin.weight.detach().double().numpy(), atol=1e-6))
        True
    """

    def __init__(
        self,
        f: Any,
        chunk_size: int | None = None,
        max_memory: float | None = None,
        mode: str = "auto",
        top_k: int | None = None,
        device: str | torch.device = "auto",
    ):
        self.f = f
        self.chunk_size = chunk_size
        self.max_memory = max_memory
        self.mode = mode
        self.top_k = top_k
        self.device = device

    # -- helpers ------------------------------------------------------------------------------------------
    def _input(self, b: Any) -> Tensor:
        if not is_torch(b) and _module_param(self.f) is None:
            dev = self.device
            if isinstance(dev, str) and dev == "auto":
                dev = resolve_device("auto")
            b = torch.as_tensor(np.asarray(b)).to(dev)
        return _to_input(self.f, b, name="X")

    def _k(self, d_out: int, d_in: int) -> int:
        r = min(d_out, d_in)
        if self.top_k is None:
            return r
        if int(self.top_k) != self.top_k or self.top_k < 1:
            raise ConfigError(f"top_k must be a positive integer or None; got {self.top_k!r}")
        return min(int(self.top_k), r)

    def _chunks(self, X: Any) -> Iterator[Tensor]:
        """Yield float64 Jacobian chunks over all batches of X."""
        for b in _iter_batches(X):
            xt = self._input(b)
            prep = _prepare(self.f, xt)
            m = _resolve_mode(self.mode, prep.d_in, prep.d_out)
            chunk = _chunk_from_budget(prep, xt, m, self.chunk_size, self.max_memory, keep_output=False)
            for _, J in _iter_chunks(prep, xt, m, chunk, False):
                yield J.to(torch.float64)

    def _reset(self) -> None:
        for a in ("mean_jacobian_", "mean_gram_", "singular_values_", "logabsdet_", "n_samples_seen_"):
            if hasattr(self, a):
                delattr(self, a)
        self._sum_j = None
        self._sum_g = None
        self._svs: list[np.ndarray] = []
        self._lads: list[np.ndarray] = []

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, X: Any) -> JacobianField:
        """Compute the statistics over X (array/tensor (n_samples, d_in) or an iterable of batches).

        Arguments:
            X: inputs, a ``dask.array`` with rows chunked (blocks are computed one at a time and streamed
                through the model on the client, where the model lives; memory is bounded by one block),
                or a DataLoader/iterable yielding batches (or (x, y) tuples).

        Returns:
            self.
        """
        self._reset()
        return self.partial_fit(X)

    def partial_fit(self, X: Any) -> JacobianField:
        """Add the samples of X to the running statistics (see :meth:`fit`); returns self."""
        if not hasattr(self, "_svs"):
            self._reset()
        n_new = 0
        for J in self._chunks(X):
            c, d_out, d_in = J.shape
            if self._sum_j is None:
                self._sum_j = torch.zeros((d_out, d_in), dtype=torch.float64)
                self._sum_g = torch.zeros((d_in, d_in), dtype=torch.float64)
            elif self._sum_j.shape != (d_out, d_in):
                raise ShapeError(
                    f"X batches give Jacobians of shape {(d_out, d_in)}; earlier ones had {tuple(self._sum_j.shape)}"
                )
            self._sum_j += J.sum(dim=0).cpu()
            self._sum_g += torch.einsum("boi,boj->ij", J, J).cpu()
            k = self._k(d_out, d_in)
            self._svs.append(torch.linalg.svdvals(J)[:, :k].cpu().numpy())
            if d_out == d_in:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    _, lad = torch.linalg.slogdet(J)
                self._lads.append(lad.cpu().numpy())
            n_new += c
        if n_new == 0 and self._sum_j is None:
            raise EmptyInputError("X has no samples")
        n = sum(s.shape[0] for s in self._svs)
        self.n_samples_seen_ = n
        self.mean_jacobian_ = (self._sum_j / n).numpy()
        self.mean_gram_ = (self._sum_g / n).numpy()
        self.singular_values_ = np.concatenate(self._svs, axis=0)
        self.logabsdet_ = np.concatenate(self._lads) if self._lads else None
        return self

    # -- comparison with a global map -----------------------------------------------------------------------
    def local_vs_global(self, C: Any, X: Any, k: int | None = None, covariance: Any = None) -> LocalVsGlobal:
        """Distribution over X of the distance between J(x) and a global linear map C.

        Arguments:
            C: (d_out, d_in) global map, e.g. a surrogate's ``coef_``.
            X: inputs (n_samples, d_in) or an iterable of batches.
            k: dimension of the compared right singular subspaces; default the numerical rank of C
                (tolerance max(shape)·eps·σ_max), capped by ``top_k`` when that is set.
            covariance: Σ (d_in, d_in) of the inputs (e.g. ``np.cov(Y.T)``) for the weighted distance
                ‖(J − C)Σ^½‖_F/‖CΣ^½‖_F, which ignores directions the data does not visit.

        Returns:
            :class:`LocalVsGlobal` with per-sample ``relative_distance`` and ``max_angle`` (radians; NaN when
            k = d_in, where both right subspaces are the whole input space and the angle is 0 by construction —
            it is not computed, which also saves one SVD of J per sample).

        Example:
            >>> import torch
            >>> lin = torch.nn.Linear(4, 2)
            >>> C = lin.weight.detach().numpy()
            >>> r = JacobianField(lin).local_vs_global(C, torch.randn(8, 4))
            >>> bool(r.relative_distance.max() < 1e-6)
            True
        """
        Cn = np.asarray(C.detach().cpu().numpy() if is_torch(C) else C, dtype=np.float64)
        if Cn.ndim != 2:
            raise ShapeError(f"C must be 2-D (d_out, d_in); got shape {Cn.shape}")
        if not np.isfinite(Cn).all():
            raise NonFiniteError("C contains NaN/Inf values")
        c_norm = float(np.linalg.norm(Cn))
        if c_norm == 0.0:
            raise ConfigError("C must be nonzero (its Frobenius norm divides the distance)")
        info = numerical_rank(Cn)
        rank = info.rank
        if k is None:
            k = rank if self.top_k is None else min(rank, int(self.top_k))
        if int(k) != k or not 1 <= k <= min(Cn.shape):
            raise ConfigError(f"k must be an integer in [1, {min(Cn.shape)}]; got {k!r}")
        Ct = torch.as_tensor(Cn)
        trivial = int(k) >= Cn.shape[1]  # right subspaces of dimension d_in: the whole input space
        Qc = None if trivial else _top_right_basis(Ct, int(k))
        half = None
        if covariance is not None:
            Sg = np.asarray(covariance.detach().cpu().numpy() if is_torch(covariance) else covariance, dtype=np.float64)
            if Sg.shape != (Cn.shape[1], Cn.shape[1]):
                raise ShapeError(f"covariance must be {(Cn.shape[1],) * 2} (d_in × d_in); got {Sg.shape}")
            w, V = np.linalg.eigh((Sg + Sg.T) / 2)
            half = torch.as_tensor((V * np.sqrt(np.clip(w, 0, None))) @ V.T)  # Σ^½ (symmetric square root)
            c_weighted = float(torch.linalg.matrix_norm(Ct @ half))
        dists: list[np.ndarray] = []
        angles: list[np.ndarray] = []
        wdists: list[np.ndarray] = []
        for J in self._chunks(X):
            if tuple(J.shape[1:]) != Cn.shape:
                raise ShapeError(f"C must have shape {tuple(J.shape[1:])} (d_out, d_in) of J; got {Cn.shape}")
            J = J.cpu()
            dists.append((torch.linalg.matrix_norm(J - Ct) / c_norm).numpy())
            if trivial:  # k = d_in: both subspaces are the whole input space, every angle 0 by construction
                angles.append(np.full(J.shape[0], np.nan))
            else:
                angles.append(_max_principal_angle(_top_right_basis(J, int(k)), Qc).numpy())
            if half is not None:
                wdists.append((torch.linalg.matrix_norm((J.to(torch.float64) - Ct) @ half)
                               / max(c_weighted, 1e-300)).numpy())
        if not dists:
            raise EmptyInputError("X has no samples")
        return LocalVsGlobal(np.concatenate(dists), np.concatenate(angles), int(k),
                             np.concatenate(wdists) if wdists else None, gap_at(info.singular_values, int(k)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_samples_seen_"):
            raise NotFittedError("JacobianField is not fitted; call fit(X) first")


# ----------------------------------------------------------------------------------------------------------
# matrix-free local linearization: top-k singular triplets of J(y), the Euler test, adaptive filters
# ----------------------------------------------------------------------------------------------------------
#
# These functions take inputs of any shape: ``inputs`` is a batch (n_inputs, *in_shape) as ``f`` takes it
# (an image model gets (n, C, H, W); one image y is ``y[None]``), and ``f`` maps it to (n_inputs, *out_shape)
# with each output depending only on its own input (put BatchNorm/Dropout models in ``eval()`` mode). J(y) is
# the (d_out, d_in) Jacobian of one sample with d = prod(shape); it is never formed. Products J v come from
# ``torch.func.jvp`` and Jᵀ u from the ``vjp`` function of one ``torch.func.vjp`` call (the forward pass is
# linearized once and reused), both ``vmap``-ed over a block of vectors, and all n inputs share each network
# pass. ``torch.func.linearize`` was measured no faster than ``jvp`` for the forward products (CNN on one
# 256×256 image, 8 tangents: 0.58 s against 0.47 s, one CPU thread), so plain ``jvp`` is used. On the CPU the
# vector-Jacobian products run as a loop of single calls of the one vjp function: for the 5-layer deblurring CNN
# of benchmarks/bench_image_jacobian.py at 256×256 (one thread), 8 vjps took 0.51-0.72 s in a loop against
# 1.10-1.57 s vmapped, while 8 jvps took 1.19-1.34 s vmapped against 1.79-2.13 s in a loop.


@dataclass(frozen=True)
class _ImageMap:
    """A batched model prepared for matrix-free products at fixed inputs Y."""

    f: Callable[[Tensor], Tensor]
    inputs: Tensor  # (n, *in_shape), model dtype and device
    outputs: Tensor  # (n, *out_shape)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def n(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def d_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def d_out(self) -> int:
        return math.prod(self.out_shape)


def _image_map(f: Any, inputs: Any, device: str | torch.device = "auto", name: str = "inputs") -> _ImageMap:
    """Validate ``inputs`` (n, *in_shape), place them on f's device and dtype, and run f once."""
    if not callable(f):
        raise ConfigError(f"f must be a torch module or callable; got {type(f).__name__}")
    p = _module_param(f)
    t = _as_tensor_input(inputs, name)
    if is_torch(inputs):
        t = t.detach()
    if p is not None:
        t = t.to(device=p.device, dtype=p.dtype if p.is_floating_point() else None)
    elif not is_torch(inputs):
        t = t.to(resolve_device(device))
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim < 2:
        raise ShapeError(
            f"{name} must be a batch (n_inputs, *in_shape) as f takes it; got shape {tuple(t.shape)} "
            f"(use y[None] for a single input)"
        )
    if t.numel() == 0:
        raise EmptyInputError(f"{name} is empty (shape {tuple(t.shape)})")
    ok = torch.isfinite(t)
    if not bool(ok.all()):
        raise NonFiniteError(f"{name} contains {int((~ok).sum())} NaN/Inf value(s)")
    t = t.contiguous()
    with torch.no_grad():
        out = _call(f, t)
    if not isinstance(out, Tensor):
        raise ShapeError(f"f must return a tensor; got {type(out).__name__}")
    if out.ndim < 1 or out.shape[0] != t.shape[0]:
        raise ShapeError(
            f"f must return one output per input, (n_inputs, *out_shape) = ({t.shape[0]}, …); got shape "
            f"{tuple(out.shape)} for {name} of shape {tuple(t.shape)}"
        )
    if not out.is_floating_point():
        raise ShapeError(f"f must return a floating-point tensor; got dtype {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise NonFiniteError("f returned NaN/Inf values at the given inputs")
    return _ImageMap(f, t, out, tuple(t.shape[1:]), tuple(out.shape[1:]))


def _jvp_block(m: _ImageMap, V: Tensor, chunk_size: int | None) -> Tensor:
    """J V for a block V (n, d_in, b) of float64 directions → (n, d_out, b) float64."""
    n, _, b = V.shape
    T = V.transpose(1, 2).reshape(n, b, *m.in_shape).to(m.inputs.dtype)

    def one(t: Tensor) -> Tensor:
        return torch.func.jvp(m.f, (m.inputs,), (t,))[1]

    try:
        out = torch.func.vmap(one, in_dims=1, out_dims=1, chunk_size=chunk_size)(T)
    except Exception as exc:  # noqa: BLE001 - any failure of user code becomes ModelError
        raise ModelError(f"f raised {type(exc).__name__} during a Jacobian-vector product: {exc}") from exc
    return out.reshape(n, b, m.d_out).transpose(1, 2).to(torch.float64)


def _vjp_function(m: _ImageMap) -> Callable[[Tensor, int | None], Tensor]:
    """Linearize f once at the inputs; returns U (n, d_out, b) ↦ Jᵀ U (n, d_in, b) in float64."""
    try:
        _, vjp_fn = torch.func.vjp(m.f, m.inputs)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"f raised {type(exc).__name__} during a vector-Jacobian product: {exc}") from exc

    def apply(U: Tensor, chunk_size: int | None) -> Tensor:
        n, _, b = U.shape
        T = U.transpose(1, 2).reshape(n, b, *m.out_shape).to(m.outputs.dtype)
        try:
            if T.device.type == "cpu":  # a loop of single products: 2× faster than vmap on CPU (see above)
                out = torch.stack([vjp_fn(T[:, j])[0] for j in range(b)], dim=1)
            else:
                out = torch.func.vmap(lambda u: vjp_fn(u)[0], in_dims=1, out_dims=1, chunk_size=chunk_size)(T)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"f raised {type(exc).__name__} during a vector-Jacobian product: {exc}") from exc
        return out.reshape(n, b, m.d_in).transpose(1, 2).to(torch.float64)

    return apply


def _project_out(X: Tensor, Q: Tensor | None) -> Tensor:
    """X − Q Qᵀ X, twice (classical Gram-Schmidt with reorthogonalization), batched (n, d, ·)."""
    if Q is None or Q.shape[-1] == 0:
        return X
    for _ in range(2):
        X = X - Q @ (Q.transpose(1, 2) @ X)
    return X


def _orth_block(X: Tensor, Q: Tensor | None, gen: torch.Generator) -> Tensor:
    """Orthonormal basis (n, d, b) of the part of X (n, d, b) outside span(Q), orthogonal to Q.

    The basis comes from the SVD of the projected block (not a QR, whose columns depend on the order of the
    columns: a near-zero first column would give a noise direction that takes part of a later, real one).
    Directions that X does not supply (singular value ≤ 1e-12 of the block's scale: breakdown, X in span(Q)
    or rank-deficient) are filled with random ones orthogonal to Q and to the kept directions, so the block
    keeps its size and span(X) stays inside.
    """
    scale = X.norm(dim=1).amax(dim=1, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)  # (n, 1)
    X = _project_out(X, Q)
    Us, S, _ = torch.linalg.svd(X, full_matrices=False)  # (n, d, b), (n, b): descending
    strong = S > 1e-12 * scale
    if bool(strong.all()):
        return Us
    out = []
    for i in range(X.shape[0]):  # per input: keep its strong directions, fill the rest at random
        keep = Us[i][:, strong[i]]
        need = X.shape[-1] - keep.shape[-1]
        base = keep[None] if Q is None else torch.cat([Q[i : i + 1], keep[None]], dim=2)
        fill = torch.randn((1, X.shape[1], need), generator=gen, dtype=X.dtype).to(X.device)
        fill = torch.linalg.qr(_project_out(fill, base))[0]
        out.append(torch.cat([keep, fill[0]], dim=1))
    return torch.stack(out)


@dataclass(frozen=True)
class JacobianSVD(ResultMixin):
    """Top-k singular triplets of the Jacobians J(y) of a network at a batch of inputs, found matrix-free.

    ``J(y) v_i ≈ σ_i u_i`` and ``J(y)ᵀ u_i ≈ σ_i v_i``; both residuals are measured with fresh network
    products at the end, and ``error_bounds`` = √((r² + r_adj²)/2) bounds |σ_i − σ_true| for some singular
    value σ_true of J (the residual of the eigenpair ((u; v)/√2, σ) of the symmetric matrix [[0, J], [Jᵀ, 0]]).

    Attributes:
        singular_values: (n_inputs, k) descending.
        left_vectors: (n_inputs, k, *out_shape) u_i as images of the output's shape.
        right_vectors: (n_inputs, k, *in_shape) v_i as images of the input's shape.
        residuals: (n_inputs, k) ‖J v_i − σ_i u_i‖.
        adjoint_residuals: (n_inputs, k) ‖Jᵀ u_i − σ_i v_i‖.
        converged: (n_inputs, k) max(residuals, adjoint_residuals) ≤ tol · σ_1 of that input.
        tol: the relative tolerance used.
        block_size: vectors per block.
        n_iter: block iterations run.
        krylov_dim: dimension of the final Krylov subspaces (one per side).
        n_jvp: Jacobian-vector products per input (J v), including the residual check.
        n_vjp: vector-Jacobian products per input (Jᵀ u), including the residual check.

    ``to_dict()`` leaves out the singular vectors unless ``include_vectors=True``.
    """

    singular_values: np.ndarray
    left_vectors: np.ndarray
    right_vectors: np.ndarray
    residuals: np.ndarray
    adjoint_residuals: np.ndarray
    converged: np.ndarray
    tol: float
    block_size: int
    n_iter: int
    krylov_dim: int
    n_jvp: int
    n_vjp: int

    @property
    def error_bounds(self) -> np.ndarray:
        """(n_inputs, k) √((‖Jv − σu‖² + ‖Jᵀu − σv‖²)/2): a bound on each σ_i's distance to J's spectrum."""
        return np.sqrt((self.residuals**2 + self.adjoint_residuals**2) / 2)

    def to_dict(self, include_vectors: bool = False) -> dict[str, Any]:
        """JSON-safe dictionary of every field (singular vectors only with ``include_vectors``)."""
        d = super().to_dict()
        d["error_bounds"] = self.error_bounds.tolist()
        if not include_vectors:
            d.pop("left_vectors")
            d.pop("right_vectors")
        return d


def _sign_rule(u: Tensor) -> Tensor:
    """The sign rule of :func:`linlens.linalg.svd`, batched: signs (n, 1, k) that make the largest-|entry|
    of each column u_i of u (n, d, k) positive."""
    idx = u.abs().argmax(dim=1, keepdim=True)
    s = torch.sign(torch.gather(u, 1, idx))
    return torch.where(s == 0, torch.ones_like(s), s)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def jacobian_svd(
    f: Any,
    inputs: Any,
    k: int = 6,
    *,
    block_size: int | None = None,
    tol: float = 1e-6,
    max_iter: int = 50,
    seed: int = 0,
    chunk_size: int | None = None,
    device: str | torch.device = "auto",
) -> JacobianSVD:
    """Top-k singular values and vectors of J(y) for each input y, without forming J.

    Block Lanczos bidiagonalization (block Golub–Kahan) with full reorthogonalization, the block Krylov
    method of Musco & Musco: starting from a random block V₁ of b = ``block_size`` directions, each
    iteration applies J to the newest input-space block (b Jacobian-vector products) and Jᵀ to the newest
    output-space block (b vector-Jacobian products), orthogonalizes against all earlier blocks, and takes
    the Ritz triplets from the SVD of the small projected matrix B = Uᵀ J V. It stops when the estimated
    residual ‖Jᵀu_i − σ_i v_i‖ of each of the top k falls to ``tol`` · σ_1 (for every input), when the
    subspaces fill the space, or after ``max_iter`` iterations. Both residuals are then measured with fresh
    products (k more vector-Jacobian products). Cost: about (k + b·iterations) forward-and-backward passes,
    memory O(d · b · iterations) in float64 per input. All inputs share each network pass.

    The floor of the reachable residual is the model's precision: about 1e-7 · σ_1 for float32 models.

    References:
        Randomized block Krylov methods for stronger and faster approximate singular value decomposition
        (Musco & Musco, 2015), https://arxiv.org/abs/1504.05477
        Calculating the singular values and pseudo-inverse of a matrix (Golub & Kahan, 1965),
        https://doi.org/10.1137/0702016

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape) numpy array or tensor; ``y[None]`` for one input y.
        k: number of singular triplets, 1 ≤ k ≤ min(d_in, d_out).
        block_size: vectors per block; default min(max(k, 2), 8). A block of b vectors resolves singular
            values of multiplicity up to b; smaller blocks need fewer products in all (deblurring CNN,
            128×128 image, top-32 to tol 1e-3: 504 products with b = 4, 608 with b = 8, 1232 with b = 40;
            b = 1 missed a repeated singular value), larger ones need fewer sequential iterations.
        tol: relative residual target (against σ_1 of the same input).
        max_iter: largest number of block iterations.
        seed: seed of the random start block.
        chunk_size: vectors per ``vmap`` call (bounds the memory of one block of products); None = a block.
            On the CPU the vector-Jacobian products run one at a time anyway.
        device: where numpy inputs go when ``f`` has no parameters ("auto" = CUDA when available); a
            module's own device wins. Results come back as float64 numpy arrays.

    Returns:
        :class:`JacobianSVD`.

    Example:
        >>> import torch
        >>> A = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        >>> res = jacobian_svd(lambda x: x @ A.T, torch.randn(1, 5, dtype=torch.float64), k=3)
        >>> bool(np.allclose(res.singular_values[0], torch.linalg.svdvals(A)[:3].numpy()))
        True
    """
    m = _image_map(f, inputs, device)
    dmin = min(m.d_in, m.d_out)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= dmin:
        raise ConfigError(f"k must be an integer in [1, {dmin}] (min(d_in, d_out)); got {k!r}")
    k = int(k)
    b = min(max(k, 2), 8, dmin) if block_size is None else block_size
    if not isinstance(b, (int, np.integer)) or b < 1:
        raise ConfigError(f"block_size must be a positive integer; got {block_size!r}")
    b = min(int(b), dmin)
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"max_iter must be a positive integer; got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ConfigError(f"tol must be a non-negative number; got {tol!r}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ConfigError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    n, dev, f64 = m.n, m.inputs.device, torch.float64
    gen = torch.Generator().manual_seed(int(seed))
    vjp = _vjp_function(m)

    V_new = _orth_block(torch.randn((n, m.d_in, b), generator=gen, dtype=f64).to(dev), None, gen)
    V = U = AV = B = None
    n_jvp = n_vjp = it = 0
    while True:
        it += 1
        W = _jvp_block(m, V_new, chunk_size)
        n_jvp += V_new.shape[-1]
        V = V_new if V is None else torch.cat([V, V_new], dim=2)
        room_u = m.d_out - (0 if U is None else U.shape[-1])  # U lives in the output space: it can fill up
        U_new = _orth_block(W[..., :room_u] if room_u < W.shape[-1] else W, U, gen)
        # B = Uᵀ J V (n, dim, dim), grown by the new block row and column: O(d · dim · b) per iteration
        if B is None:
            B = U_new.transpose(1, 2) @ W
        else:
            col = U.transpose(1, 2) @ W
            row = U_new.transpose(1, 2) @ torch.cat([AV, W], dim=2)
            B = torch.cat([torch.cat([B, col], dim=2), row], dim=1)
        AV = W if AV is None else torch.cat([AV, W], dim=2)
        U = U_new if U is None else torch.cat([U, U_new], dim=2)
        if U.shape[-1] >= m.d_out:
            # U spans the whole output space: B = UᵀJV is exact once V holds the row space span(JᵀU). Add the
            # part of JᵀU outside span(V) (at most d_out directions), then the SVD of B is J's, and stop.
            Zall = _project_out(vjp(U, chunk_size), V)
            n_vjp += U.shape[-1]
            room_v = m.d_in - V.shape[-1]
            if room_v > 0 and bool((Zall.norm(dim=1) > 1e-12 * B.abs().amax().clamp_min(1e-300)).any()):
                V_ext = _orth_block(Zall[..., :room_v], V, gen)
                W_ext = _jvp_block(m, V_ext, chunk_size)
                n_jvp += V_ext.shape[-1]
                B = torch.cat([B, U.transpose(1, 2) @ W_ext], dim=2)
                AV = torch.cat([AV, W_ext], dim=2)
                V = torch.cat([V, V_ext], dim=2)
            P, S, Rh = torch.linalg.svd(B, full_matrices=False)
            break
        Z = _project_out(vjp(U_new, chunk_size), V)  # the part of Jᵀ U_new outside span(V)
        n_vjp += U_new.shape[-1]
        P, S, Rh = torch.linalg.svd(B)
        kk = min(k, S.shape[-1])
        # Jᵀ u_i − σ_i v_i = Z P_i[last block]: the Krylov relation Jᵀ U = V Bᵀ + Z E_lastᵀ
        est = (Z @ P[:, -U_new.shape[-1]:, :kk]).norm(dim=1)  # (n, kk)
        done = kk == k and bool((est <= tol * S[:, :1]).all())
        room = m.d_in - V.shape[-1]  # V lives in the input space
        if done or room <= 0 or it >= max_iter:
            break
        V_new = _orth_block(Z[..., : min(b, room)] if room < b else Z, V, gen)
    dim = V.shape[-1]
    k_eff = min(k, dim)
    Pk, Sk, Rk = P[:, :, :k_eff], S[:, :k_eff], Rh[:, :k_eff, :].transpose(1, 2)
    u, v, Jv = U @ Pk, V @ Rk, AV @ Rk  # (n, d_out, k), (n, d_in, k), J v = (J V) R exactly
    sgn = _sign_rule(u)
    u, v, Jv = u * sgn, v * sgn, Jv * sgn
    res_f = (Jv - u * Sk[:, None, :]).norm(dim=1)
    JTu = vjp(u, chunk_size)
    n_vjp += k_eff
    res_a = (JTu - v * Sk[:, None, :]).norm(dim=1)
    conv = torch.maximum(res_f, res_a) <= tol * Sk[:, :1]
    return JacobianSVD(
        singular_values=_np(Sk),
        left_vectors=_np(u.transpose(1, 2).reshape(n, k_eff, *m.out_shape)),
        right_vectors=_np(v.transpose(1, 2).reshape(n, k_eff, *m.in_shape)),
        residuals=_np(res_f),
        adjoint_residuals=_np(res_a),
        converged=_np(conv),
        tol=float(tol),
        block_size=int(b),
        n_iter=int(it),
        krylov_dim=int(dim),
        n_jvp=int(n_jvp),
        n_vjp=int(n_vjp),
    )


def effective_dimension(singular_values: Any, definition: str = "frobenius", fraction: float = 0.1) -> np.ndarray:
    """Effective dimension of a local linear map from its singular values.

    ``"frobenius"`` (the definition of Mohan et al., and of their code ``calc_subspace_dims.py``): Σᵢ σᵢ²
    = ‖J‖_F². A denoiser whose Jacobian is an orthogonal projection onto a p-dimensional subspace has all σ in
    {0, 1} and dimension p; shrinkage (0 < σ < 1) counts fractionally. With only the top k singular values it
    is a lower bound (the tail adds Σ_{i>k} σᵢ²). ``"stable_rank"``: Σᵢ σᵢ² / σ₁² (scale-free). ``"count"``:
    the number of σᵢ > ``fraction`` · σ₁.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        singular_values: (..., k) singular values (any order; the largest is taken as σ₁).
        definition: "frobenius", "stable_rank" or "count".
        fraction: threshold of "count", relative to σ₁.

    Returns:
        (...) float64 array (a 0-d array for one spectrum).

    Example:
        >>> float(effective_dimension([1.0, 1.0, 0.5]))
        2.25
        >>> float(effective_dimension([2.0, 1.0, 0.1], "count", fraction=0.1))
        2.0
    """
    s = np.asarray(singular_values.detach().cpu().numpy() if is_torch(singular_values) else singular_values,
                   dtype=np.float64)
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ShapeError(f"singular_values must be (..., k) with k ≥ 1; got shape {s.shape}")
    if not np.isfinite(s).all():
        raise NonFiniteError("singular_values contains NaN/Inf values")
    if definition == "frobenius":
        return np.asarray((s**2).sum(axis=-1))
    smax = np.abs(s).max(axis=-1)
    if definition == "stable_rank":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(smax > 0, (s**2).sum(axis=-1) / np.where(smax > 0, smax, 1) ** 2, 0.0))
    if definition == "count":
        if not 0 <= fraction <= 1:
            raise ConfigError(f"fraction must be in [0, 1]; got {fraction!r}")
        return np.asarray((np.abs(s) > fraction * smax[..., None]).sum(axis=-1).astype(np.float64))
    raise ConfigError(f"definition must be 'frobenius', 'stable_rank' or 'count'; got {definition!r}")


@dataclass(frozen=True)
class EulerTest(ResultMixin):
    """How far f(y) is from J(y) y: zero for positively homogeneous maps, f(αy) = αf(y) for α > 0.

    Attributes:
        relative_residual: (n_inputs,) ‖f(y) − J(y) y‖ / ‖f(y)‖.
        residual_norm: (n_inputs,) ‖f(y) − J(y) y‖ (the "net bias" of Mohan et al.).
        output_norm: (n_inputs,) ‖f(y)‖.
    """

    relative_residual: np.ndarray
    residual_norm: np.ndarray
    output_norm: np.ndarray


def euler_test(f: Any, inputs: Any, device: str | torch.device = "auto") -> EulerTest:
    """The Euler test ‖f(y) − J(y) y‖ / ‖f(y)‖ per input, with one Jacobian-vector product.

    By Euler's theorem on homogeneous functions, a map with f(αy) = αf(y) for all α > 0 has J(y) y = f(y).
    A ReLU network without additive constants (no biases, no BatchNorm shifts) is such a map, so its
    residual is 0 up to rounding; a bias b in any layer adds a term that J(y) y does not contain. Mohan et
    al. write f(y) = A_y y + b_y and call b_y = f(y) − J(y) y the net bias.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape).
        device: where numpy inputs go when ``f`` has no parameters; a module's own device wins.

    Returns:
        :class:`EulerTest` (float64 numpy arrays; relative residual NaN where f(y) = 0).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.ReLU(),
        ...                           torch.nn.Linear(8, 4, bias=False)).double()
        >>> bool(euler_test(net, torch.randn(3, 4, dtype=torch.float64)).relative_residual.max() < 1e-12)
        True
    """
    m = _image_map(f, inputs, device)
    try:
        out, Jy = torch.func.jvp(m.f, (m.inputs,), (m.inputs.clone(),))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"f raised {type(exc).__name__} during a Jacobian-vector product: {exc}") from exc
    out = out.reshape(m.n, -1).to(torch.float64)
    r = (out - Jy.reshape(m.n, -1).to(torch.float64)).norm(dim=1)
    o = out.norm(dim=1)
    rel = torch.where(o > 0, r / torch.where(o > 0, o, torch.ones_like(o)), torch.full_like(o, float("nan")))
    return EulerTest(_np(rel), _np(r), _np(o))


@dataclass(frozen=True)
class AdaptiveFilters(ResultMixin):
    """Rows of J(y) as images: the linear weights each chosen output pixel applies to the input.

    For a bias-free network f(y)_p = ⟨filter_p, y⟩ exactly (``filter_dot_input`` = ``outputs``).

    Attributes:
        pixels: (n_pixels, len(out_shape)) output indices, one row per pixel.
        filters: (n_inputs, n_pixels, *in_shape) row p of J(y), shaped like the input.
        outputs: (n_inputs, n_pixels) f(y) at the pixel.
        filter_dot_input: (n_inputs, n_pixels) ⟨row p of J(y), y⟩ = (J(y) y)_p.
        filter_sums: (n_inputs, n_pixels) Σ of the weights (Mohan et al. find ≈ 1: a local average).
    """

    pixels: np.ndarray
    filters: np.ndarray
    outputs: np.ndarray
    filter_dot_input: np.ndarray
    filter_sums: np.ndarray


def adaptive_filters(f: Any, inputs: Any, pixels: Any, device: str | torch.device = "auto",
                     chunk_size: int | None = None) -> AdaptiveFilters:
    """Rows of J(y) for chosen output pixels (the "adaptive filters"), one vector-Jacobian product each.

    Row p of J(y) is Jᵀ e_p: the weights with which output p combines the input pixels around y.

    References:
        Robust and interpretable blind image denoising via bias-free convolutional neural networks
        (Mohan, Kadkhodaie, Simoncelli & Fernandez-Granda, ICLR 2020), https://arxiv.org/abs/1906.05478

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape).
        pixels: output indices: a sequence of tuples into out_shape (e.g. (0, row, col) for (C, H, W)),
            or of flat indices into the flattened output.
        device: where numpy inputs go when ``f`` has no parameters; a module's own device wins.
        chunk_size: pixels per ``vmap`` call on CUDA (on the CPU they run one at a time); None = all.

    Returns:
        :class:`AdaptiveFilters`.

    Example:
        >>> import torch
        >>> conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
        >>> res = adaptive_filters(conv, torch.randn(1, 1, 5, 5, dtype=torch.float64), [(0, 2, 2)])
        >>> w = conv.weight.detach()[0, 0].numpy()
        >>> bool(np.allclose(res.filters[0, 0, 0, 1:4, 1:4], w))
        True
    """
    m = _image_map(f, inputs, device)
    idx = _pixel_indices(pixels, m.out_shape)
    flat = np.ravel_multi_index(tuple(idx.T), m.out_shape)
    p = len(flat)
    E = torch.zeros((m.n, m.d_out, p), dtype=torch.float64, device=m.inputs.device)
    E[:, torch.as_tensor(flat, device=E.device), torch.arange(p, device=E.device)] = 1.0
    rows = _vjp_function(m)(E, chunk_size)  # (n, d_in, p)
    y = m.inputs.reshape(m.n, -1).to(torch.float64)
    out = m.outputs.reshape(m.n, -1).to(torch.float64)[:, torch.as_tensor(flat, device=E.device)]
    return AdaptiveFilters(
        pixels=idx,
        filters=_np(rows.transpose(1, 2).reshape(m.n, p, *m.in_shape)),
        outputs=_np(out),
        filter_dot_input=_np((rows * y[:, :, None]).sum(dim=1)),
        filter_sums=_np(rows.sum(dim=1)),
    )


def _pixel_indices(pixels: Any, out_shape: tuple[int, ...]) -> np.ndarray:
    """Pixels as an (n_pixels, len(out_shape)) int array, checked against out_shape."""
    try:
        arr = np.asarray(pixels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"pixels must be integer indices; could not convert: {exc}") from None
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim == 1 and (len(out_shape) != 1 or arr.size == 0):
        if arr.size == 0:
            raise ShapeError("pixels is empty")
        if (arr < 0).any() or (arr >= math.prod(out_shape)).any():
            raise ShapeError(f"flat pixel indices must be in [0, {math.prod(out_shape)}); got {arr.tolist()}")
        return np.stack(np.unravel_index(arr, out_shape), axis=1)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != len(out_shape) or arr.shape[0] == 0:
        raise ShapeError(
            f"pixels must be index tuples of length {len(out_shape)} into out_shape {out_shape}; got shape "
            f"{arr.shape}"
        )
    bad = (arr < 0) | (arr >= np.asarray(out_shape))
    if bad.any():
        raise ShapeError(f"pixel {arr[bad.any(axis=1)][0].tolist()} is outside out_shape {out_shape}")
    return arr


__all__ += [
    "jacobian_svd",
    "JacobianSVD",
    "effective_dimension",
    "euler_test",
    "EulerTest",
    "adaptive_filters",
    "AdaptiveFilters",
]
