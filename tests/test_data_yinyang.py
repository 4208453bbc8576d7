"""Tests of linlens.data.yinyang: the class rule and the sample stream against a transcription of Kriener's
reference code (tests of linlens.data.mnist: tests/test_data_mnist.py)."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.data.yinyang import which_class, yinyang, yinyang_splits
from linlens.errors import ConfigError


def _labels_vectorized(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Independent vectorized transcription of Kriener's class rule."""
    d_r = np.hypot(x - 0.75, y - 0.5)
    d_l = np.hypot(x - 0.25, y - 0.5)
    yin = (d_r <= 0.1) | ((d_l > 0.1) & (d_l <= 0.25)) | ((y > 0.5) & (d_r > 0.25))
    return np.where((d_r < 0.1) | (d_l < 0.1), 2, yin.astype(int))


def _kriener_reference(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Kriener's original loop (global ``np.random.seed``), transcribed from the reference code."""
    np.random.seed(seed)
    vals, cs = [], []
    for _ in range(n):
        goal = np.random.randint(3)
        while True:
            x, y = np.random.rand(2) * 2.0 * 0.5
            if np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2) > 0.5:
                continue
            c = int(_labels_vectorized(np.array([x]), np.array([y]))[0])
            if c == goal:
                break
        vals.append([x, y, 1 - x, 1 - y])
        cs.append(c)
    return np.array(vals), np.array(cs)


def test_yinyang_matches_kriener_reference_stream() -> None:
    X, y = yinyang(300, seed=42, features="kriener")
    X_ref, y_ref = _kriener_reference(300, 42)
    np.testing.assert_allclose(X, X_ref.astype(np.float32))
    np.testing.assert_array_equal(y, y_ref)


def test_yinyang_properties() -> None:
    X, y = yinyang(3000, seed=1)
    assert X.shape == (3000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.all(np.hypot(X[:, 0] - 0.5, X[:, 1] - 0.5) <= 0.5 + 1e-6)
    np.testing.assert_array_equal(y, _labels_vectorized(X[:, 0].astype(float), X[:, 1].astype(float)))
    assert all(which_class(float(a), float(b)) == c for (a, b), c in zip(X[:200], y[:200], strict=True))
    frac = np.bincount(y, minlength=3) / len(y)
    assert np.all(np.abs(frac - 1 / 3) < 0.04)


def test_yinyang_determinism_and_splits() -> None:
    a = yinyang(100, seed=7)
    b = yinyang(100, seed=7)
    c = yinyang(100, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    splits = yinyang_splits(features="kriener")
    assert {k: v[0].shape for k, v in splits.items()} == {"train": (5000, 4), "val": (1000, 4), "test": (1000, 4)}
    np.testing.assert_array_equal(splits["test"][0], yinyang(1000, 40, "kriener")[0])
    assert not np.array_equal(splits["val"][0], splits["test"][0])


def test_yinyang_variants() -> None:
    Xb, yb = yinyang(2000, seed=3, variant="binary")
    assert set(np.unique(yb)) == {0, 1}
    X3, y3 = yinyang(2000, seed=3)
    np.testing.assert_array_equal(Xb, X3)  # same sampling stream, dots relabelled
    dots = y3 == 2
    right = np.hypot(X3[dots, 0] - 0.75, X3[dots, 1] - 0.5) < 0.1
    np.testing.assert_array_equal(yb[dots], right.astype(int))
    Xn, yn = yinyang(1000, seed=3, variant="nodots")
    assert set(np.unique(yn)) == {0, 1}
    assert np.all(_labels_vectorized(Xn[:, 0].astype(float), Xn[:, 1].astype(float)) != 2)


def test_yinyang_bad_args() -> None:
    with pytest.raises(ConfigError, match="features"):
        yinyang(10, 0, features="xyz")
    with pytest.raises(ConfigError, match="variant"):
        yinyang(10, 0, variant="4class")
    with pytest.raises(ConfigError, match="n must"):
        yinyang(0, 0)
