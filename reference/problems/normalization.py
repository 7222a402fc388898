"""``prob:normnet``: a network with one normalization layer (INVENTORY §1.2), NumPy, exact.

Model, on inputs x_n (T, D): T positions (tokens or spatial positions) of D features each,

    h = x W0^T + b0                (B, T, C)   position-wise Linear D -> C ("0.weight", "0.bias")
    x_hat = (h - mu) / sqrt(var + eps)           statistics over the set T_i of the norm type
    y = nu ⊙ x_hat + beta          (B, T, C)   scale nu ("1.weight"), shift beta ("1.bias")
    m = mean_t phi(y)              (B, C)      activation phi in {tanh, relu, identity}
    z = m W1^T + b1                (B, K)      Linear head C -> K ("4.weight", "4.bias")

named as ``torch.nn.Sequential(Linear, Norm, Activation, MeanOverPositions, Linear)`` names
them; dense matrices index ``flatten(params)`` in that order. ``bias=False`` drops b0 (the
usual choice before BatchNorm: statistics that are per channel, train-mode BatchNorm and
GroupNorm with one channel per group, cancel it, so its gradient is identically zero).
Statistics sets T_i (002 §3.3 Prop. 3.3.1, INVENTORY §1.2): ``layernorm`` the C features
of one position of one sample; ``groupnorm`` (channels of one of ``groups`` groups) x
positions of one sample; ``batchnorm`` batch x positions per channel (``bn_mode="train"``),
or the running mean and variance held by the problem (``bn_mode="eval"``). Variances are
biased (divide by |T_i|), as torch's.

Loss and curvature conventions are those of ``reference.problems.network`` (whose likelihood
helpers this class inherits): l_n = nll(z_n, y_n) + (l2/2)||theta||^2 with nll in {ce, mse,
mse_half}; the loss, Hessian, GGN and Fishers carry the factor 1/B (``reduction="mean"``) or
1 (``"sum"``); the true Fisher is exact by enumeration over the classes (ce) or the Gaussian
closed form (mse, mse_half), or uses ``mc_samples`` drawn labels.

Exact routes, all hand-written: forward and backward passes; the Hessian-vector product by
complex-step differentiation of the hand-written gradient, Hv = Im grad(theta + i h v) / h with
h = 1e-30 (no subtraction, so no cancellation: exact to rounding). Every operation on the
parameter path is complex-analytic for it: the relu mask and the softmax shift come from the
real part, squares are x * x (never abs), sqrt is the principal branch near the positive axis.

Train-mode BatchNorm couples the samples of a batch through its statistics:
- per-sample gradients, and the Fishers built from them, are not defined (INVENTORY
  est:per_sample_grads): they raise `PerSampleUndefinedError`, a ValueError (and a
  NotImplementedError, so cross-checks read the quantity as undefined in both layers);
- loss, gradient, Hessian (of the batch loss) are defined; J_n = dz_n/dtheta holds the other
  samples of the batch fixed, and the GGN is scale sum_n J_n^T Lambda_n J_n + l2 I;
- layer_stats' ``s`` is d(sum_m l_m)/d(layer output of sample n): the batch loss's gradient
  in the per-sample convention (it is dl_n/d(output_n) whenever samples do not couple), so
  the gradient of the loss is scale sum_n of the per-sample formulas in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.problems.datasets import batch_rows, gmm
from reference.problems.network import (
    REDUCTIONS,
    FeedForward,
    _augment,
    _choice,
    _labels,
    _sq_norm,
)
from reference.problems.registry import REGISTRY
from reference.tree import Tree, flatten

NORMS = ("layernorm", "groupnorm", "batchnorm")
BN_MODES = ("train", "eval")
ACTIVATIONS = ("tanh", "relu", "identity")
LOSSES = ("ce", "mse", "mse_half")  # their dl/dz are complex-analytic (the complex step)
COMPLEX_STEP = 1e-30
# Directions x (B T C + P): the size of the complex-step arrays `hessian` holds at once.
_HESSIAN_CHUNK_ENTRIES = 2**22


class PerSampleUndefinedError(ValueError, NotImplementedError):
    """A per-sample quantity of a model whose samples are coupled (train-mode BatchNorm)."""


@dataclass(frozen=True)
class _Pass:
    """Forward quantities; leading axes (...) are the parameters' (complex-step directions)."""

    h_bar: np.ndarray  # (B, T, D+1) [x, 1]
    h: np.ndarray  # (..., B, T, C) the pre-normalisation input
    x_hat: np.ndarray  # (..., B, T, C) the normalised activations
    sigma: np.ndarray  # sqrt(var + eps) in the grouped view, broadcastable
    dphi: np.ndarray  # (..., B, T, C) phi'(y)
    m_bar: np.ndarray  # (..., B, C+1) [mean_t phi(y), 1]
    z: np.ndarray  # (..., B, K) logits


class NormNet(FeedForward):
    """Linear -> norm -> activation -> mean over positions -> Linear head; see the module doc.

    ``X`` (N, T, D) inputs; ``y`` (N,) classes (ce) or (N, K) targets (mse, mse_half);
    ``channels`` C; ``classes`` K; ``groups`` divides C (groupnorm only); ``running_mean``,
    ``running_var`` (C,) the eval-mode BatchNorm statistics (var > 0); ``bias``: b0 on/off
    (the head always has b1).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        channels: int,
        classes: int,
        norm: str = "layernorm",
        groups: int = 1,
        bn_mode: str = "train",
        running_mean: np.ndarray | None = None,
        running_var: np.ndarray | None = None,
        eps: float = 1e-5,
        activation: str = "tanh",
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        bias: bool = True,
        id: str = "prob:normnet",
    ) -> None:
        for value, name, allowed in ((norm, "norm", NORMS), (bn_mode, "bn_mode", BN_MODES),
                                     (activation, "activation", ACTIVATIONS),
                                     (loss, "loss", LOSSES), (reduction, "reduction", REDUCTIONS)):
            _choice(value, name, allowed)
        self.X = _inputs(X)
        N, T, D = self.X.shape
        C, K = _positive(channels, "channels"), _positive(classes, "classes")
        self.widths, self.bias = (D, C, K), bool(bias)
        self.norm, self.bn_mode, self.phi, self.loss_name = norm, bn_mode, activation, loss
        self.groups = _groups(groups, C) if norm == "groupnorm" else 1
        if not (np.isfinite(eps) and eps > 0.0):
            raise ValueError(f"Invalid eps: {eps}; must be finite and > 0")
        if not (np.isfinite(l2) and l2 >= 0.0):
            raise ValueError(f"Invalid l2 (ridge) coefficient: {l2}; must be finite and >= 0")
        self.eps, self.reduction, self.l2, self.id = float(eps), reduction, float(l2), id
        self.running_mean, self.running_var = _running(running_mean, running_var, C,
                                                       self.eval_bn)
        self.y = _labels(y, loss, N, K)
        leaves = {"0.weight": (C, D), "0.bias": (C,), "1.weight": (C,), "1.bias": (C,),
                  "4.weight": (K, C), "4.bias": (K,)}
        if not self.bias:
            del leaves["0.bias"]
        self.names, self.shapes = list(leaves), list(leaves.values())

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n_samples: int = 8,
        positions: int = 3,
        features: int = 3,
        channels: int = 4,
        classes: int = 3,
        norm: str = "layernorm",
        groups: int = 2,
        bn_mode: str = "train",
        eps: float = 1e-5,
        activation: str = "tanh",
        loss: str = "ce",
        reduction: str = "mean",
        l2: float = 0.0,
        bias: bool = True,
        separation: float = 3.0,
    ) -> NormNet:
        """Gaussian-mixture data (``datasets.gmm`` in T * D dimensions, reshaped to (T, D))
        with max(K, 2) classes: the class for ce, its one-hot first K columns for mse losses.
        Running statistics (always drawn, used by eval-mode BatchNorm): mean N(0, 0.5^2),
        variance U(0.5, 2) per channel."""
        X, labels = gmm(rng, n_samples, positions * features, max(classes, 2), separation)
        y = labels if loss == "ce" else np.eye(max(classes, 2))[labels][:, :classes]
        running_mean = 0.5 * rng.standard_normal(channels)
        running_var = rng.uniform(0.5, 2.0, channels)
        return cls(X.reshape(n_samples, positions, features), y, channels, classes, norm,
                   groups, bn_mode, running_mean, running_var, eps, activation, loss,
                   reduction, l2, bias)

    def spec(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "channels": self.widths[1],
                "classes": self.widths[2], "norm": self.norm, "groups": self.groups,
                "bn_mode": self.bn_mode, "running_mean": self.running_mean,
                "running_var": self.running_var, "eps": self.eps, "activation": self.phi,
                "loss": self.loss_name, "reduction": self.reduction, "l2": self.l2,
                "bias": self.bias, "id": self.id}

    @property
    def eval_bn(self) -> bool:
        return self.norm == "batchnorm" and self.bn_mode == "eval"

    @property
    def coupled(self) -> bool:
        """True where the statistics couple the samples of a batch (train-mode BatchNorm)."""
        return self.norm == "batchnorm" and self.bn_mode == "train"

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Weights N(0, 1/fan_in), Linear biases N(0, 0.1^2), nu = 1 + N(0, 0.1^2),
        beta N(0, 0.1^2) (away from torch's 1 and 0, so tests exercise them)."""
        D, C, K = self.widths
        params = {"0.weight": rng.standard_normal((C, D)) / np.sqrt(D),
                  "0.bias": 0.1 * rng.standard_normal(C),
                  "1.weight": 1.0 + 0.1 * rng.standard_normal(C),
                  "1.bias": 0.1 * rng.standard_normal(C),
                  "4.weight": rng.standard_normal((K, C)) / np.sqrt(C),
                  "4.bias": 0.1 * rng.standard_normal(K)}
        return {name: params[name] for name in self.names}

    # -- losses and gradients ------------------------------------------------------------

    def per_sample_losses(self, params: Tree, batch=None, labels=None) -> np.ndarray:
        """l_n = nll(z_n, y_n) + (l2/2)||theta||^2 (B,); train-mode BatchNorm uses the batch's
        statistics. ``labels`` replace the data's."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        z = self._forward(self._leaves(theta), rows).z
        return self._nll(z, self._targets(rows, labels)) + 0.5 * self.l2 * _sq_norm([theta])

    def per_sample_grads(self, params: Tree, batch=None, labels=None) -> np.ndarray:
        """g_n = dl_n/dtheta (B, P), flat layout; ``labels`` replace the data's. Raises
        `PerSampleUndefinedError` for train-mode BatchNorm."""
        self._per_sample("per_sample_grads")
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        p = self._leaves(theta)
        fw = self._forward(p, rows)
        return self._grads_at(p, fw, self._dloss(fw.z, self._targets(rows, labels))) + (
            self.l2 * theta)

    def grad(self, params: Tree, batch=None) -> dict[str, np.ndarray]:
        """scale * (sum_n of the per-sample formulas) + l2 theta (scale B for "sum")."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        return self._unflat(self._batch_grad(theta, rows))

    def layer_stats(self, params: Tree, batch=None) -> list[dict[str, np.ndarray]]:
        """In module order: Linear 0 {h_bar (B, T, D+1) (x without bias), a = h (B, T, C),
        s (B, T, C)}; norm
        {h (B, T, C) pre-normalisation, x_hat (B, T, C), s (B, T, C) at the norm's output};
        head {h_bar (B, C+1), a = z (B, K), s (B, K)}. s = dl_n/d(output) of the per-sample
        loss with the data labels, per position (train-mode BN: see the module doc). Per
        sample, grad nu = sum_t x_hat_t ⊙ s_t and grad beta = sum_t s_t (002 Prop. A.0.1)."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        p = self._leaves(theta)
        fw = self._forward(p, rows)
        s_z = self._dloss(fw.z, self.y[rows])
        s_h, s_y = self._backward(p, fw, s_z)
        return [{"h_bar": fw.h_bar, "a": fw.h, "s": s_h},
                {"h": fw.h, "x_hat": fw.x_hat, "s": s_y},
                {"h_bar": fw.m_bar, "a": fw.z, "s": s_z}]

    # -- second order --------------------------------------------------------------------

    def hvp(self, params: Tree, v: Tree, batch=None) -> dict[str, np.ndarray]:
        """H v by the complex step Im grad(theta + i h v) / h, h = 1e-30."""
        theta = self._theta(params)
        V = flatten(self._checked(v, "v"))[None]
        return self._unflat(self._hvps(theta, V, batch_rows(batch, self.num_samples()))[0])

    def hessian(self, params: Tree, batch=None) -> np.ndarray:
        """The complex step along every unit direction, in chunks (not symmetrised)."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        P, (_, T, _) = theta.size, self.X.shape
        chunk = max(1, _HESSIAN_CHUNK_ENTRIES // (rows.size * T * self.widths[1] + P))
        rows_of_H = [self._hvps(theta, np.eye(min(chunk, P - k), P, k), rows)
                     for k in range(0, P, chunk)]
        return np.concatenate(rows_of_H).T  # row k is H e_k, the k-th column

    def jac_out(self, params: Tree, batch=None) -> np.ndarray:
        """J_n = dz_n/dtheta (B, K, P): backprop of every output unit at once (train-mode BN:
        of every (n, k) pair, the other samples of the batch held fixed)."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        p = self._leaves(theta)
        fw = self._forward(p, rows)
        B, K = fw.z.shape
        if self.coupled:
            s_z = np.eye(B * K).reshape(B, K, B, K)
            return self._grads_at(p, fw, s_z).sum(axis=-2)
        s_z = np.broadcast_to(np.eye(K)[:, None, :], (K, B, K))
        return np.moveaxis(self._grads_at(p, fw, s_z), 0, 1)

    def out_hess(self, params: Tree, batch=None) -> np.ndarray:
        """Lambda_n = d^2 nll/dz^2 (B, K, K): diag(p) - p p^T (ce), I (mse_half), 2I (mse)."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        return self._out_hess(self._forward(self._leaves(theta), rows).z)

    def fisher_true(self, params: Tree, batch=None, mc_samples: int | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
        """scale * sum_n E_{y~p_theta}[g_n(y) g_n(y)^T]: exact, or ``mc_samples`` labels per
        input (INVENTORY est:fisher_true). Raises `PerSampleUndefinedError` for train BN."""
        self._per_sample("fisher_true")
        if mc_samples is None and self.loss_name != "ce":
            return self._gaussian_fisher(params, batch)
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        p = self._leaves(theta)
        fw = self._forward(p, rows)
        if mc_samples is None:
            labels, weights = self._label_support(fw.z)
        else:
            labels, weights = self._mc_labels(fw.z, mc_samples, rng)
        g = self._grads_at(p, fw, self._dloss(fw.z, labels)) + self.l2 * theta
        weighted = (np.sqrt(weights)[..., None] * g).reshape(-1, theta.size)
        return self._scale(rows.size) * weighted.T @ weighted

    def fisher_emp(self, params: Tree, batch=None) -> np.ndarray:
        """scale * sum_n g_n g_n^T with the data labels; raises for train-mode BatchNorm."""
        self._per_sample("fisher_emp")
        return super().fisher_emp(params, batch)

    def sample_labels(self, params: Tree, rng: np.random.Generator, batch=None) -> np.ndarray:
        """y ~ p_theta(.|x_n): class indices (ce), z + N(0, v I) (mse_half v = 1, mse 1/2)."""
        theta, rows = self._theta(params), batch_rows(batch, self.num_samples())
        return self._sample(self._forward(self._leaves(theta), rows).z, rng, ())

    # -- internals -----------------------------------------------------------------------

    def _per_sample(self, quantity: str) -> None:
        if self.coupled:
            raise PerSampleUndefinedError(
                f"{self.id}: {quantity} is not defined with train-mode BatchNorm, whose batch "
                "statistics couple the samples (INVENTORY est:per_sample_grads); use "
                "bn_mode='eval', layernorm or groupnorm")

    def _theta(self, params: Tree) -> np.ndarray:
        return flatten(self._checked(params, "params"))

    def _leaves(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Flat vectors (..., P) -> leaves (..., *shape) (any dtype: the complex step)."""
        sizes = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        pieces = np.split(flat, sizes, axis=-1)
        return {name: piece.reshape(*flat.shape[:-1], *shape)
                for name, piece, shape in zip(self.names, pieces, self.shapes, strict=True)}

    def _grouped(self, h: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """(..., B, T, C) -> (..., B, T, G, C/G) and the axes of the statistics set T_i."""
        C = self.widths[1]
        if self.norm == "layernorm":
            return h.reshape(*h.shape[:-1], 1, C), (-2, -1)
        if self.norm == "groupnorm":
            return h.reshape(*h.shape[:-1], self.groups, C // self.groups), (-3, -1)
        return h.reshape(*h.shape[:-1], C, 1), (-4, -3)

    def _normalise(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x_hat = (h - mu) / sigma, sigma = sqrt(var + eps), statistics over T_i."""
        g, axes = self._grouped(h)
        if self.eval_bn:
            mu, var = self.running_mean[:, None], self.running_var[:, None]
        else:
            mu = g.mean(axis=axes, keepdims=True)
            d = g - mu
            var = (d * d).mean(axis=axes, keepdims=True)
        sigma = np.sqrt(var + self.eps)
        return ((g - mu) / sigma).reshape(h.shape), sigma

    def _normalise_back(self, d_x_hat: np.ndarray, fw: _Pass) -> np.ndarray:
        """dl/dh from dl/dx_hat: (g - mean g - x_hat mean(g ⊙ x_hat)) / sigma over T_i, or
        g / sigma with fixed (eval-mode) statistics."""
        g, axes = self._grouped(d_x_hat)
        if not self.eval_bn:
            x = self._grouped(fw.x_hat)[0]
            g = g - g.mean(axis=axes, keepdims=True) - x * (g * x).mean(axis=axes, keepdims=True)
        return (g / fw.sigma).reshape(d_x_hat.shape)

    def _forward(self, p: dict[str, np.ndarray], rows: np.ndarray) -> _Pass:
        h_bar = _augment(self.X[rows], 1.0) if self.bias else self.X[rows]
        theta0 = (np.concatenate([p["0.weight"], p["0.bias"][..., None]], axis=-1)
                  if self.bias else p["0.weight"])
        h = np.einsum("btj,...cj->...btc", h_bar, theta0)
        x_hat, sigma = self._normalise(h)
        y = p["1.weight"][..., None, None, :] * x_hat + p["1.bias"][..., None, None, :]
        u, dphi = _phi(self.phi, y)
        m_bar = _augment(u.mean(axis=-2), 1.0)
        theta1 = np.concatenate([p["4.weight"], p["4.bias"][..., None]], axis=-1)
        z = np.einsum("...bj,...kj->...bk", m_bar, theta1)
        return _Pass(h_bar, h, x_hat, sigma, dphi, m_bar, z)

    def _backward(self, p, fw: _Pass, s_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """s at the Linear-0 output (h) and at the norm output (y), from s_z = dl/dz."""
        dm = np.einsum("...bk,...kc->...bc", s_z, p["4.weight"])
        s_y = dm[..., None, :] / self.X.shape[1] * fw.dphi
        d_x_hat = s_y * p["1.weight"][..., None, None, :]
        return self._normalise_back(d_x_hat, fw), s_y

    def _grads_at(self, p, fw: _Pass, s_z: np.ndarray) -> np.ndarray:
        """Per-sample gradients (..., B, P) of the functional whose dl/dz is s_z (no ridge):
        s h_bar^T summed over positions (Linear 0), Prop. A.0.1 (b) (norm), s_z m_bar^T."""
        s_h, s_y = self._backward(p, fw, s_z)
        g0 = np.einsum("...btc,btj->...bcj", s_h, fw.h_bar)
        g1 = s_z[..., :, None] * fw.m_bar[..., None, :]
        parts = [g0[..., :-1], g0[..., -1]] if self.bias else [g0]
        parts += [(fw.x_hat * s_y).sum(axis=-2), s_y.sum(axis=-2), g1[..., :-1], g1[..., -1]]
        lead = s_z.shape[:-1]  # every part is linear in s_z
        return np.concatenate([g.reshape(*lead, -1) for g in parts], axis=-1)

    def _batch_grad(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The loss's gradient (..., P) at theta (..., P), real or complex."""
        p = self._leaves(theta)
        fw = self._forward(p, rows)
        total = self._grads_at(p, fw, self._dloss(fw.z, self.y[rows])).sum(axis=-2)
        return self._scale(rows.size) * (total + rows.size * self.l2 * theta)

    def _hvps(self, theta: np.ndarray, V: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """H v for each row v of V (K, P): Im grad(theta + i h v) / h (module doc)."""
        return self._batch_grad(theta + 1j * COMPLEX_STEP * V, rows).imag / COMPLEX_STEP


def _phi(name: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """phi(y), phi'(y), complex-analytic (the relu mask from the real part)."""
    if name == "tanh":
        t = np.tanh(y)
        return t, 1.0 - t * t
    if name == "relu":
        mask = (y.real > 0.0).astype(np.float64)
        return y * mask, np.broadcast_to(mask, y.shape)
    return y, np.ones(y.shape)


def _inputs(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or min(X.shape) == 0:
        raise ValueError(f"X must have shape (N, T, D) with N, T, D >= 1; got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains non-finite values (NaN or inf)")
    return X


def _positive(value: int, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Invalid {name}: {value!r}; must be an integer >= 1")
    return int(value)


def _groups(groups: int, C: int) -> int:
    if not isinstance(groups, (int, np.integer)) or groups < 1 or C % groups:
        raise ValueError(f"Invalid groups: {groups!r}; must be a positive divisor of "
                         f"channels = {C}")
    return int(groups)


def _running(mean, var, C: int, required: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Running statistics (C,) (mean finite, var > 0); required for eval-mode BatchNorm."""
    if mean is None or var is None:
        if required:
            raise ValueError("bn_mode='eval' needs running_mean and running_var, shape "
                             f"({C},)")
        return None, None
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    if mean.shape != (C,) or var.shape != (C,) or not np.all(np.isfinite(mean)):
        raise ValueError(f"running_mean and running_var must be finite, shape ({C},)")
    if not np.all(np.isfinite(var) & (var > 0.0)):
        raise ValueError("running_var must be finite and > 0")
    return mean, var


REGISTRY.register("prob:normnet", NormNet)
