"""Builder options of ``prob:normnet`` (LayerNorm, GroupNorm, train- and eval-mode BatchNorm).

Small shapes (P <= ~60). Cases avoid leaves that vanish identically, where both layers
return rounding noise and a relative comparison means nothing: b0 under per-channel
statistics (train-mode BatchNorm, GroupNorm with one channel per group) is drawn off, and so
is the identity activation there (mean_t x_hat = 0 per channel of a sample when B = 1 or
the group is one channel, so z ignores everything before the norm), and so is D = 1 there
(x_hat does not depend on the scale of a row of W0, so with one feature it does not depend on
W0 at all, up to eps). Statistics sets hold at
least 3 values (T >= 3, LayerNorm C >= 3): over 2 values x_hat = ±1 up to eps and the
gradient before the norm is O(eps).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from reference.problems.normalization import ACTIVATIONS, LOSSES

SETTINGS = (("layernorm", "train"), ("groupnorm", "train"), ("batchnorm", "train"),
            ("batchnorm", "eval"))


@st.composite
def normnet_options(draw: st.DrawFn) -> dict[str, Any]:
    norm, bn_mode = draw(st.sampled_from(SETTINGS))
    channels = draw(st.integers(min_value=3 if norm == "layernorm" else 2, max_value=4))
    groups = draw(st.sampled_from([g for g in (1, 2, 3, 4) if channels % g == 0]))
    per_channel = (norm, bn_mode) == ("batchnorm", "train") or (
        norm == "groupnorm" and groups == channels)
    activations = [a for a in ACTIVATIONS if not (per_channel and a == "identity")]
    return {
        "n_samples": draw(st.integers(min_value=1, max_value=6)),
        "positions": draw(st.integers(min_value=3, max_value=4)),
        "features": draw(st.integers(min_value=2 if per_channel else 1, max_value=3)),
        "channels": channels,
        "classes": draw(st.integers(min_value=2, max_value=3)),
        "norm": norm,
        "groups": groups,
        "bn_mode": bn_mode,
        "activation": draw(st.sampled_from(activations)),
        "loss": draw(st.sampled_from(LOSSES)),
        "reduction": draw(st.sampled_from(["mean", "sum"])),
        "l2": draw(st.sampled_from([0.0, 0.1])),
        "bias": False if per_channel else draw(st.booleans()),
    }


PROBLEM_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "prob:normnet": normnet_options(),
}
