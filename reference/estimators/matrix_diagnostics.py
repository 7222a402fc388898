"""Matrix diagnostics: exact spectra and inertia, condition numbers, the diagonal-structure
diagnostics of 002 §3.2 (Gershgorin discs, off-diagonal noise, SNR, 2-D DFT), agreement
metrics for Fisher diagonals, the Newton decrement and the KL between output distributions
(INVENTORY §3.5-§3.8).

Array-level: inputs are matrices, diagonals and logits. Eigenvalues of non-symmetric matrices
are returned as real and imaginary parts. Noise is never drawn here except through
`reference.oracle.probe("gaussian", ...)` from a given seed. Option defaults and docs:
`contract.specs.factors.SPECS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import rankdata

from contract import Estimator
from contract.specs.estimators import SYM_RTOL
from contract.specs.factors import (
    MATCHES,
    OFFDIAG,
    SPECS,
    noise_source,
    option,
    top_k_count,
    zero_tolerance,
)
from contract.validate import boolean, nonnegative, real
from reference.estimators.factors import finite_array
from reference.estimators.registry import REGISTRY
from reference.oracle import probe

EPS = float(np.finfo(np.float64).eps)


def _square(name: str, M) -> np.ndarray:
    M = finite_array(name, M, 2)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square, got shape {M.shape}")
    return M


def _symmetric(name: str, M) -> np.ndarray:
    """(M + M^T)/2 after checking max|M - M^T| <= SYM_RTOL max|M|."""
    M = _square(name, M)
    if np.abs(M - M.T).max() > SYM_RTOL * np.abs(M).max():
        raise ValueError(f"{name} must be symmetric (relative asymmetry <= {SYM_RTOL})")
    return 0.5 * (M + M.T)


def _eigenvalues(M: np.ndarray) -> np.ndarray:
    """Complex eigenvalues: eigvalsh for an exactly symmetric M, else eigvals."""
    if np.array_equal(M, M.T):
        return np.linalg.eigvalsh(M).astype(complex)
    return np.linalg.eigvals(M)


def eig_exact(M, *, zero_rtol=None):
    # doc: contract.specs.factors.SPECS['est:eig_exact']
    M = _symmetric("M", M)
    lam, Q = np.linalg.eigh(M)
    pivot = Q[np.abs(Q).argmax(axis=0), np.arange(Q.shape[1])]
    Q = Q * np.where(pivot < 0, -1.0, 1.0)
    tol = zero_tolerance(zero_rtol, lam.size, EPS, float(np.abs(lam).max()))
    n_pos, n_neg = int(np.sum(lam > tol)), int(np.sum(lam < -tol))
    return {"eigenvalues": lam, "eigenvectors": Q, "n_pos": n_pos,
            "n_zero": lam.size - n_pos - n_neg, "n_neg": n_neg, "zero_tol": tol}


def condition_number(M):
    # doc: contract.specs.factors.SPECS['est:condition_number']
    lam = np.linalg.eigvalsh(_symmetric("M", M))
    if not lam[0] > lam.size * EPS * lam[-1]:
        raise ValueError(
            f"M must be positive definite: lam_min = {lam[0]:.3e} <= n eps lam_max "
            f"(lam_max = {lam[-1]:.3e})"
        )
    return {"kappa": lam[-1] / lam[0], "lam_max": lam[-1], "lam_min": lam[0]}


def _ascending(eig: np.ndarray) -> np.ndarray:
    return eig[np.lexsort((eig.imag, eig.real))]


def gershgorin(M):
    # doc: contract.specs.factors.SPECS['est:gershgorin']
    M = _square("M", M)
    a = np.diag(M)
    Off = M - np.diag(a)
    R = np.abs(Off).sum(axis=1)  # 002 §3.2: R_i = sum_{j != i} |a_ij|
    norm2 = np.linalg.norm(M, 2)
    if norm2 == 0:
        raise ValueError("M must not be zero")
    eig = _ascending(_eigenvalues(M))
    dist = np.abs(eig[:, None] - a[None, :])
    inside = np.any(dist <= R[None, :] + a.size * EPS * norm2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(R == 0, 0.0, R / np.abs(a))
    return {
        "centers": a,
        "radii": R,
        "eig_real": eig.real,
        "eig_imag": eig.imag,
        "frac_in_union": inside.mean(),
        "ratio_max": ratio.max(),
        "ratio_median": np.median(ratio),
        "frac_dominant": np.mean(np.abs(a) > R),
        "diag_energy": np.sum(a**2) / np.sum(M**2),
        "offdiag_rel2": np.linalg.norm(Off, 2) / norm2,
        "eig_dist": dist.min(axis=1) / norm2,
    }


def control_matrices(A) -> dict[str, np.ndarray]:
    """Controls of known structure, of A's size and trace (s = tr(A)/n, the mean eigenvalue):
    ``diagonal`` Diag(A); ``banded`` Diag(A) + (s/4) on the first off-diagonals; ``dense``
    c I + c 11^T with c = s/2 (diagonal s, eigenvalues c (n - 1 times) and (n + 1) c)."""
    A = _square("A", A)
    n, s = A.shape[0], np.trace(A) / A.shape[0]
    band = np.eye(n, k=1) + np.eye(n, k=-1)
    return {
        "diagonal": np.diag(np.diag(A)),
        "banded": np.diag(np.diag(A)) + 0.25 * s * band,
        "dense": 0.5 * s * (np.eye(n) + np.ones((n, n))),
    }


def _noise(n: int, Z, seed, sigma, symmetrize) -> np.ndarray:
    """E: sigma z_ij off the diagonal, zero on it (symmetrized: sigma (z_ij + z_ji)/sqrt 2)."""
    sigma = nonnegative("sigma", sigma)
    boolean("symmetrize", symmetrize)
    seed = noise_source(Z is not None, seed)
    Z = probe("gaussian", (n, n), seed) if seed is not None else finite_array("Z", Z, 2)
    if Z.shape != (n, n):
        raise ValueError(f"Z must have shape {(n, n)}, got {Z.shape}")
    if symmetrize:
        Z = (Z + Z.T) / np.sqrt(2.0)
    return sigma * (Z - np.diag(np.diag(Z)))  # 002 §3.2: e_ij ~ N(0, sigma^2), i != j


def _descending(eig: np.ndarray) -> np.ndarray:
    return eig[np.lexsort((-eig.imag, -eig.real))]


def _displacement(A: np.ndarray, E: np.ndarray, match: str, kaiser: float) -> dict:
    M_hat = A + E  # 002 §3.2
    lam_A, lam_M = _descending(_eigenvalues(A)), _descending(_eigenvalues(M_hat))
    if match == "sort":
        index = np.arange(lam_A.size)
    else:
        index = linear_sum_assignment(np.abs(lam_A[:, None] - lam_M[None, :]))[1]
    keep = lam_A.real > kaiser
    displacement = np.abs(lam_M[index] - lam_A)[keep]
    return {
        "E": E,
        "M_hat": M_hat,
        "eig_A_real": lam_A.real,
        "eig_A_imag": lam_A.imag,
        "eig_M_real": lam_M.real,
        "eig_M_imag": lam_M.imag,
        "match_index": index,
        "n_kaiser": int(keep.sum()),
        "displacement": displacement,
        "rel_displacement": displacement / np.abs(lam_A[keep]),
        "max_displacement": displacement.max(initial=0.0),
    }


def offdiag_noise(A, Z=None, *, seed=None, sigma=1e-3, symmetrize=False, match="sort",
                  kaiser=1.0, controls=False):
    # doc: contract.specs.factors.SPECS['est:offdiag_noise']
    option("match", match, MATCHES)
    kaiser = real("kaiser", kaiser)
    A = _square("A", A)
    E = _noise(A.shape[0], Z, seed, sigma, symmetrize)
    out = _displacement(A, E, match, kaiser)
    if boolean("controls", controls):
        out["controls"] = {name: _displacement(C, E, match, kaiser)
                           for name, C in control_matrices(A).items()}
    return out


def _snr(M: np.ndarray, M_hat: np.ndarray, offdiag: str) -> dict:
    n = M.shape[0]
    mask = np.triu(np.ones((n, n), bool), 1) if offdiag == "upper" else ~np.eye(n, dtype=bool)
    signal, noise = np.sum(np.diag(M) ** 2), np.sum(np.abs(M_hat[mask]) ** 2)
    if signal == 0 and noise == 0:
        raise ValueError("SNR is undefined: the diagonal of M and the off-diagonal of M_hat vanish")
    with np.errstate(divide="ignore"):
        snr = 10.0 * np.log10(signal / noise)  # 002 §3.2 SNR display
    return {"snr": snr, "signal": signal, "noise": noise}


def snr(M, M_hat=None, *, Z=None, seed=None, sigma=1e-3, symmetrize=False, offdiag="upper",
        controls=False):
    # doc: contract.specs.factors.SPECS['est:snr']
    option("offdiag", offdiag, OFFDIAG)
    M = _square("M", M)
    controls = boolean("controls", controls)
    if M_hat is not None:
        if Z is not None or seed is not None or controls:
            raise ValueError("give M_hat, or the noise (Z or seed, which controls need): not both")
        M_hat = finite_array("M_hat", M_hat, 2)
        if M_hat.shape != M.shape:
            raise ValueError(f"M_hat must have the shape of M {M.shape}, got {M_hat.shape}")
        return _snr(M, M_hat, offdiag)
    E = _noise(M.shape[0], Z, seed, sigma, symmetrize)
    out = _snr(M, M + E, offdiag)
    if controls:
        out["controls"] = {name: _snr(C, C + E, offdiag)
                           for name, C in control_matrices(M).items()}
    return out


def _dft(m: int) -> np.ndarray:
    """W[k, p] = exp(-2 pi i pk/m), the phase reduced mod m first (exact integers)."""
    k = np.arange(m)
    return np.exp(-2j * np.pi * (np.outer(k, k) % m) / m)


def _line_fractions(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy fractions of P along k - l = c and k + l = c (mod n), c = 0..n-1."""
    m, n = P.shape
    k, l = np.arange(m)[:, None], np.arange(n)[None, :]
    total = P.sum()
    diff = np.bincount(((k - l) % n).ravel(), P.ravel(), minlength=n)
    plus = np.bincount(((k + l) % n).ravel(), P.ravel(), minlength=n)
    return diff / total, plus / total


def _fft2(A: np.ndarray) -> dict:
    F = _dft(A.shape[0]) @ A @ _dft(A.shape[1])  # 002 §3.2: the printed double sum
    P = np.abs(F) ** 2
    shifted = np.fft.fftshift(P)
    diff, plus = _line_fractions(P)
    shifted_diff, shifted_plus = _line_fractions(shifted)
    return {
        "F_real": F.real,
        "F_imag": F.imag,
        "magnitude": np.abs(F),
        "magnitude_shifted": np.sqrt(shifted),
        "diff_energy": diff,
        "sum_energy": plus,
        "shifted_diff_energy": shifted_diff,
        "shifted_sum_energy": shifted_plus,
    }


def fft2(A, *, controls=False):
    # doc: contract.specs.factors.SPECS['est:fft2']
    A = finite_array("A", A, 2)
    if not np.any(A):
        raise ValueError("A must not be zero (its energy fractions are undefined)")
    out = _fft2(A)
    if boolean("controls", controls):
        out["controls"] = {name: _fft2(C) for name, C in control_matrices(A).items()}
    return out


def _scaled_l1(r: np.ndarray, c: np.ndarray) -> float:
    """min_alpha sum|alpha c - r|: alpha a weighted median of r_i/c_i, weights |c_i|."""
    used = c != 0
    if not np.any(used):
        return np.abs(r).sum()
    t, w = r[used] / c[used], np.abs(c[used])
    order = np.argsort(t, kind="stable")
    cum = np.cumsum(w[order])
    alpha = t[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return np.abs(alpha * c - r).sum()


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either vector is constant (undefined)."""
    x, y = x - x.mean(), y - y.mean()
    norm = np.linalg.norm(x) * np.linalg.norm(y)
    return x @ y / norm if norm > 0 else np.nan


def _top(x: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-x, kind="stable")[:k]


def _agreement(r: np.ndarray, c: np.ndarray, k: int) -> dict:
    l1 = np.abs(r).sum()
    norm = np.linalg.norm(r) * np.linalg.norm(c)
    return {
        "mae": np.abs(c - r).mean(),
        "rel_l1": np.abs(c - r).sum() / l1,
        "rel_l1_scaled": _scaled_l1(r, c) / l1,
        "cosine": c @ r / norm if norm > 0 else np.nan,
        "spearman": _pearson(rankdata(r), rankdata(c)),
        "top_k_overlap": np.intersect1d(_top(r, k), _top(c, k)).size / k,
    }


def fisher_agreement(r, candidates, *, top_frac=0.1):
    # doc: contract.specs.factors.SPECS['est:fisher_agreement']
    r = finite_array("r", r).ravel()
    if not np.any(r):
        raise ValueError("the reference diagonal r must not be zero")
    if not isinstance(candidates, Mapping):
        raise TypeError(f"candidates must be a mapping name -> diagonal, got {type(candidates)}")
    k = top_k_count(r.size, top_frac)
    out = {}
    for name, c in candidates.items():
        c = finite_array(f"candidates[{name!r}]", c).ravel()
        if c.size != r.size:
            raise ValueError(f"candidates[{name!r}] has {c.size} entries; r has {r.size}")
        out[name] = _agreement(r, c, k)
    return out


def newton_decrement(g, F):
    # doc: contract.specs.factors.SPECS['est:newton_decrement']
    g, F = finite_array("g", g), finite_array("F", F)
    if F.shape == g.shape:
        if np.any(F <= 0):
            raise ValueError("a diagonal F must be positive")
        decrement = np.sum(g**2 / F)  # 002 A.0.3: g^T F^-1 g, F diagonal
    elif g.ndim == 1 and F.shape == (g.size, g.size):
        try:
            L = np.linalg.cholesky(_symmetric("F", F))
        except np.linalg.LinAlgError:
            raise ValueError("a dense F must be positive definite") from None
        y = solve_triangular(L, g, lower=True)
        decrement = y @ y
    else:
        raise ValueError(f"F must have g's shape {g.shape} (diagonal) or be (P, P) for g (P,); "
                         f"got {F.shape}")
    return {"decrement": decrement, "sqrt_decrement": np.sqrt(decrement)}


def kl_outputs(logits_p, logits_q):
    # doc: contract.specs.factors.SPECS['est:kl_outputs']
    zp, zq = finite_array("logits_p", logits_p, 2), finite_array("logits_q", logits_q, 2)
    if zp.shape != zq.shape:
        raise ValueError(f"logits_p {zp.shape} and logits_q {zq.shape} must have one shape")
    log_p = zp - logsumexp(zp, axis=1, keepdims=True)
    log_q = zq - logsumexp(zq, axis=1, keepdims=True)
    kl = np.sum(np.exp(log_p) * (log_p - log_q), axis=1)
    return {"kl": kl.mean(), "kl_per_input": kl}


for _key, _fn in (
    ("est:eig_exact", eig_exact),
    ("est:condition_number", condition_number),
    ("est:gershgorin", gershgorin),
    ("est:offdiag_noise", offdiag_noise),
    ("est:snr", snr),
    ("est:fft2", fft2),
    ("est:fisher_agreement", fisher_agreement),
    ("est:newton_decrement", newton_decrement),
    ("est:kl_outputs", kl_outputs),
):
    _spec = SPECS[_key]
    _fn.__doc__ = _spec.doc
    REGISTRY.register(_key, Estimator(_key, _fn, _spec.options, _spec.doc))
