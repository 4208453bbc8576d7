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

from linlens.errors import ConfigError, ModelError, NonFiniteError, NotFittedError, ShapeError
from linlens.linalg import gap_at, numerical_rank
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


def _to_input(f: Any, x: Any, name: str = "x") -> Tensor:
    """x as a 2-D floating tensor on the right device/dtype; NaN → NonFiniteError."""
    p = _module_param(f)
    if is_torch(x):
        t = x
        if p is not None and t.is_floating_point() and p.is_floating_point() and t.dtype != p.dtype:
            t = t.to(p.dtype)
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name} must be a numeric array; could not convert: {exc}") from None
        if not np.issubdtype(arr.dtype, np.number):
            raise ShapeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
        t = torch.as_tensor(arr)
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
        from linlens.errors import EmptyInputError

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
    from linlens.scale import block_ranges, check_block_finite, is_dask

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
        device: str | torch.device = "cpu",
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
                from linlens.nn import resolve_device

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
            from linlens.errors import EmptyInputError

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
            :class:`LocalVsGlobal` with per-sample ``relative_distance`` and ``max_angle`` (radians).

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
        Qc = _top_right_basis(Ct, int(k))
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
            angles.append(_max_principal_angle(_top_right_basis(J, int(k)), Qc).numpy())
            if half is not None:
                wdists.append((torch.linalg.matrix_norm((J.to(torch.float64) - Ct) @ half)
                               / max(c_weighted, 1e-300)).numpy())
        if not dists:
            from linlens.errors import EmptyInputError

            raise EmptyInputError("X has no samples")
        return LocalVsGlobal(np.concatenate(dists), np.concatenate(angles), int(k),
                             np.concatenate(wdists) if wdists else None, gap_at(info.singular_values, int(k)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_samples_seen_"):
            raise NotFittedError("JacobianField is not fitted; call fit(X) first")
