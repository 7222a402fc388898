"""Audits of SASSHA's curvature and sharpness statements (INVENTORY §4.4; source
004_455b8d3983f5d917.txt): claim:P.eq2_dual, claim:P.avg_inequality, claim:P.hutchinson_one_bp.

One section per claim, each a context builder, its relations and its `Claim`; ``CLAIMS`` at the
end collects them (add new claims to the tuple there). Decision thresholds are the module
constants below, fixed before any audit ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference
from contract.specs.curvature import count_calls
from reference.oracle import Oracle
from reference.tree import flatten, unflatten
from verify.audits.framework import Claim, Evaluation, Relation, compare, predicate, undefined
from verify.audits.survey_common import cached

Context = Mapping[str, Any]

# --- thresholds (INVENTORY §0.4 items 3-4: written before anything runs) --------------------

EPS = float(np.finfo(np.float64).eps)
RTOL = 1e-10  # exact float64 identities
PGA_RTOL = 1e-8  # maximiser found by projected gradient ascent vs the printed one
FEASIBLE_RTOL = 1e-12  # ||eps|| <= rho (1 + 1e-12)
VALUE_SLACK = 1e-12  # "no sampled point does better": max_k eps_kᵀg <= eps*ᵀg + 1e-12 rho||g||
PGA_STEPS = 200
PGA_STEP = 10.0  # PGA step size eta = 10 rho / ||g||
SAMPLES = 4096  # dense random sampling of the rho-ball


# --- claim:P.eq2_dual -----------------------------------------------------------------------

G_KINDS = ("gaussian", "tiny", "huge", "one_hot", "zero")


def gradient(kind: str, d: int, rng: np.random.Generator) -> np.ndarray:
    """g = ∇f(x_t): Gaussian, scaled by 1e-150 or 1e150, a signed unit vector, or 0."""
    z = rng.standard_normal(d)
    if kind == "one_hot":
        return np.sign(z[0]) * np.eye(d)[int(rng.integers(d))]
    return {"gaussian": 1.0, "tiny": 1e-150, "huge": 1e150, "zero": 0.0}[kind] * z


def project(eps: np.ndarray, rho: float) -> np.ndarray:
    """The Euclidean projection onto the rho-ball."""
    norm = float(np.linalg.norm(eps))
    return eps if norm <= rho else eps * (rho / norm)


def ascend(objective_grad: np.ndarray, eps0: np.ndarray, rho: float) -> np.ndarray:
    """Projected gradient ascent on a linear objective c + epsᵀg (its gradient is g)."""
    norm = float(np.linalg.norm(objective_grad))
    eta = PGA_STEP * rho / norm if norm > 0.0 else 0.0
    eps = eps0
    for _ in range(PGA_STEPS):
        eps = project(eps + eta * objective_grad, rho)
    return eps


def ball_samples(d: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """SAMPLES points of the rho-ball: half on its sphere, half uniform inside."""
    U = rng.standard_normal((SAMPLES, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    radius = rho * np.where(np.arange(SAMPLES) < SAMPLES // 2, 1.0,
                            rng.uniform(size=SAMPLES) ** (1.0 / d))
    return radius[:, None] * U


@cached
def dual_context(case: Mapping[str, Any]) -> dict[str, Any]:
    d, rho = case["d"], 10.0 ** case["log10_rho"]
    rng = np.random.default_rng([case["seed"], 401])
    g = gradient(case["g"], d, rng)
    f_x = float(rng.standard_normal())
    eps0 = project(rng.standard_normal(d), rho)
    norm = float(np.linalg.norm(g))
    with np.errstate(invalid="ignore", divide="ignore"):
        eps_star = rho * g / norm  # Eq. (2), literally (0/0 when g = 0)
    samples = ball_samples(d, rho, rng)
    return {
        "g": g, "rho": rho, "norm": norm, "f_x": f_x, "eps_star": eps_star,
        "pga": ascend(g, eps0, rho),
        "sampled": {"linear": float(np.max(samples @ g)),
                    "shifted": float(np.max(f_x + samples @ g))},
    }


def printed(fn):
    """``fn(ctx)``, undefined when the printed maximiser is 0/0 (g = 0)."""

    def check(ctx: Context) -> Evaluation:
        if ctx["norm"] == 0.0:
            return undefined("g = 0: ρ∇f/‖∇f‖₂ is 0/0, and every ε of the ball maximises εᵀg",
                             eps_star=np.asarray(ctx["eps_star"]).tolist())
        return fn(ctx)

    return check


def no_better_sample(objective: str):
    """No sampled ε beats ε* on ``objective``: εᵀg ("linear") or f(x_t) + εᵀg ("shifted");
    the slack is VALUE_SLACK ρ‖g‖ plus the rounding of f(x_t) + · for the shifted one."""

    def check(ctx: Context) -> Evaluation:
        shift = ctx["f_x"] if objective == "shifted" else 0.0
        star = shift + float(ctx["eps_star"] @ ctx["g"])
        slack = VALUE_SLACK * ctx["rho"] * ctx["norm"] + 2.0 * EPS * abs(shift)
        margin = star + slack - ctx["sampled"][objective]
        return predicate(margin >= 0.0, margin / (ctx["rho"] * ctx["norm"]), printed_value=star,
                         best_sampled_value=ctx["sampled"][objective], samples=SAMPLES)

    return printed(check)


def _feasible(ctx: Context) -> Evaluation:
    size = float(np.linalg.norm(ctx["eps_star"]))
    return predicate(size <= ctx["rho"] * (1.0 + FEASIBLE_RTOL), 1.0 - size / ctx["rho"],
                     norm_eps_star=size, rho=ctx["rho"])


eq2_dual = Claim(
    id="claim:P.eq2_dual",
    source="004 §4.1 Eq. (2)",
    statement="We first follow a similar procedure as Foret et al. (2021) by solving for ϵ on the "
    "first-order approximation of the objective, which exactly solves the dual norm problem as "
    "follows: ϵ*_t = argmax_{‖ϵ‖₂≤ρ} f(x_t) + ϵᵀ∇f(x_t) = argmax_{‖ϵ‖₂≤ρ} ϵᵀ∇f(x_t) = "
    "ρ∇f(x_t)/‖∇f(x_t)‖₂",
    cases=st.fixed_dictionaries({
        "d": st.integers(min_value=1, max_value=40),
        "log10_rho": st.floats(min_value=-4.0, max_value=1.0),
        "g": st.sampled_from(G_KINDS),
        "seed": st.integers(min_value=0, max_value=2**16),
    }),
    context=dual_context,
    relations=(
        Relation("ε* = ρ∇f/‖∇f‖₂ is feasible: ‖ε*‖₂ ≤ ρ", printed(_feasible)),
        Relation("ε* maximises f(x_t) + εᵀ∇f(x_t): no sampled ε of the ρ-ball does better",
                 no_better_sample("shifted")),
        Relation("ε* maximises εᵀ∇f(x_t): no sampled ε of the ρ-ball does better",
                 no_better_sample("linear")),
        Relation("argmax_{‖ε‖₂≤ρ} εᵀ∇f = ρ∇f/‖∇f‖₂: projected gradient ascent finds ε*",
                 printed(lambda c: compare(c["pga"], c["eps_star"], PGA_RTOL))),
        Relation("exactly solves the dual norm problem: ε*ᵀ∇f = ρ‖∇f‖_* = ρ‖∇f‖₂",
                 printed(lambda c: compare(c["eps_star"] @ c["g"], c["rho"] * c["norm"], RTOL))),
    ),
    thresholds={"rtol_exact": RTOL, "pga_rtol": PGA_RTOL, "feasible_rtol": FEASIBLE_RTOL,
                "value_slack": VALUE_SLACK, "pga_steps": PGA_STEPS, "samples": SAMPLES},
    examples=({"d": 3, "log10_rho": -1.0, "g": "zero", "seed": 0},
              {"d": 5, "log10_rho": -2.0, "g": "gaussian", "seed": 0}),
    note="g = ∇f(x_t) ∈ ℝ^d (d ≤ 40): Gaussian, scaled by 1e-150 and 1e150 (‖g‖² near the "
    "underflow and overflow limits), a signed unit vector, and g = 0 (recorded: the printed "
    "maximiser is 0/0 and the argmax is the whole ball, so the relations through ε* are "
    "undefined there); ρ ∈ [1e-4, 10], f(x_t) ~ N(0, 1). Dense random sampling: 4096 points "
    "of the ball (half on the sphere, half uniform inside), each objective evaluated "
    "literally; the margin is (value at ε* + slack − best sampled value) / (ρ‖g‖), slack "
    "1e-12 ρ‖g‖ (+ 2 eps |f(x_t)| for the rounding of the shifted objective). Projected "
    "gradient ascent on εᵀg: 200 steps of size 10ρ/‖g‖ from a random start in the ball (the "
    "shifted objective has the same gradient in ε, so its ascent is the same computation). "
    "The dual norm of ‖·‖₂ is ‖·‖₂.",
)



# --- claim:P.avg_inequality -----------------------------------------------------------------

SIGN_PATTERNS = ("PD", "PSD", "indefinite", "NSD", "ND")


def spectrum(pattern: str, d: int, log10_kappa: float, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of the sign pattern (PSD/NSD: one zero; indefinite: alternating signs),
    magnitudes log-uniform over [1, 10^log10_kappa]."""
    lam = 10.0 ** rng.uniform(0.0, log10_kappa, d)
    if pattern in ("PSD", "NSD"):
        lam[rng.integers(d)] = 0.0
    if pattern == "indefinite":
        lam *= np.where(np.arange(d) % 2 == 0, 1.0, -1.0)
    return -lam if pattern in ("NSD", "ND") else lam


def rademacher_probes(d: int) -> np.ndarray:
    """All 2^d Rademacher probes (2^d, d): the whole sample space, each of probability 2^-d."""
    bits = (np.arange(2**d)[:, None] >> np.arange(d)) & 1
    return 2.0 * bits - 1.0


@cached
def average_context(case: Mapping[str, Any]) -> dict[str, Any]:
    d = case["d"]
    rng = np.random.default_rng([case["seed"], 402])
    lam = spectrum(case["pattern"], d, case["log10_kappa"], rng)
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    H = (Q * lam) @ Q.T
    H = (H + H.T) / 2.0
    Z = rademacher_probes(d)
    hutchinson = reference.estimators.get("est:hutchinson_diag").fn
    est = hutchinson(H, z=Z)
    eigenvalues = np.linalg.eigvalsh(H)
    return {
        "d": d,
        "mean_of_averages": float(est["samples"].mean(axis=1).mean()),  # E[(1/d)Σ_i Ĥ_ii]
        "average_of_means": float(est["diag"].mean()),  # (1/d)Σ_i E[Ĥ]_ii
        "trace_over_d": float(np.trace(H)) / d,
        "eigen_average": float(eigenvalues.mean()),
        "lambda_1": float(eigenvalues[-1]),
        "spectral_radius": float(np.max(np.abs(eigenvalues))),
        "scale": float(np.abs(eigenvalues).mean()) or 1.0,
        "abs_average": float(hutchinson(H, z=Z, abs="mean_of_abs")["diag"].mean()),
        "probes": Z.shape[0],
    }


def equal(left: str, right: str):
    """``left`` = ``right`` to RTOL times the scale (1/d)Σ|λ_i| (a trace near 0 stays decidable)."""

    def check(ctx: Context) -> Evaluation:
        a, b = ctx[left], ctx[right]
        margin = abs(a - b) / ctx["scale"]
        return predicate(margin <= RTOL, margin, lhs=a, rhs=b, scale=ctx["scale"],
                         probes=ctx["probes"])

    return check


def at_most(top: str):
    """(1/d)Σ_i λ_i ≤ ``top``; the details record the |Ĥ_ii| chain of Eq. (6) alongside."""

    def check(ctx: Context) -> Evaluation:
        margin = (ctx[top] - ctx["eigen_average"]) / ctx["scale"]
        return predicate(margin >= -RTOL, margin, average=ctx["eigen_average"], bound=ctx[top],
                         abs_average=ctx["abs_average"],
                         abs_average_at_most_lambda_1=ctx["abs_average"] <= ctx["lambda_1"],
                         abs_average_at_least_trace_over_d=(
                             ctx["abs_average"] >= ctx["trace_over_d"]))

    return check


avg_inequality = Claim(
    id="claim:P.avg_inequality",
    source="004 §4.2 (Alleviating divergence), display",
    statement="E[(1/d)Σ_{i=1}^d Ĥ_ii] = (1/d)Σ_{i=1}^d E[Ĥ]_ii = tr(H)/d = (1/d)Σ_{i=1}^d λ_i "
    "≤ λ_1",
    cases=st.fixed_dictionaries({
        "d": st.integers(min_value=1, max_value=12),
        "pattern": st.sampled_from(SIGN_PATTERNS),
        "log10_kappa": st.floats(min_value=0.0, max_value=4.0),
        "seed": st.integers(min_value=0, max_value=2**16),
    }),
    context=average_context,
    relations=(
        Relation("E[(1/d)Σ_i Ĥ_ii] = (1/d)Σ_i E[Ĥ]_ii", equal("mean_of_averages",
                                                             "average_of_means")),
        Relation("(1/d)Σ_i E[Ĥ]_ii = tr(H)/d", equal("average_of_means", "trace_over_d")),
        Relation("tr(H)/d = (1/d)Σ_i λ_i", equal("trace_over_d", "eigen_average")),
        Relation("(1/d)Σ_i λ_i ≤ λ_1, λ_1 the largest eigenvalue", at_most("lambda_1")),
        Relation("(1/d)Σ_i λ_i ≤ λ_1, λ_1 the largest |eigenvalue|", at_most("spectral_radius")),
    ),
    thresholds={"rtol_exact": RTOL, "scale": "(1/d)Σ_i|λ_i|"},
    examples=({"d": 3, "pattern": "indefinite", "log10_kappa": 1.0, "seed": 0},
              {"d": 1, "pattern": "ND", "log10_kappa": 0.0, "seed": 0}),
    note="H = Q diag(λ) Qᵀ ∈ ℝ^{d×d}, d ≤ 12, Q Haar-random, |λ| log-uniform on [1, 10^κ] "
    "(κ ≤ 4) with every sign pattern: PD, PSD (one zero), indefinite (alternating signs), "
    "NSD (one zero), ND. Ĥ = z ⊙ (Hz) by est:hutchinson_diag with the probes passed "
    "explicitly: all 2^d Rademacher probes, so every expectation is exact (no Monte Carlo). "
    "Equalities at rtol 1e-10 relative to (1/d)Σ|λ_i| (tr H can vanish); the inequality with "
    "λ_1 read as the largest eigenvalue and as the largest |eigenvalue|. Recorded alongside "
    "(details of the inequalities): E[(1/d)Σ_i|Ĥ_ii|] (est:hutchinson_diag abs=mean_of_abs), "
    "the quantity entering the EMA of Eq. (6), and whether it lies below λ_1 and above tr(H)/d.",
)


# --- claim:P.hutchinson_one_bp ----------------------------------------------------------------

HUTCHINSON_SEED = 403
BETA2, LR = 0.99, 1e-2  # SASSHA's β₂ and a step size (004 Alg. 1); the counts do not depend on it
TIMING_REPEATS, TIMING_THREADS = 5, 2
COUNT_MLP = {"n_samples": 16, "widths": (4, 8, 3)}
COUNT_CNN = {"n_samples": 8}  # prob:cnn preset "small"


class HutchinsonEMA:
    """One step of the Hutchinson diagonal with an EMA (004 §4.1, Alg. 1 with k = 1): z a
    Rademacher probe from the oracle's seeded ``probe``, D ← β₂D + (1 − β₂) z ⊙ (H z) with H z
    the oracle's HVP at the current point, update −lr g / sqrt(|D| + 1e-12)."""

    def init(self, params):
        return {"D": {k: np.zeros_like(v) for k, v in params.items()}, "t": 0}

    def step(self, grads, state, params, oracle, lr=LR, beta2=BETA2):
        z = unflatten(oracle.probe("rademacher", (flatten(params).size,),
                                   HUTCHINSON_SEED + state["t"]), params)
        Hz = oracle.hvp(params, z)
        D = {k: beta2 * state["D"][k] + (1 - beta2) * z[k] * Hz[k] for k in params}
        updates = {k: -lr * grads[k] / np.sqrt(np.abs(D[k]) + 1e-12) for k in params}
        return updates, {"D": D, "t": state["t"] + 1}


def count_problem(model: str, seed: int):
    kwargs = COUNT_MLP if model == "mlp" else COUNT_CNN
    problem_id = "prob:mlp" if model == "mlp" else "prob:cnn"
    ref = reference.problems.get(problem_id).make(np.random.default_rng([seed, 404]), **kwargs)
    return ref, ref.init_params(np.random.default_rng([seed, 405]))


def torch_seconds(ref, params) -> dict[str, Any]:
    """Median seconds (est:timing's loop, 2 threads): est:timing's gradient and
    forward-over-reverse HVP ("hvp"), and with plain autograd the gradient, the gradient plus
    one backward pass through its graph (create_graph: the HVP reusing the graph), and the
    reverse-over-reverse HVP on a fresh graph (the engine's ``mode="reverse"``); ratios to
    the autograd gradient."""
    import torch

    import torchimpl
    from torchimpl import curvature as engine

    problem = torchimpl.problems.get(ref.id)(**ref.spec())
    tparams = {k: torch.as_tensor(v) for k, v in params.items()}
    timing = torchimpl.estimators.get("est:timing").fn(
        problem, tparams, repeats=TIMING_REPEATS, threads=TIMING_THREADS)
    mb = problem.as_model()
    v = [torch.ones_like(t) for t in tparams.values()]

    def gradient(hvp: bool) -> None:
        leaves = [t.detach().requires_grad_(True) for t in tparams.values()]
        loss = engine.loss(dict(zip(tparams, leaves, strict=True)), mb)
        g = torch.autograd.grad(loss, leaves, create_graph=hvp)
        if hvp:
            torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v, strict=True)),
                                leaves)

    def seconds(fn) -> float:
        return engine.time_call(fn, TIMING_REPEATS, 1, TIMING_THREADS)

    base = seconds(lambda: gradient(False))
    fresh = seconds(lambda: engine.hvp(tparams, mb, dict(zip(tparams, v, strict=True)),
                                       mode="reverse"))
    return {"est_timing": timing, "autograd_grad_seconds": base,
            "grad_plus_reused_graph_hvp_ratio": seconds(lambda: gradient(True)) / base,
            "reverse_over_reverse_fresh_graph_ratio": fresh / base}


@cached
def counting_context(case: Mapping[str, Any]) -> dict[str, Any]:
    ref, params = count_problem(case["model"], case["seed"])
    oracle = Oracle(ref, rng=np.random.default_rng(case["seed"]))
    counts = count_calls(HutchinsonEMA(), oracle, params, case["steps"], None,
                         lambda a, b: all(np.array_equal(a[k], b[k]) for k in a),
                         lambda p, u: {k: p[k] + u[k] for k in p})
    return {"counts": counts, "steps": case["steps"], "timing": torch_timing(case["model"])}


@cache
def torch_timing(model: str) -> dict[str, float]:
    return torch_seconds(*count_problem(model, 0))


def _one_additional(ctx: Context) -> Evaluation:
    """Per step: one gradient (forward + backward) and exactly one HVP on that gradient's graph
    (one more backward pass), nothing else."""
    c = ctx["counts"]
    extra = [h + n for h, n in zip(c["hvp_reused_graph"], c["hvp_new_graph"], strict=True)]
    others = sum(sum(c[k]) for k in ("full_grad", "loss", "per_sample_grads", "curvature"))
    ok = (all(g == 1 for g in c["grad"]) and all(e == 1 for e in extra)
          and sum(c["hvp_new_graph"]) == 0 and others == 0)
    return predicate(ok, float(max(extra) - 1), counts=c, torch_seconds=ctx["timing"])


hutchinson_one_bp = Claim(
    id="claim:P.hutchinson_one_bp",
    source="004 §4.1",
    statement="we employ the diagonal approximation of the Hessian estimated via Hutchinson's "
    "method (denoted as Ĥ) with the exponential moving average, which is a standard practice "
    "in deep learning since it only requires one additional backpropagation",
    cases=st.fixed_dictionaries({
        "model": st.sampled_from(("mlp", "cnn")),
        "steps": st.integers(min_value=1, max_value=3),
        "seed": st.integers(min_value=0, max_value=3),
    }),
    context=counting_context,
    relations=(
        Relation("one additional backpropagation: per step one gradient and exactly one HVP, "
                 "on the gradient's graph", _one_additional),
    ),
    thresholds={"hvp_per_step": 1, "timing_repeats": TIMING_REPEATS,
                "timing_threads": TIMING_THREADS},
    examples=({"model": "mlp", "steps": 2, "seed": 0},),
    note="The Hutchinson diagonal with EMA as in 004 Alg. 1 (one Rademacher probe per step, "
    "D ← β₂D + (1 − β₂) z ⊙ Hz, k = 1), run as a rule on the reference oracle wrapped by "
    "est:oracle_counter's CountingOracle (contract.specs.curvature.count_calls: the driver "
    "evaluates one gradient per step, an HVP at a point whose gradient this step evaluated "
    "is counted as reusing that graph, i.e. one more backward pass). est:oracle_counter "
    "itself takes a registered rule ID and no Hutchinson-diagonal rule (rule:dh.adahessian, "
    "rule:sam.sassha) is registered yet, so the same counter is driven directly. Models: "
    "prob:mlp 4-8-3 (N = 16) and prob:cnn 'small' (N = 8), 1–3 steps. Timing is recorded, "
    "not decided (the text states a count, no time): torch float64 on CPU, 2 threads, medians "
    "of 5 after a warm-up (est:timing and its time_call), of the gradient and of an HVP by "
    "forward-over-reverse (est:timing 'hvp'), by reverse-over-reverse on a fresh graph, and "
    "of the gradient plus one backward pass through its graph (create_graph, graph reuse), as "
    "ratios to the gradient's time (details of the relation).",
)

CLAIMS: dict[str, Claim] = {claim.id: claim
                            for claim in (eq2_dual, avg_inequality, hutchinson_one_bp)}
