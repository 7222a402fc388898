"""Model-level curvature estimators in torch (INVENTORY §3.1-§3.3, §3.10): the curvature
engine `torchimpl.curvature` on ``problem.as_model(batch)``, with the IDs, options, keys and
errors of the reference layer (docs and checks in ``contract.specs.curvature``).
"""

from __future__ import annotations

import torch

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
    option,
    state_elements,
)
from contract.validate import boolean
from torchimpl import curvature as engine
from torchimpl.curvature.autodiff import flat_rows, seeded
from torchimpl.estimators.registry import REGISTRY


def per_sample_grads(problem, params, batch=None, *, method="vmap"):
    # doc: contract.specs.curvature.SPECS['est:per_sample_grads']
    option("method", method, METHODS)
    mb = problem.as_model(batch)
    if method == "fast":
        return flat_rows(engine.per_sample_grads_fast(params, mb))
    return flat_rows(engine.per_sample_grads(params, mb, method=method))


def layer_stats(problem, params, batch=None, *, token_flatten=False):
    # doc: contract.specs.curvature.SPECS['est:layer_stats']
    boolean("token_flatten", token_flatten)
    return engine.layer_stats(params, problem.as_model(batch), token_flatten=token_flatten)


def hessian(problem, params, batch=None):
    # doc: contract.specs.curvature.SPECS['est:hessian']
    return engine.hessian(params, problem.as_model(batch))


def hvp(problem, params, batch=None, *, v, mode="forward"):
    # doc: contract.specs.curvature.SPECS['est:hvp']
    option("mode", mode, HVP_MODES)
    return engine.hvp(params, problem.as_model(batch), v, mode=mode)


def ggn(problem, params, batch=None, *, v=None):
    # doc: contract.specs.curvature.SPECS['est:ggn']
    mb = problem.as_model(batch)
    return engine.ggn(params, mb) if v is None else engine.ggn_vp(params, mb, v)


def fisher_true(problem, params, batch=None, *, mc_samples=None, seed=0, y_mc=None,
                scale="mean"):
    # doc: contract.specs.curvature.SPECS['est:fisher_true']
    option("scale", scale, SCALES)
    mb = problem.as_model(batch)
    if mc_samples is None:
        if y_mc is not None:
            raise ValueError("y_mc are Monte-Carlo draws: they need mc_samples")
        return engine.fisher_true(params, mb, scale=scale)
    mc_samples, seed = mc_option(mc_samples, seed)
    return engine.fisher_true(params, mb, mc_samples, seeded(seed, mb.x.device), y_mc, scale)


def fisher_emp(problem, params, batch=None, *, scale="mean", diagonal=False):
    # doc: contract.specs.curvature.SPECS['est:fisher_emp']
    option("scale", scale, SCALES)
    boolean("diagonal", diagonal)
    mb = problem.as_model(batch)
    return engine.diag_ef(params, mb, scale) if diagonal else engine.fisher_emp(params, mb, scale)


def kfac_factors(problem, params, batch=None, *, labels="empirical", mc_samples=1, seed=0,
                 y_mc=None, s_scale="per_sample", spatial_scaling=None, token_flatten=False):
    # doc: contract.specs.curvature.SPECS['est:kfac_factors']
    spatial_scaling = check_kfac_options(labels, mc_samples, seed, s_scale, spatial_scaling,
                                         token_flatten)
    mb = problem.as_model(batch)
    return engine.kfac_factors(params, mb, labels, mc_samples, seeded(seed, mb.x.device), y_mc,
                               s_scale, spatial_scaling, token_flatten)


def norm_factors(problem, params, batch=None, *, norm_h_source="pre_norm"):
    # doc: contract.specs.curvature.SPECS['est:norm_factors']
    option("norm_h_source", norm_h_source, NORM_H_SOURCES)
    return engine.norm_factors(params, problem.as_model(batch), norm_h_source)


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def oracle_counter(problem, params, batch=None, *, rule, steps=1, hyper=None, seed=0):
    # doc: contract.specs.curvature.SPECS['est:oracle_counter']
    from torchimpl import rules  # here: torchimpl.rules imports the estimators package
    from torchimpl.oracle import Oracle

    oracle = Oracle(problem, batch, generator=seeded(seed))
    return count_calls(rules.get(rule), oracle, dict(params), steps, hyper, _same,
                       lambda p, u: {k: p[k] + u[k] for k in p})


def _quantity(name: str, mb, params):
    """A callable evaluating quantity ``name`` (est:timing)."""
    calls = {
        "loss": lambda: engine.loss(params, mb),
        "grad": lambda: engine.gradient(params, mb),
        "hvp": lambda: engine.hvp(params, mb, params),
        "per_sample_grads": lambda: engine.per_sample_grads(params, mb),
        "hessian": lambda: engine.hessian(params, mb),
        "ggn": lambda: engine.ggn(params, mb),
        "fisher_emp": lambda: engine.fisher_emp(params, mb),
        "fisher_true": lambda: engine.fisher_true(params, mb),
    }
    return calls[name]


def timing(problem, params, batch=None, *, quantities=("grad", "hvp"), repeats=5, warmup=1,
           threads=None):
    # doc: contract.specs.curvature.SPECS['est:timing']
    quantities, repeats, warmup, threads = check_timing_options(quantities, repeats, warmup,
                                                                threads)
    mb = problem.as_model(batch)
    device = mb.x.device
    seconds = {q: engine.time_call(_quantity(q, mb, params), repeats, warmup, threads, device)
               for q in dict.fromkeys(("grad", *quantities))}
    return {"seconds": seconds, "ratio": {q: s / seconds["grad"] for q, s in seconds.items()},
            "repeats": repeats}


def state_bytes(problem, params, batch=None, *, optimizer="adam", state=None):
    # doc: contract.specs.curvature.SPECS['est:state_bytes']
    per_state = state_elements(optimizer, {k: tuple(v.shape) for k, v in params.items()})
    elements = sum(per_state.values())
    itemsize = next(iter(params.values())).element_size()
    out = {"per_state": per_state, "elements": elements, "bytes": elements * itemsize}
    if state is not None:
        out["measured_bytes"] = engine.tensor_bytes(state)
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
