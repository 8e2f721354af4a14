"""Character-level text data from any UTF-8 file: a vocabulary of its characters and (input, next-char) windows.

``load_text(path)`` reads the file, takes its distinct characters in code-point order as the vocabulary (so the
same file always gives the same ids), cuts the first 90% of the characters into windows of ``seq_len + 1``
characters for training and the last 10% for testing, and returns a ``TextDataset`` whose examples are
``x = window[:-1]`` and labels ``y = window[1:]`` (int32 ids, shape ``(n, seq_len)``). ``train.py --dataset
text:PATH`` loads a file this way (windows of 64 characters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxnets.data.base import Dataset

PREFIX = "text:"
SEQ_LEN = 64
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class TextDataset(Dataset):
    """A ``Dataset`` of token windows with the characters behind the ids: ``vocab[i]`` is token ``i``."""

    vocab: str = ""


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); one-line ``ValueError`` if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"text file {path} not found") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {path} is not UTF-8 (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ValueError(f"cannot read text file {path}: {e.strerror}") from None


def vocabulary(text: str) -> str:
    """The distinct characters of ``text`` in code-point order (deterministic)."""
    return "".join(sorted(set(text)))


def encode(text: str, vocab: str) -> np.ndarray:
    """Characters -> int32 ids in ``vocab``; ``ValueError`` naming the characters that are not in it."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - index.keys())
    if missing:
        raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
    return np.fromiter((index[c] for c in text), np.int32, len(text))


def decode(ids, vocab: str) -> str:
    """int ids -> the string of their characters."""
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


def windows(ids: np.ndarray, seq_len: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``seq_len + 1`` ids every ``stride`` (default ``seq_len``: each id is a target once) ->
    inputs ``(n, seq_len)`` and next-id targets ``(n, seq_len)``."""
    stride = stride or seq_len
    n = (len(ids) - seq_len - 1) // stride + 1 if len(ids) > seq_len else 0
    idx = np.arange(n)[:, None] * stride + np.arange(seq_len + 1)[None, :]
    w = np.asarray(ids, np.int32)[idx] if n else np.zeros((0, seq_len + 1), np.int32)
    return w[:, :-1], w[:, 1:]


def load_text(
    path: str | Path,
    seq_len: int = SEQ_LEN,
    test_fraction: float = TEST_FRACTION,
    stride: int | None = None,
    name: str | None = None,
) -> TextDataset:
    """A character-level dataset from a UTF-8 file: train windows from the first ``1 - test_fraction`` of the text,
    test windows from the rest; ``num_classes`` is the vocabulary size."""
    if seq_len < 1 or not 0 < test_fraction < 1:
        raise ValueError(f"need seq_len >= 1 and 0 < test_fraction < 1; got {seq_len}, {test_fraction}")
    text = read_text(path)
    vocab = vocabulary(text)
    ids = encode(text, vocab)
    cut = round(len(ids) * (1 - test_fraction))
    train_x, train_y = windows(ids[:cut], seq_len, stride)
    test_x, test_y = windows(ids[cut:], seq_len, stride)
    if not len(train_x) or not len(test_x):
        need = int(np.ceil((seq_len + 1) / min(test_fraction, 1 - test_fraction)))
        raise ValueError(
            f"text file {path} is too short: {len(text)} characters, windows of {seq_len + 1} need at least {need}"
        )
    return TextDataset(name or f"{PREFIX}{path}", train_x, train_y, test_x, test_y, len(vocab), vocab=vocab)
