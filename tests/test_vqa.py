"""Visual question answering: the Sort-of-CLEVR generator (answers re-derived from the pixels), the relation
module's invariance to the objects' order, question masking in the LSTM, each model's loss falling, the relational /
non-relational summary, and the easy-VQA loader (skipped without the easy-vqa package)."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import data, train, viz
from jaxnets.data import sort_of_clevr as soc
from jaxnets.models import (
    cnn_mlp,
    encode_question,
    object_pairs,
    question_type_summary,
    relation_module,
    relation_network,
    vqa_lstm_cnn,
    with_coordinates,
)


def test_generator_is_deterministic_by_seed_and_each_image_independent_of_the_count():
    x, y, centres, shapes = soc.generate(3, seed=5)
    x2, y2, _, _ = soc.generate(3, seed=5)
    x_few, y_few, _, _ = soc.generate(2, seed=5)
    x_other, _, _, _ = soc.generate(3, seed=6)
    assert x["image"].shape == (60, 75, 75, 3) and x["image"].dtype == np.uint8
    assert x["question"].shape == (60, 11) and y.shape == (60,) and y.dtype == np.int32
    assert centres.shape == (3, 6, 2) and shapes.shape == (3, 6)
    np.testing.assert_array_equal(x["image"], x2["image"])
    np.testing.assert_array_equal(x["question"], x2["question"])
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(x_few["image"], x["image"][:40])
    np.testing.assert_array_equal(y_few, y[:40])
    assert not np.array_equal(x_other["image"], x["image"])


def test_sort_of_clevr_dataset_holds_both_splits_and_their_scenes():
    ds = soc.sort_of_clevr_dataset(train_images=2, test_images=1, seed=3)
    assert ds.name == "sort_of_clevr" and ds.num_classes == len(ds.answers) == 10
    assert ds.input_shape == {"image": (75, 75, 3), "question": (11,)}
    assert len(ds.train_y) == 40 and len(ds.test_y) == 20
    assert ds.train_centres.shape == (2, 6, 2) and ds.test_shapes.shape == (1, 6)
    assert not np.array_equal(ds.test_x["image"][0], ds.train_x["image"][0])  # another split, other scenes


def _scene_from_pixels(image: np.ndarray) -> list[tuple[float, float, str]]:
    """Each colour's object as (x, y, shape) read off the image: the centroid of its pixels, and 'rectangle' for an
    11x11 block of 121 pixels, 'circle' for the 97 pixels within 5.5 of the centre."""
    objects = []
    for rgb in soc.RGB:
        rows, cols = np.nonzero(np.all(image == rgb, axis=-1))
        assert len(rows) in (121, 97), len(rows)
        objects.append((cols.mean(), rows.mean(), "rectangle" if len(rows) == 121 else "circle"))
    return objects


def _answer_by_hand(objects, question: np.ndarray) -> str:
    colour = list(question[:6]).index(1)
    subtype = list(question[8:]).index(1)
    x, y, shape = objects[colour]
    if question[6] == 1:  # non-relational
        return [shape, "yes" if x < 37.5 else "no", "yes" if y < 37.5 else "no"][subtype]
    if subtype == 2:
        return str(sum(o[2] == shape for o in objects))
    dist = [(ox - x) ** 2 + (oy - y) ** 2 for ox, oy, _ in objects]
    others = [k for k in range(6) if k != colour]
    pick = min(others, key=lambda k: dist[k]) if subtype == 0 else max(range(6), key=lambda k: dist[k])
    return objects[pick][2]


def test_answers_match_the_scene_read_off_the_pixels():
    x, y, centres, shapes = soc.generate(12, seed=1)
    for i in range(12):
        objects = _scene_from_pixels(x["image"][20 * i])
        np.testing.assert_allclose([o[:2] for o in objects], centres[i])
        assert [o[2] for o in objects] == [soc.SHAPES[s] for s in shapes[i]]
        for k in range(20 * i, 20 * i + 20):
            assert soc.ANSWERS[y[k]] == _answer_by_hand(objects, x["question"][k]), (i, k)
    assert set(y) >= {0, 1, 2, 3}  # yes, no and both shapes all occur


def test_objects_stay_inside_the_image_with_disjoint_boxes():
    _, _, centres, _ = soc.generate(30, seed=2)
    assert centres.min() >= 5 and centres.max() <= 69
    gaps = np.abs(centres[:, :, None] - centres[:, None]).max(-1) + 100 * np.eye(6)
    assert gaps.min() > 10


def test_question_vectors_are_one_hot_colour_type_and_subtype():
    x, _, _, _ = soc.generate(4, seed=3)
    q = x["question"]
    assert set(np.unique(q)) == {0.0, 1.0}
    for part in (slice(0, 6), slice(6, 8), slice(8, 11)):
        np.testing.assert_array_equal(q[:, part].sum(1), 1)
    relational = np.tile(np.repeat([0, 1], 10), 4)
    np.testing.assert_array_equal(q[:, soc.RELATIONAL_BIT], relational)
    red_left = np.array([1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0], np.float32)
    assert soc.describe(red_left) == "is the red object on the left?"
    count = np.array([0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1], np.float32)
    assert soc.describe(count) == "how many objects have the shape of the yellow one?"


def test_object_pairs_are_all_n_squared_ordered_pairs_with_the_question():
    objects = jnp.arange(2 * 3 * 2, dtype=jnp.float32).reshape(2, 3, 2)
    question = jnp.array([[7.0], [8.0]])
    pairs = object_pairs(objects, question)
    assert pairs.shape == (2, 9, 5)
    for i in range(3):
        for j in range(3):
            want = jnp.concatenate([objects[1, i], objects[1, j], question[1]])
            np.testing.assert_array_equal(pairs[1, 3 * i + j], want)


def test_relation_module_is_invariant_to_the_order_of_objects_with_their_coordinates():
    fmap = jax.random.normal(jax.random.key(0), (2, 3, 3, 4))
    objects = with_coordinates(fmap)
    assert objects.shape == (2, 9, 6)
    np.testing.assert_allclose(objects[0, 5, 4:], [1.0, 0.0])  # row 1, column 2: x = 1, y = 0
    question = jax.random.normal(jax.random.key(1), (2, 5))
    g = relation_module((16, 8))
    params, state, out = g.init(jax.random.key(2), {"objects": (9, 6), "question": (5,)})
    assert out == (8,)
    y, _ = g.apply(params, state, {"objects": objects, "question": question})
    perm = np.random.default_rng(0).permutation(9)
    y_perm, _ = g.apply(params, state, {"objects": objects[:, perm], "question": question})
    np.testing.assert_allclose(y_perm, y, rtol=1e-5, atol=1e-5)
    other, _ = g.apply(params, state, {"objects": objects.at[:, 0, :4].add(1.0), "question": question})
    assert not np.allclose(other, y, atol=1e-3)  # (it does depend on the objects)


@pytest.mark.parametrize("layers", [1, 2])
def test_question_encoding_ignores_trailing_padding(layers):
    model = vqa_lstm_cnn(
        {"image": (8, 8, 3), "question": (8,)}, vocab_size=10, channels=(4,), embed=6, hidden=5, lstm_layers=layers
    )
    params, _ = model.init(jax.random.key(0))
    encode = jax.jit(encode_question)
    ids = jnp.array([[3, 4, 5, 0, 0, 0, 0, 0], [2, 9, 9, 7, 6, 1, 0, 0]], jnp.int32)
    full = encode(params, ids)
    assert full.shape == (2, 5 if layers == 1 else 20)
    np.testing.assert_allclose(encode(params, ids[:, :6]), full, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(encode(params, ids[:1, :3]), full[:1], rtol=1e-6, atol=1e-6)
    shifted = encode(params, jnp.array([[3, 4, 0, 0, 0, 0, 0, 0]], jnp.int32))
    assert not np.allclose(shifted, full[:1], atol=1e-4)


def _losses(model, x, y, steps: int, lr: float) -> list[float]:
    """Adam on the whole (tiny) set for ``steps`` steps, dropout on: the training loss at each step."""
    params, state = model.init(jax.random.key(0))
    opt = optax.adam(lr)

    @jax.jit
    def step(params, state, opt_state, key):
        def loss(p):
            metrics, new_state = model.metrics(p, state, x, y, key=key, train=True)
            return jnp.mean(metrics["loss"]), new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    opt_state, out = opt.init(params), []
    for key in jax.random.split(jax.random.key(1), steps):
        params, state, opt_state, value = step(params, state, opt_state, key)
        out.append(float(value))
    return out


def test_vqa_lstm_cnn_loss_falls():
    rng = np.random.default_rng(0)
    x = {
        "image": rng.integers(0, 256, (32, 16, 16, 3)).astype(np.uint8),
        "question": np.where(np.arange(5) < rng.integers(2, 6, (32, 1)), rng.integers(2, 12, (32, 5)), 0),
    }
    y = (x["question"][:, 0] + (x["image"][:, 0, 0, 0] > 127)) % 4
    model = vqa_lstm_cnn(
        {"image": (16, 16, 3), "question": (5,)},
        4,
        vocab_size=12,
        channels=(8,),
        embed=8,
        hidden=16,
        fusion=16,
        mlp_hidden=16,
        dropout=0.0,
    )
    losses = _losses(model, x, jnp.asarray(y, jnp.int32), 40, 1e-2)
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("builder", [relation_network, cnn_mlp])
def test_sort_of_clevr_models_loss_falls(builder):
    x, y, _, _ = soc.generate(1, seed=0)
    options = {"g_widths": (32, 32)} if builder is relation_network else {}
    model = builder(conv_features=8, f_widths=(32,), dropout=0.0, **options)
    losses = _losses(model, x, jnp.asarray(y), 25, 1e-2)
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses


def test_question_type_summary_splits_relational_and_non_relational_accuracy():
    # 4 questions: 3 relational (2 right), 1 non-relational (wrong): means over the 4
    means = {
        "loss": jnp.array(1.0),
        "accuracy": jnp.array(0.5),
        "relational": jnp.array(0.75),
        "relational_correct": jnp.array(0.5),
    }
    out = question_type_summary(means)
    assert set(out) == {"loss", "accuracy", "relational_accuracy", "nonrelational_accuracy"}
    np.testing.assert_allclose([out["relational_accuracy"], out["nonrelational_accuracy"]], [2 / 3, 0.0])


def test_evaluation_of_a_sort_of_clevr_model_reports_both_accuracies():
    x, y, _, _ = soc.generate(2, seed=4)
    model = cnn_mlp(conv_features=4, f_widths=(8,))
    params, state = model.init(jax.random.key(0))
    metrics = train.evaluate(model, params, state, x, y, batch_size=16)  # (a padded last batch)
    assert set(metrics) == {"loss", "accuracy", "relational_accuracy", "nonrelational_accuracy"}
    relational = x["question"][:, soc.RELATIONAL_BIT] == 1
    logits, _ = model.apply(params, state, x)
    correct = np.asarray(jnp.argmax(logits, -1)) == y
    np.testing.assert_allclose(metrics["relational_accuracy"], correct[relational].mean(), atol=1e-6)
    np.testing.assert_allclose(metrics["nonrelational_accuracy"], correct[~relational].mean(), atol=1e-6)


def test_write_images_draws_questions_answers_and_predictions(tmp_path):
    x, y, _, _ = soc.generate(1, seed=2)
    model = cnn_mlp(conv_features=4, f_widths=(8,))
    params, state = model.init(jax.random.key(0))
    (path,) = viz.write_images(model, params, state, x, tmp_path, n=8, y=y)
    assert path.name == viz.VQA and path.stat().st_size > 10_000
    assert viz.question_text(x["question"][13]) == "what shape is the object closest to the blue one?"
    assert "sort_of_clevr" in data.DATASETS and data.DATASETS.keys() >= {"easy_vqa", "babi:1", "babi:7:10k"}


@pytest.mark.skipif(importlib.util.find_spec("easy_vqa") is None, reason="easy-VQA needs the easy-vqa package")
def test_easy_vqa_loader_shapes_vocabulary_and_answers():
    from jaxnets.data.vqa import decode, easy_vqa, encode

    ds = easy_vqa()
    assert ds.train_x["image"].shape == (38575, 64, 64, 3) and ds.train_x["image"].dtype == np.uint8
    assert ds.train_x["question"].shape == (38575, 9) and ds.train_x["question"].dtype == np.int32
    assert ds.test_x["question"].shape == (9673, 9) and ds.num_classes == len(ds.answers) == 13
    assert ds.vocab[:2] == ("<pad>", "<unk>") and len(set(ds.vocab)) == len(ds.vocab)
    assert decode(ds.train_x["question"][0], ds.vocab) == "what is the blue shape?"
    assert ds.answers[ds.train_y[0]] == "rectangle"
    assert encode(["What is the PURPLE shape?"], ds.vocab, 6)[0].tolist()[:5] == [
        ds.vocab.index("what"),
        ds.vocab.index("is"),
        ds.vocab.index("the"),
        1,
        ds.vocab.index("shape"),
    ]
    q = ds.train_x["question"]
    assert ((q[:, 1:] == 0) | (q[:, :-1] != 0)).all()  # padding only after the words
    r, g, b = np.moveaxis(ds.train_x["image"][0].astype(int), -1, 0)
    assert ((b > r + 50) & (b > g + 50)).mean() > 0.05  # the blue rectangle


@pytest.mark.parametrize("builder", [vqa_lstm_cnn, relation_network, cnn_mlp])
def test_builders_reject_inputs_that_are_not_an_image_and_a_question(builder):
    with pytest.raises(ValueError, match="input_shape must be a dict with keys 'image' and 'question'"):
        builder((75, 75, 3))
    with pytest.raises(ValueError, match=r"a question \(length,\)"):
        builder({"image": (75, 75, 3), "question": (11, 2)})
