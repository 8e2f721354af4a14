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
    """``x``, ``y`` (arrays, or pytrees of them) padded to whole batches and reshaped to ``(batches, batch_size,
    ...)``, with a 0/1 mask that marks the real examples, so that evaluation sees each example exactly once."""
    n = jax.tree.leaves(x)[0].shape[0]
    batches = -(-n // batch_size)
    pad = batches * batch_size - n
    mask = jnp.arange(batches * batch_size) < n

    def fold(a):  # (x and y may be pytrees of arrays with the examples first)
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape(batches, batch_size, *a.shape[1:])

    return jax.tree.map(fold, x), jax.tree.map(fold, y), mask.reshape(batches, batch_size)
