"""The `rule:zo.*` and `est:zo_*` options both layers share (INVENTORY §2.3, §3.9).

The option tables and their checks are pure Python and identical in the two layers, so they
are written once here: the ``u_dist`` -> probe-distribution map, the checks of the estimator
options (with the messages both layers raise), and each rule's hyperparameter defaults. The
rules' docs stay with their update functions in each layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

from contract.rule import freeze
from contract.validate import boolean, choice, integer, positive

U_DIST = {
    "gaussian": "gaussian",
    "uniform_sphere": "sphere",
    "sqrtP_sphere": "sqrtP_sphere",
    "rademacher": "rademacher",
}
"""``u_dist`` option -> ``oracle.probe`` distribution."""

ESTIMATORS = ("direction", "coord", "two_point")
ESTIMATOR_HYPER = freeze(estimator="direction", h=1e-3, u_dist="gaussian", n_dirs=1,
                         central=False)
ADAMM_HYPER = {"alpha": 1e-3, "beta1": 0.9, "beta2": 0.999, "delta": 1e-8, **ESTIMATOR_HYPER}
HYPER: Mapping[str, Mapping[str, Any]] = freeze({
    "rule:zo.sgd": freeze(alpha=0.01, **ESTIMATOR_HYPER),
    "rule:zo.sign": freeze(alpha=0.01, **ESTIMATOR_HYPER),
    "rule:zo.mezo": freeze(alpha=0.01, eps=1e-3),
    "rule:zo.adamm": freeze(ADAMM_HYPER),
    "rule:zo.adamm[chen2019]": freeze(ADAMM_HYPER),
    "rule:zo.qn": freeze(alpha=0.01, **ESTIMATOR_HYPER, common_random_directions=True,
                         curvature_guard="skip"),
})
"""Rule ID -> its hyperparameter defaults (the same in both layers)."""


def probe_dist(u_dist: Any) -> str:
    """The probe distribution of a ``u_dist`` option, else a ValueError naming it."""
    if not isinstance(u_dist, str) or u_dist not in U_DIST:
        raise ValueError(f"Invalid u_dist: {u_dist!r} (must be one of {tuple(U_DIST)})")
    return U_DIST[u_dist]


def count(name: str, value: Any) -> int:
    """A positive integer option (``n_dirs``)."""
    return integer(name, value, 1)


def check_seed(seed: Any) -> int:
    """A probe seed: an integer >= 0, else a ValueError naming it."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"Invalid seed: {seed!r} (must be an integer >= 0)")
    return int(seed)


def validate_estimator(hyper: Mapping[str, Any]) -> None:
    """The gradient-estimator options of a ZO rule (estimator, h, u_dist, n_dirs, central)."""
    choice("estimator", hyper["estimator"], ESTIMATORS)
    positive("h", hyper["h"])
    probe_dist(hyper["u_dist"])
    count("n_dirs", hyper["n_dirs"])
    boolean("central", hyper["central"])
