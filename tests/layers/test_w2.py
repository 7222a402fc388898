"""``prob:W2`` (INVENTORY §1.3) and the BatchNorm2d / global-average-pooling layers of
prob:cnn, both layers.

Each layer's problem is built from the same reference data (``make`` draws the image subset
and the running statistics; the torch twin takes ``spec()``) at the same point. Expected
values are torch's own ``nn.Sequential`` of ``nn.Conv2d``, ``nn.BatchNorm2d``,
``nn.AdaptiveAvgPool2d`` and ``nn.Linear`` modules written out here, NumPy closed forms, or
identities of the layer's own quantities, never the other layer's numbers:
- the loss equals the hand-built torch model's cross-entropy in both BatchNorm modes;
- eval mode: per-sample gradients average to the gradient, and 002 Prop. A.0.1 (b) per
  sample (grad nu = sum_x x_hat_x ⊙ s_x, grad beta = sum_x s_x over positions x) from
  ``layer_stats``; train mode: the same formulas summed over the batch give the gradient;
- x_hat is the normalisation over batch x H x W (train) or by the running statistics (eval);
- central differences of the loss converge to the gradient at O(h^2), and central
  differences of the gradient to the Hessian-vector product at O(h^2) (tanh, smooth: a
  tenfold smaller step cuts the error at least thirtyfold; a wrong derivative leaves a
  floor); with relu (kinks), one small step agrees to 1e-6 (1e-5 for the HVP);
- train mode: J_n from ``jac_out`` gives the gradient as scale sum_n J_n^T (p_n - e_{y_n});
  per-sample quantities raise `PerSampleUndefinedError` (a ValueError);
- the full-size W2 has 14,746 parameters (plain) and 2,986 (dw).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import reference.problems as rp
from contract.specs.convolutional import w2_layers
from verify.strategies import SEEDS

ID = "prob:W2"
TINY = {"n_samples": 3, "width": 1 / 8, "size": 8, "classes": 3}  # channels 2/4/4, P = 305
MODES = ["train", "eval"]
VARIANTS = ["plain", "dw"]


def build(layer, seed: int = 0, **options):
    """The layer's problem (torch: the twin of the reference instance), a point, a direction
    and the reference instance (for its data)."""
    rng = np.random.default_rng(seed)
    ref = rp.get(ID).make(rng, **{**TINY, **options})
    params = ref.init_params(rng)
    v = {k: rng.standard_normal(a.shape) for k, a in params.items()}
    problem = layer.problems.get(ID)(**ref.spec(), dtype=torch.float64) if layer.is_torch \
        else ref
    return problem, layer.cast(params), layer.cast(v), ref


def flat(layer, tree) -> np.ndarray:
    return layer.to_numpy(layer.tree.flatten(tree))


def close(actual, expected, rtol: float = 1e-12, what: str = "") -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    gap = np.linalg.norm(actual - expected)
    assert gap <= rtol * max(np.linalg.norm(expected), 1e-300), (
        f"{what}: relative gap {gap / max(np.linalg.norm(expected), 1e-300):.2e} > {rtol}")


def scale(problem, B: int) -> float:
    return 1.0 / B if problem.reduction == "mean" else 1.0


def hand_built(variant: str, mode: str, ref) -> nn.Sequential:
    """W2 at width 1/8 (3 -> 2 -> 4 -> 4 channels, 3 classes) from torch modules, written out
    (not from the architecture list), with AdaptiveAvgPool2d for the global pooling."""
    def bn(C: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(C), nn.ReLU()]

    def stage(c_in: int, c_out: int) -> list[nn.Module]:
        if variant == "plain":
            return [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False), *bn(c_out)]
        return [nn.Conv2d(c_in, c_in, 3, 2, 1, groups=c_in, bias=False), *bn(c_in),
                nn.Conv2d(c_in, c_out, 1, bias=False), *bn(c_out)]

    model = nn.Sequential(nn.Conv2d(3, 2, 3, 1, 1, bias=False), *bn(2), *stage(2, 4),
                          *stage(4, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).double()
    if mode == "eval":
        norms = [m for m in model if isinstance(m, nn.BatchNorm2d)]
        cuts = np.cumsum([m.num_features for m in norms])[:-1]
        for m, mean, var in zip(norms, np.split(ref.running_mean, cuts),
                                np.split(ref.running_var, cuts), strict=True):
            m.running_mean.copy_(torch.from_numpy(mean))
            m.running_var.copy_(torch.from_numpy(var))
        model.eval()
    return model


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", MODES)
def test_loss_is_the_hand_built_torch_model(layer, variant, mode):
    problem, params, _, ref = build(layer, 1, variant=variant, bn_mode=mode, reduction="sum")
    model = hand_built(variant, mode, ref)
    model.load_state_dict({k: torch.from_numpy(a) for k, a in layer.to_numpy(params).items()},
                          strict=False)
    with torch.no_grad():
        z = model(torch.from_numpy(ref.X))
        expected = nn.functional.cross_entropy(z, torch.from_numpy(ref.y), reduction="none")
    close(layer.to_numpy(problem.per_sample_losses(params)), expected.numpy(),
          what=f"{variant} {mode}")
    close(layer.to_numpy(problem.loss(params)), expected.sum().numpy(), what="loss")


def test_full_size_parameter_counts(layer):
    """INVENTORY §1.3 prints ~15k: conv 3*16*9 + BN 2*16 + conv 16*32*9 + BN 2*32 + conv
    32*32*9 + BN 2*32 + Linear 32*10 + 10 = 14,746 (convs without bias)."""
    counts = {}
    for variant in VARIANTS:
        problem, params, _, ref = build(layer, variant=variant, n_samples=2, width=1.0,
                                        size=16, classes=10)
        counts[variant] = sum(int(np.prod(np.shape(layer.to_numpy(a)))) for a in
                              params.values())
        assert ref.X.shape == (2, 3, 16, 16) and problem.id == ID
    assert counts == {"plain": 14746, "dw": 2986}
    names = list(params)
    assert names[:4] == ["0.weight", "1.weight", "1.bias", "3.weight"], names
    assert names[-2:] == ["17.weight", "17.bias"], names  # dw: 3 + 2 * 6 modules, gap, flatten


@settings(max_examples=4)
@given(variant=st.sampled_from(VARIANTS), reduction=st.sampled_from(["mean", "sum"]),
       seed=SEEDS)
def test_eval_per_sample_grads_average_to_the_gradient(layer, variant, reduction, seed):
    problem, params, _, _ = build(layer, seed, variant=variant, bn_mode="eval",
                                  reduction=reduction, l2=0.1)
    G = layer.to_numpy(problem.per_sample_grads(params))
    close(scale(problem, G.shape[0]) * G.sum(0), flat(layer, problem.grad(params)),
          what=f"seed={seed}")


def identity_grads(layer, problem, params) -> np.ndarray:
    """Per-sample gradient terms (B, P) from layer_stats, l2 excluded: conv sum_t s_t
    h_bar_t^T (no bias, one group per row block), BatchNorm [sum_x x_hat ⊙ s | sum_x s]
    (002 Prop. A.0.1 (b)), Linear s h_bar^T (weight, then bias)."""
    parts = []
    for st_ in problem.layer_stats(params):
        st_ = layer.to_numpy(st_)
        if "x_hat" in st_:
            parts += [(st_["x_hat"] * st_["s"]).sum(1), st_["s"].sum(1)]
        elif st_["h_bar"].ndim == 4:
            g = np.einsum("bgto,bgtk->bgok", st_["s"], st_["h_bar"])
            parts.append(g.reshape(g.shape[0], -1))
        else:
            g = st_["s"][:, :, None] * st_["h_bar"][:, None, :]
            parts += [g[..., :-1], g[..., -1]]
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_prop_A01b_eval_per_sample_gradients_from_layer_stats(layer, variant):
    problem, params, _, _ = build(layer, 2, variant=variant, bn_mode="eval", l2=0.1)
    expected = identity_grads(layer, problem, params) + 0.1 * flat(layer, params)
    close(layer.to_numpy(problem.per_sample_grads(params)), expected, what=variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_prop_A01b_train_batch_gradient_from_layer_stats(layer, variant):
    problem, params, _, _ = build(layer, 3, variant=variant, bn_mode="train")
    terms = identity_grads(layer, problem, params)
    close(scale(problem, terms.shape[0]) * terms.sum(0), flat(layer, problem.grad(params)))


@pytest.mark.parametrize("mode", MODES)
def test_x_hat_is_the_normalisation_of_h(layer, mode):
    problem, params, _, ref = build(layer, 4, bn_mode=mode)
    norms = [layer.to_numpy(st_) for st_ in problem.layer_stats(params) if "x_hat" in st_]
    cuts = np.cumsum([st_["h"].shape[-1] for st_ in norms])[:-1]
    running = zip(np.split(ref.running_mean, cuts), np.split(ref.running_var, cuts), strict=True)
    for st_, (mean, var) in zip(norms, running, strict=True):
        h = st_["h"]  # (B, T, C): statistics over B x T per channel in train mode
        if mode == "train":
            mean, var = h.mean(axis=(0, 1)), h.var(axis=(0, 1))
        close(st_["x_hat"], (h - mean) / np.sqrt(var + 1e-5), what=mode)


def loss_slope_errors(layer, problem, params, u, steps) -> list[float]:
    """|(l(x + h u) - l(x - h u)) / 2h - u . grad| / |u . grad| for each step h."""
    slope = flat(layer, layer.cast(u)) @ flat(layer, problem.grad(params))
    errors = []
    for h in steps:
        loss = [float(layer.to_numpy(problem.loss(layer.cast(
            {k: layer.to_numpy(params[k]) + sign * h * u[k] for k in params}))))
            for sign in (1, -1)]
        errors.append(abs((loss[0] - loss[1]) / (2 * h) - slope) / abs(slope))
    return errors


def hvp_errors(layer, problem, params, v, steps) -> list[float]:
    """||(grad(x + h v) - grad(x - h v)) / 2h - H v|| / ||H v|| for each step h."""
    Hv = flat(layer, problem.hvp(params, v))
    errors = []
    for h in steps:
        grads = [flat(layer, problem.grad({k: params[k] + sign * h * v[k] for k in params}))
                 for sign in (1, -1)]
        errors.append(np.linalg.norm((grads[0] - grads[1]) / (2 * h) - Hv)
                      / np.linalg.norm(Hv))
    return errors


# O(h^2) rates need a smooth model: tanh (relu's kinks are crossed at these steps).
@pytest.mark.parametrize("variant", VARIANTS)
def test_gradient_is_the_central_difference_of_the_loss(layer, variant):
    problem, params, _, _ = build(layer, 5, variant=variant, bn_mode="train", l2=0.1,
                                  activation="tanh")
    rng = np.random.default_rng(5)
    for _ in range(3):  # random directions
        u = {k: rng.standard_normal(np.shape(layer.to_numpy(a))) for k, a in params.items()}
        errors = loss_slope_errors(layer, problem, params, u, (1e-3, 1e-4))
        assert errors[1] <= 1e-3 and errors[1] <= errors[0] / 30, errors


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", MODES)
def test_hvp_is_the_central_difference_of_the_gradient(layer, variant, mode):
    problem, params, v, _ = build(layer, 6, variant=variant, bn_mode=mode, reduction="sum",
                                  activation="tanh")
    errors = hvp_errors(layer, problem, params, v, (1e-3, 1e-4))
    assert errors[1] <= 1e-3 and errors[1] <= errors[0] / 30, errors


@pytest.mark.parametrize("mode", MODES)
def test_relu_derivatives_match_small_central_differences(layer, mode):
    """relu (piecewise smooth): one small step, no kink crossed at this seed."""
    problem, params, v, _ = build(layer, 6, bn_mode=mode)
    u = {k: layer.to_numpy(a) for k, a in v.items()}
    assert loss_slope_errors(layer, problem, params, u, (1e-6,))[0] <= 1e-6
    assert hvp_errors(layer, problem, params, v, (1e-6,))[0] <= 1e-5


def test_train_jacobians_give_the_gradient(layer):
    """Train mode: the loss is sum_n nll(z_n(theta)) with z_n the batch function's output n,
    so its gradient is scale sum_n J_n^T (softmax(z_n) - e_{y_n})."""
    problem, params, _, ref = build(layer, 7, variant="dw", bn_mode="train")
    J = layer.to_numpy(problem.jac_out(params))
    z = layer.to_numpy(problem.layer_stats(params)[-1]["a"])
    p = np.exp(z - z.max(1, keepdims=True))
    r = p / p.sum(1, keepdims=True) - np.eye(z.shape[1])[ref.y]
    close(scale(problem, len(z)) * np.einsum("bkp,bk->p", J, r),
          flat(layer, problem.grad(params)))


@pytest.mark.parametrize("quantity", ["per_sample_grads", "fisher_emp", "fisher_true"])
def test_train_mode_per_sample_quantities_raise(layer, quantity):
    problem, params, _, _ = build(layer, bn_mode="train")
    with pytest.raises(ValueError, match="train-mode BatchNorm"):
        getattr(problem, quantity)(params)


def test_torch_as_model_follows_the_mode(torch_layer):
    problem, params, _, _ = build(torch_layer, 8, bn_mode="train")
    with pytest.raises(ValueError, match="train-mode BatchNorm"):
        problem.as_model()
    problem, params, _, _ = build(torch_layer, 8, bn_mode="eval")
    model = problem.as_model()
    assert not model.module.training
    z = torch.func.functional_call(model.module, params, (model.x,))
    close(nn.functional.cross_entropy(z, model.y, reduction="none").numpy(),
          problem.per_sample_losses(params).numpy())


def test_options_are_checked():
    with pytest.raises(ValueError, match="not implemented"):
        w2_layers(variant="res")
    with pytest.raises(ValueError, match="variant"):
        w2_layers(variant="wide")
    with pytest.raises(ValueError, match="width"):
        w2_layers(width=0.0)
    with pytest.raises(ValueError, match="bn_mode"):
        rp.get(ID).make(np.random.default_rng(0), **TINY, bn_mode="frozen")
    assert [e["out_channels"] for e in w2_layers(width=1 / 8) if e["type"] == "conv"] == [2, 4, 4]
