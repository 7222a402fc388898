"""Cross-check settings of `rule:fo.*` (see `verify.crosscheck.families`).

The non-Adam first-order rules are elementwise (or use per-leaf norms), so the default setting
applies: positive definite quadratics, up to 5 consecutive steps, the plain floor (rtol 1e-10
in float64, 1e-4 in float32 against the float64 baseline).

The Nesterov rules are the exception in float32: they evaluate the gradient themselves, at the
look-ahead point, in the torch problem's dtype, where A (x - x*) loses ``eps32 ||x||/||x - x*||``
relative digits to cancellation once an iterate lands near x*. With a position step
alpha lambda close to 1 (``[as_printed]`` at beta = 0 is gradient descent with step 1) one
step does exactly that on a one-dimensional case (seen: 2e-4 at lambda ~ 1, beta = 0). Their
float32 cases therefore keep every eigenvalue in [0.1, 10^-0.5]: a first position step (at
most ~1 times lambda with the strategies' step sizes) removes at most ~30% of x - x* per mode,
so landing near x* takes momentum building up over the <= 5 steps and a chance crossing, not
one step (no failure in 750 cases per ID over 5 seeds); float64 keeps the family's range
(reaching its tolerance would take a cancellation of about 1e-6).
"""

from __future__ import annotations

from verify.crosscheck.families import Setting

NESTEROV_NOTE = (
    "float32: eigenvalues in [0.1, 10^-0.5] (the look-ahead gradient is computed in float32 and "
    "cancels near x*; see the module docstring)"
)

SETTINGS: dict[str, Setting] = {
    "rule:fo.*": Setting(),
    "rule:fo.nesterov*": Setting(log10_range32=(-1.0, -0.5), note=NESTEROV_NOTE),
}
