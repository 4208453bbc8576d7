"""One pass of block tasks over a Dask cluster for the image routes on Dask (Fourier, subspace): submit a task per
row block, show progress, turn the first failure into one line on the client, and merge the partials in a tree
(:func:`linlens.scale.tree_reduce`) or gather them in block order.

A task never raises on a worker (no worker tracebacks in the logs): :func:`run_pass` wraps it so that an error comes
back as a value, ``("error", (class name, one line))``, re-raised on the client as that :mod:`linlens.errors` class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from linlens import errors as _errors
from linlens.errors import LinlensError, ModelError
from linlens.scale import tree_reduce

__all__ = ["run_pass", "safe_task", "unwrap"]


def safe_task(fn: Callable[..., Any], where: str, *args: Any) -> tuple[str, Any]:
    """``("ok", fn(*args))``, or ``("error", (error class name, one line))`` naming ``where`` (a block and its rows)
    for anything that is not a :class:`~linlens.errors.LinlensError`. Never raises.

    Example:
        >>> safe_task(lambda a: a + 1, "block 0", 1), safe_task(lambda: 1 / 0, "block 3 (rows 6–7)")[1][1]
        (('ok', 2), 'block 3 (rows 6–7): ZeroDivisionError: division by zero')
    """
    try:
        return "ok", fn(*args)
    except LinlensError as exc:
        return "error", (type(exc).__name__, str(exc))
    except BaseException as exc:  # noqa: BLE001 - anything else on a worker is reported as a model failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "error", ("ModelError", f"{where}: {type(exc).__name__}: {first[:200]}")


def unwrap(res: tuple[str, Any]) -> Any:
    """The value of an ``("ok", value)`` result; an ``("error", …)`` raised as its (one-line) linlens error.

    Example:
        >>> unwrap(("ok", 5))
        5
    """
    kind, val = res
    if kind == "ok":
        return val
    cls = getattr(_errors, val[0], ModelError)
    raise (cls if isinstance(cls, type) and issubclass(cls, LinlensError) else ModelError)(val[1])


def _merge(a: tuple[str, Any], b: tuple[str, Any]) -> tuple[str, Any]:
    if a[0] != "ok":
        return a
    if b[0] != "ok":
        return b
    return "ok", a[1].merge(b[1])


def run_pass(client: Any, bar: Any, what: str, fn: Callable[..., Any], tasks: list[tuple[Any, ...]],
             reduce: bool = True) -> Any:
    """Run ``fn(*args)`` for each block on the cluster; ``tasks`` holds ``(block, start, stop, *args)``.

    Arguments:
        client: a ``dask.distributed.Client``.
        bar: a progress bar (``linlens.nn.progress_bar``) with ``add_task``/``advance``, or None (no line).
        what: the progress line.
        fn: a top-level (picklable) function returning a partial with ``merge(other) -> merged``.
        tasks: one tuple per block.
        reduce: merge the partials in a binary tree on the cluster (True) or return them in block order (False).

    Returns:
        The merged partial, or the list of partials.

    Example:
        >>> import numpy as np
        >>> from dask.distributed import Client, LocalCluster
        >>> from linlens.surrogate.grouped import GroupedFit
        >>> def fit(rows):  # a top-level function on real workers; its partial merges by adding sums
        ...     g = GroupedFit(1, 1, 4); g.update_train(rows, 2.0 * rows, np.arange(len(rows)) % 4); return g
        >>> client = Client(LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"))
        >>> Y = np.arange(10.0)[:, None]
        >>> g = run_pass(client, None, "fit", fit, [(0, 0, 5, Y[:5]), (1, 5, 10, Y[5:])]); client.close()
        >>> int(g.n.sum()), round(float(g.coef()[0, 0]), 12)  # the merged fit of 10 rows: slope 2
        (10, 2.0)
    """
    from dask.distributed import as_completed

    task = bar.add_task(what, total=len(tasks)) if bar is not None else None
    parts = [client.submit(safe_task, fn, f"block {t[0]} (rows {t[1]}–{t[2] - 1})", *t[3:], pure=False)
             for t in tasks]
    for fut in as_completed(parts):
        res = fut.result()
        if res[0] != "ok":
            unwrap(res)  # the first failure, as one line
        if bar is not None:
            bar.advance(task)
    if not reduce:
        return [unwrap(r) for r in client.gather(parts)]
    return unwrap(tree_reduce(parts, _merge, submit=lambda f, a, b: client.submit(f, a, b, pure=False)).result())
