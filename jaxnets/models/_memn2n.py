"""End-to-end memory networks (Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory Networks") for
bAbI-style question answering (``data.babi_dataset``).

The inputs are ``{"story": (memory_size, sentence_len), "question": (sentence_len,)}`` word ids (0 = padding; row 0
of the story the latest sentence, empty rows zero). Each sentence x_i becomes an input memory m_i = sum_j l_j * A x_ij
+ T_A(i) and an output memory c_i = sum_j l_j * C x_ij + T_C(i); the question u_1 = sum_j l_j * B q_j. Each of the
``hops`` layers k attends p = softmax(u_k^T m_i) over the non-empty memories (``nn.masked_softmax``), reads
o_k = sum_i p_i c_i and updates u_{k+1} = u_k + o_k; the answer is softmax(W u_{K+1}) over the vocabulary (so
``num_classes`` is the vocabulary size).

- ``encoding``: "position" (PE) weighs word j of a sentence of J words by l_kj = (1 - j/J) - (k/d)(1 - 2j/J), its
  own J (padding gets 0); "bow" sums the word embeddings (l = 1).
- ``temporal``: T_A, T_C, one vector per memory slot, i.e. per age of the sentence (row i = i sentences back).
- ``tying``: "adjacent" shares A_{k+1} = C_k (and T_A, T_C likewise), B = A_1, W^T = C_K: K + 1 tables
  ``embed0`` .. ``embedK``; "layerwise" shares A and C (and T_A, T_C) over the hops, with its own B and W and
  u_{k+1} = H u_k + o_k.
- ``linear_start_steps`` (LS): the attention softmax is left out (p = u^T m_i on the non-empty memories) for the
  first training steps; the count is ``state["step"]``, advanced by every ``train=True`` call (checkpointed, so a
  resumed run goes on where it was).
- ``random_noise`` (RN): at training time empty memories are inserted among the sentences, each slot getting
  one before it with this probability (the paper: 10%): with empty memories masked out, what changes is the ages
  that T_A and T_C see; sentences pushed past the last slot are dropped.

Every table is initialised N(0, 0.1) as in the paper. ``memory_attention`` gives the attention of every hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.models._base import Model, check_inputs, check_sizes
from jaxnets.nn import PyTree, Shape

Array = jax.Array
ENCODINGS = ("position", "bow")
TYING = ("adjacent", "layerwise")
INPUTS = ("question", "story")
INIT_STD = 0.1


def position_encoding(lengths: Array, sentence_len: int, features: int) -> Array:
    """Weights (..., sentence_len, features) of the words of sentences of ``lengths`` words (...,):
    l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J and feature k = 1..d, J each sentence's length; 0 past it."""
    length = jnp.asarray(lengths)[..., None, None]
    j = jnp.arange(1, sentence_len + 1, dtype=jnp.float32)[:, None]
    k = jnp.arange(1, features + 1, dtype=jnp.float32)[None, :]
    big_j = jnp.maximum(length, 1).astype(jnp.float32)
    weights = (1 - j / big_j) - (k / features) * (1 - 2 * j / big_j)
    return jnp.where(j <= length, weights, 0.0)


def _encode(table: Array, ids: Array, encoding: str) -> Array:
    """Sentences of word ids (..., J) -> (..., d): the sum of their words' rows of ``table``, weighed by the
    position encoding or (bag of words) by 1; padding (id 0) counts for nothing."""
    words = ids != 0
    emb = jnp.take(table, ids.astype(jnp.int32), axis=0, mode="clip")
    if encoding == "position":
        weights = position_encoding(jnp.sum(words, axis=-1), ids.shape[-1], table.shape[-1])
    else:
        weights = words[..., None].astype(emb.dtype)
    return jnp.sum(emb * weights, axis=-2)


def _table_names(hops: int, tying: str) -> dict[str, list[str]]:
    """The parameter names of B, W (one each) and of A_k, C_k, T_A(k), T_C(k) for each hop k, as ``tying``
    shares them."""
    if tying == "adjacent":
        embed, times = [f"embed{k}" for k in range(hops + 1)], [f"temporal{k}" for k in range(hops + 1)]
        return {"B": embed[:1], "W": embed[-1:], "A": embed[:-1], "C": embed[1:], "T_A": times[:-1], "T_C": times[1:]}
    return {
        "B": ["B"],
        "W": ["W"],
        "A": ["A"] * hops,
        "C": ["C"] * hops,
        "T_A": ["temporal_A"] * hops,
        "T_C": ["temporal_C"] * hops,
    }


def memn2n(
    input_shape: Mapping[str, Shape] | None = None,
    num_classes: int = 2,
    *,
    embed: int = 20,
    hops: int = 3,
    encoding: str = "position",
    temporal: bool = True,
    tying: str = "adjacent",
    linear_start_steps: int = 0,
    random_noise: float = 0.0,
    vocab_size: int | None = None,
    name: str = "memn2n",
) -> Model:
    """End-to-end memory network (see the module docstring) on inputs ``{"story": (memory_size, sentence_len),
    "question": (question_len,)}``, answering one of ``num_classes`` words; ``vocab_size`` (default
    ``num_classes``) is the number of input word ids, ``embed`` the dimension d."""
    input_shape = input_shape or {"story": (50, 7), "question": (7,)}
    if not isinstance(input_shape, Mapping) or sorted(input_shape) != list(INPUTS):
        raise ValueError(
            f"{name}: input_shape must be a dict of shapes {{'story': (M, J), 'question': (J,)}}; got {input_shape!r}"
        )
    vocab_size = num_classes if vocab_size is None else vocab_size
    check_sizes(name, num_classes=num_classes, embed=embed, hops=hops, vocab_size=vocab_size)
    if encoding not in ENCODINGS:
        raise ValueError(f"{name}: encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
    if tying not in TYING:
        raise ValueError(f"{name}: tying must be one of {', '.join(TYING)}; got {tying!r}")
    if linear_start_steps < 0:
        raise ValueError(f"{name}: linear_start_steps must be >= 0; got {linear_start_steps}")
    if not 0 <= random_noise < 1:
        raise ValueError(
            f"{name}: random_noise (chance of an empty memory before a slot) must be in [0, 1); got {random_noise}"
        )
    if len(input_shape["story"]) != 2 or len(input_shape["question"]) != 1:
        raise ValueError(
            f"{name}: input_shape needs story (memory_size, sentence_len), question (length,); got {dict(input_shape)}"
        )
    memory_size = input_shape["story"][0]
    normal = nn.initializers.normal(INIT_STD)
    names = _table_names(hops, tying)

    def init(key: Array, in_shape: Mapping[str, Shape]):
        del in_shape  # the model's own input_shape, checked above
        words = list(dict.fromkeys(names["B"] + names["A"] + names["C"] + (names["W"] if tying == "adjacent" else [])))
        times = list(dict.fromkeys(names["T_A"] + names["T_C"]))
        extra = {} if tying == "adjacent" else {"H": (embed, embed), "W": (embed, num_classes)}
        keys = iter(jax.random.split(key, len(words) + len(times) + len(extra)))
        params: dict[str, Any] = {n: {"table": normal(next(keys), (vocab_size, embed))} for n in words}
        if temporal:
            params |= {n: {"table": normal(next(keys), (memory_size, embed))} for n in times}
        params |= {n: normal(next(keys), shape) for n, shape in extra.items()}
        return params, {"step": jnp.zeros((), jnp.int32)}, (num_classes,)

    def run(params, state, x, *, key, train):
        """(logits (batch, classes), attention (batch, hops, memory_size), new state)."""
        story, question = jnp.asarray(x["story"]), jnp.asarray(x["question"])
        batch = story.shape[0]
        mask = jnp.any(story != 0, axis=-1)
        ages = jnp.broadcast_to(jnp.arange(memory_size), (batch, memory_size))
        if train and random_noise > 0:
            if key is None:
                raise ValueError(f"{name}: random_noise needs a key when train=True")
            blanks = jax.random.bernoulli(key, random_noise, (batch, memory_size))
            ages = ages + jnp.cumsum(blanks, axis=1)
            mask = mask & (ages < memory_size)
            ages = jnp.minimum(ages, memory_size - 1)
        linear = state["step"] < linear_start_steps
        u = _encode(params[names["B"][0]]["table"], question, encoding)
        attention = []
        for hop in range(hops):
            m = _encode(params[names["A"][hop]]["table"], story, encoding)
            out = _encode(params[names["C"][hop]]["table"], story, encoding)
            if temporal:
                m = m + jnp.take(params[names["T_A"][hop]]["table"], ages, axis=0)
                out = out + jnp.take(params[names["T_C"][hop]]["table"], ages, axis=0)
            logits = jnp.einsum("bmd,bd->bm", m, u)
            p = jnp.where(linear, jnp.where(mask, logits, 0.0), nn.masked_softmax(logits, mask))
            o = jnp.einsum("bm,bmd->bd", p, out)
            u = u + o if tying == "adjacent" else u @ params["H"] + o
            attention.append(p)
        w = params[names["W"][0]]["table"].T if tying == "adjacent" else params["W"]
        new_state = {"step": state["step"] + 1} if train else state
        return u @ w, jnp.stack(attention, axis=1), new_state

    def apply(params, state, x, *, key=None, train=False, attention=False):
        logits, weights, state = run(params, state, x, key=key, train=train)
        return (weights if attention else logits), state

    return Model(name, nn.Layer(init, apply, name), dict(input_shape))


def memory_attention(model: Model, params: PyTree, state: PyTree, x: Mapping[str, Array]) -> Array:
    """The attention weights (batch, hops, memory_size) of a ``memn2n`` over the memories of ``x``, in evaluation
    mode (softmax, or during linear start the unnormalised scores the model is using)."""
    if not isinstance(model.input_shape, Mapping) or sorted(model.input_shape) != list(INPUTS):
        raise ValueError(f"memory_attention needs a memn2n model; got {model.name}")
    check_inputs(model, x)
    return model.layer.apply(params, state, x, attention=True)[0]
