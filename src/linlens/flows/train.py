"""Maximum-likelihood training of flow encoders with the Jacobian Tikhonov penalty α‖J‖_F².

The loss is mean NLL + α · mean ‖J(x)‖_F² (the authors' ``alpha_J``), which for a linear flow is maximum
likelihood for the shrinkage covariance S + 2αI. Options: input noise, gradient-norm clipping, full-batch
L-BFGS or (minibatch) Adam with an exponentially decaying learning rate — constant-rate Adam drifts away from
the optimum on the linear problem, which is why the decay exists. A non-finite loss stops training with
:class:`~linlens.errors.TrainingDiverged` naming the epoch and the last finite loss.

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496

Example:
    >>> import torch
    >>> from linlens.flows.models import LinearFlow
    >>> X = torch.randn(200, 2, dtype=torch.float64)
    >>> hist = train_flow(LinearFlow(2).double(), X, epochs=5, optimizer="lbfgs")
    >>> len(hist.loss)
    5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from linlens.errors import ConfigError, EmptyInputError, TrainingDiverged
from linlens.flows._autodiff import frobenius_sq_from_graph
from linlens.flows.models import _LOG2PI, as_encoder, encode
from linlens.nn import progress_bar, resolve_device
from linlens.validation import as_array

__all__ = ["FlowHistory", "train_flow", "flow_loss"]


@dataclass(frozen=True)
class FlowHistory:
    """Per-epoch training record of :func:`train_flow`.

    Attributes:
        loss: objective per epoch (NLL + penalty), mean over the epoch's batches.
        nll: mean NLL per epoch (nats per sample, on the noisy inputs when ``noise_std`` > 0).
        penalty: mean ‖J‖_F² per epoch (0 when α = 0 and not requested).
        val_nll: validation NLL per epoch (empty without ``X_val``).
        records: what ``callback`` returned, as ``(epoch, dict)`` pairs.

    Example:
        >>> h = FlowHistory(loss=(2.0, 1.5), nll=(2.0, 1.5), penalty=(0.0, 0.0), val_nll=(), records=((1, {"a": 3}),))
        >>> h.to_dict()["records"], len(h.loss)
        ([{'epoch': 1, 'a': 3}], 2)
    """

    loss: tuple[float, ...]
    nll: tuple[float, ...]
    penalty: tuple[float, ...]
    val_nll: tuple[float, ...]
    records: tuple[tuple[int, dict[str, Any]], ...]

    def to_dict(self) -> dict[str, Any]:
        """Every field, written by hand on purpose: ``records`` become ``{"epoch": e, …}`` dictionaries."""
        d = asdict(self)
        d["records"] = [{"epoch": e, **r} for e, r in self.records]
        return d


def flow_loss(
    encoder: Any, x: torch.Tensor, jacobian_penalty: float = 0.0, penalty_method: str = "exact", n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Objective mean NLL + α mean ‖J‖_F² on one batch, differentiable.

    Arguments:
        encoder: a flow encoder.
        x: batch ``(B, d)``.
        jacobian_penalty: α ≥ 0.
        penalty_method: ``"exact"`` (d reverse passes) or ``"hutchinson"`` (``n_probes`` vector-Jacobian
            products with Rademacher probes; unbiased).
        n_probes: probes per sample for Hutchinson.
        generator: random generator of the probes.

    Returns:
        ``(loss, mean_nll, mean_frobenius_sq)``, scalars.

    Example:
        >>> import torch
        >>> from linlens.flows.models import LinearFlow
        >>> f = LinearFlow(2, init_scale=None).double()
        >>> float(flow_loss(f, torch.zeros(3, 2, dtype=torch.float64), 0.5)[2])
        2.0
    """
    need_j = jacobian_penalty > 0
    xr = x.detach().requires_grad_(True) if need_j else x
    z, ladj = encode(encoder, xr)
    nll = (0.5 * (z * z).sum(-1) + 0.5 * z.shape[-1] * _LOG2PI - ladj).mean()
    if need_j:
        fro = frobenius_sq_from_graph(z, xr, penalty_method, n_probes, generator, create_graph=True).mean()
    else:
        fro = torch.zeros((), dtype=nll.dtype, device=nll.device)
    return nll + jacobian_penalty * fro, nll, fro


def _check_finite_loss(value: float, epoch: int, last: float | None) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"flow training diverged at epoch {epoch}: loss became {value} (last finite loss: {last}); "
            "likely an unbounded likelihood on low-dimensional data: set jacobian_penalty > 0 or noise_std > 0",
            epoch=epoch, last_finite_loss=last,
        )


def train_flow(
    encoder: Any,
    X: Any,
    *,
    epochs: int = 500,
    lr: float = 1e-2,
    optimizer: str = "adam",
    batch_size: int | None = None,
    jacobian_penalty: float = 0.0,
    penalty_method: str = "auto",
    n_probes: int = 1,
    noise_std: float = 0.0,
    grad_clip: float | None = None,
    lr_decay: float | None = None,
    X_val: Any = None,
    callback: Callable[[int, Any], dict[str, Any] | None] | None = None,
    callback_every: int = 1,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    description: str = "training flow",
) -> FlowHistory:
    """Train a flow encoder by maximum likelihood with optional Jacobian Tikhonov penalty α‖J‖_F².

    References:
        | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
        | https://arxiv.org/abs/1907.06496

    Arguments:
        encoder: flow encoder (trained in place; its parameters' dtype is used for the data).
        X: data ``(n_samples, d)``.
        epochs: passes over the data (for L-BFGS: optimizer steps of up to 20 iterations each).
        lr: (initial) learning rate.
        optimizer: ``"adam"`` or ``"lbfgs"`` (full batch, strong-Wolfe line search; deterministic objective
            only, so no noise and an exact penalty).
        batch_size: minibatch size for Adam; None for full batch.
        jacobian_penalty: α ≥ 0 of the penalty α · mean ‖J(x)‖_F².
        penalty_method: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact for d ≤ 16).
        n_probes: Hutchinson probes per sample.
        noise_std: std of Gaussian noise added to each batch (≈ α = σ²/2 in the linear case).
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        lr_decay: Adam's learning rate decays exponentially to ``lr * lr_decay`` at the last epoch.
        X_val: optional validation data; its NLL is recorded per epoch.
        callback: ``callback(epoch, encoder)`` every ``callback_every`` epochs (and after the last); returned
            dicts are kept in ``history.records``.
        callback_every: period of the callback in epochs.
        seed: seed of shuffling, noise and probes.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``…
        progress: show a progress bar.
        description: progress-bar label.

    Returns:
        :class:`FlowHistory`.

    Raises:
        TrainingDiverged: the loss became NaN/Inf (names the epoch and the last finite loss).

    Example:
        >>> import torch
        >>> from linlens.flows.models import LinearFlow
        >>> X = torch.randn(100, 2, dtype=torch.float64)
        >>> h = train_flow(LinearFlow(2).double(), X, epochs=3, jacobian_penalty=0.1, lr=0.05)
        >>> len(h.penalty)
        3
    """
    enc = as_encoder(encoder)
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer must be 'adam' or 'lbfgs'; got {optimizer!r}")
    if penalty_method not in ("auto", "exact", "hutchinson"):
        raise ConfigError(f"penalty_method must be 'auto', 'exact' or 'hutchinson'; got {penalty_method!r}")
    if jacobian_penalty < 0 or noise_std < 0 or epochs < 1 or lr <= 0:
        raise ConfigError(
            f"need jacobian_penalty >= 0, noise_std >= 0, epochs >= 1, lr > 0; got {jacobian_penalty}, "
            f"{noise_std}, {epochs}, {lr}"
        )
    Xn = as_array(X, "X", ndim=2)
    if Xn.shape[0] == 0:
        raise EmptyInputError("X must contain at least one sample; got 0 rows")
    d = Xn.shape[1]
    method = ("exact" if d <= 16 else "hutchinson") if penalty_method == "auto" else penalty_method
    if optimizer == "lbfgs" and (noise_std > 0 or (jacobian_penalty > 0 and method == "hutchinson")):
        raise ConfigError("optimizer='lbfgs' needs a deterministic objective: use noise_std=0 and an exact penalty")
    dev = resolve_device(device)
    params = [p for p in getattr(enc, "parameters", lambda: [])() if p.requires_grad]
    if not params:
        raise ConfigError("encoder has no trainable parameters")
    dtype = params[0].dtype
    if isinstance(enc, torch.nn.Module):
        enc.to(dev)
    Xt = torch.as_tensor(Xn, dtype=dtype, device=dev)
    Xv = None if X_val is None else torch.as_tensor(as_array(X_val, "X_val", ndim=2), dtype=dtype, device=dev)
    gen = torch.Generator()
    gen.manual_seed(seed)
    n = Xt.shape[0]
    bs = n if batch_size is None or optimizer == "lbfgs" else int(batch_size)

    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(params, lr=lr, max_iter=20, history_size=20,
                                                       line_search_fn="strong_wolfe")
        sched = None
    else:
        opt = torch.optim.Adam(params, lr=lr)
        gamma = 1.0 if not lr_decay else float(lr_decay) ** (1.0 / max(epochs - 1, 1))
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)

    losses: list[float] = []
    nlls: list[float] = []
    pens: list[float] = []
    vals: list[float] = []
    records: list[tuple[int, dict[str, Any]]] = []
    last: float | None = None

    def run_callback(ep: int) -> None:
        if callback is not None:
            rec = callback(ep, enc)
            if rec is not None:
                records.append((ep, dict(rec)))

    run_callback(0)
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=epochs)
        for epoch in range(1, epochs + 1):
            if optimizer == "lbfgs":
                def closure() -> torch.Tensor:
                    opt.zero_grad()
                    loss, nll, fro = flow_loss(enc, Xt, jacobian_penalty, method, n_probes, gen)
                    if torch.isfinite(loss):
                        loss.backward()
                    return loss

                opt.step(closure)
                with torch.no_grad() if jacobian_penalty == 0 else torch.enable_grad():
                    loss, nll, fro = flow_loss(enc, Xt, jacobian_penalty, method, n_probes, gen)
                ep_loss, ep_nll, ep_pen = float(loss.detach()), float(nll.detach()), float(fro.detach())
            else:
                perm = torch.randperm(n, generator=gen).to(dev) if bs < n else torch.arange(n, device=dev)
                tot = [0.0, 0.0, 0.0]
                for start in range(0, n, bs):
                    xb = Xt[perm[start:start + bs]]
                    if noise_std > 0:
                        xb = xb + noise_std * torch.randn(xb.shape, generator=gen, dtype=dtype).to(dev)
                    opt.zero_grad()
                    loss, nll, fro = flow_loss(enc, xb, jacobian_penalty, method, n_probes, gen)
                    _check_finite_loss(float(loss.detach()), epoch, last)
                    loss.backward()
                    if grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(params, grad_clip)
                    opt.step()
                    w = xb.shape[0] / n
                    tot[0] += w * float(loss.detach())
                    tot[1] += w * float(nll.detach())
                    tot[2] += w * float(fro.detach())
                sched.step()
                ep_loss, ep_nll, ep_pen = tot
            _check_finite_loss(ep_loss, epoch, last)
            if not all(bool(torch.isfinite(p).all()) for p in params):
                _check_finite_loss(float("nan"), epoch, last)
            last = ep_loss
            losses.append(ep_loss)
            nlls.append(ep_nll)
            pens.append(ep_pen)
            if Xv is not None:
                with torch.no_grad():
                    z, ladj = encode(enc, Xv)
                    vals.append(float((0.5 * (z * z).sum(-1) + 0.5 * d * _LOG2PI - ladj).mean()))
            if epoch % callback_every == 0 or epoch == epochs:
                run_callback(epoch)
            bar.advance(task)
    return FlowHistory(tuple(losses), tuple(nlls), tuple(pens), tuple(vals), tuple(records))

