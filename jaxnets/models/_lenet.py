"""LeNet-5 twice: faithful to LeCun, Bottou, Bengio & Haffner (1998), and in its modern ReLU/max-pool form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, Shape

# Table I of the paper: which of S2's 6 maps (rows) feed each of C3's 16 maps (columns). Maps 0-5 see 3
# contiguous maps, 6-11 see 4 contiguous, 12-14 see 4 non-contiguous, and 15 sees all 6: 60 connections.
C3_TABLE = np.array(
    [
        [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1],
        [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1],
        [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1],
        [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1],
        [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1],
        [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1],
    ],
    dtype=bool,
)


def _table_fan_in_uniform(table: np.ndarray, window_size: int, scale: float = 2.4) -> nn.initializers.Initializer:
    """The paper's U(-scale/F, scale/F) for a convolution with a connection table, stored compactly as
    ``(*window, n_connections)``: F is the fan-in of the output map each connection feeds, ``window_size`` times the
    number of input maps connected to it (75, 100 or 150 in C3), not ``window_size`` alone."""
    _, cols = np.nonzero(table)  # the order of the compact weights (see nn.conv)
    fan_in = window_size * np.asarray(table, bool).sum(axis=0)[cols]

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: NamedSharding | PartitionSpec | None = None,
    ) -> jax.Array:
        if shape[-1] != len(cols):
            raise ValueError(f"expected {len(cols)} connections in the last axis; got shape {shape}")
        u = jax.random.uniform(key, shape, dtype, -1.0, 1.0, out_sharding=out_sharding)
        return u * jnp.asarray(scale / fan_in, u.dtype)

    return init


def rbf_output(classes: int = 10, name: str = "output") -> Layer:
    """The paper's Euclidean RBF output units: logit_i = -||x - c_i||^2 with fixed (untrained) +-1 codes c_i.

    The codes live in the model state, so they are saved with the model but never trained (the paper fixed them by
    hand as 7x12 bitmaps of the characters; here they are random +-1 vectors, which the paper notes also work).
    """

    def init(key: jax.Array, in_shape: Shape):
        codes = jnp.where(jax.random.bernoulli(key, 0.5, (in_shape[-1], classes)), 1.0, -1.0)
        return {}, {"codes": codes}, (classes,)

    def apply(params, state, x, *, key=None, train=False):
        c = state["codes"]
        sq = jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ c + jnp.sum(c * c, 0)
        return -sq, state

    return Layer(init, apply, name)


def lenet5(num_classes: int = 10, input_shape: Shape = (32, 32, 1)) -> Model:
    """LeNet-5 as published: 32x32 input (MNIST padded by 2), C1 6@5x5, S2 trainable subsampling, C3 16@5x5 with the
    partial connection table, S4, C5 120@5x5, F6 84, scaled tanh 1.7159 tanh(2x/3) after every layer, RBF output.

    Images smaller than 32x32 are to be zero-padded to it, as the paper did for MNIST.
    Parameters: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164 (the RBF codes are fixed, not trained).
    """
    if len(input_shape) != 3:
        raise ValueError(f"lenet5 takes images of shape (height, width, channels); got input_shape {input_shape}")
    check_sizes("lenet5", input_shape=input_shape, num_classes=num_classes)
    h, w, c = input_shape
    input_shape = (max(h, 32), max(w, 32), c)  # smaller images (MNIST's 28x28) are padded to 32x32 by the data path
    init = nn.initializers.lecun_uniform_1998()
    act = nn.activation("lecun_tanh")
    layer = nn.serial(
        nn.conv2d(6, 5, w_init=init, name="C1"),
        act,
        nn.subsample(2, name="S2"),
        act,
        nn.conv2d(16, 5, connections=C3_TABLE, w_init=_table_fan_in_uniform(C3_TABLE, 25), name="C3"),
        act,
        nn.subsample(2, name="S4"),
        act,
        nn.conv2d(120, 5, w_init=init, name="C5"),
        act,
        nn.flatten(),
        nn.dense(84, w_init=init, name="F6"),
        act,
        rbf_output(num_classes),
    )
    return Model("lenet5", layer, tuple(input_shape))


def lenet5_modern(num_classes: int = 10, input_shape: Shape = (28, 28, 1)) -> Model:
    """LeNet-5 as it is built today: 28x28 input with C1 padded 'SAME', ReLU, max-pooling, full C3, softmax head.

    Weights start LeCun-normal: with He's doubled variance the initial logits are ~3x larger (initial loss 7.8
    against 2.7 on MNIST) and plain SGD + momentum ends 10 epochs at 98.9% instead of 99.1% test accuracy.
    """
    check_sizes("lenet5_modern", num_classes=num_classes)
    init = nn.initializers.lecun_normal()

    def conv(features: int, name: str, padding: str = "VALID") -> Layer:
        return nn.conv2d(features, 5, padding=padding, w_init=init, name=name)

    layer = nn.serial(
        conv(6, "C1", "SAME"),
        nn.activation("relu"),
        nn.max_pool(2, name="S2"),
        conv(16, "C3"),
        nn.activation("relu"),
        nn.max_pool(2, name="S4"),
        conv(120, "C5"),
        nn.activation("relu"),
        nn.flatten(),
        nn.dense(84, w_init=init, name="F6"),
        nn.activation("relu"),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="output"),
    )
    return Model("lenet5_modern", layer, tuple(input_shape))
