"""Datasets by name: normalised, padded to a model's input shape, held as numpy arrays ready for the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxnets.data import toy
from jaxnets.data.tfds_source import load_tfds

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
    "svhn_cropped": "street-view house numbers, 32x32x3, 73,257 / 26,032, 10 classes",
}
TEXT = {"text:PATH": "the characters of any UTF-8 text file, windows of 64 -> next character (char_lstm)"}
DATASETS = {**EMBEDDED, **TFDS, **TEXT}  # name -> description (other TFDS image-classification names work too)
NORMALISATIONS = ("standard", "lenet1998", "unit", "none")


@dataclass(frozen=True)
class Dataset:
    """Train and test examples as numpy arrays (float32 inputs, int32 labels) and the number of classes."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example input shape."""
        return tuple(self.train_x.shape[1:])


def load_raw(name: str, data_dir: str | None = None, manual_dir: str | None = None) -> Dataset:
    """Load a dataset as stored: images stay uint8 (with a channel axis), toy sets float32. See ``prepare``."""
    if name.startswith("text:"):  # token ids of a text file's characters (jaxnets.data.text)
        from jaxnets.data.text import PREFIX, load_text
        return load_text(name.removeprefix(PREFIX), name=name)
    if name == "xor":
        x, y = toy.xor()
        return Dataset(name, x, y, x, y, 2)
    if name == "spirals":
        x, y = toy.spirals(1024)
        return Dataset(name, x[:512], y[:512], x[512:], y[512:], 2)
    train_x, train_y, test_x, test_y, classes = load_tfds(name, data_dir=data_dir, manual_dir=manual_dir)
    if train_x.ndim == 3:  # (n, h, w) -> (n, h, w, 1)
        train_x, test_x = train_x[..., None], test_x[..., None]
    return Dataset(name, train_x, train_y, test_x, test_y, classes)


def _pad_to(x: np.ndarray, shape: tuple[int, ...], value: float) -> np.ndarray:
    """Centre ``x`` (batch first) in per-example ``shape``, filling the border with ``value``."""
    pads = [(0, 0)]
    for have, want in zip(x.shape[1:], shape, strict=True):
        pads.append(((want - have) // 2, want - have - (want - have) // 2))
    return np.pad(x, pads, constant_values=value) if any(p != (0, 0) for p in pads) else x


def check_fits(data_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless examples of ``data_shape`` can be padded to ``input_shape``."""
    if len(data_shape) != len(input_shape) or data_shape[-1] != input_shape[-1] or any(
            d > m for d, m in zip(data_shape, input_shape, strict=True)):
        raise ValueError(f"examples of shape {data_shape} do not fit the model's input shape {input_shape}")


def prepare(raw: Dataset, input_shape: tuple[int, ...] | None = None, normalisation: str = "standard") -> Dataset:
    """Normalise a raw dataset and zero-pad its raw pixels to ``input_shape`` (before normalising, so the border is
    background). 'standard': per-channel train mean 0 / std 1; 'lenet1998': LeCun et al.'s background -0.1,
    foreground 1.175; 'unit': pixels / 255 in [0, 1] (autoencoders, RBMs); 'none': as stored (toy sets; images
    are / 255 all the same)."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; choose one of {NORMALISATIONS}")
    input_shape = tuple(input_shape or raw.input_shape)
    check_fits(raw.input_shape, input_shape)
    if raw.train_x.dtype.kind in "iu" and raw.train_x.dtype != np.uint8:  # token ids (text): used as they are
        if input_shape != raw.input_shape:
            raise ValueError(f"token sequences of shape {raw.input_shape} do not fit the input shape {input_shape}")
        return raw
    scale = 255.0 if raw.train_x.dtype == np.uint8 else 1.0
    if normalisation == "standard":
        axes = tuple(range(raw.train_x.ndim - 1))
        mean = raw.train_x.mean(axes, dtype=np.float64) / scale
        std = raw.train_x.std(axes, dtype=np.float64) / scale
        std = np.where(std > 0, std, 1.0)
    elif normalisation == "lenet1998":
        mean, std = 0.1 / 1.275, 1 / 1.275  # x/255 in [0, 1] -> [-0.1, 1.175]
    else:
        mean, std = 0.0, 1.0

    def norm(x: np.ndarray) -> np.ndarray:
        x = _pad_to(x, input_shape, 0)
        return ((x.astype(np.float32) / np.float32(scale) - np.float32(mean)) / np.float32(std)).astype(np.float32)

    return Dataset(raw.name, norm(raw.train_x), raw.train_y.astype(np.int32), norm(raw.test_x),
                   raw.test_y.astype(np.int32), raw.num_classes)


def load(name: str, input_shape: tuple[int, ...] | None = None, normalisation: str = "standard",
         data_dir: str | None = None, manual_dir: str | None = None) -> Dataset:
    """Load a dataset by name (embedded or TFDS), normalised and padded to ``input_shape``."""
    return prepare(load_raw(name, data_dir=data_dir, manual_dir=manual_dir), input_shape,
                   "none" if name in EMBEDDED else normalisation)
