"""Audits of the survey's second-order statements (INVENTORY §4.3; 003_77bdf9f2a211a398.txt §3).

Same conventions as `survey_first_order`: every printed statement is a `Relation` evaluated
literally; iterates come from the registered rules (``rule:uv.newton``, ``rule:so.*``) run by
`survey_common.run` on small problems (prob:quad, prob:logreg, prob:rosenbrock, prob:saddle,
prob:nls, prob:mlp); a rule or problem not registered makes its relations undefined ("not
implemented yet"). Qualitative statements (nature="qualitative") still compute their
quantities, the literal reading as each relation's predicate and the quantity as its margin.

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference
from reference.oracle import Oracle
from reference.tree import flatten, unflatten
from verify.audits import survey_common as sc
from verify.audits.framework import (
    Claim,
    Evaluation,
    Hypothesis,
    Relation,
    compare,
    predicate,
    undefined,
)

RTOL = 1e-10
EPS = sc.EPS
ROUNDOFF = sc.ROUNDOFF  # exact relations: rtol = RTOL + ROUNDOFF n kappa eps
SLOPE = 0.25  # "O(N^p)": fitted exponent <= p + 0.25
HVP_OVERHEAD = 2.0  # "overhead equivalent to a gradient backprop": t(HVP)/t(grad) <= 2
GTOL = 1e-8  # convergence: ||g|| <= 1e-8 ||g0||
CG_TOL = 1e-10  # linear CG: ||r|| <= max(1e-10, ROUNDOFF n kappa eps) ||b||
SELF_CORRECT = 0.1  # ||M_t - H^-1|| / ||H^-1|| <= 0.1 after 3n steps
SUPERLINEAR = 0.1  # last e_{k+1}/e_k <= 0.1
FD_APPROX = 1e-4  # "≈": best relative FD-HVP error over h <= 1e-4
PD_TOL = 1e-12  # lambda_min > 1e-12 lambda_max counts as positive definite
MOST = 0.5  # "largely offsets": at least half of the negative eigenvalues made positive

Context = dict[str, Any]
NEWTON = "rule:uv.newton"


def R(name: str, check) -> Relation:
    return Relation(name, check)


def exact_rtol(n: int, kappa: float) -> float:
    return RTOL + ROUNDOFF * n * kappa * EPS


def _rosenbrock(dim: int = 2):
    return reference.problems.get("prob:rosenbrock")(dim=dim)


def _logreg(seed: int, **kw):
    return reference.problems.get("prob:logreg").make(np.random.default_rng([seed, 201]),
                                                      n_samples=kw.pop("n_samples", 60),
                                                      dim=kw.pop("dim", 3), **kw)


def grad_norm(problem, xs: np.ndarray, template) -> np.ndarray:
    return np.array([np.linalg.norm(flatten(problem.grad(unflatten(x, template)))) for x in xs])


def converge(rule_id: str, problem, x0, steps: int, **hyper) -> dict | str:
    """Run to ||g|| <= GTOL ||g0||; adds ``n`` (iterations to it, inf if not reached)."""
    g0 = np.linalg.norm(flatten(problem.grad(x0)))
    run = sc.run(rule_id, problem, x0, steps, stop=lambda p: np.linalg.norm(
        flatten(problem.grad(p))) <= GTOL * g0, **hyper)
    if isinstance(run, str):
        return run
    gn = np.linalg.norm(flatten(problem.grad(run["params"])))
    run["n"] = float(run["steps"]) if gn <= GTOL * g0 and not run["diverged"] else math.inf
    return run


# --- claim:S.newton_quadratic --------------------------------------------------------------------


@sc.cached
def newton_quad_context(case) -> Context:
    n, kappa = case["n"], 10.0 ** case["log_kappa"]
    lam = sc.family_spectrum(case["family"], n, kappa, case["seed"])
    A = sc.spectrum_matrix(lam, case["seed"])
    rng = np.random.default_rng([case["seed"], 211])
    x_star, x0 = rng.standard_normal(n), rng.standard_normal(n)
    prob = sc.quadratic(A, x_star)
    out = {"n": n, "kappa": float(lam.max() / lam.min()), "x_star": x_star, "x0": x0,
           "prob": prob}
    for key, rule_id, hyper in (("uv", NEWTON, {"alpha": 1.0}),
                                ("ls", "rule:so.newton_ls", {"line_search": "none"})):
        run = sc.run(rule_id, prob, {"x": x0}, 1, **hyper)
        out[key] = run if isinstance(run, str) else run["xs"][-1]
    return out


def _one_step(key: str, what: str):
    def check(c: Context) -> Evaluation:
        x1 = c[key]
        if isinstance(x1, str):
            return undefined(x1)
        tol = exact_rtol(c["n"], c["kappa"])
        e0 = np.linalg.norm(c["x0"] - c["x_star"])
        if what == "x":
            return sc.at_most(float(np.linalg.norm(x1 - c["x_star"])), tol * e0)
        lam_max = float(np.max(np.abs(np.linalg.eigvalsh(c["prob"].A))))
        return sc.at_most(c["prob"].loss({"x": x1}), 0.5 * lam_max * (tol * e0) ** 2)

    return check


newton_quadratic = Claim(
    id="claim:S.newton_quadratic",
    source="003 §3 (intro, Fig. 5)",
    statement="For a locally quadratic function (with positive definite H), by rescaling the "
    "gradients with the inverse of the Hessian, Newton's method jumps directly to the minimum "
    "and thus converges in a single step; for the quadratic case, the order of convergence is "
    "infinity for any initial point x₀.",
    cases=st.fixed_dictionaries({"n": st.integers(1, 50), "log_kappa": st.floats(0.0, 8.0),
                                 "family": st.sampled_from(["geometric", "uniform",
                                                            "two_point"]),
                                 "seed": st.integers(0, 2**16)}),
    context=newton_quad_context,
    hypotheses=(Hypothesis("H positive definite", lambda c: c["kappa"] > 0),),
    relations=(
        R("single step: ‖θ₁ − θ*‖ = 0 (rule:uv.newton, to rounding)", _one_step("uv", "x")),
        R("single step: f(θ₁) − f* = 0 (rule:uv.newton)", _one_step("uv", "f")),
        R("single step: ‖θ₁ − θ*‖ = 0 (rule:so.newton_ls, line_search none)",
          _one_step("ls", "x")),
    ),
    thresholds={"rtol": RTOL, "roundoff_per_n_kappa_eps": ROUNDOFF},
    examples=({"n": 2, "log_kappa": 8.0, "family": "two_point", "seed": 0},),
    note="prob:quad, A = Q diag(λ) Qᵀ with λ ∈ [1/κ, 1], κ = 10^[0, 8], n ∈ [1, 50]. 'Zero' is "
    "‖θ₁ − θ*‖ ≤ (1e-10 + 16 n κ ε)‖θ₀ − θ*‖ (the rounding of a solve), f(θ₁) − f* ≤ ½λ_max × "
    "that².",
)


# --- claim:S.newton_affine -----------------------------------------------------------------------

AFFINE_STEPS = 3


@sc.cached
def affine_context(case) -> Context:
    rng = np.random.default_rng([case["seed"], 221])
    kind = case["problem"]
    if kind == "quad":
        lam = sc.family_spectrum("geometric", 4, 100.0, case["seed"])
        base = sc.quadratic(sc.spectrum_matrix(lam, case["seed"]), rng.standard_normal(4))
        x0 = {"x": rng.standard_normal(4)}
    elif kind == "logreg":
        base = _logreg(case["seed"], l2=1e-2)
        x0 = base.init_params(rng)
    else:
        reason = sc.missing("prob:rosenbrock")
        if reason:
            return {"reason": reason}
        base = _rosenbrock()
        x0 = {k: v for k, v in base.init_params(rng).items()}
        x0 = {k: np.full_like(v, 0.9) + 0.05 * rng.standard_normal(v.shape)
              for k, v in x0.items()}  # near the minimiser (1, 1): H is PD there
    P = flatten(x0).size
    U, _ = np.linalg.qr(rng.standard_normal((P, P)))
    V, _ = np.linalg.qr(rng.standard_normal((P, P)))
    A = (U * np.geomspace(1.0, 10.0 ** -case["log_kappa_A"], P)) @ V.T
    b = rng.standard_normal(P)
    y0 = np.linalg.solve(A, flatten(x0) - b)
    rx = sc.run(NEWTON, base, x0, AFFINE_STEPS, alpha=1.0)
    ry = sc.run(NEWTON, sc.Affine(base, x0, A, b), {"y": y0}, AFFINE_STEPS, alpha=1.0)
    Hy = A.T @ base.hessian(x0) @ A
    lam = np.abs(np.linalg.eigvalsh(Hy))
    return {"reason": None, "x": rx["xs"], "y": ry["xs"], "A": A, "b": b, "P": P,
            "kappa_y": float(lam.max() / max(lam.min(), 1e-300)),
            "kappa_A": float(np.linalg.cond(A))}


def _affine(c: Context) -> Evaluation:
    if c["reason"]:
        return undefined(c["reason"])
    k = min(len(c["x"]), len(c["y"]))
    mapped = c["y"][:k] @ c["A"].T + c["b"]
    tol = exact_rtol(c["P"], c["kappa_y"]) * AFFINE_STEPS * c["kappa_A"]
    return compare(mapped, c["x"][:k], tol)


newton_affine = Claim(
    id="claim:S.newton_affine",
    source="003 §3",
    statement="an essential feature of Newton's method is that it is independent of linear "
    "changes in coordinates.",
    cases=st.fixed_dictionaries({"problem": st.sampled_from(["quad", "logreg", "rosenbrock"]),
                                 "log_kappa_A": st.floats(0.0, 6.0),
                                 "seed": st.integers(0, 2**16)}),
    context=affine_context,
    relations=(R("x_k = A y_k + b for Newton iterates in x and in y (x = Ay + b), k ≤ 3",
                 _affine),),
    thresholds={"rtol": "RTOL + 16 P κ(AᵀHA) ε × steps × κ(A)", "steps": AFFINE_STEPS},
    note="rule:uv.newton (α = 1, curv H) on f and on g(y) = f(Ay + b) (survey_common.Affine: "
    "∇g = Aᵀ∇f, ∇²g = Aᵀ∇²f A); A = U diag(geomspace(1, 10^−u)) Vᵀ, κ(A) = 10^u ≤ 10⁶; "
    "prob:quad (n = 4), prob:logreg (ℓ₂ 1e-2), prob:rosenbrock near (1, 1). Tolerance: the "
    "rounding of solves with AᵀHA, amplified by κ(A) when mapping back.",
)


# --- claim:S.newton_nonpd -------------------------------------------------------------------------


@sc.cached
def nonpd_context(case) -> Context:
    rng = np.random.default_rng([case["seed"], 231])
    kind = case["problem"]
    hyper: dict[str, Any] = {"alpha": 1.0, "singular": "pinv"}  # pinv = inverse if nonsingular
    if kind == "indefinite":
        lam = np.array([-1.0, 0.5, 2.0])
        prob, x0 = sc.quadratic(sc.spectrum_matrix(lam, case["seed"])), {
            "x": rng.standard_normal(3)}
    elif kind == "singular":
        lam = np.array([0.0, 1.0, 2.0])
        A = sc.spectrum_matrix(lam, case["seed"])
        prob, x0 = sc.quadratic(A), {"x": rng.standard_normal(3)}
    elif kind == "saddle":
        reason = sc.missing("prob:saddle")
        if reason:
            return {"reason": reason}
        prob = reference.problems.get("prob:saddle")(A=np.diag([1.0, -1.0]), quartic=1.0)
        x0 = {"x": 0.3 * rng.standard_normal(2)}
    elif kind == "rosenbrock":
        reason = sc.missing("prob:rosenbrock")
        if reason:
            return {"reason": reason}
        prob = _rosenbrock()
        u = rng.uniform(-1.5, 1.5)
        template = prob.init_params(rng)
        x0 = unflatten(np.array([u, u * u + 0.5]), template)  # det H < 0 there
    else:
        reason = sc.missing("prob:double_well")
        if reason:
            return {"reason": reason}
        prob = reference.problems.get("prob:double_well").make(np.random.default_rng(0))
        template = prob.init_params(rng)
        x0 = unflatten(rng.uniform(-0.4, 0.4, flatten(template).size), template)
    H0 = prob.hessian(x0)
    lam0 = np.linalg.eigvalsh(H0)
    run = sc.run(NEWTON, prob, x0, 30, **hyper)
    xs = run["xs"]
    gd = []
    for x in xs[:-1]:
        p = unflatten(x, x0)
        gd.append(float(flatten(prob.grad(p)) @ (xs[len(gd) + 1] - x)))
    final = unflatten(xs[-1], x0)
    g_end = np.linalg.norm(flatten(prob.grad(final)))
    lam_end = np.linalg.eigvalsh(prob.hessian(final)) if np.all(np.isfinite(xs[-1])) else None
    converged = g_end <= 1e-8 and not run["diverged"]
    index = int(np.sum(lam_end < -1e-10)) if lam_end is not None else -1
    return {"reason": None, "not_pd": bool(lam0.min() <= 0), "diverged": bool(
        run["diverged"] or np.linalg.norm(xs[-1]) > 1e6), "converged": converged,
            "index": index, "gd": np.array(gd), "error": run["error"]}


def _nonpd(fn):
    def check(c: Context) -> Evaluation:
        if c["reason"] or c["error"]:
            return undefined(c["reason"] or f"the rule stopped: {c['error']}")
        return fn(c)

    return check


newton_nonpd = Claim(
    id="claim:S.newton_nonpd",
    source="003 §1, §3",
    statement="The algorithm will diverge if the Hessian is not positive definite; the ∇²f(x_k) "
    "must be positive definite otherwise the search direction might not be the descent "
    "direction; second-order methods such as the Newton method are attracted to saddle points; "
    "if the eigenvalues are not all positive (near a saddle point), then the update can lead us "
    "to move in the wrong direction.",
    cases=st.fixed_dictionaries({"problem": st.sampled_from(
        ["indefinite", "singular", "saddle", "rosenbrock", "double_well"]),
        "seed": st.integers(0, 7)}),
    context=nonpd_context,
    hypotheses=(Hypothesis("∇²f(x₀) not positive definite",
                           lambda c: bool(c["reason"]) or c["not_pd"]),),
    relations=(
        R("will diverge if H is not PD (30 Newton steps from x₀)", _nonpd(
            lambda c: predicate(c["diverged"], 1.0 if c["diverged"] else -1.0))),
        R("might not be a descent direction: some step has gᵀd > 0", _nonpd(
            lambda c: predicate(bool(np.any(c["gd"] > 0)), float(np.max(c["gd"], initial=0.0))))),
        R("attracted to saddle points: converges to a point with negative curvature", _nonpd(
            lambda c: predicate(c["converged"] and c["index"] > 0, float(c["index"])))),
    ),
    thresholds={"steps": 30, "converged_grad": 1e-8, "diverged_norm": 1e6},
    nature="qualitative",
    note="rule:uv.newton (α = 1; singular H with singular='pinv') from starts where ∇²f is not PD: "
    "indefinite quadratic (λ = −1, ½, 2), singular PSD quadratic, prob:saddle (diag(1, −1) with "
    "quartic 1), prob:rosenbrock from (u, u² + ½) (det H < 0), prob:double_well between the "
    "wells. Recorded: divergence, convergence and the index (number of negative eigenvalues) of "
    "the limit, the sign of gᵀd per step.",
)


# --- claim:S.newton_misc -------------------------------------------------------------------------


@cache
def cost_exponents() -> dict:
    """Fitted exponents: forming H by N HVPs (prob:lstsq, N = n) and solving H d = g."""
    rng = np.random.default_rng(0)
    ns = (8, 16, 32)
    form = []
    for n in ns:
        built = reference.problems.get("prob:lstsq").make(rng, n_samples=n, dim=n)
        params = built.init_params(np.random.default_rng(0))
        P = flatten(params).size

        def formed(b=built, p=params, m=P):
            return np.stack([flatten(b.hvp(p, unflatten(e, p))) for e in np.eye(m)])

        form.append(sc.median_time(formed, 3))
    solve_n = (100, 200, 400)
    solve = []
    for n in solve_n:
        M = rng.standard_normal((n, n))
        spd = M @ M.T / n + np.eye(n)
        g = rng.standard_normal(n)
        solve.append(sc.median_time(lambda a=spd, v=g: np.linalg.solve(a, v), 3))
    return {"form": float(np.polyfit(np.log(ns), np.log(form), 1)[0]),
            "solve": float(np.polyfit(np.log(solve_n), np.log(solve), 1)[0])}


def misc_context(case) -> Context:
    mu = case["mu"]
    rng = np.random.default_rng([case["seed"], 241])
    lam = np.concatenate([-np.geomspace(1e-3, 1.0, 4), np.geomspace(1e-2, 10.0, 6)])
    A = sc.spectrum_matrix(lam, case["seed"])
    shifted = np.linalg.eigvalsh(A + mu * np.eye(len(A)))
    offset = float(np.mean(shifted[: 4] > 0))  # eigenvalues move by mu: the 4 negative ones
    del rng
    return {"mu": mu, "offset": offset}


def _psd_singular(c: Context) -> Evaluation:
    """f1 = x⁴ + y², f2 = x³ + y² at 0: same g = 0, H = diag(0, 2); 0 minimises f1 only."""
    same = True  # gradients (0, 0) and Hessians diag(0, 2) agree exactly
    f1_min = all(t**4 + s**2 >= 0 for t in (-1e-3, 0.0, 1e-3) for s in (-1e-3, 0.0, 1e-3))
    f2_min = all(t**3 + s**2 >= 0 for t in (-1e-3, 0.0, 1e-3) for s in (-1e-3, 0.0, 1e-3))
    return predicate(same and f1_min != f2_min, 1.0, f1_min=f1_min, f2_min=f2_min)


newton_misc = Claim(
    id="claim:S.newton_misc",
    source="003 §1, §3, §4",
    statement="the computational complexity of computing the Hessian is O(N³); If the Hessian is "
    "positive semi-definite with at least one zero eigenvalue, then there is nothing that "
    "confirms that the iterator has converged to a minimizer; LM includ[es] adding a constant "
    "along the Hessian diagonal, which largely offsets the negative eigenvalues.",
    cases=st.fixed_dictionaries({"mu": st.sampled_from([1e-3, 1e-2, 1e-1, 1.0]),
                                 "seed": st.integers(0, 3)}),
    context=misc_context,
    relations=(
        R("computing H is O(N³): fitted exponent of forming H by N HVPs ≤ 3.25",
          lambda c: sc.at_most(cost_exponents()["form"], 3 + SLOPE)),
        R("(solving with H: fitted exponent ≤ 3.25)",
          lambda c: sc.at_most(cost_exponents()["solve"], 3 + SLOPE)),
        R("PSD with a zero eigenvalue: (g, H) at 0 do not decide minimality (x⁴ + y² vs x³ + y²)",
          _psd_singular),
        R("H + μI largely offsets negative eigenvalues (λ ∈ −[1e-3, 1], μ from the case)",
          lambda c: predicate(c["offset"] >= MOST, c["offset"] - MOST)),
    ),
    thresholds={"slope": SLOPE, "most": MOST},
    nature="qualitative",
    note="Timings (median of 3, this machine): forming H of prob:lstsq (N = n samples) by n HVPs "
    "for n ∈ {8, 16, 32}; np.linalg.solve for n ∈ {100, 200, 400}. Indefinite H with λ_neg = "
    "−geomspace(1e-3, 1, 4): fraction of them made positive by μ.",
)


# --- claim:S.gn_lm ------------------------------------------------------------------------------


@sc.cached
def gnlm_context(case) -> Context:
    seed = case["seed"]
    out: dict[str, Any] = {}
    prob = _logreg(seed, l2=1e-3)
    x0 = prob.init_params(np.random.default_rng([seed, 251]))
    run = converge("rule:so.gauss_newton", prob, x0, 50, step="line_search")
    out["gn_ce"] = run if isinstance(run, str) else run["n"]
    reason = sc.missing("prob:nls")
    if reason:
        out["nls"] = reason
        return out
    nls = reference.problems.get("prob:nls").make(np.random.default_rng([seed, 252]),
                                                  residual="nonzero", noise=1.0)
    p0 = nls.init_params(np.random.default_rng([seed, 253]))
    G, H = nls.ggn(p0), nls.hessian(p0)
    g = flatten(nls.grad(p0))
    mu = case["mu"]
    M = G + mu * np.eye(len(G))
    d = -np.linalg.solve(M, g)
    off = float(np.linalg.norm(M - np.diag(np.diag(M))) / np.linalg.norm(M))
    out["nls"] = {"offdiag": off, "lam_H_min": float(np.linalg.eigvalsh(H).min()),
                  "lam_G_min": float(np.linalg.eigvalsh(G).min()), "descent": float(g @ d)}
    return out


def _gnlm(fn):
    def check(c: Context) -> Evaluation:
        return undefined(c["nls"]) if isinstance(c["nls"], str) else fn(c["nls"])

    return check


gn_lm = Claim(
    id="claim:S.gn_lm",
    source="003 §3.1",
    statement="GN utilizes the square of the Jacobian and works only for mean squared error loss "
    "functions. They have O(N³) complexity and can only minimize nonlinear least square "
    "problems; LM is an approximation to Newton's method that uses a diagonal approximation to "
    "the Hessian and takes care of extreme directions of curvature; The regularization "
    "parameter is used to address the issue when the Hessian is not positive definite and has "
    "directions that correspond to small negative eigenvalues.",
    cases=st.fixed_dictionaries({"seed": st.integers(0, 3),
                                 "mu": st.sampled_from([1e-3, 1e-2, 1e-1, 1.0])}),
    context=gnlm_context,
    relations=(
        R("works only for MSE: GN (GGN, line search) on cross-entropy (prob:logreg) does not "
          "converge in 50 steps", lambda c: undefined(c["gn_ce"]) if isinstance(c["gn_ce"], str)
          else predicate(not math.isfinite(c["gn_ce"]), -1.0 if math.isfinite(c["gn_ce"])
                         else 1.0, n=c["gn_ce"])),
        R("LM uses a diagonal approximation: off-diagonal mass of JᵀJ + μI is 0", _gnlm(
            lambda f: predicate(f["offdiag"] <= 1e-12, -f["offdiag"]))),
        R("non-zero residual: the Hessian has negative eigenvalues where JᵀJ has none "
          "(prob:nls at x₀)", _gnlm(lambda f: predicate(f["lam_H_min"] < 0 <= f["lam_G_min"],
                                                          -f["lam_H_min"]))),
        R("the LM direction −(JᵀJ + μI)⁻¹g is a descent direction", _gnlm(
            lambda f: predicate(f["descent"] < 0, -f["descent"]))),
    ),
    thresholds={"gtol": GTOL, "steps": 50},
    nature="qualitative",
    note="rule:so.gauss_newton (curv G = GGN, step line_search) on prob:logreg (ℓ₂ 1e-3); "
    "prob:nls (exponential fit, non-zero residual, noise 1) at its initial point: G = JᵀJ vs "
    "the full H, the LM matrix JᵀJ + μI. The O(N³) statement: see claim:S.newton_misc.",
)


# --- claim:S.cg ---------------------------------------------------------------------------------


@sc.cached
def cg_context(case) -> Context:
    n, m = case["n"], min(case["m"], case["n"])
    kappa = 10.0 ** case["log_kappa"]
    levels = np.geomspace(1.0 / kappa, 1.0, m) if m > 1 else np.array([1.0])
    lam = levels[np.arange(n) % m]
    A = sc.spectrum_matrix(lam, case["seed"])
    rng = np.random.default_rng([case["seed"], 261])
    prob = sc.quadratic(A, rng.standard_normal(n))
    x0 = {"x": np.zeros(n)}
    b0 = np.linalg.norm(prob.grad(x0)["x"])
    tol = max(CG_TOL, ROUNDOFF * n * kappa * EPS)
    run = sc.run("rule:so.cg_linear", prob, x0, 3 * n + 5,
                 stop=lambda p: np.linalg.norm(prob.grad(p)["x"]) <= tol * b0)
    if isinstance(run, str):
        return {"reason": run}
    res = np.array([np.linalg.norm(prob.grad({"x": x})["x"]) for x in run["xs"]])
    N = sc.first_below(res, tol * b0)
    s = np.diff(run["xs"], axis=0)
    conj = []
    for i in range(1, min(len(s), n)):
        a, b = s[i], s[i - 1]
        den = math.sqrt(abs(a @ A @ a) * abs(b @ A @ b))
        if den > 0 and res[i] > tol * b0:  # rounding of r_i relative to ||b||/||r_i||
            bound = max(1e-8, ROUNDOFF * n * kappa * EPS * b0 / res[i])
            conj.append(abs(a @ A @ b) / den / bound)
    return {"reason": None, "N": N, "n": n, "m": m, "conj": max(conj, default=0.0),
            "conj_tol": 1.0, "nonlinear": nonlinear(
                case["start"], 0)}


@cache
def nonlinear(start: float, seed: int) -> dict:
    """Iterations of rule:so.cg_nonlinear (strong Wolfe) on prob:rosenbrock (d = 2) from
    (1, 1) + start·u: FR vs PR (restart every_n), and restart every_step vs none (PR)."""
    reason = sc.missing("prob:rosenbrock", "rule:so.cg_nonlinear")
    if reason:
        return {"reason": reason}
    prob = _rosenbrock()
    template = prob.init_params(np.random.default_rng(0))
    u = np.random.default_rng([seed, 262]).standard_normal(2)
    x0 = unflatten(np.ones(2) + start * u / np.linalg.norm(u), template)
    out = {}
    for key, hyper in (("fr", {"beta": "fr"}), ("pr", {"beta": "pr"}),
                       ("every_step", {"beta": "pr", "restart": "every_step"}),
                       ("none", {"beta": "pr", "restart": "none"})):
        run = converge("rule:so.cg_nonlinear", prob, x0, 300, line_search="wolfe", **hyper)
        out[key] = run if isinstance(run, str) else run["n"]
    return out


def _cg(fn):
    def check(c: Context) -> Evaluation:
        return undefined(c["reason"]) if c["reason"] else fn(c)

    return check


def _nl(a: str, b: str):
    def check(c: Context) -> Evaluation:
        f = c["nonlinear"]
        if "reason" in f:
            return undefined(f["reason"])
        if isinstance(f[a], str) or isinstance(f[b], str):
            return undefined(f[a] if isinstance(f[a], str) else f[b])
        if math.isinf(f[a]) and math.isinf(f[b]):
            return undefined("neither converged in 300 iterations")
        return predicate(f[a] < f[b], (f[b] - f[a]) if math.isfinite(f[b] - f[a]) else 0.0,
                         **{a: f[a], b: f[b]})

    return check


cg = Claim(
    id="claim:S.cg",
    source="003 §3.2",
    statement="This method is only suitable for solving positive definite systems; conjugacy "
    "d_iᵀHd_{i−1} = 0; converging in at most k line searches (k undefined); the Polak-Ribiere "
    "method converges much more quickly [than Fletcher-Reeves]; For nonlinear conjugate "
    "gradient, we set this parameter to zero (restarts at each step ...) to ensure that it is "
    "locally optimal and ensures a faster convergence.",
    cases=st.fixed_dictionaries({"n": st.integers(2, 30), "m": st.integers(1, 30),
                                 "log_kappa": st.floats(0.0, 8.0), "seed": st.integers(0, 2**16),
                                 "start": st.sampled_from([0.1, 1.0, 2.0])}),
    context=cg_context,
    hypotheses=(Hypothesis("H positive definite (linear CG arm)", lambda c: True),),
    relations=(
        R("conjugacy: d_iᵀHd_{i−1} = 0 (consecutive steps; |cos_H| / tolerance ≤ 1)",
          _cg(lambda c: sc.at_most(c["conj"], c["conj_tol"]))),
        R("reading k = n: converges in at most n iterations", _cg(
            lambda c: sc.at_most(c["N"], c["n"]))),
        R("reading k = number of distinct eigenvalues m: at most m iterations", _cg(
            lambda c: sc.at_most(c["N"], c["m"]))),
        R("PR converges more quickly than FR (rosenbrock, strong Wolfe)", _nl("pr", "fr")),
        R("restarting at each step converges faster than never restarting (PR)",
          _nl("every_step", "none")),
    ),
    thresholds={"residual_tol": "max(1e-10, 16 n κ ε)",
                "conjugacy_tol": "max(1e-8, 16 n κ ε ‖b‖/‖r_i‖)",
                "gtol": GTOL, "nonlinear_steps": 300},
    note="Linear arm: rule:so.cg_linear on prob:quad with m distinct eigenvalues in [1/κ, 1] "
    "(κ = 10^[0, 8], n ≤ 30), x₀ = 0, residual = gradient. Nonlinear arm: rule:so.cg_nonlinear "
    "(line_search wolfe) on 2-D prob:rosenbrock from (1, 1) + r·u, r ∈ {0.1, 1, 2}, to "
    "‖g‖ ≤ 1e-8‖g₀‖. The 'only suitable for PD systems' statement is not decidable (recorded "
    "in the note only); prob:logreg/MLP arms left out (cost). Iteration counts are float64 "
    "measurements: in exact arithmetic CG terminates in at most m ≤ n steps (a tested oracle "
    "of rule:so.cg_linear at moderate κ); a count above the bound means float64 CG needed "
    "more steps to reach the stated residual, which is what a user of the printed statement "
    "meets.",
)


# --- claim:S.bfgs -------------------------------------------------------------------------------


@sc.cached
def bfgs_context(case) -> Context:
    reason = sc.missing("rule:so.bfgs")
    if reason:
        return {"reason": reason}
    n, scale = 6, case["scale"]
    lam = scale * sc.family_spectrum("geometric", n, 100.0, case["seed"])
    A = sc.spectrum_matrix(lam, case["seed"])
    prob = sc.quadratic(A, np.random.default_rng([case["seed"], 271]).standard_normal(n))
    run = sc.run("rule:so.bfgs", prob, {"x": np.zeros(n)}, 3 * n)
    Hinv = np.linalg.inv(A)
    M = np.asarray(run["state"]["M"]) if "M" in run["state"] else None
    out = {"reason": None, "n": n, "run": run}
    if M is not None and M.size == n * n:
        M = M.reshape(n, n)
        out["err0"] = float(np.linalg.norm(np.eye(n) - Hinv) / np.linalg.norm(Hinv))
        out["err"] = float(np.linalg.norm(M - Hinv) / np.linalg.norm(Hinv))
        out["rank"] = int(np.linalg.matrix_rank(M - np.eye(n), tol=1e-10 * np.abs(M).max()))
        out["state_floats"] = int(sum(np.asarray(v).size for v in run["state"].values()
                                      if not isinstance(v, dict)))
    out["t"] = run["steps"]
    # vs Newton (with line search) on rosenbrock from a start in the curved valley
    if sc.missing("prob:rosenbrock") is None:
        rb = _rosenbrock()
        x0 = unflatten(np.array([-1.2, 1.0]), rb.init_params(np.random.default_rng(0)))
        nb = converge("rule:so.bfgs", rb, x0, 300)
        nn = converge("rule:so.newton_ls", rb, x0, 300, nonpd="damping")
        out["bfgs_rb"] = nb if isinstance(nb, str) else nb["n"]
        out["newton_rb"] = nn if isinstance(nn, str) else nn["n"]
    return out


def _bfgs(key: str, fn):
    def check(c: Context) -> Evaluation:
        if c["reason"]:
            return undefined(c["reason"])
        if key not in c:
            return undefined(f"not available: {key} (state M or prob:rosenbrock missing)")
        if isinstance(c[key], str):
            return undefined(c[key])
        return fn(c)

    return check


bfgs = Claim(
    id="claim:S.bfgs",
    source="003 §3.3",
    statement="the BFGS is a O(N²) method; it is sometimes more efficient than Newton's method on "
    "difficult problems; BFGS has self-correcting properties; similar to the method of conjugate "
    "gradients without the computational burden; a 'diagonal plus low-rank' approximation.",
    cases=st.fixed_dictionaries({"scale": st.sampled_from([1e-3, 1.0, 1e3]),
                                 "seed": st.integers(0, 2)}),
    context=bfgs_context,
    relations=(
        R("O(N²) storage: state floats ≤ N² + 4N", _bfgs("state_floats", lambda c: sc.at_most(
            c["state_floats"], c["n"] ** 2 + 4 * c["n"]))),
        R(f"self-correcting: ‖M_t − H⁻¹‖/‖H⁻¹‖ ≤ {SELF_CORRECT} after 3n steps from M₀ = I "
          "(H scaled by 1e-3, 1, 1e3)", _bfgs("err", lambda c: sc.at_most(c["err"],
                                                                           SELF_CORRECT))),
        R("diagonal plus low rank: rank(M_t − M₀) ≤ 2t", _bfgs("rank", lambda c: sc.at_most(
            c["rank"], 2 * c["t"]))),
        R("more efficient than Newton on a difficult problem: N_BFGS < N_Newton (rosenbrock "
          "from (−1.2, 1))", _bfgs("bfgs_rb", lambda c: predicate(
              c["bfgs_rb"] < c["newton_rb"], 0.0, bfgs=c["bfgs_rb"], newton=c["newton_rb"]))),
    ),
    thresholds={"self_correct": SELF_CORRECT, "gtol": GTOL},
    nature="qualitative",
    note="rule:so.bfgs (M₀ = I) on κ = 100 quadratics (n = 6) whose Hessian is scaled by "
    "{1e-3, 1, 1e3} (M₀ = I is then a poor guess by those factors); state M read from the "
    "rule's state. Newton = rule:so.newton_ls (Armijo, nonpd damping). Timing comparisons and "
    "the CG similarity are left out.",
)


# --- claim:S.lbfgs ------------------------------------------------------------------------------


@sc.cached
def lbfgs_context(case) -> Context:
    reason = sc.missing("rule:so.lbfgs")
    if reason:
        return {"reason": reason}
    out = {"reason": None, "m": case["m"]}
    for kappa in (10.0, case["kappa"]):
        lam = sc.family_spectrum("uniform", 20, kappa, 0)
        prob = sc.quadratic(sc.spectrum_matrix(lam, 0), np.ones(20))
        run = converge("rule:so.lbfgs", prob, {"x": np.zeros(20)}, 400, m=case["m"])
        out[kappa] = run["n"]
        out["state_floats"] = int(sum(np.asarray(v).size for v in run["state"].values()))
    out["kappa"] = case["kappa"]
    return out


lbfgs = Claim(
    id="claim:S.lbfgs",
    source="003 §3.4",
    statement="L-BFGS uses only the most recent iteration ... and surprisingly enough leads to "
    "an optimal rate of convergence for difficult problems; store only a certain number of "
    "correction pairs (say, m); The main weakness of L-BFGS is that it converges slowly on "
    "ill-conditioned problems.",
    cases=st.fixed_dictionaries({"kappa": st.sampled_from([1e2, 1e4, 1e6]),
                                 "m": st.sampled_from([1, 3, 10, 20])}),
    context=lbfgs_context,
    relations=(
        R("stores only m correction pairs: state floats ≤ 2mn + m + 4n", lambda c: undefined(
            c["reason"]) if c["reason"] else sc.at_most(c["state_floats"], 2 * c["m"] * 20 +
                                                       c["m"] + 80)),
        R("slow on ill-conditioned problems: N(κ) > N(10)", lambda c: undefined(c["reason"])
          if c["reason"] else predicate(c[c["kappa"]] > c[10.0], min(c[c["kappa"]] - c[10.0],
                                                                     1e9),
                                        n_kappa=c[c["kappa"]], n_10=c[10.0])),
    ),
    thresholds={"gtol": GTOL, "steps": 400},
    nature="qualitative",
    note="rule:so.lbfgs on prob:quad-type quadratics (n = 20, uniform spectrum in [1/κ, 1]), "
    "iterations to ‖g‖ ≤ 1e-8‖g₀‖ for κ ∈ {10, 1e2, 1e4, 1e6}, m ∈ {1, 3, 10, 20}. The "
    "ill-conditioned prob:logreg arm and rate fits are left out.",
)


# --- claim:S.adahessian ------------------------------------------------------------------------


@cache
def hvp_ratio() -> float:
    prob = reference.problems.get("prob:mlp").make(np.random.default_rng(0), n_samples=64,
                                                   widths=(8, 16, 4))
    params = prob.init_params(np.random.default_rng(1))
    v = unflatten(np.random.default_rng(2).standard_normal(flatten(params).size), params)
    return sc.median_time(lambda: prob.hvp(params, v), 7) / sc.median_time(
        lambda: prob.grad(params), 7)


def _later(what: str) -> Relation:
    return R(what, lambda c: undefined(sc.missing("rule:dh.adahessian") or
                                       "not audited here: rule:dh.adahessian hyperparameters "
                                       "belong to a later issue"))


adahessian = Claim(
    id="claim:S.adahessian",
    source="003 §3.5, Fig. 14",
    statement="This has the computational overhead equivalent to a gradient backpropagation "
    "step; AdaHessian handles extreme curvature directions by appropriate gradient rotation and "
    "scaling and ensures convergence to a critical point of any sort; leads to faster "
    "convergence for strict and smooth convex functions; Fig. 14: Adahessian converges in 1000 "
    "iterations without a moving average, while it takes only seven iterations with the moving "
    "average enabled.",
    cases=st.just({"arm": "cpu"}),
    context=lambda case: dict(case),
    relations=(
        R(f"HVP overhead ≈ one gradient: t(HVP)/t(grad) ≤ {HVP_OVERHEAD} (reference prob:mlp, "
          "CPU)", lambda c: sc.at_most(hvp_ratio(), HVP_OVERHEAD)),
        _later("convergence to a critical point (prob:saddle final-point classification)"),
        _later("faster convergence for strict smooth convex functions"),
        _later("Fig. 14: with EMA 7 iterations vs 1000 without"),
    ),
    thresholds={"hvp_overhead": HVP_OVERHEAD},
    nature="qualitative",
    note="Timing ratio of the reference R-operator HVP to the gradient on prob:mlp (8-16-4, 64 "
    "samples; median of 7, this machine). The AdaHessian runs need rule:dh.adahessian (later "
    "issue).",
)


# --- claim:S.newton_cg -------------------------------------------------------------------------


@sc.cached
def newton_cg_context(case) -> Context:
    seed = case["seed"]
    out: dict[str, Any] = {}
    # FD-HVP error vs h on prob:logreg
    prob = _logreg(seed, l2=1e-3)
    x = prob.init_params(np.random.default_rng([seed, 281]))
    d = unflatten(np.random.default_rng([seed, 282]).standard_normal(flatten(x).size), x)
    exact = flatten(prob.hvp(x, d))
    g0 = flatten(prob.grad(x))
    errs = []
    for h in np.logspace(-12, -1, 12):
        fd = (flatten(prob.grad(unflatten(flatten(x) + h * flatten(d), x))) - g0) / h
        errs.append(float(np.linalg.norm(fd - exact) / np.linalg.norm(exact)))
    out["fd_best"] = min(errs)
    # GGN of a rank-deficient design (duplicated feature): lambda_min
    rng = np.random.default_rng([seed, 283])
    X = rng.standard_normal((20, 2))
    X = np.hstack([X, X[:, :1]])
    J = X  # linear model, MSE: G = J^T J / N
    G = J.T @ J / 20
    lam = np.linalg.eigvalsh(G)
    out["G_min"] = float(lam.min() / lam.max())
    # local rate of rule:so.newton_cg on prob:logreg (l2 keeps the minimiser finite)
    x_star, _ = sc.minimise(prob, x)
    run = sc.run("rule:so.newton_cg", prob, x, 12)
    if isinstance(run, str):
        out["rate"] = run
    else:
        e = np.linalg.norm(run["xs"] - x_star, axis=1)
        live = np.flatnonzero(e > 1e-9 * max(e[0], 1.0))
        ratios = e[live[1:]] / e[live[:-1]] if live.size > 2 else np.array([])
        out["rate"] = float(ratios[-1]) if ratios.size else 0.0
    # a direction from an indefinite region of rosenbrock
    if sc.missing("prob:rosenbrock", "rule:so.newton_cg") is None:
        rb = _rosenbrock()
        u = np.random.default_rng([seed, 284]).uniform(-1.5, 1.5)
        x0 = unflatten(np.array([u, u * u + 0.5]), rb.init_params(np.random.default_rng(0)))
        rule = reference.rules.get("rule:so.newton_cg")
        upd, _ = rule.step(rb.grad(x0), rule.init(x0), x0, Oracle(rb))
        out["descent"] = float(flatten(rb.grad(x0)) @ flatten(upd))
    else:
        out["descent"] = sc.missing("prob:rosenbrock", "rule:so.newton_cg")
    return out


def _ncg(key: str, fn):
    def check(c: Context) -> Evaluation:
        return undefined(c[key]) if isinstance(c[key], str) else fn(c[key])

    return check


newton_cg = Claim(
    id="claim:S.newton_cg",
    source="003 §3.6",
    statement="line-search Newton-CG has attractive global convergence properties with "
    "superlinear convergence, and results in optimal search directions when the Hessian is "
    "indefinite; using the Gauss-Newton matrix instead of the Hessian results in better search "
    "directions since G is always positive definite; ∇²f_k d ≈ (∇f(x_k + hd) − ∇f(x_k))/h for "
    "some small differencing interval h.",
    cases=st.fixed_dictionaries({"seed": st.integers(0, 5)}),
    context=newton_cg_context,
    relations=(
        R(f"FD-HVP ≈ HVP for some small h: min over h ∈ [1e-12, 1e-1] of the relative error ≤ "
          f"{FD_APPROX}", _ncg("fd_best", lambda v: sc.at_most(v, FD_APPROX))),
        R("G is always positive definite: λ_min(G) > 1e-12 λ_max (rank-deficient J)",
          _ncg("G_min", lambda v: predicate(v > PD_TOL, v - PD_TOL))),
        R(f"superlinear: last e_(k+1)/e_k ≤ {SUPERLINEAR} (rule:so.newton_cg, prob:logreg)",
          _ncg("rate", lambda v: sc.at_most(v, SUPERLINEAR))),
        R("descent direction from an indefinite region (rosenbrock, det H < 0): gᵀd < 0",
          _ncg("descent", lambda v: predicate(v < 0, -v))),
    ),
    thresholds={"fd_approx": FD_APPROX, "pd_tol": PD_TOL, "superlinear": SUPERLINEAR},
    note="FD-HVP of prob:logreg (ℓ₂ 1e-3) for h = 10^[−12, −1] (12 points) against the exact "
    "HVP; G = JᵀJ/N of a linear least-squares model with a duplicated feature; rule:so.newton_cg "
    "(defaults) for 12 steps from the initial point, x* by damped Newton; one rule:so.newton_cg "
    "step on prob:rosenbrock from (u, u² + ½).",
)


CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in (newton_quadratic, newton_affine, newton_nonpd, newton_misc, gn_lm, cg, bfgs, lbfgs,
              adahessian, newton_cg)
}
