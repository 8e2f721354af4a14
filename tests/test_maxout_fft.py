"""Maxout units equal the maximum of their affine pieces (dense and convolutional) and learn what ReLU units cannot
with one unit (|x|); convolution through the FFT equals lax.conv_general_dilated in value and in both gradients, and
its gradients match finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from jax import lax

from jaxnets import nn


def test_maxout_is_the_max_of_its_affine_pieces():
    layer = nn.maxout(3, pieces=4)
    params, state, out = layer.init(jax.random.PRNGKey(0), (5,))
    assert out == (3,) and params["dense"]["w"].shape == (5, 12)
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 5))
    y, _ = layer.apply(params, state, x)
    z = np.asarray(x @ params["dense"]["w"] + params["dense"]["b"]).reshape(7, 3, 4)
    np.testing.assert_allclose(np.asarray(y), z.max(-1), rtol=1e-6)
    # the gradient reaches only the winning piece of each unit
    g = jax.grad(lambda p: layer.apply(p, {}, x[:1])[0].sum())(params)["dense"]["b"].reshape(3, 4)
    np.testing.assert_array_equal(np.asarray(g), np.eye(4)[z[0].argmax(-1)])


def test_maxout_conv_is_the_max_over_groups_of_feature_maps():
    layer = nn.maxout_conv(2, 3, pieces=3, padding="SAME", strategy="xla")
    params, state, out = layer.init(jax.random.PRNGKey(0), (6, 6, 2))
    assert out == (6, 6, 2)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 2))
    y, _ = layer.apply(params, state, x)
    maps, _ = nn.conv2d(6, 3, padding="SAME", strategy="xla").apply(params["conv"], {}, x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(maps).reshape(2, 6, 6, 2, 3).max(-1), rtol=1e-6)


def test_maxout_errors_name_the_argument():
    with pytest.raises(ValueError, match="pieces"):
        nn.maxout(3, pieces=0)
    with pytest.raises(ValueError, match="features"):
        nn.maxout(0)
    with pytest.raises(ValueError, match="multiple of pieces"):
        nn.channel_max(3).init(jax.random.PRNGKey(0), (4, 4, 5))


def test_one_maxout_unit_learns_the_absolute_value():
    """|x| = max(x, -x): two pieces fit it exactly, which one ReLU unit (plus a linear output) cannot."""
    x = jnp.linspace(-2, 2, 64)[:, None]
    layer = nn.maxout(1, pieces=2)
    params, _, _ = layer.init(jax.random.PRNGKey(0), (1,))
    opt = optax.adam(0.05)
    opt_state = opt.init(params)

    def loss(p):
        return jnp.mean((layer.apply(p, {}, x)[0] - jnp.abs(x)) ** 2)

    @jax.jit
    def step(p, s):
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s)
        return optax.apply_updates(p, u), s

    first = float(loss(params))
    for _ in range(400):
        params, opt_state = step(params, opt_state)
    assert float(loss(params)) < 1e-3 < first


CASES = [  # (input per example, window, in channels, features, padding)
    ((9, 9), (3, 3), 2, 3, "SAME"),
    ((8, 7), (5, 3), 3, 2, "VALID"),
    ((6, 6), (4, 4), 1, 4, "SAME"),  # even window: SAME pads (1, 2)
    ((7, 7), (7, 7), 2, 2, "VALID"),  # one output position
    ((10, 10), (3, 3), 4, 3, ((2, 0), (1, 3))),
]


def _direct(x, w, padding):
    pads = nn.padding_pairs(padding, w.shape[:2], (1, 1), x.shape[1:3])
    return lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-k{c[1]}-{c[4]}" for c in CASES])
def test_conv_fft_equals_the_direct_convolution_values_and_gradients(case):
    spatial, window, cin, features, padding = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, *spatial, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*window, cin, features)), jnp.float32)
    want = _direct(x, w, padding)
    got = nn.conv_fft(x, w, padding)
    assert got.shape == want.shape and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)
    dy = jnp.asarray(rng.standard_normal(want.shape), jnp.float32)
    g_fft = jax.vjp(lambda x, w: nn.conv_fft(x, w, padding), x, w)[1](dy)
    g_direct = jax.vjp(lambda x, w: _direct(x, w, padding), x, w)[1](dy)
    for a, b in zip(g_fft, g_direct, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_conv_fft_gradients_match_finite_differences():
    with x64():
        rng = np.random.default_rng(1)
        x = jnp.asarray(rng.standard_normal((2, 7, 6, 2)))
        w = jnp.asarray(rng.standard_normal((3, 3, 2, 3)))
        target = jnp.asarray(rng.standard_normal((2, 7, 6, 3)))
        assert check_grad(lambda a: jnp.sum((nn.conv_fft(*a, "SAME") - target) ** 2), (x, w)) > 100


def test_conv_fft_in_1d_and_3d_and_its_errors():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((2, 6, 5, 4, 2)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 2, 3, 2, 3)), jnp.float32)
    direct = lax.conv_general_dilated(x, w, (1, 1, 1), "SAME", dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    np.testing.assert_allclose(np.asarray(nn.conv_fft(x, w, "SAME")), np.asarray(direct), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="in_channels=2"):
        nn.conv_fft(x, w[..., :1, :], "SAME")
    with pytest.raises(ValueError, match="larger than the padded input"):
        nn.conv_fft(x[:, :2], w, "VALID")
