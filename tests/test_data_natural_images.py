"""Natural-image patches: grid and random patches are exact crops of the images; the split is by image."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from linlens.data.natural_images import NATURAL_SPLITS, grid_patches, load_natural_images, random_patches
from linlens.errors import ConfigError


def test_grid_patches_tile_the_image_without_overlap() -> None:
    img = np.arange(7 * 9, dtype=float).reshape(7, 9)
    p = grid_patches([img, img[:3, :3]], 3)
    assert p.shape == (2 * 3 + 1, 1, 3, 3)
    np.testing.assert_array_equal(p[4, 0], img[3:6, 3:6])  # row 1, column 1 of the 2 × 3 grid
    np.testing.assert_array_equal(p[6, 0], img[:3, :3])


def test_random_patches_are_crops_and_too_small_images_are_refused() -> None:
    img = np.random.default_rng(0).normal(size=(10, 12))
    p = random_patches([img], 4, 20, np.random.default_rng(1))
    windows = np.lib.stride_tricks.sliding_window_view(img, (4, 4)).reshape(-1, 4, 4)
    for q in p[:, 0]:
        assert np.any(np.all(np.isclose(windows, q), axis=(1, 2)))
    with pytest.raises(ConfigError):
        random_patches([img], 11, 1, np.random.default_rng(0))


def test_splits_are_disjoint() -> None:
    names = [n for v in NATURAL_SPLITS.values() for n in v]
    assert len(names) == len(set(names))


@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="needs scikit-image (linlens[images])")
def test_images_load_from_the_wheel_as_grayscale_in_unit_range() -> None:
    (cam,) = load_natural_images("test")
    assert cam.shape == (512, 512) and cam.dtype == np.float64 and 0 <= cam.min() < cam.max() <= 1
    assert all(im.ndim == 2 for im in load_natural_images("val"))
