"""Feed-forward networks (INVENTORY §1.2 prob:mlp, prob:softmax, prob:lstsq, prob:logreg,
§1.3 prob:W1), torch.

The model is an ``nn.Sequential`` of ``nn.Linear`` and activation modules, so the parameter
names are ``"0.weight", "0.bias", "2.weight", ...`` and ``functional_call`` evaluates it at
any parameter mapping. Per-sample loss l_n = loss(z_n, y_n) + (l2/2)||theta||^2 with
z_n = net(x_n); the l2 term covers every parameter (biases included).

Curvature conventions (scale: 1/B for ``reduction="mean"``, 1 for ``"sum"``):
- GGN G = scale sum_n (J_n^T Lambda_n J_n + l2 I) (the ridge is kept whole, being its own
  GGN), so G = H for models linear in theta (softmax regression, least squares, logreg).
- True Fisher F = scale sum_n E_{y ~ p(.|x_n)} [g_n(y) g_n(y)^T], g_n(y) the per-sample gradient
  with label y. Categorical and Bernoulli likelihoods are enumerated exactly. The squared
  losses are Gaussian likelihoods, y ~ N(z, I/c) for loss (c/2)||z - y||^2 ("mse": c = 2,
  variance 1/2; "mse_half": c = 1, variance 1); there E[r r^T] = Lambda for the residual
  gradient r, so F = scale sum_n (J_n^T Lambda_n J_n + l2^2 theta theta^T) (the GGN when
  l2 = 0). The same identity holds for the enumerated likelihoods (a test checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from torchimpl.problems.base import Batch
from torchimpl.problems.functional import (
    SampleProblem,
    batch_index,
    check_reduction,
    check_tree,
    flat_rows,
    to_tensor,
)
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree, flatten

HESSIAN_ENTRIES = 2**25  # bounds `hessian` memory (peak RSS ~1.7 GB at P = 3.5k, B = 256)
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


@dataclass(frozen=True)
class Categorical:
    """Loss -log p_y(z) over labels 0..K-1 with probabilities ``probs(z)`` (B, K)."""

    value: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # z (C,), y () -> l
    out_hess: Callable[[torch.Tensor], torch.Tensor]  # z (B, C) -> Lambda (B, C, C)
    probs: Callable[[torch.Tensor], torch.Tensor]

    def draw(self, z: torch.Tensor, generator: torch.Generator, K: int) -> torch.Tensor:
        """K labels per input, (K, B)."""
        return torch.multinomial(self.probs(z), K, replacement=True, generator=generator).T


@dataclass(frozen=True)
class Gaussian:
    """Loss (c/2)||z - y||^2: the NLL of y ~ N(z, I/c) up to a constant; Lambda = c I."""

    precision: float

    def value(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.precision * ((z - y) ** 2).sum()

    def out_hess(self, z: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return self.precision * eye.expand(*z.shape, -1)

    def draw(self, z: torch.Tensor, generator: torch.Generator, K: int) -> torch.Tensor:
        """K targets per input, (K, B, C)."""
        noise = torch.randn((K, *z.shape), generator=generator, dtype=z.dtype).to(z.device)
        return z + noise / math.sqrt(self.precision)


def _ce_value(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log softmax(z)_y = log sum_c e^{d_c}, d = z - z_y, written as
    d_k + log1p(sum_{c != k} e^{d_c - d_k}) with k = argmax d: no cancellation when the loss
    is small (logsumexp(z) - z_y loses ~eps/loss relative accuracy there)."""
    d = z - z.gather(-1, y.unsqueeze(-1))
    top, k = d.max(-1, keepdim=True)
    others = torch.exp(d - top).scatter(-1, k, 0.0)
    return (top + torch.log1p(others.sum(-1, keepdim=True))).squeeze(-1)


def _ce_out_hess(z: torch.Tensor) -> torch.Tensor:
    """diag(p) - p p^T, with the diagonal p_c (1 - p_c) formed as p_c sum_{j != c} p_j (no
    cancellation when p_c is near 1)."""
    p = torch.softmax(z, dim=-1)
    off = 1 - torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    rest = (p.unsqueeze(-2) * off).sum(-1)
    return torch.diag_embed(p * rest) - p.unsqueeze(-1) * p.unsqueeze(-2) * off


def _bce_value(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log sigma(z) (y = 1) or -log(1 - sigma(z)) (y = 0): softplus((1 - 2y) z), exact where
    softplus(z) - y z cancels."""
    return _softplus((1 - 2 * y) * z[0])


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x) to full relative accuracy for every x (torch's softplus returns x above
    its threshold 20, a relative error of up to ~1e-10); both branches stay finite, so the
    unused one passes no NaN into derivatives."""
    positive = x + torch.log1p(torch.exp(-x.clamp(min=0)))
    return torch.where(x > 0, positive, torch.log1p(torch.exp(x.clamp(max=0))))


def _bce_out_hess(z: torch.Tensor) -> torch.Tensor:
    return (torch.sigmoid(z) * torch.sigmoid(-z)).unsqueeze(-1)  # sigma (1 - sigma)


def _bce_probs(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.sigmoid(-z[:, 0]), torch.sigmoid(z[:, 0])], dim=-1)


LOSSES: dict[str, Categorical | Gaussian] = {
    "ce": Categorical(_ce_value, _ce_out_hess, partial(torch.softmax, dim=-1)),
    "bce": Categorical(_bce_value, _bce_out_hess, _bce_probs),
    "mse": Gaussian(2.0),
    "mse_half": Gaussian(1.0),
}


def gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over all leading indices i of a_i b_i^T, for a, b (..., P): one (P, P) matmul."""
    P = a.shape[-1]
    return a.reshape(-1, P).T @ b.reshape(-1, P)


def _choice(value: str, allowed: dict[str, Any], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"Invalid {name}: {value!r}; allowed: {sorted(allowed)}")
    return value


def build_module(widths: Sequence[int], activation: str, bias: bool) -> nn.Sequential:
    """Linear(w0, w1), act, Linear(w1, w2), act, ..., Linear(w_{L-1}, w_L)."""
    act = ACTIVATIONS[_choice(activation, ACTIVATIONS, "activation")]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [act()] if i else []
        layers.append(nn.Linear(n_in, n_out, bias=bias))
    return nn.Sequential(*layers)


class FeedForward(SampleProblem):
    """An MLP with a likelihood loss on data X (N, d_in), labels y; see the module docstring.

    Labels: "ce" integer classes in [0, C), stored int64 (N,); "bce" {0, 1}, stored as floats
    (N,); "mse"/"mse_half" targets (N, C), or (N,) when C = 1.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        widths: Sequence[int],
        activation: str = "tanh",
        loss: str = "ce",
        bias: bool = True,
        reduction: str = "mean",
        l2: float = 0.0,
        id: str = "prob:mlp",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        self.id = id
        self.likelihood = LOSSES[_choice(loss, LOSSES, "loss")]
        self.widths = tuple(int(w) for w in widths)
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"Invalid widths: {widths} (need >= 2 positive layer sizes)")
        self.loss_name, self.activation, self.bias = loss, activation, bool(bias)
        self.module = build_module(self.widths, activation, bias).to(dtype=dtype, device=device)
        self.shapes = {name: p.shape for name, p in self.module.named_parameters()}
        self.reduction = check_reduction(reduction)
        self.l2 = float(l2)
        if not 0 <= self.l2 < float("inf"):
            raise ValueError(f"Invalid l2: {l2} (must be finite and >= 0)")
        self.X = to_tensor(X, "X", dtype, device, 2)
        if self.X.shape[1] != self.widths[0]:
            raise ValueError(f"X has {self.X.shape[1]} features; widths[0] = {self.widths[0]}")
        self.y = self._labels(y, self.X.shape[0])

    def _labels(self, y: Any, N: int) -> torch.Tensor:
        """Labels in canonical form: ce int64 (N,) in [0, C); bce float (N,) in {0, 1};
        mse/mse_half float (N, C) ((N,) accepted when C = 1)."""
        C, dtype = self.widths[-1], self.X.dtype
        y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).to(self.X.device)
        if self.loss_name == "ce":
            if C < 2:
                raise ValueError(f"loss='ce' needs widths[-1] >= 2 classes, got {C}")
            if y.shape != (N,) or y.is_floating_point() or bool((y < 0).any() | (y >= C).any()):
                raise ValueError(f"y must be ({N},) integer classes in [0, {C - 1}] for loss 'ce'")
            return y.to(torch.int64)
        if self.loss_name == "bce":
            if C != 1:
                raise ValueError(f"loss='bce' needs widths[-1] == 1, got {C}")
            if y.shape != (N,) or not bool(((y == 0) | (y == 1)).all()):
                raise ValueError(f"y must be ({N},) labels in {{0, 1}} for loss 'bce'")
            return y.to(dtype)
        y = to_tensor(y, "y", dtype, self.X.device, y.dim())
        if tuple(y.shape) not in ((N, C), (N,) * (C == 1)):
            raise ValueError(f"y must be ({N}, {C}) targets for loss {self.loss_name!r}")
        return y.reshape(N, C)

    def num_samples(self) -> int:
        return self.X.shape[0]

    def _linear(self) -> list[tuple[int, nn.Linear]]:
        return [(i, m) for i, m in enumerate(self.module) if isinstance(m, nn.Linear)]

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """PyTorch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)) for weights and biases."""
        return {
            f"{i}.{name}": (
                (2 * torch.rand(p.shape, generator=generator, dtype=p.dtype) - 1)
                / math.sqrt(layer.in_features)
            ).to(p.device)
            for i, layer in self._linear()
            for name, p in layer.named_parameters()
        }

    def _outputs(self, params: Tree, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, check_tree(params, self.shapes, "params"), (x,))

    def _penalty(self, params: Tree) -> torch.Tensor | float:
        """(l2/2)||theta||^2; skipped at l2 = 0, where its derivatives would cost P x P work."""
        return 0.5 * self.l2 * sum((p**2).sum() for p in params.values()) if self.l2 else 0.0

    def _loss_one(self, params: Tree, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.likelihood.value(self._outputs(params, x), y) + self._penalty(params)

    def _samples(self, batch: Batch, labels: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the batch; ``labels`` replace the data labels."""
        index = batch_index(batch, self.num_samples(), self.X.device)
        y = self.y[index] if labels is None else self._labels(labels, index.numel())
        return self.X[index], y

    def per_sample_losses(self, params: Tree, batch: Batch = None, labels: Any = None):
        """l_n = nll(z_n, y_n) + (l2/2)||theta||^2 (B,); ``labels`` replace the data's."""
        return self._vmapped(self._loss_one, params, self._samples(batch, labels))

    def per_sample_grads(self, params: Tree, batch: Batch = None, labels: Any = None):
        """g_n = dl_n/dtheta (B, P), unscaled; ``labels`` replace the data's."""
        return flat_rows(
            self._vmapped(grad(self._loss_one), params, self._samples(batch, labels)), 1
        )

    def _hessian_chunk(self, batch: Batch) -> int:
        """Directions per HVP pass: at most HESSIAN_ENTRIES activations (directions x B x width)."""
        B = self._samples(batch)[0].shape[0]
        return max(1, HESSIAN_ENTRIES // (B * max(self.widths)))

    def jac_out(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """J_n = dz_n/dtheta, (B, C, P)."""
        x = self._samples(batch)[0]
        return flat_rows(vmap(jacrev(self._outputs), in_dims=(None, 0))(dict(params), x), 2)

    def out_hess(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """Lambda_n = d^2 loss / dz^2, (B, C, C)."""
        return self.likelihood.out_hess(self._outputs(params, self._samples(batch)[0]))

    def _gauss_newton(self, params: Tree, batch: Batch, ridge: torch.Tensor) -> torch.Tensor:
        """scale sum_n (J_n^T Lambda_n J_n + ridge) (002 §2.4.3 GGN display), where ``ridge``
        is the contribution of the l2 term to each per-sample matrix."""
        J = self.jac_out(params, batch)
        Lam = self.out_hess(params, batch)
        B = J.shape[0]
        return (gram(J, Lam @ J) + B * ridge) * self._scale(B)

    def ggn(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """G = scale sum_n (J_n^T Lambda_n J_n + l2 I): the ridge is its own GGN."""
        theta = flatten(params)
        eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
        return self._gauss_newton(params, batch, self.l2 * eye)

    def fisher_true(
        self,
        params: Tree,
        batch: Batch = None,
        mc_samples: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Exact expectation over the model's labels, or the mean over ``mc_samples`` draws."""
        if mc_samples is not None:
            return self._fisher_sampled(params, batch, mc_samples, generator)
        if isinstance(self.likelihood, Gaussian):
            theta = flatten(params)
            return self._gauss_newton(params, batch, self.l2**2 * torch.outer(theta, theta))
        x = self._samples(batch)[0]
        p = self.likelihood.probs(self._outputs(params, x))
        labels = torch.arange(p.shape[1], device=x.device).expand_as(p).to(self.y.dtype)
        g = self._grads_at_labels(params, x, labels)
        return gram(g, p.unsqueeze(-1) * g) * self._scale(x.shape[0])

    def _grads_at_labels(self, params: Tree, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample gradients with K labels per input, labels (B, K, ...) -> (B, K, P)."""
        per_label = vmap(grad(self._loss_one), in_dims=(None, None, 0))
        return flat_rows(vmap(per_label, in_dims=(None, 0, 0))(dict(params), x, labels), 2)

    def _fisher_sampled(
        self, params: Tree, batch: Batch, K: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        if not (isinstance(K, int | np.integer) and K >= 1):
            raise ValueError(f"Invalid mc_samples: {K} (must be an integer >= 1)")
        if generator is None:
            raise ValueError("fisher_true(mc_samples=K) needs a generator")
        x = self._samples(batch)[0]
        labels = self.likelihood.draw(self._outputs(params, x), generator, K).transpose(0, 1)
        g = self._grads_at_labels(params, x, labels.to(self.y.dtype))
        return gram(g, g) * (self._scale(x.shape[0]) / K)

    def sample_labels(
        self, params: Tree, generator: torch.Generator, batch: Batch = None
    ) -> torch.Tensor:
        """y_n ~ p_theta(. | x_n) for the batch, in the layout of the data labels."""
        z = self._outputs(params, self._samples(batch)[0])
        return self.likelihood.draw(z, generator, 1)[0].to(self.y.dtype)

    def as_model(self, batch: Batch = None):
        """The module on this batch's inputs and labels, a ``torchimpl.curvature.ModelBatch``
        for the curvature engine (which takes no ridge term: l2 must be 0)."""
        from torchimpl.curvature.model import ModelBatch  # the engine imports this module

        if self.l2:
            raise ValueError(f"as_model: the curvature engine has no ridge term; l2 = {self.l2}"
                             " must be 0")
        x, y = self._samples(batch)
        return ModelBatch(self.module, x, y, self.loss_name, self.reduction)

    def layer_stats(self, params: Tree, batch: Batch = None) -> list[dict[str, torch.Tensor]]:
        """Per Linear layer: h_bar = [h, 1] (B, in+1; h alone without bias), a (B, out), and
        s = dl_n/da (B, out) of the per-sample loss (002 §2.1.4), by differentiating the summed
        loss with respect to a zero shift added to each a."""
        params, (x, y) = check_tree(params, self.shapes, "params"), self._samples(batch)
        linear = dict(self._linear())
        shifts = [x.new_zeros(x.shape[0], m.out_features) for m in linear.values()]

        def summed_loss(shifts: list[torch.Tensor]):
            h, inputs, pre = x, [], []
            for i, layer in enumerate(self.module):
                if i in linear:
                    inputs.append(h)
                    weights = {k: params[f"{i}.{k}"] for k, _ in layer.named_parameters()}
                    h = functional_call(layer, weights, (h,)) + shifts[len(pre)]
                    pre.append(h)
                else:
                    h = layer(h)
            return vmap(self.likelihood.value)(h, y).sum(), (inputs, pre)

        s, (inputs, pre) = grad(summed_loss, has_aux=True)(shifts)
        ones = x.new_ones(x.shape[0], 1)
        return [
            {"h_bar": torch.cat([h, ones], 1) if m.bias is not None else h, "a": a, "s": s_l}
            for m, h, a, s_l in zip(linear.values(), inputs, pre, s, strict=True)
        ]


for _id in ("prob:mlp", "prob:softmax", "prob:lstsq", "prob:logreg", "prob:W1"):
    REGISTRY.register(_id, FeedForward)
