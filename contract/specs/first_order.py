"""The shared registration data of the non-Adam first-order rules `rule:fo.*` (INVENTORY
§2.2): ID -> `Spec` (defaults, doc and the per-name validation kinds), identical in
`reference.rules.first_order` and `torchimpl.rules.first_order` (pure Python, stdlib only).

Source symbols are kept, so one name means different things in different rules (``alpha``
is the learning rate in ``fo.sgd`` and the momentum in ``fo.heavy_ball[survey]``); every
``doc`` says which. Defaults are the source's where it gives one, otherwise the cited
paper's or this project's (the doc says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from contract.specs import Spec
from contract.validate import boolean, choice, integer, nonnegative, positive, unit

SCHEDULES = ("constant", "linear")

# --- validation (both layers raise these messages) -------------------------------------------


_KIND_CHECKS: Mapping[str, Callable[[str, Any], Any]] = {
    "positive": positive,
    "nonneg": nonnegative,
    "unit": unit,
    "bool": boolean,
    "count": partial(integer, low=1, type_noun="int"),
}


def _check(name: str, kind: Any, value: Any) -> None:
    """One hyperparameter against its kind: "positive", "nonneg", "unit" ([0, 1)),
    "count" (an int >= 1), "bool", or a tuple of allowed values (of the same type too)."""
    if isinstance(kind, tuple):
        choice(name, value, kind, exact_type=True)
    else:
        _KIND_CHECKS[kind](name, value)


def validate(hyper: Mapping[str, Any], kinds: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first invalid hyperparameter."""
    for name, kind in kinds.items():
        _check(name, kind, hyper[name])
    if "gamma_min" in kinds and not hyper["gamma_min"] <= hyper["gamma_max"]:
        raise ValueError(
            f"Invalid gamma_min: {hyper['gamma_min']} (must be <= gamma_max = "
            f"{hyper['gamma_max']})"
        )


# --- registration data: ID -> Spec(hyper, doc, kinds) -------------------------------------------

SPECS: dict[str, Spec] = {}


def _spec(key: str, hyper: Mapping[str, Any], kinds: Mapping[str, Any], doc: str) -> None:
    SPECS[key] = Spec(hyper, doc, kinds)


SCHEDULE = {"momentum_schedule": "constant", "beta_start": 0.5, "ramp_steps": 100}
SCHEDULE_KINDS = {"momentum_schedule": SCHEDULES, "beta_start": "unit", "ramp_steps": "count"}
SCHEDULE_DOC = (
    " momentum_schedule: 'constant' (default) or 'linear' (this project's declared ramp: the "
    "momentum coefficient of the step after t steps is beta_start + (target - beta_start) "
    "min(t/ramp_steps, 1); 003 §2.1 recommends starting close to 0.5 and increasing smoothly "
    "to 0.9-0.99 but gives no formula); beta_start = 0.5, ramp_steps = 100 are the project's."
)

_spec(
    "rule:fo.sgd",
    {"alpha": 0.01},
    {"alpha": "positive"},
    "theta <- theta - alpha g (002 Eq. (2); Eq. (7) with a minibatch gradient g_b; 003 §3). "
    "No state. alpha = 0.01 is this project's default (the source gives none). "
    "Equals torch.optim.SGD(lr=alpha).",
)
_spec(
    "rule:fo.heavy_ball",
    {"alpha": 0.01, "beta": 0.9, **SCHEDULE},
    {"alpha": "positive", "beta": "unit", **SCHEDULE_KINDS},
    "Variant thesis (default): m <- beta m - g; theta <- theta + alpha m; m_0 = 0 (002 Eq. (8)-"
    "(9)); alpha = learning rate, beta = momentum in [0, 1). State m, t. Defaults alpha = 0.01 "
    "(project's), beta = 0.9. Equals torch.optim.SGD(lr=alpha, momentum=beta, dampening=0) "
    "with buf = -m." + SCHEDULE_DOC,
)
_spec(
    "rule:fo.heavy_ball[survey]",
    {"alpha": 0.9, "eps": 0.01, **SCHEDULE},
    {"alpha": "unit", "eps": "positive", **SCHEDULE_KINDS},
    "v <- alpha v - eps g; theta <- theta + v (003 §2.1, 1st display); here alpha is the "
    "momentum in [0, 1) (default 0.9) and eps the learning rate (default 0.01, project's). "
    "State v, t. Equals torch.optim.SGD(lr=eps, momentum=alpha, dampening=0) with v = -eps buf "
    "for a constant eps; under a constant gradient v -> -eps g/(1 - alpha)."
    + SCHEDULE_DOC.replace("momentum coefficient", "momentum coefficient alpha"),
)
_spec(
    "rule:fo.heavy_ball[ema]",
    {"eta": 0.01, "beta": 0.9},
    {"eta": "positive", "beta": "unit"},
    "m <- beta m + (1 - beta) g; theta <- theta - eta m (004 App. C Table 8, 'SGD with "
    "momentum', EMA form). State m. Defaults eta = 0.01 (project's), beta = 0.9. Equals "
    "torch.optim.SGD(lr=eta (1 - beta), momentum=beta, dampening=0), m = (1 - beta) buf.",
)
_NESTEROV_THESIS_DOC = (
    "m <- beta m - grad L(theta + alpha beta m); theta <- theta + alpha m (002 §2.4.2, NAG "
    "paragraph). Text: 'theta^{t+1} = theta^t + m^{t+1}' (no alpha in the position update, "
    "although the look-ahead uses the Eq. (9) scaling alpha beta m); Reading (implemented by "
    "thesis_eq9): theta <- theta + alpha m, consistent with Eq. (9). The gradient is "
    "oracle.grad at the look-ahead point (the grads argument is only checked for finiteness). "
    "alpha = learning rate (0.01, project's), beta = momentum in [0, 1) (0.9). State m. With a "
    "constant alpha it equals [sutskever] with eps = alpha and v = alpha m."
)
_spec(
    "rule:fo.nesterov",
    {"alpha": 0.01, "beta": 0.9},
    {"alpha": "positive", "beta": "unit"},
    "Variant thesis_eq9 (default). " + _NESTEROV_THESIS_DOC,
)
_spec(
    "rule:fo.nesterov[as_printed]",
    {"alpha": 0.01, "beta": 0.9},
    {"alpha": "positive", "beta": "unit"},
    "The printed text of 002 §2.4.2 (NAG paragraph): m <- beta m - grad L(theta + alpha beta m);"
    " theta <- theta + m (alpha only in the look-ahead). Defaults as rule:fo.nesterov. State m.",
)
_spec(
    "rule:fo.nesterov[sutskever]",
    {"alpha": 0.9, "eps": 0.01},
    {"alpha": "unit", "eps": "positive"},
    "v <- alpha v - eps grad L(theta + alpha v); theta <- theta + v (003 §2.2 display, the "
    "minibatch mean gradient taken as oracle.grad at the look-ahead point); alpha = momentum in "
    "[0, 1) (0.9), eps = learning rate (0.01, project's). State v. Equals "
    "torch.optim.SGD(lr=eps, momentum=alpha, dampening=0, nesterov=True) on the look-ahead "
    "points phi = theta + alpha v, with buf = -v/eps.",
)
_LION_CHEN = (
    "c = beta1 m + (1 - beta1) g; theta <- theta - eta (sign(c) + lam theta); m <- beta2 m + "
    "(1 - beta2) g, sign(0) = 0 ([ext: Chen et al. 2023] Alg. 1; the source 002 §2.4.2 prints "
    "another form, variant [as_printed]). Defaults eta = 1e-4, beta1 = 0.9, beta2 = 0.99 "
    "(Chen et al.), lam = 0 (project's). State m."
)
_spec(
    "rule:fo.lion",
    {"eta": 1e-4, "beta1": 0.9, "beta2": 0.99, "lam": 0.0},
    {"eta": "positive", "beta1": "unit", "beta2": "unit", "lam": "nonneg"},
    "Variant chen2023 (default). " + _LION_CHEN,
)
_spec(
    "rule:fo.lion[as_printed]",
    {"alpha": 0.01, "beta": 0.9, "P": None},
    {"alpha": "positive", "beta": "unit"},
    "m <- beta m - (1 - beta) P . g; theta <- theta + alpha m (002 §2.4.2 Lion display 'and "
    "applies Eq. (9)'); P is the diagonal preconditioner, unspecified in the source: None = "
    "ones (project's default), else a mapping like params. Defaults alpha = 0.01 (project's), "
    "beta = 0.9. State m. With P = 1, m = -m_ema of rule:fo.heavy_ball[ema] (same beta) and "
    "the updates coincide for alpha = eta.",
)
_spec(
    "rule:fo.win",
    {"alpha": 0.01, "beta": 0.9, "lam": 5e-4},
    {"alpha": "positive", "beta": "unit", "lam": "nonneg"},
    "m <- beta m - (1 - beta)(g + lam theta); theta <- theta + alpha m (002 §2.4.2 WIN display;"
    " the position update 'is similar as Eq. (9)'). Defaults alpha = 0.01, beta = 0.9 "
    "(project's), lam = 5e-4 (project's: the weight decay of 002 §5.1 for CIFAR). State m.",
)
_spec(
    "rule:fo.adagrad",
    {"alpha": 0.01, "eps": 1e-10},
    {"alpha": "positive", "eps": "positive"},
    "G <- G + g^2 (G = sum_{tau <= t} g_tau^2); theta <- theta - alpha g/(sqrt(G) + eps) (002 "
    "§2.4.2 Adagrad display; 003 §2.4 prose). Defaults alpha = 0.01 (project's; torch's lr), "
    "eps = 1e-10 (torch's). State G. Equals torch.optim.Adagrad(lr=alpha, eps=eps, "
    "lr_decay=0, initial_accumulator_value=0).",
)
_spec(
    "rule:fo.rmsprop",
    {"alpha": 0.01, "beta": 0.99, "eps": 1e-8, "eps_inside": False},
    {"alpha": "positive", "beta": "unit", "eps": "positive", "eps_inside": "bool"},
    "v <- beta v + (1 - beta) g^2; theta <- theta - alpha g/(sqrt(v) + eps) (002 §2.4.2 RMSProp "
    "display; 003 §2.5 prose); eps_inside=True gives alpha g/sqrt(v + eps) (textbook form). "
    "Defaults alpha = 0.01, beta = 0.99, eps = 1e-8 (torch's). State v. Equals "
    "torch.optim.RMSprop(lr=alpha, alpha=beta, eps=eps, momentum=0, centered=False).",
)
_spec(
    "rule:fo.langevin",
    {"alpha": 0.01, "T_eff": 1e-3, "noise_cov": None},
    {"alpha": "positive", "T_eff": "nonneg"},
    "theta <- theta - alpha g + sqrt(2 alpha T_eff) xi (002 §2.2.2, Xie et al. display), xi ~ "
    "N(0, I) isotropic as printed: xi = oracle.probe('gaussian', (P,), oracle.seed()) over the "
    "flat parameter vector (one seed per step, drawn whatever T_eff). noise_cov (None = "
    "isotropic) = a symmetric positive definite P x P Sigma gives the noise sqrt(2 alpha T_eff)"
    " L xi with L = cholesky(Sigma). Defaults alpha = 0.01, T_eff = 1e-3 (project's). No state.",
)
_spec(
    "rule:fo.lars",
    {"eta": 0.1, "eta_trust": 1e-3, "beta_wd": 0.0, "mu": 0.9},
    {"eta": "positive", "eta_trust": "positive", "beta_wd": "nonneg", "mu": "unit"},
    "Per leaf (one leaf = one layer): eta_l = eta_trust ||w||/(||grad w|| + beta_wd ||w||); "
    "v <- mu v + eta eta_l (grad w + beta_wd w); w <- w - v ([ext: You et al. 2017] Alg. 1; 002 "
    "§5.2.1 names LARS only). eta_l = 1 where ||w|| = 0 or ||grad w|| = 0 (project's "
    "convention). Defaults eta = 0.1, eta_trust = 1e-3, beta_wd = 0, mu = 0.9 (project's, "
    "after You et al.). State v.",
)
_spec(
    "rule:fo.delta_bar_delta",
    {"eps": 0.01, "kappa": 0.05, "psi": 0.95, "gamma_min": 0.1, "gamma_max": 10.0},
    {"eps": "positive", "kappa": "nonneg", "psi": "positive", "gamma_min": "positive",
     "gamma_max": "positive"},
    "Variant hinton (the only one implemented; jacobs1988 and jacobs_velocity are not). "
    "Per-weight gains gamma, starting at 1: if g_i(t) g_i(t-1) > 0 then gamma_i += kappa, else "
    "gamma_i *= psi; clip gamma to [gamma_min, gamma_max]; Delta w_i = -eps gamma_i g_i (003 "
    "§2.3, prose only; [ext: Hinton's lecture 6] constants). Declared: kappa = 0.05, psi = 0.95 "
    "(ext), eps = 0.01, gamma_min = 0.1, gamma_max = 10 (project's), gains unchanged at the "
    "first step (no previous gradient). State gamma, g_prev, t.",
)
