"""Matrix diagnostics in torch: exact spectra and inertia, condition numbers, the
diagonal-structure diagnostics of 002 §3.2 (Gershgorin discs, off-diagonal noise, SNR, 2-D
DFT), agreement metrics for Fisher diagonals, the Newton decrement and the KL between output
distributions (INVENTORY §3.5-§3.8), with the same IDs, arguments, options, keys and errors as
the reference layer.

Inputs must be floating-point tensors; results have the dtype and device of the first one
(eigenvalues of non-symmetric matrices as real and imaginary parts). Noise is drawn only
through `torchimpl.oracle.probe("gaussian", ...)` from a given seed. The Hungarian matching
runs on the CPU in pure Python (`contract.specs.factors.assignment`, O(n^3)); the zero band
of the inertia and the positive-definiteness check use the machine epsilon of the dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from contract import Estimator
from contract.specs.estimators import SYM_RTOL
from contract.specs.factors import (
    MATCHES,
    OFFDIAG,
    SPECS,
    assignment,
    noise_source,
    option,
    top_k_count,
    zero_tolerance,
)
from contract.validate import boolean, nonnegative, real
from torchimpl.estimators.factors import finite_tensor
from torchimpl.estimators.registry import REGISTRY
from torchimpl.oracle import probe

_COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


def _square(name: str, M, like: torch.Tensor | None = None) -> torch.Tensor:
    M = finite_tensor(name, M, 2, like)
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(M.shape)}")
    return M


def _eps(x: torch.Tensor) -> float:
    return float(torch.finfo(x.dtype).eps)


def _symmetric(name: str, M, like: torch.Tensor | None = None) -> torch.Tensor:
    """(M + M^T)/2 after checking max|M - M^T| <= rtol max|M|, rtol = max(SYM_RTOL, 64 eps)."""
    M = _square(name, M, like)
    rtol = max(SYM_RTOL, 64 * _eps(M))
    if bool((M - M.T).abs().max() > rtol * M.abs().max()):
        raise ValueError(f"{name} must be symmetric (relative asymmetry <= {rtol})")
    return 0.5 * (M + M.T)


def _eigenvalues(M: torch.Tensor) -> torch.Tensor:
    """Complex eigenvalues: eigvalsh for an exactly symmetric M, else eigvals."""
    if torch.equal(M, M.T):
        return torch.linalg.eigvalsh(M).to(_COMPLEX[M.dtype])
    return torch.linalg.eigvals(M)


def _lexsort(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """Indices sorting by ``primary``, ties by ``secondary`` (ascending; two stable sorts)."""
    index = torch.sort(secondary, stable=True).indices
    return index[torch.sort(primary[index], stable=True).indices]


def eig_exact(M, *, zero_rtol=None):
    # doc: contract.specs.factors.SPECS['est:eig_exact']
    M = _symmetric("M", M)
    lam, Q = torch.linalg.eigh(M)
    pivot = Q[Q.abs().argmax(dim=0), torch.arange(Q.shape[1], device=Q.device)]
    Q = Q * torch.where(pivot < 0, -1.0, 1.0).to(Q)
    tol = zero_tolerance(zero_rtol, lam.numel(), _eps(M), float(lam.abs().max()))
    n_pos, n_neg = int((lam > tol).sum()), int((lam < -tol).sum())
    return {"eigenvalues": lam, "eigenvectors": Q, "n_pos": n_pos,
            "n_zero": lam.numel() - n_pos - n_neg, "n_neg": n_neg, "zero_tol": tol}


def condition_number(M):
    # doc: contract.specs.factors.SPECS['est:condition_number']
    M = _symmetric("M", M)
    lam = torch.linalg.eigvalsh(M)
    if not bool(lam[0] > lam.numel() * _eps(M) * lam[-1]):
        raise ValueError(
            f"M must be positive definite: lam_min = {float(lam[0]):.3e} <= n eps lam_max "
            f"(lam_max = {float(lam[-1]):.3e})"
        )
    return {"kappa": lam[-1] / lam[0], "lam_max": lam[-1], "lam_min": lam[0]}


def _median(x: torch.Tensor) -> torch.Tensor:
    """The middle value, or the mean of the two middle values (as numpy.median)."""
    s, n = torch.sort(x).values, x.numel()
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def gershgorin(M):
    # doc: contract.specs.factors.SPECS['est:gershgorin']
    M = _square("M", M)
    a = torch.diagonal(M)
    Off = M - torch.diag(a)
    R = Off.abs().sum(dim=1)  # 002 §3.2: R_i = sum_{j != i} |a_ij|
    norm2 = torch.linalg.matrix_norm(M, ord=2)
    if bool(norm2 == 0):
        raise ValueError("M must not be zero")
    eig = _eigenvalues(M)
    eig = eig[_lexsort(eig.real, eig.imag)]
    dist = (eig[:, None] - a[None, :]).abs()
    inside = (dist <= R[None, :] + a.numel() * _eps(M) * norm2).any(dim=1)
    ratio = torch.where(R == 0, 0.0, R / a.abs())
    return {
        "centers": a,
        "radii": R,
        "eig_real": eig.real,
        "eig_imag": eig.imag,
        "frac_in_union": inside.to(M.dtype).mean(),
        "ratio_max": ratio.max(),
        "ratio_median": _median(ratio),
        "frac_dominant": (a.abs() > R).to(M.dtype).mean(),
        "diag_energy": (a**2).sum() / (M**2).sum(),
        "offdiag_rel2": torch.linalg.matrix_norm(Off, ord=2) / norm2,
        "eig_dist": dist.min(dim=1).values / norm2,
    }


def control_matrices(A) -> dict[str, torch.Tensor]:
    """Controls of known structure, of A's size and trace (s = tr(A)/n, the mean eigenvalue):
    ``diagonal`` Diag(A); ``banded`` Diag(A) + (s/4) on the first off-diagonals; ``dense``
    c I + c 11^T with c = s/2 (diagonal s, eigenvalues c (n - 1 times) and (n + 1) c)."""
    A = _square("A", A)
    n, s = A.shape[0], torch.trace(A) / A.shape[0]
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    band = torch.diag(torch.ones(n - 1, dtype=A.dtype, device=A.device), 1)
    diagonal = torch.diag(torch.diagonal(A))
    return {
        "diagonal": diagonal,
        "banded": diagonal + 0.25 * s * (band + band.T),
        "dense": 0.5 * s * (eye + torch.ones_like(A)),
    }


def _noise(A: torch.Tensor, Z, seed, sigma, symmetrize) -> torch.Tensor:
    """E: sigma z_ij off the diagonal, zero on it (symmetrized: sigma (z_ij + z_ji)/sqrt 2)."""
    n = A.shape[0]
    sigma = nonnegative("sigma", sigma)
    boolean("symmetrize", symmetrize)
    seed = noise_source(Z is not None, seed)
    if seed is not None:
        Z = probe("gaussian", (n, n), seed, dtype=A.dtype, device=A.device)
    Z = finite_tensor("Z", Z, 2, A)
    if Z.shape != (n, n):
        raise ValueError(f"Z must have shape {(n, n)}, got {tuple(Z.shape)}")
    if symmetrize:
        Z = (Z + Z.T) / math.sqrt(2.0)
    return sigma * (Z - torch.diag(torch.diagonal(Z)))  # 002 §3.2: e_ij ~ N(0, sigma^2)


def _descending(eig: torch.Tensor) -> torch.Tensor:
    return eig[_lexsort(-eig.real, -eig.imag)]


def _displacement(A: torch.Tensor, E: torch.Tensor, match: str, kaiser: float) -> dict:
    M_hat = A + E  # 002 §3.2
    lam_A, lam_M = _descending(_eigenvalues(A)), _descending(_eigenvalues(M_hat))
    if match == "sort":
        index = torch.arange(lam_A.numel(), device=A.device)
    else:
        cost = (lam_A[:, None] - lam_M[None, :]).abs().cpu().double().tolist()
        index = torch.tensor(assignment(cost), device=A.device)
    keep = lam_A.real > kaiser
    displacement = (lam_M[index] - lam_A).abs()[keep]
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
        "rel_displacement": displacement / lam_A[keep].abs(),
        "max_displacement": displacement.max() if displacement.numel() else A.new_zeros(()),
    }


def offdiag_noise(A, Z=None, *, seed=None, sigma=1e-3, symmetrize=False, match="sort",
                  kaiser=1.0, controls=False):
    # doc: contract.specs.factors.SPECS['est:offdiag_noise']
    option("match", match, MATCHES)
    kaiser = real("kaiser", kaiser)
    A = _square("A", A)
    E = _noise(A, Z, seed, sigma, symmetrize)
    out = _displacement(A, E, match, kaiser)
    if boolean("controls", controls):
        out["controls"] = {name: _displacement(C, E, match, kaiser)
                           for name, C in control_matrices(A).items()}
    return out


def _snr(M: torch.Tensor, M_hat: torch.Tensor, offdiag: str) -> dict:
    n = M.shape[0]
    ones = torch.ones(n, n, dtype=torch.bool, device=M.device)
    mask = torch.triu(ones, 1) if offdiag == "upper" else ~torch.eye(n, dtype=torch.bool,
                                                                      device=M.device)
    signal, noise = (torch.diagonal(M) ** 2).sum(), (M_hat[mask].abs() ** 2).sum()
    if bool(signal == 0) and bool(noise == 0):
        raise ValueError("SNR is undefined: the diagonal of M and the off-diagonal of M_hat vanish")
    return {"snr": 10.0 * torch.log10(signal / noise), "signal": signal, "noise": noise}


def snr(M, M_hat=None, *, Z=None, seed=None, sigma=1e-3, symmetrize=False, offdiag="upper",
        controls=False):
    # doc: contract.specs.factors.SPECS['est:snr']
    option("offdiag", offdiag, OFFDIAG)
    M = _square("M", M)
    controls = boolean("controls", controls)
    if M_hat is not None:
        if Z is not None or seed is not None or controls:
            raise ValueError("give M_hat, or the noise (Z or seed, which controls need): not both")
        M_hat = finite_tensor("M_hat", M_hat, 2, M)
        if M_hat.shape != M.shape:
            raise ValueError(f"M_hat must have the shape of M {tuple(M.shape)}, "
                             f"got {tuple(M_hat.shape)}")
        return _snr(M, M_hat, offdiag)
    E = _noise(M, Z, seed, sigma, symmetrize)
    out = _snr(M, M + E, offdiag)
    if controls:
        out["controls"] = {name: _snr(C, C + E, offdiag)
                           for name, C in control_matrices(M).items()}
    return out


def _dft(m: int, like: torch.Tensor) -> torch.Tensor:
    """W[k, p] = exp(-2 pi i pk/m), the phase reduced mod m first (exact integers)."""
    k = torch.arange(m, device=like.device)
    angle = (2.0 * math.pi / m) * (torch.outer(k, k) % m).to(like.dtype)
    return torch.polar(torch.ones_like(angle), -angle)


def _line_fractions(P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy fractions of P along k - l = c and k + l = c (mod n), c = 0..n-1."""
    m, n = P.shape
    k = torch.arange(m, device=P.device)[:, None]
    l = torch.arange(n, device=P.device)[None, :]
    total = P.sum()

    def lines(index: torch.Tensor) -> torch.Tensor:
        return P.new_zeros(n).index_add_(0, (index % n).reshape(-1), P.reshape(-1)) / total

    return lines(k - l), lines(k + l)


def _fft2(A: torch.Tensor) -> dict:
    F = _dft(A.shape[0], A) @ A.to(_COMPLEX[A.dtype]) @ _dft(A.shape[1], A)  # 002 §3.2
    P = F.abs() ** 2
    shifted = torch.fft.fftshift(P)
    diff, plus = _line_fractions(P)
    shifted_diff, shifted_plus = _line_fractions(shifted)
    return {
        "F_real": F.real,
        "F_imag": F.imag,
        "magnitude": F.abs(),
        "magnitude_shifted": torch.sqrt(shifted),
        "diff_energy": diff,
        "sum_energy": plus,
        "shifted_diff_energy": shifted_diff,
        "shifted_sum_energy": shifted_plus,
    }


def fft2(A, *, controls=False):
    # doc: contract.specs.factors.SPECS['est:fft2']
    A = finite_tensor("A", A, 2)
    if not bool(A.any()):
        raise ValueError("A must not be zero (its energy fractions are undefined)")
    out = _fft2(A)
    if boolean("controls", controls):
        out["controls"] = {name: _fft2(C) for name, C in control_matrices(A).items()}
    return out


def _scaled_l1(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """min_alpha sum|alpha c - r|: alpha a weighted median of r_i/c_i, weights |c_i|."""
    used = c != 0
    if not bool(used.any()):
        return r.abs().sum()
    t, w = r[used] / c[used], c[used].abs()
    order = torch.sort(t, stable=True).indices
    cum = torch.cumsum(w[order], dim=0)
    alpha = t[order][torch.searchsorted(cum, 0.5 * cum[-1:])]
    return (alpha * c - r).abs().sum()


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (1-based; tied values share the mean of their ranks)."""
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    counts = counts.to(x.dtype)
    start = torch.cumsum(counts, dim=0) - counts
    return (start + (counts + 1.0) / 2.0)[inverse]


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation; NaN when either vector is constant (undefined)."""
    x, y = x - x.mean(), y - y.mean()
    norm = torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y)
    return x @ y / norm if bool(norm > 0) else x.new_tensor(math.nan)


def _top(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(x, descending=True, stable=True).indices[:k]


def _agreement(r: torch.Tensor, c: torch.Tensor, k: int) -> dict:
    l1 = r.abs().sum()
    norm = torch.linalg.vector_norm(r) * torch.linalg.vector_norm(c)
    return {
        "mae": (c - r).abs().mean(),
        "rel_l1": (c - r).abs().sum() / l1,
        "rel_l1_scaled": _scaled_l1(r, c) / l1,
        "cosine": c @ r / norm if bool(norm > 0) else r.new_tensor(math.nan),
        "spearman": _pearson(_ranks(r), _ranks(c)),
        "top_k_overlap": torch.isin(_top(r, k), _top(c, k)).sum().to(r.dtype) / k,
    }


def fisher_agreement(r, candidates, *, top_frac=0.1):
    # doc: contract.specs.factors.SPECS['est:fisher_agreement']
    r = finite_tensor("r", r).reshape(-1)
    if not bool(r.any()):
        raise ValueError("the reference diagonal r must not be zero")
    if not isinstance(candidates, Mapping):
        raise TypeError(f"candidates must be a mapping name -> diagonal, got {type(candidates)}")
    k = top_k_count(r.numel(), top_frac)
    out = {}
    for name, c in candidates.items():
        c = finite_tensor(f"candidates[{name!r}]", c, like=r).reshape(-1)
        if c.numel() != r.numel():
            raise ValueError(f"candidates[{name!r}] has {c.numel()} entries; r has {r.numel()}")
        out[name] = _agreement(r, c, k)
    return out


def newton_decrement(g, F):
    # doc: contract.specs.factors.SPECS['est:newton_decrement']
    g = finite_tensor("g", g)
    F = finite_tensor("F", F, like=g)
    if F.shape == g.shape:
        if bool((F <= 0).any()):
            raise ValueError("a diagonal F must be positive")
        decrement = (g**2 / F).sum()  # 002 A.0.3: g^T F^-1 g, F diagonal
    elif g.ndim == 1 and F.shape == (g.numel(), g.numel()):
        L, info = torch.linalg.cholesky_ex(_symmetric("F", F))
        if int(info) != 0:
            raise ValueError("a dense F must be positive definite")
        y = torch.linalg.solve_triangular(L, g[:, None], upper=False)[:, 0]
        decrement = y @ y
    else:
        raise ValueError(f"F must have g's shape {tuple(g.shape)} (diagonal) or be (P, P) for "
                         f"g (P,); got {tuple(F.shape)}")
    return {"decrement": decrement, "sqrt_decrement": torch.sqrt(decrement)}


def kl_outputs(logits_p, logits_q):
    # doc: contract.specs.factors.SPECS['est:kl_outputs']
    zp = finite_tensor("logits_p", logits_p, 2)
    zq = finite_tensor("logits_q", logits_q, 2, zp)
    if zp.shape != zq.shape:
        raise ValueError(f"logits_p {tuple(zp.shape)} and logits_q {tuple(zq.shape)} must have "
                         "one shape")
    log_p, log_q = torch.log_softmax(zp, dim=1), torch.log_softmax(zq, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)
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
