"""Metric learning and few-shot learning: Siamese (contrastive) and triplet embedding nets, prototypical networks.

- ``siamese`` (Bromley et al. 1993; Hadsell, Chopra & LeCun 2006; Keras' mnist_siamese example): examples are
  pairs (batch, 2, *image) with labels ``same`` in {1, 0}; the contrastive loss of their embeddings' distance.
  A pair is predicted "same" when the distance is below ``margin / 2`` (the example's 0.5 for margin 1).
- ``triplet`` (Schroff, Kalenichenko & Philbin 2015): examples are images with class labels; each one anchors its
  batch-hard triplet (Hermans et al. 2017) on L2-normalised embeddings.
- ``protonet`` (Snell, Swersky & Zemel 2017): examples are whole N-way K-shot episodes (batch, N*(K+Q), *image),
  class-major as ``data.episode_indices`` makes them; each class's prototype is the mean embedding of its K support
  examples, queries are classified by softmax over minus squared distances to the prototypes. With K = 1 it is
  one-shot nearest-neighbour classification, which is how a Siamese net is used for one-shot learning (Koch, Zemel
  & Salakhutdinov 2015): the parameters of all three fit one another's ``embedding`` when it is the same network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import losses, nn
from jaxnets.models._base import Model

Array = jax.Array


def per_item(layer: nn.Layer, items: int) -> nn.Layer:
    """Apply ``layer`` to each of the ``items`` examples of a group (batch, items, ...) -> (batch, items, ...),
    with one set of weights (a Siamese net's tied towers). uint8 inputs are scaled to [0, 1]."""

    def init(key: Array, in_shape: nn.Shape):
        if in_shape[0] != items:
            raise ValueError(f"{layer.name} groups {items} items per example; got input shape {in_shape}")
        params, state, out = layer.init(key, tuple(in_shape[1:]))
        return params, state, (items, *out)

    def apply(params, state, x, *, key=None, train=False):
        if x.dtype == jnp.uint8:
            x = x.astype(jnp.float32) / 255.0
        y, state = layer.apply(params, state, x.reshape(-1, *x.shape[2:]), key=key, train=train)
        return y.reshape(x.shape[0], items, *y.shape[1:]), state

    return nn.Layer(init, apply, layer.name)


def embedding_mlp(
    dim: int = 128, hidden: Sequence[int] = (128, 128), dropout: float = 0.1, final_relu: bool = True
) -> nn.Layer:
    """Keras' mnist_siamese base network: flatten, dense 128 ReLU, dropout 0.1, dense 128 ReLU, dropout 0.1,
    dense ``dim`` ReLU (``final_relu=False``: linear, e.g. for a 2-D embedding to plot)."""
    layers = [nn.flatten()]
    for i, width in enumerate((*hidden, dim), start=1):
        layers.append(nn.dense(width, w_init=nn.initializers.for_activation("relu"), name=f"dense{i}"))
        if i <= len(hidden) or final_relu:
            layers.append(nn.activation("relu"))
        if dropout and i <= len(hidden):
            layers.append(nn.dropout(dropout, name=f"dropout{i}"))
    return nn.serial(*layers, name="embedding")


def conv4(features: int = 64, blocks: int = 4) -> nn.Layer:
    """Snell et al.'s (and Vinyals et al.'s) embedding: ``blocks`` x [conv 3x3 ``features``, batch norm, ReLU,
    max-pool 2], flattened (64-d on 28x28 inputs)."""
    layers = []
    for i in range(1, blocks + 1):
        layers += [
            nn.conv2d(features, 3, padding="SAME", name=f"conv{i}"),
            nn.batch_norm(name=f"bn{i}"),
            nn.activation("relu"),
            nn.max_pool(2, padding="SAME"),
        ]
    return nn.serial(*layers, nn.flatten(), name="embedding")


def siamese(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int | None = None,
    embedding: nn.Layer | None = None,
    margin: float = 1.0,
    name: str = "siamese",
) -> Model:
    """Siamese net on pairs (batch, 2, *input_shape) with ``same`` labels: contrastive loss, pair ``accuracy``
    (distance < margin / 2) and the ``distance``. ``embedding`` defaults to ``embedding_mlp()``."""
    del num_classes
    if margin <= 0:
        raise ValueError(f"margin must be > 0; got {margin}")

    def objective(
        model: Model, params, state, x: Array, y: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[dict[str, Array], nn.PyTree]:
        emb, state = model.apply(params, state, x, key=key, train=train)
        emb = emb.reshape(emb.shape[0], 2, -1)
        d = losses.euclidean_distance(emb[:, 0], emb[:, 1])
        correct = ((d < margin / 2).astype(jnp.int32) == y).astype(jnp.float32)
        return {"loss": losses.contrastive_loss(d, y, margin), "accuracy": correct, "distance": d}, state

    layer = per_item(embedding or embedding_mlp(), 2)
    return Model(name, layer, (2, *input_shape), head="linear", objective=objective)


def _l2_normalise(x: Array) -> Array:
    return x / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), 1e-12))


def _flat_init(layer: nn.Layer, key: Array, in_shape: nn.Shape):
    params, state, out = layer.init(key, in_shape)
    return params, state, (math.prod(out),)


def triplet(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int | None = None,
    embedding: nn.Layer | None = None,
    dim: int = 64,
    margin: float = 0.2,
    squared: bool = False,
    name: str = "triplet",
) -> Model:
    """Embedding net (``embedding``, default ``embedding_mlp(dim, final_relu=False)``; its parameters as they are, so
    they fit a ``siamese`` or ``protonet`` of the same embedding) with L2-normalised outputs, trained on labelled
    images by the batch-hard triplet loss on Euclidean distances (``squared=True``: Schroff et al.'s squared ones,
    which collapsed every output into one point on MNIST, see README); reports the ``active`` fraction of anchors
    (loss > 0)."""
    del num_classes
    if margin <= 0:
        raise ValueError(f"margin must be > 0; got {margin}")

    def objective(
        model: Model, params, state, x: Array, y: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[dict[str, Array], nn.PyTree]:
        emb, state = model.apply(params, state, x, key=key, train=train)
        loss = losses.batch_hard_triplet_loss(emb.reshape(emb.shape[0], -1), y, margin, squared)
        return {"loss": loss, "active": (loss > 0).astype(jnp.float32)}, state

    inner = embedding or embedding_mlp(dim, final_relu=False)

    def apply(params, state, x, *, key=None, train=False):
        emb, state = inner.apply(params, state, x, key=key, train=train)
        return _l2_normalise(emb.reshape(emb.shape[0], -1)), state

    layer = nn.Layer(lambda key, shape: _flat_init(inner, key, shape), apply, inner.name)
    return Model(name, layer, tuple(input_shape), head="linear", objective=objective)


def prototype_logits(embeddings: Array, n_way: int, k_shot: int) -> tuple[Array, Array]:
    """Class-major episode embeddings (batch, N*(K+Q), D) -> logits (batch, N*Q, N) = minus squared distances of
    each query to the N prototypes (means of the K support embeddings), and the query labels (N*Q,)."""
    b, items, d = embeddings.shape
    per = items // n_way
    e = embeddings.reshape(b, n_way, per, d)
    prototypes = jnp.mean(e[:, :, :k_shot], axis=2)
    queries = e[:, :, k_shot:].reshape(b, -1, d)
    logits = -jnp.sum(jnp.square(queries[:, :, None, :] - prototypes[:, None, :, :]), axis=-1)
    return logits, jnp.repeat(jnp.arange(n_way), per - k_shot)


def protonet(
    input_shape: Sequence[int] = (28, 28, 1),
    num_classes: int | None = None,
    n_way: int = 5,
    k_shot: int = 5,
    n_query: int = 15,
    embedding: nn.Layer | None = None,
    name: str = "protonet",
) -> Model:
    """Prototypical network over episodes (batch, n_way * (k_shot + n_query), *input_shape), class-major; the
    per-episode loss is the mean query cross-entropy, ``accuracy`` the fraction of queries right. ``embedding``
    defaults to ``conv4()``; labels are ignored (an episode's classes are its position)."""
    del num_classes
    if n_way < 2 or k_shot < 1 or n_query < 1:
        raise ValueError(f"need n_way >= 2, k_shot >= 1, n_query >= 1; got {n_way}, {k_shot}, {n_query}")
    items = n_way * (k_shot + n_query)

    def objective(
        model: Model, params, state, x: Array, y: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[dict[str, Array], nn.PyTree]:
        del y
        emb, state = model.apply(params, state, x, key=key, train=train)
        logits, labels = prototype_logits(emb.reshape(emb.shape[0], items, -1), n_way, k_shot)
        ce = jax.vmap(lambda lg: losses.softmax_cross_entropy(lg, labels))(logits)
        correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
        return {"loss": ce.mean(axis=1), "accuracy": correct.mean(axis=1)}, state

    layer = per_item(embedding or conv4(), items)
    return Model(name, layer, (items, *input_shape), head="linear", objective=objective)


def recall_at_1(embeddings: Array, labels: Array, batch: int = 1000) -> float:
    """Fraction of examples whose nearest other example (Euclidean, among all given) has the same label."""
    e = jnp.asarray(embeddings).reshape(len(embeddings), -1)
    labels = jnp.asarray(labels)
    norms = jnp.sum(jnp.square(e), axis=1)

    @jax.jit
    def nearest(start):
        rows = jax.lax.dynamic_slice_in_dim(e, start, batch)
        d = jnp.sum(jnp.square(rows), 1)[:, None] - 2 * rows @ e.T + norms[None, :]
        d = jnp.where(jnp.arange(len(e))[None, :] == (start + jnp.arange(batch))[:, None], jnp.inf, d)
        return jnp.argmin(d, axis=1)

    n = len(e)
    if n < 2:
        raise ValueError(f"recall@1 needs at least 2 examples; got {n}")
    batch = min(batch, n)
    starts = [min(s, n - batch) for s in range(0, n, batch)]
    hits = np.zeros(n, bool)
    for s in starts:
        hits[s : s + batch] = np.asarray(labels[nearest(s)] == labels[s : s + batch])
    return float(hits.mean())
