"""Audits of the thesis's curvature statements (INVENTORY §4.2.B; source 002_7fbb3c804823113a.txt
§2.1.2, §2.1.3, §2.4.3, §3.1, §3.3): claim:T.cov_psd, claim:T.ggn_psd, claim:T.fim_chain,
claim:T.ngd_reparam, claim:T.hessian_conditioning, claim:T.kron_identities.

Every matrix is a reference-layer quantity (exact, float64): ``hessian``, ``ggn``, ``jac_out``,
``out_hess``, ``fisher_true`` (exact over the classes; ``reduction="sum"`` for the printed Σ_n),
``fisher_emp``, ``per_sample_grads`` and ``layer_stats`` of the reference problems; batch
Fishers E_B[g_b g_bᵀ] come from ``est:fisher_batch`` (exact enumeration of the batches); NGD
steps from ``rule:uv.ngd`` with ``curv="user"``. Problem sizes are scaled down so that every
claim audits in seconds on a 2-core CPU; each note says how.

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
import scipy.optimize
from hypothesis import strategies as st

import reference
from reference.oracle import Oracle
from reference.problems.base import Problem
from reference.problems.network import LSTSQ_DESIGNS
from reference.problems.spectra import random_orthogonal, symmetric
from reference.tree import flatten, unflatten
from verify.audits.framework import (
    Claim,
    Evaluation,
    Hypothesis,
    Relation,
    compare,
    predicate,
    undefined,
)
from verify.audits.survey_common import cached
from verify.audits.unified_view_models import Model, log_probs, num_classes

Context = Mapping[str, Any]

# --- thresholds (INVENTORY §0.4 items 3-4: written before anything runs) --------------------

EPS = float(np.finfo(np.float64).eps)
RTOL = 1e-10  # exact float64 identities without inverses
ROUNDOFF = 10.0  # identities through inverses: rtol = RTOL + ROUNDOFF n kappa eps
ILL_POSED = 1e-2  # a check whose rounding allowance exceeds this is undefined (too ill-conditioned)
PSD_TOL = 1e-10  # "M ⪰ 0": lambda_min(M) >= -1e-10 max|lambda(M)| (rounding of dense M)
APPROX = 0.1  # "≈" of matrices: ||A - B||_F / max(||A||_F, ||B||_F) <= 0.1
TRAJ_RTOL = 1e-8  # "invariant": trajectories agree to 1e-8 of their displacement
FIRST_ORDER_SLOPE = 1.5  # "o(alpha)": fitted exponent of the one-step gap in alpha >= 1.5
STATIONARY = 1e-8  # a stationary point: ||grad f|| <= 1e-8 max(1, ||H||)
CLASSIFY_RADIUS = 1e-3  # local classification: L-BFGS-B on ±f in a box of this (relative) size
CLASSIFY_STARTS = 2  # ... from this many random starting points

SEED = 0
SCALES = (1.0, 3.0)  # T.ggn_psd: the starting point and three times it


# --- shared helpers ---------------------------------------------------------------------------


def frobenius(A: np.ndarray) -> float:
    """||A||_F by an elementwise sum (no BLAS call: cheap for the many small gaps below)."""
    return math.sqrt(float(np.sum(np.square(A))))


def gap(A: np.ndarray, B: np.ndarray) -> float:
    """||A - B||_F / max(||A||_F, ||B||_F), 0 when both vanish."""
    scale = max(frobenius(A), frobenius(B))
    return 0.0 if scale == 0.0 else frobenius(A - B) / scale


def scale_free_gap(A: np.ndarray, B: np.ndarray) -> float:
    """min_c ||A - c B||_F / ||A||_F: the gap left after the best scalar factor (0 when A and
    B differ only by a factor; 1 when B = 0 or orthogonal to A)."""
    a = frobenius(A)
    if a == 0.0:
        return 0.0
    b2 = float(np.sum(B * B))
    c = float(np.sum(A * B)) / b2 if b2 > 0.0 else 0.0
    return frobenius(A - c * B) / a


def psd_margin(lam: np.ndarray, **detail: Any) -> Evaluation:
    """"M ⪰ 0" from the eigenvalues ``lam``: lambda_min / max|lambda| >= -PSD_TOL (0 for M = 0)."""
    top = float(np.max(np.abs(lam), initial=0.0))
    ratio = 0.0 if top == 0.0 else float(np.min(lam)) / top
    return predicate(ratio >= -PSD_TOL, ratio, lambda_min=float(np.min(lam)),
                     lambda_max=float(np.max(lam)), **detail)


def inverse_rtol(n: int, kappa: float) -> float:
    """The tolerance of an identity through inverses of an n x n matrix of condition kappa."""
    return RTOL + ROUNDOFF * n * kappa * EPS


def condition(M: np.ndarray) -> float:
    s = np.linalg.svd(M, compute_uv=False)
    return math.inf if s[-1] == 0.0 else float(s[0] / s[-1])


def make(problem_id: str, seed: int | list[int], **kwargs: Any) -> Problem:
    return reference.problems.get(problem_id).make(np.random.default_rng(seed), **kwargs)


# --- claim:T.cov_psd ------------------------------------------------------------------------

COV_DATA = ("gaussian", "offset", "collinear", "identical")


def cov_data(kind: str, d: int, n: int, seed: int) -> np.ndarray:
    """X (d, n): Gaussian; offset by 1e3; rank one (collinear); n copies of one point."""
    rng = np.random.default_rng([seed, 301])
    Z = rng.standard_normal((d, n))
    if kind == "offset":
        return 1e3 + Z
    if kind == "collinear":
        return np.outer(Z[:, 0], rng.standard_normal(n))
    if kind == "identical":
        return np.repeat(Z[:, :1], n, axis=1)
    return Z


@cached
def cov_context(case: Mapping[str, Any]) -> dict[str, Any]:
    """Both printed expressions, with x_i ∈ ℝ^{d×1} the i-th column of X (as X is defined)."""
    d, n = case["d"], case["n"]
    X = cov_data(case["data"], d, n, case["seed"])
    x = [X[:, [i]] for i in range(n)]
    x_bar = sum(x) / n
    X_bar = np.tile(x_bar, (1, n))
    Sigma = (X - X_bar) @ (X - X_bar).T / n
    return {
        "d": d,
        "n": n,
        "sum_transposed": sum((xi - x_bar).T for xi in x) / n,  # (1/n) Σ_i (x_i − x̄)ᵀ
        "sum_outer": sum((xi - x_bar) @ (xi - x_bar).T for xi in x) / n,
        "Sigma": Sigma,
        "eigenvalues": np.linalg.eigvalsh(Sigma),
    }


def _stated_type(ctx: Context) -> Evaluation:
    """x_i ∈ ℝ^{d×n} as stated: the left side is (n, d), and X ∈ ℝ^{d×n} cannot hold n such
    blocks as its columns unless n = 1 (then x_1 is a column and this is the first relation)."""
    d, n = ctx["d"], ctx["n"]
    if n > 1:
        return undefined("ill-typed: X ∈ ℝ^{d×n} cannot hold n observations x_i ∈ ℝ^{d×n} as "
                         "its columns", lhs=f"ndarray({n}, {d})",
                         rhs=f"X − X̄ not formable (n = {n} blocks of ℝ^({d}×{n}))")
    return compare(ctx["sum_transposed"], ctx["Sigma"], RTOL)


cov_psd = Claim(
    id="claim:T.cov_psd",
    source="002 §2.1.2 (Covariance Matrices)",
    statement="Given, observations x_i ∈ ℝ^{d×n}, for i = 1, …, n of the r.v x, we define the "
    "empirical covariance matrix as Σ̂ = (1/n)Σ_i(x_i − x̄)ᵀ = (1/n)(X − X̄)(X − X̄)ᵀ, where the "
    "design matrix X ∈ ℝ^{d×n} contains x_i in its i-th column … the empirical covariance "
    "matrix is symmetric and positive semidefinite",
    cases=st.fixed_dictionaries({
        "d": st.integers(min_value=1, max_value=6),
        "n": st.integers(min_value=1, max_value=8),
        "data": st.sampled_from(COV_DATA),
        "seed": st.integers(min_value=0, max_value=2**16),
    }),
    context=cov_context,
    relations=(
        Relation("as printed: (1/n)Σ_i(x_i − x̄)ᵀ = (1/n)(X − X̄)(X − X̄)ᵀ, x_i ∈ ℝ^d the i-th "
                 "column of X",
                 lambda c: compare(c["sum_transposed"], c["Sigma"], RTOL)),
        Relation("as printed with the stated type x_i ∈ ℝ^{d×n}", _stated_type),
        Relation("reading: (1/n)Σ_i(x_i − x̄)(x_i − x̄)ᵀ = (1/n)(X − X̄)(X − X̄)ᵀ",
                 lambda c: compare(c["sum_outer"], c["Sigma"], RTOL)),
        Relation("Σ̂ = (1/n)(X − X̄)(X − X̄)ᵀ is symmetric",
                 lambda c: compare(c["Sigma"], c["Sigma"].T, RTOL)),
        Relation("Σ̂ is positive semidefinite (all eigenvalues ≥ 0)",
                 lambda c: psd_margin(c["eigenvalues"])),
    ),
    thresholds={"rtol_exact": RTOL, "psd_tol": PSD_TOL},
    examples=({"d": 3, "n": 5, "data": "gaussian", "seed": 0},
              {"d": 1, "n": 4, "data": "gaussian", "seed": 0},
              {"d": 2, "n": 1, "data": "gaussian", "seed": 0}),
    note="Both printed expressions evaluated literally on X ∈ ℝ^{d×n} (d ≤ 6, n ≤ 8; Gaussian, "
    "offset by 1e3, rank-one and identical columns): x_i ∈ ℝ^{d×1} the i-th column of X (as the "
    "design matrix is defined), x̄ their mean, X̄ = x̄ repeated. The first expression "
    "(1/n)Σ_i(x_i − x̄)ᵀ is a (1, d) row (identically 0 up to rounding): against the (d, d) "
    "right side it is ill-typed for d > 1 (recorded as undefined with both shapes) and "
    "comparable for d = 1. The stated type x_i ∈ ℝ^{d×n} makes X unformable for n > 1 "
    "(undefined, with shapes). The outer-product sum is a labelled reading. Symmetry: "
    "‖Σ̂ − Σ̂ᵀ‖/‖Σ̂‖ ≤ 1e-10; PSD: eigvalsh, λ_min ≥ −1e-10 max|λ| (margin λ_min/max|λ|).",
)


# --- claim:T.ggn_psd ------------------------------------------------------------------------

NLS_VARIANTS = ("exp/zero", "exp/nonzero", "rosenbrock/zero", "rosenbrock/nonzero")
MLP_VARIANTS = tuple(f"{loss}/{act}" for loss in ("mse", "mse_half", "ce")
                     for act in ("tanh", "relu", "sigmoid"))
GGN_MLP = {"n_samples": 12, "widths": (3, 5, 3)}


def _ggn_cases(problem: str, variants: tuple[str, ...]) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "problem": st.just(problem),
        "variant": st.sampled_from(variants),
        "reduction": st.sampled_from(("mean", "sum")),
        "scale": st.sampled_from(SCALES),
        "seed": st.integers(min_value=0, max_value=2**16),
    })


def ggn_problem(case: Mapping[str, Any]) -> Problem:
    seed, red = [case["seed"], 311], case["reduction"]
    if case["problem"] == "lstsq":
        return make("prob:lstsq", seed, n_samples=12, dim=4, design=case["variant"],
                    reduction=red)
    first, second = case["variant"].split("/")
    if case["problem"] == "nls":
        return make("prob:nls", seed, kind=first, residual=second, n_points=12, reduction=red)
    return make("prob:mlp", seed, loss=first, activation=second, reduction=red, **GGN_MLP)


def loss_kind(built: Problem) -> str:
    return getattr(built, "loss_name", "mse_half")  # prob:nls: l_n = r_n^2 / 2


@cached
def ggn_context(case: Mapping[str, Any]) -> dict[str, Any]:
    built = ggn_problem(case)
    init = built.init_params(np.random.default_rng([case["seed"], 312]))
    params = {k: case["scale"] * v for k, v in init.items()}
    J, Lam, G = built.jac_out(params), built.out_hess(params), built.ggn(params)
    scale = 1.0 / J.shape[0] if built.reduction == "mean" else 1.0
    return {
        "least_squares": loss_kind(built) in ("mse", "mse_half"),
        "loss": loss_kind(built),
        "G": G,
        "G_printed": scale * np.einsum("bcp,bcd,bdq->pq", J, Lam, J),
        "lam_G": np.linalg.eigvalsh(G),
        "lam_Lambda": np.linalg.eigvalsh(Lam).ravel(),
        "lam_H": np.linalg.eigvalsh(built.hessian(params)),
    }


def ggn_psd_relation(name: str, key: str, least_squares: bool) -> Relation:
    """M ⪰ 0 on the least-squares losses (the claim) or on ce (recorded separately)."""

    def check(ctx: Context) -> Evaluation:
        if ctx["least_squares"] != least_squares:
            other = "ce: outside 'such as', see its own relation" if least_squares else \
                "a least-squares loss: see the claim's relation"
            return undefined(other)
        lam_H = ctx["lam_H"]
        return psd_margin(ctx[key], loss=ctx["loss"], hessian_lambda_min=float(lam_H[0]),
                          hessian_lambda_max=float(lam_H[-1]))

    return Relation(name, check)


ggn_psd = Claim(
    id="claim:T.ggn_psd",
    source="002 §2.4.3 (Generalized Gauss-Newton (GGN) and Hybrid Approaches)",
    statement="G(θ) = J(θ)ᵀ∇²_{f(θ)}L(f(θ))J(θ). For many losses that are locally quadratic, "
    "such as least-squares losses, this Hessian is positive semidefinite",
    cases=st.one_of(_ggn_cases("lstsq", LSTSQ_DESIGNS), _ggn_cases("nls", NLS_VARIANTS),
                    _ggn_cases("mlp", MLP_VARIANTS)),
    context=ggn_context,
    relations=(
        Relation("the problem's G is the printed J(θ)ᵀ∇²_f L J(θ) (with the loss's scale)",
                 lambda c: compare(c["G"], c["G_printed"], RTOL)),
        ggn_psd_relation("least-squares losses: G ⪰ 0", "lam_G", True),
        ggn_psd_relation("least-squares losses: every Λ_n = ∇²_f ℓ_n ⪰ 0 ('this Hessian' read "
                         "as the Hessian of the loss in f)", "lam_Lambda", True),
        ggn_psd_relation("outside 'such as' (ce, recorded separately): G ⪰ 0", "lam_G", False),
        ggn_psd_relation("outside 'such as' (ce, recorded separately): every Λ_n ⪰ 0",
                         "lam_Lambda", False),
    ),
    thresholds={"rtol_exact": RTOL, "psd_tol": PSD_TOL},
    examples=({"problem": "nls", "variant": "exp/nonzero", "reduction": "mean", "scale": 1.0,
               "seed": 0},
              {"problem": "mlp", "variant": "ce/tanh", "reduction": "mean", "scale": 1.0,
               "seed": 0}),
    note="Exact G (ggn), Λ_n (out_hess) and H (hessian, recorded in the details as "
    "hessian_lambda_min/max: it may be indefinite) at the problem's initial point and at three "
    "times it, for prob:lstsq (N = 12, d = 4, every design), prob:nls (exp with 12 points and "
    "rosenbrock, zero and non-zero residuals) and prob:mlp (3-5-3, N = 12; mse and mse_half, "
    "the two least-squares scalings, and ce; tanh, relu, sigmoid), each with reduction mean and "
    "sum. PSD: eigvalsh, λ_min ≥ −1e-10 max|λ|. ce (not least squares) is recorded in its own "
    "relations; on the other losses those are undefined, and conversely.",
)


# --- claim:T.fim_chain ----------------------------------------------------------------------

FIM_MODELS = {
    "softmax": Model("prob:softmax", {"n_samples": 16, "dim": 4, "classes": 3}, 0.9, 200),
    "logreg": Model("prob:logreg", {"n_samples": 16, "dim": 5}, 2.0, 200),
    "W1": Model("prob:W1", {"n_samples": 16, "activation": "tanh"}, 0.5, 100),
}
BATCHES = (1, 2, 4, 16)  # B (16 = N: the full batch)
BLOCK = 128  # W1: the matrices' principal block on this many live coordinates


@cache
def fim_problem(name: str, reduction: str = "mean") -> Problem:
    model = FIM_MODELS[name]
    built = make(model.problem_id, SEED, **model.make)
    return built if reduction == "mean" else type(built)(**{**built.spec(), "reduction": "sum"})


@cache
def fim_params(name: str, stage: str) -> dict[str, np.ndarray]:
    """Initial parameters, or after the model's full-batch GD steps ("trained")."""
    model, built = FIM_MODELS[name], fim_problem(name)
    params = built.init_params(np.random.default_rng([SEED, 2]))
    for _ in range(model.steps if stage == "trained" else 0):
        grads = built.grad(params)
        params = {k: v - model.lr * grads[k] for k, v in params.items()}
    return params


@cache
def fim_block(name: str) -> np.ndarray:
    """All coordinates, or BLOCK random ones among those the loss depends on (W1)."""
    built, params = fim_problem(name), fim_params(name, "init")
    P = flatten(params).size
    if P <= BLOCK:
        return np.arange(P)
    live = np.flatnonzero(np.any(built.per_sample_grads(params) != 0.0, axis=0))
    return np.sort(np.random.default_rng([SEED, 3]).choice(live, BLOCK, replace=False))


@cache
def fim_matrices(name: str, stage: str) -> dict[str, np.ndarray]:
    """F_true (Σ_n and mean), F_emp, ∇L∇Lᵀ (mean loss, data labels) and H on the block."""
    built, params, S = fim_problem(name), fim_params(name, stage), fim_block(name)
    block = np.ix_(S, S)
    g = flatten(built.grad(params))[S]
    return {
        "F_sum": fim_problem(name, "sum").fisher_true(params)[block],
        "F_mean": built.fisher_true(params)[block],
        "F_emp": built.fisher_emp(params)[block],
        "ggT": np.outer(g, g),
        "H": hessian_block(built, params, S),
    }


def hessian_block(built: Problem, params: dict[str, np.ndarray], S: np.ndarray) -> np.ndarray:
    """H[S][:, S]: the dense Hessian, or one exact HVP per coordinate of a proper subset S."""
    P = flatten(params).size
    if S.size == P:
        return built.hessian(params)
    columns = [flatten(built.hvp(params, unflatten(np.eye(1, P, i)[0], params)))[S] for i in S]
    H = np.array(columns)
    return 0.5 * (H + H.T)


@cache
def label_gradients(name: str, stage: str) -> tuple[np.ndarray, np.ndarray]:
    """(G3, p): per-sample gradients at every label (N, C, |S|) and p_theta(c | x_n) (N, C)."""
    built, params, S = fim_problem(name), fim_params(name, stage), fim_block(name)
    N = built.num_samples()
    G3 = np.stack([built.per_sample_grads(params, labels=np.full(N, c))[:, S]
                   for c in range(num_classes(built))], axis=1)
    return G3, np.exp(log_probs(built, params))


@cache
def batch_fisher(name: str, stage: str, labels: str, B: int) -> np.ndarray:
    """E_B[g_b g_bᵀ] (est:fisher_batch: g_b the 1/B minibatch mean, exact over batches)."""
    fisher_batch = reference.estimators.get("est:fisher_batch").fn
    G3, p = label_gradients(name, stage)
    if labels == "model":
        return fisher_batch(G3, p, labels="model", B=B)["F_b"]
    built, params = fim_problem(name), fim_params(name, stage)
    G = built.per_sample_grads(params)[:, fim_block(name)]
    return fisher_batch(G, labels="data", B=B)["F_tilde_b"]


@cached
def fim_context(case: Mapping[str, Any]) -> dict[str, Any]:
    name, stage, B = case["model"], case["stage"], case["B"]
    N = fim_problem(name).num_samples()
    M = dict(fim_matrices(name, stage))
    M["E_B_model"] = batch_fisher(name, stage, "model", B)
    M["E_B_data"] = batch_fisher(name, stage, "data", B)
    M["E_sum_loss"] = N**2 * batch_fisher(name, stage, "model", N)
    names = sorted(M)
    table = {f"{a} | {b}": gap(M[a], M[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    return {**M, "distances": table, "N": N, "B": B}


def chain(name: str, lhs: str, rhs: str, rtol: float = RTOL) -> Relation:
    """``lhs`` = ``rhs`` (matrices of the context), with the scale-free gap and the distance
    table of the case in the detail."""

    def check(ctx: Context) -> Evaluation:
        ev = compare(ctx[lhs], ctx[rhs], rtol)
        detail = {**ev.detail, "scale_free_gap": scale_free_gap(ctx[lhs], ctx[rhs]),
                  "N": ctx["N"], "B": ctx["B"], "distances": ctx["distances"]}
        return Evaluation(ev.ok, ev.discrepancy, detail)

    return Relation(name, check)


fim_chain = Claim(
    id="claim:T.fim_chain",
    source="002 §2.4.3 (K-FAC and Its Extensions), §3.1",
    statement="F = Σ_n E_{y∼p(y|f_θ(x_n))}[∇_θ log p_θ(y|x_n)∇_θ log p_θ(y|x_n)ᵀ] = "
    "E[∇_θL(∇_θL)ᵀ] = E[ggᵀ] (\"we write E in place of the full expectation\"); §3.1: \"we use "
    "the FIM as an approximation to the Hessian F = E[∇log p ∇log pᵀ] = E[ggᵀ], g = ∇_θL(θ)\"",
    cases=st.fixed_dictionaries({
        "model": st.sampled_from(tuple(FIM_MODELS)),
        "stage": st.sampled_from(("init", "trained")),
        "B": st.sampled_from(BATCHES),
    }),
    context=fim_context,
    relations=(
        chain("F (Σ_n) = E[∇L(∇L)ᵀ], L = Σ_n −log p(y_n|x_n), every y_n ∼ p_θ", "F_sum",
              "E_sum_loss"),
        chain("F (Σ_n) = E[ggᵀ], g = ∇_θL the minibatch gradient (mean loss, batch B), y ∼ p_θ",
              "F_sum", "E_B_model"),
        chain("reading (the loss's 1/N): F (mean) = E[ggᵀ], g the minibatch gradient, y ∼ p_θ",
              "F_mean", "E_B_model"),
        chain("F (Σ_n) = E[ggᵀ], g the minibatch gradient with the data labels", "F_sum",
              "E_B_data"),
        chain("reading (the loss's 1/N): F (mean) = E[ggᵀ], g the minibatch gradient, data labels",
              "F_mean", "E_B_data"),
        chain("§3.1 g = ∇_θL(θ) the full-batch gradient (data labels): F (mean) = ggᵀ", "F_mean",
              "ggT"),
        chain("§3.1 'the FIM as an approximation to the Hessian': F (mean) ≈ H", "F_mean", "H",
              APPROX),
    ),
    thresholds={"rtol_exact": RTOL, "approx_frobenius": APPROX},
    note="Exact matrices of prob:softmax (d = 4, C = 3, P = 15), prob:logreg (d = 5, P = 6) and "
    "prob:W1 (tanh), each on N = 16 samples (scaled down: the batch enumeration of "
    "est:fisher_batch needs C(N, B) ≤ 2e5), at initialization and after full-batch GD (200, "
    "200, 100 steps). W1's matrices are restricted to the principal block of 128 fixed random "
    "live coordinates (every relation then compares blocks). F (Σ_n): fisher_true of the "
    "reduction='sum' problem (exact over the classes); F (mean): the loss's 1/N; F_emp: data "
    "labels; E_B[g_bg_bᵀ]: est:fisher_batch (g_b the minibatch mean, batches without "
    "replacement, labels sampled from p_θ per drawn sample, or the data labels) for "
    "B ∈ {1, 2, 4, 16}; E[∇L(∇L)ᵀ] of the summed loss: N² E_{B=N}[g_bg_bᵀ] with sampled "
    "labels; ggᵀ: the full-batch mean-loss gradient; H: hessian. Gaps: ‖A − B‖_F/max(‖A‖_F, "
    "‖B‖_F); the details add the gap left after the best scalar factor (scale_free_gap: 0 when "
    "the two differ only in scale) and the case's table of every pairwise gap.",
)


# --- claim:T.ngd_reparam --------------------------------------------------------------------

NGD_MODELS = {"softmax": ("prob:softmax", {"n_samples": 32, "dim": 3, "classes": 3}),
              "logreg": ("prob:logreg", {"n_samples": 32, "dim": 3})}
NGD_STEPS = 10
ALPHAS = 10.0 ** np.linspace(-3.0, 0.0, 7)  # the one-step gap's fit in alpha
C_GRID = (-2.0, -1.0, -0.5, 0.1, 0.5, 1.0, 2.0)
NGD = "rule:uv.ngd"
NGD_SIZES = {"softmax": 12, "logreg": 4}  # P = (d + 1) C and d + 1


class Reparam:
    """theta = A phi + b (affine) or theta = phi + c tanh(phi) (elementwise), with J = dθ/dφ."""

    def __init__(self, kind: str, P: int, c: float, log10_kappa: float, seed: int) -> None:
        rng = np.random.default_rng([seed, 321])
        self.kind, self.c = kind, c
        s = 10.0 ** rng.uniform(0.0, log10_kappa, P)
        self.A = random_orthogonal(P, rng) @ np.diag(s) @ random_orthogonal(P, rng)
        self.b = rng.standard_normal(P)

    def start(self, theta0: np.ndarray) -> np.ndarray:
        """phi_0: A⁻¹(theta0 − b) (so theta(phi_0) = theta0), or theta0 itself for tanh."""
        return np.linalg.solve(self.A, theta0 - self.b) if self.kind == "affine" else theta0

    def invertible(self) -> bool:
        return self.kind == "affine" or self.c > -1.0

    def theta(self, phi: np.ndarray) -> np.ndarray:
        return self.A @ phi + self.b if self.kind == "affine" else phi + self.c * np.tanh(phi)

    def jac(self, phi: np.ndarray) -> np.ndarray:
        return self.A if self.kind == "affine" else np.diag(1.0 + self.c / np.cosh(phi) ** 2)


@cache
def ngd_problem(name: str) -> Problem:
    problem_id, kwargs = NGD_MODELS[name]
    return make(problem_id, SEED, **kwargs)


def ngd_step(built: Problem, g: np.ndarray, K: np.ndarray, alpha: float) -> np.ndarray:
    """rule:uv.ngd with curvature K (curv="user", pseudo-inverse: softmax's F is singular)."""
    rule, x = reference.rules.get(NGD), {"x": np.zeros(g.size)}
    d, _ = rule.step({"x": g}, rule.init(x), x, Oracle(built, user_curvature=K), curv="user",
                     singular="pinv", alpha=alpha)
    return d["x"]


def fisher_and_grad(built: Problem, theta: np.ndarray, like) -> tuple[np.ndarray, np.ndarray]:
    params = unflatten(theta, like)
    return built.fisher_true(params), flatten(built.grad(params))


def kept_condition(K: np.ndarray) -> float:
    """lambda_max / lambda_min over the eigenvalues the pinv policy keeps (> P eps lambda_max)."""
    lam = np.linalg.eigvalsh(K)
    kept = lam[lam > lam.size * EPS * lam[-1]]
    return float(kept[-1] / kept[0]) if kept.size and np.isfinite(lam).all() else math.inf


def ngd_paths(name: str, rep: Reparam, phi0: np.ndarray, alpha: float,
              steps: int) -> dict[str, Any]:
    """theta_t and theta(phi_t), t = 0..steps: NGD in theta, and NGD in phi (gradient Jᵀg,
    Fisher JᵀFJ) mapped back; ``kappa``: the largest `kept_condition` of F met on either path."""
    built = ngd_problem(name)
    like = built.init_params(np.random.default_rng(0))
    theta, phi = rep.theta(phi0), phi0.copy()
    thetas, mapped, kappa = [theta], [theta], 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            F, g = fisher_and_grad(built, theta, like)
            J = rep.jac(phi)
            F_phi, g_phi = fisher_and_grad(built, rep.theta(phi), like)
            K_phi = J.T @ F_phi @ J
            kappa = max(kappa, kept_condition(F), kept_condition(K_phi))
            if not math.isfinite(kappa):
                break
            theta = theta + ngd_step(built, g, F, alpha)
            phi = phi + ngd_step(built, J.T @ g_phi, K_phi, alpha)
            thetas.append(theta)
            mapped.append(rep.theta(phi))
    return {"thetas": np.array(thetas), "mapped": np.array(mapped), "kappa": kappa}


def predictive_gap(name: str, A: np.ndarray, B: np.ndarray) -> float:
    """max over the path, inputs and labels of |p_theta(y|x) − p_theta'(y|x)|."""
    built = ngd_problem(name)
    like = built.init_params(np.random.default_rng(0))
    return max(float(np.max(np.abs(np.exp(log_probs(built, unflatten(a, like)))
                                   - np.exp(log_probs(built, unflatten(b, like))))))
               for a, b in zip(A, B, strict=True))


def path_gap(thetas: np.ndarray, mapped: np.ndarray) -> float:
    """max_t ||theta_t − theta(phi_t)|| / max_t ||theta_t − theta_0|| (0 when both are 0)."""
    scale = float(np.max(np.linalg.norm(thetas - thetas[0], axis=1)))
    diff = float(np.max(np.linalg.norm(thetas - mapped, axis=1)))
    return 0.0 if diff == 0.0 else diff / max(scale, np.finfo(float).tiny)


def path_rtol(P: int, kappa: float) -> float:
    """The float64 allowance of a trajectory comparison: TRAJ_RTOL + ROUNDOFF steps P kappa eps."""
    return TRAJ_RTOL + ROUNDOFF * NGD_STEPS * P * kappa * EPS


@cached
def ngd_context(case: Mapping[str, Any]) -> dict[str, Any]:
    name = case["model"]
    P = NGD_SIZES[name]
    rep = Reparam(case["transform"], P, case["c"], case["log10_kappa"], case["seed"])
    if not rep.invertible():
        return {"invertible": False}
    theta0 = flatten(ngd_problem(name).init_params(np.random.default_rng([case["seed"], 322])))
    phi0 = rep.start(theta0)
    run = ngd_paths(name, rep, phi0, 10.0 ** case["log10_alpha"], NGD_STEPS)
    ones = [ngd_paths(name, rep, phi0, a, 1) for a in ALPHAS]
    finite = bool(len(run["thetas"]) == NGD_STEPS + 1 and np.isfinite(run["thetas"]).all()
                  and np.isfinite(run["mapped"]).all())
    ctx = {"invertible": True, "finite": finite, "kappa": run["kappa"],
           "allowance": path_rtol(P, run["kappa"]),
           "allowance_one_step": path_rtol(P, max(r["kappa"] for r in ones)),
           "one_step_relative": np.array([path_gap(r["thetas"], r["mapped"]) for r in ones])}
    if finite:
        ctx["path_gap"] = path_gap(run["thetas"], run["mapped"])
        ctx["predictive_gap"] = predictive_gap(name, run["thetas"], run["mapped"])
    return ctx


def _agree(key: str) -> Callable[[Context], Evaluation]:
    """``ctx[key]`` <= the path's float64 allowance (undefined when that exceeds ILL_POSED)."""

    def check(ctx: Context) -> Evaluation:
        detail = {"kappa_F": ctx["kappa"], "allowance": ctx["allowance"]}
        if not ctx["finite"]:
            return undefined("NGD left the finite numbers (F numerically singular on the path)")
        if ctx["allowance"] > ILL_POSED:
            return undefined("F too ill-conditioned on the path for a float64 comparison",
                             **detail)
        value = ctx[key]
        return predicate(value <= ctx["allowance"], ctx["allowance"] - value,
                         **{key: value, **detail})

    return check


def _first_order(ctx: Context) -> Evaluation:
    """The one-step gap is o(alpha): invariant at every alpha, or fitted exponent >= 1.5 of
    ||Δ|| = (relative gap) alpha ||F⁺g|| in alpha."""
    rel, allowance = ctx["one_step_relative"], ctx["allowance_one_step"]
    detail = {"alphas": ALPHAS.tolist(), "one_step_relative_gap": rel.tolist(),
              "allowance": allowance}
    if not np.all(np.isfinite(rel)) or allowance > ILL_POSED:
        return undefined("F too ill-conditioned at the start for a float64 comparison", **detail)
    if np.all(rel <= allowance):
        return predicate(True, allowance - float(rel.max()), **detail)
    gaps = np.maximum(rel * ALPHAS, np.finfo(float).tiny)
    exponent = float(np.polyfit(np.log(ALPHAS), np.log(gaps), 1)[0])
    return predicate(exponent >= FIRST_ORDER_SLOPE, exponent - FIRST_ORDER_SLOPE,
                     exponent=exponent, **detail)


ngd_reparam = Claim(
    id="claim:T.ngd_reparam",
    source="002 §2.4.3 (K-FAC and Its Extensions), §3.3",
    statement="Natural gradient descent … leverages the FIM as a Riemannian metric to perform "
    "parameter updates that are invariant to reparameterization; §3.3: \"One of the "
    "distinguishing features of NGD within this framework is its re-parametrization "
    "invariance, a direct consequence of leveraging the model's distribution properties\"",
    cases=st.fixed_dictionaries({
        "model": st.sampled_from(tuple(NGD_MODELS)),
        "transform": st.sampled_from(("affine", "tanh")),
        "log10_alpha": st.floats(min_value=-3.0, max_value=0.0),
        "c": st.sampled_from(C_GRID),
        "log10_kappa": st.sampled_from((0.0, 1.0, 2.0)),
        "seed": st.integers(min_value=0, max_value=3),
    }),
    context=ngd_context,
    hypotheses=(Hypothesis("θ(φ) is a reparameterization (A invertible; c > −1 for "
                           "φ + c tanh φ)", lambda c: c["invertible"]),),
    relations=(
        Relation("invariant: the θ-trajectory equals the φ-trajectory mapped back",
                 _agree("path_gap")),
        Relation("reading ('the model's distribution properties'): the predictive "
                 "distributions along the two trajectories agree", _agree("predictive_gap")),
        Relation("reading (invariance of the NGD flow): the one-step gap is o(α)", _first_order),
    ),
    thresholds={"trajectory_rtol": f"{TRAJ_RTOL} + {ROUNDOFF} steps P κ_F eps",
                "ill_posed": ILL_POSED, "first_order_exponent": FIRST_ORDER_SLOPE,
                "steps": NGD_STEPS},
    examples=({"model": "logreg", "transform": "affine", "log10_alpha": 0.0, "c": 0.5,
               "log10_kappa": 1.0, "seed": 0},
              {"model": "logreg", "transform": "tanh", "log10_alpha": -1.0, "c": 0.5,
               "log10_kappa": 0.0, "seed": 0}),
    note="NGD (rule:uv.ngd, curv='user', singular='pinv': softmax's F is singular, the logit "
    "shift; for a PD F the pseudo-inverse is the inverse) for 10 steps of size α ∈ [1e-3, 1] "
    "(scaled down) in θ with F = fisher_true, and in φ with gradient J(φ)ᵀ∇L(θ(φ)) and Fisher "
    "J(φ)ᵀF(θ(φ))J(φ), mapped back by θ(φ); θ = Aφ + b (A = U diag(s) Vᵀ, s log-uniform up to "
    "κ ∈ {1, 10, 100}) or θ = φ + c tanh φ (c on a grid; c ≤ −1 is not a reparameterization: "
    "hypothesis); start: the problem's initial θ₀ per seed, φ₀ = A⁻¹(θ₀ − b) (affine) or φ₀ = "
    "θ₀ (tanh). prob:softmax (N = 32, d = 3, C = 3, P = 12) and prob:logreg (N = 32, d = 3, "
    "P = 4); prob:W1 left out (a dense pseudo-inverse of P = 3466 per step). Trajectory gap: "
    "max_t ‖θ_t − θ(φ_t)‖ / max_t ‖θ_t − θ_0‖; predictive gap: max |Δp_θ(y|x)| over the path, "
    "inputs and labels; both must be ≤ 1e-8 + 10 · steps · P · κ_F · eps, κ_F the largest "
    "condition number of F or JᵀFJ on the range the pseudo-inverse keeps along either path "
    "(undefined when that allowance exceeds 1e-2 or NGD leaves the finite numbers: α near 1 "
    "can saturate the model). The o(α) reading fits log(one-step gap) against log α over 7 "
    "values in [1e-3, 1] (holds when every one-step gap is within the allowance).",
)


# --- claim:T.hessian_conditioning -----------------------------------------------------------

SADDLE_KINDS = ("simple", "rotated", "random", "nd")
MLP_STATIONARY = {"n_samples": 20, "widths": (3, 4, 2), "activation": "tanh", "loss": "ce",
                  "l2": 1e-2}


def saddle_points(built) -> list[np.ndarray]:
    """x = 0 and, with gamma > 0, ±sqrt(−lambda_i/gamma) v_i for every negative lambda_i of A."""
    points = [np.zeros(built.dim)]
    if built.quartic > 0.0:
        lam, V = np.linalg.eigh(built.A)
        for i in np.flatnonzero(lam < 0.0):
            r = math.sqrt(-lam[i] / built.quartic)
            points += [r * V[:, i], -r * V[:, i]]
    return points


@cache
def mlp_stationary(seed: int) -> tuple[Problem, dict[str, np.ndarray]]:
    """A small tanh/ce MLP with ridge: L-BFGS from its initial point, then Newton steps."""
    built = make("prob:mlp", seed, **MLP_STATIONARY)
    like = built.init_params(np.random.default_rng([seed, 331]))

    def fun(x):
        params = unflatten(x, like)
        return built.loss(params), flatten(built.grad(params))

    x = scipy.optimize.minimize(fun, flatten(like), jac=True, method="L-BFGS-B",
                                options={"gtol": 1e-12, "maxiter": 2000}).x
    for _ in range(5):
        params = unflatten(x, like)
        x = x - np.linalg.lstsq(built.hessian(params), flatten(built.grad(params)), rcond=None)[0]
    return built, unflatten(x, like)


def stationary_point(case: Mapping[str, Any]) -> tuple[Problem, dict[str, np.ndarray], str]:
    """(problem, params at a stationary point, label) of the case."""
    if case["arm"] == "mlp":
        built, params = mlp_stationary(case["seed"])
        return built, params, "mlp minimiser"
    built = make("prob:saddle", case["seed"], kind=case["kind"], dim=case["dim"],
                 n_neg=min(case["n_neg"], case["dim"]), phi=case["phi"])
    points = saddle_points(built)
    index = case["point"] % len(points)
    return built, {"x": points[index]}, f"saddle {case['kind']} point {index}"


def classify(lam: np.ndarray, tol: float) -> str:
    if np.any(np.abs(lam) <= tol):
        return "degenerate"
    return "minimum" if lam[0] > 0 else "maximum" if lam[-1] < 0 else "saddle"


def local_class(built: Problem, params: dict[str, np.ndarray], seed: int) -> str:
    """The class from f alone (no Hessian): bounded L-BFGS-B on f and on −f over the box
    x ± R, R = CLASSIFY_RADIUS max(1, ||x||), from CLASSIFY_STARTS random points of the box;
    "descends" when f drops below f(x) − 1e-12 max(1, |f(x)|), "ascends" likewise; saddle
    if both, minimum / maximum if one, flat if neither."""
    x = flatten(params)
    R = CLASSIFY_RADIUS * max(1.0, float(np.linalg.norm(x)))
    starts = x + R * np.random.default_rng([seed, 332]).uniform(-1, 1, (CLASSIFY_STARTS, x.size))
    fx = built.loss(params)
    tol = 1e-12 * max(1.0, abs(fx))

    def best(sign: float) -> float:
        def fun(y):
            p = unflatten(y, params)
            return sign * built.loss(p), sign * flatten(built.grad(p))

        return min(scipy.optimize.minimize(fun, s, jac=True, method="L-BFGS-B",
                                           bounds=list(zip(x - R, x + R, strict=True)),
                                           options={"maxiter": 50}).fun for s in starts)

    descends, ascends = best(1.0) < fx - tol, -best(-1.0) > fx + tol
    return {(True, True): "saddle", (False, True): "minimum", (True, False): "maximum",
            (False, False): "flat"}[(descends, ascends)]


@cached
def conditioning_context(case: Mapping[str, Any]) -> dict[str, Any]:
    built, params, label = stationary_point(case)
    H = built.hessian(params)
    lam, sv = np.linalg.eigvalsh(H), np.linalg.svd(H, compute_uv=False)
    scale = max(1.0, float(sv[0]))
    return {
        "point": label,
        "grad_norm": float(np.linalg.norm(flatten(built.grad(params)))),
        "scale": scale,
        "lam": lam,
        "sv": sv,
        "hessian_class": classify(lam, H.shape[0] * EPS * scale),
        "local_class": local_class(built, params, case["seed"]),
    }


def _ratios(ctx: Context) -> Evaluation:
    lam, sv = ctx["lam"], ctx["sv"]
    detail = {"point": ctx["point"], "eigenvalues": lam.tolist(),
              "signed_ratio_lambda_max_over_lambda_min": float(lam[-1] / lam[0])
              if lam[0] != 0 else None}
    if sv[-1] <= sv.size * EPS * sv[0]:
        return undefined("singular Hessian: σ_max/σ_min is infinite", **detail)
    kappa = float(sv[0] / sv[-1])
    abs_lam = np.abs(lam)
    ev = compare(kappa, float(abs_lam.max() / abs_lam.min()), inverse_rtol(sv.size, kappa))
    return Evaluation(ev.ok, ev.discrepancy, {**ev.detail, **detail, "sigma_ratio": kappa})


def _classifies(ctx: Context) -> Evaluation:
    if ctx["hessian_class"] == "degenerate":
        return undefined("degenerate stationary point: a zero eigenvalue leaves the class to "
                         "higher derivatives", local_class=ctx["local_class"])
    return predicate(ctx["hessian_class"] == ctx["local_class"], 0.0, point=ctx["point"],
                     hessian_class=ctx["hessian_class"], local_class=ctx["local_class"])


hessian_conditioning = Claim(
    id="claim:T.hessian_conditioning",
    source="002 §2.1.3 (Multivariate Calculus)",
    statement="the Hessian can be used to classify stationary points as saddles, minima, or "
    "maxima and measures the conditioning of these stationary points as the ratio of the "
    "largest and smallest singular values",
    cases=st.one_of(
        st.fixed_dictionaries({
            "arm": st.just("saddle"),
            "kind": st.sampled_from(SADDLE_KINDS),
            "dim": st.integers(min_value=2, max_value=5),
            "n_neg": st.integers(min_value=1, max_value=5),
            "phi": st.sampled_from((0.0, 30.0, 60.0, 90.0)),
            "point": st.integers(min_value=0, max_value=9),
            "seed": st.integers(min_value=0, max_value=2**16),
        }),
        st.fixed_dictionaries({"arm": st.just("mlp"), "seed": st.integers(0, 2)}),
    ),
    context=conditioning_context,
    hypotheses=(Hypothesis("a stationary point (‖∇f‖ ≤ 1e-8 max(1, ‖H‖₂))",
                           lambda c: c["grad_norm"] <= STATIONARY * c["scale"]),),
    relations=(
        Relation("conditioning σ_max/σ_min of H equals max|λ|/min|λ| (H symmetric)", _ratios),
        Relation("the signs of H's eigenvalues classify the point as f does locally",
                 _classifies),
    ),
    thresholds={"stationary": STATIONARY, "classify_radius": CLASSIFY_RADIUS,
                "classify_starts": CLASSIFY_STARTS,
                "rtol": f"{RTOL} + {ROUNDOFF} n κ eps"},
    nature="record",
    examples=({"arm": "saddle", "kind": "nd", "dim": 3, "n_neg": 2, "phi": 30.0, "point": 1,
               "seed": 0}, {"arm": "mlp", "seed": 0}),
    note="A definition ('measures the conditioning as'): recorded. Computed at stationary "
    "points of prob:saddle (simple, rotated, random and nd kinds, d ≤ 5: x = 0 and, with the "
    "quartic term, ±√(−λ_i/γ) v_i for every negative λ_i of A) and at a minimiser of a small "
    "W1-like MLP (prob:mlp 3-4-2 tanh, ce, l2 = 1e-2, N = 20: L-BFGS then 5 Newton steps; W1 "
    "itself scaled down to it): singular values and eigenvalues of the exact Hessian, the ratio "
    "σ_max/σ_min against max|λ|/min|λ| (undefined at a singular H), the signed λ_max/λ_min in "
    "the details, and the class from the eigenvalue signs against the class from f alone "
    "(L-BFGS-B, 50 iterations, on f and on −f in the box x ± 1e-3 max(1, ‖x‖) from 2 random "
    "points of it: saddle when both f and −f drop below their value at x by more than 1e-12 "
    "max(1, |f(x)|)).",
)


# --- claim:T.kron_identities ----------------------------------------------------------------

FACTOR_KINDS = ("spd", "general", "singular")
KRON_MLP = {"n_samples": 24, "widths": (3, 4, 3), "activation": "tanh", "loss": "ce"}


def random_factor(kind: str, n: int, log10_kappa: float, rng: np.random.Generator) -> np.ndarray:
    """SPD (Q diag(lam) Qᵀ), general invertible (U diag(s) Vᵀ), or SPD with lambda_min = 0."""
    lam = np.sort(10.0 ** rng.uniform(0.0, log10_kappa, n))
    if kind == "general":
        return random_orthogonal(n, rng) @ np.diag(lam) @ random_orthogonal(n, rng)
    if kind == "singular":
        lam[0] = 0.0
    return symmetric(lam, random_orthogonal(n, rng))


def kron_random_context(case: Mapping[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng([case["seed"], 341])
    m, n, kind = case["m"], case["n"], case["kind"]
    A = random_factor(kind, m, case["log10_kappa"], rng)
    B = random_factor(kind, n, case["log10_kappa"], rng)
    Gs = rng.standard_normal((case["T"], m, n))
    return {"A": A, "B": B, "G_r": np.einsum("tij,tkj->ik", Gs, Gs),
            "G_c": np.einsum("tji,tjk->ik", Gs, Gs), "symmetric": kind != "general"}


@cache
def kron_mlp(seed: int, stage: str) -> tuple[Problem, dict[str, np.ndarray]]:
    built = make("prob:mlp", seed, **KRON_MLP)
    params = built.init_params(np.random.default_rng([seed, 342]))
    for _ in range(100 if stage == "trained" else 0):
        grads = built.grad(params)
        params = {k: v - 1.0 * grads[k] for k, v in params.items()}
    return built, params


def vec_order(params: Mapping[str, np.ndarray], layer: int) -> np.ndarray:
    """Flat indices of layer ``layer``'s θ_i = [W_i | b_i] in column-major vec order, so that
    vec(s h̄ᵀ) = h̄ ⊗ s (002 Eq. (17)) indexes the flat parameter vector."""
    keys = list(params)
    offset = sum(params[k].size for k in keys[: 2 * layer])
    out, inp = params[keys[2 * layer]].shape
    rows, cols = np.meshgrid(np.arange(out), np.arange(inp + 1), indexing="ij")
    flat = np.where(cols < inp, offset + rows * inp + cols, offset + out * inp + rows)
    return flat.T.reshape(-1)  # column-major: column j, then row i


def kron_mlp_context(case: Mapping[str, Any]) -> dict[str, Any]:
    built, params = kron_mlp(case["seed"], case["stage"])
    layer, N = case["layer"], built.num_samples()
    idx = vec_order(params, layer)
    h_bar = built.layer_stats(params)[layer]["h_bar"]
    out = built.widths[layer + 1]
    if case["labels"] == "data":
        grads, weights = built.per_sample_grads(params)[:, None, idx], np.ones((N, 1))
        F = built.fisher_emp(params)[np.ix_(idx, idx)]
    else:
        grads = np.stack([built.per_sample_grads(params, labels=np.full(N, c))[:, idx]
                          for c in range(num_classes(built))], axis=1)
        weights, F = np.exp(log_probs(built, params)), built.fisher_true(params)[np.ix_(idx, idx)]
    s = grads[:, :, -out:]  # the bias column of s h̄ᵀ is s (h̄ ends with 1)
    S = np.einsum("nc,nci,ncj->ij", weights, s, s) / N
    # the per-sample gradient matrices s h̄ᵀ (out, in+1), from their column-major vec
    g_mats = grads.reshape(N, grads.shape[1], h_bar.shape[1], out).transpose(0, 1, 3, 2)
    w = np.sqrt(weights)[:, :, None, None] * g_mats
    return {
        "A": h_bar.T @ h_bar / N, "B": S,
        "G_r": np.einsum("ncij,nckj->ik", w, w), "G_c": np.einsum("ncji,ncjk->ik", w, w),
        "symmetric": True, "F_block": F, "H_block": built.hessian(params)[np.ix_(idx, idx)],
        "vec_grads": grads, "weights": weights,
    }


@cached
def kron_context(case: Mapping[str, Any]) -> dict[str, Any]:
    ctx = kron_random_context(case) if case["arm"] == "random" else kron_mlp_context(case)
    if ctx["symmetric"]:
        lam_H, Q_H = np.linalg.eigh(ctx["A"])
        lam_S, Q_S = np.linalg.eigh(ctx["B"])
        ctx.update(Q=np.kron(Q_H, Q_S), Lam=np.kron(lam_H, lam_S))
    return ctx


def _inverse_identity(left: str, right: str) -> Callable[[Context], Evaluation]:
    """(X ⊗ Y)⁻¹ = X⁻¹ ⊗ Y⁻¹ for the context's factors ``left``, ``right``."""

    def check(ctx: Context) -> Evaluation:
        X, Y = ctx[left], ctx[right]
        kappa = condition(X) * condition(Y)
        rtol = inverse_rtol(X.shape[0] * Y.shape[0], kappa)
        detail = {"kappa": kappa, "shapes": [list(X.shape), list(Y.shape)]}
        if not math.isfinite(kappa) or rtol > ILL_POSED:
            return undefined("singular factor (or too ill-conditioned for float64): the "
                             "inverse is undefined", **detail)
        ev = compare(np.linalg.inv(np.kron(X, Y)), np.kron(np.linalg.inv(X), np.linalg.inv(Y)),
                     rtol)
        return Evaluation(ev.ok, ev.discrepancy, {**ev.detail, **detail})

    return check


def _symmetric_only(fn: Callable[[Context], Evaluation]) -> Callable[[Context], Evaluation]:
    def check(ctx: Context) -> Evaluation:
        if not ctx["symmetric"]:
            return undefined("EK-FAC factors are covariances: this case's factors are not "
                             "symmetric")
        return fn(ctx)

    return check


def printed_ekfac(ctx: Context) -> np.ndarray:
    """(Q_H ⊗ Q_S)(Λ_H ⊗ Λ_S)(Q_H ⊗ Q_S)ᵀ (002 §2.4.3, EK-FAC display)."""
    return ctx["Q"] @ np.diag(ctx["Lam"]) @ ctx["Q"].T


def george_ekfac(ctx: Context) -> np.ndarray:
    """George et al. (2018): the same eigenbasis with the diagonal refitted to the second moments
    of the projected per-sample gradients, s* = E[((Q_H ⊗ Q_S)ᵀ vec g)²]."""
    proj = ctx["vec_grads"] @ ctx["Q"]
    N = proj.shape[0]
    s_star = np.einsum("nc,ncp->p", ctx["weights"], proj**2) / N
    return ctx["Q"] @ np.diag(s_star) @ ctx["Q"].T


def _printed_is_kfac(ctx: Context) -> Evaluation:
    A, B = ctx["A"], ctx["B"]
    return compare(printed_ekfac(ctx), np.kron(A, B), inverse_rtol(A.shape[0] * B.shape[0], 1.0))


def _eigenbasis_inverse(ctx: Context) -> Evaluation:
    lam = ctx["Lam"]
    kappa = condition(np.kron(ctx["A"], ctx["B"]))
    rtol = inverse_rtol(lam.size, kappa)
    if not math.isfinite(kappa) or rtol > ILL_POSED or np.any(lam <= 0.0):
        return undefined("H ⊗ S singular: Λ_H ⊗ Λ_S has a zero on its diagonal", kappa=kappa)
    inverse = ctx["Q"] @ np.diag(1.0 / lam) @ ctx["Q"].T
    return compare(inverse, np.linalg.inv(np.kron(ctx["A"], ctx["B"])), rtol)


def _fidelity(ctx: Context) -> Evaluation:
    if "F_block" not in ctx:
        return undefined("random factors: no exact Fisher (the prob:mlp arm evaluates this)")
    printed, george = printed_ekfac(ctx), george_ekfac(ctx)
    ev = compare(ctx["F_block"], printed, APPROX)
    return Evaluation(ev.ok, ev.discrepancy, {
        **ev.detail,
        "george2018_to_F": gap(ctx["F_block"], george),
        "printed_to_hessian_block": gap(ctx["H_block"], printed),
        "george2018_to_hessian_block": gap(ctx["H_block"], george),
        "F_to_hessian_block": gap(ctx["H_block"], ctx["F_block"]),
    })


kron_identities = Claim(
    id="claim:T.kron_identities",
    source="002 §2.4.3 (K-FAC and Its Extensions; Shampoo-Based Approaches)",
    statement="\"(A ⊗ B)⁻¹ = A⁻¹ ⊗ B⁻¹\"; Shampoo \"(G_r ⊗ G_c)⁻¹ = G_r⁻¹ ⊗ G_c⁻¹\"; EK-FAC: "
    "H = Q_HΛ_HQ_Hᵀ, S = Q_SΛ_SQ_Sᵀ, \"F̂ ≈ (Q_H⊗Q_S)(Λ_H⊗Λ_S)(Q_H⊗Q_S)ᵀ, and its inversion "
    "is straightforward since the Kronecker product of the eigenvalue matrices is diagonal\"",
    cases=st.one_of(
        st.fixed_dictionaries({
            "arm": st.just("random"),
            "m": st.integers(min_value=1, max_value=5),
            "n": st.integers(min_value=1, max_value=5),
            "kind": st.sampled_from(FACTOR_KINDS),
            "log10_kappa": st.floats(min_value=0.0, max_value=4.0),
            "T": st.integers(min_value=1, max_value=6),
            "seed": st.integers(min_value=0, max_value=2**16),
        }),
        st.fixed_dictionaries({
            "arm": st.just("mlp"),
            "layer": st.sampled_from((0, 1)),
            "stage": st.sampled_from(("init", "trained")),
            "labels": st.sampled_from(("data", "model")),
            "seed": st.integers(min_value=0, max_value=2),
        }),
    ),
    context=kron_context,
    relations=(
        Relation("(A ⊗ B)⁻¹ = A⁻¹ ⊗ B⁻¹", _inverse_identity("A", "B")),
        Relation("Shampoo: (G_r ⊗ G_c)⁻¹ = G_r⁻¹ ⊗ G_c⁻¹", _inverse_identity("G_r", "G_c")),
        Relation("EK-FAC printed form (Q_H⊗Q_S)(Λ_H⊗Λ_S)(Q_H⊗Q_S)ᵀ = H ⊗ S",
                 _symmetric_only(_printed_is_kfac)),
        Relation("its inversion in the eigenbasis: (Q_H⊗Q_S)(Λ_H⊗Λ_S)⁻¹(Q_H⊗Q_S)ᵀ = (H ⊗ S)⁻¹",
                 _symmetric_only(_eigenbasis_inverse)),
        Relation("F̂ ≈ the printed form, F̂ the exact Fisher block of a prob:mlp layer",
                 _fidelity),
    ),
    thresholds={"rtol": f"{RTOL} + {ROUNDOFF} n κ eps", "ill_posed": ILL_POSED,
                "approx_frobenius": APPROX},
    examples=({"arm": "random", "m": 3, "n": 2, "kind": "spd", "log10_kappa": 2.0, "T": 2,
               "seed": 0},
              {"arm": "mlp", "layer": 1, "stage": "trained", "labels": "model", "seed": 0}),
    note="Random arm: factors of size ≤ 5 (SPD, general invertible, SPD with a zero eigenvalue; "
    "condition up to 1e4), Shampoo's G_r = Σ_t G_tG_tᵀ, G_c = Σ_t G_tᵀG_t from T ≤ 6 Gaussian "
    "G_t ∈ ℝ^{m×n}. prob:mlp arm: a 3-4-3 tanh ce network (N = 24) at init and after 100 "
    "full-batch GD steps, layer 0 or 1, H = E[h̄h̄ᵀ] (layer_stats), S = E[ssᵀ] with the data "
    "labels or with y ∼ p_θ (exact over the classes), Shampoo's G_r, G_c from the per-sample "
    "gradient matrices s h̄ᵀ, and F̂ the exact block (fisher_emp or fisher_true, mean) of the "
    "layer in column-major vec order (vec(sh̄ᵀ) = h̄ ⊗ s). Identities through inverses: "
    "rtol = 1e-10 + 10 n κ eps (undefined when κ is infinite or the allowance exceeds 1e-2). "
    "'≈': relative Frobenius gap ≤ 0.1; the details add the gap of George et al.'s (2018) "
    "eigenvalue-corrected form (the diagonal refitted in the same eigenbasis; rule:kf.ekfac is "
    "not registered yet, so it is computed here) and of both forms and F̂ to the layer's "
    "Hessian block ('fidelity to the true Hessian').",
)

CLAIMS: dict[str, Claim] = {
    claim.id: claim
    for claim in (cov_psd, ggn_psd, fim_chain, ngd_reparam, hessian_conditioning,
                  kron_identities)
}
