"""Feed-forward networks with exact first- and second-order quantities (INVENTORY §1.2, §1.3).

One class, `FeedForward`, defines ``prob:mlp`` and its special cases ``prob:softmax``
(widths [d, C], loss ce), ``prob:lstsq`` (widths [d, 1], no bias, loss mse_half),
``prob:logreg`` (widths [d, 1], loss bce, optional ridge) and ``prob:W1`` (digits,
widths [64, 32, 32, 10]). Everything is computed by hand, never by autograd or differences:

- forward and backward passes on augmented layers: theta_i = [W_i | b_i] (out, in+1),
  h_bar_i = [h_i; 1], a_i = theta_i h_bar_i, h_{i+1} = phi(a_i), z = a_last
  (002 §2.1.4; without bias theta_i = W_i and h_bar_i = h_i);
- s_i = dl_n/da_i from the per-sample loss, s_last = dl/dz, and the recursion
  s_{i-1} = (W_i^T s_i) ⊙ phi'(a_{i-1}); per-sample gradient of theta_i = s_i h_bar_i^T;
- Hessian-vector products by Pearlmutter's R-operator (forward and backward R-passes,
  including the phi'' term and the output-Hessian term); the dense Hessian applies it to all
  unit directions at once, in chunks.

Parameters are named as in ``torch.nn.Sequential`` of Linear and activation modules: "0.weight"
(out, in), "0.bias" (out,), "2.weight", ...; dense matrices index ``flatten(params)`` in that
order (INVENTORY §5 item 3: row-major weight, then bias).

Conventions (INVENTORY §5 items 1, 2, 9):
- the per-sample loss is l_n = nll(z_n, y_n) + (l2/2) ||theta||^2 (the ridge term, over all
  parameters biases included, is part of every per-sample loss); the loss is mean_n l_n
  (``reduction="mean"``) or sum_n l_n (``"sum"``), and Hessian, GGN and both Fishers carry the
  same 1/B or 1; per-sample gradients are gradients of l_n, unscaled, in both reductions;
- GGN: G = scale * sum_n (J_n^T Lambda_n J_n + l2 I) (the ridge is quadratic, its own GGN);
- true Fisher: F = scale * sum_n E_{y ~ p_theta(.|x_n)}[g_n(y) g_n(y)^T] with g_n(y) the
  per-sample gradient for label y; exact by enumeration over the classes (ce, bce), or with
  ``mc_samples`` labels drawn per input. The likelihood is categorical for ce, Bernoulli for
  bce and Gaussian for mse_half (unit variance) and mse (variance 1/2); for the Gaussian ones
  the exact expectation is the closed form J^T Lambda J + l2^2 theta theta^T (E[dl/dz] = 0,
  Cov[dl/dz] = Lambda). With l2 = 0, F = G for all four losses;
- empirical Fisher: scale * sum_n g_n g_n^T with the data labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, log_softmax, softmax

from reference.problems.base import Problem
from reference.problems.datasets import batch_rows, digits, gmm
from reference.problems.registry import REGISTRY
from reference.problems.spectra import random_orthogonal, spectrum
from reference.tree import Tree, flatten

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
LOSSES = ("ce", "mse", "mse_half", "bce")
REDUCTIONS = ("mean", "sum")
LSTSQ_DESIGNS = ("full_rank", "rank_deficient", "ill_conditioned")
# Lambda = d^2 l / dz^2: its largest eigenvalue over all z (ce: diag(p) - p p^T <= 1/2).
_OUT_HESS_MAX = {"ce": 0.5, "bce": 0.25, "mse_half": 1.0, "mse": 2.0}
# Directions x (batch x width + P): the size of the R-pass arrays `hessian` holds at once.
_HESSIAN_CHUNK_ENTRIES = 2**22


@dataclass(frozen=True)
class _Layer:
    """One Linear layer's forward quantities; dphi, d2phi are of the activation after it."""

    h_bar: np.ndarray
    a: np.ndarray
    dphi: np.ndarray | None
    d2phi: np.ndarray | None


class FeedForward(Problem):
    """An MLP ``widths[0] -> ... -> widths[-1]`` on data X (N, d), y, with exact oracles."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        widths: Sequence[int],
        activation: str = "tanh",
        loss: str = "ce",
        bias: bool = True,
        reduction: str = "mean",
        l2: float = 0.0,
        id: str = "prob:mlp",
    ) -> None:
        _choice(activation, "activation", ACTIVATIONS)
        _choice(loss, "loss", LOSSES)
        _choice(reduction, "reduction", REDUCTIONS)
        self.widths = _widths(widths)
        self.X = np.asarray(X, dtype=np.float64)
        if self.X.shape[1:] != (self.widths[0],) or self.X.shape[0] == 0:
            raise ValueError(f"X must have shape (N, widths[0]) = (N, {self.widths[0]}), N >= 1; "
                             f"got {self.X.shape}")
        if not np.all(np.isfinite(self.X)):
            raise ValueError("X contains non-finite values (NaN or inf)")
        if not (np.isfinite(l2) and l2 >= 0.0):
            raise ValueError(f"Invalid l2 (ridge) coefficient: {l2}; must be finite and >= 0")
        self.activation, self.loss_name, self.reduction = activation, loss, reduction
        self.bias, self.l2, self.id = bool(bias), float(l2), id
        self.y = _labels(y, loss, self.X.shape[0], self.widths[-1])
        self.names = [f"{2 * i}.{kind}" for i in range(len(self.widths) - 1)
                      for kind in (("weight", "bias") if self.bias else ("weight",))]
        self.shapes = self._shapes()

    @classmethod
    def make(
        cls,
        rng: np.random.Generator,
        n_samples: int = 64,
        widths: Sequence[int] = (4, 8, 3),
        activation: str = "tanh",
        loss: str = "ce",
        bias: bool = True,
        reduction: str = "mean",
        l2: float = 0.0,
        separation: float = 3.0,
    ) -> FeedForward:
        """Gaussian-mixture data (``datasets.gmm``) with max(C, 2) classes, C = widths[-1]:
        the class for ce and bce (then {0, 1}), the first C one-hot columns for mse/mse_half."""
        classes = max(widths[-1], 2)
        X, labels = gmm(rng, n_samples, widths[0], classes, separation)
        y = np.eye(classes)[labels][:, :widths[-1]] if loss in ("mse", "mse_half") else labels
        return cls(X, y, widths, activation, loss, bias, reduction, l2, id="prob:mlp")

    def spec(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "widths": list(self.widths),
                "activation": self.activation, "loss": self.loss_name, "bias": self.bias,
                "reduction": self.reduction, "l2": self.l2, "id": self.id}

    def num_samples(self) -> int:
        return self.X.shape[0]

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Weights N(0, 1/fan_in), biases N(0, 0.1^2) (nonzero, so tests exercise them)."""
        params = {}
        for name, shape in zip(self.names, self.shapes, strict=True):
            std = np.sqrt(1.0 / shape[1]) if name.endswith("weight") else 0.1
            params[name] = std * rng.standard_normal(shape)
        return params

    # -- losses and gradients ------------------------------------------------------------

    def per_sample_losses(self, params: Tree, batch=None, labels=None) -> np.ndarray:
        """l_n = nll(z_n, y_n) + (l2/2) ||theta||^2, shape (B,); ``labels`` replace the data's."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        z = self._forward(thetas, rows)[-1].a
        return self._nll(z, self._targets(rows, labels)) + 0.5 * self.l2 * _sq_norm(thetas)

    def loss(self, params: Tree, batch=None) -> float:
        losses = self.per_sample_losses(params, batch)
        return float(self._scale(losses.size) * losses.sum())

    def per_sample_grads(self, params: Tree, batch=None, labels=None) -> np.ndarray:
        """g_n = dl_n/dtheta, shape (B, P), flat layout; ``labels`` replace the data's."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        layers = self._forward(thetas, rows)
        s_top = self._dloss(layers[-1].a, self._targets(rows, labels))
        return self._ridge_grads(thetas, layers, s_top)

    def grad(self, params: Tree, batch=None) -> dict[str, np.ndarray]:
        G = self.per_sample_grads(params, batch)
        return self._unflat(self._scale(G.shape[0]) * G.sum(axis=0))

    def layer_stats(self, params: Tree, batch=None) -> list[dict[str, np.ndarray]]:
        """Per Linear layer: h_bar (B, in+1) ([h, 1], or h without bias), a (B, out) and
        s = dl_n/da (B, out) of the per-sample loss with the data labels (INVENTORY
        est:layer_stats); the per-sample gradient of theta_i is s h_bar^T (+ l2 theta_i)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        layers = self._forward(thetas, rows)
        ss = self._backward(thetas, layers, self._dloss(layers[-1].a, self.y[rows]))
        return [{"h_bar": layer.h_bar, "a": layer.a, "s": s}
                for layer, s in zip(layers, ss, strict=True)]

    # -- second order --------------------------------------------------------------------

    def hvp(self, params: Tree, v: Tree, batch=None) -> dict[str, np.ndarray]:
        """H v by one R-operator pass."""
        direction = flatten(self._checked(v, "v"))
        return self._unflat(self._hvps(params, direction[None], batch)[0])

    def hessian(self, params: Tree, batch=None) -> np.ndarray:
        """The R-operator applied to every unit direction (in chunks), symmetrised."""
        P = sum(int(np.prod(s)) for s in self.shapes)
        B = batch_rows(batch, self.num_samples()).size
        chunk = max(1, _HESSIAN_CHUNK_ENTRIES // (B * max(self.widths) + P))
        H = np.concatenate([self._hvps(params, np.eye(min(chunk, P - k), P, k), batch)
                            for k in range(0, P, chunk)])
        return 0.5 * (H + H.T)

    def jac_out(self, params: Tree, batch=None) -> np.ndarray:
        """J_n = dz_n/dtheta, shape (B, C, P): backprop of every output unit at once."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        layers = self._forward(thetas, rows)
        C = self.widths[-1]
        s_top = np.broadcast_to(np.eye(C)[:, None, :], (C, rows.size, C))
        return np.moveaxis(self._grads_from(thetas, layers, s_top), 0, 1)

    def out_hess(self, params: Tree, batch=None) -> np.ndarray:
        """Lambda_n = d^2 nll/dz^2 (B, C, C): diag(p) - p p^T (ce), sigma(1 - sigma) (bce),
        I (mse_half), 2I (mse)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        return self._out_hess(self._forward(thetas, rows)[-1].a)

    def ggn(self, params: Tree, batch=None) -> np.ndarray:
        """G = scale * sum_n (J_n^T Lambda_n J_n + l2 I) (INVENTORY est:ggn)."""
        J, Lam = self.jac_out(params, batch), self.out_hess(params, batch)
        B, _, P = J.shape
        return self._scale(B) * (_sandwich(J, Lam) + B * self.l2 * np.eye(P))

    def fisher_true(self, params: Tree, batch=None, mc_samples: int | None = None,
                    rng: np.random.Generator | None = None) -> np.ndarray:
        """scale * sum_n E_{y~p_theta}[g_n(y) g_n(y)^T]: exact, or ``mc_samples`` labels per
        input drawn from ``rng`` (INVENTORY est:fisher_true, §5 item 9)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        layers = self._forward(thetas, rows)
        z = layers[-1].a
        if mc_samples is not None:
            labels, weights = self._mc_labels(z, mc_samples, rng)
        elif self.loss_name in ("ce", "bce"):
            labels, weights = self._label_support(z)
        else:
            return self._gaussian_fisher(params, batch)
        g = self._ridge_grads(thetas, layers, self._dloss(z, labels))
        weighted = np.sqrt(weights)[..., None] * g
        P = g.shape[-1]
        return self._scale(rows.size) * weighted.reshape(-1, P).T @ weighted.reshape(-1, P)

    def fisher_emp(self, params: Tree, batch=None) -> np.ndarray:
        """scale * sum_n g_n g_n^T with the data labels (INVENTORY est:fisher_emp)."""
        G = self.per_sample_grads(params, batch)
        return self._scale(G.shape[0]) * G.T @ G

    def sample_labels(self, params: Tree, rng: np.random.Generator, batch=None) -> np.ndarray:
        """y ~ p_theta(.|x_n): class indices (ce), {0, 1} (bce), z + N(0, v I) (mse_half: v = 1,
        mse: v = 1/2)."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        return self._sample(self._forward(thetas, rows)[-1].a, rng, ())

    # -- known solutions -----------------------------------------------------------------

    def constants(self, params: Tree | None = None) -> dict[str, float]:
        """For one layer (lstsq, logreg, softmax): L = c_max lambda_max(Xb^T Xb)/N + l2 with
        Xb = [X, 1] (X without bias) and c_max = max eig of Lambda (mse_half 1, mse 2, bce 1/4,
        ce 1/2); mu = c lambda_min(Xb^T Xb)/N + l2 for mse losses (exact), l2 for ce/bce.
        Times N for ``reduction="sum"``. Deeper networks: {}."""
        if len(self.widths) > 2:
            return {}
        N = self.num_samples()
        lam = np.linalg.eigvalsh(self._design().T @ self._design() / N)
        c = _OUT_HESS_MAX[self.loss_name]
        mu = c * lam[0] if self.loss_name in ("mse", "mse_half") else 0.0
        factor = 1.0 if self.reduction == "mean" else float(N)
        return {"L": factor * (c * lam[-1] + self.l2), "mu": factor * (mu + self.l2)}

    def optimum(self) -> tuple[dict[str, np.ndarray], float] | None:
        """One-layer mse/mse_half: the (ridge) least-squares solution of least norm."""
        if len(self.widths) > 2 or self.loss_name not in ("mse", "mse_half"):
            return None
        Xb, N = self._design(), self.num_samples()
        # grad = (c/N) theta (Xb^T Xb) - (c/N) Y^T Xb + l2 theta = 0, c = 1 (mse_half), 2 (mse)
        ridge = np.sqrt(N * self.l2 / _OUT_HESS_MAX[self.loss_name]) * np.eye(Xb.shape[1])
        A = np.concatenate([Xb, ridge])
        Y = np.concatenate([self.y, np.zeros((Xb.shape[1], self.widths[-1]))])
        theta = np.linalg.lstsq(A, Y, rcond=None)[0].T
        params = self._unflat(self._pack([theta]))
        return params, self.loss(params)

    # -- internals -----------------------------------------------------------------------

    def _shapes(self) -> list[tuple[int, ...]]:
        pairs = zip(self.widths[:-1], self.widths[1:], strict=True)
        return [shape for d_in, d_out in pairs
                for shape in (((d_out, d_in), (d_out,)) if self.bias else ((d_out, d_in),))]

    def _scale(self, B: int) -> float:
        """The factor in front of sum_n: 1/B (mean) or 1 (sum)."""
        return 1.0 / B if self.reduction == "mean" else 1.0

    def _design(self) -> np.ndarray:
        return _augment(self.X, 1.0) if self.bias else self.X

    def _checked(self, tree: Tree, name: str) -> Tree:
        """``tree`` with the parameter names, in order, shapes and finite values checked."""
        if list(tree) != self.names:
            raise ValueError(f"{name} must have the keys {self.names} in this order, "
                             f"got {list(tree)}")
        for key, shape in zip(self.names, self.shapes, strict=True):
            value = np.asarray(tree[key])
            if value.shape != shape:
                raise ValueError(f"{name}[{key!r}] has shape {value.shape}; expected {shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name}[{key!r}] contains non-finite values (NaN or inf)")
        return tree

    def _thetas(self, params: Tree) -> list[np.ndarray]:
        """Augmented layer matrices theta_i = [W_i | b_i] from checked ``params``."""
        return self._split(flatten(self._checked(params, "params")))

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Flat vectors (..., P) -> augmented matrices (..., out, in+1) per layer."""
        lead, thetas, start = flat.shape[:-1], [], 0
        for d_in, d_out in zip(self.widths[:-1], self.widths[1:], strict=True):
            W = flat[..., start:start + d_out * d_in].reshape(*lead, d_out, d_in)
            start += d_out * d_in
            if self.bias:
                W = np.concatenate([W, flat[..., start:start + d_out, None]], axis=-1)
                start += d_out
            thetas.append(W)
        return thetas

    def _pack(self, thetas: Sequence[np.ndarray]) -> np.ndarray:
        """Augmented matrices (..., out, in+1) -> flat (..., P): row-major W, then b."""
        parts = []
        for theta in thetas:
            W = theta[..., :-1] if self.bias else theta
            parts.append(W.reshape(*W.shape[:-2], -1))
            if self.bias:
                parts.append(theta[..., -1])
        return np.concatenate(parts, axis=-1)

    def _unflat(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        sizes = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        return {name: piece.reshape(shape) for name, piece, shape
                in zip(self.names, np.split(flat, sizes), self.shapes, strict=True)}

    def _weight(self, theta: np.ndarray) -> np.ndarray:
        return theta[..., :-1] if self.bias else theta

    def _forward(self, thetas: Sequence[np.ndarray], rows: np.ndarray) -> list[_Layer]:
        layers, h = [], self.X[rows]
        for i, theta in enumerate(thetas):
            h_bar = _augment(h, 1.0) if self.bias else h
            a = h_bar @ theta.T
            if i == len(thetas) - 1:
                layers.append(_Layer(h_bar, a, None, None))
            else:
                h, dphi, d2phi = _activation(self.activation, a)
                layers.append(_Layer(h_bar, a, dphi, d2phi))
        return layers

    def _backward(self, thetas, layers, s_top: np.ndarray) -> list[np.ndarray]:
        """s_i for every layer from s_last = ``s_top`` (..., B, C) (002 §2.1.4 recursion)."""
        ss = [s_top]
        for theta, below in zip(thetas[:0:-1], layers[-2::-1], strict=True):
            ss.append((ss[-1] @ self._weight(theta)) * below.dphi)
        return ss[::-1]

    def _grads_from(self, thetas, layers, s_top: np.ndarray) -> np.ndarray:
        """Per-sample gradients (..., B, P) of the output functional whose dl/dz is s_top."""
        ss = self._backward(thetas, layers, s_top)
        return self._pack([s[..., :, None] * layer.h_bar[:, None, :]
                           for s, layer in zip(ss, layers, strict=True)])

    def _ridge_grads(self, thetas, layers, s_top: np.ndarray) -> np.ndarray:
        """Per-sample gradients of l_n = nll + (l2/2)||theta||^2, shape (..., B, P)."""
        return self._grads_from(thetas, layers, s_top) + self.l2 * self._pack(thetas)

    def _hvps(self, params: Tree, V: np.ndarray, batch) -> np.ndarray:
        """H v for each row v of V (K, P): the R-operator (Pearlmutter 1994) on both passes."""
        thetas, rows = self._thetas(params), batch_rows(batch, self.num_samples())
        layers = self._forward(thetas, rows)
        dirs = self._split(V)
        R_as, R_hs = self._r_forward(thetas, dirs, layers)
        z = layers[-1].a
        ss = self._backward(thetas, layers, self._dloss(z, self.y[rows]))
        # backward R-pass from R{s_last} = Lambda R{z};
        # R{s_{i-1}} = (W_i^T R{s_i} + R{W_i}^T s_i) ⊙ phi' + (W_i^T s_i) ⊙ phi'' ⊙ R{a_{i-1}}
        R_s = _einsum("bcd,kbd->kbc", self._out_hess(z), R_as[-1])
        R_grads = []
        for i in range(len(thetas) - 1, -1, -1):
            # R{s_i h_bar_i^T} summed over the batch, with R{h_bar_i} = [R{h_i}; 0]
            R_grads.append(_einsum("kbo,bj->koj", R_s, layers[i].h_bar))
            if i == 0:
                break
            R_h_bar = _augment(R_hs[i], 0.0) if self.bias else R_hs[i]
            R_grads[-1] += _einsum("bo,kbj->koj", ss[i], R_h_bar)
            W, below = self._weight(thetas[i]), layers[i - 1]
            R_s = ((_einsum("kbo,oj->kbj", R_s, W) + _einsum("bo,koj->kbj", ss[i],
                                                                  self._weight(dirs[i])))
                   * below.dphi + (ss[i] @ W) * below.d2phi * R_as[i - 1])
        B = rows.size
        return self._scale(B) * (self._pack(R_grads[::-1]) + B * self.l2 * V)

    def _r_forward(self, thetas, dirs, layers) -> tuple[list, list]:
        """R{a_i} = R{theta_i} h_bar_i + W_i R{h_i}, R{h_{i+1}} = phi'(a_i) ⊙ R{a_i}, R{h_0} = 0.

        Returns R{a_i} (K, B, out) per layer and R{h_i} (K, B, in) per layer (None for i = 0).
        """
        R_as, R_hs = [], [None]
        for theta, d_theta, layer in zip(thetas, dirs, layers, strict=True):
            R_a = _einsum("bj,koj->kbo", layer.h_bar, d_theta)
            if R_hs[-1] is not None:
                R_a += _einsum("kbj,oj->kbo", R_hs[-1], self._weight(theta))
            R_as.append(R_a)
            if layer.dphi is not None:
                R_hs.append(layer.dphi * R_a)
        return R_as, R_hs

    def _gaussian_fisher(self, params: Tree, batch) -> np.ndarray:
        """mse/mse_half: scale * sum_n (J_n^T Lambda_n J_n + l2^2 theta theta^T), closed form."""
        J, theta = self.jac_out(params, batch), flatten(params)
        B = J.shape[0]
        return self._scale(B) * (_sandwich(J, self.out_hess(params, batch))
                                 + B * self.l2**2 * np.outer(theta, theta))

    def _targets(self, rows: np.ndarray, labels) -> np.ndarray:
        if labels is None:
            return self.y[rows]
        return _labels(labels, self.loss_name, rows.size, self.widths[-1])

    def _nll(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample negative log-likelihood (up to constants for the Gaussian ones)."""
        if self.loss_name == "ce":
            return -np.take_along_axis(log_softmax(z, axis=-1), y[:, None], axis=-1)[:, 0]
        if self.loss_name == "bce":
            return np.logaddexp(0.0, z[:, 0]) - y * z[:, 0]
        r = z - y
        return (0.5 if self.loss_name == "mse_half" else 1.0) * np.sum(r * r, axis=-1)

    def _dloss(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dnll/dz (..., B, C) for labels y (..., B) or targets (..., B, C)."""
        if self.loss_name == "ce":
            return softmax(z, axis=-1) - (y[..., None] == np.arange(z.shape[-1]))
        if self.loss_name == "bce":
            return expit(z) - y[..., None]
        return (1.0 if self.loss_name == "mse_half" else 2.0) * (z - y)

    def _out_hess(self, z: np.ndarray) -> np.ndarray:
        B, C = z.shape
        if self.loss_name == "ce":
            p = softmax(z, axis=-1)
            return p[:, :, None] * np.eye(C) - p[:, :, None] * p[:, None, :]
        if self.loss_name == "bce":
            p = expit(z)
            return (p * (1.0 - p))[:, :, None]
        return np.broadcast_to(_OUT_HESS_MAX[self.loss_name] * np.eye(C), (B, C, C))

    def _label_support(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every label with its model probability: (labels (L, B), weights (L, B))."""
        B, C = z.shape
        if self.loss_name == "ce":
            return np.broadcast_to(np.arange(C)[:, None], (C, B)), softmax(z, axis=-1).T
        p = expit(z[:, 0])
        return np.broadcast_to(np.array([[0.0], [1.0]]), (2, B)), np.stack([1.0 - p, p])

    def _mc_labels(self, z, mc_samples, rng) -> tuple[np.ndarray, np.ndarray]:
        """``mc_samples`` label draws per input, each with weight 1/K."""
        if not isinstance(mc_samples, (int, np.integer)) or mc_samples < 1:
            raise ValueError(f"Invalid mc_samples: {mc_samples!r}; must be an integer >= 1")
        if rng is None:
            raise ValueError("fisher_true(mc_samples=K) needs rng (a numpy Generator)")
        labels = self._sample(z, rng, (mc_samples,))
        return labels, np.full((mc_samples, z.shape[0]), 1.0 / mc_samples)

    def _sample(self, z: np.ndarray, rng: np.random.Generator, lead: tuple) -> np.ndarray:
        if self.loss_name == "ce":
            cdf = np.cumsum(softmax(z, axis=-1), axis=-1)
            u = rng.random(lead + (z.shape[0], 1))
            return np.minimum((cdf < u).sum(axis=-1), z.shape[1] - 1)
        if self.loss_name == "bce":
            return (rng.random(lead + (z.shape[0],)) < expit(z[:, 0])).astype(np.float64)
        std = 1.0 if self.loss_name == "mse_half" else np.sqrt(0.5)
        return z + std * rng.standard_normal(lead + z.shape)


class SoftmaxRegression(FeedForward):
    """``prob:softmax``: one linear layer with bias, softmax cross-entropy; h_bar = [x; 1],
    s = p - e_y."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 64, dim: int = 4, classes: int = 3,
             separation: float = 2.0, reduction: str = "mean", l2: float = 0.0
             ) -> SoftmaxRegression:
        X, y = gmm(rng, n_samples, dim, classes, separation)
        return cls(X, y, [dim, classes], "identity", "ce", True, reduction, l2,
                   id="prob:softmax")


class LeastSquares(FeedForward):
    """``prob:lstsq``: 1/2 ||X w - y||^2 / N, widths [d, 1], no bias."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 50, dim: int = 5,
             design: str = "full_rank", cond: float = 1e4, rank: int | None = None,
             noise: float = 0.1, reduction: str = "mean") -> LeastSquares:
        """Designs: ``full_rank`` (Gaussian), ``rank_deficient`` (Gaussian of rank ``rank``,
        default d // 2), ``ill_conditioned`` (X^T X / N with eigenvalues geometric from 1 to
        1/cond in Haar bases). y = X w_true + noise N(0, 1)."""
        _choice(design, "design", LSTSQ_DESIGNS)
        X = _lstsq_design(rng, n_samples, dim, design, cond, rank)
        y = X @ rng.standard_normal(dim) + noise * rng.standard_normal(n_samples)
        return cls(X, y[:, None], [dim, 1], "identity", "mse_half", False, reduction,
                   id="prob:lstsq")


class LogisticRegression(FeedForward):
    """``prob:logreg``: binary logistic regression (bce), widths [d, 1], optional ridge l2."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int = 200, dim: int = 5,
             flip: float = 0.0, l2: float = 0.0, bias: bool = True, standardize: bool = False,
             reduction: str = "mean") -> LogisticRegression:
        """Features N(0, I) (columns standardised if asked); labels drawn from a ground-truth
        logistic model w ~ N(0, I), b ~ N(0, 1) (well-specified), then round(flip N) of them,
        at random positions, flipped."""
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"Invalid flip fraction: {flip}; must be in [0, 1]")
        X = rng.standard_normal((n_samples, dim))
        if standardize:
            X = (X - X.mean(axis=0)) / X.std(axis=0)
        logits = X @ rng.standard_normal(dim) + (rng.standard_normal() if bias else 0.0)
        y = (rng.random(n_samples) < expit(logits)).astype(np.float64)
        flipped = rng.choice(n_samples, size=int(round(flip * n_samples)), replace=False)
        y[flipped] = 1.0 - y[flipped]
        return cls(X, y, [dim, 1], "identity", "bce", bias, reduction, l2, id="prob:logreg")


class DigitsMLP(FeedForward):
    """``prob:W1``: MLP 64-32-32-10 (tanh or relu, ce) on the digits train split (INVENTORY
    §1.3); 20-32-32-10 on the Gaussian-mixture fallback."""

    @classmethod
    def make(cls, rng: np.random.Generator, n_samples: int | None = None,
             activation: str = "tanh", split: str = "train", reduction: str = "mean"
             ) -> DigitsMLP:
        """``n_samples``: a random subset without replacement (for tractable dense Hessians)."""
        X, y = digits(split)
        if n_samples is not None:
            if not 1 <= n_samples <= y.size:
                raise ValueError(f"Invalid n_samples: {n_samples}; must be in [1, {y.size}]")
            rows = np.sort(rng.choice(y.size, size=n_samples, replace=False))
            X, y = X[rows], y[rows]
        return cls(X, y, [X.shape[1], 32, 32, 10], activation, "ce", True, reduction,
                   id="prob:W1")


def _activation(name: str, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """phi(a), phi'(a), phi''(a)."""
    if name == "tanh":
        t = np.tanh(a)
        return t, 1.0 - t * t, -2.0 * t * (1.0 - t * t)
    if name == "sigmoid":
        s = expit(a)
        return s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "relu":
        return np.maximum(a, 0.0), (a > 0.0).astype(np.float64), np.zeros_like(a)
    return a, np.ones_like(a), np.zeros_like(a)


def _lstsq_design(rng, N: int, d: int, design: str, cond: float, rank: int | None):
    """The design matrix X (N, d) of ``prob:lstsq``."""
    if design == "full_rank":
        return rng.standard_normal((N, d))
    if design == "rank_deficient":
        r = d // 2 if rank is None else rank
        if not 1 <= r < d:
            raise ValueError(f"Invalid rank: {r}; a rank-deficient design needs 1 <= rank < {d}")
        return rng.standard_normal((N, r)) @ rng.standard_normal((r, d)) / np.sqrt(r)
    if N < d:
        raise ValueError(f"Invalid n_samples: {N}; an ill-conditioned design needs >= dim = {d}")
    # X = sqrt(N) U diag(sqrt(lam)) V^T, so X^T X / N = V diag(lam) V^T with lam_1/lam_d = cond
    U = random_orthogonal(N, rng)[:, :d]
    return np.sqrt(N) * (U * np.sqrt(spectrum("geometric", d, cond))) @ random_orthogonal(d, rng).T


def _einsum(subscripts: str, *operands: np.ndarray) -> np.ndarray:
    """``np.einsum`` contracted through BLAS (the R-passes are batched over directions k)."""
    return np.einsum(subscripts, *operands, optimize=True)


def _augment(h: np.ndarray, value: float) -> np.ndarray:
    """[h, value] along the last axis: the homogeneous coordinate (1) or its R-derivative (0)."""
    return np.concatenate([h, np.full(h.shape[:-1] + (1,), value)], axis=-1)


def _sandwich(J: np.ndarray, Lam: np.ndarray) -> np.ndarray:
    """sum_n J_n^T Lambda_n J_n for J (B, C, P), Lambda (B, C, C)."""
    P = J.shape[-1]
    return J.reshape(-1, P).T @ (Lam @ J).reshape(-1, P)


def _sq_norm(thetas: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(theta * theta) for theta in thetas))


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Invalid {name}: {value!r}; allowed: {allowed}")


def _widths(widths: Sequence[int]) -> tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) < 2 or not all(isinstance(w, (int, np.integer)) and w >= 1 for w in widths):
        raise ValueError(f"Invalid widths: {widths!r}; need at least two integers >= 1 "
                         "(input dimension, ..., output dimension)")
    return tuple(int(w) for w in widths)


def _labels(y: np.ndarray, loss: str, N: int, C: int) -> np.ndarray:
    """Data labels in canonical form: int64 (N,) classes (ce), float {0, 1} (N,) (bce),
    float (N, C) targets (mse, mse_half; (N,) accepted when C = 1)."""
    y = np.asarray(y)
    if loss == "ce":
        if C < 2:
            raise ValueError(f"loss 'ce' needs widths[-1] >= 2 classes, got {C}")
        if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= C:
            raise ValueError(f"y must be ({N},) integer classes in [0, {C - 1}] for loss 'ce'")
        return y.astype(np.int64)
    if loss == "bce":
        if C != 1:
            raise ValueError(f"loss 'bce' needs widths[-1] == 1, got {C}")
        if y.shape != (N,) or not np.all((y == 0) | (y == 1)):
            raise ValueError(f"y must be ({N},) labels in {{0, 1}} for loss 'bce'")
        return y.astype(np.float64)
    y = y.astype(np.float64).reshape(N, C) if y.shape == (N,) and C == 1 else y
    if y.shape != (N, C) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite ({N}, {C}) targets for loss {loss!r}")
    return y.astype(np.float64)


REGISTRY.register("prob:mlp", FeedForward)
REGISTRY.register("prob:softmax", SoftmaxRegression)
REGISTRY.register("prob:lstsq", LeastSquares)
REGISTRY.register("prob:logreg", LogisticRegression)
REGISTRY.register("prob:W1", DigitsMLP)
