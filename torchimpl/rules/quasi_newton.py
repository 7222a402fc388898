"""The quasi-Newton rules ``rule:so.bfgs`` and ``rule:so.lbfgs`` in torch (INVENTORY §2.4; 003
§3.3-§3.4, 002 §2.4.3 Eq. (15)), registered from `torchimpl.rules.second_order`; the same
mathematics, state keys and messages as `reference.rules.quasi_newton`.

s = x_t - x_{t-1}, y = g_t - g_{t-1}; the curvature update is skipped when s^T y <= 0; the
strong-Wolfe step starts at a0 = 1, or a0 = min(1, 1/||p||) while no pair has been used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from contract import freeze
from torchimpl.rules.second_order import dot, register, wolfe_step
from torchimpl.tree import flatten

# --- BFGS: 003 §3.3 ------------------------------------------------------------------------


def bfgs_update(M: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """003 §3.3 step 4, Reading (= 002 Eq. (15))."""
    sy = dot(s, y)
    My = M @ y  # M is symmetric: y^T M = (M y)^T, and the result is exactly symmetric
    return M + (1.0 + dot(y, My) / sy) * torch.outer(s, s) / sy - (
        torch.outer(s, My) + torch.outer(My, s)) / sy


def bfgs_update_printed(M: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """003 §3.3 step 4, Text: the matrix product M s s^T in place of M + ..."""
    sy = dot(s, y)
    My, yM = M @ y, y @ M
    return (1.0 + dot(y, My) / sy) * (M @ torch.outer(s, s)) / sy - (
        torch.outer(s, yM) + torch.outer(My, s)) / sy


def bfgs(g, state, params, oracle, M0, skip, c1, c2, printed=False):
    t, M = state["t"], state["M"].to(g)
    updated = bool(state["updated"])
    if t > 0:
        s, y = state["s"].to(g), g - state["g"].to(g)
        sy = dot(s, y)
        if sy > 0 or (not skip and sy != 0):
            if M0 == "scaled" and not updated and sy > 0:
                M = (sy / dot(y, y)) * torch.eye(g.numel(), dtype=g.dtype, device=g.device)
            M = (bfgs_update_printed if printed else bfgs_update)(M, s, y)
            updated = True
    p = -M @ g
    a0 = 1.0 if updated else min(1.0, 1.0 / max(float(torch.linalg.vector_norm(p)), 1e-300))
    if printed and dot(g, p) >= 0:  # no decrease along an ascent direction: eps* = 0
        a = 0.0
    else:
        a = wolfe_step(params, oracle, g, p, a0, c1, c2)
    return a * p, freeze(M=M, g=g, s=a * p, updated=updated, t=t + 1)


def _bfgs_init(params) -> Mapping[str, Any]:
    x = flatten(params)
    n = x.numel()
    return freeze(M=torch.eye(n, dtype=x.dtype, device=x.device), g=torch.zeros_like(x),
                  s=torch.zeros_like(x), updated=False, t=0)


# --- L-BFGS: 003 §3.4, 002 §2.4.3 ------------------------------------------------------------


def two_loop(g: torch.Tensor, S: torch.Tensor, Y: torch.Tensor, gamma: float) -> torch.Tensor:
    """H_k g by the two-loop recursion over the rows of S, Y (oldest first), H_0 = gamma I."""
    rho = 1.0 / (S * Y).sum(dim=1)
    q = g.clone()
    a = [0.0] * len(S)
    for i in reversed(range(len(S))):
        a[i] = float(rho[i]) * dot(S[i], q)
        q = q - a[i] * Y[i]
    r = gamma * q
    for i in range(len(S)):
        b = float(rho[i]) * dot(Y[i], r)
        r = r + (a[i] - b) * S[i]
    return r


def lbfgs(g, state, params, oracle, m, c1, c2):
    t, n = state["t"], g.numel()
    S, Y, k = state["S"].to(g), state["Y"].to(g), int(state["count"])
    if t == 0:
        S = torch.zeros((m, n), dtype=g.dtype, device=g.device)
        Y = torch.zeros_like(S)
    elif S.shape[0] != m:
        raise ValueError(f"Invalid m: {m}; the state holds {S.shape[0]} pairs (m changed)")
    if t > 0:
        s, y = state["s"].to(g), g - state["g"].to(g)
        if dot(s, y) > 0:
            if k == m:
                S, Y, k = torch.roll(S, -1, dims=0), torch.roll(Y, -1, dims=0), m - 1
            S, Y = S.clone(), Y.clone()
            S[k], Y[k], k = s, y, k + 1
    gamma = dot(S[k - 1], Y[k - 1]) / dot(Y[k - 1], Y[k - 1]) if k else 1.0
    p = -two_loop(g, S[:k], Y[:k], gamma)
    a0 = 1.0 if k else min(1.0, 1.0 / max(float(torch.linalg.vector_norm(p)), 1e-300))
    a = wolfe_step(params, oracle, g, p, a0, c1, c2)
    return a * p, freeze(S=S, Y=Y, count=k, g=g, s=a * p, t=t + 1)


def _lbfgs_init(params) -> Mapping[str, Any]:
    x = flatten(params)
    empty = torch.zeros((0, x.numel()), dtype=x.dtype, device=x.device)
    return freeze(S=empty, Y=empty.clone(), count=0, g=torch.zeros_like(x),
                  s=torch.zeros_like(x), t=0)


# --- registration ---------------------------------------------------------------------------

_DOC = "See the NumPy reference rule of the same ID (reference.rules.quasi_newton)."
register(
    "rule:so.bfgs",
    bfgs,
    "BFGS (003 §3.3 Reading; 002 Eq. (15)). State: M, g, s, updated, t. " + _DOC,
    init=_bfgs_init,
)
register(
    "rule:so.bfgs[as_printed]",
    lambda *args, **kw: bfgs(*args, **kw, printed=True),
    "BFGS with the printed M update (003 §3.3 step 4, Text: no '+'). " + _DOC,
    init=_bfgs_init,
)
register(
    "rule:so.lbfgs",
    lbfgs,
    "L-BFGS, two-loop recursion, strong Wolfe (003 §3.4). State: S, Y, count, g, s, t. "
    + _DOC,
    init=_lbfgs_init,
)
