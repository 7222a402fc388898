"""Curvature of ``torch.nn`` models: per-sample gradients, layer statistics, Kronecker factors,
Hessian/GGN/Fisher products (the engine behind the `est:*` curvature estimators).

Every function takes ``params`` (a mapping name -> tensor, the module's ``named_parameters``
names) and a `ModelBatch` (module, inputs, labels, loss, reduction). Scales: per-sample
quantities are unscaled (gradients of l_n); batch matrices carry 1/B ("mean") or 1 ("sum").

Generic route (`autodiff`, torch.func; the oracle of the fast path):
    loss, gradient, per_sample_grads(method="vmap" | "loop", names=, y=), per_sample_losses,
    hvp(v, mode="forward" (jvp(grad)) | "reverse"), hessian, jac_out, out_hess,
    ggn, ggn_vp, fisher_true(mc_samples=, generator=, labels=, scale=, names=), fisher_emp,
    sample_labels, label_support, check_per_sample (train-mode BatchNorm raises).
Layer statistics (`stats`): layer_stats (forward hooks; Linear, Conv2d, LayerNorm,
    GroupNorm, eval BatchNorm), collect (the same with modules), grads_from_stats.
Structured fast path (`fast`): per_sample_grads_fast, diag_ef ((s^2)^T (h_bar^2) per Linear).
Factors (`kfac`): kfac_factors (labels, s_scale, spatial_scaling), norm_factors
    (002 Prop. 3.3.1 (a), exact blocks (b), diagonals (d)), label_sets.
Distributed (`distributed`): all_reduce_factors (002 §4.2 Eq. (22): factors averaged across
    the ranks of a process group; order, weights), efim_sum (F_tilde^SUM).
Costs (`cost`): time_call (median of >= 5 after warm-up, threads, cuda sync), tensor_bytes,
    peak_cuda_bytes; the call counter and the analytic state counts are in
    ``contract.specs.curvature`` (shared with the reference layer).
"""

from torchimpl.curvature.autodiff import (
    fisher_emp,
    fisher_true,
    ggn,
    ggn_vp,
    gradient,
    hessian,
    hvp,
    jac_out,
    label_support,
    loss,
    out_hess,
    per_sample_grads,
    per_sample_losses,
    sample_labels,
)
from torchimpl.curvature.cost import peak_cuda_bytes, tensor_bytes, time_call
from torchimpl.curvature.distributed import all_reduce_factors, efim_sum
from torchimpl.curvature.fast import diag_ef, per_sample_grads_fast
from torchimpl.curvature.kfac import kfac_factors, label_sets, norm_factors
from torchimpl.curvature.model import ModelBatch
from torchimpl.curvature.stats import collect, grads_from_stats, layer_stats

__all__ = [
    "ModelBatch",
    "all_reduce_factors",
    "efim_sum",
    "collect",
    "diag_ef",
    "fisher_emp",
    "fisher_true",
    "ggn",
    "ggn_vp",
    "gradient",
    "grads_from_stats",
    "hessian",
    "hvp",
    "jac_out",
    "kfac_factors",
    "label_sets",
    "label_support",
    "layer_stats",
    "loss",
    "norm_factors",
    "out_hess",
    "peak_cuda_bytes",
    "per_sample_grads",
    "per_sample_grads_fast",
    "per_sample_losses",
    "sample_labels",
    "tensor_bytes",
    "time_call",
]
