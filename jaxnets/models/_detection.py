"""Boxes and a single-shot detector: pairwise IoU, fixed-shape non-maximum suppression, VOC-style average precision,
and ``yolo``, a grid detector in the spirit of YOLO v1 (Redmon et al. 2016) with its loss.

Boxes are ``(x_min, y_min, x_max, y_max)`` in pixels, the maxima exclusive: a box's area is
``(x_max - x_min) * (y_max - y_min)``. Ground truth comes padded to a fixed number of objects per image, label -1
marking padding (``data.mnist_canvases``' ``boxes`` and ``labels``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import PyTree, Shape

Array = jax.Array


def box_iou(a: Array, b: Array) -> Array:
    """Intersection over union of every box of ``a`` (..., n, 4) with every box of ``b`` (..., m, 4): (..., n, m);
    0 where both boxes are empty."""
    a, b = a[..., :, None, :], b[..., None, :, :]
    w = jnp.clip(jnp.minimum(a[..., 2], b[..., 2]) - jnp.maximum(a[..., 0], b[..., 0]), 0.0)
    h = jnp.clip(jnp.minimum(a[..., 3], b[..., 3]) - jnp.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = w * h
    union = _area(a) + _area(b) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _area(boxes: Array) -> Array:
    return jnp.clip(boxes[..., 2] - boxes[..., 0], 0.0) * jnp.clip(boxes[..., 3] - boxes[..., 1], 0.0)


def nms(
    boxes: Array,
    scores: Array,
    max_outputs: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    classes: Array | None = None,
) -> tuple[Array, Array]:
    """Greedy non-maximum suppression of one image's ``boxes`` (n, 4) by ``scores`` (n,), jit-able (fixed shapes):
    in order of decreasing score a box is kept unless its IoU with a kept box exceeds ``iou_threshold`` (with
    ``classes`` (n,): a kept box of the same class). Boxes scoring at most ``score_threshold`` are dropped.
    Returns ``(indices, valid)``, each (max_outputs,): the kept boxes' indices by decreasing score, ``valid``
    False on the padding (whose index is 0)."""
    n = boxes.shape[0]
    order = jnp.argsort(-scores)
    iou = box_iou(boxes[order], boxes[order])
    if classes is not None:
        iou = jnp.where(classes[order][:, None] == classes[order][None, :], iou, 0.0)
    candidate = scores[order] > score_threshold
    earlier = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]
    blocks = (iou > iou_threshold) & earlier  # blocks[i, j]: j before i and overlapping it

    def visit(i, keep):
        return keep.at[i].set(candidate[i] & ~jnp.any(keep & blocks[i]))

    keep = jax.lax.fori_loop(0, n, visit, jnp.zeros(n, bool))
    first = jnp.argsort(~keep, stable=True)[:max_outputs]  # kept ones first, in score order
    valid = keep[first]
    if first.shape[0] < max_outputs:
        pad = max_outputs - first.shape[0]
        first, valid = jnp.pad(first, (0, pad)), jnp.pad(valid, (0, pad))
    return jnp.where(valid, order[first], 0), valid


class Detections(NamedTuple):
    """Detections of a batch, ``k`` per image, by decreasing score: ``boxes`` (n, k, 4) in pixels, ``scores`` and
    ``classes`` (n, k), ``valid`` (n, k) False on padding."""

    boxes: Array
    scores: Array
    classes: Array
    valid: Array


def match_detections(
    detections: Detections, true_boxes: Array, true_labels: Array, iou_threshold: float = 0.5
) -> Array:
    """VOC's matching, per image (n, k) -> true positive flags: in order of decreasing score each valid detection is
    a true positive when its best-overlapping true box of its class (IoU >= ``iou_threshold``) is not yet taken by
    a higher-scoring detection, else a false positive (VOC does not fall back to the second-best box)."""

    def one(boxes, scores, classes, valid, tboxes, tlabels):
        order = jnp.argsort(jnp.where(valid, -scores, jnp.inf))
        iou = box_iou(boxes[order], tboxes)
        iou = jnp.where(classes[order][:, None] == tlabels[None, :], iou, -1.0)  # (padding labels are -1)
        best = jnp.argmax(iou, axis=1)

        def visit(i, carry):
            taken, tp = carry
            hit = valid[order[i]] & (iou[i, best[i]] >= iou_threshold) & ~taken[best[i]]
            return taken.at[best[i]].set(taken[best[i]] | hit), tp.at[order[i]].set(hit)

        init = (jnp.zeros(tboxes.shape[0], bool), jnp.zeros(boxes.shape[0], bool))
        return jax.lax.fori_loop(0, boxes.shape[0], visit, init)[1]

    return jax.vmap(one)(*detections, true_boxes, true_labels)


def average_precision(scores: np.ndarray, true_positive: np.ndarray, num_positives: int) -> float:
    """VOC's average precision of one class from its detections' ``scores`` and true-positive flags over a whole
    test set: the area under the precision-recall curve with precision made monotone (all-point interpolation,
    VOC 2010 onwards, not the 11-point form of VOC 2007). NaN when the class has no positives."""
    if num_positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.asarray(true_positive, np.float64)[order]
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = np.concatenate([[0.0], cum_tp / num_positives, [1.0]])
    precision = np.concatenate([[0.0], cum_tp / np.maximum(cum_tp + cum_fp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the best precision at any higher recall
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(
    detections: Detections, true_boxes, true_labels, num_classes: int, iou_threshold: float = 0.5
) -> tuple[float, np.ndarray]:
    """VOC mAP@``iou_threshold`` of a test set's ``detections`` (n, k) against its ``true_boxes`` (n, m, 4) and
    ``true_labels`` (n, m) (-1: padding): the mean of ``average_precision`` over the classes present; returns it and
    the per-class APs (NaN for a class without positives)."""
    true_labels = np.asarray(true_labels)
    tp = np.asarray(_match(detections, jnp.asarray(true_boxes), jnp.asarray(true_labels), iou_threshold))
    valid, classes, scores = (np.asarray(a) for a in (detections.valid, detections.classes, detections.scores))
    aps = np.array(
        [
            average_precision(scores[valid & (classes == c)], tp[valid & (classes == c)], int(np.sum(true_labels == c)))
            for c in range(num_classes)
        ]
    )
    return float(np.nanmean(aps)) if np.any(~np.isnan(aps)) else float("nan"), aps


_match = jax.jit(match_detections, static_argnums=3)


# --- YOLO ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YoloLoss:
    """YOLO v1's sum-squared loss over an S x S grid with ``boxes_per_cell`` predictors per cell (per example):
    ``lambda_coord`` x (centre and square roots of width and height) of the responsible predictor + (its confidence
    - its IoU with the true box)^2 + ``lambda_noobj`` x the other predictors' confidence^2 + the squared error of
    the class probabilities of cells holding an object centre. The responsible predictor of a cell is the one of
    highest IoU with the first true box whose centre falls in it (one object per cell, as in v1). ``y`` is
    ``{'boxes': (n, m, 4), 'labels': (n, m)}`` (label -1: padding). In evaluation it also gives the per-class
    counts of true and false positives by score bin and of true boxes (``ap_counts``) of which ``detection_summary``
    makes mAP@0.5."""

    boxes_per_cell: int = 2
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5

    def __call__(
        self,
        model: Model,
        params: PyTree,
        state: PyTree,
        x: Array,
        y: dict[str, Array],
        *,
        key: Array | None = None,
        train: bool = False,
    ) -> tuple[dict[str, Array], PyTree]:
        if not isinstance(y, dict) or set(y) != {"boxes", "labels"}:
            raise ValueError(f"{model.name}: targets must be a dict {{'boxes', 'labels'}} (mnist_canvas_detection)")
        outputs, state = model.apply(params, state, x, key=key, train=train)
        terms = jax.vmap(functools.partial(self._terms, x.shape[1:3]))(outputs, y["boxes"], y["labels"])
        metrics = {"loss": functools.reduce(jnp.add, terms.values()), **terms}
        if not train:
            decode = functools.partial(_decode, boxes_per_cell=self.boxes_per_cell, size=x.shape[1:3])
            detections = jax.vmap(decode)(outputs)
            metrics.update(ap_counts(detections, y["boxes"], y["labels"], outputs.shape[-1] - 5 * self.boxes_per_cell))
        return metrics, state

    def _terms(self, size: tuple[int, ...], outputs: Array, boxes: Array, labels: Array) -> dict[str, Array]:
        s_h, s_w, _ = outputs.shape
        pred, probs = _split_outputs(outputs, self.boxes_per_cell)  # (S, S, B, 5), (S, S, C)
        cell_h, cell_w = size[0] / s_h, size[1] / s_w
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        col = jnp.clip(jnp.floor(cx / cell_w), 0, s_w - 1).astype(jnp.int32)
        row = jnp.clip(jnp.floor(cy / cell_h), 0, s_h - 1).astype(jnp.int32)
        here = (labels >= 0)[:, None, None] & (jnp.arange(s_h)[None, :, None] == row[:, None, None])
        here = here & (jnp.arange(s_w)[None, None, :] == col[:, None, None])  # (m, S, S)
        has_obj = jnp.any(here, axis=0)
        first = jnp.argmax(here, axis=0)  # (S, S): the first object centred in each cell
        truth = boxes[first]  # (S, S, 4)
        target = jnp.stack(
            [
                (cx[first] / cell_w) - jnp.arange(s_w)[None, :],
                (cy[first] / cell_h) - jnp.arange(s_h)[:, None],
                jnp.sqrt(jnp.clip(truth[..., 2] - truth[..., 0], 0.0) / size[1]),
                jnp.sqrt(jnp.clip(truth[..., 3] - truth[..., 1], 0.0) / size[0]),
            ],
            axis=-1,
        )
        iou = jax.lax.stop_gradient(
            box_iou(_cell_boxes(pred, size), truth[:, :, None, :])[..., 0]  # (S, S, B)
        )
        responsible = has_obj[..., None] & jax.nn.one_hot(jnp.argmax(iou, -1), self.boxes_per_cell, dtype=bool)
        resp = responsible.astype(outputs.dtype)
        coord = jnp.sum(resp * jnp.sum(jnp.square(pred[..., :4] - target[:, :, None, :]), -1))
        classes = jax.nn.one_hot(labels[first], probs.shape[-1], dtype=outputs.dtype)
        return {
            "coord": self.lambda_coord * coord,
            "object": jnp.sum(resp * jnp.square(pred[..., 4] - iou)),
            "no_object": self.lambda_noobj * jnp.sum((1.0 - resp) * jnp.square(pred[..., 4])),
            "class": jnp.sum(has_obj[..., None] * jnp.square(probs - classes)),
        }


def _split_outputs(outputs: Array, boxes_per_cell: int) -> tuple[Array, Array]:
    """A grid of raw outputs (..., S, S, 5B + C) -> predictors (..., S, S, B, 5) (x and y offsets in the cell,
    sqrt width and height as fractions of the image, confidence; each squashed by a sigmoid) and class
    probabilities (..., S, S, C) (softmax). YOLO v1 left its outputs linear; squashing them keeps early training
    in range."""
    n = 5 * boxes_per_cell
    pred = jax.nn.sigmoid(outputs[..., :n]).reshape(*outputs.shape[:-1], boxes_per_cell, 5)
    return pred, jax.nn.softmax(outputs[..., n:], axis=-1)


def _cell_boxes(pred: Array, size: tuple[int, ...]) -> Array:
    """Predictors (S, S, B, 5) of one image -> their boxes in pixels (S, S, B, 4)."""
    s_h, s_w = pred.shape[:2]
    cx = (jnp.arange(s_w)[None, :, None] + pred[..., 0]) * (size[1] / s_w)
    cy = (jnp.arange(s_h)[:, None, None] + pred[..., 1]) * (size[0] / s_h)
    w, h = jnp.square(pred[..., 2]) * size[1], jnp.square(pred[..., 3]) * size[0]
    return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def yolo(
    input_shape: Shape = (64, 64, 1),
    num_classes: int = 10,
    features: tuple[int, ...] = (16, 32, 64),
    head: int = 128,
    boxes_per_cell: int = 2,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
) -> Model:
    """A YOLO v1-style detector scaled to small canvases: per entry of ``features`` a 3x3 convolution, batch norm,
    leaky ReLU (0.1) and 2x2 max-pooling, two 3x3 convolutions of ``head`` maps, then a 1x1 convolution to
    ``5 * boxes_per_cell + num_classes`` outputs per cell of an S x S grid, S = input size / 2^len(features)
    (8 x 8 cells of 8 pixels on 64 x 64 canvases). Trained with ``YoloLoss``; ``detect`` decodes its outputs; its
    test metrics include mAP@0.5 (``detection_summary``)."""
    check_sizes("yolo", input_shape=input_shape, num_classes=num_classes, features=features, head=head)
    check_sizes("yolo", boxes_per_cell=boxes_per_cell)
    if len(input_shape) != 3:
        raise ValueError(f"yolo takes images of shape (height, width, channels); got input_shape {input_shape}")
    he = nn.initializers.he_normal()

    def block(width: int, i: int) -> list[nn.Layer]:
        conv = nn.conv2d(width, 3, padding="SAME", use_bias=False, w_init=he, name=f"conv{i}")
        return [conv, nn.batch_norm(name=f"bn{i}"), nn.stateless("leaky_relu", lambda x: jax.nn.leaky_relu(x, 0.1))]

    layers = []
    for i, width in enumerate(features):
        layers += [*block(width, i), nn.max_pool(2, padding="SAME", name=f"pool{i}")]
    layers += block(head, len(features)) + block(head, len(features) + 1)
    layers.append(nn.conv2d(5 * boxes_per_cell + num_classes, 1, name="out"))
    return Model(
        "yolo",
        nn.serial(*layers),
        tuple(input_shape),
        head="linear",
        objective=YoloLoss(boxes_per_cell, lambda_coord, lambda_noobj),
        finalize=detection_summary,
    )


def detect(
    model: Model,
    params: PyTree,
    state: PyTree,
    x: Array,
    max_outputs: int = 16,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.5,
) -> Detections:
    """A ``yolo`` model's detections on images ``x``: every predictor's box scored by its confidence times its
    cell's highest class probability (v1's class-specific confidence), with that class, then per-class
    non-maximum suppression (``nms``) keeping at most ``max_outputs`` per image (jit-compiled)."""
    if not isinstance(model.objective, YoloLoss):
        raise ValueError(f"{model.name} is not a detector: build it with models.yolo")
    return _detect_fn(model, max_outputs, score_threshold, iou_threshold)(params, state, jnp.asarray(x))


@functools.lru_cache(maxsize=8)
def _detect_fn(model: Model, max_outputs: int, score_threshold: float, iou_threshold: float):
    assert isinstance(model.objective, YoloLoss)
    decode = functools.partial(
        _decode,
        boxes_per_cell=model.objective.boxes_per_cell,
        max_outputs=max_outputs,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
    )

    def run(params, state, x):
        outputs, _ = model.apply(params, state, x)
        return jax.vmap(functools.partial(decode, size=x.shape[1:3]))(outputs)

    return jax.jit(run)


def _decode(
    outputs: Array,
    *,
    size: tuple[int, ...],
    boxes_per_cell: int,
    max_outputs: int = 16,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.5,
) -> Detections:
    """One image's grid of outputs -> its detections (``detect``)."""
    pred, probs = _split_outputs(outputs, boxes_per_cell)
    boxes = _cell_boxes(pred, size).reshape(-1, 4)
    classes = jnp.broadcast_to(jnp.argmax(probs, -1)[:, :, None], pred.shape[:3]).reshape(-1)
    scores = (pred[..., 4] * jnp.max(probs, -1)[:, :, None]).reshape(-1)
    keep, valid = nms(boxes, scores, max_outputs, iou_threshold, score_threshold, classes)
    return Detections(boxes[keep], jnp.where(valid, scores[keep], 0.0), classes[keep], valid)


SCORE_BINS = 100  # ap_counts' bins of detection scores in [0, 1]
AP_COUNTS = ("ap_true_positives", "ap_false_positives", "ap_positives")


def ap_counts(
    detections: Detections, true_boxes: Array, true_labels: Array, num_classes: int, iou_threshold: float = 0.5
) -> dict[str, Array]:
    """Per image, what VOC AP needs, as fixed-shape counts that sum over a test set: true and false positives
    (``match_detections``) per class and score bin (``SCORE_BINS`` equal bins of [0, 1]), (n, classes, bins), and
    true boxes per class (n, classes)."""
    tp = match_detections(detections, true_boxes, true_labels, iou_threshold)
    bins = jax.nn.one_hot(jnp.clip((detections.scores * SCORE_BINS).astype(jnp.int32), 0, SCORE_BINS - 1), SCORE_BINS)
    classes = jax.nn.one_hot(detections.classes, num_classes) * detections.valid[..., None]
    return dict(
        zip(
            AP_COUNTS,
            (
                jnp.einsum("nk,nkc,nkb->ncb", tp.astype(bins.dtype), classes, bins),
                jnp.einsum("nk,nkc,nkb->ncb", (~tp).astype(bins.dtype), classes, bins),
                jax.nn.one_hot(true_labels, num_classes).sum(1),  # (label -1: no class)
            ),
            strict=True,
        )
    )


def detection_summary(means: dict[str, Array]) -> dict[str, Array]:
    """A detector's ``finalize``: the test-set means with ``ap_counts``' counts replaced by ``map``, the mean over
    classes with true boxes of VOC's all-point average precision computed on the score bins (detections in one
    bin count as one threshold step: equal to ``mean_average_precision`` when no bin holds two detections)."""
    tp, fp, positives = (means[k] for k in AP_COUNTS)
    cum_tp, cum_fp = jnp.cumsum(tp[:, ::-1], -1), jnp.cumsum(fp[:, ::-1], -1)  # highest scores first
    recall = cum_tp / jnp.maximum(positives, 1e-12)[:, None]
    precision = cum_tp / jnp.maximum(cum_tp + cum_fp, 1e-12)
    precision = jax.lax.cummax(precision, axis=1, reverse=True)
    gain = jnp.diff(recall, axis=1, prepend=0.0)
    ap = jnp.sum(gain * precision, axis=1)
    present = positives > 0
    out = {k: v for k, v in means.items() if k not in AP_COUNTS}
    return {**out, "map": jnp.sum(jnp.where(present, ap, 0.0)) / jnp.maximum(jnp.sum(present), 1)}
