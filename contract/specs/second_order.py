"""The shared registration data of the classical second-order rules `rule:so.*` (INVENTORY
§2.4), including the quasi-Newton ones: ID -> `Spec` (defaults and per-name checks), identical
in `reference.rules.second_order`/`quasi_newton` and their torch twins (pure Python, stdlib
only).

The docs differ between the layers (the torch docs point to the reference's), so they stay in
the layers and ``Spec.doc`` is empty here. The curvature-kind check parses with the layer's
``parse_curvature``: `specs` takes it as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from contract.specs import Spec
from contract.validate import boolean, greater_than, in_interval, integer, nonnegative, positive
from contract.validate import choice as one_of

Check = Callable[[str, Any], Any]

# --- validation (both layers raise these messages) -------------------------------------------


def open_unit(name: str, value: Any) -> float:
    """A finite real in (0, 1) (c1, c2, rho)."""
    return in_interval(name, value, 0, 1, closed="neither")


def above_one(name: str, value: Any) -> float:
    """A finite real > 1 (nu, alpha_damp)."""
    return greater_than(name, value, 1)


def count(name: str, value: Any) -> int:
    """An int >= 1 (m)."""
    return integer(name, value, 1, type_noun="int", bound_noun=True)


def choice(*allowed: Any) -> Check:
    """The check of an option in ``allowed`` (of the same type too: ``True`` is not ``1``)."""
    return partial(one_of, allowed=allowed, exact_type=True)


def validate(values: Mapping[str, Any], checks: Mapping[str, Check]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name, check in checks.items():
        if name in values:
            check(name, values[name])
    if "c1" in values and "c2" in values and not values["c1"] < values["c2"]:
        raise ValueError(f"Invalid c2: {values['c2']} (must be in (c1, 1), c1 = {values['c1']})")


# --- registration data: ID -> Spec(hyper, checks=...) -------------------------------------------


def specs(curvature_kind: Check) -> dict[str, Spec]:
    """The specs of every `rule:so.*` key, ``curvature_kind`` checking the ``curv`` option."""
    line_search = {"c1": open_unit, "c2": open_unit}
    cg_hyper = {"beta": "fr", "restart": "every_n", "line_search": "exact", "c1": 1e-4, "c2": 0.1}
    cg_checks = {"beta": choice("fr", "pr"), "restart": choice("every_n", "none", "pr_plus",
                 "every_step"), "line_search": choice("exact", "wolfe"), **line_search}
    bfgs_hyper = {"M0": "identity", "skip": True, "c1": 1e-4, "c2": 0.9}
    bfgs_checks = {"M0": choice("identity", "scaled"), "skip": boolean, "c1": open_unit,
                   "c2": open_unit}
    return {
        "rule:so.newton_ls": Spec(
            {"alpha": 1.0, "line_search": "armijo", "c1": 1e-4, "rho": 0.5, "nonpd": "raise",
             "delta": 1e-3, "curv": "H"},
            checks={"alpha": positive, "line_search": choice("armijo", "none"), "c1": open_unit,
                    "rho": open_unit, "nonpd": choice("raise", "pinv", "damping", "abs"),
                    "delta": positive, "curv": curvature_kind},
        ),
        "rule:so.gauss_newton": Spec(
            {"step": "unit", "pinv": False, "curv": "G"},
            checks={"step": choice("unit", "line_search"), "pinv": boolean,
                    "curv": curvature_kind},
        ),
        "rule:so.lm": Spec(
            {"mu": 1e-2, "mu_schedule": "marquardt", "nu": 10.0, "scaling": "identity",
             "curv": "G"},
            checks={"mu": nonnegative, "mu_schedule": choice("marquardt", "fixed"),
                    "nu": above_one, "scaling": choice("identity", "diag"),
                    "curv": curvature_kind},
        ),
        "rule:so.sofo": Spec(
            {"alpha": 1.0, "lam": 1.0, "curv": "G"},
            checks={"alpha": positive, "lam": positive, "curv": curvature_kind},
        ),
        "rule:so.cg_linear": Spec({}),
        "rule:so.cg_nonlinear": Spec(cg_hyper, checks=cg_checks),
        "rule:so.cg_nonlinear[as_printed]": Spec(cg_hyper, checks=cg_checks),
        "rule:so.newton_cg": Spec(
            {"lam": 0.0, "hvp": "exact", "h": 1e-6, "model": "undamped", "alpha_damp": 1.5,
             "line_search": True},
            checks={"lam": nonnegative, "hvp": choice("exact", "fd"), "h": positive,
                    "model": choice("undamped", "damped"), "alpha_damp": above_one,
                    "line_search": boolean},
        ),
        "rule:so.bfgs": Spec(bfgs_hyper, checks=bfgs_checks),
        "rule:so.bfgs[as_printed]": Spec(bfgs_hyper, checks=bfgs_checks),
        "rule:so.lbfgs": Spec({"m": 10, "c1": 1e-4, "c2": 0.9},
                              checks={"m": count, "c1": open_unit, "c2": open_unit}),
    }
