"""Closed-form learning curves of a two-layer deep linear network (Saxe, McClelland & Ganguli, ICLR 2014).

For y = W₂W₁x trained by gradient flow τ dWₖ/dt = −∂L/∂Wₖ on L = ½ E‖y* − W₂W₁x‖² with whitened inputs
(E[xxᵀ] = I) and a target map of singular value decomposition Σ_yx = E[y* xᵀ] = Σ_α s_α u_α v_αᵀ, weights that
start *decoupled and balanced* — W₁ = R diag(√a₀) Vᵀ, W₂ = U diag(√a₀) Rᵀ with R orthogonal — stay so, and the
strength u_α = u_αᵀ W₂W₁ v_α of each mode follows the logistic ODE τ du/dt = 2u(s − u):

    u(t) = s e^{2st/τ} / (e^{2st/τ} − 1 + s/u₀).

Stronger modes are learned first, each on a time scale τ/s (the half-rise time is τ ln(s/u₀ − 1)/(2s)): the
singular values appear one after another. Plain gradient descent with learning rate η is this flow with τ = 1/η
and t the step, up to O(η s) per step.

References:
    A. M. Saxe, J. L. McClelland, S. Ganguli. Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks. ICLR 2014, https://arxiv.org/abs/1312.6120 (eq. 6 and Fig. 3).

Example:
    >>> u = saxe_mode_strength(np.array([0.0, 1e6]), s=2.0, u0=1e-3, tau=1.0)
    >>> u.round(6).tolist()
    [0.001, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linlens.errors import ConfigError, ShapeError
from linlens.validation import as_array

__all__ = ["saxe_mode_strength", "saxe_half_rise_time", "decoupled_init"]


def saxe_mode_strength(t: Any, s: float, u0: float, tau: float = 1.0) -> np.ndarray:
    """u(t) = s e^{2st/τ} / (e^{2st/τ} − 1 + s/u₀): the strength of one mode of a two-layer linear network.

    Arguments:
        t: times (any shape), ≥ 0 (steps for gradient descent with τ = 1/learning rate).
        s: the target's singular value of this mode (> 0).
        u0: the mode's initial strength (0 < u₀).
        tau: the time constant τ (1/learning rate).

    Returns:
        u(t), same shape as ``t``.

    Example:
        >>> round(float(saxe_mode_strength(saxe_half_rise_time(3.0, 0.01, 1.0), 3.0, 0.01, 1.0)), 12)  # s/2
        1.5
    """
    if not (s > 0 and u0 > 0 and tau > 0):
        raise ConfigError(f"s, u0 and tau must be positive; got s={s!r}, u0={u0!r}, tau={tau!r}")
    t = np.asarray(t, dtype=np.float64)
    # s / (1 + (s/u0 − 1) e^{−2st/τ}): the same formula without overflow at large t
    return s / (1.0 + (s / u0 - 1.0) * np.exp(-2.0 * s * t / tau))


def saxe_half_rise_time(s: float, u0: float, tau: float = 1.0) -> float:
    """The time at which u(t) = s/2: τ ln(s/u₀ − 1)/(2s) (needs u₀ < s/2).

    Example:
        >>> round(saxe_half_rise_time(1.0, 1e-3, 10.0), 4)
        34.5338
    """
    if not (s > 0 and 0 < u0 < s / 2 and tau > 0):
        raise ConfigError(f"need s > 0, 0 < u0 < s/2 and tau > 0; got s={s!r}, u0={u0!r}, tau={tau!r}")
    return float(tau * np.log(s / u0 - 1.0) / (2.0 * s))


def decoupled_init(target: Any, hidden: int, u0: float, rank: int | None = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, decoupled initial weights (W₁ (hidden, d_in), W₂ (d_out, hidden)) for a target map: every one of
    the target's top ``rank`` singular modes starts with strength u₀, the rest at 0; a random orthogonal R mixes the
    hidden units (W₁ = R diag(√u₀) Vᵀ, W₂ = U diag(√u₀) Rᵀ).

    Arguments:
        target: the target map Σ_yx (d_out, d_in).
        hidden: hidden width (≥ rank).
        u0: initial strength of each mode (> 0).
        rank: modes to start (default the numerical rank of the target).
        seed: seed of R.

    Example:
        >>> W1, W2 = decoupled_init(np.diag([3.0, 1.0, 0.0]), hidden=4, u0=0.01)
        >>> np.round(np.linalg.svd(W2 @ W1, compute_uv=False), 8).tolist()
        [0.01, 0.01, 0.0]
    """
    T = as_array(target, "target", ndim=2)
    U, s, Vt = np.linalg.svd(T)
    r = int(np.sum(s > max(T.shape) * np.finfo(float).eps * (s[0] if s.size else 0))) if rank is None else int(rank)
    if not 0 <= r <= min(hidden, s.size):
        raise ShapeError(f"rank must be in [0, min(hidden, d)] = [0, {min(hidden, s.size)}]; got {r}")
    if not u0 > 0:
        raise ConfigError(f"u0 must be positive; got {u0!r}")
    R = np.linalg.qr(np.random.default_rng(seed).normal(size=(hidden, hidden)))[0]
    a = np.sqrt(u0)
    W1 = a * R[:, :r] @ Vt[:r]
    W2 = a * U[:, :r] @ R[:, :r].T
    return W1, W2
