"""Pen strokes of vector-font glyphs (the Hershey fonts) as sequences of pen offsets, for handwriting-style models
(Graves 2013).

A glyph is a few polylines; ``glyph_points`` resamples them (no step longer than ``max_step`` font units) into one
sequence of points, each flagged when the pen lifts after it (the end of a stroke). ``hershey_strokes`` makes
``samples`` randomly jittered copies of each glyph (a seeded random rotation, slant, scale and per-point noise) and
splits them by sample: for every glyph the last ``test_fraction`` of its copies are test examples (the same
characters, other jitters). Offsets are in units of ``UNIT`` font units (a capital is about 5 high).

Per example, with ``L`` points padded to ``length`` steps:

- ``y[t] = (dx_t, dy_t, pen_up_t, valid_t)``: the offset from the previous point (the first from the glyph's centre),
  whether the stroke ends there, and 1 for the ``L`` real points (0 for padding: the loss is masked by it);
- ``x[t] = (dx_{t-1}, dy_{t-1}, pen_up_{t-1}, glyph id)``: the previous point (a pen-up at the origin before the
  first) and the character's index in ``chars``, which models take one-hot.

``load_raw('hershey')`` (``--dataset hershey``) is ``hershey_strokes()``. ``to_polylines`` turns a sequence back
into absolute polylines for drawing. Needs the ``Hershey-Fonts`` package.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass

import numpy as np

from jaxnets.data.base import Dataset

NAME = "hershey"
CHARS = string.ascii_uppercase + string.digits
UNIT = 4.0  # font units per offset unit
LENGTH = 40  # steps per sequence: the longest futural capital or digit has 32 points at max_step 4


@dataclass(frozen=True)
class StrokeDataset(Dataset):
    """A ``Dataset`` of pen-offset sequences with the characters behind the glyph ids: ``chars[i]`` is glyph ``i``."""

    chars: str = ""


def _font(name: str):
    try:
        from HersheyFonts import HersheyFonts
    except ImportError:
        raise ValueError("Hershey stroke data needs the Hershey-Fonts package: pip install Hershey-Fonts") from None
    font = HersheyFonts()
    if name not in font.default_font_names:
        raise ValueError(f"unknown Hershey font {name!r}; choose one of {sorted(font.default_font_names)}")
    font.load_default_font(name)
    return font


def glyph_points(strokes: list[list[tuple[float, float]]], max_step: float) -> np.ndarray:
    """A glyph's polylines -> points (n, 3) ``(x, y, pen_up)``: every segment cut into equal steps of at most
    ``max_step``, ``pen_up`` 1 at the last point of each polyline."""
    if not max_step > 0:
        raise ValueError(f"max_step must be > 0; got {max_step}")
    out = []
    for stroke in strokes:
        p = np.asarray(stroke, np.float64).reshape(-1, 2)
        pieces = [p[:1]]
        for a, b in itertools.pairwise(p):
            n = max(1, int(np.ceil(np.linalg.norm(b - a) / max_step)))
            pieces.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
        pts = np.concatenate(pieces)
        pen = np.zeros((len(pts), 1))
        pen[-1] = 1.0
        out.append(np.concatenate([pts, pen], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 3))


def _jitter(rng: np.random.Generator, points: np.ndarray, strength: float) -> np.ndarray:
    """A random rotation, slant, anisotropic scale and per-point noise of absolute points (n, 2)."""
    angle = rng.uniform(-0.1, 0.1) * strength
    slant = rng.uniform(-0.3, 0.3) * strength
    sx, sy = np.exp(rng.uniform(-0.15, 0.15, 2) * strength)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rot @ np.array([[1.0, slant], [0.0, 1.0]]) @ np.diag([sx, sy])
    return points @ matrix.T + rng.normal(0.0, 0.25 * strength, points.shape)


def hershey_strokes(
    samples: int = 100,
    chars: str = CHARS,
    fonts: tuple[str, ...] = ("futural",),
    length: int = LENGTH,
    max_step: float = 4.0,
    jitter: float = 1.0,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> StrokeDataset:
    """``samples`` jittered copies of each character of ``chars`` in each of ``fonts`` as (x, y) sequences of
    ``length`` steps (see the module docstring), split by sample; ``num_classes = len(chars)`` (a character drawn in
    several fonts has one id). Seeded: the same arguments give the same arrays."""
    if samples < 2 or not 0 < test_fraction < 1 or not chars or not fonts or jitter < 0:
        raise ValueError(
            f"hershey_strokes needs samples >= 2, 0 < test_fraction < 1, some chars and fonts, jitter >= 0; got "
            f"samples={samples}, test_fraction={test_fraction}, chars={chars!r}, fonts={fonts}, jitter={jitter}"
        )
    rng = np.random.default_rng(seed)
    n_test = min(samples - 1, max(1, round(samples * test_fraction)))
    parts: dict[bool, list[tuple[np.ndarray, np.ndarray]]] = {False: [], True: []}
    for font_name in fonts:
        font = _font(font_name)
        for gid, char in enumerate(chars):
            glyph = glyph_points(list(font.strokes_for_text(char)), max_step)
            if not len(glyph) or len(glyph) > length:
                raise ValueError(
                    f"length {length} cannot hold {char!r} of font {font_name}: {len(glyph)} points at max_step "
                    f"{max_step} (a longer length, or a larger max_step)"
                )
            xy = glyph[:, :2] - (glyph[:, :2].min(0) + glyph[:, :2].max(0)) / 2
            for i in range(samples):
                pts = np.concatenate([_jitter(rng, xy, jitter) / UNIT, glyph[:, 2:]], axis=1)
                parts[i >= samples - n_test].append(_example(pts, gid, length))
    (train_x, train_y), (test_x, test_y) = ([np.stack(a) for a in zip(*parts[t], strict=True)] for t in (False, True))
    return StrokeDataset(NAME, train_x, train_y, test_x, test_y, len(chars), chars=chars)


def _example(points: np.ndarray, gid: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute points (n, 3) of glyph ``gid`` -> the padded model input x and target y (length, 4)."""
    n = len(points)
    steps = np.diff(points[:, :2], axis=0, prepend=np.zeros((1, 2)))
    y = np.zeros((length, 4), np.float32)
    y[:n, :2], y[:n, 2], y[:n, 3] = steps, points[:, 2], 1.0
    x = np.zeros((length, 4), np.float32)
    x[0, 2] = 1.0  # a pen-up at the origin before the first point
    x[1:, :3] = y[:-1, :3]
    x[:, 3] = gid
    return x, y


def to_polylines(sequence: np.ndarray, valid: np.ndarray | None = None) -> list[np.ndarray]:
    """A sequence of ``(dx, dy, pen_up)`` steps (T, >= 3) -> the absolute polylines it draws, each (n, 2), in font
    orientation (y down); steps where ``valid`` (T,) is false are dropped."""
    seq = np.asarray(sequence, np.float64)
    if seq.ndim != 2 or seq.shape[1] < 3:
        raise ValueError(f"sequence must be (time, 3+) steps of (dx, dy, pen_up); got shape {seq.shape}")
    if valid is not None:
        seq = seq[np.asarray(valid, bool)]
    points = np.cumsum(seq[:, :2], axis=0)
    ends = np.flatnonzero(seq[:, 2] > 0.5) + 1
    return [p for p in np.split(points, ends) if len(p)]
