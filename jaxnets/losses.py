"""Losses and metrics as plain per-example functions of (network outputs, integer labels).

Each output head pairs a final non-linearity with its loss: linear + mean squared error, sigmoid + binary
cross-entropy, softmax + cross-entropy, and the perceptron's step + perceptron criterion.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def mean_squared_error(predictions: Array, targets: Array) -> Array:
    """Per-example mean of the squared error over all but the batch axis."""
    err = jnp.square(predictions - targets)
    return err.reshape(err.shape[0], -1).mean(axis=1)


def binary_cross_entropy_with_logits(logits: Array, labels: Array) -> Array:
    """Per-example binary cross-entropy of sigmoid(logits) against 0/1 labels, stable for large |logits|."""
    logits = logits.reshape(logits.shape[0], -1)
    labels = labels.reshape(labels.shape[0], -1).astype(logits.dtype)
    return optax.sigmoid_binary_cross_entropy(logits, labels).mean(axis=1)


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Per-example cross-entropy of softmax(logits) against integer class labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32))


def perceptron_criterion(logits: Array, labels: Array) -> Array:
    """Rosenblatt's perceptron criterion sum_j (o_j - t_j) z_j with o = step(z) held fixed.

    Its gradient is -(t - o) x per unit, so one SGD step on the batch sum is exactly the classic perceptron rule.
    """
    targets = _unit_targets(logits, labels)
    fired = jax.lax.stop_gradient((logits > 0).astype(logits.dtype))
    return jnp.sum((fired - targets) * logits, axis=-1)


def _unit_targets(outputs: Array, labels: Array) -> Array:
    """Per-unit 0/1 targets: the label itself for one output unit, one-hot for several."""
    if outputs.shape[-1] == 1:
        return labels.reshape(-1, 1).astype(outputs.dtype)
    return jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)


def predict(head: str, outputs: Array) -> Array:
    """Class predictions from a head's outputs: threshold for one unit, argmax for several."""
    if outputs.shape[-1] == 1:
        threshold = 0.5 if head == "linear" else 0.0
        return (outputs[..., 0] > threshold).astype(jnp.int32)
    return jnp.argmax(outputs, axis=-1).astype(jnp.int32)


def accuracy(outputs: Array, labels: Array, head: str = "softmax") -> Array:
    """Fraction of examples whose predicted class equals the label."""
    return jnp.mean(predict(head, outputs) == labels)


HEADS: dict[str, Callable[[Array, Array], Array]] = {
    "softmax": softmax_cross_entropy,
    "sigmoid": binary_cross_entropy_with_logits,
    "linear": lambda outputs, labels: mean_squared_error(outputs, _unit_targets(outputs, labels)),
    "perceptron": perceptron_criterion,
}


def loss_for(head: str) -> Callable[[Array, Array], Array]:
    """The per-example loss that matches an output head ('softmax', 'sigmoid', 'linear' or 'perceptron')."""
    try:
        return HEADS[head]
    except KeyError:
        raise ValueError(f"unknown output head {head!r}; choose one of {sorted(HEADS)}") from None
