"""Image captioning: Show and Tell (Vinyals et al. 2015), Show, Attend and Tell with soft attention (Xu et al. 2015),
greedy and beam-search decoding, and corpus BLEU (Papineni et al. 2002).

Both models read an image with a small CNN (per entry of ``features`` a 3x3 convolution, ReLU and 2x2 max-pooling)
and write its caption with an LSTM, one word per step; ``y`` is the caption as token ids ``<start> words <end>``
padded with 0 (the layout of ``data.shapes_captions``: ``<pad>`` = 0, ``<start>`` = 1, ``<end>`` = 2, then the
words; ``num_classes`` is the vocabulary's size).

- ``show_tell``: the CNN's flattened feature maps, mapped linearly to the word-embedding size, are the LSTM's input
  before the first word (x_{-1} = W_I CNN(I)); then word embeddings x_t = W_e S_t, and p_{t+1} = softmax(W_o h_t).
- ``show_attend_tell``: the last feature map is L = rows x cols annotation vectors a_i (D = its channels).
  h_0 = tanh(f_init_h(mean_i a_i)), c_0 likewise; each step scores every region with the MLP
  e_ti = v^T tanh(W_a a_i + W_h h_{t-1} + b), alpha_t = softmax(e_t) (``nn.masked_softmax``), takes the context
  z_t = beta_t sum_i alpha_ti a_i with the gate beta_t = sigmoid(f_beta(h_{t-1})) (``gate=False``: beta = 1), feeds
  [E y_{t-1}, z_t] to the LSTM and predicts with the deep output p(y_t) = softmax(L_o tanh(E y_{t-1} + L_h h_t +
  L_z z_t)) (eq. 7, with the tanh of the authors' code).

Training is teacher forcing: the LSTM reads the true caption's tokens ``y[:, :-1]`` and predicts ``y[:, 1:]``; the
padding after ``<end>`` is masked out. Per example the ``CaptionLoss`` objective reports ``nll``, the mean token
cross-entropy over the caption's tokens (``<end>`` included), ``accuracy``, the fraction of them predicted right
(argmax), and ``loss``, the paper's per-caption objective divided by the number of tokens: for ``show_tell`` that is
``nll``, for ``show_attend_tell`` (sum_t -log p(y_t) + lambda sum_i (1 - sum_t alpha_ti)^2) / tokens, the doubly
stochastic regulariser over the caption's steps (also reported alone as ``attention_penalty``).

``greedy_decode`` and ``beam_search`` write captions (fixed shapes, ``lax.scan``); ``caption_attention`` gives the
attention maps of a greedy caption, one per word; ``bleu`` scores captions against references. ``model.apply``
returns the logits of the greedy caption's steps (batch, max_len - 1, vocab).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import PyTree, Shape

Array = jax.Array
PAD, START, END = 0, 1, 2  # token ids every caption vocabulary starts with
_CELL = nn.lstm_cell()


class Decoder(NamedTuple):
    """A captioning network as three pure functions over its (LSTM-fused, see ``_fused``) weights: ``encode(w,
    images) -> context`` (a pytree, batch first), ``start(w, context) -> carry`` (the LSTM state before the first
    word) and ``step(w, context, carry, tokens) -> (carry, logits, alpha)``: one word (batch,) in, the next word's
    logits (batch, vocab) and the attention weights (batch, rows * cols) out (0 regions without attention).
    ``grid``: the attention grid (rows, cols), (0, 0) without attention."""

    encode: Callable[[PyTree, Array], PyTree]
    start: Callable[[PyTree, PyTree], PyTree]
    step: Callable[[PyTree, PyTree, PyTree, Array], tuple[PyTree, Array, Array]]
    grid: tuple[int, int]


def _dense(p: PyTree, x: Array) -> Array:
    return x @ p["w"] + p["b"]


def _fused(params: PyTree) -> PyTree:
    """The weights the decoder steps use: the LSTM's gate matrices stacked once (outside the loops)."""
    return {**params, "lstm": _CELL.fuse(params["lstm"])}


def _lstm(fused: PyTree, carry: PyTree, x: Array) -> tuple[PyTree, Array]:
    return _CELL.step(fused, carry, _CELL.project(fused, x))


def _embed(w: PyTree, tokens: Array) -> Array:
    return jnp.take(w["embed"]["table"], tokens, axis=0, mode="clip")


def _encoder(features: Sequence[int]) -> nn.Layer:
    """Per entry of ``features`` a 3x3 convolution (He-initialised), ReLU and 2x2 max-pooling."""
    layers: list[nn.Layer] = []
    for i, width in enumerate(features):
        conv = nn.conv2d(width, 3, padding="SAME", w_init=nn.initializers.he_normal(), name=f"conv{i}")
        layers += [conv, nn.activation("relu"), nn.max_pool(2, padding="SAME", name=f"pool{i}")]
    return nn.serial(*layers, name="cnn")


@dataclass(frozen=True)
class CaptionLoss:
    """The captioning objective (see the module docstring): per example ``loss``, ``nll``, ``accuracy`` and, with
    attention, ``attention_penalty``; ``attention_reg`` is the regulariser's lambda."""

    decoder: Decoder
    max_len: int
    attention_reg: float = 0.0

    def __call__(
        self, model: Model, params: PyTree, state: PyTree, x: Array, y: Array, *, key=None, train: bool = False
    ) -> tuple[dict[str, Array], PyTree]:
        del key, train
        if y.ndim != 2 or y.shape[0] != x.shape[0] or y.shape[1] < 2 or not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(
                f"{model.name}: targets must be integer captions (batch, length >= 2) = <start> words <end> padded "
                f"with 0; got {y.dtype} of shape {tuple(y.shape)}"
            )
        logits, alphas = teacher_forced(self.decoder, params, x, y)
        targets = y[:, 1:]
        mask = (targets != PAD).astype(logits.dtype)
        tokens = jnp.maximum(jnp.sum(mask, axis=1), 1.0)
        nll = jnp.sum(mask * optax.softmax_cross_entropy_with_integer_labels(logits, targets), axis=1)
        correct = jnp.sum(mask * (jnp.argmax(logits, axis=-1) == targets), axis=1)
        metrics = {"loss": nll / tokens, "nll": nll / tokens, "accuracy": correct / tokens}
        if self.decoder.grid != (0, 0):
            penalty = jnp.sum((1.0 - jnp.sum(mask[..., None] * alphas, axis=1)) ** 2, axis=1)
            metrics["loss"] = (nll + self.attention_reg * penalty) / tokens
            metrics["attention_penalty"] = penalty
        return metrics, state


def teacher_forced(decoder: Decoder, params: PyTree, images: Array, captions: Array) -> tuple[Array, Array]:
    """The network reading the true ``captions`` (batch, T): the logits (batch, T - 1, vocab) of every next token
    and the attention weights (batch, T - 1, regions) of every step."""
    w = _fused(params)
    context = decoder.encode(w, images)

    def body(carry, tokens):
        carry, logits, alpha = decoder.step(w, context, carry, tokens)
        return carry, (logits, alpha)

    _, (logits, alphas) = jax.lax.scan(body, decoder.start(w, context), jnp.swapaxes(captions[:, :-1], 0, 1))
    return jnp.swapaxes(logits, 0, 1), jnp.swapaxes(alphas, 0, 1)


def _word_log_probs(logits: Array) -> Array:
    """Log-probabilities of the next token (softmax over the whole vocabulary), -inf for <pad> and <start>, which
    are never generated."""
    return jax.nn.log_softmax(logits, axis=-1).at[..., PAD].set(-jnp.inf).at[..., START].set(-jnp.inf)


def _greedy(decoder: Decoder, params: PyTree, images: Array, max_len: int) -> tuple[Array, Array, Array]:
    """Greedy captions (batch, max_len) from <start> (padding after <end>), the logits of every step and the
    attention weights (batch, max_len - 1, regions)."""
    w = _fused(params)
    context = decoder.encode(w, images)
    n = images.shape[0]

    def body(carry, _):
        lstm, tokens, done = carry
        lstm, logits, alpha = decoder.step(w, context, lstm, tokens)
        chosen = jnp.where(done, PAD, jnp.argmax(_word_log_probs(logits), axis=-1))
        return (lstm, chosen, done | (chosen == END)), (chosen, logits, alpha)

    first = (decoder.start(w, context), jnp.full((n,), START), jnp.zeros((n,), bool))
    _, (words, logits, alphas) = jax.lax.scan(body, first, length=max_len - 1)
    captions = jnp.concatenate([jnp.full((n, 1), START), jnp.swapaxes(words, 0, 1)], axis=1)
    return captions, jnp.swapaxes(logits, 0, 1), jnp.swapaxes(alphas, 0, 1)


def _beam(decoder: Decoder, params: PyTree, images: Array, beam: int, max_len: int) -> tuple[Array, Array]:
    """Beam search (see ``beam_search``): the best caption (batch, max_len) per image and its log-probability."""
    w = _fused(params)
    n = images.shape[0]
    context = jax.tree.map(lambda a: jnp.repeat(a, beam, axis=0), decoder.encode(w, images))  # (n * beam, ...)
    lstm = decoder.start(w, context)
    scores = jnp.tile(jnp.where(jnp.arange(beam) == 0, 0.0, -jnp.inf), (n, 1))  # one live beam at first
    captions = jnp.zeros((n, beam, max_len), jnp.int32).at[:, :, 0].set(START)
    rows = jnp.arange(n)[:, None]

    def body(carry, t):
        lstm, scores, captions, done = carry
        lstm, logits, _ = decoder.step(w, context, lstm, captions[:, :, t].reshape(-1))
        logp = _word_log_probs(logits).reshape(n, beam, -1)
        vocab = logp.shape[-1]
        padding = jnp.where(jnp.arange(vocab) == PAD, 0.0, -jnp.inf)  # a finished beam only pads, at no cost
        logp = jnp.where(done[..., None], padding, logp)
        scores, index = jax.lax.top_k((scores[..., None] + logp).reshape(n, beam * vocab), beam)
        source, token = index // vocab, (index % vocab).astype(jnp.int32)
        captions = captions[rows, source].at[:, :, t + 1].set(token)
        done = done[rows, source] | (token == END)
        lstm = jax.tree.map(lambda a: a.reshape(n, beam, *a.shape[1:])[rows, source].reshape(a.shape), lstm)
        return (lstm, scores, captions, done), None

    first = (lstm, scores, captions, jnp.zeros((n, beam), bool))
    (_, scores, captions, _), _ = jax.lax.scan(body, first, jnp.arange(max_len - 1))
    best = jnp.argmax(scores, axis=1)
    return captions[jnp.arange(n), best], scores[jnp.arange(n), best]


def _check_captioner(model: Model) -> CaptionLoss:
    if not isinstance(model.objective, CaptionLoss):
        raise ValueError(f"{model.name} is not a captioning model: build it with models.show_tell or show_attend_tell")
    return model.objective


@functools.lru_cache(maxsize=16)
def _decode_fn(decoder: Decoder, kind: str, max_len: int, beam: int = 1):
    if kind == "beam":
        return jax.jit(lambda params, images: _beam(decoder, params, images, beam, max_len))
    return jax.jit(lambda params, images: _greedy(decoder, params, images, max_len))


def _images(model: Model, images: jax.typing.ArrayLike) -> Array:
    x = jnp.asarray(images, jnp.float32)
    if x.shape[1:] != tuple(model.input_shape) or x.ndim != 4:
        raise ValueError(
            f"{model.name} captions images of shape (batch, {', '.join(map(str, model.input_shape))}); got {x.shape}"
        )
    return x


def _checked_len(objective: CaptionLoss, max_len: int | None) -> int:
    max_len = objective.max_len if max_len is None else int(max_len)
    if max_len < 2:
        raise ValueError(f"max_len (tokens per caption, <start> included) must be >= 2; got {max_len}")
    return max_len


def greedy_decode(
    model: Model, params: PyTree, state: PyTree, images: jax.typing.ArrayLike, max_len: int | None = None
) -> Array:
    """Captions (batch, max_len) of ``images`` written word by word, each the most probable next word (never
    <pad> or <start>): <start> words <end>, then 0; one that has no <end> by ``max_len`` tokens is cut there.
    ``max_len`` defaults to the model's. Jit-compiled once per model and length."""
    del state  # the captioners keep no state
    objective = _check_captioner(model)
    fn = _decode_fn(objective.decoder, "greedy", _checked_len(objective, max_len))
    return fn(params, _images(model, images))[0]


def beam_search(
    model: Model,
    params: PyTree,
    state: PyTree,
    images: jax.typing.ArrayLike,
    beam: int = 3,
    max_len: int | None = None,
) -> tuple[Array, Array]:
    """The most probable caption of each image found by beam search with ``beam`` hypotheses, and its
    log-probability: (batch, max_len) token ids as ``greedy_decode``'s, (batch,) scores.

    Fixed shapes: every step expands each of the ``beam`` hypotheses by every word (and <end>), and keeps the
    ``beam`` best of them by their summed log-probability (no length normalisation, as in Vinyals et al.). A
    finished hypothesis (one that wrote <end>) stays a candidate with its score, extended by padding at no cost, so
    it competes with the live ones to the end; one still without <end> at ``max_len`` tokens is kept as it is (cut).
    The answer is the best of the final ``beam``. ``beam=1`` is greedy decoding; a beam as large as the number of
    possible captions is exhaustive search."""
    del state
    objective = _check_captioner(model)
    check_sizes(model.name, beam=beam)
    fn = _decode_fn(objective.decoder, "beam", _checked_len(objective, max_len), int(beam))
    return fn(params, _images(model, images))


def caption_attention(
    model: Model, params: PyTree, state: PyTree, images: jax.typing.ArrayLike, max_len: int | None = None
) -> tuple[Array, Array]:
    """Greedy captions (batch, max_len) of a ``show_attend_tell`` model and the attention map behind every word:
    ``alphas`` (batch, max_len - 1, rows, cols), ``alphas[:, t]`` the weights over the image's regions when writing
    token ``t + 1`` (each map sums to one)."""
    del state
    objective = _check_captioner(model)
    rows, cols = objective.decoder.grid
    if rows == 0:
        raise ValueError(f"{model.name} has no attention: caption_attention needs a show_attend_tell model")
    fn = _decode_fn(objective.decoder, "greedy", _checked_len(objective, max_len))
    captions, _, alphas = fn(params, _images(model, images))
    return captions, alphas.reshape(*alphas.shape[:2], rows, cols)


def soft_attention(
    params: PyTree, annotations: Array, h: Array, mask: Array | None = None, keys: Array | None = None
) -> tuple[Array, Array]:
    """Xu et al.'s soft attention: ``annotations`` (batch, L, D) scored against the previous hidden state ``h``
    (batch, H) by the MLP e_i = v^T tanh(W_a a_i + W_h h + b), weights alpha = softmax(e) over the valid regions
    (``mask`` (batch, L), all by default; masked regions get 0). Returns the context z = sum_i alpha_i a_i (batch, D)
    and alpha (batch, L). Params ``{'wa': (D, A), 'wh': (H, A), 'b': (A,), 'v': (A,)}``; ``keys``: W_a a + b if
    already computed (once per image, outside the decoding loop)."""
    keys = annotations @ params["wa"] + params["b"] if keys is None else keys
    scores = jnp.tanh(keys + (h @ params["wh"])[:, None, :]) @ params["v"]
    alpha = nn.masked_softmax(scores, mask, axis=-1)
    return jnp.einsum("bl,bld->bd", alpha, annotations), alpha


def _model(
    name: str, input_shape: Shape, num_classes: int, init, decoder: Decoder, max_len: int, attention_reg: float = 0.0
) -> Model:
    """A captioner as a ``Model``: ``apply`` gives the greedy caption's step logits (batch, max_len - 1, vocab)."""

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return _greedy(decoder, params, x, max_len)[1], state

    def init_fn(key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        return init(key, in_shape), {}, (max_len - 1, num_classes)

    return Model(
        name,
        nn.Layer(init_fn, apply, name),
        tuple(int(d) for d in input_shape),
        objective=CaptionLoss(decoder, max_len, attention_reg),
    )


def _check(name: str, input_shape: Shape, num_classes: int, max_len: int, **sizes: int | Sequence[int]) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"{name} takes images of shape (height, width, channels); got input_shape {input_shape}")
    check_sizes(name, input_shape=input_shape, **sizes)
    if num_classes < 4:
        raise ValueError(
            f"{name}: num_classes (the vocabulary: <pad>, <start>, <end>, words) must be >= 4; got {num_classes}"
        )
    if max_len < 2:
        raise ValueError(f"{name}: max_len (tokens per caption, <start> included) must be >= 2; got {max_len}")


def show_tell(
    input_shape: Shape = (64, 64, 3),
    num_classes: int = 22,
    embed: int = 64,
    hidden: int = 128,
    features: Sequence[int] = (8, 16, 32),
    max_len: int = 10,
    name: str = "show_tell",
) -> Model:
    """Show and Tell (Vinyals et al. 2015) for captions of ``max_len`` tokens over a vocabulary of ``num_classes``:
    the CNN (``features``), its flattened maps -> ``embed`` as the LSTM's first input, word embeddings of ``embed``,
    an LSTM of ``hidden``, a softmax over the vocabulary. Params ``{'cnn', 'image', 'embed', 'lstm', 'out'}``."""
    _check(name, input_shape, num_classes, max_len, embed=embed, hidden=hidden, features=features)
    cnn = _encoder(features)

    def init(key: Array, in_shape: Shape) -> PyTree:
        keys = jax.random.split(key, 5)
        cnn_params, _, maps = cnn.init(keys[0], in_shape)
        return {
            "cnn": cnn_params,
            "image": nn.dense(embed).init(keys[1], (math.prod(maps),))[0],
            "embed": nn.embedding(num_classes, embed).init(keys[2], ())[0],
            "lstm": _CELL.init(keys[3], embed, hidden),
            "out": nn.dense(num_classes).init(keys[4], (hidden,))[0],
        }

    def encode(w, images):
        maps = cnn.apply(w["cnn"], {}, images)[0]
        return {"image": _dense(w["image"], maps.reshape(maps.shape[0], -1))}

    def start(w, context):
        image = context["image"]
        return _lstm(w["lstm"], _CELL.zero_carry(image.shape[0], hidden, image.dtype), image)[0]

    def step(w, context, carry, tokens):
        carry, h = _lstm(w["lstm"], carry, _embed(w, tokens))
        return carry, _dense(w["out"], h), jnp.zeros((tokens.shape[0], 0), h.dtype)

    return _model(name, input_shape, num_classes, init, Decoder(encode, start, step, (0, 0)), max_len)


def show_attend_tell(
    input_shape: Shape = (64, 64, 3),
    num_classes: int = 22,
    embed: int = 64,
    hidden: int = 128,
    attention: int = 64,
    features: Sequence[int] = (8, 16, 32),
    gate: bool = True,
    attention_reg: float = 1.0,
    max_len: int = 10,
    name: str = "show_attend_tell",
) -> Model:
    """Show, Attend and Tell (Xu et al. 2015), soft attention, for captions of ``max_len`` tokens over a vocabulary
    of ``num_classes``: the CNN's (``features``) last maps as annotations, an attention MLP of ``attention`` units,
    the gate ``beta`` (``gate``), an LSTM of ``hidden`` on [word embedding of ``embed``, context], the deep output
    layer and the doubly stochastic regulariser with lambda = ``attention_reg``. Params ``{'cnn', 'init_h',
    'init_c', 'att', 'gate', 'embed', 'lstm', 'out_h', 'out_z', 'out'}`` (no 'gate' without the gate)."""
    _check(name, input_shape, num_classes, max_len, embed=embed, hidden=hidden, attention=attention, features=features)
    if not attention_reg >= 0:
        raise ValueError(f"{name}: attention_reg (lambda) must be >= 0; got {attention_reg}")
    cnn = _encoder(features)
    rows, cols = (-(-int(input_shape[i]) // 2 ** len(features)) for i in (0, 1))  # each 'SAME' pooling halves, up
    depth = int(features[-1])

    def init(key: Array, in_shape: Shape) -> PyTree:
        keys = jax.random.split(key, 12)
        glorot = nn.initializers.glorot_uniform()
        params = {
            "cnn": cnn.init(keys[0], in_shape)[0],
            "init_h": nn.dense(hidden).init(keys[1], (depth,))[0],
            "init_c": nn.dense(hidden).init(keys[2], (depth,))[0],
            "att": {
                "wa": glorot(keys[3], (depth, attention)),
                "wh": glorot(keys[4], (hidden, attention)),
                "b": jnp.zeros((attention,)),
                "v": glorot(keys[5], (attention, 1))[:, 0],
            },
            "embed": nn.embedding(num_classes, embed).init(keys[6], ())[0],
            "lstm": _CELL.init(keys[7], embed + depth, hidden),
            "out_h": nn.dense(embed).init(keys[8], (hidden,))[0],
            "out_z": nn.dense(embed).init(keys[9], (depth,))[0],
            "out": nn.dense(num_classes).init(keys[10], (embed,))[0],
        }
        if gate:
            params["gate"] = nn.dense(1).init(keys[11], (hidden,))[0]
        return params

    def encode(w, images):
        maps = cnn.apply(w["cnn"], {}, images)[0]
        annotations = maps.reshape(maps.shape[0], -1, maps.shape[-1])
        return {"annotations": annotations, "keys": annotations @ w["att"]["wa"] + w["att"]["b"]}

    def start(w, context):
        mean = jnp.mean(context["annotations"], axis=1)
        return jnp.tanh(_dense(w["init_c"], mean)), jnp.tanh(_dense(w["init_h"], mean))

    def step(w, context, carry, tokens):
        z, alpha = soft_attention(w["att"], context["annotations"], carry[1], keys=context["keys"])
        if gate:
            z = jax.nn.sigmoid(_dense(w["gate"], carry[1])) * z
        e = _embed(w, tokens)
        carry, h = _lstm(w["lstm"], carry, jnp.concatenate([e, z], axis=-1))
        logits = _dense(w["out"], jnp.tanh(e + _dense(w["out_h"], h) + _dense(w["out_z"], z)))
        return carry, logits, alpha

    decoder = Decoder(encode, start, step, (rows, cols))
    return _model(name, input_shape, num_classes, init, decoder, max_len, attention_reg)


def _tokens(caption: str | Sequence) -> list:
    return caption.split() if isinstance(caption, str) else list(caption)


def _ngrams(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(
    references: Sequence[Sequence[str | Sequence]], hypotheses: Sequence[str | Sequence], max_n: int = 4
) -> tuple[float, ...]:
    """Corpus BLEU-1 .. BLEU-``max_n`` (Papineni et al. 2002) of ``hypotheses`` (one caption per example: a string
    of words or a sequence of tokens) against ``references`` (per example one or more captions). BLEU-n is the
    brevity penalty times the geometric mean of the modified n-gram precisions p_1..p_n: each hypothesis n-gram's
    count clipped to its largest count in any one reference, summed over the corpus, over the hypotheses' n-grams.
    The penalty is exp(1 - r / c) when the hypotheses' total length c is at most r, the summed length of each
    example's reference closest in length (the shorter on a tie), else 1. No smoothing: 0 when some p_k is 0 (as
    nltk's ``corpus_bleu`` with weights 1/n)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"references and hypotheses must pair up; got {len(references)} and {len(hypotheses)}")
    check_sizes("bleu", max_n=max_n)
    matches, totals = np.zeros(max_n), np.zeros(max_n)
    hyp_len = ref_len = 0
    for refs, hypothesis in zip(references, hypotheses, strict=True):
        hyp = _tokens(hypothesis)
        ref_tokens = [_tokens(r) for r in refs]
        if not ref_tokens:
            raise ValueError("every hypothesis needs at least one reference; got an empty list")
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in ref_tokens), key=lambda length: (abs(length - len(hyp)), length))
        for n in range(1, max_n + 1):
            clip: Counter = Counter()
            for r in ref_tokens:
                clip |= _ngrams(r, n)
            counts = _ngrams(hyp, n)
            matches[n - 1] += sum(min(c, clip[g]) for g, c in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0:
        return (0.0,) * max_n
    penalty = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    scores = []
    for n in range(1, max_n + 1):
        if np.any(matches[:n] == 0):
            scores.append(0.0)
        else:
            scores.append(float(penalty * np.exp(np.mean(np.log(matches[:n] / totals[:n])))))
    return tuple(scores)
