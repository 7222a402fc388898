"""Cross-check cases for update rules: one quadratic, the same steps in both layers.

A case is a curvature case of `verify.strategies.curvature_cases` (H = Q diag(lam) Q^T),
hyperparameters, and a number of steps. Both layers run on ``prob:quad`` with A = H (and
``user_curvature`` = H); at every step the torch rule gets the reference iterate and the
reference gradient, so the comparison measures one step's disagreement, not a compounded
trajectory. If the reference raises ``ValueError`` (a singular curvature with
``singular="raise"``), the mirror must raise ``ValueError`` too.

Rules of the later families (fo, zo, so, meta) take their case settings (curvature kinds,
spectrum range, number of steps, tolerance) from `verify.crosscheck.families`. Random draws
(probes, seeds) reach the torch rule through a `ReplaySampler`, which hands it the reference
oracle's own NumPy draws: both layers consume identical randomness (INVENTORY §0.4 item 1).

Tolerance: `verify.crosscheck.tolerance.spectral` of the damped curvature, in the dtype of
the torch run (rtol 1e-10 in float64 unless the case's condition number, or for the
eigenbasis rules its eigenvalue gaps, bound the attainable agreement above it); float32 cases
are positive definite with eigenvalues in [0.1, 10]. ``rule:uv.gd_linesearch`` is compared to
``10 sqrt(eps)`` of its dtype: a minimiser located from function values is determined only
to the square root of the working precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from reference import problems as ref_problems
from reference.oracle import Oracle as RefOracle
from reference.oracle import probe
from torchimpl import problems as torch_problems
from torchimpl.oracle import Oracle as TorchOracle
from verify.crosscheck.compare import relative_error, to_numpy
from verify.crosscheck.engine import RTOL64, Case, Mirror
from verify.crosscheck.families import Setting, setting_for
from verify.crosscheck.tolerance import floor, spectral
from verify.strategies import build_curvature, curvature_cases, rule_hyper

LINE_SEARCH = "rule:uv.gd_linesearch"


class ReplaySampler:
    """Seeds and probes for the torch oracle, drawn exactly as the reference oracle draws them
    from ``np.random.default_rng(seed)``."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def seed(self) -> int:
        return RefOracle(None, rng=self.rng).seed()

    def probe(self, dist: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
        return probe(dist, shape, seed)


def mirror(rule_id: str, ref_rule: Any) -> Mirror:
    setting = setting_for(rule_id)
    if setting is not None:
        return _family_mirror(rule_id, ref_rule, setting)

    def cases(dtype: str) -> st.SearchStrategy:
        if dtype == "float32" or rule_id == LINE_SEARCH:
            curv = curvature_cases(log10_range=(-1.0, 1.0), kinds=("pd",))
        elif rule_id in EIGENBASIS:  # defined for distinct eigenvalues only (INVENTORY §2.1)
            curv = curvature_cases(kinds=("pd", "indefinite"))
        else:
            curv = curvature_cases(kinds=("pd", "psd", "indefinite"))
        # One line-search step: a second one in one dimension starts at the exact minimiser,
        # where g is rounding noise and the line search has nothing to find.
        steps = st.just(1) if rule_id == LINE_SEARCH else st.integers(min_value=1, max_value=3)
        return st.fixed_dictionaries(
            {"curvature": curv, "hyper": rule_hyper(rule_id, ref_rule.hyper), "steps": steps}
        )

    return Mirror("rule", cases, lambda r, t, c, d: run(rule_id, r, t, c, d))


def _family_mirror(rule_id: str, ref_rule: Any, setting: Setting) -> Mirror:
    def cases(dtype: str) -> st.SearchStrategy:
        spread = setting.log10_range if dtype == "float64" else setting.log10_range32
        return st.fixed_dictionaries(
            {
                "curvature": curvature_cases(
                    n_max=setting.n_max, n_min=setting.n_min, log10_range=spread,
                    kinds=setting.kinds
                ),
                "hyper": rule_hyper(rule_id, ref_rule.hyper),
                "steps": st.integers(min_value=1, max_value=setting.max_steps),
            }
        )

    def check(r: Any, t: Any, c: Case, d: str) -> tuple[float, float]:
        error, _ = run(rule_id, r, t, c, d)
        H = build_curvature(c["curvature"])["H"]
        return error, setting.tolerance(H, c["hyper"], d)

    return Mirror("rule", cases, check, setting.note, setting.max_examples)


def run(
    rule_id: str, ref_rule: Any, torch_rule: Any, case: Case, dtype: str
) -> tuple[float, float]:
    arrays = build_curvature(case["curvature"])
    H = arrays["H"]
    rng = np.random.default_rng(case["curvature"]["seed"] + 1)
    problem = ref_problems.get("prob:quad")(A=H, x_star=rng.standard_normal(len(H)))
    twin = torch_problems.get("prob:quad")(**problem.spec(), dtype=getattr(torch, dtype))
    draws = case["curvature"]["seed"] + 2
    ref_oracle = RefOracle(problem, rng=np.random.default_rng(draws), user_curvature=H)
    torch_oracle = TorchOracle(
        twin,
        user_curvature=torch.as_tensor(H, dtype=getattr(torch, dtype)),
        sampler=ReplaySampler(draws),
    )
    params = {"x": rng.standard_normal(len(H))}
    ref_state = ref_rule.init(params)
    torch_state = torch_rule.init(_to_torch(params, dtype))
    worst = 0.0
    for _ in range(case["steps"]):
        grads = _noisy(problem.grad(params), rng) if "A" in ref_rule.hyper else problem.grad(params)
        try:
            ref_out = ref_rule.step(grads, ref_state, params, ref_oracle, **case["hyper"])
        except ValueError:
            return _both_raise(torch_rule, grads, torch_state, params, torch_oracle, case, dtype)
        torch_out = torch_rule.step(
            _to_torch(grads, dtype),
            torch_state,
            _to_torch(params, dtype),
            torch_oracle,
            **case["hyper"],
        )
        worst = max(worst, relative_error(_plain(ref_out), _plain(torch_out)))
        (updates, ref_state), torch_state = ref_out, torch_out[1]
        params = {k: params[k] + updates[k] for k in params}
    return worst, tolerance(rule_id, H, case["hyper"], dtype)


# Rules whose output is a solve or matrix function of the dense curvature, and those built on
# its individual eigenvectors; every other rule (elementwise or diagonal arithmetic) is held
# to the plain floor.
MATRIX_FUNCTION = (
    "rule:uv.newton",
    "rule:uv.ngd",
    "rule:uv.ngd_normalized",
    "rule:uv.ngd_gn_normalized",
    "rule:uv.clipped_ngd",
    "rule:uv.clipped_ngd[gn_clipped]",
    "rule:uv.stochastic_direction",
)
EIGENBASIS = ("rule:uv.ngd_eigen_normalized", "rule:uv.clipped_ngd[eigen_clipped]")


def tolerance(rule_id: str, H: np.ndarray, hyper: dict[str, Any], dtype: str) -> float:
    if rule_id == LINE_SEARCH:
        return 10.0 * math.sqrt(np.finfo(dtype).eps)
    if rule_id not in MATRIX_FUNCTION + EIGENBASIS:
        return floor(dtype)
    return spectral(
        H,
        dtype,
        eigenvectors=rule_id in EIGENBASIS,
        damping=hyper.get("damping", 0.0),
        pinv=hyper.get("singular") == "pinv",
    )


def _both_raise(torch_rule, grads, state, params, oracle, case, dtype) -> tuple[float, float]:
    try:
        torch_rule.step(
            _to_torch(grads, dtype), state, _to_torch(params, dtype), oracle, **case["hyper"]
        )
    except ValueError:
        return 0.0, RTOL64
    return math.inf, RTOL64


def _noisy(grads: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A minibatch-like gradient g + xi for rules that split d_b = d + d_xi; xi is scaled
    like g, so that d_xi = A (g_b - g) does not cancel more digits than the case carries."""
    return {k: v + np.linalg.norm(v) * rng.standard_normal(v.shape) for k, v in grads.items()}


def _to_torch(tree: dict[str, np.ndarray], dtype: str) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=getattr(torch, dtype)) for k, v in tree.items()}


def _plain(out: tuple[Any, Any]) -> tuple[Any, Any]:
    updates, state = out
    return to_numpy(dict(updates)), to_numpy(dict(state))
