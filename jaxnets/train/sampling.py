"""Text from a character-level language model (``char_lstm``), in Python or from a training run's workdir
(``jaxnets-sample`` is the command).

The model reads windows of ``T = model.input_shape[0]`` characters, as in training (each window starts from a zero
state): while the text is shorter than ``T`` the next character comes from the logits at the last filled position of
a right-padded window (the model is causal, so the padding after it changes nothing), afterwards from the last
``T`` characters.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import models
from jaxnets.data.text import PREFIX, decode, encode, read_text, vocabulary
from jaxnets.nn import PyTree
from jaxnets.train.checkpoint import CHECKPOINT, load_checkpoint, read_config
from jaxnets.train.config import ParameterError, build_model
from jaxnets.train.optim import make_optimizer
from jaxnets.train.state import create_train_state


def sample_text(
    model: models.Model,
    params: PyTree,
    state: PyTree,
    vocab: str,
    prompt: str,
    length: int,
    key: jax.Array,
    temperature: float = 1.0,
) -> str:
    """``length`` characters that continue ``prompt``, each drawn from softmax(logits / temperature) (the most
    likely one when ``temperature`` is 0). ``prompt`` must be non-empty and made of characters in ``vocab``;
    ``temperature`` a finite number >= 0."""
    if not prompt:
        raise ParameterError("prompt", "prompt must hold at least one character")
    if length < 0:
        raise ParameterError("length", f"length must be >= 0; got {length}")
    check_temperature(temperature)
    ids = encode(prompt, vocab)
    start, end = len(ids), len(ids) + length
    size = -(-max(end, int(model.input_shape[0])) // 256) * 256  # few distinct sizes: few compilations
    buf = np.zeros(size, np.int32)
    buf[:start] = ids
    out = _generate(model, params, state, jnp.asarray(buf), start, end, key, jnp.float32(temperature))
    return decode(np.asarray(out)[start:end], vocab)


def check_temperature(temperature: float) -> None:
    """``ParameterError`` unless ``temperature`` is a finite number >= 0."""
    if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature >= 0):
        raise ParameterError(
            "temperature",
            f"temperature must be a finite number >= 0 (0: the most likely character each time); got {temperature}",
        )


@functools.partial(jax.jit, static_argnums=0)
def _generate(
    model: models.Model,
    params: PyTree,
    state: PyTree,
    buf: jax.Array,
    start: jax.Array,
    end: jax.Array,
    key: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Fill ``buf[start:end]`` one token at a time from the model's logits at the last filled position."""
    window = int(model.input_shape[0])

    def body(n, buf):
        ctx = jax.lax.dynamic_slice(buf, (jnp.maximum(n - window, 0),), (window,))
        logits, _ = model.apply(params, state, ctx[None])
        logits = logits[0, jnp.minimum(n, window) - 1]
        drawn = jax.random.categorical(jax.random.fold_in(key, n), logits / jnp.maximum(temperature, 1e-6))
        token = jnp.where(temperature > 0, drawn, jnp.argmax(logits))
        return buf.at[n].set(token.astype(jnp.int32))

    return jax.lax.fori_loop(start, end, body, buf)


def load_text_run(workdir: str | Path) -> tuple[models.Model, PyTree, PyTree, str]:
    """The model (with the run's model options), trained parameters, model state and vocabulary of a training run
    on a ``text:`` dataset (``jaxnets.train.run``, ``jaxnets-train``)."""
    path = Path(workdir) / CHECKPOINT
    config = read_config(path)
    vocab = config.get("vocab")
    if vocab is None:  # a run saved without its vocabulary: rebuild it from the text file
        dataset = config.get("dataset", "")
        if not dataset.startswith(PREFIX):
            raise ValueError(f"{workdir} holds a run on {dataset!r}, not on a text: dataset")
        vocab = vocabulary(read_text(dataset.removeprefix(PREFIX)))
    model = build_model(config["model"], tuple(config["input_shape"]), len(vocab), config.get("model_args"))
    optimizer = make_optimizer(
        config["optimizer"], config["lr"], config["momentum"], config["weight_decay"], config["schedule"], total_steps=1
    )  # the optimiser state's structure, to restore into
    state, _ = load_checkpoint(path, create_train_state(model, optimizer, jax.random.PRNGKey(0)))
    return model, state.params, state.model_state, vocab
