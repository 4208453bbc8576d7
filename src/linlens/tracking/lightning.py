"""A Lightning callback around :class:`~linlens.tracking.Tracker` (needs ``lightning``: an optional extra,
``pip install 'linlens[lightning]'``; ``pytorch_lightning`` works too).

``from linlens.tracking.lightning import TrackerCallback`` raises :class:`ImportError` naming the extra when neither
package is installed; this module itself imports without them (so that listing the package's modules never fails).

Example:
    >>> import importlib.util
    >>> has = any(importlib.util.find_spec(m) for m in ("lightning", "pytorch_lightning"))
    >>> try:
    ...     from linlens.tracking.lightning import TrackerCallback
    ...     ok = has
    ... except ImportError:
    ...     ok = not has
    >>> ok
    True
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TrackerCallback"]  # noqa: F822 - defined on first access (module __getattr__), when lightning is installed


def _callback_base() -> Any:
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name).Callback
        except ImportError:
            continue
    raise ImportError("linlens.tracking.lightning.TrackerCallback needs Lightning: pip install 'linlens[lightning]' "
                      "(or call tracker.update(model, step) from your own loop)")


def _build() -> type:
    base = _callback_base()

    class TrackerCallback(base):
        """Call ``tracker.update(model, step)`` during ``Trainer.fit``.

        Arguments:
            tracker: a :class:`~linlens.tracking.Tracker`.
            when: "train_epoch" (end of each training epoch, default) or "validation_epoch" (end of each
                validation epoch; the sanity check is skipped).
            step: "epoch" (``trainer.current_epoch``, default) or "global_step" (``trainer.global_step``).
            model_attr: the attribute of the LightningModule holding the network to track (default the
                LightningModule itself, through its ``forward``).
            at_start: also track the untrained network at step 0 when fitting starts.

        Only the global-rank-0 process tracks. The numbers are those of :meth:`Tracker.update` on the same
        weights (``linlens track`` on state dicts saved at the same steps gives them too).
        """

        def __init__(self, tracker: Any, when: str = "train_epoch", step: str = "epoch",
                     model_attr: str | None = None, at_start: bool = True) -> None:
            super().__init__()
            if when not in ("train_epoch", "validation_epoch"):
                raise ValueError(f"when must be 'train_epoch' or 'validation_epoch'; got {when!r}")
            if step not in ("epoch", "global_step"):
                raise ValueError(f"step must be 'epoch' or 'global_step'; got {step!r}")
            self.tracker = tracker
            self.when = when
            self.step = step
            self.model_attr = model_attr
            self.at_start = at_start

        def _update(self, trainer: Any, pl_module: Any, step: int | None = None) -> None:
            if not trainer.is_global_zero:
                return
            model = pl_module if self.model_attr is None else getattr(pl_module, self.model_attr)
            if step is None:
                # at the end of epoch e the weights are those after e + 1 epochs: step = epochs done
                step = trainer.current_epoch + 1 if self.step == "epoch" else trainer.global_step
            self.tracker.update(model, int(step))

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if self.at_start:
                self._update(trainer, pl_module, step=0 if self.step == "epoch" else trainer.global_step)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.when == "train_epoch":
                self._update(trainer, pl_module)

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.when == "validation_epoch" and not trainer.sanity_checking:
                self._update(trainer, pl_module)

    TrackerCallback.__module__ = __name__
    return TrackerCallback


def __getattr__(name: str) -> Any:
    if name == "TrackerCallback":
        cls = _build()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
