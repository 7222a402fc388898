"""Data sets of the reference problems (INVENTORY §1.2 ``prob:gmm_cls``, ``prob:digits``).

Everything is float64 features and int64 class labels, deterministic given the generator
(or, for ``digits``, a fixed split seed). Also `batch_rows`, the one reading of a ``batch``
argument shared by every problem.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
SPLITS = ("train", "test")


def batch_rows(batch: np.ndarray | None, n: int) -> np.ndarray:
    """The sample indices a ``batch`` argument names: all of 0..n-1 for None, else the array."""
    if batch is None:
        return np.arange(n)
    rows = np.asarray(batch)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"batch must be None or a non-empty 1-D integer array, got {batch!r}")
    if rows.min() < 0 or rows.max() >= n:
        raise ValueError(f"batch indices must lie in [0, {n - 1}], got {rows.min()}..{rows.max()}")
    return rows


def gmm(
    rng: np.random.Generator, n: int, d: int, classes: int, separation: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-mixture classification: x = mu_y + N(0, I_d), y balanced over ``classes``.

    The class means are ``separation`` times independent random unit vectors, so two means
    are about separation * sqrt(2) apart for large d. Returns X (n, d) and y (n,) int64.
    """
    for name, value, minimum in (("n", n, 1), ("d", d, 1), ("classes", classes, 2)):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"Invalid {name}: {value!r}; must be an integer >= {minimum}")
    if not (np.isfinite(separation) and separation >= 0.0):
        raise ValueError(f"Invalid separation: {separation}; must be finite and >= 0")
    directions = rng.standard_normal((classes, d))
    means = separation * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    X = means[y] + rng.standard_normal((n, d))
    return X, y


def digits(split: str = "train", standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.load_digits`` (1797 x 64, 10 classes; bundled, no download).

    A fixed 80/20 split drawn with seed ``DIGITS_SPLIT_SEED``; standardised per feature
    with the train split's mean and standard deviation (constant pixels keep scale 1).
    If scikit-learn cannot load the data, the fallback is ``gmm(d=20)`` with 1797 samples and
    10 classes from the same seed (INVENTORY §1.2 ``prob:digits``), split the same way.
    """
    if split not in SPLITS:
        raise ValueError(f"Invalid split: {split!r}; allowed: {SPLITS}")
    X, y, train = _digits_split()
    if standardize:
        center = X[train].mean(axis=0)
        scale = X[train].std(axis=0)
        X = (X - center) / np.where(scale > 0.0, scale, 1.0)
    rows = train if split == "train" else ~train
    return X[rows].copy(), y[rows].copy()


@lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw features, labels and the train mask of the fixed split."""
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    try:
        from sklearn.datasets import load_digits

        data = load_digits()
        X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)
    except (ImportError, OSError):
        X, y = gmm(rng, n=1797, d=20, classes=10)
    n_test = int(round(DIGITS_TEST_FRACTION * y.size))
    train = np.ones(y.size, dtype=bool)
    train[rng.permutation(y.size)[:n_test]] = False
    X.setflags(write=False)
    y.setflags(write=False)
    train.setflags(write=False)
    return X, y, train
