"""Boxes and detection: IoU, non-maximum suppression, VOC matching and AP against hand-computed values, the YOLO loss
on a one-cell case, its gradients, and a tiny YOLO trained by fit with a falling loss."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import models, nn, train
from jaxnets.models import Detections


def boxes(*rows):
    return jnp.asarray(rows, jnp.float32)


def test_box_iou_by_hand():
    a = boxes([0, 0, 2, 2], [0, 0, 10, 10], [5, 5, 5, 9])  # the last one empty
    b = boxes([1, 1, 3, 3], [2, 0, 4, 2], [0, 0, 10, 10])
    want = [[1 / 7, 0.0, 4 / 100], [4 / 100, 4 / 100, 1.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(models.box_iou(a, b), want, rtol=1e-6)
    assert models.box_iou(a[None], b[None]).shape == (1, 3, 3)  # batched


def test_nms_is_greedy_by_score_and_pads_to_a_fixed_size():
    # A suppresses B (IoU 70/130 > 0.5); C overlaps B as much but not A (IoU 40/160), so it survives B's removal.
    b = boxes([0, 3, 10, 13], [0, 0, 10, 10], [0, 6, 10, 16], [50, 50, 60, 60])
    scores = jnp.asarray([0.8, 0.9, 0.7, 0.05])
    idx, valid = jax.jit(models.nms, static_argnums=2)(b, scores, 5, 0.5, 0.1)
    assert idx.tolist() == [1, 2, 0, 0, 0] and valid.tolist() == [True, True, False, False, False]
    idx, valid = models.nms(b, scores, 2, score_threshold=0.0)  # fewer outputs than kept boxes: the best ones
    assert idx.tolist() == [1, 2] and valid.all()


def test_nms_with_classes_suppresses_within_a_class_only():
    b = boxes([0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 11, 11])
    scores, classes = jnp.asarray([0.9, 0.95, 0.8]), jnp.asarray([0, 1, 0])
    idx, valid = models.nms(b, scores, 3, classes=classes)
    assert idx[valid].tolist() == [1, 0]
    idx, valid = models.nms(b, scores, 3)
    assert idx[valid].tolist() == [1]


def test_average_precision_all_point_interpolation_by_hand():
    # 3 positives; precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3: AP = 1/3 * 1 + 1/3 * 2/3 (recall 1 never
    # reached) = 5/9. The order of the inputs does not matter, only the scores.
    ap = models.average_precision(np.array([0.6, 0.9, 0.7, 0.8]), np.array([0, 1, 1, 0]), 3)
    assert ap == pytest.approx(5 / 9)
    assert models.average_precision(np.array([0.5]), np.array([1]), 1) == pytest.approx(1.0)
    assert math.isnan(models.average_precision(np.array([0.5]), np.array([0]), 0))


def test_voc_matching_and_map_by_hand():
    # image 0: class 0 at A, class 1 at B; image 1: class 0 at C. (-1: padding)
    true_boxes = jnp.asarray([[[0, 0, 10, 10], [20, 20, 30, 30]], [[5, 5, 15, 15], [0, 0, 0, 0]]], jnp.float32)
    true_labels = jnp.asarray([[0, 1], [0, -1]])
    det = Detections(
        boxes=jnp.asarray(
            [
                [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 0, 0]],
                [[30, 30, 40, 40], [5, 5, 15, 15], [5, 5, 15, 15], [5, 5, 15, 15]],
            ],
            jnp.float32,
        ),
        scores=jnp.asarray([[0.9, 0.8, 0.3, 0.0], [0.85, 0.5, 0.4, 0.99]]),
        classes=jnp.asarray([[0, 0, 1, 0], [0, 0, 1, 0]]),
        valid=jnp.asarray([[True, True, True, False], [True, True, True, False]]),
    )
    tp = jax.jit(models.match_detections)(det, true_boxes, true_labels)
    # the duplicate of A is a false positive (A taken); class 1 at C has no true box; padding is never a hit
    assert tp.tolist() == [[True, False, True, False], [False, True, False, False]]
    # class 0: 2 positives, by score TP FP FP TP: AP = 1/2 * 1 + 1/2 * 1/2 = 3/4; class 1: by score FP (0.4, image
    # 1) then TP (0.3): AP = 1 * 1/2; class 2: no positives (NaN, left out of the mean).
    map_, aps = models.mean_average_precision(det, true_boxes, true_labels, num_classes=3)
    np.testing.assert_allclose(aps[:2], [0.75, 0.5])
    assert math.isnan(aps[2]) and map_ == pytest.approx(0.625)
    # fit's form: counts per image by score bin, averaged over images, then finalized (no two scores share a bin)
    counts = jax.jit(models.ap_counts, static_argnums=3)(det, true_boxes, true_labels, 3)
    assert counts["ap_true_positives"].shape == (2, 3, 100)
    assert counts["ap_positives"].tolist() == [[1, 1, 0], [1, 0, 0]]
    summary = models.detection_summary({"loss": jnp.ones(()), **{k: v.mean(0) for k, v in counts.items()}})
    assert set(summary) == {"loss", "map"} and float(summary["map"]) == pytest.approx(0.625)


def fixed_output_model(outputs: np.ndarray, size: int = 8) -> models.Model:
    """A 'yolo' whose network ignores its input and outputs ``outputs`` (S, S, 5B + C) for every image."""
    out = jnp.asarray(outputs, jnp.float32)
    layer = nn.stateless("fixed", lambda x: jnp.broadcast_to(out, (x.shape[0], *out.shape)), lambda s: out.shape)
    return models.Model("yolo", layer, (size, size, 1), head="linear", objective=models.YoloLoss(2))


def test_yolo_loss_on_one_cell_by_hand():
    # Raw outputs 0: both predictors at the cell centre (x = y = 0.5), sqrt w = sqrt h = 0.5 (a 2x2 box on an 8x8
    # image: [3, 3, 5, 5]), confidence 0.5; class probabilities 1/2 each. Truth: class 0 at [2, 2, 6, 6].
    model = fixed_output_model(np.zeros((1, 1, 12)))
    y = {"boxes": jnp.asarray([[[2, 2, 6, 6], [0, 0, 0, 0]]], jnp.float32), "labels": jnp.asarray([[0, -1]])}
    metrics, _ = model.metrics({}, {}, jnp.zeros((1, 8, 8, 1)), y, train=True)  # (the loss terms only)
    root = math.sqrt(4 / 8)
    want = {
        "coord": 5.0 * 2 * (0.5 - root) ** 2,  # x, y exact; sqrt w and sqrt h off by 0.5 - sqrt(1/2)
        "object": (0.5 - 0.25) ** 2,  # the responsible predictor (the first of two equals) against IoU 4/16
        "no_object": 0.5 * 0.5**2,  # the other predictor
        "class": (0.5 - 1) ** 2 + 0.5**2,
    }
    for k, v in want.items():
        assert float(metrics[k][0]) == pytest.approx(v, rel=1e-5), k
    assert float(metrics["loss"][0]) == pytest.approx(sum(want.values()), rel=1e-5)
    empty = {"boxes": jnp.zeros((1, 2, 4)), "labels": jnp.asarray([[-1, -1]])}
    metrics, _ = model.metrics(
        {}, {}, jnp.zeros((1, 8, 8, 1)), empty, train=True
    )  # no object: only no-object confidence
    assert float(metrics["loss"][0]) == pytest.approx(0.5 * 2 * 0.25)


def test_detect_decodes_boxes_and_scores():
    raw = np.full((2, 2, 12), -20.0)  # confidence ~0 everywhere but one predictor of cell (row 1, col 0)
    raw[1, 0, 5:10] = [0.0, 0.0, 0.0, 0.0, 20.0]  # second predictor: centre of the cell (2, 6), 2x2 box, confidence 1
    raw[1, 0, 10:] = [0.0, 5.0]  # class 1
    model = fixed_output_model(raw)
    det = models.detect(model, {}, {}, jnp.zeros((3, 8, 8, 1)), max_outputs=2, score_threshold=0.1)
    assert det.valid.tolist() == [[True, False]] * 3 and det.classes[:, 0].tolist() == [1, 1, 1]
    np.testing.assert_allclose(det.boxes[0, 0], [1.0, 5.0, 3.0, 7.0], atol=1e-5)
    assert float(det.scores[0, 0]) == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-5)


def squares(n: int, size: int = 16, seed: int = 0):
    """Images with one bright square (class 0: 4x4, class 1: 6x6) and their box targets padded to 2 objects."""
    rng = np.random.default_rng(seed)
    x, b, lab = np.zeros((n, size, size, 1), np.float32), np.zeros((n, 2, 4), np.float32), -np.ones((n, 2), np.int32)
    for i in range(n):
        c = int(rng.integers(2))
        side = 4 + 2 * c
        r, q = rng.integers(0, size - side + 1, 2)
        x[i, r : r + side, q : q + side] = 1.0
        b[i, 0], lab[i, 0] = (q, r, q + side, r + side), c
    return x, {"boxes": b, "labels": lab}


def test_yolo_gradients_are_finite_and_fit_lowers_its_loss():
    model = models.yolo((16, 16, 1), 2, features=(4,), head=8)
    x, y = squares(64)
    test_x, test_y = x[:32], jax.tree.map(lambda a: a[:32], y)
    params, state = model.init(jax.random.key(0))

    def loss(p):
        y8 = jax.tree.map(lambda a: jnp.asarray(a[:8]), y)
        return model.metrics(p, state, jnp.asarray(x[:8]), y8, train=True)[0]["loss"].mean()

    grads = jax.jit(jax.grad(loss))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(optax.tree.norm(grads)) > 0
    result = train.fit(
        model,
        x,
        y,
        test_x,
        test_y,
        optimizer=optax.adam(3e-3),
        epochs=6,
        batch_size=16,
        progress=False,
        log=lambda _: None,
    )
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < 0.7 * first["train_loss"], (first, last)
    det = models.detect(model, result.state.params, result.state.model_state, test_x)
    exact, _ = models.mean_average_precision(det, test_y["boxes"], test_y["labels"], 2)
    assert 0.0 <= last["test_map"] <= 1.0 and last["test_map"] == pytest.approx(exact, abs=0.05)
