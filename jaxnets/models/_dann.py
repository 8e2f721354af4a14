"""Domain-adversarial neural network (Ganin & Lempitsky 2015; Ganin et al. 2016, JMLR).

A feature extractor G_f feeds a label predictor G_y and, through a gradient-reversal layer, a domain classifier G_d
(source = 0, target = 1). Minimising the label loss on labelled source examples plus the domain loss on both domains
trains G_d to tell the domains apart while the reversed gradient trains G_f to make them indistinguishable
(``jaxnets.train.dann_step``). The ``Model``'s ``apply`` is the label classifier G_y(G_f(x)) and its ``metrics`` are
a classifier's (loss, accuracy), so ``evaluate`` on the target test set gives the adapted accuracy. Parameters:
``features``, ``label``, ``domain``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.losses import softmax_cross_entropy
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array


@dataclass(frozen=True)
class DomainAdversarial:
    """DANN's three networks: the ``Model``'s layer (init/apply: the label classifier) and its objective."""

    features: Layer
    label: Layer
    domain: Layer

    def init(self, key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        kf, ky, kd = jax.random.split(key, 3)
        pf, sf, feat_shape = self.features.init(kf, tuple(in_shape))
        py, sy, out = self.label.init(ky, feat_shape)
        pd, sd, dom = self.domain.init(kd, feat_shape)
        if math.prod(dom) != 1:
            raise ValueError(f"the domain classifier must output one logit; it outputs shape {dom}")
        return {"features": pf, "label": py, "domain": pd}, {"features": sf, "label": sy, "domain": sd}, out

    def embed(
        self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, PyTree]:
        """The features G_f(x) and the new state."""
        f, sf = self.features.apply(params["features"], state["features"], x, key=key, train=train)
        return f, {**state, "features": sf}

    def classify(
        self, params: PyTree, state: PyTree, f: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, PyTree]:
        """Class logits G_y(f) from features."""
        y, sy = self.label.apply(params["label"], state["label"], f, key=key, train=train)
        return y, {**state, "label": sy}

    def discriminate(
        self,
        params: PyTree,
        state: PyTree,
        f: Array,
        scale: Array | float,
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[Array, PyTree]:
        """Domain logits ``(batch,)`` G_d(R_scale(f)) ("target" = 1) behind the gradient reversal of ``scale``."""
        d, sd = self.domain.apply(
            params["domain"], state["domain"], nn.reverse_gradient(f, scale), key=key, train=train
        )
        return d.reshape(f.shape[0]), {**state, "domain": sd}

    def apply(self, params: PyTree, state: PyTree, x: Array, *, key: Array | None = None, train: bool = False):
        kf, ky = jax.random.split(key) if key is not None else (None, None)
        f, state = self.embed(params, state, x, key=kf, train=train)
        return self.classify(params, state, f, key=ky, train=train)

    def __call__(
        self,
        model: Model,
        params: PyTree,
        state: PyTree,
        x: Array,
        y: Array,
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[dict[str, Array], PyTree]:
        logits, state = model.apply(params, state, x, key=key, train=train)
        correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
        return {"loss": softmax_cross_entropy(logits, y), "accuracy": correct}, state


def domain_parts(model: Model) -> DomainAdversarial:
    """The three networks of a model built by ``dann``; ``ValueError`` for any other model."""
    if not isinstance(model.objective, DomainAdversarial):
        raise ValueError(f"{model.name} is not a domain-adversarial network built by jaxnets.models.dann")
    return model.objective


def _mlp(widths: Sequence[int], activation: str, prefix: str) -> list[Layer]:
    return [
        layer
        for i, w in enumerate(widths)
        for layer in (nn.dense(w, name=f"{prefix}{i + 1}"), nn.activation(activation))
    ]


def dann(
    input_shape: Shape = (28, 28, 3),
    num_classes: int = 10,
    hidden: Sequence[int] | None = None,
    label_hidden: Sequence[int] | None = None,
    domain_hidden: Sequence[int] | None = None,
) -> Model:
    """DANN with the architectures of Ganin et al. (2016):

    - images (``input_shape`` of rank 3; section 5.2, MNIST -> MNIST-M): G_f = conv 5x5 (32) -> ReLU -> max-pool 2
      -> conv 5x5 (48) -> ReLU -> max-pool 2 -> flatten; G_y = dense 100 -> ReLU -> dense 100 -> ReLU -> dense
      ``num_classes``; G_d = dense 100 -> ReLU -> dense 1.
    - vectors (rank 1; section 5.1, the two-moons toy): G_f = one hidden layer of ``hidden`` = (15,) sigmoid units;
      G_y = dense ``num_classes``; G_d = dense 1 (the paper's shallow network, its domain regressor on the hidden
      layer).
    """
    input_shape = tuple(input_shape)
    check_sizes("dann", num_classes=num_classes, input_shape=input_shape)
    if len(input_shape) == 3:
        features = nn.serial(
            nn.conv2d(32, 5, name="conv1"),
            nn.activation("relu"),
            nn.max_pool(2),
            nn.conv2d(48, 5, name="conv2"),
            nn.activation("relu"),
            nn.max_pool(2),
            nn.flatten(),
            name="features",
        )
        label_hidden, domain_hidden = label_hidden or (100, 100), domain_hidden or (100,)
        act = "relu"
    elif len(input_shape) == 1:
        features = nn.serial(*_mlp(hidden or (15,), "sigmoid", "hidden"), name="features")
        label_hidden, domain_hidden = label_hidden or (), domain_hidden or ()
        act = "relu"
    else:
        raise ValueError(
            f"dann takes images (height, width, channels) or vectors (features,); got input_shape {input_shape}"
        )
    label = nn.serial(*_mlp(label_hidden, act, "hidden"), nn.dense(num_classes, name="out"), name="label")
    domain = nn.serial(*_mlp(domain_hidden, act, "hidden"), nn.dense(1, name="out"), name="domain")
    parts = DomainAdversarial(features, label, domain)
    return Model("dann", Layer(parts.init, parts.apply, "dann"), input_shape, objective=parts)


def dann_lambda(progress: Array | float, gamma: float = 10.0) -> Array:
    """Ganin et al.'s schedule of the reversal's scale: ``2 / (1 + exp(-gamma p)) - 1`` for training progress p in
    [0, 1], rising from 0 to ~1 so that the domain classifier's noisy early gradients do not disturb the features."""
    return 2.0 / (1.0 + jnp.exp(-gamma * jnp.asarray(progress, jnp.float32))) - 1.0


def dann_learning_rate(progress: Array | float, base: float = 0.01, alpha: float = 10.0, beta: float = 0.75) -> Array:
    """Ganin et al.'s annealed learning rate ``base / (1 + alpha p) ** beta`` for training progress p in [0, 1]."""
    return base / (1.0 + alpha * jnp.asarray(progress, jnp.float32)) ** beta
