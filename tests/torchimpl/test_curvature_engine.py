"""The curvature engine `torchimpl.curvature` (INVENTORY §3.1-§3.3, §5 items 3, 4, 6, 7).

Oracles: the three per-sample routes agree (fast path from layer statistics, vmap(grad), a
Python loop) on Hypothesis-drawn MLPs, CNNs (kernel, stride, padding, dilation, groups, bias
drawn) and norm models (LayerNorm, GroupNorm, eval BatchNorm); HVPs against the dense Hessian;
GGN = H for a model linear in theta; the Kronecker layout vec(g_n) = h_bar_n ⊗ s_n and the
per-sample EF block identity; K-FAC where it is provably exact (N = 1 with exact-expectation
labels; one linear layer with mse_half); the Monte-Carlo true Fisher by a CI test at
alpha = 1e-3; train-mode BatchNorm rejected. float64 throughout, rtol 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm
from torch import nn

from torchimpl import curvature as cv
from torchimpl.curvature.autodiff import flat_rows
from torchimpl.tree import flatten, unflatten

RTOL, ATOL = 1e-10, 1e-12
ALPHA = 1e-3
F64 = torch.float64


def close(a, b, rtol=RTOL):
    a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
    scale = max(float(b.abs().max()), 1.0)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert float((a - b).abs().max()) <= rtol * scale + ATOL, float((a - b).abs().max())


def _labels(z_dim: int, B: int, loss: str, g: torch.Generator) -> torch.Tensor:
    if loss == "ce":
        return torch.randint(0, z_dim, (B,), generator=g)
    if loss == "bce":
        return torch.randint(0, 2, (B,), generator=g).to(F64)
    return torch.randn(B, z_dim, generator=g, dtype=F64)


def _model(family: str, draw: dict, seed: int) -> cv.ModelBatch:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module, x = _build(family, draw, g)
        module = module.to(F64).eval()
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g, dtype=F64))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g, dtype=F64))
            if isinstance(m, nn.LayerNorm | nn.GroupNorm | nn.BatchNorm2d):
                m.weight.data.add_(0.3 * torch.randn(m.weight.shape, generator=g, dtype=F64))
                m.bias.data.add_(0.3 * torch.randn(m.bias.shape, generator=g, dtype=F64))
    loss = draw["loss"]
    C = 1 if loss == "bce" else 3
    head = nn.Linear(module(x).shape[-1], C, dtype=F64)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        head.reset_parameters()
    module.append(head)
    return cv.ModelBatch(module, x, _labels(C, x.shape[0], loss, g), loss, draw["reduction"])


def _build(family: str, d: dict, g: torch.Generator):
    B = d["B"]
    if family == "mlp":
        layers = [nn.Linear(3, 4, bias=d["bias"]), nn.Tanh()]
        if d["tokens"]:
            return nn.Sequential(*layers, nn.Flatten()), torch.randn(B, 2, 3, generator=g,
                                                                     dtype=F64)
        return nn.Sequential(*layers, nn.Linear(4, 4), nn.Sigmoid()), torch.randn(
            B, 3, generator=g, dtype=F64)
    if family == "cnn":
        G = d["groups"]
        conv = nn.Conv2d(2 * G, 2 * G, d["kernel"], stride=d["stride"], padding=d["padding"],
                         dilation=d["dilation"], groups=G, bias=d["bias"])
        x = torch.randn(B, 2 * G, 6, 5, generator=g, dtype=F64)
        return nn.Sequential(conv, nn.Tanh(), nn.Flatten()), x
    norm_layer = d["norm"]
    if norm_layer == "layer":
        return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Tanh()), torch.randn(
            B, 3, generator=g, dtype=F64)
    body = nn.GroupNorm(2, 4) if norm_layer == "group" else nn.BatchNorm2d(4)
    x = torch.randn(B, 2, 4, 4, generator=g, dtype=F64)
    return nn.Sequential(nn.Conv2d(2, 4, 3), body, nn.Tanh(), nn.Flatten()), x


DRAWS = st.fixed_dictionaries({
    "B": st.integers(min_value=1, max_value=4),
    "loss": st.sampled_from(["ce", "bce", "mse", "mse_half"]),
    "reduction": st.sampled_from(["mean", "sum"]),
    "bias": st.booleans(),
    "tokens": st.booleans(),
    "groups": st.sampled_from([1, 2]),
    "kernel": st.sampled_from([1, 2, 3]),
    "stride": st.sampled_from([1, 2]),
    "padding": st.sampled_from([0, 1]),
    "dilation": st.sampled_from([1, 2]),
    "norm": st.sampled_from(["layer", "group", "batch"]),
})
FAMILIES = st.sampled_from(["mlp", "cnn", "norm"])
SEED = st.integers(min_value=0, max_value=2**31 - 1)


def _params(mb: cv.ModelBatch) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in mb.module.named_parameters()}


@given(FAMILIES, DRAWS, SEED)
def test_fast_path_equals_vmap_equals_loop(family, draw, seed):
    mb = _model(family, draw, seed)
    params = _params(mb)
    vm = cv.per_sample_grads(params, mb)
    for other in (cv.per_sample_grads(params, mb, method="loop"),
                  cv.per_sample_grads_fast(params, mb)):
        close(flat_rows(other), flat_rows(vm))
    close(flat_rows(vm).mean(0) * (mb.x.shape[0] if mb.reduction == "sum" else 1),
          flatten(cv.gradient(params, mb)))
    dense = cv.fisher_emp(params, mb)
    close(flatten(cv.diag_ef(params, mb)), torch.diagonal(dense))


@given(FAMILIES, DRAWS, SEED, st.sampled_from(["forward", "reverse"]))
def test_hvp_modes_agree_with_dense_hessian(family, draw, seed, mode):
    mb = _model(family, {**draw, "B": min(draw["B"], 2)}, seed)
    params = _params(mb)
    H = cv.hessian(params, mb)
    torch.testing.assert_close(H, H.T, rtol=0, atol=1e-13)
    v = {k: torch.randn(p.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
         for k, p in params.items()}
    close(flatten(cv.hvp(params, mb, v, mode=mode)), H @ flatten(v))
    close(flatten(cv.ggn_vp(params, mb, v)), cv.ggn(params, mb) @ flatten(v))


@given(st.sampled_from(["ce", "bce", "mse", "mse_half"]), SEED)
def test_ggn_equals_hessian_for_a_model_linear_in_theta(loss, seed):
    g = torch.Generator().manual_seed(seed)
    C = 1 if loss == "bce" else 3
    module = nn.Sequential(nn.Linear(3, C)).to(F64)
    x = torch.randn(5, 3, generator=g, dtype=F64)
    mb = cv.ModelBatch(module, x, _labels(C, 5, loss, g), loss)
    params = _params(mb)
    close(cv.ggn(params, mb), cv.hessian(params, mb))


def _colmajor(W: torch.Tensor) -> torch.Tensor:
    """vec of the documents: column stacking (INVENTORY §5 item 3)."""
    return W.T.reshape(-1)


def _linear_case(seed: int, B: int = 4, loss: str = "ce"):
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).to(F64)
    x = torch.randn(B, 3, generator=g, dtype=F64)
    return cv.ModelBatch(module, x, _labels(3, B, loss, g), loss)


def _augmented(grads, name: str) -> torch.Tensor:
    """Per-sample [W | b] (B, out, in+1) of Linear layer ``name``."""
    return torch.cat([grads[f"{name}.weight"], grads[f"{name}.bias"][..., None]], dim=-1)


def _block_colmajor(mb, params, name, matrix_fn):
    """The block of a dense matrix over ``name``'s [W | b], in column-major vec order."""
    names = [f"{name}.weight", f"{name}.bias"]
    M = matrix_fn(names)
    out, inp = params[names[0]].shape
    # flat order: W row-major (o, i), then b (o); column-major vec index: j * out + o
    index = torch.empty(out * (inp + 1), dtype=torch.long)
    pos = torch.arange(out * inp).reshape(out, inp)
    index[(torch.arange(inp)[None, :] * out + torch.arange(out)[:, None]).reshape(-1)] = \
        pos.reshape(-1)
    index[inp * out + torch.arange(out)] = out * inp + torch.arange(out)
    return M[index][:, index]


@given(SEED)
def test_vec_of_per_sample_gradient_is_h_bar_kron_s(seed):
    mb = _linear_case(seed)
    params = _params(mb)
    stats = cv.layer_stats(params, mb)
    grads = cv.per_sample_grads(params, mb)
    for name in ("0", "2"):
        G = _augmented(grads, name)
        for n in range(mb.x.shape[0]):
            close(_colmajor(G[n]), torch.kron(stats[name]["h_bar"][n], stats[name]["s"][n]))


@given(SEED)
def test_mean_of_kronecker_products_is_the_exact_ef_block(seed):
    mb = _linear_case(seed)
    params = _params(mb)
    stats = cv.layer_stats(params, mb)
    for name in ("0", "2"):
        h, s = stats[name]["h_bar"], stats[name]["s"]
        kron = sum(torch.kron(torch.outer(h[n], h[n]), torch.outer(s[n], s[n]))
                   for n in range(h.shape[0])) / h.shape[0]
        block = _block_colmajor(mb, params, name,
                                lambda names: cv.fisher_emp(params, mb, names=names))
        close(kron, block)


@given(SEED)
def test_kfac_is_the_exact_fisher_block_for_one_sample(seed):
    """N = 1: h_bar does not depend on the label, so E_y[(h h^T) ⊗ (s s^T)] = H ⊗ S."""
    mb = _linear_case(seed, B=1)
    params = _params(mb)
    factors = cv.kfac_factors(params, mb, labels="exact_expectation")
    for name in ("0", "2"):
        block = _block_colmajor(mb, params, name,
                                lambda names: cv.fisher_true(params, mb, names=names))
        close(torch.kron(factors[name]["H"], factors[name]["S"]), block)


@given(SEED, st.integers(min_value=1, max_value=6))
def test_kfac_is_the_exact_ggn_of_one_linear_layer_with_mse(seed, B):
    """One linear layer, mse_half: G = mean_n (h h^T) ⊗ I = H ⊗ Lambda exactly (any N)."""
    g = torch.Generator().manual_seed(seed)
    module = nn.Sequential(nn.Linear(3, 2)).to(F64)
    x = torch.randn(B, 3, generator=g, dtype=F64)
    mb = cv.ModelBatch(module, x, torch.randn(B, 2, generator=g, dtype=F64), "mse_half")
    params = _params(mb)
    H = cv.kfac_factors(params, mb)["0"]["H"]
    block = _block_colmajor(mb, params, "0", lambda names: cv.ggn(params, mb, names=names))
    close(torch.kron(H, torch.eye(2, dtype=F64)), block)


def test_monte_carlo_true_fisher_converges_to_exact():
    seed, K = 20240611, 400
    mb = _linear_case(7, B=3)
    params = _params(mb)
    exact = cv.fisher_true(params, mb)
    draws = cv.sample_labels(params, mb, K, torch.Generator().manual_seed(seed))
    F_k = torch.stack([cv.fisher_true(params, mb, 1, labels=draws[k:k + 1]) for k in range(K)])
    mean = F_k.mean(0)
    close(mean, cv.fisher_true(params, mb, K, labels=draws))
    se = F_k.std(0, correction=1) / K**0.5
    z = norm.ppf(1 - ALPHA / (2 * exact.numel()))
    assert bool(((mean - exact).abs() <= z * se + 1e-12).all()), f"seed={seed}"


def test_train_mode_batchnorm_rejects_per_sample_quantities():
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)).to(F64)
    mb = cv.ModelBatch(module.train(), torch.randn(4, 3, dtype=F64), torch.tensor([0, 1, 2, 0]))
    params = _params(mb)
    for fn in (cv.per_sample_grads, cv.layer_stats, cv.diag_ef, cv.kfac_factors):
        with pytest.raises(ValueError, match="train-mode BatchNorm"):
            fn(params, mb)


def test_conv_statistics_layout_matches_unfold_and_the_gradient():
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(4, 6, (2, 3), stride=(2, 1), padding=1, dilation=(1, 2), groups=2).to(F64)
    module = nn.Sequential(conv, nn.Flatten()).to(F64)
    x = torch.randn(2, 4, 5, 6, generator=g, dtype=F64)
    mb = cv.ModelBatch(module, x, torch.randn(2, module(x).shape[1], generator=g, dtype=F64),
                       "mse_half")
    st_ = cv.layer_stats(_params(mb), mb)["0"]
    T = module(x).shape[1] // 6
    assert st_["h_bar"].shape == (2, 2, T, 2 * 2 * 3 + 1)
    assert st_["s"].shape == (2, 2, T, 3)
    W = conv.weight.reshape(2, 3, -1)  # per group (C_out/G, C_in/G*kh*kw), unfold order
    a = torch.einsum("ngtk,gok->ngto", st_["h_bar"][..., :-1], W) + conv.bias.reshape(2, 1, 3)
    close(a, st_["a"])


def test_norm_factors_blocks_and_printed_factors():
    mb = _model("norm", {"B": 3, "loss": "ce", "reduction": "mean", "norm": "group"}, 5)
    params = _params(mb)
    out = cv.norm_factors(params, mb)["1"]
    names = ["1.weight", "1.bias"]
    g = cv.per_sample_grads(params, mb, names=names)
    close(out["EF_nu"], g[names[0]].T @ g[names[0]] / 3)
    F = cv.fisher_true(params, mb, names=names)
    close(out["F_nu_beta"], F[:4, 4:])
    st_ = cv.layer_stats(params, mb)["1"]
    rows = st_["h"].reshape(-1, 4)
    close(out["H_nu"], rows.T @ rows / rows.shape[0])
    assert out["H_beta"].shape == (1, 1) and out["S_D"].shape == (4,)
    x_hat = cv.norm_factors(params, mb, "normalized")["1"]["H_nu"]
    close(x_hat, st_["x_hat"].reshape(-1, 4).T @ st_["x_hat"].reshape(-1, 4) / rows.shape[0])


def test_layer_stats_of_token_inputs_flatten():
    mb = _model("mlp", {"B": 2, "loss": "mse", "reduction": "mean", "bias": True,
                        "tokens": True}, 11)
    params = _params(mb)
    st3 = cv.layer_stats(params, mb)["0"]
    st2 = cv.layer_stats(params, mb, token_flatten=True)["0"]
    assert st3["h_bar"].shape == (2, 2, 4) and st2["h_bar"].shape == (4, 4)
    close(st2["s"], st3["s"].reshape(4, -1))
    f = cv.kfac_factors(params, mb, token_flatten=True)["0"]
    close(f["H"], st2["h_bar"].T @ st2["h_bar"] / 4)


def test_timing_and_bytes_helpers():
    seconds = cv.time_call(lambda: torch.ones(3).sum(), repeats=5, warmup=1, threads=1)
    assert 0 < seconds < 1
    state = {"state": {0: {"exp_avg": torch.zeros(3, 2), "step": torch.tensor(1.0)}}}
    assert cv.tensor_bytes(state) == 6 * 4 + 4
    assert np.isclose(cv.tensor_bytes([torch.zeros(2, dtype=F64)]), 16)


class _GroupNormChannelsLast(nn.GroupNorm):
    """GroupNorm applied to (B, T, C) inputs (channels last), as token models use it."""

    def forward(self, h):
        return super().forward(h.transpose(1, 2)).transpose(1, 2)


@given(SEED)
def test_channels_last_norm_layers_and_layernorm_hessian(seed):
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = nn.Sequential(nn.Linear(1, 3), _GroupNormChannelsLast(1, 3), nn.LayerNorm(3),
                               nn.Tanh(), nn.Flatten(), nn.Linear(6, 2)).to(F64)
    for m in (module[1], module[2]):
        m.weight.data.add_(0.3 * torch.randn(3, generator=g, dtype=F64))
    x = torch.randn(2, 2, 1, generator=g, dtype=F64)
    mb = cv.ModelBatch(module, x, torch.tensor([0, 1]), "ce")
    params = _params(mb)
    close(flat_rows(cv.per_sample_grads_fast(params, mb)),
          flat_rows(cv.per_sample_grads(params, mb)))
    assert cv.layer_stats(params, mb)["1"]["x_hat"].shape == (2, 2, 3)
    H = cv.hessian(params, mb)
    eye = torch.eye(H.shape[0], dtype=F64)
    columns = torch.stack([flatten(cv.hvp(params, mb, unflatten(e, params))) for e in eye])
    close(H, columns)
