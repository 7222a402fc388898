"""Torch problems (INVENTORY §1.1-§1.3, est:per_sample_grads, est:hvp, est:ggn, est:fisher_true,
est:layer_stats), checked on the torch side alone, float64.

Oracles: an independent plain-torch definition of the MLP loss (F.linear, torch's own
cross-entropy / BCE / squared error) differentiated by a per-sample autograd loop;
reverse-over-reverse HVPs with torch.autograd; closed forms of quadratics and linear models;
the facts G = H for models linear in theta and F = G for categorical likelihoods; Monte-Carlo
Fisher estimates inside a confidence interval at false-alarm rate ALPHA = 1e-3 (fixed seeds).
Agreement with the NumPy reference is tests/test_problem_agreement.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm
from torch import nn

import torchimpl.problems as tp
from torchimpl.problems.network import FeedForward
from torchimpl.problems.quadratic import (
    Quadratic,
    QuadraticFiniteSum,
    QuadraticNoisy,
    QuadraticSumOfQuadratics,
)
from torchimpl.tree import flatten, unflatten

F64, F32 = torch.float64, torch.float32
RTOL, ATOL = 1e-10, 1e-12
LOOP_RTOL = 1e-12  # INVENTORY est:per_sample_grads: agreement with a per-sample loop
ALPHA = 1e-3
Z = float(norm.isf(ALPHA / 2))
ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda a: a}


def close(actual, expected, rtol=RTOL, atol=ATOL) -> None:
    """Normwise: ||actual - expected|| <= rtol ||expected|| + atol."""
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    gap = float(torch.linalg.vector_norm(actual - expected))
    assert gap <= rtol * float(torch.linalg.vector_norm(expected)) + atol, gap


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def labels(loss: str, N: int, C: int, g: torch.Generator) -> torch.Tensor:
    if loss == "ce":
        return torch.randint(C, (N,), generator=g)
    if loss == "bce":
        return torch.randint(2, (N,), generator=g).to(F64)
    return torch.randn(N, C, generator=g, dtype=F64)


def mlp(
    seed=0,
    widths=(3, 4, 3),
    activation="tanh",
    loss="ce",
    bias=True,
    reduction="mean",
    l2=0.0,
    N=5,
    dtype=F64,
):
    """A FeedForward problem on Gaussian data and its parameters from init_params."""
    g = gen(seed)
    X = torch.randn(N, widths[0], generator=g, dtype=F64)
    y = labels(loss, N, widths[-1], g)
    problem = FeedForward(
        X.numpy(), y.numpy(), list(widths), activation, loss, bias, reduction, l2, dtype=dtype
    )
    return problem, problem.init_params(g)


def manual_losses(problem: FeedForward, params, X, y) -> torch.Tensor:
    """Per-sample losses of the MLP written out with plain torch ops: the independent oracle."""
    h, depth = X, len(problem.widths) - 1
    for layer in range(depth):
        a = F.linear(h, params[f"{2 * layer}.weight"], params.get(f"{2 * layer}.bias"))
        h = ACT[problem.activation](a) if layer < depth - 1 else a
    nll = {
        "ce": lambda: F.cross_entropy(h, y, reduction="none"),
        "bce": lambda: F.binary_cross_entropy_with_logits(h[:, 0], y, reduction="none"),
        "mse": lambda: ((h - y) ** 2).sum(-1),
        "mse_half": lambda: 0.5 * ((h - y) ** 2).sum(-1),
    }[problem.loss_name]()
    return nll + 0.5 * problem.l2 * sum((p**2).sum() for p in params.values())


def leaves(params):
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def random_tree(params, seed: int):
    g = gen(seed)
    return {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}


mlp_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "widths": st.lists(st.integers(1, 4), min_size=1, max_size=2).map(lambda w: (3, *w)),
        "activation": st.sampled_from(sorted(ACT)),
        "loss": st.sampled_from(["ce", "bce", "mse", "mse_half"]),
        "bias": st.booleans(),
        "reduction": st.sampled_from(["mean", "sum"]),
        "l2": st.sampled_from([0.0, 0.3]),
        "N": st.integers(1, 5),
    }
)


def build(case) -> tuple[FeedForward, dict]:
    """A problem from a case; the output width fits the loss (ce >= 2 classes, bce 1)."""
    out = {"ce": 3, "bce": 1, "mse": 2, "mse_half": 1}[case["loss"]]
    return mlp(**{**case, "widths": (*case["widths"], out)})


# -- per-sample gradients, HVPs, Hessian, layer statistics (random MLPs) --------------------


@given(mlp_cases)
def test_per_sample_grads_match_a_loop_and_average_to_the_gradient(case):
    problem, params = build(case)
    X, y = problem.X, problem.y
    G = problem.per_sample_grads(params)
    close(problem.per_sample_losses(params), manual_losses(problem, params, X, y), LOOP_RTOL)
    for n in range(X.shape[0]):
        theta = leaves(params)
        loss_n = manual_losses(problem, theta, X[n : n + 1], y[n : n + 1])[0]
        grads = torch.autograd.grad(loss_n, list(theta.values()))
        close(G[n], torch.cat([g.reshape(-1) for g in grads]), LOOP_RTOL)
    scale = 1.0 / X.shape[0] if case["reduction"] == "mean" else 1.0
    close(flatten(problem.grad(params)), scale * G.sum(0))
    close(problem.loss(params), scale * manual_losses(problem, params, X, y).sum())


@given(mlp_cases)
def test_hvp_forward_over_reverse_equals_reverse_over_reverse_and_dense_hessian(case):
    problem, params = build(case)
    v = random_tree(params, case["seed"] + 1)
    theta = leaves(params)
    g = torch.autograd.grad(problem.loss(theta), list(theta.values()), create_graph=True)
    gv = sum((gi * vi).sum() for gi, vi in zip(g, v.values(), strict=True))
    reverse = torch.cat([h.reshape(-1) for h in torch.autograd.grad(gv, list(theta.values()))])
    H = problem.hessian(params)
    forward = flatten(problem.hvp(params, v))
    close(forward, reverse)
    close(H @ flatten(v), reverse)
    close(H, H.T)


@given(mlp_cases)
def test_layer_stats_give_the_per_sample_weight_gradients(case):
    problem, params = build(case)
    G = unflatten_rows(problem.per_sample_grads(params), params)
    for i, stats in enumerate(problem.layer_stats(params)):
        W, b = params[f"{2 * i}.weight"], params.get(f"{2 * i}.bias")
        theta = W if b is None else torch.cat([W, b[:, None]], 1)  # [W | b] (INVENTORY §5.3)
        close(stats["a"], stats["h_bar"] @ theta.T)
        grad_theta = (
            G[f"{2 * i}.weight"]
            if b is None
            else torch.cat([G[f"{2 * i}.weight"], G[f"{2 * i}.bias"][:, :, None]], 2)
        )
        # 002 §2.1.4: per-sample gradient of theta_i = s h_bar^T, plus the ridge term
        outer = stats["s"][:, :, None] * stats["h_bar"][:, None, :]
        close(grad_theta, outer + problem.l2 * theta)


def unflatten_rows(G: torch.Tensor, like) -> dict[str, torch.Tensor]:
    return torch.func.vmap(lambda row: unflatten(row, like))(G)


def test_layer_stats_of_softmax_regression_are_the_closed_forms():
    """prob:softmax: h_bar = [x; 1], s = p - e_y (INVENTORY §1.2)."""
    problem, params = mlp(widths=(3, 4), activation="identity", N=6)
    (stats,) = problem.layer_stats(params)
    x, y = problem.X, problem.y
    p = torch.softmax(x @ params["0.weight"].T + params["0.bias"], -1)
    close(stats["h_bar"], torch.cat([x, torch.ones(6, 1, dtype=F64)], 1), 0, 0)
    close(stats["s"], p - F.one_hot(y, 4))


# -- curvature matrices --------------------------------------------------------------------

LINEAR_MODELS = [  # (widths, loss, bias, l2): models linear in theta
    ((3, 4), "ce", True, 0.0),  # prob:softmax
    ((3, 1), "mse_half", False, 0.0),  # prob:lstsq
    ((3, 1), "bce", True, 0.2),  # prob:logreg with ridge
    ((3, 2), "mse", True, 0.1),
]


@pytest.mark.parametrize("widths, loss, bias, l2", LINEAR_MODELS)
def test_ggn_equals_hessian_for_models_linear_in_theta(widths, loss, bias, l2):
    problem, params = mlp(widths=widths, loss=loss, bias=bias, l2=l2, activation="identity")
    close(problem.ggn(params), problem.hessian(params))


def test_lstsq_hessian_and_out_hess_are_the_closed_forms():
    problem, params = mlp(widths=(3, 1), loss="mse_half", bias=False, activation="identity", N=7)
    X = problem.X
    close(problem.hessian(params), X.T @ X / 7)
    close(problem.jac_out(params), X[:, None, :], 0, 0)
    close(problem.out_hess(params), torch.ones(7, 1, 1, dtype=F64), 0, 0)


@pytest.mark.parametrize("loss, out", [("ce", 3), ("bce", 1)])
@pytest.mark.parametrize("l2", [0.0, 0.25])
def test_exact_fisher_of_categorical_likelihoods_is_the_ggn(loss, out, l2):
    """E_y[g(y) g(y)^T] = J^T Lambda J + l2^2 theta theta^T (E[dl/dz] = 0, Cov = Lambda)."""
    problem, params = mlp(widths=(3, 4, out), loss=loss, l2=l2)
    theta = flatten(params)
    eye = torch.eye(theta.numel(), dtype=F64)
    expected = problem.ggn(params) - l2 * eye + l2**2 * torch.outer(theta, theta)
    close(problem.fisher_true(params), expected)


@pytest.mark.parametrize("loss, out", [("ce", 3), ("bce", 1), ("mse", 2), ("mse_half", 2)])
def test_monte_carlo_fisher_is_within_its_confidence_interval_of_the_exact_fisher(loss, out):
    """u^T F_K u vs u^T F u; the standard error is exact: by enumeration (ce, bce) or from
    q = (m + s xi)^2, xi ~ N(0, 1): Var q = 4 m^2 s^2 + 2 s^4 (Gaussian likelihoods)."""
    K, N = 4000, 4
    problem, params = mlp(seed=3, widths=(3, 4, out), loss=loss, l2=0.2, N=N)
    u = torch.randn(flatten(params).numel(), generator=gen(7), dtype=F64)
    estimate = u @ problem.fisher_true(params, mc_samples=K, generator=gen(11)) @ u
    exact = u @ problem.fisher_true(params) @ u
    var_q = per_sample_variance_of_projection(problem, params, u)
    se = math.sqrt(float(var_q.sum()) / K) / N
    assert abs(float(estimate - exact)) <= Z * se, (float(estimate), float(exact), se)


def per_sample_variance_of_projection(problem: FeedForward, params, u) -> torch.Tensor:
    """Var_y[(u^T g_n(y))^2] for every sample n, y ~ p_theta(. | x_n), in closed form."""
    if problem.loss_name in ("mse", "mse_half"):
        a = problem.jac_out(params) @ u  # (N, C)
        s2 = torch.einsum("nc,ncd,nd->n", a, problem.out_hess(params), a)
        m = problem.l2 * (u @ flatten(params))
        return 4 * m**2 * s2 + 2 * s2**2
    z = torch.func.functional_call(problem.module, params, (problem.X,))
    sigma = torch.sigmoid(z)
    p = torch.softmax(z, -1) if problem.loss_name == "ce" else torch.cat([1 - sigma, sigma], -1)
    q = torch.stack([projected_square(problem, params, u, c) for c in range(p.shape[1])], 1)
    return (p * q**2).sum(1) - (p * q).sum(1) ** 2


def projected_square(problem: FeedForward, params, u, label: int) -> torch.Tensor:
    """(u^T g_n(label))^2 for every sample n, (N,)."""
    labels = torch.full((problem.num_samples(),), label, dtype=problem.y.dtype)
    return (problem.per_sample_grads(params, labels=labels) @ u) ** 2


def test_sample_labels_have_the_data_layout():
    for loss, out in [("ce", 3), ("bce", 1), ("mse", 2)]:
        problem, params = mlp(widths=(3, out), loss=loss, activation="identity")
        drawn = problem.sample_labels(params, gen(0), batch=[0, 2, 2])
        assert drawn.dtype == problem.y.dtype and drawn.shape == problem.y[[0, 2, 2]].shape


@pytest.mark.parametrize("dtype, rtol", [(F64, 1e-13), (F32, 1e-6)])
@pytest.mark.parametrize(
    "loss, weight, margin", [("ce", [[12.0], [0.0]], 12.0), ("bce", [[30.0]], 30.0)]
)
def test_small_losses_and_curvatures_keep_full_relative_accuracy(loss, weight, margin, dtype, rtol):
    """A confident correct prediction: l = log1p(e^-m), Lambda = e^-m / (1 + e^-m)^2 for the
    margin m. logsumexp(z) - z_y (or softplus(z) - y z) would lose all accuracy here."""
    out = len(weight)
    problem = FeedForward(
        [[1.0]], [0 if loss == "ce" else 1.0], [1, out], "identity", loss, bias=False, dtype=dtype
    )
    params = {"0.weight": torch.tensor(weight, dtype=dtype)}
    close(problem.loss(params).double(), math.log1p(math.exp(-margin)), rtol, 0)
    curvature = math.exp(-margin) / (1 + math.exp(-margin)) ** 2
    close(problem.out_hess(params)[0, 0, 0].double(), curvature, rtol, 0)


def test_empirical_fisher_is_the_mean_outer_product_of_per_sample_grads():
    problem, params = mlp(loss="mse", widths=(3, 4, 2), l2=0.1)
    G = problem.per_sample_grads(params)
    close(problem.fisher_emp(params), sum(torch.outer(g, g) for g in G) / G.shape[0])


# -- reductions, batches, labels -----------------------------------------------------------


def test_sum_reduction_scales_everything_but_per_sample_grads_by_the_batch_size():
    batch = torch.tensor([4, 0, 0, 2])
    mean, params = mlp(seed=5, loss="ce", l2=0.1, N=6)
    total, _ = mlp(seed=5, loss="ce", l2=0.1, N=6, reduction="sum")
    close(total.per_sample_grads(params, batch), mean.per_sample_grads(params, batch))
    for quantity in ("loss", "hessian", "ggn", "fisher_true", "fisher_emp"):
        close(getattr(total, quantity)(params, batch), 4 * getattr(mean, quantity)(params, batch))
    close(flatten(total.grad(params, batch)), 4 * flatten(mean.grad(params, batch)))


def test_batch_indexes_samples_with_repeats():
    problem, params = mlp(seed=2, N=6)
    batch = [5, 1, 1]
    losses = problem.per_sample_losses(params)
    close(problem.per_sample_losses(params, batch), losses[batch])
    close(problem.loss(params, batch), losses[batch].mean())
    close(problem.jac_out(params, batch), problem.jac_out(params)[batch])


def test_labels_argument_replaces_the_data_labels():
    problem, params = mlp(seed=4, loss="ce", N=5)
    close(problem.per_sample_grads(params, labels=problem.y), problem.per_sample_grads(params))
    other = (problem.y + 1) % 3
    close(
        problem.per_sample_losses(params, labels=other),
        manual_losses(problem, params, problem.X, other),
    )


# -- the module, parameters, registry ------------------------------------------------------


def test_module_is_a_sequential_with_torch_names_and_default_init_range():
    problem, params = mlp(widths=(3, 5, 4, 2), activation="relu")
    assert [type(m) for m in problem.module] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    names = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert list(params) == names and list(dict(problem.module.named_parameters())) == names
    for name, value in params.items():
        fan_in = problem.module[int(name[0])].in_features
        assert bool((value.abs() <= 1 / math.sqrt(fan_in)).all())
    again = problem.init_params(gen(9))
    assert all(torch.equal(again[k], v) for k, v in problem.init_params(gen(9)).items())


def test_registry_maps_ids_to_classes():
    expected = {
        "prob:quad": Quadratic,
        "prob:quad_noisy": QuadraticNoisy,
        "prob:quad_finite_sum": QuadraticFiniteSum,
        "prob:quad_finite_sum[quadratics]": QuadraticSumOfQuadratics,
        **{
            k: FeedForward
            for k in ("prob:mlp", "prob:softmax", "prob:lstsq", "prob:logreg", "prob:W1")
        },
    }
    assert {k: tp.get(k) for k in expected} == expected
    assert tp.get("prob:W1")(torch.zeros(2, 3), [0, 1], [3, 2], id="prob:W1").id == "prob:W1"


# -- quadratics ----------------------------------------------------------------------------


def spd(n: int, g: torch.Generator, shift: float = 0.5) -> torch.Tensor:
    M = torch.randn(n, n, generator=g, dtype=F64)
    return M @ M.T / n + shift * torch.eye(n, dtype=F64)


@pytest.mark.parametrize("halved, factor", [(True, 1.0), (False, 2.0)])
def test_quadratic_is_the_closed_form(halved, factor):
    """f = 1/2 r^T A r + c (halved) or r^T A r + c (002 Eq. (3)); r = x - x*."""
    g = gen(1)
    A, x_star, x = (
        spd(4, g),
        torch.randn(4, generator=g, dtype=F64),
        torch.randn(4, generator=g, dtype=F64),
    )
    problem = Quadratic(A.numpy(), x_star.numpy(), c=0.7, halved=halved)
    r, params = x - x_star, {"x": x}
    close(problem.loss(params), 0.5 * factor * r @ A @ r + 0.7)
    close(problem.grad(params)["x"], factor * A @ r)
    close(problem.hessian(params), factor * A)
    close(problem.hvp(params, {"x": r})["x"], factor * A @ r)
    close(problem.per_sample_grads(params), (factor * A @ r)[None])
    close(problem.fisher_emp(params), torch.outer(factor * A @ r, factor * A @ r))
    (opt, f_star) = problem.optimum()
    close(opt["x"], x_star, 0, 0)
    assert f_star == 0.7
    lam = torch.linalg.eigvalsh(factor * A)
    assert problem.constants() == pytest.approx({"L": float(lam[-1]), "mu": float(lam[0])})
    with pytest.raises(NotImplementedError, match="prob:quad does not define 'ggn'"):
        problem.ggn(params)


def test_indefinite_quadratic_has_no_optimum():
    A = torch.diag(torch.tensor([1.0, -1.0], dtype=F64))
    assert Quadratic(A.numpy(), [0.0, 0.0]).optimum() is None


def test_finite_sum_least_squares_closed_forms_and_optimum():
    g = gen(2)
    X = torch.randn(6, 3, 4, generator=g, dtype=F64)
    y = torch.randn(6, 3, generator=g, dtype=F64)
    problem = QuadraticFiniteSum(X.numpy(), y.numpy())
    x = torch.randn(4, generator=g, dtype=F64)
    residual = torch.einsum("nmi,i->nm", X, x) - y
    close(problem.per_sample_grads({"x": x}), torch.einsum("nmi,nm->ni", X, residual))
    close(problem.per_sample_losses({"x": x}), 0.5 * (residual**2).sum(1))
    close(problem.hessian({"x": x}), torch.einsum("nmi,nmj->ij", X, X) / 6)
    (opt, f_star) = problem.optimum()
    close(opt["x"], torch.linalg.lstsq(X.reshape(18, 4), y.reshape(18)).solution)
    close(problem.grad(opt)["x"], torch.zeros(4, dtype=F64))
    close(torch.as_tensor(f_star), problem.loss(opt))


def test_sum_of_quadratics_closed_forms():
    g = gen(3)
    A = torch.stack([spd(3, g) for _ in range(5)])
    x_star = torch.randn(5, 3, generator=g, dtype=F64)
    problem = QuadraticSumOfQuadratics(A.numpy(), x_star.numpy())
    x = torch.randn(3, generator=g, dtype=F64)
    close(problem.per_sample_grads({"x": x}), torch.einsum("nij,nj->ni", A, x - x_star))
    close(problem.hessian({"x": x}, batch=[1, 3]), (A[1] + A[3]) / 2)
    (opt, _) = problem.optimum()
    close(opt["x"], torch.linalg.solve(A.sum(0), torch.einsum("nij,nj->i", A, x_star)))


def test_noisy_gradient_has_mean_g_and_covariance_sigma():
    """z-tests at ALPHA (Bonferroni over two): u^T mean(xi) and mean ||xi||^2 = tr Sigma."""
    g, K, z = gen(4), 1000, float(norm.isf(ALPHA / 4))
    A, Sigma = spd(3, g), spd(3, g, shift=0.1)
    problem = QuadraticNoisy(A.numpy(), [1.0, 0.0, -1.0], Sigma.numpy())
    params = {"x": torch.randn(3, generator=g, dtype=F64)}
    draw = gen(5)
    xi = torch.stack([problem.noisy_grad(params, draw)["x"] for _ in range(K)])
    xi = xi - problem.grad(params)["x"]
    u = torch.ones(3, dtype=F64)
    assert abs(float(xi.mean(0) @ u)) <= z * math.sqrt(float(u @ Sigma @ u) / K)
    sq = (xi**2).sum(1)
    se = math.sqrt(2 * float(torch.trace(Sigma @ Sigma)) / K)  # Var ||xi||^2 = 2 tr Sigma^2
    assert abs(float(sq.mean() - torch.trace(Sigma))) <= z * se
    close(problem.noise_cov(), Sigma)


def test_bounded_noise_is_the_same_draw_rescaled_to_the_radius():
    A = torch.eye(3, dtype=F64)
    Sigma = 4.0 * torch.eye(3, dtype=F64)
    free = QuadraticNoisy(A.numpy(), [0.0, 0.0, 0.0], Sigma.numpy())
    clipped = QuadraticNoisy(A.numpy(), [0.0, 0.0, 0.0], Sigma.numpy(), bounded=1.5)
    params = {"x": torch.zeros(3, dtype=F64)}
    for seed in range(20):
        xi = free.noisy_grad(params, gen(seed))["x"]
        expected = xi * min(1.0, 1.5 / float(torch.linalg.vector_norm(xi)))
        close(clipped.noisy_grad(params, gen(seed))["x"], expected)


# -- errors and float32 --------------------------------------------------------------------

X3 = torch.zeros(2, 3).numpy()


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: FeedForward(X3, [0, 1], [3, 2], loss="hinge"), "Invalid loss"),
        (lambda: FeedForward(X3, [0, 1], [3, 2], activation="gelu"), "Invalid activation"),
        (lambda: FeedForward(X3, [0, 1], [3, 2], reduction="max"), "Invalid reduction"),
        (lambda: FeedForward(X3, [0, 1], [3], loss="ce"), "Invalid widths"),
        (lambda: FeedForward(X3, [0, 1], [3, 2], l2=-1.0), "Invalid l2"),
        (lambda: FeedForward(X3, [0, 2], [3, 2]), "integer classes in"),
        (lambda: FeedForward(X3, [0.0, 1.0], [3, 2]), "integer classes in"),
        (lambda: FeedForward(X3, [0, 1], [3, 1]), "needs widths"),
        (lambda: FeedForward(X3, [0, 1], [3, 2], loss="bce"), "needs widths"),
        (lambda: FeedForward(X3, [0.0, 0.5], [3, 1], loss="bce"), "labels in"),
        (lambda: FeedForward(X3, [[0.0], [1.0]], [3, 2], loss="mse"), "targets"),
        (lambda: FeedForward(X3, [0, 1], [4, 2]), "features"),
        (lambda: FeedForward(X3 * float("nan"), [0, 1], [3, 2]), "non-finite"),
        (lambda: Quadratic([[1.0, 2.0], [0.0, 1.0]], [0.0, 0.0]), "symmetric"),
        (lambda: Quadratic([[1.0, 0.0]], [0.0]), "square"),
        (lambda: Quadratic([[1.0]], [0.0, 1.0]), "x_star"),
        (lambda: Quadratic([[1.0]], [0.0], c=float("inf")), "Invalid c"),
        (lambda: QuadraticNoisy([[1.0]], [0.0], [[-1.0]]), "positive semi-definite"),
        (lambda: QuadraticNoisy([[1.0]], [0.0], [[1.0]], bounded=0.0), "Invalid bounded"),
        (lambda: QuadraticFiniteSum(torch.zeros(2, 3, 4), torch.zeros(2, 4)), "y must"),
    ],
)
def test_invalid_construction_raises_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_invalid_calls_raise():
    problem, params = mlp()
    with pytest.raises(ValueError, match="keys"):
        problem.loss({"0.weight": params["0.weight"]})
    with pytest.raises(ValueError, match="shape"):
        problem.hvp(params, {**params, "0.bias": torch.zeros(7, dtype=F64)})
    with pytest.raises(TypeError, match="integer index"):
        problem.loss(params, batch=[0.5])
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        problem.loss(params, batch=[5])
    with pytest.raises(ValueError, match="Invalid mc_samples"):
        problem.fisher_true(params, mc_samples=0, generator=gen(0))
    with pytest.raises(ValueError, match="generator"):
        problem.fisher_true(params, mc_samples=3)


def test_float32_problems_compute_in_float32_close_to_float64():
    """float32 against the float64 run: normwise 1e-5 (~100 eps32 for these O(1) problems)."""
    problem64, params = mlp(seed=8, widths=(3, 4, 3), loss="ce", l2=0.1)
    problem32, _ = mlp(seed=8, widths=(3, 4, 3), loss="ce", l2=0.1, dtype=F32)
    params32 = {k: v.to(F32) for k, v in params.items()}
    assert problem32.X.dtype == F32 and problem32.y.dtype == torch.int64
    assert problem32.init_params(gen(0))["0.weight"].dtype == F32
    for quantity in ("loss", "per_sample_grads", "hessian", "ggn", "fisher_true"):
        value = getattr(problem32, quantity)(params32)
        assert value.dtype == F32
        close(value.to(F64), getattr(problem64, quantity)(params), 1e-5, 1e-6)
    quad = Quadratic(torch.eye(2).numpy(), [1.0, 2.0], dtype=F32)
    assert quad.grad({"x": torch.zeros(2, dtype=F32)})["x"].dtype == F32
