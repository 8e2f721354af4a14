"""The model type: a layer with a fixed input shape, an output head, and input checking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxnets.losses import HEADS, loss_for, predict
from jaxnets.nn.core import Layer, PyTree, Shape

# objective(model, params, state, x, y, *, key, train) -> ({metric name: per-example values}, new state)
Objective = Callable[..., tuple[dict[str, jax.Array], PyTree]]


@dataclass(frozen=True)
class Model:
    """A network ready to train: ``init(key) -> (params, state)``, ``apply(params, state, x) -> (outputs, state)``.

    ``head`` names the output head ('softmax', 'sigmoid', 'linear', 'perceptron') and so the loss that fits it;
    the outputs are the head's pre-activations (logits) except for 'linear'. Models that are not classifiers
    (autoencoders, language models) give an ``objective`` instead: see ``metrics``.
    """

    name: str
    layer: Layer
    input_shape: Shape
    head: str = "softmax"
    objective: Objective | None = None

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"{self.name}: unknown output head {self.head!r}; choose one of {sorted(HEADS)}")

    def init(self, key: jax.Array) -> tuple[PyTree, PyTree]:
        """Initialise parameters and non-trained state for this model's input shape."""
        params, state, _ = self.layer.init(key, self.input_shape)
        return params, state

    def apply(self, params: PyTree, state: PyTree, x: jax.Array, *, key: jax.Array | None = None,
              train: bool = False) -> tuple[jax.Array, PyTree]:
        """Run the network on a batch ``x`` of shape ``(batch, *input_shape)``; returns outputs and new state."""
        if tuple(x.shape[1:]) != tuple(self.input_shape) or x.ndim != len(self.input_shape) + 1:
            raise ValueError(f"{self.name} expects input of shape (batch, {', '.join(map(str, self.input_shape))}); "
                             f"got {tuple(x.shape)}")
        return self.layer.apply(params, state, x, key=key, train=train)

    def metrics(self, params: PyTree, state: PyTree, x: jax.Array, y: jax.Array, *, key: jax.Array | None = None,
                train: bool = False) -> tuple[dict[str, jax.Array], PyTree]:
        """Per-example metrics of a batch, each of shape ``(batch,)``, and the new state. ``'loss'`` is always there:
        its batch mean is what training minimises. Classifiers also report ``'accuracy'``."""
        if self.objective is not None:
            return self.objective(self, params, state, x, y, key=key, train=train)
        outputs, state = self.apply(params, state, x, key=key, train=train)
        correct = (predict(self.head, outputs) == y).astype(jnp.float32)
        return {"loss": loss_for(self.head)(outputs, y), "accuracy": correct}, state
