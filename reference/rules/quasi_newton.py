"""The quasi-Newton rules ``rule:so.bfgs`` and ``rule:so.lbfgs`` (INVENTORY §2.4; 003 §3.3-§3.4,
002 §2.4.3 Eq. (15)), registered from `reference.rules.second_order`.

Notation: s = delta = x_t - x_{t-1} (the last step), y = phi = g_t - g_{t-1}. A step computes,
from the state of the previous call and the new gradient g_t = ``grads``: the curvature update
with (s, y) (skipped when s^T y <= 0), the direction p = -M g (BFGS) or -H_k g (L-BFGS
two-loop), and the strong-Wolfe step a (`contract.linesearch.strong_wolfe`, c1, c2) from
a0 = 1, except a0 = min(1, 1/||p||) while no curvature pair has been used (then p = -g).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from contract import freeze
from reference.rules.second_order import register, wolfe_step
from reference.tree import flatten

# --- BFGS: 003 §3.3 ------------------------------------------------------------------------


def bfgs_update(M: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """003 §3.3 step 4, Reading (the "+" after M(t-1) restored):
    M_t = M + (1 + y^T M y / s^T y) s s^T / s^T y - (s y^T M + M y s^T) / s^T y.
    Equal to 002 Eq. (15), V^T M V + rho s s^T with rho = 1/y^T s, V = I - rho y s^T."""
    sy = float(s @ y)
    My = M @ y  # M is symmetric: y^T M = (M y)^T, and the result is exactly symmetric
    return M + (1.0 + float(y @ My) / sy) * np.outer(s, s) / sy - (
        np.outer(s, My) + np.outer(My, s)) / sy


def bfgs_update_printed(M: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """003 §3.3 step 4, Text: M_t = M (1 + y^T M y / s^T y) s s^T / s^T y - (s y^T M +
    M y s^T) / s^T y, the matrix product M s s^T in place of the sum (rank <= 3, in general
    neither symmetric nor positive definite)."""
    sy = float(s @ y)
    My, yM = M @ y, y @ M
    return (1.0 + float(y @ My) / sy) * (M @ np.outer(s, s)) / sy - (
        np.outer(s, yM) + np.outer(My, s)) / sy


def bfgs(g, state, params, oracle, M0, skip, c1, c2, printed=False):
    """003 §3.3 steps 1-4, Reading: p = -M g (the Text's rho_t = M_t g with theta + eps* rho_t
    and eps* > 0 ascends), a from the strong-Wolfe search (c1, c2), x <- x + a p.

    M0: 'identity' (default) or 'scaled': M = (s^T y / y^T y) I just before the first update
    (Nocedal & Wright Eq. (6.20)). skip=True skips the update when s^T y <= 0; skip=False
    applies it whenever s^T y != 0 (positive definiteness may be lost: a non-descent p then
    raises ValueError in the line search). s^T y = 0 (e.g. a zero step) is always skipped."""
    t, M = state["t"], state["M"]
    updated = bool(state["updated"])
    if t > 0:
        s, y = state["s"], g - state["g"]
        sy = float(s @ y)
        if sy > 0 or (not skip and sy != 0):
            if M0 == "scaled" and not updated and sy > 0:
                M = (sy / float(y @ y)) * np.eye(g.size)
            M = (bfgs_update_printed if printed else bfgs_update)(M, s, y)
            updated = True
    p = -M @ g
    a0 = 1.0 if updated else min(1.0, 1.0 / max(float(np.linalg.norm(p)), 1e-300))
    if printed and float(g @ p) >= 0:  # no decrease along an ascent direction: eps* = 0
        a = 0.0
    else:
        a = wolfe_step(params, oracle, g, p, a0, c1, c2)
    return a * p, freeze(M=M, g=g, s=a * p, updated=updated, t=t + 1)


def _bfgs_init(params) -> Mapping[str, Any]:
    n = flatten(params).size
    return freeze(M=np.eye(n), g=np.zeros(n), s=np.zeros(n), updated=False, t=0)


# --- L-BFGS: 003 §3.4, 002 §2.4.3 ------------------------------------------------------------


def two_loop(g: np.ndarray, S: np.ndarray, Y: np.ndarray, gamma: float) -> np.ndarray:
    """H_k g by the two-loop recursion over the pairs (rows of S, Y, oldest first) with
    H_0 = gamma I (Nocedal & Wright Alg. 7.4); equal to Eq. (15) applied pair by pair."""
    rho = 1.0 / np.einsum("ij,ij->i", S, Y)
    q = g.copy()
    a = np.zeros(len(S))
    for i in reversed(range(len(S))):
        a[i] = rho[i] * float(S[i] @ q)
        q = q - a[i] * Y[i]
    r = gamma * q
    for i in range(len(S)):
        b = rho[i] * float(Y[i] @ r)
        r = r + (a[i] - b) * S[i]
    return r


def dense_inverse(S: np.ndarray, Y: np.ndarray, gamma: float) -> np.ndarray:
    """The BFGS inverse built densely from H_0 = gamma I and the pairs, 002 Eq. (15)."""
    H = gamma * np.eye(S.shape[1])
    for s, y in zip(S, Y, strict=True):
        rho = 1.0 / float(y @ s)
        V = np.eye(len(s)) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


def lbfgs(g, state, params, oracle, m, c1, c2):
    """L-BFGS (INVENTORY ``so.lbfgs``): the last m pairs (s_i, y_i) with s_i^T y_i > 0 (others
    skipped), H_0 = gamma I with gamma = s^T y / y^T y of the newest pair (1 with none),
    p = -H_k g by the two-loop recursion, strong-Wolfe step.

    State: S, Y (m, n) with the ``count`` stored pairs in rows 0..count-1, oldest first (the
    arrays are allocated at the first step, when m is known; init gives (0, n)), the last g
    and s, t."""
    t, n = state["t"], g.size
    S, Y, k = state["S"], state["Y"], int(state["count"])
    if t == 0:
        S, Y = np.zeros((m, n)), np.zeros((m, n))
    elif S.shape[0] != m:
        raise ValueError(f"Invalid m: {m}; the state holds {S.shape[0]} pairs (m changed)")
    if t > 0:
        s, y = state["s"], g - state["g"]
        if float(s @ y) > 0:
            if k == m:
                S, Y, k = np.roll(S, -1, axis=0), np.roll(Y, -1, axis=0), m - 1
            S, Y = S.copy(), Y.copy()
            S[k], Y[k], k = s, y, k + 1
    gamma = float(S[k - 1] @ Y[k - 1]) / float(Y[k - 1] @ Y[k - 1]) if k else 1.0
    p = -two_loop(g, S[:k], Y[:k], gamma)
    a0 = 1.0 if k else min(1.0, 1.0 / max(float(np.linalg.norm(p)), 1e-300))
    a = wolfe_step(params, oracle, g, p, a0, c1, c2)
    return a * p, freeze(S=S, Y=Y, count=k, g=g, s=a * p, t=t + 1)


def _lbfgs_init(params) -> Mapping[str, Any]:
    n = flatten(params).size
    return freeze(S=np.zeros((0, n)), Y=np.zeros((0, n)), count=0, g=np.zeros(n),
                  s=np.zeros(n), t=0)


# --- registration ---------------------------------------------------------------------------

register(
    "rule:so.bfgs",
    bfgs,
    (bfgs.__doc__ or "") + " " + (bfgs_update.__doc__ or "")
    + " State: M, the last g and s, updated (M has been updated), t.",
    init=_bfgs_init,
)
register(
    "rule:so.bfgs[as_printed]",
    lambda *args, **kw: bfgs(*args, **kw, printed=True),
    (bfgs_update_printed.__doc__ or "") + " Direction, line search and options as rule:so.bfgs "
    "(a two-sided search along the printed rho_t = M g would pick eps* < 0, i.e. the "
    "Reading's -M g). When -M g is not a descent direction (g^T M g <= 0) no step decreases "
    "f along it: eps* = 0, the update is 0, s = 0 skips the next M update, and the iteration "
    "stalls there (this is what the printed update does after a near-exact line search: "
    "g^T M_1 g is O(s^T g)).",
    init=_bfgs_init,
)
register("rule:so.lbfgs", lbfgs, lbfgs.__doc__ or "", init=_lbfgs_init)
