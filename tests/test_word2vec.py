"""word2vec: the corpus reader and vocabulary, the noise distribution and subsampling, the windows, the
negative-sampling loss and its gradients, the sparse SGD update against a dense one, training through ``fit``, and
the queries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers_train import in_process_cli, one_line

from jaxnets import data, models, train
from jaxnets.cli import word2vec as word2vec_cli
from jaxnets.models._word2vec import contexts, draw_negatives, kept, negative_sampling_grads


def _arrays(ids, sentence, keep=None, counts=None):
    v = int(max(ids)) + 1
    counts = np.ones(v) if counts is None else counts
    keep = np.ones(v) if keep is None else keep
    return models.corpus_arrays(ids, sentence, keep, data.noise_distribution(counts))


def test_corpus_reader_vocabulary_and_files(tmp_path):
    text = "The cat sat.\nThe dog sat, the cat ran!\n\nO'er the hill a cat\n"
    assert data.tokenise(text, "line") == [
        ["the", "cat", "sat"],
        ["the", "dog", "sat", "the", "cat", "ran"],
        ["o'er", "the", "hill", "a", "cat"],
    ]
    assert len(data.tokenise(text)) == 2  # paragraphs
    (tmp_path / "a.txt").write_text(text)
    corpus = data.read_corpus(tmp_path, min_count=2, split="line")
    assert corpus.words == ("the", "cat", "sat")  # most frequent first; ties in order of first appearance
    assert corpus.counts.tolist() == [4, 3, 2]
    assert corpus.ids.tolist() == [0, 1, 2, 0, 2, 0, 1, 0, 1]  # out-of-vocabulary words dropped
    assert corpus.sentence.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert corpus.encode(["cat", "the"]) == [1, 0]
    with pytest.raises(ValueError, match="'dog' is not in the vocabulary"):
        corpus.encode(["dog"])
    with pytest.raises(ValueError, match="no word occurs min_count=9"):
        data.build_corpus([["a"]], min_count=9)
    with pytest.raises(ValueError, match="split must be one of"):
        data.tokenise(text, "word")
    (tmp_path / "ws.tsv").write_text("# comment\nTiger\tcat\t7.35\nold\tnew\t1.5\n")
    assert data.read_similarity_pairs(tmp_path / "ws.tsv") == [("tiger", "cat", 7.35), ("old", "new", 1.5)]
    (tmp_path / "q.txt").write_text(": capitals\nAthens Greece Baghdad Iraq\n: family\nboy girl brother sister\n")
    assert data.read_analogies(tmp_path / "q.txt") == {
        "capitals": [("athens", "greece", "baghdad", "iraq")],
        "family": [("boy", "girl", "brother", "sister")],
    }
    (tmp_path / "bad.txt").write_text("a b c\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected four words"):
        data.read_analogies(tmp_path / "bad.txt")


def test_noise_distribution_and_negatives():
    counts = np.array([1000, 100, 10, 1])
    p = data.noise_distribution(counts)
    want = counts**0.75 / np.sum(counts**0.75)  # 177.8 : 31.6 : 5.6 : 1
    np.testing.assert_allclose(p, want, rtol=1e-6)
    arrays = _arrays([0, 1, 2, 3], [0, 0, 0, 0], counts=counts)
    draws = np.asarray(draw_negatives(jax.random.key(0), arrays["noise_cdf"], (100_000,)))
    freq = np.bincount(draws, minlength=4) / draws.size
    assert np.all(np.abs(freq - want) < 4 * np.sqrt(want * (1 - want) / draws.size) + 1e-4), (freq, want)


def test_subsampling_keep_probabilities():
    counts = np.array([5000, 100, 1])
    t = 1e-3 * counts.sum()  # 5.101
    keep = data.keep_probabilities(counts, 1e-3)
    by_hand = [(np.sqrt(c / t) + 1) * t / c for c in (5000, 100)]  # 0.0330, 0.2769; the rare word: 1 (capped)
    np.testing.assert_allclose(keep, [*by_hand, 1], rtol=1e-6)
    assert data.keep_probabilities(counts, 0).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="sample must be in"):
        data.keep_probabilities(counts, 1.5)
    # The kept share of a word's positions is its keep-probability; the same decision for the same epoch seed.
    arrays = _arrays(np.zeros(20_000, np.int32), np.zeros(20_000, np.int32), keep=np.array([0.3]))
    positions = jnp.arange(20_000)
    first = np.asarray(kept(arrays, positions, jnp.uint32(1)))
    assert abs(first.mean() - 0.3) < 0.015
    assert np.array_equal(first, np.asarray(kept(arrays, positions, jnp.uint32(1))))
    other = np.asarray(kept(arrays, positions, jnp.uint32(2)))
    assert 0.05 < np.mean(first != other) < 0.6  # another epoch, other words


def test_windows_are_the_nearest_kept_words_of_the_sentence():
    # sentence 0: positions 0-6, sentence 1: positions 7-9; word 9 is never kept
    ids = np.array([1, 2, 9, 3, 4, 5, 6, 7, 8, 0])
    sentence = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    keep = np.ones(10)
    keep[9] = 0
    arrays = _arrays(ids, sentence, keep=keep)
    model = models.Word2Vec(10, dim=2, window=2, span=4)
    centres = jnp.tile(jnp.array([3, 7, 2]), 16)  # each row draws its own window size
    ctx, mask, centre_kept = jax.jit(contexts, static_argnums=0)(model, arrays, centres, jax.random.key(0), 0)
    ctx, mask = np.asarray(ctx).reshape(16, 3, 4), np.asarray(mask).reshape(16, 3, 4)
    sizes = mask[:, 0].sum(1) // 2
    assert set(sizes.tolist()) == {1, 2}  # the dynamic window takes both sizes
    for c, m, b in zip(ctx, mask, sizes, strict=True):
        # centre 3 (word 3): left nearest-first skips the dropped word 9 -> 2, 1; right 4, 5
        assert c[0][m[0]].tolist() == [2, 1][:b] + [4, 5][:b]
        # centre 7 starts sentence 1: no left context, right 8, 0 (its sentence only)
        assert m[1, :2].sum() == 0 and c[1][m[1]].tolist() == [8, 0][: int(m[1].sum())]
    assert np.asarray(centre_kept).reshape(16, 3).tolist() == [[True, True, False]] * 16


def test_negative_sampling_loss_and_gradients():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    h = jax.random.normal(k1, (2, 3, 4))
    o = jax.random.normal(k2, (2, 3, 4))
    mask = jax.random.bernoulli(k3, 0.7, (2, 3, 3))
    logits = np.einsum("bcd,bkd->bck", h, o)
    by_hand = -np.log(1 / (1 + np.exp(-logits[..., 0]))) * mask[..., 0]
    by_hand -= (np.log(1 / (1 + np.exp(logits[..., 1:]))) * mask[..., 1:]).sum(-1)
    loss, g_h, g_o = negative_sampling_grads(h, o, mask)
    np.testing.assert_allclose(models.negative_sampling_loss(h, o, mask), by_hand.sum(), rtol=1e-5)
    np.testing.assert_allclose(loss, by_hand.sum(), rtol=1e-5)
    want_h, want_o = jax.grad(models.negative_sampling_loss, argnums=(0, 1))(h, o, mask)
    np.testing.assert_allclose(g_h, want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_o, want_o, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_update_is_sgd_on_the_touched_rows(architecture):
    ids = np.array([0, 1, 2, 3, 4, 5, 1, 2, 3, 0, 4, 5])
    arrays = _arrays(ids, np.zeros(12, np.int32), counts=np.arange(1, 7))
    model = models.Word2Vec(8, dim=3, window=2, negative=2, architecture=architecture)
    k1, k2 = jax.random.split(jax.random.key(1))
    params = {"input": jax.random.normal(k1, (8, 3)), "output": jax.random.normal(k2, (8, 3))}
    centres, key, seed, lr = jnp.array([2, 5, 9]), jax.random.key(2), jnp.uint32(3), 0.1
    new, metrics = jax.jit(models.word2vec_update, static_argnums=0)(model, params, arrays, centres, key, seed, lr)
    # Dense reference: the same draws, the loss as a function of the whole tables, jax.grad, an SGD step.
    ctx, mask, _ = jax.jit(contexts, static_argnums=0)(model, arrays, centres, jax.random.split(key)[0], seed)
    negatives = jax.jit(draw_negatives, static_argnums=2)(jax.random.split(key)[1], arrays["noise_cdf"], (3, 2))
    centre = arrays["ids"][centres]
    targets = jnp.concatenate([centre[:, None], negatives], 1)
    t_mask = (targets != centre[:, None]).at[:, 0].set(True)
    count = mask.sum(1, keepdims=True)

    def loss(p):
        v = p["input"][ctx]
        if architecture == "skipgram":
            return models.negative_sampling_loss(v, p["output"][targets], mask[:, :, None] & t_mask[:, None, :])
        mean = (v * mask[..., None]).sum(1, keepdims=True) / count[..., None]
        return models.negative_sampling_loss(mean, p["output"][targets], t_mask[:, None, :])

    grads = jax.jit(jax.grad(loss))(params)
    if architecture == "cbow":  # each context word takes the mean's whole gradient: count x the true one
        g = jnp.zeros_like(params["input"])
        mean_grad = jax.grad(lambda m: models.negative_sampling_loss(m, params["output"][targets], t_mask[:, None, :]))(
            (params["input"][ctx] * mask[..., None]).sum(1, keepdims=True) / count[..., None]
        )
        g = g.at[ctx.reshape(-1)].add((jnp.broadcast_to(mean_grad, (3, 4, 3)) * mask[..., None]).reshape(-1, 3))
        grads = {**grads, "input": g}
    for name in ("input", "output"):
        np.testing.assert_allclose(new[name], params[name] - lr * grads[name], rtol=1e-5, atol=1e-6)
    untouched = np.setdiff1d(np.arange(8), np.concatenate([np.asarray(ctx)[np.asarray(mask)], np.asarray(centre)]))
    np.testing.assert_array_equal(new["input"][untouched], params["input"][untouched])
    assert np.isfinite(float(metrics["loss"]))


def test_training_through_fit_lowers_the_loss_and_groups_words():
    rng = np.random.default_rng(0)
    groups = [["red", "green", "blue", "yellow"], ["one", "two", "three", "four"]]
    sentences = [list(rng.choice(groups[i % 2], 8)) for i in range(300)]
    corpus = data.build_corpus(sentences, min_count=1)
    model = models.Word2Vec(len(corpus.words), dim=8, window=3, negative=3)
    # (a batch's updates of a row add up: with 8 words, a small batch keeps SGD stable)
    step = train.word2vec_step(model, corpus, batch_size=16, epochs=3, sample=0)
    run = {"batch_size": 16, "progress": False, "log": lambda _: None}
    result = train.fit(step, corpus.positions, epochs=3, **run)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.6 * 4 * np.log(2), losses  # at the start (output vectors zero): (1 + K) log 2 per pair
    vectors = np.asarray(result.state.params["input"])
    near, _ = models.nearest_neighbours(vectors, corpus.index["red"], k=3)
    assert {corpus.words[i] for i in near} == {"green", "blue", "yellow"}
    # The step trains again: its corpus is copied into each new state (fit donates the state it trains).
    first, again = (train.fit(step, corpus.positions, epochs=1, **run).state.params["input"] for _ in range(2))
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="vocab_size 3 is not the corpus's 8 words"):
        train.word2vec_step(models.Word2Vec(3), corpus, batch_size=8, epochs=1)


def test_queries_on_known_vectors():
    # man, woman, king, queen, apple: king - man + woman = queen exactly
    vectors = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [0.2, 0.2, -1]], np.float32)
    ids, cos = models.nearest_neighbours(vectors, 2, k=2)
    assert ids.tolist() == [0, 3] and cos[0] == pytest.approx(np.sqrt(0.5))
    assert models.analogy(vectors, 0, 2, 1)[0].tolist() == [3]
    assert models.analogy_accuracy(vectors, [[0, 2, 1, 3], [0, 1, 2, 4]]) == 0.5
    assert models.spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(0.9486833, rel=1e-6)  # a tie
    assert models.similarity_spearman(vectors, [[0, 2], [0, 1], [2, 3]], [9, 1, 5]) == pytest.approx(1.0)
    plane = np.array([[0.6, 0.8, 0], [0, 0, 1]])  # points on a plane in 3-D: projected, their distances stay
    points = np.random.default_rng(0).normal(size=(6, 2)) @ plane
    p = models.pca_projection(points, 2)
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(p[:, None] - p[None], axis=-1), distances, atol=1e-5)
    with pytest.raises(ValueError, match="architecture must be one of"):
        models.Word2Vec(10, architecture="glove")


def test_the_command_trains_writes_vectors_and_resumes(cli, tmp_path):
    rng = np.random.default_rng(0)
    groups = [["red", "green", "blue", "yellow"], ["one", "two", "three", "four"]]
    (tmp_path / "c.txt").write_text("\n".join(" ".join(rng.choice(groups[i % 2], 8)) for i in range(300)))
    flags = ["--corpus", str(tmp_path / "c.txt"), "--workdir", str(tmp_path / "run"), "--min-count", "1"]
    flags += ["--split", "line", "--dim", "8", "--window", "3", "--negative", "3", "--sample", "0", "--no-progress"]
    flags += ["--batch-size", "16", "--epochs", "2"]
    code, out, err = cli(word2vec_cli.main, *flags, "--query", "Red")
    assert code == 0, err
    lines = (tmp_path / "run" / "vectors.txt").read_text().splitlines()
    assert lines[0] == "8 8" and len(lines) == 9 and all(len(line.split()) == 9 for line in lines[1:])
    neighbours = out.splitlines()[-1].split()  # "Red: green (0.98), blue (0.97), ..."
    assert neighbours[0] == "Red:" and set(neighbours[1:6:2]) == {"green", "blue", "yellow"}, out
    code, _, err = cli(word2vec_cli.main, *flags)  # the run exists: resume or overwrite, said with the flags
    assert code == 2 and "--resume" in one_line(err) and "--overwrite" in one_line(err)
    code, _, err = cli(word2vec_cli.main, *flags, "--query", "purple")
    assert code == 2 and one_line(err).endswith("query words not in the vocabulary (min_count 1): purple")


@pytest.fixture
def cli(capsys, monkeypatch):
    return in_process_cli(capsys, monkeypatch)
