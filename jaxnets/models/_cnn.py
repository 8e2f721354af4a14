"""The smallest useful convolutional network: one 3x3 convolution, ReLU, 2x2 max-pooling, a dense classifier."""

from __future__ import annotations

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Shape


def small_cnn(input_shape: Shape = (28, 28, 1), num_classes: int = 10, features: int = 64) -> Model:
    """conv3x3(64, SAME) -> ReLU -> maxpool 2 -> dense(classes): 640 conv and 125,440 + 10 dense parameters on MNIST."""
    check_sizes("small_cnn", num_classes=num_classes, features=features)
    he = nn.initializers.he_normal()
    layer = nn.serial(
        nn.conv2d(features, 3, padding="SAME", w_init=he, name="conv"),
        nn.activation("relu"),
        nn.max_pool(2),
        nn.flatten(),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="out"),
    )
    return Model("small_cnn", layer, tuple(input_shape))
