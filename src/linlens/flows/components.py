"""Local covariance and un-whitened components read off a flow encoder's Jacobian, and sign alignment.

With J(x) = ∂z/∂x = U diag(s) Vᵀ the flow's local Gaussian approximation has covariance
Σ(x) = (JᵀJ)⁻¹ = V diag(1/s²) Vᵀ — computed from the SVD, never by inverting JᵀJ (that would square the
condition number). The authors' un-whitened components are ẑ = diag(1/s) Uᵀ z, ordered by decreasing local
standard deviation 1/s, with scikit-learn's ``svd_flip`` sign convention (in each column of U the entry of
largest magnitude is positive). For a linear flow they are exactly the PCA scores Vᵀ(x − μ).

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496

Example:
    >>> import torch
    >>> from linlens.flows.models import LinearFlow
    >>> f = LinearFlow(2, init_scale=None).double()
    >>> with torch.no_grad(): _ = f.weight.copy_(torch.diag(torch.tensor([2.0, 0.5], dtype=torch.float64)))
    >>> local_covariance(f, [[0.0, 0.0]]).local_std.round(3).tolist()
    [[2.0, 0.5]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linlens.errors import ConfigError, ModelError, ShapeError
from linlens.flows._autodiff import jacobian_from_graph
from linlens.flows.models import as_encoder, encode
from linlens.linalg import fix_signs, numerical_ranks
from linlens.validation import as_array

__all__ = [
    "encoder_jacobians",
    "LocalCovariance",
    "local_covariance",
    "UnwhitenedComponents",
    "unwhitened_components",
    "align_signs",
]


def _model_dtype_device(enc: Any) -> tuple[torch.dtype, torch.device]:
    for p in getattr(enc, "parameters", lambda: [])():
        return p.dtype, p.device
    return torch.float64, torch.device("cpu")


def encoder_jacobians(encoder: Any, X: Any, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Latents and encoder Jacobians J(x) = ∂z/∂x at every row of ``X``.

    Arguments:
        encoder: a flow encoder (x → (z, logabsdet)).
        X: inputs ``(n_samples, d)``; NaN/Inf rejected.
        batch_size: rows per batch (memory is batch_size · d² numbers).

    Returns:
        ``(z, J)``: float64 arrays of shapes ``(n_samples, d)`` and ``(n_samples, d, d)``.

    Example:
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(2).double()
        >>> z, J = encoder_jacobians(f, [[1.0, 2.0]])
        >>> bool(np.allclose(J[0], f.weight.detach().numpy()))
        True
    """
    enc = as_encoder(encoder)
    Xn = as_array(X, "X", ndim=2)
    dtype, dev = _model_dtype_device(enc)
    zs, Js = [], []
    for start in range(0, Xn.shape[0], batch_size):
        x = torch.as_tensor(Xn[start:start + batch_size], dtype=dtype, device=dev).requires_grad_(True)
        with torch.enable_grad():
            z, _ = encode(enc, x)
            J = jacobian_from_graph(z, x)
        zs.append(z.detach().cpu().double().numpy())
        Js.append(J.detach().cpu().double().numpy())
    if not zs:
        d = Xn.shape[1]
        return np.zeros((0, d)), np.zeros((0, d, d))
    return np.concatenate(zs), np.concatenate(Js)


def _singular_mask(s: np.ndarray, tol: float | None, dtype: torch.dtype) -> np.ndarray:
    d = s.shape[1]
    return ~np.isfinite(s).all(axis=1) | (numerical_ranks(s, tol=tol, shape=(d, d), dtype=dtype)[0] < d)


def _check_on_singular(on_singular: str) -> None:
    if on_singular not in ("raise", "mask"):
        raise ConfigError(f"on_singular must be 'raise' or 'mask'; got {on_singular!r}")


def _jacobian_svd(encoder: Any, X: Any, tol: float | None, on_singular: str, jacobians: Any = None):
    _check_on_singular(on_singular)
    enc = as_encoder(encoder)
    z, J = encoder_jacobians(enc, X) if jacobians is None else (np.asarray(jacobians[0]), np.asarray(jacobians[1]))
    if J.shape[1] != J.shape[2]:  # pragma: no cover - encode() already enforces square maps
        raise ShapeError(f"encoder Jacobian must be square (d × d); got {J.shape[1:]}")
    if not np.isfinite(J).all():
        bad = int(np.argwhere(~np.isfinite(J).all(axis=(1, 2)))[0, 0])
        raise ModelError(f"encoder Jacobian has NaN/Inf values (first at row {bad}); the encoder is not usable there")
    U, s, Vt = np.linalg.svd(J)
    U, Vt = fix_signs(U, Vt)
    singular = _singular_mask(s, tol, _model_dtype_device(enc)[0])
    if singular.any() and on_singular == "raise":
        i = int(np.argmax(singular))
        raise ModelError(
            f"encoder Jacobian is singular at {int(singular.sum())} of {len(s)} points (first at row {i}, "
            f"σ_min/σ_max = {s[i, -1] / max(s[i, 0], 1e-300):.3g}): the encoder is not invertible there; "
            "pass on_singular='mask' to get NaN for those rows"
        )
    inv_s = np.full_like(s, np.nan)
    np.divide(1.0, s, out=inv_s, where=~singular[:, None])
    return z, U, s, Vt, inv_s, singular


@dataclass(frozen=True)
class LocalCovariance:
    """Local Gaussian approximation Σ(x) = V diag(1/s²) Vᵀ of a flow at each point.

    Attributes:
        covariance: ``(n_samples, d, d)``; NaN rows where J is singular.
        local_std: local standard deviations 1/s ``(n_samples, d)``, descending.
        directions: ``(n_samples, d, d)``; column k is the input-space direction of ``local_std[:, k]``.
        singular_values: singular values s of J ``(n_samples, d)``, descending.
        singular: ``(n_samples,)`` True where J is numerically singular (σ_min ≤ tol σ_max).

    Example:
        >>> import torch
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(2, init_scale=None).double()  # z = x: unit local std everywhere
        >>> with torch.no_grad():
        ...     _ = f.weight.copy_(torch.diag(torch.tensor([0.5, 4.0], dtype=torch.float64)))
        >>> lc = local_covariance(f, np.zeros((3, 2)))
        >>> lc.local_std[0].tolist(), lc.to_dict()["n_singular"]
        ([2.0, 0.25], 0)
    """

    covariance: np.ndarray
    local_std: np.ndarray
    directions: np.ndarray
    singular_values: np.ndarray
    singular: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, written by hand on purpose: counts and medians, not the per-sample arrays."""
        ok = ~self.singular
        return {
            "n_samples": int(len(self.singular)),
            "n_singular": int(self.singular.sum()),
            "median_local_std": np.median(self.local_std[ok], axis=0).tolist() if ok.any() else None,
            "median_sigma_max": float(np.median(self.singular_values[:, 0])) if len(ok) else None,
        }


def local_covariance(
    encoder: Any, X: Any, *, tol: float | None = None, on_singular: str = "raise", jacobians: Any = None
) -> LocalCovariance:
    """Local covariance of a flow, Σ(x) = (JᵀJ)⁻¹ = V diag(1/s²) Vᵀ from the SVD of J(x) = ∂z/∂x.

    References:
        | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
        | https://arxiv.org/abs/1907.06496

    Arguments:
        encoder: a flow encoder.
        X: points ``(n_samples, d)``.
        tol: J counts as singular when σ_min ≤ tol · σ_max (default d · eps of the model's dtype).
        on_singular: ``"raise"`` (ModelError naming the first singular row) or ``"mask"`` (NaN rows, flagged
            in ``singular``); never divides by zero.
        jacobians: ``(z, J)`` from :func:`encoder_jacobians` at ``X``, to reuse them (the encoder is not run).

    Returns:
        :class:`LocalCovariance`.

    Example:
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(3).double()
        >>> lc = local_covariance(f, np.zeros((2, 3)))
        >>> W = f.weight.detach().numpy()
        >>> bool(np.allclose(lc.covariance[0], np.linalg.inv(W.T @ W)))
        True
    """
    _, _, s, Vt, inv_s, singular = _jacobian_svd(encoder, X, tol, on_singular, jacobians)
    V = np.swapaxes(Vt, 1, 2)[:, :, ::-1]
    std = inv_s[:, ::-1]
    cov = (V * std[:, None, :] ** 2) @ np.swapaxes(V, 1, 2)  # V diag(std²) Vᵀ per point, batched BLAS
    return LocalCovariance(cov, np.ascontiguousarray(std), np.ascontiguousarray(V), s, singular)


@dataclass(frozen=True)
class UnwhitenedComponents:
    """Un-whitened components ẑ = diag(1/s) Uᵀ z, top component (largest local std) first.

    Attributes:
        components: ``(n_samples, d)`` — the authors' ``Y_hat``.
        local_std: ``(n_samples, d)`` local standard deviation 1/s of each component.
        directions: ``(n_samples, d, d)``; column k is the input-space direction (right singular vector) of
            component k.
        latent_directions: ``(n_samples, d, d)``; column k is the latent direction (left singular vector).
        singular: ``(n_samples,)`` True where J is singular (NaN rows).

    Example:
        >>> import torch
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(2, init_scale=None).double()
        >>> with torch.no_grad():
        ...     _ = f.weight.copy_(torch.diag(torch.tensor([0.5, 4.0], dtype=torch.float64)))
        >>> uc = unwhitened_components(f, np.array([[2.0, 1.0]]))  # components: x along each local direction
        >>> np.abs(uc.components).tolist(), uc.local_std.tolist()
        ([[2.0, 1.0]], [[2.0, 0.25]])
    """

    components: np.ndarray
    local_std: np.ndarray
    directions: np.ndarray
    latent_directions: np.ndarray
    singular: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, written by hand on purpose: counts, variances and medians, not the arrays."""
        ok = ~self.singular
        return {
            "n_samples": int(len(ok)),
            "n_singular": int((~ok).sum()),
            "component_variance": self.components[ok].var(axis=0).tolist() if ok.any() else None,
            "median_local_std": np.median(self.local_std[ok], axis=0).tolist() if ok.any() else None,
        }


def unwhitened_components(
    encoder: Any, X: Any, *, tol: float | None = None, on_singular: str = "raise", jacobians: Any = None
) -> UnwhitenedComponents:
    """Un-whitened latent components by the authors' algorithm: ẑ_i = diag(1/s_i) U_iᵀ g(x_i), reversed.

    Signs: scikit-learn's ``svd_flip`` on U (largest-|entry| of each column positive); order: decreasing local
    standard deviation 1/s (the authors' ``Y_hat[:, ::-1]``). For a linear flow these are the PCA scores.

    References:
        | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
        | https://arxiv.org/abs/1907.06496

    Arguments:
        encoder: a flow encoder.
        X: data ``(n_samples, d)``.
        tol: singularity threshold on σ_min/σ_max (default d · eps of the model's dtype).
        on_singular: ``"raise"`` or ``"mask"`` (NaN rows flagged in ``singular``).
        jacobians: ``(z, J)`` from :func:`encoder_jacobians` at ``X``, to reuse them (the encoder is not run).

    Returns:
        :class:`UnwhitenedComponents`.

    Example:
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(2).double()
        >>> unwhitened_components(f, np.eye(2)).components.shape
        (2, 2)
    """
    z, U, _, Vt, inv_s, singular = _jacobian_svd(encoder, X, tol, on_singular, jacobians)
    proj = np.einsum("nij,ni->nj", U, z)  # Uᵀ z
    comps = (inv_s * proj)[:, ::-1]
    return UnwhitenedComponents(
        np.ascontiguousarray(comps),
        np.ascontiguousarray(inv_s[:, ::-1]),
        np.ascontiguousarray(np.swapaxes(Vt, 1, 2)[:, :, ::-1]),
        np.ascontiguousarray(U[:, :, ::-1]),
        singular,
    )


def align_signs(X: Any, vectors: Any, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Make per-point vector signs consistent across neighbouring points (within ``radius``).

    Method: a maximum spanning tree of the radius-neighbour graph weighted by |⟨u_a, u_b⟩|, then signs
    propagated from a root (the lowest index of each connected component) along the tree so each vector agrees
    with its tree parent. Chosen over the authors' relaxed Markov random field (Adam on sigmoid beliefs): it is
    exact on the tree, deterministic, has no learning rate or epochs, and by using the most parallel pairs
    first it avoids propagating flips through points where directions are ambiguous (singular values cross).
    The root keeps its sign, so the result is unique up to one global sign per connected component.

    Arguments:
        X: points ``(n_samples, d)`` defining the neighbourhoods.
        vectors: one vector per point ``(n_samples, m)``, or k per point ``(n_samples, m, k)`` (columns aligned
            independently, e.g. ``UnwhitenedComponents.directions``).
        radius: neighbour distance (> 0).

    Returns:
        ``(aligned, signs)``: aligned vectors (shape of ``vectors``) and signs ±1 ``(n_samples,)`` or
        ``(n_samples, k)``.

    Example:
        >>> X = np.array([[0.0], [1.0], [2.0]])
        >>> v = np.array([[1.0, 0.1], [-1.0, -0.2], [1.0, 0.3]])
        >>> align_signs(X, v, radius=1.5)[1].tolist()
        [1.0, -1.0, 1.0]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
    from sklearn.neighbors import radius_neighbors_graph  # lazy (with scipy.sparse): ~1 s, only needed here

    Xn = as_array(X, "X", ndim=2)
    V = as_array(vectors, "vectors", ndim=(2, 3))
    if V.shape[0] != Xn.shape[0]:
        raise ShapeError(f"vectors must have one row per point of X ({Xn.shape[0]}); got {V.shape[0]}")
    if not radius > 0:
        raise ConfigError(f"radius must be > 0; got {radius}")
    single = V.ndim == 2
    V3 = V[:, :, None] if single else V
    n, _, k = V3.shape
    A = radius_neighbors_graph(Xn, radius, mode="connectivity", include_self=False).tocoo()
    rows, cols = A.row, A.col
    signs = np.ones((n, k))
    for j in range(k):
        u = V3[:, :, j]
        norms = np.linalg.norm(u, axis=1)
        norms[norms == 0] = 1.0
        cos = np.abs(np.einsum("ei,ei->e", u[rows], u[cols])) / (norms[rows] * norms[cols])
        # MST minimises: weight 1 − |cos| (+ tiny offset so that exactly parallel pairs stay edges)
        G = csr_matrix((1.0 - cos + 1e-12, (rows, cols)), shape=(n, n))
        T = minimum_spanning_tree(G)
        T = T + T.T
        n_comp, labels = connected_components(T, directed=False)
        for c in range(n_comp):
            root = int(np.flatnonzero(labels == c)[0])
            order, pred = breadth_first_order(T, root, directed=False, return_predecessors=True)
            for node in order[1:]:
                p = pred[node]
                signs[node, j] = signs[p, j] * (1.0 if float(u[node] @ u[p]) >= 0 else -1.0)
    aligned = V3 * signs[:, None, :]
    if single:
        return aligned[:, :, 0], signs[:, 0]
    return aligned, signs
