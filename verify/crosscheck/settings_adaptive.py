"""Cross-check settings of the Adam-family `rule:fo.*` rules (see `verify.crosscheck.families`).

Every rule here is elementwise arithmetic on g, m, v (AdaFactor's row/column sums and LAMB's
per-leaf norms included; on the sweep's one vector leaf AdaFactor uses its unfactored EMA, and
its factored path is cross-checked on matrix leaves in
``tests/verify/test_torch_optim_equivalence_adaptive.py``). Nothing in them depends on the sign
or the conditioning of the curvature, so the cases include positive semidefinite and indefinite
quadratics, up to 5 consecutive steps, at the plain floor: rtol 1e-10 in float64, 1e-4 in
float32 against the float64 baseline. Scalar schedules (bias corrections, RAdam's rho_t and
phi, NAdam's mu_product, AdaFactor's relative step) are Python floats in both layers.

The one float32 hazard of the family, AdaBelief's cancellation in g - m for small beta1, is
handled by the beta1 strategy, not by a tolerance (see `verify.strategies.adaptive`).
"""

from __future__ import annotations

from verify.crosscheck.families import Setting

ELEMENTWISE = Setting(kinds=("pd", "psd", "indefinite"), max_steps=5)

SETTINGS: dict[str, Setting] = {
    "rule:fo.adam*": ELEMENTWISE,
    "rule:fo.adamw*": ELEMENTWISE,
    "rule:fo.nadam*": ELEMENTWISE,
    "rule:fo.radam*": ELEMENTWISE,
    "rule:fo.adafactor*": ELEMENTWISE,
    "rule:fo.adabelief*": ELEMENTWISE,
    "rule:fo.adabound": ELEMENTWISE,
    "rule:fo.lamb": ELEMENTWISE,
}
