"""On-device batching: epoch permutations of fixed-shape batches, and padded, masked evaluation batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Number of full batches in an epoch; the last partial batch is dropped so every step has the same shape."""
    return num_examples // batch_size


def epoch_batches(key: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """A random permutation of the example indices cut into ``(steps, batch_size)`` (the remainder is dropped)."""
    steps = steps_per_epoch(num_examples, batch_size)
    return jax.random.permutation(key, num_examples)[: steps * batch_size].reshape(steps, batch_size)


def padded_batches(x: jax.Array, y: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``x``, ``y`` padded to whole batches and reshaped to ``(batches, batch_size, ...)``, with a 0/1 mask that
    marks the real examples, so that evaluation sees each example exactly once."""
    n = x.shape[0]
    batches = -(-n // batch_size)
    pad = batches * batch_size - n
    mask = jnp.arange(batches * batch_size) < n
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
    y = jnp.pad(y, [(0, pad)] + [(0, 0)] * (y.ndim - 1))
    return (x.reshape(batches, batch_size, *x.shape[1:]), y.reshape(batches, batch_size, *y.shape[1:]),
            mask.reshape(batches, batch_size))
