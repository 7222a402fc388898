"""`torch.optim.Optimizer` classes for first-order rules that torch.optim lacks.

Each behaves like a built-in (param_groups, add_param_group, state_dict/load_state_dict,
LR schedulers, closure, zero_grad, ValueError for invalid hyperparameters naming the parameter
and its range) and equals its functional rule (tests/torchimpl/test_optim_vs_rules.py):

- `Lion` ~ ``rule:fo.lion``: lr -> eta, betas -> (beta1, beta2), weight_decay -> lam.
- `AdaBelief` ~ ``rule:fo.adabelief``: lr -> alpha, betas, eps; weight_decay is the
  ``decoupled_lr`` convention of ``rule:meta.weight_decay``.
- `LAMB` ~ ``rule:fo.lamb``: lr -> alpha, betas, eps, weight_decay -> lam, trust_clip -> phi.
- `Lookahead` ~ ``rule:meta.lookahead``: wraps any torch optimizer; k, alpha, inner_state.

Non-finite gradients: `Lion`, `AdaBelief` and `LAMB` raise ``ValueError`` before changing any
parameter or state (see `torchimpl.optim._base`); `Lookahead` follows its inner optimizer.
"""

from torchimpl.optim.adabelief import AdaBelief
from torchimpl.optim.lamb import LAMB
from torchimpl.optim.lion import Lion
from torchimpl.optim.lookahead import Lookahead

__all__ = ["LAMB", "AdaBelief", "Lion", "Lookahead"]
