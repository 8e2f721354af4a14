"""Activation functions, as plain functions and as parameter-free layers.

Without a non-linearity between them, stacked affine layers collapse to one affine map; these are what keep a deep
network deep.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets.nn._core import Layer, stateless

Array = jax.Array


def lecun_tanh(x: Array) -> Array:
    """LeCun's scaled hyperbolic tangent 1.7159 * tanh(2x/3) (LeCun et al. 1998, appendix A)."""
    return 1.7159 * jnp.tanh(2.0 * x / 3.0)


def identity(x: Array) -> Array:
    """The identity: a layer that adds no non-linearity."""
    return x


def masked_softmax(logits: Array, mask: Array | None, axis: int = -1) -> Array:
    """Softmax of ``logits`` over ``axis`` among the entries where ``mask`` (broadcastable to ``logits``) is true:
    attention over padded memories, words or image regions. Masked entries get weight 0; a slice with no valid entry
    gets all zeros (never NaN, also in the gradient)."""
    if mask is None:
        return jax.nn.softmax(logits, axis=axis)
    mask = jnp.broadcast_to(jnp.asarray(mask, bool), logits.shape)
    shifted = jnp.where(mask, logits, -jnp.inf)
    top = jnp.max(shifted, axis=axis, keepdims=True)
    e = jnp.where(mask, jnp.exp(logits - jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))), 0.0)
    total = jnp.sum(e, axis=axis, keepdims=True)
    return e / jnp.where(total > 0, total, 1.0)


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """ReLU with a small slope ``negative_slope`` for negative inputs."""
    return jax.nn.leaky_relu(x, negative_slope)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "lecun_tanh": lecun_tanh,
    "relu": jax.nn.relu,
    "leaky_relu": leaky_relu,
    "softmax": jax.nn.softmax,
    "identity": identity,
}


def get_activation(name: str) -> Callable[[Array], Array]:
    """Look up an activation function by name."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def activation(name: str) -> Layer:
    """The named activation as a layer."""
    return stateless(name, get_activation(name))
