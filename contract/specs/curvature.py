'''The model-level curvature estimators both layers share (INVENTORY §3.1-§3.3, §3.10).

Every estimator has the signature ``(problem, params, batch=None, **options)``; the reference
reads the problem's exact quantities, torch runs `torchimpl.curvature` on
``problem.as_model(batch)``. Written once here: the option defaults and docs (`SPECS`), the
option checks (the same errors in both layers), the analytic optimizer-state element counts
of est:state_bytes, the call-counting oracle of est:oracle_counter and the timing loop of
est:timing (pure Python: the layers pass in what differs, equality of trees, addition,
synchronisation).
'''

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from contract.specs.estimators import EstimatorSpec
from contract.validate import boolean, choice, integer, positive

__all__ = [
    "COUNTED",
    "LABELS",
    "METHODS",
    "NORM_H_SOURCES",
    "OPTIMIZERS",
    "QUANTITIES",
    "SCALES",
    "SPECS",
    "S_SCALES",
    "CountingOracle",
    "check_kfac_options",
    "check_timing_options",
    "count_calls",
    "layers_of",
    "median_seconds",
    "option",
    "state_elements",
]

SCALES = ("mean", "sum")
METHODS = ("vmap", "loop", "fast")
HVP_MODES = ("forward", "reverse")
LABELS = ("empirical", "sampled", "exact_expectation")
S_SCALES = ("per_sample", "batch_mean", "sum")
NORM_H_SOURCES = ("pre_norm", "normalized")
QUANTITIES = ("loss", "grad", "hvp", "per_sample_grads", "hessian", "ggn", "fisher_emp",
              "fisher_true")
COUNTED = ("grad", "full_grad", "loss", "hvp_reused_graph", "hvp_new_graph",
           "per_sample_grads", "curvature")

_choice = partial(choice, style="allowed")


def option(name: str, value: Any, allowed: Sequence[str]) -> str:
    """A string option in ``allowed``: ``ValueError("Invalid <name>: ...; allowed: ...")``."""
    return _choice(name, value, tuple(allowed))


def mc_option(mc_samples: Any, seed: Any) -> tuple[int, int]:
    """``mc_samples`` an integer >= 1 and ``seed`` an integer >= 0."""
    return (integer("mc_samples", mc_samples, 1, style="allowed"),
            integer("seed", seed, 0, style="allowed"))


def check_kfac_options(labels: Any, mc_samples: Any, seed: Any, s_scale: Any,
                       spatial_scaling: Any, token_flatten: Any) -> tuple[float, float] | None:
    """The options of est:kfac_factors; returns ``spatial_scaling`` as floats (or None)."""
    option("labels", labels, LABELS)
    mc_option(mc_samples, seed)
    option("s_scale", s_scale, S_SCALES)
    boolean("token_flatten", token_flatten)
    if spatial_scaling is None:
        return None
    if not isinstance(spatial_scaling, Sequence) or len(spatial_scaling) != 2:
        raise ValueError(f"Invalid spatial_scaling: {spatial_scaling!r}; allowed: None or a "
                         "pair (a_H, a_S) of reals > 0")
    return (positive("spatial_scaling[0] (a_H)", spatial_scaling[0]),
            positive("spatial_scaling[1] (a_S)", spatial_scaling[1]))


def check_timing_options(quantities: Any, repeats: Any, warmup: Any, threads: Any) -> tuple:
    """The options of est:timing: quantities from `QUANTITIES`, repeats >= 5, warmup >= 0,
    threads None or >= 1."""
    if isinstance(quantities, str) or not isinstance(quantities, Sequence) or not quantities:
        raise ValueError(f"Invalid quantities: {quantities!r}; allowed: a non-empty sequence "
                         f"of {QUANTITIES}")
    for q in quantities:
        option("quantities entry", q, QUANTITIES)
    return (tuple(quantities), integer("repeats", repeats, 5, style="allowed"),
            integer("warmup", warmup, 0, style="allowed"),
            None if threads is None else integer("threads", threads, 1, style="allowed"))


# --- est:state_bytes: analytic optimizer-state element counts --------------------------------

def layers_of(shapes: Mapping[str, Sequence[int]]) -> list[tuple[int, int, bool]]:
    """(out, in, has_bias) of each weight matrix or conv kernel (a parameter "<p>.weight" of
    >= 2 dims; in = prod of its trailing dims, the bias "<p>.bias" its homogeneous column),
    and (C, C, has_bias) for 1-D "<p>.weight" (a normalization scale nu)."""
    out = []
    for name, shape in shapes.items():
        if not name.endswith("weight"):
            continue
        bias = name[: -len("weight")] + "bias" in shapes
        out.append((int(shape[0]), math.prod(shape[1:]) if len(shape) > 1 else int(shape[0]),
                    bias))
    return out


def _kronecker(shapes, full: bool) -> dict[str, int]:
    """K-FAC-type factors per layer: H (in+1) and S (out), full (squares) or diagonal."""
    layers = layers_of(shapes)
    h = sum((i + b) ** (2 if full else 1) for _, i, b in layers)
    s = sum(o ** (2 if full else 1) for o, _, _ in layers)
    return {"H": h, "S": s}


def _shampoo(shapes) -> dict[str, int]:
    """G_r (out x out) and G_c (in x in) per matrix; order-1 tensors (biases) one G (n x n)."""
    rows = sum(s[0] ** 2 for s in shapes.values())
    cols = sum(math.prod(s[1:]) ** 2 for s in shapes.values() if len(s) > 1)
    return {"G_r": rows, "G_c": cols}


def state_elements(optimizer: str, shapes: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """Elements of each optimizer state, from the parameter shapes (P = all entries)."""
    option("optimizer", optimizer, OPTIMIZERS)
    P = sum(math.prod(s) for s in shapes.values())
    return OPTIMIZERS[optimizer](P, shapes)


OPTIMIZERS: dict[str, Callable[[int, Mapping], dict[str, int]]] = {
    "sgd": lambda P, s: {},
    "sgd_momentum": lambda P, s: {"momentum": P},
    "adagrad": lambda P, s: {"sum": P},
    "rmsprop": lambda P, s: {"square_avg": P},
    "adam": lambda P, s: {"exp_avg": P, "exp_avg_sq": P},
    "adamw": lambda P, s: {"exp_avg": P, "exp_avg_sq": P},
    "lion": lambda P, s: {"exp_avg": P},
    "adahessian": lambda P, s: {"exp_avg": P, "exp_hessian_diag_sq": P},
    "sophia": lambda P, s: {"exp_avg": P, "hessian": P},
    "sassha": lambda P, s: {"exp_avg": P, "hessian": P},
    "adafisher": lambda P, s: {"exp_avg": P, **_kronecker(s, full=False)},
    "kfac": lambda P, s: _kronecker(s, full=True),
    "shampoo": lambda P, s: _shampoo(s),
}


# --- est:oracle_counter ----------------------------------------------------------------------

class CountingOracle:
    """A layer's oracle that counts its calls in the current step (`COUNTED`).

    An HVP at a point where this step already evaluated the gradient reuses that graph (one
    more backward pass); elsewhere it needs a new one (forward, backward, and the double
    backward). ``same(a, b)``: whether two parameter trees are equal.
    """

    def __init__(self, oracle: Any, same: Callable[[Any, Any], bool]) -> None:
        self._oracle, self._same = oracle, same
        self.steps: list[dict[str, int]] = []
        self._points: list[Any] = []

    def new_step(self) -> None:
        self.steps.append(dict.fromkeys(COUNTED, 0))
        self._points = []

    def _count(self, key: str) -> None:
        self.steps[-1][key] += 1

    def loss(self, params):
        self._count("loss")
        return self._oracle.loss(params)

    def grad(self, params):
        self._count("grad")
        self._points.append(params)
        return self._oracle.grad(params)

    def full_grad(self, params):
        self._count("full_grad")
        return self._oracle.full_grad(params)

    def hvp(self, params, v):
        reused = any(self._same(params, p) for p in self._points)
        self._count("hvp_reused_graph" if reused else "hvp_new_graph")
        return self._oracle.hvp(params, v)

    def per_sample_grads(self, params):
        self._count("per_sample_grads")
        return self._oracle.per_sample_grads(params)

    def curvature(self, params, kind):
        self._count("curvature")
        return self._oracle.curvature(params, kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._oracle, name)


def count_calls(rule: Any, oracle: Any, params: Any, steps: Any, hyper: Mapping | None,
                same: Callable, add: Callable) -> dict[str, list[int]]:
    """Run ``rule`` for ``steps`` steps from ``params`` (one gradient per step by the driver,
    then ``rule.step``); returns each `COUNTED` key's count per step."""
    steps = integer("steps", steps, 1, style="allowed")
    counter = CountingOracle(oracle, same)
    state = rule.init(params)
    for _ in range(steps):
        counter.new_step()
        grads = counter.grad(params)
        updates, state = rule.step(grads, state, params, counter, **dict(hyper or {}))
        params = add(params, updates)
    return {key: [step[key] for step in counter.steps] for key in COUNTED}


# --- est:timing ------------------------------------------------------------------------------

def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int,
                   sync: Callable[[], None] = lambda: None) -> float:
    """The median wall-clock time of ``fn()`` over ``repeats`` runs after ``warmup`` runs;
    ``sync`` waits for queued device work before each clock reading."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- registration data -----------------------------------------------------------------------

_PROBLEM = """``problem`` a network problem (prob:mlp and its special cases, prob:cnn,
    prob:normnet; with l2 = 0 in torch), ``params`` its parameter mapping, ``batch`` sample
    indices (None: all)."""

SPECS: dict[str, EstimatorSpec] = {
    "est:per_sample_grads": EstimatorSpec({"method": "vmap"}, f"""Per-sample gradients
    g_n = dl_n/dtheta of the unscaled per-sample loss, (B, P) in ``flatten(params)`` order.

    {_PROBLEM} ``method`` (torch): "vmap" (``vmap(grad)``, the oracle), "loop" (a Python loop
    over samples) or "fast" (from layer statistics, `vmap` for other layers); the reference
    returns its analytic per-sample gradients for every method. Train-mode BatchNorm raises.
    """),
    "est:layer_stats": EstimatorSpec({"token_flatten": False}, f"""Layer statistics of the
    per-sample loss (002 §2.1.4): a mapping layer name -> statistics.

    {_PROBLEM} Linear: ``h_bar`` [h, 1] (B, in+1), ``a``, ``s`` = dl_n/da (B, out) (tokens
    (B, T, .), or (B*T, .) with ``token_flatten``); Conv2d: ``h_bar`` (B, G, T, C_in/G*kh*kw+1),
    ``a``, ``s`` (B, G, T, C_out/G), T output positions row-major; norm layers ``h``
    (pre-norm), ``x_hat``, ``s`` (B, T, C). Unscaled (per-sample loss, not the batch loss).
    """),
    "est:hessian": EstimatorSpec({}, f"""Dense Hessian (P, P) of the batch loss (scale
    1/B for reduction "mean", 1 for "sum"), over ``flatten(params)``. {_PROBLEM}
    """),
    "est:hvp": EstimatorSpec({"mode": "forward"}, f"""Hessian-vector product H v of the batch
    loss, a tree like ``params``; ``v`` (keyword, required) a tree like ``params``.

    {_PROBLEM} ``mode`` (torch): "forward" (``jvp(grad)``) or "reverse" (the gradient of
    g^T v); the reference applies its R-operator for both.
    """),
    "est:ggn": EstimatorSpec({"v": None}, f"""Generalized Gauss-Newton G = scale sum_n
    J_n^T Lambda_n J_n (002 §2.4.3), scale of the batch loss; Lambda_n = diag(p) - p p^T (ce),
    sigma(1 - sigma) (bce), I (mse_half), 2I (mse). Dense (P, P), or the product G v as a tree
    when ``v`` is given. {_PROBLEM}
    """),
    "est:fisher_true": EstimatorSpec(
        {"mc_samples": None, "seed": 0, "y_mc": None, "scale": "mean"}, f"""True Fisher
    F = c sum_n E_{{y ~ p_theta(.|x_n)}}[g_n(y) g_n(y)^T] (P, P), c = 1/B (``scale="mean"``)
    or 1 ("sum", 002 §2.4.3 writes sum_n).

    {_PROBLEM} Exact: enumeration over classes (ce, bce), J^T Lambda J for the Gaussian
    losses. ``mc_samples=K``: the mean over K labels per input, the draws ``y_mc`` (K, B) or
    (K, B, C) when given, else drawn from ``seed`` by the layer's own generator.
    """),
    "est:fisher_emp": EstimatorSpec({"scale": "mean", "diagonal": False}, f"""Empirical
    Fisher F_emp = c sum_n g_n g_n^T with the data labels, c = 1/B ("mean") or 1 ("sum").

    {_PROBLEM} ``diagonal``: only diag F_emp, as a tree in parameter shapes (torch: the fast
    path, (s^2)^T (h_bar^2) per Linear layer, no per-sample gradients of the whole model).
    """),
    "est:kfac_factors": EstimatorSpec(
        {"labels": "empirical", "mc_samples": 1, "seed": 0, "y_mc": None,
         "s_scale": "per_sample", "spatial_scaling": None, "token_flatten": False},
        f"""Kronecker factors per Linear/Conv2d layer (002 §2.4.3, §3.1, §3.3): name ->
    {{"H", "S", "H_D", "S_D"}}.

    {_PROBLEM} H = a_H (1/B) sum_n sum_t h_bar h_bar^T, S = a_S (1/B) sum_n E_y sum_t s s^T
    (uncentred), H_D, S_D their diagonals; Linear (one position) a_H = a_S = 1; conv and
    token inputs ``spatial_scaling`` (a_H, a_S), default (1/|T|, 1/|T|); conv per group
    (G, k, k). ``labels``: "empirical" (data), "sampled" (``mc_samples`` draws: ``y_mc`` or
    from ``seed``), "exact_expectation" (classes weighted by p; ce, bce). ``s_scale``:
    "per_sample" (S as above), "batch_mean" (s/B: S/B^2), "sum" (B S). ``token_flatten``:
    tokens as samples (mean over B*T rows, ``spatial_scaling`` ignored for token inputs).
    """),
    "est:norm_factors": EstimatorSpec({"norm_h_source": "pre_norm"}, f"""Factors of each
    normalization layer (002 Prop. 3.3.1 / A.0.1): name -> dict.

    {_PROBLEM} (a) ``H_nu`` = (1/(B|T|)) sum h_x h_x^T (C, C) with h the pre-norm input
    (``norm_h_source="pre_norm"``, the statement) or x_hat ("normalized", the proof),
    ``H_beta`` = 1 1^T (1, 1), ``S`` = (1/(B|T|)) sum s_x s_x^T; (b) exact batch-mean blocks
    ``EF_nu``, ``EF_beta``, ``EF_nu_beta`` (data labels) and ``F_nu``, ``F_beta``,
    ``F_nu_beta`` (true Fisher); (d) diagonals ``*_D``. Positions x: all non-channel dims.
    """),
    "est:oracle_counter": EstimatorSpec({"steps": 1, "hyper": None, "seed": 0}, f"""Oracle
    calls per step of a rule (INVENTORY §3.10): ``rule`` (keyword, required) a rule ID of the
    same layer, run ``steps`` steps from ``params`` (``hyper`` overrides its defaults; the
    oracle's draws seeded by ``seed``).

    {_PROBLEM} Returns per step (lists): "grad" (the driver's one plus the rule's),
    "full_grad", "loss", "hvp_reused_graph" (HVP where this step evaluated the gradient),
    "hvp_new_graph", "per_sample_grads", "curvature" (dense matrices).
    """),
    "est:timing": EstimatorSpec(
        {"quantities": ("grad", "hvp"), "repeats": 5, "warmup": 1, "threads": None},
        f"""Wall-clock seconds of problem quantities (INVENTORY §3.10): the median of
    ``repeats`` (>= 5) runs after ``warmup`` runs.

    {_PROBLEM} ``quantities`` from {QUANTITIES}; returns "seconds" and "ratio" (to the
    gradient's median, also timed) per quantity, and "repeats". torch:
    ``torch.set_num_threads(threads)`` while timing (None: unchanged) and
    ``cuda.synchronize`` around each run on GPU.
    """),
    "est:state_bytes": EstimatorSpec({"optimizer": "adam", "state": None}, f"""Optimizer
    state size (INVENTORY §3.10): analytic element counts from the parameter shapes.

    {_PROBLEM} ``optimizer`` from {tuple(OPTIMIZERS)}: "per_state" elements of each state,
    "elements" their sum, "bytes" = elements x the parameters' item size; with ``state`` (a
    mapping, e.g. a state_dict) also "measured_bytes", the bytes of its array leaves.
    """),
}
