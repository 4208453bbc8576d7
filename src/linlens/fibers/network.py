"""A linear network ``W_L ⋯ W_1`` as a point of weight space: widths, product, rank list with gaps, stratum.

References:
    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linlens._results import ResultMixin
from linlens.errors import ConfigError, EmptyInputError, NumericalWarning, ShapeError
from linlens.fibers.barcode import Bar, Stratum
from linlens.linalg import numerical_rank
from linlens.validation import as_array

__all__ = ["LinearNetwork", "RankEntry", "RankList"]


@dataclass(frozen=True)
class RankEntry(ResultMixin):
    """One numerical rank ``r_ji = rank(W_j ⋯ W_{i+1})`` with the singular values at its cut.

    ``gap = σ_r / σ_{r+1}`` (``inf`` when ``σ_{r+1}`` is zero or absent; for ``r = 0``: ``threshold / σ_1``), as
    :func:`linlens.linalg.numerical_rank` reports it. ``threshold`` is the absolute cut ``tol · Π‖W_k‖₂``;
    ``sigma_above`` is ``σ_r`` (the threshold itself when ``r = 0``) and ``sigma_below`` is ``σ_{r+1}`` (0 if absent).

    Example:
        >>> e = LinearNetwork([np.diag([2.0, 0.0]), np.array([[1.0, 0.0]])]).rank_list().entries[(1, 0)]
        >>> e.rank, e.sigma_above, e.sigma_below, e.to_dict()["gap"]  # gap inf, None in JSON
        (1, 2.0, 0.0, None)
    """

    j: int
    i: int
    rank: int
    sigma_above: float
    sigma_below: float
    gap: float
    threshold: float


@dataclass(frozen=True)
class RankList:
    """All ranks ``r_ji`` of a network, each with its singular-value gap.

    Attributes:
        entries: ``{(j, i): RankEntry}`` for ``0 ≤ i < j ≤ L``.
        tol: relative tolerance used (the cut is ``tol`` times the product of the factors' spectral norms).
        min_gap: the gap under which a rank counts as fragile.

    Example:
        >>> rl = LinearNetwork([np.diag([1.0, 1e-15, 1e-17])]).rank_list(warn=False)  # σ₂/σ₃ = 100 at the cut
        >>> rl.ranks, rl.smallest_gap, rl.fragile
        ({(1, 0): 2}, 100.0, [(1, 0)])
    """

    entries: dict[tuple[int, int], RankEntry]
    tol: float
    min_gap: float

    @property
    def ranks(self) -> dict[tuple[int, int], int]:
        """``{(j, i): r_ji}``."""
        return {k: e.rank for k, e in self.entries.items()}

    @property
    def smallest_gap(self) -> float:
        """The smallest gap over all ranks."""
        return min((e.gap for e in self.entries.values()), default=float("inf"))

    @property
    def fragile(self) -> list[tuple[int, int]]:
        """The ``(j, i)`` whose rank was decided inside a gap smaller than ``min_gap``."""
        return [k for k, e in sorted(self.entries.items()) if e.gap < self.min_gap]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary, written by hand on purpose: entries keyed ``r_j_i`` with the derived
        ``smallest_gap`` and ``fragile`` beside them (tuple keys are not JSON)."""
        return {
            "tol": self.tol,
            "min_gap": self.min_gap,
            "smallest_gap": self.smallest_gap,
            "fragile": [f"r_{j}_{i}" for j, i in self.fragile],
            "ranks": {f"r_{j}_{i}": e.to_dict() for (j, i), e in sorted(self.entries.items())},
        }


class LinearNetwork:
    """A deep linear network ``x ↦ W_L ⋯ W_1 x`` seen as a point of weight space.

    References:
        | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
        | https://arxiv.org/abs/2404.14855

    Arguments:
        weights: ``W_1, …, W_L`` (numpy arrays or torch tensors), ``W_k`` of shape ``(d_k, d_{k−1})``;
            converted to float64.

    Example:
        >>> net = LinearNetwork([np.eye(2), np.array([[1.0, 0.0]])])
        >>> net.widths, net.product().shape
        ((2, 2, 1), (1, 2))
        >>> net.stratum().label
        '[0,1] [0,2]'
    """

    def __init__(self, weights: Sequence[Any]):
        if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence | tuple | list):
            raise ShapeError(f"weights must be a list of 2-D matrices W_1..W_L; got {type(weights).__name__}")
        if len(weights) == 0:
            raise EmptyInputError("weights must hold at least one matrix W_1; got an empty list")
        ws = [as_array(w, f"W{k}") for k, w in enumerate(weights, start=1)]
        for k in range(1, len(ws)):
            if ws[k].shape[1] != ws[k - 1].shape[0]:
                raise ShapeError(
                    f"weights must chain: W{k + 1} must have {ws[k - 1].shape[0]} columns (the rows of W{k}); "
                    f"got shape {ws[k].shape}"
                )
        for k, w in enumerate(ws, start=1):
            if 0 in w.shape:
                raise ShapeError(f"W{k} must have positive sizes; got shape {w.shape}")
        self.weights: tuple[np.ndarray, ...] = tuple(ws)
        self._cache: dict[Any, Any] = {}

    @property
    def L(self) -> int:
        """Number of weight matrices."""
        return len(self.weights)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d_0, …, d_L)``."""
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    @property
    def weight_dim(self) -> int:
        """``D = Σ d_k d_{k−1}``."""
        return sum(w.size for w in self.weights)

    def subproduct(self, j: int, i: int) -> np.ndarray:
        """``W_ji = W_j ⋯ W_{i+1}``, mapping layer ``i`` to layer ``j`` (identity for ``i = j``), ``(d_j, d_i)``."""
        if not 0 <= i <= j <= self.L:
            raise ConfigError(f"subproduct needs 0 ≤ i ≤ j ≤ L = {self.L}; got j={j}, i={i}")
        key = ("sub", j, i)
        if key not in self._cache:
            if i == j:
                M = np.eye(self.widths[j])
            else:
                M = self.weights[i]
                for k in range(i + 1, j):
                    M = self.weights[k] @ M
            self._cache[key] = M
        return self._cache[key]

    def product(self) -> np.ndarray:
        """The end-to-end matrix ``W = W_L ⋯ W_1``, shape ``(d_L, d_0)``."""
        return self.subproduct(self.L, 0)

    def flat(self) -> np.ndarray:
        """The weights as one vector of length ``D`` (row-major, ``W_1`` first)."""
        return np.concatenate([w.ravel() for w in self.weights])

    @classmethod
    def from_flat(cls, theta: np.ndarray, widths: Sequence[int]) -> LinearNetwork:
        """Inverse of :meth:`flat`."""
        ws, pos = [], 0
        for k in range(1, len(widths)):
            n = widths[k] * widths[k - 1]
            ws.append(np.asarray(theta[pos : pos + n], dtype=float).reshape(widths[k], widths[k - 1]))
            pos += n
        return cls(ws)

    def rank_list(self, tol: float | None = None, min_gap: float = 1e3, warn: bool = True) -> RankList:
        """Numerical ranks ``r_ji`` of all subproducts, each with the singular-value gap at its cut.

        The cut is ``tol · Π_{k=i+1..j} ‖W_k‖₂``: relative to the scale at which rounding errors of the product
        live (for a single matrix, ``σ_max``). Default ``tol = max(d_i, d_j) · (j − i) · eps``.

        Arguments:
            tol: relative tolerance (> 0), or None for the default.
            min_gap: a rank whose gap ``σ_r / σ_{r+1}`` is below this counts as decided inside a tiny gap.
            warn: emit a :class:`~linlens.errors.NumericalWarning` for such ranks.

        Returns:
            :class:`RankList`.
        """
        if tol is not None and not (np.isfinite(tol) and 0 < tol < 1):
            raise ConfigError(f"tol must be a relative tolerance in (0, 1); got {tol!r}")
        key = ("ranks", tol, min_gap)
        if key in self._cache:
            return self._cache[key]
        eps = np.finfo(float).eps
        norms = [np.linalg.norm(w, 2) for w in self.weights]
        entries = {}
        for j in range(1, self.L + 1):
            for i in range(j):
                M = self.subproduct(j, i)
                s = np.linalg.svd(M, compute_uv=False)
                scale = float(np.prod(norms[i:j]))
                t = tol if tol is not None else max(M.shape) * (j - i) * eps
                thr = t * scale
                info = numerical_rank(s, tol=t, scale=scale, shape=M.shape)
                r = info.rank
                above = float(s[r - 1]) if r > 0 else thr
                below = float(s[r]) if r < s.size else 0.0
                entries[(j, i)] = RankEntry(j, i, r, above, below, float(info.gap), thr)
        rl = RankList(entries, float(tol) if tol is not None else float("nan"), float(min_gap))
        if warn and rl.fragile:
            j, i = rl.fragile[0]
            e = entries[(j, i)]
            warnings.warn(
                f"rank r_{j}_{i} = {e.rank} was decided inside a tiny singular-value gap "
                f"(σ_r = {e.sigma_above:.3g}, σ_r+1 = {e.sigma_below:.3g}, gap {e.gap:.3g} < {min_gap:g}); "
                f"{len(rl.fragile)} rank(s) fragile",
                NumericalWarning,
                stacklevel=2,
            )
        self._cache[key] = rl
        return rl

    def barcode(self, tol: float | None = None) -> dict[Bar, int]:
        """Interval multiplicities ``{(a, b): ω_ba}`` of the bars present (from the numerical rank list).

        Raises:
            ConfigError: the numerical ranks are not realizable (inconsistent tolerance).
        """
        return self.stratum(tol).multiplicities

    def stratum(self, tol: float | None = None) -> Stratum:
        """The :class:`~linlens.fibers.barcode.Stratum` this point lies on (from the numerical rank list)."""
        ranks = self.rank_list(tol, warn=False).ranks
        try:
            return Stratum.from_rank_list(self.widths, ranks)
        except ConfigError as exc:
            raise ConfigError(f"numerical ranks at tol={tol!r} are inconsistent: {exc}") from None

    def __repr__(self) -> str:
        return f"LinearNetwork(widths={self.widths})"
