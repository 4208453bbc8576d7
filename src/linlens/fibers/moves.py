"""Weight-space moves: maps of weight space that keep the product ``W = W_L ⋯ W_1`` fixed.

Within a stratum: hidden-layer GL moves ``(W_{j+1}, W_j) ↦ (W_{j+1} G^{-1}, G W_j)`` and end moves
``(W_L, W_1) ↦ (G_L W_L, W_1 G_0^{-1})`` with ``G_L W G_0^{-1} = W``. Across strata: rank-one moves
``W_k ↦ W_k + t u vᵀ`` (valid when ``W_{Lk} u = 0`` or ``vᵀ W_{k−1,0} = 0``) and the barcode moves they
realize (the combinatorial moves themselves, merge / nest / cut / un-nest, are in ``order.py``).

References:
    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855

    | The Hierarchy of Manifolds in a Stratification of the Set of Equivalent Linear Neural Networks
    | (Bhattacharya & Shewchuk, SoCG 2026) https://doi.org/10.4230/LIPIcs.SoCG.2026.91
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import ConfigError, ShapeError
from linlens.fibers.bases import prebasis
from linlens.fibers.network import LinearNetwork
from linlens.fibers.order import BarcodeMove
from linlens.validation import as_array

__all__ = [
    "gl_move",
    "end_move",
    "rank_one_move",
    "is_valid_rank_one",
    "apply_barcode_move",
]


# ---------------------------------------------------------------------------------------------- weight moves
def gl_move(net: LinearNetwork, layer: int, G: Any) -> LinearNetwork:
    """Hidden-layer move ``(W_{j+1}, W_j) ↦ (W_{j+1} G^{-1}, G W_j)`` at hidden layer ``j = layer``.

    Keeps the product and every rank (it stays on the stratum).

    Example:
        >>> net = LinearNetwork([np.array([[1.0, 2.0]]).T, np.array([[3.0, 4.0]])])
        >>> moved = gl_move(net, 1, np.array([[2.0, 1.0], [0.0, 1.0]]))
        >>> np.allclose(moved.product(), net.product())
        True
    """
    if not 1 <= layer <= net.L - 1:
        raise ConfigError(f"layer must be a hidden layer in [1, {net.L - 1}]; got {layer}")
    Gm = as_array(G, "G")
    d = net.widths[layer]
    if Gm.shape != (d, d):
        raise ShapeError(f"G must have shape ({d}, {d}) for hidden layer {layer}; got {Gm.shape}")
    if np.linalg.cond(Gm) > 1e12:
        raise ConfigError(f"G must be invertible; got condition number {np.linalg.cond(Gm):.3g}")
    ws = list(net.weights)
    ws[layer - 1] = Gm @ ws[layer - 1]
    ws[layer] = np.linalg.solve(Gm.T, ws[layer].T).T
    return LinearNetwork(ws)


def end_move(net: LinearNetwork, G0: Any, GL: Any, atol: float = 1e-10) -> LinearNetwork:
    """End move ``(W_L, W_1) ↦ (G_L W_L, W_1 G_0^{-1})``, valid when ``G_L W G_0^{-1} = W``.

    Raises:
        ConfigError: ``G_L W ≠ W G_0`` (relative to ``‖W‖``, beyond ``atol``).

    Example:
        >>> net = LinearNetwork([np.eye(2), np.diag([1.0, 0.0])])
        >>> moved = end_move(net, np.diag([1.0, 3.0]), np.diag([1.0, 5.0]))
        >>> np.allclose(moved.product(), net.product())
        True
    """
    d0, dL = net.widths[0], net.widths[-1]
    G0m, GLm = as_array(G0, "G0"), as_array(GL, "GL")
    if G0m.shape != (d0, d0):
        raise ShapeError(f"G0 must have shape ({d0}, {d0}); got {G0m.shape}")
    if GLm.shape != (dL, dL):
        raise ShapeError(f"GL must have shape ({dL}, {dL}); got {GLm.shape}")
    W = net.product()
    err = np.linalg.norm(GLm @ W - W @ G0m) / max(np.linalg.norm(W), 1.0)
    if err > atol:
        raise ConfigError(f"end move needs G_L W = W G_0; got relative residual {err:.3g} > {atol:g}")
    ws = list(net.weights)
    if net.L == 1:
        ws[0] = GLm @ np.linalg.solve(G0m.T, ws[0].T).T
    else:
        ws[-1] = GLm @ ws[-1]
        ws[0] = np.linalg.solve(G0m.T, ws[0].T).T
    return LinearNetwork(ws)


def is_valid_rank_one(net: LinearNetwork, k: int, u: Any, v: Any, atol: float = 1e-10) -> bool:
    """Whether ``W_k ↦ W_k + t u vᵀ`` stays in the fiber for all ``t``: ``W_{Lk} u = 0`` or ``vᵀ W_{k−1,0} = 0``.

    Tested relative to the norms involved (``‖W_{Lk}‖ ‖u‖`` and ``‖W_{k−1,0}‖ ‖v‖``).

    Example:
        >>> net = LinearNetwork([np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]])])
        >>> is_valid_rank_one(net, 2, [1.0], [0.0, 1.0]), is_valid_rank_one(net, 2, [1.0], [1.0, 0.0])
        (True, False)
    """
    if not 1 <= k <= net.L:
        raise ConfigError(f"k must be a layer index in [1, {net.L}]; got {k}")
    uu = as_array(u, "u", ndim=1)
    vv = as_array(v, "v", ndim=1)
    if uu.shape != (net.widths[k],):
        raise ShapeError(f"u must have shape ({net.widths[k]},) for W{k}; got {uu.shape}")
    if vv.shape != (net.widths[k - 1],):
        raise ShapeError(f"v must have shape ({net.widths[k - 1]},) for W{k}; got {vv.shape}")
    A = net.subproduct(net.L, k)
    B = net.subproduct(k - 1, 0)
    ok_u = np.linalg.norm(A @ uu) <= atol * max(np.linalg.norm(A, 2) * np.linalg.norm(uu), 1e-300)
    ok_v = np.linalg.norm(vv @ B) <= atol * max(np.linalg.norm(B, 2) * np.linalg.norm(vv), 1e-300)
    return bool(ok_u or ok_v)


def rank_one_move(net: LinearNetwork, k: int, u: Any, v: Any, t: float = 1.0, check: bool = True) -> LinearNetwork:
    """Rank-one move ``W_k ↦ W_k + t u vᵀ``; may change the stratum but never the product.

    Raises:
        ConfigError: with ``check``, when neither ``W_{Lk} u = 0`` nor ``vᵀ W_{k−1,0} = 0``.

    Example:
        >>> net = LinearNetwork([np.array([[1.0], [0.0]]), np.array([[1.0, 0.0]])])
        >>> rank_one_move(net, 2, [1.0], [0.0, 1.0], t=2.0).weights[1].tolist()
        [[1.0, 2.0]]
    """
    if check and not is_valid_rank_one(net, k, u, v):
        raise ConfigError(f"rank-one move on W{k} must satisfy W_L..W_{k + 1} u = 0 or vᵀ W_{k - 1}..W_1 = 0")
    uu = as_array(u, "u", ndim=1)
    vv = as_array(v, "v", ndim=1)
    ws = list(net.weights)
    ws[k - 1] = ws[k - 1] + t * np.outer(uu, vv)
    return LinearNetwork(ws)


def apply_barcode_move(
    net: LinearNetwork, move: BarcodeMove, t: float = 1.0, tol: float | None = None
) -> LinearNetwork:
    """Realize a barcode move at ``net`` by one rank-one change of a single weight matrix.

    With the prebasis ``p`` of ``net`` and its dual basis ``p*`` (rows of the inverse basis):

    * up (merge / nest of ``[a,b]`` with ``[c,d]``): ``W_{b+1} += t · p_{b+1}[c,d] · p*_b[a,b]ᵀ``; for
      ``t ≠ 0`` the point is on the higher stratum, and it tends to ``net`` as ``t → 0``.
    * cut of ``[a,d]`` after ``b``: ``W_{b+1} −= t · p_{b+1}[a,d] · p*_b[a,d]ᵀ``; lands on the lower stratum at
      ``t = 1`` (other ``t ≠ 1`` stay on the stratum).
    * un-nest of ``[a,d] ⊃ [c,b]``: ``W_{b+1} += t · p_{b+1}[a,d] · (p*_b[c,b] − p*_b[a,d])ᵀ``; lower stratum at
      ``t = 1``.

    Arguments:
        net: a point of ``move.source``.
        move: from :func:`barcode_moves`.
        t: the move's parameter.
        tol: rank tolerance used to identify ``net``'s stratum.

    Returns:
        the moved :class:`LinearNetwork` (same product).

    Example:
        >>> from linlens.fibers.barcode import Stratum
        >>> from linlens.fibers.order import barcode_moves
        >>> s = Stratum.from_barcode((1, 1, 1), {(0, 0): 1, (1, 1): 1, (2, 2): 1})
        >>> net = LinearNetwork(s.random_point(seed=0))
        >>> up = barcode_moves(s, "up")[0]
        >>> apply_barcode_move(net, up, t=0.5).stratum() == up.target
        True
    """
    pb = prebasis(net, tol=tol)
    if pb.stratum != move.source:
        raise ConfigError(f"move starts on {move.source.label}; the network is on {pb.stratum.label}")
    (a, b), (c, d) = move.bars
    if move.kind in ("merge", "nest"):
        j = b  # the bar [a,b] ends at layer b; W_{b+1} now continues it along [c,d]
        u = pb.vector(j + 1, (c, d))
        v = pb.dual(j)[pb.column(j, (a, b))]
        coef = t
    elif move.kind == "cut":
        j = c  # cut [a,d] between layers c and c+1
        u = pb.vector(j + 1, (a, b))
        v = pb.dual(j)[pb.column(j, (a, b))]
        coef = -t
    elif move.kind == "unnest":
        j = d  # [c,d] here is the nested bar [c,b'] with b' = d
        u = pb.vector(j + 1, (a, b))
        dual = pb.dual(j)
        v = dual[pb.column(j, (c, d))] - dual[pb.column(j, (a, b))]
        coef = t
    else:
        raise ConfigError(f"unknown move kind {move.kind!r}")
    return rank_one_move(net, j + 1, u, v, t=coef, check=False)
