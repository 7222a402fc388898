"""Image data sets of the convolutional problems (INVENTORY §1.2 prob:synth_images, §1.3
prob:W8) and augmentations, NumPy.

Images are float64 arrays (N, C, H, W) (torch's layout), labels int64 (N,).

- `synth_images`: C-class synthetic images. Each class c has a prototype: an oriented
  grating (orientation pi c / classes plus a family offset, spatial frequency), a Gaussian
  blob (centre, width) and a colour (one weight per channel). A sample of class c is
  colour_c * amp * (grating_c(phase) + blob_c(jittered centre)) + 0.25 colour_c + noise
  N(0, noise^2), with a random phase, blob jitter N(0, 1 pixel) and amplitude U(0.7, 1.3).
  The prototypes depend on (seed, family) only; train and test draw their samples from two
  separate streams of the same seed. ``family`` "A"/"B" give two different prototype sets
  (prob:W6's pretrain and fine-tune domains).
- `digit_images`: the digits split of `reference.problems.datasets.digits` as 8x8x1 images.
- Augmentations, pure functions of (X, seed): `random_crop`, `flip`, `random_erasing`; each
  returns a new array and draws only from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import numpy as np

from reference.problems.datasets import digits

FAMILIES = {"A": 0, "B": 1}
_SPLITS = {"train": 0, "test": 1}


def synth_images(
    seed: int = 0,
    n_train: int = 5000,
    n_test: int = 1000,
    classes: int = 10,
    size: int = 16,
    channels: int = 3,
    noise: float = 1.0,
    family: str = "A",
) -> dict[str, np.ndarray]:
    """``{"X_train", "y_train", "X_test", "y_test"}``: (n, channels, size, size) images and
    balanced labels (each class n // classes or n // classes + 1 times, shuffled)."""
    if family not in FAMILIES:
        raise ValueError(f"Invalid family: {family!r}; allowed: {tuple(FAMILIES)}")
    for name, value, low in (("n_train", n_train, 1), ("n_test", n_test, 1),
                             ("classes", classes, 2), ("size", size, 4), ("channels", channels, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"Invalid {name}: {value!r}; must be an integer >= {low}")
    if not (np.isfinite(noise) and noise >= 0.0):
        raise ValueError(f"Invalid noise: {noise}; must be finite and >= 0")
    prototypes = _prototypes(np.random.default_rng([seed, FAMILIES[family]]), classes, size,
                             channels)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rng = np.random.default_rng([seed, FAMILIES[family], 1 + _SPLITS[split]])
        data[f"X_{split}"], data[f"y_{split}"] = _draw(rng, n, prototypes, size, noise)
    return data


def _prototypes(rng: np.random.Generator, classes: int, size: int, channels: int) -> dict:
    colour = rng.uniform(-1.0, 1.0, (classes, channels))
    return {
        "angle": np.pi * (np.arange(classes) + rng.uniform(0.0, 0.5)) / classes,
        "freq": rng.uniform(1.5, 3.5, classes),  # cycles per image
        "centre": rng.uniform(0.25, 0.75, (classes, 2)) * size,
        "width": rng.uniform(0.1, 0.25, classes) * size,
        "colour": colour / np.linalg.norm(colour, axis=1, keepdims=True),
    }


def _draw(rng: np.random.Generator, n: int, proto: dict, size: int, noise: float):
    classes, channels = proto["colour"].shape
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    centre = proto["centre"][y] + rng.standard_normal((n, 2))
    amp = rng.uniform(0.7, 1.3, n)
    grid = np.arange(size, dtype=np.float64)
    rows, cols = grid[None, :, None], grid[None, None, :]
    angle = proto["angle"][y][:, None, None]
    wave = (rows * np.sin(angle) + cols * np.cos(angle)) / size
    grating = np.cos(2.0 * np.pi * proto["freq"][y][:, None, None] * wave
                     + phase[:, None, None])
    dist2 = (rows - centre[:, 0, None, None]) ** 2 + (cols - centre[:, 1, None, None]) ** 2
    blob = np.exp(-dist2 / (2.0 * proto["width"][y][:, None, None] ** 2))
    colour = proto["colour"][y][:, :, None, None]
    pattern = (amp[:, None, None] * (grating + blob))[:, None]
    X = colour * (pattern + 0.25) + noise * rng.standard_normal((n, channels, size, size))
    return X, y


def digit_images(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The standardised digits split as images (N, 1, 8, 8) and labels (N,)."""
    X, y = digits(split)
    if X.shape[1] != 64:
        raise ValueError(f"the digits data set is unavailable (its fallback has {X.shape[1]} "
                         "features, not 8x8 pixels): image problems need scikit-learn's digits")
    return X.reshape(-1, 1, 8, 8), y


def random_crop(X: np.ndarray, seed: int, padding: int = 2) -> np.ndarray:
    """Zero-pad each image by ``padding`` pixels and crop it back to (H, W) at an offset drawn
    uniformly from {0, ..., 2 padding}^2, independently per image."""
    X = _images(X)
    N, C, H, W = X.shape
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"Invalid padding: {padding!r}; must be an integer >= 0")
    offset = np.random.default_rng(seed).integers(0, 2 * padding + 1, (N, 2))
    padded = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    rows = (offset[:, 0, None] + np.arange(H))[:, None, :, None]
    cols = (offset[:, 1, None] + np.arange(W))[:, None, None, :]
    return padded[np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None],
                  rows, cols]


def flip(X: np.ndarray, seed: int, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``, independently per image."""
    X = _images(X)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"Invalid p: {p}; must be in [0, 1]")
    flipped = np.random.default_rng(seed).random(X.shape[0]) < p
    return np.where(flipped[:, None, None, None], X[..., ::-1], X)


def random_erasing(X: np.ndarray, seed: int, size: int = 4) -> np.ndarray:
    """Cutout-like: one ``size`` x ``size`` square per image, centred at a uniformly drawn
    pixel and clipped to the image, set to 0."""
    X = _images(X)
    N, _, H, W = X.shape
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"Invalid size: {size!r}; must be an integer >= 1")
    rng = np.random.default_rng(seed)
    top = rng.integers(0, H, N) - size // 2
    left = rng.integers(0, W, N) - size // 2
    r, c = np.arange(H), np.arange(W)
    inside_r = (r >= top[:, None]) & (r < top[:, None] + size)  # (N, H)
    inside_c = (c >= left[:, None]) & (c < left[:, None] + size)  # (N, W)
    hole = inside_r[:, :, None] & inside_c[:, None, :]
    return np.where(hole[:, None], 0.0, X)


def _images(X: np.ndarray) -> np.ndarray:
    if np.ndim(X) != 4:
        raise ValueError(f"X must be images (N, C, H, W), got shape {np.shape(X)}")
    return np.asarray(X, dtype=np.float64)
