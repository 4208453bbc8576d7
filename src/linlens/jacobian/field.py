"""Streaming statistics of the Jacobians of a network over a data set, and their distance to a global map.

``JacobianField`` streams over a data set without keeping the Jacobians and collects mean J, mean JᵀJ,
per-sample singular values and log|det J|; ``JacobianField.local_vs_global`` measures how far the local maps
J(x) are from a global linear map C.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from linlens.errors import ConfigError, EmptyInputError, NonFiniteError, NotFittedError, ShapeError
from linlens.jacobian._prepare import _module_param, _prepare, _resolve_mode, _to_input
from linlens.jacobian.dense import _iter_chunks
from linlens.jacobian.memory import _chunk_from_budget
from linlens.linalg import gap_at, numerical_rank
from linlens.nn import model_device
from linlens.scale import block_ranges, check_block_finite, is_dask
from linlens.validation import is_torch

__all__ = ["JacobianField", "LocalVsGlobal"]


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

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(3, 2).double()
        >>> C = lin.weight.detach().numpy()
        >>> r = JacobianField(lin).local_vs_global(C, torch.randn(5, 3, dtype=torch.float64))
        >>> r.k, float(r.relative_distance.max()), r.to_dict()["max_angle_median"] < 1e-6
        (2, 0.0, True)
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
        max_memory: working-memory budget in bytes per chunk (capped at
            :data:`~linlens.jacobian.memory.DEFAULT_WORK_MEMORY`).
        mode: "auto", "reverse" or "forward".
        k: number of leading singular values kept per sample; None keeps all min(d_out, d_in).
        device: where numpy inputs are placed when ``f`` has no parameters ("cpu", "cuda", …; "auto": the CPU,
            :func:`linlens.nn.model_device`); a module's own device wins. Statistics come back on the CPU in float64.

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
        k: int | None = None,
        device: str | torch.device = "auto",
    ):
        self.f = f
        self.chunk_size = chunk_size
        self.max_memory = max_memory
        self.mode = mode
        self.k = k
        self.device = device

    # -- helpers ------------------------------------------------------------------------------------------
    def _input(self, b: Any) -> Tensor:
        if not is_torch(b) and _module_param(self.f) is None:
            b = torch.as_tensor(np.asarray(b)).to(model_device(self.f, self.device))
        return _to_input(self.f, b, name="X")

    def _k(self, d_out: int, d_in: int) -> int:
        r = min(d_out, d_in)
        if self.k is None:
            return r
        if int(self.k) != self.k or self.k < 1:
            raise ConfigError(f"k must be a positive integer or None; got {self.k!r}")
        return min(int(self.k), r)

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
    def local_vs_global(self, C: Any, X: Any, k: int | None = None, covariance: Any = None,
                        singular_values: Any = None) -> LocalVsGlobal:
        """Distribution over X of the distance between J(x) and a global linear map C.

        Arguments:
            C: (d_out, d_in) global map, e.g. a surrogate's ``coef_``.
            X: inputs (n_samples, d_in) or an iterable of batches.
            k: dimension of the compared right singular subspaces; default the numerical rank of C
                (tolerance max(shape)·eps·σ_max), capped by ``k`` when that is set.
            covariance: Σ (d_in, d_in) of the inputs (e.g. ``np.cov(Y.T)``) for the weighted distance
                ‖(J − C)Σ^½‖_F/‖CΣ^½‖_F, which ignores directions the data does not visit.
            singular_values: C's singular values when the caller has them (saves an SVD of C for its rank).

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
        info = numerical_rank(Cn) if singular_values is None else numerical_rank(
            np.asarray(singular_values, dtype=np.float64), shape=Cn.shape)
        rank = info.rank
        if k is None:
            k = rank if self.k is None else min(rank, int(self.k))
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
