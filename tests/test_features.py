"""Hand-designed features: ``hog_features`` is scikit-image's HOG (against ``skimage.feature.hog`` on a few images and
against hand-computed step edges), batches do not change it, bad options fail early; ``oriented_gradient_filters``
respond most to a ramp along their own angle; bench/features.py's comparison runs on tiny data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from jaxnets.data import hog_features, oriented_gradient_filters


def images(n: int = 3, shape: tuple[int, ...] = (20, 24), seed: int = 0) -> np.ndarray:
    """Random images of 8-bit grey levels in [0, 1], smoothed a little so that there are edges of every angle."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape)).astype(np.float32)
    x = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2)) / 3
    return np.round(x) / 255


@pytest.mark.parametrize(
    ("cell", "block", "norm", "orientations"),
    [
        ((4, 4), (2, 2), "L2-Hys", 9),
        ((5, 3), (1, 2), "L1", 8),
        ((4, 6), (3, 2), "L2", 6),
        ((3, 3), (2, 2), "L1-sqrt", 12),
    ],
)
def test_hog_equals_scikit_image(cell, block, norm, orientations):
    feature = pytest.importorskip("skimage.feature", reason="scikit-image (extra 'photos') is the HOG reference")
    x = images()
    want = np.stack(
        [
            feature.hog(im, orientations=orientations, pixels_per_cell=cell, cells_per_block=block, block_norm=norm)
            for im in x
        ]
    )
    got = hog_features(x, orientations=orientations, pixels_per_cell=cell, cells_per_block=block, block_norm=norm)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_hog_of_colour_images_and_sqrt_equal_scikit_image():
    """Several channels: each pixel's gradient from the channel where it is largest; ``sqrt``: transform_sqrt."""
    feature = pytest.importorskip("skimage.feature", reason="scikit-image (extra 'photos') is the HOG reference")
    x = np.stack([images(seed=s) for s in range(3)], axis=-1)  # (3, 20, 24, 3)
    options = {"pixels_per_cell": (4, 4), "cells_per_block": (2, 2)}
    want = np.stack([feature.hog(im, channel_axis=-1, transform_sqrt=True, **options) for im in x])
    np.testing.assert_allclose(hog_features(x, sqrt=True, **options), want, atol=2e-6)


def test_step_edges_vote_into_their_orientation_bin():
    """An 8x8 image dark on the left, bright on the right: central differences of 1 in columns 3 and 4, so each
    4x4 cell averages 4 votes of 1 into the 0-degree bin (0.25), which L1 normalisation per one-cell block makes
    0.25 / (0.25 + 1e-5); a horizontal edge votes into the bin of 90 degrees (80-100: bin 4 of 9)."""
    step = np.zeros((8, 8), np.float32)
    step[:, 4:] = 1
    for image, bin_ in ((step, 0), (step.T, 4)):
        got = hog_features(image[None], pixels_per_cell=(4, 4), cells_per_block=(1, 1), block_norm="L1")
        want = np.zeros((2, 2, 9), np.float32)
        want[..., bin_] = 0.25 / (0.25 + 1e-5)
        np.testing.assert_allclose(got.reshape(2, 2, 9), want, rtol=1e-6)


def test_batches_do_not_change_the_features():
    x = images(5, (12, 12))
    whole = hog_features(x, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    np.testing.assert_allclose(
        hog_features(x, pixels_per_cell=(4, 4), cells_per_block=(2, 2), batch_size=2), whole, rtol=1e-6
    )
    np.testing.assert_allclose(
        hog_features(x[..., None], pixels_per_cell=(4, 4), cells_per_block=(2, 2)), whole, rtol=1e-6
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block_norm": "L3"}, "block_norm must be one of L1, L1-sqrt, L2, L2-Hys"),
        ({"pixels_per_cell": (8, 8), "cells_per_block": (3, 3)}, "too small .* at least 24x24"),
        ({"orientations": 0}, "orientations must be at least 1"),
    ],
)
def test_bad_options_fail(options, message):
    with pytest.raises(ValueError, match=message):
        hog_features(np.zeros((1, 16, 16), np.float32), **options)
    with pytest.raises(ValueError, match=r"images must have shape \(n, h, w\)"):
        hog_features(np.zeros((16, 16), np.float32))


def test_each_oriented_filter_responds_most_to_a_ramp_along_its_angle():
    filters = oriented_gradient_filters(9, size=5)
    assert filters.shape == (5, 5, 9)
    np.testing.assert_allclose(np.linalg.norm(filters.reshape(25, 9), axis=0), 1, rtol=1e-6)
    r = np.arange(5) - 2.0
    rows, cols = np.meshgrid(r, r, indexing="ij")
    for k in range(9):
        angle = np.pi * (k + 0.5) / 9  # scikit-image's: from the column axis towards the row axis
        ramp = np.cos(angle) * cols + np.sin(angle) * rows
        responses = np.einsum("ij,ijk->k", ramp, filters)
        assert np.argmax(responses) == k and responses[k] > 0


def test_bench_comparison_on_tiny_data():
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import features

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64).astype(np.int32)
    x = images(64, (8, 8))[..., None]
    x[y == 1, :, 4:] += 0.5  # class 1 has a vertical edge
    runs = (("pixels -> logistic", "pixels", "logistic"), ("HOG -> logistic", "hog", "logistic"))
    hog = {"pixels_per_cell": (4, 4), "cells_per_block": (1, 1)}
    results, filters = features.compare(x, y, x, y, runs=runs, epochs=2, batch_size=16, hog=hog, log=lambda _: None)
    assert results["HOG -> logistic"]["features"] == 2 * 2 * 9 and results["HOG -> logistic"]["params"] == 37
    assert results["pixels -> logistic"]["params"] == 65
    assert all(0 <= r["error"] <= 100 for r in results.values())
    assert filters["hand"].shape == (5, 5, 9) and "learned" not in filters
    assert "| HOG -> logistic | 36 | 37 | " in features.table(results)
