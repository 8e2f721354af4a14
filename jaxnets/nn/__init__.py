"""Pure building blocks: layers as (init, apply) pairs over named parameter dicts, and their combinators."""

from jaxnets.nn import initializers
from jaxnets.nn.activations import ACTIVATIONS, activation, get_activation, lecun_tanh
from jaxnets.nn.conv import STRATEGIES, conv, conv1d, conv2d, conv3d, conv_general, conv_output_size
from jaxnets.nn.core import Layer, named, parallel, residual, serial, stateless
from jaxnets.nn.layers import batch_norm, dense, dropout, flatten
from jaxnets.nn.pooling import avg_pool, max_pool, subsample

__all__ = [
    "ACTIVATIONS", "STRATEGIES", "Layer", "activation", "avg_pool", "batch_norm", "conv", "conv1d", "conv2d",
    "conv3d", "conv_general", "conv_output_size", "dense", "dropout", "flatten", "get_activation", "initializers",
    "lecun_tanh", "max_pool", "named", "parallel", "residual", "serial", "stateless", "subsample",
]
