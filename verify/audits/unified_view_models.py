"""Audits of the unified view that need trained models, and the model arm of its search space.

Source: 000_4a249e1305656390.txt §1 (001_7b413654114c5cca.txt prints the same statements here).
Claims (INVENTORY §4.1.A): ``claim:U.ngd_equivalences``, ``claim:U.kl_metric``,
``claim:U.ef_quality`` and ``claim:U.spectrum``. The one-step claims of
`verify.audits.unified_view_onestep` draw part of their cases from `curvature_cases` here: the
H, F or G of ``prob:softmax`` / ``prob:W1`` at initialisation and after training, restricted to
a random set S of n <= 12 coordinates (the curvature of f as a function of those coordinates,
the others held fixed), with the real loss f for the "actual decrease".

Models and training (deterministic, seed 0): full-batch gradient descent on the reference
problems (plain NumPy steps, the exact gradient), checkpoints "init", "mid", "end". prob:W1 uses
its 256-sample subset, so its dense Hessian (P = 3466) stays tractable; every dense matrix is
computed once per process (`matrix`, cached on its primitive key).

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

import reference
from reference.oracle import Oracle
from reference.problems.base import Problem
from reference.tree import Tree, flatten, unflatten
from verify.audits.framework import (
    Claim,
    Evaluation,
    Hypothesis,
    Relation,
    compare,
    predicate,
    undefined,
)
from verify.strategies import SEEDS

Context = Mapping[str, Any]

# --- thresholds (INVENTORY §0.4 item 4: written before anything runs) -----------------------

RTOL = 1e-10  # exact float64 algebra (F = G are two exact routes to one matrix)
APPROX_FROBENIUS = 0.1  # "≈" of matrices: ||A - B||_F / max(||A||_F, ||B||_F) <= 0.1
APPROX_ANGLE_DEG = 10.0  # "almost identical" directions: angle <= 10 degrees ...
APPROX_DIRECTION = 0.1  # ... and ||d1 - d2|| / max(||d1||, ||d2||) <= 0.1
APPROX_KL = 0.1  # "KL ≈ rhs": |KL - rhs| / max(KL, rhs) <= 0.1
SLOPE_TOL = 0.1  # "same scaling in s": fitted log-log exponents within 0.1
GOOD_FISHER = 0.1  # "F~ a good approximation of F": ||F~ - F||_F / ||F||_F <= 0.1
WELL_LEARNED_LOSS = 0.1  # "f well-learned": mean training cross-entropy <= 0.1 nats, or ...
CONVERGED = 1e-3  # ... (reading) a fit of a well-specified model: ||grad f|| <= 1e-3, clean labels
PSD_TOL = 1e-10  # "M ⪰ 0": lambda_min(M) >= -1e-10 lambda_max(M) (rounding of dense M)
MOST = 0.5  # "most eigenvalues": a fraction > 1/2
NEAR_ZERO = 1e-3  # "near 0": |lambda| <= 1e-3 lambda_max
LARGE = 0.1  # "large": lambda >= 0.1 lambda_max ...
FEW = 0.05  # ... and "a few": at most 5% of them
TOP_K = 10  # top-k mass: sum of the 10 largest eigenvalues / sum |lambda|
HIGH_KAPPA = 1e4  # "high condition number" of the positive part (lambda > PSD_TOL lambda_max)

SEED = 0
STAGES = ("init", "mid", "end")
FLIP_FRACTION = 0.2  # label-flipped data: 20% of the labels moved to another class
WELL_SPECIFIED = ("logreg", "softmax")  # labels drawn from a logistic / Gaussian-mixture law
DIRECTION_COORDINATES = 256  # Newton/NGD directions of larger models: on this many coordinates
S_GRID = 10.0 ** np.linspace(-4.0, 0.0, 9)  # step lengths s of claim:U.kl_metric's fit


class Model(NamedTuple):
    """A problem builder and its training run: ``make`` keywords, GD step size and steps."""

    problem_id: str
    make: Mapping[str, Any]
    lr: float
    steps: int


MODELS = {
    "softmax": Model("prob:softmax", {"n_samples": 128, "dim": 4, "classes": 3}, 0.9, 2000),
    "mlp": Model("prob:mlp", {"n_samples": 64, "widths": (4, 8, 3)}, 1.0, 400),
    "logreg": Model("prob:logreg", {"n_samples": 200, "dim": 5}, 2.0, 400),
    "W1": Model("prob:W1", {"n_samples": 256, "activation": "tanh"}, 0.5, 100),
}
MATRICES = {"H": "hessian", "F": "fisher_true", "G": "ggn", "F_emp": "fisher_emp"}


# --- models, training runs and their dense curvatures (cached per process) ------------------


@cache
def problem(name: str, labels: str = "clean") -> Problem:
    """The model's reference problem; ``labels="flipped"`` moves FLIP_FRACTION of the labels."""
    model = MODELS[name]
    built = reference.problems.get(model.problem_id).make(np.random.default_rng(SEED), **model.make)
    return built if labels == "clean" else flipped(built)


def flipped(built: Problem) -> Problem:
    """The same problem with round(FLIP_FRACTION N) labels, at random rows, set to another class."""
    spec = built.spec()
    y, classes = np.asarray(spec["y"]).copy(), num_classes(built)
    rng = np.random.default_rng([SEED, 1])
    rows = rng.choice(y.size, size=round(FLIP_FRACTION * y.size), replace=False)
    y[rows] = (y[rows] + rng.integers(1, classes, size=rows.size)) % classes
    return type(built)(**{**spec, "y": y})


def num_classes(built: Problem) -> int:
    return 2 if built.loss_name == "bce" else built.widths[-1]


@cache
def trajectory(name: str, labels: str = "clean") -> dict[str, dict[str, np.ndarray]]:
    """Parameters at the checkpoints of full-batch GD, theta <- theta - lr grad f(theta)."""
    model, built = MODELS[name], problem(name, labels)
    params = built.init_params(np.random.default_rng([SEED, 2]))
    saved = {}
    for step in range(model.steps):
        if step in (0, model.steps // 2):
            saved["init" if step == 0 else "mid"] = params
        grads = built.grad(params)
        params = {k: v - model.lr * grads[k] for k, v in params.items()}
    return {**saved, "end": params}


@cache
def matrix(name: str, labels: str, stage: str, kind: str) -> np.ndarray:
    """Dense H, F (true, exact over classes), G or F_emp at a checkpoint."""
    return getattr(problem(name, labels), MATRICES[kind])(trajectory(name, labels)[stage])


@cache
def gradient(name: str, labels: str, stage: str) -> np.ndarray:
    return flatten(problem(name, labels).grad(trajectory(name, labels)[stage]))


def log_probs(built: Problem, params: Tree) -> np.ndarray:
    """log p_theta(c | x_n), shape (N, C): minus the per-sample loss at label c (l2 = 0 here)."""
    N, classes = built.num_samples(), num_classes(built)
    return -np.stack(
        [built.per_sample_losses(params, labels=np.full(N, c)) for c in range(classes)], axis=1
    )


@cache
def fit(name: str, labels: str, stage: str) -> dict[str, float]:
    """Training loss and accuracy (argmax of p_theta against the data labels) at a checkpoint."""
    built, params = problem(name, labels), trajectory(name, labels)[stage]
    y = np.asarray(built.spec()["y"]).astype(int)
    return {
        "loss": built.loss(params),
        "accuracy": float(np.mean(np.argmax(log_probs(built, params), axis=1) == y)),
    }


class CoordinateBlock(Problem):
    """f as a function of the coordinates S of flatten(params), the others held fixed.

    Its parameters are {"x": theta[S]}; its Hessian is H[S][:, S] (same for G and F).
    """

    def __init__(self, base: Problem, params: Tree, S: np.ndarray) -> None:
        self.base, self.params, self.S, self.id = base, params, S, base.id

    def _full(self, x: np.ndarray) -> dict[str, np.ndarray]:
        theta = flatten(self.params)
        theta[self.S] = x
        return unflatten(theta, self.params)

    def loss(self, params: Tree, batch: np.ndarray | None = None) -> float:
        return self.base.loss(self._full(params["x"]), batch)

    def grad(self, params: Tree, batch: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {"x": flatten(self.base.grad(self._full(params["x"]), batch))[self.S]}


# --- the model arm of the one-step search space (INVENTORY §4.1.A "Search space") -----------


def curvature_cases() -> st.SearchStrategy[dict[str, Any]]:
    """H, F or G of prob:softmax / prob:W1 at init or after training, on n random coordinates."""
    return st.fixed_dictionaries(
        {
            "source": st.just("model"),
            "model": st.sampled_from(("softmax", "W1")),
            "stage": st.sampled_from(("init", "end")),
            "curv": st.sampled_from(("H", "F", "G")),
            "n": st.integers(min_value=1, max_value=12),
            "seed": SEEDS,
        }
    )


@cache
def live_coordinates(name: str) -> np.ndarray:
    """The coordinates f depends on: some per-sample gradient entry is nonzero at init (W1's
    weights of the always-zero digit pixels are excluded: f is constant along them)."""
    built = problem(name)
    G = built.per_sample_grads(trajectory(name)["init"])
    return np.flatnonzero(np.any(G != 0.0, axis=0))


def block_context(case: Mapping[str, Any]) -> dict[str, Any]:
    """The curvature block K = M[S][:, S], gradient g[S], theta[S] and the real loss on S, for
    n random `live_coordinates` S.

    ``f_convex``: the softmax cross-entropy is convex in its parameters (log-sum-exp of affine
    functions); the tanh network of prob:W1 is not.
    """
    name, stage = case["model"], case["stage"]
    params = trajectory(name)[stage]
    theta, live = flatten(params), live_coordinates(name)
    rng = np.random.default_rng(case["seed"])
    S = np.sort(rng.choice(live, size=min(case["n"], live.size), replace=False))
    return {
        "H": matrix(name, "clean", stage, case["curv"])[np.ix_(S, S)],
        "g": gradient(name, "clean", stage)[S],
        "theta": theta[S],
        "loss_problem": CoordinateBlock(problem(name), params, S),
        "f_convex": name == "softmax",
    }


# --- shared relation helpers ----------------------------------------------------------------


def defined(fn):
    """``fn(ctx)``, or the context's reason why its quantities are undefined."""

    def check(ctx: Context) -> Evaluation:
        return undefined(ctx["undefined"]) if "undefined" in ctx else fn(ctx)

    return check


def failure(what: str, error: Exception) -> str:
    """A rule's error as an undefined-reason, numbers masked: one reason per kind of failure."""
    return f"{what}: " + re.sub(r"[-+]?\d+(\.\d*)?(e[-+]?\d+)?", "#", str(error))


def angle_degrees(u: np.ndarray, v: np.ndarray) -> float:
    cosine = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(float(np.clip(cosine, -1.0, 1.0))))


def extreme_eigenvalues(M: np.ndarray) -> tuple[float, float]:
    lam = np.linalg.eigvalsh(M)
    return float(lam[0]), float(lam[-1])


@cache
def direction_coordinates(name: str) -> np.ndarray:
    """All coordinates, or a fixed random set of DIRECTION_COORDINATES of them (larger models):
    the spectral relations of claim:U.ngd_equivalences use that principal block."""
    P = flatten(trajectory(name)["init"]).size
    if P <= DIRECTION_COORDINATES:
        return np.arange(P)
    return np.sort(np.random.default_rng([SEED, 3]).choice(P, DIRECTION_COORDINATES, False))


def psd(name: str, key: str) -> Relation:
    """"M ⪰ 0": lambda_min(M) >= -PSD_TOL lambda_max(M); margin lambda_min / lambda_max."""

    def check(ctx: Context) -> Evaluation:
        lo, hi = ctx["extremes"][key]
        ratio = lo / max(abs(hi), abs(lo))
        return predicate(ratio >= -PSD_TOL, ratio, lambda_min=lo, lambda_max=hi)

    return Relation(name, check)


# --- claim:U.ngd_equivalences ---------------------------------------------------------------


def equivalence_context(case: Mapping[str, Any]) -> dict[str, Any]:
    name, stage = case["model"], case["stage"]
    built = problem(name)
    M = {kind: matrix(name, "clean", stage, kind) for kind in ("H", "F", "G")}
    block = np.ix_(direction_coordinates(name), direction_coordinates(name))
    ctx: dict[str, Any] = {
        **M,
        "loss_name": built.loss_name,
        "extremes": {kind: extreme_eigenvalues(K[block]) for kind, K in M.items()},
    }
    for singular in ("raise", "pinv"):
        ctx[f"newton_{singular}"] = block_direction(case, "rule:uv.newton", "H", singular)
        ctx[f"ngd_{singular}"] = block_direction(case, "rule:uv.ngd", "F", singular)
    return ctx


def block_direction(case, rule_id: str, kind: str, singular: str) -> np.ndarray | str:
    """``rule_id`` with curvature ``kind`` on `direction_coordinates` (the step of f restricted
    to them); a reason string if it raises."""
    name, stage = case["model"], case["stage"]
    params = trajectory(name)[stage]
    S = direction_coordinates(name)
    block = CoordinateBlock(problem(name), params, S)
    oracle = Oracle(block, user_curvature=matrix(name, "clean", stage, kind)[np.ix_(S, S)])
    x = {"x": flatten(params)[S]}
    rule = reference.rules.get(rule_id)
    try:
        d, _ = rule.step({"x": gradient(name, "clean", stage)[S]}, rule.init(x), x, oracle,
                         curv="user", singular=singular)
    except ValueError as error:
        return failure(f"{rule_id} (singular={singular!r})", error)
    return d["x"]


def directions_agree(name: str, singular: str, measure: str) -> Relation:
    """Newton (K = H) vs NGD (K = F) directions: angle or relative difference."""

    def check(ctx: Context) -> Evaluation:
        newton, ngd = ctx[f"newton_{singular}"], ctx[f"ngd_{singular}"]
        reason = next((d for d in (newton, ngd) if isinstance(d, str)), None)
        if reason is not None:
            return undefined(reason)
        if measure == "angle":
            angle = angle_degrees(newton, ngd)
            return predicate(angle <= APPROX_ANGLE_DEG, APPROX_ANGLE_DEG - angle, degrees=angle)
        return compare(newton, ngd, APPROX_DIRECTION)

    return Relation(name, check)


ngd_equivalences = Claim(
    id="claim:U.ngd_equivalences",
    source='000 §1 "(Natural Gradient Descent)"',
    statement="In our setting, the FIM F equals the Newton-Gaussian matrix G, and G approximates "
    "H, namely H ≈ F = G ⪰ 0. Thus, Newton's Method and NGD are almost identical here.",
    cases=st.fixed_dictionaries(
        {"model": st.sampled_from(("softmax", "mlp", "W1")), "stage": st.sampled_from(STAGES)}
    ),
    context=equivalence_context,
    hypotheses=(
        Hypothesis(
            "our setting: discriminative network with cross-entropy loss",
            lambda c: c["loss_name"] == "ce",
        ),
    ),
    relations=(
        Relation("F = G", lambda c: compare(c["F"], c["G"], RTOL)),
        Relation("G ≈ H", lambda c: compare(c["G"], c["H"], APPROX_FROBENIUS)),
        Relation("H ≈ F", lambda c: compare(c["H"], c["F"], APPROX_FROBENIUS)),
        psd("F ⪰ 0", "F"),
        psd("G ⪰ 0", "G"),
        psd("reading: H ⪰ 0 (H ≈ F = G ⪰ 0 read for H)", "H"),
        directions_agree("Newton ≈ NGD: angle(H⁻¹g, F⁻¹g) ≤ 10°", "raise", "angle"),
        directions_agree("Newton ≈ NGD: ‖H⁻¹g − F⁻¹g‖ ≤ 0.1 max‖·‖", "raise", "difference"),
        directions_agree("reading (pseudo-inverses): angle(H⁺g, F⁺g) ≤ 10°", "pinv", "angle"),
        directions_agree("reading (pseudo-inverses): ‖H⁺g − F⁺g‖ ≤ 0.1 max‖·‖", "pinv",
                         "difference"),
    ),
    thresholds={
        "rtol_exact": RTOL,
        "approx_frobenius": APPROX_FROBENIUS,
        "approx_angle_deg": APPROX_ANGLE_DEG,
        "approx_direction": APPROX_DIRECTION,
        "psd_tol": PSD_TOL,
    },
    note="F = fisher_true (exact expectation over the model's classes), G = ggn (J^T Lambda J), "
    "H = hessian (R-operator), all dense and exact, of prob:softmax (P = 15), prob:mlp "
    "(4-8-3 tanh, P = 67) and prob:W1 (256 digits, P = 3466) at init, mid and end of full-batch "
    "GD. '≈' of matrices: relative Frobenius difference <= 0.1 (full matrices). Extreme "
    "eigenvalues (eigvalsh), recorded as the PSD margins lambda_min/lambda_max, and directions: "
    "on all coordinates for softmax and mlp, on the principal block of a fixed random set of "
    "256 coordinates for W1 (full 3466-dimensional eigendecompositions cost minutes on 2 "
    "cores; a principal block of a PSD matrix is PSD, so a negative eigenvalue there refutes "
    "M ⪰ 0, its absence is weaker evidence). Directions: "
    "rule:uv.newton (K = H) and rule:uv.ngd (K = F); printed inverses with singular='raise' "
    "(undefined when H or F is singular or indefinite), pseudo-inverses (singular='pinv', which "
    "also drops negative-curvature directions) as a labelled reading; for W1 the Newton/NGD "
    "steps of f restricted to the 256 coordinates.",
)


# --- claim:U.kl_metric ----------------------------------------------------------------------


def kl_divergence(built: Problem, params: Tree, d: np.ndarray) -> float:
    """KL[p_theta || p_theta+d] averaged over the inputs, exact for categorical outputs."""
    moved = unflatten(flatten(params) + d, params)
    log_p, log_q = log_probs(built, params), log_probs(built, moved)
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))


def unit_direction(case: Mapping[str, Any]) -> np.ndarray | str:
    """u: a Gaussian direction, or the Newton direction (singular='pinv'), normalised."""
    stage = case["stage"]
    if case["u"] == "random":
        u = np.random.default_rng(case["seed"]).standard_normal(matrix("softmax", "clean", stage,
                                                                        "H").shape[0])
    else:
        u = block_direction({"model": "softmax", "stage": stage}, "rule:uv.newton", "H", "pinv")
        if isinstance(u, str):
            return u
    return u / np.linalg.norm(u)


def loglog_slope(s: np.ndarray, values: np.ndarray) -> float:
    return float(np.polyfit(np.log(s), np.log(values), 1)[0])


def kl_context(case: Mapping[str, Any]) -> dict[str, Any]:
    stage = case["stage"]
    built, params = problem("softmax"), trajectory("softmax")[stage]
    u = unit_direction(case)
    if isinstance(u, str):
        return {"undefined": u}
    H, F = (matrix("softmax", "clean", stage, kind) for kind in ("H", "F"))
    s = 10.0 ** case["log10_s"]
    curves = {
        "KL": np.array([kl_divergence(built, params, t * u) for t in S_GRID]),
        "half_norm_H": 0.5 * S_GRID * math.sqrt(u @ H @ u),
        "half_norm_H2": 0.5 * S_GRID**2 * (u @ H @ u),
    }
    return {
        "KL": kl_divergence(built, params, s * u),
        "half_norm_H": 0.5 * math.sqrt(s * u @ H @ (s * u)),
        "half_norm_H2": 0.5 * (s * u) @ H @ (s * u),
        "half_norm_F2": 0.5 * (s * u) @ F @ (s * u),
        "slopes": {key: loglog_slope(S_GRID, value) for key, value in curves.items()},
    }


def same_exponent(name: str, key: str) -> Relation:
    def check(ctx: Context) -> Evaluation:
        gap = abs(ctx["slopes"]["KL"] - ctx["slopes"][key])
        return predicate(gap <= SLOPE_TOL, SLOPE_TOL - gap, **ctx["slopes"])

    return Relation(name, defined(check))


kl_metric = Claim(
    id="claim:U.kl_metric",
    source='000 §1 "(Natural Gradient Descent)"',
    statement="‖d‖_KL = KL[p(θ)‖p(θ+d)] ≈ ½‖d‖_H, which means Newton's method and Natural "
    "Gradient Descent have the same distance measure.",
    cases=st.fixed_dictionaries(
        {
            "stage": st.sampled_from(("init", "end")),
            "u": st.sampled_from(("random", "newton")),
            "seed": SEEDS,
            "log10_s": st.floats(min_value=-4.0, max_value=0.0),
        }
    ),
    context=kl_context,
    relations=(
        Relation("KL[p(θ)‖p(θ+d)] ≈ ½‖d‖_H (as printed, not squared)",
                 defined(lambda c: compare(c["KL"], c["half_norm_H"], APPROX_KL))),
        Relation("reading: KL ≈ ½‖d‖_H² = ½dᵀHd",
                 defined(lambda c: compare(c["KL"], c["half_norm_H2"], APPROX_KL))),
        Relation("reading: KL ≈ ½dᵀFd",
                 defined(lambda c: compare(c["KL"], c["half_norm_F2"], APPROX_KL))),
        same_exponent("KL and ½‖d‖_H scale alike in s (fitted log-log exponents)", "half_norm_H"),
        same_exponent("reading: KL and ½‖d‖_H² scale alike in s", "half_norm_H2"),
    ),
    thresholds={"approx_kl": APPROX_KL, "slope_tol": SLOPE_TOL},
    note="prob:softmax (categorical outputs, exact KL averaged over the 128 inputs; log p from "
    "the per-sample losses at every label) at init and after GD; d = s u with u a unit "
    "Gaussian direction or the unit Newton direction (rule:uv.newton, singular='pinv': the "
    "softmax H is singular), s = 10**log10_s in [1e-4, 1]. The printed right side ½‖d‖_H is "
    "evaluated literally (not squared); ½‖d‖_H² and ½dᵀFd are labelled readings (for this "
    "linear model H = F = G). Exponents: least-squares slopes of log KL and log rhs against "
    f"log s over s in {S_GRID.min():g}..{S_GRID.max():g} (9 points).",
)


# --- claim:U.ef_quality ---------------------------------------------------------------------


def fisher_context(case: Mapping[str, Any]) -> dict[str, Any]:
    name, labels, stage = case["model"], case["labels"], case["stage"]
    F, F_emp = (matrix(name, labels, stage, kind) for kind in ("F", "F_emp"))
    grad_norm = float(np.linalg.norm(gradient(name, labels, stage)))
    return {
        "relative": float(np.linalg.norm(F_emp - F) / np.linalg.norm(F)),
        "grad_norm": grad_norm,
        "well_specified_fit": bool(
            name in WELL_SPECIFIED and labels == "clean" and grad_norm <= CONVERGED
        ),
        **fit(name, labels, stage),
    }


def low_loss(ctx: Context) -> bool:
    return ctx["loss"] <= WELL_LEARNED_LOSS


def ef_relation(name: str, well_learned, converse: bool) -> Relation:
    """good := ||F~ - F||_F/||F||_F <= GOOD_FISHER; ``well_learned(ctx)`` reads "well-learned".

    Printed direction: good => well-learned; converse: well-learned => good.
    """

    def check(ctx: Context) -> Evaluation:
        good, well = ctx["relative"] <= GOOD_FISHER, well_learned(ctx)
        holds = (not well or good) if converse else (not good or well)
        return predicate(holds, GOOD_FISHER - ctx["relative"], **ctx)

    return Relation(name, check)


EF_CASES = [
    {"model": m, "labels": labels, "stage": stage}
    for m, label_sets in (("logreg", ("clean", "flipped")), ("softmax", ("clean", "flipped")),
                          ("W1", ("clean",)))
    for labels in label_sets
    for stage in STAGES
]

ef_quality = Claim(
    id="claim:U.ef_quality",
    source='000 §1 "(Natural Gradient Descent)"',
    statement="F̃ is only a good approximation of F when f is well-learned.",
    cases=st.sampled_from(EF_CASES),
    context=fisher_context,
    relations=(
        ef_relation("F̃ ≈ F only when f is well-learned (F̃ ≈ F ⇒ loss ≤ 0.1)", low_loss, False),
        ef_relation("reading (converse): loss ≤ 0.1 ⇒ F̃ ≈ F", low_loss, True),
        ef_relation("reading: F̃ ≈ F only for a converged well-specified fit",
                    lambda c: c["well_specified_fit"], False),
        ef_relation("reading: converged well-specified fit ⇒ F̃ ≈ F",
                    lambda c: c["well_specified_fit"], True),
    ),
    thresholds={
        "good_fisher_relative": GOOD_FISHER,
        "well_learned_loss": WELL_LEARNED_LOSS,
        "converged_grad_norm": CONVERGED,
    },
    examples=EF_CASES,
    note="F = fisher_true (exact over the classes), F̃ = fisher_emp (data labels), both with the "
    "loss's 1/N, on prob:logreg (bce, 200 samples) and prob:softmax (128 samples), each with the "
    f"data labels and with {FLIP_FRACTION:.0%} of them moved to another class, and on prob:W1 "
    "(256 digits), at init, mid and end of full-batch GD. '≈': ||F̃ - F||_F/||F||_F <= 0.1 "
    "(the margin recorded is 0.1 minus it). 'well-learned' as printed: training loss <= 0.1 "
    "nats; as a labelled reading: a converged fit (||grad f|| <= 1e-3) of a well-specified "
    "model (clean logreg / softmax labels), where F̃ -> F as N grows. Witness details carry "
    "the relative difference, training loss, accuracy and gradient norm.",
)


# --- claim:U.spectrum -----------------------------------------------------------------------


@cache
def hessian_eigenvalues(stage: str) -> np.ndarray:
    return np.linalg.eigvalsh(matrix("W1", "clean", stage, "H"))


def spectrum_context(case: Mapping[str, Any]) -> dict[str, Any]:
    return spectrum_facts(hessian_eigenvalues(case["stage"]))


def spectrum_facts(lam: np.ndarray) -> dict[str, Any]:
    """The measured fractions, top-k mass and kappa of ascending eigenvalues ``lam``."""
    top = float(lam[-1])
    positive = lam[lam > PSD_TOL * top]
    return {
        "positive_fraction": float(np.mean(lam > PSD_TOL * top)),
        "strictly_positive_fraction": float(np.mean(lam > 0.0)),
        "large_fraction": float(np.mean(lam >= LARGE * top)),
        "near_zero_fraction": float(np.mean(np.abs(lam) <= NEAR_ZERO * top)),
        "top_k_mass": float(np.sum(lam[-TOP_K:]) / np.sum(np.abs(lam))),
        "kappa_positive": top / float(positive.min()),
        "lambda_max": top,
        "lambda_min": float(lam[0]),
    }


def spectral(name: str, key: str, bound: float, above: bool) -> Relation:
    """value > bound (above) or value <= bound; margin value - bound (signed accordingly)."""

    def check(ctx: Context) -> Evaluation:
        margin = ctx[key] - bound if above else bound - ctx[key]
        return predicate(margin > 0 if above else margin >= 0, margin, **ctx)

    return Relation(name, check)


spectrum = Claim(
    id="claim:U.spectrum",
    source="000 §1 \"(Pure Newton's Method)\", \"(Gradient-Norm Normalized NGD)\"",
    statement="During the training of neural networks, most of H's eigenvalues are positive [9]. "
    "... In training neural networks, only a few eigenvalues are large while most of them are "
    "near 0. Thus we have a high conditional number.",
    cases=st.fixed_dictionaries({"stage": st.sampled_from(("init", "end"))}),
    context=spectrum_context,
    relations=(
        spectral("most of H's eigenvalues are positive (fraction > 1/2)", "positive_fraction",
                 MOST, True),
        spectral("only a few eigenvalues are large (≥ 0.1 λ_max: at most 5%)", "large_fraction",
                 FEW, False),
        spectral("most of them are near 0 (|λ| ≤ 1e-3 λ_max: fraction > 1/2)",
                 "near_zero_fraction", MOST, True),
        spectral("a few eigenvalues carry the mass (top-10 / Σ|λ| > 1/2)", "top_k_mass", MOST,
                 True),
        spectral("high condition number (κ of the positive part ≥ 1e4)", "kappa_positive",
                 HIGH_KAPPA, True),
    ),
    thresholds={
        "most": MOST, "near_zero": NEAR_ZERO, "large": LARGE, "few": FEW, "top_k": TOP_K,
        "high_kappa": HIGH_KAPPA, "positive_tol": PSD_TOL,
    },
    nature="qualitative",
    examples=({"stage": "init"}, {"stage": "end"}),
    note="Exact eigenvalues (eigvalsh of the dense R-operator Hessian) of prob:W1 (digits, "
    "256-sample subset, 64-32-32-10 tanh, P = 3466) at init and after 100 full-batch GD steps. "
    "'positive' means lambda > 1e-10 lambda_max (the strict fraction lambda > 0 is in the "
    "details); the vague words ('most', 'a few', 'near 0', 'high') are read with the "
    "thresholds listed, so the claim is recorded (qualitative), with the measured fractions, "
    "top-10 mass and kappa of the positive part as margins and details.",
)

CLAIMS: dict[str, Claim] = {
    claim.id: claim for claim in (ngd_equivalences, kl_metric, ef_quality, spectrum)
}
