"""The generic route: per-sample gradients, Hessian, GGN and Fisher matrices of a `ModelBatch`
by torch.func (``functional_call``, ``vmap(grad)``, ``jvp(grad)``, ``jacrev``).

Conventions (INVENTORY §5 items 1, 2, 9): l_n = loss(z_n, y_n) is the per-sample loss and
the batch loss is ``scale * sum_n l_n`` with scale 1/B (``reduction="mean"``) or 1 (``"sum"``).
Per-sample gradients are gradients of l_n, unscaled. Hessian, GGN and both Fishers carry the
batch loss's scale, or the one named by ``scale`` ("mean": 1/B, "sum": 1) where a function
takes it. Dense matrices index ``flatten(params)`` (row-major leaves, key order); ``names``
restricts a matrix or a set of per-sample gradients to those parameters, in the order given.
The module's buffers (BatchNorm running statistics) are never updated: they are passed as
copies whenever a module that owns buffers is in training mode (its forward may write them).

Called eagerly (outside torch.func transforms), `gradient` and ``hvp(mode="reverse")`` run
on torch.autograd (one backward; a double backward), which avoids the fixed per-call cost of
the torch.func transforms; inside a transform they fall back to ``grad`` and ``vjp``. When
``params`` are the module's own parameters (the same tensors, all requiring grad) the module
is called directly, without ``functional_call``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vjp, vmap

from torchimpl.curvature.model import ModelBatch
from torchimpl.problems.network import LOSSES, Gaussian
from torchimpl.tree import Tree, flatten, unflatten

SCALES = ("mean", "sum")
HVP_MODES = ("forward", "reverse")
PER_SAMPLE_METHODS = ("vmap", "loop")


def likelihood(mb: ModelBatch):
    """The loss of ``mb`` as the torch problems define it (value, out_hess, probs, draw)."""
    return LOSSES[mb.loss]


def check_per_sample(mb: ModelBatch) -> None:
    """Per-sample quantities need per-sample-separable layers: train-mode BatchNorm couples
    the samples of a batch (INVENTORY §5 item 6)."""
    for name, module in mb.module.named_modules():
        if couples(module):
            raise coupling_error(name)


def couples(module: nn.Module) -> bool:
    """True for a layer that couples the samples of a batch (train-mode BatchNorm)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training


def coupling_error(name: str) -> ValueError:
    return ValueError(f"per-sample quantities are undefined with train-mode BatchNorm ({name!r} "
                      "couples the samples of a batch); call module.eval() first")


def scale_factor(mb: ModelBatch, B: int, scale: str | None = None) -> float:
    """1/B ("mean") or 1 ("sum"); ``scale=None`` takes the batch loss's reduction."""
    scale = mb.reduction if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"Invalid scale: {scale!r}; allowed: {SCALES}")
    return 1.0 / B if scale == "mean" else 1.0


def outputs(mb: ModelBatch, params: Tree, x: torch.Tensor) -> torch.Tensor:
    """z = module(x) at ``params`` (buffers copied if the forward may update them)."""
    return call(mb.module, params, x)


def call(module: nn.Module, params: Tree, x: torch.Tensor) -> torch.Tensor:
    """``functional_call`` of ``module`` at ``params`` on x, with copies of its buffers unless
    they are frozen (`buffers_frozen`)."""
    if buffers_frozen(module):
        return functional_call(module, dict(params), (x,))
    buffers = {k: b.clone() for k, b in module.named_buffers()}
    return functional_call(module, (dict(params), buffers), (x,))


def buffers_frozen(module: nn.Module) -> bool:
    """True when no module that owns buffers is in training mode: the torch layers update
    buffers (running statistics) only in training mode, so the forward leaves them as they are."""
    return not any(m.training and m._buffers for m in module.modules())


def in_transform() -> bool:
    """True inside a torch.func transform (vmap, grad, jvp, ...): torch.autograd cannot be
    used on its tensors."""
    return torch._C._functorch.peek_interpreter_stack() is not None


def graph(mb: ModelBatch, params: Tree) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(leaves, z): leaves requiring grad that stand for ``params`` and the outputs z at them,
    recorded by torch.autograd (eager). The module is called directly when it can (`direct`)."""
    with torch.enable_grad():
        if direct(mb.module, params):
            return dict(params), mb.module(mb.x)
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        return leaves, outputs(mb, leaves, mb.x)


def direct(module: nn.Module, params: Tree) -> bool:
    """True when ``module(x)`` is the forward at ``params``, with a graph to every parameter and
    no buffer written: ``params`` holds exactly the module's parameters (the same tensors, by
    name), each requiring grad, and its buffers are frozen (`buffers_frozen`). One walk over the
    submodules (their ``_parameters`` and ``_buffers`` tables), as this runs on every call."""
    count = 0
    for prefix, m in module.named_modules():
        if m.training and m._buffers:
            return False
        for local, p in m._parameters.items():
            if p is None:
                continue
            count += 1
            if params.get(f"{prefix}.{local}" if prefix else local) is not p or not p.requires_grad:
                return False
    return count == len(params)


BATCHED = ("ce", "mse", "mse_half")
"""Losses whose ``value`` works on a whole batch: ce row-wise (B,), the Gaussian ones summing
every entry of (B, C); bce's value reads z[0] of one sample and is vmapped."""


def summed_loss(mb: ModelBatch, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """sum_n l_n at outputs z (B, ...), labels ``y`` (default the data's), computed on the whole
    batch: samples do not couple, so its gradient w.r.t. z_n (or any layer output of sample n)
    is that of l_n alone."""
    value = likelihood(mb).value
    y = mb.y if y is None else y
    return (value(z, y) if mb.loss in BATCHED else vmap(value)(z, y)).sum()


def summed_loss_for_derivatives(mb: ModelBatch, z: torch.Tensor,
                                y: torch.Tensor | None = None) -> torch.Tensor:
    """sum_n l_n where only its derivatives are used (gradients, statistics, HVPs): for "ce"
    the fused ``F.cross_entropy``, whose derivatives p - e_y and diag(p) - p p^T are formed
    as accurately as `summed_loss`'s (its value loses ~eps/loss relative accuracy when the loss
    is tiny, which no derivative sees); one fused op instead of ~10 matters at small sizes."""
    if mb.loss != "ce":
        return summed_loss(mb, z, y)
    y = mb.y if y is None else y
    return F.cross_entropy(z, y.long(), reduction="sum")  # y holds classes, never probabilities


def _output_one(mb: ModelBatch, params: Tree, x: torch.Tensor) -> torch.Tensor:
    return outputs(mb, params, x.unsqueeze(0))[0]


def _loss_one(mb: ModelBatch, params: Tree, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return likelihood(mb).value(_output_one(mb, params, x), y)


def per_sample_losses(params: Tree, mb: ModelBatch, y: torch.Tensor | None = None):
    """l_n (B,), with labels ``y`` in place of the data's."""
    z = outputs(mb, params, mb.x)
    return vmap(likelihood(mb).value)(z, mb.y if y is None else y)


def loss(params: Tree, mb: ModelBatch) -> torch.Tensor:
    """The batch loss scale * sum_n l_n."""
    return summed_loss(mb, outputs(mb, params, mb.x)) * scale_factor(mb, mb.x.shape[0])


def gradient(params: Tree, mb: ModelBatch) -> dict[str, torch.Tensor]:
    """The gradient of the batch loss (one backward when eager, ``grad`` in a transform)."""
    if in_transform():
        return grad(loss)(dict(params), mb)
    leaves, z = graph(mb, params)
    total = summed_loss_for_derivatives(mb, z) * scale_factor(mb, mb.x.shape[0])
    return _grad(total, leaves)


def _grad(out: torch.Tensor | Sequence[torch.Tensor], leaves: dict[str, torch.Tensor],
          grad_outputs: Sequence[torch.Tensor] | None = None,
          create_graph: bool = False) -> dict[str, torch.Tensor]:
    """torch.autograd.grad of ``out`` w.r.t. the leaves, zeros where they are unused."""
    grads = torch.autograd.grad(out, list(leaves.values()), grad_outputs, create_graph=create_graph,
                                allow_unused=True, materialize_grads=True)
    return dict(zip(leaves, grads, strict=True))


def _split(params: Tree, names: Sequence[str] | None) -> tuple[dict, dict]:
    """(the parameters in ``names``, in that order; the others)."""
    if names is None:
        return dict(params), {}
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"names {unknown} are not parameters; known: {list(params)}")
    return {n: params[n] for n in names}, {k: v for k, v in params.items() if k not in names}


def per_sample_grads(
    params: Tree,
    mb: ModelBatch,
    method: str = "vmap",
    names: Sequence[str] | None = None,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """g_n = dl_n/dtheta as a mapping name -> (B, *shape), by ``vmap(grad)`` (the oracle) or
    by a Python loop over the samples (``method="loop"``); ``y`` replaces the data labels."""
    if method not in PER_SAMPLE_METHODS:
        raise ValueError(f"Invalid method: {method!r}; allowed: {PER_SAMPLE_METHODS}")
    check_per_sample(mb)
    sub, rest = _split(params, names)
    y = mb.y if y is None else y

    def loss_one(sub: Tree, x: torch.Tensor, y_n: torch.Tensor) -> torch.Tensor:
        return _loss_one(mb, {**rest, **sub}, x, y_n)

    if method == "vmap":
        return vmap(grad(loss_one), in_dims=(None, 0, 0))(sub, mb.x, y)
    rows = [grad(loss_one)(sub, mb.x[n], y[n]) for n in range(mb.x.shape[0])]
    return {k: torch.stack([row[k] for row in rows]) for k in sub}


def flat_rows(tree: Tree, lead: int = 1) -> torch.Tensor:
    """Leaves with ``lead`` leading dims -> (*lead_shape, P) in key order."""
    return torch.cat([v.reshape(*v.shape[:lead], -1) for v in tree.values()], dim=-1)


def hvp(params: Tree, mb: ModelBatch, v: Tree, mode: str = "forward") -> dict[str, torch.Tensor]:
    """H v of the batch loss: forward-over-reverse ``jvp(grad)`` or reverse-over-reverse, the
    gradient of g^T v (``mode="reverse"``: a double backward by torch.autograd when eager, the
    ``vjp`` of ``grad`` inside a transform; H is symmetric)."""
    if mode not in HVP_MODES:
        raise ValueError(f"Invalid mode: {mode!r}; allowed: {HVP_MODES}")
    params, v = dict(params), {k: v[k] for k in params}
    if mode == "reverse" and not in_transform():
        return _double_backward(params, mb, v)

    def g(p: Tree) -> dict[str, torch.Tensor]:
        return gradient(p, mb)

    if mode == "forward":
        return jvp(g, (params,), (v,))[1]
    return vjp(g, params)[1](v)[0]


def _double_backward(params: Tree, mb: ModelBatch, v: Tree) -> dict[str, torch.Tensor]:
    """H v = d(g^T v)/dtheta: the gradient g with its graph, then its vjp with v."""
    with torch.enable_grad():
        leaves, z = graph(mb, params)
        g = _grad(summed_loss_for_derivatives(mb, z) * scale_factor(mb, mb.x.shape[0]), leaves,
                  create_graph=True)
        keys = [k for k in g if g[k].requires_grad]  # the others do not depend on theta
        if not keys:
            return {k: torch.zeros_like(t) for k, t in g.items()}
        return _grad([g[k] for k in keys], leaves, [v[k] for k in keys])


def hessian(params: Tree, mb: ModelBatch, chunk_size: int | None = None) -> torch.Tensor:
    """Dense H (P, P) of the batch loss over ``flatten(params)`` (small models): the
    forward-over-reverse HVP of every unit direction, vmapped in chunks of ``chunk_size``
    (``torch.func.hessian``, forward over reverse of the whole Jacobian, was seen to differ
    from the HVPs through LayerNorm, torch 2.13), symmetrised."""
    params = dict(params)
    theta = flatten(params)
    flat_grad = grad(lambda t: loss(unflatten(t, params), mb))

    def column(u: torch.Tensor) -> torch.Tensor:
        return jvp(flat_grad, (theta,), (u,))[1]

    eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
    H = vmap(column, chunk_size=chunk_size)(eye)
    return 0.5 * (H + H.T)


def jac_out(params: Tree, mb: ModelBatch, names: Sequence[str] | None = None) -> torch.Tensor:
    """J_n = dz_n/dtheta (B, C, P) over ``names`` (default all)."""
    check_per_sample(mb)
    sub, rest = _split(params, names)

    def z_one(sub: Tree, x: torch.Tensor) -> torch.Tensor:
        return _output_one(mb, {**rest, **sub}, x)

    return flat_rows(vmap(jacrev(z_one), in_dims=(None, 0))(sub, mb.x), 2)


def out_hess(params: Tree, mb: ModelBatch) -> torch.Tensor:
    """Lambda_n = d^2 l / dz^2 (B, C, C): diag(p) - p p^T (ce), sigma(1 - sigma) (bce), I
    (mse_half), 2I (mse)."""
    return likelihood(mb).out_hess(outputs(mb, params, mb.x))


def _sandwich(J: torch.Tensor, Lam: torch.Tensor) -> torch.Tensor:
    P = J.shape[-1]
    return J.reshape(-1, P).T @ (Lam @ J).reshape(-1, P)


def ggn(params: Tree, mb: ModelBatch, names: Sequence[str] | None = None) -> torch.Tensor:
    """G = scale sum_n J_n^T Lambda_n J_n (002 §2.4.3 GGN display), dense over ``names``."""
    J = jac_out(params, mb, names)
    return _sandwich(J, out_hess(params, mb)) * scale_factor(mb, J.shape[0])


def ggn_vp(params: Tree, mb: ModelBatch, v: Tree) -> dict[str, torch.Tensor]:
    """G v = scale sum_n J_n^T Lambda_n (J_n v): one jvp, then one vjp of the outputs."""
    params, v = dict(params), {k: v[k] for k in params}

    def z_of(p: Tree) -> torch.Tensor:
        return outputs(mb, p, mb.x)

    z, Jv = jvp(z_of, (params,), (v,))
    LJv = (likelihood(mb).out_hess(z) @ Jv.unsqueeze(-1)).squeeze(-1)
    return vjp(z_of, params)[1](LJv * scale_factor(mb, z.shape[0]))[0]


def sample_labels(
    params: Tree, mb: ModelBatch, K: int, generator: torch.Generator
) -> torch.Tensor:
    """K labels per input drawn from the model, (K, B) classes or (K, B, C) targets."""
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"Invalid mc_samples: {K!r}; must be an integer >= 1")
    z = outputs(mb, params, mb.x).detach()
    return likelihood(mb).draw(z, generator, K).to(mb.y.dtype)


def label_support(params: Tree, mb: ModelBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Every label with its model probability, (labels (L, B), weights (L, B)): the classes
    for ce, {0, 1} for bce; a ValueError for the Gaussian (continuous) likelihoods."""
    law = likelihood(mb)
    if isinstance(law, Gaussian):
        raise ValueError(
            f"exact enumeration of labels needs a categorical likelihood (ce, bce); loss "
            f"{mb.loss!r} is Gaussian: use sampled labels"
        )
    p = law.probs(outputs(mb, params, mb.x)).T
    labels = torch.arange(p.shape[0], device=p.device)[:, None].expand_as(p)
    return labels.to(mb.y.dtype), p


def _grads_at_labels(params, mb, labels, names) -> torch.Tensor:
    """Per-sample gradients (L, B, P) at each row of ``labels`` (L, B, ...)."""
    return torch.stack([flat_rows(per_sample_grads(params, mb, names=names, y=y))
                        for y in labels])


def fisher_true(
    params: Tree,
    mb: ModelBatch,
    mc_samples: int | None = None,
    generator: torch.Generator | None = None,
    labels: torch.Tensor | None = None,
    scale: str | None = None,
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """F = scale sum_n E_{y ~ p_theta(.|x_n)}[g_n(y) g_n(y)^T] over ``names``.

    Exact: enumeration over the classes (ce, bce), or the closed form J^T Lambda J for the
    Gaussian likelihoods (mse, mse_half: E over y of the residual outer product is Lambda).
    Monte Carlo (``mc_samples=K``): the mean over K labels per input, given as ``labels``
    (K, B, ...) or drawn from ``generator``.
    """
    B = mb.x.shape[0]
    factor = scale_factor(mb, B, scale)
    if mc_samples is None:
        if labels is not None:
            raise ValueError("labels are Monte-Carlo draws: they need mc_samples")
        if isinstance(likelihood(mb), Gaussian):
            return _sandwich(jac_out(params, mb, names), out_hess(params, mb)) * factor
        support, weights = label_support(params, mb)
        g = _grads_at_labels(params, mb, support, names)
        return gram(g, weights[..., None] * g) * factor
    labels = mc_labels(params, mb, mc_samples, generator, labels)
    g = _grads_at_labels(params, mb, labels, names)
    return gram(g, g) * (factor / mc_samples)


def mc_labels(params, mb, K, generator, labels) -> torch.Tensor:
    """The K label draws (K, B, ...): given, or drawn from ``generator``."""
    if labels is None:
        if generator is None:
            raise ValueError("Monte-Carlo labels need a generator (or a seed) or drawn labels")
        return sample_labels(params, mb, K, generator)
    labels = torch.as_tensor(labels, device=mb.x.device)
    if labels.shape[:2] != (K, mb.x.shape[0]) or labels.shape[2:] != mb.y.shape[1:]:
        raise ValueError(f"drawn labels must have shape (mc_samples={K}, B={mb.x.shape[0]}"
                         f"{', ' if mb.y.dim() > 1 else ''}{', '.join(map(str, mb.y.shape[1:]))})"
                         f", got {tuple(labels.shape)}")
    return labels.to(mb.y.dtype)


def fisher_emp(
    params: Tree, mb: ModelBatch, scale: str | None = None, names: Sequence[str] | None = None
) -> torch.Tensor:
    """F_emp = scale sum_n g_n g_n^T with the data labels, over ``names``."""
    g = flat_rows(per_sample_grads(params, mb, names=names))
    return (g.T @ g) * scale_factor(mb, g.shape[0], scale)


def gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over all leading indices i of a_i b_i^T, for a, b (..., P)."""
    P = a.shape[-1]
    return a.reshape(-1, P).T @ b.reshape(-1, P)


def seeded(seed: Any, device: Any = "cpu") -> torch.Generator:
    """A torch generator seeded with the integer ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Invalid seed: {seed!r}; must be an integer >= 0")
    return torch.Generator(device=device).manual_seed(seed)

