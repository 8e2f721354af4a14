"""MNIST canvases for dense vision (segmentation, localisation, detection, super-resolution), generated offline.

``mnist_canvases`` scales MNIST digits (a random factor in ``SCALES``, antialiased bilinear resampling) and places
them at random positions on a black canvas, later digits on top (the image is the pixelwise maximum of the inks);
each pixel's class is that of the topmost digit whose ink there exceeds ``INK`` (0 = background, ``1 + d`` for digit
``d``), and each digit's box is the tight box of its own scaled ink above ``INK``, whether or not a later digit hides
part of it. ``clutter`` adds small crops of other digits that are in neither the masks nor the boxes.

The datasets ``mnist_canvas*`` (``CANVAS``) are made from the MNIST source files (``load_tfds('mnist')``, offline
from the manual dir): ``TRAIN_COUNT`` training canvases from the training digits only and ``TEST_COUNT`` test
canvases from the test digits only, ``SIZE`` x ``SIZE``, 1-4 digits (one for ``mnist_canvas_single``), seeds fixed,
and kept in memory per process once made. The super-resolution datasets (``SUPERRES_DATASETS``: ``mnist_canvas_sr``
x2, ``mnist_canvas_sr3`` x3) are those canvases made into pairs by ``superres_pairs`` (bicubic downsampling).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from jaxnets.data.base import CANVAS, Dataset
from jaxnets.data.superres import superres_pairs
from jaxnets.data.tfds_source import load_tfds

SCALES = (0.7, 1.6)  # range of a digit's scale factor (28 pixels -> 20..45)
INK = 0.3  # a pixel belongs to a digit (mask, box) where its ink exceeds this
CLUTTER = (1, 5)  # clutter pieces per canvas: at least, below
CLUTTER_SIDE = 8  # side of a clutter crop in pixels (from the middle half of a digit image, where its ink is)
SIZE, TRAIN_COUNT, TEST_COUNT = 64, 20_000, 2_000
TRAIN_SEED, TEST_SEED = 0, 1
SUPERRES_DATASETS = {"mnist_canvas_sr": 2, "mnist_canvas_sr3": 3}  # name -> scale (x: the low-resolution canvas)
_CHUNK = 1000  # canvases drawn at a time (bounds the scratch memory)


@dataclass(frozen=True)
class Canvases:
    """Generated canvases: ``images`` (n, size, size, 1) float32 in [0, 1]; ``masks`` (n, size, size) int32, 0 for
    background and ``1 + d`` for digit ``d``; ``boxes`` (n, max_digits, 4) float32 ``(x_min, y_min, x_max, y_max)``
    in pixels (max exclusive), zero for padding; ``labels`` (n, max_digits) int32 digit classes, -1 for padding."""

    images: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class CanvasDataset(Dataset):
    """A ``Dataset`` made of canvases, with the ``Canvases`` behind its train and test examples (boxes, labels)."""

    train_canvases: Canvases | None = None
    test_canvases: Canvases | None = None


def _unit_digits(digits: np.ndarray) -> np.ndarray:
    """(m, 28, 28[, 1]) uint8 or [0, 1] floats -> (m, h, w) float32 in [0, 1]."""
    x = np.asarray(digits)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"digits must have shape (m, height, width) or (m, height, width, 1); got {np.shape(digits)}")
    return x.astype(np.float32) / 255.0 if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def _resample_weights(sides: np.ndarray, source: int, out: int) -> np.ndarray:
    """(n, out, source) linear-interpolation weights resizing ``source`` pixels to ``sides[i]`` (rows past it zero),
    antialiased when shrinking (a triangle kernel widened to the source spacing, as ``jax.image.resize``)."""
    scale = sides[:, None, None].astype(np.float32) / source
    centre = (np.arange(out, dtype=np.float32)[None, :, None] + 0.5) / scale - 0.5
    width = np.maximum(1.0, 1.0 / scale)
    w = np.maximum(0.0, 1.0 - np.abs(centre - np.arange(source, dtype=np.float32)) / width)
    w /= np.maximum(w.sum(-1, keepdims=True), 1e-12)
    return np.where(np.arange(out)[None, :, None] < sides[:, None, None], w, 0.0).astype(np.float32)


def _paste(layer: np.ndarray, patches: np.ndarray, top: np.ndarray, left: np.ndarray) -> None:
    """Write each ``patches[i]`` (n, p, p) into ``layer[i]`` (n, size + p, size + p) at (top[i], left[i])."""
    p = patches.shape[1]
    rows = (top[:, None] + np.arange(p))[:, :, None]
    cols = (left[:, None] + np.arange(p))[:, None, :]
    layer[np.arange(len(layer))[:, None, None], rows, cols] = patches


def mnist_canvases(
    digits: np.ndarray,
    digit_labels: np.ndarray,
    count: int,
    *,
    size: int = 64,
    min_digits: int = 1,
    max_digits: int = 4,
    clutter: bool = False,
    seed: int = 0,
) -> Canvases:
    """``count`` canvases of ``size`` x ``size`` with ``min_digits``..``max_digits`` of ``digits`` (m, 28, 28[, 1],
    uint8 or floats in [0, 1]; classes ``digit_labels``) each, drawn with replacement, scaled by a factor in
    ``SCALES`` (capped so a digit fits) and placed anywhere on the canvas, overlaps allowed; ``clutter`` adds 1-4
    crops of other digits. The same arguments give the same canvases (see the module docstring)."""
    x = _unit_digits(digits)
    y = np.asarray(digit_labels).astype(np.int32).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"digit_labels must have one label per digit ({len(x)}); got {len(y)}")
    if count < 0:
        raise ValueError(f"count must be >= 0; got {count}")
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"need 1 <= min_digits <= max_digits; got min_digits {min_digits}, max_digits {max_digits}")
    if size < CLUTTER_SIDE or min(x.shape[1:]) < CLUTTER_SIDE:
        raise ValueError(f"size and the digits' sides must be >= {CLUTTER_SIDE}; got {size} and {x.shape[1:]}")
    rng = np.random.default_rng(seed)
    m, h, w = x.shape
    pieces = rng.integers(*CLUTTER, count) if clutter else np.zeros(count, np.int64)
    crops = [  # (digit, crop top, crop left, canvas top, canvas left) of each clutter slot
        (
            rng.integers(0, m, count),
            *rng.integers((h - CLUTTER_SIDE) // 4, h - CLUTTER_SIDE - (h - CLUTTER_SIDE) // 4 + 1, (2, count)),
            *rng.integers(0, size - CLUTTER_SIDE + 1, (2, count)),
        )
        for _ in range(CLUTTER[1] - 1 if clutter else 0)
    ]
    shown = rng.integers(min_digits, max_digits + 1, count)
    placed = []  # (digit, side, top, left) of each digit slot
    for _ in range(max_digits):
        which = rng.integers(0, m, count)
        sides = np.minimum(np.rint(rng.uniform(*SCALES, count) * max(h, w)).astype(np.int64), size)
        placed.append((which, sides, rng.integers(0, size - sides + 1), rng.integers(0, size - sides + 1)))
    out = Canvases(
        np.zeros((count, size, size, 1), np.float32),
        np.zeros((count, size, size), np.int32),
        np.zeros((count, max_digits, 4), np.float32),
        np.full((count, max_digits), -1, np.int32),
    )
    for start in range(0, count, _CHUNK):
        rows = slice(start, start + _CHUNK)
        chunk = [tuple(a[rows] for a in slot) for slot in crops], [tuple(a[rows] for a in slot) for slot in placed]
        _render(out, rows, x, y, pieces[rows], shown[rows], *chunk)
    return out


def _render(out: Canvases, rows: slice, x: np.ndarray, y: np.ndarray, pieces, shown, crops, placed) -> None:
    """Draw canvases ``rows`` of ``out`` in place from the slots drawn by ``mnist_canvases``."""
    n, size = len(shown), out.masks.shape[1]
    _, h, w = x.shape
    p = min(size, int(np.ceil(max(h, w) * SCALES[1])))  # patch side: the largest scaled digit
    image, mask = out.images[rows, ..., 0], out.masks[rows]
    layer = np.zeros((n, size + p, size + p), np.float32)
    for k, (which, crop_top, crop_left, top, left) in enumerate(crops):
        r = (crop_top[:, None] + np.arange(CLUTTER_SIDE))[:, :, None]
        c = (crop_left[:, None] + np.arange(CLUTTER_SIDE))[:, None, :]
        layer[:] = 0
        _paste(layer, x[which[:, None, None], r, c] * (k < pieces)[:, None, None], top, left)
        np.maximum(image, layer[:, :size, :size], out=image)
    first = lambda a: np.argmax(a, 1)  # noqa: E731
    last = lambda a: p - np.argmax(a[:, ::-1], 1)  # noqa: E731
    for k, (which, sides, top, left) in enumerate(placed):
        ink = _resample_weights(sides, h, p) @ x[which] @ _resample_weights(sides, w, p).transpose(0, 2, 1)
        on = k < shown
        ink *= on[:, None, None]
        layer[:] = 0
        _paste(layer, ink, top, left)
        np.maximum(image, layer[:, :size, :size], out=image)
        mask[:] = np.where(layer[:, :size, :size] > INK, 1 + y[which][:, None, None], mask)
        rows_in, cols_in = (ink > INK).any(2), (ink > INK).any(1)  # (n, p) each
        has = on & rows_in.any(1)
        box = np.stack([left + first(cols_in), top + first(rows_in), left + last(cols_in), top + last(rows_in)], 1)
        out.boxes[rows, k] = np.where(has[:, None], box, 0)
        out.labels[rows, k] = np.where(has, y[which], -1)
    np.minimum(image, 1.0, out=image)  # (interpolation round-off)


@functools.lru_cache(maxsize=4)
def _mnist_canvases(data_dir: str | None, manual_dir: str | None, progress: bool, single: bool):
    train_x, train_y, test_x, test_y, _ = load_tfds(
        "mnist", data_dir=data_dir, manual_dir=manual_dir, progress=progress
    )
    most = 1 if single else 4
    train = mnist_canvases(train_x, train_y, TRAIN_COUNT, size=SIZE, max_digits=most, seed=TRAIN_SEED)
    test = mnist_canvases(test_x, test_y, TEST_COUNT, size=SIZE, max_digits=most, seed=TEST_SEED)
    return train, test


def load_canvas(
    name: str, data_dir: str | None = None, manual_dir: str | None = None, progress: bool = True
) -> CanvasDataset:
    """The canvas dataset ``name`` (one of ``CANVAS``), made from MNIST read as ``load_tfds`` does (``data_dir``,
    ``manual_dir``, ``progress``); the canvases are made once per process. ``x`` is the canvas (float32 in [0, 1])
    except for the super-resolution sets ``SUPERRES_DATASETS`` (its ``superres_pairs(canvases, scale).low``);
    ``y``: 'mnist_canvas' the mask, '_single' the digit's class, '_detection' ``{'boxes', 'labels'}``, '_sr' and
    '_sr3' the canvas cropped to a multiple of the scale (``.high``: 64x64 for x2, 63x63 for x3)."""
    if name not in CANVAS:
        raise ValueError(f"unknown canvas dataset {name!r}; choose one of {sorted(CANVAS)}")
    train, test = _mnist_canvases(data_dir, manual_dir, progress, name == "mnist_canvas_single")
    if name in SUPERRES_DATASETS:
        scale = SUPERRES_DATASETS[name]
        (train_low, train_high), (test_low, test_high) = _pairs(train.images, scale), _pairs(test.images, scale)
        return CanvasDataset(
            name, train_low, train_high, test_low, test_high, 1, train_canvases=train, test_canvases=test
        )
    parts: dict[str, tuple[object, object, object, object, int]] = {
        "mnist_canvas": (train.images, train.masks, test.images, test.masks, 11),
        "mnist_canvas_single": (train.images, train.labels[:, 0], test.images, test.labels[:, 0], 10),
        "mnist_canvas_detection": (
            train.images,
            {"boxes": train.boxes, "labels": train.labels},
            test.images,
            {"boxes": test.boxes, "labels": test.labels},
            10,
        ),
    }
    return CanvasDataset(name, *parts[name], train_canvases=train, test_canvases=test)  # type: ignore[arg-type]


def _pairs(images: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of ``superres_pairs``, made ``_CHUNK`` canvases at a time (bounds the scratch memory)."""
    pairs = [superres_pairs(images[i : i + _CHUNK], scale) for i in range(0, len(images), _CHUNK)]
    return np.concatenate([p.low for p in pairs]), np.concatenate([p.high for p in pairs])
