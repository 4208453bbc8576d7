"""Bases at a point of a fiber: the prebasis along the bars, the layer decomposition, tangent and normal spaces.

The prebasis of layer ``j`` has one vector per bar through ``j``; ``W_{j+1}`` maps each vector to the same
bar's vector at layer ``j+1``, or to 0 where the bar ends (the "fundamental theorem of linear networks":
each layer splits into the subspaces ``U_j^{[a,b]}`` of information born at ``a`` and killed after ``b``).
The tangent space of the stratum is the image of the Lie algebra of ``{(G_0..G_L): G_L W G_0^{-1} = W}``,
``(X_k W_k − W_k X_{k−1})_k``; the normal space is its orthogonal complement (Frobenius inner product).

References:
    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855

    | Factoring Matrices into Linear Neural Networks (Bhattacharya & Shewchuk, UCB/EECS-2022-92)
    | https://www2.eecs.berkeley.edu/Pubs/TechRpts/2022/EECS-2022-92.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from linlens.errors import ConfigError
from linlens.fibers.barcode import Bar, Stratum
from linlens.fibers.network import LinearNetwork
from linlens.linalg import default_tol, numerical_rank

__all__ = [
    "Prebasis",
    "prebasis",
    "subspace_A",
    "subspace_B",
    "tangent_basis",
    "normal_basis",
    "tangent_normal",
    "orthogonal_complement",
]


# ---------------------------------------------------------------------------------------------- helpers
def _col(M: np.ndarray, r: int) -> np.ndarray:
    """Orthonormal basis of the leading ``r``-dimensional column space of ``M``."""
    if r == 0:
        return np.zeros((M.shape[0], 0))
    U, _, _ = np.linalg.svd(M, full_matrices=False)
    return U[:, :r]


def _null(M: np.ndarray, dim: int) -> np.ndarray:
    """Orthonormal basis of the ``dim``-dimensional (numerical) null space of ``M``."""
    n = M.shape[1]
    if dim == 0:
        return np.zeros((n, 0))
    if dim == n:
        return np.eye(n)
    _, _, Vt = np.linalg.svd(M, full_matrices=True)
    return Vt[n - dim :].T


def _intersect(P: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    """``k``-dimensional intersection of the spans of orthonormal ``P`` and ``Q`` (principal vectors, cos≈1)."""
    if k == 0 or P.shape[1] == 0 or Q.shape[1] == 0:
        return np.zeros((P.shape[0], 0))
    U, _, _ = np.linalg.svd(P.T @ Q)
    return P @ U[:, :k]


def orthogonal_complement(N: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``(D, D − k)`` of the orthogonal complement of the orthonormal columns ``N`` ``(D, k)``.

    Picks ``k`` coordinates where ``N`` is well conditioned (LU row pivoting, pivoted QR as fallback), projects
    the other ``D − k`` coordinate vectors off ``N`` and orthonormalizes them symmetrically (Löwdin) through a
    ``k × k`` eigenproblem: one ``O(D k (D − k))`` product instead of a full ``D × D`` QR.

    Example:
        >>> N = np.array([[1.0], [1.0]]) / np.sqrt(2)
        >>> T = orthogonal_complement(N)
        >>> T.shape, abs(float((N.T @ T)[0, 0])) < 1e-15
        ((2, 1), True)
    """
    D, k = N.shape
    if k == 0:
        return np.eye(D)
    if k >= D:
        return np.zeros((D, 0))
    p_idx, _, _ = sla.lu(N, p_indices=True)  # N = L[p_idx] @ U: rows with p_idx < k are the pivot rows
    P = np.argsort(p_idx)[:k]
    s_min = np.linalg.svd(N[P], compute_uv=False)[-1]
    if s_min < 1e-3:
        _, _, piv = sla.qr(N.T, pivoting=True, mode="economic")
        P = piv[:k]
    mask = np.ones(D, dtype=bool)
    mask[P] = False
    E = np.flatnonzero(mask)
    M = N[E].T  # (k, m): the unit vectors e_E projected onto span(N)
    # B = e_E − N M spans the complement; BᵀB = I − MᵀM. Symmetric orthonormalization T = B (I − MᵀM)^{-1/2}
    # = e_E + (H − N) M with H = B Mᵀ F and F = f(M Mᵀ), f(x) = ((1 − x)^{-1/2} − 1) / x (→ 1/2 at 0):
    # one (D, k) × (k, m) product instead of an SVD of M and three large products.
    lam, Uk = np.linalg.eigh(M @ M.T)
    lam = np.clip(lam, 0.0, 1.0 - 1e-300)
    small = lam < 1e-8
    f = np.where(small, 0.5 + 0.375 * lam, np.expm1(-0.5 * np.log1p(-lam)) / np.where(small, 1.0, lam))
    F = (Uk * f) @ Uk.T
    BMt = -(N @ (M @ M.T))
    BMt[E] += M.T
    T = ((BMt @ F) - N) @ M
    T[E, np.arange(E.size)] += 1.0
    return T


# ---------------------------------------------------------------------------------------------- prebasis
@dataclass(frozen=True)
class Prebasis:
    """Per-layer bases adapted to the bars of a network.

    Attributes:
        stratum: the stratum (barcode) the bases were built for.
        bases: ``bases[j]`` is ``(d_j, d_j)``; its columns follow ``stratum.layer_order(j)``.
        labels: ``labels[j][p] = ((a, b), copy)``, the bar of column ``p`` at layer ``j``.
        tol: rank tolerance used.

    Example:
        >>> net = LinearNetwork([np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0]])])
        >>> pb = prebasis(net)
        >>> pb.labels[0], bool(np.allclose(pb.dual(0) @ pb.bases[0], np.eye(2)))
        ((((0, 0), 0), ((0, 1), 0)), True)
    """

    stratum: Stratum
    bases: tuple[np.ndarray, ...]
    labels: tuple[tuple[tuple[Bar, int], ...], ...]
    tol: float | None = None

    def column(self, j: int, bar: Bar, copy: int = 0) -> int:
        """Column index at layer ``j`` of the ``copy``-th vector of ``bar``."""
        return self.labels[j].index((tuple(bar), copy))

    def vector(self, j: int, bar: Bar, copy: int = 0) -> np.ndarray:
        """The prebasis vector ``(d_j,)`` of ``bar`` at layer ``j``."""
        return self.bases[j][:, self.column(j, bar, copy)]

    def dual(self, j: int) -> np.ndarray:
        """Dual basis at layer ``j``: the rows of ``bases[j]^{-1}``, shape ``(d_j, d_j)``."""
        return np.linalg.inv(self.bases[j])

    def subspace(self, j: int, bar: Bar) -> np.ndarray:
        """Basis ``(d_j, ω)`` of ``U_j^{[a,b]}``, the piece of layer ``j`` carried by the bar ``[a, b]``."""
        cols = [p for p, (b, _) in enumerate(self.labels[j]) if b == tuple(bar)]
        return self.bases[j][:, cols]

    def decomposition(self) -> list[dict[str, int]]:
        """Per layer, the dimension of each piece ``U_j^{[a,b]}`` (``{"[a,b]": ω}``)."""
        out = []
        for labs in self.labels:
            dims: dict[str, int] = {}
            for (a, b), _ in labs:
                dims[f"[{a},{b}]"] = dims.get(f"[{a},{b}]", 0) + 1
            out.append(dims)
        return out

    def condition_numbers(self) -> list[float]:
        """Condition number of each layer's basis (large values mean nearly dependent pieces)."""
        return [float(np.linalg.cond(U)) if U.size else 1.0 for U in self.bases]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, written by hand on purpose: decomposition and condition numbers, not the bases."""
        return {
            "stratum": self.stratum.to_dict(),
            "decomposition": self.decomposition(),
            "condition_numbers": self.condition_numbers(),
        }


def prebasis(net: LinearNetwork, tol: float | None = None) -> Prebasis:
    """Bases of every layer along the bars: ``W_{j+1}`` maps each vector to its bar's next vector, or to 0.

    For each bar ``[i, b]``: ``V = `` a complement of ``null W_{b,i} + (col W_{i,i−1} ∩ null W_{b+1,i})`` inside
    ``null W_{b+1,i}`` (dimension ``ω_bi``), and the bar's vectors at layer ``j`` are ``W_{ji} V``. Subspace
    dimensions come from the numerical rank list, so all pieces are consistent.

    Arguments:
        net: the network.
        tol: relative rank tolerance (see :meth:`LinearNetwork.rank_list`).

    Returns:
        :class:`Prebasis`.

    Example:
        >>> net = LinearNetwork([np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0]])])
        >>> pb = prebasis(net)
        >>> pb.stratum.label, np.allclose(net.weights[0] @ pb.vector(0, (0, 1)), pb.vector(1, (0, 1)))
        ('[0,0] [0,1] [1,2]', True)
    """
    st = net.stratum(tol)
    ranks = st.rank_list
    d, L = net.widths, net.L

    def r(j: int, i: int) -> int:
        if i < 0 or j > L:
            return 0
        return d[j] if i == j else ranks[(j, i)]

    cols: list[dict[tuple[Bar, int], np.ndarray]] = [dict() for _ in range(L + 1)]
    for (i, b), w in st.barcode:
        N1 = np.eye(d[i]) if b == L else _null(net.subproduct(b + 1, i), d[i] - r(b + 1, i))
        N0 = np.zeros((d[i], 0)) if b == i else _null(net.subproduct(b, i), d[i] - r(b, i))
        if i == 0:
            C = np.zeros((d[i], 0))
        else:
            colW = _col(net.subproduct(i, i - 1), r(i, i - 1))
            C = _intersect(colW, N1, r(i, i - 1) - r(b + 1, i - 1))
        s_dim = d[i] - r(b, i) - r(b + 1, i - 1) + r(b, i - 1)
        S = _col(np.hstack([N0, C]), s_dim) if s_dim else np.zeros((d[i], 0))
        Mres = N1 - S @ (S.T @ N1)
        V = _col(Mres, w)
        for j in range(i, b + 1):
            Vj = net.subproduct(j, i) @ V
            for c in range(w):
                cols[j][((i, b), c)] = Vj[:, c]
    labels = tuple(tuple(st.layer_order(j)) for j in range(L + 1))
    bases = tuple(np.column_stack([cols[j][key] for key in labels[j]]) for j in range(L + 1))
    return Prebasis(st, bases, labels, tol)


def subspace_A(net: LinearNetwork, k: int, j: int, i: int, tol: float | None = None) -> np.ndarray:
    """Orthonormal basis of ``A_kji = col(W_ji) ∩ null(W_kj)`` in ``R^{d_j}`` (dim ``r_ji − r_ki``).

    Vectors that came from layer ``i`` and are dead by layer ``k`` (``k = L+1``: ``W_{L+1,j} = 0``).

    Example:
        >>> net = LinearNetwork([np.eye(2), np.array([[1.0, 0.0]])])
        >>> subspace_A(net, 2, 1, 0).round(12).tolist()
        [[0.0], [1.0]]
    """
    d, L = net.widths, net.L
    if not 0 <= i <= j <= k <= L + 1 or j > L:
        raise ConfigError(f"subspace_A needs 0 ≤ i ≤ j ≤ k ≤ L+1 = {L + 1}; got k={k}, j={j}, i={i}")
    ranks = net.stratum(tol).rank_list

    def r(b: int, a: int) -> int:
        return 0 if b > L else (d[b] if a == b else ranks[(b, a)])

    colW = _col(net.subproduct(j, i), r(j, i))
    nullW = np.eye(d[j]) if k == L + 1 else _null(net.subproduct(k, j), d[j] - r(k, j))
    return _intersect(colW, nullW, r(j, i) - r(k, i))


def subspace_B(net: LinearNetwork, k: int, j: int, i: int, tol: float | None = None) -> np.ndarray:
    """Orthonormal basis of ``B_kji = col(W_kjᵀ) ∩ null(W_jiᵀ)`` in ``R^{d_j}`` (dim ``r_kj − r_ki``).

    The transposed network's ``A`` spaces (layer order reversed); ``W_{L+1,j} = 0`` makes ``B`` empty for
    ``k = L+1``.

    Example:
        >>> net = LinearNetwork([np.eye(2), np.array([[1.0, 0.0]])])
        >>> subspace_B(net, 2, 1, 0).shape
        (2, 0)
    """
    d, L = net.widths, net.L
    if not 0 <= i <= j <= k <= L + 1 or j > L:
        raise ConfigError(f"subspace_B needs 0 ≤ i ≤ j ≤ k ≤ L+1 = {L + 1}; got k={k}, j={j}, i={i}")
    if k == L + 1:
        return np.zeros((d[j], 0))
    ranks = net.stratum(tol).rank_list

    def r(b: int, a: int) -> int:
        return d[b] if a == b else ranks[(b, a)]

    rowW = _col(net.subproduct(k, j).T, r(k, j))
    nullWt = _null(net.subproduct(j, i).T, d[j] - r(j, i))
    return _intersect(rowW, nullWt, r(k, j) - r(k, i))


# ---------------------------------------------------------------------------------------------- tangent/normal
def _orbit_generators(net: LinearNetwork, rank: int) -> np.ndarray:
    """Matrix ``(D, n_gen)`` whose columns span the tangent space: hidden elementary ``X_j`` plus a basis of
    the end pairs ``(X_0, X_L)`` with ``X_L W = W X_0``."""
    d, L, Ws = net.widths, net.L, net.weights
    offs = np.concatenate([[0], np.cumsum([w.size for w in Ws])])
    D = int(offs[-1])
    blocks = []
    for j in range(1, L):
        G = np.zeros((D, d[j] * d[j]))
        G[offs[j - 1] : offs[j]] = np.kron(np.eye(d[j]), Ws[j - 1].T)  # X_j W_j
        G[offs[j] : offs[j + 1]] = -np.kron(Ws[j], np.eye(d[j]))  # −W_{j+1} X_j
        blocks.append(G)
    W = net.product()
    d0, dL = d[0], d[L]
    Phi = np.hstack([-np.kron(W, np.eye(d0)), np.kron(np.eye(dL), W.T)])  # (X_0, X_L) ↦ X_L W − W X_0
    K = _null(Phi, d0 * d0 + dL * dL - rank * (d0 + dL - rank))
    E = np.zeros((D, d0 * d0 + dL * dL))
    E[offs[0] : offs[1], : d0 * d0] += -np.kron(Ws[0], np.eye(d0))  # −W_1 X_0
    E[offs[L - 1] : offs[L], d0 * d0 :] += np.kron(np.eye(dL), Ws[L - 1].T)  # X_L W_L
    blocks.append(E @ K)
    return np.hstack(blocks)


def _dmu_transpose(net: LinearNetwork) -> np.ndarray:
    """``dμᵀ`` as a ``(D, d_L d_0)`` matrix: ``Z ↦ (W_{Lk}ᵀ Z W_{k−1,0}ᵀ)_k``."""
    L = net.L
    return np.vstack([np.kron(net.subproduct(L, k).T, net.subproduct(k - 1, 0)) for k in range(1, L + 1)])


def tangent_normal(
    net: LinearNetwork, tol: float | None = None, method: str = "auto", tangent: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal bases of the tangent ``(D, dim S)`` and normal ``(D, codim S)`` spaces of the point's stratum.

    Choice of method:
        ``"orbit"``: SVD of the orbit generators ``(X_k W_k − W_k X_{k−1})`` (any stratum; ``O(D³)``).
        ``"kernel"``: on strata of the expected dimension (no excess codimension) the tangent space is
        ``ker dμ``: an SVD of ``dμᵀ`` ``(D, d_L d_0)`` gives the normal space, and
        :func:`orthogonal_complement` the tangent space. ``"auto"`` uses it when it applies.

    The tangent rank in ``"orbit"`` is decided numerically (cut at ``1e3 · max(shape) · eps · σ_max``), not
    taken from the dimension formula; ``"kernel"`` uses the known rank ``r (d_0 + d_L − r)`` of ``dμ``.

    Arguments:
        net: the network (the point).
        tol: relative rank tolerance for the rank list.
        method: ``"auto"``, ``"orbit"`` or ``"kernel"``.
        tangent: with ``"kernel"``, False skips the tangent basis (returns an empty ``(D, 0)`` array for it).

    Returns:
        ``(T, N)``, orthonormal columns in weight-space coordinates (:meth:`LinearNetwork.flat` order).

    Example:
        >>> net = LinearNetwork([np.array([[2.0]]), np.array([[0.5]])])
        >>> T, N = tangent_normal(net)
        >>> T.shape, N.shape
        ((2, 1), (2, 1))
    """
    if method not in ("auto", "orbit", "kernel"):
        raise ConfigError(f"method must be 'auto', 'orbit' or 'kernel'; got {method!r}")
    st = net.stratum(tol)
    if method == "auto":
        method = "kernel" if st.excess_codim == 0 else "orbit"
    if method == "kernel":
        if st.excess_codim != 0:
            raise ConfigError(
                f"method 'kernel' needs a stratum of the expected dimension; {st.label} has excess codimension "
                f"{st.excess_codim}"
            )
        J = _dmu_transpose(net)
        r = st.rank
        k = r * (net.widths[0] + net.widths[-1] - r)
        # full column rank (square invertible W): a thin QR suffices; otherwise the leading SVD subspace
        N = np.linalg.qr(J)[0] if k == J.shape[1] else _col(J, k)
        return (orthogonal_complement(N) if tangent else np.zeros((net.weight_dim, 0))), N
    A = _orbit_generators(net, st.rank)
    D = net.weight_dim
    if A.shape[1] == 0:
        return np.zeros((D, 0)), np.eye(D)
    U, s, _ = np.linalg.svd(A, full_matrices=True)
    k = numerical_rank(s, tol=1e3 * default_tol(A.shape), shape=A.shape).rank
    return U[:, :k], U[:, k:]


def tangent_basis(net: LinearNetwork, tol: float | None = None, method: str = "auto") -> np.ndarray:
    """Orthonormal basis ``(D, dim S)`` of the tangent space of the stratum at ``net``; see :func:`tangent_normal`.

    Example:
        >>> tangent_basis(LinearNetwork([np.eye(2), np.eye(2)])).shape
        (8, 4)
    """
    return tangent_normal(net, tol, method)[0]


def normal_basis(net: LinearNetwork, tol: float | None = None, method: str = "auto") -> np.ndarray:
    """Orthonormal basis ``(D, codim S)`` of the normal space of the stratum at ``net``; see :func:`tangent_normal`.

    Example:
        >>> normal_basis(LinearNetwork([np.eye(2), np.eye(2)])).shape
        (8, 4)
    """
    return tangent_normal(net, tol, method, tangent=False)[1]
