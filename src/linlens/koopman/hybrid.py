"""Koopman hybrids: a trained layer replaced by a DMD operator on delay coordinates, and honest baselines.

:class:`KoopmanHybrid` is a drop-in ``nn.Module``. For N scaled layers and h delays it runs the pre-layers
and the first h scaled layers g_1 … g_h (giving x₀ … x_h), stacks the delay window z = [x_h; …; x₀], advances
it N+1−h times with the fitted linear operator, takes the real part, keeps the first m entries (the
padding is dropped) and runs the post-layers. It **never calls the replaced layer** — it does not even hold
it — nor g_{h+1} … g_N. The DMD matrices are buffers, so ``state_dict`` saves and loads them.

Baselines (:class:`LeastSquaresReplacement`): the affine least-squares replacement x₀ ↦ L_ℓ(x₀)
(0 nonlinear layers), and the control "k untrained near-identity ReLU layers + least-squares readout from
the window [x_k; …; x₀]", which has the same nonlinear layers at inference as a hybrid with h = k but no
scaling and no DMD.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308.

Example:
    >>> from linlens.nn import mlp
    >>> net = mlp(2, [8, 6], 3, seed=0)
    >>> hyb = linearize_layer(net, 1, torch.rand(200, 2), n_scaled=3, delays=1, rank=None,
    ...                       scale_kwargs={"epochs": 0}, progress=False)
    >>> hyb(torch.rand(4, 2)).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from linlens.errors import ConfigError, ShapeError
from linlens.koopman.dmd import HankelDMD, delay_embed
from linlens.koopman.scaling import ScaledModel, near_identity_layers, scale_layer, split_layers
from linlens.koopman.trajectories import _layer_states, pad_state, record_trajectories

__all__ = ["KoopmanHybrid", "LeastSquaresReplacement", "linearize_layer", "fit_hybrid", "fit_least_squares"]


def _n_params(mods: nn.Module) -> int:
    return sum(p.numel() for p in mods.parameters())


class KoopmanHybrid(nn.Module):
    """A network whose layer ℓ is replaced by a linear (DMD) operator on delay coordinates.

    References:
        N. Aswani, S. Jabari, M. Shafique, arXiv:2409.01308 (Koopman hybrid, Fig. 1).

    Arguments:
        pre: the layers before the replaced one.
        scaled: the first h scaled layers (``nn.ModuleList``; empty for h = 0).
        basis: U_r, (width·(h+1), r).
        operator: Ã, (r, r).
        full_map: Y V_r Σ_r⁻¹, (width·(h+1), r) — with ``basis`` it forms A_full = Y V_r Σ_r⁻¹ U_rᵀ.
        post: the layers after the replaced one.
        n_scaled: N, the number of scaled layers the operator was fitted on.
        out_features: m, the replaced layer's output width.
        readout: ``"projected"`` (y ← Ã y in span(U_r), read the newest block of U_r y) or ``"exact"``
            (z ← A_full z, no projection back onto span(U_r)).
        pad_value: value used to pad states narrower than ``width`` (only when m > n).
        constant: the states carry a trailing constant 1 (EDMD constant observable, see
            :func:`record_trajectories`).

    Attributes:
        delays: h. width: state width max(n, m). steps: N+1−h DMD steps.
        dmd_: the fitted :class:`HankelDMD` when built by :func:`fit_hybrid` (not saved in the state dict).

    Example:
        >>> from linlens.nn import mlp
        >>> net, X = mlp(2, [8, 6], 3, seed=0), torch.rand(200, 2)
        >>> hyb = linearize_layer(net, 1, X, n_scaled=3, delays=1, rank=4, scale_kwargs={"epochs": 0}, progress=False)
        >>> hyb.delays, tuple(hyb.basis.shape), tuple(hyb.operator.shape), hyb(X[:4]).shape
        (1, (16, 4), (4, 4), torch.Size([4, 3]))
    """

    def __init__(self, pre: nn.Module, scaled: nn.ModuleList, basis: torch.Tensor, operator: torch.Tensor,
                 full_map: torch.Tensor, post: nn.Module, *, n_scaled: int, out_features: int,
                 readout: str = "projected", pad_value: float = -1.0, constant: bool = False) -> None:
        super().__init__()
        if readout not in ("projected", "exact"):
            raise ConfigError(f"readout must be 'projected' or 'exact'; got {readout!r}")
        h = len(scaled)
        if h > n_scaled:
            raise ConfigError(f"delays h={h} must be <= n_scaled N={n_scaled}")
        D, r = basis.shape
        if D % (h + 1):
            raise ShapeError(f"basis has {D} rows, not a multiple of delays+1 = {h + 1}")
        if operator.shape != (r, r) or full_map.shape != (D, r):
            raise ShapeError(f"operator must be ({r}, {r}) and full_map ({D}, {r}); got "
                             f"{tuple(operator.shape)} and {tuple(full_map.shape)}")
        self.pre, self.scaled, self.post = pre, scaled, post
        self.register_buffer("basis", basis.detach().clone())
        self.register_buffer("operator", operator.detach().clone())
        self.register_buffer("full_map", full_map.detach().clone())
        self.n_scaled, self.delays, self.out_features = int(n_scaled), h, int(out_features)
        self.width = D // (h + 1)
        self.readout, self.pad_value, self.constant = readout, float(pad_value), bool(constant)
        self.dmd_: HankelDMD | None = None

    @property
    def steps(self) -> int:
        """Number of DMD steps N+1−h."""
        return self.n_scaled + 1 - self.delays

    @property
    def rank(self) -> int:
        """r, the rank of the operator."""
        return int(self.basis.shape[1])

    def replacement_params(self) -> int:
        """Parameters that stand in for the replaced layer: the h scaled layers run plus the DMD matrices used.

        Projected readout uses U_r and Ã; exact readout uses U_r and Y V_r Σ_r⁻¹.
        """
        D, r = self.basis.shape
        dmd = D * r + (r * r if self.readout == "projected" else D * r)
        return _n_params(self.scaled) + dmd

    def lift_window(self, x: torch.Tensor) -> torch.Tensor:
        """Delay vectors z = [x_h; …; x₀] of model inputs, (batch, width·(h+1)) in the buffers' dtype."""
        states = _layer_states(self.pre, self.scaled, x)
        w = self.width - int(self.constant)
        states = [pad_state(t, w, self.pad_value) for t in states]
        if self.constant:
            states = [torch.cat([t, torch.ones(len(t), 1, dtype=t.dtype, device=t.device)], -1) for t in states]
        return torch.cat(states[::-1], -1).to(self.basis.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lift_window(x)
        U, d = self.basis, self.width
        y = z @ U
        if self.readout == "projected":
            for _ in range(self.steps):
                y = y @ self.operator.T
            out = y @ U[:d].T
        else:
            for _ in range(self.steps):
                z = y @ self.full_map.T
                y = z @ U
            out = z[:, :d]
        out = out[:, : self.out_features].real.to(x.dtype if x.is_floating_point() else torch.float32)
        return self.post(out)


class LeastSquaresReplacement(nn.Module):
    """Baseline: k (untrained) near-identity ReLU layers and an affine least-squares readout of layer ℓ.

    k = 0 is the affine least-squares replacement x₀ ↦ L_ℓ(x₀). With k ≥ 1 the readout sees the window
    [x_k; …; x₀] of the untrained layers' states — the control for a Koopman hybrid with h = k.

    Arguments:
        pre, post: the layers around the replaced one.
        layers: k square layers (``nn.ModuleList``, possibly empty).
        readout: ``nn.Linear(n·(k+1), m)`` (fitted by :func:`fit_least_squares`, kept in float64 because
            least-squares coefficients of nearly collinear ReLU features can be large).

    Example:
        >>> from linlens.nn import mlp
        >>> net, X = mlp(2, [8, 6], 3, seed=0), torch.rand(200, 2)
        >>> ls = fit_least_squares(net, 2, X)  # the last layer is affine: its least-squares fit is exact
        >>> bool(torch.allclose(ls(X), net(X), atol=1e-6)), ls.replacement_params()  # 6·3 weights + 3 biases
        (True, 21)
    """

    def __init__(self, pre: nn.Module, layers: nn.ModuleList, readout: nn.Linear, post: nn.Module) -> None:
        super().__init__()
        self.pre, self.layers, self.readout, self.post = pre, layers, readout, post

    def replacement_params(self) -> int:
        """Parameters standing in for the replaced layer (k layers + readout)."""
        return _n_params(self.layers) + _n_params(self.readout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Window [x_k; …; x₀], (batch, n·(k+1))."""
        return torch.cat(_layer_states(self.pre, self.layers, x)[::-1], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.post(self.readout(f.to(self.readout.weight.dtype)).to(f.dtype))


def _tensor(x: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ShapeError(f"data must be 2-D (n_samples, d_in); got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=dtype)


@torch.no_grad()
def fit_least_squares(model: nn.Module, layer: int, data: Any, n_layers: int = 0, *, noise: float = 0.01,
                      seed: int = 0, ridge: float = 1e-12,
                      layers: nn.ModuleList | None = None) -> LeastSquaresReplacement:
    """Fit the least-squares baseline for layer ``layer`` on ``data`` (float64 normal equations).

    Arguments:
        model: ``nn.Sequential`` MLP (not modified; modules are shared, frozen use only).
        layer: index ℓ ≥ 1 of the replaced Linear.
        data: model inputs (n_samples, d_in).
        n_layers: k untrained near-identity layers (0: affine replacement).
        noise, seed: initialization of the k layers (as :func:`near_identity_layers`).
        layers: k given square layers instead of untrained ones — e.g. the first k TRAINED scaled layers of a
            :class:`ScaledModel` (``list(sm.scaled)[:k]``): the baseline that isolates the DMD step of a hybrid
            with h = k (same nonlinear layers, affine least-squares readout instead of DMD). Overrides
            ``n_layers``.
        ridge: eigenvalues of the (column-normalized) Gram matrix below ``ridge``·max are dropped
            (minimum-norm solution on the kept subspace; 1e-12 ≈ singular values below 1e-6 relative).

    Returns:
        :class:`LeastSquaresReplacement`.

    Example:
        >>> from linlens.nn import mlp
        >>> net = mlp(2, [5, 4], 2, seed=0)
        >>> ls = fit_least_squares(net, 1, torch.rand(100, 2))
        >>> ls.replacement_params()
        24
    """
    pre, target, post = split_layers(model, layer)
    lin = target[0]
    dev, dt = lin.weight.device, lin.weight.dtype
    X = _tensor(data, dt, dev)
    if layers is not None:
        layers = nn.ModuleList(list(layers))
        n_layers = len(layers)
    elif n_layers > 0:
        layers = near_identity_layers(lin.in_features, n_layers, noise=noise, seed=seed, dtype=dt).to(dev)
    else:
        layers = nn.ModuleList()
    readout = nn.Linear(lin.in_features * (n_layers + 1), lin.out_features, dtype=torch.float64).to(dev)
    model_ls = LeastSquaresReplacement(pre, layers, readout, post).eval()
    F = model_ls.features(X).double()
    Y = target(pre(X)).double()
    F1 = torch.cat([F, torch.ones(len(F), 1, dtype=F.dtype, device=F.device)], 1)
    # normal equations on unit-norm columns, truncated eigen-solve: minimum-norm fit that stays stable when
    # ReLU features are dead or collinear (rank-deficient design)
    scale = F1.norm(dim=0).clamp_min(torch.finfo(F1.dtype).tiny)
    Fs = F1 / scale
    lam, Q = torch.linalg.eigh(Fs.T @ Fs)
    keep = lam > max(float(ridge), 1e-300) * float(lam.max())
    Qk = Q[:, keep]
    coef = (Qk / lam[keep]) @ (Qk.T @ (Fs.T @ Y))
    coef = coef / scale[:, None]  # (p+1, m)
    readout.weight.copy_(coef[:-1].T)
    readout.bias.copy_(coef[-1])
    return model_ls


def fit_hybrid(scaled_model: ScaledModel, trajectories: torch.Tensor, delays: int, rank: int | float | str | None,
               readout: str = "projected", *, pad_value: float = -1.0, constant: bool = False,
               **dmd_kwargs: Any) -> KoopmanHybrid:
    """Fit HankelDMD on recorded trajectories and build the hybrid (no retraining of the scaled layers).

    Arguments:
        scaled_model: the :class:`ScaledModel` the trajectories came from.
        trajectories: (n_traj, N+2, width) from :func:`record_trajectories`.
        delays: h in [0, N].
        rank: DMD rank (see :class:`HankelDMD`).
        readout: ``"projected"`` or ``"exact"``.
        pad_value: the padding used when recording (only matters when m > n).
        constant: the trajectories were recorded with ``constant=True``.
        dmd_kwargs: further :class:`HankelDMD` arguments (``svd``, ``seed``, ``device``, …).

    Returns:
        :class:`KoopmanHybrid` with ``dmd_`` set.

    Example:
        >>> from linlens.nn import mlp
        >>> net, X = mlp(2, [8, 6], 3, seed=0), torch.rand(200, 2)
        >>> sm = scale_layer(net, 1, 3, X, epochs=0, progress=False)
        >>> hyb = fit_hybrid(sm, record_trajectories(sm, X), delays=1, rank=4)
        >>> hyb.replacement_params()  # one scaled 8×8 layer and its bias, U_r (16×4) and Ã (4×4)
        152
    """
    N = scaled_model.n_scaled
    if trajectories.ndim != 3 or trajectories.shape[1] != N + 2:
        raise ShapeError(f"trajectories must be (n_traj, N+2={N + 2}, width); got {tuple(trajectories.shape)}")
    if isinstance(delays, bool) or not isinstance(delays, int | np.integer) or not 0 <= delays <= N:
        raise ConfigError(f"delays must be an int in [0, n_scaled={N}]; got {delays!r}")
    dmd_kwargs.setdefault("device", trajectories.device)
    dmd = HankelDMD(delays=int(delays), rank=rank, backend="torch", dtype=torch.float64, **dmd_kwargs)
    dmd.fit(trajectories)
    U = dmd.basis_.to(torch.float64)
    V = dmd.right_singular_vectors_.to(torch.float64)
    s = dmd.singular_values_[: dmd.rank_].to(torch.float64)
    traj = trajectories.to(device=V.device, dtype=torch.float64)
    Y = delay_embed(traj, int(delays))[:, 1:, :].reshape(-1, U.shape[0])  # same column order as the fit
    full_map = (Y.T @ V) / s
    dev = next(scaled_model.parameters()).device
    hyb = KoopmanHybrid(
        scaled_model.pre, nn.ModuleList(list(scaled_model.scaled)[: int(delays)]), U.to(dev),
        dmd.operator.to(device=dev, dtype=torch.float64), full_map.to(dev), scaled_model.post,
        n_scaled=N, out_features=scaled_model.out_features, readout=readout, pad_value=pad_value,
        constant=constant,
    ).eval()
    hyb.dmd_ = dmd
    return hyb


def linearize_layer(
    model: nn.Module,
    layer: int,
    data: Any,
    n_scaled: int,
    delays: int,
    rank: int | float | str | None,
    readout: str = "projected",
    *,
    scaled: ScaledModel | None = None,
    pad_value: float = -1.0,
    constant: bool = False,
    n_trajectories: int | None = None,
    scale_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    progress: bool = True,
) -> KoopmanHybrid:
    """Replace layer ``layer`` of ``model`` by a Koopman (Hankel DMD) operator: scale, record, fit, assemble.

    References:
        N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via
        Koopman Operator Theory", arXiv:2409.01308.

    Arguments:
        model: trained ``nn.Sequential`` MLP (not modified).
        layer: index ℓ ≥ 1 of the Linear to replace (with its activation).
        data: model inputs used for scaling and as trajectories (n_samples, d_in).
        n_scaled: N scaled layers; delays: h ≤ N; rank: DMD rank; readout: ``"projected"``/``"exact"``.
        scaled: an already trained :class:`ScaledModel` to reuse (skips :func:`scale_layer`).
        pad_value: padding of narrower states (default −1).
        constant: add a constant observable 1 to every state (lets the operator be affine).
        n_trajectories: use a random subset of this many inputs as trajectories (seeded); None = all.
        scale_kwargs: extra arguments of :func:`scale_layer` (``epochs``, ``lr``, ``init``, …).
        seed, device, progress: as in :func:`scale_layer`.

    Returns:
        :class:`KoopmanHybrid` in eval mode (``dmd_`` holds the fitted :class:`HankelDMD`).

    Example:
        >>> from linlens.nn import mlp
        >>> net, X = mlp(2, [8, 6], 3, seed=0), torch.rand(200, 2)
        >>> hyb = linearize_layer(net, 1, X, n_scaled=3, delays=1, rank=4, scale_kwargs={"epochs": 0}, progress=False)
        >>> sm = scale_layer(net, 1, 3, X, epochs=0, progress=False)  # the same steps one by one
        >>> bool(torch.equal(hyb.operator, fit_hybrid(sm, record_trajectories(sm, X), 1, 4).operator))
        True
    """
    if scaled is None:
        scaled = scale_layer(model, layer, n_scaled, data, seed=seed, device=device, progress=progress,
                             **(scale_kwargs or {}))
    elif scaled.n_scaled != n_scaled or scaled.layer != layer:
        raise ConfigError(f"scaled model has N={scaled.n_scaled}, layer={scaled.layer}; "
                          f"expected N={n_scaled}, layer={layer}")
    X = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    if n_trajectories is not None and n_trajectories < len(X):
        idx = np.random.default_rng(seed).choice(len(X), size=int(n_trajectories), replace=False)
        X = X[torch.as_tensor(np.sort(idx))]
    traj = record_trajectories(scaled, X, pad_value=pad_value, constant=constant)
    return fit_hybrid(scaled, traj, delays, rank, readout, pad_value=pad_value, constant=constant)
