"""Top-k singular pairs of the Jacobians J(y) of a network at a batch of inputs, in bounded memory.

J(y) is never formed: block Lanczos bidiagonalization with Jacobian-vector and vector-Jacobian products
(:func:`jacobian_svd`). The vjp products are shared with :mod:`linlens.jacobian.local`.

Example:
    >>> import torch
    >>> A = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    >>> res = jacobian_svd(lambda x: x @ A.T, torch.ones(1, 3, dtype=torch.float64), k=2)
    >>> res.singular_values.round(6).tolist()
    [[3.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ModelError
from linlens.jacobian._prepare import _image_map, _ImageMap, _np
from linlens.jacobian.memory import FIXED_OVERHEAD, _saved_bytes

__all__ = ["jacobian_svd", "JacobianSVD"]


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
    return out.detach().reshape(n, b, m.d_out).transpose(1, 2).to(torch.float64)


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
        return out.detach().reshape(n, b, m.d_in).transpose(1, 2).to(torch.float64)

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


#: Safety factor on the products' working memory (the model's activations), as in :mod:`linlens.jacobian.memory`.
_SAFETY = 1.5

#: Blocks of b float64 vectors (of the larger side, per input) alive at once besides the basis: the new blocks
#: V_new, W, U_new and Z, their projected copies and the factors of the SVD in ``_orth_block``.
_WORK_BLOCKS = 8


@dataclass(frozen=True)
class _Plan:
    """Block size b, vectors per vmapped jvp call and the largest basis (vectors per side) for a budget."""

    block_size: int
    chunk_size: int | None
    max_basis: int | None  # None: no restart (no budget)
    need_min: int  # bytes of the smallest plan that fits (reported when the budget is too small)


def _plan(m: _ImageMap, k: int, b0: int, b_given: bool, chunk_size: int | None, max_memory: float | None) -> _Plan:
    """Size the block, the jvp chunk and the Lanczos basis from ``max_memory`` (bytes) with the memory model of
    :func:`jacobian_svd`; the budget too small for k + b basis vectors → ConfigError naming the least that fits."""
    if max_memory is None:
        return _Plan(b0, chunk_size, None, 0)
    if not (isinstance(max_memory, (int, float, np.integer, np.floating)) and max_memory > 0):
        raise ConfigError(f"max_memory must be a positive number of bytes; got {max_memory!r}")
    a = _saved_bytes(m.f, m.inputs)  # bytes autograd saves in one forward pass of the n inputs
    vec = 8 * m.n * (m.d_in + 2 * m.d_out)  # one basis dimension: v, u and J v in float64
    blk = 8 * m.n * max(m.d_in, m.d_out)

    def fixed(b: int, c: int) -> float:  # everything but the basis
        return FIXED_OVERHEAD + _SAFETY * (2 + c) * a + _WORK_BLOCKS * blk * b

    best = None
    for b in [b0] if b_given else range(b0, 0, -1):
        extra = k + b  # kept Ritz vectors at a restart, or the final singular vectors, beside the basis
        floor = fixed(b, 1) + (2 * k + 2 * b) * vec  # a basis of k + b vectors and one jvp at a time
        best = floor if best is None else min(best, floor)
        if floor > max_memory:
            continue
        c = min(b, chunk_size) if chunk_size is not None else b
        while c > 1 and fixed(b, c) + (2 * k + 2 * b) * vec > max_memory:
            c -= 1
        max_basis = int((max_memory - fixed(b, c)) // vec) - extra
        return _Plan(b, c, max_basis, int(floor))
    raise ConfigError(
        f"max_memory={float(max_memory):.0f} bytes is too small for the top-{k} of a Jacobian of d_in = {m.d_in}, "
        f"d_out = {m.d_out} at {m.n} input(s): a basis of k + b vectors and one product at a time need at least "
        f"{int(best or 0)} bytes"
    )


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
        n_restarts: thick restarts of the basis (0 when it never reached ``max_basis``).
        max_basis: largest basis (vectors per side) allowed by ``max_memory``; None without a budget.

    ``to_dict()`` leaves out the singular vectors unless ``include_vectors=True``.

    Example:
        >>> import torch
        >>> A = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
        >>> res = jacobian_svd(lambda x: x @ A.T, torch.ones(1, 2, dtype=torch.float64), k=1)
        >>> res.left_vectors.shape, res.right_vectors.shape, bool(res.converged.all())
        ((1, 1, 3), (1, 1, 2), True)
        >>> sorted(set(res.to_dict()) & {"singular_values", "left_vectors", "error_bounds"})
        ['error_bounds', 'singular_values']
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
    n_restarts: int = 0
    max_basis: int | None = None

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
    max_memory: float | None = None,
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

    With ``max_memory`` the basis is bounded: when it would grow past ``max_basis`` vectors per side it is
    thick-restarted (Baglama & Reichel, below): the top p = max(k, min(k + b, max_basis − b)) Ritz triplets are
    kept, V' = V R_p, U' = U P_p, J V' = (J V) R_p = U' Σ_p exactly, and the Krylov relation
    Jᵀ U' = V' Σ_p + Z P_p[last block] keeps the residual estimate valid, so the iteration goes on from the
    residual block Z. Memory model (bytes; n inputs, a = bytes autograd saves in one forward pass of the n
    inputs, measured; c = tangents per vmapped jvp call)::

        peak ≈ FIXED_OVERHEAD + 1.5 · (2 + c) · a             (the vjp's saved pass, c tangents of it in a jvp)
             + 8 · 8 · n · max(d_in, d_out) · b               (eight float64 blocks: new blocks, copies, SVD)
             + (max_basis + k + b) · 8 · n · (d_in + 2 d_out)  (basis V, U and J V; kept Ritz vectors)

    from which b (the largest ≤ the default that fits a basis of k + b vectors), then c (≤ b) and then
    ``max_basis`` are chosen. Model weights and the inputs themselves are not counted. Without a budget the
    basis grows to ``max_iter`` blocks. Products are taken outside autograd's graph: a module whose parameters
    require grad would otherwise keep every product's activations alive through the basis (the cause of
    2.0 GB at 64×64 and > 20 GB at 256×256 for a 5-layer CNN before this was fixed).

    The floor of the reachable residual is the model's precision: about 1e-7 · σ_1 for float32 models.

    References:
        Randomized block Krylov methods for stronger and faster approximate singular value decomposition
        (Musco & Musco, 2015), https://arxiv.org/abs/1504.05477
        Calculating the singular values and pseudo-inverse of a matrix (Golub & Kahan, 1965),
        https://doi.org/10.1137/0702016
        Augmented implicitly restarted Lanczos bidiagonalization methods (Baglama & Reichel, 2005),
        https://doi.org/10.1137/04060593X

    Arguments:
        f: module or callable on batches, (n_inputs, *in_shape) → (n_inputs, *out_shape).
        inputs: (n_inputs, *in_shape) numpy array or tensor; ``y[None]`` for one input y.
        k: number of singular triplets, 1 ≤ k ≤ min(d_in, d_out).
        block_size: vectors per block; default min(max(k, 2), 8). A block of b vectors resolves singular
            values of multiplicity up to b; smaller blocks need fewer products in all (deblurring CNN,
            128×128 image, top-32 to tol 1e-3: 504 products with b = 4, 608 with b = 8, 1232 with b = 40;
            b = 1 missed a repeated singular value), larger ones need fewer sequential iterations.
        tol: relative residual target (against σ_1 of the same input).
        max_iter: largest number of block iterations, counted over all restarts (a small ``max_memory`` needs
            more of them).
        seed: seed of the random start block.
        chunk_size: vectors per ``vmap`` call (bounds the memory of one block of products); None = a block
            (or what ``max_memory`` allows). On the CPU the vector-Jacobian products run one at a time anyway.
        max_memory: bytes of working memory for the call (see the model above); None = no bound (the basis
            grows to ``max_iter`` blocks). Too small for a basis of k + b vectors → ConfigError.
        device: where numpy inputs go when ``f`` has no parameters ("auto": the CPU,
            :func:`linlens.nn.model_device`); a module's own device wins. Results come back as float64 numpy arrays.

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
    plan = _plan(m, k, b, block_size is not None, chunk_size, max_memory)
    b, chunk_size, max_basis = plan.block_size, plan.chunk_size, plan.max_basis
    with torch.no_grad():  # products outside autograd's graph (torch.func ignores an outer no_grad)
        return _block_lanczos(m, k, b, tol, max_iter, seed, chunk_size, max_basis)


def _block_lanczos(
    m: _ImageMap, k: int, b: int, tol: float, max_iter: int, seed: int, chunk_size: int | None,
    max_basis: int | None,
) -> JacobianSVD:
    """The iteration of :func:`jacobian_svd` (arguments checked there)."""
    n, dev, f64 = m.n, m.inputs.device, torch.float64
    gen = torch.Generator().manual_seed(int(seed))
    vjp = _vjp_function(m)
    n_restarts = 0

    V_new = _orth_block(torch.randn((n, m.d_in, b), generator=gen, dtype=f64).to(dev), None, gen)
    V = U = AV = B = Z = None
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
        if max_basis is not None and V.shape[-1] + b > max_basis:
            # thick restart: keep the top p Ritz triplets; J V' = U' diag(S_p) and B' = diag(S_p) exactly
            p = max(k, min(k + b, max_basis - b))
            Rp, Pp = Rh[:, :p, :].transpose(1, 2), P[:, :, :p]
            V = V @ Rp
            AV = AV @ Rp
            U = U @ Pp
            B = torch.diag_embed(S[:, :p])
            n_restarts += 1
        V_new = _orth_block(Z[..., : min(b, room)] if room < b else Z, V, gen)
    dim = V.shape[-1]
    k_eff = min(k, dim)
    Pk, Sk, Rk = P[:, :, :k_eff], S[:, :k_eff], Rh[:, :k_eff, :].transpose(1, 2)
    u, v, Jv = U @ Pk, V @ Rk, AV @ Rk  # (n, d_out, k), (n, d_in, k), J v = (J V) R exactly
    del U, V, AV, Z  # the basis goes before the last products (counted in the memory model)
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
        n_restarts=int(n_restarts),
        max_basis=max_basis,
    )
