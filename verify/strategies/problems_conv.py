"""Builder-option strategies of the convolutional problems (prob:cnn, prob:deep_linear, prob:W8,
prob:synth_images, prob:W2) and the conv geometry cases of est:im2col.

Small sizes keep the dense Hessians, Jacobians and Fishers of the problem cross-check cheap:
prob:cnn draws one or two conv layers (kernel, stride, padding, dilation, groups, bias), each
optionally followed by a BatchNorm (``bn_mode`` train or eval), activations, an optional
average pooling, flatten and a linear head on images of at most 2 x 5 x 5 (P <= ~250).
prob:W8 has its fixed architecture (P = 4,794): few samples. prob:W2 at width 1/4 (channels
4/8/8) on 6x6 or 8x8 images (P <= 1,039): at widths 1/8 and 1/16 (two or one channels a
stage) train-mode BatchNorm often makes leaves small by cancellation (a one-channel stage is
scale-invariant under the next norm; a dead relu channel leaves the next 1x1 conv a gradient
of size eps), whose float32 rounding exceeds the per-leaf tolerance of the cross-check.

Train-mode BatchNorm cases avoid leaves that vanish identically, where both layers return
rounding noise and a relative comparison means nothing (as prob:normnet's strategy): the conv
before the norm has no bias (the batch statistics cancel it), the activation after it is not
the identity (an average pooling of x_hat over one sample's positions is 0 when B = 1), and
every norm sees at least 3 positions per sample (over 2 values x_hat = ±1 up to eps and the
gradient before the norm is O(eps)).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from contract.specs.convolutional import BatchNorm2d, parse_layers

_REDUCTION = st.sampled_from(["mean", "sum"])
_ACT_NAMES = ("tanh", "relu", "sigmoid", "identity")
_ACT = st.sampled_from(_ACT_NAMES)


def conv_geometry() -> st.SearchStrategy[dict[str, Any]]:
    """One convolution's options (int or pair each), with groups and bias."""
    pairs = lambda lo, hi: st.one_of(  # noqa: E731
        st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(list))
    return st.fixed_dictionaries({
        "kernel_size": pairs(1, 3), "stride": pairs(1, 2), "padding": pairs(0, 2),
        "dilation": pairs(1, 2), "groups": st.sampled_from([1, 2]), "bias": st.booleans(),
    })


def _conv() -> st.SearchStrategy[dict[str, Any]]:
    """A conv layer with 2 output channels (divisible by either groups value)."""
    return conv_geometry().map(lambda g: {"type": "conv", "out_channels": 2, **g})


@st.composite
def _stage(draw, bn_mode: str) -> list[dict[str, Any]]:
    """conv [-> batchnorm] -> act (train-mode norm: no conv bias, no identity after it)."""
    conv = draw(_conv())
    if not draw(st.booleans()):
        return [conv, {"type": "act", "name": draw(_ACT)}]
    train = bn_mode == "train"
    acts = [a for a in _ACT_NAMES if not (train and a == "identity")]
    return [{**conv, "bias": conv["bias"] and not train}, {"type": "batchnorm"},
            {"type": "act", "name": draw(st.sampled_from(acts))}]


@st.composite
def _architecture(draw) -> dict[str, Any]:
    in_shape = [draw(st.sampled_from([1, 2])), draw(st.integers(3, 5)), draw(st.integers(3, 5))]
    bn_mode = draw(st.sampled_from(["train", "eval"]))
    layers = draw(_stage(bn_mode))
    if draw(st.booleans()):
        layers += draw(_stage(bn_mode))
    if draw(st.booleans()):
        layers.append({"type": "avgpool", "kernel_size": draw(st.integers(1, 2))})
    layers += [{"type": "flatten"},
               {"type": "linear", "out_features": draw(st.integers(2, 3)),
                "bias": draw(st.booleans())}]
    return {"in_shape": in_shape, "layers": layers, "bn_mode": bn_mode}


def _valid(arch: dict[str, Any]) -> bool:
    """The architecture fits its input (groups divide the channels, outputs non-empty) and
    every train-mode BatchNorm sees at least 3 positions per sample."""
    try:
        parsed = parse_layers(arch["layers"], arch["in_shape"])
    except ValueError:
        return False
    return arch["bn_mode"] == "eval" or all(
        layer.out_shape[1] * layer.out_shape[2] >= 3 for layer in parsed
        if isinstance(layer, BatchNorm2d))


def _with_data(arch: dict[str, Any], loss: str, reduction: str, l2: float, n: int):
    return {**arch, "n_samples": n, "loss": loss, "reduction": reduction, "l2": l2}


PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "prob:cnn": st.builds(
        _with_data, _architecture().filter(_valid), st.sampled_from(["ce", "mse", "mse_half"]),
        _REDUCTION, st.sampled_from([0.0, 0.1]), st.integers(1, 4)),
    "prob:deep_linear": st.fixed_dictionaries({
        "n_samples": st.integers(1, 8),
        "widths": st.lists(st.integers(1, 4), min_size=2, max_size=4),
        "loss": st.sampled_from(["mse", "mse_half"]),
        "bias": st.booleans(),
        "reduction": _REDUCTION,
        "l2": st.sampled_from([0.0, 0.1]),
    }),
    "prob:W8": st.fixed_dictionaries({
        "n_samples": st.integers(1, 2),
        "activation": st.sampled_from(["relu", "tanh"]),
        "reduction": _REDUCTION,
    }),
    "prob:synth_images": st.fixed_dictionaries({
        "n_samples": st.integers(1, 4),
        "classes": st.integers(2, 3),
        "size": st.integers(4, 8),
        "split": st.sampled_from(["train", "test"]),
        "family": st.sampled_from(["A", "B"]),
        "activation": _ACT,
        "reduction": _REDUCTION,
    }),
    "prob:W2": st.fixed_dictionaries({
        "n_samples": st.integers(1, 3),
        "width": st.just(1 / 4),
        "variant": st.sampled_from(["plain", "dw"]),
        "bn_mode": st.sampled_from(["train", "eval"]),
        "classes": st.integers(2, 3),
        "size": st.sampled_from([6, 8]),
        "split": st.sampled_from(["train", "test"]),
        "activation": st.sampled_from(["relu", "tanh"]),
        "reduction": _REDUCTION,
        "l2": st.sampled_from([0.0, 0.1]),
    }),
}
