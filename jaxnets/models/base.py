"""The model type: a layer with a fixed input shape, an output head, and input checking."""

from __future__ import annotations

from dataclasses import dataclass

import jax

from jaxnets.losses import HEADS
from jaxnets.nn.core import Layer, PyTree, Shape


@dataclass(frozen=True)
class Model:
    """A network ready to train: ``init(key) -> (params, state)``, ``apply(params, state, x) -> (outputs, state)``.

    ``head`` names the output head ('softmax', 'sigmoid', 'linear', 'perceptron') and so the loss that fits it;
    the outputs are the head's pre-activations (logits) except for 'linear'.
    """

    name: str
    layer: Layer
    input_shape: Shape
    head: str = "softmax"

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
