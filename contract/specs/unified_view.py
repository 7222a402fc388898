"""The shared registration data of the unified-view rules `rule:uv.*` (INVENTORY §2.1):
ID -> `Spec` (defaults and doc) and the hyperparameter validation, identical in
`reference.rules.unified_view` and `torchimpl.rules.unified_view` (pure Python, stdlib only).

``rule:uv.gd_linesearch`` has an empty ``doc``: its text (the line search's accuracy) differs
between the layers, which keep it. Docs that are the text of a direction's docstring keep the
docstring's indentation, so the registered ``Rule.doc`` is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract.specs import Spec
from contract.validate import choice, nonnegative, positive

# --- validation (both layers raise these messages) -------------------------------------------

SINGULAR = ("raise", "pinv")  # eigenvalue policies of reference.linalg / torchimpl.linalg
CHOICES: Mapping[str, tuple[Any, ...]] = {
    "singular": SINGULAR,
    "form": ("matrix", "coordinates"),
    "L_source": ("given", "lambda_max", "problem"),
    "q": (2, 1),
    "A": ("alpha_Hinv", "alpha_Hinvsqrt", "alpha_I", "user"),
}
POSITIVE = ("alpha", "eps", "eta", "L")
LINESEARCH_TOL = 1e-14


def validate(hyper: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name in POSITIVE:
        if hyper.get(name) is not None:
            positive(name, hyper[name])
    if "damping" in hyper:
        nonnegative("damping", hyper["damping"])
    for name, allowed in CHOICES.items():
        if name in hyper:
            choice(name, hyper[name], allowed)
    if hyper.get("L_source") == "given" and hyper.get("L") is None:
        raise ValueError("Invalid L: None (must be > 0 when L_source='given')")


# --- registration data -----------------------------------------------------------------------

CURVED = {"curv": "H", "damping": 0.0, "singular": "raise"}
DIAGONAL = {"lam": None, "curv": "diag(H)", "damping": 0.0, "singular": "raise"}
LIPSCHITZ = {"L": None, "L_source": "given", "curv": "H", "damping": 0.0}

_EIGEN_NORMALIZED = """\
000 §1 "(Eigenbasis Normalized NGD)*", two readings of one paragraph.

    ``matrix`` (the displayed update): d = -eps K^{-1/2} Q sign(Q^T g), i.e.
    d_hat_i = -eps sign(g_hat_i)/sqrt(lam_i), so lam_i d_hat_i^2 = eps^2 in every direction.
    ``coordinates`` (the per-coordinate display): d_hat_i = -eps sign(g_hat_i), without the
    1/sqrt(lam_i); then lam_i d_hat_i^2 = eps^2 lam_i. Both are defined for distinct
    eigenvalues only: for a repeated eigenvalue Q, hence sign(Q^T g), is not unique.
    """
_CLIPPED_NGD = """\
d = -alpha min(1, C/||g_tilde||_K^q) g_tilde, C = eps/alpha; q = 2 as printed.

    000 §1 "(Clipped Natural Gradient Descent)", "Clipped NGD". With q = 1 and the clip
    active this is `ngd_normalized`; g = 0 gives d = 0.
    """
_GN_CLIPPED = """\
d_hat_i = -alpha min(1, C sqrt(lam_i)) g_hat_i/lam_i, d = Q d_hat.

    000 §1 "(Clipped NGD)", "Gradient-Norm Clipped NGD". Text: "\\vec d_i = <scalar>" sets a
    vector to a scalar; Reading (implemented): the coefficient d_hat_i.
    """
_EIGEN_CLIPPED = """\
d_hat_i = -alpha min(1, C sqrt(lam_i)/|g_hat_i|) g_hat_i/lam_i (0 where g_hat_i = 0).

    000 §1 "(Clipped NGD)", "Eigenbasis Clipped NGD"; same "\\vec d_i" Text/Reading as
    `gn_clipped`.
    """
_SOPHIA_CLIP = """\
d_i = -alpha min(1, lam_i eps/|g_i|) g_i/lam_i, d_i = 0 where g_i = 0 (K diagonal).

    000 §1, last paragraph of "(Clipped NGD)". 001 prints "g_hat/lam_i" (no index); the
    Reading is g_hat_i, as in 000. The formula tends to -alpha eps sign(g_i) as lam_i -> 0+, but
    lam_i <= 0 follows the ``singular`` policy like every rule (pinv: d_i = 0).
    """
_DIAG_AS_PRINTED = """\
The printed normalized diagonal NGD, d = -(eps/(lam^T d^2)) g/lam, as its fixed point.

    000 §1 "(Diagonal Natural Gradient Descent)", "Normalized NGD" (Text). The right side is
    a positive multiple of g/lam, so d = -c g/lam with c = eps/(c^2 S), S = sum_i g_i^2/lam_i:
    the unique fixed point has c = (eps/S)^(1/3). g = 0 (S = 0) gives d = 0.
    """
_SIGN_GD = """\
d = -eta sign(g), sign(0) = 0.

    000 §1 "(Sign Gradient Descent)". Text: "d = -eps H^{-1/2} Q sign(Q^T d)" (d on both
    sides); Reading: sign(Q^T g), so with Q = I and H = L I, d = -eps L^{-1/2} sign(g) and
    eta = eps L^{-1/2}.
    """

# variant of rule:uv.diag_ngd -> (its step-size hyperparameter, the doc's first sentence)
DIAGONAL_VARIANTS: Mapping[str, tuple[Mapping[str, Any], str]] = {
    "": ({"alpha": 1.0}, 'd = -alpha g/lam (000 §1 "(Diagonal NGD)", NGD).'),
    "[normalized]": (
        {"eps": 0.1},
        "Reading: rule:uv.ngd_normalized at K = diag(lam), d = -eps (g/lam)/sqrt(sum g_i^2/lam_i)"
        ". Text: d = -(eps/(lam^T d^2)) g/lam, d on both sides (variant [as_printed]).",
    ),
    "[gn_normalized]": ({"eps": 0.1}, "d = -eps g/lam^{1/2}."),
    "[eigen_normalized]": ({"eps": 0.1}, "d = -eps sign(g)/lam^{1/2}."),
    "[as_printed]": ({"eps": 0.1}, _DIAG_AS_PRINTED),
}

_SPECS: dict[str, tuple[Mapping[str, Any], str]] = {
    "rule:uv.newton": (
        {"alpha": 1.0, **CURVED},
        'd = -alpha K^-1 g (000 §1 "(Newton\'s Method)"; alpha in (0, 1], default 1 = pure '
        "Newton).",
    ),
    "rule:uv.ngd": (
        {"alpha": 1.0, **CURVED, "curv": "F"},
        'd = -alpha F^-1 g (000 §1 "(Natural Gradient Descent)"); curv F (true Fisher) by '
        "default, F_emp or G selectable.",
    ),
    "rule:uv.ngd_normalized": (
        {"eps": 0.1, **CURVED},
        'd = -eps K^-1 g / sqrt(g^T K^-1 g), d = 0 if g = 0 (000 §1 "(Normalized NGD)"; '
        "eps = 0.1 is this project's default).",
    ),
    "rule:uv.ngd_gn_normalized": (
        {"eps": 0.1, **CURVED},
        'd = -eps K^{-1/2} g (000 §1 "(Gradient-Norm Normalized NGD)"; eps = 0.1 project default).',
    ),
    "rule:uv.ngd_eigen_normalized": (
        {"eps": 0.1, "form": "matrix", **CURVED},
        _EIGEN_NORMALIZED + "eps = 0.1 is this project's default.",
    ),
    "rule:uv.gd": (
        {"alpha": 1.0, **LIPSCHITZ},
        'd = -(alpha/L) g (000 §1 "(Gradient Descent)"). L_source: "given" (L > 0 required), '
        '"lambda_max" (of K + damping I, K = curvature curv), "problem" (the problem\'s constant '
        "L); L is used only when L_source='given'.",
    ),
    "rule:uv.gd_linesearch": ({}, ""),  # doc: in the layers (their accuracy notes differ)
    "rule:uv.gd_normalized": (
        {"eps": 0.1, **LIPSCHITZ},
        'd = -eps L^{-1/2} g/||g||_2, d = 0 if g = 0 (000 §1 "(Normalized Gradient Descent)"); '
        "L as in rule:uv.gd; eps = 0.1 project default.",
    ),
    "rule:uv.sign_gd": ({"eta": 0.1}, _SIGN_GD + "eta = 0.1 is this project's default."),
    **{
        f"rule:uv.diag_ngd{variant}": (
            {**scale, **DIAGONAL},
            f"{doc} lam = the diagonal of curvature curv, or the vector lam (overrides curv). "
            + ("eps = 0.1 is this project's default." if "eps" in scale else ""),
        )
        for variant, (scale, doc) in DIAGONAL_VARIANTS.items()
    },
    "rule:uv.clipped_ngd": ({"alpha": 1.0, "eps": 0.1, "q": 2, **CURVED}, _CLIPPED_NGD),
    "rule:uv.clipped_ngd[gn_clipped]": ({"alpha": 1.0, "eps": 0.1, **CURVED}, _GN_CLIPPED),
    "rule:uv.clipped_ngd[eigen_clipped]": ({"alpha": 1.0, "eps": 0.1, **CURVED}, _EIGEN_CLIPPED),
    "rule:uv.sophia_clip": ({"alpha": 1.0, "eps": 0.1, **DIAGONAL}, _SOPHIA_CLIP),
    "rule:uv.stochastic_direction": (
        {"A": "alpha_Hinv", "alpha": 1.0, "A_user": None, **CURVED},
        '000 §2 "(General Update)": d_b = A g_b = A g + A xi_b =: d + d_xi, exactly as printed: '
        "the named maps A in {alpha H^-1 ('alpha_Hinv'), alpha H^-1/2 ('alpha_Hinvsqrt'), "
        "alpha I ('alpha_I')} carry no minus sign, so updates = d_b = +A g_b (the quantities of "
        "§2 are invariant under A -> -A); 'user' applies the matrix A_user (alpha unused). "
        "g_b = grads, g = oracle.full_grad(params); new_state holds d = A g and d_xi = "
        "A (g_b - g).",
    ),
}

SPECS: Mapping[str, Spec] = {key: Spec(hyper, doc) for key, (hyper, doc) in _SPECS.items()}
