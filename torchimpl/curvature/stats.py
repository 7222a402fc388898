"""Layer statistics by forward hooks (INVENTORY est:layer_stats, §5 items 3, 4, 6, 7).

One forward pass at ``params`` records every supported layer's input and output; the output
gradients of the SUMMED per-sample loss sum_n l_n are then the per-sample s_n = dl_n/da_n
(a layer's output for sample n reaches only l_n). Layouts (T = positions, row-major):

- ``nn.Linear``: ``h_bar`` = [h, 1] (B, in+1) (h alone without bias), ``a`` and ``s`` (B, out);
  token inputs (B, ..., in) give (B, T, in+1) and (B, T, out), or (B*T, ...) with
  ``token_flatten`` (the per-sample loss still defines s: tokens of one sample share l_n);
- ``nn.Conv2d``: the patches of ``F.unfold`` in (C_in, kh, kw) order, per group:
  ``h_bar`` (B, G, T, C_in/G*kh*kw (+1)), ``a`` and ``s`` (B, G, T, C_out/G), T = H_out*W_out;
- ``nn.LayerNorm``, ``nn.GroupNorm``, eval-mode BatchNorm: ``h`` (the pre-norm input),
  ``x_hat`` (the normalized input) and ``s`` (at the affine output), as (B, T, C): C the
  features of the scale nu (LayerNorm: prod(normalized_shape)) and T the other positions.

The per-sample gradient of a layer follows from its statistics (`grads_from_stats`):
s h_bar^T (Linear), sum_t s_t h_bar_t^T (tokens, conv, per group), sum_t s_t ⊙ x_hat_t and
sum_t s_t (norm scale and shift) (002 §2.1.4; Prop. A.0.1 proof).

Per call: the summed loss is evaluated on the whole batch
(`autodiff.summed_loss_for_derivatives`); the module runs directly when ``params`` are its own
parameters (`autodiff.direct`), else through ``functional_call``; `records` holds the raw
(h, a, s) that `fast` uses without the layouts.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from torchimpl.curvature.autodiff import (
    call,
    couples,
    coupling_error,
    direct,
    outputs,
    summed_loss_for_derivatives,
)
from torchimpl.curvature.model import ModelBatch
from torchimpl.tree import Tree

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def kind(module: nn.Module) -> str | None:
    """"linear", "conv" or "norm" for the layers with a structured path, else None."""
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, NORMS) and any(True for _ in module.parameters(recurse=False)):
        return "norm"
    return None


@dataclass(frozen=True)
class _Named:
    """A supported layer: its module name and the module."""

    name: str
    module: nn.Module

    def param(self, local: str) -> str:
        """The full parameter name of ``local`` ("weight" or "bias")."""
        return f"{self.name}.{local}" if self.name else local


@dataclass(frozen=True)
class Layer(_Named):
    """One supported layer with its statistics (unflattened)."""

    stats: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Record(_Named):
    """One supported layer's raw forward record: input h, output a, output gradient s."""

    h: torch.Tensor
    a: torch.Tensor
    s: torch.Tensor


def collect(params: Tree, mb: ModelBatch, y: torch.Tensor | None = None) -> list[Layer]:
    """The statistics of every supported layer, in forward order; ``y`` replaces the labels."""
    return [Layer(r.name, r.module, layout(r.module, r.h, r.a, r.s))
            for r in records(params, mb, y)]


def records(params: Tree, mb: ModelBatch, y: torch.Tensor | None = None,
            seed: float = 1.0) -> list[Record]:
    """Every supported layer's input, output and output gradient s (times ``seed``), in forward
    order, from one forward pass and one backward to the layer outputs."""
    modules = _supported(mb.module)
    seen: dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}

    def record(name: str):
        def hook(module, args, output):
            if name in seen:
                raise ValueError(f"layer {name!r} is called twice in one forward pass "
                                 "(shared weights): its statistics are not defined")
            seen[name] = (module, args[0], output)
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in modules]
    try:
        with torch.enable_grad():
            total = summed_loss_for_derivatives(mb, _forward(params, mb), y)
            total = total if seed == 1.0 else total * seed
    finally:
        for handle in handles:
            handle.remove()
    names = [n for n, _ in modules if n in seen]
    grads = torch.autograd.grad(total, [seen[n][2] for n in names], allow_unused=True)
    return [Record(n, seen[n][0], seen[n][1].detach(), seen[n][2].detach(),
                   torch.zeros_like(seen[n][2]) if s is None else s)
            for n, s in zip(names, grads, strict=True)]


def _supported(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every supported layer; train-mode BatchNorm raises (`check_per_sample`,
    in the same walk over the submodules)."""
    layers = []
    for name, m in module.named_modules():
        if couples(m):
            raise coupling_error(name)
        if kind(m):
            layers.append((name, m))
    return layers


def _forward(params: Tree, mb: ModelBatch) -> torch.Tensor:
    """z at ``params`` with a graph reaching every layer output: the module called directly on
    its own parameters, else ``functional_call`` at leaves (and an input) requiring grad."""
    if direct(mb.module, params):
        return mb.module(mb.x)
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    x = mb.x.detach().requires_grad_() if mb.x.is_floating_point() else mb.x
    return outputs(mb, leaves, x)


def layer_stats(
    params: Tree, mb: ModelBatch, y: torch.Tensor | None = None, token_flatten: bool = False
) -> dict[str, dict[str, torch.Tensor]]:
    """Module name -> statistics in the layouts of the module docstring."""
    out = {}
    for layer in collect(params, mb, y):
        stats = layer.stats
        if token_flatten and kind(layer.module) == "linear" and stats["h_bar"].dim() == 3:
            stats = {k: v.reshape(-1, v.shape[-1]) for k, v in stats.items()}
        out[layer.name] = stats
    return out


def layout(module: nn.Module, h, a, s) -> dict[str, torch.Tensor]:
    """The statistics of one layer from its input h, output a and output gradient s."""
    kind_ = kind(module)
    if kind_ == "linear":
        return _linear(module, h, a, s)
    if kind_ == "conv":
        return _conv(module, h, a, s)
    return _norm(module, h, s)


def _augment(h: torch.Tensor, bias: bool) -> torch.Tensor:
    return torch.cat([h, h.new_ones(*h.shape[:-1], 1)], dim=-1) if bias else h


def _linear(module: nn.Linear, h, a, s) -> dict[str, torch.Tensor]:
    B = h.shape[0]
    if h.dim() > 2:
        h, a, s = (t.reshape(B, -1, t.shape[-1]) for t in (h, a, s))
    return {"h_bar": _augment(h, module.bias is not None), "a": a, "s": s}


def _conv(module: nn.Conv2d, h, a, s) -> dict[str, torch.Tensor]:
    if isinstance(module.padding, str) and module.padding != "valid":
        raise ValueError(f"Conv2d padding={module.padding!r} is not supported; use integers")
    if module.padding_mode != "zeros":
        raise ValueError(f"Conv2d padding_mode={module.padding_mode!r} is not supported")
    B, G = h.shape[0], module.groups

    def per_group(t):
        return t.reshape(B, G, t.shape[1] // G, -1).transpose(2, 3)

    return {"h_bar": _patches(module, h), "a": per_group(a), "s": per_group(s)}


def _patches(module: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
    """The patches of ``F.unfold`` (C_in/G, kh, kw order) per group, (B, G, T, K(+1)), the ones
    column appended with a bias: one strided copy into a (B, G, K(+1), T) buffer, returned
    transposed (F.unfold loops over the samples on CPU)."""
    (ph, pw) = (0, 0) if module.padding == "valid" else module.padding
    (kh, kw), (sh, sw), (dh, dw) = module.kernel_size, module.stride, module.dilation
    h = F.pad(h, (pw, pw, ph, ph)).contiguous()
    B, C, Hp, Wp = h.shape
    G = module.groups
    Ho, Wo = (Hp - dh * (kh - 1) - 1) // sh + 1, (Wp - dw * (kw - 1) - 1) // sw + 1
    sB, sC, sH, sW = h.stride()
    view = h.as_strided((B, G, C // G, kh, kw, Ho, Wo),
                        (sB, C // G * sC, sC, dh * sH, dw * sW, sh * sH, sw * sW))
    K = C // G * kh * kw
    bias = module.bias is not None
    out = h.new_empty(B, G, K + bias, Ho * Wo)
    out[:, :, :K].view(view.shape).copy_(view)
    if bias:
        out[:, :, K] = 1
    return out.transpose(2, 3)


def _norm(module: nn.Module, h, s) -> dict[str, torch.Tensor]:
    B, C = h.shape[0], module.weight.numel()
    if isinstance(module, nn.LayerNorm):
        def positions(t):
            return t.reshape(B, -1, C)
    else:
        axis = _channel_axis(module, h)

        def positions(t):
            return t.movedim(axis, -1).reshape(B, -1, C)

    x_hat = _affine(module, h, torch.ones_like(module.weight))
    return {"h": positions(h), "x_hat": positions(x_hat), "s": positions(s)}


def _affine(module: nn.Module, h: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
    """The layer's own output at scale ``nu`` and shift 0 (nu = 1: x_hat), buffers copied."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is None:
        raise ValueError("eval-mode BatchNorm without running statistics normalizes with the "
                         "batch's own statistics: per-sample quantities are undefined")
    weights = {"weight": nu}
    if module.bias is not None:
        weights["bias"] = torch.zeros_like(module.bias)
    return call(module, weights, h)


def _channel_axis(module: nn.Module, h: torch.Tensor) -> int:
    """The axis the scale nu acts along (1 for torch's channels-first layers; a wrapper may
    normalize channels-last): the one axis where the output at nu = e_0, on a random input,
    is nonzero only at index 0. A single channel: axis 1 (its placement does not matter).
    Probed once per module and input layout (`AXES`)."""
    key = (tuple(h.shape[1:]), h.dtype, h.device)
    axes = AXES.setdefault(module, {})
    if key not in axes:
        axes[key] = _probe_axis(module, h)
    return axes[key]


AXES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
"""module -> {(input shape without the batch, dtype, device): channel axis}."""


def _probe_axis(module: nn.Module, h: torch.Tensor) -> int:
    C = module.weight.numel()
    if C == 1:
        return 1
    probe = torch.zeros_like(module.weight).reshape(-1)
    probe[0] = 1
    g = torch.Generator(device=h.device).manual_seed(0)
    r = torch.randn(h.shape, generator=g, dtype=h.dtype, device=h.device)
    out = _affine(module, r, probe.reshape(module.weight.shape))
    for axis in range(1, h.dim()):
        if (h.shape[axis] == C and bool(out.narrow(axis, 0, 1).ne(0).any())
                and not bool(out.narrow(axis, 1, C - 1).ne(0).any())):
            return axis
    return 1


def grads_from_stats(layer: Layer) -> Iterator[tuple[str, torch.Tensor]]:
    """(parameter name, per-sample gradient (B, *shape)) of each parameter of ``layer``."""
    module, st = layer.module, layer.stats
    kind_ = kind(module)
    if kind_ == "norm":
        g_nu = torch.einsum("ntc,ntc->nc", st["s"], st["x_hat"])
        for local, g in (("weight", g_nu), ("bias", st["s"].sum(1))):
            p = getattr(module, local)
            if p is not None:
                yield layer.param(local), g.reshape(g.shape[0], *p.shape)
        return
    yield from split_augmented(layer, per_sample_weight_grads(kind_, st))


def split_augmented(layer: Layer | Record, G: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, block) of the weight (..., *weight.shape) and the bias (..., out) of ``layer``
    from its augmented-weight blocks G (..., out, K(+1)), [W | b] with W viewed as (out, K)."""
    weight = layer.module.weight
    K = weight[0].numel()
    yield layer.param("weight"), G[..., :K].reshape(*G.shape[:-2], *weight.shape)
    if layer.module.bias is not None:
        yield layer.param("bias"), G[..., K]


def per_sample_weight_grads(kind_: str, st: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample gradients of the augmented weight [W | b]: s h_bar^T (Linear),
    sum_t s_t h_bar_t^T (tokens), per group for conv (B, C_out, K(+1)), groups stacked."""
    s, h_bar = st["s"], st["h_bar"]
    if kind_ == "linear" and h_bar.dim() == 2:
        return s.unsqueeze(2) * h_bar.unsqueeze(1)
    B, T = s.shape[0], s.shape[-2]
    G = torch.bmm(s.reshape(-1, T, s.shape[-1]).transpose(1, 2),
                  h_bar.reshape(-1, T, h_bar.shape[-1]))  # (B G, out/G, K(+1))
    return G.reshape(B, -1, G.shape[-1])
