"""Convolution arithmetic from the classic worked examples, and LeNet-5's layer-by-layer parameter counts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import abstract_init, model_params, random_like

import jaxnets
from jaxnets import count_params, nn
from jaxnets.models import C3_TABLE

STRATEGIES = ("xla", "im2col")


@pytest.mark.parametrize(
    ("n", "f", "p", "s", "expected"),
    [
        (5, 3, 1, 1, 5),  # 'same' padding p = (f - 1) / 2 keeps the size
        (5, 3, 0, 1, 3),
        (7, 3, 0, 2, 3),
        (5, 3, 0, 2, 2),
        (6, 3, 1, 2, 3),  # floor((6 + 2 - 3) / 2) + 1
        (32, 5, 0, 1, 28),  # LeNet-5's C1
        (28, 2, 0, 2, 14),  # non-overlapping 2x2 pooling
        (227, 11, 0, 4, 55),  # AlexNet's first layer
        (28, 5, 2, 1, 28),
    ],
)
def test_conv_output_size(n, f, p, s, expected):
    assert nn.conv_output_size(n, f, p=p, s=s) == expected


def test_conv_output_size_rejects_a_window_larger_than_the_input():
    with pytest.raises(ValueError, match="larger than the padded input"):
        nn.conv_output_size(3, 5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_1x5_input_filter_3_padding_1_gives_5_outputs(strategy):
    """The worked example: [1 2 3 4 5] * [1 0 -1] with one zero of padding on each side."""
    layer = nn.conv1d(1, 3, padding=1, use_bias=False, strategy=strategy)
    _, _, out_shape = abstract_init(layer, (5, 1))
    assert out_shape == (5, 1)
    x = jnp.arange(1.0, 6.0).reshape(1, 5, 1)
    y, _ = layer.apply({"w": jnp.asarray([1.0, 0.0, -1.0]).reshape(3, 1, 1)}, {}, x)
    # cross-correlation of [0 1 2 3 4 5 0] with [1 0 -1]: y_i = x_{i-1} - x_{i+1}
    np.testing.assert_allclose(y[0, :, 0], [-2.0, -2.0, -2.0, -2.0, 4.0])
    # the same on a 1x5 image with a 1x3 filter in 2D
    layer2 = nn.conv2d(1, (1, 3), padding=((0, 0), (1, 1)), use_bias=False, strategy=strategy)
    y2, _ = layer2.apply({"w": jnp.asarray([1.0, 0.0, -1.0]).reshape(1, 3, 1, 1)}, {}, x.reshape(1, 1, 5, 1))
    np.testing.assert_allclose(y2[0, 0, :, 0], [-2.0, -2.0, -2.0, -2.0, 4.0])


def test_3x3_filter_on_3_channels_with_7_outputs_has_189_weights():
    params, _, out_shape = abstract_init(nn.conv2d(7, 3), (10, 10, 3))
    assert params["w"].shape == (3, 3, 3, 7)
    assert np.prod(params["w"].shape) == 189 == 3 * 3 * 3 * 7
    assert count_params(params)["total"] == 189 + 7
    assert out_shape == (8, 8, 7)
    grouped, _, _ = abstract_init(nn.conv2d(6, 3, groups=3), (10, 10, 3))  # groups divide the weights
    assert grouped["w"].shape == (3, 3, 1, 6)


def test_small_cnn_parameter_counts():
    model = jaxnets.build("small_cnn", (28, 28, 1), 10)
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    counts = count_params(params)
    assert counts["conv"] == 640 == 3 * 3 * 1 * 64 + 64
    assert np.prod(params["out"]["w"].shape) == 125_440 == 14 * 14 * 64 * 10
    assert counts["out"] == 125_440 + 10
    assert counts["total"] == 640 + 125_450


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("padding", "size", "expected"), [("VALID", 7, 3), ("SAME", 7, 4), (1, 7, 4), ("SAME", 8, 4)])
def test_strided_convolution_is_the_full_convolution_subsampled(strategy, padding, size, expected):
    """Stride s keeps every s-th output of the stride-1 convolution (with 'SAME' the padding itself depends on s,
    so only the shape is compared there)."""
    strided = nn.conv2d(3, 3, stride=2, padding=padding, strategy=strategy)
    params, _, out_shape = abstract_init(strided, (size, size, 2))
    assert out_shape == (expected, expected, 3)
    params = random_like(params, np.random.default_rng(0))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, size, size, 2)), jnp.float32)
    y, _ = strided.apply(params, {}, x)
    assert y.shape == (2, *out_shape)
    if padding != "SAME":
        full, _ = nn.conv2d(3, 3, stride=1, padding=padding, strategy=strategy).apply(params, {}, x)
        np.testing.assert_allclose(y, full[:, ::2, ::2], rtol=1e-5, atol=1e-5)


def test_same_padding_keeps_ceil_of_size_over_stride():
    for n, s in [(7, 1), (7, 2), (8, 3), (9, 3)]:
        _, _, out = abstract_init(nn.conv1d(1, 3, stride=s, padding="SAME"), (n, 1))
        assert out == (-(-n // s), 1)


# --- LeNet-5 -----------------------------------------------------------------------------------------------------


def test_lenet5_layer_by_layer_parameter_counts():
    model = jaxnets.build("lenet5", (32, 32, 1), 10)
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    counts = count_params(params)
    expected = {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}
    assert {k: counts[k] for k in expected} == expected
    assert counts["total"] == sum(expected.values()) == 60_000  # the RBF codes are fixed state, not parameters
    assert params["C3"]["w"].shape == (5, 5, 60)
    assert params["C5"]["w"].shape == (5, 5, 16, 120)  # C5 sees a 5x5 S4, so its output is 1x1x120
    assert params["F6"]["w"].shape == (120, 84)
    assert state["output"]["codes"].shape == (84, 10)
    # arithmetic of the counts: C1 6 * (25 + 1), S2 6 * 2, C3 60 * 25 + 16, S4 16 * 2, C5 120 * (400 + 1), F6 84 * 121
    assert tuple(expected.values()) == (6 * 26, 6 * 2, 60 * 25 + 16, 16 * 2, 120 * 401, 84 * 121)


def test_lenet5_forward_shape_and_input_check():
    assert jaxnets.build("lenet5", (28, 28, 1), 10).input_shape == (32, 32, 1)  # the paper's 32x32: MNIST padded by 2
    model = jaxnets.build("lenet5", (32, 32, 1), 10)
    params, state = model_params(model, np.random.default_rng(0))
    out, _ = jax.jit(model.apply)(params, state, jnp.zeros((3, 32, 32, 1)))
    assert out.shape == (3, 10)
    assert bool(jnp.all(out <= 0))  # RBF logits are minus squared distances


def test_c3_table_is_table_one_of_the_paper():
    t = np.asarray(C3_TABLE)
    assert t.shape == (6, 16) and t.dtype == bool
    assert int(t.sum()) == 60
    inputs = [set(np.flatnonzero(t[:, j])) for j in range(16)]
    for j in range(6):  # three contiguous S2 maps (cyclically)
        assert inputs[j] == {j % 6, (j + 1) % 6, (j + 2) % 6}
    for j in range(6, 12):  # four contiguous
        assert inputs[j] == {(j - 6 + i) % 6 for i in range(4)}
    # four discontinuous: the paper's columns 12-14
    assert inputs[12:15] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    for j in range(12, 15):
        assert not any(inputs[j] == {(k + i) % 6 for i in range(4)} for k in range(6))
    assert inputs[15] == set(range(6))
    assert [len(s) for s in inputs] == [3] * 6 + [4] * 9 + [6]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_masked_c3_equals_full_convolution_with_missing_weights_zero(strategy):
    rng = np.random.default_rng(0)
    masked = nn.conv2d(16, 5, connections=C3_TABLE, strategy=strategy)
    params, _, out_shape = abstract_init(masked, (14, 14, 6))
    assert out_shape == (10, 10, 16)
    params = random_like(params, rng)
    w = np.asarray(params["w"])
    full_w = np.zeros((5, 5, 6, 16), np.float32)
    k = 0
    for i in range(6):  # the compact weights list the connections row by row (input map, then output map)
        for j in range(16):
            if C3_TABLE[i, j]:
                full_w[:, :, i, j] = w[:, :, k]
                k += 1
    assert k == w.shape[-1] == 60
    x = jnp.asarray(rng.standard_normal((2, 14, 14, 6)), jnp.float32)
    y, _ = masked.apply(params, {}, x)
    ref, _ = nn.conv2d(16, 5, strategy=strategy).apply({"w": jnp.asarray(full_w), "b": params["b"]}, {}, x)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    # an output map does not depend on the S2 maps it is not connected to
    x2 = x.at[..., 3].add(5.0)  # map 3 feeds C3 maps 1,2,3,6,7,8,9,12,14,15 only
    y2, _ = masked.apply(params, {}, x2)
    changed = np.flatnonzero(np.abs(np.asarray(y2 - y)).max(axis=(0, 1, 2)) > 1e-4)
    np.testing.assert_array_equal(changed, np.flatnonzero(C3_TABLE[3]))


def test_lenet5_initialisation_follows_each_units_fan_in():
    """Weights are U(-2.4/F, 2.4/F) with F the fan-in of the unit they feed (appendix C of the paper): in C3 that is
    25 x the number of S2 maps the C3 map is connected to (75, 100 or 150), not 25."""
    params, _ = jax.jit(jaxnets.build("lenet5", (32, 32, 1), 10).init)(jax.random.key(0))
    w = np.abs(np.asarray(params["C3"]["w"]))  # (5, 5, 60 connections)
    _, cols = np.nonzero(C3_TABLE)
    fan_in = 25 * C3_TABLE.sum(axis=0)[cols]
    assert np.all(w <= 2.4 / fan_in + 1e-7)
    for f in (75, 100, 150):  # and each group uses (nearly) its whole range
        assert w[..., fan_in == f].max() > 0.9 * 2.4 / f
    for name, fan in (("C1", 25), ("C5", 400), ("F6", 120)):
        v = np.abs(np.asarray(params[name]["w"]))
        assert v.max() <= 2.4 / fan and v.max() > 0.9 * 2.4 / fan
