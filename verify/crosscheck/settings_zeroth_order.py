"""Cross-check settings of `rule:zo.*` (see `verify.crosscheck.families`).

Cases: ``prob:quad`` with positive-definite A, eigenvalues in [0.1, 10], n <= 6, 1-3 steps; both
layers draw the same probes (replayed seeds). The layers differ only in rounding, but a
zeroth-order step divides a loss difference by the difference step d (h, or MeZO's eps), so
rounding is amplified:

- a loss value carries an error of about n eps |L| (the quadratic form), the perturbed point
  theta + d u an error of eps |theta| per entry (and in float32 the iterate itself is rounded),
  so a quotient q = (L(theta + d u) - L(theta)) / d carries
  |dq| <~ eps (n |L| + ||g|| ||theta|| ||u||) / d + eps ||A|| ||theta|| ||u||;
- the update is proportional to q u (to the sign of q u for ``zo.sign``), so its normwise
  relative error is |dq| / |q|, with q ~ u^T g. On these cases theta and x* are N(0, I_n) and
  |L| / ||g|| <= ||theta - x*|| / 2 ~ sqrt(n / 2), so the bound is about
  eps n^{3/2} (1 + 1/d) / rho with rho = |u^T g| / (||u|| ||g||), which is ~ |N(0, 1)|/sqrt(n)
  for a random direction (and small when theta is near x*).

Tolerance: max(floor, K eps n^2 (1 + 1/d)) with K = 1e3, i.e. the model bound at rho down to
~1e-3 (n^2 >= n^{3/2} for the remaining constants). No tolerance can bound a relative error
as rho -> 0; the rate is measured: over 2000 random cases per rule and dtype the largest
error / (eps n^2 (1 + 1/d)) was 87 in float32 (0.999-quantile ~ 50) and 36 in float64
(0.999-quantile ~ 1), against K = 1000. The float32 tolerance reaches ~0.4 at the corner
n = 6, d = 1e-2; a wrong formula (sign, factor 2, other probes) errs by O(1) relative to the
update. The difference steps are drawn in [1e-2, 1] (``verify.strategies.zeroth_order``) so
that float32 quotients keep ~4 digits or more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from verify.crosscheck.families import Setting
from verify.crosscheck.tolerance import floor

K = 1e3


def quotient_tolerance(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    """max(floor, K eps n^2 (1 + 1/d)), d = h (or MeZO's eps): the bound of the module doc."""
    d = float(hyper.get("h", hyper.get("eps", 1e-3)))
    n = len(H)
    return max(floor(dtype), K * float(np.finfo(dtype).eps) * n**2 * (1.0 + 1.0 / d))


SETTINGS: dict[str, Setting] = {
    "rule:zo.*": Setting(
        kinds=("pd",),
        log10_range=(-1.0, 1.0),
        log10_range32=(-1.0, 1.0),
        n_max=6,
        max_steps=3,
        tolerance=quotient_tolerance,
        note="difference quotients: tol K eps n^2 (1 + 1/h), K = 1e3 (settings_zeroth_order)",
    )
}
