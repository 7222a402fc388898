"""Cross-check of est:im2col: the same input batch into both layers.

Cases: a conv geometry (`verify.strategies.problems_conv.conv_geometry`: kernel, stride,
padding, dilation as ints or pairs, groups, bias) on x (N, C, H, W) with N, H, W small, C a
multiple of groups; geometries whose dilated kernel does not fit the padded input are
filtered out. The patches are a gather of input entries (and zeros, ones), no arithmetic:
in float64 the layers must agree exactly (tolerance 0); in float32 the torch input is x
rounded to float32, so each entry is off by at most half an ulp, a relative error of at most
2^-24 (tolerance 2^-24 = EPS32 / 2, normwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from contract.specs.convolutional import geometry
from verify.crosscheck.compare import relative_error
from verify.crosscheck.engine import EPS32, Case, Mirror
from verify.strategies import SEEDS
from verify.strategies.problems_conv import conv_geometry


def _fits(case: dict[str, Any]) -> bool:
    try:
        geometry(_shape(case), case["kernel_size"], case["stride"], case["padding"],
                 case["dilation"], case["groups"], case["bias"])
    except ValueError:
        return False
    return True


def _shape(case: Case) -> tuple[int, int, int, int]:
    return (case["N"], case["groups"] * case["C_g"], case["H"], case["W"])


def _cases(dtype: str) -> st.SearchStrategy:
    sizes = st.fixed_dictionaries({"N": st.integers(1, 3), "C_g": st.integers(1, 3),
                                   "H": st.integers(1, 7), "W": st.integers(1, 7),
                                   "seed": SEEDS})
    return st.builds(lambda a, b: {**a, **b}, sizes, conv_geometry()).filter(_fits)


def _run(ref_entry: Any, torch_entry: Any, case: Case, dtype: str) -> tuple[float, float]:
    x = np.random.default_rng(case["seed"]).standard_normal(_shape(case))
    options = {k: case[k] for k in ("stride", "padding", "dilation", "groups", "bias")}
    expected = ref_entry(x, case["kernel_size"], **options)
    got = torch_entry(torch.tensor(x, dtype=getattr(torch, dtype)), case["kernel_size"], **options)
    return relative_error(expected, got, atol=1e-300), (0.0 if dtype == "float64" else EPS32 / 2)


MIRRORS: dict[str, Mirror] = {
    "est:im2col": Mirror("estimator", _cases, _run, "a gather: exact in float64"),
}
