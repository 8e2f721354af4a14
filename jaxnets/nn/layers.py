"""Dense, flatten, dropout and batch normalisation as pure layers with named parameter dicts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnets.nn import initializers as inits
from jaxnets.nn.core import Layer, Shape, stateless

Array = jax.Array


def dense(features: int, *, w_init: inits.Initializer | None = None, b_init: inits.Initializer = inits.zeros,
          name: str = "dense") -> Layer:
    """Affine map ``x @ w + b`` over the last axis; params ``{'w': (in, features), 'b': (features,)}``."""
    w_init = w_init or inits.lecun_normal()

    def init(key: Array, in_shape: Shape):
        kw, kb = jax.random.split(key)
        fan_in = in_shape[-1]
        return {"w": w_init(kw, (fan_in, features)), "b": b_init(kb, (features,))}, {}, (*in_shape[:-1], features)

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return x @ params["w"] + params["b"], state

    return Layer(init, apply, name)


def flatten(name: str = "flatten") -> Layer:
    """Flatten all per-example axes into one."""
    return stateless(name, lambda x: x.reshape(x.shape[0], -1), lambda s: (math.prod(s),))


def dropout(rate: float, name: str = "dropout") -> Layer:
    """Zero each unit with probability ``rate`` during training (scaling survivors by 1/(1-rate)); identity in eval."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate is the probability of dropping a unit and must be in [0, 1); got {rate}")

    def init(key: Array, in_shape: Shape):
        return {}, {}, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        if not train or rate == 0.0:
            return x, state
        if key is None:
            raise ValueError("dropout needs a PRNG key in training mode: call apply(..., key=key, train=True)")
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0.0), state

    return Layer(init, apply, name)


def batch_norm(momentum: float = 0.9, eps: float = 1e-5, name: str = "batch_norm") -> Layer:
    """Normalise each channel (last axis) over batch and spatial axes, then scale and shift.

    In training the batch statistics are used and the running averages in ``state`` are updated as
    ``ra = momentum * ra + (1 - momentum) * batch``; in evaluation the running averages are used.
    """

    def init(key: Array, in_shape: Shape):
        c = in_shape[-1]
        params = {"scale": jnp.ones((c,)), "bias": jnp.zeros((c,))}
        state = {"mean": jnp.zeros((c,)), "var": jnp.ones((c,))}
        return params, state, tuple(in_shape)

    def apply(params, state, x, *, key=None, train=False):
        del key
        axes = tuple(range(x.ndim - 1))
        if train:
            mean = jnp.mean(x, axes)
            var = jnp.mean(jnp.square(x - mean), axes)
            state = {"mean": momentum * state["mean"] + (1 - momentum) * mean,
                     "var": momentum * state["var"] + (1 - momentum) * var}
        else:
            mean, var = state["mean"], state["var"]
        y = (x - mean) * jax.lax.rsqrt(var + eps)
        return y * params["scale"] + params["bias"], state

    return Layer(init, apply, name)
