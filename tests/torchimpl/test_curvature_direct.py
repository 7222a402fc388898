"""The module's own parameters (called directly) and copies of them (functional_call) give the
same results; buffers are never written; the reverse HVP falls back inside a transform."""
import pytest
import torch
from torch import nn
from torch.func import vmap

from torchimpl import curvature as cv
from torchimpl.tree import flatten

F64 = torch.float64


def _mb(loss="ce", bn=False, B=5):
    torch.manual_seed(0)
    body = [nn.Conv2d(2, 3, 3, padding=1), *([nn.BatchNorm2d(3)] if bn else [])]
    module = nn.Sequential(*body, nn.Tanh(), nn.Flatten(), nn.Linear(48, 4), nn.Tanh(),
                           nn.Linear(4, 1 if loss == "bce" else 3)).to(F64)
    x = torch.randn(B, 2, 4, 4, dtype=F64)
    y = {"ce": torch.randint(0, 3, (B,)), "bce": torch.randint(0, 2, (B,)).to(F64),
         "mse": torch.randn(B, 3, dtype=F64)}[loss]
    return cv.ModelBatch(module, x, y, loss, "mean")


def _close(a, b):
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", ["ce", "bce", "mse"])
def test_own_parameters_equal_copies(loss):
    mb = _mb(loss)
    own = dict(mb.module.named_parameters())
    copies = {k: p.detach().clone() for k, p in own.items()}
    assert cv.autodiff.direct(mb.module, own) and not cv.autodiff.direct(mb.module, copies)
    v = {k: torch.randn_like(p) for k, p in own.items()}
    for fn in (cv.diag_ef, cv.per_sample_grads_fast, cv.gradient,
               lambda p, m: cv.hvp(p, m, v, mode="reverse")):
        _close(fn(own, mb), fn(copies, mb))
    _close(cv.gradient(own, mb), {k: g.mean(0) for k, g in cv.per_sample_grads(own, mb).items()})
    _close(cv.hvp(own, mb, v, mode="reverse"), cv.hvp(copies, mb, v, mode="forward"))
    ka, kb = cv.kfac_factors(own, mb), cv.kfac_factors(copies, mb)
    for name in kb:
        _close(ka[name], kb[name])
    assert all(p.grad is None for p in own.values())


def test_buffers_are_never_written():
    mb = _mb(bn=True)
    bn = mb.module[1]
    before = {k: b.clone() for k, b in mb.module.named_buffers()}
    own = dict(mb.module.named_parameters())
    v = {k: torch.randn_like(p) for k, p in own.items()}
    assert not cv.autodiff.direct(mb.module, own)  # train-mode BN owns buffers
    H = cv.hessian(own, mb)
    for mode in ("forward", "reverse"):
        torch.testing.assert_close(flatten(cv.hvp(own, mb, v, mode=mode)), H @ flatten(v))
    cv.gradient(own, mb)
    for k, b in mb.module.named_buffers():
        assert torch.equal(b, before[k]), k
    bn.eval()
    assert cv.autodiff.direct(mb.module, own)
    _close(cv.diag_ef(own, mb), cv.diag_ef({k: p.detach().clone() for k, p in own.items()}, mb))


def test_frozen_parameter_is_not_direct_and_still_gets_statistics():
    mb = _mb()
    own = dict(mb.module.named_parameters())
    mb.module[0].weight.requires_grad_(False)
    assert not cv.autodiff.direct(mb.module, own)
    copies = {k: p.detach().clone() for k, p in own.items()}
    _close(cv.diag_ef(own, mb), cv.diag_ef(copies, mb))


def test_reverse_hvp_inside_vmap_falls_back_to_vjp():
    mb = _mb("mse", B=3)
    params = {k: p.detach().clone() for k, p in mb.module.named_parameters()}
    H = cv.hessian(params, mb)
    V = torch.randn(2, H.shape[0], dtype=F64)

    def hv(u):
        return flatten(cv.hvp(params, mb, cv.autodiff.unflatten(u, params), mode="reverse"))

    torch.testing.assert_close(vmap(hv)(V), V @ H)


def test_summed_loss_equals_the_sum_of_per_sample_losses():
    for loss in ("ce", "bce", "mse"):
        mb = _mb(loss)
        params = dict(mb.module.named_parameters())
        z = cv.autodiff.outputs(mb, params, mb.x)
        torch.testing.assert_close(cv.autodiff.summed_loss(mb, z),
                                   cv.per_sample_losses(params, mb).sum(), rtol=1e-15, atol=0)
