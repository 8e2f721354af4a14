"""word2vec (Mikolov et al. 2013a, b): skip-gram and CBOW with negative sampling, trained by plain SGD on the rows a
batch touches, and the queries of the trained vectors (nearest neighbours, analogies, word-similarity Spearman
correlation, analogy accuracy, a PCA projection).

One training example is one position of the corpus (the centre word). The corpus lives on the device as the arrays
of ``corpus_arrays`` (word ids, sentence ids, per-word keep-probabilities, the cumulative noise distribution), and
``word2vec_update`` draws everything else in the jitted step, with fixed shapes and masks:

- subsampling of frequent words: the word at position j is kept in an epoch iff ``u(seed, j) < keep[word]``, where u
  is a hash of the position and the epoch's seed: the same decision wherever that position is seen in the epoch
  (as a centre or a context), a new one every epoch;
- the dynamic window: b uniform in 1..``window`` per centre; the context is the b nearest *kept* words on each side
  within the centre's sentence (subsampling removes words before windowing, as in the C code and gensim), searched
  for within ``span`` positions on each side;
- negatives: ``negative`` words per centre from the unigram^0.75 distribution (inverse CDF), shared by the centre's
  context pairs (the C code draws them per pair); a negative equal to the centre is skipped, as in the C code.

Skip-gram as in the C code: each context word's input vector predicts the centre (positive) against the negatives
through the output vectors (initialised to zero). CBOW: the mean of the context's input vectors predicts them, and
each context word moves by the full gradient of that mean, as in the C code and gensim (``cbow_mean=1``). The update
is the gradient of the summed loss of the batch times the learning rate, added to the rows it touches only
(``.at[].add``: rows repeated in the batch get the sum of their updates, as sequential SGD would apply them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.models._base import check_sizes

ARCHITECTURES = ("skipgram", "cbow")


@dataclass(frozen=True)
class Word2Vec:
    """A word2vec model: ``vocab_size`` words of ``dim`` dimensions, a window of up to ``window`` words each side,
    ``negative`` noise words per centre, ``architecture`` 'skipgram' or 'cbow'; ``span`` (default ``3 * window``)
    positions are searched on each side for the window's kept words. ``init(key)`` -> ``{'input', 'output'}``: the
    word vectors (uniform in +-0.5 / dim, as gensim) and the output vectors (zeros)."""

    vocab_size: int
    dim: int = 100
    window: int = 5
    negative: int = 5
    architecture: str = "skipgram"
    span: int | None = None

    def __post_init__(self) -> None:
        check_sizes("word2vec", vocab_size=self.vocab_size, dim=self.dim, window=self.window, negative=self.negative)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}; got {self.architecture!r}")
        if self.span is not None and self.span < self.window:
            raise ValueError(f"span must be >= window ({self.window}); got {self.span}")

    @property
    def name(self) -> str:
        return f"word2vec_{self.architecture}"

    @property
    def search(self) -> int:
        """The positions searched on each side of a centre for its window's kept words."""
        return self.span if self.span is not None else 3 * self.window

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """The word (input) vectors, uniform in ``+-0.5 / dim``, and the output vectors, zeros."""
        shape = (self.vocab_size, self.dim)
        return {
            "input": jax.random.uniform(key, shape, jnp.float32, -0.5 / self.dim, 0.5 / self.dim),
            "output": jnp.zeros(shape, jnp.float32),
        }


def corpus_arrays(ids, sentence, keep, noise) -> dict[str, jax.Array]:
    """What the training step reads of a corpus, as device arrays: word ``ids`` and ``sentence`` ids (N,), the
    per-word ``keep`` probabilities of subsampling and the cumulative ``noise`` distribution (V,)."""
    ids, sentence = np.asarray(ids, np.int32), np.asarray(sentence, np.int32)
    if ids.ndim != 1 or ids.shape != sentence.shape or not len(ids):
        raise ValueError(f"ids and sentence must be non-empty and of one shape (N,); got {ids.shape}, {sentence.shape}")
    cdf = np.cumsum(np.asarray(noise, np.float64))
    return {
        "ids": jnp.asarray(ids),
        "sentence": jnp.asarray(sentence),
        "keep": jnp.asarray(keep, jnp.float32),
        "noise_cdf": jnp.asarray(cdf / cdf[-1], jnp.float32),
    }


def _hash(x: jax.Array) -> jax.Array:
    """A 32-bit integer hash with full avalanche (Wellons' lowbias32)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def kept(corpus: dict[str, jax.Array], positions: jax.Array, seed: jax.Array) -> jax.Array:
    """Whether the words at ``positions`` survive subsampling in the epoch of ``seed`` (uint32): a uniform hash of
    (seed, position) below the word's keep-probability; the same answer for the same position and seed."""
    u = (_hash(positions.astype(jnp.uint32) + _hash(seed.astype(jnp.uint32))) >> 8).astype(jnp.float32) * 2.0**-24
    return u < corpus["keep"][corpus["ids"][positions]]


def contexts(
    model: Word2Vec, corpus: dict[str, jax.Array], centres: jax.Array, key: jax.Array, seed: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The context of each centre position: ``(ids, mask)`` of shape ``(batch, 2 * window)`` (left side nearest
    first, then right), the b nearest kept words of the centre's sentence on each side, b uniform in 1..window; and
    whether the centre itself is kept (batch,)."""
    n, s, w = corpus["ids"].shape[0], model.search, model.window
    offsets = jnp.concatenate([-jnp.arange(1, s + 1), jnp.arange(1, s + 1)])  # left nearest first, then right
    pos = centres[:, None] + offsets[None, :]
    inside = (pos >= 0) & (pos < n)
    pos = jnp.clip(pos, 0, n - 1)
    valid = inside & (corpus["sentence"][pos] == corpus["sentence"][centres][:, None]) & kept(corpus, pos, seed)
    valid = valid.reshape(-1, 2, s)
    rank = jnp.cumsum(valid, axis=-1)  # the k-th kept word of a side has rank k
    slot = jnp.arange(1, w + 1)
    hit = valid[..., None, :] & (rank[..., None, :] == slot[:, None])  # (batch, side, slot, s)
    where = jnp.argmax(hit, axis=-1)
    b = jax.random.randint(key, (centres.shape[0], 1, 1), 1, w + 1)
    mask = jnp.any(hit, axis=-1) & (slot <= b)
    ids = jnp.take_along_axis(corpus["ids"][pos].reshape(-1, 2, s), where, axis=-1)
    return ids.reshape(-1, 2 * w), mask.reshape(-1, 2 * w), kept(corpus, centres, seed)


def draw_negatives(key: jax.Array, noise_cdf: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Word ids drawn from the noise distribution given by its cumulative ``noise_cdf`` (inverse CDF sampling)."""
    u = jax.random.uniform(key, shape, jnp.float32)
    return jnp.minimum(jnp.searchsorted(noise_cdf, u, side="right"), noise_cdf.shape[0] - 1).astype(jnp.int32)


def _signed_logits(inputs: jax.Array, outputs: jax.Array) -> jax.Array:
    """``s_k o_k . h`` for every (input, output) pair, s_0 = 1 (the positive), s_k = -1 (the negatives)."""
    logits = jax.lax.dot_general(inputs, outputs, (((inputs.ndim - 1,), (outputs.ndim - 1,)), ((0,), (0,))))
    return jnp.where(jnp.arange(outputs.shape[-2]) == 0, 1.0, -1.0) * logits


def negative_sampling_loss(inputs: jax.Array, outputs: jax.Array, mask: jax.Array) -> jax.Array:
    """The summed negative-sampling loss ``-log s(o_0 . h) - sum_k log s(-o_k . h)`` over every (input, output)
    pair that ``mask`` keeps: ``inputs`` (batch, C, d) vectors h, ``outputs`` (batch, 1 + K, d) the positive's output
    vector then the K negatives', ``mask`` (batch, C, 1 + K)."""
    return -jnp.sum(jnp.where(mask, jax.nn.log_sigmoid(_signed_logits(inputs, outputs)), 0.0))


def negative_sampling_grads(
    inputs: jax.Array, outputs: jax.Array, mask: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``negative_sampling_loss`` and its gradients with respect to ``inputs`` and ``outputs``, written out (the
    products laid out so that XLA's CPU backend runs them fast; autodiff's layout is ~2x slower there)."""
    signed = _signed_logits(inputs, outputs)
    sign = jnp.where(jnp.arange(outputs.shape[-2]) == 0, 1.0, -1.0)
    loss = -jnp.sum(jnp.where(mask, jax.nn.log_sigmoid(signed), 0.0))
    g = jnp.where(mask, sign * (jax.nn.sigmoid(signed) - 1.0), 0.0)  # d loss / d (o_k . h), (batch, C, 1 + K)
    g_inputs = jax.lax.dot_general(g, outputs, (((2,), (1,)), ((0,), (0,))))
    g_outputs = jnp.sum(g[..., None] * inputs[:, :, None, :], axis=1)
    return loss, g_inputs, g_outputs


def word2vec_update(
    model: Word2Vec,
    params: dict[str, jax.Array],
    corpus: dict[str, jax.Array],
    centres: jax.Array,
    key: jax.Array,
    seed: jax.Array,
    learning_rate: jax.Array | float,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """One SGD step of ``model`` on the batch of ``centres`` (corpus positions): the contexts and negatives drawn
    from ``key`` and the epoch's subsampling ``seed``; returns the new parameters (only the rows touched change) and
    ``{'loss'}``, the mean loss per (context, centre) pair (skip-gram) or per centre (CBOW)."""
    k_window, k_noise = jax.random.split(key)
    ctx, ctx_mask, centre_kept = contexts(model, corpus, centres, k_window, seed)
    centre = corpus["ids"][centres]
    negatives = draw_negatives(k_noise, corpus["noise_cdf"], (centres.shape[0], model.negative))
    targets = jnp.concatenate([centre[:, None], negatives], axis=1)  # (batch, 1 + K)
    target_mask = (targets != centre[:, None]).at[:, 0].set(True) & centre_kept[:, None]
    vectors = params["input"][ctx]  # (batch, 2w, d)
    outputs = params["output"][targets]
    if model.architecture == "skipgram":
        inputs, pair_mask = vectors, ctx_mask[:, :, None] & target_mask[:, None, :]
        pairs = jnp.sum(ctx_mask & centre_kept[:, None])
    else:
        count = jnp.sum(ctx_mask, axis=1, keepdims=True)
        inputs = (jnp.sum(vectors * ctx_mask[..., None], axis=1) / jnp.maximum(count, 1))[:, None, :]
        pair_mask = ((count > 0) & target_mask)[:, None, :]
        pairs = jnp.sum((count[:, 0] > 0) & centre_kept)
    loss, g_in, g_out = negative_sampling_grads(inputs, outputs, pair_mask)
    if model.architecture == "cbow":  # each context word takes the mean's whole gradient (the C code, gensim)
        g_in = jnp.broadcast_to(g_in, vectors.shape) * ctx_mask[..., None]
    d = model.dim
    new = {
        "input": params["input"].at[ctx.reshape(-1)].add(-learning_rate * g_in.reshape(-1, d)),
        "output": params["output"].at[targets.reshape(-1)].add(-learning_rate * g_out.reshape(-1, d)),
    }
    return new, {"loss": loss / jnp.maximum(pairs, 1)}


def unit_vectors(vectors) -> np.ndarray:
    """Each row scaled to unit length (zero rows stay zero)."""
    v = np.asarray(vectors, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(vectors, query, k: int = 10, exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``vectors`` most cosine-similar to ``query`` (a row id or a vector), without the query's
    own row and the ids in ``exclude``: their ids and cosines, most similar first."""
    unit = unit_vectors(vectors)
    own = [int(query)] if np.ndim(query) == 0 else []
    target = unit[int(query)] if own else unit_vectors(np.asarray(query)[None])[0]
    cos = unit @ target
    cos[own + [int(i) for i in exclude]] = -np.inf
    top = np.argsort(-cos, kind="stable")[:k]
    return top, cos[top]


def analogy(vectors, a: int, b: int, c: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``a : b :: c : ?`` by 3CosAdd (Mikolov et al. 2013a; gensim's ``most_similar(positive=[b, c],
    negative=[a])``): the ``k`` words nearest to ``unit(b) - unit(a) + unit(c)``, the three excluded."""
    unit = unit_vectors(vectors)
    return nearest_neighbours(unit, unit[b] - unit[a] + unit[c], k, exclude=(a, b, c))


def spearman(x, y) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (ties share their mean rank)."""

    def ranks(v):
        v = np.asarray(v, np.float64)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inverse, weights=r)
        return sums[inverse] / counts[inverse]

    rx, ry = ranks(x), ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def similarity_spearman(vectors, pairs, scores) -> float:
    """Spearman correlation between the cosine similarities of word-id ``pairs`` (n, 2) and human ``scores``."""
    unit = unit_vectors(vectors)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) < 2:
        raise ValueError(f"pairs must have shape (n, 2), n >= 2; got {pairs.shape}")
    return spearman(np.sum(unit[pairs[:, 0]] * unit[pairs[:, 1]], axis=1), scores)


def analogy_accuracy(vectors, questions, batch: int = 512) -> float:
    """The share of analogy ``questions`` (n, 4) of word ids ``a b c d`` whose 3CosAdd answer (``analogy``) is d."""
    unit = unit_vectors(vectors)
    q = np.asarray(questions)
    if q.ndim != 2 or q.shape[1] != 4 or not len(q):
        raise ValueError(f"questions must have shape (n, 4), n >= 1; got {q.shape}")
    correct = 0
    for i in range(0, len(q), batch):
        a, b, c, d = q[i : i + batch].T
        cos = (unit[b] - unit[a] + unit[c]) @ unit.T
        rows = np.arange(len(a))
        for col in (a, b, c):
            cos[rows, col] = -np.inf
        correct += int(np.sum(np.argmax(cos, axis=1) == d))
    return correct / len(q)


def pca_projection(vectors, dims: int = 2) -> np.ndarray:
    """``vectors`` (n, d) projected onto their ``dims`` principal axes (centred; n, dims)."""
    v = np.asarray(vectors, np.float64)
    v = v - v.mean(axis=0)
    _, _, vt = np.linalg.svd(v, full_matrices=False)
    return (v @ vt[:dims].T).astype(np.float32)
