"""Rank lists, barcodes and the strata of a fiber of a linear network (their order is in ``order.py``).

A network with widths ``(d_0, …, d_L)`` and weights ``W_k`` of shape ``(d_k, d_{k-1})`` has the rank list
``r_ji = rank(W_j ⋯ W_{i+1})`` for ``0 ≤ i < j ≤ L``. Its **barcode** is the multiset of intervals
``[a, b] ⊆ [0, L]`` with multiplicities ``ω_ba = r_ba − r_{b,a−1} − r_{b+1,a} + r_{b+1,a−1}``; a rank counts the
bars that cover an interval. The strata of the fiber of a rank-``r`` matrix are in bijection with the barcodes
whose layer sums are the widths and which hold ``r`` copies of ``[0, L]``.

References:
    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855

    | The Hierarchy of Manifolds in a Stratification of the Set of Equivalent Linear Neural Networks
    | (Bhattacharya & Shewchuk, SoCG 2026) https://doi.org/10.4230/LIPIcs.SoCG.2026.91
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from linlens.errors import ConfigError, ShapeError
from linlens.linalg import numerical_rank
from linlens.validation import as_array

__all__ = [
    "Bar",
    "Stratum",
    "check_widths",
    "barcode_from_ranks",
    "ranks_from_barcode",
    "format_barcode",
    "strata",
    "count_strata",
]

Bar = tuple[int, int]
"""An interval ``(a, b)`` of layers, ``0 ≤ a ≤ b ≤ L``: information born at layer ``a``, killed by ``W_{b+1}``."""


def check_widths(widths: Any, name: str = "widths") -> tuple[int, ...]:
    """Validate layer widths ``(d_0, …, d_L)``: at least two positive integers.

    Raises:
        ConfigError: naming ``name``, the expectation and what was found.

    Example:
        >>> check_widths([2, 3.0, 2])
        (2, 3, 2)
        >>> check_widths([2])
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: widths must be at least two positive integers (d_0, …, d_L); got [2]
    """
    try:
        ws = tuple(int(w) for w in widths)
        ok = all(float(w) == int(w) for w in widths)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a sequence of positive integers; got {widths!r}") from None
    if not ok or len(ws) < 2 or min(ws) < 1:
        raise ConfigError(f"{name} must be at least two positive integers (d_0, …, d_L); got {list(widths)!r}")
    return ws


def _check_rank(widths: tuple[int, ...], rank: Any) -> int:
    try:
        r = int(rank)
    except (TypeError, ValueError):
        raise ConfigError(f"rank must be an integer; got {rank!r}") from None
    if r != rank or r < 0 or r > min(widths):
        raise ConfigError(
            f"rank must be an integer in [0, min(widths) = {min(widths)}] (widths {list(widths)} cannot hold a "
            f"rank-{rank} product); got {rank!r}"
        )
    return r


def _normalize_barcode(barcode: Mapping[Bar, int] | Iterable[Any], L: int) -> tuple[tuple[Bar, int], ...]:
    """Accept ``{(a, b): m}``, ``[((a, b), m), …]`` or a list of bars with repeats; return sorted pairs."""
    counts: dict[Bar, int] = {}
    items = barcode.items() if isinstance(barcode, Mapping) else barcode
    for item in items:
        if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], tuple | list):
            bar, m = (int(item[0][0]), int(item[0][1])), int(item[1])
        elif isinstance(item, tuple | list) and len(item) == 2:
            bar, m = (int(item[0]), int(item[1])), 1
        else:
            raise ConfigError(f"barcode entries must be bars (a, b) or ((a, b), multiplicity); got {item!r}")
        a, b = bar
        if not 0 <= a <= b <= L:
            raise ConfigError(f"barcode bar must satisfy 0 ≤ a ≤ b ≤ L = {L}; got [{a}, {b}]")
        if m < 0:
            raise ConfigError(f"barcode multiplicity of [{a}, {b}] must be ≥ 0; got {m}")
        counts[bar] = counts.get(bar, 0) + m
    return tuple(sorted((bar, m) for bar, m in counts.items() if m > 0))


def ranks_from_barcode(barcode: Mapping[Bar, int] | Iterable[Any], L: int) -> dict[tuple[int, int], int]:
    """The rank list of a barcode: ``r_ji`` = number of bars ``[a, b]`` with ``a ≤ i`` and ``b ≥ j``.

    Arguments:
        barcode: ``{(a, b): multiplicity}`` or pairs ``((a, b), multiplicity)``.
        L: number of layers (weights).

    Returns:
        ``{(j, i): r_ji}`` for ``0 ≤ i < j ≤ L``.

    Example:
        >>> ranks_from_barcode({(0, 1): 1, (2, 2): 1, (0, 0): 1, (1, 2): 1}, 2)
        {(1, 0): 1, (2, 0): 0, (2, 1): 1}
    """
    bc = _normalize_barcode(barcode, L)
    return {
        (j, i): sum(m for (a, b), m in bc if a <= i and b >= j) for j in range(1, L + 1) for i in range(j)
    }


def barcode_from_ranks(widths: Sequence[int], ranks: Mapping[tuple[int, int], int]) -> dict[Bar, int]:
    """Interval multiplicities ``ω_ba = r_ba − r_{b,a−1} − r_{b+1,a} + r_{b+1,a−1}`` of a rank list.

    Arguments:
        widths: ``(d_0, …, d_L)``.
        ranks: ``{(j, i): r_ji}`` for ``0 ≤ i < j ≤ L`` (padding ``r_jj = d_j``, ``r_{j,−1} = r_{L+1,i} = 0``).

    Returns:
        ``{(a, b): ω_ba}`` for every interval, including zero and (for unrealizable lists) negative entries.

    Example:
        >>> barcode_from_ranks((1, 1, 1), {(1, 0): 1, (2, 0): 1, (2, 1): 1})[(0, 2)]
        1
    """
    ws = tuple(widths)
    L = len(ws) - 1

    def r(j: int, i: int) -> int:
        if i < 0 or j > L:
            return 0
        if i == j:
            return ws[j]
        return int(ranks[(j, i)])

    return {
        (a, b): r(b, a) - r(b, a - 1) - r(b + 1, a) + r(b + 1, a - 1)
        for a in range(L + 1)
        for b in range(a, L + 1)
    }


def format_barcode(barcode: Iterable[tuple[Bar, int]]) -> str:
    """Human-readable barcode, e.g. ``[0,1]×2 [2,2]``.

    Example:
        >>> format_barcode([((0, 1), 2), ((2, 2), 1)])
        '[0,1]×2 [2,2]'
    """
    return " ".join(f"[{a},{b}]" + (f"×{m}" if m > 1 else "") for (a, b), m in barcode)


@dataclass(frozen=True)
class Stratum:
    """A stratum of a fiber of the product map, identified by its barcode.

    The stratum is the set of weights ``(W_1, …, W_L)`` with the given rank list whose product is a fixed
    matrix ``W`` of rank ``rank`` (the number of full bars ``[0, L]``). It is a single orbit of the group
    ``{(G_0, …, G_L) : G_L W G_0^{-1} = W}`` and hence a smooth manifold.

    References:
        | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
        | https://arxiv.org/abs/2404.14855

    Arguments:
        widths: layer widths ``(d_0, …, d_L)``.
        barcode: sorted pairs ``((a, b), multiplicity)``; use :meth:`from_barcode` or :meth:`from_rank_list`
            to build one from other forms (they validate realizability).

    Example:
        >>> s = Stratum.from_barcode((2, 2, 2), {(0, 1): 1, (0, 2): 1, (2, 2): 1})
        >>> s.rank, s.dim, s.codim
        (1, 4, 4)
    """

    widths: tuple[int, ...]
    barcode: tuple[tuple[Bar, int], ...]

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_barcode(cls, widths: Sequence[int], barcode: Mapping[Bar, int] | Iterable[Any]) -> Stratum:
        """Build and validate a stratum from ``{(a, b): m}``, pairs, or a list of bars with repeats.

        Raises:
            ConfigError: a bar outside ``[0, L]`` or layer sums that differ from the widths.
        """
        ws = check_widths(widths)
        bc = _normalize_barcode(barcode, len(ws) - 1)
        s = cls(ws, bc)
        sums = s.layer_sums()
        if sums != ws:
            raise ConfigError(
                f"barcode layer sums must equal widths {list(ws)}; got {list(sums)} for {format_barcode(bc)}"
            )
        return s

    @classmethod
    def from_rank_list(cls, widths: Sequence[int], ranks: Mapping[tuple[int, int], int]) -> Stratum:
        """Build a stratum from a rank list ``{(j, i): r_ji}``.

        Raises:
            ConfigError: the rank list is not realizable (some interval multiplicity is negative).
        """
        ws = check_widths(widths)
        L = len(ws) - 1
        missing = [(j, i) for j in range(1, L + 1) for i in range(j) if (j, i) not in ranks]
        if missing:
            raise ConfigError(f"rank list must hold r_ji for all 0 ≤ i < j ≤ {L}; missing {missing}")
        omega = barcode_from_ranks(ws, ranks)
        neg = {bar: m for bar, m in omega.items() if m < 0}
        if neg:
            (a, b), m = next(iter(neg.items()))
            raise ConfigError(
                f"rank list is not realizable: multiplicity of bar [{a},{b}] must be ≥ 0, got {m} "
                f"(a Frobenius rank inequality fails)"
            )
        return cls(ws, tuple(sorted((bar, m) for bar, m in omega.items() if m > 0)))

    # ----------------------------------------------------------------- combinatorics
    @property
    def L(self) -> int:
        """Number of weight matrices."""
        return len(self.widths) - 1

    @property
    def multiplicities(self) -> dict[Bar, int]:
        """``{(a, b): ω_ba}`` for the bars present."""
        return dict(self.barcode)

    @property
    def rank(self) -> int:
        """Rank of the product ``W`` (the multiplicity of the full bar ``[0, L]``)."""
        return self.multiplicities.get((0, self.L), 0)

    @cached_property
    def rank_list(self) -> dict[tuple[int, int], int]:
        """``{(j, i): r_ji}`` for ``0 ≤ i < j ≤ L`` (computed once; treat as read-only)."""
        return ranks_from_barcode(self.barcode, self.L)

    @property
    def weight_dim(self) -> int:
        """Dimension ``D = Σ d_k d_{k−1}`` of weight space."""
        return sum(self.widths[k] * self.widths[k - 1] for k in range(1, self.L + 1))

    def layer_sums(self) -> tuple[int, ...]:
        """Number of bars through each layer (equals the widths for a valid barcode)."""
        return tuple(sum(m for (a, b), m in self.barcode if a <= k <= b) for k in range(self.L + 1))

    @property
    def is_realizable(self) -> bool:
        """True when the multiplicities are non-negative and the layer sums equal the widths."""
        return all(m >= 0 for _, m in self.barcode) and self.layer_sums() == self.widths

    def bars(self) -> list[Bar]:
        """The bars with repeats, in sorted order."""
        return [bar for bar, m in self.barcode for _ in range(m)]

    def _r(self, j: int, i: int) -> int:
        if i < 0 or j > self.L:
            return 0
        if i == j:
            return self.widths[j]
        return self.rank_list[(j, i)]

    @cached_property
    def dim(self) -> int:
        """Dimension of the stratum: ``Σ d_k² − Σ_bars ω_ba (d_a − r_{b+1,a}) − r (d_0 + d_L − r)``."""
        ranks = self.rank_list
        d, L, r = self.widths, self.L, self.rank

        def rr(j: int, i: int) -> int:
            return 0 if j > L else (d[j] if i == j else ranks[(j, i)])

        end = sum(m * (d[a] - rr(b + 1, a)) for (a, b), m in self.barcode)
        return sum(x * x for x in d) - end - r * (d[0] + d[L] - r)

    @property
    def codim(self) -> int:
        """Codimension in weight space, ``D − dim``."""
        return self.weight_dim - self.dim

    @property
    def codim_ext(self) -> int:
        """Codimension from the second formula: ``r (d_0 + d_L − r) + Σ ω_I ω_J [a_I < a_J ≤ b_I + 1 ≤ b_J]``."""
        bc = self.barcode
        ext = sum(
            m1 * m2 for (a1, b1), m1 in bc for (a2, b2), m2 in bc if a1 < a2 <= b1 + 1 <= b2
        )
        r = self.rank
        return r * (self.widths[0] + self.widths[-1] - r) + ext

    @property
    def excess_codim(self) -> int:
        """Codimension beyond the expected ``r (d_0 + d_L − r)`` (zero for strata of the expected dimension)."""
        r = self.rank
        return self.codim_ext - r * (self.widths[0] + self.widths[-1] - r)

    @property
    def label(self) -> str:
        """The barcode as text, e.g. ``[0,1]×2 [2,2]×2``."""
        return format_barcode(self.barcode)

    def rank_list_text(self) -> str:
        """The rank list as ``r10=…, r20=…, …`` (indices ``j i``)."""
        return ", ".join(f"r{j},{i}={v}" for (j, i), v in sorted(self.rank_list.items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: widths, barcode, rank list, rank, dim, codim."""
        return {
            "widths": list(self.widths),
            "barcode": [[a, b, m] for (a, b), m in self.barcode],
            "barcode_text": self.label,
            "rank_list": {f"r_{j}_{i}": v for (j, i), v in sorted(self.rank_list.items())},
            "rank": self.rank,
            "dim": self.dim,
            "codim": self.codim,
            "excess_codim": self.excess_codim,
            "weight_dim": self.weight_dim,
        }

    # ----------------------------------------------------------------- points
    def layer_order(self, k: int) -> list[tuple[Bar, int]]:
        """The bars through layer ``k`` as ``(bar, copy)`` in the order of the canonical basis of ``R^{d_k}``."""
        return [(bar, c) for bar, m in self.barcode for c in range(m) if bar[0] <= k <= bar[1]]

    def canonical_weights(self) -> list[np.ndarray]:
        """The 0/1 weights ``C_k`` that send each bar's basis vector at layer ``k−1`` to its vector at ``k``."""
        out = []
        for k in range(1, self.L + 1):
            rows = {key: p for p, key in enumerate(self.layer_order(k))}
            C = np.zeros((self.widths[k], self.widths[k - 1]))
            for q, key in enumerate(self.layer_order(k - 1)):
                if key in rows:
                    C[rows[key], q] = 1.0
            out.append(C)
        return out

    def random_point(self, W: Any = None, seed: int | None = 0) -> list[np.ndarray]:
        """A random point ``(W_1, …, W_L)`` of this stratum: ``W_k = U_k C_k U_{k−1}^{-1}`` with random ``U_k``.

        Arguments:
            W: optional target product of shape ``(d_L, d_0)`` and rank ``self.rank``; the point then lies on
                the fiber of ``W``. Without it the product is a random rank-``r`` matrix.
            seed: seed of the random ``U_k`` (well conditioned: singular values in ``[0.5, 2]``).

        Returns:
            list of ``L`` float64 arrays, ``W_k`` of shape ``(d_k, d_{k−1})``.

        Example:
            >>> s = Stratum.from_barcode((1, 1, 1), {(0, 2): 1})
            >>> w = s.random_point(W=[[3.0]], seed=1)
            >>> round(float((w[1] @ w[0])[0, 0]), 12)
            3.0
        """
        rng = np.random.default_rng(seed)
        d, L, r = self.widths, self.L, self.rank

        def rand_gl(n: int) -> np.ndarray:
            q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
            q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
            return (q1 * rng.uniform(0.5, 2.0, n)) @ q2

        U = [rand_gl(n) for n in d]
        Uinv0 = np.linalg.inv(U[0])
        if W is not None:
            Wm = as_array(W, "W")
            if Wm.shape != (d[L], d[0]):
                raise ShapeError(f"W must have shape (d_L, d_0) = {(d[L], d[0])}; got {Wm.shape}")
            info = numerical_rank(Wm)
            rank_W = info.rank
            if rank_W != r:
                raise ConfigError(f"W must have rank {r} (the stratum's full bars); found numerical rank {rank_W} "
                                  f"(gap σ_r/σ_r+1 = {info.gap:.3g})")
            P, sv, Qt = np.linalg.svd(Wm)
            F = P[:, :r] * np.sqrt(sv[:r])
            G = np.sqrt(sv[:r])[:, None] * Qt[:r]
            full0 = [p for p, (bar, _) in enumerate(self.layer_order(0)) if bar == (0, L)]
            fullL = [p for p, (bar, _) in enumerate(self.layer_order(L)) if bar == (0, L)]
            # U_L's full-bar columns are F, U_0^{-1}'s full-bar rows are G: then U_L C_{L0} U_0^{-1} = F G = W.
            # The remaining columns/rows stay random (generic, hence invertible); we orthogonalize them against
            # the prescribed block to keep the matrices well conditioned.
            U[L] = _complete(F, fullL, U[L], rng)
            Uinv0 = _complete(G.T, full0, Uinv0.T, rng).T
        weights = []
        Uinv_prev = Uinv0
        for k, C in enumerate(self.canonical_weights(), start=1):
            weights.append(U[k] @ C @ Uinv_prev)
            Uinv_prev = np.linalg.inv(U[k])
        return weights


def _complete(F: np.ndarray, cols: list[int], M: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a square matrix with columns ``cols`` equal to ``F`` and the others spanning a complement."""
    n = M.shape[0]
    out = np.array(M, dtype=float)
    out[:, cols] = F
    other = [c for c in range(n) if c not in cols]
    if other and F.shape[1]:
        Qf, _ = np.linalg.qr(F)
        R = rng.standard_normal((n, len(other)))
        R -= Qf @ (Qf.T @ R)
        Qr, _ = np.linalg.qr(R)
        scale = np.linalg.norm(F, 2)
        out[:, other] = Qr * scale
    return out


# ---------------------------------------------------------------------------------------------- enumeration
def strata(widths: Sequence[int], rank: int) -> list[Stratum]:
    """All strata of the fiber of a rank-``rank`` matrix for a network of the given widths.

    Enumerates every barcode: multiplicities for the intervals ``[a, b] ≠ [0, L]`` such that each layer holds
    exactly ``d_k − rank`` bars besides the ``rank`` full bars. Sorted by decreasing dimension.

    Arguments:
        widths: ``(d_0, …, d_L)``.
        rank: rank ``r`` of the product, ``0 ≤ r ≤ min d_k``.

    Returns:
        list of :class:`Stratum`.

    Example:
        >>> [s.dim for s in strata((2, 2, 2), 1)]
        [4, 4, 3]
    """
    ws = check_widths(widths)
    r = _check_rank(ws, rank)
    L = len(ws) - 1
    intervals = [(a, b) for a in range(L + 1) for b in range(a, L + 1) if (a, b) != (0, L)]
    rem0 = [d - r for d in ws]
    found: list[dict[Bar, int]] = []

    def rec(idx: int, rem: list[int], chosen: dict[Bar, int]) -> None:
        if idx == len(intervals):
            if all(x == 0 for x in rem):
                found.append(dict(chosen))
            return
        a, b = intervals[idx]
        # when we start the intervals with a new left end a, layer a−1 is complete: it must be exhausted
        if idx > 0 and intervals[idx - 1][0] != a and rem[a - 1] != 0:
            return
        cap = min(rem[a : b + 1])
        for m in range(cap, -1, -1):
            if m:
                for k in range(a, b + 1):
                    rem[k] -= m
                chosen[(a, b)] = m
            rec(idx + 1, rem, chosen)
            if m:
                for k in range(a, b + 1):
                    rem[k] += m
                del chosen[(a, b)]

    rec(0, rem0, {})
    out = []
    for bc in found:
        if r:
            bc[(0, L)] = r
        out.append(Stratum(ws, tuple(sorted(bc.items()))))
    out.sort(key=lambda s: (-s.dim, s.barcode))
    return out


def count_strata(widths: Sequence[int], rank: int, stop_above: int | None = None) -> int:
    """Number of strata of the fiber of a rank-``rank`` matrix, counted without listing them.

    A dynamic programme over the layers: the state at layer k is how many bars alive at layer k were born at
    each layer a ≤ k (full bars [0, L] set apart); from layer k to k + 1 each group keeps some of its bars and
    the rest end at k, and new bars fill layer k + 1 up to its width. At the last layer no non-full bar may
    still be alive since layer 0 (it would be a full bar). Each (state, continuation) pair visited is a
    distinct partial barcode that extends to at least one stratum, so the work done is at most about the
    number of strata, and with ``stop_above`` it stops as soon as more than that many are certain.

    Arguments:
        widths: ``(d_0, …, d_L)``.
        rank: rank ``r`` of the product, ``0 ≤ r ≤ min d_k``.
        stop_above: stop early once the count is known to exceed this; the value returned is then some
            number ``> stop_above`` (a lower bound), not the count.

    Returns:
        the number of strata (equal to ``len(strata(widths, rank))``).

    Example:
        >>> count_strata((2, 2, 2), 0), count_strata((2, 2, 2), 1)
        (6, 3)
    """
    ws = check_widths(widths)
    r = _check_rank(ws, rank)
    L = len(ws) - 1
    free = [d - r for d in ws]
    states: dict[tuple[int, ...], int] = {(free[0],): 1}
    visited = 0
    for k in range(L):
        room, last = free[k + 1], k + 1 == L
        nxt: dict[tuple[int, ...], int] = {}
        for state, count in states.items():
            # keep m_a ≤ n_a bars of each birth layer a, Σ m ≤ room; at the last layer m_0 = 0
            stack: list[tuple[int, tuple[int, ...], int]] = [(0, (), 0)]
            while stack:
                a, kept, total = stack.pop()
                if a == len(state):
                    new = kept + (room - total,)
                    nxt[new] = nxt.get(new, 0) + count
                    visited += 1
                    if stop_above is not None and visited > stop_above:
                        return visited
                    continue
                top = 0 if (last and a == 0) else min(state[a], room - total)
                for m in range(top + 1):
                    stack.append((a + 1, kept + (m,), total + m))
        states = nxt
    return sum(states.values())
