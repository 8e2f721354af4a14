"""Looking inside training: gradient norms per layer (vanishing and exploding gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.models._base import Model
from jaxnets.nn import PyTree


def _layers(params: PyTree, prefix: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """(name, key path) of every layer, in the order the model creates them. A dict holding only dicts is a
    combinator and is descended into (names joined by '/'); any other dict is one layer."""
    out = []
    for key, value in params.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            out += [(name, (key, *path)) for name, path in _layers(value, f"{prefix}{key}/")]
        else:
            out.append((f"{prefix}{key}", (key,)))
    return out


def _get(tree: PyTree, path: tuple[str, ...]) -> PyTree:
    for k in path:
        tree = tree[k]
    return tree


def global_norm(tree: PyTree) -> jax.Array:
    """sqrt of the sum of squares of every entry of a pytree."""
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)) if leaves else jnp.zeros(())


def layer_gradient_norms(
    model: Model,
    params: PyTree,
    state: PyTree,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array | None = None,
    train: bool = False,
) -> dict[str, float]:
    """The L2 norm of the gradient of the batch-mean loss (``model.metrics``' ``'loss'``) with respect to each
    layer's parameters (weights and biases together), ``{layer name: norm}`` from input to output.

    In a deep sigmoid network at initialisation the norms shrink towards the input (vanishing gradients); names of
    layers inside combinators are their parameter paths joined by '/' (``'block1/conv'``).
    """

    def loss(p):
        metrics, _ = model.metrics(p, state, x, y, key=key, train=train)
        return jnp.mean(metrics["loss"])

    grads = jax.jit(jax.grad(loss))(params)
    return {name: float(global_norm(_get(grads, path))) for name, path in _layers(params)}
