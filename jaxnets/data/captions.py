"""Shape scenes with template captions for image captioning (``shapes_captions``), generated offline by seed.

A scene is a plain black 64 x 64 RGB canvas with 1-4 non-overlapping shapes (circle, square, triangle), each red,
green, blue or yellow. Its shapes form one or two *groups* of identical shapes (same shape, same colour):

- one group of 1-4: "three blue squares", "a red circle";
- two groups (1-3 each, 4 shapes at most) on either side of each other: "two red circles left of a blue square",
  "a green triangle above a yellow circle".

Group A is *left of* B when every centre of A lies at least ``GAP`` pixels left of every centre of B (``right of``,
``above``, ``below`` likewise); the scenes are drawn so that the groups are separated along one axis and not
separated, even by ``GAP / 2``, along the other, so exactly one relation holds between them (and its converse). A
scene's true captions (``scene_captions``) are every sentence of this grammar that holds of it: one for one group,
two for two ("A left of B" and "B right of A"). The first, the *canonical* caption, names the larger group first
(equal counts: in the order of ``COLOURS``, then of ``SHAPES``); it is the training target, the others are extra
references for BLEU.

Tokens: ``VOCAB[0]`` = "<pad>" (0), "<start>", "<end>", then the words. A caption is ``<start> words <end>``
padded with 0 to ``MAX_LEN`` tokens (the longest caption fills it). ``shapes_captions()`` gives a
``CaptionDataset``: ``x`` images float32 (64, 64, 3) in [0, 1], ``y`` int32 canonical captions (MAX_LEN,), its
``vocab``, every test image's true captions (``test_references``) and the scenes behind both splits.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jaxnets.data.base import Dataset

NAME = "shapes_captions"
SIZE = 64
TRAIN_COUNT, TEST_COUNT = 10_000, 1_000
MAX_OBJECTS = 4
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
RGB = np.array([[0.9, 0.15, 0.15], [0.15, 0.75, 0.2], [0.2, 0.35, 0.95], [0.95, 0.85, 0.15]], np.float32)
COUNTS = ("a", "two", "three", "four")
RELATIONS = ("left of", "right of", "above", "below")  # horizontal first: the canonical caption prefers them
PAD, START, END = 0, 1, 2
VOCAB = (
    "<pad>",
    "<start>",
    "<end>",
    *COUNTS,
    *COLOURS,
    *SHAPES,
    *(s + "s" for s in SHAPES),
    "left",
    "right",
    "of",
    "above",
    "below",
)
MAX_LEN = 10  # <start> three red circles left of a blue square <end>
RADII = (5.0, 7.0)  # a shape's half-size in pixels
GAP = 16.0  # centres this far apart along an axis (at least) separate two groups along it
TWO_GROUPS = 0.7  # fraction of two-group scenes


@dataclass(frozen=True)
class ShapeScenes:
    """Generated scenes, shapes padded to ``MAX_OBJECTS``: ``shapes`` and ``colours`` (n, 4) int32 indices into
    ``SHAPES`` and ``COLOURS`` (-1: no shape), ``centres`` (n, 4, 2) float32 ``(x, y)`` pixels (y downwards),
    ``radii`` (n, 4) float32 half-sizes (0: no shape)."""

    shapes: np.ndarray
    colours: np.ndarray
    centres: np.ndarray
    radii: np.ndarray

    def __len__(self) -> int:
        return len(self.shapes)

    def objects(self, i: int) -> list[tuple[str, str, float, float]]:
        """Scene ``i`` as a list of ``(colour, shape, x, y)``."""
        return [
            (COLOURS[c], SHAPES[s], float(x), float(y))
            for s, c, (x, y) in zip(self.shapes[i], self.colours[i], self.centres[i], strict=True)
            if s >= 0
        ]


@dataclass(frozen=True)
class CaptionDataset(Dataset):
    """A ``Dataset`` of captioned images: ``vocab[i]`` is token ``i``; ``test_references[i]`` every true caption of
    test image ``i`` (canonical first); the ``ShapeScenes`` behind the images."""

    vocab: tuple[str, ...] = ()
    test_references: tuple[tuple[str, ...], ...] = ()
    train_scenes: ShapeScenes | None = None
    test_scenes: ShapeScenes | None = None


def _phrase(count: int, colour: str, shape: str) -> str:
    return f"{COUNTS[count - 1]} {colour} {shape}{'s' if count > 1 else ''}"


def _separated(a: np.ndarray, b: np.ndarray, gap: float) -> bool:
    """Every coordinate of ``a`` at least ``gap`` below every coordinate of ``b``."""
    return bool(a.max() + gap <= b.min())


def _holds(relation: str, a: np.ndarray, b: np.ndarray, gap: float = GAP) -> bool:
    """Whether group ``a`` (m, 2) of centres stands in ``relation`` to group ``b`` (image y grows downwards)."""
    axis = 0 if relation in ("left of", "right of") else 1
    if relation in ("left of", "above"):
        return _separated(a[:, axis], b[:, axis], gap)
    return _separated(b[:, axis], a[:, axis], gap)


def scene_captions(objects: Sequence[tuple[str, str, float, float]]) -> tuple[str, ...]:
    """Every true caption of a scene given as ``(colour, shape, x, y)`` objects, the canonical one first (see the
    module docstring); ``ValueError`` for a scene the grammar cannot describe (more than two groups)."""
    groups = Counter((colour, shape) for colour, shape, _, _ in objects)
    if not 1 <= len(groups) <= 2:
        raise ValueError(f"a scene must hold one or two groups of identical shapes; got {len(groups)}")
    order = sorted(groups, key=lambda g: (-groups[g], COLOURS.index(g[0]), SHAPES.index(g[1])))
    if len(order) == 1:
        return (_phrase(groups[order[0]], *order[0]),)
    centres = {g: np.array([(x, y) for c, s, x, y in objects if (c, s) == g]) for g in order}
    captions = []
    for a, b in (order, order[::-1]):
        for relation in RELATIONS:
            if _holds(relation, centres[a], centres[b]):
                captions.append(f"{_phrase(groups[a], *a)} {relation} {_phrase(groups[b], *b)}")
    if not captions:
        raise ValueError("the two groups of this scene stand in no relation of the grammar (too close)")
    return tuple(captions)


def encode_caption(caption: str, vocab: Sequence[str] = VOCAB, max_len: int = MAX_LEN) -> np.ndarray:
    """A caption's words -> int32 ``<start> words <end>`` padded with 0 to ``max_len``; ``ValueError`` naming an
    unknown word or a caption too long."""
    index = {w: i for i, w in enumerate(vocab)}
    words = caption.split()
    unknown = [w for w in words if w not in index]
    if unknown:
        raise ValueError(f"caption {caption!r}: {unknown[0]!r} is not in the vocabulary")
    if len(words) + 2 > max_len:
        raise ValueError(f"caption {caption!r} needs {len(words) + 2} tokens; max_len is {max_len}")
    ids = np.zeros(max_len, np.int32)
    ids[: len(words) + 2] = [START, *(index[w] for w in words), END]
    return ids


def decode_caption(ids: Sequence[int] | np.ndarray, vocab: Sequence[str] = VOCAB) -> str:
    """Token ids -> the caption's words: <start> and padding skipped, up to the first <end>."""
    words = []
    for i in np.asarray(ids).tolist():
        if i == END:
            break
        if i not in (PAD, START):
            words.append(vocab[i])
    return " ".join(words)


def _place(rng: np.random.Generator, counts: tuple[int, ...], radii: np.ndarray) -> np.ndarray | None:
    """Centres (sum(counts), 2) for one or two groups (see the module docstring), or None if the draw failed."""
    lo, hi = RADII[1] + 1.0, SIZE - RADII[1] - 1.0
    n = sum(counts)
    if len(counts) == 1:
        centres = rng.uniform(lo, hi, (n, 2))
    else:
        axis = int(rng.integers(2))
        split = rng.uniform(lo + GAP, hi - GAP)
        low_first = rng.random() < 0.5  # whether the first group takes the low side
        low = rng.uniform(lo, split - GAP / 2, counts[0] if low_first else counts[1])
        high = rng.uniform(split + GAP / 2, hi, counts[1] if low_first else counts[0])
        along = np.concatenate([low, high] if low_first else [high, low])
        across = rng.uniform(lo, hi, n)
        centres = np.stack([along, across] if axis == 0 else [across, along], axis=1)
        a, b = centres[: counts[0], 1 - axis], centres[counts[0] :, 1 - axis]
        if _separated(a, b, GAP / 2) or _separated(b, a, GAP / 2):
            return None
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    apart = distance >= radii[:, None] + radii[None] + 2.0
    return centres if np.all(apart | np.eye(n, dtype=bool)) else None


def random_scenes(n: int, seed: int = 0) -> ShapeScenes:
    """``n`` random scenes of the grammar (seeded: the same ``seed`` gives the same scenes)."""
    if n < 1:
        raise ValueError(f"n (number of scenes) must be >= 1; got {n}")
    rng = np.random.default_rng(seed)
    shapes = np.full((n, MAX_OBJECTS), -1, np.int32)
    colours = np.full((n, MAX_OBJECTS), -1, np.int32)
    centres = np.zeros((n, MAX_OBJECTS, 2), np.float32)
    radii = np.zeros((n, MAX_OBJECTS), np.float32)
    two_counts = [(a, b) for a in range(1, 4) for b in range(1, 4) if a + b <= MAX_OBJECTS]
    for i in range(n):
        counts: tuple[int, ...]
        if rng.random() < TWO_GROUPS:
            counts = two_counts[rng.integers(len(two_counts))]
            kinds = rng.choice(len(COLOURS) * len(SHAPES), 2, replace=False)
        else:
            counts = (int(rng.integers(1, MAX_OBJECTS + 1)),)
            kinds = rng.choice(len(COLOURS) * len(SHAPES), 1)
        m = sum(counts)
        r = rng.uniform(*RADII, m)
        placed = None
        while placed is None:  # redraw the positions until the shapes stand apart as the grammar needs
            placed = _place(rng, counts, r)
        kind = np.repeat(kinds, counts)
        colours[i, :m], shapes[i, :m] = kind // len(SHAPES), kind % len(SHAPES)
        order = rng.permutation(m)  # the groups' shapes in no particular order
        colours[i, :m], shapes[i, :m] = colours[i, :m][order], shapes[i, :m][order]
        centres[i, :m], radii[i, :m] = placed[order], r[order]
    return ShapeScenes(shapes, colours, centres, radii)


def draw_scenes(scenes: ShapeScenes, size: int = SIZE) -> np.ndarray:
    """The images (n, size, size, 3) float32 in [0, 1] of ``scenes``: shapes in flat colours on black. A circle of
    radius r, a square of half-side 0.9 r, a triangle pointing up with its apex r above the centre and a base 2 r wide
    r below it. Each shape is drawn in a patch around its centre."""
    n, side = len(scenes), 2 * int(np.ceil(RADII[1])) + 2
    if np.any(scenes.radii > RADII[1]) or np.any(scenes.centres < 0) or np.any(scenes.centres > size):
        raise ValueError(f"scenes must hold radii <= {RADII[1]} and centres inside the {size} x {size} canvas")
    images = np.zeros((n, size, size, 3), np.float32)
    rows = np.arange(n)[:, None, None]
    for k in range(MAX_OBJECTS):
        shape, colour, r = scenes.shapes[:, k, None, None], scenes.colours[:, k], scenes.radii[:, k, None, None]
        corner = np.clip(np.floor(scenes.centres[:, k]).astype(int) - side // 2, 0, size - side)  # (n, 2): x, y
        xs = corner[:, 0, None, None] + np.arange(side)[None, None, :]
        ys = corner[:, 1, None, None] + np.arange(side)[None, :, None]
        dx = xs + 0.5 - scenes.centres[:, k, 0, None, None]
        dy = ys + 0.5 - scenes.centres[:, k, 1, None, None]
        circle = dx**2 + dy**2 <= r**2
        square = (np.abs(dx) <= 0.9 * r) & (np.abs(dy) <= 0.9 * r)
        triangle = (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
        inside = np.select([shape == s for s in range(len(SHAPES))], [circle, square, triangle]) & (shape >= 0)
        patch = images[rows, ys, xs]
        images[rows, ys, xs] = np.where(inside[..., None], RGB[np.maximum(colour, 0)][:, None, None, :], patch)
    return images


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, ShapeScenes, tuple[tuple[str, ...], ...]]:
    scenes = random_scenes(n, seed)
    references = tuple(scene_captions(scenes.objects(i)) for i in range(n))
    captions = np.stack([encode_caption(refs[0]) for refs in references])
    return draw_scenes(scenes), captions, scenes, references


@functools.lru_cache(maxsize=4)
def shapes_captions(train: int = TRAIN_COUNT, test: int = TEST_COUNT, seed: int = 0) -> CaptionDataset:
    """The ``shapes_captions`` dataset: ``train`` and ``test`` scenes (seeds ``[seed, 0]`` and ``[seed, 1]``),
    images and canonical captions (see the module docstring). Made once per process (the arrays are read-only)."""
    if train < 1 or test < 1:
        raise ValueError(f"train and test (numbers of scenes) must be >= 1; got {train}, {test}")
    train_x, train_y, train_scenes, _ = _split(train, np.random.SeedSequence([seed, 0]).generate_state(1)[0])
    test_x, test_y, test_scenes, references = _split(test, np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    for a in (train_x, train_y, test_x, test_y):
        a.setflags(write=False)
    return CaptionDataset(
        NAME, train_x, train_y, test_x, test_y, len(VOCAB), VOCAB, references, train_scenes, test_scenes
    )
