"""linlens.tracking.saxe: the closed-form mode strength against its defining ODE (finite differences) and against
plain gradient descent on a two-layer linear network started from decoupled_init (an independent simulation)."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.errors import ConfigError
from linlens.tracking.saxe import decoupled_init, saxe_half_rise_time, saxe_mode_strength


@pytest.mark.parametrize("s,u0,tau", [(2.0, 1e-3, 1.0), (0.5, 1e-2, 20.0), (3.0, 0.2, 5.0)])
def test_mode_strength_solves_the_logistic_ode(s, u0, tau):
    # τ du/dt = 2u(s − u), u(0) = u₀: checked by central differences along the curve
    t = np.linspace(0.0, 8 * tau / s, 401)
    u = saxe_mode_strength(t, s, u0, tau)
    h = 1e-4 * tau / s
    du = (saxe_mode_strength(t + h, s, u0, tau) - saxe_mode_strength(t - h, s, u0, tau)) / (2 * h)
    np.testing.assert_allclose(tau * du, 2 * u * (s - u), rtol=1e-5, atol=1e-9 * s * s)
    assert u[0] == pytest.approx(u0) and saxe_mode_strength(1e9, s, u0, tau) == pytest.approx(s)
    th = saxe_half_rise_time(s, u0, tau) if u0 < s / 2 else None
    if th is not None:
        assert saxe_mode_strength(th, s, u0, tau) == pytest.approx(s / 2)


def test_gradient_descent_from_decoupled_init_follows_the_closed_form():
    # the independent route: plain full-batch gradient descent on L = ½ E‖y* − W₂W₁x‖² with whitened inputs
    # (E xxᵀ = I exactly), the gradient written out by hand; each mode's strength uᵀW₂W₁v against u(t), τ = 1/η
    rng = np.random.default_rng(0)
    d, hidden, lr, steps = 4, 4, 0.01, 600
    U = np.linalg.qr(rng.normal(size=(d, d)))[0]
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    s = np.array([2.0, 1.0, 0.5])
    T = (U[:, :3] * s) @ V[:, :3].T
    W1, W2 = decoupled_init(T, hidden, u0=1e-3, seed=1)
    tracked = []
    for k in range(steps + 1):
        if k % 100 == 0:
            tracked.append((k, np.einsum("ia,ij,ja->a", U[:, :3], W2 @ W1, V[:, :3])))
        E = T - W2 @ W1  # with E xxᵀ = I the gradient of L is −W₂ᵀE (for W₁) and −E W₁ᵀ (for W₂)
        W1, W2 = W1 + lr * W2.T @ E, W2 + lr * E @ W1.T

    def worst(tau):
        return max(float(np.max(np.abs(u - [saxe_mode_strength(k, sa, 1e-3, tau) for sa in s]) / s))
                   for k, u in tracked)

    assert worst(1 / lr) < 0.02  # O(η s) per step: the flow's discretisation
    assert worst(2 / lr) > 0.2  # the check can fail: the wrong time constant is far off


def test_refusals():
    with pytest.raises(ConfigError):
        saxe_mode_strength(1.0, s=-1.0, u0=0.1)
    with pytest.raises(ConfigError):
        saxe_half_rise_time(1.0, u0=0.6)  # u₀ ≥ s/2: never rises to s/2
    with pytest.raises(ConfigError):
        decoupled_init(np.eye(2), hidden=2, u0=0.0)
