"""Audits of the one-step closed forms of the unified view (INVENTORY §4.1.A).

Source: 000_4a249e1305656390.txt §1 (primary) and 001_7b413654114c5cca.txt (second rendering;
where the two print different formulas, both run as separately named relations: claim:U.
renderings items iii and iv). Every printed statement of a paragraph is one `Relation`,
evaluated literally; a printed expression whose type or shape does not fit (a matrix where a
scalar stands, a vector set equal to a scalar) is evaluated as printed and recorded ill-typed by
`compare`, next to a relation for the natural reading, labelled "reading:".

Where the numbers come from (never from the document's closed forms):
- directions d: the registered reference rules ``rule:uv.*`` with curv="user", the case's
  curvature as the user matrix, params {"x": theta} and the case's gradient g;
- Delta_d, its split Delta_d^i (as the table defines it, and negated), ||d||_H^2,
  ||d_i||_H^2 and the actual decrease f(theta) - f(theta + d): ``est:uv_quantities``;
- f: ``prob:quad`` with Hessian H and gradient g at theta (synthetic cases), or the real loss
  of prob:softmax / prob:W1 on a random coordinate block (the model arm, see
  `verify.audits.unified_view_models`).
Search space (INVENTORY §4.1.A): n in [1, 12], lam log-uniform on [1e-4, 1e4] (PD), PSD
boundary cases (exact zero eigenvalues: every relation that needs H^-1 or H^-1/2 is undefined
there, because the direction itself is), indefinite H where a row's hypotheses allow it, and
the model arm; alpha in (0, 3], eps in (0, 10], L in [lam_max, 10 lam_max] (INVENTORY default).

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference
from reference.oracle import Oracle
from reference.tree import flatten, unflatten
from verify.audits import unified_view_models as models
from verify.audits.framework import (
    Claim,
    Evaluation,
    Hypothesis,
    Relation,
    compare,
    predicate,
    undefined,
)
from verify.strategies import build_curvature, curvature_cases, positive, step_sizes

Context = dict[str, Any]
Value = Callable[[Context], Any]

# --- thresholds (INVENTORY §0.4 items 3-4: written before anything runs) --------------------

EPS = float(np.finfo(np.float64).eps)
RTOL = 1e-10  # exact float64 algebra ...
# ... plus the rounding of solves and eigendecompositions: a computed H^-1 g (or eigenbasis
# coefficient) carries a relative error O(n kappa(H) eps), so exact relations use
# rtol = RTOL + ROUNDOFF n kappa eps, kappa = max|lam| / min|lam| over the nonzero lam.
ROUNDOFF = 16.0
APPROX = 0.1  # "≈" (expansion, approximate equivalences): relative difference <= 0.1
# A minimiser located from function values is resolved to sqrt(eps T / Delta*) relative (f
# flat to its rounding eps T within that distance; T the size of the terms of f, Delta* the
# decrease along the line): the line search relation allows LINESEARCH times that.
LINESEARCH = 10.0
RESOLVABLE = 1e-3  # beyond this tolerance the function values cannot locate the minimiser
SLOPE = 0.25  # fitted cost exponents: "O(n^p)" means exponent <= p + 0.25, "Θ" |exp - p| <= 0.25
EXACT = {"rtol_exact": RTOL, "roundoff_per_n_kappa_eps": ROUNDOFF}

SINGULAR = "H singular (PSD boundary): H^-1 and H^-1/2 undefined"
SIGN_AT_ZERO = "sign(x) = x/|x| (as the document defines it) is undefined at a zero entry"


# --- contexts: the case's curvature, the rules' directions, the estimator's quantities ------


def synthetic_context(case: Mapping[str, Any]) -> Context:
    """H = Q diag(lam) Q^T and g from `build_curvature`; theta ~ N(0, I); f the quadratic."""
    built = build_curvature(case)
    theta = np.random.default_rng([case["seed"], 1]).standard_normal(case["n"])
    return {"H": built["H"], "g": built["g"], "theta": theta, "lam_exact": built["lam"]}


def curvature_context(case: Mapping[str, Any]) -> Context:
    """What every claim needs: H, g, theta, n, kappa, the PSD/singular facts, f and its model.

    ``quadratic`` is f_q(x) = 1/2 (x - x*)^T H (x - x*), x* = theta - H^-1 g (gradient g and
    Hessian H at theta), None for singular H; ``loss_problem`` is f itself: f_q for synthetic
    cases, the real loss on the coordinate block for the model arm.
    """
    model_arm = case.get("source") == "model"
    ctx = models.block_context(case) if model_arm else synthetic_context(case)
    H, g, theta = ctx["H"], ctx["g"], ctx["theta"]
    lam = ctx.pop("lam_exact", None)
    lam = np.linalg.eigvalsh(H) if lam is None else lam
    top = max(float(np.max(np.abs(lam))), np.finfo(np.float64).tiny)
    cut = lam.size * EPS * top  # the threshold of reference.linalg's singular policy
    nonzero = np.abs(lam) > cut
    singular = not bool(np.all(nonzero))
    quadratic = None if singular else _quadratic(H, theta - np.linalg.solve(H, g))
    ctx.update(
        n=lam.size,
        singular=singular,
        psd=bool(lam.min() >= -cut),
        kappa=top / float(np.min(np.abs(lam[nonzero]))) if nonzero.any() else 1.0,
        lam_max=float(lam.max()),
        abs_max=top,
        quadratic=quadratic,
    )
    if not model_arm:
        ctx.update(loss_problem=quadratic, f_convex=ctx["psd"])
    return ctx


def _quadratic(H: np.ndarray, x_star: np.ndarray):
    return reference.problems.get("prob:quad")(A=H, x_star=x_star, c=0.0, halved=True)


def step(ctx: Context, rule_id: str, K=None, g=None, loss=None, **hyper) -> np.ndarray | str:
    """The update d of ``rule_id`` (curv="user" = ``K``, default H) at gradient ``g``
    (default the case's), or the reason it is undefined (missing rule, singular K, ...)."""
    if rule_id not in reference.rules.REGISTRY:
        return f"{rule_id} not implemented yet"
    rule = reference.rules.get(rule_id)
    if "curv" in rule.hyper:
        hyper = {"curv": "user", **hyper}
    params = {"x": ctx["theta"]}
    oracle = Oracle(ctx["loss_problem"] if loss is None else loss,
                    user_curvature=ctx["H"] if K is None else K)
    grads = {"x": ctx["g"] if g is None else g}
    try:
        updates, _ = rule.step(grads, rule.init(params), params, oracle, **hyper)
    except ValueError as error:
        return models.failure(rule_id, error)
    return np.asarray(updates["x"])


def quantities(ctx: Context, d: np.ndarray | str, K=None, with_loss=False) -> dict | str:
    """``est:uv_quantities`` of d at g with curvature K (default H), or d's reason string.

    Adds the rounding scales of the sums that can cancel: ``Delta_scale`` = |g^T d| +
    1/2 |d^T K d| and ``Delta_i_scale`` = |g_hat_i d_hat_i| + 1/2 |lam_i| d_hat_i^2.
    """
    if isinstance(d, str):
        return d
    K = ctx["H"] if K is None else K
    f, losses = ctx.get("loss_problem"), {}
    if with_loss and f is not None:
        losses = {"f0": f.loss({"x": ctx["theta"]}), "f1": f.loss({"x": ctx["theta"] + d})}
    q = dict(reference.estimators.get("est:uv_quantities")(ctx["g"], d, K, **losses))
    q["d"] = d
    q["Delta_scale"] = abs(ctx["g"] @ d) + 0.5 * abs(d @ K @ d)
    q["Delta_i_scale"] = np.abs(q["g_hat"] * q["d_hat"]) + 0.5 * np.abs(q["lam"]) * q["d_hat"] ** 2
    return q


def rule_context(rule_id: str, case_keys: tuple[str, ...] = (), **fixed):
    """A context builder: the curvature context, the case's hyperparameters ``case_keys``, and
    ``q`` = quantities of ``rule_id``'s step with those and the ``fixed`` hyperparameters."""

    def build(case: Mapping[str, Any]) -> Context:
        ctx = {**curvature_context(case), **{k: case[k] for k in case_keys}}
        ctx["q"] = quantities(ctx, step(ctx, rule_id, **{k: case[k] for k in case_keys}, **fixed))
        return ctx

    return build


# --- evaluation helpers ---------------------------------------------------------------------


def exact_rtol(ctx: Context) -> float:
    return RTOL + ROUNDOFF * ctx["n"] * ctx["kappa"] * EPS


def exact(lhs: Any, rhs: Any, ctx: Context, scale: float = 0.0) -> Evaluation:
    """`compare` at `exact_rtol`; with ``scale`` > 0 the gap is measured against
    max(|lhs|, |rhs|, scale): a sum whose terms of size ``scale`` cancel is exact only to
    rounding relative to its terms, not to its (small) value."""
    rtol = exact_rtol(ctx)
    ev = compare(lhs, rhs, rtol)
    if ev.ok is None or scale == 0.0:
        return ev
    left, right = np.asarray(lhs, dtype=float), np.asarray(rhs, dtype=float)
    size = max(float(np.linalg.norm(left)), float(np.linalg.norm(right)), float(scale))
    gap = float(np.linalg.norm(left - right)) / size
    return Evaluation(gap <= rtol, gap, {**ev.detail, "scale": float(scale)})


def defined(fn: Callable[[Context], Evaluation], needs: tuple[str, ...] = ("q",),
            sign_of: Value | None = None):
    """``fn(ctx)``, or undefined: with the reason when a needed direction is a reason string,
    and where the printed sign(x) = x/|x| meets a zero entry of ``sign_of(ctx)``."""

    def check(ctx: Context) -> Evaluation:
        reason = next((ctx[k] for k in needs if isinstance(ctx[k], str)), None)
        if reason is None and sign_of is not None and np.any(sign_of(ctx) == 0):
            reason = SIGN_AT_ZERO
        return undefined(reason) if reason is not None else fn(ctx)

    return check


def E(name: str, lhs: Value, rhs: Value, scale: Value | None = None, needs=("q",),
      sign_of: Value | None = None) -> Relation:
    """Printed equality ``lhs = rhs`` of exact algebra (``scale``: see `exact`)."""
    return Relation(
        name,
        defined(lambda c: exact(lhs(c), rhs(c), c, 0.0 if scale is None else scale(c)), needs,
                sign_of),
    )


def approx(name: str, lhs: Value, rhs: Value, needs=("q",)) -> Relation:
    """Printed approximation ``lhs ≈ rhs``: relative difference <= APPROX."""
    return Relation(name, defined(lambda c: compare(lhs(c), rhs(c), APPROX), needs))


def per_direction(name: str, rhs: Value, key: str = "q",
                  sign_of: Value | None = None) -> tuple[Relation, Relation]:
    """A printed Delta_d^i formula under the table's definition and under its negation."""

    def scale(c: Context) -> float:
        return float(np.linalg.norm(c[key]["Delta_i_scale"]))

    return (
        E(f"{name} [Δ_d^i as defined: ĝ_i d̂_i + ½d̂_i²λ_i]", lambda c: c[key]["Delta_i"], rhs,
          scale, (key,), sign_of),
        E(f"{name} [reading: Δ_d^i negated, ΣΔ_d^i = Δ_d]", lambda c: c[key]["Delta_i_neg"], rhs,
          scale, (key,), sign_of),
    )


def sign(value: float, scale: float, ctx: Context) -> int:
    """+1, -1, or 0 when |value| is within the rounding of terms of size ``scale``."""
    return 0 if abs(value) <= exact_rtol(ctx) * scale else (1 if value > 0 else -1)


def equivalent(name: str, premise: Callable[[Context], int], slack: Value,
               needs=("q",)) -> Relation:
    """"To make premise, we have conclusion", read as premise <=> conclusion.

    ``premise`` returns +1, -1, or 0 when its sign is within rounding (then undefined);
    ``slack`` is the conclusion's signed slack (> 0: it holds), recorded as the margin.
    """

    def check(c: Context) -> Evaluation:
        side, margin = premise(c), float(slack(c))
        if side == 0:
            return undefined("premise is zero within rounding: its sign is not decidable")
        return predicate((side > 0) == (margin > 0), margin, premise=side > 0)

    return Relation(name, defined(check, needs))


def g_tilde(c: Context) -> np.ndarray:
    """g~ = H^-1 g, solved here independently of the rules."""
    return np.linalg.solve(c["H"], c["g"])


def norm_H2(c: Context, x: np.ndarray) -> np.float64:
    """x^T H x (a NumPy scalar: a zero divisor gives inf/nan, recorded as non-finite)."""
    return x @ c["H"] @ x


def power(c: Context, p: float) -> np.ndarray:
    """H^p = Q diag(lam^p) Q^T from the estimator's eigendecomposition."""
    return (c["q"]["Q"] * c["q"]["lam"] ** p) @ c["q"]["Q"].T


def eigen_vectors(c: Context, key: str = "q") -> np.ndarray:
    """The vectors d_i = d_hat_i e_i as columns (n, n): the printed "\\vec d_i"."""
    return c[key]["Q"] * c[key]["d_hat"]


def cases(kinds=("pd", "psd"), model_arm=True, **hyper) -> st.SearchStrategy:
    """Synthetic curvature cases (and the model arm) with the row's hyperparameters."""
    curvature = curvature_cases(kinds=kinds).map(lambda c: {**c, "source": "synthetic"})
    if model_arm:
        curvature = st.one_of(curvature, models.curvature_cases())
    return st.tuples(curvature, st.fixed_dictionaries(hyper)).map(lambda p: {**p[0], **p[1]})


def synthetic(n: int, seed: int = 0, kind: str = "pd", rotated: bool = True, **hyper) -> dict:
    """A targeted synthetic case (for ``examples``)."""
    return {"n": n, "seed": seed, "kind": kind, "lo": -4.0, "hi": 4.0, "rotated": rotated,
            "source": "synthetic", **hyper}


MODEL_EXAMPLE = {"source": "model", "model": "softmax", "stage": "init", "curv": "H", "n": 3,
                 "seed": 0}
ALPHA, EPS_HYPER, L_FACTOR = (step_sizes()[k] for k in ("alpha", "eps", "L_factor"))

PSD = Hypothesis("H ⪰ 0 (the PSD case the document considers)", lambda c: c["psd"])


# --- claim:U.general ------------------------------------------------------------------------


def general_context(case: Mapping[str, Any]) -> Context:
    """A direction of length d_scale in a Gaussian direction (the statements hold for any d)."""
    ctx = curvature_context(case)
    z = np.random.default_rng([case["seed"], 2]).standard_normal(ctx["n"])
    ctx["q"] = quantities(ctx, case["d_scale"] * z / np.linalg.norm(z), with_loss=True)
    return ctx


def actual_decrease(c: Context) -> Evaluation:
    if "actual_decrease" not in c["q"]:
        return undefined("no loss f with gradient g and Hessian H at theta (H singular)")
    return compare(c["q"]["actual_decrease"], c["q"]["Delta"], APPROX)


def _sqrt_lam(c: Context) -> np.ndarray | None:
    return np.sqrt(c["q"]["lam"]) if np.all(c["q"]["lam"] >= 0) else None


def _basis_norm(c: Context) -> Evaluation:
    root = _sqrt_lam(c)
    if root is None:
        return undefined("some lam_i < 0: sqrt(lam_i) e_i undefined")
    return exact(c["q"]["normH2"], np.sum((c["q"]["Q"] @ (root * c["q"]["d_hat"])) ** 2), c)


general = Claim(
    id="claim:U.general",
    source='000 §1 "(General Update)" and its table',
    statement="f(θ+d) ≈ f(θ) + gᵀd + ½dᵀHd. Δ_d = f(θ) − f(θ+d) = −(gᵀd + ½dᵀHd). ... "
    "Δ_d = −Σ(ĝ_i d̂_i + ½d̂_i²λ_i) ≐ −ΣΔ_d^i, where ĝ_i is the decomposition of gradient g. "
    "‖d‖_H² = dᵀHd, which is the norm in the space of [λ₁e₁, …, λ_ne_n]. ‖d_i‖_H² = λ_i d̂_i². "
    "Table: Δ_d^i = ĝ_i d̂_i + ½d̂_i²λ_i.",
    cases=cases(("pd", "psd", "indefinite"), d_scale=positive(1e-3, 1.0)),
    context=general_context,
    relations=(
        Relation("Δ_d = f(θ) − f(θ+d) ≈ −(gᵀd + ½dᵀHd) (second-order expansion)",
                 defined(actual_decrease)),
        E("Δ_d = −Σ(ĝ_i d̂_i + ½d̂_i²λ_i)", lambda c: c["q"]["Delta"],
          lambda c: -np.sum(c["q"]["g_hat"] * c["q"]["d_hat"]
                            + 0.5 * c["q"]["d_hat"] ** 2 * c["q"]["lam"]),
          lambda c: c["q"]["Delta_scale"]),
        E("Δ_d ≐ −ΣΔ_d^i (Δ_d^i from the table)", lambda c: c["q"]["Delta"],
          lambda c: -np.sum(c["q"]["Delta_i"]), lambda c: c["q"]["Delta_scale"]),
        E("ĝ_i is the decomposition of g: g = Σ_i ĝ_i e_i", lambda c: c["g"],
          lambda c: c["q"]["Q"] @ c["q"]["g_hat"]),
        E("d = Qd̂ = Σ_i d̂_i e_i", lambda c: c["q"]["d"], lambda c: c["q"]["Q"] @ c["q"]["d_hat"]),
        E("‖d‖_H² = dᵀHd", lambda c: c["q"]["normH2"], lambda c: norm_H2(c, c["q"]["d"])),
        E("‖d‖_H² is the norm in the space of [λ₁e₁, …, λ_ne_n]: ‖Σ_i d̂_i λ_ie_i‖₂²",
          lambda c: c["q"]["normH2"],
          lambda c: np.sum((c["q"]["Q"] @ (c["q"]["lam"] * c["q"]["d_hat"])) ** 2)),
        Relation("reading: … in the space of [√λ₁e₁, …, √λ_ne_n]: ‖Σ_i d̂_i √λ_ie_i‖₂²",
                 defined(_basis_norm)),
        E("‖d_i‖_H² = λ_i d̂_i² (d_i = d̂_i e_i)",
          lambda c: np.einsum("pi,pq,qi->i", eigen_vectors(c), c["H"], eigen_vectors(c)),
          lambda c: c["q"]["lam"] * c["q"]["d_hat"] ** 2),
    ),
    thresholds={**EXACT, "approx_rtol": APPROX},
    examples=(synthetic(2, rotated=False, d_scale=0.5), synthetic(3, kind="psd", d_scale=0.5),
              {**MODEL_EXAMPLE, "d_scale": 0.1}),
    note="d = d_scale z/‖z‖, z Gaussian; quantities from est:uv_quantities with the real f "
    "(quadratic f: f(θ) − f(θ+d) equals the model exactly; model arm: the real loss on the "
    "coordinate block, so the first relation measures the expansion error with the '≈' "
    "threshold 0.1). The printed 'norm in the space of [λ₁e₁, …]' is evaluated literally as "
    "the squared length of Σ d̂_i λ_i e_i (= Σλ_i²d̂_i²); the basis √λ_i e_i is the reading. "
    "Indefinite H is in scope (no hypothesis of the paragraph excludes it).",
)


# --- claim:U.newton_pure, claim:U.newton_damped ---------------------------------------------

CONVEX = Hypothesis("f convex", lambda c: bool(c["f_convex"]))

newton_pure = Claim(
    id="claim:U.newton_pure",
    source="000 §1 \"(Pure Newton's Method)\"",
    statement="When f is convex and H ⪰ 0, maximizing Δ_d leads to d = −g̃ = −H⁻¹g, "
    "Δ_d = ½‖g̃‖_H², ‖d‖_H² = gᵀH⁻¹g; d̂_i = −ĝ_i/λ_i, Δ_d^i = ĝ_i²/(2λ_i), ‖d_i‖_H² = ĝ_i²/λ_i.",
    cases=cases(),
    context=rule_context("rule:uv.newton", alpha=1.0),
    hypotheses=(CONVEX, PSD),
    relations=(
        E("d = −g̃ = −H⁻¹g", lambda c: c["q"]["d"], lambda c: -g_tilde(c)),
        E("maximizing Δ_d leads to d: ∇_dΔ_d = −(g + Hd) = 0, i.e. Hd = −g",
          lambda c: c["H"] @ c["q"]["d"], lambda c: -c["g"]),
        E("Δ_d = ½‖g̃‖_H²", lambda c: c["q"]["Delta"], lambda c: 0.5 * norm_H2(c, g_tilde(c)),
          lambda c: c["q"]["Delta_scale"]),
        E("‖d‖_H² = gᵀH⁻¹g", lambda c: c["q"]["normH2"], lambda c: c["g"] @ g_tilde(c)),
        E("d̂_i = −ĝ_i/λ_i", lambda c: c["q"]["d_hat"], lambda c: -c["q"]["g_hat"] / c["q"]["lam"]),
        *per_direction("Δ_d^i = ĝ_i²/(2λ_i)", lambda c: c["q"]["g_hat"] ** 2 / (2 * c["q"]["lam"])),
        E("‖d_i‖_H² = ĝ_i²/λ_i", lambda c: c["q"]["normH2_i"],
          lambda c: c["q"]["g_hat"] ** 2 / c["q"]["lam"]),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False), synthetic(3, kind="psd"), MODEL_EXAMPLE),
    note="d = rule:uv.newton (alpha = 1, singular='raise'); g̃ = np.linalg.solve(H, g) "
    "independently; per-eigendirection values in the estimator's eigenbasis. 'f convex': "
    "H ⪰ 0 for the quadratic f, the softmax loss (convex), not the tanh network W1. PSD "
    "boundary: the direction is undefined (H⁻¹), recorded as such.",
)


newton_damped = Claim(
    id="claim:U.newton_damped",
    source="000 §1 \"(Newton's Method)\"",
    statement="A learning rate α ∈ (0, 1] can be introduced to dampen the update: d = −αg̃, "
    "Δ_d = α(1 − α/2)‖g̃‖_H², ‖d‖_H² = α²‖g̃‖_H²; d̂_i = −αĝ_i/λ_i, "
    "Δ_d^i = α(1 − α/2)ĝ_i²/λ_i, ‖d_i‖_H² = α²ĝ_i²/λ_i.",
    cases=cases(alpha=ALPHA),
    context=rule_context("rule:uv.newton", ("alpha",)),
    hypotheses=(PSD, Hypothesis("α ∈ (0, 1]", lambda c: 0.0 < c["alpha"] <= 1.0)),
    relations=(
        E("d = −αg̃", lambda c: c["q"]["d"], lambda c: -c["alpha"] * g_tilde(c)),
        E("Δ_d = α(1 − α/2)‖g̃‖_H²", lambda c: c["q"]["Delta"],
          lambda c: c["alpha"] * (1 - c["alpha"] / 2) * norm_H2(c, g_tilde(c)),
          lambda c: c["q"]["Delta_scale"]),
        E("‖d‖_H² = α²‖g̃‖_H²", lambda c: c["q"]["normH2"],
          lambda c: c["alpha"] ** 2 * norm_H2(c, g_tilde(c))),
        E("d̂_i = −αĝ_i/λ_i", lambda c: c["q"]["d_hat"],
          lambda c: -c["alpha"] * c["q"]["g_hat"] / c["q"]["lam"]),
        *per_direction("Δ_d^i = α(1 − α/2)ĝ_i²/λ_i",
                       lambda c: c["alpha"] * (1 - c["alpha"] / 2) * c["q"]["g_hat"] ** 2
                       / c["q"]["lam"]),
        E("‖d_i‖_H² = α²ĝ_i²/λ_i", lambda c: c["q"]["normH2_i"],
          lambda c: c["alpha"] ** 2 * c["q"]["g_hat"] ** 2 / c["q"]["lam"]),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, alpha=1.0), synthetic(4, alpha=0.5),
              {**MODEL_EXAMPLE, "alpha": 0.5}),
    note="d = rule:uv.newton(alpha) (singular='raise'); α drawn in (0, 3] so that the "
    "hypothesis α ∈ (0, 1] is seen both satisfied and violated; the Δ_d^i formula is checked "
    "under the table's definition and its negation.",
)


# --- claim:U.ngd_normalized -----------------------------------------------------------------


def _alpha_normalized(c: Context) -> float:
    """alpha = eps / ||g~||_H, the printed step size of Newton's method."""
    return c["eps"] / np.sqrt(norm_H2(c, g_tilde(c)))


ngd_normalized = Claim(
    id="claim:U.ngd_normalized",
    source='000 §1 "(Normalized Natural Gradient Descent)"',
    statement="If we want the learning rate to control the update length by ‖αH⁻¹g‖_H = ε, we "
    "have α = ε/‖g̃‖_H. Thus d = −εH⁻¹g/√(gᵀH⁻¹g), Δ_d = ε‖g̃‖_H − ε²/2, ‖d‖_H² = ε².",
    cases=cases(eps=EPS_HYPER),
    context=rule_context("rule:uv.ngd_normalized", ("eps",)),
    hypotheses=(PSD,),
    relations=(
        E("α = ε/‖g̃‖_H gives ‖αH⁻¹g‖_H = ε",
          lambda c: np.sqrt(norm_H2(c, _alpha_normalized(c) * g_tilde(c))),
          lambda c: c["eps"]),
        E("d = −εH⁻¹g/√(gᵀH⁻¹g)", lambda c: c["q"]["d"],
          lambda c: -c["eps"] * g_tilde(c) / np.sqrt(c["g"] @ g_tilde(c))),
        E("d = −αg̃ with α = ε/‖g̃‖_H (Newton's step)", lambda c: c["q"]["d"],
          lambda c: -_alpha_normalized(c) * g_tilde(c)),
        E("Δ_d = ε‖g̃‖_H − ε²/2", lambda c: c["q"]["Delta"],
          lambda c: c["eps"] * np.sqrt(norm_H2(c, g_tilde(c))) - c["eps"] ** 2 / 2,
          lambda c: c["q"]["Delta_scale"]),
        E("‖d‖_H² = ε²", lambda c: c["q"]["normH2"], lambda c: c["eps"] ** 2),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0), {**MODEL_EXAMPLE, "eps": 0.1}),
    note="d = rule:uv.ngd_normalized(eps) (singular='raise'); g̃ solved independently.",
)


# --- claim:U.gn_normalized ------------------------------------------------------------------


def _s_measured(c: Context) -> np.ndarray:
    """s_i of the rule's step d_hat_i = -s_i g_hat_i / lam_i (a learning rate per eigenbasis)."""
    return -c["q"]["d_hat"] * c["q"]["lam"] / c["q"]["g_hat"]


def _s_printed(c: Context) -> np.ndarray:
    return c["eps"] * np.sqrt(c["q"]["lam"])


def _gn_delta_i(c: Context) -> np.ndarray:
    return c["eps"] * (1 / np.sqrt(c["q"]["lam"]) - c["eps"] / 2) * c["q"]["g_hat"] ** 2


def _positive_contributions(key: str) -> Callable[[Context], int]:
    """+1 when every Delta_d^i (``key``: as defined or negated) is > 0, -1 when one is < 0."""

    def side(c: Context) -> int:
        signs = [sign(v, s, c) for v, s in zip(c["q"][key], c["q"]["Delta_i_scale"], strict=True)]
        if any(s < 0 for s in signs):
            return -1
        return 0 if any(s == 0 for s in signs) else 1

    return side


gn_normalized = Claim(
    id="claim:U.gn_normalized",
    source='000 §1 "(Gradient-Norm Normalized NGD)"',
    statement="... to make ‖d_i‖_H = ‖s_iĝ_i‖ = εĝ_i. This leads to s_i = ε√λ_i. ... "
    "d = −εH^{−1/2}g, Δ_d = ε(H^{−1/2} − (ε/2)I)‖g‖₂, ‖d‖_H² = ε²‖g‖₂²; d̂_i = −εĝ_i/√λ_i, "
    "Δ_d^i = ε(1/√λ_i − ε/2)ĝ_i², ‖d_i‖_H² = ε²ĝ_i². ... s_i makes ‖d‖_H² controlled by the "
    "gradient norm. ... To make Δ_d^i > 0, we have ε < 2/√(max_i λ_i).",
    cases=cases(eps=EPS_HYPER),
    context=rule_context("rule:uv.ngd_gn_normalized", ("eps",)),
    hypotheses=(PSD,),
    relations=(
        E("s_i = ε√λ_i (the rule's per-eigenbasis learning rate, d̂_i = −s_iĝ_i/λ_i)",
          _s_measured, _s_printed),
        E("‖d_i‖_H = ‖s_iĝ_i‖", lambda c: np.sqrt(c["q"]["normH2_i"]),
          lambda c: np.abs(_s_printed(c) * c["q"]["g_hat"])),
        E("‖s_iĝ_i‖ = εĝ_i", lambda c: np.abs(_s_printed(c) * c["q"]["g_hat"]),
          lambda c: c["eps"] * c["q"]["g_hat"]),
        E("‖d_i‖_H = εĝ_i", lambda c: np.sqrt(c["q"]["normH2_i"]),
          lambda c: c["eps"] * c["q"]["g_hat"]),
        E("reading: ‖d_i‖_H = ε|ĝ_i|", lambda c: np.sqrt(c["q"]["normH2_i"]),
          lambda c: c["eps"] * np.abs(c["q"]["g_hat"])),
        E("d = −εH^{−1/2}g", lambda c: c["q"]["d"], lambda c: -c["eps"] * power(c, -0.5) @ c["g"]),
        E("Δ_d = ε(H^{−1/2} − (ε/2)I)‖g‖₂", lambda c: c["q"]["Delta"],
          lambda c: c["eps"] * (power(c, -0.5) - c["eps"] / 2 * np.eye(c["n"]))
          * np.linalg.norm(c["g"])),
        E("reading: Δ_d = ε gᵀ(H^{−1/2} − (ε/2)I)g", lambda c: c["q"]["Delta"],
          lambda c: c["eps"] * c["g"] @ (power(c, -0.5) - c["eps"] / 2 * np.eye(c["n"])) @ c["g"],
          lambda c: c["q"]["Delta_scale"]),
        E("‖d‖_H² = ε²‖g‖₂² (s_i makes ‖d‖_H² controlled by the gradient norm)",
          lambda c: c["q"]["normH2"], lambda c: c["eps"] ** 2 * c["g"] @ c["g"]),
        E("d̂_i = −εĝ_i/√λ_i", lambda c: c["q"]["d_hat"],
          lambda c: -c["eps"] * c["q"]["g_hat"] / np.sqrt(c["q"]["lam"])),
        *per_direction("Δ_d^i = ε(1/√λ_i − ε/2)ĝ_i²", _gn_delta_i),
        E("‖d_i‖_H² = ε²ĝ_i²", lambda c: c["q"]["normH2_i"],
          lambda c: c["eps"] ** 2 * c["q"]["g_hat"] ** 2),
        equivalent("To make Δ_d^i > 0, ε < 2/√(max_i λ_i) [Δ_d^i as defined]",
                   _positive_contributions("Delta_i"),
                   lambda c: 2 / np.sqrt(c["q"]["lam"].max()) - c["eps"]),
        equivalent("To make Δ_d^i > 0, ε < 2/√(max_i λ_i) [reading: Δ_d^i negated]",
                   _positive_contributions("Delta_i_neg"),
                   lambda c: 2 / np.sqrt(c["q"]["lam"].max()) - c["eps"]),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0), synthetic(5, eps=0.01),
              {**MODEL_EXAMPLE, "eps": 0.1}),
    note="d = rule:uv.ngd_gn_normalized(eps) (singular='raise'); H^{-1/2} from the estimator's "
    "eigendecomposition. The paragraph's condition '‖d_i‖_H = ‖s_iĝ_i‖ = εĝ_i' is evaluated as "
    "three relations (s_i = ε√λ_i inserted); the printed Δ_d is a matrix times a scalar "
    "(ill-typed against the scalar Δ_d), its natural reading ε gᵀ(H^{−1/2} − (ε/2)I)g is "
    "separate. 'To make Δ_d^i > 0 …' is read as an equivalence over all i.",
)


# --- claim:U.eigen_normalized ---------------------------------------------------------------


def g_hat_of(c: Context) -> np.ndarray:
    return c["q"]["g_hat"]


def eigen_context(case: Mapping[str, Any]) -> Context:
    """Quantities for the case's g and, to test "decoupled from g_i", for a second g'."""
    ctx = rule_context("rule:uv.ngd_eigen_normalized", ("eps", "form"))(case)
    g_other = np.random.default_rng([case["seed"], 3]).standard_normal(ctx["n"])
    d_other = step(ctx, "rule:uv.ngd_eigen_normalized", g=g_other, eps=case["eps"],
                   form=case["form"])
    ctx["q_other"] = quantities({**ctx, "g": g_other}, d_other)
    return ctx


def _expected_abs_decreasing(printed: bool) -> Callable[[Context], Evaluation]:
    """E|ĝ_i| over g ~ N(0, I), with ĝ_i = gᵀe_i/λ_i (printed) or gᵀe_i (the General Update's
    decomposition): strictly decreasing in λ_i ("higher λ_i tends to have smaller ĝ_i")?"""

    def check(c: Context) -> Evaluation:
        lam = c["q"]["lam"]
        if lam.size < 2 or np.any(np.diff(lam) <= 0):
            return undefined("needs n >= 2 distinct eigenvalues")
        mean_abs = math.sqrt(2 / math.pi) / (lam if printed else np.ones_like(lam))
        steps = np.diff(mean_abs)  # lam ascending: decreasing means every step < 0
        return predicate(bool(np.all(steps < 0)), float(-steps.max()))

    return check


eigen_normalized = Claim(
    id="claim:U.eigen_normalized",
    source='000 §1 "(Eigenbasis Normalized NGD)*"',
    statement="Since ĝ_i = gᵀe_i/λ_i, e_i with higher λ_i tends to have smaller ĝ_i and less "
    "sensitive to noise. ... control ‖d_i‖_H = ε. Therefore, s_i = ε√λ_i/|g_i|. ... "
    "d = −εH^{−1/2}Q sign(Qᵀg); d̂_i = −ε·sign(ĝ_i), Δ_d^i = −ε|ĝ_i| + ½ε²λ_i, ‖d_i‖_H² = ε². "
    "A potential benefit here is the directional sharpness along each eigenbasis is "
    "decoupled from g_i.",
    cases=cases(eps=EPS_HYPER, form=st.sampled_from(("matrix", "coordinates"))),
    context=eigen_context,
    hypotheses=(PSD,),
    relations=(
        E("ĝ_i = gᵀe_i/λ_i (ĝ = Qᵀg, the decomposition of g)", lambda c: c["q"]["g_hat"],
          lambda c: c["q"]["Q"].T @ c["g"] / c["q"]["lam"]),
        Relation("higher λ_i tends to have smaller ĝ_i (printed ĝ_i = gᵀe_i/λ_i, "
                 "E over g ~ N(0, I))", defined(_expected_abs_decreasing(True))),
        Relation("reading (ĝ_i = gᵀe_i): higher λ_i tends to have smaller ĝ_i",
                 defined(_expected_abs_decreasing(False))),
        E("s_i = ε√λ_i/|g_i| (g_i: coordinates of g, as printed)", _s_measured,
          lambda c: c["eps"] * np.sqrt(c["q"]["lam"]) / np.abs(c["g"])),
        E("reading: s_i = ε√λ_i/|ĝ_i|", _s_measured,
          lambda c: c["eps"] * np.sqrt(c["q"]["lam"]) / np.abs(c["q"]["g_hat"])),
        E("d = −εH^{−1/2}Q sign(Qᵀg)", lambda c: c["q"]["d"],
          lambda c: -c["eps"] * power(c, -0.5) @ c["q"]["Q"] @ np.sign(c["q"]["Q"].T @ c["g"]),
          sign_of=g_hat_of),
        E("d̂_i = −ε·sign(ĝ_i)", lambda c: c["q"]["d_hat"],
          lambda c: -c["eps"] * np.sign(c["q"]["g_hat"]), sign_of=g_hat_of),
        *per_direction("Δ_d^i = −ε|ĝ_i| + ½ε²λ_i",
                       lambda c: -c["eps"] * np.abs(c["q"]["g_hat"])
                       + 0.5 * c["eps"] ** 2 * c["q"]["lam"], sign_of=g_hat_of),
        E("‖d_i‖_H² = ε² (control ‖d_i‖_H = ε)", lambda c: c["q"]["normH2_i"],
          lambda c: np.full(c["n"], c["eps"] ** 2), sign_of=g_hat_of),
        E("directional sharpness along each eigenbasis decoupled from g: ‖d_i‖_H²(g) = "
          "‖d_i‖_H²(g')", lambda c: c["q"]["normH2_i"], lambda c: c["q_other"]["normH2_i"],
          needs=("q", "q_other"), sign_of=g_hat_of),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0, form="matrix"),
              synthetic(2, rotated=False, eps=1.0, form="coordinates"),
              {**MODEL_EXAMPLE, "eps": 0.1, "form": "matrix"}),
    note="d = rule:uv.ngd_eigen_normalized(eps, form): 'matrix' is the displayed update "
    "(d̂_i = −ε sign(ĝ_i)/√λ_i), 'coordinates' the per-coordinate display (d̂_i = −ε "
    "sign(ĝ_i)); both run (INVENTORY). s_i is the rule's learning rate per eigenbasis relative "
    "to Newton's step. The 'tends to have smaller ĝ_i' statement is evaluated on the "
    "expectation E|ĝ_i| under g ~ N(0, I) (a law, not the case's g), for the printed "
    "definition and for ĝ = Qᵀg; 'less sensitive to noise' is not evaluated here (see the §2 "
    "audits). 'Decoupled from g_i': ‖d_i‖_H² recomputed for a second Gaussian g'.",
)


# --- claim:U.gd, claim:U.gd_stability, claim:U.normalized_gd --------------------------------


def lipschitz_context(rule_id: str, case_keys: tuple[str, ...]):
    """L = L_factor max|lam|; ``q`` under the real H, ``p`` under H' = L I (primed)."""

    def build(case: Mapping[str, Any]) -> Context:
        ctx = curvature_context(case)
        hyper = {k: case[k] for k in case_keys}
        ctx.update(L=case["L_factor"] * ctx["abs_max"], **hyper)
        d = step(ctx, rule_id, L=ctx["L"], L_source="given", **hyper)
        ctx["q"] = quantities(ctx, d)
        ctx["p"] = quantities(ctx, d, K=ctx["L"] * np.eye(ctx["n"]))
        return ctx

    return build


L_SMOOTH = (
    Hypothesis("f L-smooth: |λ_i| ≤ L", lambda c: c["abs_max"] <= c["L"]),
    Hypothesis("L bounds the largest eigenvalue, λ_i < L", lambda c: c["lam_max"] < c["L"]),
)


def _eta(c: Context) -> float:
    """The step size eta of d = -eta g measured from the rule's d."""
    return float(-c["q"]["d"] @ c["g"] / (c["g"] @ c["g"]))


def _gd_coefficient(c: Context) -> float:
    return c["alpha"] / c["L"] * (1 - c["alpha"] / 2)


gd_relations = (
    E("‖d‖_{H'}² = L‖d‖₂²", lambda c: c["p"]["normH2"],
      lambda c: c["L"] * c["q"]["d"] @ c["q"]["d"], needs=("q", "p")),
    E("g̃ = g/L (under H' = LI)", lambda c: np.linalg.solve(c["L"] * np.eye(c["n"]), c["g"]),
      lambda c: c["g"] / c["L"]),
    E("d = −(α/L)g", lambda c: c["q"]["d"], lambda c: -c["alpha"] / c["L"] * c["g"]),
    E("Δ'_d = (α/L)(1 − α/2)‖g‖₂²", lambda c: c["p"]["Delta"],
      lambda c: _gd_coefficient(c) * c["g"] @ c["g"], lambda c: c["p"]["Delta_scale"],
      needs=("p",)),
    E("‖d‖_{H'}² = (α²/L)‖g‖₂²", lambda c: c["p"]["normH2"],
      lambda c: c["alpha"] ** 2 / c["L"] * c["g"] @ c["g"], needs=("p",)),
    E("Δ_d = (α/L)‖g‖₂² − (α²/L²)‖g‖_H²", lambda c: c["q"]["Delta"],
      lambda c: c["alpha"] / c["L"] * c["g"] @ c["g"] - (c["alpha"] / c["L"]) ** 2
      * norm_H2(c, c["g"]), lambda c: c["q"]["Delta_scale"]),
    E("reading: Δ_d = (α/L)‖g‖₂² − (α²/(2L²))‖g‖_H²", lambda c: c["q"]["Delta"],
      lambda c: c["alpha"] / c["L"] * c["g"] @ c["g"] - 0.5 * (c["alpha"] / c["L"]) ** 2
      * norm_H2(c, c["g"]), lambda c: c["q"]["Delta_scale"]),
    E("‖d‖_H² = (α²/L²)gᵀHg", lambda c: c["q"]["normH2"],
      lambda c: (c["alpha"] / c["L"]) ** 2 * norm_H2(c, c["g"])),
    E("d̂_i = −(α/L)ĝ_i", lambda c: c["q"]["d_hat"],
      lambda c: -c["alpha"] / c["L"] * c["q"]["g_hat"]),
    *per_direction("000: Δ'^i_d = (α/L)(1 − α/2)ĝ_i",
                   lambda c: _gd_coefficient(c) * c["p"]["g_hat"], "p"),
    E("001: Δ'_d = (α/L)(1 − α/2)ĝ_i", lambda c: c["p"]["Delta"],
      lambda c: _gd_coefficient(c) * c["p"]["g_hat"], needs=("p",)),
    *per_direction("reading: Δ'^i_d = (α/L)(1 − α/2)ĝ_i²",
                   lambda c: _gd_coefficient(c) * c["p"]["g_hat"] ** 2, "p"),
    E("‖d_i‖_H² = (α²/L²)λ_iĝ² (ĝ² elementwise, as printed)", lambda c: c["q"]["normH2_i"],
      lambda c: (c["alpha"] / c["L"]) ** 2 * np.outer(c["q"]["lam"], c["q"]["g_hat"] ** 2)),
    E("reading: ‖d_i‖_H² = (α²/L²)λ_iĝ_i²", lambda c: c["q"]["normH2_i"],
      lambda c: (c["alpha"] / c["L"]) ** 2 * c["q"]["lam"] * c["q"]["g_hat"] ** 2),
)

GD_EXAMPLES = (synthetic(2, rotated=False, alpha=1.0, L_factor=1.0),
               synthetic(3, alpha=2.0, L_factor=2.0), synthetic(3, kind="psd", alpha=0.5,
                                                               L_factor=1.5),
               {**MODEL_EXAMPLE, "alpha": 1.0, "L_factor": 1.5})

gd = Claim(
    id="claim:U.gd",
    source='000 §1 "(Gradient Descent)" (001: the third row prints Δ\'_d for Δ_d^{i\'})',
    statement="f(θ+d) ≈ f(θ) + gᵀd + (L/2)‖Δθ‖₂² for an L-smooth f. Since L bounds the largest "
    "eigenvalue, λ_i < L, ... H ≈ H' = LI. Therefore ‖d‖_{H'}² = L‖d‖₂² and g̃ = g/L. d = −(α/L)g, "
    "Δ'_d = (α/L)(1 − α/2)‖g‖₂², ‖d‖_{H'}² = (α²/L)‖g‖₂²; Δ_d = (α/L)‖g‖₂² − (α²/L²)‖g‖_H², "
    "‖d‖_H² = (α²/L²)gᵀHg; d̂_i = −(α/L)ĝ_i, Δ_d^{i'} = (α/L)(1 − α/2)ĝ_i, "
    "‖d_i‖_H² = (α²/L²)λ_iĝ².",
    cases=cases(("pd", "psd", "indefinite"), alpha=ALPHA, L_factor=L_FACTOR),
    context=lipschitz_context("rule:uv.gd", ("alpha",)),
    hypotheses=L_SMOOTH,
    relations=gd_relations,
    thresholds=EXACT,
    examples=GD_EXAMPLES,
    note="d = rule:uv.gd(alpha, L, L_source='given'), L = L_factor·max|λ|. Primed quantities "
    "are est:uv_quantities under H' = LI (its eigenbasis is the coordinate basis, so ĝ' = g); "
    "unprimed under the real H. 000 prints Δ_d^{i'} in the third row, 001 prints Δ'_d (a "
    "scalar set to a vector: ill-typed); both run, with the squared ĝ_i² as the reading. "
    "'ĝ²' in the last entry is evaluated with the document's elementwise square (a vector per "
    "i: ill-typed), ĝ_i² is the reading.",
)


def _primed_positive(c: Context) -> int:
    return sign(c["p"]["Delta"], c["p"]["Delta_scale"], c)


def _real_positive(c: Context) -> int:
    return sign(c["q"]["Delta"], c["q"]["Delta_scale"], c)


gd_stability = Claim(
    id="claim:U.gd_stability",
    source='000 §1 "(Gradient Descent)"',
    statement="To make Δ'_d > 0, we have α < 2. Define learning rate η = α/L we have η < 2/L.",
    cases=cases(("pd", "psd", "indefinite"), alpha=ALPHA, L_factor=L_FACTOR),
    context=lipschitz_context("rule:uv.gd", ("alpha",)),
    hypotheses=L_SMOOTH,
    relations=(
        equivalent("To make Δ'_d > 0, we have α < 2", _primed_positive, lambda c: 2 - c["alpha"],
                   needs=("p",)),
        equivalent("η = α/L: Δ'_d > 0 ⇔ η < 2/L (η measured from d = −ηg)", _primed_positive,
                   lambda c: 2 / c["L"] - _eta(c), needs=("q", "p")),
        Relation("reading (real H): α < 2 ⇒ Δ_d > 0", defined(
            lambda c: predicate(c["alpha"] >= 2 or _real_positive(c) > 0, c["q"]["Delta"]))),
    ),
    thresholds=EXACT,
    examples=GD_EXAMPLES,
    note="Same directions and quantities as claim:U.gd. 'To make X, we have Y' is read as "
    "X ⇔ Y; a Δ within rounding of 0 (α = 2 exactly) makes the relation undefined there. The "
    "real-H statement is a labelled reading (not printed).",
)


def linesearch_context(case: Mapping[str, Any]) -> Context:
    """eta* by rule:uv.gd_linesearch on the quadratic model and on f; the printed eta."""
    ctx = curvature_context(case)
    gHg = norm_H2(ctx, ctx["g"])
    ctx["gHg"] = gHg
    if ctx["quadratic"] is None or gHg <= 0:
        ctx["eta_model"] = ctx["eta_f"] = SINGULAR if gHg > 0 else "gᵀHg <= 0: no finite step"
        return ctx
    ctx["eta_printed"] = float(ctx["g"] @ ctx["g"]) / gHg
    for key, loss in (("eta_model", ctx["quadratic"]), ("eta_f", ctx["loss_problem"])):
        d = step(ctx, "rule:uv.gd_linesearch", loss=loss)
        ctx[key] = d if isinstance(d, str) else float(-d @ ctx["g"] / (ctx["g"] @ ctx["g"]))
    # f = 1/2 r^T H r, r = x - x*, is evaluated with rounding eps |H| |r|^2 / 2 (its terms)
    terms = 0.5 * ctx["abs_max"] * float(np.sum((ctx["theta"] - ctx["quadratic"].x_star) ** 2))
    decrease = 0.5 * float(ctx["g"] @ ctx["g"]) * ctx["eta_printed"]
    ctx["rtol_linesearch"] = RTOL + LINESEARCH * math.sqrt(EPS * max(terms, decrease) / decrease)
    return ctx


def _model_optimum(c: Context) -> Evaluation:
    if c["rtol_linesearch"] > RESOLVABLE:
        return undefined(f"rounding of f hides its minimiser along -g beyond {RESOLVABLE:g}")
    return compare(c["eta_model"], c["eta_printed"], c["rtol_linesearch"])


gd_optimal_lr = Claim(
    id="claim:U.gd_optimal_lr",
    source='000 §1 "(Gradient Descent)"',
    statement="In addition, the optimal learning rate is η = ‖g‖₂²/‖g‖_H².",
    cases=cases(("pd", "indefinite")),
    context=linesearch_context,
    hypotheses=(Hypothesis("‖g‖_H² > 0 (a finite optimal step along −g exists)",
                           lambda c: c["gHg"] > 0),),
    relations=(
        Relation("η = ‖g‖₂²/‖g‖_H² maximizes the model decrease Δ_{−ηg} (line search on the "
                 "quadratic model)", defined(_model_optimum, ("eta_model",))),
        Relation("η = ‖g‖₂²/‖g‖_H² maximizes f(θ) − f(θ − ηg) (line search on f; ≈ on real "
                 "losses)",
                 defined(lambda c: compare(c["eta_f"], c["eta_printed"], APPROX), ("eta_f",))),
    ),
    thresholds={**EXACT, "linesearch_factor": LINESEARCH, "linesearch_resolvable": RESOLVABLE,
                "approx_rtol": APPROX},
    examples=(synthetic(2, rotated=False), synthetic(4), MODEL_EXAMPLE),
    note="η* = rule:uv.gd_linesearch (Brent on the loss values) on the quadratic model "
    "½(x−x*)ᵀH(x−x*) with gradient g at θ (exact: tolerance 1e-10 + 10·sqrt(eps·T/Δ*), T = "
    "½|H|‖θ − x*‖² the size of the terms of f, the resolution of a minimiser from function "
    "values; undefined where that exceeds 1e-3: the quadratic's rounding hides its "
    "minimiser), and on f itself (synthetic: the same quadratic; model arm: the real loss on "
    "the coordinate block, compared with the '≈' threshold 0.1). Indefinite H with gᵀHg > 0 is "
    "in scope.",
)


normalized_gd = Claim(
    id="claim:U.normalized_gd",
    source='000 §1 "(Normalized Gradient Descent)"',
    statement="With ‖d‖_{H'} = ε, we have α = εL^{1/2}/‖g‖₂. d = −εL^{−1/2}g/‖g‖₂, "
    "Δ'_d = ε‖g‖₂²/L − ε²/2, ‖d‖_{H'}² = ε². The new learning rate η' = εL^{−1/2}.",
    cases=cases(("pd", "psd", "indefinite"), eps=EPS_HYPER, L_factor=L_FACTOR),
    context=lipschitz_context("rule:uv.gd_normalized", ("eps",)),
    hypotheses=L_SMOOTH,
    relations=(
        E("α = εL^{1/2}/‖g‖₂ (the α of d = −(α/L)g)", lambda c: c["L"] * _eta(c),
          lambda c: c["eps"] * math.sqrt(c["L"]) / np.linalg.norm(c["g"])),
        E("d = −εL^{−1/2}g/‖g‖₂", lambda c: c["q"]["d"],
          lambda c: -c["eps"] / math.sqrt(c["L"]) * c["g"] / np.linalg.norm(c["g"])),
        E("Δ'_d = ε‖g‖₂²/L − ε²/2", lambda c: c["p"]["Delta"],
          lambda c: c["eps"] * c["g"] @ c["g"] / c["L"] - c["eps"] ** 2 / 2,
          lambda c: c["p"]["Delta_scale"], needs=("p",)),
        E("reading: Δ'_d = ε‖g‖₂/L^{1/2} − ε²/2", lambda c: c["p"]["Delta"],
          lambda c: c["eps"] * np.linalg.norm(c["g"]) / math.sqrt(c["L"]) - c["eps"] ** 2 / 2,
          lambda c: c["p"]["Delta_scale"], needs=("p",)),
        E("‖d‖_{H'}² = ε² (‖d‖_{H'} = ε)", lambda c: c["p"]["normH2"], lambda c: c["eps"] ** 2,
          needs=("p",)),
        E("η' = εL^{−1/2} (d = −η' g/‖g‖₂)",
          lambda c: _eta(c) * np.linalg.norm(c["g"]), lambda c: c["eps"] / math.sqrt(c["L"])),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0, L_factor=1.0), synthetic(3, eps=0.5,
                                                                             L_factor=2.0)),
    note="d = rule:uv.gd_normalized(eps, L, L_source='given'); primed quantities under "
    "H' = LI. The printed Δ'_d has ‖g‖₂²/L where ε‖g̃‖_{H'} = ε‖g‖₂/√L follows from the "
    "Normalized NGD result at H' = LI (the labelled reading).",
)


# --- claim:U.sign_gd ------------------------------------------------------------------------


def sign_context(case: Mapping[str, Any]) -> Context:
    """Under H' = L I: the GN-normalized and eigenbasis-normalized NGD directions, GD and
    sign descent, each from its rule."""
    ctx = curvature_context(case)
    L = case["L_factor"] * ctx["abs_max"]
    K = L * np.eye(ctx["n"])
    eps = case["eps"]
    ctx.update(L=L, eps=eps)
    ctx["gn"] = quantities(ctx, step(ctx, "rule:uv.ngd_gn_normalized", K=K, eps=eps), K)
    ctx["eig"] = quantities(ctx, step(ctx, "rule:uv.ngd_eigen_normalized", K=K, eps=eps), K)
    ctx["gd"] = step(ctx, "rule:uv.gd", alpha=eps * math.sqrt(L), L=L, L_source="given")
    ctx["sign"] = step(ctx, "rule:uv.sign_gd", eta=eps / math.sqrt(L))
    return ctx


def g_of(c: Context) -> np.ndarray:
    return c["g"]


def _eig_fixed_point(c: Context, inner: np.ndarray) -> np.ndarray:
    """-eps H'^{-1/2} Q sign(Q^T inner) with H' = L I (Q from the estimator)."""
    Q = c["eig"]["Q"]
    return -c["eps"] / math.sqrt(c["L"]) * Q @ np.sign(Q.T @ inner)


sign_gd = Claim(
    id="claim:U.sign_gd",
    source='000 §1 "(Sign Gradient Descent)"',
    statement="When approximating H as LI, the counterpart for Gradient-Norm Normalized NGD is "
    "still Gradient Descent since ‖d_i‖_H² = εĝ_i leads to d̂_i = −εĝ_i/√λ_i. With λ_i = L, "
    "it is equivalent to use α = ε√L. The counterpart for Eigenbasis Normalized NGD requires "
    "‖d_i‖_H² = ε, which can be obtained by setting d = −εH^{−1/2}Q sign(Qᵀd). Since here "
    "Q = I, we have d = −εL^{−1/2} sign(g). Let η = εL^{−1/2}, we have the sign gradient "
    "descent d = −η·sign(g).",
    cases=cases(("pd", "psd", "indefinite"), eps=EPS_HYPER, L_factor=L_FACTOR),
    context=sign_context,
    relations=(
        E("GN-Normalized NGD at H = LI: ‖d_i‖_H² = εĝ_i", lambda c: c["gn"]["normH2_i"],
          lambda c: c["eps"] * c["gn"]["g_hat"], needs=("gn",)),
        E("reading: ‖d_i‖_H² = ε²ĝ_i²", lambda c: c["gn"]["normH2_i"],
          lambda c: c["eps"] ** 2 * c["gn"]["g_hat"] ** 2, needs=("gn",)),
        E("… leads to d̂_i = −εĝ_i/√λ_i (λ_i = L)", lambda c: c["gn"]["d_hat"],
          lambda c: -c["eps"] * c["gn"]["g_hat"] / math.sqrt(c["L"]), needs=("gn",)),
        E("with λ_i = L it is GD with α = ε√L", lambda c: c["gn"]["d"], lambda c: c["gd"],
          needs=("gn", "gd")),
        E("Eigenbasis Normalized NGD at H = LI requires ‖d_i‖_H² = ε",
          lambda c: c["eig"]["normH2_i"], lambda c: np.full(c["n"], c["eps"]), needs=("eig",),
          sign_of=g_of),
        E("reading: ‖d_i‖_H² = ε²", lambda c: c["eig"]["normH2_i"],
          lambda c: np.full(c["n"], c["eps"] ** 2), needs=("eig",), sign_of=g_of),
        E("d = −εH^{−1/2}Q sign(Qᵀd) (d on both sides)", lambda c: c["eig"]["d"],
          lambda c: _eig_fixed_point(c, c["eig"]["d"]), needs=("eig",), sign_of=g_of),
        E("reading: d = −εH^{−1/2}Q sign(Qᵀg)", lambda c: c["eig"]["d"],
          lambda c: _eig_fixed_point(c, c["g"]), needs=("eig",), sign_of=g_of),
        E("since Q = I, d = −εL^{−1/2} sign(g)", lambda c: c["eig"]["d"],
          lambda c: -c["eps"] / math.sqrt(c["L"]) * np.sign(c["g"]), needs=("eig",),
          sign_of=g_of),
        E("η = εL^{−1/2}: sign GD d = −η·sign(g) is that counterpart", lambda c: c["sign"],
          lambda c: c["eig"]["d"], needs=("sign", "eig"), sign_of=g_of),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0, L_factor=1.0), synthetic(3, eps=0.3,
                                                                             L_factor=4.0)),
    note="Every direction is a registered rule evaluated with the user curvature H' = LI "
    "(L = L_factor·max|λ| of the case's H; the paragraph approximates H by LI, so the "
    "hypothesis 'H ≈ LI' is built in and not tested): rule:uv.ngd_gn_normalized, "
    "rule:uv.ngd_eigen_normalized (form='matrix'), rule:uv.gd(alpha = ε√L), "
    "rule:uv.sign_gd(eta = ε/√L). The printed fixed point sign(Qᵀd) is evaluated literally; "
    "the reading sign(Qᵀg) is separate (INVENTORY rule:uv.sign_gd Text/Reading).",
)


# --- claim:U.diag ---------------------------------------------------------------------------

# "e.g." methods of the Diagonal NGD bullets, run for one step from their initial state with
# momentum and bias terms off (beta = 0, eps = 0), against the named form with the lam each
# method divides by (INVENTORY claim:U.diag). Names are each rule's declared hyperparameters
# (the document's symbols); the rule:dh.* entries name the planned ones of INVENTORY §2.6.
MAPPINGS = {
    "rule:dh.sophia": ("ngd", {"lr": "alpha", "betas": (0.0, 0.0), "eps": 0.0}, "diag"),
    "rule:fo.adagrad": ("gn_normalized", {"alpha": "eps", "eps": 0.0}, "grad_squared"),
    "rule:fo.adam": ("gn_normalized", {"alpha": "eps", "beta1": 0.0, "beta2": 0.0, "eps": 0.0},
                     "grad_squared"),
    "rule:dh.adahessian": ("gn_normalized", {"lr": "eps", "betas": (0.0, 0.0), "eps": 0.0,
                                             "weight_decay": 0.0}, "diag_squared"),
}


def diag_form(c: Context, form: str, lam: np.ndarray) -> np.ndarray:
    """The printed Diagonal NGD bullets with a given lam."""
    g = c["g"]
    if form == "ngd":
        return -c["alpha"] * g / lam
    return -c["eps"] * g / np.sqrt(lam)


def method_mapping(rule_id: str) -> Relation:
    """"e.g. <method>": the method's first step vs the named form (undefined while the rule is
    not registered, or when its hyperparameter names differ from MAPPINGS')."""
    form, hyper, lam_kind = MAPPINGS[rule_id]

    def check(c: Context) -> Evaluation:
        if rule_id not in reference.rules.REGISTRY:
            return undefined(f"{rule_id} not implemented yet")
        values = {k: c[v] if isinstance(v, str) else v for k, v in hyper.items()}
        try:
            d = step(c, rule_id, **values)
        except TypeError as error:
            return undefined(f"{rule_id}: hyperparameters differ from the mapping ({error})")
        if isinstance(d, str):
            return undefined(d)
        lam = {"diag": c["lam"], "grad_squared": c["g"] ** 2, "diag_squared": c["lam"] ** 2}
        return exact(d, diag_form(c, form, lam[lam_kind]), c)

    name = rule_id.split(":")[1].split(".")[1].capitalize()
    return Relation(f"{form} form, e.g. {name} (one step, momentum off)", defined(check))


def diag_context(case: Mapping[str, Any]) -> Context:
    ctx = curvature_context(case)
    lam, alpha, eps = np.diag(ctx["H"]).copy(), case["alpha"], case["eps"]
    ctx.update(lam=lam, alpha=alpha, eps=eps)
    directions = {
        "ngd": ("rule:uv.diag_ngd", {"alpha": alpha}, "rule:uv.ngd", {"alpha": alpha}),
        "normalized": ("rule:uv.diag_ngd[normalized]", {"eps": eps}, "rule:uv.ngd_normalized",
                       {"eps": eps}),
        "gn": ("rule:uv.diag_ngd[gn_normalized]", {"eps": eps}, "rule:uv.ngd_gn_normalized",
               {"eps": eps}),
        "eigen": ("rule:uv.diag_ngd[eigen_normalized]", {"eps": eps},
                  "rule:uv.ngd_eigen_normalized", {"eps": eps}),
    }
    for key, (diagonal, hyper, dense, dense_hyper) in directions.items():
        ctx[key] = step(ctx, diagonal, lam=lam, **hyper)
        ctx[f"{key}_dense"] = step(ctx, dense, K=np.diag(lam), **dense_hyper)
    ctx["as_printed"] = step(ctx, "rule:uv.diag_ngd[as_printed]", lam=lam, eps=eps)
    gd_step = step(ctx, "rule:uv.gd", alpha=alpha, L=float(lam.max()), L_source="given")
    ctx["q"] = quantities(ctx, ctx["ngd"])
    ctx["q_gd"] = quantities(ctx, gd_step)
    return ctx


def _better_than_LI(c: Context) -> Evaluation:
    """Delta_d of diagonal NGD >= Delta_d of GD (H' = L I, L = max lam) at the same alpha."""
    if c["alpha"] > 1:
        return undefined("α > 1: outside Newton's damping range α ∈ (0, 1]")
    gap = c["q"]["Delta"] - c["q_gd"]["Delta"]
    return predicate(gap >= -exact_rtol(c) * c["q"]["Delta_scale"], gap)


def _fixed_point(c: Context, d: np.ndarray) -> np.ndarray:
    """The printed right side -(eps/(lam^T d^2)) g/lam at a given d."""
    return -(c["eps"] / (c["lam"] @ d**2)) * c["g"] / c["lam"]


DIAGONAL = Hypothesis("H = diag(λ)", lambda c: bool(np.all(c["H"] == np.diag(np.diag(c["H"])))))

diag = Claim(
    id="claim:U.diag",
    source='000 §1 "(Diagonal Natural Gradient Descent)"',
    statement="We approximate H by a diagonal matrix, H = diag(λ₁, …, λ_n). This is better than "
    "the LI matrix ...: Q = I, ‖d‖_H² = λᵀd² ... g̃ = g/λ. Thus, NGD: d = −αg/λ, e.g. Sophia. "
    "Normalized NGD: d = −(ε/(λᵀd²)) g/λ. GN-Normalized NGD: d = −εg/λ^{1/2}, e.g., Adagrad, "
    "Adam, AdaHessian. Eigenbasis Normalized NGD: d = −ε·sign(g)/λ^{1/2}.",
    cases=cases(("pd",), model_arm=False, alpha=ALPHA, eps=EPS_HYPER),
    context=diag_context,
    hypotheses=(DIAGONAL,),
    relations=(
        E("Q = I: H = I diag(λ) Iᵀ", lambda c: c["H"], lambda c: np.diag(c["lam"]), needs=()),
        E("‖d‖_H² = λᵀd² (d: diagonal NGD)", lambda c: c["q"]["normH2"],
          lambda c: c["lam"] @ c["q"]["d"] ** 2),
        E("g̃ = g/λ", lambda c: np.linalg.solve(c["H"], c["g"]), lambda c: c["g"] / c["lam"],
          needs=()),
        Relation("reading: better than the LI matrix: Δ_d(diagonal NGD) ≥ Δ_d(GD, L = max λ), "
                 "same α ∈ (0, 1]", defined(_better_than_LI, ("q", "q_gd"))),
        E("NGD: d = −αg/λ", lambda c: c["ngd"], lambda c: diag_form(c, "ngd", c["lam"]),
          needs=("ngd",)),
        E("… = NGD with H = diag(λ)", lambda c: c["ngd"], lambda c: c["ngd_dense"],
          needs=("ngd", "ngd_dense")),
        method_mapping("rule:dh.sophia"),
        E("Normalized NGD: d = −(ε/(λᵀd²)) g/λ (d on both sides: the printed fixed point)",
          lambda c: c["as_printed"], lambda c: _fixed_point(c, c["as_printed"]),
          needs=("as_printed",)),
        E("… = Normalized NGD with H = diag(λ) (the printed fixed point)",
          lambda c: c["as_printed"], lambda c: c["normalized_dense"],
          needs=("as_printed", "normalized_dense")),
        E("reading: d = −ε(g/λ)/√(Σ_i g_i²/λ_i) = Normalized NGD with H = diag(λ)",
          lambda c: c["normalized"], lambda c: c["normalized_dense"],
          needs=("normalized", "normalized_dense")),
        E("reading's d satisfies the printed d = −(ε/(λᵀd²)) g/λ", lambda c: c["normalized"],
          lambda c: _fixed_point(c, c["normalized"]), needs=("normalized",)),
        E("GN-Normalized NGD: d = −εg/λ^{1/2}", lambda c: c["gn"],
          lambda c: diag_form(c, "gn_normalized", c["lam"]), needs=("gn",)),
        E("… = GN-Normalized NGD with H = diag(λ)", lambda c: c["gn"], lambda c: c["gn_dense"],
          needs=("gn", "gn_dense")),
        method_mapping("rule:fo.adagrad"),
        method_mapping("rule:fo.adam"),
        method_mapping("rule:dh.adahessian"),
        E("Eigenbasis Normalized NGD: d = −ε·sign(g)/λ^{1/2}", lambda c: c["eigen"],
          lambda c: -c["eps"] * np.sign(c["g"]) / np.sqrt(c["lam"]), needs=("eigen",),
          sign_of=g_of),
        E("… = Eigenbasis Normalized NGD with H = diag(λ)", lambda c: c["eigen"],
          lambda c: c["eigen_dense"], needs=("eigen", "eigen_dense")),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, alpha=1.0, eps=1.0),
              synthetic(5, rotated=False, alpha=0.5, eps=0.2)),
    note="λ = diag(H) (synthetic PD H; rotated cases violate 'H = diag(λ)' and are counted out "
    "of scope). Diagonal rules rule:uv.diag_ngd[...] with the vector lam, dense rules with the "
    "user curvature diag(λ). 'Normalized NGD' as printed has d on both sides: "
    "rule:uv.diag_ngd[as_printed] solves that fixed point; the reading is "
    "rule:uv.diag_ngd[normalized]. 'Better than the LI matrix' is read as a larger model "
    "decrease at equal α ∈ (0, 1]. 'e.g.' mappings: the named rule's first step with momentum "
    "off (β = 0, its eps = 0) vs the bullet's form with the λ that method divides by (Sophia: "
    "diag H; Adagrad/Adam: g²; AdaHessian: diag(H)², since it divides by √v with v its squared "
    "Hessian diagonal); undefined while the rule is not registered.",
)


# --- claim:U.clipped ------------------------------------------------------------------------


def clipped_context(case: Mapping[str, Any]) -> Context:
    ctx = rule_context("rule:uv.clipped_ngd", ("alpha", "eps"), q=2)(case)
    hyper = {"alpha": case["alpha"], "eps": case["eps"]}
    ctx["d_q1"] = step(ctx, "rule:uv.clipped_ngd", q=1, **hyper)
    for key in ("gn_clipped", "eigen_clipped"):
        ctx[key] = quantities(ctx, step(ctx, f"rule:uv.clipped_ngd[{key}]", **hyper))
    if isinstance(ctx["q"], str):
        ctx["sophia"] = ctx["eigen_at_I"] = ctx["q"]
        return ctx
    lam, g_hat = ctx["q"]["lam"], ctx["q"]["g_hat"]  # the eigenbasis as coordinates: Q = I
    ctx["sophia"] = step(ctx, "rule:uv.sophia_clip", g=g_hat, lam=lam, **hyper)
    ctx["eigen_at_I"] = step(ctx, "rule:uv.clipped_ngd[eigen_clipped]", K=np.diag(lam), g=g_hat,
                             **hyper)
    return ctx


def _C(c: Context) -> float:
    return c["eps"] / c["alpha"]


def _clip_by_norm(c: Context) -> np.ndarray:
    """Newton's step -alpha g~ rescaled to ||d||_H <= eps (norm clipping in the H-norm)."""
    newton = -c["alpha"] * g_tilde(c)
    return newton * min(1.0, c["eps"] / np.sqrt(norm_H2(c, newton)))


def _lr_bound(name: str, used: Value, bound: Value, needs: tuple[str, ...]) -> Relation:
    """The learning rate used is <= eps t (the clipping guarantee "alpha <= eps t")."""

    def check(c: Context) -> Evaluation:
        lhs, rhs = np.asarray(used(c)), np.asarray(bound(c))
        slack = float(np.min(rhs * (1 + exact_rtol(c)) - lhs))
        return predicate(slack >= 0, slack)

    return Relation(name, defined(check, needs))


def _gn_factor(c: Context) -> np.ndarray:
    return np.minimum(1.0, _C(c) * np.sqrt(c["q"]["lam"]))


def _eigen_factor(c: Context) -> np.ndarray:
    return np.minimum(1.0, _C(c) * np.sqrt(c["q"]["lam"]) / np.abs(c["q"]["g_hat"]))


def _sophia_000(c: Context) -> np.ndarray:
    lam, g_hat = c["q"]["lam"], c["q"]["g_hat"]
    return -c["alpha"] * np.minimum(1.0, lam * c["eps"] / np.abs(g_hat)) * g_hat / lam


def _sophia_001(c: Context) -> np.ndarray:
    """001's "ĝ/λ_i": the whole vector ĝ in every entry i, (n, n)."""
    lam, g_hat = c["q"]["lam"], c["q"]["g_hat"]
    factor = -c["alpha"] * np.minimum(1.0, lam * c["eps"] / np.abs(g_hat)) / lam
    return factor[:, None] * g_hat[None, :]


def _per_eigen_rate(key: str) -> Value:
    """alpha_i of d_hat_i = -alpha_i g_hat_i / lam_i for the ``key`` direction."""
    return lambda c: -c[key]["d_hat"] * c[key]["lam"] / c[key]["g_hat"]


def _clipped_coefficients(factor: Callable[[Context], np.ndarray]) -> Value:
    return lambda c: -c["alpha"] * factor(c) * c["q"]["g_hat"] / c["q"]["lam"]


clipped = Claim(
    id="claim:U.clipped",
    source='000 §1 "(Clipped Natural Gradient Descent)" (001: Sophia\'s ĝ/λ_i)',
    statement="Let C = ε/α be the clipping threshold. When we need a learning rate α ≤ εt, we use "
    "learning rate α min(1, Ct). Clipped NGD: α ≤ ε/‖g̃‖_H², d = −α min(1, C/‖g̃‖_H²) g̃. "
    "Gradient-Norm Clipped NGD: d_i = −α min(1, C√λ_i) ĝ_i/λ_i. Eigenbasis Clipped NGD: "
    "d_i = −α min(1, C√λ_i/|ĝ_i|) ĝ_i/λ_i. The first one is the gradient-norm clipping "
    "technique. The latter two can only be efficiently calculated with a diagonal Hessian. For "
    "diagonal NGD, Sophia uses an element-wise clipping d̂_i = −α min(1, λ_iε/|ĝ_i|) ĝ_i/λ_i, "
    "which can be seen as an approximated Eigenbasis Clipped NGD.",
    cases=cases(alpha=ALPHA, eps=EPS_HYPER),
    context=clipped_context,
    hypotheses=(PSD,),
    relations=(
        E("Clipped NGD: d = −α min(1, C/‖g̃‖_H²) g̃", lambda c: c["q"]["d"],
          lambda c: -c["alpha"] * min(1.0, _C(c) / norm_H2(c, g_tilde(c))) * g_tilde(c)),
        _lr_bound("α ≤ ε/‖g̃‖_H²: the learning rate used, α min(1, C/‖g̃‖_H²), is ≤ ε/‖g̃‖_H²",
                  lambda c: np.linalg.norm(c["q"]["d"]) / np.linalg.norm(g_tilde(c)),
                  lambda c: c["eps"] / norm_H2(c, g_tilde(c)), ("q",)),
        E("the first one is the gradient-norm clipping technique: d = Newton's step clipped to "
          "‖d‖_H ≤ ε", lambda c: c["q"]["d"], _clip_by_norm),
        E("reading (q = 1, ‖g̃‖_H to the first power) is that clipping", lambda c: c["d_q1"],
          _clip_by_norm, needs=("d_q1",)),
        E("GN Clipped NGD: \\vec d_i = −α min(1, C√λ_i)ĝ_i/λ_i (\\vec d_i = d̂_i e_i, a vector)",
          lambda c: eigen_vectors(c, "gn_clipped"), _clipped_coefficients(_gn_factor),
          needs=("q", "gn_clipped")),
        E("reading: d̂_i = −α min(1, C√λ_i)ĝ_i/λ_i", lambda c: c["gn_clipped"]["d_hat"],
          _clipped_coefficients(_gn_factor), needs=("q", "gn_clipped")),
        _lr_bound("GN clipped, t = √λ_i: the learning rate α min(1, C√λ_i) is ≤ ε√λ_i",
                  _per_eigen_rate("gn_clipped"), lambda c: c["eps"] * np.sqrt(c["q"]["lam"]),
                  ("q", "gn_clipped")),
        E("Eigenbasis Clipped NGD: \\vec d_i = −α min(1, C√λ_i/|ĝ_i|)ĝ_i/λ_i (a vector)",
          lambda c: eigen_vectors(c, "eigen_clipped"), _clipped_coefficients(_eigen_factor),
          needs=("q", "eigen_clipped")),
        E("reading: d̂_i = −α min(1, C√λ_i/|ĝ_i|)ĝ_i/λ_i", lambda c: c["eigen_clipped"]["d_hat"],
          _clipped_coefficients(_eigen_factor), needs=("q", "eigen_clipped")),
        _lr_bound("Eigenbasis clipped, t = √λ_i/|ĝ_i|: the learning rate is ≤ ε√λ_i/|ĝ_i|",
                  _per_eigen_rate("eigen_clipped"),
                  lambda c: c["eps"] * np.sqrt(c["q"]["lam"]) / np.abs(c["q"]["g_hat"]),
                  ("q", "eigen_clipped")),
        E("000: Sophia d̂_i = −α min(1, λ_iε/|ĝ_i|)ĝ_i/λ_i (rule:uv.sophia_clip, Q = I)",
          lambda c: c["sophia"], _sophia_000, needs=("q", "sophia")),
        E("001: Sophia d̂_i = −α min(1, λ_iε/|ĝ_i|)ĝ/λ_i (ĝ the vector)", lambda c: c["sophia"],
          _sophia_001, needs=("q", "sophia")),
        approx("Sophia's clipping ≈ Eigenbasis Clipped NGD (Q = I, same α, ε, λ, ĝ)",
               lambda c: c["sophia"], lambda c: c["eigen_at_I"], needs=("sophia", "eigen_at_I")),
    ),
    thresholds={**EXACT, "approx_rtol": APPROX},
    examples=(synthetic(2, rotated=False, alpha=1.0, eps=0.1), synthetic(3, alpha=0.5, eps=5.0),
              {**MODEL_EXAMPLE, "alpha": 1.0, "eps": 0.1}),
    note="Directions: rule:uv.clipped_ngd (q = 2 as printed, and q = 1), its [gn_clipped] and "
    "[eigen_clipped] variants, rule:uv.sophia_clip; the Sophia comparison works in the "
    "eigenbasis as coordinates (K = diag(λ), gradient ĝ: 'for diagonal NGD', INVENTORY 'at "
    "Q = I'). 'Gradient-norm clipping' is read as Newton's step clipped in the H-norm to "
    "‖d‖_H ≤ ε (the relaxation of Normalized NGD the paragraph starts from). '\\vec d_i = "
    "scalar' is evaluated literally (the vectors d̂_i e_i against the scalars: ill-typed) and "
    "as the coefficient d̂_i. 'The latter two can only be efficiently calculated with a "
    "diagonal Hessian' is a cost statement not decided here. '≈' threshold 0.1.",
)


# --- claim:U.qn_costs -----------------------------------------------------------------------

STORAGE_N = (64, 128, 256, 512, 1024, 2048)  # exact stored-float counts at these n ...
STORAGE_K = (1, 2, 4, 8, 16, 32)  # ... and L-BFGS memories k
FORM_N = (64, 128, 256, 512)  # forming H by n HVPs of prob:lstsq (N = 2048 samples)
INVERT_N = (256, 512, 1024, 2048)  # inverting a dense SPD matrix
LSTSQ_SAMPLES = 2048
REPEATS = 3  # median of 3 timings


def stored_floats(n: int, k: int) -> dict[str, int]:
    """Floats stored: dense H (n^2), dense H^-1 (n^2), L-BFGS with k pairs (s_j, y_j) of n
    entries each and the k scalars rho_j = 1/(y_j^T s_j) of the two-loop recursion."""
    return {"H": n * n, "H_inv": n * n, "lbfgs": 2 * k * n + k}


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def _median_time(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _form_hessian(built) -> np.ndarray:
    """H by one HVP per unit vector (the way a Hessian is formed from an autodiff oracle)."""
    params = built.init_params(np.random.default_rng(0))
    P = flatten(params).size
    return np.stack([flatten(built.hvp(params, unflatten(e, params))) for e in np.eye(P)])


@cache
def measured_costs() -> dict[str, Any]:
    """Timings (seconds) of forming H by HVPs and of inverting it, per n (once per process)."""
    rng = np.random.default_rng(0)
    form = []
    for n in FORM_N:
        built = reference.problems.get("prob:lstsq").make(rng, n_samples=LSTSQ_SAMPLES, dim=n)
        form.append(_median_time(lambda b=built: _form_hessian(b)))
    invert = []
    for n in INVERT_N:
        A = rng.standard_normal((n, n))
        spd = A @ A.T / n + np.eye(n)
        invert.append(_median_time(lambda m=spd: np.linalg.inv(m)))
    return {"form": form, "invert": invert,
            "form_exponent": _slope(FORM_N, form), "invert_exponent": _slope(INVERT_N, invert)}


def costs_context(case: Mapping[str, Any]) -> Context:
    k = case["k"]
    counts = [stored_floats(n, k) for n in STORAGE_N]
    lbfgs_k = [stored_floats(case["n"], j)["lbfgs"] for j in STORAGE_K]
    return {
        "k": k,
        "exponents": {
            "H": _slope(STORAGE_N, [c["H"] for c in counts]),
            "H_inv": _slope(STORAGE_N, [c["H_inv"] for c in counts]),
            "lbfgs_n": _slope(STORAGE_N, [c["lbfgs"] for c in counts]),
            "lbfgs_k": _slope(STORAGE_K, lbfgs_k),
        },
        **measured_costs(),
    }


def _at_most(name: str, value: Value, p: float) -> Relation:
    """"O(n^p)": the fitted exponent is <= p + SLOPE (margin recorded)."""
    return Relation(name, lambda c: predicate(value(c) <= p + SLOPE, p + SLOPE - value(c),
                                              exponent=value(c)))


def _exactly(name: str, value: Value, p: float) -> Relation:
    """"Θ(n^p)": the fitted exponent is within SLOPE of p."""
    return Relation(name, lambda c: predicate(abs(value(c) - p) <= SLOPE,
                                              SLOPE - abs(value(c) - p), exponent=value(c)))


qn_costs = Claim(
    id="claim:U.qn_costs",
    source='000 §1 "(Quasi-Newton Method)"',
    statement="H needs O(n²) storage. Calculating H needs Θ(kn²), where k is a large constant for "
    "calculating one element of H. Calculating H⁻¹ needs O(n³). ... L-BFGS ... requires O(kn) "
    "storage.",
    cases=st.fixed_dictionaries({"k": st.integers(min_value=1, max_value=64),
                                 "n": st.sampled_from(STORAGE_N)}),
    context=costs_context,
    relations=(
        _at_most("H needs O(n²) storage (exponent of the stored-float count in n)",
                 lambda c: c["exponents"]["H"], 2.0),
        _at_most("dense H⁻¹ storage O(n²) (count exponent)", lambda c: c["exponents"]["H_inv"],
                 2.0),
        _exactly("calculating H needs Θ(kn²): fitted timing exponent in n of n HVPs",
                 lambda c: c["form_exponent"], 2.0),
        _at_most("calculating H⁻¹ needs O(n³): fitted timing exponent of inversion",
                 lambda c: c["invert_exponent"], 3.0),
        _at_most("L-BFGS requires O(kn) storage: count exponent in n",
                 lambda c: c["exponents"]["lbfgs_n"], 1.0),
        _at_most("L-BFGS requires O(kn) storage: count exponent in k",
                 lambda c: c["exponents"]["lbfgs_k"], 1.0),
    ),
    thresholds={"exponent_tol": SLOPE, "timing_repeats": REPEATS},
    nature="record",
    examples=({"k": 10, "n": 256},),
    note="Stored floats counted exactly (dense H and H⁻¹: n²; L-BFGS: k pairs (s, y) of n floats "
    f"and k scalars ρ, 2kn + k) for n in {STORAGE_N} and k in {STORAGE_K}; exponents are "
    "least-squares log-log slopes. Timings (median of 3, this machine, recorded not decided): "
    f"forming H by n HVPs of prob:lstsq (N = {LSTSQ_SAMPLES}) for n in {FORM_N}, each HVP "
    f"O(Nn); np.linalg.inv of a dense SPD matrix for n in {INVERT_N} (BLAS-3: the fitted "
    "exponent is below 3 where the BLAS is not yet compute-bound). Θ(kn²) of forming H: k = "
    "the cost of one element (here N).",
)


# --- claim:U.table1 -------------------------------------------------------------------------


def table_context(case: Mapping[str, Any]) -> Context:
    """Each Table 1 row that a registered rule implements, evaluated on the case's H and g."""
    ctx = curvature_context(case)
    eps, L = case["eps"], case["L_factor"] * ctx["abs_max"]
    LI = L * np.eye(ctx["n"])
    ctx.update(eps=eps, L=L)
    rows = {
        "normalized": ("rule:uv.ngd_normalized", None, {"eps": eps}),
        "gn": ("rule:uv.ngd_gn_normalized", None, {"eps": eps}),
        "eigen": ("rule:uv.ngd_eigen_normalized", None, {"eps": eps}),
        "gd": ("rule:uv.gd", None, {"alpha": 1.0, "L": L, "L_source": "given"}),
        "newton_LI": ("rule:uv.newton", LI, {"alpha": 1.0}),
        "gd_normalized": ("rule:uv.gd_normalized", None, {"eps": eps, "L": L,
                                                           "L_source": "given"}),
        "normalized_LI": ("rule:uv.ngd_normalized", LI, {"eps": eps}),
        "sign": ("rule:uv.sign_gd", None, {"eta": eps / math.sqrt(L)}),
        "eigen_LI": ("rule:uv.ngd_eigen_normalized", LI, {"eps": eps}),
    }
    for key, (rule_id, K, hyper) in rows.items():
        ctx[key] = quantities(ctx, step(ctx, rule_id, K=K, **hyper), K)
    ctx["sign_LI"] = quantities(ctx, ctx["sign"] if isinstance(ctx["sign"], str)
                                else ctx["sign"]["d"], LI)
    return ctx


def _curvature_source(rule_id: str, printed: str) -> Relation:
    """"Calculating Approximation": the rule's default curvature vs the printed cell."""
    cells = {"H": "", "F": "F", "F_emp": "F̃", "G": "G"}

    def check(c: Context) -> Evaluation:
        if rule_id not in reference.rules.REGISTRY:
            return undefined(f"{rule_id} not implemented yet")
        derived = cells.get(reference.rules.get(rule_id).hyper.get("curv"), "?")
        return predicate(derived == printed, 0.0, derived=derived, printed=printed)

    return Relation(f"{rule_id.split('.')[-1]}: Calculating Approximation '{printed}'", check)


def _lengths(key: str, notation: str) -> Value:
    """Per-eigendirection lengths of the direction whose quantities are ``key`` (under the K
    they were computed with), in the printed notation: ``vec`` (000 \\vec d_i = d̂_i e_i:
    √λ_i |d̂_i|) or ``tilde`` (001 \\tilde d_i, the document's tilde x~ = K^-1 x: |d̂_i|/√λ_i)."""

    def value(c: Context) -> np.ndarray:
        lam, d_hat = c[key]["lam"], c[key]["d_hat"]
        with np.errstate(invalid="ignore", divide="ignore"):  # lam <= 0: non-finite, undefined
            return np.abs(d_hat) * (np.sqrt(lam) if notation == "vec" else 1 / np.sqrt(lam))

    return value


def _not_derived(row: str, rule_id: str, cell: str) -> Relation:
    """A Table 1 cell of a method whose rule is not in the registry (or not derived here)."""

    def check(c: Context) -> Evaluation:
        if rule_id not in reference.rules.REGISTRY:
            return undefined(f"{rule_id} not implemented yet")
        return undefined(f"{rule_id}: Table 1 cell not derived by this audit")

    return Relation(f"{row}: {cell}", check)


def _length_cell(row: str, key: str, printed: str, rhs: Value, under: str = "",
                 sign_of: Value | None = None) -> list:
    """One "Length Limitation" cell in both renderings (000 \\vec d_i, 001 \\tilde d_i)."""
    return [
        E(f"{row}: Length Limitation ‖\\vec d_i‖ = {printed} (000){under}",
          _lengths(key, "vec"), rhs, needs=(key,), sign_of=sign_of),
        E(f"{row}: Length Limitation ‖\\tilde d_i‖ = {printed} (001){under}",
          _lengths(key, "tilde"), rhs, needs=(key,), sign_of=sign_of),
    ]


table1 = Claim(
    id="claim:U.table1",
    source="000 §1 Table 1 (001: \\tilde d_i for \\vec d_i, ∂L/∂g_i for ∂L/g_i)",
    statement="Table 1: Optimizers comparison in view of approximated curvature information "
    "(Length Limitation, Calculating / Structure / Iterative Approximation per optimizer).",
    cases=cases(("pd", "psd"), eps=EPS_HYPER, L_factor=L_FACTOR),
    context=table_context,
    hypotheses=(PSD,),
    relations=(
        _curvature_source("rule:uv.newton", ""),
        _curvature_source("rule:uv.ngd", "F"),
        E("Normalized NGD: Length Limitation ‖d‖_H = ε",
          lambda c: math.sqrt(c["normalized"]["normH2"]), lambda c: c["eps"],
          needs=("normalized",)),
        *_length_cell("GN-Normalized NGD", "gn", "εg_i", lambda c: c["eps"] * c["g"]),
        *_length_cell("Eigenbasis Normalized NGD", "eigen", "ε",
                      lambda c: np.full(c["n"], c["eps"]), sign_of=lambda c: c["eigen"]["g_hat"]),
        E("Gradient Descent: Structure Approximation LI (= Newton with H = LI)",
          lambda c: c["gd"]["d"], lambda c: c["newton_LI"]["d"], needs=("gd", "newton_LI")),
        E("Normalized GD: Length Limitation ‖d‖_{H'} = ε", lambda c: math.sqrt(
            c["L"] * c["gd_normalized"]["d"] @ c["gd_normalized"]["d"]), lambda c: c["eps"],
          needs=("gd_normalized",)),
        E("Normalized GD: Structure Approximation LI (= Normalized NGD with H = LI)",
          lambda c: c["gd_normalized"]["d"], lambda c: c["normalized_LI"]["d"],
          needs=("gd_normalized", "normalized_LI")),
        *_length_cell("Sign GD", "sign_LI", "ε", lambda c: np.full(c["n"], c["eps"]),
                      sign_of=g_of),
        *_length_cell("Sign GD", "sign", "ε", lambda c: np.full(c["n"], c["eps"]),
                      " (b: under the true H)", g_of),
        E("Sign GD: Structure Approximation LI (= Eigenbasis Normalized NGD with H = LI)",
          lambda c: c["sign"]["d"], lambda c: c["eigen_LI"]["d"], needs=("sign", "eigen_LI")),
        _not_derived("L-BFGS", "rule:so.lbfgs", "Structure 'rank-2 update'"),
        _not_derived("L-BFGS", "rule:so.lbfgs", "Iterative 'iterative (secant assumption) "
                     "compute on last k items'"),
        _not_derived("K-FAC", "rule:kf.kfac", "Calculating 'F̃'"),
        _not_derived("K-FAC", "rule:kf.kfac", "Structure 'block-diagonal'"),
        _not_derived("K-FAC", "rule:kf.kfac", "Iterative (000) 'a_ia_j ⊥ ∂L/g_i, ∂L/g_j, "
                     "momentum'"),
        _not_derived("K-FAC", "rule:kf.kfac", "Iterative (001) 'a_ia_j ⊥ ∂L/∂g_i ∂L/∂g_j, "
                     "momentum'"),
        _not_derived("Shampoo", "rule:kf.shampoo", "Length '‖d_i‖_{H'} = εg_i'"),
        _not_derived("Shampoo", "rule:kf.shampoo", "Calculating 'F̃'"),
        _not_derived("Shampoo", "rule:kf.shampoo", "Structure 'L^{-1/4} g R^{-1/4}'"),
        _not_derived("Adaptive (Adam)", "rule:fo.adam", "Length '‖d_i‖_{H'} = εg_i', "
                     "Calculating 'F̃', Structure 'diagonal', Iterative 'momentum'"),
        _not_derived("Adaptive (Adagrad)", "rule:fo.adagrad", "Length '‖d_i‖_{H'} = εg_i', "
                     "Calculating 'F̃', Structure 'diagonal', Iterative 'momentum'"),
        _not_derived("AdaHessian", "rule:dh.adahessian", "Length '‖d_i‖_{H'} = εg_i', Structure "
                     "'diagonal', Iterative 'Monte Carlo, momentum'"),
        _not_derived("Sophia", "rule:dh.sophia", "Calculating 'F', Structure 'diagonal', "
                     "Iterative 'momentum'"),
    ),
    thresholds=EXACT,
    examples=(synthetic(2, rotated=False, eps=1.0, L_factor=1.0),),
    note="Rows with registered rule:uv.* rules are derived by computation on the case's H, g "
    "(ε, L = L_factor·max|λ|): the curvature source is the rule's default curv; 'LI' "
    "structure = equality with the Newton-family rule at H = LI; length limitations are the "
    "per-eigendirection lengths of the rule's direction under its own preconditioner (H, or "
    "H' = LI for Sign GD) and, for Sign GD, (b) under the true H. Both renderings of the "
    "length cells run: 000's \\vec d_i (√λ_i|d̂_i|) and 001's \\tilde d_i (the document's "
    "tilde x̃ = H⁻¹x: |d̂_i|/√λ_i); 'εg_i' is evaluated literally (signed, coordinate i of "
    "g). Rows of methods not in the registry are undefined with the reason. Empty cells are "
    "not relations (nothing printed), except the Calculating column of Newton ('' = H).",
)


# --- plot data for the report ---------------------------------------------------------------

PLOT_RULES = {
    "Newton": ("rule:uv.newton", {"alpha": 1.0}),
    "Normalized NGD": ("rule:uv.ngd_normalized", {"eps": 0.1}),
    "GN-Normalized NGD": ("rule:uv.ngd_gn_normalized", {"eps": 0.1}),
    "Eigenbasis NGD": ("rule:uv.ngd_eigen_normalized", {"eps": 0.1}),
    "GD (L = λ_max)": ("rule:uv.gd", {"alpha": 1.0, "L_source": "lambda_max"}),
}


def decrease_by_eigendirection(n: int = 12, cond: float = 1e6, seed: int = 0) -> dict:
    """Delta_d^i (negated definition: the decrease contributed along e_i) of each rule in
    PLOT_RULES on one ill-conditioned quadratic (geometric spectrum, kappa = ``cond``)."""
    built = reference.problems.get("prob:quad").make(np.random.default_rng(seed), n=n,
                                                     cond=cond)
    theta = built.init_params(np.random.default_rng(seed + 1))["x"]
    ctx = {"H": built.hessian({"x": theta}), "g": built.grad({"x": theta})["x"], "theta": theta,
           "loss_problem": built}
    out = {}
    for label, (rule_id, hyper) in PLOT_RULES.items():
        q = quantities(ctx, step(ctx, rule_id, **hyper))
        out[label] = {"lam": q["lam"], "Delta_i": q["Delta_i_neg"]}
    return out


CLAIMS: dict[str, Claim] = {
    claim.id: claim
    for claim in (general, newton_pure, newton_damped, ngd_normalized, gn_normalized,
                  eigen_normalized, gd, gd_stability, gd_optimal_lr, normalized_gd, sign_gd, diag,
                  clipped, qn_costs, table1)
}
