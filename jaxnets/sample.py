"""Sample text from a character-level language model (``char_lstm``), in Python or from a training run's workdir.

    python -m jaxnets.sample --workdir runs/char_lstm-text-README.md --prompt "The " --length 300 --temperature 0.8

The model reads windows of ``T = model.input_shape[0]`` characters, as in training (each window starts from a zero
state): while the text is shorter than ``T`` the next character comes from the logits at the last filled position of
a right-padded window (the model is causal, so the padding after it changes nothing), afterwards from the last
``T`` characters.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.data.text import PREFIX, decode, encode, read_text, vocabulary
from jaxnets.models.base import Model
from jaxnets.nn.core import PyTree


def sample(model: Model, params: PyTree, state: PyTree, vocab: str, prompt: str, length: int, key: jax.Array,
           temperature: float = 1.0) -> str:
    """``length`` characters that continue ``prompt``, each drawn from softmax(logits / temperature) (the most
    likely one when ``temperature <= 0``). ``prompt`` must be non-empty and made of characters in ``vocab``."""
    if not prompt:
        raise ValueError("the prompt must hold at least one character")
    if length < 0:
        raise ValueError(f"length must be >= 0; got {length}")
    ids = encode(prompt, vocab)
    start, end = len(ids), len(ids) + length
    size = -(-max(end, int(model.input_shape[0])) // 256) * 256  # few distinct sizes: few compilations
    buf = np.zeros(size, np.int32)
    buf[:start] = ids
    out = _generate(model, params, state, jnp.asarray(buf), start, end, key, jnp.float32(temperature))
    return decode(np.asarray(out)[start:end], vocab)


@functools.partial(jax.jit, static_argnums=0)
def _generate(model: Model, params: PyTree, state: PyTree, buf: jax.Array, start: jax.Array, end: jax.Array,
              key: jax.Array, temperature: jax.Array) -> jax.Array:
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


def load_run(workdir: str | Path) -> tuple[Model, PyTree, PyTree, str]:
    """The model, trained parameters, model state and vocabulary of a ``train.py`` run on a ``text:`` dataset."""
    from jaxnets import models
    from jaxnets.train import CHECKPOINT, create_train_state, load_checkpoint, make_optimizer, read_config

    path = Path(workdir) / CHECKPOINT
    config = read_config(path)
    vocab = config.get("vocab")
    if vocab is None:  # a run saved without its vocabulary: rebuild it from the text file
        dataset = config.get("dataset", "")
        if not dataset.startswith(PREFIX):
            raise ValueError(f"{workdir} holds a run on {dataset!r}, not on a text: dataset")
        vocab = vocabulary(read_text(dataset.removeprefix(PREFIX)))
    model = models.build(config["model"], input_shape=tuple(config["input_shape"]), num_classes=len(vocab))
    optimizer = make_optimizer(config["optimizer"], config["lr"], config["momentum"], config["weight_decay"],
                               config["schedule"], total_steps=1)  # the optimiser state's structure, to restore into
    state, _ = load_checkpoint(path, create_train_state(model, optimizer, jax.random.PRNGKey(0)))
    return model, state.params, state.model_state, vocab


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Sample text from a char_lstm trained by train.py on --dataset text:FILE.")
    p.add_argument("--workdir", required=True, help="the run's folder (holding checkpoint.msgpack)")
    p.add_argument("--prompt", help="text to continue (default: a newline, or the vocabulary's first character)")
    p.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = p.parse_args(argv)
    from jaxnets.train.checkpoint import CheckpointError

    try:
        model, params, state, vocab = load_run(args.workdir)
        prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in vocab else vocab[0])
        text = sample(model, params, state, vocab, prompt, args.length, jax.random.PRNGKey(args.seed),
                      args.temperature)
    except (ValueError, CheckpointError) as e:
        print(f"jaxnets.sample: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(prompt + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
