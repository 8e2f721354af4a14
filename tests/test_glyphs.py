"""The many-class glyph set (Omniglot's offline stand-in): seeded, disjoint class splits, drawings inside the image,
jitter that changes a drawing but keeps its class, and deduplication of identical glyphs across fonts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from jaxnets import data

pytest.importorskip("HersheyFonts", reason="the glyph set needs the Hershey-Fonts package")

FONTS = ("greek", "cyrillic")


def test_glyph_set_is_seeded_and_its_class_splits_are_disjoint():
    a = data.hershey_glyphs(drawings=2, fonts=FONTS, seed=0)
    b = data.hershey_glyphs(drawings=2, fonts=FONTS, seed=0)
    c = data.hershey_glyphs(drawings=2, fonts=FONTS, seed=1)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_y, b.test_y)
    assert a.glyphs == b.glyphs and a.glyphs != c.glyphs
    train, test = set(a.train_y.tolist()), set(a.test_y.tolist())
    assert not train & test and train | test == set(range(a.num_classes)) == set(range(len(a.glyphs)))
    assert len(test) == round(0.25 * a.num_classes) and len(a.train_y) == 2 * len(train)
    x = np.concatenate([a.train_x, a.test_x])[..., 0]
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)
    assert (x.max(axis=(1, 2)) > 200).all() and ((x > 0).sum(axis=(1, 2)) >= 20).all()  # ink in every drawing
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1).astype(np.float64)
    assert border.sum() < 1e-3 * x.sum()  # drawings stay inside the image
    by_script = data.hershey_glyphs(drawings=1, fonts=FONTS, test_fonts=("cyrillic",))
    held_out = {by_script.glyphs[c][0] for c in set(by_script.test_y.tolist())}
    assert held_out == {"cyrillic"} and {by_script.glyphs[c][0] for c in set(by_script.train_y.tolist())} == {"greek"}
    with pytest.raises(ValueError, match="test_fonts"):
        data.hershey_glyphs(drawings=1, fonts=FONTS, test_fonts=("japanese",))


def test_jitter_changes_a_drawing_but_keeps_its_class():
    points, _ = data.glyph_classes(FONTS)
    plain = np.stack([data.draw_glyph(p) for p in points]).astype(np.float64)
    np.testing.assert_array_equal(data.draw_glyph(points[0], jitter=0.0), data.draw_glyph(points[0]))
    rng = np.random.default_rng(0)
    drawn = np.stack([data.draw_glyph(p, rng, jitter=0.5) for p in points]).astype(np.float64)
    assert (np.abs(drawn - plain).max(axis=(1, 2)) > 100).all()

    def features(images):
        f = np.stack([gaussian_filter(i, 1.5) for i in images]).reshape(len(images), -1)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    nearest = np.argmax(features(drawn) @ features(plain).T, axis=1)
    assert np.mean(nearest == np.arange(len(points))) > 0.9  # chance: 1 / 165


def test_identical_glyphs_of_several_fonts_are_one_class():
    greek, names = data.glyph_classes(("greek",))
    twice, _ = data.glyph_classes(("greek", "greek"))
    assert len(twice) == len(greek) > 50
    assert all(font == "greek" for font, _ in names)
    assert "." not in {char for _, char in names}  # smaller than min_size
    keys = {np.round(p, 2).tobytes() for p in greek}
    assert len(keys) == len(greek)
    futural, _ = data.glyph_classes(("futural",))
    both, _ = data.glyph_classes(("futural", "rowmans"))  # Hershey's simplex roman twice, but for a few glyphs
    assert len(futural) < len(both) < len(futural) + 10
    with pytest.raises(ValueError, match="drawings"):
        data.hershey_glyphs(drawings=0, fonts=FONTS)
    with pytest.raises(ValueError, match="size"):
        data.draw_glyph(greek[0], size=4)
