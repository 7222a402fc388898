"""Classification problems on data sets (INVENTORY §1.2 prob:digits, prob:gmm_cls), torch.

Both are `network.FeedForward` (softmax cross-entropy) built from the reference's ``spec()``:
the data (the standardised digits split or Gaussian-mixture samples) travel as arrays.
"""

from torchimpl.problems.network import FeedForward
from torchimpl.problems.registry import REGISTRY

REGISTRY.register("prob:digits", FeedForward)
REGISTRY.register("prob:gmm_cls", FeedForward)
