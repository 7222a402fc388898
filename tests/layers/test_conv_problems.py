"""The convolutional problems (prob:cnn, prob:deep_linear, prob:W8, prob:synth_images) and the
image data (reference.problems.images), per layer.

Each layer's problem is built from the reference's ``spec()`` (the torch twin) or is the
reference itself, and is checked against NumPy closed forms and identities of its own
outputs: central differences of its exact gradient (O(h^2)), symmetry of its HVPs, the mean of
its per-sample gradients, GGN = H for a model linear in theta, layer_stats against
per-sample gradients, and the prob:W8 architecture. Never against the other layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

import reference.problems as rp
from reference.problems import images
from reference.tree import flatten

TANH_NET = [
    {"type": "conv", "out_channels": 4, "kernel_size": [2, 3], "stride": [1, 2],
     "padding": [1, 0], "dilation": [2, 1], "groups": 2},
    {"type": "act", "name": "tanh"}, {"type": "avgpool", "kernel_size": 2}, {"type": "flatten"},
    {"type": "linear", "out_features": 4}, {"type": "act", "name": "sigmoid"},
    {"type": "linear", "out_features": 3, "bias": False},
]
# conv -> average pooling to 1 x 1 -> flatten: the logits are linear in theta
LINEAR_NET = [{"type": "conv", "out_channels": 3, "kernel_size": 2, "stride": 2, "groups": 1},
              {"type": "avgpool", "kernel_size": 2}, {"type": "flatten"}]


def build(layer, pid: str, seed: int = 0, **options):
    """The layer's problem (torch: the twin of the reference instance), a point, a direction."""
    rng = np.random.default_rng(seed)
    ref = rp.get(pid).make(rng, **options)
    params = ref.init_params(rng)
    v = {k: rng.standard_normal(a.shape) for k, a in params.items()}
    problem = layer.problems.get(pid)(**ref.spec(), dtype=torch.float64) if layer.is_torch \
        else ref
    return problem, layer.cast(params), layer.cast(v)


def flat(layer, tree) -> np.ndarray:
    return flatten(layer.to_numpy(tree))


@pytest.mark.parametrize("options", [
    {"layers": TANH_NET, "in_shape": (2, 6, 7), "n_samples": 4},
    {"layers": TANH_NET, "in_shape": (2, 6, 7), "n_samples": 3, "loss": "mse",
     "reduction": "sum", "l2": 0.1},
])
def test_hvp_is_the_central_difference_of_the_gradient(layer, options):
    problem, params, v = build(layer, "prob:cnn", **options)
    Hv = flat(layer, problem.hvp(params, v))
    errors = []
    for h in (1e-3, 1e-4):
        plus = {k: params[k] + h * v[k] for k in params}
        minus = {k: params[k] - h * v[k] for k in params}
        cd = (flat(layer, problem.grad(plus)) - flat(layer, problem.grad(minus))) / (2 * h)
        errors.append(np.linalg.norm(cd - Hv) / np.linalg.norm(Hv))
    # O(h^2): a tenfold smaller step cuts the error about a hundredfold (rounding ~1e-13/h)
    assert errors[1] <= 1e-6 and errors[1] <= errors[0] / 30, errors


def test_hessian_is_symmetric_and_matches_hvp(layer):
    problem, params, v = build(layer, "prob:cnn", 1, layers=TANH_NET, in_shape=(2, 6, 7),
                               n_samples=3)
    u = layer.cast({k: np.cos(np.arange(np.size(a))).reshape(np.shape(a))
                    for k, a in layer.to_numpy(params).items()})
    Hv, Hu = flat(layer, problem.hvp(params, v)), flat(layer, problem.hvp(params, u))
    uHv, vHu = flat(layer, u) @ Hv, flat(layer, v) @ Hu
    assert abs(uHv - vHu) <= 1e-10 * np.linalg.norm(Hv) * np.linalg.norm(flat(layer, u))
    H = layer.to_numpy(problem.hessian(params))
    np.testing.assert_allclose(H @ flat(layer, v), Hv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_is_the_reduction_of_per_sample_grads(layer, reduction):
    problem, params, _ = build(layer, "prob:cnn", 2, layers=TANH_NET, in_shape=(2, 6, 7),
                               n_samples=5, reduction=reduction, l2=0.2)
    G = layer.to_numpy(problem.per_sample_grads(params))
    reduce = G.mean(axis=0) if reduction == "mean" else G.sum(axis=0)
    np.testing.assert_allclose(flat(layer, problem.grad(params)), reduce, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("loss", ["ce", "mse_half"])
def test_ggn_equals_hessian_for_a_model_linear_in_theta(layer, loss):
    problem, params, _ = build(layer, "prob:cnn", 3, layers=LINEAR_NET, in_shape=(2, 4, 4),
                               n_samples=5, loss=loss)
    H, G = (layer.to_numpy(q(params)) for q in (problem.hessian, problem.ggn))
    np.testing.assert_allclose(G, H, rtol=1e-10, atol=1e-12 * np.abs(H).max())
    F_true = layer.to_numpy(problem.fisher_true(params))  # l2 = 0: F = G for these losses
    np.testing.assert_allclose(F_true, G, rtol=1e-10, atol=1e-12 * np.abs(G).max())


@pytest.mark.parametrize("arch", ["tanh", "two_conv_two_linear"])
def test_layer_stats_give_the_per_sample_grads(layer, arch):
    options = ({"layers": TANH_NET, "in_shape": (2, 6, 7)} if arch == "tanh" else
               {"preset_name": arch, "in_shape": (1, 6, 6), "activation": "relu"})
    problem, params, _ = build(layer, "prob:cnn", 4, n_samples=3, **options)
    stats = [layer.to_numpy(st) for st in problem.layer_stats(params)]
    G = layer.to_numpy(problem.per_sample_grads(params))
    sizes = [int(np.prod(np.shape(layer.to_numpy(a)))) for a in params.values()]
    per_name = dict(zip(params, np.split(G, np.cumsum(sizes)[:-1], axis=1), strict=True))
    modules = list(dict.fromkeys(name.split(".")[0] for name in params))
    for module, st in zip(modules, stats, strict=True):
        if st["h_bar"].ndim == 4:  # conv: sum_t s_t h_bar_t^T per group, groups stacked
            g = np.einsum("bgto,bgtk->bgok", st["s"], st["h_bar"])
            g = g.reshape(g.shape[0], -1, g.shape[-1])
        else:
            g = st["s"][:, :, None] * st["h_bar"][:, None, :]
        has_bias = f"{module}.bias" in params
        weight = g[..., :-1] if has_bias else g
        np.testing.assert_allclose(per_name[f"{module}.weight"], weight.reshape(len(g), -1),
                                   rtol=1e-10, atol=1e-12)
        if has_bias:
            np.testing.assert_allclose(per_name[f"{module}.bias"], g[..., -1], rtol=1e-10,
                                       atol=1e-12)


def test_layer_stats_shapes_and_pre_activations(layer):
    problem, params, _ = build(layer, "prob:cnn", 5, layers=TANH_NET, in_shape=(2, 6, 7),
                               n_samples=3)
    conv, *linears = [layer.to_numpy(st) for st in problem.layer_stats(params)]
    # conv 2 -> 4, kernel (2, 3), stride (1, 2), padding (1, 0), dilation (2, 1), 2 groups:
    # H_out = (6 + 2 - 2 - 1) + 1 = 6, W_out = (7 - 3) // 2 + 1 = 3
    assert conv["h_bar"].shape == (3, 2, 18, 1 * 2 * 3 + 1)
    assert conv["a"].shape == conv["s"].shape == (3, 2, 18, 2)
    W = layer.to_numpy(params["0.weight"]).reshape(4, -1)
    theta = np.concatenate([W, layer.to_numpy(params["0.bias"])[:, None]], 1).reshape(2, 2, -1)
    np.testing.assert_allclose(np.einsum("gok,bgtk->bgto", theta, conv["h_bar"]), conv["a"],
                               rtol=1e-12, atol=1e-12)
    assert [st["h_bar"].shape for st in linears] == [(3, 4 * 3 * 1 + 1), (3, 4)]


def test_w8_architecture(layer):
    problem, params, _ = build(layer, "prob:W8", n_samples=2)
    shapes = {k: tuple(np.shape(layer.to_numpy(a))) for k, a in params.items()}
    assert shapes == {"0.weight": (4, 1, 3, 3), "0.bias": (4,), "2.weight": (8, 4, 3, 3),
                      "2.bias": (8,), "5.weight": (32, 128), "5.bias": (32,),
                      "7.weight": (10, 32), "7.bias": (10,)}
    assert sum(int(np.prod(s)) for s in shapes.values()) == 4794
    assert problem.num_samples() == 2 and problem.id == "prob:W8"
    assert layer.to_numpy(problem.per_sample_losses(params)).shape == (2,)


def test_deep_linear_loss_is_the_product_of_the_layers(layer):
    problem, params, _ = build(layer, "prob:deep_linear", 6, widths=(3, 4, 2), n_samples=5)
    p = layer.to_numpy(params)
    ref = rp.get("prob:deep_linear").make(np.random.default_rng(6), widths=(3, 4, 2),
                                          n_samples=5)
    z = (ref.X @ p["0.weight"].T + p["0.bias"]) @ p["2.weight"].T + p["2.bias"]
    expected = 0.5 * np.mean(np.sum((z - ref.y) ** 2, axis=1))
    assert abs(float(layer.to_numpy(problem.loss(params))) - expected) <= 1e-12 * expected


def test_as_model_is_the_problem_module(torch_layer):
    problem, params, _ = build(torch_layer, "prob:cnn", 7, layers=TANH_NET, in_shape=(2, 6, 7),
                               n_samples=3)
    model = problem.as_model(np.array([0, 2]))
    assert [n for n, _ in model.module.named_parameters()] == list(params)
    assert (model.loss, model.reduction, tuple(model.x.shape)) == ("ce", "mean", (2, 2, 6, 7))
    z = functional_call(model.module, params, (model.x,))
    losses = torch.nn.functional.cross_entropy(z, model.y, reduction="none")
    np.testing.assert_allclose(losses.numpy(), problem.per_sample_losses(params, [0, 2]).numpy(),
                               rtol=1e-12)
    ridge = torch_layer.problems.get("prob:cnn")(**{**rp.get("prob:cnn").make(
        np.random.default_rng(0)).spec(), "l2": 0.1})
    with pytest.raises(ValueError, match="l2"):
        ridge.as_model()


# -- image data ------------------------------------------------------------------------------


def test_synth_images_are_deterministic_balanced_and_separable():
    a = images.synth_images(3, n_train=600, n_test=300)
    b = images.synth_images(3, n_train=600, n_test=300)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["X_train"].shape == (600, 3, 16, 16) and a["X_test"].shape == (300, 3, 16, 16)
    assert np.all(np.bincount(a["y_train"], minlength=10) == 60)
    other = images.synth_images(3, n_train=600, n_test=300, family="B")
    assert not np.allclose(other["X_train"], a["X_train"])
    # class-dependent content: nearest class mean beats chance (0.1) by far (measured 0.95)
    mu = np.stack([a["X_train"][a["y_train"] == c].mean(0) for c in range(10)])
    dist = ((a["X_test"][:, None] - mu[None]) ** 2).sum(axis=(2, 3, 4))
    assert np.mean(dist.argmin(1) == a["y_test"]) >= 0.8


def test_augmentations():
    X = np.random.default_rng(0).standard_normal((5, 2, 6, 7))
    assert np.array_equal(images.random_crop(X, seed=1, padding=0), X)
    crop = images.random_crop(X, seed=1, padding=2)
    padded = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = np.random.default_rng(1).integers(0, 5, (5, 2))
    for n, (r, c) in enumerate(offsets):
        assert np.array_equal(crop[n], padded[n, :, r:r + 6, c:c + 7])
    assert np.array_equal(images.flip(X, seed=2, p=1.0), X[..., ::-1])
    assert np.array_equal(images.flip(images.flip(X, seed=3), seed=3), X)
    erased = images.random_erasing(X, seed=4, size=3)
    hole = erased != X
    assert np.array_equal(erased[hole], np.zeros(hole.sum()))
    for n in range(5):  # one rectangle, at most 3 x 3, the same in every channel
        rows, cols = np.nonzero(hole[n, 0])
        assert np.array_equal(hole[n, 0], hole[n, 1])
        assert rows.size == (np.ptp(rows) + 1) * (np.ptp(cols) + 1) and np.ptp(rows) < 3
        assert 1 <= rows.size <= 9
    assert np.array_equal(images.random_erasing(X, seed=4, size=3), erased)
