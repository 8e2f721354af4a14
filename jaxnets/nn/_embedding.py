"""Embedding: integer tokens -> learned vectors (a one-hot input times a weight matrix, without the one-hot)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.nn import initializers as inits
from jaxnets.nn._core import Layer, Shape

Array = jax.Array


def embedding(
    vocab_size: int, features: int, *, init: inits.Initializer | None = None, name: str = "embedding"
) -> Layer:
    """Look up row ``x`` of a ``(vocab_size, features)`` table: input ``(batch, ...)`` token ids, output
    ``(batch, ..., features)``; params ``{'table'}``, N(0, 1) by default (as PyTorch's ``nn.Embedding``).

    Float inputs holding whole numbers are cast to int32 (shape inference feeds zeros). Ids outside
    ``[0, vocab_size)`` are clamped (JAX gathers never fail inside ``jit``): keep them in range.
    """
    if vocab_size < 1 or features < 1:
        raise ValueError(f"embedding needs vocab_size >= 1 and features >= 1; got {vocab_size}, {features}")
    init = init or inits.normal(1.0)

    def init_fn(key: Array, in_shape: Shape):
        return {"table": init(key, (vocab_size, features))}, {}, (*in_shape, features)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return jnp.take(params["table"], x.astype(jnp.int32), axis=0, mode="clip"), state

    return Layer(init_fn, apply, name)
