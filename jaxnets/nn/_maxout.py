"""Maxout units (Goodfellow, Warde-Farley, Mirza, Courville & Bengio 2013): each unit is the maximum of ``pieces``
affine functions of its input, a learned piecewise-linear convex activation.

``maxout(features, pieces)`` is a dense layer to ``features * pieces`` values followed by ``channel_max(pieces)``, the
maximum over each consecutive group of ``pieces`` channels; ``maxout_conv`` is the same after a convolution (the
paper's convolutional maxout: the maximum over ``pieces`` feature maps at every position).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnets.nn._conv import conv
from jaxnets.nn._core import Layer, Shape, serial, stateless
from jaxnets.nn._layers import dense

Array = jax.Array


def channel_max(pieces: int, name: str = "channel_max") -> Layer:
    """The maximum over each consecutive group of ``pieces`` channels (last axis): ``(..., features * pieces) ->
    (..., features)``; the output channel ``f`` is the maximum of input channels ``f * pieces .. f * pieces + pieces
    - 1``."""
    if pieces < 1:
        raise ValueError(f"{name}: pieces (affine pieces per unit) must be >= 1; got {pieces}")

    def out_shape(shape: Shape) -> Shape:
        if shape[-1] % pieces:
            raise ValueError(f"{name}: input channels ({shape[-1]}) must be a multiple of pieces ({pieces})")
        return (*shape[:-1], shape[-1] // pieces)

    def fn(x: Array) -> Array:
        return jnp.max(x.reshape(*x.shape[:-1], x.shape[-1] // pieces, pieces), axis=-1)

    return stateless(name, fn, out_shape)


def maxout(features: int, pieces: int = 2, *, name: str = "maxout", **dense_kwargs) -> Layer:
    """``features`` maxout units of ``pieces`` affine pieces each: ``h_f(x) = max_j (x @ W[:, f, j] + b[f, j])``.
    Params ``{'dense': {'w': (in, features * pieces), 'b': (features * pieces,)}}``; ``dense_kwargs`` go to
    ``dense`` (initialisers)."""
    if features < 1:
        raise ValueError(f"{name}: features (maxout units) must be >= 1; got {features}")
    top = channel_max(pieces, name=f"{name}_max")
    return serial(dense(features * pieces, **dense_kwargs), top, name=name)


def maxout_conv(
    features: int, kernel_size: int | Sequence[int], pieces: int = 2, *, name: str = "maxout_conv", **conv_kwargs
) -> Layer:
    """Convolutional maxout: a convolution to ``features * pieces`` maps, then the maximum over each group of
    ``pieces`` maps at every position; ``conv_kwargs`` go to ``conv`` (stride, padding, ...)."""
    if features < 1:
        raise ValueError(f"{name}: features (maxout feature maps) must be >= 1; got {features}")
    top = channel_max(pieces, name=f"{name}_max")
    return serial(conv(features * pieces, kernel_size, **conv_kwargs), top, name=name)
