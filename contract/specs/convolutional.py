"""Convolutional geometry and architectures both layers share (INVENTORY §1.2 prob:cnn, §1.3
prob:W8, §3.1 est:im2col, §5 item 4); pure Python.

- `Conv2d`, `AvgPool2d`, `Activation`, `Flatten`, `Linear`, `BatchNorm2d`: one parsed layer
  each, with its input and output shapes; `parse_layers` checks an architecture (a list of
  plain dicts, the form ``spec()`` carries) against an input shape (C, H, W) and returns the
  parsed layers. The layers are ``torch.nn.Sequential`` entries in that order, so parameter
  names are ``f"{index}.weight"`` and ``f"{index}.bias"`` (BatchNorm2d: the scale nu and the
  shift beta). A ``gap`` entry (global average pooling) parses to the `AvgPool2d` whose
  kernel and stride are the whole input (H, W): (C, H, W) -> (C, 1, 1).
- `PRESETS`: named architectures; ``two_conv_two_linear`` is prob:W8's
  conv3x3(C->4, pad 1)-act -> conv3x3(4->8, stride 2, pad 1)-act -> flatten -> Linear(->32)-act
  -> Linear(->classes). The INVENTORY prints no padding for the second conv, but its flatten
  width 128 = 8 x 4 x 4 on 8x8 inputs needs padding 1 there (without it, 8 x 3 x 3 = 72).
- `w2_layers`: prob:W2's architecture (INVENTORY §1.3), with a width multiplier and the
  depthwise-separable variant; also the preset ``w2``.
- `IM2COL`: the options and doc of ``est:im2col``, and `geometry`, its input check.

Output size of a convolution or pooling along one axis (torch's formula, floor mode):
``out = (size + 2 padding - dilation (kernel - 1) - 1) // stride + 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contract.specs.estimators import EstimatorSpec
from contract.validate import boolean, choice, integer, positive

__all__ = [
    "ACTIVATIONS",
    "IM2COL",
    "PRESETS",
    "Activation",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "Flatten",
    "Linear",
    "geometry",
    "parse_layers",
    "preset",
    "w2_layers",
]

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
KINDS = ("conv", "act", "avgpool", "flatten", "linear", "batchnorm", "gap")
W2_VARIANTS = ("plain", "dw")
Pair = tuple[int, int]


def pair(name: str, value: Any, low: int) -> Pair:
    """An integer or a pair of integers >= ``low`` as a pair (torch's ``_pair``)."""
    values = tuple(value) if isinstance(value, Sequence) else (value, value)
    if len(values) != 2:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer or a pair of integers)")
    return integer(name, values[0], low), integer(name, values[1], low)


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class Conv2d:
    """``nn.Conv2d``: weight (C_out, C_in/groups, kh, kw), bias (C_out,)."""

    in_shape: tuple[int, int, int]
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    @property
    def out_hw(self) -> Pair:
        return tuple(out_size(n, *args) for n, *args in zip(
            self.in_shape[1:], self.kernel_size, self.stride, self.padding, self.dilation,
            strict=True))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.out_channels, *self.out_hw)

    @property
    def fan_in(self) -> int:
        """C_in/groups * kh * kw: the patch length without the bias column."""
        return self.in_shape[0] // self.groups * self.kernel_size[0] * self.kernel_size[1]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        weight = (self.out_channels, self.in_shape[0] // self.groups, *self.kernel_size)
        return (weight, (self.out_channels,)) if self.bias else (weight,)


@dataclass(frozen=True)
class AvgPool2d:
    """``nn.AvgPool2d(kernel_size, stride)`` (no padding, floor mode)."""

    in_shape: tuple[int, int, int]
    kernel_size: Pair
    stride: Pair

    @property
    def out_shape(self) -> tuple[int, ...]:
        hw = (out_size(n, k, s, 0, 1) for n, k, s in zip(
            self.in_shape[1:], self.kernel_size, self.stride, strict=True))
        return (self.in_shape[0], *hw)


@dataclass(frozen=True)
class Activation:
    in_shape: tuple[int, ...]
    name: str

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.in_shape


@dataclass(frozen=True)
class Flatten:
    """``nn.Flatten()``: (C, H, W) -> (C H W,) in row-major order."""

    in_shape: tuple[int, ...]

    @property
    def out_shape(self) -> tuple[int, ...]:
        size = 1
        for n in self.in_shape:
            size *= n
        return (size,)


@dataclass(frozen=True)
class Linear:
    """``nn.Linear``: weight (out, in), bias (out,)."""

    in_shape: tuple[int]
    out_features: int
    bias: bool = True

    @property
    def fan_in(self) -> int:
        return self.in_shape[0]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.out_features,)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        weight = (self.out_features, self.in_shape[0])
        return (weight, (self.out_features,)) if self.bias else (weight,)


@dataclass(frozen=True)
class BatchNorm2d:
    """``nn.BatchNorm2d(C, eps)``: y = nu ⊙ (h - mu) / sqrt(var + eps) + beta per channel, the
    statistics over batch x H x W (train mode) or held running ones (eval mode); scale nu
    ("weight", (C,)) and shift beta ("bias", (C,)). As a parametrised layer it is the
    per-channel affine map theta = [nu | beta] (C, 2) of h_bar = [x_hat, 1]: fan_in 1, bias."""

    in_shape: tuple[int, int, int]
    eps: float = 1e-5

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def out_channels(self) -> int:
        return self.in_shape[0]

    @property
    def fan_in(self) -> int:
        return 1

    @property
    def bias(self) -> bool:
        return True

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.in_shape[0],), (self.in_shape[0],)


Layer = Conv2d | AvgPool2d | Activation | Flatten | Linear | BatchNorm2d


def parse_layers(layers: Sequence[Mapping[str, Any]], in_shape: Sequence[int]
                 ) -> tuple[Layer, ...]:
    """The parsed layers of an architecture on inputs of shape ``in_shape`` = (C, H, W).

    Each entry is a dict with ``"type"`` in {conv, act, avgpool, flatten, linear, batchnorm,
    gap} and the keyword arguments of the torch module: conv ``out_channels, kernel_size,
    stride=1, padding=0, dilation=1, groups=1, bias=True``; act ``name``; avgpool
    ``kernel_size, stride=kernel_size``; linear ``out_features, bias=True``; batchnorm
    ``eps=1e-5``; gap none (an avgpool over the whole input). conv, avgpool, batchnorm and gap
    need an image (C, H, W) input with a non-empty output, linear a flat one; the network's
    output must be flat (the logits or regression outputs z).
    """
    shape = tuple(integer("in_shape", n, 1) for n in in_shape)
    if len(shape) != 3:
        raise ValueError(f"Invalid in_shape: {in_shape!r} (must be (C, H, W))")
    parsed = []
    for i, entry in enumerate(layers):
        layer = _parse(dict(entry), shape, f"layers[{i}]")
        parsed.append(layer)
        shape = layer.out_shape
        if min(shape) < 1:
            raise ValueError(f"layers[{i}] ({entry!r}) has an empty output {shape}")
    if len(shape) != 1:
        raise ValueError(f"the network output must be flat (end with flatten/linear), got {shape}")
    return tuple(parsed)


def _parse(entry: dict[str, Any], shape: tuple[int, ...], where: str) -> Layer:
    kind = choice(f"{where}['type']", entry.pop("type", None), KINDS)
    image = len(shape) == 3
    if kind in ("conv", "avgpool", "batchnorm", "gap") and not image:
        raise ValueError(f"{where}: {kind} needs a (C, H, W) input, got {shape}")
    if kind == "linear" and image:
        raise ValueError(f"{where}: linear needs a flat input (flatten first), got {shape}")
    try:
        if kind == "conv":
            return _conv(shape, **entry)
        if kind == "avgpool":
            kernel = pair("kernel_size", entry.pop("kernel_size"), 1)
            stride = pair("stride", entry.pop("stride", None) or kernel, 1)
            _no_more(entry)
            return AvgPool2d(shape, kernel, stride)
        if kind == "gap":
            _no_more(entry)
            return AvgPool2d(shape, shape[1:], shape[1:])
        if kind == "batchnorm":
            eps = positive("eps", entry.pop("eps", 1e-5), say_finite=True)
            _no_more(entry)
            return BatchNorm2d(shape, eps)
        if kind == "act":
            name = choice("name", entry.pop("name"), ACTIVATIONS)
            _no_more(entry)
            return Activation(shape, name)
        if kind == "flatten":
            _no_more(entry)
            return Flatten(shape)
        out = integer("out_features", entry.pop("out_features"), 1)
        bias = boolean("bias", entry.pop("bias", True))
        _no_more(entry)
        return Linear(shape, out, bias)
    except KeyError as missing:
        raise ValueError(f"{where} ({kind}) needs {missing}") from None


def _conv(shape, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
          bias=True) -> Conv2d:
    out_channels = integer("out_channels", out_channels, 1)
    groups = integer("groups", groups, 1)
    if shape[0] % groups or out_channels % groups:
        raise ValueError(f"Invalid groups: {groups} (must divide in_channels = {shape[0]} and "
                         f"out_channels = {out_channels})")
    return Conv2d(shape, out_channels, pair("kernel_size", kernel_size, 1),
                  pair("stride", stride, 1), pair("padding", padding, 0),
                  pair("dilation", dilation, 1), groups, boolean("bias", bias))


def _no_more(entry: dict[str, Any]) -> None:
    if entry:
        raise ValueError(f"unknown layer options {sorted(entry)}")


def canonical(layer: Layer) -> dict[str, Any]:
    """The plain-dict form of a parsed layer (every option spelled out): `parse_layers` of it
    gives the layer back."""
    if isinstance(layer, Conv2d):
        return {"type": "conv", "out_channels": layer.out_channels,
                "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
                "padding": list(layer.padding), "dilation": list(layer.dilation),
                "groups": layer.groups, "bias": layer.bias}
    if isinstance(layer, AvgPool2d):
        return {"type": "avgpool", "kernel_size": list(layer.kernel_size),
                "stride": list(layer.stride)}
    if isinstance(layer, Activation):
        return {"type": "act", "name": layer.name}
    if isinstance(layer, Flatten):
        return {"type": "flatten"}
    if isinstance(layer, BatchNorm2d):
        return {"type": "batchnorm", "eps": layer.eps}
    return {"type": "linear", "out_features": layer.out_features, "bias": layer.bias}


def _small(classes: int, activation: str, bias: bool) -> list[dict[str, Any]]:
    return [{"type": "conv", "out_channels": 3, "kernel_size": 3, "padding": 1, "bias": bias},
            {"type": "act", "name": activation}, {"type": "avgpool", "kernel_size": 2},
            {"type": "flatten"}, {"type": "linear", "out_features": classes, "bias": bias}]


def _two_conv_two_linear(classes: int, activation: str, bias: bool) -> list[dict[str, Any]]:
    act = {"type": "act", "name": activation}
    return [{"type": "conv", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": bias},
            act,
            {"type": "conv", "out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1,
             "bias": bias},
            act, {"type": "flatten"}, {"type": "linear", "out_features": 32, "bias": bias},
            act, {"type": "linear", "out_features": classes, "bias": bias}]


def _small_cnn(classes: int, activation: str, bias: bool) -> list[dict[str, Any]]:
    """prob:synth_images: conv3x3(->4, pad 1)-act-avgpool2 -> conv3x3(4->8, s2, pad 1)-act
    -> flatten -> Linear(->classes)."""
    act = {"type": "act", "name": activation}
    return [{"type": "conv", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": bias},
            act, {"type": "avgpool", "kernel_size": 2},
            {"type": "conv", "out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1,
             "bias": bias},
            act, {"type": "flatten"}, {"type": "linear", "out_features": classes, "bias": bias}]


def w2_layers(classes: int = 10, activation: str = "relu", bias: bool = False,
              width: float = 1.0, variant: str = "plain") -> list[dict[str, Any]]:
    """prob:W2 (INVENTORY §1.3): conv3x3(C->c1, pad 1)-BN-act -> stage(c1->c2, stride 2) ->
    stage(c2->c2, stride 2) -> gap -> flatten -> Linear(c2->classes) with c1 = max(1,
    round(16 width)), c2 = max(1, round(32 width)) (width 1/8: 2 and 4 channels).

    A stage is conv3x3(pad 1, stride 2)-BN-act (``variant="plain"``), or the MobileNet-v1
    depthwise-separable block (``"dw"``): depthwise conv3x3(C_in->C_in, groups C_in, pad 1,
    stride 2)-BN-act -> pointwise conv1x1(C_in->C_out)-BN-act. ``bias``: the convs' biases
    (default off: a bias before a BatchNorm is cancelled by its statistics in train mode);
    the head always has one. Full size, 3 input channels, 10 classes: 14,746 parameters
    (plain), 2,986 (dw). The ResNet-like ``W2-res`` is not a Sequential: not implemented.
    """
    if variant == "res":
        raise ValueError("Invalid variant: 'res' (W2-res, ResNet-8-like with skip connections, "
                         f"is not a Sequential and is not implemented); allowed: {W2_VARIANTS}")
    choice("variant", variant, W2_VARIANTS)
    width = positive("width", width, say_finite=True)
    c1, c2 = (max(1, round(n * width)) for n in (16, 32))
    act = {"type": "act", "name": choice("activation", activation, ACTIVATIONS)}

    def block(out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[dict[str, Any]]:
        return [{"type": "conv", "out_channels": out, "kernel_size": kernel, "stride": stride,
                 "padding": kernel // 2, "groups": groups, "bias": bias},
                {"type": "batchnorm"}, act]

    def stage(c_in: int, c_out: int) -> list[dict[str, Any]]:
        if variant == "plain":
            return block(c_out, 3, 2)
        return block(c_in, 3, 2, groups=c_in) + block(c_out, 1)

    return [*block(c1, 3), *stage(c1, c2), *stage(c2, c2), {"type": "gap"},
            {"type": "flatten"}, {"type": "linear", "out_features": classes}]


PRESETS = {"small": _small, "two_conv_two_linear": _two_conv_two_linear,
           "small_cnn": _small_cnn, "w2": w2_layers}


def preset(name: str, classes: int, activation: str = "relu", bias: bool = True
           ) -> list[dict[str, Any]]:
    """The layer list of a named architecture with ``classes`` outputs (``w2``: `w2_layers`
    at width 1, plain, ``bias`` for its convs)."""
    choice("preset", name, tuple(PRESETS))
    return PRESETS[name](classes, choice("activation", activation, ACTIVATIONS), bias)


# --- est:im2col -------------------------------------------------------------------------------

IM2COL_DOC = """Conv patch matrices [[h_bar]] of an input batch x (N, C_in, H, W) (INVENTORY
    est:im2col, §5 item 4).

    For every sample n, output position t = (i, j) (row-major over (H_out, W_out)) and group
    g, the patch is x[n, g C_g + c, i s_h - p_h + a d_h, j s_w - p_w + b d_w] over
    (c, a, b) in (C_g = C_in/groups, kh, kw), in that row-major order (``weight.view(C_out,
    -1)``; zero outside the image), followed by a 1 when ``bias``. Shape (N, T, C_g kh kw
    (+1)) for groups = 1 and (N, groups, T, C_g kh kw (+1)) for groups > 1; T = H_out W_out.
    No scaling: a convolution is a[n, g, t] = W_g [[h_bar]][n, g, t] with W_g the group's
    rows of [weight.view(C_out, -1) | bias]. Equals ``torch.nn.functional.unfold`` (then the
    group split and the ones column) exactly.

    Options: stride, padding (zeros), dilation (ints or pairs), groups (divides C_in), bias.
    """

IM2COL = EstimatorSpec({"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
                       IM2COL_DOC)


def geometry(x_shape: Sequence[int], kernel_size: Any, stride: Any, padding: Any, dilation: Any,
             groups: Any, bias: Any) -> Conv2d:
    """The checked convolution behind an ``est:im2col`` call on x of shape (N, C, H, W); its
    out_channels is a placeholder (groups)."""
    if len(x_shape) != 4 or 0 in tuple(x_shape):
        raise ValueError(f"x must have shape (N, C_in, H, W) with N, C_in, H, W >= 1, "
                         f"got {tuple(x_shape)}")
    groups = integer("groups", groups, 1)
    if x_shape[1] % groups:
        raise ValueError(f"Invalid groups: {groups} (must divide C_in = {x_shape[1]})")
    conv = _conv(tuple(x_shape[1:]), groups, kernel_size, stride, padding, dilation, groups,
                 bias)
    if min(conv.out_hw) < 1:
        raise ValueError(f"the kernel (dilated) does not fit the padded input: output size "
                         f"{conv.out_hw} for x {tuple(x_shape)}")
    return conv
