"""Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational reasoning"), generated as the
reference implementation (kimhc6028/relational-networks, ``sort_of_clevr_generator.py``, 11-bit questions) makes it.

Each 75x75 RGB image (white background) holds 6 objects, one of each colour (red, green, blue, orange, gray, yellow),
each a square (11x11 pixels) or a disc (the 97 pixels within 5.5 of its centre) centred at a random position 5..69 in
x and y; the objects' bounding boxes do not overlap (the reference only keeps centres 10 pixels apart, which lets
corners touch). Per image 10 non-relational then 10 relational questions, each an 11-d binary vector: 6 one-hot
colour bits (the object asked about), 2 question-type bits (non-relational, relational), 3 subtype bits:

- non-relational: shape of the object? / is it on the left (x < 37.5)? / is it at the top (y < 37.5)?
- relational: shape of the object closest to it? / furthest from it? / how many objects have its shape (1..6)?

Answers are 10 classes: yes, no, rectangle, circle, 1..6 (``ANSWERS``). Ties in distance go to the first object in
colour order, as in the reference. Images are uint8 (models scale them to [0, 1]): as float32 the 196,000 training
examples of the reference's 9,800 images would take 13 GB. Everything is fixed by ``seed``, and image ``i`` of a
split does not depend on how many images are asked for (each image has its own generator from (seed, split, i)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxnets.data.base import Dataset

NAME = "sort_of_clevr"
SIZE = 75  # image side
HALF = 5  # an object's half-width: squares span centre +- 5, discs the pixels within 5.5 of it
QUESTIONS_PER_TYPE = 10  # per image: 10 non-relational, then 10 relational
COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 156, 0), (128, 128, 128), (255, 255, 0)], np.uint8)
SHAPES = ("rectangle", "circle")
ANSWERS = ("yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6")
QUESTION_DIM = 11  # 6 colour bits, 2 type bits (TYPE_BIT + 0: non-relational, + 1: relational), 3 subtype bits
TYPE_BIT, SUBTYPE_BIT = 6, 8
RELATIONAL_BIT = TYPE_BIT + 1
TEMPLATES = (
    (
        "what shape is the {} object?",
        "is the {} object on the left?",
        "is the {} object at the top?",
    ),
    (
        "what shape is the object closest to the {} one?",
        "what shape is the object furthest from the {} one?",
        "how many objects have the shape of the {} one?",
    ),
)


@dataclass(frozen=True)
class SortOfClevrDataset(Dataset):
    """Sort-of-CLEVR examples with the scenes behind them: ``*_centres`` (images, 6, 2) pixel (x, y) of each colour's
    object and ``*_shapes`` (images, 6) 0 = rectangle, 1 = circle; example ``k`` asks about image ``k // 20``."""

    answers: tuple[str, ...] = ANSWERS
    train_centres: np.ndarray | None = None
    train_shapes: np.ndarray | None = None
    test_centres: np.ndarray | None = None
    test_shapes: np.ndarray | None = None


def scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One scene: centres (6, 2) int (x, y) in [5, 70), drawn one object after another and redrawn while its box
    overlaps an earlier one's, and shapes (6,) (0 rectangle, 1 circle, each with probability 1/2)."""
    centres: list[np.ndarray] = []
    while len(centres) < len(COLOURS):
        c = rng.integers(HALF, SIZE - HALF, 2)
        if all(np.abs(c - d).max() > 2 * HALF for d in centres):
            centres.append(c)
    return np.stack(centres), (rng.random(len(COLOURS)) >= 0.5).astype(np.int32)


def render(centres: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """Images (n, 75, 75, 3) uint8 of scenes: centres (n, 6, 2) (x, y), shapes (n, 6); white background."""
    ys, xs = np.mgrid[:SIZE, :SIZE]
    images = np.full((len(centres), SIZE, SIZE, 3), 255, np.uint8)
    for k in range(len(COLOURS)):
        dx = xs[None] - centres[:, k, 0, None, None]
        dy = ys[None] - centres[:, k, 1, None, None]
        square = np.maximum(np.abs(dx), np.abs(dy)) <= HALF
        disc = dx**2 + dy**2 <= (HALF + 0.5) ** 2  # 97 pixels: rounder than <= 5**2's cross-like 81
        images[np.where(shapes[:, k, None, None] == 1, disc, square)] = RGB[k]
    return images


def questions(rng: np.random.Generator, per_type: int = QUESTIONS_PER_TYPE) -> np.ndarray:
    """(2 * per_type, 11) float32 question vectors: ``per_type`` non-relational, then ``per_type`` relational, each
    about a uniformly drawn colour with a uniformly drawn subtype."""
    q = np.zeros((2 * per_type, QUESTION_DIM), np.float32)
    rows = np.arange(2 * per_type)
    q[rows, rng.integers(0, len(COLOURS), 2 * per_type)] = 1
    q[rows, TYPE_BIT + rows // per_type] = 1
    q[rows, SUBTYPE_BIT + rng.integers(0, 3, 2 * per_type)] = 1
    return q


def answer(centres: np.ndarray, shapes: np.ndarray, question: np.ndarray) -> int:
    """The answer id (into ``ANSWERS``) of one 11-d ``question`` about one scene (centres (6, 2), shapes (6,))."""
    colour = int(np.argmax(question[: len(COLOURS)]))
    relational = bool(question[RELATIONAL_BIT])
    subtype = int(np.argmax(question[SUBTYPE_BIT:]))
    if not relational:
        if subtype == 0:
            return 2 + int(shapes[colour])
        return 0 if centres[colour, subtype - 1] < SIZE / 2 else 1  # subtype 1: x (left?), 2: y (top?)
    if subtype == 2:
        return 3 + int(np.sum(shapes == shapes[colour]))  # "1" is answer 4
    d2 = np.sum((centres - centres[colour]) ** 2, axis=1).astype(float)
    if subtype == 0:
        d2[colour] = np.inf
        return 2 + int(shapes[np.argmin(d2)])
    return 2 + int(shapes[np.argmax(d2)])


def describe(question: np.ndarray) -> str:
    """The English question an 11-d vector encodes, e.g. 'is the red object on the left?'."""
    colour = COLOURS[int(np.argmax(question[: len(COLOURS)]))]
    return TEMPLATES[int(question[RELATIONAL_BIT])][int(np.argmax(question[SUBTYPE_BIT:]))].format(colour)


def generate(
    images: int, seed: int = 0, split: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """``images`` scenes of a split: x = {'image': (20 n, 75, 75, 3) uint8, 'question': (20 n, 11) float32},
    y (20 n,) int32 answers, and the scenes' centres (n, 6, 2) and shapes (n, 6)."""
    if images < 1:
        raise ValueError(f"images must be >= 1; got {images}")
    centres, shapes, qs = [], [], []
    for i in range(images):
        rng = np.random.default_rng([seed, split, i])
        c, s = scene(rng)
        centres.append(c)
        shapes.append(s)
        qs.append(questions(rng))
    centres_a, shapes_a, q = np.stack(centres), np.stack(shapes), np.concatenate(qs)
    per_image = 2 * QUESTIONS_PER_TYPE
    which = np.arange(len(q)) // per_image
    y = np.array([answer(centres_a[i], shapes_a[i], v) for i, v in zip(which, q, strict=True)], np.int32)
    x = {"image": np.repeat(render(centres_a, shapes_a), per_image, axis=0), "question": q}
    return x, y, centres_a, shapes_a


def sort_of_clevr_dataset(train_images: int = 9800, test_images: int = 200, seed: int = 0) -> SortOfClevrDataset:
    """The Sort-of-CLEVR dataset: 20 examples per image, 9,800 training and 200 test images as in the reference
    (196,000 / 4,000 examples), 10 answer classes."""
    train_x, train_y, train_c, train_s = generate(train_images, seed, 0)
    test_x, test_y, test_c, test_s = generate(test_images, seed, 1)
    return SortOfClevrDataset(
        NAME,
        train_x,
        train_y,
        test_x,
        test_y,
        len(ANSWERS),
        train_centres=train_c,
        train_shapes=train_s,
        test_centres=test_c,
        test_shapes=test_s,
    )
