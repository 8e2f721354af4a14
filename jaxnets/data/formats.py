"""Readers for the source files of the classic image sets, without TensorFlow, giving the arrays TFDS gives.

MNIST, Fashion-MNIST and KMNIST come as four gzipped IDX files, EMNIST as one zip of them (``gzip.zip``), CIFAR-10
and CIFAR-100 as a tarball of binary batches (a label byte, two for CIFAR-100, then 3072 bytes of channel-major
pixels). The files and their names are those TFDS registers (its download URLs and SHA-256 checksums), read with
the standard library and numpy only. TFDS stores a split's examples in the order of the MD5 hash of the split name
followed by each example's index (``tensorflow_datasets.core.hashing``) and reads a one-file split back in that
order; ``tfds_order`` reproduces it, so ``read`` returns TFDS's arrays, element for element. (A split that TFDS
writes in several files, above 128 MiB encoded: EMNIST byclass and bymerge, is read back interleaved; there the
examples are the same but their order is not TFDS's.)
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zipfile
from pathlib import Path

import numpy as np

MNIST_LIKE = ("mnist", "fashion_mnist", "kmnist")
READABLE = (*MNIST_LIKE, "emnist", "cifar10", "cifar100")  # TFDS builder names these readers cover
SPLITS = ("train", "test")
_IDX_TYPES = {0x08: np.uint8}


def read_idx(raw: bytes) -> np.ndarray:
    """An IDX array (LeCun's MNIST format: two zero bytes, a type byte, the number of dimensions, their sizes as
    big-endian int32, then the data); only unsigned bytes, the type of every set here."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise ValueError(f"not an IDX file of unsigned bytes (header {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", ndim, offset=4))
    data = np.frombuffer(raw, _IDX_TYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX file of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def tfds_order(n: int, split: str) -> np.ndarray:
    """The indices of examples 0..n-1 in the order TFDS stores them in a one-file split: by the MD5 digest of the
    split name followed by the decimal index."""
    salted = hashlib.md5(split.encode())

    def digest(i: int) -> bytes:
        h = salted.copy()
        h.update(str(i).encode())
        return h.digest()

    return np.array(sorted(range(n), key=digest), dtype=np.int64)


def _idx_pair(images: bytes, labels: bytes) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.shape != x.shape[:1]:
        raise ValueError(f"IDX images of shape {x.shape} do not go with labels of shape {y.shape}")
    return x[..., None], y


def _mnist_like(files: dict[str, Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    return _idx_pair(
        *(gzip.decompress(files[f"{prefix}-{kind}-ubyte.gz"].read_bytes()) for kind in ("images-idx3", "labels-idx1"))
    )


def _emnist(files: dict[str, Path], split: str, config: str) -> tuple[np.ndarray, np.ndarray]:
    with zipfile.ZipFile(files["gzip.zip"]) as z:
        return _idx_pair(
            *(
                gzip.decompress(z.read(f"gzip/emnist-{config}-{split}-{kind}-ubyte.gz"))
                for kind in ("images-idx3", "labels-idx1")
            )
        )


def read_cifar_batches(batches: list[bytes], label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR binary batches -> images (n, 32, 32, 3) uint8 and labels: the last of the ``label_bytes`` leading each
    record (CIFAR-100's fine label follows its coarse one)."""
    records = np.concatenate([np.frombuffer(b, np.uint8) for b in batches]).reshape(-1, label_bytes + 3072)
    return records[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, label_bytes - 1]


def _cifar(files: dict[str, Path], split: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "cifar10":
        archive, label_bytes = "cifar-10-binary.tar.gz", 1
        members = (
            [f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)]
            if split == "train"
            else ["cifar-10-batches-bin/test_batch.bin"]
        )
    else:
        archive, label_bytes, members = "cifar-100-binary.tar.gz", 2, [f"cifar-100-binary/{split}.bin"]
    with tarfile.open(files[archive], "r:gz") as tar:
        batches = []
        for member in members:
            f = tar.extractfile(member)
            if f is None:
                raise ValueError(f"{member} in {files[archive]} is not a file")
            batches.append(f.read())
    return read_cifar_batches(batches, label_bytes)


def read(
    name: str, config: str | None, files: dict[str, Path]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test arrays of TFDS builder ``name`` (one of ``READABLE``; ``config`` names EMNIST's split) from
    its source ``files`` (registered file name -> path), in TFDS's order: (train_x uint8 (n, h, w, c), train_y
    int32, test_x, test_y)."""
    arrays = []
    for split in SPLITS:
        if name in MNIST_LIKE:
            x, y = _mnist_like(files, split)
        elif name == "emnist":
            x, y = _emnist(files, split, config or "byclass")
        elif name in ("cifar10", "cifar100"):
            x, y = _cifar(files, split, name)
        else:
            raise ValueError(f"no reader for {name!r}; these are read without TensorFlow: {', '.join(READABLE)}")
        order = tfds_order(len(x), split)
        arrays += [np.ascontiguousarray(x[order]), y[order].astype(np.int32)]
    return arrays[0], arrays[1], arrays[2], arrays[3]
