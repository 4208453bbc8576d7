"""Dense Jacobians of a network at every input, batched in chunks within a memory budget.

``jacobians(f, x)`` returns the (n_samples, d_out, d_in) Jacobians of ``f`` at every row of ``x`` with
``torch.func`` (``vmap`` of ``jacrev`` or ``jacfwd``), processed in chunks of samples sized by the memory model
of :mod:`linlens.jacobian.memory`. ``jacobian_frobenius_sq`` gives ‖J(x)‖_F² per sample (exact or
Hutchinson), differentiable for Jacobian penalties.

``f`` may be a module or callable working on batches (n, d_in) → (n, d_out) (the common case; each output
row must depend only on its own input row, so put BatchNorm/Dropout models in ``eval()`` mode first), or a
function of one sample (d_in,) → (d_out,). Which of the two is detected by one probe call.


Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    >>> J = jacobians(lambda x: x @ A.T, torch.randn(5, 3))
    >>> J.shape, bool(torch.allclose(J[0], A))
    (torch.Size([5, 2, 3]), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from linlens.errors import ConfigError, ModelError, ShapeError
from linlens.jacobian._prepare import _prepare, _Prepared, _resolve_mode, _to_input
from linlens.jacobian.memory import _chunk_from_budget

__all__ = ["jacobians", "jacobian_frobenius_sq"]


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
    with the memory model of :mod:`linlens.jacobian.memory`.

    Arguments:
        f: ``nn.Module`` or callable on batches (n, d_in) → (n, d_out), or on one sample (d_in,) → (d_out,).
        x: inputs (n_samples, d_in), numpy or torch. A numpy ``x`` is converted to the module's device and
            dtype; a torch ``x`` keeps its device (floating dtype cast to the module's parameters' dtype).
        chunk_size: samples per chunk; overrides ``max_memory``.
        max_memory: bytes for the whole call, result included; the working memory of one chunk is also
            capped at :data:`~linlens.jacobian.memory.DEFAULT_WORK_MEMORY` (a bound, not a target: larger chunks
            are not faster).
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
