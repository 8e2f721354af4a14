"""Sizes below 1 (input dimensions, classes, units, channels) are a one-line ValueError naming the argument, raised
by ``build`` or the builder itself, before any parameter is made (issue 22: ZeroDivisionError or a TypeError from
inside JAX before)."""

from __future__ import annotations

import re

import pytest

import jaxnets
from jaxnets import models, nn

CASES = [  # (model, input_shape, num_classes, options, the argument the error must name)
    ("mlp", (0,), 3, {}, "input_shape"),
    ("mlp", (4, -2), 3, {}, "input_shape"),
    ("mlp", (4,), 0, {}, "num_classes"),
    ("mlp", (4,), -1, {}, "num_classes"),
    ("mlp", (4,), 3, {"hidden": (5, 0)}, "hidden"),
    ("mlp", (4,), 3, {"hidden": (-5,)}, "hidden"),
    ("logistic", (4,), 0, {}, "num_classes"),
    ("perceptron", (0,), 2, {}, "input_shape"),
    ("small_cnn", (8, 8, 1), 3, {"features": 0}, "features"),
    ("small_cnn", (8, 0, 1), 3, {}, "input_shape"),
    ("lenet5", (0, 32, 1), 10, {}, "input_shape"),
    ("lenet5_modern", (28, 28, 1), 0, {}, "num_classes"),
    ("alexnet", (32, 32, 3), 0, {}, "num_classes"),
    ("alexnet", (32, 32, 3), 10, {"hidden": (0, 8)}, "hidden"),
    ("vgg11", (32, 32, 3), 10, {"widths": (4, 4, 0, 4, 4)}, "widths"),
    ("googlenet", (32, 32, 3), 0, {}, "num_classes"),
    ("googlenet", (32, 32, 3), 10, {"width": 0.0}, "width"),
    ("resnet18", (32, 32, 3), 10, {"width": 0}, "width"),
    ("resnet20", (32, 32, 3), -1, {}, "num_classes"),
    ("resnet20", (32, 32, 3), 10, {"widths": (16, 0, 64)}, "widths"),
    ("lstm", (28, 28, 1), 10, {"hidden": 0}, "hidden"),
    ("rnn", (28, 28, 1), 10, {"layers": 0}, "layers"),
    ("char_lstm", (64,), 0, {}, "num_classes"),
    ("char_lstm", (64,), 20, {"embed": 0}, "embed"),
    ("char_lstm", (0,), 20, {}, "input_shape"),
    ("autoencoder", (8, 8, 1), None, {"hidden": (0,)}, "hidden"),
    ("autoencoder", (8, 8, 1), None, {"code": 0}, "code"),
    ("autoencoder", (8, 8, 1), 0, {}, "num_classes"),
    ("conv_autoencoder", (8, 8, 1), None, {"features": (0,)}, "features"),
    ("vae", (8, 8, 1), None, {"latent": -1}, "latent"),
    ("rbm", (8, 8, 1), None, {"hidden": 0}, "hidden"),
]


@pytest.mark.parametrize(
    ("name", "shape", "classes", "options", "arg"), CASES, ids=[f"{c[0]}-{c[4]}-{i}" for i, c in enumerate(CASES)]
)
def test_sizes_below_one_are_a_value_error_naming_the_argument(name, shape, classes, options, arg):
    with pytest.raises(ValueError, match=rf"\b{re.escape(arg)}\b.*(>= 1|> 0)") as err:
        jaxnets.build(name, shape, classes, **options)
    assert "\n" not in str(err.value)


def test_builders_called_directly_check_their_sizes_too():
    with pytest.raises(ValueError, match=r"mlp: num_classes must be >= 1; got 0"):
        models.mlp((4,), 0)
    with pytest.raises(ValueError, match=r"mlp: every entry of input_shape must be >= 1; got \(4, 0\)"):
        models.mlp((4, 0), 3)
    with pytest.raises(ValueError, match=r"resnet20: num_classes must be >= 1"):
        models.resnet20((32, 32, 3), 0)
    with pytest.raises(ValueError, match=r"sizes: every entry of input_shape must be >= 1"):
        models.Model("sizes", nn.dense(3), (0,))


def test_layers_reject_zero_features():
    with pytest.raises(ValueError, match=r"out: features \(output units\) must be >= 1; got 0"):
        nn.dense(0, name="out")
    with pytest.raises(ValueError, match=r"conv: features \(output channels\) must be >= 1; got -4"):
        nn.conv2d(-4, 3)


def test_valid_sizes_still_build_and_init():
    import jax

    model = jaxnets.build("mlp", (1,), 1, hidden=(1,))  # the smallest sizes are fine
    params, _ = jax.eval_shape(model.init, jax.random.key(0))
    assert params["out"]["w"].shape == (1, 1)
