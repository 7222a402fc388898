"""est:im2col in both layers (INVENTORY §3.1, §5 item 4).

Oracles: ``torch.nn.functional.unfold`` (exact equality in float64, then the group split and
the ones column), ``torch.nn.functional.conv2d`` (W_g @ patches), the adjoint identity of the
reference's col2im, and the errors both layers raise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from contract.specs.convolutional import geometry, pair
from verify.strategies import SEEDS
from verify.strategies.problems_conv import conv_geometry

CASES = st.builds(
    lambda a, b: {**a, **b},
    st.fixed_dictionaries({"N": st.integers(1, 3), "C_g": st.integers(1, 3),
                           "H": st.integers(1, 7), "W": st.integers(1, 7), "seed": SEEDS}),
    conv_geometry(),
)


def _shape(case):
    return (case["N"], case["groups"] * case["C_g"], case["H"], case["W"])


def _fits(case) -> bool:
    try:
        geometry(_shape(case), case["kernel_size"], case["stride"], case["padding"],
                 case["dilation"], case["groups"], case["bias"])
    except ValueError:
        return False
    return True


def _call(layer, x, case):
    fn = layer.estimators.get("est:im2col")
    options = {k: case[k] for k in ("stride", "padding", "dilation", "groups", "bias")}
    return layer.to_numpy(fn(layer.to_layer(x), case["kernel_size"], **options))


def _unfolded(x, case):
    """F.unfold (N, C k, T) -> (N, G, T, C_g k) with the ones column when bias."""
    U = F.unfold(torch.tensor(x), case["kernel_size"], dilation=case["dilation"],
                 padding=case["padding"], stride=case["stride"]).numpy()
    N, G = x.shape[0], case["groups"]
    U = U.reshape(N, G, -1, U.shape[-1]).transpose(0, 1, 3, 2)
    if case["bias"]:
        U = np.concatenate([U, np.ones(U.shape[:-1] + (1,))], axis=-1)
    return U


@given(CASES.filter(_fits))
def test_equals_unfold_exactly(layer, case):
    x = np.random.default_rng(case["seed"]).standard_normal(_shape(case))
    P, expected = _call(layer, x, case), _unfolded(x, case)
    if case["groups"] == 1:
        expected = expected[:, 0]
    np.testing.assert_array_equal(P, expected)


@given(CASES.filter(_fits))
def test_weight_times_patches_is_conv2d(layer, case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(_shape(case))
    G, C_g = case["groups"], case["C_g"]
    P = _call(layer, x, {**case, "bias": True})
    P = P[:, None] if G == 1 else P
    kernel = pair("kernel_size", case["kernel_size"], 1)
    weight, bias = rng.standard_normal((2 * G, C_g, *kernel)), rng.standard_normal(2 * G)
    theta = np.concatenate([weight.reshape(2 * G, -1), bias[:, None]], axis=1)
    a = np.einsum("gok,ngtk->ngot", theta.reshape(G, 2, -1), P)  # (N, G, 2, T)
    out = F.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), case["stride"],
                   case["padding"], case["dilation"], G).numpy()
    np.testing.assert_allclose(a.reshape(out.shape), out, rtol=1e-12, atol=1e-12)


@given(CASES.filter(_fits))
def test_col2im_is_the_adjoint_of_patches(reference_layer, case):
    from reference.estimators.im2col import col2im, patches

    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(_shape(case))
    conv = geometry(x.shape, case["kernel_size"], case["stride"], case["padding"],
                    case["dilation"], case["groups"], False)
    P = patches(x, conv)
    v = rng.standard_normal(P.shape)
    lhs, rhs = np.sum(P * v), np.sum(x * col2im(v, conv))
    assert abs(lhs - rhs) <= 1e-12 * np.sum(np.abs(P * v)), (lhs, rhs, case)


def test_float32_is_the_gather_of_the_rounded_input(torch_layer):
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6)).astype(np.float32)
    fn = torch_layer.estimators.get("est:im2col")
    P = fn(torch.tensor(x), (2, 3), stride=(1, 2), padding=1, dilation=(2, 1), groups=2)
    assert P.dtype == torch.float32 and P.shape == (2, 2, 5 * 3, 2 * 2 * 3 + 1)
    U = F.unfold(torch.tensor(x), (2, 3), dilation=(2, 1), padding=1, stride=(1, 2))
    assert torch.equal(P[..., :-1], U.reshape(2, 2, 12, 15).transpose(-1, -2))


@pytest.mark.parametrize("options, message", [
    ({"groups": 3}, "groups"),
    ({"stride": 0}, "stride"),
    ({"padding": -1}, "padding"),
    ({"dilation": (1, 2, 3)}, "dilation"),
    ({"kernel_size": 9}, "does not fit"),
])
def test_invalid_options_raise(layer, options, message):
    fn = layer.estimators.get("est:im2col")
    x = layer.to_layer(np.ones((1, 2, 4, 4)))
    options = {"kernel_size": 3, **options}
    with pytest.raises(ValueError, match=message):
        fn(x, options.pop("kernel_size"), **options)


def test_torch_rejects_arrays(torch_layer):
    with pytest.raises(TypeError, match="torch.Tensor"):
        torch_layer.estimators.get("est:im2col")(np.ones((1, 1, 3, 3)), 2)
