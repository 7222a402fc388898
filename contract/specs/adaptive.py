"""The shared registration data of the Adam-family rules `rule:fo.*` (INVENTORY §2.2):
ID -> `Spec` (defaults and doc) and the per-name hyperparameter checks, identical in
`reference.rules.adaptive` and `torchimpl.rules.adaptive` (pure Python, stdlib only).

Every ``doc`` states the update, its source location, the Text/Reading where the printed
formula is not the one implemented, and which defaults are the project's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from contract.specs import Spec
from contract.validate import at_least, at_most, boolean, choice, positive, unit

# --- validation (both layers raise these messages) -------------------------------------------


_nonneg = partial(at_least, low=0.0)  # "(must be >= 0.0)", the wording of this family


def _optional_nonneg(name: str, value: Any) -> None:
    if value is not None:
        _nonneg(name, value)


def _choice(*allowed: str) -> Callable[[str, Any], Any]:
    return partial(choice, allowed=allowed)


CHECKS: Mapping[str, Callable[[str, Any], Any]] = {
    "alpha": _nonneg,
    "beta1": unit,
    "beta2": unit,
    "eps": _nonneg,
    "lam": _nonneg,
    "sqrt": boolean,
    "scale_f": positive,
    "psi": _nonneg,
    "denominator": _choice("sum_c", "sum_r"),
    "decay_rate": _nonneg,
    "beta2_decay": partial(at_most, high=0),
    "eps1": _optional_nonneg,
    "eps2": _nonneg,
    "d": partial(at_least, low=1.0),
    "rho_max": positive,
    "phi": _choice("identity", "clip"),
    "gamma_l": _nonneg,
    "gamma_u": _nonneg,
    "final_lr": positive,
    "gamma": positive,
}


def validate(hyper: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name, value in hyper.items():
        CHECKS[name](name, value)
    if "gamma_u" in hyper and hyper["gamma_u"] < hyper["gamma_l"]:
        raise ValueError(f"Invalid gamma_u: {hyper['gamma_u']} (must be >= gamma_l)")


# --- registration data -----------------------------------------------------------------------

ADAM = {"alpha": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

_DOCS: dict[str, str] = {
    "rule:fo.adam": """Adam (002 Eq. (11) + the bias-corrected display, §2.4.2; 003 §2.6 prose;
004 Table 8 without eps). m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
theta <- theta - alpha (m/(1-b1^t)) / (D + eps) with D = sqrt(f v_hat) (sqrt=True) or D = f v_hat
(sqrt=False, the "Adam without the square root" of 002 §6.1.2), v_hat = v/(1-b2^t), f = scale_f.
Text (§6.1.2): a "scaling factor f proportional to batch size" without a formula; Reading (the
project's): f multiplies v_hat inside D, declared by the caller as f = c B. Defaults [ext:
Kingma & Ba]: alpha 1e-3, betas (0.9, 0.999), eps 1e-8; sqrt True, scale_f 1 (plain Adam).
Equals torch.optim.Adam (sqrt=True, scale_f=1).""",
    "rule:fo.adam[amsgrad]": """AMSGrad [ext: Reddi et al. 2018, Alg. 2] as torch.optim.Adam
(amsgrad=True, weight_decay=0) implements it (torch 2.13): m, v as in Adam (002 Eq. (11));
v_max <- max(v_max, v) on the raw, uncorrected v; theta <- theta - (alpha/(1-b1^t)) m /
(sqrt(v_max)/sqrt(1-b2^t) + eps). Differs from rule:fo.adam by the running maximum only: the
denominator never decreases up to the bias correction 1/sqrt(1-b2^t), taken at the current t
(torch's placement; the paper has no bias correction and keeps the maximum of v itself). No
sqrt or scale_f. Defaults: Adam's (alpha 1e-3, betas (0.9, 0.999), eps 1e-8). State m, v,
v_max, t. Equals torch.optim.Adam(amsgrad=True).""",
    "rule:fo.adamw": """AdamW, torch convention (default variant [torch]):
theta <- theta (1 - alpha lam), then the bias-corrected Adam step with eps outside the sqrt.
Src: 002 §2.4.2 (AdamW display), 004 Table 8. The printed thesis form is [thesis_printed]
(decay not multiplied by alpha, no bias correction, eps inside the sqrt). Defaults: Adam's and
lam 1e-2 (torch's). Equals torch.optim.AdamW.""",
    "rule:fo.adamw[thesis_printed]": """AdamW as printed in 002 §2.4.2 (AdamW display):
theta <- theta (1 - lam) - alpha m/sqrt(v + eps), m and v of Eq. (11) without bias correction;
the decay is not multiplied by alpha. Same names and defaults as rule:fo.adamw.""",
    "rule:fo.adamw[sassha_table8]": """AdamW of 004 Table 8 ("U(z) = z + lam").
Text: U(z) = z + lam (a scalar added to the step). Reading: U(z) = bc(z) + lam x_t, the
decoupled decay of 004 Alg. 1 line 18: x <- x - eta (m_hat/(sqrt(v_hat) + eps) + lam x).
Mathematically the same map as the torch variant (only the rounding order differs); Table 8
omits eps (eps = 0 gives the printed form). Same names and defaults as rule:fo.adamw.""",
    "rule:fo.nadam": """NAdam, default [dozat2016] [ext: Dozat 2016]:
theta <- theta - alpha (b1 m_hat + (1-b1) g/(1-b1^t)) / (sqrt(v_hat) + eps), m_hat = m/(1-b1^t),
v_hat = v/(1-b2^t). Src: 002 §2.4.2 (NaDam display, which prints neither second moment nor
bias correction: see [as_printed]). Defaults: alpha 2e-3 (torch's), betas (0.9, 0.999), eps
1e-8. Differs from torch.optim.NAdam by torch's momentum schedule mu_t: see [torch].""",
    "rule:fo.nadam[as_printed]": """NAdam as printed in 002 §2.4.2 (NaDam display):
theta <- theta - alpha (b1 m + (1-b1) g), m of Eq. (11) updated with the current g; no second
moment, no bias correction. Defaults alpha 2e-3, beta1 0.9. State m, t.""",
    "rule:fo.nadam[torch]": """NAdam of torch.optim.NAdam (weight_decay=0):
mu_t = b1 (1 - 0.96^(t psi)/2), P_t = prod_{i<=t} mu_i (state mu_product, a Python float);
theta <- theta - alpha [(1-mu_t)/(1-P_t) g + mu_{t+1}/(1-P_t mu_{t+1}) m] / (sqrt(v_hat) + eps).
psi = torch's momentum_decay (4e-3). torch.optim.NAdam keeps mu_product in the default
dtype: with torch.get_default_dtype() == float32 it is rounded to float32 (~1e-7 relative).""",
    "rule:fo.radam": """RAdam, default [liu2020] [ext: Liu et al. 2020]:
rho_inf = 2/(1-b2) - 1, rho_t = rho_inf - 2 t b2^t/(1-b2^t); if rho_t > 4:
theta <- theta - alpha phi(rho_t) m_hat/(sqrt(v_hat) + eps), phi the rectification of 002
§2.4.2; otherwise theta <- theta - alpha m_hat. Src: 002 §2.4.2 (RAdam displays, which use
uncorrected m, v and apply phi = 1 below the threshold: [as_printed]). Defaults: Adam's.
torch.optim.RAdam differs (threshold 5; eps added to sqrt(v) before the bias correction): see
[torch].""",
    "rule:fo.radam[as_printed]": """RAdam as printed in 002 §2.4.2:
theta <- theta - alpha phi(rho_t) m/(sqrt(v) + eps), m and v uncorrected, phi = 1 if rho_t <= 4.
Same names and defaults as rule:fo.radam.""",
    "rule:fo.radam[torch]": """RAdam of torch.optim.RAdam (weight_decay=0): if rho_t > 5,
theta <- theta - alpha phi(rho_t) sqrt(1-b2^t) m_hat/(sqrt(v) + eps) (eps added to the
uncorrected sqrt(v)); otherwise theta <- theta - alpha m_hat.""",
    "rule:fo.adafactor": """AdaFactor, 002 Eq. (12) and the displays above it (§2.4.2):
for a leaf G with >= 2 axes (a matrix; leading axes are batch axes), r_i <- b2 r_i + (1-b2)
sum_j G_ij^2, c_j <- b2 c_j + (1-b2) sum_i G_ij^2, V_ij = r_i c_j / S with S = sum_j c_j
(denominator="sum_c", Eq. (12)) or S = sum_k r_k ("sum_r", Table 4.1; Text there: r_i c_i /
sum_k r_k, Reading: r_i c_j / sum_k r_k); V = 0 where S = 0. Other leaves use the unfactored
v <- b2 v + (1-b2) G^2 as V. m <- b1 m + (1-b1) G (Table 4.1's first moment; b1 = 0 gives Eq.
(12)'s G); theta <- theta - alpha (m/(1-b1^t)) / (sqrt(V) + eps); V has no bias correction. With
zero initialization sum_j c_j = sum_i r_i at every step, so both denominators give the same V
up to rounding. Defaults (the project's; the source gives none): alpha 1e-2, beta1 0,
beta2 0.999, eps 1e-8.""",
    "rule:fo.adafactor[shazeer2018]": """AdaFactor of Shazeer & Stern (2018), Alg. 4-5 [ext]:
b2_t = 1 - t^(-decay_rate); R, C (or v) are EMAs with b2_t of G^2 + eps1 (row/column sums);
V = R C^T / sum(R); U = G/sqrt(V); U_hat = U / max(1, RMS(U)/d);
theta <- theta - max(eps2, RMS(theta)) min(rho_max, 1/sqrt(t)) U_hat (RMS per leaf).
Names: decay_rate 0.8, eps1 1e-30, eps2 1e-3, d 1 (>= 1), rho_max 1e-2 (the paper's); no
first moment. With eps1 = 0 and rho_max = lr it coincides with rule:fo.adafactor[torch] at
eps1 = 0, lam = 0 (torch uses means where this uses sums; the ratio is the same).""",
    "rule:fo.adafactor[torch]": """AdaFactor of torch.optim.Adafactor (torch 2.13,
_single_tensor_adafactor). Mapping: alpha = lr (1e-2), beta2_decay (-0.8; 1 - b2_t =
t^beta2_decay), eps1 = eps[0] (None = the dtype's machine epsilon), eps2 = eps[1] (1e-3),
d (1, >= 1), lam = weight_decay (0). Step t: rho_t = min(alpha, 1/sqrt(t)), a_t = max(eps2,
RMS(theta)) rho_t; for >= 2 axes r = lerp(r, mean_j G^2, 1-b2_t), c = lerp(c, mean_i G^2,
1-b2_t) (means, not sums: state r, c hold torch's row_var/col_var without their kept
singleton axes; lerp evaluated as torch.lerp), V = r c^T /
max(mean(r), eps1); else v = lerp(v, G^2, 1-b2_t) = V; U = G/sqrt(max(V, eps1^2));
theta <- theta (1 - alpha lam) - a_t U / max(1, RMS(U)/d), a_t from theta before the decay.
Differences from [shazeer2018]: lr caps rho_t (paper: 0.01), eps1 clamps V (paper: added to
G^2), decoupled weight decay.""",
    "rule:fo.adabelief": """AdaBelief, default [zhuang2020] [ext: Zhuang et al. 2020]:
m <- b1 m + (1-b1) g; s <- b2 s + (1-b2)(g - m)^2 + eps (m the updated one);
theta <- theta - alpha (m/(1-b1^t)) / (sqrt(s/(1-b2^t)) + eps). State m, v (= s), t.
Src: 002 §2.4.2 (AdaBelief display; printed form [as_printed]). Defaults: alpha 1e-3, betas
(0.9, 0.999), eps 1e-16 (the adabelief-pytorch default).""",
    "rule:fo.adabelief[as_printed]": """AdaBelief as printed in 002 §2.4.2:
m as in Adam; v <- b2 v + (1-b2)(g - m)^2 with the updated m; theta <- theta - alpha m/sqrt(v +
eps); no bias correction. Same names and defaults as rule:fo.adabelief.""",
    "rule:fo.lamb": """LAMB [ext: You et al. 2020], named in 002 §5.2.1 / Table 5.9 only:
r = m_hat/(sqrt(v_hat) + eps) + lam theta per leaf (one leaf = one layer);
theta <- theta - alpha phi(||theta||)/||r|| r (no update where r = 0), so the update of a leaf
has norm alpha phi(||theta||). phi = identity ("identity", default, as in the paper's
experiments) or clip(z, gamma_l, gamma_u) ("clip"). With phi = identity a zero leaf stays zero
(as printed). Defaults: Adam's betas, alpha 1e-3, eps 1e-6, lam 0, gamma_l 0, gamma_u 10 (the
project's choice).""",
    "rule:fo.adabound": """AdaBound, 002 §2.4.2 (AdaBound display) with the bounds of Luo et al.
(2019) [ext]: alpha_hat = clip(alpha/(sqrt(v) + eps), final_lr (1 - 1/(gamma t + 1)),
final_lr (1 + 1/(gamma t))) elementwise; theta <- theta - alpha_hat m, m and v of Eq. (11)
uncorrected as printed (Luo's code also bias-corrects and scales final_lr by lr/base_lr; not
implemented). Defaults: Adam's, final_lr 0.1, gamma 1e-3. Both bounds tend to final_lr.""",
}


_HYPER: dict[str, dict[str, Any]] = {
    "rule:fo.adam": {**ADAM, "sqrt": True, "scale_f": 1.0},
    "rule:fo.adam[amsgrad]": ADAM,
    "rule:fo.adamw": {**ADAM, "lam": 1e-2},
    "rule:fo.adamw[thesis_printed]": {**ADAM, "lam": 1e-2},
    "rule:fo.adamw[sassha_table8]": {**ADAM, "lam": 1e-2},
    "rule:fo.nadam": {**ADAM, "alpha": 2e-3},
    "rule:fo.nadam[as_printed]": {"alpha": 2e-3, "beta1": 0.9},
    "rule:fo.nadam[torch]": {**ADAM, "alpha": 2e-3, "psi": 4e-3},
    "rule:fo.radam": ADAM,
    "rule:fo.radam[as_printed]": ADAM,
    "rule:fo.radam[torch]": ADAM,
    "rule:fo.adafactor": {"alpha": 1e-2, "beta1": 0.0, "beta2": 0.999, "eps": 1e-8,
                          "denominator": "sum_c"},
    "rule:fo.adafactor[shazeer2018]": {"decay_rate": 0.8, "eps1": 1e-30, "eps2": 1e-3, "d": 1.0,
                                       "rho_max": 1e-2},
    "rule:fo.adafactor[torch]": {"alpha": 1e-2, "beta2_decay": -0.8, "eps1": None, "eps2": 1e-3,
                                 "d": 1.0, "lam": 0.0},
    "rule:fo.adabelief": {**ADAM, "eps": 1e-16},
    "rule:fo.adabelief[as_printed]": {**ADAM, "eps": 1e-16},
    "rule:fo.lamb": {**ADAM, "eps": 1e-6, "lam": 0.0, "phi": "identity", "gamma_l": 0.0,
                     "gamma_u": 10.0},
    "rule:fo.adabound": {**ADAM, "final_lr": 0.1, "gamma": 1e-3},
}

SPECS: Mapping[str, Spec] = {key: Spec(hyper, _DOCS[key]) for key, hyper in _HYPER.items()}
