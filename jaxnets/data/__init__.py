"""Data: embedded toy sets, TFDS datasets read into numpy (offline from a manual dir), on-device batching."""

from jaxnets.data.batching import epoch_batches, padded_batches, steps_per_epoch
from jaxnets.data.datasets import DATASETS, EMBEDDED, NORMALISATIONS, Dataset, check_fits, load, load_raw, prepare
from jaxnets.data.text import TextDataset, load_text
from jaxnets.data.tfds_source import MANUAL_DIR_ENV, DataUnavailable, load_tfds
from jaxnets.data.toy import spirals, xor

__all__ = ["DATASETS", "EMBEDDED", "MANUAL_DIR_ENV", "NORMALISATIONS", "DataUnavailable", "Dataset", "check_fits",
           "epoch_batches", "load", "load_raw", "load_tfds", "padded_batches", "prepare", "spirals",
           "steps_per_epoch", "xor"]
__all__ += ["TextDataset", "load_text"]
