"""word2vec's training step for ``fit``: the examples are the corpus positions (``corpus.positions``), one epoch is
one pass over them, the corpus rides in the state's non-trained part (saved with the checkpoint, so a resumed run
needs nothing else), and the learning rate decays linearly over the run as in the C code and gensim."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxnets.data.words import Corpus, keep_probabilities, noise_distribution
from jaxnets.models import Word2Vec, corpus_arrays, word2vec_update
from jaxnets.train.state import TrainState, epoch_key
from jaxnets.train.step import TrainStep


def word2vec_step(
    model: Word2Vec,
    corpus: Corpus,
    *,
    batch_size: int,
    epochs: int,
    alpha: float = 0.025,
    min_alpha: float = 1e-4,
    sample: float = 1e-3,
) -> TrainStep:
    """The step that trains ``model`` on ``corpus`` with ``fit(step, corpus.positions, epochs=epochs,
    batch_size=batch_size)`` (the same two numbers: they fix the learning-rate schedule and the epochs' subsampling):
    plain SGD from ``alpha`` down to ``min_alpha`` linearly over all the steps, frequent words subsampled with
    threshold ``sample`` (``data.keep_probabilities``), negatives from the unigram^0.75 distribution. Metrics:
    'loss' (mean per pair, see ``models.word2vec_update``) and 'learning_rate'.

    A row's updates within a batch add up, computed at the batch's starting point: a batch must be small next to how
    often its words recur (1024 centres is fast and stable on a 9,000-word vocabulary; a vocabulary of 8 words needs
    batches of ~16, or SGD diverges). On CPU, 512-1024 centres per batch run fastest per word."""
    if model.vocab_size != len(corpus.words):
        raise ValueError(f"model: vocab_size {model.vocab_size} is not the corpus's {len(corpus.words)} words")
    if not 1 <= batch_size <= len(corpus.ids) or epochs < 1:
        raise ValueError(
            f"batch_size must be in 1..{len(corpus.ids)} (the corpus's words) and epochs >= 1; got {batch_size}, "
            f"{epochs}"
        )
    steps = len(corpus.ids) // batch_size
    schedule = optax.linear_schedule(alpha, min_alpha, steps * epochs)
    arrays = corpus_arrays(
        corpus.ids, corpus.sentence, keep_probabilities(corpus.counts, sample), noise_distribution(corpus.counts)
    )

    def init(key: jax.Array) -> TrainState:
        init_key, run_key = jax.random.split(key)
        # (a copy: fit donates the state, and the step may be trained again)
        return TrainState.create(model.init(init_key), (), run_key, jax.tree.map(jnp.array, arrays))

    def update(state: TrainState, batch, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        centres, _ = batch
        seed = jax.random.bits(jax.random.fold_in(epoch_key(state, state.step // steps), 1), (), jnp.uint32)
        lr = schedule(state.step)
        params, metrics = word2vec_update(model, state.params, state.model_state, centres, key, seed, lr)
        return state.replace(params=params), {**metrics, "learning_rate": lr}

    return TrainStep(init, update, name=model.name)
