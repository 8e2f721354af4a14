"""Neural style machinery: Gram matrices against einsum, the style/content/TV losses by hand and by finite
differences, VGG-19 feature taps on models.vgg19's parameters, texture synthesis with random filters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers import random_like

from jaxnets import losses, models, nn


def test_gram_matrix_against_einsum_and_loops():
    f = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    g = np.asarray(losses.gram_matrix(jnp.asarray(f)))
    np.testing.assert_allclose(g, np.einsum("bhwc,bhwd->bcd", f, f) / 12, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        g[1, 2, 4], sum(f[1, i, j, 2] * f[1, i, j, 4] for i in range(3) for j in range(4)) / 12, rtol=1e-5
    )


def test_style_content_and_tv_losses_by_hand():
    rng = np.random.default_rng(1)
    f = jnp.asarray(rng.standard_normal((2, 4, 4, 3)), jnp.float32)
    np.testing.assert_allclose(losses.style_loss(f, losses.gram_matrix(f)), 0, atol=1e-7)
    np.testing.assert_allclose(
        losses.style_loss(f, jnp.zeros((2, 3, 3))),
        np.sum(np.asarray(losses.gram_matrix(f)) ** 2, axis=(1, 2)) / 36,
        rtol=1e-5,
    )
    np.testing.assert_allclose(losses.content_loss(f, f + 1.0), [0.5 * 48, 0.5 * 48])
    img = jnp.asarray([[[[0.0], [1.0]], [[3.0], [1.0]]]])  # 2x2: vertical diffs 3, 0; horizontal 1, -2
    np.testing.assert_allclose(losses.total_variation(img), [9 + 0 + 1 + 4])


def test_style_losses_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    with x64():
        f = jnp.asarray(rng.standard_normal((1, 3, 3, 2)))
        target = jnp.asarray(rng.standard_normal((1, 2, 2)))
        check_grad(lambda f: jnp.sum(losses.style_loss(f, target)), f)
        check_grad(lambda f: jnp.sum(losses.total_variation(f)), f)


def test_vgg19_features_use_the_vgg19_models_parameters():
    model = models.vgg19((16, 16, 3), 10, widths=(4, 4, 4, 4, 4), hidden=(4,))
    params = random_like(jax.eval_shape(model.init, jax.random.key(0))[0], np.random.default_rng(3), 0.3)
    x = jnp.asarray(np.random.default_rng(4).uniform(size=(1, 16, 16, 3)), jnp.float32)
    with nn.conv_strategy("xla"):
        f = jax.jit(lambda p, x: models.vgg19_features(p, x, models.STYLE_LAYERS + models.CONTENT_LAYERS))(params, x)
    assert {k: v.shape for k, v in f.items()} == {
        "relu1_1": (1, 16, 16, 4),
        "relu2_1": (1, 8, 8, 4),
        "relu3_1": (1, 4, 4, 4),
        "relu4_1": (1, 2, 2, 4),
        "relu4_2": (1, 2, 2, 4),
        "relu5_1": (1, 1, 1, 4),
    }
    w, b = params["conv1_1"]["w"], params["conv1_1"]["b"]  # the first tap is one convolution and a ReLU
    direct = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(f["relu1_1"], jax.nn.relu(direct + b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown VGG-19 layers"):
        models.vgg19_features(params, x, ("relu6_1",))


def test_texture_synthesis_with_random_filters_matches_the_grams():
    bank = models.random_filters(jax.random.key(0), sizes=(3, 5), features=8)

    def features(x):
        return models.random_filter_features(bank, x)

    texture = jnp.tile(jnp.asarray([[0.0, 1.0], [1.0, 0.0]]), (6, 6))[None, :, :, None].repeat(3, axis=-1)
    init = jax.random.uniform(jax.random.key(1), texture.shape)
    with nn.conv_strategy("xla"):  # (compiles several times faster than im2col's gathers)
        image, history = models.synthesise_image(
            features, init, style=texture, style_layers=("size3", "size5"), steps=60, optimizer=optax.adam(0.05)
        )
    assert image.shape == texture.shape and history.shape == (60,) and float(history[-1]) < 0.05 * float(history[0])
    with pytest.raises(ValueError, match="style with style_layers"):
        models.synthesise_image(features, init, style=texture)
