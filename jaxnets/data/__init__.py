"""Data: embedded toy sets, TFDS datasets read into numpy (the classic image sets without TensorFlow; offline from a
manual dir), on-device batching."""

from jaxnets.data.base import MANUAL_DIR_ENV, DataUnavailable
from jaxnets.data.batching import epoch_batches, padded_batches, steps_per_epoch
from jaxnets.data.datasets import (
    DATASETS,
    EMBEDDED,
    NORMALISATIONS,
    Dataset,
    Preprocessing,
    check_fits,
    load,
    load_raw,
    prepare,
    preprocessing,
)
from jaxnets.data.episodes import episode_indices, pair_indices
from jaxnets.data.mnist_m import make_mnist_m
from jaxnets.data.moons import rotate, two_moons
from jaxnets.data.regression_toys import bishop_inverse, gap_sine
from jaxnets.data.text import TextDataset, load_text
from jaxnets.data.tfds_source import label_names, load_tfds
from jaxnets.data.toy import spirals, xor

__all__ = [
    "DATASETS",
    "DataUnavailable",
    "Dataset",
    "EMBEDDED",
    "MANUAL_DIR_ENV",
    "NORMALISATIONS",
    "Preprocessing",
    "TextDataset",
    "bishop_inverse",
    "check_fits",
    "episode_indices",
    "epoch_batches",
    "gap_sine",
    "label_names",
    "load",
    "load_raw",
    "load_text",
    "load_tfds",
    "make_mnist_m",
    "padded_batches",
    "pair_indices",
    "prepare",
    "preprocessing",
    "rotate",
    "spirals",
    "steps_per_epoch",
    "two_moons",
    "xor",
]
