"""Small shared test helpers that keep the suite fast: shapes by abstract tracing, parameters from numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn


def abstract_init(layer: nn.Layer, in_shape):
    """``layer.init`` traced abstractly: parameter and state shapes (ShapeDtypeStructs) and the output shape.

    Nothing is compiled or run: compiling initialisers op by op dominates the time of small tests otherwise.
    """
    box = {}

    def params_and_state(key):
        params, state, out_shape = layer.init(key, tuple(in_shape))
        box["out"] = tuple(out_shape)
        return params, state

    params, state = jax.eval_shape(params_and_state, jax.random.key(0))
    return params, state, box["out"]


def random_like(tree, rng: np.random.Generator, scale: float = 1.0, low: float | None = None, dtype=jnp.float32):
    """A pytree shaped like ``tree`` of N(0, scale^2) values (or U(low, low + 1) when ``low`` is given)."""

    def make(leaf):
        v = rng.standard_normal(leaf.shape) * scale if low is None else rng.uniform(low, low + 1, leaf.shape)
        return jnp.asarray(v.astype(np.dtype(dtype)))

    return jax.tree_util.tree_map(make, tree)


def model_params(model, rng: np.random.Generator, dtype=jnp.float32):
    """Random ``(params, state)`` for ``model`` at a generic point, without running its initialisers: weights
    N(0, 1/fan_in) (fan-in = all but the last axis), vectors U(-0.5, 0.5) (plus 1 for multiplicative 'scale'/'coef'),
    RBF codes +-1, running variances in (0.5, 1.5)."""
    params, state = jax.eval_shape(model.init, jax.random.key(0))

    def param(path, leaf):
        name = jax.tree_util.keystr(path[-1:], simple=True)
        if len(leaf.shape) >= 2:
            v = rng.standard_normal(leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
        else:
            v = rng.uniform(-0.5, 0.5, leaf.shape) + (1.0 if name in ("scale", "coef") else 0.0)
        return jnp.asarray(v.astype(np.dtype(dtype)))

    def stat(path, leaf):
        name = jax.tree_util.keystr(path[-1:], simple=True)
        if name == "codes":
            v = rng.choice([-1.0, 1.0], leaf.shape)
        elif name == "var":
            v = rng.uniform(0.5, 1.5, leaf.shape)
        else:
            v = rng.standard_normal(leaf.shape)
        return jnp.asarray(v.astype(np.dtype(dtype)))

    return (jax.tree_util.tree_map_with_path(param, params), jax.tree_util.tree_map_with_path(stat, state))
