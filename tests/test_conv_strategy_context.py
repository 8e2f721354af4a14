"""One mechanism picks the convolution implementation: a layer's ``strategy`` argument, else the innermost
``nn.conv_strategy`` block around the code that BUILDS it, else 'auto'. Tracing or running later never looks at the
context, and builders no longer pass a strategy along."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import models, nn


def _uses_native_conv(layer_or_model, x) -> bool:
    """Whether the traced forward pass contains XLA's convolution (the 'xla' strategy) rather than im2col's products."""
    if isinstance(layer_or_model, models.Model):
        params, state = jax.eval_shape(layer_or_model.init, jax.random.key(0))
        fn = lambda p, s, x: layer_or_model.apply(p, s, x)[0]  # noqa: E731
    else:
        params, state, _ = jax.eval_shape(lambda k: layer_or_model.init(k, x.shape[1:]), jax.random.key(0))
        fn = lambda p, s, x: layer_or_model.apply(p, s, x)[0]  # noqa: E731
    return "conv_general_dilated" in str(jax.make_jaxpr(fn)(params, state, x))


X = jnp.zeros((2, 8, 8, 3))


def test_the_block_around_building_decides_not_the_one_around_running():
    with nn.conv_strategy("im2col"):
        im2col = nn.conv2d(4, 3)
        explicit = nn.conv2d(4, 3, strategy="xla")  # an explicit argument wins
    with nn.conv_strategy("xla"):
        xla = nn.conv2d(4, 3)
        assert not _uses_native_conv(im2col, X)  # built under im2col: traced here under 'xla', still im2col
    assert _uses_native_conv(xla, X) and _uses_native_conv(explicit, X)
    assert nn.current_conv_strategy() == "auto"  # the block is gone


def test_blocks_nest_and_restore():
    with nn.conv_strategy("xla"):
        with nn.conv_strategy("im2col"):
            assert nn.current_conv_strategy() == "im2col"
        assert nn.current_conv_strategy() == "xla"
    assert nn.current_conv_strategy(default="xla") == "xla"


def test_build_strategy_applies_to_every_convolution_of_a_model():
    x = jnp.zeros((2, 16, 16, 3))
    assert _uses_native_conv(jaxnets.build("small_cnn", (16, 16, 3), 4, features=2, strategy="xla"), x)
    assert not _uses_native_conv(jaxnets.build("resnet20", (16, 16, 3), 4, widths=(2, 2, 2), strategy="im2col"), x)
    with nn.conv_strategy("xla"):
        model = models.resnet20((16, 16, 3), 4, widths=(2, 2, 2))
    assert _uses_native_conv(model, x)


def test_conv_autoencoder_keeps_xla_by_default_and_follows_a_block():
    x = jnp.zeros((2, 8, 8, 1))
    assert _uses_native_conv(models.conv_autoencoder((8, 8, 1), features=(3,), code=2), x)
    with nn.conv_strategy("im2col"):
        assert not _uses_native_conv(models.conv_autoencoder((8, 8, 1), features=(3,), code=2), x)


def test_same_values_whichever_block_built_the_layer():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 2)), jnp.float32)
    outs = []
    for strategy in nn.STRATEGIES:
        with nn.conv_strategy(strategy):
            layer = nn.conv2d(4, 3, padding="SAME")
        params, state, _ = layer.init(jax.random.key(0), x.shape[1:])
        outs.append(jax.jit(layer.apply)(params, state, x)[0])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-5, atol=1e-5)


def test_no_builder_takes_a_strategy_and_bad_names_fail():
    for name, (builder, _) in models.REGISTRY.items():
        assert "strategy" not in inspect.signature(builder).parameters, name
    with pytest.raises(ValueError, match="unknown convolution strategy 'fft'; choose one of"), nn.conv_strategy("fft"):
        pass
