"""Audits of the thesis's Kronecker-factor statements (INVENTORY §4.2.A, §4.2.B; source
002_7fbb3c804823113a.txt Prop. 3.3.1 ≡ A.0.1, §2.4.3, §3.1): claim:T.prop331,
claim:T.kfac_independence.

Every quantity is a reference-layer one (exact, float64): per-sample gradients
(``est:per_sample_grads``), layer statistics (``est:layer_stats``), the normalization factors
and exact Fisher blocks (``est:norm_factors``), Kronecker factors (``est:kfac_factors``), Fishers
(``est:fisher_emp``, ``est:fisher_true``) and diagonal agreement (``est:fisher_agreement``). The
norm layer's output (assertion (a)) comes from torch's own ``nn.LayerNorm``/``GroupNorm``/
``BatchNorm1d`` (float64), an independent definition. Labels: the data's ("empirical") or
``K_DRAWS`` draws y ~ p_θ per input ("sampled", seeded); an expectation E is the mean over the
inputs and draws. Sizes are scaled down for a 2-core CPU (each note says how).

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from torch.func import functional_call

import reference
from verify.audits.framework import Claim, Evaluation, Relation, compare, predicate, undefined
from verify.audits.survey_common import cached
from verify.audits.thesis_curvature import APPROX, RTOL, gap, make, scale_free_gap

Context = Mapping[str, Any]

# --- thresholds (INVENTORY §0.4 items 3-4: written before anything runs) --------------------

K_DRAWS = 4  # sampled labels: draws y ~ p_θ per input
TRAIN_STEPS, TRAIN_LR = 20, 0.5  # "trained": full-batch GD on the problem's loss
PERMUTATIONS = 999  # permutation null of the paired-sample factorization error (recorded)
SYNTH_SAMPLES = 200  # paired draws from the product measure (recorded)

EST = reference.estimators.get


# --- shared helpers ---------------------------------------------------------------------------


def relabeled(problem, y: np.ndarray):
    """The problem with labels ``y`` in place of the data's (its ``spec()`` rebuilt)."""
    return type(problem)(**{**problem.spec(), "y": y})


def label_problems(problem, params, labels: str, seed: int) -> list:
    """The data's problem ("empirical"), or K_DRAWS copies with labels y ~ p_θ ("sampled")."""
    if labels == "empirical":
        return [problem]
    rng = np.random.default_rng([seed, 331])
    return [relabeled(problem, problem.sample_labels(params, rng)) for _ in range(K_DRAWS)]


def trained(problem, params: dict[str, np.ndarray], stage: str) -> dict[str, np.ndarray]:
    for _ in range(TRAIN_STEPS if stage == "trained" else 0):
        grads = problem.grad(params)
        params = {k: v - TRAIN_LR * grads[k] for k, v in params.items()}
    return params


def offsets(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each parameter's flat indices in ``flatten(params)``, in its own shape."""
    out, start = {}, 0
    for name, value in params.items():
        out[name] = start + np.arange(np.size(value)).reshape(np.shape(value))
        start += np.size(value)
    return out


def vec_index(params: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    """Flat indices of layer ``prefix``'s θ = [W.view(out, -1) | b] in column-major vec order,
    so that vec(s h̄ᵀ) = h̄ ⊗ s (002 Eq. (17)) indexes the flat parameter vector."""
    where = offsets(params)
    W = where[f"{prefix}.weight"]
    cols = [W.reshape(W.shape[0], -1)]
    if f"{prefix}.bias" in where:
        cols.append(where[f"{prefix}.bias"][:, None])
    return np.concatenate(cols, axis=1).T.reshape(-1)


def second_moment(G: np.ndarray) -> np.ndarray:
    """(1/R) Σ_r g_r g_rᵀ of rows G (R, P)."""
    return G.T @ G / G.shape[0]


def rearrange(X: np.ndarray, m: int, k: int) -> np.ndarray:
    """The (m², k²) rearrangement of an (mk, mk) matrix that sends A ⊗ B to vec(A) vec(B)ᵀ."""
    return X.reshape(m, k, m, k).transpose(0, 2, 1, 3).reshape(m * m, k * k)


# --- claim:T.prop331 --------------------------------------------------------------------------

NORM_KINDS = ("layernorm", "groupnorm", "batchnorm_eval", "batchnorm_train")
H_SOURCES = {"pre_norm": "h", "normalized": "x_hat"}  # the statement's h, the proof's
SOURCE_NAMES = {"pre_norm": "h = pre-normalized (statement)",
                "normalized": "h = normalized (proof)"}
NORM_LAYER = "1"  # prob:normnet: Sequential(Linear, Norm, Act, Mean, Linear)
FEATURES, CLASSES = 3, 3
COUPLED = ("train-mode BatchNorm: per-sample gradients, hence E[∇∇ᵀ], are undefined (the "
           "batch statistics couple the samples)")


def divisors(C: int) -> list[int]:
    return [g for g in range(1, C + 1) if C % g == 0]


def normnet(case: Mapping[str, Any]):
    norm, _, mode = case["norm"].partition("_")
    C = case["C"]
    groups = divisors(C)[case["group_pick"] % len(divisors(C))]
    built = make("prob:normnet", [case["seed"], 330], n_samples=case["B"],
                 positions=case["T"], features=FEATURES, channels=C, classes=CLASSES,
                 norm=norm, groups=groups, bn_mode=mode or "eval",
                 activation=case["activation"])
    params = built.init_params(np.random.default_rng([case["seed"], 331]))
    return built, trained(built, params, case["stage"])


def torch_norm_output(built, params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The norm layer's output y (B, T, C) by torch's own module, float64 (002 A.0.1 (a))."""
    from torchimpl.problems.normalization import build_module

    spec = built.spec()
    D, C, K = built.widths
    module = build_module(D, C, K, spec["norm"], spec["groups"], spec["bn_mode"], spec["eps"],
                          spec["activation"], spec["bias"], spec["running_mean"],
                          spec["running_var"])
    head = module[:2]
    tensors = {k: torch.as_tensor(v) for k, v in params.items() if k.split(".")[0] in ("0", "1")}
    with torch.no_grad():
        return functional_call(head, tensors, (torch.as_tensor(built.X),)).numpy()


def source_terms(h: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """The per-source expressions of A.0.1, rows r (inputs x draws), positions x, channels c."""
    R, T, C = h.shape
    g_nu = np.einsum("rxc,rxc->rc", h, s)  # Σ_x h_x ⊙ s_x
    return {
        "g_nu": g_nu,
        "outer": second_moment(g_nu),  # E[(Σ_x h⊙s)(Σ_x' h⊙s)ᵀ]
        "hadamard": np.einsum("rxc,rxd,rxc,rxd->cd", h, h, s, s) / R,  # E[Σ_x hhᵀ ⊙ ssᵀ]
        "kron_sum": np.einsum("rxc,rxd,rxe,rxf->cedf", h, h, s, s).reshape(C * C, C * C) / R,
        "H_nu": np.einsum("rxc,rxd->cd", h, h) / (R * T),
    }


def exact_gradients(built, problems: list, params) -> dict[str, np.ndarray]:
    """∇_ν l and ∇_β l per row (separable), or the batch gradient's (1, C) (train BN)."""
    if built.coupled:
        grads = [p.grad(params) for p in problems]
        return {key: np.mean([g[f"{NORM_LAYER}.{name}"] for g in grads], axis=0)[None]
                for key, name in (("nu", "weight"), ("beta", "bias"))}
    G = np.concatenate([EST("est:per_sample_grads").fn(p, params) for p in problems])
    where = offsets(params)
    return {"nu": G[:, where[f"{NORM_LAYER}.weight"]], "beta": G[:, where[f"{NORM_LAYER}.bias"]]}


def fisher_blocks(problems: list, params) -> dict[str, np.ndarray]:
    """est:norm_factors' exact blocks at the case's labels (EF_* averaged over the draws: the
    Monte-Carlo Fisher for sampled labels) and the exact true-Fisher blocks F_*."""
    runs = [EST("est:norm_factors").fn(p, params)[NORM_LAYER] for p in problems]
    out = {k: np.mean([r[k] for r in runs], axis=0) for k in ("EF_nu", "EF_beta", "EF_nu_beta")}
    out.update({k: runs[0][k] for k in ("F_nu", "F_beta", "F_nu_beta", "F_nu_D", "H_beta")})
    return out


@cached
def prop_context(case: Mapping[str, Any]) -> dict[str, Any]:
    built, params = normnet(case)
    problems = label_problems(built, params, case["labels"], case["seed"])
    stats = [EST("est:layer_stats").fn(p, params)[NORM_LAYER] for p in problems]
    s = np.concatenate([x["s"] for x in stats])
    ctx: dict[str, Any] = {
        "coupled": built.coupled, "C": built.widths[1], "T": case["T"],
        "nu": params[f"{NORM_LAYER}.weight"], "beta": params[f"{NORM_LAYER}.bias"],
        "y": torch_norm_output(built, params), "h": stats[0]["h"], "x_hat": stats[0]["x_hat"],
        "grads": exact_gradients(built, problems, params), "g_beta": s.sum(axis=1),
        "S": np.einsum("rxc,rxd->cd", s, s) / (s.shape[0] * s.shape[1]),
        "B": case["B"],
    }
    for src, key in H_SOURCES.items():
        ctx[src] = source_terms(np.concatenate([x[key] for x in stats]), s)
    if not built.coupled:
        ctx.update(fisher_blocks(problems, params))
        ctx["outer_beta"] = second_moment(ctx["g_beta"])
    return ctx


def separable(fn: Callable[[Context], Evaluation]) -> Callable[[Context], Evaluation]:
    def check(ctx: Context) -> Evaluation:
        return undefined(COUPLED) if ctx["coupled"] else fn(ctx)

    return check


def _affine(src: str) -> Callable[[Context], Evaluation]:
    """(a) h_i = ν ⊙ h_{i−1} + β against torch's norm output."""

    def check(ctx: Context) -> Evaluation:
        h = ctx[H_SOURCES[src]]
        return compare(ctx["y"], ctx["nu"] * h + ctx["beta"], RTOL)

    return check


def _gradient(which: str, src: str | None = None) -> Callable[[Context], Evaluation]:
    """(b) ∇_ν J = Σ_x h_x ⊙ s_x or ∇_β J = Σ_x s_x, per sample (train BN: the batch
    gradient, the mean over the batch of the per-sample formula)."""

    def check(ctx: Context) -> Evaluation:
        formula = ctx[src]["g_nu"] if which == "nu" else ctx["g_beta"]
        if ctx["coupled"]:
            n_draws = formula.shape[0] // ctx["B"]
            formula = formula.sum(axis=0, keepdims=True) / (ctx["B"] * n_draws)
        return compare(ctx["grads"][which], formula, RTOL)

    return check


def _pairing(src: str) -> Callable[[Context], Evaluation]:
    """(e) read per channel: E[∇_ν∇_νᵀ] ≈ H|ν ⊙ S, the (c, c)-pairs of H|ν ⊗ S, with the
    est:fisher_agreement metrics of the candidate diagonals against the exact F_ν diagonal."""

    def check(ctx: Context) -> Evaluation:
        terms = ctx[src]
        ev = compare(ctx["EF_nu"], terms["H_nu"] * ctx["S"], APPROX)
        candidates = {"channelwise diag(H|ν)·diag(S)": np.diag(terms["H_nu"]) * np.diag(ctx["S"]),
                      "hadamard E[Σ_x h²s²]": np.diag(terms["hadamard"]),
                      "|T|·channelwise": ctx["T"] * np.diag(terms["H_nu"]) * np.diag(ctx["S"])}
        agreement = EST("est:fisher_agreement").fn(ctx["F_nu_D"], candidates)
        return Evaluation(ev.ok, ev.discrepancy, {
            **ev.detail, "scale_free_gap": scale_free_gap(ctx["EF_nu"], terms["H_nu"] * ctx["S"]),
            "agreement_with_exact_F_nu_diagonal": agreement})

    return check


def _kron_step(src: str) -> Callable[[Context], Evaluation]:
    """(e) literally: E[Σ_x (h_xh_xᵀ) ⊗ (s_xs_xᵀ)] = H|ν ⊗ S (both C² × C²)."""

    def check(ctx: Context) -> Evaluation:
        terms = ctx[src]
        lhs, rhs = terms["kron_sum"], np.kron(terms["H_nu"], ctx["S"])
        ev = compare(lhs, rhs, RTOL)
        return Evaluation(ev.ok, ev.discrepancy, {
            **ev.detail, "scale_free_gap": scale_free_gap(lhs, rhs),
            "gap_with_1/|T|_on_the_left": gap(lhs / ctx["T"], rhs),
            "norm_ratio_lhs_rhs": float(np.linalg.norm(lhs) / np.linalg.norm(rhs))})

    return check


def _dropped_cross_positions(src: str) -> Callable[[Context], Evaluation]:
    """(d) read per channel: E[(Σ_x h⊙s)(Σ_x' h⊙s)ᵀ] ≈ E[Σ_x (h_xh_xᵀ) ⊙ (s_xs_xᵀ)] (the
    terms x ≠ x' dropped)."""

    def check(ctx: Context) -> Evaluation:
        return compare(ctx["EF_nu"], ctx[src]["hadamard"], APPROX)

    return check


def _cross_block(ctx: Context) -> Evaluation:
    """(g) ν–β cross-terms excluded: [[F_ν, F_νβ], [F_βν, F_β]] ≈ its block diagonal."""
    full = np.block([[ctx["EF_nu"], ctx["EF_nu_beta"]], [ctx["EF_nu_beta"].T, ctx["EF_beta"]]])
    exact = np.block([[ctx["F_nu"], ctx["F_nu_beta"]], [ctx["F_nu_beta"].T, ctx["F_beta"]]])
    C = ctx["C"]
    mask = np.kron(np.eye(2), np.ones((C, C)))
    ev = compare(full, full * mask, APPROX)
    return Evaluation(ev.ok, ev.discrepancy, {**ev.detail,
                                              "exact_true_fisher_gap": gap(exact, exact * mask)})


def both(name: str, fn: Callable[[str], Callable[[Context], Evaluation]],
         wrap=separable) -> tuple[Relation, ...]:
    return tuple(Relation(f"{name} [{SOURCE_NAMES[src]}]", wrap(fn(src))) for src in H_SOURCES)


def _unwrapped(fn):
    return fn


prop331 = Claim(
    id="claim:T.prop331",
    source="002 Prop. 3.3.1 ≡ Prop. A.0.1 and its proof",
    statement="Let (ν_i, β_i) ∈ ℝ^{C_i} be the scale and shift parameters of a normalization "
    "layer i. The empirical KFs for the FIM approximation are H_{i−1}|ν = (1/|T_i|)Σ_{x∈T_i} "
    "h_{i−1,x}h_{i−1,x}ᵀ, H_{i−1}|β = 11ᵀ, S_i = (1/|T_i|)Σ_x s_{i,x}s_{i,x}ᵀ, where h_{i−1}, "
    "s_i ∈ ℝ^{C_i×|T_i|} represent the pre-normalized activations and gradients. Proof: (a) "
    "h_i = a_i = ν ⊙ h_{i−1} + β, h_{i−1} contains normalized activations; (b) ∇_νJ = Σ_x "
    "h_{i−1,x} ⊙ s_{i,x}, ∇_βJ = Σ_x s_{i,x}, s_i = ∇_{h_i}J; (c) E[∇_ν∇_νᵀ] = E[(Σ_x h⊙s)"
    "(Σ_x' h⊙s)ᵀ] (d) ≈ E[Σ_x (h_xh_xᵀ) ⊗ (s_xs_xᵀ)] (K-FAC independence assumption) (e) = "
    "((1/|T|)Σ_x h_xh_xᵀ) ⊗ ((1/|T|)Σ_x s_xs_xᵀ) = H|ν ⊗ S; (f) E[∇_β∇_βᵀ] = E[(Σ_x s_x)"
    "(Σ_x' s_x')ᵀ] = 11ᵀ ⊗ ((1/|T|)Σ_x s_xs_xᵀ) (Bias term factorization); (g) Cross-terms "
    "between ν and β are excluded under the diagonal block assumption.",
    cases=st.fixed_dictionaries({
        "norm": st.sampled_from(NORM_KINDS),
        "C": st.integers(min_value=2, max_value=8),
        "group_pick": st.integers(min_value=0, max_value=3),
        "T": st.integers(min_value=4, max_value=16),
        "B": st.integers(min_value=8, max_value=32),
        "activation": st.sampled_from(("tanh", "relu")),
        "stage": st.sampled_from(("init", "trained")),
        "labels": st.sampled_from(("empirical", "sampled")),
        "seed": st.integers(min_value=0, max_value=2**16),
    }),
    context=prop_context,
    relations=(
        *both("(a) h_i = ν ⊙ h_{i−1} + β (torch's norm output)", _affine, _unwrapped),
        *both("(b) ∇_νJ = Σ_x h_{i−1,x} ⊙ s_{i,x}", lambda src: _gradient("nu", src),
              _unwrapped),
        Relation("(b) ∇_βJ = Σ_x s_{i,x}", _gradient("beta")),
        *both("(c) E[∇_ν∇_νᵀ] = E[(Σ_x h⊙s)(Σ_x' h⊙s)ᵀ]",
              lambda src: lambda c: compare(c["EF_nu"], c[src]["outer"], RTOL)),
        Relation("(d) literally: E[∇_ν∇_νᵀ] ≈ E[Σ_x (h_xh_xᵀ) ⊗ (s_xs_xᵀ)]",
                 separable(lambda c: compare(c["EF_nu"], c["normalized"]["kron_sum"], APPROX))),
        *both("(d) per channel: E[∇_ν∇_νᵀ] ≈ E[Σ_x (h_xh_xᵀ) ⊙ (s_xs_xᵀ)]",
              _dropped_cross_positions),
        *both("(e) E[Σ_x (h_xh_xᵀ) ⊗ (s_xs_xᵀ)] = H|ν ⊗ S", _kron_step),
        Relation("(e) conclusion literally: E[∇_ν∇_νᵀ] ≈ H|ν ⊗ S",
                 separable(lambda c: compare(c["EF_nu"], np.kron(c["normalized"]["H_nu"],
                                                                  c["S"]), APPROX))),
        *both("(e) conclusion per channel: E[∇_ν∇_νᵀ] ≈ H|ν ⊙ S", _pairing),
        Relation("(f) E[∇_β∇_βᵀ] = E[(Σ_x s_x)(Σ_x' s_x')ᵀ]",
                 separable(lambda c: compare(c["EF_beta"], c["outer_beta"], RTOL))),
        Relation("(f) E[∇_β∇_βᵀ] = 11ᵀ ⊗ S with H|β = 11ᵀ ∈ ℝ^{1×1} (est:norm_factors)",
                 separable(lambda c: compare(c["EF_beta"], np.kron(c["H_beta"], c["S"]),
                                             RTOL))),
        Relation("(f) E[∇_β∇_βᵀ] = 11ᵀ ⊗ S with 1 ∈ ℝ^{C}",
                 separable(lambda c: compare(c["EF_beta"],
                                             np.kron(np.ones((c["C"], c["C"])), c["S"]), RTOL))),
        Relation("(g) ν–β cross-terms excluded: the [ν, β] Fisher ≈ its block diagonal",
                 separable(_cross_block)),
    ),
    thresholds={"rtol_exact": RTOL, "approx_frobenius": APPROX, "label_draws": K_DRAWS,
                "train_steps": TRAIN_STEPS, "train_lr": TRAIN_LR},
    examples=({"norm": "layernorm", "C": 4, "group_pick": 0, "T": 4, "B": 8,
               "activation": "tanh", "stage": "init", "labels": "empirical", "seed": 0},
              {"norm": "batchnorm_train", "C": 3, "group_pick": 0, "T": 4, "B": 8,
               "activation": "tanh", "stage": "init", "labels": "sampled", "seed": 0}),
    note="prob:normnet (Linear(3→C) → norm → tanh/relu → mean over positions → Linear(C→3), "
    "ce) with LayerNorm, GroupNorm (groups a divisor of C), eval-mode and train-mode "
    "BatchNorm; C ∈ [2, 8], positions 4–16, batch 8–32 (scaled down from C ≤ 16, 4×4–8×8, "
    "batch 16–128), at init and after 20 full-batch GD steps (lr 0.5). Positions x: the "
    "non-channel dims of one sample; E: the mean over inputs and label draws (sampled: 4 draws "
    "y ~ p_θ per input, seeded; empirical: the data labels); s = ∂l_n/∂(norm output), the "
    "per-sample loss (unscaled). H|ν and S as est:norm_factors: (1/(B|T|))Σ_{n,x}; E[∇∇ᵀ] "
    "are est:norm_factors' EF blocks at the case's labels (Monte-Carlo over the draws for "
    "sampled labels; the exact true-Fisher blocks are in the details). Each step that involves "
    "h is evaluated with the statement's h (pre-normalized input) and with the proof's "
    "(normalized x̂). (a): torch's own norm module's output vs ν ⊙ h + β. Train-mode BN: only "
    "(a) and (b) (as the batch gradient) are defined; the rest are recorded undefined. "
    "Literal Kronecker forms against the C × C Fisher block are ill-typed (shapes recorded); "
    "the per-channel readings take the (c, c)-pairs of the Kronecker product (a Hadamard "
    "product); '=' is decided at rtol 1e-10, '≈' at relative Frobenius gap 0.1. Candidate "
    "diagonals (channelwise diag H|ν · diag S as rule:af.adafisher's norm_rule=channelwise, "
    "without min-max; E[Σ_x h²s²]; |T| × channelwise) are compared with the exact true-Fisher "
    "diagonal by est:fisher_agreement in the details. The code_2vector form is not computed "
    "(est:norm_factors does not provide it yet).",
)


# --- claim:T.kfac_independence ----------------------------------------------------------------

MLP = {"n_samples": 32, "widths": (4, 6, 5, 3), "loss": "ce"}
W2 = {"n_samples": 16, "width": 0.125, "size": 8, "bn_mode": "eval"}
W2_LAYERS = ("0", "3", "6", "11")  # conv, conv, conv, linear head (BN layers are norm layers)
NOT_NETWORK = "synthetic (h̄, s): no network layer"
NOT_PRODUCT = "(h̄, s) not drawn independently: the stated hypothesis does not hold here"
DEAD = "a layer's gradients vanish on every sample (dead ReLU units): its Fisher block is 0"


def finite_measure(case: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A finite joint law of (h̄, s): M atoms (h̄_j = [h_j, 1], s_j) with Dirichlet weights
    ("dependent": the atoms' pairs), or the product of its two marginals ("independent")."""
    rng = np.random.default_rng([case["seed"], 332])
    M, m, k = case["M"], case["m"], case["k"]
    h = np.hstack([rng.standard_normal((M, m)) + rng.standard_normal(m), np.ones((M, 1))])
    s = rng.standard_normal((M, k)) * (1.0 + np.linalg.norm(h, axis=1, keepdims=True))
    p = rng.dirichlet(np.ones(M))
    if case["coupling"] == "dependent":
        return {"h": h, "s": s, "w": p}
    q = rng.dirichlet(np.ones(M))
    return {"h": np.repeat(h, M, axis=0), "s": np.tile(s, (M, 1)), "w": np.outer(p, q).ravel(),
            "marginals": (h, p, s, q)}


def factor_terms(h: np.ndarray, s: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """F̂ = E[h̄h̄ᵀ ⊗ ssᵀ], H, S and the cross-covariance of vec(h̄h̄ᵀ), vec(ssᵀ) under weights
    w (rows of h and s paired)."""
    A = np.einsum("ra,rb->rab", h, h).reshape(len(w), -1)
    B = np.einsum("ra,rb->rab", s, s).reshape(len(w), -1)
    F = np.einsum("r,ra,rb,rc,rd->abcd", w, h, s, h, s).reshape(h.shape[1] * s.shape[1], -1)
    a_bar, b_bar = w @ A, w @ B
    cov = ((A - a_bar) * w[:, None]).T @ (B - b_bar)
    m, k = h.shape[1], s.shape[1]
    return {"F": F, "H": a_bar.reshape(m, m), "S": b_bar.reshape(k, k), "cov": cov, "m": m, "k": k}


def permutation_null(h: np.ndarray, s: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """The factorization error of N paired draws, ‖F̂ − H ⊗ S‖/‖H ⊗ S‖ = ‖ÃᵀB̃‖/(N‖Ā‖‖B̄‖), and
    its 99.9% permutation quantile (s re-paired at random: sampling noise under independence)."""
    A = np.einsum("ra,rb->rab", h, h).reshape(len(h), -1)
    B = np.einsum("ra,rb->rab", s, s).reshape(len(s), -1)
    At, Bt = A - A.mean(axis=0), B - B.mean(axis=0)
    scale = len(h) * np.linalg.norm(A.mean(axis=0)) * np.linalg.norm(B.mean(axis=0))
    perms = np.argsort(rng.random((PERMUTATIONS, len(s))), axis=1)
    null = np.linalg.norm(np.einsum("na,pnb->pab", At, Bt[perms]), axis=(1, 2)) / scale
    return {"paired_sample_error": float(np.linalg.norm(At.T @ Bt) / scale),
            "permutation_q999": float(np.quantile(null, 0.999)), "samples": len(h)}


def synthetic_context(case: Mapping[str, Any]) -> dict[str, Any]:
    law = finite_measure(case)
    terms = factor_terms(law["h"], law["s"], law["w"])
    ctx = {"arm": "synthetic", "coupling": case["coupling"], "F_block": terms.pop("F"), **terms}
    if "marginals" in law:
        h, p, s, q = law["marginals"]
        rng = np.random.default_rng([case["seed"], 333])
        i, j = rng.choice(len(p), SYNTH_SAMPLES, p=p), rng.choice(len(q), SYNTH_SAMPLES, p=q)
        ctx["paired"] = permutation_null(h[i], s[j], rng)
    return ctx


@cache
def network(arm: str, seed: int, stage: str):
    if arm == "mlp":
        built = make("prob:mlp", [seed, 334], activation="tanh" if seed % 2 else "relu", **MLP)
    else:
        built = make("prob:W2", [seed, 334], **W2)
    params = built.init_params(np.random.default_rng([seed, 335]))
    return built, trained(built, params, stage)


def draws(built, params, labels: str, seed: int) -> np.ndarray | None:
    if labels == "empirical":
        return None
    rng = np.random.default_rng([seed, 336])
    return np.stack([built.sample_labels(params, rng) for _ in range(K_DRAWS)])


def layer_name(case: Mapping[str, Any], params: Mapping[str, np.ndarray]) -> str:
    names = (list(dict.fromkeys(n.split(".")[0] for n in params)) if case["arm"] == "mlp"
             else list(W2_LAYERS))
    return names[case["layer"] % len(names)]


def network_context(case: Mapping[str, Any]) -> dict[str, Any]:
    built, params = network(case["arm"], case["seed"], case["stage"])
    y_mc = draws(built, params, case["labels"], case["seed"])
    labels = [None] if y_mc is None else list(y_mc)
    G = np.concatenate([EST("est:per_sample_grads").fn(built, params) if y is None
                        else built.per_sample_grads(params, labels=y) for y in labels])
    name = layer_name(case, params)
    idx = vec_index(params, name)
    options = {"labels": case["labels"]} if y_mc is None else {
        "labels": "sampled", "mc_samples": K_DRAWS, "y_mc": y_mc}
    conv = np.ndim(EST("est:layer_stats").fn(built, params)[name]["h_bar"]) == 4
    kfc = EST("est:kfac_factors").fn(built, params, spatial_scaling=(
        1.0 / positions(built, params, name), 1.0) if conv else None, **options)[name]
    thesis = EST("est:kfac_factors").fn(built, params, **options)[name]
    F = second_moment(G)
    ctx = {"arm": case["arm"], "layer": name, "conv": conv, "F_block": F[np.ix_(idx, idx)],
           "H": first_group(kfc["H"]), "S": first_group(kfc["S"]),
           "thesis_HS": np.kron(first_group(thesis["H"]), first_group(thesis["S"])),
           "F_full": F, "blocks": layer_blocks(params),
           "dead": any(not np.any(F[np.ix_(i, i)]) for i in layer_indices(params))}
    if not conv:
        h_bar = EST("est:layer_stats").fn(built, params)[name]["h_bar"]
        s = G[:, idx][:, -ctx["S"].shape[0]:]  # the bias column of s h̄ᵀ is s
        terms = factor_terms(np.tile(h_bar, (len(labels), 1)), s, np.full(len(s), 1 / len(s)))
        ctx.update({key: terms[key] for key in ("cov", "m", "k")})
    return ctx


def positions(built, params, name: str) -> int:
    return EST("est:layer_stats").fn(built, params)[name]["h_bar"].shape[-2]


def first_group(M: np.ndarray) -> np.ndarray:
    """A conv layer's per-group factor (G, k, k) at G = 1, or a Linear layer's (k, k)."""
    return M[0] if M.ndim == 3 else M


def layer_indices(params: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The flat indices of each module's parameters."""
    where = offsets(params)
    names = dict.fromkeys(n.split(".")[0] for n in params)
    return [np.concatenate([where[k].ravel() for k in params if k.split(".")[0] == name])
            for name in names]


def layer_blocks(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """A (P, P) mask of the layer-diagonal blocks (a layer: the parameters of one module)."""
    P = sum(np.size(v) for v in params.values())
    mask = np.zeros((P, P), dtype=bool)
    for idx in layer_indices(params):
        mask[np.ix_(idx, idx)] = True
    return mask


@cached
def kfac_context(case: Mapping[str, Any]) -> dict[str, Any]:
    return synthetic_context(case) if case["arm"] == "synthetic" else network_context(case)


def _product_identity(ctx: Context) -> Evaluation:
    if ctx["arm"] != "synthetic":
        return undefined("network layer: (h̄, s) are not drawn independently")
    if ctx["coupling"] != "independent":
        return undefined(NOT_PRODUCT)
    ev = compare(ctx["F_block"], np.kron(ctx["H"], ctx["S"]), RTOL)
    return Evaluation(ev.ok, ev.discrepancy, {**ev.detail, **ctx["paired"]})


def network_only(fn: Callable[[Context], Evaluation]) -> Callable[[Context], Evaluation]:
    def check(ctx: Context) -> Evaluation:
        if ctx["arm"] == "synthetic":
            return undefined(NOT_NETWORK)
        return undefined(DEAD) if ctx["dead"] else fn(ctx)

    return check


@network_only
def _network_approx(ctx: Context) -> Evaluation:
    HS = np.kron(ctx["H"], ctx["S"])
    ev = compare(ctx["F_block"], HS, APPROX)
    return Evaluation(ev.ok, ev.discrepancy, {
        **ev.detail, "layer": ctx["layer"], "scale_free_gap": scale_free_gap(ctx["F_block"], HS),
        "gap_thesis_conv_scaling": gap(ctx["F_block"], ctx["thesis_HS"])})


def _cross_covariance(ctx: Context) -> Evaluation:
    """F̂ − H ⊗ S rearranged is Cov(vec h̄h̄ᵀ, vec ssᵀ): held to rtol 1e-10; the margin
    recorded is the factorization error ‖F̂ − H ⊗ S‖/max(‖F̂‖, ‖H ⊗ S‖)."""
    if ctx.get("conv"):
        return undefined("conv layer: vec g = Σ_t h̄_t ⊗ s_t sums positions (no single pair)")
    HS = np.kron(ctx["H"], ctx["S"])
    diff = rearrange(ctx["F_block"] - HS, ctx["m"], ctx["k"])
    identity = gap(diff, ctx["cov"])
    error = gap(ctx["F_block"], HS)
    scale = max(np.linalg.norm(diff), np.linalg.norm(ctx["cov"]))
    ok = identity <= RTOL or scale <= RTOL * np.linalg.norm(HS)
    return predicate(ok, error, identity_gap=identity, factorization_error=error,
                     arm=ctx["arm"], coupling=ctx.get("coupling", "network"))


@network_only
def _block_diagonal(ctx: Context) -> Evaluation:
    return compare(ctx["F_full"], ctx["F_full"] * ctx["blocks"], APPROX)


kfac_independence = Claim(
    id="claim:T.kfac_independence",
    source="002 §2.4.3 (K-FAC), §3.1",
    statement="F̂_{i,j} = E[vec(g_i)vec(g_j)ᵀ] = E[h̄_{i−1}h̄_{j−1}ᵀ ⊗ s_is_jᵀ]. Under the "
    "assumption that the activations h̄_{i−1} and the pre-activation derivatives s_i are "
    "statistically independent, this expectation can be approximated as the Kronecker product "
    "of individual expectations F̂_{i,j} ≈ E[h̄h̄ᵀ] ⊗ E[ssᵀ] … a further simplification is "
    "often made by assuming that the weight derivatives for different layers are "
    "uncorrelated. This leads to a block-diagonal approximation of the FIM",
    cases=st.one_of(
        st.fixed_dictionaries({
            "arm": st.just("synthetic"),
            "coupling": st.sampled_from(("independent", "dependent")),
            "M": st.integers(min_value=2, max_value=12),
            "m": st.integers(min_value=1, max_value=3),
            "k": st.integers(min_value=1, max_value=4),
            "seed": st.integers(min_value=0, max_value=2**16),
        }),
        st.fixed_dictionaries({
            "arm": st.sampled_from(("mlp", "W2")),
            "layer": st.integers(min_value=0, max_value=3),
            "labels": st.sampled_from(("empirical", "sampled")),
            "stage": st.sampled_from(("init", "trained")),
            "seed": st.integers(min_value=0, max_value=3),
        }),
    ),
    context=kfac_context,
    relations=(
        Relation("under independence (product measure): E[h̄h̄ᵀ ⊗ ssᵀ] = E[h̄h̄ᵀ] ⊗ E[ssᵀ]",
                 _product_identity),
        Relation("F̂_{i,i} ≈ E[h̄h̄ᵀ] ⊗ E[ssᵀ] on network layers", _network_approx),
        Relation("F̂ − H ⊗ S = the cross-covariance of vec(h̄h̄ᵀ) and vec(ssᵀ), rearranged "
                 "(margin: the factorization error)", _cross_covariance),
        Relation("block-diagonal: the Fisher ≈ its layer-diagonal blocks", _block_diagonal),
    ),
    thresholds={"rtol_exact": RTOL, "approx_frobenius": APPROX, "label_draws": K_DRAWS,
                "permutations": PERMUTATIONS, "paired_samples": SYNTH_SAMPLES},
    examples=({"arm": "synthetic", "coupling": "independent", "M": 3, "m": 2, "k": 2,
               "seed": 0},
              {"arm": "mlp", "layer": 1, "labels": "sampled", "stage": "init", "seed": 0}),
    note="Synthetic arm: a finite law of (h̄ = [h, 1], s) on M ≤ 12 atoms (h ∈ ℝ^{≤3}, s ∈ "
    "ℝ^{≤4}, s scaled by 1 + ‖h̄‖), exact expectations: 'dependent' pairs the atoms, "
    "'independent' is the product of the two marginals (the factorization is then an identity "
    "in exact arithmetic; the details add the error of 200 paired draws from it and its 99.9% "
    "permutation quantile, i.e. the sampling noise). Network arm: prob:mlp 4-6-5-3 "
    "(relu/tanh by seed, ce, N = 32) at init and after 20 GD steps (lr 0.5), and prob:W2 at "
    "width 1/8 on 8×8 images (N = 16, eval-mode BN, channels 2/4/4; scaled down) with its "
    "three conv layers and the linear head; labels the data's or 4 draws y ~ p_θ per input. "
    "F̂_{i,i} = E[vec g vec gᵀ] from exact per-sample gradients in column-major vec order "
    "(vec(sh̄ᵀ) = h̄ ⊗ s), H, S from est:kfac_factors with the same labels; conv layers with "
    "spatial_scaling (1/|T|, 1) (H the per-position mean, S summed over positions: the "
    "Kronecker form that is exact when positions and (h̄, s) are independent); the gap with "
    "the thesis's §3.3 scaling (1/|T|, 1/|T|) is in the details. Block-diagonal: ‖F − "
    "blockdiag F‖_F/‖F‖_F over the parameter groups of each module (Fisher at the case's "
    "labels). '≈': relative Frobenius gap ≤ 0.1; identities at rtol 1e-10. A network whose "
    "training killed every unit of a layer (all its gradients 0) is recorded undefined for "
    "the network relations (0 ≈ 0 would hold vacuously).",
)

CLAIMS: dict[str, Claim] = {claim.id: claim for claim in (prop331, kfac_independence)}
