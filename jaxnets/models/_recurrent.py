"""Recurrent models: sequence classifiers (MNIST read row by row) and a character-level language model.

``sequence_classifier(cell=...)`` reads an input of shape (time, features[, channels]) one step per row, e.g. an
MNIST digit as 28 steps of 28 pixels, and classifies it from the last hidden state; it is registered as ``rnn``
(Elman 1990), ``lstm`` (Hochreiter & Schmidhuber 1997, with Gers et al. 2000's forget gate) and ``gru`` (Cho et al.
2014). ``char_lm`` is Karpathy's char-rnn (2015): tokens -> embedding -> stacked recurrent layers -> logits over the
vocabulary at every step, trained on next-character cross-entropy (registered as ``char_lstm``).

``gradient_norms_over_time`` measures how much the loss at the end of a sequence depends on each of its steps: the
vanishing gradient of a plain RNN (Bengio, Simard & Frasconi 1994; Hochreiter 1991) that the LSTM's additive cell
state avoids.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import PyTree, Shape


def _sequence_shape(model: str, input_shape: Shape) -> tuple[int, int]:
    if len(input_shape) < 2 or any(int(d) < 1 for d in input_shape):
        raise ValueError(
            f"{model} reads sequences of shape (time, features) or (time, features, channels), one step "
            f"per row; got input_shape {tuple(input_shape)}"
        )
    return int(input_shape[0]), math.prod(int(d) for d in input_shape[1:])


def sequence_classifier(
    input_shape: Shape = (28, 28, 1),
    num_classes: int = 10,
    cell: str | nn.Cell = "lstm",
    hidden: int = 128,
    layers: int = 1,
    dropout: float = 0.0,
    name: str | None = None,
) -> Model:
    """Classify a sequence from the last hidden state of ``layers`` stacked recurrent layers of ``cell`` ('rnn',
    'lstm', 'gru' or a ``Cell``).

    The input ``(time, features, ...)`` is read one row per step (an MNIST image: 28 steps of 28 pixels); the
    parameters are ``{'rnn1': cell params, ..., 'out': {'w', 'b'}}``. ``dropout`` applies between layers.
    """
    cell_fn = nn.get_cell(cell)
    name = name or cell_fn.name
    time, features = _sequence_shape(name, input_shape)
    check_sizes(name, num_classes=num_classes, hidden=hidden, layers=layers)
    stack: list[nn.Layer] = [
        nn.stateless("rows", lambda x: x.reshape(x.shape[0], time, features), lambda s: (time, features))
    ]
    for i in range(1, layers + 1):
        stack.append(nn.recurrent(cell_fn, hidden, return_sequences=i < layers, name=f"rnn{i}"))
        if dropout and i < layers:
            stack.append(nn.dropout(dropout))
    stack.append(nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="out"))
    return Model(name, nn.serial(*stack), tuple(input_shape))


def rnn_classifier(input_shape: Shape = (28, 28, 1), num_classes: int = 10, **kwargs) -> Model:
    """``sequence_classifier`` with Elman's tanh RNN cell (registered as ``rnn``)."""
    return sequence_classifier(input_shape, num_classes, cell=kwargs.pop("cell", "rnn"), name="rnn", **kwargs)


def lstm_classifier(input_shape: Shape = (28, 28, 1), num_classes: int = 10, **kwargs) -> Model:
    """``sequence_classifier`` with the LSTM cell (registered as ``lstm``)."""
    return sequence_classifier(input_shape, num_classes, cell=kwargs.pop("cell", "lstm"), name="lstm", **kwargs)


def gru_classifier(input_shape: Shape = (28, 28, 1), num_classes: int = 10, **kwargs) -> Model:
    """``sequence_classifier`` with the GRU cell (registered as ``gru``)."""
    return sequence_classifier(input_shape, num_classes, cell=kwargs.pop("cell", "gru"), name="gru", **kwargs)


def next_token_objective(
    model: Model,
    params: PyTree,
    state: PyTree,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array | None = None,
    train: bool = False,
) -> tuple[dict[str, jax.Array], PyTree]:
    """Language-model metrics per sequence: mean next-token cross-entropy ``loss`` (nats), the same in bits
    (``bpc``, bits per character) and the fraction of tokens predicted exactly (``accuracy``). ``y`` holds the
    targets ``(batch, time)`` (the input shifted by one)."""
    logits, state = model.apply(params, state, x, key=key, train=train)
    if y.shape != logits.shape[:-1]:
        raise ValueError(
            f"{model.name} predicts the next token at every step and needs targets of shape (batch, time)"
            f" = {tuple(logits.shape[:-1])}, e.g. from --dataset text:FILE; got labels of shape {y.shape}"
        )
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32)).mean(axis=-1)
    correct = (jnp.argmax(logits, axis=-1) == y).astype(jnp.float32).mean(axis=-1)
    return {"loss": ce, "accuracy": correct, "bpc": ce / math.log(2.0)}, state


def char_lm(
    input_shape: Shape = (64,),
    num_classes: int = 96,
    cell: str = "lstm",
    embed: int = 64,
    hidden: int = 256,
    layers: int = 2,
    dropout: float = 0.0,
    name: str = "char_lstm",
) -> Model:
    """Character-level language model (Karpathy 2015, char-rnn): ``input_shape = (time,)`` token ids, outputs
    ``(batch, time, num_classes)`` logits for the next token at every step (``num_classes`` = vocabulary size).

    Params ``{'embed': {'table'}, 'rnn1': ..., 'rnnL': ..., 'out': {'w', 'b'}}``; ``dropout`` between layers
    (Zaremba et al. 2014). char-rnn fed one-hot vectors; an embedding is the same product without the one-hot.
    Generate text with ``jaxnets.sample.sample``.
    """
    if len(input_shape) != 1 or int(input_shape[0]) < 1:
        raise ValueError(f"{name} takes token sequences of shape (time,); got input_shape {tuple(input_shape)}")
    check_sizes(name, num_classes=num_classes, embed=embed, hidden=hidden, layers=layers)
    cell_fn = nn.get_cell(cell)
    stack = [nn.embedding(num_classes, embed, name="embed")]
    for i in range(1, layers + 1):
        stack.append(nn.recurrent(cell_fn, hidden, return_sequences=True, name=f"rnn{i}"))
        if dropout:
            stack.append(nn.dropout(dropout))
    stack.append(nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="out"))
    return Model(name, nn.serial(*stack), (int(input_shape[0]),), objective=next_token_objective)


def gradient_norms_over_time(model: Model, params: PyTree, state: PyTree, x: jax.Array, y: jax.Array) -> np.ndarray:
    """How strongly the loss depends on each time step of the input: for each step ``t``, the mean over the batch
    of ``|| d loss_i / d x_i[t] ||_2``, where ``loss_i`` is example i's loss from ``model.metrics`` (for a sequence
    classifier, the loss of the prediction made after the last step) and ``x_i[t]`` its input at step t.

    ``x`` is a float batch ``(batch, time, ...)`` (time on axis 1); returns a float64 array of shape ``(time,)``.
    The ratio of the first entry to the last shows how much gradient reaches early steps: it vanishes
    geometrically with the distance for a plain tanh RNN and much less for an LSTM.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or x.ndim < 2:
        raise ValueError(f"gradient_norms_over_time needs a float batch (batch, time, ...); got {x.dtype} {x.shape}")
    return np.asarray(_step_gradient_norms(model, params, state, x, jnp.asarray(y)), np.float64).mean(axis=0)


@functools.partial(jax.jit, static_argnums=0)
def _step_gradient_norms(model: Model, params: PyTree, state: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
    """``|| d loss_i / d x_i[t] ||`` for every example i and step t: ``(batch, time)``."""

    def total_loss(xx):
        metrics, _ = model.metrics(params, state, xx, y, train=False)
        return metrics["loss"].sum()  # examples are independent: the gradient's row i is d loss_i / d x_i

    g = jax.grad(total_loss)(x)
    return jnp.linalg.norm(g.reshape(g.shape[0], g.shape[1], -1), axis=-1)
