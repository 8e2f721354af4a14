"""Pure building blocks: layers as (init, apply) pairs over named parameter dicts, and their combinators.

Every name is flat here (``nn.conv2d``, ``nn.lstm_cell``, ``nn.Layer``); the modules that implement them are private.
``nn.initializers`` is the one public submodule (weight initialisers by name).
"""

from jaxnets.nn import initializers
from jaxnets.nn._activations import ACTIVATIONS, activation, get_activation, lecun_tanh, masked_softmax
from jaxnets.nn._conv import (
    STRATEGIES,
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_general,
    conv_output_size,
    conv_strategy,
    current_conv_strategy,
    padding_pairs,
)
from jaxnets.nn._core import Layer, PyTree, Shape, named, parallel, recording_init, residual, serial, stateless
from jaxnets.nn._embedding import embedding
from jaxnets.nn._fft import conv_fft
from jaxnets.nn._layers import batch_norm, dense, dropout, flatten, lrn, reshape, upsample
from jaxnets.nn._maxout import channel_max, maxout, maxout_conv
from jaxnets.nn._pooling import adaptive_avg_pool, avg_pool, global_avg_pool, max_pool, subsample
from jaxnets.nn._recurrent import (
    Cell,
    get_cell,
    gru,
    gru_cell,
    lengths_to_mask,
    lstm,
    lstm_cell,
    recurrent,
    rnn,
    rnn_cell,
    scan_cell,
)
from jaxnets.nn._skip import center_crop, crop_concat, skip_concat
from jaxnets.nn._subpixel import bicubic_resize, pixel_shuffle, pixel_unshuffle
from jaxnets.nn._transpose import conv_transpose, conv_transpose_general, gradient_reversal, reverse_gradient

# One sorted list of every exported name (tests/test_public_api.py checks it): add new names in place, no `+=`.
__all__ = [
    "ACTIVATIONS",
    "Cell",
    "Layer",
    "PyTree",
    "STRATEGIES",
    "Shape",
    "activation",
    "adaptive_avg_pool",
    "avg_pool",
    "batch_norm",
    "bicubic_resize",
    "center_crop",
    "channel_max",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_fft",
    "conv_general",
    "conv_output_size",
    "conv_strategy",
    "conv_transpose",
    "conv_transpose_general",
    "crop_concat",
    "current_conv_strategy",
    "dense",
    "dropout",
    "embedding",
    "flatten",
    "get_activation",
    "get_cell",
    "global_avg_pool",
    "gradient_reversal",
    "gru",
    "gru_cell",
    "initializers",
    "lecun_tanh",
    "lengths_to_mask",
    "lrn",
    "lstm",
    "lstm_cell",
    "masked_softmax",
    "max_pool",
    "maxout",
    "maxout_conv",
    "named",
    "padding_pairs",
    "parallel",
    "pixel_shuffle",
    "pixel_unshuffle",
    "recording_init",
    "recurrent",
    "reshape",
    "residual",
    "reverse_gradient",
    "rnn",
    "rnn_cell",
    "scan_cell",
    "serial",
    "skip_concat",
    "stateless",
    "subsample",
    "upsample",
]
