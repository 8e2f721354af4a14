"""Weight initialisers matched to activations: LeCun for tanh/sigmoid, Glorot for linear/softmax, He for ReLU.

They give exactly ``jax.nn.initializers``' values (tested bit for bit) but draw flat at a bucketed length and slice:
with ``jax_threefry_partitionable`` (JAX's default) element ``i`` of a draw depends only on the key and ``i``, so
weights of any shape reuse the compiled draw of their size bucket. Op by op, a model's init then compiles a handful of
small programs instead of one per weight shape (and a shaped draw compiles ~2.5x slower than a flat one).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.nn import initializers
from jax.sharding import NamedSharding, PartitionSpec

Initializer = initializers.Initializer
Distribution = Literal["truncated_normal", "normal", "uniform"]

zeros = initializers.zeros
ones = initializers.ones

_BIG = 1 << 20  # draws up to this length round up to a power of two, longer ones to a multiple of it
_TRUNCATED_STD = 0.87962566103423978  # standard deviation of a standard normal truncated to (-2, 2)


@functools.partial(jax.jit, static_argnames=("shape", "dtype", "distribution"))
def _standard_draw(key: jax.Array, *, shape: tuple[int, ...], dtype: Any, distribution: str) -> jax.Array:
    """A standard normal truncated to (-2, 2), a standard normal, or a uniform on (-1, 1): JAX's draws."""
    if distribution == "truncated_normal":
        return jax.random.truncated_normal(key, -2, 2, shape, dtype)
    if distribution == "normal":
        return jax.random.normal(key, shape, dtype)
    return jax.random.uniform(key, shape, dtype, -1)


def _draw(
    key: jax.Array,
    shape: Sequence[int],
    dtype: Any,
    distribution: Distribution,
    scale: jax.Array,
    out_sharding: NamedSharding | PartitionSpec | None = None,
) -> jax.Array:
    """``scale`` times a standard draw of ``shape``, made flat at the bucket length and sliced where the stream allows
    it. The product is taken outside the draw's program, as JAX's initialisers do (fused, it can differ by an ulp)."""
    shape = tuple(shape)
    n = math.prod(shape)
    if _partitionable() and n > 0:
        size = 1 << (n - 1).bit_length() if n <= _BIG else -(-n // _BIG) * _BIG
        w = (_standard_draw(key, shape=(size,), dtype=dtype, distribution=distribution) * scale)[:n].reshape(shape)
    else:  # without partitionable threefry the values depend on the shape: draw it as JAX does
        w = _standard_draw(key, shape=shape, dtype=dtype, distribution=distribution) * scale
    return jax.device_put(w, out_sharding) if out_sharding is not None else w


def _partitionable() -> bool:
    """Whether JAX's threefry draws are partitionable (each element a function of the key and its flat index)."""
    return bool(jax.config.jax_threefry_partitionable)  # type: ignore[attr-defined]


def variance_scaling(scale: float, mode: str, distribution: Distribution) -> Initializer:
    """``jax.nn.initializers.variance_scaling`` (fans from the last two axes and the receptive field), bucketed."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"mode must be 'fan_in', 'fan_out' or 'fan_avg'; got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"distribution must be 'truncated_normal', 'normal' or 'uniform'; got {distribution!r}")

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: NamedSharding | PartitionSpec | None = None,
    ) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"variance scaling needs a weight shape of 2 or more axes; got {tuple(shape)}")
        dtype = jnp.float32 if dtype is None else dtype
        receptive = math.prod(shape) / shape[-2] / shape[-1]
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        denominator = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = jnp.array(scale / denominator, dtype=dtype)
        if distribution == "truncated_normal":
            std = jnp.sqrt(variance) / jnp.array(_TRUNCATED_STD, dtype)
        else:
            std = jnp.sqrt(3 * variance if distribution == "uniform" else variance)
        return _draw(key, shape, dtype, distribution, std, out_sharding)

    return init


def normal(stddev: float = 1e-2) -> Initializer:
    """``jax.nn.initializers.normal``: N(0, stddev^2), bucketed."""

    def init(
        key: jax.Array,
        shape: Sequence[int],
        dtype: Any = None,
        out_sharding: NamedSharding | PartitionSpec | None = None,
    ) -> jax.Array:
        dtype = jnp.float32 if dtype is None else dtype
        return _draw(key, shape, dtype, "normal", jnp.array(stddev, dtype), out_sharding)

    return init


def lecun_normal() -> Initializer:
    """LeCun normal: truncated normal with variance 1 / fan_in (tanh, sigmoid)."""
    return variance_scaling(1.0, "fan_in", "truncated_normal")


def he_normal() -> Initializer:
    """He normal: truncated normal with variance 2 / fan_in (ReLU)."""
    return variance_scaling(2.0, "fan_in", "truncated_normal")


def glorot_uniform() -> Initializer:
    """Glorot uniform: uniform with variance 2 / (fan_in + fan_out) (linear, softmax)."""
    return variance_scaling(1.0, "fan_avg", "uniform")


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
        dtype = jnp.float32 if dtype is None else dtype
        q = _q_factor(_draw(key, (max(rows, cols), min(rows, cols)), dtype, "normal", jnp.array(1.0, dtype)))
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
