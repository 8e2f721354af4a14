"""Pure building blocks: layers as (init, apply) pairs over named parameter dicts, and their combinators."""

from jaxnets.nn import initializers
from jaxnets.nn.activations import ACTIVATIONS, activation, get_activation, lecun_tanh
from jaxnets.nn.conv import STRATEGIES, conv, conv1d, conv2d, conv3d, conv_general, conv_output_size
from jaxnets.nn.core import Layer, named, parallel, recording_init, residual, serial, stateless
from jaxnets.nn.embedding import embedding
from jaxnets.nn.layers import batch_norm, dense, dropout, flatten, lrn
from jaxnets.nn.pooling import adaptive_avg_pool, avg_pool, global_avg_pool, max_pool, subsample
from jaxnets.nn.recurrent import Cell, get_cell, gru, gru_cell, lstm, lstm_cell, recurrent, rnn, rnn_cell, scan_cell

__all__ = [
    "ACTIVATIONS", "STRATEGIES", "Layer", "activation", "adaptive_avg_pool", "avg_pool", "batch_norm", "conv",
    "conv1d", "conv2d", "conv3d", "conv_general", "conv_output_size", "dense", "dropout", "flatten", "get_activation",
    "global_avg_pool", "initializers", "lecun_tanh", "lrn", "max_pool", "named", "parallel", "recording_init",
    "residual", "serial", "stateless", "subsample",
]
__all__ += ["Cell", "embedding", "get_cell", "gru", "gru_cell", "lstm", "lstm_cell", "recurrent", "rnn",
            "rnn_cell", "scan_cell"]
