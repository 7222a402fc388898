"""``prob:normnet``: a network with one normalization layer (INVENTORY §1.2), torch.

The model is ``nn.Sequential(Linear(D, C), Norm, Activation, MeanOverPositions(),
Linear(C, K))`` on inputs (B, T, D) (T positions of D features), so the parameters are
"0.weight", "0.bias" (Linear; ``bias=False`` drops "0.bias"), "1.weight" = nu, "1.bias" =
beta (the norm's scale and shift) and "4.weight", "4.bias" (head). The norm is torch's own
module: ``nn.LayerNorm(C)`` (over the C features of one position), ``nn.GroupNorm(groups,
C)`` (over a group's channels x positions of one sample) or ``nn.BatchNorm1d(C)`` (over batch
x positions per channel), the last two applied channels-first by `ChannelsLast` (torch
expects channels at dim 1).
Train-mode BatchNorm uses the batch statistics (``track_running_stats=False``); eval mode
holds the given running mean and variance as buffers (``module.eval()``).

Per-sample loss l_n = nll(z_n, y_n) + (l2/2)||theta||^2 with the likelihoods of
``torchimpl.problems.network``; every quantity and convention is that class's (this one
inherits from it), computed with torch.func. Train-mode BatchNorm couples the samples:
per-sample gradients and both Fishers raise `PerSampleUndefinedError` (a ValueError and a
NotImplementedError); the loss, gradient and Hessian are those of the batch loss, J_n holds
the other samples fixed, and layer_stats' ``s`` is d(sum_m l_m)/d(output of sample n).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

from torchimpl.problems.base import Batch
from torchimpl.problems.functional import check_reduction, check_tree, flat_rows, to_tensor
from torchimpl.problems.network import ACTIVATIONS as _ALL_ACTIVATIONS
from torchimpl.problems.network import HESSIAN_ENTRIES, LOSSES, FeedForward, _choice
from torchimpl.problems.registry import REGISTRY
from torchimpl.tree import Tree

if TYPE_CHECKING:
    from torchimpl.curvature.model import ModelBatch

NORMS = ("layernorm", "groupnorm", "batchnorm")
BN_MODES = ("train", "eval")
ACTIVATIONS = {k: _ALL_ACTIVATIONS[k] for k in ("tanh", "relu", "identity")}
NORM_LOSSES = {k: LOSSES[k] for k in ("ce", "mse", "mse_half")}


class PerSampleUndefinedError(ValueError, NotImplementedError):
    """A per-sample quantity of a model whose samples are coupled (train-mode BatchNorm)."""


class ChannelsLast(nn.Module):
    """Mixin: apply a channels-first norm to (B, T, C) or one sample's (T, C) input."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        single = h.dim() == 2
        h = h.unsqueeze(0) if single else h
        out = super().forward(h.transpose(1, 2)).transpose(1, 2)
        return out[0] if single else out


class GroupNormTokens(ChannelsLast, nn.GroupNorm):
    """``nn.GroupNorm`` on (B, T, C): statistics over a group's channels x positions."""


class BatchNormTokens(ChannelsLast, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` on (B, T, C): statistics over batch x positions per channel."""


class MeanOverPositions(nn.Module):
    """(..., T, C) -> (..., C): the mean over positions."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u.mean(dim=-2)


def build_module(D: int, C: int, K: int, norm: str, groups: int, bn_mode: str, eps: float,
                 activation: str, bias: bool = True, running_mean: Any = None,
                 running_var: Any = None, dtype: torch.dtype = torch.float64,
                 device: Any = None) -> nn.Sequential:
    """Linear(D, C), Norm, Activation, MeanOverPositions, Linear(C, K) (the module doc)."""
    if norm == "layernorm":
        layer: nn.Module = nn.LayerNorm(C, eps=eps)
    elif norm == "groupnorm":
        layer = GroupNormTokens(groups, C, eps=eps)
    else:
        layer = BatchNormTokens(C, eps=eps, track_running_stats=bn_mode == "eval")
    module = nn.Sequential(nn.Linear(D, C, bias=bias), layer, ACTIVATIONS[activation](),
                           MeanOverPositions(), nn.Linear(C, K)).to(dtype=dtype, device=device)
    if norm == "batchnorm" and bn_mode == "eval":
        for buffer, value in ((layer.running_mean, running_mean), (layer.running_var, running_var)):
            buffer.copy_(to_tensor(value, "running statistics", dtype, device, 1))
        if not bool((layer.running_var > 0).all()):
            raise ValueError("running_var must be finite and > 0")
        module.eval()
    return module


class CoupledBatch:
    """Mixin for networks that may hold train-mode BatchNorm (``coupled``): per-sample losses
    from one batched forward pass (train mode: the batch's statistics), and every per-sample
    quantity raising `PerSampleUndefinedError` while the samples are coupled; ``jac_out`` is
    then the Jacobian of the batch's outputs, jointly. Before ``FeedForward`` in the bases."""

    COUPLED_HINT = "bn_mode='eval'"  # what to use instead, in the error message

    def as_model(self, batch: Batch = None) -> ModelBatch:
        """The module (eval mode for eval-mode BatchNorm) with the batch's inputs and labels,
        for the curvature engine; raises `PerSampleUndefinedError` for train-mode BatchNorm
        and, as ``FeedForward``'s, ValueError for l2 > 0."""
        self._per_sample("as_model")
        return super().as_model(batch)

    def per_sample_losses(self, params: Tree, batch: Batch = None, labels: Any = None):
        """l_n (B,) from one batched forward pass (train BN: the batch's statistics)."""
        x, y = self._samples(batch, labels)
        return vmap(self.likelihood.value)(self._outputs(params, x), y) + self._penalty(params)

    def per_sample_grads(self, params: Tree, batch: Batch = None, labels: Any = None):
        """g_n = dl_n/dtheta (B, P); raises `PerSampleUndefinedError` for train BN."""
        self._per_sample("per_sample_grads")
        return super().per_sample_grads(params, batch, labels)

    def jac_out(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        """J_n = dz_n/dtheta (B, K, P); train BN: of the batch's outputs, jointly."""
        if not self.coupled:
            return super().jac_out(params, batch)
        x = self._samples(batch)[0]
        return flat_rows(jacrev(self._outputs)(check_tree(params, self.shapes, "params"), x), 2)

    def fisher_true(self, params: Tree, batch: Batch = None, mc_samples: int | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        self._per_sample("fisher_true")
        return super().fisher_true(params, batch, mc_samples, generator)

    def fisher_emp(self, params: Tree, batch: Batch = None) -> torch.Tensor:
        self._per_sample("fisher_emp")
        return super().fisher_emp(params, batch)

    def _per_sample(self, quantity: str) -> None:
        if self.coupled:
            raise PerSampleUndefinedError(
                f"{self.id}: {quantity} is not defined with train-mode BatchNorm, whose batch "
                "statistics couple the samples (INVENTORY est:per_sample_grads); use "
                f"{self.COUPLED_HINT}")


class NormNet(CoupledBatch, FeedForward):
    """``prob:normnet``; the constructor arguments are ``reference``'s ``spec()``."""

    COUPLED_HINT = "bn_mode='eval', layernorm or groupnorm"

    def __init__(
        self,
        X: Any,
        y: Any,
        channels: int,
        classes: int,
        norm: str = "layernorm",
        groups: int = 1,
        bn_mode: str = "train",
        running_mean: Any = None,
        running_var: Any = None,
        eps: float = 1e-5,
        activation: str = "tanh",
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        bias: bool = True,
        id: str = "prob:normnet",
        dtype: torch.dtype = torch.float64,
        device: Any = None,
    ) -> None:
        _choice(norm, dict.fromkeys(NORMS), "norm")
        _choice(bn_mode, dict.fromkeys(BN_MODES), "bn_mode")
        _choice(activation, ACTIVATIONS, "activation")
        self.likelihood = NORM_LOSSES[_choice(loss, NORM_LOSSES, "loss")]
        self.X = to_tensor(X, "X", dtype, device, 3)
        N, T, D = self.X.shape
        C, K = int(channels), int(classes)
        if min(N, T, D, C, K) < 1:
            raise ValueError(f"Invalid sizes: X {tuple(self.X.shape)}, channels {C}, "
                             f"classes {K}; all must be >= 1")
        if norm == "groupnorm" and (groups < 1 or C % groups):
            raise ValueError(f"Invalid groups: {groups}; must be a positive divisor of "
                             f"channels = {C}")
        if not 0 < eps < float("inf"):
            raise ValueError(f"Invalid eps: {eps} (must be finite and > 0)")
        if norm == "batchnorm" and bn_mode == "eval" and (running_mean is None
                                                          or running_var is None):
            raise ValueError(f"bn_mode='eval' needs running_mean and running_var, shape ({C},)")
        self.id, self.widths, self.bias = id, (D, C, K), bool(bias)
        self.norm, self.bn_mode, self.phi, self.loss_name = norm, bn_mode, activation, loss
        self.module = build_module(D, C, K, norm, groups, bn_mode, float(eps), activation,
                                   self.bias, running_mean, running_var, dtype, device)
        self.shapes = {name: p.shape for name, p in self.module.named_parameters()}
        self.reduction = check_reduction(reduction)
        self.l2 = float(l2)
        if not 0 <= self.l2 < float("inf"):
            raise ValueError(f"Invalid l2: {l2} (must be finite and >= 0)")
        self.y = self._labels(y, N)

    @property
    def coupled(self) -> bool:
        """True where the statistics couple the samples of a batch (train-mode BatchNorm)."""
        return self.norm == "batchnorm" and self.bn_mode == "train"

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Linear layers as ``nn.Linear`` (U(+-1/sqrt(in)) from ``generator``); nu = 1,
        beta = 0 (torch's norm defaults)."""
        drawn = super().init_params(generator)
        drawn.update({f"1.{k}": p.detach().clone() for k, p in self.module[1].named_parameters()})
        return {name: drawn[name] for name in self.shapes}

    def _hessian_chunk(self, batch: Batch) -> int:
        """Directions per HVP pass: at most HESSIAN_ENTRIES activations (directions x B T C)."""
        B, T = self._samples(batch)[0].shape[:2]
        return max(1, HESSIAN_ENTRIES // (B * T * max(self.widths)))

    def layer_stats(self, params: Tree, batch: Batch = None) -> list[dict[str, torch.Tensor]]:
        """In module order: Linear 0 {h_bar (B, T, D+1) (x without bias), a = h (B, T, C), s};
        norm {h (B, T, C), x_hat (B, T, C) (the norm at nu = 1, beta = 0), s at its output};
        head {h_bar (B, C+1), a = z (B, K), s}. s: gradient of the summed loss with respect to
        a zero shift added to each output (002 §2.1.4; the per-sample dl_n/d(output) when
        samples do not couple)."""
        params, (x, y) = check_tree(params, self.shapes, "params"), self._samples(batch)
        linear0, norm, act, mean, head = self.module
        weights = [{k: params[f"{i}.{k}"] for k, _ in self.module[i].named_parameters()}
                   for i in (0, 1, 4)]
        h = functional_call(linear0, weights[0], (x,))
        x_hat = functional_call(norm, {"weight": torch.ones_like(weights[1]["weight"]),
                                       "bias": torch.zeros_like(weights[1]["bias"])}, (h,))
        m = mean(act(functional_call(norm, weights[1], (h,))))

        def summed_loss(shifts: list[torch.Tensor]) -> torch.Tensor:
            y_out = functional_call(norm, weights[1], (functional_call(linear0, weights[0],
                                                                       (x,)) + shifts[0],))
            z = functional_call(head, weights[2], (mean(act(y_out + shifts[1])),)) + shifts[2]
            return vmap(self.likelihood.value)(z, y).sum()

        z = functional_call(head, weights[2], (m,))
        s_h, s_y, s_z = grad(summed_loss)([torch.zeros_like(h), torch.zeros_like(h),
                                           torch.zeros_like(z)])
        return [{"h_bar": _augment(x) if self.bias else x, "a": h, "s": s_h},
                {"h": h, "x_hat": x_hat, "s": s_y},
                {"h_bar": _augment(m), "a": z, "s": s_z}]


def _augment(h: torch.Tensor) -> torch.Tensor:
    """[h, 1] along the last axis."""
    return torch.cat([h, h.new_ones(*h.shape[:-1], 1)], dim=-1)


REGISTRY.register("prob:normnet", NormNet)
