"""Backend seam for data larger than memory: streaming statistics from numpy, torch or ``dask.array``.

The estimators of linlens keep fixed-size, picklable statistics (:class:`~linlens.linalg.GramAccumulator`,
:class:`~linlens.linalg.TSQRAccumulator`) that combine with ``merge``. This module computes them from a
``dask.array`` whose rows are chunked: one partial accumulator per row block, computed where the block lives
(on the Dask workers), then reduced pairwise in a tree of ``dask.delayed`` merges, so only d×d states travel.
For the SVD of a tall matrix Dask's own :func:`dask.array.linalg.tsqr` is used (see HankelDMD), and
:func:`range_finder` wraps :func:`dask.array.linalg.svd_compressed`'s sketching idea for any backend.

A block holding NaN/Inf raises :class:`~linlens.errors.NonFiniteError` naming the block index and its rows.

Example:
    >>> import dask.array as da
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(400, 3)); Y = X @ [[1.0], [2.0], [3.0]]
    >>> acc = dask_accumulate(da.from_array(X, chunks=50), da.from_array(Y, chunks=50), "gram")
    >>> np.round(acc.solve().coef, 10).tolist()
    [[1.0, 2.0, 3.0]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from linlens.errors import ConfigError, InputFileError, NonFiniteError, ShapeError
from linlens.linalg import GramAccumulator, TSQRAccumulator, randomized_svd
from linlens.validation import is_torch

__all__ = ["require_dask", "is_dask", "from_npy", "align_rows", "block_ranges", "dask_accumulate", "tree_reduce",
           "range_finder", "check_block_finite", "ColumnMoments"]


def require_dask(what: str, modules: tuple[str, ...] = ("dask", "distributed", "zarr")) -> None:
    """Raise a one-line :class:`~linlens.errors.ConfigError` when the ``[dask]`` extra is not installed.

    Arguments:
        what: what needs it, e.g. "--dask" (starts the message).
        modules: the modules that must be importable.

    Example:
        >>> require_dask("--dask", modules=("numpy",))  # present: nothing happens
        >>> require_dask("--dask", modules=("no_such_module_xyz",))
        Traceback (most recent call last):
        ...
        linlens.errors.ConfigError: --dask needs no_such_module_xyz, which is not installed: pip install 'linlens[dask]'
    """
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                          "installed: pip install 'linlens[dask]'")


def is_dask(x: Any) -> bool:
    """True when ``x`` is a ``dask.array.Array`` (without importing dask for other inputs).

    Example:
        >>> import dask.array as da
        >>> is_dask(da.ones(4, chunks=2)), is_dask(np.ones(4))
        (True, False)
    """
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "to_delayed")


def _read_npy(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])


def from_npy(path: Any, chunk_rows: int = 65536) -> Any:
    """A ``dask.array`` over an ``.npy`` file whose row blocks are read where the task runs.

    Unlike ``da.from_array(np.load(path, mmap_mode="r"))``, the graph holds only the path and row ranges,
    not the memory map (which a distributed scheduler would pickle as its full contents).

    Arguments:
        path: ``.npy`` file of shape (n_samples, ...).
        chunk_rows: rows per block.

    Returns:
        dask array (n_samples, ...) with row chunks of ``chunk_rows``.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npy"; np.save(p, np.arange(10.0).reshape(5, 2))
        >>> A = from_npy(p, chunk_rows=2)
        >>> A.chunks[0], float(A.sum().compute())
        ((2, 2, 1), 45.0)
    """
    require_dask("linlens.scale.from_npy", modules=("dask",))
    import dask
    import dask.array as da

    path = str(Path(path).expanduser().resolve())
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"path: cannot memory-map {path} as .npy ({exc})") from None
    if mm.ndim < 1 or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive integer and the array at least 1-D; got {chunk_rows!r}, "
                          f"shape {mm.shape}")
    n, rest, dtype = mm.shape[0], mm.shape[1:], mm.dtype
    del mm
    read = dask.delayed(_read_npy, pure=True)
    blocks = [da.from_delayed(read(path, s, min(s + chunk_rows, n)), shape=(min(s + chunk_rows, n) - s, *rest),
                              dtype=dtype) for s in range(0, n, chunk_rows)]
    return da.concatenate(blocks) if blocks else da.zeros((0, *rest), dtype=dtype)


def block_ranges(chunks: tuple[int, ...]) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of the blocks of a chunked axis.

    Example:
        >>> block_ranges((3, 3, 2))
        [(0, 3), (3, 6), (6, 8)]
    """
    stops = np.cumsum(chunks).tolist()
    starts = [0] + stops[:-1]
    return list(zip(starts, stops, strict=True))


def check_block_finite(a: np.ndarray, name: str, block: int, start: int) -> None:
    """Raise :class:`NonFiniteError` naming the block and its row range when ``a`` holds NaN/Inf.

    Example:
        >>> try:
        ...     check_block_finite(np.array([[1.0], [np.inf]]), "X", block=1, start=3)
        ... except NonFiniteError as e:
        ...     print(e)
        X: block 1 (rows 3–4) contains NaN/Inf (first at row 4)
    """
    if not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a).reshape(len(a), -1).all(axis=1))
        raise NonFiniteError(
            f"{name}: block {block} (rows {start}–{start + len(a) - 1}) contains NaN/Inf "
            f"(first at row {start + int(bad[0])})"
        )


def align_rows(X: Any, Y: Any) -> tuple[Any, Any, bool]:
    """Return X (n, d_in) and Y (n, d_out) as dask arrays chunked alike along rows (one column chunk).

    Returns:
        (X, Y, one_d) where one_d says Y was 1-D.

    Example:
        >>> import dask.array as da
        >>> X, Y, one_d = align_rows(da.ones((5, 2), chunks=(3, 1)), np.arange(5.0))
        >>> X.chunks, Y.chunks, one_d
        (((3, 2), (2,)), ((3, 2), (1,)), True)
    """
    import dask.array as da

    X = X if is_dask(X) else da.from_array(np.asarray(X), chunks=(65536, -1))
    Y = Y if is_dask(Y) else da.from_array(np.asarray(Y), chunks=65536)
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-D (n_samples, d_in); got shape {X.shape}")
    if Y.ndim not in (1, 2):
        raise ShapeError(f"Y must be 1-D or 2-D (n_samples, d_out); got shape {Y.shape}")
    one_d = Y.ndim == 1
    if one_d:
        Y = Y[:, None]
    if X.shape[0] != Y.shape[0]:
        raise ShapeError(f"X and Y must have the same number of rows; got X {X.shape} and Y {Y.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ShapeError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    X = X.rechunk({1: -1})
    Y = Y.rechunk({0: X.chunks[0], 1: -1})  # the same row blocks as X
    return X.astype(np.float64), Y.astype(np.float64), one_d


class ColumnMoments:
    """Per-column count, mean and centred sum of squares of rows, updated block by block and merged pairwise.

    References:
        Chan, Golub, LeVeque. Updating formulae and a pairwise algorithm for computing sample variances (1979).

    Attributes:
        n: rows seen. mean (d,): column means. m2 (d,): Σᵢ (aᵢⱼ − āⱼ)² per column (None before any row).

    Example:
        >>> a = np.random.default_rng(0).normal(size=(100, 3))
        >>> m = ColumnMoments().update(a[:30]).merge(ColumnMoments().update(a[30:]))
        >>> m.n, bool(np.allclose(m.m2, ((a - a.mean(0)) ** 2).sum(0)))
        (100, True)
    """

    def __init__(self) -> None:
        self.n: int = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, a: np.ndarray) -> ColumnMoments:
        """Add the rows of ``a`` (b, d); returns self."""
        a = np.asarray(a, dtype=np.float64)
        if len(a):
            other = ColumnMoments()
            other.n, other.mean = len(a), a.mean(axis=0)
            other.m2 = ((a - other.mean) ** 2).sum(axis=0)
            merged = self.merge(other)
            self.n, self.mean, self.m2 = merged.n, merged.mean, merged.m2
        return self

    def merge(self, other: ColumnMoments) -> ColumnMoments:
        """A new :class:`ColumnMoments` of the rows of both."""
        out = ColumnMoments()
        if other.n == 0 or self.n == 0:
            src = self if other.n == 0 else other
            out.n, out.mean, out.m2 = src.n, src.mean, src.m2
            return out
        n = self.n + other.n
        delta = other.mean - self.mean
        out.n = n
        out.mean = self.mean + delta * (other.n / n)
        out.m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        return out


def _block_acc(x: np.ndarray, y: np.ndarray, kind: str, block: int, start: int) -> Any:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check_block_finite(x, "X", block, start)
    check_block_finite(y, "Y", block, start)
    acc = GramAccumulator() if kind == "gram" else TSQRAccumulator()
    return acc.update(x, y)


def _merge(a: Any, b: Any) -> Any:
    return a.merge(b)


def tree_reduce(parts: list[Any], combine: Any = _merge, split_every: int = 2, submit: Any = None) -> Any:
    """Reduce a list of ``dask.delayed`` values (or futures) pairwise (depth ⌈log₂ n⌉) with ``combine(a, b)``.

    The one tree reduction of linlens: in-graph (``dask.delayed``, the default) or on a distributed cluster
    (``submit=lambda f, a, b: client.submit(f, a, b, pure=False)``, used by ``analyze --dask``).

    Arguments:
        parts: the partial results (delayed values, futures or plain objects).
        combine: merges two partials into one.
        split_every: partials merged per node.
        submit: schedules one ``combine`` as ``submit(combine, a, b)``; None wraps it in ``dask.delayed``.

    Returns:
        The root of the tree (a delayed value or future).

    Example:
        >>> tree_reduce([1, 2, 3, 4, 5], combine=lambda a, b: a + b, submit=lambda f, a, b: f(a, b))
        15
        >>> tree_reduce([[1], [2], [3]], combine=lambda a, b: a + b).compute()  # dask.delayed
        [1, 2, 3]
    """
    if not parts:
        raise ConfigError("nothing to reduce: the input has no blocks")
    if submit is None:
        import dask

        step = dask.delayed(combine, pure=True)
    else:
        def step(a: Any, b: Any) -> Any:
            return submit(combine, a, b)
    while len(parts) > 1:
        nxt = []
        for i in range(0, len(parts), split_every):
            group = parts[i : i + split_every]
            acc = group[0]
            for g in group[1:]:
                acc = step(acc, g)
            nxt.append(acc)
        parts = nxt
    return parts[0]


def dask_accumulate(X: Any, Y: Any, kind: str = "gram") -> Any:
    """Gram ("gram") or TSQR ("qr") statistics of [X | Y] from dask arrays, computed per block on the workers.

    Each row block gives one partial accumulator (computed where the block lives); the partials are merged
    in a binary tree of ``dask.delayed`` tasks and only the final d×d state is returned to the client.

    Arguments:
        X: (n_samples, d_in) dask (or numpy) array, rows chunked.
        Y: (n_samples, d_out) or (n_samples,), rechunked to X's row blocks if needed.
        kind: "gram" or "qr".

    Returns:
        A :class:`GramAccumulator` or :class:`TSQRAccumulator` holding all rows.

    Example:
        >>> import dask.array as da
        >>> X = np.random.default_rng(0).standard_normal((100, 3))
        >>> acc = dask_accumulate(da.from_array(X, chunks=(30, 3)), X @ [1.0, -2.0, 0.5] + 4.0, kind="qr")
        >>> sol = acc.solve()
        >>> np.round(sol.coef, 10).tolist(), np.round(sol.intercept, 10).tolist()
        ([[1.0, -2.0, 0.5]], [4.0])
    """
    import dask

    if kind not in ("gram", "qr"):
        raise ConfigError(f"kind must be 'gram' or 'qr'; got {kind!r}")
    X, Y, _ = align_rows(X, Y)
    xb = X.to_delayed().ravel()
    yb = Y.to_delayed().ravel()
    f = dask.delayed(_block_acc, pure=True)
    parts = [f(x, y, kind, i, s) for i, (x, y, (s, _)) in enumerate(zip(xb, yb, block_ranges(X.chunks[0]),
                                                                           strict=True))]
    return tree_reduce(parts).compute()


def range_finder(A: Any, k: int, n_iter: int = 2, seed: int = 0) -> np.ndarray:
    """Orthonormal basis (n_cols, k) approximating the row space of A (n_rows, n_cols) by a Gaussian sketch.

    Works on numpy, torch (CPU/CUDA; the result comes back on the CPU in float64) or dask arrays (rows chunked;
    reduced to AᵀA in one pass over the blocks, summed on the workers). The sketch is the subspace iteration of
    :func:`linlens.linalg.randomized_svd` (the top-k right singular vectors), the one randomized SVD of linlens.

    References:
        N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness", arXiv:0909.4061.

    Arguments:
        A: (n_rows, n_cols) matrix.
        k: sketch width, 1 ≤ k ≤ min(shape).
        n_iter: power iterations (as :func:`linlens.linalg.randomized_svd`).
        seed: seed of the Gaussian test matrix.

    Returns:
        Q: (n_cols, k) float64 with orthonormal columns.

    Example:
        >>> A = np.outer(np.arange(1.0, 7.0), [1.0, 2.0, 0.0])
        >>> Q = range_finder(A, 1)
        >>> bool(np.allclose(abs(Q[:, 0]), np.array([1.0, 2.0, 0.0]) / np.sqrt(5)))
        True
    """
    # the same subspace iteration as linalg.randomized_svd (one algorithm): the top-k right singular vectors;
    # a dask array is reduced to its Gram matrix AᵀA (one pass, summed on the workers), which has them too
    if is_dask(A):
        A = A.astype(np.float64).rechunk({1: -1})
        A = (A.T @ A).compute()
    Vt = randomized_svd(A, k, n_oversamples=0, n_iter=n_iter, seed=seed).Vt
    return np.asarray(Vt.T.cpu().numpy() if is_torch(Vt) else Vt.T, dtype=np.float64)
