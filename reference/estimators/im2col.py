"""Conv patch matrices by index arithmetic (INVENTORY est:im2col, §5 item 4), NumPy.

`patch_index` lists, for every group g, output position t and patch entry k = (c, a, b), the
flat input index c_in H W + row W + col it reads, or C H W (a zero slot appended to the
flattened input) where the dilated, strided kernel reads padding. `patches` gathers with it;
`col2im` is its transpose (a scatter-add: the input gradient of a convolution). Both act on
the last three axes, so leading axes (samples, directions, labels) ride along.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.sparse import csr_matrix

from contract import Estimator
from contract.specs.convolutional import IM2COL, Conv2d, geometry
from reference.estimators.registry import REGISTRY


@lru_cache(maxsize=64)
def patch_index(conv: Conv2d) -> np.ndarray:
    """Flat input indices (G, T, C_g kh kw), zero slot C H W for padding."""
    C, H, W = conv.in_shape
    G, (kh, kw), (Ho, Wo) = conv.groups, conv.kernel_size, conv.out_hw
    Cg = C // G
    # row = i s_h - p_h + a d_h (output row i, kernel row a); likewise col
    rows = (np.arange(Ho)[:, None] * conv.stride[0] - conv.padding[0]
            + np.arange(kh)[None, :] * conv.dilation[0])  # (Ho, kh)
    cols = (np.arange(Wo)[:, None] * conv.stride[1] - conv.padding[1]
            + np.arange(kw)[None, :] * conv.dilation[1])  # (Wo, kw)
    r = rows[:, None, None, :, None]  # (Ho, 1, 1, kh, 1) against (Ho, Wo, Cg, kh, kw)
    c = cols[None, :, None, None, :]  # (1, Wo, 1, 1, kw)
    inside = (r >= 0) & (r < H) & (c >= 0) & (c < W)
    channel = (np.arange(G)[:, None] * Cg + np.arange(Cg)[None, :])[:, None, None, :, None, None]
    flat = np.where(inside, channel * (H * W) + r * W + c, C * H * W)  # (G, Ho, Wo, Cg, kh, kw)
    index = flat.reshape(G, Ho * Wo, Cg * kh * kw)
    index.setflags(write=False)
    return index


def patches(x: np.ndarray, conv: Conv2d, bias: bool | None = None) -> np.ndarray:
    """[[h_bar]] (..., G, T, C_g kh kw (+1)) of inputs (..., C, H, W); a ones column when
    ``bias`` (default ``conv.bias``)."""
    flat = x.reshape(*x.shape[:-3], -1)
    padded = np.concatenate([flat, np.zeros_like(flat[..., :1])], axis=-1)
    P = padded[..., patch_index(conv)]
    if conv.bias if bias is None else bias:
        P = np.concatenate([P, np.ones_like(P[..., :1])], axis=-1)
    return P


@lru_cache(maxsize=64)
def _scatter(conv: Conv2d) -> csr_matrix:
    """S (G T K, C H W + 1) with patches = S @ [x; 0]: one 1 per row."""
    index = patch_index(conv).reshape(-1)
    C, H, W = conv.in_shape
    return csr_matrix((np.ones(index.size), (np.arange(index.size), index)),
                      shape=(index.size, C * H * W + 1))


def col2im(v: np.ndarray, conv: Conv2d) -> np.ndarray:
    """The transpose of `patches` without the bias column: v (..., G, T, C_g kh kw) ->
    (..., C, H, W), every patch entry added back to the pixel it was read from."""
    lead = v.shape[:-3]
    S = _scatter(conv)
    summed = (S.T @ v.reshape(-1, S.shape[0]).T).T  # (prod(lead), C H W + 1)
    return summed[:, :-1].reshape(*lead, *conv.in_shape)


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, bias=True):
    # doc: contract.specs.convolutional.IM2COL_DOC
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
        raise ValueError("x must be a finite floating-point array")
    conv = geometry(x.shape, kernel_size, stride, padding, dilation, groups, bias)
    P = patches(x.astype(np.float64), conv)
    return P[:, 0] if conv.groups == 1 else P


im2col.__doc__ = IM2COL.doc
REGISTRY.register("est:im2col", Estimator("est:im2col", im2col, IM2COL.options, IM2COL.doc))
