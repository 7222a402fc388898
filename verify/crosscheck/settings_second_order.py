"""Cross-check settings of `rule:so.*` (see `verify.crosscheck.families`).

Tolerances: a rule that solves with the (damped, modified) curvature gets
`verify.crosscheck.tolerance.spectral` of the matrix it actually inverts; the iterative rules
(CG, quasi-Newton, Newton-CG) carry the condition number of H from step to step (conjugacy,
secant pairs), so they get the spectral bound of H times the number of steps.

Branch decisions: the line searches and the LM accept test compare loss values; when two
values tie to rounding the layers may decide differently (most of all in float32, which is
compared against the float64 baseline). The cases avoid ties by construction:

- Newton-type steps (newton_ls, gauss_newton) run one step: on a quadratic the pure Newton
  step lands on the minimiser, where the next Armijo test compares two losses equal to
  rounding. The first test is decided with margin: with alpha <= 1 and c1 < 1/2 the Armijo
  condition holds at the first trial for K >= H (pd, pinv, damping, abs).
- LM runs at most 3 steps with mu >= 0.1 (strategies): the residual shrinks by at most
  mu/(lam + mu) per step, so the accept test at step 3 still compares clearly different
  losses in both dtypes.
- Nonlinear CG runs at most 2 steps (with the exact line search it converges in n steps; a
  step after convergence works on rounding noise, see `_nonlinear_cg`).
- Strong-Wolfe rules run at most 3 steps on positive definite spectra; float32 cases have
  eigenvalues in [10^-0.5, 10^0.5] (condition number <= 10), where the interpolated trial
  steps and the Wolfe tests are far from ties at float32 precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from verify.crosscheck.families import Setting
from verify.crosscheck.tolerance import floor, spectral


def _newton(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    nonpd = hyper.get("nonpd", "raise")
    if nonpd == "damping":
        shift = max(0.0, hyper.get("delta", 1e-3) - float(np.linalg.eigvalsh(H)[0]))
        return spectral(H, dtype, damping=shift)
    if nonpd == "abs":
        lam, Q = np.linalg.eigh(H)
        return spectral((Q * np.abs(lam)) @ Q.T, dtype)
    return spectral(H, dtype, pinv=nonpd == "pinv" or bool(hyper.get("pinv", False)))


def _lm(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    mu = hyper.get("mu", 1e-2)
    if hyper.get("mu_schedule", "marquardt") == "marquardt":
        mu = mu / hyper.get("nu", 10.0) ** 3  # the smallest damping 3 accepted steps reach
    D = np.eye(len(H)) if hyper.get("scaling", "identity") == "identity" else np.diag(np.diag(H))
    return spectral(H + mu * D, dtype)


def _sofo(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
    return spectral(H, dtype, damping=hyper.get("lam", 1.0))


def _iterative(steps: int):
    def tolerance(H: np.ndarray, hyper: Mapping[str, Any], dtype: str) -> float:
        # newton_cg: lam shrinks by alpha_damp per step on a quadratic (rho = 1 > 3/4)
        lam = hyper.get("lam", 0.0) / hyper.get("alpha_damp", 1.0) ** (steps - 1)
        return max(floor(dtype), steps * spectral(H, dtype, damping=lam))

    return tolerance


# Nonlinear CG and the quasi-Newton rules are cross-checked from n = 2 on. In one dimension
# the exact line search (CG) or the first secant pair (M = s/y = 1/lam) solves the problem
# within the first steps, and the next step works on a rounding-noise gradient e, where
# Polak-Ribiere cancels (d = -e + beta d_prev = O(e^2)) and the Wolfe tests compare losses
# equal to rounding: no agreement can be asked there. The 1-D behaviour is unit-tested in
# both layers (tests/verify/test_scipy_equivalence.py).
_PD32 = (-0.5, 0.5)

SETTINGS: dict[str, Setting] = {
    "rule:so.*": Setting(),
    "rule:so.newton_ls": Setting(kinds=("pd", "indefinite"), max_steps=1, tolerance=_newton),
    "rule:so.gauss_newton": Setting(max_steps=1, tolerance=_newton),
    "rule:so.lm": Setting(max_steps=3, tolerance=_lm),
    "rule:so.sofo": Setting(kinds=("pd", "psd"), tolerance=_sofo),
    "rule:so.cg_linear": Setting(max_steps=5, tolerance=_iterative(5)),
    "rule:so.cg_nonlinear*": Setting(n_min=2, max_steps=2, tolerance=_iterative(2)),
    "rule:so.bfgs": Setting(n_min=2, max_steps=3, log10_range32=_PD32, tolerance=_iterative(3)),
    # One step only: the printed M update makes the next slope g^T p = O(s^T g_1), which the
    # Wolfe step drives towards 0, so from step 2 on whether -M g descends at all (and the step
    # length -g^T p / p^T H p) is decided by rounding, in float64 as in float32. The printed
    # update itself is tested in tests/layers/test_so_rules.py.
    "rule:so.bfgs[[]as_printed]": Setting(
        max_steps=1, log10_range32=_PD32, tolerance=_iterative(1),
        note="one step: later steps of the printed update are rounding-decided"),
    "rule:so.lbfgs": Setting(n_min=2, max_steps=3, log10_range32=_PD32, tolerance=_iterative(3)),
    "rule:so.newton_cg": Setting(max_steps=3, tolerance=_iterative(3)),
}
