"""Convolutional networks with exact oracles (INVENTORY §1.2 prob:cnn, prob:deep_linear,
prob:synth_images; §1.3 prob:W8, prob:W2), NumPy.

`ConvNet` is a ``torch.nn.Sequential`` of Conv2d, activation, AvgPool2d (global average
pooling included), Flatten, Linear and BatchNorm2d layers
(`contract.specs.convolutional.parse_layers`) on images X (N, C, H, W); parameter names
"0.weight", "0.bias", ... by module index. It is a `FeedForward` whose layers are generalised:
the losses, likelihoods, label sampling, Jacobians, GGN, Fishers and the other methods of the
oracle interface built on them are `reference.problems.network`'s, with its conventions
(per-sample loss l_n = nll(z_n, y_n) + (l2/2)||theta||^2, mean or sum reduction, Hessian/GGN/Fishers
with the same scale; losses ce, mse, mse_half). Everything is computed by hand:

- a conv layer is a linear map of its patches (`reference.estimators.im2col`): for group g,
  a_g[t] = theta_g [[h_bar]]_t with theta = [weight.view(C_out, -1) | bias] (C_out,
  C_in/G kh kw + 1) split into G row blocks (002 §2.1.4 with h_bar per position); its
  per-sample weight gradient is sum_t s_t [[h_bar]]_t^T per group, and its input gradient the
  transpose of the patch gather (col2im) of theta_g^T s_t. Average pooling is the depthwise
  conv with weights 1/(kh kw); flatten a reshape;
- BatchNorm2d: x_hat = (h - mu) / sqrt(var + eps) per channel, y = nu ⊙ x_hat + beta; mu and
  the biased var over batch x H x W (``bn_mode="train"``) or the problem's running statistics
  (``"eval"``); as a parametrised layer theta = [nu | beta] (C, 2), per-sample gradient
  [sum_x x_hat_x ⊙ s_x, sum_x s_x] over the positions x (002 Prop. A.0.1 (b));
- Hessian-vector products by complex-step differentiation of the hand-written gradient:
  H v = Im(grad(theta + i h v)) / h with h = 1e-30. Every operation on the way is complex
  analytic (the relu mask comes from the real part, the softmax shift is the real maximum,
  tanh and sigmoid are evaluated as complex tanh), so the result has no truncation error
  (O(h^2) ~ 1e-60) and no cancellation: it is exact to rounding. The dense Hessian applies
  it to every unit direction, in chunks, and is symmetrised.

layer_stats, per parametrised layer in module order: Linear {"h_bar" (B, in(+1)), "a" (B,
out), "s" (B, out)} as prob:mlp; Conv2d {"h_bar" (B, G, T, C_in/G kh kw (+1)), "a" (B, G, T,
C_out/G), "s" (B, G, T, C_out/G)} with T = H_out W_out row-major, s = dl_n/da of the
per-sample loss; BatchNorm2d {"h" (B, T, C) the pre-normalisation input, "x_hat" (B, T, C),
"s" (B, T, C) at its output} with T = H W row-major, as prob:normnet's norm layer.

Train-mode BatchNorm couples the samples of a batch; the conventions are prob:normnet's
(`reference.problems.normalization`): per-sample gradients and both Fishers raise
`PerSampleUndefinedError`; the loss, gradient and Hessian are those of the batch loss; J_n =
dz_n/dtheta of the batch function (the other samples' data fixed) and the GGN built from it;
layer_stats' ``s`` is d(sum_m l_m)/d(output of sample n). Eval mode is per-sample separable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.specs.convolutional import (
    Activation,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Linear,
    canonical,
    parse_layers,
    preset,
    w2_layers,
)
from reference.estimators.im2col import col2im, patches
from reference.problems.datasets import batch_rows, gmm
from reference.problems.images import digit_images, synth_images
from reference.problems.network import (
    REDUCTIONS,
    FeedForward,
    _augment,
    _choice,
    _labels,
)
from reference.problems.normalization import BN_MODES, PerSampleUndefinedError, _running
from reference.problems.registry import REGISTRY
from reference.tree import Tree

LOSSES = ("ce", "mse", "mse_half")
STEP = 1e-30  # the complex step h
# Directions x (entries held per direction): the size of the complex-step arrays at once.
_CHUNK_ENTRIES = 2**22


@dataclass(frozen=True)
class _Record:
    """One module's forward quantities: ``a`` its output (..., B, *out_shape) (for Linear and
    Conv2d the pre-activation), ``h_bar`` the input of a parametrised layer (augmented for
    Linear, its patches for Conv2d, plain for BatchNorm2d), ``dphi`` phi'(input) of an
    activation, ``x_hat`` and ``sigma`` = sqrt(var + eps) (broadcastable) of a BatchNorm2d."""

    a: np.ndarray
    h_bar: np.ndarray | None = None
    dphi: np.ndarray | None = None
    x_hat: np.ndarray | None = None
    sigma: np.ndarray | None = None


class ConvNet(FeedForward):
    """A ``torch.nn.Sequential`` CNN on images X (N, C, H, W), labels y; see the module doc."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        layers: Sequence[Mapping[str, Any]],
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        id: str = "prob:cnn",
        bn_mode: str = "train",
        running_mean: np.ndarray | None = None,
        running_var: np.ndarray | None = None,
    ) -> None:
        """``bn_mode`` in {train, eval}: the statistics of every BatchNorm2d layer; eval mode
        needs ``running_mean`` and ``running_var``, the BatchNorm layers' channels
        concatenated in module order (var > 0)."""
        _choice(loss, "loss", LOSSES)
        _choice(reduction, "reduction", REDUCTIONS)
        _choice(bn_mode, "bn_mode", BN_MODES)
        self.X = np.asarray(X, dtype=np.float64)
        if self.X.ndim != 4 or 0 in self.X.shape:
            raise ValueError(f"X must be images (N, C, H, W), all >= 1; got {self.X.shape}")
        if not np.all(np.isfinite(self.X)):
            raise ValueError("X contains non-finite values (NaN or inf)")
        if not (np.isfinite(l2) and l2 >= 0.0):
            raise ValueError(f"Invalid l2 (ridge) coefficient: {l2}; must be finite and >= 0")
        self.layers = parse_layers(layers, self.X.shape[1:])
        self.widths = (int(np.prod(self.X.shape[1:])),
                       *(int(np.prod(layer.out_shape)) for layer in self.layers))
        self.loss_name, self.reduction, self.l2, self.id = loss, reduction, float(l2), id
        self.params_at = [i for i, layer in enumerate(self.layers)
                          if isinstance(layer, Conv2d | Linear | BatchNorm2d)]
        self.bn_mode = bn_mode
        self.running_mean, self.running_var, self._stats = self._running_slices(
            running_mean, running_var)
        self.names = [f"{i}.{kind}" for i in self.params_at
                      for kind in ("weight", "bias")[:len(self.layers[i].shapes)]]
        self.shapes = [shape for i in self.params_at for shape in self.layers[i].shapes]
        self.y = _labels(y, loss, self.X.shape[0], self.widths[-1])

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n_samples: int = 6,
        in_shape: Sequence[int] = (2, 5, 5),
        classes: int = 3,
        layers: Sequence[Mapping[str, Any]] | None = None,
        preset_name: str = "small",
        activation: str = "tanh",
        bias: bool = True,
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        separation: float = 1.0,
        bn_mode: str = "train",
    ) -> ConvNet:
        """Gaussian-mixture images (``datasets.gmm`` in C H W dimensions, reshaped) with
        max(K, 2) classes, K the network's output size: the class for ce, the first K one-hot
        columns for mse/mse_half. ``layers`` default: ``preset(preset_name, classes,
        activation, bias)`` (``two_conv_two_linear`` is prob:W8's architecture). With
        BatchNorm layers, running statistics are drawn after the data (`running_stats`)."""
        layers = preset(preset_name, classes, activation, bias) if layers is None else layers
        parsed = parse_layers(layers, in_shape)
        K = parsed[-1].out_shape[0]
        X, labels = gmm(rng, n_samples, int(np.prod(in_shape)), max(K, 2), separation)
        y = np.eye(max(K, 2))[labels][:, :K] if loss in ("mse", "mse_half") else labels
        return cls(X.reshape(n_samples, *in_shape), y, layers, loss, reduction, l2,
                   "prob:cnn", bn_mode, *running_stats(rng, parsed))

    def spec(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "layers": [canonical(layer) for layer in self.layers],
                "loss": self.loss_name, "reduction": self.reduction, "l2": self.l2,
                "id": self.id, "bn_mode": self.bn_mode, "running_mean": self.running_mean,
                "running_var": self.running_var}

    @property
    def coupled(self) -> bool:
        """True where BatchNorm statistics couple the samples of a batch (train mode)."""
        return self.bn_mode == "train" and bool(self._stats)

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Weights N(0, 1/fan_in) (fan_in = C_in/G kh kw for conv), biases N(0, 0.1^2);
        BatchNorm nu = 1 + N(0, 0.1^2), beta N(0, 0.1^2) (away from torch's 1 and 0)."""
        params = {}
        for name, shape in zip(self.names, self.shapes, strict=True):
            norm = int(name.split(".")[0]) in self._stats
            fan_in = int(np.prod(shape[1:]))
            std = np.sqrt(1.0 / fan_in) if name.endswith("weight") and not norm else 0.1
            params[name] = std * rng.standard_normal(shape)
            if norm and name.endswith("weight"):
                params[name] += 1.0
        return params

    # -- coupled samples (train-mode BatchNorm) ------------------------------------------

    def grad(self, params: Tree, batch=None) -> dict[str, np.ndarray]:
        """scale * (sum_n of the per-sample formulas) + l2 theta (the batch loss's gradient in
        every mode)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        records = self._forward(thetas, rows)
        total = self._grads_from(thetas, records, self._dloss(records[-1].a, self.y[rows]))
        return self._unflat(self._scale(rows.size) * (
            total.sum(axis=-2) + rows.size * self.l2 * self._pack(thetas)))

    def per_sample_grads(self, params: Tree, batch=None, labels=None) -> np.ndarray:
        """g_n = dl_n/dtheta (B, P); raises `PerSampleUndefinedError` for train-mode BN."""
        self._per_sample("per_sample_grads")
        return super().per_sample_grads(params, batch, labels)

    def fisher_true(self, params: Tree, batch=None, mc_samples: int | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
        """`FeedForward.fisher_true`; raises `PerSampleUndefinedError` for train-mode BN."""
        self._per_sample("fisher_true")
        return super().fisher_true(params, batch, mc_samples, rng)

    def fisher_emp(self, params: Tree, batch=None) -> np.ndarray:
        """`FeedForward.fisher_emp`; raises `PerSampleUndefinedError` for train-mode BN."""
        self._per_sample("fisher_emp")
        return super().fisher_emp(params, batch)

    def jac_out(self, params: Tree, batch=None) -> np.ndarray:
        """J_n = dz_n/dtheta (B, K, P); train-mode BN: backprop of every (n, k) pair through
        the batch (the other samples' data fixed)."""
        if not self.coupled:
            return super().jac_out(params, batch)
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        records = self._forward(thetas, rows)
        B, K = rows.size, self.widths[-1]
        s_top = np.eye(B * K).reshape(B, K, B, K)
        return self._grads_from(thetas, records, s_top).sum(axis=-2)

    def _per_sample(self, quantity: str) -> None:
        if self.coupled:
            raise PerSampleUndefinedError(
                f"{self.id}: {quantity} is not defined with train-mode BatchNorm, whose batch "
                "statistics couple the samples (INVENTORY est:per_sample_grads); use "
                "bn_mode='eval'")

    def _running_slices(self, mean, var) -> tuple[Any, Any, dict[int, tuple[np.ndarray, ...]]]:
        """Checked running statistics and, per BatchNorm layer index, its (mean, var) slices
        shaped (C, 1, 1) (empty in train mode without statistics)."""
        at = [i for i, layer in enumerate(self.layers) if isinstance(layer, BatchNorm2d)]
        sizes = [self.layers[i].out_channels for i in at]
        mean, var = _running(mean, var, sum(sizes), self.bn_mode == "eval" and bool(at))
        if mean is None:
            return None, None, dict.fromkeys(at, ())
        cuts = np.cumsum(sizes)[:-1]
        slices = zip(np.split(mean, cuts), np.split(var, cuts), strict=True)
        return mean, var, {i: (m[:, None, None], v[:, None, None])
                           for i, (m, v) in zip(at, slices, strict=True)}

    def layer_stats(self, params: Tree, batch=None) -> list[dict[str, np.ndarray]]:
        """Per parametrised layer: h_bar, a, s, or h, x_hat, s for BatchNorm (module doc); the
        per-sample gradient of a conv layer's theta_g is sum_t s_t h_bar_t^T (+ l2 theta_g),
        of a BatchNorm's nu sum_t x_hat_t ⊙ s_t and of its beta sum_t s_t (train mode: the
        terms whose batch sum is the gradient)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        records = self._forward(thetas, rows)
        ss = self._backward(thetas, records, self._dloss(records[-1].a, self.y[rows]))
        return [self._layer_stats(i, records[i], s)
                for i, s in zip(self.params_at, ss, strict=True)]

    def _layer_stats(self, i: int, record: _Record, s: np.ndarray) -> dict[str, np.ndarray]:
        if isinstance(self.layers[i], BatchNorm2d):
            return {"h": _tokens(record.h_bar), "x_hat": _tokens(record.x_hat),
                    "s": _tokens(s)}
        return {"h_bar": record.h_bar, "a": self._positions(i, record.a),
                "s": self._positions(i, s)}

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        return {}

    def optimum(self) -> None:
        return None

    # -- layers --------------------------------------------------------------------------

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Flat vectors (..., P) -> theta_i = [weight.view(out, -1) | bias] per layer."""
        lead, thetas, start = flat.shape[:-1], [], 0
        for i in self.params_at:
            layer = self.layers[i]
            out, n_in = layer.shapes[0][0], layer.fan_in
            theta = flat[..., start:start + out * n_in].reshape(*lead, out, n_in)
            start += out * n_in
            if layer.bias:
                theta = np.concatenate([theta, flat[..., start:start + out, None]], axis=-1)
                start += out
            thetas.append(theta)
        return thetas

    def _pack(self, thetas: Sequence[np.ndarray]) -> np.ndarray:
        """theta_i (..., out, in(+1)) -> flat (..., P): row-major weight, then bias."""
        parts = []
        for i, theta in zip(self.params_at, thetas, strict=True):
            W = self._weight(i, theta)
            parts.append(W.reshape(*W.shape[:-2], -1))
            if self.layers[i].bias:
                parts.append(theta[..., -1])
        return np.concatenate(parts, axis=-1)

    def _weight(self, i: int, theta: np.ndarray) -> np.ndarray:
        return theta[..., :-1] if self.layers[i].bias else theta

    def _grouped(self, i: int, theta: np.ndarray) -> np.ndarray:
        """A conv theta (..., C_out, K) as (..., G, C_out/G, K)."""
        G = self.layers[i].groups
        return theta.reshape(*theta.shape[:-2], G, theta.shape[-2] // G, theta.shape[-1])

    def _positions(self, i: int, a: np.ndarray) -> np.ndarray:
        """A conv output (..., B, C_out, H_out, W_out) as (..., B, G, T, C_out/G); a Linear
        output unchanged."""
        layer = self.layers[i]
        if isinstance(layer, Linear):
            return a
        G = layer.groups
        a = a.reshape(*a.shape[:-3], G, layer.out_channels // G, -1)
        return np.swapaxes(a, -1, -2)

    def _image(self, i: int, a: np.ndarray) -> np.ndarray:
        """The inverse of `_positions` for a conv layer."""
        return np.swapaxes(a, -1, -2).reshape(*a.shape[:-3], *self.layers[i].out_shape)

    def _forward(self, thetas: Sequence[np.ndarray], rows: np.ndarray) -> list[_Record]:
        """One record per module; thetas may carry leading axes (directions), which the
        records then carry too."""
        records, h, k = [], self.X[rows], 0
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Conv2d):
                h_bar = patches(h, layer)
                a = np.einsum("...gok,...bgtk->...bgto", self._grouped(i, thetas[k]), h_bar)
                records.append(_Record(self._image(i, a), h_bar))
                k += 1
            elif isinstance(layer, Linear):
                h_bar = _augment(h, 1.0) if layer.bias else h
                records.append(_Record(np.einsum("...oj,...bj->...bo", thetas[k], h_bar), h_bar))
                k += 1
            elif isinstance(layer, BatchNorm2d):
                records.append(self._batchnorm(i, thetas[k], h))
                k += 1
            elif isinstance(layer, Activation):
                out, dphi = _phi(layer.name, h)
                records.append(_Record(out, dphi=dphi))
            elif isinstance(layer, AvgPool2d):
                records.append(_Record(patches(h, _depthwise(layer)).mean(axis=-1).reshape(
                    *h.shape[:-3], *layer.out_shape)))
            else:
                records.append(_Record(h.reshape(*h.shape[:-3], -1)))
            h = records[-1].a
        return records

    def _backward(self, thetas, records, s_top: np.ndarray) -> list[np.ndarray]:
        """s = dl/da (in the module's output layout) at every parametrised layer, from
        s_top = dl/dz (..., B, C): the 002 §2.1.4 recursion through every module."""
        ss, s, k = [], s_top, len(thetas)
        for i in range(len(self.layers) - 1, -1, -1):
            parametrised = i in self.params_at
            if parametrised:
                k -= 1
                ss.append(s)
                if k == 0:
                    break
            s = self._input_grad(i, thetas[k] if parametrised else None, records, s)
        return ss[::-1]

    def _input_grad(self, i: int, theta, records, s: np.ndarray) -> np.ndarray:
        """dl/d(input of module i) from dl/d(its output) s."""
        layer = self.layers[i]
        if isinstance(layer, Conv2d):
            W_g = self._grouped(i, self._weight(i, theta))
            return col2im(np.einsum("...bgto,...gok->...bgtk", self._positions(i, s), W_g),
                          layer)
        if isinstance(layer, Linear):
            return np.einsum("...bo,...oj->...bj", s, self._weight(i, theta))
        if isinstance(layer, BatchNorm2d):
            return self._batchnorm_back(s * _channels(theta[..., 0]), records[i])
        if isinstance(layer, Activation):
            return s * records[i].dphi
        if isinstance(layer, AvgPool2d):
            pool = _depthwise(layer)
            kk = layer.kernel_size[0] * layer.kernel_size[1]
            spread = s.reshape(*s.shape[:-2], -1, 1) / kk  # (..., C, T, 1): 1/(kh kw) each
            return col2im(np.broadcast_to(spread, (*spread.shape[:-1], kk)), pool)
        return s.reshape(*s.shape[:-1], *layer.in_shape)

    def _grads_from(self, thetas, records, s_top: np.ndarray) -> np.ndarray:
        """Per-sample gradients (..., B, P) of the output functional whose dl/dz is s_top."""
        ss = self._backward(thetas, records, s_top)
        grads = []
        for i, s in zip(self.params_at, ss, strict=True):
            h_bar = records[i].h_bar
            if isinstance(self.layers[i], Linear):
                grads.append(s[..., :, None] * h_bar[..., None, :])
            elif isinstance(self.layers[i], BatchNorm2d):  # 002 Prop. A.0.1 (b)
                grads.append(np.stack([(records[i].x_hat * s).sum(axis=(-2, -1)),
                                       s.sum(axis=(-2, -1))], axis=-1))
            else:  # sum_t s_t h_bar_t^T per group, rows of the groups stacked
                g = np.einsum("...bgto,...bgtk->...bgok", self._positions(i, s), h_bar)
                grads.append(g.reshape(*g.shape[:-3], -1, g.shape[-1]))
        return self._pack(grads)

    # -- second order --------------------------------------------------------------------

    def _hvps(self, params: Tree, V: np.ndarray, batch) -> np.ndarray:
        """H v for each row v of V (K, P): complex step of the exact gradient, in chunks."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        per_direction = rows.size * self._entries_per_sample() + V.shape[1]
        step = max(1, _CHUNK_ENTRIES // per_direction)
        return np.concatenate([self._complex_step(thetas, rows, V[k:k + step])
                               for k in range(0, V.shape[0], step)])

    def _complex_step(self, thetas, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        """scale * Im(sum_n g_n(theta + i h v)) / h for each row v of V, g_n with the ridge."""
        shifted = [theta + 1j * STEP * d for theta, d in zip(thetas, self._split(V), strict=True)]
        records = self._forward(shifted, rows)
        s_top = self._dloss(records[-1].a, self.y[rows])
        g = (self._grads_from(shifted, records, s_top).sum(axis=-2)
             + rows.size * self.l2 * self._pack(shifted))
        return self._scale(rows.size) * g.imag / STEP

    # -- batch normalisation ---------------------------------------------------------------

    def _batchnorm(self, i: int, theta: np.ndarray, h: np.ndarray) -> _Record:
        """x_hat = (h - mu) / sigma, sigma = sqrt(var + eps) (biased var over batch x H x W,
        or the running statistics), and y = nu ⊙ x_hat + beta; theta (..., C, 2) = [nu |
        beta]. Complex-analytic (d * d, principal sqrt) for the complex step."""
        if self.bn_mode == "eval":
            mu, var = self._stats[i]
        else:
            mu = h.mean(axis=_BN_AXES, keepdims=True)
            d = h - mu
            var = (d * d).mean(axis=_BN_AXES, keepdims=True)
        sigma = np.sqrt(var + self.layers[i].eps)
        x_hat = (h - mu) / sigma
        y = _channels(theta[..., 0]) * x_hat + _channels(theta[..., 1])
        return _Record(y, h_bar=h, x_hat=x_hat, sigma=sigma)

    def _batchnorm_back(self, d_x_hat: np.ndarray, record: _Record) -> np.ndarray:
        """dl/dh from dl/dx_hat g: (g - mean g - x_hat mean(g ⊙ x_hat)) / sigma over batch x
        H x W (train mode), g / sigma with running statistics."""
        g = d_x_hat
        if self.bn_mode == "train":
            x = record.x_hat
            g = (g - g.mean(axis=_BN_AXES, keepdims=True)
                 - x * (g * x).mean(axis=_BN_AXES, keepdims=True))
        return g / record.sigma

    def _entries_per_sample(self) -> int:
        """Array entries one sample holds per direction in a forward-backward pass."""
        total = 0
        for layer in self.layers:
            total += (3 if isinstance(layer, BatchNorm2d) else 2) * int(np.prod(layer.out_shape))
            if isinstance(layer, Conv2d):
                total += 2 * layer.groups * int(np.prod(layer.out_hw)) * (layer.fan_in + 1)
        return total


_BN_AXES = (-4, -2, -1)  # batch x H x W of (..., B, C, H, W)


def _channels(v: np.ndarray) -> np.ndarray:
    """Per-channel values (..., C) broadcast against (..., B, C, H, W)."""
    return v[..., None, :, None, None]


def _tokens(a: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, T, C), T = H W positions row-major."""
    return np.swapaxes(a.reshape(*a.shape[:2], -1), -1, -2)


def running_stats(rng: np.random.Generator, layers) -> tuple[Any, Any]:
    """Running statistics of the BatchNorm layers (channels concatenated in module order),
    drawn from ``rng``: mean N(0, 0.5^2), variance U(0.5, 2) per channel (prob:normnet's
    law); (None, None) and no draw without BatchNorm layers."""
    C = sum(layer.out_channels for layer in layers if isinstance(layer, BatchNorm2d))
    if not C:
        return None, None
    return 0.5 * rng.standard_normal(C), rng.uniform(0.5, 2.0, C)


def _depthwise(pool: AvgPool2d) -> Conv2d:
    """The patch geometry of an average pooling: a conv with one group per channel."""
    C = pool.in_shape[0]
    return Conv2d(pool.in_shape, C, pool.kernel_size, pool.stride, groups=C, bias=False)


def _phi(name: str, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(a), phi'(a), complex analytic for the complex step (network._activation uses
    expit and real comparisons): sigmoid(a) = (1 + tanh(a/2))/2, relu's mask from Re a."""
    if name == "tanh":
        t = np.tanh(a)
        return t, 1.0 - t * t
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * a))
        return s, s * (1.0 - s)
    if name == "relu":
        mask = (np.real(a) > 0.0).astype(np.float64)
        return a * mask, mask
    return a, np.ones_like(a)


class DeepLinear(FeedForward):
    """``prob:deep_linear``: prob:mlp with identity activations and a squared loss."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 16,
             widths: Sequence[int] = (4, 5, 3), loss: str = "mse_half", bias: bool = True,
             reduction: str = "mean", l2: float = 0.0, noise: float = 0.1) -> DeepLinear:
        """X ~ N(0, I), targets y = X M + noise N(0, 1) with M ~ N(0, 1/d_in)."""
        _choice(loss, "loss", ("mse", "mse_half"))
        X = rng.standard_normal((n_samples, widths[0]))
        M = rng.standard_normal((widths[0], widths[-1])) / np.sqrt(widths[0])
        y = X @ M + noise * rng.standard_normal((n_samples, widths[-1]))
        return cls(X, y, widths, "identity", loss, bias, reduction, l2, id="prob:deep_linear")


class DigitsCNN(ConvNet):
    """``prob:W8``: the ``two_conv_two_linear`` CNN on the digits as 8x8x1 images."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 1000, split: str = "train",
             activation: str = "relu", reduction: str = "mean") -> DigitsCNN:
        """A random subset of ``n_samples`` images (without replacement, in index order)."""
        X, y = _subset(rng, *digit_images(split), n_samples)
        return cls(X, y, preset("two_conv_two_linear", 10, activation), "ce", reduction,
                   id="prob:W8")


class SynthImagesCNN(ConvNet):
    """``prob:synth_images``: a small CNN classifier (preset ``small_cnn``) on a subsample of
    `reference.problems.images.synth_images`."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 64, classes: int = 10,
             size: int = 16, split: str = "train", data_seed: int = 0, family: str = "A",
             activation: str = "relu", reduction: str = "mean", noise: float = 1.0
             ) -> SynthImagesCNN:
        """The first data set of ``synth_images(data_seed, classes=..., size=..., family=...)``
        split, ``n_samples`` of its images drawn without replacement."""
        _choice(split, "split", ("train", "test"))
        data = synth_images(data_seed, classes=classes, size=size, family=family, noise=noise)
        X, y = _subset(rng, data[f"X_{split}"], data[f"y_{split}"], n_samples)
        return cls(X, y, preset("small_cnn", classes, activation), "ce", reduction,
                   id="prob:synth_images")


class SynthImagesW2(ConvNet):
    """``prob:W2`` (INVENTORY §1.3): the `w2_layers` CNN (conv-BN-act stages, global average
    pooling, linear head; ``width`` multiplier, ``variant`` plain or dw) on
    `reference.problems.images.synth_images`, softmax cross-entropy."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int | None = None, width: float = 1.0,
             variant: str = "plain", bn_mode: str = "train", classes: int = 10, size: int = 16,
             split: str = "train", data_seed: int = 0, family: str = "A", noise: float = 1.0,
             activation: str = "relu", reduction: str = "mean", l2: float = 0.0
             ) -> SynthImagesW2:
        """The ``split`` of ``synth_images(data_seed, classes=..., size=..., family=...,
        noise=...)`` (5000 train, 1000 test images), or ``n_samples`` of its images drawn
        without replacement (in index order); then the running statistics of the BatchNorm
        layers (used by ``bn_mode="eval"``, always drawn): mean N(0, 0.5^2), variance
        U(0.5, 2) per channel. Full size (width 1, 16x16x3, 10 classes): 14,746 parameters
        (plain), 2,986 (dw); width 1/8 on 8x8 images: channels 2/4/4."""
        _choice(split, "split", ("train", "test"))
        layers = w2_layers(classes, activation, width=width, variant=variant)
        data = synth_images(data_seed, classes=classes, size=size, family=family, noise=noise)
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if n_samples is not None:
            X, y = _subset(rng, X, y, n_samples)
        stats = running_stats(rng, parse_layers(layers, X.shape[1:]))
        return cls(X, y, layers, "ce", reduction, l2, "prob:W2", bn_mode, *stats)


def _subset(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, n: int):
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= y.size:
        raise ValueError(f"Invalid n_samples: {n!r}; must be an integer in [1, {y.size}]")
    rows = np.sort(rng.choice(y.size, size=n, replace=False))
    return X[rows], y[rows]


REGISTRY.register("prob:cnn", ConvNet)
REGISTRY.register("prob:deep_linear", DeepLinear)
REGISTRY.register("prob:W8", DigitsCNN)
REGISTRY.register("prob:synth_images", SynthImagesCNN)
REGISTRY.register("prob:W2", SynthImagesW2)
