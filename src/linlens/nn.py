"""Small model builders and one training loop (seeded, progress bar, early stopping, history).

Example:
    >>> import torch
    >>> net = mlp(3, [8], 2, seed=0)
    >>> X = torch.randn(64, 3); Y = X @ torch.randn(3, 2)
    >>> hist = train(net, X, Y, epochs=3, batch_size=16, progress=False)
    >>> len(hist.train_loss)
    3
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from linlens._results import ResultMixin
from linlens.errors import ConfigError, TrainingDiverged

__all__ = ["mlp", "train", "TrainHistory", "seed_everything", "resolve_device", "model_device", "progress_bar",
           "PlainProgress", "progress_listener", "predict"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch Generator seeded with ``seed``.

    Example:
        >>> g = seed_everything(3)
        >>> a = torch.rand(2, generator=g)
        >>> bool(torch.equal(a, torch.rand(2, generator=seed_everything(3))))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None → CUDA when available, else CPU; anything else is passed to ``torch.device``.

    Example:
        >>> resolve_device("cpu"), resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
        (device(type='cpu'), True)
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} requested but CUDA is not available")
    return dev


def model_device(model: Any, device: str | torch.device | None = "auto") -> torch.device:
    """Where a user's model that linlens only runs is run: ``"auto"``/None → the device of its first parameter
    (the model is never moved), the CPU for a callable without parameters; anything else → :func:`resolve_device`.

    This is "auto" for a model linlens runs (:func:`linlens.probing.probe_model`, :mod:`linlens.jacobian`); a
    model linlens trains, builds or loads from a file goes to CUDA when available (:func:`resolve_device`).

    Example:
        >>> model_device(torch.nn.Linear(2, 2)), model_device(lambda x: 2 * x), model_device(abs, "cpu")
        (device(type='cpu'), device(type='cpu'), device(type='cpu'))
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        params = model.parameters() if isinstance(model, nn.Module) or hasattr(model, "parameters") else iter(())
        first = next(iter(params), None)
        return first.device if first is not None else torch.device("cpu")
    return resolve_device(device)


def mlp(
    d_in: int,
    hidden: Sequence[int],
    d_out: int,
    activation: str = "relu",
    *,
    seed: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A fully connected network ``Linear → act → … → Linear`` (no activation after the last layer).

    Arguments:
        d_in: input width.
        hidden: hidden widths, e.g. ``[8, 6, 4, 3]``.
        d_out: output width.
        activation: one of ``relu, tanh, gelu, silu, elu, leaky_relu``.
        seed: seeds the initialization when given.

    Returns:
        ``nn.Sequential`` of alternating ``nn.Linear`` and activation modules.

    Example:
        >>> net = mlp(3, [5, 4], 2, activation="tanh", seed=0)
        >>> [type(m).__name__ for m in net], sum(p.numel() for p in net.parameters())
        (['Linear', 'Tanh', 'Linear', 'Tanh', 'Linear'], 54)
    """
    if activation not in _ACTIVATIONS:
        raise ConfigError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
    widths = [int(d_in), *[int(h) for h in hidden], int(d_out)]
    if any(w <= 0 for w in widths):
        raise ConfigError(f"all widths must be positive; got {widths}")
    ctx = torch.random.fork_rng() if seed is not None else contextlib.nullcontext()
    with ctx:
        if seed is not None:
            torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1], dtype=dtype))
            if i < len(widths) - 2:
                layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class TrainHistory(ResultMixin):
    """Per-epoch losses (and the learning rate each epoch ran at) of :func:`train`; ``best_epoch`` is the epoch
    whose weights were kept. Frozen like every result: :func:`train` builds it once, at the end.

    Example:
        >>> h = TrainHistory(train_loss=[1.0, 0.25], best_epoch=1)
        >>> h.to_dict()["train_loss"], h.best_epoch
        ([1.0, 0.25], 1)
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    seconds: float = 0.0


def progress_bar(enabled: bool = True, transient: bool = True):
    """A rich progress bar on a terminal; plain progress lines on stdout when it is not a terminal (a log file,
    CI, a pipe: a live bar would show nothing there until the end); a no-op stand-in when disabled. Errors keep
    stderr to themselves (one line).

    Example:
        >>> with progress_bar(enabled=False) as bar:
        ...     task = bar.add_task("work", total=3)
        ...     bar.advance(task, 3)
        >>> bar.tasks[0].completed
        3
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if enabled and not sys.stdout.isatty():
        return PlainProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=transient,
        disable=not enabled,
    )


def progress_listener(bar: Any, prefix: str = "") -> Callable[[str, int, int], None]:
    """A listener for :func:`linlens._progress.progress_to` that shows library loops on ``bar`` (from
    :func:`progress_bar`): a task per label, started when its loop starts (``done`` 0, or not past its last
    report) and advanced at every step, so nested loops (a model's steps inside the loop over models) each show.

    Example:
        >>> from linlens._progress import progress_to, report_progress
        >>> with PlainProgress(stream=sys.stdout) as bar, progress_to(progress_listener(bar, "demo: ")):
        ...     for i in range(2):
        ...         report_progress("resamples", i + 1, 2)  # doctest: +ELLIPSIS
        demo: resamples (1): 0/2 (0 s)
        ...
    """
    # one task per label, so that a loop inside another (a model's steps inside the loop over models) advances
    # its own bar; a label's loop (re)starts at done = 0, or when done does not move past the last report
    loops = [0]
    tasks: dict[str, list[Any]] = {}  # label → [task, last done]

    def listen(label: str, done: int, total: int) -> None:
        cur = tasks.get(label)
        if cur is not None and done == 0 and cur[1] == 0:
            return  # announced twice
        if cur is None or done <= cur[1]:
            loops[0] += 1
            cur = tasks[label] = [bar.add_task(f"{prefix}{label} ({loops[0]})", total=total), 0]
        if done > cur[1]:
            bar.advance(cur[0], done - cur[1])
            cur[1] = done

    return listen


class PlainProgress:
    """The part of rich's ``Progress`` linlens uses (``add_task``, ``advance``, ``update``), as plain lines on
    stdout: one when a task starts, one per tenth of it done, one at the end, each with the elapsed time.

    Example:
        >>> with PlainProgress(stream=sys.stdout) as bar:
        ...     t = bar.add_task("probing", total=2)
        ...     bar.advance(t); bar.advance(t)  # doctest: +ELLIPSIS
        probing: 0/2 (0 s)
        probing: 1/2 (... s)
        probing: 2/2 (... s)
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream
        self._tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def _say(self, t: dict[str, Any]) -> None:
        total = "?" if t["total"] is None else int(t["total"])
        print(f"{t['description']}: {int(t['done'])}/{total} ({time.perf_counter() - t['start']:.0f} s)",
              file=self._stream or sys.stdout, flush=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        tid = len(self._tasks)
        self._tasks[tid] = {"description": description, "total": total, "done": 0, "start": time.perf_counter(),
                            "next": 0.0}
        self._say(self._tasks[tid])
        return tid

    def update(self, task: int, *, advance: float = 0, completed: float | None = None,
               description: str | None = None, total: float | None = None, **_: Any) -> None:
        t = self._tasks[task]
        if description is not None:
            t["description"] = description
        if total is not None:
            t["total"] = total
        t["done"] = completed if completed is not None else t["done"] + advance
        frac = t["done"] / t["total"] if t["total"] else 0.0
        if frac >= t["next"] or (t["total"] and t["done"] >= t["total"]):
            t["next"] = frac + 0.1
            self._say(t)

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)


def _as_tensor(x: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)


@torch.no_grad()
def predict(model: nn.Module, X: Any, batch_size: int = 8192) -> torch.Tensor:
    """Model outputs in eval mode, batched, without gradients; returns a CPU tensor.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
        >>> out = predict(net, np.ones((5, 2)), batch_size=2)  # dropout off while predicting, batches of 2
        >>> out.shape, bool(torch.equal(out, net[0](torch.ones(5, 2)).detach())), net.training
        (torch.Size([5, 2]), True, True)
    """
    was = model.training
    model.eval()
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    dt = p.dtype if p is not None else torch.float32
    Xt = _as_tensor(X, dt, dev)
    out = torch.cat([model(Xt[i : i + batch_size]).cpu() for i in range(0, len(Xt), batch_size)])
    model.train(was)
    return out


def train(
    model: nn.Module,
    X: Any,
    Y: Any,
    *,
    epochs: int = 100,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "mse",
    optimizer: str = "adam",
    X_val: Any = None,
    Y_val: Any = None,
    metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    patience: int | None = None,
    lr_schedule: str | None = None,
    plateau_factor: float = 0.2,
    plateau_patience: int = 2,
    grad_clip: float | None = None,
    batch_transform: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    | None = None,
    seed: int = 0,
    device: str | torch.device | None = "auto",
    progress: bool = True,
    description: str = "training",
) -> TrainHistory:
    """Train ``model`` in place with minibatch gradient descent; returns the :class:`TrainHistory`.

    Arguments:
        X, Y: inputs ``(n_samples, d_in)`` and targets ``(n_samples, d_out)`` or class labels ``(n_samples,)``.
        loss: ``"mse"``, ``"cross_entropy"``, ``"huber"`` or a callable ``(pred, target) -> scalar``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        X_val, Y_val: validation data; with ``patience`` training stops after that many epochs without
            improvement and the best weights (lowest validation loss, or highest ``metric``) are restored.
        metric: optional validation metric (higher is better), e.g. accuracy.
        lr_schedule: None, ``"cosine"`` (cosine annealing stepped once per epoch), ``"cosine_per_step"``
            (stepped after every minibatch, over epochs × batches per epoch) or ``"plateau"`` (the rate is
            multiplied by ``plateau_factor`` after ``plateau_patience`` epochs without a lower validation loss;
            needs validation data; with ``patience`` larger than ``plateau_patience`` training stops only after
            a lowered rate has not helped either).
        batch_transform: optional ``(X_batch, Y_batch, generator) -> (X_batch, Y_batch)`` applied to every
            training minibatch before the forward pass (fresh noise per batch for a denoiser: X clean, the
            transform returns the noisy copy); validation data are used as given. ``generator`` is a CPU
            ``torch.Generator`` seeded from ``seed``.
        seed: seeds shuffling, dropout and ``batch_transform``'s generator.

    Raises:
        TrainingDiverged: the loss became NaN/Inf (message names the epoch and the last finite loss).

    Example:
        >>> X = np.random.default_rng(0).standard_normal((64, 2))
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> hist = train(model, X, X @ [[2.0], [-1.0]], epochs=200, lr=0.05, device="cpu", progress=False)
        >>> np.round(model.weight.detach().numpy(), 3).tolist(), len(hist.train_loss)
        ([[2.0, -1.0]], 200)
    """
    dev = resolve_device(device)
    p0 = next(model.parameters(), None)
    if p0 is None:
        raise ConfigError("model has no parameters to train")
    dt = p0.dtype
    model.to(dev)
    Xt = _as_tensor(X, dt, dev)
    Yt = _as_tensor(Y, dt, dev)
    if len(Xt) != len(Yt):
        raise ConfigError(f"X and Y must have the same number of samples; got {len(Xt)} and {len(Yt)}")
    if len(Xt) == 0:
        raise ConfigError("training data is empty")
    has_val = X_val is not None and Y_val is not None
    if has_val:
        Xv, Yv = _as_tensor(X_val, dt, dev), _as_tensor(Y_val, dt, dev)
    if isinstance(loss, str):
        losses = {"mse": nn.MSELoss(), "cross_entropy": nn.CrossEntropyLoss(), "huber": nn.HuberLoss()}
        if loss not in losses:
            raise ConfigError(f"loss must be one of {sorted(losses)} or a callable; got {loss!r}")
        loss_fn = losses[loss]
    else:
        loss_fn = loss
    params = [p for p in model.parameters() if p.requires_grad]
    opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if optimizer not in opts:
        raise ConfigError(f"optimizer must be one of {sorted(opts)}; got {optimizer!r}")
    opt = opts[optimizer](params, lr=lr, weight_decay=weight_decay)
    if lr_schedule not in (None, "cosine", "cosine_per_step", "plateau"):
        raise ConfigError(f"lr_schedule must be None, 'cosine', 'cosine_per_step' or 'plateau'; got {lr_schedule!r}")
    per_step = lr_schedule == "cosine_per_step"
    t_max = epochs * -(-len(Xt) // batch_size) if per_step else epochs
    if lr_schedule == "plateau":
        if not has_val:
            raise ConfigError("lr_schedule='plateau' needs validation data (X_val, Y_val)")
        if not 0 < plateau_factor < 1 or int(plateau_patience) != plateau_patience or plateau_patience < 0:
            raise ConfigError(f"plateau_factor must be in (0, 1) and plateau_patience a non-negative integer; got "
                              f"{plateau_factor!r}, {plateau_patience!r}")
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=plateau_factor, patience=int(plateau_patience))
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max) if lr_schedule else None
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    tgen = torch.Generator(device="cpu")
    tgen.manual_seed(seed + 1)
    hist: dict[str, Any] = {"train_loss": [], "val_loss": [], "val_metric": [], "learning_rate": [],
                            "best_epoch": -1, "stopped_early": False}
    best_score, best_state, bad = -math.inf, None, 0
    last_finite = None
    t0 = time.perf_counter()
    n = len(Xt)
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=epochs)
        for epoch in range(epochs):
            model.train()
            hist["learning_rate"].append(float(opt.param_groups[0]["lr"]))
            perm = torch.randperm(n, generator=gen).to(dev)
            total = 0.0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                opt.zero_grad(set_to_none=True)
                xb, yb = Xt[idx], Yt[idx]
                if batch_transform is not None:
                    xb, yb = batch_transform(xb, yb, tgen)
                lval = loss_fn(model(xb), yb)
                if not torch.isfinite(lval):
                    raise TrainingDiverged(
                        f"training diverged at epoch {epoch}: loss is {lval.item()}; "
                        f"last finite epoch loss {last_finite}",
                        epoch=epoch,
                        last_finite_loss=last_finite,
                    )
                lval.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                if per_step:
                    sched.step()
                total += float(lval.detach()) * len(idx)
            if sched is not None and not per_step and lr_schedule != "plateau":
                sched.step()
            last_finite = total / n
            hist["train_loss"].append(last_finite)
            if has_val:
                model.eval()
                with torch.no_grad():
                    pv = model(Xv)
                    vl = float(loss_fn(pv, Yv))
                    hist["val_loss"].append(vl)
                    score = -vl
                    if metric is not None:
                        m = float(metric(pv, Yv))
                        hist["val_metric"].append(m)
                        score = m
                if lr_schedule == "plateau":
                    sched.step(-score)
                if score > best_score:
                    best_score, best_state, bad = score, copy.deepcopy(model.state_dict()), 0
                    hist["best_epoch"] = epoch
                else:
                    bad += 1
                if patience is not None and bad >= patience:
                    hist["stopped_early"] = True
                    bar.advance(task)
                    break
            else:
                hist["best_epoch"] = epoch
            bar.advance(task)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainHistory(**hist, seconds=time.perf_counter() - t0)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label.

    Example:
        >>> accuracy(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]))
        0.6666666865348816
    """
    return float((logits.argmax(dim=1) == labels).float().mean())


__all__.append("accuracy")
