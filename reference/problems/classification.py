"""Classification problems on data sets (INVENTORY §1.2 ``prob:digits``, ``prob:gmm_cls``).

Both are `network.FeedForward` models (softmax regression by default, an MLP with ``hidden``
layers) with softmax cross-entropy, on the data of `datasets.digits` (the fixed, standardised
split shared with ``prob:W1``) and `datasets.gmm`, so every oracle quantity is the exact one of
``prob:mlp``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reference.problems.datasets import digits, gmm
from reference.problems.network import FeedForward
from reference.problems.registry import REGISTRY


class DigitsClassification(FeedForward):
    """``prob:digits``: widths [64, *hidden, 10] on ``datasets.digits(split)``."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int | None = None,
             hidden: Sequence[int] = (), activation: str = "tanh", split: str = "train",
             reduction: str = "mean", l2: float = 0.0) -> DigitsClassification:
        """``n_samples``: a random subset (without replacement) of the split; None: all of it
        (1438 train / 359 test samples)."""
        X, y = digits(split)
        if n_samples is not None:
            if not 1 <= n_samples <= y.size:
                raise ValueError(f"Invalid n_samples: {n_samples}; must be in [1, {y.size}]")
            rows = np.sort(rng.choice(y.size, size=n_samples, replace=False))
            X, y = X[rows], y[rows]
        widths = [X.shape[1], *hidden, 10]
        return cls(X, y, widths, activation, "ce", True, reduction, l2, id="prob:digits")


class GMMClassification(FeedForward):
    """``prob:gmm_cls``: widths [dim, *hidden, classes] on ``datasets.gmm`` data, optionally
    with label noise."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 200, dim: int = 2,
             classes: int = 3, separation: float = 3.0, hidden: Sequence[int] = (),
             activation: str = "tanh", label_noise: float = 0.0, reduction: str = "mean",
             l2: float = 0.0) -> GMMClassification:
        """``label_noise``: round(label_noise * N) labels, at random positions, replaced by a
        different class drawn uniformly."""
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(f"Invalid label_noise: {label_noise}; must be in [0, 1]")
        X, y = gmm(rng, n_samples, dim, classes, separation)
        noisy = rng.choice(n_samples, size=int(round(label_noise * n_samples)), replace=False)
        y[noisy] = (y[noisy] + rng.integers(1, classes, size=noisy.size)) % classes
        return cls(X, y, [dim, *hidden, classes], activation, "ce", True, reduction, l2,
                   id="prob:gmm_cls")


REGISTRY.register("prob:digits", DigitsClassification)
REGISTRY.register("prob:gmm_cls", GMMClassification)
