"""Conv patch matrices by tensor ops (INVENTORY est:im2col, §5 item 4), torch.

`patches` zero-pads the input, takes sliding windows of the dilated kernel span with
``Tensor.unfold`` (a strided view), keeps every dilation-th entry of each window and orders
the axes (groups, positions, (c, kh, kw)); it acts on the last three axes, so it runs under
``vmap`` and with leading axes. ``F.unfold`` is not used here: it is the test oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contract import Estimator
from contract.specs.convolutional import IM2COL, Conv2d, geometry
from torchimpl.estimators.registry import REGISTRY


def patches(x: torch.Tensor, conv: Conv2d, bias: bool | None = None) -> torch.Tensor:
    """[[h_bar]] (..., G, T, C_g kh kw (+1)) of inputs (..., C, H, W); a ones column when
    ``bias`` (default ``conv.bias``)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (conv.kernel_size, conv.stride, conv.padding,
                                              conv.dilation)
    C, G = conv.in_shape[0], conv.groups
    lead = x.shape[:-3]
    padded = F.pad(x, (pw, pw, ph, ph))
    windows = padded.unfold(-2, dh * (kh - 1) + 1, sh).unfold(-2, dw * (kw - 1) + 1, sw)
    kernel = windows[..., ::dh, ::dw]  # (..., C, Ho, Wo, kh, kw)
    Ho, Wo = kernel.shape[-4:-2]
    grouped = kernel.reshape(*lead, G, C // G, Ho * Wo, kh * kw).transpose(-3, -2)
    P = grouped.reshape(*lead, G, Ho * Wo, C // G * kh * kw)
    if conv.bias if bias is None else bias:
        P = torch.cat([P, torch.ones_like(P[..., :1])], dim=-1)
    return P


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, bias=True):
    # doc: contract.specs.convolutional.IM2COL_DOC
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x must be a finite floating-point array")
    conv = geometry(tuple(x.shape), kernel_size, stride, padding, dilation, groups, bias)
    P = patches(x, conv)
    return P[:, 0] if conv.groups == 1 else P


im2col.__doc__ = IM2COL.doc
REGISTRY.register("est:im2col", Estimator("est:im2col", im2col, IM2COL.options, IM2COL.doc))
