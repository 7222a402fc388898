'''The `est:*` estimators (except `est:zo_*`) both layers share (INVENTORY §3.1, §3.2, §3.8).

The registration data (ID -> options and doc) and the pure-Python input checks of the
gradient-noise and unified-view estimators are identical in the two layers, so they are written
once here; each layer registers ``Estimator(key, fn, spec.options, spec.doc)`` from `SPECS` and
keeps only the array arithmetic (NumPy or torch). The docs are written in a function
docstring's layout (continuation lines indented by four spaces) because the layers also give
them to their functions as ``__doc__``. The torch `est:uv_quantities` doc adds one line
(`TORCH_UV_NOTE`) on dtypes and devices.
'''

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from contract.rule import freeze
from contract.validate import choice, integer

__all__ = [
    "LABELS",
    "MAX_BATCHES",
    "MODES",
    "P_SUM_TOL",
    "SAMPLINGS",
    "SPECS",
    "SYM_RTOL",
    "TORCH_UV_NOTE",
    "EstimatorSpec",
    "batch_count",
    "check_draw_args",
    "check_exact_draws",
    "check_labels",
    "check_losses",
    "check_p",
    "ddof_option",
    "moment_options",
    "noise_inputs",
]

LABELS = ("data", "model")
SAMPLINGS = ("with_replacement", "without_replacement")
MODES = ("exact", "mc")
P_SUM_TOL = 1e-6
MAX_BATCHES = 200_000
SYM_RTOL = 1e-8


@dataclass(frozen=True)
class EstimatorSpec:
    """The shared part of a registered estimator: its option defaults and its doc."""

    options: Mapping[str, Any]
    doc: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(self.options))


# --- option and input checks (the messages both layers raise) ---------------------------------

_choice = partial(choice, style="allowed")  # "Invalid <name>: <value!r>; allowed: <...>"
_integer = partial(integer, style="allowed")  # every failure a ValueError


def check_labels(labels: Any) -> str:
    """The ``labels`` option: "data" or "model"."""
    return _choice("labels", labels, LABELS)


def check_p(labels: str, p_given: bool) -> None:
    """``p`` (the label probabilities) is given exactly when ``labels == "model"``."""
    if labels == "data" and p_given:
        raise ValueError("p is only used with labels='model'; got p with labels='data'")
    if labels == "model" and not p_given:
        raise ValueError("labels='model' needs the label probabilities p (N, C)")


def ddof_option(ddof: Any, N: int) -> int:
    """``ddof`` of `grad_noise`: an integer in [0, N - 1]."""
    return _integer("ddof", ddof, 0, N - 1)


def moment_options(N: int, B: Any, sampling: Any, mode: Any, max_batches: Any) -> tuple[int, int]:
    """``(B, max_batches)`` of `minibatch_moments` after checking ``sampling`` and ``mode``;
    without replacement a batch holds at most N samples."""
    _choice("sampling", sampling, SAMPLINGS)
    _choice("mode", mode, MODES)
    hi = N if sampling == "without_replacement" else math.inf
    B = _integer(f"batch size B (N={N}, sampling={sampling!r})", B, 1, hi)
    return B, _integer("max_batches", max_batches, 1)


def batch_count(N: int, B: int, sampling: str, max_batches: int) -> int:
    """The number of batches to enumerate (combinations without replacement, multisets with
    replacement), else a ValueError when it exceeds ``max_batches``."""
    without = sampling == "without_replacement"
    count = math.comb(N, B) if without else math.comb(N + B - 1, B)
    if count > max_batches:
        raise ValueError(
            f"exact enumeration of {count} batches (N={N}, B={B}, sampling={sampling!r}) "
            f"exceeds max_batches={max_batches}; raise max_batches or use mode='mc'"
        )
    return count


def check_draw_args(indices_given: bool, y_given: bool, labels: str) -> None:
    """``mode="mc"`` needs the batch indices, and the labels ``y`` exactly for model labels."""
    if not indices_given:
        raise ValueError("mode='mc' needs the batch index draws indices (K, B)")
    if (not y_given) != (labels == "data"):
        raise ValueError("y, the sampled labels (K, B), goes with labels='model' and only with it")


def check_exact_draws(indices_given: bool, y_given: bool) -> None:
    """``mode="exact"`` takes no draws."""
    if indices_given or y_given:
        raise ValueError("indices and y are draws for mode='mc'; mode='exact' takes none")


def noise_inputs(A_given: bool, Sigma_b_given: bool, xi_given: bool) -> bool:
    """Whether `uv_quantities` computes noise quantities: ``A`` with ``Sigma_b`` or ``xi``."""
    if not A_given:
        if Sigma_b_given or xi_given:
            raise ValueError("Sigma_b and xi describe xi_b in d_xi = A xi_b: they need A (n, n)")
        return False
    if not Sigma_b_given and not xi_given:
        raise ValueError("A needs Sigma_b (n, n) or draws xi (K, n) of the noise xi_b")
    return True


def check_losses(f0_given: bool, f1_given: bool) -> None:
    """``f0`` and ``f1`` of `uv_quantities` come together."""
    if f0_given != f1_given:
        raise ValueError("f0 and f1 (losses at theta and theta + d) go together")


# --- registration data: ID -> EstimatorSpec(options, doc) -------------------------------------

GRAD_NOISE_DOC = """Gradient noise ``xi_n = g_n - g`` and its covariance (000 §2 "(General Update)").

    Returns ``g`` (P,), ``xi`` (shape of G) and ``Sigma`` (P, P) with the scaling
    ``1/(N - ddof)``: ``Sigma = (1/(N - ddof)) sum_n E_y[xi_n xi_n^T]``. Data labels give the
    sample covariance ``Sigma^data``; model labels give the covariance of the gradient of one
    sample drawn uniformly with its label drawn from ``p``, ``Sigma^model``, exact over labels
    (its mean ``g`` is the label expectation of the full-batch gradient).
    """  # noqa: E501

MINIBATCH_MOMENTS_DOC = """Moments of the minibatch mean gradient g_b over batches of size B (and over labels).

    Returns ``mean`` E[g_b], ``cov`` Cov[g_b], ``second_moment`` E[g_b g_b^T], ``xi_cov``
    E[xi_b xi_b^T] (the document's Sigma_{xi_b}, 000 §2) of the noise ``xi_b = g_b - g`` and
    ``g``, the full-batch mean gradient (its label expectation for model labels).
    Scaling: g_b is a 1/B mean; expectations are exact probability-weighted sums.

    ``mode="exact"`` enumerates every batch (combinations without replacement, multisets with
    their multinomial weights with replacement) and raises when there are more than
    ``max_batches``. ``mode="mc"`` averages over given draws ``indices`` (K, B) (and, for model
    labels, ``y`` (K, B)) and adds the standard error ``<key>_se`` of every estimate.
    The default sampling is without replacement, as a shuffling data loader draws batches.
    """  # noqa: E501

FISHER_BATCH_DOC = """Batch Fisher E[g_b g_b^T] over batches of size B and labels (000 §2, F_b paragraph).

    ``labels="model"`` returns ``F_b`` (labels sampled from the model); ``labels="data"``
    returns ``F_tilde_b`` (data labels). Scaling: g_b is the 1/B minibatch mean, so this is the
    second moment of a mean, not the per-sample Fisher (INVENTORY §5 item 2). Exact, by the
    enumeration of `minibatch_moments`; ``labels`` has no default (INVENTORY §5 item 2).
    """  # noqa: E501

UV_QUANTITIES_DOC = """Unified-view quantities of a direction d at gradient g with symmetric curvature H.

    Always: ``Delta`` = -(g^T d + 1/2 d^T H d); ``lam`` (ascending), ``Q`` (eigenvectors as
    columns, sign fixed: largest-magnitude entry positive), ``g_hat`` = Q^T g, ``d_hat`` = Q^T d;
    ``Delta_i`` = g_hat_i d_hat_i + 1/2 d_hat_i^2 lam_i as the document's table defines it
    (sum = -Delta) and ``Delta_i_neg`` = -Delta_i (sum = Delta); ``normH2`` = d^T H d and
    ``normH2_i`` = lam_i d_hat_i^2. For repeated eigenvalues Q, g_hat, d_hat and the per-
    direction values depend on the basis chosen inside the eigenspace.
    With ``f0``, ``f1`` (loss at theta and theta + d): ``actual_decrease`` = f0 - f1.
    With ``A`` and ``Sigma_b`` (covariance of xi_b): ``Sigma_dxi`` = A Sigma_b A^T, ``N_b`` =
    1/2 E[d_xi^T H d_xi], ``d_xi_i`` = E||d_xi_i||^2 (i-th eigenvector of H).
    With ``A`` and draws ``xi`` (K, n) of xi_b: ``N_b_mc``, ``d_xi_i_mc``, ``Sigma_dxi_mc`` and
    the standard errors ``N_b_mc_se``, ``d_xi_i_mc_se``. Scaling: expectations are exact; Monte-
    Carlo values are 1/K means. H is symmetrised as (H + H^T)/2 after a symmetry check.
    """  # noqa: E501

TORCH_UV_NOTE = "Other inputs are converted to the dtype and device of ``g``.\n    "
"""The line the torch layer appends to `UV_QUANTITIES_DOC` (in the docstring's layout)."""

_SCHEME = {"sampling": "without_replacement", "max_batches": MAX_BATCHES}
SPECS: Mapping[str, EstimatorSpec] = {
    "est:grad_noise": EstimatorSpec({"labels": "data", "ddof": 0}, GRAD_NOISE_DOC),
    "est:minibatch_moments": EstimatorSpec(
        {"labels": "data", "mode": "exact", **_SCHEME}, MINIBATCH_MOMENTS_DOC
    ),
    "est:fisher_batch": EstimatorSpec(_SCHEME, FISHER_BATCH_DOC),
    "est:uv_quantities": EstimatorSpec({}, UV_QUANTITIES_DOC),
}
"""Estimator ID -> its option defaults and doc (the same in both layers)."""
