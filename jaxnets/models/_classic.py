"""The classic fully-connected models: perceptron, logistic regression and the multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import PyTree, Shape


def _outputs(num_classes: int) -> int:
    """One output unit for two classes, one per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def perceptron(input_shape: Shape = (2,), num_classes: int = 2) -> Model:
    """Rosenblatt's perceptron: one layer of threshold units (step of an affine map), no hidden layer.

    Train it with ``perceptron_rule`` or with plain SGD on its 'perceptron' head, which is the same update.
    """
    check_sizes("perceptron", num_classes=num_classes)
    layer = nn.serial(nn.flatten(), nn.dense(_outputs(num_classes), w_init=nn.initializers.zeros, name="out"))
    return Model("perceptron", layer, tuple(input_shape), head="perceptron")


def perceptron_rule(params: PyTree, x: jax.Array, labels: jax.Array, lr: float = 1.0) -> PyTree:
    """One batch step of the perceptron learning rule w <- w + lr * x^T (t - o), b <- b + lr * sum(t - o)."""
    x = x.reshape(x.shape[0], -1)
    w, b = params["out"]["w"], params["out"]["b"]
    fired = (x @ w + b > 0).astype(x.dtype)
    targets = labels.reshape(-1, 1) if w.shape[1] == 1 else jax.nn.one_hot(labels, w.shape[1])
    delta = targets.astype(x.dtype) - fired
    return {"out": {"w": w + lr * x.T @ delta, "b": b + lr * jnp.sum(delta, axis=0)}}


def logistic_regression(input_shape: Shape = (28, 28, 1), num_classes: int = 10) -> Model:
    """Logistic (two classes) or softmax (more) regression: one affine map and a sigmoid/softmax head."""
    check_sizes("logistic_regression", num_classes=num_classes)
    layer = nn.serial(nn.flatten(), nn.dense(_outputs(num_classes), w_init=nn.initializers.zeros, name="out"))
    return Model("logistic_regression", layer, tuple(input_shape), head="sigmoid" if num_classes == 2 else "softmax")


def mlp(
    input_shape: Shape = (28, 28, 1),
    num_classes: int = 10,
    hidden: Sequence[int] = (300, 100),
    activation: str = "relu",
    head: str = "softmax",
    dropout: float = 0.0,
) -> Model:
    """Multilayer perceptron of any depth/width: flatten, then ``hidden`` dense layers with ``activation``."""
    check_sizes("mlp", num_classes=num_classes, hidden=hidden)
    nn.get_activation(activation)  # an unknown name fails here, with the list of known activations
    w_init = nn.initializers.for_activation(activation)
    layers = [nn.flatten()]
    for i, width in enumerate(hidden, start=1):
        layers += [nn.dense(width, w_init=w_init, name=f"hidden{i}"), nn.activation(activation)]
        if dropout:
            layers.append(nn.dropout(dropout))
    out = num_classes if head == "softmax" else _outputs(num_classes)
    layers.append(nn.dense(out, w_init=nn.initializers.glorot_uniform(), name="out"))
    return Model("mlp", nn.serial(*layers), tuple(input_shape), head=head)
