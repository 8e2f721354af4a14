"""Weight initialisers matched to activations: LeCun for tanh/sigmoid, Glorot for linear/softmax, He for ReLU."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn import initializers
from jax.sharding import NamedSharding, PartitionSpec

Initializer = initializers.Initializer

lecun_normal = initializers.lecun_normal
glorot_uniform = initializers.glorot_uniform
he_normal = initializers.he_normal
zeros = initializers.zeros
ones = initializers.ones

_FOR_ACTIVATION = {
    "relu": he_normal,
    "leaky_relu": he_normal,
    "tanh": lecun_normal,
    "lecun_tanh": lecun_normal,
    "sigmoid": lecun_normal,
    "identity": glorot_uniform,
    "softmax": glorot_uniform,
}


def for_activation(name: str) -> Initializer:
    """The weight initialiser that keeps activations' variance stable for the named non-linearity."""
    try:
        return _FOR_ACTIVATION[name]()
    except KeyError:
        raise ValueError(f"no initialiser for activation {name!r}; known: {sorted(_FOR_ACTIVATION)}") from None


def lecun_uniform_1998(scale: float = 2.4) -> Initializer:
    """LeCun et al. 1998's uniform(-scale/F_in, scale/F_in) with F_in the unit's fan-in (all but the last axis)."""

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: NamedSharding | PartitionSpec | None = None,
    ) -> jax.Array:
        fan_in = max(1, math.prod(shape[:-1]))
        return jax.random.uniform(key, shape, dtype, -scale / fan_in, scale / fan_in, out_sharding=out_sharding)

    return init


def orthogonal(scale: float = 1.0) -> Initializer:
    """Orthogonal weights (Saxe et al. 2014) times ``scale``: ``jax.nn.initializers.orthogonal``'s draws (a Gaussian
    matrix's Q factor, signs fixed so that R's diagonal is positive: Haar-uniform), with its QR run one matrix at a
    time under ``vmap``. jaxlib 0.10's CPU QR spreads a batch (an init vmapped over seeds) over XLA's own thread
    pool and blocks a worker on it: two at once, or one with a single-thread pool, deadlock."""

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: NamedSharding | PartitionSpec | None = None,
    ) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"an orthogonal initialiser needs a shape of 2 or more axes; got {tuple(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q = _q_factor(jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype))
        w = (scale * (q.T if rows < cols else q)).reshape(shape)
        return jax.device_put(w, out_sharding) if out_sharding is not None else w

    return init


@jax.custom_batching.custom_vmap
def _q_factor(z: jax.Array) -> jax.Array:
    """The Q of ``z = QR`` with R's diagonal made positive."""
    q, r = jnp.linalg.qr(z)
    return q * jnp.sign(jnp.diagonal(r))


@_q_factor.def_vmap
def _q_factor_batched(axis_size: int, in_batched: list[bool], z: jax.Array) -> tuple[jax.Array, bool]:
    return jax.lax.map(_q_factor, z), True  # a loop of single QRs, never LAPACK's batched (thread-pool) path
