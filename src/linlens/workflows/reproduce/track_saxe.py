"""``linlens reproduce track-saxe``: a deep linear network learns a low-rank map one singular value after another.

Saxe, McClelland & Ganguli (ICLR 2014) solved the gradient-flow dynamics of a two-layer linear network y = W₂W₁x
with whitened inputs: from small balanced, decoupled weights each singular mode of the target's input-output
correlation Σ_yx = Σ_α s_α u_α v_αᵀ grows along a sigmoid, u_α(t) = s e^{2st/τ}/(e^{2st/τ} − 1 + s/u₀), stronger modes
first (:mod:`linlens.tracking.saxe`). Here:

1. Whitened inputs (XᵀX/n = I exactly), noise-free targets y = W* x with W* of singular values
   :data:`SINGULAR_VALUES` (rank 4 in d = 8), full-batch gradient descent on ½ mean ‖y − W₂W₁x‖² with learning
   rate η (τ = 1/η, t = the step).
2. The gate: the network learns the map (relative error of W₂W₁ against W* at the end).
3. Decoupled start (all four modes at u₀): :class:`~linlens.tracking.Tracker` at every tracked step gives the
   surrogate C (= W₂W₁ exactly: R² = 1), its error against C_data (= W*) and the rank list; each mode's strength
   u_αᵀ C v_α is compared with the closed form — the largest deviation over steps, divided by s_α, is reported and
   a test holds it under :data:`TOLERANCE`.
4. Small random start (entries N(0, ε²)): the same tracking; the order in which the modes reach half of s_α, and
   the rank of the product at a relative tolerance :data:`RANK_TOL` rising one by one (the saddle-to-saddle
   picture), against the closed form's half-rise times.

References:
    A. M. Saxe, J. L. McClelland, S. Ganguli. Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks. ICLR 2014, https://arxiv.org/abs/1312.6120.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from linlens.errors import ConfigError
from linlens.report import Report, check_destination
from linlens.report import tracking_figures as tf
from linlens.tracking import Tracker
from linlens.tracking.saxe import decoupled_init, saxe_half_rise_time, saxe_mode_strength
from linlens.workflows.track import add_tracking_section

__all__ = ["run_track_saxe", "saxe_experiment", "SINGULAR_VALUES", "TOLERANCE", "RANK_TOL"]

#: The target's nonzero singular values (d = 8, rank 4).
SINGULAR_VALUES = (3.0, 2.0, 1.0, 0.5)
#: Largest |u_α(t) − u_α^closed(t)| / s_α over the tracked steps allowed by the test (decoupled start, η ≤ 2e-3):
#: plain gradient descent is the flow up to O(η s) per step (measured 0.0041·s for s = 3 at η = 2e-3, seed 0).
TOLERANCE = 0.01
#: Relative rank tolerance of the rank list in this example: a mode counts once its strength is ≥ 5% of the largest.
RANK_TOL = 0.05


def _whitened(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    Z = rng.normal(size=(n, d))
    Z -= Z.mean(axis=0)
    w, V = np.linalg.eigh(Z.T @ Z / n)
    return Z @ (V / np.sqrt(w)) @ V.T  # XᵀX/n = I, mean 0


def saxe_experiment(*, init: str, steps: int, lr: float, track_every: int, seed: int = 0, d: int = 8,
                    hidden: int = 8, n: int = 256, u0: float = 1e-3, n_boot: int = 20) -> dict[str, Any]:
    """Train the two-layer linear network by full-batch gradient descent while a :class:`Tracker` follows it.

    Arguments:
        init: "decoupled" (balanced, aligned with the target's modes, each at strength u₀) or "random" (entries
            N(0, ε²) with ε² = u₀/√hidden, so that a typical mode strength is ≈ ±u₀).
        steps: gradient steps; lr: learning rate η (τ = 1/η); track_every: steps between tracked points.
        seed: seed of the data, the target's singular vectors and the initial weights.
        d, hidden, n: input/output width, hidden width, rows.
        u0: initial mode strength.
        n_boot: bootstrap replicates of the tracker.

    Returns:
        dict with the :class:`~linlens.tracking.TrackingResult` ("result"), "steps" (tracked), "strengths"
        (n_tracked, rank) u_α from the tracked surrogates, "closed_form" (same shape; u₀ per mode from the tracked
        start), "singular_values", "target" W*, "final_relative_error" ‖W₂W₁ − W*‖_F/‖W*‖_F.

    Example:
        >>> r = saxe_experiment(init="decoupled", steps=200, lr=0.05, track_every=100, d=4, hidden=4, n=64, n_boot=10)
        >>> r["steps"].tolist(), r["strengths"].shape  # tracked mode strengths u_α(t) against Saxe et al.'s closed form
        ([0.0, 100.0, 200.0], (3, 4))
        >>> bool(np.all(np.abs(r["strengths"] - r["closed_form"]) < 0.02 * r["singular_values"]))  # within 2% of s
        True
    """
    rng = np.random.default_rng(seed)
    s = np.array(SINGULAR_VALUES)
    r = s.size
    U = np.linalg.qr(rng.normal(size=(d, d)))[0]
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    Wstar = (U[:, :r] * s) @ V[:, :r].T
    X = _whitened(n, d, rng)
    Y = X @ Wstar.T
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden, bias=False), torch.nn.Linear(hidden, d, bias=False)).double()
    with torch.no_grad():
        if init == "decoupled":
            W1, W2 = decoupled_init(Wstar, hidden, u0, seed=seed)
        elif init == "random":
            eps = (u0 / np.sqrt(hidden)) ** 0.5  # a mode strength uᵀW₂W₁v is then ≈ ±u₀
            W1, W2 = eps * rng.normal(size=(hidden, d)), eps * rng.normal(size=(d, hidden))
        else:
            raise ValueError(f"init must be 'decoupled' or 'random'; got {init!r}")
        net[0].weight.copy_(torch.as_tensor(W1))
        net[1].weight.copy_(torch.as_tensor(W2))
    # the probes: the same whitened inputs and targets (the network's map is global and linear: R² = 1 throughout)
    tracker = Tracker(X, Y, n_boot=n_boot, n_jacobian=0, rank_tol=RANK_TOL, seed=seed)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    params = list(net.parameters())
    for k in range(steps + 1):
        if k % track_every == 0:
            tracker.update(net, k)
        if k == steps:
            break
        loss = 0.5 * ((net(Xt) - Yt) ** 2).sum(dim=1).mean()  # τ dW/dt = −∂L/∂W with τ = 1/η
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # plain full-batch gradient descent (what torch.optim.SGD does, without its set-up)
            for w, g in zip(params, grads, strict=True):
                w -= lr * g
    res = tracker.result()
    t = res.steps.astype(float)
    strengths = np.stack([np.einsum("ia,ij,ja->a", U[:, :r], p.coef, V[:, :r]) for p in res.points])
    u_start = np.abs(strengths[0])
    closed = np.stack([saxe_mode_strength(t, s[a], max(u_start[a], 1e-300), 1.0 / lr) for a in range(r)], axis=1)
    with torch.no_grad():
        prod = (net[1].weight @ net[0].weight).numpy()
    return {"result": res, "steps": t, "strengths": strengths, "closed_form": closed, "singular_values": s,
            "target": Wstar, "lr": lr, "u0": u0, "init": init,
            "final_relative_error": float(np.linalg.norm(prod - Wstar) / np.linalg.norm(Wstar))}


def _half_rise(t: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """First tracked step (linear interpolation) at which u_α reaches s_α/2."""
    out = np.full(s.size, np.nan)
    for a in range(s.size):
        g = u[:, a] - s[a] / 2
        hit = np.flatnonzero(g >= 0)
        if hit.size and hit[0] > 0:
            j = hit[0]
            out[a] = t[j - 1] + (t[j] - t[j - 1]) * (-g[j - 1]) / (g[j] - g[j - 1])
    return out


def run_track_saxe(out: Path, force: bool = False, seed: int = 0, quick: bool = False, device: str = "auto",
                   console: Any = None) -> dict[str, Any]:
    """Run the example and write its report; returns headline numbers. ``device`` is refused unless CPU/auto
    (the network has 128 weights: the CPU is the right place).

    Example:
        >>> run_track_saxe(Path("out"), device="cuda")  # a 128-weight network: refused on a GPU, before any work
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --device cuda: track-saxe trains a 128-weight network on the CPU; use auto or cpu
    """
    if device not in ("auto", "cpu"):
        raise ConfigError(f"--device {device}: track-saxe trains a 128-weight network on the CPU; use auto or cpu")
    check_destination(out, force)
    lr = 2e-3 if quick else 5e-4
    steps = int(round(12 / lr))  # the slowest mode (s = 0.5, u₀ = 1e-3) is at half at 6.2 τ and saturated by 12 τ
    every = max(1, steps // (30 if quick else 150))
    runs = {}
    for init in ("decoupled", "random"):
        if console is not None:
            console.print(f"{init} start: {steps} gradient steps at η = {lr:g}, tracked every {every} …")
        runs[init] = saxe_experiment(init=init, steps=steps, lr=lr, track_every=every, seed=seed)
    s = np.array(SINGULAR_VALUES)
    dec, rnd = runs["decoupled"], runs["random"]
    dev = np.max(np.abs(dec["strengths"] - dec["closed_form"]), axis=0) / s
    rep = Report("Deep linear network: singular values learned one after another (Saxe et al. 2014)")
    rep.add_text(__doc__.split("\n\n", 1)[1].split("References:")[0].strip())
    gate = {k: r["final_relative_error"] for k, r in runs.items()}
    rep.add_answer(f"The network learns the map: ‖W₂W₁ − W*‖_F/‖W*‖_F = {gate['decoupled']:.2g} (decoupled start), "
                   f"{gate['random']:.2g} (random start) after {steps} steps.")
    rep.add_answer(f"Decoupled start: each mode follows the closed form; largest deviation / s_α over the tracked "
                   f"steps {', '.join(f'{v:.2g}' for v in dev)} for s = {', '.join(f'{v:g}' for v in s)} "
                   f"(tolerance {TOLERANCE:g}).")
    t_cf = np.array([saxe_half_rise_time(sa, 1e-3, 1 / lr) for sa in s])
    t_dec = _half_rise(dec["steps"], dec["strengths"], s)
    t_rnd = _half_rise(rnd["steps"], rnd["strengths"], s)
    order = "by singular value" if np.all(np.diff(t_rnd) > 0) else "not by singular value"
    rep.add_answer(f"Random small start: modes reach half of s_α at steps {', '.join(f'{v:.0f}' for v in t_rnd)} — "
                   f"{order}; the last rank of the product (relative tolerance {RANK_TOL:g}) is "
                   f"{rnd['result'].points[-1].ranks['r_2_0']}.")
    rep.answer_next = "the mode curves against the closed form, then the rank list per step of the random start."
    rep.add_table(["s_α", "half-rise step, closed form (u₀ = 1e-3)", "decoupled start (tracked)",
                   "random start (tracked)", "max |u − closed form| / s (decoupled)"],
                  [[sa, t_cf[a], t_dec[a], t_rnd[a], dev[a]] for a, sa in enumerate(s)],
                  caption="Step at which each mode's strength u_α = u_αᵀ C v_α (C the tracked surrogate) reaches "
                  "s_α/2.")
    for init, r in runs.items():
        rep.add_figure(tf.plot_mode_curves(r["steps"], r["strengths"], r["closed_form"], s), f"saxe_modes_{init}",
                       f"{init} start: tracked mode strengths (markers) and the closed form with each mode's tracked "
                       "initial strength (lines)." + (" The random start's modes first align with the target's, "
                                                      "so they lag the closed form." if init == "random" else ""))
    rep.add_heading("Random small start: the tracker's view")
    m = add_tracking_section(rep, rnd["result"], key="saxe_random")
    rep.metrics.update({"seed": seed, "quick": quick, "lr": lr, "steps": steps, "track_every": every,
                        "singular_values": s, "tolerance": TOLERANCE, "rank_tol": RANK_TOL,
                        "final_relative_error": gate, "max_deviation_over_s_decoupled": dev,
                        "half_rise_closed_form": t_cf, "half_rise_decoupled": t_dec, "half_rise_random": t_rnd,
                        "random_start": m})
    rep.write(out, force=force)
    summary: dict[str, Any] = {"final ‖W₂W₁ − W*‖/‖W*‖ (decoupled)": gate["decoupled"],
                               "final ‖W₂W₁ − W*‖/‖W*‖ (random)": gate["random"]}
    for a, sa in enumerate(s):
        summary[f"s = {sa:g}: max |u − closed form|/s"] = float(dev[a])
        summary[f"s = {sa:g}: half-rise step closed form / random start"] = f"{t_cf[a]:.0f} / {t_rnd[a]:.0f}"
    return summary
