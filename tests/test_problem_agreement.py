"""Every reference problem (NumPy, exact) against its torch twin (torch.func), float64.

For each registered reference ID and a few small random instances, the twin is built as
``torchimpl.problems.get(id)(**ref.spec(), dtype=float64)`` and every oracle quantity is
compared on the whole data set and on a batch with repeated indices: normwise relative error
<= RTOL = 1e-10 per leaf (INVENTORY §0.4 item 3; `verify.crosscheck.compare.relative_error`).
A quantity the reference leaves undefined (NotImplementedError) must be undefined in torch.
Sampled quantities cannot share draws across the two layers, so per-sample gradients at
labels sampled by the reference (``labels=``) stand in for the sampled Fisher.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import reference.problems as rp
import torchimpl.problems as tp
from verify.crosscheck.compare import relative_error

RTOL = 1e-10
# make() keyword arguments of small instances (P <= ~150; prob:W1 has its fixed P = 3466).
SMALL: dict[str, list[dict[str, Any]]] = {
    "prob:W8": [{"n_samples": 3}],
    "prob:W2": [
        {"n_samples": 3, "width": 0.125, "size": 8, "classes": 3, "bn_mode": "eval"},
        {"n_samples": 3, "width": 0.125, "size": 8, "classes": 3, "variant": "dw",
         "bn_mode": "eval"},
    ],
    "prob:synth_images": [{"n_samples": 4, "classes": 3, "size": 8}],
    "prob:quad": [
        {"n": 6},
        {"n": 5, "family": "indefinite", "halved": False},
        {"n": 4, "family": "psd_zeros", "rotated": False},
    ],
    "prob:quad_noisy": [{"n": 5}, {"n": 4, "noise": "hessian", "k": 2.0, "bounded": 0.5}],
    "prob:quad_finite_sum": [
        {"n_samples": 8, "dim": 4, "out_dim": 2},
        {"n_samples": 5, "dim": 3, "noise_like_hessian": False},
    ],
    "prob:quad_finite_sum[quadratics]": [{"n_samples": 5, "dim": 4}],
    "prob:lstsq": [{"n_samples": 12, "dim": 5}, {"n_samples": 12, "design": "rank_deficient"}],
    "prob:logreg": [{"n_samples": 10, "dim": 4}, {"n_samples": 8, "l2": 0.1, "bias": False}],
    "prob:softmax": [{"n_samples": 9, "dim": 4, "classes": 3, "reduction": "sum", "l2": 0.05}],
    "prob:mlp": [
        {"n_samples": 7, "widths": (3, 5, 3)},
        {"n_samples": 6, "widths": (3, 4, 4, 2), "activation": "sigmoid", "loss": "mse"},
        {"n_samples": 6, "widths": (2, 5, 1), "activation": "relu", "loss": "bce", "l2": 0.1},
        {
            "n_samples": 5,
            "widths": (3, 4, 2),
            "loss": "mse_half",
            "bias": False,
            "reduction": "sum",
            "l2": 0.2,
        },
        {"n_samples": 5, "widths": (3, 6, 3), "activation": "identity", "l2": 0.3},
    ],
    "prob:W1": [{"n_samples": 3}],
    "prob:digits": [{"n_samples": 20, "hidden": (4,)}],
    "prob:gmm_cls": [{"n_samples": 12, "hidden": (3,), "label_noise": 0.25}],
    "prob:nesterov_worst": [{"dim": 12}],
}
QUANTITIES = (
    "loss",
    "grad",
    "per_sample_losses",
    "per_sample_grads",
    "hessian",
    "hvp",
    "jac_out",
    "out_hess",
    "ggn",
    "fisher_true",
    "fisher_emp",
    "layer_stats",
)
CASES = [
    pytest.param(pid, kwargs, 1000 * number + i, id=f"{pid}-{i}")
    for number, pid in enumerate(rp.ids())
    for i, kwargs in enumerate(SMALL.get(pid, [{}]))
]


def to_torch(tree: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.float64) for k, v in tree.items()}


def outcome(fn, *args, **kwargs) -> Any:
    """The value of ``fn(*args, **kwargs)``, or the NotImplementedError it raised."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as undefined:
        return undefined


def mismatch(name: str, ref: Any, mirror: Any) -> list[str]:
    """[] when both are undefined or they agree to RTOL; else a one-line description."""
    undefined = isinstance(ref, NotImplementedError), isinstance(mirror, NotImplementedError)
    if any(undefined):
        return (
            [] if all(undefined) else [f"{name}: defined in one layer only ({ref!r}, {mirror!r})"]
        )
    error = relative_error(ref, mirror)
    return [] if error <= RTOL else [f"{name}: relative error {error:.2e}"]


def exact_mismatches(ref, twin, params, v, batch) -> list[str]:
    """Every deterministic oracle quantity at ``batch``."""
    failures = []
    for name in QUANTITIES:
        ref_args, twin_args = ((v,), (to_torch(v),)) if name == "hvp" else ((), ())
        ref_value = outcome(getattr(ref, name), params, *ref_args, batch)
        mirror = outcome(getattr(twin, name), to_torch(params), *twin_args, batch)
        failures += mismatch(f"{name}(batch={batch})", ref_value, mirror)
    return failures


def sampled_mismatches(ref, twin, params, rng, batch) -> list[str]:
    """sample_labels defined in both layers with one layout; per-sample gradients agree at the
    labels the reference drew."""
    name = f"sample_labels(batch={batch})"
    labels = outcome(ref.sample_labels, params, rng, batch)
    drawn = outcome(twin.sample_labels, to_torch(params), torch.Generator().manual_seed(0), batch)
    if isinstance(labels, NotImplementedError) or isinstance(drawn, NotImplementedError):
        return mismatch(name, labels, drawn)
    if np.shape(labels) != tuple(drawn.shape):
        return [f"{name}: shape {np.shape(labels)} vs {tuple(drawn.shape)}"]
    ref_g = ref.per_sample_grads(params, batch, labels=labels)
    mirror = twin.per_sample_grads(to_torch(params), batch, labels=torch.as_tensor(labels))
    return mismatch(f"per_sample_grads(labels=sampled, batch={batch})", ref_g, mirror)


def test_every_small_instance_names_a_registered_id():
    assert set(SMALL) <= set(rp.ids())
    assert set(rp.ids()) <= set(tp.ids())


@pytest.mark.parametrize("pid, kwargs, seed", CASES)
def test_torch_twin_agrees_with_the_reference(pid, kwargs, seed):
    rng = np.random.default_rng(seed)
    ref = rp.get(pid).make(rng, **kwargs)
    twin = tp.get(pid)(**ref.spec(), dtype=torch.float64, device=None)
    assert (twin.id, twin.num_samples()) == (ref.id, ref.num_samples())
    params = ref.init_params(rng)
    v = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    failures = []
    for batch in (None, rng.integers(ref.num_samples(), size=3)):
        failures += exact_mismatches(ref, twin, params, v, batch)
        failures += sampled_mismatches(ref, twin, params, rng, batch)
    assert not failures, f"{pid} {kwargs}: " + "; ".join(failures)


@pytest.mark.parametrize(
    "pid",
    ["prob:quad", "prob:quad_noisy", "prob:quad_finite_sum", "prob:quad_finite_sum[quadratics]"],
)
def test_quadratic_optimum_and_constants_agree(pid):
    for kwargs in SMALL[pid]:
        ref = rp.get(pid).make(np.random.default_rng(3), **kwargs)
        twin = tp.get(pid)(**ref.spec())
        assert relative_error(ref.constants(), twin.constants()) <= RTOL
        ref_opt, twin_opt = ref.optimum(), twin.optimum()
        assert (ref_opt is None) == (twin_opt is None)
        if ref_opt is not None:
            assert relative_error(ref_opt[0], twin_opt[0]) <= RTOL
            assert abs(ref_opt[1] - twin_opt[1]) <= RTOL * max(abs(ref_opt[1]), 1.0)
