"""Saved state dicts in step order, loaded weights-only into the user's architecture and tracked.

The step of a checkpoint is the **last integer in its file name** (``ckpt_000120.pt`` → 120,
``epoch=3-step=1200.pt`` → 1200); files are tracked in increasing step order (numeric, not alphabetical), and a
name without an integer, or two files with the same step, are refused. Each file must hold a plain state dict
(names → tensors), read with :func:`linlens.loaders.load_weights` (``torch.load(weights_only=True)`` or
safetensors: no code runs from the file).

Example:
    >>> checkpoint_step("run/ckpt_epoch=3-step=1200.pt"), checkpoint_step("w_007.safetensors")
    (1200, 7)
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

from linlens._progress import report_progress
from linlens.errors import ConfigError, InputFileError
from linlens.loaders import load_weights

__all__ = ["checkpoint_step", "ordered_checkpoints", "track_checkpoints"]

_INT = re.compile(r"\d+")


def checkpoint_step(path: str | os.PathLike) -> int:
    """The step of a checkpoint file: the last integer in its name (without the extension).

    Raises:
        InputFileError: the name holds no integer.

    Example:
        >>> checkpoint_step("ckpt_10.pt")
        10
    """
    name = Path(path).name
    found = _INT.findall(Path(name).stem)  # the name without its last extension (dots before it are kept)
    if not found:
        raise InputFileError(f"--checkpoints: no step in the file name {name!r} (the step is the last integer in "
                             "the name, e.g. ckpt_000120.pt)")
    return int(found[-1])


def ordered_checkpoints(pattern: str | os.PathLike | list[Any]) -> list[tuple[int, Path]]:
    """(step, path) of the files matching a glob pattern (or a list of paths), in increasing step order.

    Raises:
        InputFileError: nothing matches, a match is not a file, a name has no step, two files share a step.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for k in (10, 9, 100): (d / f"ckpt_{k}.pt").write_bytes(b"")
        0
        0
        0
        >>> [s for s, _ in ordered_checkpoints(str(d / "ckpt_*.pt"))]
        [9, 10, 100]
    """
    if isinstance(pattern, (list, tuple)):
        paths = [Path(p) for p in pattern]
    else:
        paths = [Path(p) for p in glob.glob(os.path.expanduser(os.fspath(pattern)))]
    if not paths:
        shown = pattern if isinstance(pattern, (list, tuple)) else os.fspath(pattern)
        raise InputFileError(f"--checkpoints: no file matches {shown!r}")
    seen: dict[int, Path] = {}
    for p in paths:
        if not p.is_file():
            raise InputFileError(f"--checkpoints: {p} is not a file")
        s = checkpoint_step(p)
        if s in seen:
            raise InputFileError(f"--checkpoints: {seen[s].name} and {p.name} have the same step {s}")
        seen[s] = p
    return sorted(seen.items())


def track_checkpoints(module: Any, checkpoints: str | os.PathLike | list[Any], tracker: Any) -> Any:
    """Load each checkpoint (weights only) into ``module`` in step order and call ``tracker.update(module, step)``.

    Arguments:
        module: the architecture, an ``nn.Module`` whose parameter names match the files' keys (its weights are
            replaced, file after file).
        checkpoints: a glob pattern or a list of paths (see :func:`ordered_checkpoints` for the step rule).
        tracker: a :class:`~linlens.tracking.Tracker` (its ``every`` is ignored here: every file is a chosen step).

    Returns:
        ``tracker.result()``.

    Example:
        >>> import tempfile, pathlib, numpy as np, torch
        >>> from linlens.tracking import Tracker
        >>> d = pathlib.Path(tempfile.mkdtemp()); net = torch.nn.Linear(2, 2, bias=False).double()
        >>> for step in (10, 2):  # weights 2I at step 2, 10I at step 10
        ...     torch.save({"weight": step * torch.eye(2, dtype=torch.float64)}, d / f"ckpt_{step}.pt")
        >>> r = track_checkpoints(net, str(d / "ckpt_*.pt"), Tracker(np.random.default_rng(0).normal(size=(50, 2)),
        ...                                                         n_jacobian=0))
        >>> r.steps.tolist(), [bool(np.allclose(p.coef, s * np.eye(2))) for p, s in zip(r.points, (2, 10))]
        ([2, 10], [True, True])
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"--model-spec must name an nn.Module (an instance, a class or a function building one); "
                          f"got {type(module).__name__}")
    files = ordered_checkpoints(checkpoints)
    for i, (step, path) in enumerate(files):
        report_progress("checkpoints", i, len(files))
        load_weights(module, path)
        if tracker.update(module, step) is None:
            raise ConfigError(f"the tracker skipped step {step} (every={tracker.every}); use every=1 for checkpoints")
    report_progress("checkpoints", len(files), len(files))
    return tracker.result()
