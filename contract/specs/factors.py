'''The factor and matrix-diagnostic estimators both layers share (INVENTORY §3.3-§3.8).

`est:minmax`, `est:efim`, `est:ema`, `est:bias_correction`, `est:spatial_avg`, `est:dist_agg`
(factors) and `est:eig_exact`, `est:condition_number`, `est:gershgorin`, `est:offdiag_noise`,
`est:snr`, `est:fft2`, `est:fisher_agreement`, `est:newton_decrement`, `est:kl_outputs`
(matrix diagnostics). Written once here: the registration data (ID -> option defaults and doc,
variants as ``<ID>[<variant>]``), the option checks with the messages both layers raise, and
the pure-Python pieces that do no array arithmetic: the EMA weights of each convention, the
block size of `spatial_avg`, the top-k count, and a Hungarian assignment (the torch layer's
matching; the reference uses `scipy.optimize.linear_sum_assignment`, an independent
implementation of the same optimum).
'''

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from contract.specs.estimators import EstimatorSpec
from contract.validate import choice, in_interval, integer, nonnegative

__all__ = [
    "CODE_EPS",
    "DEGENERATE",
    "EMA_CONVENTION",
    "MATCHES",
    "SPECS",
    "assignment",
    "block_size",
    "check_lam",
    "ema_coefficients",
    "ema_weights",
    "noise_source",
    "option",
    "refresh_steps",
    "top_k_count",
    "zero_tolerance",
]

DEGENERATE = ("ones", "zeros", "nan")
FORMS = ("vector", "matrix")
MINMAX = ("thesis", "code", "none")
INITS = ("zeros", "ones", "first_observation", "y0")
COUNTS = ("steps", "refreshes")
INPUTS = ("signed", "abs")
ORDERS = ("thesis", "code")
MATCHES = ("sort", "hungarian")
OFFDIAG = ("upper", "full")
CODE_EPS = 1e-6
LAMBDA = 1e-3  # 002 Prop. 3.3.2: lambda = 0.001
GAMMA = 0.8  # 002 §5.1.1 / AdaFisher code: gamma = 0.8
SIGMA = 1e-3  # 002 §3.2: sigma = 1e-3


def option(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """A string option from ``allowed`` (``ValueError`` naming it otherwise)."""
    return choice(name, value, tuple(allowed))


def check_lam(lam: Any) -> float:
    """The Tikhonov damping ``lam`` >= 0."""
    return nonnegative("lam", lam)


def ema_weights(convention: str, gamma: Any = None, beta: Any = None,
                gammas: Any = None) -> tuple[float, float]:
    """``(a, c)`` of ``y <- a y + c x`` for a convention (INVENTORY `est:ema`):
    thesis (gamma, 1 - gamma) (002 Eq. (19)); code (0.1 gamma, 0.01 gamma); fisheradaptune
    (1 - gammas[0], gammas[1]); sassha and adam (beta, 1 - beta). Each weight in [0, 1]."""
    if convention in ("thesis", "code"):
        gamma = in_interval("gamma", gamma, 0, 1, closed="both")
        return (gamma, 1.0 - gamma) if convention == "thesis" else (0.1 * gamma, 0.01 * gamma)
    if convention == "fisheradaptune":
        if not isinstance(gammas, Sequence) or len(gammas) != 2:
            raise ValueError(f"Invalid gammas: {gammas!r} (must be a pair (g0, g1))")
        g0 = in_interval("gammas[0]", gammas[0], 0, 1, closed="both")
        return 1.0 - g0, in_interval("gammas[1]", gammas[1], 0, 1, closed="both")
    beta = in_interval("beta", beta, 0, 1, closed="both")
    return beta, 1.0 - beta


def refresh_steps(T: int, k: Any) -> list[bool]:
    """Whether step t = 1..T refreshes under `rule:meta.every_k` (t = 1, 1 + k, ...)."""
    k = integer("k", k, 1)
    return [(t - 1) % k == 0 for t in range(1, T + 1)]


def block_size(shape: tuple[int, ...], b: Any) -> int:
    """The `spatial_avg` block: ``b`` given (an integer dividing the size), else the conv
    mapping kh*kw for a 4-D (C_out, C_in, kh, kw) tensor and 1 (no averaging) otherwise."""
    d = math.prod(shape)
    if b is None:
        return shape[2] * shape[3] if len(shape) == 4 else 1
    b = integer("b", b, 1)
    if d % b:
        raise ValueError(f"Invalid b: {b} (must divide d = {d}, the number of entries of D)")
    return b


def noise_source(Z_given: bool, seed: Any) -> int | None:
    """Exactly one of the standard-normal draws ``Z`` and an integer ``seed`` >= 0."""
    if Z_given == (seed is not None):
        raise ValueError("give exactly one of Z (standard-normal draws (n, n)) and seed")
    return None if seed is None else integer("seed", seed, 0)


def zero_tolerance(zero_rtol: Any, n: int, eps: float, scale: float) -> float:
    """The inertia's zero band: |lam| <= zero_rtol * max|lam|, ``zero_rtol`` defaulting to
    10 n eps (eps the machine epsilon of the dtype computed in): above the backward error
    c n eps ||M|| of a symmetric eigensolver, so an exact zero eigenvalue counts as zero."""
    rtol = 10 * n * eps if zero_rtol is None else nonnegative("zero_rtol", zero_rtol)
    return rtol * scale


def top_k_count(P: int, top_frac: Any) -> int:
    """k = max(1, ceil(top_frac * P)) for ``top_frac`` in (0, 1]."""
    top_frac = in_interval("top_frac", top_frac, 0, 1, closed="right")
    return max(1, math.ceil(top_frac * P))


def assignment(cost: Sequence[Sequence[float]]) -> list[int]:
    """The minimum-cost perfect matching of a square cost matrix: ``col[i]`` for row i.

    The Hungarian method with potentials (shortest augmenting paths), O(n^3), pure Python.
    """
    n = len(cost)
    u, v = [0.0] * (n + 1), [0.0] * (n + 1)
    owner, way = [0] * (n + 1), [0] * (n + 1)  # owner[j]: the row matched to column j (1-based)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        slack, used = [math.inf] * (n + 1), [False] * (n + 1)
        while owner[j0]:
            used[j0] = True
            i0, delta, j1 = owner[j0], math.inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = cost[i0 - 1][j - 1] - u[i0] - v[j]
                    if reduced < slack[j]:
                        slack[j], way[j] = reduced, j0
                    if slack[j] < delta:
                        delta, j1 = slack[j], j
            for j in range(n + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    slack[j] -= delta
            j0 = j1
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    col = [0] * n
    for j in range(1, n + 1):
        col[owner[j] - 1] = j - 1
    return col


# --- registration data ------------------------------------------------------------------------

MINMAX_DOC = """Min-max normalization mm(x) = (x - min x)/(max x - min x) (002 Prop. 3.3.2, Eq. (20)).

    Over all entries of ``x`` (one factor vector of one layer); the result has the shape of x.
    ``degenerate`` (constant or one-entry x, max = min): every entry becomes 1 ("ones"), 0
    ("zeros") or NaN ("nan", asked for explicitly). ``form="matrix"`` computes the proof's
    printed matrix form M' = D^-1 (M - m_min I) D^-1, D = diag(sqrt(m_max - m_min)), with
    M = diag(x), as dense matrix products and returns diag(M') (a second code path).
    Non-finite x raises.
    """  # noqa: E501

MINMAX_CODE_DOC = """Min-max normalization of the AdaFisher code (AtlasAnalyticsLab/AdaFisher@eb858c6).

    +inf entries become 1 and -inf entries 0, then (x - min x)/(max x - min x + eps),
    eps = 1e-6: defined for constant x (all zeros) and tending to the thesis form as
    max - min >> eps. NaN raises.
    """  # noqa: E501

EFIM_DOC = """Diagonal empirical FIM F = H' (x) S' + lam I in weight shape (002 Eq. (20)/(23), (21)).

    ``H_D`` (in + 1,) and ``S_D`` (out,) are diagonal factors; returns ``F`` (out, in + 1) with
    F[a, b] = S'[a] H'[b] + lam, whose column-major vec is diag(H' (x) S') + lam, and
    ``H_prime``, ``S_prime``. ``minmax``: "thesis" (`est:minmax` with ``degenerate``), "code"
    (`est:minmax[code]`) or "none" (raw factors, as FisherAdapTune). With ``G`` (out, in + 1):
    ``G_bar`` = G / F, the preconditioned gradient F^-1 g of Eq. (21).
    """  # noqa: E501

EMA_DOC = """Exponential moving average y_t = a y_{t-1} + c x_t over a stack x (T, ...) of observations.

    Weights (a, c) of the convention {convention}. ``init``: y_0 = 0 ("zeros"), 1 ("ones"),
    x_1 ("first_observation": y_0 = x_1, then the update runs on x_1 as on every x_t) or the
    given ``y0`` ("y0"). Lazy updates (`rule:meta.every_k`): the average moves only at steps
    t = 1, 1 + k, 1 + 2k, ... and holds otherwise. Returns ``y`` (the last value),
    ``trajectory`` (T, ...) and ``n`` (the number of updates). Closed form with k = 1:
    y_t = a^t y_0 + c sum_tau a^(t - tau) x_tau; fixed point c x/(1 - a) for constant x.
    """  # noqa: E501

EMA_CONVENTIONS = {
    "thesis": "(gamma, 1 - gamma) of 002 Eq. (19), gamma = 0.8",
    "code": "(0.1 gamma, 0.01 gamma) of the AdaFisher code, gamma = 0.8 (initial factors 1)",
    "fisheradaptune": "(1 - gammas[0], gammas[1]) = (0.08, 0.008) of FisherAdapTune",
    "sassha": "(beta, 1 - beta) of SASSHA's Hessian EMA, beta = beta_2 = 0.999",
    "adam": "(beta, 1 - beta) of Adam's first moment, beta = beta_1 = 0.9",
}

BIAS_CORRECTION_DOC = """Bias correction x_hat = x/(1 - beta^c) (INVENTORY §5 item 11: 1-based counters).

    ``c="steps"``: the exponent is the step count ``t``; ``c="refreshes"``: the refresh count
    ``n`` (SASSHA ``bc_count``). For constant input and zero initialization the corrected EMA
    equals the input when the exponent is the number of EMA updates. ``beta`` in [0, 1).
    """  # noqa: E501

SPATIAL_AVG_DOC = """AdaHessian spatial averaging D^(s)[ib + j] = (1/b) sum_{k=1..b} D[ib + k] (003 §3.5).

    Blocks of ``b`` contiguous entries of D flattened row-major; ``b`` must divide d. ``b=None``
    is the conv mapping: b = kh*kw over the last two dims of a (C_out, C_in, kh, kw) tensor,
    and no averaging (b = 1) for tensors of other ranks. ``input``: "signed" D (printed) or
    "abs" |D| (official AdaHessian code). The result has the shape of D.
    """  # noqa: E501

DIST_AGG_DOC = """Aggregation of K shards' diagonal factors (002 Eq. (22) and the display after it).

    ``H_shards`` (K, in + 1) and ``S_shards`` (K, out) hold each shard's raw diagonal factors.
    ``order="thesis"``: H_SUM = (1/K) sum_k H^(k), S_SUM likewise, F_SUM = mm(H_SUM) (x)
    mm(S_SUM) + lam (in weight shape, as `est:efim`). ``order="code"``: each shard's factors
    are normalized first and the normalized factors averaged, F_SUM = H_SUM (x) S_SUM + lam.
    ``minmax`` and ``degenerate`` choose the normalization as in `est:efim`.
    """  # noqa: E501

EIG_EXACT_DOC = """Exact eigen-decomposition of a symmetric matrix (H, G or F of a small model) and its inertia.

    Returns ``eigenvalues`` (ascending), ``eigenvectors`` (columns; each column's largest-
    magnitude entry positive), ``n_pos``, ``n_zero``, ``n_neg`` and ``zero_tol``: eigenvalues
    with |lam| <= zero_tol count as zero, zero_tol = zero_rtol * max|lam| with zero_rtol
    defaulting to 10 n eps of the dtype. M must be symmetric (checked) and is symmetrized.
    """  # noqa: E501

CONDITION_NUMBER_DOC = """Condition number kappa = lam_max/lam_min of a symmetric positive-definite matrix.

    Returns ``kappa``, ``lam_max``, ``lam_min``. Raises unless M is symmetric with
    lam_min > n * eps * lam_max (positive definite in the dtype's precision).
    """  # noqa: E501

GERSHGORIN_DOC = """Gershgorin discs D(a_ii, R_i), R_i = sum_{j != i} |a_ij|, and diagonal-dominance metrics (002 §3.2).

    Returns ``centers`` (a_ii), ``radii`` (R_i), the eigenvalues ``eig_real``, ``eig_imag``
    (eigvalsh for an exactly symmetric M, else eigvals, sorted by real then imaginary part) and:
    ``frac_in_union`` (eigenvalues within some disc, up to a slack of n eps ||M||_2),
    ``ratio_max``, ``ratio_median`` of R_i/|a_ii| (inf when a_ii = 0 < R_i, 0 when both
    vanish), ``frac_dominant`` (rows with |a_ii| > R_i), ``diag_energy`` ||Diag M||_F^2/||M||_F^2,
    ``offdiag_rel2`` ||M - Diag M||_2/||M||_2 and ``eig_dist`` (per eigenvalue, the distance to
    the nearest a_ii over ||M||_2). M must be a non-zero finite square matrix.
    """  # noqa: E501

NOISE_DOC = """Eigenvalue displacement under off-diagonal Gaussian noise (002 §3.2).

    M_hat = A + E with e_ij = sigma z_ij for i != j and e_ii = 0, z the standard-normal draws
    ``Z`` (n, n) or ``probe("gaussian", (n, n), seed)`` of the layer's oracle. E is not
    symmetrized (as printed); ``symmetrize=True`` uses e_ij = e_ji = sigma (z_ij + z_ji)/sqrt(2)
    (still N(0, sigma^2) entries). Eigenvalues of A and M_hat (complex; real and imaginary
    parts) sorted by decreasing real part; Kaiser eigenvalues: those of A with real part
    > ``kaiser`` (= 1). Each eigenvalue of A is matched to one of M_hat by position in that
    order (``match="sort"``) or by the minimum-total-|difference| assignment ("hungarian");
    ``displacement`` |lam_k(M_hat) - lam_k(A)| for the Kaiser eigenvalues (decreasing real
    part), with ``rel_displacement`` over |lam_k(A)| and ``max_displacement`` (0 if none).
    Also returns ``E``, ``M_hat``, ``match_index`` (the M_hat eigenvalue each A eigenvalue is
    matched to) and ``n_kaiser``. ``controls=True`` adds ``controls``: the same protocol with
    the same E on the control matrices of A (`control_matrices`).
    """  # noqa: E501

SNR_DOC = """Signal-to-noise ratio SNR = 10 log10(sum_i |M_ii|^2 / sum_{j>i} |M_hat_ij|^2) in dB (002 §3.2).

    ``offdiag="upper"`` (printed: j > i) or "full" (all j != i). M_hat is given, or built from
    ``Z``/``seed`` as in `est:offdiag_noise` (``sigma``, ``symmetrize``). Returns ``snr``
    (+inf for a diagonal M_hat; raises when both sums vanish), ``signal`` and ``noise`` (the two
    sums). ``controls=True`` (with Z or seed) adds the same for the control matrices of M.
    """  # noqa: E501

FFT2_DOC = """2-D DFT as printed, F(A)_kl = sum_{p,q} A_pq exp(-2 pi i (pk/m + ql/n)) (002 §3.2).

    Computed as the explicit matrix product W_m A W_n (W_m[k, p] = exp(-2 pi i pk/m)), equal
    to numpy.fft.fft2. Returns ``F_real``, ``F_imag``, ``magnitude`` |F|, ``magnitude_shifted``
    (fftshift image) and the energy fractions of |F|^2 along the lines k - l = c (mod n)
    (``diff_energy``, index c = 0..n-1) and k + l = c (mod n) (``sum_energy``), and the same
    for the shifted image (``shifted_diff_energy``, ``shifted_sum_energy``). ``controls=True``
    adds the same for the control matrices of A (square A).
    """  # noqa: E501

FISHER_AGREEMENT_DOC = """Agreement of candidate diagonals with a reference Fisher diagonal r (002 §6.1.2, Fig. 6.2(D)).

    ``candidates``: a mapping name -> array of r's size (entries compared flattened). Per
    candidate c: ``mae`` mean|c - r|; ``rel_l1`` sum|c - r|/sum|r|; ``rel_l1_scaled``
    min_alpha sum|alpha c - r|/sum|r| (alpha the weighted median of r_i/c_i, weights |c_i|);
    ``cosine`` (NaN for a zero candidate); ``spearman`` (Pearson correlation of average ranks;
    NaN when either vector is constant, where it is undefined); ``top_k_overlap`` |top_k(r) & top_k(c)|/k with
    k = max(1, ceil(top_frac P)), ties broken by the lower index.
    """  # noqa: E501

NEWTON_DECREMENT_DOC = """Newton decrement lambda(theta) = g^T F^-1 g as printed (002 A.0.3), and its square root.

    ``F`` of g's shape is a diagonal (AdaFisher's weight-shaped F; g^T F^-1 g = sum g^2/F,
    F > 0 required); ``F`` (P, P) with a vector g (P,) is a dense symmetric positive-definite
    matrix (Cholesky solve). Returns ``decrement`` and ``sqrt_decrement``.
    """  # noqa: E501

KL_OUTPUTS_DOC = """Mean categorical KL[p_theta(.|x) || p_{theta + d}(.|x)] over inputs, exact from logits.

    ``logits_p`` and ``logits_q`` (N, C) are the logits at theta and theta + d; p = softmax.
    Returns ``kl`` = (1/N) sum_n KL_n (scaling 1/N) and ``kl_per_input`` (N,), computed from
    log-softmax: KL_n = sum_c p_nc (log p_nc - log q_nc).
    """  # noqa: E501

_MINMAX = {"minmax": "thesis", "degenerate": "ones"}
_NOISE = {"sigma": SIGMA, "symmetrize": False, "seed": None}
_EMA_OPTIONS = {
    "thesis": {"gamma": GAMMA, "init": "zeros", "k": 1},
    "code": {"gamma": GAMMA, "init": "ones", "k": 1},
    "fisheradaptune": {"gammas": (0.92, 0.008), "init": "ones", "k": 1},
    "sassha": {"beta": 0.999, "init": "zeros", "k": 1},
    "adam": {"beta": 0.9, "init": "zeros", "k": 1},
}


def _ema_key(convention: str) -> str:
    return "est:ema" if convention == "thesis" else f"est:ema[{convention}]"


SPECS: dict[str, EstimatorSpec] = {
    "est:minmax": EstimatorSpec({"degenerate": "ones", "form": "vector"}, MINMAX_DOC),
    "est:minmax[code]": EstimatorSpec({"eps": CODE_EPS}, MINMAX_CODE_DOC),
    "est:efim": EstimatorSpec({"lam": LAMBDA, **_MINMAX}, EFIM_DOC),
    **{
        _ema_key(name): EstimatorSpec(
            options, EMA_DOC.replace("{convention}", EMA_CONVENTIONS[name])
        )
        for name, options in _EMA_OPTIONS.items()
    },
    "est:bias_correction": EstimatorSpec({"c": "steps"}, BIAS_CORRECTION_DOC),
    "est:spatial_avg": EstimatorSpec({"b": None, "input": "signed"}, SPATIAL_AVG_DOC),
    "est:dist_agg": EstimatorSpec({"lam": LAMBDA, "order": "thesis", **_MINMAX}, DIST_AGG_DOC),
    "est:eig_exact": EstimatorSpec({"zero_rtol": None}, EIG_EXACT_DOC),
    "est:condition_number": EstimatorSpec({}, CONDITION_NUMBER_DOC),
    "est:gershgorin": EstimatorSpec({}, GERSHGORIN_DOC),
    "est:offdiag_noise": EstimatorSpec(
        {**_NOISE, "match": "sort", "kaiser": 1.0, "controls": False}, NOISE_DOC
    ),
    "est:snr": EstimatorSpec({**_NOISE, "offdiag": "upper", "controls": False}, SNR_DOC),
    "est:fft2": EstimatorSpec({"controls": False}, FFT2_DOC),
    "est:fisher_agreement": EstimatorSpec({"top_frac": 0.1}, FISHER_AGREEMENT_DOC),
    "est:newton_decrement": EstimatorSpec({}, NEWTON_DECREMENT_DOC),
    "est:kl_outputs": EstimatorSpec({}, KL_OUTPUTS_DOC),
}
"""Estimator ID (variants as ``<ID>[<variant>]``) -> option defaults and doc (both layers)."""

EMA_CONVENTION = {_ema_key(name): name for name in _EMA_OPTIONS}
"""EMA registry key -> its convention name."""


def ema_coefficients(key: str, weights: dict[str, Any]) -> tuple[float, float]:
    """``(a, c)`` of the EMA registered as ``key`` from its weight options (``gamma``,
    ``gammas`` or ``beta``); another weight option is a ``TypeError``."""
    expected = set(SPECS[key].options) - {"init", "k"}
    if set(weights) != expected:
        raise TypeError(
            f"{key} takes the weight option(s) {sorted(expected)}, got {sorted(weights)}"
        )
    return ema_weights(EMA_CONVENTION[key], **weights)
