"""Natural grayscale images offline: the photographs that the scikit-image wheel ships, split by image.

scikit-image (``pip install 'linlens[images]'``) bundles a few photographs in ``skimage/data`` inside its wheel;
only those are read here, from that folder, so nothing is downloaded at run time (``skimage.data``'s other
images are fetched by pooch and are not used). Colour images are converted to luminance with
``skimage.color.rgb2gray``; pixels are float64 in [0, 1].

The split is by image, so no test patch comes from an image seen in training:

- train: astronaut, chelsea, coffee, hubble_deep_field, rocket, motorcycle_left, brick, grass, gravel, ihc, moon;
- val: coins;
- test: camera (the cameraman, the one image of the paper's Set12 test set that scikit-image ships).

Example:
    >>> import numpy as np
    >>> img = np.arange(36.0).reshape(6, 6)
    >>> grid_patches([img], 3).shape
    (4, 1, 3, 3)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from linlens.errors import ConfigError, InputFileError

__all__ = ["NATURAL_SPLITS", "load_natural_images", "random_patches", "grid_patches"]

NATURAL_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "rocket.jpg",
              "motorcycle_left.png", "brick.png", "grass.png", "gravel.png", "ihc.png", "moon.png"),
    "val": ("coins.png",),
    "test": ("camera.png",),
}


def _data_dir() -> Path:
    if importlib.util.find_spec("skimage") is None:
        raise InputFileError("natural images need scikit-image, which is not installed; run: "
                             "pip install 'linlens[images]' (or pip install scikit-image)")
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_natural_images(split: str) -> list[np.ndarray]:
    """The grayscale photographs of one split, read from the scikit-image wheel (no download).

    Arguments:
        split: "train", "val" or "test" (see :data:`NATURAL_SPLITS`).

    Returns:
        list of (H, W) float64 arrays with pixels in [0, 1].

    Example:
        >>> imgs = load_natural_images("test")  # doctest: +SKIP
        >>> [im.shape for im in imgs]  # doctest: +SKIP
        [(512, 512)]
    """
    if split not in NATURAL_SPLITS:
        raise ConfigError(f"split must be one of {sorted(NATURAL_SPLITS)}; got {split!r}")
    folder = _data_dir()
    from skimage import color, io

    out = []
    for name in NATURAL_SPLITS[split]:
        path = folder / name
        if not path.is_file():
            raise InputFileError(f"{path} is missing from the installed scikit-image; reinstall scikit-image")
        im = np.asarray(io.imread(path))
        if im.ndim == 3:
            im = color.rgb2gray(im[..., :3])
        elif im.dtype == np.uint8:
            im = im / 255.0
        out.append(np.asarray(im, dtype=np.float64))
    return out


def random_patches(images: Sequence[np.ndarray], size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n square patches at uniformly random positions; each image is drawn with probability ∝ its number
    of patch positions.

    Arguments:
        images: (H, W) arrays, each at least size × size.
        size: patch side.
        n: number of patches.
        rng: numpy Generator.

    Returns:
        (n, 1, size, size) float64 array.

    Example:
        >>> random_patches([np.ones((5, 7))], 4, 3, np.random.default_rng(0)).shape
        (3, 1, 4, 4)
    """
    counts = np.array([(im.shape[0] - size + 1) * (im.shape[1] - size + 1) for im in images], dtype=float)
    if len(images) == 0 or (counts <= 0).any():
        raise ConfigError(f"every image must be at least {size} × {size}")
    which = rng.choice(len(images), size=n, p=counts / counts.sum())
    out = np.empty((n, 1, size, size))
    for i, k in enumerate(which):
        im = images[k]
        r = rng.integers(0, im.shape[0] - size + 1)
        c = rng.integers(0, im.shape[1] - size + 1)
        out[i, 0] = im[r : r + size, c : c + size]
    return out


def grid_patches(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """All non-overlapping size × size patches on a grid from the top-left corner, image after image.

    Returns:
        (n_patches, 1, size, size) float64 array.

    Example:
        >>> grid_patches([np.arange(36.0).reshape(6, 6)], 3).shape
        (4, 1, 3, 3)
    """
    out = [im[r : r + size, c : c + size]
           for im in images
           for r in range(0, im.shape[0] - size + 1, size)
           for c in range(0, im.shape[1] - size + 1, size)]
    if not out:
        raise ConfigError(f"no image holds a {size} × {size} patch")
    return np.stack(out)[:, None].astype(np.float64)
