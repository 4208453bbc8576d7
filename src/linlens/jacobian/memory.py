"""The memory model that sizes chunks of samples for dense Jacobians.

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
    >>> estimate_chunk_size(torch.nn.Linear(3, 2), torch.randn(10, 3), max_memory=1e8)
    10
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from linlens.errors import ConfigError
from linlens.jacobian._prepare import _prepare, _Prepared, _resolve_mode, _to_input

__all__ = ["estimate_chunk_size", "DEFAULT_WORK_MEMORY", "FIXED_OVERHEAD"]


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
    """Measured per-sample activation cost ``a`` of the memory model (module docstring)."""
    try:
        if prep.is_batched:
            a1 = _saved_bytes(prep.batched, x[:1])
            a2 = _saved_bytes(prep.batched, x[[0, 0]])
            return max(a2 - a1, 0)
        return _saved_bytes(prep.per_sample, x[0])
    except Exception:  # noqa: BLE001 - estimate only; fall back to a size-based guess
        return 4 * (prep.d_in + prep.d_out) * x.element_size()


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
