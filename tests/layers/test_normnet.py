"""``prob:normnet`` (INVENTORY §1.2; 002 §3.3 Prop. 3.3.1, App. Prop. A.0.1), both layers.

Each layer's problem is built from the same reference data (``make`` draws X, y, running
statistics; the torch twin takes ``spec()``) at the same point; expected values are identities
of the layer's own quantities or NumPy closed forms written here, never the other layer's
numbers. Oracles:
- the batch mean (sum) of per-sample gradients is the gradient (float64, 1e-12);
- Prop. A.0.1 (b), per sample: grad nu = sum_x x_hat_x ⊙ s_x, grad beta = sum_x s_x over the
  positions x, from ``layer_stats`` (exact identities, 1e-12), and the Linear layers'
  s h_bar^T; train-mode BatchNorm: the same for the batch gradient;
- x_hat is the normalisation over the statistics set T_i, written out per norm type;
- central differences of the loss converge to the gradient at rate O(h^2);
- the Hessian is symmetric and central differences of the gradient converge to it at rate
  O(h^2) (halving h shrinks the gap at least twofold; a wrong Hessian leaves a floor);
- with l2 = 0 the exactly enumerated true Fisher equals the GGN (ce: E[r r^T] = Lambda);
- train-mode BatchNorm: per-sample gradients and both Fishers raise ValueError;
- torch only: the twin's module equals torch's functional layer/group/batch norm applied in
  their own (channels-first) layout, batched and one sample at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings

import reference.problems as rp
import torchimpl.problems as tp
from verify.strategies import SEEDS
from verify.strategies.problems_norm import normnet_options

RTOL = 1e-12
ID = "prob:normnet"
PER_SAMPLE = normnet_options().filter(lambda o: (o["norm"], o["bn_mode"]) != ("batchnorm",
                                                                                "train"))
SMALL = {"n_samples": 4, "positions": 3, "features": 2, "channels": 4, "classes": 3}
FIXED = [
    {"norm": "layernorm"},
    {"norm": "groupnorm", "groups": 2, "activation": "relu", "loss": "mse", "l2": 0.1},
    {"norm": "groupnorm", "groups": 4, "bias": False, "reduction": "sum"},
    {"norm": "batchnorm", "bn_mode": "eval", "loss": "mse_half"},
    {"norm": "batchnorm", "bn_mode": "train", "bias": False},
]


def build(layer, options: dict, seed: int):
    """The layer's problem and point (NumPy data shared through ``spec()``)."""
    rng = np.random.default_rng(seed)
    ref = rp.get(ID).make(rng, **options)
    params = ref.init_params(rng)
    if not layer.is_torch:
        return ref, params
    return tp.get(ID)(**ref.spec(), dtype=torch.float64), layer.cast(params)


def flat(layer, tree) -> np.ndarray:
    return layer.to_numpy(layer.tree.flatten(tree))


def close(actual, expected, rtol: float = RTOL, what: str = "") -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    gap = np.linalg.norm(actual - expected)
    assert gap <= rtol * max(np.linalg.norm(expected), 1e-300), (
        f"{what}: relative gap {gap / max(np.linalg.norm(expected), 1e-300):.2e} > {rtol}")


def layer_stats(layer, problem, params) -> list[dict[str, np.ndarray]]:
    return [layer.to_numpy(d) for d in problem.layer_stats(params)]


def scale(problem, B: int) -> float:
    return 1.0 / B if problem.reduction == "mean" else 1.0


def identity_grads(layer, problem, params) -> np.ndarray:
    """Per-sample gradients (B, P) assembled from layer_stats (002 §2.1.4, Prop. A.0.1 (b)):
    Linear: sum over positions of s h_bar^T (weight, then bias column); norm: sum_x x_hat ⊙ s
    and sum_x s; plus l2 theta. Train-mode BN: the terms whose batch sum is the gradient."""
    lin0, norm, head = layer_stats(layer, problem, params)
    g0 = np.einsum("btc,btj->bcj", lin0["s"], lin0["h_bar"])
    g1 = np.einsum("bk,bj->bkj", head["s"], head["h_bar"])
    B = g0.shape[0]
    parts = [g0[..., :-1], g0[..., -1]] if problem.bias else [g0]
    parts += [(norm["x_hat"] * norm["s"]).sum(1), norm["s"].sum(1), g1[..., :-1], g1[..., -1]]
    return (np.concatenate([p.reshape(B, -1) for p in parts], axis=1)
            + problem.l2 * flat(layer, params))


@settings(max_examples=10)
@given(options=PER_SAMPLE, seed=SEEDS)
def test_per_sample_grads_average_to_the_gradient(layer, options, seed):
    problem, params = build(layer, options, seed)
    G = layer.to_numpy(problem.per_sample_grads(params))
    close(scale(problem, G.shape[0]) * G.sum(0), flat(layer, problem.grad(params)),
          what=f"seed={seed}")


@settings(max_examples=10)
@given(options=PER_SAMPLE, seed=SEEDS)
def test_prop_A01b_per_sample_gradients_from_layer_stats(layer, options, seed):
    """Prop. A.0.1 (b): per sample, grad nu = sum_x x_hat_x ⊙ s_x, grad beta = sum_x s_x."""
    problem, params = build(layer, options, seed)
    close(identity_grads(layer, problem, params),
          layer.to_numpy(problem.per_sample_grads(params)), what=f"seed={seed}")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_prop_A01b_batch_gradient_of_train_mode_batchnorm(layer, reduction):
    options = {**SMALL, "norm": "batchnorm", "bn_mode": "train", "bias": False, "l2": 0.1,
               "reduction": reduction}
    problem, params = build(layer, options, 3)
    G = identity_grads(layer, problem, params)
    B, l2_theta = G.shape[0], problem.l2 * flat(layer, params)
    close(scale(problem, B) * (G - l2_theta).sum(0) + (scale(problem, B) * B) * l2_theta,
          flat(layer, problem.grad(params)))


def closed_form_x_hat(h: np.ndarray, options: dict, running: tuple) -> np.ndarray:
    """Normalisation of h (B, T, C) over T_i (INVENTORY §1.2 prob:normnet), biased variance:
    each statistics set is laid out along the last axis, normalised, and laid back."""
    B, T, C = h.shape
    eps = options.get("eps", 1e-5)
    if options["norm"] == "batchnorm" and options["bn_mode"] == "eval":
        mean, var = running
        return (h - mean) / np.sqrt(var + eps)
    G = options["groups"]
    layouts = {  # (to sets, back to (B, T, C))
        "layernorm": (lambda a: a, lambda a: a),  # one position's C features
        "groupnorm": (lambda a: a.reshape(B, T, G, -1).transpose(0, 2, 1, 3).reshape(B, G, -1),
                      lambda a: a.reshape(B, G, T, -1).transpose(0, 2, 1, 3).reshape(B, T, C)),
        "batchnorm": (lambda a: a.reshape(B * T, C).T, lambda a: a.T.reshape(B, T, C)),
    }
    to_sets, back = layouts[options["norm"]]
    sets = to_sets(h)
    centred = sets - sets.mean(-1, keepdims=True)
    return back(centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps))


@pytest.mark.parametrize("options", FIXED, ids=lambda o: f"{o['norm']}-{o.get('bn_mode', '')}")
def test_x_hat_normalises_over_the_statistics_set(layer, options):
    problem, params = build(layer, {**SMALL, **options}, 5)
    stats = layer_stats(layer, problem, params)
    ref = rp.get(ID).make(np.random.default_rng(5), **{**SMALL, **options})
    expected = closed_form_x_hat(stats[1]["h"], {"bn_mode": "train", "groups": 1, **options},
                                 (ref.running_mean, ref.running_var))
    close(stats[1]["x_hat"], expected, 1e-12)
    close(stats[1]["h"], stats[0]["a"], 0.0)
    assert stats[1]["s"].shape == stats[1]["h"].shape == (SMALL["n_samples"],
                                                          SMALL["positions"], SMALL["channels"])


def at(layer, params, theta: np.ndarray):
    """The layer's parameter tree with flat values ``theta``."""
    return layer.tree.unflatten(layer.to_layer(theta), params)


def gradient_at(layer, problem, params, theta: np.ndarray) -> np.ndarray:
    return flat(layer, problem.grad(at(layer, params, theta)))


@pytest.mark.parametrize("options", FIXED, ids=lambda o: f"{o['norm']}-{o.get('bn_mode', '')}")
def test_gradient_is_the_limit_of_central_differences_of_the_loss(layer, options):
    """Along 3 random directions v: (L(theta + h v) - L(theta - h v)) / 2h - g.v = O(h^2)."""
    problem, params = build(layer, {**SMALL, **options}, 17)
    theta = flat(layer, params)
    V = np.random.default_rng(17).standard_normal((3, theta.size))

    def loss_at(t: np.ndarray) -> float:
        return float(layer.to_numpy(problem.loss(at(layer, params, t))))

    exact = V @ flat(layer, problem.grad(params))
    gaps = [np.linalg.norm([(loss_at(theta + h * v) - loss_at(theta - h * v)) / (2 * h)
                            for v in V] - exact) / np.linalg.norm(exact) for h in (1e-4, 5e-5)]
    # truncation (<= ~2e-5 here) falls 4x per halving of h while it dominates rounding (~1e-11)
    assert gaps[0] <= 1e-4 and gaps[1] <= gaps[0] / 3, f"gaps {gaps}"


@pytest.mark.parametrize("options", FIXED, ids=lambda o: f"{o['norm']}-{o.get('bn_mode', '')}")
def test_hessian_is_symmetric_and_the_limit_of_central_differences(layer, options):
    """Along 3 random directions v: (g(theta + h v) - g(theta - h v)) / 2h - H v = O(h^2)."""
    problem, params = build(layer, {**SMALL, **options}, 7)
    H = layer.to_numpy(problem.hessian(params))
    close(H, H.T, 1e-12, "symmetry")
    theta = flat(layer, params)
    V = np.random.default_rng(7).standard_normal((3, theta.size))
    gaps = []
    for h in (5e-5, 2.5e-5):
        diffs = np.stack([(gradient_at(layer, problem, params, theta + h * v)
                           - gradient_at(layer, problem, params, theta - h * v)) / (2 * h)
                          for v in V])
        gaps.append(np.linalg.norm(diffs - V @ H) / np.linalg.norm(V @ H))
    # the truncation error (h^2 / 6) times third derivatives is <= ~2e-6 here and falls 4x per
    # halving of h (rounding: ~1e-12); a wrong H would leave a gap that does not fall
    assert gaps[0] <= 1e-5 and gaps[1] <= gaps[0] / 3, f"gaps {gaps}"


@pytest.mark.parametrize("options", FIXED[:4], ids=lambda o: o["norm"])
def test_hvp_is_the_hessian_times_v(layer, options):
    problem, params = build(layer, {**SMALL, **options}, 9)
    v = {k: np.random.default_rng(1).standard_normal(np.shape(p)) for k, p in params.items()}
    Hv = flat(layer, problem.hvp(params, layer.cast(v)))
    close(Hv, layer.to_numpy(problem.hessian(params)) @ flat(layer, layer.cast(v)), 1e-12)


@pytest.mark.parametrize("norm, bn_mode, groups", [("layernorm", "train", 1),
                                                    ("groupnorm", "train", 2),
                                                    ("groupnorm", "train", 4),
                                                    ("batchnorm", "eval", 1)])
def test_exact_true_fisher_equals_the_ggn_without_ridge(layer, norm, bn_mode, groups):
    """ce: E_y[(p - e_y)(p - e_y)^T] = diag(p) - p p^T = Lambda, so F = G (l2 = 0)."""
    options = {**SMALL, "norm": norm, "bn_mode": bn_mode, "groups": groups, "loss": "ce"}
    problem, params = build(layer, options, 11)
    close(layer.to_numpy(problem.fisher_true(params)), layer.to_numpy(problem.ggn(params)),
          1e-12)


@pytest.mark.parametrize("quantity", ["per_sample_grads", "fisher_emp", "fisher_true"])
def test_train_mode_batchnorm_per_sample_quantities_raise(layer, quantity):
    problem, params = build(layer, {**SMALL, "norm": "batchnorm", "bn_mode": "train"}, 1)
    with pytest.raises(ValueError, match="train-mode BatchNorm"):
        getattr(problem, quantity)(params)
    assert np.isfinite(float(layer.to_numpy(problem.loss(params))))


@pytest.mark.parametrize("bad, match", [({"norm": "groupnorm", "groups": 3}, "groups"),
                                        ({"norm": "instancenorm"}, "norm"),
                                        ({"bn_mode": "test"}, "bn_mode"),
                                        ({"eps": 0.0}, "eps")])
def test_invalid_options_raise(layer, bad, match):
    with pytest.raises(ValueError, match=match):
        rp.get(ID).make(np.random.default_rng(0), **{**SMALL, **bad})
    if layer.is_torch:
        spec = rp.get(ID).make(np.random.default_rng(0), **SMALL).spec()
        with pytest.raises(ValueError, match=match):
            tp.get(ID)(**{**spec, **bad})


def functional_norm(h: torch.Tensor, problem, nu, beta) -> torch.Tensor:
    """torch's own functional norm on (B, T, C), in its native layout."""
    F = torch.nn.functional
    C, eps = h.shape[-1], problem.module[1].eps
    if problem.norm == "layernorm":
        return F.layer_norm(h, (C,), nu, beta, eps)
    first = h.transpose(1, 2)
    if problem.norm == "groupnorm":
        out = F.group_norm(first, problem.module[1].num_groups, nu, beta, eps)
    else:
        norm = problem.module[1]
        out = F.batch_norm(first, norm.running_mean, norm.running_var, nu, beta,
                           training=problem.bn_mode == "train", eps=eps)
    return out.transpose(1, 2)


@pytest.mark.parametrize("options", FIXED, ids=lambda o: f"{o['norm']}-{o.get('bn_mode', '')}")
def test_torch_module_is_torchs_norm_in_native_layout(torch_layer, options):
    problem, params = build(torch_layer, {**SMALL, **options}, 13)
    x = problem.X
    h = torch.nn.functional.linear(x, params["0.weight"], params.get("0.bias"))
    y = functional_norm(h, problem, params["1.weight"], params["1.bias"])
    u = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}[problem.phi](y)
    z = torch.nn.functional.linear(u.mean(1), params["4.weight"], params["4.bias"])
    batched = problem._outputs(params, x)
    torch.testing.assert_close(batched, z, rtol=1e-13, atol=1e-14)
    if not problem.coupled:  # one sample at a time, (T, D) inputs: the per-sample route
        single = torch.stack([problem._outputs(params, x_n) for x_n in x])
        torch.testing.assert_close(single, z, rtol=1e-13, atol=1e-14)
        if problem.l2:
            with pytest.raises(ValueError, match="l2"):
                problem.as_model()
        else:
            names = [n for n, _ in problem.as_model().module.named_parameters()]
            assert names == list(params)
    else:
        with pytest.raises(ValueError, match="train-mode BatchNorm"):
            problem.as_model()


@settings(max_examples=5)
@given(options=normnet_options())
def test_parameter_names_and_layer_stats_shapes_match_across_layers(reference_layer, options):
    ref, params = build(reference_layer, options, 0)
    twin = tp.get(ID)(**ref.spec())
    assert list(twin.shapes) == list(params) == ref.names
    t_stats = twin.layer_stats({k: torch.as_tensor(v) for k, v in params.items()})
    for ref_layer, torch_layer in zip(ref.layer_stats(params), t_stats, strict=True):
        assert {k: np.shape(v) for k, v in ref_layer.items()} == {
            k: tuple(v.shape) for k, v in torch_layer.items()}
