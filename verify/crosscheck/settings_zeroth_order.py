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


# --- rule:zo.qn: the secant pair amplifies the quotients' rounding ---------------------------
#
# y = g_hat'(theta_t) - g_hat(theta_{t-1}) is a difference of two estimates whose points differ
# by s = -alpha B g_hat, so it is a second difference: each quotient carries the error dq above
# (~ eps n |L| / d), while |y| ~ |A s| >= lam_min alpha |g_hat|. With |L| / |g| ~ ||theta - x*||
# as above, the relative error of y is the quotient bound times 1 / (alpha lam_min). The BFGS
# update (002 Eq. (15)) then multiplies it by its sensitivity to y, |y| |s| / y^T s: for coord
# (y = A s) and for common random directions at the first pair (s parallel to the probes) it
# is <= kappa(A) = lam_max / lam_min; the step B g_hat inherits the error of B. Model:
#   tol = max(floor, K_QN eps n^2 (1 + 1/d) (1 + 1/(alpha lam_min)) kappa(A)).
# For the SECOND pair (step 3) with independent probes (common_random_directions=False) y^T s
# has a random sign and no bound in (H, hyper) exists: "skip" flips between the layers when
# y^T s is within rounding of 0, and rho = 1 / y^T s is unbounded (measured: 3e6 x the model in
# float32). Hence max_steps = 2 for zo.qn: one Eq. (15) update (B_1, in the state) and the step
# preconditioned by it. Measured over 1500 float32 cases (steps <= 2, every estimator, both
# guards, both direction options): max error / model = 1.04; K_QN = 10. The float32 bound is
# large (>= 1 when alpha lam_min <~ 1e-3 at n >= 3): with alpha >= 1e-4 a float32 ZO secant
# pair is not determined by the working precision, and those cases check only the structure
# (keys, shapes, finiteness; inf on a skip/update mismatch of B's finiteness). float64 keeps
# <= ~1e-4 at the corner n = 6, d = 1e-2, alpha lam_min = 1e-5.
K_QN = 10.0


def secant_tolerance(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    """max(floor, K_QN eps n^2 (1 + 1/d) (1 + 1/(alpha lam_min)) kappa(A)) (comment above)."""
    lam = np.linalg.eigvalsh(H)
    d = float(hyper.get("h", 1e-3))
    amplification = (1.0 + 1.0 / (float(hyper["alpha"]) * lam.min())) * lam.max() / lam.min()
    bound = K_QN * float(np.finfo(dtype).eps) * len(H) ** 2 * (1.0 + 1.0 / d) * amplification
    return max(floor(dtype), bound)


SETTINGS: dict[str, Setting] = {
    "rule:zo.qn": Setting(
        kinds=("pd",),
        log10_range=(-1.0, 1.0),
        log10_range32=(-1.0, 1.0),
        n_max=6,
        max_steps=2,
        tolerance=secant_tolerance,
        note="secant pair: tol K eps n^2 (1 + 1/h)(1 + 1/(alpha lam_min)) kappa, K = 10, "
        "2 steps (settings_zeroth_order)",
    ),
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
