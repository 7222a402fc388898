"""Audits of the stochastic analysis of the unified view (000/001 §2; INVENTORY §4.1.B).

Every printed statement of 000 §2 "(General Update)" and of the three §2 paragraphs
"(Newton's Method)", "(Normalized Natural Gradient Descent)", "(Gradient Descent)" is one
`Relation`, evaluated literally; 001 prints two formulas differently (claim:U.renderings items
i and ii) and both renderings run as separately named relations.

Where the numbers come from (never from the document's closed forms):
- the linear map A of d_b = A g_b is the matrix of ``rule:uv.stochastic_direction`` (its update
  for every unit gradient), or a random general A;
- N_b, E||d_xi_i||^2 and Cov[d_xi] are ``est:uv_quantities`` (exact from the covariance of
  xi_b, Monte Carlo from draws); Sigma_xi is ``est:grad_noise``; minibatch moments are
  ``est:minibatch_moments`` (exact enumeration of batches, or Monte Carlo from drawn
  indices); F_b and F~_b are ``est:fisher_batch``; F, F~ and H are the problems' oracles.
Noise laws: Gaussian xi_b ~ N(0, Sigma_xi / B), the mean of B i.i.d. N(0, Sigma_xi) draws,
with Sigma_xi = kH (the document's assumption) or a random PSD matrix; or the real minibatch
noise of ``prob:quad_finite_sum`` (at its optimum, where its noise covariance is exactly
proportional to H) and ``prob:softmax``.

Decision thresholds are the module constants below, fixed before any audit ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cache, lru_cache, partial
from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy import stats

import reference
from reference.oracle import Oracle
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
from verify.strategies import SEEDS, build_curvature, curvature_cases, positive, step_sizes

Context = Mapping[str, Any]

# --- thresholds (INVENTORY §0.4 items 3-4: written before anything runs) --------------------

RTOL = 1e-10  # exact float64 algebra
# With A = alpha H^-1 or alpha H^-1/2 computed from an eigendecomposition with backward error
# O(n eps ||H||), products such as A H A^T carry a relative error O(n eps kappa(H)): exact
# relations of those maps use max(RTOL, COND_FACTOR n eps kappa(H)).
COND_FACTOR = 10.0
ALPHA_MC = 1e-3  # false-alarm rate of every Monte-Carlo-vs-exact test (Bonferroni over entries)
MC_DRAWS = 4000  # draws of xi_b per case
LOSS_DRAWS = 1000  # of them, those at which the loss is evaluated (one oracle call each)
MC_CELLS = 250_000  # draws * B * P bound of a Monte-Carlo minibatch run (time, memory) ...
MC_MIN_DRAWS = 200  # ... with at least this many draws
ENUM_BATCHES = 5_000  # exact enumeration when the batches number at most this ...
ENUM_CELLS = 2_000_000  # ... and batches * N at most this (the enumeration's count table)
EXPANSION_TOL = 0.1  # second-order expansion "≈": mean |f - q| <= 0.1 mean |q - f(theta)|
NORMALITY_LEVEL = 0.01  # Anderson-Darling, skewness and kurtosis tests of "is Gaussian"
GAUSSIAN_DRAWS = 2000  # projections of xi_b per batch size
RESIDUAL_MAX = 0.25  # "Sigma_xi ≈ kH": ||Sigma - k* H||_F / ||Sigma||_F at most this
SPREAD_MAX = 10.0  # "k ~ L(theta_t)": k*/L within a factor 10 (along training / of 1)
USUALLY = 0.5  # "usually": in at least half of the checkpoints

EPS = float(np.finfo(np.float64).eps)
A_KINDS = ("alpha_Hinv", "alpha_Hinvsqrt", "alpha_I", "general")
NAMED = A_KINDS[:3]
INVERSES = ("alpha_Hinv", "alpha_Hinvsqrt")  # the maps that get the rounding allowance
BATCH_SIZES = (1, 4, 16, 64, 512)
SAMPLINGS = ("with_replacement", "without_replacement")
# Short deterministic full-batch GD runs ("along training"): problem, step size, checkpoints.
TRAINING = {
    "softmax": {"lr": 1.0, "checkpoints": (0, 30, 300)},
    "W1": {"lr": 0.5, "checkpoints": (0, 20, 100)},
}
W1_SAMPLES = 256  # prob:W1 subset: dense Hessians stay tractable (INVENTORY §1.3)
SOFTMAX_TRAIN = {"n_samples": 512, "dim": 5, "classes": 3}

SRC = "000_4a249e1305656390.txt §2 {}; 001_7b413654114c5cca.txt §2"
GENERAL = SRC.format('"(General Update)"')


# --- generic strategies (for the lead to move into verify/strategies.py) ---------------------


def merged(*parts: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    """One primitive case from several dictionary strategies."""
    return st.tuples(*parts).map(lambda dicts: {k: v for d in dicts for k, v in d.items()})


def batch_cases(n_lo: int, n_hi: int, even: bool = False) -> st.SearchStrategy[dict[str, int]]:
    """A data-set size N in [n_lo, n_hi] (even if asked) and a batch size B in [1, N].

    B is drawn on [1, n_hi] and kept when B <= N: a ``flatmap`` on N would draw B = 1 in about
    half of the cases (Hypothesis favours the lower end of a freshly built range).
    """
    sizes = st.integers(n_lo, n_hi).map(lambda n: n + n % 2 if even else n)
    return st.fixed_dictionaries({"N": sizes, "B": st.integers(1, n_hi)}).filter(
        lambda case: case["B"] <= case["N"]
    )


# --- numerical helpers ---------------------------------------------------------------------


def _z(entries: int) -> float:
    """Two-sided normal quantile at family false-alarm rate ALPHA_MC over ``entries`` tests."""
    return float(stats.norm.isf(ALPHA_MC / (2 * entries)))


def mean_se(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo mean over axis 0 and its standard error std/sqrt(K)."""
    return draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(draws.shape[0])


def equal(lhs: Any, rhs: Any, rtol: float, floor: float = 0.0) -> Evaluation:
    """`compare` with a floor on the scale: ``||lhs - rhs|| / max(||lhs||, ||rhs||, floor)``.

    The floor is the natural magnitude of the quantities (e.g. the size of the per-sample
    gradients behind a mean that should vanish), so that a printed 0 can be compared at all.
    """
    ev = compare(lhs, rhs, rtol)
    if ev.ok is None:
        return ev
    left, right = np.asarray(lhs, dtype=float), np.asarray(rhs, dtype=float)
    scale = float(max(np.linalg.norm(left), np.linalg.norm(right), floor))
    gap = 0.0 if scale == 0.0 else float(np.linalg.norm(left - right)) / scale
    return Evaluation(bool(gap <= rtol), gap, ev.detail)


def within_ci(estimate: Any, se: Any, exact: Any, floor: float = 0.0) -> Evaluation:
    """Monte Carlo vs exact: every entry within z se (z at ALPHA_MC, Bonferroni over entries).

    The discrepancy is the largest gap in units of the allowed half-width (held iff <= 1).
    The half-width also allows RTOL (|exact| + floor): ``floor`` is the magnitude whose rounding
    the exact value carries (an entry that vanishes in exact arithmetic is computed as
    O(eps floor), e.g. the noise along a null eigenvector of H).
    """
    ev = compare(estimate, exact, math.inf)
    if ev.ok is None:
        return ev
    est, err, ref = (np.asarray(x, dtype=float) for x in (estimate, se, exact))
    z = _z(max(est.size, 1))
    width = z * err + RTOL * (np.abs(ref) + floor)
    gap = np.abs(est - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.max(np.where(gap == 0.0, 0.0, gap / width), initial=0.0))
    return Evaluation(ratio <= 1.0, ratio, {**ev.detail, "z": z})


def _uv(g, d, H, **noise) -> dict[str, Any]:
    return reference.estimators.get("est:uv_quantities")(g, d, H, **noise)


def _projector_traces(M: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """tr(M e_i e_i^T) for every column e_i of Q, evaluated as printed (with the outer product)."""
    outer = np.einsum("pi,qi->ipq", Q, Q)
    return np.trace(M @ outer, axis1=1, axis2=2)


def _rtol(kind: str, lam: np.ndarray) -> float:
    """The exact-relation tolerance of A = kind (see COND_FACTOR)."""
    if kind not in INVERSES or lam[0] <= 0.0:
        return RTOL
    return max(RTOL, COND_FACTOR * lam.size * EPS * lam[-1] / lam[0])


def _random_psd(n: int, rng: np.random.Generator) -> np.ndarray:
    """Z Z^T / r with Z (n, r) Gaussian, r uniform in [1, n]: a general PSD matrix (any rank)."""
    Z = rng.standard_normal((n, int(rng.integers(1, n + 1))))
    return Z @ Z.T / Z.shape[1]


def _gaussian_draws(Sigma: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    """K draws of N(0, Sigma) (PSD Sigma, through its eigendecomposition)."""
    lam, V = np.linalg.eigh(Sigma)
    return rng.standard_normal((K, len(lam))) @ (V * np.sqrt(np.clip(lam, 0.0, None))).T


def _batch_draws(rng, N: int, B: int, sampling: str, K: int) -> np.ndarray:
    """K batch index draws (K, B) under the sampling scheme."""
    if sampling == "with_replacement":
        return rng.integers(0, N, size=(K, B))
    return np.argsort(rng.random((K, N)), axis=1)[:, :B]


def _proportional(S: np.ndarray, H: np.ndarray) -> tuple[float, float]:
    """k* = <S, H>_F / ||H||_F^2 and the relative residual ||S - k* H||_F / ||S||_F."""
    hh = float(np.sum(H * H))
    k = float(np.sum(S * H)) / hh if hh > 0 else math.nan
    norm = float(np.linalg.norm(S))
    return k, float(np.linalg.norm(S - k * H)) / norm if norm > 0 else math.nan


# --- problems and training (cached per process) --------------------------------------------


def _problem(prob_id: str):
    return reference.problems.get(prob_id)


def _gd(problem, theta: dict[str, np.ndarray], lr: float, steps: int) -> dict[str, np.ndarray]:
    """``steps`` full-batch gradient steps theta <- theta - lr grad L(theta)."""
    for _ in range(steps):
        theta = {k: v - lr * dv for (k, v), dv in zip(theta.items(), problem.grad(theta).values(),
                                                       strict=True)}
    return theta


@lru_cache(maxsize=4)
def trajectory(source: str) -> tuple[Any, tuple[dict[str, np.ndarray], ...]]:
    """(problem, params at each checkpoint) of a seeded full-batch GD run (TRAINING)."""
    rng = np.random.default_rng(0)
    if source == "W1":
        problem = _problem("prob:W1").make(rng, n_samples=W1_SAMPLES)
    else:
        problem = _problem("prob:softmax").make(rng, **SOFTMAX_TRAIN)
    lr, checkpoints = TRAINING[source]["lr"], TRAINING[source]["checkpoints"]
    saved = [_gd(problem, problem.init_params(np.random.default_rng(1)), lr, checkpoints[0])]
    for start, stop in zip(checkpoints[:-1], checkpoints[1:], strict=True):
        saved.append(_gd(problem, saved[-1], lr, stop - start))
    return problem, tuple(saved)


@lru_cache(maxsize=8)
def hessian_at(source: str, stage: int) -> np.ndarray:
    """The exact Hessian at a checkpoint of the training run (seconds for prob:W1: cached)."""
    problem, thetas = trajectory(source)
    return problem.hessian(thetas[stage])


@lru_cache(maxsize=8)
def label_gradients(source: str, stage: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data-label gradients G (N, P), per-label gradients G_c (N, C, P) and p (N, C)."""
    problem, thetas = trajectory(source)
    return _label_law(problem, thetas[stage])


def _label_law(problem, theta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G, G_c and the model's label probabilities p_nc = exp(-l_n(c)) (cross-entropy, no l2)."""
    N, C = problem.num_samples(), problem.widths[-1]
    labels = np.broadcast_to(np.arange(C)[:, None], (C, N))
    G_c = np.stack([problem.per_sample_grads(theta, labels=y) for y in labels], axis=1)
    p = np.exp(-np.stack([problem.per_sample_losses(theta, labels=y) for y in labels], axis=1))
    return problem.per_sample_grads(theta), G_c, p


# --- the stochastic setting: H, g, A, Sigma_xi, Sigma_b, draws of xi_b ------------------------


def gaussian_cases(a_kinds=A_KINDS, sigmas=("kH", "general")) -> st.SearchStrategy:
    """Gaussian-law noise: H from `curvature_cases` (PD and the PSD boundary) or the Hessian of
    prob:softmax along training, A, alpha, k in [1e-3, 10], B, and Sigma_xi in {kH, general}."""
    return merged(
        curvature_cases(kinds=("pd", "psd")),
        st.fixed_dictionaries({
            "source": st.just("gaussian"),
            "H_source": st.sampled_from(("synthetic", "softmax")),
            "stage": st.integers(0, len(TRAINING["softmax"]["checkpoints"]) - 1),
            "A": st.sampled_from(a_kinds),
            "alpha": step_sizes()["alpha"],
            "k": positive(1e-3, 10.0),
            "B": st.sampled_from(BATCH_SIZES),
            "sigma": st.sampled_from(sigmas),
        }),
    )


def finite_sum_cases(a_kinds=A_KINDS) -> st.SearchStrategy:
    """Real minibatch noise of a small finite sum (N <= 10: exact enumeration)."""
    return merged(
        batch_cases(4, 10, even=True),
        st.fixed_dictionaries({
            "source": st.sampled_from(("quad_finite_sum", "softmax")),
            "seed": SEEDS,
            "dim": st.integers(1, 4),
            "A": st.sampled_from(a_kinds),
            "alpha": step_sizes()["alpha"],
            "sampling": st.sampled_from(SAMPLINGS),
        }),
    )


def gaussian_example(**overrides: Any) -> dict[str, Any]:
    """A targeted Gaussian-law case (defaults: n = 1, alpha = k = B = 1, Newton's A)."""
    base = {"n": 1, "seed": 0, "kind": "pd", "lo": -4.0, "hi": 4.0, "rotated": True,
            "source": "gaussian", "H_source": "synthetic", "stage": 0, "A": "alpha_Hinv",
            "alpha": 1.0, "k": 1.0, "B": 1, "sigma": "kH"}
    return {**base, **overrides}


class Lazy(Mapping):
    """A context whose entries are computed on first access and kept.

    Shrinking a witness re-evaluates one relation on many cases: each case then pays only for
    the quantities that relation reads. Every random entry has its own seeded generator, so
    values do not depend on the order of access.
    """

    def __init__(self, thunks: Mapping[str, Callable[[], Any]], **values: Any) -> None:
        self._thunks, self._values = dict(thunks), dict(values)

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            self._values[key] = self._thunks[key]()
        return self._values[key]

    def __iter__(self):
        return iter({**self._thunks, **self._values})

    def __len__(self) -> int:
        return len({**self._thunks, **self._values})

    def extend(self, **thunks: Callable[[], Any]) -> Lazy:
        """Add entries computed on first access; returns self."""
        self._thunks.update(thunks)
        return self


NO_NOISE = "B = N without replacement: ξ_b = 0 (no noise)"


def _rng(case: Context, stream: int) -> np.random.Generator:
    return np.random.default_rng([case["seed"], stream])


def _gaussian_setting(case: Context) -> dict[str, Any]:
    if case["H_source"] == "softmax":
        problem, thetas = trajectory("softmax")
        H = hessian_at("softmax", case["stage"])
        g_raw = flatten(problem.grad(thetas[case["stage"]]))
    else:
        built = build_curvature(case)
        H, g_raw = built["H"], built["g"]
    n = len(H)
    # f = prob:quad with gradient g at theta = 0 (g projected on range(H) where H is singular)
    quad = _problem("prob:quad")(H, -np.linalg.pinv(H) @ g_raw)
    Sigma_xi = case["k"] * (H if case["sigma"] == "kH" else _random_psd(n, _rng(case, 1)))
    Sigma_b = Sigma_xi / case["B"]  # xi_b: the mean of B i.i.d. N(0, Sigma_xi) draws
    return {"problem": quad, "theta": {"x": np.zeros(n)}, "H": H, "Sigma_xi": Sigma_xi,
            "Sigma_b": Sigma_b, "xi": lambda: _gaussian_draws(Sigma_b, MC_DRAWS, _rng(case, 2)),
            "k": case["k"] if case["sigma"] == "kH" else None}


@lru_cache(maxsize=64)
def small_problem(source: str, N: int, dim: int, seed: int):
    """prob:quad_finite_sum at its optimum (noise covariance exactly proportional to H by its
    construction) or prob:softmax (3 classes) at initialisation."""
    rng = np.random.default_rng(seed)
    if source == "quad_finite_sum":
        problem = _problem("prob:quad_finite_sum").make(rng, n_samples=N, dim=dim)
        return problem, problem.optimum()[0]
    problem = _problem("prob:softmax").make(rng, n_samples=N, dim=dim, classes=3)
    return problem, problem.init_params(rng)


def _finite_sum_setting(case: Context) -> dict[str, Any]:
    problem, theta = small_problem(case["source"], case["N"], case["dim"], case["seed"])
    G = problem.per_sample_grads(theta)
    g, H, B = flatten(problem.grad(theta)), problem.hessian(theta), case["B"]
    moments = reference.estimators.get("est:minibatch_moments")(
        G, B=B, sampling=case["sampling"]
    )
    k_b, residual = _proportional(moments["xi_cov"], H)

    def draws() -> np.ndarray:
        index = _batch_draws(_rng(case, 2), case["N"], B, case["sampling"], MC_DRAWS)
        return G[index].mean(axis=1) - g

    return {"problem": problem, "theta": theta, "H": H,
            "Sigma_xi": reference.estimators.get("est:grad_noise")(G)["Sigma"],
            "Sigma_b": moments["xi_cov"], "xi": draws,
            "k": B * k_b if residual <= RTOL else None}


def rule_map(kind: str, alpha: float, problem, theta) -> np.ndarray:
    """The matrix A of ``rule:uv.stochastic_direction``: its update d_b = A g_b for each unit
    gradient g_b (the rule takes one gradient per call)."""
    rule = reference.rules.get("rule:uv.stochastic_direction")
    oracle, state = Oracle(problem), rule.init(theta)
    columns = [flatten(rule.step(unflatten(e, theta), state, theta, oracle, A=kind,
                                 alpha=alpha)[0]) for e in np.eye(flatten(theta).size)]
    return np.stack(columns, axis=1)


def _linear_map(kind: str, case: Context, setting: Context) -> np.ndarray | str:
    """A of the kind, or the reason it is undefined (the rule's singular-H error)."""
    n, alpha = len(setting["H"]), case["alpha"]
    if kind == "general":
        return alpha * _rng(case, 3).standard_normal((n, n)) / math.sqrt(n)
    try:
        return rule_map(kind, alpha, setting["problem"], setting["theta"])
    except ValueError as error:
        if "singular" not in str(error):
            raise
        return f"A = {kind} needs an inverse of H, which is singular"


def stochastic_context(case: Context) -> Lazy:
    """The setting; ``maps`` (A of every kind, or why it is undefined) and ``by_kind`` (its exact
    ``est:uv_quantities``); for the case's kind: ``A`` (None if undefined, with ``why``), d = A g
    and ``est`` (exact and Monte Carlo). A batch of the whole data set drawn without
    replacement has no noise (xi_b = 0): every noise relation is undefined there."""
    setting = (_gaussian_setting if case["source"] == "gaussian" else _finite_sum_setting)(case)
    H, Sigma_b = setting["H"], setting["Sigma_b"]
    g = flatten(setting["problem"].grad(setting["theta"]))
    maps = Lazy({kind: partial(_linear_map, kind, case, setting) for kind in A_KINDS})

    def exact(kind: str) -> dict[str, Any] | str:
        A = maps[kind]
        return A if isinstance(A, str) else _uv(g, A @ g, H, A=A, Sigma_b=Sigma_b)

    lam = np.linalg.eigvalsh(H)
    kind = case["A"]
    noiseless = case.get("sampling") == "without_replacement" and case["B"] == case.get("N")
    why = NO_NOISE if noiseless else None
    ctx = Lazy(
        {
            "xi": setting["xi"],
            "A": lambda: None if why or isinstance(maps[kind], str) else maps[kind],
            "why": lambda: why or maps[kind],
            "d": lambda: ctx["A"] @ g,
            "est": lambda: _uv(g, ctx["d"], H, A=ctx["A"], Sigma_b=Sigma_b, xi=ctx["xi"]),
        },
        **{k: v for k, v in setting.items() if k != "xi"},
        case=dict(case), g=g, B=case.get("B"), alpha=case["alpha"], kind=kind, lam=lam,
        rtol=_rtol(kind, lam), maps=maps,
        by_kind=Lazy({k: partial(exact, k) for k in A_KINDS}),
    )
    return ctx


def _needs_A(check: Callable[[Context], Evaluation]) -> Callable[[Context], Evaluation]:
    """Undefined where A needs H^-1 or H^-1/2 of a singular H (INVENTORY §4.1.A boundary) or
    where the batch has no noise (``why`` says which)."""
    return lambda ctx: undefined(ctx["why"]) if ctx["A"] is None else check(ctx)


def _needs_k(check: Callable[[Context], Evaluation]) -> Callable[[Context], Evaluation]:
    """Undefined where Sigma_xi_b is not (k/B) H: the printed k does not exist."""
    return lambda ctx: (undefined("Sigma_xi_b is not (k/B) H here: k is undefined")
                        if ctx["k"] is None else check(ctx))


def _rounding_scale(ctx: Context) -> float:
    """||Cov[d_xi]||_F: the magnitude whose rounding the exact noise quantities carry."""
    return float(np.linalg.norm(ctx["est"]["Sigma_dxi"]))


KH_ASSUMED = Hypothesis(
    "xi_b ~ N(0, (k/B) H) (the assumption of §2)",
    lambda ctx: ctx["case"].get("sigma") == "kH",
)


# --- claim:U.noise_basic ---------------------------------------------------------------------

READINGS = {"sum": "g = Σ_x g_x, as printed", "mean": "g = mean_x g_x, reading"}


def basic_cases() -> st.SearchStrategy:
    return merged(
        batch_cases(10, 1000),
        st.fixed_dictionaries({
            "source": st.sampled_from(("quad_finite_sum", "softmax")),
            "seed": SEEDS,
            "dim": st.integers(1, 3),
        }),
    )


@lru_cache(maxsize=16)
def _basic_problem(source: str, N: int, dim: int, seed: int):
    """prob:quad_finite_sum (Gaussian targets) or prob:softmax, both at a random point, where
    the mean gradient is not 0 (so the two readings of g differ)."""
    rng = np.random.default_rng(seed)
    if source == "quad_finite_sum":
        problem = _problem("prob:quad_finite_sum").make(rng, n_samples=N, dim=dim,
                                                        noise_like_hessian=False)
    else:
        problem = _problem("prob:softmax").make(rng, n_samples=N, dim=dim, classes=3)
    return problem.per_sample_grads(problem.init_params(rng))


def _moments(G: np.ndarray, B: int, sampling: str, rng) -> dict[str, Any]:
    """``est:minibatch_moments`` of G, exact when the enumeration is small, else Monte Carlo."""
    N, P = G.shape
    count = math.comb(N, B) if sampling == "without_replacement" else math.comb(N + B - 1, B)
    estimator = reference.estimators.get("est:minibatch_moments")
    if count <= ENUM_BATCHES and count * N <= ENUM_CELLS:
        return {**estimator(G, B=B, sampling=sampling), "exact": True}
    K = int(np.clip(MC_CELLS // (B * P), MC_MIN_DRAWS, MC_DRAWS))
    index = _batch_draws(rng, N, B, sampling, K)
    return {**estimator(G, B=B, sampling=sampling, mode="mc", indices=index), "exact": False}


@lru_cache(maxsize=4096)
def _basic_moments(source: str, N: int, dim: int, seed: int, B: int, reading: str,
                   sampling: str) -> dict[str, Any]:
    """Moments of xi_b = g_b - g (g read as ``reading``) at batch size B; ``sampling`` =
    "population" is the law of xi = g_x - g itself (B = 1 with replacement: x uniform on the
    data set). Cached: shrinking revisits the same primitive cases."""
    G = _basic_problem(source, N, dim, seed)
    g = reference.estimators.get("est:grad_noise")(G)["g"] * (N if reading == "sum" else 1)
    stream = 10 + 3 * tuple(READINGS).index(reading) + ("population", *SAMPLINGS).index(sampling)
    if sampling == "population":
        B, sampling = 1, "with_replacement"
    return {**_moments(G - g, B, sampling, np.random.default_rng([seed, stream])), "g": g}


def basic_context(case: Context) -> Lazy:
    """"<reading>|<sampling>": `_basic_moments` for g read as the sum or the mean, for the
    population and each sampling scheme, computed on first access."""
    key = (case["source"], case["N"], case["dim"], case["seed"], case["B"])
    G = _basic_problem(*key[:4])
    floor = float(np.mean(np.linalg.norm(G - G.mean(axis=0), axis=1)))
    thunks = {f"{r}|{s}": partial(_basic_moments, *key, r, s)
              for r in READINGS for s in ("population", *SAMPLINGS)}
    return Lazy(thunks, B=case["B"], floor=floor)


def _basic_statement(statement: str, reading: str, sampling: str | None) -> Relation:
    """One printed statement of the noise_basic paragraph under one reading and scheme."""

    def check(ctx: Context) -> Evaluation:
        m = ctx[f"{reading}|{sampling or 'population'}"]
        pop, B = ctx[f"{reading}|population"], ctx["B"]
        g = pop["g"]
        lhs, se, rhs = {
            "E[xi] = 0": (pop["mean"], pop.get("mean_se"), np.zeros_like(g)),
            "E[xi_b] = 0": (m["mean"], m.get("mean_se"), np.zeros_like(g)),
            "Sigma_xi_b = Sigma_xi / B": (m["second_moment"], m.get("second_moment_se"),
                                          pop["second_moment"] / B),
            "E[g_b] = g": (m["mean"] + g, m.get("mean_se"), g),
            "Sigma_g_b = Sigma_xi / B": (m["cov"], m.get("cov_se"), pop["second_moment"] / B),
        }[statement]
        floor = ctx["floor"] if statement.endswith("= 0") else 0.0
        if m["exact"]:
            return equal(lhs, rhs, RTOL, floor)
        return within_ci(lhs, se, rhs, floor)

    where = READINGS[reading] + (f"; {sampling.replace('_', ' ')}" if sampling else "")
    return Relation(f"{statement} [{where}]", check)


BASIC_RELATIONS = [_basic_statement("E[xi] = 0", r, None) for r in READINGS] + [
    _basic_statement(statement, r, s)
    for statement in ("E[xi_b] = 0", "Sigma_xi_b = Sigma_xi / B", "E[g_b] = g",
                      "Sigma_g_b = Sigma_xi / B")
    for r in READINGS
    for s in SAMPLINGS
]

NOISE_BASIC = Claim(
    id="claim:U.noise_basic",
    source=GENERAL,
    statement="Define noise ξ = g_x − g. Since g = Σ_x g_x, we have E[ξ] = 0. … Σ_ξ = E[ξξᵀ]. "
    "… ξ_b = (1/B)Σ_{x∈b} ξ_x. … E[ξ_b] = 0, Σ_{ξ_b} = Σ_ξ/B. … E[g_b] = g, Σ_{g_b} = Σ_ξ/B.",
    cases=basic_cases(),
    context=basic_context,
    relations=BASIC_RELATIONS,
    thresholds={"rtol_exact": RTOL, "alpha_mc": ALPHA_MC, "mc_draws_max": MC_DRAWS,
                "enumeration_batches_max": ENUM_BATCHES, "enumeration_cells_max": ENUM_CELLS,
                "mc_cells_max": MC_CELLS, "mc_draws_min": MC_MIN_DRAWS},
    examples=[
        {"N": 10, "B": 10, "source": "quad_finite_sum", "seed": 0, "dim": 2},
        {"N": 10, "B": 1, "source": "softmax", "seed": 0, "dim": 2},
        {"N": 1000, "B": 500, "source": "softmax", "seed": 1, "dim": 1},
    ],
    note="x is uniform on the data set; Σ_ξ = E[ξξᵀ] and Σ_{ξ_b} = E[ξ_bξ_bᵀ] as defined, "
    "Σ_{g_b} = Cov[g_b]. Each statement runs with g as printed (the sum over x) and as the "
    "mean (reading), and under both sampling schemes. Moments are exact by enumeration "
    "(est:minibatch_moments) when the batches number <= 5000 (and batches*N <= 2e6), else "
    "Monte Carlo with 200 to 4000 drawn batches (seeds [case seed, 10 + stream]); then the "
    "discrepancy is the largest gap in units of the Bonferroni CI half-width at alpha = 1e-3 "
    "(held iff <= 1). Exact relations: relative gap, with the scale of the printed zeros "
    "(E[ξ] = 0, E[ξ_b] = 0) floored at mean ||g_x − mean g|| (the size of the averaged terms).",
)


# --- claim:U.noise_gaussian ------------------------------------------------------------------


def gaussian_projection_cases() -> st.SearchStrategy:
    last = len(TRAINING["softmax"]["checkpoints"]) - 1
    return st.fixed_dictionaries({
        "source": st.sampled_from(("softmax", "W1")),
        "stage": st.sampled_from((0, last)),
        "sampling": st.sampled_from(SAMPLINGS),
        "seed": SEEDS,
    })


def projection_context(case: Context) -> dict[str, Any]:
    """v^T xi_b for a random unit v and GAUSSIAN_DRAWS batches of each size B in BATCH_SIZES
    (None where B >= N without replacement)."""
    G = label_gradients(case["source"], case["stage"])[0]
    rng = np.random.default_rng([case["seed"], 3])
    v = rng.standard_normal(G.shape[1])
    s = (G - G.mean(axis=0)) @ (v / np.linalg.norm(v))  # v^T xi_x for every sample x
    N = len(s)
    return {"N": N, "projections": {
        B: s[_batch_draws(rng, N, B, case["sampling"], GAUSSIAN_DRAWS)].mean(axis=1)
        if case["sampling"] == "with_replacement" or B < N else None
        for B in BATCH_SIZES
    }}


def _normality(B: int, test: str) -> Relation:
    """Is v^T xi_b Gaussian at batch size B, by one test at NORMALITY_LEVEL."""
    z = float(stats.norm.isf(NORMALITY_LEVEL / 2))

    def check(ctx: Context) -> Evaluation:
        x = ctx["projections"][B]
        if x is None:
            return undefined("B >= N without replacement: ξ_b = 0, no noise")
        if test == "Anderson-Darling":
            result = stats.anderson(x, method="interpolate")
            # the tabulated p-values stop at 0.01 = NORMALITY_LEVEL: rejected iff p <= 0.01
            return predicate(result.pvalue > NORMALITY_LEVEL, float(result.statistic),
                             pvalue=float(result.pvalue))
        value, bound = ((stats.skew(x), z * math.sqrt(6 / len(x))) if test == "skewness"
                        else (stats.kurtosis(x), z * math.sqrt(24 / len(x))))
        return predicate(abs(value) <= bound, float(value), bound=bound)

    names = {"Anderson-Darling": "A² statistic", "skewness": "skewness",
             "kurtosis": "excess kurtosis"}
    return Relation(f"ξ_b is Gaussian: {test} at B = {B} (discrepancy = {names[test]})", check)


NOISE_GAUSSIAN = Claim(
    id="claim:U.noise_gaussian",
    source=GENERAL,
    statement="Thanks to the Central Limit Theorem, with a large batch size, the ξ is subject to "
    "Gaussian Distribution [12]",
    cases=gaussian_projection_cases(),
    context=projection_context,
    relations=[_normality(B, test) for test in ("Anderson-Darling", "skewness", "kurtosis")
               for B in BATCH_SIZES],
    thresholds={"normality_level": NORMALITY_LEVEL, "draws_per_batch_size": GAUSSIAN_DRAWS},
    nature="qualitative",
    note="Random unit projections vᵀξ_b of the real minibatch noise (data labels) of prob:softmax "
    "(gmm, N = 512, d = 5, C = 3) and prob:W1 (256-sample digits subset), at initialisation and "
    "after 300 full-batch GD steps, 2000 batches per B. Each B is tested for normality at level "
    "0.01: Anderson–Darling (scipy, interpolated table), |skewness| <= z sqrt(6/K), |excess "
    "kurtosis| <= z sqrt(24/K). 'Large batch size' is not quantified in the text, so the claim "
    "is recorded (qualitative), with the decision per B as evidence of how normality changes "
    "with B.",
)


# --- claim:U.noise_hessian -------------------------------------------------------------------


def hessian_noise_cases() -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "source": st.sampled_from(("softmax", "W1")),
        "labels": st.sampled_from(("data", "model")),
        "stage": st.integers(0, len(TRAINING["softmax"]["checkpoints"]) - 1),
    })


@lru_cache(maxsize=16)
def noise_vs_hessian(source: str, labels: str, stage: int) -> tuple[float, float, float]:
    """(k*, relative residual, L(theta_t)) of Sigma_xi (``est:grad_noise``) against H."""
    problem, thetas = trajectory(source)
    G, G_c, p = label_gradients(source, stage)
    noise = reference.estimators.get("est:grad_noise")
    Sigma = noise(G)["Sigma"] if labels == "data" else noise(G_c, p, labels="model")["Sigma"]
    k, residual = _proportional(Sigma, hessian_at(source, stage))
    return k, residual, problem.loss(thetas[stage])


def hessian_noise_context(case: Context) -> dict[str, Any]:
    stages = range(len(TRAINING[case["source"]]["checkpoints"]))
    along = [noise_vs_hessian(case["source"], case["labels"], t) for t in stages]
    k, residual, loss = along[case["stage"]]
    return {"k": k, "residual": residual, "loss": loss,
            "ratios": np.array([kt / lt for kt, _, lt in along])}


def _sigma_approx_kH(ctx: Context) -> Evaluation:
    return predicate(ctx["residual"] <= RESIDUAL_MAX, ctx["residual"], k=ctx["k"])


def _k_proportional_to_loss(ctx: Context) -> Evaluation:
    r = ctx["ratios"]
    spread = float(r.max() / r.min()) if np.all(r > 0) else math.inf
    return predicate(spread <= SPREAD_MAX, spread, ratios=r)


def _k_order_of_loss(ctx: Context) -> Evaluation:
    ratio = ctx["k"] / ctx["loss"]
    return predicate(1 / SPREAD_MAX <= ratio <= SPREAD_MAX, ratio)


NOISE_HESSIAN = Claim(
    id="claim:U.noise_hessian",
    source=GENERAL,
    statement="the covariance matrix can be approximated by Σ_ξ ≈ kH [11] … and k ~ L(θ_t). "
    "Thus, we assume that ξ_b ~ N(0, (k/B)H)",
    cases=hessian_noise_cases(),
    context=hessian_noise_context,
    relations=[
        Relation("Σ_ξ ≈ kH (discrepancy = ||Σ − k*H||_F/||Σ||_F)", _sigma_approx_kH),
        Relation("k ~ L(θ_t), reading: k*/L constant along training within a factor "
                 f"{SPREAD_MAX:g} (discrepancy = max/min)", _k_proportional_to_loss),
        Relation(f"k ~ L(θ_t), reading: k*/L in [1/{SPREAD_MAX:g}, {SPREAD_MAX:g}] "
                 "(discrepancy = k*/L)", _k_order_of_loss),
    ],
    thresholds={"relative_residual_max": RESIDUAL_MAX, "k_over_L_factor": SPREAD_MAX},
    note="k* = <Σ, H>_F/||H||_F² (least squares), Σ = est:grad_noise (ddof 0) with data labels "
    "(Σ^data) or labels drawn from the model (Σ^model, exact over labels), H = exact Hessian, "
    "L(θ_t) = training loss, at the checkpoints of a seeded full-batch GD run on prob:softmax "
    "(N = 512) and prob:W1 (256-sample subset). 'ξ_b ~ N(0, (k/B)H)' combines this with "
    "claim:U.noise_basic (Σ_ξb = Σ_ξ/B) and claim:U.noise_gaussian.",
)


# --- claim:U.dxi_cov -------------------------------------------------------------------------


def _draw_values(ctx: Context) -> dict[str, np.ndarray]:
    """Per draw: (A xi_b)^T (A xi_b), tr(xi_b^T A^T A xi_b) as printed, and d_xi d_xi^T."""
    xi, A = ctx["xi"], ctx["A"]
    D = xi @ A.T
    xi_col = xi[:, :, None]
    return {
        "norm2": np.einsum("kp,kp->k", D, D),
        "trace": np.trace(np.swapaxes(xi_col, 1, 2) @ A.T @ A @ xi_col, axis1=1, axis2=2),
        "outer": D[:, :, None] * D[:, None, :],
    }


@_needs_A
def _cov_is_scalar(ctx: Context) -> Evaluation:
    return compare(ctx["est"]["Sigma_dxi"], mean_se(_draw_values(ctx)["norm2"])[0], RTOL)


@_needs_A
def _cov_trace_reading(ctx: Context) -> Evaluation:
    mc, se = mean_se(_draw_values(ctx)["norm2"])
    return within_ci(mc, se, np.trace(ctx["est"]["Sigma_dxi"]), _rounding_scale(ctx))


@_needs_A
def _norm_equals_trace_form(ctx: Context) -> Evaluation:
    values = _draw_values(ctx)
    return equal(values["norm2"].mean(), values["trace"].mean(), ctx["rtol"])


@_needs_A
def _trace_form_equals_printed(ctx: Context) -> Evaluation:
    mc, se = mean_se(_draw_values(ctx)["trace"])
    printed = np.trace(ctx["A"].T @ ctx["A"] @ ctx["Sigma_b"])
    return within_ci(mc, se, printed, _rounding_scale(ctx))


@_needs_A
def _cov_exact_vs_mc(ctx: Context) -> Evaluation:
    mc, se = mean_se(_draw_values(ctx)["outer"])
    return within_ci(mc, se, ctx["est"]["Sigma_dxi"], _rounding_scale(ctx))


DXI_COV = Claim(
    id="claim:U.dxi_cov",
    source=GENERAL,
    statement="The component d_ξ has covariance matrix E[(Aξ_b)ᵀ(Aξ_b)] = E[tr(ξ_bᵀAᵀAξ_b)] "
    "= tr(AᵀAΣ_{ξ_b})",
    cases=st.one_of(gaussian_cases(), finite_sum_cases()),
    context=stochastic_context,
    relations=[
        Relation("covariance matrix of d_ξ = E[(Aξ_b)ᵀ(Aξ_b)] (as printed)", _cov_is_scalar),
        Relation("tr Cov[d_ξ] = E[(Aξ_b)ᵀ(Aξ_b)] (reading: the trace of the covariance)",
                 _cov_trace_reading),
        Relation("E[(Aξ_b)ᵀ(Aξ_b)] = E[tr(ξ_bᵀAᵀAξ_b)]", _norm_equals_trace_form),
        Relation("E[tr(ξ_bᵀAᵀAξ_b)] = tr(AᵀAΣ_{ξ_b})", _trace_form_equals_printed),
        Relation("Cov[d_ξ] = AΣ_{ξ_b}Aᵀ (est:uv_quantities exact vs Monte Carlo)",
                 _cov_exact_vs_mc),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR, "alpha_mc": ALPHA_MC,
                "mc_draws": MC_DRAWS},
    examples=[gaussian_example(), gaussian_example(n=3, A="general", sigma="general"),
              gaussian_example(n=4, kind="psd", A="alpha_I")],
    note="Expectations over ξ_b: Gaussian N(0, Σ_ξ/B) with Σ_ξ in {kH, random PSD}, or the real "
    "minibatch noise of prob:quad_finite_sum / prob:softmax (Σ_ξb exact by enumeration). "
    "E[·] of the printed scalars is a Monte Carlo mean over 4000 draws (discrepancy in units "
    "of the CI half-width at alpha = 1e-3, held iff <= 1); the covariance matrix AΣ_ξbAᵀ is "
    "est:uv_quantities. The printed 'covariance matrix' is a scalar: recorded ill-typed, and "
    "read as its trace in a separate relation.",
)


# --- claim:U.expected_loss -------------------------------------------------------------------


def _expansion(ctx: Context) -> dict[str, Any]:
    """Per draw: f(theta + d_b) and the quadratic model q(d_b) = f + g^T d_b + 1/2 d_b^T H d_b."""
    problem, theta0, g, H = ctx["problem"], flatten(ctx["theta"]), ctx["g"], ctx["H"]
    D = ctx["d"] + ctx["xi"][:LOSS_DRAWS] @ ctx["A"].T
    f0 = problem.loss(ctx["theta"])
    f = np.array([problem.loss(unflatten(theta0 + d_b, ctx["theta"])) for d_b in D])
    q = f0 + D @ g + 0.5 * np.einsum("kp,pq,kq->k", D, H, D)
    return {"f0": f0, "f": f, "q": q}


def _expansion_holds(ctx: Context) -> bool:
    if ctx["A"] is None:
        return True
    e = ctx["expansion"]
    remainder, change = np.abs(e["f"] - e["q"]), np.abs(e["q"] - e["f0"])
    return bool(np.mean(remainder) <= EXPANSION_TOL * np.mean(change))


def expected_loss_context(case: Context) -> Lazy:
    ctx = stochastic_context(case)
    return ctx.extend(expansion=lambda: _expansion(ctx))


def _expected_loss(noise_term: str) -> Callable[[Context], Evaluation]:
    """E[f(theta + d_b)] (Monte Carlo) vs f + g^T d + 1/2 d^T H d + the named noise term.

    Held iff the gap is at most the measured second-order remainder mean |f - q| plus z se
    (the expansion is the only approximation the text makes; it is exact for quadratic f).
    """

    def check(ctx: Context) -> Evaluation:
        e, g, d, H = ctx["expansion"], ctx["g"], ctx["d"], ctx["H"]
        term = {"xi_b": 0.5 * np.trace(H @ ctx["Sigma_b"]),
                "xi_x": 0.5 * np.trace(H @ ctx["Sigma_xi"]),
                "N_b": ctx["est"]["N_b"]}[noise_term]
        rhs = e["f0"] + g @ d + 0.5 * d @ H @ d + term
        lhs, se = mean_se(e["f"])
        scale = np.mean(np.abs(e["q"] - e["f0"]))
        allowed = np.mean(np.abs(e["f"] - e["q"])) + _z(1) * se + RTOL * (scale + abs(e["f0"]))
        gap = abs(lhs - rhs)
        return Evaluation(bool(gap <= allowed), gap / allowed if allowed > 0 else math.inf,
                          {"lhs": "scalar", "rhs": "scalar"})

    return _needs_A(check)


EXPECTED_LOSS = Claim(
    id="claim:U.expected_loss",
    source=GENERAL,
    statement="E[f(θ + d_b)] ≈ f(θ) + gᵀd + ½dᵀHd + ½E[ξᵀHξ]",
    cases=st.one_of(gaussian_cases(), finite_sum_cases()),
    context=expected_loss_context,
    hypotheses=[Hypothesis(
        f"second-order expansion f(θ+d) ≈ f + gᵀd + ½dᵀHd (mean |f − q| <= {EXPANSION_TOL} "
        "mean |q − f(θ)| over the draws)", _expansion_holds)],
    relations=[
        Relation("E[f(θ+d_b)] ≈ f + gᵀd + ½dᵀHd + ½E[ξᵀHξ] (ξ read as ξ_b)",
                 _expected_loss("xi_b")),
        Relation("E[f(θ+d_b)] ≈ f + gᵀd + ½dᵀHd + ½E[ξᵀHξ] (ξ read as ξ_x)",
                 _expected_loss("xi_x")),
        Relation("E[f(θ+d_b)] ≈ f + gᵀd + ½dᵀHd + N_b (reading: the noise term N_b of the "
                 "next sentence)", _expected_loss("N_b")),
    ],
    thresholds={"expansion_tol": EXPANSION_TOL, "alpha_mc": ALPHA_MC, "loss_draws": LOSS_DRAWS},
    examples=[gaussian_example(), gaussian_example(n=3, A="alpha_I", alpha=0.5)],
    note="d = A g, d_b = d + Aξ_b. The left side is a Monte Carlo mean of the loss over 1000 "
    "draws: prob:quad (f is its own quadratic model) under Gaussian ξ_b, prob:quad_finite_sum "
    "and prob:softmax (the real loss) under real minibatch noise. E[ξᵀHξ] = tr(HΣ) exactly, "
    "with Σ = Σ_ξb or Σ_ξ. '≈' is the second-order expansion: a relation holds iff the gap is "
    "at most the measured remainder mean|f − q| + z se (z at alpha = 1e-3); the discrepancy is "
    "gap / that allowance. Cases where the expansion itself is off by more than 10% are outside "
    "the stated hypothesis.",
)


# --- claim:U.Nb ------------------------------------------------------------------------------


@_needs_A
def _nb_definition(ctx: Context) -> Evaluation:
    e, floor = ctx["est"], _rounding_scale(ctx) * np.linalg.norm(ctx["H"])
    return within_ci(e["N_b_mc"], e["N_b_mc_se"], e["N_b"], floor)


@_needs_A
def _nb_trace(ctx: Context) -> Evaluation:
    H, A = ctx["H"], ctx["A"]
    return equal(ctx["est"]["N_b"], 0.5 * np.trace(H @ A.T @ A @ ctx["Sigma_b"]), ctx["rtol"])


@_needs_A
@_needs_k
def _nb_approximation(ctx: Context) -> Evaluation:
    H, A = ctx["H"], ctx["A"]
    printed = 0.5 * ctx["k"] / ctx["B"] * np.trace(H @ A.T @ A @ H)
    return equal(ctx["est"]["N_b"], printed, ctx["rtol"])


N_B = Claim(
    id="claim:U.Nb",
    source=GENERAL,
    statement="N_b = ½E[d_ξᵀHd_ξ] = ½tr(HAᵀAΣ_{ξ_b}). With approximation, N_b = ½(k/B)tr(HAᵀAH)",
    cases=st.one_of(gaussian_cases(), finite_sum_cases()),
    context=stochastic_context,
    relations=[
        Relation("N_b = ½E[d_ξᵀHd_ξ] (est:uv_quantities exact vs Monte Carlo)", _nb_definition),
        Relation("½E[d_ξᵀHd_ξ] = ½tr(HAᵀAΣ_{ξ_b})", _nb_trace),
        Relation("N_b = ½(k/B)tr(HAᵀAH) (with approximation)", _nb_approximation),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR, "alpha_mc": ALPHA_MC,
                "mc_draws": MC_DRAWS},
    examples=[gaussian_example(), gaussian_example(n=2, A="general"),
              gaussian_example(n=3, kind="psd", A="alpha_I")],
    note="N_b exact = ½tr(H AΣ_ξbAᵀ) from est:uv_quantities (Gaussian law: the covariance of "
    "d_ξ), Monte Carlo over 4000 draws of ξ_b. A from rule:uv.stochastic_direction (αH⁻¹, "
    "αH^{-1/2}, αI; undefined for singular H) or random. The approximation is evaluated where "
    "Σ_ξb = (k/B)H holds exactly (Gaussian kH cases; prob:quad_finite_sum at its optimum, k "
    "fitted); elsewhere k does not exist (undefined). Exact relations use rtol = max(1e-10, "
    "10 n eps κ(H)) where A is αH⁻¹ or αH^{-1/2}.",
)


# --- claim:U.Fb ------------------------------------------------------------------------------


def fisher_cases() -> st.SearchStrategy:
    return merged(
        batch_cases(2, 8),
        st.fixed_dictionaries({
            "source": st.sampled_from(("softmax", "mlp")),
            "seed": SEEDS,
            "dim": st.integers(1, 3),
        }),
    )


@lru_cache(maxsize=64)
def _classifier(source: str, N: int, dim: int, seed: int):
    """prob:softmax (3 classes) or a tanh prob:mlp (dim, 3, 3), at initialisation."""
    rng = np.random.default_rng(seed)
    if source == "softmax":
        problem = _problem("prob:softmax").make(rng, n_samples=N, dim=dim, classes=3)
    else:
        problem = _problem("prob:mlp").make(rng, n_samples=N, widths=(dim, 3, 3))
    return problem, problem.init_params(rng)


def fisher_context(case: Context) -> dict[str, Any]:
    """F, F~ (problem oracles), Sigma^model, Sigma^data (``est:grad_noise``) and, for each
    sampling scheme, F_b and F~_b (``est:fisher_batch``, exact over batches and labels)."""
    problem, theta = _classifier(case["source"], case["N"], case["dim"], case["seed"])
    G, G_c, p = _label_law(problem, theta)
    noise, batch = (reference.estimators.get(e) for e in ("est:grad_noise", "est:fisher_batch"))
    model, data = noise(G_c, p, labels="model"), noise(G)
    B = case["B"]
    return {
        "F": problem.fisher_true(theta), "F_tilde": problem.fisher_emp(theta),
        "Sigma_xi": model["Sigma"], "Sigma_x": data["Sigma"], "B": B,
        "mean_outer": {"model": np.outer(model["g"], model["g"]),
                       "data": np.outer(data["g"], data["g"])},
        "F_b": {s: batch(G_c, p, labels="model", B=B, sampling=s)["F_b"] for s in SAMPLINGS},
        "F_tilde_b": {s: batch(G, labels="data", B=B, sampling=s)["F_tilde_b"]
                      for s in SAMPLINGS},
    }


def _batch_fisher(labels: str, sampling: str, reading: bool) -> Relation:
    """F_b = F + Sigma_xi/B (model labels) or F~_b = F~ + Sigma_x/B (data labels), as printed
    or with F (F~) read as the outer product of the mean gradient."""
    lhs, fisher, sigma = {"model": ("F_b", "F", "Sigma_xi"),
                          "data": ("F_tilde_b", "F_tilde", "Sigma_x")}[labels]

    def check(ctx: Context) -> Evaluation:
        base = ctx["mean_outer"][labels] if reading else ctx[fisher]
        return equal(ctx[lhs][sampling], base + ctx[sigma] / ctx["B"], RTOL)

    printed = {"model": "F_b = F + (1/B)Σ_ξ", "data": "F̃_b = F̃ + (1/B)Σ_x"}[labels]
    where = sampling.replace("_", " ")
    if reading:
        where += "; reading: F as E[g]E[g]ᵀ" if labels == "model" else "; reading: F̃ as ḡḡᵀ"
    return Relation(f"{printed} [{where}]", check)


def _noise_laws_differ(ctx: Context) -> Evaluation:
    gap = equal(ctx["Sigma_xi"], ctx["Sigma_x"], RTOL).discrepancy
    return predicate(gap > RTOL, gap)


F_B = Claim(
    id="claim:U.Fb",
    source=GENERAL,
    statement="F_b = E_{x∼p(x|θ)}[g_bg_bᵀ] = F + (1/B)Σ_ξ, where Σ_ξ ≠ Σ_x because the sampling "
    "distribution is different. Meanwhile, F̃_b = E_{x∼D}[g_bg_bᵀ] = F̃ + (1/B)Σ_x",
    cases=fisher_cases(),
    context=fisher_context,
    relations=[_batch_fisher(labels, s, reading) for reading in (False, True)
               for labels in ("model", "data") for s in SAMPLINGS]
    + [Relation("Σ_ξ ≠ Σ_x (discrepancy = relative difference)", _noise_laws_differ)],
    thresholds={"rtol_exact": RTOL},
    examples=[{"N": 4, "B": 4, "source": "softmax", "seed": 0, "dim": 2},
              {"N": 3, "B": 1, "source": "mlp", "seed": 0, "dim": 1}],
    note="x ~ p(x|θ) is read as labels drawn from the model (true Fisher side) and x ~ D as the "
    "data labels. F = fisher_true (exact over classes), F̃ = fisher_emp, Σ_ξ = Σ^model and "
    "Σ_x = Σ^data (est:grad_noise, ddof 0), F_b and F̃_b = est:fisher_batch (exact enumeration "
    "of batches of size B and of the labels), on prob:softmax and a small tanh prob:mlp at "
    "initialisation, N <= 8. Each identity runs under both sampling schemes, as printed and "
    "with F (F̃) read as the outer product of the mean gradient (the decomposition "
    "E[g_bg_bᵀ] = E[g_b]E[g_b]ᵀ + Cov[g_b]).",
)


# --- per-eigendirection noise (claim:U.dxi_i) -----------------------------------------------


def _dxi_i_printed(rendering: str, ctx: Context) -> np.ndarray:
    """(k/B) tr(A H A^T e_i e_i^T) (000) or (k/B) tr(H A^T e_i e_i^T) (001), for every i."""
    H, A, Q = ctx["H"], ctx["A"], ctx["est"]["Q"]
    M = A @ H @ A.T if rendering == "000" else H @ A.T
    return ctx["k"] / ctx["B"] * _projector_traces(M, Q)


@_needs_A
def _dxi_i_middle(ctx: Context) -> Evaluation:
    Q = ctx["est"]["Q"]
    along = (ctx["xi"] @ ctx["A"].T @ Q) ** 2 * np.sum(Q * Q, axis=0)  # ||((A xi)^T e_i) e_i||^2
    mc, se = mean_se(along)
    return within_ci(mc, se, ctx["est"]["d_xi_i"], _rounding_scale(ctx))


def _dxi_i_rendering(rendering: str) -> Callable[[Context], Evaluation]:
    @_needs_A
    def check(ctx: Context) -> Evaluation:
        return equal(ctx["est"]["d_xi_i"], _dxi_i_printed(rendering, ctx), ctx["rtol"])

    return check


@_needs_A
def _dxi_i_renderings_agree(ctx: Context) -> Evaluation:
    return equal(_dxi_i_printed("000", ctx), _dxi_i_printed("001", ctx), ctx["rtol"])


DXI_I_MIDDLE = Relation("E||d_ξi||² = E||((Aξ_b)ᵀe_i)e_i||² (est:uv_quantities exact vs Monte "
                        "Carlo of the printed middle expression)", _dxi_i_middle)
DXI_I_000 = Relation("E||d_ξi||² = (k/B)tr(AHAᵀe_ie_iᵀ) [000]", _dxi_i_rendering("000"))
DXI_I_001 = Relation("E||d_ξi||² = (k/B)tr(HAᵀe_ie_iᵀ) [001]", _dxi_i_rendering("001"))

DXI_I = Claim(
    id="claim:U.dxi_i",
    source=GENERAL,
    statement="000: ‖d_ξi‖₂² = ‖((Aξ)ᵀe_i)e_i‖₂² = (k/B)tr(AHAᵀe_ie_iᵀ); "
    "001: … = (k/B)tr(HAᵀe_ie_iᵀ)",
    cases=gaussian_cases(),
    context=stochastic_context,
    hypotheses=[KH_ASSUMED],
    relations=[DXI_I_MIDDLE, DXI_I_000, DXI_I_001],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR, "alpha_mc": ALPHA_MC,
                "mc_draws": MC_DRAWS},
    examples=[gaussian_example(), gaussian_example(n=3, A="general"),
              gaussian_example(n=3, A="alpha_I", alpha=2.0)],
    note="Vectors over the eigenvectors e_i of H (est:uv_quantities' Q, ascending λ). The "
    "printed left side has no E; it is read as the expectation under ξ_b ~ N(0, (k/B)H) (as "
    "N_b is). Exact E||d_ξi||² = e_iᵀAΣ_ξbAᵀe_i (est:uv_quantities); the middle expression is "
    "a Monte Carlo mean with Bonferroni CIs over i at alpha = 1e-3.",
)


# --- the three §2 paragraphs -----------------------------------------------------------------


def _with_noise(*kinds: str) -> Callable[[Callable[..., Evaluation]], Callable]:
    """Relation decorator: ``fn(ctx, *exact)`` with the exact noise quantities
    (``est:uv_quantities``) of each A kind; undefined where one of those A is."""

    def wrap(fn: Callable[..., Evaluation]) -> Callable[[Context], Evaluation]:
        def check(ctx: Context) -> Evaluation:
            noises = [ctx["by_kind"][kind] for kind in kinds]
            reasons = [noise for noise in noises if isinstance(noise, str)]
            return undefined(reasons[0]) if reasons else fn(ctx, *noises)

        return check

    return wrap


def _closed_form(kind: str, quantity: str, printed: Callable[[Context], Any]) -> Callable:
    """Exact N_b or E||d_xi_i||^2 of A = kind vs the printed closed form."""

    @_with_noise(kind)
    def check(ctx: Context, noise: Mapping[str, Any]) -> Evaluation:
        return equal(noise[quantity], printed(ctx), _rtol(kind, ctx["lam"]))

    return check


def _kb(ctx: Context) -> float:
    return ctx["k"] / ctx["B"]


def _noise_monotone(kind: str, direction: str) -> Callable[[Context], Evaluation]:
    """E||d_xi_i||^2 of A = kind along ascending lambda_i: 'decreasing' or 'constant'."""

    @_with_noise(kind)
    def check(ctx: Context, noise: Mapping[str, Any]) -> Evaluation:
        v = noise["d_xi_i"]
        scale = max(float(np.max(np.abs(v))), np.finfo(float).tiny)
        if direction == "constant":
            spread = float(np.ptp(v)) / scale
            return predicate(spread <= _rtol(kind, ctx["lam"]), spread)
        rise = float(np.max(np.diff(v), initial=0.0)) / scale
        return predicate(rise <= _rtol(kind, ctx["lam"]), rise)

    return check


def _qualitative(reason: str) -> Callable[[Context], Evaluation]:
    return lambda ctx: undefined(f"qualitative statement (P2), recorded: {reason}")


def _kind_cases(kind: str) -> st.SearchStrategy:
    return gaussian_cases(a_kinds=(kind,))


NOISE_NEWTON = Claim(
    id="claim:U.noise_newton",
    source=SRC.format('"(Newton\'s Method)"'),
    statement="With A = αH⁻¹, we have N_b = ½(k/B)α and ‖d_ξi‖₂² = kα/(Bλ_i). While smaller "
    "components in the eigenbasis with large eigenvalues make update stable, this on the other "
    "hand weakens the ability to jump out of sharp minima.",
    cases=_kind_cases("alpha_Hinv"),
    context=stochastic_context,
    hypotheses=[KH_ASSUMED],
    relations=[
        Relation("N_b = ½(k/B)α", _closed_form(
            "alpha_Hinv", "N_b", lambda ctx: 0.5 * _kb(ctx) * ctx["alpha"])),
        Relation("‖d_ξi‖₂² = kα/(Bλ_i)", _closed_form(
            "alpha_Hinv", "d_xi_i",
            lambda ctx: ctx["k"] * ctx["alpha"] / (ctx["B"] * ctx["lam"]))),
        Relation("smaller components on eigenvectors with larger λ_i (E||d_ξi||² non-increasing "
                 "in λ_i; discrepancy = largest relative rise)",
                 _noise_monotone("alpha_Hinv", "decreasing")),
        Relation("weakens the ability to jump out of sharp minima",
                 _qualitative("escape from sharp minima is not defined computably here")),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR},
    examples=[gaussian_example(), gaussian_example(n=4, alpha=0.5, B=16, k=0.1),
              gaussian_example(n=3, kind="psd")],
    note="Exact N_b and E||d_ξi||² (est:uv_quantities) with A = αH⁻¹ from "
    "rule:uv.stochastic_direction under Σ_ξb = (k/B)H; undefined for singular H. The left "
    "side of the per-direction formula is read as an expectation.",
)

NOISE_HHALF = Claim(
    id="claim:U.noise_Hhalf",
    source=SRC.format('"(Normalized Natural Gradient Descent)"'),
    statement="With A = αH^{-1/2}, we have N_b = ½(k/B)α·tr(H) and ‖d_ξi‖₂² = kα/B. This makes "
    "noise length equal on every eigenbasis.",
    cases=_kind_cases("alpha_Hinvsqrt"),
    context=stochastic_context,
    hypotheses=[KH_ASSUMED],
    relations=[
        Relation("N_b = ½(k/B)α tr(H)", _closed_form(
            "alpha_Hinvsqrt", "N_b",
            lambda ctx: 0.5 * _kb(ctx) * ctx["alpha"] * np.trace(ctx["H"]))),
        Relation("‖d_ξi‖₂² = kα/B (for every i)", _closed_form(
            "alpha_Hinvsqrt", "d_xi_i",
            lambda ctx: np.full(len(ctx["H"]), ctx["k"] * ctx["alpha"] / ctx["B"]))),
        Relation("noise length equal on every eigenbasis (discrepancy = (max − min)/max of "
                 "E||d_ξi||²)", _noise_monotone("alpha_Hinvsqrt", "constant")),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR},
    examples=[gaussian_example(A="alpha_Hinvsqrt"),
              gaussian_example(n=4, A="alpha_Hinvsqrt", alpha=2.0, B=4)],
    note="As claim:U.noise_newton with A = αH^{-1/2}.",
)


@lru_cache(maxsize=4)
def trace_along_training(source: str) -> np.ndarray:
    """tr(H(theta_t)) at the checkpoints of the training run."""
    return np.array([np.trace(hessian_at(source, t))
                     for t in range(len(TRAINING[source]["checkpoints"]))])


def _trace_usually_below_one(ctx: Context) -> Evaluation:
    traces = trace_along_training(ctx["case"]["trajectory"])
    fraction = float(np.mean(traces < 1.0))
    return predicate(fraction >= USUALLY, fraction, traces=traces)


def _premise_tr_below_one(check: Callable[[Context], Evaluation]) -> Callable:
    """The sentence's premise 'tr(H) < 1': undefined where it fails."""
    return lambda ctx: (undefined("premise tr(H) < 1 does not hold") if np.trace(ctx["H"]) >= 1
                        else check(ctx))


def _ordered(values: list[float], rtol: float, ascending: bool) -> Evaluation:
    steps = np.diff(values) if ascending else -np.diff(values)
    scale = max(max(abs(v) for v in values), np.finfo(float).tiny)
    worst = float(np.min(steps)) / scale
    return predicate(worst >= -rtol, worst, values=values)


def _newton_to_gd(quantity: str, ascending: bool) -> Callable[[Context], Evaluation]:
    """N_b (or E||d_xi_i||^2 at the largest lambda) for A = aH^-1, aH^-1/2, aI at equal alpha."""

    @_with_noise(*NAMED)
    def check(ctx: Context, *noises: Mapping[str, Any]) -> Evaluation:
        pick = (lambda v: v) if quantity == "N_b" else (lambda v: v[-1])  # lambda ascending
        return _ordered([float(pick(noise[quantity])) for noise in noises],
                        max(_rtol(kind, ctx["lam"]) for kind in NAMED), ascending)

    return _premise_tr_below_one(check)


def gd_cases() -> st.SearchStrategy:
    return merged(_kind_cases("alpha_I"),
                  st.fixed_dictionaries({"trajectory": st.sampled_from(("softmax", "W1"))}))


GD_NB_000 = Relation("N_b = ½(k/B)tr(H) [000]", _closed_form(
    "alpha_I", "N_b", lambda ctx: 0.5 * _kb(ctx) * np.trace(ctx["H"])))
GD_NB_001 = Relation("N_b = ½(k/B)tr(HH) [001]", _closed_form(
    "alpha_I", "N_b", lambda ctx: 0.5 * _kb(ctx) * np.trace(ctx["H"] @ ctx["H"])))

NOISE_GD = Claim(
    id="claim:U.noise_gd",
    source=SRC.format('"(Gradient Descent)"'),
    statement="With A = αI, we have N_b = ½(k/B)tr(H) [001: tr(HH)], ‖d_ξi‖₂² = (kλ_i/B)α. "
    "Since tr(H) is usually smaller than 1, from Newton's method to gradient descent, we can "
    "see the noise term is decreasing (N_b) while the length on large eigenvalues grows. This "
    "can also explain why SGD flavors flat minima.",
    cases=gd_cases(),
    context=stochastic_context,
    hypotheses=[KH_ASSUMED],
    relations=[
        GD_NB_000,
        GD_NB_001,
        Relation("‖d_ξi‖₂² = (kλ_i/B)α", _closed_form(
            "alpha_I", "d_xi_i",
            lambda ctx: ctx["k"] * ctx["lam"] / ctx["B"] * ctx["alpha"])),
        Relation(f"tr(H) is usually smaller than 1 (fraction of training checkpoints with "
                 f"tr(H) < 1 >= {USUALLY}; discrepancy = the fraction)", _trace_usually_below_one),
        Relation("noise term N_b decreasing from Newton (αH⁻¹) via αH^{-1/2} to GD (αI), equal α",
                 _newton_to_gd("N_b", ascending=False)),
        Relation("length on the largest eigenvalue grows from Newton to GD, equal α",
                 _newton_to_gd("d_xi_i", ascending=True)),
        Relation("This can also explain why SGD flavors flat minima",
                 _qualitative("flat-minimum preference is not defined computably here")),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR, "usually_fraction": USUALLY},
    examples=[gaussian_example(A="alpha_I", trajectory="softmax"),
              gaussian_example(n=3, A="alpha_I", lo=-2.0, hi=-1.0, trajectory="W1")],
    note="Closed forms as in claim:U.noise_newton with A = αI (the printed N_b has no α). "
    "tr(H) along training: exact Hessians at the checkpoints of seeded full-batch GD runs on "
    "prob:softmax (N = 512) and prob:W1 (256-sample digits subset); prob:W2 is not built here. "
    "The Newton-to-GD comparisons use the exact N_b and E||d_ξi||² of the three maps at equal "
    "α, where the sentence's premise tr(H) < 1 holds. The tr(H) relation reads the case's "
    "training run, so its counts weight the two runs by how often each is drawn.",
)


# --- claim:U.higher_Nb -----------------------------------------------------------------------


def _recorded_nb(kind: str) -> Callable[[Context], Evaluation]:
    @_with_noise(kind)
    def check(ctx: Context, noise: Mapping[str, Any]) -> Evaluation:
        return predicate(noise["N_b"] >= 0.0, float(noise["N_b"]))

    return check


HIGHER_NB = Claim(
    id="claim:U.higher_Nb",
    source=GENERAL,
    statement="Although in one step, we want to reduce N_b, some papers point out that higher "
    "N_b can better jump out local minima.",
    cases=gaussian_cases(sigmas=("kH",)),
    context=stochastic_context,
    relations=[Relation(f"N_b for A = {kind} (recorded; held iff N_b >= 0)", _recorded_nb(kind))
               for kind in A_KINDS],
    nature="record",
    note="Recorded only (P2: a statement about other papers). The evidence lists the range of "
    "the exact N_b (est:uv_quantities) of each A under ξ_b ~ N(0, (k/B)H).",
)


# --- claim:U.renderings ----------------------------------------------------------------------


def _gd_nb_renderings_agree(ctx: Context) -> Evaluation:
    H = ctx["H"]
    return equal(0.5 * _kb(ctx) * np.trace(H), 0.5 * _kb(ctx) * np.trace(H @ H), RTOL)


@cache
def one_step_evidence(claim_id: str, marker: str) -> Evaluation:
    """Items iii and iv are audited in verify/audits/unified_view_onestep.py: the relations of
    its claim ``claim_id`` whose names contain ``marker`` (one rendering), evaluated on that
    claim's own targeted examples (those satisfying its hypotheses). Failed if one fails, else
    held if one held, else undefined with the first reason; the discrepancy is the largest."""
    from verify.audits import unified_view_onestep  # the sibling module, loaded on demand

    claim = unified_view_onestep.CLAIMS[claim_id]
    relations = [r for r in claim.relations if marker in r.name]
    contexts = [claim.context(case) for case in claim.examples]
    evaluations = [r.check(ctx) for ctx in contexts for r in relations
                   if all(h.check(ctx) for h in claim.hypotheses)]
    decided = [ev for ev in evaluations if ev.ok is not None]
    if not decided:
        reasons = [str(ev.detail.get("undefined")) for ev in evaluations] or ["no example"]
        return undefined(f"{claim_id}: {reasons[0]}")
    worst = max(ev.discrepancy for ev in decided)
    return Evaluation(all(ev.ok for ev in decided), worst,
                      {"relations": [r.name for r in relations], "examples": len(contexts)})


def _one_step_item(claim_id: str, marker: str) -> Callable[[Context], Evaluation]:
    return lambda ctx: one_step_evidence(claim_id, marker)


RENDERINGS = Claim(
    id="claim:U.renderings",
    source="000_4a249e1305656390.txt and 001_7b413654114c5cca.txt",
    statement="Printed differences between 000 and 001: (i) GD N_b: tr(H) vs tr(HH); "
    "(ii) ‖d_ξi‖²: tr(AHAᵀe_ie_iᵀ) vs tr(HAᵀe_ie_iᵀ); (iii) Sophia clipping: ĝ_i/λ_i vs "
    "ĝ/λ_i; (iv) Table 1: \\vec d_i vs \\tilde d_i, and '∂L/g_i' vs '∂L/∂g_i'",
    cases=gaussian_cases(),
    context=stochastic_context,
    hypotheses=[KH_ASSUMED],
    relations=[
        Relation("(i) ½(k/B)tr(H) [000] = ½(k/B)tr(HH) [001]", _gd_nb_renderings_agree),
        Relation("(i) " + GD_NB_000.name + " = exact N_b(αI)", GD_NB_000.check),
        Relation("(i) " + GD_NB_001.name + " = exact N_b(αI)", GD_NB_001.check),
        Relation("(ii) (k/B)tr(AHAᵀe_ie_iᵀ) [000] = (k/B)tr(HAᵀe_ie_iᵀ) [001]",
                 _dxi_i_renderings_agree),
        Relation("(ii) " + DXI_I_000.name, DXI_I_000.check),
        Relation("(ii) " + DXI_I_001.name, DXI_I_001.check),
        Relation("(iii) Sophia d̂_i = −α min(1, λ_iε/|ĝ_i|)ĝ_i/λ_i [000] = rule:uv.sophia_clip "
                 "(claim:U.clipped on its examples)", _one_step_item("claim:U.clipped",
                                                                    "000: Sophia")),
        Relation("(iii) Sophia d̂_i = −α min(1, λ_iε/|ĝ_i|)ĝ/λ_i [001] = rule:uv.sophia_clip "
                 "(claim:U.clipped on its examples)", _one_step_item("claim:U.clipped",
                                                                    "001: Sophia")),
        Relation("(iv) Table 1 with \\vec d_i, '∂L/g_i' [000] (claim:U.table1 relations marked "
                 "(000), on its examples)", _one_step_item("claim:U.table1", "(000)")),
        Relation("(iv) Table 1 with \\tilde d_i, '∂L/∂g_i' [001] (claim:U.table1 relations "
                 "marked (001), on its examples)", _one_step_item("claim:U.table1", "(001)")),
    ],
    thresholds={"rtol_exact": RTOL, "cond_factor": COND_FACTOR},
    examples=[gaussian_example(A="alpha_I"), gaussian_example(n=3, A="general")],
    note="Items i and ii are evaluated here under ξ_b ~ N(0, (k/B)H), each rendering against "
    "the other and against the exact value (est:uv_quantities; for (i) with A = αI at the "
    "case's α, for (ii) with the case's A). Items iii and iv are one-step statements audited in "
    "verify/audits/unified_view_onestep.py: their relations here read the relations of "
    "claim:U.clipped (Sophia, 000 and 001) and claim:U.table1 (cells marked (000) / (001)) "
    "evaluated on those claims' own examples (the same value for every case here).",
)


CLAIMS: dict[str, Claim] = {
    claim.id: claim
    for claim in (NOISE_BASIC, NOISE_GAUSSIAN, NOISE_HESSIAN, DXI_COV, EXPECTED_LOSS, N_B, F_B,
                  DXI_I, NOISE_NEWTON, NOISE_HHALF, NOISE_GD, HIGHER_NB, RENDERINGS)
}


def eigendirection_noise(case: Context | None = None) -> dict[str, np.ndarray]:
    """Plot data: lambda_i and E||d_xi_i||^2 of each named A on one ill-conditioned problem."""
    ctx = stochastic_context(case or gaussian_example(n=12, rotated=True, A="alpha_I"))
    exact = {kind: ctx["by_kind"][kind] for kind in NAMED}
    return {"lam": ctx["lam"], **{kind: noise["d_xi_i"] for kind, noise in exact.items()
                                  if not isinstance(noise, str)}}
