"""Hankel (delay-coordinate) dynamic mode decomposition in torch, with fast truncated SVDs.

:class:`HankelDMD` fits projected (or exact) DMD on delay vectors built **per trajectory**: no delay window
and no snapshot pair ever crosses from one trajectory into the next. It computes on CPU or CUDA in float32
or float64 and uses a randomized subspace-iteration SVD when the rank is much smaller than the Hankel
matrix, so it does not pay for the two full SVDs PyDMD runs on every fit.

Example:
    >>> import numpy as np
    >>> t = np.arange(50)
    >>> x = np.stack([np.cos(0.3 * t), np.sin(0.3 * t)], axis=1)[None]   # (1, 50, 2)
    >>> dmd = HankelDMD(delays=1, rank=2, backend="numpy").fit(x)
    >>> np.allclose(sorted(np.angle(dmd.eigs)), [-0.3, 0.3])
    True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from linlens.errors import ConfigError, NonFiniteError, NotFittedError, NumericalWarning, ShapeError
from linlens.linalg import gap_at, numerical_rank, randomized_svd, sign_flips
from linlens.nn import resolve_device
from linlens.scale import block_ranges, check_block_finite, is_dask
from linlens.validation import is_torch

__all__ = ["HankelDMD", "delay_embed", "optimal_hard_threshold_rank", "randomized_svd"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "double": torch.float64, "float": torch.float32}


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------
def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
        return _DTYPES[dtype]
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    return dtype


def _as_tensor(x: Any, name: str, dtype: torch.dtype, device: torch.device, ndim: int) -> torch.Tensor:
    """Convert ``x`` to a finite tensor of ``ndim`` dimensions, naming ``name`` in errors."""
    if is_torch(x):
        t = x.detach()
        if t.device.type == "meta":
            raise ShapeError(f"{name} is a tensor on the 'meta' device (it has shapes but no values)")
        if t.is_complex():
            raise ShapeError(f"{name} must be real; got complex dtype {t.dtype}")
        t = t.to(device=device, dtype=dtype)
    else:
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{name} must be a numeric array; could not convert: {exc}") from None
        t = torch.as_tensor(a, dtype=dtype, device=device)
    if t.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D; got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(t.shape)})")
    if not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise NonFiniteError(f"{name} contains {n_bad} NaN/Inf value(s)")
    return t


def delay_embed(trajectory: torch.Tensor, delays: int) -> torch.Tensor:
    """Delay vectors of one or many trajectories, newest snapshot first.

    Arguments:
        trajectory: (n_steps, dim) or (n_traj, n_steps, dim), time along the steps axis.
        delays: h; each delay vector stacks h+1 snapshots.

    Returns:
        (n_steps − h, dim·(h+1)) or (n_traj, n_steps − h, dim·(h+1)); row t−h holds
        z_t = [x_t; x_{t−1}; …; x_{t−h}].

    Example:
        >>> z = delay_embed(torch.arange(6.0).reshape(3, 2), 1)
        >>> z.tolist()
        [[2.0, 3.0, 0.0, 1.0], [4.0, 5.0, 2.0, 3.0]]
    """
    w = trajectory.unfold(-2, delays + 1, 1)  # (..., n_steps-h, dim, h+1), last axis oldest→newest
    w = w.flip(-1).transpose(-1, -2)  # (..., n_steps-h, h+1, dim), newest first
    return w.reshape(*w.shape[:-2], -1)


def optimal_hard_threshold_rank(singular_values: torch.Tensor, n_rows: int, n_cols: int) -> int:
    """Rank from the Gavish–Donoho optimal hard threshold with unknown noise level.

    τ = ω(β)·median(σ) with β = min/max aspect ratio and ω(β) ≈ 0.56β³ − 0.95β² + 1.82β + 1.43
    (the same approximation PyDMD uses). Returns at least 1.

    References:
        M. Gavish, D. L. Donoho, "The Optimal Hard Threshold for Singular Values is 4/√3",
        arXiv:1305.5870.

    Arguments:
        singular_values: all singular values of the matrix, (min(n_rows, n_cols),).
        n_rows, n_cols: matrix shape.

    Returns:
        The number of singular values above τ (≥ 1).

    Example:
        >>> optimal_hard_threshold_rank(torch.tensor([100.0, 50.0] + [1.0] * 98), 100, 400)
        2
    """
    return max(1, numerical_rank(singular_values, rule="optimal", shape=(n_rows, n_cols)).rank)


# ----------------------------------------------------------------------------------------------------------
# HankelDMD
# ----------------------------------------------------------------------------------------------------------
def _hankel_block(t: np.ndarray, h: int, block: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Xᵀ and Yᵀ rows of one chunk of trajectories (runs on a Dask worker)."""
    t = np.asarray(t, dtype=np.float64)
    check_block_finite(t, "trajectories", block, start)
    z = delay_embed(torch.as_tensor(t), h).numpy()  # (b, n_steps-h, D)
    D = z.shape[-1]
    return np.ascontiguousarray(z[:, :-1].reshape(-1, D)), np.ascontiguousarray(z[:, 1:].reshape(-1, D))


class HankelDMD:
    r"""Dynamic mode decomposition on delay coordinates (Hankel DMD), one Hankel block per trajectory.

    With ``delays = h`` a delay vector stacks h+1 snapshots, newest first:
    z_t = [x_t; x_{t−1}; …; x_{t−h}] ∈ R^{dim·(h+1)}. For each trajectory x_0 … x_{T−1}
    X_traj = [z_h … z_{T−2}] and Y_traj = [z_{h+1} … z_{T−1}]; the blocks of all trajectories are
    concatenated along columns, so **no window and no snapshot pair crosses two trajectories** (PyDMD and
    pykoopman concatenate trajectories end to end in time instead). Projected DMD then takes the truncated
    SVD X ≈ U_r Σ_r V_rᵀ, the reduced operator Ã = U_rᵀ Y V_r Σ_r⁻¹ (r × r, real), its eigen-decomposition
    Ã W = W Λ, and the modes U_r W (projected) or Y V_r Σ_r⁻¹ W (``exact=True``, Tu et al.).

    **Layout differs from PyDMD:** PyDMD takes snapshots as *columns* of a (dim, n_steps) matrix; here time
    runs along axis 1 of (n_traj, n_steps, dim) (samples along axis 0, as everywhere in linlens). PyDMD's
    ``HankelDMD(d=…)`` window length is ``d = h + 1`` and it stacks oldest first; the eigenvalues agree.

    References:
        H. Arbabi, I. Mezić, "Ergodic theory, dynamic mode decomposition and computation of spectral
        properties of the Koopman operator", arXiv:1611.06664.
        J. H. Tu, C. W. Rowley, D. M. Luchtenburg, S. L. Brunton, J. N. Kutz, "On Dynamic Mode
        Decomposition: Theory and Applications", arXiv:1312.0041.
        M. Gavish, D. L. Donoho, "The Optimal Hard Threshold for Singular Values is 4/√3", arXiv:1305.5870.
        N. Halko, P.-G. Martinsson, J. A. Tropp, arXiv:0909.4061 (randomized SVD).

    Arguments:
        delays: h ≥ 0, the number of delays (a window holds h+1 snapshots; h = 0 is plain DMD).
        rank: int (fixed rank r), float in (0, 1) (smallest r whose cumulative σ² fraction reaches it),
            ``"optimal"`` (Gavish–Donoho hard threshold) or None (numerical rank, tolerance
            max(shape)·eps·σ_max). Singular values below that tolerance are always dropped (with a
            :class:`NumericalWarning`), so ``rank_`` may be smaller than an int ``rank``.
        exact: exact DMD modes (Tu et al.) instead of projected modes.
        backend: ``"torch"`` (attributes are tensors on ``device``) or ``"numpy"`` (the same computation in
            torch on ``device``, attributes returned as numpy arrays).
        device: torch device of the computation (``"cpu"``, ``"cuda"``, ``"auto"`` for CUDA when available,
            None for the input's device).
        dtype: torch.float64 (default) or torch.float32, also ``"float64"``/``"float32"``.
        svd: ``"auto"`` (randomized when ``rank`` is an int and rank + p ≤ min(shape)/4 with
            min(shape) ≥ 256, full otherwise), ``"randomized"`` or ``"full"``. Rank rules other than an
            int need all singular values and always use the full SVD.
        seed: seed of the randomized sketch.
        n_oversamples: oversampling p of the randomized SVD (sketch width rank + p); None = max(10, 2·rank).
            Wide sketches cost little more (each pass over X is memory-bound) and need far fewer power
            iterations on slowly decaying spectra.
        n_iter: power iterations of the randomized SVD; None = adaptive until the leading subspace
            has converged (handles slowly decaying spectra).

    Attributes (after ``fit``; PyDMD vocabulary):
        eigs: (r,) complex DMD eigenvalues, sorted by descending modulus then angle.
        modes: (dim·(h+1), r) complex DMD modes.
        amplitudes: (r,) complex, least-squares fit of the modes to the **first delay vector of the first
            trajectory** (z_h of trajectory 0), as PyDMD fits its first snapshot.
        operator: (r, r) real reduced operator Ã.
        basis_: (dim·(h+1), r) U_r.
        exact_basis_: (dim·(h+1), r) Y V_r Σ_r⁻¹: exact modes are ``exact_basis_ @ W`` and the full-state map
            of ``predict(readout="exact")`` is A_full = exact_basis_ @ basis_ᵀ.
        singular_values_: all computed singular values of X, descending (min(shape) of them with the full
            SVD, rank + p with the randomized SVD, of which the first ``rank_`` are accurate).
        right_singular_vectors_: (n_columns, r) V_r.
        rank_: the rank used. rank_gap_: σ_r/σ_{r+1} at that cut (inf at the end of the computed spectrum).
        n_features_in_: dim. n_columns_: number of snapshot pairs.
        power_iterations_: power iterations run by the randomized SVD (0 for a full SVD).

    Example:
        >>> lam = 0.9 * np.exp(1j * 0.4)
        >>> A = np.array([[lam.real, -lam.imag], [lam.imag, lam.real]])
        >>> x = [np.random.default_rng(0).normal(size=2)]
        >>> for _ in range(30): x.append(A @ x[-1])
        >>> dmd = HankelDMD(delays=2, rank=2, backend="numpy").fit(np.array(x)[None])
        >>> bool(np.allclose(np.sort_complex(dmd.eigs), [np.conj(lam), lam]))
        True
    """

    def __init__(
        self,
        delays: int = 1,
        rank: int | float | str | None = None,
        exact: bool = False,
        backend: str = "torch",
        device: str | torch.device | None = "auto",
        dtype: torch.dtype | str = torch.float64,
        svd: str = "auto",
        seed: int = 0,
        n_oversamples: int | None = None,
        n_iter: int | None = None,
    ) -> None:
        self.delays = delays
        self.rank = rank
        self.exact = exact
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.svd = svd
        self.seed = seed
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        if isinstance(self.delays, bool) or not isinstance(self.delays, int | np.integer) or self.delays < 0:
            raise ConfigError(f"delays must be an integer >= 0; got {self.delays!r}")
        if self.backend not in ("torch", "numpy"):
            raise ConfigError(f"backend must be 'torch' or 'numpy'; got {self.backend!r}")
        if self.svd not in ("auto", "full", "randomized"):
            raise ConfigError(f"svd must be 'auto', 'full' or 'randomized'; got {self.svd!r}")
        r = self.rank
        ok = (
            r is None
            or r == "optimal"
            or (isinstance(r, int | np.integer) and not isinstance(r, bool) and r >= 1)
            or (isinstance(r, float) and 0.0 < r < 1.0)
        )
        if not ok:
            raise ConfigError(
                f"rank must be an int >= 1, a float in (0, 1), 'optimal' or None; got {r!r}"
            )
        if self.n_iter is not None and self.n_iter < 0:
            raise ConfigError(f"n_iter must be >= 0 or None; got {self.n_iter!r}")
        if self.n_oversamples is not None and self.n_oversamples < 0:
            raise ConfigError(f"n_oversamples must be >= 0; got {self.n_oversamples!r}")
        _resolve_dtype(self.dtype)

    def _device_for(self, x: Any) -> torch.device:
        if self.device is None:
            return x.device if is_torch(x) else torch.device("cpu")
        if isinstance(self.device, str) and self.device == "auto":
            return resolve_device("auto")
        return torch.device(self.device)

    def _trajectories(self, trajectories: Any, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
        if isinstance(trajectories, list | tuple):
            if len(trajectories) == 0:
                raise ShapeError("trajectories is an empty list")
            trajs = [_as_tensor(t, f"trajectories[{i}]", dtype, device, 2) for i, t in enumerate(trajectories)]
            dims = {t.shape[1] for t in trajs}
            if len(dims) != 1:
                raise ShapeError(f"trajectories must all have the same dim (axis 1); got dims {sorted(dims)}")
            return trajs
        t = _as_tensor(trajectories, "trajectories", dtype, device, 3)
        return [t]  # one batched tensor (n_traj, n_steps, dim)

    # ------------------------------------------------------------------ fit
    def _hankel(self, trajs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """X and Y as (n_columns, D) row blocks (transposed Hankel matrices) and the first delay vector."""
        h = self.delays
        xs, ys = [], []
        for t in trajs:
            n_steps = t.shape[-2]
            if n_steps < h + 2:
                raise ConfigError(
                    f"each trajectory needs n_steps >= delays + 2 = {h + 2} for one snapshot pair; "
                    f"got n_steps={n_steps}"
                )
            z = delay_embed(t, h)  # (..., n_steps-h, D)
            xs.append(z[..., :-1, :].reshape(-1, z.shape[-1]))
            ys.append(z[..., 1:, :].reshape(-1, z.shape[-1]))
        Xt = xs[0] if len(xs) == 1 else torch.cat(xs, 0)
        Yt = ys[0] if len(ys) == 1 else torch.cat(ys, 0)
        return Xt, Yt, Xt[0]

    def _hankel_dask(self, traj: Any, dtype: torch.dtype, device: torch.device) -> tuple[Any, Any, Any, int, int]:
        """Transposed Hankel blocks Xᵀ, Yᵀ (n_columns, D) as dask arrays, one row block per trajectory chunk."""
        import dask
        import dask.array as da

        if traj.ndim != 3:
            raise ShapeError(f"dask trajectories must be 3-D (n_traj, n_steps, dim); got shape {traj.shape}")
        h = self.delays
        n_traj, n_steps, dim = traj.shape
        if n_steps < h + 2:
            raise ConfigError(
                f"each trajectory needs n_steps >= delays + 2 = {h + 2} for one snapshot pair; got n_steps={n_steps}"
            )
        traj = traj.astype(np.float64).rechunk({1: -1, 2: -1})
        D, per = dim * (h + 1), n_steps - h - 1
        xs, ys = [], []
        f = dask.delayed(_hankel_block, pure=True, nout=2)
        for i, ((start, stop), blk) in enumerate(zip(block_ranges(traj.chunks[0]), traj.to_delayed().ravel(),
                                                    strict=True)):
            xb, yb = f(blk, h, i, start)
            shape = ((stop - start) * per, D)
            xs.append(da.from_delayed(xb, shape=shape, dtype=np.float64))
            ys.append(da.from_delayed(yb, shape=shape, dtype=np.float64))
        Xd, Yd = da.concatenate(xs), da.concatenate(ys)
        z0 = torch.as_tensor(Xd[0].compute(), dtype=dtype, device=device)
        return Xd, Yd, z0, n_traj * per, D

    def fit(self, trajectories: Any) -> HankelDMD:
        """Fit Hankel DMD on trajectories.

        Arguments:
            trajectories: (n_traj, n_steps, dim) numpy array or tensor (time along axis 1; PyDMD puts
                snapshots in columns instead), or a list of (n_steps_i, dim) arrays of possibly different
                lengths. Every trajectory needs n_steps ≥ delays + 2. A ``dask.array`` (n_traj, n_steps, dim)
                chunked along trajectories is also accepted: the Hankel blocks are built per chunk on the
                workers and the exact SVD goes through Dask's TSQR (``svd`` is then ignored; two passes
                over the data); a chunk with NaN/Inf raises NonFiniteError naming it.

        Returns:
            self.
        """
        self._check_params()
        dtype = _resolve_dtype(self.dtype)
        if is_torch(trajectories) and trajectories.device.type == "meta":
            raise ShapeError("trajectories is a tensor on the 'meta' device (it has shapes but no values)")
        device = self._device_for(trajectories)
        dask_in = is_dask(trajectories)
        if dask_in:
            Xd, Yd, z0, n_cols, D = self._hankel_dask(trajectories, dtype, device)
            Xt = Yt = None
        else:
            trajs = self._trajectories(trajectories, dtype, device)
            Xt, Yt, z0 = self._hankel(trajs)  # (n_cols, D)
            n_cols, D = Xt.shape
        min_dim = min(D, n_cols)

        r_req = self.rank
        if isinstance(r_req, int | np.integer) and r_req > min_dim:
            raise ConfigError(
                f"rank={r_req} exceeds the largest possible rank min(dim*(delays+1), n_pairs) = "
                f"min({D}, {n_cols}) = {min_dim}"
            )
        n_over = self.n_oversamples
        if n_over is None and isinstance(r_req, int | np.integer):
            n_over = max(10, 2 * int(r_req))
        use_random = self.svd == "randomized" or (
            self.svd == "auto"
            and isinstance(r_req, int | np.integer)
            and min_dim >= 256
            and (r_req + n_over) * 4 <= min_dim
        )
        if use_random and not isinstance(r_req, int | np.integer):
            raise ConfigError(f"svd='randomized' needs an integer rank; got rank={r_req!r}")

        if dask_in:
            if n_cols < D:
                raise ConfigError(
                    f"dask trajectories need at least as many snapshot pairs as delay coordinates for the TSQR "
                    f"route; got {n_cols} pairs < dim*(delays+1) = {D} (such data fits in memory: pass numpy)"
                )
            # exact SVD through Dask's TSQR: Xᵀ = Q R, R = U_R Σ W_Rᵀ, so X = W_R Σ (Q U_R)ᵀ; V follows below
            import dask.array as da

            R = da.linalg.tsqr(Xd, compute_svd=False)[1].compute()
            U_R, s_np, WRt = np.linalg.svd(R)
            U = torch.as_tensor(WRt.T.copy(), dtype=dtype, device=device)
            s = torch.as_tensor(s_np, dtype=dtype, device=device)
            V, n_iter = None, 0
        elif use_random:
            (U, s, Vt), n_iter = randomized_svd(
                Xt.T, int(r_req), n_oversamples=n_over, n_iter=self.n_iter, seed=self.seed, dtype=dtype,
                full_sketch=True, return_n_iter=True,
            )
            V = Vt.T
        else:
            # SVD of the (n_cols, D) matrix Xᵀ = V Σ Uᵀ avoids a copy of the transposed view
            V, s, Ut = torch.linalg.svd(Xt, full_matrices=False)
            U, n_iter = Ut.T, 0

        floor = numerical_rank(s, shape=(D, n_cols), dtype=dtype)
        tol_num = floor.threshold
        if r_req is None:
            r = floor.rank
        elif r_req == "optimal":
            r = optimal_hard_threshold_rank(s, D, n_cols)
        elif isinstance(r_req, float):
            r = numerical_rank(s, rule="energy", energy=r_req).rank
        else:
            r = int(r_req)
        n_ok = min(r, floor.rank)
        if n_ok < r:
            warnings.warn(
                f"rank={r} exceeds the numerical rank {n_ok} of the Hankel matrix (σ below {tol_num:.2e}); "
                f"using rank {max(n_ok, 1)}",
                NumericalWarning,
                stacklevel=2,
            )
            r = max(n_ok, 1)

        if V is None:  # dask: V_r = Xᵀ U_r Σ_r⁻¹ and Y V_r Σ_r⁻¹ in one more pass over the blocks
            import dask

            U_np = U[:, :r].cpu().numpy()
            s_np = s[:r].cpu().numpy()
            Vd = Xd @ (U_np / s_np)
            V_np, YV_np = dask.compute(Vd, Yd.T @ Vd / s_np)
            sg = sign_flips(U_np)
            U_r = torch.as_tensor(U_np * sg, dtype=dtype, device=device)
            V_r = torch.as_tensor(V_np * sg, dtype=dtype, device=device)
            s_r = s[:r]
            YV = torch.as_tensor(YV_np * sg, dtype=dtype, device=device)
        else:
            sg = sign_flips(U[:, :r])
            U_r, V_r = U[:, :r] * sg, V[:, :r] * sg
            s_r = s[:r]
            YV = Yt.T @ V_r / s_r  # (D, r) = Y V_r Σ_r⁻¹
        A_tilde = U_r.T @ YV  # (r, r)
        lam, W = torch.linalg.eig(A_tilde)
        order = sorted(range(r), key=lambda i: (-abs(complex(lam[i])), math.atan2(lam[i].imag, lam[i].real)))
        order_t = torch.tensor(order, device=lam.device)
        lam, W = lam[order_t], W[:, order_t]
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        modes = (YV.to(cdt) @ W) if self.exact else (U_r.to(cdt) @ W)
        if modes.device.type == "cpu":
            amps = torch.linalg.lstsq(modes, z0.to(cdt).unsqueeze(1)).solution.squeeze(1)
        else:  # CUDA lstsq only supports full-rank "gels"; the pseudo-inverse is safe for rank-deficient modes
            amps = torch.linalg.pinv(modes) @ z0.to(cdt)

        self._device_, self._dtype_ = device, dtype
        self._U, self._A, self._YV = U_r, A_tilde, YV
        self.rank_ = r
        self.rank_gap_ = gap_at(s, r)
        self.n_features_in_ = trajectories.shape[-1] if dask_in else trajs[0].shape[-1]
        self.n_columns_ = n_cols
        self.power_iterations_ = n_iter
        out = self._out
        self.eigs = out(lam)
        self.modes = out(modes)
        self.amplitudes = out(amps)
        self.operator = out(A_tilde)
        self.basis_ = out(U_r)
        self.exact_basis_ = out(YV)
        self.singular_values_ = out(s)
        self.right_singular_vectors_ = out(V_r)
        return self

    @property
    def n_features_(self) -> int:
        """Deprecated alias of ``n_features_in_`` (the scikit-learn name)."""
        warnings.warn("HankelDMD.n_features_ is deprecated; use n_features_in_", DeprecationWarning, stacklevel=2)
        return self.n_features_in_

    def _out(self, t: torch.Tensor) -> Any:
        return t.detach().cpu().numpy() if self.backend == "numpy" else t

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "rank_"):
            raise NotFittedError("HankelDMD is not fitted; call fit(trajectories) first")

    def _in(self, x: Any, name: str, ndim: int, last: int) -> tuple[torch.Tensor, Any]:
        self._check_fitted()
        t = _as_tensor(x, name, self._dtype_, self._device_, ndim)
        if t.shape[-1] != last:
            raise ShapeError(f"{name} must have last dimension {last}; got shape {tuple(t.shape)}")
        return t, x

    def _back(self, t: torch.Tensor, like: Any) -> Any:
        if is_torch(like):
            return t.to(like.device)
        return t.detach().cpu().numpy()

    def _lift(self, window: Any) -> tuple[torch.Tensor, Any]:
        """(y₀, window): y₀ = U_rᵀ z (batch, r) of the delay vectors z = [x_t; …; x_{t−h}] of windows
        (batch, h+1, dim) in time order, checked; the window is returned to give results its device/type."""
        self._check_fitted()  # before n_features_in_ is read
        w, like = self._in(window, "window", 3, self.n_features_in_)
        if w.shape[1] != self.delays + 1:
            raise ShapeError(f"window must have delays+1 = {self.delays + 1} snapshots on axis 1; "
                             f"got shape {tuple(w.shape)}")
        return w.flip(1).reshape(w.shape[0], -1) @ self._U, like

    def lift(self, window: Any) -> Any:
        """Reduced coordinates y₀ = U_rᵀ z of delay windows.

        Arguments:
            window: (batch, h+1, dim) in TIME ORDER, oldest first (``window[:, -1]`` is x_t).

        Returns:
            (batch, r) real coordinates (tensor on the input's device, or numpy for numpy input).
        """
        y, like = self._lift(window)
        return self._back(y, like)

    def advance(self, y: Any, steps: int = 1) -> Any:
        """Apply the reduced operator ``steps`` times: y ← Ã^steps y.

        Arguments:
            y: (batch, r) reduced coordinates.
            steps: number of steps ≥ 0.

        Returns:
            (batch, r).
        """
        self._check_fitted()
        t, like = self._in(y, "y", 2, self.rank_)
        for _ in range(int(steps)):
            t = t @ self._A.T
        return self._back(t, like)

    def readout(self, y: Any) -> Any:
        """Newest snapshot of the delay vector U_r y: the first ``dim`` rows of U_r @ y.

        Arguments:
            y: (batch, r) reduced coordinates.

        Returns:
            (batch, dim).
        """
        self._check_fitted()
        t, like = self._in(y, "y", 2, self.rank_)
        return self._back(t @ self._U[: self.n_features_in_].T, like)

    def predict(self, window: Any, steps: int = 1, readout: str = "projected") -> Any:
        """Predict the next ``steps`` snapshots after each window.

        ``readout="projected"``: lift y = U_rᵀ z, advance with Ã, read out the newest block of U_r y —
        predictions stay in span(U_r). ``readout="exact"``: apply the full-state linear map
        A_full = Y V_r Σ_r⁻¹ U_rᵀ (dim·(h+1) × dim·(h+1), never formed) to the full delay vector,
        z ← A_full z at every step (no shift structure imposed), and read the newest block of z; the
        first step is not projected back onto span(U_r), which is what exact DMD modes describe.

        Arguments:
            window: (batch, h+1, dim) in time order, oldest first.
            steps: number of future snapshots ≥ 1.
            readout: ``"projected"`` or ``"exact"``.

        Returns:
            (batch, steps, dim): predictions of x_{t+1} … x_{t+steps}.
        """
        if readout not in ("projected", "exact"):
            raise ConfigError(f"readout must be 'projected' or 'exact'; got {readout!r}")
        if int(steps) < 1:
            raise ConfigError(f"steps must be >= 1; got {steps!r}")
        y, like = self._lift(window)
        d = self.n_features_in_
        outs = []
        for _ in range(int(steps)):
            if readout == "projected":
                y = y @ self._A.T
                outs.append(y @ self._U[:d].T)
            else:
                z = y @ self._YV.T  # A_full z
                y = z @ self._U
                outs.append(z[:, :d])
        return self._back(torch.stack(outs, 1), like)

    def __repr__(self) -> str:
        return (f"HankelDMD(delays={self.delays}, rank={self.rank!r}, exact={self.exact}, "
                f"backend={self.backend!r}, svd={self.svd!r})")
