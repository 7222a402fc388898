"""Model-level curvature estimators, the definition (INVENTORY §3.1-§3.3, §3.10).

Exact quantities come from the problem's own methods (hand-written backpropagation, the
R-operator, enumeration over classes): per_sample_grads, layer_stats, hessian, hvp, ggn,
fisher_true, fisher_emp. Kronecker and normalization factors are computed here in NumPy from
the problem's layer statistics, in the layouts of est:layer_stats (a Linear layer's h_bar
(B, k) or tokens (B, T, k); a conv layer's (B, G, T, k); a norm layer's h, x_hat, s (B, T, C)).
Statistics at other labels (sampled, or every class) come from the same problem with those
labels in place of the data's (its ``spec()`` rebuilt with ``y`` replaced).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit, softmax

from contract import Estimator
from contract.specs.curvature import (
    HVP_MODES,
    METHODS,
    NORM_H_SOURCES,
    SCALES,
    SPECS,
    check_kfac_options,
    check_timing_options,
    count_calls,
    mc_option,
    median_seconds,
    option,
    state_elements,
)
from contract.validate import boolean
from reference.estimators.registry import REGISTRY
from reference.problems.datasets import batch_rows
from reference.tree import flatten, unflatten


def _rescale(problem, B: int, scale: str) -> float:
    """The factor from the problem's reduction (1/B or 1) to ``scale``'s."""
    have = 1.0 / B if getattr(problem, "reduction", "mean") == "mean" else 1.0
    return (1.0 / B if scale == "mean" else 1.0) / have


def per_sample_grads(problem, params, batch=None, *, method="vmap"):
    # doc: contract.specs.curvature.SPECS['est:per_sample_grads']
    option("method", method, METHODS)
    return problem.per_sample_grads(params, batch)


def _named_stats(problem, params, batch, y=None) -> dict[str, dict[str, np.ndarray]]:
    """The problem's layer statistics as layer name -> dict (names: parameter prefixes)."""
    source = problem if y is None else _relabeled(problem, batch, y)
    stats = source.layer_stats(params, batch)
    if isinstance(stats, Mapping):
        return dict(stats)
    names = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in params))
    if len(names) != len(stats):
        raise ValueError(f"{len(stats)} layer statistics for the parameter groups {names}")
    return dict(zip(names, stats, strict=True))


def _relabeled(problem, batch, y):
    """The problem with labels ``y`` (one per batch row) in place of the data's."""
    rows = batch_rows(batch, problem.num_samples())
    if np.unique(rows).size != rows.size:
        raise ValueError("statistics at other labels need distinct batch rows")
    spec = problem.spec()
    y_full = np.array(spec["y"], copy=True)
    y_full = y_full.astype(np.result_type(y_full, np.asarray(y)))
    y_full[rows] = y
    return type(problem)(**{**spec, "y": y_full})


def layer_stats(problem, params, batch=None, *, token_flatten=False):
    # doc: contract.specs.curvature.SPECS['est:layer_stats']
    boolean("token_flatten", token_flatten)
    stats = _named_stats(problem, params, batch)
    if not token_flatten:
        return stats
    return {name: ({k: v.reshape(-1, v.shape[-1]) for k, v in st.items()}
                   if _kind(st) == "tokens" else st) for name, st in stats.items()}


def _kind(st: Mapping[str, np.ndarray]) -> str:
    """"norm", "linear" (one position), "tokens" or "conv", from the statistics' layout."""
    if "x_hat" in st:
        return "norm"
    return {2: "linear", 3: "tokens", 4: "conv"}[np.ndim(st["h_bar"])]


def hessian(problem, params, batch=None):
    # doc: contract.specs.curvature.SPECS['est:hessian']
    return problem.hessian(params, batch)


def hvp(problem, params, batch=None, *, v, mode="forward"):
    # doc: contract.specs.curvature.SPECS['est:hvp']
    option("mode", mode, HVP_MODES)
    return problem.hvp(params, v, batch)


def ggn(problem, params, batch=None, *, v=None):
    # doc: contract.specs.curvature.SPECS['est:ggn']
    G = problem.ggn(params, batch)
    return G if v is None else unflatten(G @ flatten(v), params)


def fisher_true(problem, params, batch=None, *, mc_samples=None, seed=0, y_mc=None,
                scale="mean"):
    # doc: contract.specs.curvature.SPECS['est:fisher_true']
    option("scale", scale, SCALES)
    B = batch_rows(batch, problem.num_samples()).size
    factor = _rescale(problem, B, scale)
    if mc_samples is None:
        if y_mc is not None:
            raise ValueError("y_mc are Monte-Carlo draws: they need mc_samples")
        return factor * problem.fisher_true(params, batch)
    mc_samples, seed = mc_option(mc_samples, seed)
    if y_mc is None:
        rng = np.random.default_rng(seed)
        return factor * problem.fisher_true(params, batch, mc_samples=mc_samples, rng=rng)
    y_mc = np.asarray(y_mc)
    if y_mc.shape[:2] != (mc_samples, B):
        raise ValueError(f"drawn labels must have shape (mc_samples={mc_samples}, B={B}, ...), "
                         f"got {y_mc.shape}")
    G = np.stack([problem.per_sample_grads(params, batch, labels=y) for y in y_mc])
    G = G.reshape(-1, G.shape[-1])
    have = 1.0 / B if getattr(problem, "reduction", "mean") == "mean" else 1.0
    return (factor * have / mc_samples) * G.T @ G


def fisher_emp(problem, params, batch=None, *, scale="mean", diagonal=False):
    # doc: contract.specs.curvature.SPECS['est:fisher_emp']
    option("scale", scale, SCALES)
    boolean("diagonal", diagonal)
    G = problem.per_sample_grads(params, batch)
    c = 1.0 / G.shape[0] if scale == "mean" else 1.0
    return unflatten(c * np.sum(G * G, axis=0), params) if diagonal else c * G.T @ G


def _label_sets(problem, params, batch, labels, mc_samples, seed, y_mc):
    """(labels or None for the data's, weights (B,)) pairs whose weights sum to 1 per sample."""
    B = batch_rows(batch, problem.num_samples()).size
    if labels == "empirical":
        return [(None, np.ones(B))]
    if labels == "sampled":
        if y_mc is None:
            rng = np.random.default_rng(seed)
            y_mc = [problem.sample_labels(params, rng, batch) for _ in range(mc_samples)]
        y_mc = np.asarray(y_mc)
        if y_mc.shape[:2] != (mc_samples, B):
            raise ValueError(f"drawn labels must have shape (mc_samples={mc_samples}, B={B}, "
                             f"...), got {y_mc.shape}")
        return [(y, np.full(B, 1.0 / mc_samples)) for y in y_mc]
    loss = getattr(problem, "loss_name", "ce")
    if loss not in ("ce", "bce"):
        raise ValueError(f"exact enumeration of labels needs a categorical likelihood (ce, bce); "
                         f"loss {loss!r} is Gaussian: use sampled labels")
    z = list(_named_stats(problem, params, batch).values())[-1]["a"]
    if loss == "ce":
        p = softmax(z, axis=-1)
        return [(np.full(B, c), p[:, c]) for c in range(p.shape[1])]
    p1 = expit(z[:, 0])
    return [(np.zeros(B), 1.0 - p1), (np.ones(B), p1)]


def _positions(t: np.ndarray) -> np.ndarray:
    return t[:, None, :] if t.ndim == 2 else t


def kfac_factors(problem, params, batch=None, *, labels="empirical", mc_samples=1, seed=0,
                 y_mc=None, s_scale="per_sample", spatial_scaling=None, token_flatten=False):
    # doc: contract.specs.curvature.SPECS['est:kfac_factors']
    spatial_scaling = check_kfac_options(labels, mc_samples, seed, s_scale, spatial_scaling,
                                         token_flatten)
    sets = _label_sets(problem, params, batch, labels, mc_samples, seed, y_mc)
    runs = [(_named_stats(problem, params, batch, y), w) for y, w in sets]
    B = sets[0][1].size
    c_s = {"per_sample": 1.0, "batch_mean": 1.0 / B**2, "sum": float(B)}[s_scale]
    out = {}
    for name, st in runs[0][0].items():
        kind = _kind(st)
        if kind == "norm":
            continue
        h_bar = _positions(st["h_bar"])
        T = h_bar.shape[-2]
        spatial = kind == "conv" or (kind == "tokens" and not token_flatten)
        a_H, a_S = spatial_scaling if spatial and spatial_scaling else (1.0 / T, 1.0 / T)
        H = np.einsum("n...tk,n...tl->...kl", h_bar, h_bar) * (a_H / B)
        S = sum(np.einsum("n,n...to,n...tp->...op", w, _positions(run[name]["s"]),
                          _positions(run[name]["s"])) for run, w in runs)
        S = S * (a_S * c_s / B)
        out[name] = {"H": H, "S": S, "H_D": np.diagonal(H, axis1=-2, axis2=-1).copy(),
                     "S_D": np.diagonal(S, axis1=-2, axis2=-1).copy()}
    return out


def _slices(params) -> dict[str, slice]:
    """Each parameter's slice of ``flatten(params)``."""
    ends = np.cumsum([np.size(v) for v in params.values()])
    return {k: slice(int(e - np.size(v)), int(e)) for (k, v), e in zip(params.items(), ends,
                                                                        strict=True)}


def norm_factors(problem, params, batch=None, *, norm_h_source="pre_norm"):
    # doc: contract.specs.curvature.SPECS['est:norm_factors']
    option("norm_h_source", norm_h_source, NORM_H_SOURCES)
    norms = {n: st for n, st in _named_stats(problem, params, batch).items()
             if _kind(st) == "norm"}
    if not norms:
        return {}
    G = problem.per_sample_grads(params, batch)
    B = G.shape[0]
    F = _rescale(problem, B, "mean") * problem.fisher_true(params, batch)
    where, out = _slices(params), {}
    for name, st in norms.items():
        prefix = f"{name}." if name else ""
        nu, beta = where[f"{prefix}weight"], where[f"{prefix}bias"]
        h = st["h"] if norm_h_source == "pre_norm" else st["x_hat"]
        rows = h.shape[0] * h.shape[1]
        f = {"H_nu": np.einsum("ntc,ntd->cd", h, h) / rows, "H_beta": np.ones((1, 1)),
             "S": np.einsum("ntc,ntd->cd", st["s"], st["s"]) / rows}
        g_nu, g_beta = G[:, nu], G[:, beta]
        f.update({"EF_nu": g_nu.T @ g_nu / B, "EF_beta": g_beta.T @ g_beta / B,
                  "EF_nu_beta": g_nu.T @ g_beta / B,
                  "F_nu": F[nu, nu], "F_beta": F[beta, beta], "F_nu_beta": F[nu, beta]})
        for key in ("H_nu", "S", "EF_nu", "EF_beta", "F_nu", "F_beta"):
            f[f"{key}_D"] = np.diag(f[key]).copy()
        out[name] = f
    return out


def _same(a, b) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a)


def oracle_counter(problem, params, batch=None, *, rule, steps=1, hyper=None, seed=0):
    # doc: contract.specs.curvature.SPECS['est:oracle_counter']
    from reference import rules  # here: the rules package imports the estimators package
    from reference.oracle import Oracle

    oracle = Oracle(problem, batch, rng=np.random.default_rng(seed))
    return count_calls(rules.get(rule), oracle, dict(params), steps, hyper, _same,
                       lambda p, u: {k: p[k] + u[k] for k in p})


def _quantity(name: str, problem, params, batch):
    """A callable evaluating quantity ``name`` (est:timing)."""
    calls = {
        "loss": lambda: problem.loss(params, batch),
        "grad": lambda: problem.grad(params, batch),
        "hvp": lambda: problem.hvp(params, params, batch),
        "per_sample_grads": lambda: problem.per_sample_grads(params, batch),
        "hessian": lambda: problem.hessian(params, batch),
        "ggn": lambda: problem.ggn(params, batch),
        "fisher_emp": lambda: problem.fisher_emp(params, batch),
        "fisher_true": lambda: problem.fisher_true(params, batch),
    }
    return calls[name]


def timing(problem, params, batch=None, *, quantities=("grad", "hvp"), repeats=5, warmup=1,
           threads=None):
    # doc: contract.specs.curvature.SPECS['est:timing']
    quantities, repeats, warmup, _ = check_timing_options(quantities, repeats, warmup, threads)
    seconds = {q: median_seconds(_quantity(q, problem, params, batch), repeats, warmup)
               for q in dict.fromkeys(("grad", *quantities))}
    return {"seconds": seconds, "ratio": {q: s / seconds["grad"] for q, s in seconds.items()},
            "repeats": repeats}


def _nbytes(state) -> int:
    if isinstance(state, Mapping):
        return sum(_nbytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(_nbytes(v) for v in state)
    return int(getattr(state, "nbytes", 0))


def state_bytes(problem, params, batch=None, *, optimizer="adam", state=None):
    # doc: contract.specs.curvature.SPECS['est:state_bytes']
    per_state = state_elements(optimizer, {k: np.shape(v) for k, v in params.items()})
    elements = sum(per_state.values())
    itemsize = np.asarray(next(iter(params.values()))).itemsize
    out = {"per_state": per_state, "elements": elements, "bytes": elements * itemsize}
    if state is not None:
        out["measured_bytes"] = _nbytes(state)
    return out


for _key, _fn in (
    ("est:per_sample_grads", per_sample_grads),
    ("est:layer_stats", layer_stats),
    ("est:hessian", hessian),
    ("est:hvp", hvp),
    ("est:ggn", ggn),
    ("est:fisher_true", fisher_true),
    ("est:fisher_emp", fisher_emp),
    ("est:kfac_factors", kfac_factors),
    ("est:norm_factors", norm_factors),
    ("est:oracle_counter", oracle_counter),
    ("est:timing", timing),
    ("est:state_bytes", state_bytes),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
