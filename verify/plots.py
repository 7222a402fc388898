"""Figures of the report: what the tables cannot show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import reference  # noqa: E402
from reference.oracle import Oracle  # noqa: E402
from verify.audits.thesis_diagnostics import (  # noqa: E402
    factor_heatmaps,
    fft_figure,
    gershgorin_figure,
    spectra_figure,
)
from verify.audits.thesis_first_order import acceleration_figure  # noqa: E402

# One ill-conditioned problem for the per-eigendirection picture: n = 12, kappa = 1e6.
SPECTRUM = np.geomspace(1e-3, 1e3, 12)
STEP = {"alpha": 1.0, "eps": 0.1, "eta": 0.01}


def write_all(out: Path, checks: list[dict[str, Any]], claims: list[dict[str, Any]]) -> list[Path]:
    return [
        _save(eigendirections(), out / "uv_eigendirections.png"),
        _save(crosscheck_errors(checks), out / "crosscheck_errors.png"),
        _save(claim_discrepancies(claims), out / "claim_discrepancies.png"),
        _save(rosenbrock_paths(), out / "rosenbrock_paths.png"),
        _save(acceleration_figure(claims), out / "iterations_vs_condition.png"),
        _save(gershgorin_figure(claims), out / "diag_gershgorin.png"),
        _save(factor_heatmaps(claims), out / "diag_factor_heatmaps.png"),
        _save(fft_figure(claims), out / "diag_fft.png"),
        _save(spectra_figure(claims), out / "diag_spectra.png"),
    ]


def eigendirection_table() -> dict[str, dict[str, np.ndarray]]:
    """Delta_d^i (negated: the decrease) and ||d_i||_H^2 of every uv rule on one problem."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((len(SPECTRUM),) * 2))
    H = (Q * SPECTRUM) @ Q.T
    problem = reference.problems.get("prob:quad")(A=H, x_star=np.zeros(len(H)))
    params = {"x": rng.standard_normal(len(H))}
    oracle = Oracle(problem, user_curvature=H)
    quantities = reference.estimators.get("est:uv_quantities")
    table = {}
    for key in reference.rules.ids("rule:uv.*"):
        rule = reference.rules.get(key)
        if "A" in rule.hyper:
            continue
        hyper = {
            k: v
            for k, v in {**STEP, "curv": _curv(rule), "L": SPECTRUM[-1]}.items()
            if k in rule.hyper
        }
        updates, _ = rule.step(problem.grad(params), rule.init(params), params, oracle, **hyper)
        q = quantities(problem.grad(params)["x"], updates["x"], H)
        table[key.removeprefix("rule:uv.")] = {
            "decrease_i": q["Delta_i_neg"],
            "normH2_i": q["normH2_i"],
        }
    return table


def eigendirections() -> plt.Figure:
    table = eigendirection_table()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
    for i, (name, q) in enumerate(table.items()):
        style = {"marker": "os^"[i // 10], "ms": 3, "ls": ["-", "--"][i // 10], "label": name}
        axes[0].plot(SPECTRUM, q["decrease_i"], **style)
        axes[1].plot(SPECTRUM, q["normH2_i"], **style)
    axes[0].set(
        xscale="log",
        yscale="symlog",
        xlabel="eigenvalue lambda_i",
        title="decrease along e_i: -Delta_d^i = -(g_i d_i + d_i^2 lambda_i / 2)",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="eigenvalue lambda_i",
        title="||d_i||_H^2 = lambda_i d_i^2",
    )
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("Unified-view rules on one quadratic, kappa = 1e6 (000 §1 'General Update')")
    return fig


# Rules raced on 2-D Rosenbrock from the classical start (-1.2, 1): (hyper, step budget).
ROSENBROCK_RACE = {
    "rule:fo.sgd": ({"alpha": 1e-3}, 2000),
    "rule:fo.heavy_ball": ({"alpha": 1e-3, "beta": 0.9}, 2000),
    "rule:fo.nesterov": ({"alpha": 1e-3, "beta": 0.9}, 2000),
    "rule:fo.adam": ({"alpha": 2e-2}, 2000),
    "rule:so.newton_ls": ({}, 100),
    "rule:so.cg_nonlinear": ({"beta": "pr", "restart": "pr_plus", "line_search": "wolfe"}, 200),
    "rule:so.bfgs": ({}, 100),
    "rule:so.lbfgs": ({}, 100),
}
ROSENBROCK_START = np.array([-1.2, 1.0])


def rosenbrock_race() -> dict[str, np.ndarray]:
    """Iterates (steps+1, 2) of every registered rule of `ROSENBROCK_RACE`, stopped once
    ||grad|| < 1e-10 (a rule that raises is left out)."""
    problem = reference.problems.get("prob:rosenbrock")(dim=2)
    oracle = Oracle(problem, rng=np.random.default_rng(0))
    paths = {}
    for key, (hyper, budget) in ROSENBROCK_RACE.items():
        if key not in reference.rules.REGISTRY:
            continue
        rule = reference.rules.get(key)
        params = {"x": ROSENBROCK_START.copy()}
        state, path = rule.init(params), [params["x"]]
        try:
            for _ in range(budget):
                grads = problem.grad(params)
                if np.linalg.norm(grads["x"]) < 1e-10:
                    break
                updates, state = rule.step(grads, state, params, oracle, **hyper)
                params = {"x": params["x"] + updates["x"]}
                path.append(params["x"])
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
        paths[key.removeprefix("rule:")] = np.array(path)
    return paths


def rosenbrock_paths() -> plt.Figure:
    problem = reference.problems.get("prob:rosenbrock")(dim=2)
    paths = rosenbrock_race()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.5))
    X, Y = np.meshgrid(np.linspace(-2.0, 2.0, 300), np.linspace(-1.0, 3.0, 300))
    Z = 100.0 * (Y - X**2) ** 2 + (1.0 - X) ** 2
    ax.contour(X, Y, Z, levels=np.geomspace(1e-2, 2e3, 18), colors="0.8", linewidths=0.7)
    for (name, path), style in zip(paths.items(), _styles(len(paths)), strict=True):
        ax.plot(path[:, 0], path[:, 1], label=name, lw=1.2, **style)
        gaps = [problem.loss({"x": x}) for x in path]
        bx.semilogy(np.arange(len(gaps)), np.maximum(gaps, 1e-18), label=name, lw=1.2, **style)
    ax.plot(*ROSENBROCK_START, "ko")
    ax.plot(1.0, 1.0, "k*", ms=12)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title="2-D Rosenbrock from (-1.2, 1): iterates")
    bx.set(xlabel="step", ylabel="$f(x_t) - f^*$ (floored at 1e-18)", xscale="symlog",
           title="suboptimality", ylim=(1e-18, None))
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _styles(n: int) -> list[dict[str, Any]]:
    colors = plt.get_cmap("tab10").colors
    return [{"color": colors[i % 10], "ls": ("-", "--", ":")[i // 10 % 3]} for i in range(n)]


def crosscheck_errors(checks: list[dict[str, Any]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(checks))))
    ids = [c["id"] for c in checks]
    for offset, dtype in ((-0.2, "float64"), (0.2, "float32")):
        ratio = [_ratio(c, dtype) for c in checks]
        ax.barh(np.arange(len(ids)) + offset, ratio, height=0.4, label=dtype)
    ax.axvline(1.0, color="k", lw=1)
    ax.set(
        yticks=range(len(ids)),
        yticklabels=ids,
        xscale="log",
        xlabel="max error / tolerance (pass < 1)",
        title="Reference vs torch mirror",
    )
    ax.tick_params(axis="y", labelsize=7)
    ax.legend()
    fig.tight_layout()
    return fig


def claim_discrepancies(claims: list[dict[str, Any]]) -> plt.Figure:
    rows = [
        (c["id"], c["verdict"], r)
        for c in claims
        for r in c["evidence"]["relations"]
        if r["max_discrepancy"] is not None
    ]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.16 * len(rows))))
    colour = {"holds": "tab:green", "refuted": "tab:red", "inconclusive": "tab:gray"}
    for i, (_, verdict, rel) in enumerate(rows):
        bad = rel["failed"] > 0
        ax.scatter(
            max(rel["max_discrepancy"], 1e-18),
            i,
            color="tab:red" if bad else colour[verdict],
            marker="x" if bad else "o",
            s=14,
        )
    ax.set(
        yticks=range(len(rows)),
        xscale="log",
        xlabel="largest discrepancy seen (x: relation failed)",
        title="Claims: each printed relation",
    )
    ax.set_yticklabels(
        [f"{k.removeprefix('claim:')}: {r['relation'][:40]}" for k, _, r in rows], fontsize=5
    )
    fig.tight_layout()
    return fig


def _curv(rule: Any) -> str:
    return "diag(user)" if str(rule.hyper.get("curv", "")).startswith("diag(") else "user"


def _ratio(check: dict[str, Any], dtype: str) -> float:
    err, tol = check["max_error"].get(dtype), check["tolerance"].get(dtype)
    if err is None or not tol:
        return np.nan
    return max(err / tol, 1e-6)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
