"""The MNIST canvas generator (jaxnets.data.canvas): determinism, masks against boxes, clutter, the datasets made
from the train and test digits separately. Synthetic digits throughout: the MNIST files are never needed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax
import numpy as np
import pytest

from jaxnets import data
from jaxnets.data import canvas


def fake_digits(count: int = 30, seed: int = 0, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` 28x28 uint8 'digits': a random filled rectangle (ink 255, soft 128 rim) inside the usual 4-pixel
    margin, labels cycling from ``offset``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((count, 28, 28), np.uint8)
    for i in range(count):
        top, left = rng.integers(4, 10, 2)
        bottom, right = rng.integers(16, 24, 2)
        x[i, top - 1 : bottom + 1, left - 1 : right + 1] = 128
        x[i, top:bottom, left:right] = 255
    return x, (np.arange(count) + offset) % 10


def test_same_seed_same_canvases_other_seed_others():
    digits, labels = fake_digits()
    a = canvas.mnist_canvases(digits, labels, 12, size=48, seed=3, clutter=True)
    b = canvas.mnist_canvases(digits, labels, 12, size=48, seed=3, clutter=True)
    c = canvas.mnist_canvases(digits, labels, 12, size=48, seed=4, clutter=True)
    for field in ("images", "masks", "boxes", "labels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (12, 48, 48, 1) and a.images.dtype == np.float32
    assert a.masks.shape == (12, 48, 48) and a.masks.dtype == np.int32
    assert a.boxes.shape == (12, 4, 4) and a.boxes.dtype == np.float32
    assert a.labels.shape == (12, 4) and a.labels.dtype == np.int32
    assert a.images.min() >= 0 and a.images.max() <= 1


def test_digit_counts_padding_and_box_bounds():
    digits, labels = fake_digits()
    c = canvas.mnist_canvases(digits, labels, 40, size=40, min_digits=2, max_digits=3, seed=1)
    shown = (c.labels >= 0).sum(1)
    assert shown.min() == 2 and shown.max() == 3  # (each rectangle has ink, so every placed digit is shown)
    np.testing.assert_array_equal(c.boxes[c.labels < 0], 0)
    live = c.boxes[c.labels >= 0]
    assert (live[:, 0] < live[:, 2]).all() and (live[:, 1] < live[:, 3]).all()
    assert live.min() >= 0 and live.max() <= 40
    sides = live[:, 2:] - live[:, :2]  # rectangles of 9-21 ink pixels (rim included) scaled by 0.7-1.6
    assert sides.min() >= 0.7 * 9 - 1 and sides.max() <= 1.6 * 21 + 2


def test_every_mask_pixel_lies_in_a_box_of_its_class():
    digits, labels = fake_digits()
    c = canvas.mnist_canvases(digits, labels, 30, size=48, seed=2, clutter=True)
    rows, cols = np.mgrid[0:48, 0:48]
    for i in range(len(c.masks)):
        covered = np.zeros((48, 48), bool)
        for (x0, y0, x1, y1), d in zip(c.boxes[i], c.labels[i], strict=True):
            if d >= 0:
                inside = (cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1)
                covered |= inside & (c.masks[i] == d + 1)
        assert covered.sum() == (c.masks[i] > 0).sum(), f"canvas {i}: a mask pixel outside its digit's box"
    assert set(np.unique(c.masks)) <= set(range(11)) and (c.masks > 0).any()


def test_a_lone_digit_box_is_the_tight_box_of_its_mask_and_clutter_stays_out():
    digits, labels = fake_digits()
    plain = canvas.mnist_canvases(digits, labels, 20, size=48, max_digits=1, seed=5)
    for i in range(20):
        ys, xs = np.nonzero(plain.masks[i])
        np.testing.assert_array_equal(plain.boxes[i, 0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert set(np.unique(plain.masks[i])) == {0, plain.labels[i, 0] + 1}
    cluttered = canvas.mnist_canvases(digits, labels, 20, size=48, max_digits=1, seed=5, clutter=True)
    ink_outside = (cluttered.images[..., 0] > canvas.INK) & (cluttered.masks == 0)
    assert ink_outside.any(axis=(1, 2)).mean() >= 0.8  # clutter ink (unless the digit hides it), not in the masks


def test_bad_arguments_are_one_line_errors():
    digits, labels = fake_digits()
    with pytest.raises(ValueError, match="min_digits"):
        canvas.mnist_canvases(digits, labels, 2, min_digits=3, max_digits=2)
    with pytest.raises(ValueError, match="one label per digit"):
        canvas.mnist_canvases(digits, labels[:-1], 2)
    with pytest.raises(ValueError, match="digits must have shape"):
        canvas.mnist_canvases(digits[0], labels, 2)
    with pytest.raises(ValueError, match="unknown canvas dataset"):
        canvas.load_canvas("mnist_canvas_huge")


@contextlib.contextmanager
def tiny_canvas_source(monkeypatch, size: int) -> Iterator[None]:
    """Within it, the canvas datasets are 16 training and 8 test canvases of ``size`` pixels made from synthetic
    digits (no MNIST files), made afresh on entry and forgotten on exit."""
    train_x, train_y = fake_digits(40, seed=0)
    test_x, test_y = fake_digits(20, seed=1)
    monkeypatch.setattr(canvas, "load_tfds", lambda name, **kwargs: (train_x, train_y, test_x, test_y, 10))
    monkeypatch.setattr(canvas, "TRAIN_COUNT", 16)
    monkeypatch.setattr(canvas, "TEST_COUNT", 8)
    monkeypatch.setattr(canvas, "SIZE", size)
    canvas._mnist_canvases.cache_clear()
    try:
        yield
    finally:
        canvas._mnist_canvases.cache_clear()


@pytest.fixture
def fake_mnist(monkeypatch):
    """``load_canvas`` on tiny counts of fake MNIST whose training digits are all 3s and test digits all 7s."""
    train_x, _ = fake_digits(40, seed=0)
    test_x, _ = fake_digits(20, seed=1)
    split = (train_x, np.full(40, 3), test_x, np.full(20, 7), 10)
    monkeypatch.setattr(canvas, "load_tfds", lambda name, **kwargs: split)
    monkeypatch.setattr(canvas, "TRAIN_COUNT", 24)
    monkeypatch.setattr(canvas, "TEST_COUNT", 8)
    canvas._mnist_canvases.cache_clear()
    yield
    canvas._mnist_canvases.cache_clear()


def test_canvas_datasets_by_name_from_disjoint_digit_sources(fake_mnist):
    seg = data.load("mnist_canvas", normalisation="unit")
    assert isinstance(seg, data.CanvasDataset) and seg.num_classes == 11
    assert (
        seg.train_x.shape == (24, 64, 64, 1) and seg.train_y.shape == (24, 64, 64) and seg.test_y.shape == (8, 64, 64)
    )
    assert set(np.unique(seg.train_y)) == {0, 4} and set(np.unique(seg.test_y)) == {0, 8}  # 3s train, 7s test
    np.testing.assert_array_equal(seg.train_y, seg.train_canvases.masks)
    single = data.load("mnist_canvas_single", normalisation="unit")
    assert single.num_classes == 10 and single.train_y.shape == (24,) and set(single.test_y) == {7}
    assert (single.train_canvases.labels[:, 1:] == -1).all()
    det = data.load("mnist_canvas_detection", normalisation="unit")
    assert jax.tree.map(np.shape, det.train_y) == {"boxes": (24, 4, 4), "labels": (24, 4)}
    assert det.train_y["labels"].dtype == np.int32 and det.train_y["boxes"].dtype == np.float32
    sr = data.load("mnist_canvas_sr", normalisation="unit")
    assert sr.train_x.shape == (24, 32, 32, 1) and sr.train_y.shape == (24, 64, 64, 1)
    assert sr.train_y.dtype == np.float32 and sr.train_x.min() >= 0 and sr.train_x.max() <= 1
    mean = sr.train_y.reshape(24, 32, 2, 32, 2).mean((2, 4))  # the low-res input is close to a 2x2 box average
    assert np.abs(sr.train_x[..., 0] - mean).mean() < 0.05
    sr3 = data.load("mnist_canvas_sr3", normalisation="unit")  # x3: the canvases cropped to 63x63, as superres_pairs
    assert sr3.train_x.shape == (24, 21, 21, 1) and sr3.test_y.shape == (8, 63, 63, 1)
    np.testing.assert_array_equal(sr3.test_x, data.superres_pairs(sr3.test_canvases.images, 3).low)
    assert "mnist_canvas" in data.DATASETS
