"""What every data module shares and nothing of them imports: the ``Dataset`` container, the catalogue of names, the
error for data that cannot be had, and the manual-dir variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MANUAL_DIR_ENV = "JAXNETS_MANUAL_DIR"

EMBEDDED = {
    "xor": "the four XOR points (train = test), 2 classes; embedded",
    "spirals": "two interleaved 2D spirals, 512 train + 512 test points, 2 classes; embedded",
}
TFDS = {
    "mnist": "handwritten digits, 28x28x1, 60k train / 10k test, 10 classes",
    "fashion_mnist": "Zalando clothing, 28x28x1, 60k / 10k, 10 classes",
    "kmnist": "Kuzushiji (cursive Japanese), 28x28x1, 60k / 10k, 10 classes",
    "emnist/digits": "EMNIST digits, 28x28x1, 240k / 40k, 10 classes",
    "emnist/balanced": "EMNIST balanced letters and digits, 28x28x1, 112,800 / 18,800, 47 classes",
    "emnist/letters": "EMNIST letters, 28x28x1, 88,800 / 14,800, 37 label values",
    "cifar10": "tiny natural images, 32x32x3, 50k / 10k, 10 classes",
    "cifar100": "tiny natural images, 32x32x3, 50k / 10k, 100 classes",
    "svhn_cropped": "street-view house numbers, 32x32x3, 73,257 / 26,032, 10 classes (needs jaxnets[tfds])",
}
STROKES = {"hershey": "pen offsets of 36 Hershey glyphs (A-Z, 0-9), 90 / 10 jittered copies each (Graves-style)"}
TEXT = {"text:PATH": "the characters of any UTF-8 text file, windows of 64 -> next character (char_lstm)"}
CANVAS = {
    "mnist_canvas": "64x64x1 canvases of 1-4 scaled MNIST digits, 20k / 2k; y = per-pixel class mask (11 classes)",
    "mnist_canvas_single": "64x64x1 canvases of one scaled MNIST digit, 20k / 2k; y = its class (boxes kept)",
    "mnist_canvas_detection": "64x64x1 canvases of 1-4 digits, 20k / 2k; y = {'boxes': (4, 4), 'labels': (4,)}",
    "mnist_canvas_sr": "32x32x1 bicubic x2 downsampled canvases of 1-4 digits, 20k / 2k; y = the 64x64x1 canvas",
    "mnist_canvas_sr3": "21x21x1 bicubic x3 downsampled canvases of 1-4 digits, 20k / 2k; y = the canvas, 63x63x1",
}  # (jaxnets.data.canvas)
BABI = {
    **{
        f"babi:{t}": f"bAbI-style task {t} ({title}) from our story simulator (not the Facebook files), 1,000 / "
        "1,000 questions; x = {'story': (50, words), 'question': (words,)} word ids, y = answer word id"
        for t, title in (
            (1, "single supporting fact"),
            (2, "two supporting facts"),
            (3, "three supporting facts"),
            (6, "yes/no questions"),
            (7, "counting"),
        )
    },
    **{f"babi:{t}:10k": f"babi:{t} with 10,000 training questions (same test set)" for t in (1, 2, 3, 6, 7)},
}  # (jaxnets.data.babi)
VQA = {
    "easy_vqa": "easy-VQA shapes (pip install easy-vqa): 64x64x3 images + questions, 38,575 / 9,673 questions, "
    "13 answers; x = {'image': uint8, 'question': word ids}",
    "sort_of_clevr": "Sort-of-CLEVR (Santoro et al. 2017), generated: 75x75x3, 6 objects, 11-bit questions, "
    "196,000 / 4,000 questions of 9,800 / 200 images, 10 answers (3.3 GB as uint8)",
}  # (jaxnets.data.vqa, jaxnets.data.sort_of_clevr)
CAPTIONS = {
    "shapes_captions": "64x64x3 scenes of 1-4 coloured shapes, 10k / 1k; y = a template caption (counts, colours, "
    "spatial relation) as 10 token ids, vocabulary of 22 (jaxnets.data.captions)",
}
# name -> description (other TFDS image-classification names work too)
DATASETS = {**EMBEDDED, **TFDS, **CANVAS, **TEXT, **STROKES, **BABI, **VQA, **CAPTIONS}


class DataUnavailable(RuntimeError):
    """The dataset cannot be read: neither in the manual dir nor downloadable, a source file is not the registered
    one, or it needs TensorFlow, which is not installed."""


@dataclass(frozen=True)
class Dataset:
    """Train and test examples as numpy arrays (float32 inputs, int32 labels) and the number of classes. Inputs of
    several parts (an image and a question) are a dict of arrays by name, stored ready for the model."""

    name: str
    train_x: Any  # an array of examples, or (several inputs) a dict of them by name
    train_y: np.ndarray
    test_x: Any
    test_y: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
        """Per-example input shape (inputs of several parts, a dict of arrays: the dict of their shapes)."""
        if isinstance(self.train_x, dict):
            return {k: tuple(v.shape[1:]) for k, v in self.train_x.items()}
        return tuple(self.train_x.shape[1:])
