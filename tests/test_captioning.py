"""Image captioning (issue 19): the shapes_captions scenes against an independent reading of their captions, corpus
BLEU against hand-computed values (and nltk when installed), beam search against exhaustive search, soft attention,
the masked teacher-forcing loss, and both captioners learning through train.fit."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import model_params

from jaxnets import models as cap
from jaxnets import train
from jaxnets.data import captions as C
from jaxnets.models._captioning import _decode_fn

COUNT = {"a": 1, "two": 2, "three": 3, "four": 4}
COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")


def _parse_group(words: list[str]) -> tuple[int, str, str]:
    """'two red circles' -> (2, 'red', 'circle'), checking number agreement."""
    count, colour, noun = words
    n = COUNT[count]
    shape = noun[:-1] if n > 1 else noun
    assert colour in COLOURS and shape in SHAPES and (noun.endswith("s") == (n > 1)), words
    return n, colour, shape


def _check_caption(caption: str, objects: list[tuple[str, str, float, float]]) -> None:
    """An independent reading of a caption: the groups it names are exactly the scene's shapes, in those numbers,
    and its relation holds between every pair of centres with the margin the grammar promises."""
    words = caption.split()
    if len(words) == 3:
        n, colour, shape = _parse_group(words)
        assert len(objects) == n and all(o[:2] == (colour, shape) for o in objects), (caption, objects)
        return
    relation_words = 2 if words[3] in ("left", "right") else 1
    first, relation, second = words[:3], " ".join(words[3 : 3 + relation_words]), words[3 + relation_words :]
    (na, ca, sa), (nb, cb, sb) = _parse_group(first), _parse_group(second)
    a = [(x, y) for c, s, x, y in objects if (c, s) == (ca, sa)]
    b = [(x, y) for c, s, x, y in objects if (c, s) == (cb, sb)]
    assert (ca, sa) != (cb, sb) and len(a) == na and len(b) == nb and na + nb == len(objects), (caption, objects)
    for (xa, ya), (xb, yb) in itertools.product(a, b):
        gap = {"left of": xb - xa, "right of": xa - xb, "above": yb - ya, "below": ya - yb}[relation]
        assert gap >= C.GAP, (caption, objects)


def test_scenes_are_deterministic_by_seed_and_split():
    make = C.shapes_captions.__wrapped__  # not the per-process cache
    a, b, other = make(60, 20, seed=3), make(60, 20, seed=3), make(60, 20, seed=4)
    for field in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.test_references == b.test_references
    assert not np.array_equal(a.train_x, other.train_x) and not np.array_equal(a.train_x, a.test_x[:1].repeat(60, 0))
    assert a.train_x.dtype == np.float32 and a.train_x.shape == (60, 64, 64, 3) and 0 <= a.train_x.min() <= 1
    assert a.train_y.dtype == np.int32 and a.train_y.shape == (60, C.MAX_LEN) and a.num_classes == len(a.vocab)
    assert a.vocab[:3] == ("<pad>", "<start>", "<end>")


def test_every_reference_caption_is_true_of_its_scene_and_the_image_shows_the_scene():
    ds = C.shapes_captions.__wrapped__(300, 300, seed=7)
    kinds = set()
    for i in range(len(ds.test_x)):
        objects = ds.test_scenes.objects(i)
        refs = ds.test_references[i]
        for caption in refs:
            _check_caption(caption, objects)
        assert C.decode_caption(ds.test_y[i], ds.vocab) == refs[0]
        groups = {(c, s) for c, s, _, _ in objects}
        assert len(refs) == len(groups)  # one caption, or one relation each way: never a second axis
        kinds.add(len(refs[0].split()))
        for c, _, x, y in objects:  # the image holds the shape's colour at its centre
            np.testing.assert_allclose(ds.test_x[i, int(y), int(x)], C.RGB[COLOURS.index(c)])
    y = ds.train_y
    ends = np.argmax(y == C.END, axis=1)
    assert np.all(y[:, 0] == C.START) and np.all(np.sum(y == C.END, axis=1) == 1)
    assert np.all((y == 0) == (np.arange(C.MAX_LEN) > ends[:, None]))
    assert kinds == {3, 7, 8}  # single groups, and 'above'/'below' and 'left of'/'right of' relations


def test_scene_captions_name_the_larger_group_first_and_refuse_three_groups():
    objects = [("blue", "square", 40.0, 30.0), ("red", "circle", 10.0, 20.0), ("red", "circle", 12.0, 40.0)]
    assert C.scene_captions(objects) == (
        "two red circles left of a blue square",
        "a blue square right of two red circles",
    )
    with pytest.raises(ValueError, match="one or two groups"):
        C.scene_captions([*objects, ("green", "triangle", 50.0, 50.0)])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        C.encode_caption("a purple circle")


def test_bleu_hand_computed():
    caption = "two red circles left of a blue square"
    assert cap.bleu([[caption]], [caption]) == (1.0, 1.0, 1.0, 1.0)
    # Papineni et al.'s clipping example: 'the' counted at most twice (its count in the reference); c = 7 > r = 6
    clipped = cap.bleu([["the cat is on the mat"]], ["the the the the the the the"], max_n=1)
    assert clipped == pytest.approx((2 / 7,))
    # brevity: every n-gram matches, c = 3 < r = 8; no 4-gram in the hypothesis -> BLEU-4 = 0
    bp = math.exp(1 - 8 / 3)
    assert cap.bleu([[caption]], ["two red circles"]) == pytest.approx((bp, bp, bp, 0.0))
    # the reference closest in length counts (r = 5 for c = 4), the shorter on a tie (r = 3: no penalty)
    assert cap.bleu([["a b c d e", "a b"]], ["a b c d"], max_n=1) == pytest.approx((math.exp(1 - 5 / 4),))
    assert cap.bleu([["a b c d e", "a b x"]], ["a b c d"], max_n=1) == pytest.approx((1.0,))
    assert cap.bleu([["a red circle"]], ["green triangles"]) == (0.0, 0.0, 0.0, 0.0)
    # corpus statistics, not a mean of sentence scores: p1 = 5/6, p2 = (3 + 0) / (3 + 1), c = r = 6
    corpus = cap.bleu([["a b c d"], ["e g"]], [["a", "b", "c", "d"], ["e", "f"]], max_n=2)
    assert corpus == pytest.approx((5 / 6, math.sqrt(5 / 6 * 3 / 4)))


@pytest.mark.filterwarnings("ignore::UserWarning")  # nltk warns about corpora with a zero n-gram count
def test_bleu_equals_nltk_corpus_bleu():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    rng = np.random.default_rng(0)
    words = ["a", "two", "red", "blue", "circle", "square", "left", "of", "above", "the"]
    for _ in range(50):
        refs = [[list(rng.choice(words, rng.integers(1, 10))) for _ in range(rng.integers(1, 4))] for _ in range(4)]
        hyps = [list(rng.choice(r[0] + words, rng.integers(4, 10))) for r in refs]  # >= 4 words: see bleu()
        want = [nltk_bleu.corpus_bleu(refs, hyps, weights=(1 / n,) * n) for n in range(1, 5)]
        assert cap.bleu(refs, hyps) == pytest.approx(want, abs=1e-12)


@functools.lru_cache(maxsize=2)
def _tiny(builder):
    """A tiny captioner over 8 x 8 images and 4 words (vocabulary 7), captions of 3 generated tokens (max_len 4),
    with large random weights so that its word distributions are far from uniform (one per builder: the tests share
    its compiled decoders)."""
    model = builder((8, 8, 3), 7, embed=4, hidden=8, features=(2,), max_len=4)
    params, state = model_params(model, np.random.default_rng(1))  # no initialiser compiled
    images = jnp.asarray(np.random.default_rng(2).uniform(size=(3, 8, 8, 3)), jnp.float32)
    return model, jax.tree.map(lambda p: 3.0 * p, params), state, images


@functools.partial(jax.jit, static_argnums=0)
def _log_prob(model, params, images, captions):
    """log p(caption | image) of each pair, by teacher forcing."""
    logits, _ = cap.teacher_forced(model.objective.decoder, params, images, captions)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), captions[:, 1:, None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(captions[:, 1:] != 0, logp, 0.0), axis=1)


@pytest.mark.parametrize("builder", [cap.show_tell, cap.show_attend_tell])
def test_beam_search_with_a_full_beam_is_exhaustive_and_beam_one_is_greedy(builder):
    model, params, state, images = _tiny(builder)
    captions = set()
    for seq in itertools.product([2, 3, 4, 5, 6], repeat=3):  # <end> or a word, 3 times; cut after <end>
        cut = seq[: seq.index(2) + 1] if 2 in seq else seq
        captions.add((1, *cut) + (0,) * (3 - len(cut)))
    captions = jnp.asarray(sorted(captions), jnp.int32)
    assert len(captions) == 1 + 4 + 16 + 64  # <end> after 0, 1, 2 words, or 3 words cut
    pairs = jnp.repeat(images, len(captions), axis=0), jnp.tile(captions, (len(images), 1))
    scores = _log_prob(model, params, *pairs).reshape(len(images), len(captions))
    tokens, best = cap.beam_search(model, params, state, images, beam=5**3)
    np.testing.assert_array_equal(tokens, captions[jnp.argmax(scores, axis=1)])
    np.testing.assert_allclose(best, jnp.max(scores, axis=1), rtol=1e-5)
    greedy = cap.greedy_decode(model, params, state, images)
    one, score = cap.beam_search(model, params, state, images, beam=1)
    np.testing.assert_array_equal(one, greedy)
    found = jnp.all(captions[None] == greedy[:, None], axis=-1)  # each greedy caption's row of the table
    np.testing.assert_allclose(score, jnp.sum(jnp.where(found, scores, 0.0), axis=1), rtol=1e-5)


def test_soft_attention_weights_sum_to_one_and_skip_masked_regions():
    rng = np.random.default_rng(0)
    params = {
        "wa": rng.normal(size=(5, 6)),
        "wh": rng.normal(size=(7, 6)),
        "b": rng.normal(size=6),
        "v": rng.normal(size=6),
    }
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    annotations = jnp.asarray(rng.normal(size=(3, 10, 5)), jnp.float32)
    h = jnp.asarray(rng.normal(size=(3, 7)), jnp.float32)
    mask = jnp.arange(10)[None, :] < jnp.array([[10], [4], [1]])
    z, alpha = jax.jit(cap.soft_attention)(params, annotations, h, mask)
    np.testing.assert_allclose(alpha.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.asarray(alpha)[~np.asarray(mask)] == 0.0) and np.all(np.asarray(alpha)[np.asarray(mask)] > 0)
    np.testing.assert_allclose(alpha[2, 0], 1.0)
    np.testing.assert_allclose(z, jnp.einsum("bl,bld->bd", alpha, annotations), rtol=1e-5)
    model, params, state, images = _tiny(cap.show_attend_tell)
    captions, maps = cap.caption_attention(model, params, state, images)
    assert maps.shape == (3, 3, 4, 4)
    np.testing.assert_array_equal(captions, cap.greedy_decode(model, params, state, images))
    np.testing.assert_allclose(maps.sum((2, 3)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("builder", [cap.show_tell, cap.show_attend_tell])
def test_padding_does_not_change_the_loss_and_metrics_are_per_example(builder):
    model, params, state, images = _tiny(builder)
    metrics = jax.jit(lambda y: model.metrics(params, state, images, y)[0])
    y = jnp.array([[1, 3, 4, 2], [1, 5, 2, 0], [1, 2, 0, 0]], jnp.int32)
    short, padded = metrics(y), metrics(jnp.pad(y, ((0, 0), (0, 5))))
    for name in short:
        assert short[name].shape == (3,)
        np.testing.assert_allclose(padded[name], short[name], rtol=1e-5)
    np.testing.assert_allclose(short["nll"], -_log_prob(model, params, images, y) / jnp.array([3, 2, 1]), rtol=1e-5)


def test_show_tell_learns_through_fit_on_integer_caption_targets():
    ds = C.shapes_captions.__wrapped__(32, 8, seed=2)
    model = cap.show_tell(ds.input_shape, ds.num_classes, embed=16, hidden=32, features=(4, 8))
    result = train.fit(
        model,
        ds.train_x,
        ds.train_y,
        optimizer=optax.adam(1e-2),
        epochs=25,
        batch_size=32,
        progress=False,
        log=lambda _: None,
    )
    nll = [record["train_nll"] for record in result.history]
    assert nll[-1] < 0.5 * nll[0] and result.history[-1]["train_accuracy"] > 0.5


def test_show_attend_tell_loss_falls_on_a_tiny_set():
    ds = C.shapes_captions.__wrapped__(32, 8, seed=2)
    model = cap.show_attend_tell(ds.input_shape, ds.num_classes, embed=16, hidden=32, attention=16, features=(4, 8))
    params, state = model_params(model, np.random.default_rng(0))
    optimizer = optax.adam(1e-2)

    def loss(params):
        metrics = model.metrics(params, state, ds.train_x, ds.train_y)[0]
        return metrics["loss"].mean(), metrics

    @jax.jit
    def step(params, opt_state):
        (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, metrics["nll"].mean(), metrics["accuracy"].mean()

    opt_state = optimizer.init(params)
    nll = []
    for _ in range(25):
        params, opt_state, value, accuracy = step(params, opt_state)
        nll.append(float(value))
    assert nll[-1] < 0.5 * nll[0] and accuracy > 0.5


def test_metrics_and_decoding_compile_once():
    model, params, state, images = _tiny(cap.show_attend_tell)
    traces = []

    @jax.jit
    def metrics(params, x, y):
        traces.append(1)
        return model.metrics(params, state, x, y)[0]

    y = jnp.array([[1, 3, 4, 2], [1, 5, 2, 0], [1, 2, 0, 0]], jnp.int32)
    for i in range(3):
        metrics(params, images + i, jnp.roll(y, i, axis=0))
        cap.greedy_decode(model, params, state, images + i)
    assert len(traces) == 1
    assert _decode_fn(model.objective.decoder, "greedy", 4)._cache_size() == 1


def test_bad_arguments_are_one_line_errors():
    model, params, state, images = _tiny(cap.show_tell)
    with pytest.raises(ValueError, match="integer captions"):
        model.metrics(params, state, images, jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="beam must be >= 1"):
        cap.beam_search(model, params, state, images, beam=0)
    with pytest.raises(ValueError, match=r"captions images of shape \(batch, 8, 8, 3\)"):
        cap.greedy_decode(model, params, state, images[:, :4])
    with pytest.raises(ValueError, match="no attention"):
        cap.caption_attention(model, params, state, images)
    with pytest.raises(ValueError, match="num_classes"):
        cap.show_tell(num_classes=3)
    with pytest.raises(ValueError, match="pair up"):
        cap.bleu([["a"]], ["a", "b"])
