"""Convolutional networks (INVENTORY §1.2 prob:cnn, prob:deep_linear, prob:synth_images;
§1.3 prob:W8, prob:W2), torch.

The model is an ``nn.Sequential`` of ``nn.Conv2d``, activation, ``nn.AvgPool2d`` (global
average pooling: the kernel of the whole input), ``nn.Flatten``, ``nn.Linear`` and
``nn.BatchNorm2d`` modules built from the architecture in ``spec()``
(`contract.specs.convolutional.parse_layers`), so the parameter names are ``"0.weight",
"0.bias", ...`` by module index (BatchNorm2d: scale nu, shift beta). Train-mode BatchNorm
uses the batch statistics (``track_running_stats=False``); eval mode holds the given running
statistics as buffers (``module.eval()``). Everything else is
`torchimpl.problems.network.FeedForward`'s: ``as_model``, the likelihoods (ce, mse,
mse_half), per-sample gradients by ``vmap(grad)``, Hessians by forward-over-reverse,
Jacobians by ``jacrev``, GGN and Fishers, same conventions. Under ``vmap`` a sample is one
image (C, H, W); the module runs on it as a batch of one, so ``nn.Flatten`` keeps its
meaning.

layer_stats, per parametrised layer in module order: Linear {"h_bar" (B, in(+1)), "a" (B,
out), "s" (B, out)}; Conv2d {"h_bar" (B, G, T, C_in/G kh kw (+1)) (the patches of
`torchimpl.estimators.im2col`), "a", "s" (B, G, T, C_out/G)} with T = H_out W_out row-major and
s = dl_n/da of the per-sample loss, from the gradient of the summed loss with respect to a
zero shift added to each a; BatchNorm2d {"h" (B, T, C) its input, "x_hat" (B, T, C) (the
layer at nu = 1, beta = 0), "s" (B, T, C) at its output}, T = H W row-major.

Train-mode BatchNorm couples the samples (prob:normnet's conventions): per-sample gradients,
both Fishers and ``as_model`` raise `PerSampleUndefinedError`; the loss, gradient and Hessian
are those of the batch loss (one batched forward pass), J_n is the Jacobian of the batch's
outputs, jointly, and layer_stats' ``s`` is d(sum_m l_m)/d(output of sample n).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from contract.specs.convolutional import (
    Activation,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Layer,
    Linear,
    parse_layers,
)
from torchimpl.estimators.im2col import patches
from torchimpl.problems.base import Batch
from torchimpl.problems.functional import check_reduction, check_tree, to_tensor
from torchimpl.problems.network import ACTIVATIONS, LOSSES, FeedForward, _choice
from torchimpl.problems.normalization import BN_MODES, CoupledBatch
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree

CONV_LOSSES = ("ce", "mse", "mse_half")
PARAMETRISED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def build_module(layers: Sequence[Layer], bn_mode: str = "train", running_mean: Any = None,
                 running_var: Any = None, dtype: torch.dtype = torch.float64,
                 device: Any = None) -> nn.Sequential:
    """The ``nn.Sequential`` of parsed layers; eval-mode BatchNorm layers take their slices
    of the running statistics (channels concatenated in module order) and the module is put
    in eval mode."""
    module = nn.Sequential(*(_module(layer, bn_mode) for layer in layers)).to(dtype=dtype,
                                                                             device=device)
    norms = [m for m in module if isinstance(m, nn.BatchNorm2d)]
    if bn_mode != "eval" or not norms:
        return module
    sizes = [m.num_features for m in norms]
    if running_mean is None or running_var is None:
        raise ValueError(f"bn_mode='eval' needs running_mean and running_var, shape "
                         f"({sum(sizes)},)")
    stats = [to_tensor(value, name, dtype, device, 1) for name, value in
             (("running_mean", running_mean), ("running_var", running_var))]
    if any(t.numel() != sum(sizes) for t in stats) or not bool((stats[1] > 0).all()):
        raise ValueError(f"running_mean and running_var must be finite, shape ({sum(sizes)},), "
                         "and running_var > 0")
    for m, mean, var in zip(norms, *(t.split(sizes) for t in stats), strict=True):
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    return module.eval()


def _module(layer: Layer, bn_mode: str) -> nn.Module:
    if isinstance(layer, BatchNorm2d):
        return nn.BatchNorm2d(layer.out_channels, eps=layer.eps,
                              track_running_stats=bn_mode == "eval")
    if isinstance(layer, Conv2d):
        return nn.Conv2d(layer.in_shape[0], layer.out_channels, layer.kernel_size, layer.stride,
                         layer.padding, layer.dilation, layer.groups, layer.bias)
    if isinstance(layer, Linear):
        return nn.Linear(layer.in_shape[0], layer.out_features, layer.bias)
    if isinstance(layer, Activation):
        return ACTIVATIONS[layer.name]()
    if isinstance(layer, AvgPool2d):
        return nn.AvgPool2d(layer.kernel_size, layer.stride)
    return nn.Flatten()


class ConvNet(CoupledBatch, FeedForward):
    """A CNN with a likelihood loss on images X (N, C, H, W), labels y."""

    def __init__(
        self,
        X: Any,
        y: Any,
        layers: Sequence[Mapping[str, Any]],
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        id: str = "prob:cnn",
        bn_mode: str = "train",
        running_mean: Any = None,
        running_var: Any = None,
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        self.id = id
        self.bn_mode = _choice(bn_mode, dict.fromkeys(BN_MODES), "bn_mode")
        self.likelihood = LOSSES[_choice(loss, dict.fromkeys(CONV_LOSSES), "loss")]
        self.loss_name = loss
        self.X = to_tensor(X, "X", dtype, device, 4)
        self.layers = parse_layers(layers, tuple(self.X.shape[1:]))
        self.widths = (math.prod(self.X.shape[1:]),
                       *(math.prod(layer.out_shape) for layer in self.layers))
        self.module = build_module(self.layers, bn_mode, running_mean, running_var, dtype,
                                   device)
        self.shapes = {name: p.shape for name, p in self.module.named_parameters()}
        self.reduction = check_reduction(reduction)
        self.l2 = float(l2)
        if not 0 <= self.l2 < float("inf"):
            raise ValueError(f"Invalid l2: {l2} (must be finite and >= 0)")
        self.y = self._labels(y, self.X.shape[0])

    def _linear(self) -> list[tuple[int, nn.Module]]:
        """The parametrised modules (Conv2d, Linear, BatchNorm2d) with their indices."""
        return [(i, m) for i, m in enumerate(self.module) if isinstance(m, PARAMETRISED)]

    @property
    def coupled(self) -> bool:
        """True where BatchNorm statistics couple the samples of a batch (train mode)."""
        return self.bn_mode == "train" and any(isinstance(m, nn.BatchNorm2d)
                                               for m in self.module)

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, with
        fan_in = C_in/groups kh kw for Conv2d; BatchNorm nu = 1, beta = 0."""
        params = {}
        for i, layer in self._linear():
            bound = 1 / math.sqrt(layer.weight[0].numel())
            for name, p in layer.named_parameters():
                if isinstance(layer, nn.BatchNorm2d):
                    params[f"{i}.{name}"] = p.detach().clone()
                    continue
                u = torch.rand(p.shape, generator=generator, dtype=p.dtype)
                params[f"{i}.{name}"] = ((2 * u - 1) * bound).to(p.device)
        return params

    def _outputs(self, params: Tree, x: torch.Tensor) -> torch.Tensor:
        """z for a batch (B, C, H, W), or for one image (C, H, W) as a batch of one."""
        params = check_tree(params, self.shapes, "params")
        if x.dim() == 3:
            return functional_call(self.module, params, (x.unsqueeze(0),)).squeeze(0)
        return functional_call(self.module, params, (x,))

    def layer_stats(self, params: Tree, batch: Batch = None) -> list[dict[str, torch.Tensor]]:
        """Per parametrised layer: h_bar, a and s, or h, x_hat and s for BatchNorm (module
        docstring)."""
        params, (x, y) = check_tree(params, self.shapes, "params"), self._samples(batch)
        at = dict(self._linear())
        B = x.shape[0]
        shifts = [x.new_zeros(B, *self.layers[i].out_shape) for i in at]

        def summed_loss(shifts: list[torch.Tensor]):
            h, inputs, pre = x, [], []
            for i, module in enumerate(self.module):
                if i in at:
                    inputs.append(h)
                    weights = {k: params[f"{i}.{k}"] for k, _ in module.named_parameters()}
                    h = functional_call(module, weights, (h,)) + shifts[len(pre)]
                    pre.append(h)
                else:
                    h = module(h)
            return vmap(self.likelihood.value)(h, y).sum(), (inputs, pre)

        s, (inputs, pre) = grad(summed_loss, has_aux=True)(shifts)
        return [self._stats(i, h, a, s_i) for i, h, a, s_i in zip(at, inputs, pre, s, strict=True)]

    def _stats(self, i: int, h: torch.Tensor, a: torch.Tensor, s: torch.Tensor
               ) -> dict[str, torch.Tensor]:
        layer = self.layers[i]
        if isinstance(layer, BatchNorm2d):
            ones = torch.ones(layer.out_channels, dtype=h.dtype, device=h.device)
            x_hat = functional_call(self.module[i], {"weight": ones, "bias": 0 * ones}, (h,))
            return {"h": _tokens(h), "x_hat": _tokens(x_hat), "s": _tokens(s)}
        if isinstance(layer, Linear):
            h_bar = torch.cat([h, h.new_ones(h.shape[0], 1)], 1) if layer.bias else h
            return {"h_bar": h_bar, "a": a, "s": s}
        return {"h_bar": patches(h, layer), "a": _positions(layer, a), "s": _positions(layer, s)}


def _tokens(a: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, T, C), T = H W positions row-major."""
    return a.reshape(*a.shape[:2], -1).transpose(-1, -2)


def _positions(conv: Conv2d, a: torch.Tensor) -> torch.Tensor:
    """(B, C_out, H_out, W_out) -> (B, G, T, C_out/G)."""
    G = conv.groups
    return a.reshape(a.shape[0], G, conv.out_channels // G, -1).transpose(-1, -2)


for _id in ("prob:cnn", "prob:W8", "prob:synth_images", "prob:W2"):
    REGISTRY.register(_id, ConvNet)
REGISTRY.register("prob:deep_linear", FeedForward)
