'''Option defaults, docs and pure-Python checks of the operator-level estimators (INVENTORY
§3.1 label_noise, §3.2 fd_hvp/gnb, §3.4 Hutchinson, §3.5 spectra and sharpness, §3.8).

Both layers register ``Estimator(key, fn, spec.options, spec.doc)`` from `SPECS` and keep only
the array arithmetic. Inputs are operators, not problems:

- ``H``: a dense square matrix, or a callable ``hvp(v) -> H v`` on vectors (P,) (then the
  dimension ``dim`` is needed whenever probes are drawn from a seed);
- ``loss(v) -> float`` and ``grad(v) -> (P,)`` on the flat parameter vector;
- probes are given as arrays, or drawn from an integer ``seed`` through the layer's
  ``oracle.probe(dist, shape, seed)`` (the torch generator gives other numbers than NumPy's
  from the same seed: cross-checks pass the arrays).

The seed schemes below (which seed each evaluation of a diagonal estimate gets) are pure
functions of the options, written once here.
'''

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

from contract.specs.estimators import EstimatorSpec
from contract.validate import boolean as flag
from contract.validate import choice, in_interval, integer, positive
from contract.validate import nonnegative as nonneg

DISTS = ("rademacher", "gaussian")
ABS_MODES = ("none", "abs_of_mean", "mean_of_abs")
WHICH_EIG = ("LA", "SA", "LM")
CURVATURE = ("exact", "stochastic")
DATA = ("full_train", "fixed_batch")
BN_MODES = ("eval", "train")
H_HAT_MODES = ("exact_diag", "hutchinson_independent", "hutchinson_common")
WHICH_H = ("raw", "abs", "ema_D")
BATCHES = ("same", "different")
CONVENTIONS = ("ext", "code")
GNB_MODES = ("exact", "draws")
NOISE_MODELS = ("flip_to_other", "resample_uniform")
DAMPING_MODELS = ("undamped", "damped")

option = partial(choice, require_str=True)  # "Invalid <name>: <value!r> (must be one of ...)"
count = partial(integer, low=1)  # an integer >= 1
__all__ = ["SPECS", "corrupted_count", "count", "diag_seeds", "difference_seeds", "flag",
           "needs_seed", "nonneg", "option", "positive", "start_dim", "unit_interval"]


def start_dim(dim: Any, n_from_matrix: int | None) -> int:
    """The operator dimension: the matrix's, or ``dim`` (an integer >= 1) for a callable;
    both given must agree."""
    if n_from_matrix is None:
        if dim is None:
            raise ValueError("a callable H needs its dimension dim (an integer >= 1)")
        return integer("dim", dim, 1)
    if dim is not None and integer("dim", dim, 1) != n_from_matrix:
        raise ValueError(f"dim={dim} does not match H of size {n_from_matrix}")
    return n_from_matrix


def unit_interval(name: str, value: Any) -> float:
    """A fraction in [0, 1]."""
    return in_interval(name, value, 0, 1, closed="both")


def corrupted_count(p: float, N: int) -> int:
    """The number of corrupted labels: round(p N), halves up (``flip_to_other`` rate = this/N)."""
    return int(math.floor(p * N + 0.5))


def diag_seeds(mode: str, seed: int | None, n: int) -> list[tuple[int | None, int]]:
    """Seeds ``(z_seed, batch_seed)`` of the n + 1 evaluations of a diagonal estimate:
    index 0 at the base point, 1..n at the others. ``exact_diag``: no probe, one batch;
    ``hutchinson_common``: the same probe and batch everywhere; ``hutchinson_independent``:
    fresh ones per evaluation (seed + 1 + i)."""
    base = 0 if seed is None else seed + 1
    if mode == "exact_diag":
        return [(None, base)] * (n + 1)
    if mode == "hutchinson_common":
        return [(base, base)] * (n + 1)
    return [(base + i, base + i) for i in range(n + 1)]


def difference_seeds(mode: str, batches: str, seed: int | None, T: int) -> list[tuple]:
    """Seeds ``(z_seed, batch_seed)`` of the T trajectory points of `hessian_difference`: the
    probe part follows ``H_hat_mode`` (None for exact_diag, one seed for common, seed + 1 + t
    for independent), the batch part ``batches`` (one batch, or seed + 1 + t)."""
    base = 0 if seed is None else seed + 1
    z = {"exact_diag": [None] * T, "hutchinson_common": [base] * T}.get(
        mode, [base + t for t in range(T)])
    b = [base] * T if batches == "same" else [base + t for t in range(T)]
    return list(zip(z, b, strict=True))


def needs_seed(mode: str, batches: str = "same") -> bool:
    return mode != "exact_diag" or batches == "different"


# --- docs ----------------------------------------------------------------------------------

HUTCHINSON_DIAG_DOC = """Hutchinson diagonal estimate h = z ⊙ (H z) (003 §3.5, D = E[z ⊙ (H z)]).

    ``H``: matrix or callable hvp (with ``dim``). Probes ``z`` (P,) or (K, P) as given, or
    K = ``n_probes`` draws ``probe(dist, (K, P), seed)`` with ``dist`` in {rademacher,
    gaussian}. Returns ``diag`` (P,), ``samples`` (K, P) the per-probe z_k ⊙ H z_k and
    ``n_hvp`` = K. Scaling 1/K: ``abs="none"``: mean_k samples; ``"abs_of_mean"``:
    |mean_k samples|; ``"mean_of_abs"``: mean_k |samples|.
    Rademacher: unbiased, Var(h_i) = sum_{j != i} H_ij^2; Gaussian: 2 H_ii^2 + sum_{j != i} H_ij^2.
    """

HUTCHINSON_TRACE_DOC = """Hutchinson trace estimate (1/K) sum_k z_k^T H z_k.

    Probes as `est:hutchinson_diag`. Returns ``trace``, ``samples`` (K,), ``se`` (the sample
    standard deviation / sqrt(K); None when K = 1) and ``n_hvp``. Per-probe variance:
    Rademacher 2 sum_{i != j} H_ij^2, Gaussian 2 ||H||_F^2 (symmetric H).
    """

FD_HVP_DOC = """Finite-difference Hessian-vector product (003 §3.6): (grad(x + h d) - grad(x))/h.

    ``central``: (grad(x + h d) - grad(x - h d))/(2h). Returns ``hvp`` (P,) and
    ``evaluations`` (gradient calls: 2). On a quadratic it is H d for every h, up to rounding
    of order eps (||grad(x + h d)|| + ||grad(x)||)/h. Default h = 1e-6, as `rule:so.newton_cg`.
    """

POWER_DOC = """Power iteration with HVPs: v <- (H + shift I) v / ||.||, top_n with Gram-Schmidt deflation.

    Each eigenpair k starts from ``v0[k]`` (given (P,) or (top_n, P)) or from
    ``probe("gaussian", (top_n, P), seed)``, orthogonalised (twice) against the pairs found
    before; the iterate is deflated the same way at every step. Stops when the Rayleigh
    quotient mu of H + shift I changes by at most ``tol`` |mu| (PyHessian's defaults tol = 1e-3,
    max_iter = 100, not its code); ``tol=0`` runs all max_iter steps (converged False).
    Returns ``eigenvalues`` (top_n,) = v^T H v of H itself (the shift removed),
    ``eigenvectors`` (top_n, P), ``residuals`` ||H v - lam v||, ``iterations``, ``converged``
    and ``n_hvp``. The Rayleigh quotient converges twice as fast as the vector: tol on it
    leaves the vector about sqrt(tol) accurate. Without shift it finds the largest-magnitude eigenvalues;
    with shift c > -lambda_min, H + cI is PSD and it finds the algebraically largest.
    """  # noqa: E501

LANCZOS_DOC = """Lanczos with full reorthogonalization and stochastic Lanczos quadrature (004 App. G.1).

    ``m`` Lanczos steps (at most P) from each of the ``n_v`` start vectors ``v0`` (given (P,)
    or (n_v, P), or ``probe("gaussian", (n_v, P), seed)``); every new vector is
    orthogonalised twice against all earlier ones; a step stops early when beta <= 10 P eps
    ||T|| (an invariant subspace). Returns ``eigenvalues`` (k,): the k extreme Ritz values of
    the first start vector (``which`` LA largest first, SA smallest first, LM largest magnitude
    first) and their ``residuals`` beta_m |s_m| (= ||H y - theta y||); ``nodes``, ``weights``
    (n_v, m): Ritz values theta_j and quadrature weights tau_j = s_{1j}^2 per start vector
    (rows shorter on breakdown are padded with node 0, weight 0); ``grid`` and ``density``:
    phi(t) = (1/n_v) sum_l sum_j tau_lj N(t; theta_lj, sigma^2), integrating to 1 (a start
    vector is normalised). ``sigma`` None: 1% of the node range (of max |theta| when the range
    is 0, 1 when all nodes are 0); ``grid`` None: ``n_grid`` points over the node range
    +- 3 sigma. With m = P, nodes are the eigenvalues and weights (q_i^T v)^2 / ||v||^2.
    """  # noqa: E501

SHARPNESS_DOC = """Sharpness metrics at x* (004 §3): lambda_max, tr(H), delta L_worst, delta L_avg.

    ``delta_L_worst`` = L(x + rho g/||g||) - L(x), the printed first-order maximiser (0 when
    g = 0); ``delta_L_avg`` = (1/K) sum_k [L(x + rho z_k/||z_k||) - L(x)] over K Gaussian
    directions ``z`` (given (K, P), or ``probe("gaussian", (n_samples, P), seed)``) with
    ``delta_L_avg_se`` (std/sqrt(K); None when K = 1). rho = 0.1. With ``H``: ``lambda_max``
    and ``trace``, exact (``curvature="exact"``: eigvalsh / trace of the dense H, a callable is
    materialised with P HVPs) or stochastic (power iteration from probe(seed + 1), tol 1e-3,
    max_iter 100, and Hutchinson Rademacher trace with ``n_probes`` from probe(seed + 2)).
    ``pgd_steps`` n > 0 (an extension, reported separately as ``delta_L_worst_pgd``): the best
    of eps_0 = rho g/||g|| and n steps eps <- Proj_rho(eps + rho grad(x + eps)/||grad||).
    ``include_weight_decay_term``: L(v) + (weight_decay/2) ||v||^2. ``data`` and ``bn_mode``
    describe how the caller built ``loss`` (echoed in ``protocol``); ``n_evaluations`` counts
    loss calls.
    """

SENSITIVITY_DOC = """Local Hessian sensitivity (004 §6.2 Eq. (7)): max_i ||H'(x + rho d_i/||d_i||) - H'(x)||_F.

    ``H_hat(x, seed)`` returns a diagonal estimate (P,); ``seed`` is a pair (z_seed, batch_seed)
    from ``H_hat_mode`` (`diag_seeds`: exact_diag (None, one batch), hutchinson_common (same z
    and batch everywhere), hutchinson_independent (fresh z and batch per evaluation)).
    ``which``: raw H' = H_hat; abs |H_hat|; ema_D D = beta2 D_prev + (1 - beta2)|H_hat|
    (``D_prev`` default 0; beta2 = 0.999, SASSHA App. E). N = 10 directions ``delta`` (N, P) or
    ``probe("gaussian", (N, P), seed)``. Returns ``sensitivity``, ``values`` (N,),
    ``reference_level`` (the same statistic at rho = 0: fresh evaluations at x), ``n_evaluations``.
    """  # noqa: E501

DIFFERENCE_DOC = """Hessian difference along a trajectory (004 §6.2 Eq. (8)): ||H'(x_t) - H'(x_{t-k})||_F.

    ``trajectory`` (T, P), k = 10: ``differences`` (T - k,) for t = k..T-1 and their ``max``.
    H' as in `est:hessian_sensitivity` (``ema_D`` runs D_t = beta2 D_{t-1} + (1 - beta2)|H_hat|
    along the trajectory from ``D_prev``); seeds per `difference_seeds` (``batches`` same or
    different). ``sophia_clip_before_diff``: H' <- max(gamma H', clip_eps) (the Sophia
    denominator, gamma = 0.01, eps = 1e-12 [ext: Liu et al. 2024]) before the difference.
    """  # noqa: E501

PRECOND_DOC = """Preconditioner statistics (004 §6.1, Fig. 4) over a window of steps.

    ``D`` (P,) or (T, P): the preconditioner entries; the denominator is
    (D / bias_correction)^power + eps (explicit options: power 1, no eps, no correction by
    default). Returns ``denominator`` (T, P), ``precond_step_size`` (T,) = eta
    (sum_i denom_i^-2)^(1/2) = ||eta D^-1||_F, ``hist_density`` and ``hist_edges`` (a density
    histogram of all denominator entries, ``bins``), and with ``x`` (T + 1, P) the
    ``update_size`` (T,) = ||x_{t+1} - x_t||_2.
    """

ITERATION_DOC = """Spectral radius of the GD, heavy-ball and NAG iteration matrices on a grid.

    ``step_lambda`` (H,) = alpha lambda and ``momentum`` (M,) = beta. GD: |1 - h|; heavy ball
    (`rule:fo.heavy_ball` thesis form) [[1 + beta - h, -beta], [1, 0]]; NAG
    (`rule:fo.nesterov` thesis_eq9) r^2 - (1 + beta)(1 - h) r + beta (1 - h). The 2x2 radius is
    the larger root modulus of r^2 - T r + D: sqrt(|D|) for complex roots, (|T| + sqrt(T^2 -
    4D))/2 for real ones. Returns ``gd`` (H,), ``heavy_ball`` (H, M), ``nag`` (H, M).
    """

REDUCTION_DOC = """Reduction ratio rho_k of `rule:so.newton_cg` (003 §3.6): actual / predicted.

    ``actual`` = L(x + p) - L(x); ``predicted`` = q(p) - q(0) = g^T p + 1/2 p^T H p (model
    ``undamped``), + 1/2 lam ||p||^2 (``damped``); ``ratio`` = actual / predicted, 1.0 when
    predicted = 0 (the rule's convention).
    """

GNB_DOC = """Gauss-Newton-Bartlett diagonal from model-sampled labels.

    ``G`` (N, C, P): per-sample gradients at each label; ``p`` (N, C): the model's label
    probabilities. ``convention="ext"`` [ext: Liu et al. 2024]: h = B g_hat ⊙ g_hat;
    ``"code"`` [code: Liuhong99/Sophia@a7e1572]: g_hat ⊙ g_hat (the B folded into rho bs).
    g_hat is the 1/B minibatch mean gradient with labels y ~ p. ``mode="exact"``: E[h] from the
    enumeration of `est:minibatch_moments` (``sampling``, ``max_batches``); ``mode="draws"``:
    per-draw h for given ``indices`` (K, B) and ``y`` (K, B), ``samples`` (K, P) and their
    mean ``h``.
    """

LABEL_NOISE_DOC = """Label noise: corrupt a fraction p of the labels (the test set stays clean).

    m = round(p N) samples are chosen (the m smallest of a Gaussian draw u[0]); ``flip_to_other``
    gives each a uniformly chosen other class (rate exactly m/N); ``resample_uniform``
    [code: LOG-postech/Sassha@75e2de4] a uniform class among all C (expected rate
    (m/N)(C-1)/C). Uniforms are Phi(u[1]). ``draws`` (2, N) Gaussian, or
    ``probe("gaussian", (2, N), seed)``. Returns ``labels``, ``mask`` (chosen), ``changed``
    and ``rate`` (fraction changed).
    """

GEN_GAP_DOC = """Generalisation gap from logits: mean cross-entropy and accuracy on train and val.

    Returns ``L_train``, ``L_val``, ``delta_L`` = L_val - L_train, ``acc_train``, ``acc_val``
    and ``delta_acc`` = acc_train - acc_val. Protocol: mean (1/N) softmax cross-entropy over
    the whole given set, logits computed by the caller (eval mode), argmax accuracy with ties
    to the lowest class.
    """

_PROBES = {"dist": "rademacher", "n_probes": 1, "seed": None, "dim": None}
SPECS: Mapping[str, EstimatorSpec] = {
    "est:hutchinson_diag": EstimatorSpec({**_PROBES, "abs": "none"}, HUTCHINSON_DIAG_DOC),
    "est:hutchinson_trace": EstimatorSpec(_PROBES, HUTCHINSON_TRACE_DOC),
    "est:fd_hvp": EstimatorSpec({"h": 1e-6, "central": False}, FD_HVP_DOC),
    "est:power_iteration": EstimatorSpec(
        {"shift": 0.0, "top_n": 1, "tol": 1e-3, "max_iter": 100, "seed": None, "dim": None},
        POWER_DOC),
    "est:lanczos_slq": EstimatorSpec(
        {"m": 30, "k": 1, "which": "LA", "n_v": 1, "sigma": None, "grid": None, "n_grid": 200,
         "seed": None, "dim": None}, LANCZOS_DOC),
    "est:sharpness": EstimatorSpec(
        {"rho": 0.1, "n_samples": 100, "seed": None, "H": None, "curvature": "exact",
         "n_probes": 100, "pgd_steps": 0, "weight_decay": 0.0,
         "include_weight_decay_term": False, "data": "full_train", "bn_mode": "eval"},
        SHARPNESS_DOC),
    "est:hessian_sensitivity": EstimatorSpec(
        {"rho": 0.1, "N": 10, "H_hat_mode": "exact_diag", "which": "raw", "beta2": 0.999,
         "D_prev": None, "seed": None}, SENSITIVITY_DOC),
    "est:hessian_difference": EstimatorSpec(
        {"k": 10, "H_hat_mode": "exact_diag", "which": "raw", "batches": "same",
         "sophia_clip_before_diff": False, "gamma": 0.01, "clip_eps": 1e-12, "beta2": 0.999,
         "D_prev": None, "seed": None}, DIFFERENCE_DOC),
    "est:precond_stats": EstimatorSpec(
        {"eta": 1.0, "power": 1.0, "eps": 0.0, "bias_correction": 1.0, "x": None, "bins": 50},
        PRECOND_DOC),
    "est:iteration_spectrum": EstimatorSpec({}, ITERATION_DOC),
    "est:reduction_ratio": EstimatorSpec({"lam": 0.0, "model": "undamped"}, REDUCTION_DOC),
    "est:gnb": EstimatorSpec(
        {"convention": "ext", "mode": "exact", "sampling": "without_replacement",
         "max_batches": 200_000, "indices": None, "y": None}, GNB_DOC),
    "est:label_noise": EstimatorSpec(
        {"model": "flip_to_other", "draws": None, "seed": None}, LABEL_NOISE_DOC),
    "est:gen_gap": EstimatorSpec({}, GEN_GAP_DOC),
}
"""Estimator ID -> option defaults and doc (the same in both layers)."""
