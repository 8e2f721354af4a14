"""Text from a character-level language model (``char_lstm``), in Python or from a training run's workdir
(``jaxnets-sample`` is the command).

The model reads windows of ``T = model.input_shape[0]`` characters, as in training (each window starts from a zero
state): while the text is shorter than ``T`` the next character comes from the logits at the last filled position of
a right-padded window (the model is causal, so the padding after it changes nothing), afterwards from the last
``T`` characters.

A model trained on jamo (``--tokens jamo``; its vocabulary holds jamo and no syllable) is sampled jamo by jamo, the
prompt decomposed and the text recomposed into syllables (``jaxnets.data.text.detokenize``). ``text_bits`` scores a
held-out text token by token, in the same windows.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import models
from jaxnets.data import hangul
from jaxnets.data.text import PREFIX, decode, detokenize, encode, read_text, tokenize, tokens_of, vocabulary
from jaxnets.nn import PyTree
from jaxnets.train._saved import load
from jaxnets.train.config import ParameterError


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
    """The text of ``length`` tokens (characters; jamo for a model trained on jamo) that continue ``prompt``, each
    drawn from softmax(logits / temperature) (the most likely one when ``temperature`` is 0). ``prompt`` must be
    non-empty and made of characters in ``vocab`` (or syllables of its jamo); ``temperature`` a finite number >= 0.

    Jamo: the prompt is taken as whole syllables, so after one without a final consonant (하) the first jamo drawn
    is not a final (which would make it 한): ``prompt + text`` is the recomposed whole."""
    if not prompt:
        raise ParameterError("prompt", "prompt must hold at least one character")
    if length < 0:
        raise ParameterError("length", f"length must be >= 0; got {length}")
    check_temperature(temperature)
    tokens = tokens_of(vocab)
    ids = encode(tokenize(prompt, tokens), vocab)
    start, end = len(ids), len(ids) + length
    size = -(-max(end, int(model.input_shape[0])) // 256) * 256  # few distinct sizes: few compilations
    buf = np.zeros(size, np.int32)
    buf[:start] = ids
    ends_open = tokens == "jamo" and vocab[ids[-1]] in hangul.MEDIAL_JAMO
    banned = np.array([ends_open and c in hangul.FINAL_JAMO for c in vocab])
    out = _generate(model, params, state, jnp.asarray(buf), start, end, key, jnp.float32(temperature), banned)
    return detokenize(decode(np.asarray(out)[start:end], vocab), vocab)


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
    banned: jax.Array,
) -> jax.Array:
    """Fill ``buf[start:end]`` one token at a time from the model's logits at the last filled position; the tokens
    ``banned`` (a mask over the vocabulary) are not drawn first."""
    window = int(model.input_shape[0])

    def body(n, buf):
        ctx = jax.lax.dynamic_slice(buf, (jnp.maximum(n - window, 0),), (window,))
        logits, _ = model.apply(params, state, ctx[None])
        logits = jnp.where(banned & (n == start), -jnp.inf, logits[0, jnp.minimum(n, window) - 1])
        drawn = jax.random.categorical(jax.random.fold_in(key, n), logits / jnp.maximum(temperature, 1e-6))
        token = jnp.where(temperature > 0, drawn, jnp.argmax(logits))
        return buf.at[n].set(token.astype(jnp.int32))

    return jax.lax.fori_loop(start, end, body, buf)


def text_bits(model: models.Model, params: PyTree, state: PyTree, ids, batch_size: int = 64) -> np.ndarray:
    """The bits (-log2 p) the model gives each token of ``ids[1:]`` after the ones before it, read as in training:
    windows of ``T = model.input_shape[0]`` targets, each from a zero state (the last window padded). Summed over
    the tokens of a held-out text and divided by its characters: bits per character, whatever the tokens."""
    ids = np.asarray(ids, np.int32).reshape(-1)
    if len(ids) < 2:
        raise ParameterError("ids", f"ids must hold at least two tokens (one to read, one to score); got {len(ids)}")
    window, n = int(model.input_shape[0]), len(ids) - 1
    rows = -(-n // window)
    rows_padded = -(-rows // batch_size) * batch_size  # whole batches: one compilation
    padded = np.zeros(rows_padded * window + 1, np.int32)
    padded[: len(ids)] = ids
    x, y = padded[:-1].reshape(-1, window), padded[1:].reshape(-1, window)
    bits = [
        np.asarray(_bits(model, params, state, jnp.asarray(x[i : i + batch_size]), jnp.asarray(y[i : i + batch_size])))
        for i in range(0, rows_padded, batch_size)
    ]
    return np.concatenate(bits).reshape(-1)[:n].astype(np.float64)


@functools.partial(jax.jit, static_argnums=0)
def _bits(model: models.Model, params: PyTree, state: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
    """-log2 softmax(logits)[target] at every step of a batch of windows."""
    logits, _ = model.apply(params, state, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y) / math.log(2.0)


def load_text_run(workdir: str | Path) -> tuple[models.Model, PyTree, PyTree, str]:
    """The model (with the run's model options), trained parameters, model state and vocabulary of a training run
    on a ``text:`` dataset (``jaxnets.train.run``, ``jaxnets-train``), read by ``jaxnets.load`` (whatever the run's
    optimiser, clipping or compute dtype)."""
    trained = load(workdir)
    vocab = trained.record.get("vocab")
    if vocab is None:  # a run saved without its vocabulary: rebuild it from the text file
        dataset = trained.record.get("dataset", "")
        if not dataset.startswith(PREFIX):
            raise ValueError(f"{workdir} holds a run on {dataset!r}, not on a text: dataset")
        vocab = vocabulary(read_text(dataset.removeprefix(PREFIX)))
    return trained.model, trained.params, trained.state, vocab
