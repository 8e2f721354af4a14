"""Weight initialisers matched to activations: LeCun for tanh/sigmoid, Glorot for linear/softmax, He for ReLU."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
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
