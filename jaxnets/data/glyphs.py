"""Many classes of glyphs, each drawn by many "hands", for one-shot learning: an offline stand-in for Omniglot (Lake,
Salakhutdinov & Tenenbaum 2015: 1,623 characters of 50 alphabets, each drawn once by 20 people).

A class is one distinct glyph of the Hershey vector fonts (the ``Hershey-Fonts`` package; ``FONTS`` = all 32 of its
fonts: Latin in roman, italic, script and gothic styles, Greek, Cyrillic, Japanese kana and kanji, astrological,
meteorological, musical and mathematical signs, markers): its pen strokes centred and scaled to a unit box and
resampled by ``strokes.glyph_points``. Glyphs smaller than ``min_size`` font units (dots, commas, accents) are dropped,
and identical shapes (the same strokes after centring and scaling, in any order, from any font) are one class:
1,182 classes from ``FONTS``. A drawing of a class is its strokes under a seeded random rotation, slant and
anisotropic scale (``strokes._jitter``), a shift, per-point tremor and a random pen width, rasterised anti-aliased
(PIL at 4x, box-filtered down) into a ``size`` x ``size`` uint8 image, white on black like MNIST.

``hershey_glyphs`` splits classes, not drawings: a seeded permutation of the classes puts ``test_fraction`` of them in
the test set (Vinyals et al. split Omniglot 1,200 / 423 characters), or ``test_fonts`` holds out whole scripts, the
way Omniglot's evaluation set holds out alphabets (e.g. ``SCRIPT_SPLIT``: Japanese, Cyrillic and the astrological,
meteorological and musical signs, 271 classes; a glyph another font has too belongs to the first font in ``fonts``).
Train and test labels are disjoint ranges of class ids, for ``episode_indices`` over the train classes and the
held-out ones. Needs the ``Hershey-Fonts`` package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxnets.data.base import Dataset
from jaxnets.data.strokes import _font, _jitter, glyph_points

NAME = "hershey_glyphs"
FONTS = (
    "futural", "futuram", "rowmans", "rowmand", "rowmant", "timesr", "timesrb", "timesi", "timesib", "timesg",
    "cursive", "scripts", "scriptc", "gothiceng", "gothicger", "gothicita", "gothgbt", "gothgrt", "gothitt",
    "greek", "greekc", "greeks", "cyrillic", "cyrilc_1", "japanese", "astrology", "meteorology", "music", "symbolic",
    "mathlow", "mathupp", "markers",
)  # fmt: skip
SCRIPT_SPLIT = ("japanese", "cyrillic", "cyrilc_1", "astrology", "meteorology", "music")
MIN_SIZE = 8.0  # font units: a capital is about 21 high
BOX = 0.62  # a glyph's larger side, as a fraction of the image
STEP = 0.1  # resampling step in glyph boxes (about 2 pixels at 28x28)
SUPERSAMPLE = 4


@dataclass(frozen=True)
class GlyphDataset(Dataset):
    """A ``Dataset`` of glyph drawings (n, size, size, 1) uint8 whose train and test classes are disjoint;
    ``glyphs[c]`` is class ``c``'s (font, character), the first font that has it."""

    glyphs: tuple[tuple[str, str], ...] = ()


def glyph_classes(
    fonts: tuple[str, ...] = FONTS, min_size: float = MIN_SIZE
) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """The distinct glyphs of ``fonts`` (see the module docstring): each as points (n, 3) ``(x, y, pen_up)`` centred
    in a unit box (larger side 1, y down), and its (font, character)."""
    if not fonts or not min_size > 0:
        raise ValueError(f"glyph_classes needs some fonts and min_size > 0; got fonts={fonts}, min_size={min_size}")
    points, names, seen = [], [], set()
    for name in fonts:
        font = _font(name)
        for char in font.all_glyphs:
            strokes = [np.asarray(s, np.float64).reshape(-1, 2) for s in font.strokes_for_text(char)]
            if not strokes:
                continue
            every = np.concatenate(strokes)
            low, high = every.min(0), every.max(0)
            extent = float((high - low).max())
            if extent < min_size:
                continue
            unit = [(s - (low + high) / 2) / extent for s in strokes]
            key = tuple(sorted(tuple(np.round(s, 2).ravel().tolist()) for s in unit))
            if key in seen:
                continue
            seen.add(key)
            points.append(glyph_points([s.tolist() for s in unit], STEP))
            names.append((name, char))
    return points, names


def draw_glyph(
    points: np.ndarray, rng: np.random.Generator | None = None, jitter: float = 1.0, size: int = 28
) -> np.ndarray:
    """One drawing (size, size) uint8 of a glyph's unit-box points (n, 3) from ``glyph_classes``: with ``rng``, a
    random affine, shift (up to ``jitter`` * size / 20 pixels), tremor and pen width (1-2.2 pixels, scaled by
    ``jitter``); without, the plain glyph with a 1.5-pixel pen."""
    from PIL import Image, ImageDraw

    if size < 8 or jitter < 0:
        raise ValueError(f"draw_glyph needs size >= 8 and jitter >= 0; got size={size}, jitter={jitter}")
    xy = np.asarray(points, np.float64)[:, :2] * (BOX * size)
    width = 1.5
    if rng is not None:
        xy = _jitter(rng, xy, jitter) + rng.uniform(-1, 1, 2) * jitter * size / 20
        width = 1.6 + rng.uniform(-0.6, 0.6) * min(jitter, 1.0)
    xy = (xy + size / 2) * SUPERSAMPLE
    image = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE))
    pen = ImageDraw.Draw(image)
    w = max(1, round(width * SUPERSAMPLE))
    for line in np.split(xy, np.flatnonzero(np.asarray(points)[:, 2] > 0.5)[:-1] + 1):
        if len(line) == 1:
            (x, y) = line[0]
            pen.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)
        else:
            pen.line([tuple(p) for p in line.tolist()], fill=255, width=w, joint="curve")
    return np.asarray(image.reduce(SUPERSAMPLE), np.uint8)


def hershey_glyphs(
    drawings: int = 20,
    fonts: tuple[str, ...] = FONTS,
    test_fraction: float = 0.25,
    jitter: float = 1.0,
    size: int = 28,
    seed: int = 0,
    test_fonts: tuple[str, ...] = (),
) -> GlyphDataset:
    """``drawings`` jittered drawings (n, size, size, 1) uint8 of every class of ``glyph_classes(fonts)``; a seeded
    permutation sends ``test_fraction`` of the classes to the test set, or, if ``test_fonts`` are given, the classes
    of those fonts are the test set. Labels: train classes 0..T-1, test classes T..num_classes-1 (class ids in
    permuted order). Seeded: the same arguments give the same arrays."""
    if drawings < 1 or not 0 < test_fraction < 1 or not set(test_fonts) <= set(fonts):
        raise ValueError(
            f"hershey_glyphs needs drawings >= 1, 0 < test_fraction < 1 and test_fonts among fonts; got "
            f"drawings={drawings}, test_fraction={test_fraction}, test_fonts={test_fonts}"
        )
    points, names = glyph_classes(fonts)
    n = len(points)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if test_fonts:
        held_out = np.array([names[c][0] in test_fonts for c in order])
        order = np.concatenate([order[~held_out], order[held_out]])
    n_test = int(held_out.sum()) if test_fonts else round(n * test_fraction)
    if not 0 < n_test < n:
        raise ValueError(f"the split leaves no train or no test class ({n_test} of {n} held out)")
    x = np.stack([draw_glyph(points[c], rng, jitter, size) for c in order for _ in range(drawings)])[..., None]
    y = np.repeat(np.arange(n, dtype=np.int32), drawings)
    cut = (n - n_test) * drawings
    glyphs = tuple(names[c] for c in order)
    return GlyphDataset(NAME, x[:cut], y[:cut], x[cut:], y[cut:], n, glyphs=glyphs)
